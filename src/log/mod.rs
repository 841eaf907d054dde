//! Logging to syslog: a bounded queue feeds one sender task, so a slow or absent log server never
//! slows the proxy; lines that do not fit are dropped and counted.

pub mod format;

use format::{Framing, Level};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// The daemon's own log on stderr. Colour only on a terminal (journald would show escape codes as
/// byte arrays), and a stderr that went away (`lbha run | head`, a dead journald) costs the lines,
/// never the process: write errors are dropped instead of reported on the same broken stderr,
/// which panicked.
pub fn init_stderr() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LBHA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .try_init();
}

/// `eprintln!` that never panics: for messages the daemon prints whatever became of stderr.
pub fn say(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Lines waiting to be sent before new ones are dropped.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Udp(SocketAddr),
    Unix(PathBuf),
}

/// One `log` line of `[global]`: `ADDR[:PORT] FACILITY [MAX_LEVEL]` or `/path/to/socket FACILITY ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub target: Target,
    pub facility: u8,
    pub max_level: Level,
}

impl LogTarget {
    pub fn parse(s: &str) -> Result<LogTarget, String> {
        let mut w = s.split_whitespace();
        let addr = w.next().ok_or("empty log target")?;
        let target = if addr.starts_with('/') {
            Target::Unix(PathBuf::from(addr))
        } else {
            let with_port = if addr.parse::<SocketAddr>().is_ok() { addr.to_string() } else { format!("{addr}:514") };
            Target::Udp(
                with_port
                    .parse()
                    .map_err(|_| format!("invalid log address {addr:?} (IP[:PORT] or /path/to/socket)"))?,
            )
        };
        let fac = w.next().ok_or("missing facility (e.g. local2)")?;
        let facility = format::facility(fac).ok_or_else(|| format!("unknown facility {fac:?}"))?;
        let max_level = match w.next() {
            Some(l) => Level::parse(l).ok_or_else(|| format!("unknown level {l:?} (emerg .. debug)"))?,
            None => Level::Debug,
        };
        if let Some(extra) = w.next() {
            return Err(format!("unexpected {extra:?} after the level"));
        }
        Ok(LogTarget { target, facility, max_level })
    }
}

/// Sends formatted lines to every target through a bounded queue.
#[derive(Debug)]
pub struct Logger {
    tx: mpsc::Sender<(Level, String)>,
    framing: Framing,
    host: String,
    pub dropped: AtomicU64,
    targets: usize,
}

impl Logger {
    /// Starts the sender task. Must run inside a tokio runtime.
    pub fn start(targets: Vec<LogTarget>, framing: Framing) -> Arc<Logger> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "-".into());
        let n = targets.len();
        tokio::spawn(send_loop(rx, targets));
        Arc::new(Logger { tx, framing, host, dropped: AtomicU64::new(0), targets: n })
    }

    pub fn enabled(&self) -> bool {
        self.targets > 0
    }

    /// Queues one message; never waits.
    pub fn log(&self, level: Level, msg: &str) {
        if self.targets == 0 {
            return;
        }
        // The facility is filled in per target by the sender.
        let line = format::syslog_line(self.framing, 0, level, SystemTime::now(), &self.host, std::process::id(), msg);
        if self.tx.try_send((level, line)).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Rewrites the `<PRI>` of a line built with facility 0 for a target's facility.
fn with_facility(line: &str, facility: u8, level: Level) -> String {
    match line.find('>') {
        Some(end) => format!("<{}>{}", facility as u32 * 8 + level as u32, &line[end + 1..]),
        None => line.to_string(),
    }
}

async fn send_loop(mut rx: mpsc::Receiver<(Level, String)>, targets: Vec<LogTarget>) {
    let udp4 = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok();
    let udp6 = tokio::net::UdpSocket::bind("[::]:0").await.ok();
    let unix = tokio::net::UnixDatagram::unbound().ok();
    while let Some((level, line)) = rx.recv().await {
        for t in targets.iter().filter(|t| level <= t.max_level) {
            let datagram = with_facility(&line, t.facility, level);
            let sent = match &t.target {
                Target::Udp(a) => match if a.is_ipv4() { &udp4 } else { &udp6 } {
                    Some(s) => s.send_to(datagram.as_bytes(), a).await.map(|_| ()),
                    None => Ok(()),
                },
                Target::Unix(p) => match &unix {
                    Some(s) => s.send_to(datagram.as_bytes(), p).await.map(|_| ()),
                    None => Ok(()),
                },
            };
            if let Err(e) = sent {
                tracing::debug!("syslog send to {:?} failed: {e}", t.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            LogTarget::parse("127.0.0.1 local2 info").unwrap(),
            LogTarget { target: Target::Udp("127.0.0.1:514".parse().unwrap()), facility: 18, max_level: Level::Info }
        );
        assert_eq!(LogTarget::parse("[::1]:5140 local0").unwrap().target, Target::Udp("[::1]:5140".parse().unwrap()));
        assert_eq!(LogTarget::parse("/dev/log daemon err").unwrap().target, Target::Unix("/dev/log".into()));
        for bad in
            ["", "127.0.0.1", "nohost local0", "127.0.0.1 local9", "127.0.0.1 local0 loud", "127.0.0.1 local0 info x"]
        {
            assert!(LogTarget::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn facility_rewrite() {
        assert_eq!(with_facility("<6>Nov  5 x", 18, Level::Info), "<150>Nov  5 x");
    }
}
