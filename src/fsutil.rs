//! The one way lbha writes a file it must not lose (configs the API or `convert` writes, the
//! server-state file, runtime VIPs): a crash or a full disk leaves the old file or the new one,
//! never a part.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes through a temporary file in the same directory: write, fsync, rename over `path`,
/// fsync the directory. Creates the directory if needed and keeps an existing file's mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with_mode(path, bytes, None)
}

/// Like [`write_atomic`] for a file that holds secrets (a copy of the config, a staged
/// transaction): the file gets exactly `mode`, whether new or replaced, and is never readable
/// with looser bits, not even while it is being written.
pub fn write_secret(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_with_mode(path, bytes, Some(mode & 0o777))
}

/// Like [`write_atomic`], but never looser than `limit`: for a file made from others that may hold
/// secrets (a converted config gets no more than its sources' bits).
pub fn write_atomic_limited(path: &Path, bytes: &[u8], limit: u32) -> std::io::Result<()> {
    let base = mode_of(path).unwrap_or(0o666 & !current_umask());
    write_with_mode(path, bytes, Some(base & limit & 0o777))
}

/// The permission bits of `path` (for files that copy it, such as backups of the config).
pub fn mode_of(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// Temporary files are `.NAME.tmp.PID`; the PID lets the next start tell a crashed writer's file
/// from one being written by a live process (the old process during a binary upgrade).
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp.{pid}")
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let tmp = dir.join(temp_name(&name, std::process::id()));
    let result = (|| {
        let _ = std::fs::remove_file(&tmp);
        // Private from the start; the final bits are set before any byte is written.
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let final_mode = match mode {
            Some(m) => Some(m),
            None => match std::fs::metadata(path) {
                Ok(meta) => Some(meta.permissions().mode() & 0o7777),
                // A new file gets what `File::create` would give it (0666 less the umask).
                Err(_) => Some(0o666 & !current_umask()),
            },
        };
        if let Some(m) = final_mode {
            f.set_permissions(std::fs::Permissions::from_mode(m))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The process umask, read from /proc (setting it to read it back would race other threads).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Whether a temporary file name was left by a writer that is gone: `.NAME.tmp.PID` where
/// `NAME` is one of `names` (any name when `names` is empty) and `pid` is not alive.
fn stale_temp(file: &str, names: &[&str], alive: impl Fn(u32) -> bool) -> bool {
    let Some(rest) = file.strip_prefix('.') else { return false };
    let Some((name, pid)) = rest.rsplit_once(".tmp.") else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    !name.is_empty() && (names.is_empty() || names.contains(&name)) && pid != std::process::id() && !alive(pid)
}

fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else { return false };
    // Signal 0 checks existence; EPERM means it exists under another user.
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None), Err(nix::errno::Errno::ESRCH))
}

/// Removes the temporary files a crash left in `dir` next to the files named `names` (every
/// such file when `names` is empty: for directories lbha owns). Returns what was removed.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(file) = file.to_str() else { continue };
        if !stale_temp(file, names, pid_alive) || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => {
                tracing::info!("removed {}, left by an interrupted write", e.path().display());
                removed.push(e.path());
            }
            Err(err) => tracing::warn!("cannot remove {}, left by an interrupted write: {err}", e.path().display()),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbha-fsutil-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn replaces_whole_files_creates_the_directory_and_leaves_no_temp_file() {
        let d = scratch("replace");
        let p = d.join("sub").join("state");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(d.join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn keeps_the_mode_of_the_file_it_replaces() {
        let d = scratch("mode");
        let p = d.join("lbha.toml");
        write_atomic(&p, b"a").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"b").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let d = scratch("fail");
        let p = d.join("f");
        write_atomic(&p, b"old").unwrap();
        // Renaming a file over a directory fails after the temp file was written.
        let target = d.join("dir");
        std::fs::create_dir_all(target.join("x")).unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        let temps = std::fs::read_dir(&d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp."))
            .count();
        assert_eq!(temps, 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn secrets_get_their_mode_whether_new_or_replaced() {
        let d = scratch("secret");
        let p = d.join("lbha.toml.bak");
        write_atomic(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&p, b"a", 0o600).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        let n = d.join("txn.toml");
        write_secret(&n, b"b", 0o640).unwrap();
        assert_eq!(mode_of(&n).unwrap(), 0o640);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn limited_writes_are_never_looser_than_the_limit() {
        let d = scratch("limited");
        let p = d.join("out.toml");
        write_atomic_limited(&p, b"a", 0o600).unwrap();
        assert_eq!(mode_of(&p).unwrap() & 0o077, 0);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic_limited(&p, b"b", 0o644).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o640, "an existing stricter mode stays");
        write_atomic_limited(&p, b"c", 0o600).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_temp_names() {
        let dead = |_| false;
        assert!(stale_temp(".lbha.toml.tmp.123", &["lbha.toml"], dead));
        assert!(stale_temp(".x.json.tmp.9", &[], dead));
        assert!(!stale_temp(".lbha.toml.tmp.123", &["other"], dead));
        assert!(!stale_temp(".lbha.toml.tmp.123", &[], |_| true), "a live writer's file stays");
        assert!(!stale_temp("lbha.toml.tmp.123", &[], dead));
        assert!(!stale_temp(".lbha.toml.tmp.x", &[], dead));
        assert!(!stale_temp(&temp_name("f", std::process::id()), &[], dead), "ours");
    }

    #[test]
    fn removes_temp_files_of_dead_writers_only() {
        let d = scratch("stale");
        std::fs::create_dir_all(&d).unwrap();
        // A pid that cannot exist (above the kernel's pid_max limit).
        let dead = d.join(temp_name("state", 0x7fff_fff0));
        let live = d.join(temp_name("state", 1));
        let other = d.join(".other.tmp.5");
        for p in [&dead, &live, &other] {
            std::fs::write(p, "x").unwrap();
        }
        assert_eq!(remove_stale_temps(&d, &["state"]), vec![dead.clone()]);
        assert!(live.exists() && other.exists() && !dead.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
