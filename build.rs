//! Marks the network-namespace tests (`netns-tests/`) ignored, with the reason "needs root", when
//! the build does not run as root: libtest cannot report a test as skipped at run time, and a
//! skipped test must not be reported as passed. `sudo cargo test` changes `USER`, which reruns this.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netns_needs_root)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_UID");
    // The effective uid is the second number of the `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        println!("cargo::rustc-cfg=netns_needs_root");
    }
}
