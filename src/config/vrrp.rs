//! `[[vrrp_instance]]`, `[[vrrp_script]]` and `[[vrrp_sync_group]]`: keepalived's VRRP keywords as
//! TOML, validated into [`VrrpSettings`]. Interfaces are not looked up here: an interface that is
//! missing at load time may appear later, so that is a run-time fault, not a config error.

use super::error::{FieldPath, Problem};
use super::units::ConfDuration;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

mod alerts;
mod routes;
mod scripts;
mod strict;
#[cfg(test)]
mod tests;

pub use crate::net::route::{RouteDef, RuleDef};
pub use alerts::{SmtpSettings, alerts};
pub use routes::routes;
pub use scripts::{ScriptUser, script_security};

/// keepalived's `advert_int` default.
pub const DEFAULT_ADVERT_INT: Duration = Duration::from_secs(1);
/// keepalived's `garp_master_delay` default.
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);
/// keepalived's `garp_master_repeat` default.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// keepalived's bound on `preempt_delay`.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Tracking weights keepalived accepts.
pub const MAX_WEIGHT: i64 = 254;

// ---------------------------------------------------------------------------------------------
// Model: what the operator writes.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InstanceDef {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: Option<i64>,
    pub priority: Option<i64>,
    pub advert_int: Option<ConfDuration>,
    pub version: Option<i64>,
    pub state: Option<String>,
    pub nopreempt: bool,
    pub preempt_delay: Option<ConfDuration>,
    pub authentication: Option<AuthDef>,
    pub unicast_src_ip: Option<String>,
    pub unicast_peer: Vec<String>,
    /// keepalived's `mcast_src_ip`: one setting with `unicast_src_ip` there (the advert source).
    pub mcast_src_ip: Option<String>,
    /// keepalived's `vrrp_mcast_group4` / `vrrp_mcast_group6`: where multicast adverts go.
    pub mcast_group4: Option<String>,
    pub mcast_group6: Option<String>,
    /// keepalived's `check_unicast_src`: drop adverts from addresses not in `unicast_peer`.
    pub check_unicast_src: bool,
    /// keepalived's `unicast_ttl`: TTL / hop limit of unicast adverts (default 255).
    pub unicast_ttl: Option<i64>,
    /// keepalived's `unicast_fault_no_peer`: unicast keywords without a peer mean FAULT, not
    /// multicast.
    pub unicast_fault_no_peer: bool,
    /// keepalived's `old_unicast_checksum`: v3 unicast adverts checksummed with 224.0.0.18 as the
    /// pseudo-header's destination (keepalived <= 1.3.6).
    pub old_unicast_checksum: bool,
    /// keepalived's `skip_check_adv_addr`: no address-list check of adverts from the current master.
    pub skip_check_adv_addr: bool,
    /// keepalived's `strict_mode` (`vrrp_strict`): RFC conformance, see [`strict`].
    pub strict_mode: Option<bool>,
    /// keepalived's `accept` (true) / `no_accept` (false).
    pub accept: Option<bool>,
    /// keepalived's `dont_track_primary`: the interface going down is no fault.
    pub dont_track_primary: bool,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    /// keepalived's `down_timer_adverts`: adverts missed before a backup takes over (default 3).
    pub down_timer_adverts: Option<i64>,
    /// keepalived's `vrrp_startup_delay`: at process start (not at a reload) the instance waits
    /// this long before it starts.
    pub startup_delay: Option<ConfDuration>,
    /// `"ADDR[/LEN] [dev IF] [label IF:N]"`.
    pub virtual_ipaddress: Vec<String>,
    /// Added and removed with the VIPs but not advertised (keepalived's `virtual_ipaddress_excluded`).
    pub virtual_ipaddress_excluded: Vec<String>,
    /// keepalived's `virtual_routes` / `virtual_rules`: in place while MASTER.
    pub virtual_routes: Vec<String>,
    pub virtual_rules: Vec<String>,
    pub garp_master_delay: Option<ConfDuration>,
    pub garp_master_repeat: Option<i64>,
    pub garp_master_refresh: Option<ConfDuration>,
    pub garp_master_refresh_repeat: Option<i64>,
    pub garp_lower_prio_delay: Option<ConfDuration>,
    pub garp_lower_prio_repeat: Option<i64>,
    /// keepalived's `vrrp_garp_interval` / `vrrp_gna_interval`: the gap between two GARPs / NAs.
    pub garp_interval: Option<ConfDuration>,
    pub gna_interval: Option<ConfDuration>,
    /// RFC 9568: the v3 IPv4 checksum over the VRRP message only, as v2 and most routers do.
    pub v3_checksum_as_v2: bool,
    pub track_interface: Vec<TrackDef>,
    pub track_script: Vec<TrackDef>,
    pub track_backend: Vec<TrackBackendDef>,
    /// Fate sharing: Fault while the proxy cannot serve the VIPs (see `crate::fate`). Default:
    /// on when a listener is bound on one of the VIPs or on the wildcard address.
    pub track_proxy: Option<bool>,
    /// keepalived's `track_file { NAME [weight W [reverse]] }`.
    pub track_file: Vec<TrackFileRef>,
    /// keepalived's `track_process { NAME [weight W [reverse]] }`.
    pub track_process: Vec<TrackFileRef>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    pub notify: Option<String>,
    /// keepalived's `smtp_alert`: mail state changes (default: `[global] smtp_alert_vrrp` /
    /// `smtp_alert`).
    pub smtp_alert: Option<bool>,
    /// keepalived's `use_vmac [NAME]`: `true` (named `vrrp.VRID`) or the interface's name.
    pub use_vmac: Option<UseVmac>,
    /// keepalived's `vmac_xmit_base`: adverts go out of `interface`, not the VMAC.
    pub vmac_xmit_base: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UseVmac {
    On(bool),
    Named(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthDef {
    pub auth_type: String,
    pub auth_pass: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrackDef {
    pub name: String,
    pub weight: Option<i64>,
    /// keepalived's `weight W reverse`: the adjustment's direction reversed (see [`Tracked`]).
    pub reverse: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrackBackendDef {
    pub backend: String,
    pub weight: Option<i64>,
}

/// `[[vrrp_track_file]]`: keepalived's `track_file` (`vrrp_track_file`) block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrackFileDef {
    pub name: String,
    pub file: String,
    /// Default weight of the instances' references (keepalived: 1).
    pub weight: Option<i64>,
    pub reverse: bool,
    /// Written at start when the file is missing (or always, with `overwrite`).
    pub init_file: Option<InitFileDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InitFileDef {
    pub value: i64,
    pub overwrite: bool,
}

/// `[[vrrp_track_process]]`: keepalived's `vrrp_track_process` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrackProcessDef {
    pub name: String,
    /// The process name (as `ps -e` shows it) or its executable's path.
    pub process: String,
    /// At least this many must run (keepalived: 1).
    pub quorum: Option<i64>,
    pub weight: Option<i64>,
    pub reverse: bool,
    /// A change must last this long before it counts (keepalived's `delay`).
    pub delay: Option<ConfDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrackFileRef {
    pub name: String,
    pub weight: Option<i64>,
    pub reverse: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ScriptDef {
    pub name: String,
    pub script: String,
    pub interval: Option<ConfDuration>,
    pub timeout: Option<ConfDuration>,
    pub weight: Option<i64>,
    /// keepalived's `weight W reverse`: the default `reverse` of the instances' references.
    pub reverse: bool,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    /// keepalived's `user USER [GROUP]`: run this script as USER instead of `script_user`.
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SyncGroupDef {
    pub name: String,
    pub group: Vec<String>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    /// Called on every group change with `GROUP NAME STATE 0`.
    pub notify: Option<String>,
    /// Tracked by every member (weight 0: one failing puts the group in FAULT).
    pub track_interface: Vec<TrackDef>,
    pub track_script: Vec<TrackDef>,
    /// keepalived's `track_file` / `track_process` in a group: as `track_interface` there.
    pub track_file: Vec<TrackFileRef>,
    pub track_process: Vec<TrackFileRef>,
    pub smtp_alert: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Snapshot: validated values.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VrrpSettings {
    pub instances: Vec<VrrpInstance>,
    pub scripts: Vec<VrrpScript>,
    pub sync_groups: Vec<SyncGroup>,
    pub track_files: Vec<VrrpTrackFile>,
    /// `[global] script_user`: who runs scripts without a `user` of their own.
    pub script_user: Option<ScriptUser>,
    /// `[global] enable_script_security`: scripts run as root must not be writable by others.
    pub script_security: bool,
    /// keepalived's `static_ipaddress` / `static_routes` / `static_rules`: in place while VRRP runs.
    pub statics: Statics,
    /// Where `smtp_alert` mail goes; set when any instance or group alerts.
    pub smtp: Option<SmtpSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statics {
    /// Each with its `dev`.
    pub addrs: Vec<VipDef>,
    pub routes: Vec<RouteDef>,
    pub rules: Vec<RuleDef>,
}

impl Statics {
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

/// A validated `[[vrrp_track_file]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpTrackFile {
    pub name: String,
    pub file: std::path::PathBuf,
    /// `init_file`: the value, and whether it overwrites an existing file.
    pub init: Option<(i64, bool)>,
}

/// A tracked file of an instance, its weight resolved (`reverse` applied): 0 means FAULT while
/// the file holds a non-zero value; otherwise value × weight is added to the priority, and a
/// result below -253 means FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedFile {
    pub name: String,
    pub file: std::path::PathBuf,
    pub weight: i64,
    /// With weight 0 only (otherwise folded into the weight's sign): FAULT while the file holds 0.
    pub reverse: bool,
}

impl VrrpSettings {
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }
}

/// keepalived keys lbha knows but does not implement yet, with why: refused by name rather than
/// as unknown keys.
pub fn not_supported(_key: &str) -> Option<&'static str> {
    None
}

/// keepalived's `state` hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateHint {
    Master,
    Backup,
}

/// One VIP with the interface it goes on (the instance's unless `dev` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VipDef {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
}

/// A tracked object and its weight: 0 puts the instance in Fault while the object fails; a
/// positive weight is added while it is OK, a negative one subtracted while it fails. keepalived's
/// `reverse` multiplies the adjustment by -1 (a positive weight is subtracted while OK, a negative
/// one added while failing) and, with weight 0, means Fault while the object is OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyScripts {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    /// Called on every change with `INSTANCE NAME STATE PRIORITY`.
    pub any: Option<String>,
    /// Mail each change to `[global] notification_email` (`smtp_alert`).
    pub smtp_alert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub advert_int: Duration,
    /// 2 or 3.
    pub version: u8,
    pub state: Option<StateHint>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// VRRPv2 simple password, at most 8 bytes.
    pub auth_pass: Option<String>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub vips: Vec<VipDef>,
    /// Not advertised; held with the VIPs.
    pub vips_excluded: Vec<VipDef>,
    pub routes: Vec<RouteDef>,
    pub rules: Vec<RuleDef>,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Option<Duration>,
    /// GARPs when a master hears a lower-priority advert (split brain healing), and the second
    /// burst's delay; keepalived defaults both to the `garp_master_*` values.
    pub garp_lower_prio_repeat: u32,
    pub garp_lower_prio_delay: Duration,
    /// The keepalived knobs most instances leave at their defaults.
    pub opts: InstanceOpts,
    /// Send v3 IPv4 adverts with the RFC 9568 checksum (no pseudo-header). Every form is accepted.
    pub v3_checksum_as_v2: bool,
    pub track_interfaces: Vec<Tracked>,
    /// Weights already resolved (the track's own, else the script's).
    pub track_scripts: Vec<Tracked>,
    pub track_backends: Vec<Tracked>,
    /// Fault while the proxy cannot serve the VIPs (`crate::fate`), resolved by
    /// [`default_track_proxy`].
    pub track_proxy: bool,
    pub track_files: Vec<TrackedFile>,
    pub track_processes: Vec<TrackedProcess>,
    pub notify: NotifyScripts,
    pub sync_group: Option<String>,
    /// `use_vmac`: the VIPs live on a macvlan interface with the VRRP virtual MAC.
    pub vmac: Option<Vmac>,
}

/// keepalived's less common per-instance settings, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOpts {
    /// `vrrp_mcast_group4|6`; `None` is 224.0.0.18 / ff02::12.
    pub mcast_group: Option<IpAddr>,
    pub check_unicast_src: bool,
    pub unicast_ttl: u8,
    /// FAULT while there is no `unicast_peer`.
    pub unicast_fault_no_peer: bool,
    pub old_unicast_checksum: bool,
    pub skip_check_adv_addr: bool,
    /// `strict_mode`: also drops adverts whose address list differs from ours.
    pub strict: bool,
    pub dont_track_primary: bool,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    pub down_timer_adverts: u32,
    pub garp_master_refresh_repeat: u32,
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    pub startup_delay: Duration,
}

impl Default for InstanceOpts {
    fn default() -> Self {
        InstanceOpts {
            mcast_group: None,
            check_unicast_src: false,
            unicast_ttl: 255,
            unicast_fault_no_peer: false,
            old_unicast_checksum: false,
            skip_check_adv_addr: false,
            strict: false,
            dont_track_primary: false,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            garp_master_refresh_repeat: 1,
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            startup_delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    pub name: String,
    /// `vmac_xmit_base`: adverts from `interface` (with its own MAC) instead of the VMAC.
    pub xmit_base: bool,
}

impl VrrpInstance {
    /// Where a VIP without `dev` goes: the VMAC, else `interface`.
    pub fn vip_dev(&self) -> &str {
        self.vmac.as_ref().map_or(&self.interface, |v| &v.name)
    }

    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
    }

    /// Where multicast adverts go and which group is joined.
    pub fn mcast_group(&self) -> IpAddr {
        use crate::vrrp::packet::{MCAST_V4, MCAST_V6};
        self.opts.mcast_group.unwrap_or(if self.is_ipv6() { IpAddr::V6(MCAST_V6) } else { IpAddr::V4(MCAST_V4) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    pub name: String,
    pub script: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub weight: i32,
    pub reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    /// Run when the group as a whole changes state (keepalived's group notifies).
    pub notify: NotifyScripts,
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Parses keepalived's `virtual_ipaddress` entry: `ADDR[/LEN] [dev IF] [label LABEL]`.
pub fn parse_vip(s: &str) -> Result<VipDef, String> {
    let mut words = s.split_whitespace();
    let Some(first) = words.next() else {
        return Err("empty address".into());
    };
    let (ip_text, prefix_text) = match first.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (first, None),
    };
    let addr: IpAddr = ip_text.parse().map_err(|_| format!("{ip_text:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("prefix length {p:?} is not between 0 and {max}")),
        },
    };
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(format!("{addr} cannot be a virtual address"));
    }
    let mut vip = VipDef { addr, prefix, dev: None, label: None };
    while let Some(word) = words.next() {
        let slot = match word {
            "dev" => &mut vip.dev,
            "label" => &mut vip.label,
            other => {
                return Err(format!("unsupported option {other:?} (lbha takes `dev IF` and `label IF:N`)"));
            }
        };
        match words.next() {
            Some(v) if slot.is_none() => *slot = Some(v.to_string()),
            Some(_) => return Err(format!("`{word}` given twice")),
            None => return Err(format!("`{word}` needs a value")),
        }
    }
    Ok(vip)
}

struct Cx<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Cx<'_> {
    fn err(&mut self, path: FieldPath, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, msg));
    }
    fn err_v(&mut self, path: FieldPath, msg: impl Into<String>, value: impl std::fmt::Display) {
        self.problems.push(Problem::new(path, msg).with_value(value));
    }
    /// What keepalived 2.2.7 accepts with a warning (its words), so a converted config still loads.
    fn warn(&mut self, path: FieldPath, msg: impl Into<String>) {
        let mut p = Problem::new(path, msg);
        p.warning = true;
        self.problems.push(p);
    }
    /// An integer within `range`, or a problem and `None`.
    fn int(
        &mut self,
        v: Option<i64>,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
        path: FieldPath,
    ) -> Option<i64> {
        let n = v.unwrap_or(default);
        if range.contains(&n) {
            Some(n)
        } else {
            self.err_v(path, format!("must be between {} and {}", range.start(), range.end()), n);
            None
        }
    }
}

/// Validates the VRRP part of a config. `backends` are the names `track_backend` may use.
pub fn validate(
    instances: &[InstanceDef],
    scripts: &[ScriptDef],
    groups: &[SyncGroupDef],
    backends: &HashSet<&str>,
    problems: &mut Vec<Problem>,
) -> VrrpSettings {
    let mut cx = Cx { problems };
    let scripts = validate_scripts(scripts, &mut cx);
    let member_of = validate_groups(groups, instances, &mut cx);
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut vrids: HashMap<(String, u8, bool), String> = HashMap::new();
    for (i, def) in instances.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_instance").index(i);
        if def.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if !names.insert(def.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate vrrp_instance name", &def.name);
        }
        let group = member_of.get(def.name.as_str()).map(|g| g.to_string());
        let Some(inst) = instance(def, &p, &scripts, backends, group, &mut cx) else {
            continue;
        };
        let key = (inst.interface.clone(), inst.vrid, inst.is_ipv6());
        if let Some(other) = vrids.insert(key, inst.name.clone()) {
            cx.err_v(
                p.key("virtual_router_id"),
                format!("VRID already used on {} by vrrp_instance `{other}`", inst.interface),
                inst.vrid,
            );
        }
        out.push(inst);
    }
    group_tracking(groups, &scripts, &mut out, &mut cx);
    VrrpSettings {
        instances: out,
        scripts,
        sync_groups: groups
            .iter()
            .map(|g| SyncGroup {
                name: g.name.clone(),
                members: g.group.clone(),
                notify: NotifyScripts {
                    master: g.notify_master.clone(),
                    backup: g.notify_backup.clone(),
                    fault: g.notify_fault.clone(),
                    stop: g.notify_stop.clone(),
                    any: g.notify.clone(),
                    smtp_alert: false,
                },
            })
            .collect(),
        track_files: Vec::new(),
        script_user: None,
        script_security: false,
        statics: Statics::default(),
        smtp: None,
    }
}

/// A tracked process of an instance: OK while at least `quorum` processes named `process` run
/// (a change counts once it lasted `delay`); the weight as for scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedProcess {
    pub name: String,
    pub process: String,
    pub quorum: u32,
    pub delay: Duration,
    pub weight: i32,
    /// As [`Tracked::reverse`].
    pub reverse: bool,
}

/// Validates `[[vrrp_track_process]]` and resolves each instance's `track_process` references.
pub fn track_processes(
    vrrp: &mut VrrpSettings,
    defs: &[TrackProcessDef],
    instances: &[InstanceDef],
    problems: &mut Vec<Problem>,
) {
    let mut cx = Cx { problems };
    let mut valid: HashMap<&str, TrackedProcess> = HashMap::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_track_process").index(i);
        if d.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if valid.contains_key(d.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate vrrp_track_process name", &d.name);
        }
        if d.process.trim().is_empty() || d.process.contains(char::is_whitespace) {
            cx.err_v(p.key("process"), "one process name or path, without parameters", &d.process);
        }
        let quorum = cx.int(d.quorum, 1, 1..=65535, p.key("quorum")).unwrap_or(1);
        let w = cx.int(d.weight, 0, -MAX_WEIGHT..=MAX_WEIGHT, p.key("weight")).unwrap_or(0);
        valid.insert(
            d.name.as_str(),
            TrackedProcess {
                name: d.name.clone(),
                process: d.process.clone(),
                quorum: quorum as u32,
                delay: d.delay.map_or(Duration::ZERO, |x| x.0),
                weight: w as i32,
                reverse: d.reverse,
            },
        );
    }
    for (i, d) in instances.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_instance").index(i).key("track_process");
        let mut out: Vec<TrackedProcess> = Vec::new();
        for (j, t) in d.track_process.iter().enumerate() {
            let tp = p.index(j);
            let Some(def) = valid.get(t.name.as_str()) else {
                cx.warn(tp.key("name"), format!("track process {} not found, ignoring (as keepalived)", t.name));
                continue;
            };
            if out.iter().any(|x| x.name == t.name) {
                cx.warn(
                    tp.key("name"),
                    format!("({}) duplicate track_process {} - ignoring (as keepalived)", d.name, t.name),
                );
                continue;
            }
            // keepalived: a reference without a weight takes the block's weight and `reverse`.
            let (weight, reverse) = match t.weight {
                Some(w) => {
                    (cx.int(Some(w), 0, -MAX_WEIGHT..=MAX_WEIGHT, tp.key("weight")).unwrap_or(0) as i32, t.reverse)
                }
                None => (def.weight, def.reverse != t.reverse),
            };
            out.push(TrackedProcess { weight, reverse, ..def.clone() });
        }
        if let Some(inst) = vrrp.instances.iter_mut().find(|x| x.name == d.name) {
            inst.track_processes = out;
        }
    }
}

/// `track_interface` / `track_script` in a `vrrp_sync_group`: tracked by every member, with weight 0
/// (keepalived refuses another weight there unless `sync_group_tracking_weight`, which lbha lacks).
fn group_tracking(groups: &[SyncGroupDef], scripts: &[VrrpScript], out: &mut [VrrpInstance], cx: &mut Cx) {
    for (i, g) in groups.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_sync_group").index(i);
        for (key, defs) in [("track_interface", &g.track_interface), ("track_script", &g.track_script)] {
            for (j, t) in defs.iter().enumerate() {
                let tp = p.key(key).index(j);
                if t.weight.is_some_and(|w| w != 0) {
                    cx.err_v(
                        tp.key("weight"),
                        "a sync group tracks with weight 0 only (as keepalived)",
                        t.weight.unwrap_or(0),
                    );
                    continue;
                }
                if key == "track_script" && !scripts.iter().any(|s| s.name == t.name) {
                    cx.warn(tp.key("name"), format!("track script {} not found, ignoring (as keepalived)", t.name));
                    continue;
                }
                if key == "track_interface" && (t.name.is_empty() || t.name.len() > 15 || t.name.contains(['/', ' '])) {
                    cx.err_v(tp.key("name"), "not a valid interface name", &t.name);
                    continue;
                }
                for inst in out.iter_mut().filter(|x| g.group.contains(&x.name)) {
                    let list = if key == "track_script" { &mut inst.track_scripts } else { &mut inst.track_interfaces };
                    if !list.iter().any(|x| x.name == t.name) {
                        list.push(Tracked { name: t.name.clone(), weight: 0, reverse: t.reverse });
                    }
                }
            }
        }
    }
}

/// `track_file` / `track_process` in a `vrrp_sync_group`: tracked by every member with weight 0,
/// as the group's interfaces and scripts. Runs after [`track_files`] and [`track_processes`].
pub fn group_trackers(
    vrrp: &mut VrrpSettings,
    groups: &[SyncGroupDef],
    processes: &[TrackProcessDef],
    problems: &mut Vec<Problem>,
) {
    let mut cx = Cx { problems };
    for (i, g) in groups.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_sync_group").index(i);
        for (key, refs) in [("track_file", &g.track_file), ("track_process", &g.track_process)] {
            for (j, t) in refs.iter().enumerate() {
                let tp = p.key(key).index(j);
                if t.weight.is_some_and(|w| w != 0) {
                    cx.err_v(
                        tp.key("weight"),
                        "a sync group tracks with weight 0 only (as keepalived)",
                        t.weight.unwrap_or(0),
                    );
                    continue;
                }
                let file = vrrp.track_files.iter().find(|f| f.name == t.name).cloned();
                let process = processes.iter().find(|d| d.name == t.name);
                let known = if key == "track_file" { file.is_some() } else { process.is_some() };
                if !known {
                    let what = key.replace('_', " ");
                    cx.warn(tp.key("name"), format!("{what} {} not found, ignoring (as keepalived)", t.name));
                    continue;
                }
                for inst in vrrp.instances.iter_mut().filter(|x| g.group.contains(&x.name)) {
                    match (&file, process) {
                        (Some(f), _) if key == "track_file" => {
                            inst.track_files.retain(|x| x.name != f.name);
                            inst.track_files.push(TrackedFile {
                                name: f.name.clone(),
                                file: f.file.clone(),
                                weight: 0,
                                reverse: t.reverse,
                            });
                        }
                        (_, Some(d)) => {
                            inst.track_processes.retain(|x| x.name != d.name);
                            inst.track_processes.push(TrackedProcess {
                                name: d.name.clone(),
                                process: d.process.clone(),
                                quorum: d.quorum.unwrap_or(1).clamp(1, 65535) as u32,
                                delay: d.delay.map_or(Duration::ZERO, |x| x.0),
                                weight: 0,
                                reverse: t.reverse,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// keepalived's track_file weights span the C int range.
const MAX_FILE_WEIGHT: i64 = i32::MAX as i64;

/// Validates `[[vrrp_track_file]]` and resolves each instance's `track_file` references.
pub fn track_files(
    vrrp: &mut VrrpSettings,
    defs: &[TrackFileDef],
    instances: &[InstanceDef],
    problems: &mut Vec<Problem>,
) {
    let mut cx = Cx { problems };
    let mut names = HashSet::new();
    let mut weights = HashMap::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_track_file").index(i);
        if d.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if !names.insert(d.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate vrrp_track_file name", &d.name);
        }
        if !d.file.starts_with('/') {
            cx.err_v(p.key("file"), "needs an absolute path", &d.file);
        }
        let w = cx.int(d.weight, 1, -MAX_FILE_WEIGHT..=MAX_FILE_WEIGHT, p.key("weight")).unwrap_or(1);
        weights.insert(d.name.as_str(), (w, d.reverse));
        vrrp.track_files.push(VrrpTrackFile {
            name: d.name.clone(),
            file: d.file.clone().into(),
            init: d.init_file.as_ref().map(|x| (x.value, x.overwrite)),
        });
    }
    for (i, d) in instances.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_instance").index(i).key("track_file");
        let mut out = Vec::new();
        for (j, t) in d.track_file.iter().enumerate() {
            let tp = p.index(j);
            let Some(def) = vrrp.track_files.iter().find(|f| f.name == t.name) else {
                // As keepalived: "track file NAME not found, ignoring...".
                cx.warn(tp.key("name"), format!("track file {} not found, ignoring (as keepalived)", t.name));
                continue;
            };
            if out.iter().any(|f: &TrackedFile| f.name == t.name) {
                cx.warn(
                    tp.key("name"),
                    format!("({}) duplicate track_file {} - ignoring (as keepalived)", d.name, t.name),
                );
                continue;
            }
            // keepalived: a reference without a weight takes the block's weight and `reverse`.
            let (w, reverse) = match t.weight {
                Some(w) => {
                    (cx.int(Some(w), 0, -MAX_FILE_WEIGHT..=MAX_FILE_WEIGHT, tp.key("weight")).unwrap_or(0), t.reverse)
                }
                None => weights.get(t.name.as_str()).map_or((1, t.reverse), |&(w, r)| (w, r != t.reverse)),
            };
            out.push(TrackedFile {
                name: def.name.clone(),
                file: def.file.clone(),
                weight: if reverse { -w } else { w },
                reverse,
            });
        }
        if let Some(inst) = vrrp.instances.iter_mut().find(|x| x.name == d.name) {
            inst.track_files = out;
        }
    }
}

fn validate_scripts(defs: &[ScriptDef], cx: &mut Cx) -> Vec<VrrpScript> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, s) in defs.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_script").index(i);
        if s.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if !names.insert(s.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate vrrp_script name", &s.name);
        }
        if s.script.trim().is_empty() {
            cx.err(p.key("script"), "missing command");
        }
        let interval = s.interval.map_or(Duration::from_secs(1), |d| d.0);
        if interval.is_zero() {
            cx.err_v(p.key("interval"), "must be greater than 0", "0");
        }
        let timeout = s.timeout.map_or(interval, |d| d.0);
        if timeout.is_zero() {
            cx.err_v(p.key("timeout"), "must be greater than 0", "0");
        }
        let weight = cx.int(s.weight, 0, -MAX_WEIGHT..=MAX_WEIGHT, p.key("weight"));
        let rise = cx.int(s.rise, 1, 1..=1000, p.key("rise"));
        let fall = cx.int(s.fall, 1, 1..=1000, p.key("fall"));
        out.push(VrrpScript {
            name: s.name.clone(),
            script: s.script.clone(),
            interval,
            timeout,
            weight: weight.unwrap_or(0) as i32,
            reverse: s.reverse,
            rise: rise.unwrap_or(1) as u32,
            fall: fall.unwrap_or(1) as u32,
            user: s.user.as_deref().and_then(|u| scripts::user(u, p.key("user"), cx)),
        });
    }
    out
}

/// Checks sync groups and returns each instance's group.
fn validate_groups<'a>(
    groups: &'a [SyncGroupDef],
    instances: &[InstanceDef],
    cx: &mut Cx,
) -> HashMap<&'a str, &'a str> {
    let known: HashSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    let mut names = HashSet::new();
    let mut member_of = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        let p = FieldPath::root().key("vrrp_sync_group").index(i);
        if g.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if !names.insert(g.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate vrrp_sync_group name", &g.name);
        }
        if g.group.is_empty() {
            cx.err(p.key("group"), "a sync group needs at least one instance");
        }
        for (j, m) in g.group.iter().enumerate() {
            let mp = p.key("group").index(j);
            if !known.contains(m.as_str()) {
                cx.err_v(mp, "no such vrrp_instance", m);
            } else if let Some(other) = member_of.insert(m.as_str(), g.name.as_str()) {
                cx.err_v(mp, format!("instance is already in sync group `{other}`"), m);
            }
        }
    }
    member_of
}

fn instance(
    d: &InstanceDef,
    p: &FieldPath,
    scripts: &[VrrpScript],
    backends: &HashSet<&str>,
    sync_group: Option<String>,
    cx: &mut Cx,
) -> Option<VrrpInstance> {
    let start = cx.problems.len();
    if d.interface.is_empty() {
        cx.err(p.key("interface"), "missing interface");
    } else if d.interface.len() > 15 || d.interface.contains(['/', ' ', ':']) {
        cx.err_v(
            p.key("interface"),
            "not a valid interface name (at most 15 characters, no '/', ':' or spaces)",
            &d.interface,
        );
    }
    let vrid = match d.virtual_router_id {
        None => {
            cx.err(p.key("virtual_router_id"), "missing virtual_router_id");
            None
        }
        v => cx.int(v, 0, 1..=255, p.key("virtual_router_id")),
    };
    let strict = d.strict_mode.unwrap_or(false);
    let mut state = match d.state.as_deref() {
        None => None,
        Some("MASTER") => Some(StateHint::Master),
        Some("BACKUP") => Some(StateHint::Backup),
        Some(other) => {
            cx.err_v(p.key("state"), "must be \"MASTER\" or \"BACKUP\"", other);
            None
        }
    };
    // keepalived: `state MASTER` without a priority means the address owner, 255.
    let default_prio = if state == Some(StateHint::Master) { 255 } else { 100 };
    let priority = cx.int(d.priority, default_prio, 1..=255, p.key("priority"));
    let owner = priority == Some(255);
    if strict && state.is_some_and(|s| (s == StateHint::Master) != owner) {
        cx.warn(
            p.key("state"),
            format!(
                "({}) State MASTER must match being address owner - resetting (strict_mode, as keepalived)",
                d.name
            ),
        );
        state = Some(if owner { StateHint::Master } else { StateHint::Backup });
    }
    if priority == Some(255) && state != Some(StateHint::Master) {
        cx.err_v(
            p.key("priority"),
            "255 is reserved for the address owner: set state = \"MASTER\" as well, or use 1..254",
            255,
        );
    }
    let vips = vips(d, p, cx);
    let v6 = vips.first().is_some_and(|v| v.addr.is_ipv6());
    let version = match d.version {
        None if v6 => Some(3),
        Some(2) if v6 && strict => {
            cx.warn(
                p.key("version"),
                format!(
                    "({}) cannot use IPv6 with VRRP version 2; setting version 3 (strict_mode, as keepalived)",
                    d.name
                ),
            );
            Some(3)
        }
        v => cx.int(v, 2, 2..=3, p.key("version")),
    };
    if version == Some(2) && v6 {
        cx.err(p.key("version"), "VRRPv2 is IPv4 only; IPv6 virtual addresses need version = 3");
    }
    let advert_int = d.advert_int.map_or(DEFAULT_ADVERT_INT, |a| a.0);
    match version {
        Some(2) if advert_int.subsec_nanos() != 0 || !(1..=255).contains(&advert_int.as_secs()) => cx.err_v(
            p.key("advert_int"),
            "VRRPv2 needs whole seconds between 1s and 255s (a bare number is milliseconds: write \"1s\")",
            format!("{advert_int:?}"),
        ),
        Some(3)
            if !advert_int.as_nanos().is_multiple_of(10_000_000)
                || advert_int < Duration::from_millis(10)
                || advert_int > Duration::from_millis(40_950) =>
        {
            cx.err_v(
                p.key("advert_int"),
                "VRRPv3 needs a multiple of 10ms between 10ms and 40.95s",
                format!("{advert_int:?}"),
            )
        }
        _ => {}
    }
    let mut preempt_delay = d.preempt_delay.map_or(Duration::ZERO, |x| x.0);
    if strict && !preempt_delay.is_zero() {
        cx.warn(
            p.key("preempt_delay"),
            format!("({}) preempt_delay is incompatible with strict mode - resetting (as keepalived)", d.name),
        );
        preempt_delay = Duration::ZERO;
    }
    if preempt_delay > MAX_PREEMPT_DELAY {
        cx.err_v(p.key("preempt_delay"), "must be at most 1000s", format!("{preempt_delay:?}"));
    }
    // keepalived: "Warning - nopreempt will not work with initial state MASTER - clearing".
    let nopreempt = d.nopreempt && state != Some(StateHint::Master);
    if d.nopreempt && !nopreempt {
        cx.warn(
            p.key("nopreempt"),
            format!("({}) nopreempt will not work with initial state MASTER - ignored (as keepalived)", d.name),
        );
    }
    if nopreempt && !preempt_delay.is_zero() {
        cx.err(p.key("preempt_delay"), "preempt_delay has no effect with nopreempt");
    }
    let auth_pass = match &d.authentication {
        Some(_) if strict => {
            cx.warn(
                p.key("authentication"),
                format!("({}) Strict mode does not support authentication - ignored (as keepalived)", d.name),
            );
            None
        }
        Some(a) => auth(a, &d.name, version, &p.key("authentication"), cx),
        None => None,
    };
    let (unicast_src_ip, unicast_peers) = unicast(d, p, v6, cx);
    if strict && !unicast_peers.is_empty() {
        cx.err(
            p.key("unicast_peer"),
            format!("({}) Unicast peers are not supported in strict mode (as keepalived)", d.name),
        );
    }
    let opts = strict::opts(d, p, strict, v6, owner, version, cx);
    let garp_master_repeat =
        cx.int(d.garp_master_repeat, DEFAULT_GARP_REPEAT.into(), 0..=255, p.key("garp_master_repeat"));
    let garp_master_delay = d.garp_master_delay.map_or(DEFAULT_GARP_DELAY, |x| x.0);
    let garp_lower_prio_default = if strict { 0 } else { garp_master_repeat.unwrap_or(DEFAULT_GARP_REPEAT.into()) };
    let mut garp_lower_prio_repeat =
        cx.int(d.garp_lower_prio_repeat, garp_lower_prio_default, 0..=255, p.key("garp_lower_prio_repeat"));
    if strict && garp_lower_prio_repeat.is_some_and(|n| n != 0) {
        cx.warn(
            p.key("garp_lower_prio_repeat"),
            format!("({}) Strict mode requires no repeat garps - resetting (as keepalived)", d.name),
        );
        garp_lower_prio_repeat = Some(0);
    }
    let garp_lower_prio_delay = match d.garp_lower_prio_delay.map(|x| x.0) {
        Some(x) if strict && !x.is_zero() => {
            cx.warn(
                p.key("garp_lower_prio_delay"),
                format!("({}) Strict mode requires no repeat garp delay - resetting (as keepalived)", d.name),
            );
            Duration::ZERO
        }
        Some(x) => x,
        None if strict => Duration::ZERO,
        None => garp_master_delay,
    };
    if d.v3_checksum_as_v2 {
        if version == Some(2) {
            cx.err(p.key("v3_checksum_as_v2"), "applies to version = 3 only (VRRPv2 has no pseudo-header)");
        } else if v6 {
            cx.err(p.key("v3_checksum_as_v2"), "applies to IPv4 only (IPv6 always checksums the pseudo-header)");
        }
    }
    let track_interfaces = tracks(&d.track_interface, &p.key("track_interface"), None, cx);
    for (j, t) in d.track_interface.iter().enumerate() {
        if t.name.is_empty() || t.name.len() > 15 || t.name.contains(['/', ' ']) {
            cx.err_v(p.key("track_interface").index(j).key("name"), "not a valid interface name", &t.name);
        }
    }
    let track_scripts = tracks(&d.track_script, &p.key("track_script"), Some(scripts), cx);
    let mut track_backends = Vec::new();
    for (j, t) in d.track_backend.iter().enumerate() {
        let tp = p.key("track_backend").index(j);
        if !backends.contains(t.backend.as_str()) {
            cx.err_v(tp.key("backend"), "no such backend", &t.backend);
        }
        let w = cx.int(t.weight, 0, -MAX_WEIGHT..=MAX_WEIGHT, tp.key("weight"));
        track_backends.push(Tracked { name: t.backend.clone(), weight: w.unwrap_or(0) as i32, reverse: false });
    }
    for (key, v) in [
        ("notify_master", &d.notify_master),
        ("notify_backup", &d.notify_backup),
        ("notify_fault", &d.notify_fault),
        ("notify_stop", &d.notify_stop),
        ("notify", &d.notify),
    ] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            cx.err(p.key(key), "empty command");
        }
    }
    let vmac = vmac(d, p, vrid, cx);
    if cx.problems[start..].iter().any(|p| !p.warning) {
        return None;
    }
    Some(VrrpInstance {
        vmac,
        name: d.name.clone(),
        interface: d.interface.clone(),
        vrid: vrid? as u8,
        priority: priority? as u8,
        advert_int,
        version: version? as u8,
        state,
        preempt: !nopreempt,
        preempt_delay,
        auth_pass,
        unicast_src_ip,
        unicast_peers,
        vips,
        vips_excluded: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
        garp_master_delay,
        garp_master_repeat: garp_master_repeat? as u32,
        garp_master_refresh: d.garp_master_refresh.map(|x| x.0).filter(|x| !x.is_zero()),
        garp_lower_prio_repeat: garp_lower_prio_repeat? as u32,
        garp_lower_prio_delay,
        opts: opts?,
        v3_checksum_as_v2: d.v3_checksum_as_v2,
        track_interfaces,
        track_scripts,
        track_backends,
        track_proxy: d.track_proxy.unwrap_or(false),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        notify: NotifyScripts {
            master: d.notify_master.clone(),
            backup: d.notify_backup.clone(),
            fault: d.notify_fault.clone(),
            stop: d.notify_stop.clone(),
            any: d.notify.clone(),
            smtp_alert: false,
        },
        sync_group,
    })
}

/// `track_proxy` left unset is on for an instance whose VIPs carry binds: a listener on one of
/// them, or on the wildcard address of their family.
pub fn default_track_proxy(vrrp: &mut VrrpSettings, defs: &[InstanceDef], binds: &[std::net::SocketAddr]) {
    for inst in &mut vrrp.instances {
        let set = defs.iter().find(|d| d.name == inst.name).and_then(|d| d.track_proxy);
        inst.track_proxy = set.unwrap_or_else(|| {
            inst.vips.iter().any(|v| {
                binds.iter().any(|b| b.ip() == v.addr || (b.ip().is_unspecified() && b.is_ipv4() == v.addr.is_ipv4()))
            })
        });
    }
}

fn vips(d: &InstanceDef, p: &FieldPath, cx: &mut Cx) -> Vec<VipDef> {
    let vp = p.key("virtual_ipaddress");
    if d.virtual_ipaddress.is_empty() {
        cx.err(vp.clone(), "an instance needs at least one virtual address");
    }
    let mut out: Vec<VipDef> = Vec::new();
    for (j, text) in d.virtual_ipaddress.iter().enumerate() {
        let vip = match parse_vip(text) {
            Ok(v) => v,
            Err(e) => {
                cx.err_v(vp.index(j), e, text);
                continue;
            }
        };
        let dev = vip.dev.as_deref().unwrap_or(&d.interface);
        if let Some(label) = &vip.label {
            if vip.addr.is_ipv6() {
                cx.err_v(vp.index(j), "labels exist only for IPv4 addresses", text);
            } else if label.len() > 15 || !label.starts_with(&format!("{dev}:")) {
                cx.err_v(vp.index(j), format!("label must be \"{dev}:NAME\" and at most 15 characters"), text);
            }
        }
        if let Some(first) = out.first()
            && first.addr.is_ipv4() != vip.addr.is_ipv4()
        {
            cx.err_v(vp.index(j), "all virtual addresses of an instance must be of one family", text);
            continue;
        }
        if out.iter().any(|o| o.addr == vip.addr) {
            cx.err_v(vp.index(j), "duplicate virtual address", text);
            continue;
        }
        out.push(vip);
    }
    if out.len() > 255 {
        cx.err(vp, "at most 255 virtual addresses fit in an advert");
    }
    out
}

fn auth(a: &AuthDef, name: &str, version: Option<i64>, p: &FieldPath, cx: &mut Cx) -> Option<String> {
    if version == Some(3) {
        // keepalived: "(VI_1) VRRP version 3 does not support authentication. Ignoring."
        cx.warn(
            p.clone(),
            format!("({name}) VRRP version 3 does not support authentication - ignored (as keepalived)"),
        );
        return None;
    }
    match a.auth_type.as_str() {
        "PASS" => {}
        "AH" => {
            cx.err_v(p.key("auth_type"), "IPsec AH authentication is not supported (use PASS)", "AH");
            return None;
        }
        other => {
            cx.err_v(p.key("auth_type"), "must be \"PASS\"", other);
            return None;
        }
    }
    if a.auth_pass.is_empty() {
        cx.err(p.key("auth_pass"), "missing password");
        return None;
    }
    if a.auth_pass.len() > 8 {
        // keepalived: "Truncating auth_pass to 8 characters"; the peers compare those 8 bytes.
        let Some(cut) = a.auth_pass.get(..8) else {
            cx.err_v(p.key("auth_pass"), "longer than 8 bytes and cut inside a character", &a.auth_pass);
            return None;
        };
        cx.warn(p.key("auth_pass"), format!("truncating auth_pass to 8 characters ({cut:?}), as keepalived"));
        return Some(cut.to_string());
    }
    Some(a.auth_pass.clone())
}

fn unicast(d: &InstanceDef, p: &FieldPath, v6: bool, cx: &mut Cx) -> (Option<IpAddr>, Vec<IpAddr>) {
    let family_ok = |ip: &IpAddr| ip.is_ipv6() == v6;
    let mut src = None;
    // keepalived reads both into one source address.
    for (key, text) in [("unicast_src_ip", &d.unicast_src_ip), ("mcast_src_ip", &d.mcast_src_ip)] {
        let Some(s) = text.as_deref() else { continue };
        let ip = match without_prefix(s).parse::<IpAddr>() {
            Ok(ip) if family_ok(&ip) => ip,
            Ok(_) => {
                cx.err_v(p.key(key), "must be of the family of the virtual addresses", s);
                continue;
            }
            Err(_) => {
                cx.err_v(p.key(key), "not an IP address", s);
                continue;
            }
        };
        match src {
            Some(other) if other != ip => cx.err_v(
                p.key(key),
                format!("unicast_src_ip and mcast_src_ip are one setting (the advert source), already {other}"),
                s,
            ),
            _ => src = Some(ip),
        }
    }
    let mut peers = Vec::new();
    for (j, s) in d.unicast_peer.iter().enumerate() {
        let pp = p.key("unicast_peer").index(j);
        match without_prefix(s).parse::<IpAddr>() {
            Ok(ip) if !family_ok(&ip) => cx.err_v(pp, "must be of the family of the virtual addresses", s),
            Ok(ip) if ip.is_multicast() || ip.is_unspecified() => {
                cx.err_v(pp, "a unicast peer needs a unicast address", s)
            }
            Ok(ip) if peers.contains(&ip) => cx.err_v(pp, "duplicate peer", s),
            Ok(ip) => peers.push(ip),
            Err(_) => cx.err_v(pp, "not an IP address", s),
        }
    }
    (src, peers)
}

/// keepalived accepts a prefix length on `unicast_src_ip` and `unicast_peer` and ignores it.
fn without_prefix(s: &str) -> &str {
    match s.split_once('/') {
        Some((addr, len)) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => addr,
        _ => s,
    }
}

fn tracks(defs: &[TrackDef], p: &FieldPath, scripts: Option<&[VrrpScript]>, cx: &mut Cx) -> Vec<Tracked> {
    let mut out = Vec::new();
    for (j, t) in defs.iter().enumerate() {
        let tp = p.index(j);
        let mut default = 0;
        let mut default_reverse = false;
        if let Some(scripts) = scripts {
            match scripts.iter().find(|s| s.name == t.name) {
                Some(s) => (default, default_reverse) = (i64::from(s.weight), s.reverse),
                None => {
                    // keepalived: "(VI_1) track script NAME not found, ignoring...". Dropping it
                    // only ever keeps the instance out of a fault the script could not report.
                    cx.warn(tp.key("name"), format!("track script {} not found, ignoring (as keepalived)", t.name));
                    continue;
                }
            }
        }
        let w = cx.int(t.weight, default, -MAX_WEIGHT..=MAX_WEIGHT, tp.key("weight"));
        // keepalived: a reference without a weight takes the script's weight and `reverse`.
        let reverse = if t.weight.is_some() { t.reverse } else { t.reverse != default_reverse };
        out.push(Tracked { name: t.name.clone(), weight: w.unwrap_or(0) as i32, reverse });
    }
    out
}

/// `use_vmac` / `vmac_xmit_base`: the VMAC's name (keepalived's default `vrrp.VRID`).
fn vmac(d: &InstanceDef, p: &FieldPath, vrid: Option<i64>, cx: &mut Cx) -> Option<Vmac> {
    let name = match &d.use_vmac {
        None | Some(UseVmac::On(false)) => None,
        Some(UseVmac::On(true)) => Some(format!("vrrp.{}", vrid.unwrap_or(0))),
        Some(UseVmac::Named(n)) => Some(n.clone()),
    };
    let Some(name) = name else {
        if d.vmac_xmit_base {
            cx.err(p.key("vmac_xmit_base"), "needs use_vmac");
        }
        return None;
    };
    if !crate::control::vip::valid_ifname(&name) || name == d.interface {
        cx.err_v(
            p.key("use_vmac"),
            "not a valid name for the VMAC interface (at most 15 characters, not `interface`)",
            &name,
        );
    }
    Some(Vmac { name, xmit_base: d.vmac_xmit_base })
}
