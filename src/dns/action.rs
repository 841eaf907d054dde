//! `http-request do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR`: a name resolved for one request
//! through a `resolvers` section, as HAProxy 2.6's `resolv_action_do_resolve` does it. The
//! pure part is here (which address an answer gives, resolutions shared while in flight); the
//! queries are `task`'s.
//!
//! HAProxy asks for the preferred family first (AAAA unless `ipv4`), and for the other one when
//! that gives no address; it takes an address of the preferred family if the answer has one.
//! Requests asking for a name while it is being resolved share that resolution; the next one
//! after it resolves again (see [`InFlight`]).

use super::state::Answer;
use crate::config::resolvers::Resolvers;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The family `ipv4` / `ipv6` prefers; without one, HAProxy prefers IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn parse(word: &str) -> Option<Family> {
        match word {
            "ipv4" => Some(Family::V4),
            "ipv6" => Some(Family::V6),
            _ => None,
        }
    }

    fn matches(self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == (self == Family::V4)
    }
}

/// The address an answer to the preferred query, then perhaps the other, gives.
pub fn pick(first: &Answer, second: Option<&Answer>, prefer: Family) -> Option<IpAddr> {
    let all = first.iter().chain(second.into_iter().flatten()).flatten();
    let mut any = None;
    for ip in all {
        if prefer.matches(ip) {
            return Some(*ip);
        }
        any = any.or(Some(*ip));
    }
    any
}

/// Whether the preferred query's answer calls for the other family's query.
pub fn needs_other(first: &Answer) -> bool {
    first.as_ref().is_ok_and(|ips| ips.is_empty()) || first.is_err()
}

type Key = (String, String, Family);
type Pending = futures::future::Shared<futures::future::BoxFuture<'static, Option<IpAddr>>>;

/// Resolutions in flight, by section, name and family: a request asking while one runs waits
/// for it rather than sending its own queries. As in HAProxy 2.6, where the resolution lives
/// while requests are linked to it: once they all have their answer it is gone, and the next
/// request resolves again (checked against HAProxy with a record changed in between: `hold
/// valid` does not keep it).
#[derive(Default)]
pub struct InFlight {
    pending: Mutex<HashMap<Key, Pending>>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlight")
    }
}

impl InFlight {
    /// The running resolution for `key`, or `start`'s, registered until it ends.
    fn join(
        &self,
        key: Key,
        start: impl FnOnce() -> futures::future::BoxFuture<'static, Option<IpAddr>>,
    ) -> (Pending, bool) {
        use futures::FutureExt;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pending.get(&key) {
            return (p.clone(), false);
        }
        let p = start().shared();
        pending.insert(key, p.clone());
        (p, true)
    }

    fn done(&self, key: &Key) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}

/// Resolves `name` for a request with the section's nameservers, retries and timeouts (the
/// request waits, the thread does not), joining a resolution of the same name in flight.
pub async fn resolve(inflight: &InFlight, r: &Resolvers, name: &str, family: Family) -> Option<IpAddr> {
    let name = name.trim_end_matches('.').to_string();
    let key = (r.name.clone(), name.clone(), family);
    let r = r.clone();
    let (fut, ours) = inflight.join(key.clone(), move || Box::pin(async move { lookup(&r, &name, family).await }));
    // The one who started it ends it, also when its request goes away before the answer: a
    // dropped guard unregisters it, and the requests still waiting keep their clone running.
    struct Done<'a>(&'a InFlight, Option<Key>);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            if let Some(k) = self.1.take() {
                self.0.done(&k);
            }
        }
    }
    let _guard = Done(inflight, ours.then_some(key));
    fut.await
}

async fn lookup(r: &Resolvers, name: &str, family: Family) -> Option<IpAddr> {
    let id = super::task::query_id();
    let first = super::task::resolve_family(r, name, family == Family::V6, id).await;
    let second = if needs_other(&first) {
        Some(super::task::resolve_family(r, name, family == Family::V4, id.wrapping_add(1)).await)
    } else {
        None
    };
    pick(&first, second.as_ref(), family)
}

#[cfg(test)]
mod tests {
    use super::super::state::Failure;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_preferred_family_wins_and_the_other_is_a_fallback() {
        let v4 = ip("192.0.2.1");
        let v6 = ip("2001:db8::1");
        assert_eq!(pick(&Ok(vec![v6, v4]), None, Family::V4), Some(v4));
        assert_eq!(pick(&Ok(vec![v6]), None, Family::V4), Some(v6), "any address rather than none");
        assert_eq!(pick(&Ok(vec![]), Some(&Ok(vec![v4])), Family::V6), Some(v4));
        assert_eq!(pick(&Err(Failure::Nx), Some(&Err(Failure::Nx)), Family::V6), None);
        assert!(needs_other(&Ok(vec![])));
        assert!(needs_other(&Err(Failure::Timeout)));
        assert!(!needs_other(&Ok(vec![v4])));
        assert_eq!(Family::parse("ipv4"), Some(Family::V4));
        assert_eq!(Family::parse("IPv4"), None);
    }

    #[test]
    fn a_resolution_in_flight_is_joined_and_gone_once_answered() {
        use futures::FutureExt;
        let f = InFlight::default();
        let key = || ("dns".to_string(), "a.example".to_string(), Family::V4);
        let (tx, rx) = futures::channel::oneshot::channel::<Option<IpAddr>>();
        let (first, ours) = f.join(key(), move || rx.map(|r| r.ok().flatten()).boxed());
        assert!(ours);
        let (second, ours2) = f.join(key(), || panic!("a second resolution started"));
        assert!(!ours2, "the second request waits for the first one's");
        let (_, other) = f.join(("dns".into(), "a.example".into(), Family::V6), || async { None }.boxed());
        assert!(other, "per family");
        tx.send(Some(ip("192.0.2.1"))).unwrap();
        assert_eq!(futures::executor::block_on(first), Some(ip("192.0.2.1")));
        assert_eq!(futures::executor::block_on(second), Some(ip("192.0.2.1")));
        f.done(&key());
        assert_eq!(f.len(), 1);
        let (_, again) = f.join(key(), || async { None }.boxed());
        assert!(again, "answered: the next request resolves again, as HAProxy");
    }
}
