//! The runtime API's stick-table commands against the live tables (`show|clear|set table`).

use crate::control::Reply;
use crate::stktable::cli::{self, Action, TableCmd};
use crate::stktable::registry::lock;
use serde_json::json;

pub fn execute(active: &crate::proxy::Active, cmd: &TableCmd) -> Reply {
    let tables = &active.rt.tables;
    let now = tables.now_ms();
    let Some(name) = &cmd.table else {
        let locked: Vec<_> = tables.iter().map(lock).collect();
        let text = cli::list(locked.iter().map(|g| &**g));
        let json: Vec<_> = locked.iter().map(|t| cli::table_json(t)).collect();
        return Reply::ok(text, json!(json));
    };
    let Some(shared) = tables.find(name) else {
        return Reply::error("No such table");
    };
    let mut t = lock(shared);
    t.purge(now);
    match cli::run(cmd, &mut t, now) {
        Ok(text) if cmd.action == Action::Show => Reply::ok(text, cli::show_json(cmd, &t, now)),
        Ok(text) => {
            // `set table` comes in batches of thousands (a peer's state, a benchmark): per
            // command it is debug; a `clear` stays in the log.
            if cmd.action == Action::Set {
                tracing::debug!("table {name}: {:?} (control socket)", cmd.action);
            } else {
                tracing::info!("table {name}: {:?} (control socket)", cmd.action);
            }
            Reply::ok(text, json!({ "table": name, "used": t.len() }))
        }
        Err(e) => Reply::error(e),
    }
}
