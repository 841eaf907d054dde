//! A table's definition: key type, size, expiry, options and the data types it stores, as
//! `stick-table type ... size ... [expire T] [nopurge] [peers P] [store a,b(P),...]` reads.

use crate::peers::datatype::{DataType, Encoding};
use std::time::Duration;

/// The table's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Ip,
    Ipv6,
    Integer,
    /// Keys longer than `len` bytes are cut.
    String {
        len: usize,
    },
    /// Keys are exactly `len` bytes: shorter ones zero-padded, longer ones cut.
    Binary {
        len: usize,
    },
}

impl KeyKind {
    /// The name `show table` prints.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ip => "ip",
            KeyKind::Ipv6 => "ipv6",
            KeyKind::Integer => "integer",
            KeyKind::String { .. } => "string",
            KeyKind::Binary { .. } => "binary",
        }
    }
}

/// HAProxy's default `len` for string and binary tables.
pub const DEFAULT_KEY_LEN: usize = 32;
/// Most elements of a `gpc(N)`/`gpt(N)`/`gpc_rate(N,P)` array (HAProxy's limit).
pub const MAX_ARRAY: u32 = 100;

/// One stored data type with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stored {
    pub dt: DataType,
    /// Element count of an array type (1 otherwise).
    pub count: u32,
    /// Period in ms of a rate type (0 otherwise).
    pub period: u32,
}

impl Stored {
    /// 32-bit words the value takes in an entry.
    pub fn words(&self) -> usize {
        let n = self.count as usize;
        match self.dt.encoding() {
            Encoding::Signed | Encoding::Uint | Encoding::Dict => 1,
            Encoding::Ull => 2,
            Encoding::Rate => 3,
            Encoding::UintArray => n,
            Encoding::RateArray => 3 * n,
        }
    }
}

/// Everything that shapes a table; two equal definitions may share the live table across a
/// reload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableDef {
    /// The proxy (or `peers` section `table`) that declares it.
    pub name: String,
    pub key: KeyKind,
    pub size: usize,
    /// Lifetime after the last touch; None keeps entries until evicted.
    pub expire: Option<Duration>,
    /// When full, refuse new entries instead of evicting the oldest.
    pub nopurge: bool,
    /// The `peers` section replicating it.
    pub peers: Option<String>,
    /// In data-type id order, each type at most once.
    pub store: Vec<Stored>,
}

impl TableDef {
    pub fn stored(&self, dt: DataType) -> Option<&Stored> {
        self.store.iter().find(|s| s.dt == dt)
    }

    /// Expire in ms (0: never).
    pub fn expire_ms(&self) -> u64 {
        self.expire.map_or(0, |d| d.as_millis() as u64)
    }
}

/// Why a `store` item is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("unknown data type (expected one of {})", known_names())]
    Unknown,
    #[error("{0} needs a period in parentheses, e.g. {0}(10s)")]
    MissingPeriod(&'static str),
    #[error("{0} takes no argument")]
    NoArgument(&'static str),
    #[error("{0} needs an element count, e.g. {0}(2)")]
    MissingCount(&'static str),
    #[error("invalid period: {0}")]
    BadPeriod(String),
    #[error("element count must be 1 to {MAX_ARRAY}")]
    BadCount,
    #[error("is stored twice")]
    Duplicate,
    #[error("gpc/gpt arrays cannot be stored with gpc0, gpc1 or gpt0 in one table (HAProxy 2.6)")]
    ArrayMix,
    #[error("server_key is stored automatically with server_id")]
    ServerKey,
}

fn known_names() -> String {
    let mut v: Vec<String> = (0..crate::peers::datatype::COUNT)
        .filter_map(|i| DataType::from_id(u64::from(i)))
        .filter(|t| *t != DataType::SERVER_KEY)
        .map(|t| match t.encoding() {
            Encoding::Rate => format!("{t}(P)"),
            Encoding::UintArray => format!("{t}(N)"),
            Encoding::RateArray => format!("{t}(N,P)"),
            _ => t.name().to_string(),
        })
        .collect();
    v.sort();
    v.join(", ")
}

/// Parses one `store` item: `gpc0`, `conn_rate(10s)`, `gpc(3)`, `gpc_rate(3,10s)`.
pub fn parse_store_item(item: &str) -> Result<Stored, StoreError> {
    let item = item.trim();
    let (name, arg) = match item.split_once('(') {
        Some((n, rest)) => (n.trim(), Some(rest.strip_suffix(')').ok_or(StoreError::Unknown)?.trim())),
        None => (item, None),
    };
    let dt = DataType::from_name(name).ok_or(StoreError::Unknown)?;
    if dt == DataType::SERVER_KEY {
        return Err(StoreError::ServerKey);
    }
    let period = |p: &str| -> Result<u32, StoreError> {
        let d = crate::config::units::parse_duration(p).map_err(StoreError::BadPeriod)?;
        let ms = d.as_millis();
        if ms == 0 || ms > u128::from(u32::MAX / 2) {
            return Err(StoreError::BadPeriod(format!("{p:?} must be between 1ms and 24d")));
        }
        Ok(ms as u32)
    };
    let count = |c: &str| -> Result<u32, StoreError> {
        c.trim().parse::<u32>().ok().filter(|n| (1..=MAX_ARRAY).contains(n)).ok_or(StoreError::BadCount)
    };
    let s = match (dt.encoding(), arg) {
        (Encoding::Rate, Some(p)) => Stored { dt, count: 1, period: period(p)? },
        (Encoding::Rate, None) => return Err(StoreError::MissingPeriod(dt.name())),
        (Encoding::UintArray, Some(c)) => Stored { dt, count: count(c)?, period: 0 },
        (Encoding::UintArray, None) => return Err(StoreError::MissingCount(dt.name())),
        (Encoding::RateArray, Some(a)) => {
            let (c, p) = a.split_once(',').ok_or(StoreError::MissingCount(dt.name()))?;
            Stored { dt, count: count(c)?, period: period(p.trim())? }
        }
        (Encoding::RateArray, None) => return Err(StoreError::MissingCount(dt.name())),
        (_, Some(_)) => return Err(StoreError::NoArgument(dt.name())),
        (_, None) => Stored { dt, count: 1, period: 0 },
    };
    Ok(s)
}

/// Splits HAProxy's `store a,b(P),gpc_rate(N,P)` list at the commas outside parentheses.
pub fn split_store(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0i32, String::new());
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Parses a whole `store` list into id order.
pub fn parse_store(items: &[String]) -> Result<Vec<Stored>, (usize, StoreError)> {
    let mut out: Vec<Stored> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let s = parse_store_item(it).map_err(|e| (i, e))?;
        if out.iter().any(|o| o.dt == s.dt) {
            return Err((i, StoreError::Duplicate));
        }
        out.push(s);
        let has = |d: DataType| out.iter().any(|o| o.dt == d);
        let arrays = has(DataType::GPC) || has(DataType::GPT) || has(DataType::GPC_RATE);
        let singles = has(DataType::GPC0)
            || has(DataType::GPC1)
            || has(DataType::GPT0)
            || has(DataType::GPC0_RATE)
            || has(DataType::GPC1_RATE);
        if arrays && singles {
            return Err((i, StoreError::ArrayMix));
        }
    }
    out.sort_by_key(|s| s.dt);
    Ok(out)
}

/// What a table used by stick rules stores besides: `server_id` and `server_key`, as HAProxy
/// adds them.
pub fn with_server_key(mut v: Vec<Stored>) -> Vec<Stored> {
    for dt in [DataType::SERVER_ID, DataType::SERVER_KEY] {
        if !v.iter().any(|s| s.dt == dt) {
            v.push(Stored { dt, count: 1, period: 0 });
        }
    }
    v.sort_by_key(|s| s.dt);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Stored]) -> Vec<&'static str> {
        v.iter().map(|s| s.dt.name()).collect()
    }

    #[test]
    fn store_items_as_haproxy_writes_them() {
        assert_eq!(parse_store_item("gpc0").unwrap(), Stored { dt: DataType::GPC0, count: 1, period: 0 });
        assert_eq!(parse_store_item("conn_rate(10s)").unwrap().period, 10_000);
        assert_eq!(parse_store_item("http_req_rate(1500)").unwrap().period, 1500);
        let g = parse_store_item("gpc_rate(2,1m)").unwrap();
        assert_eq!((g.dt, g.count, g.period), (DataType::GPC_RATE, 2, 60_000));
        assert_eq!(parse_store_item("gpt(3)").unwrap().count, 3);
        assert_eq!(parse_store_item("conn_rate"), Err(StoreError::MissingPeriod("conn_rate")));
        assert_eq!(parse_store_item("gpc0(3)"), Err(StoreError::NoArgument("gpc0")));
        assert_eq!(parse_store_item("gpc(0)"), Err(StoreError::BadCount));
        assert_eq!(parse_store_item("gpc(101)"), Err(StoreError::BadCount));
        assert_eq!(parse_store_item("gpc"), Err(StoreError::MissingCount("gpc")));
        assert_eq!(parse_store_item("gpc_rate(2)"), Err(StoreError::MissingCount("gpc_rate")));
        assert_eq!(parse_store_item("glitch_cnt"), Err(StoreError::Unknown));
        assert!(matches!(parse_store_item("conn_rate(soon)"), Err(StoreError::BadPeriod(_))));
        assert!(matches!(parse_store_item("conn_rate(0)"), Err(StoreError::BadPeriod(_))));
        assert_eq!(parse_store_item("server_key"), Err(StoreError::ServerKey));
    }

    #[test]
    fn store_list_is_sorted_and_checked() {
        let v: Vec<String> = ["http_req_cnt", "server_id", "gpc0", "conn_rate(10s)"].map(String::from).to_vec();
        assert_eq!(names(&parse_store(&v).unwrap()), ["server_id", "gpc0", "conn_rate", "http_req_cnt"]);
        let dup: Vec<String> = ["gpc0", "gpc0"].map(String::from).to_vec();
        assert_eq!(parse_store(&dup), Err((1, StoreError::Duplicate)));
        let mix: Vec<String> = ["gpc(2)", "gpt0"].map(String::from).to_vec();
        assert_eq!(parse_store(&mix), Err((1, StoreError::ArrayMix)));
        let w: Vec<Stored> = parse_store(&["conn_rate(10s)".into(), "gpc(2)".into()]).unwrap();
        assert_eq!(w.iter().map(Stored::words).sum::<usize>(), 5);
        assert_eq!(split_store("gpc0, gpc_rate(2,10s),conn_cnt"), ["gpc0", "gpc_rate(2,10s)", "conn_cnt"]);
    }
}
