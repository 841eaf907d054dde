//! HAProxy keywords lbha does not convert, sorted by why: so an operator can tell a feature lbha
//! lacks (reported as not supported yet) from a typo (reported as unknown).

/// Process-model keywords of `global` that mean nothing to lbha, with the reason.
pub const GLOBAL_IGNORED: &[(&str, &str)] = &[
    ("daemon", "lbha runs in the foreground; let systemd (Type=notify) manage it"),
    ("master-worker", "lbha is a single process that reloads in place"),
    ("nbproc", "lbha is one process; use nbthread for parallelism"),
    ("chroot", "lbha does not chroot; use the systemd unit's sandboxing"),
    ("pidfile", "lbha does not daemonize, so systemd tracks its pid"),
    ("ulimit-n", "set LimitNOFILE= in the systemd unit"),
    ("quiet", "lbha logs through its own LBHA_LOG filter"),
    ("debug", "lbha logs through its own LBHA_LOG filter (LBHA_LOG=debug)"),
    ("zero-warning", "lbha has its own `lbha check`"),
    ("insecure-fork-wanted", "lbha may always start external checks"),
    ("insecure-setuid-wanted", "lbha never changes its user id"),
    ("external-check", "lbha may always run external checks; option external-check per backend is enough"),
    ("setenv", "applied while reading the file: later \"${VAR}\" see it"),
    ("presetenv", "applied while reading the file: later \"${VAR}\" see it"),
    ("unsetenv", "applied while reading the file: later \"${VAR}\" see it"),
    ("resetenv", "lbha convert does not clear the environment it expands from"),
    ("description", "informational only"),
    ("node", "informational only (stats page node name)"),
    ("expose-experimental-directives", "lbha has no experimental directives"),
    (
        "tune.ssl.default-dh-param",
        "rustls offers no finite-field DHE key exchange (ECDHE only), so DH parameters have nothing to apply to",
    ),
    (
        "ssl-dh-param-file",
        "rustls offers no finite-field DHE key exchange (ECDHE only), so DH parameters have nothing to apply to",
    ),
];

/// Known `global` keywords lbha has no counterpart for yet.
pub const GLOBAL_UNSUPPORTED: &[&str] = &[
    "log-format",
    "stats",
    "cpu-map",
    "maxsslconn",
    "maxzlibmem",
    "maxpipes",
    "maxcomprate",
    "maxcompcpuusage",
    "noepoll",
    "nopoll",
    "nosplice",
    "nogetaddrinfo",
    "noreuseport",
    "lua-load",
    "lua-load-per-thread",
    "lua-prepend-path",
    "server-state-base",
    "ssl-engine",
    "ssl-mode-async",
    "ssl-load-extra-files",
    "tune.maxrewrite",
    "tune.ssl.cachesize",
    "tune.http.maxhdr",
    "unix-bind",
    "set-dumpable",
    "strict-limits",
    "busy-polling",
    "max-spread-checks",
    "h1-case-adjust",
    "h1-case-adjust-file",
    "hard-stop-after-grace",
    "grace",
    "mworker-max-reloads",
    "numa-cpu-mapping",
    "thread-groups",
    "thread-group",
    "default-path",
    "httpclient.resolvers.disabled",
    "profiling.tasks",
    "wurfl-data-file",
    "51degrees-data-file",
    "deviceatlas-json-file",
    "fd-hard-limit",
    "tune.lua.session-timeout",
    "stats-file",
    "ocsp-update.mode",
    "limited-quic",
    "cluster-secret",
    "h2-workaround-bogus-websocket-clients",
];

/// Known proxy keywords lbha has no counterpart for yet, with what they do when it helps.
pub const PROXY_UNSUPPORTED: &[(&str, &str)] = &[
    ("error-log-format", "error-log-format is not supported yet"),
    ("http-send-name-header", "not implemented"),
    ("monitor-net", "not implemented"),
    ("use-fcgi-app", "FastCGI is not implemented"),
    ("server-state-file-name", "server state files are not implemented"),
    ("dispatch", "not implemented"),
    ("email-alert", "not implemented"),
    ("max-keep-alive-queue", "not implemented"),
    ("max-session-srv-conns", "not implemented"),
    ("hash-balance-factor", "bounded-load consistent hashing is not implemented"),
    ("backlog", "lbha uses the system's listen backlog"),
    // In `PROTECTING` too: converted without it, a section HAProxy keeps stopped would serve.
    ("disabled", "lbha has no disabled proxies; remove or comment out the section"),
    ("transparent", "transparent proxying is not implemented"),
    ("grace", "not implemented"),
    ("description", "informational only; lbha has nowhere to show it yet"),
    ("reqadd", "removed in HAProxy 2.1; use http-request add-header"),
    ("reqdel", "removed in HAProxy 2.1; use http-request del-header"),
    ("reqrep", "removed in HAProxy 2.1; not implemented"),
    ("reqirep", "removed in HAProxy 2.1; not implemented"),
    ("reqallow", "removed in HAProxy 2.1; not implemented"),
    ("reqdeny", "removed in HAProxy 2.1; use http-request deny"),
    ("reqtarpit", "removed in HAProxy 2.1; not implemented"),
    ("reqpass", "removed in HAProxy 2.1; not implemented"),
    ("reqsetbe", "removed in HAProxy 2.1; use use_backend"),
    ("rspadd", "removed in HAProxy 2.1; use http-response add-header"),
    ("rspdel", "removed in HAProxy 2.1; use http-response del-header"),
    ("rsprep", "removed in HAProxy 2.1; not implemented"),
    ("rspirep", "removed in HAProxy 2.1; not implemented"),
    ("rspdeny", "removed in HAProxy 2.1; not implemented"),
    ("rspidel", "removed in HAProxy 2.1; not implemented"),
    ("rspideny", "removed in HAProxy 2.1; not implemented"),
    ("reqidel", "removed in HAProxy 2.1; not implemented"),
    ("reqideny", "removed in HAProxy 2.1; not implemented"),
    ("reqiallow", "removed in HAProxy 2.1; not implemented"),
    ("reqipass", "removed in HAProxy 2.1; not implemented"),
    ("reqitarpit", "removed in HAProxy 2.1; not implemented"),
];

/// Proxy keywords that have no meaning for lbha, with the reason.
pub const PROXY_IGNORED: &[(&str, &str)] = &[
    ("enabled", "proxies are enabled unless removed"),
    ("bind-process", "lbha is one process"),
    ("load-server-state-from-file", "lbha loads `server_state_file` for every backend when [global] sets it"),
];

/// `option` names lbha does not convert, with why.
pub const OPTIONS_UNSUPPORTED: &[(&str, &str)] = &[
    ("logasap", "not supported yet: lbha logs when the response is done"),
    ("http-pretend-keepalive", "not implemented"),
    ("http-tunnel", "removed in HAProxy 2.1; lbha keeps connections alive"),
    ("http-no-delay", "not implemented"),
    ("http-use-proxy-header", "not implemented"),
    ("http_proxy", "not implemented"),
    ("http-restrict-req-hdr-names", "not implemented"),
    ("accept-invalid-http-request", "lbha rejects ambiguous requests (see README)"),
    ("accept-invalid-http-response", "lbha rejects ambiguous responses"),
    ("accept-unsafe-violations-in-http-request", "lbha rejects ambiguous requests"),
    ("accept-unsafe-violations-in-http-response", "lbha rejects ambiguous responses"),
    ("h1-case-adjust-bogus-client", "not implemented"),
    ("h1-case-adjust-bogus-server", "not implemented"),
    ("disable-h2-upgrade", "not implemented"),
    ("idle-close-on-response", "not implemented"),
    ("splice-auto", "splicing is not implemented"),
    ("splice-request", "splicing is not implemented"),
    ("splice-response", "splicing is not implemented"),
    ("nolinger", "not implemented"),
    ("originalto", "X-Original-To is not implemented"),
    ("prefer-last-server", "not implemented"),
    ("independent-streams", "not implemented"),
    ("checkcache", "not implemented"),
    ("contstats", "not implemented"),
    ("transparent", "transparent proxying is not implemented"),
    ("tcp-smart-accept", "not implemented"),
    ("tcp-smart-connect", "not implemented"),
    ("spop-check", "lbha checks with a plain TCP connect"),
];

/// Protocol checks (`option tcp-check`, `redis-check`, ...): see `server_side::check_option`.
pub const OPTIONS_TCP_CHECK: &[&str] =
    &["tcp-check", "ssl-hello-chk", "mysql-check", "pgsql-check", "redis-check", "smtpchk", "ldap-check"];

/// `server` / `default-server` parameters lbha has no counterpart for, and whether each takes a value.
pub const SERVER_UNSUPPORTED: &[(&str, bool)] = &[
    ("send-proxy-v2-ssl-cn", false),
    ("no-ssl", false),
    ("npn", true),
    ("check-proto", true),
    ("tls-tickets", false),
    ("allow-0rtt", false),
    ("tfo", false),
    ("pool-low-conn", true),
    ("usesrc", true),
    ("namespace", true),
    ("socks4", true),
    ("ws", true),
    ("non-stick", false),
    ("stick", false),
    ("tcp-ut", true),
    ("set-proxy-v2-tlv-fmt", true),
    ("shard", true),
    ("guid", true),
    ("log-proto", true),
    ("log-bufsize", true),
    ("check-via-socks4", false),
    ("check-reuse-pool", false),
    ("check-pool-conn-name", true),
];

/// `http-request`/`tcp-request` actions whose loss changes no access decision (logging, variables,
/// header additions): dropping any other rule would let through what HAProxy stops.
const RULE_ACTIONS_HARMLESS: &[&str] = &[
    "set-var",
    "unset-var",
    "capture",
    "set-log-level",
    "set-nice",
    "set-mark",
    "set-tos",
    "set-priority-class",
    "set-priority-offset",
    "early-hint",
    "wait-for-handshake",
    "wait-for-body",
    "cache-use",
    "cache-store",
    "add-header",
    "set-header",
    "inspect-delay",
    "accept",
    "allow",
];

/// Proxy keywords that hold access rules, protections or limits.
const PROTECTING: &[&str] = &[
    "block",
    "redirect",
    "use_backend",
    "use-server",
    "reqdeny",
    "reqideny",
    "reqtarpit",
    "reqitarpit",
    "reqdel",
    "reqidel",
    "rspdeny",
    "rspideny",
    "rspdel",
    "rspidel",
    // A disabled proxy does not run in HAProxy; lbha would start it.
    "disabled",
];

/// Whether dropping `args` (a directive's words) would let through what the original stops:
/// an access rule, an authentication, a stats protection or a limit. (An `acl` is not one by
/// itself: every rule that needs a dropped acl is dropped and judged on its own.)
pub fn protects(args: &[String]) -> bool {
    let w = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match w(0) {
        // `inspect-delay` only sets how long content rules wait; the rules themselves are judged.
        "tcp-request" | "tcp-response" if w(1) == "inspect-delay" => false,
        "http-request" | "tcp-request" | "tcp-response" => {
            // tcp-request has a ruleset word (`connection`, `content`, `session`) before the action.
            let action = if w(0) == "http-request" { w(1) } else { w(2) };
            let action = action.split('(').next().unwrap_or(action);
            !RULE_ACTIONS_HARMLESS.contains(&action)
        }
        // Responses carry security headers (HSTS, CSP): every response rule counts, including
        // those applied to lbha's own answers.
        "http-response" | "http-after-response" => true,
        "stats" => matches!(w(1), "auth" | "http-request" | "scope" | "admin"),
        // SPOE agents (WAFs, authentication) set the variables deny rules read.
        "filter" => w(1) == "spoe",
        k => PROTECTING.contains(&k),
    }
}
