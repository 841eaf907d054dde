//! `resolvers` sections, server `resolvers`/`resolve-prefer`/`resolve-net` and `server-template`
//! convert, and the result validates without any lookup.

use super::*;

#[test]
fn resolvers_and_server_templates_convert() {
    let c = conv(
        "resolvers dns\n  nameserver ns1 127.0.0.1:53\n  nameserver ns2 udp@127.0.0.2:53\n  resolve_retries 4\n  timeout resolve 2s\n  timeout retry 500\n  hold valid 20s\n  hold nx 5s\n  hold obsolete 1s\n  hold other 7s\n  hold refused 8s\n  hold timeout 9s\n  accepted_payload_size 8192\n\
         defaults\n  mode http\nbackend be\n  balance roundrobin\n  server-template web 1-3 app.example.invalid:8080 check resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8 resolve-opts prevent-dup-ip init-addr none\n  server one one.example.invalid:80 resolvers dns init-addr none\n",
    );
    let t = table(&c);
    let r = &t["resolvers"].as_array().unwrap()[0];
    assert_eq!(r["name"].as_str(), Some("dns"));
    assert_eq!(r["nameservers"].as_array().unwrap().len(), 2);
    assert_eq!(r["resolve_retries"].as_integer(), Some(4));
    assert!(r["timeout_retry"].to_string().contains("500"), "{}", c.toml);
    assert_eq!(r["hold_timeout"].as_str(), Some("9s"));
    assert_eq!(r["accepted_payload_size"].as_integer(), Some(8192));
    let servers = t["backend"].as_array().unwrap()[0]["servers"].as_array().unwrap().clone();
    assert_eq!(servers[0]["template"].as_integer(), Some(3));
    assert_eq!(servers[0]["resolve_prefer"].as_str(), Some("ipv4"));
    assert_eq!(servers[0]["resolve_net"].as_str(), Some("10.0.0.0/8"));
    let s = crate::config::parse(&c.toml, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    let names: Vec<&str> = s.backends[0].servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web1", "web2", "web3", "one"]);
    assert!(s.backends[0].servers.iter().all(|s| s.unresolved && s.dns.is_some()));
    assert_eq!(s.resolvers[0].holds.obsolete, std::time::Duration::from_secs(1));
    let allow = conv("backend be\n  server a a.example:80 resolve-opts allow-dup-ip init-addr none\n");
    assert_eq!(kinds(&allow), [(2, ReportKind::Unsupported)]);
    let e = conv_err("backend be\n  server-template web 2-3 app.example:80\n");
    assert!(e.join("\n").contains("start at 1"), "{e:?}");
}

#[test]
fn srv_server_templates_convert_without_a_port() {
    let c = conv(
        "resolvers dns\n  nameserver ns1 127.0.0.1:53\n\
         defaults\n  mode http\nbackend be\n  server-template web 2 _http._tcp.app.example.invalid:80 resolvers dns resolve-opts prevent-dup-ip,ignore-weight init-addr none\n",
    );
    let t = table(&c);
    let servers = t["backend"].as_array().unwrap()[0]["servers"].as_array().unwrap().clone();
    assert_eq!(servers[0]["addr"].as_str(), Some("_http._tcp.app.example.invalid"));
    assert_eq!(servers[0]["resolve_opts"].as_str(), Some("ignore-weight"));
    let s = crate::config::parse(&c.toml, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
    let d = s.backends[0].servers[1].dns.as_ref().unwrap();
    assert!(d.srv && d.ignore_weight && s.backends[0].servers[1].unresolved);
}
