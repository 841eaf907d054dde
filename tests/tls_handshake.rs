//! The end of a TLS bind's handshake, with rustls and OpenSSL clients: TLS 1.3 tickets and TLS 1.2
//! session ids arrive and resume, nothing stalls waiting for the request, and the alert of a
//! failed handshake reaches the client.

mod common;
use common::*;
use std::sync::Arc;

fn client(
    version: &'static rustls::SupportedProtocolVersion,
    ca: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// One GET over a new connection: the response and how the handshake went.
fn get(cfg: &Arc<rustls::ClientConfig>, port: u16) -> Result<(String, rustls::HandshakeKind), String> {
    https_get_kind(cfg.clone(), port)
}

#[test]
fn tickets_and_final_flights_arrive_and_resume() {
    let dir = TempDir::new("tls-hold");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let crt = crt.display();
    let (http, tcp, backend) = (free_port(), free_port(), Backend::start("b"));
    let cfg = format!(
        r#"
[defaults]
timeout = {{ connect = "5s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{http} ssl crt {crt}"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", body = "ok" }} }}]
[[frontend]]
name = "relay"
mode = "tcp"
bind = ["127.0.0.1:{tcp} ssl crt {crt}"]
default_backend = "b"
[[backend]]
name = "b"
mode = "tcp"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
"#,
        backend.port
    );
    let _l = Lbha::start(&cfg, &[http, tcp]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let c = client(version, &ck);
        for port in [http, tcp] {
            let (body, first) = get(&c, port).unwrap_or_else(|e| panic!("{version:?} port {port}: {e}"));
            assert!(body.starts_with("HTTP/1.") && body.contains("200"), "{version:?} {port}: {body}");
            assert_eq!(first, rustls::HandshakeKind::Full, "{version:?} {port}");
            // The session (TLS 1.3: a ticket sent after the handshake) came through.
            let (body, again) = get(&c, port).unwrap();
            assert!(body.contains("200"), "{body}");
            assert_eq!(again, rustls::HandshakeKind::Resumed, "{version:?} port {port}");
        }
    }
}

#[test]
fn a_failed_handshake_still_sends_its_alert() {
    let dir = TempDir::new("tls-hold-alert");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "5s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
bind = ["127.0.0.1:{port} ssl crt {} ssl-min-ver TLSv1.3"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", body = "ok" }} }}]
"#,
        crt.display()
    );
    let _l = Lbha::start(&cfg, &[port]);
    let err = get(&client(&rustls::version::TLS12, &ck), port).unwrap_err();
    assert!(err.to_lowercase().contains("protocolversion"), "the client got the alert: {err}");
    // And a TLS 1.3 client still gets through.
    assert!(get(&client(&rustls::version::TLS13, &ck), port).unwrap().0.contains("200"));
}
