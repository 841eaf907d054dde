//! Runs the map and ACL commands against the proxy's map store.

use super::control::Shared;
use crate::control::Reply;
use crate::control::maps::{MapCmd, op, op_error, show};
use serde_json::json;

pub fn execute(shared: &Shared, cmd: MapCmd) -> Reply {
    let maps = &shared.proxy.maps;
    let store = maps.store.load();
    match &cmd {
        MapCmd::Show { acl, file } => show(&store, *acl, file.as_deref(), &|n| maps.pending(n)),
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
