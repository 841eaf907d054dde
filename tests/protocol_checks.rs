//! Protocol health checks against the real servers they check (Debian's redis-server,
//! mariadb-server, postgresql), each started by the test on 127.0.0.1 on a free port in a
//! temporary directory: a check that speaks the protocol right keeps the server up, one that
//! the server refuses (unknown user, unexpected reply) takes it down with HAProxy's reason.
//! A test whose server is not installed prints "skipped: ..." and returns.

mod common;
mod kit;

use common::*;
use kit::wait_log;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find(cands: &[&str]) -> Option<PathBuf> {
    cands.iter().map(PathBuf::from).find(|p| p.is_file())
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut versions: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).collect();
    versions.sort();
    versions.into_iter().rev().find(|p| p.is_file())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A server process the test started, killed and reaped on drop (also when the test fails).
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16, what: &str, child: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "{what} exited before listening");
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A backend per (name, check table) against `port`. Servers start one failure short of DOWN: a
/// passed check is logged as `succeeded`, two failed ones take the server DOWN.
fn config(port: u16, front: u16, backends: &[(&str, &str)]) -> String {
    let mut cfg = String::from(
        "[defaults]\nmode = \"tcp\"\ntimeout = { connect = \"1s\", client = \"5s\", server = \"5s\", check = \"3s\" }\n",
    );
    for (name, check) in backends {
        cfg.push_str(&format!(
            "\n[[backend]]\nname = \"{name}\"\ncheck = {check}\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{port}\", check = true, inter = 200, rise = 1, fall = 2 }}]\n"
        ));
    }
    cfg.push_str(&format!(
        "\n[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:{front}\"]\ndefault_backend = \"{}\"\n",
        backends[0].0
    ));
    cfg
}

#[test]
fn redis_check_and_tcp_check_sequences_against_redis() {
    let Some(redis) = find(&["/usr/bin/redis-server", "/usr/local/bin/redis-server"]) else {
        println!("skipped: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let dir = TempDir::new("redis");
    let port = free_port();
    let child = Command::new(redis)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let mut redis = Proc(child);
    wait_port(port, "redis-server", &mut redis);
    let front = free_port();
    let cfg = config(
        port,
        front,
        &[
            ("rd", "{ redis_check = true }"),
            (
                "seq",
                r#"{ tcp_check = ['send PING\r\n', "expect string +PONG", 'send info\ replication\r\n', "expect string role:master", 'send QUIT\r\n', "expect string +OK"] }"#,
            ),
            // QUIT makes redis close after its answer: the rule fails on the whole answer (with
            // the connection left open it would wait for more and time out, as in HAProxy).
            (
                "wrong",
                r#"{ tcp_check = ['send info\ replication\r\n', 'send QUIT\r\n', "comment 'replica wanted'", "expect string role:slave"] }"#,
            ),
            // A log-format send and expect (redis echoes the backend's name), and a conditional
            // pass: the server stays up but leaves load balancing.
            (
                "lf",
                r#"{ tcp_check = ['send-lf ECHO\ %b\r\n', "expect string-lf %b", 'send QUIT\r\n', 'expect string +OK ok-status L7OKC on-success redis\ echoed\ %b'] }"#,
            ),
            // The status and text a failing rule chooses.
            (
                "st",
                r#"{ tcp_check = ['send PING\r\n', 'expect min-recv 5 string +PANG error-status L7STS on-error redis\ said\ no\ to\ %s'] }"#,
            ),
        ],
    );
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server rd/s succeeded");
    wait_log(|| l.log_text(), "Health check for server seq/s succeeded");
    wait_log(
        || l.log_text(),
        "Server wrong/s is DOWN, reason: Layer7 invalid response, info: TCPCHK did not match content 'role:slave' at step 4 comment: replica wanted",
    );
    wait_log(
        || l.log_text(),
        "Health check for server lf/s succeeded, reason: Layer7 check conditionally passed, info: redis echoed lf",
    );
    wait_log(|| l.log_text(), "Server lf/s is NOLB: its check passed conditionally (L7OKC)");
    wait_log(|| l.log_text(), "Server st/s is DOWN, reason: Layer7 wrong status, info: redis said no to s");
    let log = l.log_text();
    assert!(!log.contains("Server rd/s is DOWN") && !log.contains("Server seq/s is DOWN"), "{log}");
    assert!(!log.contains("Server lf/s is DOWN"), "{log}");
}

#[test]
fn mysql_check_logs_in_to_mariadb_and_reports_a_refused_user() {
    let (Some(server), Some(install)) = (
        find(&["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]),
        find(&["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"]),
    ) else {
        println!("skipped: mariadb-server is not installed (apt-get install mariadb-server)");
        return;
    };
    let dir = TempDir::new("mariadb");
    let data = dir.0.join("data");
    let user: &[&str] = if is_root() { &["--user=root"] } else { &[] };
    let out = Command::new(install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .args(user)
        .output()
        .expect("run mariadb-install-db");
    assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
    let init = dir.write("init.sql", "CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1';\n");
    let port = free_port();
    let child = Command::new(server)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.0.join("sock").display()))
        .arg(format!("--pid-file={}", dir.0.join("pid").display()))
        .arg(format!("--init-file={}", init.display()))
        .args([&format!("--port={port}"), "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-buffer-pool-size=8M"])
        .args(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mariadbd");
    let mut db = Proc(child);
    wait_port(port, "mariadbd", &mut db);
    let front = free_port();
    let cfg = config(
        port,
        front,
        &[
            ("greet", "{ mysql_check = true }"),
            ("login", "{ mysql_check = \"user haproxy\" }"),
            ("nouser", "{ mysql_check = \"user nosuchuser post-41\" }"),
        ],
    );
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server greet/s succeeded");
    wait_log(|| l.log_text(), "Health check for server login/s succeeded");
    wait_log(
        || l.log_text(),
        "Server nouser/s is DOWN, reason: Layer7 wrong status, info: MySQL error 1045: Access denied",
    );
    let log = l.log_text();
    assert!(!log.contains("Server greet/s is DOWN") && !log.contains("Server login/s is DOWN"), "{log}");
}

/// Runs `cmd` as `nobody` when this test runs as root (PostgreSQL refuses to run as root).
fn as_postgres_user(cmd: &mut Command) {
    if is_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
}

fn chown_nobody(p: &Path) {
    if is_root() {
        nix::unistd::chown(p, Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534)))
            .expect("chown the test directory");
    }
}

#[test]
fn pgsql_check_against_postgresql() {
    let (Some(initdb), Some(postgres)) = (pg_bin("initdb"), pg_bin("postgres")) else {
        println!("skipped: postgresql is not installed (apt-get install postgresql)");
        return;
    };
    let dir = TempDir::new("pgsql");
    chown_nobody(&dir.0);
    let data = dir.0.join("data");
    let mut c = Command::new(initdb);
    c.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "--no-sync"]);
    as_postgres_user(&mut c);
    let out = c.output().expect("run initdb");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    // With trust, PostgreSQL answers AuthenticationOk before it looks the role up (so does
    // HAProxy's check pass then); a pg_hba `reject` line makes it refuse a user outright.
    let hba = data.join("pg_hba.conf");
    let rest = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(&hba, format!("host all nosuchuser 127.0.0.1/32 reject\n{rest}")).expect("write pg_hba.conf");
    let port = free_port();
    let mut c = Command::new(postgres);
    c.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
        .arg(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_postgres_user(&mut c);
    let mut pg = Proc(c.spawn().expect("spawn postgres"));
    wait_port(port, "postgres", &mut pg);
    let front = free_port();
    let cfg = config(
        port,
        front,
        &[("pg", "{ pgsql_check = \"user postgres\" }"), ("nouser", "{ pgsql_check = \"user nosuchuser\" }")],
    );
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server pg/s succeeded");
    wait_log(|| l.log_text(), "Server nouser/s is DOWN, reason: Layer7 invalid response");
    let log = l.log_text();
    assert!(!log.contains("Server pg/s is DOWN"), "{log}");
    // Stopping the server takes the good one down too.
    drop(pg);
    wait_log(|| l.log_text(), "Server pg/s is DOWN");
}

/// A TCP server on 127.0.0.1 that writes `banner` to each connection and closes it: a server
/// that answers, but not with the protocol a check expects.
fn banner_server(banner: &'static [u8]) -> u16 {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(banner);
        }
    });
    port
}

/// A backend `name` with `check` against `127.0.0.1:port`, servers as in [`config`].
fn backend(name: &str, check: &str, port: u16) -> String {
    format!(
        "\n[[backend]]\nname = \"{name}\"\ncheck = {check}\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{port}\", check = true, inter = 200, rise = 1, fall = 2 }}]\n"
    )
}

#[test]
fn smtpchk_against_aiosmtpd() {
    const PYTHON: &str = "/usr/bin/python3";
    let has = Command::new(PYTHON).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !has {
        println!("skipped: smtpchk needs {PYTHON} with aiosmtpd (Debian: python3-aiosmtpd)");
        return;
    }
    let port = free_port();
    let child = Command::new(PYTHON)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn aiosmtpd");
    let mut smtp = Proc(child);
    wait_port(port, "aiosmtpd", &mut smtp);
    let refusing = banner_server(b"554 5.3.2 not accepting mail\r\n");
    let front = free_port();
    let cfg = config(port, front, &[("plain", "{ smtpchk = true }"), ("ehlo", r#"{ smtpchk = "EHLO lb.example" }"#)])
        + &backend("refusing", "{ smtpchk = true }", refusing);
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server plain/s succeeded");
    wait_log(|| l.log_text(), "Health check for server ehlo/s succeeded");
    wait_log(|| l.log_text(), "Server refusing/s is DOWN, reason: Layer7");
    let log = l.log_text();
    assert!(!log.contains("Server plain/s is DOWN") && !log.contains("Server ehlo/s is DOWN"), "{log}");
    // Stopping the SMTP server takes its backends down.
    drop(smtp);
    wait_log(|| l.log_text(), "Server plain/s is DOWN");
}

#[test]
fn ssl_hello_chk_against_openssl_s_server() {
    let Some(openssl) = find(&["/usr/bin/openssl", "/usr/local/bin/openssl"]) else {
        println!("skipped: openssl is not installed (apt-get install openssl)");
        return;
    };
    let dir = TempDir::new("sslhello");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.signing_key.serialize_pem());
    let port = free_port();
    let child = Command::new(openssl)
        .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_server");
    let mut server = Proc(child);
    wait_port(port, "openssl s_server", &mut server);
    let plain = banner_server(b"220 smtp.example ESMTP\r\n");
    let front = free_port();
    let cfg = config(port, front, &[("tls", "{ ssl_hello_chk = true }")])
        + &backend("cleartext", "{ ssl_hello_chk = true }", plain);
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server tls/s succeeded");
    wait_log(|| l.log_text(), "Server cleartext/s is DOWN, reason: Layer");
    assert!(!l.log_text().contains("Server tls/s is DOWN"), "{}", l.log_text());
    drop(server);
    wait_log(|| l.log_text(), "Server tls/s is DOWN");
}

/// Starts Debian's slapd in the foreground on 127.0.0.1:`port` with an empty database in `dir`;
/// `extra` goes before the database (e.g. `disallow bind_anon`).
fn slapd(slapd: &Path, dir: &TempDir, port: u16, extra: &str) -> Proc {
    let data = dir.0.join(format!("data-{port}"));
    std::fs::create_dir_all(&data).unwrap();
    let conf = dir.write(
        &format!("slapd-{port}.conf"),
        &format!(
            "include /etc/ldap/schema/core.schema\npidfile {dir}/slapd-{port}.pid\nmodulepath /usr/lib/ldap\n\
             moduleload back_mdb\n{extra}\ndatabase mdb\nsuffix \"dc=example,dc=com\"\n\
             rootdn \"cn=admin,dc=example,dc=com\"\nrootpw secret\ndirectory {data}\n",
            dir = dir.0.display(),
            data = data.display()
        ),
    );
    let child = Command::new(slapd)
        .arg("-f")
        .arg(&conf)
        .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn slapd");
    let mut p = Proc(child);
    wait_port(port, "slapd", &mut p);
    p
}

#[test]
fn ldap_check_binds_anonymously_to_slapd() {
    let Some(bin) = find(&["/usr/sbin/slapd"]) else {
        println!("skipped: slapd is not installed (apt-get install slapd)");
        return;
    };
    if !Path::new("/etc/ldap/schema/core.schema").is_file() || !Path::new("/usr/lib/ldap/back_mdb.so").exists() {
        println!("skipped: slapd's core schema or back_mdb module is missing");
        return;
    }
    let dir = TempDir::new("slapd");
    let (open, closed) = (free_port(), free_port());
    let open_server = slapd(&bin, &dir, open, "");
    let _closed_server = slapd(&bin, &dir, closed, "disallow bind_anon");
    let not_ldap = banner_server(b"220 smtp.example ESMTP\r\n");
    let front = free_port();
    let cfg = config(open, front, &[("ldap", "{ ldap_check = true }")])
        + &backend("noanon", "{ ldap_check = true }", closed)
        + &backend("notldap", "{ ldap_check = true }", not_ldap);
    let l = Lbha::start(&cfg, &[front]);
    wait_log(|| l.log_text(), "Health check for server ldap/s succeeded");
    // slapd answers the anonymous bind with inappropriateAuthentication (48).
    wait_log(|| l.log_text(), "Server noanon/s is DOWN, reason: Layer7");
    wait_log(|| l.log_text(), "Server notldap/s is DOWN, reason: Layer7 invalid response, info: Not LDAPv3 protocol");
    assert!(!l.log_text().contains("Server ldap/s is DOWN"), "{}", l.log_text());
    drop(open_server);
    wait_log(|| l.log_text(), "Server ldap/s is DOWN");
}
