//! Who is asking and what they may do, without state on the server: a login gives a session
//! token signed with this process's key (HMAC-SHA256) that carries the user and its expiry; the
//! role is decided on every request from the live userlist, so a reload that removes a user or a
//! group membership takes effect at once. Changes need a CSRF token derived from the session and
//! a same-origin request. All pure: the clock and the key come from the caller.

use crate::config::snapshot::Userlist;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

/// The session cookie's name.
pub const COOKIE: &str = "lbha_console";
/// The header carrying the CSRF token on changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Admin,
}

/// The signing key: random per process, so a restart or an upgrade logs everyone out.
pub struct Keys {
    key: hmac::Key,
}

impl Keys {
    pub fn random() -> Result<Keys, String> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| "no randomness for the console's key")?;
        Ok(Keys { key })
    }

    pub fn from_bytes(b: &[u8]) -> Keys {
        Keys { key: hmac::Key::new(hmac::HMAC_SHA256, b) }
    }

    fn mac(&self, purpose: &str, msg: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(msg.as_bytes());
        B64.encode(ctx.sign().as_ref())
    }

    fn check(&self, purpose: &str, msg: &str, given: &str) -> bool {
        let Ok(tag) = B64.decode(given) else { return false };
        let mut m = Vec::with_capacity(purpose.len() + 1 + msg.len());
        m.extend_from_slice(purpose.as_bytes());
        m.push(0);
        m.extend_from_slice(msg.as_bytes());
        hmac::verify(&self.key, &m, &tag).is_ok()
    }

    /// A session token for `user` valid until `expires` (Unix seconds): `USER.EXPIRES.MAC`.
    pub fn issue(&self, user: &str, expires: u64) -> String {
        let body = format!("{}.{expires}", B64.encode(user));
        let mac = self.mac("session", &body);
        format!("{body}.{mac}")
    }

    /// The user of a token signed by this key and not expired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Option<String> {
        let (body, mac) = token.rsplit_once('.')?;
        if !self.check("session", body, mac) {
            return None;
        }
        let (user, expires) = body.split_once('.')?;
        if expires.parse::<u64>().ok()? <= now {
            return None;
        }
        String::from_utf8(B64.decode(user).ok()?).ok()
    }

    /// The CSRF token of a session: the page reads it from `/session` and sends it back as a header
    /// a cross-site form cannot set.
    pub fn csrf(&self, token: &str) -> String {
        self.mac("csrf", token)
    }

    pub fn csrf_ok(&self, token: &str, given: Option<&str>) -> bool {
        given.is_some_and(|g| self.check("csrf", token, g))
    }
}

/// The role of `user` in `list`, or None if it may not use the console: members of
/// `admin_group` are admins; members of `read_group` (everyone in the list when it is not set)
/// may look.
pub fn role(list: &Userlist, user: &str, admin_group: Option<&str>, read_group: Option<&str>) -> Option<Role> {
    if !list.users.iter().any(|(u, _)| u == user) {
        return None;
    }
    if admin_group.is_some_and(|g| list.in_group(user, g)) {
        return Some(Role::Admin);
    }
    match read_group {
        None => Some(Role::Read),
        Some(g) if list.in_group(user, g) => Some(Role::Read),
        Some(_) => None,
    }
}

/// Whether a change comes from the console's own page: its `Origin` (or, without one, its
/// `Referer`) names this scheme and host. A request naming neither is refused.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, host: Option<&str>, https: bool) -> bool {
    let Some(host) = host else { return false };
    let me = format!("{}://{host}", if https { "https" } else { "http" });
    match (origin, referer) {
        (Some(o), _) => o == me,
        (None, Some(r)) => r == me || r.strip_prefix(&me).is_some_and(|rest| rest.starts_with('/')),
        (None, None) => false,
    }
}

/// The session token in a `Cookie` header.
pub fn cookie_token(header: &str) -> Option<&str> {
    header.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The `Set-Cookie` value for a login (or, with `None`, a logout).
pub fn set_cookie(token: Option<&str>, max_age: u64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    match token {
        Some(t) => format!("{COOKIE}={t}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::Password;

    #[test]
    fn tokens_sign_verify_and_expire() {
        let k = Keys::from_bytes(b"k1");
        let t = k.issue("ops:a.b", 1000);
        assert_eq!(k.verify(&t, 999).as_deref(), Some("ops:a.b"));
        assert_eq!(k.verify(&t, 1000), None, "expired");
        // Another process's key, a changed user or expiry, or garbage: refused.
        assert_eq!(Keys::from_bytes(b"k2").verify(&t, 0), None);
        let (body, mac) = t.rsplit_once('.').unwrap();
        let longer = body.replace(".1000", ".9999");
        assert_eq!(k.verify(&format!("{longer}.{mac}"), 0), None);
        let other = format!("{}.1000.{mac}", B64.encode("admin"));
        assert_eq!(k.verify(&other, 0), None);
        for junk in ["", ".", "a.b.c", "x.1.!!!"] {
            assert_eq!(k.verify(junk, 0), None, "{junk}");
        }
    }

    #[test]
    fn csrf_is_bound_to_the_session() {
        let k = Keys::from_bytes(b"k1");
        let (a, b) = (k.issue("a", 10), k.issue("b", 10));
        let ca = k.csrf(&a);
        assert!(k.csrf_ok(&a, Some(&ca)));
        assert!(!k.csrf_ok(&b, Some(&ca)));
        assert!(!k.csrf_ok(&a, None));
        assert!(!k.csrf_ok(&a, Some("")));
        assert!(!Keys::from_bytes(b"k2").csrf_ok(&a, Some(&ca)));
    }

    #[test]
    fn roles_come_from_groups() {
        let list = Userlist {
            name: "ops".into(),
            users: ["alice", "bob", "carol"].iter().map(|u| (u.to_string(), Password::Insecure("x".into()))).collect(),
            groups: vec![("admins".into(), vec!["alice".into()]), ("viewers".into(), vec!["bob".into()])],
        };
        let r = |u, a, rd| role(&list, u, a, rd);
        assert_eq!(r("alice", Some("admins"), Some("viewers")), Some(Role::Admin));
        assert_eq!(r("bob", Some("admins"), Some("viewers")), Some(Role::Read));
        assert_eq!(r("carol", Some("admins"), Some("viewers")), None);
        assert_eq!(r("carol", Some("admins"), None), Some(Role::Read));
        assert_eq!(r("alice", None, None), Some(Role::Read), "no admin group: nobody changes anything");
        assert_eq!(r("mallory", Some("admins"), None), None);
    }

    #[test]
    fn origins() {
        let h = Some("127.0.0.1:8404");
        assert!(same_origin(Some("http://127.0.0.1:8404"), None, h, false));
        assert!(!same_origin(Some("https://127.0.0.1:8404"), None, h, false));
        assert!(!same_origin(Some("http://evil.example"), Some("http://127.0.0.1:8404/console/"), h, false));
        assert!(same_origin(None, Some("http://127.0.0.1:8404/console/"), h, false));
        assert!(!same_origin(None, Some("http://127.0.0.1:84045/"), h, false));
        assert!(!same_origin(None, None, h, false));
        assert!(!same_origin(Some("null"), None, h, false));
        assert!(same_origin(Some("https://lb.example:443"), None, Some("lb.example:443"), true));
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie_token("a=1; lbha_console=T.1.M; b=2"), Some("T.1.M"));
        assert_eq!(cookie_token("lbha_consolex=1"), None);
        let c = set_cookie(Some("T"), 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"), "{c}");
        assert!(!set_cookie(Some("T"), 60, false).contains("Secure"));
    }
}
