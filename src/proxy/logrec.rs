//! A frontend's logging settings (`log-format`, captures, `unique-id-format`, `dontlog-normal`,
//! `log-separate-errors`) and the per-request [`Record`] they fill: made when the request
//! arrives, passed along with the request so rules can fill capture slots, completed and
//! rendered by `httplog` when the response is done.

use super::ConnCtx;
use crate::log::compiled::LineFormat;
use crate::log::format::Level;
use crate::log::record::{self, Record};
use http::{HeaderName, HeaderValue, Request};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// HAProxy 2.6's `option httplog` format.
pub const HTTPLOG: &str =
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";

/// One capture slot: `capture request header NAME len N` (a header) or `declare capture
/// request len N` (filled by `http-request capture ... id N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub header: Option<HeaderName>,
    pub len: usize,
}

#[derive(Debug, Default)]
pub struct FrontLog {
    /// `log-format`; `None`: the `httplog` line.
    pub format: Option<LineFormat>,
    /// `log-format-sd`: RFC 5424 structured data, rendered like the message.
    pub format_sd: Option<LineFormat>,
    pub req_slots: Vec<Slot>,
    pub res_slots: Vec<Slot>,
    /// `capture cookie NAME len N`: `%CC` / `%CS`.
    pub cookie: Option<(String, usize)>,
    pub unique_id: Option<LineFormat>,
    pub unique_id_header: Option<HeaderName>,
    pub dontlog_normal: bool,
    pub separate_errors: bool,
    /// `log_targets`: this frontend's own targets.
    pub targets: Vec<crate::log::LogTarget>,
    /// `log = "global"`: the `[global]` targets too.
    pub global: bool,
    /// `log_tag` of the frontend (or `defaults`): the tag of its lines, over the global one.
    pub tag: Option<String>,
    /// A format reads the request's headers (`%[...]` or `%U`): only then does the record
    /// keep a copy of them (and of the response's).
    pub needs_headers: bool,
    /// The line's formats read the stream (variables, TLS, counters, maps: see
    /// `LineFormat::needs_stream`): only then does the exchange keep it for the line.
    pub needs_stream: bool,
    /// The line shows `%U`: the request body's bytes are counted as they come (`htx_bytes::Tally`).
    pub needs_bytes_in: bool,
    /// Lines logged so far (`%lc`).
    pub log_count: AtomicU64,
}

impl FrontLog {
    /// Sets [`FrontLog::needs_headers`] and [`FrontLog::needs_stream`] from the formats.
    pub fn with_needs(mut self) -> FrontLog {
        self.needs_headers =
            [&self.format, &self.format_sd, &self.unique_id].into_iter().flatten().any(LineFormat::needs_headers);
        self.needs_stream = [&self.format, &self.format_sd].into_iter().flatten().any(LineFormat::needs_stream);
        self.needs_bytes_in = [&self.format, &self.format_sd]
            .into_iter()
            .flatten()
            .any(|f| f.vars().any(|v| v == crate::log::compiled::Var::BytesIn));
        self
    }

    /// Whether requests need a record even when no line is written (unique ids, captures).
    fn needs_record(&self) -> bool {
        self.unique_id.is_some() || !self.req_slots.is_empty() || !self.res_slots.is_empty() || self.cookie.is_some()
    }

    /// The line's level, or `None` when `dontlog-normal` or `set-log-level silent` drops it.
    /// As HAProxy's `strm_log`: `dontlog-normal` first, then a level set by a rule, which
    /// overrides `log-separate-errors`.
    pub fn level(&self, rec: &Record) -> Option<Level> {
        let err = rec.is_error();
        if !err && self.dontlog_normal {
            return None;
        }
        match rec.level {
            Some(record::LevelSet::Silent) => None,
            Some(record::LevelSet::To(l)) => Some(l),
            None => Some(if err && self.separate_errors { Level::Err } else { Level::Info }),
        }
    }
}

/// The request's record, shared with rules (capture slots) and the log writer.
#[derive(Clone)]
pub struct LogHandle {
    pub rec: Arc<Mutex<Record>>,
    pub spec: Arc<FrontLog>,
}

impl LogHandle {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogHandle {
    /// Fills capture slot `slot` of the request (`http-request capture ... id N`) or the
    /// response, cut to the slot's declared length. A slot the frontend lacks is ignored, as
    /// HAProxy does for a backend's rule naming one.
    pub fn capture(&self, response: bool, slot: usize, value: &[u8]) {
        let slots = if response { &self.spec.res_slots } else { &self.spec.req_slots };
        if let Some(s) = slots.get(slot) {
            let mut rec = self.lock();
            if response { rec.capture_response(slot, value, s.len) } else { rec.capture_request(slot, value, s.len) }
        }
    }
}

/// `%rt`: requests seen by this process.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The host name, read once (as HAProxy does at start-up).
fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default())
}

/// Starts the request's record when the frontend logs or needs ids or captures: takes the
/// header captures and returns the handle the exchange passes to its rules and its log line
/// (not in the request's extensions: inserting there allocates per request). The unique id
/// comes later, on first use or once the rules have run ([`late_unique_id`]), as HAProxy's. `lf_pages`: an `lf-string` error page may render over the record, so
/// it keeps the request's headers for its `%[...]` expressions. `at`: the clock reading the
/// request's log line uses, when it has one (otherwise the clock is read here).
pub fn prepare<B>(
    req: &mut Request<B>,
    cx: &ConnCtx,
    (active, fi): (&super::Active, usize),
    logs: bool,
    lf_pages: bool,
    at: Option<tokio::time::Instant>,
) -> Option<LogHandle> {
    let fe = &active.snap.frontends[fi];
    let (spec, frontend) = (&fe.logging, fe.name.as_str());
    if !logs && !lf_pages && !spec.needs_record() {
        return None;
    }
    if logs && spec.needs_bytes_in {
        req.extensions_mut().get_or_insert_default::<super::htx_bytes::Tally>();
    }
    let handle = spare_record(cx, frontend);
    let mut guard = handle.lock().unwrap_or_else(|p| p.into_inner());
    let rec = &mut *guard;
    rec.request_at = super::httplog::wall_clock(cx, at.unwrap_or_else(tokio::time::Instant::now));
    rec.tls = cx.tls;
    if let Some(t) = cx.tls_info.get() {
        (rec.tls_version, rec.tls_cipher) = (t.protocol, t.cipher);
    }
    rec.method = Some(req.method().clone());
    rec.uri = Some(req.uri().clone());
    rec.version = Some(req.version());
    if spec.needs_headers || lf_pages {
        rec.req_headers = req.headers().clone();
    }
    rec.request_counter = REQUESTS.fetch_add(1, Relaxed);
    rec.hostname = hostname();
    if !spec.req_slots.is_empty() {
        rec.captures_req.resize(spec.req_slots.len(), None);
        for (i, s) in spec.req_slots.iter().enumerate() {
            if let Some(v) = s.header.as_ref().and_then(|h| req.headers().get(h)) {
                rec.capture_request(i, v.as_bytes(), s.len);
            }
        }
    }
    // `tcp-request content capture` ran on the connection, before this request (only slots
    // the frontend declares take them, so without slots the connection's list is not read).
    if !spec.req_slots.is_empty() {
        for (slot, v) in cx.rules.captures() {
            if let Some(s) = spec.req_slots.get(slot) {
                rec.capture_request(slot, &v, s.len);
            }
        }
    }
    rec.captures_res.resize(spec.res_slots.len(), None);
    if let Some((name, len)) = &spec.cookie {
        rec.cookie_req = req_cookie(req.headers(), name, *len);
    }
    drop(guard);
    Some(LogHandle { rec: handle, spec: spec.clone() })
}

fn render_id(
    f: &LineFormat,
    rec: &Record,
    ctx: &dyn crate::sample::SampleContext,
    maps: &dyn crate::sample::Maps,
) -> String {
    let mut id = Vec::new();
    f.render_id(&mut id, rec, ctx, maps);
    String::from_utf8_lossy(&id).into_owned()
}

/// The request's unique id, generated from `unique-id-format` on first use (a rule's
/// `%[unique-id]`, the header, the log line) and kept in the record so all three see one value,
/// as HAProxy's `stream_generate_unique_id`. `None` without a format.
pub fn unique_id(
    h: &LogHandle,
    cx: &ConnCtx,
    active: &super::Active,
    at: (usize, Option<usize>),
    vars: Option<&super::vars::TxnVars<'_>>,
) -> Option<String> {
    make_unique_id(h, cx, active, at, vars, false)
}

/// [`unique_id`]; `answered`: the request was answered without a server (a rule's `deny`,
/// `return`, `redirect`, `tarpit`...), so its request part is gone, as HAProxy's request buffer
/// is once it answered: HAProxy makes such a request's id only when it logs it, and its
/// header and URL fetches find nothing then.
fn make_unique_id(
    h: &LogHandle,
    cx: &ConnCtx,
    active: &super::Active,
    (fi, bi): (usize, Option<usize>),
    vars: Option<&super::vars::TxnVars<'_>>,
    answered: bool,
) -> Option<String> {
    let f = h.spec.unique_id.as_ref()?;
    let mut rec = h.lock();
    if rec.unique_id.is_none() {
        let mut ctx = super::sample_ctx::StreamCtx::logged(cx, active, fi, bi, vars, &rec);
        let maps = &**cx.proxy.maps.store.load();
        let id = if answered {
            (ctx.req_headers, ctx.uri) = (None, None);
            let mut id = Vec::new();
            f.render_id_from(&mut id, &rec, &ctx, maps);
            String::from_utf8_lossy(&id).into_owned()
        } else {
            render_id(f, &rec, &ctx, maps)
        };
        rec.unique_id = Some(id);
    }
    rec.unique_id.clone()
}

/// Once the `http_request` rules have run: the unique id (generated now if no rule read it,
/// so a format reading `%[var(txn.x)]` sees the rules' variables), put on the request going to
/// the server (`unique-id-header`, and the id `send-proxy-v2` sends). `req` `None`: the
/// exchange was answered without a server; the id is still made for the log line, from what
/// is left of the request then (see [`make_unique_id`]).
pub fn late_unique_id<B>(req: Option<&mut Request<B>>, t: &super::rules::Txn<'_>) {
    let Some(h) = t.log else { return };
    let answered = req.is_none();
    let Some(id) = make_unique_id(h, t.cx, t.active, (t.frontend, t.backend), Some(t.vars), answered) else {
        return;
    };
    if let Some(req) = req {
        if let (Some(name), Ok(v)) = (&h.spec.unique_id_header, HeaderValue::from_str(&id)) {
            req.headers_mut().insert(name.clone(), v);
        }
        req.extensions_mut().insert(super::proxy_proto::UniqueId(id));
    }
}

/// Records of finished requests, at most this many per thread.
const SPARE_MAX: usize = 64;

thread_local! {
    /// Records whose line was written, kept for the next requests: a logged request then
    /// allocates no record, no lock and no strings of its own.
    static SPARE: std::cell::RefCell<Vec<Arc<Mutex<Record>>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A blank record for a request: a spare one, reset, or a new one.
fn spare_record(cx: &ConnCtx, frontend: &str) -> Arc<Mutex<Record>> {
    let (src, dst) = cx.addrs();
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(r) => {
            r.lock().unwrap_or_else(|p| p.into_inner()).reset(src, dst, cx.accepted.0, frontend);
            r
        }
        None => Arc::new(Mutex::new(Record::new(src, dst, cx.accepted.0, frontend))),
    }
}

/// Keeps a record whose line was written for a later request, when nothing else holds it.
pub fn recycle(rec: Arc<Mutex<Record>>) {
    if Arc::strong_count(&rec) == 1 && Arc::weak_count(&rec) == 0 {
        SPARE.with_borrow_mut(|s| {
            if s.len() < SPARE_MAX {
                s.push(rec);
            }
        });
    }
}

/// A TCP session's record for a `log-format` line (mode tcp): the connection, the captures
/// its `tcp-request content` rules made, and the unique id; the caller adds how it went.
/// `ctx`: the session, for the unique id's `%[...]`.
pub fn tcp_record(
    cx: &ConnCtx,
    spec: &FrontLog,
    frontend: &str,
    ctx: &dyn crate::sample::SampleContext,
    maps: &dyn crate::sample::Maps,
) -> Record {
    let (src, dst) = cx.addrs();
    let mut rec = Record::new(src, dst, cx.accepted.0, frontend);
    rec.tls = cx.tls;
    rec.hostname = hostname();
    rec.request_counter = REQUESTS.fetch_add(1, Relaxed);
    rec.captures_req = vec![None; spec.req_slots.len()];
    for (slot, v) in cx.rules.captures() {
        if let Some(s) = spec.req_slots.get(slot) {
            rec.capture_request(slot, &v, s.len);
        }
    }
    if let Some(f) = &spec.unique_id {
        rec.unique_id = Some(render_id(f, &rec, ctx, maps));
    }
    rec
}

/// `%CC`: the first request cookie whose `name=value` starts with `name`, cut to `len` bytes.
pub fn req_cookie(headers: &http::HeaderMap, name: &str, len: usize) -> Option<String> {
    let found = headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .find(|c| c.starts_with(name.as_bytes()))?;
    Some(String::from_utf8_lossy(&found[..found.len().min(len)]).into_owned())
}

/// `%CS`: the `name=value` of the first `Set-Cookie` whose cookie starts with `name` (without its
/// attributes, as HAProxy logs it), cut to `len` bytes.
pub fn res_cookie(headers: &http::HeaderMap, name: &str, len: usize) -> Option<String> {
    let found = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.as_bytes().split(|&b| b == b';').next().unwrap_or_default().trim_ascii())
        .find(|c| c.starts_with(name.as_bytes()))?;
    Some(String::from_utf8_lossy(&found[..found.len().min(len)]).into_owned())
}

/// Takes the response header captures.
pub fn capture_response_headers(h: &LogHandle, headers: &http::HeaderMap) {
    if let Some((name, len)) = &h.spec.cookie {
        h.lock().cookie_res = res_cookie(headers, name, *len);
    }
    for (i, s) in h.spec.res_slots.iter().enumerate() {
        if let Some(v) = s.header.as_ref().and_then(|n| headers.get(n)) {
            h.lock().capture_response(i, v.as_bytes(), s.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_captures_match_the_name_start_as_haproxy() {
        let mut h = http::HeaderMap::new();
        h.append(http::header::COOKIE, HeaderValue::from_static("a=1; SESSID=abcdef"));
        h.append(http::header::COOKIE, HeaderValue::from_static("SESS=second"));
        assert_eq!(req_cookie(&h, "SESS", 8).as_deref(), Some("SESSID=a"));
        assert_eq!(req_cookie(&h, "SESS=", 64).as_deref(), Some("SESS=second"));
        assert_eq!(req_cookie(&h, "nope", 64), None);
        h.append(http::header::SET_COOKIE, HeaderValue::from_static("other=1"));
        h.append(http::header::SET_COOKIE, HeaderValue::from_static("SESSNEW=n1; Path=/"));
        assert_eq!(res_cookie(&h, "SESS", 64).as_deref(), Some("SESSNEW=n1"));
        assert_eq!(res_cookie(&h, "SESS", 4).as_deref(), Some("SESS"));
    }
}
