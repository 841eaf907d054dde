//! The admin half of server tracking: a server with `track` takes maintenance and drain from the
//! server it tracks, down a chain, and leaves them with it (HAProxy's inherited `IMAINT` and
//! `IDRAIN`, set by `srv_set_admin_flag`; a tracked server without an address, HAProxy's
//! `RMAINT`, passes on `IMAINT` too). Its own state stays apart, so an operator's
//! `set server ... state ready` on a tracker does not end an inherited maintenance, and the
//! tracker returns to its own state when the tracked server comes back.

use crate::config::Snapshot;
use crate::state::{Admin, BackendRt, Inherited};
use std::collections::HashMap;
use std::sync::Mutex;

/// Serializes [`propagate`]: the checks' reconcile, the control socket, the API and the agent
/// each run it after a change. Unserialized, one run's writes computed from states read before
/// another's change could land after the other's run and leave a tracker READY under a server
/// in maintenance. Rare and cheap: one lock for all proxies.
static PROPAGATE: Mutex<()> = Mutex::new(());

/// One server as tracking sees it: its own admin state and the server it tracks (an index into
/// the same list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub forced: Admin,
    pub track: Option<usize>,
}

/// What each server inherits: maintenance when any server up its chain is in maintenance by its
/// own state, drain likewise. A chain is followed at most `nodes.len()` steps (loops are refused
/// at load; a bad list still ends).
pub fn inherit(nodes: &[Node]) -> Vec<Inherited> {
    nodes
        .iter()
        .map(|n| {
            let mut out = Inherited::default();
            let mut next = n.track;
            for _ in 0..nodes.len() {
                let Some(t) = next.and_then(|i| nodes.get(i)) else { break };
                out.maint |= t.forced == Admin::Maint;
                out.drain |= t.forced == Admin::Drain;
                next = t.track;
            }
            out
        })
        .collect()
}

/// A server whose admin state in force changed because of what it inherits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub at: (usize, usize),
    pub old: Admin,
    pub new: Admin,
}

/// Recomputes what every tracking server inherits, from the servers' own states, and stores it
/// in their runtime entries; returns the servers whose state in force moved. Runs one at a
/// time, reading the servers' own states under the lock: a change made before a run starts is
/// seen by it, and a run for a later change writes after it.
pub fn propagate(snap: &Snapshot, rts: &[BackendRt]) -> Vec<Moved> {
    let _one = PROPAGATE.lock().unwrap_or_else(|p| p.into_inner());
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut at = Vec::new();
    for (bi, b) in snap.backends.iter().enumerate() {
        for (si, s) in b.servers.iter().enumerate() {
            index.insert((b.name.as_str(), s.name.as_str()), at.len());
            at.push((bi, si));
        }
    }
    let rt = |(bi, si): (usize, usize)| rts.get(bi).and_then(|b| b.servers.get(si));
    let nodes: Vec<Node> = at
        .iter()
        .map(|&(bi, si)| Node {
            // A server without an address (DNS, `init-addr none`) is in maintenance for its
            // trackers too (HAProxy's `RMAINT`, passed on as `IMAINT`).
            forced: match rt((bi, si)) {
                _ if rts.get(bi).is_some_and(|b| b.no_addr.get(si).copied().unwrap_or(false)) => Admin::Maint,
                Some(r) => r.forced_admin(),
                None => Admin::Ready,
            },
            track: snap.backends[bi].servers[si]
                .track
                .as_ref()
                .and_then(|(b, s)| index.get(&(b.as_str(), s.as_str())).copied()),
        })
        .collect();
    let mut moved = Vec::new();
    for (&pos, inh) in at.iter().zip(inherit(&nodes)) {
        let Some(r) = rt(pos) else { continue };
        let old = r.admin();
        r.set_inherited(inh);
        let new = r.admin();
        if old != new {
            moved.push(Moved { at: pos, old, new });
        }
    }
    // A tracker is up as the end of its chain is: a checked server leaving maintenance comes up
    // by that change (HAProxy's "start OK"), not by a check, and its trackers come with it.
    for (i, n) in nodes.iter().enumerate() {
        let Some(end) = chain_end(&nodes, i).filter(|_| n.track.is_some()) else { continue };
        if let (Some(r), Some(e)) = (rt(at[i]), rt(at[end]))
            && r.is_up() != e.is_up()
        {
            r.set_up(e.is_up());
        }
    }
    moved
}

/// The server at the end of `i`'s chain (`i` itself when it tracks none), within
/// `nodes.len()` steps (None for a loop, refused at load).
fn chain_end(nodes: &[Node], i: usize) -> Option<usize> {
    let mut cur = i;
    for _ in 0..=nodes.len() {
        match nodes.get(cur)?.track {
            Some(next) => cur = next,
            None => return Some(cur),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(forced: Admin, track: Option<usize>) -> Node {
        Node { forced, track }
    }

    #[test]
    fn maintenance_and_drain_go_down_the_chain() {
        // a <- d <- e, and x tracks a too; b stands alone.
        let mut nodes = vec![
            n(Admin::Maint, None),
            n(Admin::Ready, None),
            n(Admin::Ready, Some(0)),
            n(Admin::Ready, Some(2)),
            n(Admin::Drain, Some(0)),
        ];
        let inh = inherit(&nodes);
        let maint = Inherited { maint: true, drain: false };
        assert_eq!(inh, vec![Inherited::default(), Inherited::default(), maint, maint, maint]);
        // A tracker's own drain passes on to its own trackers, with the maintenance it inherits.
        nodes[2].forced = Admin::Drain;
        assert_eq!(inherit(&nodes)[3], Inherited { maint: true, drain: true });
        // The tracked server comes back: only the tracker's own drain is left down the chain.
        nodes[0].forced = Admin::Ready;
        let inh = inherit(&nodes);
        assert_eq!(inh[2], Inherited::default());
        assert_eq!(inh[3], Inherited { maint: false, drain: true });
        assert_eq!(inh[4], Inherited::default());
    }

    /// `a` <- `d` <- `e`, `b` alone.
    fn chain() -> crate::config::Snapshot {
        let src = "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"web\"\nservers = [\
                   { name = \"a\", addr = \"127.0.0.1:9\", check = true }, \
                   { name = \"b\", addr = \"127.0.0.1:9\" }, \
                   { name = \"d\", addr = \"127.0.0.1:9\", track = \"a\" }, \
                   { name = \"e\", addr = \"127.0.0.1:9\", track = \"d\" }]\n";
        crate::config::parse(src, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn propagate_writes_what_the_current_states_give() {
        let snap = chain();
        let rts = crate::state::Registry::default().attach(&snap).backends;
        let sv = |i: usize| &rts[0].servers[i];
        assert!(propagate(&snap, &rts).is_empty());
        sv(0).set_admin(Admin::Maint);
        let moved = propagate(&snap, &rts);
        let to = |new: Admin| {
            vec![(0, 2), (0, 3)].into_iter().map(|at| Moved { at, old: Admin::Ready, new }).collect::<Vec<_>>()
        };
        assert_eq!(moved, to(Admin::Maint));
        assert_eq!((sv(2).admin(), sv(3).admin(), sv(1).admin()), (Admin::Maint, Admin::Maint, Admin::Ready));
        // A run after another with nothing changed moves nothing and leaves the trackers as they are.
        assert!(propagate(&snap, &rts).is_empty());
        assert_eq!(sv(3).admin(), Admin::Maint);
        // The tracked server comes back: its trackers follow, their own state untouched.
        sv(0).set_admin(Admin::Ready);
        let back: Vec<_> = propagate(&snap, &rts).into_iter().map(|m| (m.at, m.old, m.new)).collect();
        assert_eq!(back, vec![((0, 2), Admin::Maint, Admin::Ready), ((0, 3), Admin::Maint, Admin::Ready)]);
        assert_eq!(sv(2).forced_admin(), Admin::Ready);
    }

    #[test]
    fn a_loop_or_a_bad_index_ends() {
        let nodes = vec![n(Admin::Maint, Some(1)), n(Admin::Ready, Some(0)), n(Admin::Ready, Some(9))];
        let inh = inherit(&nodes);
        assert!(inh[1].maint && inh[0].maint);
        assert_eq!(inh[2], Inherited::default());
        assert_eq!((chain_end(&nodes, 0), chain_end(&nodes, 2)), (None, None));
    }

    #[test]
    fn a_server_without_an_address_puts_its_trackers_in_maintenance() {
        let snap = chain();
        let mut rts = crate::state::Registry::default().attach(&snap).backends;
        rts[0].no_addr[0] = true;
        let moved: Vec<_> = propagate(&snap, &rts).into_iter().map(|m| (m.at, m.new)).collect();
        assert_eq!(moved, vec![((0, 2), Admin::Maint), ((0, 3), Admin::Maint)]);
        // Its own state is untouched: the address is the generation's to say.
        assert_eq!(rts[0].servers[0].admin(), Admin::Ready);
        rts[0].no_addr[0] = false;
        let back: Vec<_> = propagate(&snap, &rts).into_iter().map(|m| (m.at, m.new)).collect();
        assert_eq!(back, vec![((0, 2), Admin::Ready), ((0, 3), Admin::Ready)]);
    }

    #[test]
    fn a_checked_server_leaving_maintenance_comes_up_with_its_trackers() {
        let snap = chain();
        let rts = crate::state::Registry::default().attach(&snap).backends;
        let sv = |i: usize| &rts[0].servers[i];
        sv(0).set_checks_on(true);
        sv(0).set_up(false);
        propagate(&snap, &rts);
        assert!(!sv(2).is_up() && !sv(3).is_up() && sv(1).is_up());
        sv(0).set_admin(Admin::Maint);
        assert_eq!(sv(0).check_health.load(std::sync::atomic::Ordering::Relaxed), 0);
        propagate(&snap, &rts);
        // HAProxy's "start OK but check immediately": at `rise`, up, and so are its trackers.
        sv(0).set_admin(Admin::Ready);
        assert_eq!(sv(0).check_health.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert!(sv(0).is_up());
        propagate(&snap, &rts);
        assert!(sv(2).is_up() && sv(3).is_up());
    }
}
