//! HAProxy ACLs and conditions: `acl NAME FETCH [flags] PATTERN...` and `if/unless` expressions.
//! Everything is compiled once at load time (regexes, CIDRs, pattern files); evaluation is pure
//! and reads the request through [`Facts`] and live backend health through [`Live`].

mod acl;
mod cond;

pub use acl::Acl;
pub use cond::Condition;

use std::net::IpAddr;

/// What an ACL can look at. In TCP mode the HTTP parts are absent.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub method: Option<&'a http::Method>,
    pub uri: Option<&'a http::Uri>,
    pub headers: Option<&'a http::HeaderMap>,
    pub src: IpAddr,
    pub dst_port: u16,
}

/// Live state an ACL may read.
pub trait Live {
    /// Usable servers of a backend right now (HAProxy's `nbsrv`).
    fn nbsrv(&self, backend: &str) -> usize;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("empty ACL expression")]
    Empty,
    #[error("unknown fetch `{0}`")]
    UnknownFetch(String),
    #[error("`{0}` needs at least one pattern")]
    MissingPattern(String),
    #[error("unknown flag `{0}`")]
    BadFlag(String),
    #[error("bad regex `{pattern}`: {error}")]
    BadRegex { pattern: String, error: String },
    #[error("bad address or network `{0}`")]
    BadCidr(String),
    #[error("bad integer test `{0}` (expected e.g. `lt 1`, `eq 3`, `80`, `1024:65535`)")]
    BadInt(String),
    #[error("cannot read pattern file {path}: {error}")]
    File { path: String, error: String },
    #[error("unknown acl `{0}`")]
    UnknownAcl(String),
    #[error("condition must start with `if` or `unless`, got `{0}`")]
    MissingKeyword(String),
    #[error("empty condition")]
    EmptyCondition,
    #[error("`{0}` has no operand")]
    DanglingOperator(String),
    #[error("unbalanced braces in condition")]
    UnbalancedBrace,
}
