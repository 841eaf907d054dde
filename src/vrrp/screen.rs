//! Which decoded adverts for our VRID an instance listens to, beyond what `packet::decode` and the
//! auth / interval checks settle: keepalived's `check_unicast_src`, `skip_check_adv_addr` and, in
//! strict mode, the address-list check (`vrrp_check_packet`). Pure, so the rules are unit-tested.
//!
//! keepalived drops an advert whose address list differs from its own in every mode; lbha only
//! counts it (RFC 5798 §7.1 makes the check a MAY, and a peer with one VIP more or less is still the
//! master to follow) unless `strict_mode` asks for the RFC's letter.

use std::net::IpAddr;

use crate::config::vrrp::InstanceOpts;

/// What to do with one advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Feed it to the fsm; `mismatch` counts an address list that differs from ours.
    Accept { mismatch: bool },
    /// Ignore it, counted under this reason.
    Drop(&'static str),
}

/// Screens an advert from `src` whose address list matches ours or not (`list_matches`); `master`
/// is the master a backup follows now.
pub fn screen(
    opts: &InstanceOpts,
    peers: &[IpAddr],
    src: IpAddr,
    master: Option<IpAddr>,
    list_matches: bool,
) -> Verdict {
    // keepalived `skip_check_adv_addr`: adverts from the master already checked are not checked again.
    if opts.skip_check_adv_addr && master == Some(src) {
        return Verdict::Accept { mismatch: false };
    }
    if !list_matches && opts.strict {
        return Verdict::Drop("address_list_mismatch");
    }
    if opts.check_unicast_src && !peers.is_empty() && !peers.contains(&src) {
        return Verdict::Drop("unicast_src_not_peer");
    }
    Verdict::Accept { mismatch: !list_matches }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn defaults_accept_and_count_a_mismatch() {
        let o = InstanceOpts::default();
        assert_eq!(screen(&o, &[], ip("192.0.2.2"), None, true), Verdict::Accept { mismatch: false });
        assert_eq!(screen(&o, &[], ip("192.0.2.2"), None, false), Verdict::Accept { mismatch: true });
        // Without check_unicast_src any source is heard, peers or not.
        assert_eq!(screen(&o, &[ip("192.0.2.3")], ip("192.0.2.9"), None, true), Verdict::Accept { mismatch: false });
    }

    #[test]
    fn check_unicast_src_drops_strangers_only() {
        let o = InstanceOpts { check_unicast_src: true, ..InstanceOpts::default() };
        let peers = [ip("192.0.2.2"), ip("192.0.2.3")];
        assert_eq!(screen(&o, &peers, ip("192.0.2.3"), None, true), Verdict::Accept { mismatch: false });
        assert_eq!(screen(&o, &peers, ip("192.0.2.9"), None, true), Verdict::Drop("unicast_src_not_peer"));
        // keepalived: no peers (multicast), nothing to check against.
        assert_eq!(screen(&o, &[], ip("192.0.2.9"), None, true), Verdict::Accept { mismatch: false });
    }

    #[test]
    fn strict_mode_drops_a_different_address_list() {
        let o = InstanceOpts { strict: true, ..InstanceOpts::default() };
        assert_eq!(screen(&o, &[], ip("192.0.2.2"), None, false), Verdict::Drop("address_list_mismatch"));
        assert_eq!(screen(&o, &[], ip("192.0.2.2"), None, true), Verdict::Accept { mismatch: false });
    }

    #[test]
    fn skip_check_adv_addr_trusts_the_current_master_only() {
        let o = InstanceOpts { strict: true, skip_check_adv_addr: true, check_unicast_src: true, ..Default::default() };
        let peers = [ip("192.0.2.2")];
        let m = Some(ip("192.0.2.9"));
        // The master followed now (accepted before the peers changed, say) is not checked again.
        assert_eq!(screen(&o, &peers, ip("192.0.2.9"), m, false), Verdict::Accept { mismatch: false });
        // Anyone else is.
        assert_eq!(screen(&o, &peers, ip("192.0.2.2"), m, false), Verdict::Drop("address_list_mismatch"));
        assert_eq!(screen(&o, &peers, ip("192.0.2.7"), m, true), Verdict::Drop("unicast_src_not_peer"));
    }
}
