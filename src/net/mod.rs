//! Host networking the VRRP side needs: virtual addresses over rtnetlink (`vip`), interface facts
//! (`link`) and the sysctls that let a backup bind VIP listeners (`sysctl`).
//!
//! Everything here changes or reads the network namespace of the calling thread. The daemon runs
//! it in its own namespace; tests run it only in namespaces they create.

pub mod direct;
pub mod link;
pub mod route;
pub mod sysctl;
pub mod vip;
pub mod vmac;
