//! `[console]`: the web console's listener and who may use it. The schema and its validation;
//! the console itself is `crate::console`.

use super::error::{FieldPath, Problem};
use super::snapshot::Userlist;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the operator writes under `[console]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConsoleDef {
    /// `ADDR:PORT` the console listens on.
    pub bind: String,
    /// The `[[userlist]]` whose users may log in (the same kind of list as `[api] userlist`).
    pub userlist: String,
    /// Members of this group of the userlist may change things (server actions, VIPs).
    pub admin_group: Option<String>,
    /// Members of this group may look; absent: every user of the userlist may look.
    pub read_group: Option<String>,
    /// Serve over TLS with this PEM file (certificate chain and key), as `[api] ssl_crt`.
    pub ssl_crt: Option<String>,
    /// Plain HTTP on a non-loopback address sends passwords in clear: only when this says so.
    pub allow_insecure_http: Option<bool>,
    /// How long a login lasts (default 8h).
    pub session_timeout: Option<super::units::ConfDuration>,
    /// How long a client may take to send a request (default 30s).
    pub read_timeout: Option<super::units::ConfDuration>,
}

/// `[console]` validated.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub bind: SocketAddr,
    pub userlist: String,
    pub admin_group: Option<String>,
    pub read_group: Option<String>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Plain HTTP on a non-loopback address, allowed by `allow_insecure_http` (warned at start).
    pub insecure_http: bool,
    pub session_timeout: Duration,
    pub read_timeout: Duration,
}

impl PartialEq for ConsoleSettings {
    /// Settings that need a new listener (TLS is compared by its file through `bind` changes only).
    fn eq(&self, o: &Self) -> bool {
        self.bind == o.bind && self.tls.is_some() == o.tls.is_some()
    }
}

pub(super) fn validate(
    c: &ConsoleDef,
    userlists: &[Userlist],
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<ConsoleSettings> {
    let p = FieldPath::root().key("console");
    let start = problems.len();
    let bind = match super::validate::parse_bind(&c.bind) {
        Ok(b) => Some(b),
        Err(e) if c.bind.is_empty() => {
            problems.push(Problem::new(p.key("bind"), format!("missing ({e})")));
            None
        }
        Err(e) => {
            problems.push(Problem::new(p.key("bind"), e).with_value(&c.bind));
            None
        }
    };
    let list = userlists.iter().find(|u| u.name == c.userlist);
    if c.userlist.is_empty() {
        problems.push(Problem::new(p.key("userlist"), "missing: name the [[userlist]] whose users may log in"));
    } else if list.is_none() {
        problems.push(Problem::new(p.key("userlist"), "no such userlist").with_value(&c.userlist));
    }
    for (key, group) in [("admin_group", &c.admin_group), ("read_group", &c.read_group)] {
        if let (Some(g), Some(l)) = (group, list)
            && !l.groups.iter().any(|(n, _)| n == g)
        {
            problems
                .push(Problem::new(p.key(key), format!("no such group in userlist '{}'", c.userlist)).with_value(g));
        }
    }
    let tls = match &c.ssl_crt {
        Some(crt) => match crate::tls::server_config(&base_dir.join(crt), &["http/1.1".to_string()]) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                problems.push(Problem::new(p.key("ssl_crt"), e.to_string()).with_value(crt));
                None
            }
        },
        None => None,
    };
    let insecure_http = c.ssl_crt.is_none() && bind.is_some_and(|b| !b.ip().is_loopback());
    if insecure_http && c.allow_insecure_http != Some(true) {
        problems.push(
            Problem::new(
                p.key("bind"),
                "plain HTTP on a non-loopback address sends the console's passwords and session in clear: set `ssl_crt`, bind to loopback, or set `allow_insecure_http = true`",
            )
            .with_value(&c.bind),
        );
    }
    let session_timeout = c.session_timeout.map(|d| d.0).unwrap_or(DEFAULT_SESSION_TIMEOUT);
    if session_timeout.is_zero() {
        problems.push(Problem::new(p.key("session_timeout"), "must be more than 0").with_value(0));
    }
    let read_timeout = c.read_timeout.map(|d| d.0).unwrap_or(DEFAULT_READ_TIMEOUT);
    if read_timeout.is_zero() {
        problems.push(Problem::new(p.key("read_timeout"), "must be more than 0").with_value(0));
    }
    if problems.len() > start {
        return None;
    }
    Some(ConsoleSettings {
        bind: bind?,
        userlist: c.userlist.clone(),
        admin_group: c.admin_group.clone(),
        read_group: c.read_group.clone(),
        tls,
        insecure_http,
        session_timeout,
        read_timeout,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::errors;

    const LIST: &str = "[[userlist]]\nname = \"ops\"\nusers = [{ name = \"a\", insecure_password = \"x\", groups = [\"admins\"] }]\ngroups = [{ name = \"admins\" }]\n";

    fn console(body: &str) -> String {
        format!("{LIST}[console]\n{body}")
    }

    #[test]
    fn located_errors() {
        let e = errors(&console("bind = \"192.0.2.1:8404\"\nuserlist = \"ops\"\n"));
        assert!(
            e.iter()
                .any(|x| x.starts_with("6:") && x.contains("console.bind: plain HTTP") && x.contains("192.0.2.1:8404")),
            "{e:#?}"
        );
        let e = errors(&console("bind = \"127.0.0.1:8404\"\nuserlist = \"nope\"\nadmin_group = \"x\"\n"));
        assert!(e.iter().any(|x| x.contains("console.userlist: no such userlist (nope)")), "{e:#?}");
        let e = errors(&console(
            "bind = \"127.0.0.1:8404\"\nuserlist = \"ops\"\nadmin_group = \"wheel\"\nread_group = \"admins\"\n",
        ));
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("console.admin_group: no such group in userlist 'ops' (wheel)"), "{e:#?}");
        let e = errors(&console("userlist = \"ops\"\nsession_timeout = \"0s\"\n"));
        assert!(e.iter().any(|x| x.contains("console.bind: missing")), "{e:#?}");
        assert!(e.iter().any(|x| x.contains("console.session_timeout: must be more than 0")), "{e:#?}");
        let e = errors(&console("bind = \"127.0.0.1:8404\"\nuserlist = \"ops\"\nssl_crt = \"missing.pem\"\n"));
        assert!(e.iter().any(|x| x.contains("console.ssl_crt") && x.contains("missing.pem")), "{e:#?}");
    }

    #[test]
    fn valid_settings() {
        assert!(
            errors(&console("bind = \"127.0.0.1:8404\"\nuserlist = \"ops\"\nadmin_group = \"admins\"\n")).is_empty()
        );
        let insecure = console("bind = \"192.0.2.1:8404\"\nuserlist = \"ops\"\nallow_insecure_http = true\n");
        assert!(errors(&insecure).is_empty());
        let snap = crate::config::parse(&insecure, std::path::Path::new("t.toml")).unwrap();
        let c = snap.console.expect("console settings");
        assert!(c.insecure_http);
        assert_eq!(c.session_timeout, std::time::Duration::from_secs(8 * 3600));
        assert_eq!(c.read_group, None);
    }
}
