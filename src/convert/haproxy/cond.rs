//! HAProxy 2.6's conditional blocks (`.if`/`.elif`/`.else`/`.endif`, configuration manual 2.4),
//! evaluated as the Debian build of HAProxy 2.6.12 would, since the converted file must keep the
//! lines that HAProxy would have read.

/// The HAProxy whose `version_atleast()`/`version_before()` answers the converter gives.
pub const VERSION: &str = "2.6.12";
/// Its TLS library, for `openssl_version_atleast()`/`openssl_version_before()`.
const OPENSSL_VERSION: &str = "3.0.0";
/// `feature()` names that build has (`haproxy -vv`, "Feature list").
const FEATURES: &[&str] = &[
    "ACCEPT4",
    "BACKTRACE",
    "CPU_AFFINITY",
    "CRYPT_H",
    "DL",
    "EPOLL",
    "GETADDRINFO",
    "LIBCRYPT",
    "LINUX_SPLICE",
    "LINUX_TPROXY",
    "LUA",
    "NETFILTER",
    "NS",
    "OPENSSL",
    "OT",
    "PCRE2",
    "PCRE2_JIT",
    "POLL",
    "PRCTL",
    "PROMEX",
    "RT",
    "SLZ",
    "SYSTEMD",
    "TFO",
    "THREAD",
    "THREAD_DUMP",
    "TPROXY",
];

/// Evaluates the condition of `.if`/`.elif` (its words joined by spaces). `defined` says whether
/// an environment variable is set. An empty condition is false, as in HAProxy.
pub fn eval(text: &str, defined: &dyn Fn(&str) -> bool) -> Result<bool, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0, defined };
    p.ws();
    if p.i == p.s.len() {
        return Ok(false);
    }
    let v = p.or()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.fail());
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    defined: &'a dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn fail(&self) -> String {
        let text = String::from_utf8_lossy(self.s);
        format!("unparsable conditional expression '{text}' at position {}", self.i + 1)
    }

    /// `and { "||" and }`
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    /// `term { "&&" term }`
    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.term()?;
        while self.eat("&&") {
            let r = self.term()?;
            v = v && r;
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<bool, String> {
        self.ws();
        if self.eat("!") {
            return self.term().map(|v| !v);
        }
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err(self.fail());
            }
            return Ok(v);
        }
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if word.is_empty() {
            return Err(self.fail());
        }
        if word.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(word.bytes().any(|b| b != b'0'));
        }
        if self.s.get(self.i) != Some(&b'(') {
            return Err(self.fail());
        }
        self.i += 1;
        let close = self.s[self.i..].iter().position(|&c| c == b')').ok_or_else(|| self.fail())?;
        let inner = String::from_utf8_lossy(&self.s[self.i..self.i + close]).into_owned();
        self.i += close + 1;
        let args: Vec<&str> = inner.split(',').collect();
        let one = |what: &str| -> Result<&str, String> {
            match args.as_slice() {
                [a] => Ok(a),
                _ => Err(format!("{what}() takes one argument")),
            }
        };
        let two = |what: &str| -> Result<(&str, &str), String> {
            match args.as_slice() {
                [a, b] => Ok((a, b)),
                _ => Err(format!("{what}() takes two arguments")),
            }
        };
        Ok(match word {
            "defined" => (self.defined)(one(word)?),
            "feature" => FEATURES.contains(&one(word)?),
            "streq" => {
                let (a, b) = two(word)?;
                a == b
            }
            "strneq" => {
                let (a, b) = two(word)?;
                a != b
            }
            "version_atleast" => compare(VERSION, one(word)?) >= std::cmp::Ordering::Equal,
            "version_before" => compare(VERSION, one(word)?) == std::cmp::Ordering::Less,
            "openssl_version_atleast" => compare(OPENSSL_VERSION, one(word)?) >= std::cmp::Ordering::Equal,
            "openssl_version_before" => compare(OPENSSL_VERSION, one(word)?) == std::cmp::Ordering::Less,
            "ssllib_name_startswith" => "OpenSSL".starts_with(one(word)?),
            _ => {
                self.i = start;
                return Err(self.fail());
            }
        })
    }
}

/// Version order as HAProxy compares them: numeric parts, a missing part counting as 0.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split(['.', '-']).map(|p| p.trim().parse::<u64>().unwrap_or(0)).collect() };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

/// Where a file stands in its nest of conditional blocks.
#[derive(Default)]
pub struct Blocks {
    /// One per open `.if`: (line of the `.if`, this branch is read, a branch was taken, `.else` seen).
    stack: Vec<(usize, bool, bool, bool)>,
}

impl Blocks {
    /// Whether ordinary lines are read here.
    pub fn active(&self) -> bool {
        self.stack.iter().all(|b| b.1)
    }

    /// Handles one `.if`/`.elif`/`.else`/`.endif` line; `Ok(Some(v))` gives the value a condition
    /// was evaluated to (none when the block is not read at all).
    pub fn line(
        &mut self,
        kw: &str,
        cond: &str,
        line: usize,
        defined: &dyn Fn(&str) -> bool,
    ) -> Result<Option<bool>, String> {
        match kw {
            ".if" => {
                if self.stack.len() >= 100 {
                    return Err("too many nested '.if' blocks (HAProxy allows 100)".into());
                }
                if !self.active() {
                    self.stack.push((line, false, true, false));
                    return Ok(None);
                }
                let v = eval(cond, defined)?;
                self.stack.push((line, v, v, false));
                Ok(Some(v))
            }
            ".elif" => {
                let outer = self.stack.len() > 1 && !self.stack[..self.stack.len() - 1].iter().all(|b| b.1);
                let Some(top) = self.stack.last_mut() else {
                    return Err("lone '.elif' with no matching '.if'".into());
                };
                if top.3 {
                    return Err("'.elif' after '.else' is not permitted".into());
                }
                if top.2 || outer {
                    top.1 = false;
                    return Ok(None);
                }
                let v = eval(cond, defined)?;
                top.1 = v;
                top.2 = v;
                Ok(Some(v))
            }
            ".else" => {
                let Some(top) = self.stack.last_mut() else {
                    return Err("lone '.else' with no matching '.if'".into());
                };
                if top.3 {
                    return Err("'.else' after '.else' is not permitted".into());
                }
                top.3 = true;
                top.1 = !top.2;
                top.2 = true;
                Ok(None)
            }
            _ => match self.stack.pop() {
                Some(_) => Ok(None),
                None => Err("lone '.endif' with no matching '.if'".into()),
            },
        }
    }

    /// Lines of the `.if` blocks still open at the end of the file.
    pub fn unterminated(&self) -> Vec<usize> {
        self.stack.iter().map(|b| b.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_as_haproxy_2_6_evaluates_them() {
        let env = |n: &str| n == "HOME";
        let t = |s: &str| eval(s, &env).unwrap();
        assert!(!t("") && !t("0") && t("1") && t("42"));
        assert!(!t("1 && 0") && t("1&&1") && t("0 || 1") && !t("!1"));
        assert!(t("!defined(NOPE) && (1 || 0)") && t("defined(HOME)"));
        assert!(t("streq(a,a)") && !t("streq(a b,a)") && t("strneq(a,b)"));
        assert!(t("feature(OPENSSL)") && !t("feature(ZLIB)"));
        assert!(t("version_atleast(2.6)") && t("version_atleast(2.6.12)") && !t("version_atleast(2.6.13)"));
        assert!(t("version_before(2.7)") && !t("version_before(2.6.12)"));
        assert!(eval("foo(1)", &env).unwrap_err().contains("unparsable conditional expression 'foo(1)'"));
        assert!(eval("1 &&", &env).is_err());
        assert!(eval("(1", &env).is_err());
    }

    #[test]
    fn blocks_nest_and_take_one_branch() {
        let env = |_: &str| false;
        let mut b = Blocks::default();
        assert_eq!(b.line(".if", "0", 1, &env), Ok(Some(false)));
        assert!(!b.active());
        assert_eq!(b.line(".elif", "1", 3, &env), Ok(Some(true)));
        assert!(b.active());
        // Nested inside a taken branch.
        b.line(".if", "1", 4, &env).unwrap();
        assert!(b.active());
        b.line(".else", "", 5, &env).unwrap();
        assert!(!b.active());
        b.line(".endif", "", 6, &env).unwrap();
        assert!(b.active());
        // An .elif after a taken branch is not read, nor evaluated.
        assert_eq!(b.line(".elif", "bogus(", 7, &env), Ok(None));
        assert!(!b.active());
        b.line(".else", "", 8, &env).unwrap();
        assert!(!b.active());
        assert!(b.line(".else", "", 9, &env).is_err());
        b.line(".endif", "", 10, &env).unwrap();
        assert!(b.active() && b.unterminated().is_empty());
        // Conditions inside a block that is not read are not evaluated.
        b.line(".if", "0", 11, &env).unwrap();
        assert_eq!(b.line(".if", "bogus(", 12, &env), Ok(None));
        assert_eq!(b.unterminated(), [11, 12]);
        assert!(Blocks::default().line(".endif", "", 1, &env).is_err());
    }
}
