//! `json_query` and the `jwt_*_query` converters: HAProxy's JSON path (`$.a.b[0]`, `\.` for a
//! dot inside a key), parsed once at load; a query walks the input text without building a
//! document, as HAProxy's mjson does, and answers with its types (string, integer or `%g`
//! number text, boolean; `null`, arrays and objects give no sample, as in HAProxy 2.6).

use super::value::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(Vec<u8>),
    Index(usize),
}

/// A parsed JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// `$`, then `.key` or `[N]` steps; a backslash keeps the next character in a key.
    pub fn parse(p: &str) -> Result<JsonPath, String> {
        let b = p.as_bytes();
        if b.first() != Some(&b'$') {
            return Err(format!("json path `{p}` must start with `$`"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    i += 1;
                    let mut key = Vec::new();
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        if b[i] == b'\\' && i + 1 < b.len() {
                            i += 1;
                        }
                        key.push(b[i]);
                        i += 1;
                    }
                    if key.is_empty() {
                        return Err(format!("json path `{p}`: empty key at offset {i}"));
                    }
                    steps.push(Step::Key(key));
                }
                b'[' => {
                    let end = p[i..].find(']').map(|e| i + e).ok_or_else(|| format!("json path `{p}`: missing `]`"))?;
                    let n = p[i + 1..end]
                        .parse::<usize>()
                        .map_err(|_| format!("json path `{p}`: `{}` is not an array index", &p[i + 1..end]))?;
                    steps.push(Step::Index(n));
                    i = end + 1;
                }
                c => return Err(format!("json path `{p}`: unexpected `{}` at offset {i}", c as char)),
            }
        }
        Ok(JsonPath(steps))
    }

    /// HAProxy's `json_query` over `doc`; `int` asks for an integer (in ±(2^53-1)).
    pub fn query(&self, doc: &[u8], int: bool) -> Option<Value> {
        let mut span = value_at(doc, ws(doc, 0))?;
        for step in &self.0 {
            span = child(doc, span, step)?;
        }
        let tok = &doc[span.0..span.1];
        match tok.first()? {
            b'"' => Some(Value::Str(unescape(&tok[1..tok.len() - 1])?)),
            b't' => Some(Value::Bool(true)),
            b'f' => Some(Value::Bool(false)),
            // HAProxy 2.6 answers strings, numbers and booleans only.
            b'n' | b'{' | b'[' => None,
            _ => {
                let text = std::str::from_utf8(tok).ok()?;
                if int {
                    const MAX: i64 = (1 << 53) - 1;
                    let (v, _) = super::value::read_int64(tok);
                    (-MAX..=MAX).contains(&v).then_some(Value::Sint(v))
                } else {
                    Some(Value::Str(fmt_g(text.parse::<f64>().ok()?).into_bytes()))
                }
            }
        }
    }
}

fn ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// How deep arrays and objects may nest, as HAProxy's mjson (`MJSON_MAX_DEPTH`): deeper
/// documents give no sample. The scan recurses once per level, so a client's body or token
/// nested thousands deep would otherwise overflow the worker's stack.
const MAX_DEPTH: usize = 20;

/// The span of the JSON value starting at `i` (`i` past leading spaces).
fn value_at(s: &[u8], i: usize) -> Option<(usize, usize)> {
    value_within(s, i, MAX_DEPTH)
}

/// [`value_at`] with `depth` more levels of nesting allowed; deeper documents give no sample.
fn value_within(s: &[u8], i: usize, depth: usize) -> Option<(usize, usize)> {
    match *s.get(i)? {
        b'"' => {
            let mut j = i + 1;
            loop {
                match *s.get(j)? {
                    b'\\' => j += 2,
                    b'"' => return Some((i, j + 1)),
                    _ => j += 1,
                }
            }
        }
        open @ (b'{' | b'[') => {
            let depth = depth.checked_sub(1)?;
            let close = if open == b'{' { b'}' } else { b']' };
            let mut j = ws(s, i + 1);
            if s.get(j) == Some(&close) {
                return Some((i, j + 1));
            }
            loop {
                if open == b'{' {
                    let k = value_within(s, j, depth).filter(|k| s[k.0] == b'"')?;
                    j = ws(s, k.1);
                    if s.get(j) != Some(&b':') {
                        return None;
                    }
                    j = ws(s, j + 1);
                }
                j = ws(s, value_within(s, j, depth)?.1);
                match *s.get(j)? {
                    b',' => j = ws(s, j + 1),
                    c if c == close => return Some((i, j + 1)),
                    _ => return None,
                }
            }
        }
        b't' => s[i..].starts_with(b"true").then_some((i, i + 4)),
        b'f' => s[i..].starts_with(b"false").then_some((i, i + 5)),
        b'n' => s[i..].starts_with(b"null").then_some((i, i + 4)),
        b'-' | b'0'..=b'9' => {
            let n =
                s[i + 1..].iter().take_while(|c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')).count();
            Some((i, i + 1 + n))
        }
        _ => None,
    }
}

/// The member `step` names in the object or array at `span`.
fn child(s: &[u8], span: (usize, usize), step: &Step) -> Option<(usize, usize)> {
    let (open, mut j) = (s[span.0], ws(s, span.0 + 1));
    let mut n = 0;
    while j < span.1 - 1 {
        match (open, step) {
            (b'{', Step::Key(want)) => {
                let k = value_at(s, j)?;
                j = ws(s, ws(s, k.1) + 1);
                let v = value_at(s, j)?;
                if unescape(&s[k.0 + 1..k.1 - 1]).as_deref() == Some(want.as_slice()) {
                    return Some(v);
                }
                j = v.1;
            }
            (b'[', Step::Index(want)) => {
                let v = value_at(s, j)?;
                if n == *want {
                    return Some(v);
                }
                n += 1;
                j = v.1;
            }
            _ => return None,
        }
        j = ws(s, j);
        if s.get(j) == Some(&b',') {
            j = ws(s, j + 1);
        }
    }
    None
}

/// A JSON string's body, escapes decoded as HAProxy 2.6's mjson does: `\u00XX` becomes the
/// byte XX and any other `\uXXXX` fails (mjson carries no UTF-8 encoder).
fn unescape(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1)?;
        i += 2;
        match c {
            b'"' | b'\\' | b'/' => out.push(c),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' if b.get(i..i + 2) == Some(b"00") => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// C's `printf("%g")`: six significant digits, exponent form below 1e-4 or from 1e6, trailing
/// zeros dropped.
pub(super) fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{x:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        trim(&format!("{x:.*}", (5 - exp) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(path: &str, doc: &str, int: bool) -> Option<Value> {
        JsonPath::parse(path).unwrap().query(doc.as_bytes(), int)
    }

    #[test]
    fn documents_nested_deeper_than_mjson_allows_give_no_sample() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(q("$", &nest(19), true), None, "an array is no integer");
        let deep = |n: usize| format!("{{\"a\":{}}}", nest(n));
        assert_eq!(q("$.a", &deep(19), false), None, "arrays give nothing, as HAProxy");
        assert_eq!(q("$.b", &format!("{{\"a\":{},\"b\":7}}", nest(19)), true), Some(Value::Sint(7)));
        assert_eq!(q("$.b", &format!("{{\"a\":{},\"b\":7}}", nest(20)), true), None, "21 levels");
        // Far deeper than any stack would take if the scan did not stop.
        assert_eq!(q("$.b", &format!("{{\"a\":{},\"b\":7}}", nest(200_000)), true), None);
    }

    #[test]
    fn paths_parse_as_haproxy_writes_them() {
        assert_eq!(JsonPath::parse("$").unwrap().0, vec![]);
        assert_eq!(
            JsonPath::parse("$.a[2].my\\.key").unwrap().0,
            vec![Step::Key(b"a".to_vec()), Step::Index(2), Step::Key(b"my.key".to_vec())]
        );
        for bad in ["a.b", "$.", "$[x]", "$[1", "$x"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_answer_with_haproxy_types() {
        let doc = r#" {"integer":4, "f": 1.5, "big": 12345678, "s":"a\"b\u00e9", "u":"\u20ac", "t":true, "no":false,
            "n":null, "o":{"x":[1, {"y":"deep"}]}, "arr":["manage-account", "view"], "my.key":"dot", "e": 1e-7 } "#;
        assert_eq!(q("$.integer", doc, true), Some(Value::Sint(4)));
        assert_eq!(q("$.integer", doc, false), Some(Value::str("4")));
        assert_eq!(q("$.f", doc, false), Some(Value::str("1.5")));
        assert_eq!(q("$.f", doc, true), Some(Value::Sint(1)));
        assert_eq!(q("$.big", doc, false), Some(Value::str("1.23457e+07")));
        assert_eq!(q("$.e", doc, false), Some(Value::str("1e-07")));
        assert_eq!(q("$.s", doc, false), Some(Value::Str(b"a\"b\xe9".to_vec())), "\\u00XX is one byte");
        assert_eq!(q("$.u", doc, false), None, "other \\u escapes fail, as in mjson");
        assert_eq!(q("$.t", doc, false), Some(Value::Bool(true)));
        assert_eq!(q("$.no", doc, false), Some(Value::Bool(false)));
        assert_eq!(q("$.n", doc, false), None);
        assert_eq!(q("$.o", doc, false), None, "objects give nothing");
        assert_eq!(q("$.o.x[1].y", doc, false), Some(Value::str("deep")));
        assert_eq!(q("$.o.x[0]", doc, true), Some(Value::Sint(1)));
        assert_eq!(q("$.arr", doc, false), None, "arrays give nothing in 2.6");
        assert_eq!(q("$.arr[1]", doc, false), Some(Value::str("view")));
        assert_eq!(q("$.my\\.key", doc, false), Some(Value::str("dot")));
        assert_eq!(q("$.missing", doc, false), None);
        assert_eq!(q("$.arr[5]", doc, false), None);
        assert_eq!(q("$.s", doc, true), Some(Value::Str(b"a\"b\xe9".to_vec())), "int only for numbers");
        assert_eq!(q("$.x", "not json", false), None);
        assert_eq!(q("$.x", r#"{"x":9007199254740993}"#, true), None, "out of JSON's integer range");
    }

    #[test]
    fn percent_g_like_c() {
        for (x, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456.7, "123457"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1.23456789, "1.23457"),
        ] {
            assert_eq!(fmt_g(x), want, "{x}");
        }
    }
}
