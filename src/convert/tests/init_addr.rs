//! Server names and `init-addr`: names are kept as written (never resolved at conversion), and
//! `init-addr` becomes `init_addr`, so a config converts away from its target network.

use super::*;

#[test]
fn names_are_kept_and_init_addr_converts() {
    let c = conv(
        "defaults\n  mode http\nbackend be\n  default-server init-addr last,libc,none\n  server app app.example.invalid:8080 check\n  server b 192.0.2.1:80 init-addr none\n",
    );
    let t = table(&c);
    let servers = t["backend"].as_array().unwrap()[0]["servers"].as_array().unwrap().clone();
    assert_eq!(servers[0]["addr"].as_str(), Some("app.example.invalid:8080"));
    assert_eq!(servers[0]["init_addr"].as_str(), Some("last,libc,none"));
    assert_eq!(servers[1]["init_addr"].as_str(), Some("none"));
    // Validated without any lookup: `none` leaves the name unresolved, in maintenance.
    let text = c.toml.replace("last,libc,none", "none");
    let s = crate::config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(s.backends[0].servers[0].unresolved);
    assert!(s.backends[0].servers[0].check.is_none(), "nothing to check before it has an address");
    assert!(!s.backends[0].servers[1].unresolved);
    let bad = crate::config::parse(&c.toml.replace("last,libc,none", "last,dns"), Path::new("t.toml")).unwrap_err();
    assert!(bad.to_string().contains("init_addr"), "{bad}");
}
