//! Where a failover's time goes, read from a capture of the switch's bridge (`Bed::capture`,
//! tcpdump text with epoch timestamps and link-level headers) and a daemon's log: the failure
//! seen, the old master's priority-0 advert, the new master's first advert and gratuitous ARP,
//! and the first connection the new master answers. Printed by the fate tests; nothing asserted
//! on the times.

/// Milliseconds after the failure was triggered (`t0`, epoch seconds) of each step, when seen.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timeline {
    /// The old master's log line saying the failure began, when it logs one (a stall).
    pub began: Option<f64>,
    /// The old master's log line naming the failure (detection).
    pub detected: Option<f64>,
    /// The old master's first priority-0 advert on the wire.
    pub resigned: Option<f64>,
    /// The old master's last advert above priority 0 (a stalled runtime may stop them early; a
    /// resigning v3 lbha master's is its short-interval advert, just before priority 0).
    pub old_advert: Option<f64>,
    /// The new master's first advert.
    pub new_advert: Option<f64>,
    /// The new master's first gratuitous ARP for the VIP.
    pub garp: Option<f64>,
    /// The first client SYN sent to the new master's MAC.
    pub first_syn_new: Option<f64>,
    /// The first SYN-ACK from the VIP through the new master.
    pub served_new: Option<f64>,
    /// The last SYN-ACK from the VIP through the old master.
    pub served_old: Option<f64>,
    /// Client SYNs sent to the old master's MAC after its priority-0 advert (lost: it no longer
    /// holds the VIP, or will not answer).
    pub syns_lost: usize,
}

/// One frame of tcpdump's `-n -e -tt` text: time, source MAC, destination MAC, the rest.
fn frame(line: &str) -> Option<(f64, &str, &str, &str)> {
    let (t, rest) = line.split_once(' ')?;
    let t: f64 = t.parse().ok()?;
    let (src, rest) = rest.split_once(" > ")?;
    let (dst, rest) = rest.split_once(", ")?;
    Some((t, src, dst, rest))
}

/// Reads a capture. `old` / `new` / `client`: the MACs; `vip`: the address; `t0`: epoch seconds.
pub fn read(capture: &str, t0: f64, old: &str, new: &str, client: &str, vip: &str) -> Timeline {
    let mut tl = Timeline::default();
    let ms = |t: f64| (t - t0) * 1000.0;
    let vip_port = format!("{vip}.80 > ");
    let to_vip = format!("> {vip}.80: ");
    for (t, src, dst, rest) in capture.lines().filter_map(frame) {
        if t < t0 {
            continue;
        }
        let vrrp = rest.contains(": VRRPv");
        let prio0 = vrrp && rest.contains(" prio 0,");
        if src == old && prio0 && tl.resigned.is_none() {
            tl.resigned = Some(ms(t));
        } else if src == old && vrrp && !prio0 && tl.resigned.is_none() {
            tl.old_advert = Some(ms(t));
        } else if src == new && vrrp && !prio0 && tl.new_advert.is_none() {
            tl.new_advert = Some(ms(t));
        } else if src == new && rest.contains("ethertype ARP") && rest.contains(vip) && tl.garp.is_none() {
            tl.garp = Some(ms(t));
        } else if rest.contains(&vip_port) && rest.contains("Flags [S.]") {
            if src == new && tl.served_new.is_none() {
                tl.served_new = Some(ms(t));
            } else if src == old && tl.served_new.is_none() {
                tl.served_old = Some(ms(t));
            }
        } else if src == client && rest.contains(&to_vip) && rest.contains("Flags [S]") {
            if dst == new && tl.first_syn_new.is_none() {
                tl.first_syn_new = Some(ms(t));
            } else if dst == old && tl.resigned.is_some() && tl.served_new.is_none() {
                tl.syns_lost += 1;
            }
        }
    }
    tl
}

/// Seconds since midnight UTC of a log line's RFC 3339 timestamp (`2026-12-06T16:10:00.123456Z`).
fn log_secs_of_day(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let (_, time) = ts.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Milliseconds after `t0` (epoch seconds) of the first log line after it containing `marker`.
pub fn logged(log: &str, t0: f64, marker: &str) -> Option<f64> {
    let day0 = t0.rem_euclid(86400.0);
    log.lines().filter(|l| l.contains(marker)).filter_map(log_secs_of_day).find_map(|s| {
        // Wrapped around midnight: the line is of the next day.
        let d = if s + 43200.0 < day0 { s + 86400.0 - day0 } else { s - day0 };
        (d >= 0.0).then_some(d * 1000.0)
    })
}

impl std::fmt::Display for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        let gap = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.1}", b - a),
            _ => "-".to_string(),
        };
        write!(
            f,
            "began {} | old master's last advert {} | detected {} | priority-0 advert {} (+{}) | new master's advert {} (+{}) | GARP {} (+{}) | \
             first SYN to it {} | first answer through it {} (+{} after GARP) | last answer through the old {} | \
             SYNs lost to the old {} (ms after the failure)",
            at(self.began),
            at(self.old_advert),
            at(self.detected),
            at(self.resigned),
            gap(self.detected, self.resigned),
            at(self.new_advert),
            gap(self.resigned, self.new_advert),
            at(self.garp),
            gap(self.new_advert, self.garp),
            at(self.first_syn_new),
            at(self.served_new),
            gap(self.garp, self.served_new),
            at(self.served_old),
            self.syns_lost,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "02:00:00:00:00:0b";
    const NEW: &str = "02:00:00:00:00:0c";
    const CLIENT: &str = "02:00:00:00:00:32";

    #[test]
    fn a_capture_gives_each_step() {
        let cap = "\
100.000000 02:00:00:00:00:0b > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 150, intvl 10cs, length 12
100.005000 02:00:00:00:00:32 > 02:00:00:00:00:0b, ethertype IPv4 (0x0800), length 74: 192.0.2.50.4000 > 192.0.2.100.80: Flags [S], seq 1, length 0
100.005100 02:00:00:00:00:0b > 02:00:00:00:00:32, ethertype IPv4 (0x0800), length 74: 192.0.2.100.80 > 192.0.2.50.4000: Flags [S.], seq 2, ack 2, length 0
100.012000 02:00:00:00:00:0b > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 0, intvl 10cs, length 12
100.020000 02:00:00:00:00:32 > 02:00:00:00:00:0b, ethertype IPv4 (0x0800), length 74: 192.0.2.50.4001 > 192.0.2.100.80: Flags [S], seq 1, length 0
100.073000 02:00:00:00:00:0c > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.12 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 100, intvl 10cs, length 12
100.074000 02:00:00:00:00:0c > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.100 tell 192.0.2.100, length 28
100.080000 02:00:00:00:00:32 > 02:00:00:00:00:0c, ethertype IPv4 (0x0800), length 74: 192.0.2.50.4002 > 192.0.2.100.80: Flags [S], seq 1, length 0
100.080200 02:00:00:00:00:0c > 02:00:00:00:00:32, ethertype IPv4 (0x0800), length 74: 192.0.2.100.80 > 192.0.2.50.4002: Flags [S.], seq 2, ack 2, length 0
";
        let tl = read(cap, 100.002, OLD, NEW, CLIENT, "192.0.2.100");
        let near = |x: Option<f64>, want: f64| assert!(x.is_some_and(|v| (v - want).abs() < 0.01), "{x:?} != {want}");
        near(tl.resigned, 10.0);
        assert_eq!(tl.old_advert, None, "its last advert came before the failure");
        near(tl.new_advert, 71.0);
        near(tl.garp, 72.0);
        near(tl.first_syn_new, 78.0);
        near(tl.served_new, 78.2);
        near(tl.served_old, 3.1);
        assert_eq!(tl.syns_lost, 1);
        assert!(tl.to_string().contains("priority-0 advert 10.0"), "{tl}");
    }

    #[test]
    fn log_lines_are_placed_after_the_failure() {
        let log = "2026-12-06T16:10:00.100000Z  INFO lbha: started\n\
                   2026-12-06T16:10:00.250000Z ERROR lbha::fate: proxy stalled: x\n";
        // 16:10:00 UTC on some day.
        let t0 = 20_000.0 * 86400.0 + 16.0 * 3600.0 + 600.0 + 0.2;
        let at = logged(log, t0, "proxy stalled").expect("found");
        assert!((at - 50.0).abs() < 0.01, "{at}");
        assert_eq!(logged(log, t0, "started"), None, "before the failure");
    }
}
