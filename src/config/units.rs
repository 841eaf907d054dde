//! Durations and sizes as operators write them in HAProxy and keepalived configs.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::time::Duration;

/// A duration from the config: an integer is milliseconds (HAProxy's default unit), a string takes
/// HAProxy's units (`us`, `ms`, `s`, `m`, `h`, `d`) or a humantime phrase such as `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConfDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration: milliseconds as an integer, or a string such as \"5s\", \"300ms\", \"2m\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let ms = u64::try_from(v).map_err(|_| E::custom(format!("negative duration {v}")))?;
                self.visit_u64(ms)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                within_timer(Duration::from_millis(v)).map(ConfDuration).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).and_then(within_timer).map(ConfDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Written back as `"1500ms"` (`"250us"` below a millisecond), which reads back the same.
impl Serialize for ConfDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_micros() {
            us if us % 1000 == 0 => s.serialize_str(&format!("{}ms", us / 1000)),
            us => s.serialize_str(&format!("{us}us")),
        }
    }
}

/// HAProxy's (and keepalived's) timers hold at most 2^31-1 ms; it refuses longer ones.
pub const MAX_TIMER: Duration = Duration::from_millis(i32::MAX as u64);

fn within_timer(d: Duration) -> Result<Duration, String> {
    if d > MAX_TIMER {
        return Err(format!(
            "timer overflow: {} ms is more than 2147483647 ms (~24.8 days), HAProxy's maximum",
            d.as_millis()
        ));
    }
    Ok(d)
}

/// A count as HAProxy writes sizes: an integer, or a string with `k`, `m` or `g` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfSize(pub u64);

impl<'de> Deserialize<'de> for ConfSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConfSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size: an integer, or a string such as \"100k\", \"1m\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(ConfSize).map_err(|_| E::custom(format!("negative size {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_size(v).map(ConfSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"1000"`, `"100k"`, `"1m"`, `"2g"` (HAProxy's suffixes, powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => {
            return Err(format!("invalid size {s:?} (expected e.g. 1000, \"100k\", \"1m\")"));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("invalid size {s:?} (expected e.g. 1000, \"100k\", \"1m\")"))
}

/// Parses `"300000ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"100"` (ms) or a humantime phrase.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if !num.is_empty() {
        let scale_us: Option<f64> = match unit {
            "" | "ms" => Some(1e3),
            "us" => Some(1.0),
            "s" => Some(1e6),
            "m" => Some(60e6),
            "h" => Some(3600e6),
            "d" => Some(86400e6),
            _ => None,
        };
        if let (Some(scale), Ok(n)) = (scale_us, num.parse::<f64>())
            && n.is_finite()
        {
            let us = n * scale;
            if us > 1e15 {
                return Err(format!("duration {s:?} is too large"));
            }
            return Ok(Duration::from_micros(us.round() as u64));
        }
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("invalid duration {s:?} (expected e.g. \"5s\", \"300ms\", \"2m\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_units() {
        assert_eq!(parse_duration("300000ms").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("100").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("100k"), Ok(102_400));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        for bad in ["", "m", "1x", "-1", "99999999999999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "fast", "5x", "-3s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
