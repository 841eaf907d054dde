//! `[cluster]`: config sync between the two nodes of a pair. The schema and its validation; the
//! sync itself is `crate::cluster`.

use super::error::{FieldPath, Problem};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the operator writes under `[cluster]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClusterDef {
    /// This node's name.
    pub node: String,
    /// `ADDR:PORT` of this node's sync listener.
    pub bind: String,
    /// The other node of the pair.
    pub peer: Option<PeerDef>,
    /// PEM file with this node's certificate and key for the sync listener and client (mutual TLS).
    pub ssl_crt: Option<String>,
    /// Shared key authenticating every sync message (HMAC-SHA256), inline or in a file.
    pub key: Option<String>,
    pub key_file: Option<String>,
    /// `"auto"` (default): every change is offered to the peer; `"manual"`: only `lbha cluster push`.
    pub sync: Option<String>,
    /// Node-local settings added to the built-in list (see [`DEFAULT_LOCAL_KEYS`]).
    pub local_keys: Vec<String>,
    /// How long a sync exchange with the peer may take before the peer counts as unreachable.
    pub timeout: Option<super::units::ConfDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PeerDef {
    pub name: String,
    /// `ADDR:PORT` of the peer's sync listener.
    pub addr: String,
    /// SHA-256 of the peer's certificate (DER), hex with or without colons (`openssl x509 -fingerprint -sha256`).
    pub fingerprint: Option<String>,
}

/// Settings no node shares: what each node keeps of its own file when it takes the peer's.
/// Dotted paths; in an array of tables a segment is an element's `name` or `*` for all.
pub const DEFAULT_LOCAL_KEYS: &[&str] = &[
    "cluster",
    "vrrp_instance.*.priority",
    "vrrp_instance.*.state",
    "vrrp_instance.*.unicast_src_ip",
    "vrrp_instance.*.unicast_peer",
    "global.localpeer",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Auto,
    Manual,
}

/// `[cluster]` validated: certificate loaded, key read, patterns checked.
#[derive(Clone)]
pub struct ClusterSettings {
    pub node: String,
    pub bind: SocketAddr,
    pub peer_name: String,
    pub peer_addr: SocketAddr,
    pub peer_fingerprint: Option<[u8; 32]>,
    pub key: Option<Arc<Vec<u8>>>,
    pub cert: Arc<CertifiedKey>,
    pub sync: SyncMode,
    /// Built-in local keys followed by the operator's.
    pub local_keys: Vec<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for ClusterSettings {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("node", &self.node)
            .field("bind", &self.bind)
            .field("peer_name", &self.peer_name)
            .field("peer_addr", &self.peer_addr)
            .field("sync", &self.sync)
            .field("local_keys", &self.local_keys)
            .finish()
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// A shorter shared key is too easy to guess offline from one captured message.
const MIN_KEY_LEN: usize = 16;

pub(super) fn validate(c: &ClusterDef, base_dir: &Path, problems: &mut Vec<Problem>) -> Option<ClusterSettings> {
    let p = FieldPath::root().key("cluster");
    let start = problems.len();
    let mut err = |path: FieldPath, msg: String, v: Option<&str>| {
        let pr = Problem::new(path, msg);
        problems.push(match v {
            Some(v) => pr.with_value(v),
            None => pr,
        });
    };
    if c.node.trim().is_empty() {
        err(p.key("node"), "missing: this node's name".into(), None);
    }
    let addr = |s: &str, key: &str, err: &mut dyn FnMut(FieldPath, String, Option<&str>), p: &FieldPath| {
        if s.is_empty() {
            err(p.key(key), "missing: ADDR:PORT".into(), None);
            return None;
        }
        match super::validate::parse_bind(s) {
            Ok(a) if a.port() == 0 => {
                err(p.key(key), "port must not be 0".into(), Some(s));
                None
            }
            Ok(a) => Some(a),
            Err(e) => {
                err(p.key(key), e, Some(s));
                None
            }
        }
    };
    let bind = addr(&c.bind, "bind", &mut err, &p);
    let (mut peer_name, mut peer_addr, mut fingerprint) = (String::new(), None, None);
    match &c.peer {
        None => err(p.key("peer"), "missing: `peer = { name = \"b\", addr = \"ADDR:PORT\" }`".into(), None),
        Some(peer) => {
            let pp = p.key("peer");
            if peer.name.trim().is_empty() {
                err(pp.key("name"), "missing: the peer's node name".into(), None);
            } else if peer.name == c.node {
                err(pp.key("name"), "the peer must have another name than this node".into(), Some(&peer.name));
            }
            peer_name = peer.name.clone();
            peer_addr = addr(&peer.addr, "addr", &mut err, &pp);
            if peer_addr.is_some_and(|a| a.ip().is_unspecified()) {
                err(pp.key("addr"), "needs the peer's address, not a wildcard".into(), Some(&peer.addr));
            }
            if let Some(f) = &peer.fingerprint {
                match parse_fingerprint(f) {
                    Some(d) => fingerprint = Some(d),
                    None => err(
                        pp.key("fingerprint"),
                        "expected a SHA-256 fingerprint: 64 hex digits, colons allowed".into(),
                        Some(f),
                    ),
                }
            }
        }
    }
    let cert = match &c.ssl_crt {
        None => {
            err(
                p.key("ssl_crt"),
                "missing: sync traffic is always TLS; name this node's PEM file (certificate and key)".into(),
                None,
            );
            None
        }
        Some(crt) => match crate::tls::load_certs(&base_dir.join(crt)) {
            Ok(mut v) if !v.is_empty() => Some(v.remove(0)),
            Ok(_) => None,
            Err(e) => {
                err(p.key("ssl_crt"), e.to_string(), Some(crt));
                None
            }
        },
    };
    let key = match (&c.key, &c.key_file) {
        (Some(_), Some(_)) => {
            err(p.key("key_file"), "give `key` or `key_file`, not both".into(), None);
            None
        }
        (Some(k), None) => Some(k.trim().as_bytes().to_vec()),
        (None, Some(f)) => match std::fs::read_to_string(base_dir.join(f)) {
            Ok(k) => Some(k.trim().as_bytes().to_vec()),
            Err(e) => {
                err(p.key("key_file"), format!("cannot read: {e}"), Some(f));
                None
            }
        },
        (None, None) => None,
    };
    if let Some(k) = &key
        && k.len() < MIN_KEY_LEN
    {
        let which = if c.key.is_some() { "key" } else { "key_file" };
        err(p.key(which), format!("the shared key must have at least {MIN_KEY_LEN} characters"), None);
    }
    if key.is_none() && fingerprint.is_none() && c.key.is_none() && c.key_file.is_none() {
        err(
            p.clone(),
            "no authentication: set `key`/`key_file` (shared key) and/or `peer.fingerprint` (pinned certificate)"
                .into(),
            None,
        );
    }
    let sync = match c.sync.as_deref() {
        None | Some("auto") => SyncMode::Auto,
        Some("manual") => SyncMode::Manual,
        Some(s) => {
            err(p.key("sync"), "expected \"auto\" or \"manual\"".into(), Some(s));
            SyncMode::Auto
        }
    };
    let mut local_keys: Vec<String> = DEFAULT_LOCAL_KEYS.iter().map(|s| s.to_string()).collect();
    for (i, k) in c.local_keys.iter().enumerate() {
        if let Err(e) = check_pattern(k) {
            err(p.key("local_keys").index(i), e, Some(k));
        } else if !local_keys.contains(k) {
            local_keys.push(k.clone());
        }
    }
    let timeout = c.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        err(p.key("timeout"), "must be more than 0".into(), Some("0"));
    }
    if problems.len() > start {
        return None;
    }
    Some(ClusterSettings {
        node: c.node.clone(),
        bind: bind?,
        peer_name,
        peer_addr: peer_addr?,
        peer_fingerprint: fingerprint,
        key: key.map(Arc::new),
        cert: cert?,
        sync,
        local_keys,
        timeout,
    })
}

/// `AB:CD:...` or `abcd...` (64 hex digits), with an optional `sha256:` / `SHA256 Fingerprint=` prefix.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s.rsplit_once('=').map_or(s, |(_, v)| v);
    let s = s.strip_prefix("sha256:").or_else(|| s.strip_prefix("SHA256:")).unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A local key is dotted segments of key characters or `*`.
fn check_pattern(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("must not be empty".into());
    }
    for seg in k.split('.') {
        let ok = !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || "_-*".contains(c));
        if !ok {
            return Err(format!("segment {seg:?}: expected a key, an element's name or `*`, separated by dots"));
        }
    }
    Ok(())
}

/// Where the sync state (version, hash, history) is kept.
pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("cluster.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_openssl_and_plain_forms() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&format!("SHA256 Fingerprint={colons}")), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&format!("sha256:{hex}")), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abcd"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn patterns_are_dotted_keys() {
        assert!(check_pattern("listen.stats.bind").is_ok());
        assert!(check_pattern("vrrp_instance.*.priority").is_ok());
        assert!(check_pattern("a..b").is_err());
        assert!(check_pattern("a b").is_err());
    }

    fn dir_with_cert(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbha-cluster-cfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
        std::fs::write(d.join("a.pem"), format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem())).unwrap();
        d
    }

    #[test]
    fn a_valid_section_and_located_errors() {
        let d = dir_with_cert("v");
        let ok = "[cluster]\nnode = \"a\"\nbind = \"127.0.0.1:7946\"\npeer = { name = \"b\", addr = \"127.0.0.2:7946\" }\n\
                  ssl_crt = \"a.pem\"\nkey = \"0123456789abcdef\"\nlocal_keys = [\"listen.stats.bind\"]\n";
        let snap = crate::config::parse(ok, &d.join("lbha.toml")).unwrap();
        let c = snap.cluster.unwrap();
        assert_eq!((c.node.as_str(), c.peer_name.as_str(), c.sync), ("a", "b", SyncMode::Auto));
        assert_eq!(c.local_keys.last().map(String::as_str), Some("listen.stats.bind"));
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "the key never shows");
        let bad = ok
            .replace("key = \"0123456789abcdef\"\n", "")
            .replace("node = \"a\"", "node = \"b\"")
            .replace("\"127.0.0.2:7946\"", "\"127.0.0.2:x\"")
            + "sync = \"sometimes\"\n";
        let e = crate::config::parse(&bad, &d.join("lbha.toml")).unwrap_err().to_string();
        for want in [
            "no authentication",
            "peer.name",
            "other name",
            "cluster.peer.addr",
            "invalid port",
            "cluster.sync",
            "\"auto\" or \"manual\"",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let short = ok.replace("0123456789abcdef", "short");
        let e = crate::config::parse(&short, &d.join("lbha.toml")).unwrap_err().to_string();
        assert!(e.contains("at least 16"), "{e}");
        let nocert = ok.replace("ssl_crt = \"a.pem\"\n", "");
        assert!(crate::config::parse(&nocert, &d.join("lbha.toml")).unwrap_err().to_string().contains("always TLS"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
