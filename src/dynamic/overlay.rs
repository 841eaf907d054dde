//! Runtime changes to servers and limits, kept as an overlay on the configuration text: every
//! load (start, reload, each runtime change) applies it to the file's TOML before validation, so
//! runtime servers and address changes survive a reload and, saved next to `server_state_file`,
//! a restart. The file wins over the overlay: a change to a server the file has since changed is
//! dropped, as is a runtime server whose name the file now uses. Pure: text in, text out.

use crate::config::model::Server;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// A server added at runtime (`add server`, or the Data Plane API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    pub backend: String,
    pub server: Server,
}

/// Runtime changes to a server of the file, made while it had `config_addr`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerEdit {
    /// The `addr` the file gave when the change was made.
    pub config_addr: String,
    pub addr: Option<String>,
    pub check_port: Option<u16>,
    /// `set server check-addr`, `agent-addr`, `agent-port`, `agent-send`.
    pub check_addr: Option<String>,
    pub agent_addr: Option<String>,
    pub agent_port: Option<u16>,
    pub agent_send: Option<String>,
    pub maxconn: Option<u32>,
    /// `set server ssl on|off`, and the checks' TLS kept as it was (HAProxy leaves the check
    /// path alone).
    pub ssl: Option<bool>,
    pub check_ssl: Option<bool>,
    pub deleted: bool,
    /// The address its resolvers last gave (an IP), or `none`: written as its `init_addr`, so the
    /// name stays in `addr` and every load starts from the last answer (HAProxy's `init-addr last`).
    pub dns: Option<String>,
    /// The weight its SRV record last gave (written as its `weight`).
    pub dns_weight: Option<u32>,
}

/// Runtime changes to a frontend (`set maxconn frontend`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrontendEdit {
    pub maxconn: Option<u32>,
}

/// Every runtime change that outlives a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Overlay {
    pub added: Vec<Added>,
    /// Keyed by `backend/server`.
    pub edits: BTreeMap<String, ServerEdit>,
    pub frontends: BTreeMap<String, FrontendEdit>,
    pub global_maxconn: Option<u32>,
}

/// What applying an overlay dropped because the file changed under it: `backend/server` and why
/// (`backend/server` + [`ID_TAKEN`]: only the runtime server's id).
pub type Dropped = Vec<(String, String)>;

/// Marks a dropped id rather than a dropped server.
const ID_TAKEN: &str = " id";

/// A server entry of a `servers` array, written either inline or as `[[backend.servers]]`.
enum Entry<'a> {
    Inline(&'a mut InlineTable),
    Table(&'a mut Table),
}

impl Entry<'_> {
    fn str(&self, k: &str) -> Option<&str> {
        match self {
            Entry::Inline(t) => t.get(k).and_then(Value::as_str),
            Entry::Table(t) => t.get(k).and_then(Item::as_str),
        }
    }
    fn int(&self, k: &str) -> Option<i64> {
        match self {
            Entry::Inline(t) => t.get(k).and_then(Value::as_integer),
            Entry::Table(t) => t.get(k).and_then(Item::as_integer),
        }
    }
    fn remove(&mut self, k: &str) {
        match self {
            Entry::Inline(t) => {
                t.remove(k);
            }
            Entry::Table(t) => {
                t.remove(k);
            }
        }
    }
    fn set(&mut self, k: &str, v: Value) {
        match self {
            Entry::Inline(t) => {
                t.insert(k, v);
            }
            Entry::Table(t) => {
                t.insert(k, Item::Value(v));
            }
        }
    }
}

/// The tables of `[[backend]]` and `[[listen]]` (servers) or `[[frontend]]` and `[[listen]]`.
fn sections<'a>(doc: &'a mut DocumentMut, kinds: &[&str]) -> Vec<&'a mut Table> {
    let mut out = Vec::new();
    for (k, item) in doc.as_table_mut().iter_mut() {
        if kinds.contains(&k.get())
            && let Some(aot) = item.as_array_of_tables_mut()
        {
            out.extend(aot.iter_mut());
        }
    }
    out
}

fn name_of(t: &Table) -> Option<&str> {
    t.get("name").and_then(Item::as_str)
}

/// Calls `f` on each server entry of a backend table with its index; `f` says whether to keep it.
fn retain_servers(t: &mut Table, mut f: impl FnMut(&mut Entry<'_>) -> bool) {
    match t.get_mut("servers") {
        Some(Item::Value(Value::Array(arr))) => {
            let mut i = 0;
            while i < arr.len() {
                let keep = match arr.get_mut(i) {
                    Some(Value::InlineTable(it)) => f(&mut Entry::Inline(it)),
                    _ => true,
                };
                if keep {
                    i += 1;
                } else {
                    arr.remove(i);
                }
            }
        }
        Some(Item::ArrayOfTables(aot)) => {
            let mut i = 0;
            while i < aot.len() {
                let keep = aot.get_mut(i).is_none_or(|t| f(&mut Entry::Table(t)));
                if keep {
                    i += 1;
                } else {
                    aot.remove(i);
                }
            }
        }
        _ => {}
    }
}

fn push_server(t: &mut Table, s: InlineTable) {
    match t.get_mut("servers") {
        Some(Item::Value(Value::Array(arr))) => arr.push(Value::InlineTable(s)),
        Some(Item::ArrayOfTables(aot)) => aot.push(s.into_table()),
        _ => {
            let mut arr = toml_edit::Array::new();
            arr.push(Value::InlineTable(s));
            t.insert("servers", Item::Value(Value::Array(arr)));
        }
    }
}

fn key(backend: &str, server: &str) -> String {
    format!("{backend}/{server}")
}

fn parse_doc(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>().map_err(|e| format!("cannot apply runtime changes: {e}"))
}

/// A server of the file: its `addr` as written, or None when the file has no such server.
pub fn config_addr(text: &str, backend: &str, server: &str) -> Option<String> {
    let mut doc = parse_doc(text).ok()?;
    let mut found = None;
    for t in sections(&mut doc, &["backend", "listen"]) {
        if name_of(t) != Some(backend) {
            continue;
        }
        retain_servers(t, |e| {
            if e.str("name") == Some(server) {
                found = e.str("addr").map(String::from);
            }
            true
        });
    }
    found
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self == &Overlay::default()
    }

    /// The runtime-added server `backend/server`, if it is one.
    pub fn added_mut(&mut self, backend: &str, server: &str) -> Option<&mut Server> {
        self.added.iter_mut().find(|a| a.backend == backend && a.server.name == server).map(|a| &mut a.server)
    }

    /// Server `backend/server` as the next load would read it: a runtime server as added, or
    /// `file` (the file's entry) with this overlay's edits (None once deleted).
    pub fn server(&self, file: Option<&Server>, backend: &str, server: &str) -> Option<Server> {
        if let Some(a) = self.added.iter().find(|a| a.backend == backend && a.server.name == server) {
            return Some(a.server.clone());
        }
        let mut sv = file?.clone();
        let Some(ed) = self.edits.get(&key(backend, server)) else { return Some(sv) };
        if ed.deleted || ed.config_addr != sv.addr {
            return None;
        }
        if let Some(a) = &ed.addr {
            sv.addr = a.clone();
        }
        if let Some(d) = &ed.dns {
            sv.init_addr = Some(d.clone());
        }
        sv.check_port = ed.check_port.or(sv.check_port);
        sv.check_addr = ed.check_addr.clone().or(sv.check_addr);
        sv.agent_addr = ed.agent_addr.clone().or(sv.agent_addr);
        sv.agent_port = ed.agent_port.or(sv.agent_port);
        sv.agent_send = ed.agent_send.clone().or(sv.agent_send);
        match ed.maxconn {
            Some(0) => sv.maxconn = None,
            Some(m) => sv.maxconn = Some(m),
            None => {}
        }
        sv.ssl = ed.ssl.unwrap_or(sv.ssl);
        sv.check_ssl = ed.check_ssl.or(sv.check_ssl);
        Some(sv)
    }

    /// The edit record of a file server, created with the file's current address.
    fn edit(&mut self, backend: &str, server: &str, config_addr: &str) -> &mut ServerEdit {
        self.edits
            .entry(key(backend, server))
            .or_insert_with(|| ServerEdit { config_addr: config_addr.to_string(), ..ServerEdit::default() })
    }

    pub fn add(&mut self, backend: &str, server: Server) {
        self.added.push(Added { backend: backend.to_string(), server });
    }

    /// Forgets a runtime server, or records the deletion of a file server (`config_addr`).
    pub fn delete(&mut self, backend: &str, server: &str, config_addr: Option<&str>) {
        let before = self.added.len();
        self.added.retain(|a| !(a.backend == backend && a.server.name == server));
        if self.added.len() == before
            && let Some(ca) = config_addr
        {
            let e = self.edit(backend, server, ca);
            *e = ServerEdit { config_addr: e.config_addr.clone(), deleted: true, ..ServerEdit::default() };
        }
    }

    pub fn set_addr(&mut self, backend: &str, server: &str, config_addr: Option<&str>, addr: String) {
        if let Some(f) = self.added_mut(backend, server) {
            f.addr = addr;
        } else if let Some(ca) = config_addr {
            self.edit(backend, server, ca).addr = Some(addr);
        }
    }

    /// Records what the resolvers gave a file server (an IP, `IP:PORT` for an SRV slot, or
    /// `none`) and, for an SRV slot, its weight.
    pub fn set_dns(&mut self, backend: &str, server: &str, config_addr: &str, v: String, weight: Option<u32>) {
        let e = self.edit(backend, server, config_addr);
        e.dns = Some(v);
        if weight.is_some() {
            e.dns_weight = weight;
        }
    }

    pub fn set_check_port(&mut self, backend: &str, server: &str, config_addr: Option<&str>, port: u16) {
        if let Some(f) = self.added_mut(backend, server) {
            f.check_port = Some(port);
        } else if let Some(ca) = config_addr {
            self.edit(backend, server, ca).check_port = Some(port);
        }
    }

    /// A check or agent setting: `on_added` for a runtime server, `on_edit` for a file one.
    pub fn set_probe(
        &mut self,
        backend: &str,
        server: &str,
        config_addr: Option<&str>,
        on_added: impl FnOnce(&mut Server),
        on_edit: impl FnOnce(&mut ServerEdit),
    ) {
        if let Some(f) = self.added_mut(backend, server) {
            on_added(f);
        } else if let Some(ca) = config_addr {
            on_edit(self.edit(backend, server, ca));
        }
    }

    /// `set server ssl`: the server's `ssl`, and `check_ssl` when its checks must keep the
    /// path they had (TLS or plain).
    pub fn set_ssl(
        &mut self,
        backend: &str,
        server: &str,
        config_addr: Option<&str>,
        ssl: bool,
        check_ssl: Option<bool>,
    ) {
        if let Some(f) = self.added_mut(backend, server) {
            f.ssl = ssl;
            f.check_ssl = check_ssl.or(f.check_ssl);
        } else if let Some(ca) = config_addr {
            let e = self.edit(backend, server, ca);
            e.ssl = Some(ssl);
            e.check_ssl = check_ssl.or(e.check_ssl);
        }
    }

    pub fn set_server_maxconn(&mut self, backend: &str, server: &str, config_addr: Option<&str>, m: u32) {
        if let Some(f) = self.added_mut(backend, server) {
            f.maxconn = (m > 0).then_some(m);
        } else if let Some(ca) = config_addr {
            self.edit(backend, server, ca).maxconn = Some(m);
        }
    }

    /// The configuration text with the overlay applied, and what was dropped because the file
    /// changed under it (call [`Overlay::prune`] with it once the result is in service).
    pub fn apply(&self, text: &str) -> Result<(String, Dropped), String> {
        if self.is_empty() {
            return Ok((text.to_string(), Vec::new()));
        }
        let mut doc = parse_doc(text)?;
        let mut dropped = Vec::new();
        let mut seen_edits = std::collections::HashSet::new();
        for t in sections(&mut doc, &["backend", "listen"]) {
            let Some(b) = name_of(t).map(String::from) else { continue };
            let mut names = Vec::new();
            let mut ids = Vec::new();
            retain_servers(t, |e| {
                ids.extend(e.int("id"));
                let Some(name) = e.str("name").map(String::from) else { return true };
                let k = key(&b, &name);
                let Some(ed) = self.edits.get(&k) else {
                    names.push(name);
                    return true;
                };
                seen_edits.insert(k.clone());
                if e.str("addr") != Some(ed.config_addr.as_str()) {
                    let why = format!("server {k}: the file changed its address; runtime changes to it dropped");
                    dropped.push((k.clone(), why));
                    names.push(name);
                    return true;
                }
                if ed.deleted {
                    return false;
                }
                names.push(name);
                if let Some(a) = &ed.addr {
                    e.set("addr", Value::from(a.as_str()));
                }
                if let Some(d) = &ed.dns {
                    e.set("init_addr", Value::from(d.as_str()));
                }
                if let Some(w) = ed.dns_weight {
                    e.set("weight", Value::from(i64::from(w)));
                }
                if let Some(p) = ed.check_port {
                    e.set("check_port", Value::from(i64::from(p)));
                }
                if let Some(p) = ed.agent_port {
                    e.set("agent_port", Value::from(i64::from(p)));
                }
                for (k, v) in
                    [("check_addr", &ed.check_addr), ("agent_addr", &ed.agent_addr), ("agent_send", &ed.agent_send)]
                {
                    if let Some(v) = v {
                        e.set(k, Value::from(v.as_str()));
                    }
                }
                match ed.maxconn {
                    Some(0) => e.remove("maxconn"),
                    Some(m) => e.set("maxconn", Value::from(i64::from(m))),
                    None => {}
                }
                for (k, v) in [("ssl", ed.ssl), ("check_ssl", ed.check_ssl)] {
                    if let Some(v) = v {
                        e.set(k, Value::from(v));
                    }
                }
                true
            });
            for a in self.added.iter().filter(|a| a.backend == b) {
                if names.contains(&a.server.name) {
                    let k = key(&b, &a.server.name);
                    let why = format!("server {k}: the file now has a server of that name; the runtime one is dropped");
                    dropped.push((k, why));
                } else if let Some(id) = a.server.id.filter(|id| ids.contains(&i64::from(*id))) {
                    // The file's id wins; the runtime server takes the next free one from now on.
                    let k = key(&b, &a.server.name);
                    let why =
                        format!("server {k}: the file now gives its id {id} to another server; it gets a new one");
                    dropped.push((format!("{k}{ID_TAKEN}"), why));
                    let mut sv = a.server.clone();
                    sv.id = None;
                    push_server(t, super::keywords::inline_table(&sv));
                } else {
                    push_server(t, super::keywords::inline_table(&a.server));
                }
            }
        }
        for k in self.edits.keys().filter(|k| !seen_edits.contains(*k)) {
            dropped.push((k.clone(), format!("server {k}: no longer in the file; runtime changes to it dropped")));
        }
        for a in &self.added {
            let exists = sections(&mut doc, &["backend", "listen"]).iter().any(|t| name_of(t) == Some(&a.backend));
            if !exists {
                let k = key(&a.backend, &a.server.name);
                let why = format!("server {k}: backend no longer in the file; the runtime server is dropped");
                dropped.push((k, why));
            }
        }
        for t in sections(&mut doc, &["frontend", "listen"]) {
            let Some(f) = name_of(t).map(String::from) else { continue };
            if let Some(m) = self.frontends.get(&f).and_then(|e| e.maxconn) {
                t.insert("maxconn", toml_edit::value(i64::from(m)));
            }
        }
        if let Some(m) = self.global_maxconn {
            let g = doc.as_table_mut().entry("global").or_insert_with(|| Item::Table(Table::new()));
            if let Some(g) = g.as_table_like_mut() {
                g.insert("maxconn", toml_edit::value(i64::from(m)));
            }
        }
        Ok((doc.to_string(), dropped))
    }

    /// The config paths (`backend[0].servers[2].check_ssl`) of the `check_ssl` values in
    /// `merged` (the text [`Overlay::apply`] made) that runtime changes recorded, not the
    /// operator: what a load says about them was said when they were set.
    pub fn runtime_check_ssl(&self, merged: &str) -> Vec<String> {
        let Ok(mut doc) = merged.parse::<DocumentMut>() else { return Vec::new() };
        let mut out = Vec::new();
        for kind in ["backend", "listen"] {
            let Some(aot) = doc.get_mut(kind).and_then(Item::as_array_of_tables_mut) else { continue };
            for (i, t) in aot.iter_mut().enumerate() {
                let Some(b) = name_of(t).map(String::from) else { continue };
                let mut j = 0;
                retain_servers(t, |e| {
                    let recorded = e.str("name").is_some_and(|n| {
                        self.edits.get(&key(&b, n)).is_some_and(|ed| ed.check_ssl.is_some())
                            || self
                                .added
                                .iter()
                                .any(|a| a.backend == b && a.server.name == n && a.server.check_ssl.is_some())
                    });
                    if recorded {
                        out.push(format!("{kind}[{i}].servers[{j}].check_ssl"));
                    }
                    j += 1;
                    true
                });
            }
        }
        out
    }

    /// Forgets the changes [`Overlay::apply`] reported dropped.
    pub fn prune(&mut self, dropped: &Dropped) {
        let gone = |k: &str| dropped.iter().any(|(d, _)| d == k);
        self.edits.retain(|k, _| !gone(k));
        self.added.retain(|a| !gone(&key(&a.backend, &a.server.name)));
        for a in &mut self.added {
            if gone(&format!("{}{ID_TAKEN}", key(&a.backend, &a.server.name))) {
                a.server.id = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"[global]
maxconn = 100
[[frontend]]
name = "fe"
bind = ["127.0.0.1:80"]
default_backend = "be"
[[backend]]
name = "be"
servers = [
  { name = "a", addr = "127.0.0.1:8001" },
  { name = "b", addr = "127.0.0.1:8002", check = true },
]
[[backend]]
name = "tables"
[[backend.servers]]
name = "x"
addr = "127.0.0.1:9001"
"#;

    fn fields(name: &str, addr: &str) -> Server {
        Server { name: name.into(), addr: addr.into(), check: true, ..Server::default() }
    }

    fn snap(text: &str) -> crate::config::Snapshot {
        crate::config::parse(text, std::path::Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn added_servers_and_edits_reach_the_snapshot() {
        let mut o = Overlay::default();
        o.add("be", fields("c", "127.0.0.1:8003"));
        o.add("tables", fields("y", "127.0.0.1:9002"));
        o.set_addr("be", "a", config_addr(BASE, "be", "a").as_deref(), "127.0.0.2:8001".into());
        o.set_check_port("be", "b", Some("127.0.0.1:8002"), 9999);
        o.set_server_maxconn("be", "c", None, 7);
        o.set_server_maxconn("be", "b", Some("127.0.0.1:8002"), 0);
        o.frontends.insert("fe".into(), FrontendEdit { maxconn: Some(50) });
        o.global_maxconn = Some(200);
        let (text, dropped) = o.apply(BASE).unwrap();
        assert!(dropped.is_empty(), "{dropped:?}");
        let s = snap(&text);
        let be = &s.backends[0];
        let names: Vec<_> = be.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(be.servers[0].addr.to_string(), "127.0.0.2:8001");
        assert_eq!(be.servers[1].check.as_ref().unwrap().addr.port(), 9999);
        assert_eq!(be.servers[2].maxconn, Some(7));
        assert_eq!(be.servers[1].maxconn, None, "0: no limit");
        assert_eq!(s.backends[1].servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(s.frontends[0].maxconn, Some(50));
        assert_eq!(s.global.maxconn, 200);
        // The rest of the file keeps its lines.
        assert!(text.starts_with("[global]\nmaxconn = 200\n[[frontend]]\nname = \"fe\"\n"), "{text}");
    }

    #[test]
    fn deleting_forgets_runtime_servers_and_hides_file_servers() {
        let mut o = Overlay::default();
        o.add("be", fields("c", "127.0.0.1:8003"));
        o.delete("be", "c", None);
        assert!(o.is_empty());
        o.delete("be", "a", Some("127.0.0.1:8001"));
        let s = snap(&o.apply(BASE).unwrap().0);
        assert_eq!(s.backends[0].servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["b"]);
        // A runtime server may take the name of a deleted one.
        o.add("be", fields("a", "127.0.0.1:8009"));
        let (text, dropped) = o.apply(BASE).unwrap();
        assert!(dropped.is_empty(), "{dropped:?}");
        let s = snap(&text);
        assert_eq!(s.backends[0].servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(s.backends[0].servers[1].addr.to_string(), "127.0.0.1:8009");
    }

    #[test]
    fn the_file_wins_over_stale_runtime_changes() {
        let mut o = Overlay::default();
        o.set_addr("be", "a", Some("127.0.0.1:8001"), "127.0.0.2:8001".into());
        o.add("be", fields("b", "127.0.0.1:7000"));
        o.add("gone", fields("z", "127.0.0.1:7001"));
        o.set_addr("be", "vanished", Some("127.0.0.1:1"), "127.0.0.1:2".into());
        let edited = BASE.replace("127.0.0.1:8001", "127.0.0.3:8001");
        let (text, dropped) = o.apply(&edited).unwrap();
        assert_eq!(dropped.len(), 4, "{dropped:?}");
        let s = snap(&text);
        assert_eq!(s.backends[0].servers[0].addr.to_string(), "127.0.0.3:8001");
        assert_eq!(s.backends[0].servers.len(), 2);
        o.prune(&dropped);
        assert!(o.is_empty(), "{o:?}");
    }

    #[test]
    fn ssl_changes_reach_the_file_servers_and_the_runtime_ones() {
        let mut o = Overlay::default();
        o.add("be", fields("c", "127.0.0.1:8003"));
        o.set_ssl("be", "c", None, true, None);
        o.set_ssl("be", "b", Some("127.0.0.1:8002"), true, Some(true));
        let (text, _) = o.apply(BASE).unwrap();
        assert!(text.contains("ssl = true, check_ssl = true"), "{text}");
        assert!(o.added[0].server.ssl);
        let file = Server { name: "b".into(), addr: "127.0.0.1:8002".into(), ..Server::default() };
        let b = o.server(Some(&file), "be", "b").unwrap();
        assert!(b.ssl && b.check_ssl == Some(true));
        o.set_ssl("be", "b", Some("127.0.0.1:8002"), false, None);
        let b = o.server(Some(&file), "be", "b").unwrap();
        assert!(!b.ssl && b.check_ssl == Some(true), "the check's TLS stays as pinned");
    }

    #[test]
    fn a_runtime_servers_id_stays_unless_the_file_gives_it_away() {
        let mut o = Overlay::default();
        o.add("be", Server { id: Some(3), ..fields("c", "127.0.0.1:8003") });
        // The file grows a server: the runtime one keeps 3, the new one takes the next free.
        let grown = BASE.replace(
            "  { name = \"b\", addr = \"127.0.0.1:8002\", check = true },\n",
            "  { name = \"b\", addr = \"127.0.0.1:8002\", check = true },\n  { name = \"d\", addr = \"127.0.0.1:8004\" },\n",
        );
        let (text, dropped) = o.apply(&grown).unwrap();
        assert!(dropped.is_empty(), "{dropped:?}");
        let ids: Vec<(String, u32)> = snap(&text).backends[0].servers.iter().map(|s| (s.name.clone(), s.id)).collect();
        assert_eq!(ids, [("a".into(), 1), ("b".into(), 2), ("d".into(), 4), ("c".into(), 3)]);
        // The file names 3 for one of its own: the file wins, the runtime server is renumbered.
        let taken = grown.replace("127.0.0.1:8004\" }", "127.0.0.1:8004\", id = 3 }");
        let (text, dropped) = o.apply(&taken).unwrap();
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert!(dropped[0].1.contains("id 3"), "{dropped:?}");
        let s = snap(&text);
        assert_eq!(s.backends[0].servers.iter().find(|s| s.name == "c").map(|s| s.id), Some(4));
        o.prune(&dropped);
        assert_eq!(o.added.len(), 1, "the server stays");
        assert_eq!(o.added[0].server.id, None);
    }

    #[test]
    fn a_backend_without_servers_gets_a_servers_array() {
        let base = "[[backend]]\nname = \"empty\"\n";
        let mut o = Overlay::default();
        o.add("empty", fields("s", "127.0.0.1:1"));
        let s = snap(&o.apply(base).unwrap().0);
        assert_eq!(s.backends[0].servers[0].name, "s");
    }

    /// What a single-server change validates is what the next load would read for that server.
    #[test]
    fn one_server_as_the_next_load_reads_it() {
        let file = Server { name: "a".into(), addr: "127.0.0.1:8001".into(), ..Server::default() };
        let mut o = Overlay::default();
        assert_eq!(o.server(Some(&file), "be", "a"), Some(file.clone()));
        o.set_addr("be", "a", Some("127.0.0.1:8001"), "127.0.0.2:8001".into());
        o.set_check_port("be", "a", Some("127.0.0.1:8001"), 9000);
        o.set_server_maxconn("be", "a", Some("127.0.0.1:8001"), 7);
        let want = Server { addr: "127.0.0.2:8001".into(), check_port: Some(9000), maxconn: Some(7), ..file.clone() };
        assert_eq!(o.server(Some(&file), "be", "a"), Some(want));
        o.set_server_maxconn("be", "a", Some("127.0.0.1:8001"), 0);
        assert_eq!(o.server(Some(&file), "be", "a").unwrap().maxconn, None);
        // The file changed the server since: the edits no longer describe it.
        let moved = Server { addr: "127.0.0.9:1".into(), ..file.clone() };
        assert_eq!(o.server(Some(&moved), "be", "a"), None);
        o.add("be", fields("c", "127.0.0.1:8003"));
        assert_eq!(o.server(None, "be", "c"), Some(fields("c", "127.0.0.1:8003")));
        assert_eq!(o.server(None, "be", "nope"), None);
        o.delete("be", "a", Some("127.0.0.1:8001"));
        assert_eq!(o.server(Some(&file), "be", "a"), None);
    }

    #[test]
    fn overlay_round_trips_through_json() {
        let mut o = Overlay::default();
        o.add("be", fields("c", "127.0.0.1:8003"));
        o.delete("be", "a", Some("127.0.0.1:8001"));
        let j = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Overlay>(&j).unwrap(), o);
    }
}
