//! The two facts `tcp-request content` rules read from a TLS ClientHello before any decryption:
//! the handshake type (`req.ssl_hello_type`) and the server name (`req.ssl_sni`). Only the first
//! record is read, as HAProxy does; a short or malformed record gives no sample.

/// Handshake message type of the first record (1 for a ClientHello).
pub(super) fn hello_type(p: &[u8]) -> Option<u8> {
    record(p).map(|(ty, _)| ty)
}

/// The `server_name` extension's host name of a ClientHello.
pub(super) fn sni(p: &[u8]) -> Option<&[u8]> {
    let (ty, mut body) = record(p)?;
    if ty != 1 {
        return None;
    }
    body.skip(2 + 32)?; // client version, random
    let n = body.u8()? as usize;
    body.skip(n)?; // session id
    let n = body.u16()? as usize;
    body.skip(n)?; // cipher suites
    let n = body.u8()? as usize;
    body.skip(n)?; // compression methods
    let n = body.u16()? as usize;
    let mut exts = body.take(n)?;
    while let (Some(kind), Some(len)) = (exts.u16(), exts.u16()) {
        let mut ext = exts.take(len as usize)?;
        if kind != 0 {
            continue;
        }
        let n = ext.u16()? as usize;
        let mut list = ext.take(n)?;
        while let (Some(name_type), Some(len)) = (list.u8(), list.u16()) {
            let name = list.take(len as usize)?;
            if name_type == 0 {
                return (!name.0.is_empty()).then_some(name.0);
            }
        }
        return None;
    }
    None
}

/// A handshake record's first message: its type and its body (clipped to the record).
fn record(p: &[u8]) -> Option<(u8, Cursor<'_>)> {
    let mut c = Cursor(p);
    if c.u8()? != 0x16 || c.u8()? < 3 {
        return None;
    }
    c.skip(1)?;
    let rec_len = c.u16()? as usize;
    let mut rec = c.take(rec_len)?;
    let ty = rec.u8()?;
    let hs_len = (rec.u8()? as usize) << 16 | rec.u16()? as usize;
    let body = rec.take(hs_len.min(rec.0.len()))?;
    Some((ty, body))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<Cursor<'a>> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(Cursor(head))
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?.0[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?.0;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A minimal TLS 1.2 ClientHello record carrying `host` as SNI.
    pub(crate) fn client_hello(host: &str) -> Vec<u8> {
        let mut sni = vec![0];
        sni.extend_from_slice(&(host.len() as u16).to_be_bytes());
        sni.extend_from_slice(host.as_bytes());
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&((sni.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        // an unrelated extension first (supported_versions), then server_name
        let mut exts = vec![0, 43, 0, 3, 2, 3, 4];
        exts.extend_from_slice(&ext);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_sni_and_type() {
        let hello = client_hello("www.example.com");
        assert_eq!(hello_type(&hello), Some(1));
        assert_eq!(sni(&hello), Some(&b"www.example.com"[..]));
    }

    #[test]
    fn short_or_foreign_input_gives_nothing() {
        let hello = client_hello("a.example");
        for cut in [0, 1, 5, 9, 40, hello.len() - 1] {
            assert_eq!(sni(&hello[..cut]), None, "cut at {cut}");
        }
        assert_eq!(hello_type(b"GET / HTTP/1.1\r\n"), None);
        let mut server_hello = hello.clone();
        server_hello[5] = 2;
        assert_eq!(hello_type(&server_hello), Some(2));
        assert_eq!(sni(&server_hello), None);
    }
}
