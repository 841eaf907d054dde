//! Runs the map and ACL commands against the proxy's map store.

use super::control::Shared;
use crate::control::Reply;
use crate::control::maps::{MapCmd, op, op_error, show};
use serde_json::json;

pub fn execute(shared: &Shared, cmd: MapCmd) -> Reply {
    let maps = &shared.proxy.maps;
    let store = maps.store.load();
    match &cmd {
        MapCmd::Show { acl, file } => show(&store, *acl, file.as_deref(), &|n| {
            (maps.pending(n), maps.versions.lock().unwrap_or_else(|p| p.into_inner()).numbers(n))
        }),
        MapCmd::ShowVersion { acl, file, .. } | MapCmd::ClearVersion { acl, file, .. } => {
            let name = match crate::control::maps::resolve(&store, file, *acl) {
                Ok(f) => f.name.clone(),
                Err(e) => return Reply::error(e),
            };
            drop(store);
            at_version(shared, &name, cmd)
        }
        MapCmd::AddMany { .. } | MapCmd::Prepare { .. } | MapCmd::CommitVersion { .. } => {
            let r = crate::control::maps::resolve(&store, cmd_file(&cmd), cmd_acl(&cmd)).map(|f| f.name.clone());
            drop(store);
            match r {
                Ok(name) => versioned(maps, &name, cmd),
                Err(e) => Reply::error(e),
            }
        }
        MapCmd::Commit { file } => {
            let Some(f) = store.find(file) else {
                return Reply::error("Unknown map identifier. Please use #<id> or <file>.");
            };
            let name = f.name.clone();
            let changes = maps.pending(&name);
            match maps.commit(&name) {
                Ok(path) => {
                    tracing::info!(
                        "map {name}: {changes} runtime change(s) written to {} (control socket)",
                        path.display()
                    );
                    Reply::ok("", json!({ "file": name, "path": path.display().to_string(), "changes": changes }))
                }
                Err(e) => Reply::error(e),
            }
        }
        _ => {
            let (name, o) = match op(&store, &cmd) {
                Ok(x) => x,
                Err(e) => return Reply::error(e),
            };
            drop(store);
            match maps.change(&name, o.clone()) {
                Ok(()) => {
                    tracing::info!("map {name}: {} (control socket)", o.describe());
                    Reply::ok("", json!({ "file": name }))
                }
                Err(e) => Reply::error(op_error(e, &o)),
            }
        }
    }
}

fn cmd_file(cmd: &MapCmd) -> &str {
    match cmd {
        MapCmd::AddMany { file, .. } | MapCmd::Prepare { file, .. } | MapCmd::CommitVersion { file, .. } => file,
        _ => "",
    }
}

fn cmd_acl(cmd: &MapCmd) -> bool {
    match cmd {
        MapCmd::AddMany { acl, .. } | MapCmd::Prepare { acl, .. } | MapCmd::CommitVersion { acl, .. } => *acl,
        _ => false,
    }
}

/// `show|clear map|acl @VER FILE` on file `name`: the live version is the file's content as
/// `show map FILE` / `clear map FILE` see it; a prepared one its staged entries; any other
/// version is empty and clearing it does nothing (HAProxy's empty replies).
fn at_version(shared: &Shared, name: &str, cmd: MapCmd) -> Reply {
    use crate::maps::versions::Version;
    let maps = &shared.proxy.maps;
    let mut versions = maps.versions.lock().unwrap_or_else(|p| p.into_inner());
    match cmd {
        MapCmd::ShowVersion { acl, version, .. } => match versions.version(name, version) {
            Version::Live => {
                drop(versions);
                execute(shared, MapCmd::Show { acl, file: Some(name.to_string()) })
            }
            Version::Staged(pairs) => crate::control::maps::show_staged(acl, pairs),
            Version::None => Reply::ok("", json!([])),
        },
        MapCmd::ClearVersion { acl, version, .. } => {
            if versions.version(name, version) == Version::Live {
                drop(versions);
                return execute(shared, MapCmd::Clear { acl, file: name.to_string() });
            }
            if versions.clear_staged(name, version) {
                tracing::info!("map {name}: version {version} cleared (control socket)");
            }
            Reply::ok("", json!({ "file": name }))
        }
        _ => Reply::error("not a versioned command"),
    }
}

/// The payload and versioned commands on file `name`, with HAProxy's replies.
fn versioned(maps: &crate::maps::Shared, name: &str, cmd: MapCmd) -> Reply {
    use crate::maps::overlay::Op;
    use crate::maps::versions::AddTo;
    let adds = |pairs: Vec<(Vec<u8>, Vec<u8>)>| pairs.into_iter().map(|(key, value)| Op::Add { key, value });
    let swap = |list: Vec<Op>, what: &str| match maps.change_all(name, list) {
        Ok(()) => {
            tracing::info!("map {name}: {what} (control socket)");
            Reply::ok("", json!({ "file": name }))
        }
        Err(e) => Reply::error(e.to_string()),
    };
    let mut versions = maps.versions.lock().unwrap_or_else(|p| p.into_inner());
    match cmd {
        MapCmd::Prepare { .. } => {
            let v = versions.prepare(name);
            Reply::ok(format!("New version created: {v}\n"), json!({ "file": name, "version": v }))
        }
        MapCmd::AddMany { acl, version, entries, .. } => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = match entries {
                Some(Ok(list)) => list.into_iter().map(|(k, v)| (k.into_bytes(), v.into_bytes())).collect(),
                Some(Err(e)) => return Reply::error(e),
                None if acl => return Reply::error("'add acl' expects an ACL identifier and a payload of patterns."),
                None => {
                    return Reply::error(
                        "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload",
                    );
                }
            };
            let n = pairs.len();
            let to = match version {
                Some(v) => match versions.add(name, acl, v, pairs.clone()) {
                    Ok(AddTo::Staged) => return Reply::ok("", json!({ "file": name, "version": v, "staged": n })),
                    Ok(to) => to,
                    Err(e) => return Reply::error(e),
                },
                None => AddTo::Live,
            };
            drop(versions);
            match to {
                AddTo::Live => swap(adds(pairs).collect(), &format!("add {n} entries")),
                _ => Reply::ok("", json!({ "file": name })),
            }
        }
        MapCmd::CommitVersion { version, .. } => {
            let pairs = match versions.to_commit(name, version) {
                Ok(p) => p,
                Err(e) => return Reply::error(e),
            };
            let n = pairs.len();
            let reply = swap(
                std::iter::once(Op::Clear).chain(adds(pairs)).collect(),
                &format!("version {version} committed, {n} entries"),
            );
            if matches!(reply, Reply::Ok { .. }) {
                versions.committed(name, version);
            }
            reply
        }
        _ => Reply::error("not a versioned command"),
    }
}
