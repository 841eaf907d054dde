//! The sysctls VRRP relies on, written through /proc/sys of the calling process's namespace:
//! `promote_secondaries` keeps same-subnet VIPs when a primary goes away, `ip_nonlocal_bind` lets
//! a backup bind listeners on VIPs it does not hold yet.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("invalid interface name {0:?}")]
    InterfaceName(String),
    #[error("cannot write {path}: permission denied (needs CAP_NET_ADMIN / root)")]
    PermissionDenied { path: PathBuf },
    #[error("cannot write {path}: no such sysctl (unknown interface or kernel without it)")]
    Missing { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The /proc/sys file of a dotted sysctl name such as `net.ipv4.ip_nonlocal_bind`.
pub fn proc_path(name: &str) -> PathBuf {
    let mut p = PathBuf::from("/proc/sys");
    for part in name.split('.') {
        p.push(part);
    }
    p
}

/// `net.ipv4.conf.<ifname>.promote_secondaries`, refusing names that would leave the directory.
pub fn promote_secondaries_name(ifname: &str) -> Result<String, SysctlError> {
    let ok = !ifname.is_empty()
        && ifname.len() <= 15
        && ifname != "."
        && ifname != ".."
        && !ifname.contains(['/', '\0'])
        && !ifname.chars().any(char::is_whitespace);
    if !ok {
        return Err(SysctlError::InterfaceName(ifname.to_string()));
    }
    // A dot in an interface name (eth0.100) becomes '/' in the dotted form; use the path directly.
    Ok(format!("net.ipv4.conf.{ifname}.promote_secondaries"))
}

/// Writes `value` to a sysctl given as a path under /proc/sys.
fn write(path: PathBuf, value: &str) -> Result<(), SysctlError> {
    match std::fs::write(&path, value) {
        Ok(()) => Ok(()),
        Err(e) => Err(match e.kind() {
            std::io::ErrorKind::PermissionDenied => SysctlError::PermissionDenied { path },
            std::io::ErrorKind::NotFound => SysctlError::Missing { path },
            _ => SysctlError::Io { path, source: e },
        }),
    }
}

/// Sets `promote_secondaries=1` on a VRRP interface.
pub fn set_promote_secondaries(ifname: &str) -> Result<(), SysctlError> {
    promote_secondaries_name(ifname)?;
    let path = PathBuf::from("/proc/sys/net/ipv4/conf").join(ifname).join("promote_secondaries");
    write(path, "1")
}

/// Sets `net.ipv4.ip_nonlocal_bind=1` and, when IPv6 exists, `net.ipv6.ip_nonlocal_bind=1`.
pub fn set_nonlocal_bind() -> Result<(), SysctlError> {
    write(proc_path("net.ipv4.ip_nonlocal_bind"), "1")?;
    match write(proc_path("net.ipv6.ip_nonlocal_bind"), "1") {
        Err(SysctlError::Missing { .. }) => Ok(()),
        other => other,
    }
}

/// Reads a sysctl as trimmed text (tests and status).
pub fn read(name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(proc_path(name)).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(proc_path("net.ipv4.ip_nonlocal_bind"), PathBuf::from("/proc/sys/net/ipv4/ip_nonlocal_bind"));
        assert_eq!(promote_secondaries_name("eth0").expect("valid"), "net.ipv4.conf.eth0.promote_secondaries");
        for bad in ["", "..", "a/b", "x y", "0123456789abcdef"] {
            assert!(matches!(promote_secondaries_name(bad), Err(SysctlError::InterfaceName(_))), "{bad:?}");
        }
        assert!(set_promote_secondaries("../../x").is_err());
    }
}
