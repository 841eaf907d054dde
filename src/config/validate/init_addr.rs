//! A server's `init_addr` (HAProxy's `init-addr last,libc,none,IP`): how its `addr` gets an address
//! at load. Without it a name must resolve (HAProxy's default `last,libc`). With `none`, a name
//! that does not resolve leaves the server without an address, in maintenance ("resolution")
//! until `set server B/S addr` gives it one or a later load resolves it, so a config naming hosts
//! of its target network can be loaded anywhere.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The address last set at runtime (`set server addr`, kept in the runtime overlay, which is
    /// applied to the file before this runs): nothing more to do here.
    Last,
    Libc,
    None,
    Ip(IpAddr),
    /// An address with its port: what the resolvers last gave an SRV server (its record's port).
    Addr(SocketAddr),
}

/// Parses `last,libc,none,IP` (comma separated, at least one).
pub fn parse(text: &str) -> Result<Vec<Method>, String> {
    let mut out = Vec::new();
    for m in text.split(',').map(str::trim) {
        out.push(match m {
            "last" => Method::Last,
            "libc" => Method::Libc,
            "none" => Method::None,
            ip => match (ip.parse(), ip.parse()) {
                (Ok(a), _) => Method::Ip(a),
                (_, Ok(sa)) => Method::Addr(sa),
                _ => return Err(format!("unknown method `{ip}` (expected last, libc, none or an IP address)")),
            },
        });
    }
    Ok(out)
}

/// The server's address, and whether it has none (`none` applied). `resolve` is libc's lookup.
pub fn server_addr(
    addr: &str,
    init: Option<&[Method]>,
    resolve: impl Fn(&str) -> Result<SocketAddr, String>,
) -> Result<(SocketAddr, bool), String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok((a, false));
    }
    let Some(methods) = init else {
        return resolve(addr).map(|a| (a, false));
    };
    let port = match addr.rsplit_once(':').map(|(_, p)| p.parse::<u16>()) {
        Some(Ok(p)) => p,
        // An SRV name: its records give the port.
        _ if addr.starts_with('_') => 0,
        _ => return Err("expected host:port".into()),
    };
    let mut why = String::from("not resolved by any `init_addr` method");
    for m in methods {
        match m {
            Method::Last => {}
            Method::Libc => match resolve(addr) {
                Ok(a) => return Ok((a, false)),
                Err(e) => why = e,
            },
            Method::Ip(ip) => return Ok((SocketAddr::new(*ip, port), false)),
            Method::Addr(a) => return Ok((*a, false)),
            Method::None => return Ok((SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port), true)),
        }
    }
    Err(why)
}

/// The host name of `addr` (`host:port`) when it is a name, not an address nor an SRV name
/// (`_service._proto.domain`).
pub fn host_name(addr: &str) -> Option<String> {
    if addr.parse::<SocketAddr>().is_ok() || addr.starts_with('_') {
        return None;
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    (!host.is_empty() && host.parse::<IpAddr>().is_err() && !host.starts_with('[')).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(_: &str) -> Result<SocketAddr, String> {
        Err("cannot resolve app.invalid".into())
    }
    fn ok(_: &str) -> Result<SocketAddr, String> {
        Ok("192.0.2.7:80".parse().unwrap())
    }

    #[test]
    fn host_names_are_kept_addresses_are_not() {
        assert_eq!(host_name("app.example:80").as_deref(), Some("app.example"));
        assert_eq!(host_name("localhost:8080").as_deref(), Some("localhost"));
        assert_eq!(host_name("127.0.0.1:80"), None);
        assert_eq!(host_name("[::1]:80"), None);
        assert_eq!(host_name("_http._tcp.app.example"), None);
    }

    #[test]
    fn methods_are_tried_in_order() {
        let none = parse("last,libc,none").unwrap();
        assert_eq!(none, [Method::Last, Method::Libc, Method::None]);
        assert_eq!(server_addr("app.invalid:80", Some(&none), ok).unwrap(), ("192.0.2.7:80".parse().unwrap(), false));
        assert_eq!(server_addr("app.invalid:80", Some(&none), fail).unwrap(), ("0.0.0.0:80".parse().unwrap(), true));
        let ip = parse("libc,198.51.100.9").unwrap();
        assert_eq!(
            server_addr("app.invalid:81", Some(&ip), fail).unwrap(),
            ("198.51.100.9:81".parse().unwrap(), false)
        );
        // Without `none`, an unresolved name stays an error, as without `init_addr`.
        assert_eq!(
            server_addr("app.invalid:80", Some(&parse("last,libc").unwrap()), fail).unwrap_err(),
            "cannot resolve app.invalid"
        );
        assert!(server_addr("app.invalid:80", None, fail).is_err());
        // An address is taken as is, whatever the methods.
        assert_eq!(server_addr("127.0.0.1:9", Some(&none), fail).unwrap(), ("127.0.0.1:9".parse().unwrap(), false));
        assert!(parse("last,dns").unwrap_err().contains("`dns`"));
        assert!(server_addr("app.invalid", Some(&none), fail).is_err());
        // SRV names have no port of their own; the resolvers' last answer carries one.
        let srv = "_http._tcp.app.invalid";
        assert_eq!(server_addr(srv, Some(&none), fail).unwrap(), ("0.0.0.0:0".parse().unwrap(), true));
        let last = parse("127.0.0.2:8080").unwrap();
        assert_eq!(server_addr(srv, Some(&last), fail).unwrap(), ("127.0.0.2:8080".parse().unwrap(), false));
    }
}
