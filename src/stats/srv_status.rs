//! HAProxy's status word for a server (`status` of `show stat`, the CSV and the page, the Data
//! Plane API's native stats): maintenance first, then the state with the check counter while
//! checks move it ("UP 1/3" going down, "DOWN 1/2" coming up), as HAProxy 2.6's `srv_hlt_st`.
//! [`word`] is the mapping alone, [`of`] reads its facts from a snapshot and its runtime.

use crate::config::snapshot::Snapshot;
use crate::state::{Admin, Attached};

/// HAProxy's `cur_state`: running (or starting), stopping (NOLB) or stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Running,
    Stopping,
    Stopped,
}

/// What the word is made of: the server's own flags and state, and the checks of the server at
/// the end of its `track` chain (itself when it tracks none), HAProxy's `ref`, which hold the
/// counter a tracker shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// No address (HAProxy's `RMAINT`).
    pub no_addr: bool,
    /// Maintenance inherited through `track` (`IMAINT`): the server it tracks, as configured.
    pub via: Option<(&'a str, &'a str)>,
    /// Its own maintenance (forced, or `disabled` in the config).
    pub maint: bool,
    /// Drain, its own or inherited.
    pub drain: bool,
    pub op: Op,
    /// Its own checks run (`CHK_ST_ENABLED`), and whether it tracks another server.
    pub checked: bool,
    pub tracks: bool,
    /// The reference server's checks and agent run; its agent said down (agent health 0).
    pub ref_checked: bool,
    pub ref_agent: bool,
    pub ref_agent_down: bool,
    /// The reference server is stopped, and its counter with its `rise` and `fall`.
    pub ref_stopped: bool,
    pub health: u32,
    pub rise: u32,
    pub fall: u32,
}

/// HAProxy's status word for a server with these facts.
pub fn word(f: &Facts) -> String {
    if f.no_addr {
        return "MAINT (resolution)".into();
    }
    if let Some((b, s)) = f.via {
        return format!("MAINT (via {b}/{s})");
    }
    if f.maint {
        return "MAINT".into();
    }
    let top = f.rise + f.fall - 1;
    // The counter as HAProxy prints it: out of `fall` (how far from down) while the reference
    // server is not stopped, else out of `rise` (how far up); signed, as HAProxy's `int`s.
    let counted = || {
        let (h, rise) = (i64::from(f.health), i64::from(f.rise));
        if f.ref_stopped { format!("{h}/{rise}") } else { format!("{}/{}", h - rise + 1, f.fall) }
    };
    match f.op {
        Op::Running => {
            let going_down = f.ref_checked && f.health < top;
            if f.drain {
                if f.ref_agent {
                    "DRAIN (agent)".into()
                } else if going_down {
                    format!("DRAIN {}", counted())
                } else {
                    "DRAIN".into()
                }
            } else if going_down {
                format!("UP {}", counted())
            } else if !f.ref_checked {
                "no check".into()
            } else {
                "UP".into()
            }
        }
        Op::Stopping => {
            if (!f.checked && !f.tracks) || f.health == top {
                "NOLB".into()
            } else {
                format!("NOLB {}", counted())
            }
        }
        Op::Stopped => {
            if f.ref_agent && f.ref_agent_down {
                "DOWN (agent)".into()
            } else if f.ref_checked && f.health == 0 {
                "DOWN".into()
            } else if f.ref_agent || f.ref_checked {
                format!("DOWN {}", counted())
            } else {
                "DOWN".into()
            }
        }
    }
}

/// The status word of server `si` of backend `bi`.
pub fn of(snap: &Snapshot, rt: &Attached, bi: usize, si: usize) -> String {
    let (b, brt) = (&snap.backends[bi], &rt.backends[bi]);
    let (s, srt) = (&b.servers[si], &brt.servers[si]);
    let (rbi, rsi) = reference(snap, bi, si);
    let r = &rt.backends[rbi].servers[rsi];
    let (rise, fall) = r.check_rise_fall();
    let inherited = srt.inherited();
    let admin = srt.admin();
    let op = match (srt.is_up(), srt.nolb()) {
        _ if admin == Admin::Maint => Op::Stopped,
        (true, false) => Op::Running,
        (true, true) => Op::Stopping,
        (false, _) => Op::Stopped,
    };
    let facts = Facts {
        no_addr: brt.no_addr.get(si).copied().unwrap_or(false),
        via: s.track.as_ref().filter(|_| inherited.maint).map(|(tb, ts)| (tb.as_str(), ts.as_str())),
        maint: srt.forced_admin() == Admin::Maint,
        drain: admin == Admin::Drain,
        op,
        checked: srt.checks_on(),
        tracks: s.track.is_some(),
        ref_checked: r.checks_on(),
        ref_agent: r.agent_on(),
        ref_agent_down: r.agent_down(),
        ref_stopped: !r.is_up() || r.admin() == Admin::Maint,
        health: r.check_health.load(std::sync::atomic::Ordering::Relaxed),
        rise,
        fall,
    };
    word(&facts)
}

/// The server at the end of the `track` chain of `bi`/`si` (itself when it tracks none).
fn reference(snap: &Snapshot, bi: usize, si: usize) -> (usize, usize) {
    let total: usize = snap.backends.iter().map(|b| b.servers.len()).sum();
    let mut at = (bi, si);
    // Loops are refused at load; the bound keeps a bad snapshot from spinning.
    for _ in 0..total {
        let Some((tb, ts)) = &snap.backends[at.0].servers[at.1].track else { break };
        let next = snap.backend(tb).and_then(|(tbi, b)| b.servers.iter().position(|x| x.name == *ts).map(|i| (tbi, i)));
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checked server, rise 2 fall 3 (top of the counter 4), up and not tracking.
    fn up(health: u32) -> Facts<'static> {
        Facts {
            no_addr: false,
            via: None,
            maint: false,
            drain: false,
            op: Op::Running,
            checked: true,
            tracks: false,
            ref_checked: true,
            ref_agent: false,
            ref_agent_down: false,
            ref_stopped: false,
            health,
            rise: 2,
            fall: 3,
        }
    }

    fn down(health: u32) -> Facts<'static> {
        Facts { op: Op::Stopped, ref_stopped: true, ..up(health) }
    }

    #[test]
    fn checks_moving_a_server_show_the_counter() {
        assert_eq!(word(&up(4)), "UP");
        // HAProxy starts a checked server at `rise`: up, one failure from down.
        assert_eq!(word(&up(3)), "UP 2/3");
        assert_eq!(word(&up(2)), "UP 1/3");
        assert_eq!(word(&down(0)), "DOWN");
        assert_eq!(word(&down(1)), "DOWN 1/2");
        let r5 = Facts { rise: 5, fall: 7, ..down(3) };
        assert_eq!(word(&r5), "DOWN 3/5");
        assert_eq!(word(&Facts { op: Op::Running, ref_stopped: false, ..Facts { health: 9, ..r5 } }), "UP 5/7");
    }

    #[test]
    fn drain_nolb_and_no_check() {
        assert_eq!(word(&Facts { drain: true, ..up(4) }), "DRAIN");
        assert_eq!(word(&Facts { drain: true, ..up(3) }), "DRAIN 2/3");
        assert_eq!(word(&Facts { drain: true, ref_agent: true, ..up(3) }), "DRAIN (agent)");
        assert_eq!(word(&Facts { op: Op::Stopping, ..up(4) }), "NOLB");
        assert_eq!(word(&Facts { op: Op::Stopping, ..up(3) }), "NOLB 2/3");
        // Without checks of its own and tracking none, NOLB whatever the counter.
        assert_eq!(word(&Facts { op: Op::Stopping, checked: false, ..up(2) }), "NOLB");
        let unchecked = Facts { checked: false, ref_checked: false, ..up(2) };
        assert_eq!(word(&unchecked), "no check");
        assert_eq!(word(&Facts { drain: true, ..unchecked }), "DRAIN");
        // `set server health down` on a server without checks.
        assert_eq!(word(&Facts { op: Op::Stopped, ref_stopped: true, ..unchecked }), "DOWN");
    }

    #[test]
    fn an_agent_reports_through_the_counter_of_the_checks() {
        let agent = Facts { checked: false, ref_checked: false, ref_agent: true, ..down(2) };
        assert_eq!(word(&Facts { ref_agent_down: true, ..agent }), "DOWN (agent)");
        // Down by a forced state with the agent up: the check counter out of `rise`.
        assert_eq!(word(&agent), "DOWN 2/2");
        assert_eq!(word(&Facts { op: Op::Running, ref_stopped: false, ..agent }), "no check");
    }

    #[test]
    fn maintenance_comes_first() {
        let t = Facts { via: Some(("api", "t")), maint: true, ..down(0) };
        assert_eq!(word(&t), "MAINT (via api/t)");
        assert_eq!(word(&Facts { via: None, ..t }), "MAINT");
        assert_eq!(word(&Facts { no_addr: true, ..t }), "MAINT (resolution)");
    }
}
