//! `set|show ssl ocsp-response`: a new response is checked as HAProxy checks it, written to
//! `FILE.ocsp` next to the certificate it is about (so a reload staples it too), then stapled
//! to new handshakes.

use crate::control::Reply;
use crate::control::sslca::{self, OcspCmd};
use crate::tls::{ocsp, store};
use serde_json::json;
use std::path::Path;

/// The issuer of a served certificate: the next of its chain, else its `.issuer` file.
fn issuer(file: &Path, ck: &rustls::sign::CertifiedKey) -> Option<Vec<u8>> {
    store::issuer_der(ck, std::fs::read(store::sibling(file, "issuer")).ok())
}

/// Every stapled response with the file it belongs to.
fn stapled() -> Vec<(std::path::PathBuf, ocsp::Response)> {
    store::global().served().into_iter().filter_map(|(f, k)| Some((f, ocsp::parse(k.ocsp.as_deref()?).ok()?))).collect()
}

fn set(b64: &str) -> Result<String, String> {
    let der = ocsp::from_base64(b64)
        .ok_or_else(|| "'set ssl ocsp-response' received invalid base64 encoded response.".to_string())?;
    let r = ocsp::parse(&der).map_err(|e| format!("{e}."))?;
    ocsp::check(&r, ocsp::now()).map_err(|e| format!("{}.", e.trim_end_matches('.')))?;
    let file = store::global()
        .staple(&der, |f, k| ocsp::is_about(&r, &k.cert[0], issuer(f, k).as_deref()), crate::fsutil::write_atomic)
        .map_err(|e| format!("{e}."))?;
    tracing::info!("OCSP response of {} replaced (control socket)", file.display());
    Ok("OCSP Response updated!".into())
}

pub fn execute(c: OcspCmd) -> Reply {
    match c {
        OcspCmd::Set(None) => Reply::error(sslca::ocsp_usage()),
        OcspCmd::Set(Some(b64)) => super::sslcert::reply(set(&b64)),
        OcspCmd::Show(None) => {
            let mut seen = Vec::new();
            let mut text = String::from("# Certificate IDs\n");
            for (f, r) in stapled() {
                let key = ocsp::key_hex(&r);
                if !seen.iter().any(|(k, _)| *k == key) {
                    text.push_str(&ocsp::id_lines(&r));
                    seen.push((key, f.display().to_string()));
                }
            }
            let j = json!(seen.iter().map(|(k, f)| json!({"id": k, "file": f})).collect::<Vec<_>>());
            Reply::ok(text, j)
        }
        OcspCmd::Show(Some(id)) => {
            match stapled().into_iter().find(|(_, r)| ocsp::key_hex(r) == id.to_ascii_lowercase()) {
                Some((_, r)) => {
                    let text = ocsp::details(&r, crate::control::sslcert::openssl_time);
                    Reply::ok(text.clone(), json!({ "response": text }))
                }
                None => Reply::error("Certificate ID does not match any certificate."),
            }
        }
    }
}
