//! One row per frontend, server and backend: the figures every stats view renders.

use super::Source;
use crate::state::Counters;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend = 0,
    Backend = 1,
    Server = 2,
    /// One `bind` of a frontend with `option socket-stats` (HAProxy's listener rows).
    Listener = 3,
}

pub struct Row<'a> {
    pub kind: Kind,
    pub px: &'a str,
    pub sv: &'a str,
    /// A listener's name, made for the row (`sock-N`); `sv` is empty then.
    pub sv_owned: Option<String>,
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
    /// `http` or `tcp` (HAProxy's `mode`).
    pub mode: &'static str,
    /// Backends: the balance algorithm's HAProxy name (`algo`).
    pub algo: Option<&'static str>,
    /// Servers and listeners: the address (`addr`).
    pub addr: Option<String>,
    /// Checked servers: the check's rise, fall and health counter.
    pub rise_fall_health: Option<(u32, u32, u32)>,
    /// Servers and backends: the weight set by the config or `set weight` (`uweight`).
    pub uweight: Option<u32>,
    /// Frontends: `rate-limit sessions` (0: none), HAProxy's `rate_lim`.
    pub rate_lim: Option<u32>,
    /// Servers: their persistence cookie value.
    pub cookie: Option<String>,
}

impl<'a> Row<'a> {
    fn proxy(kind: Kind, px: &'a str, sv: &'a str, c: &'a Counters) -> Row<'a> {
        Row {
            kind,
            px,
            sv,
            sv_owned: None,
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
            mode: "http",
            algo: None,
            addr: None,
            rise_fall_health: None,
            uweight: None,
            rate_lim: None,
            cookie: None,
        }
    }
}

fn mode_name(m: crate::config::model::Mode) -> &'static str {
    match m {
        crate::config::model::Mode::Http => "http",
        crate::config::model::Mode::Tcp => "tcp",
    }
}

/// HAProxy 2.6's `backend_lb_algo_str`.
fn algo_name(a: &crate::balance::Algorithm) -> &'static str {
    use crate::balance::Algorithm as A;
    match a {
        A::RoundRobin => "roundrobin",
        A::StaticRr => "static-rr",
        A::LeastConn => "leastconn",
        A::First => "first",
        A::Source => "source",
        A::Uri { .. } => "uri",
        A::UrlParam { .. } => "url_param",
        A::Hdr { .. } => "hdr",
        A::Random { .. } => "random",
        A::Hash(_) => "hash",
        A::RdpCookie(_) => "rdp-cookie",
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
            r.mode = mode_name(f.mode);
            r.rate_lim = Some(f.rate_limit_sessions.unwrap_or(0));
            out.push(r);
            // `option socket-stats`: a row per bind, named by its `name` or `sock-N`.
            for ((bi, b), c) in f.binds.iter().enumerate().zip(active.rt().listeners[i].iter()) {
                let mut r = Row::proxy(Kind::Listener, &f.name, "", c);
                r.sv_owned = Some(b.name.clone().unwrap_or_else(|| format!("sock-{}", bi + 1)));
                r.sid = bi as u32 + 1;
                r.iid = f.id;
                r.mode = mode_name(f.mode);
                r.addr = Some(b.addr.to_string());
                out.push(r);
            }
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
                sv_owned: None,
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
                mode: mode_name(b.mode),
                algo: None,
                addr: Some(s.addr.to_string()),
                rise_fall_health: checked.then(|| {
                    let (rise, fall) = rt.check_rise_fall();
                    (rise, fall, rt.check_health.load(std::sync::atomic::Ordering::Relaxed))
                }),
                uweight: Some(rt.weight()),
                rate_lim: None,
                cookie: s.cookie.clone(),
            });
        }
        let mut r = Row::proxy(Kind::Backend, &b.name, "BACKEND", &brt.counters);
        r.status = if brt.nbsrv() > 0 { "UP" } else { "DOWN" }.into();
        r.weight = Some(weight);
        r.act = act;
        r.bck = bck;
        r.iid = b.id;
        r.mode = mode_name(b.mode);
        r.algo = Some(algo_name(&b.algorithm));
        r.uweight = Some(weight);
        out.push(r);
    }
}
