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

    /// An admin state change of server `si` (control socket, stats page, API, agent): leaving
    /// maintenance while up counts as coming up, as in HAProxy.
    pub fn admin_changed(&self, active: &Active, at: (usize, usize), old: Admin, new: Admin) {
        if left_maint_up(old, new, active.rt.backends[at.0].servers[at.1].is_up()) {
            self.shutdown_backups(active, at);
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
