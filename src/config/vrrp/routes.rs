//! keepalived's `virtual_ipaddress_excluded`, `virtual_routes`, `virtual_rules` (per instance, in
//! place while MASTER) and `static_ipaddress`, `static_routes`, `static_rules` (top level, in place
//! while VRRP runs). Entries use keepalived's words (`net::route` parses routes and rules); each
//! bad entry is a located error, never dropped.

use super::{Cx, VipDef, VrrpSettings, parse_vip};
use crate::config::error::{FieldPath, Problem};
use crate::config::model::ConfigFile;
use crate::net::route::{RouteDef, RuleDef, parse_route, parse_rule};

fn addrs(texts: &[String], p: &FieldPath, need_dev: bool, taken: &mut Vec<VipDef>, cx: &mut Cx) -> Vec<VipDef> {
    let mut out = Vec::new();
    for (j, text) in texts.iter().enumerate() {
        let vip = match parse_vip(text) {
            Ok(v) => v,
            Err(e) => {
                cx.err_v(p.index(j), e, text);
                continue;
            }
        };
        if need_dev && vip.dev.is_none() {
            cx.err_v(p.index(j), "a static address needs `dev IF`", text);
            continue;
        }
        if vip.label.is_some() && vip.addr.is_ipv6() {
            cx.err_v(p.index(j), "labels exist only for IPv4 addresses", text);
            continue;
        }
        if taken.iter().any(|t| t.addr == vip.addr) {
            cx.err_v(p.index(j), "address listed twice", text);
            continue;
        }
        taken.push(vip.clone());
        out.push(vip);
    }
    out
}

fn list<T: PartialEq>(texts: &[String], p: &FieldPath, parse: fn(&str) -> Result<T, String>, cx: &mut Cx) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for (j, text) in texts.iter().enumerate() {
        match parse(text) {
            Ok(r) if out.contains(&r) => cx.err_v(p.index(j), "listed twice", text),
            Ok(r) => out.push(r),
            Err(e) => cx.err_v(p.index(j), e, text),
        }
    }
    out
}

/// Validates the static entries and each instance's excluded VIPs, routes and rules.
pub fn routes(vrrp: &mut VrrpSettings, file: &ConfigFile, problems: &mut Vec<Problem>) {
    let mut cx = Cx { problems };
    let root = FieldPath::root();
    let mut taken: Vec<VipDef> = Vec::new();
    vrrp.statics.addrs = addrs(&file.static_ipaddress, &root.key("static_ipaddress"), true, &mut taken, &mut cx);
    vrrp.statics.routes = list::<RouteDef>(&file.static_routes, &root.key("static_routes"), parse_route, &mut cx);
    vrrp.statics.rules = list::<RuleDef>(&file.static_rules, &root.key("static_rules"), parse_rule, &mut cx);
    for (i, d) in file.vrrp_instance.iter().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        let mut own: Vec<VipDef> = taken.clone();
        if let Some(inst) = vrrp.instances.iter().find(|x| x.name == d.name) {
            own.extend(inst.vips.iter().cloned());
        }
        let excluded =
            addrs(&d.virtual_ipaddress_excluded, &p.key("virtual_ipaddress_excluded"), false, &mut own, &mut cx);
        let routes = list::<RouteDef>(&d.virtual_routes, &p.key("virtual_routes"), parse_route, &mut cx);
        let rules = list::<RuleDef>(&d.virtual_rules, &p.key("virtual_rules"), parse_rule, &mut cx);
        if let Some(inst) = vrrp.instances.iter_mut().find(|x| x.name == d.name) {
            inst.vips_excluded = excluded;
            inst.routes = routes;
            inst.rules = rules;
        }
    }
}
