//! The certificates of one bind and how a handshake picks one: by SNI (exact names before
//! wildcards, `crt-list` filters with negations), then by what the client can verify (an ECDSA
//! and an RSA certificate for one name), else the bind's first certificate, as in HAProxy.

use super::TlsError;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One certificate and the names it serves.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Arc<CertifiedKey>,
    /// Lower-case names, `*.example.com` for wildcards.
    pub names: Vec<String>,
    /// `!name` filters of a `crt-list` line.
    pub negated: Vec<String>,
    /// The file the certificate came from: `set ssl cert FILE` replaces it at runtime.
    pub file: Option<PathBuf>,
    /// The names came from `crt-list` filters, so a new certificate in the file keeps them.
    pub fixed_names: bool,
    /// Which option set its handshakes use: 0 the bind's, n the n-th distinct `[options]` of
    /// the bind's `crt-list` lines (see [`super::lines`]).
    pub group: usize,
}

impl Entry {
    /// An entry serving the certificate's own names.
    pub fn own(key: Arc<CertifiedKey>, file: Option<PathBuf>) -> Entry {
        Entry { names: cert_names(&key), key, negated: Vec::new(), file, fixed_names: false, group: 0 }
    }
}

/// The names in a certificate: its DNS subject alternative names, else its common name.
pub fn cert_names(ck: &CertifiedKey) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Some(der) = ck.cert.first() else { return Vec::new() };
    let Ok((_, c)) = X509Certificate::from_der(der) else { return Vec::new() };
    let mut names: Vec<String> = match c.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(c.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    names
}

/// How well `name` fits `sni`: 2 exact, 1 wildcard (one label), 0 not.
fn fit(name: &str, sni: &str) -> u8 {
    if name == sni {
        return 2;
    }
    match (name.strip_prefix("*."), sni.split_once('.')) {
        (Some(dom), Some((label, rest))) if !label.is_empty() && rest == dom => 1,
        _ => 0,
    }
}

impl Entry {
    fn fit(&self, sni: &str) -> u8 {
        // `!*`: the line never matches by name, it is only a fallback (HAProxy's idiom).
        if self.negated.iter().any(|n| n == "*" || fit(n, sni) > 0) {
            return 0;
        }
        self.names.iter().map(|n| fit(n, sni)).max().unwrap_or(0)
    }
}

/// One line of a `crt-list` file: `FILE [[options ...]] [[!]filter ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    /// 1-based, for errors.
    pub line: usize,
    pub file: PathBuf,
    /// The words between `[` and `]` (bind ssl options for this certificate's handshakes).
    pub options: Vec<String>,
    /// Lower-case SNI filters, `!name` for negations.
    pub filters: Vec<String>,
}

/// The lines of a `crt-list` file; relative certificate paths are taken from `base`.
pub fn parse_crt_list(text: &str, base: &Path) -> Result<Vec<ListLine>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (file, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if file.starts_with('[') {
            return Err(format!("line {}: the certificate file comes first, then [options]", i + 1));
        }
        let mut rest = rest.trim();
        let mut options = Vec::new();
        if let Some(r) = rest.strip_prefix('[') {
            let Some((opts, after)) = r.split_once(']') else {
                return Err(format!("line {}: `[` without `]`", i + 1));
            };
            options = opts.split_whitespace().map(str::to_string).collect();
            rest = after.trim();
        }
        let filters: Vec<String> = rest.split_whitespace().map(str::to_ascii_lowercase).collect();
        if let Some(f) = filters.iter().find(|f| f.contains(['[', ']'])) {
            return Err(format!("line {}: {f:?}: options go in one [...] right after the certificate file", i + 1));
        }
        out.push(ListLine { line: i + 1, file: base.join(file), options, filters });
    }
    if out.is_empty() {
        return Err("no certificate listed".into());
    }
    Ok(out)
}

/// Entries for a `crt-list` file: each line's certificate with its filters (its own names when
/// it has none). A line with `[options]` gets the group of its option set in `groups` (added
/// when new), which the caller builds a config for.
pub fn load_crt_list(
    path: &Path,
    crt_base: Option<&Path>,
    groups: &mut Vec<super::lines::Group>,
) -> Result<Vec<Entry>, TlsError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| TlsError::Read { path: path.to_path_buf(), error: e.to_string() })?;
    let base = crt_base.unwrap_or(path.parent().unwrap_or(Path::new(".")));
    let located = |error: String| TlsError::Ca { path: path.to_path_buf(), error };
    let lines = parse_crt_list(&text, base).map_err(located)?;
    let mut out = Vec::new();
    for l in lines {
        let group = if l.options.is_empty() {
            0
        } else {
            super::lines::group_of(groups, path, &l).map_err(|e| located(format!("line {}: {e}", l.line)))?
        };
        for (file, key) in super::load_files(&l.file)? {
            let (negated, names): (Vec<String>, Vec<String>) =
                l.filters.iter().cloned().partition(|f| f.starts_with('!'));
            let negated = negated.into_iter().map(|n| n[1..].to_string()).collect();
            let fixed_names = !names.is_empty();
            let names = if names.is_empty() { cert_names(&key) } else { names };
            out.push(Entry { key, names, negated, file: Some(file), fixed_names, group });
        }
    }
    Ok(out)
}

/// The entries a handshake sees, with the candidates per name found so far; replaced whole by
/// `commit ssl cert`, so a handshake never sees a cache from older names.
#[derive(Debug)]
struct State {
    entries: Vec<Entry>,
    cache: Mutex<HashMap<String, Arc<[usize]>>>,
}

/// Picks the certificate for a handshake; remembers the candidates per name.
#[derive(Debug)]
pub struct Resolver {
    state: ArcSwap<State>,
    strict_sni: bool,
}

impl Resolver {
    pub fn new(entries: Vec<Entry>, strict_sni: bool) -> Resolver {
        Resolver { state: ArcSwap::from_pointee(State { entries, cache: Mutex::new(HashMap::new()) }), strict_sni }
    }

    /// The files whose certificates this resolver serves.
    pub fn files(&self) -> Vec<PathBuf> {
        self.state.load().entries.iter().filter_map(|e| e.file.clone()).collect()
    }

    /// What `file` serves now.
    pub fn key_of(&self, file: &Path) -> Option<Arc<CertifiedKey>> {
        self.state.load().entries.iter().find(|e| e.file.as_deref() == Some(file)).map(|e| e.key.clone())
    }

    /// Serves `key` instead of what came from `file` (its own names, unless `crt-list` filters
    /// fixed them); new handshakes see it at once. How many entries changed.
    pub fn replace(&self, file: &Path, key: &Arc<CertifiedKey>) -> usize {
        let mut entries = self.state.load().entries.clone();
        let mut n = 0;
        for e in entries.iter_mut().filter(|e| e.file.as_deref() == Some(file)) {
            e.key = key.clone();
            if !e.fixed_names {
                e.names = cert_names(key);
            }
            n += 1;
        }
        if n > 0 {
            self.state.store(Arc::new(State { entries, cache: Mutex::new(HashMap::new()) }));
        }
        n
    }

    /// Entries serving `sni`, best fit first (exact names before wildcards, then file order).
    pub fn candidates(&self, sni: &str) -> Arc<[usize]> {
        Self::candidates_in(&self.state.load(), sni)
    }

    fn candidates_in(st: &State, sni: &str) -> Arc<[usize]> {
        let sni = sni.to_ascii_lowercase();
        let mut cache = st.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&sni) {
            return c.clone();
        }
        let fits: Vec<(u8, usize)> = st.entries.iter().enumerate().map(|(i, e)| (e.fit(&sni), i)).collect();
        let best = fits.iter().map(|f| f.0).max().unwrap_or(0);
        let c: Arc<[usize]> =
            if best == 0 { Arc::from([]) } else { fits.iter().filter(|f| f.0 == best).map(|f| f.1).collect() };
        if cache.len() < 10_000 {
            cache.insert(sni, c.clone());
        }
        c
    }

    /// The first candidate whose key the client can verify, else the first candidate, else the
    /// default (first) certificate.
    pub fn pick(&self, sni: Option<&str>, schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let st = self.state.load();
        self.choose(&st, sni, schemes, None).map(|i| st.entries[i].key.clone())
    }

    /// The option group of the entry [`Self::pick`] takes (`None`: none, so no handshake).
    pub fn group_of(&self, sni: Option<&str>, schemes: &[rustls::SignatureScheme]) -> Option<usize> {
        let st = self.state.load();
        self.choose(&st, sni, schemes, None).map(|i| st.entries[i].group)
    }

    /// The entry index a handshake gets; with `group`, only that group's entries (the same
    /// choice as without when the group was [`Self::group_of`]'s, else the group's best).
    fn choose(
        &self,
        st: &State,
        sni: Option<&str>,
        schemes: &[rustls::SignatureScheme],
        group: Option<usize>,
    ) -> Option<usize> {
        let entries = &st.entries;
        let cands = sni.map(|s| Self::candidates_in(st, s)).unwrap_or_else(|| Arc::from([]));
        let mut pool: Vec<usize> = if cands.is_empty() && self.strict_sni {
            return None;
        } else if cands.is_empty() {
            // No name matched: HAProxy's default certificate, with its same-name siblings.
            let first = entries.first()?;
            (0..entries.len()).filter(|i| entries[*i].names == first.names).collect()
        } else {
            cands.to_vec()
        };
        if let Some(g) = group {
            pool.retain(|i| entries[*i].group == g);
            // Only when a `commit ssl cert` changed the names between the two choices.
            if pool.is_empty() {
                pool = (0..entries.len()).filter(|i| entries[*i].group == g).collect();
            }
        }
        pool.iter().find(|i| entries[**i].key.key.choose_scheme(schemes).is_some()).or(pool.first()).copied()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name(), hello.signature_schemes())
    }
}

/// The certificates of one option group of a bind: the config built for a `crt-list` line's
/// options serves only that line's certificates, whatever a later choice would say.
#[derive(Debug)]
pub struct GroupResolver {
    pub all: Arc<Resolver>,
    pub group: usize,
}

impl ResolvesServerCert for GroupResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let st = self.all.state.load();
        let i = self.all.choose(&st, hello.server_name(), hello.signature_schemes(), Some(self.group))?;
        Some(st.entries[i].key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::SignatureScheme as S;

    /// ring cannot generate RSA keys: a fixed test key stands in.
    const RSA_KEY: &str = include_str!("testdata/rsa2048.key");

    fn key(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Arc<CertifiedKey> {
        let kp = if alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::from_pem_and_sign_algo(RSA_KEY, alg).unwrap()
        } else {
            rcgen::KeyPair::generate_for(alg).unwrap()
        };
        let cert = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        let der = rustls_pki_types::PrivateKeyDer::try_from(kp.serialize_der()).unwrap();
        Arc::new(CertifiedKey::from_der(vec![cert.der().clone()], der, &super::super::provider()).unwrap())
    }

    fn entry(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Entry {
        Entry::own(key(names, alg), None)
    }

    #[test]
    fn exact_before_wildcard_and_key_type_by_client() {
        let ec = &rcgen::PKCS_ECDSA_P256_SHA256;
        let rsa = &rcgen::PKCS_RSA_SHA256;
        let r = Resolver::new(
            vec![
                entry(&["default.example"], ec),
                entry(&["*.shop.example"], ec),
                entry(&["www.shop.example"], ec),
                entry(&["www.shop.example"], rsa),
            ],
            false,
        );
        assert_eq!(&*r.candidates("WWW.shop.example"), [2, 3]);
        assert_eq!(&*r.candidates("api.shop.example"), [1]);
        assert!(r.candidates("a.b.shop.example").is_empty(), "a wildcard covers one label");
        let rsa_only = [S::RSA_PSS_SHA256, S::RSA_PKCS1_SHA256];
        let ec_only = [S::ECDSA_NISTP256_SHA256];
        let pick = |sni, schemes: &[S]| r.pick(sni, schemes).unwrap().cert[0].clone();
        assert_eq!(pick(Some("www.shop.example"), &rsa_only), r.state.load().entries[3].key.cert[0]);
        assert_eq!(pick(Some("www.shop.example"), &ec_only), r.state.load().entries[2].key.cert[0]);
        assert_eq!(pick(Some("nothing.example"), &ec_only), r.state.load().entries[0].key.cert[0], "the default");
        assert_eq!(pick(None, &rsa_only), r.state.load().entries[0].key.cert[0], "no fit: the default anyway");
        let strict = Resolver::new(r.state.load().entries.clone(), true);
        assert!(strict.pick(Some("nothing.example"), &ec_only).is_none(), "strict-sni");
        assert!(strict.pick(Some("www.shop.example"), &ec_only).is_some());
    }

    #[test]
    fn crt_list_lines_and_filters() {
        let l = parse_crt_list(
            "# comment\n\na.pem\nb.pem [] *.example.org !Secret.example.org\n  c.pem [alpn h2,http/1.1 verify required ca-file ca.pem]\nd.pem [ssl-min-ver TLSv1.3] x.test\n",
            Path::new("/c"),
        )
        .unwrap();
        assert_eq!(l[0], ListLine { line: 3, file: PathBuf::from("/c/a.pem"), options: vec![], filters: vec![] });
        assert_eq!((l[1].line, &l[1].options), (4, &Vec::<String>::new()));
        assert_eq!(l[1].filters, ["*.example.org", "!secret.example.org"]);
        assert_eq!(l[2].options, ["alpn", "h2,http/1.1", "verify", "required", "ca-file", "ca.pem"]);
        assert!(l[2].filters.is_empty());
        assert_eq!((l[3].line, l[3].options.len(), &l[3].filters[..]), (6, 2, &["x.test".to_string()][..]));
        let e = parse_crt_list("a.pem\n\nb.pem [alpn h2\n", Path::new("/")).unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("without `]`"), "{e}");
        assert!(parse_crt_list("a.pem x.test [alpn h2]\n", Path::new("/")).unwrap_err().starts_with("line 1:"));
        assert!(parse_crt_list("[alpn h2] a.pem\n", Path::new("/")).unwrap_err().starts_with("line 1:"));
        assert!(parse_crt_list("# none\n", Path::new("/")).is_err());
        let mut e = entry(&["x.example"], &rcgen::PKCS_ECDSA_P256_SHA256);
        e.names = vec!["*.example.org".into()];
        e.negated = vec!["secret.example.org".into()];
        assert_eq!((e.fit("www.example.org"), e.fit("secret.example.org")), (1, 0));
        e.negated = vec!["*".into()];
        assert_eq!(e.fit("www.example.org"), 0, "`!*`: a fallback only");
    }

    #[test]
    fn groups_follow_the_chosen_entry() {
        let ec = &rcgen::PKCS_ECDSA_P256_SHA256;
        let rsa = &rcgen::PKCS_RSA_SHA256;
        let mut e = vec![entry(&["a.test"], ec), entry(&["b.test"], ec), entry(&["b.test"], rsa)];
        e[1].group = 1;
        e[2].group = 2;
        let r = Arc::new(Resolver::new(e, false));
        let ec_only = [S::ECDSA_NISTP256_SHA256];
        let rsa_only = [S::RSA_PSS_SHA256];
        assert_eq!(r.group_of(Some("a.test"), &ec_only), Some(0));
        assert_eq!(r.group_of(Some("b.test"), &ec_only), Some(1));
        assert_eq!(r.group_of(Some("b.test"), &rsa_only), Some(2), "the key type chooses the line");
        assert_eq!(r.group_of(Some("other.test"), &ec_only), Some(0), "the default's line");
        let st = r.state.load();
        assert_eq!(r.choose(&st, Some("b.test"), &ec_only, Some(2)), Some(2), "a group serves only its own");
        assert_eq!(r.choose(&st, Some("b.test"), &rsa_only, Some(1)), Some(1));
        let strict = Resolver::new(st.entries.clone(), true);
        assert_eq!(strict.group_of(Some("other.test"), &ec_only), None);
    }
}
