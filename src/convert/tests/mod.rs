//! Conversion tests: each directive's mapping, checked on the TOML and, through
//! `config::parse`, on the snapshot lbha would run.

use super::*;
use crate::config::Snapshot;
use crate::config::snapshot::{ConnMode, HttpAction, Mode, Password, RedirectTarget};
use crate::health::{CheckKind, HttpVersion};
use std::path::PathBuf;
use std::time::Duration;

fn no_env(_: &str) -> Option<String> {
    None
}

pub(crate) fn conv(src: &str) -> Conversion {
    convert(Some(HaproxySource { text: src, file: "h.cfg" }), None, Path::new("."), &no_env)
        .unwrap_or_else(|e| panic!("conversion failed:\n{e}\n--- input\n{src}"))
}

fn conv_err(src: &str) -> Vec<String> {
    match convert(Some(HaproxySource { text: src, file: "h.cfg" }), None, Path::new("."), &no_env) {
        Ok(c) => panic!("converted:\n{}", c.toml),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn table(c: &Conversion) -> toml::Table {
    toml::from_str(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
}

fn snap(c: &Conversion) -> Snapshot {
    crate::config::parse(&c.toml, Path::new("lbha.toml"))
        .unwrap_or_else(|e| panic!("{}\n--- toml\n{}", locate_errors(&e, &c.origins).join("\n"), c.toml))
}

fn kinds(c: &Conversion) -> Vec<(usize, ReportKind)> {
    c.reports.iter().map(|r| (r.loc.line, r.kind)).collect()
}

const FE_BE: &str = "defaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend be\n";

#[test]
fn seed_and_corpus_files_convert_and_validate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0;
    for dir in ["seeds", "convert"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "cfg")) {
            if f.file_name().is_some_and(|n| n.to_string_lossy().contains("typo")) {
                continue;
            }
            let text = std::fs::read_to_string(f).unwrap();
            let c = convert(
                Some(HaproxySource { text: &text, file: &f.display().to_string() }),
                None,
                f.parent().unwrap(),
                &no_env,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let s = crate::config::parse(&c.toml, f);
            assert!(
                s.is_ok(),
                "{}: {}",
                f.display(),
                s.err().map(|e| locate_errors(&e, &c.origins).join("\n")).unwrap_or_default()
            );
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} files");
}

#[test]
fn deprecated_timeouts_and_connection_modes() {
    let c = conv(&format!(
        "{FE_BE}  contimeout 5000\n  clitimeout 3s\nbackend be\n  srvtimeout 2m\n  option forceclose\n  server a 127.0.0.1:1\n"
    ));
    let s = snap(&c);
    assert_eq!(s.frontends[0].timeouts.connect, Duration::from_millis(5000));
    assert_eq!(s.frontends[0].timeouts.client, Duration::from_secs(3));
    assert_eq!(s.backends[0].timeouts.server, Duration::from_secs(120));
    assert_eq!(s.backends[0].conn_mode, ConnMode::Close);
    assert_eq!(kinds(&c).iter().filter(|k| k.1 == ReportKind::Note).count(), 4);
    assert_eq!(c.strict_failures(), 0);

    for (opt, mode) in [
        ("option httpclose", ConnMode::Close),
        ("option http-server-close", ConnMode::ServerClose),
        ("option http-keep-alive", ConnMode::KeepAlive),
    ] {
        let c = conv(&format!(
            "defaults\n  mode http\n  {opt}\nfrontend fe\n  bind :80\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n"
        ));
        assert_eq!(snap(&c).frontends[0].conn_mode, mode, "{opt}");
    }
    // `no option httpclose` in a proxy cancels the defaults' httpclose.
    let c = conv(
        "defaults\n  mode http\n  option httpclose\nfrontend fe\n  bind :80\n  no option httpclose\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let s = snap(&c);
    assert_eq!((s.frontends[0].conn_mode, s.backends[0].conn_mode), (ConnMode::KeepAlive, ConnMode::Close));
}

#[test]
fn proxy_options() {
    let c = conv(&format!(
        "{FE_BE}  option forwardfor\n  maxconn 500\nbackend be\n  option redispatch\n  option allbackups\n  option abortonclose\n  retries 5\n  balance uri len 10 depth 2\n  hash-type consistent\n  server a 127.0.0.1:1\n"
    ));
    let s = snap(&c);
    assert!(s.frontends[0].forwardfor.is_some());
    assert_eq!(s.frontends[0].maxconn, Some(500));
    let b = &s.backends[0];
    assert!(b.redispatch);
    assert!(b.abortonclose);
    assert_eq!(b.retries, 5);
    let t = table(&c);
    assert_eq!(t["backend"][0]["balance"].as_str(), Some("uri len 10 depth 2"));
    assert_eq!(t["backend"][0]["hash_type"].as_str(), Some("consistent"));
    assert_eq!(t["backend"][0]["allbackups"].as_bool(), Some(true));
    assert!(c.reports.is_empty(), "{:?}", c.reports);

    let c = conv(&format!(
        "{FE_BE}  option forwardfor except 127.0.0.0/8\nbackend be\n  hash-type consistent sdbm\n  balance rdp-cookie\n  server a 127.0.0.1:1\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["hash_type"].as_str(), Some("consistent sdbm"));
    assert_eq!(table(&c)["backend"][0]["balance"].as_str(), Some("rdp-cookie"));
    snap(&c);

    // The balance options HAProxy 2.6 takes pass as written.
    for bal in ["uri path-only whole depth 2", "url_param id check_post 64", "hdr(Host) use_domain_only"] {
        let c = conv(&format!("{FE_BE}backend be\n  balance {bal}\n  server a 127.0.0.1:1\n"));
        assert!(c.reports.is_empty(), "{bal}: {:?}", c.reports);
        assert_eq!(table(&c)["backend"][0]["balance"].as_str(), Some(bal));
        assert_eq!(snap(&c).backends[0].algorithm, crate::balance::Algorithm::parse(bal).unwrap());
    }
}

#[test]
fn http_ignore_probes_and_its_no_form_convert() {
    let c = conv(
        "defaults\n  mode http\n  option http-ignore-probes\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend be\nfrontend fe2\n  bind 127.0.0.1:8081\n  no option http-ignore-probes\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    assert_eq!(t["defaults"]["http_ignore_probes"].as_bool(), Some(true));
    assert_eq!(t["frontend"][1]["http_ignore_probes"].as_bool(), Some(false));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!((s.frontends[0].ignore_probes, s.frontends[1].ignore_probes), (true, false));
}

#[test]
fn forwardfor_except_header_and_if_none_convert() {
    let c = conv(
        "defaults\n  mode http\n  option forwardfor except 10.0.0.0/8 if-none\nfrontend fe\n  bind :80\n  option forwardfor header X-Client except 127.0.0.0/8\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\nbackend inherits\n  server a 127.0.0.1:1\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let ip = |a: &str| a.parse::<std::net::IpAddr>().unwrap();
    let fe = s.frontends[0].forwardfor.as_ref().unwrap();
    assert!(fe.except.unwrap().contains(ip("127.0.0.1")) && !fe.except.unwrap().contains(ip("10.0.0.1")));
    assert_eq!(fe.header.as_ref().map(|h| h.as_str()), Some("x-client"));
    assert!(!fe.if_none, "the frontend's own line replaces the defaults' options");
    let be = s.backends[1].forwardfor.as_ref().unwrap();
    assert!(be.except.unwrap().contains(ip("10.9.9.9")) && be.if_none && be.header.is_none());
    let c = conv_err("frontend fe\n  mode http\n  bind :80\n  option forwardfor except\n");
    assert!(c[0].contains("`option forwardfor` takes"), "{c:?}");
    let c = conv("frontend fe\n  mode http\n  bind :80\n  option forwardfor if-none\n  no option forwardfor\n");
    assert!(snap(&c).frontends[0].forwardfor.is_none());
}

#[test]
fn servers_and_default_server() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  default-server inter 3s fall 2 weight 5\n  server a 127.0.0.1:81 check rise 4 fastinter 500 downinter 1m addr 127.0.0.9 port 8081\n  server b [::1]:82 backup disabled maxconn 7 weight 0 no-check\n  server c ::1:83 cookie C slowstart 10s observe layer7 check\n"
    ));
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    assert_eq!(sv.len(), 3);
    let ca = sv[0].check.as_ref().unwrap();
    assert_eq!(
        (ca.inter, ca.fastinter, ca.downinter, ca.rise, ca.fall),
        (Duration::from_secs(3), Duration::from_millis(500), Duration::from_secs(60), 4, 2)
    );
    assert_eq!(ca.addr.to_string(), "127.0.0.9:8081");
    assert_eq!(sv[0].weight, 5);
    assert!(sv[1].backup && sv[1].disabled && sv[1].check.is_none());
    assert_eq!((sv[1].weight, sv[1].maxconn), (0, Some(7)));
    assert_eq!(sv[2].addr.to_string(), "[::1]:83");
    // `cookie C` means nothing without a backend cookie.
    assert_eq!(kinds(&c), [(10, ReportKind::Note)]);
    assert_eq!(sv[2].observe.map(|o| o.observe), Some(crate::health::passive::Observe::Layer7));
    assert_eq!(table(&c)["backend"][0]["servers"][2]["slowstart"].as_str(), Some("10s"));

    // Unknown parameters and addresses lbha cannot use are reported, never dropped silently.
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:1 chek\n  server b 10.0.0.1\n  server c /run/app.sock\n"
    ));
    assert_eq!(kinds(&c), [(7, ReportKind::Unknown), (8, ReportKind::Unsupported), (9, ReportKind::Unsupported)]);
    assert_eq!(snap(&c).backends[0].servers.len(), 1);
}

/// Every `stick-table` argument of HAProxy 2.6 that lbha keeps.
#[test]
fn stick_tables_in_full() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  stick-table type ipv6 size 1m expire 10s store http_req_rate(10s),conn_cur,gpc(2),gpc_rate(2,1m)\n  default_backend st_bin\nbackend st_bin\n  stick-table type binary len 8 size 1k nopurge peers mesh store bytes_out_cnt\nglobal\n  localpeer lb1\npeers mesh\n  peer lb1 127.0.0.1:10000\n  peer lb2 127.0.0.2:10000\n",
    );
    let t = table(&c);
    let fe = &t["frontend"][0]["stick_table"];
    assert_eq!(fe["type"].as_str(), Some("ipv6"));
    let store: Vec<&str> = fe["store"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(store, ["http_req_rate(10s)", "conn_cur", "gpc(2)", "gpc_rate(2,1m)"]);
    let be = &t["backend"][0]["stick_table"];
    assert_eq!(
        (be["type"].as_str(), be["len"].as_integer(), be["nopurge"].as_bool()),
        (Some("binary"), Some(8), Some(true))
    );
    assert_eq!(be["peers"].as_str(), Some("mesh"));
    let peers = &t["peers"][0];
    assert_eq!(peers["name"].as_str(), Some("mesh"));
    let lines: Vec<&str> = peers["peer"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(lines, ["lb1 127.0.0.1:10000", "lb2 127.0.0.2:10000"]);
    assert_eq!(t["global"]["localpeer"].as_str(), Some("lb1"));
    let s = snap(&c);
    assert_eq!(s.peers[0].remotes[0].name, "lb2");
    assert_eq!(s.stick_tables.len(), 2);
}

#[test]
fn peers_table_lines() {
    let c = conv(
        "global\n  localpeer lb1\npeers mesh\n  peer lb1 127.0.0.1:10000\n  table t1 type string len 16 size 1k expire 5m nopurge store gpc0,http_req_rate(10s)\n  table t2 type ip size 10 peers other\n",
    );
    let t = table(&c);
    let tables = t["peers"][0]["table"].as_array().unwrap();
    assert!(c.toml.contains("{ name = \"t1\", type = \"string\""), "name first:\n{}", c.toml);
    let t1 = &tables[0];
    assert_eq!(
        (t1["name"].as_str(), t1["type"].as_str(), t1["len"].as_integer()),
        (Some("t1"), Some("string"), Some(16))
    );
    assert_eq!((t1["expire"].as_str(), t1["nopurge"].as_bool()), (Some("5m"), Some(true)));
    // `peers` is no argument of a peers section's table (2.6 refuses it): reported, left out.
    assert!(tables[1].get("peers").is_none());
    assert_eq!(kinds(&c), [(6, ReportKind::Approximated)]);
    let s = snap(&c);
    let names: Vec<&str> = s.stick_tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["mesh/t1", "mesh/t2"]);
}

#[test]
fn persistence() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  default_backend web\nbackend web\n  cookie SERVERID insert indirect nocache httponly domain .example.org maxidle 30m\n  server a 127.0.0.1:1 cookie A check on-marked-down shutdown-sessions\n  server b 127.0.0.1:2\n  server c 127.0.0.1:3 backup\nbackend sticky\n  stick-table type ip size 200k expire 30m\n  stick on src\n  stick match req.cook(uid) table sticky if { path_beg /app }\n  server a 127.0.0.1:4\nbackend learned\n  appsession JSESSIONID len 64 timeout 5h request-learn prefix\n  server a 127.0.0.1:5\nbackend tcp_one\n  mode tcp\n  cookie SRV insert\n  server a 127.0.0.1:6 cookie X\n",
    );
    let t = table(&c);
    let web = &t["backend"][0];
    assert_eq!(web["cookie"]["name"].as_str(), Some("SERVERID"));
    assert_eq!(web["cookie"]["mode"].as_str(), Some("insert"));
    assert_eq!(web["cookie"]["domain"].as_str(), Some(".example.org"));
    assert_eq!(web["servers"][0]["on_marked_down"].as_str(), Some("shutdown-sessions"));
    // lbha needs a value on every non-backup server of a cookie backend: the name is used.
    assert_eq!(web["servers"][1]["cookie"].as_str(), Some("b"));
    assert!(web["servers"][2].get("cookie").is_none());
    let sticky = &t["backend"][1];
    assert_eq!(sticky["stick_table"]["size"].as_str(), Some("200k"));
    assert_eq!(sticky["stick"][0]["on"].as_str(), Some("src"));
    assert_eq!(sticky["stick"][1]["table"].as_str(), Some("sticky"));
    assert_eq!(sticky["stick"][1]["if"].as_str(), Some("{ path_beg /app }"));
    assert_eq!(t["backend"][2]["appsession"]["request_learn"].as_bool(), Some(true));
    assert!(t["backend"][3].get("cookie").is_none());
    assert!(t["backend"][3]["servers"][0].get("cookie").is_none());
    assert_eq!(
        kinds(&c),
        [
            (9, ReportKind::Approximated),
            (17, ReportKind::Approximated),
            (21, ReportKind::Ignored),
            (22, ReportKind::Note)
        ]
    );
    snap(&c);
}

#[test]
fn http_checks() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  option httpchk HEAD /index.jsp HTTP/1.1\\r\\nHost:\\ www.xxx.com\n  http-check expect status 200-399\n  server a 127.0.0.1:1 check\n"
    ));
    let s = snap(&c);
    let CheckKind::Http(hc) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else {
        panic!("not an http check")
    };
    assert_eq!((hc.method.as_str(), hc.uri.as_str(), hc.version), ("HEAD", "/index.jsp", HttpVersion::Http11));
    assert_eq!(hc.header("Host"), Some("www.xxx.com"));
    assert!(c.reports.is_empty());

    // HAProxy 2.2's `http-check send` and a negated string expect.
    let c = conv(&format!(
        "{FE_BE}backend be\n  option httpchk\n  http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.org\n  http-check expect ! string maintenance\n  server a 127.0.0.1:1 check\n"
    ));
    let s = snap(&c);
    let CheckKind::Http(hc) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else {
        panic!("not an http check")
    };
    assert_eq!((hc.method.as_str(), hc.uri.as_str()), ("GET", "/health"));
    assert_eq!(hc.header("host"), Some("example.org"));
    assert!(hc.expect.negate);

    // Defaults' check settings merge into a backend's own check table.
    let c = conv(
        "defaults\n  mode http\n  option httpchk GET /\n  timeout check 2s\nfrontend fe\n  bind :80\n  default_backend be\nbackend be\n  http-check expect rstatus ^2\n  server a 127.0.0.1:1 check\n",
    );
    let t = table(&c);
    assert_eq!(t["backend"][0]["check"]["http"].as_str(), Some("GET /"));
    snap(&c);

    // Protocol checks are kept (see tests/server_side.rs).
    let c = conv(&format!("{FE_BE}backend be\n  option mysql-check user haproxy\n  server a 127.0.0.1:1 check\n"));
    assert!(kinds(&c).is_empty());
    assert!(matches!(snap(&c).backends[0].servers[0].check.as_ref().unwrap().kind, CheckKind::Seq(_)));
}

#[test]
fn external_check() {
    let c = conv(&format!(
        "global\n  external-check\n{FE_BE}backend be\n  option external-check\n  external-check command /bin/true\n  external-check path /usr/bin:/bin\n  server a 127.0.0.1:1 check\n"
    ));
    let s = snap(&c);
    assert!(matches!(s.backends[0].servers[0].check.as_ref().unwrap().kind, CheckKind::External(_)));
    assert_eq!(kinds(&c), [(2, ReportKind::Ignored)]);
    assert!(
        conv_err(&format!("{FE_BE}backend be\n  option external-check\n  server a 127.0.0.1:1 check\n"))[0]
            .starts_with("h.cfg:7:")
    );
}

#[test]
fn stats_page() {
    let c = conv(
        "listen st\n  bind :8404\n  mode http\n  stats enable\n  stats uri /admin?stats\n  stats realm Private\\ lands\n  stats auth a:1\n  stats auth b:2\n  stats refresh 30s\n  stats hide-version\n  stats admin if TRUE\n",
    );
    let s = snap(&c);
    let st = s.frontends[0].stats.as_ref().unwrap();
    assert_eq!((st.uri.as_str(), st.realm.as_str()), ("/admin?stats", "Private lands"));
    assert_eq!(st.auth, [("a".into(), "1".into()), ("b".into(), "2".into())]);
    assert_eq!((st.refresh, st.hide_version), (Some(Duration::from_secs(30)), true));
    assert!(st.admin.is_some());
    assert_eq!(table(&c)["listen"][0]["stats"]["admin"].as_str(), Some("if TRUE"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    // `stats` in a backend: its page answers what `use_backend` sends there.
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:1\nbackend st\n  stats enable\n  stats uri /haproxy?stats\n  stats auth admin:secret\n  acl lan src 10.0.0.0/8\n  stats admin if lan\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let st = s.backend("st").unwrap().1.stats.as_ref().unwrap();
    assert_eq!((st.uri.as_str(), st.auth.len(), st.admin.is_some()), ("/haproxy?stats", 1, true));
}

#[test]
fn acls_and_switching() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  acl php path_end .php\n  acl php path_end .php5\n  acl api path_beg -i /api/\n  acl ssl ssl_fc\n  use_backend php if php !api\n  use_backend api if api || { hdr(host) -i api.example.org }\n  use_backend api if ssl\n  use_backend php unless api\n  default_backend php\nbackend php\n  server a 127.0.0.1:1\nbackend api\n  server b 127.0.0.1:2\n",
    );
    let t = table(&c);
    let acl = t["frontend"][0]["acl"].as_array().unwrap();
    assert_eq!(acl[0]["cond"].as_str(), Some("path_end .php .php5"));
    assert_eq!(acl[1]["cond"].as_str(), Some("path_beg -i /api/"));
    assert_eq!(acl[2]["cond"].as_str(), Some("ssl_fc"));
    assert_eq!(acl.len(), 3);
    let ub = t["frontend"][0]["use_backend"].as_array().unwrap();
    assert_eq!(ub[1]["if"].as_str(), Some("api || { hdr(host) -i api.example.org }"));
    assert_eq!(ub[2]["if"].as_str(), Some("ssl"));
    assert_eq!(ub[3]["unless"].as_str(), Some("api"));
    assert_eq!(ub.len(), 4);
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!(s.frontends[0].switching.len(), 4);

    // Quoted patterns survive the trip into lbha's condition syntax.
    let c = conv(&format!(
        "{FE_BE}  acl q hdr(x-name) -m str \"it's me\" 'a \"b\"' c\\ d\n  http-request deny if q\nbackend be\n  server a 127.0.0.1:1\n"
    ));
    assert_eq!(
        table(&c)["frontend"][0]["acl"][0]["cond"].as_str(),
        Some(r#"hdr(x-name) -m str 'it'"'"'s me' 'a "b"' 'c d'"#)
    );
    snap(&c);
}

#[test]
fn lost_protections_are_reported_as_weaker() {
    // Issue 14 item 4: an access rule, auth or stats protection that cannot be converted is
    // `Weakens`, which `lbha convert` and `--haproxy-config` refuse without --allow-weaker.
    let c = conv(&format!(
        "{FE_BE}  acl bad req.hdr(host),lower -m str evil\n  http-request deny if bad\n  http-request auth realm x\n  tcp-request connection reject if {{ src 10.0.0.0/8 }}\n  http-request set-var(txn.x) str(1)\nbackend be\n  server a 127.0.0.1:1\nlisten st\n  bind :8404\n  mode http\n  stats enable\n  stats http-request auth unless {{ src 127.0.0.1 }}\n"
    ));
    let weak: Vec<usize> = c.weakened().iter().map(|r| r.loc.line).collect();
    // The acl with a converter, `auth`, `tcp-request connection` and `set-var` convert now.
    assert_eq!(weak, [17], "{:?}", c.reports);
    assert!(super::weaker_error(&c.weakened()).contains("--allow-weaker"));
}

/// A disabled section, a bind's maxconn and http-after-response are protections HAProxy keeps;
/// `tcp-request inspect-delay` alone protects nothing (it was judged by its delay value).
#[test]
fn disabled_bind_maxconn_and_after_response_are_weaker_inspect_delay_is_not() {
    let c = conv(&format!(
        "{FE_BE}  bind :81 maxconn 10\n  http-after-response set-header X-Frame-Options DENY\n  tcp-request inspect-delay 5s\nbackend be\n  server a 127.0.0.1:1\nlisten off\n  disabled\n  bind :82\n  server a 127.0.0.1:1\n"
    ));
    let weak: Vec<usize> = c.weakened().iter().map(|r| r.loc.line).collect();
    // http-after-response converts now.
    assert_eq!(weak, [6, 12], "{:?}", c.reports);
    assert!(super::weaker_error(&c.weakened()).contains("--allow-weaker"));
}

/// Global connection, session and TLS rates and `rate-limit sessions` convert: none weakens.
#[test]
fn accept_rate_limits() {
    let c = conv(&format!(
        "global\n  maxconnrate 100\n  maxsessrate 50\n  maxsslrate 20\n{FE_BE}  rate-limit sessions 10\nbackend be\n  server a 127.0.0.1:1\n"
    ));
    assert_eq!(kinds(&c), []);
    assert!(c.weakened().is_empty());
    let s = snap(&c);
    let g = &s.global;
    assert_eq!((g.maxconnrate, g.maxsessrate, g.maxsslrate), (Some(100), Some(50), Some(20)));
    assert_eq!(s.frontends[0].rate_limit_sessions, Some(10));
    let e = conv_err(&format!("{FE_BE}  rate-limit connections 10\nbackend be\n  server a 127.0.0.1:1\n"));
    assert!(e.iter().any(|m| m.contains("expected `rate-limit sessions <rate>`")), "{e:?}");
}

/// `option tcpka` sets each side the section has; `timeout client-fin`/`server-fin` convert.
#[test]
fn tcp_keepalive_and_fin_timeouts() {
    let c = conv(
        "defaults\n  mode tcp\n  timeout client-fin 5s\n  timeout server-fin 7s\nfrontend fe\n  bind 127.0.0.1:9000\n  option tcpka\n  default_backend be\nbackend be\n  option tcpka\n  server a 127.0.0.1:1\nlisten both\n  bind 127.0.0.1:9001\n  option clitcpka\n  server a 127.0.0.1:2\nlisten none\n  bind 127.0.0.1:9002\n  option tcpka\n  no option srvtcpka\n  server a 127.0.0.1:3\n",
    );
    assert_eq!(kinds(&c), []);
    let s = snap(&c);
    let fe = |n: &str| s.frontends.iter().find(|f| f.name == n).unwrap();
    let be = |n: &str| s.backends.iter().find(|b| b.name == n).unwrap();
    assert!(fe("fe").clitcpka && be("be").srvtcpka);
    assert!(fe("both").clitcpka && !be("both").srvtcpka);
    assert!(fe("none").clitcpka && !be("none").srvtcpka);
    assert_eq!(fe("fe").timeouts.client_fin, Some(Duration::from_secs(5)));
    assert_eq!(be("be").timeouts.server_fin, Some(Duration::from_secs(7)));
    assert!(table(&c)["frontend"][0].get("srvtcpka").is_none(), "a frontend has no server side");
}

/// `option socket-stats`: in frontends, listens and defaults (`no option` undoes it), never
/// in a backend (HAProxy ignores it there with a warning).
#[test]
fn socket_stats_converts() {
    let c = conv(
        "defaults\n  mode http\n  option socket-stats\nfrontend fe\n  bind 127.0.0.1:9000\n  bind 127.0.0.1:9001 name b2\n  default_backend be\nfrontend off\n  bind 127.0.0.1:9002\n  no option socket-stats\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(kinds(&c), []);
    let s = snap(&c);
    let fe = |n: &str| s.frontends.iter().find(|f| f.name == n).unwrap();
    assert!(fe("fe").socket_stats && !fe("off").socket_stats);
    let c = conv(
        "frontend fe\n  bind 127.0.0.1:9000\n  option socket-stats\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(table(&c)["frontend"][0]["socket_stats"].as_bool(), Some(true), "{}", c.toml);
}

/// `attr` and `dynamic` with `dynamic-cookie-key` (in the backend or inherited from defaults):
/// servers without `cookie` get HAProxy's derived value, not their name.
#[test]
fn cookie_attr_and_dynamic() {
    let c = conv(
        "defaults\n  mode http\n  dynamic-cookie-key inherited\nbackend web\n  cookie SRV insert indirect nocache secure attr \"SameSite=None\" attr Partitioned dynamic\n  dynamic-cookie-key \"s3cr3t key\"\n  server a 127.0.0.1:18832\n  server b 127.0.0.1:18834 cookie fixed\nbackend plain\n  cookie SRV insert dynamic\n  server a 127.0.0.1:2\n",
    );
    assert_eq!(kinds(&c), []);
    let t = table(&c);
    let web = &t["backend"][0];
    let attrs: Vec<&str> = web["cookie"]["attr"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(attrs, ["SameSite=None", "Partitioned"]);
    assert_eq!(web["cookie"]["dynamic"].as_bool(), Some(true));
    assert_eq!(web["dynamic_cookie_key"].as_str(), Some("s3cr3t key"));
    assert!(web["servers"][0].get("cookie").is_none());
    let s = snap(&c);
    let spec = s.backends[0].persist.cookie.as_ref().unwrap();
    assert_eq!(spec.attrs, "SameSite=None; Partitioned");
    // The value HAProxy 2.6.12 sent for this server with this key.
    let cookies: Vec<Option<&str>> = s.backends[0].persist.servers.iter().map(|k| k.cookie.as_deref()).collect();
    assert_eq!(cookies, [Some("ee2fbd396a3da11a"), Some("fixed")]);
    // The key from defaults reaches a backend without its own.
    let plain = s.backends[1].persist.servers[0].cookie.clone().unwrap();
    assert_eq!(plain, crate::config::persist_spec::dynamic_cookie("inherited", "127.0.0.1:2".parse().unwrap()));
    // `attr` refuses what HAProxy refuses.
    let e = conv_err("defaults\n  mode http\nbackend web\n  cookie SRV insert attr\n  server a 127.0.0.1:1 cookie a\n");
    assert!(e.iter().any(|m| m.contains("`attr` needs a value")), "{e:?}");
    let e = conv_err(
        "defaults\n  mode http\nbackend web\n  cookie SRV insert attr \"a;b\"\n  server a 127.0.0.1:1 cookie a\n",
    );
    assert!(e.iter().any(|m| m.contains("no control characters or ';'")), "{e:?}");
}

/// Issue 14 item 29: HAProxy's seconds stay seconds; what lbha cannot do is reported as such.
#[test]
fn units_and_reports_as_haproxy_means_them() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  stick-table type ip size 1k expire 30s\n  acl h req.hdr(host),lower -m str a\n  default_backend be\nbackend be\n  stick-table type ip size 1k\n  stick on dst\n  cookie SRV insert maxidle 30 maxlife 60\n  server a 127.0.0.1:1 cookie a\nlisten st\n  bind :8404\n  stats enable\n  stats refresh 30\n",
    );
    let s = snap(&c);
    let st = s.frontends.iter().find_map(|f| f.stats.as_ref()).unwrap();
    assert_eq!(st.refresh, Some(Duration::from_secs(30)));
    let t = table(&c);
    assert_eq!(t["backend"][0]["cookie"]["maxidle"].as_str(), Some("30s"));
    assert_eq!(t["backend"][0]["cookie"]["maxlife"].as_str(), Some("60s"));
    assert_eq!(table(&c)["frontend"][0]["stick_table"]["expire"].as_str(), Some("30s"), "frontends keep their tables");
    assert!(c.reports.iter().all(|r| r.loc.line != 6), "converters in acls convert: {:?}", c.reports);
    // Any sample expression is a stick pattern (issue 15): `dst` converts as written.
    assert!(c.reports.iter().all(|r| r.loc.line != 10), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["stick"][0]["on"].as_str(), Some("dst"));
    let c = conv(
        "defaults\n  mode http\nbackend be\n  stick-table type string size 1k\n  stick on req.hdr(x-user),lower\n  stick store-response res.hdr(x),nope\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(table(&c)["backend"][0]["stick"][0]["on"].as_str(), Some("req.hdr(x-user),lower"));
    let r = c.reports.iter().find(|r| r.loc.line == 6).expect("the unknown converter is reported");
    assert!(r.kind == ReportKind::Unsupported && r.message.contains("unknown converter"), "{}", r.message);
    // `option httplog clf` keeps the CLF format.
    let c = conv(
        "global\n  log 127.0.0.1:514 local0\ndefaults\n  mode http\n  log global\nfrontend fe\n  bind :80\n  option httplog clf\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(table(&c)["frontend"][0]["httplog"].as_str(), Some("clf"));
    let s = snap(&c);
    assert!(s.frontends[0].log_clf && s.frontends[0].log == crate::config::snapshot::LogMode::Http);
}

/// Issue 14 item 31: `.if` blocks are evaluated as HAProxy 2.6 does; the lines it would not read
/// are not converted.
#[test]
fn conditional_blocks_are_evaluated() {
    let env = |n: &str| (n == "WITH_API").then(|| "yes".to_string());
    let src = "defaults\n  mode http\n.if defined(WITH_API) && streq(\"$WITH_API\",yes)\nfrontend api\n  bind 127.0.0.1:8081\n  default_backend be\n.endif\n.if version_before(2.4)\nfrontend old\n  bind 127.0.0.1:8082\n  default_backend be\n.elif feature(OPENSSL) && !defined(NOPE)\nfrontend new\n  bind 127.0.0.1:8083\n  default_backend be\n.else\nfrontend other\n  bind 127.0.0.1:8084\n.endif\nbackend be\n  server a 127.0.0.1:1\n.if 0\n  server b 127.0.0.1:2\n  bogus keyword here\n.endif\n";
    let c = convert(Some(HaproxySource { text: src, file: "h.cfg" }), None, Path::new("."), &env).unwrap();
    let s = snap(&c);
    let names: Vec<&str> = s.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["api", "new"]);
    assert_eq!(s.backends[0].servers.len(), 1);
    assert!(c.reports.iter().any(|r| r.loc.line == 8 && r.message.starts_with("false")), "{:?}", c.reports);
    // What HAProxy refuses is an error, located.
    for (bad, want) in [
        (".if foo(1)\n.endif\n", "h.cfg:1: unparsable conditional expression 'foo(1)'"),
        (".if 1\n", "h.cfg:1: non-terminated '.if' block"),
        (".endif\n", "h.cfg:1: lone '.endif'"),
        (".if 1\n.else\n.else\n.endif\n", "h.cfg:3: '.else' after '.else'"),
    ] {
        let errs = conv_err(bad);
        assert!(errs.iter().any(|e| e.starts_with(want)), "{bad}: {errs:?}");
    }
}

#[test]
fn several_criteria_of_one_acl_are_ored() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  acl st path_end .css\n  acl st path_beg /static/\n  acl st path_end .js\n  acl x hdr(x-a) 1\n  use_backend s if st x || x\n  http-request deny if !st x\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\nbackend s\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    let acl = t["frontend"][0]["acl"].as_array().unwrap();
    assert_eq!(acl[0]["cond"].as_str(), Some("path_end .css .js"));
    assert_eq!((acl[1]["name"].as_str(), acl[1]["cond"].as_str()), (Some("st.2"), Some("path_beg /static/")));
    assert_eq!(t["frontend"][0]["use_backend"][0]["if"].as_str(), Some("st x || st.2 x || x"));
    assert_eq!(t["frontend"][0]["http_request"][0]["deny"].as_table().map(|_| ()), Some(()));
    assert_eq!(t["frontend"][0]["http_request"][0]["if"].as_str(), Some("!st !st.2 x"));
    assert!(c.weakened().is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!(s.frontends[0].switching.len(), 1);
}

#[test]
fn http_request_and_response_rules() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  redirect prefix https://example.org code 301 if { path_beg /old }\n  http-request return status 200 content-type text/plain string ok hdr X-A 1 if { path /health }\n  http-request deny deny_status 429 if { path_beg /slow }\n  http-request set-header X-Forwarded-Proto http\n  http-request add-header X-Pct 100%%\n  http-request del-header X-Debug\n  http-request redirect location /new code 302 if { path /old2 }\n  block if { path_beg /admin }\n  http-request set-header X-Id %[rand]\n  http-request tarpit\n  http-response set-header X-Served-By lbha\n  http-response del-header Server\n  http-response deny\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let s = snap(&c);
    let f = &s.frontends[0];
    let acts: Vec<String> = f
        .http_request
        .iter()
        .map(|r| format!("{:?}", r.action).split([' ', '(', '{']).next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        acts,
        [
            "Deny",
            "Return",
            "Deny",
            "SetHeader",
            "AddHeader",
            "DelHeader",
            "Redirect",
            "SetHeader",
            "Tarpit",
            "Redirect"
        ]
    );
    match &f.http_request[1].action {
        HttpAction::Return { status, headers, body } => {
            assert_eq!(status.as_u16(), 200);
            assert_eq!(&body[..], b"ok");
            assert_eq!(headers.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    match &f.http_request[4].action {
        HttpAction::AddHeader(n, v) => {
            assert_eq!(n.as_str(), "x-pct");
            assert!(matches!(v.segments.as_slice(), [crate::sample::Segment::Literal(t)] if t == b"100%"));
        }
        other => panic!("{other:?}"),
    }
    match &f.http_request[9].action {
        HttpAction::Redirect { target: RedirectTarget::Prefix(p), code, .. } => {
            assert!(
                matches!(p.segments.as_slice(), [crate::sample::Segment::Literal(t)] if t == b"https://example.org")
            );
            assert_eq!(code.as_u16(), 301);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.http_response.len(), 3);
    assert_eq!(kinds(&c), [(12, ReportKind::Note)]);
}

/// Issue 15: every action of the rule language converts one to one, in frontends and backends.
#[test]
fn rule_language_actions_convert() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request set-var(txn.h) req.hdr(host),lower\n  http-request set-header X-H %[var(txn.h)]\n  http-request replace-header X-A ^a(.*) b\\1\n  http-request replace-value X-B ^c$ d\n  http-request set-path /p%[path]\n  http-request set-query q=1\n  http-request replace-path ^/old(.*) /new\\1\n  http-request replace-uri ^(.*)$ \\1\n  http-request set-method GET\n  http-request del-header X-S -m beg\n  http-request unset-var(txn.h)\n  http-request allow if { src 127.0.0.1 }\n  http-request auth realm Private if { path_beg /p }\n  http-request deny deny_status 429 content-type text/plain string busy\n  http-request return status 200 lf-string \"hi %[src]\"\n  redirect scheme https code 301 if !{ ssl_fc }\n  http-request redirect location /x%[path] drop-query append-slash set-cookie A=1 clear-cookie B\n  http-response set-status 299 reason Fine\n  http-response deny if { status 500 }\n  http-after-response set-header X-F DENY\n  monitor-uri /up\n  monitor fail if { nbsrv(be) lt 1 }\n  use_backend %[req.hdr(host)]\n  default_backend be\nbackend be\n  acl p path_beg /p\n  http-request set-header X-B 1 if p\n  http-response add-header X-R 1\n  http-after-response del-header Server\n  server a 127.0.0.1:1\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let f = &s.frontends[0];
    let acts: Vec<String> = f
        .http_request
        .iter()
        .map(|r| format!("{:?}", r.action).split([' ', '(', '{']).next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        acts,
        [
            "SetVar",
            "SetHeader",
            "ReplaceHeader",
            "ReplaceHeader",
            "SetPath",
            "SetQuery",
            "ReplacePath",
            "ReplaceUri",
            "SetMethod",
            "DelHeaders",
            "UnsetVar",
            "Allow",
            "Auth",
            "ReturnLf",
            "ReturnLf",
            "Redirect",
            "Redirect"
        ]
    );
    assert_eq!((f.http_response.len(), f.http_after_response.len()), (2, 1));
    assert_eq!((f.dyn_switching.len(), f.monitor.is_some()), (1, true));
    let b = &s.backends[0];
    assert_eq!((b.acls.len(), b.http_request.len(), b.http_response.len(), b.http_after_response.len()), (1, 1, 1, 1));
}

#[test]
fn binds() {
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind :80,127.0.0.1:81\n  bind ipv4@*:82 name web\n  bind [::1]:83\n  bind :::84\n  bind 127.0.0.1:9000-9002\n  bind :85 accept-proxy\n  bind /run/x.sock\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let s = snap(&c);
    let b: Vec<String> = s.frontends[0].binds.iter().map(|b| b.addr.to_string()).collect();
    assert_eq!(
        b,
        [
            "0.0.0.0:80",
            "127.0.0.1:81",
            "0.0.0.0:82",
            "[::1]:83",
            "[::]:84",
            "127.0.0.1:9000",
            "127.0.0.1:9001",
            "127.0.0.1:9002",
            "0.0.0.0:85"
        ]
    );
    assert_eq!(table(&c)["frontend"][0]["bind"][2]["name"].as_str(), Some("web"));
    // `accept-proxy` is kept; the unix socket bind is not supported.
    assert_eq!(kinds(&c), [(10, ReportKind::Unsupported)]);
    assert!(s.frontends[0].binds[8].accept_proxy);
    assert_eq!(s.frontends[0].mode, Mode::Tcp);
    // `:::84` keeps HAProxy's meaning (the system's dual-stack default); `v4v6` and `v6only` are kept.
    assert_eq!(s.frontends[0].binds[4].v6only, None);
    let c = conv(
        "frontend fe\n  mode tcp\n  bind :::86 v4v6\n  bind :::87 v6only\n  bind 0.0.0.0:86\n  default_backend be\nbackend be\n  mode tcp\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(kinds(&c), []);
    let s = snap(&c);
    let v6: Vec<Option<bool>> = s.frontends[0].binds.iter().map(|b| b.v6only).collect();
    assert_eq!(v6, [Some(false), Some(true), None]);
    assert_eq!(table(&c)["frontend"][0]["bind"][1].as_str(), Some("[::]:87 v6only"));

    // TLS termination, ALPN, cleartext HTTP/2, the TLS policy and client verification keep their
    // options (file paths made absolute); what lbha lacks is reported.
    let c = conv(
        "frontend fe\n  mode http\n  bind :443 ssl crt certs/site.pem alpn h2,http/1.1 ciphers HIGH no-tlsv11 strict-sni npn h2\n  bind :8080 proto h2\n  bind :8443 ssl crt /etc/ssl/a.pem verify required ca-file ca.pem crl-file /etc/ssl/crl.pem\n",
    );
    let t = table(&c);
    let binds = t["frontend"][0]["bind"].as_array().unwrap();
    assert_eq!(
        binds[0].as_str(),
        Some("*:443 ssl crt ./certs/site.pem alpn h2,http/1.1 ciphers HIGH no-tlsv11 strict-sni")
    );
    assert_eq!(binds[1].as_str(), Some("*:8080 proto h2"));
    assert_eq!(
        binds[2].as_str(),
        Some("*:8443 ssl crt /etc/ssl/a.pem verify required ca-file ./ca.pem crl-file /etc/ssl/crl.pem")
    );
    assert_eq!(kinds(&c), [(3, ReportKind::Unsupported)], "npn is not kept");
}

#[test]
fn tls_defaults_and_server_policy() {
    let c = conv(&format!(
        "global\n  ssl-default-bind-ciphers ECDHE+AESGCM:!aNULL\n  ssl-default-bind-ciphersuites TLS_AES_256_GCM_SHA384\n  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n  ssl-default-server-options no-tlsv13\n{FE_BE}backend be\n  server a 127.0.0.1:443 ssl verify none crt client.pem ciphers ECDHE-RSA-AES128-GCM-SHA256 ssl-min-ver TLSv1.2\n"
    ));
    let t = table(&c);
    let g = &t["global"];
    assert_eq!(g["ssl_default_bind_ciphers"].as_str(), Some("ECDHE+AESGCM:!aNULL"));
    assert_eq!(g["ssl_default_bind_options"].as_str(), Some("ssl-min-ver TLSv1.2 no-tls-tickets"));
    assert_eq!(g["ssl_default_server_options"].as_str(), Some("no-tlsv13"));
    let a = &t["backend"][0]["servers"][0];
    assert_eq!(
        (a["crt"].as_str(), a["ciphers"].as_str(), a["ssl_min_ver"].as_str()),
        (Some("./client.pem"), Some("ECDHE-RSA-AES128-GCM-SHA256"), Some("TLSv1.2"))
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
}

#[test]
fn ca_base_and_crt_base_keep_relative_paths_for_lbha_to_resolve() {
    let c = conv(
        "global\n  ca-base /etc/ssl/certs\n  crt-base private\nfrontend fe\n  mode http\n  bind :443 ssl crt site.pem crt-list list.txt ca-file ca.pem crl-file /abs/crl.pem verify optional no-ca-names\n  default_backend be\nbackend be\n  server a 127.0.0.1:443 ssl ca-file ca.pem crt client.pem\n",
    );
    let t = table(&c);
    assert_eq!(t["global"]["ca_base"].as_str(), Some("/etc/ssl/certs"));
    assert_eq!(t["global"]["crt_base"].as_str(), Some("./private"));
    assert_eq!(
        t["frontend"][0]["bind"][0].as_str(),
        Some(
            "*:443 ssl crt site.pem crt-list list.txt ca-file ca.pem crl-file /abs/crl.pem verify optional no-ca-names"
        )
    );
    let a = &t["backend"][0]["servers"][0];
    assert_eq!((a["ca_file"].as_str(), a["crt"].as_str()), (Some("ca.pem"), Some("client.pem")));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
}

#[test]
fn server_version_words_verifyhost_and_crl_file() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:443 ssl verify required ca-file /ca.pem no-sslv3 no-tlsv13 no-tls-tickets force-tlsv12 verifyhost www.example.org crl-file crl.pem\n"
    ));
    let t = table(&c);
    let a = &t["backend"][0]["servers"][0];
    for k in ["no_sslv3", "no_tlsv13", "no_tls_tickets", "force_tlsv12"] {
        assert_eq!(a[k].as_bool(), Some(true), "{k}");
    }
    assert_eq!((a["verifyhost"].as_str(), a["crl_file"].as_str()), (Some("www.example.org"), Some("./crl.pem")));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
}

#[test]
fn server_tls() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:443 ssl verify none sni str(www.example.org)\n  server b 127.0.0.1:444 ssl verify required ca-file /etc/ssl/certs/ca-certificates.crt sni req.hdr(host)\n"
    ));
    let t = table(&c);
    let a = &t["backend"][0]["servers"][0];
    assert_eq!(
        (a["ssl"].as_bool(), a["verify"].as_str(), a["sni"].as_str()),
        (Some(true), Some("none"), Some("www.example.org"))
    );
    assert_eq!(t["backend"][0]["servers"][1]["ca_file"].as_str(), Some("/etc/ssl/certs/ca-certificates.crt"));
    // A per-request expression is kept as one.
    assert_eq!(t["backend"][0]["servers"][1]["sni"].as_str(), Some("req.hdr(host)"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    assert!(sv[0].tls.as_ref().unwrap().sni_expr.is_none());
    assert!(sv[1].tls.as_ref().unwrap().sni_expr.is_some());
}

#[test]
fn user_and_group_convert() {
    let c = conv(&format!("global\n  user haproxy\n  group haproxy\n{FE_BE}backend be\n  server a 127.0.0.1:1\n"));
    let g = &table(&c)["global"];
    assert_eq!((g["user"].as_str(), g["group"].as_str()), (Some("haproxy"), Some("haproxy")));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!((s.global.user.as_deref(), s.global.group.as_deref()), (Some("haproxy"), Some("haproxy")));
    let g =
        &table(&conv(&format!("global\n  uid 99\n  gid 98\n{FE_BE}backend be\n  server a 127.0.0.1:1\n")))["global"];
    assert_eq!((g["user"].as_str(), g["group"].as_str()), (Some("99"), Some("98")));
}

#[test]
fn logging() {
    let c = conv(
        "global\n  log 127.0.0.1 local2 info\n  log 127.0.0.1:5140 len 4096 format rfc5424 local0 notice err\n  log /dev/log daemon\n  log stdout format raw local0\n  stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners\n  server-state-file /var/lib/haproxy/state\ndefaults\n  mode http\n  log global\n  option httplog\n  option dontlognull\nfrontend fe\n  bind :80\n  no log\n  default_backend be\nbackend be\n  log global\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    let g = &t["global"];
    let logs: Vec<&str> = g["log"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        logs,
        [
            "127.0.0.1 local2 info",
            "127.0.0.1:5140 len 4096 format rfc5424 local0 notice",
            "/dev/log daemon",
            "stdout format raw local0"
        ]
    );
    assert_eq!(g["control_socket"]["path"].as_str(), Some("/run/haproxy/admin.sock"));
    assert_eq!(g["control_socket"]["mode"].as_str(), Some("660"));
    assert_eq!(g["control_socket"]["level"].as_str(), Some("admin"));
    // HAProxy's default level is operator: the converted socket must not allow more.
    let ro = conv(
        "global\n  stats socket /run/haproxy/ro.sock mode 600\ndefaults\n  mode http\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(table(&ro)["global"]["control_socket"]["level"].as_str(), Some("operator"));
    assert_eq!(g["server_state_file"].as_str(), Some("/var/lib/haproxy/state"));
    let d = &t["defaults"];
    assert_eq!(
        (d["log"].as_str(), d["httplog"].as_bool(), d["dontlognull"].as_bool()),
        (Some("global"), Some(true), Some(true))
    );
    assert_eq!(t["frontend"][0]["log"].as_str(), Some("none"), "`no log` turns off what defaults set");
    // A backend's `log` lines carry its server events (up/down, checks).
    assert_eq!(t["backend"][0]["log"].as_str(), Some("global"));
    assert_eq!(kinds(&c), [(3, ReportKind::Approximated), (6, ReportKind::Approximated)]);
    snap(&c);
}

#[test]
fn defaults_sections() {
    // Proxies on different defaults get them written in.
    let c = conv(
        "defaults a\n  mode http\n  timeout client 7s\nfrontend fa\n  bind :80\n  default_backend ba\nbackend ba\n  server s 127.0.0.1:1\ndefaults b\n  mode tcp\nfrontend fb\n  bind :81\n  default_backend bb\nbackend bb\n  server s 127.0.0.1:2\nlisten lx from a\n  bind :82\n  server s 127.0.0.1:3\n",
    );
    let t = table(&c);
    assert!(t.get("defaults").is_none());
    let s = snap(&c);
    let mode = |n: &str| s.frontend(n).unwrap().1.mode;
    assert_eq!((mode("fa"), mode("fb"), mode("lx")), (Mode::Http, Mode::Tcp, Mode::Http));
    assert_eq!(s.frontend("lx").unwrap().1.timeouts.client, Duration::from_secs(7));
    // One defaults section stays `[defaults]`.
    let c = conv(FE_BE);
    assert_eq!(table(&c)["defaults"]["mode"].as_str(), Some("http"));
    assert!(conv_err("frontend f from nope\n  bind :80\n")[0].contains("no defaults section named `nope`"));
    // `defaults B from A` (2.6): B starts from A's settings, each timeout on its own; a later
    // plain `defaults` starts afresh.
    let c = conv(
        "defaults base\n  mode http\n  timeout client 5s\n  timeout server 5s\n  option forwardfor\ndefaults web from base\n  timeout server 30s\n  retries 2\nfrontend f from web\n  bind :80\n  default_backend b\nbackend b from web\n  server s 127.0.0.1:1\ndefaults\n  mode tcp\nlisten t\n  bind :81\n  server s 127.0.0.1:2\n",
    );
    assert!(kinds(&c).iter().all(|(_, k)| *k == ReportKind::Note), "{:?}", kinds(&c));
    let s = snap(&c);
    let (f, b) = (s.frontend("f").unwrap().1, s.backend("b").unwrap().1);
    assert_eq!((f.mode, f.timeouts.client), (Mode::Http, Duration::from_secs(5)));
    assert_eq!((b.timeouts.server, b.retries), (Duration::from_secs(30), 2));
    assert!(f.forwardfor.is_some(), "option forwardfor from `base` through `web`");
    assert_eq!(s.frontend("t").unwrap().1.mode, Mode::Tcp);
    assert!(conv_err("defaults d from nope\n  mode http\n")[0].contains("no defaults section named `nope`"));
}

#[test]
fn global_and_userlist() {
    let c = conv(
        "global\n  maxconn 2000\n  nbthread 2\n  spread-checks 5\n  hard-stop-after 10s\n  daemon\n  ulimit-n 65536\n  tune.bufsize 32768\n  frobnicate\nuserlist api\n  user admin insecure-password s3cret\n  user ops password $6$abcdefgh$Z7KfoKnKTSZrzo5VZ0YubGLQOj9ov6sHo9TmE3zIU/LHKhpE30zCnZ0mcIXYf9r9rQ4DYaXoxAFSPFlcWdxjB.\n  group g users admin\n",
    );
    let s = snap(&c);
    assert_eq!((s.global.maxconn, s.global.nbthread, s.global.spread_checks), (2000, Some(2), 5));
    assert_eq!(s.global.hard_stop_after, Duration::from_secs(10));
    assert_eq!(s.global.bufsize, 32768, "tune.bufsize");
    assert!(matches!(&s.userlists[0].users[0], (n, Password::Insecure(p)) if n == "admin" && p == "s3cret"));
    assert!(matches!(&s.userlists[0].users[1], (n, Password::Hash(h)) if n == "ops" && h.starts_with("$6$")));
    assert_eq!(s.userlists[0].groups, [("g".to_string(), vec!["admin".to_string()])], "group ... users");
    assert_eq!(kinds(&c), [(6, ReportKind::Ignored), (7, ReportKind::Ignored), (9, ReportKind::Unknown)]);
    assert_eq!(c.strict_failures(), 1);
}

#[test]
fn other_sections_are_reported_whole() {
    // `peers` and `resolvers` sections convert (their own tests); `mailers` is reported whole.
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:1\nmailers mta\n  mailer smtp1 127.0.0.1:587\n"));
    assert_eq!(kinds(&c), [(8, ReportKind::Unsupported)]);
    assert!(c.toml.contains("# [line 8, not supported yet by lbha] whole section"), "{}", c.toml);
    assert!(c.toml.contains("mailer smtp1 127.0.0.1:587"));
}

#[test]
fn malformed_input_gives_located_errors() {
    let e = conv_err(
        "global\n  maxconn lots\nfrontend fe\n  timeout client 5x\n  bind :http\nbackend be\n  server a\n  retries -1\n  balance\n",
    );
    assert_eq!(
        e,
        [
            "h.cfg:2: `maxconn lots`: bad number for maxconn: `lots`",
            "h.cfg:4: `timeout client 5x`: bad time for timeout client: `5x` (expected a number with an optional unit us, ms, s, m, h, d)",
            "h.cfg:5: `bind :http`: `:http`: bad port `http`",
            "h.cfg:7: `server a`: expected `server <name> <address>[:port] [params]`",
            "h.cfg:8: `retries -1`: bad number for retries: `-1`",
        ]
    );
    let e = conv_err("frontend fe\n  bind \"*:80\n");
    assert_eq!(e, ["h.cfg:2:8: unterminated \" quote"]);
}

#[test]
fn validation_errors_point_at_haproxy_lines() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  use_backend nope if TRUE\nbackend be\n  server a 127.0.0.1:1 weight 300\n",
    );
    let e = crate::config::parse(&c.toml, Path::new("x.toml")).unwrap_err();
    let msgs = locate_errors(&e, &c.origins);
    assert!(
        msgs.contains(&"h.cfg:5: frontend[0].use_backend[0].backend: no such backend (value: nope)".to_string()),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.starts_with("h.cfg:7: backend[0].servers[0].weight")), "{msgs:?}");
}

#[test]
fn comments_travel_with_their_settings() {
    let c = conv(
        "# whole file\n\n# the frontend\nfrontend fe # main\n    # listen here\n    bind :80   # port\n    default_backend be\nbackend be\n    # the only server\n    server a 127.0.0.1:1\n    option nolinger\n# trailing\n",
    );
    let t = &c.toml;
    for needle in [
        "# whole file",
        "# the frontend",
        "# main",
        "# listen here",
        "# port",
        "# the only server",
        "# trailing",
        "# [line 11, not supported yet by lbha] option nolinger",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    let above = |a: &str, b: &str| t.find(a).unwrap() < t.find(b).unwrap();
    assert!(above("# listen here", "\"*:80\""));
    assert!(above("# the only server", "name = \"a\""));
    snap(&c);
}

#[test]
fn environment_variables_are_expanded_and_noted() {
    let env = |n: &str| (n == "BACKEND_ADDR").then(|| "127.0.0.1:8081".to_string());
    let src =
        format!("{FE_BE}backend be\n  server a \"${{BACKEND_ADDR}}\"\n  server b \"${{OTHER_ADDR-127.0.0.1:8082}}\"\n");
    let c = convert(Some(HaproxySource { text: &src, file: "h.cfg" }), None, Path::new("."), &env).unwrap();
    let s = snap(&c);
    assert_eq!(s.backends[0].servers[0].addr.to_string(), "127.0.0.1:8081");
    assert_eq!(s.backends[0].servers[1].addr.to_string(), "127.0.0.1:8082");
    assert_eq!(kinds(&c), [(7, ReportKind::Note), (8, ReportKind::Note)]);
}

#[test]
fn keyword_placement_follows_both_haproxy_and_lbha() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  balance roundrobin\n  default_backend be\nbackend be\n  bind :81\n  acl a path /\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(kinds(&c), [(5, ReportKind::Ignored), (8, ReportKind::Ignored)]);
    snap(&c);
}

mod actions;
mod errlog;
mod hints_resolve;
mod keepalived;
mod persist_rules;
mod random;
mod rule_gaps;
mod samples;
mod tcp_backend;

/// `tcp-request` / `tcp-response` rules and SNI routing in mode tcp convert one to one.
#[test]
fn tcp_rules_and_sni_routing() {
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind 127.0.0.1:8443\n  tcp-request inspect-delay 5s\n  tcp-request connection reject if { src 192.0.2.0/24 }\n  tcp-request content set-var(sess.sni) req.ssl_sni\n  tcp-request content accept if { req_ssl_hello_type 1 }\n  acl is_a req.ssl_sni -i a.example\n  use_backend be_a if is_a\n  use_backend %[req.ssl_sni,lower]\n  default_backend be_a\nbackend be_a\n  server a 127.0.0.1:1\n  tcp-response inspect-delay 1s\n  tcp-response content reject if { src 203.0.113.1 }\n",
    );
    assert_eq!(c.strict_failures(), 0, "{:?}\n{}", c.reports, c.toml);
    assert!(c.toml.contains("content = \"set-var(sess.sni) req.ssl_sni\""), "{}", c.toml);
    let s = snap(&c);
    let t = &s.frontends[0].tcp;
    assert_eq!(t.inspect_delay, Some(Duration::from_secs(5)));
    assert_eq!((t.connection.len(), t.content.len(), t.switching.len()), (1, 2, 2));
    assert_eq!(s.backends[0].tcp.response.len(), 1);
    // `capture ... len` declares its slot in HAProxy's order (after `declare capture`, before
    // a later `capture request header`) and the rule names it.
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind :1\n  declare capture request len 4\n  tcp-request content capture req.ssl_sni len 10\n  capture request header Host len 6\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(c.strict_failures(), 0, "{:?}\n{}", c.reports, c.toml);
    assert!(c.toml.contains("content = \"capture req.ssl_sni id 1\""), "{}", c.toml);
    let s = snap(&c);
    let lens: Vec<usize> = s.frontends[0].logging.req_slots.iter().map(|s| s.len).collect();
    assert_eq!(lens, [4, 10, 6]);
    // An unsupported action is reported on its line, not dropped silently.
    let c = conv("defaults\n  mode tcp\nfrontend fe\n  bind :1\n  tcp-request content set-nice 1\n");
    assert!(c.reports.iter().any(|r| r.loc.line == 5 && r.kind == ReportKind::Unsupported), "{:?}", c.reports);
    let e = conv_err("defaults\n  mode tcp\nfrontend fe\n  bind :1\n  tcp-request session capture src len 10\n");
    assert!(e.iter().any(|m| m.contains(":5") && m.contains("content rules only")), "{e:?}");
    // In mode http, connection rules and content rules that need no request bytes convert.
    let c = conv(&format!(
        "{FE_BE}  tcp-request connection reject if {{ src 192.0.2.0/24 }}\n  tcp-request content reject if {{ src 192.0.2.1 }}\nbackend be\n  server a 127.0.0.1:1\n"
    ));
    let s = snap(&c);
    assert_eq!((s.frontends[0].tcp.connection.len(), s.frontends[0].tcp.content.len()), (1, 1));
    // Response rules over the server's bytes, and `close`, convert one to one in mode tcp.
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind :1\n  default_backend be\nbackend be\n  server a 127.0.0.1:1\n  tcp-response inspect-delay 2s\n  tcp-response content reject if { res.payload(0,4) -m str EVIL }\n  tcp-response content close if { res.payload_lv(0,1) -m str bye }\n  tcp-response content accept if { res.len gt 3 }\n",
    );
    assert_eq!(c.strict_failures(), 0, "{:?}\n{}", c.reports, c.toml);
    let s = snap(&c);
    assert_eq!(s.backends[0].tcp.response.len(), 3);
    assert_eq!(s.backends[0].tcp.response_delay, Some(Duration::from_secs(2)));
    // On an HTTP backend lbha does not run them: reported, not written.
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:1\n  tcp-response content accept if {{ src 192.0.2.1 }}\n"
    ));
    assert!(c.reports.iter().any(|r| r.message.contains("HTTP responses")), "{:?}", c.reports);
}

mod init_addr;
mod resolvers;
mod server_side;
mod upstream;

#[test]
fn dh_params_ssl_server_verify_and_stats_timeout() {
    let c = conv(&format!(
        "global\n  stats timeout 30s\n  stats socket /run/haproxy/admin.sock mode 660 level admin\n  tune.ssl.default-dh-param 2048\n  ssl-dh-param-file /etc/haproxy/dh.pem\n  ssl-server-verify none\n{FE_BE}backend be\n  server a 127.0.0.1:443 ssl\n"
    ));
    let t = table(&c);
    let g = &t["global"];
    // `stats timeout` before `stats socket` is the same socket's setting.
    assert_eq!(g["control_socket"]["timeout"].as_str(), Some("30s"));
    assert_eq!(g["control_socket"]["path"].as_str(), Some("/run/haproxy/admin.sock"));
    assert_eq!(g["ssl_server_verify"].as_str(), Some("none"));
    // The DH lines are accepted with a note on why they mean nothing to rustls.
    assert_eq!(kinds(&c), [(4, ReportKind::Ignored), (5, ReportKind::Ignored)]);
    assert!(format!("{:?}", c.reports).contains("no finite-field DHE"), "{:?}", c.reports);
    // A server without `verify` is then not verified: no `ca_file` is needed.
    snap(&c);
    let bad = conv_err(&format!("global\n  ssl-server-verify maybe\n{FE_BE}backend be\n  server a 127.0.0.1:1\n"));
    assert!(bad.iter().any(|e| e.contains("takes `none` or `required`, not `maybe`")), "{bad:?}");
}

#[test]
fn peers_tls_words() {
    let d = std::env::temp_dir().join(format!("lbha-conv-peers-tls-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (crt, ca) = (d.join("p.pem"), d.join("ca.pem"));
    std::fs::write(&crt, format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem())).unwrap();
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let (crt, ca) = (crt.display().to_string(), ca.display().to_string());
    let c = conv(&format!(
        "global\n  localpeer a\npeers mesh\n  default-bind ssl crt {crt} ca-file {ca} verify required\n  default-server ssl crt {crt} ca-file {ca} check\n  peer a 127.0.0.1:10001\n  peer b 127.0.0.2:10002 sni str(b.example) weight 3\n"
    ));
    let t = table(&c);
    let p = &t["peers"][0];
    assert_eq!(p["default_bind"].as_str().unwrap(), format!("ssl crt {crt} ca-file {ca} verify required"));
    assert_eq!(p["default_server"].as_str().unwrap(), format!("ssl crt {crt} ca-file {ca}"));
    let lines: Vec<&str> = p["peer"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(lines, ["a 127.0.0.1:10001", "b 127.0.0.2:10002 sni str(b.example)"]);
    assert_eq!(kinds(&c), [(5, ReportKind::Ignored), (7, ReportKind::Ignored)]);
    let s = snap(&c);
    assert!(s.peers[0].tls.is_some() && s.peers[0].remotes[0].tls.is_some());

    // A `default-server` after a peer line applies to the lines after it only: written into them.
    let c = conv(
        "global\n  localpeer a\npeers mesh\n  peer a 127.0.0.1:10001\n  default-server ssl verify none\n  peer b 127.0.0.2:10002\n",
    );
    let p = &table(&c)["peers"][0];
    assert!(p.get("default_server").is_none());
    let lines: Vec<&str> = p["peer"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(lines, ["a 127.0.0.1:10001", "b 127.0.0.2:10002 ssl verify none"]);
    // `default-bind` and `bind` are one listener: folded into `bind`, in file order; the local
    // peer's `server` line has no address.
    let c = conv(&format!(
        "global\n  localpeer a\npeers mesh\n  default-bind ssl crt {crt}\n  bind 127.0.0.1:10001 ca-file {ca} verify required\n  server a ssl verify none\n  server b 127.0.0.2:10002 ssl verify none\n"
    ));
    let p = &table(&c)["peers"][0];
    assert_eq!(p["bind"].as_str().unwrap(), format!("127.0.0.1:10001 ssl crt {crt} ca-file {ca} verify required"));
    let lines: Vec<&str> = p["server"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(lines, ["a ssl verify none", "b 127.0.0.2:10002 ssl verify none"]);
    assert!(snap(&c).peers[0].tls.is_some());
    // What lbha cannot honour is refused, at its line.
    let e = conv_err("peers mesh\n  peer a 127.0.0.1:10001\n  peer b 127.0.0.2:10002 send-proxy\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("h.cfg:3: ") && e[0].contains("`send-proxy` is not supported on peer lines"), "{e:?}");
    let e = conv_err("peers mesh\n  bind 127.0.0.1:10001 accept-proxy\n  server a\n");
    assert!(e[0].starts_with("h.cfg:2: ") && e[0].contains("`accept-proxy` is not supported on a peers bind"), "{e:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
