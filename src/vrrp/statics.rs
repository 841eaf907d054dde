//! keepalived's `static_ipaddress`, `static_routes` and `static_rules`: in place while VRRP runs,
//! whatever the instances' states. Added at start, brought in line at a reload (what the new config
//! dropped is removed), removed at a clean stop as keepalived does; an upgrade hands them over in
//! place. A failing entry is logged; the others still go on.

use crate::config::vrrp::Statics;
use crate::net::vip::{Vip, VipHandle};

fn vip(v: &crate::config::vrrp::VipDef) -> (String, Vip) {
    (v.dev.clone().unwrap_or_default(), Vip { addr: v.addr, prefix: v.prefix, label: v.label.clone() })
}

/// Adds what `new` has, then removes what `old` had and `new` has not.
pub async fn update(old: &Statics, new: &Statics) {
    if old.is_empty() && new.is_empty() {
        return;
    }
    let h = match VipHandle::new() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("static addresses and routes: {e}");
            return;
        }
    };
    let nl = h.routes();
    for a in &new.addrs {
        let (dev, v) = vip(a);
        if let Err(e) = h.add(&dev, &v).await {
            tracing::error!("static_ipaddress {v} dev {dev}: {e}");
        }
    }
    for r in &new.routes {
        if let Err(e) = nl.add_route(r).await {
            tracing::error!("static_routes: {e}");
        }
    }
    for r in &new.rules {
        if let Err(e) = nl.add_rule(r).await {
            tracing::error!("static_rules: {e}");
        }
    }
    for r in old.rules.iter().filter(|r| !new.rules.contains(r)) {
        if let Err(e) = nl.del_rule(r).await {
            tracing::error!("static_rules: {e}");
        }
    }
    for r in old.routes.iter().filter(|r| !new.routes.contains(r)) {
        if let Err(e) = nl.del_route(r).await {
            tracing::error!("static_routes: {e}");
        }
    }
    for a in old.addrs.iter().filter(|a| !new.addrs.contains(a)) {
        let (dev, v) = vip(a);
        match h.del(&dev, &v).await {
            Ok(_) | Err(crate::net::vip::VipError::UnknownInterface(_)) => {}
            Err(e) => tracing::error!("static_ipaddress {v} dev {dev}: {e}"),
        }
    }
}

/// Removes everything `s` has.
pub async fn remove(s: &Statics) {
    update(s, &Statics::default()).await
}
