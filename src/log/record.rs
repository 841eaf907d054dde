//! One request as a log line sees it, and HAProxy's `log-format` variables rendered from it
//! (`%ci`, `%Tr`, `%{+Q}r`, `%hr`, ...). Pure: the proxy fills the record, this renders it; the
//! record is also a [`SampleContext`] so `%[...]` expressions read the same request.

use super::format::accept_date;
use crate::sample::{LogFormat, MapSet, SampleContext, Segment};
use http::{HeaderMap, Method, Uri, Version};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a log line may show. Timers are milliseconds, -1 where the phase never happened.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub accepted: SystemTime,
    /// When the request head was complete (`%tr`).
    pub request_at: SystemTime,
    pub tls: bool,
    pub frontend: String,
    pub backend: String,
    pub server: String,
    pub server_addr: Option<SocketAddr>,
    /// Th, Ti, TR, Tw, Tc, Tr, Tt.
    pub th: i64,
    pub ti: i64,
    pub t_recv: i64,
    pub tw: i64,
    pub tc: i64,
    pub tr: i64,
    pub tt: i64,
    pub status: Option<u16>,
    /// Bytes sent to the client (`%B`) and received from it (`%U`).
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub termination: [char; 2],
    pub retries: u32,
    /// `%ac %fc %bc %sc %sq %bq`.
    pub actconn: u64,
    pub feconn: u64,
    pub beconn: u64,
    pub srvconn: u64,
    pub srv_queue: u64,
    pub be_queue: u64,
    pub method: Option<Method>,
    pub uri: Option<Uri>,
    pub version: Option<Version>,
    pub req_headers: HeaderMap,
    pub res_headers: HeaderMap,
    /// `capture request header` / `declare capture request` slots, in declaration order.
    pub captures_req: Vec<Option<String>>,
    pub captures_res: Vec<Option<String>>,
    /// `capture cookie`: the request's (`%CC`) and the response's (`%CS`).
    pub cookie_req: Option<String>,
    pub cookie_res: Option<String>,
    pub unique_id: Option<String>,
    /// Request number since start (`%rt`).
    pub request_counter: u64,
    pub pid: u32,
    pub hostname: String,
    /// Set by `set-log-level`: the line's level instead of the usual one.
    pub level: Option<LevelSet>,
}

/// What `set-log-level` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSet {
    /// No line for this request.
    Silent,
    To(super::format::Level),
}

impl LevelSet {
    pub fn parse(s: &str) -> Option<LevelSet> {
        if s == "silent" {
            return Some(LevelSet::Silent);
        }
        super::format::Level::parse(s).map(LevelSet::To)
    }
}

impl Record {
    pub fn new(client: SocketAddr, local: SocketAddr, accepted: SystemTime, frontend: &str) -> Record {
        Record {
            client,
            local,
            accepted,
            request_at: accepted,
            tls: false,
            frontend: frontend.to_string(),
            backend: frontend.to_string(),
            server: "<NOSRV>".into(),
            server_addr: None,
            th: 0,
            ti: 0,
            t_recv: -1,
            tw: -1,
            tc: -1,
            tr: -1,
            tt: -1,
            status: None,
            bytes_out: 0,
            bytes_in: 0,
            termination: ['-', '-'],
            retries: 0,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srvconn: 0,
            srv_queue: 0,
            be_queue: 0,
            method: None,
            uri: None,
            version: None,
            req_headers: HeaderMap::new(),
            res_headers: HeaderMap::new(),
            captures_req: Vec::new(),
            captures_res: Vec::new(),
            cookie_req: None,
            cookie_res: None,
            unique_id: None,
            request_counter: 0,
            pid: std::process::id(),
            hostname: String::new(),
            level: None,
        }
    }

    /// Fills capture slot `slot` (as `http-request capture ... id N` does), cut to `len` bytes.
    pub fn capture_request(&mut self, slot: usize, value: &[u8], len: usize) {
        if let Some(s) = self.captures_req.get_mut(slot) {
            *s = Some(cut(value, len));
        }
    }

    pub fn capture_response(&mut self, slot: usize, value: &[u8], len: usize) {
        if let Some(s) = self.captures_res.get_mut(slot) {
            *s = Some(cut(value, len));
        }
    }

    /// HAProxy's notion of an error for `dontlog-normal` and `log-separate-errors`: a proxy or
    /// peer error (termination state), a retry, or a 5xx.
    pub fn is_error(&self) -> bool {
        self.termination[0] != '-' || self.retries > 0 || self.status.is_some_and(|s| s >= 500)
    }

    fn request_line(&self) -> Option<String> {
        let m = self.method.as_ref()?;
        let u = self.uri.as_ref()?;
        Some(format!("{m} {u} {}", version_text(self.version?)))
    }

    /// One log variable; `None` when HAProxy prints `-`.
    fn var(&self, name: &str) -> Option<Val> {
        use Val::{Int, Text};
        let ip = |a: Option<SocketAddr>| a.map(|a| Text(a.ip().to_string()));
        let port = |a: Option<SocketAddr>| a.map(|a| Int(a.port() as i64));
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis()) as i64;
        let hdrs = |c: &[Option<String>], sep: &str, brace: bool| {
            if c.is_empty() {
                // No capture configured: nothing at all, and the next space is dropped.
                return Text(String::new());
            }
            // `%hrl`/`%hsl` print `-` for an empty slot, `%hr`/`%hs` nothing, as HAProxy.
            let empty = if brace { "" } else { "-" };
            let inner = c.iter().map(|v| v.as_deref().unwrap_or(empty)).collect::<Vec<_>>().join(sep);
            Text(if brace { format!("{{{inner}}}") } else { inner })
        };
        Some(match name {
            "ci" => ip(Some(self.client))?,
            "cp" => port(Some(self.client))?,
            "fi" => ip(Some(self.local))?,
            "fp" => port(Some(self.local))?,
            "si" => ip(self.server_addr)?,
            "sp" => port(self.server_addr)?,
            "t" => Text(accept_date(self.accepted)),
            "tr" => Text(accept_date(self.request_at)),
            "T" => Text(gmt_date(self.accepted)),
            "Ts" => Int(secs(self.accepted)),
            "ms" => Text(format!("{:03}", ms(self.accepted))),
            "trg" => Text(gmt_date(self.request_at)),
            "ts" => Text(self.termination.iter().collect()),
            "tsc" => Text(format!("{}{}--", self.termination[0], self.termination[1])),
            "f" => Text(self.frontend.clone()),
            "ft" => Text(if self.tls { format!("{}~", self.frontend) } else { self.frontend.clone() }),
            "b" => Text(self.backend.clone()),
            "s" => Text(self.server.clone()),
            "Th" => Int(self.th),
            "Ti" => Int(self.ti),
            "TR" => Int(self.t_recv),
            "Tq" => Int(if self.t_recv < 0 { -1 } else { self.th + self.ti + self.t_recv }),
            "Tw" => Int(self.tw),
            "Tc" => Int(self.tc),
            "Tr" => Int(self.tr),
            "Ta" => Int(if self.tt < 0 { -1 } else { self.tt - self.th - self.ti }),
            "Tt" => Int(self.tt),
            "ST" => Int(self.status? as i64),
            "B" => Int(self.bytes_out as i64),
            "U" => Int(self.bytes_in as i64),
            "ac" => Int(self.actconn as i64),
            "fc" => Int(self.feconn as i64),
            "bc" => Int(self.beconn as i64),
            "sc" => Int(self.srvconn as i64),
            "rc" => Int(self.retries as i64),
            "sq" => Int(self.srv_queue as i64),
            "bq" => Int(self.be_queue as i64),
            "hr" => hdrs(&self.captures_req, "|", true),
            "hrl" => hdrs(&self.captures_req, " ", false),
            "hs" => hdrs(&self.captures_res, "|", true),
            "hsl" => hdrs(&self.captures_res, " ", false),
            "r" => Text(self.request_line()?),
            "HM" => Text(self.method.as_ref()?.to_string()),
            "HU" => Text(self.uri.as_ref()?.to_string()),
            "HP" => Text(self.uri.as_ref()?.path().to_string()),
            "HPO" => Text(self.uri.as_ref()?.path().to_string()),
            "HQ" => Text(self.uri.as_ref()?.query().map(|q| format!("?{q}")).unwrap_or_default()),
            "HV" => Text(version_text(self.version?).to_string()),
            "ID" => Text(self.unique_id.clone()?),
            "pid" => Int(self.pid as i64),
            "H" => Text(self.hostname.clone()),
            "rt" => Int(self.request_counter as i64),
            "CC" => Text(self.cookie_req.clone()?),
            "CS" => Text(self.cookie_res.clone()?),
            // No backend source address: HAProxy prints `-` then too.
            "bi" | "bp" | "sslv" | "sslc" => return None,
            _ => return None,
        })
    }
}

fn cut(v: &[u8], len: usize) -> String {
    String::from_utf8_lossy(&v[..v.len().min(len)]).into_owned()
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        Version::HTTP_09 => "HTTP/0.9",
        _ => "HTTP/1.1",
    }
}

/// `%T`: `06/Dec/2026:04:41:44 +0000`.
fn gmt_date(t: SystemTime) -> String {
    let d = accept_date(t);
    format!("{} +0000", &d[..d.len().saturating_sub(4)])
}

enum Val {
    Int(i64),
    Text(String),
}

/// Variables HAProxy 2.6 knows, so a format with a typo is refused at load.
pub const VARS: &[&str] = &[
    "ci", "cp", "fi", "fp", "si", "sp", "bi", "bp", "t", "tr", "T", "Ts", "ms", "trg", "ts", "tsc", "f", "ft", "b",
    "s", "Th", "Ti", "TR", "Tq", "Tw", "Tc", "Tr", "Ta", "Tt", "ST", "B", "U", "ac", "fc", "bc", "sc", "rc", "sq",
    "bq", "hr", "hrl", "hs", "hsl", "r", "HM", "HU", "HP", "HPO", "HQ", "HV", "ID", "pid", "H", "rt", "CC", "CS",
    "sslv", "sslc", "o",
];

/// Checks a parsed format: known variables, no map lookups (the log writer has no maps).
pub fn check(f: &LogFormat) -> Result<(), String> {
    for seg in &f.segments {
        match seg {
            Segment::LogVar { name, .. } if !VARS.contains(&name.as_str()) => {
                return Err(format!("unknown log-format variable '%{name}'"));
            }
            Segment::Expr { expr, .. } if expr.map_refs().next().is_some() => {
                return Err("map converters are not supported in log formats yet".into());
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Default)]
struct Flags {
    quote: bool,
    hex: bool,
    escape: bool,
}

impl Flags {
    fn apply(mut self, list: &[String]) -> Flags {
        for f in list {
            match f.as_str() {
                "+Q" => self.quote = true,
                "-Q" => self.quote = false,
                "+X" => self.hex = true,
                "-X" => self.hex = false,
                "+E" => self.escape = true,
                "-E" => self.escape = false,
                _ => {}
            }
        }
        self
    }
}

fn emit(out: &mut Vec<u8>, text: &[u8], flags: Flags) {
    if flags.quote {
        out.push(b'"');
    }
    for &b in text {
        match b {
            b'"' if flags.quote || flags.escape => out.extend_from_slice(b"#22"),
            b'\\' if flags.escape => out.extend_from_slice(b"\\\\"),
            // HAProxy writes control bytes in logs as `#XX`.
            0..=0x1f | 0x7f => out.extend_from_slice(format!("#{b:02X}").as_bytes()),
            _ => out.push(b),
        }
    }
    if flags.quote {
        out.push(b'"');
    }
}

/// Renders `f` for `rec`: variables HAProxy's way (`-` when absent, `%{+Q}` quotes, `%{+X}`
/// hex numbers, `%{+X}o` sets flags for the rest of the line), samples as text.
pub fn render(f: &LogFormat, rec: &Record) -> Vec<u8> {
    let maps = MapSet::default();
    let mut out = Vec::new();
    let mut global = Flags::default();
    // HAProxy's separators: a space is written only after something that printed, so runs of
    // spaces and the space after an empty `%hr` collapse.
    let mut last_space = true;
    for seg in &f.segments {
        let start = out.len();
        match seg {
            Segment::Literal(t) => {
                for &b in t {
                    if b == b' ' {
                        if !last_space {
                            out.push(b' ');
                            last_space = true;
                        }
                    } else {
                        out.push(b);
                        last_space = false;
                    }
                }
                continue;
            }
            Segment::LogVar { name, flags } if name == "o" => global = global.apply(flags),
            Segment::LogVar { name, flags } => {
                let fl = global.apply(flags);
                match rec.var(name) {
                    Some(Val::Int(n)) if fl.hex => {
                        emit(&mut out, format!("{n:X}").as_bytes(), Flags { quote: false, ..fl })
                    }
                    Some(Val::Int(n)) => emit(&mut out, n.to_string().as_bytes(), Flags { quote: false, ..fl }),
                    Some(Val::Text(t)) if t.is_empty() && matches!(name.as_str(), "hr" | "hs" | "hrl" | "hsl") => {}
                    Some(Val::Text(t)) => emit(&mut out, t.as_bytes(), fl),
                    None => emit(&mut out, b"-", Flags { quote: false, ..fl }),
                }
            }
            Segment::Expr { expr, flags } => {
                let fl = global.apply(flags);
                match expr.eval_str(rec, &maps) {
                    Some(v) => emit(&mut out, &v, fl),
                    None => emit(&mut out, b"-", Flags { quote: false, ..fl }),
                }
            }
        }
        if out.len() > start {
            last_space = false;
        }
    }
    out
}

impl SampleContext for Record {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.client)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.local)
    }
    fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }
    fn uri(&self) -> Option<&Uri> {
        self.uri.as_ref()
    }
    fn version(&self) -> Option<Version> {
        self.version
    }
    fn req_headers(&self) -> Option<&HeaderMap> {
        self.method.as_ref().map(|_| &self.req_headers)
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn res_headers(&self) -> Option<&HeaderMap> {
        self.status.map(|_| &self.res_headers)
    }
    fn tls(&self) -> Option<bool> {
        Some(self.tls)
    }
    fn now(&self) -> Option<(i64, u32)> {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        Some((d.as_secs() as i64, d.subsec_micros()))
    }
    fn hostname(&self) -> Option<&str> {
        Some(&self.hostname)
    }
    fn unique_id(&self) -> Option<&str> {
        self.unique_id.as_deref()
    }
    fn capture(&self, response: bool, slot: usize) -> Option<Vec<u8>> {
        let c = if response { &self.captures_res } else { &self.captures_req };
        c.get(slot)?.as_ref().map(|v| v.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec() -> Record {
        // 2026-11-05T02:49:33.123Z
        let t = UNIX_EPOCH + Duration::from_millis(1_793_846_973_123);
        let mut r = Record::new("192.0.2.7:40000".parse().unwrap(), "127.0.0.1:8080".parse().unwrap(), t, "web");
        r.request_at = t + Duration::from_millis(5);
        r.backend = "app".into();
        r.server = "s1".into();
        r.server_addr = Some("127.0.0.2:9000".parse().unwrap());
        (r.th, r.ti, r.t_recv, r.tw, r.tc, r.tr, r.tt) = (0, 0, 5, 1, 2, 30, 40);
        r.status = Some(200);
        (r.bytes_out, r.bytes_in) = (1234, 56);
        r.retries = 1;
        (r.actconn, r.feconn, r.beconn, r.srvconn, r.srv_queue, r.be_queue) = (7, 6, 5, 4, 3, 2);
        r.method = Some(Method::GET);
        r.uri = Some("/a/b?x=1".parse().unwrap());
        r.version = Some(Version::HTTP_11);
        r.req_headers.insert("host", "example.com".parse().unwrap());
        r.res_headers.insert("content-type", "text/plain".parse().unwrap());
        r.captures_req = vec![Some("example.com".into()), None];
        r.captures_res = vec![Some("text/plain".into())];
        r.unique_id = Some("ABC-1".into());
        r.request_counter = 42;
        r.pid = 99;
        r.hostname = "lb1".into();
        r
    }

    fn one(fmt: &str) -> String {
        let f = LogFormat::parse(fmt).unwrap();
        check(&f).unwrap();
        String::from_utf8(render(&f, &rec())).unwrap()
    }

    #[test]
    fn every_variable() {
        let cases = [
            ("%ci:%cp", "192.0.2.7:40000"),
            ("%fi:%fp", "127.0.0.1:8080"),
            ("%si:%sp", "127.0.0.2:9000"),
            ("%t", "05/Nov/2026:02:49:33.123"),
            ("%tr", "05/Nov/2026:02:49:33.128"),
            ("%T", "05/Nov/2026:02:49:33 +0000"),
            ("%Ts %ms", "1793846973 123"),
            ("%ts %tsc", "-- ----"),
            ("%f %ft %b %s", "web web app s1"),
            ("%Th/%Ti/%TR/%Tq/%Tw/%Tc/%Tr/%Ta/%Tt", "0/0/5/5/1/2/30/40/40"),
            ("%ST %B %U", "200 1234 56"),
            ("%ac/%fc/%bc/%sc/%rc %sq/%bq", "7/6/5/4/1 3/2"),
            ("%hr %hs", "{example.com|} {text/plain}"),
            ("%hrl|%hsl", "example.com -|text/plain"),
            ("%r", "GET /a/b?x=1 HTTP/1.1"),
            ("%{+Q}r", "\"GET /a/b?x=1 HTTP/1.1\""),
            ("%HM %HU %HP %HQ %HV", "GET /a/b?x=1 /a/b ?x=1 HTTP/1.1"),
            ("%ID %pid %H %rt", "ABC-1 99 lb1 42"),
            ("%CC %CS %bi", "- - -"),
            ("%{+X}o %Ts %ST", "6AEBEEBD C8"),
            ("%[req.hdr(host)] %[res.hdr(content-type)] %[unique-id]", "example.com text/plain ABC-1"),
            ("%{+Q}[req.hdr(nope)]", "-"),
            ("100%% %[src]", "100% 192.0.2.7"),
            ("a  b", "a b"),
        ];
        for (fmt, want) in cases {
            assert_eq!(one(fmt), want, "{fmt}");
        }
    }

    #[test]
    fn ft_marks_tls_and_missing_values_print_a_dash() {
        let mut r = rec();
        r.tls = true;
        r.server_addr = None;
        r.status = None;
        let f = LogFormat::parse("%ft %si %ST").unwrap();
        assert_eq!(String::from_utf8(render(&f, &r)).unwrap(), "web~ - -");
    }

    #[test]
    fn errors_and_captures() {
        let mut r = rec();
        assert!(r.is_error(), "a retry is an error");
        r.retries = 0;
        assert!(!r.is_error());
        r.status = Some(503);
        assert!(r.is_error());
        r.status = Some(200);
        r.termination = ['C', 'D'];
        assert!(r.is_error());
        r.capture_request(1, b"0123456789", 4);
        r.capture_request(9, b"ignored", 4);
        assert_eq!(r.captures_req[1].as_deref(), Some("0123"));
        let slots = LogFormat::parse("%[capture.req.hdr(1)] %[capture.req.hdr(0)] %[capture.res.hdr(0)]").unwrap();
        assert_eq!(String::from_utf8(render(&slots, &r)).unwrap(), "0123 example.com text/plain");
        assert!(check(&LogFormat::parse("%zz").unwrap()).unwrap_err().contains("%zz"));
        let quoted = {
            r.uri = Some("/a\"b".parse().unwrap_or_else(|_| "/x".parse().unwrap()));
            String::from_utf8(render(&LogFormat::parse("%{+Q}HU").unwrap(), &r)).unwrap()
        };
        assert!(quoted.starts_with('"') && quoted.ends_with('"'));
        // No capture slots: `%hr` prints nothing and takes its space with it.
        r.captures_req.clear();
        assert_eq!(String::from_utf8(render(&LogFormat::parse("%ST %hr %ST").unwrap(), &r)).unwrap(), "200 200");
    }
}
