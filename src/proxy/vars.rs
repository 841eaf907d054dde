//! Variables of `set-var(scope.name)` / `var(scope.name)`. HAProxy's scopes have different
//! lifetimes: `proc` lives as long as the process (shared by every connection and kept across
//! reloads), `sess` as long as the client connection, `txn` one request and its response, `req`
//! and `res` only while the request or the response is processed.

use crate::sample::{Value, VarRef, VarScope};
use std::collections::HashMap;
use std::sync::Mutex;

/// One scope's variables. A mutex because `proc` and `sess` are shared between tasks; each
/// access is a short lookup.
#[derive(Debug, Default)]
pub struct VarStore(Mutex<HashMap<String, Value>>);

impl VarStore {
    pub fn get(&self, name: &str) -> Option<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }
    pub fn set(&self, name: &str, v: Value) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), v);
    }
    pub fn unset(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

/// The scopes one transaction sees: its own `txn`/`req`/`res` and borrowed `sess` and `proc`.
pub struct TxnVars<'a> {
    pub proc: &'a VarStore,
    pub sess: &'a VarStore,
    pub txn: VarStore,
    pub req: VarStore,
    pub res: VarStore,
    /// The stream's tracked stick counters (`http-request track-sc*`): they live as long as
    /// the transaction, as its variables do.
    pub stk: crate::stktable::track::Trackers,
    /// `http-request set-timeout`: this stream's own server and tunnel timeouts.
    pub timeouts: StreamTimeouts,
    /// `http-request disable-l7-retry`: `retry_on` takes no layer-7 failure for this stream.
    pub no_l7_retry: std::sync::atomic::AtomicBool,
    /// `http-request strict-mode off` / `http-response strict-mode off` (HAProxy's
    /// `HTTP_MSGF_SOFT_RW` on each message): a failed rewrite is then ignored.
    pub soft_rw_req: std::sync::atomic::AtomicBool,
    pub soft_rw_res: std::sync::atomic::AtomicBool,
}

/// Which timeout `set-timeout` overrides (HAProxy 2.6 takes these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Server,
    Tunnel,
}

/// A stream's `set-timeout` values, in milliseconds (0: the backend's own).
#[derive(Debug, Default)]
pub struct StreamTimeouts {
    server: std::sync::atomic::AtomicU64,
    tunnel: std::sync::atomic::AtomicU64,
}

impl StreamTimeouts {
    fn slot(&self, k: TimeoutKind) -> &std::sync::atomic::AtomicU64 {
        match k {
            TimeoutKind::Server => &self.server,
            TimeoutKind::Tunnel => &self.tunnel,
        }
    }

    /// Sets `k` to `ms` milliseconds; HAProxy ignores a null (or negative) value.
    pub fn set(&self, k: TimeoutKind, ms: i64) {
        if ms > 0 {
            // HAProxy keeps timeouts as an int of milliseconds.
            let ms = ms.min(i64::from(i32::MAX)) as u64;
            self.slot(k).store(ms, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The stream's value of `k`, or `default` (the backend's).
    pub fn get(&self, k: TimeoutKind, default: std::time::Duration) -> std::time::Duration {
        match self.slot(k).load(std::sync::atomic::Ordering::Relaxed) {
            0 => default,
            ms => std::time::Duration::from_millis(ms),
        }
    }
}

impl<'a> TxnVars<'a> {
    pub fn new(proc: &'a VarStore, sess: &'a VarStore) -> TxnVars<'a> {
        TxnVars {
            proc,
            sess,
            txn: VarStore::default(),
            req: VarStore::default(),
            res: VarStore::default(),
            stk: Default::default(),
            timeouts: Default::default(),
            no_l7_retry: Default::default(),
            soft_rw_req: Default::default(),
            soft_rw_res: Default::default(),
        }
    }

    /// The store of `scope`; `check` (health checks) has none here.
    fn scope(&self, scope: VarScope) -> Option<&VarStore> {
        Some(match scope {
            VarScope::Proc => self.proc,
            VarScope::Sess => self.sess,
            VarScope::Txn => &self.txn,
            VarScope::Req => &self.req,
            VarScope::Res => &self.res,
            VarScope::Check => return None,
        })
    }

    pub fn get(&self, var: &VarRef) -> Option<Value> {
        self.scope(var.scope)?.get(&var.name)
    }
    pub fn set(&self, var: &VarRef, v: Value) {
        if let Some(s) = self.scope(var.scope) {
            s.set(&var.name, v);
        }
    }
    pub fn unset(&self, var: &VarRef) {
        if let Some(s) = self.scope(var.scope) {
            s.unset(&var.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VarRef {
        VarRef::parse(s).unwrap()
    }

    #[test]
    fn set_timeout_overrides_only_with_a_positive_value() {
        use std::time::Duration;
        let t = StreamTimeouts::default();
        let d = Duration::from_secs(30);
        assert_eq!(t.get(TimeoutKind::Server, d), d);
        t.set(TimeoutKind::Server, 0);
        t.set(TimeoutKind::Server, -5);
        assert_eq!(t.get(TimeoutKind::Server, d), d, "HAProxy ignores a null value");
        t.set(TimeoutKind::Server, 1500);
        assert_eq!(t.get(TimeoutKind::Server, d), Duration::from_millis(1500));
        assert_eq!(t.get(TimeoutKind::Tunnel, d), d, "each timeout is its own");
        t.set(TimeoutKind::Tunnel, i64::MAX);
        assert_eq!(t.get(TimeoutKind::Tunnel, d), Duration::from_millis(i32::MAX as u64));
    }

    #[test]
    fn scopes_are_separate_and_proc_and_sess_are_shared() {
        let (proc, sess) = (VarStore::default(), VarStore::default());
        let a = TxnVars::new(&proc, &sess);
        a.set(&v("txn.x"), Value::Sint(1));
        a.set(&v("proc.x"), Value::Sint(2));
        a.set(&v("sess.x"), Value::Sint(3));
        assert_eq!(a.get(&v("txn.x")), Some(Value::Sint(1)));
        assert_eq!(a.get(&v("req.x")), None);
        let b = TxnVars::new(&proc, &sess);
        assert_eq!(b.get(&v("txn.x")), None, "txn is per transaction");
        assert_eq!(b.get(&v("proc.x")), Some(Value::Sint(2)));
        assert_eq!(b.get(&v("sess.x")), Some(Value::Sint(3)));
        b.unset(&v("proc.x"));
        assert_eq!(a.get(&v("proc.x")), None);
        a.set(&v("check.x"), Value::Sint(4));
        assert_eq!(a.get(&v("check.x")), None);
    }
}
