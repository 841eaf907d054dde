//! Runs runtime server changes in the serve loop (it owns the listeners and the checkers). A change
//! that alters the server set or a limit is an [`Overlay`] edit: the overlay is applied to the
//! configuration text last loaded, validated like the file, and swapped in like a reload, so the
//! balancers see the new server set at once and every later load (reload, restart with
//! `server_state_file`) keeps it. The overlay is saved next to the state file,
//! `<server_state_file>.runtime.json`.

use super::Source;
use super::checks::Checks;
use crate::balance::{Algorithm, HashMethod};
use crate::config::Snapshot;
use crate::control::ServerRef;
use crate::control::servers_rt::{OpState, ProbeSetting, RtCommand};
use crate::dynamic::overlay::{self, Dropped, FrontendEdit};
use crate::dynamic::{Outcome, Overlay, Request};
use crate::proxy::Proxy;
use crate::proxy::listener::Listeners;
use crate::state::Admin;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The configuration text last loaded, before the overlay.
#[derive(Clone)]
pub struct Base {
    text: String,
    path: PathBuf,
    /// haproxy.cfg origins of the converted text, to locate errors in the source.
    origins: Option<Arc<crate::convert::Origins>>,
}

/// What the serve loop keeps for runtime changes.
pub struct State {
    base: Base,
    pub overlay: Overlay,
    /// Where the overlay is saved (`server_state_file` + `.runtime.json`), if anywhere.
    file: Option<PathBuf>,
    /// The base's model, read on the first `add server` after a load: what a runtime server is
    /// validated against.
    model: Option<Arc<crate::config::model::ConfigFile>>,
    /// When the overlay and the server state are next written, if changes wait for it.
    save_at: Option<tokio::time::Instant>,
}

/// How long changes may wait to be written together (a burst of `add server` is one write).
const SAVE_BATCH: std::time::Duration = std::time::Duration::from_millis(50);

fn overlay_file(snap: &Snapshot) -> Option<PathBuf> {
    snap.global.server_state_file.as_ref().map(|p| {
        let mut s = p.as_os_str().to_owned();
        s.push(".runtime.json");
        PathBuf::from(s)
    })
}

/// Reads the configuration: lbha.toml as is, or an haproxy.cfg converted in memory.
pub fn read_base(src: &Source) -> Result<Base, String> {
    if !src.haproxy {
        let text = std::fs::read_to_string(&src.path)
            .map_err(|e| format!("{}: cannot read config: {e}", src.path.display()))?;
        // Templates expanded here too, so runtime changes name their servers.
        let text =
            crate::dns::template::expand(&text).map_err(|e| format!("{}: {e}", src.path.display()))?.unwrap_or(text);
        return Ok(Base { text, path: src.path.clone(), origins: None });
    }
    let conv = crate::convert::io::convert_files(Some(&src.path), None).map_err(|e| e.to_string())?;
    let weakened = conv.weakened();
    if !src.allow_weaker && !weakened.is_empty() {
        return Err(crate::convert::weaker_error(&weakened));
    }
    for r in &conv.reports {
        tracing::warn!("{r}");
    }
    let text = crate::dns::template::expand(&conv.toml)?.unwrap_or(conv.toml);
    Ok(Base { text, path: src.path.clone(), origins: Some(Arc::new(conv.origins)) })
}

/// Validates the base with the overlay applied.
pub fn build(base: &Base, overlay: &Overlay) -> Result<(Snapshot, Dropped), String> {
    let (text, dropped) = overlay.apply(&base.text)?;
    let mut r = crate::config::parse(&text, &base.path);
    // A `check_ssl = false` that `set server ssl` recorded was told when it was set (the
    // operator's own is told at each load).
    if let Ok(s) = &mut r {
        let recorded = overlay.runtime_check_ssl(&text);
        let plain = crate::config::validate::check_tls::PLAIN_CHECKS;
        s.warnings.retain(|w| !recorded.iter().any(|p| w.contains(&format!(" {p}: {plain}"))));
    }
    match (&base.origins, r) {
        (None, Ok(s)) => Ok((s, dropped)),
        (None, Err(e)) => Err(e.to_string()),
        (Some(o), Ok(mut s)) => {
            s.warnings = s.warnings.iter().map(|w| crate::convert::locate_warning(w, o)).collect();
            Ok((s, dropped))
        }
        (Some(o), Err(e)) => Err(crate::convert::locate_errors(&e, o).join("\n")),
    }
}

/// The first load: the file, then the saved overlay if `server_state_file` has one. A saved
/// overlay that no longer validates is logged and left out (kept for a later reload).
pub fn load_initial(src: &Source) -> Result<(Snapshot, State), String> {
    let base = read_base(src)?;
    let (snap, _) = build(&base, &Overlay::default())?;
    let file = overlay_file(&snap);
    let overlay = match &file {
        Some(f) => read_overlay(f),
        None => Overlay::default(),
    };
    let mut st = State { base, overlay, file, model: None, save_at: None };
    if st.overlay.is_empty() {
        return Ok((snap, st));
    }
    match build(&st.base, &st.overlay) {
        Ok((s, dropped)) => {
            log_dropped(&dropped);
            st.overlay.prune(&dropped);
            tracing::info!(
                "runtime servers and changes restored from {}",
                st.file.as_ref().map_or(String::new(), |f| f.display().to_string())
            );
            Ok((s, st))
        }
        Err(e) => {
            tracing::error!(
                "the saved runtime server changes do not apply to this configuration, starting without them:\n{e}"
            );
            Ok((snap, st))
        }
    }
}

/// A reload: the file read again, the overlay applied.
pub fn load(src: &Source, overlay: &Overlay) -> Result<(Snapshot, Base, Dropped), String> {
    let base = read_base(src)?;
    match build(&base, overlay) {
        Ok((s, d)) => Ok((s, base, d)),
        // The file alone may still be good: serve it, with the overlay left out (and logged).
        Err(e) if !overlay.is_empty() => {
            let (s, _) = build(&base, &Overlay::default())?;
            tracing::error!("runtime server changes left out of this reload, they no longer validate:\n{e}");
            Ok((s, base, Vec::new()))
        }
        Err(e) => Err(e),
    }
}

impl State {
    /// Records a successful reload's base and what it dropped, and saves the overlay.
    pub fn reloaded(&mut self, base: Base, dropped: &Dropped) {
        self.base = base;
        self.model = None;
        log_dropped(dropped);
        self.overlay.prune(dropped);
        self.save();
    }

    /// When batched changes are due to be written (see [`State::flush`]).
    pub fn save_due(&self) -> Option<tokio::time::Instant> {
        self.save_at
    }

    /// Writes the overlay and the server state file if changes wait: at the end of a batch, and
    /// before the process stops or hands over to an upgrade. Each write replaces the file
    /// atomically with the newest state, so a crash leaves the last complete one.
    pub async fn flush(&mut self, proxy: &Arc<Proxy>) {
        if self.save_at.take().is_none() {
            return;
        }
        self.save();
        let p = proxy.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || super::state_file::save(&p)).await {
            tracing::warn!("saving server state failed: {e}");
        }
    }

    /// Schedules the write of the overlay and server state (see [`State::flush`]).
    fn changed(&mut self) {
        self.save_at.get_or_insert_with(|| tokio::time::Instant::now() + SAVE_BATCH);
    }

    /// The model of the base configuration, parsed once per load.
    fn model(&mut self) -> Result<Arc<crate::config::model::ConfigFile>, String> {
        if let Some(m) = &self.model {
            return Ok(m.clone());
        }
        let m: crate::config::model::ConfigFile =
            toml::from_str(&self.base.text).map_err(|e| format!("cannot read the configuration again: {e}"))?;
        let m = Arc::new(m);
        self.model = Some(m.clone());
        Ok(m)
    }

    fn save(&mut self) {
        self.save_at = None;
        let Some(f) = &self.file else { return };
        let r = if self.overlay.is_empty() {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let text = serde_json::to_vec_pretty(&self.overlay).unwrap_or_default();
            crate::fsutil::write_atomic(f, &text)
        };
        if let Err(e) = r {
            tracing::warn!("cannot save runtime server changes to {}: {e}", f.display());
        }
    }
}

fn read_overlay(f: &Path) -> Overlay {
    match std::fs::read(f) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::error!("{}: cannot read runtime server changes ({e}); ignored", f.display());
            Overlay::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Overlay::default(),
        Err(e) => {
            tracing::error!("cannot read {}: {e}; runtime server changes ignored", f.display());
            Overlay::default()
        }
    }
}

fn log_dropped(d: &Dropped) {
    for (_, why) in d {
        tracing::warn!("{why}");
    }
}

/// The serve loop's side: runs one request and answers it.
pub async fn handle(req: Request, proxy: &Arc<Proxy>, listeners: &mut Listeners, checks: &mut Checks, st: &mut State) {
    let out = run(req.command, proxy, listeners, checks, st).await;
    if req.reply.send(out).is_err() {
        tracing::debug!("the client of a runtime server change has gone");
    }
}

fn not_found(m: &str) -> (u16, String) {
    (404, m.to_string())
}

fn refused(m: impl Into<String>) -> (u16, String) {
    (400, m.into())
}

/// Finds a server in the active snapshot: (backend index, server index).
fn find(proxy: &Proxy, r: &ServerRef) -> Result<(usize, usize), (u16, String)> {
    let a = proxy.active.load();
    crate::control::facts::find_server(&a, r).map_err(not_found)
}

/// HAProxy 2.6 adds servers only to backends whose algorithm can take a new server at once.
fn dynamic_capable(b: &crate::config::snapshot::Backend) -> bool {
    match b.algorithm {
        Algorithm::StaticRr => false,
        Algorithm::Source
        | Algorithm::Uri { .. }
        | Algorithm::UrlParam { .. }
        | Algorithm::Hdr { .. }
        | Algorithm::Hash(_)
        | Algorithm::RdpCookie(_) => b.selector.hash_type().is_some_and(|h| h.method == HashMethod::Consistent),
        _ => true,
    }
}

async fn run(
    cmd: RtCommand,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut Checks,
    st: &mut State,
) -> Outcome {
    let active = proxy.active.load_full();
    match cmd {
        RtCommand::AddServer(r, fields) => {
            let Some((bi, b)) = active.snap.backend(&r.backend) else {
                return Err(not_found("No such backend."));
            };
            if !dynamic_capable(b) {
                return Err(refused("Backend must use a dynamic load balancing to support dynamic servers."));
            }
            if b.servers.iter().any(|s| s.name == r.server) {
                return Err((409, "Already exists a server with the same name in backend.".into()));
            }
            // HAProxy keeps tracking chains to the file's servers, so deleting a runtime server
            // never breaks one.
            if let Some(t) = fields.track.as_deref() {
                let (tb, ts) = t.rsplit_once('/').unwrap_or((r.backend.as_str(), t));
                if st.overlay.added.iter().any(|a| a.backend == tb && a.server.name == ts) {
                    return Err(refused(format!("unable to use {tb}/{ts} for tracking as it is a dynamic server.")));
                }
                // HAProxy's words (and its punctuation) for the refusals a load also makes.
                crate::config::validate::runtime_track(&active.snap, &r.backend, t, fields.check).map_err(|e| {
                    refused(if e.ends_with("the same time") { format!("{e}!") } else { format!("{e}.") })
                })?;
            }
            // Only the new server is validated, against its backend; the rest is as served.
            let si = b.servers.len();
            let model = st.model().map_err(refused)?;
            let checked = check_one(&model, &active, bi, si, &r, &fields)?;
            // The id it got is kept, so a reload or a restart gives it the same one.
            let mut fields = *fields;
            fields.id = Some(checked.id);
            // As in HAProxy, a new server starts in maintenance: `enable server` puts it in service.
            proxy.registry.prepare_maint(&r.backend, &r.server, checked.weight);
            proxy.swap_server(bi, si, crate::config::validate::with_server(b, si, checked));
            checks.restart_server(proxy, bi, si);
            st.overlay.add(&r.backend, fields);
            st.changed();
            tracing::info!("server {r} added (control socket)");
            Ok("New server registered.".into())
        }
        RtCommand::DelServer(r) => {
            let (bi, si) = find(proxy, &r)?;
            let me = Some((r.backend.clone(), r.server.clone()));
            if active.snap.backends.iter().any(|b| b.servers.iter().any(|s| s.track == me)) {
                return Err((
                    409,
                    "This server cannot be removed at runtime due to other configuration elements pointing to it."
                        .into(),
                ));
            }
            let rt = &active.rt.backends[bi].servers[si];
            if rt.admin() != Admin::Maint {
                return Err((409, "Only servers in maintenance mode can be deleted.".into()));
            }
            if rt.counters.cur_sessions.load(Relaxed) > 0 {
                return Err((409, "Server still has connections attached to it, cannot remove it.".into()));
            }
            let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
            let mut next = st.overlay.clone();
            next.delete(&r.backend, &r.server, ca.as_deref());
            apply(next, proxy, listeners, checks, st).await?;
            tracing::info!("server {r} deleted (control socket)");
            Ok("Server deleted.".into())
        }
        RtCommand::SetAddr(r, ip, port) => {
            let (bi, si) = find(proxy, &r)?;
            let old = active.snap.backends[bi].servers[si].addr;
            let new = SocketAddr::new(ip, port.unwrap_or(old.port()));
            let mut msg = if ip == old.ip() {
                "no need to change the addr".to_string()
            } else {
                format!("IP changed from '{}' to '{ip}'", old.ip())
            };
            if let Some(p) = port {
                if p == old.port() {
                    msg.push_str(", no need to change the port");
                } else {
                    msg.push_str(&format!(", port changed from '{}' to '{p}'", old.port()));
                }
            }
            msg.push_str(" by 'stats socket command'");
            if new != old {
                let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
                let (b, sv) = (&r.backend, &r.server);
                // A file server named by a host keeps its name (HAProxy's `srv_fqdn`): the
                // address goes in as its `init_addr`, as the resolvers' answers do.
                let named = active.snap.backends[bi].servers[si].fqdn.clone().filter(|_| ca.is_some());
                let record = |o: &mut Overlay| match (&named, ca.as_deref()) {
                    (Some(h), Some(c)) => {
                        o.set_addr(b, sv, Some(c), format!("{h}:{}", new.port()));
                        o.set_dns(b, sv, c, new.ip().to_string(), None);
                    }
                    _ => o.set_addr(b, sv, ca.as_deref(), new.to_string()),
                };
                let edit = |s: &mut crate::config::model::Server| match &named {
                    Some(h) => {
                        s.addr = format!("{h}:{}", new.port());
                        s.init_addr = Some(new.ip().to_string());
                    }
                    None => s.addr = new.to_string(),
                };
                change_one((bi, si), &r, edit, record, (proxy, listeners, checks, st)).await?;
                tracing::info!("server {r} address {old} -> {new} (control socket)");
            }
            Ok(msg)
        }
        RtCommand::SetCheckPort(r, port) => {
            let (bi, si) = find(proxy, &r)?;
            if active.snap.backends[bi].servers[si].check.is_none() {
                return Err(refused("health checks are not enabled on this server"));
            }
            let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
            let record = |o: &mut Overlay| o.set_check_port(&r.backend, &r.server, ca.as_deref(), port);
            let edit = |s: &mut crate::config::model::Server| s.check_port = Some(port);
            change_one((bi, si), &r, edit, record, (proxy, listeners, checks, st)).await?;
            Ok(String::new())
        }
        RtCommand::SetProbe(r, set) => {
            let (bi, si) = find(proxy, &r)?;
            let sv = &active.snap.backends[bi].servers[si];
            let ip = |a: &str| a.parse::<std::net::IpAddr>().map_err(|_| refused(format!("invalid addr '{a}'")));
            let port = |p: &str| match p.parse::<i64>() {
                Ok(n @ 1..=65535) => Ok(n as u16),
                Ok(_) => Err(refused("provided port is invalid")),
                Err(_) => Err(refused("provided port is not an integer")),
            };
            let agent = || {
                if sv.agent.is_none() || !checks.agent_enabled(&r.backend, &r.server) {
                    Err(refused("agent checks are not enabled on this server"))
                } else {
                    Ok(())
                }
            };
            // (check_addr, check_port, agent_addr, agent_port, agent_send) to set.
            type Probe = (Option<String>, Option<u16>, Option<String>, Option<u16>, Option<String>);
            let v: Probe = match &set {
                ProbeSetting::CheckAddr(a, p) => {
                    if sv.check.is_none() {
                        return Err(refused("health checks are not enabled on this server"));
                    }
                    (Some(ip(a)?.to_string()), p.as_deref().map(port).transpose()?, None, None, None)
                }
                ProbeSetting::AgentAddr(a, p) => {
                    agent()?;
                    (None, None, Some(ip(a)?.to_string()), p.as_deref().map(port).transpose()?, None)
                }
                ProbeSetting::AgentPort(p) => {
                    agent()?;
                    (None, None, None, Some(port(p)?), None)
                }
                ProbeSetting::AgentSend(t) => {
                    agent()?;
                    (None, None, None, None, Some(t.clone()))
                }
            };
            let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
            let put = |s: &mut crate::config::model::Server, v: &Probe| {
                s.check_addr = v.0.clone().or(s.check_addr.take());
                s.check_port = v.1.or(s.check_port);
                s.agent_addr = v.2.clone().or(s.agent_addr.take());
                s.agent_port = v.3.or(s.agent_port);
                s.agent_send = v.4.clone().or(s.agent_send.take());
            };
            let record = |o: &mut Overlay| {
                o.set_probe(
                    &r.backend,
                    &r.server,
                    ca.as_deref(),
                    |s| put(s, &v),
                    |e| {
                        e.check_addr = v.0.clone().or(e.check_addr.take());
                        e.check_port = v.1.or(e.check_port);
                        e.agent_addr = v.2.clone().or(e.agent_addr.take());
                        e.agent_port = v.3.or(e.agent_port);
                        e.agent_send = v.4.clone().or(e.agent_send.take());
                    },
                )
            };
            let edit = |s: &mut crate::config::model::Server| put(s, &v);
            change_one((bi, si), &r, edit, record, (proxy, listeners, checks, st)).await?;
            Ok(String::new())
        }
        RtCommand::SetHealth(r, state) => {
            let (bi, si) = find(proxy, &r)?;
            let rt = &active.rt.backends[bi].servers[si];
            let was_up = rt.is_up();
            // `stopping` is HAProxy's NOLB: up, no new non-persistent traffic, until a check passes.
            rt.force_health(state != OpState::Down);
            rt.set_nolb(state == OpState::Stopping);
            // Brought up by command counts as marked up (`on-marked-up`), as in HAProxy.
            if !was_up && state != OpState::Down && rt.admin() != Admin::Maint {
                proxy.shutdown_backups(&active, (bi, si));
            }
            // The checker goes on (a probe in flight stays so, as HAProxy's) and counts from
            // the forced counter; the servers tracking this one follow.
            checks.sync_trackers(proxy);
            Ok(String::new())
        }
        RtCommand::SetAgent(r, state) => {
            let (bi, si) = find(proxy, &r)?;
            if active.snap.backends[bi].servers[si].agent.is_none() || !checks.agent_enabled(&r.backend, &r.server) {
                return Err(refused("agent checks are not enabled on this server."));
            }
            // The parser takes only up and down for the agent, as HAProxy.
            let up = state == OpState::Up;
            if active.rt.backends[bi].servers[si].set_agent_up(up) {
                tracing::info!("server {r} agent {} (control socket)", if up { "UP" } else { "DOWN" });
            }
            Ok(String::new())
        }
        RtCommand::SetFqdn(r, fqdn) => {
            let (bi, si) = find(proxy, &r)?;
            let sv = &active.snap.backends[bi].servers[si];
            let (Some(d), Some(ca)) = (&sv.dns, overlay::config_addr(&st.base.text, &r.backend, &r.server)) else {
                return Err(refused("set server <b>/<s> fqdn failed because no resolution is configured."));
            };
            if d.srv {
                return Err(refused("set server <b>/<s> fqdn failed because its name is an SRV record."));
            }
            if fqdn.is_empty() || fqdn.starts_with('_') || fqdn.contains([':', ' ', '/']) {
                return Err(refused(format!("set server <b>/<s> fqdn: invalid name '{fqdn}'.")));
            }
            // The new name keeps the port; the resolvers answer for it from their next round.
            let mut next = st.overlay.clone();
            next.set_addr(&r.backend, &r.server, Some(&ca), format!("{fqdn}:{}", d.port));
            apply(next, proxy, listeners, checks, st).await?;
            tracing::info!("server {r} FQDN {} -> {fqdn} (control socket)", d.host);
            Ok(format!("{r} changed its FQDN from {} to {fqdn} by 'stats socket command'", d.host))
        }
        RtCommand::SetSsl(r, on) => {
            let at = find(proxy, &r)?;
            let model = st.model().map_err(refused)?;
            let file = crate::config::validate::model_server(&model, &r.backend, &r.server);
            let cur = st.overlay.server(file, &r.backend, &r.server);
            let was = cur.as_ref().is_some_and(|s| s.ssl);
            // HAProxy leaves the check path alone: checks that follow `ssl` (to the server's own
            // address, no `check_ssl`) keep the TLS or plain they had.
            let pin = cur.as_ref().and_then(|s| {
                let follows = s.check && s.check_ssl.is_none() && s.check_port.is_none() && s.check_addr.is_none();
                (follows && s.ssl != on).then_some(s.ssl)
            });
            let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
            let record = |o: &mut Overlay| o.set_ssl(&r.backend, &r.server, ca.as_deref(), on, pin);
            let edit = |s: &mut crate::config::model::Server| {
                s.ssl = on;
                s.check_ssl = pin.or(s.check_ssl);
            };
            change_one(at, &r, edit, record, (proxy, listeners, checks, st)).await.map_err(|(code, m)| {
                if on && !was {
                    // HAProxy's words for a server without TLS settings; lbha's reason after them.
                    (
                        code,
                        format!(
                            "'set server <srv> ssl' cannot be set.  default-server should define ssl settings\n{m}"
                        ),
                    )
                } else {
                    (code, m)
                }
            })?;
            tracing::info!("server {r} ssl {} (control socket)", if on { "on" } else { "off" });
            Ok("server ssl setting updated.".into())
        }
        RtCommand::Health(r, on) => {
            let (bi, si) = find(proxy, &r)?;
            if active.snap.backends[bi].servers[si].check.is_none() {
                if on {
                    return Err(refused("Health check was not configured on this server, cannot enable."));
                }
                return Ok(String::new());
            }
            if !on {
                active.rt.backends[bi].servers[si].set_up(true);
            }
            checks.set_enabled(proxy, &r.backend, &r.server, on);
            Ok(String::new())
        }
        RtCommand::Agent(r, on) => {
            let (bi, si) = find(proxy, &r)?;
            if active.snap.backends[bi].servers[si].agent.is_none() {
                if on {
                    return Err(refused("Agent was not configured on this server, cannot enable."));
                }
                return Ok(String::new());
            }
            if !on {
                // A stopped agent no longer holds the server down; the checks alone decide.
                active.rt.backends[bi].servers[si].set_agent_up(true);
            }
            checks.set_agent_enabled(proxy, &r.backend, &r.server, on);
            Ok(String::new())
        }
        RtCommand::Frontend(f, on) => {
            if active.snap.frontend(&f).is_none() {
                return Err(not_found("No such frontend."));
            }
            let mut changed = false;
            proxy.paused.send_if_modified(|p| {
                changed = if on { p.remove(&f) } else { p.insert(f.clone()) };
                changed
            });
            match (changed, on) {
                (false, true) => Err(refused("All sockets are already enabled.")),
                (false, false) => Err(refused("All sockets are already disabled.")),
                _ => {
                    tracing::info!("frontend {f} {} (control socket)", if on { "enabled" } else { "disabled" });
                    Ok(String::new())
                }
            }
        }
        RtCommand::MaxconnFrontend(f, n) => {
            if active.snap.frontend(&f).is_none() {
                return Err(not_found("No such frontend."));
            }
            if n == 0 {
                return Err(refused("Value out of range."));
            }
            let mut next = st.overlay.clone();
            next.frontends.insert(f, FrontendEdit { maxconn: Some(n) });
            apply(next, proxy, listeners, checks, st).await?;
            Ok(String::new())
        }
        RtCommand::MaxconnServer(r, n) => {
            let at = find(proxy, &r)?;
            let ca = overlay::config_addr(&st.base.text, &r.backend, &r.server);
            let record = |o: &mut Overlay| o.set_server_maxconn(&r.backend, &r.server, ca.as_deref(), n);
            let edit = |s: &mut crate::config::model::Server| s.maxconn = (n > 0).then_some(n);
            change_one(at, &r, edit, record, (proxy, listeners, checks, st)).await?;
            Ok(String::new())
        }
        RtCommand::MaxconnGlobal(n) => {
            if n == 0 {
                return Err(refused("Value out of range."));
            }
            let mut next = st.overlay.clone();
            next.global_maxconn = Some(n);
            apply(next, proxy, listeners, checks, st).await?;
            Ok(String::new())
        }
        RtCommand::ShowServersConn(b) => show_servers_conn(&active, b.as_deref()),
        RtCommand::Dns(changes) => {
            let mut next = st.overlay.clone();
            for (r, ip) in &changes {
                // Servers added at runtime take no `resolvers`: only the file's are resolved.
                let Some(ca) = overlay::config_addr(&st.base.text, &r.backend, &r.server) else { continue };
                let v = ip.map_or_else(
                    || "none".to_string(),
                    |f| match f.srv {
                        Some((port, _)) => std::net::SocketAddr::new(f.ip, port).to_string(),
                        None => f.ip.to_string(),
                    },
                );
                let weight = ip.and_then(|f| f.srv).map(|(_, w)| w);
                tracing::info!("server {r} ({ca}): address from DNS now {v}");
                next.set_dns(&r.backend, &r.server, &ca, v, weight);
            }
            apply(next, proxy, listeners, checks, st).await?;
            Ok(String::new())
        }
    }
}

/// Validates `sv` as server `si` of backend `bi` (only it, against its backend).
fn check_one(
    model: &crate::config::model::ConfigFile,
    active: &crate::proxy::Active,
    bi: usize,
    si: usize,
    r: &ServerRef,
    sv: &crate::config::model::Server,
) -> Result<crate::config::snapshot::Server, (u16, String)> {
    let b = &active.snap.backends[bi];
    let checked =
        crate::config::validate::runtime_server(model, &active.snap, b, si, sv).map_err(|e| refused(e.join("\n")))?;
    for w in &checked.warnings {
        tracing::warn!("server {r}: {w}");
    }
    Ok(checked.server)
}

/// Serves server `r` (at `bi`/`si`) changed by `edit`, validating and rebuilding only it and its
/// backend, then records the change with `record` once it is in service. A server the overlay
/// cannot describe alone (not found in the model) goes the whole way: `record` on a copy,
/// validated with the whole configuration.
async fn change_one(
    (bi, si): (usize, usize),
    r: &ServerRef,
    edit: impl FnOnce(&mut crate::config::model::Server),
    record: impl FnOnce(&mut Overlay),
    ctx: (&Arc<Proxy>, &mut Listeners, &mut Checks, &mut State),
) -> Result<(), (u16, String)> {
    let (proxy, listeners, checks, st) = ctx;
    let active = proxy.active.load_full();
    let model = st.model().map_err(refused)?;
    let file = crate::config::validate::model_server(&model, &r.backend, &r.server);
    let Some(mut sv) = st.overlay.server(file, &r.backend, &r.server) else {
        let mut next = st.overlay.clone();
        record(&mut next);
        return apply(next, proxy, listeners, checks, st).await;
    };
    edit(&mut sv);
    let checked = check_one(&model, &active, bi, si, r, &sv)?;
    proxy.swap_server(bi, si, crate::config::validate::with_server(&active.snap.backends[bi], si, checked));
    checks.restart_server(proxy, bi, si);
    record(&mut st.overlay);
    st.changed();
    Ok(())
}

/// The control socket's answer: HAProxy's text; the JSON form says whether it worked.
pub async fn control_reply(proxy: &Proxy, command: RtCommand) -> crate::control::Reply {
    use serde_json::json;
    match crate::dynamic::submit(proxy, command).await {
        Ok(text) => crate::control::Reply::ok(text.clone(), json!({ "success": true, "message": text.trim_end() })),
        Err((_, m)) => crate::control::Reply::error(m),
    }
}

/// Validates the base with `next` applied and swaps it in; `next` becomes the overlay.
async fn apply(
    next: Overlay,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut Checks,
    st: &mut State,
) -> Result<(), (u16, String)> {
    let base = st.base.clone();
    let candidate = next.clone();
    let built = tokio::task::spawn_blocking(move || build(&base, &candidate))
        .await
        .unwrap_or_else(|e| Err(format!("validation failed: {e}")));
    let (snap, dropped) = built.map_err(refused)?;
    super::reload(snap, proxy, listeners, checks, false).map_err(refused)?;
    st.overlay = next;
    log_dropped(&dropped);
    st.overlay.prune(&dropped);
    st.save();
    let p = proxy.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || super::state_file::save(&p)).await {
        tracing::warn!("saving server state failed: {e}");
    }
    Ok(())
}

/// `show servers conn [<backend>]`: HAProxy's columns; lbha keeps one idle list per server.
fn show_servers_conn(active: &crate::proxy::Active, only: Option<&str>) -> Outcome {
    if let Some(b) = only
        && active.snap.backend(b).is_none()
    {
        return Err(not_found("Can't find backend."));
    }
    let mut out = String::from(
        "# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[1]\n",
    );
    for (bi, b) in active.snap.backends.iter().enumerate() {
        if only.is_some_and(|o| o != b.name) {
            continue;
        }
        for (si, s) in b.servers.iter().enumerate() {
            let rt = &active.rt.backends[bi].servers[si];
            let pool = &active.pools[bi][si];
            let idle = pool.idle_count();
            out.push_str(&format!(
                "{}/{} {}/{} {} {} - {} {} {} {} 0 {} -1 {} {}\n",
                b.name,
                s.name,
                bi + 1,
                s.id,
                s.addr.ip(),
                s.addr.port(),
                pool.purge_delay_ms(),
                rt.counters.cur_sessions.load(Relaxed),
                rt.counters.max_sessions.load(Relaxed),
                rt.counters.cur_sessions.load(Relaxed) + idle as u32,
                idle,
                idle,
                idle,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(text: &str) -> Snapshot {
        crate::config::parse(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn only_dynamic_algorithms_take_runtime_servers() {
        let be = |balance: &str| {
            let s = snap(&format!(
                "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"b\"\n{balance}\nservers = [{{ name = \"a\", addr = \"127.0.0.1:1\" }}]\n"
            ));
            dynamic_capable(&s.backends[0])
        };
        assert!(be(""));
        assert!(be("balance = \"leastconn\""));
        assert!(be("balance = \"first\""));
        assert!(be("balance = \"random\""));
        assert!(!be("balance = \"static-rr\""));
        assert!(!be("balance = \"source\""));
        assert!(be("balance = \"source\"\nhash_type = \"consistent\""));
        assert!(!be("balance = \"uri\""));
    }

    #[test]
    fn the_overlay_file_sits_next_to_the_state_file() {
        let s = snap("[global]\nserver_state_file = \"/var/lib/lbha/state\"\n");
        assert_eq!(overlay_file(&s).unwrap(), PathBuf::from("/var/lib/lbha/state.runtime.json"));
        assert!(overlay_file(&snap("")).is_none());
    }
}

#[cfg(test)]
mod check_ssl_tests {
    use super::*;

    /// `set server ssl on` of a server whose checks were plain records `check_ssl = false`: a
    /// load does not warn of it again (its meaning was logged when it was set), while the
    /// operator's own `check_ssl = false` is warned of at each load.
    #[test]
    fn a_recorded_check_ssl_is_not_warned_of_at_each_load() {
        let text = |own: &str| {
            format!(
                "[global]\nssl_server_verify = \"none\"\n[[backend]]\nname = \"b\"\nmode = \"http\"\n\
                 servers = [{{ name = \"o\", addr = \"127.0.0.1:2\" }}, \
                 {{ name = \"s\", addr = \"127.0.0.1:1\", check = true{own} }}]\n"
            )
        };
        let base = |own: &str| Base { text: text(own), path: PathBuf::from("t.toml"), origins: None };
        let plain = |s: &Snapshot| s.warnings.iter().filter(|w| w.contains("health checks go plain")).count();
        let mut o = Overlay::default();
        o.set_ssl("b", "s", Some("127.0.0.1:1"), true, Some(false));
        let (s, _) = build(&base(""), &o).unwrap();
        assert!(
            s.backends[0].servers[1].tls.is_some() && s.backends[0].servers[1].check.as_ref().unwrap().tls.is_none()
        );
        assert_eq!(plain(&s), 0, "{:?}", s.warnings);
        let (s, _) = build(&base(", ssl = true, check_ssl = false"), &Overlay::default()).unwrap();
        assert_eq!(plain(&s), 1, "{:?}", s.warnings);
        // Recorded on a runtime server too.
        let mut o = Overlay::default();
        let mut added = crate::config::model::Server {
            name: "r".into(),
            addr: "127.0.0.1:3".into(),
            check: true,
            ssl: true,
            ..Default::default()
        };
        added.check_ssl = Some(false);
        o.add("b", added);
        let (s, _) = build(&base(""), &o).unwrap();
        assert_eq!(s.backends[0].servers.len(), 3);
        assert_eq!(plain(&s), 0, "{:?}", s.warnings);
    }
}
