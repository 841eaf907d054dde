//! Validation of `[[peers]]` sections (HAProxy's `peers`) and of the tables that name them. The
//! local peer is `[global] localpeer` or the hostname, as HAProxy's `-L`/`localpeer`; its own line
//! gives the address to listen on. A section without the local peer replicates nothing: as
//! HAProxy 2.6 does, that is a warning and its tables stay local.

use super::peers_tls::{DialWords, ListenWords};
use super::{Ctx, Kind, Named, parse_bind};
use crate::config::model::{ConfigFile, StickTableDef};
use crate::peers::net::{Remote, Section};
use crate::stktable::TableDef;
use std::net::SocketAddr;

pub(super) fn sections(file: &ConfigFile, fronts: &[Named], backs: &[Named], cx: &mut Ctx) -> Vec<Section> {
    let local = file
        .global
        .localpeer
        .clone()
        .unwrap_or_else(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default());
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let bases = cx.tls_defaults.bases.clone();
    for (i, d) in file.peers.iter().enumerate() {
        let p = super::FieldPath::root().key("peers").index(i);
        if d.name.is_empty() {
            cx.err(p.key("name"), "missing `name`");
            continue;
        }
        if names.contains(&d.name.as_str()) {
            cx.err_v(p.key("name"), "another `[[peers]]` section has this name", &d.name);
            continue;
        }
        names.push(&d.name);
        // The listener's words: `default_bind`'s, then `bind`'s (one bind_conf in HAProxy).
        let mut listen = ListenWords::new(&cx.tls_defaults.bind);
        let mut listen_ok = true;
        if let Some(b) = &d.default_bind
            && let Err(e) = listen.take(&b.split_whitespace().collect::<Vec<_>>(), &bases)
        {
            cx.err_v(p.key("default_bind"), e, b);
            listen_ok = false;
        }
        let mut bind = None;
        if let Some(b) = &d.bind {
            let mut w = b.split_whitespace();
            match parse_bind(w.next().unwrap_or("")) {
                Ok(a) => bind = Some(a),
                Err(e) => cx.err_v(p.key("bind"), e, b),
            }
            if let Err(e) = listen.take(&w.collect::<Vec<_>>(), &bases) {
                cx.err_v(p.key("bind"), e, b);
                listen_ok = false;
            }
        }
        let mut dial_base = DialWords::new(&cx.tls_defaults.server);
        let mut dial_ok = true;
        if let Some(ds) = &d.default_server {
            let mut warns = Vec::new();
            if let Err(e) = dial_base.take(&ds.split_whitespace().collect::<Vec<_>>(), &bases, &mut warns) {
                cx.err_v(p.key("default_server"), e, ds);
                dial_ok = false;
            }
            for w in warns {
                cx.warn(p.key("default_server"), w);
            }
        }
        let verify_none = cx.tls_defaults.server_verify_none;
        let mut remotes: Vec<Remote> = Vec::new();
        let mut me = None;
        let lines = d.peer.iter().map(|l| ("peer", l)).chain(d.server.iter().map(|l| ("server", l)));
        for (j, (key, line)) in lines.enumerate() {
            let j = if key == "peer" { j } else { j - d.peer.len() };
            let lp = p.key(key).index(j);
            let mut w = line.split_whitespace().peekable();
            let Some(name) = w.next() else {
                cx.err_v(lp, "expected \"NAME ADDR:PORT\"", line);
                continue;
            };
            // Keywords hold no `:`; every address does (its port).
            let addr = if key == "peer" { w.next() } else { w.next_if(|t| t.contains(':')) };
            let words: Vec<&str> = w.collect();
            if (name == local && me.is_some()) || (name != local && remotes.iter().any(|r| r.name == name)) {
                cx.err_v(lp, "this peer name is listed twice", name);
                continue;
            }
            let addr: Option<SocketAddr> = match addr.map(parse_bind) {
                Some(Ok(a)) if a.port() == 0 => {
                    cx.err_v(lp.clone(), "the port must not be 0", line);
                    None
                }
                Some(Ok(a)) => Some(a),
                Some(Err(e)) => {
                    cx.err_v(lp, e, line);
                    continue;
                }
                None => None,
            };
            let mut dial = dial_base.clone();
            let mut warns = Vec::new();
            if let Err(e) = dial.take(&words, &bases, &mut warns) {
                cx.err_v(lp, e, line);
                continue;
            }
            for w in warns {
                cx.warn(lp.clone(), w);
            }
            let built = if dial_ok { dial.build(addr, verify_none) } else { Ok((None, Vec::new())) };
            let tls = match built {
                Ok((tls, warns)) => {
                    for w in warns {
                        cx.warn(lp.clone(), w);
                    }
                    tls
                }
                Err(e) => {
                    cx.err_v(lp, e, line);
                    continue;
                }
            };
            if name == local {
                // Its server words are HAProxy's for the old process dialing the new one at a
                // reload; lbha hands its tables over in-process, so they are only checked.
                me = Some((lp.clone(), dial.ssl));
                match (addr, bind) {
                    (Some(a), None) => bind = Some(a),
                    (Some(_), Some(_)) => cx.err_v(lp, "the local peer's address is already given by `bind`", line),
                    (None, _) => {}
                }
                continue;
            }
            match addr {
                Some(addr) if !addr.ip().is_unspecified() => remotes.push(Remote { name: name.to_string(), addr, tls }),
                _ => cx.err_v(lp, "a remote peer needs an address to connect to", line),
            }
        }
        let Some((my_line, my_ssl)) = me else {
            // Without its own line this node is no member: nothing is replicated through it.
            if !d.table.is_empty() {
                cx.warn(
                    p.key("table"),
                    format!("the local peer {local:?} is not in this section: its tables are not replicated"),
                );
            }
            continue;
        };
        let Some(bind) = bind else {
            cx.err_v(p.clone(), "the local peer has no address to listen on (its `peer` line or `bind`)", &local);
            continue;
        };
        let listen_key = if d.bind.is_some() || d.default_bind.is_none() { "bind" } else { "default_bind" };
        let listen_ssl = listen.ssl;
        let tls = if listen_ok {
            match listen.build() {
                Ok((tls, warns)) => {
                    for w in warns {
                        cx.warn(p.key(listen_key), w);
                    }
                    tls
                }
                Err(e) => {
                    cx.err(p.key(listen_key), e);
                    continue;
                }
            }
        } else {
            None
        };
        // HAProxy 2.6's two warnings about the local peer's line and its listener.
        match (my_ssl, listen_ssl) {
            (true, false) => {
                cx.warn(my_line, "the local peer has `ssl` but its listener (`bind`/`default_bind`) has not")
            }
            (false, true) => {
                cx.warn(my_line, "the listener (`bind`/`default_bind`) has `ssl` but the local peer's line has not")
            }
            _ => {}
        }
        if !listen_ok || !dial_ok {
            continue;
        }
        out.push(Section { name: d.name.clone(), local: local.clone(), bind, remotes, tls });
    }
    // A table naming a section must be replicated by it.
    for n in fronts.iter().chain(backs.iter().filter(|n| n.kind != Kind::Listen)) {
        let Some(want) = n.sec.stick_table.as_ref().and_then(|t| t.peers.as_ref()) else { continue };
        let tp = n.path().key("stick_table").key("peers");
        if !names.contains(&want.as_str()) {
            cx.err_v(tp, "no `[[peers]]` section has this name", want);
        } else if !out.iter().any(|s| &s.name == want) {
            // HAProxy 2.6 removes such a section with a warning and keeps the tables local.
            cx.warn(
                tp,
                format!(
                    "the local peer {local:?} (`[global] localpeer` or the hostname) is not in section {want:?}: \
                     this table is not replicated"
                ),
            );
        }
    }
    out
}

/// The `table` lines of every section: tables named `SECTION/NAME` (as HAProxy 2.6 names them in
/// `show table` and on the wire), replicated by their section.
pub(super) fn tables(file: &ConfigFile, others: &[TableDef], cx: &mut Ctx) -> Vec<TableDef> {
    let mut out: Vec<TableDef> = Vec::new();
    for (i, d) in file.peers.iter().enumerate() {
        for (j, t) in d.table.iter().enumerate() {
            let p = super::FieldPath::root().key("peers").index(i).key("table").index(j);
            if t.name.is_empty() || t.name.contains('/') {
                cx.err_v(p.key("name"), "expected a table name without `/`", &t.name);
                continue;
            }
            let st = StickTableDef {
                type_: t.type_.clone(),
                len: t.len,
                size: t.size,
                expire: t.expire,
                nopurge: t.nopurge,
                peers: Some(d.name.clone()),
                store: t.store.clone(),
            };
            let name = format!("{}/{}", d.name, t.name);
            let Some(def) = super::stktable::table_def(&name, &st, false, &p, cx) else { continue };
            if others.iter().chain(&out).any(|o| o.name == name) {
                cx.err_v(p.key("name"), "another table has this name", &name);
                continue;
            }
            out.push(def);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn load(extra: &str) -> Result<crate::config::snapshot::Snapshot, String> {
        let src = format!(
            "[global]\nlocalpeer = \"a\"\n{extra}\n[[backend]]\nname = \"be\"\nstick_table = {{ type = \"ip\", size = 10, peers = \"mesh\" }}\n"
        );
        parse(&src, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_local_peer_line_gives_the_listen_address() {
        let s = load("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:10001\", \"b 127.0.0.2:10002\"]").unwrap();
        let p = &s.peers[0];
        assert_eq!((p.local.as_str(), p.bind.to_string()), ("a", "127.0.0.1:10001".to_string()));
        assert_eq!(p.remotes.len(), 1);
        assert_eq!((p.remotes[0].name.as_str(), p.remotes[0].addr.to_string()), ("b", "127.0.0.2:10002".into()));
        let s = load("[[peers]]\nname = \"mesh\"\nbind = \"127.0.0.1:10001\"\nserver = [\"a\", \"b 127.0.0.2:10002\"]")
            .unwrap();
        assert_eq!(s.peers[0].bind.to_string(), "127.0.0.1:10001");
    }

    #[test]
    fn table_lines_are_tables_named_section_slash_name() {
        let s = load(
            "[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:10001\"]\n\
             table = [{ name = \"t1\", type = \"string\", len = 16, size = \"1k\", expire = \"5m\", store = [\"gpc0\", \"http_req_rate(10s)\"] }]",
        )
        .unwrap();
        let t = s.stick_tables.iter().find(|t| t.name == "mesh/t1").expect("mesh/t1");
        assert_eq!((t.peers.as_deref(), t.size, t.expire_ms()), (Some("mesh"), 1024, 300_000));
        assert_eq!(t.key, crate::stktable::KeyKind::String { len: 16 });
        assert_eq!(t.store.len(), 2);
        let bad = |table: &str, want: &str| {
            let e = load(&format!("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:10001\"]\ntable = [{table}]"))
                .unwrap_err();
            assert!(e.contains(want), "{want:?} in {e}");
        };
        bad("{ name = \"t\", type = \"ip\" }", "peers[0].table[0].size: missing `size`");
        bad(
            "{ name = \"a/b\", type = \"ip\", size = 1 }",
            "peers[0].table[0].name: expected a table name without `/` (value: a/b)",
        );
        bad(
            "{ name = \"t\", type = \"ip\", size = 1, store = [\"nope\"] }",
            "peers[0].table[0].store[0]: unknown data type",
        );
        bad(
            "{ name = \"t\", type = \"ip\", size = 1 }, { name = \"t\", type = \"ip\", size = 2 }",
            "peers[0].table[1].name: another table has this name (value: mesh/t)",
        );
        bad("{ name = \"t\", type = \"ip\", size = 1, peers = \"x\" }", "unknown key `peers`");
        // Not a member: the table is kept, local, with a warning.
        let s = load(
            "[[peers]]\nname = \"mesh\"\npeer = [\"b 127.0.0.2:10002\"]\ntable = [{ name = \"t\", type = \"ip\", size = 1 }]",
        )
        .unwrap();
        assert!(s.stick_tables.iter().any(|t| t.name == "mesh/t"));
        assert!(s.warnings.iter().any(|w| w.contains("its tables are not replicated")), "{:?}", s.warnings);
    }

    #[test]
    fn bad_sections_are_located_errors() {
        let e = load("").unwrap_err();
        assert!(e.contains("stick_table.peers: no `[[peers]]` section has this name (value: mesh)"), "{e}");
        let s = load("[[peers]]\nname = \"mesh\"\npeer = [\"b 127.0.0.2:10002\"]").unwrap();
        assert!(s.peers.is_empty());
        assert!(s.warnings.iter().any(|w| w.contains("the local peer \"a\"")), "{:?}", s.warnings);
        let e = load("[[peers]]\nname = \"mesh\"\npeer = [\"a\", \"b 127.0.0.2:10002\"]").unwrap_err();
        assert!(e.contains("no address to listen on"), "{e}");
        let e = load("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:1\", \"b nowhere:x\"]").unwrap_err();
        assert!(e.contains("peers[0].peer[1]"), "{e}");
        let e = load("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:1\", \"b\"]").unwrap_err();
        assert!(e.contains("a remote peer needs an address"), "{e}");
    }

    /// A self-signed certificate and key, as `crt` and `ca-file` take it, in a fresh directory.
    fn pem_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lbha-peers-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(d.join("p.pem"), format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem())).unwrap();
        std::fs::write(d.join("ca.pem"), ck.cert.pem()).unwrap();
        d
    }

    #[test]
    fn tls_words_build_both_sides_and_default_server_applies_to_every_line() {
        let d = pem_dir("ok");
        let (crt, ca) = (d.join("p.pem").display().to_string(), d.join("ca.pem").display().to_string());
        let s = load(&format!(
            "[[peers]]\nname = \"mesh\"\ndefault_bind = \"ssl crt {crt} ca-file {ca} verify required\"\n\
             default_server = \"ssl crt {crt} ca-file {ca}\"\n\
             peer = [\"a 127.0.0.1:10001\", \"b 127.0.0.2:10002 sni str(b.example) ssl-min-ver TLSv1.3\", \"c 127.0.0.3:10003 no-ssl\"]"
        ))
        .unwrap();
        let p = &s.peers[0];
        assert!(p.tls.as_ref().unwrap().words.contains("verify required"));
        let b = p.remotes[0].tls.as_ref().expect("b over TLS");
        assert_eq!(b.name, rustls_pki_types::ServerName::try_from("b.example").unwrap());
        assert!(b.config.alpn_protocols.is_empty(), "no ALPN unless asked for");
        assert!(p.remotes[1].tls.is_none(), "no-ssl undoes default_server's ssl");
        // 2.x form: the listener's words on `bind`, the local peer's server line without address.
        let s = load(&format!(
            "[[peers]]\nname = \"mesh\"\nbind = \"127.0.0.1:10001 ssl crt {crt}\"\n\
             server = [\"a ssl verify none\", \"b 127.0.0.2:10002 ssl verify none check weight 2\"]"
        ))
        .unwrap();
        assert_eq!(s.peers[0].bind.to_string(), "127.0.0.1:10001");
        assert!(s.peers[0].tls.is_some() && s.peers[0].remotes[0].tls.is_some());
        assert!(s.warnings.iter().any(|w| w.contains("health checks are ignored for peers")), "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w.contains("`weight` has no effect on peers")), "{:?}", s.warnings);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tls_words_lbha_cannot_honour_are_located_errors() {
        let d = pem_dir("bad");
        let crt = d.join("p.pem").display().to_string();
        let bad = |extra: &str, want: &[&str]| {
            let e = load(&format!("[[peers]]\nname = \"mesh\"\n{extra}")).unwrap_err();
            for w in want {
                assert!(e.contains(w), "{w:?} in {e}");
            }
        };
        bad(
            "peer = [\"a 127.0.0.1:1\", \"b 127.0.0.2:2 ssl\"]",
            &["peers[0].peer[1]", "give the `ca-file`", "or `verify none`"],
        );
        bad(
            "peer = [\"a 127.0.0.1:1\", \"b 127.0.0.2:2 send-proxy\"]",
            &["peers[0].peer[1]", "`send-proxy` is not supported"],
        );
        bad(
            "default_server = \"ssl verify none resolve-opts x\"\npeer = [\"a 127.0.0.1:1\"]",
            &["peers[0].default_server", "`resolve-opts`"],
        );
        bad(
            "peer = [\"a 127.0.0.1:1\", \"b 127.0.0.2:2 ssl verify none crt /nonexistent.pem\"]",
            &["peers[0].peer[1]", "/nonexistent.pem"],
        );
        bad("peer = [\"a 127.0.0.1:1\", \"b 127.0.0.2:2 ssl verify none sni req.hdr(host)\"]", &["sni", "constant"]);
        bad("bind = \"127.0.0.1:1 ssl\"\nserver = [\"a\"]", &["peers[0].bind", "`ssl` needs `crt FILE`"]);
        bad(
            &format!("bind = \"127.0.0.1:1 ssl crt {crt} accept-proxy\"\nserver = [\"a\"]"),
            &["peers[0].bind", "`accept-proxy` is not supported on a peers bind"],
        );
        bad(
            &format!("default_bind = \"ssl crt {crt} verify required\"\npeer = [\"a 127.0.0.1:1\"]"),
            &["peers[0].default_bind", "ca-file"],
        );
        // HAProxy's warnings when the local peer's line and the listener disagree on `ssl`.
        let s =
            load(&format!("[[peers]]\nname = \"mesh\"\ndefault_bind = \"ssl crt {crt}\"\npeer = [\"a 127.0.0.1:1\"]"))
                .unwrap();
        assert!(
            s.warnings.iter().any(|w| w.contains("peers[0].peer[0]") && w.contains("the listener")),
            "{:?}",
            s.warnings
        );
        let s = load("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:1 ssl verify none\"]").unwrap();
        assert!(s.warnings.iter().any(|w| w.contains("has `ssl` but its listener")), "{:?}", s.warnings);
        let s =
            load("[[peers]]\nname = \"mesh\"\npeer = [\"a 127.0.0.1:1\", \"b 127.0.0.2:2 ca-file x.pem\"]").unwrap();
        assert!(s.warnings.iter().any(|w| w.contains("`ca-file` has no effect without `ssl`")), "{:?}", s.warnings);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
