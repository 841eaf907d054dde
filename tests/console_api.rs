//! The web console's HTTP side without a browser: login and roles, the CSRF and origin checks,
//! the JSON endpoints against the control socket's JSON, a change applied and seen by the control
//! socket, the security headers, and a daemon whose memory does not grow while a page polls.

mod common;
use common::*;
use serde_json::Value;

fn setup(a: u16, web: u16, console: u16) -> String {
    format!(
        r#"
[defaults]
mode = "http"
[[listen]]
name = "web"
bind = ["127.0.0.1:{web}"]
servers = [{{ name = "a", addr = "127.0.0.1:{a}" }}]
[[userlist]]
name = "ops"
users = [{{ name = "admin", insecure_password = "adminpw", groups = ["admins"] }},
         {{ name = "viewer", insecure_password = "viewpw" }}]
groups = [{{ name = "admins" }}]
[console]
bind = "127.0.0.1:{console}"
userlist = "ops"
admin_group = "admins"
"#
    )
}

fn request(port: u16, method: &str, path: &str, headers: &str, body: &str) -> Resp {
    raw(
        port,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Logs in through the form; the `Cookie:` header line of the session.
fn login(port: u16, user: &str, pw: &str) -> Result<String, Resp> {
    let r = request(
        port,
        "POST",
        "/console/login",
        &format!("Origin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"),
        &format!("user={user}&password={pw}"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    match r.header("set-cookie") {
        Some(c) => Ok(format!("Cookie: {}\r\n", c.split(';').next().unwrap())),
        None => Err(r),
    }
}

fn json(r: &Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn csrf(port: u16, cookie: &str) -> String {
    let s = json(&request(port, "GET", "/console/api/v1/session", cookie, ""));
    s["csrf"].as_str().unwrap().to_string()
}

#[test]
fn logins_roles_and_cross_site_protection() {
    let a = Backend::start("a");
    let (web, console) = (free_port(), free_port());
    let l = Lbha::start(&setup(a.port, web, console), &[console]);
    // The page and its assets, with their headers; no session needed to load them.
    let page = get(console, "/console/");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(!page.text().contains("http://") && !page.text().contains("https://"), "no external resource");
    assert_eq!(get(console, "/console/app.js").status, 200);
    // No session: 401 (no Basic challenge, so browsers show the page's form, not a prompt).
    let r = get(console, "/console/api/v1/servers");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_none());
    // Wrong password, and a login posted from another site.
    let bad = login(console, "admin", "nope").unwrap_err();
    assert_eq!(bad.header("location"), Some("/console/?login=failed"));
    let r = request(
        console,
        "POST",
        "/console/login",
        "Origin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        "user=admin&password=adminpw",
    );
    assert_eq!(r.status, 403);

    let viewer = login(console, "viewer", "viewpw").unwrap();
    let s = json(&request(console, "GET", "/console/api/v1/session", &viewer, ""));
    assert_eq!((s["user"].as_str(), s["role"].as_str()), (Some("viewer"), Some("read")));
    let body = r#"{"command":"set server web/a state drain"}"#;
    let same = format!("Origin: http://127.0.0.1:{console}\r\n");
    let r = request(
        console,
        "POST",
        "/console/api/v1/command",
        &format!("{viewer}{same}X-CSRF-Token: {}\r\n", csrf(console, &viewer)),
        body,
    );
    assert_eq!(r.status, 403, "read-only");

    let admin = login(console, "admin", "adminpw").unwrap();
    let token = csrf(console, &admin);
    // Without the token, with another session's token, or from another origin: refused.
    for headers in [
        format!("{admin}{same}"),
        format!("{admin}{same}X-CSRF-Token: {}\r\n", csrf(console, &viewer)),
        format!("{admin}Origin: http://evil.example\r\nX-CSRF-Token: {token}\r\n"),
        format!("{admin}X-CSRF-Token: {token}\r\n"),
    ] {
        let r = request(console, "POST", "/console/api/v1/command", &headers, body);
        assert_eq!(r.status, 403, "{headers}: {}", r.text());
    }
    assert!(l.ctl(&["json show servers state web"]).contains(r#""admin":"ready""#));
    // Basic auth reads, but does not change.
    let basic = "Authorization: Basic YWRtaW46YWRtaW5wdw==\r\n";
    assert_eq!(request(console, "GET", "/console/api/v1/vrrp", basic, "").status, 200);
    let r =
        request(console, "POST", "/console/api/v1/command", &format!("{basic}{same}X-CSRF-Token: {token}\r\n"), body);
    assert_eq!(r.status, 403);
    // The real thing: a drain, seen by the control socket and the events.
    let ok = format!("{admin}{same}X-CSRF-Token: {token}\r\nContent-Type: application/json\r\n");
    let r = request(console, "POST", "/console/api/v1/command", &ok, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["admin"], "drain");
    assert!(l.ctl(&["json show servers state web"]).contains(r#""admin":"drain""#));
    let ev = json(&request(console, "GET", "/console/api/v1/events", &admin, ""));
    assert!(ev["events"].as_array().unwrap().iter().any(|e| e["subject"] == "web/a" && e["kind"] == "server"), "{ev}");
    // Only server actions and VIPs; a bad command gets the control socket's own error.
    for (cmd, want) in [("reload", 400), ("set server web/a weight 300", 400), ("disable server web/a; reload", 400)] {
        let r = request(console, "POST", "/console/api/v1/command", &ok, &format!(r#"{{"command":"{cmd}"}}"#));
        assert_eq!(r.status, want, "{cmd}: {}", r.text());
        assert!(json(&r)["errorStr"].is_string());
    }
    assert!(l.ctl(&["json show servers state web"]).contains(r#""admin":"drain""#), "nothing else ran");
}

#[test]
fn endpoints_answer_the_cli_json_and_polling_does_not_grow_the_daemon() {
    let a = Backend::start("a");
    let (web, console) = (free_port(), free_port());
    let l = Lbha::start(&setup(a.port, web, console), &[console]);
    let viewer = login(console, "viewer", "viewpw").unwrap();
    // Same JSON as the CLI's --json (fields that move with time aside).
    let servers = json(&request(console, "GET", "/console/api/v1/servers", &viewer, ""));
    let (code, out, _) = l.cli(&["show", "servers", "--json"]);
    assert_eq!(code, 0);
    let mut cli: Value = serde_json::from_str(out.trim()).unwrap();
    let strip = |v: &mut Value| {
        for s in v.as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("since_change_secs");
        }
    };
    let mut servers = servers;
    strip(&mut servers);
    strip(&mut cli);
    assert_eq!(servers, cli);
    let (_, out, _) = l.cli(&["show", "events", "--json"]);
    let cli_events: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json(&request(console, "GET", "/console/api/v1/events", &viewer, "")), cli_events);
    // A reload and a weight change land in the timeline, with their outcome.
    let (code, out, err) = l.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = l.cli(&["server", "weight", "web/a", "7"]);
    assert_eq!(code, 0, "{out}{err}");
    let ev = json(&request(console, "GET", "/console/api/v1/events", &viewer, ""));
    let ev = ev["events"].as_array().unwrap();
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "reload" && e["ok"] == true && e["text"].as_str().unwrap().contains("generation 2")),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| e["kind"] == "server" && e["subject"] == "web/a" && e["text"] == "weight 1 -> 7"),
        "{ev:?}"
    );
    // Traffic: the ring fills, one slot a second, and has `web` on both sides.
    for _ in 0..50 {
        let _ = get(web, "/");
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let t = json(&request(console, "GET", "/console/api/v1/traffic", &viewer, ""));
    let sides: Vec<&str> = t["series"].as_array().unwrap().iter().map(|s| s["side"].as_str().unwrap()).collect();
    assert_eq!(sides, ["frontend", "backend"]);
    let fe = &t["series"][0];
    assert!(fe["req"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>() >= 50, "{fe}");
    let nope = request(console, "GET", "/console/api/v1/nope", &viewer, "");
    assert_eq!(nope.status, 404);
    assert!(json(&nope).get("errorStr").is_some());

    // A page polling: every endpoint, many times. Memory after a warm-up stays put.
    let round = |n: usize| {
        for _ in 0..n {
            for e in ["session", "status", "vrrp", "stat", "servers", "vips", "events", "traffic"] {
                let r = request(console, "GET", &format!("/console/api/v1/{e}"), &viewer, "");
                assert!(r.status == 200 || r.status == 503, "{e}: {}", r.status);
            }
        }
    };
    let rss = || {
        let s = std::fs::read_to_string(format!("/proc/{}/status", l.child.id())).unwrap();
        s.lines().find_map(|x| x.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse::<u64>().unwrap()
    };
    round(150);
    let before = rss();
    round(1200);
    let after = rss();
    println!("console polling: VmRSS {before} kB before, {after} kB after 9600 requests");
    assert!(after < before + 16 * 1024, "the daemon grew from {before} kB to {after} kB while polled");
}

#[test]
fn the_console_follows_an_upgrade() {
    let a = Backend::start("a");
    let (web, console) = (free_port(), free_port());
    let l = Lbha::start(&setup(a.port, web, console), &[console]);
    let old = l.served_pid();
    let (code, out, err) = l.cli(&["upgrade"]);
    let new = l.served_pid();
    // The harness knows only the first process: kill the new one by PID at the end, also on failure.
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0 as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _kill = (new != old).then_some(Kill(new));
    assert_eq!(code, 0, "upgrade failed:\n{out}{err}\n{}", l.log_text());
    assert_ne!(new, old);
    // The new process takes the console's address once the old one lets it go, and its
    // timeline starts with the takeover. Sessions signed by the old process no longer count.
    let basic = "Authorization: Basic YWRtaW46YWRtaW5wdw==\r\n";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = std::panic::catch_unwind(|| request(console, "GET", "/console/api/v1/status", basic, ""));
        if let Ok(r) = r
            && r.status == 200
            && json(&r)["pid"] == new
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new process never served the console");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ev = json(&request(console, "GET", "/console/api/v1/events", basic, ""));
    let first = &ev["events"][0];
    assert_eq!((first["kind"].as_str(), first["ok"].as_bool()), (Some("upgrade"), Some(true)), "{ev}");
    assert!(first["text"].as_str().unwrap().contains(&format!("took over from pid {old}")), "{ev}");
}

/// With `ssl_crt` the console is HTTPS only: the login answers over TLS with a `Secure` session
/// cookie, the session works over TLS, and a plain-HTTP request to the same port gets no page.
#[test]
fn with_a_certificate_the_console_is_https_and_its_cookie_secure() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: needs curl (apt-get install curl)");
        return;
    }
    let a = Backend::start("a");
    let (web, console) = (free_port(), free_port());
    let dir = TempDir::new("console-tls");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let pem = dir.write("console.pem", &format!("{}{}", cert.pem(), key.serialize_pem()));
    let cfg = format!("{}ssl_crt = \"{}\"\n", setup(a.port, web, console), pem.display());
    let _l = Lbha::start(&cfg, &[console]);
    let base = format!("https://127.0.0.1:{console}");
    let curl = |args: &[&str]| {
        let out =
            std::process::Command::new("curl").args(["-sk", "--max-time", "10", "-i"]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let origin = format!("Origin: {base}");
    let login =
        curl(&["-X", "POST", "-H", &origin, "--data", "user=viewer&password=viewpw", &format!("{base}/console/login")]);
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no session cookie: {login}"));
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let session = cookie.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();
    let me = curl(&["-H", &format!("Cookie: {session}"), &format!("{base}/console/api/v1/session")]);
    assert!(me.starts_with("HTTP/1.1 200") && me.contains("viewer"), "{me}");
    // Plain HTTP on the TLS port: no console page comes back.
    let plain = raw(console, format!("GET /console/ HTTP/1.1\r\nHost: 127.0.0.1:{console}\r\n\r\n").as_bytes());
    assert!(!matches!(plain, Ok(ref r) if r.status == 200), "plain HTTP served the console");
}
