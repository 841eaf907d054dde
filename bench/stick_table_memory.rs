//! Memory of a stick table with 1 million entries: fills `persist::StickTable` the way the proxy
//! does (32-character session ids as appsession learns them, then client addresses as
//! `stick on src` learns them) and reports the resident-set growth read from /proc/self/status.
//!
//! Run: cargo bench --bench stick_table_memory

use lbha::persist::{StickKey, StickTable};
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

fn measure(what: &str, key: impl Fn(usize) -> StickKey) {
    let before = rss_kib();
    let t0 = Instant::now();
    let mut t = StickTable::new(ENTRIES, Some(Duration::from_secs(5 * 3600)), t0);
    for i in 0..ENTRIES {
        t.set(key(i), (i % 16) as u64, t0);
    }
    let filled = t0.elapsed();
    let after = rss_kib();
    let lookups = Instant::now();
    let mut hits = 0usize;
    for i in (0..ENTRIES).step_by(10) {
        hits += usize::from(t.get(&key(i), t0).is_some());
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
    let arg = std::env::args().skip(1).find(|a| a == "string" || a == "ip");
    match arg.as_deref() {
        Some("string") => {
            measure("string keys (32-char session ids)", |i| StickKey::Str(format!("{i:032x}").into_boxed_str()))
        }
        Some(_) => {
            measure("ip keys (stick on src)", |i| StickKey::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32))))
        }
        None => {
            let me = std::env::current_exe().expect("own path");
            for kind in ["string", "ip"] {
                let st = std::process::Command::new(&me).arg(kind).status().expect("run a measurement");
                assert!(st.success(), "{kind} measurement failed");
            }
        }
    }
}
