//! Keywords and their argument lists, as HAProxy's `make_arg_list` reads them: `name(a,b)`,
//! where an argument runs to the next unquoted `,` or `)`, `'...'` and `"..."` quote, and a
//! backslash escapes `\`, space, `"` and `'` and spells `\r`, `\n`, `\t`. Typed readers turn the
//! raw text into integers, addresses and masks with errors that name the argument.

use super::ParseError;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A keyword and the raw text of its arguments. `name` has no arguments, `name()` has one empty
/// argument, as in HAProxy (an empty mandatory argument is then an error of its type).
#[derive(Debug)]
pub(super) struct Call<'a> {
    pub name: &'a str,
    pub at: usize,
    pub args: Vec<String>,
    /// Offset of the first byte after the call.
    pub end: usize,
}

pub(super) fn is_idchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+' | b'$')
}

/// Reads `name[(args)]` at `at` in `input`.
pub(super) fn call<'a>(input: &'a str, at: usize) -> Result<Call<'a>, ParseError> {
    let bytes = input.as_bytes();
    let mut pos = at;
    while pos < bytes.len() && is_idchar(bytes[pos]) {
        pos += 1;
    }
    let name = &input[at..pos];
    let mut args = Vec::new();
    if bytes.get(pos) != Some(&b'(') {
        return Ok(Call { name, at, args, end: pos });
    }
    let err = |reason: String, arg: Option<usize>| ParseError::new(input, at, name, arg, reason);
    pos += 1;
    loop {
        let (text, next) = one_arg(input, pos).map_err(|r| err(r.into(), Some(args.len() + 1)))?;
        args.push(text);
        pos = next;
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b')') => return Ok(Call { name, at, args, end: pos + 1 }),
            _ => return Err(err("expected ')'".into(), None)),
        }
    }
}

/// One argument starting at `pos`; returns its unquoted text and the offset of the `,` or `)`
/// (or the end of input) that ends it.
fn one_arg(input: &str, mut pos: usize) -> Result<(String, usize), &'static str> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let (mut squote, mut dquote) = (false, false);
    while pos < bytes.len() {
        let c = bytes[pos];
        match c {
            b'"' if !squote => dquote = !dquote,
            b'\'' if !dquote => squote = !squote,
            b'\\' if !squote && pos + 1 < bytes.len() => {
                pos += 1;
                match bytes[pos] {
                    b'\\' | b' ' | b'"' | b'\'' => out.push(bytes[pos]),
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    _ => {
                        out.push(b'\\');
                        continue;
                    }
                }
            }
            b',' | b')' if !squote && !dquote => break,
            _ => out.push(c),
        }
        pos += 1;
    }
    if squote || dquote {
        return Err("unterminated quote");
    }
    // Only ASCII bytes were split on, so the text stays valid UTF-8.
    Ok((String::from_utf8(out).map_err(|_| "invalid UTF-8")?, pos))
}

/// Typed access to a call's arguments, with errors naming the keyword and argument.
pub(super) struct Args<'a, 'c> {
    pub input: &'a str,
    pub call: &'c Call<'a>,
}

impl Args<'_, '_> {
    pub fn err(&self, arg: Option<usize>, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.input, self.call.at, self.call.name, arg, reason.into())
    }

    /// Checks the argument count (`min..=max`).
    pub fn count(&self, min: usize, max: usize) -> Result<(), ParseError> {
        let n = self.call.args.len();
        if max == 0 && n > 0 {
            return Err(self.err(None, "takes no arguments"));
        }
        if n < min {
            return Err(self.err(Some(n + 1), format!("missing argument (got {n}, need at least {min})")));
        }
        if n > max {
            return Err(self.err(Some(max + 1), format!("too many arguments (at most {max})")));
        }
        Ok(())
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        self.call.args.get(i).map(String::as_str)
    }

    pub fn str(&self, i: usize) -> Result<&str, ParseError> {
        self.get(i).ok_or_else(|| self.err(Some(i + 1), "missing argument"))
    }

    pub fn sint(&self, i: usize) -> Result<i64, ParseError> {
        let s = self.str(i)?;
        parse_sint(s).ok_or_else(|| self.err(Some(i + 1), format!("`{s}` is not an integer")))
    }

    /// An optional integer; empty (`crc32()`) counts as absent, as in HAProxy.
    pub fn opt_sint(&self, i: usize, default: i64) -> Result<i64, ParseError> {
        match self.get(i) {
            None | Some("") => Ok(default),
            Some(_) => self.sint(i),
        }
    }

    pub fn mask4(&self, i: usize) -> Result<Ipv4Addr, ParseError> {
        let s = self.str(i)?;
        mask4(s).ok_or_else(|| self.err(Some(i + 1), format!("`{s}` is not an IPv4 mask (bits or dotted)")))
    }

    pub fn mask6(&self, i: usize) -> Result<Ipv6Addr, ParseError> {
        let s = self.str(i)?;
        mask6(s).ok_or_else(|| self.err(Some(i + 1), format!("`{s}` is not an IPv6 mask (0 to 128 bits)")))
    }
}

/// An integer argument: HAProxy's `read_int64` over the whole text, which must not be empty.
pub(super) fn parse_sint(s: &str) -> Option<i64> {
    let (v, used) = super::value::read_int64(s.as_bytes());
    (!s.is_empty() && used == s.len()).then_some(v)
}

/// `24` or `255.255.255.0` (HAProxy's `str2mask`: a dotted mask is taken as written).
pub(super) fn mask4(s: &str) -> Option<Ipv4Addr> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some(a);
    }
    let bits: u32 = s.parse().ok().filter(|b| *b <= 32)?;
    Some(Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0)))
}

pub(super) fn mask6(s: &str) -> Option<Ipv6Addr> {
    let bits: u32 = s.parse().ok().filter(|b| *b <= 128)?;
    Some(Ipv6Addr::from(u128::MAX.checked_shl(128 - bits).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        call(s, 0).unwrap().args
    }

    #[test]
    fn argument_syntax() {
        assert_eq!(call("src", 0).unwrap().args, Vec::<String>::new());
        assert_eq!(args("f()"), vec![""]);
        assert_eq!(args("f(a,b)"), vec!["a", "b"]);
        assert_eq!(args("f(a,,b)"), vec!["a", "", "b"]);
        assert_eq!(args(r#"f("a,b",'c)d')"#), vec!["a,b", "c)d"]);
        assert_eq!(args(r"f(a\,b)"), vec![r"a\", "b"]);
        assert_eq!(args(r#"f(a\"b\ c\\d\ne)"#), vec!["a\"b c\\d\ne"]);
        assert_eq!(args(r"f('a\nb')"), vec![r"a\nb"]);
        assert_eq!(args(r"f(\d+)"), vec![r"\d+"]);
        let c = call("lower,upper", 0).unwrap();
        assert_eq!((c.name, c.end), ("lower", 5));
        let c = call("x,map(a.map,def),y", 2).unwrap();
        assert_eq!((c.name, c.end, c.args.len()), ("map", 16, 2));
    }

    #[test]
    fn argument_errors_are_located() {
        let e = call("f(a,b", 0).unwrap_err();
        assert!(e.to_string().contains("expected ')'"), "{e}");
        let e = call("x,f(a,'b)", 2).unwrap_err();
        assert_eq!((e.word.as_str(), e.arg, e.offset), ("f", Some(2), 2));
        assert!(e.to_string().contains("unterminated quote"), "{e}");
    }

    #[test]
    fn masks() {
        assert_eq!(mask4("24"), Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(mask4("0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(mask4("255.255.0.0"), Some(Ipv4Addr::new(255, 255, 0, 0)));
        assert_eq!(mask4("33"), None);
        assert_eq!(mask6("64"), Some("ffff:ffff:ffff:ffff::".parse().unwrap()));
        assert_eq!(mask6("129"), None);
        assert_eq!(parse_sint("-3"), Some(-3));
        assert_eq!(parse_sint("3x"), None);
        assert_eq!(parse_sint(""), None);
    }
}
