//! `[global] user`: the daemon gives up root after start-up and keeps only the network
//! capabilities; it still serves, reloads, and binds a port below 1024 at a reload.

mod common;
use common::*;
use std::time::Duration;

fn status_line(pid: u32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn config(binds: &[u16], server: u16) -> String {
    let binds: Vec<String> = binds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!(
        "[global]\nuser = \"nobody\"\n[[listen]]\nname = \"web\"\nmode = \"http\"\nbind = [{}]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{server}\" }}]\n",
        binds.join(", ")
    )
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (to switch users)")]
fn user_drops_root_and_keeps_the_network_capabilities() {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a `nobody` user");
    let a = Backend::start("A");
    let port = free_port();
    let mut l = Lbha::start(&config(&[port], a.port), &[port]);
    let pid = l.child.id();
    let uid = nobody.uid.to_string();
    assert_eq!(status_line(pid, "Uid:"), [uid.as_str(); 4].join(" "), "{}", l.log_text());
    let gid = nobody.gid.to_string();
    assert_eq!(status_line(pid, "Gid:"), [gid.as_str(); 4].join(" "));
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13), nothing else.
    assert_eq!(status_line(pid, "CapEff:"), "0000000000003400");
    assert_eq!(status_line(pid, "CapPrm:"), "0000000000003400");
    // Ambient too, so `lbha upgrade`'s new process keeps them across execve.
    assert_eq!(status_line(pid, "CapAmb:"), "0000000000003400");
    assert_eq!(get(port, "/").text(), "A");

    // A reload that binds a privileged port: the kept capability at work.
    let low =
        (900..1024).find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()).expect("a free port below 1024");
    std::fs::write(&l.config, config(&[port, low], a.port)).unwrap();
    l.signal(1); // SIGHUP
    l.wait_port(low);
    assert_eq!(get(low, "/").text(), "A");
    assert_eq!(get(port, "/").text(), "A");
    let info = l.ctl(&["show info"]);
    assert!(info.contains("Last_reload: ok"), "{info}");

    // `lbha upgrade`: the new process starts as the user, connects to the control socket, and
    // keeps the capabilities (ambient) across execve.
    let (code, out, err) = l.cli(&["upgrade"]);
    let new_pid = l.served_pid();
    let _reap = KillPid(new_pid);
    assert_eq!(code, 0, "upgrade failed:\n{out}{err}\n{}", l.log_text());
    assert_ne!(new_pid, pid);
    assert_eq!(status_line(new_pid, "Uid:"), [uid.as_str(); 4].join(" "));
    assert_eq!(status_line(new_pid, "CapEff:"), "0000000000003400");
    assert_eq!(get(low, "/").text(), "A");
    assert!(l.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", l.log_text());
}

/// Kills a process the test did not spawn itself (one `lbha upgrade` started), by PID.
struct KillPid(u32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0 as i32), nix::sys::signal::Signal::SIGKILL);
    }
}

#[test]
fn an_unknown_user_is_a_clear_start_error() {
    let port = free_port();
    let dir = TempDir::new("runas");
    let cfg = dir.write("lbha.toml", &config(&[port], port).replace("\"nobody\"", "\"no-such-user-lbha\""));
    let out = std::process::Command::new(lbha_bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .arg("-S")
        .arg(dir.0.join("ctl.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("global.user: no user named \"no-such-user-lbha\""), "{err}");
}

/// An upgrade from a config without `user` into one with it: the adopted control socket is
/// handed to the user too, so the next `lbha upgrade` (whose new process starts as the user) can
/// connect to it. Before, the socket stayed root's (mode 0600) and that upgrade failed.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (to switch users)")]
fn an_upgrade_into_a_config_with_user_hands_over_the_control_socket() {
    use std::os::unix::fs::MetadataExt;
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a `nobody` user");
    let a = Backend::start("A");
    let port = free_port();
    let with_user = config(&[port], a.port);
    let mut l = Lbha::start(&with_user.replace("user = \"nobody\"\n", ""), &[port]);
    assert_eq!(std::fs::metadata(&l.sock).unwrap().uid(), 0);
    std::fs::write(&l.config, &with_user).unwrap();
    let (code, out, err) = l.cli(&["upgrade"]);
    let first = l.served_pid();
    let _reap = KillPid(first);
    assert_eq!(code, 0, "upgrade failed:\n{out}{err}\n{}", l.log_text());
    assert!(l.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", l.log_text());
    assert_eq!(status_line(first, "Uid:").split(' ').next(), Some(nobody.uid.to_string().as_str()));
    assert_eq!(std::fs::metadata(&l.sock).unwrap().uid(), nobody.uid.as_raw(), "{}", l.log_text());
    // The next upgrade runs as the user and needs the socket.
    let (code, out, err) = l.cli(&["upgrade"]);
    let second = l.served_pid();
    let _reap2 = KillPid(second);
    assert_eq!(code, 0, "second upgrade failed:\n{out}{err}\n{}", l.log_text());
    assert_ne!(second, first);
    assert_eq!(get(port, "/").text(), "A");
}
