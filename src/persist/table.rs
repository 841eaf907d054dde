//! What stick rules need of a stick table: the server stored for a key. The table itself is a
//! full [`crate::stktable::Table`] (the one `show table` lists), storing HAProxy's `server_id`
//! (the server's number) and `server_key` (its name); a lookup finds the server by name first,
//! so entries survive reloads that reorder servers, and by number for entries written without a
//! name (e.g. `set table ... data.server_id`).

use crate::stktable::{KeyKind, TKey, Table};
use std::net::IpAddr;
use std::time::Instant;

/// A key as a stick rule's sample gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StickKey {
    Ip(IpAddr),
    Int(i64),
    Str(Box<str>),
}

impl StickKey {
    /// The table key, or None when the table's type cannot hold it.
    pub fn to_tkey(&self, kind: KeyKind) -> Option<TKey> {
        match self {
            StickKey::Ip(a) => TKey::from_ip(*a, kind),
            StickKey::Int(v) => TKey::from_int(*v, kind),
            StickKey::Str(s) => Some(TKey::from_bytes(s.as_bytes(), kind)),
        }
    }
}

/// The server an entry designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// HAProxy's numeric server id.
    pub num: i32,
    pub name: Option<String>,
}

/// A stick rule's view of a locked table; `epoch` turns instants into the table's milliseconds.
pub struct StickTable<'a> {
    pub(super) t: &'a mut Table,
    pub(super) epoch: Instant,
}

impl StickTable<'_> {
    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The server stored for `key`, refreshing its expiry (HAProxy touches matched entries).
    pub fn get(&mut self, key: &StickKey, now: Instant) -> Option<Stuck> {
        let ms = self.ms(now);
        let k = key.to_tkey(self.t.kind())?;
        self.t.purge(ms);
        self.t.get(&k, ms)?;
        let e = self.t.touch(&k, ms)?;
        let v = e.view();
        Some(Stuck { num: v.server_id()?, name: v.server_key().map(str::to_string) })
    }

    /// Looks without touching.
    pub fn peek(&self, key: &StickKey, now: Instant) -> Option<Stuck> {
        let k = key.to_tkey(self.t.kind())?;
        let v = self.t.get(&k, self.ms(now))?;
        Some(Stuck { num: v.server_id()?, name: v.server_key().map(str::to_string) })
    }

    /// Stores or overwrites `key → server`; when full, the oldest entry makes room (unless the
    /// table is `nopurge`).
    pub fn set(&mut self, key: StickKey, num: i32, name: &str, now: Instant) {
        let ms = self.ms(now);
        let Some(k) = key.to_tkey(self.t.kind()) else { return };
        if let Some(mut e) = self.t.touch(&k, ms) {
            e.set_server(num, Some(name));
        }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Entries dropped to make room since the table was created.
    pub fn evicted(&self) -> u64 {
        self.t.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stktable::TableDef;
    use crate::stktable::def::with_server_key;
    use std::time::Duration;

    fn table(key: KeyKind, size: usize, expire: Option<Duration>) -> Table {
        Table::new(TableDef {
            name: "be".into(),
            key,
            size,
            expire,
            nopurge: false,
            peers: None,
            store: with_server_key(vec![]),
        })
    }

    fn s(v: &str) -> StickKey {
        StickKey::Str(v.into())
    }

    #[test]
    fn insert_lookup_overwrite_each_key_type() {
        let t0 = Instant::now();
        let mut st = table(KeyKind::String { len: 4 }, 10, None);
        let mut t = StickTable { t: &mut st, epoch: t0 };
        assert_eq!(t.get(&s("a"), t0), None);
        t.set(s("abcdef"), 1, "s1", t0);
        assert_eq!(t.get(&s("abcd"), t0), Some(Stuck { num: 1, name: Some("s1".into()) }), "cut to len");
        t.set(s("abcd"), 2, "s2", t0);
        assert_eq!(t.get(&s("abcd"), t0).map(|x| x.num), Some(2));
        let mut it = table(KeyKind::Integer, 10, None);
        let mut t = StickTable { t: &mut it, epoch: t0 };
        t.set(StickKey::Int(-5), 3, "s3", t0);
        assert_eq!(t.peek(&StickKey::Int(-5), t0).map(|x| x.num), Some(3));
        assert_eq!(t.get(&StickKey::Ip("127.0.0.1".parse().unwrap()), t0), None, "not an integer");
        let mut ip = table(KeyKind::Ip, 10, None);
        let mut t = StickTable { t: &mut ip, epoch: t0 };
        t.set(StickKey::Ip("127.0.0.1".parse().unwrap()), 4, "s4", t0);
        assert_eq!(t.get(&StickKey::Ip("127.0.0.1".parse().unwrap()), t0).map(|x| x.num), Some(4));
    }

    #[test]
    fn entries_expire_after_last_touch() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let mut st = table(KeyKind::String { len: 8 }, 10, Some(10 * sec));
        let mut t = StickTable { t: &mut st, epoch: t0 };
        t.set(s("a"), 1, "s1", t0);
        t.set(s("b"), 2, "s2", t0);
        assert!(t.get(&s("a"), t0 + 9 * sec).is_some(), "touch refreshes a");
        assert!(t.peek(&s("b"), t0 + 9 * sec).is_some());
        assert_eq!(t.get(&s("b"), t0 + 10 * sec), None, "b expired at 10 s");
        assert!(t.get(&s("a"), t0 + 18 * sec).is_some());
        assert_eq!(t.get(&s("a"), t0 + 28 * sec), None);
        assert!(t.is_empty());
    }

    #[test]
    fn size_bound_evicts_the_oldest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut st = table(KeyKind::String { len: 8 }, 3, Some(Duration::from_secs(60)));
        let mut t = StickTable { t: &mut st, epoch: t0 };
        t.set(s("a"), 1, "s1", t0);
        t.set(s("b"), 2, "s2", t0 + ms);
        t.set(s("c"), 3, "s3", t0 + 2 * ms);
        assert!(t.get(&s("a"), t0 + 3 * ms).is_some());
        t.set(s("d"), 4, "s4", t0 + 4 * ms);
        assert_eq!((t.len(), t.evicted()), (3, 1));
        assert_eq!(t.peek(&s("b"), t0 + 4 * ms), None);
        t.set(s("c"), 7, "s7", t0 + 5 * ms);
        assert_eq!((t.len(), t.evicted()), (3, 1), "overwriting never evicts");
    }
}
