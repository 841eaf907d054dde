//! HAProxy's TLS policy options (`ciphers`, `ciphersuites`, `curves`, `ssl-min-ver`, `no-tlsv12`,
//! ...) mapped onto what rustls offers. An OpenSSL cipher string is evaluated against rustls's
//! suites with OpenSSL's aliases; names rustls lacks are left out with a warning while something
//! else stays allowed, and are an error naming the option when nothing would be left.

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// TLS protocol versions as HAProxy names them, oldest first.
const VERSION_NAMES: [&str; 5] = ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
const TLS12: usize = 3;
const TLS13: usize = 4;

/// The options of one bind or server side, applied in order on top of the `global` defaults.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    pub curves: Option<String>,
    min: Option<usize>,
    max: Option<usize>,
    no: [bool; 5],
    force: Option<usize>,
    pub prefer_client_ciphers: bool,
    /// `no-tls-tickets`: towards servers, TLS 1.2 resumption by session id only.
    pub no_tls_tickets: bool,
}

/// What the policy leaves: for `builder_with_provider(...).with_protocol_versions(...)`.
pub struct Resolved {
    pub provider: CryptoProvider,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// Whether the operator ordered the suites (HAProxy prefers the server's order then).
    pub server_order: bool,
    pub warnings: Vec<String>,
}

fn version(name: &str) -> Result<usize, String> {
    VERSION_NAMES
        .iter()
        .position(|v| *v == name)
        .ok_or_else(|| format!("unknown TLS version {name:?} (SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)"))
}

impl Policy {
    /// Applies one option word (`arg` yields its value); `Ok(false)` when the word is not a
    /// policy option. Errors name the option.
    pub fn apply(&mut self, word: &str, arg: &mut dyn FnMut() -> Option<String>) -> Result<bool, String> {
        let mut val = |what: &str| arg().ok_or_else(|| format!("`{word}` needs {what}"));
        match word {
            "ciphers" => self.ciphers = Some(val("an OpenSSL cipher list")?),
            "ciphersuites" => self.ciphersuites = Some(val("a TLS 1.3 cipher suite list")?),
            "curves" => self.curves = Some(val("a curve list")?),
            "ecdhe" => self.curves = Some(val("a curve name")?),
            "ssl-min-ver" => self.min = Some(version(&val("a version")?).map_err(|e| format!("ssl-min-ver: {e}"))?),
            "ssl-max-ver" => self.max = Some(version(&val("a version")?).map_err(|e| format!("ssl-max-ver: {e}"))?),
            "no-sslv3" => self.no[0] = true,
            "no-tlsv10" => self.no[1] = true,
            "no-tlsv11" => self.no[2] = true,
            "no-tlsv12" => self.no[TLS12] = true,
            "no-tlsv13" => self.no[TLS13] = true,
            "force-sslv3" => self.force = Some(0),
            "force-tlsv10" => self.force = Some(1),
            "force-tlsv11" => self.force = Some(2),
            "force-tlsv12" => self.force = Some(TLS12),
            "force-tlsv13" => self.force = Some(TLS13),
            "prefer-client-ciphers" => self.prefer_client_ciphers = true,
            // Binds: lbha issues no stateless session tickets (resumption uses its session cache).
            "no-tls-tickets" => self.no_tls_tickets = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `ssl-default-bind-options` and friends: a list of option words.
    pub fn apply_words(&mut self, text: &str) -> Result<(), String> {
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            let mut arg = || words.next().map(str::to_string);
            if !self.apply(w, &mut arg)? {
                return Err(format!("unknown or unsupported TLS option {w:?}"));
            }
        }
        Ok(())
    }

    /// The protocol versions left, as indexes into `VERSION_NAMES`, and the option to blame
    /// when they are empty for rustls.
    fn versions(&self) -> (Vec<usize>, String) {
        if let Some(f) = self.force {
            return (vec![f], format!("force-{}", VERSION_NAMES[f].to_lowercase().replace('.', "")));
        }
        // HAProxy 2.6's default minimum is TLS 1.2 too; a lower one must be asked for.
        let lo = self.min.unwrap_or(if self.max.is_some_and(|m| m < TLS12) { 0 } else { TLS12 });
        let hi = self.max.unwrap_or(TLS13);
        let on: Vec<usize> = (lo..=hi).filter(|v| !self.no[*v]).collect();
        let mut blame = Vec::new();
        if let Some(m) = self.min {
            blame.push(format!("ssl-min-ver {}", VERSION_NAMES[m]));
        }
        if let Some(m) = self.max {
            blame.push(format!("ssl-max-ver {}", VERSION_NAMES[m]));
        }
        for (i, n) in self.no.iter().enumerate() {
            if *n {
                blame.push(format!("no-{}", VERSION_NAMES[i].to_lowercase().replace('.', "")));
            }
        }
        (on, blame.join(", "))
    }

    pub fn resolve(&self) -> Result<Resolved, String> {
        let mut warnings = Vec::new();
        let (on, blame) = self.versions();
        let tls12 = on.contains(&TLS12);
        let tls13 = on.contains(&TLS13);
        if !tls12 && !tls13 {
            let left: Vec<&str> = on.iter().map(|v| VERSION_NAMES[*v]).collect();
            let left = if left.is_empty() { "no version".to_string() } else { format!("only {}", left.join(", ")) };
            return Err(format!("{blame}: leaves {left}, but lbha (rustls) speaks TLS 1.2 and 1.3 only"));
        }
        if on.iter().any(|v| *v < TLS12) {
            warnings.push("SSLv3, TLS 1.0 and 1.1 are never offered by lbha (rustls)".to_string());
        }
        let base = rustls::crypto::ring::default_provider();
        let mut suites12: Vec<SupportedCipherSuite> =
            base.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS12).collect();
        let mut suites13: Vec<SupportedCipherSuite> =
            base.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS13).collect();
        if let Some(c) = &self.ciphers {
            let (picked, unknown) = openssl_ciphers(c).map_err(|e| format!("ciphers: {e}"))?;
            if picked.is_empty() && tls12 {
                if !tls13 {
                    return Err(format!(
                        "ciphers {c:?}: none of these is a TLS 1.2 cipher lbha (rustls) supports ({})",
                        TLS12_SUITES.iter().map(|s| s.0).collect::<Vec<_>>().join(":")
                    ));
                }
                warnings.push(format!(
                    "ciphers {c:?}: no TLS 1.2 cipher lbha supports is left, so only TLS 1.3 is offered"
                ));
            } else if !unknown.is_empty() {
                warnings.push(format!("ciphers: not supported by rustls, left out: {}", unknown.join(":")));
            }
            suites12 = picked.iter().map(|i| suite12(*i)).collect();
        }
        if let Some(c) = &self.ciphersuites {
            let mut picked = Vec::new();
            let mut left = Vec::new();
            for name in c.split(':').map(str::trim).filter(|n| !n.is_empty()) {
                match TLS13_SUITES.iter().find(|s| s.0 == name) {
                    Some(s) => picked.push((s.1)()),
                    None if TLS13_OTHER.contains(&name) => left.push(name),
                    None => return Err(format!("ciphersuites: unknown TLS 1.3 cipher suite {name:?}")),
                }
            }
            if picked.is_empty() && tls13 {
                if !tls12 {
                    return Err(format!(
                        "ciphersuites {c:?}: none of these is a TLS 1.3 suite lbha (rustls) supports ({})",
                        TLS13_SUITES.iter().map(|s| s.0).collect::<Vec<_>>().join(":")
                    ));
                }
                warnings.push(format!(
                    "ciphersuites {c:?}: no TLS 1.3 suite lbha supports is left, so only TLS 1.2 is offered"
                ));
            } else if !left.is_empty() {
                warnings.push(format!("ciphersuites: not supported by rustls, left out: {}", left.join(":")));
            }
            suites13 = picked;
        }
        let use12 = tls12 && !suites12.is_empty();
        let use13 = tls13 && !suites13.is_empty();
        if !use12 && !use13 {
            return Err("ciphers/ciphersuites leave no cipher for the TLS versions allowed".to_string());
        }
        let mut versions = Vec::new();
        let mut cipher_suites = Vec::new();
        if use13 {
            versions.push(&rustls::version::TLS13);
            cipher_suites.extend(suites13);
        }
        if use12 {
            versions.push(&rustls::version::TLS12);
            cipher_suites.extend(suites12);
        }
        let mut kx_groups = base.kx_groups.clone();
        if let Some(c) = &self.curves {
            let (groups, left) = curves(c).map_err(|e| format!("curves: {e}"))?;
            if groups.is_empty() {
                return Err(format!("curves {c:?}: none of these is supported by lbha (rustls): X25519, P-256, P-384"));
            }
            if !left.is_empty() {
                warnings.push(format!("curves: not supported by rustls, left out: {}", left.join(":")));
            }
            kx_groups = groups;
        }
        let server_order = (self.ciphers.is_some() || self.ciphersuites.is_some()) && !self.prefer_client_ciphers;
        // rustls' own random values from a per-thread generator instead of a syscall each.
        let secure_random = &super::random::ThreadRandom;
        let provider = CryptoProvider { cipher_suites, kx_groups, secure_random, ..base };
        Ok(Resolved { provider, versions, server_order, warnings })
    }
}

/// rustls's TLS 1.2 suites under their OpenSSL names, with the OpenSSL aliases that select them.
const TLS12_SUITES: [(&str, &[&str]); 6] = [
    ("ECDHE-ECDSA-AES256-GCM-SHA384", &["ECDSA", "aECDSA", "AESGCM", "AES", "AES256"]),
    ("ECDHE-RSA-AES256-GCM-SHA384", &["aRSA", "AESGCM", "AES", "AES256"]),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", &["ECDSA", "aECDSA", "CHACHA20"]),
    ("ECDHE-RSA-CHACHA20-POLY1305", &["aRSA", "CHACHA20"]),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", &["ECDSA", "aECDSA", "AESGCM", "AES", "AES128"]),
    ("ECDHE-RSA-AES128-GCM-SHA256", &["aRSA", "AESGCM", "AES", "AES128"]),
];

/// Aliases every rustls TLS 1.2 suite answers to.
const ALIASES_ALL: &[&str] =
    &["ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDH", "kECDH", "FIPS"];

/// OpenSSL aliases that select none of rustls's suites (key exchanges, ciphers and MACs it lacks).
const ALIASES_NONE: &[&str] = &[
    "COMPLEMENTOFDEFAULT",
    "COMPLEMENTOFALL",
    "RSA",
    "kRSA",
    "DH",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "kDH",
    "ADH",
    "AECDH",
    "aECDH",
    "aNULL",
    "eNULL",
    "NULL",
    "MD5",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "RC4",
    "RC2",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "EXP",
    "EXPORT",
    "LOW",
    "MEDIUM",
    "PSK",
    "kPSK",
    "aPSK",
    "ECDHEPSK",
    "DHEPSK",
    "RSAPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "DSS",
    "aDSS",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "AESCCM",
    "AESCCM8",
    "SSLv3",
    "TLSv1.0",
    "TLSv1",
    "GOST94",
    "GOST89MAC",
    "kGOST",
    "aGOST",
    "aGOST01",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
    "CBC",
];

fn suite12(i: usize) -> SupportedCipherSuite {
    use rustls::crypto::ring::cipher_suite as cs;
    [
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ][i]
}

/// The OpenSSL name of a negotiated suite (what HAProxy's `%sslc` and `ssl_fc_cipher` print).
pub fn openssl_name(suite: rustls::CipherSuite) -> Option<&'static str> {
    let tls12 = (0..TLS12_SUITES.len()).find(|&i| suite12(i).suite() == suite).map(|i| TLS12_SUITES[i].0);
    tls12.or_else(|| TLS13_SUITES.iter().find(|(_, f)| f().suite() == suite).map(|(n, _)| *n))
}

type SuiteFn = fn() -> SupportedCipherSuite;
const TLS13_SUITES: [(&str, SuiteFn); 3] = [
    ("TLS_AES_128_GCM_SHA256", || rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", || rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", || rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
];
const TLS13_OTHER: &[&str] = &["TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"];

/// Which of `TLS12_SUITES` one term (`ECDHE+AESGCM`, `aRSA`, a cipher name) selects; `None`
/// for a term OpenSSL knows but rustls has nothing for, `Err` for an unknown alias.
fn term(t: &str) -> Result<Option<Vec<usize>>, String> {
    if let Some(i) = TLS12_SUITES.iter().position(|s| s.0 == t) {
        return Ok(Some(vec![i]));
    }
    // An OpenSSL cipher name (they all have dashes) or a TLS 1.3 name: not a rustls TLS 1.2 suite.
    if t.contains('-') || t.starts_with("TLS_") {
        return Ok(None);
    }
    let mut set: Vec<usize> = (0..TLS12_SUITES.len()).collect();
    for alias in t.split('+') {
        if ALIASES_ALL.contains(&alias) {
            continue;
        }
        if ALIASES_NONE.contains(&alias) {
            set.clear();
        } else if TLS12_SUITES.iter().any(|s| s.1.contains(&alias)) {
            set.retain(|i| TLS12_SUITES[*i].1.contains(&alias));
        } else {
            return Err(format!("unknown cipher or alias {alias:?}"));
        }
    }
    Ok(Some(set))
}

/// Evaluates an OpenSSL cipher string (`HIGH:!aNULL`, `ECDHE+AESGCM:-aRSA`, names, `@STRENGTH`)
/// over rustls's TLS 1.2 suites: the suites chosen in order, and the names rustls lacks.
pub fn openssl_ciphers(s: &str) -> Result<(Vec<usize>, Vec<String>), String> {
    let (mut list, mut banned, mut unknown) = (Vec::<usize>::new(), Vec::<usize>::new(), Vec::new());
    for raw in s.split([':', ',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        if raw.starts_with('@') {
            continue;
        }
        let (op, t) = match raw.as_bytes()[0] {
            b'!' | b'-' | b'+' => (raw.as_bytes()[0], &raw[1..]),
            _ => (0, raw),
        };
        let sel = match term(t)? {
            Some(sel) => sel,
            None => {
                if op == 0 {
                    unknown.push(t.to_string());
                }
                continue;
            }
        };
        match op {
            b'!' => {
                list.retain(|i| !sel.contains(i));
                banned.extend(sel);
            }
            b'-' => list.retain(|i| !sel.contains(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) = list.iter().partition(|i| sel.contains(i));
                list = kept.into_iter().chain(moved).collect();
            }
            _ => {
                if sel.is_empty() && !ALIASES_ALL.contains(&t) {
                    unknown.push(t.to_string());
                }
                for i in sel {
                    if !list.contains(&i) && !banned.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    Ok((list, unknown))
}

/// `openssl_ciphers` with OpenSSL's names of the suites chosen.
pub fn openssl_cipher_names(s: &str) -> Result<(Vec<&'static str>, Vec<String>), String> {
    let (picked, unknown) = openssl_ciphers(s)?;
    Ok((picked.iter().map(|i| TLS12_SUITES[*i].0).collect(), unknown))
}

/// OpenSSL group names: the rustls groups in the order given, and the known ones rustls lacks.
fn curves(s: &str) -> Result<(Vec<&'static dyn SupportedKxGroup>, Vec<String>), String> {
    use rustls::crypto::ring::kx_group;
    let (mut out, mut left): (Vec<&'static dyn SupportedKxGroup>, Vec<String>) = (Vec::new(), Vec::new());
    for c in s.split(':').map(str::trim).filter(|c| !c.is_empty()) {
        let g: &'static dyn SupportedKxGroup = match c {
            "X25519" | "x25519" => kx_group::X25519,
            "P-256" | "prime256v1" | "secp256r1" => kx_group::SECP256R1,
            "P-384" | "secp384r1" => kx_group::SECP384R1,
            "P-521" | "secp521r1" | "X448" | "x448" | "ffdhe2048" | "ffdhe3072" | "ffdhe4096" | "ffdhe6144"
            | "ffdhe8192" | "brainpoolP256r1" | "brainpoolP384r1" | "brainpoolP512r1" => {
                left.push(c.to_string());
                continue;
            }
            other => return Err(format!("unknown curve {other:?}")),
        };
        if !out.iter().any(|o| o.name() == g.name()) {
            out.push(g);
        }
    }
    Ok((out, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<&'static str> {
        openssl_cipher_names(s).unwrap().0
    }

    fn policy(words: &str) -> Policy {
        let mut p = Policy::default();
        p.apply_words(words).unwrap();
        p
    }

    #[test]
    fn cipher_strings_follow_openssl() {
        assert_eq!(names("HIGH:!aNULL:!MD5").len(), 6);
        assert_eq!(names("ECDHE+AESGCM:!aRSA"), ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
        assert!(names("RSA+AESGCM").is_empty(), "RSA means RSA key exchange in OpenSSL");
        assert_eq!(names("ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA"), ["ECDHE-RSA-AES128-GCM-SHA256"]);
        assert_eq!(openssl_ciphers("ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA").unwrap().1, ["AES256-SHA"]);
        assert_eq!(
            names("CHACHA20:AES128:+CHACHA20")[..2],
            ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
        );
        assert!(names("!ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256").is_empty(), "! bans for good");
        assert_eq!(names("-ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256"), ["ECDHE-ECDSA-AES128-GCM-SHA256"]);
        assert!(openssl_ciphers("HIGH:!BOGUS").unwrap_err().contains("BOGUS"), "an unknown exclusion never fails open");
    }

    #[test]
    fn versions_map_or_fail_naming_the_option() {
        let r = policy("ssl-min-ver TLSv1.3").resolve().unwrap();
        assert_eq!(r.versions, [&rustls::version::TLS13]);
        assert!(r.provider.cipher_suites.iter().all(|s| s.version() == &rustls::version::TLS13));
        let r = policy("no-tlsv13").resolve().unwrap();
        assert_eq!(r.versions, [&rustls::version::TLS12]);
        let e = policy("ssl-max-ver TLSv1.1").resolve().err().unwrap();
        assert!(e.contains("ssl-max-ver TLSv1.1") && e.contains("TLS 1.2 and 1.3"), "{e}");
        let e = policy("force-tlsv10").resolve().err().unwrap();
        assert!(e.starts_with("force-tlsv10"), "{e}");
        let r = policy("ssl-min-ver TLSv1.0").resolve().unwrap();
        assert_eq!(r.versions.len(), 2);
        assert_eq!(r.warnings.len(), 1);
        assert!(Policy::default().apply_words("ssl-min-ver TLSv9").unwrap_err().contains("TLSv9"));
        assert!(Policy::default().apply_words("strict-sni").unwrap_err().contains("strict-sni"));
    }

    #[test]
    fn ciphers_only_unsupported_is_an_error_mixed_is_a_warning() {
        let e = policy("ssl-max-ver TLSv1.2 ciphers AES128-SHA:DHE-RSA-AES128-GCM-SHA256").resolve().err().unwrap();
        assert!(e.starts_with("ciphers"), "{e}");
        let r = policy("ciphers AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256").resolve().unwrap();
        assert_eq!(r.provider.cipher_suites.len(), 4, "three TLS 1.3 suites and one TLS 1.2");
        assert!(r.warnings[0].contains("AES128-SHA") && r.server_order);
        let e = policy("no-tlsv12 ciphersuites TLS_AES_128_CCM_SHA256").resolve().err().unwrap();
        assert!(e.starts_with("ciphersuites"), "{e}");
        assert!(policy("ciphersuites TLS_FOO").resolve().err().unwrap().contains("TLS_FOO"));
        let r = policy("ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256").resolve().unwrap();
        assert_eq!(r.provider.cipher_suites.len(), 7);
    }

    #[test]
    fn negotiated_suites_have_openssl_names() {
        use rustls::CipherSuite as C;
        assert_eq!(openssl_name(C::TLS13_AES_256_GCM_SHA384), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(openssl_name(C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), Some("ECDHE-RSA-AES128-GCM-SHA256"));
        assert_eq!(openssl_name(C::TLS_RSA_WITH_AES_128_CBC_SHA), None);
    }

    #[test]
    fn curves_map_to_groups() {
        let r = policy("curves P-384:X448:prime256v1").resolve().unwrap();
        let n: Vec<_> = r.provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(n, [rustls::NamedGroup::secp384r1, rustls::NamedGroup::secp256r1]);
        assert!(r.warnings[0].contains("X448"));
        assert!(policy("curves X448").resolve().err().unwrap().starts_with("curves"));
        assert!(policy("curves nope").resolve().err().unwrap().contains("nope"));
    }
}
