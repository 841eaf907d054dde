//! HAProxy Data Plane API v2, served by lbha itself: Basic auth from a userlist, versions,
//! transactions, configuration resources, runtime server state, stats and the OpenAPI document.
//!
//! Layers: `server` (HTTP plumbing) → `handlers`/`runtime` (query parameters, status codes) →
//! `store` (version, transactions, atomic commit and reload; the only I/O) → `resources` and
//! `doc` (pure operations on a `toml_edit` document of lbha.toml).

pub mod auth;
pub mod doc;
pub mod error;
pub mod handlers;
pub mod json;
pub mod resources;
pub mod router;
pub mod runtime;
pub mod runtime_add;
pub mod runtime_sync;
pub mod server;
pub mod spec;
mod stick_tables;
pub mod store;

use crate::config::snapshot::ApiSettings;
use crate::proxy::Proxy;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

pub use store::ReloadFn;

/// A reload the API asks of the daemon; the daemon answers on the sender.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<u64, String>>;

/// The API's side ([`ReloadFn`]) and the daemon's side of the reload channel.
pub fn reload_channel() -> (ReloadFn, tokio::sync::mpsc::Receiver<ReloadRequest>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
    let f: ReloadFn = Arc::new(move || {
        let tx = tx.clone();
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(reply).await.map_err(|_| "the daemon is stopping".to_string())?;
            answer.await.map_err(|_| "the daemon dropped the reload".to_string())?
        })
    });
    (f, rx)
}

/// The start-up warning for plain HTTP off loopback (`allow_insecure_http`); None otherwise.
pub fn insecure_http_warning(settings: &ApiSettings) -> Option<String> {
    settings.insecure_http.then(|| {
        format!(
            "the Data Plane API serves plain HTTP on {} (allow_insecure_http): passwords cross the network in clear",
            settings.bind
        )
    })
}

/// A running API server; dropping the handle does not stop it, `stop` does.
pub struct ApiServer {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// A second descriptor of the listening socket, so a binary upgrade can pass it on.
    socket: std::os::fd::OwnedFd,
}

impl ApiServer {
    /// Opens the state directory, binds, and starts serving. Errors name the file or address.
    pub fn start(
        settings: &ApiSettings,
        config: &Path,
        proxy: Arc<Proxy>,
        reload: ReloadFn,
    ) -> Result<ApiServer, String> {
        let std_l = crate::proxy::listener::bind(settings.bind)
            .map_err(|e| format!("cannot bind the API on {}: {e}", settings.bind))?;
        Self::start_on(settings, config, proxy, reload, std_l)
    }

    /// Like [`ApiServer::start`] on a socket already listening (handed over by a binary upgrade).
    pub fn start_on(
        settings: &ApiSettings,
        config: &Path,
        proxy: Arc<Proxy>,
        reload: ReloadFn,
        std_l: std::net::TcpListener,
    ) -> Result<ApiServer, String> {
        let store = store::Store::open(config, &settings.state_dir, settings.max_open_transactions as usize)
            .map_err(|e| format!("API state: {e}"))?;
        let socket = std_l
            .try_clone()
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| format!("cannot serve the API on {}: {e}", settings.bind))?;
        std_l.set_nonblocking(true).map_err(|e| format!("cannot serve the API on {}: {e}", settings.bind))?;
        let l = tokio::net::TcpListener::from_std(std_l)
            .map_err(|e| format!("cannot serve the API on {}: {e}", settings.bind))?;
        let state = Arc::new(server::ApiState {
            store: tokio::sync::Mutex::new(store),
            reload,
            proxy,
            userlist: settings.userlist.clone(),
            verified: auth::Verified::default(),
        });
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(l, settings.tls.clone(), settings.read_timeout, state, rx));
        tracing::info!("Data Plane API listening on {}", settings.bind);
        if let Some(w) = insecure_http_warning(settings) {
            tracing::warn!("{w}");
        }
        Ok(ApiServer { stop, task, socket })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops serving but keeps the listening socket open (connections wait in its backlog) and
    /// returns it, for the next process or to serve again.
    pub async fn stop_keep_socket(self) -> std::os::fd::OwnedFd {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.socket
    }
}
