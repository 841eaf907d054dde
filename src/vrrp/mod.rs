//! VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568), keepalived-compatible.
//!
//! `packet` is the wire codec (adverts, checksums, gratuitous ARP / unsolicited NA frames) and `fsm` the
//! pure per-instance state machine. Both are free of I/O and clock reads so they are tested directly;
//! sockets (`socket`), announcements (`garp`), tracking (`track`) and the per-instance task
//! (`instance`) live at the edges and carry out `fsm::Action`s. [`Manager`] runs every configured
//! instance for the daemon.

pub mod alert;
mod attach;
pub mod fsm;
pub mod garp;
pub mod instance;
mod manager;
pub mod packet;
pub mod process;
pub mod resign;
pub mod runtime;
pub mod screen;
pub mod script;
pub mod script_check;
pub mod socket;
pub mod speaker;
pub mod statics;
pub mod sync;
pub mod track;

pub use instance::{Counters, InstanceStatus, TransitionInfo};
pub use manager::{
    HandedOver, InstanceKey, InstanceReport, Manager, Successor, VipChange, VipEntry, VipSource, successors,
};

use std::sync::Arc;

/// Usable servers of a backend by name (the proxy's `nbsrv`), for `track_backend`.
pub type LiveFn = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Why VRRP could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    #[error("vrrp_instance {instance}: {source}")]
    Socket { instance: String, source: socket::SocketError },
    #[error("vrrp_instance {instance}: {source}")]
    Fsm { instance: String, source: fsm::FsmError },
    #[error("{0}")]
    Vip(crate::net::vip::VipError),
    #[error("{0}")]
    Sysctl(crate::net::sysctl::SysctlError),
    /// A script user that cannot be used, or an unsafe script under `enable_script_security`.
    #[error("{0}")]
    Script(String),
}
