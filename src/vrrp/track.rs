//! Tracking (keepalived's weight rules): tracked interfaces, `vrrp_script`s and the proxy's own
//! backends either lower/raise the priority or put the instance in Fault.
//!
//! [`evaluate`] is pure: it turns the observed state of every tracked object into a fault reason and
//! a priority delta. [`RiseFall`] is the pure script counter; [`spawn_script`] runs a script on its
//! interval with a hard timeout and publishes its state on a watch channel.

use std::time::Duration;

use tokio::sync::watch;

use super::fsm::FaultReason;
use crate::config::vrrp::{ScriptUser, Tracked, VrrpInstance, VrrpScript};

/// What tracking says about one instance right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub fault: Option<FaultReason>,
    /// Sum of weights to add to the configured priority.
    pub delta: i32,
}

/// Observations the instance gathered this round.
pub trait Observed {
    /// The instance's own interface exists, is up and has carrier.
    fn primary_usable(&self) -> bool;
    fn interface_usable(&self, name: &str) -> bool;
    fn script_ok(&self, name: &str) -> bool;
    /// Usable servers of a backend (`nbsrv`).
    fn nbsrv(&self, backend: &str) -> usize;
    /// Why the proxy cannot serve this instance's VIPs (`track_proxy`), if it cannot.
    fn proxy_fault(&self) -> Option<String>;
    /// The number a tracked file holds (0 when missing or not a number, as keepalived).
    fn file_value(&self, path: &std::path::Path) -> i64;
    /// A `track_process` has its quorum (after its delay).
    fn process_ok(&self, name: &str) -> bool;
}

/// A tracked file's number: its first word as an integer, else 0.
pub fn read_file_value(path: &std::path::Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse::<i64>().ok()))
        .unwrap_or(0)
}

/// keepalived: weight 0 → Fault while failing; weight > 0 → added while OK; weight < 0 → added
/// (subtracted) while failing. `reverse` multiplies the adjustment by -1, and with weight 0 means
/// Fault while OK.
fn apply(t: &Tracked, ok: bool, what: &str, fault: &mut Option<FaultReason>, delta: &mut i32) {
    let sign = if t.reverse { -1 } else { 1 };
    match (t.weight, ok) {
        (0, ok) if ok == t.reverse && fault.is_none() => {
            let how = if ok { "is up (reverse)" } else { "failed" };
            *fault = Some(FaultReason::Tracker(format!("{what} {} {how}", t.name)));
        }
        (w, true) if w > 0 => *delta += w * sign,
        (w, false) if w < 0 => *delta += w * sign,
        _ => {}
    }
}

/// Combines every tracked object of `inst` into one outcome.
pub fn evaluate(inst: &VrrpInstance, seen: &dyn Observed) -> Outcome {
    let mut fault = None;
    let mut delta = 0;
    // keepalived `dont_track_primary`: the interface's own state is no fault.
    if !seen.primary_usable() && !inst.opts.dont_track_primary {
        fault = Some(FaultReason::InterfaceDown);
    }
    if inst.opts.unicast_fault_no_peer && inst.unicast_peers.is_empty() && fault.is_none() {
        fault = Some(FaultReason::NoUnicastPeer);
    }
    for t in &inst.track_interfaces {
        apply(t, seen.interface_usable(&t.name), "interface", &mut fault, &mut delta);
    }
    for t in &inst.track_scripts {
        apply(t, seen.script_ok(&t.name), "script", &mut fault, &mut delta);
    }
    for t in &inst.track_backends {
        apply(t, seen.nbsrv(&t.name) > 0, "backend", &mut fault, &mut delta);
    }
    for t in &inst.track_processes {
        let tr = Tracked { name: t.name.clone(), weight: t.weight, reverse: t.reverse };
        apply(&tr, seen.process_ok(&t.name), "process", &mut fault, &mut delta);
    }
    for f in &inst.track_files {
        let v = seen.file_value(&f.file);
        if f.weight == 0 {
            // keepalived: non-zero means down; `reverse` turns that round.
            if (v != 0) != f.reverse && fault.is_none() {
                fault = Some(FaultReason::Tracker(format!("track_file {} holds {v}", f.name)));
            }
            continue;
        }
        let r = v.saturating_mul(f.weight);
        if r < -253 {
            if fault.is_none() {
                fault = Some(FaultReason::Tracker(format!("track_file {} holds {v} (x {} = {r})", f.name, f.weight)));
            }
        } else {
            delta = delta.saturating_add(r.clamp(-254, 254) as i32);
        }
    }
    if inst.track_proxy
        && fault.is_none()
        && let Some(why) = seen.proxy_fault()
    {
        fault = Some(FaultReason::Tracker(why));
    }
    Outcome { fault, delta }
}

/// The effective priority keepalived computes: base + delta clamped to 1..=254; an owner keeps 255.
pub fn effective_priority(base: u8, delta: i32) -> u8 {
    if base == 255 {
        return 255;
    }
    (i32::from(base) + delta).clamp(1, 254) as u8
}

/// A script's rise/fall counter. Starts OK, as keepalived does without `init_fail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    ok: bool,
    streak: u32,
}

impl RiseFall {
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall { rise: rise.max(1), fall: fall.max(1), ok: true, streak: 0 }
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    /// Feeds one result; returns the new state when it flips.
    pub fn feed(&mut self, success: bool) -> Option<bool> {
        if success == self.ok {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let need = if success { self.rise } else { self.fall };
        if self.streak >= need {
            self.ok = success;
            self.streak = 0;
            Some(success)
        } else {
            None
        }
    }
}

/// Runs `sh -c script` once: success is exit status 0 within `timeout`; a timeout kills it and
/// counts as a failure (keepalived issue #535).
pub async fn run_once(script: &str, timeout: Duration, user: Option<&ScriptUser>) -> bool {
    let child = match super::script::shell(script, "sh", &[], user) {
        Ok(mut c) => c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn(),
        Err(e) => {
            // Refused scripts count as failing: never fail open.
            tracing::error!("vrrp_script {script:?}: {e}");
            return false;
        }
    };
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("vrrp_script: cannot run {script:?}: {e}");
            return false;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::warn!("vrrp_script {script:?} timed out after {timeout:?}");
            let _ = child.kill().await;
            false
        }
    }
}

/// A running script checker; dropping the handle's `stop` sender ends it.
pub struct ScriptHandle {
    pub def: VrrpScript,
    pub state: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
}

impl ScriptHandle {
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for ScriptHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts checking `def` every `interval`.
pub fn spawn_script(def: VrrpScript) -> ScriptHandle {
    let (state_tx, state) = watch::channel(true);
    let (stop, mut stop_rx) = watch::channel(false);
    let d = def.clone();
    tokio::spawn(async move {
        let mut rf = RiseFall::new(d.rise, d.fall);
        let mut tick = tokio::time::interval(d.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                _ = tick.tick() => {
                    let ok = run_once(&d.script, d.timeout, d.user.as_ref()).await;
                    if let Some(now_ok) = rf.feed(ok) {
                        tracing::info!(script = %d.name, "vrrp_script is now {}", if now_ok { "OK" } else { "FAILED" });
                        let _ = state_tx.send(now_ok);
                    }
                }
            }
        }
    });
    ScriptHandle { def, state, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vrrp::{NotifyScripts, TrackedFile, VipDef};
    use std::collections::HashMap;

    struct Seen {
        primary: bool,
        ifaces: HashMap<&'static str, bool>,
        scripts: HashMap<&'static str, bool>,
        backends: HashMap<&'static str, usize>,
        proxy: Option<String>,
        files: HashMap<&'static str, i64>,
    }

    impl Observed for Seen {
        fn primary_usable(&self) -> bool {
            self.primary
        }
        fn interface_usable(&self, name: &str) -> bool {
            self.ifaces.get(name).copied().unwrap_or(false)
        }
        fn script_ok(&self, name: &str) -> bool {
            self.scripts.get(name).copied().unwrap_or(false)
        }
        fn nbsrv(&self, backend: &str) -> usize {
            self.backends.get(backend).copied().unwrap_or(0)
        }
        fn proxy_fault(&self) -> Option<String> {
            self.proxy.clone()
        }
        fn file_value(&self, path: &std::path::Path) -> i64 {
            self.files.get(path.to_str().unwrap_or("")).copied().unwrap_or(0)
        }
        fn process_ok(&self, name: &str) -> bool {
            name != "down"
        }
    }

    fn t(name: &str, weight: i32) -> Tracked {
        Tracked { name: name.into(), weight, reverse: false }
    }

    fn inst() -> VrrpInstance {
        VrrpInstance {
            name: "VI".into(),
            interface: "eth0".into(),
            vrid: 1,
            priority: 100,
            advert_int: Duration::from_secs(1),
            version: 2,
            state: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            auth_pass: None,
            unicast_src_ip: None,
            unicast_peers: vec![],
            vips: vec![VipDef { addr: "192.0.2.100".parse().expect("ip"), prefix: 32, dev: None, label: None }],
            vips_excluded: vec![],
            routes: vec![],
            rules: vec![],
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: None,
            garp_lower_prio_repeat: 5,
            garp_lower_prio_delay: Duration::from_secs(5),
            v3_checksum_as_v2: false,
            opts: Default::default(),
            track_interfaces: vec![t("eth1", -30)],
            track_scripts: vec![t("chk", 20), t("must", 0)],
            track_backends: vec![t("web", 0), t("api", -50)],
            track_proxy: true,
            track_files: vec![],
            track_processes: vec![],
            notify: NotifyScripts::default(),
            sync_group: None,
            vmac: None,
        }
    }

    fn seen() -> Seen {
        Seen {
            primary: true,
            ifaces: HashMap::from([("eth1", true)]),
            scripts: HashMap::from([("chk", true), ("must", true)]),
            backends: HashMap::from([("web", 2), ("api", 1)]),
            proxy: None,
            files: HashMap::new(),
        }
    }

    #[test]
    fn all_ok_adds_positive_weights_only() {
        let o = evaluate(&inst(), &seen());
        assert_eq!(o, Outcome { fault: None, delta: 20 });
    }

    #[test]
    fn negative_weights_subtract_while_failing() {
        let mut s = seen();
        s.ifaces.insert("eth1", false);
        s.backends.insert("api", 0);
        s.scripts.insert("chk", false);
        assert_eq!(evaluate(&inst(), &s), Outcome { fault: None, delta: -80 });
    }

    #[test]
    fn weight_zero_and_primary_interface_mean_fault() {
        let mut s = seen();
        s.backends.insert("web", 0);
        let o = evaluate(&inst(), &s);
        assert_eq!(o.fault, Some(FaultReason::Tracker("backend web failed".into())));
        s.primary = false;
        assert_eq!(evaluate(&inst(), &s).fault, Some(FaultReason::InterfaceDown));
        let mut down = seen();
        down.primary = false;
        let mut dont = inst();
        dont.opts.dont_track_primary = true;
        assert_eq!(evaluate(&dont, &down).fault, None, "dont_track_primary");
        assert_eq!(evaluate(&inst(), &down).fault, Some(FaultReason::InterfaceDown));
        let mut lonely = inst();
        lonely.opts.unicast_fault_no_peer = true;
        assert_eq!(evaluate(&lonely, &seen()).fault, Some(FaultReason::NoUnicastPeer), "unicast_fault_no_peer");
        lonely.unicast_peers = vec!["192.0.2.2".parse().expect("ip")];
        assert_eq!(evaluate(&lonely, &seen()).fault, None);
        let mut s = seen();
        s.scripts.insert("must", false);
        assert_eq!(evaluate(&inst(), &s).fault, Some(FaultReason::Tracker("script must failed".into())));
    }

    #[test]
    fn a_proxy_fault_means_fault_only_with_track_proxy() {
        let mut s = seen();
        s.proxy = Some("proxy listener 192.0.2.100:80 failed: gone".into());
        let o = evaluate(&inst(), &s);
        assert_eq!(o.fault, Some(FaultReason::Tracker("proxy listener 192.0.2.100:80 failed: gone".into())));
        let mut off = inst();
        off.track_proxy = false;
        assert_eq!(evaluate(&off, &s), Outcome { fault: None, delta: 20 });
    }

    #[test]
    fn track_files_follow_keepalived() {
        let f = |name: &str, weight| TrackedFile {
            name: name.into(),
            file: format!("/f/{name}").into(),
            weight,
            reverse: false,
        };
        let mut i = inst();
        i.track_scripts.clear();
        i.track_files = vec![f("a", 0), f("b", -10), f("c", 2)];
        let mut s = seen();
        assert_eq!(evaluate(&i, &s), Outcome { fault: None, delta: 0 }, "missing files hold 0");
        s.files.insert("/f/b", 3);
        s.files.insert("/f/c", 5);
        assert_eq!(evaluate(&i, &s), Outcome { fault: None, delta: -30 + 10 });
        s.files.insert("/f/a", 1);
        assert_eq!(evaluate(&i, &s).fault, Some(FaultReason::Tracker("track_file a holds 1".into())));
        s.files.insert("/f/a", 0);
        s.files.insert("/f/b", 26);
        assert_eq!(
            evaluate(&i, &s).fault,
            Some(FaultReason::Tracker("track_file b holds 26 (x -10 = -260)".into())),
            "below -253: FAULT"
        );
    }

    #[test]
    fn reverse_turns_the_adjustment_round() {
        let r = |name: &str, weight| Tracked { name: name.into(), weight, reverse: true };
        let mut i = inst();
        i.track_scripts.clear();
        i.track_backends.clear();
        let mut s = seen();
        s.ifaces.insert("up0", true);
        s.ifaces.insert("down0", false);
        // keepalived: a positive weight is subtracted while up, a negative one added while down.
        i.track_interfaces = vec![r("up0", 10), r("down0", -20), r("up0", -5), r("down0", 7)];
        assert_eq!(evaluate(&i, &s), Outcome { fault: None, delta: 10 });
        // 'weight 0 reverse': FAULT while the interface is up, none while it is down.
        i.track_interfaces = vec![r("down0", 0)];
        assert_eq!(evaluate(&i, &s).fault, None);
        i.track_interfaces = vec![r("up0", 0)];
        assert_eq!(evaluate(&i, &s).fault, Some(FaultReason::Tracker("interface up0 is up (reverse)".into())));
        // A file with 'weight 0 reverse': FAULT while it holds 0.
        i.track_interfaces.clear();
        let file = |reverse| TrackedFile { name: "f".into(), file: "/f/f".into(), weight: 0, reverse };
        i.track_files = vec![file(true)];
        assert_eq!(evaluate(&i, &s).fault, Some(FaultReason::Tracker("track_file f holds 0".into())));
        s.files.insert("/f/f", 1);
        assert_eq!(evaluate(&i, &s).fault, None);
        i.track_files = vec![file(false)];
        assert_eq!(evaluate(&i, &s).fault, Some(FaultReason::Tracker("track_file f holds 1".into())));
    }

    #[test]
    fn track_processes_weigh_as_scripts() {
        use crate::config::vrrp::TrackedProcess;
        let p = |name: &str, weight| TrackedProcess {
            name: name.into(),
            process: "x".into(),
            quorum: 1,
            delay: Duration::ZERO,
            weight,
            reverse: false,
        };
        let mut i = inst();
        i.track_scripts.clear();
        i.track_processes = vec![p("up", 5), p("down", -20)];
        assert_eq!(evaluate(&i, &seen()), Outcome { fault: None, delta: -15 });
        i.track_processes = vec![p("down", 0)];
        assert_eq!(evaluate(&i, &seen()).fault, Some(FaultReason::Tracker("process down failed".into())));
    }

    #[test]
    fn a_file_value_is_its_first_number() {
        let dir = std::env::temp_dir().join(format!("lbha-trackfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("v");
        std::fs::write(&p, " -12 \n").expect("write");
        assert_eq!(read_file_value(&p), -12);
        std::fs::write(&p, "x").expect("write");
        assert_eq!(read_file_value(&p), 0);
        assert_eq!(read_file_value(&dir.join("missing")), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn effective_priority_clamps_and_keeps_owner() {
        assert_eq!(effective_priority(100, 20), 120);
        assert_eq!(effective_priority(100, -200), 1);
        assert_eq!(effective_priority(200, 100), 254);
        assert_eq!(effective_priority(255, -100), 255);
    }

    #[test]
    fn rise_fall_needs_consecutive_results() {
        let mut rf = RiseFall::new(2, 3);
        assert!(rf.ok());
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(true), None, "a success resets the failure streak");
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), Some(false));
        assert_eq!(rf.feed(true), None);
        assert_eq!(rf.feed(true), Some(true));
        assert_eq!(rf.feed(true), None);
    }

    #[tokio::test]
    async fn scripts_succeed_fail_and_time_out() {
        assert!(run_once("exit 0", Duration::from_secs(5), None).await);
        assert!(!run_once("exit 3", Duration::from_secs(5), None).await);
        let t0 = std::time::Instant::now();
        assert!(!run_once("sleep 5", Duration::from_millis(100), None).await);
        assert!(t0.elapsed() < Duration::from_secs(3), "timeout kills the script");
    }
}
