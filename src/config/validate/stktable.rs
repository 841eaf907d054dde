//! Validation of `stick_table` in frontends, backends and listen sections into the snapshot's
//! list of table definitions (the tables' names are their sections' names).

use super::{Ctx, FieldPath, Kind, Named};
use crate::config::model::StickTableDef;
use crate::stktable::def::{self, DEFAULT_KEY_LEN, KeyKind, TableDef};

pub(super) fn tables(fronts: &[Named], backs: &[Named], cx: &mut Ctx) -> Vec<TableDef> {
    let mut out: Vec<TableDef> = Vec::new();
    // A listen section is in both lists: its table is read once.
    for n in fronts.iter().chain(backs.iter().filter(|n| n.kind != Kind::Listen)) {
        let Some(t) = &n.sec.stick_table else { continue };
        let p = n.path().key("stick_table");
        let sticky = n.sec.stick.as_ref().is_some_and(|r| !r.is_empty());
        let Some(d) = table_def(n.name(), t, sticky, &p, cx) else { continue };
        if out.iter().any(|o| o.name == d.name) {
            cx.err_v(n.path().key("name"), "another section with a stick table has this name", &d.name);
            continue;
        }
        out.push(d);
    }
    out
}

/// One table; `sticky`: stick rules use it, so it also keeps `server_id` and `server_key`.
pub(super) fn table_def(name: &str, t: &StickTableDef, sticky: bool, p: &FieldPath, cx: &mut Ctx) -> Option<TableDef> {
    let before = cx.problems.len();
    let len = t.len.unwrap_or(DEFAULT_KEY_LEN);
    let key = match t.type_.as_deref() {
        Some("ip") => KeyKind::Ip,
        Some("ipv6") => KeyKind::Ipv6,
        Some("integer") => KeyKind::Integer,
        Some("string") => KeyKind::String { len },
        Some("binary") => KeyKind::Binary { len },
        Some(other) => {
            cx.err_v(p.key("type"), "expected \"ip\", \"ipv6\", \"integer\", \"string\" or \"binary\"", other);
            KeyKind::Ip
        }
        None => {
            cx.err(p.clone(), "missing `type` (\"ip\", \"ipv6\", \"integer\", \"string\" or \"binary\")");
            KeyKind::Ip
        }
    };
    match (t.len, key) {
        (Some(0), KeyKind::String { .. } | KeyKind::Binary { .. }) => cx.err_v(p.key("len"), "must be at least 1", 0),
        (Some(_), KeyKind::Ip | KeyKind::Ipv6 | KeyKind::Integer) => {
            cx.err(p.key("len"), "only string and binary tables take `len`")
        }
        _ => {}
    }
    let size = match t.size {
        None => {
            cx.err(p.key("size"), "missing `size` (most entries kept, e.g. \"1m\")");
            1
        }
        Some(s) if s.0 == 0 => {
            cx.err_v(p.key("size"), "must be at least 1", 0);
            1
        }
        Some(s) if s.0 > u64::from(u32::MAX) => {
            cx.err_v(p.key("size"), "must be at most 4294967295 entries", s.0);
            1
        }
        Some(s) => usize::try_from(s.0).unwrap_or(usize::MAX),
    };
    match t.expire {
        Some(e) if e.0.is_zero() => {
            cx.err_v(p.key("expire"), "must be greater than 0 (leave it out to never expire)", "0")
        }
        _ => {}
    }
    let items = t.store.clone().unwrap_or_default();
    let store = match def::parse_store(&items) {
        Ok(s) => s,
        Err((i, e)) => {
            cx.err_v(p.key("store").index(i), e.to_string(), &items[i]);
            Vec::new()
        }
    };
    if cx.problems.len() > before {
        return None;
    }
    let store = if sticky { def::with_server_key(store) } else { store };
    Some(TableDef {
        name: name.to_string(),
        key,
        size,
        expire: t.expire.map(|d| d.0),
        nopurge: t.nopurge,
        peers: t.peers.clone(),
        store,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::peers::DataType;
    use crate::stktable::KeyKind;
    use std::path::Path;

    const FE: &str =
        "[[frontend]]\nname = \"fe\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"be\"\n";
    const BE: &str =
        "[[backend]]\nname = \"be\"\nmode = \"http\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:1\" }]\n";

    fn errors(src: &str) -> Vec<String> {
        crate::config::tests::errors(src)
    }

    #[test]
    fn tables_in_frontends_backends_and_table_only_backends() {
        let src = format!(
            "{FE}stick_table = {{ type = \"ipv6\", size = \"1m\", expire = \"10s\", store = [\"http_req_rate(10s)\", \"conn_cur\", \"gpc0\"] }}\n\
             {BE}stick_table = {{ type = \"ip\", size = 10 }}\nstick = [{{ on = \"src\" }}]\n\
             [[backend]]\nname = \"st_bin\"\nstick_table = {{ type = \"binary\", len = 8, size = \"1k\", nopurge = true, store = [\"gpc(2)\", \"gpc_rate(2,1m)\", \"bytes_out_cnt\"] }}\n"
        );
        let snap = parse(&src, Path::new("t.toml")).unwrap();
        let t = &snap.stick_tables;
        assert_eq!(t.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["fe", "be", "st_bin"]);
        assert_eq!((t[0].key, t[0].size, t[0].expire_ms()), (KeyKind::Ipv6, 1 << 20, 10_000));
        let names = |i: usize| t[i].store.iter().map(|s| s.dt.name()).collect::<Vec<_>>();
        assert_eq!(names(0), ["gpc0", "conn_cur", "http_req_rate"]);
        assert_eq!(names(1), ["server_id", "server_key"], "stick rules store the server");
        assert_eq!((t[2].key, t[2].nopurge), (KeyKind::Binary { len: 8 }, true));
        assert_eq!(t[2].stored(DataType::GPC_RATE).map(|s| (s.count, s.period)), Some((2, 60_000)));
    }

    #[test]
    fn located_errors() {
        let has = |extra: &str, want: &str| {
            let errs = errors(&format!("{FE}{extra}\n"));
            assert!(errs.iter().any(|e| e.contains(want)), "expected {want:?} in {errs:#?}");
        };
        has(
            "stick_table = { type = \"ip\", size = 1, store = [\"gpc0\", \"conn_rate\"] }",
            "frontend[0].stick_table.store[1]: conn_rate needs a period in parentheses, e.g. conn_rate(10s) (conn_rate)",
        );
        has(
            "stick_table = { type = \"ip\", size = 1, store = [\"bogus\"] }",
            "stick_table.store[0]: unknown data type",
        );
        has(
            "stick_table = { type = \"ip\", size = 1, store = [\"gpc(2)\", \"gpc0\"] }",
            "store[1]: gpc/gpt arrays cannot be stored with gpc0",
        );
        has(
            "stick_table = { type = \"ip\", size = 1, peers = \"mesh\" }",
            "stick_table.peers: no `[[peers]]` section has this name (mesh)",
        );
        has("stick_table = { type = \"ip\", size = 1, expire = \"30d\" }", "stick_table.expire: timer overflow");
        has(
            "stick_table = { type = \"ip\", len = 3, size = 1 }",
            "stick_table.len: only string and binary tables take `len`",
        );
        has("stick_table = { type = \"binary\", size = 0 }", "stick_table.size: must be at least 1 (0)");
        let errs =
            errors(&format!("{BE}stick_table = {{ type = \"ipv6\", size = 1 }}\nstick = [{{ on = \"src\" }}]\n"));
        assert!(
            errs.iter()
                .any(|e| e.contains("stick_table.type: stick rules need a table of type ip, integer or string (ipv6)")),
            "{errs:#?}"
        );
        let dup = errors(
            "[[listen]]\nname = \"x\"\nbind = [\"127.0.0.1:2\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:1\" }]\nstick_table = { type = \"ip\", size = 1 }\n",
        );
        assert_eq!(dup, Vec::<String>::new(), "a listen section's table is read once");
    }
}
