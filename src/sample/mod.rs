//! HAProxy's sample language: `fetch[(args)][,converter[(args)]]*` expressions, the typed
//! values they produce, log-format strings with `%[expr]`, and map files.
//!
//! This is a top-level module rather than part of `routing` because ACLs are only one of its
//! consumers: header values, redirect locations, `return` bodies, `use_backend` names and log
//! formats evaluate the same expressions; `routing`'s ACLs are built on them, and the proxy
//! implements [`SampleContext`] in `proxy::sample_ctx`.
//!
//! Everything that can fail is done when an expression is parsed: keywords are resolved, arguments
//! typed, regexes compiled and types checked along the converter chain (HAProxy's
//! "converter cannot be applied"). Evaluation does no string parsing of the expression; it reads
//! the request through [`SampleContext`] and maps through [`Maps`], so it is pure and unit-tested
//! with fakes. A sample that cannot be produced (no such header, a failed cast, a failed
//! converter) is `None`, as in HAProxy, never an error.

mod args;
mod codec;
mod conv;
mod conv_eval;
mod expr;
mod fetch;
mod fetch_http;
mod fetch_more;
mod fetch_sc;
mod hello;
mod json;
pub mod jwt;
mod logfmt;
mod map;
mod payload;
pub mod rdp;
pub(crate) mod timefmt;
mod value;

/// HAProxy's string hashes (`hash.c`), shared with the balancer's `hash-type` functions.
pub(crate) mod hashes {
    pub(crate) use super::codec::{djb2, full_hash, sdbm, wt6};
}

#[cfg(test)]
mod tests_conv;
#[cfg(test)]
mod tests_fetch;

pub use conv::{Converter, JsonMode, MapOut, Operand, VarCond, VarRef, VarScope};
pub use expr::SampleExpr;
pub use fetch::{Fetch, Reads, SampleContext, wall_clock};
pub use fetch_more::{AuthPart, CaptureLine, Role, avg_queue};
pub use fetch_sc::{Op as StickOp, Source as StickSource, StickFetch};
/// A TLS ClientHello carrying an SNI, for tests of what reads one.
#[cfg(test)]
pub(crate) use hello::tests::client_hello;
pub use logfmt::{LogFormat, Segment};
pub(crate) use map::{DIR_DELIMS, DOM_DELIMS, match_word};
pub use map::{MapEntry, MapError, MapSet, MatchKind, PatternMap, fold_entries, parse_map_file};
pub use payload::{Found as LvFound, Lv};
pub use value::{Sample, SmpType, Value, read_int64};

/// Map lookup as converters see it; [`MapSet`] is the store, the proxy may bring its own.
pub trait Maps {
    /// The value of the first entry of map `path`, indexed for `kind`, matching `key`.
    fn lookup(&self, path: &str, kind: MatchKind, key: &Value) -> Option<&[u8]>;
    /// Whether pattern file `file` (an ACL's `-f`), indexed for `kind` (case-folded with
    /// `icase`), holds a pattern matching `key`.
    fn contains(&self, _file: &str, _kind: MatchKind, _icase: bool, _key: &Value) -> bool {
        false
    }
    /// `map_regm`: the value of the first regex entry of map `path` matching `key`, with `\N`
    /// replaced by the match's groups.
    fn lookup_regm(&self, _path: &str, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// `jwt_verify`'s public key named `name` in the configuration, read when it was loaded.
    fn jwt_key(&self, _name: &[u8]) -> Option<&jwt::PublicKey> {
        None
    }
}

/// A file an expression reads, loaded when the configuration is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRef<'a> {
    /// A map converter's file, indexed for the match kind, values of the output type.
    Map(&'a str, MatchKind, MapOut),
    /// `jwt_verify`'s public key file; `required` when a constant RS/ES algorithm says the
    /// text is a path (with a variable algorithm it may be an HMAC secret, read if a file).
    JwtKey { path: &'a str, required: bool },
}

impl<'a> FileRef<'a> {
    pub fn path(&self) -> &'a str {
        match self {
            FileRef::Map(p, ..) | FileRef::JwtKey { path: p, .. } => p,
        }
    }
}

/// A parse error: the expression, where the offending keyword starts, the keyword, which
/// argument (1-based) if one is at fault, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("in `{expr}`: `{word}`{}: {reason}", arg.map(|a| format!(" argument {a}")).unwrap_or_default())]
pub struct ParseError {
    pub expr: String,
    pub offset: usize,
    pub word: String,
    pub arg: Option<usize>,
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(expr: &str, offset: usize, word: &str, arg: Option<usize>, reason: String) -> ParseError {
        ParseError { expr: expr.to_string(), offset, word: word.to_string(), arg, reason }
    }
}
