//! lbha: a high-availability load balancer. See ARCHITECTURE in the repository's shared notes for
//! the module map; pure logic (`config`, `routing`, `balance`, `health` state machines) does no I/O.

pub mod api;
pub mod balance;
pub mod cache;
pub mod cli;
pub mod config;
pub mod control;
pub mod convert;
pub mod daemon;
pub mod fsutil;
pub mod health;
pub mod log;
pub mod net;
pub mod peers;
pub mod persist;
pub mod proxy;
pub mod routing;
pub mod sample;
pub mod state;
pub mod stats;
pub mod tls;
pub mod vrrp;
