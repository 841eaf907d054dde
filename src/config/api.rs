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

/// yescrypt's memory per check (128·N·r·p bytes) at most: 4 times the default `$y$j9T$` (16 MiB).
/// Anyone can make the API check a hash, so the cost must be bounded before it is accepted; a huge
/// N would otherwise pass `lbha check` and abort the daemon at the first login.
pub const MAX_YESCRYPT_MEMORY: u128 = 64 << 20;
/// bcrypt's cost at most (2^15 rounds, about 2 s); up to 31 is valid bcrypt but takes hours.
pub const MAX_BCRYPT_COST: u32 = 15;
/// `rounds=` of SHA-crypt, `$sha1$` and BSDi DES at most (the default of SHA-crypt is 5000).
pub const MAX_CRYPT_ROUNDS: u64 = 1_000_000;

fn rounds_cap(n: u64, what: &str) -> Result<(), String> {
    if n > MAX_CRYPT_ROUNDS {
        Err(format!("{what} rounds {n} above the maximum {MAX_CRYPT_ROUNDS} (each login would cost that much)"))
    } else {
        Ok(())
    }
}

/// The crypt(3) base-64 alphabet's value of one character.
fn crypt64_value(c: u8) -> Option<u64> {
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".iter().position(|&x| x == c).map(|v| v as u64)
}

/// Accepts the crypt(3) formats HAProxy's libcrypt verifies and lbha can too: `$1$` (MD5-crypt),
/// `$5$`/`$6$` (SHA-crypt, with or without `rounds=`), `$y$` (yescrypt), bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`),
/// `$sha1$`, BSDi (`_`) and traditional DES (13 characters). Costs are capped (`MAX_*` above).
pub fn check_hash(h: &str) -> Result<(), String> {
    let crypt64 = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
    let parts: Vec<&str> = h.split('$').collect();
    match parts.get(1).copied() {
        Some("5" | "6") if (4..=5).contains(&parts.len()) && parts[0].is_empty() => {
            if !crypt64(parts[parts.len() - 1]) {
                return Err("malformed SHA-crypt hash".into());
            }
            if parts.len() == 5
                && let Some(r) = parts[2].strip_prefix("rounds=")
            {
                let n: u64 = r.parse().map_err(|_| "malformed SHA-crypt rounds=".to_string())?;
                rounds_cap(n, "SHA-crypt")?;
            }
            Ok(())
        }
        Some("2a" | "2b" | "2x" | "2y") if parts.len() == 4 && parts[0].is_empty() => {
            if parts[2].len() == 2 && parts[2].bytes().all(|c| c.is_ascii_digit()) && parts[3].len() == 53 {
                let cost: u32 = parts[2].parse().unwrap_or(u32::MAX);
                if cost > MAX_BCRYPT_COST {
                    return Err(format!("bcrypt cost {cost} above the maximum {MAX_BCRYPT_COST}"));
                }
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
            let p: yescrypt::Params = parts[2].parse().map_err(|_| "malformed yescrypt parameters".to_string())?;
            let memory = 128 * u128::from(p.n()) * u128::from(p.r()) * u128::from(p.p());
            if memory > MAX_YESCRYPT_MEMORY {
                return Err(format!(
                    "yescrypt cost N={} r={} p={} needs {} MiB per login, above the maximum {} MiB",
                    p.n(),
                    p.r(),
                    p.p(),
                    memory >> 20,
                    MAX_YESCRYPT_MEMORY >> 20
                ));
            }
            // The crate does not expose `t`: accept only what N, r and p alone encode (t = 0 and no
            // NROM, as libxcrypt writes them), so a large time factor cannot slip through.
            let plain = [yescrypt::Mode::Classic, yescrypt::Mode::Worm, yescrypt::Mode::Rw]
                .into_iter()
                .any(|m| yescrypt::Params::new(m, p.n(), p.r(), p.p()).is_ok_and(|q| q.to_string() == parts[2]));
            if !plain {
                return Err("yescrypt parameters other than N, r and p (t, g, NROM) are not supported".into());
            }
            Ok(())
        }
        Some("sha1") if parts.len() == 5 && parts[0].is_empty() && crypt64(parts[4]) => {
            let n: u64 = parts[2].parse().map_err(|_| "malformed $sha1$ rounds".to_string())?;
            rounds_cap(n, "$sha1$")
        }
        None if h.len() == 13 && crypt64(h) => Ok(()),
        None if h.len() == 20 && h.starts_with('_') && crypt64(&h[1..]) => {
            // BSDi: 4 characters of iteration count, least significant first.
            let n = h.as_bytes()[1..5].iter().rev().fold(0u64, |acc, &c| acc << 6 | crypt64_value(c).unwrap_or(0));
            rounds_cap(n, "BSDi DES")
        }
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

    #[test]
    fn hash_costs_are_capped() {
        // Default yescrypt (N=4096, r=32: 16 MiB) passes; N=2^18 (1 GiB, `mkpasswd -R 11`) and an
        // absurd N=2^40 do not: they would abort the daemon or exhaust memory at the first login.
        assert!(check_hash("$y$j9T$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4").is_ok());
        // The boundary: jBT (N=2^14, 64 MiB) passes, jCT (128 MiB) does not.
        assert!(check_hash("$y$jBT$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4").is_ok());
        assert!(check_hash("$y$jCT$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4").is_err());
        let e = check_hash("$y$jFT$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4").unwrap_err();
        assert!(e.contains("above the maximum"), "{e}");
        let huge = yescrypt::Params::new(yescrypt::Mode::default(), 1 << 40, 32, 1).expect("params").to_string();
        let e = check_hash(&format!("$y${huge}$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4"));
        assert!(e.unwrap_err().contains("above the maximum"));
        assert!(check_hash("$y$!!!$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4").is_err());
        let b = "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert!(check_hash(&format!("$2b$15${b}")).is_ok());
        assert!(check_hash(&format!("$2b$31${b}")).unwrap_err().contains("bcrypt cost 31"));
        let s = "saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA";
        assert!(check_hash(&format!("$5$rounds=1000000${s}")).is_ok());
        assert!(check_hash(&format!("$5$rounds=999999999${s}")).unwrap_err().contains("rounds"));
        assert!(check_hash(&format!("$6$rounds=x${s}")).is_err());
        assert!(check_hash("$sha1$480000$saltsalt$AbCdEfGhIjKlMnOpQrStUvWxYz01").is_ok());
        assert!(check_hash("$sha1$4294967295$saltsalt$AbCdEfGhIjKlMnOpQrStUvWxYz01").is_err());
        // BSDi: `_` then the count (least significant character first): "J9.." is 725, "zzzz" 2^24-1.
        assert!(check_hash("_J9..CCCCXBrJUJV154M").is_ok());
        assert!(check_hash("_zzzzCCCCXBrJUJV154M").is_err());
    }
}
