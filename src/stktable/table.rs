//! One live table. Entries live `expire` after their last touch, so least recently touched is
//! soonest to expire: one LRU list gives both the expiry sweep and the eviction of the oldest
//! entry when full (unless `nopurge`). Entries in use (`use=`, tracked by a session) are neither
//! purged nor evicted. Values sit in one boxed `[u32]` per entry laid out from the `store` list.
//!
//! Every change through [`EntryMut`] gives the entry a new update id (HAProxy's `update`), what a
//! peers push needs to find the changes a peer has not acknowledged.
//!
//! Entries sit in a slab that the LRU list indexes, so that a tracked entry (which stays while
//! in use) is reached again through its [`Handle`] without a key lookup, as HAProxy's stick
//! counters keep a pointer to their entry.

use super::def::{KeyKind, Stored, TableDef};
use super::key::TKey;
use crate::peers::datatype::{DataType, Encoding};
use crate::peers::freq::FreqCtr;
use lru::LruCache;
use std::sync::Arc;

/// Distinct `server_key` strings a table remembers; more (only a misbehaving peer sends them)
/// are stored as "no value".
const MAX_DICT: usize = 4096;

#[derive(Debug)]
struct Entry {
    /// Absolute expiry in ms; 0: never.
    exp: u64,
    update: u32,
    refs: u32,
    data: Box<[u32]>,
}

/// Where an entry sits, for reaching it again without a lookup while it is in use ([`EntryMut::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    idx: u32,
    generation: u32,
}

pub struct Table {
    def: TableDef,
    /// Each stored type and its word offset, by data type id.
    by_type: ByType,
    words: usize,
    /// Each key's place in `slab`, least recently touched first.
    map: LruCache<TKey, u32>,
    slab: Vec<Entry>,
    /// Per slab place, bumped when its entry goes, so that a stale [`Handle`] finds nothing.
    gens: Vec<u32>,
    /// Slab places free for reuse (their value storage kept).
    free: Vec<u32>,
    dict: Vec<Arc<str>>,
    update: u32,
    evicted: u64,
    /// Replicated tables: wakes the peers sessions at a local change.
    wake: Option<Arc<super::wake::Wake>>,
    /// Replicated tables: the local changes in update order (HAProxy's update tree), so a push
    /// visits only what changed since its cursor instead of the whole table.
    journal: Option<Journal>,
}

/// Each changed key under its latest update id, ids widened to 64 bits (`seq`, whose low 32
/// bits are the table's update id) so that the order survives the u32 wrap. A key changed again
/// leaves its older record behind; a push skips records whose entry has a newer id or is gone,
/// and the journal is rebuilt from the table once stale records outnumber live ones.
#[derive(Debug, Default)]
struct Journal {
    seq: u64,
    by_id: std::collections::BTreeMap<u64, TKey>,
}

impl Journal {
    /// Gives `key` the next id; the new update id.
    fn record(&mut self, key: TKey) -> u32 {
        self.seq += 1;
        self.by_id.insert(self.seq, key);
        self.seq as u32
    }

    /// `id`, an update id at most 2^31 before the last, as a `seq`.
    fn widen(&self, id: u32) -> Option<u64> {
        let back = (self.seq as u32).wrapping_sub(id);
        (back as i32 >= 0).then(|| self.seq.saturating_sub(u64::from(back)))
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("name", &self.def.name).field("len", &self.map.len()).finish()
    }
}

/// Each data type's place in an entry (`None`: not stored), indexed by type id: a count finds
/// its value without searching the `store` list.
type ByType = [Option<(Stored, u16)>; crate::peers::datatype::COUNT as usize];

fn by_type(store: &[Stored]) -> (ByType, usize) {
    let mut by = [None; crate::peers::datatype::COUNT as usize];
    let mut words = 0usize;
    for s in store {
        by[usize::from(s.dt.id())] = Some((*s, words as u16));
        words += s.words();
    }
    (by, words)
}

/// Where a stored value sits, shared by views and mutators.
#[derive(Clone, Copy)]
struct Layout<'a> {
    by: &'a ByType,
}

impl Layout<'_> {
    fn find(&self, dt: DataType) -> Option<(Stored, usize)> {
        let (s, off) = (*self.by.get(usize::from(dt.id()))?)?;
        Some((s, usize::from(off)))
    }

    /// The slot of element `idx` of `dt`: offset, width in words, the stored type.
    fn slot(&self, dt: DataType, idx: usize) -> Option<(Stored, usize)> {
        let (s, off) = self.find(dt)?;
        if idx >= s.count as usize {
            return None;
        }
        if idx == 0 {
            return Some((s, off));
        }
        let w = match dt.encoding() {
            Encoding::RateArray => 3,
            Encoding::UintArray => 1,
            _ => 0,
        };
        Some((s, off + idx * w))
    }
}

fn freq(d: &[u32], off: usize) -> FreqCtr {
    FreqCtr { curr_tick: d[off], curr_ctr: d[off + 1], prev_ctr: d[off + 2] }
}

fn put_freq(d: &mut [u32], off: usize, f: FreqCtr) {
    d[off] = f.curr_tick;
    d[off + 1] = f.curr_ctr;
    d[off + 2] = f.prev_ctr;
}

/// HAProxy 2.6's gpc0/gpc1 (and their rates) fall back to element 0/1 of the `gpc` array when
/// the table stores the array instead.
fn gpc_slot(l: &Layout<'_>, idx: usize, rate: bool) -> Option<(Stored, usize)> {
    let single = match (idx, rate) {
        (0, false) => Some(DataType::GPC0),
        (1, false) => Some(DataType::GPC1),
        (0, true) => Some(DataType::GPC0_RATE),
        (1, true) => Some(DataType::GPC1_RATE),
        _ => None,
    };
    single.and_then(|d| l.slot(d, 0)).or_else(|| l.slot(if rate { DataType::GPC_RATE } else { DataType::GPC }, idx))
}

impl Table {
    pub fn new(def: TableDef) -> Table {
        let (by_type, words) = by_type(&def.store);
        Table {
            def,
            by_type,
            words,
            map: LruCache::unbounded(),
            slab: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            dict: Vec::new(),
            update: 0,
            evicted: 0,
            wake: None,
            journal: None,
        }
    }

    fn layout(&self) -> Layout<'_> {
        Layout { by: &self.by_type }
    }

    /// A slab place for a new entry expiring at `exp`.
    fn alloc(&mut self, exp: u64) -> u32 {
        if let Some(i) = self.free.pop() {
            let e = &mut self.slab[i as usize];
            e.data.fill(0);
            (e.exp, e.update, e.refs) = (exp, 0, 0);
            return i;
        }
        let data = vec![0u32; self.words].into_boxed_slice();
        self.slab.push(Entry { exp, update: 0, refs: 0, data });
        self.gens.push(0);
        (self.slab.len() - 1) as u32
    }

    /// Gives back the place of an entry that left the map.
    fn release_slot(&mut self, i: u32) {
        self.gens[i as usize] = self.gens[i as usize].wrapping_add(1);
        self.free.push(i);
    }

    pub fn def(&self) -> &TableDef {
        &self.def
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn kind(&self) -> KeyKind {
        self.def.key
    }

    /// Entries held, expired ones not yet purged included (HAProxy's `used`).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries dropped to make room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Signals `wake` at every local change (a replicated table's peers sessions).
    pub fn set_wake(&mut self, wake: std::sync::Arc<super::wake::Wake>) {
        self.wake = Some(wake);
        self.rebuild_journal();
    }

    /// The journal again from the entries' own update ids (enabling it, or dropping stale
    /// records).
    fn rebuild_journal(&mut self) {
        let seq = self.journal.as_ref().map_or(u64::from(self.update), |j| j.seq);
        let mut j = Journal { seq, by_id: Default::default() };
        for (k, &i) in self.map.iter() {
            let e = &self.slab[i as usize];
            if let Some(id) = j.widen(e.update).filter(|_| e.update != 0) {
                j.by_id.insert(id, k.clone());
            }
        }
        self.journal = Some(j);
    }

    /// The last update id given to a change.
    pub fn last_update(&self) -> u32 {
        self.update
    }

    fn live(e: &Entry, now: u64) -> bool {
        e.exp == 0 || e.exp > now || e.refs > 0
    }

    /// Drops expired entries that nobody uses, from the old end; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        let mut n = 0;
        let mut skipped = 0;
        while skipped < self.map.len() {
            let Some((_, &i)) = self.map.peek_lru() else { break };
            let e = &self.slab[i as usize];
            if e.exp == 0 || e.exp > now {
                break;
            }
            if e.refs > 0 {
                // In use: it stays, and the next oldest gets its chance.
                if let Some((k, i)) = self.map.pop_lru() {
                    self.map.push(k, i);
                }
                skipped += 1;
                continue;
            }
            self.map.pop_lru();
            self.release_slot(i);
            n += 1;
        }
        n
    }

    /// Makes room for one entry: false when the table is full and may not evict (`nopurge`, or
    /// every entry in use).
    fn make_room(&mut self, now: u64) -> bool {
        if self.map.len() < self.def.size {
            return true;
        }
        self.purge(now);
        if self.map.len() < self.def.size {
            return true;
        }
        if self.def.nopurge {
            return false;
        }
        for _ in 0..self.map.len() {
            let Some((k, i)) = self.map.pop_lru() else { break };
            if self.slab[i as usize].refs == 0 {
                self.release_slot(i);
                self.evicted += 1;
                return true;
            }
            self.map.push(k, i);
        }
        false
    }

    /// Finds or creates the entry for `key` and refreshes its expiry (HAProxy's lookup-or-create
    /// then touch, what `track-sc` and `set table` do). None: the table is full and may not evict.
    pub fn touch<'a>(&'a mut self, key: &'a TKey, now: u64) -> Option<EntryMut<'a>> {
        let exp = self.exp_from(now);
        // One lookup, which also makes the entry the most recent.
        let (i, fresh) = match self.map.get(key).copied() {
            Some(i) => {
                let e = &mut self.slab[i as usize];
                let fresh = !Self::live(e, now);
                if fresh {
                    e.data.fill(0);
                }
                e.exp = exp;
                (i, fresh)
            }
            None => {
                if !self.make_room(now) {
                    return None;
                }
                let i = self.alloc(exp);
                self.map.push(key.clone(), i);
                (i, true)
            }
        };
        Some(self.entry_mut(i, key, now, fresh))
    }

    /// Write access to the entry at slab place `i` (whose key is `key`).
    fn entry_mut<'a>(&'a mut self, i: u32, key: &'a TKey, now: u64, dirty: bool) -> EntryMut<'a> {
        let handle = Handle { idx: i, generation: self.gens[i as usize] };
        EntryMut {
            l: Layout { by: &self.by_type },
            e: &mut self.slab[i as usize],
            handle,
            dict: &mut self.dict,
            update: &mut self.update,
            now,
            dirty,
            quiet: false,
            wake: self.wake.as_deref(),
            journal: self.journal.as_mut().map(|j| (j, key)),
        }
    }

    /// The entry `h` was taken from, to change, if it is still there (an entry in use always
    /// is): no lookup and no expiry refresh. `key` is the entry's key, for the journal.
    pub fn held_mut<'a>(&'a mut self, h: Handle, key: &'a TKey, now: u64) -> Option<EntryMut<'a>> {
        // A place's generation moves on when its entry goes, so a match is the same entry.
        if self.gens.get(h.idx as usize) != Some(&h.generation) {
            return None;
        }
        Some(self.entry_mut(h.idx, key, now, false))
    }

    /// A tracker lets go of the entry `h` was taken from (key `key`): `conn_cur` down, which
    /// is a change, and its use count down, which is not. Nothing when the entry is gone.
    pub fn unhold(&mut self, h: Handle, key: &TKey) {
        if self.gens.get(h.idx as usize) != Some(&h.generation) {
            return;
        }
        if self.by_type[usize::from(DataType::CONN_CUR.id())].is_some() {
            let mut e = self.entry_mut(h.idx, key, 0, false);
            e.conn_close();
            e.release();
            return;
        }
        let e = &mut self.slab[h.idx as usize];
        e.refs = e.refs.saturating_sub(1);
    }

    /// The entry `h` was taken from, to read, if it is still there ([`Table::held_mut`]
    /// without the means to change it).
    pub fn held(&self, h: Handle, now: u64) -> Option<EntryView<'_>> {
        if self.gens.get(h.idx as usize) != Some(&h.generation) {
            return None;
        }
        Some(EntryView { l: self.layout(), e: &self.slab[h.idx as usize], dict: &self.dict, now })
    }

    fn exp_from(&self, now: u64) -> u64 {
        match self.def.expire_ms() {
            0 => 0,
            x => now.saturating_add(x).max(1),
        }
    }

    /// The live entry for `key`, without touching it.
    pub fn get(&self, key: &TKey, now: u64) -> Option<EntryView<'_>> {
        let e = self.map.peek(key).map(|&i| &self.slab[i as usize]).filter(|e| Self::live(e, now))?;
        Some(EntryView { l: self.layout(), e, dict: &self.dict, now })
    }

    /// The live entry for `key` to change, without refreshing its expiry.
    pub fn get_mut<'a>(&'a mut self, key: &'a TKey, now: u64) -> Option<EntryMut<'a>> {
        let i = *self.map.peek(key)?;
        if !Self::live(&self.slab[i as usize], now) {
            return None;
        }
        Some(self.entry_mut(i, key, now, false))
    }

    /// Sets an entry's remaining lifetime (a peer's timed update): `ms` from `now`.
    pub fn set_expire_in(&mut self, key: &TKey, now: u64, ms: u64) {
        if let Some(&i) = self.map.peek(key) {
            self.slab[i as usize].exp = now.saturating_add(ms).max(1);
        }
    }

    /// Live entries changed locally after update `since` (wrapping order), oldest change first.
    /// One pass over the table and a sort of the changed ones only: peers call this every push
    /// tick, and sorting a million entries by key each time stalled the sender.
    pub fn changed_since(&mut self, since: u32, now: u64) -> Vec<(&TKey, EntryView<'_>)> {
        if let Some(j) = &self.journal
            && j.by_id.len() > 2 * self.map.len() + 1024
        {
            self.rebuild_journal();
        }
        let last = self.update;
        let l = self.layout();
        if let Some(j) = &self.journal {
            let Some(from) = j.widen(since) else { return Vec::new() };
            return j
                .by_id
                .range(from + 1..)
                .filter_map(|(&id, k)| {
                    let e = &self.slab[*self.map.peek(k)? as usize];
                    (e.update == id as u32 && Self::live(e, now))
                        .then_some((k, EntryView { l, e, dict: &self.dict, now }))
                })
                .collect();
        }
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, &i)| (k, &self.slab[i as usize]))
            .filter(|(_, e)| {
                let id = e.update;
                id != 0 && id.wrapping_sub(since) as i32 > 0 && last.wrapping_sub(id) as i32 >= 0 && Self::live(e, now)
            })
            .map(|(k, e)| (k, EntryView { l, e, dict: &self.dict, now }))
            .collect();
        v.sort_by_key(|(_, e)| e.update_id().wrapping_sub(since));
        v
    }

    /// Removes `key` unless it is in use; whether it was removed.
    pub fn remove(&mut self, key: &TKey) -> bool {
        if let Some(&i) = self.map.peek(key)
            && self.slab[i as usize].refs == 0
        {
            self.map.pop(key);
            self.release_slot(i);
            return true;
        }
        false
    }

    /// Removes every unused entry `drop` selects (and expired ones); how many.
    pub fn remove_if(&mut self, now: u64, mut drop: impl FnMut(&TKey, &EntryView<'_>) -> bool) -> usize {
        let layout = Layout { by: &self.by_type };
        let doomed: Vec<TKey> = self
            .map
            .iter()
            .map(|(k, &i)| (k, &self.slab[i as usize]))
            .filter(|(_, e)| e.refs == 0)
            .filter(|(k, e)| !Self::live(e, now) || drop(k, &EntryView { l: layout, e, dict: &self.dict, now }))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &doomed {
            if let Some(i) = self.map.pop(k) {
                self.release_slot(i);
            }
        }
        doomed.len()
    }

    /// Live entries in HAProxy's tree order (what `show table` lists).
    pub fn sorted(&self, now: u64) -> Vec<(&TKey, EntryView<'_>)> {
        let l = self.layout();
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, &i)| (k, &self.slab[i as usize]))
            .filter(|(_, e)| Self::live(e, now))
            .map(|(k, e)| (k, EntryView { l, e, dict: &self.dict, now }))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Rough bytes held per entry (key, values, list and map overhead), for sizing.
    pub fn entry_bytes(&self) -> usize {
        // The map's value and the slab's generation: 4 bytes each.
        std::mem::size_of::<TKey>() + std::mem::size_of::<Entry>() + 8 + self.words * 4 + 48
    }
}

/// Read access to one entry at `now`.
#[derive(Clone, Copy)]
pub struct EntryView<'a> {
    l: Layout<'a>,
    e: &'a Entry,
    dict: &'a [Arc<str>],
    now: u64,
}

impl<'a> EntryView<'a> {
    /// Sessions tracking the entry (`use=`).
    pub fn use_count(&self) -> u32 {
        self.e.refs
    }

    /// Milliseconds left (`exp=`); 0 without expiry or when due.
    pub fn expires_in(&self) -> u64 {
        if self.e.exp == 0 { 0 } else { self.e.exp.saturating_sub(self.now) }
    }

    pub fn update_id(&self) -> u32 {
        self.e.update
    }

    /// The entry's address, which `show table` prints as its identity.
    pub fn addr(&self) -> usize {
        self.e as *const Entry as usize
    }

    /// Whether the table stores `dt`.
    pub fn has(&self, dt: DataType) -> bool {
        self.l.find(dt).is_some()
    }

    /// Element `idx` (0 for plain types) of `dt` as a number: counters as stored, rates as
    /// events per period over the sliding window, server_id signed; None when not stored (or
    /// server_key, which is text).
    pub fn read(&self, dt: DataType, idx: usize) -> Option<i64> {
        let (s, off) = self.l.slot(dt, idx)?;
        let d = &self.e.data;
        Some(match dt.encoding() {
            Encoding::Signed => i64::from(d[off] as i32),
            Encoding::Uint | Encoding::UintArray => i64::from(d[off]),
            Encoding::Ull => (u64::from(d[off]) | (u64::from(d[off + 1]) << 32)) as i64,
            Encoding::Rate | Encoding::RateArray => i64::from(freq(d, off).read(self.now as u32, s.period)),
            Encoding::Dict => return None,
        })
    }

    /// The raw counter behind a rate (for a peer update's snapshot).
    pub fn freq(&self, dt: DataType, idx: usize) -> Option<FreqCtr> {
        let (_, off) = self.l.slot(dt, idx).filter(|_| dt.is_rate())?;
        Some(freq(&self.e.data, off))
    }

    pub fn server_id(&self) -> Option<i32> {
        self.read(DataType::SERVER_ID, 0).map(|v| v as i32)
    }

    /// The server name stored with the server id (`server_key`), if any.
    pub fn server_key(&self) -> Option<&'a str> {
        let (_, off) = self.l.find(DataType::SERVER_KEY)?;
        let i = self.e.data[off] as usize;
        i.checked_sub(1).and_then(|i| self.dict.get(i)).map(|s| &**s)
    }

    /// `gpc0`/`gpc1` or element `idx` of the `gpc` array (HAProxy 2.6's fallback).
    pub fn gpc(&self, idx: usize) -> Option<u32> {
        let (_, off) = gpc_slot(&self.l, idx, false)?;
        Some(self.e.data[off])
    }

    pub fn gpc_rate(&self, idx: usize) -> Option<u32> {
        let (s, off) = gpc_slot(&self.l, idx, true)?;
        Some(freq(&self.e.data, off).read(self.now as u32, s.period))
    }

    /// `gpt0` or element `idx` of the `gpt` array.
    pub fn gpt(&self, idx: usize) -> Option<u32> {
        let (_, off) = (if idx == 0 { self.l.slot(DataType::GPT0, 0) } else { None })
            .or_else(|| self.l.slot(DataType::GPT, idx))?;
        Some(self.e.data[off])
    }
}

/// Write access to one entry at `now`; dropping it after a change gives the entry a new update id.
pub struct EntryMut<'a> {
    l: Layout<'a>,
    e: &'a mut Entry,
    handle: Handle,
    dict: &'a mut Vec<Arc<str>>,
    update: &'a mut u32,
    /// A replicated table's journal, and the entry's key to record in it (cloned only when the
    /// entry did change: most calls on a tracked entry read or change nothing).
    journal: Option<(&'a mut Journal, &'a TKey)>,
    now: u64,
    dirty: bool,
    /// A peer's update: the entry keeps its update id and wakes nobody (not pushed on).
    quiet: bool,
    wake: Option<&'a super::wake::Wake>,
}

impl Drop for EntryMut<'_> {
    /// Inlined down to the test: most entries taken are only read (a tracked request's fetch).
    #[inline]
    fn drop(&mut self) {
        if self.dirty && !self.quiet {
            self.commit();
        }
    }
}

impl EntryMut<'_> {
    /// A change: the entry's new update id, in the journal, and the peers woken.
    #[inline(never)]
    fn commit(&mut self) {
        *self.update = match self.journal.take() {
            Some((j, key)) => j.record(key.clone()),
            None => self.update.wrapping_add(1),
        };
        self.e.update = *self.update;
        if let Some(w) = self.wake {
            w.signal();
        }
    }

    /// Marks the changes as a peer's (HAProxy's touch_remote): no new update id, so they are
    /// not pushed back, and the table's last update id stays, so no session wakes for them.
    pub fn remote(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Where the entry sits, to reach it again with [`Table::held_mut`] while it is in use.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    pub fn view(&self) -> EntryView<'_> {
        EntryView { l: self.l, e: self.e, dict: self.dict, now: self.now }
    }

    /// Adds `n` to a counter or `n` events to a rate (element `idx` of arrays); false when the
    /// table does not store it.
    pub fn add(&mut self, dt: DataType, idx: usize, n: u64) -> bool {
        let Some((s, off)) = self.l.slot(dt, idx) else { return false };
        self.add_at(s, off, n);
        true
    }

    fn add_at(&mut self, s: Stored, off: usize, n: u64) {
        let d = &mut self.e.data;
        match s.dt.encoding() {
            Encoding::Uint | Encoding::UintArray => d[off] = d[off].wrapping_add(n as u32),
            Encoding::Ull => {
                let v = (u64::from(d[off]) | (u64::from(d[off + 1]) << 32)).wrapping_add(n);
                d[off] = v as u32;
                d[off + 1] = (v >> 32) as u32;
            }
            Encoding::Rate | Encoding::RateArray => {
                let mut f = freq(d, off);
                f.update(self.now as u32, s.period, n as u32);
                put_freq(d, off, f);
            }
            Encoding::Signed | Encoding::Dict => return,
        }
        self.dirty = true;
    }

    fn inc2(&mut self, cnt: DataType, rate: DataType, n: u64) {
        self.add(cnt, 0, n);
        self.add(rate, 0, n);
    }

    /// A new connection: conn_cnt, conn_rate and conn_cur.
    pub fn conn_open(&mut self) {
        self.inc2(DataType::CONN_CNT, DataType::CONN_RATE, 1);
        self.add(DataType::CONN_CUR, 0, 1);
    }

    /// A tracked connection ended: conn_cur down (never below 0).
    pub fn conn_close(&mut self) {
        if let Some((_, off)) = self.l.slot(DataType::CONN_CUR, 0) {
            self.e.data[off] = self.e.data[off].saturating_sub(1);
            self.dirty = true;
        }
    }

    pub fn inc_sess(&mut self) {
        self.inc2(DataType::SESS_CNT, DataType::SESS_RATE, 1);
    }

    pub fn inc_http_req(&mut self) {
        self.inc2(DataType::HTTP_REQ_CNT, DataType::HTTP_REQ_RATE, 1);
    }

    pub fn inc_http_err(&mut self) {
        self.inc2(DataType::HTTP_ERR_CNT, DataType::HTTP_ERR_RATE, 1);
    }

    pub fn inc_http_fail(&mut self) {
        self.inc2(DataType::HTTP_FAIL_CNT, DataType::HTTP_FAIL_RATE, 1);
    }

    pub fn add_bytes_in(&mut self, n: u64) {
        self.inc2(DataType::BYTES_IN_CNT, DataType::BYTES_IN_RATE, n);
    }

    pub fn add_bytes_out(&mut self, n: u64) {
        self.inc2(DataType::BYTES_OUT_CNT, DataType::BYTES_OUT_RATE, n);
    }

    /// `sc-inc-gpc0` (idx 0), `sc-inc-gpc1` (idx 1), `sc-inc-gpc(idx,..)`: the counter and its
    /// rate; the new counter value, None when neither is stored.
    pub fn inc_gpc(&mut self, idx: usize) -> Option<u32> {
        let c = gpc_slot(&self.l, idx, false);
        let r = gpc_slot(&self.l, idx, true);
        if let Some((s, off)) = r {
            self.add_at(s, off, 1);
        }
        let (s, off) = c?;
        self.add_at(s, off, 1);
        Some(self.e.data[off])
    }

    /// `sc-clr-gpc0/1` and `sc_clr_gpc(idx)`: zero the counter, returning the old value.
    pub fn clr_gpc(&mut self, idx: usize) -> Option<u32> {
        let (_, off) = gpc_slot(&self.l, idx, false)?;
        self.dirty = true;
        Some(std::mem::take(&mut self.e.data[off]))
    }

    /// `sc-set-gpt0` (idx 0) / `sc-set-gpt(idx,..)`.
    pub fn set_gpt(&mut self, idx: usize, v: u32) -> bool {
        let slot =
            (if idx == 0 { self.l.slot(DataType::GPT0, 0) } else { None }).or_else(|| self.l.slot(DataType::GPT, idx));
        let Some((_, off)) = slot else { return false };
        self.e.data[off] = v;
        self.dirty = true;
        true
    }

    /// What a stick rule stores: the server's numeric id and its name.
    pub fn set_server(&mut self, id: i32, name: Option<&str>) {
        if let Some((_, off)) = self.l.slot(DataType::SERVER_ID, 0) {
            self.e.data[off] = id as u32;
            self.dirty = true;
        }
        let Some((_, off)) = self.l.slot(DataType::SERVER_KEY, 0) else { return };
        let idx = match name {
            None => 0,
            Some(n) => match self.dict.iter().position(|s| &**s == n) {
                Some(i) => i + 1,
                None if self.dict.len() < MAX_DICT => {
                    self.dict.push(n.into());
                    self.dict.len()
                }
                None => 0,
            },
        };
        self.e.data[off] = idx as u32;
        self.dirty = true;
    }

    /// `set table ... data.TYPE VALUE` as HAProxy 2.6 does it: counters take the value cut to
    /// their width; a rate restarts its period now with VALUE events and no history; arrays
    /// take element 0. False when the type is not stored or not settable (server_key).
    pub fn set_value(&mut self, dt: DataType, v: i64) -> bool {
        let Some((_, off)) = self.l.slot(dt, 0) else { return false };
        let d = &mut self.e.data;
        match dt.encoding() {
            Encoding::Signed | Encoding::Uint | Encoding::UintArray => d[off] = v as u32,
            Encoding::Ull => {
                d[off] = v as u32;
                d[off + 1] = ((v as u64) >> 32) as u32;
            }
            Encoding::Rate | Encoding::RateArray => {
                put_freq(d, off, FreqCtr { curr_tick: (self.now as u32) & !1, curr_ctr: v as u32, prev_ctr: 0 })
            }
            Encoding::Dict => return false,
        }
        self.dirty = true;
        true
    }

    /// Sets element `idx` of a counter array (or a plain counter at 0), as a peer sends it.
    pub fn set_at(&mut self, dt: DataType, idx: usize, v: u64) -> bool {
        let Some((_, off)) = self.l.slot(dt, idx) else { return false };
        match dt.encoding() {
            Encoding::Uint | Encoding::UintArray => self.e.data[off] = v as u32,
            Encoding::Ull => {
                self.e.data[off] = v as u32;
                self.e.data[off + 1] = (v >> 32) as u32;
            }
            _ => return false,
        }
        self.dirty = true;
        true
    }

    /// Writes a rate counter as received from a peer.
    pub fn set_freq(&mut self, dt: DataType, idx: usize, f: FreqCtr) -> bool {
        let Some((_, off)) = self.l.slot(dt, idx).filter(|_| dt.is_rate()) else { return false };
        put_freq(&mut self.e.data, off, f);
        self.dirty = true;
        true
    }

    /// A session starts tracking the entry: it is kept until released.
    pub fn acquire(&mut self) {
        self.e.refs = self.e.refs.saturating_add(1);
    }

    pub fn release(&mut self) {
        self.e.refs = self.e.refs.saturating_sub(1);
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
