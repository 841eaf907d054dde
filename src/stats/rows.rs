//! One row per frontend, server and backend: the figures every stats view renders.

use super::Source;
use crate::state::Counters;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend = 0,
    Backend = 1,
    Server = 2,
}

pub struct Row<'a> {
    pub kind: Kind,
    pub px: &'a str,
    pub sv: &'a str,
    pub c: &'a Counters,
    pub slim: Option<u32>,
    /// HAProxy's status column: OPEN, UP, DOWN, MAINT, DRAIN, "no check", "UP 1/3"... (servers:
    /// [`super::srv_status`]).
    pub status: std::borrow::Cow<'static, str>,
    pub weight: Option<u32>,
    pub act: u32,
    pub bck: u32,
    /// Servers: times it went DOWN; seconds since the last change; seconds DOWN in all.
    pub chkdown: Option<u64>,
    pub chkfail: Option<u64>,
    /// Servers with `observe`: passive-check trips (HAProxy's `hanafail`).
    pub hanafail: Option<u64>,
    pub lastchg: Option<u64>,
    pub downtime: Option<u64>,
    /// Servers: `maxqueue` when set.
    pub qlimit: Option<u32>,
    pub check_status: String,
    pub check_ms: Option<u64>,
    pub backup: bool,
    /// Servers: their id (HAProxy's `sid`).
    pub sid: u32,
    /// Servers with `track`: the server they follow, `backend/server` (HAProxy's `tracked`).
    pub tracked: Option<String>,
    /// The proxy's id (HAProxy's `iid`; a server's is its backend's).
    pub iid: u32,
}

impl<'a> Row<'a> {
    fn proxy(kind: Kind, px: &'a str, sv: &'a str, c: &'a Counters) -> Row<'a> {
        Row {
            kind,
            px,
            sv,
            c,
            slim: None,
            status: "OPEN".into(),
            weight: None,
            act: 0,
            bck: 0,
            chkdown: None,
            chkfail: None,
            hanafail: None,
            lastchg: None,
            downtime: None,
            qlimit: None,
            check_status: String::new(),
            check_ms: None,
            backup: false,
            sid: 0,
            tracked: None,
            iid: 0,
        }
    }
}

/// Proxy by proxy in config order, as HAProxy lists them: the FRONTEND row, then the servers,
/// then the BACKEND row (a `listen` section has all three under one name).
pub fn rows(active: &dyn Source) -> Vec<Row<'_>> {
    let snap = active.snap();
    let mut names: Vec<&str> = snap.frontends.iter().map(|f| f.name.as_str()).collect();
    for b in &snap.backends {
        if !names.contains(&b.name.as_str()) {
            names.push(&b.name);
        }
    }
    let mut out = Vec::new();
    for name in names {
        if let Some((i, f)) = snap.frontend(name) {
            let mut r = Row::proxy(Kind::Frontend, &f.name, "FRONTEND", &active.rt().frontends[i]);
            r.slim = f.maxconn;
            r.iid = f.id;
            out.push(r);
        }
        if let Some((bi, _)) = snap.backend(name) {
            backend_rows(active, bi, &mut out);
        }
    }
    out
}

fn backend_rows<'a>(active: &'a dyn Source, bi: usize, out: &mut Vec<Row<'a>>) {
    let b = &active.snap().backends[bi];
    {
        let brt = &active.rt().backends[bi];
        let (mut act, mut bck, mut weight) = (0, 0, 0);
        for (si, s) in b.servers.iter().enumerate() {
            let rt = &brt.servers[si];
            let usable = brt.server_usable(si);
            if usable {
                weight += rt.weight();
                if s.backup { bck += 1 } else { act += 1 }
            }
            let checked = s.check.is_some();
            let status = super::srv_status::of(active.snap(), active.rt(), bi, si).into();
            let check_status = rt.last_check.lock().map(|c| c.clone()).unwrap_or_default();
            out.push(Row {
                kind: Kind::Server,
                px: &b.name,
                sv: &s.name,
                c: &rt.counters,
                slim: s.maxconn,
                status,
                weight: Some(rt.weight()),
                act: u32::from(!s.backup),
                bck: u32::from(s.backup),
                chkdown: checked.then(|| rt.down_transitions.load(std::sync::atomic::Ordering::Relaxed)),
                chkfail: checked.then(|| rt.check_failures.load(std::sync::atomic::Ordering::Relaxed)),
                hanafail: s.observe.is_some().then(|| rt.passive.trips.load(std::sync::atomic::Ordering::Relaxed)),
                lastchg: Some(rt.since_change().as_secs()),
                downtime: checked.then(|| rt.downtime().as_secs()),
                qlimit: (s.upstream.maxqueue > 0).then_some(s.upstream.maxqueue),
                check_status,
                check_ms: checked.then(|| rt.check_duration_ms.load(std::sync::atomic::Ordering::Relaxed)),
                backup: s.backup,
                sid: s.id,
                tracked: s.track.as_ref().map(|(b, t)| format!("{b}/{t}")),
                iid: b.id,
            });
        }
        let mut r = Row::proxy(Kind::Backend, &b.name, "BACKEND", &brt.counters);
        r.status = if brt.nbsrv() > 0 { "UP" } else { "DOWN" }.into();
        r.weight = Some(weight);
        r.act = act;
        r.bck = bck;
        r.iid = b.id;
        out.push(r);
    }
}
