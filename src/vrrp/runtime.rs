//! Runtime VIPs (`lbha vip add/del`): which instance an address joins, the checks that keep one
//! address in one place, and the file under the state directory that keeps them across restarts.
//!
//! Like keepalived's `virtual_ipaddress_excluded`, runtime VIPs are held by the master but not
//! listed in adverts, so a range of thousands fits and peers do not count an address-list
//! mismatch. Everything here but [`load`] and [`save`] is pure.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::vrrp::{VipDef, VrrpInstance, parse_vip};

/// The file under `state_dir`.
pub const FILE_NAME: &str = "runtime-vips.json";
const FORMAT_VERSION: u64 = 1;

/// A VIP added at run time; `vip.dev` is always set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVip {
    pub instance: String,
    pub vip: VipDef,
}

/// keepalived's syntax: `ADDR/LEN [dev IF] [label L]`.
pub fn vip_text(v: &VipDef) -> String {
    let mut s = format!("{}/{}", v.addr, v.prefix);
    if let Some(d) = &v.dev {
        s.push_str(&format!(" dev {d}"));
    }
    if let Some(l) = &v.label {
        s.push_str(&format!(" label {l}"));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}:{line}:{column}: not a runtime VIP file: {msg}")]
    Syntax { path: PathBuf, line: usize, column: usize, msg: String },
    #[error("{path}: format version {version} is not one this lbha reads ({FORMAT_VERSION})")]
    Version { path: PathBuf, version: u64 },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// What a file held: the entries that parse, and a located warning for each that did not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub vips: Vec<RuntimeVip>,
    pub warnings: Vec<String>,
}

#[derive(serde::Deserialize)]
struct RawFile {
    version: u64,
    #[serde(default)]
    vips: Vec<RawEntry>,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    instance: String,
    vip: String,
}

/// The file's text: JSON with one entry per line, so it stays readable and diffable.
pub fn render(vips: &[RuntimeVip]) -> String {
    let mut out = format!(
        "{{\n  \"comment\": \"runtime VIPs added with `lbha vip add`; written by lbha\",\n  \"version\": {FORMAT_VERSION},\n  \"vips\": ["
    );
    for (i, v) in vips.iter().enumerate() {
        let entry = serde_json::json!({ "instance": v.instance, "vip": vip_text(&v.vip) });
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(&entry.to_string());
    }
    out.push_str(if vips.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
    out
}

/// The 1-based line holding `needle` at or after `from`, for located warnings.
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines().enumerate().skip(from.saturating_sub(1)).find(|(_, l)| l.contains(needle)).map_or(from, |(i, _)| i + 1)
}

/// Parses a file's text; `path` names it in messages. Entries that do not parse are skipped with
/// a warning naming the line, field and value; a file that is not the format at all is an error.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, StoreError> {
    let raw: RawFile = serde_json::from_str(text).map_err(|e| StoreError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })?;
    if raw.version != FORMAT_VERSION {
        return Err(StoreError::Version { path: path.to_path_buf(), version: raw.version });
    }
    let mut out = Loaded::default();
    let mut line = 1;
    for (i, e) in raw.vips.into_iter().enumerate() {
        line = line_of(text, &serde_json::Value::String(e.vip.clone()).to_string(), line);
        let at = format!("{}:{line}: vips[{i}]", path.display());
        if e.instance.trim().is_empty() {
            out.warnings.push(format!("{at}.instance: empty instance name; entry skipped"));
            continue;
        }
        match parse_vip(&e.vip) {
            Ok(v) if v.dev.is_none() => {
                out.warnings.push(format!("{at}.vip: missing `dev IFACE` (value: {:?}); entry skipped", e.vip))
            }
            Ok(v) if out.vips.iter().any(|o| o.vip.addr == v.addr) => {
                out.warnings.push(format!("{at}.vip: address listed twice (value: {:?}); entry skipped", e.vip))
            }
            Ok(v) => out.vips.push(RuntimeVip { instance: e.instance, vip: v }),
            Err(why) => out.warnings.push(format!("{at}.vip: {why} (value: {:?}); entry skipped", e.vip)),
        }
    }
    Ok(out)
}

/// Reads the file; a missing file is an empty set.
pub fn load(path: &Path) -> Result<Loaded, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Loaded::default()),
        Err(source) => Err(StoreError::Read { path: path.to_path_buf(), source }),
    }
}

/// Writes the file atomically ([`crate::fsutil::write_atomic`]), creating the state directory
/// if needed. Blocking.
pub fn save(path: &Path, vips: &[RuntimeVip]) -> Result<(), StoreError> {
    crate::fsutil::write_atomic(path, render(vips).as_bytes())
        .map_err(|source| StoreError::Write { path: path.to_path_buf(), source })
}

/// Why a runtime VIP change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeVipError {
    #[error("no vrrp_instance is configured; `lbha vip add --direct` manages an address without VRRP")]
    NoInstances,
    #[error("no vrrp_instance named {0:?}")]
    UnknownInstance(String),
    #[error("no vrrp_instance runs on {dev} ({have}); name one with --instance")]
    NoInstanceOnDev { dev: String, have: String },
    #[error("several vrrp_instances run on {dev} ({names}); name one with --instance")]
    AmbiguousDev { dev: String, names: String },
    #[error("{addr} is configured in vrrp_instance {instance} (config file); change it there")]
    Configured { addr: IpAddr, instance: String },
    #[error("{addr} is already a runtime VIP of vrrp_instance {instance}")]
    OtherInstance { addr: IpAddr, instance: String },
    #[error("{addr} is already a runtime VIP of {instance} as `{recorded}`; delete it first")]
    Differs { addr: IpAddr, instance: String, recorded: String },
    #[error("{addr} is not a runtime VIP{}", .instance.as_ref().map(|i| format!(" of vrrp_instance {i}")).unwrap_or_default())]
    NotRuntime { addr: IpAddr, instance: Option<String> },
    #[error("{addr} is a runtime VIP as `{recorded}`, not {asked}")]
    Mismatch { addr: IpAddr, recorded: String, asked: String },
    #[error("{first} (and {more} more like it)")]
    Many { first: Box<RuntimeVipError>, more: usize },
    #[error("no interface named {0:?} in this network namespace")]
    UnknownInterface(String),
    #[error("{addr} is already on interface {ifname}")]
    Elsewhere { addr: IpAddr, ifname: String },
    #[error("runtime VIPs cannot change: {0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("vrrp_instance {instance}: {source}")]
    Apply { instance: String, source: crate::net::vip::VipError },
    #[error("vrrp_instance {0} is not running")]
    Stopped(String),
}

/// Folds per-address errors into the first one and a count.
pub fn first_of(mut errs: Vec<RuntimeVipError>) -> Result<(), RuntimeVipError> {
    if errs.is_empty() {
        return Ok(());
    }
    let first = errs.remove(0);
    Err(if errs.is_empty() { first } else { RuntimeVipError::Many { first: Box::new(first), more: errs.len() } })
}

/// The instance a VIP on `dev` joins: the one named, else the only one, else the only one on `dev`.
pub fn choose_instance(
    instances: &[VrrpInstance],
    requested: Option<&str>,
    dev: &str,
) -> Result<String, RuntimeVipError> {
    if let Some(name) = requested {
        return instances
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.name.clone())
            .ok_or_else(|| RuntimeVipError::UnknownInstance(name.to_string()));
    }
    match instances {
        [] => Err(RuntimeVipError::NoInstances),
        [one] => Ok(one.name.clone()),
        many => {
            let on: Vec<&VrrpInstance> = many.iter().filter(|i| i.interface == dev).collect();
            match on.as_slice() {
                [one] => Ok(one.name.clone()),
                [] => Err(RuntimeVipError::NoInstanceOnDev {
                    dev: dev.to_string(),
                    have: many.iter().map(|i| format!("{} on {}", i.name, i.interface)).collect::<Vec<_>>().join(", "),
                }),
                several => Err(RuntimeVipError::AmbiguousDev {
                    dev: dev.to_string(),
                    names: several.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
                }),
            }
        }
    }
}

/// Which of the requested VIPs are new, and which are already recorded just so.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AddPlan {
    pub new: Vec<VipDef>,
    pub present: Vec<VipDef>,
}

/// Checks an addition to `instance` against the config and the runtime set; all or nothing.
pub fn plan_add(
    instances: &[VrrpInstance],
    runtime: &[RuntimeVip],
    instance: &str,
    vips: &[VipDef],
) -> Result<AddPlan, RuntimeVipError> {
    let mut plan = AddPlan::default();
    let mut errs = Vec::new();
    for v in vips {
        if let Some(i) = instances.iter().find(|i| i.vips.iter().any(|c| c.addr == v.addr)) {
            errs.push(RuntimeVipError::Configured { addr: v.addr, instance: i.name.clone() });
        } else if let Some(r) = runtime.iter().find(|r| r.vip.addr == v.addr) {
            if r.instance != instance {
                errs.push(RuntimeVipError::OtherInstance { addr: v.addr, instance: r.instance.clone() });
            } else if r.vip != *v {
                errs.push(RuntimeVipError::Differs {
                    addr: v.addr,
                    instance: r.instance.clone(),
                    recorded: vip_text(&r.vip),
                });
            } else {
                plan.present.push(v.clone());
            }
        } else {
            plan.new.push(v.clone());
        }
    }
    first_of(errs)?;
    Ok(plan)
}

/// An address to delete, with what the operator wrote about it (checked against the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipMatch {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
    pub dev: Option<String>,
}

/// The recorded entries a deletion removes, grouped by instance in first-seen order; all or
/// nothing.
pub fn plan_del(
    instances: &[VrrpInstance],
    runtime: &[RuntimeVip],
    instance: Option<&str>,
    wanted: &[VipMatch],
) -> Result<Vec<(String, Vec<VipDef>)>, RuntimeVipError> {
    let mut out: Vec<(String, Vec<VipDef>)> = Vec::new();
    let mut errs = Vec::new();
    for w in wanted {
        let found = runtime.iter().find(|r| r.vip.addr == w.addr && instance.is_none_or(|i| r.instance == i));
        let Some(r) = found else {
            if let Some(i) = instances.iter().find(|i| i.vips.iter().any(|c| c.addr == w.addr)) {
                errs.push(RuntimeVipError::Configured { addr: w.addr, instance: i.name.clone() });
            } else {
                errs.push(RuntimeVipError::NotRuntime { addr: w.addr, instance: instance.map(str::to_string) });
            }
            continue;
        };
        let prefix_ok = w.prefix.is_none_or(|p| p == r.vip.prefix);
        let dev_ok = w.dev.is_none() || w.dev == r.vip.dev;
        if !prefix_ok || !dev_ok {
            let mut asked = format!("{}/{}", w.addr, w.prefix.unwrap_or(r.vip.prefix));
            if let Some(d) = &w.dev {
                asked.push_str(&format!(" dev {d}"));
            }
            errs.push(RuntimeVipError::Mismatch { addr: w.addr, recorded: vip_text(&r.vip), asked });
            continue;
        }
        match out.iter_mut().find(|(i, _)| *i == r.instance) {
            Some((_, list)) => list.push(r.vip.clone()),
            None => out.push((r.instance.clone(), vec![r.vip.clone()])),
        }
    }
    first_of(errs)?;
    Ok(out)
}

/// Splits the runtime set at a reload: entries whose address the config now lists are taken
/// over by the config (returned second), so each address is held once.
pub fn taken_over(instances: &[VrrpInstance], runtime: Vec<RuntimeVip>) -> (Vec<RuntimeVip>, Vec<RuntimeVip>) {
    runtime.into_iter().partition(|r| !instances.iter().any(|i| i.vips.iter().any(|c| c.addr == r.vip.addr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(s: &str) -> VipDef {
        parse_vip(s).unwrap()
    }

    fn rt(instance: &str, v: &str) -> RuntimeVip {
        RuntimeVip { instance: instance.into(), vip: vip(v) }
    }

    fn inst(name: &str, iface: &str, vips: &[&str]) -> VrrpInstance {
        let toml = format!(
            "[[vrrp_instance]]\nname = \"{name}\"\ninterface = \"{iface}\"\nvirtual_router_id = 1\nvirtual_ipaddress = {vips:?}\n"
        );
        let snap = crate::config::parse(&toml, Path::new("/etc/lbha/t.toml")).unwrap();
        snap.vrrp.instances[0].clone()
    }

    #[test]
    fn file_round_trip_one_entry_per_line() {
        let vips = vec![rt("VI_1", "198.51.100.1/24 dev eth0 label eth0:1"), rt("VI 2", "2001:db8::5/128 dev eth1")];
        let text = render(&vips);
        assert_eq!(
            text,
            "{\n  \"comment\": \"runtime VIPs added with `lbha vip add`; written by lbha\",\n  \"version\": 1,\n  \"vips\": [\n    {\"instance\":\"VI_1\",\"vip\":\"198.51.100.1/24 dev eth0 label eth0:1\"},\n    {\"instance\":\"VI 2\",\"vip\":\"2001:db8::5/128 dev eth1\"}\n  ]\n}\n"
        );
        let back = parse(Path::new("/x"), &text).unwrap();
        assert_eq!(back, Loaded { vips, warnings: vec![] });
        assert_eq!(parse(Path::new("/x"), &render(&[])).unwrap(), Loaded::default());
    }

    #[test]
    fn bad_entries_are_skipped_with_their_line_and_value() {
        let text = "{\"version\": 1, \"vips\": [\n{\"instance\": \"VI_1\", \"vip\": \"198.51.100.1/24 dev eth0\"},\n{\"instance\": \"VI_1\", \"vip\": \"198.51.100.300 dev eth0\"},\n{\"instance\": \"VI_1\", \"vip\": \"198.51.100.2/24\"},\n{\"instance\": \"\", \"vip\": \"198.51.100.3 dev eth0\"},\n{\"instance\": \"VI_2\", \"vip\": \"198.51.100.1/24 dev eth0\"}\n]}";
        let got = parse(Path::new("/var/lib/lbha/runtime-vips.json"), text).unwrap();
        assert_eq!(got.vips, vec![rt("VI_1", "198.51.100.1/24 dev eth0")]);
        assert_eq!(
            got.warnings,
            vec![
                "/var/lib/lbha/runtime-vips.json:3: vips[1].vip: \"198.51.100.300\" is not an IP address (value: \"198.51.100.300 dev eth0\"); entry skipped",
                "/var/lib/lbha/runtime-vips.json:4: vips[2].vip: missing `dev IFACE` (value: \"198.51.100.2/24\"); entry skipped",
                "/var/lib/lbha/runtime-vips.json:5: vips[3].instance: empty instance name; entry skipped",
                "/var/lib/lbha/runtime-vips.json:6: vips[4].vip: address listed twice (value: \"198.51.100.1/24 dev eth0\"); entry skipped",
            ]
        );
    }

    #[test]
    fn broken_files_are_errors_not_empty_sets() {
        let e = parse(Path::new("/s/f.json"), "{\"version\": 1,\n \"vips\": [ {\"instance\": 3} ]}").unwrap_err();
        assert!(e.to_string().starts_with("/s/f.json:2:"), "{e}");
        let e = parse(Path::new("/s/f.json"), "{\"version\": 2, \"vips\": []}").unwrap_err();
        assert_eq!(e.to_string(), "/s/f.json: format version 2 is not one this lbha reads (1)");
        assert!(matches!(parse(Path::new("/s"), ""), Err(StoreError::Syntax { .. })));
    }

    #[test]
    fn save_is_atomic_and_load_reads_it_back() {
        let dir = std::env::temp_dir().join(format!("lbha-rtvip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join(FILE_NAME);
        assert_eq!(load(&path).unwrap(), Loaded::default(), "a missing file is an empty set");
        let vips = vec![rt("VI_1", "198.51.100.1/24 dev eth0")];
        save(&path, &vips).unwrap();
        assert_eq!(load(&path).unwrap().vips, vips);
        save(&path, &[]).unwrap();
        assert!(load(&path).unwrap().vips.is_empty());
        let left: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from(FILE_NAME)], "no temp file left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn instance_choice() {
        let one = [inst("VI_1", "eth0", &["192.0.2.100"])];
        assert_eq!(choose_instance(&one, None, "eth9").unwrap(), "VI_1");
        assert!(matches!(choose_instance(&[], None, "eth0"), Err(RuntimeVipError::NoInstances)));
        let two = [inst("VI_1", "eth0", &["192.0.2.100"]), inst("VI_2", "eth1", &["192.0.2.101"])];
        assert_eq!(choose_instance(&two, None, "eth1").unwrap(), "VI_2");
        assert_eq!(choose_instance(&two, Some("VI_1"), "eth1").unwrap(), "VI_1");
        let e = choose_instance(&two, None, "eth2").unwrap_err().to_string();
        assert_eq!(e, "no vrrp_instance runs on eth2 (VI_1 on eth0, VI_2 on eth1); name one with --instance");
        let e = choose_instance(&two, Some("VI_9"), "eth0").unwrap_err().to_string();
        assert_eq!(e, "no vrrp_instance named \"VI_9\"");
        let same = [inst("A", "eth0", &["192.0.2.100"]), inst("B", "eth0", &["192.0.2.101"])];
        let e = choose_instance(&same, None, "eth0").unwrap_err().to_string();
        assert_eq!(e, "several vrrp_instances run on eth0 (A, B); name one with --instance");
    }

    #[test]
    fn additions_are_checked_all_or_nothing() {
        let cfg = [inst("VI_1", "eth0", &["192.0.2.100/32"]), inst("VI_2", "eth1", &["192.0.2.101"])];
        let runtime = vec![rt("VI_1", "198.51.100.1/24 dev eth0"), rt("VI_2", "198.51.100.9/24 dev eth1")];
        let plan =
            plan_add(&cfg, &runtime, "VI_1", &[vip("198.51.100.1/24 dev eth0"), vip("198.51.100.2/24 dev eth0")])
                .unwrap();
        assert_eq!(plan.present, vec![vip("198.51.100.1/24 dev eth0")]);
        assert_eq!(plan.new, vec![vip("198.51.100.2/24 dev eth0")]);
        let e = plan_add(&cfg, &runtime, "VI_1", &[vip("192.0.2.100 dev eth0")]).unwrap_err().to_string();
        assert_eq!(e, "192.0.2.100 is configured in vrrp_instance VI_1 (config file); change it there");
        let e = plan_add(&cfg, &runtime, "VI_1", &[vip("198.51.100.9/24 dev eth0")]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.9 is already a runtime VIP of vrrp_instance VI_2");
        let e = plan_add(&cfg, &runtime, "VI_1", &[vip("198.51.100.1/32 dev eth0")]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.1 is already a runtime VIP of VI_1 as `198.51.100.1/24 dev eth0`; delete it first");
        let e = plan_add(
            &cfg,
            &runtime,
            "VI_1",
            &[vip("198.51.100.3 dev eth0"), vip("192.0.2.100 dev eth0"), vip("192.0.2.101 dev eth0")],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "192.0.2.100 is configured in vrrp_instance VI_1 (config file); change it there (and 1 more like it)"
        );
    }

    #[test]
    fn deletions_match_the_record() {
        let cfg = [inst("VI_1", "eth0", &["192.0.2.100/32"])];
        let runtime = vec![
            rt("VI_1", "198.51.100.1/24 dev eth0"),
            rt("VI_1", "198.51.100.2/24 dev eth0"),
            rt("GONE", "198.51.100.3/24 dev eth0"),
        ];
        let m = |a: &str, p: Option<u8>, d: Option<&str>| VipMatch {
            addr: a.parse().unwrap(),
            prefix: p,
            dev: d.map(str::to_string),
        };
        let got =
            plan_del(&cfg, &runtime, None, &[m("198.51.100.1", Some(24), Some("eth0")), m("198.51.100.3", None, None)])
                .unwrap();
        assert_eq!(
            got,
            vec![
                ("VI_1".to_string(), vec![vip("198.51.100.1/24 dev eth0")]),
                ("GONE".to_string(), vec![vip("198.51.100.3/24 dev eth0")])
            ]
        );
        let e = plan_del(&cfg, &runtime, None, &[m("198.51.100.1", Some(32), None)]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.1 is a runtime VIP as `198.51.100.1/24 dev eth0`, not 198.51.100.1/32");
        let e = plan_del(&cfg, &runtime, None, &[m("198.51.100.1", None, Some("eth1"))]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.1 is a runtime VIP as `198.51.100.1/24 dev eth0`, not 198.51.100.1/24 dev eth1");
        let e = plan_del(&cfg, &runtime, None, &[m("192.0.2.100", None, None)]).unwrap_err().to_string();
        assert!(e.contains("configured in vrrp_instance VI_1"), "{e}");
        let e = plan_del(&cfg, &runtime, Some("VI_1"), &[m("198.51.100.3", None, None)]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.3 is not a runtime VIP of vrrp_instance VI_1");
        let e = plan_del(&cfg, &runtime, None, &[m("198.51.100.9", None, None)]).unwrap_err().to_string();
        assert_eq!(e, "198.51.100.9 is not a runtime VIP");
    }

    #[test]
    fn a_reload_hands_configured_addresses_to_the_config() {
        let cfg = [inst("VI_1", "eth0", &["192.0.2.100/32", "198.51.100.1/24"])];
        let runtime = vec![rt("VI_1", "198.51.100.1/24 dev eth0"), rt("VI_1", "198.51.100.2/24 dev eth0")];
        let (kept, gone) = taken_over(&cfg, runtime);
        assert_eq!(kept, vec![rt("VI_1", "198.51.100.2/24 dev eth0")]);
        assert_eq!(gone, vec![rt("VI_1", "198.51.100.1/24 dev eth0")]);
    }
}
