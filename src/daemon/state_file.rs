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
    let text = servers_state::format_marked(&server_lines(&proxy.active.load(), None));
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
    apply_with(&text, &source, proxy, false, true);
}

/// Applies server-state text (`source` names it in messages): admin states, weights and the
/// time since the last change, and with `op_state` also up/down, NOLB and the check counter (a
/// binary upgrade passes on what the checks last said, so a server known to be down gets no
/// traffic until its checks pass, and one mid-way up or down stays so).
pub fn apply(text: &str, source: &str, proxy: &Proxy, op_state: bool) {
    apply_with(text, source, proxy, op_state, false);
}

/// [`apply`]; `file` for a state file loaded at start, whose servers saved running start with
/// their check counter at the top, as HAProxy loads one.
fn apply_with(text: &str, source: &str, proxy: &Proxy, op_state: bool, file: bool) {
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
            rt.set_nolb(s.op_nolb);
            // The check counter goes on where it was, so a server mid-way up or down stays so
            // (kept only while it agrees with the state, as the checker starts from it).
            if let Some(h) = s.check_health {
                rt.restore_health(h, cfg.check.is_some());
            }
        }
        // A server saved running starts with its counter at the top at a restart, as HAProxy
        // loads a state file (an upgrade carried the counter itself, above).
        if file && !s.in_maint() && s.op_up == Some(true) {
            rt.restore_health(u32::MAX, cfg.check.is_some());
        }
        // The time since the last change is kept (HAProxy's `last_change` from a state file),
        // after everything above that may have restarted it.
        if let Some(secs) = s.since_change_secs {
            rt.restore_since_change(std::time::Duration::from_secs(secs));
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

#[cfg(test)]
mod upgrade_tests {
    use super::*;
    use crate::state::Admin;
    use std::sync::Arc;

    /// `c` is `disabled` in the config; `a` is not.
    fn proxy() -> Arc<Proxy> {
        let src = "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"web\"\nservers = [\
                   { name = \"a\", addr = \"127.0.0.1:9\" }, \
                   { name = \"c\", addr = \"127.0.0.1:9\", disabled = true }]\n";
        Proxy::new(crate::config::parse(src, Path::new("t.toml")).unwrap())
    }

    fn admin(p: &Proxy, si: usize) -> Admin {
        p.active.load().rt.backends[0].servers[si].admin()
    }

    /// As the lbha before HAProxy's admin bits wrote it: `c` disabled in the config and in
    /// maintenance is `CMAINT` (4) alone, with no mark; `a` is ready.
    const OLD: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
                       1 web 1 a 127.0.0.1 2 0 1 1 30 0 0 0 0 0 0 0 - 9 - 0 0 - - 0\n\
                       1 web 2 c 127.0.0.1 2 4 1 1 30 0 0 0 0 0 0 0 - 9 - 0 0 - - 0\n";

    #[test]
    fn an_earlier_lbha_disabled_server_stays_in_maintenance_through_a_takeover() {
        for op_state in [false, true] {
            let p = proxy();
            assert_eq!(admin(&p, 1), Admin::Maint);
            apply(OLD, "pid 1", &p, op_state);
            assert_eq!((admin(&p, 0), admin(&p, 1)), (Admin::Ready, Admin::Maint), "op_state {op_state}");
        }
    }

    #[test]
    fn an_earlier_lbha_state_file_keeps_a_disabled_server_in_maintenance() {
        let dir = std::env::temp_dir().join(format!("lbha-statefile-old-{}", std::process::id()));
        let path = dir.join("servers.state");
        write_atomic(&path, OLD.as_bytes()).unwrap();
        let p = proxy();
        load(&path, &p);
        assert_eq!((admin(&p, 0), admin(&p, 1)), (Admin::Ready, Admin::Maint));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn this_lbha_keeps_an_operator_enabling_of_a_disabled_server() {
        let p = proxy();
        p.active.load().rt.backends[0].servers[1].set_admin(Admin::Ready);
        let text = servers_state::format_marked(&server_lines(&p.active.load(), None));
        assert!(text.lines().any(|l| l == servers_state::MARK), "{text}");
        // HAProxy's bits: `CMAINT` alone, enabled since.
        assert!(
            text.contains(" c 127.0.0.1 ") && text.lines().last().unwrap().split(' ').nth(6) == Some("4"),
            "{text}"
        );
        let q = proxy();
        apply(&text, "pid 1", &q, false);
        assert_eq!(admin(&q, 1), Admin::Ready);
        // The same text without the mark is taken as an earlier lbha's: maintenance kept.
        let unmarked: String = text.lines().filter(|l| *l != servers_state::MARK).map(|l| format!("{l}\n")).collect();
        let r = proxy();
        apply(&unmarked, "pid 1", &r, false);
        assert_eq!(admin(&r, 1), Admin::Maint);
    }
}
