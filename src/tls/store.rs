//! Certificates as the runtime API sees them (HAProxy's certificate store): the files the binds
//! serve, `new ssl cert` ones no bind serves yet, and the one open `set ssl cert` transaction
//! (process-wide, as in HAProxy). A commit reaches every bind serving the file at once; the disk
//! is written by the caller's `persist`, before anything changes, so a reload serves what was
//! committed.

use super::certs::Resolver;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// An open `set ssl cert` transaction: the new chain and key, and the PEM text a commit writes.
#[derive(Clone)]
pub struct Pending {
    pub file: PathBuf,
    pub key: Arc<CertifiedKey>,
    pub pem: String,
    /// `FILE.ocsp` / `FILE.issuer` a commit writes (`None`: removes a response the new
    /// certificate made stale).
    pub extra: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// What a `set ssl cert` name targets: HAProxy's `FILE.key`, `FILE.ocsp`, `FILE.issuer` and
/// `FILE.sctl` forms change one part of `FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Pem,
    Key,
    Ocsp,
    Issuer,
    Sctl,
}

/// `FILE.ocsp` and the like, next to `file`.
pub fn sibling(file: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", file.display()))
}

#[derive(Default)]
struct Inner {
    resolvers: Vec<Weak<Resolver>>,
    /// `new ssl cert` files: empty until a commit fills them.
    detached: BTreeMap<PathBuf, Option<Arc<CertifiedKey>>>,
    tx: Option<Pending>,
}

impl Inner {
    fn live(&mut self) -> Vec<Arc<Resolver>> {
        self.resolvers.retain(|w| w.strong_count() > 0);
        self.resolvers.iter().filter_map(Weak::upgrade).collect()
    }

    fn used(&mut self) -> BTreeSet<PathBuf> {
        self.live().iter().flat_map(|r| r.files()).collect()
    }

    /// What `file` serves now (`None` for a `new ssl cert` not committed yet); `Err` if unknown.
    fn current(&mut self, file: &Path) -> Result<Option<Arc<CertifiedKey>>, ()> {
        if let Some(k) = self.live().iter().find_map(|r| r.key_of(file)) {
            return Ok(Some(k));
        }
        self.detached.get(file).cloned().ok_or(())
    }
}

/// The store; one per process, as certificates outlive a reload's snapshot.
#[derive(Default)]
pub struct Store(Mutex<Inner>);

static STORE: LazyLock<Store> = LazyLock::new(Store::default);

/// The process's store.
pub fn global() -> &'static Store {
    &STORE
}

/// Makes a bind's certificates visible to the runtime API (a dropped config leaves by itself).
pub fn register(r: &Arc<Resolver>) {
    global().register(r)
}

/// Where a certificate stands, for `show ssl cert FILE`.
pub enum Status {
    /// Served by a bind.
    Used(Arc<CertifiedKey>),
    /// A transaction's or a committed `new ssl cert`.
    Unused(Arc<CertifiedKey>),
    /// `new ssl cert` not filled yet.
    Empty,
}

/// PEM blocks of a text: (label, block with its BEGIN/END lines).
pub(crate) fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            cur = Some((label.to_string(), format!("{line}\n")));
        } else if let Some((label, mut block)) = cur.take() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                out.push((label, block));
            } else {
                cur = Some((label, block));
            }
        }
    }
    out
}

fn is_key(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
}

fn unable(what: &str, file: &Path) -> String {
    format!(
        "unable to load {what} from file '{}'.\nCan't load the payload\nCan't update {}!",
        file.display(),
        file.display()
    )
}

/// The chain and key of a payload; a payload without a key keeps `old_key_pem`'s (HAProxy keeps
/// the key it had). Returns the parsed pair and the PEM text to write.
fn parse_payload(file: &Path, payload: &str, old_key_pem: Option<&str>) -> Result<(Arc<CertifiedKey>, String), String> {
    let blocks = pem_blocks(payload);
    let certs_pem: String = blocks.iter().filter(|(l, _)| l == "CERTIFICATE").map(|(_, b)| b.as_str()).collect();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certs_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| unable("certificate", file))?;
    if certs.is_empty() {
        return Err(unable("certificate", file));
    }
    let own_key = blocks.iter().find(|(l, _)| is_key(l)).map(|(_, b)| b.clone());
    let key_pem = own_key.or_else(|| old_key_pem.map(str::to_string)).ok_or_else(|| unable("private key", file))?;
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| unable("private key", file))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|_| unable("private key", file))?;
    Ok((Arc::new(CertifiedKey::new(certs, signing)), format!("{certs_pem}{key_pem}")))
}

/// The key block of a PEM text (a served file's, when a payload brings only a certificate).
pub fn key_block(text: &str) -> Option<String> {
    pem_blocks(text).into_iter().find(|(l, _)| is_key(l)).map(|(_, b)| b)
}

/// The certificate file and part a `set ssl cert` name is about: the name itself when known,
/// else `FILE` of `FILE.key|.ocsp|.issuer|.sctl`.
fn split_part(g: &mut Inner, name: &Path) -> (PathBuf, Part) {
    if g.current(name).is_ok() {
        return (name.to_path_buf(), Part::Pem);
    }
    let text = name.display().to_string();
    for (ext, part) in [("key", Part::Key), ("ocsp", Part::Ocsp), ("issuer", Part::Issuer), ("sctl", Part::Sctl)] {
        if let Some(base) = text.strip_suffix(&format!(".{ext}"))
            && g.current(Path::new(base)).is_ok()
        {
            return (PathBuf::from(base), part);
        }
    }
    (name.to_path_buf(), Part::Pem)
}

/// The chain as PEM, for a file written with a new key, response or issuer.
fn chain_pem(ck: &CertifiedKey) -> String {
    let ders: Vec<Vec<u8>> = ck.cert.iter().map(|c| c.to_vec()).collect();
    super::cafile::to_pem(super::cafile::Kind::Ca, &ders)
}

fn signing(key_pem: &str) -> Option<Arc<dyn rustls::sign::SigningKey>> {
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).ok()?;
    rustls::crypto::ring::default_provider().key_provider.load_private_key(der).ok()
}

/// A certificate, its key's PEM and the side files already staged.
type Base = (Arc<CertifiedKey>, Option<String>, Vec<(PathBuf, Option<Vec<u8>>)>);

/// The transaction a `set ssl cert` payload makes of `base` (what the transaction or the file
/// holds: its certificate, its key's PEM, the side files already staged).
fn edit(
    file: &Path,
    name: &Path,
    part: Part,
    payload: &str,
    base: Option<Base>,
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> Result<Pending, String> {
    let fail = |what: String| format!("{what}\nCan't load the payload\nCan't update {}!", name.display());
    let (old, old_key, mut extra) = match base {
        Some(b) => (Some(b.0), b.1, b.2),
        None => (None, None, Vec::new()),
    };
    let has_cert = pem_blocks(payload).iter().any(|(l, _)| l == "CERTIFICATE");
    let new_key = key_block(payload);
    match (part, &old) {
        // A certificate (with or without its key), as HAProxy; or a key alone, which keeps the
        // certificate (a `FILE.key` payload in HAProxy).
        (Part::Pem, _) if has_cert => {
            let (key, pem) = parse_payload(file, payload, old_key.as_deref())?;
            let mut ck = (*key).clone();
            // A response about the old certificate is dropped with it, on disk too.
            if let Some(o) = old.as_ref().and_then(|o| o.ocsp.clone())
                && super::ocsp::parse(&o)
                    .is_ok_and(|r| super::ocsp::is_about(&r, &ck.cert[0], ck.cert.get(1).map(|c| c.as_ref())))
            {
                ck.ocsp = Some(o);
            } else if old.as_ref().is_some_and(|o| o.ocsp.is_some()) {
                extra.retain(|(p, _)| *p != sibling(file, "ocsp"));
                extra.push((sibling(file, "ocsp"), None));
            }
            Ok(Pending { file: file.to_path_buf(), key: Arc::new(ck), pem, extra })
        }
        (Part::Pem | Part::Key, Some(o)) => {
            let what = if part == Part::Pem { "certificate" } else { "private key" };
            let Some(k) = new_key else { return Err(unable(what, file)) };
            let Some(sk) = signing(&k) else { return Err(unable("private key", file)) };
            let mut ck = CertifiedKey::new(o.cert.clone(), sk);
            ck.ocsp = o.ocsp.clone();
            Ok(Pending { file: file.to_path_buf(), key: Arc::new(ck), pem: format!("{}{k}", chain_pem(o)), extra })
        }
        (Part::Ocsp, Some(o)) => {
            let der = super::ocsp::from_base64(payload)
                .ok_or_else(|| fail("Error reading OCSP response in base64 format".into()))?;
            let r = super::ocsp::parse(&der).map_err(fail)?;
            super::ocsp::check(&r, super::ocsp::now()).map_err(fail)?;
            let staged_issuer = extra.iter().find(|(p, _)| *p == sibling(file, "issuer")).and_then(|e| e.1.clone());
            let issuer = issuer_der(o, staged_issuer.or_else(|| read(&sibling(file, "issuer"))));
            if !super::ocsp::is_about(&r, &o.cert[0], issuer.as_deref()) {
                return Err(fail("OCSP single response: Certificate ID does not match certificate and issuer".into()));
            }
            let mut ck = (**o).clone();
            ck.ocsp = Some(der.clone());
            extra.retain(|(p, _)| *p != sibling(file, "ocsp"));
            extra.push((sibling(file, "ocsp"), Some(der)));
            let pem = format!("{}{}", chain_pem(o), old_key.unwrap_or_default());
            Ok(Pending { file: file.to_path_buf(), key: Arc::new(ck), pem, extra })
        }
        (Part::Issuer, Some(o)) => {
            let blocks: String =
                pem_blocks(payload).into_iter().filter(|(l, _)| l == "CERTIFICATE").map(|(_, b)| b).collect();
            let der = CertificateDer::pem_slice_iter(blocks.as_bytes()).next().and_then(|c| c.ok());
            let Some(der) = der else {
                return Err(fail(format!("unable to load issuer from file '{}'.", name.display())));
            };
            use x509_parser::prelude::FromDer;
            let issued = match (
                x509_parser::certificate::X509Certificate::from_der(&der),
                x509_parser::certificate::X509Certificate::from_der(&o.cert[0]),
            ) {
                (Ok((_, i)), Ok((_, c))) => i.subject().as_raw() == c.issuer().as_raw(),
                _ => false,
            };
            if !issued {
                return Err(fail(format!("'{}' is not the issuer of the certificate", name.display())));
            }
            extra.retain(|(p, _)| *p != sibling(file, "issuer"));
            extra.push((sibling(file, "issuer"), Some(blocks.into_bytes())));
            let pem = format!("{}{}", chain_pem(o), old_key.unwrap_or_default());
            Ok(Pending { file: file.to_path_buf(), key: o.clone(), pem, extra })
        }
        (Part::Pem, None) => Err(unable("certificate", file)),
        _ => Err(fail(format!("'{}' has no certificate yet", file.display()))),
    }
}

/// The issuer of a certificate: the next one of its chain, else a `.issuer` file (PEM).
pub fn issuer_der(ck: &CertifiedKey, issuer_pem: Option<Vec<u8>>) -> Option<Vec<u8>> {
    if let Some(c) = ck.cert.get(1) {
        return Some(c.to_vec());
    }
    let pem = issuer_pem?;
    CertificateDer::pem_slice_iter(&pem).next()?.ok().map(|c| c.to_vec())
}

impl Store {
    pub fn register(&self, r: &Arc<Resolver>) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.resolvers.retain(|w| w.strong_count() > 0);
        g.resolvers.push(Arc::downgrade(r));
    }

    /// Every served file and what it serves (the first bind's, once per file).
    pub fn served(&self) -> Vec<(PathBuf, Arc<CertifiedKey>)> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(PathBuf, Arc<CertifiedKey>)> = Vec::new();
        for r in g.live() {
            for f in r.files() {
                if !out.iter().any(|o| o.0 == f)
                    && let Some(k) = r.key_of(&f)
                {
                    out.push((f, k));
                }
            }
        }
        out
    }

    /// `set ssl ocsp-response`: staples `der` on the served file whose certificate `about`
    /// accepts, after `persist` wrote it next to the file. The file, or HAProxy's message.
    pub fn staple(
        &self,
        der: &[u8],
        about: impl Fn(&Path, &CertifiedKey) -> bool,
        persist: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
    ) -> Result<PathBuf, String> {
        let Some((file, key)) = self.served().into_iter().find(|(f, k)| about(f, k)) else {
            return Err("OCSP single response: Certificate ID does not match any certificate or issuer".into());
        };
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let path = sibling(&file, "ocsp");
        persist(&path, der).map_err(|e| format!("Can't write '{}': {e}", path.display()))?;
        let mut ck = (*key).clone();
        ck.ocsp = Some(der.to_vec());
        let ck = Arc::new(ck);
        for r in g.live() {
            r.replace(&file, &ck);
        }
        Ok(file)
    }

    /// `show ssl cert`: the open transaction's file, and every known file in name order.
    pub fn list(&self) -> (Option<PathBuf>, Vec<PathBuf>) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = g.used();
        all.extend(g.detached.keys().cloned());
        (g.tx.as_ref().map(|t| t.file.clone()), all.into_iter().collect())
    }

    /// `show ssl cert FILE`, or `*FILE` for the transaction.
    pub fn status(&self, name: &str) -> Option<Status> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = name.strip_prefix('*') {
            return g.tx.as_ref().filter(|t| t.file == Path::new(f)).map(|t| Status::Unused(t.key.clone()));
        }
        let file = Path::new(name);
        if let Some(k) = g.live().iter().find_map(|r| r.key_of(file)) {
            return Some(Status::Used(k));
        }
        g.detached.get(file).map(|k| k.clone().map_or(Status::Empty, Status::Unused))
    }

    /// `set ssl cert FILE <<` (or `FILE.key|.ocsp|.issuer|.sctl <<`): opens or updates the
    /// transaction. `read` reads a file on disk (the served file's key, a `.issuer`), for
    /// payloads that change one part.
    pub fn set(&self, name: &Path, payload: &str, read: impl Fn(&Path) -> Option<Vec<u8>>) -> Result<String, String> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (file, part) = split_part(&mut g, name);
        let file = file.as_path();
        if part == Part::Sctl {
            return Err(format!(
                "Signed Certificate Timestamp lists are not supported by lbha (rustls cannot send them)\nCan't load the payload\nCan't update {}!",
                name.display()
            ));
        }
        if let Some(t) = &g.tx
            && t.file != file
        {
            return Err(format!(
                "The ongoing transaction is about '{}' but you are trying to set '{}'\nCan't update {}!",
                t.file.display(),
                file.display(),
                file.display()
            ));
        }
        let Ok(current) = g.current(file) else {
            return Err(format!(
                "Can't replace a certificate which is not referenced by the configuration!\nCan't update {}!",
                file.display()
            ));
        };
        let text = |b: Option<Vec<u8>>| b.and_then(|b| String::from_utf8(b).ok());
        let base = match &g.tx {
            Some(t) => Some((t.key.clone(), key_block(&t.pem), t.extra.clone())),
            None => current.map(|k| (k, text(read(file)).and_then(|t| key_block(&t)), Vec::new())),
        };
        let pending = edit(file, name, part, payload, base, &read)?;
        let verb = if g.tx.is_some() { "updated" } else { "created" };
        g.tx = Some(pending);
        Ok(format!("Transaction {verb} for certificate {}!", file.display()))
    }

    fn no_tx_for(&self, g: &Inner, file: &Path, verb: &str) -> Result<(), String> {
        match &g.tx {
            None => Err("No ongoing transaction!".into()),
            Some(t) if t.file != file => Err(format!(
                "The ongoing transaction is about '{}' but you are trying to {verb} '{}'",
                t.file.display(),
                file.display()
            )),
            Some(_) => Ok(()),
        }
    }

    /// `abort ssl cert FILE`.
    pub fn abort(&self, file: &Path) -> Result<String, String> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        self.no_tx_for(&g, file, "abort a transaction for")?;
        g.tx = None;
        Ok(format!("Transaction aborted for certificate '{}'!", file.display()))
    }

    /// `commit ssl cert FILE`: checks the pair, `persist`s a served file's PEM (a failure leaves
    /// everything as it was, the transaction open), then serves it to new handshakes.
    pub fn commit(
        &self,
        file: &Path,
        mut persist: impl FnMut(&Path, Option<&[u8]>) -> std::io::Result<()>,
    ) -> Result<String, String> {
        let cant = |e: String| format!("{e}\nCan't commit {}!", file.display());
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &g.tx {
            None => return Err(cant("No ongoing transaction! !".into())),
            Some(t) if t.file != file => {
                return Err(cant(format!(
                    "The ongoing transaction is about '{}' but you are trying to set '{}'",
                    t.file.display(),
                    file.display()
                )));
            }
            Some(_) => {}
        }
        let Some(t) = g.tx.clone() else { return Err(cant("No ongoing transaction! !".into())) };
        if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) = t.key.keys_match() {
            return Err(cant(format!(
                "inconsistencies between private key and certificate loaded '{}'.",
                file.display()
            )));
        }
        let live = g.live();
        let served = live.iter().any(|r| r.key_of(file).is_some());
        if served {
            persist(file, Some(t.pem.as_bytes()))
                .map_err(|e| cant(format!("Can't write '{}': {e}; the old certificate stays.", file.display())))?;
            for (path, bytes) in &t.extra {
                persist(path, bytes.as_deref()).map_err(|e| cant(format!("Can't write '{}': {e}", path.display())))?;
            }
        }
        let dots: usize = live.iter().map(|r| usize::from(r.replace(file, &t.key) > 0)).sum();
        if let Some(slot) = g.detached.get_mut(file) {
            *slot = Some(t.key.clone());
        }
        g.tx = None;
        // One dot per bind serving it, as HAProxy's one per certificate instance.
        Ok(format!("Committing {}{}\nSuccess!", file.display(), ".".repeat(dots)))
    }

    /// `new ssl cert FILE`: an empty certificate no bind serves (kept in memory, as in HAProxy).
    pub fn new_cert(&self, file: &Path) -> Result<String, String> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.current(file).is_ok() {
            return Err(format!("Certificate '{}' already exists!", file.display()));
        }
        g.detached.insert(file.to_path_buf(), None);
        Ok(format!("New empty certificate store '{}'!", file.display()))
    }

    /// `del ssl cert FILE`: only a certificate no bind serves and no transaction touches.
    pub fn del(&self, file: &Path) -> Result<String, String> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let pre = "Can't remove the certificate:";
        if g.tx.as_ref().is_some_and(|t| t.file == file) {
            return Err(format!("{pre} ongoing transaction for the certificate '{}'", file.display()));
        }
        if g.used().contains(file) {
            return Err(format!("{pre} certificate '{}' in use, can't be deleted!", file.display()));
        }
        if g.detached.remove(file).is_none() {
            return Err(format!("{pre} certificate '{}' doesn't exist!", file.display()));
        }
        Ok(format!("Certificate '{}' deleted!", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::certs::Entry;
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    }

    fn served(file: &str, cert: &str, key: &str) -> Arc<Resolver> {
        let (ck, _) = parse_payload(Path::new(file), &format!("{cert}{key}"), None).unwrap();
        Arc::new(Resolver::new(vec![Entry::own(ck, Some(file.into()))], false))
    }

    fn cn(r: &Resolver) -> Vec<String> {
        super::super::certs::cert_names(&r.pick(None, &[rustls::SignatureScheme::ECDSA_NISTP256_SHA256]).unwrap())
    }

    #[test]
    fn transaction_commit_abort_and_refusals() {
        let s = Store::default();
        let (c1, k1) = pair("old.example");
        let (c2, k2) = pair("new.example");
        let r = served("/c/site.pem", &c1, &k1);
        s.register(&r);
        let f = Path::new("/c/site.pem");
        assert_eq!(s.abort(f).unwrap_err(), "No ongoing transaction!");
        assert!(s.commit(f, |_, _| Ok(())).unwrap_err().starts_with("No ongoing transaction! !\nCan't commit"));
        let e = s.set(Path::new("/c/other.pem"), &c2, |_| None).unwrap_err();
        assert!(e.starts_with("Can't replace a certificate which is not referenced"), "{e}");
        let e = s.set(f, "garbage", |_| None).unwrap_err();
        assert_eq!(
            e,
            "unable to load certificate from file '/c/site.pem'.\nCan't load the payload\nCan't update /c/site.pem!"
        );
        // A key alone keeps the certificate (HAProxy's `FILE.key`); a mismatch shows at commit.
        assert_eq!(s.set(f, &k2, |_| None).unwrap(), "Transaction created for certificate /c/site.pem!");
        assert!(s.commit(f, |_, _| Ok(())).unwrap_err().contains("inconsistencies"));
        s.abort(f).unwrap();
        assert_eq!(
            s.set(f, &format!("{c2}{k2}"), |_| None).unwrap(),
            "Transaction created for certificate /c/site.pem!"
        );
        assert!(s.set(f, &format!("{c2}{k2}"), |_| None).unwrap().starts_with("Transaction updated"));
        assert!(s.set(Path::new("/c/x.pem"), &c2, |_| None).unwrap_err().contains("ongoing transaction is about"));
        assert!(matches!(s.status("*/c/site.pem"), Some(Status::Unused(_))));
        assert_eq!(cn(&r), ["old.example"], "nothing served before the commit");
        assert_eq!(s.list(), (Some(f.to_path_buf()), vec![f.to_path_buf()]));
        // A failed write keeps the old certificate and the transaction.
        let e = s.commit(f, |_, _| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(e.contains("disk full") && e.ends_with("Can't commit /c/site.pem!"), "{e}");
        assert_eq!(cn(&r), ["old.example"]);
        let mut written = String::new();
        let ok = s.commit(f, |_, pem| {
            written = String::from_utf8(pem.unwrap().to_vec()).unwrap();
            Ok(())
        });
        assert_eq!(ok.unwrap(), "Committing /c/site.pem.\nSuccess!");
        assert_eq!(written, format!("{c2}{k2}"));
        assert_eq!(cn(&r), ["new.example"], "served at once");
        assert!(s.status("*/c/site.pem").is_none());
        // A certificate alone keeps the file's key: a mismatch is refused at commit, as HAProxy.
        s.set(f, &c1, |_| Some(written.clone().into_bytes())).unwrap();
        let e = s.commit(f, |_, _| Ok(())).unwrap_err();
        assert_eq!(
            e,
            "inconsistencies between private key and certificate loaded '/c/site.pem'.\nCan't commit /c/site.pem!"
        );
        assert_eq!(s.abort(f).unwrap(), "Transaction aborted for certificate '/c/site.pem'!");
        assert_eq!(cn(&r), ["new.example"]);
        assert!(s.del(f).unwrap_err().contains("in use, can't be deleted"));
    }

    #[test]
    fn key_issuer_ocsp_and_sctl_forms() {
        let s = Store::default();
        let (c1, k1) = pair("a.example");
        let (_, k2) = pair("b.example");
        let r = served("/c/s.pem", &c1, &k1);
        s.register(&r);
        let f = Path::new("/c/s.pem");
        let disk = format!("{c1}{k1}");
        let read = |p: &Path| (p == f).then(|| disk.clone().into_bytes());
        let e = s.set(Path::new("/c/s.pem.sctl"), "AAAA", read).unwrap_err();
        assert!(e.contains("not supported") && e.ends_with("Can't update /c/s.pem.sctl!"), "{e}");
        let e = s.set(Path::new("/c/s.pem.key"), &c1, read).unwrap_err();
        assert!(e.starts_with("unable to load private key"), "{e}");
        let e = s.set(Path::new("/c/s.pem.ocsp"), "!!", read).unwrap_err();
        assert!(e.starts_with("Error reading OCSP response in base64 format\n"), "{e}");
        let e = s.set(Path::new("/c/s.pem.ocsp"), "QUJD", read).unwrap_err();
        assert!(e.starts_with("Unable to parse OCSP response\n"), "{e}");
        let mut op = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        op.distinguished_name.push(rcgen::DnType::CommonName, "Other CA");
        let other = op.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem();
        let e = s.set(Path::new("/c/s.pem.issuer"), &other, read).unwrap_err();
        assert!(e.contains("is not the issuer"), "{e}");
        // The key of the file is replaced, the certificate kept: written whole at commit.
        assert_eq!(
            s.set(Path::new("/c/s.pem.key"), &k2, read).unwrap(),
            "Transaction created for certificate /c/s.pem!"
        );
        assert!(s.commit(f, |_, _| Ok(())).unwrap_err().contains("inconsistencies"));
        assert_eq!(
            s.set(Path::new("/c/s.pem.key"), &k1, read).unwrap(),
            "Transaction updated for certificate /c/s.pem!"
        );
        let mut files = Vec::new();
        s.commit(f, |p, b| {
            files.push((p.to_path_buf(), b.map(<[u8]>::to_vec)));
            Ok(())
        })
        .unwrap();
        let text = String::from_utf8(files[0].1.clone().unwrap()).unwrap();
        assert_eq!((files.len(), key_block(&text).unwrap()), (1, k1.clone()));
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn new_and_del_certificates() {
        let s = Store::default();
        let f = Path::new("/c/n.pem");
        assert!(s.del(f).unwrap_err().contains("doesn't exist"));
        assert_eq!(s.new_cert(f).unwrap(), "New empty certificate store '/c/n.pem'!");
        assert_eq!(s.new_cert(f).unwrap_err(), "Certificate '/c/n.pem' already exists!");
        assert!(matches!(s.status("/c/n.pem"), Some(Status::Empty)));
        let (c, k) = pair("n.example");
        s.set(f, &format!("{c}{k}"), |_| None).unwrap();
        assert!(s.del(f).unwrap_err().contains("ongoing transaction"));
        let mut wrote = false;
        assert_eq!(
            s.commit(f, |_, _| {
                wrote = true;
                Ok(())
            })
            .unwrap(),
            "Committing /c/n.pem\nSuccess!"
        );
        assert!(!wrote, "a certificate no bind serves stays in memory");
        assert!(matches!(s.status("/c/n.pem"), Some(Status::Unused(_))));
        assert_eq!(s.del(f).unwrap(), "Certificate '/c/n.pem' deleted!");
        assert!(s.status("/c/n.pem").is_none());
    }

    #[test]
    fn pem_blocks_and_key_block() {
        let (c, k) = pair("a.example");
        let text = format!("junk\n{c}\n{k}");
        let b = pem_blocks(&text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, "CERTIFICATE");
        assert_eq!(key_block(&text).unwrap(), k);
        assert!(key_block(&c).is_none());
    }
}
