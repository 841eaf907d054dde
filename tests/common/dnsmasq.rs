//! dnsmasq as a test's DNS server, on 127.0.0.1, answering from a hosts file the test writes.

use super::{Reaped, send_signal};
use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether dnsmasq is installed; when not, says the test is skipped.
pub fn installed() -> bool {
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        println!("skipped: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return false;
    }
    true
}

pub struct Dnsmasq {
    child: Reaped,
    port: u16,
}

impl Dnsmasq {
    pub fn start(dir: &Path, hosts: &Path, port: u16) -> Dnsmasq {
        Self::start_with(dir, hosts, port, &[])
    }

    /// With more options (`--srv-host=...`: dnsmasq rereads those only when restarted).
    pub fn start_with(dir: &Path, hosts: &Path, port: u16, extra: &[String]) -> Dnsmasq {
        let child = Command::new("dnsmasq")
            .arg("-k")
            .arg(format!("--port={port}"))
            .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts"])
            .arg(format!("--addn-hosts={}", hosts.display()))
            .args(["--conf-file=/dev/null", "--user=root", "--local-ttl=1"])
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        Dnsmasq { child: Reaped::new(child), port }
    }

    /// Rereads the hosts file (see `wait_for` to know when it has).
    pub fn reload(&self) {
        send_signal(self.child.id(), 1);
    }

    /// The addresses dnsmasq answers now for `name` (A records, AAAA with `v6`; none for a
    /// name it has no record of), or why there is no answer.
    pub fn lookup(&self, name: &str, v6: bool) -> Result<Vec<IpAddr>, String> {
        let id = lbha::dns::task::query_id();
        let query = lbha::dns::wire::query(id, name, v6, None)?;
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
        sock.send_to(&query, ("127.0.0.1", self.port)).map_err(|e| format!("send: {e}"))?;
        let mut buf = [0u8; 1500];
        loop {
            let n = sock.recv(&mut buf).map_err(|e| format!("receive: {e}"))?;
            if let Some(answer) = lbha::dns::wire::answer(&buf[..n], id) {
                return Ok(answer.unwrap_or_default());
            }
        }
    }

    /// Waits (at most 5 s) until dnsmasq answers `want` for `name`: it has started, or has
    /// reread its hosts file.
    pub fn wait_for(&self, name: &str, v6: bool, want: &[&str]) {
        let want: Vec<IpAddr> = want.iter().map(|a| a.parse().expect("an address")).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.lookup(name, v6);
            if got.as_ref() == Ok(&want) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("dnsmasq on port {} for {name}: want {want:?}, got {got:?}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
