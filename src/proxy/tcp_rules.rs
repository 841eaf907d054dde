//! Drives `tcprules` on a live connection: `tcp-request connection` at accept, `session` after
//! the TLS handshake, and `content` over the client's first bytes, which are buffered until the
//! rules can decide or `inspect-delay` expires and then sent to the chosen server first.

use super::{Active, ConnCtx};
use crate::maps::MapStore;
use crate::sample::{SampleContext, Value, VarRef};
use crate::tcprules::{Effects, Env, FrontRules, Rule, Verdict};
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
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

    fn captured(&self, slot: usize) -> Option<Vec<u8>> {
        let c = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        c.iter().find(|(s, _)| *s == slot).map(|(_, v)| v.clone())
    }

    fn set_var(&self, v: &VarRef, val: Option<Value>) {
        let mut vars = self.vars.lock().unwrap_or_else(|p| p.into_inner());
        vars.retain(|(k, _)| k != v);
        if let Some(val) = val {
            vars.push((v.clone(), val));
        }
    }
}

/// A TCP stream as sample fetches see it.
pub struct TcpCtx<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub tls_bind: bool,
    /// What the handshake settled (the connection's one record of it).
    pub tls: &'a OnceLock<Box<super::sample_ctx::TlsInfo>>,
    pub state: &'a ConnState,
    pub buf: &'a [u8],
    pub active: &'a Active,
}

impl SampleContext for TcpCtx<'_> {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.dst)
    }
    fn req_len(&self) -> Option<usize> {
        Some(self.buf.len())
    }
    fn req_payload(&self) -> Option<&[u8]> {
        Some(self.buf)
    }
    fn tls(&self) -> Option<bool> {
        Some(self.tls_bind)
    }
    fn tls_sni(&self) -> Option<&str> {
        self.tls.get()?.sni.as_deref()
    }
    fn tls_protocol(&self) -> Option<&str> {
        self.tls.get()?.protocol
    }
    fn tls_alpn(&self) -> Option<&[u8]> {
        self.tls.get()?.alpn.as_deref()
    }
    fn tls_client_cert(&self) -> Option<Option<&crate::tls::peer::PeerCert>> {
        Some(self.tls.get()?.client_cert.as_deref())
    }
    fn var(&self, v: &VarRef) -> Option<Value> {
        let vars = self.state.vars.lock().unwrap_or_else(|p| p.into_inner());
        vars.iter().find(|(k, _)| k == v).map(|(_, val)| val.clone())
    }
    fn nbsrv(&self, backend: Option<&str>) -> Option<i64> {
        let (i, _) = self.active.snap.backend(backend?)?;
        Some(self.active.rt.backends[i].nbsrv() as i64)
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn now(&self) -> Option<(i64, u32)> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some((d.as_secs() as i64, d.subsec_micros()))
    }
    fn stick(&self, f: &crate::sample::StickFetch) -> Option<Value> {
        super::track::fetch(self.active, &self.state.stk, None, self.src, f, &self.active.rt.tables.now())
    }
    fn stick_key(&self, f: &crate::sample::StickFetch, key: &Value) -> Option<Value> {
        super::track::fetch_key(self.active, f, key)
    }
    fn capture(&self, response: bool, slot: usize) -> Option<Vec<u8>> {
        if response { None } else { self.state.captured(slot) }
    }
}

/// A stick action of a TCP rule, for the session.
fn stick(active: &Active, cx: &ConnCtx, a: &crate::stktable::track::StickAction, env: &Env<'_>) {
    super::track::act(active, &cx.rules.stk, None, a, env.ctx, env.maps, &active.rt.tables.now())
}

/// The `tcp-request session` rules; a session they let through counts in what it tracks.
pub fn session_allowed(fe: &crate::config::snapshot::Frontend, active: &Active, cx: &ConnCtx) -> bool {
    let ok = allowed(&fe.tcp.session, &fe.tcp.acls, active, cx);
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
        // The connection's `sess` scope is also what its HTTP transactions read.
        if var.scope == crate::sample::VarScope::Sess {
            match &value {
                Some(v) => self.cx.sess_vars.set(&var.name, v.clone()),
                None => self.cx.sess_vars.unset(&var.name),
            }
        }
        self.cx.rules.set_var(var, value)
    }
    fn stick(&self, a: &crate::stktable::track::StickAction, env: &Env<'_>) {
        stick(self.active, self.cx, a, env)
    }
    fn capture(&self, slot: usize, value: &[u8]) {
        self.cx.rules.capture(slot, value)
    }
}

fn ctx<'a>(active: &'a Active, cx: &'a ConnCtx, buf: &'a [u8]) -> TcpCtx<'a> {
    TcpCtx { src: cx.peer, dst: cx.local, tls_bind: cx.tls, tls: &cx.tls_info, state: &cx.rules, buf, active }
}

/// Runs a rule set that cannot wait for data (`connection`, `session`, `tcp-response`): true
/// unless a `reject` matched.
pub fn allowed(rules: &[Rule], fr_acls: &[crate::tcprules::Acl], active: &Active, cx: &ConnCtx) -> bool {
    if rules.is_empty() {
        return true;
    }
    let store = cx.proxy.maps.store.load();
    let c = ctx(active, cx, &[]);
    let env = Env { ctx: &c, maps: &**store, final_: true };
    crate::tcprules::run(rules, 0, fr_acls, &env, &ConnEffects { active, cx }) != Verdict::Reject
}

/// Content inspection: reads the client's first bytes until the content rules accept or reject,
/// or `inspect-delay` (or a full buffer, or the client's end of data) makes them final. Returns
/// the bytes read, or `None` on a reject. Without content rules nothing is read.
pub async fn inspect<R: AsyncRead + Unpin>(
    client: &mut R,
    rules: &FrontRules,
    active: &Active,
    cx: &ConnCtx,
    bufsize: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    if rules.content.is_empty() {
        return Ok(Some(buf));
    }
    let deadline = rules.inspect_delay.map(|d| Instant::now() + d);
    let mut from = 0;
    let mut eof = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let final_ = eof || buf.len() >= bufsize || deadline.is_none_or(|d| Instant::now() >= d);
        let verdict = {
            let store = cx.proxy.maps.store.load();
            let c = ctx(active, cx, &buf);
            let env = Env { ctx: &c, maps: &**store, final_ };
            crate::tcprules::run(&rules.content, from, &rules.acls, &env, &ConnEffects { active, cx })
        };
        match verdict {
            Verdict::Accept => return Ok(Some(buf)),
            Verdict::Reject => return Ok(None),
            // A final evaluation never misses; this only guards the loop.
            Verdict::Wait(_) if final_ => return Ok(Some(buf)),
            Verdict::Wait(i) => from = i,
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

/// The backend a `mode tcp` frontend's `use_backend` rules pick over the inspected bytes, or its
/// default backend.
pub fn choose_backend(active: &Active, fi: usize, cx: &ConnCtx, buf: &[u8]) -> Option<usize> {
    let fe = &active.snap.frontends[fi];
    let store: arc_swap::Guard<std::sync::Arc<MapStore>> = cx.proxy.maps.store.load();
    let c = ctx(active, cx, buf);
    let env = Env { ctx: &c, maps: &**store, final_: true };
    let by_name = |n: &str| active.snap.backend(n).map(|(i, _)| i);
    match crate::tcprules::switch(&fe.tcp.switching, &fe.tcp.acls, &env, &by_name) {
        Some(Some(b)) => Some(b),
        _ => fe.default_backend,
    }
}
