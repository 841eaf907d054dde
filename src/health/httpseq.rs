//! HAProxy 2.2+'s `http-check` rules on the `tcp-check` engine: the request a `send` builds
//! (`meth`, `uri`/`uri-lf`, `ver`, `hdr`, `body`/`body-lf`), the `expect` rules only HTTP has
//! (`status`, `rstatus`, `hdr`, `fhdr`, and `string`/`rstring`/`string-lf` on the body), the
//! reading of the response they judge, and the assembly of a ruleset from `option httpchk` and
//! the `http-check` lines, as HAProxy 2.6 does it (`tcpcheck_add_http_rule`,
//! `check_proxy_tcpcheck`). Pure: no I/O.

use super::check_ctx::{CheckCtx, Fmt};
use super::http::{self, MAX_BODY, MAX_HEAD};
use super::spec::{ExpectRule, HttpCheck, HttpVersion};
use super::tcpcheck::{ExpectStep, Rule, Seq, Step};
use std::ops::RangeInclusive;

/// A URI or a body: as written, or a log-format string rendered per check.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    Plain(String),
    Lf(Fmt),
}

impl Text {
    fn render(&self, cx: &CheckCtx<'_>) -> Vec<u8> {
        match self {
            Text::Plain(s) => s.as_bytes().to_vec(),
            Text::Lf(f) => f.render(cx),
        }
    }
}

/// `http-check send` (or the request of `option httpchk`): what it sets; unset parts take
/// HAProxy's defaults (`OPTIONS`, `/`, `HTTP/1.0`, no body).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpSend {
    pub meth: Option<String>,
    pub uri: Option<Text>,
    pub ver: Option<String>,
    /// `hdr NAME VALUE`: values are log-format strings; one rendering empty is left out.
    pub hdrs: Vec<(String, Fmt)>,
    pub body: Option<Text>,
    pub comment: Option<String>,
    /// The request of `option httpchk`, which an explicit `send` merges into.
    pub from_opt: bool,
}

impl HttpSend {
    /// The request of `option httpchk`'s text, already checked by [`HttpCheck::from_haproxy`]
    /// (HAProxy's old `HTTP/1.1\r\nHost:\ x` trick gives headers).
    pub fn from_option(c: &HttpCheck) -> HttpSend {
        HttpSend {
            meth: Some(c.method.clone()),
            uri: Some(Text::Plain(c.uri.clone())),
            ver: Some(c.version.to_string()),
            hdrs: c.headers.iter().map(|(n, v)| (n.clone(), Fmt::text(v))).collect(),
            body: None,
            comment: None,
            from_opt: true,
        }
    }

    /// HAProxy's `tcpcheck_overwrite_send_http_rule`: what `new` sets replaces this rule's,
    /// and its headers replace these whole.
    fn overwrite(&mut self, new: HttpSend) {
        if new.meth.is_some() {
            self.meth = new.meth;
        }
        if new.uri.is_some() {
            self.uri = new.uri;
        }
        if new.ver.is_some() {
            self.ver = new.ver;
        }
        self.hdrs = new.hdrs;
        if new.body.is_some() {
            self.body = new.body;
        }
        if new.comment.is_some() {
            self.comment = new.comment;
        }
    }

    pub fn method(&self) -> &str {
        self.meth.as_deref().unwrap_or("OPTIONS")
    }

    fn version(&self) -> &str {
        self.ver.as_deref().unwrap_or("HTTP/1.0")
    }

    /// The request bytes. Headers as configured (empty renderings left out), then the server
    /// state (`send-state`), `content-length` with a body, and `connection: close` unless a
    /// `connection` header was given, as HAProxy sends them. Unlike HAProxy, an HTTP/1.1
    /// request without `host` gets `host_default` (the server's address), which HTTP/1.1
    /// servers require.
    pub fn render(&self, cx: &CheckCtx<'_>, host_default: Option<&str>, state: Option<&str>) -> Vec<u8> {
        let mut uri = self.uri.as_ref().map(|u| u.render(cx)).unwrap_or_default();
        if uri.is_empty() {
            uri = b"/".to_vec();
        }
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(self.method().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&uri);
        out.push(b' ');
        out.extend_from_slice(self.version().as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut has_host = false;
        let mut has_conn = false;
        for (name, value) in &self.hdrs {
            let v = value.render(cx);
            if v.is_empty() {
                continue;
            }
            has_host |= name.eq_ignore_ascii_case("host");
            has_conn |= name.eq_ignore_ascii_case("connection");
            header(&mut out, name.as_bytes(), &v);
        }
        let absolute = uri.starts_with(b"http://") || uri.starts_with(b"https://");
        if !has_host && !absolute && self.version() == "HTTP/1.1" {
            let host = host_default.map(str::to_string).unwrap_or_else(|| cx.target.to_string());
            header(&mut out, b"host", host.as_bytes());
        }
        if let Some(s) = state {
            header(&mut out, super::send_state::HEADER.as_bytes(), s.as_bytes());
        }
        let body = self.body.as_ref().map(|b| b.render(cx)).unwrap_or_default();
        if !body.is_empty() {
            header(&mut out, b"content-length", body.len().to_string().as_bytes());
        }
        if !has_conn {
            header(&mut out, b"connection", b"close");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// The same request as the fast HTTP check when it has nothing that check lacks (no body,
    /// no log-format parts, HTTP/1.0 or 1.1).
    fn as_simple(&self) -> Option<HttpCheck> {
        if self.body.is_some() || self.comment.is_some() {
            return None;
        }
        let uri = match &self.uri {
            None => "/".to_string(),
            Some(Text::Plain(u)) => u.clone(),
            Some(Text::Lf(_)) => return None,
        };
        let version = match self.version() {
            "HTTP/1.0" => HttpVersion::Http10,
            "HTTP/1.1" => HttpVersion::Http11,
            _ => return None,
        };
        let mut headers = Vec::new();
        for (n, v) in &self.hdrs {
            let [crate::sample::Segment::Literal(t)] = v.fmt.segments.as_slice() else { return None };
            headers.push((n.clone(), String::from_utf8(t.clone()).ok()?));
        }
        Some(HttpCheck {
            method: self.method().to_string(),
            uri,
            version,
            headers,
            expect: Default::default(),
            disable_on_404: false,
            send_state: false,
        })
    }
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How `hdr`/`fhdr` compare a name or a value (`-m str|beg|end|sub|reg`).
#[derive(Debug, Clone)]
pub enum Match {
    Str(Text),
    Beg(Text),
    End(Text),
    Sub(Text),
    Reg(regex::Regex),
}

impl PartialEq for Match {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Self::Str(a), Self::Str(b))
            | (Self::Beg(a), Self::Beg(b))
            | (Self::End(a), Self::End(b))
            | (Self::Sub(a), Self::Sub(b)) => a == b,
            (Self::Reg(a), Self::Reg(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Match {
    fn parse(method: &str, pat: &str, lf: bool, icase: bool) -> Result<Match, String> {
        let text = || -> Result<Text, String> {
            Ok(if lf { Text::Lf(Fmt::parse(pat)?) } else { Text::Plain(pat.to_string()) })
        };
        Ok(match method {
            "str" => Match::Str(text()?),
            "beg" => Match::Beg(text()?),
            "end" => Match::End(text()?),
            "sub" => Match::Sub(text()?),
            "reg" if lf => return Err("log-format string is not supported with a regex matching method".into()),
            "reg" => Match::Reg(
                regex::RegexBuilder::new(pat)
                    .case_insensitive(icase)
                    .build()
                    .map_err(|e| format!("bad regex {pat:?}: {e}"))?,
            ),
            other => return Err(format!("`-m` only supports 'str', 'beg', 'end', 'sub' or 'reg' (got '{other}')")),
        })
    }

    /// The log-format pattern rendered; `None` when it renders empty (HAProxy then fails).
    fn pattern(&self, cx: &CheckCtx<'_>) -> Option<Option<Vec<u8>>> {
        let t = match self {
            Match::Str(t) | Match::Beg(t) | Match::End(t) | Match::Sub(t) => t,
            Match::Reg(_) => return Some(None),
        };
        let p = t.render(cx);
        if matches!(t, Text::Lf(_)) && p.is_empty() { None } else { Some(Some(p)) }
    }

    fn hit(&self, pat: Option<&[u8]>, s: &[u8], icase: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| if icase { a.eq_ignore_ascii_case(b) } else { a == b };
        let p = pat.unwrap_or_default();
        match self {
            Match::Str(_) => eq(s, p),
            Match::Beg(_) => s.len() >= p.len() && eq(&s[..p.len()], p),
            Match::End(_) => s.len() >= p.len() && eq(&s[s.len() - p.len()..], p),
            Match::Sub(_) if icase => {
                let (s, p) = (s.to_ascii_lowercase(), p.to_ascii_lowercase());
                memchr::memmem::find(&s, &p).is_some()
            }
            Match::Sub(_) => memchr::memmem::find(s, p).is_some(),
            Match::Reg(re) => re.is_match(&String::from_utf8_lossy(s)),
        }
    }
}

/// `hdr|fhdr name [-m M] NAME [value [-m M] VALUE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HdrRule {
    pub name: Match,
    pub value: Option<Match>,
    /// `fhdr`: a value is the whole line, not each comma-separated element.
    pub full: bool,
}

/// The `expect` rules of an HTTP ruleset.
#[derive(Debug, Clone)]
pub enum HttpRule {
    Status(Vec<RangeInclusive<u16>>),
    RStatus(regex::Regex),
    Hdr(Box<HdrRule>),
    Body(Vec<u8>),
    RBody(regex::bytes::Regex),
    BodyLf(Fmt),
}

impl PartialEq for HttpRule {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Self::Status(a), Self::Status(b)) => a == b,
            (Self::RStatus(a), Self::RStatus(b)) => a.as_str() == b.as_str(),
            (Self::Hdr(a), Self::Hdr(b)) => a == b,
            (Self::Body(a), Self::Body(b)) => a == b,
            (Self::RBody(a), Self::RBody(b)) => a.as_str() == b.as_str(),
            (Self::BodyLf(a), Self::BodyLf(b)) => a == b,
            _ => false,
        }
    }
}

/// Parses the rule words of an HTTP `expect` (after `!`): `kind` and what follows it. Returns
/// the rule and how many words after `kind` it took.
pub fn parse_rule(kind: &str, rest: &[String]) -> Result<(Rule, usize), String> {
    let pat = || rest.first().ok_or_else(|| format!("'{kind}' expects a <pattern> as argument"));
    let rule = match kind {
        "status" => HttpRule::Status(status_list(pat()?)?),
        "rstatus" => HttpRule::RStatus(regex::Regex::new(pat()?).map_err(|e| format!("bad regex: {e}"))?),
        "string" => HttpRule::Body(pat()?.as_bytes().to_vec()),
        "rstring" => HttpRule::RBody(regex::bytes::Regex::new(pat()?).map_err(|e| format!("bad regex: {e}"))?),
        "string-lf" => HttpRule::BodyLf(Fmt::parse(pat()?)?),
        "hdr" | "fhdr" => return parse_hdr(kind, rest),
        "binary" | "rbinary" | "binary-lf" | "custom" => {
            return Err(format!(
                "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got '{kind}' as argument."
            ));
        }
        other => return Err(format!("unknown expect keyword `{other}`")),
    };
    Ok((Rule::Http(rule), 1))
}

fn parse_hdr(kind: &str, rest: &[String]) -> Result<(Rule, usize), String> {
    let w = |i: usize| rest.get(i).map(String::as_str);
    let name_kw = w(0).filter(|k| *k == "name" || *k == "name-lf");
    let Some(name_kw) = name_kw.filter(|_| w(1).is_some()) else {
        return Err(format!("'{kind}' expects at the name keyword as first argument followed by a pattern"));
    };
    let mut i = 1;
    let mut method = "str";
    if w(i) == Some("-m") {
        method = w(i + 1).ok_or_else(|| format!("'{kind}' : '-m' expects at a matching pattern"))?;
        i += 2;
    }
    let npat = w(i).ok_or_else(|| format!("'{kind}' expects a header name pattern"))?;
    let name = Match::parse(method, npat, name_kw == "name-lf", true).map_err(|e| format!("'{kind}': {e}"))?;
    i += 1;
    let mut value = None;
    if let Some(vkw @ ("value" | "value-lf")) = w(i) {
        i += 1;
        let mut method = "str";
        if w(i) == Some("-m") {
            method = w(i + 1).ok_or_else(|| format!("'{kind}' : '-m' expects at a matching pattern"))?;
            i += 2;
        }
        let vpat = w(i).ok_or_else(|| format!("'{kind}' expect a pattern with the value keyword"))?;
        value = Some(Match::parse(method, vpat, vkw == "value-lf", false).map_err(|e| format!("'{kind}': {e}"))?);
        i += 1;
    }
    Ok((Rule::Http(HttpRule::Hdr(Box::new(HdrRule { name, value, full: kind == "fhdr" }))), i))
}

/// HAProxy's status list: codes and ranges separated by commas (`200`, `200-399,404`).
fn status_list(text: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    let code = |s: &str| s.trim().parse::<u16>().map_err(|_| format!("invalid status code list '{text}'"));
    text.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b { Err(format!("invalid range of status codes '{text}'")) } else { Ok(a..=b) }
            }
            None => code(part).map(|n| n..=n),
        })
        .collect()
}

/// A response as far as it has arrived.
#[derive(Debug, PartialEq)]
pub struct Resp {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, at most [`MAX_BODY`].
    pub body: Vec<u8>,
    /// The whole message is in (or all there will be).
    pub complete: bool,
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    NeedMore,
    Invalid,
    Resp(Resp),
}

/// Reads `buf` as an HTTP/1 response; `closed`: nothing more will come. As HAProxy, the rules
/// are judged once the headers are complete.
pub fn parse(buf: &[u8], closed: bool, head_only: bool) -> Parsed {
    let status = match http::status_line(buf) {
        Ok(Some(s)) => s,
        Ok(None) if closed || buf.len() > MAX_HEAD => return Parsed::Invalid,
        Ok(None) => return Parsed::NeedMore,
        Err(_) => return Parsed::Invalid,
    };
    let Some(end) = http::head_end(buf) else {
        return if closed || buf.len() > MAX_HEAD { Parsed::Invalid } else { Parsed::NeedMore };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let reason = first.splitn(3, ' ').nth(2).unwrap_or_default().trim().to_string();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let raw = &buf[end..];
    let (body, complete) = match http::framing(&buf[..end], status, head_only) {
        http::Framing::Length(n) => {
            let take = n.min(raw.len()).min(MAX_BODY);
            (raw[..take].to_vec(), raw.len() >= n.min(MAX_BODY))
        }
        http::Framing::Chunked => {
            let (mut b, done) = http::dechunk(raw);
            b.truncate(MAX_BODY);
            let full = b.len() >= MAX_BODY;
            (b, done || full)
        }
        http::Framing::UntilClose => (raw[..raw.len().min(MAX_BODY)].to_vec(), closed || raw.len() >= MAX_BODY),
    };
    Parsed::Resp(Resp { status, reason, headers, body, complete: complete || closed })
}

/// What an HTTP expect says about a response.
#[derive(Debug, PartialEq)]
pub enum Judged {
    Wait,
    Hit(bool),
    /// Cannot be judged: the status HAProxy reports and its text.
    Error(&'static str),
}

/// Judges `rule` on `resp`. `min_recv` applies to body rules, as in HAProxy.
pub fn judge(rule: &HttpRule, resp: &Resp, min_recv: Option<usize>, cx: &CheckCtx<'_>) -> Judged {
    let last = resp.complete;
    match rule {
        HttpRule::Status(ranges) => Judged::Hit(ranges.iter().any(|r| r.contains(&resp.status))),
        HttpRule::RStatus(re) => Judged::Hit(re.is_match(&resp.status.to_string())),
        HttpRule::Hdr(h) => {
            let Some(npat) = h.name.pattern(cx) else {
                return Judged::Error("log-format string evaluated to an empty string");
            };
            let vpat = match &h.value {
                Some(v) => match v.pattern(cx) {
                    Some(p) => Some(p),
                    None => return Judged::Error("log-format string evaluated to an empty string"),
                },
                None => None,
            };
            let hit = resp.headers.iter().filter(|(n, _)| h.name.hit(npat.as_deref(), n.as_bytes(), true)).any(
                |(_, v)| match (&h.value, &vpat) {
                    (Some(m), Some(p)) if h.full => m.hit(p.as_deref(), v.as_bytes(), false),
                    (Some(m), Some(p)) => {
                        v.split(',').any(|e| m.hit(p.as_deref(), e.trim_matches([' ', '\t']).as_bytes(), false))
                    }
                    _ => true,
                },
            );
            Judged::Hit(hit)
        }
        HttpRule::Body(_) | HttpRule::RBody(_) | HttpRule::BodyLf(_) => {
            let body = &resp.body;
            if body.is_empty() {
                return if last {
                    Judged::Error("HTTP content check could not find a response body")
                } else {
                    Judged::Wait
                };
            }
            let lf;
            let needle: Option<&[u8]> = match rule {
                HttpRule::Body(s) => Some(s),
                HttpRule::BodyLf(f) => {
                    lf = f.render(cx);
                    if lf.is_empty() {
                        return Judged::Error("log-format string evaluated to an empty string");
                    }
                    Some(&lf)
                }
                _ => None,
            };
            let short = needle.is_some_and(|n| body.len() < n.len()) || min_recv.is_some_and(|m| body.len() < m);
            if !last && short {
                return Judged::Wait;
            }
            let hit = match (rule, needle) {
                (HttpRule::RBody(re), _) => re.is_match(body),
                (_, Some(n)) => memchr::memmem::find(body, n).is_some(),
                _ => false,
            };
            if !hit && !last && min_recv.is_none() {
                return Judged::Wait;
            }
            Judged::Hit(hit)
        }
    }
}

/// Whether a rule looks at the body (its failure is L7RSP; the others' L7STS).
pub fn is_body_rule(rule: &HttpRule) -> bool {
    matches!(rule, HttpRule::Body(_) | HttpRule::RBody(_) | HttpRule::BodyLf(_))
}

/// One `http-check` line, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Rule(Box<Step>),
    DisableOn404,
    SendState,
}

/// Parses one `http-check` line (what follows `http-check`), HAProxy-escaped.
pub fn parse_line(line: &str, pending_comment: &mut Option<String>) -> Result<Line, String> {
    let words = super::tcpcheck::split(line).map_err(str::to_string)?;
    let kw = words.first().map(|w| String::from_utf8_lossy(w).into_owned()).unwrap_or_default();
    let rest = &words[words.len().min(1)..];
    let no_args = |what| if rest.is_empty() { Ok(()) } else { Err(format!("'{what}' takes no argument")) };
    match kw.as_str() {
        "disable-on-404" => no_args("disable-on-404").map(|_| Line::DisableOn404),
        "send-state" => no_args("send-state").map(|_| Line::SendState),
        "send" => {
            let rest: Vec<String> = rest.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
            parse_send(&rest, pending_comment.take()).map(|s| Line::Rule(Box::new(Step::SendHttp(Box::new(s)))))
        }
        "connect" | "expect" | "comment" => {
            super::tcpcheck::parse_words(kw.as_bytes(), rest.to_vec(), pending_comment, true)
                .map(|s| Line::Rule(Box::new(s)))
        }
        "" => Err("missing http-check rule".into()),
        k if k.starts_with("set-var") || k.starts_with("unset-var") => {
            super::tcpcheck::parse_words(kw.as_bytes(), rest.to_vec(), pending_comment, true)
                .map(|s| Line::Rule(Box::new(s)))
        }
        other => Err(format!(
            "'http-check' only supports 'disable-on-404', 'send-state', 'comment', 'connect', 'send', 'expect' but got '{other}'"
        )),
    }
}

fn parse_send(rest: &[String], comment: Option<String>) -> Result<HttpSend, String> {
    let mut s = HttpSend { comment, ..Default::default() };
    let mut i = 0;
    while i < rest.len() {
        let kw = rest[i].as_str();
        let arg = |n: usize| {
            rest.get(i + n).filter(|a| !a.is_empty()).ok_or_else(|| format!("'{kw}' expects a string as argument."))
        };
        match kw {
            "meth" => {
                let m = arg(1)?;
                if !m.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
                    return Err(format!("invalid HTTP method {m:?}"));
                }
                s.meth = Some(m.to_ascii_uppercase());
            }
            "uri" => s.uri = Some(Text::Plain(check_token("uri", arg(1)?)?)),
            "uri-lf" => s.uri = Some(Text::Lf(Fmt::parse(arg(1)?)?)),
            "ver" => s.ver = Some(check_token("ver", arg(1)?)?),
            "hdr" => {
                let (Ok(n), Ok(v)) = (arg(1), arg(2)) else {
                    return Err("'hdr' expects <name> and <value> as arguments".into());
                };
                if !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
                    return Err(format!("invalid header name {n:?}"));
                }
                if n.eq_ignore_ascii_case("host") && s.hdrs.iter().any(|(h, _)| h.eq_ignore_ascii_case("host")) {
                    return Err(format!("'{n}' header already defined"));
                }
                // As HAProxy: the framing is lbha's to write.
                if !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding") {
                    if v.bytes().any(|b| b == b'\r' || b == b'\n') {
                        return Err(format!("invalid value for header '{n}': line break"));
                    }
                    s.hdrs.push((n.clone(), Fmt::parse(v)?));
                }
                i += 1;
            }
            "body" => s.body = Some(Text::Plain(arg(1)?.clone())),
            "body-lf" => s.body = Some(Text::Lf(Fmt::parse(arg(1)?)?)),
            "comment" => s.comment = Some(arg(1)?.clone()),
            other => {
                return Err(format!(
                    "expects 'comment', 'meth', 'uri', 'uri-lf', 'ver', 'hdr', 'body' or 'body-lf' but got '{other}' as argument."
                ));
            }
        }
        i += 2;
    }
    Ok(s)
}

fn check_token(what: &str, v: &str) -> Result<String, String> {
    if v.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("'{what}' contains a space or a control character: {v:?}"));
    }
    Ok(v.to_string())
}

/// Assembles the ruleset of `option httpchk` (`opt`) and the `http-check` rules, as HAProxy
/// 2.6: the first explicit `send` merges into the option's request, the order of rules is
/// checked (`send` after a `connect`, `expect` after a `send`, `connect` after an `expect`),
/// a last `send` gets the implicit `expect status 200-399`, and a ruleset that does not open
/// with `connect` gets the implicit one (added by the engine). Errors name the step.
pub fn assemble(opt: HttpSend, rules: Vec<Step>) -> Result<Vec<Step>, String> {
    let mut list: Vec<Step> = vec![Step::SendHttp(Box::new(opt))];
    let is_rule = |s: &Step| !s.is_transparent();
    let implicit_send = |s: &Step| matches!(s, Step::SendHttp(h) if h.from_opt);
    for (n, chk) in rules.into_iter().enumerate() {
        let step = n + 1;
        if !is_rule(&chk) {
            list.push(chk);
            continue;
        }
        // As HAProxy: with a `connect`, the ruleset must open with one (comments and the
        // option's request aside).
        if matches!(chk, Step::Connect { .. })
            && list.iter().take_while(|s| !matches!(s, Step::Connect { .. })).any(|s| is_rule(s) && !implicit_send(s))
        {
            return Err(format!(
                "connect rule at step {step}: first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the ruleset"
            ));
        }
        let last = list.iter().rev().find(|s| is_rule(s));
        let ok = match (last, &chk) {
            (None, _) => true,
            (Some(l), _) if implicit_send(l) => true,
            (Some(l), Step::SendHttp(_)) => matches!(l, Step::Connect { .. }),
            (Some(l), Step::Expect(_)) => matches!(l, Step::SendHttp(_) | Step::Expect(_)),
            (Some(l), Step::Connect { .. }) => matches!(l, Step::Expect(_)),
            _ => true,
        };
        if !ok {
            let (what, missing) = match chk {
                Step::SendHttp(_) => ("send", "connect"),
                Step::Expect(_) => ("expect", "send"),
                _ => ("connect", "expect"),
            };
            return Err(format!("unable to add http-check {what} rule at step {step} (missing {missing} rule)"));
        }
        if let Step::SendHttp(new) = chk {
            let first = list.iter().position(is_rule);
            if let Some(i) = first.filter(|i| implicit_send(&list[*i])) {
                let mut merged = list.remove(i);
                if let Step::SendHttp(old) = &mut merged {
                    old.overwrite(*new);
                    old.from_opt = false;
                }
                list.push(merged);
            } else {
                list.push(Step::SendHttp(new));
            }
            continue;
        }
        list.push(chk);
    }
    // The option's request, still first, goes after a first `connect`.
    if let Some(i) = list.iter().position(is_rule)
        && implicit_send(&list[i])
        && let Some(j) = list[i + 1..].iter().position(is_rule).map(|j| j + i + 1)
        && matches!(list[j], Step::Connect { .. })
    {
        let s = list.remove(i);
        list.insert(j, s);
    }
    if matches!(list.iter().rev().find(|s| is_rule(s)), Some(Step::SendHttp(_))) {
        list.push(Step::Expect(ExpectStep {
            rule: Rule::Http(HttpRule::Status(vec![200..=399])),
            ..Default::default()
        }));
    }
    Ok(list)
}

/// The fast HTTP check for a ruleset it can run just as well: one request (the implicit
/// connect) and at most one plain `expect status|rstatus|string|rstring`.
pub fn as_simple(seq: &Seq) -> Option<HttpCheck> {
    let rules: Vec<&Step> = seq.steps.iter().filter(|s| !matches!(s, Step::Comment)).collect();
    let (send, expect) = match rules.as_slice() {
        [Step::SendHttp(s)] => (s, None),
        [Step::SendHttp(s), Step::Expect(e)] => (s, Some(e)),
        _ => return None,
    };
    let mut c = send.as_simple()?;
    if let Some(e) = expect {
        let bare = ExpectStep { negate: e.negate, rule: e.rule.clone(), ..Default::default() };
        if *e != bare {
            return None;
        }
        let rule = match &e.rule {
            Rule::Http(HttpRule::Status(r)) if *r == [200..=399] && !e.negate => ExpectRule::Status2xx3xx,
            Rule::Http(HttpRule::Status(r)) => ExpectRule::Status(r.clone()),
            Rule::Http(HttpRule::RStatus(re)) => ExpectRule::RStatus(re.clone()),
            Rule::Http(HttpRule::Body(s)) => ExpectRule::String(String::from_utf8(s.clone()).ok()?),
            Rule::Http(HttpRule::RBody(re)) => ExpectRule::RString(regex::Regex::new(re.as_str()).ok()?),
            _ => return None,
        };
        c.expect = super::spec::Expect { negate: e.negate, rule };
    }
    Some(c)
}

#[cfg(test)]
mod tests;
