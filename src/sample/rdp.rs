//! The RDP cookie of a connection's first bytes (HAProxy's `fetch_rdp_cookie_name`): after the
//! 4-byte TPKT header and the 7-byte X.224 Connection Request header comes
//! `Cookie: [NAME=]VALUE\r\n`. `balance rdp-cookie` hashes VALUE.

/// What the first bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdpCookie<'a> {
    /// The cookie's value (the whole `NAME=VALUE` when no name is asked for).
    Found(&'a [u8]),
    /// Not enough bytes yet to tell.
    Short,
    /// No such cookie (not RDP, another name, a malformed line).
    Absent,
}

const HEADERS: usize = 4 + 7;
const COOKIE: &[u8] = b"Cookie:";

/// The first RDP cookie of `buf`, if it is named `name` (case-insensitive), as HAProxy reads it.
pub fn cookie<'a>(buf: &'a [u8], name: Option<&str>) -> RdpCookie<'a> {
    if buf.len() <= HEADERS {
        return RdpCookie::Short;
    }
    let mut data = &buf[HEADERS..];
    if data.len() <= COOKIE.len() {
        return RdpCookie::Short;
    }
    if !data[..COOKIE.len()].eq_ignore_ascii_case(COOKIE) {
        return RdpCookie::Absent;
    }
    data = &data[COOKIE.len()..];
    while let [b' ', rest @ ..] = data {
        data = rest;
    }
    if let Some(name) = name.map(str::as_bytes) {
        // At least one byte after the name.
        if data.len() <= name.len() {
            return RdpCookie::Short;
        }
        if data[name.len()] != b'=' || !data[..name.len()].eq_ignore_ascii_case(name) {
            return RdpCookie::Absent;
        }
        data = &data[name.len() + 1..];
    }
    let end = data.iter().position(|&b| b == b'\r').unwrap_or(data.len());
    match &data[end..] {
        [b'\r', b'\n', ..] => RdpCookie::Found(&data[..end]),
        [] | [b'\r'] => RdpCookie::Short,
        _ => RdpCookie::Absent,
    }
}

/// The server an `msts` cookie names (`persist rdp-cookie`): `ADDR.PORT.` with the IPv4 address
/// as the decimal of its network-order bytes read little-endian and the port byte-swapped, as
/// Windows' load-balancing info writes them and HAProxy decodes them.
pub fn msts_server(value: &[u8]) -> Option<std::net::SocketAddrV4> {
    let text = std::str::from_utf8(value).ok()?;
    let (addr, rest) = text.split_once('.')?;
    let (port, _) = rest.split_once('.')?;
    let addr: u32 = addr.trim_start().parse().ok()?;
    let port: u32 = port.parse().ok()?;
    let port = u16::try_from(port).ok()?.swap_bytes();
    Some(std::net::SocketAddrV4::new(std::net::Ipv4Addr::from(addr.to_le_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msts_names_an_address_and_port() {
        // 192.168.1.10:3389 as Windows writes it.
        let v = u32::from_le_bytes([192, 168, 1, 10]);
        let cookie = format!("{v}.{}.0000", 3389u16.swap_bytes());
        assert_eq!(msts_server(cookie.as_bytes()), Some("192.168.1.10:3389".parse().unwrap()));
        assert_eq!(msts_server(b"3640205228.15629.0000"), Some("172.31.249.216:3389".parse().unwrap()));
        assert_eq!(msts_server(b"alice"), None);
        assert_eq!(msts_server(b"1.2"), None, "the port ends with a dot");
        assert_eq!(msts_server(b"99999999999.15629.0"), None);
    }

    /// A Connection Request as mstsc sends it: TPKT, X.224 CR, the cookie line.
    fn request(line: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
        b.extend_from_slice(line);
        b
    }

    #[test]
    fn finds_the_named_cookie_case_insensitively() {
        let r = request(b"Cookie: mstshash=alice\r\n\x01\x00\x08\x00");
        assert_eq!(cookie(&r, Some("mstshash")), RdpCookie::Found(b"alice"));
        assert_eq!(cookie(&r, Some("MSTSHASH")), RdpCookie::Found(b"alice"));
        assert_eq!(cookie(&r, None), RdpCookie::Found(b"mstshash=alice"));
        let r = request(b"cookie:   msts=3640205228.15629.0000\r\n");
        assert_eq!(cookie(&r, Some("msts")), RdpCookie::Found(b"3640205228.15629.0000"));
    }

    #[test]
    fn another_name_or_no_cookie_line_is_absent() {
        assert_eq!(cookie(&request(b"Cookie: msts=1.2.3\r\n"), Some("mstshash")), RdpCookie::Absent);
        assert_eq!(cookie(&request(b"GET / HTTP/1.1\r\n"), Some("mstshash")), RdpCookie::Absent);
        assert_eq!(cookie(&request(b"Cookie: mstshash=a\rX"), Some("mstshash")), RdpCookie::Absent);
    }

    #[test]
    fn too_few_bytes_is_short() {
        assert_eq!(cookie(&[3, 0, 0], Some("mstshash")), RdpCookie::Short);
        assert_eq!(cookie(&request(b"Cookie"), Some("mstshash")), RdpCookie::Short);
        assert_eq!(cookie(&request(b"Cookie: mstshash"), Some("mstshash")), RdpCookie::Short);
        assert_eq!(cookie(&request(b"Cookie: mstshash=ali"), Some("mstshash")), RdpCookie::Short);
        assert_eq!(cookie(&request(b"Cookie: mstshash=alice\r"), Some("mstshash")), RdpCookie::Short);
    }

    #[test]
    fn an_empty_value_is_found_empty() {
        assert_eq!(cookie(&request(b"Cookie: mstshash=\r\n"), Some("mstshash")), RdpCookie::Found(b""));
    }
}
