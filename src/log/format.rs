//! Log line formats: syslog framing (RFC 3164 and RFC 5424) and HAProxy's `httplog` / `tcplog`
//! messages. Pure: time and host name come in as arguments.

use std::net::SocketAddr;
use std::time::SystemTime;

/// Syslog severities (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "emerg" => Level::Emerg,
            "alert" => Level::Alert,
            "crit" => Level::Crit,
            "err" => Level::Err,
            "warning" => Level::Warning,
            "notice" => Level::Notice,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }
}

/// Facility names as HAProxy and syslog spell them.
pub fn facility(s: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp",
        "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];
    NAMES.iter().position(|n| *n == s).map(|i| i as u8)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Rfc3164,
    Rfc5424,
    /// RFC 3164 without the host name.
    Local,
    /// `<level>text`, for a local collector (systemd reads the level).
    Short,
    /// `<priority>text`.
    Priority,
    /// The text alone.
    Raw,
    /// `ISO-8601-date text`.
    Iso,
    /// `<priority>ISO-8601-date text`.
    Timed,
}

impl Framing {
    /// HAProxy's `log ... format NAME` names.
    pub fn parse(s: &str) -> Option<Framing> {
        Some(match s {
            "rfc3164" => Framing::Rfc3164,
            "rfc5424" => Framing::Rfc5424,
            "local" => Framing::Local,
            "short" => Framing::Short,
            "priority" => Framing::Priority,
            "raw" => Framing::Raw,
            "iso" => Framing::Iso,
            "timed" => Framing::Timed,
            _ => return None,
        })
    }
}

/// What goes around a message.
pub struct Header<'a> {
    pub facility: u8,
    pub level: Level,
    pub at: SystemTime,
    /// `log-send-hostname`: the name lines carry (none by default, as in HAProxy: RFC 5424 then
    /// says `-`).
    pub host: Option<&'a str>,
    /// `log-tag`.
    pub tag: &'a str,
    pub pid: u32,
    /// `log-format-sd` output (RFC 5424 only).
    pub sd: Option<&'a str>,
}

/// HAProxy's ISO 8601 time: microseconds and a numeric UTC offset.
fn iso(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_micros(t).to_string();
    format!("{}+00:00", s.trim_end_matches('Z'))
}

/// A complete line in `framing`.
pub fn frame(framing: Framing, h: &Header<'_>, msg: &str) -> String {
    let pri = h.facility as u32 * 8 + h.level as u32;
    let p = parts(h.at);
    let (tag, pid) = (h.tag, h.pid);
    match framing {
        Framing::Rfc3164 | Framing::Local => {
            let day = p.day.trim_start_matches('0');
            let host = match (framing, h.host) {
                (Framing::Rfc3164, Some(host)) => format!("{host} "),
                _ => String::new(),
            };
            format!("<{pri}>{} {:>2} {} {host}{tag}[{pid}]: {msg}", MONTHS[p.month], day, p.hms)
        }
        // HAProxy's host field is `-` unless `log-send-hostname` names one.
        Framing::Rfc5424 => {
            let sd = h.sd.filter(|s| !s.is_empty()).unwrap_or("-");
            format!("<{pri}>1 {} {} {tag} {pid} - {sd} {msg}", iso(h.at), h.host.unwrap_or("-"))
        }
        Framing::Short => format!("<{}>{msg}", h.level as u32),
        Framing::Priority => format!("<{pri}>{msg}"),
        Framing::Raw => msg.to_string(),
        Framing::Iso => format!("{} {msg}", iso(h.at)),
        Framing::Timed => format!("<{}>{} {msg}", h.level as u32, iso(h.at)),
    }
}

/// Calendar parts of a UTC time, taken from humantime's fixed-width RFC 3339 rendering.
struct Parts {
    year: String,
    month: usize,
    day: String,
    hms: String,
    millis: String,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn parts(t: SystemTime) -> Parts {
    let s = humantime::format_rfc3339_millis(t).to_string();
    // "2026-11-25T02:49:33.123Z"
    let month = s.get(5..7).and_then(|m| m.parse::<usize>().ok()).unwrap_or(1).clamp(1, 12) - 1;
    Parts {
        year: s.get(0..4).unwrap_or("1970").to_string(),
        month,
        day: s.get(8..10).unwrap_or("01").to_string(),
        hms: s.get(11..19).unwrap_or("00:00:00").to_string(),
        millis: s.get(20..23).unwrap_or("000").to_string(),
    }
}

/// HAProxy's accept date: `25/Nov/2026:02:49:33.123`.
pub fn accept_date(t: SystemTime) -> String {
    let p = parts(t);
    format!("{}/{}/{}:{}.{}", p.day, MONTHS[p.month], p.year, p.hms, p.millis)
}

/// A complete syslog datagram.
pub fn syslog_line(
    framing: Framing,
    facility: u8,
    level: Level,
    now: SystemTime,
    host: &str,
    pid: u32,
    msg: &str,
) -> String {
    let h = Header { facility, level, at: now, host: Some(host), tag: "lbha", pid, sd: None };
    frame(framing, &h, msg)
}

/// What one HTTP exchange did, for an `httplog` line.
#[derive(Debug, Clone)]
pub struct HttpRecord<'a> {
    pub client: SocketAddr,
    pub accepted: SystemTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    pub server: &'a str,
    /// Tq/Tw/Tc/Tr/Tt in milliseconds; -1 where the phase never happened.
    pub timers: [i64; 5],
    pub status: u16,
    pub bytes: u64,
    /// Two letters: who ended it and in which phase ("--" for a normal end).
    pub termination: [char; 2],
    pub retries: u32,
    pub request_line: &'a str,
}

/// HAProxy's `option httplog` message.
pub fn httplog(r: &HttpRecord<'_>) -> String {
    let [tq, tw, tc, tr, tt] = r.timers;
    format!(
        "{} [{}] {} {}/{} {tq}/{tw}/{tc}/{tr}/{tt} {} {} - - {}{}-- 0/0/0/0/{} 0/0 \"{}\"",
        r.client,
        accept_date(r.accepted),
        r.frontend,
        r.backend,
        r.server,
        r.status,
        r.bytes,
        r.termination[0],
        r.termination[1],
        r.retries,
        r.request_line.replace('"', "%22"),
    )
}

/// HAProxy's `option httplog clf` message: the Common Log Format, then HAProxy's own fields
/// (client port, accept milliseconds, proxy names, timers, termination state, counts), as its
/// configuration manual (8.2.3) defines the format.
pub fn httplog_clf(r: &HttpRecord<'_>) -> String {
    let [tq, tw, tc, tr, tt] = r.timers;
    let p = parts(r.accepted);
    format!(
        "{} - - [{}/{}/{}:{} +0000] \"{}\" {} {} \"\" \"\" {} {} \"{}\" \"{}\" \"{}\" {tq} {tw} {tc} {tr} {tt} {}{}-- 0 0 0 0 {} 0 0 \"\" \"\" \"\" \"\"",
        r.client.ip(),
        p.day,
        MONTHS[p.month],
        p.year,
        p.hms,
        r.request_line.replace('"', "%22"),
        r.status,
        r.bytes,
        r.client.port(),
        p.millis,
        r.frontend,
        r.backend,
        r.server,
        r.termination[0],
        r.termination[1],
        r.retries,
    )
}

/// What one TCP session did, for a `tcplog` line.
#[derive(Debug, Clone)]
pub struct TcpRecord<'a> {
    pub client: SocketAddr,
    pub accepted: SystemTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    pub server: &'a str,
    /// Tw/Tc/Tt in milliseconds.
    pub timers: [i64; 3],
    pub bytes: u64,
    pub termination: [char; 2],
    pub retries: u32,
}

/// HAProxy's `option tcplog` message.
pub fn tcplog(r: &TcpRecord<'_>) -> String {
    let [tw, tc, tt] = r.timers;
    format!(
        "{} [{}] {} {}/{} {tw}/{tc}/{tt} {} {}{} 0/0/0/0/{} 0/0",
        r.client,
        accept_date(r.accepted),
        r.frontend,
        r.backend,
        r.server,
        r.bytes,
        r.termination[0],
        r.termination[1],
        r.retries,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn t() -> SystemTime {
        // 2026-11-05T02:49:33.123Z
        UNIX_EPOCH + Duration::from_millis(1_793_846_973_123)
    }

    #[test]
    fn dates() {
        assert_eq!(accept_date(t()), "05/Nov/2026:02:49:33.123");
    }

    #[test]
    fn syslog_framings() {
        assert_eq!(
            syslog_line(Framing::Rfc3164, 18, Level::Info, t(), "lb1", 42, "hello"),
            "<150>Nov  5 02:49:33 lb1 lbha[42]: hello"
        );
        assert_eq!(
            syslog_line(Framing::Rfc5424, 16, Level::Notice, t(), "lb1", 42, "hello"),
            "<133>1 2026-11-05T02:49:33.123000+00:00 lb1 lbha 42 - - hello"
        );
    }

    #[test]
    fn every_framing() {
        let h = |host| Header {
            facility: 16,
            level: Level::Info,
            at: t(),
            host,
            tag: "web",
            pid: 42,
            sd: Some("[x@1 a=\"b\"]"),
        };
        let f = |fr, host| frame(fr, &h(host), "hi");
        assert_eq!(f(Framing::Rfc3164, None), "<134>Nov  5 02:49:33 web[42]: hi");
        assert_eq!(f(Framing::Rfc3164, Some("box")), "<134>Nov  5 02:49:33 box web[42]: hi");
        assert_eq!(f(Framing::Local, Some("box")), "<134>Nov  5 02:49:33 web[42]: hi");
        assert_eq!(f(Framing::Rfc5424, None), "<134>1 2026-11-05T02:49:33.123000+00:00 - web 42 - [x@1 a=\"b\"] hi");
        assert_eq!(
            f(Framing::Rfc5424, Some("box")),
            "<134>1 2026-11-05T02:49:33.123000+00:00 box web 42 - [x@1 a=\"b\"] hi"
        );
        assert_eq!(f(Framing::Short, None), "<6>hi");
        assert_eq!(f(Framing::Priority, None), "<134>hi");
        assert_eq!(f(Framing::Raw, None), "hi");
        assert_eq!(f(Framing::Iso, None), "2026-11-05T02:49:33.123000+00:00 hi");
        assert_eq!(f(Framing::Timed, None), "<6>2026-11-05T02:49:33.123000+00:00 hi");
        assert_eq!(Framing::parse("raw"), Some(Framing::Raw));
        assert_eq!(Framing::parse("fancy"), None);
    }

    #[test]
    fn names() {
        assert_eq!(facility("local2"), Some(18));
        assert_eq!(facility("kern"), Some(0));
        assert_eq!(facility("local9"), None);
        assert_eq!(Level::parse("info"), Some(Level::Info));
        assert_eq!(Level::parse("loud"), None);
    }

    #[test]
    fn http_and_tcp_lines() {
        let r = HttpRecord {
            client: "192.0.2.7:40000".parse().unwrap(),
            accepted: t(),
            frontend: "http_80_in",
            backend: "php_server",
            server: "php_server_1",
            timers: [0, 0, 1, 5, 7],
            status: 200,
            bytes: 1234,
            termination: ['-', '-'],
            retries: 0,
            request_line: "GET /index.php HTTP/1.1",
        };
        assert_eq!(
            httplog(&r),
            "192.0.2.7:40000 [05/Nov/2026:02:49:33.123] http_80_in php_server/php_server_1 0/0/1/5/7 200 1234 - - ---- 0/0/0/0/0 0/0 \"GET /index.php HTTP/1.1\""
        );
        // Issue 14 item 29: `option httplog clf` keeps HAProxy's CLF line.
        assert_eq!(
            httplog_clf(&r),
            "192.0.2.7 - - [05/Nov/2026:02:49:33 +0000] \"GET /index.php HTTP/1.1\" 200 1234 \"\" \"\" 40000 123 \"http_80_in\" \"php_server\" \"php_server_1\" 0 0 1 5 7 ---- 0 0 0 0 0 0 0 \"\" \"\" \"\" \"\""
        );
        let t2 = TcpRecord {
            client: "192.0.2.7:40001".parse().unwrap(),
            accepted: t(),
            frontend: "db",
            backend: "db",
            server: "s1",
            timers: [0, 1, 900],
            bytes: 77,
            termination: ['C', 'D'],
            retries: 1,
        };
        assert_eq!(tcplog(&t2), "192.0.2.7:40001 [05/Nov/2026:02:49:33.123] db db/s1 0/1/900 77 CD 0/0/0/0/1 0/0");
    }
}
