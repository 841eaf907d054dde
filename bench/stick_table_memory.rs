//! Memory of a stick table with 1 million entries: fills a `stktable::Table` the way the proxy
//! does (32-character session ids as appsession learns them, client addresses as `stick on src`
//! learns them, and client addresses with `conn_rate` and `http_req_rate` stored, as a rate limit
//! keeps them) and reports the resident-set growth read from /proc/self/status.
//!
//! Run: cargo bench --bench stick_table_memory

use lbha::stktable::def::{parse_store, with_server_key};
use lbha::stktable::{KeyKind, TKey, Table, TableDef};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const ENTRIES: usize = 1_000_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn measure(what: &str, kind: KeyKind, rates: bool, key: impl Fn(usize) -> TKey) {
    let store = if rates {
        parse_store(&["conn_rate(10s)".to_string(), "http_req_rate(10s)".to_string()]).expect("store")
    } else {
        with_server_key(Vec::new())
    };
    let def = TableDef {
        name: "t".into(),
        key: kind,
        size: ENTRIES,
        expire: Some(Duration::from_secs(5 * 3600)),
        nopurge: false,
        peers: None,
        store,
    };
    let before = rss_kib();
    let t0 = Instant::now();
    let mut t = Table::new(def);
    for i in 0..ENTRIES {
        let k = key(i);
        let Some(mut e) = t.touch(&k, 0) else { panic!("table full at {i}") };
        if rates {
            e.conn_open();
            e.inc_http_req();
        } else {
            e.set_server((i % 16) as i32 + 1, Some("server"));
        }
    }
    let filled = t0.elapsed();
    let after = rss_kib();
    let lookups = Instant::now();
    let mut hits = 0usize;
    for i in (0..ENTRIES).step_by(10) {
        hits += usize::from(t.get(&key(i), 1).is_some());
    }
    let per_lookup = lookups.elapsed() / (ENTRIES as u32 / 10);
    assert_eq!(t.len(), ENTRIES);
    assert_eq!(hits, ENTRIES / 10);
    let delta = after.saturating_sub(before);
    println!(
        "{what}: {ENTRIES} entries, RSS +{:.1} MiB ({} bytes/entry), filled in {:.2?}, lookup {:?}",
        delta as f64 / 1024.0,
        delta * 1024 / ENTRIES as u64,
        filled,
        per_lookup
    );
    drop(t);
}

/// Each measurement runs in its own process: freed memory is not always given back to the
/// system, so a second table in the same process would look cheaper than it is.
fn main() {
    let arg = std::env::args().skip(1).find(|a| ["string", "ip", "rates"].contains(&a.as_str()));
    let ip = |i: usize| IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32));
    match arg.as_deref() {
        Some("string") => {
            let kind = KeyKind::String { len: 32 };
            measure("string keys (32-char session ids)", kind, false, |i| {
                TKey::from_bytes(format!("{i:032x}").as_bytes(), kind)
            })
        }
        Some("ip") => {
            measure("ip keys (stick on src)", KeyKind::Ip, false, |i| TKey::from_ip(ip(i), KeyKind::Ip).expect("v4"))
        }
        Some(_) => measure("ip keys with conn_rate and http_req_rate", KeyKind::Ip, true, |i| {
            TKey::from_ip(ip(i), KeyKind::Ip).expect("v4")
        }),
        None => {
            let me = std::env::current_exe().expect("own path");
            for kind in ["string", "ip", "rates"] {
                let st = std::process::Command::new(&me).arg(kind).status().expect("run a measurement");
                assert!(st.success(), "{kind} measurement failed");
            }
        }
    }
}
