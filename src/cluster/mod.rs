//! Config sync between the two nodes of a pair (`[cluster]`): `shared` (the shared part of a
//! config, its hash, merge and diff) and `decide` (versions and the decision on an offer) are
//! pure; `wire` (authenticated messages over mutual TLS), `link` (a connection held open to the
//! peer for a resigning master's hand-off) and `crate::daemon::cluster` (listener, client, hooks,
//! catch-up) do the I/O.

pub mod decide;
pub mod link;
pub mod runtime;
pub mod shared;
pub mod wire;

/// Runs a runtime change line through the node's sync path (the Data Plane API's runtime
/// endpoints use it, as the control socket does); an error says whether it was a conflict.
pub type RuntimeHook = std::sync::Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), (bool, String)>> + Send>>
        + Send
        + Sync,
>;

/// How a refusal for a conflict starts, so the Data Plane API can answer it with 409.
pub const CONFLICT: &str = "cluster conflict: ";
