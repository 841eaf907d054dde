//! Runs `... ssl cert` commands against the process's certificate store. A commit writes the
//! served file first (atomically, keeping its mode), so a reload or a restart serves what was
//! committed, as runtime servers survive a reload.

use crate::control::Reply;
use crate::control::sslcert::{self, CertCmd};
use crate::tls::store;
use serde_json::json;
use std::path::Path;

fn reply(r: Result<String, String>) -> Reply {
    match r {
        Ok(text) => {
            let j = json!({ "message": text });
            Reply::ok(text, j)
        }
        Err(e) => Reply::error(e),
    }
}

/// The key of the file on disk, for a payload that brings only a certificate.
fn disk_key(file: &Path) -> Option<String> {
    store::key_block(&std::fs::read_to_string(file).ok()?)
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
            let f = Path::new(&file);
            reply(s.set(f, &p, || disk_key(f)))
        }
        CertCmd::Commit(file) => {
            let r = s.commit(Path::new(&file), |path, pem| crate::fsutil::write_atomic(path, pem.as_bytes()));
            if r.is_ok() {
                tracing::info!("certificate {file} replaced (control socket)");
            }
            reply(r)
        }
        CertCmd::Abort(file) => reply(s.abort(Path::new(&file))),
        CertCmd::New(file) => reply(s.new_cert(Path::new(&file))),
        CertCmd::Del(file) => reply(s.del(Path::new(&file))),
    }
}
