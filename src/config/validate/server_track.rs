//! HAProxy's server `track [BACKEND/]SERVER`: the server's state follows another server's
//! checks. Resolved once every backend is built, with HAProxy's refusals: an unknown backend or
//! server, a tracked server without checks (nor agent, nor a track of its own), a tracking
//! server with checks of its own, a chain that loops, and a different `disable-on-404`
//! between the two backends.

use super::{Ctx, Named};
use crate::config::snapshot::Backend;
use crate::health::CheckKind;

/// Fills each server's `track` with the (backend, server) its `track` names.
pub(super) fn resolve(backends: &mut [Backend], backs: &[Named], cx: &mut Ctx) {
    let mut found = Vec::new();
    for (bi, n) in backs.iter().enumerate() {
        for (i, sv) in n.sec.servers.iter().flatten().enumerate() {
            let Some(text) = sv.track.as_deref() else { continue };
            let at = n.path().key("servers").index(i).key("track");
            let (pname, sname) = match text.rsplit_once('/') {
                Some((p, s)) => (p, s),
                None => (n.name(), text),
            };
            let Some(tb) = backs.iter().position(|b| b.name() == pname) else {
                cx.err_v(at, format!("unable to find required proxy '{pname}' for tracking"), text);
                continue;
            };
            let Some(ts) = backends[tb].servers.iter().position(|s| s.name == sname) else {
                cx.err_v(at, format!("unable to find required server '{sname}' for tracking"), text);
                continue;
            };
            if sv.check {
                cx.err_v(at, "unable to enable checks and tracking at the same time", text);
                continue;
            }
            let Some(si) = backends[bi].servers.iter().position(|s| s.name == sv.name) else { continue };
            found.push(((bi, si), (tb, ts), at, text.to_string()));
        }
    }
    let tracks: Vec<((usize, usize), (usize, usize))> = found.iter().map(|(a, b, _, _)| (*a, *b)).collect();
    let next = |s: (usize, usize)| tracks.iter().find(|(a, _)| *a == s).map(|(_, b)| *b);
    for (me, target, at, text) in found {
        let t = &backends[target.0].servers[target.1];
        if let Some(why) = unusable_target(&backends[target.0], t, next(target).is_some()) {
            cx.err_v(at, why, text);
            continue;
        }
        // Follow the chain; it must not come back to this server.
        let mut cur = Some(target);
        let mut loops = false;
        for _ in 0..=tracks.len() {
            match cur {
                Some(c) if c == me => {
                    loops = true;
                    break;
                }
                Some(c) => cur = next(c),
                None => break,
            }
        }
        if loops || cur.is_some() {
            let name = format!("{}/{}", backends[target.0].name, t.name);
            cx.err_v(at, format!("unable to track {name} as it belongs to a tracking chain looping back"), text);
            continue;
        }
        if me.0 != target.0
            && let Some(why) = inconsistent_404(&backends[me.0], &backends[target.0], t)
        {
            cx.err_v(at, why, text);
            continue;
        }
        let tracked = (backends[target.0].name.clone(), t.name.clone());
        backends[me.0].servers[me.1].track = Some(tracked);
    }
}

/// The `track` of a server added at runtime to backend `own` (`add server ... track`), resolved
/// against the served snapshot with the refusals of a load; `checks`: the server has its own.
pub(crate) fn runtime(
    snap: &crate::config::Snapshot,
    own: &str,
    text: &str,
    checks: bool,
) -> Result<(String, String), String> {
    let (pname, sname) = text.rsplit_once('/').unwrap_or((own, text));
    let Some((_, tb)) = snap.backend(pname) else {
        return Err(format!("unable to find required proxy '{pname}' for tracking"));
    };
    let Some(t) = tb.servers.iter().find(|s| s.name == sname) else {
        return Err(format!("unable to find required server '{sname}' for tracking"));
    };
    if checks {
        return Err("unable to enable checks and tracking at the same time".into());
    }
    if let Some(why) = unusable_target(tb, t, t.track.is_some()) {
        return Err(why);
    }
    if let Some((_, mine)) = snap.backend(own)
        && own != pname
        && let Some(why) = inconsistent_404(mine, tb, t)
    {
        return Err(why);
    }
    Ok((pname.to_string(), sname.to_string()))
}

/// HAProxy's refusal of server `t` of backend `tb` as a tracking target: no check nor agent
/// (unless it tracks further); lbha's own: an agent alone.
fn unusable_target(tb: &Backend, t: &crate::config::snapshot::Server, tracks_further: bool) -> Option<String> {
    if t.check.is_some() || t.awaits_check || tracks_further {
        return None;
    }
    let name = format!("{}/{}", tb.name, t.name);
    Some(if t.agent.is_none() {
        format!("unable to use {name} for tracking as it does not have any check nor agent enabled")
    } else {
        // HAProxy follows an agent-only server too; lbha's trackers follow health checks
        // only, and a tracker left up while its server's agent says down would take traffic.
        format!("lbha cannot track {name}: its only check is an agent (add `check` to it, or track a checked server)")
    })
}

/// A tracker in backend `mine` and its target `t` in another backend `tb` must agree on
/// `disable-on-404`, as HAProxy requires.
fn inconsistent_404(mine: &Backend, tb: &Backend, t: &crate::config::snapshot::Server) -> Option<String> {
    (on_404(mine) != on_404(tb))
        .then(|| format!("unable to use {}/{} for tracking: disable-on-404 option inconsistency", tb.name, t.name))
}

/// Whether a backend's HTTP checks take 404 as "drain" (`http-check disable-on-404`).
fn on_404(b: &Backend) -> bool {
    b.servers.iter().filter_map(|s| s.check.as_ref()).any(|c| match &c.kind {
        CheckKind::Http(h) => h.disable_on_404,
        CheckKind::Seq(s) => s.disable_on_404,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(servers: &str, extra: &str) -> Result<crate::config::Snapshot, String> {
        let src = format!(
            "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{servers}]\n\n[[backend]]\nname = \"o\"\nservers = [{{ name = \"x\", addr = \"127.0.0.1:9\", check = true }}{extra}]\n"
        );
        crate::config::parse(&src, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn tracks_resolve_in_the_backend_or_across_and_chain() {
        let s = parse(
            "{ name = \"a\", addr = \"127.0.0.1:2\", check = true }, { name = \"t\", addr = \"127.0.0.1:3\", track = \"a\" }, { name = \"u\", addr = \"127.0.0.1:4\", track = \"t\" }, { name = \"v\", addr = \"127.0.0.1:5\", track = \"o/x\" }",
            "",
        )
        .unwrap();
        let t = |i: usize| s.backends[0].servers[i].track.clone();
        assert_eq!(t(1), Some(("b".into(), "a".into())));
        assert_eq!(t(2), Some(("b".into(), "t".into())));
        assert_eq!(t(3), Some(("o".into(), "x".into())));
        assert_eq!(t(0), None);
    }

    #[test]
    fn haproxys_refusals_are_located_errors() {
        let one = |sv: &str| parse(sv, "").unwrap_err();
        let e = one("{ name = \"a\", addr = \"127.0.0.1:2\", track = \"nope\" }");
        assert!(e.contains("servers[0].track") && e.contains("unable to find required server 'nope'"), "{e}");
        let e = one("{ name = \"a\", addr = \"127.0.0.1:2\", track = \"zz/x\" }");
        assert!(e.contains("unable to find required proxy 'zz'"), "{e}");
        let e =
            one("{ name = \"a\", addr = \"127.0.0.1:2\" }, { name = \"t\", addr = \"127.0.0.1:3\", track = \"a\" }");
        assert!(e.contains("does not have any check nor agent"), "{e}");
        let e = one(
            "{ name = \"a\", addr = \"127.0.0.1:2\", agent_check = true, agent_port = 9 }, { name = \"t\", addr = \"127.0.0.1:3\", track = \"a\" }",
        );
        assert!(e.contains("its only check is an agent"), "{e}");
        let e = one("{ name = \"a\", addr = \"127.0.0.1:2\", check = true, track = \"o/x\" }");
        assert!(e.contains("checks and tracking at the same time"), "{e}");
        let e = one(
            "{ name = \"a\", addr = \"127.0.0.1:2\", track = \"c\" }, { name = \"c\", addr = \"127.0.0.1:3\", track = \"a\" }",
        );
        assert!(e.contains("looping back"), "{e}");
        let e = one("{ name = \"a\", addr = \"127.0.0.1:2\", track = \"a\" }");
        assert!(e.contains("looping back"), "{e}");
    }
}
