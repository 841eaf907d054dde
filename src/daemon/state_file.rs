//! `server_state_file`: runtime admin states and weights kept across restarts, in HAProxy's
//! server-state format. Written atomically (temp file, fsync, rename) after each change and at
//! stop; read once at start.

use crate::control::facts::server_lines;
use crate::control::servers_state::{self, restore};
use crate::fsutil::write_atomic;
use crate::proxy::Proxy;
use std::path::Path;
use std::sync::Mutex;

/// Serializes savers: two changes in quick succession neither share a temp file nor let an older
/// state overwrite a newer one.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Saves to the configured file, if any. Blocking: call from a blocking context.
pub fn save(proxy: &Proxy) {
    let active = proxy.active.load_full();
    let Some(path) = active.snap.global.server_state_file.clone() else {
        return;
    };
    // Read the state under the lock, so the last writer always writes the newest state.
    let _g = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let text = servers_state::format(&server_lines(&proxy.active.load(), None));
    match write_atomic(&path, text.as_bytes()) {
        Ok(()) => tracing::debug!(file = %path.display(), "server state saved"),
        Err(e) => tracing::warn!("cannot write server state file {}: {e}", path.display()),
    }
}

/// Applies a saved state to the servers of the active snapshot. A missing file is a first start;
/// every bad line is logged with the file and line and skipped.
pub fn load(path: &Path, proxy: &Proxy) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!("no server state file at {} yet", path.display());
            return;
        }
        Err(e) => {
            tracing::warn!("cannot read server state file {}: {e}", path.display());
            return;
        }
    };
    let source = format!("server state file {}", path.display());
    apply(&text, &source, proxy, false);
}

/// Applies server-state text (`source` names it in messages): admin states and weights, and with
/// `op_state` also up/down (a binary upgrade passes on what the checks last said, so a server
/// known to be down gets no traffic until its checks pass).
pub fn apply(text: &str, source: &str, proxy: &Proxy, op_state: bool) {
    let (saved, errors) = servers_state::parse(text);
    for e in &errors {
        tracing::warn!("{source}: {e}; line ignored");
    }
    let active = proxy.active.load();
    let mut applied = 0;
    for s in &saved {
        let Some((bi, b)) = active.snap.backend(&s.backend) else {
            tracing::info!("{source}: line {}: backend {} is not in the configuration; ignored", s.line, s.backend);
            continue;
        };
        let Some(si) = b.servers.iter().position(|x| x.name == s.server) else {
            tracing::info!(
                "{source}: line {}: server {}/{} is not in the configuration; ignored",
                s.line,
                s.backend,
                s.server
            );
            continue;
        };
        let cfg = &b.servers[si];
        let rt = &active.rt.backends[bi].servers[si];
        let (admin, weight) = restore(s, cfg.weight, cfg.disabled);
        rt.set_admin(admin);
        if let Some(w) = weight {
            rt.set_weight(w);
        }
        // A server saved in maintenance was stopped by it: its health is for its checks to say.
        if op_state
            && !s.in_maint()
            && let Some(up) = s.op_up
        {
            rt.set_up(up);
        }
        applied += 1;
    }
    // Trackers inherit what the restored servers are in (HAProxy recomputes it the same way: a
    // line's inherited bits are not restored as such).
    proxy.trackers_follow(&active);
    tracing::info!("restored the runtime state of {applied} server(s) from {source}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("lbha-statefile-{}", std::process::id()));
        let path = dir.join("sub").join("servers.state");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "servers.state")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
