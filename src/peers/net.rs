//! The peers I/O edge: one listener for the local peer's address and one connector per remote
//! peer, each session driven by the pure [`Session`] state machine. Tables are found by name in
//! the running snapshot at every step, so a reload that keeps a table keeps replicating it; a
//! reload that changes the replicated tables ends the sessions, which reconnect with the new set.
//!
//! Bad input never goes further than its connection: a connection from an address not listed in
//! the section is closed at once, a wrong hello gets its status code, a malformed message the
//! protocol's error message and a close; each is counted and logged.
//!
//! With `ssl` (HAProxy's peer/bind TLS words) a session runs over rustls: the listener checks the
//! address first, then the handshake (a client certificate when `verify required`), then the
//! hello; a dialer sends its hello once its handshake checked the peer's certificate. A failed
//! handshake is counted and logged like any other bad input.

use super::codec::{DEFAULT_MAX_LEN, Message, next_frame};
use super::cursor::{self, Cursor};
use super::entry::{DictRx, DictTx, Entry};
use super::handshake::{self, HelloCheck, VERSION, VERSION_DOWNGRADED, Version};
use super::reconnect;
use super::session::{Event, LocalTable, Out, Phase, Session};
use crate::proxy::Proxy;
use crate::stktable::registry::lock;
use crate::stktable::{TableDef, wire};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A validated `peers` section that holds the local peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// This node's peer name.
    pub local: String,
    pub bind: SocketAddr,
    pub remotes: Vec<Remote>,
    /// TLS on the listener (`bind`/`default-bind ... ssl`).
    pub tls: Option<Listen>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub addr: SocketAddr,
    /// TLS towards this peer (`ssl` on its line or `default-server`).
    pub tls: Option<Dial>,
}

/// The client side towards a peer.
#[derive(Clone)]
pub struct Dial {
    pub config: Arc<rustls::ClientConfig>,
    /// The `sni` (sent and checked), else the peer's address (no SNI sent).
    pub name: rustls_pki_types::ServerName<'static>,
    /// The words it was built from: what a reload compares.
    pub words: String,
}

/// The server side of the listener.
#[derive(Clone)]
pub struct Listen {
    pub config: Arc<rustls::ServerConfig>,
    pub words: String,
}

impl PartialEq for Dial {
    fn eq(&self, o: &Self) -> bool {
        self.words == o.words
    }
}
impl Eq for Dial {}
impl PartialEq for Listen {
    fn eq(&self, o: &Self) -> bool {
        self.words == o.words
    }
}
impl Eq for Listen {}
impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dial({:?})", self.words)
    }
}
impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listen({:?})", self.words)
    }
}

/// A session's byte stream: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

const TICK: Duration = Duration::from_millis(100);
/// Pushes woken by changes are at least this far apart: a burst leaves in batches, and each
/// push's pass over the table is paid at most this often.
const COALESCE: Duration = Duration::from_millis(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_LINE: usize = 256;
/// Table ids remembered per session: far above any real section, a bound against a flood.
const MAX_TABLE_IDS: usize = 4096;
/// How long a starting node waits for a lesson before it answers lessons as up to date itself.
const RESYNC_MS: u64 = 5000;

/// The running edge; dropping it stops every task.
#[derive(Debug, Default)]
pub struct Edge {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Node {
    sec: Section,
    proxy: Arc<Proxy>,
    /// Learned from a peer (or gave up waiting): lessons we give are complete.
    resynced: AtomicBool,
    started: u64,
    /// Generation of the session each remote peer holds (0: none); a newer session replaces it.
    slots: Vec<AtomicU64>,
    next_gen: AtomicU64,
    errors: AtomicU64,
    /// Last local update each remote peer acknowledged, by table name (from the start of the
    /// edge or of the first session for a table new to it): a new session pushes everything
    /// after, so changes made while the peer was away, or sent by a session that ended before
    /// the peer read them, reach it.
    acked: std::sync::Mutex<std::collections::HashMap<(usize, String), u32>>,
}

impl Node {
    fn now(&self) -> u64 {
        self.proxy.active.load().rt.tables.now_ms()
    }

    /// The tables this section replicates, in the running snapshot.
    fn defs(&self) -> Vec<TableDef> {
        let a = self.proxy.active.load();
        a.snap.stick_tables.iter().filter(|d| d.peers.as_deref() == Some(&self.sec.name)).cloned().collect()
    }

    fn acked(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<(usize, String), u32>> {
        self.acked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a new session with remote `idx` starts pushing table `name`, whose last update id
    /// is now `last` (remembered when the table is new to this peer).
    fn resume(&self, idx: usize, name: &str, last: u32) -> u32 {
        *self.acked().entry((idx, name.to_string())).or_insert(last)
    }

    /// Remote `idx` has every change of table `name` up to `id`.
    fn record_ack(&self, idx: usize, name: &str, id: u32) {
        let mut acked = self.acked();
        let e = acked.entry((idx, name.to_string())).or_insert(id);
        if cursor::after(id, *e) {
            *e = id;
        }
    }

    fn error(&self, peer: &str, what: impl std::fmt::Display) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!("peers {}: {peer}: {what} ({n} errors so far)", self.sec.name);
    }
}

/// Binds every section's listener and starts its tasks.
pub async fn start(proxy: &Arc<Proxy>) -> Result<Edge, String> {
    let mut edge = Edge::default();
    let sections = proxy.active.load().snap.peers.clone();
    for sec in sections {
        let l = listen(sec.bind).map_err(|e| format!("peers {}: bind {}: {e}", sec.name, sec.bind))?;
        let started = proxy.active.load().rt.tables.now_ms();
        let node = Arc::new(Node {
            slots: sec.remotes.iter().map(|_| AtomicU64::new(0)).collect(),
            sec,
            proxy: proxy.clone(),
            resynced: AtomicBool::new(false),
            started,
            next_gen: AtomicU64::new(1),
            errors: AtomicU64::new(0),
            acked: Default::default(),
        });
        // Changes made from now on reach each peer even if no session is up yet.
        let tables = proxy.active.load().rt.tables.clone();
        for d in node.defs() {
            let Some(t) = tables.find(&d.name) else { continue };
            let last = lock(t).last_update();
            for i in 0..node.sec.remotes.len() {
                node.resume(i, &d.name, last);
            }
        }
        tracing::info!("peers {}: local peer {} listening on {}", node.sec.name, node.sec.local, node.sec.bind);
        edge.tasks.push(tokio::spawn(accept_loop(node.clone(), l)));
        for i in 0..node.sec.remotes.len() {
            edge.tasks.push(tokio::spawn(connect_loop(node.clone(), i)));
        }
    }
    Ok(edge)
}

/// SO_REUSEPORT: during `lbha upgrade` the new process binds while the old one still listens.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    s.set_reuseaddr(true)?;
    s.set_reuseport(true)?;
    s.bind(addr)?;
    s.listen(64)
}

async fn accept_loop(node: Arc<Node>, l: TcpListener) {
    loop {
        let (s, from) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("peers {}: accept: {e}", node.sec.name);
                tokio::time::sleep(TICK).await;
                continue;
            }
        };
        if !node.sec.remotes.iter().any(|r| r.addr.ip() == from.ip()) {
            node.error(&from.to_string(), "connection from an address not in the section, closed");
            continue;
        }
        match node.sec.tls.clone() {
            None => {
                tokio::spawn(callee(node.clone(), s, from));
            }
            Some(tls) => {
                tokio::spawn(accept_tls(node.clone(), tls, s, from));
            }
        }
    }
}

/// The TLS handshake of an incoming connection (the client certificate checked when asked
/// for), then the session.
async fn accept_tls(node: Arc<Node>, tls: Listen, s: TcpStream, from: SocketAddr) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
        Ok(Ok(s)) => callee(node, s, from).await,
        Ok(Err(e)) => node.error(&from.to_string(), format_args!("TLS handshake failed: {e}")),
        Err(_) => node.error(&from.to_string(), "TLS handshake timed out"),
    }
}

async fn callee<S: Stream>(node: Arc<Node>, mut s: S, from: SocketAddr) {
    let mut buf = Vec::new();
    let local = node.sec.local.clone();
    let is_peer = |n: &[u8]| node.sec.remotes.iter().any(|r| r.name.as_bytes() == n && r.addr.ip() == from.ip());
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let (peer, used, version) = loop {
        match handshake::check_hello(&buf, &local, is_peer, MAX_LINE) {
            Err(e) => return node.error(&from.to_string(), e),
            Ok(HelloCheck::Reject(st)) => {
                let _ = s.write_all(st.line().as_bytes()).await;
                let _ = s.flush().await;
                return node.error(&from.to_string(), format_args!("hello refused with {}", st.code()));
            }
            Ok(HelloCheck::Accept { hello, used }) => {
                let name = String::from_utf8_lossy(hello.peer).into_owned();
                break (name, used, hello.version);
            }
            Ok(HelloCheck::Incomplete) => {}
        }
        match tokio::time::timeout_at(deadline, s.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return node.error(&from.to_string(), "no complete hello"),
        }
    };
    let Some(idx) = node.sec.remotes.iter().position(|r| r.name == peer) else { return };
    buf.drain(..used);
    let defs = node.defs();
    let now = node.now();
    let mut sess = Session::callee(local_tables(&defs), now, !node.resynced.load(Ordering::Relaxed));
    let outs = sess.on_hello(
        now,
        &HelloCheck::Accept { hello: handshake::Hello { version, peer: peer.as_bytes(), rest: b"" }, used: 0 },
    );
    let mut c = Conn::new(node, idx, defs, sess);
    let mut out = Vec::new();
    c.emit(&outs, &mut out);
    tracing::info!("peers {}: session with {peer} ({from}) accepted", c.node.sec.name);
    c.run(s, buf, out).await;
}

async fn connect_loop(node: Arc<Node>, idx: usize) {
    let remote = node.sec.remotes[idx].clone();
    let mut version = VERSION;
    let mut start = node.now();
    loop {
        let mut lost = None;
        for at in reconnect::attempt(start) {
            let wait = at.saturating_sub(node.now());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            while node.slots[idx].load(Ordering::Acquire) != 0 {
                tokio::time::sleep(TICK).await;
            }
            let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(remote.addr)).await else {
                continue;
            };
            let refused = match &remote.tls {
                None => caller(&node, idx, s, version).await,
                Some(tls) => {
                    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(tls.name.clone(), s)).await {
                        Ok(Ok(s)) => caller(&node, idx, s, version).await,
                        Ok(Err(e)) => {
                            node.error(&remote.name, format_args!("TLS handshake with {} failed: {e}", remote.addr));
                            None
                        }
                        Err(_) => {
                            node.error(&remote.name, format_args!("TLS handshake with {} timed out", remote.addr));
                            None
                        }
                    }
                }
            };
            match refused {
                Some(code) if Session::wants_downgrade(code) => version = VERSION_DOWNGRADED,
                _ => {}
            }
            lost = Some(node.now());
            break;
        }
        start = match lost {
            Some(t) => reconnect::after_lost_session(t, random()),
            None => reconnect::next_attempt(start),
        };
    }
}

fn random() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_micros())
}

/// An outgoing session; the status code when the hello was refused.
async fn caller<S: Stream>(node: &Arc<Node>, idx: usize, mut s: S, version: Version) -> Option<u32> {
    let remote = &node.sec.remotes[idx];
    let hello = handshake::hello(version, &remote.name, &node.sec.local, std::process::id());
    s.write_all(hello.as_bytes()).await.ok()?;
    s.flush().await.ok()?;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let (code, used) = loop {
        match handshake::take_line(&buf, MAX_LINE) {
            Err(e) => {
                node.error(&remote.name, e);
                return None;
            }
            Ok(Some((line, n))) => break (handshake::parse_status(line), n),
            Ok(None) => {}
        }
        match tokio::time::timeout_at(deadline, s.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    };
    buf.drain(..used);
    let defs = node.defs();
    let now = node.now();
    let mut sess = Session::caller(local_tables(&defs), now, !node.resynced.load(Ordering::Relaxed), version);
    let outs = sess.on_status(now, code);
    if sess.phase() != Phase::Open {
        node.error(&remote.name, format_args!("our hello was refused with {code}"));
        return Some(code);
    }
    let mut c = Conn::new(node.clone(), idx, defs, sess);
    let mut out = Vec::new();
    c.emit(&outs, &mut out);
    tracing::info!("peers {}: session with {} ({}) established", node.sec.name, remote.name, remote.addr);
    c.run(s, buf, out).await;
    None
}

fn local_tables(defs: &[TableDef]) -> Vec<LocalTable> {
    defs.iter().map(|d| wire::local_table(d, d.wire_name())).collect()
}

/// One open session and what it has pushed.
struct Conn {
    node: Arc<Node>,
    idx: usize,
    generation: u64,
    defs: Vec<TableDef>,
    sess: Session,
    dict_rx: DictRx,
    dict_tx: DictTx,
    /// Per table: what was pushed and acked.
    cursors: Vec<Cursor>,
    /// Table ids the peer defined (a switch to another one is an error).
    defined_ids: std::collections::HashSet<u64>,
}

impl Conn {
    fn new(node: Arc<Node>, idx: usize, defs: Vec<TableDef>, sess: Session) -> Conn {
        let generation = node.next_gen.fetch_add(1, Ordering::Relaxed);
        node.slots[idx].store(generation, Ordering::Release);
        let tables = node.proxy.active.load().rt.tables.clone();
        let cursors = defs
            .iter()
            .map(|d| {
                let last = tables.find(&d.name).map_or(0, |t| lock(t).last_update());
                Cursor::resume(node.resume(idx, &d.name, last))
            })
            .collect();
        Conn {
            node,
            idx,
            generation,
            defs,
            sess,
            dict_rx: DictRx::default(),
            dict_tx: DictTx::default(),
            cursors,
            defined_ids: Default::default(),
        }
    }

    fn peer(&self) -> &str {
        &self.node.sec.remotes[self.idx].name
    }

    fn emit(&mut self, outs: &[Out], out: &mut Vec<u8>) {
        for o in outs {
            o.encode(out);
        }
    }

    async fn run<S: Stream>(mut self, s: S, mut buf: Vec<u8>, mut out: Vec<u8>) {
        let (mut rd, mut wr) = tokio::io::split(s);
        let mut tick = tokio::time::interval(TICK);
        let wake = self.node.proxy.active.load().rt.tables.wake().clone();
        let mut next_push = tokio::time::Instant::now();
        let mut eof = false;
        // Bytes that came with the handshake are handled first.
        let mut pending = !buf.is_empty();
        while self.sess.phase() == Phase::Open {
            if !out.is_empty() {
                // A TLS stream holds records until flushed.
                if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                out.clear();
            }
            if eof {
                break;
            }
            if pending {
                pending = false;
                self.receive(&mut buf, &mut out);
                continue;
            }
            // Armed before looking, so a change made after the look wakes us.
            let changed = wake.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            wake.arm();
            let woken = if self.unpushed() {
                true
            } else {
                tokio::select! {
                    r = rd.read_buf(&mut buf) => match r {
                        Ok(0) | Err(_) => eof = true,
                        Ok(_) => self.receive(&mut buf, &mut out),
                    },
                    _ = tick.tick() => self.on_tick(&mut out),
                    _ = &mut changed => {}
                }
                !eof && self.unpushed()
            };
            if woken {
                tokio::time::sleep_until(next_push).await;
                let t0 = tokio::time::Instant::now();
                self.push(self.node.now(), &mut out);
                // Each push passes over the tables: at most a fifth of the time goes to that.
                next_push = t0 + COALESCE.max(t0.elapsed() * 5);
            }
        }
        if !out.is_empty() {
            let _ = wr.write_all(&out).await;
            let _ = wr.flush().await;
        }
        let _ = wr.shutdown().await;
        let _ = self.node.slots[self.idx].compare_exchange(self.generation, 0, Ordering::AcqRel, Ordering::Relaxed);
        tracing::info!("peers {}: session with {} closed", self.node.sec.name, self.peer());
    }

    fn on_tick(&mut self, out: &mut Vec<u8>) {
        let now = self.node.now();
        if self.node.slots[self.idx].load(Ordering::Acquire) != self.generation {
            // A newer session with this peer won (two nodes connected at once).
            tracing::info!(
                "peers {}: a newer session with {} replaces this one (both sides connected at once)",
                self.node.sec.name,
                self.peer()
            );
            self.sess = closed(&self.sess);
            return;
        }
        if self.node.defs() != self.defs {
            tracing::info!("peers {}: replicated tables changed, restarting the session", self.node.sec.name);
            self.sess = closed(&self.sess);
            return;
        }
        if !self.node.resynced.load(Ordering::Relaxed) && now.saturating_sub(self.node.started) >= RESYNC_MS {
            self.node.resynced.store(true, Ordering::Relaxed);
        }
        self.push(now, out);
        let outs = self.sess.poll(now);
        if outs.contains(&Out::Close) {
            self.node.error(self.peer(), "peer silent for too long, session dropped");
        }
        self.emit(&outs, out);
    }

    /// Whether a table has local changes this session has not pushed.
    fn unpushed(&self) -> bool {
        let tables = self.node.proxy.active.load().rt.tables.clone();
        self.defs
            .iter()
            .zip(&self.cursors)
            .any(|(def, c)| tables.find(&def.name).is_some_and(|t| lock(t).last_update() != c.pushed))
    }

    /// Sends the entries changed locally since the last push.
    fn push(&mut self, now: u64, out: &mut Vec<u8>) {
        let tables = self.node.proxy.active.load().rt.tables.clone();
        let start = out.len();
        for (i, def) in self.defs.iter().enumerate() {
            let Some(shared) = tables.find(&def.name) else { continue };
            let mut t = lock(shared);
            if t.last_update() == self.cursors[i].pushed {
                continue;
            }
            let last = t.last_update();
            let changed = t.changed_since(self.cursors[i].pushed, now);
            self.cursors[i].pushed_up_to(last);
            if changed.is_empty() {
                continue;
            }
            if self.sess.tx_begin(i) {
                wire::definition(def, Session::local_id(i), out);
            }
            for (k, e) in changed {
                let id = self.sess.tx_update(e.update_id());
                wire::update(def, k, &e, id, false, now, &mut self.dict_tx, out);
            }
        }
        if out.len() > start {
            self.sess.note_sent(now);
        }
    }

    /// A full lesson: every live entry of every table (timed updates to 2.1 peers), then the end.
    fn teach(&mut self, now: u64, out: &mut Vec<u8>) {
        let tables = self.node.proxy.active.load().rt.tables.clone();
        let timed = self.sess.tx_timed();
        let mut n = 0;
        for (i, def) in self.defs.iter().enumerate() {
            let Some(shared) = tables.find(&def.name) else { continue };
            let mut t = lock(shared);
            t.purge(now);
            self.cursors[i].taught_up_to(t.last_update());
            self.sess.tx_begin(i);
            wire::definition(def, Session::local_id(i), out);
            for (seq, (k, e)) in t.sorted(now).into_iter().enumerate() {
                let id = self.sess.tx_update(seq as u32 + 1);
                wire::update(def, k, &e, id, timed, now, &mut self.dict_tx, out);
                n += 1;
            }
        }
        self.sess.note_sent(now);
        let up_to_date = self.node.resynced.load(Ordering::Relaxed);
        let outs = self.sess.teach_done(now, up_to_date);
        self.emit(&outs, out);
        tracing::info!("peers {}: taught {n} entries to {}", self.node.sec.name, self.peer());
    }

    /// Handles every complete message in `buf` and drops them from it.
    fn receive(&mut self, buf: &mut Vec<u8>, out: &mut Vec<u8>) {
        let now = self.node.now();
        let mut used = 0;
        while self.sess.phase() == Phase::Open {
            let (frame, n) = match next_frame(&buf[used..], DEFAULT_MAX_LEN) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    self.node.error(self.peer(), format_args!("unreadable stream: {e}"));
                    let outs = self.sess.on_stream_error(now, &e);
                    self.emit(&outs, out);
                    break;
                }
            };
            used += n;
            let msg = match Message::decode(frame) {
                Ok(m) => m,
                Err(e) => {
                    self.node
                        .error(self.peer(), format_args!("bad message {:02x} {:02x}: {e}", frame.class, frame.typ));
                    let outs = self.sess.on_decode_error(now, &frame, &e);
                    self.emit(&outs, out);
                    continue;
                }
            };
            if let Message::Switch { table_id } = &msg
                && !self.defined_ids.contains(table_id)
            {
                self.node.error(
                    self.peer(),
                    format_args!("switch to table id {table_id}, never defined: its updates are ignored"),
                );
            }
            if let Message::Definition(d) = &msg {
                if self.defined_ids.len() < MAX_TABLE_IDS {
                    self.defined_ids.insert(d.table_id);
                }
                tracing::debug!(
                    "peers {}: {} defines table {} as {:?} key type {} length {}",
                    self.node.sec.name,
                    self.peer(),
                    d.table_id,
                    String::from_utf8_lossy(d.name),
                    d.key_type,
                    d.key_len
                );
            }
            if let Message::Error(e) = &msg {
                self.node.error(self.peer(), format_args!("peer reported error {e:?}"));
            }
            let (outs, ev) = self.sess.on_message(now, &msg);
            self.emit(&outs, out);
            match ev {
                Some(Event::Apply { table, expire, .. }) => {
                    let Message::Update(u) = &msg else { continue };
                    let Some(shape) = self.sess.rx_shape() else { continue };
                    let entry = match Entry::decode(u.body, shape) {
                        Ok(e) => e,
                        Err(e) => {
                            self.node.error(self.peer(), format_args!("bad update: {e}"));
                            let outs = self.sess.on_decode_error(now, &frame, &e);
                            self.emit(&outs, out);
                            continue;
                        }
                    };
                    self.apply(table, &entry, expire, now);
                }
                Some(Event::TeachRequested) => self.teach(now, out),
                Some(Event::Learned { up_to_date }) => {
                    self.node.resynced.store(true, Ordering::Relaxed);
                    tracing::info!(
                        "peers {}: resync from {} {}",
                        self.node.sec.name,
                        self.peer(),
                        if up_to_date { "finished" } else { "partial" }
                    );
                }
                Some(Event::TeachConfirmed) => {
                    for i in 0..self.cursors.len() {
                        if self.cursors[i].lesson_confirmed() {
                            self.node.record_ack(self.idx, &self.defs[i].name, self.cursors[i].acked);
                        }
                    }
                }
                Some(Event::Acked { table, update }) => {
                    if let Some(c) = self.cursors.get_mut(table)
                        && c.ack(update)
                    {
                        self.node.record_ack(self.idx, &self.defs[table].name, update);
                    }
                }
                None => {}
            }
        }
        buf.drain(..used);
        let acks = self.sess.take_acks(now);
        self.emit(&acks, out);
    }

    fn apply(&mut self, table: usize, entry: &Entry<'_>, expire: Option<u32>, now: u64) {
        let Some(def) = self.defs.get(table) else { return };
        let active = self.node.proxy.active.load();
        let Some(shared) = active.rt.tables.find(&def.name) else { return };
        let mut t = lock(shared);
        if !wire::apply_entry(&mut t, entry, &mut self.dict_rx, expire, now) {
            tracing::debug!("peers {}: update for {} not applied (key or room)", self.node.sec.name, def.name);
        }
    }
}

/// A session marked closed, for the loop to end.
fn closed(s: &Session) -> Session {
    let mut c = s.clone();
    c.on_stream_error(0, &super::DecodeError::BadLength);
    c
}
