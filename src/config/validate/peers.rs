//! Validation of `[[peers]]` sections (HAProxy's `peers`) and of the tables that name them. The
//! local peer is `[global] localpeer` or the hostname, as HAProxy's `-L`/`localpeer`; its own line
//! gives the address to listen on. A section without the local peer replicates nothing: as
//! HAProxy 2.6 does, that is a warning and its tables stay local.

use super::{Ctx, Kind, Named, parse_bind};
use crate::config::model::ConfigFile;
use crate::peers::net::{Remote, Section};
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
