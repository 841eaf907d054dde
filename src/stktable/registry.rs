//! The live tables, by name. A reload keeps a table (entries and all) when its definition is
//! unchanged; a changed definition starts an empty table. Time for the tables is milliseconds
//! since the registry was created, on the monotonic clock.

use super::def::TableDef;
use super::table::Table;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A live table behind parking_lot's lock: taken a few times per tracked request, where std's
/// poisoning checks cost as much as the lock itself. A panic elsewhere while holding it leaves
/// the entries usable, as std's lock taken through its poison did.
pub type SharedTable = Arc<parking_lot::Mutex<Table>>;

/// A table, shared.
pub fn shared(t: Table) -> SharedTable {
    Arc::new(parking_lot::Mutex::new(t))
}

/// Locks a table.
pub fn lock(t: &SharedTable) -> parking_lot::MutexGuard<'_, Table> {
    t.lock()
}

#[derive(Debug)]
pub struct Registry {
    epoch: Instant,
    tables: Mutex<HashMap<String, SharedTable>>,
    /// Signalled by every replicated table (`peers`) at a local change.
    wake: Arc<super::wake::Wake>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { epoch: Instant::now(), tables: Mutex::default(), wake: Arc::default() }
    }
}

/// The tables of one snapshot, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    list: Vec<SharedTable>,
    names: Vec<String>,
    /// Each table's key type (fixed for a table's life: a new `type` is a new table), so a
    /// key is built without taking the table's lock.
    kinds: Vec<super::KeyKind>,
    epoch: Option<Instant>,
    wake: Arc<super::wake::Wake>,
    /// Some table stores `bytes_in_*` or `bytes_out_*`.
    bytes: bool,
}

impl Tables {
    pub fn find(&self, name: &str) -> Option<&SharedTable> {
        self.names.iter().position(|n| n == name).map(|i| &self.list[i])
    }

    /// The table `name` and its key type.
    pub fn find_keyed(&self, name: &str) -> Option<(&SharedTable, super::KeyKind)> {
        self.names.iter().position(|n| n == name).map(|i| (&self.list[i], self.kinds[i]))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SharedTable> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The instant the tables' milliseconds count from.
    pub fn epoch(&self) -> std::time::Instant {
        self.epoch.unwrap_or_else(std::time::Instant::now)
    }

    /// What the replicated tables signal at a local change.
    pub fn wake(&self) -> &Arc<super::wake::Wake> {
        &self.wake
    }

    /// Whether an exchange's bytes can count anywhere: only then are they measured (per
    /// request: the head's size, a shared tally and a counting body).
    pub fn counts_bytes(&self) -> bool {
        self.bytes
    }

    /// Now, in the tables' milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.epoch.map_or(0, |e| e.elapsed().as_millis() as u64)
    }

    /// The tables' time for one rule pass, read at its first use.
    pub fn now(&self) -> Now {
        Now { epoch: self.epoch, ms: AtomicU64::new(UNREAD) }
    }
}

const UNREAD: u64 = u64::MAX;

/// The tables' time (ms since the registry's epoch) for one pass over a request's rules, read
/// from the clock once, at its first use: HAProxy reads its clock once per wake-up (`now_ms`),
/// so the counts, rates and expiries one pass touches all see the same time. A pass that
/// touches no table reads no clock.
#[derive(Debug)]
pub struct Now {
    epoch: Option<Instant>,
    /// An atomic only so that a rule pass's context stays `Sync`; one task reads it.
    ms: AtomicU64,
}

impl Now {
    /// A fixed time, for callers that have it already (and for tests).
    pub fn at(ms: u64) -> Now {
        Now { epoch: None, ms: AtomicU64::new(ms.min(UNREAD - 1)) }
    }

    pub fn get(&self) -> u64 {
        match self.ms.load(Ordering::Relaxed) {
            UNREAD => {
                let ms = self.epoch.map_or(0, |e| e.elapsed().as_millis() as u64).min(UNREAD - 1);
                self.ms.store(ms, Ordering::Relaxed);
                ms
            }
            ms => ms,
        }
    }
}

impl Registry {
    /// Tables for `defs`: the live one where the definition is unchanged, else a new one.
    /// Tables no longer defined are dropped.
    pub fn attach(&self, defs: &[TableDef]) -> Tables {
        let mut map = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::new();
        let mut list = Vec::with_capacity(defs.len());
        for d in defs {
            let t = map.get(&d.name).filter(|t| lock(t).def() == d).cloned().unwrap_or_else(|| {
                let mut t = Table::new(d.clone());
                if d.peers.is_some() {
                    t.set_wake(self.wake.clone());
                }
                shared(t)
            });
            next.insert(d.name.clone(), t.clone());
            list.push(t);
        }
        *map = next;
        Tables {
            list,
            names: defs.iter().map(|d| d.name.clone()).collect(),
            kinds: defs.iter().map(|d| d.key).collect(),
            epoch: Some(self.epoch),
            wake: self.wake.clone(),
            bytes: defs.iter().flat_map(|d| &d.store).any(|s| s.dt.counts_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stktable::{KeyKind, TKey};

    fn def(name: &str, size: usize) -> TableDef {
        TableDef { name: name.into(), key: KeyKind::Ip, size, expire: None, nopurge: false, peers: None, store: vec![] }
    }

    #[test]
    fn reload_keeps_unchanged_tables() {
        let r = Registry::default();
        let a = r.attach(&[def("a", 10), def("b", 10)]);
        lock(a.find("a").unwrap()).touch(&TKey::Ip([1, 2, 3, 4]), 0);
        lock(a.find("b").unwrap()).touch(&TKey::Ip([1, 2, 3, 4]), 0);
        let b = r.attach(&[def("a", 10), def("b", 20)]);
        assert_eq!(lock(b.find("a").unwrap()).len(), 1, "same definition: kept");
        assert_eq!(lock(b.find("b").unwrap()).len(), 0, "new size: a new table");
        assert!(b.find("c").is_none());
        let c = r.attach(&[def("b", 20)]);
        assert!(c.find("a").is_none());
        assert!(Arc::ptr_eq(c.find("b").unwrap(), b.find("b").unwrap()));
    }

    #[test]
    fn a_pass_reads_the_clock_once() {
        let r = Registry::default();
        let t = r.attach(&[def("a", 10)]);
        let now = t.now();
        let first = now.get();
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert_eq!(now.get(), first, "the time of the first read, not a new one");
        assert!(t.now().get() > first, "a new pass reads the clock again");
        assert_eq!(Now::at(42).get(), 42);
        assert_eq!(Tables::default().now().get(), 0, "tables without a registry: time 0, as now_ms");
    }

    #[test]
    fn bytes_are_measured_only_where_a_table_counts_them() {
        let r = Registry::default();
        let store = |s: &[&str]| {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            crate::stktable::def::parse_store(&s).unwrap()
        };
        let mut a = def("a", 10);
        a.store = store(&["http_req_rate(10s)", "conn_cur", "gpc0"]);
        let t = r.attach(std::slice::from_ref(&a));
        assert!(!t.counts_bytes());
        assert_eq!(t.find_keyed("a").map(|(_, k)| k), Some(KeyKind::Ip));
        for b in ["bytes_in_cnt", "bytes_in_rate(1s)", "bytes_out_cnt", "bytes_out_rate(1s)"] {
            let mut d = def("b", 10);
            d.store = store(&[b]);
            assert!(r.attach(&[a.clone(), d]).counts_bytes(), "{b}");
        }
    }
}
