//! An instance's VMAC (`use_vmac`): created on its interface when the instance starts (or when the
//! interface appears), kept across `lbha upgrade`, removed on a clean stop.

use super::Runner;
use crate::net::vmac;

impl Runner {
    pub(super) async fn ensure_vmac(&self) {
        let Some(v) = &self.cfg.vmac else { return };
        let mac = vmac::mac(self.cfg.vrid, self.cfg.is_ipv6());
        match vmac::ensure(self.vip.netlink(), &self.cfg.interface, &v.name, mac).await {
            Ok(()) => tracing::info!(
                instance = %self.cfg.name,
                "VMAC {} ({}) on {}",
                v.name,
                vmac::mac_text(mac),
                self.cfg.interface
            ),
            Err(e) => tracing::warn!(instance = %self.cfg.name, "VMAC {}: {e}", v.name),
        }
    }

    pub(super) async fn remove_vmac(&self) {
        let Some(v) = &self.cfg.vmac else { return };
        if let Err(e) = vmac::remove(self.vip.netlink(), &self.cfg.interface, &v.name).await {
            tracing::warn!(instance = %self.cfg.name, "{e}");
        }
    }
}
