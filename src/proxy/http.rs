//! HTTP mode: hyper 1 on both sides. Phases per request: check framing → monitor-uri → frontend
//! http_request rules → stats → choose backend → backend http_request rules → choose server and
//! connect (with retries) → forward → backend then frontend http_response rules →
//! http_after_response rules (also on lbha's own answers). Rules run in `proxy::rules`.

use super::body::{Metered, Progress, ProxyBody, ReqBody, empty, full};
use super::errors::{ProxyError, page, page_keep};
use super::framing::Verdict;
use super::retry_on::Failure;
use super::rules::{self, Outcome, Txn};
use super::sample_ctx::StreamCtx;
use super::vars::TxnVars;
use super::{Active, ConnCtx, httplog, queue};
use crate::balance;
use crate::config::snapshot::{ConnMode, Forwardfor, LogMode};
use crate::health::passive::Event;
use crate::state::{Counters, SessionGuard};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Checks RFC 9112 framing before anything reaches a server: ambiguous messages are the raw
/// material of request smuggling, so they are refused rather than repaired.
pub fn check_framing(req: &Request<ReqBody>) -> Result<(), &'static str> {
    let h = req.headers();
    // One lookup per field: its first value and whether there is another.
    let first_and_more = |name| {
        let mut all = h.get_all(name).iter();
        (all.next(), all.next().is_some())
    };
    let (cl, cls) = first_and_more(header::CONTENT_LENGTH);
    let (te, tes) = first_and_more(header::TRANSFER_ENCODING);
    if cls {
        return Err("duplicate Content-Length");
    }
    if cl.is_some() && te.is_some() {
        return Err("both Content-Length and Transfer-Encoding");
    }
    if let Some(v) = cl
        && (v.is_empty() || !v.as_bytes().iter().all(u8::is_ascii_digit))
    {
        return Err("malformed Content-Length");
    }
    if let Some(te) = te {
        if req.version() != Version::HTTP_11 {
            return Err("Transfer-Encoding in HTTP/1.0");
        }
        if tes || !te.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err("unsupported Transfer-Encoding");
        }
    }
    let (host, hosts) = first_and_more(header::HOST);
    if hosts {
        return Err("duplicate Host");
    }
    if req.version() == Version::HTTP_11 && host.is_none() {
        return Err("missing Host");
    }
    if let (Some(auth), Some(host)) = (req.uri().authority(), host)
        && !auth.as_str().eq_ignore_ascii_case(host.to_str().unwrap_or(""))
    {
        return Err("Host disagrees with the request target");
    }
    if req.uri().path().contains('#') {
        return Err("fragment in request target");
    }
    Ok(())
}

/// The protocol of an HTTP/1.1 `Connection: upgrade` + `Upgrade: X` request.
fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if !asks {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// Fields that never cross the proxy (RFC 9110 §7.6.1), besides those `Connection` names.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "keep-alive",
    "proxy-connection",
];

/// `HOP_BY_HOP` as names, in the same order: removing by name does not parse it again.
static HOP_NAMES: [http::HeaderName; HOP_BY_HOP.len()] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    http::HeaderName::from_static("keep-alive"),
    http::HeaderName::from_static("proxy-connection"),
];

/// Hop-by-hop fields plus whatever `Connection` names. The names present are found in one pass
/// and removed by their parsed name: most messages carry one or none (`Connection: keep-alive`).
/// `keep_trailer`: a request's `Trailer` stays (HAProxy 2.6 forwards it; see `trailers`).
fn strip_hop_by_hop(h: &mut HeaderMap, keep_trailer: bool) {
    // Which of the fixed names are present, in the map's order (removing in another order would
    // reorder the fields left): indices, so the common case allocates nothing.
    let (mut hop, mut n) = ([0u8; HOP_BY_HOP.len()], 0);
    for k in h.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|&x| x == k.as_str())
            && !(keep_trailer && HOP_NAMES[i] == header::TRAILER)
        {
            hop[n] = i as u8;
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    let mut doomed: Vec<http::HeaderName> = Vec::new();
    for v in h.get_all(header::CONNECTION) {
        let Ok(v) = v.to_str() else { continue };
        for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            // The usual tokens (`keep-alive`, `upgrade`) name fields of the list above, already
            // found if present: no need to parse them as names.
            if HOP_BY_HOP.iter().any(|n| token.eq_ignore_ascii_case(n)) {
                // A kept `Trailer` the client made hop-by-hop goes all the same.
                if keep_trailer && token.eq_ignore_ascii_case("trailer") && !doomed.contains(&header::TRAILER) {
                    doomed.push(header::TRAILER);
                }
                continue;
            }
            // from_bytes lowercases; a token that is not a valid name cannot name a field.
            if let Ok(n) = http::HeaderName::from_bytes(token.as_bytes())
                && !doomed.contains(&n)
                && h.contains_key(&n)
            {
                doomed.push(n);
            }
        }
    }
    for &i in &hop[..n] {
        h.remove(&HOP_NAMES[i as usize]);
    }
    for n in doomed {
        h.remove(n);
    }
}

/// The field `option forwardfor` adds for this client, combined over the frontend and the
/// backend as HAProxy 2.6 does: the backend's header name when it has the option; none when the
/// client is in either's `except` network, or when both have `if_none` (or only one has the
/// option, with `if_none`) and the request carries that field already.
fn forwarded_for(
    fe: Option<&Forwardfor>,
    be: Option<&Forwardfor>,
    client: std::net::IpAddr,
    headers: &HeaderMap,
) -> Option<http::HeaderName> {
    let name = be.or(fe)?.header.clone().unwrap_or(http::HeaderName::from_static("x-forwarded-for"));
    let both = || fe.into_iter().chain(be);
    if both().any(|f| f.except.is_some_and(|n| n.contains(client))) {
        return None;
    }
    if both().all(|f| f.if_none) && headers.contains_key(&name) {
        return None;
    }
    Some(name)
}

fn finish(fcnt: &Counters, mut resp: Response<ProxyBody>, close: bool) -> Response<ProxyBody> {
    fcnt.count_status(resp.status().as_u16());
    if close {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn fail(fcnt: &Counters, cx: &ConnCtx, frontend: &str, err: ProxyError) -> Response<ProxyBody> {
    tracing::info!(client = %cx.peer, frontend, status = err.status().as_u16(), "{}", err.reason());
    match err {
        // As HAProxy's `ereq`: every request refused for its head.
        ProxyError::BadRequest(_)
        | ProxyError::UriTooLong
        | ProxyError::HeadersTooLarge
        | ProxyError::RequestTimeout
        | ProxyError::ClosedEarly => fcnt.errors_req.fetch_add(1, Relaxed),
        ProxyError::Denied => fcnt.denied_req.fetch_add(1, Relaxed),
        _ => 0,
    };
    finish(fcnt, error_page(err), false)
}

/// A proxy-made error answer that remembers why (for the log's termination state).
/// A client gone during its body gets none: the connection closes, as HAProxy's.
fn error_page(e: ProxyError) -> Response<ProxyBody> {
    let mut r = if e.closes() { page(e.status()) } else { page_keep(e.status()) };
    r.extensions_mut().insert(e);
    if e == ProxyError::ClientReset { super::tcp_rules::silent(r) } else { r }
}

/// Serves one request of a client connection; with the line to log once the response body is
/// done (the connection's body wrapper carries it).
#[allow(clippy::manual_async_fn)] // see the `async move` comment below
pub fn handle(
    mut req: Request<ReqBody>,
    verdict: Verdict,
    cx: Arc<ConnCtx>,
) -> impl Future<Output = (Response<ProxyBody>, Option<httplog::Tail>)> {
    // An `async move` block rather than an `async fn`: the arguments are held once, not also
    // as copies beside them, in every request's future (bench/PROFILE.md, session 11).
    async move {
        let active = cx.proxy.active.load_full();
        let Some(&fi) = active.binds.get(&cx.local) else {
            return (page(StatusCode::SERVICE_UNAVAILABLE), None);
        };
        let first = cx.requests.fetch_add(1, Relaxed) == 0;
        let vars = TxnVars::new(&cx.proxy.proc_vars, &cx.sess_vars);
        super::track::http_request(&active, &cx.rules.stk);
        let bytes = super::htx_bytes::start(&active, &mut req);
        let fe = &active.snap.frontends[fi];
        // `option dontlognull`: a connection that sent nothing is answered but not logged.
        let logs = fe.log == LogMode::Http && active.fe_logger(fi).enabled() && !(fe.dontlognull && verdict.is_probe());
        // An `lf-string` error page renders over the request's record.
        let lf_pages = fe.errors.has_lf() || active.snap.backends.iter().any(|b| b.errors.has_lf());
        // A logged request's one clock reading at its start: its record's date and its timers.
        let at = logs.then(tokio::time::Instant::now);
        let log = super::logrec::prepare(&mut req, &cx, (&active, fi), logs, lf_pages, at);
        // A refused head reached the service as the framing guard's stand-in: no request line to show.
        let bad_request = verdict.stands_in();
        if let Some(r) = bad_request.then(|| req.extensions_mut().remove::<super::framing::Refused>()).flatten() {
            let why = match verdict {
                Verdict::Bad(why) => why,
                Verdict::UriTooLong => "request line too long",
                _ => "header section too large",
            };
            active.rt.frontends[fi].capture_error(cx.peer, why, r.0);
        }
        if bad_request && let Some(l) = &log {
            l.lock().refuse_head();
        }
        if !logs {
            let (resp, bi) = serve(req, verdict, &cx, &active, fi, &vars, log.as_ref()).await;
            let t = Txn::new(&cx, &active, fi, bi, &vars, log.as_ref());
            super::logrec::late_unique_id::<()>(None, &t);
            let resp = super::errpages::customize(resp, &t);
            let resp = after_response(resp, &cx, &active, fi, bi, &vars, log.as_ref());
            backend_status(&active, bi, &resp);
            track_done(&resp, &cx, &active, &vars);
            return (super::htx_bytes::finish(resp, bytes, &active, &cx.rules.stk, &vars.stk), None);
        }
        let mut start = httplog::Start::new(&req, &cx, first, log, at.unwrap_or_else(tokio::time::Instant::now));
        if bad_request && start.log.is_none() {
            start.line = "<BADREQ>".into();
        }
        start.refused = bad_request;
        let log = &start.log;
        let (resp, bi) = serve(req, verdict, &cx, &active, fi, &vars, log.as_ref()).await;
        let t = Txn::new(&cx, &active, fi, bi, &vars, log.as_ref());
        super::logrec::late_unique_id::<()>(None, &t);
        let resp = super::errpages::customize(resp, &t);
        let resp = after_response(resp, &cx, &active, fi, bi, &vars, log.as_ref());
        backend_status(&active, bi, &resp);
        track_done(&resp, &cx, &active, &vars);
        let resp = super::htx_bytes::finish(resp, bytes, &active, &cx.rules.stk, &vars.stk);
        // The line reads the stream (`LineFormat::needs_stream`): kept until it is written.
        let keep = active.snap.frontends[fi].logging.needs_stream;
        let (resp, mut tail) = httplog::wrap(resp, start, active, fi, &cx);
        if keep {
            tail.keep_stream(&cx, bi, vars);
        }
        (resp, Some(tail))
    }
}

/// The backend's `hrsp_*`: the status the client gets (after `http-response` and
/// `http-after-response` rules, a failed rewrite's 500 included), for every response of a
/// request that reached a backend, as HAProxy 2.6 counts them when the stream ends; the server
/// counted what it sent.
fn backend_status(active: &Active, bi: Option<usize>, resp: &Response<ProxyBody>) {
    if let Some(b) = bi {
        active.rt.backends[b].counters.count_status(resp.status().as_u16());
    }
}

/// What the exchange adds to the stick counters it tracks at its end (`http_err_*`).
fn track_done(resp: &Response<ProxyBody>, cx: &ConnCtx, active: &Active, vars: &TxnVars<'_>) {
    let how = if resp.extensions().get::<super::track::Denied>().is_some() {
        super::track::Answer::Denied
    } else if resp.extensions().get::<super::track::Challenged>().is_some() {
        super::track::Answer::Challenged
    } else if resp.extensions().get::<super::track::Answered>().is_some() {
        super::track::Answer::Rule
    } else if matches!(resp.extensions().get::<ProxyError>(), Some(ProxyError::RequestTimeout)) {
        super::track::Answer::HeadTimeout
    } else {
        super::track::Answer::Other
    };
    super::track::http_done(active, &cx.rules.stk, &vars.stk, resp.status().as_u16(), how);
}

/// `http_after_response` rules, the backend's then the frontend's, on every response,
/// lbha's own included (as HAProxy). They cannot answer, but a rewrite that fails with
/// strict-mode on turns the response into HAProxy's 500 (its errorfile if any), over which
/// the rules run once more; failing again, the 500 goes out as it is. Either way the
/// connection closes after it, as HAProxy's `http_reply_and_close`.
fn after_response(
    mut resp: Response<ProxyBody>,
    cx: &ConnCtx,
    active: &Active,
    fi: usize,
    bi: Option<usize>,
    vars: &TxnVars<'_>,
    log: Option<&super::logrec::LogHandle>,
) -> Response<ProxyBody> {
    let t = Txn::new(cx, active, fi, bi, vars, log);
    let fe = &active.snap.frontends[fi];
    let be = bi.map(|b| &active.snap.backends[b]);
    if fe.http_after_response.is_empty() && be.is_none_or(|b| b.http_after_response.is_empty()) {
        return resp;
    }
    let run = |resp: &mut Response<ProxyBody>| {
        if let Some(be) = be
            && !matches!(rules::response(&be.http_after_response, &be.acls, resp, &t), Outcome::Continue)
        {
            return false;
        }
        matches!(rules::response(&fe.http_after_response, &fe.acls, resp, &t), Outcome::Continue)
    };
    if run(&mut resp) {
        return resp;
    }
    let was = resp.status().as_u16();
    let internal = || {
        let mut r = page_keep(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(b) = bi {
            r.extensions_mut().insert(super::errpages::AtBackend(b));
        }
        let mut r = super::errpages::customize(r, &t);
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let mut r = internal();
    if !run(&mut r) {
        r = internal();
    }
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    active.rt.frontends[fi].recount_status(was, 500);
    r
}

#[allow(clippy::manual_async_fn)] // see the `async move` comment below
fn serve(
    req: Request<ReqBody>,
    verdict: Verdict,
    cx: &Arc<ConnCtx>,
    active: &Arc<Active>,
    fi: usize,
    vars: &TxnVars<'_>,
    log: Option<&super::logrec::LogHandle>,
) -> impl Future<Output = (Response<ProxyBody>, Option<usize>)> {
    // An `async move` block rather than an `async fn`: the arguments are held once, not also
    // as copies beside them, in every request's future (bench/PROFILE.md, session 11).
    async move {
        let mut picked = None;
        let resp = serve_picking(req, verdict, cx, active, fi, vars, &mut picked, log).await;
        (resp, picked)
    }
}

// The request's log record comes as an argument: carried in the request's extensions, it cost
// an allocation and a map insert per request.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // see the `async move` comment below
fn serve_picking(
    mut req: Request<ReqBody>,
    verdict: Verdict,
    cx: &Arc<ConnCtx>,
    active: &Arc<Active>,
    fi: usize,
    vars: &TxnVars<'_>,
    picked: &mut Option<usize>,
    log: Option<&super::logrec::LogHandle>,
) -> impl Future<Output = Response<ProxyBody>> {
    // An `async move` block rather than an `async fn`: the arguments are held once, not also
    // as copies beside them, in every request's future (bench/PROFILE.md, session 11).
    async move {
        let cx = cx.clone();
        let active = active.clone();
        let fe = &active.snap.frontends[fi];
        let fcnt = active.rt.frontends[fi].clone();
        fcnt.count_request();
        let framing = match verdict {
            Verdict::Ok => check_framing(&req),
            Verdict::Bad(why) => Err(why),
            Verdict::BadBody => Err("invalid chunked body"),
            // HAProxy 2.6 answers 400 here; RFC 9110's 414 and RFC 6585's 431 tell the client which
            // part was too large, and a client or monitor treats them as client errors all the same.
            Verdict::UriTooLong => return fail(&fcnt, &cx, &fe.name, ProxyError::UriTooLong),
            Verdict::TooLarge => return fail(&fcnt, &cx, &fe.name, ProxyError::HeadersTooLarge),
            Verdict::TimedOut | Verdict::Silent => return fail(&fcnt, &cx, &fe.name, ProxyError::RequestTimeout),
            Verdict::Closed | Verdict::Cut => return fail(&fcnt, &cx, &fe.name, ProxyError::ClosedEarly),
        };
        if let Err(why) = framing {
            return fail(&fcnt, &cx, &fe.name, ProxyError::BadRequest(why));
        }
        // As HAProxy: the frontend's `http_request` rules (deny, redirect, ...) come first and the
        // stats page after them, so a rule that guards the frontend guards its stats page too.
        let close_client = fe.conn_mode == ConnMode::Close;
        let mut t = Txn::new(&cx, &active, fi, None, vars, log);
        if !super::tcp_rules::http_request(&fe.tcp.content, &fe.tcp.acls, &req, &t) {
            return super::tcp_rules::silent(fail(&fcnt, &cx, &fe.name, ProxyError::Denied));
        }
        // `monitor-uri` is answered before any rule, as in HAProxy.
        if let Some(resp) = rules::monitor(fe, &req, &t) {
            return finish(&fcnt, resp, close_client);
        }
        // `option http-buffer-request`: the whole body first, so rules can read `req.body`.
        let buffered = if fe.buffer_request && http_body::Body::is_end_stream(req.body()) {
            Some(bytes::Bytes::new())
        } else if fe.buffer_request {
            let limit = active.snap.global.bufsize;
            match rules::buffer_body(req.body_mut(), limit, fe.timeouts.http_request).await {
                Ok(b) => Some(b),
                Err(why) if why.starts_with("request body larger") => {
                    return finish(&fcnt, page_keep(StatusCode::PAYLOAD_TOO_LARGE), true);
                }
                Err(why) => return fail(&fcnt, &cx, &fe.name, ProxyError::BadRequest(why)),
            }
        } else {
            None
        };
        t.body = buffered.clone();
        t.body_done = buffered.is_some();
        let bufsize = active.snap.global.bufsize;
        // Only a list with `wait-for-body` awaits (boxed), so the others add nothing to this future.
        let outcome = if rules::waits_for_body(&fe.http_request) {
            match with_waits((&fe.http_request, &fe.acls), &mut req, &mut t, bufsize).await {
                Ok(o) => o,
                Err(e) => return fail(&fcnt, &cx, &fe.name, e),
            }
        } else {
            rules::request(&fe.http_request, &fe.acls, &mut req, &t)
        };
        if let Outcome::Answer { mut resp, denied, tarpit } = outcome {
            mark_answer(&fcnt, &mut resp, denied);
            // A hit in the frontend has not reached a backend: the frontend's compression only.
            let pair = super::compress::Pair { fe: fe.compression.as_deref(), be: None };
            let mut resp = compress_hit(resp, &mut req, pair);
            if tarpit {
                hold_tarpit(&mut resp, fe.timeouts.tarpit).await;
            }
            return finish(&fcnt, resp, close_client);
        }
        if let Some(st) = &fe.stats
            && crate::stats::wants(&req, st)
        {
            let resp = Box::pin(stats_answer(req, st, &fe.acls, &cx, &active, fi, vars)).await;
            return finish(&fcnt, resp, false);
        }
        let chosen = rules::choose_backend(fe, &req, &t);
        let Some(bi) = chosen else {
            return fail(&fcnt, &cx, &fe.name, ProxyError::NoServer);
        };
        *picked = Some(bi);
        t.backend = Some(bi);
        // The backend's own rules run after the frontend's, as in HAProxy.
        let be = &active.snap.backends[bi];
        // As HAProxy: the request counts in the backend's sessions (`be_conn`) once assigned to it.
        let backend_session = active.rt.backends[bi].counters.open_session();
        if !super::tcp_rules::http_request(&be.tcp.content, &be.tcp.acls, &req, &t) {
            active.rt.backends[bi].counters.denied_req.fetch_add(1, Relaxed);
            return super::tcp_rules::silent(fail(&fcnt, &cx, &fe.name, ProxyError::Denied));
        }
        // Only a list with `wait-for-body` awaits (boxed), so the others add nothing to this future.
        let outcome = if rules::waits_for_body(&be.http_request) {
            match with_waits((&be.http_request, &be.acls), &mut req, &mut t, bufsize).await {
                Ok(o) => o,
                Err(e) => return fail(&fcnt, &cx, &fe.name, e),
            }
        } else {
            rules::request(&be.http_request, &be.acls, &mut req, &t)
        };
        if let Outcome::Answer { mut resp, denied, tarpit } = outcome {
            mark_answer(&fcnt, &mut resp, denied);
            let pair = super::compress::Pair { fe: fe.compression.as_deref(), be: be.compression.as_deref() };
            let mut resp = compress_hit(resp, &mut req, pair);
            // Its error pages are the backend's first, as HAProxy's once a backend is chosen.
            resp.extensions_mut().insert(super::errpages::AtBackend(bi));
            if tarpit {
                hold_tarpit(&mut resp, be.timeouts.tarpit).await;
            }
            return finish(&fcnt, resp, close_client);
        }
        if let Some(st) = &be.stats
            && crate::stats::wants(&req, st)
        {
            let resp = Box::pin(stats_answer(req, st, &be.acls, &cx, &active, fi, vars)).await;
            return finish(&fcnt, resp, false);
        }
        super::logrec::late_unique_id(Some(&mut req), &t);
        let cached = crate::cache::take(&mut req);
        let pair = super::compress::Pair { fe: fe.compression.as_deref(), be: be.compression.as_deref() };
        let offer = super::compress::request(&mut req, pair);
        let mut reached = httplog::Reached::default();
        // A whole body `wait-for-body` read goes out as `option http-buffer-request`'s does.
        let buffered = buffered.clone().or_else(|| t.body.clone().filter(|_| t.body_whole));
        match forward(req, buffered, &active, (fi, bi), &cx, &t, backend_session, &mut reached).await {
            Ok(resp) if resp.extensions().get::<ServerRedirect>().is_some() => finish(&fcnt, resp, true),
            Ok(mut resp) => {
                crate::cache::keep(&mut resp, cached);
                // The frontend's compression comes before the backend's cache: what it compresses
                // the backend's `cache-store` does not keep (HAProxy's filter order).
                let fe_compresses = fe.compression.is_some()
                    && offer.as_ref().is_some_and(|o| {
                        super::compress::decide(o, resp.status(), resp.version(), resp.headers()).is_ok()
                    });
                // Response rules: the backend's first, then the frontend's; an answer replaces the
                // server's response.
                let lists = [(&be.http_response, &be.acls), (&fe.http_response, &fe.acls)];
                for (i, (list, acls)) in lists.into_iter().enumerate() {
                    let held = (i == 0 && fe_compresses).then(|| crate::cache::allow_store(&mut resp, false)).flatten();
                    // Only a list with `wait-for-body` awaits (boxed), as on the request side.
                    let outcome = if rules::waits_for_body(list) {
                        res_with_waits((list, acls), &mut resp, &t, (bufsize, bi)).await
                    } else {
                        rules::response(list, acls, &mut resp, &t)
                    };
                    if let Outcome::Answer { resp: own, denied, .. } = outcome {
                        if denied {
                            let brt = &active.rt.backends[bi];
                            let srv = reached.server.and_then(|si| brt.servers.get(si)).map(|s| &*s.counters);
                            for c in [Some(&*fcnt), Some(&*brt.counters), srv].into_iter().flatten() {
                                c.denied_resp.fetch_add(1, Relaxed);
                            }
                        }
                        resp = own;
                        break;
                    }
                    if let Some(was) = held {
                        crate::cache::allow_store(&mut resp, was);
                    }
                }
                let resp = super::compress::response(resp, offer.as_ref());
                let close = close_client || active.snap.backends[bi].conn_mode == ConnMode::Close;
                finish(&fcnt, resp, close)
            }
            Err(e) => {
                let be = &active.snap.backends[bi];
                tracing::info!(client = %cx.peer, frontend = %fe.name, backend = %be.name, status = e.status().as_u16(), "{}", e.reason());
                if let ProxyError::BadRequest(_) = e {
                    fcnt.errors_req.fetch_add(1, Relaxed);
                }
                let mut resp = error_page(e);
                resp.extensions_mut().insert(super::errpages::AtBackend(bi));
                if reached.server.is_some() || reached.tw >= 0 {
                    resp.extensions_mut().insert(reached);
                }
                finish(&fcnt, resp, false)
            }
        }
    }
}

/// A cache hit, compressed as the proxies the request reached would compress a server's
/// response (`pair`); other answers pass as they are.
fn compress_hit<B>(
    resp: Response<ProxyBody>,
    req: &mut Request<B>,
    pair: super::compress::Pair,
) -> Response<ProxyBody> {
    if resp.extensions().get::<crate::cache::Hit>().is_none() {
        return resp;
    }
    let offer = super::compress::request(req, pair);
    super::compress::response(resp, offer.as_ref())
}

/// Runs a request rule list with `wait-for-body` rules: where one holds, reads the body into
/// `t.body` (what later rules see as `req.body`) and goes on. Its time passing first is
/// HAProxy's 408. Boxed, and built outside the caller's future, which stays as small as it was.
fn with_waits<'a, 'f>(
    (list, acls): (&'f [crate::config::snapshot::HttpRule], &'f [crate::routing::Acl]),
    req: &'f mut Request<ReqBody>,
    t: &'f mut Txn<'a>,
    bufsize: usize,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Outcome, ProxyError>> + Send + 'f>>
where
    'a: 'f,
{
    Box::pin(wait_then_rules(list, acls, req, t, bufsize))
}

async fn wait_then_rules(
    list: &[crate::config::snapshot::HttpRule],
    acls: &[crate::routing::Acl],
    req: &mut Request<ReqBody>,
    t: &mut Txn<'_>,
    bufsize: usize,
) -> Result<Outcome, ProxyError> {
    let mut outcome = rules::request(list, acls, req, t);
    // As HAProxy's analyse_exp: the first wait of the list sets the deadline, later waits of
    // the same list keep it.
    let mut deadline = None;
    loop {
        match outcome {
            Outcome::WaitBody { next, time, at_least } => {
                let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + time);
                let w = match rules::wait_body(req.body_mut(), bufsize, until, at_least).await {
                    Ok(w) => w,
                    Err(None) => return Err(ProxyError::RequestTimeout),
                    Err(Some(why)) => return Err(ProxyError::BadRequest(why)),
                };
                t.body_done = w.complete || w.bytes.len() >= bufsize;
                t.body_whole = w.complete;
                t.body = Some(w.bytes);
                outcome = rules::request_from(list, next, acls, req, t);
            }
            Outcome::Resolve { next, rule, name } => {
                use crate::config::snapshot::HttpAction;
                if let HttpAction::DoResolve { var, resolvers, family, .. } = &list[rule].action
                    && let Some(r) = t.active.snap.resolvers.iter().find(|r| r.name == *resolvers)
                    && let Some(ip) = crate::dns::action::resolve(&t.cx.proxy.resolved, r, &name, *family).await
                {
                    let v = match ip {
                        std::net::IpAddr::V4(a) => crate::sample::Value::Ipv4(a),
                        std::net::IpAddr::V6(a) => crate::sample::Value::Ipv6(a),
                    };
                    if let Some(var) = var {
                        t.vars.set(var, v);
                    }
                }
                outcome = rules::request_from(list, next, acls, req, t);
            }
            other => return Ok(other),
        }
    }
}

/// [`with_waits`] for an `http_response` list: where a `wait-for-body` holds, the response
/// body is read (see [`rules::wait_res_body`]); its time passing first is HAProxy's 504.
fn res_with_waits<'f>(
    (list, acls): (&'f [crate::config::snapshot::HttpRule], &'f [crate::routing::Acl]),
    resp: &'f mut Response<ProxyBody>,
    t: &'f Txn<'_>,
    (bufsize, bi): (usize, usize),
) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'f>> {
    Box::pin(async move {
        let mut outcome = rules::response(list, acls, resp, t);
        let mut deadline = None;
        loop {
            match outcome {
                Outcome::WaitBody { next, time, at_least } => {
                    let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + time);
                    if rules::wait_res_body(resp, bufsize, until, at_least).await.is_err() {
                        let mut r = error_page(ProxyError::ServerTimeout);
                        r.extensions_mut().insert(super::errpages::AtBackend(bi));
                        return Outcome::Answer { resp: r, denied: false, tarpit: false };
                    }
                    outcome = rules::response_from(list, next, acls, resp, t);
                }
                other => return other,
            }
        }
    })
}

/// A request rule's own answer (`deny`, `return`, `redirect`, `tarpit`): counted when it
/// denies, and marked for the stick counters and the log.
fn mark_answer(fcnt: &Counters, resp: &mut Response<ProxyBody>, denied: bool) {
    if denied {
        fcnt.denied_req.fetch_add(1, Relaxed);
        resp.extensions_mut().insert(super::track::Denied);
    } else {
        resp.extensions_mut().insert(super::track::Answered);
    }
}

/// `tarpit`: the answer waits `timeout tarpit`, which the log shows in `%Tw`.
async fn hold_tarpit(resp: &mut Response<ProxyBody>, hold: std::time::Duration) {
    let held = tokio::time::Instant::now();
    tokio::time::sleep(hold).await;
    resp.extensions_mut().insert(httplog::Tarpitted(held.elapsed().as_millis() as i64));
}

/// `balance url_param`'s wait for a POST's body (up to `limit` bytes, its end, or `wait`): what
/// was read, and the whole body in `buffered` when it all came (the server gets it from there).
async fn post_body(
    body: &mut ReqBody,
    buffered: &mut Option<bytes::Bytes>,
    limit: usize,
    wait: std::time::Duration,
) -> Result<Option<bytes::Bytes>, ProxyError> {
    if let Some(b) = buffered {
        return Ok(Some(b.clone()));
    }
    if body.is_end_stream() {
        return Ok(None);
    }
    match rules::wait_body(body, limit, tokio::time::Instant::now() + wait, None).await {
        Err(None) => Err(ProxyError::RequestTimeout),
        Err(Some(why)) => Err(ProxyError::BadRequest(why)),
        Ok(w) => {
            if w.complete {
                *buffered = Some(w.bytes.clone());
            }
            Ok(Some(w.bytes))
        }
    }
}

/// An absolute-form target as HAProxy 2.6 keeps it in its start line (`http_scheme_based_normalize`):
/// `scheme://authority/path?query`, the scheme's default port dropped.
fn haproxy_target(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or_default();
    let mut auth = uri.authority().map_or("", |a| a.as_str());
    if let Some((host, port)) = auth.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && matches!((scheme.to_ascii_lowercase().as_str(), port), ("http", "80") | ("https", "443"))
    {
        auth = host;
    }
    let pq = uri.path_and_query().map_or("", |p| p.as_str());
    format!("{scheme}://{auth}{pq}")
}

/// Marks the 302 of a server's `redir`: a forged response, which response rules and
/// compression leave alone, as in HAProxy.
#[derive(Clone, Copy)]
pub(super) struct ServerRedirect;

/// `redir PREFIX`: HAProxy's 302 to the prefix followed by the request's path and query; the
/// prefix `/` alone keeps the path as it is (HAProxy's "don't change URL").
fn server_redirect(prefix: &HeaderValue, uri: &http::Uri) -> Result<Response<ProxyBody>, ProxyError> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut loc = Vec::with_capacity(prefix.len() + pq.len());
    if prefix.as_bytes() != b"/" {
        loc.extend_from_slice(prefix.as_bytes());
    }
    loc.extend_from_slice(pq.as_bytes());
    let loc = HeaderValue::from_bytes(&loc).map_err(|_| ProxyError::BadRequest("invalid request URI"))?;
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::FOUND;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert(header::LOCATION, loc);
    r.extensions_mut().insert(ServerRedirect);
    Ok(r)
}

/// The stats page's answer to a request for it: `st` is the frontend's page or the chosen
/// backend's, its `admin` condition evaluated over that section's `acls`.
async fn stats_answer(
    req: Request<ReqBody>,
    st: &crate::config::snapshot::StatsSettings,
    acls: &[crate::routing::Acl],
    cx: &Arc<ConnCtx>,
    active: &Arc<Active>,
    fi: usize,
    vars: &TxnVars<'_>,
) -> Response<ProxyBody> {
    if let Some(r) = crate::stats::challenge(&req, st) {
        return r.map(full);
    }
    let admin = st.admin.as_ref().is_some_and(|c| {
        let ctx = StreamCtx::request(cx, active, fi, &req, Some(vars));
        c.eval(acls, &ctx, &**cx.proxy.maps.store.load())
    });
    if req.method() == http::Method::POST && admin {
        return stats_admin(req, &st.uri, active, &cx.proxy).await;
    }
    crate::stats::serve(&req, st, active, cx.proxy.started.elapsed(), admin).map(full)
}

/// The stats page's admin form: apply it, then send the browser back to the page.
async fn stats_admin(req: Request<ReqBody>, uri: &str, active: &Active, proxy: &super::Proxy) -> Response<ProxyBody> {
    const LIMIT: usize = 64 * 1024;
    let body = http_body_util::Limited::new(req.into_body(), LIMIT).collect().await;
    let outcome = match body {
        Ok(b) => {
            String::from_utf8(b.to_bytes().to_vec()).map_err(|_| "form is not UTF-8".to_string()).and_then(|form| {
                crate::stats::apply_admin(active, &form, &mut |bi, si, old| proxy.admin_changed(active, (bi, si), old))
            })
        }
        Err(e) => Err(format!("cannot read the form: {e}")),
    };
    match outcome {
        Ok(done) => {
            tracing::info!("stats admin: {done}");
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(uri) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(e) => {
            let mut r = Response::new(full(format!("{e}\n")));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
    }
}

/// Sends the request to a server of backend `bi`, retrying connect failures (`retries`) and
/// moving to another server on the last retry (`redispatch`).
/// `reached`: how far a request that fails went, for its log line.
#[allow(clippy::manual_async_fn)] // see the `async move` comment below
#[allow(clippy::too_many_arguments)]
fn forward(
    mut req: Request<ReqBody>,
    mut buffered: Option<bytes::Bytes>,
    active: &Arc<Active>,
    (fi, bi): (usize, usize),
    cx: &Arc<ConnCtx>,
    t: &Txn<'_>,
    _backend_session: SessionGuard,
    reached: &mut httplog::Reached,
) -> impl Future<Output = Result<Response<ProxyBody>, ProxyError>> {
    // An `async move` block rather than an `async fn`: the arguments are held once, not also
    // as copies beside them, in every request's future (bench/PROFILE.md, session 11).
    async move {
        let fe = &active.snap.frontends[fi];
        let be = &active.snap.backends[bi];
        let brt = &active.rt.backends[bi];
        let conn_mode = fe.conn_mode.max(be.conn_mode);
        // A protocol upgrade (WebSocket) is offered to the server; the tunnel opens only if it answers
        // 101. A CONNECT is forwarded as HAProxy 2.6 does: the tunnel opens if the server answers 2xx.
        let connect = req.method() == http::Method::CONNECT;
        let upgrade = if connect { None } else { upgrade_protocol(&req) };
        let client_upgrade = (connect || upgrade.is_some()).then(|| super::park::ClientSide::of(&mut req));
        let (mut parts, mut body) = req.into_parts();
        // The exchange's in-progress guard: a tunnel takes it (see `idle::Handover`).
        let exchange = parts.extensions.remove::<super::idle::Handover>();
        // Persistence (a): the server a cookie or stick entry designates, if it can take the request;
        // (b): hide the persistence cookie from the server (indirect, prefix).
        let stuck = super::stick_rules::request(t, bi, &parts);
        let hash_key = super::stick_rules::balance_key(t, bi, &parts);
        // `balance url_param`: a POST the persistence did not place waits for its body (up to
        // the buffer size, `timeout http-request`), where the parameter is looked for when the
        // query lacks it, as HAProxy's AN_REQ_HTTP_BODY does.
        let url_param_post = matches!(be.algorithm, crate::balance::Algorithm::UrlParam { .. })
            && parts.method == http::Method::POST
            && stuck.server.is_none();
        // What `balance` reads beyond the request's head, boxed: few requests need it, and every
        // request's future holds the slot.
        let mut lb_extra: Option<Box<(Option<String>, Option<bytes::Bytes>)>> = None;
        if url_param_post {
            let wait = if be.timeouts.http_request.is_zero() { fe.timeouts.client } else { be.timeouts.http_request };
            let read = Box::pin(post_body(&mut body, &mut buffered, active.snap.global.bufsize, wait)).await?;
            lb_extra.get_or_insert_default().1 = read;
        }
        // The target as HAProxy's start line holds it, for `balance uri` (default port dropped).
        if parts.uri.scheme().is_some() {
            lb_extra.get_or_insert_default().0 = Some(haproxy_target(&parts.uri));
        }
        be.persist.strip_request(&mut parts.headers);
        // HTTP/2 carries the host in :authority; an HTTP/1.1 server needs it as Host.
        if parts.version == Version::HTTP_2
            && let Some(auth) = parts.uri.authority()
            && let Ok(v) = HeaderValue::from_str(auth.as_str())
        {
            parts.headers.insert(header::HOST, v);
        }
        // `te: trailers` may cross to an HTTP/2 server (gRPC needs it); see `upstream::shape`.
        let te_trailers = super::upstream::wants_trailers(&parts.headers);
        // `Trailer` is forwarded, as HAProxy does: hyper's HTTP/1 client sends the trailers it names.
        strip_hop_by_hop(&mut parts.headers, true);
        if let Some(t) = body.read_trailers() {
            super::trailers::announce(&mut parts.headers, t);
        }
        if fe.forwardfor.is_some() || be.forwardfor.is_some() {
            if let Some(name) =
                forwarded_for(fe.forwardfor.as_ref(), be.forwardfor.as_ref(), cx.src().ip(), &parts.headers)
                && let Ok(v) = HeaderValue::from_str(&cx.src().ip().to_string())
            {
                parts.headers.append(name, v);
            }
            let proto = if cx.tls { "https" } else { "http" };
            parts.headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
        }
        if let Some(proto) = &upgrade {
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto.clone());
        } else if conn_mode != ConnMode::KeepAlive && !connect {
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if parts.uri.scheme().is_some() {
            let pq = parts.uri.path_and_query().cloned();
            let mut p = http::uri::Parts::default();
            p.path_and_query = pq;
            if let Ok(u) = http::Uri::from_parts(p) {
                parts.uri = u;
            }
        }
        // `option abortonclose`; an HTTP/2 stream already ends with its connection.
        let abort = super::abort::ClientClose::watch(cx.fd.raw(), be.abortonclose && parts.version != Version::HTTP_2);
        parts.version = Version::HTTP_11;
        let client_failed = Arc::new(AtomicBool::new(false));
        let client_reset = Arc::new(AtomicBool::new(false));
        // A request the server may see twice without harm: sent again when a reused connection breaks.
        // An empty buffered body is no body; one that trailers ended is sent from `body`, which
        // holds it again with them (`ReqBody::put_back`).
        let buffered = buffered.filter(|b| !b.is_empty() && body.read_trailers().is_none());
        let replayable = body.is_end_stream() && buffered.is_none() && upgrade.is_none() && idempotent(&parts.method);
        // `retry-on` beyond connection failures: a request without a body can be sent again as is.
        let l7_replayable = be.retry_on.layer7()
            && body.is_end_stream()
            && buffered.is_none()
            && upgrade.is_none()
            && !connect
            && !t.vars.no_l7_retry.load(Relaxed);
        let mut progress = None;
        let body: ProxyBody = if let Some(b) = buffered {
            // Read whole by `option http-buffer-request`; the client's body is at its end.
            brt.counters.bytes_in.fetch_add(b.len() as u64, Relaxed);
            if let Some(t) = parts.extensions.get::<super::htx_bytes::Tally>() {
                t.add(b.len() as u64);
                t.end();
            }
            full(b)
        } else if body.is_end_stream() {
            empty()
        } else {
            let p = Arc::new(Progress::new());
            progress = Some(p.clone());
            let body = super::htx_bytes::Counted::new(body, parts.extensions.get().cloned());
            Metered::new(body, fe.timeouts.client, vec![brt.counters.clone()], true)
                .flag_failure(client_failed.clone())
                .flag_reset(client_reset.clone())
                .progress(p)
                .min_rate(fe.body_min_rate, fe.timeouts.client)
                .boxed_unsync()
        };
        let mut req = Request::from_parts(parts, body);

        // The server slot held across retries: a retry stays on the same server unless it is the
        // last one and `redispatch` is set (or the server went down meanwhile).
        let mut slot: Option<(usize, SessionGuard)> = None;
        let mut attempt = 0u32;
        // `http_reuse`: which idle connections this request may take.
        let reuse = be.reuse.http_reuse;
        let want = reuse.want(cx.requests.load(Relaxed) <= 1);
        // Set after a reused connection broke: the next attempt opens a new one.
        let mut fresh = false;
        // Timings feed only the httplog line; without it the clock is not read.
        let clock = || (fe.log == LogMode::Http).then(tokio::time::Instant::now);
        let t0 = clock();
        let ms = |a: Option<tokio::time::Instant>, b: Option<tokio::time::Instant>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as i64,
            _ => -1,
        };
        let mut redispatched = false;
        // When the first server slot came: `%Tw` ends there, as HAProxy's (a retry's pause is
        // no queue wait).
        let mut first_slot = None;
        let mut queued = queue::Queued::default();
        loop {
            let (si, session) = {
                let key = balance::Request {
                    src: Some(cx.src().ip()),
                    path_and_query: req.uri().path_and_query().map(|p| p.as_str()),
                    target: lb_extra.as_ref().and_then(|x| x.0.as_deref()),
                    post_body: lb_extra.as_ref().and_then(|x| x.1.as_deref()),
                    headers: Some(req.headers()),
                    key: hash_key.as_deref(),
                };
                let waited = abort.unless_closed(queue::next_slot(
                    be,
                    brt,
                    &key,
                    slot.take(),
                    (attempt, &mut queued),
                    stuck.prefer(),
                ));
                waited.await.ok_or(ProxyError::ClientAborted { connecting: false })?.map_err(|e| match e {
                    queue::NoSlot::NoServer => ProxyError::NoServer,
                    queue::NoSlot::QueueFull(si) => {
                        // Logged with the server it would have waited for (no `%Tw`), as HAProxy.
                        *reached = httplog::Reached { server: Some(si), queued, ..Default::default() };
                        ProxyError::QueueFull
                    }
                    queue::NoSlot::QueueTimeout => {
                        // HAProxy's `%Tw` counts the time in the queue, with no server.
                        *reached = httplog::Reached { tw: ms(t0, clock()), queued, ..Default::default() };
                        ProxyError::QueueTimeout
                    }
                })?
            };
            let srt = &brt.servers[si];
            cx.sess.routed(active, bi, Some(si));
            if let Some(prefix) = &be.servers[si].redir
                && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            {
                srt.counters.requests.fetch_add(1, Relaxed);
                let mut resp = server_redirect(prefix, req.uri())?;
                // Logged with the server that redirected, no connect and no response (`LC`), as
                // HAProxy logs it.
                resp.extensions_mut().insert(httplog::Picked {
                    backend: bi,
                    server: si,
                    tw: ms(t0, clock()),
                    tc: -1,
                    tr: -1,
                    retries: attempt,
                    redispatched,
                    src: None,
                    queued,
                });
                return Ok(resp);
            }
            let pool = &active.pools[bi][si];
            let sni_pool = super::sni::pool_for(pool, be.servers[si].tls.as_ref(), cx, active, fi, &req);
            let pool = sni_pool.as_ref().unwrap_or(pool);
            // A server at 0.0.0.0 (`server clear 0.0.0.0:0`) goes where the client went, after
            // `set-dst`, as in HAProxy (a server awaiting its address is in maintenance, never here).
            let dst_pool = if be.servers[si].unresolved { None } else { pool.for_dst(cx.dst()) };
            let pool = dst_pool.as_ref().unwrap_or(pool);
            let t_slot = clock();
            let first = *first_slot.get_or_insert(t_slot);
            *reached = httplog::Reached {
                server: Some(si),
                tw: ms(t0, first),
                tc: -1,
                retries: attempt,
                redispatched,
                src: None,
                queued,
            };
            // `send-proxy`: a new connection carrying this client's PROXY header (never pooled).
            let uid = req.extensions().get::<super::proxy_proto::UniqueId>().map(|u| u.0.as_bytes());
            let proxy_line = be.servers[si].send_proxy.map(|how| cx.client.header_for(how, cx.src(), cx.dst(), uid));
            let connecting = async {
                if proxy_line.is_some() || std::mem::take(&mut fresh) {
                    pool.connect_with(be.timeouts.connect, proxy_line.as_deref()).await.map(|s| (s, false))
                } else if reuse == super::upstream::HttpReuse::Never {
                    match cx.private.take(pool).await {
                        Some(s) => Ok((s, true)),
                        None => pool.connect(be.timeouts.connect).await.map(|s| (s, false)),
                    }
                } else {
                    pool.get(be.timeouts.connect, want).await
                }
            };
            let got = abort.unless_closed(connecting).await.ok_or(ProxyError::ClientAborted { connecting: true })?;
            let (mut sender, reused) = match got {
                Ok(s) => {
                    srt.passive.record(Event::L4Ok);
                    s
                }
                Err(e) => {
                    reached.src = e.local;
                    srt.counters.errors_conn.fetch_add(1, Relaxed);
                    srt.passive.record(Event::L4Err);
                    tracing::warn!(backend = %be.name, server = %be.servers[si].name, "connect failed: {e}");
                    if !be.retry_on.retry(Failure::Conn, true, attempt, be.retries) {
                        return Err(ProxyError::ConnectFailed);
                    }
                    attempt += 1;
                    srt.counters.retries.fetch_add(1, Relaxed);
                    brt.counters.retries.fetch_add(1, Relaxed);
                    let redispatching = be.redispatch && attempt == be.retries;
                    redispatched |= redispatching;
                    if let Some(pause) = retry_delay(be.timeouts.connect, !redispatching) {
                        tokio::time::sleep(pause).await;
                    }
                    slot = Some((si, session));
                    continue;
                }
            };
            let t_conn = clock();
            (reached.tc, reached.src) = (if reused { 0 } else { ms(t_slot, t_conn) }, sender.local_addr());
            if sender.is_h2() && (connect || upgrade.is_some()) {
                tracing::warn!(backend = %be.name, server = %be.servers[si].name, "CONNECT and protocol upgrades cannot be sent to an HTTP/2 server");
                return Err(ProxyError::ServerFailed);
            }
            super::upstream::shape(&mut req, sender.is_h2(), be.servers[si].tls.is_some(), te_trailers);
            // What is needed to send the request again if the reused connection turns out dead
            // (the lean path gives the request itself back then: no copy), or for `retry-on`.
            let replay_dead = reused && replayable;
            let kept = replay_dead && !l7_replayable && sender.keeps_sent(&req);
            let replay = ((replay_dead && !kept) || l7_replayable).then(|| {
                let mut r = Request::new(empty());
                *r.method_mut() = req.method().clone();
                *r.uri_mut() = req.uri().clone();
                *r.version_mut() = req.version();
                *r.headers_mut() = req.headers().clone();
                r
            });
            // The console's response-time percentiles (crate::console::traffic), only kept with one.
            let t_sent = active.snap.console.is_some().then(std::time::Instant::now);
            let server_timeout = t.vars.timeouts.get(super::vars::TimeoutKind::Server, be.timeouts.server);
            // Subscribed before the request leaves (the send starts as its future is made): a
            // mark-down from now on ends the wait.
            let marked_down = be.servers[si].shutdown_on_down.then(|| srt.session_end());
            // A client gone halfway through the body it streams resets this connection.
            sender.carry(progress.is_some().then(|| client_reset.clone()));
            let sending = server_wait(sender.try_send_request(req), server_timeout, progress.as_deref());
            let sent = if let Some(marked_down) = marked_down {
                tokio::select! {
                    sent = sending => sent,
                    () = marked_down => {
                        srt.counters.errors_resp.fetch_add(1, Relaxed);
                        return Err(ProxyError::ServerMarkedDown);
                    }
                }
            } else {
                sending.await
            };
            // `observe layer7`: what this attempt says of the server's health.
            if srt.passive.observing() {
                let ev = match &sent {
                    Err(_) => Some(Event::ReadTimeout),
                    Ok(Ok(r)) => Some(Event::http_status(r.status().as_u16())),
                    // The client's fault, or a request a closed idle connection never sent.
                    Ok(Err(e)) if client_failed.load(Relaxed) || (reused && e.message().is_some()) => None,
                    Ok(Err(e)) if e.broke_before_response() => Some(Event::BrokenPipe),
                    Ok(Err(e)) if e.is_parse() => Some(Event::HttpHeaders),
                    Ok(Err(_)) => Some(Event::ReadError),
                };
                if let Some(ev) = ev {
                    srt.passive.record(ev);
                }
            }
            // `retry-on`: the failure of this attempt, if it is to be tried again.
            let l7_retry = |f: Failure, attempt: u32| l7_replayable && be.retry_on.retry(f, true, attempt, be.retries);
            let failure = match &sent {
                Err(_) => Some(Failure::Timeout),
                Ok(Ok(r)) => Some(Failure::Status(r.status().as_u16())),
                Ok(Err(e)) if client_failed.load(Relaxed) || (reused && e.message().is_some()) => None,
                Ok(Err(e)) if e.broke_before_response() => Some(Failure::Empty),
                Ok(Err(e)) if e.is_parse() => Some(Failure::Junk),
                Ok(Err(_)) => None,
            };
            if let Some(f) = failure.filter(|&f| l7_retry(f, attempt))
                && let Some(again) = replay
            {
                tracing::debug!(backend = %be.name, server = %be.servers[si].name, "retry-on: {f:?}; retrying");
                if !matches!(f, Failure::Status(_)) {
                    srt.counters.errors_resp.fetch_add(1, Relaxed);
                }
                req = again;
                attempt += 1;
                srt.counters.retries.fetch_add(1, Relaxed);
                brt.counters.retries.fetch_add(1, Relaxed);
                fresh = true;
                slot = Some((si, session));
                continue;
            }
            let mut resp = match sent {
                Err(_) => {
                    srt.counters.errors_resp.fetch_add(1, Relaxed);
                    return Err(ProxyError::ServerTimeout);
                }
                Ok(Ok(r)) => r,
                Ok(Err(mut e)) => {
                    if client_reset.load(Relaxed) {
                        return Err(ProxyError::ClientReset);
                    }
                    if client_failed.load(Relaxed) {
                        return Err(ProxyError::BadRequest("invalid request body"));
                    }
                    // A pooled connection the server closed meanwhile: the request was never sent,
                    // so it is safe to send it again on a fresh connection.
                    let back = e.take_message();
                    match back {
                        Some(back) if reused => {
                            req = back;
                            slot = Some((si, session));
                            continue;
                        }
                        // Sent on a reused connection the server had closed, and nothing came back:
                        // an idempotent request without a body goes again on a new connection, as
                        // HAProxy does (counted as a retry, with no pause: the server is not at fault).
                        None if (replay.is_some() || (kept && e.has_sent()))
                            && attempt < be.retries
                            && e.broke_before_response() =>
                        {
                            tracing::debug!(backend = %be.name, server = %be.servers[si].name, "reused connection closed by the server: {e}; retrying");
                            req = replay.or_else(|| e.take_sent()).unwrap_or_else(|| Request::new(empty()));
                            attempt += 1;
                            srt.counters.retries.fetch_add(1, Relaxed);
                            brt.counters.retries.fetch_add(1, Relaxed);
                            fresh = true;
                            slot = Some((si, session));
                            continue;
                        }
                        _ => {
                            srt.counters.errors_resp.fetch_add(1, Relaxed);
                            tracing::warn!(backend = %be.name, server = %be.servers[si].name, "server error: {e}");
                            return Err(ProxyError::ServerFailed);
                        }
                    }
                }
            };
            // The server counts what it sent; the backend counts what the client gets, at the end
            // (`handle`), as HAProxy.
            srt.counters.count_status(resp.status().as_u16());
            if let Some(t) = t_sent {
                let tr = t.elapsed();
                brt.counters.count_time(tr);
                active.rt.frontends[fi].count_time(tr);
            }
            srt.counters.requests.fetch_add(1, Relaxed);
            brt.counters.requests.fetch_add(1, Relaxed);
            let opens_tunnel =
                if connect { resp.status().is_success() } else { resp.status() == StatusCode::SWITCHING_PROTOCOLS };
            if opens_tunnel {
                let Some(client_upgrade) = client_upgrade else {
                    // A 101 nobody asked for would turn the connection into an unchecked tunnel.
                    srt.counters.errors_resp.fetch_add(1, Relaxed);
                    return Err(ProxyError::ServerFailed);
                };
                let client_upgrade = client_upgrade.claim();
                let server_upgrade = hyper::upgrade::on(&mut resp);
                let server_upgrade = async move { server_upgrade.await.map_err(|e| e.to_string()) };
                let counters = vec![brt.counters.clone(), srt.counters.clone()];
                let idle = t.vars.timeouts.get(super::vars::TimeoutKind::Tunnel, be.timeouts.tunnel);
                let fins = (fe.timeouts.client_fin, be.timeouts.server_fin);
                let marked_down = be.servers[si].shutdown_on_down.then(|| srt.session_end());
                let (peer, server) = (cx.peer, be.servers[si].name.clone());
                // The tunnel holds the client connection's slots and exchange, and runs on the
                // proxy's tracker: it counts against `maxconn` and a stop waits for it (as for a TCP
                // session, until the hard stop); a terminating reload cuts it.
                let hold = (cx.hold(), exchange.and_then(|h| h.take()));
                let proxy = cx.proxy.clone();
                let killed = super::sessions::killed_owned(cx.clone());
                let (born, local) = (active.generation, cx.local);
                cx.proxy.tracker.spawn(async move {
                let _hold = (session, _backend_session, hold);
                let tunnel = async {
                    match tokio::try_join!(client_upgrade, server_upgrade) {
                        Ok((c, s)) => {
                            if let Err(e) = super::tcp::tunnel(c, TokioIo::new(s), idle, fins, &counters).await
                            {
                                tracing::debug!("tunnel ended: {e}");
                            }
                        }
                        Err(e) => tracing::debug!("upgrade failed: {e}"),
                    }
                };
                let marked_down = async {
                    match marked_down {
                        Some(end) => end.await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tunnel => {}
                    () = marked_down => tracing::info!(client = %peer, %server, "tunnel closed: server marked down (on-marked-down shutdown-sessions)"),
                    () = killed => tracing::info!(client = %peer, %server, "tunnel killed (shutdown session)"),
                    cut = proxy.expiry(born, |a| !a.binds.contains_key(&local), true) => {
                        tracing::info!(client = %peer, %server, "tunnel closed by reload ({cut:?})");
                    }
                }
            });
                let mut out = Response::new(empty());
                *out.status_mut() = resp.status();
                let mut headers = resp.headers().clone();
                strip_hop_by_hop(&mut headers, false);
                // A 2xx to CONNECT has no body: the tunnel starts right after the head.
                headers.remove(header::CONTENT_LENGTH);
                *out.headers_mut() = headers;
                if let Some(proto) = upgrade {
                    out.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                    out.headers_mut().insert(header::UPGRADE, proto);
                }
                return Ok(out);
            }
            let (mut parts, body) = resp.into_parts();
            super::htx_bytes::mark_server(active, &mut parts);
            strip_hop_by_hop(&mut parts.headers, false);
            // Persistence (c): learn stick entries, rewrite the server's cookie, insert ours.
            super::stick_rules::response(t, bi, &stuck, si, &mut parts);
            let keep = conn_mode == ConnMode::KeepAlive && be.servers[si].send_proxy.is_none();
            let pool = pool.clone();
            let counters = vec![srt.counters.clone(), brt.counters.clone()];
            let owner = (reuse == super::upstream::HttpReuse::Never).then(|| cx.clone());
            let src = sender.local_addr();
            let body = Metered::new(
                body,
                t.vars.timeouts.get(super::vars::TimeoutKind::Server, be.timeouts.server),
                counters,
                false,
            )
            .on_end(move || match owner {
                Some(cx) if keep => cx.private.put(&pool, sender),
                _ if keep => pool.put(sender),
                _ => {}
            })
            .hold(vec![session, _backend_session]);
            let mut body = body.boxed_unsync();
            if be.servers[si].shutdown_on_down {
                body = super::shutdown::end_with(body, srt.session_end());
            }
            let mut resp = Response::from_parts(parts, body);
            // Only the httplog line reads these, and response rules the server (`srv_name`); the
            // extension map costs an allocation per response.
            if let (Some(t0), Some(t_slot), Some(t_conn)) = (t0, t_slot, t_conn) {
                let ms = |d: std::time::Duration| d.as_millis() as i64;
                resp.extensions_mut().insert(httplog::Picked {
                    backend: bi,
                    server: si,
                    tw: ms(first.unwrap_or(t_slot) - t0),
                    tc: if reused { 0 } else { ms(t_conn - t_slot) },
                    tr: ms(t_conn.elapsed()),
                    retries: attempt,
                    redispatched,
                    src,
                    queued,
                });
            } else if has_response_rules(fe, be) {
                resp.extensions_mut().insert(httplog::Picked {
                    backend: bi,
                    server: si,
                    tw: 0,
                    tc: 0,
                    tr: 0,
                    retries: attempt,
                    redispatched,
                    src,
                    queued,
                });
            }
            return Ok(resp);
        }
    }
}

/// Whether `http_response` / `http_after_response` rules run on this exchange's response.
fn has_response_rules(fe: &crate::config::snapshot::Frontend, be: &crate::config::snapshot::Backend) -> bool {
    !(fe.http_response.is_empty()
        && be.http_response.is_empty()
        && fe.http_after_response.is_empty()
        && be.http_after_response.is_empty())
}

/// Waits for the server's response head, for at most `timeout server` of inactivity: the clock
/// restarts whenever the request body moves, so a slow upload is not a server timeout.
fn server_wait<F: std::future::Future>(
    fut: F,
    idle: std::time::Duration,
    progress: Option<&Progress>,
) -> ServerWait<'_, F> {
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now() + idle);
    ServerWait { fut, sleep, idle, progress }
}

pin_project_lite::pin_project! {
    /// [`server_wait`]'s future, written out: an `async fn` would hold the awaited future twice
    /// (its argument and the pinned copy it polls), and this one is moved into every request's
    /// future (bench/PROFILE.md, session 11).
    struct ServerWait<'p, F> {
        #[pin]
        fut: F,
        #[pin]
        sleep: tokio::time::Sleep,
        idle: std::time::Duration,
        progress: Option<&'p Progress>,
    }
}

impl<F: std::future::Future> std::future::Future for ServerWait<'_, F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let mut this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        while this.sleep.as_mut().poll(cx).is_ready() {
            match this.progress.map(|p| p.last() + *this.idle) {
                Some(later) if later > tokio::time::Instant::now() => this.sleep.as_mut().reset(later),
                _ => return Poll::Ready(Err(())),
            }
        }
        Poll::Pending
    }
}

/// RFC 9110 §9.2.2: methods a server may receive twice with the effect of once.
fn idempotent(m: &http::Method) -> bool {
    use http::Method;
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE, Method::PUT, Method::DELETE].contains(m)
}

/// The pause before the next connect attempt: HAProxy waits min(`timeout connect`, 1 s) when it
/// tries the same server again (it would likely fail the same way at once), none when it moves on.
pub fn retry_delay(connect: std::time::Duration, same_server: bool) -> Option<std::time::Duration> {
    same_server.then(|| connect.min(std::time::Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_on_the_same_server_waits_the_connect_timeout_at_most_one_second() {
        use std::time::Duration;
        assert_eq!(retry_delay(Duration::from_secs(5), true), Some(Duration::from_secs(1)));
        assert_eq!(retry_delay(Duration::from_millis(200), true), Some(Duration::from_millis(200)));
        assert_eq!(retry_delay(Duration::from_secs(5), false), None, "a redispatch goes at once");
    }

    #[test]
    fn only_idempotent_methods_are_sent_twice() {
        for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            assert!(idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "LOCK"] {
            assert!(!idempotent(&m.parse().unwrap()), "{m}");
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_fields_and_the_ones_connection_names_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Trace"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
            ("content-type", "text/plain"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);
    }

    #[test]
    fn forwardfor_except_if_none_and_header_combine_as_in_haproxy() {
        let ff = |except: Option<&str>, header: Option<&str>, if_none: bool| Forwardfor {
            except: except.map(|n| crate::routing::Net::parse(n).unwrap()),
            header: header.map(|h| http::HeaderName::from_bytes(h.as_bytes()).unwrap()),
            if_none,
        };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let none = HeaderMap::new();
        let has = map(&[("x-forwarded-for", "192.0.2.9")]);
        let xff = Some(http::HeaderName::from_static("x-forwarded-for"));
        let plain = ff(None, None, false);
        assert_eq!(forwarded_for(Some(&plain), None, ip("10.0.0.1"), &has), xff, "always appended");
        // except: either side's network exempts the client (IPv4-mapped clients too).
        let lan = ff(Some("10.0.0.0/8"), None, false);
        assert_eq!(forwarded_for(Some(&lan), None, ip("10.1.2.3"), &none), None);
        assert_eq!(forwarded_for(Some(&lan), None, ip("::ffff:10.1.2.3"), &none), None);
        assert_eq!(forwarded_for(Some(&lan), None, ip("192.0.2.1"), &none), xff);
        assert_eq!(forwarded_for(Some(&plain), Some(&lan), ip("10.1.2.3"), &none), None);
        // if-none: only when no side adds it always.
        let once = ff(None, None, true);
        assert_eq!(forwarded_for(Some(&once), None, ip("192.0.2.1"), &has), None);
        assert_eq!(forwarded_for(Some(&once), None, ip("192.0.2.1"), &none), xff);
        assert_eq!(forwarded_for(Some(&once), Some(&once), ip("192.0.2.1"), &has), None);
        assert_eq!(forwarded_for(Some(&once), Some(&plain), ip("192.0.2.1"), &has), xff);
        // header: the backend's name wins; if-none looks for that name.
        let client = ff(None, Some("X-Client"), true);
        let want = Some(http::HeaderName::from_static("x-client"));
        assert_eq!(forwarded_for(Some(&plain), Some(&client), ip("192.0.2.1"), &has), want);
        assert_eq!(forwarded_for(Some(&client), Some(&plain), ip("192.0.2.1"), &has), xff);
        assert_eq!(forwarded_for(None, None, ip("192.0.2.1"), &none), None);
    }

    #[test]
    fn a_requests_trailer_field_is_kept_unless_connection_names_it() {
        let mut h = map(&[("trailer", "x-sum"), ("te", "trailers"), ("x-kept", "yes")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["trailer", "x-kept"]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"], "a response's goes");
        let mut h = map(&[("connection", "Trailer"), ("trailer", "x-sum"), ("x-kept", "yes")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn a_message_without_hop_by_hop_fields_is_left_alone() {
        let mut h = map(&[("host", "a"), ("x-trace", "1")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 2);
    }
}
