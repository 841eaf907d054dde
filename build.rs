//! Two facts the build records:
//! - when lbha was built (`LBHA_BUILD_DATE`, RFC 3339 UTC) for the API's `/v2/info`;
//!   `SOURCE_DATE_EPOCH` (reproducible builds) wins over the clock;
//! - whether the build runs as root: without root the network-namespace tests (`netns-tests/`) are
//!   marked ignored with the reason "needs root", because libtest cannot report a test as skipped
//!   at run time and a skipped test must not be reported as passed. `sudo cargo test` changes
//!   `USER`, which reruns this.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netns_needs_root)");
    // A change to the library's sources is a new build date (they rebuild the library anyway);
    // editing a test does not, so it recompiles only that test.
    for path in ["build.rs", "Cargo.toml", "src"] {
        println!("cargo::rerun-if-changed={path}");
    }
    for var in ["USER", "SUDO_UID", "SOURCE_DATE_EPOCH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // The effective uid is the second number of the `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        println!("cargo::rustc-cfg=netns_needs_root");
    }

    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or_else(SystemTime::now, |secs| UNIX_EPOCH + Duration::from_secs(secs));
    println!("cargo::rustc-env=LBHA_BUILD_DATE={}", humantime::format_rfc3339_seconds(when));
}
