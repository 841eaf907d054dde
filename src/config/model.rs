//! The TOML schema: what the operator writes. Plain serde types, validated into a
//! [`Snapshot`](super::snapshot::Snapshot) by [`super::validate`]. Keys follow HAProxy's keywords
//! with `_` for `-` so an operator recognises them.

use super::units::{ConfDuration, ConfSize};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub global: Global,
    pub defaults: Section,
    pub frontend: Vec<Section>,
    pub backend: Vec<Section>,
    pub listen: Vec<Section>,
    pub userlist: Vec<Userlist>,
    /// HAProxy's `http-errors NAME` sections: named sets of `errorfile` lines for `errorfiles`.
    pub http_errors: Vec<HttpErrorsDef>,
    pub vrrp_instance: Vec<super::vrrp::InstanceDef>,
    pub vrrp_script: Vec<super::vrrp::ScriptDef>,
    pub vrrp_sync_group: Vec<super::vrrp::SyncGroupDef>,
    pub vrrp_track_file: Vec<super::vrrp::TrackFileDef>,
    pub vrrp_track_process: Vec<super::vrrp::TrackProcessDef>,
    /// keepalived's `static_ipaddress` / `static_routes` / `static_rules` (see `config::vrrp`).
    pub static_ipaddress: Vec<String>,
    pub static_routes: Vec<String>,
    pub static_rules: Vec<String>,
    /// VIPs announced to the router through FRR (`[[announce]]`).
    pub announce: Vec<super::announce::AnnounceDef>,
    /// The Data Plane API server; absent means no API.
    pub api: Option<Api>,
    /// HAProxy's `cache NAME` sections (the small-object cache).
    pub cache: Vec<CacheDef>,
    /// HAProxy's `resolvers` sections: DNS servers that keep server addresses current.
    pub resolvers: Vec<super::resolvers::ResolversDef>,
    /// HAProxy's `peers` sections: who replicates the stick tables that name them.
    pub peers: Vec<PeersDef>,
    /// Config sync between the two nodes of a pair (`crate::cluster`).
    pub cluster: Option<super::cluster::ClusterDef>,
    /// The web console (`crate::console`); absent means none.
    pub console: Option<super::console::ConsoleDef>,
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

/// `peers NAME` with `peer NAME ADDR:PORT` lines, or 2.x's `bind ADDR:PORT` plus
/// `server NAME [ADDR:PORT]` (the local peer's server line has no address). Lines take HAProxy's
/// TLS words after the address (`ssl verify required ca-file F crt F ...`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PeersDef {
    pub name: String,
    /// `"NAME ADDR:PORT [server words]"`; the local peer's line gives the address it listens on.
    pub peer: Vec<String>,
    /// `"ADDR:PORT [bind words]"` the local peer listens on (2.x form, with `server`).
    pub bind: Option<String>,
    /// `"NAME ADDR:PORT [server words]"`, or `"NAME [server words]"` for the local peer (2.x form).
    pub server: Vec<String>,
    /// HAProxy's `default-bind`: bind words of the listener (`"ssl crt F ca-file F verify required"`).
    pub default_bind: Option<String>,
    /// HAProxy's `default-server`: server words every peer line starts from.
    pub default_server: Option<String>,
    /// 2.x's `table NAME type ... size ...` lines: tables named `SECTION/NAME`, replicated here.
    pub table: Vec<PeersTableDef>,
}

/// `table NAME type ... [len N] size N [expire T] [nopurge] [store ...]` in a `peers` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PeersTableDef {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub len: Option<usize>,
    pub size: Option<ConfSize>,
    pub expire: Option<ConfDuration>,
    pub nopurge: bool,
    pub store: Option<Vec<String>>,
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
    /// `track_proxy`'s watchdog: a proxy runtime thread awake in one poll this long is stalled.
    pub proxy_stall_threshold: Option<ConfDuration>,
    /// Syslog targets: `"127.0.0.1 local2 info"`, `"[::1]:5140 local0"`, `"/dev/log daemon notice"`.
    pub log: Vec<String>,
    /// `"rfc3164"` (default) or `"rfc5424"`.
    pub log_format: Option<String>,
    /// `log-tag`: the program name in syslog lines (default "lbha").
    pub log_tag: Option<String>,
    /// `log-send-hostname [NAME]`: `true` for this host's name, or a name.
    pub log_send_hostname: Option<HttpLogOpt>,
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
    /// `maxconnrate`: connections accepted per second, all listeners together (0: no limit).
    pub maxconnrate: Option<u32>,
    /// `maxsessrate`: sessions per second, all listeners together (0: no limit).
    pub maxsessrate: Option<u32>,
    /// `maxsslrate`: connections accepted per second on binds that terminate TLS (0: no limit).
    pub maxsslrate: Option<u32>,
    /// Run as this user (name or uid) after start-up, as HAProxy's `user`/`uid`.
    pub user: Option<String>,
    /// Run as this group (name or gid), as HAProxy's `group`/`gid`.
    pub group: Option<String>,
    /// This node's name in `peers` sections (HAProxy's `localpeer` / `-L`); default: the hostname.
    pub localpeer: Option<String>,
    /// Defaults for every `ssl` bind (HAProxy's `ssl-default-bind-*`); a bind's own options win.
    pub ssl_default_bind_ciphers: Option<String>,
    pub ssl_default_bind_ciphersuites: Option<String>,
    pub ssl_default_bind_curves: Option<String>,
    /// Option words: `"ssl-min-ver TLSv1.2 no-tls-tickets"`.
    pub ssl_default_bind_options: Option<String>,
    /// Defaults for every `ssl` server (HAProxy's `ssl-default-server-*`).
    pub ssl_default_server_ciphers: Option<String>,
    pub ssl_default_server_ciphersuites: Option<String>,
    pub ssl_default_server_options: Option<String>,
    /// HAProxy's `ssl-server-verify`: `"none"` makes servers without their own `verify` unverified.
    pub ssl_server_verify: Option<String>,
    /// HAProxy's `ca-base`/`crt-base`: relative `ca-file`/`crl-file` and `crt`/`crt-list` paths
    /// (and those inside a `crt-list`) are taken from here; relative bases from the config's directory.
    pub ca_base: Option<String>,
    pub crt_base: Option<String>,
    /// keepalived's `script_user USER [GROUP]`: who runs VRRP scripts (see `config::vrrp`).
    pub script_user: Option<String>,
    /// keepalived's `enable_script_security`.
    pub enable_script_security: bool,
    /// keepalived's e-mail alert settings (see `config::vrrp`): `router_id` names this node in
    /// the subject; `smtp_server` is `"ADDR [PORT]"`.
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<String>,
    pub smtp_helo_name: Option<String>,
    pub smtp_connect_timeout: Option<ConfDuration>,
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ControlSocket {
    pub path: Option<String>,
    /// Permission bits in octal, as `chmod` takes them: `"600"`, `"0660"` (or the integer `600`).
    pub mode: Option<OctalText>,
    /// HAProxy's `level`: `"user"`, `"operator"` (read only) or `"admin"` (default).
    pub level: Option<String>,
    /// HAProxy's `stats timeout`: an idle connection is closed after this long (default 60s).
    pub timeout: Option<ConfDuration>,
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
    /// `group NAME [users A,B]`: what `http_auth_group` ACLs test.
    pub groups: Vec<Group>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub users: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub name: String,
    pub insecure_password: Option<String>,
    /// A crypt(3) hash: `$5$` (SHA-256), `$6$` (SHA-512) or bcrypt (`$2a$`, `$2b$`, `$2y$`).
    pub password: Option<String>,
    /// Groups (declared in the userlist's `groups`) the user belongs to, besides the groups
    /// that list the user.
    pub groups: Vec<String>,
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
    /// HAProxy's `id N`: the proxy's number (`fe_id`, `be_id`, the stats `iid`); without it,
    /// HAProxy's automatic numbering.
    pub id: Option<u32>,
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
    /// `option abortonclose`: a request still queued or connecting is dropped once its client closes.
    pub abortonclose: Option<bool>,
    /// `rate-limit sessions`: new sessions per second on the frontend (0: no limit).
    pub rate_limit_sessions: Option<u32>,
    /// `option clitcpka` (or `tcpka`): `SO_KEEPALIVE` on client connections.
    pub clitcpka: Option<bool>,
    /// `option socket-stats`: a stats row per `bind` (HAProxy's listener rows).
    pub socket_stats: Option<bool>,
    /// `option srvtcpka` (or `tcpka`): `SO_KEEPALIVE` on server connections.
    pub srvtcpka: Option<bool>,
    /// `source ADDR[:PORT]`: local address of connections to this section's servers.
    pub source: Option<String>,
    pub acl: Option<Vec<AclDef>>,
    pub use_backend: Option<Vec<UseBackend>>,
    pub default_backend: Option<String>,
    pub http_request: Option<Vec<HttpRule>>,
    pub http_response: Option<Vec<HttpRule>>,
    /// `http-after-response` rules: run last, on every response, lbha's own included.
    pub http_after_response: Option<Vec<HttpRule>>,
    /// `option http-buffer-request`: wait for the whole body before the rules (`req.body`).
    pub http_buffer_request: Option<bool>,
    /// `monitor-uri`: lbha answers 200 itself on this path (503 when `monitor_fail` holds).
    pub monitor_uri: Option<String>,
    /// `monitor fail if|unless COND`, written as `"if COND"`.
    pub monitor_fail: Option<String>,
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
    /// `option http-ignore-probes`: a connection that sends nothing is closed unanswered, unlogged.
    pub http_ignore_probes: Option<bool>,
    /// Session persistence (HAProxy's `cookie`, `stick-table`, `stick`, `appsession`).
    pub cookie: Option<CookieDef>,
    /// `dynamic-cookie-key`: the secret of `cookie ... dynamic`.
    pub dynamic_cookie_key: Option<String>,
    pub stick_table: Option<StickTableDef>,
    pub stick: Option<Vec<StickRuleDef>>,
    pub appsession: Option<AppSessionDef>,
    /// `persist rdp-cookie[(NAME)]`: `"rdp-cookie"` or `"rdp-cookie(NAME)"`.
    pub persist: Option<String>,
    /// `option persist`: a persistence cookie or stick entry naming a DOWN server still sends
    /// the request there (`redispatch` then moves it once the connect fails).
    pub option_persist: Option<bool>,
    /// `use-server SERVER if|unless COND`, in order.
    pub use_server: Option<Vec<UseServerDef>>,
    /// `force-persist` and `ignore-persist` rules, in order (one list: the first that holds wins).
    pub persist_rules: Option<Vec<PersistRuleDef>>,
    /// Least request-body rate (bytes/s) over each `timeout client` spent waiting for the client; 0: none.
    pub body_min_rate: Option<u32>,
    /// Idle server connections older than this are closed (HAProxy's `pool-purge-delay`).
    pub pool_purge_delay: Option<ConfDuration>,
    /// HAProxy's `compression` keywords.
    pub compression: Option<CompressionDef>,
    /// `tcp-request inspect-delay`: how long content rules may wait for the client's first bytes.
    pub tcp_request_inspect_delay: Option<ConfDuration>,
    /// `tcp-request connection|session|content ACTION [if|unless COND]`.
    pub tcp_request: Option<Vec<crate::tcprules::config::TcpRuleDef>>,
    /// `tcp-response inspect-delay`.
    pub tcp_response_inspect_delay: Option<ConfDuration>,
    /// `tcp-response content accept|reject [if|unless COND]`.
    pub tcp_response: Option<Vec<crate::tcprules::config::TcpRuleDef>>,
    /// `errorfile CODE FILE`: `{ 503 = "errors/503.http" }`, raw HTTP responses sent instead of
    /// the built-in page.
    pub errorfile: Option<std::collections::BTreeMap<String, String>>,
    /// `errorloc CODE URL` (a 302 to URL instead of the page for CODE).
    pub errorloc: Option<std::collections::BTreeMap<String, String>>,
    pub errorloc302: Option<std::collections::BTreeMap<String, String>>,
    pub errorloc303: Option<std::collections::BTreeMap<String, String>>,
    /// `errorfiles NAME [CODE...]`: the pages of an `[[http_errors]]` section.
    pub errorfiles: Option<Vec<ErrorFilesDef>>,
    /// `http-error status CODE ...`.
    pub http_error: Option<Vec<HttpErrorDef>>,
    /// `log-format`: the line written per request instead of the `httplog` one.
    pub log_format: Option<String>,
    /// `log-format-sd`: RFC 5424 structured data sent with each line.
    pub log_format_sd: Option<String>,
    /// Request capture slots in order: `{ header = "Host", len = 32 }` (`capture request header`)
    /// or `{ len = 64 }` (`declare capture request`, filled by `http-request capture ... id N`).
    pub capture_request: Option<Vec<CaptureDef>>,
    pub capture_response: Option<Vec<CaptureDef>>,
    /// `capture cookie NAME len N`: the request's and the response's cookie for `%CC`/`%CS`.
    pub capture_cookie: Option<CaptureCookieDef>,
    /// `unique-id-format` and `unique-id-header`.
    pub unique_id_format: Option<String>,
    pub unique_id_header: Option<String>,
    /// `option dontlog-normal`: log only errors.
    pub dontlog_normal: Option<bool>,
    /// `option log-separate-errors`: errors at level err instead of info.
    pub log_separate_errors: Option<bool>,
    /// `option log-health-checks`: log every check result change, not only UP/DOWN.
    pub log_health_checks: Option<bool>,
    /// `log ADDR FACILITY ...` lines of this proxy: targets besides (or, without `log =
    /// "global"`, instead of) the `[global]` ones; same syntax as `[global] log`.
    pub log_targets: Option<Vec<String>>,
    /// `log-tag`: the tag of this proxy's syslog lines, over `[global] log_tag`.
    pub log_tag: Option<String>,
    /// `retry-on`: `"conn-failure empty-response 503"` (HAProxy's keywords).
    pub retry_on: Option<String>,
    /// `http-reuse never|safe|aggressive|always`.
    pub http_reuse: Option<String>,
    /// Backend load at which servers reach their `maxconn` (HAProxy's `fullconn`).
    pub fullconn: Option<u32>,
    /// `tcp-request connection expect-proxy layer4 [if|unless COND]`: `true`, or `{ if = "COND" }`.
    pub expect_proxy: Option<ExpectProxyDef>,
}

/// One capture slot (`capture request header NAME len N` or `declare capture request len N`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureDef {
    pub header: Option<String>,
    pub len: usize,
}

/// `capture cookie NAME len N`: NAME is the start of the cookie's name (`NAME=` for exactly it).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureCookieDef {
    pub name: String,
    pub len: usize,
}

/// `http-errors NAME` with its `errorfile CODE FILE` lines.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpErrorsDef {
    pub name: String,
    pub errorfile: std::collections::BTreeMap<String, String>,
}

/// `errorfiles NAME [CODE...]`; no codes: all of the section's pages.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorFilesDef {
    pub name: String,
    pub codes: Vec<u16>,
}

/// `http-error status CODE [content-type T] [string S|file F|errorfile F|errorfiles NAME|
/// default-errorfiles] [hdr NAME VALUE]...`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpErrorDef {
    pub status: u16,
    pub content_type: Option<String>,
    pub string: Option<String>,
    pub file: Option<String>,
    pub lf_string: Option<String>,
    pub lf_file: Option<String>,
    pub errorfile: Option<String>,
    pub errorfiles: Option<String>,
    pub default_errorfiles: bool,
    /// `"Name: value"`.
    pub hdr: Vec<String>,
}

/// `expect_proxy = true` or `expect_proxy = { if = "COND" }` / `{ unless = "COND" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExpectProxyDef {
    Always(bool),
    When {
        #[serde(rename = "if")]
        if_: Option<String>,
        unless: Option<String>,
    },
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
    /// `attr "SameSite=None"`: each one appended to the inserted `Set-Cookie`, in order.
    pub attr: Vec<String>,
    /// `dynamic`: a server without `cookie` gets HAProxy's value derived from the section's
    /// `dynamic_cookie_key`, its address and port.
    pub dynamic: bool,
}

/// `stick-table type ip|ipv6|integer|string|binary [len N] size N [expire T] [nopurge] [peers P] [store ...]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StickTableDef {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Longest string key kept (string tables only).
    pub len: Option<usize>,
    pub size: Option<ConfSize>,
    pub expire: Option<ConfDuration>,
    /// When full, refuse new entries instead of evicting the oldest.
    pub nopurge: bool,
    /// The `peers` section replicating this table.
    pub peers: Option<String>,
    /// Data types kept per entry: `"gpc0"`, `"http_req_rate(10s)"`, `"gpc(2)"`, `"gpc_rate(2,10s)"`.
    pub store: Option<Vec<String>>,
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
    /// `table T`: another section's (or a peers section's) table instead of the backend's own.
    pub table: Option<String>,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
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
    /// How long `http-request tarpit` holds a request before its answer (default `connect`).
    pub tarpit: Option<ConfDuration>,
    pub check: Option<ConfDuration>,
    /// `timeout client-fin`: the client's inactivity timeout once the server's side has closed.
    pub client_fin: Option<ConfDuration>,
    /// `timeout server-fin`: the server's inactivity timeout once the client's side has closed.
    pub server_fin: Option<ConfDuration>,
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

/// `use-server SERVER if|unless COND`; `server` may be a log-format string (`%[...]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UseServerDef {
    pub server: String,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
}

/// `force-persist if|unless COND` or `ignore-persist if|unless COND`:
/// `{ action = "force-persist", if = "COND" }`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistRuleDef {
    pub action: String,
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
    pub del_header: Option<DelHeaderAction>,
    pub allow: Option<bool>,
    pub tarpit: Option<DenyAction>,
    pub auth: Option<AuthAction>,
    pub replace_header: Option<ReplaceHeaderAction>,
    pub replace_value: Option<ReplaceHeaderAction>,
    pub set_path: Option<String>,
    pub set_pathq: Option<String>,
    pub set_query: Option<String>,
    pub set_uri: Option<String>,
    pub set_method: Option<String>,
    pub replace_path: Option<ReplaceAction>,
    pub replace_pathq: Option<ReplaceAction>,
    pub replace_uri: Option<ReplaceAction>,
    pub set_var: Option<SetVarAction>,
    pub set_var_fmt: Option<SetVarFmtAction>,
    pub unset_var: Option<String>,
    pub set_status: Option<SetStatusAction>,
    pub capture: Option<CaptureAction>,
    /// `set-log-level LEVEL`: `emerg` .. `debug`, or `silent`.
    pub set_log_level: Option<String>,
    /// `use-service NAME`: only `prometheus-exporter` (lbha's metrics).
    pub use_service: Option<String>,
    pub track_sc0: Option<TrackScAction>,
    pub track_sc1: Option<TrackScAction>,
    pub track_sc2: Option<TrackScAction>,
    /// `sc-inc-gpc0(SC)`: the stick counter number.
    pub sc_inc_gpc0: Option<i64>,
    pub sc_inc_gpc1: Option<i64>,
    pub sc_inc_gpc: Option<ScGpcAction>,
    pub sc_set_gpt0: Option<ScGpcAction>,
    pub sc_set_gpt: Option<ScGpcAction>,
    /// `http-request cache-use NAME`: answer from the named cache when it holds the object.
    pub cache_use: Option<String>,
    /// `http-response cache-store NAME`: keep the response in the named cache.
    pub cache_store: Option<String>,
    /// `http-request reject`: closes the connection without an answer.
    pub reject: Option<bool>,
    /// `http-request silent-drop`: closes the connection so that the client is not told.
    pub silent_drop: Option<bool>,
    /// `set-src EXPR`: the client address later fetches, logs and `option forwardfor` see.
    pub set_src: Option<String>,
    pub set_src_port: Option<String>,
    pub set_dst: Option<String>,
    pub set_dst_port: Option<String>,
    /// `set-timeout server|tunnel TIME|EXPR`: this stream's own timeout.
    pub set_timeout: Option<SetTimeoutAction>,
    /// `set-map(FILE) KEY VALUE`, `del-map(FILE) KEY`, `add-acl(FILE) KEY`, `del-acl(FILE) KEY`:
    /// edit the runtime map store, as the control socket's `set map` / `del map` do.
    /// `set-mark VALUE`, `set-tos VALUE`: a number, or a string (`"0x10"`).
    pub set_mark: Option<IntOrExpr>,
    pub set_tos: Option<IntOrExpr>,
    /// `disable-l7-retry`: no layer-7 retry (`retry_on`) for this request.
    pub disable_l7_retry: Option<bool>,
    /// `wait-for-handshake`: lbha takes no TLS early data, so the handshake is always over.
    pub wait_for_handshake: Option<bool>,
    /// `strict-mode on|off`: whether a failed rewrite aborts the message (on, the default).
    pub strict_mode: Option<String>,
    /// `wait-for-body time T [at-least SIZE]`: `{ time = "1s", at_least = "1k" }`.
    pub wait_for_body: Option<WaitForBodyAction>,
    /// `do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR`: `{ var = "txn.ip", resolvers = "dns",
    /// family = "ipv4", expr = "hdr(host),lower" }`.
    pub do_resolve: Option<DoResolveAction>,
    /// `early-hint NAME FMT`: `{ name = "link", value = "</style.css>; rel=preload" }`.
    pub early_hint: Option<HeaderAction>,
    /// `normalize-uri NORMALIZER [full|strict]`, e.g. `"path-strip-dotdot full"`.
    pub normalize_uri: Option<String>,
    pub set_map: Option<MapEditAction>,
    pub del_map: Option<MapEditAction>,
    pub add_acl: Option<MapEditAction>,
    pub del_acl: Option<MapEditAction>,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
}

/// A rule's map or pattern file edit: key and value are log-format strings.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapEditAction {
    pub file: String,
    pub key: String,
    /// `set-map` only.
    pub value: Option<String>,
}

/// `do-resolve`: the name `expr` gives, resolved through the `resolvers` section, stored as an
/// address in `var`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DoResolveAction {
    pub var: String,
    pub resolvers: String,
    /// `ipv4` or `ipv6`: the family asked for first and preferred (default `ipv6`).
    pub family: Option<String>,
    pub expr: String,
}

/// `wait-for-body`: how long to wait for the request body, and how much of it is enough.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitForBodyAction {
    pub time: Option<ConfDuration>,
    pub at_least: Option<ConfSize>,
}

/// `set-timeout server|tunnel VALUE`: one of the two, a time (`5s`) or a sample expression
/// giving milliseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetTimeoutAction {
    pub server: Option<String>,
    pub tunnel: Option<String>,
}

/// `capture SAMPLE id N` (a declared slot) or, in a frontend's `http_request`, `capture SAMPLE
/// len N` (a new slot numbered after the `capture_request` ones).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureAction {
    pub sample: String,
    pub len: Option<usize>,
    pub id: Option<usize>,
}

/// `track-sc<N> KEY [table T]`: the key expression, or `{ key, table }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TrackScAction {
    Key(String),
    Full { key: String, table: Option<String> },
}

/// `sc-inc-gpc(IDX,SC)`, `sc-set-gpt0(SC) VALUE`, `sc-set-gpt(IDX,SC) VALUE`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScGpcAction {
    pub idx: Option<i64>,
    pub sc: i64,
    /// An integer or a sample expression.
    pub value: Option<IntOrExpr>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IntOrExpr {
    Int(i64),
    Expr(String),
}

/// `del-header NAME [-m str|beg|end|sub|reg]`: a name, or `{ name, match }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DelHeaderAction {
    Name(String),
    Match {
        name: String,
        #[serde(rename = "match")]
        method: Option<String>,
    },
}

/// `auth [realm R]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthAction {
    pub realm: Option<String>,
}

/// `replace-header NAME REGEX REPLACE` / `replace-value ...`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplaceHeaderAction {
    pub name: String,
    pub regex: String,
    pub replace: String,
}

/// `replace-path REGEX REPLACE` and friends.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplaceAction {
    pub regex: String,
    pub replace: String,
}

/// `set-var(VAR) EXPR`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetVarAction {
    /// `scope.name`, e.g. `txn.host`.
    pub var: String,
    /// A sample expression, e.g. `req.hdr(host),lower`.
    pub expr: String,
}

/// `set-var-fmt(VAR) FMT`: the variable takes the rendered log-format string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetVarFmtAction {
    /// `scope.name`, e.g. `txn.from`.
    pub var: String,
    /// A log-format string, e.g. `%[src]:%[src_port]`.
    pub fmt: String,
}

/// `set-status CODE [reason STR]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetStatusAction {
    pub status: u16,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReturnAction {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    /// `lf-string`: the body is a log-format string.
    pub lf_string: Option<String>,
    /// `file` / `lf-file`: the body is read from a file at load time.
    pub file: Option<String>,
    pub lf_file: Option<String>,
    pub headers: Vec<String>,
    /// `errorfile FILE` / `errorfiles NAME` / `default-errorfiles`: an error page answers.
    pub errorfile: Option<String>,
    pub errorfiles: Option<String>,
    pub default_errorfiles: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DenyAction {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// `string` / `lf-string` / `file`: the body of the answer.
    pub string: Option<String>,
    pub lf_string: Option<String>,
    pub file: Option<String>,
    pub lf_file: Option<String>,
    /// `hdr NAME FMT` lines, `Name: value`.
    pub headers: Vec<String>,
    /// `errorfile FILE` / `errorfiles NAME` / `default-errorfiles`: an error page answers.
    pub errorfile: Option<String>,
    pub errorfiles: Option<String>,
    pub default_errorfiles: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RedirectAction {
    pub location: Option<String>,
    pub prefix: Option<String>,
    pub scheme: Option<String>,
    pub code: Option<u16>,
    pub drop_query: bool,
    pub append_slash: bool,
    pub set_cookie: Option<String>,
    pub clear_cookie: Option<String>,
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
    /// `option tcp-check` with its `tcp-check` rules, one line each as HAProxy writes them after
    /// `tcp-check`: `"connect port 6379"`, `'send PING\r\n'`, `"expect string +PONG"`.
    pub tcp_check: Option<Vec<String>>,
    /// `option redis-check`.
    pub redis_check: Option<bool>,
    /// `option mysql-check`: `true`, or its arguments `"user NAME [post-41|pre-41]"`.
    pub mysql_check: Option<FlagOrText>,
    /// `option pgsql-check user NAME`: `"user NAME"`.
    pub pgsql_check: Option<String>,
    /// `option smtpchk`: `true`, or `"EHLO domain"` / `"HELO domain"`.
    pub smtpchk: Option<FlagOrText>,
    /// `option ldap-check`.
    pub ldap_check: Option<bool>,
    /// `option ssl-hello-chk`.
    pub ssl_hello_chk: Option<bool>,
    /// `http-check disable-on-404` (with `http`).
    pub disable_on_404: Option<bool>,
    /// HAProxy 2.2+'s `http-check` rules (with `http`), one line each as HAProxy writes them
    /// after `http-check`: `"connect port 8080"`, `"send meth GET uri /health hdr Host x"`,
    /// `"expect status 200"`, `"expect hdr name content-type value -m beg text/"`.
    pub http_check: Option<Vec<String>>,
    /// `http-check send-state`.
    pub send_state: Option<bool>,
}

/// `true`/`false`, or a keyword's arguments as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FlagOrText {
    Flag(bool),
    Text(String),
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ExternalCheckDef {
    pub command: String,
    pub path: Option<String>,
}

/// Also what `add server` parses its keywords into (`dynamic::keywords`), and how a runtime
/// server is saved: one list of server keywords.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
    /// `"shutdown-backup-sessions"`: when checks bring this (non-backup) server up, close the
    /// sessions of the backend's backup servers (HAProxy's `on-marked-up`).
    pub on_marked_up: Option<String>,
    /// Passive health checking: `"layer4"` (connections) or `"layer7"` (also HTTP responses),
    /// HAProxy's `observe`; needs `check`.
    pub observe: Option<String>,
    /// Consecutive errors that trigger `on_error` (default 10).
    pub error_limit: Option<u32>,
    /// `"fastinter"`, `"fail-check"` (default), `"sudden-death"` or `"mark-down"`.
    pub on_error: Option<String>,
    /// Speak TLS to this server.
    pub ssl: bool,
    /// `"required"` (default: check the chain against `ca_file` and the name) or `"none"`.
    pub verify: Option<String>,
    pub ca_file: Option<String>,
    /// Server name sent in the TLS handshake and checked in the certificate.
    pub sni: Option<String>,
    /// Client certificate and key (one PEM file) presented to the server.
    pub crt: Option<String>,
    /// ALPN offered to the server, `"h2,http/1.1"` (HAProxy's `alpn`; default `http/1.1`).
    pub alpn: Option<String>,
    /// OpenSSL cipher list for TLS 1.2 towards this server.
    pub ciphers: Option<String>,
    /// TLS 1.3 suites towards this server.
    pub ciphersuites: Option<String>,
    /// `"TLSv1.2"` or `"TLSv1.3"`.
    pub ssl_min_ver: Option<String>,
    pub ssl_max_ver: Option<String>,
    /// HAProxy's version words towards this server, as on binds (rustls has TLS 1.2 and 1.3).
    pub no_sslv3: bool,
    pub no_tlsv10: bool,
    pub no_tlsv11: bool,
    pub no_tlsv12: bool,
    pub no_tlsv13: bool,
    pub force_sslv3: bool,
    pub force_tlsv10: bool,
    pub force_tlsv11: bool,
    pub force_tlsv12: bool,
    pub force_tlsv13: bool,
    /// TLS 1.2 resumption by session id only.
    pub no_tls_tickets: bool,
    /// The name the server's certificate must carry (default: the SNI, else the address).
    pub verifyhost: Option<String>,
    /// Revoked server certificates (with `verify = "required"`).
    pub crl_file: Option<String>,
    /// PROXY protocol v1 header on every connection to this server.
    pub send_proxy: bool,
    /// PROXY protocol v2 header on every connection to this server.
    pub send_proxy_v2: bool,
    /// `"ssl,authority"`: TLVs added to the v2 header.
    pub proxy_v2_options: Option<String>,
    /// Health checks send the PROXY header too (v2 with `send_proxy_v2`, else v1).
    pub check_send_proxy: bool,
    /// Health checks over TLS (HAProxy's `check-ssl`), or plain with `false` (`no-check-ssl`).
    /// Unset, they follow `ssl` as configured when they go to the server's own address (no
    /// `check_port`/`check_addr`); `set server ssl` at runtime leaves the checks as they were.
    pub check_ssl: Option<bool>,
    /// SNI of TLS checks (HAProxy's `check-sni`; default: `sni`).
    pub check_sni: Option<String>,
    /// ALPN offered by TLS checks, `"h2,http/1.1"` (HAProxy's `check-alpn`; default: none).
    pub check_alpn: Option<String>,
    /// Ask an agent for weight and state (HAProxy's `agent-check`); needs `agent_port`.
    pub agent_check: bool,
    pub agent_port: Option<u16>,
    /// The agent's address when not the server's.
    pub agent_addr: Option<String>,
    /// Interval between agent queries (default: `inter`, else 2s).
    pub agent_inter: Option<ConfDuration>,
    /// Sent to the agent once connected (HAProxy-escaped: `\n`, `\r`).
    pub agent_send: Option<String>,
    /// HAProxy's `init-addr`: `"last,libc,none"` or an IP as the last resort (see README).
    pub init_addr: Option<String>,
    /// The `[[resolvers]]` section that keeps this server's address current (`addr` is a name).
    pub resolvers: Option<String>,
    /// `"ipv4"` or `"ipv6"` (default): the family tried first.
    pub resolve_prefer: Option<String>,
    /// Networks preferred among the answers (HAProxy's `resolve-net`), `"10.0.0.0/8,..."`.
    pub resolve_net: Option<String>,
    /// HAProxy's `resolve-opts`: `"prevent-dup-ip"` (lbha's behaviour) and `"ignore-weight"`
    /// (SRV weights leave the server's weight alone), comma separated.
    pub resolve_opts: Option<String>,
    /// HAProxy's `server-template`: this entry stands for servers `<name>1`..`<name>N`.
    pub template: Option<u32>,
    /// `"h2"`: HTTP/2 to this server (HAProxy's `proto h2`): h2c in clear, h2 with `ssl`.
    pub proto: Option<String>,
    /// Idle connections kept for this server (HAProxy's `pool-max-conn`; -1: no limit).
    pub pool_max_conn: Option<i64>,
    /// Times a server connection may be reused (HAProxy's `max-reuse`; -1: no limit).
    pub max_reuse: Option<i64>,
    /// This server's `pool_purge_delay` (default: the backend's).
    pub pool_purge_delay: Option<ConfDuration>,
    /// Requests that may wait for this server (HAProxy's `maxqueue`; 0: no limit).
    pub maxqueue: Option<u32>,
    /// Limit while the backend is idle, rising to `maxconn` at `fullconn` (HAProxy's `minconn`).
    pub minconn: Option<u32>,
    /// `"[backend/]server"`: this server's state follows that server's checks (HAProxy's `track`).
    pub track: Option<String>,
    /// The server's number in stats (`sid`), `show servers state` and `srv_id` (HAProxy's `id`):
    /// unique in the backend; by default the next unused one, from 1, in order.
    pub id: Option<u32>,
    /// GET and HEAD requests for this server get a 302 to this prefix followed by their URI,
    /// instead of being forwarded (HAProxy's `redir`, HTTP only).
    pub redir: Option<String>,
    /// Local address of connections to this server, `"ADDR[:PORT[-PORT]]"` (HAProxy's `source`;
    /// overrides the section's).
    pub source: Option<String>,
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
    /// Path of the Prometheus endpoint on this listener; none unless set (HAProxy's stats take
    /// only the stats URI, so a default would hide the application's own `/metrics`).
    pub metrics_uri: Option<String>,
    /// `stats admin`: who may set servers READY/DRAIN/MAINT from the page, e.g. `"if LOCALHOST"`.
    pub admin: Option<String>,
}
