//! keepalived's `script_user` and `enable_script_security`: scripts run as the configured user (a
//! `vrrp_script`'s own `user` first), and with security on a script run as root that others could
//! change is refused: at start (the daemon does not start), at a reload (nothing changes), and
//! before each run (a tracked script made unsafe later counts as failing: the VIP moves).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::bed::{self, Bed, VIP, wait_for};

fn chmod(p: &std::path::Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn scripts_run_as_script_user_and_unsafe_ones_are_refused() {
    if !bed::root_or_skip("scripts_run_as_script_user_and_unsafe_ones_are_refused") {
        return;
    }
    let mut bed = Bed::new("scriptuser", &[("lb1", 11)]);
    let lb1 = bed.node("lb1");
    // Where `nobody` may write what the notify script saw.
    let out = bed.dir.join("out");
    std::fs::create_dir_all(&out).expect("dir");
    chmod(&out, 0o777);
    // A root-owned track script in a root-owned 0755 directory: safe to run as root.
    let check = bed.dir.join("check.sh");
    std::fs::write(&check, format!("#!/bin/sh\nid -u > {}/check-uid\nexit 0\n", out.display())).expect("write");
    chmod(&check, 0o755);
    let state = bed.dir.join("state");
    let config = |script: &std::path::Path| {
        format!(
            "[global]\nstate_dir = \"{}\"\nscript_user = \"nobody\"\nenable_script_security = true\n\n\
             [[vrrp_script]]\nname = \"chk\"\nscript = \"{}\"\ninterval = \"100ms\"\nuser = \"root\"\n\n\
             {}track_script = [{{ name = \"chk\", weight = 0 }}]\nnotify_master = \"id -u > {}/notify-uid\"\n",
            state.display(),
            script.display(),
            bed::v3_instance("VI_1", "eth0", 51, 150, &format!("\"{VIP}/32\"")),
            out.display()
        )
    };
    let p = bed.lbha(&lb1, "lb1", &config(&check));
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("lb1 master");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    wait_for(Duration::from_secs(5), || read("notify-uid") == "65534\n").expect("notify_master ran as nobody");
    assert_eq!(read("check-uid"), "0\n", "the vrrp_script's own `user = root` wins over script_user");

    // A reload to a script in a world-writable directory is refused; the instance keeps running.
    let open_dir = bed.dir.join("open");
    std::fs::create_dir_all(&open_dir).expect("dir");
    chmod(&open_dir, 0o777);
    let unsafe_check = open_dir.join("check.sh");
    std::fs::copy(&check, &unsafe_check).expect("copy");
    std::fs::write(bed.dir.join("lb1.toml"), config(&unsafe_check)).expect("rewrite config");
    bed.sighup(p);
    wait_for(Duration::from_secs(10), || bed.log(p).contains("unsafe permissions for script")).expect("reload refused");
    assert!(bed.log(p).contains("is writable by everyone"), "{}", bed.log(p));
    std::thread::sleep(Duration::from_millis(500));
    assert!(lb1.has_addr(VIP), "a refused reload changes nothing");

    // The running script's file becomes world-writable: refused before its next run, it counts as
    // failing (weight 0: FAULT) and the VIP goes.
    chmod(&check, 0o757);
    wait_for(Duration::from_secs(10), || !lb1.has_addr(VIP)).expect("unsafe script fails: FAULT");
    assert!(bed.log(p).contains("not run (enable_script_security)"), "{}", bed.log(p));
    chmod(&check, 0o755);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("safe again: master");
    bed.term(p);

    // At start, the unsafe script stops the daemon from starting.
    let p2 = bed.lbha(&lb1, "lb1b", &config(&unsafe_check));
    wait_for(Duration::from_secs(10), || bed.log(p2).contains("unsafe permissions for script")).expect("start refused");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!lb1.has_addr(VIP), "no VIP from a refused start");
}
