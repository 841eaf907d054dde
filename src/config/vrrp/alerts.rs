//! keepalived's e-mail alerts: `notification_email`, `notification_email_from`, `smtp_server`,
//! `smtp_helo_name`, `smtp_connect_timeout`, `smtp_alert` / `smtp_alert_vrrp` in `[global]`
//! (global_defs), and `smtp_alert` per instance and sync group. An alert that cannot be sent
//! (no server, no recipient) is a config error rather than silently missing.

use super::{Cx, VrrpSettings};
use crate::config::error::{FieldPath, Problem};
use crate::config::model::ConfigFile;
use std::str::FromStr;
use std::time::Duration;

/// keepalived's `smtp_connect_timeout` default.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how alerts are mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// Default: this host's name.
    pub helo: Option<String>,
    pub timeout: Duration,
    /// Default: `keepalived@HOSTNAME`, as keepalived.
    pub from: Option<String>,
    pub to: Vec<String>,
    /// Default: this host's name.
    pub router_id: Option<String>,
}

/// Parses keepalived's `ADDR [PORT]` (also `ADDR:PORT` and `[V6]:PORT`).
pub fn parse_server(s: &str) -> Result<(String, u16), String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| format!("bad port {p:?}"));
    match words.as_slice() {
        [host, p] => Ok((host.trim_matches(['[', ']']).to_string(), port(p)?)),
        [one] => {
            if let Ok(sa) = one.parse::<std::net::SocketAddr>() {
                return Ok((sa.ip().to_string(), sa.port()));
            }
            if one.parse::<std::net::IpAddr>().is_ok() {
                return Ok((one.to_string(), 25));
            }
            match one.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => Ok((h.to_string(), port(p)?)),
                _ => Ok((one.to_string(), 25)),
            }
        }
        _ => Err("must be \"ADDR\" or \"ADDR PORT\"".into()),
    }
}

fn mailbox(s: &str, at: FieldPath, cx: &mut Cx) -> Option<String> {
    match lettre::Address::from_str(s.trim()) {
        Ok(_) => Some(s.trim().to_string()),
        Err(e) => {
            cx.err_v(at, format!("not an e-mail address: {e}"), s);
            None
        }
    }
}

/// Resolves `smtp_alert` for each instance and group and validates the mail settings.
pub fn alerts(vrrp: &mut VrrpSettings, file: &ConfigFile, problems: &mut Vec<Problem>) {
    let mut cx = Cx { problems };
    let g = &file.global;
    let gp = FieldPath::root().key("global");
    let default = g.smtp_alert_vrrp.or(g.smtp_alert).unwrap_or(false);
    let mut wanted: Vec<FieldPath> = Vec::new();
    for (i, d) in file.vrrp_instance.iter().enumerate() {
        let on = d.smtp_alert.unwrap_or(default);
        if let Some(inst) = vrrp.instances.iter_mut().find(|x| x.name == d.name) {
            inst.notify.smtp_alert = on;
        }
        if on {
            wanted.push(FieldPath::root().key("vrrp_instance").index(i).key("smtp_alert"));
        }
    }
    for (i, d) in file.vrrp_sync_group.iter().enumerate() {
        let on = d.smtp_alert.unwrap_or(default);
        if let Some(grp) = vrrp.sync_groups.iter_mut().find(|x| x.name == d.name) {
            grp.notify.smtp_alert = on;
        }
        if on {
            wanted.push(FieldPath::root().key("vrrp_sync_group").index(i).key("smtp_alert"));
        }
    }
    let server = g.smtp_server.as_deref().and_then(|s| match parse_server(s) {
        Ok(x) => Some(x),
        Err(e) => {
            cx.err_v(gp.key("smtp_server"), e, s);
            None
        }
    });
    let to: Vec<String> = g
        .notification_email
        .iter()
        .enumerate()
        .filter_map(|(j, s)| mailbox(s, gp.key("notification_email").index(j), &mut cx))
        .collect();
    let from =
        g.notification_email_from.as_deref().and_then(|s| mailbox(s, gp.key("notification_email_from"), &mut cx));
    let timeout = g.smtp_connect_timeout.map_or(DEFAULT_SMTP_TIMEOUT, |d| d.0);
    if timeout.is_zero() {
        cx.err_v(gp.key("smtp_connect_timeout"), "must be greater than 0", "0");
    }
    if let Some(first) = wanted.first() {
        // The first place that asks for mail, when mail cannot go anywhere.
        if g.smtp_server.is_none() {
            cx.err(first.clone(), "smtp_alert needs [global] smtp_server");
        }
        if g.notification_email.is_empty() {
            cx.err(first.clone(), "smtp_alert needs [global] notification_email (at least one recipient)");
        }
    }
    if let (Some((host, port)), false) = (server, wanted.is_empty()) {
        vrrp.smtp = Some(SmtpSettings {
            host,
            port,
            helo: g.smtp_helo_name.clone(),
            timeout,
            from,
            to,
            router_id: g.router_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_server_forms() {
        assert_eq!(parse_server("127.0.0.1"), Ok(("127.0.0.1".into(), 25)));
        assert_eq!(parse_server("127.0.0.1 2525"), Ok(("127.0.0.1".into(), 2525)));
        assert_eq!(parse_server("127.0.0.1:2525"), Ok(("127.0.0.1".into(), 2525)));
        assert_eq!(parse_server("[::1]:2525"), Ok(("::1".into(), 2525)));
        assert_eq!(parse_server("::1"), Ok(("::1".into(), 25)));
        assert_eq!(parse_server("mail.example.org"), Ok(("mail.example.org".into(), 25)));
        assert!(parse_server("127.0.0.1 0").is_err());
        assert!(parse_server("a b c").is_err());
    }
}
