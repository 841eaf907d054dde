//! Reads the live snapshot and runtime state into the plain values the answers are made of.

use super::parse::ServerRef;
use super::servers_state::{CheckResult, ServerLine};
use super::stat_json::{InfoField, Tags, Ty};
use super::status::{BackendStatus, FrontendStatus, ReloadSummary, ServerStatus, Status, VrrpStatus};
use crate::config::snapshot::Mode;
use crate::proxy::Active;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Facts about the process that the snapshot does not hold.
#[derive(Debug, Clone)]
pub struct ProcessFacts {
    pub pid: u32,
    pub uptime: Duration,
    /// Worker threads actually running (a reload does not change them).
    pub threads: usize,
    /// The process-wide connection limit set at start.
    pub maxconn: u32,
    pub config: String,
    pub stopping: bool,
    pub node: String,
}

pub fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

/// Indexes of `backend/server` in the active snapshot, or HAProxy's message for what is missing.
pub fn find_server(active: &Active, r: &ServerRef) -> Result<(usize, usize), &'static str> {
    let (bi, b) = active.snap.backend(&r.backend).ok_or("No such backend.")?;
    let si = b.servers.iter().position(|s| s.name == r.server).ok_or("No such server.")?;
    Ok((bi, si))
}

/// One server-state line per server, of every backend or of backend `only`.
pub fn server_lines(active: &Active, only: Option<usize>) -> Vec<ServerLine> {
    let mut out = Vec::new();
    for (bi, b) in active.snap.backends.iter().enumerate() {
        if only.is_some_and(|o| o != bi) {
            continue;
        }
        for (si, s) in b.servers.iter().enumerate() {
            let rt = &active.rt.backends[bi].servers[si];
            let since = rt.last_change.lock().map(|l| l.0.elapsed().as_secs()).unwrap_or(0);
            let check = match &s.check {
                None if s.awaits_check => CheckResult::Pending,
                None => CheckResult::None,
                Some(_) if !rt.checked.load(Relaxed) => CheckResult::Pending,
                Some(_) if rt.is_up() => CheckResult::Passed,
                Some(_) => CheckResult::Failed,
            };
            let last = rt.last_check.lock().map(|c| check_status_number(&c)).unwrap_or(0);
            let check_status = check_status(check, last);
            let check_health = rt.check_health.load(Relaxed);
            out.push(ServerLine {
                be_id: b.id as usize,
                be_name: b.name.clone(),
                srv_id: s.id as usize,
                srv_name: s.name.clone(),
                addr: s.addr,
                up: rt.is_up(),
                nolb: rt.nolb(),
                admin: rt.forced_admin(),
                inherited: rt.inherited(),
                config_disabled: s.disabled,
                bk_forced_id: b.id_forced,
                srv_forced_id: s.id_forced,
                uweight: rt.weight(),
                iweight: s.weight,
                since_change_secs: since,
                check,
                check_status,
                check_health,
                check_in_progress: rt.probing.load(Relaxed),
                targets: s.state_targets,
                use_ssl: s.tls.is_some(),
                no_addr: active.rt.backends[bi].no_addr.get(si).copied().unwrap_or(false),
                fqdn: s.fqdn.clone(),
                agent: s.agent.as_ref().map(|_| rt.agent_on()),
                srvrecord: s.dns.as_ref().filter(|d| d.srv).map(|d| d.host.clone()),
            });
        }
    }
    out
}

/// HAProxy's `srv_check_status`: `HCHK_STATUS_INI` until a check has a result, then the last
/// result's. (`srv_check_health` is the server's own counter, see `state::ServerRt`.)
fn check_status(check: CheckResult, last: u8) -> u8 {
    const INI: u8 = 1;
    match check {
        CheckResult::None | CheckResult::Pending => INI,
        CheckResult::Passed | CheckResult::Failed => last,
    }
}

/// HAProxy's `HCHK_STATUS_*` number for a check's reason, told by the description it starts
/// with (the words `crate::health::CheckStatus::desc` and the probes use); 0 (unknown) else.
fn check_status_number(reason: &str) -> u8 {
    const BY_PREFIX: [(&str, u8); 13] = [
        ("Layer4 check passed", 6),
        ("Layer4 timeout", 7),
        ("Layer4 connection", 8),
        ("Layer6 check passed", 9),
        ("Layer6 timeout", 10),
        ("Layer6 invalid", 11),
        ("Layer7 timeout", 12),
        ("Layer7 invalid", 13),
        ("Layer7 wrong content", 13),
        ("Layer7 check passed", 15),
        ("Layer7 check conditionally passed", 16),
        ("Layer7 wrong status", 17),
        ("Layer7 response error", 17),
    ];
    BY_PREFIX.iter().find(|(p, _)| reason.starts_with(p)).map_or(0, |(_, n)| *n)
}

/// `show backend`: HAProxy's `# name` list, and for JSON a line per backend with its servers.
pub fn backends(active: &Active) -> (String, serde_json::Value) {
    let mut text = String::from("# name\n");
    let mut list = Vec::new();
    for b in backend_status(active) {
        text.push_str(&b.name);
        text.push('\n');
        list.push(serde_json::json!({
            "name": b.name,
            "mode": b.mode,
            "balance": b.balance,
            "servers_up": b.up,
            "servers_total": b.total,
        }));
    }
    (text, serde_json::Value::Array(list))
}

fn backend_status(active: &Active) -> Vec<BackendStatus> {
    active
        .snap
        .backends
        .iter()
        .enumerate()
        .map(|(bi, b)| {
            let brt = &active.rt.backends[bi];
            let rts = &brt.servers;
            BackendStatus {
                name: b.name.clone(),
                mode: mode_word(b.mode).into(),
                balance: b.algorithm.to_string(),
                up: (0..rts.len()).filter(|&i| brt.server_usable(i)).count(),
                total: b.servers.len(),
                servers: b
                    .servers
                    .iter()
                    .zip(rts)
                    .map(|(s, rt)| ServerStatus {
                        name: s.name.clone(),
                        addr: s.addr.to_string(),
                        status: rt.status().into(),
                        weight: rt.weight(),
                        backup: s.backup,
                    })
                    .collect(),
            }
        })
        .collect()
}

pub fn status(active: &Active, p: &ProcessFacts, reloads: ReloadSummary, vrrp: Vec<VrrpStatus>) -> Status {
    Status {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: p.pid,
        uptime_sec: p.uptime.as_secs(),
        generation: active.generation,
        config: p.config.clone(),
        reloads,
        frontends: active
            .snap
            .frontends
            .iter()
            .enumerate()
            .map(|(i, f)| FrontendStatus {
                name: f.name.clone(),
                mode: mode_word(f.mode).into(),
                binds: f
                    .binds
                    .iter()
                    .map(|b| {
                        let mut t = b.addr.to_string();
                        if b.tls.is_some() {
                            t.push_str(" ssl");
                        }
                        if b.h2 {
                            t.push_str(" proto h2");
                        }
                        t
                    })
                    .collect(),
                cur_sessions: active.rt.frontends[i].cur_sessions.load(Relaxed).into(),
                total_sessions: active.rt.frontends[i].total_sessions.load(Relaxed),
            })
            .collect(),
        backends: backend_status(active),
        vrrp,
        announce: None,
    }
}

/// `show info`: HAProxy's names where HAProxy has the figure, then lbha's reload facts.
pub fn info_fields(active: &Active, p: &ProcessFacts, reloads: &ReloadSummary) -> Vec<InfoField> {
    const PRODUCT: Tags = Tags("Product", "Output", "Service");
    const CONF: Tags = Tags("Config", "Output", "Process");
    const KEY: Tags = Tags("Key", "Output", "Process");
    const DURATION: Tags = Tags("Metric", "Duration", "Process");
    const GAUGE: Tags = Tags("Metric", "Gauge", "Process");
    const COUNTER: Tags = Tags("Metric", "Counter", "Process");
    const STATUS: Tags = Tags("Status", "Output", "Process");
    let sum = |f: &dyn Fn(&crate::state::Counters) -> u64| -> u64 { active.rt.frontends.iter().map(|c| f(c)).sum() };
    let last = reloads.last.as_ref();
    vec![
        InfoField::new("Name", "lbha", Ty::Str, PRODUCT),
        InfoField::new("Version", env!("CARGO_PKG_VERSION"), Ty::Str, PRODUCT),
        InfoField::new("Nbthread", p.threads, Ty::U32, CONF),
        InfoField::new("Process_num", 1, Ty::U32, KEY),
        InfoField::new("Pid", p.pid, Ty::U32, KEY),
        InfoField::new("Uptime", super::status::uptime(p.uptime.as_secs()), Ty::Str, DURATION),
        InfoField::new("Uptime_sec", p.uptime.as_secs(), Ty::U32, DURATION),
        InfoField::new("Maxconn", p.maxconn, Ty::U32, Tags("Config", "Limit", "Process")),
        InfoField::new("CurrConns", sum(&|c| c.cur_sessions.load(Relaxed).into()), Ty::U32, GAUGE),
        InfoField::new("CumConns", sum(&|c| c.total_sessions.load(Relaxed)), Ty::U64, COUNTER),
        InfoField::new("CumReq", sum(&|c| c.requests.load(Relaxed)), Ty::U64, COUNTER),
        InfoField::new("Stopping", u8::from(p.stopping), Ty::U32, STATUS),
        InfoField::new("node", &p.node, Ty::Str, Tags("Config", "Output", "Service")),
        InfoField::new("Generation", active.generation, Ty::U64, STATUS),
        InfoField::new("Reloads", reloads.succeeded, Ty::U64, COUNTER),
        InfoField::new("Reload_failures", reloads.failed, Ty::U64, COUNTER),
        InfoField::new(
            "Last_reload",
            match last {
                None => "none",
                Some(l) if l.ok => "ok",
                Some(_) => "failed",
            },
            Ty::Str,
            STATUS,
        ),
        InfoField::new(
            "Last_reload_sec",
            last.map_or_else(String::new, |l| l.ago_sec.to_string()),
            Ty::U64,
            Tags("Metric", "Age", "Process"),
        ),
        InfoField::new("Config", &p.config, Ty::Str, CONF),
    ]
}
