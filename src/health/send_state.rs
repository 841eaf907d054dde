//! HAProxy's `http-check send-state`: the `x-haproxy-server-state` header each HTTP check carries,
//! so the server learns how the load balancer sees it. Formatted as HAProxy 2.6's
//! `httpchk_build_status_header`. Pure: the figures come from the caller.

use std::fmt::Write;
use std::net::SocketAddr;

/// The header's name, as HAProxy sends it.
pub const HEADER: &str = "x-haproxy-server-state";

/// What the header reports about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The server takes traffic (not DOWN), and whether it is NOLB (HAProxy's STOPPING).
    pub up: bool,
    pub nolb: bool,
    /// The check's `health`, `rise` and `fall` (see [`super::RiseFall`]).
    pub health: u32,
    pub rise: u32,
    pub fall: u32,
    pub addr: SocketAddr,
    /// `backend/server`.
    pub name: String,
    /// HAProxy's `node` (the host name by default).
    pub node: String,
    /// The server's current weight and the backend's total of usable weights.
    pub weight: u32,
    pub total_weight: u32,
    /// Sessions on the server, and those of the backend not waiting in its queue.
    pub scur: u64,
    pub be_conns: u64,
    /// Requests waiting for this server.
    pub qcur: u64,
    /// Percentage of the weight reached while `slowstart` ramps it up.
    pub throttle: Option<u32>,
}

/// The header's value.
pub fn value(f: &Figures) -> String {
    let top = f.rise + f.fall - 1;
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = if f.up {
        let word = if f.nolb { "NOLB" } else { "UP" };
        if f.health >= top {
            write!(s, "{word}")
        } else {
            write!(s, "{word} {}/{}", (f.health + 1).saturating_sub(f.rise), f.fall)
        }
    } else if f.health > 0 {
        write!(s, "DOWN {}/{}", f.health, f.rise)
    } else {
        write!(s, "DOWN")
    };
    let _ = write!(
        s,
        "; address={}; port={}; name={}; node={}; weight={}/{}; scur={}/{}; qcur={}",
        f.addr.ip(),
        f.addr.port(),
        f.name,
        f.node,
        f.weight,
        f.total_weight,
        f.scur,
        f.be_conns,
        f.qcur
    );
    if let Some(t) = f.throttle {
        let _ = write!(s, "; throttle={t}%");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        Figures {
            up: true,
            nolb: false,
            health: 4,
            rise: 2,
            fall: 3,
            addr: "127.0.0.1:18201".parse().unwrap(),
            name: "be/s1".into(),
            node: "vm".into(),
            weight: 3,
            total_weight: 8,
            scur: 0,
            be_conns: 0,
            qcur: 0,
            throttle: None,
        }
    }

    /// Lines HAProxy 2.6 sent to a recording server (`rise 2 fall 3`, weights 3 and 5).
    #[test]
    fn reads_like_haproxys() {
        let mut f = figures();
        assert_eq!(value(&f), "UP; address=127.0.0.1; port=18201; name=be/s1; node=vm; weight=3/8; scur=0/0; qcur=0");
        f.health = 2;
        assert!(value(&f).starts_with("UP 1/3; address="), "{}", value(&f));
        f.health = 3;
        f.nolb = true;
        assert!(value(&f).starts_with("NOLB 2/3;"), "{}", value(&f));
        f.up = false;
        f.health = 1;
        assert!(value(&f).starts_with("DOWN 1/2;"), "{}", value(&f));
        f.health = 0;
        f.throttle = Some(40);
        assert!(value(&f).starts_with("DOWN; ") && value(&f).ends_with("; qcur=0; throttle=40%"), "{}", value(&f));
        f.addr = "[::1]:80".parse().unwrap();
        assert!(value(&f).contains("; address=::1; port=80;"), "{}", value(&f));
    }
}
