//! One peers session as a pure state machine (peers.md §1, §5, §8-§10): handshake verdicts,
//! which table the received updates belong to and their ids, the acks owed, resync requests and
//! answers, heartbeats and the dead-peer check. It takes decoded messages and `now` (ms) and
//! says what to send and what to apply; sockets, the tables and the choice of which peer to
//! learn from stay with the caller.

use std::collections::BTreeMap;

use super::codec::{Ack, Control, Definition, ErrorCode, Frame, Message, TYPE_DEFINE, TYPE_SWITCH, Update};
use super::entry::{KeyType, Shape};
use super::error::{DecodeError, Disposition};
use super::handshake::{HelloCheck, Status, Version};

/// Silence after which a heartbeat is sent.
pub const HEARTBEAT_MS: u64 = 3000;
/// Window of the dead-peer check: a window without any message received closes the session,
/// so a silent peer is dropped 5 to 10 s after its last message.
pub const ALIVE_WINDOW_MS: u64 = 5000;

/// A local table, as definitions are matched against it: by name, key type and key length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTable {
    pub name: String,
    pub key_type: KeyType,
    /// As sent in definitions: 4, 16, configured length + 1 for strings, length for binary.
    pub key_len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Callee: waiting for the hello.
    AwaitHello,
    /// Caller: hello sent, waiting for the status line.
    AwaitStatus,
    Open,
    Closed,
}

/// What the session wants sent, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Status(Status),
    Control(Control),
    Ack(Ack),
    Error(ErrorCode),
    /// Close the connection after what precedes.
    Close,
}

impl Out {
    /// Appends the wire form (nothing for `Close`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Out::Status(s) => out.extend_from_slice(s.line().as_bytes()),
            Out::Control(c) => Message::Control(*c).encode(out),
            Out::Ack(a) => Message::Ack(*a).encode(out),
            Out::Error(e) => Message::Error(*e).encode(out),
            Out::Close => {}
        }
    }
}

/// What a received message means for the tables and the resync logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Apply this update (decode its body with [`Session::rx_shape`]) to local table `table`.
    Apply { table: usize, id: u32, expire: Option<u32> },
    /// The peer asks for everything: teach it, then call [`Session::teach_done`].
    TeachRequested,
    /// The peer confirmed the end of our lesson.
    TeachConfirmed,
    /// Our resync request was answered: finished (peer was up to date) or partial.
    Learned { up_to_date: bool },
    /// The peer has everything of local table `table` up to `update`.
    Acked { table: usize, update: u32 },
}

#[derive(Debug, Clone)]
struct RxTable {
    remote_id: u64,
    local: usize,
    shape: Shape,
}

/// State of one session.
#[derive(Debug, Clone)]
pub struct Session {
    tables: Vec<LocalTable>,
    phase: Phase,
    version: Version,
    want_resync: bool,
    learning: bool,
    teaching: bool,
    last_rx_window_start: u64,
    alive: bool,
    last_tx: u64,
    /// Definitions received, by the sender's table id.
    defined: BTreeMap<u64, RxTable>,
    current: Option<u64>,
    last_get: BTreeMap<usize, u32>,
    last_acked: BTreeMap<usize, u32>,
    tx_table: Option<usize>,
    tx_first: bool,
    last_pushed: BTreeMap<usize, u32>,
}

impl Session {
    fn new(tables: Vec<LocalTable>, phase: Phase, now: u64, want_resync: bool) -> Session {
        Session {
            tables,
            phase,
            version: super::handshake::VERSION,
            want_resync,
            learning: false,
            teaching: false,
            last_rx_window_start: now,
            alive: false,
            last_tx: now,
            defined: BTreeMap::new(),
            current: None,
            last_get: BTreeMap::new(),
            last_acked: BTreeMap::new(),
            tx_table: None,
            tx_first: true,
            last_pushed: BTreeMap::new(),
        }
    }

    /// An accepted connection, waiting for the hello. `want_resync`: ask this peer for a full
    /// resync once the session is up.
    pub fn callee(tables: Vec<LocalTable>, now: u64, want_resync: bool) -> Session {
        Session::new(tables, Phase::AwaitHello, now, want_resync)
    }

    /// An outgoing connection whose hello (announcing `version`) has been sent.
    pub fn caller(tables: Vec<LocalTable>, now: u64, want_resync: bool, version: Version) -> Session {
        Session { version, ..Session::new(tables, Phase::AwaitStatus, now, want_resync) }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The protocol version in use (2.0 after a downgrade): timed updates need 2.1.
    pub fn version(&self) -> Version {
        self.version
    }

    pub fn is_teaching(&self) -> bool {
        self.teaching
    }

    fn open(&mut self, now: u64, mut out: Vec<Out>) -> Vec<Out> {
        self.phase = Phase::Open;
        self.last_tx = now;
        self.last_rx_window_start = now;
        self.alive = true;
        if self.want_resync {
            self.want_resync = false;
            self.learning = true;
            out.push(Out::Control(Control::ResyncRequest));
        }
        self.sent(now, out)
    }

    fn sent(&mut self, now: u64, out: Vec<Out>) -> Vec<Out> {
        if out.iter().any(|o| !matches!(o, Out::Close)) {
            self.last_tx = now;
        }
        if out.contains(&Out::Close) {
            self.phase = Phase::Closed;
        }
        out
    }

    /// Callee: the verdict of [`super::handshake::check_hello`]. On success the status is
    /// followed by a heartbeat, which keeps a 2.6 peer from dropping a session it accepted
    /// while its own connect was pending (peers.md §10).
    pub fn on_hello(&mut self, now: u64, check: &HelloCheck<'_>) -> Vec<Out> {
        match check {
            HelloCheck::Incomplete => Vec::new(),
            HelloCheck::Reject(s) => self.sent(now, vec![Out::Status(*s), Out::Close]),
            HelloCheck::Accept { hello, .. } => {
                self.version = hello.version;
                self.open(now, vec![Out::Status(Status::Success), Out::Control(Control::Heartbeat)])
            }
        }
    }

    /// Caller: the status code read. Anything but 200 closes; 502 tells the caller to announce
    /// [`super::handshake::VERSION_DOWNGRADED`] next time (see [`Session::wants_downgrade`]).
    pub fn on_status(&mut self, now: u64, code: u32) -> Vec<Out> {
        if code == u32::from(Status::Success.code()) {
            return self.open(now, Vec::new());
        }
        self.sent(now, vec![Out::Close])
    }

    /// Whether a refused hello asks for the 2.0 announcement on the next attempt.
    pub fn wants_downgrade(code: u32) -> bool {
        code == u32::from(Status::ErrVersion.code())
    }

    /// A frame whose payload did not decode: 2.6's answer.
    pub fn on_decode_error(&mut self, now: u64, frame: &Frame<'_>, err: &DecodeError) -> Vec<Out> {
        self.alive = true;
        match err.disposition() {
            Disposition::ProtocolError => self.sent(now, vec![Out::Error(ErrorCode::Protocol), Out::Close]),
            Disposition::SizeLimit => self.sent(now, vec![Out::Error(ErrorCode::SizeLimit), Out::Close]),
            Disposition::Ignore => {
                if frame.typ == TYPE_DEFINE || frame.typ == TYPE_SWITCH {
                    self.current = None;
                }
                Vec::new()
            }
        }
    }

    /// A framing error ([`super::next_frame`] failed): the stream cannot be followed any more.
    pub fn on_stream_error(&mut self, now: u64, err: &DecodeError) -> Vec<Out> {
        let code = if err.disposition() == Disposition::SizeLimit { ErrorCode::SizeLimit } else { ErrorCode::Protocol };
        self.sent(now, vec![Out::Error(code), Out::Close])
    }

    /// A decoded message. Acks for applied updates are owed until [`Session::take_acks`].
    pub fn on_message(&mut self, now: u64, msg: &Message<'_>) -> (Vec<Out>, Option<Event>) {
        self.alive = true;
        match msg {
            Message::Control(Control::ResyncRequest) => {
                self.teaching = true;
                (Vec::new(), Some(Event::TeachRequested))
            }
            Message::Control(c @ (Control::ResyncFinished | Control::ResyncPartial)) => {
                let ev = std::mem::take(&mut self.learning)
                    .then_some(Event::Learned { up_to_date: *c == Control::ResyncFinished });
                (self.sent(now, vec![Out::Control(Control::ResyncConfirm)]), ev)
            }
            Message::Control(Control::ResyncConfirm) => {
                let was = std::mem::take(&mut self.teaching);
                (Vec::new(), was.then_some(Event::TeachConfirmed))
            }
            Message::Control(Control::Heartbeat) | Message::Error(_) => (Vec::new(), None),
            Message::Definition(d) => {
                self.on_definition(d);
                (Vec::new(), None)
            }
            Message::Switch { table_id } => {
                self.current = self.defined.contains_key(table_id).then_some(*table_id);
                (Vec::new(), None)
            }
            Message::Ack(a) => {
                // A 2.6 teacher ignores acks while teaching (peers.md §9.2).
                let table =
                    usize::try_from(a.table_id).ok().and_then(|i| i.checked_sub(1)).filter(|&i| i < self.tables.len());
                match table {
                    Some(table) if !self.teaching => (Vec::new(), Some(Event::Acked { table, update: a.update })),
                    _ => (Vec::new(), None),
                }
            }
            Message::Update(u) => (Vec::new(), self.on_update(u)),
        }
    }

    fn on_definition(&mut self, d: &Definition<'_>) {
        self.defined.remove(&d.table_id);
        self.current = None;
        let Some(local) = self
            .tables
            .iter()
            .position(|t| t.name.as_bytes() == d.name && t.key_type as u64 == d.key_type && t.key_len == d.key_len)
        else {
            return;
        };
        let Ok(shape) = Shape::from_definition(d) else { return };
        self.defined.retain(|_, t| t.local != local);
        self.defined.insert(d.table_id, RxTable { remote_id: d.table_id, local, shape });
        self.current = Some(d.table_id);
    }

    fn on_update(&mut self, u: &Update<'_>) -> Option<Event> {
        let t = self.defined.get(&self.current?)?;
        let last = self.last_get.entry(t.local).or_default();
        let id = u.id.unwrap_or_else(|| last.wrapping_add(1));
        *last = id;
        Some(Event::Apply { table: t.local, id, expire: u.expire })
    }

    /// Shape of the current received table, for [`super::Entry::decode`].
    pub fn rx_shape(&self) -> Option<&Shape> {
        self.defined.get(&self.current?).map(|t| &t.shape)
    }

    /// One cumulative ack per table whose last received id differs from the last one acked
    /// (as 2.6: updates repeating known ids are not acked again), carrying the sender's table
    /// id; call after the messages of one read have been processed.
    pub fn take_acks(&mut self, now: u64) -> Vec<Out> {
        let mut acks = Vec::new();
        for (&local, &update) in &self.last_get {
            if self.last_acked.get(&local) == Some(&update) {
                continue;
            }
            if let Some(t) = self.defined.values().find(|t| t.local == local) {
                acks.push(Out::Ack(Ack { table_id: t.remote_id, update }));
                self.last_acked.insert(local, update);
            }
        }
        self.sent(now, acks)
    }

    /// The table id this node announces for local table `table` (acks come back with it).
    pub fn local_id(table: usize) -> u64 {
        table as u64 + 1
    }

    /// End of the lesson asked by the peer: finished if we were up to date ourselves.
    pub fn teach_done(&mut self, now: u64, up_to_date: bool) -> Vec<Out> {
        let c = if up_to_date { Control::ResyncFinished } else { Control::ResyncPartial };
        self.sent(now, vec![Out::Control(c)])
    }

    /// Before sending updates of local table `table`: whether its definition must go first (a
    /// 2.6 sender repeats it whenever it moves to another table). Starts a batch: its first
    /// update carries an explicit id.
    pub fn tx_begin(&mut self, table: usize) -> bool {
        self.tx_first = true;
        let switch = self.tx_table != Some(table);
        self.tx_table = Some(table);
        switch
    }

    /// The id field of the next update `id` of the current table: `None` (incremental form)
    /// when it follows the previous one sent, else the explicit id.
    pub fn tx_update(&mut self, id: u32) -> Option<u32> {
        let table = self.tx_table.unwrap_or(0);
        let prev = self.last_pushed.insert(table, id).unwrap_or(0);
        let explicit = std::mem::take(&mut self.tx_first) || prev == 0 || id.wrapping_sub(prev) != 1;
        explicit.then_some(id)
    }

    /// Whether updates sent now take the timed forms: only lessons, only to 2.1 peers.
    pub fn tx_timed(&self) -> bool {
        self.teaching && self.version.has_timed_updates()
    }

    /// Record that something else was sent (updates, definitions) at `now`.
    pub fn note_sent(&mut self, now: u64) {
        self.last_tx = now;
    }

    /// Timers: a heartbeat after 3 s of silence; closing when a whole 5 s window passed
    /// without any message from the peer.
    pub fn poll(&mut self, now: u64) -> Vec<Out> {
        if self.phase != Phase::Open {
            return Vec::new();
        }
        while now.saturating_sub(self.last_rx_window_start) >= ALIVE_WINDOW_MS {
            if !std::mem::take(&mut self.alive) {
                return self.sent(now, vec![Out::Close]);
            }
            self.last_rx_window_start += ALIVE_WINDOW_MS;
        }
        if now.saturating_sub(self.last_tx) >= HEARTBEAT_MS {
            return self.sent(now, vec![Out::Control(Control::Heartbeat)]);
        }
        Vec::new()
    }

    /// When [`Session::poll`] next has something to do.
    pub fn next_deadline(&self) -> u64 {
        (self.last_tx + HEARTBEAT_MS).min(self.last_rx_window_start + ALIVE_WINDOW_MS)
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
