//! Logging to syslog: a bounded queue feeds one sender task, so a slow or absent log server never
//! slows the proxy; lines that do not fit are dropped and counted.

pub mod compiled;
pub mod format;
pub mod record;

use format::{Framing, Level};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// Without `LBHA_LOG`: info, but rustls only from errors up. rustls warns on its own about what
/// a peer sent (one line per handshake of every client that sends an IP address as SNI, as wrk
/// and many scanners do): a formatted line and a write per connection that HAProxy does not
/// log either; a failed handshake is logged by the proxy itself.
const DEFAULT_FILTER: &str = "info,rustls=error";

/// The daemon's own log on stderr. Colour only on a terminal (journald would show escape codes as
/// byte arrays), and a stderr that went away (`lbha run | head`, a dead journald) costs the lines,
/// never the process: write errors are dropped instead of reported on the same broken stderr,
/// which panicked.
pub fn init_stderr() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LBHA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
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

/// One message waiting for a stream target (`stdout`/`stderr`).
struct Msg {
    level: Level,
    at: SystemTime,
    sd: Option<String>,
    text: String,
}

/// Sends lines to every target, each framed its way. Datagram targets (UDP, unix sockets) get
/// one non-blocking send from the calling thread, as HAProxy does: no queue, no task hop, and a
/// full socket buffer drops the line (counted) instead of waiting. Stream targets (`stdout`,
/// `stderr`) can block, so their lines go through a bounded queue to one writer task.
pub struct Logger {
    targets: Vec<LogTarget>,
    frame: Frame,
    dgram: Dgram,
    /// `Some` when a stream target exists.
    tx: Option<mpsc::Sender<Msg>>,
    pub dropped: AtomicU64,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("targets", &self.targets).finish_non_exhaustive()
    }
}

/// The sockets datagram targets are sent from, made once per logger.
#[derive(Default)]
struct Dgram {
    udp4: Option<std::net::UdpSocket>,
    udp6: Option<std::net::UdpSocket>,
    unix: Option<std::os::unix::net::UnixDatagram>,
}

impl Dgram {
    fn open(targets: &[LogTarget]) -> Dgram {
        let udp = |any: &str| {
            let s = std::net::UdpSocket::bind(any).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        let has = |f: fn(&Target) -> bool| targets.iter().any(|t| f(&t.target));
        Dgram {
            udp4: if has(|t| matches!(t, Target::Udp(a) if a.is_ipv4())) { udp("0.0.0.0:0") } else { None },
            udp6: if has(|t| matches!(t, Target::Udp(a) if a.is_ipv6())) { udp("[::]:0") } else { None },
            unix: if has(|t| matches!(t, Target::Unix(_))) {
                std::os::unix::net::UnixDatagram::unbound().ok().filter(|s| s.set_nonblocking(true).is_ok())
            } else {
                None
            },
        }
    }

    /// One datagram; `Err` when the line could not be sent now (dropped).
    fn send(&self, target: &Target, line: &[u8]) -> std::io::Result<()> {
        let gone = || std::io::Error::from(std::io::ErrorKind::NotConnected);
        match target {
            Target::Udp(a) => {
                let s = if a.is_ipv4() { &self.udp4 } else { &self.udp6 };
                s.as_ref().ok_or_else(gone)?.send_to(line, a).map(|_| ())
            }
            Target::Unix(p) => self.unix.as_ref().ok_or_else(gone)?.send_to(line, p).map(|_| ()),
            Target::Stdout | Target::Stderr => Err(gone()),
        }
    }
}

thread_local! {
    /// The line being framed, reused so a log line costs no allocation.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Logger {
    /// Starts the logger (and, for `stdout`/`stderr` targets, its writer task: then it must run
    /// inside a tokio runtime).
    pub fn start(targets: Vec<LogTarget>, framing: Framing) -> Arc<Logger> {
        Self::start_with(targets, framing, Ident::default())
    }

    pub fn start_with(targets: Vec<LogTarget>, framing: Framing, ident: Ident) -> Arc<Logger> {
        let frame = Frame { framing, ident, pid: std::process::id(), id: FRAMES.fetch_add(1, Relaxed) };
        let streams: Vec<LogTarget> =
            targets.iter().filter(|t| matches!(t.target, Target::Stdout | Target::Stderr)).cloned().collect();
        let tx = (!streams.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(stream_loop(rx, streams, frame.clone()));
            tx
        });
        let dgram = Dgram::open(&targets);
        Arc::new(Logger { targets, frame, dgram, tx, dropped: AtomicU64::new(0) })
    }

    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Sends (or queues) one message; never waits.
    pub fn log(&self, level: Level, msg: &str) {
        self.log_sd(level, None, msg.as_bytes());
    }

    /// One message with RFC 5424 structured data (`log-format-sd`); `msg` as rendered (bytes
    /// that are not UTF-8 are sent as they are, as HAProxy does).
    pub fn log_sd(&self, level: Level, sd: Option<&str>, msg: &[u8]) {
        if self.targets.is_empty() {
            return;
        }
        self.log_render(level, SystemTime::now(), sd, |out| out.extend_from_slice(msg));
    }

    /// One message that `render` appends to the line right after the syslog header (no copy of
    /// the message; rendered again for each further target), stamped `at`: the caller's clock
    /// reading, so a request's line costs no clock read of its own.
    pub fn log_render(&self, level: Level, at: SystemTime, sd: Option<&str>, render: impl Fn(&mut Vec<u8>)) {
        let mut queued = false;
        for t in self.targets.iter().filter(|t| level <= t.max_level) {
            if matches!(t.target, Target::Stdout | Target::Stderr) {
                if !queued {
                    queued = true;
                    let mut text = Vec::new();
                    render(&mut text);
                    let text =
                        String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    let m = Msg { level, at, sd: sd.map(str::to_string), text };
                    if self.tx.as_ref().is_none_or(|tx| tx.try_send(m).is_err()) {
                        self.dropped.fetch_add(1, Relaxed);
                    }
                }
                continue;
            }
            let sent = LINE.with_borrow_mut(|line| {
                line.clear();
                self.frame.head_into(line, t, level, at, sd);
                render(line);
                Frame::finish(line, t);
                self.dgram.send(&t.target, line)
            });
            if sent.is_err() {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// What a line needs to be framed.
#[derive(Clone)]
struct Frame {
    framing: Framing,
    ident: Ident,
    pid: u32,
    /// Tells loggers apart in [`HEAD`] (their tags and host names may differ).
    id: u64,
}

/// Numbers the loggers' frames (see [`Frame::id`]).
static FRAMES: AtomicU64 = AtomicU64::new(0);

/// What a header with a per-second date depends on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct HeadKey {
    frame: u64,
    secs: u64,
    facility: u8,
    level: Level,
    framing: Framing,
}

thread_local! {
    /// The last RFC 3164 / `local` header this thread wrote: the lines of the same second,
    /// logger, facility and level (nearly all of them under load) copy it instead of formatting
    /// the priority, date, tag and pid again.
    static HEAD: std::cell::RefCell<(Option<HeadKey>, Vec<u8>)> = const { std::cell::RefCell::new((None, Vec::new())) };
}

impl Frame {
    /// The complete line for `t` in `out`: framed, cut to the target's `len`, newline-ended
    /// (on the wire as on a terminal, as HAProxy sends it).
    fn line_into(&self, out: &mut Vec<u8>, t: &LogTarget, level: Level, at: SystemTime, sd: Option<&str>, msg: &[u8]) {
        out.clear();
        self.head_into(out, t, level, at, sd);
        out.extend_from_slice(msg);
        Frame::finish(out, t);
    }

    /// What goes before the message in `t`'s framing, appended to `out`.
    fn head_into(&self, out: &mut Vec<u8>, t: &LogTarget, level: Level, at: SystemTime, sd: Option<&str>) {
        let tag = self.ident.tag.as_deref().unwrap_or("lbha");
        let h = format::Header {
            facility: t.facility,
            level,
            at,
            host: self.ident.hostname.as_deref(),
            tag,
            pid: self.pid,
            sd,
        };
        let framing = t.framing.unwrap_or(self.framing);
        if !matches!(framing, Framing::Rfc3164 | Framing::Local) {
            format::head_into(out, framing, &h);
            return;
        }
        let secs = at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let key = HeadKey { frame: self.id, secs, facility: t.facility, level, framing };
        HEAD.with_borrow_mut(|(have, text)| {
            if *have != Some(key) {
                text.clear();
                format::head_into(text, framing, &h);
                *have = Some(key);
            }
            out.extend_from_slice(text);
        });
    }

    /// Cuts a framed line to the target's `len` and ends it with a newline.
    fn finish(out: &mut Vec<u8>, t: &LogTarget) {
        if out.len() > t.len {
            let mut cut = t.len;
            // Cut on a character boundary when the text is UTF-8.
            while cut > 0 && (out[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            out.truncate(cut);
        }
        out.push(b'\n');
    }
}

async fn stream_loop(mut rx: mpsc::Receiver<Msg>, targets: Vec<LogTarget>, frame: Frame) {
    use tokio::io::AsyncWriteExt;
    let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
    let mut line = Vec::new();
    while let Some(m) = rx.recv().await {
        for t in targets.iter().filter(|t| m.level <= t.max_level) {
            frame.line_into(&mut line, t, m.level, m.at, m.sd.as_deref(), m.text.as_bytes());
            let sent = match &t.target {
                Target::Stderr => stderr.write_all(&line).await,
                _ => stdout.write_all(&line).await,
            };
            if let Err(e) = sent {
                tracing::debug!("log write to {:?} failed: {e}", t.target);
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
        let frame = Frame { framing: Framing::Rfc3164, ident: Ident::default(), pid: 1, id: u64::MAX };
        let mut t = LogTarget::parse("stdout format raw local0").unwrap();
        t.len = 80;
        let mut line = Vec::new();
        frame.line_into(&mut line, &t, Level::Info, SystemTime::now(), None, "x".repeat(100).as_bytes());
        assert_eq!(line.len(), 81, "80 bytes and the newline");
        // A cut never splits a character.
        frame.line_into(&mut line, &t, Level::Info, SystemTime::now(), None, "é".repeat(60).as_bytes());
        assert_eq!((line.len(), std::str::from_utf8(&line).is_ok()), (81, true));
    }

    #[test]
    fn reused_headers_are_the_ones_formatted_for_the_line() {
        use std::time::Duration;
        let t = LogTarget::parse("127.0.0.1 local0").unwrap();
        let ident = |tag: &str| Ident { tag: Some(tag.into()), hostname: Some("h".into()) };
        let a = Frame { framing: Framing::Rfc3164, ident: ident("a"), pid: 7, id: 1 };
        let b = Frame { framing: Framing::Rfc3164, ident: ident("b"), pid: 7, id: 2 };
        let local = Frame { framing: Framing::Local, ident: ident("a"), pid: 7, id: 3 };
        let line = |f: &Frame, level, at| {
            let mut v = Vec::new();
            f.line_into(&mut v, &t, level, at, None, b"m");
            String::from_utf8(v).unwrap()
        };
        let fresh = |f: &Frame, level, at| {
            let h = format::Header {
                facility: 16,
                level,
                at,
                host: Some("h"),
                tag: f.ident.tag.as_deref().unwrap(),
                pid: 7,
                sd: None,
            };
            format::frame(f.framing, &h, "m") + "\n"
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = at + Duration::from_millis(1500);
        for (f, level, at) in [
            (&a, Level::Info, at),
            (&a, Level::Info, at + Duration::from_millis(999)),
            (&b, Level::Info, at),
            (&a, Level::Err, at),
            (&local, Level::Err, at),
            (&a, Level::Info, later),
            (&a, Level::Info, at),
        ] {
            assert_eq!(line(f, level, at), fresh(f, level, at));
        }
        assert_ne!(line(&a, Level::Info, at), line(&a, Level::Info, later));
    }
}
