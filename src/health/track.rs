//! The admin half of server tracking: a server with `track` takes maintenance and drain from the
//! server it tracks, down a chain, and leaves them with it (HAProxy's inherited `IMAINT` and
//! `IDRAIN`, set by `srv_set_admin_flag`). Its own state stays apart, so an operator's
//! `set server ... state ready` on a tracker does not end an inherited maintenance, and the
//! tracker returns to its own state when the tracked server comes back.

use crate::config::Snapshot;
use crate::state::{Admin, BackendRt, Inherited};
use std::collections::HashMap;

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
/// in their runtime entries; returns the servers whose state in force moved.
pub fn propagate(snap: &Snapshot, rts: &[BackendRt]) -> Vec<Moved> {
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
            forced: rt((bi, si)).map_or(Admin::Ready, |r| r.forced_admin()),
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
    moved
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

    #[test]
    fn a_loop_or_a_bad_index_ends() {
        let nodes = vec![n(Admin::Maint, Some(1)), n(Admin::Ready, Some(0)), n(Admin::Ready, Some(9))];
        let inh = inherit(&nodes);
        assert!(inh[1].maint && inh[0].maint);
        assert_eq!(inh[2], Inherited::default());
    }
}
