//! How VRRP's scripts (`vrrp_script` checks, `notify*`) are started: through `/bin/sh -c`, with no
//! stdin, killed when their handle is dropped, and without the daemon's ambient capabilities; as
//! keepalived's `script_user` (or a script's own `user`), and, with `enable_script_security`, only
//! when no one but root can change what they run as root (`script_check`).
//!
//! Under `[global] user` the daemon keeps CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE as
//! ambient capabilities (so `lbha upgrade`'s new process has them); a script inheriting them could
//! change addresses and routes or open raw sockets. keepalived runs scripts without capabilities
//! unless they run as root; so does lbha: the child clears its ambient set before `exec`, so the
//! shell starts with none (a daemon running as root runs scripts as root, as keepalived does).
//!
//! The policy (who runs scripts, whether security is on) is one per process, as keepalived's
//! `global_defs`: [`configure`] resolves and checks it when VRRP starts or reloads and installs it
//! only when every script passes; [`shell`] applies it, and checks again before each run, since a
//! path can become writable after the start.

use crate::config::vrrp::{ScriptUser, VrrpSettings};
use std::collections::HashMap;
use std::sync::RwLock;

/// The shell scripts run through.
pub const SHELL: &str = "/bin/sh";
/// keepalived's default script user, used when it exists and `script_user` is not set.
pub const DEFAULT_USER: &str = "keepalived_script";

/// A resolved user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// Who runs scripts and whether their paths are checked.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `script_user` (or `keepalived_script`); `None`: the daemon's own user.
    pub default: Option<RunAs>,
    /// Each `vrrp_script`'s own `user`, resolved.
    pub users: HashMap<ScriptUser, RunAs>,
    pub security: bool,
}

static POLICY: RwLock<Option<Policy>> = RwLock::new(None);

fn current() -> Policy {
    POLICY.read().ok().and_then(|p| p.clone()).unwrap_or_default()
}

fn me() -> RunAs {
    RunAs { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() }
}

fn resolve(u: &ScriptUser, what: &str) -> Result<RunAs, String> {
    let t = crate::daemon::privs::resolve(Some(&u.user), u.group.as_deref())
        .map_err(|e| format!("{what}: {}", e.trim_start_matches("global.user: ").trim_start_matches("global.group: ")))?
        .ok_or_else(|| format!("{what}: no user"))?;
    let r = RunAs { uid: t.uid.as_raw(), gid: t.gid.as_raw() };
    let m = me();
    if r != m && m.uid != 0 {
        return Err(format!(
            "{what}: scripts cannot run as uid {} gid {}: the daemon runs as uid {} ([global] user), not root",
            r.uid, r.gid, m.uid
        ));
    }
    Ok(r)
}

/// Every command VRRP may run for `s`, with the user it runs as and what it is for.
fn commands(s: &VrrpSettings) -> Vec<(String, Option<&ScriptUser>, &str)> {
    let mut out = Vec::new();
    for sc in &s.scripts {
        out.push((format!("vrrp_script {}", sc.name), sc.user.as_ref(), sc.script.as_str()));
    }
    let notifies = s
        .instances
        .iter()
        .map(|i| (format!("vrrp_instance {}", i.name), &i.notify))
        .chain(s.sync_groups.iter().map(|g| (format!("vrrp_sync_group {}", g.name), &g.notify)));
    for (owner, n) in notifies {
        for (key, cmd) in [
            ("notify_master", &n.master),
            ("notify_backup", &n.backup),
            ("notify_fault", &n.fault),
            ("notify_stop", &n.stop),
            ("notify", &n.any),
        ] {
            if let Some(c) = cmd {
                out.push((format!("{owner} {key}"), None, c.as_str()));
            }
        }
    }
    out
}

/// Resolves `s`'s script users and checks its scripts; installs the policy when all is well. With
/// security off, unsafe scripts are only warned about, as keepalived does.
pub fn configure(s: &VrrpSettings) -> Result<(), String> {
    let mut p = Policy { security: s.script_security, ..Policy::default() };
    p.default = match &s.script_user {
        Some(u) => Some(resolve(u, "script_user")?),
        None if me().uid == 0 => match nix::unistd::User::from_name(DEFAULT_USER) {
            Ok(Some(u)) => {
                tracing::info!("running scripts as {DEFAULT_USER} (uid {}, gid {}), as keepalived", u.uid, u.gid);
                Some(RunAs { uid: u.uid.as_raw(), gid: u.gid.as_raw() })
            }
            _ => None,
        },
        None => None,
    };
    for sc in &s.scripts {
        if let Some(u) = &sc.user
            && !p.users.contains_key(u)
        {
            let r = resolve(u, &format!("vrrp_script {} user", sc.name))?;
            p.users.insert(u.clone(), r);
        }
    }
    let path_var = path_var();
    let mut unsafe_found = false;
    for (what, user, cmd) in commands(s) {
        let who = who(&p, user);
        if let Err(e) = super::script_check::check_command(cmd, who.uid, who.gid, &path_var, &super::script_check::stat)
        {
            if p.security {
                return Err(format!(
                    "{what}: unsafe permissions for script {cmd:?}: {e}; enable_script_security refuses scripts run as root that others can change"
                ));
            }
            tracing::warn!("{what}: unsafe permissions found for script {cmd:?}: {e}");
            unsafe_found = true;
        }
    }
    if unsafe_found {
        tracing::warn!(
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled (as keepalived)"
        );
    }
    if let Ok(mut g) = POLICY.write() {
        *g = Some(p);
    }
    Ok(())
}

fn path_var() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

fn who(p: &Policy, user: Option<&ScriptUser>) -> RunAs {
    user.and_then(|u| p.users.get(u).copied()).or(p.default).unwrap_or_else(me)
}

/// `/bin/sh -c script` (with `args` as `"$@"` after `$0 = name`), ready to spawn, run as `user`
/// (a `vrrp_script`'s own) or the policy's default. `Err` when security is on and the script is
/// unsafe now.
pub fn shell(
    script: &str,
    name: &str,
    args: &[String],
    user: Option<&ScriptUser>,
) -> Result<tokio::process::Command, String> {
    let p = current();
    let who = who(&p, user);
    if p.security {
        super::script_check::check_command(script, who.uid, who.gid, &path_var(), &super::script_check::stat)
            .map_err(|e| format!("unsafe permissions, not run (enable_script_security): {e}"))?;
    }
    let mut c = tokio::process::Command::new(SHELL);
    c.arg("-c").arg(script);
    if !args.is_empty() || name != "sh" {
        c.arg(name).args(args);
    }
    c.stdin(std::process::Stdio::null()).kill_on_drop(true);
    if who != me() {
        c.uid(who.uid).gid(who.gid);
    }
    crate::daemon::privs::without_ambient_caps(&mut c);
    Ok(c)
}

/// (`netns-tests/failover.rs` checks, under `[global] user`, that a notify script has no capability.)
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arguments_follow_as_positional_parameters() {
        let args = ["INSTANCE".to_string(), "VI_1".to_string()];
        let out = shell("printf '%s|' \"$0\" \"$@\"", "lbha-notify", &args, None)
            .expect("no security")
            .stdout(std::process::Stdio::piped())
            .output()
            .await
            .expect("run");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "lbha-notify|INSTANCE|VI_1|");
    }
}
