//! The stats listener: HAProxy CSV columns and values against known traffic, HTML with auth and
//! realm, Prometheus text, and the admin form.

mod common;
use common::*;
use std::io::Write;

/// HAProxy 2.6's `show stat` header (tests/stats.rs compares it with the real one too).
const HAPROXY_COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out";

fn setup(a: u16, b: u16, web: u16, stats: u16) -> String {
    format!(
        r#"
[defaults]
mode = "http"
[[listen]]
name = "web"
bind = ["127.0.0.1:{web}"]
servers = [{{ name = "a", addr = "127.0.0.1:{a}", check = true, inter = 100 }}, {{ name = "b", addr = "127.0.0.1:{b}" }}]
[[listen]]
name = "stats"
bind = ["127.0.0.1:{stats}"]
stats = {{ uri = "/haproxy-status", auth = ["haadmin:123456", "ops:secret"], realm = "Private lands", refresh = "30s", admin = "if LOCALHOST", metrics_uri = "/metrics" }}
"#
    )
}

fn auth_get(port: u16, path: &str, basic: &str) -> Resp {
    raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap()
}

/// base64("haadmin:123456")
const ADMIN: &str = "aGFhZG1pbjoxMjM0NTY=";

fn csv_rows(port: u16) -> Vec<Vec<String>> {
    let r = auth_get(port, "/haproxy-status;csv", ADMIN);
    assert_eq!(r.status, 200);
    let text = r.text();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert_eq!(header.trim_start_matches("# ").trim_end_matches(','), HAPROXY_COLUMNS);
    lines.map(|l| l.strip_suffix(',').unwrap_or(l).split(',').map(str::to_string).collect()).collect()
}

fn col(row: &[String], name: &str) -> String {
    let i = HAPROXY_COLUMNS.split(',').position(|c| c == name).unwrap();
    row[i].clone()
}

fn find<'a>(rows: &'a [Vec<String>], px: &str, sv: &str) -> &'a Vec<String> {
    rows.iter().find(|r| r[0] == px && r[1] == sv).unwrap_or_else(|| panic!("no row {px}/{sv}: {rows:?}"))
}

#[test]
fn csv_matches_known_traffic() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats) = (free_port(), free_port());
    // Wait on the stats port only: a readiness probe on `web` would count as a session there,
    // racing with the first read. Both ports are bound before either accepts.
    let _l = Lbha::start(&setup(a.port, b.port, web, stats), &[stats]);
    let stot_before: u64 = col(find(&csv_rows(stats), "web", "FRONTEND"), "stot").parse().unwrap();
    assert_eq!(stot_before, 0);
    let request = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for _ in 0..10 {
        assert_eq!(raw(web, request).unwrap().status, 200);
    }
    let rows = csv_rows(stats);
    assert!(rows.iter().all(|r| r.len() == 128), "HAProxy 2.6's 128 columns per row");
    let fe = find(&rows, "web", "FRONTEND");
    assert_eq!(col(fe, "stot"), (stot_before + 10).to_string());
    assert_eq!(col(fe, "req_tot"), "10");
    assert_eq!(col(fe, "hrsp_2xx"), "10");
    assert_eq!(col(fe, "bin"), (10 * request.len()).to_string(), "every byte the clients sent");
    assert!(col(fe, "bout").parse::<u64>().unwrap() > 10 * 40, "headers and bodies sent");
    assert_eq!(col(fe, "status"), "OPEN");
    let be = find(&rows, "web", "BACKEND");
    assert_eq!(col(be, "stot"), "10");
    assert_eq!(col(be, "hrsp_2xx"), "10");
    assert_eq!(col(be, "req_tot"), "10");
    assert_eq!(col(be, "act"), "2");
    assert_eq!(col(be, "status"), "UP");
    let (sa, sb) = (find(&rows, "web", "a"), find(&rows, "web", "b"));
    assert_eq!(col(sa, "stot"), "5");
    assert_eq!(col(sb, "stot"), "5");
    assert_eq!(col(sa, "bout"), "5", "one body byte per response from a");
    // Checked: "UP", or "UP 1/3" / "UP 2/3" until two checks topped the counter, as HAProxy.
    assert!(col(sa, "status") == "UP" || col(sa, "status").starts_with("UP "), "{}", col(sa, "status"));
    assert_eq!(col(sb, "status"), "no check");
    assert_eq!(col(sa, "type"), "2");
    assert_eq!(col(be, "type"), "1");
    assert_eq!(col(fe, "type"), "0");
}

#[test]
fn html_needs_auth_and_shows_every_proxy() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats) = (free_port(), free_port());
    let _l = Lbha::start(&setup(a.port, b.port, web, stats), &[web, stats]);
    let r = get(stats, "/haproxy-status");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Private lands\""));
    assert_eq!(auth_get(stats, "/haproxy-status", "b3BzOndyb25n").status, 401, "wrong password");
    let r = auth_get(stats, "/haproxy-status", "b3BzOnNlY3JldA==");
    assert_eq!(r.status, 200, "second user works");
    let page = r.text();
    assert!(page.contains("<h2>web</h2>") && page.contains(">a<") && page.contains(">b<"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\" content=\"30\""));
    assert!(page.contains("name=\"action\""), "admin form for LOCALHOST");
}

#[test]
fn prometheus_metrics() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats) = (free_port(), free_port());
    let _l = Lbha::start(&setup(a.port, b.port, web, stats), &[web, stats]);
    for _ in 0..4 {
        get(web, "/");
    }
    let r = auth_get(stats, "/metrics", ADMIN);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let m = r.text();
    for line in [
        "lbha_frontend_http_requests_total{proxy=\"web\"} 4",
        "lbha_backend_http_responses_total{proxy=\"web\",code=\"2xx\"} 4",
        "lbha_server_sessions_total{proxy=\"web\",server=\"a\"} 2",
        "lbha_backend_active_servers{proxy=\"web\"} 2",
        "# TYPE lbha_frontend_sessions_total counter",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
}

/// Posts the stats page's admin form putting `web/a` in maintenance; `auth` is a whole
/// `Authorization` line or empty.
fn post_maint_form(port: u16, auth: &str) -> Resp {
    let form = "b=web&s=a&action=maint";
    let mut s = connect(port);
    s.write_all(
        format!(
            "POST /haproxy-status HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .unwrap();
    read_response(&mut s, false).unwrap()
}

#[test]
fn admin_form_puts_a_server_in_maintenance() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats) = (free_port(), free_port());
    let _l = Lbha::start(&setup(a.port, b.port, web, stats), &[web, stats]);
    let r = post_maint_form(stats, &format!("Authorization: Basic {ADMIN}\r\n"));
    assert_eq!(r.status, 303, "{}", r.text());
    for _ in 0..6 {
        assert_eq!(get(web, "/").text(), "B");
    }
    assert_eq!(col(find(&csv_rows(stats), "web", "a"), "status"), "MAINT");
}

/// HAProxy checks `stats auth` before anything else, admin actions included: a form posted
/// without credentials (or with wrong ones) gets a 401 and changes nothing.
#[test]
fn admin_form_without_credentials_is_refused() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats) = (free_port(), free_port());
    let _l = Lbha::start(&setup(a.port, b.port, web, stats), &[web, stats]);
    for auth in ["", "Authorization: Basic b3BzOndyb25n\r\n"] {
        let r = post_maint_form(stats, auth);
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Private lands\""));
    }
    // Not in maintenance: up, with the check counter HAProxy shows until checks top it up.
    let st = col(find(&csv_rows(stats), "web", "a"), "status");
    assert!(st == "UP" || st.starts_with("UP "), "{st}");
    for path in ["/haproxy-status;csv", "/metrics", "/haproxy-status?x"] {
        assert_eq!(get(stats, path).status, 401, "{path}");
    }
}

/// HAProxy runs a frontend's `http-request` rules before it serves the stats page: a rule that
/// denies the client denies the page and its admin form too, and a redirect answers first.
#[test]
fn http_request_rules_come_before_the_stats_page() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let (web, stats, guarded, moved) = (free_port(), free_port(), free_port(), free_port());
    let config = format!(
        r#"{}
[[listen]]
name = "guarded"
bind = ["127.0.0.1:{guarded}"]
stats = {{ uri = "/haproxy-status", auth = ["haadmin:123456"], admin = "if TRUE" }}
http_request = [{{ deny = {{ status = 403 }}, unless = "{{ src 10.0.0.0/8 }}" }}]
[[listen]]
name = "moved"
bind = ["127.0.0.1:{moved}"]
stats = {{ uri = "/haproxy-status", auth = ["haadmin:123456"], admin = "if TRUE" }}
http_request = [{{ redirect = {{ location = "https://stats.example/", code = 302 }} }}]
"#,
        setup(a.port, b.port, web, stats)
    );
    let _l = Lbha::start(&config, &[web, stats, guarded, moved]);
    for path in ["/haproxy-status", "/haproxy-status;csv", "/metrics"] {
        assert_eq!(auth_get(guarded, path, ADMIN).status, 403, "{path}");
    }
    let r = post_maint_form(guarded, &format!("Authorization: Basic {ADMIN}\r\n"));
    assert_eq!(r.status, 403, "{}", r.text());
    let st = col(find(&csv_rows(stats), "web", "a"), "status");
    assert!(st == "UP" || st.starts_with("UP "), "the denied form changed nothing: {st}");
    let r = auth_get(moved, "/haproxy-status", ADMIN);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://stats.example/"));
    // `stats auth` still guards the page when the rules let the request through.
    assert_eq!(get(stats, "/haproxy-status").status, 401);
}

/// HAProxy's stats take only the stats URI: without `metrics_uri`, `/metrics` on a proxy with
/// `stats` (and no `stats auth`) reaches the application, and no metrics leak.
#[test]
fn metrics_are_not_served_unless_named() {
    let a = Backend::start("A");
    let web = free_port();
    let config = format!(
        r#"
[defaults]
mode = "http"
[[listen]]
name = "web"
bind = ["127.0.0.1:{web}"]
stats = {{ uri = "/haproxy?stats" }}
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        a.port
    );
    let _l = Lbha::start(&config, &[web]);
    let r = get(web, "/metrics");
    assert_eq!((r.status, r.text().as_str()), (200, "A"), "the application's /metrics");
    let r = get(web, "/haproxy?stats;csv");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("# pxname,"), "{}", r.text());
}

/// `stats` in a backend (HAProxy's `use_backend stats if { path_beg /haproxy }` to a backend
/// with `stats enable`): the page answers what the frontend switches there, behind the backend's
/// auth, with its `admin` condition over the backend's own ACLs; other paths go to the servers.
#[test]
fn a_backend_stats_page_answers_the_requests_switched_to_it() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
[[frontend]]
name = "main"
bind = ["127.0.0.1:{port}"]
use_backend = [{{ backend = "st", if = "{{ path_beg /haproxy }}" }}]
default_backend = "app"
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
[[backend]]
name = "st"
acl = [{{ name = "from_here", cond = "src 127.0.0.0/8" }}]
stats = {{ uri = "/haproxy?stats", auth = ["haadmin:123456"], admin = "if from_here" }}
"#,
        a.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    assert_eq!(get(port, "/haproxy?stats").status, 401, "the backend's auth");
    let r = auth_get(port, "/haproxy?stats", ADMIN);
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.contains("<h2>app</h2>") && page.contains(">a<"), "{page}");
    assert!(page.contains("name=\"action\""), "admin form: the backend's ACL holds");
    let r = get(port, "/other");
    assert_eq!((r.status, r.text().contains("A")), (200, true), "other paths reach the servers");
}

/// `stats` in `[defaults]` (HAProxy's `stats enable` in `defaults`): every HTTP proxy, backends
/// included, serves the page at its URI, behind its auth; a section's own `stats` replaces it.
#[test]
fn a_defaults_stats_page_is_every_http_proxys() {
    let a = Backend::start("A");
    let (one, two) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "http"
stats = {{ uri = "/stats", auth = ["haadmin:123456"] }}
[[frontend]]
name = "one"
bind = ["127.0.0.1:{one}"]
default_backend = "app"
[[frontend]]
name = "two"
bind = ["127.0.0.1:{two}"]
default_backend = "app"
stats = {{ uri = "/own-stats" }}
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        a.port
    );
    let _l = Lbha::start(&cfg, &[one, two]);
    assert_eq!(get(one, "/stats").status, 401);
    assert_eq!(auth_get(one, "/stats", ADMIN).status, 200);
    assert!(auth_get(one, "/stats", ADMIN).text().contains("<h2>app</h2>"));
    assert_eq!(get(one, "/").status, 200, "other paths reach the server");
    assert_eq!(get(two, "/own-stats").status, 200, "its own page, without auth");
    // Its backend has the defaults' page too, and answers it: HAProxy 2.6 gives the same 401.
    assert_eq!(get(two, "/stats").status, 401);
}

/// The columns HAProxy 2.6 fills that lbha leaves empty, having no such figure (README, "Stats
/// columns"), by row type.
const UNFILLED: &[(&str, &[&str])] = &[
    (
        "FRONTEND",
        &[
            "slim",
            "rate_max",
            "req_rate_max",
            "comp_in",
            "comp_out",
            "comp_byp",
            "comp_rsp",
            "conn_rate",
            "conn_rate_max",
            "conn_tot",
            "intercepted",
            "dcon",
            "dses",
            "cache_lookups",
            "cache_hits",
            "eint",
            "ssl_sess",
            "ssl_reused_sess",
            "ssl_failed_handshake",
            "h2_headers_rcvd",
            "h2_data_rcvd",
            "h2_settings_rcvd",
            "h2_rst_stream_rcvd",
            "h2_goaway_rcvd",
            "h2_detected_conn_protocol_errors",
            "h2_detected_strm_protocol_errors",
            "h2_rst_stream_resp",
            "h2_goaway_resp",
            "h2_open_connections",
            "h2_backend_open_streams",
            "h2_total_connections",
            "h2_backend_total_streams",
            "h1_open_connections",
            "h1_open_streams",
            "h1_total_connections",
            "h1_total_streams",
            "h1_bytes_in",
            "h1_bytes_out",
            "h1_spliced_bytes_in",
            "h1_spliced_bytes_out",
        ],
    ),
    (
        "server",
        &[
            "rate_max",
            "cli_abrt",
            "srv_abrt",
            "lastsess",
            "qtime",
            "ctime",
            "rtime",
            "ttime",
            "connect",
            "reuse",
            "srv_icur",
            "qtime_max",
            "ctime_max",
            "rtime_max",
            "ttime_max",
            "eint",
            "idle_conn_cur",
            "safe_conn_cur",
            "used_conn_cur",
            "need_conn_est",
            "ssl_sess",
            "ssl_reused_sess",
            "ssl_failed_handshake",
        ],
    ),
    (
        "BACKEND",
        &[
            "slim",
            "chkdown",
            "lastchg",
            "downtime",
            "rate_max",
            "cli_abrt",
            "srv_abrt",
            "comp_in",
            "comp_out",
            "comp_byp",
            "comp_rsp",
            "lastsess",
            "qtime",
            "ctime",
            "rtime",
            "ttime",
            "connect",
            "reuse",
            "cache_lookups",
            "cache_hits",
            "qtime_max",
            "ctime_max",
            "rtime_max",
            "ttime_max",
            "eint",
            "agg_server_status",
            "agg_server_check_status",
            "agg_check_status",
            "ssl_sess",
            "ssl_reused_sess",
            "ssl_failed_handshake",
            "h2_headers_rcvd",
            "h2_data_rcvd",
            "h2_settings_rcvd",
            "h2_rst_stream_rcvd",
            "h2_goaway_rcvd",
            "h2_detected_conn_protocol_errors",
            "h2_detected_strm_protocol_errors",
            "h2_rst_stream_resp",
            "h2_goaway_resp",
            "h2_open_connections",
            "h2_backend_open_streams",
            "h2_total_connections",
            "h2_backend_total_streams",
            "h1_open_connections",
            "h1_open_streams",
            "h1_total_connections",
            "h1_total_streams",
            "h1_bytes_in",
            "h1_bytes_out",
            "h1_spliced_bytes_in",
            "h1_spliced_bytes_out",
        ],
    ),
    (
        "listener",
        &[
            "bin",
            "bout",
            "dreq",
            "dresp",
            "ereq",
            "dcon",
            "dses",
            "wrew",
            "eint",
            "ssl_sess",
            "ssl_reused_sess",
            "ssl_failed_handshake",
        ],
    ),
];

/// `;csv` next to HAProxy 2.6's on the same haproxy.cfg and the same requests: the header line
/// byte for byte, lbha fills no column HAProxy leaves empty for that row type and leaves empty
/// only those of [`UNFILLED`], and the figures both keep are equal: requests, responses by
/// class (the backend counting what the client got, a rewritten status included), denials,
/// failed rewrites, sessions, status, weights, mode, algorithm, addresses.
#[test]
fn csv_columns_and_figures_match_haproxy() {
    let Some(bin) = haproxy_bin() else {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    };
    let _ = bin;
    let cfg = |web: u16, web2: u16, st: u16, app: u16| {
        format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:{web}\n  bind 127.0.0.1:{web2} name second\n  option socket-stats\n\
             \x20 http-request set-var(txn.p) path\n\
             \x20 http-request deny if {{ path /deny }}\n\
             \x20 http-response set-status 503 if {{ var(txn.p) -m str /ss }}\n\
             \x20 http-after-response set-header X-A1 %[str(abc)]\n\
             \x20 default_backend app\n\
             backend app\n  balance leastconn\n  server a 127.0.0.1:{app} weight 7 cookie ca\n\
             listen st\n  bind 127.0.0.1:{st}\n  stats enable\n  stats uri /st\n"
        )
    };
    let (ha, la) = (Backend::start("A"), Backend::start("A"));
    let (hweb, hweb2, hst) = (free_port(), free_port(), free_port());
    let (lweb, lweb2, lst) = (free_port(), free_port(), free_port());
    let (_hap, _hdir) = haproxy(&cfg(hweb, hweb2, hst, ha.port), hst);
    let _lbha = Lbha::start_haproxy(&cfg(lweb, lweb2, lst, la.port), &[lweb, lweb2, lst]);
    for (port, port2) in [(hweb, hweb2), (lweb, lweb2)] {
        for path in ["/", "/x", "/deny", "/ss"] {
            let _ = get(port, path);
        }
        let _ = get(port2, "/");
    }
    let fetch = |port: u16| -> (String, Vec<Vec<String>>) {
        let r = get(port, "/st;csv");
        assert_eq!(r.status, 200);
        let text = r.text();
        let mut lines = text.lines();
        let header = lines.next().unwrap().to_string();
        let rows = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
        (header, rows)
    };
    let ((hh, hrows), (lh, lrows)) = (fetch(hst), fetch(lst));
    assert_eq!(lh, hh, "the header line");
    let names: Vec<&str> = hh.trim_start_matches("# ").split(',').collect();
    let kind = |r: &[String]| match r[1].as_str() {
        "FRONTEND" | "BACKEND" => r[1].clone(),
        _ if r[32] == "3" => "listener".to_string(),
        _ => "server".to_string(),
    };
    let same = [
        "scur",
        "stot",
        "dreq",
        "dresp",
        "ereq",
        "econ",
        "eresp",
        "status",
        "weight",
        "act",
        "bck",
        "pid",
        "iid",
        "sid",
        "lbtot",
        "type",
        "rate_lim",
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
        "req_tot",
        "addr",
        "cookie",
        "mode",
        "algo",
        "wrew",
        "uweight",
        "-",
    ];
    let mut wrong = Vec::new();
    for (px, sv) in [("fe", "FRONTEND"), ("fe", "sock-1"), ("fe", "second"), ("app", "a"), ("app", "BACKEND")] {
        let find = |rows: &[Vec<String>]| {
            rows.iter().find(|r| r[0] == px && r[1] == sv).cloned().unwrap_or_else(|| panic!("no {px}/{sv}"))
        };
        let (h, l) = (find(&hrows), find(&lrows));
        assert_eq!(l.len(), h.len(), "{px}/{sv}: fields");
        let k = kind(&h);
        let unfilled = UNFILLED.iter().find(|(n, _)| *n == k).map(|(_, u)| *u).unwrap();
        for (i, name) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            let (hv, lv) = (&h[i], &l[i]);
            if hv.is_empty() && !lv.is_empty() {
                wrong.push(format!("{px}/{sv} {name}: HAProxy leaves it empty, lbha says {lv:?}"));
            } else if !hv.is_empty() && lv.is_empty() && !unfilled.contains(name) {
                wrong.push(format!("{px}/{sv} {name}: HAProxy says {hv:?}, lbha leaves it empty"));
            } else if !lv.is_empty() && unfilled.contains(name) {
                wrong.push(format!("{px}/{sv} {name}: listed as unfilled, lbha says {lv:?}"));
            } else if same.contains(name) && !unfilled.contains(name) && lv != hv {
                wrong.push(format!("{px}/{sv} {name}: HAProxy {hv:?}, lbha {lv:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
