//! The sync protocol on the wire: mutual TLS (each node presents its `ssl_crt`; a pinned
//! fingerprint is checked on both sides), then one request and one answer, each a length-prefixed
//! JSON frame. With a shared key every frame carries an HMAC-SHA256 over the TLS session's
//! exported keying material and the frame, so a frame cannot be forged, replayed on another
//! connection, or relayed by a man in the middle (who holds two different sessions).

use super::decide::{Offer, SyncState};
use crate::config::cluster::ClusterSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A whole config fits easily; a peer cannot make us buffer more.
pub const MAX_FRAME: usize = 32 * 1024 * 1024;
const EXPORTER_LABEL: &[u8] = b"EXPORTER-lbha-cluster-sync";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// The peer's config text and state (`lbha cluster diff`).
    Fetch,
    /// Phase one: validate this config with your local settings and hold it.
    Prepare {
        offer: Offer,
        text: String,
    },
    /// Phase two: apply what you prepared for this hash.
    Commit {
        hash: String,
    },
    Abort {
        hash: String,
    },
    /// The runtime ledger (`vip add`, `set server ...`): run what you lack, as for a config.
    Runtime {
        offer: Offer,
        entries: super::runtime::Entries,
    },
    /// These VRRP masters of mine resigned (instance, the address their adverts come from): take
    /// them over now rather than after the skew time (`crate::fate::hand_off`).
    Resigned {
        instances: Vec<(String, std::net::IpAddr)>,
    },
    /// Keep this connection open for the next `Resigned` (`super::link`): answered `Done`, and
    /// sent again as a heartbeat while nothing else is.
    Hold,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Status(NodeStatus),
    Config {
        state: SyncState,
        text: String,
    },
    /// `already`: the peer has this shared part; nothing to commit.
    Prepared {
        already: bool,
        state: SyncState,
    },
    Refused {
        reason: String,
        conflict: bool,
    },
    Done,
    Failed {
        reason: String,
    },
}

/// One node as `lbha cluster status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    pub sync: String,
    pub state: SyncState,
    /// `(instance, role)` per VRRP instance.
    pub vrrp: Vec<(String, String)>,
    /// Each VRRP instance as `show vrrp` shows it (priority, master, VIPs held, last transition),
    /// for the web console's pair view; absent from older peers.
    #[serde(default)]
    pub instances: Vec<crate::control::vrrp::InstanceView>,
    /// The runtime ledger's version and hash (`runtime::Ledger`).
    #[serde(default)]
    pub runtime: SyncState,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a certificate's DER: what `peer.fingerprint` pins.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect::<Vec<_>>().join(":")
}

fn check_pin(pin: Option<[u8; 32]>, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    match pin {
        Some(p) if p != fingerprint(cert) => Err(rustls::Error::General(format!(
            "certificate {} is not the pinned peer certificate",
            hex(&fingerprint(cert))
        ))),
        _ => Ok(()),
    }
}

/// Checks the other node's certificate against the pin (any certificate when none is pinned:
/// the shared key authenticates then) and its handshake signatures.
#[derive(Debug)]
struct Pinned {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_pin(self.pin, end_entity).map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_pin(self.pin, end_entity).map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct Own(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Own {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for Own {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

pub fn server_config(s: &ClusterSettings) -> Result<Arc<rustls::ServerConfig>, String> {
    let pinned = Arc::new(Pinned { pin: s.peer_fingerprint, provider: provider() });
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(pinned)
        .with_cert_resolver(Arc::new(Own(s.cert.clone())));
    Ok(Arc::new(cfg))
}

pub fn client_config(s: &ClusterSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let pinned = Arc::new(Pinned { pin: s.peer_fingerprint, provider: provider() });
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(pinned)
        .with_client_cert_resolver(Arc::new(Own(s.cert.clone())));
    Ok(Arc::new(cfg))
}

/// Direction bytes: a request cannot pass for an answer.
pub(super) const TO_SERVER: u8 = b'Q';
pub(super) const TO_CLIENT: u8 = b'A';
/// The server proves it holds the key before the client sends anything (a config may hold
/// secrets): without a pinned certificate, a man in the middle could otherwise read the request.
pub(super) const HELLO: u8 = b'H';
pub(super) const HELLO_BODY: &[u8] = b"lbha-cluster-hello";
/// A frame's length prefix and tag.
const HEAD: usize = 4 + 32;

fn mac(key: &[u8], binding: &[u8; 32], dir: u8, body: &[u8]) -> ring::hmac::Tag {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(binding);
    ctx.update(&[dir]);
    ctx.update(body);
    ctx.sign()
}

/// One frame: length, tag (the HMAC with a shared key, zeros without), body. Pure.
pub(super) fn frame(key: Option<&[u8]>, binding: &[u8; 32], dir: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    match key {
        Some(k) => out.extend_from_slice(mac(k, binding, dir, body).as_ref()),
        None => out.extend_from_slice(&[0u8; 32]),
    }
    out.extend_from_slice(body);
    out
}

fn frame_len(head: [u8; 4]) -> Result<usize, String> {
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(format!("frame of {len} bytes is too large"));
    }
    Ok(len)
}

/// Checks a received frame's tag (nothing to check without a shared key). Pure.
fn verify(key: Option<&[u8]>, binding: &[u8; 32], dir: u8, tag: &[u8], body: &[u8]) -> Result<(), String> {
    let Some(k) = key else { return Ok(()) };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k);
    let mut msg = Vec::with_capacity(33 + body.len());
    msg.extend_from_slice(binding);
    msg.push(dir);
    msg.extend_from_slice(body);
    ring::hmac::verify(&key, &msg, tag)
        .map_err(|_| "message authentication failed: wrong shared key (or no key on the peer)".to_string())
}

/// Takes the first whole frame off `buf` (bytes received so far), checked: `None` until it is
/// all there. Pure.
pub(super) fn take_frame(
    buf: &mut Vec<u8>,
    key: Option<&[u8]>,
    binding: &[u8; 32],
    dir: u8,
) -> Result<Option<Vec<u8>>, String> {
    let Some(head) = buf.first_chunk::<4>() else { return Ok(None) };
    let len = frame_len(*head)?;
    if buf.len() < HEAD + len {
        return Ok(None);
    }
    let body = buf[HEAD..HEAD + len].to_vec();
    verify(key, binding, dir, &buf[4..HEAD], &body)?;
    buf.drain(..HEAD + len);
    Ok(Some(body))
}

/// One end of an established sync connection.
pub struct Channel<S> {
    stream: S,
    key: Option<Arc<Vec<u8>>>,
    binding: [u8; 32],
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<S> {
    async fn send(&mut self, dir: u8, body: &[u8]) -> Result<(), String> {
        let frame = frame(self.key.as_deref().map(Vec::as_slice), &self.binding, dir, body);
        self.stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        self.stream.flush().await.map_err(|e| e.to_string())
    }

    async fn recv(&mut self, dir: u8) -> Result<Vec<u8>, String> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.map_err(|e| format!("connection closed: {e}"))?;
        let len = frame_len(len)?;
        let mut tag = [0u8; 32];
        self.stream.read_exact(&mut tag).await.map_err(|e| e.to_string())?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        verify(self.key.as_deref().map(Vec::as_slice), &self.binding, dir, &tag, &body)?;
        Ok(body)
    }
}

/// The channel binding both ends derive from their TLS session.
pub(super) fn binding<D>(conn: &rustls::ConnectionCommon<D>) -> Result<[u8; 32], String> {
    conn.export_keying_material([0u8; 32], EXPORTER_LABEL, None).map_err(|e| e.to_string())
}

pub type ServerStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
pub type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

impl Channel<ServerStream> {
    pub fn server(stream: ServerStream, key: Option<Arc<Vec<u8>>>) -> Result<Self, String> {
        let binding = binding(stream.get_ref().1)?;
        Ok(Channel { stream, key, binding })
    }
    pub async fn hello(&mut self) -> Result<(), String> {
        self.send(HELLO, HELLO_BODY).await
    }
    pub async fn request(&mut self) -> Result<Request, String> {
        let body = self.recv(TO_SERVER).await?;
        serde_json::from_slice(&body).map_err(|e| format!("bad request: {e}"))
    }
    pub async fn answer(&mut self, r: &Response) -> Result<(), String> {
        let body = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        self.send(TO_CLIENT, &body).await
    }
}

/// Connects to the peer and asks one thing, all within the settings' timeout.
pub async fn call(s: &ClusterSettings, req: &Request) -> Result<Response, String> {
    let run = async {
        let tcp = tokio::net::TcpStream::connect(s.peer_addr).await.map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(client_config(s)?);
        let name = ServerName::IpAddress(s.peer_addr.ip().into());
        let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        let binding = binding(tls.get_ref().1)?;
        let mut ch = Channel { stream: tls, key: s.key.clone(), binding };
        if ch.recv(HELLO).await? != HELLO_BODY {
            return Err("the peer did not greet as an lbha sync listener".into());
        }
        let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        ch.send(TO_SERVER, &body).await?;
        let answer = ch.recv(TO_CLIENT).await?;
        serde_json::from_slice::<Response>(&answer).map_err(|e| format!("bad answer: {e}"))
    };
    match tokio::time::timeout(s.timeout, run).await {
        Ok(r) => r.map_err(|e| format!("peer {} at {}: {e}", s.peer_name, s.peer_addr)),
        Err(_) => Err(format!("peer {} at {}: no answer within {:?}", s.peer_name, s.peer_addr, s.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(
        key_a: Option<&str>,
        key_b: Option<&str>,
        binding_b: [u8; 32],
    ) -> (Channel<tokio::io::DuplexStream>, Channel<tokio::io::DuplexStream>) {
        let (x, y) = tokio::io::duplex(1 << 16);
        let k = |s: Option<&str>| s.map(|s| Arc::new(s.as_bytes().to_vec()));
        (
            Channel { stream: x, key: k(key_a), binding: [7; 32] },
            Channel { stream: y, key: k(key_b), binding: binding_b },
        )
    }

    #[tokio::test]
    async fn frames_need_the_key_the_session_and_the_direction() {
        let (mut a, mut b) = pair(Some("k1-0123456789abcdef"), Some("k1-0123456789abcdef"), [7; 32]);
        a.send(TO_SERVER, b"hello").await.unwrap();
        assert_eq!(b.recv(TO_SERVER).await.unwrap(), b"hello");
        // The same frame read as the other direction (a reflected answer) fails.
        a.send(TO_SERVER, b"x").await.unwrap();
        assert!(b.recv(TO_CLIENT).await.unwrap_err().contains("authentication failed"));

        let (mut a, mut b) = pair(Some("k1-0123456789abcdef"), Some("k2-0123456789abcdef"), [7; 32]);
        a.send(HELLO, HELLO_BODY).await.unwrap();
        assert!(b.recv(HELLO).await.unwrap_err().contains("wrong shared key"));

        // Another TLS session (a relay in the middle): another binding, the MAC fails.
        let (mut a, mut b) = pair(Some("k1-0123456789abcdef"), Some("k1-0123456789abcdef"), [8; 32]);
        a.send(TO_SERVER, b"hello").await.unwrap();
        assert!(b.recv(TO_SERVER).await.is_err());
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_it_is_read() {
        let (mut a, mut b) = pair(None, None, [7; 32]);
        a.stream.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes()).await.unwrap();
        assert!(b.recv(TO_SERVER).await.unwrap_err().contains("too large"));
    }

    #[test]
    fn frames_are_taken_whole_and_checked() {
        let (k, b) = (Some(&b"k1-0123456789abcdef"[..]), [3u8; 32]);
        let mut buf = frame(k, &b, TO_CLIENT, b"one");
        buf.extend(frame(k, &b, TO_CLIENT, b"two"));
        let whole = buf.len();
        // Byte by byte: nothing until the first frame is all there.
        let mut got = Vec::new();
        let mut rx = Vec::new();
        for x in &buf {
            rx.push(*x);
            while let Some(f) = take_frame(&mut rx, k, &b, TO_CLIENT).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
        assert!(rx.is_empty(), "{whole} bytes taken");
        let mut other = frame(Some(b"k2-0123456789abcdef"), &b, TO_CLIENT, b"x");
        assert!(take_frame(&mut other, k, &b, TO_CLIENT).unwrap_err().contains("authentication failed"));
        let mut reflected = frame(k, &b, TO_SERVER, b"x");
        assert!(take_frame(&mut reflected, k, &b, TO_CLIENT).is_err());
        let mut huge = ((MAX_FRAME as u32) + 1).to_be_bytes().to_vec();
        assert!(take_frame(&mut huge, k, &b, TO_CLIENT).unwrap_err().contains("too large"));
    }

    #[test]
    fn pins_compare_the_certificate_digest() {
        let der = CertificateDer::from(vec![1u8, 2, 3]);
        assert!(check_pin(None, &der).is_ok());
        assert!(check_pin(Some(fingerprint(&der)), &der).is_ok());
        let e = check_pin(Some([0; 32]), &der).unwrap_err().to_string();
        assert!(e.contains("not the pinned peer certificate"), "{e}");
    }
}
