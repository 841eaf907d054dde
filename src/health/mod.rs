//! Health checks, HAProxy-style: one checker task per server probes it (TCP connect, HTTP
//! request, or external command), a pure rise/fall counter turns results into UP/DOWN
//! transitions, and a [`HealthSink`] carries both to the runtime state.
//!
//! ```text
//! spawn_checker ─► scheduler loop ─► probe (tcp | http | external) ─► RiseFall ─► HealthSink
//!                     ▲  interval: inter / fastinter / downinter ± spread_checks
//! ```

pub mod agent;
pub mod check_ctx;
mod conn;
mod external;
mod http;
pub mod httpseq;
pub mod passive;
mod probe;
mod risefall;
mod scheduler;
pub mod send_state;
mod seq_io;
mod slowstart;
mod spec;
pub mod status;
pub mod tcpcheck;
mod thread;
mod timing;
mod tls;
pub mod track;

pub use probe::{ProbeError, ProbeOk, Prober, ServerLoad, probe, probe_with};
pub use risefall::{HealthState, InitState, RiseFall, Transition};
pub use scheduler::{HealthSink, spawn_checker, spawn_checker_init, spawn_checker_on};
pub use slowstart::ramp_weight;
pub use spec::{
    CheckKind, CheckSpec, CheckTls, Expect, ExpectRule, ExternalCheck, HealthError, HttpCheck, HttpVersion,
};
pub use status::CheckStatus;
pub use thread::CheckThread;
pub use timing::{base_interval, initial_offset, jitter};
