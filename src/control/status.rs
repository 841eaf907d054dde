//! `show status` / `lbha status`: the one screen an operator reads at a glance. The daemon sends
//! the JSON; the text is rendered from it, on either side, by [`render`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_sec: u64,
    pub generation: u64,
    pub config: String,
    pub reloads: ReloadSummary,
    pub frontends: Vec<FrontendStatus>,
    pub backends: Vec<BackendStatus>,
    /// One entry per VRRP instance; empty until the VRRP speaker is part of the daemon.
    pub vrrp: Vec<VrrpStatus>,
    /// `[[announce]]` VIPs and FRR sessions; absent when nothing is announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<crate::announce::show::Report>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadSummary {
    pub succeeded: u64,
    pub failed: u64,
    pub last: Option<LastReload>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastReload {
    pub ok: bool,
    /// What asked for it: `SIGHUP` or `control socket`.
    pub trigger: String,
    pub ago_sec: u64,
    /// The generation it installed, when it succeeded.
    pub generation: Option<u64>,
    /// Every config error, when it failed.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontendStatus {
    pub name: String,
    pub mode: String,
    pub binds: Vec<String>,
    pub cur_sessions: u64,
    pub total_sessions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub name: String,
    pub mode: String,
    pub balance: String,
    /// Servers that may take traffic (up and not in maintenance).
    pub up: usize,
    pub total: usize,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub addr: String,
    pub status: String,
    pub weight: u32,
    pub backup: bool,
}

/// One VRRP instance, as `vrrp::InstanceStatus` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// keepalived's words: MASTER, BACKUP, FAULT, INIT.
    pub state: String,
    /// Effective priority (after tracking).
    pub priority: u8,
    pub configured_priority: u8,
    /// VIPs this node holds now.
    pub vips: Vec<String>,
    /// The current master's address, when known.
    pub master: Option<String>,
}

/// HAProxy's uptime form: `2d 3h04m05s`.
pub fn uptime(secs: u64) -> String {
    format!("{}d {}h{:02}m{:02}s", secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::from(indent);
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

pub fn render(s: &Status) -> String {
    let mut out = format!(
        "lbha {}   pid {}   uptime {}   generation {}\nconfig: {}\n",
        s.version,
        s.pid,
        uptime(s.uptime_sec),
        s.generation,
        s.config
    );
    let counts = format!("{} ok, {} failed since start", s.reloads.succeeded, s.reloads.failed);
    match &s.reloads.last {
        None => out.push_str("last reload: none since start\n"),
        Some(l) if l.ok => out.push_str(&format!(
            "last reload: ok, generation {} ({}, {}s ago; {counts})\n",
            l.generation.map_or_else(|| "?".into(), |g| g.to_string()),
            l.trigger,
            l.ago_sec
        )),
        Some(l) => {
            out.push_str(&format!(
                "last reload: FAILED, still serving generation {} ({}, {}s ago; {counts})\n",
                s.generation, l.trigger, l.ago_sec
            ));
            for e in &l.errors {
                out.push_str(&format!("  {e}\n"));
            }
        }
    }

    out.push_str("\nFRONTENDS\n");
    if s.frontends.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![vec!["NAME".into(), "MODE".into(), "SESSIONS".into(), "TOTAL".into(), "BINDS".into()]];
        rows.extend(s.frontends.iter().map(|f| {
            vec![
                f.name.clone(),
                f.mode.clone(),
                f.cur_sessions.to_string(),
                f.total_sessions.to_string(),
                f.binds.join(" "),
            ]
        }));
        table(&mut out, "  ", &rows);
    }

    out.push_str("\nBACKENDS\n");
    if s.backends.is_empty() {
        out.push_str("  none\n");
    }
    for b in &s.backends {
        let health = if b.up == 0 && b.total > 0 { "  NO SERVER AVAILABLE" } else { "" };
        out.push_str(&format!("  {}  {}  {}  servers up {}/{}{health}\n", b.name, b.mode, b.balance, b.up, b.total));
        let rows: Vec<Vec<String>> = b
            .servers
            .iter()
            .map(|sv| {
                vec![
                    sv.name.clone(),
                    sv.addr.clone(),
                    sv.status.clone(),
                    format!("weight {}", sv.weight),
                    if sv.backup { "backup".into() } else { String::new() },
                ]
            })
            .collect();
        table(&mut out, "    ", &rows);
    }

    out.push_str("\nVRRP\n");
    if s.vrrp.is_empty() {
        out.push_str("  no VRRP instances configured\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .vrrp
            .iter()
            .map(|v| {
                vec![
                    v.name.clone(),
                    v.interface.clone(),
                    format!("vrid {}", v.vrid),
                    v.state.clone(),
                    if v.priority == v.configured_priority {
                        format!("priority {}", v.priority)
                    } else {
                        format!("priority {} (configured {})", v.priority, v.configured_priority)
                    },
                    v.master.as_ref().map_or_else(String::new, |m| format!("master {m}")),
                    if v.vips.is_empty() { "no VIPs held".into() } else { super::vrrp::compact(&v.vips) },
                ]
            })
            .collect();
        table(&mut out, "  ", &rows);
    }
    if let Some(a) = &s.announce {
        out.push_str("\nAnnounce\n");
        for l in crate::announce::show::render(a).lines() {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            version: "0.1.0".into(),
            pid: 42,
            uptime_sec: 93784,
            generation: 3,
            config: "/etc/lbha/lbha.toml".into(),
            reloads: ReloadSummary {
                succeeded: 2,
                failed: 0,
                last: Some(LastReload {
                    ok: true,
                    trigger: "SIGHUP".into(),
                    ago_sec: 12,
                    generation: Some(3),
                    errors: vec![],
                }),
            },
            frontends: vec![FrontendStatus {
                name: "www".into(),
                mode: "http".into(),
                binds: vec!["127.0.0.1:8080".into(), "[::1]:8080".into()],
                cur_sessions: 1,
                total_sessions: 12,
            }],
            backends: vec![BackendStatus {
                name: "www".into(),
                mode: "http".into(),
                balance: "roundrobin".into(),
                up: 1,
                total: 2,
                servers: vec![
                    ServerStatus {
                        name: "a".into(),
                        addr: "127.0.0.1:8081".into(),
                        status: "UP".into(),
                        weight: 1,
                        backup: false,
                    },
                    ServerStatus {
                        name: "bee".into(),
                        addr: "127.0.0.1:8082".into(),
                        status: "MAINT".into(),
                        weight: 2,
                        backup: true,
                    },
                ],
            }],
            vrrp: vec![],
            announce: None,
        }
    }

    #[test]
    fn announce_section_after_vrrp() {
        let mut s = sample();
        s.announce = Some(crate::announce::show::Report {
            vips: vec![crate::announce::VipStatus {
                group: "vip".into(),
                address: "203.0.113.10".parse().unwrap(),
                protocol: 250,
                announced: false,
                reason: "proxy stopping".into(),
            }],
            frr: Some(crate::announce::frr::FrrState {
                bgp: vec![],
                bfd: vec![crate::announce::frr::BfdPeer { peer: "192.0.2.1".into(), status: "down".into() }],
                error: None,
            }),
        });
        let text = render(&s);
        assert!(
            text.ends_with(
                "\nAnnounce\n  vip 203.0.113.10 protocol 250: withdrawn (proxy stopping)\n  FRR bfd 192.0.2.1: down\n"
            ),
            "{text}"
        );
        let back: Status = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(!render(&sample()).contains("Announce"));
    }

    #[test]
    fn uptime_like_haproxy() {
        assert_eq!(uptime(93784), "1d 2h03m04s");
        assert_eq!(uptime(0), "0d 0h00m00s");
    }

    #[test]
    fn one_screen() {
        let text = render(&sample());
        let want = "\
lbha 0.1.0   pid 42   uptime 1d 2h03m04s   generation 3
config: /etc/lbha/lbha.toml
last reload: ok, generation 3 (SIGHUP, 12s ago; 2 ok, 0 failed since start)

FRONTENDS
  NAME  MODE  SESSIONS  TOTAL  BINDS
  www   http  1         12     127.0.0.1:8080 [::1]:8080

BACKENDS
  www  http  roundrobin  servers up 1/2
    a    127.0.0.1:8081  UP     weight 1
    bee  127.0.0.1:8082  MAINT  weight 2  backup

VRRP
  no VRRP instances configured
";
        assert_eq!(text, want);
    }

    #[test]
    fn failed_reload_lists_every_error_and_vrrp_rows_show() {
        let mut s = sample();
        s.reloads.failed = 1;
        s.reloads.last = Some(LastReload {
            ok: false,
            trigger: "control socket".into(),
            ago_sec: 1,
            generation: None,
            errors: vec!["t.toml:3:1: a: bad".into(), "t.toml:9:2: b: worse".into()],
        });
        s.backends[0].up = 0;
        s.vrrp.push(VrrpStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: "MASTER".into(),
            priority: 150,
            configured_priority: 150,
            vips: vec!["192.0.2.100/24".into()],
            master: Some("192.0.2.1".into()),
        });
        s.vrrp.push(VrrpStatus {
            name: "VI_2".into(),
            interface: "eth1".into(),
            vrid: 52,
            state: "BACKUP".into(),
            priority: 40,
            configured_priority: 100,
            vips: vec![],
            master: None,
        });
        let text = render(&s);
        assert!(text.contains("last reload: FAILED, still serving generation 3 (control socket, 1s ago; 2 ok, 1 failed since start)\n  t.toml:3:1: a: bad\n  t.toml:9:2: b: worse\n"), "{text}");
        assert!(text.contains("servers up 0/2  NO SERVER AVAILABLE"));
        assert!(
            text.ends_with(
                "VRRP
  VI_1  eth0  vrid 51  MASTER  priority 150                  master 192.0.2.1  192.0.2.100/24
  VI_2  eth1  vrid 52  BACKUP  priority 40 (configured 100)                    no VIPs held
"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_round_trip() {
        let s = sample();
        let j = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }
}
