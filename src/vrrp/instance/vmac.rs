//! An instance's VMAC (`use_vmac`): created on its interface when the instance starts (or when the
//! interface appears), kept across `lbha upgrade`, removed on a clean stop.

use super::Runner;
use crate::net::vip::Vip;
use crate::net::vmac;

impl Runner {
    pub(super) async fn ensure_vmac(&self) {
        let Some(v) = &self.cfg.vmac else { return };
        let mac = vmac::mac(self.cfg.vrid, self.cfg.is_ipv6());
        match vmac::ensure(self.vip.netlink(), &self.cfg.interface, &v.name, mac, self.cfg.is_ipv6()).await {
            Ok(()) => tracing::info!(
                instance = %self.cfg.name,
                "VMAC {} ({}) on {}",
                v.name,
                vmac::mac_text(mac),
                self.cfg.interface
            ),
            Err(e) => tracing::warn!(instance = %self.cfg.name, "VMAC {}: {e}", v.name),
        }
        self.vmac_link_local().await;
    }

    /// IPv6: the VMAC carries its parent's link-local address and no other (`vmac::link_local_plan`);
    /// run again while tracking, as the parent's may finish DAD after the start.
    pub(super) async fn vmac_link_local(&self) {
        let Some(v) = self.cfg.vmac.as_ref().filter(|_| self.cfg.is_ipv6()) else { return };
        let parent = crate::net::link::lookup(&self.cfg.interface).and_then(|l| l.link_local_v6());
        let Ok(on) = self.vip.list(&v.name).await else { return };
        let on: Vec<(std::net::Ipv6Addr, u8)> = on
            .iter()
            .filter_map(|x| match x.addr {
                std::net::IpAddr::V6(a) => Some((a, x.prefix)),
                _ => None,
            })
            .collect();
        let (del, add) = vmac::link_local_plan(parent, &on);
        for (a, prefix) in del {
            let _ = self.vip.del(&v.name, &Vip { addr: a.into(), prefix, label: None }).await;
        }
        if let Some(a) = add {
            match self.vip.add(&v.name, &Vip { addr: a.into(), prefix: 64, label: None }).await {
                Ok(_) => tracing::info!(instance = %self.cfg.name, "VMAC {} has link-local address {a}", v.name),
                Err(e) => tracing::warn!(instance = %self.cfg.name, "VMAC {}: {e}", v.name),
            }
        }
    }

    pub(super) async fn remove_vmac(&self) {
        let Some(v) = &self.cfg.vmac else { return };
        if let Err(e) = vmac::remove(self.vip.netlink(), &self.cfg.interface, &v.name).await {
            tracing::warn!(instance = %self.cfg.name, "{e}");
        }
    }
}
