//! Maps and ACL pattern files at run time on the real daemon: `show`/`add`/`set`/`del`/`clear`
//! over the control socket take effect on the next connection, survive a reload, and reach the
//! file only on `commit map`.

mod common;
mod kit;
use common::*;

/// A tag server's port (what it received is not needed here).
fn tag_server(tag: &'static str) -> u16 {
    common::tag_server(tag).0
}

/// A real ClientHello for `sni`; what comes back before the close (nothing when the proxy
/// refused the connection, even before the hello was written).
fn hello_through(port: u16, sni: &str) -> String {
    tls_hello(port, sni).unwrap_or_default()
}

#[test]
fn runtime_map_and_acl_changes_survive_reload_until_committed() {
    let (a, b, d) = (tag_server("A"), tag_server("B"), tag_server("D"));
    let port = free_port();
    let dir = TempDir::new("maps-runtime");
    dir.write("sni.map", "a.example be_a\n");
    dir.write("block.lst", "# blocked clients\n192.0.2.1\n");
    let config = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "tls_in"
bind = ["127.0.0.1:{port}"]
default_backend = "be_d"
tcp_request_inspect_delay = "5s"
tcp_request = [
  {{ connection = "reject", if = "{{ src -f block.lst }}" }},
  {{ content = "accept", if = "{{ req_ssl_hello_type 1 }}" }},
]
use_backend = [{{ backend = "%[req.ssl_sni,lower,map(sni.map)]" }}]
[[backend]]
name = "be_a"
servers = [{{ name = "a", addr = "127.0.0.1:{a}" }}]
[[backend]]
name = "be_b"
servers = [{{ name = "b", addr = "127.0.0.1:{b}" }}]
[[backend]]
name = "be_d"
servers = [{{ name = "d", addr = "127.0.0.1:{d}" }}]
"#
    );
    let lb = Lbha::start_in(dir, &config, &[port]);
    let map_path = lb.dir.0.join("sni.map");
    let list = lb.ctl(&["show map"]);
    assert!(list.starts_with("# id (file) description\n1 (sni.map) pattern loaded from file"), "{list}");
    assert!(list.contains("entry_cnt=1"), "{list}");
    assert!(lb.ctl(&["show acl"]).contains("0 (block.lst)"));
    assert_eq!(hello_through(port, "b.example"), "D");

    assert_eq!(lb.ctl(&["add map sni.map b.example be_b"]), "\n");
    assert_eq!(hello_through(port, "B.example"), "B", "the added entry routes at once");
    let entries = lb.ctl(&["show map #1"]);
    let lines: Vec<&str> = entries.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{entries}");
    assert!(lines[0].starts_with("0x") && lines[0].ends_with(" a.example be_a"), "{entries}");
    let a_ref = lines[0].split(' ').next().unwrap();

    // HAProxy's error replies.
    assert_eq!(lb.ctl(&["add map nosuch.map k v"]), "Unknown map identifier. Please use #<id> or <file>.\n\n");
    assert_eq!(lb.ctl(&["del map sni.map zz"]), "Key not found.\n\n");
    assert_eq!(lb.ctl(&["set map sni.map zz be_b"]), "entry not found.\n\n");
    assert_eq!(lb.ctl(&["add acl block.lst notanip"]), "'notanip' is not a valid IPv4 or IPv6 address.\n\n");
    assert!(lb.ctl(&["add acl sni.map x"]).starts_with("This ACL is shared with a map"));

    // Block loopback by pattern: the connection rule refuses the next client.
    assert_eq!(lb.ctl(&["add acl block.lst 127.0.0.0/8"]), "\n");
    assert_eq!(hello_through(port, "a.example"), "", "refused by tcp-request connection");

    // A reload keeps every runtime change.
    let reloaded = lb.ctl(&["reload"]);
    assert!(reloaded.contains("Success=1"), "{reloaded}");
    assert_eq!(hello_through(port, "a.example"), "", "still blocked after the reload");
    assert_eq!(lb.ctl(&["del acl block.lst 127.0.0.0/8"]), "\n");
    assert_eq!(hello_through(port, "b.example"), "B", "the map entry survived the reload");
    assert_eq!(
        lb.ctl(&[&format!("set map sni.map {a_ref} be_b")]),
        "entry not found.\n\n",
        "entry ids do not survive a reload"
    );

    // Nothing reached the file yet; `commit map` writes the live content.
    assert_eq!(std::fs::read_to_string(&map_path).unwrap(), "a.example be_a\n");
    assert_eq!(lb.ctl(&["set map sni.map a.example be_b"]), "\n");
    assert_eq!(hello_through(port, "a.example"), "B");
    assert_eq!(lb.ctl(&["commit map sni.map"]), "\n");
    assert_eq!(std::fs::read_to_string(&map_path).unwrap(), "a.example be_b\nb.example be_b\n");
    assert!(lb.ctl(&["show map"]).contains("uncommitted=0"));
    assert_eq!(lb.ctl(&["clear map sni.map"]), "\n");
    assert_eq!(hello_through(port, "b.example"), "D");
}

/// HTTP ACLs read their `-f` files from the same runtime store: `add acl` / `del acl` change
/// what an `http_request` rule, a `use_backend` condition and a named ACL with `-i` see at once,
/// and the change survives a reload.
#[test]
fn http_acl_pattern_files_follow_add_and_del_acl() {
    let (a, b) = (kit::Web::start("A"), kit::Web::start("B"));
    let port = free_port();
    let dir = TempDir::new("maps-http");
    dir.write("block.lst", "192.0.2.1\n");
    dir.write("beta.lst", "# hosts sent to B\nBETA.example\n");
    let config = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
bind = ["127.0.0.1:{port}"]
acl = [{{ name = "beta", cond = "hdr(host) -i -f beta.lst" }}]
http_request = [{{ deny = {{ status = 403 }}, if = "{{ src -f block.lst }}" }}]
use_backend = [{{ backend = "b", if = "beta" }}]
default_backend = "a"
[[backend]]
name = "a"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
[[backend]]
name = "b"
servers = [{{ name = "b", addr = "127.0.0.1:{}" }}]
"#,
        a.port, b.port
    );
    let lb = Lbha::start_in(dir, &config, &[port]);
    let get = |host: &str| {
        let r = raw(port, format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        (r.status, r.text())
    };
    assert_eq!(get("beta.EXAMPLE"), (200, "B".to_string()), "-i applies to the file");
    assert_eq!(get("gamma.example"), (200, "A".to_string()));
    assert_eq!(lb.ctl(&["add acl beta.lst Gamma.Example"]), "\n");
    assert_eq!(get("gamma.example"), (200, "B".to_string()), "added at run time");
    assert_eq!(lb.ctl(&["add acl block.lst 127.0.0.0/8"]), "\n");
    assert_eq!(get("gamma.example").0, 403, "the client is blocked at once");
    assert!(lb.ctl(&["reload"]).to_lowercase().contains("reload"), "reload");
    assert_eq!(get("gamma.example").0, 403, "runtime changes survive a reload");
    assert_eq!(lb.ctl(&["del acl block.lst 127.0.0.0/8"]), "\n");
    assert_eq!(get("gamma.example"), (200, "B".to_string()));
    assert!(lb.ctl(&["show acl"]).contains("(beta.lst)"), "{}", lb.ctl(&["show acl"]));
}

/// The body of a request for `host` (each backend answers its name).
fn routed(port: u16, host: &str) -> String {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw(port, req.as_bytes()).unwrap().body).into_owned()
}

#[test]
fn payload_adds_and_versioned_replacement_with_haproxys_replies() {
    let (a, b, c, d) = (Backend::start("A"), Backend::start("B"), Backend::start("C"), Backend::start("D"));
    let port = free_port();
    let dir = TempDir::new("maps-versions");
    dir.write("hosts.map", "# host backend\n");
    dir.write("block.lst", "192.0.2.1\n");
    let be = |n: &str, p: u16| {
        format!("[[backend]]\nname = \"be_{n}\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{p}\" }}]\n")
    };
    let config = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
bind = ["127.0.0.1:{port}"]
acl = [{{ name = "blocked", cond = "src -f block.lst" }}]
http_request = [{{ deny = {{}}, if = "blocked" }}]
use_backend = [{{ backend = "%[req.hdr(host),lower,map(hosts.map)]" }}]
default_backend = "be_D"
{}{}{}{}"#,
        be("A", a.port),
        be("B", b.port),
        be("C", c.port),
        be("D", d.port)
    );
    let lb = Lbha::start_in(dir, &config, &[port]);
    assert_eq!(routed(port, "a.example"), "D");

    // `add map FILE <<`: the payload's entries go live together.
    assert_eq!(lb.ctl(&["add map hosts.map <<", "a.example be_A", "b.example be_B", ""]), "\n");
    assert_eq!((routed(port, "a.example"), routed(port, "b.example")), ("A".into(), "B".into()));
    assert_eq!(lb.ctl(&["add map hosts.map <<", "onlykey", ""]), "Missing value for key 'onlykey'.\n\n");
    assert_eq!(lb.ctl(&["add acl block.lst <<", "192.0.2.2", "192.0.2.3", ""]), "\n");
    assert_eq!(lb.ctl(&["show acl block.lst"]).lines().filter(|l| l.starts_with("0x")).count(), 3);

    // A prepared version is filled unseen, then replaces the content at once.
    assert_eq!(lb.ctl(&["prepare map hosts.map"]), "New version created: 1\n\n");
    assert_eq!(lb.ctl(&["add map @1 hosts.map c.example be_C"]), "\n");
    assert_eq!(lb.ctl(&["add map @1 hosts.map <<", "b.example be_C", ""]), "\n");
    assert_eq!(routed(port, "c.example"), "D", "a staged entry does not route yet");
    assert_eq!(
        lb.ctl(&["add map @5 hosts.map x y"]),
        "Version number in the future, please use 'prepare map' before.\n\n"
    );
    assert_eq!(lb.ctl(&["commit map @2 hosts.map"]), "Version number out of range.\n\n");
    assert_eq!(lb.ctl(&["commit acl block.lst"]), "Missing version number.\n\n");
    assert_eq!(lb.ctl(&["commit map @1 hosts.map"]), "\n");
    let now: Vec<String> = ["a.example", "b.example", "c.example"].iter().map(|h| routed(port, h)).collect();
    assert_eq!(now, ["D", "C", "C"], "version 1 replaced the whole content");
    assert_eq!(lb.ctl(&["commit map @1 hosts.map"]), "Version number out of range.\n\n", "already live");
    assert!(lb.ctl(&["show map"]).contains("curr_ver=1 next_ver=1 entry_cnt=2"), "{}", lb.ctl(&["show map"]));

    // lbha's own `commit map FILE` (no version) still writes the live content to the file.
    assert_eq!(lb.ctl(&["commit map hosts.map"]), "\n");
    let file = std::fs::read_to_string(lb.dir.0.join("hosts.map")).unwrap();
    assert!(file.contains("c.example be_C") && !file.contains("a.example"), "{file}");
}

/// HAProxy 2.6's `show map|acl @VER FILE` and `clear map|acl @VER FILE`: a prepared version is
/// listed and emptied without touching traffic; `@VER` naming the live version is the live
/// content; any other version is empty. Replies as HAProxy's (checked against 2.6.12).
#[test]
fn show_and_clear_a_version_with_haproxys_replies() {
    let (a, d) = (Backend::start("A"), Backend::start("D"));
    let port = free_port();
    let dir = TempDir::new("maps-show-ver");
    dir.write("hosts.map", "a.example be_A\n");
    dir.write("block.lst", "192.0.2.1\n");
    let config = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
bind = ["127.0.0.1:{port}"]
acl = [{{ name = "blocked", cond = "src -f block.lst" }}]
http_request = [{{ deny = {{}}, if = "blocked" }}]
use_backend = [{{ backend = "%[req.hdr(host),lower,map(hosts.map)]" }}]
default_backend = "be_D"
[[backend]]
name = "be_A"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
[[backend]]
name = "be_D"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
"#,
        a.port, d.port
    );
    let lb = Lbha::start_in(dir, &config, &[port]);
    let entries = |cmd: &str| -> Vec<String> {
        lb.ctl(&[cmd])
            .lines()
            .filter(|l| l.starts_with("0x"))
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    };
    assert_eq!(lb.ctl(&["prepare map hosts.map"]), "New version created: 1\n\n");
    assert_eq!(lb.ctl(&["add map @1 hosts.map b.example be_A"]), "\n");
    assert_eq!(entries("show map @1 hosts.map"), ["b.example be_A"], "the staged entries");
    assert_eq!(entries("show map @0 hosts.map"), ["a.example be_A"], "@0: the live version");
    assert_eq!(entries("show map hosts.map"), ["a.example be_A"]);
    assert_eq!(lb.ctl(&["show map @7 hosts.map"]), "\n", "no such version: empty");
    assert_eq!(lb.ctl(&["show map @1"]), "Unknown map identifier. Please use #<id> or <file>.\n\n");
    assert_eq!(lb.ctl(&["show map @1 nofile"]), "Unknown map identifier. Please use #<id> or <file>.\n\n");
    assert_eq!(lb.ctl(&["clear map @1"]), "Missing map identifier.\n\n");
    // Clearing the prepared version empties it; the live content still routes.
    assert_eq!(lb.ctl(&["clear map @1 hosts.map"]), "\n");
    assert_eq!(lb.ctl(&["show map @1 hosts.map"]), "\n");
    assert_eq!(lb.ctl(&["clear map @7 hosts.map"]), "\n", "nothing to clear");
    assert_eq!(routed(port, "a.example"), "A");
    assert_eq!(lb.ctl(&["add map @1 hosts.map c.example be_A"]), "\n");
    assert_eq!(lb.ctl(&["commit map @1 hosts.map"]), "\n");
    assert_eq!((routed(port, "b.example"), routed(port, "c.example")), ("D".into(), "A".into()), "b was cleared");
    // `clear map @CUR` is the live content's `clear map`.
    assert_eq!(lb.ctl(&["clear map @1 hosts.map"]), "\n");
    assert_eq!(lb.ctl(&["show map hosts.map"]), "\n");
    assert_eq!(routed(port, "c.example"), "D");

    // The same for pattern files.
    assert_eq!(lb.ctl(&["prepare acl block.lst"]), "New version created: 1\n\n");
    assert_eq!(lb.ctl(&["add acl @1 block.lst 127.0.0.1"]), "\n");
    assert_eq!(entries("show acl @1 block.lst"), ["127.0.0.1"]);
    assert_eq!(entries("show acl @0 block.lst"), ["192.0.2.1"]);
    assert_eq!(lb.ctl(&["show acl @1"]), "Unknown ACL identifier. Please use #<id> or <file>.\n\n");
    assert_eq!(lb.ctl(&["clear acl @1"]), "Missing ACL identifier.\n\n");
    assert_eq!(lb.ctl(&["clear acl @1 block.lst"]), "\n");
    assert_eq!(lb.ctl(&["commit acl @1 block.lst"]), "\n");
    assert_eq!(routed(port, "x.example"), "D", "the cleared version did not block us");
    assert_eq!(lb.ctl(&["show acl block.lst"]), "\n", "version 1 (empty) is live");
}
