//! Issue 17 item 4: certificate rotation on the control socket (`set ssl cert FILE <<`,
//! `commit|abort ssl cert`, `show ssl cert`, `new|del ssl cert`), HAProxy 2.6's replies, checked
//! with a real TLS client for which certificate a new handshake gets; a committed certificate is
//! written to its file, so a reload keeps serving it.

mod common;
use common::*;
use std::sync::Arc;

struct Pair {
    pem: String,
    cert: String,
    key: String,
    der: rustls_pki_types::CertificateDer<'static>,
}

fn pair(name: &str) -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), name.to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    Pair { pem: format!("{cert}{key}"), cert, key, der: ck.cert.der().clone() }
}

/// The certificate a new TLS 1.3 handshake gets (the client trusts both).
fn served(port: u16, trust: &[&Pair]) -> rustls_pki_types::CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for p in trust {
        roots.add(p.der.clone()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
        )
        .await
        .expect("handshake in time")
        .expect("handshake");
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    })
}

/// A `set ssl cert` line, its payload and the empty line that ends it.
fn set_lines<'a>(file: &'a str, payload: &'a str) -> Vec<String> {
    let mut v = vec![format!("set ssl cert {file} <<")];
    v.extend(payload.lines().map(str::to_string));
    v.push(String::new());
    v
}

fn ctl(lb: &Lbha, lines: &[String]) -> String {
    lb.ctl(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn set_commit_abort_and_reload_keep_the_committed_certificate() {
    let dir = TempDir::new("sslcert");
    let (a, b) = (pair("a.example"), pair("b.example"));
    let site = dir.write("site.pem", &a.pem);
    let f = site.display().to_string();
    let port = free_port();
    let back = Backend::start("A");
    let cfg = format!(
        "[defaults]\nmode = \"http\"\n[[listen]]\nname = \"tls\"\nbind = [\"127.0.0.1:{port} ssl crt {f}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
        back.port
    );
    let lb = Lbha::start(&cfg, &[port]);
    let trust = [&a, &b];
    assert_eq!(served(port, &trust), a.der);
    assert_eq!(lb.ctl(&["show ssl cert"]), format!("# filename\n{f}\n\n"));
    let show = lb.ctl(&[&format!("show ssl cert {f}")]);
    assert!(show.starts_with(&format!("Filename: {f}\nStatus: Used\nSerial: ")), "{show}");
    assert!(show.contains("Subject Alternative Name: DNS:localhost, DNS:a.example\nAlgorithm: EC256\n"), "{show}");

    // Staged, not served; shown with `*`; aborted.
    let mut lines = set_lines(&f, &b.pem);
    lines.push("show ssl cert".into());
    lines.push(format!("show ssl cert *{f}"));
    let out = ctl(&lb, &lines);
    assert!(
        out.starts_with(&format!(
            "Transaction created for certificate {f}!\n\n# transaction\n*{f}\n# filename\n{f}\n\n"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("Filename: *{f}\nStatus: Unused\n")) && out.contains("DNS:b.example"), "{out}");
    assert_eq!(served(port, &trust), a.der, "not served before the commit");
    assert_eq!(lb.ctl(&[&format!("abort ssl cert {f}")]), format!("Transaction aborted for certificate '{f}'!\n\n"));
    assert_eq!(served(port, &trust), a.der);
    assert_eq!(lb.ctl(&[&format!("commit ssl cert {f}")]), format!("No ongoing transaction! !\nCan't commit {f}!\n\n"));

    // A bad payload and a key that does not fit are refused; the old certificate keeps serving.
    let out = ctl(&lb, &set_lines(&f, "garbage"));
    assert_eq!(
        out,
        format!("unable to load certificate from file '{f}'.\nCan't load the payload\nCan't update {f}!\n\n")
    );
    let mut lines = set_lines(&f, &format!("{}{}", b.cert, a.key));
    lines.push(format!("commit ssl cert {f}"));
    lines.push(format!("abort ssl cert {f}"));
    let out = ctl(&lb, &lines);
    assert!(
        out.contains(&format!(
            "inconsistencies between private key and certificate loaded '{f}'.\nCan't commit {f}!\n"
        )),
        "{out}"
    );
    assert_eq!(served(port, &trust), a.der);
    assert_eq!(std::fs::read_to_string(&site).unwrap(), a.pem, "the file is untouched");
    let out = lb.ctl(&["set ssl cert /nope.pem <<", "x", ""]);
    assert!(out.starts_with("Can't replace a certificate which is not referenced by the configuration!\n"), "{out}");
    assert_eq!(
        lb.ctl(&[&format!("set ssl cert {f}")]),
        "'set ssl cert expects a filename and a certificate as a payload\n\n"
    );

    // Committed: served to the next handshake, without a reload, and written to the file.
    let mut lines = set_lines(&f, &b.pem);
    lines.push(format!("commit ssl cert {f}"));
    let out = ctl(&lb, &lines);
    assert_eq!(out, format!("Transaction created for certificate {f}!\n\nCommitting {f}.\nSuccess!\n\n"));
    assert_eq!(served(port, &trust), b.der);
    assert_eq!(std::fs::read_to_string(&site).unwrap(), b.pem);
    assert!(lb.log_text().contains("replaced"), "logged");

    // A reload reads the file: still the committed certificate.
    assert!(lb.ctl(&["reload"]).starts_with("Success=1"), "reload");
    assert_eq!(served(port, &trust), b.der);
    // A certificate alone keeps the file's key: here the old certificate, whose key differs.
    let mut lines = set_lines(&f, &a.cert);
    lines.push(format!("commit ssl cert {f}"));
    lines.push(format!("abort ssl cert {f}"));
    assert!(ctl(&lb, &lines).contains("inconsistencies between private key"));
    assert_eq!(served(port, &trust), b.der);
}

#[test]
fn new_and_del_ssl_cert_and_levels() {
    let dir = TempDir::new("sslcert-new");
    let a = pair("a.example");
    let site = dir.write("site.pem", &a.pem);
    let f = site.display().to_string();
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"tls\"\nbind = [\"127.0.0.1:{port} ssl crt {f}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:9\" }}]\n"
    );
    let lb = Lbha::start(&cfg, &[port]);
    let n = dir.0.join("n.pem").display().to_string();
    assert_eq!(lb.ctl(&[&format!("new ssl cert {n}")]), format!("New empty certificate store '{n}'!\n\n"));
    assert_eq!(lb.ctl(&[&format!("new ssl cert {f}")]), format!("Certificate '{f}' already exists!\n\n"));
    assert_eq!(
        lb.ctl(&[&format!("show ssl cert {n}")]),
        format!("Filename: {n}\nStatus: Empty\nOCSP Response Key: \n\n")
    );
    let list = lb.ctl(&["show ssl cert"]);
    assert!(list.contains(&format!("\n{n}\n")) && list.contains(&format!("\n{f}\n")), "{list}");
    assert_eq!(
        lb.ctl(&[&format!("del ssl cert {f}")]),
        format!("Can't remove the certificate: certificate '{f}' in use, can't be deleted!\n\n")
    );
    let mut lines = set_lines(&n, &a.pem);
    lines.push(format!("commit ssl cert {n}"));
    assert!(ctl(&lb, &lines).ends_with(&format!("Committing {n}\nSuccess!\n\n")));
    assert!(!std::path::Path::new(&n).exists(), "a certificate no bind serves stays in memory");
    assert_eq!(lb.ctl(&[&format!("del ssl cert {n}")]), format!("Certificate '{n}' deleted!\n\n"));
    assert_eq!(lb.ctl(&["del ssl cert"]), "'del ssl cert' expects a certificate name\n\n");
    // Changing certificates needs admin; reading them operator.
    let out = lb.ctl(&["operator", &format!("set ssl cert {f} <<"), "x", "", "show ssl cert"]);
    assert!(out.contains("Permission denied"), "{out}");
    assert!(out.ends_with(&format!("# filename\n{f}\n\n")), "{out}");
}
