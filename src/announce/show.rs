//! `show announce` on the control socket and the `lbha status` section: each VIP's
//! announcement and why it is withdrawn, and this node's FRR sessions as read back.

use super::VipStatus;
use super::frr::{self, FrrState};
use crate::control::reply::Reply;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What the announcer publishes: the VIPs as of the last tick, FRR as of the last read.
#[derive(Debug, Clone, Default)]
pub struct Handle {
    pub vips: Arc<Mutex<Vec<VipStatus>>>,
    /// None until the first read back.
    pub frr: Arc<Mutex<Option<FrrState>>>,
}

/// One node's announcements, as `show announce --json` and `lbha status` carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub vips: Vec<VipStatus>,
    /// None until FRR was read once.
    pub frr: Option<FrrState>,
}

impl Handle {
    pub fn report(&self) -> Report {
        Report {
            vips: self.vips.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            frr: self.frr.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// The text form: one line per VIP, then one per FRR session.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    for v in &r.vips {
        let state = if v.announced { "announced".to_string() } else { format!("withdrawn ({})", v.reason) };
        s.push_str(&format!("{} {} protocol {}: {state}\n", v.group, v.address, v.protocol));
    }
    match &r.frr {
        None => s.push_str("FRR: not read yet\n"),
        Some(f) => {
            for l in frr::render(f) {
                s.push_str(&format!("FRR {l}\n"));
            }
        }
    }
    s
}

/// The reply; an error when the config announces nothing.
pub fn reply(handle: Option<&Handle>) -> Reply {
    let Some(h) = handle else { return Reply::error("No [[announce]] in the running configuration.") };
    let r = h.report();
    let j = serde_json::to_value(&r).unwrap_or_else(|e| json!({ "errorStr": e.to_string() }));
    Reply::ok(render(&r), j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::frr::{BfdPeer, BgpPeer};

    #[test]
    fn one_line_per_vip_with_the_reason_then_frr() {
        let v = |addr: &str, announced: bool, reason: &str| VipStatus {
            group: "vip".into(),
            address: addr.parse().unwrap(),
            protocol: 250,
            announced,
            reason: reason.into(),
        };
        let mut r = Report {
            vips: vec![v("192.0.2.10", true, ""), v("2001:db8::10", false, "backend web has no server up")],
            frr: None,
        };
        assert_eq!(
            render(&r),
            "vip 192.0.2.10 protocol 250: announced\nvip 2001:db8::10 protocol 250: withdrawn (backend web has no server up)\n\
             FRR: not read yet\n"
        );
        r.frr = Some(FrrState {
            bgp: vec![BgpPeer { peer: "192.0.2.1".into(), family: "ipv4Unicast".into(), state: "Established".into() }],
            bfd: vec![BfdPeer { peer: "192.0.2.1".into(), status: "up".into() }],
            error: None,
        });
        assert!(render(&r).ends_with("FRR bgp 192.0.2.1 ipv4Unicast: Established\nFRR bfd 192.0.2.1: up\n"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["vips"][1]["reason"], "backend web has no server up");
        assert_eq!(j["frr"]["bgp"][0]["state"], "Established");
        assert_eq!(serde_json::from_value::<Report>(j).unwrap(), r);
    }
}
