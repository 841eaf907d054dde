//! Logging to syslog: a bounded queue feeds one sender task, so a slow or absent log server never
//! slows the proxy; lines that do not fit are dropped and counted.

pub mod format;
pub mod record;

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
    /// `log stdout` / `log stderr`: lines written to the daemon's own output (containers, journald).
    Stdout,
    Stderr,
}

/// One `log` line of `[global]`: `ADDR[:PORT] FACILITY [MAX_LEVEL]` or `/path/to/socket FACILITY ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub target: Target,
    pub facility: u8,
    pub max_level: Level,
    /// `format ...`; `None`: `[global] log_format`.
    pub framing: Option<Framing>,
    /// `len N`: longest line sent (HAProxy's default 1024).
    pub len: usize,
}

impl LogTarget {
    pub fn parse(s: &str) -> Result<LogTarget, String> {
        let mut w = s.split_whitespace().peekable();
        let addr = w.next().ok_or("empty log target")?;
        let target = if addr == "stdout" {
            Target::Stdout
        } else if addr == "stderr" {
            Target::Stderr
        } else if addr.starts_with('/') {
            Target::Unix(PathBuf::from(addr))
        } else {
            let with_port = if addr.parse::<SocketAddr>().is_ok() { addr.to_string() } else { format!("{addr}:514") };
            Target::Udp(
                with_port
                    .parse()
                    .map_err(|_| format!("invalid log address {addr:?} (IP[:PORT] or /path/to/socket)"))?,
            )
        };
        let (mut framing, mut len) = (None, 1024);
        while let Some(kw) = w.next_if(|k| *k == "format" || *k == "len") {
            let v = w.next().ok_or_else(|| format!("missing value after {kw:?}"))?;
            if kw == "format" {
                framing = Some(Framing::parse(v).ok_or_else(|| {
                    format!("unknown log format {v:?} (rfc3164, rfc5424, local, short, priority, raw, iso, timed)")
                })?);
            } else {
                len = v
                    .parse()
                    .ok()
                    .filter(|n| (80..=65535).contains(n))
                    .ok_or_else(|| format!("invalid len {v:?} (80..65535)"))?;
            }
        }
        let fac = w.next().ok_or("missing facility (e.g. local2)")?;
        let facility = format::facility(fac).ok_or_else(|| format!("unknown facility {fac:?}"))?;
        let max_level = match w.next() {
            Some(l) => Level::parse(l).ok_or_else(|| format!("unknown level {l:?} (emerg .. debug)"))?,
            None => Level::Debug,
        };
        if let Some(extra) = w.next() {
            return Err(format!("unexpected {extra:?} after the level"));
        }
        Ok(LogTarget { target, facility, max_level, framing, len })
    }
}

/// How lines name their sender: `log-tag` (default "lbha") and `log-send-hostname`.
#[derive(Debug, Clone, Default)]
pub struct Ident {
    pub tag: Option<String>,
    /// `Some`: put this host name in RFC 3164 lines (HAProxy leaves it out unless asked).
    pub hostname: Option<String>,
}

/// One message waiting to be framed for each target.
struct Msg {
    level: Level,
    at: SystemTime,
    sd: Option<String>,
    text: String,
}

/// Sends lines to every target through a bounded queue; each target frames them its way.
#[derive(Debug)]
pub struct Logger {
    tx: mpsc::Sender<Msg>,
    pub dropped: AtomicU64,
    targets: usize,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Logger {
    /// Starts the sender task. Must run inside a tokio runtime.
    pub fn start(targets: Vec<LogTarget>, framing: Framing) -> Arc<Logger> {
        Self::start_with(targets, framing, Ident::default())
    }

    pub fn start_with(targets: Vec<LogTarget>, framing: Framing, ident: Ident) -> Arc<Logger> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let n = targets.len();
        let frame = Frame { framing, ident, pid: std::process::id() };
        tokio::spawn(send_loop(rx, targets, frame));
        Arc::new(Logger { tx, dropped: AtomicU64::new(0), targets: n })
    }

    pub fn enabled(&self) -> bool {
        self.targets > 0
    }

    /// Queues one message; never waits.
    pub fn log(&self, level: Level, msg: &str) {
        self.log_sd(level, None, msg);
    }

    /// Queues one message with RFC 5424 structured data (`log-format-sd`).
    pub fn log_sd(&self, level: Level, sd: Option<&str>, msg: &str) {
        if self.targets == 0 {
            return;
        }
        let m = Msg { level, at: SystemTime::now(), sd: sd.map(str::to_string), text: msg.to_string() };
        if self.tx.try_send(m).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// What the sender needs to frame a line.
struct Frame {
    framing: Framing,
    ident: Ident,
    pid: u32,
}

impl Frame {
    fn line(&self, t: &LogTarget, m: &Msg) -> String {
        let tag = self.ident.tag.as_deref().unwrap_or("lbha");
        let framing = t.framing.unwrap_or(self.framing);
        let mut line = format::frame(
            framing,
            &format::Header {
                facility: t.facility,
                level: m.level,
                at: m.at,
                host: self.ident.hostname.as_deref(),
                tag,
                pid: self.pid,
                sd: m.sd.as_deref(),
            },
            &m.text,
        );
        if line.len() > t.len {
            let mut cut = t.len;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        line
    }
}

async fn send_loop(mut rx: mpsc::Receiver<Msg>, targets: Vec<LogTarget>, frame: Frame) {
    use tokio::io::AsyncWriteExt;
    let udp4 = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok();
    let udp6 = tokio::net::UdpSocket::bind("[::]:0").await.ok();
    let unix = tokio::net::UnixDatagram::unbound().ok();
    let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
    while let Some(m) = rx.recv().await {
        for t in targets.iter().filter(|t| m.level <= t.max_level) {
            // Every line ends with a newline, on the wire as on a terminal, as HAProxy sends it.
            let datagram = format!("{}\n", frame.line(t, &m));
            let sent = match &t.target {
                Target::Udp(a) => match if a.is_ipv4() { &udp4 } else { &udp6 } {
                    Some(s) => s.send_to(datagram.as_bytes(), a).await.map(|_| ()),
                    None => Ok(()),
                },
                Target::Unix(p) => match &unix {
                    Some(s) => s.send_to(datagram.as_bytes(), p).await.map(|_| ()),
                    None => Ok(()),
                },
                Target::Stdout => stdout.write_all(datagram.as_bytes()).await,
                Target::Stderr => stderr.write_all(datagram.as_bytes()).await,
            };
            if let Err(e) = sent {
                tracing::debug!("log send to {:?} failed: {e}", t.target);
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
            LogTarget {
                target: Target::Udp("127.0.0.1:514".parse().unwrap()),
                facility: 18,
                max_level: Level::Info,
                framing: None,
                len: 1024
            }
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
    fn stdout_stderr_formats_and_len() {
        let t = LogTarget::parse("stdout format raw local0").unwrap();
        assert_eq!((t.target, t.framing, t.facility), (Target::Stdout, Some(Framing::Raw), 16));
        let t = LogTarget::parse("stderr len 200 format rfc5424 daemon info").unwrap();
        assert_eq!(
            (t.target, t.framing, t.len, t.max_level),
            (Target::Stderr, Some(Framing::Rfc5424), 200, Level::Info)
        );
        assert!(LogTarget::parse("stdout format fancy local0").unwrap_err().contains("fancy"));
        assert!(LogTarget::parse("stdout len 5 local0").is_err());
        let frame = Frame { framing: Framing::Rfc3164, ident: Ident::default(), pid: 1 };
        let mut t = LogTarget::parse("stdout format raw local0").unwrap();
        t.len = 80;
        let m = Msg { level: Level::Info, at: SystemTime::now(), sd: None, text: "x".repeat(100) };
        assert_eq!(frame.line(&t, &m).len(), 80);
    }
}
