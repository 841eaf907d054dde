//! keepalived's less common instance settings ([`InstanceOpts`]) and the rules `strict_mode`
//! (`vrrp_strict`) lays on them, as keepalived 2.2.7's `vrrp_complete_instance` does: what it resets
//! with a warning is a warning here too, with its words.
//!
//! Accept mode is the exception. keepalived's `no_accept` (the default in strict mode) drops
//! traffic to the VIPs of a master that does not own them through iptables / nftables rules; lbha
//! installs no firewall rules, and its own listeners on the VIPs need that traffic, so `no_accept`
//! is refused rather than silently ignored.

use super::{Cx, FieldPath, InstanceDef, InstanceOpts};
use std::net::IpAddr;
use std::time::Duration;

/// Longest gap between two GARPs / NAs of a burst: a burst runs on a blocking thread.
pub const MAX_GARP_INTERVAL: Duration = Duration::from_secs(1);

/// Longest `startup_delay` keepalived takes (a 32-bit count of microseconds).
pub const MAX_STARTUP_DELAY: Duration = Duration::from_micros(u32::MAX as u64);

/// Resolves `d`'s options; `None` when one is invalid (the problem is recorded).
pub(super) fn opts(
    d: &InstanceDef,
    p: &FieldPath,
    strict: bool,
    v6: bool,
    owner: bool,
    version: Option<i64>,
    cx: &mut Cx,
) -> Option<InstanceOpts> {
    let start = cx.problems.len();
    accept(d, p, strict, owner, version, cx);
    let mut lower_prio_no_advert = d.lower_prio_no_advert.unwrap_or(strict);
    if strict && !lower_prio_no_advert {
        cx.warn(
            p.key("lower_prio_no_advert"),
            format!("({}) Strict mode requires no lower priority advert - resetting (as keepalived)", d.name),
        );
        lower_prio_no_advert = true;
    }
    let mut higher_prio_send_advert = d.higher_prio_send_advert.unwrap_or(false);
    if strict && higher_prio_send_advert {
        cx.warn(
            p.key("higher_prio_send_advert"),
            format!(
                "({}) strict mode requires higher_prio_send_advert to be clear - resetting (as keepalived)",
                d.name
            ),
        );
        higher_prio_send_advert = false;
    }
    let group4 = group(d.mcast_group4.as_deref(), false, p.key("mcast_group4"), cx);
    let group6 = group(d.mcast_group6.as_deref(), true, p.key("mcast_group6"), cx);
    let unicast_ttl = cx.int(d.unicast_ttl, 255, 1..=255, p.key("unicast_ttl"));
    if d.old_unicast_checksum && v6 {
        cx.err(p.key("old_unicast_checksum"), "applies to IPv4 only (IPv6 checksums never changed)");
    }
    let down_timer_adverts = cx.int(d.down_timer_adverts, 3, 1..=100, p.key("down_timer_adverts"));
    let mut refresh_repeat =
        cx.int(d.garp_master_refresh_repeat, 1, 0..=i64::from(u32::MAX), p.key("garp_master_refresh_repeat"));
    if refresh_repeat == Some(0) {
        cx.warn(
            p.key("garp_master_refresh_repeat"),
            format!("({}): garp_master_refresh_repeat must be greater than 0, setting to 1 (as keepalived)", d.name),
        );
        refresh_repeat = Some(1);
    }
    // keepalived takes up to 4294 s; lbha spaces a burst on a blocking thread, so it caps the gap.
    let mut gap = |v: Option<Duration>, key: &str| {
        let v = v.unwrap_or(Duration::ZERO);
        if v > MAX_GARP_INTERVAL {
            cx.warn(p.key(key), format!("{v:?} is longer than lbha spaces GARPs / NAs - using 1s"));
            return MAX_GARP_INTERVAL;
        }
        v
    };
    let garp_interval = gap(d.garp_interval.map(|x| x.0), "garp_interval");
    let gna_interval = gap(d.gna_interval.map(|x| x.0), "gna_interval");
    let mut startup_delay = d.startup_delay.map_or(Duration::ZERO, |x| x.0);
    if startup_delay > MAX_STARTUP_DELAY {
        cx.warn(
            p.key("startup_delay"),
            format!("startup_delay {startup_delay:?} is invalid (at most 4294.967295s) - ignored (as keepalived)"),
        );
        startup_delay = Duration::ZERO;
    }
    if cx.problems[start..].iter().any(|p| !p.warning) {
        return None;
    }
    Some(InstanceOpts {
        mcast_group: if v6 { group6 } else { group4 },
        check_unicast_src: d.check_unicast_src,
        unicast_ttl: unicast_ttl? as u8,
        unicast_fault_no_peer: d.unicast_fault_no_peer,
        old_unicast_checksum: d.old_unicast_checksum,
        skip_check_adv_addr: d.skip_check_adv_addr,
        strict,
        dont_track_primary: d.dont_track_primary,
        lower_prio_no_advert,
        higher_prio_send_advert,
        down_timer_adverts: down_timer_adverts? as u32,
        garp_master_refresh_repeat: refresh_repeat? as u32,
        garp_interval,
        gna_interval,
        startup_delay,
    })
}

/// keepalived: accept mode defaults to on, off in strict mode, and strict VRRPv2 turns it off
/// for a router that does not own the addresses. Off is refused (see the module doc) unless the
/// node owns the addresses, where RFC 5798 accepts the traffic anyway.
fn accept(d: &InstanceDef, p: &FieldPath, strict: bool, owner: bool, version: Option<i64>, cx: &mut Cx) {
    let mut accept = d.accept.unwrap_or(!strict);
    if accept && strict && !owner && version == Some(2) {
        cx.warn(
            p.key("accept"),
            format!(
                "({}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting (as keepalived)",
                d.name
            ),
        );
        accept = false;
    }
    if accept || owner {
        return;
    }
    let (key, why) = match (d.accept, strict) {
        (Some(false), _) => ("accept", "no_accept"),
        (_, true) if version == Some(2) => ("strict_mode", "strict_mode with VRRPv2 (which forces no_accept)"),
        _ => ("strict_mode", "strict_mode (whose default is no_accept; set accept = true)"),
    };
    cx.err_v(
        p.key(key),
        format!(
            "{why} would drop traffic to the VIPs while this node is master without owning them (priority < 255): lbha installs no firewall rules and its listeners on the VIPs need that traffic"
        ),
        match key {
            "accept" => "false".to_string(),
            _ => "true".to_string(),
        },
    );
}

/// A `vrrp_mcast_group4|6` address: multicast, of its family. keepalived skips an address that is
/// not multicast with a warning (the default group stays); anything else is an error.
fn group(text: Option<&str>, v6: bool, path: FieldPath, cx: &mut Cx) -> Option<IpAddr> {
    let text = text?;
    let fam = if v6 { "IPv6" } else { "IPv4" };
    match text.parse::<IpAddr>() {
        Ok(ip) if ip.is_ipv6() == v6 && ip.is_multicast() => Some(ip),
        Ok(ip) if ip.is_ipv6() == v6 => {
            cx.warn(path, format!("{text} is not multicast - skipping, the default group stays (as keepalived)"));
            None
        }
        _ => {
            cx.err_v(path, format!("must be an {fam} multicast address"), text);
            None
        }
    }
}
