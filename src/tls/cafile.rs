//! CA and CRL files as the runtime API sees them (HAProxy's `ca-file`/`crl-file` trees): each
//! bind asking for client certificates verifies them through a [`ClientAuth`] whose verifier is
//! swapped whole by `commit ssl ca-file|crl-file`, as [`super::certs::Resolver`] swaps its
//! certificates; new handshakes see a commit at once. One open transaction per kind, process-wide
//! as in HAProxy. A commit is checked by building every affected bind's verifier first: any
//! failure refuses it and nothing changes. The disk is written by the caller's `persist`, before
//! anything is swapped, so a reload reads what was committed.

use arc_swap::ArcSwap;
use rustls::DistinguishedName;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// Which tree a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Ca,
    Crl,
}

impl Kind {
    /// `CA` / `CRL`, as HAProxy's replies name them.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Ca => "CA",
            Kind::Crl => "CRL",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Ca => "CERTIFICATE",
            Kind::Crl => "X509 CRL",
        }
    }
}

/// What a bind's verifier trusts now.
struct Live {
    roots: Arc<Vec<Vec<u8>>>,
    crls: Arc<Vec<Vec<u8>>>,
    verifier: Arc<dyn ClientCertVerifier>,
    hints: &'static [DistinguishedName],
}

/// The CA names a `CertificateRequest` carries. rustls borrows them from the verifier, which
/// a commit replaces: each distinct list is kept for the process's life (lists only differ when
/// the CA files' contents do, so they stay few).
fn intern(h: Vec<DistinguishedName>) -> &'static [DistinguishedName] {
    static SEEN: LazyLock<Mutex<Vec<&'static [DistinguishedName]>>> = LazyLock::new(Mutex::default);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let same = |a: &[DistinguishedName]| a.len() == h.len() && a.iter().zip(&h).all(|(x, y)| x.as_ref() == y.as_ref());
    if let Some(s) = seen.iter().find(|s| same(s)) {
        return s;
    }
    let s: &'static [DistinguishedName] = Box::leak(h.into_boxed_slice());
    seen.push(s);
    s
}

/// The client-certificate side of one bind: `ca-file`, optional `crl-file`, `verify`.
pub struct ClientAuth {
    ca: PathBuf,
    crl: Option<PathBuf>,
    optional: bool,
    provider: Arc<CryptoProvider>,
    live: ArcSwap<Live>,
    /// Sessions resumed without a certificate check: dropped with the trust they were made under.
    sessions: ArcSwap<ServerSessionMemoryCache>,
    /// `no-ca-names`: the CertificateRequest names no CA.
    no_ca_names: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth").field("ca", &self.ca).field("crl", &self.crl).finish()
    }
}

fn build(
    provider: &Arc<CryptoProvider>,
    roots: Arc<Vec<Vec<u8>>>,
    crls: Arc<Vec<Vec<u8>>>,
    optional: bool,
) -> Result<Live, String> {
    let mut store = rustls::RootCertStore::empty();
    for c in roots.iter() {
        store.add(CertificateDer::from(c.as_slice())).map_err(|e| e.to_string())?;
    }
    let hints = intern(store.subjects());
    let mut vb = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone());
    if !crls.is_empty() {
        vb = vb.with_crls(crls.iter().map(|c| CertificateRevocationListDer::from(c.clone())));
    }
    if optional {
        vb = vb.allow_unauthenticated();
    }
    let verifier = vb.build().map_err(|e| e.to_string())?;
    Ok(Live { roots, crls, verifier, hints })
}

impl ClientAuth {
    /// Verifies against `roots` (and `crls`); registered with the runtime store.
    pub fn new(
        ca: &Path,
        roots: Vec<Vec<u8>>,
        crl: Option<(&Path, Vec<Vec<u8>>)>,
        optional: bool,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<ClientAuth>, String> {
        let crls = crl.as_ref().map(|c| c.1.clone()).unwrap_or_default();
        let live = build(&provider, Arc::new(roots), Arc::new(crls), optional)?;
        let a = Arc::new(ClientAuth {
            ca: ca.to_path_buf(),
            crl: crl.map(|c| c.0.to_path_buf()),
            optional,
            provider,
            live: ArcSwap::from_pointee(live),
            sessions: ArcSwap::new(ServerSessionMemoryCache::new(256)),
            no_ca_names: Default::default(),
        });
        global().register(&a);
        Ok(a)
    }

    /// HAProxy's `no-ca-names`: clients are not told which CAs are accepted (set once, at load).
    pub fn hide_ca_names(&self) {
        self.no_ca_names.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn uses(&self, kind: Kind, file: &Path) -> bool {
        match kind {
            Kind::Ca => self.ca == file,
            Kind::Crl => self.crl.as_deref() == Some(file),
        }
    }

    fn content(&self, kind: Kind) -> Arc<Vec<Vec<u8>>> {
        let l = self.live.load();
        match kind {
            Kind::Ca => l.roots.clone(),
            Kind::Crl => l.crls.clone(),
        }
    }

    /// The verifier this bind would have with `items` as its `kind` file.
    fn rebuilt(&self, kind: Kind, items: &Arc<Vec<Vec<u8>>>) -> Result<Live, String> {
        let l = self.live.load();
        let (roots, crls) = match kind {
            Kind::Ca => (items.clone(), l.crls.clone()),
            Kind::Crl => (l.roots.clone(), items.clone()),
        };
        build(&self.provider, roots, crls, self.optional)
    }

    fn swap(&self, live: Live) {
        self.live.store(Arc::new(live));
        self.sessions.store(ServerSessionMemoryCache::new(256));
    }
}

impl ClientCertVerifier for ClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        !self.optional
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        if self.no_ca_names.load(std::sync::atomic::Ordering::Relaxed) {
            return &[];
        }
        self.live.load().hints
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.live.load().verifier.verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.live.load().verifier.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.live.load().verifier.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.live.load().verifier.supported_verify_schemes()
    }
}

impl StoresServerSessions for ClientAuth {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.sessions.load().put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions.load().get(key)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions.load().take(key)
    }
    fn can_cache(&self) -> bool {
        true
    }
}

/// A payload that holds no usable CA certificate or CRL (HAProxy's "Invalid payload").
#[derive(Debug)]
pub struct InvalidPayload;

/// PEM blocks of `kind` in a text, as DER; `Err` when one does not decode or there is none.
pub fn parse_pem(kind: Kind, text: &str) -> Result<Vec<Vec<u8>>, InvalidPayload> {
    let mut out = Vec::new();
    for (label, block) in super::store::pem_blocks(text) {
        if label != kind.label() {
            continue;
        }
        let der = match kind {
            Kind::Ca => {
                use rustls_pki_types::pem::PemObject;
                let c = CertificateDer::from_pem_slice(block.as_bytes()).map_err(|_| InvalidPayload)?;
                // Refused here what a verifier could not take as a trust anchor.
                rustls::RootCertStore::empty().add(c.clone()).map_err(|_| InvalidPayload)?;
                c.to_vec()
            }
            Kind::Crl => {
                use rustls_pki_types::pem::PemObject;
                let c = CertificateRevocationListDer::from_pem_slice(block.as_bytes()).map_err(|_| InvalidPayload)?;
                webpki::OwnedCertRevocationList::from_der(c.as_ref()).map_err(|_| InvalidPayload)?;
                c.to_vec()
            }
        };
        out.push(der);
    }
    if out.is_empty() {
        return Err(InvalidPayload);
    }
    Ok(out)
}

/// DER items back to PEM, for the file a commit writes.
pub fn to_pem(kind: Kind, items: &[Vec<u8>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for der in items {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        out.push_str(&format!("-----BEGIN {}-----\n", kind.label()));
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", kind.label()));
    }
    out
}

struct Tx {
    file: PathBuf,
    items: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    binds: Vec<Weak<ClientAuth>>,
    /// `new ssl ca-file|crl-file` files no bind uses: empty until a commit fills them.
    detached: BTreeMap<(Kind, PathBuf), Vec<Vec<u8>>>,
    tx: BTreeMap<Kind, Tx>,
}

impl Inner {
    fn live(&mut self) -> Vec<Arc<ClientAuth>> {
        self.binds.retain(|w| w.strong_count() > 0);
        self.binds.iter().filter_map(Weak::upgrade).collect()
    }

    /// What `file` holds now (`None` when unknown) and whether a bind uses it.
    fn current(&mut self, kind: Kind, file: &Path) -> Option<(bool, Arc<Vec<Vec<u8>>>)> {
        if let Some(b) = self.live().iter().find(|b| b.uses(kind, file)) {
            return Some((true, b.content(kind)));
        }
        self.detached.get(&(kind, file.to_path_buf())).map(|v| (false, Arc::new(v.clone())))
    }
}

/// One entry of `show ssl ca-file|crl-file`.
pub struct Shown {
    pub file: PathBuf,
    pub used: bool,
    pub items: Arc<Vec<Vec<u8>>>,
}

/// The store; one per process, as the files outlive a reload's snapshot.
#[derive(Default)]
pub struct Store(Mutex<Inner>);

static STORE: LazyLock<Store> = LazyLock::new(Store::default);

pub fn global() -> &'static Store {
    &STORE
}

fn transaction_about(t: &Tx, verb: &str, file: &Path) -> String {
    format!("The ongoing transaction is about '{}' but you are trying to {verb} '{}'", t.file.display(), file.display())
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, a: &Arc<ClientAuth>) {
        let mut g = self.lock();
        g.binds.retain(|w| w.strong_count() > 0);
        g.binds.push(Arc::downgrade(a));
    }

    /// `show ssl ca-file|crl-file`: the transaction, then every file in name order.
    pub fn list(&self, kind: Kind) -> (Option<Shown>, Vec<Shown>) {
        let mut g = self.lock();
        let mut all: BTreeMap<PathBuf, Shown> = BTreeMap::new();
        for b in g.live() {
            let file = match kind {
                Kind::Ca => Some(b.ca.clone()),
                Kind::Crl => b.crl.clone(),
            };
            if let Some(file) = file {
                all.entry(file.clone()).or_insert(Shown { file, used: true, items: b.content(kind) });
            }
        }
        for ((k, file), items) in &g.detached {
            if *k == kind {
                all.entry(file.clone()).or_insert(Shown {
                    file: file.clone(),
                    used: false,
                    items: Arc::new(items.clone()),
                });
            }
        }
        let tx = g.tx.get(&kind).map(|t| Shown { file: t.file.clone(), used: false, items: Arc::new(t.items.clone()) });
        (tx, all.into_values().collect())
    }

    /// `show ssl ca-file FILE`, or `*FILE` for the transaction.
    pub fn status(&self, kind: Kind, name: &str) -> Option<Shown> {
        let mut g = self.lock();
        if let Some(f) = name.strip_prefix('*') {
            let t = g.tx.get(&kind).filter(|t| t.file == Path::new(f))?;
            return Some(Shown { file: t.file.clone(), used: false, items: Arc::new(t.items.clone()) });
        }
        let (used, items) = g.current(kind, Path::new(name))?;
        Some(Shown { file: name.into(), used, items })
    }

    /// `set ssl ca-file|crl-file FILE <<`, or `add ssl ca-file FILE <<` (`add`: appended to the
    /// transaction, or to what the file holds now).
    pub fn set(&self, kind: Kind, file: &Path, payload: &str, add: bool) -> Result<String, String> {
        let mut g = self.lock();
        let cant = |e: String| format!("{e}\nCan't update {}!", file.display());
        if let Some(t) = g.tx.get(&kind)
            && t.file != file
        {
            return Err(cant(transaction_about(t, "set", file)));
        }
        let Some((_, now)) = g.current(kind, file) else {
            return Err(cant(format!(
                "Can't replace a {} file which is not referenced by the configuration!",
                kind.word()
            )));
        };
        let items = parse_pem(kind, payload).map_err(|_| cant("Invalid payload".into()))?;
        let verb = if g.tx.contains_key(&kind) { "updated" } else { "created" };
        let items = if add {
            let mut base = g.tx.get(&kind).map(|t| t.items.clone()).unwrap_or_else(|| now.to_vec());
            base.extend(items);
            base
        } else {
            items
        };
        g.tx.insert(kind, Tx { file: file.to_path_buf(), items });
        Ok(format!("transaction {verb} for {} {}!", kind.word(), file.display()))
    }

    /// `abort ssl ca-file|crl-file FILE`.
    pub fn abort(&self, kind: Kind, file: &Path) -> Result<String, String> {
        let mut g = self.lock();
        match g.tx.get(&kind) {
            None => return Err("No ongoing transaction!".into()),
            Some(t) if t.file != file => return Err(transaction_about(t, "abort a transaction for", file)),
            Some(_) => {}
        }
        g.tx.remove(&kind);
        Ok(format!("Transaction aborted for certificate '{}'!", file.display()))
    }

    /// `commit ssl ca-file|crl-file FILE`: builds every affected bind's verifier, `persist`s a
    /// used file's PEM (a failure leaves everything as it was, the transaction open), then swaps
    /// them in.
    pub fn commit(
        &self,
        kind: Kind,
        file: &Path,
        persist: impl FnOnce(&Path, &str) -> std::io::Result<()>,
    ) -> Result<String, String> {
        let cant = |e: String| format!("{e}\nCan't commit {}!", file.display());
        let mut g = self.lock();
        let items = match g.tx.get(&kind) {
            None => return Err(cant("No ongoing transaction! !".into())),
            Some(t) if t.file != file => return Err(cant(transaction_about(t, "set", file))),
            Some(t) => Arc::new(t.items.clone()),
        };
        let binds: Vec<Arc<ClientAuth>> = g.live().into_iter().filter(|b| b.uses(kind, file)).collect();
        let mut built = Vec::new();
        for b in &binds {
            let live = b.rebuilt(kind, &items).map_err(|e| {
                cant(format!(
                    "unable to use the new {} file '{}' ({e}); the old one stays",
                    kind.word(),
                    file.display()
                ))
            })?;
            built.push(live);
        }
        if !binds.is_empty() {
            persist(file, &to_pem(kind, &items))
                .map_err(|e| cant(format!("Can't write '{}': {e}; the old one stays.", file.display())))?;
        }
        for (b, live) in binds.iter().zip(built) {
            b.swap(live);
        }
        if let Some(slot) = g.detached.get_mut(&(kind, file.to_path_buf())) {
            *slot = items.to_vec();
        }
        g.tx.remove(&kind);
        Ok(format!("Committing {}{}\nSuccess!", file.display(), ".".repeat(binds.len())))
    }

    /// `new ssl ca-file|crl-file FILE`: an empty file no bind uses (kept in memory, as in HAProxy).
    pub fn new_file(&self, kind: Kind, file: &Path) -> Result<String, String> {
        let mut g = self.lock();
        if g.current(kind, file).is_some() {
            return Err(format!("{} file '{}' already exists!", kind.word(), file.display()));
        }
        g.detached.insert((kind, file.to_path_buf()), Vec::new());
        Ok(format!("New {} file created '{}'!", kind.word(), file.display()))
    }

    /// `del ssl ca-file|crl-file FILE`: only a file no bind uses and no transaction touches.
    pub fn del(&self, kind: Kind, file: &Path) -> Result<String, String> {
        let mut g = self.lock();
        let (w, f) = (kind.word(), file.display());
        let pre = format!("Can't remove the {w} file:");
        if g.tx.get(&kind).is_some_and(|t| t.file == file) {
            return Err(format!("{pre} ongoing transaction for the {w} file '{f}'"));
        }
        if g.current(kind, file).is_some_and(|c| c.0) {
            return Err(format!("{pre} {w} file '{f}' in use, can't be deleted!"));
        }
        if g.detached.remove(&(kind, file.to_path_buf())).is_none() {
            return Err(format!("{pre} {w} file '{f}' doesn't exist!"));
        }
        Ok(format!("{w} file '{f}' deleted!"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(cn: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let c = p.self_signed(&key).unwrap();
        (c, rcgen::Issuer::new(p, key))
    }

    fn crl(issuer: &rcgen::Issuer<'static, rcgen::KeyPair>, serial: u8) -> String {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&[serial]),
                revocation_time: rcgen::date_time_ymd(2024, 1, 2),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
        .pem()
        .unwrap()
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn transactions_replies_and_swaps() {
        let s = Store::default();
        let (a, ia) = ca("A");
        let (b, _) = ca("B");
        let f = Path::new("/c/ca.pem");
        let auth = ClientAuth::new(f, vec![a.der().to_vec()], None, false, provider()).unwrap();
        s.register(&auth);
        assert_eq!(auth.root_hint_subjects().len(), 1);
        assert!(s.set(Kind::Ca, Path::new("/c/x.pem"), &b.pem(), false).unwrap_err().contains("not referenced"));
        assert_eq!(s.set(Kind::Ca, f, "garbage", false).unwrap_err(), "Invalid payload\nCan't update /c/ca.pem!");
        assert_eq!(s.set(Kind::Ca, f, &b.pem(), false).unwrap(), "transaction created for CA /c/ca.pem!");
        assert_eq!(s.set(Kind::Ca, f, &b.pem(), false).unwrap(), "transaction updated for CA /c/ca.pem!");
        assert_eq!(s.status(Kind::Ca, "*/c/ca.pem").unwrap().items.len(), 1);
        assert_eq!(s.abort(Kind::Ca, f).unwrap(), "Transaction aborted for certificate '/c/ca.pem'!");
        assert_eq!(s.abort(Kind::Ca, f).unwrap_err(), "No ongoing transaction!");
        assert_eq!(
            s.commit(Kind::Ca, f, |_, _| Ok(())).unwrap_err(),
            "No ongoing transaction! !\nCan't commit /c/ca.pem!"
        );
        // add: appended to what the file holds.
        s.set(Kind::Ca, f, &b.pem(), true).unwrap();
        assert_eq!(s.status(Kind::Ca, "*/c/ca.pem").unwrap().items.len(), 2);
        let e = s.commit(Kind::Ca, f, |_, _| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(e.contains("disk full") && e.ends_with("Can't commit /c/ca.pem!"), "{e}");
        assert_eq!(auth.root_hint_subjects().len(), 1, "nothing swapped");
        let mut wrote = String::new();
        let ok = s.commit(Kind::Ca, f, |_, pem| {
            wrote = pem.to_string();
            Ok(())
        });
        assert_eq!(ok.unwrap(), "Committing /c/ca.pem.\nSuccess!");
        assert_eq!(parse_pem(Kind::Ca, &wrote).unwrap().len(), 2);
        assert_eq!(auth.root_hint_subjects().len(), 2, "swapped");
        assert!(auth.put(b"id".to_vec(), b"session".to_vec()));
        s.set(Kind::Ca, f, &a.pem(), false).unwrap();
        s.commit(Kind::Ca, f, |_, _| Ok(())).unwrap();
        assert_eq!(auth.get(b"id"), None, "sessions made under the old CAs are not resumed");
        assert!(s.del(Kind::Ca, f).unwrap_err().contains("in use, can't be deleted!"));
        // A CRL must be a CRL.
        assert_eq!(
            s.set(Kind::Crl, f, &crl(&ia, 3), false).unwrap_err().lines().next(),
            Some("Can't replace a CRL file which is not referenced by the configuration!")
        );
        assert!(parse_pem(Kind::Crl, &a.pem()).is_err());
        assert_eq!(parse_pem(Kind::Crl, &crl(&ia, 3)).unwrap().len(), 1);
    }

    #[test]
    fn new_del_and_crl_commit() {
        let s = Store::default();
        let (a, ia) = ca("A");
        let (caf, crlf) = (Path::new("/c/ca.pem"), Path::new("/c/crl.pem"));
        let auth = ClientAuth::new(caf, vec![a.der().to_vec()], Some((crlf, vec![])), false, provider()).unwrap();
        s.register(&auth);
        let n = Path::new("/c/n.crl");
        assert_eq!(s.new_file(Kind::Crl, n).unwrap(), "New CRL file created '/c/n.crl'!");
        assert_eq!(s.new_file(Kind::Crl, n).unwrap_err(), "CRL file '/c/n.crl' already exists!");
        s.set(Kind::Crl, n, &crl(&ia, 1), false).unwrap();
        assert!(s.del(Kind::Crl, n).unwrap_err().contains("ongoing transaction for the CRL file"));
        let mut wrote = false;
        let ok = s.commit(Kind::Crl, n, |_, _| {
            wrote = true;
            Ok(())
        });
        assert_eq!(ok.unwrap(), "Committing /c/n.crl\nSuccess!");
        assert!(!wrote, "a file no bind uses stays in memory");
        assert_eq!(s.status(Kind::Crl, "/c/n.crl").unwrap().items.len(), 1);
        assert_eq!(s.del(Kind::Crl, n).unwrap(), "CRL file '/c/n.crl' deleted!");
        assert!(s.del(Kind::Crl, n).unwrap_err().ends_with("doesn't exist!"));
        s.set(Kind::Crl, crlf, &crl(&ia, 1), false).unwrap();
        assert_eq!(s.commit(Kind::Crl, crlf, |_, _| Ok(())).unwrap(), "Committing /c/crl.pem.\nSuccess!");
        assert_eq!(auth.content(Kind::Crl).len(), 1);
        let (tx, files) = s.list(Kind::Crl);
        assert!(tx.is_none());
        assert_eq!(files.iter().map(|f| f.file.display().to_string()).collect::<Vec<_>>(), ["/c/crl.pem"]);
    }
}
