//! HTTP Basic auth against the `[[userlist]]` named by `[api] userlist`: plain
//! `insecure_password`, or the crypt(3) hashes HAProxy takes ($1$, $5$, $6$, $y$, bcrypt, DES and
//! the rarer BSD forms). Successful hash checks are remembered (by a digest of user, password and
//! hash) so each request does not pay for them. A 401 does not tell an unknown user from a wrong
//! password: same answer, and an unknown user costs a hash check too.
//!
//! Hash checks cost memory (yescrypt: 16 MiB at the default cost) and a blocking-pool thread, and
//! anyone can cause one. So at most `MAX_HASH_CHECKS` run at once; a login that finds them all busy
//! gets 429 without hashing (not 401: a right password must not be told it is wrong). Remembered
//! logins skip the limit, so an operator already logged in is not locked out by a flood.

use super::error::ApiError;
use crate::config::snapshot::{Password, Userlist};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Hash checks that may run at once (each may hold up to `config::api::MAX_YESCRYPT_MEMORY`).
pub const MAX_HASH_CHECKS: usize = 4;

/// Longer passwords are refused without hashing: SHA-crypt's cost grows with the length.
pub const MAX_PASSWORD_LEN: usize = 1024;

pub struct Verified {
    ok: Mutex<HashSet<[u8; 32]>>,
    checks: Arc<Semaphore>,
}

impl Default for Verified {
    fn default() -> Self {
        Verified { ok: Mutex::default(), checks: Arc::new(Semaphore::new(MAX_HASH_CHECKS)) }
    }
}

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
    if hash.starts_with("$y$") {
        use yescrypt::{PasswordVerifier, Yescrypt};
        return Yescrypt::default().verify_password(password.as_bytes(), hash).is_ok();
    }
    if hash.starts_with("$5$") || hash.starts_with("$6$") {
        use sha_crypt::{PasswordVerifier, ShaCrypt};
        return ShaCrypt::default().verify_password(password.as_bytes(), hash).is_ok();
    }
    // MD5-crypt, DES, BSDi and SHA1-crypt; a format it does not know never verifies.
    pwhash::unix::verify(password, hash)
}

/// The one answer to bad credentials, whichever part was wrong.
const BAD_CREDENTIALS: &str = "invalid username or password";

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
    /// Runs `verify_hash` on the blocking pool under the concurrency limit; `Err` (429) when the
    /// limit is reached, so nothing is hashed.
    async fn limited_verify(&self, pw: String, hash: String) -> Result<bool, ApiError> {
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            return Err(ApiError::TooManyRequests("too many logins in progress, retry later".into()));
        };
        // The permit lives in the blocking task: a client that hangs up does not free it while
        // its hash is still being computed.
        let check = move || {
            let ok = verify_hash(&pw, &hash);
            drop(permit);
            ok
        };
        Ok(tokio::task::spawn_blocking(check).await.unwrap_or(false))
    }

    /// Ok if the header carries a user of `list` with the right password.
    pub async fn check(&self, list: Option<&Userlist>, header: Option<&str>) -> Result<(), ApiError> {
        let list = match list {
            Some(l) if !l.users.is_empty() => l,
            _ => return Err(ApiError::Unauthorized("no configured users".into())),
        };
        let (user, pw) =
            header.and_then(parse_basic).ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?;
        self.check_user(list, user, pw).await
    }

    /// Ok if `user` is in `list` with password `pw` (the console's login form).
    pub async fn check_user(&self, list: &Userlist, user: String, pw: String) -> Result<(), ApiError> {
        if pw.len() > MAX_PASSWORD_LEN {
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        }
        let Some((_, stored)) = list.users.iter().find(|(u, _)| *u == user) else {
            // As much work as a wrong password: check against a real hash of the list, if any.
            let decoy = list.users.iter().find_map(|(_, p)| match p {
                Password::Hash(h) => Some(h.clone()),
                Password::Insecure(_) => None,
            });
            match decoy {
                Some(h) => {
                    self.limited_verify(pw, h).await?;
                }
                None => {
                    let _ = ct_eq(pw.as_bytes(), pw.as_bytes());
                }
            }
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        let ok = match stored {
            Password::Insecure(p) => ct_eq(p.as_bytes(), pw.as_bytes()),
            Password::Hash(h) => {
                let k = key(&user, &pw, h);
                if self.ok.lock().is_ok_and(|s| s.contains(&k)) {
                    true
                } else {
                    let ok = self.limited_verify(pw.clone(), h.clone()).await?;
                    if ok && let Ok(mut s) = self.ok.lock() {
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
            Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()))
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
        // From `openssl passwd -1 -salt saltsalt 123456` and crypt(3)'s DES (`ab` salt).
        // And yescrypt (`mkpasswd`'s default on Debian), from libxcrypt's crypt(3).
        for h in [
            "$1$saltsalt$T5MN6iR8aoAeg.OHdYqBf0",
            "ab01FAX.bQRSU",
            "$y$j9T$saltsaltsaltsalt$2qyC3IyfGJLIUVjwlXkC8d3bF3cy/Jkva/eQdX8d2k4",
        ] {
            assert!(verify_hash("123456", h), "{h}");
            assert!(!verify_hash("123457", h), "{h}");
            assert!(crate::config::api::check_hash(h).is_ok(), "{h}");
        }
        let b = bcrypt::hash("123456", 4).expect("bcrypt hash");
        assert!(crate::config::api::check_hash(&b).is_ok(), "{b}");
        assert!(verify_hash("123456", &b));
        assert!(!verify_hash("nope", &b));
    }

    fn list(users: &[(&str, Password)]) -> Userlist {
        Userlist {
            name: "u".into(),
            users: users.iter().map(|(n, p)| (n.to_string(), p.clone())).collect(),
            groups: Vec::new(),
        }
    }

    fn basic(user_pw: &str) -> String {
        match user_pw {
            "admin:123456" => "Basic YWRtaW46MTIzNDU2",
            "admin:nope" => "Basic YWRtaW46bm9wZQ==",
            "nobody:nope" => "Basic bm9ib2R5Om5vcGU=",
            _ => unreachable!("no fixture for {user_pw}"),
        }
        .to_string()
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_answer_alike() {
        let l = list(&[("admin", Password::Hash("$1$saltsalt$T5MN6iR8aoAeg.OHdYqBf0".into()))]);
        let v = Verified::default();
        assert!(v.check(Some(&l), Some(&basic("admin:123456"))).await.is_ok());
        let wrong = v.check(Some(&l), Some(&basic("admin:nope"))).await.unwrap_err();
        let unknown = v.check(Some(&l), Some(&basic("nobody:nope"))).await.unwrap_err();
        assert_eq!(wrong.status(), 401);
        assert_eq!(wrong.body(), unknown.body());
        assert!(!unknown.body().to_string().contains("nobody"));
    }

    /// Polls a future once: Some(output) if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn hash_checks_are_limited_and_long_passwords_not_hashed() {
        let l = list(&[("admin", Password::Hash("$1$saltsalt$T5MN6iR8aoAeg.OHdYqBf0".into()))]);
        let v = Verified::default();
        // Every permit taken, as by MAX_HASH_CHECKS logins still hashing: the next is 429, not 401.
        let held = v.checks.acquire_many(MAX_HASH_CHECKS as u32).await.expect("permits");
        for who in ["admin:nope", "nobody:nope", "admin:123456"] {
            assert_eq!(v.check(Some(&l), Some(&basic(who))).await.unwrap_err().status(), 429, "{who}");
        }
        drop(held);
        assert!(v.check(Some(&l), Some(&basic("admin:123456"))).await.is_ok());
        // A remembered login needs no permit.
        let held = v.checks.acquire_many(MAX_HASH_CHECKS as u32).await.expect("permits");
        assert!(v.check(Some(&l), Some(&basic("admin:123456"))).await.is_ok());
        drop(held);
        // A login whose client went away (its future dropped) keeps the permit until the hash
        // it started is done: a hash slow enough to be running when the future is dropped.
        // (bcrypt cost 10 takes tens of milliseconds or more; the first poll only spawns it.)
        let slow = bcrypt::hash("x", 10).expect("bcrypt hash");
        let mut fut = Box::pin(v.limited_verify("y".into(), slow));
        assert!(futures_poll_once(fut.as_mut()).await.is_none(), "still hashing");
        drop(fut);
        assert_eq!(v.checks.available_permits(), MAX_HASH_CHECKS - 1, "the running hash holds its permit");
        let _rest = v.checks.acquire_many(MAX_HASH_CHECKS as u32 - 1).await.expect("permits");
        // An over-long password is refused before any hashing (401 even with no permit free).
        let long = format!("admin:{}", "x".repeat(MAX_PASSWORD_LEN + 1));
        let header = format!("Basic {}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(long)
        });
        assert_eq!(v.check(Some(&l), Some(&header)).await.unwrap_err().status(), 401);
    }
}
