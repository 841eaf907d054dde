//! A stick table: key → server, bounded in size, entries expiring `expire` after their last use.
//!
//! Every entry lives exactly `expire` after its last touch, so least recently touched is also
//! soonest to expire: one LRU list gives both the expiry sweep (pop from the old end while
//! expired) and HAProxy's eviction when full (drop the oldest). Time is an argument.

use lru::LruCache;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A key as the table's `type` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StickKey {
    Ip(IpAddr),
    Int(i64),
    Str(Box<str>),
}

/// What the table remembers for a key: the server's stable id (see `persist::server_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    server: u64,
    /// Milliseconds since the table's epoch.
    touched: u64,
}

pub struct StickTable {
    map: LruCache<StickKey, Entry>,
    size: usize,
    expire: Option<Duration>,
    epoch: Instant,
    evicted: u64,
}

impl std::fmt::Debug for StickTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StickTable")
            .field("len", &self.map.len())
            .field("size", &self.size)
            .field("expire", &self.expire)
            .finish()
    }
}

impl StickTable {
    /// `size` entries at most (at least 1); `expire` None keeps entries until evicted.
    pub fn new(size: usize, expire: Option<Duration>, epoch: Instant) -> Self {
        Self { map: LruCache::unbounded(), size: size.max(1), expire, epoch, evicted: 0 }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn expired(&self, e: &Entry, now_ms: u64) -> bool {
        self.expire.is_some_and(|x| now_ms.saturating_sub(e.touched) >= x.as_millis() as u64)
    }

    /// Drops expired entries from the old end; returns how many.
    pub fn purge(&mut self, now: Instant) -> usize {
        let now_ms = self.ms(now);
        let mut n = 0;
        while let Some((_, e)) = self.map.peek_lru() {
            if !self.expired(e, now_ms) {
                break;
            }
            self.map.pop_lru();
            n += 1;
        }
        n
    }

    /// The server stored for `key`, refreshing its expiry (HAProxy touches matched entries).
    pub fn get(&mut self, key: &StickKey, now: Instant) -> Option<u64> {
        self.purge(now);
        let now_ms = self.ms(now);
        let e = self.map.get_mut(key)?;
        e.touched = now_ms;
        Some(e.server)
    }

    /// Looks without touching (for stats and tests).
    pub fn peek(&self, key: &StickKey, now: Instant) -> Option<u64> {
        let e = self.map.peek(key)?;
        (!self.expired(e, self.ms(now))).then_some(e.server)
    }

    /// Stores or overwrites `key → server`; when full, the oldest entry makes room.
    pub fn set(&mut self, key: StickKey, server: u64, now: Instant) {
        self.purge(now);
        let touched = self.ms(now);
        if let Some(e) = self.map.get_mut(&key) {
            *e = Entry { server, touched };
            return;
        }
        while self.map.len() >= self.size {
            self.map.pop_lru();
            self.evicted += 1;
        }
        self.map.push(key, Entry { server, touched });
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Entries dropped to make room since the table was created.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> StickKey {
        StickKey::Str(v.into())
    }

    #[test]
    fn insert_lookup_overwrite() {
        let t0 = Instant::now();
        let mut t = StickTable::new(10, None, t0);
        assert_eq!(t.get(&s("a"), t0), None);
        t.set(s("a"), 1, t0);
        t.set(StickKey::Ip("127.0.0.1".parse().unwrap()), 2, t0);
        t.set(StickKey::Int(-5), 3, t0);
        assert_eq!(t.get(&s("a"), t0), Some(1));
        assert_eq!(t.get(&StickKey::Ip("127.0.0.1".parse().unwrap()), t0), Some(2));
        assert_eq!(t.get(&StickKey::Int(-5), t0), Some(3));
        assert_eq!(t.get(&StickKey::Int(5), t0), None);
        t.set(s("a"), 9, t0);
        assert_eq!(t.get(&s("a"), t0), Some(9));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn entries_expire_after_last_touch() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let mut t = StickTable::new(10, Some(10 * sec), t0);
        t.set(s("a"), 1, t0);
        t.set(s("b"), 2, t0);
        assert_eq!(t.get(&s("a"), t0 + 9 * sec), Some(1), "touch refreshes a");
        assert_eq!(t.peek(&s("b"), t0 + 9 * sec), Some(2));
        assert_eq!(t.get(&s("b"), t0 + 10 * sec), None, "b expired at 10 s");
        assert_eq!(t.get(&s("a"), t0 + 18 * sec), Some(1));
        assert_eq!(t.purge(t0 + 28 * sec), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn no_expire_keeps_entries() {
        let t0 = Instant::now();
        let mut t = StickTable::new(10, None, t0);
        t.set(s("a"), 1, t0);
        assert_eq!(t.get(&s("a"), t0 + Duration::from_secs(86_400 * 365)), Some(1));
    }

    #[test]
    fn size_bound_evicts_the_oldest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut t = StickTable::new(3, Some(Duration::from_secs(60)), t0);
        t.set(s("a"), 1, t0);
        t.set(s("b"), 2, t0 + ms);
        t.set(s("c"), 3, t0 + 2 * ms);
        // Touch a: b is now the oldest.
        assert_eq!(t.get(&s("a"), t0 + 3 * ms), Some(1));
        t.set(s("d"), 4, t0 + 4 * ms);
        assert_eq!(t.len(), 3);
        assert_eq!(t.evicted(), 1);
        assert_eq!(t.peek(&s("b"), t0 + 4 * ms), None);
        for (k, v) in [("a", 1), ("c", 3), ("d", 4)] {
            assert_eq!(t.peek(&s(k), t0 + 4 * ms), Some(v), "{k}");
        }
        // Overwriting an existing key never evicts.
        t.set(s("c"), 7, t0 + 5 * ms);
        assert_eq!((t.len(), t.evicted()), (3, 1));
    }

    #[test]
    fn expired_entries_make_room_before_eviction() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let mut t = StickTable::new(2, Some(sec), t0);
        t.set(s("a"), 1, t0);
        t.set(s("b"), 2, t0);
        t.set(s("c"), 3, t0 + 2 * sec);
        assert_eq!(t.evicted(), 0, "expired entries are purged, not evicted");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn bounded_under_many_inserts() {
        let t0 = Instant::now();
        let mut t = StickTable::new(1000, Some(Duration::from_secs(5)), t0);
        for i in 0..10_000i64 {
            t.set(StickKey::Int(i), i as u64, t0 + Duration::from_micros(i as u64));
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.peek(&StickKey::Int(9_999), t0), Some(9_999));
        assert_eq!(t.peek(&StickKey::Int(8_999), t0), None);
    }
}
