//! `[api]` validation and the password hash formats a userlist may hold.

use super::error::{FieldPath, Problem};
use super::model;
use super::snapshot::{ApiSettings, Userlist};
use std::path::{Path, PathBuf};

const DEFAULT_STATE_DIR: &str = "/var/lib/lbha";
const DEFAULT_MAX_OPEN_TRANSACTIONS: u32 = 20;
const DEFAULT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) fn validate(
    a: &model::Api,
    userlists: &[Userlist],
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<ApiSettings> {
    let p = FieldPath::root().key("api");
    let start = problems.len();
    let bind = match super::validate::parse_bind(&a.bind) {
        Ok(b) => Some(b),
        Err(e) if a.bind.is_empty() => {
            problems.push(Problem::new(p.key("bind"), format!("missing ({e})")));
            None
        }
        Err(e) => {
            problems.push(Problem::new(p.key("bind"), e).with_value(&a.bind));
            None
        }
    };
    if a.userlist.is_empty() {
        problems.push(Problem::new(p.key("userlist"), "missing: name the [[userlist]] whose users may call the API"));
    } else if !userlists.iter().any(|u| u.name == a.userlist) {
        problems.push(Problem::new(p.key("userlist"), "no such userlist").with_value(&a.userlist));
    }
    let state_dir = a.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR);
    if state_dir.is_empty() {
        problems.push(Problem::new(p.key("state_dir"), "must not be empty"));
    }
    let max_open = a.max_open_transactions.unwrap_or(DEFAULT_MAX_OPEN_TRANSACTIONS);
    if max_open == 0 {
        problems.push(Problem::new(p.key("max_open_transactions"), "must be at least 1").with_value(0));
    }
    let tls = match &a.ssl_crt {
        Some(crt) => match crate::tls::server_config(&base_dir.join(crt), &["http/1.1".to_string()]) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(Problem::new(p.key("ssl_crt"), e.to_string()).with_value(crt));
                None
            }
        },
        None => None,
    };
    let insecure_http = a.ssl_crt.is_none() && bind.is_some_and(|b| !b.ip().is_loopback());
    if insecure_http && a.allow_insecure_http != Some(true) {
        problems.push(
            Problem::new(
                p.key("bind"),
                "plain HTTP on a non-loopback address sends the API's passwords in clear: set `ssl_crt`, bind to loopback, or set `allow_insecure_http = true`",
            )
            .with_value(&a.bind),
        );
    }
    let read_timeout = a.read_timeout.map(|d| d.0).unwrap_or(DEFAULT_READ_TIMEOUT);
    if read_timeout.is_zero() {
        problems.push(Problem::new(p.key("read_timeout"), "must be more than 0").with_value(0));
    }
    if problems.len() > start {
        return None;
    }
    Some(ApiSettings {
        tls,
        bind: bind?,
        userlist: a.userlist.clone(),
        state_dir: PathBuf::from(state_dir),
        max_open_transactions: max_open,
        insecure_http,
        read_timeout,
    })
}

/// Accepts the crypt(3) formats HAProxy's libcrypt verifies and lbha can too: `$1$` (MD5-crypt),
/// `$5$`/`$6$` (SHA-crypt, with or without `rounds=`), `$y$` (yescrypt), bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`),
/// `$sha1$`, BSDi (`_`) and traditional DES (13 characters).
pub fn check_hash(h: &str) -> Result<(), String> {
    let crypt64 = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
    let parts: Vec<&str> = h.split('$').collect();
    match parts.get(1).copied() {
        Some("5" | "6") if (4..=5).contains(&parts.len()) && parts[0].is_empty() => {
            if !crypt64(parts[parts.len() - 1]) {
                return Err("malformed SHA-crypt hash".into());
            }
            Ok(())
        }
        Some("2a" | "2b" | "2x" | "2y") if parts.len() == 4 && parts[0].is_empty() => {
            if parts[2].len() == 2 && parts[2].bytes().all(|c| c.is_ascii_digit()) && parts[3].len() == 53 {
                Ok(())
            } else {
                Err("malformed bcrypt hash".into())
            }
        }
        Some("1") if parts[0].is_empty() => {
            if parts.len() == 4 && parts[2].len() <= 8 && parts[3].len() == 22 && crypt64(parts[3]) {
                Ok(())
            } else {
                Err("malformed MD5-crypt hash ($1$SALT$ and 22 characters)".into())
            }
        }
        Some("y")
            if parts.len() == 5
                && parts[0].is_empty()
                && crypt64(parts[2])
                && crypt64(parts[3])
                && crypt64(parts[4]) =>
        {
            Ok(())
        }
        Some("sha1") if parts.len() == 5 && parts[0].is_empty() && crypt64(parts[4]) => Ok(()),
        None if h.len() == 13 && crypt64(h) => Ok(()),
        None if h.len() == 20 && h.starts_with('_') && crypt64(&h[1..]) => Ok(()),
        _ => Err("not a supported crypt hash ($1$, $5$, $6$, $y$ yescrypt, bcrypt $2b$, $sha1$, or DES)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_hash;

    #[test]
    fn hash_formats() {
        assert!(
            check_hash(
                "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
            )
            .is_ok()
        );
        assert!(check_hash("$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA").is_ok());
        assert!(check_hash("$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy").is_ok());
        assert!(check_hash("$1$abc$def").is_err());
        assert!(check_hash("$1$saltsalt$T5MN6iR8aoAeg.OHdYqBf0").is_ok());
        assert!(check_hash("ab01FAX.bQRSU").is_ok());
        assert!(check_hash("ab01FAX.bQRS!").is_err());
        assert!(check_hash("plain").is_err());
        assert!(check_hash("$6$salt$").is_err());
        assert!(check_hash("$2b$10$short").is_err());
    }
}
