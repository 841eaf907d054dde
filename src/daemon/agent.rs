//! Runs one `agent-check` per server that has one and applies the agent's replies to the
//! server's runtime state: weight (relative to the configured one), `maxconn`, drain/maint/ready
//! and agent up/down. Every change is logged.

use crate::health::agent::{self, AgentAdmin, AgentReply, AgentSpec};
use crate::log::format::Level;
use crate::proxy::Proxy;
use crate::state::{Admin, ServerRt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::watch;

pub struct Running {
    spec: String,
    stop: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Keeps unchanged agents, restarts changed ones, stops those of removed servers.
pub fn reconcile(
    running: &mut HashMap<(String, String), Running>,
    disabled: &std::collections::HashSet<(String, String)>,
    proxy: &Arc<Proxy>,
    rt: Option<&tokio::runtime::Handle>,
) {
    let active = proxy.active.load_full();
    let mut next = HashMap::new();
    for (bi, b) in active.snap.backends.iter().enumerate() {
        for (si, s) in b.servers.iter().enumerate() {
            let Some(spec) = &s.agent else { continue };
            let key = (b.name.clone(), s.name.clone());
            if disabled.contains(&key) {
                continue;
            }
            let text = format!("{spec:?}/{}", s.weight);
            if let Some(r) = running.remove(&key)
                && r.spec == text
            {
                next.insert(key, r);
                continue;
            }
            let (stop, rx) = watch::channel(false);
            let task = run(
                spec.clone(),
                active.rt.backends[bi].servers[si].clone(),
                s.weight,
                format!("{}/{}", b.name, s.name),
                proxy.clone(),
                rx,
            );
            match rt {
                Some(h) => drop(h.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
            next.insert(key, Running { spec: text, stop });
        }
    }
    // Dropping the others stops them.
    *running = next;
}

async fn run(
    spec: AgentSpec,
    rt: Arc<ServerRt>,
    weight: u32,
    name: String,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            reply = agent::ask(&spec) => {
                if let Some(text) = reply {
                    apply(&parse(&text), &rt, weight, &name, &proxy);
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(spec.inter) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn parse(text: &str) -> AgentReply {
    agent::parse_reply(text)
}

/// Applies one reply; logs what changed.
pub fn apply(r: &AgentReply, rt: &ServerRt, configured_weight: u32, name: &str, proxy: &Proxy) {
    let mut changes = Vec::new();
    if let Some(p) = r.weight_pct {
        let w = agent::scaled_weight(configured_weight, p);
        if rt.weight() != w {
            rt.set_weight(w);
            changes.push(format!("weight {w} ({p}% of {configured_weight})"));
        }
    }
    if let Some(m) = r.maxconn
        && rt.maxconn.swap(m, Relaxed) != m
    {
        changes.push(format!("maxconn {m}"));
    }
    if let Some(a) = r.admin {
        let want = match a {
            AgentAdmin::Ready => Admin::Ready,
            AgentAdmin::Drain => Admin::Drain,
            AgentAdmin::Maint => Admin::Maint,
        };
        let old = rt.admin();
        if old != want {
            rt.set_admin(want);
            changes.push(format!("state {}", format!("{a:?}").to_ascii_uppercase()));
            let active = proxy.active.load_full();
            let (b, s) = name.split_once('/').unwrap_or(("", name));
            if let Some(at) =
                active.snap.backend(b).and_then(|(bi, bk)| Some((bi, bk.servers.iter().position(|x| x.name == s)?)))
            {
                proxy.admin_changed(&active, at, old);
            }
        }
    }
    if let Some(up) = r.up
        && rt.set_agent_up(up)
    {
        changes.push(if up { "agent UP".to_string() } else { "agent DOWN".to_string() });
    }
    if !changes.is_empty() {
        let desc = r.description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        let msg = format!("Server {name} changed by agent-check: {}{desc}", changes.join(", "));
        tracing::info!("{msg}");
        let backend = name.split_once('/').map_or(name, |(b, _)| b);
        proxy.active.load().be_logger(backend).log(Level::Notice, &msg);
    }
}
