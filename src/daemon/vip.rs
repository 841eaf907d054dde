//! The VRRP commands of the control socket: `show vrrp` and `vip add|del|list`, run against the
//! VRRP manager the daemon shares with its connections.

use super::control::Shared;
use crate::config::vrrp::VipDef;
use crate::control::reply::Reply;
use crate::control::vip::VipRequest;
use crate::control::vrrp::{change_reply, render_vip_list, render_vrrp, vip_views, vrrp_view};
use crate::vrrp::runtime::VipMatch;
use serde_json::json;

const NOT_RUNNING: &str = "VRRP is not running in this daemon (it is starting or stopping).";

pub async fn show_vrrp(shared: &Shared) -> Reply {
    let guard = shared.vrrp.lock().await;
    let Some(m) = guard.as_ref() else { return Reply::error(NOT_RUNNING) };
    let view = vrrp_view(&m.report(), &m.list(), &m.store_path().display().to_string(), std::time::SystemTime::now());
    let j = serde_json::to_value(&view).unwrap_or_else(|e| json!({ "errorStr": e.to_string() }));
    Reply::ok(render_vrrp(&view), j)
}

pub async fn list(shared: &Shared, instance: Option<&str>) -> Reply {
    let guard = shared.vrrp.lock().await;
    let Some(m) = guard.as_ref() else { return Reply::error(NOT_RUNNING) };
    let mut views = vip_views(&m.list());
    if let Some(name) = instance {
        if !views.iter().any(|v| v.instance == name) && !m.report().iter().any(|r| r.status.name == name) {
            return Reply::error(format!("No vrrp_instance named '{name}'."));
        }
        views.retain(|v| v.instance == name);
    }
    let j = serde_json::to_value(&views).unwrap_or_else(|e| json!({ "errorStr": e.to_string() }));
    Reply::ok(render_vip_list(&views), j)
}

pub async fn add(shared: &Shared, req: VipRequest) -> Reply {
    let prefix = req.range.prefix_or_host();
    let vips: Vec<VipDef> =
        req.range.addrs().map(|addr| VipDef { addr, prefix, dev: req.dev.clone(), label: req.label.clone() }).collect();
    let mut guard = shared.vrrp.lock().await;
    let Some(m) = guard.as_mut() else { return Reply::error(NOT_RUNNING) };
    match m.add_vips(req.instance.as_deref(), vips).await {
        Ok(change) => {
            let (text, j) = change_reply(std::slice::from_ref(&change), true, &m.store_path().display().to_string());
            tracing::info!("vip add {} (control socket): {}", req.range, text.trim_end());
            Reply::ok(text, j)
        }
        Err(e) => Reply::error(e.to_string()),
    }
}

pub async fn del(shared: &Shared, req: VipRequest) -> Reply {
    let wanted: Vec<VipMatch> =
        req.range.addrs().map(|addr| VipMatch { addr, prefix: req.range.prefix, dev: req.dev.clone() }).collect();
    let mut guard = shared.vrrp.lock().await;
    let Some(m) = guard.as_mut() else { return Reply::error(NOT_RUNNING) };
    match m.del_vips(req.instance.as_deref(), &wanted).await {
        Ok(changes) => {
            let (text, j) = change_reply(&changes, false, &m.store_path().display().to_string());
            tracing::info!("vip del {} (control socket): {}", req.range, text.trim_end());
            Reply::ok(text, j)
        }
        Err(e) => Reply::error(e.to_string()),
    }
}
