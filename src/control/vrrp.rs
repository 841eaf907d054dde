//! `show vrrp`, `vip list` and the answers to `vip add|del`: plain views of the VRRP manager's
//! reports, rendered as text or sent as JSON. Consecutive addresses are shown as one range in
//! text, so 100 VIPs take one line.

use crate::config::vrrp::VipDef;
use crate::vrrp::{InstanceReport, VipChange, VipEntry, VipSource};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipView {
    pub instance: String,
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: String,
    pub label: Option<String>,
    /// `config` or `runtime`.
    pub source: String,
    pub held: bool,
    /// False for a runtime VIP whose instance is no longer configured.
    pub instance_configured: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionView {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub ago_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub advert_int_ms: u64,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub master: Option<String>,
    pub vips_configured: Vec<String>,
    pub vips_runtime: Vec<String>,
    pub vips_held: Vec<String>,
    pub last_transition: Option<TransitionView>,
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub became_master: u64,
    pub vip_errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpView {
    pub instances: Vec<InstanceView>,
    /// Runtime VIPs of instances that are not configured (kept, not held).
    pub orphans: Vec<VipView>,
    /// The file runtime VIPs are kept in.
    pub runtime_file: String,
}

fn text(v: &VipDef) -> String {
    crate::vrrp::runtime::vip_text(v)
}

pub fn vip_views(entries: &[VipEntry]) -> Vec<VipView> {
    entries
        .iter()
        .map(|e| VipView {
            instance: e.instance.clone(),
            addr: e.vip.addr,
            prefix: e.vip.prefix,
            dev: e.vip.dev.clone().unwrap_or_default(),
            label: e.vip.label.clone(),
            source: match e.source {
                VipSource::Config => "config".into(),
                VipSource::Runtime => "runtime".into(),
            },
            held: e.held,
            instance_configured: e.instance_configured,
        })
        .collect()
}

pub fn vrrp_view(reports: &[InstanceReport], entries: &[VipEntry], runtime_file: &str, now: SystemTime) -> VrrpView {
    let instances = reports
        .iter()
        .map(|r| {
            let s = &r.status;
            let held: Vec<String> =
                entries.iter().filter(|e| e.instance == s.name && e.held).map(|e| text(&e.vip)).collect();
            InstanceView {
                name: s.name.clone(),
                interface: s.interface.clone(),
                vrid: s.vrid,
                version: r.version,
                advert_int_ms: r.advert_int.as_millis() as u64,
                state: s.state.keepalived_name().to_string(),
                priority: s.effective_priority,
                configured_priority: s.configured_priority,
                master: s.master.map(|m| m.to_string()),
                vips_configured: r.configured.iter().map(text).collect(),
                vips_runtime: r.runtime.iter().map(text).collect(),
                vips_held: held,
                last_transition: s.last_transition.as_ref().map(|t| TransitionView {
                    from: t.from.keepalived_name().to_string(),
                    to: t.to.keepalived_name().to_string(),
                    reason: t.reason.clone(),
                    ago_sec: (now.duration_since(t.at).unwrap_or_default().as_millis() as f64) / 1000.0,
                }),
                adverts_rx: s.counters.adverts_rx,
                adverts_tx: s.counters.adverts_tx,
                became_master: s.counters.became_master,
                vip_errors: s.counters.vip_errors,
            }
        })
        .collect();
    let orphans = vip_views(entries).into_iter().filter(|v| !v.instance_configured).collect();
    VrrpView { instances, orphans, runtime_file: runtime_file.to_string() }
}

/// Joins VIP texts (`ADDR/LEN dev IF [label L]`), folding runs of consecutive addresses that
/// share everything else into `FIRST-LAST/LEN dev IF (N)`.
pub fn compact(vips: &[String]) -> String {
    struct Run {
        first: IpAddr,
        last: IpAddr,
        tail: String,
        n: usize,
    }
    let next = |a: IpAddr| match a {
        IpAddr::V4(v) => u32::from(v).checked_add(1).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(v) => u128::from(v).checked_add(1).map(|x| IpAddr::V6(x.into())),
    };
    let mut runs: Vec<Run> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for v in vips {
        let Some((addr, tail)) = v.split_once('/').and_then(|(a, t)| Some((a.parse::<IpAddr>().ok()?, t))) else {
            other.push(v.clone());
            continue;
        };
        match runs.last_mut() {
            Some(r) if r.tail == tail && next(r.last) == Some(addr) => {
                r.last = addr;
                r.n += 1;
            }
            _ => runs.push(Run { first: addr, last: addr, tail: tail.to_string(), n: 1 }),
        }
    }
    let mut out: Vec<String> = runs
        .iter()
        .map(|r| {
            if r.n == 1 {
                format!("{}/{}", r.first, r.tail)
            } else {
                format!("{}-{}/{} ({})", r.first, r.last, r.tail, r.n)
            }
        })
        .collect();
    out.extend(other);
    out.join(", ")
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

pub fn render_vrrp(v: &VrrpView) -> String {
    let mut out = String::new();
    if v.instances.is_empty() {
        out.push_str("no VRRP instances configured\n");
    }
    for i in &v.instances {
        out.push_str(&format!(
            "{}  {}  vrid {}  v{}  advert {}ms\n",
            i.name, i.interface, i.vrid, i.version, i.advert_int_ms
        ));
        let prio = if i.priority == i.configured_priority {
            format!("priority {}", i.priority)
        } else {
            format!("priority {} (configured {})", i.priority, i.configured_priority)
        };
        let master = i.master.as_ref().map_or_else(String::new, |m| format!("  master {m}"));
        out.push_str(&format!("  state {}  {prio}{master}\n", i.state));
        match &i.last_transition {
            Some(t) => out
                .push_str(&format!("  last transition {} -> {} {:.1}s ago ({})\n", t.from, t.to, t.ago_sec, t.reason)),
            None => out.push_str("  last transition: none yet\n"),
        }
        out.push_str(&format!("  VIPs configured: {}\n", or_none(compact(&i.vips_configured))));
        out.push_str(&format!("  VIPs runtime:    {}\n", or_none(compact(&i.vips_runtime))));
        out.push_str(&format!("  VIPs held:       {}\n", or_none(compact(&i.vips_held))));
        out.push_str(&format!(
            "  adverts rx {} tx {}, became master {}, vip errors {}\n",
            i.adverts_rx, i.adverts_tx, i.became_master, i.vip_errors
        ));
    }
    if !v.orphans.is_empty() {
        out.push_str("runtime VIPs of instances not configured (kept, not held):\n");
        for o in &v.orphans {
            out.push_str(&format!("  {}  {}\n", o.instance, view_text(o)));
        }
    }
    out.push_str(&format!("runtime VIPs file: {}\n", v.runtime_file));
    out
}

fn view_text(v: &VipView) -> String {
    let mut s = format!("{}/{} dev {}", v.addr, v.prefix, v.dev);
    if let Some(l) = &v.label {
        s.push_str(&format!(" label {l}"));
    }
    s
}

/// `vip list`: one row per VIP.
pub fn render_vip_list(vips: &[VipView]) -> String {
    if vips.is_empty() {
        return "no VIPs\n".into();
    }
    let mut rows = vec![["INSTANCE", "VIP", "DEV", "LABEL", "SOURCE", "HELD"].map(String::from).to_vec()];
    for v in vips {
        let instance =
            if v.instance_configured { v.instance.clone() } else { format!("{} (not configured)", v.instance) };
        rows.push(vec![
            instance,
            format!("{}/{}", v.addr, v.prefix),
            v.dev.clone(),
            v.label.clone().unwrap_or_else(|| "-".into()),
            v.source.clone(),
            if v.held { "yes".into() } else { "no".into() },
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The answer to `vip add` (`adding`) or `vip del`, in text and JSON.
pub fn change_reply(changes: &[VipChange], adding: bool, runtime_file: &str) -> (String, serde_json::Value) {
    let mut text = String::new();
    let mut json = Vec::new();
    for c in changes {
        let state = c.state.keepalived_name();
        let list = compact(&c.changed.iter().map(text_of).collect::<Vec<_>>());
        let what = match (adding, c.changed.is_empty(), c.applied) {
            (true, true, _) => "nothing new to add".to_string(),
            (true, false, true) => {
                format!("added {} runtime VIP(s) {list}; on the interface now, gratuitous ARP/NA sent", c.changed.len())
            }
            (true, false, false) => {
                format!("recorded {} runtime VIP(s) {list}; added when this node becomes MASTER", c.changed.len())
            }
            (false, _, true) => {
                format!("deleted {} runtime VIP(s) {list}; removed from the interface", c.changed.len())
            }
            (false, _, false) => {
                format!("deleted {} runtime VIP(s) {list}; this node did not hold them", c.changed.len())
            }
        };
        text.push_str(&format!("{} ({state}): {what}\n", c.instance));
        if !c.unchanged.is_empty() {
            text.push_str(&format!(
                "{} ({state}): already present: {}\n",
                c.instance,
                compact(&c.unchanged.iter().map(text_of).collect::<Vec<_>>())
            ));
        }
        json.push(serde_json::json!({
            "instance": c.instance,
            "state": state,
            if adding { "added" } else { "deleted" }: c.changed.iter().map(text_of).collect::<Vec<_>>(),
            "unchanged": c.unchanged.iter().map(text_of).collect::<Vec<_>>(),
            "applied": c.applied,
        }));
    }
    (text, serde_json::json!({ "changes": json, "runtime_file": runtime_file }))
}

fn text_of(v: &VipDef) -> String {
    text(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vrrp::parse_vip;
    use crate::vrrp::fsm::State;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn runs_fold_into_ranges() {
        let mut v: Vec<String> = (1..=100).map(|i| format!("198.51.100.{i}/24 dev eth0")).collect();
        v.push("192.0.2.100/32 dev eth0".into());
        v.push("192.0.2.101/32 dev eth0 label eth0:1".into());
        v.push("192.0.2.102/32 dev eth0 label eth0:1".into());
        assert_eq!(
            compact(&v),
            "198.51.100.1-198.51.100.100/24 dev eth0 (100), 192.0.2.100/32 dev eth0, 192.0.2.101-192.0.2.102/32 dev eth0 label eth0:1 (2)"
        );
        assert_eq!(
            compact(&s(&["2001:db8::ffff/128 dev eth0", "2001:db8::1:0/128 dev eth0"])),
            "2001:db8::ffff-2001:db8::1:0/128 dev eth0 (2)"
        );
        assert_eq!(compact(&[]), "");
    }

    #[test]
    fn list_table() {
        let v = VipView {
            instance: "VI_1".into(),
            addr: "192.0.2.100".parse().unwrap(),
            prefix: 32,
            dev: "eth0".into(),
            label: None,
            source: "config".into(),
            held: true,
            instance_configured: true,
        };
        let o = VipView {
            instance: "OLD".into(),
            addr: "198.51.100.7".parse().unwrap(),
            prefix: 24,
            label: Some("eth0:7".into()),
            source: "runtime".into(),
            held: false,
            instance_configured: false,
            ..v.clone()
        };
        assert_eq!(
            render_vip_list(&[v, o]),
            "\
INSTANCE              VIP              DEV   LABEL   SOURCE   HELD
VI_1                  192.0.2.100/32   eth0  -       config   yes
OLD (not configured)  198.51.100.7/24  eth0  eth0:7  runtime  no
"
        );
        assert_eq!(render_vip_list(&[]), "no VIPs\n");
    }

    #[test]
    fn show_vrrp_text() {
        let view = VrrpView {
            instances: vec![InstanceView {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                version: 3,
                advert_int_ms: 100,
                state: "MASTER".into(),
                priority: 150,
                configured_priority: 150,
                master: Some("192.0.2.11".into()),
                vips_configured: s(&["192.0.2.100/32 dev eth0"]),
                vips_runtime: s(&["192.0.2.150/32 dev eth0", "192.0.2.151/32 dev eth0"]),
                vips_held: s(&["192.0.2.100/32 dev eth0", "192.0.2.150/32 dev eth0", "192.0.2.151/32 dev eth0"]),
                last_transition: Some(TransitionView {
                    from: "BACKUP".into(),
                    to: "MASTER".into(),
                    reason: "no advert from a master within the down interval".into(),
                    ago_sec: 2.5,
                }),
                adverts_rx: 0,
                adverts_tx: 30,
                became_master: 1,
                vip_errors: 0,
            }],
            orphans: vec![],
            runtime_file: "/var/lib/lbha/runtime-vips.json".into(),
        };
        assert_eq!(
            render_vrrp(&view),
            "\
VI_1  eth0  vrid 51  v3  advert 100ms
  state MASTER  priority 150  master 192.0.2.11
  last transition BACKUP -> MASTER 2.5s ago (no advert from a master within the down interval)
  VIPs configured: 192.0.2.100/32 dev eth0
  VIPs runtime:    192.0.2.150-192.0.2.151/32 dev eth0 (2)
  VIPs held:       192.0.2.100/32 dev eth0, 192.0.2.150-192.0.2.151/32 dev eth0 (2)
  adverts rx 0 tx 30, became master 1, vip errors 0
runtime VIPs file: /var/lib/lbha/runtime-vips.json
"
        );
        let j = serde_json::to_string(&view).unwrap();
        assert_eq!(serde_json::from_str::<VrrpView>(&j).unwrap(), view);
    }

    #[test]
    fn change_answers() {
        let c = VipChange {
            instance: "VI_1".into(),
            state: State::Backup,
            changed: vec![
                parse_vip("198.51.100.1/24 dev eth0").unwrap(),
                parse_vip("198.51.100.2/24 dev eth0").unwrap(),
            ],
            unchanged: vec![parse_vip("198.51.100.3/24 dev eth0").unwrap()],
            applied: false,
        };
        let (text, json) = change_reply(std::slice::from_ref(&c), true, "/s/f.json");
        assert_eq!(
            text,
            "VI_1 (BACKUP): recorded 2 runtime VIP(s) 198.51.100.1-198.51.100.2/24 dev eth0 (2); added when this node becomes MASTER\nVI_1 (BACKUP): already present: 198.51.100.3/24 dev eth0\n"
        );
        assert_eq!(json["changes"][0]["added"][1], "198.51.100.2/24 dev eth0");
        assert_eq!(json["changes"][0]["applied"], false);
        assert_eq!(json["runtime_file"], "/s/f.json");
        let m = VipChange { state: State::Master, applied: true, unchanged: vec![], ..c };
        let (text, json) = change_reply(&[m], false, "/s/f.json");
        assert!(text.starts_with("VI_1 (MASTER): deleted 2 runtime VIP(s)"), "{text}");
        assert!(text.ends_with("removed from the interface\n"), "{text}");
        assert_eq!(json["changes"][0]["deleted"][0], "198.51.100.1/24 dev eth0");
    }
}
