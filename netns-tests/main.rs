//! Network-namespace integration tests (root only; CI runs as root). Each test builds its own test
//! bed (`bed.rs`), runs the real `lbha` binary (and Debian's keepalived for interop) in it, prints
//! the measured times (`cargo test --test netns -- --nocapture`), and removes everything on drop.
//! Built without root, every test is marked ignored ("needs root", see build.rs), so
//! `cargo test` reports them as ignored rather than passed.

mod announce;
mod bed;
mod bench;
mod cluster;
mod console;
mod failover;
mod fate;
mod interop;
mod missing_iface;
mod modes;
mod netlink;
mod peers_failover;
mod routes;
mod scaleout;
mod script_user;
mod smtp_alert;
mod sniff;
mod sync_group;
mod timeline;
mod track_file;
mod upgrade;
mod vip;
mod vmac;
mod vrrp_wire;
