//! One compiled ACL: a sample expression, a match method and its patterns (any may match).
//!
//! The fetch part is HAProxy's sample language ([`crate::sample`]): any fetch with converters,
//! plus the ACL-only names that imply a match method (`path_beg`, `hdr_dom(host)`, `hdr_val`,
//! `hdr_ip`, ...). Samples are cast to the type the match method expects, as HAProxy does.

use super::RoutingError;
use super::lex::{self, Word};
use super::pattern::{Kind, MatchMethod, Patterns, StrMatch};
use crate::sample::{Fetch, Maps, MatchKind, SampleContext, SampleExpr, SmpType};

#[derive(Debug, Clone)]
pub struct Acl {
    expr: SampleExpr,
    patterns: Patterns,
    /// `-M`: the `-f` files are maps whose keys are the patterns.
    files_are_maps: bool,
    /// `http_auth_group(L) G...`: the groups the authenticated user must be in one of (HAProxy
    /// matches this fetch against group membership, not as a string).
    groups: Vec<String>,
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

/// Suffixes HAProxy appends to a fetch name to imply a match method (`path_beg`, `hdr_ip`).
const SUFFIXES: [(&str, MatchMethod); 10] = [
    ("beg", MatchMethod::Str(StrMatch::Beg)),
    ("end", MatchMethod::Str(StrMatch::End)),
    ("sub", MatchMethod::Str(StrMatch::Sub)),
    ("dir", MatchMethod::Str(StrMatch::Dir)),
    ("dom", MatchMethod::Str(StrMatch::Dom)),
    ("reg", MatchMethod::Reg),
    ("len", MatchMethod::Len),
    ("val", MatchMethod::Int),
    ("ip", MatchMethod::Ip),
    ("found", MatchMethod::Found),
];

/// Fetches that take those suffixes in HAProxy 2.6.
const SUFFIX_BASES: &[&str] = &[
    "path",
    "url",
    "base",
    "query",
    "urlp",
    "url_param",
    "hdr",
    "req.hdr",
    "req.fhdr",
    "shdr",
    "res.hdr",
    "res.fhdr",
    "cook",
    "req.cook",
    "scook",
    "res.cook",
    "ssl_fc_sni",
    "req.ssl_sni",
    "req_ssl_sni",
    "method",
];

/// A flag word: unquoted, a dash, and not a negative number (`-1` is a pattern).
fn is_flag(w: &Word) -> bool {
    !w.quoted && w.text.starts_with('-') && !w.text[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// The fetch word of an ACL and the match method its name implies, if any.
fn parse_fetch(word: &str) -> Result<(SampleExpr, Option<MatchMethod>), RoutingError> {
    let first = match SampleExpr::parse(word) {
        Ok(e) => return Ok((e, None)),
        Err(e) => e,
    };
    let name_len = word.find(['(', ',']).unwrap_or(word.len());
    let name = &word[..name_len];
    if let Some((base, suffix)) = name.rsplit_once('_')
        && let Some((_, method)) = SUFFIXES.iter().find(|(s, _)| *s == suffix)
        && SUFFIX_BASES.contains(&base)
    {
        let rewritten = format!("{base}{}", &word[name_len..]);
        return SampleExpr::parse(&rewritten).map(|e| (e, Some(*method))).map_err(RoutingError::from);
    }
    if first.offset == 0 && first.reason == "unknown fetch method" {
        return Err(RoutingError::UnknownFetch { fetch: word.to_string() });
    }
    Err(first.into())
}

/// The type an expression produces after its converters (`None`: a variable, any type).
fn out_type(expr: &SampleExpr) -> Option<SmpType> {
    match (expr.convs.last(), &expr.fetch) {
        (Some(c), _) => Some(c.types().1),
        (None, Fetch::Var { .. }) => None,
        (None, f) => Some(f.out_type()),
    }
}

fn kind_of(t: Option<SmpType>) -> Kind {
    match t {
        Some(SmpType::Sint) => Kind::Int,
        Some(SmpType::Bool) => Kind::Bool,
        Some(SmpType::Addr | SmpType::Ipv4 | SmpType::Ipv6) => Kind::Ip,
        _ => Kind::Str,
    }
}

impl Acl {
    /// Compiles the text after the ACL's name, e.g. `path_end .php .html`, `hdr(host) -i
    /// example.com`, `src 192.0.2.0/24`, `req.hdr(host),lower -m dom example.com`.
    /// `-f` files are named, not read: validation loads them into the map store
    /// ([`Acl::file_refs`]), where matches look them up.
    pub fn parse(expr: &str) -> Result<Acl, RoutingError> {
        Acl::from_words(&lex::words(expr)?)
    }

    pub(super) fn from_words(words: &[Word]) -> Result<Acl, RoutingError> {
        let Some((head, rest)) = words.split_first() else {
            return Err(RoutingError::Empty);
        };
        let fetch_word = head.text.as_str();
        let (expr, implied) = parse_fetch(fetch_word)?;
        let (mut icase, mut explicit, mut files, mut map) = (false, None, Vec::<String>::new(), false);
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
                "-f" => files.push(value()?.to_string()),
                "-M" => map = true,
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
                "-u" => {
                    return Err(RoutingError::UnsupportedFlag { flag: w.text.clone() });
                }
                _ => {
                    return Err(RoutingError::BadFlag { flag: w.text.clone() });
                }
            }
        }
        patterns.extend(rest.map(|w| w.text.clone()));
        if let Fetch::HttpAuthGroup(_) = expr.fetch {
            if !expr.convs.is_empty() || explicit.is_some() || icase || !files.is_empty() {
                return Err(RoutingError::AuthGroupForm { fetch: fetch_word.to_string() });
            }
            if patterns.is_empty() {
                return Err(RoutingError::MissingPattern { fetch: fetch_word.to_string() });
            }
            let patterns_ = Patterns::compile(MatchMethod::Found, false, &[], Vec::new())?;
            return Ok(Acl { expr, patterns: patterns_, files_are_maps: false, groups: patterns, or: Vec::new() });
        }

        let ty = out_type(&expr);
        let method = implied.or(explicit).unwrap_or(MatchMethod::default_for(kind_of(ty)));
        let want = method.wants();
        // HAProxy accepts a match method when a cast from the sample's type to the method's exists.
        if let (Some(have), Some(want)) = (ty, want)
            && !have.casts_to(want)
        {
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
        if let (false, Some(f)) = (method.takes_patterns(), files.first()) {
            return Err(RoutingError::UnexpectedPattern { fetch: fetch_word.to_string(), pattern: format!("-f {f}") });
        }
        let patterns = Patterns::compile(method, icase, &patterns, files)?;
        Ok(Acl { expr, patterns, files_are_maps: map, groups: Vec::new(), or: Vec::new() })
    }

    /// HAProxy's predefined ACL of that name (`TRUE`, `LOCALHOST`, `METH_GET`, ...).
    pub fn predefined(name: &str) -> Option<Acl> {
        let (_, expr) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
        Acl::parse(expr).ok()
    }

    pub fn matches(&self, ctx: &dyn SampleContext, maps: &dyn Maps) -> bool {
        let own = match &self.expr.fetch {
            Fetch::HttpAuthGroup(list) if !self.groups.is_empty() => ctx
                .http_auth_group(list)
                .is_some_and(|user| self.groups.iter().any(|g| ctx.user_in_group(list, &user, g))),
            _ => self.own_match(ctx, maps),
        };
        own || self.or.iter().any(|a| a.matches(ctx, maps))
    }

    /// Samples lent by the request when the fetch has no converter (no copy, no list), else
    /// every sample of the expression.
    fn own_match(&self, ctx: &dyn SampleContext, maps: &dyn Maps) -> bool {
        if self.expr.convs.is_empty()
            && let Some(hit) = self.expr.fetch.any_lent(ctx, &mut |s| self.patterns.test_lent(s, maps))
        {
            return hit;
        }
        self.expr.eval_all(ctx, maps).into_iter().any(|v| self.patterns.test(v, maps))
    }

    /// `-f` files: (name, index kind, case-folded, read as a map with `-M`), for validation to
    /// load into the map store.
    pub fn file_refs(&self) -> Vec<(&str, MatchKind, bool, bool)> {
        let p = &self.patterns;
        let kind = p.method.kind().unwrap_or(MatchKind::Str);
        let own = p.files.iter().map(move |n| (n.as_str(), kind, p.icase, self.files_are_maps));
        own.chain(self.or.iter().flat_map(|a| a.file_refs())).collect()
    }

    /// Userlists read by `http_auth`/`http_auth_group`, with the groups the latter tests, so
    /// validation can check that they exist (as HAProxy does).
    pub fn auth_refs(&self) -> Vec<(&str, &[String])> {
        let own = match &self.expr.fetch {
            Fetch::HttpAuth(l) | Fetch::HttpAuthGroup(l) => Some((l.as_str(), self.groups.as_slice())),
            _ => None,
        };
        own.into_iter().chain(self.or.iter().flat_map(|a| a.auth_refs())).collect()
    }

    /// Adds another line of the same name: the ACL then matches when either does.
    pub fn or(&mut self, other: Acl) {
        self.or.push(other);
    }

    /// The fetches of this ACL and its same-name lines.
    pub fn fetches(&self) -> Vec<&Fetch> {
        let mut v = vec![&self.expr.fetch];
        v.extend(self.or.iter().flat_map(|a| a.fetches()));
        v
    }

    /// Backends named by `nbsrv(...)`, `be_conn(...)`, ..., so config validation can check they exist.
    pub fn referenced_backends(&self) -> Vec<&str> {
        let own = self.expr.fetch.backend_arg().flatten();
        own.into_iter().chain(self.or.iter().flat_map(|a| a.referenced_backends())).collect()
    }

    /// The expressions of this ACL and its same-name lines, for load-time resolution (the
    /// stick tables their fetches name).
    pub fn exprs_mut(&mut self) -> Vec<&mut SampleExpr> {
        let mut v = vec![&mut self.expr];
        v.extend(self.or.iter_mut().flat_map(|a| a.exprs_mut()));
        v
    }

    /// Map files the expression reads, so the loader can index them.
    pub fn map_refs(&self) -> Vec<crate::sample::FileRef<'_>> {
        self.expr.map_refs().chain(self.or.iter().flat_map(|a| a.map_refs())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Ctx, Facts, Live};
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

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
        Acl::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn hit(expr: &str, req: &Req) -> bool {
        acl(expr).matches(&Ctx(req.facts(), &live()), &crate::sample::MapSet::default())
    }

    fn err(expr: &str) -> RoutingError {
        Acl::parse(expr).unwrap_err()
    }

    /// A counter answering `value`, counting how often it is fetched.
    struct Counter(Option<crate::sample::Value>, std::cell::Cell<u32>);

    impl SampleContext for Counter {
        fn stick(&self, _f: &crate::sample::StickFetch) -> Option<crate::sample::Value> {
            self.1.set(self.1.get() + 1);
            self.0.clone()
        }
    }

    /// Stick counters are lent as numbers (no list), fetched once per match, and decide as
    /// the copied samples would.
    #[test]
    fn stick_counters_match_lent_as_copied() {
        use crate::sample::Value;
        let maps = crate::sample::MapSet::default();
        for v in [Some(Value::Sint(7)), Some(Value::Sint(0)), Some(Value::Bool(true)), None] {
            for a in [
                "sc_http_req_rate(0) gt 5",
                "sc_http_req_rate(0) -m int le 7",
                "sc0_get_gpc0 eq 0",
                "sc_http_req_rate(0) -m found",
                "sc_http_req_rate(0) -m str 7",
                "sc0_tracked -m bool",
                "src_conn_cur(t) ge 1",
            ] {
                let acl = acl(a);
                let copied = {
                    let ctx = Counter(v.clone(), Default::default());
                    acl.expr.eval_all(&ctx, &maps).into_iter().any(|v| acl.patterns.test(v, &maps))
                };
                let ctx = Counter(v.clone(), Default::default());
                assert_eq!(acl.matches(&ctx, &maps), copied, "{a} on {v:?}");
                assert_eq!(ctx.1.get(), 1, "{a}: fetched once");
            }
        }
        assert!(acl("sc_http_req_rate(0) gt 5").matches(&Counter(Some(Value::Sint(7)), Default::default()), &maps));
    }

    /// The lent-sample path (fetch without converter) decides as copying every sample would.
    #[test]
    fn lent_samples_match_as_copied_ones() {
        let reqs = [
            Req::new("/app/v1/items/42?x=1")
                .header("host", "Shop.Example.com")
                .header("x-list", "a, b,\"c,d\"")
                .header("x-list", "5"),
            Req::new("http://h.example/abs?q").header("host", "h.example"),
            Req::new("/"),
        ];
        let acls = [
            "path_beg /app/",
            "path -m len gt 3",
            "url_reg ^/app/.*x=1$",
            "url http://h.example/abs?q",
            "url_len 1",
            "hdr(host) -i shop.example.com",
            "hdr(host) shop.example.com",
            "hdr(host) -m found",
            "hdr(x-list) b",
            "hdr(x-list) -m int 5",
            "hdr(x-list) -m bin 61",
            "req.fhdr(x-list) -m sub c,d",
            "req.hdr -m beg a",
            "method GET",
            "method -m len 3",
            "src 192.0.2.0/24",
            "src -m str 192.0.2.10",
            "src -m end .10",
        ];
        let maps = crate::sample::MapSet::default();
        for r in &reqs {
            let ctx = Ctx(r.facts(), &live());
            for a in acls {
                let acl = acl(a);
                let copied = acl.expr.eval_all(&ctx, &maps).into_iter().any(|v| acl.patterns.test(v, &maps));
                assert_eq!(acl.matches(&ctx, &maps), copied, "{a} on {}", r.uri);
            }
        }
        let r = &reqs[0];
        assert!(hit("hdr(x-list) b", r) && hit("url_reg ^/app/.*x=1$", r) && hit("src -m end .10", r));
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
            assert!(!acl(expr).matches(&Ctx(facts, &live()), &crate::sample::MapSet::default()), "{expr}");
        }
        assert!(acl("src 192.0.2.1").matches(&Ctx(facts, &live()), &crate::sample::MapSet::default()));
        assert!(!acl("req.hdr_cnt(host) eq 0").matches(&Ctx(facts, &live()), &crate::sample::MapSet::default()));
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

    /// The map store validation would build for `acl`'s `-f` files, read from `dir`.
    fn store_for(acl: &Acl, dir: &Path) -> Result<crate::maps::Shared, String> {
        let mut loader = crate::maps::Loader::new(dir);
        for (file, kind, icase, map) in acl.file_refs() {
            loader.need(file, kind, icase, !map, "test")?;
        }
        let shared = crate::maps::Shared::default();
        shared.install(&loader.finish());
        Ok(shared)
    }

    #[test]
    fn pattern_files() {
        // As HAProxy: leading blanks go, the line ends at CR, trailing blanks stay part of it.
        let dir = temp_file("paths.lst", "# api prefixes\n/api\n\n   /static\r\n#/admin\n/spaced  \n");
        let a = acl("path_beg -f paths.lst");
        let live = live();
        let store = store_for(&a, &dir).unwrap();
        let cases = [("/api/x", true), ("/static/y", true), ("/admin", false), ("/other", false), ("/spaced", false)];
        for (path, want) in cases {
            let r = Req::new(path);
            assert_eq!(a.matches(&Ctx(r.facts(), &live), &**store.store.load()), want, "{path}");
        }
        // Inline patterns and several files combine; flags come before patterns, as in HAProxy.
        let abs = dir.join("paths.lst");
        let b = acl(&format!("path_beg -f {} -f paths.lst /inline", abs.display()));
        let store = store_for(&b, &dir).unwrap();
        assert!(b.matches(&Ctx(Req::new("/inline/1").facts(), &live), &**store.store.load()));
        assert!(b.matches(&Ctx(Req::new("/api").facts(), &live), &**store.store.load()));
        // `add acl` at run time: the same ACL matches the new pattern at once.
        store.change("paths.lst", crate::maps::overlay::Op::Add { key: b"/new".to_vec(), value: Vec::new() }).unwrap();
        assert!(b.matches(&Ctx(Req::new("/new/x").facts(), &live), &**store.store.load()));
        // Networks load the same way; an empty file never matches; `-i` folds the file too.
        let dir = temp_file("nets.lst", "10.0.0.0/8\n2001:db8::/32\n");
        let n = acl("src -f nets.lst");
        let mut r = Req::new("/");
        r.src = "10.1.1.1";
        assert!(n.matches(&Ctx(r.facts(), &live), &**store_for(&n, &dir).unwrap().store.load()));
        let dir = temp_file("empty.lst", "# nothing yet\n");
        let e = acl("path -f empty.lst");
        assert!(!e.matches(&Ctx(r.facts(), &live), &**store_for(&e, &dir).unwrap().store.load()));
        let dir = temp_file("hosts.lst", "WWW.Example.com\n");
        let i = acl("hdr(host) -i -f hosts.lst");
        let host = Req::new("/").header("host", "www.EXAMPLE.com");
        assert!(i.matches(&Ctx(host.facts(), &live), &**store_for(&i, &dir).unwrap().store.load()));
        // A file the store never loaded matches nothing (validation loads every one).
        assert!(!i.matches(&Ctx(host.facts(), &live), &crate::sample::MapSet::default()));
        let dir = temp_file("bad.lst", "10.0.0.0/8\nnot-an-ip\n");
        let err = store_for(&acl("src -f bad.lst"), &dir).err().unwrap();
        assert!(err.contains("line 2") && err.contains("not-an-ip"), "{err}");
        assert!(store_for(&acl("path_beg -f missing.lst"), &dir).err().unwrap().contains("missing.lst"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_error() {
        use RoutingError as E;
        let s = String::from;
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("   "), E::Empty);
        assert_eq!(err("pathbeg /a"), E::UnknownFetch { fetch: s("pathbeg") });
        assert!(matches!(err("hdr(host,x) /a"), E::Sample(_)));
        assert!(matches!(err("path,nosuchconv /a"), E::Sample(_)));
        assert!(matches!(err("src,lower(1) x"), E::Sample(_)));
        assert_eq!(err("path -x /a"), E::BadFlag { flag: s("-x") });
        assert_eq!(err("path -u 1 /a"), E::UnsupportedFlag { flag: s("-u") });
        assert_eq!(err("path -f"), E::MissingFlagValue { flag: s("-f") });
        assert_eq!(err("path -m"), E::MissingFlagValue { flag: s("-m") });
        assert_eq!(err("path -m regex x"), E::UnknownMatch { method: s("regex") });
        assert_eq!(err("req.body -m int 1"), E::IncompatibleMatch { fetch: s("req.body"), method: "int" });
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
        assert!(matches!(err("hdr(x) -m found -f a.lst"), E::UnexpectedPattern { .. }));
    }

    #[test]
    fn sample_expressions_with_converters_and_casts() {
        let r = Req::new("/Static/A.PNG?id=42")
            .header("host", "WWW.Example.com:8080")
            .header("x-forwarded-for", "198.51.100.7")
            .header("content-length", "12");
        assert!(hit("path,lower -m beg /static/", &r));
        assert!(!hit("path -m beg /static/", &r));
        assert!(hit("req.hdr(host),lower,field(1,:) www.example.com", &r));
        assert!(hit("hdr_dom(host) -i example.com", &r));
        assert!(hit("path,length gt 5", &r));
        assert!(hit("urlp(id),mul(2) 84", &r));
        assert!(hit("url_param(id) -m int 42", &r), "a string sample cast to an integer");
        // HAProxy casts the sample to the method's type: an address matched as a string, a
        // port as a string, a header as an address.
        assert!(hit("src -m beg 192.0.2.", &r));
        assert!(hit("dst_port -m reg ^8.$", &r));
        assert!(hit("hdr_ip(x-forwarded-for) 198.51.100.0/24", &r));
        assert!(hit("req.hdr(x-forwarded-for) -m ip 198.51.100.7", &r));
        assert!(hit("hdr_val(content-length) ge 12", &r));
        assert!(hit("req.hdr_cnt(host) eq 1", &r));
        assert!(hit("hdr(host) -m found", &r) && !hit("hdr(x-none) -m found", &r));
        assert!(hit("path_len 13", &r));
        assert!(hit("src,ipmask(24) 192.0.2.0", &r));
        assert!(hit("str(abc) -m str abc", &r));
        assert!(hit("int(3) 3", &r) && hit("bool(1) -m bool", &r) && !hit("bool(0) -m bool", &r));
        assert!(hit("method GET", &r) && hit("method -i get", &r));
        assert!(hit("req.proto_http -m bool", &r));
        assert!(hit("req.fhdr(host) -m end :8080", &r));
        assert!(hit("base -m beg WWW.Example.com:8080/Static", &r));
        assert!(hit("base_sub Static/A", &r));
        assert!(hit("cook_cnt eq 0", &r));
    }

    #[test]
    fn map_files_as_pattern_lists() {
        let dir = temp_file("hosts.map", "# comment\nwww.example.com be1\napi.example.com be2\n");
        let r = Req::new("/").header("host", "api.example.com");
        let live = live();
        let yes = acl("hdr(host) -M -f hosts.map");
        let store = store_for(&yes, &dir).unwrap();
        assert!(yes.matches(&Ctx(r.facts(), &live), &**store.store.load()));
        let other = Req::new("/").header("host", "be2");
        assert!(!yes.matches(&Ctx(other.facts(), &live), &**store.store.load()), "values are not patterns");
    }

    #[test]
    fn error_messages_name_the_token() {
        for (expr, token) in [
            ("pathbeg /a", "pathbeg"),
            ("path -x /a", "-x"),
            ("path_reg (", "("),
            ("src 300.1.1.1", "300.1.1.1"),
            ("nbsrv(a) less 1", "less"),
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
        let m = |name: &str, f: &Facts<'_>| {
            Acl::predefined(name).unwrap().matches(&Ctx(*f, &live), &crate::sample::MapSet::default())
        };
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
