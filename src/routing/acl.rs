//! One compiled ACL: a fetch, a match method and its patterns (any may match).

use super::fetch::Fetch;
use super::lex::{self, Word};
use super::pattern::{MatchMethod, Matcher};
use super::{Facts, Live, RoutingError};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Acl {
    fetch: Fetch,
    matcher: Matcher,
    /// Later `acl` lines of the same name: HAProxy ORs them with this one.
    or: Vec<Acl>,
}

/// HAProxy's predefined ACLs, usable in conditions without declaring them.
const PREDEFINED: [(&str, &str); 16] = [
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("HTTP", "req.proto_http"),
    ("HTTP_CONTENT", "hdr_val(content-length) gt 0"),
    ("HTTP_URL_ABS", "url_reg ^[^/:]*://"),
    ("HTTP_URL_SLASH", "url_beg /"),
    ("HTTP_URL_STAR", "url *"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("METH_CONNECT", "method CONNECT"),
    ("METH_DELETE", "method DELETE"),
    ("METH_GET", "method GET HEAD"),
    ("METH_HEAD", "method HEAD"),
    ("METH_OPTIONS", "method OPTIONS"),
    ("METH_POST", "method POST"),
    ("METH_PUT", "method PUT"),
    ("METH_TRACE", "method TRACE"),
];

/// A flag word: unquoted, a dash, and not a negative number (`-1` is a pattern).
fn is_flag(w: &Word) -> bool {
    !w.quoted && w.text.starts_with('-') && !w.text[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Patterns of a `-f` file: one per line; blank lines and lines starting with `#` are skipped
/// and surrounding whitespace is trimmed.
fn read_patterns(base_dir: &Path, file: &str, into: &mut Vec<String>) -> Result<(), RoutingError> {
    let path = base_dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| RoutingError::PatternFile { path: path.clone(), error: e.to_string() })?;
    into.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    Ok(())
}

impl Acl {
    /// Compiles the text after the ACL's name, e.g. `path_end .php .html`, `hdr(host) -i
    /// example.com`, `src 192.0.2.0/24`, `nbsrv(static) lt 1`, `path_beg -f paths.lst`.
    /// A relative `-f` path is read from `base_dir`; no I/O happens after this.
    pub fn parse(expr: &str, base_dir: &Path) -> Result<Acl, RoutingError> {
        Acl::from_words(&lex::words(expr)?, base_dir)
    }

    pub(super) fn from_words(words: &[Word], base_dir: &Path) -> Result<Acl, RoutingError> {
        let Some((head, rest)) = words.split_first() else {
            return Err(RoutingError::Empty);
        };
        let fetch_word = head.text.as_str();
        let (fetch, implied) = Fetch::parse(fetch_word)?;
        let (mut icase, mut explicit, mut files) = (false, None, Vec::new());
        let mut rest = rest.iter();
        let mut patterns: Vec<String> = Vec::new();
        while let Some(w) = rest.next() {
            if !is_flag(w) {
                patterns.push(w.text.clone());
                break;
            }
            let mut value = || {
                rest.next()
                    .map(|v| v.text.as_str())
                    .ok_or_else(|| RoutingError::MissingFlagValue { flag: w.text.clone() })
            };
            match w.text.as_str() {
                "-i" => icase = true,
                "-n" => {} // never resolve names: there is nothing to turn off
                "-f" => files.push(value()?),
                "-m" => {
                    let name = value()?;
                    let method = MatchMethod::parse(name)
                        .ok_or_else(|| RoutingError::UnknownMatch { method: name.to_string() })?;
                    if implied.is_some() || explicit.is_some() {
                        return Err(RoutingError::ConflictingMatch { fetch: fetch_word.to_string() });
                    }
                    explicit = Some(method);
                }
                "--" => break,
                "-u" | "-M" => {
                    return Err(RoutingError::UnsupportedFlag { flag: w.text.clone() });
                }
                _ => {
                    return Err(RoutingError::BadFlag { flag: w.text.clone() });
                }
            }
        }
        patterns.extend(rest.map(|w| w.text.clone()));
        for file in &files {
            read_patterns(base_dir, file, &mut patterns)?;
        }

        let kind = fetch.kind();
        let method = implied.or(explicit).unwrap_or(MatchMethod::default_for(kind));
        if !method.applies_to(kind) {
            return Err(RoutingError::IncompatibleMatch { fetch: fetch_word.to_string(), method: method.name() });
        }
        match (method.takes_patterns(), patterns.first()) {
            (false, Some(p)) => {
                return Err(RoutingError::UnexpectedPattern { fetch: fetch_word.to_string(), pattern: p.clone() });
            }
            // An empty pattern file is allowed: the ACL then never matches.
            (true, None) if files.is_empty() => {
                return Err(RoutingError::MissingPattern { fetch: fetch_word.to_string() });
            }
            _ => {}
        }
        let matcher = Matcher::compile(method, icase, &patterns)?;
        Ok(Acl { fetch, matcher, or: Vec::new() })
    }

    /// HAProxy's predefined ACL of that name (`TRUE`, `LOCALHOST`, `METH_GET`, ...).
    pub fn predefined(name: &str) -> Option<Acl> {
        let (_, expr) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
        Acl::parse(expr, Path::new("")).ok()
    }

    pub fn matches(&self, facts: &Facts<'_>, live: &dyn Live) -> bool {
        self.fetch.any(facts, live, &mut |sample| self.matcher.matches(sample))
            || self.or.iter().any(|a| a.matches(facts, live))
    }

    /// Adds another line of the same name: the ACL then matches when either does.
    pub fn or(&mut self, other: Acl) {
        self.or.push(other);
    }

    /// Backends named by `nbsrv(...)`, so config validation can check they exist.
    pub fn referenced_backends(&self) -> Vec<&str> {
        self.fetch.backend().into_iter().chain(self.or.iter().flat_map(|a| a.referenced_backends())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use std::collections::HashMap;
    use std::path::PathBuf;

    struct Backends(HashMap<&'static str, usize>);
    impl Live for Backends {
        fn nbsrv(&self, backend: &str) -> usize {
            self.0.get(backend).copied().unwrap_or(0)
        }
    }

    struct Req {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        src: &'static str,
        port: u16,
    }

    impl Req {
        fn new(uri: &str) -> Req {
            Req {
                method: Method::GET,
                uri: uri.parse().unwrap(),
                headers: HeaderMap::new(),
                src: "192.0.2.10",
                port: 80,
            }
        }
        fn header(mut self, name: &'static str, value: &'static str) -> Req {
            self.headers.append(name, HeaderValue::from_static(value));
            self
        }
        fn facts(&self) -> Facts<'_> {
            Facts {
                method: Some(&self.method),
                uri: Some(&self.uri),
                headers: Some(&self.headers),
                src: self.src.parse().unwrap(),
                dst_port: self.port,
            }
        }
    }

    fn live() -> Backends {
        Backends(HashMap::from([("static_server", 0), ("php_server", 2)]))
    }

    fn acl(expr: &str) -> Acl {
        Acl::parse(expr, Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn hit(expr: &str, req: &Req) -> bool {
        acl(expr).matches(&req.facts(), &live())
    }

    fn err(expr: &str) -> RoutingError {
        Acl::parse(expr, Path::new("/nonexistent")).unwrap_err()
    }

    #[test]
    fn path_fetches() {
        let r = Req::new("/static/img/logo.PNG?v=2");
        assert!(hit("path /static/img/logo.PNG", &r));
        assert!(!hit("path /static/img/logo.png", &r));
        assert!(hit("path -i /static/img/logo.png", &r));
        assert!(hit("path_beg /api /static", &r));
        assert!(!hit("path_beg /api", &r));
        assert!(hit("path_end .php .PNG", &r));
        assert!(!hit("path_end .png", &r));
        assert!(hit("path_end -i .png", &r));
        assert!(hit(r"path_reg ^/static/.*\.(png|PNG)$", &r));
        assert!(!hit(r"path_reg \?v=", &r));
        assert!(hit("path_dir img", &r));
        assert!(!hit("path_dir im", &r));
        assert!(hit("path_sub img/lo", &r));
        assert!(hit("path_len gt 10", &r));
    }

    #[test]
    fn url_fetches() {
        let r = Req::new("/index.php?id=3");
        assert!(hit("url /index.php?id=3", &r));
        assert!(!hit("url /index.php", &r));
        assert!(hit("url_beg /index", &r));
        assert!(hit("url_reg /*.php", &r));
        assert!(!hit("url_reg /*.php$", &r));
        assert!(hit("url_reg /*.php$", &Req::new("/a/b.php")));
        assert!(hit("url_end id=3", &r));
        assert!(hit("url_sub .php?", &r));
        assert!(hit("urlp(id) 3 4", &r));
        assert!(!hit("urlp(id) 4", &r));
        assert!(hit("query -m beg id=", &r));
    }

    #[test]
    fn header_fetches() {
        let r = Req::new("/")
            .header("host", "WWW.Example.com")
            .header("user-agent", "curl/8.0")
            .header("x-foo", "a, b")
            .header("x-foo", "c")
            .header("content-length", "12")
            .header("x-forwarded-for", "198.51.100.7");
        assert!(hit("hdr(host) -i www.example.com", &r));
        assert!(!hit("hdr(host) www.example.com", &r));
        assert!(hit("hdr(Host) -i example.org www.example.com", &r));
        assert!(hit("hdr_beg(host) -i www.", &r));
        assert!(!hit("hdr_beg(host) www.", &r));
        assert!(hit("hdr_end(host) .com", &r));
        assert!(hit("hdr_reg(user-agent) ^curl/[0-9]", &r));
        assert!(hit("hdr_sub(user-agent) url/", &r));
        assert!(hit("hdr_dom(host) -i example.com", &r));
        assert!(!hit("hdr_dom(host) -i ample.com", &r));
        assert!(hit("hdr(x-foo) b", &r));
        assert!(hit("req.hdr_cnt(x-foo) gt 0", &r));
        assert!(hit("req.hdr_cnt(x-foo) eq 3", &r));
        assert!(hit("hdr_cnt(x-missing) eq 0", &r));
        assert!(!hit("req.hdr_cnt(x-missing) gt 0", &r));
        assert!(hit("hdr_val(content-length) ge 12", &r));
        assert!(hit("hdr_ip(x-forwarded-for) 198.51.100.0/24", &r));
        assert!(hit("hdr(host) -m found", &r));
        assert!(!hit("hdr(x-missing) -m found", &r));
        assert!(hit("hdr(host) -m len 15", &r));
        assert!(!hit("hdr(x-missing) -m sub x", &r));
    }

    #[test]
    fn connection_fetches() {
        let mut r = Req::new("/");
        assert!(hit("src 192.0.2.0/24 10.0.0.1", &r));
        assert!(!hit("src 10.0.0.0/8", &r));
        r.src = "::ffff:10.0.0.1";
        assert!(hit("src 192.0.2.0/24 10.0.0.1", &r));
        r.src = "2001:db8::42";
        assert!(hit("src 2001:db8::/32", &r));
        assert!(!hit("src 192.0.2.0/24", &r));
        assert!(hit("dst_port 80 8080", &r));
        r.port = 8443;
        assert!(!hit("dst_port 80 8080", &r));
        assert!(hit("dst_port 1024:65535", &r));
        assert!(hit("dst_port gt 1023", &r));
        assert!(hit("method GET HEAD", &r));
        assert!(!hit("method get", &r));
        assert!(hit("method -i get", &r));
        assert!(!hit("method POST", &r));
    }

    #[test]
    fn nbsrv_and_backends() {
        let r = Req::new("/");
        assert!(hit("nbsrv(static_server) lt 1", &r));
        assert!(!hit("nbsrv(php_server) lt 1", &r));
        assert!(hit("nbsrv(php_server) eq 2", &r));
        assert!(hit("nbsrv(unknown) eq 0", &r));
        assert_eq!(acl("nbsrv(static_server) lt 1").referenced_backends(), ["static_server"]);
        assert!(acl("path /").referenced_backends().is_empty());
    }

    #[test]
    fn http_fetches_never_match_in_tcp_mode() {
        let facts = Facts { method: None, uri: None, headers: None, src: "192.0.2.1".parse().unwrap(), dst_port: 80 };
        for expr in ["path_beg /", "url_reg .*", "hdr(host) -m found", "method GET", "urlp(a) -m found"] {
            assert!(!acl(expr).matches(&facts, &live()), "{expr}");
        }
        assert!(acl("src 192.0.2.1").matches(&facts, &live()));
        assert!(!acl("req.hdr_cnt(host) eq 0").matches(&facts, &live()));
    }

    #[test]
    fn flags_and_quoting() {
        let r = Req::new("/a%20b").header("user-agent", "Mozilla 5.0 (X11)");
        assert!(hit(r#"hdr(user-agent) -m sub "Mozilla 5""#, &r));
        assert!(hit(r"hdr_reg(user-agent) \(X11\)", &r));
        assert!(hit("hdr(user-agent) -i -m beg mozilla", &r));
        assert!(hit("hdr(user-agent) -n -m beg Mozilla", &r));
        // `--` ends the flags so a pattern may start with a dash.
        let dash = Req::new("/").header("x-mode", "-i");
        assert!(hit("hdr(x-mode) -- -i", &dash));
        assert!(hit("hdr(x-mode) '-i'", &dash));
        // Negative numbers are patterns, not flags.
        let neg = Req::new("/").header("x-n", "-3");
        assert!(hit("hdr_val(x-n) -5:-1", &neg));
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbha-routing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), contents).unwrap();
        dir
    }

    #[test]
    fn pattern_files() {
        let dir = temp_file("paths.lst", "# api prefixes\n/api\n\n   /static  \r\n#/admin\n");
        let a = Acl::parse("path_beg -f paths.lst", &dir).unwrap();
        let live = live();
        for (path, want) in [("/api/x", true), ("/static/y", true), ("/admin", false), ("/other", false)] {
            let r = Req::new(path);
            assert_eq!(a.matches(&r.facts(), &live), want, "{path}");
        }
        // Absolute paths ignore base_dir; inline patterns and several files combine. Flags come
        // before patterns, as in HAProxy.
        let abs = dir.join("paths.lst");
        let expr = format!("path_beg -f {} -f paths.lst /inline", abs.display());
        let b = Acl::parse(&expr, &dir).unwrap();
        assert!(b.matches(&Req::new("/inline/1").facts(), &live));
        assert!(b.matches(&Req::new("/api").facts(), &live));
        // Networks and integers load the same way; an empty file never matches.
        let dir = temp_file("nets.lst", "10.0.0.0/8\n2001:db8::/32\n");
        let n = Acl::parse("src -f nets.lst", &dir).unwrap();
        let mut r = Req::new("/");
        r.src = "10.1.1.1";
        assert!(n.matches(&r.facts(), &live));
        let dir = temp_file("empty.lst", "# nothing yet\n");
        assert!(!Acl::parse("path -f empty.lst", &dir).unwrap().matches(&r.facts(), &live));
        let dir = temp_file("bad.lst", "10.0.0.0/8\nnot-an-ip\n");
        assert!(
            matches!(Acl::parse("src -f bad.lst", &dir), Err(RoutingError::BadAddress { pattern, .. }) if pattern == "not-an-ip")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_error() {
        use RoutingError as E;
        let s = String::from;
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("   "), E::Empty);
        assert_eq!(err("pathbeg /a"), E::UnknownFetch { fetch: s("pathbeg") });
        assert!(matches!(err("hdr /a"), E::FetchArgument { fetch, .. } if fetch == "hdr"));
        assert_eq!(err("path -x /a"), E::BadFlag { flag: s("-x") });
        assert_eq!(err("path -u 1 /a"), E::UnsupportedFlag { flag: s("-u") });
        assert_eq!(err("path -f"), E::MissingFlagValue { flag: s("-f") });
        assert_eq!(err("path -m"), E::MissingFlagValue { flag: s("-m") });
        assert_eq!(err("path -m regex x"), E::UnknownMatch { method: s("regex") });
        assert_eq!(err("src -m beg 10."), E::IncompatibleMatch { fetch: s("src"), method: "beg" });
        assert_eq!(err("dst_port -m reg 80"), E::IncompatibleMatch { fetch: s("dst_port"), method: "reg" });
        assert_eq!(err("path -m ip 10.0.0.1"), E::IncompatibleMatch { fetch: s("path"), method: "ip" });
        assert_eq!(err("path_beg -m end /a"), E::ConflictingMatch { fetch: s("path_beg") });
        assert_eq!(err("path -m beg -m end /a"), E::ConflictingMatch { fetch: s("path") });
        assert_eq!(err("path_beg"), E::MissingPattern { fetch: s("path_beg") });
        assert_eq!(err("path -i"), E::MissingPattern { fetch: s("path") });
        assert_eq!(err("hdr(host) -m found x"), E::UnexpectedPattern { fetch: s("hdr(host)"), pattern: s("x") });
        assert_eq!(err("always_true x"), E::UnexpectedPattern { fetch: s("always_true"), pattern: s("x") });
        assert!(matches!(err("path_reg ([a-z]"), E::BadRegex { pattern, .. } if pattern == "([a-z]"));
        assert!(matches!(err("src 10.0.0.0/40"), E::BadAddress { pattern, .. } if pattern == "10.0.0.0/40"));
        assert!(matches!(err("src www.example.com"), E::BadAddress { .. }));
        assert_eq!(err("nbsrv(be) lt"), E::MissingOperand { operator: s("lt") });
        assert_eq!(err("nbsrv(be) less 1"), E::BadOperator { operator: s("less") });
        assert_eq!(err("dst_port 80x"), E::BadInteger { pattern: s("80x") });
        assert_eq!(err("dst_port ge 1:2"), E::OperatorWithRange { operator: s("ge"), pattern: s("1:2") });
        assert!(matches!(err(r#"path "/a"#), E::UnterminatedQuote { .. }));
        match err("path_beg -f missing.lst") {
            E::PatternFile { path, error } => {
                assert_eq!(path, Path::new("/nonexistent/missing.lst"));
                assert!(!error.is_empty());
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn error_messages_name_the_token() {
        for (expr, token) in [
            ("pathbeg /a", "pathbeg"),
            ("path -x /a", "-x"),
            ("path_reg (", "("),
            ("src 300.1.1.1", "300.1.1.1"),
            ("nbsrv(a) less 1", "less"),
            ("path -f nope.lst", "nope.lst"),
        ] {
            let msg = err(expr).to_string();
            assert!(msg.contains(token), "{expr}: {msg}");
        }
    }

    #[test]
    fn predefined_acls() {
        let live = live();
        let r = Req::new("/x");
        let facts = r.facts();
        let m = |name: &str, f: &Facts<'_>| Acl::predefined(name).unwrap().matches(f, &live);
        for (name, _) in PREDEFINED {
            assert!(Acl::predefined(name).is_some(), "{name}");
        }
        assert!(m("TRUE", &facts) && !m("FALSE", &facts));
        assert!(m("HTTP", &facts) && m("METH_GET", &facts) && !m("METH_POST", &facts));
        assert!(m("HTTP_URL_SLASH", &facts) && !m("HTTP_URL_ABS", &facts) && !m("HTTP_URL_STAR", &facts));
        assert!(!m("LOCALHOST", &facts) && !m("HTTP_CONTENT", &facts));
        let mut local = Req::new("http://h/x");
        local.src = "127.0.0.1";
        local.method = Method::HEAD;
        assert!(m("LOCALHOST", &local.facts()) && m("METH_GET", &local.facts()) && m("METH_HEAD", &local.facts()));
        assert!(m("HTTP_URL_ABS", &local.facts()));
        assert!(Acl::predefined("true").is_none());
    }
}
