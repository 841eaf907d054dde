//! DNS service discovery (HAProxy's `resolvers`): servers whose `addr` is a name get their
//! addresses from A/AAAA answers (SRV names: address, port and weight), and `server-template`
//! slots enter and leave rotation as records come and go. `state` is the pure part (what the
//! server set becomes given answers, holds and time), `wire` builds and reads DNS messages with
//! hickory-proto, `task` is the I/O at the edge: one task per `[[resolvers]]` section, handing
//! changes to the serve loop as runtime changes, the same path `set server addr` takes.
//! `action` resolves names for requests (`do-resolve`) with the same queries.

pub mod action;
pub mod state;
pub mod task;
pub mod template;
pub mod wire;
