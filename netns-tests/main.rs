//! Network-namespace integration tests (root only; CI runs as root). Each test builds its own test
//! bed (`bed.rs`), runs the real `lbha` binary (and Debian's keepalived for interop) in it, prints
//! the measured times (`cargo test --test netns -- --nocapture`), and removes everything on drop.
//! Without root every test prints "skipped: needs root" and passes.

mod bed;
mod bench;
mod failover;
mod interop;
mod missing_iface;
mod modes;
mod netlink;
mod sync_group;
mod upgrade;
mod vip;
