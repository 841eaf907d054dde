//! The control socket's language, shared by the daemon (`daemon::control` serves it) and the
//! `lbha` CLI (a client of it): HAProxy's runtime API subset as plain text, one command per line,
//! every answer ending with an empty line, JSON on request.
//!
//! Everything here but `client` is free of I/O; `facts` reads the live state into plain values.

pub mod client;
pub mod cluster;
pub mod errors;
pub mod facts;
pub mod maps;
pub mod parse;
pub mod reply;
pub mod servers_rt;
pub mod servers_state;
pub mod sess;
pub mod sslca;
pub mod sslcert;
pub mod stat_json;
pub mod status;
pub mod vip;
pub mod vrrp;

pub use parse::{Command, ParseError, Parsed, Request, ServerRef, parse, parse_line};
pub use reply::{Reply, Session};
