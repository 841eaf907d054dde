//! Proxy ids (HAProxy's `id N` in frontend, backend and listen sections, its `uuid`): what
//! `fe_id`/`be_id` give and the stats `iid` shows. Unique across all proxies; a proxy without one
//! takes the next unused number in declaration order, as HAProxy 2.6 does: the count moves on
//! past every proxy, numbered or not, and a configured `stats socket` (lbha's `control_socket`)
//! is HAProxy's first proxy ("GLOBAL"), so it takes the first step.

use super::super::error::FieldPath;
use super::super::snapshot::{Backend, Frontend};
use super::{Ctx, Kind, Named};
use std::collections::{HashMap, HashSet};

/// Numbers proxies given in declaration order by their configured ids (`None`: automatic).
/// `cli`: a control socket is configured, which counts as one proxy before the others.
pub(super) fn number(explicit: &[Option<u32>], cli: bool) -> Vec<u32> {
    let used: HashSet<u32> = explicit.iter().flatten().copied().collect();
    let mut next = 1 + u32::from(cli);
    let mut out = Vec::with_capacity(explicit.len());
    for id in explicit {
        out.push(match id {
            Some(id) => *id,
            None => {
                while used.contains(&next) || out.contains(&next) {
                    next += 1;
                }
                next
            }
        });
        next += 1;
    }
    out
}

/// Sets `id` on every frontend and backend: `fronts`/`backs` are the sections `frontends` and
/// `backends` were built from, index for index; `offset` gives where a section starts in the
/// file (the TOML keeps frontends, listens and backends in separate arrays).
#[allow(clippy::too_many_arguments)]
pub(super) fn assign(
    fronts: &[Named],
    backs: &[Named],
    frontends: &mut [Frontend],
    backends: &mut [Backend],
    cli: bool,
    offset: &dyn Fn(&FieldPath) -> Option<usize>,
    cx: &mut Ctx,
) {
    let rank = |k: Kind| match k {
        Kind::Frontend => 0,
        Kind::Listen => 1,
        _ => 2,
    };
    let mut all: Vec<&Named> = fronts.iter().chain(backs.iter().filter(|n| n.kind != Kind::Listen)).collect();
    all.sort_by_key(|n| (offset(&n.path()).unwrap_or(usize::MAX), rank(n.kind), n.index));
    let mut seen: HashMap<u32, &Named> = HashMap::new();
    for n in &all {
        match n.sec.id {
            Some(0) => cx.err_v(n.path().key("id"), "must be greater than 0", 0),
            Some(id) => {
                if let Some(first) = seen.insert(id, n) {
                    let msg = format!("already used by {} {}", first.kind.table(), first.name());
                    cx.err_v(n.path().key("id"), msg, id);
                    seen.insert(id, first);
                }
            }
            None => {}
        }
    }
    let ids = number(&all.iter().map(|n| n.sec.id).collect::<Vec<_>>(), cli);
    let by_section: HashMap<(u8, usize), u32> =
        all.iter().zip(ids).map(|(n, id)| ((rank(n.kind), n.index), id)).collect();
    let id_of = |n: &Named| by_section.get(&(rank(n.kind), n.index)).copied().unwrap_or(0);
    for (f, n) in frontends.iter_mut().zip(fronts) {
        f.id = id_of(n);
    }
    for (b, n) in backends.iter_mut().zip(backs) {
        b.id = id_of(n);
    }
}

#[cfg(test)]
mod tests {
    use super::number;
    use crate::config::parse;
    use std::path::Path;

    #[test]
    fn numbering_follows_haproxy() {
        // Checked against HAProxy 2.6 (`show stat` iid): f1, b1 id 2, l1, b2, f2 id 7, b3 with a
        // `stats socket` are 3, 2, 5, 6, 7, 8; without it 1, 2, 3, ...
        let list = [None, Some(2), None, None, Some(7), None];
        assert_eq!(number(&list, true), [3, 2, 5, 6, 7, 8]);
        assert_eq!(number(&list, false), [1, 2, 3, 4, 7, 6]);
        // A listen with `id 1` after a frontend, with a stats socket: the frontend is 2.
        assert_eq!(number(&[None, Some(1)], true), [2, 1]);
        assert_eq!(number(&[None, None], false), [1, 2]);
    }

    const SECTIONS: &str = r#"
[[frontend]]
name = "f1"
bind = ["127.0.0.1:18801"]
default_backend = "b2"

[[backend]]
name = "b1"
id = 2
servers = [{ name = "s", addr = "127.0.0.1:1" }]

[[listen]]
name = "l1"
bind = ["127.0.0.1:18802"]
servers = [{ name = "s", addr = "127.0.0.1:1" }]

[[backend]]
name = "b2"
servers = [{ name = "s", addr = "127.0.0.1:1" }]
"#;

    #[test]
    fn sections_are_numbered_in_file_order_across_kinds() {
        let snap = parse(SECTIONS, Path::new("t.toml")).unwrap();
        let fe: Vec<(&str, u32)> = snap.frontends.iter().map(|f| (f.name.as_str(), f.id)).collect();
        let be: Vec<(&str, u32)> = snap.backends.iter().map(|b| (b.name.as_str(), b.id)).collect();
        assert_eq!(fe, [("f1", 1), ("l1", 3)]);
        assert_eq!(be, [("l1", 3), ("b1", 2), ("b2", 4)]);
        let with_cli = format!("[global]\ncontrol_socket = {{ path = \"/tmp/x.sock\" }}\n{SECTIONS}");
        let snap = parse(&with_cli, Path::new("t.toml")).unwrap();
        assert_eq!(snap.frontends.iter().map(|f| f.id).collect::<Vec<_>>(), [3, 5]);
    }

    #[test]
    fn duplicates_zero_and_defaults_are_located_errors() {
        let dup = SECTIONS.replace("name = \"b2\"\n", "name = \"b2\"\nid = 2\n");
        let e = parse(&dup, Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.contains("backend[1].id: already used by backend b1 (value: 2)"), "{e}");
        let zero = SECTIONS.replace("id = 2", "id = 0");
        let e = parse(&zero, Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.contains("backend[0].id: must be greater than 0 (value: 0)"), "{e}");
        let e = parse(&format!("[defaults]\nid = 4\n{SECTIONS}"), Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.contains("defaults.id") && e.contains("not allowed in a defaults section"), "{e}");
    }
}
