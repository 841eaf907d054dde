//! keepalived's e-mail alerts (`smtp_alert`): one mail per state change of an instance or a sync
//! group, with keepalived's subject and body, sent in the background through lettre's SMTP client.
//! Plain SMTP without TLS or authentication, as keepalived speaks it: the server is meant to be a
//! local relay (an MTA on the host or the management LAN), which does the onward delivery.
//!
//! The settings are one per process, like the script policy (`script`): [`configure`] installs
//! them at start and reload; [`send`] reads them at each change.

use std::sync::{Arc, RwLock};

use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::vrrp::{SmtpSettings, VrrpSettings};

struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    router_id: String,
}

static MAILER: RwLock<Option<Arc<Mailer>>> = RwLock::new(None);

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

fn mailer(s: &SmtpSettings) -> Result<Mailer, String> {
    let host = hostname();
    let from = s.from.clone().unwrap_or_else(|| format!("keepalived@{host}"));
    let from: Mailbox = from.parse().map_err(|e| format!("notification_email_from {from:?}: {e}"))?;
    let to =
        s.to.iter()
            .map(|t| t.parse::<Mailbox>().map_err(|e| format!("notification_email {t:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .timeout(Some(s.timeout))
        .hello_name(ClientId::Domain(s.helo.clone().unwrap_or_else(|| host.clone())))
        .build();
    Ok(Mailer { transport, from, to, router_id: s.router_id.clone().unwrap_or(host) })
}

/// Installs the mail settings of `s` (none: alerts off).
pub fn configure(s: &VrrpSettings) -> Result<(), String> {
    let m = s.smtp.as_ref().map(mailer).transpose()?.map(Arc::new);
    if let Ok(mut g) = MAILER.write() {
        *g = m;
    }
    Ok(())
}

/// An instance or a sync group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instance,
    Group,
}

/// keepalived's subject and body for `name` entering `state` (`MASTER`, `BACKUP`, `FAULT`).
pub fn text(kind: Kind, router_id: &str, name: &str, state: &str) -> (String, String) {
    let (what, body) = match (kind, state) {
        (Kind::Instance, "MASTER") => ("Instance", "=> VRRP Instance is now owning VRRP VIPs <=".to_string()),
        (Kind::Instance, "BACKUP") => ("Instance", "=> VRRP Instance is nolonger owning VRRP VIPs <=".to_string()),
        (Kind::Instance, _) => ("Instance", format!("=> VRRP Instance is in {state} state <=")),
        (Kind::Group, _) => ("Group", format!("=> All VRRP group instances are now in {state} state <=")),
    };
    (format!("[{router_id}] VRRP {what} {name} - Entering {state} state"), format!("{body}\n"))
}

/// Mails the change in the background; failures are logged.
pub fn send(kind: Kind, name: &str, state: &str) {
    let Some(m) = MAILER.read().ok().and_then(|g| g.clone()) else {
        tracing::warn!("smtp_alert for {name}: no smtp_server configured");
        return;
    };
    let (subject, body) = text(kind, &m.router_id, name, state);
    let mut b = Message::builder().from(m.from.clone()).subject(subject.clone());
    for t in &m.to {
        b = b.to(t.clone());
    }
    let msg = match b.body(body) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::error!("smtp_alert {subject:?}: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        match m.transport.send(msg).await {
            Ok(_) => tracing::info!("smtp_alert sent: {subject}"),
            Err(e) => tracing::error!("smtp_alert {subject:?} not sent: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_subjects_and_bodies() {
        assert_eq!(
            text(Kind::Instance, "lb1", "VI_1", "MASTER"),
            (
                "[lb1] VRRP Instance VI_1 - Entering MASTER state".to_string(),
                "=> VRRP Instance is now owning VRRP VIPs <=\n".to_string()
            )
        );
        assert_eq!(
            text(Kind::Instance, "lb1", "VI_1", "BACKUP").1,
            "=> VRRP Instance is nolonger owning VRRP VIPs <=\n"
        );
        assert_eq!(text(Kind::Instance, "lb1", "VI_1", "FAULT").1, "=> VRRP Instance is in FAULT state <=\n");
        assert_eq!(
            text(Kind::Group, "lb1", "G1", "MASTER"),
            (
                "[lb1] VRRP Group G1 - Entering MASTER state".to_string(),
                "=> All VRRP group instances are now in MASTER state <=\n".to_string()
            )
        );
    }
}
