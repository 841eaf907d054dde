//! `[global] user` / `group`: the daemon gives up root once the configuration is read and the
//! control socket is open, keeping only the capabilities its network work needs: binding ports
//! below 1024 at a reload (CAP_NET_BIND_SERVICE), VRRP's raw sockets and GARP (CAP_NET_RAW), VIPs,
//! routes and the net sysctls (CAP_NET_ADMIN; the kernel lets it write `/proc/sys/net`).
//!
//! Linux keeps credentials per thread and a new thread copies its creator's, so the switch is made
//! while the process has one thread, before the runtime starts; every thread then runs with the
//! same reduced set. The three capabilities are also ambient, so what the daemon starts (`lbha
//! upgrade`'s new process, external checks) runs as the user with them; VRRP's scripts clear them
//! (`vrrp::script`).

use nix::libc;
use nix::unistd::{Gid, Group, Uid, User};
use std::path::Path;

pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
/// What the daemon keeps after the switch.
pub const KEPT: [u32; 3] = [CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW];

/// The user and group to run as, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uid: Uid,
    pub gid: Gid,
}

/// The capability bit mask of `caps`.
pub fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

/// Resolves `user` and `group` (names or numbers). A user alone brings its primary group; a group
/// alone keeps the current user. `None` when neither is set.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Target>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let (uid, primary) = match user {
        None => (nix::unistd::geteuid(), nix::unistd::getegid()),
        Some(u) => {
            let number = u.parse::<u32>().ok();
            let found = match number {
                Some(n) => User::from_uid(Uid::from_raw(n)),
                None => User::from_name(u),
            };
            match (found, number) {
                (Ok(Some(p)), _) => (p.uid, p.gid),
                // A uid without a passwd entry (HAProxy's `uid N`): its group is the same number.
                (Ok(None), Some(n)) => (Uid::from_raw(n), Gid::from_raw(n)),
                (Ok(None), None) => return Err(format!("global.user: no user named {u:?} on this system")),
                (Err(e), _) => return Err(format!("global.user: cannot look up {u:?}: {e}")),
            }
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => match Group::from_name(g) {
                Ok(Some(grp)) => grp.gid,
                Ok(None) => return Err(format!("global.group: no group named {g:?} on this system")),
                Err(e) => return Err(format!("global.group: cannot look up {g:?}: {e}")),
            },
        },
    };
    Ok(Some(Target { uid, gid }))
}

/// Creates `dir` (and its parents) if missing, owned by the target, so state written later (runtime
/// VIPs, API transactions) has a place; an existing directory is left as it is.
pub fn prepare_dir(dir: &Path, t: &Target) -> Result<(), String> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    nix::unistd::chown(dir, Some(t.uid), Some(t.gid)).map_err(|e| format!("cannot chown {}: {e}", dir.display()))
}

/// Switches the process to `t`, keeping [`KEPT`]. Must run while the process has one thread. A
/// process already running as `t` (started by `lbha upgrade`) has nothing to do.
pub fn switch(t: &Target) -> Result<(), String> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if uid == t.uid && gid == t.gid {
        return Ok(());
    }
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    if threads != 1 {
        return Err(format!("cannot switch to uid {} gid {}: {threads} threads run already", t.uid, t.gid));
    }
    if !uid.is_root() {
        return Err(format!("cannot switch to uid {} gid {}: running as uid {uid}, not root", t.uid, t.gid));
    }
    let fail = |what: &str, e: nix::Error| format!("cannot switch to uid {} gid {}: {what}: {e}", t.uid, t.gid);
    nix::unistd::setgroups(&[t.gid]).map_err(|e| fail("setgroups", e))?;
    nix::unistd::setresgid(t.gid, t.gid, t.gid).map_err(|e| fail("setresgid", e))?;
    if t.uid.is_root() {
        return Ok(());
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| fail("PR_SET_KEEPCAPS", e))?;
    nix::unistd::setresuid(t.uid, t.uid, t.uid).map_err(|e| fail("setresuid", e))?;
    capset(mask(&KEPT)).map_err(|e| fail("capset", e))?;
    for cap in KEPT {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap as libc::c_ulong, 0, 0) };
        if r != 0 {
            return Err(fail("PR_CAP_AMBIENT_RAISE", nix::Error::last()));
        }
    }
    let _ = nix::sys::prctl::set_keepcaps(false);
    Ok(())
}

/// Sets the effective, permitted and inheritable sets of the calling thread to `mask`.
/// Makes `c`'s child clear its ambient capability set before `exec`: commands lbha starts
/// (VRRP scripts, external checks) must not inherit the network capabilities kept for
/// `lbha upgrade` (see the module doc).
pub fn without_ambient_caps(c: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2), which
    // is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let r = nix::libc::prctl(nix::libc::PR_CAP_AMBIENT, nix::libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            // EINVAL: a kernel without ambient capabilities (before 4.3) has none to clear.
            if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(nix::libc::EINVAL) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn capset(mask: u64) -> nix::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let word = |shift: u32| {
        let w = (mask >> shift) as u32;
        Data { effective: w, permitted: w, inheritable: w }
    };
    let data = [word(0), word(32)];
    // SAFETY: a version-3 header and the two data words it expects, both alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if r == 0 { Ok(()) } else { Err(nix::Error::last()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_capabilities_mask() {
        assert_eq!(mask(&KEPT), 0x3400);
        assert_eq!(mask(&[]), 0);
    }

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(resolve(None, None), Ok(None));
        let root = resolve(Some("root"), None).unwrap().unwrap();
        assert_eq!(root, Target { uid: Uid::from_raw(0), gid: Gid::from_raw(0) });
        let by_number = resolve(Some("0"), Some("0")).unwrap().unwrap();
        assert_eq!(by_number, root);
        let e = resolve(Some("no-such-user-lbha"), None).unwrap_err();
        assert_eq!(e, "global.user: no user named \"no-such-user-lbha\" on this system");
        let e = resolve(Some("root"), Some("no-such-group-lbha")).unwrap_err();
        assert_eq!(e, "global.group: no group named \"no-such-group-lbha\" on this system");
    }
}
