//! Runs `... ssl cert` commands against the process's certificate store. A commit writes the
//! served file first (atomically, keeping its mode), so a reload or a restart serves what was
//! committed, as runtime servers survive a reload.

use crate::control::Reply;
use crate::control::sslca::{self, FileCmd};
use crate::control::sslcert::{self, CertCmd};
use crate::tls::{cafile, store};
use serde_json::json;
use std::path::Path;

pub(super) fn reply(r: Result<String, String>) -> Reply {
    match r {
        Ok(text) => {
            let j = json!({ "message": text });
            Reply::ok(text, j)
        }
        Err(e) => Reply::error(e),
    }
}

/// Writes a committed file atomically (keeping its mode); `None` removes a stale side file.
pub(super) fn persist(path: &Path, bytes: Option<&[u8]>) -> std::io::Result<()> {
    match bytes {
        Some(b) => crate::fsutil::write_atomic(path, b),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

pub fn execute(c: CertCmd) -> Reply {
    let s = store::global();
    match c {
        CertCmd::Show(None) => {
            let (tx, files) = s.list();
            let j = json!({
                "transaction": tx.as_ref().map(|t| t.display().to_string()),
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            });
            Reply::ok(sslcert::show_list(tx.as_deref(), &files), j)
        }
        CertCmd::Show(Some(name)) => reply(sslcert::show_one(&name, s.status(&name))),
        CertCmd::Set { payload: None, .. } => Reply::error(sslcert::missing_payload()),
        CertCmd::Set { file, payload: Some(p) } => {
            // The disk is read for a payload that changes one part (the key of a certificate).
            reply(s.set(Path::new(&file), &p, |f| std::fs::read(f).ok()))
        }
        CertCmd::Commit(file) => {
            let r = s.commit(Path::new(&file), persist);
            if r.is_ok() {
                tracing::info!("certificate {file} replaced (control socket)");
            }
            reply(r)
        }
        CertCmd::Abort(file) => reply(s.abort(Path::new(&file))),
        CertCmd::New(file) => reply(s.new_cert(Path::new(&file))),
        CertCmd::Del(file) => reply(s.del(Path::new(&file))),
        CertCmd::File(c) => file_cmd(c),
        CertCmd::Ocsp(c) => super::sslocsp::execute(c),
    }
}

/// `... ssl ca-file|crl-file`: a commit writes a used file first, as for certificates.
fn file_cmd(c: FileCmd) -> Reply {
    let s = cafile::global();
    match c {
        FileCmd::Show(kind, None) => {
            let (tx, files) = s.list(kind);
            let j = json!({
                "transaction": tx.as_ref().map(|t| t.file.display().to_string()),
                "files": files.iter().map(|f| json!({"file": f.file.display().to_string(), "count": f.items.len()})).collect::<Vec<_>>(),
            });
            Reply::ok(sslca::show_list(kind, tx.as_ref(), &files), j)
        }
        FileCmd::Show(kind, Some(name)) => {
            let (file, index) = sslca::split_index(&name);
            reply(sslca::show_one(kind, file, index, s.status(kind, file)))
        }
        FileCmd::Set { kind, add, payload: None, .. } => {
            Reply::error(sslca::set_usage(kind, if add { "add" } else { "set" }))
        }
        FileCmd::Set { kind, file, add, payload: Some(p) } => reply(s.set(kind, Path::new(&file), &p, add)),
        FileCmd::Commit(kind, file) => {
            let r = s.commit(kind, Path::new(&file), |path, pem| crate::fsutil::write_atomic(path, pem.as_bytes()));
            if r.is_ok() {
                tracing::info!("{} file {file} replaced (control socket)", kind.word());
            }
            reply(r)
        }
        FileCmd::Abort(kind, file) => reply(s.abort(kind, Path::new(&file))),
        FileCmd::New(kind, file) => reply(s.new_file(kind, Path::new(&file))),
        FileCmd::Del(kind, file) => reply(s.del(kind, Path::new(&file))),
    }
}
