//! `show sess [ID|all]`, `shutdown session ID` and `shutdown sessions server B/S`: HAProxy 2.6's
//! words, replies and layout, over lbha's session registry (`proxy::sessions`). HAProxy names a
//! session by its pointer; lbha prints its session id in the same `0x` form and takes it back.
//! Parsing and rendering only; `daemon::sess` reads the registry and kills.

use super::parse::{Level, ParseError, ServerRef};
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessCmd {
    /// `show sess`: one line per session.
    List,
    /// `show sess all`: every session in detail.
    All,
    /// `show sess ID`: one session in detail.
    One(u64),
    /// `shutdown session ID`.
    Kill(u64),
    /// `shutdown sessions server B/S`.
    KillServer(ServerRef),
}

impl SessCmd {
    /// As HAProxy: reading sessions needs operator (they show client addresses), ending them admin.
    pub fn level(&self) -> Level {
        match self {
            SessCmd::List | SessCmd::All | SessCmd::One(_) => Level::Operator,
            SessCmd::Kill(_) | SessCmd::KillServer(_) => Level::Admin,
        }
    }
}

const NEED_ID: &str = "Session pointer expected (use 'show sess').";
const NEED_SERVER: &str = "Require 'backend/server'.";

/// HAProxy's replies when nothing matches.
pub const NO_SUCH_SESSION: &str = "No such session (use 'show sess').";
pub const SESSION_NOT_FOUND: &str = "Session not found.";

/// Parses the commands of this module; None for any other command.
pub fn parse(w: &[&str]) -> Option<Result<SessCmd, ParseError>> {
    let r = match w {
        ["show", "sess"] => Ok(SessCmd::List),
        ["show", "sess", "all"] => Ok(SessCmd::All),
        // As HAProxy's `strtoul`: a word that reads as 0 lists them all.
        ["show", "sess", id] => Ok(match strtoul(id) {
            0 => SessCmd::List,
            n => SessCmd::One(n),
        }),
        ["show", "sess", _, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        ["shutdown", "session", rest @ ..] => match rest {
            [id] if strtoul(id) != 0 => Ok(SessCmd::Kill(strtoul(id))),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
            _ => Err(ParseError::Custom(NEED_ID.into())),
        },
        ["shutdown", "sessions", "server", rest @ ..] => match rest {
            [sv] => match sv.split_once('/') {
                Some((b, s)) if !b.is_empty() && !s.is_empty() => {
                    Ok(SessCmd::KillServer(ServerRef { backend: b.to_string(), server: s.to_string() }))
                }
                _ => Err(ParseError::Custom(NEED_SERVER.into())),
            },
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
            [] => Err(ParseError::Custom(NEED_SERVER.into())),
        },
        _ => return None,
    };
    Some(r)
}

/// C's `strtoul(s, NULL, 0)`: `0x` hex, leading `0` octal, else decimal, up to the first
/// character that is not a digit; 0 when nothing reads.
pub fn strtoul(s: &str) -> u64 {
    let s = s.trim_start();
    let s = s.strip_prefix('+').unwrap_or(s);
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None if s.starts_with('0') => (s, 8),
        None => (s, 10),
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    u64::from_str_radix(&digits[..end], radix).unwrap_or(if end == 0 { 0 } else { u64::MAX })
}

/// HAProxy's `human_time`: at most two units, largest first (`0s`, `42s`, `3m5s`, `2h`, `1d4h`).
pub fn human_time(d: Duration) -> String {
    let t = d.as_secs();
    if t == 0 {
        return "0s".into();
    }
    let (day, hour, min) = (86_400, 3_600, 60);
    let mut out = String::new();
    let mut left = 2;
    if t >= day {
        let _ = write!(out, "{}d", t / day);
        left -= 1;
    }
    if left > 0 && t % day / hour > 0 {
        let _ = write!(out, "{}h", t % day / hour);
        left -= 1;
    }
    if left > 0 && t % hour / min > 0 {
        let _ = write!(out, "{}m", t % hour / min);
        left -= 1;
    }
    if left > 0 && !t.is_multiple_of(min) {
        let _ = write!(out, "{}s", t % min);
    }
    out
}

/// A proxy or server: its name, its number (1-based, in config order) and its mode or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub id: usize,
    pub mode: &'static str,
}

/// One session as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: u64,
    pub src: SocketAddr,
    pub local: SocketAddr,
    pub accepted: SystemTime,
    pub age: Duration,
    pub frontend: Named,
    pub backend: Option<Named>,
    /// The server and its address.
    pub server: Option<(Named, SocketAddr)>,
    pub tls: bool,
    pub requests: u64,
    /// The proxy thread serving it (0 with `nbthread = 1`).
    pub thread: u32,
}

fn proto(a: &SocketAddr) -> &'static str {
    if a.is_ipv4() { "tcpv4" } else { "tcpv6" }
}

/// `ip:port` as HAProxy prints it (no brackets around IPv6).
fn addr(a: &SocketAddr) -> String {
    format!("{}:{}", a.ip(), a.port())
}

/// `show sess`: HAProxy's one line per session, with the fields lbha has.
pub fn line(r: &Row) -> String {
    format!(
        "0x{:x}: proto={} src={} fe={} be={} srv={} age={}\n",
        r.id,
        proto(&r.local),
        addr(&r.src),
        r.frontend.name,
        r.backend.as_ref().map_or("<NONE>", |b| b.name.as_str()),
        r.server.as_ref().map_or("<none>", |(s, _)| s.name.as_str()),
        human_time(r.age),
    )
}

/// `show sess ID` / `show sess all`: HAProxy's detail block, as far as lbha has the facts.
pub fn detail(r: &Row) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "0x{:x}: [{}] id={} proto={} source={}",
        r.id,
        accept_date_us(r.accepted),
        r.id,
        proto(&r.local),
        addr(&r.src)
    );
    let f = &r.frontend;
    let _ = writeln!(out, "  frontend={} (id={} mode={}), addr={}", f.name, f.id, f.mode, addr(&r.local));
    match &r.backend {
        Some(b) => _ = writeln!(out, "  backend={} (id={} mode={})", b.name, b.id, b.mode),
        None => out.push_str("  backend=<NONE> (id=-1 mode=-)\n"),
    }
    match &r.server {
        Some((s, a)) => _ = writeln!(out, "  server={} (id={}) addr={}", s.name, s.id, addr(a)),
        None => out.push_str("  server=<NONE> (id=-1)\n"),
    }
    // HAProxy prints the thread in its task's line (`tid=`), which lbha has not.
    let _ =
        writeln!(out, "  age={} ssl={} requests={} tid={}", human_time(r.age), u8::from(r.tls), r.requests, r.thread);
    out
}

/// `[06/Dec/2026:23:45:24.293076]`'s inside: HAProxy's accept date with microseconds.
fn accept_date_us(t: SystemTime) -> String {
    let ms = crate::log::format::accept_date(t);
    let us = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
    // The millisecond form ends in `.mmm`; HAProxy prints six digits.
    match ms.rsplit_once('.') {
        Some((head, _)) => format!("{head}.{us:06}"),
        None => ms,
    }
}

/// A row's JSON form.
pub fn row_json(r: &Row) -> serde_json::Value {
    serde_json::json!({
        "id": format!("0x{:x}", r.id),
        "proto": proto(&r.local),
        "src": addr(&r.src),
        "addr": addr(&r.local),
        "fe": r.frontend.name,
        "be": r.backend.as_ref().map(|b| b.name.clone()),
        "srv": r.server.as_ref().map(|(s, _)| s.name.clone()),
        "srv_addr": r.server.as_ref().map(|(_, a)| addr(a)),
        "age": r.age.as_secs(),
        "ssl": r.tls,
        "requests": r.requests,
        "tid": r.thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Result<SessCmd, ParseError>> {
        let w: Vec<&str> = s.split_whitespace().collect();
        parse(&w)
    }

    #[test]
    fn commands_and_haproxys_errors() {
        assert_eq!(words("show sess"), Some(Ok(SessCmd::List)));
        assert_eq!(words("show sess all"), Some(Ok(SessCmd::All)));
        assert_eq!(words("show sess 0x1f"), Some(Ok(SessCmd::One(31))));
        assert_eq!(words("show sess 12"), Some(Ok(SessCmd::One(12))));
        assert_eq!(words("show sess zz"), Some(Ok(SessCmd::List)), "HAProxy reads it as 0: the list");
        assert_eq!(words("shutdown session 0x2a"), Some(Ok(SessCmd::Kill(42))));
        for bad in ["shutdown session", "shutdown session zz", "shutdown session 0"] {
            assert_eq!(words(bad), Some(Err(ParseError::Custom(NEED_ID.into()))), "{bad}");
        }
        assert_eq!(
            words("shutdown sessions server be/s1"),
            Some(Ok(SessCmd::KillServer(ServerRef { backend: "be".into(), server: "s1".into() })))
        );
        for bad in ["shutdown sessions server", "shutdown sessions server be", "shutdown sessions server /s"] {
            assert_eq!(words(bad), Some(Err(ParseError::Custom(NEED_SERVER.into()))), "{bad}");
        }
        assert_eq!(words("show sessions"), None);
        assert_eq!(words("shutdown frontend x"), None);
        assert_eq!(SessCmd::List.level(), Level::Operator);
        assert_eq!(SessCmd::Kill(1).level(), Level::Admin);
        assert_eq!(SessCmd::KillServer(ServerRef { backend: "b".into(), server: "s".into() }).level(), Level::Admin);
    }

    #[test]
    fn strtoul_reads_as_c_does() {
        assert_eq!(strtoul("0x55cf97bea0f0"), 0x55cf_97be_a0f0);
        assert_eq!(strtoul("0X1A"), 26);
        assert_eq!(strtoul("017"), 15);
        assert_eq!(strtoul("42abc"), 42);
        assert_eq!(strtoul("abc"), 0);
        assert_eq!(strtoul(""), 0);
        assert_eq!(strtoul("0x"), 0);
    }

    #[test]
    fn human_time_keeps_two_units() {
        let s = Duration::from_secs;
        assert_eq!(human_time(s(0)), "0s");
        assert_eq!(human_time(s(42)), "42s");
        assert_eq!(human_time(s(185)), "3m5s");
        assert_eq!(human_time(s(7200)), "2h");
        assert_eq!(human_time(s(7261)), "2h1m");
        assert_eq!(human_time(s(86_400 * 3 + 3600 * 4 + 59)), "3d4h");
        assert_eq!(human_time(s(86_400 + 59)), "1d59s");
    }

    fn row() -> Row {
        Row {
            id: 0x1f,
            src: "127.0.0.1:59650".parse().unwrap(),
            local: "127.0.0.1:18461".parse().unwrap(),
            accepted: SystemTime::UNIX_EPOCH + Duration::from_micros(1_765_064_724_293_076),
            age: Duration::from_secs(61),
            frontend: Named { name: "tcpl".into(), id: 2, mode: "tcp" },
            backend: Some(Named { name: "tcpl".into(), id: 1, mode: "tcp" }),
            server: Some((Named { name: "s1".into(), id: 1, mode: "" }, "127.0.0.1:18462".parse().unwrap())),
            tls: false,
            requests: 0,
            thread: 1,
        }
    }

    #[test]
    fn one_line_in_haproxys_layout() {
        assert_eq!(line(&row()), "0x1f: proto=tcpv4 src=127.0.0.1:59650 fe=tcpl be=tcpl srv=s1 age=1m1s\n");
        let mut r = row();
        (r.backend, r.server) = (None, None);
        r.src = "[::1]:5000".parse().unwrap();
        r.local = "[::1]:80".parse().unwrap();
        assert_eq!(line(&r), "0x1f: proto=tcpv6 src=::1:5000 fe=tcpl be=<NONE> srv=<none> age=1m1s\n");
    }

    #[test]
    fn detail_in_haproxys_layout() {
        let d = detail(&row());
        let lines: Vec<&str> = d.lines().collect();
        assert!(lines[0].starts_with("0x1f: ["), "{d}");
        assert!(lines[0].ends_with(".293076] id=31 proto=tcpv4 source=127.0.0.1:59650"), "{d}");
        assert_eq!(lines[1], "  frontend=tcpl (id=2 mode=tcp), addr=127.0.0.1:18461");
        assert_eq!(lines[2], "  backend=tcpl (id=1 mode=tcp)");
        assert_eq!(lines[3], "  server=s1 (id=1) addr=127.0.0.1:18462");
        assert_eq!(lines[4], "  age=1m1s ssl=0 requests=0 tid=1");
        let mut r = row();
        (r.backend, r.server) = (None, None);
        let d = detail(&r);
        assert!(d.contains("  backend=<NONE> (id=-1 mode=-)\n  server=<NONE> (id=-1)\n"), "{d}");
    }
}
