//! The operator's frontend example (etc/examples/seed-frontend.toml) routing real requests:
//! `.php` to php_server, static files to static_server, and everything to php_server once
//! static_server has lost its server (`nbsrv(static_server) lt 1`).

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn seed_frontend_routes_as_the_notes_describe() {
    let php1 = Backend::start("php1");
    let php2 = Backend::start("php2");
    let stat = Backend::start("static");
    let port = free_port();
    let text = std::fs::read_to_string("etc/examples/seed-frontend.toml").unwrap();
    let cfg = text
        .replace("0.0.0.0:80", &format!("127.0.0.1:{port}"))
        .replace("192.0.2.68:80", &format!("127.0.0.1:{}", php1.port))
        .replace("192.0.2.72:80", &format!("127.0.0.1:{}", php2.port))
        .replace("192.0.2.83:80", &format!("127.0.0.1:{}", stat.port))
        .replace("inter = 2000", "inter = 100")
        .replace("rise = 3, fall = 3", "rise = 1, fall = 1");
    let _l = Lbha::start(&cfg, &[port]);
    let php = get(port, "/index.php").text();
    assert!(php == "php1" || php == "php2", "{php}");
    for _ in 0..5 {
        assert_eq!(get(port, "/index.php").text(), php, "balance source keeps one client on one server");
    }
    assert_eq!(get(port, "/img/logo.png").text(), "static");
    assert_eq!(get(port, "/css/site.css").text(), "static");
    assert_eq!(get(port, "/about.html").status, 503, "no rule matches and there is no default_backend");
    drop(stat);
    // Health checks take the static server out; static_down then sends everything to php_server.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = get(port, "/img/logo.png").text();
        if body.starts_with("php") {
            break;
        }
        assert!(Instant::now() < deadline, "static_down never matched (last answer {body:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(port, "/about.html").text().starts_with("php"));
}

#[test]
fn http_retry_and_redispatch_avoid_a_dead_server() {
    let a = Backend::start("A");
    let dead = free_port();
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\nretries = 2\nredispatch = true\ntimeout = {{ connect = \"1s\" }}\n[[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"dead\", addr = \"127.0.0.1:{dead}\" }}, {{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port
    );
    let l = Lbha::start(&cfg, &[port]);
    for _ in 0..6 {
        assert_eq!(get(port, "/").text(), "A");
    }
    let log = l.log_text();
    assert!(log.contains("connect failed"), "the dead server was tried and skipped: {log}");
}
