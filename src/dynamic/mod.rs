//! Runtime servers: `add server`, `del server`, `set server ... addr`, runtime limits. Changes are
//! an [`overlay::Overlay`] on the configuration text, applied by every load, so the balancers see
//! a new server set the way they see a reload (one atomic snapshot swap) and nothing is lost
//! across a reload. The daemon side (`daemon::dynamic`) runs them; this module is pure.

pub mod keywords;
pub mod overlay;

pub use keywords::parse_add;
pub use overlay::Overlay;

/// A runtime change for the serve loop, which owns the listeners and the checkers.
pub struct Request {
    pub command: crate::control::servers_rt::RtCommand,
    pub reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// The answer: HAProxy's reply text, or why not with an HTTP-like status (404 no such object,
/// 409 conflict, 400 refused) for the Data Plane API.
pub type Outcome = Result<String, (u16, String)>;

/// Sends a runtime change to the serve loop and waits for its outcome.
pub async fn submit(proxy: &crate::proxy::Proxy, command: crate::control::servers_rt::RtCommand) -> Outcome {
    let Some(tx) = proxy.runtime.get() else {
        return Err((503, "The daemon is not ready for runtime changes.".into()));
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    if tx.send(Request { command, reply }).await.is_err() {
        return Err((503, "The daemon is stopping.".into()));
    }
    rx.await.unwrap_or_else(|_| Err((503, "The daemon stopped before the change finished.".into())))
}
