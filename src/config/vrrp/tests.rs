//! One test per VRRP validation rule: each bad value is reported at its field with its value.

use super::*;
use crate::config::parse;
use crate::config::tests::errors;
use std::path::Path;

const BE: &str = "[[backend]]\nname = \"web\"\nservers = [{ name = \"a\", addr = \"192.0.2.21:80\" }]\n";

/// A valid instance with `extra` lines appended inside it.
fn inst(extra: &str) -> String {
    format!(
        "{BE}[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
         virtual_ipaddress = [\"192.0.2.100\"]\n{extra}\n"
    )
}

fn has(src: &str, want: &str) {
    let errs = errors(src);
    assert!(errs.iter().any(|e| e.contains(want)), "expected {want:?} in {errs:#?}");
}

/// Loads with a warning containing `want`; returns the VRRP settings.
fn warns(src: &str, want: &str) -> VrrpSettings {
    match parse(src, Path::new("t.toml")) {
        Ok(s) => {
            assert!(s.warnings.iter().any(|w| w.contains(want)), "expected warning {want:?} in {:#?}", s.warnings);
            s.vrrp
        }
        Err(e) => panic!("unexpected errors: {e}"),
    }
}

fn snap(src: &str) -> VrrpSettings {
    match parse(src, Path::new("t.toml")) {
        Ok(s) => s.vrrp,
        Err(e) => panic!("unexpected errors: {e}"),
    }
}

#[test]
fn defaults_follow_keepalived() {
    let v = snap(&inst(""));
    let i = &v.instances[0];
    assert_eq!((i.vrid, i.priority, i.version, i.preempt), (51, 100, 2, true));
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(i.vips[0].prefix, 32);
    assert_eq!(i.garp_master_repeat, 5);
    assert_eq!(i.garp_master_delay, Duration::from_secs(5));
    assert_eq!(i.garp_master_refresh, None);
    assert_eq!(i.state, None);
    // state MASTER without priority: the address owner.
    let owner = snap(&inst("state = \"MASTER\""));
    assert_eq!(owner.instances[0].priority, 255);
}

#[test]
fn full_instance_resolves() {
    let src = format!(
        "{}[[vrrp_script]]\nname = \"chk\"\nscript = \"true\"\nweight = -20\nrise = 2\nfall = 3\n\
         [[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\n",
        inst(
            "priority = 150\nversion = 3\nadvert_int = \"100ms\"\nstate = \"BACKUP\"\nnopreempt = true\n\
             unicast_src_ip = \"192.0.2.11\"\nunicast_peer = [\"192.0.2.12\"]\n\
             virtual_ipaddress = [\"192.0.2.100/24 dev eth1 label eth1:vip\", \"192.0.2.101\"]\n\
             track_interface = [{ name = \"eth0\", weight = -30 }]\n\
             track_script = [{ name = \"chk\" }]\ntrack_backend = [{ backend = \"web\" }]\n\
             notify = \"/bin/notify\"\ngarp_master_refresh = \"10s\""
        )
        .replace("virtual_ipaddress = [\"192.0.2.100\"]\n", "")
    );
    let v = snap(&src);
    let i = &v.instances[0];
    assert_eq!(i.priority, 150);
    assert_eq!(i.version, 3);
    assert_eq!(i.advert_int, Duration::from_millis(100));
    assert!(!i.preempt);
    assert_eq!(i.unicast_peers, vec!["192.0.2.12".parse::<IpAddr>().expect("ip")]);
    assert_eq!(i.vips[0].dev.as_deref(), Some("eth1"));
    assert_eq!(i.vips[0].label.as_deref(), Some("eth1:vip"));
    assert_eq!(i.vips[0].prefix, 24);
    assert_eq!(i.track_scripts, vec![Tracked { name: "chk".into(), weight: -20, reverse: false }]);
    assert_eq!(i.track_backends[0].weight, 0);
    assert_eq!(i.sync_group.as_deref(), Some("G"));
    assert_eq!(i.garp_master_refresh, Some(Duration::from_secs(10)));
    assert_eq!(v.scripts[0].timeout, Duration::from_secs(1));
    assert_eq!((v.scripts[0].rise, v.scripts[0].fall), (2, 3));
}

#[test]
fn ipv6_defaults_to_v3() {
    let v = snap(&inst("").replace("192.0.2.100", "2001:db8::100"));
    assert_eq!(v.instances[0].version, 3);
    assert_eq!(v.instances[0].vips[0].prefix, 128);
    has(&inst("version = 2").replace("192.0.2.100", "2001:db8::100"), "VRRPv2 is IPv4 only");
}

#[test]
fn vrid_range_and_presence() {
    has(&inst("").replace("virtual_router_id = 51\n", ""), "missing virtual_router_id");
    has(&inst("").replace("= 51", "= 0"), "virtual_router_id: must be between 1 and 255 (0)");
    has(&inst("").replace("= 51", "= 256"), "must be between 1 and 255 (256)");
}

#[test]
fn priority_range_and_owner() {
    has(&inst("priority = 0"), "priority: must be between 1 and 255 (0)");
    has(&inst("priority = 300"), "(300)");
    has(&inst("priority = 255"), "reserved for the address owner");
    assert!(errors(&inst("priority = 255\nstate = \"MASTER\"")).is_empty());
}

#[test]
fn state_version_and_interval() {
    has(&inst("state = \"master\""), "must be \"MASTER\" or \"BACKUP\"");
    has(&inst("version = 4"), "version: must be between 2 and 3 (4)");
    has(&inst("advert_int = 1"), "a bare number is milliseconds");
    has(&inst("advert_int = \"1500ms\""), "VRRPv2 needs whole seconds");
    has(&inst("version = 3\nadvert_int = \"15ms\""), "multiple of 10ms");
    has(&inst("version = 3\nadvert_int = \"41s\""), "multiple of 10ms");
}

#[test]
fn preemption_rules() {
    has(&inst("preempt_delay = \"1001s\""), "at most 1000s");
    let v = warns(
        &inst("nopreempt = true\nstate = \"MASTER\"\npriority = 200"),
        "(VI_1) nopreempt will not work with initial state MASTER - ignored",
    );
    assert!(v.instances[0].preempt, "keepalived clears nopreempt");
    has(&inst("nopreempt = true\npreempt_delay = \"5s\""), "no effect with nopreempt");
}

#[test]
fn authentication_rules() {
    let ok = snap(&inst("authentication = { auth_type = \"PASS\", auth_pass = \"secret\" }"));
    assert_eq!(ok.instances[0].auth_pass.as_deref(), Some("secret"));
    has(&inst("authentication = { auth_type = \"AH\", auth_pass = \"x\" }"), "not supported");
    has(&inst("authentication = { auth_type = \"pass\", auth_pass = \"x\" }"), "must be \"PASS\"");
    has(&inst("authentication = { auth_type = \"PASS\" }"), "missing password");
    let v = warns(
        &inst("authentication = { auth_type = \"PASS\", auth_pass = \"123456789\" }"),
        "authentication.auth_pass: truncating auth_pass to 8 characters (\"12345678\")",
    );
    assert_eq!(v.instances[0].auth_pass.as_deref(), Some("12345678"));
    has(&inst("authentication = { auth_type = \"PASS\", auth_pass = \"1234567\u{e9}\" }"), "cut inside a character");
    let v = warns(
        &inst("version = 3\nauthentication = { auth_type = \"PASS\", auth_pass = \"x\" }"),
        "(VI_1) VRRP version 3 does not support authentication - ignored",
    );
    assert_eq!(v.instances[0].auth_pass, None);
}

#[test]
fn virtual_address_rules() {
    let with = |vips: &str| inst("").replace("[\"192.0.2.100\"]", vips);
    has(&with("[]"), "at least one virtual address");
    has(&with("[\"192.0.2.300\"]"), "is not an IP address");
    has(&with("[\"192.0.2.1/33\"]"), "prefix length \"33\" is not between 0 and 32");
    has(&with("[\"224.0.0.18\"]"), "cannot be a virtual address");
    has(&with("[\"192.0.2.1 brd 192.0.2.255\"]"), "unsupported option \"brd\"");
    has(&with("[\"192.0.2.1 dev\"]"), "`dev` needs a value");
    has(&with("[\"192.0.2.1 label eth1:1\"]"), "label must be \"eth0:NAME\"");
    has(&with("[\"2001:db8::1 label eth0:1\"]"), "only for IPv4");
    has(&with("[\"192.0.2.1\", \"2001:db8::1\"]"), "one family");
    has(&with("[\"192.0.2.1\", \"192.0.2.1/24\"]"), "duplicate virtual address");
}

#[test]
fn unicast_rules() {
    has(&inst("unicast_src_ip = \"nope\""), "unicast_src_ip: not an IP address");
    has(&inst("unicast_src_ip = \"2001:db8::1\""), "family of the virtual addresses");
    has(&inst("unicast_peer = [\"192.0.2.1\", \"192.0.2.1\"]"), "duplicate peer");
    has(&inst("unicast_peer = [\"224.0.0.18\"]"), "needs a unicast address");
    has(&inst("unicast_peer = [\"x\"]"), "unicast_peer[0]: not an IP address");
    // keepalived takes (and ignores) a prefix length on both.
    let v = snap(&inst("unicast_src_ip = \"192.0.2.11/24\"\nunicast_peer = [\"192.0.2.12/24\"]"));
    assert_eq!(v.instances[0].unicast_src_ip, Some("192.0.2.11".parse().expect("ip")));
    assert_eq!(v.instances[0].unicast_peers, vec!["192.0.2.12".parse::<IpAddr>().expect("ip")]);
    has(&inst("unicast_peer = [\"192.0.2.12/x\"]"), "not an IP address");
}

#[test]
fn tracking_rules() {
    has(&inst("track_backend = [{ backend = \"nope\" }]"), "track_backend[0].backend: no such backend (nope)");
    has(&inst("track_backend = [{ backend = \"web\", weight = 300 }]"), "between -254 and 254 (300)");
    let v = warns(&inst("track_script = [{ name = \"missing\" }]"), "track script missing not found, ignoring");
    assert!(v.instances[0].track_scripts.is_empty());
    has(&inst("track_interface = [{ name = \"a/b\" }]"), "not a valid interface name");
    has(&inst("garp_master_repeat = -1"), "garp_master_repeat: must be between 0 and 255");
    has(&inst("notify_master = \"  \""), "notify_master: empty command");
    has(&inst("interface = \"\"").replace("interface = \"eth0\"\n", ""), "missing interface");
}

#[test]
fn duplicates_across_instances() {
    let two = |name2: &str, if2: &str, vrid2: u32| {
        format!(
            "{}[[vrrp_instance]]\nname = \"{name2}\"\ninterface = \"{if2}\"\nvirtual_router_id = {vrid2}\n\
             virtual_ipaddress = [\"192.0.2.101\"]\n",
            inst("")
        )
    };
    has(&two("VI_1", "eth0", 52), "duplicate vrrp_instance name (VI_1)");
    has(&two("VI_2", "eth0", 51), "VRID already used on eth0 by vrrp_instance `VI_1` (51)");
    assert!(errors(&two("VI_2", "eth1", 51)).is_empty(), "same VRID on another interface is fine");
}

#[test]
fn script_and_group_rules() {
    let script = |body: &str| format!("{}[[vrrp_script]]\n{body}\n", inst(""));
    has(&script("name = \"c\""), "vrrp_script[0].script: missing command");
    has(&script("name = \"c\"\nscript = \"true\"\ninterval = 0"), "interval: must be greater than 0");
    has(&script("name = \"c\"\nscript = \"true\"\nrise = 0"), "rise: must be between 1 and 1000");
    has(&script("name = \"c\"\nscript = \"true\"\nweight = -255"), "weight: must be between -254 and 254");
    has(
        &script("name = \"c\"\nscript = \"true\"\n[[vrrp_script]]\nname = \"c\"\nscript = \"x\""),
        "duplicate vrrp_script name",
    );
    let group = |body: &str| format!("{}[[vrrp_sync_group]]\n{body}\n", inst(""));
    has(&group("name = \"G\"\ngroup = [\"VI_9\"]"), "group[0]: no such vrrp_instance (VI_9)");
    has(&group("name = \"G\"\ngroup = []"), "at least one instance");
    has(
        &group("name = \"G\"\ngroup = [\"VI_1\"]\n[[vrrp_sync_group]]\nname = \"H\"\ngroup = [\"VI_1\"]"),
        "already in sync group `G`",
    );
}

#[test]
fn unknown_keys_are_reported() {
    has(&inst("frobnicate = true"), "unknown key `frobnicate`");
}

#[test]
fn parse_vip_forms() {
    let v = parse_vip("192.0.2.100/24 dev eth0 label eth0:1").expect("valid");
    assert_eq!(v.prefix, 24);
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert_eq!(v.label.as_deref(), Some("eth0:1"));
    assert_eq!(parse_vip("2001:db8::5").expect("valid").prefix, 128);
    assert!(parse_vip("").is_err());
    assert!(parse_vip("192.0.2.1 dev a dev b").is_err());
    assert!(parse_vip("127.0.0.1").is_err());
}

#[test]
fn lower_priority_garp_defaults_to_the_master_values() {
    let v = snap(&inst("garp_master_repeat = 3\ngarp_master_delay = \"2s\""));
    let i = &v.instances[0];
    assert_eq!((i.garp_lower_prio_repeat, i.garp_lower_prio_delay), (3, Duration::from_secs(2)));
    let v = snap(&inst("garp_lower_prio_repeat = 0\ngarp_lower_prio_delay = \"0s\""));
    let i = &v.instances[0];
    assert_eq!((i.garp_lower_prio_repeat, i.garp_lower_prio_delay), (0, Duration::ZERO));
    assert_eq!((i.garp_master_repeat, i.garp_master_delay), (5, Duration::from_secs(5)));
    has(&inst("garp_lower_prio_repeat = 256"), "garp_lower_prio_repeat: must be between 0 and 255 (256)");
}

#[test]
fn rfc9568_checksum_is_for_v3_over_ipv4() {
    assert!(snap(&inst("version = 3\nv3_checksum_as_v2 = true")).instances[0].v3_checksum_as_v2);
    assert!(!snap(&inst("version = 3")).instances[0].v3_checksum_as_v2);
    has(&inst("v3_checksum_as_v2 = true"), "v3_checksum_as_v2: applies to version = 3 only");
    has(
        &inst("v3_checksum_as_v2 = true").replace("192.0.2.100", "2001:db8::100"),
        "v3_checksum_as_v2: applies to IPv4 only",
    );
}

#[test]
fn track_proxy_is_on_when_the_vips_carry_binds() {
    let fe = |bind: &str| format!("[[listen]]\nname = \"fe\"\nbind = [\"{bind}\"]\nservers = []\n");
    assert!(!snap(&inst("")).instances[0].track_proxy, "no listener at all");
    assert!(snap(&format!("{}{}", fe("192.0.2.100:80"), inst(""))).instances[0].track_proxy);
    assert!(snap(&format!("{}{}", fe("0.0.0.0:80"), inst(""))).instances[0].track_proxy, "wildcard bind");
    assert!(!snap(&format!("{}{}", fe("192.0.2.7:80"), inst(""))).instances[0].track_proxy, "another address");
    assert!(!snap(&format!("{}{}", fe("[::]:80"), inst(""))).instances[0].track_proxy, "another family");
    let off = snap(&format!("{}{}", fe("192.0.2.100:80"), inst("track_proxy = false")));
    assert!(!off.instances[0].track_proxy, "explicitly off");
    assert!(snap(&inst("track_proxy = true")).instances[0].track_proxy, "explicitly on");
}

#[test]
fn track_files_resolve_weights_as_keepalived() {
    let tf = "[[vrrp_track_file]]\nname = \"tf\"\nfile = \"/run/lbha/tf\"\nweight = -5\ninit_file = { value = 3 }\n\
              [[vrrp_track_file]]\nname = \"rev\"\nfile = \"/run/lbha/rev\"\nreverse = true\n";
    let v = snap(&format!("{tf}{}", inst("track_file = [{ name = \"tf\" }, { name = \"rev\" }]")));
    let w: Vec<i64> = v.instances[0].track_files.iter().map(|f| f.weight).collect();
    assert_eq!(w, [-5, -1]);
    let v = warns(
        &format!(
            "{tf}{}",
            inst(
                "track_file = [{ name = \"tf\", weight = 0 }, { name = \"rev\", weight = 4, reverse = true }, { name = \"tf\" }]"
            )
        ),
        "(VI_1) duplicate track_file tf - ignoring",
    );
    let w: Vec<i64> = v.instances[0].track_files.iter().map(|f| f.weight).collect();
    assert_eq!(w, [0, -4]);
    assert_eq!(v.track_files[0].init, Some((3, false)));
    assert_eq!(v.track_files[0].file, std::path::PathBuf::from("/run/lbha/tf"));
    let v = warns(&inst("track_file = [{ name = \"nope\" }]"), "track file nope not found, ignoring");
    assert!(v.instances[0].track_files.is_empty());
    has(
        &format!("[[vrrp_track_file]]\nname = \"x\"\nfile = \"rel\"\n{}", inst("")),
        "vrrp_track_file[0].file: needs an absolute path (rel)",
    );
    has(
        &format!("{tf}[[vrrp_track_file]]\nname = \"tf\"\nfile = \"/a\"\n{}", inst("")),
        "duplicate vrrp_track_file name (tf)",
    );
}

#[test]
fn track_processes_resolve_as_keepalived() {
    let tp =
        "[[vrrp_track_process]]\nname = \"hap\"\nprocess = \"haproxy\"\nquorum = 2\nweight = -30\ndelay = \"2s\"\n";
    let v = snap(&format!("{tp}{}", inst("track_process = [{ name = \"hap\" }]")));
    let t = &v.instances[0].track_processes[0];
    assert_eq!((t.process.as_str(), t.quorum, t.weight, t.delay), ("haproxy", 2, -30, Duration::from_secs(2)));
    let v = snap(&format!("{tp}{}", inst("track_process = [{ name = \"hap\", weight = 10, reverse = true }]")));
    let t = &v.instances[0].track_processes[0];
    assert_eq!((t.weight, t.reverse), (10, true), "keepalived's multiplier, kept apart from the weight");
    warns(&inst("track_process = [{ name = \"nope\" }]"), "track process nope not found, ignoring");
    has(
        &format!("[[vrrp_track_process]]\nname = \"x\"\nprocess = \"a b\"\n{}", inst("")),
        "vrrp_track_process[0].process: one process name or path, without parameters (a b)",
    );
    has(
        &format!("[[vrrp_track_process]]\nname = \"x\"\nprocess = \"a\"\nquorum = 0\n{}", inst("")),
        "quorum: must be between 1",
    );
}

#[test]
fn sync_group_tracking_applies_to_every_member() {
    let two = format!(
        "[[vrrp_script]]\nname = \"chk\"\nscript = \"true\"\nweight = -20\n{}[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\n\
         virtual_router_id = 52\nvirtual_ipaddress = [\"192.0.2.101\"]\n[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\n",
        inst("")
    );
    let v = snap(&format!("{two}track_interface = [{{ name = \"eth9\" }}]\ntrack_script = [{{ name = \"chk\" }}]\n"));
    for i in &v.instances {
        assert_eq!(i.track_interfaces, vec![Tracked { name: "eth9".into(), weight: 0, reverse: false }], "{}", i.name);
        assert_eq!(i.track_scripts, vec![Tracked { name: "chk".into(), weight: 0, reverse: false }], "{}", i.name);
    }
    has(&format!("{two}track_interface = [{{ name = \"eth9\", weight = -10 }}]\n"), "weight 0 only");
    warns(&format!("{two}track_script = [{{ name = \"nope\" }}]\n"), "track script nope not found, ignoring");
}

#[test]
fn routes_rules_and_static_entries_are_checked_where_written() {
    has(
        &inst("virtual_routes = [\"198.51.100.0/24 via 192.0.2.1 or 192.0.2.2\"]"),
        "vrrp_instance[0].virtual_routes[0]",
    );
    has(&inst("virtual_rules = [\"from 192.0.2.0/24\"]"), "needs `table T` or an action");
    has(&inst("virtual_ipaddress_excluded = [\"192.0.2.100\"]"), "address listed twice");
    has(&format!("static_ipaddress = [\"198.51.100.1/32\"]\n{}", inst("")), "a static address needs `dev IF`");
    has(&format!("static_routes = [\"198.51.100.0/24 mtu 1400 dev eth0\"]\n{}", inst("")), "static_routes[0]");
    has(
        &format!("static_rules = [\"to 198.51.100.0/24 table 1\", \"to 198.51.100.0/24  table 1\"]\n{}", inst("")),
        "listed twice",
    );
    let v = snap(&inst(
        "virtual_ipaddress_excluded = [\"2001:db8::1/64 dev eth1\"]\nvirtual_routes = [\"blackhole 203.0.113.0/24\"]",
    ));
    assert_eq!(v.instances[0].vips_excluded[0].dev.as_deref(), Some("eth1"));
    assert_eq!(v.instances[0].routes[0].kind, 6);
}

#[test]
fn script_user_is_checked_where_written() {
    has(&format!("[global]\nscript_user = \"a b c\"\n{}", inst("")), "global.script_user");
    let s = snap(&format!(
        "[global]\nscript_user = \"nobody\"\nenable_script_security = true\n{}[[vrrp_script]]\nname = \"c\"\nscript = \"/bin/true\"\nuser = \"root root\"\n",
        inst("")
    ));
    assert!(s.script_security);
    assert_eq!(s.scripts[0].user, Some(ScriptUser { user: "root".into(), group: Some("root".into()) }));
}

#[test]
fn smtp_alert_needs_a_server_and_recipients() {
    has(&inst("smtp_alert = true"), "smtp_alert needs [global] smtp_server");
    has(&inst("smtp_alert = true"), "at least one recipient");
    has(&format!("[global]\nnotification_email = [\"not an address\"]\n{}", inst("")), "global.notification_email[0]");
    has(&format!("[global]\nsmtp_server = \"127.0.0.1 99999\"\n{}", inst("")), "bad port");
    let v = snap(&format!(
        "[global]\nsmtp_server = \"127.0.0.1\"\nnotification_email = [\"ops@example.org\"]\nsmtp_alert = true\n{}",
        inst("")
    ));
    assert!(v.instances[0].notify.smtp_alert, "[global] smtp_alert is the default");
    assert_eq!(v.smtp.map(|s| (s.port, s.timeout)), Some((25, Duration::from_secs(30))));
}

#[test]
fn vmac_names_and_modes() {
    let v = snap(&inst("use_vmac = true"));
    assert_eq!(v.instances[0].vmac.as_ref().map(|m| (m.name.as_str(), m.xmit_base)), Some(("vrrp.51", false)));
    assert_eq!(v.instances[0].vip_dev(), "vrrp.51");
    let v = snap(&inst("use_vmac = \"vmac0\"\nvmac_xmit_base = true"));
    assert_eq!(v.instances[0].vmac.as_ref().map(|m| (m.name.as_str(), m.xmit_base)), Some(("vmac0", true)));
    assert!(snap(&inst("use_vmac = false")).instances[0].vmac.is_none());
    has(&inst("vmac_xmit_base = true"), "vmac_xmit_base: needs use_vmac");
    has(&inst("use_vmac = \"a/b\""), "not a valid name for the VMAC interface");
    // IPv6 (VRRPv3): the VMAC gets the virtual MAC 00:00:5e:00:02:VRID and its parent's link-local.
    let v = snap(&inst("use_vmac = true\nversion = 3").replace("192.0.2.100", "2001:db8::100"));
    assert_eq!(v.instances[0].vip_dev(), "vrrp.51");
}

#[test]
fn keepalived_knobs_resolve_with_their_defaults() {
    let d = &snap(&inst("")).instances[0];
    assert_eq!(d.opts, InstanceOpts::default());
    assert_eq!(d.mcast_group(), "224.0.0.18".parse::<IpAddr>().expect("ip"));
    let v = snap(&inst(
        "mcast_src_ip = \"192.0.2.5\"\nmcast_group4 = \"224.0.0.19\"\nmcast_group6 = \"ff02::13\"\n\
         check_unicast_src = true\nunicast_ttl = 7\nskip_check_adv_addr = true\ndont_track_primary = true\n\
         lower_prio_no_advert = true\nhigher_prio_send_advert = true\ndown_timer_adverts = 5\n\
         garp_master_refresh_repeat = 2\ngarp_interval = \"10ms\"\ngna_interval = \"20ms\"\naccept = true\n\
         startup_delay = \"2s\"",
    ));
    let i = &v.instances[0];
    assert_eq!(i.unicast_src_ip, Some("192.0.2.5".parse().expect("ip")), "mcast_src_ip is the advert source");
    assert_eq!(i.mcast_group(), "224.0.0.19".parse::<IpAddr>().expect("ip"), "the IPv4 group for an IPv4 instance");
    let o = &i.opts;
    assert!(o.check_unicast_src && o.skip_check_adv_addr && o.dont_track_primary);
    assert!(o.lower_prio_no_advert && o.higher_prio_send_advert && !o.strict);
    assert_eq!((o.unicast_ttl, o.down_timer_adverts, o.garp_master_refresh_repeat), (7, 5, 2));
    assert_eq!((o.garp_interval, o.gna_interval), (Duration::from_millis(10), Duration::from_millis(20)));
    assert_eq!(o.startup_delay, Duration::from_secs(2));
}

#[test]
fn keepalived_knobs_bad_values_are_located() {
    let v = warns(&inst("mcast_group4 = \"192.0.2.1\""), "192.0.2.1 is not multicast - skipping");
    assert_eq!(v.instances[0].opts.mcast_group, None);
    has(&inst("mcast_group4 = \"ff02::13\""), "mcast_group4: must be an IPv4 multicast address");
    has(&inst("mcast_group6 = \"224.0.0.19\""), "mcast_group6: must be an IPv6 multicast address");
    has(&inst("unicast_ttl = 0"), "unicast_ttl: must be between 1 and 255");
    has(&inst("down_timer_adverts = 101"), "down_timer_adverts: must be between 1 and 100");
    has(
        &inst("virtual_ipaddress = [\"2001:db8::1\"]\nold_unicast_checksum = true")
            .replace("virtual_ipaddress = [\"192.0.2.100\"]\n", ""),
        "old_unicast_checksum: applies to IPv4 only",
    );
    let v = warns(&inst("garp_interval = \"2s\""), "longer than lbha spaces GARPs / NAs - using 1s");
    assert_eq!(v.instances[0].opts.garp_interval, Duration::from_secs(1));
    let v = warns(&inst("startup_delay = \"2h\""), "is invalid (at most 4294.967295s) - ignored");
    assert_eq!(v.instances[0].opts.startup_delay, Duration::ZERO);
    let v = warns(&inst("garp_master_refresh_repeat = 0"), "must be greater than 0, setting to 1");
    assert_eq!(v.instances[0].opts.garp_master_refresh_repeat, 1);
    has(
        &inst("unicast_src_ip = \"192.0.2.5\"\nmcast_src_ip = \"192.0.2.6\""),
        "mcast_src_ip: unicast_src_ip and mcast_src_ip are one setting",
    );
    // The same address twice is one setting written twice.
    snap(&inst("unicast_src_ip = \"192.0.2.5\"\nmcast_src_ip = \"192.0.2.5/24\""));
}

#[test]
fn no_accept_is_refused_unless_the_node_owns_the_addresses() {
    has(&inst("accept = false"), "accept: no_accept would drop traffic to the VIPs");
    // The owner accepts VIP traffic in any mode (RFC 5798 §6.4.3).
    snap(&inst("accept = false\npriority = 255\nstate = \"MASTER\""));
}

#[test]
fn strict_mode_follows_keepalived() {
    // VRRPv2 below 255: keepalived resets accept to off, which lbha cannot honour.
    has(&inst("strict_mode = true"), "strict_mode: strict_mode with VRRPv2 (which forces no_accept)");
    has(&inst("strict_mode = true\nversion = 3"), "strict_mode: strict_mode (whose default is no_accept");
    has(
        &inst("strict_mode = true\nversion = 3\naccept = true\nunicast_peer = [\"192.0.2.2\"]"),
        "unicast_peer: (VI_1) Unicast peers are not supported in strict mode",
    );
    let ok = "strict_mode = true\nversion = 3\naccept = true\n";
    let v = snap(&inst(ok));
    let i = &v.instances[0];
    assert!(i.opts.strict && i.opts.lower_prio_no_advert && !i.opts.higher_prio_send_advert);
    assert_eq!((i.garp_lower_prio_repeat, i.garp_lower_prio_delay), (0, Duration::ZERO), "no lower-prio GARPs");
    // What keepalived resets with a warning loads with that warning.
    let w = warns(&inst(&format!("{ok}preempt_delay = \"5s\"")), "preempt_delay is incompatible with strict mode");
    assert_eq!(w.instances[0].preempt_delay, Duration::ZERO);
    warns(&inst(&format!("{ok}higher_prio_send_advert = true")), "requires higher_prio_send_advert to be clear");
    warns(&inst(&format!("{ok}lower_prio_no_advert = false")), "requires no lower priority advert");
    warns(&inst(&format!("{ok}garp_lower_prio_repeat = 3")), "requires no repeat garps");
    let w =
        warns(&inst(&format!("{ok}state = \"MASTER\"\npriority = 200")), "State MASTER must match being address owner");
    assert_eq!(w.instances[0].state, Some(StateHint::Backup));
    // The owner may keep VRRPv2: accept mode is moot for it.
    let w = warns(
        &inst("strict_mode = true\nstate = \"MASTER\"\nauthentication = { auth_type = \"PASS\", auth_pass = \"x\" }"),
        "Strict mode does not support authentication",
    );
    assert_eq!(w.instances[0].auth_pass, None);
}

#[test]
fn sync_group_tracks_files_and_processes_with_weight_zero() {
    let src = format!(
        "{}[[vrrp_track_file]]\nname = \"maint\"\nfile = \"/run/maint\"\nweight = 5\n\
         [[vrrp_track_process]]\nname = \"sshd_up\"\nprocess = \"sshd\"\nquorum = 2\n\
         [[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\n\
         track_file = [{{ name = \"maint\" }}]\ntrack_process = [{{ name = \"sshd_up\" }}]\n",
        inst("track_file = [{ name = \"maint\", weight = 3 }]")
    );
    let v = snap(&src);
    let i = &v.instances[0];
    assert_eq!(i.track_files.len(), 1);
    assert_eq!(i.track_files[0].weight, 0, "the group's weight replaces the instance's");
    assert_eq!((i.track_processes[0].quorum, i.track_processes[0].weight), (2, 0));
    let bad = src.replace("track_file = [{ name = \"maint\" }]", "track_file = [{ name = \"maint\", weight = 2 }]");
    has(&bad, "vrrp_sync_group[0].track_file[0].weight: a sync group tracks with weight 0 only");
    let unknown = src.replace("track_process = [{ name = \"sshd_up\" }]", "track_process = [{ name = \"nope\" }]");
    warns(&unknown, "track process nope not found, ignoring");
}

#[test]
fn reverse_resolves_as_keepalived() {
    let script = "[[vrrp_script]]\nname = \"chk\"\nscript = \"true\"\nweight = 5\nreverse = true\n";
    let v = snap(&format!(
        "{script}{}",
        inst(
            "track_script = [{ name = \"chk\" }, { name = \"chk\", weight = 3 }]\n\
              track_interface = [{ name = \"eth1\", weight = -10, reverse = true }]"
        )
    ));
    let i = &v.instances[0];
    // Without a weight the script's weight and reverse; with one, the reference's own.
    assert_eq!(i.track_scripts[0], Tracked { name: "chk".into(), weight: 5, reverse: true });
    assert_eq!(i.track_scripts[1], Tracked { name: "chk".into(), weight: 3, reverse: false });
    assert_eq!(i.track_interfaces[0], Tracked { name: "eth1".into(), weight: -10, reverse: true });
    // A sync group takes 'weight 0 reverse'.
    let g = snap(&format!(
        "{}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\ntrack_interface = [{{ name = \"eth9\", reverse = true }}]\n",
        inst("")
    ));
    assert_eq!(g.instances[0].track_interfaces, vec![Tracked { name: "eth9".into(), weight: 0, reverse: true }]);
}
