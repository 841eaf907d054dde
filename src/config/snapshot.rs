//! The validated, immutable configuration. Built once per load by [`super::validate`]; the daemon
//! swaps whole snapshots on reload, so readers never see half of an old and half of a new config.

use crate::balance::{Algorithm, Selector};
use crate::routing::{Acl, Condition};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::model::{ConnMode, Mode};

#[derive(Debug)]
pub struct Snapshot {
    pub source: PathBuf,
    pub global: GlobalSettings,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    pub userlists: Vec<Userlist>,
    pub vrrp: super::vrrp::VrrpSettings,
    pub api: Option<ApiSettings>,
    /// `cache` sections, with their stores (emptied by a reload, as in HAProxy).
    pub caches: Vec<Arc<crate::cache::Cache>>,
    /// Located warnings (`file:line:col: warning: ...`): reported, but the file is valid.
    pub warnings: Vec<String>,
}

/// The Data Plane API server's settings (`[api]`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub bind: SocketAddr,
    pub userlist: String,
    pub state_dir: PathBuf,
    pub max_open_transactions: u32,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Plain HTTP on a non-loopback address, allowed by `allow_insecure_http` (warned at start).
    pub insecure_http: bool,
    /// Bound on receiving a request, head and body.
    pub read_timeout: std::time::Duration,
}

impl Snapshot {
    pub fn backend(&self, name: &str) -> Option<(usize, &Backend)> {
        self.backends.iter().enumerate().find(|(_, b)| b.name == name)
    }
    pub fn frontend(&self, name: &str) -> Option<(usize, &Frontend)> {
        self.frontends.iter().enumerate().find(|(_, f)| f.name == name)
    }
    /// The frontend that owns a bind address (bind addresses are unique across frontends).
    pub fn frontend_for_bind(&self, addr: SocketAddr) -> Option<usize> {
        self.frontends.iter().position(|f| f.binds.iter().any(|b| b.addr == addr))
    }
}

#[derive(Debug, Clone)]
pub struct GlobalSettings {
    pub log: Vec<crate::log::LogTarget>,
    pub log_framing: crate::log::format::Framing,
    pub maxconn: u32,
    pub nbthread: Option<usize>,
    pub spread_checks: u8,
    pub hard_stop_after: Duration,
    pub control_socket: ControlSocketSettings,
    pub server_state_file: Option<PathBuf>,
    /// `[global] state_dir`, resolved: runtime VIPs live here.
    pub state_dir: PathBuf,
    /// `[global] tune_bufsize`.
    pub bufsize: usize,
    /// `[global] user` / `group`: who the daemon runs as after start-up.
    pub user: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSocketSettings {
    pub path: PathBuf,
    /// Permission bits of the socket file.
    pub mode: u32,
    /// What connections may do (HAProxy's `stats socket ... level`).
    pub level: crate::control::parse::Level,
}

#[derive(Debug, Clone)]
pub struct Userlist {
    pub name: String,
    pub users: Vec<(String, Password)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `insecure_password`: compared as is.
    Insecure(String),
    /// `password`: a crypt(3) hash (`$5$`, `$6$`, bcrypt).
    Hash(String),
}

/// `option forwardfor [except NET] [header NAME] [if-none]` of one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwardfor {
    pub except: Option<crate::routing::Net>,
    /// Set only by `header`: a backend's name wins over its frontend's, as in HAProxy.
    pub header: Option<http::HeaderName>,
    pub if_none: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub client: Duration,
    pub server: Duration,
    pub http_request: Duration,
    pub http_keep_alive: Duration,
    pub tunnel: Duration,
    pub queue: Duration,
    pub check: Option<Duration>,
}

#[derive(Debug)]
pub struct Frontend {
    pub name: String,
    pub mode: Mode,
    pub binds: Vec<Bind>,
    pub maxconn: Option<u32>,
    pub timeouts: Timeouts,
    pub conn_mode: ConnMode,
    pub forwardfor: Option<Forwardfor>,
    pub acls: Vec<Acl>,
    pub switching: Vec<SwitchRule>,
    pub default_backend: Option<usize>,
    pub http_request: Vec<HttpRule>,
    pub http_response: Vec<HttpRule>,
    pub stats: Option<StatsSettings>,
    pub log: LogMode,
    /// With `LogMode::Http`: write HAProxy's CLF line (`option httplog clf`).
    pub log_clf: bool,
    pub dontlognull: bool,
    /// Least request-body rate in bytes/s; 0 for none.
    pub body_min_rate: u32,
    pub compression: Option<Arc<crate::proxy::compress::Settings>>,
}

/// What a frontend logs to the global targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    Off,
    /// `log global` alone: one "Connect from" line per connection.
    Connect,
    Http,
    Tcp,
}

/// One `bind` line: address plus HAProxy's `ssl crt FILE`, `alpn LIST`, `proto h2` options.
#[derive(Debug, Clone)]
pub struct Bind {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Cleartext HTTP/2 with prior knowledge (`proto h2`).
    pub h2: bool,
}

/// `ssl` towards a server.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ClientConfig>,
    pub sni: rustls_pki_types::ServerName<'static>,
}

/// `use_backend NAME [if COND]`.
#[derive(Debug)]
pub struct SwitchRule {
    pub backend: usize,
    pub cond: Option<Condition>,
}

#[derive(Debug)]
pub struct HttpRule {
    pub action: HttpAction,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone)]
pub enum HttpAction {
    Return { status: StatusCode, headers: Vec<(HeaderName, HeaderValue)>, body: Bytes },
    Deny { status: StatusCode },
    Redirect { target: RedirectTarget, code: StatusCode },
    SetHeader(HeaderName, HeaderValue),
    AddHeader(HeaderName, HeaderValue),
    DelHeader(HeaderName),
    CacheUse(Arc<crate::cache::Cache>),
    CacheStore(Arc<crate::cache::Cache>),
}

#[derive(Debug, Clone)]
pub enum RedirectTarget {
    Location(String),
    /// The request's path and query are appended to the prefix.
    Prefix(String),
}

#[derive(Debug, Clone)]
pub struct StatsSettings {
    pub uri: String,
    pub auth: Vec<(String, String)>,
    pub realm: String,
    pub refresh: Option<Duration>,
    pub hide_version: bool,
    pub metrics_uri: String,
    pub admin: Option<Condition>,
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub mode: Mode,
    pub algorithm: Algorithm,
    pub selector: Selector,
    pub servers: Vec<Server>,
    pub retries: u32,
    pub redispatch: bool,
    pub timeouts: Timeouts,
    pub conn_mode: ConnMode,
    pub forwardfor: Option<Forwardfor>,
    /// Cookie and stick-table persistence; empty when the backend has none.
    pub persist: crate::persist::Spec,
    /// Idle server connections older than this are closed.
    pub pool_purge_delay: Duration,
    pub compression: Option<Arc<crate::proxy::compress::Settings>>,
    /// `http-request cache-use` and `http-response cache-store` rules of a backend section (the
    /// only http rules lbha runs in a backend).
    pub cache_rules: (Vec<HttpRule>, Vec<HttpRule>),
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub check: Option<crate::health::CheckSpec>,
    /// Persistence cookie value (`cookie` on the server line).
    pub cookie: Option<String>,
    /// Weight ramp after the server comes up; zero for none.
    pub slowstart: Duration,
    /// `on-marked-down shutdown-sessions`.
    pub shutdown_on_down: bool,
    pub tls: Option<ServerTls>,
}
