//! Match methods (HAProxy's `-m str|beg|end|sub|dir|dom|reg|len|found|int|ip|bool|bin`) and
//! their patterns, compiled once at load time: the one pattern compiler of HTTP and TCP ACLs.
//! An ACL matches a sample when any inline pattern matches, or any pattern of its `-f` files
//! (looked up in the shared map store at each match, so `add acl` / `del acl` take effect at
//! once).

use super::RoutingError;
use crate::sample::{DIR_DELIMS, DOM_DELIMS, Maps, MatchKind, Sample, SmpType, Value};
use regex::bytes::{Regex, RegexBuilder};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

/// No maps and no pattern files.
#[cfg(test)]
pub struct NoPatterns;

#[cfg(test)]
impl Maps for NoPatterns {
    fn lookup(&self, _: &str, _: MatchKind, _: &Value) -> Option<&[u8]> {
        None
    }
}

/// What kind of samples a fetch produces, to check the match method against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    Ip,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrMatch {
    Exact,
    Beg,
    End,
    Sub,
    /// Slash-delimited: `path_dir img` matches `/static/img/a.png`.
    Dir,
    /// Dot-delimited: `hdr_dom(host) example.com` matches `www.example.com`.
    Dom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchMethod {
    Str(StrMatch),
    Reg,
    Len,
    Found,
    Int,
    Ip,
    Bool,
    /// Raw bytes against hex patterns (`req.payload(0,3) -m bin 160301`).
    Bin,
}

impl MatchMethod {
    /// The `-m` names.
    pub(crate) fn parse(name: &str) -> Option<MatchMethod> {
        Some(match name {
            "str" => MatchMethod::Str(StrMatch::Exact),
            "beg" => MatchMethod::Str(StrMatch::Beg),
            "end" => MatchMethod::Str(StrMatch::End),
            "sub" => MatchMethod::Str(StrMatch::Sub),
            "dir" => MatchMethod::Str(StrMatch::Dir),
            "dom" => MatchMethod::Str(StrMatch::Dom),
            "reg" => MatchMethod::Reg,
            "len" => MatchMethod::Len,
            "found" => MatchMethod::Found,
            "int" => MatchMethod::Int,
            "ip" => MatchMethod::Ip,
            "bool" => MatchMethod::Bool,
            "bin" => MatchMethod::Bin,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            MatchMethod::Str(StrMatch::Exact) => "str",
            MatchMethod::Str(StrMatch::Beg) => "beg",
            MatchMethod::Str(StrMatch::End) => "end",
            MatchMethod::Str(StrMatch::Sub) => "sub",
            MatchMethod::Str(StrMatch::Dir) => "dir",
            MatchMethod::Str(StrMatch::Dom) => "dom",
            MatchMethod::Reg => "reg",
            MatchMethod::Len => "len",
            MatchMethod::Found => "found",
            MatchMethod::Int => "int",
            MatchMethod::Ip => "ip",
            MatchMethod::Bool => "bool",
            MatchMethod::Bin => "bin",
        }
    }

    /// The method used when neither a `_suffix` nor `-m` names one.
    pub(crate) fn default_for(kind: Kind) -> MatchMethod {
        match kind {
            Kind::Str => MatchMethod::Str(StrMatch::Exact),
            Kind::Int => MatchMethod::Int,
            Kind::Ip => MatchMethod::Ip,
            Kind::Bool => MatchMethod::Bool,
        }
    }

    /// HAProxy's default for a fetch of this output type (TCP ACLs; HTTP ACLs match binary
    /// samples as strings, see [`MatchMethod::default_for`]).
    pub(crate) fn default_for_type(t: SmpType) -> MatchMethod {
        match t {
            SmpType::Bin => MatchMethod::Bin,
            SmpType::Bool => MatchMethod::Bool,
            SmpType::Sint => MatchMethod::Int,
            SmpType::Addr | SmpType::Ipv4 | SmpType::Ipv6 => MatchMethod::Ip,
            SmpType::Str | SmpType::Meth => MatchMethod::Str(StrMatch::Exact),
        }
    }

    /// `found` and `bool` test the sample itself and take no patterns.
    pub(crate) fn takes_patterns(self) -> bool {
        !matches!(self, MatchMethod::Found | MatchMethod::Bool)
    }

    /// The sample type this method reads (HAProxy's `expect_type`); `None` for `found`.
    pub(crate) fn wants(self) -> Option<SmpType> {
        match self {
            MatchMethod::Found => None,
            MatchMethod::Str(_) | MatchMethod::Reg | MatchMethod::Len => Some(SmpType::Str),
            MatchMethod::Int | MatchMethod::Bool => Some(SmpType::Sint),
            MatchMethod::Ip => Some(SmpType::Addr),
            MatchMethod::Bin => Some(SmpType::Bin),
        }
    }

    /// How the map store indexes `-f` files for this method (`None`: it takes no patterns).
    pub(crate) fn kind(self) -> Option<MatchKind> {
        Some(match self {
            MatchMethod::Found | MatchMethod::Bool => return None,
            MatchMethod::Int | MatchMethod::Len => MatchKind::Int,
            MatchMethod::Ip => MatchKind::Ip,
            MatchMethod::Bin | MatchMethod::Str(StrMatch::Exact) => MatchKind::Str,
            MatchMethod::Str(StrMatch::Beg) => MatchKind::Beg,
            MatchMethod::Str(StrMatch::End) => MatchKind::End,
            MatchMethod::Str(StrMatch::Sub) => MatchKind::Sub,
            MatchMethod::Str(StrMatch::Dir) => MatchKind::Dir,
            MatchMethod::Str(StrMatch::Dom) => MatchKind::Dom,
            MatchMethod::Reg => MatchKind::Reg,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            _ => return None,
        })
    }
}

/// `eq 3`-style comparisons, or inclusive ranges `1024:65535`, `:1023`, `1024:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntTest {
    Cmp(Op, i64),
    Range(Option<i64>, Option<i64>),
}

impl IntTest {
    fn matches(self, n: i64) -> bool {
        match self {
            IntTest::Cmp(Op::Eq, v) => n == v,
            IntTest::Cmp(Op::Ne, v) => n != v,
            IntTest::Cmp(Op::Lt, v) => n < v,
            IntTest::Cmp(Op::Le, v) => n <= v,
            IntTest::Cmp(Op::Gt, v) => n > v,
            IntTest::Cmp(Op::Ge, v) => n >= v,
            IntTest::Range(lo, hi) => lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi),
        }
    }
}

fn int_value(s: &str) -> Result<i64, RoutingError> {
    s.parse().map_err(|_| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            RoutingError::BadOperator { operator: s.to_string() }
        } else {
            RoutingError::BadInteger { pattern: s.to_string() }
        }
    })
}

/// An operator applies to every value after it, up to the next operator (HAProxy memorises
/// it); without one, each value is an exact number or a range.
fn int_tests(patterns: &[String]) -> Result<Vec<IntTest>, RoutingError> {
    let mut op: Option<(Op, &String)> = None;
    // An operator waits for its first value.
    let mut waiting = false;
    let mut tests = Vec::with_capacity(patterns.len());
    for v in patterns {
        if let Some(o) = Op::parse(v) {
            if let (true, Some((_, name))) = (waiting, op) {
                return Err(RoutingError::MissingOperand { operator: name.clone() });
            }
            (op, waiting) = (Some((o, v)), true);
            continue;
        }
        waiting = false;
        tests.push(int_test(op, v)?);
    }
    if let (true, Some((_, name))) = (waiting, op) {
        return Err(RoutingError::MissingOperand { operator: name.clone() });
    }
    Ok(tests)
}

fn int_test(op: Option<(Op, &String)>, v: &str) -> Result<IntTest, RoutingError> {
    match (op, v.split_once(':')) {
        (Some((_, name)), Some(_)) => {
            Err(RoutingError::OperatorWithRange { operator: name.clone(), pattern: v.to_string() })
        }
        (Some((op, _)), None) => Ok(IntTest::Cmp(op, int_value(v)?)),
        (None, None) => Ok(IntTest::Cmp(Op::Eq, int_value(v)?)),
        (None, Some((lo, hi))) => {
            let bad = || RoutingError::BadInteger { pattern: v.to_string() };
            let bound = |s: &str| {
                if s.is_empty() { Ok(None) } else { s.parse().map(Some).map_err(|_| bad()) }
            };
            let (lo, hi) = (bound(lo)?, bound(hi)?);
            match (lo, hi) {
                (None, None) => Err(bad()),
                (Some(l), Some(h)) if l > h => Err(bad()),
                _ => Ok(IntTest::Range(lo, hi)),
            }
        }
    }
}

/// An address or network, kept in canonical form (IPv4-mapped IPv6 becomes IPv4) so `src
/// 192.0.2.0/24` matches clients accepted on a dual-stack socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
}

impl Net {
    pub fn parse(pattern: &str) -> Result<Net, RoutingError> {
        let bad = |reason: &'static str| RoutingError::BadAddress { pattern: pattern.to_string(), reason };
        let (addr, prefix) = match pattern.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (pattern, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address (host names are not resolved)"))?;
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let len = match (prefix, IpAddr::from(v4) == addr) {
                    (None, _) => 32,
                    // A dotted mask is HAProxy syntax too: 10.0.0.0/255.0.0.0.
                    (Some(p), true) if p.contains('.') => {
                        let m: Ipv4Addr = p.parse().map_err(|_| bad("bad netmask"))?;
                        let m = u32::from(m);
                        if m.leading_ones() + m.trailing_zeros() != 32 {
                            return Err(bad("netmask is not contiguous"));
                        }
                        m.leading_ones()
                    }
                    (Some(p), true) => {
                        p.parse::<u32>().ok().filter(|&l| l <= 32).ok_or_else(|| bad("prefix length must be 0..=32"))?
                    }
                    // ::ffff:a.b.c.d/len with len >= 96 covers IPv4 addresses.
                    (Some(p), false) => match p.parse::<u32>() {
                        Ok(l) if (96..=128).contains(&l) => l - 96,
                        Ok(l) if l < 96 => return Net::v6(addr, l, pattern),
                        _ => return Err(bad("prefix length must be 0..=128")),
                    },
                };
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                Ok(Net::V4 { addr: u32::from(v4) & mask, mask })
            }
            IpAddr::V6(_) => {
                let len = match prefix {
                    None => 128,
                    Some(p) => p
                        .parse::<u32>()
                        .ok()
                        .filter(|&l| l <= 128)
                        .ok_or_else(|| bad("prefix length must be 0..=128"))?,
                };
                Net::v6(addr, len, pattern)
            }
        }
    }

    fn v6(addr: IpAddr, len: u32, pattern: &str) -> Result<Net, RoutingError> {
        let IpAddr::V6(v6) = addr else {
            return Err(RoutingError::BadAddress { pattern: pattern.to_string(), reason: "not an IPv6 address" });
        };
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        Ok(Net::V6 { addr: u128::from(v6) & mask, mask })
    }

    pub fn contains(self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Net::V4 { addr, mask }, IpAddr::V4(a)) => u32::from(a) & mask == addr,
            (Net::V6 { addr, mask }, IpAddr::V6(a)) => u128::from(a) & mask == addr,
            // IPv6 networks wide enough to cover ::ffff:0:0/96 hold IPv4 clients too.
            (Net::V6 { addr, mask }, IpAddr::V4(a)) => u128::from(a.to_ipv6_mapped()) & mask == addr,
            (Net::V4 { .. }, IpAddr::V6(_)) => false,
        }
    }
}

/// Up to this many exact patterns are compared one by one instead of looked up in a set.
const FEW: usize = 8;

/// Compiled patterns of one ACL.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Found,
    Bool,
    /// Exact strings: a set lookup, so long pattern files stay cheap. With `-i` the set holds
    /// lowercase patterns.
    Exact {
        icase: bool,
        set: HashSet<Box<[u8]>>,
    },
    Str {
        how: StrMatch,
        icase: bool,
        patterns: Vec<Box<[u8]>>,
    },
    Reg(Vec<Regex>),
    Len(Vec<IntTest>),
    Int(Vec<IntTest>),
    Ip(Vec<Net>),
}

impl Matcher {
    pub(crate) fn compile(method: MatchMethod, icase: bool, patterns: &[String]) -> Result<Matcher, RoutingError> {
        Ok(match method {
            MatchMethod::Found => Matcher::Found,
            MatchMethod::Bool => Matcher::Bool,
            // A few patterns are compared in turn: cheaper than hashing the sample.
            MatchMethod::Str(StrMatch::Exact) if patterns.len() <= FEW => Matcher::Str {
                how: StrMatch::Exact,
                icase,
                patterns: patterns.iter().map(|p| p.as_bytes().into()).collect(),
            },
            MatchMethod::Str(StrMatch::Exact) => Matcher::Exact {
                icase,
                set: patterns
                    .iter()
                    .map(|p| if icase { p.to_ascii_lowercase() } else { p.clone() }.into_bytes().into_boxed_slice())
                    .collect(),
            },
            MatchMethod::Str(how) => Matcher::Str {
                how,
                icase,
                patterns: patterns
                    .iter()
                    .map(|p| match how {
                        StrMatch::Dir => p.trim_matches(|c: char| DIR_DELIMS.contains(&(c as u8))),
                        StrMatch::Dom => p.trim_matches(|c: char| DOM_DELIMS.contains(&(c as u8))),
                        _ => p,
                    })
                    .map(|p| p.as_bytes().into())
                    .collect(),
            },
            MatchMethod::Reg => Matcher::Reg(
                patterns
                    .iter()
                    .map(|p| {
                        RegexBuilder::new(p)
                            .case_insensitive(icase)
                            .build()
                            .map_err(|e| RoutingError::BadRegex { pattern: p.clone(), error: e.to_string() })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            MatchMethod::Bin => Matcher::Exact {
                icase,
                set: patterns
                    .iter()
                    .map(|p| {
                        let b = hex(p).ok_or_else(|| RoutingError::BadHex { pattern: p.clone() })?;
                        Ok(if icase { b.to_ascii_lowercase() } else { b }.into_boxed_slice())
                    })
                    .collect::<Result<_, RoutingError>>()?,
            },
            MatchMethod::Len => Matcher::Len(int_tests(patterns)?),
            MatchMethod::Int => Matcher::Int(int_tests(patterns)?),
            MatchMethod::Ip => Matcher::Ip(patterns.iter().map(|p| Net::parse(p)).collect::<Result<_, _>>()?),
        })
    }

    pub(crate) fn matches(&self, sample: Sample<'_>) -> bool {
        match (self, sample) {
            (Matcher::Found, _) => true,
            (Matcher::Bool, Sample::Bool(b)) => b,
            (Matcher::Bool, Sample::Int(n)) => n != 0,
            (Matcher::Exact { icase: true, set }, Sample::Str(s)) if s.iter().any(u8::is_ascii_uppercase) => {
                // Folded on the stack: host names and methods fit.
                let mut buf = [0u8; 128];
                match buf.get_mut(..s.len()) {
                    Some(b) => {
                        b.copy_from_slice(s);
                        b.make_ascii_lowercase();
                        set.contains(&b[..])
                    }
                    None => set.contains(&s.to_ascii_lowercase()[..]),
                }
            }
            (Matcher::Exact { set, .. }, Sample::Str(s)) => set.contains(s),
            (Matcher::Str { how, icase, patterns }, Sample::Str(s)) => {
                patterns.iter().any(|p| str_match(*how, *icase, s, p))
            }
            (Matcher::Reg(res), Sample::Str(s)) => res.iter().any(|r| r.is_match(s)),
            (Matcher::Len(tests), Sample::Str(s)) => {
                let n = i64::try_from(s.len()).unwrap_or(i64::MAX);
                tests.iter().any(|t| t.matches(n))
            }
            (Matcher::Int(tests), Sample::Int(n)) => tests.iter().any(|t| t.matches(n)),
            (Matcher::Ip(nets), Sample::Ip(ip)) => nets.iter().any(|n| n.contains(ip)),
            _ => false,
        }
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// An ACL's match method with its inline patterns and `-f` files.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    pub(crate) method: MatchMethod,
    pub(crate) icase: bool,
    inline: Matcher,
    /// `-f` files, by their name in the configuration (the map store's key).
    pub(crate) files: Vec<String>,
}

impl Patterns {
    /// Compiles inline patterns; `files` are named, not read (validation loads them into the
    /// map store).
    pub(crate) fn compile(
        method: MatchMethod,
        icase: bool,
        patterns: &[String],
        files: Vec<String>,
    ) -> Result<Patterns, RoutingError> {
        Ok(Patterns { method, icase, inline: Matcher::compile(method, icase, patterns)?, files })
    }

    /// Whether one sample matches: cast to the type the method reads, as HAProxy does, then
    /// tested against the inline patterns and the `-f` files.
    pub(crate) fn test(&self, v: Value, maps: &dyn Maps) -> bool {
        let Some(want) = self.method.wants() else {
            return true;
        };
        let Some(v) = v.cast(want) else {
            return false;
        };
        let sample = match &v {
            Value::Str(b) | Value::Bin(b) => Sample::Str(b),
            Value::Meth(m) => Sample::Str(m.as_bytes()),
            Value::Sint(n) => Sample::Int(*n),
            Value::Bool(b) => Sample::Bool(*b),
            Value::Ipv4(a) => Sample::Ip(IpAddr::V4(*a)),
            Value::Ipv6(a) => Sample::Ip(IpAddr::V6(*a)),
        };
        self.inline.matches(sample) || (!self.files.is_empty() && self.files_match(v, maps))
    }

    /// [`Patterns::test`] for a sample lent by the request: no copy when it already has the
    /// type the method reads (and no `-f` file has to be asked).
    pub(crate) fn test_lent(&self, s: Sample<'_>, maps: &dyn Maps) -> bool {
        let ready = match (self.method.wants(), s) {
            (None, _) => return true,
            (Some(SmpType::Str), Sample::Str(_))
            | (Some(SmpType::Addr), Sample::Ip(_))
            | (Some(SmpType::Sint), Sample::Int(_)) => true,
            _ => false,
        };
        if ready && self.inline.matches(s) {
            return true;
        }
        if ready && self.files.is_empty() {
            return false;
        }
        let v = match s {
            Sample::Str(b) => Value::Str(b.to_vec()),
            Sample::Int(n) => Value::Sint(n),
            Sample::Bool(b) => Value::Bool(b),
            Sample::Ip(std::net::IpAddr::V4(a)) => Value::Ipv4(a),
            Sample::Ip(std::net::IpAddr::V6(a)) => Value::Ipv6(a),
        };
        if ready { self.files_match(v, maps) } else { self.test(v, maps) }
    }

    /// The store's key for a sample already cast: its length for `len`, lower-cased for `-i`
    /// (the store folds the files' patterns the same way).
    fn files_match(&self, v: Value, maps: &dyn Maps) -> bool {
        let Some(kind) = self.method.kind() else {
            return false;
        };
        let key = match (self.method, v) {
            (MatchMethod::Len, Value::Str(b) | Value::Bin(b)) => Value::Sint(b.len() as i64),
            (MatchMethod::Reg, Value::Bin(b)) => Value::Str(b),
            (MatchMethod::Reg, v) => v,
            (_, Value::Str(b) | Value::Bin(b)) if self.icase => Value::Str(b.to_ascii_lowercase()),
            (_, Value::Bin(b)) => Value::Str(b),
            (_, v) => v,
        };
        self.files.iter().any(|f| maps.contains(f, kind, self.icase, &key))
    }
}

fn eq(a: &[u8], b: &[u8], icase: bool) -> bool {
    if icase { a.eq_ignore_ascii_case(b) } else { a == b }
}

fn str_match(how: StrMatch, icase: bool, s: &[u8], p: &[u8]) -> bool {
    match how {
        StrMatch::Exact => eq(s, p, icase),
        StrMatch::Beg => s.get(..p.len()).is_some_and(|head| eq(head, p, icase)),
        StrMatch::End => s.len() >= p.len() && eq(&s[s.len() - p.len()..], p, icase),
        StrMatch::Sub => p.is_empty() || s.windows(p.len()).any(|w| eq(w, p, icase)),
        StrMatch::Dir => word_match(s, p, DIR_DELIMS, icase),
        StrMatch::Dom => word_match(s, p, DOM_DELIMS, icase),
    }
}

/// `p` occurs in `s` with a delimiter (or the end of `s`) on both sides (the matcher maps use
/// too). `p` was trimmed of delimiters at compile time; an empty `p` matches nothing.
fn word_match(s: &[u8], p: &[u8], delims: &[u8], icase: bool) -> bool {
    !p.is_empty() && crate::sample::match_word(s, p, delims, icase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(method: &str, icase: bool, pats: &[&str]) -> Matcher {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Matcher::compile(MatchMethod::parse(method).unwrap(), icase, &pats).unwrap()
    }

    fn s(x: &str) -> Sample<'_> {
        Sample::Str(x.as_bytes())
    }

    fn ip(x: &str) -> Sample<'static> {
        Sample::Ip(x.parse().unwrap())
    }

    fn err(method: &str, pats: &[&str]) -> RoutingError {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Matcher::compile(MatchMethod::parse(method).unwrap(), false, &pats).unwrap_err()
    }

    #[test]
    fn exact_with_and_without_case() {
        let cs = m("str", false, &["GET", "HEAD"]);
        assert!(cs.matches(s("GET")) && cs.matches(s("HEAD")));
        assert!(!cs.matches(s("get")) && !cs.matches(s("GE")) && !cs.matches(s("POST")));
        let ci = m("str", true, &["Example.COM"]);
        assert!(ci.matches(s("example.com")) && ci.matches(s("EXAMPLE.com")));
        assert!(!ci.matches(s("www.example.com")));
    }

    #[test]
    fn exact_sets_beyond_a_few_patterns() {
        let many: Vec<String> = (0..20).map(|i| format!("Host{i}.example")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cs = m("str", false, &many);
        assert!(matches!(cs, Matcher::Exact { .. }) && matches!(m("str", false, &["a"]), Matcher::Str { .. }));
        assert!(cs.matches(s("Host19.example")) && !cs.matches(s("host19.example")));
        let ci = m("str", true, &many);
        assert!(ci.matches(s("HOST7.EXAMPLE")) && !ci.matches(s("host7.example.com")));
    }

    #[test]
    fn begin_end_sub() {
        let beg = m("beg", false, &["/api", "/static/"]);
        assert!(beg.matches(s("/api/v1")) && beg.matches(s("/static/x")) && beg.matches(s("/api")));
        assert!(!beg.matches(s("/ap")) && !beg.matches(s("/API/v1")));
        assert!(m("beg", true, &["www."]).matches(s("WWW.example.com")));
        let end = m("end", false, &[".php", ".html"]);
        assert!(end.matches(s("/a/index.php")) && end.matches(s("/x.html")));
        assert!(!end.matches(s("/x.php5")) && !end.matches(s("php")));
        assert!(m("end", true, &[".PHP"]).matches(s("/a.php")));
        let sub = m("sub", false, &["admin"]);
        assert!(sub.matches(s("/x/admin/y")) && !sub.matches(s("/x/Admin")));
        assert!(m("sub", true, &["admin"]).matches(s("/ADMIN")));
        assert!(m("sub", false, &[""]).matches(s("anything")));
    }

    #[test]
    fn dir_and_dom_match_whole_words() {
        let dir = m("dir", false, &["img"]);
        assert!(dir.matches(s("/img/a.png")) && dir.matches(s("/static/img")) && dir.matches(s("img")));
        assert!(!dir.matches(s("/images/a.png")) && !dir.matches(s("/xim/g")));
        assert!(m("dir", false, &["/static/img/"]).matches(s("/a/static/img/b")));
        assert!(m("dir", true, &["IMG"]).matches(s("/img/x")));
        assert!(!m("dir", false, &["/"]).matches(s("/a/")));
        let dom = m("dom", false, &["example.com"]);
        assert!(dom.matches(s("www.example.com")) && dom.matches(s("example.com")));
        assert!(!dom.matches(s("badexample.com")) && !dom.matches(s("example.community")));
        // HAProxy's delimiters: `?` ends a directory; `:`, `/` and `?` end a domain too.
        assert!(dom.matches(s("example.com:8080")) && dom.matches(s("www.example.com/x?y")));
        assert!(dir.matches(s("/static/img?size=2")) && !dir.matches(s("/img:x")));
        assert!(m("dom", false, &[".example.com:"]).matches(s("example.com")));
    }

    #[test]
    fn regex_and_case() {
        let r = m("reg", false, &["/*.php$", r"^/api/v[0-9]+/"]);
        assert!(r.matches(s("/index.php")) && r.matches(s("/api/v2/users")));
        assert!(!r.matches(s("/index.php?x=1")) && !r.matches(s("/INDEX.PHP")));
        assert!(m("reg", true, &[r"\.php$"]).matches(s("/INDEX.PHP")));
        assert!(matches!(err("reg", &["(unclosed"]), RoutingError::BadRegex { pattern, .. } if pattern == "(unclosed"));
    }

    #[test]
    fn length() {
        let l = m("len", false, &["gt", "3"]);
        assert!(l.matches(s("abcd")) && !l.matches(s("abc")));
        assert!(m("len", false, &["0"]).matches(s("")));
    }

    #[test]
    fn integers_operators_and_ranges() {
        let t = |pats: &[&str], n: i64| m("int", false, pats).matches(Sample::Int(n));
        assert!(t(&["80", "8080"], 8080) && !t(&["80", "8080"], 81));
        assert!(t(&["eq", "3"], 3) && !t(&["eq", "3"], 4));
        assert!(t(&["ne", "3"], 4) && !t(&["ne", "3"], 3));
        assert!(t(&["lt", "1"], 0) && !t(&["lt", "1"], 1));
        assert!(t(&["le", "1"], 1) && !t(&["le", "1"], 2));
        assert!(t(&["gt", "0"], 1) && !t(&["gt", "0"], 0));
        assert!(t(&["ge", "2"], 2) && !t(&["ge", "2"], 1));
        assert!(t(&["1024:65535"], 1024) && t(&["1024:65535"], 65535) && !t(&["1024:65535"], 1023));
        assert!(t(&[":1023"], 0) && !t(&[":1023"], 1024));
        assert!(t(&["1024:"], 40000) && !t(&["1024:"], 1));
        assert!(t(&["-5:-1"], -3));
        // Operator applies to all values: any matches.
        assert!(t(&["lt", "1", "10"], 5));
        // Integer tests never match a string sample.
        assert!(!m("int", false, &["1"]).matches(s("1")));
    }

    #[test]
    fn integer_errors() {
        assert_eq!(err("int", &["lt"]), RoutingError::MissingOperand { operator: "lt".into() });
        assert_eq!(err("int", &["abc"]), RoutingError::BadOperator { operator: "abc".into() });
        assert_eq!(err("int", &["1", "less", "2"]), RoutingError::BadOperator { operator: "less".into() });
        assert_eq!(err("int", &["1x"]), RoutingError::BadInteger { pattern: "1x".into() });
        assert_eq!(err("int", &["9:1"]), RoutingError::BadInteger { pattern: "9:1".into() });
        assert_eq!(err("int", &[":"]), RoutingError::BadInteger { pattern: ":".into() });
        assert_eq!(err("int", &["1:x"]), RoutingError::BadInteger { pattern: "1:x".into() });
        assert_eq!(
            err("int", &["gt", "1:5"]),
            RoutingError::OperatorWithRange { operator: "gt".into(), pattern: "1:5".into() }
        );
    }

    #[test]
    fn ipv4_networks() {
        let n = m("ip", false, &["192.0.2.0/24", "10.0.0.1", "172.16.0.0/255.240.0.0"]);
        for a in ["192.0.2.1", "192.0.2.255", "10.0.0.1", "172.31.255.255", "::ffff:192.0.2.7"] {
            assert!(n.matches(ip(a)), "{a}");
        }
        for a in ["192.0.3.1", "10.0.0.2", "172.32.0.0", "2001:db8::1"] {
            assert!(!n.matches(ip(a)), "{a}");
        }
        // Host bits in the network are ignored; /0 matches every IPv4 address.
        assert!(m("ip", false, &["10.1.2.3/8"]).matches(ip("10.200.0.1")));
        assert!(m("ip", false, &["0.0.0.0/0"]).matches(ip("203.0.113.9")));
    }

    #[test]
    fn ipv6_networks() {
        let n = m("ip", false, &["2001:db8::/32", "::1"]);
        assert!(n.matches(ip("2001:db8:1::5")) && n.matches(ip("::1")));
        assert!(!n.matches(ip("2001:db9::1")) && !n.matches(ip("127.0.0.1")));
        assert!(m("ip", false, &["::/0"]).matches(ip("fe80::1")));
        assert!(m("ip", false, &["::/0"]).matches(ip("192.0.2.1")));
        assert!(!m("ip", false, &["2001:db8::/32"]).matches(ip("192.0.2.1")));
        // A mapped network covers the plain IPv4 addresses too.
        let mapped = m("ip", false, &["::ffff:192.0.2.0/120"]);
        assert!(mapped.matches(ip("192.0.2.9")) && !mapped.matches(ip("192.0.3.9")));
        assert!(m("ip", false, &["::ffff:0:0/64"]).matches(ip("::ffff:0:1")));
    }

    #[test]
    fn address_errors() {
        let reason = |p: &str| match err("ip", &[p]) {
            RoutingError::BadAddress { pattern, reason } => {
                assert_eq!(pattern, p);
                reason
            }
            e => panic!("{e:?}"),
        };
        assert!(reason("example.com").contains("not an IP"));
        assert!(reason("192.0.2.0/33").contains("0..=32"));
        assert!(reason("192.0.2.0/x").contains("0..=32"));
        assert!(reason("2001:db8::/129").contains("0..=128"));
        assert!(reason("10.0.0.0/255.0.255.0").contains("contiguous"));
        assert!(reason("10.0.0.0/255.0.0").contains("netmask"));
        assert!(reason("::ffff:1.2.3.4/200").contains("0..=128"));
    }

    #[test]
    fn found_and_bool() {
        assert!(m("found", false, &[]).matches(s("")));
        assert!(m("bool", false, &[]).matches(Sample::Bool(true)));
        assert!(!m("bool", false, &[]).matches(Sample::Bool(false)));
        assert!(m("bool", false, &[]).matches(Sample::Int(2)) && !m("bool", false, &[]).matches(Sample::Int(0)));
    }

    #[test]
    fn methods_know_their_kinds() {
        for name in ["str", "beg", "end", "sub", "dir", "dom", "reg", "len", "found", "int", "ip", "bool"] {
            assert_eq!(MatchMethod::parse(name).unwrap().name(), name);
        }
        assert_eq!(MatchMethod::parse("regex"), None);
        assert!(!MatchMethod::Found.takes_patterns() && MatchMethod::Int.takes_patterns());
        assert_eq!(MatchMethod::default_for(Kind::Ip), MatchMethod::Ip);
    }

    // Through `Patterns`, as TCP and HTTP ACLs call it: samples of any type are cast first.
    fn pat(method: &str, icase: bool, pats: &[&str]) -> Patterns {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Patterns::compile(MatchMethod::parse(method).unwrap(), icase, &pats, Vec::new()).unwrap()
    }

    #[test]
    fn values_are_cast_to_the_method() {
        let t = |p: &Patterns, v: Value| p.test(v, &NoPatterns);
        assert!(t(&pat("str", true, &["A.Example"]), Value::str("a.EXAMPLE")));
        assert!(t(&pat("end", true, &[".Example.com"]), Value::str("www.example.COM")));
        assert!(t(&pat("reg", true, &["^A+$"]), Value::str("aaa")));
        assert!(t(&pat("len", false, &["gt", "3"]), Value::str("abcd")));
        assert!(!t(&pat("len", false, &["gt", "3"]), Value::str("abc")));
        assert!(t(&pat("bin", false, &["160301"]), Value::Bin(vec![0x16, 3, 1])));
        assert!(!t(&pat("bin", false, &["160301"]), Value::Bin(vec![0x16, 3, 3])));
        assert!(t(&pat("found", false, &[]), Value::str("")));
        assert!(t(&pat("int", false, &["ge", "10"]), Value::str("12")));
        assert!(t(&pat("bool", false, &[]), Value::Bool(true)) && !t(&pat("bool", false, &[]), Value::Bool(false)));
        let ip = pat("ip", false, &["127.0.0.0/8", "::1"]);
        assert!(t(&ip, Value::Ipv4("127.1.2.3".parse().unwrap())) && t(&ip, Value::str("::1")));
        assert!(!t(&ip, Value::Ipv4("10.0.0.1".parse().unwrap())) && !t(&ip, Value::str("nothost")));
        assert!(t(&pat("str", false, &["GET"]), Value::Meth("GET".into())));
    }

    #[test]
    fn operators_apply_until_the_next() {
        let t = |pats: &[&str], n: i64| m("int", false, pats).matches(Sample::Int(n));
        // `1 lt 0`: exactly 1, or below 0.
        assert!(t(&["1", "lt", "0"], 1) && t(&["1", "lt", "0"], -4) && !t(&["1", "lt", "0"], 0));
        assert!(t(&["ge", "10", "le", "2"], 1) && t(&["ge", "10", "le", "2"], 11) && !t(&["ge", "10", "le", "2"], 5));
        assert_eq!(err("int", &["lt", "gt", "3"]), RoutingError::MissingOperand { operator: "lt".into() });
        assert_eq!(err("bin", &["abc"]), RoutingError::BadHex { pattern: "abc".into() });
        assert_eq!(err("bin", &["zz"]), RoutingError::BadHex { pattern: "zz".into() });
    }

    /// Records the keys `-f` lookups ask the store for.
    struct Store(std::cell::RefCell<Vec<(String, MatchKind, bool, Value)>>);

    impl Maps for Store {
        fn lookup(&self, _: &str, _: MatchKind, _: &Value) -> Option<&[u8]> {
            None
        }
        fn contains(&self, file: &str, kind: MatchKind, icase: bool, key: &Value) -> bool {
            self.0.borrow_mut().push((file.to_string(), kind, icase, key.clone()));
            false
        }
    }

    #[test]
    fn files_are_asked_with_the_stores_key() {
        let ask = |method: &str, icase: bool, v: Value| {
            let store = Store(Default::default());
            let p = Patterns::compile(MatchMethod::parse(method).unwrap(), icase, &[], vec!["a.lst".into()]).unwrap();
            assert!(!p.test(v, &store));
            store.0.into_inner().pop().map(|(f, k, i, v)| {
                assert_eq!(f, "a.lst");
                (k, i, v)
            })
        };
        assert_eq!(ask("str", true, Value::str("AbC")), Some((MatchKind::Str, true, Value::str("abc"))));
        assert_eq!(ask("beg", false, Value::str("AbC")), Some((MatchKind::Beg, false, Value::str("AbC"))));
        assert_eq!(ask("reg", true, Value::str("AbC")), Some((MatchKind::Reg, true, Value::str("AbC"))));
        assert_eq!(ask("len", false, Value::str("abc")), Some((MatchKind::Int, false, Value::Sint(3))));
        assert_eq!(ask("int", false, Value::str("42")), Some((MatchKind::Int, false, Value::Sint(42))));
        assert_eq!(ask("bin", false, Value::Bin(vec![1, 2])), Some((MatchKind::Str, false, Value::str("\x01\x02"))));
        let v4 = Value::Ipv4("192.0.2.1".parse().unwrap());
        assert_eq!(ask("ip", false, Value::str("192.0.2.1")), Some((MatchKind::Ip, false, v4)));
        // A sample that cannot be cast never reaches the store.
        assert_eq!(ask("ip", false, Value::str("x")), None);
    }
}
