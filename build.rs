//! Two facts the build records:
//! - when lbha was built (`LBHA_BUILD_DATE`, RFC 3339 UTC) for the API's `/v2/info`;
//!   `SOURCE_DATE_EPOCH` (reproducible builds) wins over the clock;
//! - whether the build runs as root: without root the network-namespace tests (`netns-tests/`) are
//!   marked ignored with the reason "needs root", because libtest cannot report a test as skipped
//!   at run time and a skipped test must not be reported as passed. `sudo cargo test` changes
//!   `USER`, which reruns this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 → (year, month, day), in the proleptic Gregorian calendar.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netns_needs_root)");
    // A rebuild of the sources is a new build date.
    for path in ["build.rs", "Cargo.toml", "src", "tests", "netns-tests"] {
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

    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64));
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    println!(
        "cargo::rustc-env=LBHA_BUILD_DATE={y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    );
}
