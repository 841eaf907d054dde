//! keepalived.conf → the `[[vrrp_*]]` schema.

use super::*;

fn keepalived_conv(src: &str) -> Conversion {
    let mut none = |_: &str, _: &Path| Ok(Vec::new());
    let k =
        crate::convert::keepalived::ast::parse(src, Path::new("k.conf"), &mut none).unwrap_or_else(|e| panic!("{e}"));
    convert(None, Some(&k), Path::new("."), &no_env).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn keepalived_maps_onto_the_vrrp_schema() {
    let c = keepalived_conv(
        "global_defs {\n  router_id lb1\n  vrrp_version 3\n  notification_email { a@b }\n}\nvrrp_script chk_haproxy {\n  script \"killall -0 haproxy\"\n  interval 2\n  weight -20\n  fall 3\n  rise 2\n  timeout 1.5\n}\nvrrp_instance VI_1 {\n  state master\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  nopreempt\n  preempt_delay 30\n  authentication {\n    auth_type PASS\n    auth_pass 1111\n  }\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }\n  virtual_ipaddress {\n    192.0.2.100/24 dev eth0 label eth0:1\n    192.0.2.101/24 brd 192.0.2.255 scope global\n  }\n  garp_master_delay 2\n  track_interface {\n    eth1 weight -10\n  }\n  track_script {\n    chk_haproxy\n  }\n  notify_master \"/etc/keepalived/notify.sh master\"\n  use_vmac\n  frobnicate\n}\nvrrp_sync_group G1 {\n  group {\n    VI_1\n  }\n}\nvirtual_server 192.0.2.100 80 {\n  delay_loop 6\n}\n",
    );
    let t = table(&c);
    let i = &t["vrrp_instance"][0];
    assert_eq!(i["name"].as_str(), Some("VI_1"));
    assert_eq!(i["state"].as_str(), Some("MASTER"));
    assert_eq!(i["version"].as_integer(), Some(3));
    assert_eq!(i["virtual_router_id"].as_integer(), Some(51));
    assert_eq!(i["advert_int"].as_str(), Some("1s"));
    assert_eq!(i["preempt_delay"].as_str(), Some("30s"));
    assert_eq!(i["garp_master_delay"].as_str(), Some("2s"));
    assert_eq!(i["nopreempt"].as_bool(), Some(true));
    assert_eq!(i["authentication"]["auth_pass"].as_str(), Some("1111"));
    assert_eq!(i["unicast_peer"][0].as_str(), Some("192.0.2.2"));
    assert_eq!(i["virtual_ipaddress"][0].as_str(), Some("192.0.2.100/24 dev eth0 label eth0:1"));
    assert_eq!(i["virtual_ipaddress"][1].as_str(), Some("192.0.2.101/24"));
    assert_eq!(i["track_interface"][0]["weight"].as_integer(), Some(-10));
    assert_eq!(i["track_script"][0]["name"].as_str(), Some("chk_haproxy"));
    assert_eq!(i["notify_master"].as_str(), Some("/etc/keepalived/notify.sh master"));
    assert_eq!(i["use_vmac"].as_bool(), Some(true));
    let s = &t["vrrp_script"][0];
    assert_eq!(s["script"].as_str(), Some("killall -0 haproxy"));
    assert_eq!((s["interval"].as_str(), s["timeout"].as_str()), (Some("2s"), Some("1.5s")));
    assert_eq!((s["weight"].as_integer(), s["fall"].as_integer()), (Some(-20), Some(3)));
    assert_eq!(t["vrrp_sync_group"][0]["group"][0].as_str(), Some("VI_1"));
    assert_eq!(kinds(&c), [(32, ReportKind::Unsupported), (43, ReportKind::Unknown), (50, ReportKind::Unsupported)]);
}

#[test]
fn vmac_keywords_convert_and_validate() {
    let c = keepalived_conv(
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 7\n  use_vmac vmac7\n  vmac_xmit_base\n  virtual_ipaddress {\n    192.0.2.7\n  }\n}\n",
    );
    let t = table(&c);
    let i = &t["vrrp_instance"][0];
    assert_eq!((i["use_vmac"].as_str(), i["vmac_xmit_base"].as_bool()), (Some("vmac7"), Some(true)));
    let snap = crate::config::parse(&c.toml, Path::new("/etc/lbha/t.toml")).unwrap();
    assert_eq!(snap.vrrp.instances[0].vip_dev(), "vmac7");
}

#[test]
fn keepalived_errors_are_located() {
    let mut none = |_: &str, _: &Path| Ok(Vec::new());
    let k = crate::convert::keepalived::ast::parse(
        "vrrp_instance A {\n  priority high\n  advert_int 1s\n  state FOO\n}\n",
        Path::new("k.conf"),
        &mut none,
    )
    .unwrap();
    let e = convert(None, Some(&k), Path::new("."), &no_env).unwrap_err().to_string();
    assert_eq!(
        e,
        "k.conf:2: `priority high`: bad number `high`\nk.conf:3: `advert_int 1s`: bad number of seconds `1s`\nk.conf:4: `state FOO`: state must be MASTER or BACKUP, not `FOO`"
    );
}

#[test]
fn keepalived_corpus_passes_lbha_validation() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/keepalived");
    for (f, instances, scripts) in [("01_master.conf", 1, 1), ("02_backup_unicast.conf", 2, 1)] {
        let p = root.join(f);
        let k = crate::convert::io::read_keepalived(&p).unwrap_or_else(|e| panic!("{e}"));
        let c = convert(None, Some(&k), &root, &no_env).unwrap_or_else(|e| panic!("{e}"));
        let s = snap(&c);
        assert_eq!((s.vrrp.instances.len(), s.vrrp.scripts.len()), (instances, scripts), "{f}");
        if f.starts_with("02") {
            let web = &s.vrrp.instances[0];
            assert_eq!((web.name.as_str(), web.version, web.preempt), ("VI_WEB", 3, false));
            assert_eq!(web.advert_int, Duration::from_millis(500));
            assert_eq!(web.sync_group.as_deref(), Some("VG_1"));
        }
    }
}

#[test]
fn keepalived_script_user_and_security() {
    let c = keepalived_conv(
        "global_defs {\n  script_user nobody nogroup\n  enable_script_security\n}\nvrrp_script chk {\n  script \"/bin/true\"\n  user root\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.100\n  }\n  track_script {\n    chk\n  }\n}\n",
    );
    let t = table(&c);
    assert_eq!(t["global"]["script_user"].as_str(), Some("nobody nogroup"));
    assert_eq!(t["global"]["enable_script_security"].as_bool(), Some(true));
    assert_eq!(t["vrrp_script"][0]["user"].as_str(), Some("root"));
    assert!(kinds(&c).is_empty(), "{:?}", kinds(&c));
    let s = snap(&c);
    assert!(s.vrrp.script_security);
    assert_eq!(s.vrrp.script_user.as_ref().map(|u| u.user.as_str()), Some("nobody"));
    assert_eq!(s.vrrp.scripts[0].user.as_ref().map(|u| u.user.as_str()), Some("root"));
}

#[test]
fn keepalived_routes_rules_and_static_entries() {
    let c = keepalived_conv(
        "static_ipaddress {\n  198.51.100.1/32 dev eth0\n}\nstatic_routes {\n  203.0.113.0/25 via 192.0.2.1 table 200\n}\nstatic_rules {\n  to 203.0.113.0/25 table 200 priority 200\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.100\n  }\n  virtual_ipaddress_excluded {\n    2001:db8::100/128\n  }\n  virtual_routes {\n    src 192.0.2.100 to 198.51.100.128/25 via 192.0.2.1 dev eth0\n    blackhole 203.0.113.128/25\n  }\n  virtual_rules {\n    from 192.0.2.100 table 100\n  }\n}\n",
    );
    let t = table(&c);
    assert_eq!(t["static_ipaddress"][0].as_str(), Some("198.51.100.1/32 dev eth0"));
    assert_eq!(t["static_routes"][0].as_str(), Some("203.0.113.0/25 via 192.0.2.1 table 200"));
    assert_eq!(t["static_rules"][0].as_str(), Some("to 203.0.113.0/25 table 200 priority 200"));
    let i = &t["vrrp_instance"][0];
    assert_eq!(i["virtual_ipaddress_excluded"][0].as_str(), Some("2001:db8::100/128"));
    assert_eq!(i["virtual_routes"][1].as_str(), Some("blackhole 203.0.113.128/25"));
    assert_eq!(i["virtual_rules"][0].as_str(), Some("from 192.0.2.100 table 100"));
    assert!(kinds(&c).is_empty(), "{:?}", kinds(&c));
    let s = snap(&c);
    assert_eq!((s.vrrp.statics.addrs.len(), s.vrrp.statics.routes.len(), s.vrrp.statics.rules.len()), (1, 1, 1));
    let v = &s.vrrp.instances[0];
    assert_eq!((v.vips_excluded.len(), v.routes.len(), v.rules.len()), (1, 2, 1));
}

#[test]
fn keepalived_unsupported_route_options_are_located_errors() {
    let mut none = |_: &str, _: &Path| Ok(Vec::new());
    let k = crate::convert::keepalived::ast::parse(
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.100\n  }\n  virtual_routes {\n    198.51.100.0/24 via 192.0.2.1 or 192.0.2.2\n  }\n}\n",
        Path::new("k.conf"),
        &mut none,
    )
    .unwrap();
    let e = convert(None, Some(&k), Path::new("."), &no_env).unwrap_err().to_string();
    assert!(e.starts_with("k.conf:8: "), "{e}");
    assert!(e.contains("\"or\" is not supported"), "{e}");
}

#[test]
fn keepalived_email_alerts() {
    let c = keepalived_conv(
        "global_defs {\n  router_id lb1\n  notification_email {\n    ops@example.org\n    oncall@example.org\n  }\n  notification_email_from lb1@example.org\n  smtp_server 127.0.0.1 2525\n  smtp_helo_name lb1.example.org\n  smtp_connect_timeout 5\n  smtp_alert_vrrp\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.100\n  }\n  smtp_alert false\n}\nvrrp_sync_group G1 {\n  group {\n    VI_1\n  }\n  smtp_alert\n}\n",
    );
    let t = table(&c);
    let g = &t["global"];
    assert_eq!(g["router_id"].as_str(), Some("lb1"));
    assert_eq!(g["notification_email"][1].as_str(), Some("oncall@example.org"));
    assert_eq!(g["smtp_server"].as_str(), Some("127.0.0.1 2525"));
    assert_eq!(g["smtp_connect_timeout"].as_str(), Some("5s"));
    assert_eq!(g["smtp_alert_vrrp"].as_bool(), Some(true));
    assert_eq!(t["vrrp_instance"][0]["smtp_alert"].as_bool(), Some(false));
    assert_eq!(t["vrrp_sync_group"][0]["smtp_alert"].as_bool(), Some(true));
    assert!(kinds(&c).is_empty(), "{:?}", kinds(&c));
    let s = snap(&c);
    assert!(!s.vrrp.instances[0].notify.smtp_alert);
    assert!(s.vrrp.sync_groups[0].notify.smtp_alert);
    let smtp = s.vrrp.smtp.expect("mail settings");
    assert_eq!((smtp.host.as_str(), smtp.port, smtp.timeout), ("127.0.0.1", 2525, Duration::from_secs(5)));
}

#[test]
fn keepalived_notify_with_a_user_is_a_located_error() {
    let mut none = |_: &str, _: &Path| Ok(Vec::new());
    let k = crate::convert::keepalived::ast::parse(
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.100\n  }\n  notify_master /etc/keepalived/m.sh nobody\n}\n",
        Path::new("k.conf"),
        &mut none,
    )
    .unwrap();
    let e = convert(None, Some(&k), Path::new("."), &no_env).unwrap_err().to_string();
    assert!(e.starts_with("k.conf:7: "), "{e}");
    assert!(e.contains("as user `nobody`"), "{e}");
}

#[test]
fn keepalived_parity_keywords_map_one_to_one() {
    let c = keepalived_conv(
        "global_defs {\n  vrrp_mcast_group4 224.0.0.19\n  vrrp_mcast_group6 ff02::13\n  vrrp_check_unicast_src\n  vrrp_skip_check_adv_addr\n  vrrp_garp_interval 0.01\n  vrrp_gna_interval 0.02\n  vrrp_garp_master_refresh_repeat 2\n  vrrp_garp_lower_prio_delay 3\n  vrrp_garp_lower_prio_repeat 4\n  vrrp_higher_prio_send_advert\n  vrrp_lower_prio_no_advert false\n  max_auto_priority 10\n  vrrp_no_swap\n  vrrp_iptables\n  vrrp_startup_delay 2\n  vrrp_down_timer_adverts 5\n}\n\
         vrrp_track_file maint {\n  file /run/maint\n}\n\
         vrrp_instance A {\n  interface eth0\n  virtual_router_id 7\n  unicast_src_ip 192.0.2.4\n  mcast_src_ip 192.0.2.5\n  unicast_ttl 9\n  dont_track_primary\n  accept\n  garp_lower_prio_repeat 1\n  down_timer_adverts 4\n  virtual_ipaddress {\n    192.0.2.7\n  }\n}\n\
         vrrp_instance B {\n  interface eth0\n  virtual_router_id 8\n  version 3\n  strict_mode\n  no_accept\n  virtual_ipaddress {\n    192.0.2.8\n  }\n}\n\
         vrrp_sync_group G {\n  group {\n    A\n  }\n  track_file {\n    maint\n  }\n}\n",
    );
    let t = table(&c);
    let a = &t["vrrp_instance"][0];
    assert_eq!((a["mcast_group4"].as_str(), a["mcast_group6"].as_str()), (Some("224.0.0.19"), Some("ff02::13")));
    assert_eq!((a["check_unicast_src"].as_bool(), a["skip_check_adv_addr"].as_bool()), (Some(true), Some(true)));
    assert_eq!((a["garp_interval"].as_str(), a["gna_interval"].as_str()), (Some("0.01s"), Some("0.02s")));
    assert_eq!(a["garp_master_refresh_repeat"].as_integer(), Some(2));
    assert_eq!(a["garp_lower_prio_delay"].as_str(), Some("3s"));
    assert_eq!(a["garp_lower_prio_repeat"].as_integer(), Some(1), "the instance's own value wins");
    assert_eq!(
        (a["higher_prio_send_advert"].as_bool(), a["lower_prio_no_advert"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!((a["mcast_src_ip"].as_str(), a["unicast_ttl"].as_integer()), (Some("192.0.2.5"), Some(9)));
    assert_eq!(a.get("unicast_src_ip"), None, "the last of unicast_src_ip / mcast_src_ip wins, as keepalived");
    assert_eq!((a["dont_track_primary"].as_bool(), a["accept"].as_bool()), (Some(true), Some(true)));
    assert_eq!(a["down_timer_adverts"].as_integer(), Some(4));
    let b = &t["vrrp_instance"][1];
    assert_eq!((b["startup_delay"].as_str(), b["down_timer_adverts"].as_integer()), (Some("2s"), Some(5)));
    assert_eq!((b["strict_mode"].as_bool(), b["accept"].as_bool()), (Some(true), Some(false)));
    assert_eq!(t["vrrp_sync_group"][0]["track_file"][0]["name"].as_str(), Some("maint"));
    // keepalived's own process scheduling and no_accept firewall: ignored, each said.
    assert_eq!(kinds(&c), [(13, ReportKind::Ignored), (14, ReportKind::Ignored), (15, ReportKind::Ignored)]);
    // no_accept is converted as written, and lbha refuses it with the reason.
    let e = match crate::config::parse(&c.toml, Path::new("lbha.toml")) {
        Ok(_) => panic!("no_accept must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no_accept would drop traffic to the VIPs"), "{e}");
    // Without it, the conversion loads.
    let c = keepalived_conv(
        "global_defs {\n  vrrp_strict\n}\nvrrp_instance B {\n  interface eth0\n  virtual_router_id 8\n  version 3\n  accept\n  virtual_ipaddress {\n    192.0.2.8\n  }\n}\n",
    );
    let s = snap(&c);
    assert!(s.vrrp.instances[0].opts.strict && s.vrrp.instances[0].opts.lower_prio_no_advert);
}

#[test]
fn keepalived_reverse_weights_convert() {
    let c = keepalived_conv(
        "vrrp_script chk {\n  script /bin/true\n  weight 5 reverse\n}\nvrrp_instance A {\n  interface eth0\n  virtual_router_id 7\n  track_interface {\n    eth1 weight -10 reverse\n    eth2 weight 3 noreverse\n  }\n  track_script {\n    chk\n  }\n  virtual_ipaddress {\n    192.0.2.7\n  }\n}\n",
    );
    let t = table(&c);
    assert_eq!(t["vrrp_script"][0]["reverse"].as_bool(), Some(true));
    let ti = &t["vrrp_instance"][0]["track_interface"];
    assert_eq!((ti[0]["weight"].as_integer(), ti[0]["reverse"].as_bool()), (Some(-10), Some(true)));
    assert_eq!((ti[1]["weight"].as_integer(), ti[1].get("reverse")), (Some(3), None));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let i = &s.vrrp.instances[0];
    assert!(i.track_interfaces[0].reverse && i.track_scripts[0].reverse);
}

#[test]
fn keepalived_min_garp_and_unicast_options_convert() {
    let c = keepalived_conv(
        "global_defs {\n  vrrp_min_garp\n}\nvrrp_instance A {\n  interface eth0\n  virtual_router_id 7\n  promote_secondaries\n  version 3\n  unicast_src_ip 192.0.2.1\n  unicast_fault_no_peer\n  old_unicast_checksum\n  virtual_ipaddress {\n    192.0.2.7\n  }\n}\nvrrp_instance B {\n  interface eth0\n  virtual_router_id 8\n  old_unicast_checksum never\n  virtual_ipaddress {\n    192.0.2.8\n  }\n}\n",
    );
    let t = table(&c);
    let a = &t["vrrp_instance"][0];
    assert_eq!((a["garp_master_repeat"].as_integer(), a["garp_master_delay"].as_str()), (Some(1), Some("0s")));
    assert_eq!((a["unicast_fault_no_peer"].as_bool(), a["old_unicast_checksum"].as_bool()), (Some(true), Some(true)));
    assert_eq!(t["vrrp_instance"][1].get("old_unicast_checksum"), None);
    assert_eq!(kinds(&c), [(7, ReportKind::Ignored), (19, ReportKind::Approximated)]);
    let s = snap(&c);
    let i = &s.vrrp.instances[0];
    assert!(i.opts.unicast_fault_no_peer && i.opts.old_unicast_checksum);
    assert_eq!((i.garp_master_repeat, i.garp_lower_prio_repeat, i.garp_lower_prio_delay), (1, 1, Duration::ZERO));
}
