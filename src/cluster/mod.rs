//! Config sync between the two nodes of a pair (`[cluster]`): `shared` (the shared part of a
//! config, its hash, merge and diff) and `decide` (versions and the decision on an offer) are
//! pure; `wire` (authenticated messages over mutual TLS) and `node` (listener, client, hooks,
//! catch-up) do the I/O.

pub mod decide;
pub mod shared;
pub mod wire;

/// How a refusal for a conflict starts, so the Data Plane API can answer it with 409.
pub const CONFLICT: &str = "cluster conflict: ";
