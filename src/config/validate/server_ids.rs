//! Server ids (HAProxy's `id`, its `puid`): unique in a backend; a server without one takes the
//! next unused number, counting from 1 in server order as HAProxy 2.6 does (the count moves on
//! past every server, numbered or not).

use super::super::error::FieldPath;
use super::super::model;
use super::super::snapshot::Server;
use super::Ctx;
use std::collections::HashMap;

/// A configured id used twice is an error at the second server, naming the first.
pub(super) fn check_unique(servers: &[model::Server], at: &FieldPath, cx: &mut Ctx) {
    let mut seen: HashMap<u32, &str> = HashMap::new();
    for (i, sv) in servers.iter().enumerate() {
        let Some(id) = sv.id.filter(|&id| id > 0) else { continue };
        if let Some(first) = seen.insert(id, &sv.name) {
            cx.err_v(at.key("servers").index(i).key("id"), format!("already used by server {first}"), id);
        }
    }
}

/// Numbers the servers left at 0.
pub(super) fn assign(servers: &mut [Server]) {
    let mut used: std::collections::HashSet<u32> = servers.iter().map(|s| s.id).filter(|&id| id > 0).collect();
    let mut next = 1u32;
    for s in servers.iter_mut() {
        if s.id == 0 {
            while used.contains(&next) {
                next += 1;
            }
            s.id = next;
            used.insert(next);
        }
        next += 1;
    }
}

/// The id of a server added at runtime to `servers` (in place of `at`, or after the last): its
/// own if free, else an error in HAProxy's words; without one, the first unused from 1.
pub(crate) fn runtime_id(servers: &[Server], at: usize, id: u32) -> Result<u32, String> {
    let others = || servers.iter().enumerate().filter(move |(i, _)| *i != at).map(|(_, s)| s);
    if id > 0 {
        return match others().find(|s| s.id == id) {
            Some(s) => Err(format!("'id' : custom id {id} already used by server {}.", s.name)),
            None => Ok(id),
        };
    }
    let used: std::collections::HashSet<u32> = others().map(|s| s.id).collect();
    Ok((1..).find(|n| !used.contains(n)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn ids(servers: &str) -> Result<Vec<u32>, String> {
        let src = format!("[[backend]]\nname = \"be\"\nservers = [{servers}]\n");
        parse(&src, Path::new("t.toml"))
            .map(|s| s.backends[0].servers.iter().map(|s| s.id).collect())
            .map_err(|e| e.to_string())
    }

    fn sv(name: &str, id: Option<u32>) -> String {
        match id {
            Some(id) => format!("{{ name = \"{name}\", addr = \"127.0.0.1:1\", id = {id} }}"),
            None => format!("{{ name = \"{name}\", addr = \"127.0.0.1:1\" }}"),
        }
    }

    #[test]
    fn numbering_follows_haproxy() {
        // HAProxy 2.6 numbers a, b id 1, c, d id 3, e as 2, 1, 4, 3, 6.
        let list = [sv("a", None), sv("b", Some(1)), sv("c", None), sv("d", Some(3)), sv("e", None)].join(", ");
        assert_eq!(ids(&list), Ok(vec![2, 1, 4, 3, 6]));
        assert_eq!(ids(&[sv("a", None), sv("b", None)].join(", ")), Ok(vec![1, 2]));
        assert_eq!(ids(&[sv("a", Some(7)), sv("b", None)].join(", ")), Ok(vec![7, 2]));
    }

    #[test]
    fn duplicates_and_zero_are_located_errors() {
        let e = ids(&[sv("a", Some(3)), sv("b", Some(3))].join(", ")).unwrap_err();
        assert!(e.contains("servers[1].id: already used by server a (value: 3)"), "{e}");
        let e = ids(&sv("a", Some(0))).unwrap_err();
        assert!(e.contains("servers[0].id: must be greater than 0"), "{e}");
    }

    #[test]
    fn runtime_ids_take_a_free_number() {
        let snap = parse(
            &format!("[[backend]]\nname = \"be\"\nservers = [{}]\n", [sv("a", Some(2)), sv("b", None)].join(", ")),
            Path::new("t.toml"),
        )
        .unwrap();
        let servers = &snap.backends[0].servers;
        assert_eq!(servers.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(super::runtime_id(servers, 2, 0), Ok(1));
        assert_eq!(super::runtime_id(servers, 2, 9), Ok(9));
        assert_eq!(super::runtime_id(servers, 2, 2).unwrap_err(), "'id' : custom id 2 already used by server a.");
        // Replacing server a keeps its number free for itself.
        assert_eq!(super::runtime_id(servers, 0, 2), Ok(2));
    }
}
