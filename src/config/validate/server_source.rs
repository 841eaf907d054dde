//! `source` of servers and of backend/listen/defaults sections (HAProxy's `source`): parsed
//! once, with port ranges on server lines only and `usesrc` refused, as lbha cannot honour it.

use super::super::error::FieldPath;
use super::super::model::{self, Section};
use super::super::snapshot::Server;
use super::Ctx;
use crate::proxy::source::Source;
use std::net::SocketAddr;
use std::sync::Arc;

/// The server's own `source`.
pub(super) fn own(sv: &model::Server, sp: &FieldPath, addr: SocketAddr, cx: &mut Ctx) -> Option<Arc<Source>> {
    let text = sv.source.as_deref()?;
    match Source::parse(text, true) {
        Ok(s) if s.ip.is_ipv4() != addr.is_ipv4() => {
            cx.err_v(sp.key("source"), "not of the server address's family", text);
            None
        }
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            cx.err_v(sp.key("source"), e, text);
            None
        }
    }
}

/// The section's `source`, else `[defaults]`'s (HAProxy refuses port ranges there).
pub(super) fn section(s: &Section, defaults: &Section, p: &FieldPath, cx: &mut Ctx) -> Option<Arc<Source>> {
    let (text, at) = match (&s.source, &defaults.source) {
        (Some(t), _) => (t, p.key("source")),
        (None, Some(t)) => (t, FieldPath::root().key("defaults").key("source")),
        (None, None) => return None,
    };
    match Source::parse(text, false) {
        Ok(src) => Some(Arc::new(src)),
        Err(e) => {
            cx.err_v(at, e, text);
            None
        }
    }
}

/// A server without its own `source` takes the section's, which must suit its address.
pub(super) fn inherit(sv: &mut Server, section: Option<&Arc<Source>>, sp: &FieldPath, cx: &mut Ctx) {
    if sv.source.is_some() {
        return;
    }
    let Some(src) = section else { return };
    if src.ip.is_ipv4() != sv.addr.is_ipv4() {
        cx.err_v(sp.key("addr"), format!("the backend's source {} is not of this address's family", src.ip), sv.addr);
        return;
    }
    sv.source = Some(src.clone());
}

/// Health checks and the agent leave from the server's source address, as HAProxy's do.
pub(super) fn to_checks(sv: &mut Server) {
    if let Some(c) = sv.check.as_mut() {
        c.source = sv.source.clone();
    }
    if let Some(a) = sv.agent.as_mut() {
        a.source = sv.source.clone();
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn load(extra: &str, server: &str) -> Result<crate::config::Snapshot, String> {
        let src = format!(
            "[defaults]\nmode = \"http\"\n{extra}\n[[backend]]\nname = \"be\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:2\", {server} }}, {{ name = \"b\", addr = \"127.0.0.1:3\" }}]\n"
        );
        parse(&src, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn servers_take_their_own_or_the_sections() {
        let snap = load("source = \"127.0.0.9\"", "source = \"127.0.0.2:2000-2010\"").unwrap();
        let sv = &snap.backends[0].servers;
        let s = sv[0].source.as_deref().unwrap();
        assert_eq!((s.ip.to_string(), s.ports), ("127.0.0.2".into(), Some((2000, 2010))));
        assert_eq!(sv[1].source.as_deref().map(|s| s.ip.to_string()), Some("127.0.0.9".into()));
        let snap = load("", "").unwrap();
        assert!(snap.backends[0].servers[0].source.is_none());
    }

    #[test]
    fn what_cannot_be_honoured_is_a_located_error() {
        let e = load("source = \"127.0.0.9:2000-2010\"", "").unwrap_err();
        assert!(e.contains("defaults.source: port range not permitted here"), "{e}");
        let e = load("", "source = \"127.0.0.2 usesrc clientip\"").unwrap_err();
        assert!(e.contains("servers[0].source") && e.contains("usesrc") && e.contains("not supported"), "{e}");
        let e = load("", "source = \"::1\"").unwrap_err();
        assert!(e.contains("servers[0].source: not of the server address's family"), "{e}");
        let e = load("source = \"::1\"", "").unwrap_err();
        assert!(e.contains("servers[0].addr: the backend's source ::1"), "{e}");
        let e = load("", "source = \"nowhere\"").unwrap_err();
        assert!(e.contains("servers[0].source: invalid address"), "{e}");
    }
}
