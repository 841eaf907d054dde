//! HAProxy's `on-marked-up shutdown-backup-sessions`: when an active server comes back (its
//! checks mark it up, the server it tracks comes up, or an operator takes it out of maintenance
//! while it is up), the sessions of the backend's backup servers are closed so traffic returns to
//! it at once (HAProxy's `srv_shutdown_backup_streams`).

use super::{Active, Proxy};
use crate::state::Admin;

impl Proxy {
    /// Closes the sessions of the backup servers of server `si`'s backend, if that server asks for
    /// it, is active and has a weight.
    pub fn shutdown_backups(&self, active: &Active, (bi, si): (usize, usize)) {
        let b = &active.snap.backends[bi];
        let s = &b.servers[si];
        if !s.shutdown_backups_on_up || s.backup || active.rt.backends[bi].servers[si].weight() == 0 {
            return;
        }
        for backup in b.servers.iter().filter(|x| x.backup) {
            let n = self.sessions.kill_server(&b.name, &backup.name);
            if n > 0 {
                tracing::warn!(
                    "on-marked-up shutdown-backup-sessions: {}/{} is up, closing {n} sessions of backup server {}/{}",
                    b.name,
                    s.name,
                    b.name,
                    backup.name
                );
            }
        }
    }

    /// After the own admin state of server `at` changed (control socket, stats page, API,
    /// agent) from `old` (the state then in force): the servers tracking it take their inherited
    /// state from it, and any of them leaving maintenance while up counts as coming up, as in
    /// HAProxy.
    pub fn admin_changed(&self, active: &Active, at: (usize, usize), old: Admin) {
        let rt = &active.rt.backends[at.0].servers[at.1];
        if left_maint_up(old, rt.admin(), rt.is_up()) {
            self.shutdown_backups(active, at);
        }
        self.trackers_follow(active);
    }

    /// Recomputes what tracking servers inherit (after a load, a state file, an admin change)
    /// and logs those whose state in force moved, as HAProxy's "(via B/S)" lines.
    pub fn trackers_follow(&self, active: &Active) {
        for m in crate::health::track::propagate(&active.snap, &active.rt.backends) {
            let (b, s) = (&active.snap.backends[m.at.0], &active.snap.backends[m.at.0].servers[m.at.1]);
            let via = s.track.as_ref().map(|(tb, ts)| format!("{tb}/{ts}")).unwrap_or_default();
            let up = if active.rt.backends[m.at.0].servers[m.at.1].is_up() { "UP" } else { "DOWN" };
            let msg = match (m.old, m.new) {
                (_, Admin::Maint) => format!("Server {}/{} is going DOWN for maintenance via {via}", b.name, s.name),
                (Admin::Maint, a) => {
                    let st = if a == Admin::Drain { "DRAIN" } else { "READY" };
                    format!("Server {}/{} is {up}/{st} (leaving maintenance)", b.name, s.name)
                }
                (_, Admin::Drain) => format!("Server {}/{} enters drain state via {via}", b.name, s.name),
                (_, Admin::Ready) => format!("Server {}/{} is {up}/READY (leaving drain)", b.name, s.name),
            };
            tracing::info!("{msg}");
            active.be_logger(&b.name).log(crate::log::format::Level::Notice, &msg);
            if left_maint_up(m.old, m.new, active.rt.backends[m.at.0].servers[m.at.1].is_up()) {
                self.shutdown_backups(active, m.at);
            }
        }
    }
}

/// Whether an admin change from `old` to `new` brings a server that is `up` back into service.
fn left_maint_up(old: Admin, new: Admin, up: bool) -> bool {
    old == Admin::Maint && new != Admin::Maint && up
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leaving_maintenance_while_up_counts() {
        assert!(left_maint_up(Admin::Maint, Admin::Ready, true));
        assert!(left_maint_up(Admin::Maint, Admin::Drain, true), "the weight check then leaves a drain alone");
        assert!(!left_maint_up(Admin::Maint, Admin::Ready, false));
        assert!(!left_maint_up(Admin::Drain, Admin::Ready, true));
        assert!(!left_maint_up(Admin::Ready, Admin::Maint, true));
        assert!(!left_maint_up(Admin::Maint, Admin::Maint, true));
    }
}
