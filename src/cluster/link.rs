//! A connection kept open to the `[cluster]` peer for the one message that cannot wait: "these
//! VRRP masters of mine resigned, take over now" (`crate::fate::hand_off`). Opening a connection
//! when the proxy fails (a thread, a runtime, a TCP connect, a TLS handshake) took longer than the
//! 61 ms skew time it was meant to save, in a debug build under load (bench/README.md, session
//! 10). Here the message is one TLS record written on a socket already open, from whichever thread
//! resigns (the watchdog's, the panic hook's, a VRRP instance's), with no runtime: it goes out
//! while the proxy's runtime is stalled, and when no descriptor is left to open a connection.
//!
//! Blocking `rustls` over a `std` socket, with the sync channel's security unchanged (mutual TLS
//! with the pinned certificate, the shared key's MAC on every frame: `super::wire`). A keeper
//! thread opens the connection, sends `Hold` every [`HOLD_EVERY`] as a heartbeat, reads every
//! answer, and opens the connection again when it drops or an answer does not come; senders only
//! write. A resignation whose answer does not come is sent again on a fresh connection.

use super::wire::{self, HELLO, HELLO_BODY, Request, Response, TO_CLIENT, TO_SERVER};
use crate::config::cluster::ClusterSettings;
use rustls_pki_types::ServerName;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How often the keeper sends `Hold` while nothing else goes: a dropped connection is found
/// within this plus the answer's timeout, and the peer's idle limit never ends a live one.
pub const HOLD_EVERY: Duration = Duration::from_secs(1);
/// The peer closes a held connection that sent nothing for this long (several missed heartbeats:
/// a keeper gone, or a connection left behind by a reconnect).
pub const HOLD_IDLE: Duration = Duration::from_secs(5);
/// Between two attempts to open the connection while the peer does not listen.
const RETRY: Duration = Duration::from_secs(1);
/// The longest wait between attempts a listening peer refused ([`retry_after`]).
const MAX_RETRY: Duration = Duration::from_secs(30);
/// The keeper holds the connection only to read what arrived or to write a frame; a sender that
/// cannot have it within this goes on a fresh connection instead.
const LOCK_FOR: Duration = Duration::from_millis(20);
/// The longest a write may wait for room in the socket's send buffer (a few hundred bytes into an
/// empty buffer: at once, unless the peer stopped reading).
const WRITE_LIMIT: Duration = Duration::from_millis(100);

/// The outcome of one hand-off, for a caller that waits for it (a process about to end).
#[derive(Debug, Default)]
pub struct Ticket {
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

impl Ticket {
    fn set(&self, r: Result<(), String>) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.cv.notify_all();
    }

    /// Waits up to `limit`; `None`: no outcome yet.
    pub fn wait(&self, limit: Duration) -> Option<Result<(), String>> {
        let g = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self.cv.wait_timeout_while(g, limit, |d| d.is_none()).unwrap_or_else(|p| p.into_inner());
        g.clone()
    }
}

/// What an answer on the held connection answers.
enum Sent {
    Hold,
    Resigned { list: Vec<(String, IpAddr)>, ticket: Arc<Ticket> },
}

struct Waiting {
    what: Sent,
    /// The answer is due by then.
    due: Instant,
}

/// What the connection was opened with: a reload that changes any of it opens it again (the
/// certificate is compared by identity, so any reload that read it again does too).
#[derive(PartialEq)]
struct Ident {
    addr: std::net::SocketAddr,
    pin: Option<[u8; 32]>,
    key: Option<Arc<Vec<u8>>>,
    cert: usize,
}

fn ident(s: &ClusterSettings) -> Ident {
    Ident { addr: s.peer_addr, pin: s.peer_fingerprint, key: s.key.clone(), cert: Arc::as_ptr(&s.cert) as usize }
}

/// Why a connection the peer holds open here, accepted under `accepted`, must be closed now that
/// the settings are `now` (`None`: a reload removed `[cluster]`): the shared key, the pinned
/// certificate or this node's own certificate changed, so the peer authenticated with what no
/// longer stands. A held connection never idles (a heartbeat every [`HOLD_EVERY`]), so it is
/// checked on each request it brings, as the keeper checks its own side ([`Ident`]). Pure.
pub fn held_invalid(accepted: &ClusterSettings, now: Option<&ClusterSettings>) -> Option<&'static str> {
    let Some(now) = now else { return Some("no [cluster] any more") };
    if now.key != accepted.key {
        Some("the shared key changed")
    } else if now.peer_fingerprint != accepted.peer_fingerprint {
        Some("the pinned peer certificate changed")
    } else if !Arc::ptr_eq(&now.cert, &accepted.cert) && now.cert.cert != accepted.cert.cert {
        Some("this node's certificate changed")
    } else {
        None
    }
}

/// The open connection.
struct Session {
    tls: rustls::ClientConnection,
    sock: TcpStream,
    key: Option<Arc<Vec<u8>>>,
    binding: [u8; 32],
    /// Plaintext received and not yet a whole frame.
    inbuf: Vec<u8>,
    waiting: VecDeque<Waiting>,
    last_sent: Instant,
    /// Why it cannot be used any more; the keeper closes it.
    broken: Option<String>,
    ident: Ident,
}

impl Session {
    /// Writes one frame; a failure breaks the session.
    fn write(&mut self, dir: u8, body: &[u8]) -> Result<(), String> {
        let f = wire::frame(self.key.as_deref().map(Vec::as_slice), &self.binding, dir, body);
        let r = (|| {
            self.tls.writer().write_all(&f)?;
            while self.tls.wants_write() {
                self.tls.write_tls(&mut self.sock)?;
            }
            Ok::<(), std::io::Error>(())
        })();
        self.last_sent = Instant::now();
        r.map_err(|e| {
            let e = format!("cannot write: {e}");
            self.broken.get_or_insert(e.clone());
            e
        })
    }

    /// Reads what the socket holds (it must hold something, or this blocks for the socket's read
    /// timeout) into whole frames of direction `dir`; `Err` once the peer closed or broke it.
    fn read(&mut self, dir: u8) -> Result<Vec<Vec<u8>>, String> {
        let n = self.tls.read_tls(&mut self.sock).map_err(|e| format!("cannot read: {e}"))?;
        let st = self.tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        let mut plain = vec![0u8; st.plaintext_bytes_to_read()];
        self.tls.reader().read_exact(&mut plain).map_err(|e| format!("TLS: {e}"))?;
        self.inbuf.extend_from_slice(&plain);
        let mut out = Vec::new();
        while let Some(b) =
            wire::take_frame(&mut self.inbuf, self.key.as_deref().map(Vec::as_slice), &self.binding, dir)?
        {
            out.push(b);
        }
        if n == 0 || st.peer_has_closed() {
            // Answers that came before the end still count.
            return if out.is_empty() { Err("the peer closed the connection".into()) } else { Ok(out) };
        }
        Ok(out)
    }

    /// Reads until one whole frame of direction `dir` is in, by `deadline`.
    fn read_one(&mut self, dir: u8, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no answer in time".into());
            }
            self.sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
            if let Some(b) = self.read(dir)?.into_iter().next() {
                return Ok(b);
            }
        }
    }
}

/// Opens the connection: TCP, TLS (as `wire::call`), the peer's greeting, and `Hold` answered.
/// Returns it with a second handle on its socket, for the keeper to wait on without the lock.
/// `Err((listening, why))`: `listening` once the TCP connect succeeded (the peer refused after).
fn open(s: &ClusterSettings) -> Result<(Session, TcpStream), (bool, String)> {
    let sock =
        TcpStream::connect_timeout(&s.peer_addr, s.timeout).map_err(|e| (false, format!("cannot connect: {e}")))?;
    open_on(s, sock).map_err(|e| (true, e))
}

/// How long to wait before opening again, after `refused` attempts in a row that a listening peer
/// refused (a peer without held connections, or another key: each refusal is a warning in its
/// log, so they are spaced out): 1 s, doubling, at most [`MAX_RETRY`]. Pure.
fn retry_after(refused: u32) -> Duration {
    RETRY.saturating_mul(1u32 << refused.min(5)).min(MAX_RETRY)
}

fn open_on(s: &ClusterSettings, mut sock: TcpStream) -> Result<(Session, TcpStream), String> {
    let deadline = Instant::now() + s.timeout;
    let _ = sock.set_nodelay(true);
    sock.set_write_timeout(Some(WRITE_LIMIT)).map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(s.peer_addr.ip().into());
    let mut tls = rustls::ClientConnection::new(wire::client_config(s)?, name).map_err(|e| format!("TLS: {e}"))?;
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("TLS handshake timed out".into());
        }
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        tls.complete_io(&mut sock).map_err(|e| format!("TLS: {e}"))?;
    }
    // Our last handshake message, if still queued: the peer greets only once it has it.
    while tls.wants_write() {
        tls.write_tls(&mut sock).map_err(|e| format!("TLS: {e}"))?;
    }
    let binding = wire::binding(&tls)?;
    let peek = sock.try_clone().map_err(|e| e.to_string())?;
    let mut session = Session {
        tls,
        sock,
        key: s.key.clone(),
        binding,
        inbuf: Vec::new(),
        waiting: VecDeque::new(),
        last_sent: Instant::now(),
        broken: None,
        ident: ident(s),
    };
    if session.read_one(HELLO, deadline)? != HELLO_BODY {
        return Err("the peer did not greet as an lbha sync listener".into());
    }
    session.write(TO_SERVER, &encode(&Request::Hold)?)?;
    match decode(&session.read_one(TO_CLIENT, deadline)?)? {
        Response::Done => Ok((session, peek)),
        other => Err(format!("the peer does not hold connections (answered {other:?})")),
    }
}

fn encode(r: &Request) -> Result<Vec<u8>, String> {
    serde_json::to_vec(r).map_err(|e| e.to_string())
}

fn decode(b: &[u8]) -> Result<Response, String> {
    serde_json::from_slice(b).map_err(|e| format!("bad answer: {e}"))
}

fn names(list: &[(String, IpAddr)]) -> String {
    list.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
}

/// Logs how a hand-off went; its outcome.
fn outcome(
    s: &ClusterSettings,
    list: &[(String, IpAddr)],
    how: &str,
    r: Result<Response, String>,
) -> Result<(), String> {
    match r {
        Ok(Response::Done) => {
            tracing::info!("cluster: told {} that VRRP master(s) {} resigned ({how})", s.peer_name, names(list));
            Ok(())
        }
        Ok(other) => {
            let e = format!("{} answered a resignation with {other:?}", s.peer_name);
            tracing::warn!("cluster: {e}");
            Err(e)
        }
        Err(e) => {
            tracing::warn!("cluster: cannot tell the peer that {} resigned ({how}): {e}", names(list));
            Err(e)
        }
    }
}

/// Tells the peer on a connection of its own (a runtime of its own, bounded by the settings'
/// timeout, which the caller caps): when none is held open.
fn tell_fresh(s: &ClusterSettings, list: Vec<(String, IpAddr)>) -> Result<(), String> {
    let r = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(wire::call(s, &Request::Resigned { instances: list.clone() })));
    outcome(s, &list, "on a new connection", r)
}

/// The current `[cluster]` settings (`None` once a reload removed `[cluster]`).
pub type Settings = Arc<dyn Fn() -> Option<ClusterSettings> + Send + Sync>;

/// The held connection to the peer, and what keeps it.
pub struct Link {
    session: Mutex<Option<Session>>,
    settings: Settings,
    stop: AtomicBool,
}

impl Link {
    /// Starts the keeper thread, which opens the connection and keeps it open.
    pub fn start(settings: Settings) -> Arc<Link> {
        let link = Arc::new(Link { session: Mutex::new(None), settings, stop: AtomicBool::new(false) });
        let weak = Arc::downgrade(&link);
        if let Err(e) = std::thread::Builder::new().name("lbha-cluster-link".into()).spawn(move || keep(weak)) {
            tracing::error!("cluster: cannot start the thread holding a connection to the peer: {e}");
        }
        link
    }

    /// Stops keeping the connection (handover to the process `lbha upgrade` started).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether a connection is held open now (a hand-off would be one write).
    pub fn held(&self) -> bool {
        self.lock().is_some_and(|g| g.as_ref().is_some_and(|x| x.broken.is_none()))
    }

    fn lock(&self) -> Option<MutexGuard<'_, Option<Session>>> {
        let until = Instant::now() + LOCK_FOR;
        loop {
            match self.session.try_lock() {
                Ok(g) => return Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(std::sync::TryLockError::WouldBlock) => return None,
            }
        }
    }

    /// Tells the peer that these masters resigned: written now on the held connection (the
    /// keeper reads the answer, and sends it again on a fresh connection if none comes within
    /// `limit`), or, with none open, on a fresh connection from a thread of its own. Never blocks
    /// for more than a write. The ticket tells how it went.
    pub fn hand_off(&self, list: Vec<(String, IpAddr)>, limit: Duration) -> Arc<Ticket> {
        let ticket = Arc::new(Ticket::default());
        let held = self.write_resigned(&list, limit, &ticket);
        if let Err(why) = held {
            let Some(s) = (self.settings)() else {
                ticket.set(Err("no [cluster] in the running config".into()));
                return ticket;
            };
            tracing::info!("cluster: no held connection to {} ({why}): telling it on a new one", s.peer_name);
            let s = ClusterSettings { timeout: s.timeout.min(limit), ..s };
            let t = ticket.clone();
            let spawned =
                std::thread::Builder::new().name("lbha-hand-off".into()).spawn(move || t.set(tell_fresh(&s, list)));
            if let Err(e) = spawned {
                ticket.set(Err(format!("cannot start a thread: {e}")));
            }
        }
        ticket
    }

    fn write_resigned(&self, list: &[(String, IpAddr)], limit: Duration, ticket: &Arc<Ticket>) -> Result<(), String> {
        let body = encode(&Request::Resigned { instances: list.to_vec() })?;
        let mut g = self.lock().ok_or("the connection is busy")?;
        let s = g.as_mut().ok_or("not open")?;
        if let Some(why) = &s.broken {
            return Err(why.clone());
        }
        s.write(TO_SERVER, &body)?;
        let what = Sent::Resigned { list: list.to_vec(), ticket: ticket.clone() };
        s.waiting.push_back(Waiting { what, due: Instant::now() + limit });
        Ok(())
    }
}

/// The keeper: opens the connection, waits for answers (on its second handle, without the lock),
/// sends the heartbeat, and closes and opens it again when it breaks.
fn keep(link: Weak<Link>) {
    let mut peek: Option<TcpStream> = None;
    let mut last_error = String::new();
    let mut refused = 0u32;
    loop {
        let Some(l) = link.upgrade() else { return };
        if l.stop.load(Ordering::Relaxed) {
            close(&l, "stopped");
            return;
        }
        let Some(s) = (l.settings)() else {
            close(&l, "no [cluster] any more");
            peek = None;
            drop(l);
            std::thread::sleep(RETRY);
            continue;
        };
        let stale = l.lock().is_some_and(|g| g.as_ref().is_some_and(|x| x.ident != ident(&s)));
        if stale {
            close(&l, "the [cluster] settings changed");
            peek = None;
        }
        let Some(p) = peek.as_ref() else {
            match open(&s) {
                Ok((session, p)) => {
                    tracing::info!("cluster: connection to {} at {} held open for hand-offs", s.peer_name, s.peer_addr);
                    last_error.clear();
                    refused = 0;
                    *l.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
                    peek = Some(p);
                }
                Err((listening, e)) => {
                    if e != last_error {
                        tracing::warn!(
                            "cluster: cannot hold a connection open to {} at {}: {e}",
                            s.peer_name,
                            s.peer_addr
                        );
                        last_error = e;
                    }
                    refused = if listening { refused.saturating_add(1) } else { 0 };
                    drop(l);
                    std::thread::sleep(if listening { retry_after(refused - 1) } else { RETRY });
                }
            }
            continue;
        };
        // Wait for an answer (or the end) until a heartbeat or an answer is due.
        let due = {
            let g = l.session.lock().unwrap_or_else(|p| p.into_inner());
            g.as_ref().map_or(Instant::now(), |x| {
                let beat = x.last_sent + HOLD_EVERY;
                x.waiting.front().map_or(beat, |w| w.due.min(beat))
            })
        };
        let wait = due.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let readable = match p.set_read_timeout(Some(wait)).and_then(|()| p.peek(&mut [0u8; 1])) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(format!("cannot read: {e}")),
        };
        let mut retry = Vec::new();
        let mut why = None;
        {
            let mut g = l.session.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(x) = g.as_mut() {
                match readable {
                    Ok(true) => answers(x, &s),
                    Ok(false) => {}
                    Err(e) => {
                        x.broken.get_or_insert(e);
                    }
                }
                let now = Instant::now();
                if x.broken.is_none() && x.waiting.front().is_some_and(|w| w.due <= now) {
                    x.broken = Some("no answer in time".into());
                }
                if x.broken.is_none() && x.waiting.is_empty() && x.last_sent + HOLD_EVERY <= now {
                    let hold = encode(&Request::Hold).and_then(|b| x.write(TO_SERVER, &b));
                    if hold.is_ok() {
                        x.waiting.push_back(Waiting { what: Sent::Hold, due: now + s.timeout });
                    }
                }
                if x.broken.is_some() {
                    let x = g.take().expect("present");
                    why = x.broken;
                    retry = x
                        .waiting
                        .into_iter()
                        .filter_map(|w| match w.what {
                            Sent::Resigned { list, ticket } => Some((list, ticket)),
                            Sent::Hold => None,
                        })
                        .collect();
                }
            }
        }
        if let Some(why) = why {
            tracing::warn!("cluster: the connection held open to {}: {why}; opening it again", s.peer_name);
            peek = None;
            for (list, ticket) in retry {
                let s = ClusterSettings { timeout: s.timeout.min(crate::fate::HAND_OFF_LIMIT), ..s.clone() };
                ticket.set(tell_fresh(&s, list));
            }
        }
    }
}

/// Reads the answers that arrived and settles what they answer.
fn answers(x: &mut Session, s: &ClusterSettings) {
    let frames = match x.read(TO_CLIENT) {
        Ok(f) => f,
        Err(e) => {
            x.broken.get_or_insert(e);
            return;
        }
    };
    for f in frames {
        let Some(w) = x.waiting.pop_front() else {
            x.broken.get_or_insert("an answer to nothing asked".into());
            return;
        };
        let r = decode(&f);
        match w.what {
            Sent::Hold => {
                if !matches!(r, Ok(Response::Done)) {
                    x.broken.get_or_insert(format!("heartbeat answered with {r:?}"));
                }
            }
            Sent::Resigned { list, ticket } => ticket.set(outcome(s, &list, "on the connection held open", r)),
        }
    }
}

/// Closes the connection, if open; resignations it still waited for are settled as failed.
fn close(l: &Link, why: &str) {
    let old = l.session.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(x) = old {
        tracing::debug!("cluster: closing the connection held open to the peer: {why}");
        for w in x.waiting {
            if let Sent::Resigned { ticket, .. } = w.what {
                ticket.set(Err(format!("connection closed: {why}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cluster::SyncMode;
    use std::net::SocketAddr;
    use std::sync::mpsc;

    const KEY: &str = "link-test-key-0123456789";

    fn settings(peer: SocketAddr) -> ClusterSettings {
        let ck = rcgen::generate_simple_self_signed(vec!["a".to_string()]).expect("certificate");
        let der = ck.cert.der().clone();
        let pk = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&pk).expect("key");
        ClusterSettings {
            node: "a".into(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            peer_name: "b".into(),
            peer_addr: peer,
            peer_fingerprint: None,
            key: Some(Arc::new(KEY.as_bytes().to_vec())),
            cert: Arc::new(rustls::sign::CertifiedKey::new(vec![der], signer)),
            sync: SyncMode::Auto,
            local_keys: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// Closes a held connection once it has answered a resignation on it.
        CloseAfterResigned,
        /// Never answers a resignation on a held connection (answers it on a new one).
        SilentWhenHeld,
    }

    /// A sync listener on 127.0.0.1 as `Node::serve` and `Node::hold` run it, reporting each
    /// request as (connection number, whether held, the request).
    fn peer(mode: Mode) -> (SocketAddr, mpsc::Receiver<(u32, bool, Request)>, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = settings(addr);
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            let mut n = 0;
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                n += 1;
                let (tx, cfg, key) = (tx.clone(), wire::server_config(&server).expect("config"), server.key.clone());
                tokio::spawn(async move {
                    let Ok(tls) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await else { return };
                    let mut ch = wire::Channel::server(tls, key).expect("channel");
                    ch.hello().await.expect("hello");
                    let mut held = false;
                    while let Ok(req) = ch.request().await {
                        let resigned = matches!(req, Request::Resigned { .. });
                        let _ = tx.send((n, held, req.clone()));
                        held |= matches!(req, Request::Hold);
                        if resigned && held && mode == Mode::SilentWhenHeld {
                            continue;
                        }
                        ch.answer(&Response::Done).await.expect("answer");
                        if resigned && held && mode == Mode::CloseAfterResigned {
                            return;
                        }
                    }
                });
            }
        });
        (addr, rx, rt)
    }

    #[test]
    fn a_held_connection_is_invalid_once_the_key_pin_or_certificate_changed() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let s = settings(addr);
        assert_eq!(held_invalid(&s, Some(&s)), None);
        // A reload that read the same certificate again, or changed what is not authentication.
        let same = ClusterSettings {
            cert: Arc::new((*s.cert).clone()),
            timeout: Duration::from_secs(9),
            peer_name: "renamed".into(),
            ..s.clone()
        };
        assert_eq!(held_invalid(&s, Some(&same)), None);
        let key = ClusterSettings { key: Some(Arc::new(b"another-key-0123456789".to_vec())), ..s.clone() };
        assert_eq!(held_invalid(&s, Some(&key)), Some("the shared key changed"));
        let pin = ClusterSettings { peer_fingerprint: Some([7; 32]), ..s.clone() };
        assert_eq!(held_invalid(&s, Some(&pin)), Some("the pinned peer certificate changed"));
        let cert = ClusterSettings { cert: settings(addr).cert, ..s.clone() };
        assert_eq!(held_invalid(&s, Some(&cert)), Some("this node's certificate changed"));
        assert_eq!(held_invalid(&s, None), Some("no [cluster] any more"));
    }

    #[test]
    fn a_refusing_peer_is_asked_less_and_less_often() {
        let s = |n| retry_after(n).as_secs();
        assert_eq!((s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(40)), (1, 2, 4, 8, 16, 30, 30, 30));
    }

    fn link_to(addr: SocketAddr) -> Arc<Link> {
        let s = settings(addr);
        Link::start(Arc::new(move || Some(s.clone())))
    }

    /// Waits (bounded) until the keeper holds the connection it opened.
    fn wait_held(link: &Link) {
        let t = Instant::now();
        while !link.held() {
            assert!(t.elapsed() < Duration::from_secs(10), "no connection held within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn list(name: &str) -> Vec<(String, IpAddr)> {
        vec![(name.to_string(), "192.0.2.11".parse().expect("ip"))]
    }

    /// The next request the peer saw, bounded.
    fn next(rx: &mpsc::Receiver<(u32, bool, Request)>) -> (u32, bool, Request) {
        rx.recv_timeout(Duration::from_secs(10)).expect("a request within 10 s")
    }

    fn resigned(r: &Request) -> Option<Vec<String>> {
        match r {
            Request::Resigned { instances } => Some(instances.iter().map(|(n, _)| n.clone()).collect()),
            _ => None,
        }
    }

    #[test]
    fn a_resignation_goes_on_the_held_connection_and_again_once_it_is_reopened() {
        let (addr, rx, _rt) = peer(Mode::CloseAfterResigned);
        let link = link_to(addr);
        let (conn, held, req) = next(&rx);
        assert!(matches!(req, Request::Hold) && !held, "the keeper opens the connection with Hold: {req:?}");
        wait_held(&link);
        let ticket = link.hand_off(list("VI_1"), Duration::from_secs(2));
        assert_eq!(ticket.wait(Duration::from_secs(10)), Some(Ok(())));
        let (c, held, req) = next(&rx);
        assert_eq!((c, held, resigned(&req)), (conn, true, Some(vec!["VI_1".to_string()])), "on the held one");
        // The peer closed that connection: the keeper opens another and holds it.
        let (c2, _, req) = next(&rx);
        assert!(c2 > conn && matches!(req, Request::Hold), "{req:?}");
        wait_held(&link);
        let ticket = link.hand_off(list("VI_2"), Duration::from_secs(2));
        assert_eq!(ticket.wait(Duration::from_secs(10)), Some(Ok(())));
        let (c3, held, req) = next(&rx);
        assert_eq!((c3, held, resigned(&req)), (c2, true, Some(vec!["VI_2".to_string()])));
        link.stop();
    }

    #[test]
    fn a_resignation_not_answered_on_the_held_connection_goes_on_a_new_one() {
        let (addr, rx, _rt) = peer(Mode::SilentWhenHeld);
        let link = link_to(addr);
        let (conn, _, req) = next(&rx);
        assert!(matches!(req, Request::Hold));
        wait_held(&link);
        let ticket = link.hand_off(list("VI_1"), Duration::from_millis(300));
        let (c, held, req) = next(&rx);
        assert_eq!((c, held, resigned(&req).is_some()), (conn, true, true));
        // No answer within 300 ms: the keeper gives the connection up and tells the peer anew.
        assert_eq!(ticket.wait(Duration::from_secs(10)), Some(Ok(())));
        let again = (0..4).map(|_| next(&rx)).find(|(_, held, r)| !held && resigned(r).is_some());
        assert!(again.is_some_and(|(c, _, _)| c > conn), "told again on a new connection");
        link.stop();
    }

    #[test]
    fn with_no_peer_listening_the_hand_off_fails_and_says_why() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let link = link_to(addr);
        let ticket = link.hand_off(list("VI_1"), Duration::from_secs(1));
        let r = ticket.wait(Duration::from_secs(10)).expect("an outcome");
        assert!(r.as_ref().is_err_and(|e| e.contains("cannot connect")), "{r:?}");
        link.stop();
    }
}
