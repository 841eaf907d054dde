//! HTTP Basic auth against the `[[userlist]]` named by `[api] userlist`: plain
//! `insecure_password`, or crypt hashes ($5$, $6$, bcrypt). Successful hash checks are
//! remembered (by a digest of user, password and hash) so each request does not pay for them.

use super::error::ApiError;
use crate::config::snapshot::{Password, Userlist};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Default)]
pub struct Verified(Mutex<HashSet<[u8; 32]>>);

/// `Authorization` header value → (user, password).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = crate::stats::base64_decode(rest.trim())?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Checks one password against a hash. CPU-heavy (bcrypt, 5000 SHA rounds): call off the
/// async workers.
pub fn verify_hash(password: &str, hash: &str) -> bool {
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    ShaCrypt::default().verify_password(password.as_bytes(), hash).is_ok()
}

fn key(user: &str, pw: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, pw, hash] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Constant-time comparison, so the plain-password check leaks no prefix length.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Verified {
    /// Ok if the header carries a user of `list` with the right password.
    pub async fn check(&self, list: Option<&Userlist>, header: Option<&str>) -> Result<(), ApiError> {
        let list = match list {
            Some(l) if !l.users.is_empty() => l,
            _ => return Err(ApiError::Unauthorized("no configured users".into())),
        };
        let (user, pw) =
            header.and_then(parse_basic).ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?;
        let Some((_, stored)) = list.users.iter().find(|(u, _)| *u == user) else {
            return Err(ApiError::Unauthorized(format!("user {user} does not exist")));
        };
        let ok = match stored {
            Password::Insecure(p) => ct_eq(p.as_bytes(), pw.as_bytes()),
            Password::Hash(h) => {
                let k = key(&user, &pw, h);
                if self.0.lock().is_ok_and(|s| s.contains(&k)) {
                    true
                } else {
                    let (pw2, h2) = (pw.clone(), h.clone());
                    let ok = tokio::task::spawn_blocking(move || verify_hash(&pw2, &h2)).await.unwrap_or(false);
                    if ok && let Ok(mut s) = self.0.lock() {
                        if s.len() > 1024 {
                            s.clear();
                        }
                        s.insert(k);
                    }
                    ok
                }
            }
        };
        if ok {
            Ok(())
        } else {
            // The original echoes the password here; lbha does not put secrets in replies.
            Err(ApiError::Unauthorized(format!("invalid password for user {user}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        assert_eq!(parse_basic("Basic YWRtaW46MTIzNDU2"), Some(("admin".into(), "123456".into())));
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn crypt_hashes() {
        // From `openssl passwd -5 -salt saltsalt 123456` and `-6`.
        let sha256 = "$5$saltsalt$bNuW6hMdhDP6R51UI1RrpgGgbWeTrM7ajkOj8vMX2d.";
        let sha512 =
            "$6$saltsalt$1exCt/dOPxcYhFKNrpFEJZM3XdbauNE1U6SSfdUbaG/VkuiiZ9y002RSRJzuNQ03V0IN9WSP0CpiOXuoSRVIU0";
        for h in [sha256, sha512] {
            assert!(verify_hash("123456", h), "{h}");
            assert!(!verify_hash("1234567", h), "{h}");
            assert!(crate::config::api::check_hash(h).is_ok());
        }
        let b = bcrypt::hash("123456", 4).expect("bcrypt hash");
        assert!(crate::config::api::check_hash(&b).is_ok(), "{b}");
        assert!(verify_hash("123456", &b));
        assert!(!verify_hash("nope", &b));
    }
}
