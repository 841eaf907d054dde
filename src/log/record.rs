//! One request as a log line sees it, and HAProxy's `log-format` variables rendered from it
//! (`%ci`, `%Tr`, `%{+Q}r`, `%hr`, ...). Pure: the proxy fills the record, this renders it; the
//! record is also a [`SampleContext`] so `%[...]` expressions read the same request.

use super::compiled::Var;
use crate::sample::SampleContext;
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
    /// The local address of the connection to the server (`%bi:%bp`).
    pub backend_src: Option<SocketAddr>,
    /// The client connection's TLS version and cipher, OpenSSL's names (`%sslv`, `%sslc`).
    pub tls_version: Option<&'static str>,
    pub tls_cipher: Option<&'static str>,
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
    /// The last retry went to another server (`option redispatch`): `%rc` gets HAProxy's `+`.
    pub redispatched: bool,
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
    /// The version of a server's response (`%[capture.res.ver]`); none for lbha's own answers.
    pub res_version: Option<Version>,
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
    /// Lines this frontend logged before this one (`%lc`).
    pub log_counter: u64,
    pub pid: u32,
    pub hostname: &'static str,
    /// Set by `set-log-level`: the line's level instead of the usual one.
    pub level: Option<LevelSet>,
    /// The request head was refused as unparseable or too large: `%r` is HAProxy's `<BADREQ>`.
    pub bad_request: bool,
}

/// The process id, read once: `getpid` is a system call per request otherwise.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
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
        let names = [frontend.to_string(), frontend.to_string(), "<NOSRV>".into()];
        Record::blank(client, local, accepted, names)
    }

    /// Makes this record what [`Record::new`] returns, in the strings, slots and header maps it
    /// already has: a record reused for the next request allocates nothing. Field by field (the
    /// destructuring names every one, so a new field cannot be left out), which costs less than
    /// building a new record and dropping the old one.
    pub fn reset(&mut self, client: SocketAddr, local: SocketAddr, accepted: SystemTime, frontend: &str) {
        let Record {
            client: c,
            local: l,
            accepted: a,
            request_at,
            tls,
            frontend: f,
            backend,
            server,
            server_addr,
            backend_src,
            tls_version,
            tls_cipher,
            th,
            ti,
            t_recv,
            tw,
            tc,
            tr,
            tt,
            status,
            bytes_out,
            bytes_in,
            termination,
            retries,
            redispatched,
            actconn,
            feconn,
            beconn,
            srvconn,
            srv_queue,
            be_queue,
            method,
            uri,
            version,
            res_version,
            req_headers,
            res_headers,
            captures_req,
            captures_res,
            cookie_req,
            cookie_res,
            unique_id,
            request_counter,
            log_counter,
            pid: p,
            hostname,
            level,
            bad_request,
        } = self;
        (*c, *l, *a, *request_at, *tls) = (client, local, accepted, accepted, false);
        for (s, v) in [f, backend, server].into_iter().zip([frontend, frontend, "<NOSRV>"]) {
            s.clear();
            s.push_str(v);
        }
        (*server_addr, *backend_src, *tls_version, *tls_cipher) = (None, None, None, None);
        (*th, *ti, *t_recv, *tw, *tc, *tr, *tt) = (0, 0, -1, -1, -1, -1, -1);
        (*status, *bytes_out, *bytes_in, *termination, *retries, *redispatched) = (None, 0, 0, ['-', '-'], 0, false);
        (*actconn, *feconn, *beconn, *srvconn, *srv_queue, *be_queue) = (0, 0, 0, 0, 0, 0);
        (*method, *uri, *version, *res_version) = (None, None, None, None);
        req_headers.clear();
        res_headers.clear();
        captures_req.clear();
        captures_res.clear();
        (*cookie_req, *cookie_res, *unique_id) = (None, None, None);
        (*request_counter, *log_counter, *p, *hostname, *level, *bad_request) = (0, 0, pid(), "", None, false);
    }

    fn blank(client: SocketAddr, local: SocketAddr, accepted: SystemTime, names: [String; 3]) -> Record {
        let [frontend, backend, server] = names;
        Record {
            client,
            local,
            accepted,
            request_at: accepted,
            tls: false,
            frontend,
            backend,
            server,
            server_addr: None,
            backend_src: None,
            tls_version: None,
            tls_cipher: None,
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
            redispatched: false,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srvconn: 0,
            srv_queue: 0,
            be_queue: 0,
            method: None,
            uri: None,
            version: None,
            res_version: None,
            req_headers: HeaderMap::new(),
            res_headers: HeaderMap::new(),
            captures_req: Vec::new(),
            captures_res: Vec::new(),
            cookie_req: None,
            cookie_res: None,
            unique_id: None,
            request_counter: 0,
            log_counter: 0,
            pid: pid(),
            hostname: "",
            level: None,
            bad_request: false,
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

    /// The head was refused (`<BADREQ>`): what the stand-in request put in the record goes, as
    /// HAProxy has no request then (no method, URI or version for `%[capture.req.*]`, no capture
    /// lists at all, no cookie, an empty unique id).
    pub fn refuse_head(&mut self) {
        self.bad_request = true;
        (self.method, self.uri, self.version) = (None, None, None);
        self.req_headers.clear();
        self.captures_req.clear();
        self.captures_res.clear();
        self.cookie_req = None;
        self.unique_id = Some(String::new());
    }

    /// Whether HAProxy's request message ended in its error state: the client aborted during
    /// the data phase (`CD`: a reset while the request body or the response was in transit),
    /// which HAProxy's request analyser sees as an error on the request channel. Its
    /// `capture.req.ver` is then empty.
    pub fn request_in_error(&self) -> bool {
        self.termination == ['C', 'D']
    }

    /// HAProxy's notion of an error for `dontlog-normal` and `log-separate-errors`: a proxy or
    /// peer error (termination state; `L`, an answer of lbha's own, is none), a retry or
    /// redispatch, or a 5xx.
    pub fn is_error(&self) -> bool {
        !matches!(self.termination[0], '-' | 'L')
            || self.retries > 0
            || self.redispatched
            || self.status.is_some_and(|s| s >= 500)
    }

    /// `%r` (`METHOD URI VERSION`), appended; false when the request had no head.
    fn request_line_into(&self, out: &mut Vec<u8>) -> bool {
        if self.bad_request {
            out.extend_from_slice(b"<BADREQ>");
            return true;
        }
        let (Some(m), Some(u), Some(v)) = (&self.method, &self.uri, self.version) else { return false };
        out.extend_from_slice(m.as_str().as_bytes());
        out.push(b' ');
        uri_into(out, u);
        out.push(b' ');
        out.extend_from_slice(version_text(v).as_bytes());
        true
    }

    /// The request line as text (`option httplog clf`).
    pub fn request_line(&self) -> Option<String> {
        let mut out = Vec::new();
        self.request_line_into(&mut out).then(|| String::from_utf8_lossy(&out).into_owned())
    }

    /// One log variable: a number, or text appended to `out` (the caller escapes it); `None`
    /// when HAProxy prints `-`.
    pub(super) fn var(&self, var: Var, out: &mut Vec<u8>) -> Option<Val> {
        use Val::{Int, Text};
        use Var::*;
        let text = |out: &mut Vec<u8>, t: &str| {
            out.extend_from_slice(t.as_bytes());
            Text
        };
        let ip = |out: &mut Vec<u8>, a: Option<SocketAddr>| {
            ip_into(out, a?.ip());
            Some(Text)
        };
        let port = |a: Option<SocketAddr>| a.map(|a| Int(a.port() as i64));
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_millis()) as i64;
        let hdrs = |out: &mut Vec<u8>, c: &[Option<String>], sep: &str, brace: bool| {
            // No capture configured: nothing at all, and the next space is dropped.
            if c.is_empty() {
                return Text;
            }
            if brace {
                out.push(b'{');
            }
            for (i, v) in c.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(sep.as_bytes());
                }
                // `%hrl`/`%hsl` print `-` for an empty slot, `%hr`/`%hs` nothing, as HAProxy.
                out.extend_from_slice(v.as_deref().unwrap_or(if brace { "" } else { "-" }).as_bytes());
            }
            if brace {
                out.push(b'}');
            }
            Text
        };
        Some(match var {
            Ci => ip(out, Some(self.client))?,
            Cp => port(Some(self.client))?,
            Fi => ip(out, Some(self.local))?,
            Fp => port(Some(self.local))?,
            Si => ip(out, self.server_addr)?,
            Sp => port(self.server_addr)?,
            Bi => ip(out, self.backend_src)?,
            Bp => port(self.backend_src)?,
            T => {
                super::format::accept_date_into(out, self.accepted);
                Text
            }
            Tr => {
                super::format::accept_date_into(out, self.request_at);
                Text
            }
            TGmt => {
                super::format::gmt_date_into(out, self.accepted);
                Text
            }
            Ts => Int(secs(self.accepted)),
            Ms => {
                let n = ms(self.accepted);
                out.extend_from_slice(&[b'0' + (n / 100) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
                Text
            }
            Trg => {
                super::format::gmt_date_into(out, self.request_at);
                Text
            }
            TsState => {
                out.extend(self.termination.iter().map(|&c| c as u8));
                Text
            }
            Tsc => {
                out.extend(self.termination.iter().map(|&c| c as u8));
                text(out, "--")
            }
            F => text(out, &self.frontend),
            Ft => {
                text(out, &self.frontend);
                if self.tls {
                    out.push(b'~');
                }
                Text
            }
            B => text(out, &self.backend),
            S => text(out, &self.server),
            Th => Int(self.th),
            Ti => Int(self.ti),
            TRecv => Int(self.t_recv),
            Tq => Int(if self.t_recv < 0 { -1 } else { self.th + self.ti + self.t_recv }),
            Tw => Int(self.tw),
            Tc => Int(self.tc),
            TResp => Int(self.tr),
            Ta => Int(if self.tt < 0 { -1 } else { self.tt - self.th - self.ti }),
            Tt => Int(self.tt),
            // Data transfer: what is left of Tt after the request, queue, connect and response
            // phases (-1 when one of them never happened), as HAProxy's `%Td`.
            Td => Int(if self.tt < 0 || self.tr < 0 || self.t_recv < 0 || self.tw < 0 || self.tc < 0 {
                -1
            } else {
                self.tt - (self.th + self.ti + self.t_recv) - self.tw - self.tc - self.tr
            }),
            // The session as the client saw it, without the idle time before the request.
            Tu => Int(if self.tt < 0 { -1 } else { self.tt - self.ti }),
            Tl => {
                super::format::local_date_into(out, self.accepted);
                Text
            }
            Trl => {
                super::format::local_date_into(out, self.request_at);
                Text
            }
            Lc => Int(self.log_counter as i64),
            // No status (a TCP session, or no response): HAProxy's -1.
            St => Int(self.status.map_or(-1, i64::from)),
            Bytes => Int(self.bytes_out as i64),
            BytesIn => Int(self.bytes_in as i64),
            Ac => Int(self.actconn as i64),
            Fc => Int(self.feconn as i64),
            Bc => Int(self.beconn as i64),
            Sc => Int(self.srvconn as i64),
            // After a redispatch the renderer writes HAProxy's `+` before it.
            Rc => Int(self.retries as i64),
            Sq => Int(self.srv_queue as i64),
            Bq => Int(self.be_queue as i64),
            Hr => hdrs(out, &self.captures_req, "|", true),
            Hrl => hdrs(out, &self.captures_req, " ", false),
            Hs => hdrs(out, &self.captures_res, "|", true),
            Hsl => hdrs(out, &self.captures_res, " ", false),
            R => self.request_line_into(out).then_some(Text)?,
            // A refused head: HAProxy shows `<BADREQ>` for each part of the request line.
            Hm | Hu | Hp | Hpo | Hq | Hv if self.bad_request => text(out, "<BADREQ>"),
            Hm => text(out, self.method.as_ref()?.as_str()),
            Hu => {
                uri_into(out, self.uri.as_ref()?);
                Text
            }
            Hp | Hpo => text(out, self.uri.as_ref()?.path()),
            Hq => {
                if let Some(q) = self.uri.as_ref()?.query() {
                    out.push(b'?');
                    out.extend_from_slice(q.as_bytes());
                }
                Text
            }
            Hv => text(out, version_text(self.version?)),
            Id => text(out, self.unique_id.as_deref().filter(|id| !id.is_empty())?),
            Pid => Int(self.pid as i64),
            H => text(out, self.hostname),
            Rt => Int(self.request_counter as i64),
            Cc => text(out, self.cookie_req.as_deref()?),
            Cs => text(out, self.cookie_res.as_deref()?),
            Sslv => text(out, self.tls_version?),
            Sslc => text(out, self.tls_cipher?),
        })
    }
}

/// A URI as the request line carried it.
fn uri_into(out: &mut Vec<u8>, u: &Uri) {
    use std::io::Write;
    match (u.scheme(), u.path_and_query()) {
        // Origin form, the usual case: the path and query as they are, without the formatter.
        (None, Some(pq)) if u.authority().is_none() => out.extend_from_slice(pq.as_str().as_bytes()),
        _ => {
            let _ = write!(out, "{u}");
        }
    }
}

/// An address as `Display` writes it; IPv4 (the usual case) without the formatter.
fn ip_into(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    use std::io::Write;
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, b) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                super::format::push_int(out, b as i64);
            }
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
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

/// What a variable gave: a number (printed in decimal or `%{+X}` hex) or text already appended.
pub(super) enum Val {
    Int(i64),
    Text,
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
    fn res_version(&self) -> Option<Version> {
        self.res_version
    }
    fn res_headers(&self) -> Option<&HeaderMap> {
        self.status.map(|_| &self.res_headers)
    }
    fn tls(&self) -> Option<bool> {
        Some(self.tls)
    }
    fn now(&self) -> Option<(i64, u32)> {
        crate::sample::wall_clock()
    }
    fn hostname(&self) -> Option<&str> {
        Some(self.hostname)
    }
    fn unique_id(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.unique_id.as_deref().map(std::borrow::Cow::Borrowed)
    }
    fn capture(&self, response: bool, slot: usize) -> Option<Vec<u8>> {
        let c = if response { &self.captures_res } else { &self.captures_req };
        c.get(slot)?.as_ref().map(|v| v.as_bytes().to_vec())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::compiled::LineFormat;
    use crate::sample::LogFormat;
    use std::time::Duration;

    fn render(f: &LogFormat, r: &Record) -> Vec<u8> {
        LineFormat::compile(f).unwrap().render(r)
    }

    pub(crate) fn rec() -> Record {
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
        r.hostname = "lb1";
        r.backend_src = Some("127.0.0.1:51000".parse().unwrap());
        (r.tls_version, r.tls_cipher) = (Some("TLSv1.3"), Some("TLS_AES_256_GCM_SHA384"));
        r.log_counter = 3;
        r
    }

    fn one(fmt: &str) -> String {
        let f = LineFormat::compile(&LogFormat::parse(fmt).unwrap()).unwrap();
        String::from_utf8(f.render(&rec())).unwrap()
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
            ("%CC %CS", "- -"),
            ("%bi:%bp", "127.0.0.1:51000"),
            ("%sslv %sslc", "TLSv1.3 TLS_AES_256_GCM_SHA384"),
            ("%Td %Tu", "2 40"),
            ("%lc %{+X}lc %{+X}rt", "3 0003 002A"),
            ("%{+X}o %Ts %ST", "6AEBEEBD C8"),
            ("%[req.hdr(host)] %[res.hdr(content-type)] %[unique-id]", "example.com text/plain ABC-1"),
            ("%{+Q}[req.hdr(nope)]", "\"\""),
            ("100%% %[src]", "100% 192.0.2.7"),
            ("a  b", "a b"),
            ("[%ST]  x ", "[200] x "),
            ("  %ST %ST", "200 200"),
            ("%ST%hr  /%ST", "200{example.com|} /200"),
        ];
        for (fmt, want) in cases {
            assert_eq!(one(fmt), want, "{fmt}");
        }
    }

    /// A refused head: `<BADREQ>` in every request-line field, nothing the stand-in request put
    /// in the record (no capture lists, no cookie), `-` for the id, as HAProxy 2.6 logs it.
    #[test]
    fn a_refused_head_shows_badreq_and_nothing_of_the_stand_in() {
        let mut r = rec();
        r.cookie_req = Some("S=1".into());
        r.refuse_head();
        let f = LogFormat::parse("%{+Q}r %HM %HU %HP %HQ %HV [%hr] [%hs] %CC %ID %[capture.req.method]").unwrap();
        assert_eq!(
            String::from_utf8(render(&f, &r)).unwrap(),
            "\"<BADREQ>\" <BADREQ> <BADREQ> <BADREQ> <BADREQ> <BADREQ> [] [] - - -"
        );
    }

    #[test]
    fn only_a_client_abort_in_the_data_phase_leaves_the_request_in_error() {
        let mut r = rec();
        for (t, error) in [(['C', 'D'], true), (['-', '-'], false), (['C', 'R'], false), (['S', 'D'], false)] {
            r.termination = t;
            assert_eq!(r.request_in_error(), error, "{t:?}");
        }
    }

    /// `%rc` gets a `+` after a redispatch, which is an error for `dontlog-normal`; an answer of
    /// lbha's own (`L`) is not.
    #[test]
    fn redispatch_marks_retries_and_local_answers_are_no_errors() {
        let mut r = rec();
        r.redispatched = true;
        let f = LogFormat::parse("%rc %{+Q}rc").unwrap();
        assert_eq!(String::from_utf8(render(&f, &r)).unwrap(), "+1 +1");
        r.retries = 0;
        assert!(r.is_error(), "a redispatch");
        r.redispatched = false;
        r.termination = ['L', 'R'];
        assert!(!r.is_error(), "a redirect");
        r.termination = ['P', 'T'];
        assert!(r.is_error(), "a tarpit");
    }

    #[test]
    fn ft_marks_tls_and_missing_values_print_a_dash() {
        let mut r = rec();
        r.tls = true;
        r.server_addr = None;
        r.status = None;
        r.tr = -1;
        r.tls_version = None;
        let f = LogFormat::parse("%ft %si %ST %Td %sslv").unwrap();
        // No status is HAProxy's -1, not a dash.
        assert_eq!(String::from_utf8(render(&f, &r)).unwrap(), "web~ - -1 -1 -");
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
        assert!(LineFormat::compile(&LogFormat::parse("%zz").unwrap()).unwrap_err().contains("%zz"));
        let quoted = {
            r.uri = Some("/a\"b".parse().unwrap_or_else(|_| "/x".parse().unwrap()));
            String::from_utf8(render(&LogFormat::parse("%{+Q}HU").unwrap(), &r)).unwrap()
        };
        assert!(quoted.starts_with('"') && quoted.ends_with('"'));
        // No capture slots: `%hr` prints nothing and takes its space with it.
        r.captures_req.clear();
        assert_eq!(String::from_utf8(render(&LogFormat::parse("%ST %hr %ST").unwrap(), &r)).unwrap(), "200 200");
    }

    #[test]
    fn text_that_needs_escaping_is_escaped_as_before() {
        let mut r = rec();
        r.captures_req = vec![Some("a\"b\\c\x01".into())];
        let f = LogFormat::parse("%{+Q}hrl %{+E}hrl %hrl %{+Q}ci %{+Q}ST %{+Q}CC").unwrap();
        let want = "\"a#22b\\c#01\" a#22b\\\\c#01 a\"b\\c#01 \"192.0.2.7\" 200 \"\"";
        assert_eq!(String::from_utf8(render(&f, &r)).unwrap(), want);
    }

    #[test]
    fn a_reset_record_is_a_new_one() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (client, local) = ("198.51.100.1:1234".parse().unwrap(), "127.0.0.1:80".parse().unwrap());
        let mut used = rec();
        used.cookie_req = Some("c=1".into());
        used.level = Some(LevelSet::Silent);
        used.reset(client, local, t, "front");
        let fresh = Record::new(client, local, t, "front");
        assert_eq!(format!("{used:?}"), format!("{fresh:?}"));
    }
}
