//! Issue 17 item 4: CA and CRL files, OCSP responses and partial certificate payloads changed on
//! the control socket (`set|add|commit|abort|new|del|show ssl ca-file|crl-file`,
//! `set|show ssl ocsp-response`, `set ssl cert FILE.key|.ocsp|.issuer`), checked with real
//! handshakes: a commit applies to the next handshake without a reload, anything else changes
//! nothing, and what was committed is written so a reload keeps it. Replies are compared with
//! HAProxy 2.6's for the same commands.

mod common;
use common::pki::TestCa;
use common::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn der(pem: &str) -> rustls_pki_types::CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Accepts any server certificate and keeps the OCSP response stapled to it.
#[derive(Debug)]
struct Stapled(Arc<Mutex<Option<Vec<u8>>>>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Stapled {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        ocsp: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap() = Some(ocsp.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// One GET over a new TLS connection (fresh client config: no resumption), optionally with a
/// client certificate: the body, or the error; and the OCSP response stapled, if any.
fn get_tls(port: u16, client: Option<&(String, String)>) -> (Result<String, String>, Option<Vec<u8>>) {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(None));
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Stapled(seen.clone(), provider)));
    let cfg = match client {
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![der(cert)],
                rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let r = https_get_raw(Arc::new(cfg), port).and_then(|text| match text.split_once("\r\n\r\n") {
        Some((_, b)) => Ok(b.to_string()),
        None => Err(format!("no response: {text:?}")),
    });
    let ocsp = seen.lock().unwrap().clone().filter(|o| !o.is_empty());
    (r, ocsp)
}

fn accepted(port: u16, client: &(String, String)) -> bool {
    get_tls(port, Some(client)).0.is_ok_and(|b| b.starts_with("cn="))
}

/// A command ending in `<<`, its payload and the empty line that ends it.
fn with_payload(cmd: &str, payload: &str) -> Vec<String> {
    let mut v = vec![cmd.to_string()];
    v.extend(payload.lines().map(str::to_string));
    v.push(String::new());
    v
}

fn ctl(lb: &Lbha, lines: &[String]) -> String {
    lb.ctl(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

fn config(port: u16, bind: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "l"
bind = ["127.0.0.1:{port} {bind}"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", lf_string = "cn=%[ssl_c_s_dn(CN)]" }} }}]
"#
    )
}

#[test]
fn ca_file_commit_applies_to_new_handshakes_and_survives_a_reload() {
    let dir = TempDir::new("ssl-ca-rt");
    let (a, b) = (TestCa::new("CA A"), TestCa::new("CA B"));
    let srv = a.leaf(None, "localhost", 1, false, None);
    let srv_f = dir.write("srv.pem", &format!("{}{}", srv.0, srv.1));
    let ca_f = dir.write("ca.pem", &a.pem);
    let f = ca_f.display().to_string();
    let alice = a.leaf(None, "alice", 2, true, None);
    let bob = b.leaf(None, "bob", 3, true, None);
    let port = free_port();
    let lb = Lbha::start(&config(port, &format!("ssl crt {} ca-file {f} verify required", srv_f.display())), &[port]);
    assert!(accepted(port, &alice));
    assert!(!accepted(port, &bob), "CA B is not trusted yet");
    assert_eq!(lb.ctl(&["show ssl ca-file"]), format!("# filename\n{f} - 1 certificate(s)\n\n"));

    // Staged, shown with `*`, aborted: nothing changes.
    let out = ctl(&lb, &with_payload(&format!("set ssl ca-file {f} <<"), &b.pem));
    assert_eq!(out, format!("transaction created for CA {f}!\n\n"));
    assert_eq!(
        lb.ctl(&["show ssl ca-file"]),
        format!("# transaction\n*{f} - 1 certificate(s)\n# filename\n{f} - 1 certificate(s)\n\n")
    );
    let show = lb.ctl(&[&format!("show ssl ca-file *{f}")]);
    assert!(show.starts_with(&format!("Filename: *{f}\nStatus: Unused\n \nCertificate #1:\nSerial: ")), "{show}");
    assert!(show.contains("Subject: /CN=CA B\nIssuer: /CN=CA B\n"), "{show}");
    assert!(!accepted(port, &bob), "not before the commit");
    assert_eq!(lb.ctl(&[&format!("abort ssl ca-file {f}")]), format!("Transaction aborted for certificate '{f}'!\n\n"));
    assert!(!accepted(port, &bob) && accepted(port, &alice));
    assert_eq!(
        lb.ctl(&[&format!("commit ssl ca-file {f}")]),
        format!("No ongoing transaction! !\nCan't commit {f}!\n\n")
    );

    // A malformed payload is refused; the running verifier and the file stay.
    for bad in ["garbage", &alice.1, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"] {
        let out = ctl(&lb, &with_payload(&format!("set ssl ca-file {f} <<"), bad));
        assert_eq!(out, format!("Invalid payload\nCan't update {f}!\n\n"), "{bad}");
    }
    assert!(lb.ctl(&["show ssl ca-file"]).starts_with("# filename\n"), "no transaction opened");
    let out = ctl(&lb, &with_payload("set ssl ca-file /nope.pem <<", &b.pem));
    assert_eq!(
        out,
        "Can't replace a CA file which is not referenced by the configuration!\nCan't update /nope.pem!\n\n"
    );
    assert_eq!(std::fs::read_to_string(&ca_f).unwrap(), a.pem);

    // add: CA B next to CA A; committed: both trusted at once, written to the file.
    let mut lines = with_payload(&format!("add ssl ca-file {f} <<"), &b.pem);
    lines.push("show ssl ca-file".into());
    lines.push(format!("commit ssl ca-file {f}"));
    let out = ctl(&lb, &lines);
    assert_eq!(
        out,
        format!(
            "transaction created for CA {f}!\n\n# transaction\n*{f} - 2 certificate(s)\n# filename\n{f} - 1 certificate(s)\n\nCommitting {f}.\nSuccess!\n\n"
        )
    );
    assert!(accepted(port, &bob) && accepted(port, &alice));
    let show = lb.ctl(&[&format!("show ssl ca-file {f}:2")]);
    assert!(show.starts_with(&format!("Filename: {f}\nStatus: Used\n \nCertificate #2:\n")), "{show}");
    assert!(show.contains("Subject: /CN=CA B\n") && !show.contains("CA A"), "{show}");
    assert_eq!(std::fs::read_to_string(&ca_f).unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    assert!(lb.log_text().contains("replaced"), "logged");

    // A reload reads the file: nothing committed is lost.
    assert!(lb.ctl(&["reload"]).starts_with("Success=1"), "reload");
    assert!(accepted(port, &bob) && accepted(port, &alice));

    // set replaces: CA B alone; alice is refused from the next handshake on.
    let mut lines = with_payload(&format!("set ssl ca-file {f} <<"), &b.pem);
    lines.push(format!("commit ssl ca-file {f}"));
    // (The config before the reload may still hold the file for a while: a dot for it too.)
    let out = ctl(&lb, &lines);
    assert!(out.contains(&format!("\nCommitting {f}.")) && out.ends_with("\nSuccess!\n\n"), "{out}");
    assert!(accepted(port, &bob) && !accepted(port, &alice));

    // new/del: a file no bind uses lives in memory; a used one cannot be deleted.
    let n = dir.0.join("n.pem").display().to_string();
    assert_eq!(lb.ctl(&[&format!("new ssl ca-file {n}")]), format!("New CA file created '{n}'!\n\n"));
    assert_eq!(lb.ctl(&[&format!("new ssl ca-file {f}")]), format!("CA file '{f}' already exists!\n\n"));
    let mut lines = with_payload(&format!("set ssl ca-file {n} <<"), &a.pem);
    lines.push(format!("commit ssl ca-file {n}"));
    assert!(ctl(&lb, &lines).ends_with(&format!("Committing {n}\nSuccess!\n\n")));
    assert!(!Path::new(&n).exists());
    assert_eq!(
        lb.ctl(&[&format!("del ssl ca-file {f}")]),
        format!("Can't remove the CA file: CA file '{f}' in use, can't be deleted!\n\n")
    );
    assert_eq!(lb.ctl(&[&format!("del ssl ca-file {n}")]), format!("CA file '{n}' deleted!\n\n"));
    // Changing needs admin, reading operator.
    let out = lb.ctl(&["operator", &format!("commit ssl ca-file {f}"), "show ssl ca-file"]);
    assert!(out.contains("Permission denied") && out.contains(&format!("{f} - 1 certificate(s)")), "{out}");
}

#[test]
fn crl_commit_revokes_at_once_and_a_bad_one_changes_nothing() {
    let dir = TempDir::new("ssl-crl-rt");
    let a = TestCa::new("CA A");
    let srv = a.leaf(None, "localhost", 1, false, None);
    let srv_f = dir.write("srv.pem", &format!("{}{}", srv.0, srv.1));
    let ca_f = dir.write("ca.pem", &a.pem);
    let crl_f = dir.write("crl.pem", &a.crl(&[99]));
    let f = crl_f.display().to_string();
    let (alice, carol) = (a.leaf(None, "alice", 2, true, None), a.leaf(None, "carol", 4, true, None));
    let port = free_port();
    let bind = format!("ssl crt {} ca-file {} verify required crl-file {f}", srv_f.display(), ca_f.display());
    let lb = Lbha::start(&config(port, &bind), &[port]);
    assert!(accepted(port, &alice) && accepted(port, &carol));
    assert_eq!(lb.ctl(&["show ssl crl-file"]), format!("# filename\n{f}\n\n"));
    let show = lb.ctl(&[&format!("show ssl crl-file {f}")]);
    assert!(show.contains("Issuer: /CN=CA A\n") && show.contains("    Serial Number: 0A63\n"), "{show}");

    let revoking = a.crl(&[2]);
    let out = ctl(&lb, &with_payload(&format!("set ssl crl-file {f} <<"), &revoking));
    assert_eq!(out, format!("transaction created for CRL {f}!\n\n"));
    assert!(accepted(port, &alice), "not before the commit");
    assert_eq!(
        lb.ctl(&[&format!("abort ssl crl-file {f}")]),
        format!("Transaction aborted for certificate '{f}'!\n\n")
    );
    assert!(accepted(port, &alice));
    // A certificate is no CRL: refused, nothing staged.
    let out = ctl(&lb, &with_payload(&format!("set ssl crl-file {f} <<"), &a.pem));
    assert_eq!(out, format!("Invalid payload\nCan't update {f}!\n\n"));
    assert_eq!(
        lb.ctl(&[&format!("commit ssl crl-file {f}")]),
        format!("No ongoing transaction! !\nCan't commit {f}!\n\n")
    );

    let mut lines = with_payload(&format!("set ssl crl-file {f} <<"), &revoking);
    lines.push(format!("show ssl crl-file *{f}"));
    lines.push(format!("commit ssl crl-file {f}"));
    let out = ctl(&lb, &lines);
    assert!(
        out.contains(&format!("Filename: *{f}\nStatus: Unused\n \nCertificate Revocation List #1:\nVersion 2\n")),
        "{out}"
    );
    assert!(
        out.contains(
            "Revoked Certificates:\n    Serial Number: 0A02\n        Revocation Date: Jan  2 00:00:00 2024 GMT\n"
        ),
        "{out}"
    );
    assert!(out.ends_with(&format!("Committing {f}.\nSuccess!\n\n")), "{out}");
    assert!(!accepted(port, &alice), "revoked from the next handshake on");
    assert!(accepted(port, &carol));
    assert!(std::fs::read_to_string(&crl_f).unwrap().contains("BEGIN X509 CRL"));
    assert!(lb.ctl(&["reload"]).starts_with("Success=1"), "reload");
    assert!(!accepted(port, &alice) && accepted(port, &carol), "the committed CRL is kept");
}

#[test]
fn ca_and_crl_replies_match_haproxy() {
    require_tool("haproxy", "haproxy");
    let (a, b) = (TestCa::new("CA A"), TestCa::new("CA B"));
    let srv = a.leaf(None, "localhost", 1, false, None);
    let files = |dir: &TempDir| {
        let s = dir.write("srv.pem", &format!("{}{}", srv.0, srv.1));
        (s, dir.write("ca.pem", &a.pem), dir.write("crl.pem", &a.crl(&[99])))
    };
    let hdir = TempDir::new("ssl-ca-haproxy");
    let (hs, hca, hcrl) = files(&hdir);
    let (hport, lport) = (free_port(), free_port());
    let sock = hdir.0.join("stats.sock");
    let cfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend f\n  bind 127.0.0.1:{hport} ssl crt {} ca-file {} verify required crl-file {}\n  http-request return status 200\n",
        sock.display(),
        hs.display(),
        hca.display(),
        hcrl.display()
    );
    let (_h, _hd) = haproxy(&cfg, hport);
    let ldir = TempDir::new("ssl-ca-lbha");
    let (ls, lca, lcrl) = files(&ldir);
    let lb = Lbha::start(
        &config(
            lport,
            &format!("ssl crt {} ca-file {} verify required crl-file {}", ls.display(), lca.display(), lcrl.display()),
        ),
        &[lport],
    );
    // The same commands on both, with each side's directory as `@`.
    let script: Vec<Vec<String>> = vec![
        vec!["show ssl ca-file @/ca.pem".into()],
        vec!["show ssl ca-file @/ca.pem:1".into()],
        with_payload("set ssl ca-file @/ca.pem <<", &b.pem),
        with_payload("set ssl ca-file @/ca.pem <<", &b.pem),
        vec!["show ssl ca-file *@/ca.pem".into()],
        with_payload("set ssl ca-file @/other.pem <<", &b.pem),
        vec!["abort ssl ca-file @/ca.pem".into()],
        vec!["abort ssl ca-file @/ca.pem".into()],
        vec!["commit ssl ca-file @/ca.pem".into()],
        with_payload("set ssl ca-file @/ca.pem <<", "garbage"),
        with_payload("set ssl ca-file @/nope.pem <<", &b.pem),
        vec!["set ssl ca-file @/ca.pem".into()],
        vec!["commit ssl ca-file".into()],
        vec!["abort ssl ca-file".into()],
        vec!["del ssl ca-file".into()],
        vec!["new ssl ca-file".into()],
        vec!["new ssl ca-file @/n.pem".into()],
        vec!["new ssl ca-file @/n.pem".into()],
        vec!["del ssl ca-file @/ca.pem".into()],
        with_payload("set ssl ca-file @/n.pem <<", &b.pem),
        vec!["del ssl ca-file @/n.pem".into()],
        vec!["commit ssl ca-file @/n.pem".into()],
        vec!["del ssl ca-file @/n.pem".into()],
        vec!["del ssl ca-file @/n.pem".into()],
        with_payload("set ssl ca-file @/ca.pem <<", &format!("{}{}", a.pem, b.pem)),
        vec!["commit ssl ca-file @/ca.pem".into()],
        vec!["show ssl ca-file @/ca.pem:2".into()],
        vec!["show ssl ca-file @/nope.pem".into()],
        vec!["show ssl crl-file".into()],
        vec!["show ssl crl-file @/crl.pem".into()],
        with_payload("set ssl crl-file @/crl.pem <<", &a.crl(&[2])),
        vec!["show ssl crl-file".into()],
        vec!["commit ssl crl-file @/crl.pem".into()],
        with_payload("set ssl crl-file @/crl.pem <<", "garbage"),
        vec!["set ssl crl-file".into()],
        vec!["abort ssl crl-file".into()],
        vec!["del ssl crl-file".into()],
        vec!["new ssl crl-file @/n.crl".into()],
        vec!["new ssl crl-file @/n.crl".into()],
        vec!["del ssl crl-file @/n.crl".into()],
        vec!["del ssl crl-file @/crl.pem".into()],
        vec!["show ssl crl-file @/nope".into()],
    ];
    for cmd in &script {
        let on = |d: &Path| cmd.iter().map(|l| l.replace('@', &d.display().to_string())).collect::<Vec<_>>();
        let h = ask_socket(&sock, &on(&hdir.0).join("\n")).replace(&hdir.0.display().to_string(), "@");
        // HAProxy lists its `@system-ca` too.
        let h: String = h.lines().filter(|l| !l.starts_with("@system-ca")).map(|l| format!("{l}\n")).collect();
        let l = ctl(&lb, &on(&ldir.0)).replace(&ldir.0.display().to_string(), "@");
        // lbha never sends the stray empty lines some HAProxy messages end with.
        assert_eq!(l.trim_end(), h.trim_end(), "{}", cmd[0]);
    }
}

/// `openssl ocsp` answering for `cert` (PEM) as `ca`, with `status` `V` (good) or `R`.
fn ocsp_response(dir: &TempDir, ca: &TestCa, cert: &str, serial: u8, status: char, tag: &str) -> Vec<u8> {
    let ca_f = dir.write(&format!("ocsp-ca-{tag}.pem"), &ca.pem);
    let key_f = dir.write(&format!("ocsp-ca-{tag}.key"), &ca.key_pem);
    let cert_f = dir.write(&format!("ocsp-leaf-{tag}.pem"), cert);
    let revoked = if status == 'R' { "240102000000Z" } else { "" };
    let index = dir.write(
        &format!("index-{tag}.txt"),
        &format!("{status}\t991231235959Z\t{revoked}\t0A{serial:02X}\tunknown\t/CN=localhost\n"),
    );
    let out = dir.0.join(format!("resp-{tag}.der"));
    let st = std::process::Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(&index)
        .arg("-rsigner")
        .arg(&ca_f)
        .arg("-rkey")
        .arg(&key_f)
        .arg("-CA")
        .arg(&ca_f)
        .arg("-issuer")
        .arg(&ca_f)
        .arg("-cert")
        .arg(&cert_f)
        .arg("-respout")
        .arg(&out)
        .args(["-ndays", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl ocsp");
    std::fs::read(&out).unwrap()
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[test]
fn ocsp_response_set_stapled_shown_and_kept_by_a_reload() {
    require_tool("openssl", "openssl");
    let dir = TempDir::new("ssl-ocsp-rt");
    let a = TestCa::new("CA A");
    let srv = a.leaf(None, "localhost", 1, false, None);
    let srv_f = dir.write("srv.pem", &format!("{}{}", srv.0, srv.1));
    let f = srv_f.display().to_string();
    let port = free_port();
    let lb = Lbha::start(&config(port, &format!("ssl crt {f}")), &[port]);
    assert_eq!(get_tls(port, None).1, None, "nothing stapled yet");
    assert_eq!(lb.ctl(&["show ssl ocsp-response"]), "# Certificate IDs\n\n");

    let good = ocsp_response(&dir, &a, &srv.0, 1, 'V', "good");
    assert_eq!(lb.ctl(&[&format!("set ssl ocsp-response {}", b64(&good))]), "OCSP Response updated!\n\n");
    assert_eq!(get_tls(port, None).1.as_deref(), Some(good.as_slice()), "stapled to the next handshake");
    assert_eq!(std::fs::read(format!("{f}.ocsp")).unwrap(), good, "written next to the certificate");
    let list = lb.ctl(&["show ssl ocsp-response"]);
    let id = list.lines().find_map(|l| l.strip_prefix("Certificate ID key : ")).expect("an ID").to_string();
    assert!(id.starts_with("303b300906052b0e03021a0500") && list.contains("   Serial Number: 0A01\n"), "{list}");
    let detail = lb.ctl(&[&format!("show ssl ocsp-response {id}")]);
    assert!(detail.starts_with("OCSP Response Data:\n    OCSP Response Status: successful (0x0)\n"), "{detail}");
    assert!(detail.contains("    Responder Id: CN = CA A\n") && detail.contains("    Cert Status: good\n"), "{detail}");
    assert!(lb.ctl(&[&format!("show ssl cert {f}")]).contains(&format!("OCSP Response Key: {id}\n")));

    // Refused: not base64, not a response, a response about another certificate.
    assert_eq!(
        lb.ctl(&["set ssl ocsp-response !!!"]),
        "'set ssl ocsp-response' received invalid base64 encoded response.\n\n"
    );
    assert_eq!(lb.ctl(&["set ssl ocsp-response"]), "'set ssl ocsp-response' expects response in base64 encoding.\n\n");
    assert_eq!(lb.ctl(&[&format!("set ssl ocsp-response {}", b64(b"junk"))]), "Unable to parse OCSP response.\n\n");
    let other = a.leaf(None, "localhost", 7, false, None);
    let foreign = ocsp_response(&dir, &a, &other.0, 7, 'V', "foreign");
    assert_eq!(
        lb.ctl(&[&format!("set ssl ocsp-response {}", b64(&foreign))]),
        "OCSP single response: Certificate ID does not match any certificate or issuer.\n\n"
    );
    assert_eq!(lb.ctl(&["show ssl ocsp-response 00"]), "Certificate ID does not match any certificate.\n\n");
    assert_eq!(get_tls(port, None).1.as_deref(), Some(good.as_slice()), "unchanged");

    // The `FILE.issuer` and `FILE.ocsp` forms of `set ssl cert` (payload in base64), committed.
    let revoked = ocsp_response(&dir, &a, &srv.0, 1, 'R', "revoked");
    let mut lines = with_payload(&format!("set ssl cert {f}.issuer <<"), &a.pem);
    lines.extend(with_payload(&format!("set ssl cert {f}.ocsp <<"), &b64(&revoked)));
    let out = ctl(&lb, &lines);
    assert_eq!(
        out,
        format!("Transaction created for certificate {f}!\n\nTransaction updated for certificate {f}!\n\n")
    );
    assert_eq!(get_tls(port, None).1.as_deref(), Some(good.as_slice()), "not before the commit");
    assert_eq!(lb.ctl(&[&format!("commit ssl cert {f}")]), format!("Committing {f}.\nSuccess!\n\n"));
    assert_eq!(get_tls(port, None).1.as_deref(), Some(revoked.as_slice()));
    assert_eq!(std::fs::read_to_string(format!("{f}.issuer")).unwrap().trim(), a.pem.trim());
    let detail = lb.ctl(&[&format!("show ssl ocsp-response {id}")]);
    assert!(detail.contains("    Cert Status: revoked\n"), "{detail}");
    let out = ctl(&lb, &with_payload(&format!("set ssl cert {f}.sctl <<"), "AAAA"));
    assert!(out.starts_with("Signed Certificate Timestamp lists are not supported by lbha"), "{out}");
    assert!(lb.ctl(&["reload"]).starts_with("Success=1"), "reload");
    assert_eq!(get_tls(port, None).1.as_deref(), Some(revoked.as_slice()), "a reload staples the committed response");

    // HAProxy 2.6 on the files lbha wrote (`FILE.ocsp`, `FILE.issuer`) shows the same.
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("skipped: the HAProxy comparison needs haproxy");
        return;
    }
    let hport = free_port();
    let sock = dir.0.join("stats.sock");
    let cfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend f\n  bind 127.0.0.1:{hport} ssl crt {f}\n  http-request return status 200\n",
        sock.display()
    );
    let (_h, _hd) = haproxy(&cfg, hport);
    assert_eq!(get_tls(hport, None).1.as_deref(), Some(revoked.as_slice()), "HAProxy staples the same");
    assert_eq!(lb.ctl(&["show ssl ocsp-response"]).trim_end(), ask_socket(&sock, "show ssl ocsp-response").trim_end());
    let ours = lb.ctl(&[&format!("show ssl ocsp-response {id}")]);
    let theirs = ask_socket(&sock, &format!("show ssl ocsp-response {id}"));
    let upto = |t: &str| t.lines().take_while(|l| !l.starts_with("    Next Update")).collect::<Vec<_>>().join("\n");
    assert_eq!(upto(&ours), upto(&theirs), "{theirs}");
    let key = |t: &str| t.lines().find(|l| l.starts_with("OCSP Response Key")).map(str::to_string);
    assert_eq!(key(&lb.ctl(&[&format!("show ssl cert {f}")])), key(&ask_socket(&sock, &format!("show ssl cert {f}"))));
}

#[test]
fn partial_cert_payloads_keep_the_other_part() {
    let dir = TempDir::new("ssl-partial-rt");
    let a = TestCa::new("CA A");
    let k1 = rcgen::KeyPair::generate().unwrap();
    let c1 = a.leaf(None, "one", 1, false, Some(&k1));
    let c2 = a.leaf(None, "two", 2, false, Some(&k1));
    let (c3, k3) = a.leaf(None, "three", 3, false, None);
    let srv_f = dir.write("srv.pem", &format!("{}{}", c1.0, c1.1));
    let f = srv_f.display().to_string();
    let port = free_port();
    let lb = Lbha::start(&config(port, &format!("ssl crt {f}")), &[port]);
    let served = || {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Stapled(Arc::default(), provider)))
            .with_no_client_auth();
        let mut conn = rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
        let mut tcp = connect(port);
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).unwrap();
        }
        conn.peer_certificates().unwrap()[0].clone()
    };
    assert_eq!(served(), der(&c1.0));
    // A certificate alone keeps the file's key.
    let mut lines = with_payload(&format!("set ssl cert {f} <<"), &c2.0);
    lines.push(format!("commit ssl cert {f}"));
    assert!(ctl(&lb, &lines).ends_with(&format!("Committing {f}.\nSuccess!\n\n")));
    assert_eq!(served(), der(&c2.0));
    // A new certificate whose key comes after, as `FILE.key` or as a key alone.
    let mut lines = with_payload(&format!("set ssl cert {f} <<"), &c3);
    lines.push(format!("commit ssl cert {f}"));
    let out = ctl(&lb, &lines);
    assert!(out.contains("inconsistencies between private key and certificate"), "{out}");
    assert_eq!(served(), der(&c2.0), "the old pair keeps serving");
    let mut lines = with_payload(&format!("set ssl cert {f}.key <<"), &k3);
    lines.push(format!("commit ssl cert {f}"));
    assert_eq!(ctl(&lb, &lines), format!("Transaction updated for certificate {f}!\n\nCommitting {f}.\nSuccess!\n\n"));
    assert_eq!(served(), der(&c3));
    let text = std::fs::read_to_string(&srv_f).unwrap();
    assert!(text.contains(k3.trim()) && text.contains(c3.trim()), "the file holds the new pair");
    // A key alone on the file's own name: back to the first key, with the second certificate.
    let mut lines = with_payload(&format!("set ssl cert {f} <<"), &c2.0);
    lines.extend(with_payload(&format!("set ssl cert {f} <<"), &c1.1));
    lines.push(format!("commit ssl cert {f}"));
    assert!(ctl(&lb, &lines).ends_with(&format!("Committing {f}.\nSuccess!\n\n")));
    assert_eq!(served(), der(&c2.0));
    let out = ctl(&lb, &with_payload(&format!("set ssl cert {f}.key <<"), &c2.0));
    assert!(out.starts_with(&format!("unable to load private key from file '{f}'.")), "{out}");
    assert!(lb.ctl(&["show ssl cert"]).starts_with("# filename\n"), "no transaction left open");
}
