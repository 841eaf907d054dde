//! keepalived's `smtp_alert`: state changes of an instance and of its sync group are mailed, with
//! keepalived's subjects and bodies, to a real SMTP server (Debian's python3-aiosmtpd, printing
//! what it receives) on the node's own 127.0.0.1.

use std::time::Duration;

use crate::bed::{self, Bed, VIP, wait_for};

const PYTHON: &str = "/usr/bin/python3";

fn sink_available() -> bool {
    std::process::Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn state_changes_are_mailed() {
    if !bed::root_or_skip("state_changes_are_mailed") {
        return;
    }
    if !sink_available() {
        println!("skipped: state_changes_are_mailed needs {PYTHON} with aiosmtpd (Debian: python3-aiosmtpd)");
        return;
    }
    let mut bed = Bed::new("smtp", &[("lb1", 11)]);
    let lb1 = bed.node("lb1");
    let sink = bed.spawn(
        &lb1,
        "sink.log",
        &[PYTHON, "-u", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:2525", "-c", "aiosmtpd.handlers.Debugging"],
    );
    let cfg = format!(
        "[global]\nstate_dir = \"{}\"\nrouter_id = \"lb1\"\nnotification_email = [\"ops@example.org\", \"oncall@example.org\"]\n\
         notification_email_from = \"lb1@example.org\"\nsmtp_server = \"127.0.0.1 2525\"\nsmtp_connect_timeout = \"5s\"\n\n\
         {}smtp_alert = true\n\n[[vrrp_sync_group]]\nname = \"G1\"\ngroup = [\"VI_1\"]\nsmtp_alert = true\n",
        bed.dir.join("state").display(),
        bed::v3_instance("VI_1", "eth0", 51, 150, &format!("\"{VIP}/32\"")),
    );
    // The sink listens before lbha starts (a refused connection is only logged).
    wait_for(Duration::from_secs(10), || {
        bed::run(&["ip", "netns", "exec", &lb1.ns, "ss", "-ltn"]).is_ok_and(|s| s.contains("127.0.0.1:2525"))
    })
    .expect("SMTP sink listening");
    let p = bed.lbha(&lb1, "lb1", &cfg);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("lb1 master");
    let want = [
        "Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state",
        "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state",
        "=> VRRP Instance is now owning VRRP VIPs <=",
        "Subject: [lb1] VRRP Group G1 - Entering MASTER state",
        "=> All VRRP group instances are now in MASTER state <=",
        "From: lb1@example.org",
        "To: ops@example.org, oncall@example.org",
    ];
    wait_for(Duration::from_secs(10), || {
        let got = bed.log(sink);
        want.iter().all(|w| got.contains(w))
    })
    .unwrap_or_else(|| panic!("mails received:\n{}\nlbha:\n{}", bed.log(sink), bed.log(p)));
    // lbha logs the send once the server has acknowledged it, which may be just after the sink prints it.
    wait_for(Duration::from_secs(10), || {
        bed.log(p).contains("smtp_alert sent: [lb1] VRRP Instance VI_1 - Entering MASTER state")
    })
    .unwrap_or_else(|| panic!("{}", bed.log(p)));
}
