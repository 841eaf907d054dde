//! HAProxy ACLs and conditions: `acl NAME FETCH [FLAGS] PATTERN...` and the `if` / `unless`
//! expressions of `use_backend` and `http-request` rules.
//!
//! Everything that can fail is done at load time: words are split, sample expressions parsed,
//! regexes and networks compiled and `-f` pattern files read. Evaluation does no I/O and cannot
//! fail; it reads the stream through [`crate::sample::SampleContext`].

mod acl;
mod cond;
pub mod lex;
pub(crate) mod pattern;

pub use acl::Acl;
pub use cond::{Cond, CondAcl, Condition, Env, Tri};
pub use pattern::Net;

/// Live state of backends, as `nbsrv` and keepalived's `track_backend` read it.
pub trait Live {
    /// Usable servers of a backend right now (HAProxy's `nbsrv`); 0 for an unknown backend.
    fn nbsrv(&self, backend: &str) -> usize;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("empty ACL expression")]
    Empty,
    #[error("unterminated {quote} quote in `{input}`")]
    UnterminatedQuote { quote: char, input: String },
    #[error("unknown fetch `{fetch}`")]
    UnknownFetch { fetch: String },
    #[error("`{fetch}`: {reason}")]
    FetchArgument { fetch: String, reason: &'static str },
    #[error("{0}")]
    Sample(#[from] crate::sample::ParseError),
    #[error("unknown flag `{flag}` (expected -i, -f <file>, -m <method>, -n or --)")]
    BadFlag { flag: String },
    #[error("flag `{flag}` is not supported")]
    UnsupportedFlag { flag: String },
    #[error("flag `{flag}` needs a value")]
    MissingFlagValue { flag: String },
    #[error(
        "unknown match method `-m {method}` (expected str, beg, end, sub, dir, dom, reg, len, found, int, ip, bool or bin)"
    )]
    UnknownMatch { method: String },
    #[error("`{fetch}` cannot be matched with `-m {method}`")]
    IncompatibleMatch { fetch: String, method: &'static str },
    #[error("`{fetch}` already implies a match method; drop `-m` or use the plain fetch")]
    ConflictingMatch { fetch: String },
    #[error("`{fetch}` needs at least one pattern")]
    MissingPattern { fetch: String },
    #[error("`{fetch}` takes no pattern, got `{pattern}`")]
    UnexpectedPattern { fetch: String, pattern: String },
    #[error("bad regex `{pattern}`: {error}")]
    BadRegex { pattern: String, error: String },
    #[error("`{pattern}` is not an even number of hex digits")]
    BadHex { pattern: String },
    #[error("bad address or network `{pattern}`: {reason}")]
    BadAddress { pattern: String, reason: &'static str },
    #[error("bad integer or range `{pattern}` (expected e.g. `80`, `1024:65535`, `:1023`)")]
    BadInteger { pattern: String },
    #[error("unknown operator `{operator}` (expected eq, ne, lt, le, gt or ge)")]
    BadOperator { operator: String },
    #[error("operator `{operator}` needs a value")]
    MissingOperand { operator: String },
    #[error("operator `{operator}` takes a single value, not the range `{pattern}`")]
    OperatorWithRange { operator: String, pattern: String },
    #[error("`{fetch}` -f: {reason}")]
    FilePatterns { fetch: String, reason: String },
    #[error("condition must start with `if` or `unless`, got `{found}`")]
    MissingKeyword { found: String },
    #[error("empty condition")]
    EmptyCondition,
    #[error("unknown acl `{name}`")]
    UnknownAcl { name: String },
    #[error("`{operator}` has nothing to apply to")]
    DanglingOperator { operator: String },
    #[error("unbalanced braces in condition")]
    UnbalancedBrace,
    #[error("braces cannot nest in a condition")]
    NestedBrace,
    #[error("`{{ }}` holds no ACL")]
    EmptyBraces,
    #[error("`{token}`: braces must be separated by spaces")]
    BraceSpacing { token: String },
    #[error("`{fetch}` takes group names only (no converter, `-m`, `-i` or `-f`), as in HAProxy")]
    AuthGroupForm { fetch: String },
    /// A TCP ACL's compile error (`tcprules::Acl`), as it says it.
    #[error("{0}")]
    Acl(String),
}

/// A request as the unit tests of this module describe it, with live backend state.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub method: Option<&'a http::Method>,
    pub uri: Option<&'a http::Uri>,
    pub headers: Option<&'a http::HeaderMap>,
    pub src: std::net::IpAddr,
    pub dst_port: u16,
}

#[cfg(test)]
pub(crate) struct Ctx<'a>(pub Facts<'a>, pub &'a dyn Live);

#[cfg(test)]
impl crate::sample::SampleContext for Ctx<'_> {
    fn src(&self) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new(self.0.src, 40000))
    }
    fn dst(&self) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new([127, 0, 0, 1].into(), self.0.dst_port))
    }
    fn method(&self) -> Option<&http::Method> {
        self.0.method
    }
    fn uri(&self) -> Option<&http::Uri> {
        self.0.uri
    }
    fn req_headers(&self) -> Option<&http::HeaderMap> {
        self.0.headers
    }
    fn nbsrv(&self, backend: Option<&str>) -> Option<i64> {
        Some(self.1.nbsrv(backend?) as i64)
    }
}
