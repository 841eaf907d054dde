//! What sample fetches read in the proxy: the connection, the request and response of the
//! current transaction, its variables and live backend state. Built per rule evaluation from
//! borrowed parts, so nothing is copied.

use super::vars::TxnVars;
use super::{Active, ConnCtx};
use crate::routing::Live;
use crate::sample::{SampleContext, Value, VarRef};
use http::{HeaderMap, Method, Uri, Version};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

/// What a client's TLS handshake settled, kept on the connection.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    pub sni: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub protocol: Option<&'static str>,
    /// The negotiated suite's OpenSSL name (`%sslc`).
    pub cipher: Option<&'static str>,
    /// The client's certificate (mutual TLS), for the `ssl_c_*` fetches.
    pub client_cert: Option<std::sync::Arc<crate::tls::peer::PeerCert>>,
    /// When the handshake ended (`%Th` counts from the accept to here).
    pub done: Option<tokio::time::Instant>,
    /// The client resumed an earlier session (`ssl_fc_is_resumed`).
    pub resumed: bool,
}

impl TlsInfo {
    pub fn of(c: &rustls::ServerConnection) -> TlsInfo {
        let protocol = c.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "unknown",
        });
        let client_cert = c
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| crate::tls::peer::PeerCert::parse(der))
            .map(std::sync::Arc::new);
        TlsInfo {
            sni: c.server_name().map(str::to_string),
            alpn: c.alpn_protocol().map(<[u8]>::to_vec),
            protocol,
            cipher: c.negotiated_cipher_suite().and_then(|s| crate::tls::policy::openssl_name(s.suite())),
            client_cert,
            done: Some(tokio::time::Instant::now()),
            resumed: c.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }
}

/// One stream as fetches see it. HTTP parts are `None` in TCP mode or before they exist.
pub struct StreamCtx<'a> {
    pub cx: &'a ConnCtx,
    pub active: &'a Active,
    pub frontend: usize,
    /// The backend once chosen (`nbsrv` without argument reads it).
    pub backend: Option<usize>,
    /// The server once chosen (response rules; `srv_name`, `srv_id`).
    pub server: Option<usize>,
    /// The response's version (response rules; `res.ver`).
    pub res_version: Option<Version>,
    pub vars: Option<&'a TxnVars<'a>>,
    pub method: Option<&'a Method>,
    pub uri: Option<&'a Uri>,
    pub version: Option<Version>,
    pub req_headers: Option<&'a HeaderMap>,
    pub req_body: Option<&'a [u8]>,
    pub status: Option<u16>,
    pub res_headers: Option<&'a HeaderMap>,
    /// The response body `http-response wait-for-body` read (`res.body`).
    pub res_body: Option<&'a [u8]>,
    /// The request's log record, whose capture slots `capture.req.hdr(N)` reads.
    pub log: Option<&'a super::logrec::LogHandle>,
    /// The stick tables' time of the rule pass (`None`: read at each stick fetch).
    pub now: Option<&'a crate::stktable::Now>,
    /// A TCP stream's first bytes, held for content inspection (`req.len`, `req.payload`).
    pub payload: Option<&'a [u8]>,
    /// The server's first bytes, held for `tcp-response content` (`res.len`, `res.payload`).
    pub res_payload: Option<&'a [u8]>,
    /// The log record a line or an `lf` error page renders over (held locked, so `log` is
    /// `None` then): its captures and unique id.
    pub rec: Option<&'a crate::log::record::Record>,
}

impl<'a> StreamCtx<'a> {
    /// A connection with no HTTP parts yet (TCP mode).
    pub fn conn(cx: &'a ConnCtx, active: &'a Active, frontend: usize) -> StreamCtx<'a> {
        StreamCtx {
            cx,
            active,
            frontend,
            backend: None,
            server: None,
            res_version: None,
            vars: None,
            method: None,
            uri: None,
            version: None,
            req_headers: None,
            req_body: None,
            status: None,
            res_headers: None,
            res_body: None,
            log: None,
            now: None,
            payload: None,
            res_payload: None,
            rec: None,
        }
    }

    /// The request as its log record kept it (method, URI, headers, status, response headers,
    /// captures, unique id), with the stream's variables and state: what a log line, a unique
    /// id or an `lf` error page reads.
    pub fn logged(
        cx: &'a ConnCtx,
        active: &'a Active,
        frontend: usize,
        backend: Option<usize>,
        vars: Option<&'a TxnVars<'a>>,
        rec: &'a crate::log::record::Record,
    ) -> StreamCtx<'a> {
        StreamCtx {
            backend,
            vars,
            method: rec.method.as_ref(),
            uri: rec.uri.as_ref(),
            // HAProxy's version fetches read nothing of a request left in error.
            version: rec.version.filter(|_| !rec.request_in_error()),
            req_headers: rec.method.as_ref().map(|_| &rec.req_headers),
            status: rec.status,
            res_headers: rec.status.map(|_| &rec.res_headers),
            res_version: rec.res_version,
            rec: Some(rec),
            ..StreamCtx::conn(cx, active, frontend)
        }
    }

    /// A request (its parts).
    pub fn request<B>(
        cx: &'a ConnCtx,
        active: &'a Active,
        frontend: usize,
        req: &'a http::Request<B>,
        vars: Option<&'a TxnVars<'a>>,
    ) -> StreamCtx<'a> {
        StreamCtx {
            method: Some(req.method()),
            uri: Some(req.uri()),
            version: Some(req.version()),
            req_headers: Some(req.headers()),
            vars,
            ..StreamCtx::conn(cx, active, frontend)
        }
    }

    fn backend_index(&self, name: Option<&str>) -> Option<usize> {
        match name {
            Some(n) => self.active.snap.backend(n).map(|(i, _)| i),
            None => self.backend,
        }
    }
}

impl SampleContext for StreamCtx<'_> {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.cx.src())
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.cx.dst())
    }
    fn method(&self) -> Option<&Method> {
        self.method
    }
    fn uri(&self) -> Option<&Uri> {
        self.uri
    }
    fn version(&self) -> Option<Version> {
        self.version
    }
    fn req_headers(&self) -> Option<&HeaderMap> {
        self.req_headers
    }
    fn req_body(&self) -> Option<&[u8]> {
        self.req_body
    }
    fn req_len(&self) -> Option<usize> {
        if let Some(p) = self.payload {
            return Some(p.len());
        }
        // An HTTP request: HAProxy 2.6 counts it in its HTX form (see `htx_bytes`), with the
        // body's bytes at hand.
        let head = super::htx_bytes::request_head(
            self.method?.as_str(),
            super::htx_bytes::uri_len(self.uri?),
            self.req_headers?,
        );
        Some(head as usize + self.req_body.map_or(0, <[u8]>::len))
    }
    fn req_payload(&self) -> Option<&[u8]> {
        self.payload
    }
    fn res_payload(&self) -> Option<&[u8]> {
        self.res_payload
    }
    fn res_body(&self) -> Option<&[u8]> {
        self.res_body
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn res_headers(&self) -> Option<&HeaderMap> {
        self.res_headers
    }
    fn tls(&self) -> Option<bool> {
        Some(self.cx.tls)
    }
    fn tls_sni(&self) -> Option<&str> {
        self.cx.tls_info.get()?.sni.as_deref()
    }
    fn tls_protocol(&self) -> Option<&str> {
        self.cx.tls_info.get()?.protocol
    }
    fn tls_alpn(&self) -> Option<&[u8]> {
        self.cx.tls_info.get()?.alpn.as_deref()
    }
    fn tls_client_cert(&self) -> Option<Option<&crate::tls::peer::PeerCert>> {
        Some(self.cx.tls_info.get()?.client_cert.as_deref())
    }
    fn var(&self, var: &VarRef) -> Option<Value> {
        match self.vars {
            Some(v) => v.get(var),
            // Before any transaction (TCP rules): the connection's own and the process's.
            None if var.scope == crate::sample::VarScope::Proc => self.cx.proxy.proc_vars.get(&var.name),
            None => self.cx.rules.var(var),
        }
    }
    fn set_var(&self, var: &VarRef, value: Option<Value>) -> bool {
        match (self.vars, value) {
            (Some(v), Some(x)) => v.set(var, x),
            (Some(v), None) => v.unset(var),
            (None, x) if var.scope == crate::sample::VarScope::Proc => match x {
                Some(x) => self.cx.proxy.proc_vars.set(&var.name, x),
                None => self.cx.proxy.proc_vars.unset(&var.name),
            },
            // Before any transaction (TCP rules): the connection's own.
            (None, x) => self.cx.rules.set_var(var, x),
        }
        true
    }
    fn proxy_name(&self, role: crate::sample::Role) -> Option<&str> {
        use crate::sample::Role;
        let snap = &self.active.snap;
        match role {
            Role::Frontend => Some(snap.frontends.get(self.frontend)?.name.as_str()),
            Role::Backend => Some(snap.backends.get(self.backend?)?.name.as_str()),
            Role::Server => match (self.backend?, self.server) {
                (b, Some(s)) => Some(snap.backends.get(b)?.servers.get(s)?.name.as_str()),
                // A log line: the record names the server that answered.
                _ => self.rec.map(|r| r.server.as_str()).filter(|n| !n.is_empty() && *n != "<NOSRV>"),
            },
        }
    }
    fn server_id(&self) -> Option<i64> {
        let b = self.backend?;
        let servers = &self.active.snap.backends.get(b)?.servers;
        let s = match self.server {
            Some(s) => servers.get(s)?,
            None => {
                let name = self.proxy_name(crate::sample::Role::Server)?;
                servers.iter().find(|s| s.name == name)?
            }
        };
        Some(i64::from(s.id))
    }
    fn proxy_id(&self, role: crate::sample::Role) -> Option<i64> {
        let snap = &self.active.snap;
        let id = match role {
            crate::sample::Role::Frontend => snap.frontends.get(self.frontend)?.id,
            crate::sample::Role::Backend => snap.backends.get(self.backend?)?.id,
            crate::sample::Role::Server => return self.server_id(),
        };
        Some(i64::from(id))
    }
    fn uuid(&self) -> Option<String> {
        Some(uuid::Uuid::new_v4().to_string())
    }
    fn tls_cipher(&self) -> Option<&str> {
        self.cx.tls_info.get()?.cipher
    }
    fn tls_resumed(&self) -> Option<bool> {
        Some(self.cx.tls && self.cx.tls_info.get()?.resumed)
    }
    fn res_version(&self) -> Option<Version> {
        self.res_version
    }
    fn queue(&self, backend: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        Some(i64::from(self.active.rt.backends[i].counters.queue.cur.load(Relaxed)))
    }
    fn avg_queue(&self, backend: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        let be = &self.active.rt.backends[i];
        let usable = (0..be.servers.len()).filter(|&s| be.server_usable(s)).count() as i64;
        Some(crate::sample::avg_queue(i64::from(be.counters.queue.cur.load(Relaxed)), usable))
    }
    fn srv_conn(&self, backend: Option<&str>, server: &str, queue: bool) -> Option<i64> {
        let i = self.backend_index(backend)?;
        let si = self.active.snap.backends[i].servers.iter().position(|s| s.name == server)?;
        let sv = self.active.rt.backends[i].servers.get(si)?;
        Some(i64::from(if queue { sv.queued.load(Relaxed) } else { sv.counters.cur_sessions.load(Relaxed) }))
    }
    fn http_auth(&self, userlist: &str) -> Option<bool> {
        Some(super::rules::http_auth_user(self, userlist).is_some())
    }
    fn http_auth_group(&self, userlist: &str) -> Option<String> {
        super::rules::http_auth_user(self, userlist).map(str::to_string)
    }
    fn user_in_group(&self, userlist: &str, user: &str, group: &str) -> bool {
        self.active.snap.userlists.iter().any(|l| l.name == userlist && l.in_group(user, group))
    }
    fn nbsrv(&self, backend: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        Some(self.active.nbsrv(&self.active.snap.backends[i].name) as i64)
    }
    fn srv_is_up(&self, backend: Option<&str>, server: &str) -> Option<bool> {
        let i = self.backend_index(backend)?;
        let be = &self.active.snap.backends[i];
        let si = be.servers.iter().position(|s| s.name == server)?;
        Some(self.active.rt.backends[i].server_usable(si))
    }
    fn be_conn(&self, backend: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        Some(self.active.rt.backends[i].counters.cur_sessions.load(Relaxed) as i64)
    }
    fn fe_conn(&self, frontend: Option<&str>) -> Option<i64> {
        let i = match frontend {
            Some(n) => self.active.snap.frontend(n)?.0,
            None => self.frontend,
        };
        Some(self.active.rt.frontends.get(i)?.cur_sessions.load(Relaxed) as i64)
    }
    fn fe_rate(&self, frontend: Option<&str>, requests: bool) -> Option<i64> {
        let i = match frontend {
            Some(n) => self.active.snap.frontend(n)?.0,
            None => self.frontend,
        };
        let c = self.active.rt.frontends.get(i)?;
        let now = crate::state::rate_clock();
        Some(i64::from(if requests { c.req_per_sec(now) } else { c.sess_per_sec(now) }))
    }
    fn sess_rate(&self, backend: Option<&str>, server: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        let be = &self.active.rt.backends[i];
        let c = match server {
            None => &be.counters,
            Some(s) => {
                &be.servers.get(self.active.snap.backends[i].servers.iter().position(|x| x.name == s)?)?.counters
            }
        };
        Some(i64::from(c.sess_per_sec(crate::state::rate_clock())))
    }
    fn connslots(&self, backend: Option<&str>) -> Option<i64> {
        let i = self.backend_index(backend)?;
        let be = &self.active.rt.backends[i];
        let servers = (0..be.servers.len()).filter(|&s| be.server_usable(s)).map(|s| {
            let sv = &be.servers[s];
            let load = |a: &std::sync::atomic::AtomicU32| a.load(Relaxed);
            (load(&sv.maxconn), load(&sv.counters.cur_sessions), load(&sv.maxqueue), load(&sv.queued))
        });
        Some(connslots(servers))
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn now(&self) -> Option<(i64, u32)> {
        crate::sample::wall_clock()
    }
    fn random(&self) -> Option<u32> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.cx.requests.load(Relaxed));
        Some(h.finish() as u32)
    }
    fn hostname(&self) -> Option<&str> {
        Some(hostname())
    }
    fn stick(&self, f: &crate::sample::StickFetch) -> Option<Value> {
        let (stream, tables) = (self.vars.map(|v| &v.stk), &self.active.rt.tables);
        match self.now {
            Some(now) => super::track::fetch(self.active, &self.cx.rules.stk, stream, self.cx.src(), f, now),
            None => super::track::fetch(self.active, &self.cx.rules.stk, stream, self.cx.src(), f, &tables.now()),
        }
    }
    fn stick_key(&self, f: &crate::sample::StickFetch, key: &Value) -> Option<Value> {
        super::track::fetch_key(self.active, f, key)
    }
    fn unique_id(&self) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(rec) = self.rec {
            return rec.unique_id.as_deref().map(std::borrow::Cow::Borrowed);
        }
        // A rule's `%[unique-id]`: generated now when nothing asked for it before, and kept
        // in the record for the header and the log line.
        let id = super::logrec::unique_id(self.log?, self.cx, self.active, (self.frontend, self.backend), self.vars)?;
        Some(std::borrow::Cow::Owned(id))
    }
    fn capture(&self, response: bool, slot: usize) -> Option<Vec<u8>> {
        if let Some(rec) = self.rec {
            return SampleContext::capture(rec, response, slot);
        }
        let Some(log) = self.log else {
            // TCP rules: what `tcp-request content capture` took on this connection.
            return if response { None } else { self.cx.rules.captured(slot) };
        };
        let rec = log.lock();
        let c = if response { &rec.captures_res } else { &rec.captures_req };
        c.get(slot)?.as_ref().map(|v| v.as_bytes().to_vec())
    }
}

/// HAProxy's `connslots` over the usable servers' `(maxconn, sessions, maxqueue, queued)`: the
/// free connection and queue slots, or -1 when a server has no `maxconn` or no `maxqueue`
/// (unbounded, as HAProxy answers).
fn connslots(servers: impl Iterator<Item = (u32, u32, u32, u32)>) -> i64 {
    let mut free = 0i64;
    for (maxconn, cur, maxqueue, queued) in servers {
        if maxconn == 0 || maxqueue == 0 {
            return -1;
        }
        free += (i64::from(maxconn) - i64::from(cur)) + (i64::from(maxqueue) - i64::from(queued));
    }
    free
}

fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn connslots_sums_free_slots_or_says_unbounded() {
        assert_eq!(super::connslots([(10, 3, 5, 1), (2, 2, 1, 0)].into_iter()), 12);
        assert_eq!(super::connslots([(10, 0, 5, 0), (2, 0, 0, 0)].into_iter()), -1, "no maxqueue");
        assert_eq!(super::connslots([(0, 0, 5, 0)].into_iter()), -1, "no maxconn");
        assert_eq!(super::connslots(std::iter::empty()), 0, "no usable server");
    }
}
