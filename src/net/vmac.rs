//! keepalived's VMAC (`use_vmac`): a macvlan interface on the VRRP interface carrying the VRRP
//! virtual MAC (RFC 5798 §7.3), so the VIPs answer ARP with a MAC that moves with them and
//! neighbours need no GARP to follow a failover. Its sysctls are keepalived's: the VMAC answers
//! ARP only for its own addresses (`arp_ignore=1`) and accepts packets from local sources; the
//! parent gets `arp_ignore=1` and `arp_filter=1` (put back when its last VMAC goes), so it does
//! not answer for the VIPs with its own MAC, and `arp_announce=2` (an lbha addition), so its own
//! ARP requests for a client the VIP answers do not name the VIP as sender (the client would
//! take the parent's MAC for the VIP from them).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use rtnetlink::LinkMacVlan;
use rtnetlink::packet_route::link::MacVlanMode;

/// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub fn mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

pub fn mac_text(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parents with VMACs: which, and the values of [`PARENT_KEYS`] they had before.
type Parents = HashMap<String, (BTreeSet<String>, [String; 3])>;
static PARENTS: Mutex<Option<Parents>> = Mutex::new(None);

/// What the parent gets while it has VMACs.
const PARENT_KEYS: [&str; 3] = ["arp_ignore", "arp_filter", "arp_announce"];

fn conf(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from("/proc/sys/net/ipv4/conf").join(ifname).join(key)
}

fn set(ifname: &str, key: &str, value: &str) -> Result<(), String> {
    std::fs::write(conf(ifname, key), value).map_err(|e| format!("cannot set {}: {e}", conf(ifname, key).display()))
}

fn get(ifname: &str, key: &str) -> String {
    std::fs::read_to_string(conf(ifname, key)).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Creates the VMAC `name` on `parent` with `mac` (up, sysctls set), replacing a stale one with
/// another MAC; one already right (left by the process `lbha upgrade` replaced) is kept. For an
/// IPv6 instance the kernel gives it no link-local address of its own (`addr_gen_mode` 1, set
/// before it is up): one derived from the virtual MAC would be the same on both nodes and fail
/// DAD on one; [`link_local_plan`] gives it its parent's instead, as keepalived does.
pub async fn ensure(h: &rtnetlink::Handle, parent: &str, name: &str, mac: [u8; 6], ipv6: bool) -> Result<(), String> {
    let parent_info = super::link::lookup(parent).ok_or_else(|| format!("no interface {parent}"))?;
    match super::link::lookup(name) {
        Some(l) if l.mac == Some(mac) => {}
        Some(l) => {
            h.link().del(l.index).execute().await.map_err(|e| format!("cannot remove the stale {name}: {e}"))?;
            add(h, parent_info.index, name, mac, ipv6).await?;
        }
        None => add(h, parent_info.index, name, mac, ipv6).await?,
    }
    for (k, v) in [("arp_ignore", "1"), ("accept_local", "1"), ("rp_filter", "0")] {
        set(name, k, v)?;
    }
    super::sysctl::set_promote_secondaries(name).map_err(|e| e.to_string())?;
    let mut g = PARENTS.lock().unwrap_or_else(|p| p.into_inner());
    let parents = g.get_or_insert_with(HashMap::new);
    parents
        .entry(parent.to_string())
        .or_insert_with(|| (BTreeSet::new(), PARENT_KEYS.map(|k| get(parent, k))))
        .0
        .insert(name.to_string());
    set(parent, "arp_ignore", "1")?;
    set(parent, "arp_filter", "1")?;
    set(parent, "arp_announce", "2")
}

async fn add(h: &rtnetlink::Handle, parent: u32, name: &str, mac: [u8; 6], ipv6: bool) -> Result<(), String> {
    let msg = LinkMacVlan::new(name, parent, MacVlanMode::Private).address(mac.to_vec());
    if !ipv6 {
        let msg = msg.up().build();
        return h.link().add(msg).execute().await.map_err(|e| format!("cannot create the VMAC {name}: {e}"));
    }
    h.link().add(msg.build()).execute().await.map_err(|e| format!("cannot create the VMAC {name}: {e}"))?;
    let path = PathBuf::from("/proc/sys/net/ipv6/conf").join(name).join("addr_gen_mode");
    std::fs::write(&path, "1").map_err(|e| format!("cannot set {}: {e}", path.display()))?;
    let index = super::link::lookup(name).ok_or_else(|| format!("the VMAC {name} vanished"))?.index;
    let up = rtnetlink::LinkUnspec::new_with_index(index).up().build();
    h.link().set(up).execute().await.map_err(|e| format!("cannot bring the VMAC {name} up: {e}"))
}

/// The link-local addresses (address, prefix length) to remove from an IPv6 instance's VMAC, and
/// the one to add: its parent's (RFC 5798 §5.1.2.1: an IPv6 advert's source is the link-local
/// address of the interface that sends it; with the parent's, adverts through the VMAC keep the
/// source the peers know). Pure.
pub fn link_local_plan(
    parent: Option<Ipv6Addr>,
    on_vmac: &[(Ipv6Addr, u8)],
) -> (Vec<(Ipv6Addr, u8)>, Option<Ipv6Addr>) {
    let is_ll = |a: &Ipv6Addr| (a.segments()[0] & 0xffc0) == 0xfe80;
    let del = on_vmac.iter().filter(|(a, p)| is_ll(a) && (Some(*a) != parent || *p != 64)).copied().collect();
    let add = parent.filter(|p| !on_vmac.contains(&(*p, 64)));
    (del, add)
}

/// Deletes the VMAC; the parent's ARP sysctls go back when its last VMAC is gone.
pub async fn remove(h: &rtnetlink::Handle, parent: &str, name: &str) -> Result<(), String> {
    if let Some(l) = super::link::lookup(name) {
        h.link().del(l.index).execute().await.map_err(|e| format!("cannot remove the VMAC {name}: {e}"))?;
    }
    let mut g = PARENTS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(parents) = g.as_mut() else { return Ok(()) };
    if let Some(e) = parents.get_mut(parent) {
        e.0.remove(name);
        if e.0.is_empty() {
            let (_, before) = parents.remove(parent).unwrap_or_default();
            for (k, v) in PARENT_KEYS.into_iter().zip(before) {
                if !v.is_empty() {
                    set(parent, k, &v)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_mac_of_each_family() {
        assert_eq!(mac_text(mac(51, false)), "00:00:5e:00:01:33");
        assert_eq!(mac_text(mac(255, true)), "00:00:5e:00:02:ff");
    }

    #[test]
    fn an_ipv6_vmac_carries_its_parents_link_local_and_no_other() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let parent = Some(a("fe80::1"));
        // Fresh VMAC: nothing on it; the parent's is added.
        assert_eq!(link_local_plan(parent, &[]), (vec![], parent));
        // One derived from the virtual MAC goes; VIPs stay.
        let on = [(a("fe80::200:5eff:fe00:234"), 64), (a("2001:db8::100"), 128)];
        assert_eq!(link_local_plan(parent, &on), (vec![on[0]], parent));
        // Already right: nothing to do.
        assert_eq!(link_local_plan(parent, &[(a("fe80::1"), 64)]), (vec![], None));
        // The parent's address changed (or has none yet): the old one goes.
        assert_eq!(
            link_local_plan(Some(a("fe80::2")), &[(a("fe80::1"), 64)]),
            (vec![(a("fe80::1"), 64)], Some(a("fe80::2")))
        );
        assert_eq!(link_local_plan(None, &[(a("fe80::1"), 64)]), (vec![(a("fe80::1"), 64)], None));
    }
}
