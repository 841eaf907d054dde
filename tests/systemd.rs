//! The systemd unit passes `systemd-analyze verify`, and the daemon speaks sd_notify
//! (READY=1, RELOADING=1 + MONOTONIC_USEC, STATUS=, STOPPING=1).

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn unit_file_verifies() {
    require_tool("systemd-analyze", "systemd");
    let dir = TempDir::new("unit");
    let unit = std::fs::read_to_string("systemd/lbha.service").unwrap().replace("/usr/sbin/lbha", lbha_bin());
    let path = dir.write("lbha.service", &unit);
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}

fn recv_until(sock: &UnixDatagram, needle: &str, seen: &mut Vec<String>) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = seen.iter().find(|m| m.contains(needle)) {
            return m.clone();
        }
        assert!(Instant::now() < end, "no {needle:?} in {seen:#?}");
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = TempDir::new("notify");
    let sock_path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let port = free_port();
    let cfg = dir.write(
        "lbha.toml",
        &format!("[defaults]\nmode = \"http\"\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:{port}\"]\nhttp_request = [{{ return = {{ body = \"ok\" }} }}]\n"),
    );
    let mut child = Reaped::new(
        Command::new(lbha_bin())
            .args(["run", "-c"])
            .arg(&cfg)
            .arg("-S")
            .arg(dir.0.join("ctl.sock"))
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();
    let ready = recv_until(&sock, "READY=1", &mut seen);
    assert!(ready.contains("STATUS=generation 1, 1 frontends"), "{ready}");
    send_signal(child.id(), 1); // SIGHUP
    let reloading = recv_until(&sock, "RELOADING=1", &mut seen);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    recv_until(&sock, "STATUS=generation 2", &mut seen);
    send_signal(child.id(), 15); // SIGTERM
    recv_until(&sock, "STOPPING=1", &mut seen);
    let st = child.wait().unwrap();
    assert!(st.success());
}
