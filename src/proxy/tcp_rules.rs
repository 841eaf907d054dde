//! Drives `tcprules` on a live connection: `tcp-request connection` at accept, `session` after
//! the TLS handshake, and `content` over the client's first bytes, which are buffered until the
//! rules can decide or `inspect-delay` expires and then sent to the chosen server first.

use super::rules::Txn;
use super::sample_ctx::StreamCtx;
use super::{Active, ConnCtx};
use crate::maps::MapStore;
use crate::sample::{Value, VarRef, VarScope};
use crate::tcprules::{Effects, Env, Inspection, Rule, Verdict};
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Per-connection state the rule stages share: variables and, on a TLS bind, the handshake.
#[derive(Debug, Default)]
pub struct ConnState {
    vars: Mutex<Vec<(VarRef, Value)>>,
    /// The session's tracked stick counters (`tcp-request ... track-sc*`).
    pub stk: crate::stktable::track::Trackers,
    /// `tcp-request content capture`: (request capture slot, value already cut to its length).
    captures: Mutex<Vec<(usize, Vec<u8>)>>,
}

impl ConnState {
    fn capture(&self, slot: usize, value: &[u8]) {
        let mut c = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|(s, _)| *s != slot);
        c.push((slot, value.to_vec()));
    }

    /// The captures the TCP rules made, for the log record of the session or its requests.
    pub fn captures(&self) -> Vec<(usize, Vec<u8>)> {
        self.captures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn captured(&self, slot: usize) -> Option<Vec<u8>> {
        let c = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        c.iter().find(|(s, _)| *s == slot).map(|(_, v)| v.clone())
    }

    pub(super) fn var(&self, v: &VarRef) -> Option<Value> {
        let vars = self.vars.lock().unwrap_or_else(|p| p.into_inner());
        vars.iter().find(|(k, _)| k == v).map(|(_, val)| val.clone())
    }

    pub(super) fn set_var(&self, v: &VarRef, val: Option<Value>) {
        let mut vars = self.vars.lock().unwrap_or_else(|p| p.into_inner());
        vars.retain(|(k, _)| k != v);
        if let Some(val) = val {
            vars.push((v.clone(), val));
        }
    }
}

/// Where TCP rules run: the frontend and, once chosen, the backend.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub fi: usize,
    pub bi: Option<usize>,
}

/// The `tcp-request session` rules; a session they let through counts in what it tracks.
pub fn session_allowed(fi: usize, active: &Active, cx: &ConnCtx) -> bool {
    let fe = &active.snap.frontends[fi];
    let ok = allowed(&fe.tcp.session, &fe.tcp.acls, active, cx, At { fi, bi: None });
    if ok {
        super::track::session_start(active, &cx.rules.stk);
    }
    ok
}

/// What the rules' non-deciding actions do on this connection.
struct ConnEffects<'a> {
    active: &'a Active,
    cx: &'a ConnCtx,
}

impl Effects for ConnEffects<'_> {
    fn set_var(&self, var: &VarRef, value: Option<Value>) {
        // The connection's `sess` scope is also what its HTTP transactions read; `proc` is the
        // process's.
        let shared = match var.scope {
            VarScope::Sess => &self.cx.sess_vars,
            VarScope::Proc => &self.cx.proxy.proc_vars,
            _ => return self.cx.rules.set_var(var, value),
        };
        match &value {
            Some(v) => shared.set(&var.name, v.clone()),
            None => shared.unset(&var.name),
        }
        if var.scope == VarScope::Sess {
            self.cx.rules.set_var(var, value)
        }
    }
    fn stick(&self, a: &crate::stktable::track::StickAction, env: &Env<'_>) {
        let now = self.active.rt.tables.now();
        super::track::act(self.active, &self.cx.rules.stk, None, a, env.ctx, env.maps, &now)
    }
    fn capture(&self, slot: usize, value: &[u8]) {
        self.cx.rules.capture(slot, value)
    }
    fn set_addr(&self, part: crate::proxy::addrs::AddrPart, value: Value) {
        self.cx.set_addr(part, value);
    }
    fn silent_drop(&self) {
        let how = self.cx.fd.silent_drop(self.cx.local.is_ipv6());
        tracing::debug!(client = %self.cx.peer, "silent-drop ({how:?})");
    }
    fn sockopt(&self, o: crate::proxy::addrs::SockOpt) {
        if let Err(e) = self.cx.fd.apply(o, self.cx.local.is_ipv6()) {
            tracing::debug!(client = %self.cx.peer, "{o:?} not set: {e}");
        }
    }
}

/// The stream as TCP rules see it: the connection and its first bytes (the HTTP side's
/// sample context, without a request).
fn ctx<'a>(active: &'a Active, cx: &'a ConnCtx, at: At, buf: &'a [u8]) -> StreamCtx<'a> {
    StreamCtx { backend: at.bi, payload: Some(buf), ..StreamCtx::conn(cx, active, at.fi) }
}

/// The balancer's key of a mode tcp backend from the bytes held: `balance hash EXPR`'s value, or
/// `balance rdp-cookie`'s cookie (an empty one is none, as in HAProxy).
pub fn balance_key(active: &Active, cx: &ConnCtx, at: At, buf: &[u8]) -> Option<Vec<u8>> {
    use crate::balance::Algorithm;
    let be = &active.snap.backends[at.bi?];
    match &be.algorithm {
        Algorithm::Hash(_) => {
            let e = be.hash_expr.as_ref()?;
            let store = cx.proxy.maps.store.load();
            super::stick_rules::bin(e.eval(&ctx(active, cx, at, buf), &**store)?)
        }
        Algorithm::RdpCookie(name) => match crate::sample::rdp::cookie(buf, Some(name)) {
            crate::sample::rdp::RdpCookie::Found(v) if !v.is_empty() => Some(v.to_vec()),
            _ => None,
        },
        _ => None,
    }
}

/// A mode tcp backend's `force-persist`, `ignore-persist` and `use-server` over the bytes held
/// (their conditions are final there, as HAProxy evaluates them).
pub fn server_pre(active: &Active, cx: &ConnCtx, at: At, buf: &[u8]) -> crate::persist::rules::Pre {
    let Some(bi) = at.bi else { return Default::default() };
    let (be, brt) = (&active.snap.backends[bi], &active.rt.backends[bi]);
    let rules = &be.tcp.server_rules;
    if rules.is_empty() {
        return rdp_persist(be, brt, buf, Default::default());
    }
    let store = cx.proxy.maps.store.load();
    let c = ctx(active, cx, at, buf);
    let env = Env { ctx: &c, maps: &**store, final_: true };
    let holds = |cond: &crate::tcprules::Cond| cond.eval(&be.tcp.acls, &env) == crate::tcprules::Tri::Pass;
    let resolve = |f: &crate::sample::LogFormat| {
        let name = f.render(env.ctx, env.maps, &|_, _| None);
        be.servers.iter().position(|s| s.name.as_bytes() == name.as_slice())
    };
    // `option persist` lets `use-server` take a DOWN or maintenance server (HAProxy).
    let pre = rules.pre(&holds, &resolve, &|i| be.option_persist || brt.server_usable(i));
    rdp_persist(be, brt, buf, pre)
}

/// `persist rdp-cookie`: once no `use-server` rule assigned a server, the `msts` cookie's
/// address and port name one, taken while it is usable (HAProxy's order: before stick rules).
fn rdp_persist(
    be: &crate::config::snapshot::Backend,
    brt: &crate::state::BackendRt,
    buf: &[u8],
    mut pre: crate::persist::rules::Pre,
) -> crate::persist::rules::Pre {
    use crate::sample::rdp;
    let Some(name) = &be.rdp_persist else { return pre };
    if pre.server.is_some() {
        return pre;
    }
    let rdp::RdpCookie::Found(v) = rdp::cookie(buf, Some(name)) else { return pre };
    let Some(at) = rdp::msts_server(v) else { return pre };
    // The first usable server of that address (several may share one).
    pre.server =
        (0..be.servers.len()).find(|&i| be.servers[i].addr == std::net::SocketAddr::V4(at) && brt.server_usable(i));
    pre
}

/// Runs a rule set that cannot wait for data (`connection`, `session`, `tcp-response`): true
/// unless a `reject` matched.
pub fn allowed(rules: &[Rule], acls: &[crate::tcprules::Acl], active: &Active, cx: &ConnCtx, at: At) -> bool {
    if rules.is_empty() {
        return true;
    }
    let store = cx.proxy.maps.store.load();
    let c = ctx(active, cx, at, &[]);
    let env = Env { ctx: &c, maps: &**store, final_: true };
    crate::tcprules::run(rules, 0, acls, &env, &ConnEffects { active, cx }) == Verdict::Accept
}

/// Content inspection: reads the client's bytes after `buf` (those an earlier stage held)
/// until the content rules accept or reject, or `inspect-delay` (or a full buffer, or the
/// client's end of data) makes them final. Returns the bytes held, or `None` on a reject.
/// Without content rules nothing is read.
pub async fn inspect<R: AsyncRead + Unpin>(
    client: &mut R,
    rules: Inspection<'_>,
    active: &Active,
    cx: &ConnCtx,
    at: At,
    mut buf: Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    if rules.rules.is_empty() {
        return Ok(Some(buf));
    }
    let bufsize = active.snap.global.bufsize;
    let deadline = rules.delay.map(|d| Instant::now() + d);
    let mut from = 0;
    let mut eof = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let final_ = eof || buf.len() >= bufsize || deadline.is_none_or(|d| Instant::now() >= d);
        let verdict = {
            let store = cx.proxy.maps.store.load();
            let c = ctx(active, cx, at, &buf);
            let env = Env { ctx: &c, maps: &**store, final_ };
            crate::tcprules::run(rules.rules, from, rules.acls, &env, &ConnEffects { active, cx })
        };
        match verdict {
            Verdict::Accept => return Ok(Some(buf)),
            // `close` is refused in request rules at load; never let it through.
            Verdict::Reject | Verdict::Close => return Ok(None),
            // A final evaluation never misses; this only guards the loop.
            Verdict::Wait(_) if final_ => return Ok(Some(buf)),
            Verdict::Wait(i) => from = i,
            Verdict::Resolve(i) => {
                resolve(&rules.rules[i], active, cx, at, &buf).await;
                from = i + 1;
                continue;
            }
        }
        let Some(deadline) = deadline else { return Ok(Some(buf)) };
        let room = bufsize.saturating_sub(buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, client.read(&mut chunk[..room])).await {
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
}

/// A `do-resolve` content rule that matched: the name its sample gives (none: nothing to do,
/// as HAProxy) resolved, the address stored in its variable (none: the variable is left).
async fn resolve(rule: &Rule, active: &Active, cx: &ConnCtx, at: At, buf: &[u8]) {
    let crate::tcprules::Action::DoResolve { var, resolvers, family, expr } = &rule.action else { return };
    let name = {
        let store = cx.proxy.maps.store.load();
        let c = ctx(active, cx, at, buf);
        expr.eval_str(&c, &**store).and_then(|n| String::from_utf8(n).ok()).filter(|n| !n.is_empty())
    };
    let Some(name) = name else { return };
    let Some(r) = active.snap.resolvers.iter().find(|r| r.name == *resolvers) else { return };
    if let Some(ip) = crate::dns::action::resolve(&cx.proxy.resolved, r, &name, *family).await {
        let v = match ip {
            std::net::IpAddr::V4(a) => Value::Ipv4(a),
            std::net::IpAddr::V6(a) => Value::Ipv6(a),
        };
        if let Some(var) = var {
            crate::tcprules::Effects::set_var(&ConnEffects { active, cx }, var, Some(v));
        }
    }
}

/// What `tcp-response content` decided, and the server's bytes it held.
#[derive(Debug)]
pub struct Response {
    /// `Accept`, `Reject` or `Close` (a final pass never waits).
    pub verdict: Verdict,
    pub held: Vec<u8>,
    /// The server closed its side during the inspection.
    pub eof: bool,
}

/// The response rules without `tcp-response inspect-delay`: HAProxy runs them once the server
/// connection is up, before any byte has come, so they decide on nothing (`res.*` empty).
pub fn response_at_once(rules: Inspection<'_>, active: &Active, cx: &ConnCtx, at: At, si: usize) -> Verdict {
    if rules.rules.is_empty() {
        return Verdict::Accept;
    }
    let store = cx.proxy.maps.store.load();
    let c =
        StreamCtx { backend: at.bi, server: Some(si), res_payload: Some(&[]), ..StreamCtx::conn(cx, active, at.fi) };
    let env = Env { ctx: &c, maps: &**store, final_: true };
    match crate::tcprules::run(rules.rules, 0, rules.acls, &env, &ConnEffects { active, cx }) {
        Verdict::Wait(_) => Verdict::Accept,
        v => v,
    }
}

/// Response content inspection: reads the server's bytes until the response rules accept,
/// reject or close, or `tcp-response inspect-delay` (or a full buffer, or the server's end of
/// data) makes them final. Without a delay the rules decide at once, before any byte has
/// come, as in HAProxy. The caller relays the client's bytes meanwhile.
pub async fn inspect_response<R: AsyncRead + Unpin>(
    server: &mut R,
    rules: Inspection<'_>,
    active: &Active,
    cx: &ConnCtx,
    at: At,
    si: usize,
) -> std::io::Result<Response> {
    let mut out = Response { verdict: Verdict::Accept, held: Vec::new(), eof: false };
    if rules.rules.is_empty() {
        return Ok(out);
    }
    let bufsize = active.snap.global.bufsize;
    let deadline = rules.delay.map(|d| Instant::now() + d);
    let mut from = 0;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let final_ = out.eof || out.held.len() >= bufsize || deadline.is_none_or(|d| Instant::now() >= d);
        let verdict = {
            let store = cx.proxy.maps.store.load();
            let c = StreamCtx {
                backend: at.bi,
                server: Some(si),
                res_payload: Some(&out.held),
                ..StreamCtx::conn(cx, active, at.fi)
            };
            let env = Env { ctx: &c, maps: &**store, final_ };
            crate::tcprules::run(rules.rules, from, rules.acls, &env, &ConnEffects { active, cx })
        };
        match verdict {
            Verdict::Wait(i) if !final_ => from = i,
            // A final evaluation never misses; this only guards the loop.
            Verdict::Wait(_) => return Ok(out),
            v => {
                out.verdict = v;
                return Ok(out);
            }
        }
        let Some(deadline) = deadline else { return Ok(out) };
        let room = bufsize.saturating_sub(out.held.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, server.read(&mut chunk[..room])).await {
            Ok(Ok(0)) => out.eof = true,
            Ok(Ok(n)) => out.held.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
}

/// The backend a `mode tcp` frontend's `use_backend` rules pick over the inspected bytes, or its
/// default backend.
pub fn choose_backend(active: &Active, fi: usize, cx: &ConnCtx, buf: &[u8]) -> Option<usize> {
    let fe = &active.snap.frontends[fi];
    let store: arc_swap::Guard<std::sync::Arc<MapStore>> = cx.proxy.maps.store.load();
    let c = ctx(active, cx, At { fi, bi: None }, buf);
    let env = Env { ctx: &c, maps: &**store, final_: true };
    let by_name = |n: &str| active.snap.backend(n).map(|(i, _)| i);
    match crate::tcprules::switch(&fe.tcp.switching, &fe.tcp.acls, &env, &by_name) {
        Some(Some(b)) => Some(b),
        _ => fe.default_backend,
    }
}

/// What a backend's content rules do to an HTTP transaction: its variables, its stream's stick
/// counters and its log record's captures.
struct TxnEffects<'a, 't> {
    t: &'a Txn<'t>,
}

impl Effects for TxnEffects<'_, '_> {
    fn set_var(&self, var: &VarRef, value: Option<Value>) {
        match value {
            Some(v) => self.t.vars.set(var, v),
            None => self.t.vars.unset(var),
        }
    }
    fn stick(&self, a: &crate::stktable::track::StickAction, env: &Env<'_>) {
        let (t, now) = (self.t, self.t.active.rt.tables.now());
        super::track::act(t.active, &t.cx.rules.stk, Some(&t.vars.stk), a, env.ctx, env.maps, &now)
    }
    fn capture(&self, slot: usize, value: &[u8]) {
        if let Some(h) = self.t.log {
            h.capture(false, slot, value);
        }
    }
    fn set_addr(&self, part: crate::proxy::addrs::AddrPart, value: Value) {
        let cx = self.t.cx;
        if cx.set_addr(part, value)
            && let Some(h) = self.t.log
        {
            let mut rec = h.lock();
            (rec.client, rec.local) = (cx.src(), cx.dst());
        }
    }
    fn silent_drop(&self) {
        let how = self.t.cx.fd.silent_drop(self.t.cx.local.is_ipv6());
        tracing::debug!(client = %self.t.cx.peer, "silent-drop ({how:?})");
    }
    fn sockopt(&self, o: crate::proxy::addrs::SockOpt) {
        if let Err(e) = self.t.cx.fd.apply(o, self.t.cx.local.is_ipv6()) {
            tracing::debug!(client = %self.t.cx.peer, "{o:?} not set: {e}");
        }
    }
}

/// A section's `tcp-request content` rules on an HTTP request: as HAProxy's, they run for
/// each request, the frontend's first and a backend's once it is chosen (before its
/// `http-request` rules), over the parsed request (request bytes are never pending). False on
/// a reject, which HAProxy answers by closing the connection without a response.
pub fn http_request<B>(rules: &[Rule], acls: &[crate::tcprules::Acl], req: &http::Request<B>, t: &Txn<'_>) -> bool {
    if rules.is_empty() {
        return true;
    }
    let c = StreamCtx {
        backend: t.backend,
        req_body: t.req_body(),
        log: t.log,
        ..StreamCtx::request(t.cx, t.active, t.frontend, req, Some(t.vars))
    };
    let store = t.cx.proxy.maps.store.load();
    let env = Env { ctx: &c, maps: &**store, final_: true };
    crate::tcprules::run(rules, 0, acls, &env, &TxnEffects { t }) == Verdict::Accept
}

/// Marks an answer that is never sent: the connection (an HTTP/2 stream) is closed instead,
/// as HAProxy does on a `tcp-request content reject` of an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct Silent;

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected by tcp-request content")
    }
}

impl std::error::Error for Silent {}

/// `resp` (logged and counted as the denial it stands for) marked as never sent.
pub fn silent<B>(mut resp: http::Response<B>) -> http::Response<B> {
    resp.extensions_mut().insert(Silent);
    resp
}

/// The service's answer: the response, or the error that makes hyper close the connection
/// (reset the stream) without one.
pub fn answer<B>(resp: http::Response<B>) -> Result<http::Response<B>, Silent> {
    match resp.extensions().get::<Silent>() {
        Some(_) => Err(Silent),
        None => Ok(resp),
    }
}
