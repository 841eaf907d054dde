//! What one server's check does: its kind (TCP, HTTP, external command), target and timings, and
//! the parsing of HAProxy's `option httpchk` and `http-check expect` texts.

use regex::Regex;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Why a check setting was rejected.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(
        "too many words in httpchk ({count}); expected [<method>] <uri> [<version>], escape spaces in headers as '\\ '"
    )]
    TooManyWords { count: usize },
    #[error("trailing backslash in httpchk")]
    TrailingBackslash,
    #[error("invalid HTTP method {method:?}")]
    BadMethod { method: String },
    #[error("invalid check URI {uri:?}: {why}")]
    BadUri { uri: String, why: &'static str },
    #[error("unsupported HTTP version {version:?}; expected HTTP/1.0 or HTTP/1.1")]
    BadVersion { version: String },
    #[error("invalid check header {line:?}: {why}")]
    BadHeader { line: String, why: &'static str },
    #[error("invalid expect {text:?}: {why}")]
    BadExpect { text: String, why: &'static str },
    #[error("invalid expect status {text:?}; expected codes or ranges like 200,300-399")]
    BadStatus { text: String },
    #[error("invalid tcp-check rule {line:?}: {why}")]
    BadTcpCheck { line: String, why: String },
    #[error("invalid expect regex {pattern:?}: {source}")]
    BadRegex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

/// How a server is probed.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A TCP connect that completes (HAProxy's plain `check`).
    Tcp,
    Http(HttpCheck),
    External(ExternalCheck),
    /// `tcp-check` rules, or a protocol check built from them (redis, mysql, ...).
    Seq(super::tcpcheck::Seq),
}

/// The settings of one server's checker, resolved from config.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub kind: CheckKind,
    /// The probed address: the server's, or its `addr`/`port` overrides.
    pub addr: SocketAddr,
    /// Interval while the server is fully UP.
    pub inter: Duration,
    /// Interval while going up or down.
    pub fastinter: Duration,
    /// Interval while fully DOWN.
    pub downinter: Duration,
    /// Bound on one probe (HAProxy's `timeout check`, else `inter`).
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// `spread_checks`: +/- this percent of jitter on every interval (HAProxy caps it at 50).
    pub spread_pct: u8,
    pub backend: String,
    pub server: String,
    /// Host header for HTTP checks when the check text sets none.
    pub host_header: Option<String>,
    /// A PROXY protocol header sent first on every check connection (`check-send-proxy`).
    pub proxy_header: Option<Vec<u8>>,
    /// Checks over TLS (`check-ssl`, or an `ssl` server checked on its own address).
    pub tls: Option<CheckTls>,
    /// The server's `source`: checks leave from that address too, as HAProxy's.
    pub source: Option<std::sync::Arc<crate::proxy::source::Source>>,
}

/// The TLS of a server's checks: its client config (the server's `verify`, `ca-file`, `crt` and
/// policy, with `check-alpn`) and the name sent as SNI and verified (`check-sni`).
#[derive(Debug, Clone)]
pub struct CheckTls {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: rustls_pki_types::ServerName<'static>,
}

impl PartialEq for CheckTls {
    fn eq(&self, o: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.config, &o.config) && self.name == o.name
    }
}

/// HAProxy's `external-check command`, run once per check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCheck {
    pub command: PathBuf,
    /// `external-check path`: the child's whole PATH (HAProxy's default is empty).
    pub path_env: Option<String>,
    /// The child is killed when it runs longer than this.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        })
    }
}

/// An HTTP check request and what its response must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub method: String,
    pub uri: String,
    pub version: HttpVersion,
    pub headers: Vec<(String, String)>,
    pub expect: Expect,
    /// `http-check disable-on-404`: a 404 passes the check but takes the server out of load
    /// balancing (HAProxy's NOLB) until it answers otherwise.
    pub disable_on_404: bool,
    /// `http-check send-state`: each request carries the server's state (see `send_state`).
    pub send_state: bool,
}

impl HttpCheck {
    /// Parses the text after `option httpchk`, HAProxy-escaped: `""`, `"/uri"`, `"GET /uri"`,
    /// `"HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com"`. Words are split on unescaped spaces;
    /// `\ ` is a literal space and `\r\n` starts a header line (HAProxy's old way to add headers).
    pub fn from_haproxy(s: &str) -> Result<HttpCheck, HealthError> {
        let words = split_words(s)?;
        let count = words.len();
        let mut line = Vec::new();
        let mut head_block: Option<String> = None;
        for word in words {
            if head_block.is_some() {
                // An unescaped space inside the headers: HAProxy would see an extra argument.
                return Err(HealthError::TooManyWords { count });
            }
            match word.find(['\r', '\n']) {
                Some(i) => {
                    if i > 0 {
                        line.push(word[..i].to_string());
                    }
                    head_block = Some(word[i..].to_string());
                }
                None => line.push(word),
            }
        }
        let (method, uri, version) = match line.as_slice() {
            [] => ("OPTIONS", "/", None),
            [uri] => ("OPTIONS", uri.as_str(), None),
            [method, uri] => (method.as_str(), uri.as_str(), None),
            [method, uri, version] => (method.as_str(), uri.as_str(), Some(version.as_str())),
            more => return Err(HealthError::TooManyWords { count: more.len() }),
        };
        if method.is_empty() || !method.bytes().all(is_tchar) {
            return Err(HealthError::BadMethod { method: method.to_string() });
        }
        check_uri(uri)?;
        let version = match version {
            None | Some("HTTP/1.0") => HttpVersion::Http10,
            Some("HTTP/1.1") => HttpVersion::Http11,
            Some(v) => {
                return Err(HealthError::BadVersion { version: v.to_string() });
            }
        };
        let headers = match head_block {
            Some(block) => parse_headers(&block)?,
            None => Vec::new(),
        };
        Ok(HttpCheck {
            method: method.to_ascii_uppercase(),
            uri: uri.to_string(),
            version,
            headers,
            expect: Expect::default(),
            disable_on_404: false,
            send_state: false,
        })
    }

    /// The value of a header set by the check text, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits on unescaped blanks and decodes HAProxy's escapes; unknown escapes stay as written.
fn split_words(s: &str) -> Result<Vec<String>, HealthError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                None => return Err(HealthError::TrailingBackslash),
                Some(' ') => cur.push(' '),
                Some('r') => cur.push('\r'),
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('\\') => cur.push('\\'),
                Some(other) => {
                    cur.push('\\');
                    cur.push(other);
                }
            },
            ' ' | '\t' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

fn check_uri(uri: &str) -> Result<(), HealthError> {
    let bad = |why| Err(HealthError::BadUri { uri: uri.to_string(), why });
    if uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return bad("contains a space or control character");
    }
    if uri == "*" || uri.starts_with('/') || uri.starts_with("http://") || uri.starts_with("https://") {
        Ok(())
    } else {
        bad("must start with '/', be '*' or be an absolute http URL")
    }
}

fn parse_headers(block: &str) -> Result<Vec<(String, String)>, HealthError> {
    let mut out = Vec::new();
    for line in block.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        let bad = |why| HealthError::BadHeader { line: line.to_string(), why };
        let (name, value) = line.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(bad("invalid header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("control character in value"));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// RFC 9110 `tchar`: what a method or header name may contain.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What makes an HTTP check pass: HAProxy's `http-check expect [!] <rule> <pattern>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expect {
    /// `!`: the check passes when the rule does not match.
    pub negate: bool,
    pub rule: ExpectRule,
}

#[derive(Debug, Clone, Default)]
pub enum ExpectRule {
    /// No `expect`: any 2xx or 3xx status.
    #[default]
    Status2xx3xx,
    /// `status 200` or `status 200-299,302`.
    Status(Vec<RangeInclusive<u16>>),
    /// `rstatus <regex>` on the three-digit status code.
    RStatus(Regex),
    /// `string <text>`: the body (first 16 KiB) contains it.
    String(String),
    /// `rstring <regex>` on the body (first 16 KiB).
    RString(Regex),
}

impl PartialEq for ExpectRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Status2xx3xx, Self::Status2xx3xx) => true,
            (Self::Status(a), Self::Status(b)) => a == b,
            (Self::RStatus(a), Self::RStatus(b)) | (Self::RString(a), Self::RString(b)) => a.as_str() == b.as_str(),
            (Self::String(a), Self::String(b)) => a == b,
            _ => false,
        }
    }
}

impl Expect {
    /// Parses `"status 200"`, `"status 200-399,404"`, `"rstatus ^2"`, `"string OK"`,
    /// `"rstring ^up$"`, each optionally after `!`. The pattern is the rest of the text, with
    /// HAProxy's `\ ` accepted for a space.
    pub fn parse(text: &str) -> Result<Expect, HealthError> {
        let bad = |why| HealthError::BadExpect { text: text.to_string(), why };
        let mut rest = text.trim();
        let negate = rest.starts_with('!');
        if negate {
            rest = rest[1..].trim_start();
        }
        let (keyword, pattern) = rest.split_once([' ', '\t']).ok_or_else(|| bad("expected '<rule> <pattern>'"))?;
        let pattern = pattern.trim().replace("\\ ", " ");
        if pattern.is_empty() {
            return Err(bad("empty pattern"));
        }
        let regex = |p: &str| Regex::new(p).map_err(|source| HealthError::BadRegex { pattern: p.to_string(), source });
        let rule = match keyword {
            "status" => ExpectRule::Status(parse_status_list(&pattern)?),
            "rstatus" => ExpectRule::RStatus(regex(&pattern)?),
            "string" => ExpectRule::String(pattern),
            "rstring" => ExpectRule::RString(regex(&pattern)?),
            _ => return Err(bad("rule must be status, rstatus, string or rstring")),
        };
        Ok(Expect { negate, rule })
    }

    /// Whether the response body is needed to decide.
    pub fn needs_body(&self) -> bool {
        matches!(self.rule, ExpectRule::String(_) | ExpectRule::RString(_))
    }

    /// Whether a status code passes; `None` for body rules, which the body decides.
    pub fn status_ok(&self, status: u16) -> Option<bool> {
        let hit = match &self.rule {
            ExpectRule::Status2xx3xx => (200..400).contains(&status),
            ExpectRule::Status(ranges) => ranges.iter().any(|r| r.contains(&status)),
            ExpectRule::RStatus(re) => re.is_match(&status.to_string()),
            ExpectRule::String(_) | ExpectRule::RString(_) => return None,
        };
        Some(hit != self.negate)
    }

    /// Whether a body passes; `None` for status rules.
    pub fn body_ok(&self, body: &[u8]) -> Option<bool> {
        let hit = match &self.rule {
            ExpectRule::String(needle) => contains(body, needle.as_bytes()),
            ExpectRule::RString(re) => re.is_match(&String::from_utf8_lossy(body)),
            _ => return None,
        };
        Some(hit != self.negate)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn parse_status_list(text: &str) -> Result<Vec<RangeInclusive<u16>>, HealthError> {
    let bad = || HealthError::BadStatus { text: text.to_string() };
    let code = |s: &str| -> Result<u16, HealthError> {
        let s = s.trim();
        match s.parse::<u16>() {
            Ok(n) if s.len() == 3 && (100..=599).contains(&n) => Ok(n),
            _ => Err(bad()),
        }
    };
    text.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b { Err(bad()) } else { Ok(a..=b) }
            }
            None => code(part).map(|n| n..=n),
        })
        .collect()
}

/// The config form, for log lines: `status 200`, `! string Error`.
impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negate {
            f.write_str("! ")?;
        }
        match &self.rule {
            ExpectRule::Status2xx3xx => f.write_str("status 2xx/3xx"),
            ExpectRule::Status(ranges) => {
                f.write_str("status ")?;
                for (i, r) in ranges.iter().enumerate() {
                    let sep = if i > 0 { "," } else { "" };
                    if r.start() == r.end() {
                        write!(f, "{sep}{}", r.start())?;
                    } else {
                        write!(f, "{sep}{}-{}", r.start(), r.end())?;
                    }
                }
                Ok(())
            }
            ExpectRule::RStatus(re) => write!(f, "rstatus {}", re.as_str()),
            ExpectRule::String(s) => write!(f, "string {s:?}"),
            ExpectRule::RString(re) => write!(f, "rstring {}", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_httpchk_is_options_slash_http10() {
        let c = HttpCheck::from_haproxy("").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str(), c.version), ("OPTIONS", "/", HttpVersion::Http10));
        assert!(c.headers.is_empty());
        assert_eq!(c.expect, Expect::default());
    }

    #[test]
    fn uri_only_keeps_options() {
        let c = HttpCheck::from_haproxy("/health").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str()), ("OPTIONS", "/health"));
    }

    #[test]
    fn method_and_uri() {
        let c = HttpCheck::from_haproxy("GET /index.html").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str(), c.version), ("GET", "/index.html", HttpVersion::Http10));
        let c = HttpCheck::from_haproxy("  get   /test/index.php ").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str()), ("GET", "/test/index.php"));
    }

    #[test]
    fn seed_head_with_version_and_host_header() {
        let c = HttpCheck::from_haproxy(r"HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str(), c.version), ("HEAD", "/index.jsp", HttpVersion::Http11));
        assert_eq!(c.headers, vec![("Host".to_string(), "www.xxx.com".to_string())]);
        assert_eq!(c.header("host"), Some("www.xxx.com"));
    }

    #[test]
    fn several_headers_and_headers_after_shorter_lines() {
        let c = HttpCheck::from_haproxy(r"GET /s HTTP/1.1\r\nHost:\ a\r\nX-Check:\ yes\ please").expect("parses");
        assert_eq!(c.header("X-Check"), Some("yes please"));
        assert_eq!(c.headers.len(), 2);
        // The lead's config form appends headers to whatever the text holds.
        let c = HttpCheck::from_haproxy(r"/up\r\nHost:\ b").expect("parses");
        assert_eq!((c.method.as_str(), c.uri.as_str(), c.header("Host")), ("OPTIONS", "/up", Some("b")));
        let c = HttpCheck::from_haproxy(r"\r\nHost:\ c").expect("parses");
        assert_eq!((c.uri.as_str(), c.header("Host")), ("/", Some("c")));
    }

    #[test]
    fn parse_errors() {
        let err = |s: &str| HttpCheck::from_haproxy(s).map(|_| ()).map_err(|e| e.to_string());
        assert!(matches!(HttpCheck::from_haproxy("GET / HTTP/1.1 extra"), Err(HealthError::TooManyWords { count: 4 })));
        assert!(matches!(
            HttpCheck::from_haproxy(r"HEAD / HTTP/1.1\r\nHost: unescaped"),
            Err(HealthError::TooManyWords { .. })
        ));
        assert!(matches!(HttpCheck::from_haproxy(r"GET /\"), Err(HealthError::TrailingBackslash)));
        assert!(matches!(HttpCheck::from_haproxy("G(T /"), Err(HealthError::BadMethod { .. })));
        assert!(matches!(HttpCheck::from_haproxy("GET index"), Err(HealthError::BadUri { .. })));
        assert!(matches!(HttpCheck::from_haproxy("GET / HTTP/2"), Err(HealthError::BadVersion { .. })));
        assert!(matches!(HttpCheck::from_haproxy(r"GET / HTTP/1.1\r\nNoColon"), Err(HealthError::BadHeader { .. })));
        assert!(matches!(
            HttpCheck::from_haproxy(r"GET / HTTP/1.1\r\nBad\ Name:\ x"),
            Err(HealthError::BadHeader { .. })
        ));
        assert!(err("GET / HTTP/3").is_err_and(|e| e.contains("HTTP/3")));
    }

    #[test]
    fn expect_forms() {
        let e = Expect::parse("status 200").expect("parses");
        assert_eq!((e.status_ok(200), e.status_ok(204), e.status_ok(500)), (Some(true), Some(false), Some(false)));
        let e = Expect::parse("status 200-299,302").expect("parses");
        assert_eq!((e.status_ok(250), e.status_ok(302), e.status_ok(301)), (Some(true), Some(true), Some(false)));
        assert_eq!(e.to_string(), "status 200-299,302");
        let e = Expect::parse("! status 500").expect("parses");
        assert_eq!((e.status_ok(500), e.status_ok(404)), (Some(false), Some(true)));
        let e = Expect::parse("rstatus ^2").expect("parses");
        assert_eq!((e.status_ok(204), e.status_ok(302)), (Some(true), Some(false)));
        let e = Expect::parse(r"string Service\ Ready").expect("parses");
        assert!(e.needs_body());
        assert_eq!(e.status_ok(200), None);
        assert_eq!(e.body_ok(b"<p>Service Ready</p>"), Some(true));
        assert_eq!(e.body_ok(b"Service down"), Some(false));
        let e = Expect::parse("! string SQL Error").expect("parses");
        assert_eq!((e.body_ok(b"ok"), e.body_ok(b"x SQL Error y")), (Some(true), Some(false)));
        let e = Expect::parse("rstring ^up$").expect("parses");
        assert_eq!((e.body_ok(b"up"), e.body_ok(b"upx")), (Some(true), Some(false)));
    }

    #[test]
    fn default_expect_is_2xx_3xx() {
        let e = Expect::default();
        assert_eq!(e.status_ok(200), Some(true));
        assert_eq!(e.status_ok(399), Some(true));
        assert_eq!(e.status_ok(199), Some(false));
        assert_eq!(e.status_ok(404), Some(false));
        assert!(!e.needs_body());
    }

    #[test]
    fn expect_errors() {
        assert!(matches!(Expect::parse("status"), Err(HealthError::BadExpect { .. })));
        assert!(matches!(Expect::parse("header foo"), Err(HealthError::BadExpect { .. })));
        assert!(matches!(Expect::parse("status 2000"), Err(HealthError::BadStatus { .. })));
        assert!(matches!(Expect::parse("status 299-200"), Err(HealthError::BadStatus { .. })));
        assert!(matches!(Expect::parse("status abc"), Err(HealthError::BadStatus { .. })));
        assert!(matches!(Expect::parse("rstatus ("), Err(HealthError::BadRegex { .. })));
    }
}
