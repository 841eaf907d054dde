//! HAProxy's peers protocol (stick-table replication), version 2.1 as HAProxy 2.6 speaks it,
//! and the sliding-window rate counters whose snapshots it carries. Pure but for [`net`]: no I/O, no clock
//! (callers pass `now`). The wire facts come from `shared/reference/peers.md` and the captures
//! next to it, against which `golden` tests every message byte for byte.
//!
//! - [`varint`]: HAProxy's encoded integers.
//! - [`handshake`]: the three-line hello and the status answer.
//! - [`codec`]: message framing, control/error/definition/switch/ack/update messages.
//! - [`entry`]: update bodies (keys, values, the server_key dictionary cache).
//! - [`datatype`]: data type ids and encodings.
//! - [`session`]: one session's state machine (handshake, acks, resync, heartbeats).
//! - [`cursor`]: which local changes a peer still needs (pushed, acked, taught).
//! - [`reconnect`]: when to connect again after a refused connect or a lost session.
//! - [`net`]: the tokio edge (listener, connectors, sessions over sockets).
//! - [`freq`]: `freq_ctr`, the per-period rate counter behind `conn_rate(P)` and friends.

pub mod codec;
pub mod cursor;
pub mod datatype;
pub mod entry;
pub mod error;
pub mod freq;
pub mod handshake;
pub mod net;
pub mod reconnect;
pub mod session;
pub mod varint;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod pcap;

pub use codec::{Ack, Control, Definition, ErrorCode, Frame, Message, Param, Update, next_frame};
pub use datatype::DataType;
pub use entry::{Dict, Entry, Key, KeyType, Rate, Shape, Value};
pub use error::{DecodeError, Disposition};
