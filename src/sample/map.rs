//! Map and pattern files, and the per-match-kind index a `map_*` converter looks keys up in.
//!
//! A file is parsed once into entries; each (file, match kind) pair the configuration uses is
//! indexed once: a hash for `str`, prefix lengths for `beg` (longest prefix wins, as HAProxy's
//! prefix tree), per-prefix-length hashes for `ip` (longest prefix match), and an ordered list
//! for the kinds HAProxy scans in file order (`end`, `sub`, `dir`, `dom`, `reg`, `int`).
//! Lookups do not allocate.

use super::Maps;
use super::value::{Value, v6_to_v4};
use std::collections::HashMap as StdHashMap;

/// Maps keyed by request data are looked up on every request: foldhash (randomly seeded) instead
/// of SipHash.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    Str,
    Beg,
    End,
    Sub,
    Dir,
    Dom,
    Reg,
    Ip,
    Int,
}

impl MatchKind {
    /// The suffix of `map_<kind>` or the word after `-m`.
    pub fn from_name(name: &str) -> Option<MatchKind> {
        Some(match name {
            "str" => MatchKind::Str,
            "beg" => MatchKind::Beg,
            "end" => MatchKind::End,
            "sub" => MatchKind::Sub,
            "dir" => MatchKind::Dir,
            "dom" => MatchKind::Dom,
            "reg" => MatchKind::Reg,
            "ip" => MatchKind::Ip,
            "int" => MatchKind::Int,
            _ => return None,
        })
    }
}

/// One line of a map file. Pattern files have an empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub line: usize,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: key `{key}`: {reason}")]
pub struct MapError {
    pub line: usize,
    pub key: String,
    pub reason: String,
}

/// Parses a map file as HAProxy does: a `#` in the first column starts a comment line, blank
/// lines are skipped, the key runs from the first non-blank to the next blank, the value is the
/// rest of the line without surrounding blanks. With `pattern_file`, the whole line (leading
/// blanks removed) is the key, spaces included, as for `acl ... -f FILE`.
pub fn parse_map_file(text: &[u8], pattern_file: bool) -> Vec<MapEntry> {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let mut entries = Vec::new();
    for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
        if raw.first() == Some(&b'#') {
            continue;
        }
        // The line ends at the first CR, as `fgets` plus HAProxy's scan do.
        let line = &raw[..raw.iter().position(|&c| c == b'\r').unwrap_or(raw.len())];
        let line = &line[line.iter().position(|c| !blank(c)).unwrap_or(line.len())..];
        if line.is_empty() {
            continue;
        }
        let (key, value) = if pattern_file {
            (line, &line[line.len()..])
        } else {
            let k = line.iter().position(blank).unwrap_or(line.len());
            let rest = &line[k..];
            let rest = &rest[rest.iter().position(|c| !blank(c)).unwrap_or(rest.len())..];
            let end = rest.iter().rposition(|c| !blank(c)).map_or(0, |e| e + 1);
            (&line[..k], &rest[..end])
        };
        entries.push(MapEntry { line: i + 1, key: key.to_vec(), value: value.to_vec() });
    }
    entries
}

/// Folds entries for a case-insensitive index (an ACL's `-i -f FILE`): lower-cased keys,
/// `(?i)` regexes.
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

/// Entry indexes into `values`.
type Idx = u32;

#[derive(Debug)]
enum Index {
    Str(HashMap<Box<[u8]>, Idx>),
    /// Prefix lengths present, longest first, and the prefixes.
    Beg(Vec<usize>, HashMap<Box<[u8]>, Idx>),
    List(Vec<(Box<[u8]>, Idx)>),
    Reg(Vec<(regex::bytes::Regex, Idx)>),
    /// Per prefix length, longest first: network bits to entry.
    Ip(Vec<(u32, HashMap<u32, Idx>)>, Vec<(u32, HashMap<u128, Idx>)>),
    Int(Vec<(i64, i64, Idx)>),
}

/// A map file indexed for one match kind.
#[derive(Debug)]
pub struct PatternMap {
    kind: MatchKind,
    index: Index,
    values: Vec<Box<[u8]>>,
}

impl PatternMap {
    pub fn build(kind: MatchKind, entries: &[MapEntry]) -> Result<PatternMap, MapError> {
        let values = entries.iter().map(|e| e.value.clone().into_boxed_slice()).collect();
        let idx = |i: usize| i as Idx;
        let index = match kind {
            MatchKind::Str => {
                let mut m = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
                for (i, e) in entries.iter().enumerate() {
                    m.entry(e.key.clone().into_boxed_slice()).or_insert(idx(i));
                }
                Index::Str(m)
            }
            MatchKind::Beg => {
                let mut m = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
                for (i, e) in entries.iter().enumerate() {
                    m.entry(e.key.clone().into_boxed_slice()).or_insert(idx(i));
                }
                let mut lens: Vec<usize> = m.keys().map(|k| k.len()).collect();
                lens.sort_unstable_by(|a, b| b.cmp(a));
                lens.dedup();
                Index::Beg(lens, m)
            }
            MatchKind::End | MatchKind::Sub | MatchKind::Dir | MatchKind::Dom => Index::List(
                entries.iter().enumerate().map(|(i, e)| (e.key.clone().into_boxed_slice(), idx(i))).collect(),
            ),
            MatchKind::Reg => {
                let mut list = Vec::with_capacity(entries.len());
                for (i, e) in entries.iter().enumerate() {
                    let re = std::str::from_utf8(&e.key)
                        .map_err(|_| bad(e, "not UTF-8".into()))
                        .and_then(|k| regex::bytes::Regex::new(k).map_err(|err| bad(e, format!("bad regex: {err}"))))?;
                    list.push((re, idx(i)));
                }
                Index::Reg(list)
            }
            MatchKind::Ip => ip_index(entries)?,
            MatchKind::Int => {
                let mut list = Vec::with_capacity(entries.len());
                for (i, e) in entries.iter().enumerate() {
                    let (lo, hi) =
                        int_range(&e.key).ok_or_else(|| bad(e, "expected an integer or a range `lo:hi`".into()))?;
                    list.push((lo, hi, idx(i)));
                }
                Index::Int(list)
            }
        };
        Ok(PatternMap { kind, index, values })
    }

    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of the matching entry. `key` is a string for the string kinds, an integer for
    /// `int` and an address for `ip`; any other type does not match.
    pub fn lookup(&self, key: &Value) -> Option<&[u8]> {
        let i = match (&self.index, key) {
            (Index::Str(m), Value::Str(s)) => *m.get(s.as_slice())?,
            (Index::Beg(lens, m), Value::Str(s)) => {
                lens.iter().filter(|&&l| l <= s.len()).find_map(|&l| m.get(&s[..l]).copied())?
            }
            (Index::List(list), Value::Str(s)) => {
                list.iter().find(|(p, _)| str_match(self.kind, s, p)).map(|(_, i)| *i)?
            }
            (Index::Reg(list), Value::Str(s)) => list.iter().find(|(re, _)| re.is_match(s)).map(|(_, i)| *i)?,
            (Index::Int(list), Value::Sint(n)) => {
                list.iter().find(|(lo, hi, _)| lo <= n && n <= hi).map(|(_, _, i)| *i)?
            }
            (Index::Ip(v4, v6), Value::Ipv4(a)) => lpm4(v4, *a).or_else(|| lpm6(v6, a.to_ipv6_mapped()))?,
            (Index::Ip(v4, v6), Value::Ipv6(a)) => lpm6(v6, *a).or_else(|| lpm4(v4, v6_to_v4(*a)?))?,
            _ => return None,
        };
        Some(&self.values[i as usize])
    }
}

impl PatternMap {
    /// `map_regm`: the first regex entry matching `s`, its value with `\N` replaced by group N.
    pub fn lookup_regm(&self, s: &[u8]) -> Option<Vec<u8>> {
        let Index::Reg(list) = &self.index else { return None };
        for (re, i) in list {
            let mut locs = re.capture_locations();
            if re.captures_read(&mut locs, s).is_some() {
                let mut out = Vec::new();
                super::conv_eval::expand(&self.values[*i as usize], s, &locs, &mut out)?;
                return Some(out);
            }
        }
        None
    }
}

fn bad(e: &MapEntry, reason: String) -> MapError {
    MapError { line: e.line, key: String::from_utf8_lossy(&e.key).into_owned(), reason }
}

fn str_match(kind: MatchKind, s: &[u8], p: &[u8]) -> bool {
    match kind {
        MatchKind::End => s.ends_with(p),
        MatchKind::Sub => memchr::memmem::find(s, p).is_some(),
        MatchKind::Dir => match_word(s, p, DIR_DELIMS, false),
        MatchKind::Dom => match_word(s, p, DOM_DELIMS, false),
        _ => false,
    }
}

/// What separates the words of `-m dir` / `map_dir` and `-m dom` / `map_dom`, as in HAProxy: a
/// query string ends a path, and a port ends a host name.
pub(crate) const DIR_DELIMS: &[u8] = b"/?";
pub(crate) const DOM_DELIMS: &[u8] = b"/?.:";

/// HAProxy's `match_word`: `p` (without its own leading/trailing delimiters) appears in `s`
/// between delimiters or the ends of `s`; ACLs and maps share it.
pub(crate) fn match_word(s: &[u8], p: &[u8], delims: &[u8], icase: bool) -> bool {
    let is_delim = |c: &u8| delims.contains(c);
    let start = p.iter().position(|c| !is_delim(c)).unwrap_or(p.len());
    let end = p.iter().rposition(|c| !is_delim(c)).map_or(start, |e| e + 1);
    let p = &p[start..end];
    if p.len() > s.len() {
        return false;
    }
    let mut may_match = true;
    for i in 0..=s.len() - p.len() {
        if i < s.len() && is_delim(&s[i]) {
            may_match = true;
            continue;
        }
        let here = &s[i..i + p.len()];
        let same = if icase { here.eq_ignore_ascii_case(p) } else { here == p };
        if may_match && same && (i + p.len() == s.len() || is_delim(&s[i + p.len()])) {
            return true;
        }
        may_match = false;
    }
    false
}

fn int_range(key: &[u8]) -> Option<(i64, i64)> {
    let k = std::str::from_utf8(key).ok()?;
    let num = |s: &str| super::args::parse_sint(s);
    Some(match k.split_once(':') {
        None => (num(k)?, num(k)?),
        Some(("", hi)) => (i64::MIN, num(hi)?),
        Some((lo, "")) => (num(lo)?, i64::MAX),
        Some((lo, hi)) => (num(lo)?, num(hi)?),
    })
}

fn ip_index(entries: &[MapEntry]) -> Result<Index, MapError> {
    let mut v4: HashMap<u32, HashMap<u32, Idx>> = HashMap::default();
    let mut v6: HashMap<u32, HashMap<u128, Idx>> = HashMap::default();
    for (i, e) in entries.iter().enumerate() {
        let k = std::str::from_utf8(&e.key).map_err(|_| bad(e, "not UTF-8".into()))?;
        let (addr, mask) = match k.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (k, None),
        };
        if let Ok(a) = addr.parse::<Ipv4Addr>() {
            let bits = match mask {
                None => 32,
                Some(m) => mask4_bits(m).ok_or_else(|| bad(e, "bad IPv4 mask".into()))?,
            };
            let net = u32::from(a) & u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            v4.entry(bits).or_default().entry(net).or_insert(i as Idx);
        } else if let Ok(a) = addr.parse::<Ipv6Addr>() {
            let bits = match mask {
                None => 128,
                Some(m) => {
                    m.parse().ok().filter(|b| *b <= 128).ok_or_else(|| bad(e, "bad IPv6 prefix length".into()))?
                }
            };
            let net = u128::from(a) & u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            v6.entry(bits).or_default().entry(net).or_insert(i as Idx);
        } else {
            return Err(bad(e, "not an IPv4 or IPv6 address or network".into()));
        }
    }
    let mut v4: Vec<_> = v4.into_iter().collect();
    let mut v6: Vec<_> = v6.into_iter().collect();
    v4.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
    v6.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
    Ok(Index::Ip(v4, v6))
}

/// Mask bits of `24` or of a contiguous dotted mask `255.255.255.0`.
fn mask4_bits(m: &str) -> Option<u32> {
    if let Ok(a) = m.parse::<Ipv4Addr>() {
        let n = u32::from(a);
        return (n.leading_ones() + n.trailing_zeros() == 32 || n == 0).then_some(n.leading_ones());
    }
    m.parse().ok().filter(|b| *b <= 32)
}

fn lpm4(levels: &[(u32, HashMap<u32, Idx>)], a: Ipv4Addr) -> Option<Idx> {
    let a = u32::from(a);
    levels.iter().find_map(|(bits, m)| m.get(&(a & u32::MAX.checked_shl(32 - bits).unwrap_or(0))).copied())
}

fn lpm6(levels: &[(u32, HashMap<u128, Idx>)], a: Ipv6Addr) -> Option<Idx> {
    let a = u128::from(a);
    levels.iter().find_map(|(bits, m)| m.get(&(a & u128::MAX.checked_shl(128 - bits).unwrap_or(0))).copied())
}

/// Maps by file name, each indexed for the match kinds the configuration uses.
#[derive(Debug, Default)]
pub struct MapSet {
    maps: HashMap<String, Vec<PatternMap>>,
}

impl MapSet {
    /// Indexes `entries` of file `path` for `kind` (once; a second call for the same pair
    /// replaces the index).
    pub fn insert(&mut self, path: &str, kind: MatchKind, entries: &[MapEntry]) -> Result<(), MapError> {
        let map = PatternMap::build(kind, entries)?;
        let list = self.maps.entry(path.to_string()).or_default();
        list.retain(|m| m.kind != kind);
        list.push(map);
        Ok(())
    }

    pub fn get(&self, path: &str, kind: MatchKind) -> Option<&PatternMap> {
        self.maps.get(path)?.iter().find(|m| m.kind == kind)
    }
}

impl Maps for MapSet {
    fn lookup(&self, path: &str, kind: MatchKind, key: &Value) -> Option<&[u8]> {
        self.get(path, kind)?.lookup(key)
    }
    fn lookup_regm(&self, path: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.get(path, MatchKind::Reg)?.lookup_regm(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kind: MatchKind, text: &str) -> PatternMap {
        PatternMap::build(kind, &parse_map_file(text.as_bytes(), false)).unwrap()
    }

    fn look<'m>(m: &'m PatternMap, key: &str) -> Option<&'m str> {
        m.lookup(&Value::str(key)).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn file_syntax_like_haproxy() {
        let text = b"# comment\n\n  key1   value one  \r\nkey2\tv2\n #notcomment x\nlonely\n\t\nk3 a\rb\n";
        let e = parse_map_file(text, false);
        let got: Vec<(usize, &[u8], &[u8])> = e.iter().map(|e| (e.line, &e.key[..], &e.value[..])).collect();
        assert_eq!(
            got,
            vec![
                (3, &b"key1"[..], &b"value one"[..]),
                (4, b"key2", b"v2"),
                (5, b"#notcomment", b"x"),
                (6, b"lonely", b""),
                (8, b"k3", b"a"),
            ]
        );
        let p = parse_map_file(b"# c\n  /a path with spaces  \n\n", true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, b"/a path with spaces  ");
    }

    #[test]
    fn str_beg_end_sub() {
        let m = map(MatchKind::Str, "a 1\nb 2\na 3\n");
        assert_eq!((look(&m, "a"), look(&m, "b"), look(&m, "c")), (Some("1"), Some("2"), None), "first entry wins");
        let m = map(MatchKind::Beg, "/ root\n/api api\n/api/v2 v2\n");
        assert_eq!(look(&m, "/api/v2/x"), Some("v2"), "longest prefix");
        assert_eq!(look(&m, "/apix"), Some("api"));
        assert_eq!(look(&m, "/x"), Some("root"));
        assert_eq!(look(&m, "x"), None);
        let m = map(MatchKind::End, ".com com\nexample.com ex\n");
        assert_eq!(look(&m, "www.example.com"), Some("com"), "file order");
        let m = map(MatchKind::Sub, "adm a\nmin m\n");
        assert_eq!(look(&m, "/admin"), Some("a"));
        assert_eq!(look(&m, "/user"), None);
    }

    #[test]
    fn dir_and_dom_use_haproxy_delimiters() {
        let m = map(MatchKind::Dir, "/api/ api\n");
        assert_eq!(look(&m, "/v1/api/x"), Some("api"));
        assert_eq!(look(&m, "/v1/api?x"), Some("api"));
        assert_eq!(look(&m, "/v1/apix"), None);
        let m = map(MatchKind::Dom, "example.com ex\n");
        for hit in ["example.com", "www.example.com", "http://example.com:80/", "a.example.com/x"] {
            assert_eq!(look(&m, hit), Some("ex"), "{hit}");
        }
        assert_eq!(look(&m, "myexample.com"), None);
        assert_eq!(look(&m, "example.community"), None);
    }

    #[test]
    fn reg_int_and_errors() {
        let m = map(MatchKind::Reg, "^/a/.*\\.png$ png\n^/a/ a\n");
        assert_eq!(look(&m, "/a/x.png"), Some("png"));
        assert_eq!(look(&m, "/a/x.jpg"), Some("a"));
        let m = map(MatchKind::Int, "1:10 low\n5 five\n100: high\n:-1 neg\n");
        let int = |n| m.lookup(&Value::Sint(n)).map(|v| std::str::from_utf8(v).unwrap());
        assert_eq!((int(5), int(11), int(1000), int(-7)), (Some("low"), None, Some("high"), Some("neg")));
        assert_eq!(m.lookup(&Value::str("5")), None, "keys are cast by the converter, not here");
        let err = PatternMap::build(MatchKind::Int, &parse_map_file(b"1 a\nx b\n", false)).unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "x"));
        let err = PatternMap::build(MatchKind::Reg, &parse_map_file(b"( a\n", false)).unwrap_err();
        assert!(err.reason.contains("bad regex"), "{err}");
        let err = PatternMap::build(MatchKind::Ip, &parse_map_file(b"10.0.0.0/8 a\n\n10.0.0.0/255.0.255.0 b\n", false))
            .unwrap_err();
        assert_eq!(err.line, 3);
        let err = PatternMap::build(MatchKind::Ip, &parse_map_file(b"host.example a\n", false)).unwrap_err();
        assert!(err.to_string().contains("line 1: key `host.example`"), "{err}");
    }

    #[test]
    fn ip_longest_prefix_across_families() {
        let m = map(
            MatchKind::Ip,
            "10.0.0.0/8 ten\n10.1.0.0/255.255.0.0 ten-one\n10.1.2.3 host\n2001:db8::/32 doc\n::ffff:172.16.0.0/108 mapped\n0.0.0.0/0 any\n",
        );
        let ip = |s: &str| {
            let v = match s.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) => Value::Ipv4(a),
                std::net::IpAddr::V6(a) => Value::Ipv6(a),
            };
            m.lookup(&v).map(|v| std::str::from_utf8(v).unwrap())
        };
        assert_eq!(ip("10.1.2.3"), Some("host"));
        assert_eq!(ip("10.1.2.4"), Some("ten-one"));
        assert_eq!(ip("10.2.0.1"), Some("ten"));
        assert_eq!(ip("11.0.0.1"), Some("any"));
        assert_eq!(ip("::ffff:10.1.2.3"), Some("host"), "v4-mapped input falls back to the v4 table");
        assert_eq!(ip("2001:db8:5::1"), Some("doc"));
        assert_eq!(ip("2001:db9::1"), None);
        assert_eq!(ip("172.16.5.5"), Some("any"), "the v4 table is searched first");
    }

    #[test]
    fn ten_thousand_entries() {
        let mut text = String::new();
        for i in 0..10_000 {
            text.push_str(&format!("host{i}.example.com be{i}\n"));
        }
        let entries = parse_map_file(text.as_bytes(), false);
        assert_eq!(entries.len(), 10_000);
        let mut set = MapSet::default();
        set.insert("hosts.map", MatchKind::Str, &entries).unwrap();
        set.insert("hosts.map", MatchKind::End, &entries).unwrap();
        assert_eq!(set.get("hosts.map", MatchKind::Str).unwrap().len(), 10_000);
        for i in (0..10_000).step_by(97).chain([9_999]) {
            let key = Value::str(format!("host{i}.example.com"));
            assert_eq!(set.lookup("hosts.map", MatchKind::Str, &key), Some(format!("be{i}").as_bytes()));
        }
        assert_eq!(set.lookup("hosts.map", MatchKind::Str, &Value::str("host10000.example.com")), None);
        let sub = Value::str("www.host9999.example.com");
        assert_eq!(set.lookup("hosts.map", MatchKind::End, &sub), Some(&b"be9999"[..]));
        assert_eq!(set.lookup("other.map", MatchKind::Str, &Value::str("host1.example.com")), None);

        let mut nets = String::new();
        for i in 0..10_000u32 {
            nets.push_str(&format!("{}/24 n{i}\n", std::net::Ipv4Addr::from((10 << 24) | (i << 8))));
        }
        let m = PatternMap::build(MatchKind::Ip, &parse_map_file(nets.as_bytes(), false)).unwrap();
        let addr = Value::Ipv4(std::net::Ipv4Addr::from((10 << 24) | (4321 << 8) | 77));
        assert_eq!(m.lookup(&addr), Some(&b"n4321"[..]));
    }
}
