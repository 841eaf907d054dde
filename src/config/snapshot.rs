//! The validated, immutable configuration. Built once per load by [`super::validate`]; the daemon
//! swaps whole snapshots on reload, so readers never see half of an old and half of a new config.

use crate::balance::{Algorithm, Selector};
use crate::routing::{Acl, Condition};
use crate::sample::{LogFormat, SampleExpr, VarRef};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use regex::bytes::Regex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::model::{ConnMode, Mode};

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub source: PathBuf,
    pub global: GlobalSettings,
    pub frontends: Arc<Vec<Frontend>>,
    pub backends: Vec<Arc<Backend>>,
    pub userlists: Vec<Userlist>,
    pub vrrp: super::vrrp::VrrpSettings,
    pub announce: super::announce::AnnounceSettings,
    pub api: Option<ApiSettings>,
    /// `[console]`: the web console; absent means none.
    pub console: Option<super::console::ConsoleSettings>,
    /// `cache` sections, with their stores (emptied by a reload, as in HAProxy).
    pub caches: Vec<Arc<crate::cache::Cache>>,
    /// Every `stick_table` of frontends, backends and listen sections, in file order.
    pub stick_tables: Vec<crate::stktable::TableDef>,
    /// `[[resolvers]]` sections.
    pub resolvers: Vec<super::resolvers::Resolvers>,
    /// `peers` sections that hold the local peer.
    pub peers: Vec<crate::peers::net::Section>,
    /// Located warnings (`file:line:col: warning: ...`): reported, but the file is valid.
    pub warnings: Vec<String>,
    /// Map and pattern files the rules use, loaded and indexed.
    pub maps: crate::maps::Loaded,
    /// `[cluster]`: config sync with the other node of the pair.
    pub cluster: Option<super::cluster::ClusterSettings>,
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
        self.backends.iter().enumerate().find(|(_, b)| b.name == name).map(|(i, b)| (i, &**b))
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
    /// `log_tag`, `log_send_hostname`.
    pub log_ident: crate::log::Ident,
    pub maxconn: u32,
    pub nbthread: Option<usize>,
    pub spread_checks: u8,
    pub hard_stop_after: Duration,
    /// `proxy_stall_threshold` (`crate::fate`).
    pub proxy_stall_threshold: Duration,
    pub control_socket: ControlSocketSettings,
    pub server_state_file: Option<PathBuf>,
    /// `[global] state_dir`, resolved: runtime VIPs live here.
    pub state_dir: PathBuf,
    /// `[global] tune_bufsize`.
    pub bufsize: usize,
    /// `maxconnrate`, `maxsessrate`, `maxsslrate` (`None`: no limit), see `proxy::rate`.
    pub maxconnrate: Option<u32>,
    pub maxsessrate: Option<u32>,
    pub maxsslrate: Option<u32>,
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
    /// A connection idle this long is closed (HAProxy's `stats timeout`).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Userlist {
    pub name: String,
    pub users: Vec<(String, Password)>,
    /// Each group with its members: the group's `users` and the users naming it.
    pub groups: Vec<(String, Vec<String>)>,
}

impl Userlist {
    pub fn in_group(&self, user: &str, group: &str) -> bool {
        self.groups.iter().any(|(g, members)| g == group && members.iter().any(|m| m == user))
    }
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
    /// `http-request tarpit` holds a request this long before answering.
    pub tarpit: Duration,
    /// `timeout client-fin`: replaces the client's idle timeout once the server has closed its
    /// side (TCP mode and tunnels); `None`: the idle timeout stays.
    pub client_fin: Option<Duration>,
    /// `timeout server-fin`: the same for the server once the client has closed its side.
    pub server_fin: Option<Duration>,
}

#[derive(Debug)]
pub struct Frontend {
    pub name: String,
    /// The proxy's number (HAProxy's `uuid`: `id N` or its automatic numbering; a listen's
    /// halves share it).
    pub id: u32,
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
    pub http_after_response: Vec<HttpRule>,
    /// `use_backend %[expr]`: the backend named by a sample, looked up per request.
    pub dyn_switching: Vec<DynSwitchRule>,
    /// `monitor-uri` and `monitor fail` (the condition turns the answer into a 503).
    pub monitor: Option<(String, Option<Condition>)>,
    pub buffer_request: bool,
    pub stats: Option<StatsSettings>,
    pub log: LogMode,
    /// With `LogMode::Http`: write HAProxy's CLF line (`option httplog clf`).
    pub log_clf: bool,
    pub dontlognull: bool,
    /// `option http-ignore-probes`: no 408 (nor 400, nor line) for a connection that sent nothing.
    pub ignore_probes: bool,
    /// `option clitcpka`: `SO_KEEPALIVE` on accepted connections (the kernel's timers).
    pub clitcpka: bool,
    /// `option socket-stats`: `show stat` and `;csv` have a row per bind (see `stats::rows`).
    pub socket_stats: bool,
    /// `rate-limit sessions` (`None`: no limit), see `proxy::rate`.
    pub rate_limit_sessions: Option<u32>,
    /// Least request-body rate in bytes/s; 0 for none.
    pub body_min_rate: u32,
    pub compression: Option<Arc<crate::proxy::compress::Settings>>,
    /// `tcp-request` rules; in mode tcp also the ACLs and `use_backend` rules.
    pub tcp: crate::tcprules::FrontRules,
    /// `errorfile`, `errorloc*`, `errorfiles`, `http-error` (with those of `defaults`).
    pub errors: crate::proxy::errpages::ErrorPages,
    /// `log_format`, captures, `unique_id_format`, `dontlog_normal`, `log_separate_errors`.
    pub logging: Arc<crate::proxy::logrec::FrontLog>,
    /// `tcp-request connection expect-proxy layer4 [if|unless COND]`.
    pub expect_proxy: Option<ExpectProxy>,
}

/// `tcp-request connection expect-proxy layer4`: a PROXY header is required from clients the
/// condition (on the real peer) matches.
#[derive(Debug)]
pub struct ExpectProxy {
    pub cond: Option<Condition>,
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
    /// The configs of `crt-list` lines with `[options]`, chosen per handshake (`None`: `tls` serves all).
    pub tls_lines: Option<Arc<crate::tls::lines::PerLine>>,
    /// Cleartext HTTP/2 with prior knowledge (`proto h2`).
    pub h2: bool,
    /// `accept-proxy`: every connection starts with a PROXY protocol header.
    pub accept_proxy: bool,
    /// `IPV6_V6ONLY` of an IPv6 bind: `v6only` (true), `v4v6` (false), or neither (`None`: the
    /// system's `net.ipv6.bindv6only`, so `[::]:P` also takes IPv4 on Linux's default, as in HAProxy).
    pub v6only: Option<bool>,
    /// `name`: the bind's label in connection error lines (else its number in the frontend).
    pub name: Option<String>,
}

/// `ssl` towards a server.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ClientConfig>,
    pub sni: rustls_pki_types::ServerName<'static>,
    /// `sni EXPR`: the SNI of each request's connection (else `sni`).
    pub sni_expr: Option<Arc<crate::sample::SampleExpr>>,
}

/// `use_backend %[expr] [if COND]`, in the order of `switching` (see `position`).
#[derive(Debug)]
pub struct DynSwitchRule {
    /// Index in `switching` before which this rule is tried.
    pub position: usize,
    pub name: LogFormat,
    pub cond: Option<Condition>,
}

/// `use_backend NAME [if COND]`.
#[derive(Debug)]
pub struct SwitchRule {
    pub backend: usize,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone)]
pub struct HttpRule {
    pub action: HttpAction,
    pub cond: Option<Condition>,
}

/// One action of `http_request`, `http_response` or `http_after_response`; the proxy runs them
/// in `proxy::rules`. Values written as log-format strings are parsed here once.
#[derive(Debug, Clone)]
pub enum HttpAction {
    Return {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    },
    Deny {
        status: StatusCode,
    },
    Redirect {
        target: RedirectTarget,
        code: StatusCode,
        opts: RedirectOpts,
    },
    SetHeader(HeaderName, LogFormat),
    AddHeader(HeaderName, LogFormat),
    DelHeader(HeaderName),
    /// `del-header NAME -m beg|end|sub|reg|str`: every header whose name matches.
    DelHeaders(NameMatch),
    /// `return`/`deny` whose body is an `lf-string`/`lf-file`, rendered per request; `deny`
    /// counts the request as denied.
    ReturnLf {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: LogFormat,
        deny: bool,
        /// `hdr NAME FMT` values with `%`, rendered per request after `headers` (left out
        /// when empty, as HAProxy does).
        lf_headers: Vec<(HeaderName, LogFormat)>,
    },
    /// `deny`/`return` with `errorfile`/`errorfiles` (`page`, resolved at load) or
    /// `default-errorfiles` (`None`: the proxy's own page for `status`, as a plain `deny`).
    ErrorPage {
        status: StatusCode,
        page: Option<Arc<crate::proxy::errpages::Reply>>,
        deny: bool,
    },
    /// Stops the evaluation of this rule list.
    Allow,
    /// `auth [realm R]`: a 401 (407 for a proxy request) asking for Basic credentials.
    Auth {
        realm: String,
    },
    /// `replace-header` (whole lines) or `replace-value` (each comma-separated value).
    ReplaceHeader {
        name: HeaderName,
        regex: Regex,
        replace: LogFormat,
        each_value: bool,
    },
    SetPath(LogFormat),
    SetPathQ(LogFormat),
    SetQuery(LogFormat),
    SetUri(LogFormat),
    SetMethod(LogFormat),
    ReplacePath {
        regex: Regex,
        replace: LogFormat,
        with_query: bool,
    },
    ReplaceUri {
        regex: Regex,
        replace: LogFormat,
    },
    SetVar {
        var: VarRef,
        expr: SampleExpr,
    },
    UnsetVar(VarRef),
    /// `set-var-fmt(VAR) FMT`: the rendered string, always a string (an empty one included).
    SetVarFmt {
        var: VarRef,
        fmt: LogFormat,
    },
    /// `capture SAMPLE id N`: fills slot `slot` of the request's (or, with `response`, the
    /// response's) captures in the log record; `len` slots were numbered at validation.
    Capture {
        expr: SampleExpr,
        slot: usize,
        response: bool,
    },
    /// `set-log-level`: the level of this request's log line, or no line (`silent`).
    SetLogLevel(crate::log::record::LevelSet),
    /// `use-service prometheus-exporter`: answers with lbha's metrics.
    Metrics,
    SetStatus {
        status: StatusCode,
        reason: Option<String>,
    },
    /// Holds the request for `timeout tarpit`, then answers `status` (500 by default).
    Tarpit {
        status: StatusCode,
    },
    /// `track-sc<N>`, `sc-inc-gpc*`, `sc-set-gpt*`.
    Stick(crate::stktable::track::StickAction),
    /// `http-request cache-use NAME`: answers from the cache when it holds the object.
    CacheUse(Arc<crate::cache::Cache>),
    /// `http-response cache-store NAME`: marks the response for storing.
    CacheStore(Arc<crate::cache::Cache>),
    /// `reject`: the connection is closed without an answer (as `tcp-request content reject`).
    Reject,
    /// `silent-drop`: the connection disappears without the client being told.
    SilentDrop,
    /// `set-src`, `set-src-port`, `set-dst`, `set-dst-port`.
    SetAddr(crate::proxy::addrs::AddrPart, SampleExpr),
    /// `normalize-uri`: the request target rewritten (a `strict` one answers 400 on a bad
    /// percent sequence).
    NormalizeUri(crate::proxy::normalize::Normalizer),
    /// `disable-l7-retry`.
    NoL7Retry,
    /// `strict-mode on|off`: `true` (HAProxy's default) makes a failed rewrite answer 500;
    /// `false` ignores it, leaving the message unchanged. For the rest of the message's rules.
    StrictMode(bool),
    /// `wait-for-handshake`: nothing to wait for, lbha accepts no TLS early data (0-RTT), so
    /// every request comes after the handshake; kept so that the rule list reads as written.
    WaitForHandshake,
    /// `wait-for-body`: the request body is read (until its end, `at_least` bytes, or a full
    /// buffer) before the next rules, so they see it in `req.body`; none within `time`: 408.
    WaitForBody {
        time: Duration,
        at_least: Option<usize>,
    },
    /// `do-resolve`: the name `expr` gives, resolved through the `resolvers` section (the
    /// request waits; see `dns::action`), its address stored in `var`; no name or no address
    /// leaves `var` as it was, and the rules go on.
    DoResolve {
        /// `None`: a name without a known scope, which HAProxy 2.6 accepts and stores the
        /// address nowhere.
        var: Option<VarRef>,
        resolvers: String,
        family: crate::dns::action::Family,
        expr: SampleExpr,
    },
    /// `early-hint NAME FMT`: a field of the `103 Early Hints` sent before the response (see
    /// `proxy::early_hints`).
    EarlyHint(HeaderName, LogFormat),
    /// `set-mark`, `set-tos` on the client's socket.
    SockOpt(crate::proxy::addrs::SockOpt),
    /// `set-timeout server|tunnel`: this stream's own value.
    SetTimeout(crate::proxy::vars::TimeoutKind, TimeoutValue),
    /// `set-map`, `del-map`, `add-acl`, `del-acl` on the runtime map store (file by its name
    /// in the store); `value` for `set-map` only.
    MapEdit {
        file: String,
        edit: MapEdit,
        key: LogFormat,
        value: Option<LogFormat>,
    },
}

/// Which edit a `MapEdit` rule makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapEdit {
    SetMap,
    DelMap,
    AddAcl,
    DelAcl,
}

/// The value of `set-timeout`: a time, or an expression giving milliseconds.
#[derive(Debug, Clone)]
pub enum TimeoutValue {
    Fixed(std::time::Duration),
    Expr(SampleExpr),
}

#[derive(Debug, Clone)]
pub enum RedirectTarget {
    /// A log-format string.
    Location(LogFormat),
    /// The request's path and query are appended to the prefix (a log-format string).
    Prefix(LogFormat),
    /// `scheme S`: the same host and path with another scheme (a log-format string).
    Scheme(LogFormat),
}

/// How `del-header -m` matches header names (lowercase patterns; `Reg` ignores case).
#[derive(Debug, Clone)]
pub enum NameMatch {
    Beg(String),
    End(String),
    Sub(String),
    Reg(Regex),
}

impl NameMatch {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Beg(p) => name.starts_with(p.as_str()),
            NameMatch::End(p) => name.ends_with(p.as_str()),
            NameMatch::Sub(p) => name.contains(p.as_str()),
            NameMatch::Reg(r) => r.is_match(name.as_bytes()),
        }
    }
}

/// `drop-query`, `append-slash`, `set-cookie NAME[=VALUE]`, `clear-cookie NAME`.
#[derive(Debug, Clone, Default)]
pub struct RedirectOpts {
    pub drop_query: bool,
    pub append_slash: bool,
    pub set_cookie: Option<String>,
    pub clear_cookie: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StatsSettings {
    pub uri: String,
    pub auth: Vec<(String, String)>,
    pub realm: String,
    pub refresh: Option<Duration>,
    pub hide_version: bool,
    /// The Prometheus endpoint, only where `metrics_uri` is set; behind `stats auth` like the page.
    pub metrics_uri: Option<String>,
    pub admin: Option<Condition>,
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    /// The proxy's number (see [`Frontend::id`]).
    pub id: u32,
    /// `id` was configured, not assigned (HAProxy's `PR_O_FORCED_ID`, `bk_f_forced_id`).
    pub id_forced: bool,
    pub mode: Mode,
    pub algorithm: Algorithm,
    pub selector: Selector,
    pub servers: Vec<Server>,
    pub retries: u32,
    pub redispatch: bool,
    /// `option persist`: persistence designates a server in any state (as `force-persist`),
    /// but a failed connect may still redispatch.
    pub option_persist: bool,
    /// `option abortonclose` (see `proxy::abort`).
    pub abortonclose: bool,
    /// `option srvtcpka`: `SO_KEEPALIVE` on connections to the servers (the kernel's timers).
    pub srvtcpka: bool,
    pub timeouts: Timeouts,
    pub conn_mode: ConnMode,
    pub forwardfor: Option<Forwardfor>,
    /// Cookie and stick-table persistence; empty when the backend has none.
    pub persist: super::persist_spec::Spec,
    /// `force-persist`, `ignore-persist` and `use-server` of a mode http backend (a mode tcp
    /// backend's are in `tcp`).
    pub server_rules: Arc<crate::persist::rules::ServerRules<Condition>>,
    /// `persist rdp-cookie[(NAME)]`: the RDP cookie (default `msts`) naming a server by address.
    pub rdp_persist: Option<String>,
    /// `balance hash EXPR`: the expression whose value is the request's key.
    pub hash_expr: Option<Arc<SampleExpr>>,
    /// Idle server connections older than this are closed.
    pub pool_purge_delay: Duration,
    pub compression: Option<Arc<crate::proxy::compress::Settings>>,
    /// `tcp-response content` rules.
    pub tcp: Arc<crate::tcprules::BackRules>,
    /// The backend's own rules, run after the frontend's (HAProxy's order), with its ACLs.
    pub acls: Vec<Acl>,
    pub http_request: Vec<HttpRule>,
    pub http_response: Vec<HttpRule>,
    pub http_after_response: Vec<HttpRule>,
    /// `stats` in a backend: its page answers the requests switched to it (not a listen's:
    /// its frontend half serves that one).
    pub stats: Option<StatsSettings>,
    /// Error pages used once this backend is chosen.
    pub errors: crate::proxy::errpages::ErrorPages,
    /// `option log-health-checks`: log each change of a server's check result.
    pub log_health_checks: bool,
    /// Where the backend's own events go (server state changes, health checks): `None`, the
    /// `[global] log` targets; `Some`, its `log_targets` (with the global ones under `log =
    /// "global"`), or nothing under `log = "none"`.
    pub log_targets: Option<Vec<crate::log::LogTarget>>,
    /// `log_tag` of the backend (or `defaults`): the tag of its lines, over the global one.
    pub log_tag: Option<String>,
    /// `retry-on`: which failures are retried (default: connection failures).
    pub retry_on: crate::proxy::retry_on::RetryOn,
    /// `http_reuse`, `fullconn`.
    pub reuse: crate::proxy::upstream::BackendOpts,
    /// The section's `source` (or `[defaults]`'s), which servers without their own take.
    pub source: Option<Arc<crate::proxy::source::Source>>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    /// Numeric id, HAProxy's `puid`: the configured `id`, else assigned at load (see `validate`).
    pub id: u32,
    /// `id` was configured, not assigned (HAProxy's `SRV_F_FORCED_ID`, `srv_f_forced_id`).
    pub id_forced: bool,
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
    /// `source`: the local address of connections to the server (its own, else the backend's).
    pub source: Option<Arc<crate::proxy::source::Source>>,
    /// `redir PREFIX`: GET and HEAD requests are answered with a 302 to PREFIX + URI.
    pub redir: Option<http::HeaderValue>,
    /// `on-marked-up shutdown-backup-sessions`.
    pub shutdown_backups_on_up: bool,
    /// `observe` with `error-limit` and `on-error`; only with checks.
    pub observe: Option<crate::health::passive::Spec>,
    /// `track [BACKEND/]SERVER`: (backend, server) whose checks set this server's state.
    pub track: Option<(String, String)>,
    pub tls: Option<ServerTls>,
    /// `send-proxy` / `send-proxy-v2` (with `proxy-v2-options`).
    pub send_proxy: Option<crate::proxy::proxy_proto::SendProxy>,
    /// `agent-check` with `agent-port`, `agent-addr`, `agent-inter`, `agent-send`.
    pub agent: Option<crate::health::agent::AgentSpec>,
    /// The check and agent targets as `show servers state` prints them (see [`StateTargets`]).
    pub state_targets: StateTargets,
    /// `init_addr` ending in `none` left it without an address: in maintenance (resolution)
    /// until `set server B/S addr` gives it one or a later load resolves its name.
    pub unresolved: bool,
    /// `check` configured on a server still `unresolved`: its checks start with its address,
    /// and it may be tracked meanwhile (as HAProxy's, whose trackers are then in maintenance).
    pub awaits_check: bool,
    /// `rise` and `fall`, set even without `check` (HAProxy keeps them, and starts the check
    /// counter at `rise`: `srv_check_health`, and an agent's "DOWN 1/5", show them).
    pub rise_fall: (u32, u32),
    /// The host name `addr` gave (`app.example:80`, a `server-template`, `set server fqdn`):
    /// HAProxy's `srv_fqdn`. None for an address, and for an SRV name (HAProxy's `srvrecord`).
    pub fqdn: Option<String>,
    /// Its address is kept current by a `[[resolvers]]` section.
    pub dns: Option<super::resolvers::ServerDns>,
    /// `proto`, `pool_max_conn`, `max_reuse`, `pool_purge_delay`, `maxqueue`, `minconn`.
    pub upstream: crate::proxy::upstream::ServerOpts,
}

/// A server's check and agent targets as HAProxy keeps them for `show servers state`: the
/// configured `port` (`check_port`, 0 without) and `addr` (`check_addr`); the agent's
/// `agent_addr`, else `addr`, and `agent_port`, else `port` (HAProxy's `addr` and `port` set the
/// agent's too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateTargets {
    pub check_port: u16,
    pub check_addr: Option<std::net::IpAddr>,
    pub agent_addr: Option<std::net::IpAddr>,
    pub agent_port: u16,
}

impl StateTargets {
    pub fn of(sv: &super::model::Server) -> StateTargets {
        let ip = |a: &Option<String>| a.as_deref().and_then(|a| a.parse().ok());
        let check_addr = ip(&sv.check_addr);
        let check_port = sv.check_port.unwrap_or(0);
        StateTargets {
            check_port,
            check_addr,
            agent_addr: ip(&sv.agent_addr).or(check_addr),
            agent_port: sv.agent_port.unwrap_or(check_port),
        }
    }
}
