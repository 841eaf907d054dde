//! The shared part of a config: the file less its node-local keys. Its content hash says whether
//! two nodes agree; a merge gives a node the peer's shared part with its own local values. Pure:
//! text in, text out.

use std::fmt::Write as _;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// One step of a concrete path: a key, or an array element named by its `name` (or its index).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Named(String),
    Index(usize),
}

/// A table in either TOML form.
enum TMut<'a> {
    T(&'a mut Table),
    I(&'a mut InlineTable),
}

/// A value in either form.
enum NMut<'a> {
    Item(&'a mut Item),
    Value(&'a mut Value),
}

impl<'a> TMut<'a> {
    fn keys(&self) -> Vec<String> {
        match self {
            TMut::T(t) => t.iter().map(|(k, _)| k.to_string()).collect(),
            TMut::I(t) => t.iter().map(|(k, _)| k.to_string()).collect(),
        }
    }
    fn child(&mut self, k: &str) -> Option<NMut<'_>> {
        match self {
            TMut::T(t) => t.get_mut(k).map(NMut::Item),
            TMut::I(t) => t.get_mut(k).map(NMut::Value),
        }
    }
    fn into_child(self, k: &str) -> Option<NMut<'a>> {
        match self {
            TMut::T(t) => t.get_mut(k).map(NMut::Item),
            TMut::I(t) => t.get_mut(k).map(NMut::Value),
        }
    }
    fn remove(&mut self, k: &str) {
        match self {
            TMut::T(t) => {
                t.remove(k);
            }
            TMut::I(t) => {
                t.remove(k);
            }
        }
    }
    fn set(&mut self, k: &str, item: Item) {
        match self {
            TMut::T(t) => {
                t.insert(k, item);
            }
            TMut::I(t) => {
                if let Ok(v) = item.into_value() {
                    t.insert(k, v);
                }
            }
        }
    }
    fn name(&self) -> Option<String> {
        match self {
            TMut::T(t) => t.get("name").and_then(Item::as_str).map(str::to_string),
            TMut::I(t) => t.get("name").and_then(Value::as_str).map(str::to_string),
        }
    }
}

impl<'a> NMut<'a> {
    fn table(self) -> Option<TMut<'a>> {
        match self {
            NMut::Item(Item::Table(t)) => Some(TMut::T(t)),
            NMut::Item(Item::Value(Value::InlineTable(t))) | NMut::Value(Value::InlineTable(t)) => Some(TMut::I(t)),
            _ => None,
        }
    }
    /// The elements of an array of tables, in either form, with their indices.
    fn elems(self) -> Option<Vec<(usize, TMut<'a>)>> {
        match self {
            NMut::Item(Item::ArrayOfTables(a)) => Some(a.iter_mut().map(TMut::T).enumerate().collect()),
            NMut::Item(Item::Value(Value::Array(a))) | NMut::Value(Value::Array(a)) => Some(
                a.iter_mut()
                    .enumerate()
                    .filter_map(|(i, v)| v.as_inline_table_mut().map(|t| (i, TMut::I(t))))
                    .collect(),
            ),
            _ => None,
        }
    }
    fn to_item(&self) -> Item {
        match self {
            NMut::Item(i) => (*i).clone(),
            NMut::Value(v) => Item::Value((*v).clone()),
        }
    }
}

fn segments(pattern: &str) -> Vec<&str> {
    pattern.split('.').collect()
}

/// Every value `pattern` selects in `t`, with its concrete path.
fn collect(t: TMut<'_>, pat: &[&str], prefix: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Item)>) {
    let Some((seg, rest)) = pat.split_first() else { return };
    let mut t = t;
    let keys: Vec<String> = if *seg == "*" { t.keys() } else { vec![seg.to_string()] };
    for k in keys {
        let Some(child) = t.child(&k) else { continue };
        prefix.push(Step::Key(k.clone()));
        if rest.is_empty() {
            out.push((prefix.clone(), child.to_item()));
        } else {
            descend(child, rest, prefix, out);
        }
        prefix.pop();
    }
}

fn descend(n: NMut<'_>, pat: &[&str], prefix: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, Item)>) {
    let is_array = matches!(
        n,
        NMut::Item(Item::ArrayOfTables(_)) | NMut::Item(Item::Value(Value::Array(_))) | NMut::Value(Value::Array(_))
    );
    if is_array {
        let Some((seg, rest)) = pat.split_first() else { return };
        for (i, el) in n.elems().unwrap_or_default() {
            let name = el.name();
            if *seg != "*" && name.as_deref() != Some(*seg) {
                continue;
            }
            prefix.push(name.map_or(Step::Index(i), Step::Named));
            collect(el, rest, prefix, out);
            prefix.pop();
        }
    } else if let Some(t) = n.table() {
        collect(t, pat, prefix, out);
    }
}

/// Removes what `pattern` selects.
fn remove(t: TMut<'_>, pat: &[&str]) {
    let mut t = t;
    match pat {
        [] => {}
        [last] => {
            let keys: Vec<String> = if *last == "*" { t.keys() } else { vec![last.to_string()] };
            for k in keys {
                t.remove(&k);
            }
        }
        [seg, rest @ ..] => {
            let keys: Vec<String> = if *seg == "*" { t.keys() } else { vec![seg.to_string()] };
            for k in keys {
                if let Some(child) = t.child(&k) {
                    remove_in(child, rest);
                }
            }
        }
    }
}

fn remove_in(n: NMut<'_>, pat: &[&str]) {
    let is_array = matches!(
        n,
        NMut::Item(Item::ArrayOfTables(_)) | NMut::Item(Item::Value(Value::Array(_))) | NMut::Value(Value::Array(_))
    );
    if is_array {
        let Some((seg, rest)) = pat.split_first() else { return };
        for (_, el) in n.elems().unwrap_or_default() {
            if *seg == "*" || el.name().as_deref() == Some(*seg) {
                remove(el, rest);
            }
        }
    } else if let Some(t) = n.table() {
        remove(t, pat);
    }
}

/// Puts `item` at `path` if everything but the last key exists (an instance the peer's config
/// does not have takes no local value).
fn place(root: &mut Table, path: &[Step], item: Item) {
    let Some((Step::Key(last), parents)) = path.split_last() else { return };
    let mut t = TMut::T(root);
    let mut i = 0;
    while i < parents.len() {
        let Step::Key(k) = &parents[i] else { return };
        let Some(child) = t.into_child(k) else { return };
        match parents.get(i + 1) {
            Some(Step::Named(name)) => {
                let Some(el) = child
                    .elems()
                    .and_then(|v| v.into_iter().map(|(_, e)| e).find(|e| e.name().as_deref() == Some(name.as_str())))
                else {
                    return;
                };
                t = el;
                i += 2;
            }
            Some(Step::Index(n)) => {
                let Some(el) = child.elems().and_then(|v| v.into_iter().find(|(j, _)| j == n).map(|(_, e)| e)) else {
                    return;
                };
                t = el;
                i += 2;
            }
            _ => {
                let Some(next) = child.table() else { return };
                t = next;
                i += 1;
            }
        }
    }
    t.set(last, item);
}

fn parse(text: &str, whose: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>().map_err(|e| format!("{whose} config is not TOML: {}", e.message().trim()))
}

/// The config less its local keys, as a document.
fn stripped(text: &str, local_keys: &[String], whose: &str) -> Result<DocumentMut, String> {
    let mut doc = parse(text, whose)?;
    for p in local_keys {
        remove(TMut::T(doc.as_table_mut()), &segments(p));
    }
    Ok(doc)
}

/// The content hash of the shared part: SHA-256 of a canonical rendering (keys sorted, no
/// comments or layout), so only a change of meaning changes it.
pub fn shared_hash(text: &str, local_keys: &[String]) -> Result<String, String> {
    let canon = canonical(text, local_keys)?;
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_bytes());
    Ok(d.as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

fn canonical(text: &str, local_keys: &[String]) -> Result<String, String> {
    let doc = stripped(text, local_keys, "the")?;
    let v: toml::Table =
        toml::from_str(&doc.to_string()).map_err(|e| format!("config is not TOML: {}", e.message()))?;
    let mut out = String::new();
    canon_table(&v, &mut out);
    Ok(out)
}

fn canon_table(t: &toml::Table, out: &mut String) {
    let mut keys: Vec<&String> = t.keys().collect();
    keys.sort();
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        canon_value(&t[k], out);
    }
    out.push('}');
}

fn canon_value(v: &toml::Value, out: &mut String) {
    match v {
        toml::Value::Table(t) => canon_table(t, out),
        toml::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canon_value(x, out);
            }
            out.push(']');
        }
        toml::Value::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
        toml::Value::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        toml::Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        toml::Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        toml::Value::Datetime(d) => {
            let _ = write!(out, "\"{d}\"");
        }
    }
}

/// The peer's config with our local values: the peer's local keys are dropped, ours put in
/// their place (matched by element name, so an instance that only the peer has keeps none).
pub fn merge(peer_text: &str, our_text: &str, local_keys: &[String]) -> Result<String, String> {
    let mut doc = stripped(peer_text, local_keys, "the peer's")?;
    let mut ours = parse(our_text, "this node's")?;
    for p in local_keys {
        let mut found = Vec::new();
        collect(TMut::T(ours.as_table_mut()), &segments(p), &mut Vec::new(), &mut found);
        for (path, item) in found {
            place(doc.as_table_mut(), &path, item);
        }
    }
    Ok(doc.to_string())
}

/// What taking `theirs` would change for a node at `ours`: one `- path = value` / `+ path = value`
/// line per shared setting that differs (local keys left out), in path order.
pub fn diff(ours: &str, theirs: &str, local_keys: &[String]) -> Result<Vec<String>, String> {
    let flat = |text: &str| -> Result<std::collections::BTreeMap<String, String>, String> {
        let doc = stripped(text, local_keys, "the")?;
        let v: toml::Table =
            toml::from_str(&doc.to_string()).map_err(|e| format!("config is not TOML: {}", e.message()))?;
        let mut m = std::collections::BTreeMap::new();
        flatten(&toml::Value::Table(v), String::new(), &mut m);
        Ok(m)
    };
    let (a, b) = (flat(ours)?, flat(theirs)?);
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push(format!("- {k} = {x}"));
                }
                if let Some(y) = y {
                    out.push(format!("+ {k} = {y}"));
                }
            }
        }
    }
    Ok(out)
}

/// Leaves as `path = canonical value`; elements of arrays of tables are named by `name`.
fn flatten(v: &toml::Value, path: String, out: &mut std::collections::BTreeMap<String, String>) {
    let join = |p: &str, k: &str| if p.is_empty() { k.to_string() } else { format!("{p}.{k}") };
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                flatten(x, join(&path, k), out);
            }
        }
        toml::Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_table()) => {
            for (i, x) in a.iter().enumerate() {
                let id = x.get("name").and_then(|n| n.as_str()).map_or(i.to_string(), |n| n.to_string());
                flatten(x, format!("{path}[{id}]"), out);
            }
        }
        other => {
            let mut s = String::new();
            canon_value(other, &mut s);
            out.insert(path, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        crate::config::cluster::DEFAULT_LOCAL_KEYS
            .iter()
            .map(|s| s.to_string())
            .chain(["listen.stats.bind".to_string()])
            .collect()
    }

    const A: &str = r#"# node a
[cluster]
node = "a"
peer = { name = "b", addr = "192.0.2.2:7946" }

[[listen]]
name = "stats"
bind = ["192.0.2.1:9000"]

# the service
[[listen]]
name = "web"
bind = ["192.0.2.100:80"]

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
priority = 150
state = "MASTER"
unicast_src_ip = "192.0.2.1"
unicast_peer = ["192.0.2.2"]
"#;

    const B: &str = r#"[cluster]
node = "b"
peer = { name = "a", addr = "192.0.2.1:7946" }

[[listen]]
bind = ["192.0.2.2:9000"]
name = "stats"

[[listen]]
name = "web"
bind = ["192.0.2.100:80"]  # same VIP

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
priority = 100
unicast_src_ip = "192.0.2.2"
unicast_peer = ["192.0.2.1"]
"#;

    #[test]
    fn local_keys_layout_and_comments_do_not_change_the_hash() {
        assert_eq!(shared_hash(A, &keys()).unwrap(), shared_hash(B, &keys()).unwrap());
        let changed = A.replace("192.0.2.100:80", "192.0.2.100:8080");
        assert_ne!(shared_hash(A, &keys()).unwrap(), shared_hash(&changed, &keys()).unwrap());
        // Without the extra local key, the stats binds differ.
        let defaults: Vec<String> = keys()[..keys().len() - 1].to_vec();
        assert_ne!(shared_hash(A, &defaults).unwrap(), shared_hash(B, &defaults).unwrap());
    }

    #[test]
    fn merge_takes_the_peers_shared_part_and_keeps_our_local_values() {
        let a2 =
            A.replace("192.0.2.100:80", "192.0.2.100:8080").replace("interface = \"eth0\"", "interface = \"eth1\"");
        let merged = merge(&a2, B, &keys()).unwrap();
        let v: toml::Table = toml::from_str(&merged).unwrap();
        assert_eq!(v["cluster"]["node"].as_str(), Some("b"));
        let vi = &v["vrrp_instance"][0];
        assert_eq!(vi["priority"].as_integer(), Some(100));
        assert_eq!(vi["interface"].as_str(), Some("eth1"));
        assert_eq!(vi["unicast_src_ip"].as_str(), Some("192.0.2.2"));
        assert!(vi.get("state").is_none(), "B sets no state: A's MASTER must not come along");
        assert_eq!(v["listen"][0]["bind"][0].as_str(), Some("192.0.2.2:9000"));
        assert_eq!(v["listen"][1]["bind"][0].as_str(), Some("192.0.2.100:8080"));
        // The merge has the peer's shared part exactly.
        assert_eq!(shared_hash(&merged, &keys()).unwrap(), shared_hash(&a2, &keys()).unwrap());
        // The peer's comments come along.
        assert!(merged.contains("# the service"));
    }

    #[test]
    fn inline_arrays_of_tables_are_matched_by_name() {
        let ours = "vrrp_instance = [{ name = \"X\", priority = 90 }, { name = \"Y\", priority = 80 }]\n";
        let theirs =
            "vrrp_instance = [{ name = \"Y\", priority = 200, interface = \"e1\" }, { name = \"Z\", priority = 7 }]\n";
        let merged = merge(theirs, ours, &keys()).unwrap();
        let v: toml::Table = toml::from_str(&merged).unwrap();
        assert_eq!(v["vrrp_instance"][0]["priority"].as_integer(), Some(80));
        assert_eq!(v["vrrp_instance"][0]["interface"].as_str(), Some("e1"));
        assert!(v["vrrp_instance"][1].get("priority").is_none());
    }

    #[test]
    fn diff_names_each_changed_setting() {
        let a2 = A.replace("192.0.2.100:80", "192.0.2.100:8080");
        let d = diff(B, &a2, &keys()).unwrap();
        assert_eq!(d, ["- listen[web].bind = [\"192.0.2.100:80\"]", "+ listen[web].bind = [\"192.0.2.100:8080\"]"]);
        assert!(diff(A, B, &keys()).unwrap().is_empty());
    }

    /// The shipped pair example: two files, one shared part.
    #[test]
    fn the_pair_example_files_share_everything_but_their_local_keys() {
        let a = include_str!("../../etc/examples/cluster-a.toml");
        let b = include_str!("../../etc/examples/cluster-b.toml");
        assert_eq!(shared_hash(a, &keys()).unwrap(), shared_hash(b, &keys()).unwrap());
        assert!(diff(a, b, &keys()).unwrap().is_empty());
    }

    #[test]
    fn bad_toml_is_an_error() {
        assert!(shared_hash("a = ", &keys()).is_err());
        assert!(merge("x = 1", "a = [", &keys()).unwrap_err().contains("this node's"));
    }
}
