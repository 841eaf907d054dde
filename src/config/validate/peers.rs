//! Validation of `[[peers]]` sections (HAProxy's `peers`) and of the tables that name them. The
//! local peer is `[global] localpeer` or the hostname, as HAProxy's `-L`/`localpeer`; its own line
//! gives the address to listen on. A section without the local peer replicates nothing: as
//! HAProxy 2.6 does, that is a warning and its tables stay local.

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
        let mut bind = None;
        if let Some(b) = &d.bind {
            match parse_bind(b) {
                Ok(a) => bind = Some(a),
                Err(e) => cx.err_v(p.key("bind"), e, b),
            }
        }
        let mut remotes: Vec<Remote> = Vec::new();
        let mut me = false;
        let lines = d.peer.iter().map(|l| ("peer", l)).chain(d.server.iter().map(|l| ("server", l)));
        for (j, (key, line)) in lines.enumerate() {
            let j = if key == "peer" { j } else { j - d.peer.len() };
            let lp = p.key(key).index(j);
            let mut w = line.split_whitespace();
            let (Some(name), addr) = (w.next(), w.next()) else {
                cx.err_v(lp, "expected \"NAME ADDR:PORT\"", line);
                continue;
            };
            if let Some(extra) = w.next() {
                cx.err_v(lp, "only \"NAME ADDR:PORT\" is supported (no peer options)", extra);
                continue;
            }
            if (name == local && me) || (name != local && remotes.iter().any(|r| r.name == name)) {
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
            if name == local {
                me = true;
                match (addr, bind) {
                    (Some(a), None) => bind = Some(a),
                    (Some(_), Some(_)) => cx.err_v(lp, "the local peer's address is already given by `bind`", line),
                    (None, _) => {}
                }
                continue;
            }
            match addr {
                Some(addr) if !addr.ip().is_unspecified() => remotes.push(Remote { name: name.to_string(), addr }),
                _ => cx.err_v(lp, "a remote peer needs an address to connect to", line),
            }
        }
        if !me {
            // Without its own line this node is no member: nothing is replicated through it.
            if !d.table.is_empty() {
                cx.warn(
                    p.key("table"),
                    format!("the local peer {local:?} is not in this section: its tables are not replicated"),
                );
            }
            continue;
        }
        let Some(bind) = bind else {
            cx.err_v(p.clone(), "the local peer has no address to listen on (its `peer` line or `bind`)", &local);
            continue;
        };
        out.push(Section { name: d.name.clone(), local: local.clone(), bind, remotes });
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
}
