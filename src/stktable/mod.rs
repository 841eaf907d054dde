//! HAProxy stick tables in full: keys of every `type`, `size`, `expire`, `nopurge`, and every
//! data type of `store` (counters, `*_rate(P)` sliding-window rates with HAProxy's exact
//! arithmetic from [`crate::peers::freq`], `gpt0`/`gpc0`/`gpc1`, the `gpc(N)`/`gpt(N)`/
//! `gpc_rate(N,P)` arrays, `server_id`/`server_key`). Pure: time is an argument (`now`, ms on
//! the caller's monotonic clock), so unit tests drive expiry and rates.
//!
//! ```text
//! def::TableDef ──► table::Table ──touch(key, now)──► EntryMut (inc_http_req, conn_cur_inc, inc_gpc, ...)
//!                              └──get(key, now)─────► EntryView (read(Stored), server_id, ...)
//! cli: `show|clear|set table` arguments and HAProxy's output, over a Table
//! registry: the live tables by name, kept across reloads while their definition is unchanged
//! ```

pub mod cli;
pub mod def;
pub mod handover;
pub mod key;
pub mod registry;
pub mod table;
pub mod track;
pub mod wake;
pub mod wire;

pub use def::{KeyKind, Stored, TableDef};
pub use key::TKey;
pub use registry::{Now, Registry, SharedTable};
pub use table::{EntryMut, EntryView, Table};
