//! HAProxy's `balance` and `hash-type` keywords, parsed once at config load. Errors name the
//! offending token so `lbha check` can point at it.

use std::fmt;
use std::str::FromStr;

/// How a hashing algorithm maps a key's hash to a server (HAProxy `hash-type <method>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashMethod {
    /// Hash modulo the total usable weight over HAProxy's interleaved server map: cheap, but a
    /// server going down remaps most keys.
    #[default]
    MapBased,
    /// HAProxy's tree of 16 points per unit of weight per server: a server going down or coming
    /// back moves only the keys it owns.
    Consistent,
}

/// The function a key's bytes go through (HAProxy `hash-type <method> <function>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashFunction {
    #[default]
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
}

/// HAProxy's `hash-type <method> [<function> [avalanche]]`, with its defaults: `sdbm`, and
/// `avalanche` too for a bare `consistent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashType {
    pub method: HashMethod,
    pub function: HashFunction,
    /// Bob Jenkins' full avalanche over the function's result (HAProxy's `full_hash`).
    pub avalanche: bool,
}

impl HashType {
    /// `hash-type map-based`.
    pub const fn map_based() -> HashType {
        HashType { method: HashMethod::MapBased, function: HashFunction::Sdbm, avalanche: false }
    }

    /// `hash-type consistent` (sdbm with avalanche, HAProxy's default for it).
    pub const fn consistent() -> HashType {
        HashType { method: HashMethod::Consistent, function: HashFunction::Sdbm, avalanche: true }
    }
}

/// A backend's load-balancing algorithm (HAProxy `balance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `len`: hash at most this many characters; `depth`: at most this many directories;
    /// `whole`: include the query string; `path_only`: start at the path's first `/`, so an
    /// absolute-form (or HTTP/2) URI hashes as its origin form does.
    Uri {
        len: Option<usize>,
        depth: Option<usize>,
        whole: bool,
        path_only: bool,
    },
    /// Value of this query-string parameter, or for a POST without it, of the urlencoded body.
    /// HAProxy 2.6 reads a POST's body for every `url_param` backend; `check_post` is kept only
    /// to show the config as written.
    UrlParam {
        name: String,
        check_post: bool,
    },
    /// Value of this request header (name as written in the config); `domain_only`
    /// (`use_domain_only`): only the label before the last dot of the value.
    Hdr {
        name: String,
        domain_only: bool,
    },
    /// Power of `draws` random choices.
    Random {
        draws: u32,
    },
    /// `hash <expr>`: the sample expression's value (as written; validation parses it and the
    /// proxy evaluates it into the request's key).
    Hash(String),
    /// `rdp-cookie[(name)]`: the RDP cookie `name` (default `mstshash`) of a TCP connection's
    /// first bytes.
    RdpCookie(String),
}

/// The RDP cookie `balance rdp-cookie` reads when no name is given (HAProxy's default).
pub const DEFAULT_RDP_COOKIE: &str = "mstshash";

/// Default number of draws for `random` (HAProxy's default).
pub const DEFAULT_RANDOM_DRAWS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    #[error("empty balance algorithm")]
    Empty,
    #[error(
        "unknown balance algorithm `{name}` (expected roundrobin, static-rr, leastconn, first, source, uri, \
         url_param <name>, hdr(<name>), random[(<draws>)], hash <expr> or rdp-cookie[(<name>)])"
    )]
    UnknownAlgorithm { name: String },
    #[error("balance algorithm `{name}` is not supported by lbha")]
    UnsupportedAlgorithm { name: String },
    #[error("`{algorithm}` needs {what}")]
    MissingArgument { algorithm: &'static str, what: &'static str },
    #[error("`{algorithm}` does not take `{token}`")]
    UnexpectedArgument { algorithm: &'static str, token: String },
    #[error("`{algorithm}`: `{option}` expects a positive integer, got `{value}`")]
    InvalidNumber { algorithm: &'static str, option: &'static str, value: String },
    #[error("`{algorithm}`: `{option}` is given twice")]
    DuplicateOption { algorithm: &'static str, option: &'static str },
    #[error("`hdr({name})`: `{name}` is not a valid header name")]
    InvalidHeaderName { name: String },
    #[error("`{token}`: unbalanced parentheses")]
    Malformed { token: String },
    #[error("unknown hash-type `{value}` (expected map-based or consistent)")]
    UnknownHashType { value: String },
    #[error("hash-type: unknown hash function `{value}` (expected sdbm, djb2, wt6 or crc32)")]
    UnknownHashFunction { value: String },
    #[error("hash-type: unknown modifier `{value}` (only avalanche)")]
    UnknownHashModifier { value: String },
}

impl HashType {
    /// `<method> [<function> [avalanche]]`, as HAProxy 2.6 reads it.
    pub fn parse(s: &str) -> Result<HashType, BalanceError> {
        let mut words = s.split_whitespace();
        let method = match words.next() {
            Some("map-based") => HashMethod::MapBased,
            Some("consistent") => HashMethod::Consistent,
            _ => {
                return Err(BalanceError::UnknownHashType { value: s.trim().to_string() });
            }
        };
        let Some(function) = words.next() else {
            return Ok(match method {
                HashMethod::MapBased => HashType::map_based(),
                HashMethod::Consistent => HashType::consistent(),
            });
        };
        let function = match function {
            "sdbm" => HashFunction::Sdbm,
            "djb2" => HashFunction::Djb2,
            "wt6" => HashFunction::Wt6,
            "crc32" => HashFunction::Crc32,
            other => return Err(BalanceError::UnknownHashFunction { value: other.to_string() }),
        };
        let avalanche = match words.next() {
            None => false,
            Some("avalanche") => true,
            Some(other) => return Err(BalanceError::UnknownHashModifier { value: other.to_string() }),
        };
        if let Some(extra) = words.next() {
            return Err(BalanceError::UnknownHashModifier { value: extra.to_string() });
        }
        Ok(HashType { method, function, avalanche })
    }
}

impl FromStr for HashType {
    type Err = BalanceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashType::parse(s)
    }
}

/// The shortest text that parses back to the same hash type.
impl fmt::Display for HashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.method {
            HashMethod::MapBased => "map-based",
            HashMethod::Consistent => "consistent",
        })?;
        let bare = match self.method {
            HashMethod::MapBased => HashType::map_based(),
            HashMethod::Consistent => HashType::consistent(),
        };
        if *self == bare {
            return Ok(());
        }
        f.write_str(match self.function {
            HashFunction::Sdbm => " sdbm",
            HashFunction::Djb2 => " djb2",
            HashFunction::Wt6 => " wt6",
            HashFunction::Crc32 => " crc32",
        })?;
        if self.avalanche {
            f.write_str(" avalanche")?;
        }
        Ok(())
    }
}

/// Splits `name(arg)` into its parts; a word without parentheses has no argument.
fn split_call(word: &str) -> Result<(&str, Option<&str>), BalanceError> {
    match word.split_once('(') {
        None if word.contains(')') => Err(BalanceError::Malformed { token: word.to_string() }),
        None => Ok((word, None)),
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(arg) if !arg.contains(['(', ')']) => Ok((name, Some(arg))),
            _ => Err(BalanceError::Malformed { token: word.to_string() }),
        },
    }
}

fn positive(algorithm: &'static str, option: &'static str, value: Option<&str>) -> Result<usize, BalanceError> {
    let value = value.ok_or(BalanceError::InvalidNumber { algorithm, option, value: String::new() })?;
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(BalanceError::InvalidNumber { algorithm, option, value: value.to_string() }),
    }
}

fn parse_uri(rest: &[&str]) -> Result<Algorithm, BalanceError> {
    const ALGO: &str = "uri";
    let (mut len, mut depth, mut whole, mut path_only) = (None, None, false, false);
    let mut words = rest.iter().copied();
    while let Some(word) = words.next() {
        match word {
            "len" => {
                if len.is_some() {
                    return Err(BalanceError::DuplicateOption { algorithm: ALGO, option: "len" });
                }
                len = Some(positive(ALGO, "len", words.next())?);
            }
            "depth" => {
                if depth.is_some() {
                    return Err(BalanceError::DuplicateOption { algorithm: ALGO, option: "depth" });
                }
                depth = Some(positive(ALGO, "depth", words.next())?);
            }
            "whole" => {
                if whole {
                    return Err(BalanceError::DuplicateOption { algorithm: ALGO, option: "whole" });
                }
                whole = true;
            }
            "path-only" => {
                if path_only {
                    return Err(BalanceError::DuplicateOption { algorithm: ALGO, option: "path-only" });
                }
                path_only = true;
            }
            other => {
                return Err(BalanceError::UnexpectedArgument { algorithm: ALGO, token: other.to_string() });
            }
        }
    }
    Ok(Algorithm::Uri { len, depth, whole, path_only })
}

fn no_more(algorithm: &'static str, rest: &[&str]) -> Result<(), BalanceError> {
    match rest.first() {
        None => Ok(()),
        Some(token) => Err(BalanceError::UnexpectedArgument { algorithm, token: (*token).to_string() }),
    }
}

/// A keyword that takes neither parentheses nor further words.
fn bare(
    algorithm: &'static str,
    arg: Option<&str>,
    rest: &[&str],
    value: Algorithm,
) -> Result<Algorithm, BalanceError> {
    if let Some(arg) = arg {
        return Err(BalanceError::UnexpectedArgument { algorithm, token: format!("({arg})") });
    }
    no_more(algorithm, rest)?;
    Ok(value)
}

impl Algorithm {
    /// Parses HAProxy's syntax: `roundrobin`, `static-rr`, `leastconn`, `first`, `source`,
    /// `uri [len N] [depth N] [whole] [path-only]`, `url_param NAME [check_post [MAX_WAIT]]`,
    /// `hdr(NAME) [use_domain_only]`, `random[(DRAWS)]`,
    /// `hash EXPR`, `rdp-cookie[(NAME)]`.
    pub fn parse(s: &str) -> Result<Algorithm, BalanceError> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let Some((&head, rest)) = words.split_first() else {
            return Err(BalanceError::Empty);
        };
        let (name, arg) = split_call(head)?;
        match name {
            "roundrobin" => bare("roundrobin", arg, rest, Algorithm::RoundRobin),
            "static-rr" => bare("static-rr", arg, rest, Algorithm::StaticRr),
            "leastconn" => bare("leastconn", arg, rest, Algorithm::LeastConn),
            "first" => bare("first", arg, rest, Algorithm::First),
            "source" => bare("source", arg, rest, Algorithm::Source),
            "uri" => {
                if let Some(arg) = arg {
                    return Err(BalanceError::UnexpectedArgument { algorithm: "uri", token: format!("({arg})") });
                }
                parse_uri(rest)
            }
            "url_param" => {
                if let Some(arg) = arg {
                    return Err(BalanceError::UnexpectedArgument { algorithm: "url_param", token: format!("({arg})") });
                }
                let Some((&param, more)) = rest.split_first() else {
                    return Err(BalanceError::MissingArgument { algorithm: "url_param", what: "a parameter name" });
                };
                // `check_post [max_wait]`: HAProxy 2.6 ignores `max_wait` (the body is read up
                // to the buffer size) and reads a POST's body with or without `check_post`.
                let check_post = match more {
                    [] => false,
                    ["check_post"] => true,
                    ["check_post", wait] if wait.parse::<u64>().is_ok() => true,
                    ["check_post", wait, ..] => {
                        return Err(BalanceError::UnexpectedArgument {
                            algorithm: "url_param",
                            token: wait.to_string(),
                        });
                    }
                    [other, ..] => {
                        return Err(BalanceError::UnexpectedArgument {
                            algorithm: "url_param",
                            token: other.to_string(),
                        });
                    }
                };
                Ok(Algorithm::UrlParam { name: param.to_string(), check_post })
            }
            "hdr" => {
                let name = match arg.map(str::trim) {
                    Some(n) if !n.is_empty() => n,
                    _ => {
                        return Err(BalanceError::MissingArgument {
                            algorithm: "hdr",
                            what: "a header name: hdr(<name>)",
                        });
                    }
                };
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(BalanceError::InvalidHeaderName { name: name.to_string() });
                }
                let domain_only = match rest {
                    [] => false,
                    ["use_domain_only"] => true,
                    [other, ..] => {
                        return Err(BalanceError::UnexpectedArgument { algorithm: "hdr", token: other.to_string() });
                    }
                };
                Ok(Algorithm::Hdr { name: name.to_string(), domain_only })
            }
            "random" => {
                let draws = match arg {
                    None => DEFAULT_RANDOM_DRAWS,
                    Some(a) => match a.trim().parse::<u32>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return Err(BalanceError::InvalidNumber {
                                algorithm: "random",
                                option: "draws",
                                value: a.to_string(),
                            });
                        }
                    },
                };
                no_more("random", rest)?;
                Ok(Algorithm::Random { draws })
            }
            "hash" => {
                if let Some(arg) = arg {
                    return Err(BalanceError::UnexpectedArgument { algorithm: "hash", token: format!("({arg})") });
                }
                let Some((&expr, more)) = rest.split_first() else {
                    return Err(BalanceError::MissingArgument { algorithm: "hash", what: "a sample expression" });
                };
                no_more("hash", more)?;
                Ok(Algorithm::Hash(expr.to_string()))
            }
            "rdp-cookie" => {
                let name = match arg.map(str::trim) {
                    None => DEFAULT_RDP_COOKIE,
                    Some("") => {
                        return Err(BalanceError::MissingArgument {
                            algorithm: "rdp-cookie",
                            what: "a cookie name in rdp-cookie(<name>)",
                        });
                    }
                    Some(n) => n,
                };
                no_more("rdp-cookie", rest)?;
                Ok(Algorithm::RdpCookie(name.to_string()))
            }
            "log-hash" | "sticky" => Err(BalanceError::UnsupportedAlgorithm { name: name.to_string() }),
            _ => Err(BalanceError::UnknownAlgorithm { name: head.to_string() }),
        }
    }

    /// Whether the algorithm hashes a request key (and so honours `hash-type`).
    pub fn is_hash(&self) -> bool {
        matches!(
            self,
            Algorithm::Source
                | Algorithm::Uri { .. }
                | Algorithm::UrlParam { .. }
                | Algorithm::Hdr { .. }
                | Algorithm::Hash(_)
                | Algorithm::RdpCookie(_)
        )
    }
}

impl FromStr for Algorithm {
    type Err = BalanceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

/// HAProxy syntax again, so stats and the API show what the operator wrote.
impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::RoundRobin => f.write_str("roundrobin"),
            Algorithm::StaticRr => f.write_str("static-rr"),
            Algorithm::LeastConn => f.write_str("leastconn"),
            Algorithm::First => f.write_str("first"),
            Algorithm::Source => f.write_str("source"),
            Algorithm::Uri { len, depth, whole, path_only } => {
                f.write_str("uri")?;
                if let Some(len) = len {
                    write!(f, " len {len}")?;
                }
                if let Some(depth) = depth {
                    write!(f, " depth {depth}")?;
                }
                if *whole {
                    f.write_str(" whole")?;
                }
                if *path_only {
                    f.write_str(" path-only")?;
                }
                Ok(())
            }
            Algorithm::UrlParam { name, check_post } => {
                write!(f, "url_param {name}")?;
                if *check_post {
                    f.write_str(" check_post")?;
                }
                Ok(())
            }
            Algorithm::Hdr { name, domain_only } => {
                write!(f, "hdr({name})")?;
                if *domain_only {
                    f.write_str(" use_domain_only")?;
                }
                Ok(())
            }
            Algorithm::Random { draws } if *draws == DEFAULT_RANDOM_DRAWS => f.write_str("random"),
            Algorithm::Random { draws } => write!(f, "random({draws})"),
            Algorithm::Hash(e) => write!(f, "hash {e}"),
            Algorithm::RdpCookie(n) if n == DEFAULT_RDP_COOKIE => f.write_str("rdp-cookie"),
            Algorithm::RdpCookie(n) => write!(f, "rdp-cookie({n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_algorithm() {
        let cases = [
            ("roundrobin", Algorithm::RoundRobin),
            ("  static-rr ", Algorithm::StaticRr),
            ("leastconn", Algorithm::LeastConn),
            ("first", Algorithm::First),
            ("source", Algorithm::Source),
            ("uri", Algorithm::Uri { len: None, depth: None, whole: false, path_only: false }),
            ("uri len 10 depth 2", Algorithm::Uri { len: Some(10), depth: Some(2), whole: false, path_only: false }),
            ("uri depth 3 whole", Algorithm::Uri { len: None, depth: Some(3), whole: true, path_only: false }),
            ("uri whole", Algorithm::Uri { len: None, depth: None, whole: true, path_only: false }),
            ("uri path-only", Algorithm::Uri { len: None, depth: None, whole: false, path_only: true }),
            (
                "uri path-only whole len 3 depth 2",
                Algorithm::Uri { len: Some(3), depth: Some(2), whole: true, path_only: true },
            ),
            ("url_param userid", Algorithm::UrlParam { name: "userid".into(), check_post: false }),
            ("url_param userid check_post", Algorithm::UrlParam { name: "userid".into(), check_post: true }),
            // HAProxy 2.6 ignores the old `max_wait`.
            ("url_param userid check_post 64", Algorithm::UrlParam { name: "userid".into(), check_post: true }),
            ("hdr(User-Agent)", Algorithm::Hdr { name: "User-Agent".into(), domain_only: false }),
            ("hdr(host) use_domain_only", Algorithm::Hdr { name: "host".into(), domain_only: true }),
            ("random", Algorithm::Random { draws: 2 }),
            ("random(2)", Algorithm::Random { draws: 2 }),
            ("random(5)", Algorithm::Random { draws: 5 }),
            ("hash req.cookie(clientid)", Algorithm::Hash("req.cookie(clientid)".into())),
            (
                "hash req.hdr_ip(x-forwarded-for,-1),ipmask(24)",
                Algorithm::Hash("req.hdr_ip(x-forwarded-for,-1),ipmask(24)".into()),
            ),
            ("rdp-cookie", Algorithm::RdpCookie("mstshash".into())),
            ("rdp-cookie(msts)", Algorithm::RdpCookie("msts".into())),
        ];
        for (text, want) in cases {
            assert_eq!(Algorithm::parse(text), Ok(want.clone()), "{text}");
            assert_eq!(text.parse::<Algorithm>(), Ok(want), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "roundrobin",
            "static-rr",
            "leastconn",
            "first",
            "source",
            "uri",
            "uri len 10 depth 2 whole",
            "uri len 10 whole path-only",
            "uri path-only",
            "url_param userid",
            "url_param userid check_post",
            "hdr(User-Agent)",
            "hdr(Host) use_domain_only",
            "random",
            "random(3)",
            "hash var(req.client_id)",
            "rdp-cookie",
            "rdp-cookie(msts)",
        ] {
            let a = Algorithm::parse(text).unwrap();
            assert_eq!(a.to_string(), text);
            assert_eq!(Algorithm::parse(&a.to_string()), Ok(a));
        }
        assert_eq!(Algorithm::parse("random(2)").unwrap().to_string(), "random");
    }

    #[test]
    fn rejects_each_error() {
        use BalanceError as E;
        let cases: Vec<(&str, E)> = vec![
            ("", E::Empty),
            ("   ", E::Empty),
            ("round-robin", E::UnknownAlgorithm { name: "round-robin".into() }),
            ("RoundRobin", E::UnknownAlgorithm { name: "RoundRobin".into() }),
            ("hash", E::MissingArgument { algorithm: "hash", what: "a sample expression" }),
            ("hash req.hdr(x) foo", E::UnexpectedArgument { algorithm: "hash", token: "foo".into() }),
            ("hash(x) src", E::UnexpectedArgument { algorithm: "hash", token: "(x)".into() }),
            (
                "rdp-cookie()",
                E::MissingArgument { algorithm: "rdp-cookie", what: "a cookie name in rdp-cookie(<name>)" },
            ),
            ("rdp-cookie x", E::UnexpectedArgument { algorithm: "rdp-cookie", token: "x".into() }),
            ("log-hash", E::UnsupportedAlgorithm { name: "log-hash".into() }),
            ("roundrobin extra", E::UnexpectedArgument { algorithm: "roundrobin", token: "extra".into() }),
            ("leastconn(3)", E::UnexpectedArgument { algorithm: "leastconn", token: "(3)".into() }),
            ("uri(1)", E::UnexpectedArgument { algorithm: "uri", token: "(1)".into() }),
            ("uri len", E::InvalidNumber { algorithm: "uri", option: "len", value: String::new() }),
            ("uri len x", E::InvalidNumber { algorithm: "uri", option: "len", value: "x".into() }),
            ("uri len 0", E::InvalidNumber { algorithm: "uri", option: "len", value: "0".into() }),
            ("uri depth -1", E::InvalidNumber { algorithm: "uri", option: "depth", value: "-1".into() }),
            ("uri len 1 len 2", E::DuplicateOption { algorithm: "uri", option: "len" }),
            ("uri depth 1 depth 2", E::DuplicateOption { algorithm: "uri", option: "depth" }),
            ("uri whole whole", E::DuplicateOption { algorithm: "uri", option: "whole" }),
            ("uri path-only path-only", E::DuplicateOption { algorithm: "uri", option: "path-only" }),
            ("uri path_only", E::UnexpectedArgument { algorithm: "uri", token: "path_only".into() }),
            ("url_param", E::MissingArgument { algorithm: "url_param", what: "a parameter name" }),
            ("url_param(x)", E::UnexpectedArgument { algorithm: "url_param", token: "(x)".into() }),
            ("url_param userid check", E::UnexpectedArgument { algorithm: "url_param", token: "check".into() }),
            ("url_param userid check_post 5s", E::UnexpectedArgument { algorithm: "url_param", token: "5s".into() }),
            ("hdr", E::MissingArgument { algorithm: "hdr", what: "a header name: hdr(<name>)" }),
            ("hdr()", E::MissingArgument { algorithm: "hdr", what: "a header name: hdr(<name>)" }),
            ("hdr(bad name)", E::Malformed { token: "hdr(bad".into() }),
            ("hdr(bad:name)", E::InvalidHeaderName { name: "bad:name".into() }),
            ("hdr(host) domain_only", E::UnexpectedArgument { algorithm: "hdr", token: "domain_only".into() }),
            (
                "hdr(host) use_domain_only x",
                E::UnexpectedArgument { algorithm: "hdr", token: "use_domain_only".into() },
            ),
            ("hdr(host", E::Malformed { token: "hdr(host".into() }),
            ("hdr((host))", E::Malformed { token: "hdr((host))".into() }),
            ("random)", E::Malformed { token: "random)".into() }),
            ("random(0)", E::InvalidNumber { algorithm: "random", option: "draws", value: "0".into() }),
            ("random()", E::InvalidNumber { algorithm: "random", option: "draws", value: String::new() }),
            ("random(x)", E::InvalidNumber { algorithm: "random", option: "draws", value: "x".into() }),
            ("random 2", E::UnexpectedArgument { algorithm: "random", token: "2".into() }),
        ];
        for (text, want) in cases {
            assert_eq!(Algorithm::parse(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_token() {
        let e = Algorithm::parse("uri len abc").unwrap_err().to_string();
        assert!(e.contains("len") && e.contains("abc"), "{e}");
        let e = Algorithm::parse("hdr(a:b)").unwrap_err().to_string();
        assert!(e.contains("a:b"), "{e}");
    }

    #[test]
    fn parses_hash_type() {
        use HashFunction as F;
        use HashMethod as M;
        let ht = |method, function, avalanche| HashType { method, function, avalanche };
        assert_eq!(HashType::parse("map-based"), Ok(ht(M::MapBased, F::Sdbm, false)));
        // A bare `consistent` is sdbm with avalanche, as in HAProxy; naming a function drops it.
        assert_eq!(HashType::parse(" consistent "), Ok(ht(M::Consistent, F::Sdbm, true)));
        assert_eq!(HashType::parse("consistent sdbm"), Ok(ht(M::Consistent, F::Sdbm, false)));
        assert_eq!(HashType::parse("consistent djb2 avalanche"), Ok(ht(M::Consistent, F::Djb2, true)));
        assert_eq!(HashType::parse("map-based wt6"), Ok(ht(M::MapBased, F::Wt6, false)));
        assert_eq!(HashType::parse("map-based crc32 avalanche"), Ok(ht(M::MapBased, F::Crc32, true)));
        assert_eq!("consistent".parse::<HashType>(), Ok(HashType::consistent()));
        assert_eq!(HashType::default(), HashType::map_based());
        for text in ["map-based", "consistent", "consistent sdbm", "map-based djb2 avalanche", "consistent wt6"] {
            assert_eq!(HashType::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(HashType::parse("map-based sdbm").unwrap().to_string(), "map-based");
        assert_eq!(HashType::parse("ketama"), Err(BalanceError::UnknownHashType { value: "ketama".into() }));
        assert_eq!(HashType::parse(""), Err(BalanceError::UnknownHashType { value: String::new() }));
        assert_eq!(HashType::parse("avalanche"), Err(BalanceError::UnknownHashType { value: "avalanche".into() }));
        assert_eq!(HashType::parse("consistent md5"), Err(BalanceError::UnknownHashFunction { value: "md5".into() }));
        assert_eq!(
            HashType::parse("consistent sdbm fast"),
            Err(BalanceError::UnknownHashModifier { value: "fast".into() })
        );
    }

    #[test]
    fn is_hash_marks_key_algorithms() {
        assert!(Algorithm::Source.is_hash());
        assert!(Algorithm::Hdr { name: "x".into(), domain_only: true }.is_hash());
        assert!(Algorithm::Hash("src".into()).is_hash());
        assert!(Algorithm::RdpCookie("mstshash".into()).is_hash());
        assert!(!Algorithm::RoundRobin.is_hash());
        assert!(!Algorithm::Random { draws: 2 }.is_hash());
    }
}
