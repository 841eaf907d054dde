//! ACL match methods (`-m str|beg|end|sub|dir|dom|reg|ip|int|len|bool|found|bin`, `-i`) over
//! typed samples. Inline patterns are indexed with the same `PatternMap` as map files; `-f FILE`
//! patterns are looked up in the shared pattern store so `add acl` / `del acl` take effect at
//! once.

use crate::sample::{MapEntry, MatchKind, PatternMap, SmpType, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Found,
    Bool,
    Int,
    Ip,
    Bin,
    Len,
    Str,
    Beg,
    End,
    Sub,
    Dir,
    Dom,
    Reg,
}

impl Method {
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "found" => Method::Found,
            "bool" => Method::Bool,
            "int" => Method::Int,
            "ip" => Method::Ip,
            "bin" => Method::Bin,
            "len" => Method::Len,
            "str" => Method::Str,
            "beg" => Method::Beg,
            "end" => Method::End,
            "sub" => Method::Sub,
            "dir" => Method::Dir,
            "dom" => Method::Dom,
            "reg" => Method::Reg,
            _ => return None,
        })
    }

    /// HAProxy's default for a fetch of this output type.
    pub fn default_for(t: SmpType) -> Method {
        match t {
            SmpType::Bool => Method::Bool,
            SmpType::Sint => Method::Int,
            SmpType::Addr | SmpType::Ipv4 | SmpType::Ipv6 => Method::Ip,
            SmpType::Bin => Method::Bin,
            SmpType::Str | SmpType::Meth => Method::Str,
        }
    }

    /// The index kind patterns of this method are kept in (`None`: the method takes none).
    pub fn kind(self) -> Option<MatchKind> {
        Some(match self {
            Method::Found | Method::Bool => return None,
            Method::Int | Method::Len => MatchKind::Int,
            Method::Ip => MatchKind::Ip,
            Method::Bin | Method::Str => MatchKind::Str,
            Method::Beg => MatchKind::Beg,
            Method::End => MatchKind::End,
            Method::Sub => MatchKind::Sub,
            Method::Dir => MatchKind::Dir,
            Method::Dom => MatchKind::Dom,
            Method::Reg => MatchKind::Reg,
        })
    }
}

/// Pattern file lookups, answered by the daemon's map store.
pub trait PatternStore {
    /// Whether pattern file `file`, indexed for `kind` (case-folded with `icase`), holds a
    /// pattern matching `key`.
    fn contains(&self, file: &str, kind: MatchKind, icase: bool, key: &Value) -> bool;
}

/// No pattern files: for tests and for conditions that use none.
pub struct NoPatterns;

impl PatternStore for NoPatterns {
    fn contains(&self, _: &str, _: MatchKind, _: bool, _: &Value) -> bool {
        false
    }
}

#[derive(Debug)]
pub struct Matcher {
    pub method: Method,
    pub icase: bool,
    inline: Option<PatternMap>,
    /// `-f` files, by their name in the configuration (the store's key).
    pub files: Vec<String>,
}

/// Folds entries for a case-insensitive index: lower-cased keys, `(?i)` regexes.
pub fn fold_entries(kind: MatchKind, entries: &[MapEntry]) -> Vec<MapEntry> {
    entries
        .iter()
        .map(|e| {
            let key = match kind {
                MatchKind::Reg => [b"(?i)".as_slice(), &e.key].concat(),
                MatchKind::Ip | MatchKind::Int => e.key.clone(),
                _ => e.key.to_ascii_lowercase(),
            };
            MapEntry { line: e.line, key, value: e.value.clone() }
        })
        .collect()
}

impl Matcher {
    /// Compiles inline patterns; `int` patterns take HAProxy's operators (`eq`, `ge 5`, ...)
    /// and ranges (`1024:65535`), `bin` patterns are hex.
    pub fn compile(method: Method, icase: bool, patterns: &[String], files: Vec<String>) -> Result<Matcher, String> {
        let Some(kind) = method.kind() else {
            if let Some(p) = patterns.first() {
                return Err(format!("match method takes no pattern, got `{p}`"));
            }
            return Ok(Matcher { method, icase, inline: None, files });
        };
        let mut entries = Vec::new();
        let mut words = patterns.iter().peekable();
        while let Some(p) = words.next() {
            let mut push = |key: Vec<u8>| entries.push(MapEntry { line: entries.len() + 1, key, value: Vec::new() });
            match method {
                Method::Int | Method::Len if matches!(p.as_str(), "eq" | "ne" | "lt" | "le" | "gt" | "ge") => {
                    let v = words.next().ok_or_else(|| format!("operator `{p}` needs a value"))?;
                    let n: i64 = v.parse().map_err(|_| format!("`{v}` is not an integer"))?;
                    let r = |lo: Option<i64>, hi: Option<i64>| {
                        format!(
                            "{}:{}",
                            lo.map(|x| x.to_string()).unwrap_or_default(),
                            hi.map(|x| x.to_string()).unwrap_or_default()
                        )
                    };
                    match p.as_str() {
                        "eq" => push(n.to_string().into_bytes()),
                        "ne" => {
                            push(r(None, Some(n.saturating_sub(1))).into_bytes());
                            push(r(Some(n.saturating_add(1)), None).into_bytes());
                        }
                        "lt" => push(r(None, Some(n.saturating_sub(1))).into_bytes()),
                        "le" => push(r(None, Some(n)).into_bytes()),
                        "gt" => push(r(Some(n.saturating_add(1)), None).into_bytes()),
                        _ => push(r(Some(n), None).into_bytes()),
                    }
                }
                Method::Bin => push(hex(p).ok_or_else(|| format!("`{p}` is not an even number of hex digits"))?),
                _ => push(p.clone().into_bytes()),
            }
        }
        let entries = if icase { fold_entries(kind, &entries) } else { entries };
        let inline = PatternMap::build(kind, &entries).map_err(|e| format!("pattern `{}`: {}", e.key, e.reason))?;
        Ok(Matcher { method, icase, inline: Some(inline), files })
    }

    /// Whether one sample matches any pattern.
    pub fn matches(&self, v: Value, store: &dyn PatternStore) -> bool {
        let key = match self.method {
            Method::Found => return true,
            Method::Bool => return v.is_true(),
            Method::Int => match v.cast(SmpType::Sint) {
                Some(k) => k,
                None => return false,
            },
            Method::Ip => match v.cast(SmpType::Addr) {
                Some(k) => k,
                None => return false,
            },
            Method::Len => match bytes(v) {
                Some(b) => Value::Sint(b.len() as i64),
                None => return false,
            },
            _ => match bytes(v) {
                Some(b) if self.icase && self.method != Method::Reg => Value::Str(b.to_ascii_lowercase()),
                Some(b) => Value::Str(b),
                None => return false,
            },
        };
        let kind = self.method.kind().unwrap_or(MatchKind::Str);
        self.inline.as_ref().is_some_and(|m| m.lookup(&key).is_some())
            || self.files.iter().any(|f| store.contains(f, kind, self.icase, &key))
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Str(b) | Value::Bin(b) => Some(b),
        other => match other.cast(SmpType::Str)? {
            Value::Str(b) => Some(b),
            _ => None,
        },
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(method: &str, icase: bool, pats: &[&str]) -> Matcher {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Matcher::compile(Method::parse(method).unwrap(), icase, &pats, Vec::new()).unwrap()
    }

    #[test]
    fn string_methods_and_case() {
        let s = |x: &str| Value::str(x);
        assert!(m("str", false, &["a.example"]).matches(s("a.example"), &NoPatterns));
        assert!(!m("str", false, &["a.example"]).matches(s("A.example"), &NoPatterns));
        assert!(m("str", true, &["A.Example"]).matches(s("a.EXAMPLE"), &NoPatterns));
        assert!(m("end", true, &[".Example.com"]).matches(s("www.example.COM"), &NoPatterns));
        assert!(m("beg", false, &["/api"]).matches(s("/api/x"), &NoPatterns));
        assert!(m("reg", true, &["^A+$"]).matches(s("aaa"), &NoPatterns));
        assert!(m("dom", false, &["example.com"]).matches(s("x.example.com"), &NoPatterns));
        assert!(m("len", false, &["gt", "3"]).matches(s("abcd"), &NoPatterns));
        assert!(!m("len", false, &["gt", "3"]).matches(s("abc"), &NoPatterns));
        assert!(m("bin", false, &["160301"]).matches(Value::Bin(vec![0x16, 3, 1]), &NoPatterns));
        assert!(m("found", false, &[]).matches(s(""), &NoPatterns));
    }

    #[test]
    fn ints_ips_and_errors() {
        let i = |n| Value::Sint(n);
        let ge = m("int", false, &["ge", "10"]);
        assert!(ge.matches(i(10), &NoPatterns) && !ge.matches(i(9), &NoPatterns));
        let ne = m("int", false, &["ne", "1"]);
        assert!(ne.matches(i(0), &NoPatterns) && !ne.matches(i(1), &NoPatterns) && ne.matches(i(2), &NoPatterns));
        let r = m("int", false, &["1", "20:30"]);
        assert!(r.matches(i(1), &NoPatterns) && r.matches(i(25), &NoPatterns) && !r.matches(i(2), &NoPatterns));
        let ip = m("ip", false, &["127.0.0.0/8", "::1"]);
        assert!(ip.matches(Value::Ipv4("127.1.2.3".parse().unwrap()), &NoPatterns));
        assert!(ip.matches(Value::str("::1"), &NoPatterns));
        assert!(!ip.matches(Value::Ipv4("10.0.0.1".parse().unwrap()), &NoPatterns));
        let err = |meth: &str, p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            Matcher::compile(Method::parse(meth).unwrap(), false, &p, Vec::new()).unwrap_err()
        };
        assert!(err("ip", &["nothost"]).contains("nothost"));
        assert!(err("int", &["ge"]).contains("needs a value"));
        assert!(err("bin", &["abc"]).contains("hex"));
        assert!(err("found", &["x"]).contains("takes no pattern"));
        assert!(err("reg", &["("]).contains("regex"));
    }
}
