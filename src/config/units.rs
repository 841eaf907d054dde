//! Durations and sizes as operators write them in HAProxy and keepalived configs.

use serde::{Deserialize, Deserializer, de};
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
                u64::try_from(v)
                    .map(|ms| ConfDuration(Duration::from_millis(ms)))
                    .map_err(|_| E::custom(format!("negative duration {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfDuration(Duration::from_millis(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
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
    fn rejects_garbage() {
        for bad in ["", "fast", "5x", "-3s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
