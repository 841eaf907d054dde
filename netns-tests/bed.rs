//! Test bed of network namespaces: a bridge in its own namespace as the switch, and nodes wired to it
//! by veth pairs (each node sees `eth0`). Everything is removed on drop, also when a test panics,
//! and namespaces left by a killed earlier run (`lbha-t-<pid>-...` whose pid is gone) are removed
//! when the harness starts. Only 192.0.2.0/24 is used and no namespace has a route out.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

pub const VIP: &str = "192.0.2.100";

/// The VIP is on `holder` and not on `other`.
pub fn only_on(holder: &Node, other: &Node) -> bool {
    holder.has_addr(VIP) && !other.has_addr(VIP)
}

/// One `[[vrrp_instance]]` block with v3 and 100 ms adverts, as the fast tests run them;
/// `vips` is the inside of the `virtual_ipaddress` array.
pub fn v3_instance(name: &str, interface: &str, vrid: u8, priority: u8, vips: &str) -> String {
    format!(
        "[[vrrp_instance]]\nname = \"{name}\"\ninterface = \"{interface}\"\nvirtual_router_id = {vrid}\npriority = {priority}\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [{vips}]\n"
    )
}

/// `[global]` with a node's own state directory (runtime VIPs), for VRRP-only nodes.
pub fn global_state_dir(state_dir: &std::path::Path) -> String {
    format!("[global]\nstate_dir = \"{}\"\n\n", state_dir.display())
}

/// True when the tests can build namespaces. Without root the tests are marked ignored by
/// build.rs; run anyway (`--ignored`), they fail saying they need root rather than pass without
/// having run. As root without `ip` the test fails naming the tool.
pub fn root_or_skip(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        panic!("{test}: needs root to build network namespaces (not run)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        panic!("{test}: needs the `ip` command (iproute2; Debian: apt-get install iproute2)");
    }
    true
}

/// Runs a command; Err carries its stderr.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(args: &[&str]) -> String {
    match run(args) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// `-TERM`, `-9`, `-USR1`, ... as the `kill` command takes them.
fn parse_signal(sig: &str) -> nix::sys::signal::Signal {
    use nix::sys::signal::Signal;
    let name = sig.trim_start_matches('-');
    let parsed = match name.parse::<i32>() {
        Ok(n) => Signal::try_from(n).ok(),
        Err(_) => format!("SIG{name}").parse::<Signal>().ok(),
    };
    parsed.unwrap_or_else(|| panic!("unknown signal {sig:?}"))
}

/// Signals a process by PID from Rust: no external `kill` whose absence or failure would go unseen.
pub fn signal_pid(pid: u32, sig: &str) -> Result<(), String> {
    let Ok(raw) = i32::try_from(pid) else {
        return Err(format!("pid {pid} out of range"));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), parse_signal(sig))
        .map_err(|e| format!("kill {sig} {pid}: {e}"))
}

/// Kills every process of `node` as a crashing machine would lose them: all frozen first, so none
/// (keepalived's VRRP child gets SIGTERM when its parent dies) sends a last priority-0 advert.
pub fn kill_node(node: &Node) {
    let pids = run(&["ip", "netns", "pids", &node.ns]).unwrap_or_default();
    let pids: Vec<u32> = pids.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    for sig in ["-STOP", "-KILL"] {
        for &pid in &pids {
            let _ = signal_pid(pid, sig);
        }
    }
}

/// Kills every process inside `ns` (all started by these tests) and deletes it.
fn remove_ns(ns: &str) {
    if let Ok(pids) = run(&["ip", "netns", "pids", ns]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            let _ = signal_pid(pid, "-9");
        }
    }
    let _ = run(&["ip", "netns", "del", ns]);
}

/// Removes `lbha-t-<pid>-*` namespaces whose test process no longer exists.
fn cleanup_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let list = run(&["ip", "netns", "list"]).unwrap_or_default();
        for line in list.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(rest) = name.strip_prefix("lbha-t-") else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or("");
            if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
                eprintln!("removing stale namespace {name}");
                remove_ns(name);
            }
        }
    });
}

/// At most this many beds run at once (2 cores; timing needs some quiet).
const MAX_BEDS: usize = 3;
static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

pub struct Slot;
impl Slot {
    fn take() -> Slot {
        let (m, cv) = &SLOTS;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= MAX_BEDS {
            n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}
impl Drop for Slot {
    fn drop(&mut self) {
        let (m, cv) = &SLOTS;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        cv.notify_one();
    }
}

/// One node: a namespace with `eth0` on the switch.
#[derive(Clone)]
pub struct Node {
    pub ns: String,
    pub ip: String,
    pub mac: String,
}

impl Node {
    /// Runs `ip ARGS` inside this node's namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["ip", "-n", &self.ns];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Whether `addr` is configured on eth0.
    /// Adds `2001:db8::<host>/64` on eth0 (no DAD) and waits until the link-local address,
    /// the source of VRRPv3 adverts and Neighbor Advertisements, has finished DAD.
    pub fn add_v6(&self, host: &str) {
        self.ip(&["-6", "addr", "add", &format!("2001:db8::{host}/64"), "dev", "eth0", "nodad"]).expect("v6 address");
        wait_for(Duration::from_secs(5), || {
            self.ip(&["-6", "addr", "show", "dev", "eth0", "tentative"]).is_ok_and(|s| s.trim().is_empty())
        })
        .expect("link-local ready");
    }

    pub fn has_addr(&self, addr: &str) -> bool {
        self.ip(&["-o", "addr", "show", "dev", "eth0"]).is_ok_and(|s| s.contains(&format!(" {addr}/")))
    }

    /// The MAC this node's neighbour table has for `addr`.
    pub fn neigh_mac(&self, addr: &str) -> Option<String> {
        let s = self.ip(&["neigh", "show", addr, "dev", "eth0"]).ok()?;
        let mut w = s.split_whitespace();
        while let Some(x) = w.next() {
            if x == "lladdr" {
                return w.next().map(str::to_string);
            }
        }
        None
    }
}

static BED_SEQ: AtomicUsize = AtomicUsize::new(0);

/// The switch-side end of a node's link (at most 15 characters for short node names).
fn port_name(node: &str, ifname: &str) -> String {
    if ifname == "eth0" { format!("p-{node}") } else { format!("p-{node}-{ifname}") }
}

/// The switch and its nodes; removed on drop.
pub struct Bed {
    pub dir: PathBuf,
    sw: String,
    nodes: Vec<Node>,
    pub procs: Vec<Proc>,
    _slot: Slot,
}

impl Bed {
    /// Builds a bed with nodes `(name, last octet)`.
    pub fn new(tag: &str, nodes: &[(&str, u8)]) -> Bed {
        cleanup_stale();
        let slot = Slot::take();
        let id = BED_SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("lbha-t-{}-{id}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{prefix}-{tag}"));
        let _ = std::fs::create_dir_all(&dir);
        let sw = format!("{prefix}-sw");
        let mut bed = Bed { dir, sw: sw.clone(), nodes: Vec::new(), procs: Vec::new(), _slot: slot };
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for &(name, octet) in nodes {
            let ns = format!("{prefix}-{name}");
            must(&["ip", "netns", "add", &ns]);
            let node =
                Node { ns: ns.clone(), ip: format!("192.0.2.{octet}"), mac: format!("02:00:00:00:00:{octet:02x}") };
            bed.nodes.push(node.clone());
            let port = port_name(name, "eth0");
            must(&["ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            must(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "address", &node.mac]);
            must(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", node.ip), "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
        bed
    }

    /// Connects `ifname` of node `name` to bridge `bridge` of the switch (created when missing)
    /// with `addr` (CIDR) and `mac`, as `Bed::new` does for eth0. Used to add a second link, and to
    /// recreate a link after [`Bed::unwire`] (it gets a new interface index).
    pub fn wire(&self, name: &str, ifname: &str, bridge: &str, addr: &str, mac: &str) {
        let node = self.node(name);
        let sw = self.sw.as_str();
        if run(&["ip", "-n", sw, "link", "show", bridge]).is_err() {
            must(&["ip", "-n", sw, "link", "add", bridge, "type", "bridge", "mcast_snooping", "0"]);
            must(&["ip", "-n", sw, "link", "set", bridge, "up"]);
        }
        let port = port_name(name, ifname);
        must(&["ip", "-n", sw, "link", "add", &port, "type", "veth", "peer", "name", ifname, "netns", &node.ns]);
        must(&["ip", "-n", sw, "link", "set", &port, "master", bridge, "up"]);
        must(&["ip", "-n", &node.ns, "link", "set", ifname, "address", mac]);
        must(&["ip", "-n", &node.ns, "addr", "add", addr, "dev", ifname]);
        must(&["ip", "-n", &node.ns, "link", "set", ifname, "up"]);
    }

    /// Deletes the veth pair behind `ifname` of node `name` (both ends go).
    pub fn unwire(&self, name: &str, ifname: &str) {
        must(&["ip", "-n", &self.sw, "link", "del", &port_name(name, ifname)]);
    }

    pub fn node(&self, name: &str) -> Node {
        let suffix = format!("-{name}");
        match self.nodes.iter().find(|n| n.ns.ends_with(&suffix)) {
            Some(n) => n.clone(),
            None => panic!("no node {name}"),
        }
    }

    /// Starts `argv` inside `node`'s namespace with stderr to `<dir>/<log>`.
    pub fn spawn(&mut self, node: &Node, log: &str, argv: &[&str]) -> usize {
        let path = self.dir.join(log);
        let file = match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => f,
            Err(e) => panic!("log {}: {e}", path.display()),
        };
        let out = file.try_clone().ok().map_or(Stdio::null(), Stdio::from);
        let child = Command::new("ip")
            .args(["netns", "exec", &node.ns])
            .args(argv)
            .env("LBHA_LOG", "info,lbha::vrrp=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::from(file))
            .spawn();
        match child {
            Ok(c) => self.procs.push(Proc { child: Some(c), log: path }),
            Err(e) => panic!("spawn {argv:?}: {e}"),
        }
        self.procs.len() - 1
    }

    /// Starts lbha with `config` in `node`; the returned index names the process.
    pub fn lbha(&mut self, node: &Node, name: &str, config: &str) -> usize {
        let cfg = self.dir.join(format!("{name}.toml"));
        if let Err(e) = std::fs::write(&cfg, config) {
            panic!("write config: {e}");
        }
        let cfg = cfg.display().to_string();
        // Each daemon gets its own control socket: the namespaces share one filesystem.
        let sock = self.dir.join(format!("{name}.sock")).display().to_string();
        self.spawn(node, &format!("{name}.log"), &[&lbha_bin(), "run", "-c", &cfg, "-S", &sock])
    }

    /// A tiny HTTP server on `node`:80 answering `body` (lbha with an `http_request return`).
    pub fn backend(&mut self, node: &Node, body: &str) -> usize {
        let cfg = format!(
            "[[listen]]\nname = \"web\"\nmode = \"http\"\nbind = [\"{}:80\"]\n\
             http_request = [{{ return = {{ status = 200, body = \"{body}\\n\" }} }}]\n",
            node.ip
        );
        let name = format!("backend-{body}");
        self.lbha(node, &name, &cfg)
    }

    /// Captures every frame on the switch's bridge (tcpdump, epoch timestamps, link-level
    /// headers) into `<dir>/<log>`, for timelines of a failover; `None` when tcpdump is missing.
    /// Returns once tcpdump captures.
    pub fn capture(&mut self, log: &str) -> Option<usize> {
        run(&["tcpdump", "--version"]).ok()?;
        let sw = Node { ns: self.sw.clone(), ip: String::new(), mac: String::new() };
        let p = self.spawn(&sw, log, &["tcpdump", "-i", "br0", "-n", "-e", "-tt", "-l"]);
        wait_for(Duration::from_secs(5), || self.log(p).contains("listening on"))?;
        Some(p)
    }

    /// The process id (`ip netns exec` execs the command, so it is the command's).
    pub fn pid(&self, proc_: usize) -> Option<u32> {
        self.procs[proc_].child.as_ref().map(Child::id)
    }

    pub fn log(&self, proc_: usize) -> String {
        std::fs::read_to_string(&self.procs[proc_].log).unwrap_or_default()
    }

    /// Prints every process log (for failures).
    pub fn dump_logs(&self) {
        for p in &self.procs {
            eprintln!("==== {}\n{}", p.log.display(), std::fs::read_to_string(&p.log).unwrap_or_default());
        }
    }

    pub fn kill9(&mut self, proc_: usize) {
        self.procs[proc_].signal("-9");
        self.procs[proc_].reap(Duration::from_secs(5));
    }

    /// Sends SIGTERM without waiting, so a measurement starts at the signal.
    pub fn sigterm(&self, proc_: usize) {
        self.procs[proc_].signal("-TERM");
    }

    /// Sends any signal (`-USR1`, ...).
    pub fn signal(&self, proc_: usize, sig: &str) {
        self.procs[proc_].signal(sig);
    }

    /// Sends SIGHUP (reload).
    pub fn sighup(&self, proc_: usize) {
        self.procs[proc_].signal("-HUP");
    }

    /// SIGTERM and wait (bounded) for the exit.
    pub fn term(&mut self, proc_: usize) {
        self.procs[proc_].signal("-TERM");
        self.procs[proc_].reap(Duration::from_secs(10));
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for p in &mut self.procs {
            p.signal("-9");
            p.reap(Duration::from_secs(2));
        }
        for n in &self.nodes {
            remove_ns(&n.ns);
        }
        remove_ns(&self.sw);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child
            && let Err(e) = signal_pid(c.id(), sig)
        {
            eprintln!("{e}");
        }
    }

    fn reap(&mut self, limit: Duration) {
        let Some(c) = self.child.as_mut() else { return };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        self.child = None;
    }
}

/// A child process killed (by PID, from Rust) and reaped when dropped, also when a test fails.
pub struct Reaped(pub Option<Child>);

impl Reaped {
    /// Kills it now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` every 10 ms for at most `limit`; returns how long it took.
/// The lbha binary the daemons run: `LBHA_BIN` (a release build, for the measurements in
/// bench/README.md), else the one cargo built with the tests.
pub fn lbha_bin() -> String {
    std::env::var("LBHA_BIN").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| env!("CARGO_BIN_EXE_lbha").to_string())
}

pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Moves the calling thread into `ns`, checking that it really arrived (never touches the host).
pub fn enter_ns(ns: &str) -> Result<(), String> {
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {ns}: {e}"))?;
    let want = std::fs::metadata(&path).map_err(|e| e.to_string())?.ino();
    let now = std::fs::metadata("/proc/thread-self/ns/net").map_err(|e| e.to_string())?.ino();
    if want != now {
        return Err(format!("thread is not in {ns} after setns"));
    }
    Ok(())
}

/// Whether `node` reaches `addr` (a TCP connect that is accepted or refused; either needs the
/// neighbour entry), from a thread moved into the node's namespace.
pub fn reaches(node: &Node, addr: SocketAddr) -> bool {
    let ns = node.ns.clone();
    let r = std::thread::spawn(move || {
        enter_ns(&ns)?;
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => Ok(true),
            Err(e) => Ok(e.kind() == std::io::ErrorKind::ConnectionRefused),
        }
    })
    .join();
    matches!(r, Ok(Ok::<bool, String>(true)))
}

/// One HTTP GET with short timeouts; the last body line on a 200.
pub fn http_get(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.trim_end().lines().last().map(str::to_string)
}

/// When a request started, how long it took, and its answer.
pub type Sample = (Instant, Duration, Option<String>);
type Samples = Arc<Mutex<Vec<Sample>>>;

/// One request, recorded with when it started and how long it took.
fn probe(addr: SocketAddr, timeout: Duration, out: &Samples) {
    let at = Instant::now();
    let r = http_get(addr, timeout);
    out.lock().unwrap_or_else(|e| e.into_inner()).push((at, at.elapsed(), r));
}

/// A client in its own namespace sending HTTP requests to one address, recording when each one
/// started, how long it took and its answer.
pub struct Prober {
    stop: Arc<AtomicBool>,
    samples: Samples,
    handle: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// Requests a paced prober may have in flight: one takes at most about twice its timeout (the
/// connect, then the answer), so 16 keep a 10 ms cadence with a 50 ms timeout.
const IN_FLIGHT: usize = 16;

impl Prober {
    /// A new request every 10 ms (50 ms timeout), as in baselines.md, whether or not the earlier
    /// ones answered ([`Prober::paced`]).
    pub fn start(client: &Node, target: &str) -> Prober {
        let ip = target.parse::<IpAddr>().unwrap_or(IpAddr::from([192, 0, 2, 100]));
        Prober::paced(client, SocketAddr::new(ip, 80), Duration::from_millis(50), Duration::from_millis(10))
    }

    /// A request to `addr` with `timeout`, then a `pause`, over and over (bounded: two minutes).
    pub fn start_at(client: &Node, addr: SocketAddr, timeout: Duration, pause: Duration) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Samples = Arc::default();
        let (flag, out) = (stop.clone(), samples.clone());
        let ns = client.ns.clone();
        let handle = std::thread::spawn(move || {
            enter_ns(&ns)?;
            let t0 = Instant::now();
            // Bounded: two minutes or the stop flag.
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
                probe(addr, timeout, &out);
                std::thread::sleep(pause);
            }
            Ok(())
        });
        Prober { stop, samples, handle: Some(handle) }
    }

    /// A new request to `addr` every `every`, each with its own `timeout`, from up to
    /// [`IN_FLIGHT`] threads in the client's namespace (bounded: two minutes). A request that
    /// hangs (its SYN went to a node that no longer holds the address) does not hold up the next
    /// one, so the cadence stays `every` while nobody answers and an outage is measured to
    /// within `every`, not within the timeout. A request that finds every thread busy starts
    /// late, and is recorded with the time it really started.
    pub fn paced(client: &Node, addr: SocketAddr, timeout: Duration, every: Duration) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Samples = Arc::default();
        let (flag, out) = (stop.clone(), samples.clone());
        let ns = client.ns.clone();
        let handle = std::thread::spawn(move || {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let rx = Arc::new(Mutex::new(rx));
            let workers: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let (rx, out, ns) = (rx.clone(), out.clone(), ns.clone());
                    std::thread::spawn(move || {
                        enter_ns(&ns)?;
                        // Ends when the ticker drops its sender.
                        while rx.lock().unwrap_or_else(|e| e.into_inner()).recv().is_ok() {
                            probe(addr, timeout, &out);
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            let t0 = Instant::now();
            let mut next = t0;
            // Bounded: two minutes or the stop flag (or no worker left).
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) && tx.send(()).is_ok() {
                next += every;
                match next.checked_duration_since(Instant::now()) {
                    Some(d) => std::thread::sleep(d),
                    // Late (a loaded machine): the next one now, without a burst to catch up.
                    None => next = Instant::now(),
                }
            }
            drop(tx);
            let mut failed = Ok(());
            for w in workers {
                match w.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failed = Err(e),
                    Err(_) => failed = Err("prober worker panicked".to_string()),
                }
            }
            failed
        });
        Prober { stop, samples, handle: Some(handle) }
    }

    /// The last successful answer's body line, if any request started after `t` succeeded.
    pub fn ok_after(&self, t: Instant) -> Option<String> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        // Recorded as they end: a paced prober's are not in the order they started.
        s.iter()
            .filter(|(at, _, r)| *at >= t && r.is_some())
            .max_by_key(|(at, _, _)| *at)
            .and_then(|(_, _, r)| r.clone())
    }

    /// Stops and returns the samples.
    pub fn finish(self) -> Vec<(Instant, Option<String>)> {
        self.finish_timed().into_iter().map(|(at, _, r)| (at, r)).collect()
    }

    /// Stops and returns the samples with each request's duration, in the order they started.
    pub fn finish_timed(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("prober: {e}"),
                Err(_) => panic!("prober thread panicked"),
            }
        }
        let mut all = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        all.sort_by_key(|(at, _, _)| *at);
        all
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Longest time without a successful answer around and after `from`: from the start of the last
/// request that succeeded before it (or `from`) to the start of the next that succeeded, and so
/// on (a failure until the end counts too). `samples` in the order they started.
pub fn outage(samples: &[(Instant, Option<String>)], from: Instant) -> Duration {
    let (a, b) = outage_span(samples, from);
    b.saturating_duration_since(a)
}

/// Where [`outage`] lies: the starts of the answered requests around it.
pub fn outage_span(samples: &[(Instant, Option<String>)], from: Instant) -> (Instant, Instant) {
    let mut last_ok =
        samples.iter().filter(|(at, r)| *at <= from && r.is_some()).map(|(at, _)| *at).max().unwrap_or(from);
    let mut worst = (last_ok, last_ok);
    let longer = |w: (Instant, Instant), a: Instant, b: Instant| {
        if b.saturating_duration_since(a) > w.1.saturating_duration_since(w.0) { (a, b) } else { w }
    };
    for (at, r) in samples.iter().filter(|(at, _)| *at >= from) {
        if r.is_some() {
            worst = longer(worst, last_ok, *at);
            last_ok = *at;
        }
    }
    if let Some((end, _)) = samples.last() {
        worst = longer(worst, last_ok, *end);
    }
    worst
}

pub fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_runs_from_the_last_answer_before_the_failure_to_the_next() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let ok = Some("be1".to_string());
        let samples =
            vec![(at(0), ok.clone()), (at(10), ok.clone()), (at(20), None), (at(30), None), (at(95), ok.clone())];
        // Failure at 15: the last answer started at 10, the next at 95.
        assert_eq!(outage(&samples, at(15)), Duration::from_millis(85));
        // No answer before the failure: counted from the failure.
        assert_eq!(outage(&samples[2..], at(15)), Duration::from_millis(80));
        // None after it either: until the last request.
        assert_eq!(outage(&samples[..4], at(15)), Duration::from_millis(20));
    }
}
