//! HAProxy's server-state format (version 1): the output of `show servers state` and the content
//! of `server_state_file`, so a state file written by one can be read by the other.

use crate::state::{Admin, Inherited};
use serde::Serialize;
use std::net::SocketAddr;

pub const VERSION: &str = "1";
pub const HEADER: &str = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port";

/// Written after the header in the state lbha keeps (`server_state_file`, the text a binary
/// upgrade hands over), which holds `srv_admin_state` as HAProxy 2.6 does. Text without it comes
/// from HAProxy, from a runtime `show servers state` (exactly HAProxy's, for its tools) or from
/// an earlier lbha, which wrote a server `disabled` in the config and still in maintenance as
/// `CMAINT` alone (HAProxy's "disabled in the config, enabled since"). A comment: HAProxy's
/// parser skips it as it skips the header.
pub const MARK: &str = "# lbha: srv_admin_state as HAProxy 2.6";

// HAProxy's admin-state bits (SRV_ADMF_*).
const ADMF_FMAINT: u32 = 0x01;
const ADMF_IMAINT: u32 = 0x02;
const ADMF_CMAINT: u32 = 0x04;
const ADMF_FDRAIN: u32 = 0x08;
const ADMF_IDRAIN: u32 = 0x10;
const ADMF_RMAINT: u32 = 0x20;
// HAProxy's check-state bits (CHK_ST_CONFIGURED | CHK_ST_ENABLED, CHK_ST_PAUSED).
const CHK_CONFIGURED_ENABLED: u32 = 0x06;
const CHK_PAUSED: u32 = 0x08;
const CHK_INPROGRESS: u32 = 0x01;
const CHK_ENABLED: u32 = 0x04;
const AGENT_CONFIGURED: u32 = 0x12;

/// What a health check last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// No check configured.
    None,
    /// Configured, no result yet.
    Pending,
    Passed,
    Failed,
}

/// One server's runtime facts, read from the live state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub be_id: usize,
    pub be_name: String,
    pub srv_id: usize,
    pub srv_name: String,
    pub addr: SocketAddr,
    pub up: bool,
    /// Up but out of load balancing (HAProxy's `SRV_ST_STOPPING`, NOLB).
    pub nolb: bool,
    /// The server's own admin state (HAProxy's forced flags).
    pub admin: Admin,
    /// What it inherits from the server it tracks (`IMAINT`, `IDRAIN`).
    pub inherited: Inherited,
    pub config_disabled: bool,
    /// `id` configured on the backend, on the server (`bk_f_forced_id`, `srv_f_forced_id`).
    pub bk_forced_id: bool,
    pub srv_forced_id: bool,
    pub uweight: u32,
    pub iweight: u32,
    pub since_change_secs: u64,
    pub check: CheckResult,
    /// HAProxy's `srv_check_status` number (`HCHK_STATUS_*`) and `srv_check_health` counter.
    pub check_status: u8,
    pub check_health: u32,
    /// A probe is in flight (HAProxy's `CHK_ST_INPROGRESS`, bit 0x01 of `srv_check_state`).
    pub check_in_progress: bool,
    /// The check's and agent's `port`/`addr` as configured (HAProxy's `srv_check_port`,
    /// `srv_check_addr`, `srv_agent_addr`, `srv_agent_port`).
    pub targets: crate::config::snapshot::StateTargets,
    /// Traffic to the server is TLS (`srv_use_ssl`; follows `set server ssl`).
    pub use_ssl: bool,
    /// No address (DNS, `init-addr none`): HAProxy's `RMAINT`, address `-`.
    pub no_addr: bool,
    /// The host name it was configured by (`srv_fqdn`).
    pub fqdn: Option<String>,
    /// `agent-check` configured, and running (not stopped by `disable agent`).
    pub agent: Option<bool>,
    /// The SRV name whose records fill the server (`srvrecord`).
    pub srvrecord: Option<String>,
}

impl ServerLine {
    /// HAProxy's `srv_admin_state`: a server disabled in the config keeps `CMAINT` whatever an
    /// operator does since, and is in forced maintenance (`FMAINT`) until enabled.
    fn admin_bits(&self) -> u32 {
        let own = match self.admin {
            Admin::Ready => 0,
            Admin::Drain => ADMF_FDRAIN,
            Admin::Maint => ADMF_FMAINT,
        };
        let config = if self.config_disabled { ADMF_CMAINT } else { 0 };
        let inherited =
            (if self.inherited.maint { ADMF_IMAINT } else { 0 }) | (if self.inherited.drain { ADMF_IDRAIN } else { 0 });
        own | config | inherited | if self.no_addr { ADMF_RMAINT } else { 0 }
    }

    /// The admin state in force (own or inherited).
    fn admin_in_force(&self) -> Admin {
        if self.admin == Admin::Maint || self.inherited.maint || self.no_addr {
            Admin::Maint
        } else if self.admin == Admin::Drain || self.inherited.drain {
            Admin::Drain
        } else {
            Admin::Ready
        }
    }

    /// HAProxy's status words.
    pub fn status(&self) -> &'static str {
        match (self.admin_in_force(), self.up) {
            (Admin::Maint, _) => "MAINT",
            (Admin::Drain, true) => "DRAIN",
            (_, true) => "UP",
            (_, false) => "DOWN",
        }
    }

    /// One line of the server-state format.
    pub fn to_line(&self) -> String {
        let check_result = match self.check {
            CheckResult::None | CheckResult::Pending => 0,
            CheckResult::Failed => 2,
            CheckResult::Passed => 3,
        };
        // HAProxy pauses the checks of a server in maintenance, and marks those of a server
        // `disabled` in the config paused even when it has none (and keeps that once enabled).
        let maint = self.admin_in_force() == Admin::Maint;
        let check_state =
            match self.check {
                CheckResult::None if self.config_disabled => CHK_PAUSED,
                CheckResult::None => 0,
                _ if maint => CHK_CONFIGURED_ENABLED | CHK_PAUSED,
                _ => CHK_CONFIGURED_ENABLED,
            } | if self.check_in_progress && self.check != CheckResult::None { CHK_INPROGRESS } else { 0 };
        let ip = |a: Option<std::net::IpAddr>| a.map_or_else(|| "-".to_string(), |a| a.to_string());
        let t = &self.targets;
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.be_id,
            self.be_name,
            self.srv_id,
            self.srv_name,
            if self.no_addr { "-".to_string() } else { self.addr.ip().to_string() },
            // A server in maintenance is stopped (SRV_ST_STOPPED), whatever its checks said;
            // NOLB is SRV_ST_STOPPING.
            match (self.up && !maint, self.nolb) {
                (true, false) => 2,
                (true, true) => 3,
                (false, _) => 0,
            },
            self.admin_bits(),
            self.uweight,
            self.iweight,
            self.since_change_secs,
            self.check_status,
            check_result,
            // Without an address it entered maintenance (HAProxy's RMAINT), which zeroes it.
            if self.no_addr { 0 } else { self.check_health },
            check_state,
            // HAProxy's agent bits: CHK_ST_AGENT | CHK_ST_CONFIGURED, with CHK_ST_ENABLED while
            // it runs (a server's maintenance does not pause it).
            self.agent.map_or(0, |on| AGENT_CONFIGURED | if on { CHK_ENABLED } else { 0 }),
            u8::from(self.bk_forced_id),
            u8::from(self.srv_forced_id),
            self.fqdn.as_deref().unwrap_or("-"),
            self.addr.port(),
            self.srvrecord.as_deref().unwrap_or("-"),
            u8::from(self.use_ssl),
            t.check_port,
            ip(t.check_addr),
            ip(t.agent_addr),
            t.agent_port,
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "be_id": self.be_id,
            "be_name": self.be_name,
            "srv_id": self.srv_id,
            "srv_name": self.srv_name,
            "srv_addr": self.addr.ip().to_string(),
            "srv_port": self.addr.port(),
            "status": self.status(),
            "admin": admin_word(self.admin_in_force()),
            "weight": self.uweight,
            "initial_weight": self.iweight,
            "since_change_secs": self.since_change_secs,
            "check": self.check,
        })
    }
}

pub fn admin_word(a: Admin) -> &'static str {
    match a {
        Admin::Ready => "ready",
        Admin::Drain => "drain",
        Admin::Maint => "maint",
    }
}

/// The `show servers state` answer, as HAProxy's: version, header, one line per server.
pub fn format(lines: &[ServerLine]) -> String {
    document(lines, "")
}

/// The state lbha keeps for itself (`server_state_file`, an upgrade's takeover): [`format`]
/// with [`MARK`] after the header.
pub fn format_marked(lines: &[ServerLine]) -> String {
    document(lines, &format!("{MARK}\n"))
}

fn document(lines: &[ServerLine], mark: &str) -> String {
    let mut s = format!("{VERSION}\n{HEADER}\n{mark}");
    for l in lines {
        s.push_str(&l.to_line());
        s.push('\n');
    }
    s
}

/// A server as a state file remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedServer {
    /// 1-based line in the file, for messages.
    pub line: usize,
    pub backend: String,
    pub server: String,
    admin_bits: u32,
    pub uweight: u32,
    pub iweight: u32,
    /// `srv_op_state`: Some(true) running or stopping (NOLB), Some(false) stopped, None for
    /// anything else; `op_nolb` for stopping.
    pub op_up: Option<bool>,
    pub op_nolb: bool,
    /// `srv_time_since_last_change` and `srv_check_health`, when the line has them.
    pub since_change_secs: Option<u64>,
    pub check_health: Option<u32>,
    /// Read from text without [`MARK`] (HAProxy's, or an earlier lbha's): `CMAINT` alone may
    /// be a server `disabled` in the config and never enabled.
    unmarked: bool,
}

impl SavedServer {
    /// Saved in maintenance (forced, inherited, for want of an address or from the config): its
    /// `srv_op_state` is then 0 whatever its checks said.
    pub fn in_maint(&self) -> bool {
        self.admin_bits & (ADMF_FMAINT | ADMF_IMAINT | ADMF_RMAINT) != 0 || self.legacy_disabled()
    }

    /// `CMAINT` alone in unmarked text: an earlier lbha wrote so a server `disabled` in the
    /// config and in maintenance; taken as that, never as enabled (HAProxy's meaning), so a
    /// disabled server does not come into traffic after an upgrade.
    fn legacy_disabled(&self) -> bool {
        self.unmarked && self.admin_bits == ADMF_CMAINT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFileError {
    #[error("line {line}: unsupported format version (value: {value}); expected 1")]
    Version { line: usize, value: String },
    #[error("line {line}: expected at least 9 fields, found {found}")]
    Short { line: usize, found: usize },
    #[error("line {line}: field {field}: not a number (value: {value})")]
    Field { line: usize, field: &'static str, value: String },
}

/// Reads a state file. Good lines are kept even when others are bad; every bad one is reported.
pub fn parse(text: &str) -> (Vec<SavedServer>, Vec<StateFileError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut version_seen = false;
    let mut marked = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t == MARK {
            marked = true;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !version_seen {
            version_seen = true;
            if t != VERSION {
                errors.push(StateFileError::Version { line, value: t.to_string() });
                return (out, errors);
            }
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 9 {
            errors.push(StateFileError::Short { line, found: f.len() });
            continue;
        }
        let num = |idx: usize, field: &'static str| {
            f[idx].parse::<u32>().map_err(|_| StateFileError::Field { line, field, value: f[idx].to_string() })
        };
        match (num(6, "srv_admin_state"), num(7, "srv_uweight"), num(8, "srv_iweight")) {
            (Ok(admin_bits), Ok(uweight), Ok(iweight)) => out.push(SavedServer {
                line,
                backend: f[1].to_string(),
                server: f[3].to_string(),
                admin_bits,
                uweight,
                iweight,
                op_up: match f[5] {
                    "2" | "3" => Some(true),
                    "0" => Some(false),
                    _ => None,
                },
                op_nolb: f[5] == "3",
                since_change_secs: f.get(9).and_then(|v| v.parse().ok()),
                check_health: f.get(12).and_then(|v| v.parse().ok()),
                unmarked: !marked,
            }),
            (a, u, w) => errors.extend([a.err(), u.err(), w.err()].into_iter().flatten()),
        }
    }
    (out, errors)
}

/// What a saved server's runtime state becomes under the current config, as HAProxy's
/// `srv_state_srv_update`: when `disabled` in the config changed since the save, the config
/// decides; otherwise a maintenance forced by an operator is kept, and so is an operator's
/// enabling of a server disabled in the config. A saved drain is kept on a server not in
/// maintenance, unless it came from a configured weight of 0 that is no longer 0. The saved
/// runtime weight is restored only while the configured weight is the one it was set against.
/// Inherited bits are not restored: trackers take them from the restored servers. Text without
/// [`MARK`] holding `CMAINT` alone for a server still `disabled` keeps it in maintenance (what
/// an earlier lbha meant by it; for HAProxy's text, an operator's enabling is lost, never a
/// maintenance).
pub fn restore(saved: &SavedServer, config_weight: u32, config_disabled: bool) -> (Admin, Option<u32>) {
    let bits = saved.admin_bits;
    let mut admin = if config_disabled && saved.legacy_disabled() {
        Admin::Maint
    } else if (bits & ADMF_CMAINT != 0) != config_disabled {
        if config_disabled { Admin::Maint } else { Admin::Ready }
    } else if bits & ADMF_FMAINT != 0 {
        Admin::Maint
    } else {
        Admin::Ready
    };
    if admin != Admin::Maint && bits & ADMF_FDRAIN != 0 && (saved.iweight > 0 || config_weight == 0) {
        admin = Admin::Drain;
    }
    let weight = (saved.iweight == config_weight).then_some(saved.uweight.min(super::parse::MAX_WEIGHT));
    (admin, weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::StateTargets;

    fn line(admin: Admin, config_disabled: bool) -> ServerLine {
        ServerLine {
            be_id: 2,
            be_name: "web".into(),
            srv_id: 1,
            srv_name: "a".into(),
            addr: "127.0.0.1:8081".parse().unwrap(),
            up: true,
            nolb: false,
            admin,
            inherited: Inherited::default(),
            config_disabled,
            bk_forced_id: false,
            srv_forced_id: false,
            uweight: 5,
            iweight: 2,
            since_change_secs: 30,
            check: CheckResult::Passed,
            check_status: 6,
            check_health: 4,
            check_in_progress: false,
            targets: Default::default(),
            use_ssl: false,
            no_addr: false,
            fqdn: None,
            agent: None,
            srvrecord: None,
        }
    }

    #[test]
    fn haproxy_line_layout() {
        let l = line(Admin::Maint, false).to_line();
        // In maintenance: stopped, checks paused, as HAProxy 2.6 prints it.
        assert_eq!(l, "2 web 1 a 127.0.0.1 0 1 5 2 30 6 3 4 14 0 0 0 - 8081 - 0 0 - - 0");
        assert_eq!(l.split(' ').count(), HEADER.split(' ').count() - 1);
        let mut d = line(Admin::Drain, false);
        d.up = false;
        d.check = CheckResult::None;
        (d.check_status, d.check_health) = (1, 2);
        // `port 9000 addr 127.0.0.2`: HAProxy gives the agent that address and port too.
        let ip = Some("127.0.0.2".parse().unwrap());
        d.targets = StateTargets { check_port: 9000, check_addr: ip, agent_addr: ip, agent_port: 9000 };
        assert_eq!(
            d.to_line(),
            "2 web 1 a 127.0.0.1 0 8 5 2 30 1 0 2 0 0 0 0 - 8081 - 0 9000 127.0.0.2 127.0.0.2 9000"
        );
        d.use_ssl = true;
        assert!(d.to_line().ends_with(" - 8081 - 1 9000 127.0.0.2 127.0.0.2 9000"), "{}", d.to_line());
        assert_eq!(d.status(), "DOWN");
        // As HAProxy 2.6 prints them: `disabled` is CMAINT|FMAINT (5), CMAINT alone once enabled.
        assert_eq!(line(Admin::Maint, true).admin_bits(), 5);
        assert_eq!(line(Admin::Ready, true).admin_bits(), 4);
        let mut t = line(Admin::Ready, false);
        (t.bk_forced_id, t.srv_forced_id) = (true, true);
        t.inherited = Inherited { maint: true, drain: false };
        assert!(t.to_line().starts_with("2 web 1 a 127.0.0.1 0 2 5 2 30 6 3 4 14 0 1 1 - "), "{}", t.to_line());
        assert_eq!(t.status(), "MAINT");
        // No address: HAProxy's RMAINT, address `-`.
        let mut r = line(Admin::Ready, false);
        r.no_addr = true;
        assert!(r.to_line().starts_with("2 web 1 a - 0 32 5 2 30 6 3 0 14 "), "{}", r.to_line());
        assert_eq!(r.status(), "MAINT");
        t.admin = Admin::Drain;
        t.inherited = Inherited { maint: false, drain: true };
        assert_eq!(t.admin_bits(), ADMF_FDRAIN | ADMF_IDRAIN);
        assert_eq!(t.status(), "DRAIN");
    }

    #[test]
    fn round_trip_through_a_file() {
        let mut down = line(Admin::Drain, false);
        down.up = false;
        let lines = vec![line(Admin::Maint, false), down];
        let (saved, errors) = parse(&format_marked(&lines));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(saved.len(), 2);
        assert_eq!((saved[0].op_up, saved[1].op_up), (Some(false), Some(false)));
        // The first is stopped by its maintenance, which says nothing of its health.
        assert!(saved[0].in_maint() && !saved[1].in_maint());
        assert_eq!(saved[0].line, 4);
        assert_eq!((saved[0].backend.as_str(), saved[0].server.as_str()), ("web", "a"));
        assert_eq!(restore(&saved[0], 2, false), (Admin::Maint, Some(5)));
        assert_eq!(restore(&saved[1], 2, false), (Admin::Drain, Some(5)));
        // The configured weight changed since: the config's weight stands.
        assert_eq!(restore(&saved[1], 3, false), (Admin::Drain, None));
    }

    #[test]
    fn config_decides_unless_an_operator_forced_a_state() {
        let (saved, _) =
            parse(&format_marked(&[line(Admin::Maint, true), line(Admin::Ready, false), line(Admin::Ready, true)]));
        // Disabled in the config when saved, enabled in the config now.
        assert_eq!(restore(&saved[0], 2, false).0, Admin::Ready);
        assert_eq!(restore(&saved[0], 2, true).0, Admin::Maint);
        assert_eq!(restore(&saved[1], 2, true).0, Admin::Maint);
        assert_eq!(restore(&saved[1], 2, false).0, Admin::Ready);
        // Disabled in the config, enabled by an operator: stays enabled while the config holds.
        assert_eq!(restore(&saved[2], 2, true).0, Admin::Ready);
        assert_eq!(restore(&saved[2], 2, false).0, Admin::Ready);
    }

    #[test]
    fn nolb_probe_in_flight_fqdn_and_the_counter_round_trip() {
        let mut l = line(Admin::Ready, false);
        (l.nolb, l.check_in_progress, l.check_health) = (true, true, 5);
        l.fqdn = Some("app.example".into());
        l.agent = Some(false);
        let text = l.to_line();
        // Stopping (NOLB) is op state 3; a probe in flight sets bit 0x01 of the check state; a
        // disabled agent is 0x12.
        assert_eq!(text, "2 web 1 a 127.0.0.1 3 0 5 2 30 6 3 5 7 18 0 0 app.example 8081 - 0 0 - - 0");
        let srv = ServerLine { srvrecord: Some("_http._tcp.app.example".into()), fqdn: None, ..l.clone() };
        assert!(srv.to_line().contains(" 0 0 - 8081 _http._tcp.app.example 0 "), "{}", srv.to_line());
        let (saved, errors) = parse(&format_marked(&[l]));
        assert!(errors.is_empty(), "{errors:?}");
        let s = &saved[0];
        assert_eq!((s.op_up, s.op_nolb, s.check_health, s.since_change_secs), (Some(true), true, Some(5), Some(30)));
    }

    #[test]
    fn only_the_state_lbha_keeps_carries_the_mark() {
        let lines = [line(Admin::Ready, true)];
        let (plain, marked) = (format(&lines), format_marked(&lines));
        assert_eq!(plain.lines().filter(|l| l.starts_with('#')).collect::<Vec<_>>(), [HEADER]);
        assert_eq!(marked.lines().nth(2), Some(MARK));
        assert_eq!(marked.replacen(&format!("{MARK}\n"), "", 1), plain);
        // The runtime answer read back: CMAINT alone is taken as maintenance, never as enabled.
        let (saved, _) = parse(&plain);
        assert_eq!(restore(&saved[0], 2, true).0, Admin::Maint);
        let (saved, _) = parse(&marked);
        assert_eq!(restore(&saved[0], 2, true).0, Admin::Ready);
    }

    #[test]
    fn cmaint_alone_without_the_mark_keeps_a_disabled_server_in_maintenance() {
        // An earlier lbha's line for a server `disabled` in the config, in maintenance.
        let old = "1\n# header\n2 web 1 a 127.0.0.1 0 4 1 1 30 0 0 0 0 0 0 0 - 8081 - 0 0 - - 0\n";
        let (saved, errors) = parse(old);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(saved[0].in_maint());
        assert_eq!(restore(&saved[0], 1, true).0, Admin::Maint);
        // Enabled in the config since: the config decides.
        assert_eq!(restore(&saved[0], 1, false).0, Admin::Ready);
        // The mark after the header: HAProxy's meaning, enabled by an operator.
        let marked = format!("1\n# header\n{MARK}\n2 web 1 a 127.0.0.1 0 4 1 1 30 0 0 0 0 0 0 0 - 8081 - 0 0 - - 0\n");
        let (saved, _) = parse(&marked);
        assert!(!saved[0].in_maint());
        assert_eq!(restore(&saved[0], 1, true).0, Admin::Ready);
        // Other bits without the mark read as HAProxy's.
        let (saved, _) = parse("1\n2 web 1 a 127.0.0.1 0 5 1 1 30\n2 web 2 b 127.0.0.1 2 0 1 1 30\n");
        assert_eq!(restore(&saved[0], 1, true).0, Admin::Maint);
        assert_eq!(restore(&saved[1], 1, true).0, Admin::Maint);
        assert_eq!(restore(&saved[1], 1, false).0, Admin::Ready);
    }

    #[test]
    fn inherited_bits_are_not_restored_and_drain_follows_the_weight_rule() {
        let mut t = line(Admin::Ready, false);
        t.inherited = Inherited { maint: true, drain: true };
        let mut d0 = line(Admin::Drain, false);
        d0.iweight = 0;
        let (saved, _) = parse(&format_marked(&[t, d0]));
        assert_eq!(restore(&saved[0], 2, false).0, Admin::Ready);
        // A drain saved under a configured weight of 0 ends once the config gives a weight.
        assert_eq!(restore(&saved[1], 3, false).0, Admin::Ready);
        assert_eq!(restore(&saved[1], 0, false).0, Admin::Drain);
    }

    #[test]
    fn bad_lines_are_reported_with_line_and_field() {
        let text = "1\n# header\n1 web 1 a 127.0.0.1 2 x 1 1\n1 web 2 b\n1 web 3 c 127.0.0.1 2 0 4 1\n";
        let (saved, errors) = parse(text);
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].server, "c");
        assert_eq!(
            errors,
            vec![
                StateFileError::Field { line: 3, field: "srv_admin_state", value: "x".into() },
                StateFileError::Short { line: 4, found: 4 },
            ]
        );
        assert_eq!(errors[0].to_string(), "line 3: field srv_admin_state: not a number (value: x)");
        let (saved, errors) = parse("2\n1 web 1 a 127.0.0.1 2 0 1 1\n");
        assert!(saved.is_empty());
        assert_eq!(errors, vec![StateFileError::Version { line: 1, value: "2".into() }]);
    }
}
