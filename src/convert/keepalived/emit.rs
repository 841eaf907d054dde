//! keepalived statements → `[[vrrp_script]]`, `[[vrrp_instance]]`, `[[vrrp_sync_group]]` with
//! keepalived's key names (the schema of `config::vrrp`). keepalived writes times in seconds;
//! lbha reads a bare number as milliseconds, so times are written with an explicit `s`.

use super::ast::{Config, Stmt};
use crate::convert::out::{Doc, Src, TableOut};
use crate::convert::report::{ConvertError, ConvertErrors, Report, ReportKind};
use toml_edit::{Array, InlineTable, Value};

const INSTANCE_ORDER: &[&str] = &[
    "name",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "state",
    "nopreempt",
    "preempt_delay",
    "authentication",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "check_unicast_src",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "mcast_group4",
    "mcast_group6",
    "strict_mode",
    "accept",
    "skip_check_adv_addr",
    "dont_track_primary",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "down_timer_adverts",
    "startup_delay",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_routes",
    "virtual_rules",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_interval",
    "gna_interval",
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "smtp_alert",
    "use_vmac",
    "vmac_xmit_base",
];
const SCRIPT_ORDER: &[&str] = &["name", "script", "interval", "timeout", "weight", "reverse", "rise", "fall", "user"];
const TRACK_FILE_ORDER: &[&str] = &["name", "file", "weight", "reverse", "init_file"];
const TRACK_PROCESS_ORDER: &[&str] = &["name", "process", "quorum", "weight", "reverse", "delay"];

/// keepalived settings with no lbha counterpart yet, by block.
const INSTANCE_UNSUPPORTED: &[&str] = &[
    "native_ipv6",
    "track_src_ip",
    "lvs_sync_daemon_interface",
    "debug",
    "kernel_rx_buf_size",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "track_bfd",
    "garp_extra_if",
    "notify_priority_changes",
    "linkbeat_use_polling",
    "no_ipvlan",
    "use_ipvlan",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_lower_prio_delay",
];
const TOP_UNSUPPORTED: &[&str] = &[
    "virtual_server",
    "virtual_server_group",
    "linkbeat_interfaces",
    "bfd_instance",
    "garp_group",
    "net_namespace",
    "net_namespace_ipvs",
    "instance",
    "use_pid_dir",
];

struct Cx {
    reports: Vec<Report>,
    errors: Vec<ConvertError>,
}

impl Cx {
    fn report(&mut self, s: &Stmt, kind: ReportKind, msg: impl Into<String>) {
        self.reports.push(Report { loc: s.loc.clone(), kind, directive: s.text(), message: msg.into() });
    }
    fn drop(&mut self, out: &mut TableOut, s: &Stmt, kind: ReportKind, msg: impl Into<String>) {
        out.dropped.extend(s.comments.iter().cloned());
        out.dropped.push(format!(" [line {}, {}] {}", s.loc.line, kind.label(), s.text()));
        self.report(s, kind, msg);
    }
    fn error(&mut self, s: &Stmt, msg: impl Into<String>) {
        self.errors.push(ConvertError {
            loc: s.loc.clone(),
            column: None,
            message: format!("`{}`: {}", s.text(), msg.into()),
        });
    }
    fn arg<'s>(&mut self, s: &'s Stmt, i: usize) -> Option<&'s str> {
        let a = s.arg(i);
        if a.is_none() {
            self.error(s, "missing value");
        }
        a
    }
    fn int(&mut self, s: &Stmt, i: usize) -> Option<i64> {
        let v = self.arg(s, i)?;
        match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(s, format!("bad number `{v}`"));
                None
            }
        }
    }
    /// keepalived seconds (`1`, `0.5`) as a duration lbha reads (`"1s"`, `"0.5s"`).
    fn secs(&mut self, s: &Stmt, i: usize) -> Option<String> {
        let v = self.arg(s, i)?;
        let ok = !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && v.bytes().filter(|b| *b == b'.').count() <= 1
            && v.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if ok {
            Some(format!("{v}s"))
        } else {
            self.error(s, format!("bad number of seconds `{v}`"));
            None
        }
    }
}

fn src(s: &Stmt) -> Src {
    Src { loc: s.loc.clone(), comments: s.comments.clone(), trailing: s.trailing.clone() }
}

/// A command as keepalived runs it: the words after the keyword, joined by spaces.
fn command(s: &Stmt) -> String {
    s.words[1..].join(" ")
}

/// A notify script: keepalived reads `SCRIPT [USER [GROUP]]`, the script quoted when it has
/// arguments. lbha runs every notify as `[global] script_user`, so a per-script user is refused
/// rather than appended to the command as arguments.
fn notify_command(c: &Stmt, cx: &mut Cx) -> Option<String> {
    let script = cx.arg(c, 1)?;
    if c.words.len() > 2 {
        cx.error(
            c,
            format!(
                "keepalived runs this script as user `{}`; lbha runs notify scripts as [global] script_user (set it, or quote the script with its arguments)",
                c.words[2..].join(" ")
            ),
        );
        return None;
    }
    Some(script.to_string())
}

/// Defaults `global_defs` gives every instance.
#[derive(Default)]
struct Globals {
    version: Option<(i64, Src)>,
    garp: Vec<(&'static str, Value, Src)>,
    /// Keys of lbha's `[global]` (`script_user`, `enable_script_security`).
    global: Vec<(&'static str, Value, Src)>,
}

/// Converts keepalived statements into `doc`. Returns what was reported.
pub(crate) fn convert(cfg: &Config, doc: &mut Doc) -> Result<Vec<Report>, ConvertErrors> {
    let mut cx = Cx { reports: cfg.reports.clone(), errors: Vec::new() };
    let mut g = Globals::default();
    for s in cfg.stmts.iter().filter(|s| s.keyword() == "global_defs") {
        global_defs(s, &mut g, &mut cx);
    }
    enum Out {
        Table(&'static str, TableOut, &'static [&'static str]),
        Comments(Vec<String>),
    }
    let mut outs: Vec<(&Stmt, Out)> = Vec::new();
    let mut root: Vec<(&'static str, String, Src)> = Vec::new();
    for s in &cfg.stmts {
        let out = match s.keyword() {
            "global_defs" => Out::Comments(Vec::new()),
            "static_ipaddress" | "static_routes" | "static_rules" => {
                statics(s, &mut root, &mut cx);
                Out::Comments(Vec::new())
            }
            "vrrp_script" => Out::Table("vrrp_script", script(s, &mut cx), SCRIPT_ORDER),
            "track_file" | "vrrp_track_file" => Out::Table("vrrp_track_file", track_file(s, &mut cx), TRACK_FILE_ORDER),
            "vrrp_track_process" | "track_process" => {
                Out::Table("vrrp_track_process", track_process(s, &mut cx), TRACK_PROCESS_ORDER)
            }
            "vrrp_instance" => Out::Table("vrrp_instance", instance(s, &g, &mut cx), INSTANCE_ORDER),
            "vrrp_sync_group" => Out::Table(
                "vrrp_sync_group",
                sync_group(s, &mut cx),
                &[
                    "name",
                    "group",
                    "track_interface",
                    "track_script",
                    "track_file",
                    "track_process",
                    "notify_master",
                    "notify_backup",
                    "notify_fault",
                    "notify_stop",
                    "notify",
                    "smtp_alert",
                ],
            ),
            kw => {
                let (kind, msg) = if TOP_UNSUPPORTED.contains(&kw) {
                    (
                        ReportKind::Unsupported,
                        format!("`{kw}` is not supported yet by lbha (lbha does VRRP, not LVS/IPVS)"),
                    )
                } else {
                    (ReportKind::Unknown, "not a keepalived keyword lbha knows".to_string())
                };
                cx.report(s, kind, msg);
                let mut lines = s.comments.clone();
                lines.push(format!(
                    " [line {}, {}] {}{}",
                    s.loc.line,
                    kind.label(),
                    s.text(),
                    if s.block.is_some() { " { ... }" } else { "" }
                ));
                Out::Comments(lines)
            }
        };
        outs.push((s, out));
    }
    if !cx.errors.is_empty() {
        return Err(ConvertErrors(cx.errors));
    }
    for (s, out) in outs {
        match out {
            Out::Table(name, t, order) => {
                let mut header = s.comments.clone();
                header.push(format!(" {} ({})", s.text(), s.loc));
                header.extend(s.trailing.clone());
                header.extend(t.dropped.iter().cloned());
                doc.table(name, true, header, &s.loc, &t, order);
            }
            Out::Comments(lines) => {
                if s.keyword() == "global_defs" {
                    let mut lines = s.comments.clone();
                    lines.push(format!(" global_defs ({}): applied to the instances below", s.loc));
                    doc.pend(lines);
                } else {
                    doc.pend(lines);
                }
            }
        }
    }
    global_keys(doc, &g.global);
    root_lists(doc, &root);
    doc.pend(cfg.tail.iter().cloned());
    cx.reports.sort_by_key(|r| (r.loc.file.clone(), r.loc.line));
    Ok(cx.reports)
}

fn global_defs(s: &Stmt, g: &mut Globals, cx: &mut Cx) {
    for c in s.children() {
        match c.keyword() {
            "vrrp_version" => {
                if let Some(v) = cx.int(c, 1) {
                    g.version = Some((v, src(c)));
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = cx.secs(c, 1) {
                    g.garp.push(("garp_master_delay", v.into(), src(c)));
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(v) = cx.int(c, 1) {
                    g.garp.push(("garp_master_repeat", v.into(), src(c)));
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = cx.secs(c, 1) {
                    g.garp.push(("garp_master_refresh", v.into(), src(c)));
                }
            }
            "vrrp_garp_master_refresh_repeat" | "vrrp_garp_lower_prio_repeat" | "vrrp_down_timer_adverts" => {
                if let Some(v) = cx.int(c, 1) {
                    g.garp.push((instance_key(c.keyword()), v.into(), src(c)));
                }
            }
            "vrrp_garp_lower_prio_delay" | "vrrp_garp_interval" | "vrrp_gna_interval" | "vrrp_startup_delay" => {
                if let Some(v) = cx.secs(c, 1) {
                    g.garp.push((instance_key(c.keyword()), v.into(), src(c)));
                }
            }
            // keepalived: one GARP / NA, no second burst.
            "vrrp_min_garp" => {
                if boolean(c, cx) == Some(true) {
                    g.garp.push(("garp_master_repeat", 1.into(), src(c)));
                    g.garp.push(("garp_master_delay", "0s".into(), src(c)));
                }
            }
            "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                if let Some(v) = cx.arg(c, 1) {
                    g.garp.push((instance_key(c.keyword()), v.into(), src(c)));
                }
            }
            "vrrp_strict"
            | "vrrp_skip_check_adv_addr"
            | "vrrp_check_unicast_src"
            | "vrrp_lower_prio_no_advert"
            | "vrrp_higher_prio_send_advert" => {
                if let Some(b) = boolean(c, cx) {
                    g.garp.push((instance_key(c.keyword()), b.into(), src(c)));
                }
            }
            // keepalived's firewall for `no_accept`, which lbha refuses (no rules are ever needed).
            "vrrp_iptables" | "vrrp_ipsets" | "vrrp_nftables" | "nftables_priority" | "nftables_ifindex"
            | "nftables_counters" => cx.report(
                c,
                ReportKind::Ignored,
                "keepalived's firewall rules for no_accept; lbha refuses no_accept instead (its listeners need the VIP traffic), so no rules are needed",
            ),
            // keepalived's own process: lbha's VRRP runs inside the proxy process, whose scheduling
            // and memory are the service's (systemd unit), not the config's.
            "max_auto_priority" | "vrrp_no_swap" | "vrrp_rt_priority" | "vrrp_priority" | "vrrp_cpu_affinity"
            | "vrrp_rlimit_rttime" | "vrrp_process_name" => cx.report(
                c,
                ReportKind::Ignored,
                "scheduling of keepalived's VRRP process; lbha runs VRRP inside its one process (set CPUSchedulingPolicy / MemoryLock in its systemd unit instead)",
            ),
            "dynamic_interfaces" => cx.report(
                c,
                ReportKind::Ignored,
                "lbha always allows it: an instance whose interface is missing waits in FAULT until it appears",
            ),
            "router_id" | "notification_email_from" | "smtp_helo_name" => {
                if let Some(v) = cx.arg(c, 1) {
                    g.global.push((global_key(c.keyword()), v.into(), src(c)));
                }
            }
            "smtp_server" => {
                if cx.arg(c, 1).is_some() {
                    g.global.push(("smtp_server", c.words[1..].join(" ").into(), src(c)));
                }
            }
            "smtp_connect_timeout" => {
                if let Some(v) = cx.secs(c, 1) {
                    g.global.push(("smtp_connect_timeout", v.into(), src(c)));
                }
            }
            "notification_email" => {
                let mut a = Array::new();
                for m in c.children() {
                    for w in &m.words {
                        a.push(w.as_str());
                    }
                }
                g.global.push(("notification_email", Value::Array(a), src(c)));
            }
            "smtp_alert" | "smtp_alert_vrrp" => {
                if let Some(b) = boolean(c, cx) {
                    g.global.push((global_key(c.keyword()), b.into(), src(c)));
                }
            }
            "enable_script_security" => g.global.push(("enable_script_security", true.into(), src(c))),
            "script_user" => {
                if cx.arg(c, 1).is_some() {
                    if c.words.len() > 3 {
                        cx.error(c, "takes a user and at most a group");
                    } else {
                        g.global.push(("script_user", c.words[1..].join(" ").into(), src(c)));
                    }
                }
            }
            _ => cx.report(c, ReportKind::Unsupported, "this global_defs setting is not supported yet by lbha"),
        }
    }
}

/// The instance key a `vrrp_*` global_defs default sets.
fn instance_key(kw: &str) -> &'static str {
    match kw {
        "vrrp_garp_master_refresh_repeat" => "garp_master_refresh_repeat",
        "vrrp_garp_lower_prio_repeat" => "garp_lower_prio_repeat",
        "vrrp_garp_lower_prio_delay" => "garp_lower_prio_delay",
        "vrrp_garp_interval" => "garp_interval",
        "vrrp_gna_interval" => "gna_interval",
        "vrrp_mcast_group4" => "mcast_group4",
        "vrrp_mcast_group6" => "mcast_group6",
        "vrrp_strict" => "strict_mode",
        "vrrp_skip_check_adv_addr" => "skip_check_adv_addr",
        "vrrp_check_unicast_src" => "check_unicast_src",
        "vrrp_lower_prio_no_advert" => "lower_prio_no_advert",
        "vrrp_down_timer_adverts" => "down_timer_adverts",
        "vrrp_startup_delay" => "startup_delay",
        _ => "higher_prio_send_advert",
    }
}

fn global_key(kw: &str) -> &'static str {
    match kw {
        "router_id" => "router_id",
        "notification_email_from" => "notification_email_from",
        "smtp_helo_name" => "smtp_helo_name",
        "smtp_alert" => "smtp_alert",
        _ => "smtp_alert_vrrp",
    }
}

/// keepalived's `KEYWORD [BOOL]`: alone it means true.
fn boolean(c: &Stmt, cx: &mut Cx) -> Option<bool> {
    match c.arg(1).map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "yes" | "on" | "1") => Some(true),
        Some("false" | "no" | "off" | "0") => Some(false),
        Some(other) => {
            cx.error(c, format!("expected true or false, not `{other}`"));
            None
        }
    }
}

/// Adds `keys` to `[global]`: into the table the haproxy.cfg conversion made, or a new one.
fn global_keys(doc: &mut Doc, keys: &[(&'static str, Value, Src)]) {
    let Some((_, _, first)) = keys.first() else {
        return;
    };
    if let Some(t) = doc.doc.get_mut("global").and_then(|i| i.as_table_mut()) {
        for (k, v, s) in keys {
            t.insert(k, toml_edit::Item::Value(v.clone()));
            doc.origins.add(format!("global.{k}"), s.loc.clone());
        }
        return;
    }
    let mut out = TableOut::default();
    for (k, v, s) in keys {
        out.set(k, v.clone(), s.clone());
    }
    let header = vec![" global_defs".to_string()];
    doc.table("global", false, header, &first.loc, &out, &["script_user", "enable_script_security", "router_id"]);
}

fn name_of(s: &Stmt, out: &mut TableOut, cx: &mut Cx) {
    match s.arg(1) {
        Some(n) => out.set("name", n, Src::bare(s.loc.clone())),
        None => cx.error(s, format!("{} needs a name", s.keyword())),
    }
    if s.block.is_none() {
        cx.error(s, format!("{} needs a `{{ ... }}` block", s.keyword()));
    }
}

fn script(s: &Stmt, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    name_of(s, &mut out, cx);
    for c in s.children() {
        let kw = c.keyword();
        match kw {
            "script" => {
                if cx.arg(c, 1).is_some() {
                    out.set("script", command(c), src(c));
                }
            }
            "interval" | "timeout" => {
                if let Some(v) = cx.secs(c, 1) {
                    out.set(kw, v, src(c));
                }
            }
            "weight" | "rise" | "fall" => {
                if let Some(v) = cx.int(c, 1) {
                    out.set(kw, v, src(c));
                }
                if kw == "weight" {
                    match c.arg(2) {
                        None | Some("noreverse" | "no_reverse") => {}
                        Some("reverse") => out.set("reverse", true, src(c)),
                        Some(x) => cx.error(c, format!("expected `reverse`, not `{x}`")),
                    }
                }
            }
            "user" => {
                if cx.arg(c, 1).is_some() {
                    if c.words.len() > 3 {
                        cx.error(c, "takes a user and at most a group");
                    } else {
                        out.set("user", c.words[1..].join(" "), src(c));
                    }
                }
            }
            "init_fail" => cx.drop(&mut out, c, ReportKind::Unsupported, "not supported yet by lbha"),
            _ => cx.drop(&mut out, c, ReportKind::Unknown, "not a vrrp_script keyword lbha knows"),
        }
    }
    out
}

/// `weight W [reverse]` of a `track_file` or `vrrp_track_process` block.
fn weight(c: &Stmt, out: &mut TableOut, cx: &mut Cx) {
    if let Some(v) = cx.int(c, 1) {
        out.set("weight", v, src(c));
    }
    match c.arg(2) {
        None => {}
        Some("reverse") => out.set("reverse", true, src(c)),
        Some(x) => cx.error(c, format!("expected `reverse`, not `{x}`")),
    }
}

/// `track_file NAME { file PATH; weight W [reverse]; init_file [VALUE] [overwrite] }`.
fn track_file(s: &Stmt, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    name_of(s, &mut out, cx);
    for c in s.children() {
        match c.keyword() {
            "file" => {
                if let Some(v) = cx.arg(c, 1) {
                    out.set("file", v, src(c));
                }
            }
            "weight" => weight(c, &mut out, cx),
            "init_file" => {
                let mut it = InlineTable::new();
                let mut value = 0;
                for w in &c.words[1..] {
                    match (w.as_str(), w.parse::<i64>()) {
                        ("overwrite", _) => {
                            it.insert("overwrite", true.into());
                        }
                        (_, Ok(n)) => value = n,
                        _ => cx.error(c, format!("expected `[VALUE] [overwrite]`, not `{w}`")),
                    }
                }
                it.insert("value", value.into());
                it.sort_values();
                out.set("init_file", Value::InlineTable(it), src(c));
            }
            _ => cx.drop(&mut out, c, ReportKind::Unknown, "not a track_file keyword lbha knows"),
        }
    }
    out
}

/// `vrrp_track_process NAME { process P; quorum N; weight W [reverse]; delay S }`.
fn track_process(s: &Stmt, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    name_of(s, &mut out, cx);
    for c in s.children() {
        match c.keyword() {
            "process" => {
                if let Some(v) = cx.arg(c, 1) {
                    out.set("process", v, src(c));
                }
                if c.words.len() > 2 {
                    cx.report(
                        c,
                        ReportKind::Unsupported,
                        "process parameters are not matched by lbha; converted by name",
                    );
                }
            }
            "quorum" => {
                if let Some(v) = cx.int(c, 1) {
                    out.set("quorum", v, src(c));
                }
            }
            "weight" => weight(c, &mut out, cx),
            "delay" => {
                if let Some(v) = cx.secs(c, 1) {
                    out.set("delay", v, src(c));
                }
            }
            _ => cx.drop(&mut out, c, ReportKind::Unsupported, "not supported yet by lbha"),
        }
    }
    out
}

/// An instance's `track_file { NAME [weight W [reverse]] }` (or `track_process`).
fn track_file_refs(c: &Stmt, key: &str, out: &mut TableOut, cx: &mut Cx) {
    for t in c.children() {
        let mut it = InlineTable::new();
        it.insert("name", t.keyword().into());
        match (t.arg(1), t.arg(2), t.arg(3)) {
            (None, ..) => {}
            (Some("weight"), Some(w), rev) => match (w.parse::<i64>(), rev) {
                (Ok(n), None | Some("noreverse" | "no_reverse")) => {
                    it.insert("weight", n.into());
                }
                (Ok(n), Some("reverse")) => {
                    it.insert("weight", n.into());
                    it.insert("reverse", true.into());
                }
                _ => cx.error(t, "expected `NAME [weight N [reverse]]`"),
            },
            _ => cx.error(t, "expected `NAME [weight N [reverse]]`"),
        }
        out.push(key, Value::InlineTable(it), src(t));
    }
}

/// `track_interface { eth0 weight -10 [reverse] }` / `track_script { chk weight 2 [reverse] }`.
fn tracks(c: &Stmt, key: &str, out: &mut TableOut, cx: &mut Cx) {
    for t in c.children() {
        let mut it = InlineTable::new();
        it.insert("name", t.keyword().into());
        match (t.arg(1), t.arg(2)) {
            (None, _) => {}
            (Some("weight"), Some(w)) => match (w.parse::<i64>(), t.arg(3), t.words.len()) {
                (Ok(n), None | Some("noreverse" | "no_reverse"), ..=4) => {
                    it.insert("weight", n.into());
                }
                (Ok(n), Some("reverse"), 4) => {
                    it.insert("weight", n.into());
                    it.insert("reverse", true.into());
                }
                (Ok(_), ..) => cx.error(t, "expected `NAME [weight N [reverse]]`"),
                (Err(_), ..) => cx.error(t, format!("bad weight `{w}`")),
            },
            _ => cx.error(t, "expected `NAME [weight N]`"),
        }
        out.push(key, Value::InlineTable(it), src(t));
    }
}

fn instance(s: &Stmt, g: &Globals, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    name_of(s, &mut out, cx);
    if let Some((v, src)) = &g.version {
        out.set("version", *v, src.clone());
    }
    for (k, v, src) in &g.garp {
        out.set(k, v.clone(), src.clone());
    }
    for c in s.children() {
        let kw = c.keyword();
        match kw {
            "state" => {
                if let Some(v) = cx.arg(c, 1) {
                    let up = v.to_ascii_uppercase();
                    if up == "MASTER" || up == "BACKUP" {
                        out.set("state", up, src(c));
                    } else {
                        cx.error(c, format!("state must be MASTER or BACKUP, not `{v}`"));
                    }
                }
            }
            "interface" | "unicast_src_ip" | "mcast_src_ip" => {
                if let Some(v) = cx.arg(c, 1) {
                    // keepalived reads both into one source address: the last one wins.
                    match kw {
                        "unicast_src_ip" => {
                            out.remove("mcast_src_ip");
                        }
                        "mcast_src_ip" => {
                            out.remove("unicast_src_ip");
                        }
                        _ => {}
                    }
                    out.set(kw, v, src(c));
                }
            }
            "virtual_router_id"
            | "priority"
            | "version"
            | "garp_master_repeat"
            | "garp_master_refresh_repeat"
            | "garp_lower_prio_repeat"
            | "unicast_ttl"
            | "down_timer_adverts" => {
                if let Some(v) = cx.int(c, 1) {
                    out.set(kw, v, src(c));
                }
            }
            "advert_int" | "preempt_delay" | "garp_master_delay" | "garp_master_refresh" | "garp_lower_prio_delay" => {
                if let Some(v) = cx.secs(c, 1) {
                    out.set(kw, v, src(c));
                }
            }
            "nopreempt" => out.set("nopreempt", true, src(c)),
            "promote_secondaries" => cx.report(
                c,
                ReportKind::Ignored,
                "lbha always sets promote_secondaries on the interface of a VRRP instance",
            ),
            "dont_track_primary" | "skip_check_adv_addr" | "check_unicast_src" | "unicast_fault_no_peer" => {
                out.set(kw, true, src(c))
            }
            // `never` also stops keepalived accepting the old form; lbha always accepts every form.
            "old_unicast_checksum" => {
                if c.arg(1) == Some("never") {
                    cx.report(
                        c,
                        ReportKind::Approximated,
                        "lbha accepts adverts with either checksum form; `never` changes nothing",
                    );
                } else {
                    out.set(kw, true, src(c));
                }
            }
            "strict_mode" | "lower_prio_no_advert" | "higher_prio_send_advert" => {
                if let Some(b) = boolean(c, cx) {
                    out.set(kw, b, src(c));
                }
            }
            "accept" => out.set("accept", true, src(c)),
            // lbha refuses it with the reason (see `config::vrrp::strict`): converted as written.
            "no_accept" => out.set("accept", false, src(c)),
            // `use_vmac [NAME]`: keepalived names it `vrrp.VRID` by default, as lbha does.
            "use_vmac" => match c.arg(1) {
                Some(name) => out.set("use_vmac", name, src(c)),
                None => out.set("use_vmac", true, src(c)),
            },
            "vmac_xmit_base" => out.set("vmac_xmit_base", true, src(c)),
            "preempt" => {
                out.remove("nopreempt");
            }
            "authentication" => {
                for a in c.children() {
                    match (a.keyword(), a.arg(1)) {
                        ("auth_type" | "auth_pass", Some(v)) => out.set_in("authentication", a.keyword(), v, src(a)),
                        _ => cx.drop(&mut out, a, ReportKind::Unknown, "expected auth_type or auth_pass"),
                    }
                }
            }
            "unicast_peer" => {
                for p in c.children() {
                    if p.words.len() > 1 {
                        cx.report(
                            p,
                            ReportKind::Unsupported,
                            format!(
                                "`{}` is not supported yet; the peer is converted without it",
                                p.words[1..].join(" ")
                            ),
                        );
                    }
                    out.push("unicast_peer", p.keyword(), src(p));
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                for v in c.children() {
                    if let Some(text) = vip(v, cx) {
                        out.push(kw, text, src(v));
                    }
                }
            }
            "virtual_routes" | "virtual_rules" => {
                for r in c.children() {
                    if let Some(text) = route_or_rule(kw, r, cx) {
                        out.push(kw, text, src(r));
                    }
                }
            }
            "track_interface" | "track_script" => tracks(c, kw, &mut out, cx),
            "track_file" | "track_process" => track_file_refs(c, kw, &mut out, cx),
            "smtp_alert" => {
                if let Some(b) = boolean(c, cx) {
                    out.set("smtp_alert", b, src(c));
                }
            }
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                if let Some(cmd) = notify_command(c, cx) {
                    out.set(kw, cmd, src(c));
                }
            }
            _ if INSTANCE_UNSUPPORTED.contains(&kw) => {
                cx.drop(&mut out, c, ReportKind::Unsupported, "not supported yet by lbha")
            }
            _ => cx.drop(&mut out, c, ReportKind::Unknown, "not a vrrp_instance keyword lbha knows"),
        }
    }
    out
}

/// A `*_routes` / `*_rules` entry, checked as lbha will read it (a located error otherwise).
fn route_or_rule(kw: &str, r: &Stmt, cx: &mut Cx) -> Option<String> {
    let text = r.words.join(" ");
    let checked = if kw.ends_with("routes") {
        crate::net::route::parse_route(&text).map(|_| ())
    } else {
        crate::net::route::parse_rule(&text).map(|_| ())
    };
    match checked {
        Ok(()) => Some(text),
        Err(e) => {
            cx.error(r, e);
            None
        }
    }
}

/// Top-level `static_ipaddress` / `static_routes` / `static_rules` blocks, for [`root_lists`].
fn statics(s: &Stmt, root: &mut Vec<(&'static str, String, Src)>, cx: &mut Cx) {
    let key = match s.keyword() {
        "static_ipaddress" => "static_ipaddress",
        "static_routes" => "static_routes",
        _ => "static_rules",
    };
    for c in s.children() {
        let text = if key == "static_ipaddress" { vip(c, cx) } else { route_or_rule(key, c, cx) };
        if let Some(t) = text {
            root.push((key, t, src(c)));
        }
    }
}

/// lbha's top-level arrays (`static_*`), before every table.
fn root_lists(doc: &mut Doc, root: &[(&'static str, String, Src)]) {
    for key in ["static_ipaddress", "static_routes", "static_rules"] {
        let mut a = Array::new();
        for (k, text, s) in root.iter().filter(|(k, _, _)| *k == key) {
            doc.origins.add(format!("{k}[{}]", a.len()), s.loc.clone());
            a.push(text.as_str());
        }
        if !a.is_empty() {
            doc.doc.insert(key, toml_edit::Item::Value(Value::Array(a)));
        }
    }
}

/// `ADDR[/LEN] [dev IF] [label L] [brd X] [scope S] ...`: lbha keeps `dev` and `label`.
fn vip(v: &Stmt, cx: &mut Cx) -> Option<String> {
    let mut kept = vec![v.keyword().to_string()];
    let mut left = Vec::new();
    let mut i = 1;
    while let Some(w) = v.arg(i) {
        match (w, v.arg(i + 1)) {
            ("dev" | "label", Some(x)) => {
                kept.push(format!("{w} {x}"));
                i += 2;
            }
            ("brd" | "broadcast" | "scope" | "use_vmac" | "preferred_lft" | "metric" | "track_group", Some(x)) => {
                left.push(format!("{w} {x}"));
                i += 2;
            }
            (w, _) => {
                left.push(w.to_string());
                i += 1;
            }
        }
    }
    if !left.is_empty() {
        cx.report(
            v,
            ReportKind::Unsupported,
            format!("`{}` is not supported yet; the address is converted without it", left.join(" ")),
        );
    }
    Some(kept.join(" "))
}

fn sync_group(s: &Stmt, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    name_of(s, &mut out, cx);
    for c in s.children() {
        match c.keyword() {
            "group" => {
                let mut a = Array::new();
                for m in c.children() {
                    a.push(m.keyword());
                    if m.words.len() > 1 {
                        for w in &m.words[1..] {
                            a.push(w.as_str());
                        }
                    }
                }
                out.set("group", a, src(c));
            }
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                if let Some(cmd) = notify_command(c, cx) {
                    out.set(c.keyword(), cmd, src(c));
                }
            }
            kw @ ("track_interface" | "track_script") => tracks(c, kw, &mut out, cx),
            kw @ ("track_file" | "track_process") => track_file_refs(c, kw, &mut out, cx),
            "smtp_alert" => {
                if let Some(b) = boolean(c, cx) {
                    out.set("smtp_alert", b, src(c));
                }
            }
            _ => cx.drop(
                &mut out,
                c,
                ReportKind::Unsupported,
                "sync group settings other than `group` and the notifies are not supported yet",
            ),
        }
    }
    out
}
