//! Addresses managed without a daemon (`lbha vip --direct`, or no daemon running): the seed's
//! `ifconfig eth0:$i` loop done through rtnetlink, with `promote_secondaries` on the interface and
//! `ip_nonlocal_bind` set first, so deleting one address never takes the others of its subnet
//! with it. All or nothing: every address is checked before any is touched, and a failed
//! addition undoes what it added.

use std::net::IpAddr;

use super::link;
use super::sysctl::{self, SysctlError};
use super::vip::{Vip, VipError, VipHandle};

#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("{0}")]
    Vip(#[from] VipError),
    #[error("{0}")]
    Sysctl(#[from] SysctlError),
    #[error("{addr} is already on interface {ifname}{}", more_text(*.more))]
    Elsewhere { addr: IpAddr, ifname: String, more: usize },
    #[error("{addr} is already on {ifname} as /{have}, not /{want}; delete it first{}", more_text(*.more))]
    OtherPrefix { addr: IpAddr, ifname: String, have: u8, want: u8, more: usize },
    #[error("{addr}{} is not on {ifname}{}", .prefix.map(|p| format!("/{p}")).unwrap_or_default(), more_text(*.more))]
    NotPresent { addr: IpAddr, prefix: Option<u8>, ifname: String, more: usize },
}

fn more_text(more: usize) -> String {
    if more == 0 { String::new() } else { format!(" (and {more} more like it)") }
}

/// What an addition did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    pub added: Vec<Vip>,
    /// Already on the interface with that prefix length.
    pub present: Vec<Vip>,
}

/// Sets `promote_secondaries` on `ifname` and `ip_nonlocal_bind`, after checking the interface
/// exists (so a typo reports the interface, not a sysctl path).
async fn prepare(h: &VipHandle, ifname: &str) -> Result<(), DirectError> {
    h.index(ifname).await?;
    sysctl::set_promote_secondaries(ifname)?;
    sysctl::set_nonlocal_bind()?;
    Ok(())
}

/// Adds `vips` to `ifname`.
pub async fn add(h: &VipHandle, ifname: &str, vips: &[Vip]) -> Result<Added, DirectError> {
    prepare(h, ifname).await?;
    let here = h.list(ifname).await?;
    let links = tokio::task::spawn_blocking(link::all).await.unwrap_or_default();
    let mut out = Added::default();
    let mut elsewhere = Vec::new();
    let mut other_prefix = Vec::new();
    for v in vips {
        if let Some(l) = links.iter().find(|l| l.name != ifname && l.addrs.contains(&v.addr)) {
            elsewhere.push((v.addr, l.name.clone()));
        } else if let Some(x) = here.iter().find(|x| x.addr == v.addr) {
            if x.prefix == v.prefix {
                out.present.push(v.clone());
            } else {
                other_prefix.push((v.addr, x.prefix, v.prefix));
            }
        }
    }
    if let Some((addr, ifname)) = elsewhere.first().cloned() {
        return Err(DirectError::Elsewhere { addr, ifname, more: elsewhere.len() - 1 });
    }
    if let Some(&(addr, have, want)) = other_prefix.first() {
        return Err(DirectError::OtherPrefix { addr, ifname: ifname.into(), have, want, more: other_prefix.len() - 1 });
    }
    let todo: Vec<Vip> = vips.iter().filter(|v| !out.present.contains(v)).cloned().collect();
    let (done, err) = match h.add_many(ifname, &todo).await {
        Ok(done) => (done, None),
        Err((done, e)) => (done, Some(e)),
    };
    for (v, new) in todo.iter().zip(&done) {
        if *new { out.added.push(v.clone()) } else { out.present.push(v.clone()) }
    }
    if let Some(e) = err {
        // Newest first, so a subnet's primary goes last.
        let undo: Vec<Vip> = out.added.iter().rev().cloned().collect();
        if let Err(u) = h.del_many(ifname, &undo).await {
            tracing::warn!("undoing the addresses just added to {ifname}: {u}");
        }
        return Err(e.into());
    }
    Ok(out)
}

/// The kernel labels every IPv4 address with its interface's name unless told otherwise; only
/// a real alias label (`eth0:1`) is worth showing.
fn plain(ifname: &str, v: Vip) -> Vip {
    if v.label.as_deref() == Some(ifname) { Vip { label: None, ..v } } else { v }
}

/// Deletes each `(address, prefix)` from `ifname`; a missing prefix matches whatever the address
/// has. Every address must be there.
pub async fn del(h: &VipHandle, ifname: &str, wanted: &[(IpAddr, Option<u8>)]) -> Result<Vec<Vip>, DirectError> {
    prepare(h, ifname).await?;
    let here = h.list(ifname).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for &(addr, prefix) in wanted {
        match here.iter().find(|x| x.addr == addr && prefix.is_none_or(|p| p == x.prefix)) {
            Some(x) => found.push(x.clone()),
            None => missing.push((addr, prefix)),
        }
    }
    if let Some(&(addr, prefix)) = missing.first() {
        return Err(DirectError::NotPresent { addr, prefix, ifname: ifname.into(), more: missing.len() - 1 });
    }
    let gone = h.del_many(ifname, &found).await?;
    Ok(found.into_iter().zip(gone).filter(|(_, g)| *g).map(|(v, _)| plain(ifname, v)).collect())
}

/// Every address of `ifname`, or of every interface, with its interface.
pub async fn list(h: &VipHandle, ifname: Option<&str>) -> Result<Vec<(String, Vip)>, DirectError> {
    let names: Vec<String> = match ifname {
        Some(n) => vec![n.to_string()],
        None => tokio::task::spawn_blocking(link::all).await.unwrap_or_default().into_iter().map(|l| l.name).collect(),
    };
    let mut out = Vec::new();
    for n in names {
        match h.list(&n).await {
            Ok(vips) => out.extend(vips.into_iter().map(|v| (n.clone(), plain(&n, v)))),
            // An interface that went away between the two reads.
            Err(VipError::UnknownInterface(_)) if ifname.is_none() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
