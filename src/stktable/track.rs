//! Tracked stick counters (HAProxy's `stkctr`): what `track-sc0|1|2` attaches to a session (a
//! client connection: `tcp-request` rules) or a stream (one HTTP request: `http-request`
//! rules). While tracked, an entry is in use (not purged) and counts in `conn_cur`; releasing
//! it gives both back. The counting rules follow HAProxy 2.6:
//!
//! - tracking counts a connection (`conn_cnt`, `conn_rate`, `conn_cur`);
//! - a session that passes its `tcp-request session` rules counts `sess_*` on what it tracks;
//! - each HTTP request counts `http_req_*`; the request that an `http-request track-sc` starts
//!   tracking on counts on that entry at once;
//! - 4xx answers, denies and tarpits count `http_err_*`; bytes count when the exchange ends.
//!
//! For each counter number the stream's entry is used, else the session's ([`each`]).

use super::key::TKey;
use super::registry::{Now, SharedTable, lock};
use super::table::{EntryMut, EntryView, Handle};
use crate::sample::Value;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Counters per session or stream, as HAProxy's default `tune.stick-counters`.
pub const MAX_SC: usize = 3;

struct Slot {
    table: SharedTable,
    key: TKey,
    /// The entry itself, reached without a lookup: it stays in the table while tracked.
    at: Handle,
}

impl Slot {
    /// Runs `f` on the tracked entry, or on the same key in `other` (`None` when `other` lacks
    /// it). Takes the table's lock.
    fn with<R>(&self, other: Option<&SharedTable>, now: u64, f: impl FnOnce(Option<&mut EntryMut<'_>>) -> R) -> R {
        match other.filter(|o| !Arc::ptr_eq(o, &self.table)) {
            Some(o) => f(lock(o).get_mut(&self.key, now).as_mut()),
            None => f(lock(&self.table).held_mut(self.at, &self.key, now).as_mut()),
        }
    }

    /// [`Slot::with`] for reading only.
    fn view<R>(&self, other: Option<&SharedTable>, now: u64, f: impl FnOnce(Option<EntryView<'_>>) -> R) -> R {
        match other.filter(|o| !Arc::ptr_eq(o, &self.table)) {
            Some(o) => f(lock(o).get(&self.key, now)),
            None => f(lock(&self.table).held(self.at, now)),
        }
    }
}

type Slots = [Option<Slot>; MAX_SC];

/// The entries one session or stream tracks.
#[derive(Default)]
pub struct Trackers {
    /// Boxed once something is tracked: every client connection and request has trackers,
    /// most never use them, and the slots are ~130 bytes.
    slots: Mutex<Option<Box<Slots>>>,
    /// Whether anything was tracked: most sessions and requests track nothing, and then count
    /// and release without taking a lock.
    used: AtomicBool,
}

impl std::fmt::Debug for Trackers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().as_ref().map_or(0, |s| s.iter().filter(|x| x.is_some()).count());
        f.debug_struct("Trackers").field("tracked", &n).finish()
    }
}

/// Emptied slot boxes kept per thread for the next tracking: a request whose rules track
/// (`http-request track-sc0`) boxes its stream's slots, and would allocate and free them once
/// per request.
const SPARE_SLOTS: usize = 64;

thread_local! {
    // The boxes themselves are what is kept (their allocations are the point).
    #[allow(clippy::vec_box)]
    static SPARE: std::cell::RefCell<Vec<Box<Slots>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn new_slots() -> Box<Slots> {
    SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten().unwrap_or_default()
}

/// Keeps an empty box for [`new_slots`].
fn spare(b: Box<Slots>) {
    debug_assert!(b.iter().all(Option::is_none));
    // During thread exit the list is gone: the box is simply freed.
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_SLOTS {
            s.push(b);
        }
    });
}

impl Trackers {
    fn slots(&self) -> parking_lot::MappedMutexGuard<'_, Slots> {
        parking_lot::MutexGuard::map(self.slots.lock(), |s| &mut **s.get_or_insert_with(new_slots))
    }

    /// The slots, locked, when anything was tracked.
    fn held(&self) -> Option<parking_lot::MappedMutexGuard<'_, Slots>> {
        self.used().then(|| self.slots())
    }

    pub fn is_tracked(&self, n: usize) -> bool {
        self.held().is_some_and(|s| s.get(n).is_some_and(Option::is_some))
    }

    fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// `track-sc<n>`: only the first tracking of a counter applies. Finds or creates the entry,
    /// counts a connection on it and keeps it in use; `first` then counts on it too (an
    /// `http-request` tracking counts its request). False when already tracked or the table is
    /// full.
    pub fn track(
        &self,
        n: usize,
        table: &SharedTable,
        key: TKey,
        now: &Now,
        first: impl FnOnce(&mut EntryMut<'_>),
    ) -> bool {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(n) else { return false };
        if slot.is_some() {
            return false;
        }
        let at = {
            let mut t = lock(table);
            let Some(mut e) = t.touch(&key, now.get()) else { return false };
            e.acquire();
            e.conn_open();
            first(&mut e);
            e.handle()
        };
        *slot = Some(Slot { table: table.clone(), key, at });
        self.used.store(true, Ordering::Relaxed);
        true
    }

    /// Runs `f` on the entry counter `n` tracks, or on the same key in `other` (the fetches'
    /// table argument): `Some(None)` when `other` lacks the key, `None` when nothing is tracked.
    pub fn with<R>(
        &self,
        n: usize,
        other: Option<&SharedTable>,
        now: &Now,
        f: impl FnOnce(Option<&mut EntryMut<'_>>) -> R,
    ) -> Option<R> {
        let slots = self.held()?;
        let s = slots.get(n)?.as_ref()?;
        Some(s.with(other, now.get(), f))
    }

    /// Ends the tracking: `conn_cur` down, the entries no longer in use. Idempotent.
    pub fn release(&self) {
        if !self.used.swap(false, Ordering::Relaxed) {
            return;
        }
        // Slots, then table: the order `track` and `with` lock in. Neither change reads the
        // clock.
        let mut held = self.slots.lock();
        let Some(mut slots) = held.take() else { return };
        for s in slots.iter_mut().filter_map(Option::take) {
            lock(&s.table).unhold(s.at, &s.key);
        }
        drop(held);
        spare(slots);
    }
}

impl Drop for Trackers {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs `f` once per counter number on the stream's entry, else the session's (HAProxy's
/// `stream_inc_*_ctr`). Each side's slots are locked once, the stream's first.
pub fn each(stream: Option<&Trackers>, session: &Trackers, now: &Now, mut f: impl FnMut(&mut EntryMut<'_>)) {
    let st = stream.and_then(Trackers::held);
    let se = session.held();
    if st.is_none() && se.is_none() {
        return;
    }
    let now = now.get();
    for n in 0..MAX_SC {
        let s = st.as_ref().and_then(|s| s[n].as_ref()).or_else(|| se.as_ref().and_then(|s| s[n].as_ref()));
        if let Some(s) = s {
            s.with(None, now, |e| {
                if let Some(e) = e {
                    f(e)
                }
            });
        }
    }
}

/// Runs `f` on the entry counter `n` names (the stream's, else the session's), or on its key
/// in `other`; `None` when neither tracks `n`. One slots lock on the side that tracks it.
pub fn with_sc<R>(
    stream: Option<&Trackers>,
    session: &Trackers,
    n: usize,
    other: Option<&SharedTable>,
    now: &Now,
    f: impl FnOnce(Option<&mut EntryMut<'_>>) -> R,
) -> Option<R> {
    on_sc(stream, session, n, |s| s.with(other, now.get(), f))
}

/// [`with_sc`] for reading only: the entry is not taken to change.
pub fn view_sc<R>(
    stream: Option<&Trackers>,
    session: &Trackers,
    n: usize,
    other: Option<&SharedTable>,
    now: &Now,
    f: impl FnOnce(Option<EntryView<'_>>) -> R,
) -> Option<R> {
    on_sc(stream, session, n, |s| s.view(other, now.get(), f))
}

/// Runs `f` on the slot of counter `n`, the stream's else the session's, its side locked.
fn on_sc<R>(stream: Option<&Trackers>, session: &Trackers, n: usize, f: impl FnOnce(&Slot) -> R) -> Option<R> {
    if let Some(slots) = stream.and_then(Trackers::held)
        && let Some(Some(s)) = slots.get(n)
    {
        return Some(f(s));
    }
    let slots = session.held()?;
    Some(f(slots.get(n)?.as_ref()?))
}

/// Where counts go, once per counter number: the stream's entry, else the session's (as
/// [`each`]), kept apart from the trackers so that counting can go on after the stream ends
/// (the bytes of a response body still streaming). Empty when nothing is tracked.
pub fn targets(stream: Option<&Trackers>, session: &Trackers) -> Vec<(SharedTable, TKey)> {
    let mut out = Vec::new();
    if !stream.is_some_and(Trackers::used) && !session.used() {
        return out;
    }
    let (st, se) = (stream.map(Trackers::slots), session.slots());
    for n in 0..MAX_SC {
        let s = st.as_ref().and_then(|s| s[n].as_ref()).or(se[n].as_ref());
        if let Some(s) = s {
            out.push((s.table.clone(), s.key.clone()));
        }
    }
    out
}

/// Adds an exchange's bytes (client to server, server to client) to `targets`.
pub fn add_bytes(targets: &[(SharedTable, TKey)], now: &Now, bytes_in: u64, bytes_out: u64) {
    for (table, key) in targets {
        if let Some(mut e) = lock(table).get_mut(key, now.get()) {
            e.add_bytes_in(bytes_in);
            e.add_bytes_out(bytes_out);
        }
    }
}

/// `track-sc`'s key: the expression's sample as a key of a table of `kind`. A bare `src` (the
/// usual key) goes from the address to the key without a sample in between.
pub fn key_for(
    expr: &crate::sample::SampleExpr,
    ctx: &dyn crate::sample::SampleContext,
    maps: &dyn crate::sample::Maps,
    kind: super::KeyKind,
) -> Option<TKey> {
    if expr.convs.is_empty() && matches!(expr.fetch, crate::sample::Fetch::Src) {
        return TKey::from_ip(ctx.src()?.ip(), kind);
    }
    key_of(&expr.eval(ctx, maps)?, kind)
}

/// A sample as a key of a table of `kind`, as HAProxy casts it (None: no cast, e.g. a text that
/// is no address for an `ip` table).
pub fn key_of(v: &Value, kind: super::KeyKind) -> Option<TKey> {
    use super::KeyKind as K;
    match v {
        Value::Ipv4(a) => TKey::from_ip((*a).into(), kind),
        Value::Ipv6(a) => TKey::from_ip((*a).into(), kind),
        Value::Sint(i) => TKey::from_int(*i, kind),
        Value::Bool(b) => TKey::from_int(i64::from(*b), kind),
        Value::Str(b) | Value::Bin(b) => match kind {
            K::String { .. } | K::Binary { .. } => Some(TKey::from_bytes(b, kind)),
            K::Ip => {
                std::str::from_utf8(b).ok()?.trim().parse::<std::net::Ipv4Addr>().ok().map(|a| TKey::Ip(a.octets()))
            }
            _ => TKey::from_text(std::str::from_utf8(b).ok()?.trim(), kind).ok(),
        },
        Value::Meth(m) => match kind {
            K::String { .. } | K::Binary { .. } => Some(TKey::from_bytes(m.as_bytes(), kind)),
            _ => None,
        },
    }
}

/// `track-sc<sc> KEY [table T]`, its table resolved at load time.
#[derive(Debug, Clone)]
pub struct TrackRule {
    pub sc: usize,
    pub key: crate::sample::SampleExpr,
    pub table: String,
}

/// The value `sc-set-gpt0` / `sc-set-gpt` stores: an integer or a sample expression.
#[derive(Debug, Clone)]
pub enum GptValue {
    Int(i64),
    Expr(crate::sample::SampleExpr),
}

/// The stick-counter actions besides tracking.
#[derive(Debug, Clone)]
pub enum ScAction {
    /// `sc-inc-gpc0(SC)` (idx 0), `sc-inc-gpc1(SC)` (idx 1), `sc-inc-gpc(IDX,SC)`.
    IncGpc { idx: usize, sc: usize },
    /// `sc-set-gpt0(SC) VALUE` (idx 0), `sc-set-gpt(IDX,SC) VALUE`.
    SetGpt { idx: usize, sc: usize, value: GptValue },
}

impl ScAction {
    pub fn sc(&self) -> usize {
        match self {
            ScAction::IncGpc { sc, .. } | ScAction::SetGpt { sc, .. } => *sc,
        }
    }

    /// Applies the action to the entry with the value already computed (`None` when the
    /// expression gave no sample: HAProxy then leaves the entry alone).
    pub fn apply(&self, e: &mut EntryMut<'_>, value: Option<i64>) {
        match self {
            ScAction::IncGpc { idx, .. } => {
                e.inc_gpc(*idx);
            }
            ScAction::SetGpt { idx, .. } => {
                if let Some(v) = value {
                    e.set_gpt(*idx, v as u32);
                }
            }
        }
    }
}

/// A stick-counter action of any rule list.
#[derive(Debug, Clone)]
pub enum StickAction {
    Track(TrackRule),
    Sc(ScAction),
}

/// A stick-counter action as HAProxy writes it in `tcp-request` rules: `track-sc0 src [table
/// t]`, `sc-inc-gpc0(0)`, `sc-inc-gpc1(1)`, `sc-inc-gpc(IDX,SC)`, `sc-set-gpt0(0) VALUE`,
/// `sc-set-gpt(IDX,SC) VALUE`. `Ok(None)`: not one of these words. The track rule's table is
/// left empty when not given (the section's own, resolved by the caller).
pub fn parse_words(head: &str, rest: &str) -> Result<Option<StickAction>, String> {
    if let Some(n) = head.strip_prefix("track-sc") {
        let sc = sc_number(n).ok_or_else(|| format!("`{head}`: stick counter must be 0, 1 or 2"))?;
        let (key, table) = match rest.rsplit_once(" table ") {
            Some((k, t)) if !t.trim().is_empty() && !t.trim().contains(char::is_whitespace) => (k.trim(), t.trim()),
            _ => (rest.trim(), ""),
        };
        if key.is_empty() {
            return Err(format!("`{head}` needs a sample expression as key, e.g. `{head} src`"));
        }
        let key = crate::sample::SampleExpr::parse(key).map_err(|e| e.to_string())?;
        return Ok(Some(StickAction::Track(TrackRule { sc, key, table: table.to_string() })));
    }
    let (name, args) = match head.split_once('(') {
        Some((n, a)) => (n, a.strip_suffix(')').ok_or_else(|| format!("`{head}`: missing ')'"))?),
        None => (head, ""),
    };
    let nums: Vec<&str> = args.split(',').map(str::trim).collect();
    let num = |s: &str, what: &str| -> Result<usize, String> {
        s.parse::<usize>().map_err(|_| format!("`{head}`: {what} must be a number, got `{s}`"))
    };
    let sc_of = |s: &str| sc_number(s).ok_or_else(|| format!("`{head}`: stick counter must be 0, 1 or 2"));
    let idx_of = |s: &str| -> Result<usize, String> {
        let i = num(s, "the array index")?;
        if i >= super::def::MAX_ARRAY as usize {
            return Err(format!("`{head}`: array index must be 0 to {}", super::def::MAX_ARRAY - 1));
        }
        Ok(i)
    };
    let (idx, sc) = match (name, nums.as_slice()) {
        ("sc-inc-gpc0" | "sc-set-gpt0", [sc]) => (0, sc_of(sc)?),
        ("sc-inc-gpc1", [sc]) => (1, sc_of(sc)?),
        ("sc-inc-gpc" | "sc-set-gpt", [i, sc]) => (idx_of(i)?, sc_of(sc)?),
        ("sc-inc-gpc0" | "sc-inc-gpc1" | "sc-set-gpt0", _) => {
            return Err(format!("`{name}` takes the stick counter in parentheses, e.g. `{name}(0)`"));
        }
        ("sc-inc-gpc" | "sc-set-gpt", _) => {
            return Err(format!("`{name}` takes the array index and the stick counter, e.g. `{name}(0,1)`"));
        }
        _ => return Ok(None),
    };
    if name.starts_with("sc-inc") {
        if !rest.is_empty() {
            return Err(format!("`{name}` takes no value, got `{rest}`"));
        }
        return Ok(Some(StickAction::Sc(ScAction::IncGpc { idx, sc })));
    }
    Ok(Some(StickAction::Sc(ScAction::SetGpt {
        idx,
        sc,
        value: gpt_value(rest).map_err(|e| format!("`{name}`: {e}"))?,
    })))
}

/// `sc-set-gpt*`'s value: an integer, else a sample expression.
pub fn gpt_value(text: &str) -> Result<GptValue, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("needs a value (an integer or a sample expression)".into());
    }
    if let Ok(v) = text.parse::<i64>() {
        return Ok(GptValue::Int(v));
    }
    crate::sample::SampleExpr::parse(text).map(GptValue::Expr).map_err(|e| e.to_string())
}

/// Gives a stick fetch its table at load time: `src_*` and `table_*` without one read the
/// table of the section the rule is in (`owner`), as HAProxy. Err: why it cannot be honoured.
pub fn resolve_fetch(
    f: &mut crate::sample::StickFetch,
    owner: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    use crate::sample::StickSource;
    if let Some(t) = &f.table {
        return if known(t) { Ok(()) } else { Err(format!("no stick table named `{t}`")) };
    }
    if matches!(f.src, StickSource::Sc(_)) {
        return Ok(());
    }
    if !known(owner) {
        return Err(format!("this section (`{owner}`) has no stick table: give the table as the fetch's argument"));
    }
    f.table = Some(owner.to_string());
    Ok(())
}

/// [`resolve_fetch`] over expressions; the reasons of those that fail.
pub fn resolve_exprs<'a>(
    exprs: impl IntoIterator<Item = &'a mut crate::sample::SampleExpr>,
    owner: &str,
    known: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    for e in exprs {
        // `table_*` converters name their table, which must exist (HAProxy's check too).
        for t in e.conv_tables().filter(|t| !known(t)) {
            errs.push(format!("no stick table named `{t}`"));
        }
        errs.extend(e.stick_mut().and_then(|f| resolve_fetch(f, owner, known).err()));
    }
    errs
}

impl StickAction {
    /// Resolves the tables the action names (its own and its expressions' fetches).
    pub fn resolve(&mut self, owner: &str, known: &dyn Fn(&str) -> bool) -> Vec<String> {
        match self {
            StickAction::Track(t) => {
                let mut errs = resolve_exprs([&mut t.key], owner, known);
                if t.table.is_empty() {
                    t.table = owner.to_string();
                    if !known(owner) {
                        errs.push(format!("this section (`{owner}`) has no stick table: add `table NAME` to the rule"));
                    }
                } else if !known(&t.table) {
                    errs.push(format!("no stick table named `{}`", t.table));
                }
                errs
            }
            StickAction::Sc(ScAction::SetGpt { value: GptValue::Expr(e), .. }) => resolve_exprs([e], owner, known),
            StickAction::Sc(_) => Vec::new(),
        }
    }
}

fn sc_number(s: &str) -> Option<usize> {
    s.trim().parse::<usize>().ok().filter(|n| *n < MAX_SC && s.trim().len() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::datatype::DataType;
    use crate::stktable::def::parse_store;
    use crate::stktable::{KeyKind, Table, TableDef};

    fn shared(store: &[&str]) -> SharedTable {
        let store: Vec<String> = store.iter().map(|s| s.to_string()).collect();
        crate::stktable::registry::shared(Table::new(TableDef {
            name: "t".into(),
            key: KeyKind::Ip,
            size: 10,
            expire: Some(std::time::Duration::from_secs(60)),
            nopurge: false,
            peers: None,
            store: parse_store(&store).unwrap(),
        }))
    }

    fn read(t: &SharedTable, k: &TKey, dt: DataType) -> Option<i64> {
        lock(t).get(k, 0).and_then(|e| e.read(dt, 0))
    }

    #[test]
    fn tracking_counts_a_connection_until_released() {
        let t = shared(&["conn_cnt", "conn_cur", "http_req_cnt"]);
        let k = TKey::Ip([127, 0, 0, 1]);
        let now = Now::at(0);
        let (a, b) = (Trackers::default(), Trackers::default());
        assert!(a.track(0, &t, k.clone(), &now, |_| {}));
        assert!(!a.track(0, &t, k.clone(), &now, |_| {}), "only the first tracking applies");
        assert!(b.track(1, &t, k.clone(), &now, |e| e.inc_http_req()));
        assert_eq!(read(&t, &k, DataType::CONN_CUR), Some(2));
        assert_eq!(read(&t, &k, DataType::CONN_CNT), Some(2));
        assert_eq!(read(&t, &k, DataType::HTTP_REQ_CNT), Some(1));
        assert_eq!(lock(&t).get(&k, 0).unwrap().use_count(), 2);
        each(Some(&b), &a, &now, |e| e.inc_http_req());
        assert_eq!(read(&t, &k, DataType::HTTP_REQ_CNT), Some(3), "counter 0 from the session, 1 from the stream");
        b.release();
        b.release();
        assert_eq!(read(&t, &k, DataType::CONN_CUR), Some(1));
        drop(a);
        assert_eq!(read(&t, &k, DataType::CONN_CUR), Some(0));
        assert_eq!(lock(&t).get(&k, 0).unwrap().use_count(), 0);
    }

    #[test]
    fn fetches_see_the_stream_first_and_other_tables_by_key() {
        let (t, u, v) = (shared(&["conn_cur"]), shared(&["gpc0"]), shared(&["gpt0"]));
        let k = TKey::Ip([127, 0, 0, 9]);
        let now = Now::at(0);
        let (sess, stream) = (Trackers::default(), Trackers::default());
        // Which table the entry found is in: `u` stores gpc0, `t` does not.
        let in_u = |e: Option<&mut EntryMut<'_>>| e.map(|e| e.view().has(DataType::GPC0));
        assert_eq!(with_sc(Some(&stream), &sess, 0, None, &now, in_u), None, "nothing tracked");
        assert!(sess.track(0, &u, k.clone(), &now, |_| {}));
        assert_eq!(with_sc(Some(&stream), &sess, 0, None, &now, in_u), Some(Some(true)), "the session's");
        assert!(stream.track(0, &t, k.clone(), &now, |_| {}));
        assert_eq!(with_sc(Some(&stream), &sess, 0, None, &now, in_u), Some(Some(false)), "the stream's first");
        assert_eq!(with_sc(None, &sess, 0, None, &now, in_u), Some(Some(true)));
        assert_eq!(with_sc(Some(&stream), &sess, 1, None, &now, in_u), None);
        assert_eq!(sess.with(0, Some(&v), &now, |e| e.is_some()), Some(false), "key absent from the other table");
        lock(&v).touch(&k, 0);
        assert_eq!(sess.with(0, Some(&v), &now, |e| e.is_some()), Some(true));
        assert_eq!(stream.with(0, Some(&u), &now, in_u), Some(Some(true)), "the same key in the session's table");
        assert_eq!(sess.with(2, None, &now, |_| ()), None);
    }

    #[test]
    fn a_tracked_entry_is_reached_without_its_key_while_in_use() {
        let t = shared(&["conn_cur", "http_req_cnt"]);
        let k = TKey::Ip([127, 0, 0, 5]);
        let now = Now::at(0);
        let a = Trackers::default();
        assert!(a.track(0, &t, k.clone(), &now, |_| {}));
        // Purges, evictions and removals pass over an entry in use: its place stays its own.
        {
            let mut l = lock(&t);
            assert!(!l.remove(&k));
            assert_eq!(l.remove_if(u64::MAX, |_, _| true), 0);
            for n in 0..20u8 {
                l.touch(&TKey::Ip([10, 0, 0, n]), 0);
            }
            l.purge(u64::MAX);
        }
        each(None, &a, &now, |e| e.inc_http_req());
        assert_eq!(read(&t, &k, DataType::HTTP_REQ_CNT), Some(1));
        drop(a);
        assert_eq!(read(&t, &k, DataType::CONN_CUR), Some(0));
        // Once released it can go, and a new entry may take its place.
        lock(&t).purge(u64::MAX);
        assert_eq!(lock(&t).len(), 0);
    }

    #[test]
    fn tcp_action_words() {
        let t = parse_words("track-sc1", "req.hdr(x-user),lower table users").unwrap().unwrap();
        let StickAction::Track(t) = t else { panic!() };
        assert_eq!((t.sc, t.table.as_str()), (1, "users"));
        let Some(StickAction::Track(t)) = parse_words("track-sc0", "src").unwrap() else { panic!() };
        assert_eq!((t.sc, t.table.as_str()), (0, ""));
        assert!(parse_words("track-sc3", "src").is_err());
        assert!(parse_words("track-sc0", "").is_err());
        assert!(parse_words("track-sc0", "bogus_fetch").is_err());
        let a = parse_words("sc-inc-gpc1(2)", "").unwrap().unwrap();
        assert!(matches!(a, StickAction::Sc(ScAction::IncGpc { idx: 1, sc: 2 })));
        let a = parse_words("sc-inc-gpc(4,1)", "").unwrap().unwrap();
        assert!(matches!(a, StickAction::Sc(ScAction::IncGpc { idx: 4, sc: 1 })));
        let a = parse_words("sc-set-gpt0(0)", "7").unwrap().unwrap();
        assert!(matches!(a, StickAction::Sc(ScAction::SetGpt { idx: 0, sc: 0, value: GptValue::Int(7) })));
        let a = parse_words("sc-set-gpt(1,0)", "sc0_http_req_rate").unwrap().unwrap();
        assert!(matches!(a, StickAction::Sc(ScAction::SetGpt { idx: 1, sc: 0, value: GptValue::Expr(_) })));
        assert!(parse_words("sc-set-gpt0(0)", "").is_err());
        assert!(parse_words("sc-inc-gpc0", "").is_err());
        assert!(parse_words("sc-inc-gpc0(0)", "5").is_err());
        assert!(parse_words("sc-inc-gpc(100,0)", "").is_err());
        assert!(parse_words("accept", "").unwrap().is_none());
    }

    #[test]
    fn tables_are_resolved_against_the_config() {
        let known = |t: &str| t == "fe" || t == "other";
        let f = |text: &str| match crate::sample::SampleExpr::parse(text).unwrap().fetch {
            crate::sample::Fetch::Stick(s) => *s,
            _ => panic!(),
        };
        let mut a = f("src_conn_cur");
        resolve_fetch(&mut a, "fe", &known).unwrap();
        assert_eq!(a.table.as_deref(), Some("fe"));
        let mut a = f("src_conn_cur");
        assert!(resolve_fetch(&mut a, "be", &known).unwrap_err().contains("has no stick table"));
        let mut a = f("sc0_conn_cur");
        resolve_fetch(&mut a, "be", &known).unwrap();
        assert_eq!(a.table, None, "a tracked counter reads its own table");
        let mut a = f("sc_conn_cur(0,nope)");
        assert_eq!(resolve_fetch(&mut a, "fe", &known).unwrap_err(), "no stick table named `nope`");
        let Some(mut t) = parse_words("track-sc0", "src table nope").unwrap() else { panic!() };
        assert_eq!(t.resolve("fe", &known), ["no stick table named `nope`"]);
        let Some(mut t) = parse_words("track-sc0", "src").unwrap() else { panic!() };
        assert!(t.resolve("fe", &known).is_empty());
        assert!(matches!(&t, StickAction::Track(r) if r.table == "fe"));
        let Some(mut t) = parse_words("sc-set-gpt0(0)", "src_conn_cur(nope)").unwrap() else { panic!() };
        assert_eq!(t.resolve("fe", &known).len(), 1);
    }

    #[test]
    fn actions_change_the_entry() {
        let t = shared(&["gpc0", "gpt0"]);
        let k = TKey::Ip([127, 0, 0, 3]);
        let mut l = lock(&t);
        let mut e = l.touch(&k, 0).unwrap();
        ScAction::IncGpc { idx: 0, sc: 0 }.apply(&mut e, None);
        ScAction::SetGpt { idx: 0, sc: 0, value: GptValue::Int(0) }.apply(&mut e, Some(9));
        ScAction::SetGpt { idx: 0, sc: 0, value: GptValue::Int(0) }.apply(&mut e, None);
        assert_eq!((e.view().gpc(0), e.view().gpt(0)), (Some(1), Some(9)));
    }

    #[test]
    fn a_bare_src_key_is_the_src_sample_cast() {
        struct Peer(std::net::SocketAddr);
        impl crate::sample::SampleContext for Peer {
            fn src(&self) -> Option<std::net::SocketAddr> {
                Some(self.0)
            }
        }
        let maps = crate::routing::pattern::NoPatterns;
        let src = crate::sample::SampleExpr::parse("src").unwrap();
        let long = crate::sample::SampleExpr::parse("src,ipmask(32)").unwrap();
        let kinds = [
            KeyKind::Ip,
            KeyKind::Ipv6,
            KeyKind::Integer,
            KeyKind::String { len: 32 },
            KeyKind::String { len: 4 },
            KeyKind::Binary { len: 16 },
        ];
        for addr in ["10.1.2.3:5", "[2001:db8::7]:5", "[::ffff:10.9.8.7]:5"] {
            let ctx = Peer(addr.parse().unwrap());
            for kind in kinds {
                let slow = src.eval(&ctx, &maps).and_then(|v| key_of(&v, kind));
                assert_eq!(key_for(&src, &ctx, &maps, kind), slow, "{addr} {kind:?}");
            }
            // With a converter the sample goes through its cast as before.
            let slow = long.eval(&ctx, &maps).and_then(|v| key_of(&v, KeyKind::Ip));
            assert_eq!(key_for(&long, &ctx, &maps, KeyKind::Ip), slow, "{addr}");
        }
    }

    #[test]
    fn read_only_fetches_answer_as_through_the_mutable_entry() {
        let t = shared(&["conn_cur", "http_req_rate(10s)", "gpc0", "gpt0"]);
        let k = TKey::Ip([127, 0, 0, 8]);
        let now = Now::at(1000);
        let (sess, stream) = (Trackers::default(), Trackers::default());
        assert!(stream.track(0, &t, k.clone(), &now, |e| e.inc_http_req()));
        for text in
            ["sc_http_req_rate(0)", "sc0_conn_cur", "sc0_get_gpc0", "sc0_get_gpt0", "sc0_tracked", "sc0_trackers"]
        {
            let f = match crate::sample::SampleExpr::parse(text).unwrap().fetch {
                crate::sample::Fetch::Stick(f) => *f,
                _ => panic!(),
            };
            assert!(!f.writes(), "{text}");
            let by_view = view_sc(Some(&stream), &sess, 0, None, &now, |e| f.read(e));
            let by_mut = with_sc(Some(&stream), &sess, 0, None, &now, |e| f.eval(e));
            assert_eq!(by_view, by_mut, "{text}");
            assert!(by_view.flatten().is_some(), "{text}");
            assert_eq!(view_sc(Some(&stream), &sess, 1, None, &now, |e| f.read(e)), None, "{text}: untracked");
        }
        let inc = match crate::sample::SampleExpr::parse("sc0_inc_gpc0").unwrap().fetch {
            crate::sample::Fetch::Stick(f) => *f,
            _ => panic!(),
        };
        assert!(inc.writes());
    }

    #[test]
    fn samples_become_keys_as_haproxy_casts() {
        let v4 = Value::Ipv4("10.0.0.1".parse().unwrap());
        assert_eq!(key_of(&v4, KeyKind::Ip), Some(TKey::Ip([10, 0, 0, 1])));
        assert_eq!(key_of(&Value::str("10.0.0.2"), KeyKind::Ip), Some(TKey::Ip([10, 0, 0, 2])));
        assert_eq!(key_of(&Value::str("nope"), KeyKind::Ipv6), None);
        assert_eq!(key_of(&Value::str("nope"), KeyKind::Ip), None);
        assert_eq!(key_of(&Value::str("12"), KeyKind::Integer), Some(TKey::Int(12)));
        assert_eq!(key_of(&Value::Sint(7), KeyKind::Ip), None);
        assert_eq!(key_of(&Value::str("admin"), KeyKind::String { len: 3 }), Some(TKey::Str(b"adm"[..].into())));
    }
}
