//! Model → [`Snapshot`]: resolves references and defaults and collects every problem at once.

use super::error::{FieldPath, Problem};
use super::model::{self, ConfigFile, ConnMode, Mode, Section};
use super::snapshot::*;
use crate::balance::{Algorithm, HashType, Selector, ServerSpec};
use crate::health;
use crate::routing::Condition;
use http::{HeaderName, HeaderValue, StatusCode};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

mod bases;
pub(crate) mod check_tls;
mod compression;
mod errpages;
mod http_check;
mod http_rules;
mod init_addr;
mod logging;
mod passive;
mod peers;
mod peers_tls;
mod persist;
mod proxy_ids;
mod runtime_server;
mod server_ids;
mod server_rules;
mod server_side;
mod server_source;
mod server_track;
mod stktable;
mod tls_side;
mod track;
mod upstream;

pub use runtime_server::{Checked, model_server, runtime_server, with_server};
pub(crate) use server_track::runtime as runtime_track;

const DEFAULT_MAXCONN: u32 = 100_000;
const DEFAULT_HARD_STOP_AFTER: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
const DEFAULT_CLIENT: Duration = Duration::from_secs(30);
const DEFAULT_SERVER: Duration = Duration::from_secs(30);
const DEFAULT_INTER: Duration = Duration::from_secs(2);
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lbha/lbha.sock";
const DEFAULT_CONTROL_MODE: u32 = 0o600;
/// How long an idle control socket connection stays open.
const DEFAULT_CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lbha";
/// HAProxy's default `pool-purge-delay`.
const DEFAULT_POOL_PURGE_DELAY: Duration = Duration::from_secs(5);
/// Bytes/s a request body must average while lbha waits for it (see `body_min_rate` in README).
const DEFAULT_BODY_MIN_RATE: u32 = 512;

/// Keys that only mean something on the backend side, in lbha as in HAProxy (also used by the
/// haproxy.cfg converter to place settings of a `defaults` section).
pub(crate) const BACKEND_ONLY_KEYS: &[&str] = &[
    "servers",
    "retries",
    "retry_on",
    "redispatch",
    "option_persist",
    "balance",
    "hash_type",
    "allbackups",
    "abortonclose",
    "check",
    "cookie",
    "dynamic_cookie_key",
    "srvtcpka",
    "source",
    "stick_table",
    "stick",
    "appsession",
    "use_server",
    "persist_rules",
    "persist",
    "pool_purge_delay",
    "tcp_response",
    "tcp_response_inspect_delay",
    "http_reuse",
    "fullconn",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }
    /// HAProxy's per-keyword "allowed in" flags.
    fn allows(self, key: &str) -> bool {
        const FRONT_ONLY: &[&str] = &[
            "bind",
            "use_backend",
            "maxconn",
            "httplog",
            "tcplog",
            "dontlognull",
            "http_ignore_probes",
            "body_min_rate",
            "monitor_uri",
            "monitor_fail",
            "http_buffer_request",
            "expect_proxy",
            "capture_cookie",
            "clitcpka",
            "socket_stats",
            "rate_limit_sessions",
        ];
        const NAMED_ONLY: &[&str] = &["name", "id", "acl", "http_request", "http_response", "http_after_response"];
        match self {
            Kind::Listen => true,
            // Frontends hold stick tables too (for `track-sc` counters), as in HAProxy.
            Kind::Frontend => key == "stick_table" || !BACKEND_ONLY_KEYS.contains(&key),
            Kind::Backend => !FRONT_ONLY.contains(&key) && key != "default_backend",
            Kind::Defaults => {
                !NAMED_ONLY.contains(&key)
                    && ![
                        "bind",
                        "use_backend",
                        "servers",
                        "stick_table",
                        "stick",
                        "appsession",
                        "use_server",
                        "persist_rules",
                        "expect_proxy",
                        "capture_cookie",
                    ]
                    .contains(&key)
                    && !["tcp_request", "tcp_response"].contains(&key)
            }
        }
    }
}

/// Keys set in a section, for the "allowed in" check.
fn present_keys(s: &Section) -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! k {
        ($($f:ident => $n:literal),*) => { $( if s.$f.is_some() { v.push($n); } )* };
    }
    k!(name => "name", mode => "mode", bind => "bind", maxconn => "maxconn", timeout => "timeout",
       http_connection_mode => "http_connection_mode", forwardfor => "forwardfor", retries => "retries",
       redispatch => "redispatch", balance => "balance", hash_type => "hash_type", allbackups => "allbackups",
       acl => "acl", use_backend => "use_backend", default_backend => "default_backend",
       http_request => "http_request", http_response => "http_response", check => "check",
       servers => "servers", stats => "stats", log => "log", httplog => "httplog", tcplog => "tcplog",
       dontlognull => "dontlognull", cookie => "cookie", stick_table => "stick_table", stick => "stick",
       appsession => "appsession", body_min_rate => "body_min_rate", pool_purge_delay => "pool_purge_delay",
       http_after_response => "http_after_response", http_buffer_request => "http_buffer_request",
       monitor_uri => "monitor_uri", monitor_fail => "monitor_fail");
    k!(tcp_request => "tcp_request", tcp_request_inspect_delay => "tcp_request_inspect_delay",
       tcp_response => "tcp_response", tcp_response_inspect_delay => "tcp_response_inspect_delay");
    k!(log_targets => "log_targets", capture_cookie => "capture_cookie");
    k!(expect_proxy => "expect_proxy", retry_on => "retry_on");
    k!(http_ignore_probes => "http_ignore_probes");
    k!(http_reuse => "http_reuse", fullconn => "fullconn");
    k!(abortonclose => "abortonclose");
    k!(dynamic_cookie_key => "dynamic_cookie_key");
    k!(use_server => "use_server", persist_rules => "persist_rules", persist => "persist");
    k!(socket_stats => "socket_stats");
    k!(clitcpka => "clitcpka", srvtcpka => "srvtcpka", rate_limit_sessions => "rate_limit_sessions");
    k!(source => "source", id => "id", option_persist => "option_persist");
    v
}

struct Ctx<'a> {
    problems: &'a mut Vec<Problem>,
    base_dir: &'a Path,
    caches: &'a [std::sync::Arc<crate::cache::Cache>],
    /// Map and pattern files the rules name.
    maps: crate::maps::Loader,
    /// Names of the `[[resolvers]]` sections.
    resolvers: Vec<String>,
    /// Each `[[userlist]]` with its group names, for `http_auth` / `http_auth_group` ACLs.
    userlists: Vec<(String, Vec<String>)>,
    /// `ssl-default-bind-*` / `ssl-default-server-*`.
    tls_defaults: tls_side::TlsDefaults,
    /// Names of the stick tables (their sections' names), and the section being read: what
    /// stick-counter rules and fetches may name.
    tables: Vec<String>,
    owner: String,
    /// `[[http_errors]]` sections, for `deny`/`return` with `errorfiles`.
    replies: errpages::Replies,
    /// An `http_request` action is being read: its samples may not read the response.
    request_rule: bool,
}

impl Ctx<'_> {
    fn err(&mut self, path: FieldPath, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, msg));
    }
    fn err_v(&mut self, path: FieldPath, msg: impl Into<String>, value: impl std::fmt::Display) {
        self.problems.push(Problem::new(path, msg).with_value(value));
    }
    fn warn(&mut self, path: FieldPath, msg: impl Into<String>) {
        let mut p = Problem::new(path, msg);
        p.warning = true;
        self.problems.push(p);
    }
}

/// A section with where it came from, so listen sections can feed both halves.
struct Named<'a> {
    kind: Kind,
    index: usize,
    sec: &'a Section,
}

impl Named<'_> {
    fn path(&self) -> FieldPath {
        FieldPath::root().key(self.kind.table()).index(self.index)
    }
    fn name(&self) -> &str {
        self.sec.name.as_deref().unwrap_or("")
    }
}

/// `offset` gives where a section (`frontend[i]`, ...) starts in the file, for HAProxy's
/// declaration-order proxy numbering.
pub fn validate(
    file: &ConfigFile,
    base_dir: &Path,
    source: &Path,
    offset: &dyn Fn(&FieldPath) -> Option<usize>,
    problems: &mut Vec<Problem>,
) -> Option<Snapshot> {
    let start = problems.len();
    let caches = crate::cache::build(&file.cache, problems);
    let resolvers = super::resolvers::validate(
        &file.resolvers,
        || std::fs::read_to_string("/etc/resolv.conf").map_err(|e| format!("cannot read /etc/resolv.conf: {e}")),
        problems,
    );
    let mut cx = Ctx {
        problems,
        base_dir,
        maps: crate::maps::Loader::new(base_dir),
        resolvers: resolvers.iter().map(|r| r.name.clone()).collect(),
        userlists: Vec::new(),
        tls_defaults: Default::default(),
        tables: Vec::new(),
        owner: String::new(),
        caches: &caches,
        replies: Default::default(),
        request_rule: false,
    };
    cx.tls_defaults = tls_side::defaults(&file.global, &mut cx);
    let global = global(&file.global, &mut cx);
    let global = GlobalSettings {
        control_socket: control_socket(&file.global, base_dir, &mut cx),
        server_state_file: server_state_file(&file.global, base_dir, &mut cx),
        state_dir: state_dir(&file.global, base_dir, &mut cx),
        ..global
    };
    check_allowed(Kind::Defaults, &file.defaults, &FieldPath::root().key("defaults"), &mut cx);
    // Checked here once; the sections that inherit them do not report them again.
    forwardfor(&file.defaults, &Section::default(), &FieldPath::root().key("defaults"), true, &mut cx);
    compression::settings(&file.defaults, &Section::default(), &FieldPath::root().key("defaults"), true, &mut cx);
    defaults_stats(&file.defaults, &mut cx);

    let mut fronts: Vec<Named> = Vec::new();
    let mut backs: Vec<Named> = Vec::new();
    for (i, s) in file.frontend.iter().enumerate() {
        fronts.push(Named { kind: Kind::Frontend, index: i, sec: s });
    }
    for (i, s) in file.listen.iter().enumerate() {
        let n = Named { kind: Kind::Listen, index: i, sec: s };
        if s.servers.is_some() || (s.stats.is_none() && s.http_request.is_none()) {
            backs.push(Named { kind: Kind::Listen, index: i, sec: s });
        }
        fronts.push(n);
    }
    for (i, s) in file.backend.iter().enumerate() {
        backs.push(Named { kind: Kind::Backend, index: i, sec: s });
    }
    for n in fronts.iter().chain(backs.iter()) {
        check_allowed(n.kind, n.sec, &n.path(), &mut cx);
        if n.sec.name.as_deref().is_none_or(str::is_empty) {
            cx.err(n.path().key("name"), "missing name");
        }
    }
    unique_names(&fronts, "frontend or listen", &mut cx);
    unique_names(&backs, "backend or listen", &mut cx);
    cx.tables = track::table_names(&fronts, &backs);
    // `table` lines of `[[peers]]` sections, named `SECTION/NAME` as in HAProxy.
    cx.tables.extend(file.peers.iter().flat_map(|d| d.table.iter().map(move |t| format!("{}/{}", d.name, t.name))));

    let userlists = userlists(&file.userlist, &mut cx);
    cx.userlists = userlists.iter().map(|l| (l.name.clone(), l.groups.iter().map(|g| g.0.clone()).collect())).collect();
    let backend_index: HashMap<&str, usize> = backs.iter().enumerate().map(|(i, n)| (n.name(), i)).collect();
    let mut backends: Vec<Backend> = backs.iter().map(|n| backend(n, &file.defaults, &global, &mut cx)).collect();
    server_track::resolve(&mut backends, &backs, &mut cx);
    let error_sets = errpages::sections(&file.http_errors, global.bufsize, &mut cx);
    errpages::report_defaults(&file.defaults, &error_sets, global.bufsize, &mut cx);
    cx.replies = errpages::Replies { sets: error_sets.clone(), bufsize: global.bufsize };
    for (b, n) in backends.iter_mut().zip(&backs) {
        backend_rules(b, n, &file.defaults, &backend_index, &mut cx);
        // A listen's pages are reported by its frontend half.
        let before = cx.problems.len();
        b.errors = errpages::pages(n.sec, &file.defaults, &error_sets, &n.path(), global.bufsize, &mut cx);
        if n.kind == Kind::Listen {
            cx.problems.truncate(before);
        } else {
            logging::backend_warnings(n.sec, &n.path(), &mut cx);
        }
    }
    let mut seen_binds: HashMap<SocketAddr, String> = HashMap::new();
    let mut frontends: Vec<Frontend> = fronts
        .iter()
        .map(|n| frontend(n, &file.defaults, &backend_index, &backends, &mut seen_binds, &mut cx))
        .collect();
    for (f, n) in frontends.iter_mut().zip(&fronts) {
        f.errors = errpages::pages(n.sec, &file.defaults, &error_sets, &n.path(), global.bufsize, &mut cx);
    }
    upstream::default_fullconn(&frontends, &mut backends, global.maxconn);
    let cli = file.global.control_socket.is_some();
    proxy_ids::assign(&fronts, &backs, &mut frontends, &mut backends, cli, offset, &mut cx);
    let backend_names = backends.iter().map(|b| b.name.as_str()).collect();
    let mut vrrp = super::vrrp::validate(
        &file.vrrp_instance,
        &file.vrrp_script,
        &file.vrrp_sync_group,
        &backend_names,
        cx.problems,
    );
    let bind_addrs: Vec<SocketAddr> = frontends.iter().flat_map(|f| f.binds.iter().map(|b| b.addr)).collect();
    super::vrrp::default_track_proxy(&mut vrrp, &file.vrrp_instance, &bind_addrs);
    super::vrrp::track_files(&mut vrrp, &file.vrrp_track_file, &file.vrrp_instance, cx.problems);
    super::vrrp::track_processes(&mut vrrp, &file.vrrp_track_process, &file.vrrp_instance, cx.problems);
    super::vrrp::group_trackers(&mut vrrp, &file.vrrp_sync_group, &file.vrrp_track_process, cx.problems);
    super::vrrp::script_security(&mut vrrp, &file.global, cx.problems);
    super::vrrp::routes(&mut vrrp, file, cx.problems);
    super::vrrp::alerts(&mut vrrp, file, cx.problems);
    let announce = super::announce::validate(&file.announce, &backend_names, cx.problems);
    super::announce::check_user(&announce, global.user.as_deref(), cx.problems);
    let api = file.api.as_ref().and_then(|a| super::api::validate(a, &userlists, base_dir, cx.problems));
    let cluster = file.cluster.as_ref().and_then(|c| super::cluster::validate(c, base_dir, cx.problems));
    let console = file.console.as_ref().and_then(|c| super::console::validate(c, &userlists, base_dir, cx.problems));
    let mut stick_tables = stktable::tables(&fronts, &backs, &mut cx);
    stick_tables.extend(peers::tables(file, &stick_tables, &mut cx));
    persist::sticky_named_tables(&backs, &mut stick_tables);
    let peers = peers::sections(file, &fronts, &backs, &mut cx);

    let maps = std::mem::replace(&mut cx.maps, crate::maps::Loader::new(base_dir)).finish();
    if cx.problems[start..].iter().any(|p| !p.warning) {
        return None;
    }
    Some(Snapshot {
        source: source.to_path_buf(),
        global,
        frontends: std::sync::Arc::new(frontends),
        backends: backends.into_iter().map(std::sync::Arc::new).collect(),
        userlists,
        vrrp,
        announce,
        api,
        console,
        caches,
        stick_tables,
        resolvers,
        peers,
        warnings: Vec::new(),
        maps,
        cluster,
    })
}

fn check_allowed(kind: Kind, s: &Section, path: &FieldPath, cx: &mut Ctx) {
    for key in present_keys(s) {
        if !kind.allows(key) {
            cx.err(path.key(key), format!("`{key}` is not allowed in a {} section", kind.table()));
        }
    }
}

fn unique_names(list: &[Named], what: &str, cx: &mut Ctx) {
    let mut seen: HashSet<&str> = HashSet::new();
    for n in list {
        if !n.name().is_empty() && !seen.insert(n.name()) {
            cx.err_v(n.path().key("name"), format!("duplicate {what} name"), n.name());
        }
    }
}

/// HAProxy reads counts into an `int`: larger values are refused here rather than wrapped.
const MAX_COUNT: u64 = i32::MAX as u64;
/// HAProxy 2.6's MAX_THREADS.
const MAX_THREADS: u64 = 64;

/// A number outside `range` is a located error (the value is kept for the rest of validation).
fn in_range(v: Option<impl Into<u64>>, range: std::ops::RangeInclusive<u64>, path: FieldPath, cx: &mut Ctx) {
    if let Some(v) = v.map(Into::into)
        && !range.contains(&v)
    {
        cx.err_v(path, format!("must be at least {} and at most {}", range.start(), range.end()), v);
    }
}

fn global(g: &model::Global, cx: &mut Ctx) -> GlobalSettings {
    let p = FieldPath::root().key("global");
    in_range(g.nbthread.map(|n| n as u64), 1..=MAX_THREADS, p.key("nbthread"), cx);
    in_range(g.maxconn, 1..=MAX_COUNT, p.key("maxconn"), cx);
    let spread = g.spread_checks.unwrap_or(0);
    if spread > 50 {
        cx.err_v(p.key("spread_checks"), "must be between 0 and 50 (percent)", spread);
    }
    let stall = g.proxy_stall_threshold.map_or(crate::fate::STALL_THRESHOLD, |d| d.0);
    if stall < crate::fate::MIN_STALL_THRESHOLD {
        let min = crate::fate::MIN_STALL_THRESHOLD.as_millis();
        cx.err_v(
            p.key("proxy_stall_threshold"),
            format!("must be at least {min} ms"),
            format!("{} ms", stall.as_millis()),
        );
    }
    let bufsize = g.tune_bufsize.map_or(crate::proxy::framing::DEFAULT_BUFSIZE, |b| b as usize);
    if !(1024..=16 << 20).contains(&bufsize) {
        cx.err_v(p.key("tune_bufsize"), "must be between 1024 and 16777216 (bytes)", bufsize);
    }
    let mut log = Vec::new();
    for (i, l) in g.log.iter().enumerate() {
        match crate::log::LogTarget::parse(l) {
            Ok(t) => log.push(t),
            Err(e) => cx.err_v(p.key("log").index(i), e, l),
        }
    }
    let log_framing = match g.log_format.as_deref().unwrap_or("rfc3164") {
        "rfc3164" => crate::log::format::Framing::Rfc3164,
        "rfc5424" => crate::log::format::Framing::Rfc5424,
        other => {
            cx.err_v(p.key("log_format"), "must be \"rfc3164\" or \"rfc5424\"", other);
            crate::log::format::Framing::Rfc3164
        }
    };
    // HAProxy takes 0 as no limit.
    let rate = |v: Option<u32>| v.filter(|&n| n > 0);
    GlobalSettings {
        log,
        log_framing,
        log_ident: logging::ident(g),
        maxconn: g.maxconn.unwrap_or(DEFAULT_MAXCONN),
        maxconnrate: rate(g.maxconnrate),
        maxsessrate: rate(g.maxsessrate),
        maxsslrate: rate(g.maxsslrate),
        nbthread: g.nbthread,
        spread_checks: spread,
        hard_stop_after: g.hard_stop_after.map(|d| d.0).unwrap_or(DEFAULT_HARD_STOP_AFTER),
        proxy_stall_threshold: stall,
        control_socket: ControlSocketSettings {
            path: DEFAULT_CONTROL_SOCKET.into(),
            mode: DEFAULT_CONTROL_MODE,
            level: Default::default(),
            timeout: DEFAULT_CONTROL_TIMEOUT,
        },
        server_state_file: None,
        state_dir: DEFAULT_STATE_DIR.into(),
        bufsize,
        user: run_as(g.user.as_deref(), p.key("user"), cx),
        group: run_as(g.group.as_deref(), p.key("group"), cx),
    }
}

/// `user` / `group`: a name or a number; whether it exists is checked when the daemon starts.
fn run_as(v: Option<&str>, at: FieldPath, cx: &mut Ctx) -> Option<String> {
    match v {
        Some(s) if s.trim().is_empty() || s.contains(char::is_whitespace) => {
            cx.err_v(at, "must be a user or group name, or a number", s);
            None
        }
        other => other.map(str::to_string),
    }
}

/// `forwardfor` with its options. The options belong to the `forwardfor` of their own section
/// (HAProxy's are arguments of the one `option forwardfor` line): a section that sets
/// `forwardfor` takes nothing from `[defaults]`, and options without `forwardfor = true` beside
/// them are an error rather than silently unused.
fn forwardfor(s: &Section, defaults: &Section, path: &FieldPath, report: bool, cx: &mut Ctx) -> Option<Forwardfor> {
    let own = s.forwardfor.is_some();
    if s.forwardfor != Some(true) && report {
        for (key, set) in [
            ("forwardfor_except", s.forwardfor_except.is_some()),
            ("forwardfor_header", s.forwardfor_header.is_some()),
            ("forwardfor_if_none", s.forwardfor_if_none.is_some()),
        ] {
            if set {
                cx.err(path.key(key), "needs `forwardfor = true` in the same section");
            }
        }
    }
    let from = if own { s } else { defaults };
    if from.forwardfor != Some(true) {
        return None;
    }
    let report = report && own;
    let except = from.forwardfor_except.as_deref().and_then(|n| match crate::routing::Net::parse(n) {
        Ok(net) => Some(net),
        Err(e) => {
            if report {
                cx.err_v(path.key("forwardfor_except"), e.to_string(), n);
            }
            None
        }
    });
    let header = from.forwardfor_header.as_deref().and_then(|h| match http::HeaderName::from_bytes(h.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            if report {
                cx.err_v(path.key("forwardfor_header"), "not a valid header name", h);
            }
            None
        }
    });
    Some(Forwardfor { except, header, if_none: from.forwardfor_if_none.unwrap_or(false) })
}

/// Relative paths are taken from the config file's directory, so a config and its files move together.
fn resolve(base_dir: &Path, p: &str) -> std::path::PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) }
}

fn control_socket(g: &model::Global, base_dir: &Path, cx: &mut Ctx) -> ControlSocketSettings {
    let p = FieldPath::root().key("global").key("control_socket");
    let cs = g.control_socket.as_ref();
    let path = match cs.and_then(|c| c.path.as_deref()) {
        None => DEFAULT_CONTROL_SOCKET.into(),
        Some("") => {
            cx.err(p.key("path"), "must not be empty");
            DEFAULT_CONTROL_SOCKET.into()
        }
        Some(s) => resolve(base_dir, s),
    };
    let mode = match cs.and_then(|c| c.mode.as_ref()) {
        None => DEFAULT_CONTROL_MODE,
        Some(m) => {
            let text = match m {
                model::OctalText::Text(t) => t.clone(),
                model::OctalText::Number(n) => n.to_string(),
            };
            match parse_octal_mode(&text) {
                Some(v) => v,
                None => {
                    cx.err_v(p.key("mode"), "expected permission bits in octal, such as \"600\" or \"0660\"", text);
                    DEFAULT_CONTROL_MODE
                }
            }
        }
    };
    let level = match cs.and_then(|c| c.level.as_deref()) {
        None => Default::default(),
        Some(l) => crate::control::parse::Level::parse(l).unwrap_or_else(|| {
            cx.err_v(p.key("level"), "expected \"user\", \"operator\" or \"admin\"", l);
            Default::default()
        }),
    };
    let timeout = match cs.and_then(|c| c.timeout.as_ref()) {
        None => DEFAULT_CONTROL_TIMEOUT,
        Some(t) if t.0.is_zero() => {
            cx.err(p.key("timeout"), "must be more than 0");
            DEFAULT_CONTROL_TIMEOUT
        }
        Some(t) => t.0,
    };
    ControlSocketSettings { path, mode, level, timeout }
}

/// `"600"`, `"0600"` or `"0o600"`, at most `777`.
pub fn parse_octal_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t.strip_prefix("0o").unwrap_or(t);
    if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|&m| m <= 0o777)
}

fn server_state_file(g: &model::Global, base_dir: &Path, cx: &mut Ctx) -> Option<std::path::PathBuf> {
    match g.server_state_file.as_deref() {
        None => None,
        Some("") => {
            cx.err(
                FieldPath::root().key("global").key("server_state_file"),
                "must not be empty (leave the key out to keep no state file)",
            );
            None
        }
        Some(s) => Some(resolve(base_dir, s)),
    }
}

fn state_dir(g: &model::Global, base_dir: &Path, cx: &mut Ctx) -> std::path::PathBuf {
    match g.state_dir.as_deref() {
        None => DEFAULT_STATE_DIR.into(),
        Some("") => {
            cx.err(FieldPath::root().key("global").key("state_dir"), "must not be empty");
            DEFAULT_STATE_DIR.into()
        }
        Some(s) => resolve(base_dir, s),
    }
}

fn timeouts(sec: &Section, defaults: &Section) -> Timeouts {
    let pick = |f: fn(&model::Timeouts) -> Option<super::units::ConfDuration>| {
        sec.timeout.as_ref().and_then(f).or_else(|| defaults.timeout.as_ref().and_then(f)).map(|d| d.0)
    };
    let client = pick(|t| t.client).unwrap_or(DEFAULT_CLIENT);
    let server = pick(|t| t.server).unwrap_or(DEFAULT_SERVER);
    let http_request = pick(|t| t.http_request).unwrap_or(client);
    let connect = pick(|t| t.connect).unwrap_or(DEFAULT_CONNECT);
    Timeouts {
        connect,
        // HAProxy waits `timeout connect` in the queue when `timeout queue` is not set.
        queue: pick(|t| t.queue).unwrap_or(connect),
        client,
        server,
        http_request,
        http_keep_alive: pick(|t| t.http_keep_alive).unwrap_or(http_request),
        tunnel: pick(|t| t.tunnel).unwrap_or(client.max(server)),
        check: pick(|t| t.check),
        tarpit: pick(|t| t.tarpit).unwrap_or(connect),
        client_fin: pick(|t| t.client_fin),
        server_fin: pick(|t| t.server_fin),
    }
}

fn mode_of(sec: &Section, defaults: &Section) -> Mode {
    sec.mode.or(defaults.mode).unwrap_or(Mode::Tcp)
}

fn backend(n: &Named, defaults: &Section, global: &GlobalSettings, cx: &mut Ctx) -> Backend {
    let s = n.sec;
    let p = n.path();
    let algo_text = s.balance.as_deref().or(defaults.balance.as_deref()).unwrap_or("roundrobin");
    let algorithm = match Algorithm::parse(algo_text) {
        Ok(a) => a,
        Err(e) => {
            cx.err_v(p.key("balance"), e.to_string(), algo_text);
            Algorithm::RoundRobin
        }
    };
    let ht_text = s.hash_type.as_deref().or(defaults.hash_type.as_deref()).unwrap_or("map-based");
    let hash_type = match HashType::parse(ht_text) {
        Ok(h) => h,
        Err(e) => {
            cx.err_v(p.key("hash_type"), e.to_string(), ht_text);
            HashType::map_based()
        }
    };
    let timeouts = timeouts(s, defaults);
    in_range(s.retries, 0..=MAX_COUNT, p.key("retries"), cx);
    let check_def = s.check.as_ref().or(defaults.check.as_ref());
    let servers_src = s.servers.as_deref().unwrap_or(&[]);
    // A warning, not an error, as in HAProxy (it answers 503): the Data Plane API creates a
    // backend first and adds its servers one call at a time.
    if n.kind == Kind::Backend && servers_src.is_empty() && s.stats.is_none() && defaults.stats.is_none() {
        cx.warn(p.key("servers"), "a backend without servers answers every request with 503");
    }
    let mut names = HashSet::new();
    let mut servers = Vec::with_capacity(servers_src.len());
    for (i, sv) in servers_src.iter().enumerate() {
        let sp = p.key("servers").index(i);
        if sv.name.is_empty() {
            cx.err(sp.key("name"), "missing server name");
        } else if !names.insert(sv.name.as_str()) {
            cx.err_v(sp.key("name"), "duplicate server name in this backend", &sv.name);
        }
        if let Some(server) = server(sv, &sp, n.name(), mode_of(s, defaults), check_def, &timeouts, global, cx) {
            servers.push(server);
        }
    }
    let source = server_source::section(s, defaults, &p, cx);
    for (i, sv) in servers.iter_mut().enumerate() {
        server_source::inherit(sv, source.as_ref(), &p.key("servers").index(i), cx);
        server_source::to_checks(sv);
    }
    server_ids::check_unique(servers_src, &p, cx);
    server_ids::assign(&mut servers);
    let specs: Vec<ServerSpec> =
        servers.iter().map(|s| ServerSpec { weight: s.weight, backup: s.backup, maxconn: s.maxconn }).collect();
    let persist = persist::spec(s, defaults, &p, mode_of(s, defaults), servers_src, &servers, cx);
    let server_rules = server_rules::http(s, &p, mode_of(s, defaults), &servers, cx);
    let rdp_persist = server_rules::rdp_persist(s, defaults, &p, mode_of(s, defaults), cx);
    let hash_expr = match &algorithm {
        Algorithm::Hash(text) => server_rules::hash_expr(text, mode_of(s, defaults), &p.key("balance"), cx),
        _ => None,
    };
    let allbackups = s.allbackups.or(defaults.allbackups).unwrap_or(false);
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    // Consistent hashing places each server's points by its id, as HAProxy does.
    let puids: Vec<u32> = servers.iter().map(|s| s.id).collect();
    let selector = Selector::new(&algorithm, hash_type, &specs, allbackups).with_server_puids(&puids);
    let tcp = std::sync::Arc::new(crate::tcprules::config::back(
        s,
        defaults,
        &format!("{} {}", n.kind.table(), n.name()),
        mode_of(s, defaults),
        &p,
        cx.problems,
        &mut cx.maps,
        &cx.tables,
        &names,
    ));
    tcp_resolvers(&tcp.content, &p, cx);
    Backend {
        name: n.name().to_string(),
        id: 0,
        id_forced: s.id.is_some(),
        mode: mode_of(s, defaults),
        algorithm,
        selector,
        servers,
        retries: s.retries.or(defaults.retries).unwrap_or(3),
        redispatch: s.redispatch.or(defaults.redispatch).unwrap_or(false),
        option_persist: s.option_persist.or(defaults.option_persist).unwrap_or(false),
        abortonclose: s.abortonclose.or(defaults.abortonclose).unwrap_or(false),
        srvtcpka: s.srvtcpka.or(defaults.srvtcpka).unwrap_or(false),
        timeouts,
        conn_mode: s.http_connection_mode.or(defaults.http_connection_mode).unwrap_or(ConnMode::KeepAlive),
        // A listen section's options are reported by its frontend half.
        forwardfor: forwardfor(s, defaults, &p, n.kind == Kind::Backend, cx),
        persist,
        server_rules,
        rdp_persist,
        hash_expr,
        pool_purge_delay: s.pool_purge_delay.or(defaults.pool_purge_delay).map_or(DEFAULT_POOL_PURGE_DELAY, |d| d.0),
        compression: compression::settings(s, defaults, &p, n.kind == Kind::Backend, cx),
        tcp,
        acls: Vec::new(),
        stats: None,
        http_request: Vec::new(),
        http_response: Vec::new(),
        http_after_response: Vec::new(),
        errors: Default::default(),
        log_health_checks: s.log_health_checks.or(defaults.log_health_checks).unwrap_or(false),
        log_targets: logging::back(s, defaults, &p, n.kind == Kind::Backend, &global.log, cx),
        log_tag: logging::tag(s, defaults, &p, cx),
        retry_on: server_side::retry_on(s, defaults, &p, cx),
        reuse: upstream::backend(s, defaults, &p, cx),
        source,
    }
}

#[allow(clippy::too_many_arguments)]
fn server(
    sv: &model::Server,
    sp: &FieldPath,
    backend: &str,
    mode: Mode,
    check_def: Option<&model::CheckDef>,
    timeouts: &Timeouts,
    global: &GlobalSettings,
    cx: &mut Ctx,
) -> Option<Server> {
    let methods = match sv.init_addr.as_deref().map(init_addr::parse) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            cx.err_v(sp.key("init_addr"), e, sv.init_addr.as_deref().unwrap_or(""));
            None
        }
    };
    let (addr, unresolved) = match init_addr::server_addr(&sv.addr, methods.as_deref(), resolve_addr) {
        Ok((a, u)) => (Some(a), u),
        Err(e) => {
            cx.err_v(sp.key("addr"), e, &sv.addr);
            (None, false)
        }
    };
    let weight = sv.weight.unwrap_or(1);
    if weight > 256 {
        cx.err_v(sp.key("weight"), "must be between 0 and 256", weight);
    }
    in_range(sv.maxconn, 1..=MAX_COUNT, sp.key("maxconn"), cx);
    if sv.check_port == Some(0) {
        cx.err_v(sp.key("check_port"), "must be between 1 and 65535", 0);
    }
    let dns = super::resolvers::server(sv, sp, &cx.resolvers, cx.problems);
    let addr = addr?;
    let tls = server_tls(sv, sp, addr, cx);
    let send_proxy = server_side::send_proxy(sv, sp, cx);
    let rise_fall = rise_fall(sv, check_def, sp, cx);
    // Without an address, nothing to check until it gets one.
    let check = if sv.check && !unresolved {
        check_spec(sv, sp, addr, backend, (check_def, rise_fall), timeouts, global, cx).map(|c| {
            let mut c = health::CheckSpec { tls: check_tls::check_tls(sv, sp, c.addr, tls.as_ref(), cx), ..c };
            check_tls::seq_connects(sv, sp, &mut c, tls.as_ref(), cx);
            c
        })
    } else if sv.check {
        None
    } else {
        for (set, key) in [
            (sv.inter.is_some(), "inter"),
            (sv.check_port.is_some(), "check_port"),
            (sv.check_addr.is_some(), "check_addr"),
            (sv.slowstart.is_some(), "slowstart"),
            (sv.on_marked_down.is_some(), "on_marked_down"),
        ] {
            if set {
                cx.err(sp.key(key), "has no effect without `check = true`");
            }
        }
        None
    };
    let shutdown_on_down = match sv.on_marked_down.as_deref() {
        None => false,
        Some("shutdown-sessions") => true,
        Some(other) => {
            cx.err_v(sp.key("on_marked_down"), "expected \"shutdown-sessions\"", other);
            false
        }
    };
    let observe = passive::spec(sv, sp, mode, sv.check, cx);
    let source = server_source::own(sv, sp, addr, cx);
    let redir = passive::redir(sv, sp, mode, cx);
    let shutdown_backups_on_up = passive::shutdown_backups_on_up(sv, sp, cx);
    if sv.id == Some(0) {
        cx.err_v(sp.key("id"), "must be greater than 0", 0);
    }
    Some(Server {
        name: sv.name.clone(),
        // Servers without one get theirs once the backend's are all known.
        id: sv.id.unwrap_or(0),
        id_forced: sv.id.is_some_and(|id| id > 0),
        addr,
        weight: weight.min(256),
        backup: sv.backup,
        disabled: sv.disabled,
        maxconn: sv.maxconn,
        check,
        cookie: sv.cookie.clone(),
        slowstart: sv.slowstart.map_or(Duration::ZERO, |d| d.0),
        shutdown_on_down,
        shutdown_backups_on_up,
        observe,
        redir,
        source,
        track: None,
        tls,
        send_proxy,
        agent: server_side::agent(sv, sp, addr, timeouts, cx),
        state_targets: super::snapshot::StateTargets::of(sv),
        unresolved,
        awaits_check: sv.check && unresolved,
        rise_fall,
        fqdn: init_addr::host_name(&sv.addr),
        dns,
        upstream: upstream::server(sv, sp, cx),
    })
}

/// `rise` and `fall` (the server's, else the backend's checks', else HAProxy's 2 and 3), which
/// bound the check counter whether or not the server has checks; the checker counts with the
/// same pair.
fn rise_fall(sv: &model::Server, def: Option<&model::CheckDef>, sp: &FieldPath, cx: &mut Ctx) -> (u32, u32) {
    let rise = sv.rise.or(def.and_then(|d| d.rise)).unwrap_or(2);
    let fall = sv.fall.or(def.and_then(|d| d.fall)).unwrap_or(3);
    for (v, key) in [(rise, "rise"), (fall, "fall")] {
        in_range(Some(v), 1..=MAX_COUNT, sp.key(key), cx);
    }
    (rise.max(1), fall.max(1))
}

#[allow(clippy::too_many_arguments)]
fn check_spec(
    sv: &model::Server,
    sp: &FieldPath,
    addr: SocketAddr,
    backend: &str,
    (def, (rise, fall)): (Option<&model::CheckDef>, (u32, u32)),
    timeouts: &Timeouts,
    global: &GlobalSettings,
    cx: &mut Ctx,
) -> Option<health::CheckSpec> {
    let cp = || sp.key("check");
    let mut target = addr;
    if let Some(a) = &sv.check_addr {
        match a.parse() {
            Ok(ip) => target.set_ip(ip),
            Err(_) => cx.err_v(sp.key("check_addr"), "not an IP address", a),
        }
    }
    if let Some(port) = sv.check_port {
        target.set_port(port);
    }
    let inter = sv.inter.or(def.and_then(|d| d.inter)).map(|d| d.0).unwrap_or(DEFAULT_INTER);
    if inter.is_zero() {
        cx.err_v(sp.key("inter"), "must be greater than 0", "0");
    }
    let seq = def.and_then(|d| server_side::check_seq(d, &cp(), cx));
    let kind = match def {
        _ if seq.is_some() => health::CheckKind::Seq(seq?),
        Some(d) if d.external.is_some() => {
            let ext = d.external.as_ref()?;
            health::CheckKind::External(health::ExternalCheck {
                command: ext.command.clone().into(),
                path_env: ext.path.clone(),
                timeout: timeouts.check.unwrap_or(inter),
            })
        }
        Some(d) if d.http.is_some() => http_check::kind(d, &cp(), cx)?,
        _ => health::CheckKind::Tcp,
    };
    Some(health::CheckSpec {
        kind,
        addr: target,
        inter,
        fastinter: sv.fastinter.or(def.and_then(|d| d.fastinter)).map(|d| d.0).unwrap_or(inter),
        downinter: sv.downinter.or(def.and_then(|d| d.downinter)).map(|d| d.0).unwrap_or(inter),
        timeout: timeouts.check.unwrap_or(inter),
        rise,
        fall,
        spread_pct: global.spread_checks,
        backend: backend.to_string(),
        server: sv.name.clone(),
        host_header: None,
        proxy_header: server_side::check_proxy_header(sv),
        tls: None,
        // The server's final `source` (its own or its section's) is set by `server_source::to_checks`.
        source: None,
    })
}

/// `host:port`; names are resolved once, at load time, as HAProxy does.
pub fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("expected host:port".into());
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("invalid port {port:?}"));
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    match (host, port).to_socket_addrs() {
        Ok(mut it) => it.next().ok_or_else(|| format!("{host} resolves to no address")),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

/// HAProxy bind syntax: `ADDR:PORT`, `*:PORT`, `:PORT`, `[V6]:PORT`.
pub fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err("expected address:port".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "*" | "0.0.0.0" => std::net::Ipv4Addr::UNSPECIFIED.into(),
        h => h.parse().map_err(|_| format!("invalid address {h:?} (bind takes an IP address)"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A whole bind line: address then options (`ssl`, `crt FILE`, `alpn LIST`, `proto h2`).
fn parse_bind_line(
    line: &str,
    bases: &bases::Bases,
    tls_defaults: &crate::tls::policy::Policy,
    warnings: &mut Vec<String>,
) -> Result<Bind, String> {
    let mut tls_words = tls_side::BindWords::new(tls_defaults);
    let mut words = line.split_whitespace();
    let addr = parse_bind(words.next().unwrap_or(""))?;
    let (mut ssl, mut crt, mut alpn, mut h2, mut accept_proxy) = (false, None, Vec::new(), false, false);
    let (mut v4v6, mut v6only) = (false, false);
    while let Some(w) = words.next() {
        let mut arg = |what: &str| words.next().map(str::to_string).ok_or_else(|| format!("`{w}` needs {what}"));
        match w {
            "ssl" => ssl = true,
            "crt" => crt = Some(bases.crt.join(arg("a file or directory")?)),
            "alpn" => alpn = arg("a protocol list")?.split(',').map(str::to_string).collect(),
            "proto" => match arg("a protocol")?.as_str() {
                "h2" => h2 = true,
                other => return Err(format!("unsupported proto {other:?} (lbha knows h2)")),
            },
            "accept-proxy" => accept_proxy = true,
            "v4v6" => v4v6 = true,
            "v6only" => v6only = true,
            other => {
                if !tls_words.word(other, &mut || words.next().map(str::to_string), bases)? {
                    return Err(format!(
                        "unknown bind option {other:?} (ssl, crt, alpn, proto, accept-proxy, v4v6, v6only, ciphers, ciphersuites, curves, ssl-min-ver, ssl-max-ver, no-tlsv1x, ca-file, verify, crl-file)"
                    ));
                }
            }
        }
    }
    for p in &alpn {
        if p != "h2" && p != "http/1.1" {
            return Err(format!("unsupported ALPN protocol {p:?} (h2, http/1.1)"));
        }
    }
    let mut tls_lines = None;
    let tls = match (ssl, crt) {
        (true, crt) if crt.is_some() || tls_words.has_crt_list() => {
            let (cfg, lines, w) = tls_words.build(crt, alpn)?;
            warnings.extend(w);
            tls_lines = lines;
            Some(cfg)
        }
        (true, _) => return Err("`ssl` needs `crt FILE` or `crt-list FILE`".into()),
        (false, Some(_)) => return Err("`crt` needs `ssl`".into()),
        (false, None) => {
            // HAProxy ignores TLS options on a plain bind; so does lbha, with a warning.
            for w in &tls_words.seen {
                warnings.push(format!("`{w}` has no effect without `ssl`"));
            }
            None
        }
    };
    if h2 && tls.is_some() {
        return Err("`proto h2` is for cleartext binds; with ssl use `alpn h2,http/1.1`".into());
    }
    // As in HAProxy, `v6only` wins over `v4v6`, and both mean nothing on an IPv4 address.
    let v6only = match (v6only, v4v6) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    Ok(Bind { addr, tls, tls_lines, h2, accept_proxy, v6only, name: None })
}

/// `ssl`, `verify`, `ca_file`, `sni` of a server.
fn server_tls(sv: &model::Server, sp: &FieldPath, addr: SocketAddr, cx: &mut Ctx) -> Option<ServerTls> {
    if !sv.ssl {
        for (set, key) in [
            (sv.verify.is_some(), "verify"),
            (sv.ca_file.is_some(), "ca_file"),
            (sv.sni.is_some(), "sni"),
            (sv.crt.is_some(), "crt"),
            (sv.alpn.is_some(), "alpn"),
            (sv.ciphers.is_some(), "ciphers"),
            (sv.ciphersuites.is_some(), "ciphersuites"),
            (sv.ssl_min_ver.is_some(), "ssl_min_ver"),
            (sv.ssl_max_ver.is_some(), "ssl_max_ver"),
            (sv.verifyhost.is_some(), "verifyhost"),
            (sv.crl_file.is_some(), "crl_file"),
        ] {
            // HAProxy accepts them without `ssl` (and ignores them): so does lbha, with a warning.
            if set && sv.check_ssl != Some(true) {
                cx.warn(sp.key(key), "has no effect without `ssl = true`");
            }
        }
        return None;
    }
    let bases = cx.tls_defaults.bases.clone();
    let (verify, ca) = tls_side::server_verify(sv, sp, &bases.ca, "", cx)?;
    let (sni, sni_expr) = tls_side::server_sni(sv, sp, addr, cx)?;
    let policy = tls_side::server_policy(sv, sp, &cx.tls_defaults.server.clone(), cx)?;
    let crt = sv.crt.as_ref().map(|c| bases.crt.join(c));
    let check = tls_side::server_check(sv, sp, verify, cx)?;
    match crate::tls::server_side_config(verify, ca.as_deref(), crt.as_deref(), &check, &policy) {
        Ok((config, warnings)) => {
            for w in warnings {
                cx.warn(sp.key("ssl"), w);
            }
            Some(ServerTls { config: tls_side::server_alpn(sv, sp, config, cx)?, sni, sni_expr })
        }
        Err(e) => {
            let (key, val) = match &e {
                crate::tls::TlsError::Policy(m) => (tls_side::server_policy_key(sv, m), String::new()),
                crate::tls::TlsError::Ca { path, .. } if check.crl_file.as_ref() == Some(path) => {
                    ("crl_file", sv.crl_file.clone().unwrap_or_default())
                }
                crate::tls::TlsError::Ca { .. } => ("ca_file", sv.ca_file.clone().unwrap_or_default()),
                _ if sv.crt.is_some() => ("crt", sv.crt.clone().unwrap_or_default()),
                _ => ("ca_file", sv.ca_file.clone().unwrap_or_default()),
            };
            cx.err_v(sp.key(key), e.to_string(), val);
            None
        }
    }
}

fn frontend(
    n: &Named,
    defaults: &Section,
    backend_index: &HashMap<&str, usize>,
    backends: &[Backend],
    seen_binds: &mut HashMap<SocketAddr, String>,
    cx: &mut Ctx,
) -> Frontend {
    let s = n.sec;
    let p = n.path();
    cx.owner = n.name().to_string();
    let mode = mode_of(s, defaults);
    // A warning, not an error, as in HAProxy: the Data Plane API creates a frontend first and
    // adds its binds one call at a time.
    let binds_src = s.bind.as_deref().unwrap_or(&[]);
    if binds_src.is_empty() {
        cx.warn(p.key("bind"), format!("a {} without bind addresses receives no traffic", n.kind.table()));
    }
    let mut binds = Vec::new();
    let mut bind_names = HashSet::new();
    for (i, b) in binds_src.iter().enumerate() {
        if let Some(name) = &b.name
            && !bind_names.insert(name.as_str())
        {
            cx.err_v(p.key("bind").index(i).key("name"), "duplicate bind name", name);
        }
        let name = b.name.clone();
        let b = &b.addr;
        let mut warns = Vec::new();
        let parsed = parse_bind_line(b, &cx.tls_defaults.bases, &cx.tls_defaults.bind, &mut warns);
        for w in warns {
            cx.warn(p.key("bind").index(i), w);
        }
        match parsed {
            Ok(mut bind) => {
                bind.name = name;
                if let Some(other) = seen_binds.insert(bind.addr, n.name().to_string()) {
                    cx.err_v(p.key("bind").index(i), format!("address already bound by `{other}`"), b);
                }
                // A TCP frontend terminates TLS and relays the bytes, as HAProxy does.
                if bind.h2 && mode != Mode::Http {
                    cx.err_v(p.key("bind").index(i), "proto h2 needs mode http", b);
                }
                if bind.tls.is_none() && b.split_whitespace().any(|w| w == "alpn") {
                    cx.warn(p.key("bind").index(i), "`alpn` has no effect without `ssl` (HAProxy ignores it too)");
                }
                binds.push(bind);
            }
            Err(e) => cx.err_v(p.key("bind").index(i), e, b),
        }
    }
    in_range(s.maxconn, 1..=MAX_COUNT, p.key("maxconn"), cx);

    // In mode tcp, ACLs and use_backend are compiled by `tcprules` (they read stream contents).
    let (acls, acl_names) =
        if mode == Mode::Tcp { (Vec::new(), Vec::new()) } else { http_rules::acls(s, &p, backend_index, cx) };
    let lookup = |name: &str| acl_names.iter().position(|n| *n == name);
    let parse_cond =
        |if_: &Option<String>, unless: &Option<String>, rp: &FieldPath, cx: &mut Ctx| -> Option<Condition> {
            let text = match (if_, unless) {
                (Some(_), Some(_)) => {
                    cx.err(rp.clone(), "use either `if` or `unless`, not both");
                    return None;
                }
                (Some(c), None) => (format!("if {c}"), "if"),
                (None, Some(c)) => (format!("unless {c}"), "unless"),
                (None, None) => return None,
            };
            match Condition::parse(&text.0, &lookup) {
                Ok(mut c) => {
                    check_backend_refs(c.referenced_backends(), backend_index, &rp.key(text.1), cx);
                    http_rules::register_cond(&mut c, &rp.key(text.1), &text.0, cx);
                    Some(c)
                }
                Err(e) => {
                    cx.err_v(rp.key(text.1), e.to_string(), text.0.split_once(' ').map(|x| x.1).unwrap_or(""));
                    None
                }
            }
        };

    let mut switching = Vec::new();
    let mut dyn_switching = Vec::new();
    for (i, u) in s.use_backend.as_deref().unwrap_or(&[]).iter().enumerate().filter(|_| mode == Mode::Http) {
        let up = p.key("use_backend").index(i);
        let cond = parse_cond(&u.if_, &u.unless, &up, cx);
        // A name built from samples is looked up per request, as in HAProxy.
        if u.backend.contains('%') {
            if let Some(name) = http_rules::log_format(&u.backend, &up.key("backend"), cx) {
                dyn_switching.push(DynSwitchRule { position: switching.len(), name, cond });
            }
            continue;
        }
        match backend_index.get(u.backend.as_str()) {
            Some(&b) => {
                check_mode(mode, &backends[b], &up.key("backend"), cx);
                switching.push(SwitchRule { backend: b, cond });
            }
            None => cx.err_v(up.key("backend"), "no such backend", &u.backend),
        }
    }
    // A listen's own `default_backend` wins over its servers, as in HAProxy; one from [defaults]
    // does not take a listen with servers away from them.
    let own = n.kind == Kind::Listen && s.default_backend.is_none() && backend_index.contains_key(n.name());
    let default_backend = if own {
        backend_index.get(n.name()).copied()
    } else {
        match s.default_backend.as_deref().or(defaults.default_backend.as_deref()) {
            Some(name) => match backend_index.get(name) {
                Some(&b) => {
                    check_mode(mode, &backends[b], &p.key("default_backend"), cx);
                    Some(b)
                }
                None => {
                    cx.err_v(p.key("default_backend"), "no such backend", name);
                    None
                }
            },
            None => None,
        }
    };

    use http_rules::Phase;
    // Built before the rules: `capture ... len N` adds slots to it.
    let mut logging = logging::front(s, defaults, &p, mode, cx);
    let mut rules = |list, phase, cx: &mut Ctx| {
        http_rules::rules(list, phase, mode, (&acls, &acl_names), &p, Some(&mut logging), cx)
    };
    let http_request = rules(&s.http_request, Phase::Request, cx);
    let http_response = rules(&s.http_response, Phase::Response, cx);
    let http_after_response = rules(&s.http_after_response, Phase::After, cx);
    let monitor = match (s.monitor_uri.as_ref().or(defaults.monitor_uri.as_ref()), &s.monitor_fail) {
        (Some(uri), fail) => {
            let cond = fail.as_ref().and_then(|f| monitor_fail(f, &acl_names, &p, cx));
            Some((uri.clone(), cond))
        }
        (None, Some(_)) => {
            cx.err(p.key("monitor_fail"), "`monitor_fail` needs `monitor_uri`");
            None
        }
        (None, None) => None,
    };

    let stats = stats_page(s, defaults, mode, &p, &lookup, cx);
    let by_name = |b: &str| backend_index.get(b).copied();
    let (tcp, targets) = crate::tcprules::config::front(
        s,
        defaults,
        &format!("{} {}", n.kind.table(), n.name()),
        mode,
        &p,
        &by_name,
        cx.problems,
        &mut cx.maps,
        &cx.tables,
        &mut logging.req_slots,
    );
    for (b, path) in targets {
        check_mode(mode, &backends[b], &path, cx);
    }
    tcp_resolvers(&tcp.content, &p, cx);
    Frontend {
        name: n.name().to_string(),
        id: 0,
        mode,
        binds,
        maxconn: s.maxconn.or(defaults.maxconn),
        timeouts: timeouts(s, defaults),
        conn_mode: s.http_connection_mode.or(defaults.http_connection_mode).unwrap_or(ConnMode::KeepAlive),
        forwardfor: forwardfor(s, defaults, &p, true, cx),
        acls,
        switching,
        default_backend,
        http_request,
        http_response,
        http_after_response,
        dyn_switching,
        monitor,
        buffer_request: s.http_buffer_request.or(defaults.http_buffer_request).unwrap_or(false),
        stats,
        log: log_mode(s, defaults, mode, &p, cx),
        log_clf: log_clf(s, defaults, &p, cx),
        dontlognull: s.dontlognull.or(defaults.dontlognull).unwrap_or(false),
        ignore_probes: s.http_ignore_probes.or(defaults.http_ignore_probes).unwrap_or(false),
        clitcpka: s.clitcpka.or(defaults.clitcpka).unwrap_or(false),
        socket_stats: s.socket_stats.or(defaults.socket_stats).unwrap_or(false),
        rate_limit_sessions: s.rate_limit_sessions.or(defaults.rate_limit_sessions).filter(|&n| n > 0),
        body_min_rate: s.body_min_rate.or(defaults.body_min_rate).unwrap_or(DEFAULT_BODY_MIN_RATE),
        compression: compression::settings(s, defaults, &p, true, cx),
        tcp,
        errors: Default::default(),
        logging: std::sync::Arc::new(logging),
        expect_proxy: match &s.expect_proxy {
            None | Some(model::ExpectProxyDef::Always(false)) => None,
            Some(model::ExpectProxyDef::Always(true)) => Some(ExpectProxy { cond: None }),
            Some(model::ExpectProxyDef::When { if_, unless }) => {
                let ep = p.key("expect_proxy");
                if if_.is_none() && unless.is_none() {
                    cx.err(ep.clone(), "expected `true` or a table with `if` or `unless`");
                }
                Some(ExpectProxy { cond: parse_cond(if_, unless, &ep, cx) })
            }
        },
    }
}

/// `httplog = "clf"` (HAProxy's `option httplog clf`).
fn log_clf(s: &Section, defaults: &Section, p: &FieldPath, cx: &mut Ctx) -> bool {
    match s.httplog.as_ref().or(defaults.httplog.as_ref()) {
        Some(model::HttpLogOpt::Format(f)) if f == "clf" => true,
        Some(model::HttpLogOpt::Format(f)) => {
            cx.err_v(p.key("httplog"), "expected true, false or \"clf\"", f);
            false
        }
        _ => false,
    }
}

fn log_mode(s: &Section, defaults: &Section, mode: Mode, p: &FieldPath, cx: &mut Ctx) -> LogMode {
    let own_targets = s.log_targets.as_ref().or(defaults.log_targets.as_ref()).is_some_and(|t| !t.is_empty());
    match s.log.as_deref().or(defaults.log.as_deref()) {
        // `no log` (HAProxy) turns off what `[defaults]` set.
        Some("none") | None if !own_targets => return LogMode::Off,
        None | Some("global" | "none") => {}
        Some(other) => {
            cx.err_v(p.key("log"), "expected \"global\" or \"none\" (a proxy's own targets go in log_targets)", other);
            return LogMode::Off;
        }
    }
    // A proxy's own option overrides the other one inherited from [defaults], as in HAProxy.
    let own = s.httplog.as_ref().map(model::HttpLogOpt::on);
    let (http, tcp) = match (own, s.tcplog) {
        (Some(h), None) if h => (true, false),
        (None, Some(t)) if t => (false, true),
        (h, t) => (
            h.or(defaults.httplog.as_ref().map(model::HttpLogOpt::on)).unwrap_or(false),
            t.or(defaults.tcplog).unwrap_or(false),
        ),
    };
    match (http, tcp, mode) {
        (true, true, _) => {
            cx.err(p.key("httplog"), "httplog and tcplog exclude each other");
            LogMode::Off
        }
        // HAProxy falls back to tcplog for an httplog proxy in tcp mode, with a warning.
        (true, false, Mode::Http) => LogMode::Http,
        (true, false, Mode::Tcp) => {
            cx.warn(p.key("httplog"), "`httplog` needs mode http: falling back to tcplog, as HAProxy does");
            LogMode::Tcp
        }
        (false, true, _) => LogMode::Tcp,
        // A `log_format` logs each request with that line, as in HAProxy.
        (false, false, Mode::Http) if s.log_format.is_some() || defaults.log_format.is_some() => LogMode::Http,
        (false, false, Mode::Tcp) if s.log_format.is_some() || defaults.log_format.is_some() => LogMode::Tcp,
        (false, false, _) => LogMode::Connect,
    }
}

fn check_mode(front: Mode, back: &Backend, path: &FieldPath, cx: &mut Ctx) {
    if front == Mode::Tcp && back.mode == Mode::Http {
        // HAProxy accepts it (it upgrades the stream); lbha relays the bytes to the servers.
        cx.warn(
            path.clone(),
            format!(
                "backend `{}` is in mode http: this tcp frontend relays bytes to its servers without HTTP processing",
                back.name
            ),
        );
        return;
    }
    if front != back.mode {
        cx.err_v(
            path.clone(),
            format!("backend `{}` is in mode {:?} but this frontend is in mode {:?}", back.name, back.mode, front),
            &back.name,
        );
    }
}

fn check_backend_refs(names: Vec<&str>, index: &HashMap<&str, usize>, path: &FieldPath, cx: &mut Ctx) {
    for name in names {
        if !index.contains_key(name) {
            cx.err_v(path.clone(), "nbsrv() names no such backend", name);
        }
    }
}

fn header_pair(name: &str, value: &str, path: &FieldPath, cx: &mut Ctx) -> Option<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| cx.err_v(path.key("name"), "invalid header name", name))
        .ok();
    let v = HeaderValue::from_str(value).map_err(|_| cx.err_v(path.key("value"), "invalid header value", value)).ok();
    Some((n?, v?))
}

fn status(
    code: Option<u16>,
    default: u16,
    path: &FieldPath,
    range: std::ops::RangeInclusive<u16>,
    cx: &mut Ctx,
) -> StatusCode {
    let c = code.unwrap_or(default);
    if !range.contains(&c) {
        cx.err_v(path.clone(), format!("status must be in {}..={}", range.start(), range.end()), c);
        return StatusCode::from_u16(default).unwrap_or(StatusCode::OK);
    }
    StatusCode::from_u16(c).unwrap_or(StatusCode::OK)
}

/// `monitor fail if COND` / `unless COND`.
fn monitor_fail(text: &str, names: &[&str], p: &FieldPath, cx: &mut Ctx) -> Option<Condition> {
    let (kw, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    let (if_, unless) = match kw {
        "if" => (Some(rest.to_string()), None),
        "unless" => (None, Some(rest.to_string())),
        _ => {
            cx.err_v(p.key("monitor_fail"), "expected \"if COND\" or \"unless COND\"", text);
            return None;
        }
    };
    http_rules::cond(names, &if_, &unless, &p.key("monitor_fail"), cx)
}

/// A backend's own ACLs and rules (a listen's are its frontend's, run once, as in HAProxy).
fn backend_rules(b: &mut Backend, n: &Named, defaults: &Section, backend_index: &HashMap<&str, usize>, cx: &mut Ctx) {
    if n.kind != Kind::Backend {
        return;
    }
    use http_rules::Phase;
    let (s, p) = (n.sec, n.path());
    cx.owner = n.name().to_string();
    let (acls, names) = http_rules::acls(s, &p, backend_index, cx);
    b.http_request = http_rules::rules(&s.http_request, Phase::Request, b.mode, (&acls, &names), &p, None, cx);
    b.http_response = http_rules::rules(&s.http_response, Phase::Response, b.mode, (&acls, &names), &p, None, cx);
    b.http_after_response =
        http_rules::rules(&s.http_after_response, Phase::After, b.mode, (&acls, &names), &p, None, cx);
    b.acls = acls;
    // A backend's stats page answers the requests switched to it (HAProxy's `use_backend stats
    // if ...` to a backend with `stats enable`), after its `http-request` rules.
    b.stats = stats_page(s, defaults, b.mode, &p, &|name: &str| names.iter().position(|n| *n == name), cx);
}

/// A section's own `stats`, else the `[defaults]` one (HAProxy's `stats enable` in `defaults`
/// gives every proxy the page; a request is answered by the first on its way, the frontend's).
/// What is wrong in an inherited one is reported once, at `[defaults]` ([`defaults_stats`]).
fn stats_page(
    s: &Section,
    defaults: &Section,
    mode: Mode,
    p: &FieldPath,
    lookup: &dyn Fn(&str) -> Option<usize>,
    cx: &mut Ctx,
) -> Option<StatsSettings> {
    let (st, at, inherited) = match (&s.stats, &defaults.stats) {
        (Some(st), _) => (st, p.key("stats"), false),
        (None, Some(st)) => (st, FieldPath::root().key("defaults").key("stats"), true),
        (None, None) => return None,
    };
    if mode == Mode::Tcp {
        if !inherited {
            cx.warn(at, "ignored: the stats page needs mode http");
        }
        return None;
    }
    let before = cx.problems.len();
    let settings = stats_with_admin(st, &at, lookup, cx);
    if inherited {
        cx.problems.truncate(before);
    }
    Some(settings)
}

/// `[defaults] stats`, checked once. `admin` is refused there, as HAProxy refuses `stats admin`
/// in `defaults`: it would open the admin form on every proxy.
fn defaults_stats(defaults: &Section, cx: &mut Ctx) {
    if let Some(st) = &defaults.stats {
        let at = FieldPath::root().key("defaults").key("stats");
        if let Some(text) = st.admin.as_deref() {
            cx.err_v(
                at.key("admin"),
                "not allowed in [defaults] (HAProxy refuses `stats admin` in defaults too)",
                text,
            );
        }
        stats(st, &at, cx);
    }
}

fn stats_with_admin(
    st: &model::Stats,
    at: &FieldPath,
    lookup: &dyn Fn(&str) -> Option<usize>,
    cx: &mut Ctx,
) -> StatsSettings {
    let mut settings = stats(st, at, cx);
    if let Some(text) = st.admin.as_deref() {
        match Condition::parse(text, lookup) {
            Ok(mut c) => {
                http_rules::register_cond(&mut c, &at.key("admin"), text, cx);
                settings.admin = Some(c);
            }
            Err(e) => cx.err_v(at.key("admin"), e.to_string(), text),
        }
    }
    settings
}

fn stats(st: &model::Stats, p: &FieldPath, cx: &mut Ctx) -> StatsSettings {
    let uri = st.uri.clone().unwrap_or_else(|| "/haproxy?stats".to_string());
    if !uri.starts_with('/') {
        cx.err_v(p.key("uri"), "must start with '/'", &uri);
    }
    if let Some(m) = &st.metrics_uri
        && !m.starts_with('/')
    {
        cx.err_v(p.key("metrics_uri"), "must start with '/'", m);
    }
    let mut auth = Vec::new();
    for (i, a) in st.auth.iter().enumerate() {
        match a.split_once(':') {
            Some((u, pw)) if !u.is_empty() => auth.push((u.to_string(), pw.to_string())),
            _ => cx.err_v(p.key("auth").index(i), "expected \"user:password\"", a),
        }
    }
    StatsSettings {
        uri,
        auth,
        realm: st.realm.clone().unwrap_or_else(|| "lbha Statistics".to_string()),
        refresh: st.refresh.map(|d| d.0),
        hide_version: st.hide_version,
        metrics_uri: st.metrics_uri.clone(),
        admin: None,
    }
}

/// A userlist's groups with their members, refused as HAProxy refuses them: a group a user
/// names must be declared, a user a group lists must exist.
fn user_groups(l: &model::Userlist, p: &FieldPath, cx: &mut Ctx) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (i, g) in l.groups.iter().enumerate() {
        let gp = p.key("groups").index(i);
        if g.name.is_empty() {
            cx.err(gp.key("name"), "missing group name");
        } else if groups.iter().any(|(n, _)| *n == g.name) {
            cx.err_v(gp.key("name"), "duplicate group name", &g.name);
        }
        for (j, u) in g.users.iter().enumerate() {
            if !l.users.iter().any(|x| x.name == *u) {
                cx.err_v(gp.key("users").index(j), "no such user in this userlist", u);
            }
        }
        groups.push((g.name.clone(), g.users.clone()));
    }
    for (j, u) in l.users.iter().enumerate() {
        for (k, g) in u.groups.iter().enumerate() {
            match groups.iter_mut().find(|(n, _)| n == g) {
                Some((_, members)) if !members.contains(&u.name) => members.push(u.name.clone()),
                Some(_) => {}
                None => cx.err_v(p.key("users").index(j).key("groups").index(k), "no such group in this userlist", g),
            }
        }
    }
    groups
}

fn userlists(lists: &[model::Userlist], cx: &mut Ctx) -> Vec<Userlist> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, l) in lists.iter().enumerate() {
        let p = FieldPath::root().key("userlist").index(i);
        if l.name.is_empty() {
            cx.err(p.key("name"), "missing name");
        } else if !names.insert(l.name.as_str()) {
            cx.err_v(p.key("name"), "duplicate userlist name", &l.name);
        }
        let mut users = Vec::new();
        for (j, u) in l.users.iter().enumerate() {
            let up = p.key("users").index(j);
            let pw = match (&u.insecure_password, &u.password) {
                (Some(pw), None) => Password::Insecure(pw.clone()),
                (None, Some(h)) => match super::api::check_hash(h) {
                    Ok(()) => Password::Hash(h.clone()),
                    Err(e) => {
                        cx.err_v(up.key("password"), e, h);
                        continue;
                    }
                },
                (Some(_), Some(_)) => {
                    cx.err(up.clone(), "set `password` or `insecure_password`, not both");
                    continue;
                }
                (None, None) => {
                    cx.err(up.key("password"), "missing password");
                    continue;
                }
            };
            if u.name.is_empty() {
                cx.err(up.key("name"), "missing user name");
            } else {
                users.push((u.name.clone(), pw));
            }
        }
        let groups = user_groups(l, &p, cx);
        out.push(Userlist { name: l.name.clone(), users, groups });
    }
    out
}

/// A `tcp-request content do-resolve` names a `[[resolvers]]` section, as HAProxy checks.
fn tcp_resolvers(rules: &[crate::tcprules::Rule], p: &FieldPath, cx: &mut Ctx) {
    for r in rules {
        if let crate::tcprules::Action::DoResolve { resolvers, .. } = &r.action
            && !cx.resolvers.contains(resolvers)
        {
            cx.err_v(p.key("tcp_request"), "do-resolve: no such resolvers section", resolvers);
        }
    }
}
