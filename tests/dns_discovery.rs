//! DNS service discovery against a real DNS server (dnsmasq, started here on 127.0.0.1): a
//! server template follows the records (A/AAAA or SRV) while traffic flows, a DNS outage keeps
//! the last addresses, and a reload keeps them too.

mod common;
use common::dnsmasq::{self, Dnsmasq};
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP server on `ip:port` answering its own IP as the body, until the test ends.
fn backend_on(ip: &'static str, port: u16) {
    let l = TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
    std::thread::spawn(move || {
        for s in l.incoming().take(100_000) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                if read_request_head(&mut s).is_some() {
                    let body = ip.as_bytes();
                    let head =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body);
                }
            });
        }
    });
}

fn body(port: u16) -> Option<String> {
    answer(port).ok()
}

/// The body of a 200 answer, or what went wrong instead.
fn answer(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| format!("read: {e} after {out:?}"))?;
    match out.starts_with("HTTP/1.1 200") {
        true => Ok(out.rsplit("\r\n\r\n").next().unwrap_or("").to_string()),
        false => Err(out),
    }
}

/// Waits (at most 20 s) until `n` answers in a row satisfy `ok`; the last answers on failure.
fn wait_for(port: u16, n: usize, what: &str, ok: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = (0..n).filter_map(|_| body(port)).collect();
        if last.len() == n && ok(&last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: last answers {last:?}");
}

/// Requests sent every 5 ms (at most 20,000, at most 60 s) while a test changes DNS records.
struct Traffic {
    stop: Arc<AtomicBool>,
    /// Each failed request: when (since the start) and what came back.
    failed: Arc<Mutex<Vec<(Duration, String)>>>,
    thread: std::thread::JoinHandle<usize>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (stop.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let deadline = start + Duration::from_secs(60);
            let mut n = 0;
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline && n < 20_000 {
                n += 1;
                if let Err(e) = answer(port) {
                    f.lock().unwrap().push((start.elapsed(), e));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        });
        Traffic { stop, failed, thread }
    }

    /// Stops the requests; every one of them must have been answered.
    fn finish(self, l: &Lbha) {
        self.stop.store(true, Ordering::SeqCst);
        assert!(self.thread.join().unwrap() > 0);
        let failed = self.failed.lock().unwrap();
        assert!(failed.is_empty(), "requests failed while the records changed: {failed:?}\n{}", l.log_text());
    }
}

#[test]
fn server_template_follows_dns_records_and_outages_keep_the_last_addresses() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("dns");
    let hosts = dir.write("hosts", "127.0.0.2 app.lbha.test\n");
    let dns_port = free_port();
    let dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    let bport = free_port();
    backend_on("127.0.0.2", bport);
    backend_on("127.0.0.3", bport);
    let port = free_port();
    let text = format!(
        "[[resolvers]]\nname = \"dns\"\nnameservers = [{{ name = \"local\", addr = \"127.0.0.1:{dns_port}\" }}]\n\
         timeout_resolve = \"200ms\"\ntimeout_retry = \"300ms\"\nresolve_retries = 2\nhold_valid = \"200ms\"\n\
         hold_timeout = \"5m\"\n\
         [defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"app\", addr = \"app.lbha.test:{bport}\", template = 3, resolvers = \"dns\", resolve_prefer = \"ipv4\" }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    wait_for(port, 4, "the first answer fills a slot", |b| b.iter().all(|x| x == "127.0.0.2"));
    let st = l.ctl(&["show servers state web"]);
    assert!(st.contains(" app1 127.0.0.2 ") && st.contains(" app3 "), "{st}");

    // Records change while traffic flows: the second address enters rotation, then the first leaves.
    let traffic = Traffic::start(port);
    std::fs::write(&hosts, "127.0.0.2 app.lbha.test\n127.0.0.3 app.lbha.test\n").unwrap();
    dns.reload();
    wait_for(port, 8, "both addresses in rotation", |b| {
        b.iter().any(|x| x == "127.0.0.2") && b.iter().any(|x| x == "127.0.0.3")
    });
    std::fs::write(&hosts, "127.0.0.3 app.lbha.test\n").unwrap();
    dns.reload();
    wait_for(port, 8, "only the remaining address", |b| b.iter().all(|x| x == "127.0.0.3"));
    traffic.finish(&l);

    // The DNS server goes away: the last addresses stay (hold timeout), also across a reload.
    drop(dns);
    std::thread::sleep(Duration::from_secs(2));
    let seen: Vec<String> = (0..8).filter_map(|_| body(port)).collect();
    assert_eq!(seen, vec!["127.0.0.3"; 8]);
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    std::thread::sleep(Duration::from_secs(1));
    let seen: Vec<String> = (0..8).filter_map(|_| body(port)).collect();
    assert_eq!(seen, vec!["127.0.0.3"; 8], "the addresses outlive a reload during the outage");
    let st = l.ctl(&["show servers state web"]);
    assert!(st.contains(" 127.0.0.3 "), "{st}");
}

#[test]
fn a_server_whose_name_goes_away_leaves_rotation_after_its_hold_and_comes_back() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("dns-nx");
    let hosts = dir.write("hosts", "127.0.0.2 one.lbha.test\n");
    let dns_port = free_port();
    let dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    let bport = free_port();
    backend_on("127.0.0.2", bport);
    let port = free_port();
    // Without a record dnsmasq (no upstream) answers NXDOMAIN or REFUSED: both holds are short.
    let text = format!(
        "[[resolvers]]\nname = \"dns\"\nnameservers = [{{ name = \"local\", addr = \"udp@127.0.0.1:{dns_port}\" }}]\n\
         timeout_resolve = \"200ms\"\nhold_valid = \"200ms\"\nhold_nx = \"1s\"\nhold_refused = \"1s\"\naccepted_payload_size = 1232\n\
         [defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"one\", addr = \"one.lbha.test:{bport}\", init_addr = \"none\", resolvers = \"dns\", resolve_net = \"127.0.0.0/8\" }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    wait_for(port, 3, "the name resolves", |b| b.iter().all(|x| x == "127.0.0.2"));
    std::fs::write(&hosts, "").unwrap();
    dns.reload();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut st = String::new();
    while Instant::now() < deadline {
        st = l.ctl(&["show stat"]);
        if st.contains("MAINT (resolution)") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(st.contains("MAINT (resolution)"), "{st}");
    assert_eq!(body(port), None, "no server: 503");
    std::fs::write(&hosts, "127.0.0.2 one.lbha.test\n127.0.0.4 two.lbha.test\n").unwrap();
    dns.reload();
    wait_for(port, 3, "the record is back", |b| b.iter().all(|x| x == "127.0.0.2"));
    // `set server fqdn` points the server at another name; its resolvers follow it.
    backend_on("127.0.0.4", bport);
    assert_eq!(
        l.ctl(&["set server web/one fqdn two.lbha.test"]),
        "web/one changed its FQDN from one.lbha.test to two.lbha.test by 'stats socket command'\n\n"
    );
    wait_for(port, 3, "the new name's address", |b| b.iter().all(|x| x == "127.0.0.4"));
    assert!(l.ctl(&["set server web/one fqdn _x._tcp.two"]).contains("invalid name"));
}

#[test]
fn an_haproxy_config_with_resolvers_and_server_template_runs_as_converted() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("dns-hap");
    let hosts = dir.write("hosts", "127.0.0.3 tpl.lbha.test\n");
    let dns_port = free_port();
    let _dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    let bport = free_port();
    backend_on("127.0.0.3", bport);
    let port = free_port();
    let cfg = format!(
        "resolvers dns\n  nameserver local 127.0.0.1:{dns_port}\n  resolve_retries 2\n  timeout resolve 200ms\n  timeout retry 300ms\n  hold valid 200ms\n  hold obsolete 0s\n  accepted_payload_size 1232\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         listen web\n  bind 127.0.0.1:{port}\n  balance roundrobin\n  server-template app 2 tpl.lbha.test:{bport} resolvers dns resolve-prefer ipv4 init-addr none\n"
    );
    // HAProxy 2.6, the oracle, takes the same file.
    if Command::new("haproxy").arg("-v").output().is_ok() {
        let f = dir.write("haproxy.cfg", &cfg);
        let out = Command::new("haproxy").arg("-c").arg("-f").arg(&f).output().unwrap();
        assert!(out.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _l = Lbha::start_haproxy(&cfg, &[port]);
    wait_for(port, 3, "the converted template is filled from DNS", |b| b.iter().all(|x| x == "127.0.0.3"));
}

/// `--srv-host` options for `_http._tcp.svc.lbha.test`: (target, port, weight).
fn srv_hosts(recs: &[(&str, u16, u16)]) -> Vec<String> {
    recs.iter().map(|(t, p, w)| format!("--srv-host=_http._tcp.svc.lbha.test,{t},{p},0,{w}")).collect()
}

/// (address, weight, port) of each server in `show servers state` lines, by server name.
fn state_rows(st: &str) -> Vec<(String, String, String, String)> {
    st.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.trim().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 18).then(|| (f[3].to_string(), f[4].to_string(), f[7].to_string(), f[18].to_string()))
        })
        .collect()
}

#[test]
fn server_template_from_srv_records_takes_port_and_weight_as_haproxy_and_follows_changes() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("dns-srv");
    // b.lbha.test has an A record dnsmasq puts in the additional section; c.lbha.test none.
    let hosts = dir.write("hosts", "127.0.0.2 a.lbha.test\n127.0.0.3 b.lbha.test\n");
    let dns_port = free_port();
    let (pa, pb) = (free_port(), free_port());
    backend_on("127.0.0.2", pa);
    backend_on("127.0.0.3", pb);
    let first = srv_hosts(&[("a.lbha.test", pa, 512), ("c.lbha.test", 9, 10)]);
    let dns = Dnsmasq::start_with(&dir.0, &hosts, dns_port, &first);
    let port = free_port();
    let resolvers = format!(
        "[[resolvers]]\nname = \"dns\"\nnameservers = [{{ name = \"local\", addr = \"127.0.0.1:{dns_port}\" }}]\n\
         timeout_resolve = \"200ms\"\ntimeout_retry = \"300ms\"\nresolve_retries = 2\nhold_valid = \"200ms\"\n\
         hold_timeout = \"5m\"\n"
    );
    let text = format!(
        "{resolvers}[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"app\", addr = \"_http._tcp.svc.lbha.test\", template = 3, resolvers = \"dns\", resolve_prefer = \"ipv4\" }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    wait_for(port, 4, "the SRV record fills a slot with its port", |b| b.iter().all(|x| x == "127.0.0.2"));
    let rows = state_rows(&l.ctl(&["show servers state web"]));
    let filled: Vec<_> = rows.iter().filter(|r| r.1 != "-").collect();
    assert_eq!(filled.len(), 1, "{rows:?}");
    assert_eq!((filled[0].1.as_str(), filled[0].2.as_str()), ("127.0.0.2", "2"), "weight 512 is 2: {rows:?}");
    assert_eq!(filled[0].3, pa.to_string());
    // Every slot names the SRV record in `srvrecord`, filled or not, as HAProxy 2.6 does.
    let st = l.ctl(&["show servers state web"]);
    let srvrecords: Vec<&str> =
        st.lines().filter_map(|x| x.split(' ').nth(19).filter(|_| x.split(' ').nth(1) == Some("web"))).collect();
    assert_eq!(srvrecords, ["_http._tcp.svc.lbha.test"; 3], "{st}");

    // HAProxy 2.6 on the same records: the same addresses, ports and weights.
    if Command::new("haproxy").arg("-v").output().is_ok() {
        let hport = free_port();
        let sock = dir.0.join("haproxy.sock");
        let cfg = format!(
            "global\n  stats socket {} level admin\nresolvers dns\n  nameserver local 127.0.0.1:{dns_port}\n  timeout resolve 200ms\n  hold valid 200ms\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             listen web\n  bind 127.0.0.1:{hport}\n  server-template app 3 _http._tcp.svc.lbha.test resolvers dns resolve-prefer ipv4 init-addr none\n",
            sock.display()
        );
        let (_h, _hd) = haproxy(&cfg, hport);
        let want: Vec<(String, String, String)> =
            filled.iter().map(|r| (r.1.clone(), r.2.clone(), r.3.clone())).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        while Instant::now() < deadline {
            use std::os::unix::net::UnixStream;
            if let Ok(mut s) = UnixStream::connect(&sock) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"show servers state web\n");
                got = state_rows(&read_to_close(&mut s))
                    .into_iter()
                    .filter(|r| r.1 != "-")
                    .map(|r| (r.1, r.2, r.3))
                    .collect();
                if got == want {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(got, want, "HAProxy 2.6 on the same SRV records");
    }

    // Records change while traffic flows: b enters with its own port and weight, then a leaves.
    let traffic = Traffic::start(port);
    drop(dns);
    let dns = Dnsmasq::start_with(
        &dir.0,
        &hosts,
        dns_port,
        &srv_hosts(&[("a.lbha.test", pa, 512), ("b.lbha.test", pb, 65535)]),
    );
    wait_for(port, 12, "both records in rotation", |b| {
        b.iter().any(|x| x == "127.0.0.2") && b.iter().any(|x| x == "127.0.0.3")
    });
    let rows = state_rows(&l.ctl(&["show servers state web"]));
    assert!(rows.iter().any(|r| r.1 == "127.0.0.3" && r.2 == "256" && r.3 == pb.to_string()), "{rows:?}");
    drop(dns);
    let _dns = Dnsmasq::start_with(&dir.0, &hosts, dns_port, &srv_hosts(&[("b.lbha.test", pb, 1)]));
    wait_for(port, 8, "only the remaining record", |b| b.iter().all(|x| x == "127.0.0.3"));
    traffic.finish(&l);
    // The record's new weight (1: HAProxy's (1 + 255) / 256 = 1) follows.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rows = Vec::new();
    while Instant::now() < deadline {
        rows = state_rows(&l.ctl(&["show servers state web"]));
        if rows.iter().any(|r| r.1 == "127.0.0.3" && r.2 == "1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rows.iter().any(|r| r.1 == "127.0.0.3" && r.2 == "1"), "{rows:?}");
    // `set server fqdn` cannot point an SRV slot at a host name.
    let name = &rows[0].0;
    assert!(l.ctl(&[&format!("set server web/{name} fqdn x.lbha.test")]).contains("SRV"));
}
