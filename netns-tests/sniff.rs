//! What a node hears of ARP and VRRP: a packet socket in its namespace records every ARP frame
//! and IPv4 VRRP advert, in the order they arrive, so a test can check who claimed an address
//! after whom (no tcpdump needed, and no timing: only the order).

use std::io::Read;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bed::{Node, enter_ns};

/// One frame heard; MACs written as `Node::mac` (`02:00:00:00:00:0b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// An ARP request or reply (a gratuitous one too) whose sender is `sender` at `sender_mac`.
    Arp { sender_mac: String, sender: Ipv4Addr },
    /// A VRRP advert (IPv4) from `src_mac`, with its priority.
    Advert { src_mac: String, priority: u8 },
}

fn mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// An Ethernet frame as [`Heard`], when it is ARP (IPv4 over Ethernet) or a VRRP advert.
pub fn parse(f: &[u8]) -> Option<Heard> {
    match f.get(12..14)? {
        [0x08, 0x06] => {
            let arp = f.get(14..42)?;
            Some(Heard::Arp { sender_mac: mac(&arp[8..14]), sender: ipv4(&arp[14..18]) })
        }
        [0x08, 0x00] if f.get(23) == Some(&112) => {
            let ihl = usize::from(f.get(14)? & 0x0f) * 4;
            Some(Heard::Advert { src_mac: mac(f.get(6..12)?), priority: *f.get(14 + ihl + 2)? })
        }
        _ => None,
    }
}

/// The ARP frames that claimed `addr` for `old` (as their sender) once `new` advertised as
/// master after `old`'s priority-0 advert; `None` when those adverts were not heard. Between the
/// two the old node may still hold the address (it removes it after its advert) and answer ARP
/// for it; the new one takes over only once it is gone (`[cluster]` hand-off).
pub fn claims_after_takeover(heard: &[Heard], old: &str, new: &str, addr: Ipv4Addr) -> Option<Vec<Heard>> {
    let resigned = heard.iter().position(|h| matches!(h, Heard::Advert { src_mac, priority: 0 } if src_mac == old))?;
    let took_over = resigned
        + heard[resigned..]
            .iter()
            .position(|h| matches!(h, Heard::Advert { src_mac, priority: 1.. } if src_mac == new))?;
    let claims = heard[took_over..]
        .iter()
        .filter(|h| matches!(h, Heard::Arp { sender_mac, sender } if sender_mac == old && *sender == addr));
    Some(claims.cloned().collect())
}

/// Records what `node` hears until stopped (bounded: two minutes).
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    heard: Arc<Mutex<Vec<Heard>>>,
    handle: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Sniffer {
    /// Starts listening; returns once the socket is open.
    pub fn start(node: &Node) -> Sniffer {
        let (stop, heard) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (flag, out, ns) = (stop.clone(), heard.clone(), node.ns.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            use socket2::{Domain, Protocol, Socket, Type};
            enter_ns(&ns)?;
            // ETH_P_ALL, in network byte order as packet(7) wants it.
            let all = Protocol::from(i32::from(0x0003u16.to_be()));
            let s = Socket::new(Domain::PACKET, Type::RAW, Some(all)).map_err(|e| format!("packet socket: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
            let _ = ready_tx.send(());
            let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(s));
            let t0 = std::time::Instant::now();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
                let Ok(n) = f.read(&mut buf) else { continue };
                if let Some(h) = parse(&buf[..n]) {
                    out.lock().unwrap_or_else(|e| e.into_inner()).push(h);
                }
            }
            Ok(())
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        Sniffer { stop, heard, handle: Some(handle) }
    }

    /// Stops and returns what was heard, in order.
    pub fn finish(mut self) -> Vec<Heard> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("sniffer: {e}"),
                Err(_) => panic!("sniffer thread panicked"),
            }
        }
        std::mem::take(&mut *self.heard.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "02:00:00:00:00:0b";
    const NEW: &str = "02:00:00:00:00:0c";

    /// A gratuitous ARP request from `m` (last MAC octet) for 192.0.2.100.
    fn garp(m: u8) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, m, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, m, 192, 0, 2, 100]);
        f.extend([0xff; 6]);
        f.extend([192, 0, 2, 100]);
        f
    }

    /// A VRRPv3 advert from `m` with `prio` (IP header of 20 bytes).
    fn advert(m: u8, prio: u8) -> Vec<u8> {
        let mut f = vec![1, 0, 0x5e, 0, 0, 0x12, 2, 0, 0, 0, 0, m, 0x08, 0x00];
        f.extend([0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, m, 224, 0, 0, 18]);
        f.extend([0x31, 51, prio, 1, 0, 10, 0, 0, 192, 0, 2, 100]);
        f
    }

    #[test]
    fn frames_are_read_as_arp_and_adverts() {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let want = Heard::Arp { sender_mac: NEW.into(), sender: vip };
        assert_eq!(parse(&garp(0x0c)), Some(want));
        assert_eq!(parse(&advert(0x0b, 150)), Some(Heard::Advert { src_mac: OLD.into(), priority: 150 }));
        let mut tcp = advert(0x0b, 150);
        tcp[23] = 6;
        assert_eq!(parse(&tcp), None, "not VRRP");
        assert_eq!(parse(&garp(0x0c)[..30]), None, "cut short");
    }

    #[test]
    fn only_claims_after_the_takeover_count() {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let heard = |frames: &[Vec<u8>]| frames.iter().filter_map(|f| parse(f)).collect::<Vec<_>>();
        // The old master's GARPs before the new one advertised, the new master's after: none.
        let fine = heard(&[garp(0x0b), advert(0x0b, 0), garp(0x0b), advert(0x0c, 100), garp(0x0c)]);
        assert_eq!(claims_after_takeover(&fine, OLD, NEW, vip), Some(vec![]));
        // The old master answering the new one's advert with GARPs (issue #19).
        let bad = heard(&[advert(0x0b, 0), advert(0x0c, 100), garp(0x0c), garp(0x0b), garp(0x0b)]);
        assert_eq!(claims_after_takeover(&bad, OLD, NEW, vip).map(|c| c.len()), Some(2));
        // The new node's adverts as a backup's do not count (it sends none): only after the
        // resignation.
        let early = heard(&[advert(0x0c, 100), advert(0x0b, 0), garp(0x0b)]);
        assert_eq!(claims_after_takeover(&early, OLD, NEW, vip), None, "no takeover heard");
        assert_eq!(claims_after_takeover(&fine[..1], OLD, NEW, vip), None, "no resignation heard");
    }
}
