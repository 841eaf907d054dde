//! lbha: a high-availability load balancer. See ARCHITECTURE in the repository's shared notes for
//! the module map; pure logic (`config`, `routing`, `balance`, `health` state machines) does no I/O.

pub mod announce;
pub mod api;
pub mod balance;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod console;
pub mod control;
pub mod convert;
pub mod daemon;
pub mod dns;
pub mod dynamic;
pub mod fate;
pub mod fsutil;
pub mod health;
pub mod log;
pub mod maps;
pub mod net;
pub mod peers;
pub mod persist;
pub mod proxy;
pub mod routing;
pub mod sample;
pub mod state;
pub mod stats;
pub mod stktable;
pub mod tcprules;
pub mod tls;
pub mod vrrp;
