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

/// A complete line in `framing`.
pub fn frame(framing: Framing, h: &Header<'_>, msg: &str) -> String {
    let mut out = Vec::with_capacity(msg.len() + 64);
    frame_into(&mut out, framing, h, msg.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends the line in `framing` to `out`, with no allocation of its own.
pub fn frame_into(out: &mut Vec<u8>, framing: Framing, h: &Header<'_>, msg: &[u8]) {
    head_into(out, framing, h);
    out.extend_from_slice(msg);
}

/// Appends what goes before the message in `framing`: a message rendered right after it needs
/// no copy of its own.
pub fn head_into(out: &mut Vec<u8>, framing: Framing, h: &Header<'_>) {
    let pri = h.facility as i64 * 8 + h.level as i64;
    let (tag, pid) = (h.tag.as_bytes(), h.pid as i64);
    match framing {
        Framing::Rfc3164 | Framing::Local => {
            pri_tag(out, pri);
            per_second(&SYSLOG_DATE, out, h.at, |c, out| {
                out.extend_from_slice(MONTHS[c.month].as_bytes());
                out.push(b' ');
                if c.day < 10 {
                    out.push(b' ');
                }
                push_int(out, c.day as i64);
                out.push(b' ');
                c.hms(out);
            });
            out.push(b' ');
            if let (Framing::Rfc3164, Some(host)) = (framing, h.host) {
                out.extend_from_slice(host.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(tag);
            out.push(b'[');
            push_int(out, pid);
            out.extend_from_slice(b"]: ");
        }
        // HAProxy's host field is `-` unless `log-send-hostname` names one.
        Framing::Rfc5424 => {
            pri_tag(out, pri);
            out.extend_from_slice(b"1 ");
            iso_into(out, h.at);
            out.push(b' ');
            out.extend_from_slice(h.host.unwrap_or("-").as_bytes());
            out.push(b' ');
            out.extend_from_slice(tag);
            out.push(b' ');
            push_int(out, pid);
            out.extend_from_slice(b" - ");
            out.extend_from_slice(h.sd.filter(|s| !s.is_empty()).unwrap_or("-").as_bytes());
            out.push(b' ');
        }
        Framing::Short => pri_tag(out, h.level as i64),
        Framing::Priority => pri_tag(out, pri),
        Framing::Raw => {}
        Framing::Iso => {
            iso_into(out, h.at);
            out.push(b' ');
        }
        Framing::Timed => {
            pri_tag(out, h.level as i64);
            iso_into(out, h.at);
            out.push(b' ');
        }
    }
}

fn pri_tag(out: &mut Vec<u8>, pri: i64) {
    out.push(b'<');
    push_int(out, pri);
    out.push(b'>');
}

/// HAProxy's ISO 8601 time: microseconds and a numeric UTC offset.
fn iso_into(out: &mut Vec<u8>, t: SystemTime) {
    let c = Civil::of(t);
    push_int(out, c.year);
    out.push(b'-');
    push_pad(out, c.month as i64 + 1, 2);
    out.push(b'-');
    push_pad(out, c.day as i64, 2);
    out.push(b'T');
    c.hms(out);
    out.push(b'.');
    push_pad(out, c.micros as i64, 6);
    out.extend_from_slice(b"+00:00");
}

/// A decimal number, without going through `fmt`.
pub fn push_int(out: &mut Vec<u8>, n: i64) {
    // Timers and counters are mostly one digit.
    if (0..10).contains(&n) {
        out.push(b'0' + n as u8);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
}

/// `n` zero-padded to `width` digits.
fn push_pad(out: &mut Vec<u8>, n: i64, width: usize) {
    // The usual case (times of day, days, milliseconds) without moving digits afterwards.
    if (0..1000).contains(&n) && width <= 3 {
        let digits = [b'0' + (n / 100) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        let need = if n >= 100 {
            3
        } else if n >= 10 {
            2
        } else {
            1
        };
        out.extend_from_slice(&digits[3 - width.max(need)..]);
        return;
    }
    let start = out.len();
    push_int(out, n);
    let len = out.len() - start;
    if len < width {
        out.splice(start..start, std::iter::repeat_n(b'0', width - len));
    }
}

/// Calendar fields of a UTC time (times before 1970 read as 1970).
struct Civil {
    year: i64,
    /// 0 = January.
    month: usize,
    day: u32,
    secs_of_day: u32,
    micros: u32,
}

impl Civil {
    fn of(t: SystemTime) -> Civil {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Civil::at(d.as_secs() as i64, d.subsec_micros())
    }

    /// The calendar of `sample`'s `ltime`/`utime` converters, in UTC.
    fn at(secs: i64, micros: u32) -> Civil {
        let tm = crate::sample::timefmt::Tm::at(secs, 0);
        let secs_of_day = tm.hour * 3600 + tm.min * 60 + tm.sec;
        Civil { year: tm.year, month: tm.month as usize - 1, day: tm.day, secs_of_day, micros }
    }

    /// `HH:MM:SS`.
    fn hms(&self, out: &mut Vec<u8>) {
        let s = self.secs_of_day as i64;
        push_pad(out, s / 3600, 2);
        out.push(b':');
        push_pad(out, s / 60 % 60, 2);
        out.push(b':');
        push_pad(out, s % 60, 2);
    }

    /// `25/Nov/2026:02:49:33`.
    fn clf(&self, out: &mut Vec<u8>) {
        push_pad(out, self.day as i64, 2);
        out.push(b'/');
        out.extend_from_slice(MONTHS[self.month].as_bytes());
        out.push(b'/');
        push_int(out, self.year);
        out.push(b':');
        self.hms(out);
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `%Tl`/`%trl`, appended: the local time with its offset, `06/Dec/2026:05:41:44 +0100`.
pub fn local_date_into(out: &mut Vec<u8>, t: SystemTime) {
    let offset = local_offset(t);
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    Civil::at(secs + offset, 0).clf(out);
    out.extend_from_slice(if offset < 0 { b" -" } else { b" +" });
    let m = offset.abs() / 60;
    push_pad(out, m / 60, 2);
    push_pad(out, m % 60, 2);
}

/// The local time zone's offset from UTC at `t`, in seconds (the C library's `localtime_r`,
/// which reads `TZ` as HAProxy does).
fn local_offset(t: SystemTime) -> i64 {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as nix::libc::time_t;
    // SAFETY: `localtime_r` only writes the `tm` it is given; a zeroed `tm` is a valid value.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !nix::libc::localtime_r(&secs, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

/// HAProxy's accept date, appended: `25/Nov/2026:02:49:33.123`.
pub fn accept_date_into(out: &mut Vec<u8>, t: SystemTime) {
    per_second(&CLF_DATE, out, t, Civil::clf);
    out.push(b'.');
    let millis = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    push_pad(out, millis as i64, 3);
}

/// `%T`, appended: `06/Dec/2026:04:41:44 +0000`.
pub fn gmt_date_into(out: &mut Vec<u8>, t: SystemTime) {
    per_second(&CLF_DATE, out, t, Civil::clf);
    out.extend_from_slice(b" +0000");
}

/// A date's text for one second, kept per thread: lines of the same second reuse it.
type SecondText = std::cell::Cell<(i64, [u8; 32], u8)>;

thread_local! {
    static CLF_DATE: SecondText = const { std::cell::Cell::new((i64::MIN, [0; 32], 0)) };
    static SYSLOG_DATE: SecondText = const { std::cell::Cell::new((i64::MIN, [0; 32], 0)) };
}

/// Appends `write`'s text for `t`'s second, formatted once per second per thread.
fn per_second(
    cache: &'static std::thread::LocalKey<SecondText>,
    out: &mut Vec<u8>,
    t: SystemTime,
    write: fn(&Civil, &mut Vec<u8>),
) {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (at, text, len) = cache.get();
    if at == secs {
        out.extend_from_slice(&text[..len as usize]);
        return;
    }
    let start = out.len();
    write(&Civil::at(secs, 0), out);
    let new = &out[start..];
    if new.len() <= 32 {
        let mut text = [0; 32];
        text[..new.len()].copy_from_slice(new);
        cache.set((secs, text, new.len() as u8));
    }
}

/// HAProxy's accept date: `25/Nov/2026:02:49:33.123`.
pub fn accept_date(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    accept_date_into(&mut out, t);
    String::from_utf8_lossy(&out).into_owned()
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
/// configuration manual (8.2.3) defines the format, for a request without a log record (no
/// capture slots, so `%hrl %hsl` print nothing; with a record, its compiled CLF format is used).
pub fn httplog_clf(r: &HttpRecord<'_>) -> String {
    let [tq, tw, tc, tr, tt] = r.timers;
    let mut date = Vec::with_capacity(32);
    gmt_date_into(&mut date, r.accepted);
    let c = Civil::of(r.accepted);
    format!(
        "{} - - [{}] \"{}\" {} {} \"\" \"\" {} {:03} \"{}\" \"{}\" \"{}\" {tq} {tw} {tc} {tr} {tt} {}{}-- 0 0 0 0 {} 0 0 \"\" \"\" ",
        r.client.ip(),
        String::from_utf8_lossy(&date),
        r.request_line.replace('"', "%22"),
        r.status,
        r.bytes,
        r.client.port(),
        c.micros / 1000,
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

    /// The text kept for a second serves only that second: the same second with other
    /// milliseconds, the next second, and an earlier one again.
    #[test]
    fn dates_formatted_once_per_second_stay_exact() {
        let at = |ms: u64| t() + Duration::from_millis(ms);
        assert_eq!(accept_date(at(0)), "05/Nov/2026:02:49:33.123");
        assert_eq!(accept_date(at(800)), "05/Nov/2026:02:49:33.923");
        assert_eq!(accept_date(at(877)), "05/Nov/2026:02:49:34.000");
        assert_eq!(accept_date(at(86_400_000)), "06/Nov/2026:02:49:33.123");
        assert_eq!(accept_date(at(0)), "05/Nov/2026:02:49:33.123");
        let mut out = Vec::new();
        gmt_date_into(&mut out, at(877));
        assert_eq!(out, b"05/Nov/2026:02:49:34 +0000");
        let line = |ms| syslog_line(Framing::Rfc3164, 18, Level::Info, at(ms), "h", 1, "x");
        assert_eq!(line(0), "<150>Nov  5 02:49:33 h lbha[1]: x");
        assert_eq!(line(877), "<150>Nov  5 02:49:34 h lbha[1]: x");
        assert_eq!(line(86_400_000 * 5), "<150>Nov 10 02:49:33 h lbha[1]: x");
        let mut n = Vec::new();
        for (v, w) in [(5, 2), (42, 2), (123, 2), (7, 3), (999, 3), (0, 1), (1234, 3), (12, 6)] {
            push_pad(&mut n, v, w);
            n.push(b' ');
        }
        assert_eq!(n, b"05 42 123 007 999 0 1234 000012 ");
    }

    /// The hand-made calendar against humantime's, over four centuries of days and times
    /// (leap years, century rules, month ends).
    #[test]
    fn calendar_matches_humantime() {
        let mut secs: u64 = 0;
        while secs < 13_000_000_000 {
            let t = UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + 123_456);
            let mut ours = Vec::new();
            iso_into(&mut ours, t);
            let want = humantime::format_rfc3339_micros(t).to_string().replace('Z', "+00:00");
            assert_eq!(String::from_utf8(ours).unwrap(), want);
            secs += 86_400 * 3 + 3_599;
        }
    }

    #[test]
    fn local_dates_carry_the_offset() {
        let mut out = Vec::new();
        local_date_into(&mut out, t());
        let s = String::from_utf8(out).unwrap();
        // `05/Nov/2026:08:19:33 +0530` in India, `... +0000` in UTC: the shape is fixed.
        assert_eq!(s.len(), "05/Nov/2026:02:49:33 +0000".len(), "{s}");
        assert!(s.contains("/Nov/2026:") && (s.contains(" +") || s.contains(" -")), "{s}");
        let mut n = Vec::new();
        push_int(&mut n, -1234);
        push_int(&mut n, 0);
        push_pad(&mut n, 7, 3);
        assert_eq!(n, b"-12340007");
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
            "192.0.2.7 - - [05/Nov/2026:02:49:33 +0000] \"GET /index.php HTTP/1.1\" 200 1234 \"\" \"\" 40000 123 \"http_80_in\" \"php_server\" \"php_server_1\" 0 0 1 5 7 ---- 0 0 0 0 0 0 0 \"\" \"\" "
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
