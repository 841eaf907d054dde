//! Runs HTTP rule lists (`http_request`, `http_response`, `http_after_response`) in HAProxy's
//! order: a list stops at an answering action (`deny`, `return`, `redirect`, `auth`) or at
//! `allow`. Everything was parsed at validation; here only samples are fetched and rendered.

use super::body::{ProxyBody, empty, full};
use super::errors::page_keep;
use super::logrec::LogHandle;
use super::sample_ctx::StreamCtx;
use super::vars::TxnVars;
use super::{Active, ConnCtx};
use crate::config::snapshot::{Frontend, HttpAction, HttpRule, RedirectOpts, RedirectTarget};
use crate::routing::Acl;
use crate::sample::{LogFormat, Maps, SampleContext, SmpType, Value};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use regex::bytes::Regex;

/// Where rules run: the connection, its snapshot and the transaction's variables.
pub struct Txn<'a> {
    pub cx: &'a ConnCtx,
    pub active: &'a Active,
    pub frontend: usize,
    pub backend: Option<usize>,
    pub vars: &'a TxnVars<'a>,
    /// The request body buffered by `option http-buffer-request` or read by `wait-for-body`
    /// (`req.body`); a later `wait-for-body` may read further and replace it.
    pub body: Option<bytes::Bytes>,
    /// `body` is all of it, or a full buffer: no `wait-for-body` waits any more.
    pub body_done: bool,
    /// `body` is all of it (read by `wait-for-body`, so it goes to the server from there).
    pub body_whole: bool,
    /// The request's log record, which `capture` and `set-log-level` write to.
    pub log: Option<&'a LogHandle>,
}

impl<'a> Txn<'a> {
    /// A transaction with no request body read yet.
    pub fn new(
        cx: &'a ConnCtx,
        active: &'a Active,
        frontend: usize,
        backend: Option<usize>,
        vars: &'a TxnVars<'a>,
        log: Option<&'a LogHandle>,
    ) -> Self {
        Txn { cx, active, frontend, backend, vars, body: None, body_done: false, body_whole: false, log }
    }

    /// What `req.body` and its kin see: the body read so far, at most a buffer (`tune.bufsize`),
    /// as HAProxy's rules see what its buffer holds. A wait's last frame may take the read past
    /// the buffer: those bytes still go to the server, the rules do not see them.
    pub fn req_body(&self) -> Option<&[u8]> {
        self.body.as_deref().map(|b| &b[..b.len().min(self.active.snap.global.bufsize)])
    }
}

/// What a rule list ended with.
pub enum Outcome {
    /// Every rule ran (or `allow` stopped the list): go on.
    Continue,
    /// An answer to send instead of going on; `denied` for `deny` and `tarpit` (counted as
    /// such); `tarpit` answers only after `timeout tarpit`.
    Answer { resp: Response<ProxyBody>, denied: bool, tarpit: bool },
    /// A `wait-for-body` rule held and the body read so far does not satisfy it: read on, then
    /// go on with the rule at `next` (request and `http-response` rules).
    WaitBody { next: usize, time: std::time::Duration, at_least: Option<usize> },
    /// A `do-resolve` rule matched: resolve `name` into its variable, then go on with the rule
    /// at `next` (request rules only).
    Resolve { next: usize, rule: usize, name: String },
}

/// Log variables a header value or a body may hold (`%ci`, `%fp`, ...); others render empty.
fn log_var<'t>(t: &'t Txn<'t>) -> impl Fn(&str, &[String]) -> Option<Vec<u8>> + 't {
    move |name, _flags| {
        let s = match name {
            "ci" => t.cx.src().ip().to_string(),
            "cp" => t.cx.src().port().to_string(),
            "fi" => t.cx.dst().ip().to_string(),
            "fp" => t.cx.dst().port().to_string(),
            "f" | "ft" => t.active.snap.frontends.get(t.frontend)?.name.clone(),
            "b" => t.active.snap.backends.get(t.backend?)?.name.clone(),
            "H" => SampleContext::hostname(&StreamCtx::conn(t.cx, t.active, t.frontend))?.to_string(),
            _ => return None,
        };
        Some(s.into_bytes())
    }
}

fn render(lf: &LogFormat, ctx: &dyn SampleContext, t: &Txn<'_>) -> Vec<u8> {
    render_in(lf, ctx, t, &t.cx.proxy.maps.lazy())
}

/// [`render`] with the rule pass's maps.
pub(super) fn render_in(lf: &LogFormat, ctx: &dyn SampleContext, t: &Txn<'_>, maps: &dyn Maps) -> Vec<u8> {
    if let [crate::sample::Segment::Literal(text)] = lf.segments.as_slice() {
        return text.clone();
    }
    lf.render(ctx, maps, &log_var(t))
}

/// HAProxy's `exp_replace`: the replacement with `\N` standing for capture N. The parts of the
/// subject the regex did not match are not kept, as in HAProxy.
fn expand(re: &Regex, subject: &[u8], replace: &[u8]) -> Option<Vec<u8>> {
    let caps = re.captures(subject)?;
    let mut out = Vec::with_capacity(replace.len());
    let mut i = 0;
    while i < replace.len() {
        match (replace[i], replace.get(i + 1)) {
            (b'\\', Some(d)) if d.is_ascii_digit() => {
                out.extend_from_slice(caps.get((d - b'0') as usize).map_or(&b""[..], |m| m.as_bytes()));
                i += 2;
            }
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A rewrite that cannot be made (HAProxy's `fail_rewrite`): its result is not a valid header,
/// URI or method, or the message would no longer fit in a buffer (`tune.bufsize`). The message
/// is left as it was; `strict-mode` decides whether that aborts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RewriteFailed;

/// About the room HAProxy's HTX takes for a message's headers: each header's name and value
/// with an 8-byte block, the start line (`line` bytes) with its own, the end-of-headers block
/// and the HTX header. An approximation of HAProxy's count, exact enough to tell a rewrite
/// that overflows the buffer from one that does not.
fn message_room(h: &HeaderMap, line: usize) -> usize {
    40 + 8 + 16 + line + 8 + h.iter().map(|(n, v)| 8 + n.as_str().len() + v.len()).sum::<usize>()
}

/// Whether `h` with `name` set (or appended) to `value` still fits in `limit`.
fn fits_with(h: &HeaderMap, line: usize, limit: usize, name: &HeaderName, value: usize, append: bool) -> bool {
    let freed: usize = if append { 0 } else { h.get_all(name).iter().map(|v| 8 + name.as_str().len() + v.len()).sum() };
    message_room(h, line) - freed + 8 + name.as_str().len() + value <= limit
}

fn set_value(
    h: &mut HeaderMap,
    name: &HeaderName,
    v: Vec<u8>,
    append: bool,
    room: (usize, usize),
) -> Result<(), RewriteFailed> {
    // A value that cannot be a header (a control byte) fails the rewrite, as one that does not
    // fit. The rendered bytes become the value as they are (`from_bytes` would copy them).
    if !fits_with(h, room.0, room.1, name, v.len(), append) {
        return Err(RewriteFailed);
    }
    let v = HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).map_err(|_| RewriteFailed)?;
    if append {
        h.append(name.clone(), v);
    } else {
        h.insert(name.clone(), v);
    }
    Ok(())
}

/// `replace-header` / `replace-value` on every line of `name`; a failure changes nothing.
fn replace_header(
    h: &mut HeaderMap,
    name: &HeaderName,
    re: &Regex,
    replace: &[u8],
    each_value: bool,
    room: (usize, usize),
) -> Result<(), RewriteFailed> {
    let old: Vec<Vec<u8>> = h.get_all(name).iter().map(|v| v.as_bytes().to_vec()).collect();
    if old.is_empty() {
        return Ok(());
    }
    let new: Vec<Vec<u8>> = old
        .iter()
        .map(|line| {
            if !each_value {
                return expand(re, line, replace).unwrap_or_else(|| line.clone());
            }
            let parts: Vec<Vec<u8>> = line
                .split(|&c| c == b',')
                .map(|p| {
                    let p = p.trim_ascii();
                    expand(re, p, replace).unwrap_or_else(|| p.to_vec())
                })
                .collect();
            // HAProxy joins the rewritten values with a bare comma.
            parts.join(&b","[..])
        })
        .collect();
    let values: Vec<HeaderValue> = new
        .into_iter()
        .map(|v| HeaderValue::from_maybe_shared(bytes::Bytes::from(v)))
        .collect::<Result<_, _>>()
        .map_err(|_| RewriteFailed)?;
    let grown: usize = values.iter().map(|v| v.len()).sum::<usize>();
    let was: usize = old.iter().map(Vec::len).sum();
    if message_room(h, room.0) + grown.saturating_sub(was) > room.1 {
        return Err(RewriteFailed);
    }
    h.remove(name);
    for v in values {
        h.append(name.clone(), v);
    }
    Ok(())
}

/// The request target with a new path and/or query; `None` keeps that part.
fn rebuild_uri(uri: &Uri, path: Option<&[u8]>, query: Option<Option<&[u8]>>) -> Option<Uri> {
    let path = path.unwrap_or(uri.path().as_bytes());
    let query = query.unwrap_or(uri.query().map(str::as_bytes));
    let mut pq = path.to_vec();
    if let Some(q) = query {
        pq.push(b'?');
        pq.extend_from_slice(q);
    }
    with_path_and_query(uri, &pq)
}

fn with_path_and_query(uri: &Uri, pq: &[u8]) -> Option<Uri> {
    let pq = if pq.is_empty() { &b"/"[..] } else { pq };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).ok()?);
    Uri::from_parts(parts).ok()
}

fn redirect(
    target: &RedirectTarget,
    code: StatusCode,
    opts: &RedirectOpts,
    ctx: &dyn SampleContext,
    t: &Txn<'_>,
) -> Response<ProxyBody> {
    let path = ctx.uri().map_or("/", |u| u.path());
    let pq = ctx.uri().and_then(|u| u.path_and_query()).map_or("/", |p| p.as_str());
    let mut tail = if opts.drop_query { path.to_string() } else { pq.to_string() };
    if opts.append_slash && opts.drop_query && !tail.ends_with('/') {
        tail.push('/');
    }
    let loc = match target {
        RedirectTarget::Location(lf) => String::from_utf8_lossy(&render(lf, ctx, t)).into_owned(),
        RedirectTarget::Prefix(p) => format!("{}{tail}", String::from_utf8_lossy(&render(p, ctx, t))),
        RedirectTarget::Scheme(s) => {
            let s = String::from_utf8_lossy(&render(s, ctx, t)).into_owned();
            let host = ctx.req_headers().and_then(|h| h.get(header::HOST)).and_then(|h| h.to_str().ok());
            match host {
                Some(h) => format!("{s}://{h}{tail}"),
                None => format!("{s}://{tail}"),
            }
        }
    };
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&loc) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    // As HAProxy 2.6: a temporary redirect must not be cached (301 and 308 may be).
    if matches!(code.as_u16(), 302 | 303 | 307) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Some(c) = &opts.set_cookie
        && let Ok(v) = HeaderValue::from_str(&format!("{c}; path=/;"))
    {
        h.append(header::SET_COOKIE, v);
    }
    if let Some(c) = &opts.clear_cookie
        && let Ok(v) = HeaderValue::from_str(&format!("{c}; path=/; Max-Age=0;"))
    {
        h.append(header::SET_COOKIE, v);
    }
    r
}

/// The answer of `return`, `deny`, `redirect` or `auth`, if `action` is one.
fn answer(action: &HttpAction, ctx: &dyn SampleContext, t: &Txn<'_>) -> Option<Outcome> {
    let (resp, denied) = match action {
        HttpAction::Return { status, headers, body } => {
            let mut r = Response::new(full(body.clone()));
            *r.status_mut() = *status;
            for (n, v) in headers {
                r.headers_mut().append(n.clone(), v.clone());
            }
            (r, false)
        }
        HttpAction::ReturnLf { status, headers, body, deny, lf_headers } => {
            let mut r = Response::new(full(render(body, ctx, t)));
            *r.status_mut() = *status;
            for (n, v) in headers {
                r.headers_mut().append(n.clone(), v.clone());
            }
            for (n, lf) in lf_headers {
                let v = render(lf, ctx, t);
                if let Ok(v) = HeaderValue::from_bytes(&v)
                    && !v.is_empty()
                {
                    r.headers_mut().append(n.clone(), v);
                }
            }
            (r, *deny)
        }
        HttpAction::ErrorPage { status, page, deny } => {
            (page.as_ref().map_or_else(|| page_keep(*status), |p| p.response()), *deny)
        }
        HttpAction::Deny { status } => (page_keep(*status), true),
        HttpAction::Metrics => {
            let text = crate::stats::prometheus::metrics(t.active, t.cx.proxy.started.elapsed());
            let mut r = Response::new(full(text));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::stats::prometheus::CONTENT_TYPE));
            (r, false)
        }
        HttpAction::Tarpit { status } => {
            return Some(Outcome::Answer { resp: page_keep(*status), denied: true, tarpit: true });
        }
        HttpAction::Redirect { target, code, opts } => (redirect(target, *code, opts, ctx, t), false),
        HttpAction::Auth { realm } => {
            let mut r = page_keep(StatusCode::UNAUTHORIZED);
            let v = format!("Basic realm=\"{}\"", realm.replace(['"', '\\'], ""));
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r.extensions_mut().insert(super::track::Challenged);
            (r, false)
        }
        _ => return None,
    };
    let mut resp = resp;
    if !denied
        && matches!(action, HttpAction::Return { .. } | HttpAction::ReturnLf { .. } | HttpAction::Redirect { .. })
    {
        // HAProxy's `L` termination state: answered by the proxy itself, not an error.
        resp.extensions_mut().insert(super::httplog::Local);
    }
    Some(Outcome::Answer { resp, denied, tarpit: false })
}

fn hit(rule: &HttpRule, acls: &[Acl], ctx: &dyn SampleContext, maps: &dyn Maps) -> bool {
    rule.cond.as_ref().is_none_or(|c| c.eval(acls, ctx, maps))
}

/// Runs one `http_request` list on the request.
pub fn request<B>(rules: &[HttpRule], acls: &[Acl], req: &mut Request<B>, t: &Txn<'_>) -> Outcome {
    request_from(rules, 0, acls, req, t)
}

/// Whether `rules` hold a `wait-for-body` or a `do-resolve`, whose list the caller runs with
/// its waits.
pub fn waits_for_body(rules: &[HttpRule]) -> bool {
    rules.iter().any(|r| matches!(r.action, HttpAction::WaitForBody { .. } | HttpAction::DoResolve { .. }))
}

/// [`request`] from the rule at `start` on (after a `wait-for-body` read the body).
pub fn request_from<B>(rules: &[HttpRule], start: usize, acls: &[Acl], req: &mut Request<B>, t: &Txn<'_>) -> Outcome {
    // Each list starts in strict mode, as HAProxy's evaluation of a rule set (a resumption
    // after `wait-for-body` keeps it).
    if start == 0 {
        t.vars.soft_rw_req.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    if rules.len() <= start {
        return Outcome::Continue;
    }
    // One time for the pass's stick counters, as HAProxy's clock for one wake-up.
    let now = t.active.rt.tables.now();
    let maps = t.cx.proxy.maps.lazy();
    for (i, rule) in rules.iter().enumerate().skip(start) {
        // Values are rendered while the request is only read, then applied.
        let change = {
            let ctx = StreamCtx {
                backend: t.backend,
                req_body: t.req_body(),
                log: t.log,
                now: Some(&now),
                ..StreamCtx::request(t.cx, t.active, t.frontend, req, Some(t.vars))
            };
            if let HttpAction::StrictMode(on) = rule.action {
                if hit(rule, acls, &ctx, &maps) {
                    t.vars.soft_rw_req.store(!on, std::sync::atomic::Ordering::Relaxed);
                }
                continue;
            }
            if let HttpAction::WaitForBody { time, at_least } = rule.action {
                // As HAProxy's http_wait_for_msg_body: what is held already may be enough (the
                // whole body, a full buffer, or this rule's `at-least`); else read on.
                if !t.body_done
                    && t.body.as_ref().is_none_or(|b| at_least.is_none_or(|n| b.len() < n))
                    && hit(rule, acls, &ctx, &maps)
                {
                    return Outcome::WaitBody { next: i + 1, time, at_least };
                }
                continue;
            }
            if let HttpAction::EarlyHint(name, fmt) = &rule.action {
                // As HAProxy: HTTP/1.1 and later only; a run of hints ends at a rule that is
                // not one or has a condition.
                if let Some(slot) = req.extensions().get::<super::early_hints::EarlyHints>()
                    && req.version() >= http::Version::HTTP_11
                    && hit(rule, acls, &ctx, &maps)
                {
                    let last = rules
                        .get(i + 1)
                        .is_none_or(|n| !matches!(n.action, HttpAction::EarlyHint(..)) || n.cond.is_some());
                    slot.add(name, &render_in(fmt, &ctx, t, &maps), last);
                }
                continue;
            }
            if let HttpAction::DoResolve { expr, .. } = &rule.action {
                // As HAProxy: a sample that gives no name skips the rule.
                if hit(rule, acls, &ctx, &maps)
                    && let Some(name) = expr.eval_str(&ctx, &maps)
                    && let Ok(name) = String::from_utf8(name)
                    && !name.is_empty()
                {
                    return Outcome::Resolve { next: i + 1, rule: i, name };
                }
                continue;
            }
            match step(rule, acls, &ctx, t, &maps) {
                Step::Stop(out) => return out,
                Step::Next => continue,
                Step::Apply(change) => change,
            }
        };
        // `cache-use`: a stored object answers; a miss leaves what `cache-store` needs on the request.
        if let Change::CacheUse(c) = change {
            if let Some(resp) = crate::cache::use_cache(c, req) {
                return Outcome::Answer { resp, denied: false, tarpit: false };
            }
            continue;
        }
        if change.apply_req(req, t.active.snap.global.bufsize).is_err() {
            count_failed_rewrite(t, None);
            if !t.vars.soft_rw_req.load(std::sync::atomic::Ordering::Relaxed) {
                // HAProxy's internal error: 500, whichever side failed.
                return Outcome::Answer {
                    resp: page_keep(StatusCode::INTERNAL_SERVER_ERROR),
                    denied: false,
                    tarpit: false,
                };
            }
        }
    }
    Outcome::Continue
}

/// What one rule does to the exchange, once judged against it.
enum Step<'r> {
    /// An answer, or `allow`: no later rule of the list runs.
    Stop(Outcome),
    /// Its condition failed, or it changed a variable: on to the next rule.
    Next,
    /// A rewrite, rendered while the message is only read, to apply to it.
    Apply(Change<'r>),
}

fn step<'r>(rule: &'r HttpRule, acls: &[Acl], ctx: &StreamCtx<'_>, t: &Txn<'_>, maps: &dyn Maps) -> Step<'r> {
    if !hit(rule, acls, ctx, maps) {
        return Step::Next;
    }
    if let Some(out) = answer(&rule.action, ctx, t) {
        return Step::Stop(out);
    }
    match &rule.action {
        HttpAction::Allow => Step::Stop(Outcome::Continue),
        HttpAction::SetVar { var, expr } => {
            if let Some(v) = expr.eval(ctx, maps) {
                t.vars.set(var, v);
            }
            Step::Next
        }
        HttpAction::SetVarFmt { var, fmt } => {
            t.vars.set(var, Value::Str(render(fmt, ctx, t)));
            Step::Next
        }
        HttpAction::UnsetVar(var) => {
            t.vars.unset(var);
            Step::Next
        }
        HttpAction::Capture { expr, slot, response } => {
            if let Some(h) = t.log
                && let Some(v) = expr.eval(ctx, maps)
                && let Some(Value::Str(b) | Value::Bin(b)) = v.cast(SmpType::Str)
            {
                h.capture(*response, *slot, &b);
            }
            Step::Next
        }
        HttpAction::SetLogLevel(l) => {
            if let Some(h) = t.log {
                h.lock().level = Some(*l);
            }
            Step::Next
        }
        HttpAction::Reject | HttpAction::SilentDrop => {
            // The connection goes at once (every stream of an HTTP/2 one, as HAProxy); the
            // answer only stands for the denial in the log and the counters, and is never sent.
            if matches!(rule.action, HttpAction::SilentDrop) {
                let how = t.cx.fd.silent_drop(t.cx.local.is_ipv6());
                tracing::debug!(client = %t.cx.peer, "silent-drop ({how:?})");
            } else {
                t.cx.fd.close_now();
            }
            let resp = super::tcp_rules::silent(page_keep(StatusCode::FORBIDDEN));
            Step::Stop(Outcome::Answer { resp, denied: true, tarpit: false })
        }
        HttpAction::NoL7Retry => {
            t.vars.no_l7_retry.store(true, std::sync::atomic::Ordering::Relaxed);
            Step::Next
        }
        // Run by `request_from`, which hands the name to its caller.
        HttpAction::WaitForHandshake | HttpAction::DoResolve { .. } | HttpAction::EarlyHint(..) => Step::Next,
        HttpAction::NormalizeUri(n) => {
            let Some(u) = ctx.uri else { return Step::Next };
            let pq = u.path_and_query().map_or("/", |p| p.as_str());
            match n.apply(pq.as_bytes()) {
                Ok(Some(new)) => Step::Apply(Change::uri(with_path_and_query(u, &new))),
                Ok(None) => Step::Next,
                // A `strict` normalizer on a bad percent sequence: HAProxy's 400.
                Err(_) => {
                    let resp = page_keep(StatusCode::BAD_REQUEST);
                    Step::Stop(Outcome::Answer { resp, denied: false, tarpit: false })
                }
            }
        }
        HttpAction::SockOpt(o) => {
            if let Err(e) = t.cx.fd.apply(*o, t.cx.local.is_ipv6()) {
                tracing::debug!(client = %t.cx.peer, "{o:?} not set: {e}");
            }
            Step::Next
        }
        HttpAction::SetAddr(part, expr) => {
            if let Some(v) = expr.eval(ctx, maps)
                && t.cx.set_addr(*part, v)
                && let Some(h) = t.log
            {
                let mut rec = h.lock();
                (rec.client, rec.local) = (t.cx.src(), t.cx.dst());
            }
            Step::Next
        }
        HttpAction::SetTimeout(kind, value) => {
            let ms = match value {
                crate::config::snapshot::TimeoutValue::Fixed(d) => Some(d.as_millis().min(i64::MAX as u128) as i64),
                crate::config::snapshot::TimeoutValue::Expr(e) => {
                    match e.eval(ctx, maps).and_then(|v| v.cast(SmpType::Sint)) {
                        Some(Value::Sint(n)) => Some(n),
                        _ => None,
                    }
                }
            };
            if let Some(ms) = ms {
                t.vars.timeouts.set(*kind, ms);
            }
            Step::Next
        }
        HttpAction::MapEdit { file, edit, key, value } => {
            use crate::config::snapshot::MapEdit;
            use crate::maps::overlay::Op;
            let key = render_in(key, ctx, t, maps);
            let op = match edit {
                MapEdit::SetMap => {
                    Op::Upsert { key, value: value.as_ref().map_or_else(Vec::new, |v| render_in(v, ctx, t, maps)) }
                }
                MapEdit::DelMap | MapEdit::DelAcl => Op::Del { key },
                MapEdit::AddAcl => Op::AddOnce { key },
            };
            // As HAProxy, a failed edit (nothing to delete, a key the file's index refuses) is
            // not an error of the request.
            if let Err(e) = t.cx.proxy.maps.change(file, op) {
                tracing::debug!(file = %file, "rule map edit not applied: {e}");
            }
            Step::Next
        }
        HttpAction::Stick(a) => {
            let (session, stream) = (&t.cx.rules.stk, Some(&t.vars.stk));
            match ctx.now {
                Some(now) => super::track::act(t.active, session, stream, a, ctx, maps, now),
                None => super::track::act(t.active, session, stream, a, ctx, maps, &t.active.rt.tables.now()),
            }
            Step::Next
        }
        a => Step::Apply(Change::render(a, ctx, t, maps)),
    }
}

/// Runs one `http_response` or `http_after_response` list on a response.
pub fn response(rules: &[HttpRule], acls: &[Acl], resp: &mut Response<ProxyBody>, t: &Txn<'_>) -> Outcome {
    response_from(rules, 0, acls, resp, t)
}

/// What `http-response wait-for-body` read of a response's body, kept in its extensions so
/// later rules (and `http-after-response` ones) read it as `res.body`.
#[derive(Clone, Debug)]
pub struct HeldBody {
    pub bytes: bytes::Bytes,
    /// All of the body, or a full buffer: no `wait-for-body` waits any more.
    pub done: bool,
}

/// [`response`] from the rule at `start` on (after a `wait-for-body` read the body).
pub fn response_from(
    rules: &[HttpRule],
    start: usize,
    acls: &[Acl],
    resp: &mut Response<ProxyBody>,
    t: &Txn<'_>,
) -> Outcome {
    if start == 0 {
        t.vars.soft_rw_res.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    if rules.len() <= start {
        return Outcome::Continue;
    }
    let now = t.active.rt.tables.now();
    let maps = t.cx.proxy.maps.lazy();
    for (i, rule) in rules.iter().enumerate().skip(start) {
        let change = {
            let held = resp.extensions().get::<HeldBody>();
            let ctx = StreamCtx {
                backend: t.backend,
                // The server that answered, when one did (see `http::forward`).
                server: resp.extensions().get::<super::httplog::Picked>().map(|p| p.server),
                res_version: Some(resp.version()),
                vars: Some(t.vars),
                status: Some(resp.status().as_u16()),
                res_headers: Some(resp.headers()),
                res_body: held.map(|h| &h.bytes[..]),
                log: t.log,
                now: Some(&now),
                ..StreamCtx::conn(t.cx, t.active, t.frontend)
            };
            if let HttpAction::StrictMode(on) = rule.action {
                if hit(rule, acls, &ctx, &maps) {
                    t.vars.soft_rw_res.store(!on, std::sync::atomic::Ordering::Relaxed);
                }
                continue;
            }
            if let HttpAction::WaitForBody { time, at_least } = rule.action {
                // As on the request side: what is held may be enough already.
                if !held.is_some_and(|h| h.done || at_least.is_some_and(|n| h.bytes.len() >= n))
                    && hit(rule, acls, &ctx, &maps)
                {
                    return Outcome::WaitBody { next: i + 1, time, at_least };
                }
                continue;
            }
            match step(rule, acls, &ctx, t, &maps) {
                Step::Stop(out) => return out,
                Step::Next => continue,
                Step::Apply(change) => change,
            }
        };
        let server = resp.extensions().get::<super::httplog::Picked>().map(|p| p.server);
        if change.apply_res(resp, t.active.snap.global.bufsize).is_err() {
            count_failed_rewrite(t, server);
            if !t.vars.soft_rw_res.load(std::sync::atomic::Ordering::Relaxed) {
                return Outcome::Answer {
                    resp: page_keep(StatusCode::INTERNAL_SERVER_ERROR),
                    denied: false,
                    tarpit: false,
                };
            }
        }
    }
    Outcome::Continue
}

/// HAProxy's `wrew`: a failed rewrite counts on the frontend, on the backend once assigned and
/// on the server that answered, whether strict-mode then fails the message or not.
fn count_failed_rewrite(t: &Txn<'_>, server: Option<usize>) {
    use std::sync::atomic::Ordering::Relaxed;
    let rt = &t.active.rt;
    if let Some(f) = rt.frontends.get(t.frontend) {
        f.failed_rewrites.fetch_add(1, Relaxed);
    }
    if let Some(b) = t.backend.and_then(|bi| rt.backends.get(bi)) {
        b.counters.failed_rewrites.fetch_add(1, Relaxed);
        if let Some(s) = server.and_then(|si| b.servers.get(si)) {
            s.counters.failed_rewrites.fetch_add(1, Relaxed);
        }
    }
}

/// A rewrite with its values rendered, ready to apply.
enum Change<'r> {
    None,
    Header {
        name: &'r HeaderName,
        value: Vec<u8>,
        append: bool,
    },
    Del(&'r HeaderName),
    DelMatching(&'r crate::config::snapshot::NameMatch),
    Replace {
        name: &'r HeaderName,
        regex: &'r Regex,
        replace: Vec<u8>,
        each_value: bool,
    },
    Uri(Uri),
    /// The rewrite's result is not valid (a URI or method that cannot be).
    Failed,
    Method(Vec<u8>),
    Status(StatusCode, Option<String>),
    CacheUse(&'r std::sync::Arc<crate::cache::Cache>),
    CacheStore(&'r std::sync::Arc<crate::cache::Cache>),
}

impl<'r> Change<'r> {
    fn render(a: &'r HttpAction, ctx: &StreamCtx<'_>, t: &Txn<'_>, maps: &dyn Maps) -> Change<'r> {
        let uri = ctx.uri;
        match a {
            HttpAction::SetHeader(n, v) => Change::Header { name: n, value: render_in(v, ctx, t, maps), append: false },
            HttpAction::AddHeader(n, v) => Change::Header { name: n, value: render_in(v, ctx, t, maps), append: true },
            HttpAction::DelHeader(n) => Change::Del(n),
            HttpAction::DelHeaders(m) => Change::DelMatching(m),
            HttpAction::ReplaceHeader { name, regex, replace, each_value } => {
                Change::Replace { name, regex, replace: render_in(replace, ctx, t, maps), each_value: *each_value }
            }
            HttpAction::SetPath(lf) => {
                let Some(u) = uri else { return Change::None };
                Change::uri(rebuild_uri(u, Some(&render_in(lf, ctx, t, maps)), None))
            }
            HttpAction::SetQuery(lf) => {
                let Some(u) = uri else { return Change::None };
                let q = render_in(lf, ctx, t, maps);
                Change::uri(rebuild_uri(u, None, Some((!q.is_empty()).then_some(&q[..]))))
            }
            HttpAction::SetPathQ(lf) => {
                let Some(u) = uri else { return Change::None };
                Change::uri(with_path_and_query(u, &render_in(lf, ctx, t, maps)))
            }
            HttpAction::SetUri(lf) => Change::uri(Uri::try_from(render_in(lf, ctx, t, maps)).ok()),
            // No match leaves the request alone; a match whose result is no URI fails.
            HttpAction::ReplacePath { regex, replace, with_query } => {
                let Some(u) = uri else { return Change::None };
                let rep = render_in(replace, ctx, t, maps);
                if *with_query {
                    let pq = u.path_and_query().map_or("/", |p| p.as_str());
                    let Some(new) = expand(regex, pq.as_bytes(), &rep) else { return Change::None };
                    Change::uri(with_path_and_query(u, &new))
                } else {
                    let Some(new) = expand(regex, u.path().as_bytes(), &rep) else { return Change::None };
                    Change::uri(rebuild_uri(u, Some(&new), None))
                }
            }
            HttpAction::ReplaceUri { regex, replace } => {
                let Some(u) = uri else { return Change::None };
                let Some(new) = expand(regex, u.to_string().as_bytes(), &render_in(replace, ctx, t, maps)) else {
                    return Change::None;
                };
                Change::uri(Uri::try_from(new).ok())
            }
            HttpAction::SetMethod(lf) => Change::Method(render_in(lf, ctx, t, maps)),
            HttpAction::SetStatus { status, reason } => Change::Status(*status, reason.clone()),
            HttpAction::CacheUse(c) => Change::CacheUse(c),
            HttpAction::CacheStore(c) => Change::CacheStore(c),
            _ => Change::None,
        }
    }

    fn uri(u: Option<Uri>) -> Change<'r> {
        u.map_or(Change::Failed, Change::Uri)
    }

    /// Applies a header change; any other change comes back to the caller. `room`: the start
    /// line's length and the buffer size the message must fit in.
    fn apply_headers(self, h: &mut HeaderMap, room: (usize, usize)) -> Result<Option<Change<'r>>, RewriteFailed> {
        match self {
            Change::Header { name, value, append } => set_value(h, name, value, append, room)?,
            Change::Del(n) => {
                h.remove(n);
            }
            Change::DelMatching(m) => {
                let doomed: Vec<HeaderName> = h.keys().filter(|k| m.matches(k.as_str())).cloned().collect();
                for n in doomed {
                    h.remove(n);
                }
            }
            Change::Replace { name, regex, replace, each_value } => {
                replace_header(h, name, regex, &replace, each_value, room)?
            }
            Change::Failed => return Err(RewriteFailed),
            other => return Ok(Some(other)),
        }
        Ok(None)
    }

    fn apply_req<B>(self, req: &mut Request<B>, bufsize: usize) -> Result<(), RewriteFailed> {
        let line = req.method().as_str().len() + req.uri().path_and_query().map_or(1, |p| p.as_str().len()) + 8;
        match self.apply_headers(req.headers_mut(), (line, bufsize))? {
            Some(Change::Uri(u)) => {
                let grown = u.path_and_query().map_or(1, |p| p.as_str().len()) + req.method().as_str().len() + 8;
                if message_room(req.headers(), grown) > bufsize {
                    return Err(RewriteFailed);
                }
                *req.uri_mut() = u;
            }
            Some(Change::Method(m)) => *req.method_mut() = http::Method::from_bytes(&m).map_err(|_| RewriteFailed)?,
            _ => {}
        }
        Ok(())
    }

    fn apply_res(self, resp: &mut Response<ProxyBody>, bufsize: usize) -> Result<(), RewriteFailed> {
        // "HTTP/1.1 200 " and a reason.
        let line = 13 + resp.status().canonical_reason().map_or(0, str::len);
        match self.apply_headers(resp.headers_mut(), (line, bufsize))? {
            Some(Change::Status(st, reason)) => {
                *resp.status_mut() = st;
                resp.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
                if let Some(r) = reason.and_then(|r| hyper::ext::ReasonPhrase::try_from(r.into_bytes()).ok()) {
                    resp.extensions_mut().insert(r);
                }
            }
            // Only a response to a `cache-use` of the same cache is stored.
            Some(Change::CacheStore(c)) => crate::cache::store(c, resp),
            _ => {}
        }
        Ok(())
    }
}

/// The backend `use_backend` rules pick, static and `%[...]` ones in their written order.
pub fn choose_backend<B>(fe: &Frontend, req: &Request<B>, t: &Txn<'_>) -> Option<usize> {
    let ctx = StreamCtx {
        req_body: t.req_body(),
        log: t.log,
        ..StreamCtx::request(t.cx, t.active, t.frontend, req, Some(t.vars))
    };
    choose(fe, &ctx, t)
}

pub fn choose(fe: &Frontend, ctx: &StreamCtx<'_>, t: &Txn<'_>) -> Option<usize> {
    let maps = &t.cx.proxy.maps.lazy();
    let mut dynamic = fe.dyn_switching.iter().peekable();
    for i in 0..=fe.switching.len() {
        while let Some(d) = dynamic.next_if(|d| d.position <= i) {
            if d.cond.as_ref().is_none_or(|c| c.eval(&fe.acls, ctx, maps)) {
                let name = render_in(&d.name, ctx, t, maps);
                let found = std::str::from_utf8(&name).ok().and_then(|n| t.active.snap.backend(n));
                // A name that is no backend, or one of another mode, skips the rule.
                if let Some((bi, be)) = found
                    && be.mode == fe.mode
                {
                    return Some(bi);
                }
            }
        }
        if let Some(r) = fe.switching.get(i)
            && r.cond.as_ref().is_none_or(|c| c.eval(&fe.acls, ctx, maps))
        {
            return Some(r.backend);
        }
    }
    fe.default_backend
}

/// The user of `userlist` whose Basic credentials the request carries, if they are valid.
pub fn http_auth_user<'s>(ctx: &'s StreamCtx<'_>, userlist: &str) -> Option<&'s str> {
    use base64::Engine;
    let list = ctx.active.snap.userlists.iter().find(|l| l.name == userlist)?;
    let v = ctx.req_headers?.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pw) = raw.split_once(':')?;
    let (name, stored) = list.users.iter().find(|(n, _)| n == user)?;
    let ok = match stored {
        crate::config::snapshot::Password::Insecure(p) => p == pw,
        crate::config::snapshot::Password::Hash(h) => crate::api::auth::verify_hash(pw, h),
    };
    ok.then_some(name.as_str())
}

/// What `wait-for-body` read: the bytes, and whether they are the whole body.
pub struct Waited {
    pub bytes: bytes::Bytes,
    pub complete: bool,
}

/// `http-response wait-for-body`: reads the response body until its end, `at_least` bytes or
/// `limit` bytes (a full buffer), whichever comes first, into the response's [`HeldBody`]; the
/// body is rebuilt with those bytes in front, so the client gets it unchanged. `Err` when none
/// of these came by `deadline` (HAProxy's 504). A server error or trailers end the read; they
/// follow the bytes, as they would have.
pub async fn wait_res_body(
    resp: &mut Response<ProxyBody>,
    limit: usize,
    deadline: tokio::time::Instant,
    at_least: Option<usize>,
) -> Result<(), ()> {
    use super::body::ReadEnd;
    use http_body_util::BodyExt;
    let enough = at_least.unwrap_or(usize::MAX).min(limit);
    let mut body = std::mem::replace(resp.body_mut(), super::body::empty());
    let (out, end) = super::body::read_until(&mut body, enough, deadline).await;
    let (complete, pending) = match end {
        ReadEnd::Timeout => return Err(()),
        ReadEnd::End => (true, None),
        ReadEnd::Enough => (false, None),
        ReadEnd::Trailers(t) => (true, Some(Ok(http_body::Frame::trailers(t)))),
        ReadEnd::Error(e) => (true, Some(Err(e))),
    };
    let bytes = out.freeze();
    let done = complete || bytes.len() >= limit;
    // A frame may carry more than the buffer holds: the rules see a buffer's worth, the client
    // gets all of it.
    let held = bytes.slice(..bytes.len().min(limit));
    *resp.body_mut() = super::body::HeldFront::new(bytes, pending, body).boxed_unsync();
    resp.extensions_mut().insert(HeldBody { bytes: held, done });
    Ok(())
}

/// `wait-for-body`: reads the body until its end, `at_least` bytes or `limit` bytes (a full
/// buffer), whichever comes first; a partly read body is put back in front of the rest, so the
/// server gets all of it (and a later `wait-for-body` reads it again, then further).
/// `Err(None)` when none of these came by `deadline` (HAProxy's 408), `Err(Some(why))` when the
/// client's body is broken.
pub async fn wait_body(
    body: &mut super::body::ReqBody,
    limit: usize,
    deadline: tokio::time::Instant,
    at_least: Option<usize>,
) -> Result<Waited, Option<&'static str>> {
    use super::body::ReadEnd;
    let enough = at_least.unwrap_or(usize::MAX).min(limit);
    let (out, end) = super::body::read_until(body, enough, deadline).await;
    let (complete, trailers) = match end {
        ReadEnd::Timeout => return Err(None),
        ReadEnd::Error(_) => return Err(Some("invalid request body")),
        ReadEnd::End => (true, None),
        ReadEnd::Enough => (false, None),
        // Trailers end the body. They are kept behind the bytes, and the body is not reported
        // whole, so callers forward it as it came rather than rebuild it from the bytes alone
        // (which would drop them).
        ReadEnd::Trailers(t) => (false, Some(t)),
    };
    let bytes = out.freeze();
    if !complete {
        body.put_back(bytes.clone(), trailers);
    }
    Ok(Waited { bytes, complete })
}

/// `option http-buffer-request`: reads the whole body (up to `limit` bytes) before the rules
/// run, leaving the request's own body at its end (or, when trailers ended it, holding the bytes
/// and the trailers again: see `ReqBody::put_back`). `Err` when the body is larger than the limit
/// or the client fails or stalls past `idle`.
pub async fn buffer_body(
    body: &mut super::body::ReqBody,
    limit: usize,
    idle: std::time::Duration,
) -> Result<bytes::Bytes, &'static str> {
    use http_body_util::BodyExt;
    let mut out = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err("request body timeout"),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(_))) => return Err("invalid request body"),
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    if out.len() + data.len() > limit {
                        return Err("request body larger than the buffer");
                    }
                    out.extend_from_slice(&data);
                }
                // Trailers end the body: it goes to the server as it came, trailers and all
                // (rebuilt from the bytes alone it would lose them).
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        let out = out.freeze();
                        body.put_back(out.clone(), Some(t));
                        return Ok(out);
                    }
                }
            },
        }
    }
}

/// `monitor-uri`: HAProxy's answer, 503 when `monitor fail` holds.
pub fn monitor<B>(fe: &Frontend, req: &Request<B>, t: &Txn<'_>) -> Option<Response<ProxyBody>> {
    let (uri, fail) = fe.monitor.as_ref()?;
    if req.uri().path() != uri {
        return None;
    }
    let ctx = StreamCtx::request(t.cx, t.active, t.frontend, req, Some(t.vars));
    let failed = fail.as_ref().is_some_and(|c| c.eval(&fe.acls, &ctx, &**t.cx.proxy.maps.store.load()));
    let (status, text) = if failed {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        )
    } else {
        (StatusCode::OK, "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n")
    };
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response whose body comes as these frames (data, then trailers if any).
    fn framed(parts: &[&'static [u8]], trailers: bool) -> Response<ProxyBody> {
        use http_body_util::BodyExt;
        let mut frames: Vec<Result<http_body::Frame<bytes::Bytes>, super::super::body::BoxError>> =
            parts.iter().map(|p| Ok(http_body::Frame::data(bytes::Bytes::from_static(p)))).collect();
        if trailers {
            let mut t = http::HeaderMap::new();
            t.insert("x-t", http::HeaderValue::from_static("1"));
            frames.push(Ok(http_body::Frame::trailers(t)));
        }
        Response::new(http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync())
    }

    async fn drain(resp: Response<ProxyBody>) -> (Vec<u8>, bool) {
        use http_body_util::BodyExt;
        let c = resp.into_body().collect().await.unwrap();
        let trailers = c.trailers().is_some();
        (c.to_bytes().to_vec(), trailers)
    }

    #[tokio::test]
    async fn response_wait_holds_a_buffer_and_forwards_all() {
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        // `at-least 2`: the first frame is enough; the rest follows unchanged.
        let mut r = framed(&[b"abc", b"def"], true);
        wait_res_body(&mut r, 16, later, Some(2)).await.unwrap();
        let h = r.extensions().get::<HeldBody>().unwrap().clone();
        assert_eq!((&h.bytes[..], h.done), (&b"abc"[..], false));
        // A second wait reads the held bytes again, then on to the end (trailers end it).
        wait_res_body(&mut r, 16, later, None).await.unwrap();
        let h = r.extensions().get::<HeldBody>().unwrap().clone();
        assert_eq!((&h.bytes[..], h.done), (&b"abcdef"[..], true));
        assert_eq!(drain(r).await, (b"abcdef".to_vec(), true));
        // A frame beyond the buffer: the rules see the buffer's worth, the client all of it.
        let mut r = framed(&[b"0123456789"], false);
        wait_res_body(&mut r, 4, later, None).await.unwrap();
        let h = r.extensions().get::<HeldBody>().unwrap().clone();
        assert_eq!((&h.bytes[..], h.done), (&b"0123"[..], true));
        assert_eq!(drain(r).await, (b"0123456789".to_vec(), false));
    }

    #[test]
    fn replacements_expand_captures_and_drop_the_rest_as_haproxy() {
        let re = Regex::new(r"^/api/(.*)$").unwrap();
        assert_eq!(expand(&re, b"/api/v1/x", br"/v2/\1").unwrap(), b"/v2/v1/x");
        assert_eq!(expand(&re, b"/web", br"/v2/\1"), None);
        let re = Regex::new(r"foo").unwrap();
        assert_eq!(expand(&re, b"a foo b", b"bar").unwrap(), b"bar", "only the replacement is kept");
        assert_eq!(expand(&re, b"foo", br"x\\y\9").unwrap(), br"x\y");
    }

    #[test]
    fn uris_are_rebuilt_part_by_part() {
        let u: Uri = "/a/b?x=1".parse().unwrap();
        assert_eq!(rebuild_uri(&u, Some(b"/c"), None).unwrap(), "/c?x=1");
        assert_eq!(rebuild_uri(&u, None, Some(Some(b"y=2"))).unwrap(), "/a/b?y=2");
        assert_eq!(rebuild_uri(&u, None, Some(None)).unwrap(), "/a/b");
        let abs: Uri = "http://example.com/a?q".parse().unwrap();
        assert_eq!(rebuild_uri(&abs, Some(b"/z"), None).unwrap(), "http://example.com/z?q");
        assert_eq!(with_path_and_query(&u, b"").unwrap(), "/");
    }

    #[test]
    fn replace_header_and_replace_value() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("one, two"));
        h.append("x-a", HeaderValue::from_static("three"));
        let name = HeaderName::from_static("x-a");
        let re = Regex::new("^t(.*)$").unwrap();
        let mut v = h.clone();
        let room = (20, 16384);
        replace_header(&mut v, &name, &re, br"T\1", true, room).unwrap();
        let got: Vec<&str> = v.get_all(&name).iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(got, ["one,Two", "Three"]);
        replace_header(&mut h, &name, &re, br"T\1", false, room).unwrap();
        let got: Vec<&str> = h.get_all(&name).iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(got, ["one, two", "Three"], "the whole line must match");
    }

    #[test]
    fn a_rewrite_that_is_invalid_or_does_not_fit_fails_and_changes_nothing() {
        let name = HeaderName::from_static("x-a");
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("abc"));
        let before = h.clone();
        // A control byte is no header value.
        assert_eq!(set_value(&mut h, &name, b"a\nb".to_vec(), false, (20, 16384)), Err(RewriteFailed));
        // 16 kB of header in a 16 kB buffer does not fit with the rest of the message.
        assert_eq!(set_value(&mut h, &name, vec![b'x'; 16384], true, (20, 16384)), Err(RewriteFailed));
        let re = Regex::new("^(.*)$").unwrap();
        let big = vec![b'y'; 16384];
        assert_eq!(replace_header(&mut h, &name, &re, &big, false, (20, 16384)), Err(RewriteFailed));
        assert_eq!(replace_header(&mut h, &name, &re, b"\\1\r", false, (20, 16384)), Err(RewriteFailed));
        assert_eq!(h, before);
        // Setting replaces: the old value's room is given back.
        assert_eq!(set_value(&mut h, &name, vec![b'x'; 16000], false, (20, 16384)), Ok(()));
        assert_eq!(set_value(&mut h, &name, vec![b'z'; 16000], false, (20, 16384)), Ok(()));
        assert_eq!(set_value(&mut h, &name, vec![b'z'; 10], true, (20, 16384)), Ok(()));
        assert_eq!(set_value(&mut h, &name, vec![b'z'; 400], true, (20, 16384)), Err(RewriteFailed));
    }
}
