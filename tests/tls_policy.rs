//! Issue 17 item 4: TLS policy on binds and towards servers (`ciphers`, `ssl-min-ver`, `curves`,
//! `ssl-default-*`), mutual TLS (`ca-file`, `verify`, `crl-file`) with the `ssl_c_*` fetches,
//! and client certificates towards servers (`crt`), tried with OpenSSL's s_client and rustls.

mod common;
use common::pki::TestCa;
use common::*;
use std::path::PathBuf;
use std::sync::Arc;

/// A CA, a server certificate for `localhost` and a client certificate for `alice`, both signed
/// by the CA, and a CRL revoking a second client certificate (`mallory`).
struct Pki {
    ca: PathBuf,
    server: PathBuf,
    client: PathBuf,
    revoked: PathBuf,
    crl: PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
}

fn pki(dir: &TempDir) -> Pki {
    let ca = TestCa::new("Test CA");
    let leaf = |cn: &str, serial: u8, client: bool| {
        let (cert, key) = ca.leaf(Some("Acme"), cn, serial, client, None);
        format!("{cert}{key}")
    };
    Pki {
        ca: dir.write("ca.pem", &ca.pem),
        server: dir.write("server.pem", &leaf("localhost", 1, false)),
        client: dir.write("alice.pem", &leaf("alice", 2, true)),
        revoked: dir.write("mallory.pem", &leaf("mallory", 3, true)),
        crl: dir.write("crl.pem", &ca.crl(&[3])),
        ca_der: ca.der.clone(),
    }
}

/// `openssl s_client` with extra arguments: the negotiated protocol and cipher, or `None` when
/// the handshake failed.
fn s_client(port: u16, args: &[&str]) -> Option<(String, String)> {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().find(|l| l.contains(", Cipher is "))?;
    let (proto, cipher) = line.split_once(", Cipher is ")?;
    if cipher.trim() == "(NONE)" {
        return None;
    }
    Some((proto.trim_start_matches("New, ").to_string(), cipher.trim().to_string()))
}

/// One HTTP/1.0 GET over TLS with rustls, optionally with a client certificate: the body, or
/// the error.
fn https_get(
    port: u16,
    ca: &rustls_pki_types::CertificateDer<'static>,
    client: Option<&PathBuf>,
) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some(p) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(p).unwrap().map(|c| c.unwrap()).collect();
            b.with_client_auth_cert(certs, rustls_pki_types::PrivateKeyDer::from_pem_file(p).unwrap()).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    let text = https_get_raw(Arc::new(cfg), port)?;
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text))
}

#[test]
fn policy_options_limit_what_real_clients_get() {
    require_tool("openssl", "openssl");
    let dir = TempDir::new("tls-policy");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap(); // ECDSA P-256
    let crt = dir.write("ec.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let (v13, only256, dflt, curves) = (free_port(), free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[global]
ssl_default_bind_options = "ssl-max-ver TLSv1.2"
ssl_default_bind_ciphers = "ECDHE+AESGCM:!AES128"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "l"
bind = [
  "127.0.0.1:{v13} ssl crt {crt} ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3",
  "127.0.0.1:{only256} ssl crt {crt} ciphers ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384",
  "127.0.0.1:{dflt} ssl crt {crt}",
  "127.0.0.1:{curves} ssl crt {crt} ssl-max-ver TLSv1.3 curves P-384",
]
http_request = [{{ return = {{ status = 200, body = "ok" }} }}]
"#,
        crt = crt.display()
    );
    let _l = Lbha::start(&cfg, &[v13, only256, dflt, curves]);
    // ssl-min-ver TLSv1.3 on the bind wins over the global ssl-max-ver TLSv1.2.
    assert_eq!(s_client(v13, &["-tls1_2"]), None);
    assert_eq!(s_client(v13, &["-tls1_3"]).unwrap().0, "TLSv1.3");
    // The bind's own cipher list (the DHE name rustls lacks is left out).
    assert_eq!(s_client(only256, &["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]), None);
    let (proto, cipher) = s_client(only256, &["-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"]).unwrap();
    assert_eq!((proto.as_str(), cipher.as_str()), ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"));
    // The global defaults: TLS 1.2 at most, no AES128.
    assert_eq!(s_client(dflt, &["-tls1_3"]), None);
    assert_eq!(s_client(dflt, &["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]), None);
    assert_eq!(s_client(dflt, &[]).unwrap().1, "ECDHE-ECDSA-AES256-GCM-SHA384");
    // curves P-384 only.
    assert_eq!(s_client(curves, &["-groups", "X25519"]), None);
    assert_eq!(s_client(curves, &["-groups", "P-384"]).unwrap().0, "TLSv1.3");
}

fn check(dir: &TempDir, cfg: &str) -> (i32, String) {
    let path = dir.write("check.toml", cfg);
    let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn options_rustls_cannot_honour_are_located_errors() {
    let dir = TempDir::new("tls-policy-err");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("c.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let cfg = |global: &str, bind_opts: &str, server: &str| {
        format!(
            "[global]\n{global}\n[defaults]\nmode = \"http\"\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:1 ssl crt {} {bind_opts}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:2\", ssl = true, verify = \"none\" {server} }}]\n",
            crt.display()
        )
    };
    let (code, err) = check(&dir, &cfg("", "ssl-max-ver TLSv1.1", ""));
    assert_eq!(code, 1);
    assert!(err.contains("listen[0].bind[0]") && err.contains("ssl-max-ver TLSv1.1"), "{err}");
    let (code, err) = check(&dir, &cfg("", "no-tlsv13 ciphers AES128-SHA:DES-CBC3-SHA", ""));
    assert_eq!(code, 1);
    assert!(err.contains("listen[0].bind[0]") && err.contains("ciphers"), "{err}");
    let (code, err) = check(&dir, &cfg("ssl_default_bind_ciphers = \"HIGH:!NOSUCH\"", "", ""));
    assert_eq!(code, 1);
    assert!(err.contains("global.ssl_default_bind_ciphers") && err.contains("NOSUCH"), "{err}");
    let (code, err) = check(&dir, &cfg("", "verify required", ""));
    assert_eq!(code, 1);
    assert!(err.contains("ca-file"), "{err}");
    let (code, err) = check(&dir, &cfg("", "", ", ssl_max_ver = \"TLSv1.0\""));
    assert_eq!(code, 1);
    assert!(err.contains("listen[0].servers[0].ssl_max_ver"), "{err}");
    let (code, err) = check(&dir, &cfg("ssl_default_server_options = \"no-tlsv12 no-tlsv13\"", "", ""));
    assert_eq!(code, 1);
    assert!(err.contains("global.ssl_default_server_options"), "{err}");
    // A list that also names supported suites is a warning, as lenient as HAProxy.
    let (code, err) = check(&dir, &cfg("", "ciphers ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA curves X448:X25519", ""));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("AES128-SHA") && err.contains("X448"), "{err}");
}

#[test]
fn mutual_tls_verifies_clients_and_exposes_their_certificate() {
    let dir = TempDir::new("tls-mtls");
    let pki = pki(&dir);
    let (req, opt, crl) = (free_port(), free_port(), free_port());
    let body = "used=%[ssl_c_used] verify=%[ssl_c_verify] s=%[ssl_c_s_dn] cn=%[ssl_c_s_dn(CN)] i=%[ssl_c_i_dn] serial=%[ssl_c_serial,hex] sha1=%[ssl_c_sha1,hex]";
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "l"
bind = [
  "127.0.0.1:{req} ssl crt {srv} ca-file {ca} verify required",
  "127.0.0.1:{opt} ssl crt {srv} ca-file {ca} verify optional",
  "127.0.0.1:{crl} ssl crt {srv} ca-file {ca} verify required crl-file {crlf}",
]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", lf_string = "{body}" }} }}]
"#,
        srv = pki.server.display(),
        ca = pki.ca.display(),
        crlf = pki.crl.display(),
    );
    let _l = Lbha::start(&cfg, &[req, opt, crl]);
    let alice = https_get(req, &pki.ca_der, Some(&pki.client)).unwrap();
    assert!(
        alice.starts_with("used=1 verify=0 s=/O=Acme/CN=alice cn=alice i=/CN=Test CA serial=0A02 sha1="),
        "{alice}"
    );
    let sha1 = alice.rsplit_once("sha1=").unwrap().1.trim();
    assert_eq!(sha1.len(), 40, "{alice}");
    assert!(https_get(req, &pki.ca_der, None).is_err(), "verify required refuses a client without a certificate");
    // A certificate from another CA is refused even with verify optional.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
    let stranger = dir.write("stranger.pem", &format!("{}{}", other.cert.pem(), other.signing_key.serialize_pem()));
    assert!(https_get(opt, &pki.ca_der, Some(&stranger)).is_err());
    let anon = https_get(opt, &pki.ca_der, None).unwrap();
    assert!(anon.starts_with("used=0 verify=0 s= cn="), "{anon}");
    // crl-file: the revoked certificate is refused, the other still served.
    assert!(https_get(crl, &pki.ca_der, Some(&pki.revoked)).is_err());
    assert!(https_get(crl, &pki.ca_der, Some(&pki.client)).unwrap().contains("cn=alice"));
    assert!(https_get(req, &pki.ca_der, Some(&pki.revoked)).unwrap().contains("cn=mallory"), "no CRL on that bind");
}

#[test]
fn servers_get_a_client_certificate_and_the_server_policy() {
    let dir = TempDir::new("tls-srv-crt");
    let pki = pki(&dir);
    let (up, with, without, v13) = (free_port(), free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[global]
ssl_default_server_options = "ssl-max-ver TLSv1.2"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "up"
bind = ["127.0.0.1:{up} ssl crt {srv} ca-file {ca} verify required"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", lf_string = "%[ssl_c_s_dn(CN)] %[ssl_fc_protocol]" }} }}]
[[listen]]
name = "with"
bind = ["127.0.0.1:{with}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, verify = "required", ca_file = "{ca}", sni = "localhost", crt = "{cli}" }}]
[[listen]]
name = "without"
bind = ["127.0.0.1:{without}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, verify = "required", ca_file = "{ca}", sni = "localhost" }}]
[[listen]]
name = "v13"
bind = ["127.0.0.1:{v13}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, verify = "none", crt = "{cli}", ssl_max_ver = "TLSv1.3", ssl_min_ver = "TLSv1.3" }}]
"#,
        srv = pki.server.display(),
        ca = pki.ca.display(),
        cli = pki.client.display(),
    );
    let _l = Lbha::start(&cfg, &[up, with, without, v13]);
    assert_eq!(get(with, "/").text(), "alice TLSv1.2", "ssl-default-server-options caps the version");
    assert_eq!(get(v13, "/").text(), "alice TLSv1.3", "the server's own ssl_min_ver wins");
    assert_eq!(get(without, "/").status, 503, "the upstream bind requires a client certificate");
}

/// A self-signed certificate made by OpenSSL (`rsa:2048` or `ec`), for `names` (the first is
/// the common name), written as one PEM file.
fn openssl_cert(dir: &std::path::Path, file: &str, kind: &str, names: &[&str]) -> PathBuf {
    let path = dir.join(file);
    let key_args: &[&str] = if kind == "rsa" {
        &["-newkey", "rsa:2048"]
    } else {
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    };
    let san = names.iter().map(|n| format!("DNS:{n}")).collect::<Vec<_>>().join(",");
    let (crt, key) = (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "2"])
        .args(key_args)
        .args(["-subj", &format!("/CN={}", names[0]), "-addext", &format!("subjectAltName={san}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pem = std::fs::read_to_string(&crt).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&path, pem).unwrap();
    path
}

/// s_client's whole output for one handshake.
fn s_client_text(port: u16, sni: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", sni])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn crt_list_filters_key_types_ocsp_and_strict_sni() {
    require_tool("openssl", "openssl");
    let dir = TempDir::new("tls-crt-list");
    openssl_cert(&dir.0, "default.pem", "ec", &["default.test"]);
    let ec = openssl_cert(&dir.0, "www-ec.pem", "ec", &["www.example.test"]);
    openssl_cert(&dir.0, "www-rsa.pem", "rsa", &["www.example.test"]);
    openssl_cert(&dir.0, "wild.pem", "ec", &["wild.other"]);
    // A minimal OCSPResponse (status "unauthorized"): stapled as it is.
    std::fs::write(format!("{}.ocsp", ec.display()), [0x30, 0x03, 0x0a, 0x01, 0x06]).unwrap();
    dir.write(
        "list.txt",
        "# certificate [options] [filters]\ndefault.pem\nwww-ec.pem\nwww-rsa.pem []\nwild.pem [] *.example.test !secret.example.test\n",
    );
    let (p, strict) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "l"
bind = ["127.0.0.1:{p} ssl crt-list list.txt", "127.0.0.1:{strict} ssl crt-list list.txt strict-sni"]
http_request = [{{ return = {{ status = 200, body = "ok" }} }}]
"#
    );
    let _l = Lbha::start_in(dir, &cfg, &[p, strict]);
    let subject = |text: &str| text.lines().find(|l| l.starts_with("subject=")).unwrap_or("").to_string();
    // One name, two key types: the client's signature algorithms choose.
    let rsa = s_client_text(p, "www.example.test", &["-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"]);
    assert!(rsa.contains("Server public key is 2048 bit") && subject(&rsa).contains("www.example.test"), "{rsa}");
    let ec = s_client_text(p, "www.example.test", &["-sigalgs", "ecdsa_secp256r1_sha256", "-status"]);
    assert!(ec.contains("Server public key is 256 bit") && subject(&ec).contains("www.example.test"), "{ec}");
    assert!(ec.contains("OCSP Response Status: unauthorized"), "the .ocsp file is stapled: {ec}");
    let no_ocsp = s_client_text(p, "default.test", &["-status"]);
    assert!(no_ocsp.contains("OCSP response: no response sent"), "{no_ocsp}");
    // crt-list filters: a wildcard with a negation; otherwise the first certificate.
    assert!(subject(&s_client_text(p, "api.example.test", &[])).contains("wild.other"));
    assert!(subject(&s_client_text(p, "secret.example.test", &[])).contains("default.test"));
    assert!(subject(&s_client_text(p, "elsewhere.test", &[])).contains("default.test"));
    // strict-sni: no certificate for the name, no handshake.
    assert!(subject(&s_client_text(strict, "elsewhere.test", &[])).is_empty());
    assert!(subject(&s_client_text(strict, "api.example.test", &[])).contains("wild.other"));
}

#[test]
fn crt_list_errors_name_the_file_and_line() {
    let dir = TempDir::new("tls-crt-list-err");
    let list = dir.write("list.txt", "missing.pem\n");
    let opts = dir.write("opts.txt", "# npn\na.pem [npn h2] a.test\n");
    let unknown = dir.write("unknown.txt", "\na.pem [alpn h2 no-tlsv12] a.test\n");
    let cfg = |f: &PathBuf| {
        format!(
            "[defaults]\nmode = \"http\"\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:1 ssl crt-list {}\"]\nhttp_request = [{{ deny = {{}} }}]\n",
            f.display()
        )
    };
    let (code, err) = check(&dir, &cfg(&list));
    assert_eq!(code, 1);
    assert!(err.contains("listen[0].bind[0]") && err.contains("missing.pem"), "{err}");
    let (code, err) = check(&dir, &cfg(&opts));
    assert_eq!(code, 1);
    assert!(err.contains("opts.txt: line 2") && err.contains("`npn` is not supported"), "{err}");
    let (code, err) = check(&dir, &cfg(&unknown));
    assert_eq!(code, 1);
    assert!(err.contains("unknown.txt: line 2") && err.contains("unknown ssl keyword \"no-tlsv12\""), "{err}");
    // A line asking for client certificates without any ca-file, on the line or the bind.
    ck_pair(&dir, "a.pem", "a.test");
    let noca = dir.write("noca.txt", "a.pem\na.pem [verify required] b.test\n");
    let (code, err) = check(&dir, &cfg(&noca));
    assert_eq!(code, 1);
    assert!(err.contains("noca.txt: line 2") && err.contains("ca-file"), "{err}");
}

/// A self-signed rcgen certificate for `name`, written as one PEM file.
fn ck_pair(dir: &TempDir, file: &str, name: &str) -> PathBuf {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    dir.write(file, &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// One HTTP/1.0 GET to `sni` (and `Host: host`) with rustls: the status and body (empty after
/// an h2 handshake) and the ALPN protocol agreed, or the error.
fn get_as(
    port: u16,
    sni: &str,
    host: &str,
    ca: &rustls_pki_types::CertificateDer<'static>,
    client: Option<&PathBuf>,
    tls12_only: bool,
) -> Result<(String, Option<String>), String> {
    use rustls_pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12_only { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some(p) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(p).unwrap().map(|c| c.unwrap()).collect();
            b.with_client_auth_cert(certs, rustls_pki_types::PrivateKeyDer::from_pem_file(p).unwrap()).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let conn = rustls::ClientConnection::new(Arc::new(cfg), sni.to_string().try_into().unwrap()).unwrap();
    let tcp = connect(port);
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    let alpn = s.conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).to_string());
    if alpn.as_deref() == Some("h2") {
        // The preface and empty SETTINGS: the server's SETTINGS back (or TLS 1.3's late alert).
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        return match s.read(&mut buf) {
            Ok(n) if n >= 9 => Ok((String::new(), alpn)),
            Ok(_) => Err("closed".into()),
            Err(e) => Err(e.to_string()),
        };
    }
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).unwrap_or("").to_string();
    Ok((format!("{status} {}", text.split_once("\r\n\r\n").map_or("", |(_, b)| b)), alpn))
}

/// A server certificate for `name` signed by `ca`, with its key, as PEM.
fn signed_leaf(ca: &TestCa, name: &str) -> String {
    let kp = rcgen::KeyPair::generate().unwrap();
    let c = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&kp, &ca.issuer).unwrap();
    format!("{}{}", c.pem(), kp.serialize_pem())
}

/// crt-list `[options]` hold for the handshakes that select their line only: ALPN, client
/// certificates and the minimum version differ per name on one bind.
#[test]
fn crt_list_line_options_apply_per_certificate() {
    let dir = TempDir::new("tls-crt-list-opts");
    let ca = TestCa::new("Lines CA");
    let leaf = |name: &str| signed_leaf(&ca, name);
    require_tool("openssl", "openssl");
    let names = [
        ("open", "open.test"),
        ("secure", "secure.test"),
        ("modern", "modern.test"),
        ("wild", "*.wild.test"),
        ("hidden", "hidden.test"),
    ];
    for (n, name) in names {
        dir.write(&format!("{n}.pem"), &leaf(name));
    }
    dir.write("ca.pem", &ca.pem);
    let (cc, ck) = ca.leaf(Some("Acme"), "alice", 2, true, None);
    let alice = dir.write("alice.pem", &format!("{cc}{ck}"));
    dir.write(
        "list.txt",
        "open.pem [alpn http/1.1]\n\
         secure.pem [verify required ca-file ca.pem alpn h2,http/1.1] secure.test\n\
         modern.pem [ssl-min-ver TLSv1.3 alpn http/1.1] modern.test\n\
         wild.pem [alpn http/1.1] *.wild.test !no.wild.test\n\
         hidden.pem [verify optional ca-file ca.pem no-ca-names]\n",
    );
    let secure = dir.0.join("secure.pem").display().to_string();
    let p = free_port();
    let body = "sni=%[ssl_fc_sni] used=%[ssl_c_used]";
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "l"
bind = ["127.0.0.1:{p} ssl crt-list list.txt alpn h2,http/1.1"]
http_request = [
  {{ deny = {{ status = 421 }}, if = "{{ req.hdr(host),field(1,:) -i secure.test }} !{{ ssl_c_used }}" }},
  {{ return = {{ status = 200, content_type = "text/plain", lf_string = "{body}" }} }},
]
"#
    );
    let l = Lbha::start_in(dir, &cfg, &[p]);
    let ca = &ca.der;
    // alpn: the open line offers HTTP/1.1 only, the secure line both (the bind's h2 is overridden).
    let (b, alpn) = get_as(p, "open.test", "open.test", ca, None, false).unwrap();
    assert_eq!((b.as_str(), alpn.as_deref()), ("200 sni=open.test used=0", Some("http/1.1")));
    let (_, alpn) = get_as(p, "secure.test", "secure.test", ca, Some(&alice), false).unwrap();
    assert_eq!(alpn.as_deref(), Some("h2"));
    let (_, alpn) = get_as(p, "x.wild.test", "x.wild.test", ca, None, false).unwrap();
    assert_eq!(alpn.as_deref(), Some("http/1.1"));
    // verify required on one name: refused without a client certificate there, not elsewhere.
    assert!(get_as(p, "secure.test", "secure.test", ca, None, false).is_err(), "no certificate, no session");
    assert!(get_as(p, "secure.test", "secure.test", ca, None, true).is_err(), "TLS 1.2 too");
    // No SNI match: the first line's certificate (open.test's, which this client refuses).
    assert!(get_as(p, "other.test", "open.test", ca, None, false).unwrap_err().contains("not valid for name"));
    // Choosing another SNI than the Host skips the secure line's check, as in HAProxy: a rule on
    // the Host header closes that door.
    for host in ["secure.test", "SECURE.test:443"] {
        let (b, _) = get_as(p, "open.test", host, ca, None, false).unwrap();
        assert!(b.starts_with("421 "), "{host}: {b}");
    }
    let (_, alpn) = get_as(p, "secure.test", "secure.test", ca, Some(&alice), true).unwrap();
    assert_eq!(alpn.as_deref(), Some("h2"), "TLS 1.2 with a certificate");
    // ssl-min-ver TLSv1.3 on one line: a TLS 1.2 client is refused there, served elsewhere.
    assert!(get_as(p, "modern.test", "modern.test", ca, None, true).is_err());
    let (b, _) = get_as(p, "modern.test", "modern.test", ca, None, false).unwrap();
    assert_eq!(b, "200 sni=modern.test used=0");
    let (b, _) = get_as(p, "open.test", "open.test", ca, None, true).unwrap();
    assert_eq!(b, "200 sni=open.test used=0");
    // A negative filter: no.wild.test is not the wild line's, so the default (open) one answers.
    assert!(get_as(p, "no.wild.test", "no.wild.test", ca, None, false).unwrap_err().contains("not valid for name"));
    // no-ca-names on one line: its request for a client certificate names no CA.
    let named = s_client_text(p, "secure.test", &[]);
    assert!(named.contains("Acceptable client certificate CA names\nCN = Lines CA"), "{named}");
    let hidden = s_client_text(p, "hidden.test", &[]);
    assert!(
        hidden.contains("No client certificate CA names sent") && !hidden.contains("Lines CA\nRequested"),
        "{hidden}"
    );
    // `set ssl cert` + `commit` on a line's certificate: served at once, with the line's options.
    let ca2 = TestCa::new("Rotated CA");
    let mut cmd = vec![format!("set ssl cert {secure} <<")];
    cmd.extend(signed_leaf(&ca2, "secure.test").lines().map(str::to_string));
    cmd.extend([String::new(), format!("commit ssl cert {secure}")]);
    let out = l.ctl(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("Success!"), "{out}");
    let (_, alpn) = get_as(p, "secure.test", "secure.test", &ca2.der, Some(&alice), false).unwrap();
    assert_eq!(alpn.as_deref(), Some("h2"));
    assert!(get_as(p, "secure.test", "secure.test", &ca2.der, None, false).is_err(), "still verify required");
    assert!(get_as(p, "open.test", "open.test", ca, None, false).is_ok(), "the other lines unchanged");
}

/// A reload reads the certificate files again: a renewed certificate is served without a restart.
#[test]
fn reload_picks_up_a_renewed_certificate() {
    require_tool("openssl", "openssl");
    let dir = TempDir::new("tls-reload");
    openssl_cert(&dir.0, "site.pem", "ec", &["old.test"]);
    let p = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:{p} ssl crt site.pem\"]\nhttp_request = [{{ return = {{ status = 200, body = \"ok\" }} }}]\n"
    );
    let l = Lbha::start_in(dir, &cfg, &[p]);
    let subject =
        |sni: &str| s_client_text(p, sni, &[]).lines().find(|l| l.starts_with("subject=")).unwrap_or("").to_string();
    assert!(subject("old.test").contains("old.test"));
    openssl_cert(l.config.parent().unwrap(), "site.pem", "ec", &["new.test"]);
    let (code, out, err) = l.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(subject("new.test").contains("new.test"));
}

/// OpenSSL is the oracle for cipher strings: over the suites rustls has, lbha picks what
/// `openssl ciphers` picks.
#[test]
fn cipher_strings_select_what_openssl_selects() {
    require_tool("openssl", "openssl");
    let rustls_suites = [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ];
    for s in [
        "HIGH:!aNULL:!MD5",
        "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS",
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256",
        "kEECDH+aRSA:!AES128",
        "EECDH+CHACHA20:EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:!MD5",
        "DEFAULT:!ECDSA",
        "ALL:-AES:+CHACHA20",
        "AESGCM:!AES256",
        "TLSv1.2:!aECDSA:@STRENGTH",
    ] {
        let out = std::process::Command::new("openssl").args(["ciphers", s]).output().unwrap();
        let mut want: Vec<&str> = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(':')
            .filter_map(|c| rustls_suites.iter().find(|r| **r == c).copied())
            .collect();
        let mut got = lbha::tls::policy::openssl_cipher_names(s).unwrap().0;
        want.sort();
        got.sort();
        assert_eq!(got, want, "{s}");
    }
}

#[test]
fn relative_paths_follow_ca_base_and_crt_base() {
    let dir = TempDir::new("tls-bases");
    let pki = pki(&dir);
    // Relative entries of a crt-list follow crt_base too, not the list's own directory.
    std::fs::create_dir_all(dir.0.join("lists")).unwrap();
    dir.write("lists/certs.txt", "server.pem localhost\n");
    let (up, list, front) = (free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[global]
ca_base = "{d}"
crt_base = "{d}"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "up"
bind = [
  "127.0.0.1:{up} ssl crt server.pem ca-file ca.pem verify required crl-file crl.pem",
  "127.0.0.1:{list} ssl crt-list lists/certs.txt",
]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", lf_string = "%[ssl_c_s_dn(CN)]" }} }}]
[[listen]]
name = "front"
bind = ["127.0.0.1:{front}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, ca_file = "ca.pem", sni = "localhost", crt = "alice.pem" }}]
"#,
        d = dir.0.display(),
    );
    let _l = Lbha::start(&cfg, &[up, list, front]);
    assert_eq!(get(front, "/").text(), "alice", "the server's crt and ca_file come from the bases");
    assert!(https_get(up, &pki.ca_der, Some(&pki.revoked)).is_err(), "the crl-file came from ca_base");
    assert_eq!(https_get(list, &pki.ca_der, None).unwrap(), "");
    // Without the bases the same relative names are not found, and the error names them.
    let (code, err) = check(&dir, &cfg.replace(&format!("crt_base = \"{}\"", dir.0.display()), ""));
    assert_ne!(code, 0);
    assert!(err.contains("server.pem") || err.contains("alice.pem"), "{err}");
}

#[test]
fn server_lines_take_version_words_verifyhost_and_crl_file() {
    let dir = TempDir::new("tls-srv-words");
    let pki = pki(&dir);
    // A CRL of the servers' own CA revoking the upstream's certificate (serial 1).
    let ca2 = TestCa::new("Test CA 2");
    let (cert, key) = ca2.leaf(Some("Acme"), "localhost", 1, false, None);
    let (ca2_file, srv2) = (dir.write("ca2.pem", &ca2.pem), dir.write("srv2.pem", &format!("{cert}{key}")));
    let revoking = dir.write("revoking.pem", &ca2.crl(&[1]));
    let keeping = dir.write("keeping.pem", &ca2.crl(&[7]));
    let (up, up2) = (free_port(), free_port());
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let listen = |name: &str, port: u16, server: &str| {
        format!(
            "[[listen]]\nname = \"{name}\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", {server} }}]\n"
        )
    };
    let ca = pki.ca.display().to_string();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"up\"\nbind = [\"127.0.0.1:{up} ssl crt {srv}\", \"127.0.0.1:{up2} ssl crt {srv2}\"]\n\
         http_request = [{{ return = {{ status = 200, content_type = \"text/plain\", lf_string = \"%[ssl_fc_protocol]\" }} }}]\n{}{}{}{}{}{}",
        listen(
            "v12",
            ports[0],
            &format!(
                "addr = \"127.0.0.1:{up}\", ssl = true, ca_file = \"{ca}\", sni = \"localhost\", no_tlsv13 = true, no_tls_tickets = true"
            )
        ),
        listen(
            "f13",
            ports[1],
            &format!(
                "addr = \"127.0.0.1:{up}\", ssl = true, ca_file = \"{ca}\", sni = \"localhost\", force_tlsv13 = true"
            )
        ),
        // No SNI: the name checked would be the address; verifyhost names the certificate's.
        listen(
            "vh_ok",
            ports[2],
            &format!("addr = \"127.0.0.1:{up}\", ssl = true, ca_file = \"{ca}\", verifyhost = \"localhost\"")
        ),
        listen(
            "vh_bad",
            ports[3],
            &format!(
                "addr = \"127.0.0.1:{up}\", ssl = true, ca_file = \"{ca}\", sni = \"localhost\", verifyhost = \"other.example\""
            )
        ),
        listen(
            "revoked",
            ports[4],
            &format!(
                "addr = \"127.0.0.1:{up2}\", ssl = true, ca_file = \"{}\", sni = \"localhost\", crl_file = \"{}\"",
                ca2_file.display(),
                revoking.display()
            )
        ),
        listen(
            "kept",
            ports[5],
            &format!(
                "addr = \"127.0.0.1:{up2}\", ssl = true, ca_file = \"{}\", sni = \"localhost\", crl_file = \"{}\"",
                ca2_file.display(),
                keeping.display()
            )
        ),
        srv = pki.server.display(),
        srv2 = srv2.display(),
    );
    let mut all = vec![up, up2];
    all.extend(&ports);
    let l = Lbha::start(&cfg, &all);
    assert_eq!(get(ports[0], "/").text(), "TLSv1.2", "no_tlsv13");
    assert_eq!(get(ports[1], "/").text(), "TLSv1.3", "force_tlsv13");
    assert_eq!(get(ports[2], "/").text(), "TLSv1.3", "verifyhost names the certificate's host");
    assert_eq!(get(ports[3], "/").status, 503, "verifyhost other than the certificate's name");
    assert_eq!(get(ports[4], "/").status, 503, "the server's certificate is revoked");
    assert_eq!(get(ports[5], "/").text(), "TLSv1.3", "a CRL not listing it");
    drop(l);
    // What rustls cannot do is an error at the server's key.
    let bad = cfg.replace("force_tlsv13 = true", "force_tlsv10 = true");
    let (code, err) = check(&dir, &bad);
    assert_ne!(code, 0);
    assert!(err.contains("force_tlsv10"), "{err}");
}
