//! The TOML schema: what the operator writes. Plain serde types, validated into a
//! [`Snapshot`](super::snapshot::Snapshot) by [`super::validate`]. Keys follow HAProxy's keywords
//! with `_` for `-` so an operator recognises them.

use super::units::{ConfDuration, ConfSize};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub global: Global,
    pub defaults: Section,
    pub frontend: Vec<Section>,
    pub backend: Vec<Section>,
    pub listen: Vec<Section>,
    pub userlist: Vec<Userlist>,
    pub vrrp_instance: Vec<super::vrrp::InstanceDef>,
    pub vrrp_script: Vec<super::vrrp::ScriptDef>,
    pub vrrp_sync_group: Vec<super::vrrp::SyncGroupDef>,
    /// The Data Plane API server; absent means no API.
    pub api: Option<Api>,
    /// HAProxy's `cache NAME` sections (the small-object cache).
    pub cache: Vec<CacheDef>,
}

/// `cache NAME`: an in-memory store of small responses, shared by the rules that name it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CacheDef {
    pub name: String,
    /// Memory for all objects, in megabytes (HAProxy's `total-max-size`).
    pub total_max_size: Option<u64>,
    /// Largest object stored, in bytes (default: `total_max_size` / 256).
    pub max_object_size: Option<u64>,
    /// Longest an object is served, in seconds (default 60).
    pub max_age: Option<u64>,
    /// Store responses that carry `Vary` (on `Accept-Encoding`, `Referer`, `Origin`).
    pub process_vary: Option<bool>,
    /// Variants kept per URL with `process_vary` (default 10).
    pub max_secondary_entries: Option<u32>,
}

/// `compression algo|type|offload|direction`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CompressionDef {
    /// `"gzip"`, `"deflate"`, `"raw-deflate"`, `"identity"`, in order of preference.
    pub algo: Option<Vec<String>>,
    /// Content-Type prefixes to compress; absent: every type but multipart.
    #[serde(rename = "type")]
    pub type_: Option<Vec<String>>,
    /// Remove `Accept-Encoding` from requests so servers send plain bodies for lbha to compress.
    pub offload: Option<bool>,
    /// `"response"` (the only direction HAProxy 2.6 has).
    pub direction: Option<String>,
    /// Bodies of known length below this many bytes are not compressed (default 256; 0: all).
    pub minsize_res: Option<ConfSize>,
}

/// `[api]`: the HAProxy Data Plane API v2 server.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Api {
    /// `ADDR:PORT` to listen on (dataplaneapi's `--host`/`--port`).
    pub bind: String,
    /// The `[[userlist]]` whose users may call the API (dataplaneapi's `--userlist`).
    pub userlist: String,
    /// Where the API keeps its version and open transactions (default `/var/lib/lbha`).
    pub state_dir: Option<String>,
    /// Open transactions allowed at once (dataplaneapi's `--max-open-transactions`, default 20).
    pub max_open_transactions: Option<u32>,
    /// Serve the API over TLS with this PEM file (certificate chain and key), as `bind ... ssl crt`.
    pub ssl_crt: Option<String>,
    /// Plain HTTP on a non-loopback address sends passwords in clear: only when this says so.
    pub allow_insecure_http: Option<bool>,
    /// How long a client may take to send a request, head and body (dataplaneapi's
    /// `--read-timeout`, default 30s).
    pub read_timeout: Option<ConfDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Global {
    /// Process-wide limit of concurrent client connections.
    pub maxconn: Option<u32>,
    /// Worker threads; defaults to the CPUs this process may run on.
    pub nbthread: Option<usize>,
    /// Percent of random jitter added to health check intervals.
    pub spread_checks: Option<u8>,
    /// Upper bound on how long old connections may keep running after a stop or reload.
    pub hard_stop_after: Option<ConfDuration>,
    /// Syslog targets: `"127.0.0.1 local2 info"`, `"[::1]:5140 local0"`, `"/dev/log daemon notice"`.
    pub log: Vec<String>,
    /// `"rfc3164"` (default) or `"rfc5424"`.
    pub log_format: Option<String>,
    /// The operator's control socket (HAProxy's `stats socket ... mode 600 level admin`).
    pub control_socket: Option<ControlSocket>,
    /// Where runtime server state (admin state, weights) is kept across restarts (HAProxy's
    /// `server-state-file`); relative paths are taken from the config file's directory.
    pub server_state_file: Option<String>,
    /// Where lbha keeps state across restarts (runtime VIPs); relative paths are taken from the
    /// config file's directory. Default `/var/lib/lbha`.
    pub state_dir: Option<String>,
    /// HAProxy's `tune.bufsize`: a request head must fit it (less 1024 bytes kept for rewrites).
    pub tune_bufsize: Option<u32>,
    /// Run as this user (name or uid) after start-up, as HAProxy's `user`/`uid`.
    pub user: Option<String>,
    /// Run as this group (name or gid), as HAProxy's `group`/`gid`.
    pub group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ControlSocket {
    pub path: Option<String>,
    /// Permission bits in octal, as `chmod` takes them: `"600"`, `"0660"` (or the integer `600`).
    pub mode: Option<OctalText>,
    /// HAProxy's `level`: `"user"`, `"operator"` (read only) or `"admin"` (default).
    pub level: Option<String>,
}

/// `httplog = true|false` or `httplog = "clf"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HttpLogOpt {
    On(bool),
    Format(String),
}

impl HttpLogOpt {
    pub fn on(&self) -> bool {
        !matches!(self, HttpLogOpt::On(false))
    }
}

/// Octal digits written as a string or, as operators often do, as an integer.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OctalText {
    Text(String),
    Number(i64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Userlist {
    pub name: String,
    pub users: Vec<User>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub name: String,
    pub insecure_password: Option<String>,
    /// A crypt(3) hash: `$5$` (SHA-256), `$6$` (SHA-512) or bcrypt (`$2a$`, `$2b$`, `$2y$`).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum ConnMode {
    #[serde(rename = "http-keep-alive")]
    KeepAlive,
    #[serde(rename = "http-server-close")]
    ServerClose,
    #[serde(rename = "httpclose")]
    Close,
}

/// One `defaults`, `frontend`, `backend` or `listen` section. HAProxy uses one keyword table for all
/// four with per-keyword "allowed in" flags; validation applies the same rule.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Section {
    pub name: Option<String>,
    pub mode: Option<Mode>,
    pub bind: Option<Vec<BindDef>>,
    pub maxconn: Option<u32>,
    pub timeout: Option<Timeouts>,
    pub http_connection_mode: Option<ConnMode>,
    pub forwardfor: Option<bool>,
    /// `option forwardfor except NET`: clients in NET get no `X-Forwarded-For`.
    pub forwardfor_except: Option<String>,
    /// `option forwardfor header NAME`: the field's name instead of `X-Forwarded-For`.
    pub forwardfor_header: Option<String>,
    /// `option forwardfor if-none`: add it only when the request has none.
    pub forwardfor_if_none: Option<bool>,
    pub retries: Option<u32>,
    pub redispatch: Option<bool>,
    pub balance: Option<String>,
    pub hash_type: Option<String>,
    pub allbackups: Option<bool>,
    pub acl: Option<Vec<AclDef>>,
    pub use_backend: Option<Vec<UseBackend>>,
    pub default_backend: Option<String>,
    pub http_request: Option<Vec<HttpRule>>,
    pub http_response: Option<Vec<HttpRule>>,
    pub check: Option<CheckDef>,
    pub servers: Option<Vec<Server>>,
    pub stats: Option<Stats>,
    /// `"global"`: log this proxy's traffic to the `[global]` log targets (HAProxy's `log global`).
    pub log: Option<String>,
    /// `option httplog`: one line per HTTP request with timers, status, bytes and termination state;
    /// `"clf"` for `option httplog clf` (the Common Log Format line).
    pub httplog: Option<HttpLogOpt>,
    /// `option tcplog`: one line per TCP session.
    pub tcplog: Option<bool>,
    /// `option dontlognull`: no line for connections that sent nothing.
    pub dontlognull: Option<bool>,
    /// Session persistence (HAProxy's `cookie`, `stick-table`, `stick`, `appsession`).
    pub cookie: Option<CookieDef>,
    pub stick_table: Option<StickTableDef>,
    pub stick: Option<Vec<StickRuleDef>>,
    pub appsession: Option<AppSessionDef>,
    /// Least request-body rate (bytes/s) over each `timeout client` spent waiting for the client; 0: none.
    pub body_min_rate: Option<u32>,
    /// Idle server connections older than this are closed (HAProxy's `pool-purge-delay`).
    pub pool_purge_delay: Option<ConfDuration>,
    /// HAProxy's `compression` keywords.
    pub compression: Option<CompressionDef>,
}

/// `cookie NAME [insert|rewrite|prefix] [indirect] [nocache] [preserve] [httponly] [secure]
/// [domain D] [maxidle T] [maxlife T]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CookieDef {
    pub name: String,
    /// `"insert"`, `"rewrite"` or `"prefix"`; absent: only read a cookie the application sets.
    pub mode: Option<String>,
    pub indirect: bool,
    pub nocache: bool,
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domain: Option<String>,
    pub maxidle: Option<ConfDuration>,
    pub maxlife: Option<ConfDuration>,
}

/// `stick-table type ip|integer|string [len N] size N [expire T]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StickTableDef {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Longest string key kept (string tables only).
    pub len: Option<usize>,
    pub size: Option<ConfSize>,
    pub expire: Option<ConfDuration>,
}

/// One of `stick on`, `stick match`, `stick store-request`, `stick store-response`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StickRuleDef {
    pub on: Option<String>,
    #[serde(rename = "match")]
    pub match_: Option<String>,
    pub store_request: Option<String>,
    pub store_response: Option<String>,
}

/// `appsession COOKIE len N timeout T [request-learn]` (HAProxy 1.4).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AppSessionDef {
    pub cookie: String,
    pub len: Option<usize>,
    pub timeout: Option<ConfDuration>,
    pub request_learn: bool,
    /// Most sessions remembered (HAProxy 1.4 had no bound).
    pub size: Option<ConfSize>,
}

/// A `bind` entry: `"ADDR:PORT"`, or `{ name = "http", addr = "ADDR:PORT" }` when the bind needs a
/// name (HAProxy's `bind ... name http`, the key the Data Plane API uses).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BindDef {
    pub name: Option<String>,
    pub addr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BindTable {
    name: Option<String>,
    addr: String,
}

impl<'de> Deserialize<'de> for BindDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BindDef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"ADDR:PORT\" or { name, addr }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BindDef, E> {
                Ok(BindDef { name: None, addr: v.to_string() })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<BindDef, A::Error> {
                let t = BindTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(BindDef { name: t.name, addr: t.addr })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub connect: Option<ConfDuration>,
    pub client: Option<ConfDuration>,
    pub server: Option<ConfDuration>,
    pub http_request: Option<ConfDuration>,
    pub http_keep_alive: Option<ConfDuration>,
    pub tunnel: Option<ConfDuration>,
    /// How long a request may wait for a server slot (servers at `maxconn`).
    pub queue: Option<ConfDuration>,
    pub check: Option<ConfDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AclDef {
    pub name: String,
    /// HAProxy's text after the ACL name, e.g. `"path_end .php"` or `"nbsrv(static) lt 1"`.
    pub cond: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UseBackend {
    pub backend: String,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
}

/// An `http-request` / `http-response` rule: exactly one action key plus an optional condition.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpRule {
    #[serde(rename = "return")]
    pub return_: Option<ReturnAction>,
    pub deny: Option<DenyAction>,
    pub redirect: Option<RedirectAction>,
    pub set_header: Option<HeaderAction>,
    pub add_header: Option<HeaderAction>,
    pub del_header: Option<String>,
    /// `http-request cache-use NAME`: answer from the named cache when it holds the object.
    pub cache_use: Option<String>,
    /// `http-response cache-store NAME`: keep the response in the named cache.
    pub cache_store: Option<String>,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReturnAction {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DenyAction {
    pub status: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RedirectAction {
    pub location: Option<String>,
    pub prefix: Option<String>,
    pub code: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HeaderAction {
    pub name: String,
    pub value: String,
}

/// Backend-wide check settings: HAProxy's `option httpchk`, `http-check expect`, `external-check`
/// and `default-server inter/rise/fall`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CheckDef {
    /// Text of `option httpchk`: `""`, `"/uri"`, `"GET /uri"`, `"HEAD /uri HTTP/1.1"`.
    pub http: Option<String>,
    /// Extra request headers for the HTTP check, `"Name: value"`.
    pub headers: Vec<String>,
    /// `"status 200"`, `"rstatus ^2"`, `"string OK"`.
    pub expect: Option<String>,
    pub external: Option<ExternalCheckDef>,
    pub inter: Option<ConfDuration>,
    pub fastinter: Option<ConfDuration>,
    pub downinter: Option<ConfDuration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ExternalCheckDef {
    pub command: String,
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Server {
    pub name: String,
    /// `host:port`.
    pub addr: String,
    pub weight: Option<u32>,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub check: bool,
    pub inter: Option<ConfDuration>,
    pub fastinter: Option<ConfDuration>,
    pub downinter: Option<ConfDuration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    /// Health checks go to this address instead of the server's (HAProxy's `addr`).
    pub check_addr: Option<String>,
    /// Health checks go to this port instead of the server's (HAProxy's `port`).
    pub check_port: Option<u16>,
    /// Value of the backend's persistence cookie that designates this server.
    pub cookie: Option<String>,
    /// After coming up, the weight ramps from ~0 to full over this long.
    pub slowstart: Option<ConfDuration>,
    /// `"shutdown-sessions"`: close the server's open sessions when checks mark it down.
    pub on_marked_down: Option<String>,
    /// Speak TLS to this server.
    pub ssl: bool,
    /// `"required"` (default: check the chain against `ca_file` and the name) or `"none"`.
    pub verify: Option<String>,
    pub ca_file: Option<String>,
    /// Server name sent in the TLS handshake and checked in the certificate.
    pub sni: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub uri: Option<String>,
    /// `"user:password"` pairs; any of them is accepted.
    pub auth: Vec<String>,
    pub realm: Option<String>,
    pub refresh: Option<ConfDuration>,
    pub hide_version: bool,
    /// Path of the Prometheus endpoint on this listener (default `/metrics`).
    pub metrics_uri: Option<String>,
    /// `stats admin`: who may set servers READY/DRAIN/MAINT from the page, e.g. `"if LOCALHOST"`.
    pub admin: Option<String>,
}
