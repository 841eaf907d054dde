//! `lbha vip add|del|list`: through the daemon's control socket when one answers (the VIP joins
//! a VRRP instance's set and is persisted), else (or with `--direct`) directly through rtnetlink
//! in this network namespace, as the seed's `ifconfig eth0:$i` loop did, but with
//! `promote_secondaries` and `ip_nonlocal_bind` set.

use super::{CLIENT_TIMEOUT, escape, print_answers};
use crate::control::client::{self, ClientError};
use crate::control::vip::{VipArgError, VipRequest, parse_request, request_words};
use crate::control::vrrp::compact;
use crate::net::direct;
use crate::net::vip::{Vip, VipHandle};
use clap::{Args, Subcommand};
use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

/// `println!` that does not panic when stdout is a closed pipe (`lbha vip list | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Subcommand)]
pub enum VipAction {
    /// Add a VIP or a range: `lbha vip add 198.51.100.1-100/24 dev eth0 [label eth0:1]`.
    Add(ChangeArgs),
    /// Delete a VIP or a range: `lbha vip del 198.51.100.1-100/24 dev eth0`.
    Del(ChangeArgs),
    /// List VIPs: every VRRP instance's, configured and runtime (with `--direct` or no daemon:
    /// the addresses of the interfaces, or of `dev IFACE`).
    List {
        /// `dev IFACE` (direct mode only).
        #[arg(value_name = "dev IFACE")]
        words: Vec<String>,
        /// Only this VRRP instance's VIPs.
        #[arg(long)]
        instance: Option<String>,
        /// Read the interfaces directly instead of asking the daemon.
        #[arg(long)]
        direct: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ChangeArgs {
    /// ADDR[/LEN] or FIRST-LAST[/LEN] (LAST may be just the last octet), then `dev IFACE` and
    /// optionally `label LABEL`.
    #[arg(value_name = "ADDR[/LEN] dev IFACE [label LABEL]", required = true, num_args = 1..)]
    words: Vec<String>,
    /// The VRRP instance (needed only when several run on IFACE, or none does).
    #[arg(long)]
    instance: Option<String>,
    /// Manage the address directly through rtnetlink, not through the daemon: not part of any
    /// VRRP instance, not persisted (gone at reboot).
    #[arg(long)]
    direct: bool,
    #[arg(long)]
    json: bool,
}

pub fn main(socket: &Path, action: VipAction) -> ExitCode {
    match action {
        VipAction::Add(a) => change(socket, a, true),
        VipAction::Del(a) => change(socket, a, false),
        VipAction::List { words, instance, direct, json } => list(socket, &words, instance, direct, json),
    }
}

fn usage(op: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lbha: {e}");
    eprintln!(
        "usage: lbha vip {op} ADDR[/LEN]|FIRST-LAST[/LEN] dev IFACE [label LABEL] [--instance NAME] [--direct] [--json]"
    );
    ExitCode::from(2)
}

fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lbha: {e}");
    ExitCode::from(1)
}

/// Asks the daemon; `None` means no daemon listens there (so the caller goes direct).
fn via_daemon(socket: &Path, line: &str) -> Option<ExitCode> {
    match client::run(socket, line, CLIENT_TIMEOUT) {
        Ok(answers) => Some(print_answers(socket, answers)),
        Err(ClientError::Unreachable { source, .. })
            if matches!(source.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) =>
        {
            eprintln!(
                "lbha: no daemon on {} ({source}); managing addresses directly (not persisted: gone at reboot)",
                socket.display()
            );
            None
        }
        Err(e @ ClientError::Unreachable { .. }) => Some(failed(e)),
        Err(e @ ClientError::Timeout { .. }) => Some(failed(e)),
        Err(e) => {
            eprintln!("lbha: {e}");
            Some(ExitCode::from(3))
        }
    }
}

fn change(socket: &Path, a: ChangeArgs, adding: bool) -> ExitCode {
    let op = if adding { "add" } else { "del" };
    let mut words: Vec<&str> = a.words.iter().map(String::as_str).collect();
    if let Some(i) = &a.instance {
        words.extend(["instance", i.as_str()]);
    }
    let req = match parse_request(&words, op, adding || a.direct) {
        Ok(r) => r,
        Err(e) => return usage(op, e),
    };
    if req.instance.is_some() && a.direct {
        return usage(op, "--instance names a VRRP instance of the daemon; it has no meaning with --direct");
    }
    if !a.direct {
        let words: Vec<String> = request_words(&req).iter().map(|w| escape(w)).collect();
        let line = format!("{}vip {op} {}", if a.json { "json " } else { "" }, words.join(" "));
        if let Some(code) = via_daemon(socket, &line) {
            return code;
        }
        if req.instance.is_some() {
            return failed("--instance needs a running daemon");
        }
        if req.dev.is_none() {
            return usage(op, VipArgError::MissingDev);
        }
    }
    direct_change(&req, adding, a.json)
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn texts(vips: &[Vip]) -> Vec<String> {
    vips.iter().map(|v| v.to_string()).collect()
}

fn direct_change(req: &VipRequest, adding: bool, json: bool) -> ExitCode {
    let dev = req.dev.clone().unwrap_or_default();
    let prefix = req.range.prefix_or_host();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return failed(format!("cannot start the runtime: {e}")),
    };
    let result = rt.block_on(async {
        let h = VipHandle::new()?;
        if adding {
            let vips: Vec<Vip> = req.range.addrs().map(|addr| Vip { addr, prefix, label: req.label.clone() }).collect();
            let done = direct::add(&h, &dev, &vips).await?;
            Ok::<_, direct::DirectError>((done.added, done.present))
        } else {
            let wanted: Vec<_> = req.range.addrs().map(|a| (a, req.range.prefix)).collect();
            Ok((direct::del(&h, &dev, &wanted).await?, Vec::new()))
        }
    });
    let (changed, present) = match result {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    if json {
        let key = if adding { "added" } else { "deleted" };
        let j = serde_json::json!({
            "interface": dev,
            key: texts(&changed),
            "present": texts(&present),
            "persisted": false,
        });
        say!("{j}");
        return ExitCode::SUCCESS;
    }
    let verb = if adding { "added" } else { "deleted" };
    if changed.is_empty() {
        say!("{dev}: nothing {verb}");
    } else {
        say!("{dev}: {verb} {} address(es): {}", changed.len(), compact(&texts(&changed)));
    }
    if !present.is_empty() {
        say!("{dev}: already present: {}", compact(&texts(&present)));
    }
    say!(
        "{dev}: promote_secondaries=1, ip_nonlocal_bind=1; not persisted (use the daemon for VIPs that survive a reboot)"
    );
    ExitCode::SUCCESS
}

fn list(socket: &Path, words: &[String], instance: Option<String>, direct: bool, json: bool) -> ExitCode {
    let dev = match words {
        [] => None,
        [d, name] if d == "dev" => Some(name.clone()),
        other => return usage("list", format!("unexpected arguments {other:?} (expected `dev IFACE`)")),
    };
    if !direct {
        if dev.is_some() {
            return usage("list", "`dev IFACE` is for --direct; the daemon lists every instance's VIPs");
        }
        let mut line = if json { "json vip list".to_string() } else { "vip list".to_string() };
        if let Some(i) = &instance {
            line.push_str(&format!(" instance {}", escape(i)));
        }
        if let Some(code) = via_daemon(socket, &line) {
            return code;
        }
    }
    if instance.is_some() {
        return failed("--instance needs a running daemon");
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return failed(format!("cannot start the runtime: {e}")),
    };
    let all = match rt.block_on(async { direct::list(&VipHandle::new()?, dev.as_deref()).await }) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    if json {
        let rows: Vec<_> = all
            .iter()
            .map(|(d, v)| serde_json::json!({ "dev": d, "addr": v.addr, "prefix": v.prefix, "label": v.label }))
            .collect();
        say!("{}", serde_json::Value::Array(rows));
    } else {
        let w = all.iter().map(|(d, _)| d.len()).max().unwrap_or(0).max(5);
        say!("{:w$}  ADDRESS", "IFACE");
        for (d, v) in &all {
            say!("{d:w$}  {v}");
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::super::Cli;
    use clap::Parser;

    #[test]
    fn vip_arguments() {
        for args in [
            vec!["lbha", "vip", "add", "198.51.100.1-100/24", "dev", "eth0", "--instance", "VI_1"],
            vec!["lbha", "vip", "add", "--direct", "198.51.100.1/24", "dev", "eth0", "label", "eth0:1"],
            vec!["lbha", "vip", "del", "198.51.100.1", "--json"],
            vec!["lbha", "vip", "list", "--json"],
            vec!["lbha", "vip", "list", "--direct", "dev", "eth0"],
        ] {
            assert!(Cli::try_parse_from(&args).is_ok(), "{args:?}");
        }
        for args in
            [vec!["lbha", "vip", "add"], vec!["lbha", "vip", "frob"], vec!["lbha", "vip", "add", "--bogus", "x"]]
        {
            assert_eq!(Cli::try_parse_from(&args).err().map(|e| e.exit_code()), Some(2), "{args:?}");
        }
    }
}
