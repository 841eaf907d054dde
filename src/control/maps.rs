//! `show map`, `add map`, `set map`, `del map`, `clear map`, `show acl`, `add acl`, `del acl`,
//! `clear acl` with HAProxy's syntax and replies, and lbha's `commit map FILE` (runtime changes
//! reach the file only through it). Files are named as the configuration names them, or `#ID`
//! from `show map` / `show acl`; entries by key, or `#0x...` from `show map FILE`.

use super::Reply;
use crate::maps::overlay::{Op, OpError};
use crate::maps::{MapFile, MapStore};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapCmd {
    Show {
        acl: bool,
        file: Option<String>,
    },
    Add {
        acl: bool,
        file: String,
        key: String,
        value: String,
    },
    Set {
        file: String,
        key: String,
        value: String,
    },
    Del {
        acl: bool,
        file: String,
        key: String,
    },
    Clear {
        acl: bool,
        file: String,
    },
    Commit {
        file: String,
    },
    /// `add map|acl [@VER] FILE <<` (entries from the payload, `None` until it is attached) and
    /// `add map|acl @VER FILE KEY [VALUE]`; without a version the entries go live together.
    AddMany {
        acl: bool,
        version: Option<u32>,
        file: String,
        entries: Option<Result<Vec<(String, String)>, String>>,
    },
    /// `prepare map|acl FILE`: a new version to fill and commit.
    Prepare {
        acl: bool,
        file: String,
    },
    /// `show map|acl @VER FILE`: the entries of that version (the live one, a prepared one, or
    /// nothing).
    ShowVersion {
        acl: bool,
        version: u32,
        file: String,
    },
    /// `clear map|acl @VER FILE`: empties that version (the live content when `@VER` is the
    /// current one).
    ClearVersion {
        acl: bool,
        version: u32,
        file: String,
    },
    /// `commit map|acl @VER FILE`: that version becomes the live content at once (lbha's
    /// `commit map FILE`, without a version, writes the file instead).
    CommitVersion {
        acl: bool,
        version: u32,
        file: String,
    },
}

impl MapCmd {
    /// Changing entries is for `operator` and up, as in HAProxy; writing files for `admin`.
    pub fn level(&self) -> super::parse::Level {
        use super::parse::Level;
        match self {
            MapCmd::Show { .. } | MapCmd::ShowVersion { .. } => Level::User,
            MapCmd::Commit { .. } => Level::Admin,
            MapCmd::Prepare { .. } | MapCmd::CommitVersion { .. } | MapCmd::AddMany { .. } => Level::Operator,
            _ => Level::Operator,
        }
    }
}

/// Parses the words after `VERB map|acl`; `Err` holds HAProxy's message.
pub fn parse(verb: &str, kind: &str, rest: &[&str]) -> Result<MapCmd, String> {
    let acl = kind == "acl";
    let s = |x: &str| x.to_string();
    if let Some(cmd) = versioned(verb, acl, rest)? {
        return Ok(cmd);
    }
    let del_usage = if acl {
        "This command expects two parameters: ACL identifier and key."
    } else {
        "This command expects two parameters: map identifier and key."
    };
    Ok(match (verb, acl, rest) {
        ("show", _, []) => MapCmd::Show { acl, file: None },
        ("show", _, [f]) => MapCmd::Show { acl, file: Some(s(f)) },
        ("add", false, [f, k, v]) => MapCmd::Add { acl, file: s(f), key: s(k), value: s(v) },
        ("add", false, _) => {
            return Err(
                "'add map' expects three parameters (map identifier, key and value); payloads are not supported".into(),
            );
        }
        ("add", true, [f, k]) => MapCmd::Add { acl, file: s(f), key: s(k), value: String::new() },
        ("add", true, _) => return Err("'add acl' expects two parameters: ACL identifier and pattern.".into()),
        ("set", false, [f, k, v]) => MapCmd::Set { file: s(f), key: s(k), value: s(v) },
        ("set", false, _) => return Err("'set map' expects three parameters: map identifier, key and value.".into()),
        ("del", _, [f, k]) => MapCmd::Del { acl, file: s(f), key: s(k) },
        ("del", _, _) => return Err(del_usage.into()),
        ("clear", _, [f]) => MapCmd::Clear { acl, file: s(f) },
        ("clear", _, _) => return Err(format!("'clear {kind}' expects a {kind} identifier.")),
        ("commit", false, [f]) if !f.starts_with('@') => MapCmd::Commit { file: s(f) },
        ("commit", false, _) => {
            return Err("Usage: commit map <file>|#<id> (writes the map's live content to its file; versions are not supported)".into());
        }
        _ => return Err(format!("'{verb} {kind}' is not supported.")),
    })
}

/// The payload and versioned forms of HAProxy 2.6: `add ... <<`, `add @VER ...`, `prepare`,
/// `commit @VER`; `None` for the other commands.
fn versioned(verb: &str, acl: bool, rest: &[&str]) -> Result<Option<MapCmd>, String> {
    let version = rest.first().and_then(|w| crate::maps::versions::parse_version(w));
    let after = if version.is_some() { &rest[1..] } else { rest };
    let s = |x: &str| x.to_string();
    Ok(Some(match (verb, acl, after) {
        ("add", _, [f, "<<"]) => MapCmd::AddMany { acl, version, file: s(f), entries: None },
        ("add", false, [f, k, v]) if version.is_some() => {
            MapCmd::AddMany { acl, version, file: s(f), entries: Some(Ok(vec![(s(k), s(v))])) }
        }
        ("add", true, [f, k]) if version.is_some() => {
            MapCmd::AddMany { acl, version, file: s(f), entries: Some(Ok(vec![(s(k), String::new())])) }
        }
        ("add", false, _) if version.is_some() => {
            return Err("'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload".into());
        }
        ("add", true, _) if version.is_some() => {
            return Err("'add acl' expects two parameters: ACL identifier and pattern.".into());
        }
        ("show", _, [f]) if version.is_some() => MapCmd::ShowVersion { acl, version: version.unwrap_or(0), file: s(f) },
        ("show", _, []) if version.is_some() => return Err(unknown(acl)),
        ("clear", _, [f, ..]) if version.is_some() => {
            MapCmd::ClearVersion { acl, version: version.unwrap_or(0), file: s(f) }
        }
        ("clear", _, []) if version.is_some() => {
            return Err(if acl { "Missing ACL identifier." } else { "Missing map identifier." }.into());
        }
        ("prepare", _, [f, ..]) if version.is_none() => MapCmd::Prepare { acl, file: s(f) },
        ("prepare", _, _) => return Err(unknown(acl)),
        ("commit", _, [f, ..]) => match version {
            Some(v) => MapCmd::CommitVersion { acl, version: v, file: s(f) },
            None if acl => return Err("Missing version number.".into()),
            None => return Ok(None),
        },
        ("commit", _, []) if version.is_some() => {
            return Err(if acl { "Missing ACL identifier." } else { "Missing map identifier." }.into());
        }
        _ => return Ok(None),
    }))
}

/// Hands a `<<` payload to `add map|acl FILE <<`: one `KEY VALUE` per line (a pattern per line
/// for an ACL).
pub fn attach(cmd: &mut MapCmd, payload: String) {
    if let MapCmd::AddMany { acl, entries: e @ None, .. } = cmd {
        *e = Some(payload_entries(&payload, *acl));
    }
}

fn payload_entries(payload: &str, acl: bool) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in payload.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if acl {
            out.push((line.to_string(), String::new()));
            continue;
        }
        match line.split_once(char::is_whitespace) {
            Some((k, v)) if !v.trim().is_empty() => out.push((k.to_string(), v.trim().to_string())),
            _ => return Err(format!("Missing value for key '{}'.", line.split_whitespace().next().unwrap_or(line))),
        }
    }
    Ok(out)
}

fn unknown(acl: bool) -> String {
    if acl {
        "Unknown ACL identifier. Please use #<id> or <file>."
    } else {
        "Unknown map identifier. Please use #<id> or <file>."
    }
    .to_string()
}

/// The file a command names, among maps (`acl` false) or pattern files.
pub fn resolve<'s>(store: &'s MapStore, r: &str, acl: bool) -> Result<&'s MapFile, String> {
    match store.find(r) {
        Some(f) if f.pattern == acl => Ok(f),
        _ => Err(unknown(acl)),
    }
}

/// A file's uncommitted changes and its `(curr_ver, next_ver)`.
pub type Pending = (usize, (u32, u32));

/// `show map` / `show acl` (no file): the list of files; `show map FILE`: its entries.
/// `pending`: a file's uncommitted changes and its `(curr_ver, next_ver)`.
pub fn show(store: &MapStore, acl: bool, file: Option<&str>, pending: &dyn Fn(&str) -> Pending) -> Reply {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Some(r) = file else {
        let mut text = String::from("# id (file) description\n");
        let mut list = Vec::new();
        for f in store.files().filter(|f| f.pattern == acl) {
            let what = if acl { "acl" } else { "map" };
            let (uncommitted, (curr, next)) = pending(&f.name);
            text.push_str(&format!(
                "{} ({}) pattern loaded from file '{}' used by {what} in {}. curr_ver={curr} next_ver={next} entry_cnt={} uncommitted={uncommitted}\n",
                f.id,
                f.name,
                f.path.display(),
                f.users.join(", "),
                f.entries.len(),
            ));
            list.push(json!({ "id": f.id, "file": f.name, "path": f.path.display().to_string(),
                "entries": f.entries.len(), "uncommitted": uncommitted, "curr_ver": curr, "next_ver": next }));
        }
        return Reply::ok(text, json!(list));
    };
    let f = match resolve(store, r, acl) {
        Ok(f) => f,
        Err(e) => return Reply::error(e),
    };
    let mut text = String::new();
    let mut list = Vec::new();
    for e in &f.entries {
        if acl {
            text.push_str(&format!("{:#x} {}\n", e.id, s(&e.key)));
            list.push(json!({ "id": format!("{:#x}", e.id), "key": s(&e.key) }));
        } else {
            text.push_str(&format!("{:#x} {} {}\n", e.id, s(&e.key), s(&e.value)));
            list.push(json!({ "id": format!("{:#x}", e.id), "key": s(&e.key), "value": s(&e.value) }));
        }
    }
    Reply::ok(text, json!(list))
}

/// `show map|acl @VER FILE` for a prepared version: its staged entries, numbered in order (they
/// have no entry ids until committed).
pub fn show_staged(acl: bool, pairs: &[(Vec<u8>, Vec<u8>)]) -> Reply {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut text = String::new();
    let mut list = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let id = format!("{:#x}", i + 1);
        if acl {
            text.push_str(&format!("{id} {}\n", s(k)));
            list.push(json!({ "id": id, "key": s(k) }));
        } else {
            text.push_str(&format!("{id} {} {}\n", s(k), s(v)));
            list.push(json!({ "id": id, "key": s(k), "value": s(v) }));
        }
    }
    Reply::ok(text, json!(list))
}

/// An entry's key and value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// The operation a changing command stands for, on the file it names; `Err` is the reply.
pub fn op(store: &MapStore, cmd: &MapCmd) -> Result<(String, Op), String> {
    let entry_ref = |f: &MapFile, key: &str| -> Result<Option<KeyValue>, String> {
        let Some(id) = key.strip_prefix('#') else { return Ok(None) };
        let id = id.strip_prefix("0x").map_or_else(|| id.parse::<u64>().ok(), |h| u64::from_str_radix(h, 16).ok());
        match id.and_then(|id| f.entries.iter().find(|e| e.id == id)) {
            Some(e) => Ok(Some((e.key.clone(), e.value.clone()))),
            None => Err("Key not found.".into()),
        }
    };
    match cmd {
        MapCmd::Add { acl: true, file, key, .. } => {
            if store.find(file).is_some_and(|f| !f.pattern) {
                return Err(
                    "This ACL is shared with a map containing samples. You must use the command 'add map' to add values."
                        .into(),
                );
            }
            let f = resolve(store, file, true)?;
            Ok((f.name.clone(), Op::Add { key: key.clone().into_bytes(), value: Vec::new() }))
        }
        MapCmd::Add { file, key, value, .. } => {
            let f = resolve(store, file, false)?;
            Ok((f.name.clone(), Op::Add { key: key.clone().into_bytes(), value: value.clone().into_bytes() }))
        }
        MapCmd::Set { file, key, value } => {
            let f = resolve(store, file, false)?;
            let op = match entry_ref(f, key).map_err(|_| "entry not found.".to_string())? {
                Some((k, old)) => Op::SetOne { key: k, old, value: value.clone().into_bytes() },
                None => Op::Set { key: key.clone().into_bytes(), value: value.clone().into_bytes() },
            };
            Ok((f.name.clone(), op))
        }
        MapCmd::Del { acl, file, key } => {
            let f = resolve(store, file, *acl)?;
            let op = match entry_ref(f, key)? {
                Some((k, v)) => Op::DelOne { key: k, value: v },
                None => Op::Del { key: key.clone().into_bytes() },
            };
            Ok((f.name.clone(), op))
        }
        MapCmd::Clear { acl, file } => Ok((resolve(store, file, *acl)?.name.clone(), Op::Clear)),
        MapCmd::Show { .. }
        | MapCmd::ShowVersion { .. }
        | MapCmd::ClearVersion { .. }
        | MapCmd::Commit { .. }
        | MapCmd::AddMany { .. }
        | MapCmd::Prepare { .. }
        | MapCmd::CommitVersion { .. } => Err("not a change".into()),
    }
}

/// HAProxy's wording for a change the file's index refuses.
pub fn op_error(e: OpError, op: &Op) -> String {
    match (e, op) {
        (OpError::Invalid(reason), Op::Add { key, .. }) if reason.contains("IPv4") => {
            format!("'{}' is not a valid IPv4 or IPv6 address.", String::from_utf8_lossy(key))
        }
        (OpError::Invalid(reason), Op::Add { key, .. }) => {
            format!("'{}' is not a valid pattern: {reason}.", String::from_utf8_lossy(key))
        }
        (e, _) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_haproxys_messages() {
        let p = |verb, kind, rest: &[&str]| parse(verb, kind, rest);
        assert_eq!(p("show", "map", &[]), Ok(MapCmd::Show { acl: false, file: None }));
        assert_eq!(p("show", "acl", &["#1"]), Ok(MapCmd::Show { acl: true, file: Some("#1".into()) }));
        assert_eq!(
            p("add", "map", &["sni.map", "a", "be"]),
            Ok(MapCmd::Add { acl: false, file: "sni.map".into(), key: "a".into(), value: "be".into() })
        );
        assert!(p("add", "map", &["sni.map", "a"]).unwrap_err().starts_with("'add map' expects three parameters"));
        assert_eq!(
            p("add", "acl", &["b.lst", "10.0.0.1"]),
            Ok(MapCmd::Add { acl: true, file: "b.lst".into(), key: "10.0.0.1".into(), value: String::new() })
        );
        assert_eq!(
            p("set", "map", &["m"]).unwrap_err(),
            "'set map' expects three parameters: map identifier, key and value."
        );
        assert_eq!(p("del", "map", &[]).unwrap_err(), "This command expects two parameters: map identifier and key.");
        assert_eq!(p("del", "acl", &["f", "k"]), Ok(MapCmd::Del { acl: true, file: "f".into(), key: "k".into() }));
        assert_eq!(p("clear", "acl", &["f"]), Ok(MapCmd::Clear { acl: true, file: "f".into() }));
        assert_eq!(p("commit", "map", &["f"]), Ok(MapCmd::Commit { file: "f".into() }));
        assert_eq!(
            p("commit", "map", &["@1", "f"]),
            Ok(MapCmd::CommitVersion { acl: false, version: 1, file: "f".into() })
        );
        assert_eq!(p("commit", "acl", &["f"]).unwrap_err(), "Missing version number.");
        assert_eq!(p("commit", "map", &["@1"]).unwrap_err(), "Missing map identifier.");
        assert_eq!(
            p("show", "acl", &["@3", "#1"]),
            Ok(MapCmd::ShowVersion { acl: true, version: 3, file: "#1".into() })
        );
        assert_eq!(
            p("clear", "map", &["@2", "f"]),
            Ok(MapCmd::ClearVersion { acl: false, version: 2, file: "f".into() })
        );
        assert_eq!(p("show", "map", &["@1"]).unwrap_err(), "Unknown map identifier. Please use #<id> or <file>.");
        assert_eq!(p("clear", "map", &["@1"]).unwrap_err(), "Missing map identifier.");
        assert_eq!(p("clear", "acl", &["@1"]).unwrap_err(), "Missing ACL identifier.");
        assert_eq!(p("show", "map", &["f"]), Ok(MapCmd::Show { acl: false, file: Some("f".into()) }));
        assert_eq!(p("prepare", "acl", &["f"]), Ok(MapCmd::Prepare { acl: true, file: "f".into() }));
        let mut pay = p("add", "map", &["@2", "f", "<<"]).unwrap();
        assert_eq!(pay, MapCmd::AddMany { acl: false, version: Some(2), file: "f".into(), entries: None });
        attach(&mut pay, "a.example be1\nb.example  be 2\n".into());
        let want = vec![("a.example".into(), "be1".into()), ("b.example".into(), "be 2".into())];
        assert_eq!(pay, MapCmd::AddMany { acl: false, version: Some(2), file: "f".into(), entries: Some(Ok(want)) });
        let mut bad = p("add", "map", &["f", "<<"]).unwrap();
        attach(&mut bad, "onlykey\n".into());
        assert!(
            matches!(bad, MapCmd::AddMany { entries: Some(Err(ref e)), .. } if e == "Missing value for key 'onlykey'.")
        );
        let mut acl = p("add", "acl", &["f", "<<"]).unwrap();
        attach(&mut acl, "10.0.0.2\n10.0.0.3\n".into());
        assert!(matches!(acl, MapCmd::AddMany { entries: Some(Ok(ref v)), .. } if v.len() == 2));
        assert!(
            p("add", "map", &["@1", "f", "k"]).unwrap_err().contains("or one parameter (map identifier) and a payload")
        );
        assert!(p("set", "acl", &["f", "k", "v"]).unwrap_err().contains("not supported"));
        assert_eq!(MapCmd::Show { acl: false, file: None }.level(), crate::control::parse::Level::User);
        assert_eq!(MapCmd::Clear { acl: false, file: "f".into() }.level(), crate::control::parse::Level::Operator);
    }
}
