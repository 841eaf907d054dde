//! Calendar arithmetic and the time formats of `utime`, `ltime` and `http_date`, without a clock:
//! the time is always the input sample. Local time is UTC plus an offset the caller supplies.

/// A broken-down time (proleptic Gregorian calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tm {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday
    pub wday: u32,
    /// 0..=365
    pub yday: u32,
    /// The Unix time this was computed from, and the UTC offset applied (seconds).
    pub unix: i64,
    pub offset: i64,
}

const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Tm {
    /// `unix` seconds shifted by `offset` seconds (0 for UTC).
    pub fn at(unix: i64, offset: i64) -> Tm {
        let t = unix.saturating_add(offset);
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        // Howard Hinnant's days-from-civil inverse.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][month as usize - 1];
        let yday = cumulative + day - 1 + u32::from(leap && month > 2);
        Tm {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            min: (secs / 60 % 60) as u32,
            sec: (secs % 60) as u32,
            wday: (days + 4).rem_euclid(7) as u32,
            yday,
            unix,
            offset,
        }
    }
}

/// `strftime` for the conversions of the C library's POSIX locale; `zone` is what `%Z` prints.
/// Unknown conversions are copied as written.
pub(super) fn strftime(format: &str, tm: &Tm, zone: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let h12 = if tm.hour.is_multiple_of(12) { 12 } else { tm.hour % 12 };
        let _ = match spec {
            'a' => write!(out, "{}", &DAYS[tm.wday as usize][..3]),
            'A' => write!(out, "{}", DAYS[tm.wday as usize]),
            'b' | 'h' => write!(out, "{}", &MONTHS[tm.month as usize - 1][..3]),
            'B' => write!(out, "{}", MONTHS[tm.month as usize - 1]),
            'c' => write!(out, "{}", strftime("%a %b %e %H:%M:%S %Y", tm, zone)),
            'C' => write!(out, "{:02}", tm.year.div_euclid(100)),
            'd' => write!(out, "{:02}", tm.day),
            'D' | 'x' => write!(out, "{}", strftime("%m/%d/%y", tm, zone)),
            'e' => write!(out, "{:2}", tm.day),
            'F' => write!(out, "{}", strftime("%Y-%m-%d", tm, zone)),
            'H' => write!(out, "{:02}", tm.hour),
            'I' => write!(out, "{h12:02}"),
            'j' => write!(out, "{:03}", tm.yday + 1),
            'k' => write!(out, "{:2}", tm.hour),
            'l' => write!(out, "{h12:2}"),
            'm' => write!(out, "{:02}", tm.month),
            'M' => write!(out, "{:02}", tm.min),
            'n' => writeln!(out),
            'p' => write!(out, "{}", if tm.hour < 12 { "AM" } else { "PM" }),
            'P' => write!(out, "{}", if tm.hour < 12 { "am" } else { "pm" }),
            'r' => write!(out, "{}", strftime("%I:%M:%S %p", tm, zone)),
            'R' => write!(out, "{}", strftime("%H:%M", tm, zone)),
            's' => write!(out, "{}", tm.unix),
            'S' => write!(out, "{:02}", tm.sec),
            't' => write!(out, "\t"),
            'T' | 'X' => write!(out, "{}", strftime("%H:%M:%S", tm, zone)),
            'u' => write!(out, "{}", if tm.wday == 0 { 7 } else { tm.wday }),
            'w' => write!(out, "{}", tm.wday),
            'U' => write!(out, "{:02}", (tm.yday + 7 - tm.wday) / 7),
            'W' => write!(out, "{:02}", (tm.yday + 7 - (tm.wday + 6) % 7) / 7),
            'y' => write!(out, "{:02}", tm.year.rem_euclid(100)),
            'Y' => write!(out, "{}", tm.year),
            'z' => {
                let sign = if tm.offset < 0 { '-' } else { '+' };
                let m = tm.offset.abs() / 60;
                write!(out, "{sign}{:02}{:02}", m / 60, m % 60)
            }
            'Z' => write!(out, "{zone}"),
            '%' => write!(out, "%"),
            other => write!(out, "%{other}"),
        };
    }
    out
}

/// The IMF-fixdate of `http_date`: `Fri, 14 Jul 2017 02:40:00 GMT`, with `.frac` when the input
/// was in milliseconds or microseconds (HAProxy prints the fraction unpadded).
pub(super) fn http_date(tm: &Tm, frac: Option<i64>) -> String {
    let mut s = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02}",
        &DAYS[tm.wday as usize][..3],
        tm.day,
        &MONTHS[tm.month as usize - 1][..3],
        tm.year,
        tm.hour,
        tm.min,
        tm.sec
    );
    if let Some(f) = frac {
        s.push_str(&format!(".{f}"));
    }
    s.push_str(" GMT");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn calendar_matches_httpdate_crate() {
        // Cross-check the calendar against an independent implementation over a wide range.
        for t in (0..4_000_000_000i64).step_by(7_777_777).chain([951_782_400, 1_709_164_800, 253_402_300_799]) {
            let ours = http_date(&Tm::at(t, 0), None);
            let theirs = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(t as u64));
            assert_eq!(ours, theirs, "t={t}");
        }
    }

    #[test]
    fn strftime_conversions() {
        let tm = Tm::at(1_500_000_000, 0);
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", &tm, "GMT"), "2017-07-14 02:40:00");
        assert_eq!(
            strftime("%a %A %b %B %e %j %u %w %y %C %s", &tm, "GMT"),
            "Fri Friday Jul July 14 195 5 5 17 20 1500000000"
        );
        assert_eq!(strftime("%d/%b/%Y:%T %z %Z %%", &tm, "GMT"), "14/Jul/2017:02:40:00 +0000 GMT %");
        // Checked against `date -u -d @1500000000`.
        assert_eq!(strftime("%I %p %U %W %D %R", &tm, "GMT"), "02 AM 28 28 07/14/17 02:40");
        let local = Tm::at(1_500_000_000, -5 * 3600 - 1800);
        assert_eq!(strftime("%H:%M %z %Z", &local, "IST"), "21:10 -0530 IST");
        assert_eq!(strftime("%Q%", &tm, "GMT"), "%Q%");
    }

    #[test]
    fn before_epoch() {
        assert_eq!(http_date(&Tm::at(-1, 0), None), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(http_date(&Tm::at(1_500_000_000, 0), Some(5)), "Fri, 14 Jul 2017 02:40:00.5 GMT");
    }
}
