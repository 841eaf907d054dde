//! `net::vip` against a real kernel, from a thread moved into a namespace the test created.

use crate::bed::{self, Bed};
use lbha::net::vip::{Vip, VipError, VipHandle};

fn vip(s: &str, prefix: u8, label: Option<&str>) -> Vip {
    Vip { addr: s.parse().unwrap_or_else(|e| panic!("{s}: {e}")), prefix, label: label.map(str::to_string) }
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn vip_add_del_list_is_exact_and_idempotent() {
    if !bed::root_or_skip("vip_add_del_list_is_exact_and_idempotent") {
        return;
    }
    let bed = Bed::new("vip", &[("n", 11)]);
    let node = bed.node("n");
    let ns = node.ns.clone();
    let res = std::thread::spawn(move || -> Result<(), String> {
        bed::enter_ns(&ns)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let h = VipHandle::new().map_err(|e| e.to_string())?;
            let host = vip("192.0.2.11", 32, None);
            let v = vip("192.0.2.100", 32, Some("eth0:vip"));
            assert!(h.add("eth0", &v).await.map_err(|e| e.to_string())?, "added");
            assert!(!h.add("eth0", &v).await.map_err(|e| e.to_string())?, "second add is a no-op");
            let list = h.list("eth0").await.map_err(|e| e.to_string())?;
            assert!(list.contains(&v), "{list:?}");
            // Same address, other prefix: deleting it must not remove the node's 192.0.2.11/24.
            assert!(!h.del("eth0", &host).await.map_err(|e| e.to_string())?);
            let list = h.list("eth0").await.map_err(|e| e.to_string())?;
            assert!(list.iter().any(|x| x.addr == host.addr && x.prefix == 24), "{list:?}");
            assert!(h.del("eth0", &v).await.map_err(|e| e.to_string())?);
            assert!(!h.del("eth0", &v).await.map_err(|e| e.to_string())?, "second del is a no-op");
            let v6 = vip("2001:db8::100", 128, None);
            assert!(h.add("eth0", &v6).await.map_err(|e| e.to_string())?);
            assert!(h.list("eth0").await.map_err(|e| e.to_string())?.contains(&v6));
            assert!(h.del("eth0", &v6).await.map_err(|e| e.to_string())?);
            match h.add("nosuch0", &host).await {
                Err(VipError::UnknownInterface(n)) => assert_eq!(n, "nosuch0"),
                other => panic!("expected UnknownInterface, got {other:?}"),
            }
            match h.add("eth0", &vip("192.0.2.7", 32, Some("eth1:x"))).await {
                Err(VipError::Invalid { .. }) => {}
                other => panic!("expected Invalid, got {other:?}"),
            }
            Ok::<(), String>(())
        })
    })
    .join();
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("netlink thread panicked"),
    }
    // The other addresses of the node are intact, seen from outside.
    assert!(node.has_addr("192.0.2.11"));
    assert!(!node.has_addr("192.0.2.100"));
}
