//! keepalived's `enable_script_security` check (keepalived 2.2.7 `check_script_secure`): a script
//! that runs as root (uid or gid 0, or a set-uid/set-gid root file) is unsafe when its file, or
//! any directory on its path, is owned by someone other than root, or is writable by a non-root
//! group or by everyone (a directory with the sticky bit, like /tmp, only for non-root owners).
//! Whoever could change such a file could run code as root.
//!
//! The rule is pure over [`Meta`]; [`stat`] reads the real file system.

use std::path::{Path, PathBuf};

/// What the check needs of one path component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub is_dir: bool,
}

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IXUSR: u32 = 0o100;
const S_IWGRP: u32 = 0o020;
const S_IXGRP: u32 = 0o010;
const S_IWOTH: u32 = 0o002;

/// The real `stat(2)` (symbolic links followed, as keepalived does).
pub fn stat(p: &Path) -> std::io::Result<Meta> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p)?;
    Ok(Meta { uid: m.uid(), gid: m.gid(), mode: m.mode() & 0o7777, is_dir: m.is_dir() })
}

/// Why one component makes the path unsafe, or `None`.
pub fn unsafe_component(m: &Meta) -> Option<&'static str> {
    if m.uid != 0 {
        return Some("not owned by root");
    }
    let sticky_dir = m.is_dir && m.mode & S_ISVTX != 0;
    if sticky_dir {
        return None;
    }
    if m.gid != 0 && m.mode & S_IWGRP != 0 {
        return Some("writable by its (non-root) group");
    }
    if m.mode & S_IWOTH != 0 {
        return Some("writable by everyone");
    }
    None
}

/// Whether running `file` as `uid:gid` runs code with root's rights, so its path must be safe.
pub fn runs_as_root(file: &Meta, uid: u32, gid: u32) -> bool {
    uid == 0
        || gid == 0
        || (file.uid == 0 && file.mode & S_IXUSR != 0 && file.mode & S_ISUID != 0)
        || (file.gid == 0 && file.mode & S_IXGRP != 0 && file.mode & S_ISGID != 0)
}

/// The executable a command line starts: its first word (quotes removed); a bare name is looked up
/// in `path_var` as `sh` would. `None` when there is none to find (a shell builtin such as `exit`,
/// or a name not on the path: the shell fails to run it).
pub fn program(command: &str, path_var: &str, stat: &dyn Fn(&Path) -> std::io::Result<Meta>) -> Option<PathBuf> {
    let first = command.split_whitespace().next()?;
    let first = first.trim_matches(|c| c == '"' || c == '\'');
    if first.is_empty() {
        return None;
    }
    if first.contains('/') {
        return Some(PathBuf::from(first));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(first))
        .find(|p| stat(p).is_ok_and(|m| !m.is_dir && m.mode & 0o111 != 0))
}

/// Checks `file` (absolute) run as `uid:gid`: `Err` names the first unsafe component, from `/`
/// down to the file itself, or the file that cannot be read.
pub fn check_path(
    file: &Path,
    uid: u32,
    gid: u32,
    stat: &dyn Fn(&Path) -> std::io::Result<Meta>,
) -> Result<(), String> {
    let meta = stat(file).map_err(|e| format!("cannot check {}: {e}", file.display()))?;
    if !runs_as_root(&meta, uid, gid) {
        return Ok(());
    }
    let mut at = PathBuf::new();
    for c in file.components() {
        at.push(c);
        let m = stat(&at).map_err(|e| format!("cannot check {}: {e}", at.display()))?;
        if let Some(why) = unsafe_component(&m) {
            return Err(format!("{} is {why} (uid {}, gid {}, mode {:04o})", at.display(), m.uid, m.gid, m.mode));
        }
    }
    Ok(())
}

/// Checks what `sh -c command` runs as `uid:gid`: the shell and the command's program.
pub fn check_command(
    command: &str,
    uid: u32,
    gid: u32,
    path_var: &str,
    stat: &dyn Fn(&Path) -> std::io::Result<Meta>,
) -> Result<(), String> {
    check_path(Path::new(super::script::SHELL), uid, gid, stat)?;
    let Some(prog) = program(command, path_var, stat) else {
        return Ok(());
    };
    let prog = if prog.is_absolute() {
        prog
    } else {
        std::env::current_dir().map_err(|e| format!("cannot resolve {}: {e}", prog.display()))?.join(prog)
    };
    check_path(&prog, uid, gid, stat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn meta(uid: u32, gid: u32, mode: u32, is_dir: bool) -> Meta {
        Meta { uid, gid, mode, is_dir }
    }

    /// A file system of root-owned 0755 directories, with `extra` overriding.
    fn fs(extra: &[(&str, Meta)]) -> impl Fn(&Path) -> std::io::Result<Meta> + use<> {
        let mut m: HashMap<PathBuf, Meta> = HashMap::new();
        for d in ["/", "/bin", "/etc", "/etc/lbha", "/tmp", "/usr", "/usr/bin"] {
            m.insert(d.into(), meta(0, 0, 0o755, true));
        }
        m.insert("/bin/sh".into(), meta(0, 0, 0o755, false));
        m.insert("/tmp".into(), meta(0, 0, 0o1777, true));
        for (p, x) in extra {
            m.insert(PathBuf::from(p), *x);
        }
        move |p: &Path| m.get(p).copied().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn a_root_owned_path_is_safe() {
        let st = fs(&[("/etc/lbha/check.sh", meta(0, 0, 0o755, false))]);
        assert_eq!(check_command("/etc/lbha/check.sh arg", 0, 0, "/bin", &st), Ok(()));
    }

    #[test]
    fn writable_file_or_directory_or_foreign_owner_is_unsafe() {
        for (what, extra) in [
            ("writable by everyone", vec![("/etc/lbha/check.sh", meta(0, 0, 0o757, false))]),
            (
                "writable by its (non-root) group",
                vec![("/etc/lbha", meta(0, 100, 0o775, true)), ("/etc/lbha/check.sh", meta(0, 0, 0o755, false))],
            ),
            ("not owned by root", vec![("/etc/lbha/check.sh", meta(1000, 0, 0o755, false))]),
        ] {
            let st = fs(&extra);
            let e = check_command("/etc/lbha/check.sh", 0, 0, "/bin", &st).expect_err(what);
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn root_group_write_and_sticky_directories_are_safe() {
        // Group write by group root, and a sticky world-writable directory owned by root (/tmp).
        let st = fs(&[("/etc/lbha/check.sh", meta(0, 0, 0o775, false)), ("/tmp/c.sh", meta(0, 0, 0o755, false))]);
        assert_eq!(check_command("/etc/lbha/check.sh", 0, 0, "/bin", &st), Ok(()));
        assert_eq!(check_command("/tmp/c.sh", 0, 0, "/bin", &st), Ok(()));
        // A sticky bit on a file does not make it safe.
        let st = fs(&[("/tmp/c.sh", meta(0, 0, 0o1757, false))]);
        assert!(check_command("/tmp/c.sh", 0, 0, "/bin", &st).is_err());
    }

    #[test]
    fn only_scripts_run_as_root_are_checked() {
        let st = fs(&[("/tmp/c.sh", meta(1000, 1000, 0o777, false))]);
        assert_eq!(check_command("/tmp/c.sh", 65534, 65534, "/bin", &st), Ok(()));
        assert!(check_command("/tmp/c.sh", 65534, 0, "/bin", &st).is_err(), "gid 0 is root too");
        // A set-uid root file runs as root whoever starts it.
        let st = fs(&[("/tmp/c.sh", meta(0, 0, 0o4757, false))]);
        assert!(check_command("/tmp/c.sh", 65534, 65534, "/bin", &st).is_err());
    }

    #[test]
    fn bare_names_are_looked_up_in_path_and_builtins_check_the_shell_only() {
        let st = fs(&[("/usr/bin/pidof", meta(1000, 0, 0o755, false))]);
        assert!(check_command("pidof haproxy", 0, 0, "/bin:/usr/bin", &st).is_err());
        assert_eq!(check_command("exit 0", 0, 0, "/bin:/usr/bin", &st), Ok(()));
        let st = fs(&[("/bin/sh", meta(0, 0, 0o777, false))]);
        assert!(check_command("exit 0", 0, 0, "/bin", &st).is_err(), "the shell itself is checked");
    }

    #[test]
    fn quoted_program_and_missing_file() {
        let st = fs(&[("/etc/lbha/check.sh", meta(0, 0, 0o757, false))]);
        assert!(check_command("'/etc/lbha/check.sh' x", 0, 0, "/bin", &st).is_err());
        let e = check_command("/etc/lbha/missing.sh", 0, 0, "/bin", &st).expect_err("missing");
        assert!(e.contains("cannot check /etc/lbha/missing.sh"), "{e}");
    }
}
