//! Hash keys and the two hash mappings: map-based (modulo of the usable weight, cheap but moves
//! most keys when the server set changes) and consistent (a ring; a change moves about 1/N keys).

use super::{Algorithm, Request, ServerSpec, View};

/// Points on the ring per unit of weight: enough for an even spread with few servers.
const POINTS_PER_WEIGHT: u32 = 64;

/// 64-bit FNV-1a followed by a SplitMix finaliser, so close keys land far apart.
pub(super) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The request's key for the hashing algorithms; None when the request has no such key.
pub(super) fn key_hash(algo: &Algorithm, req: &Request<'_>) -> Option<u64> {
    match algo {
        Algorithm::Source => req.src.map(|ip| match ip {
            std::net::IpAddr::V4(v4) => hash_bytes(&v4.octets()),
            std::net::IpAddr::V6(v6) => hash_bytes(&v6.octets()),
        }),
        Algorithm::Uri { len, depth, whole } => {
            let pq = req.path_and_query?;
            Some(hash_bytes(uri_key(pq, *len, *depth, *whole).as_bytes()))
        }
        Algorithm::UrlParam(name) => {
            let q = req.path_and_query?.split_once('?')?.1;
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k == name)
                .filter(|(_, v)| !v.is_empty())
                .map(|(_, v)| hash_bytes(v.as_bytes()))
        }
        Algorithm::Hdr(name) => {
            let v = req.headers?.get(name.as_str())?;
            (!v.is_empty()).then(|| hash_bytes(v.as_bytes()))
        }
        _ => None,
    }
}

/// The part of the URI `balance uri` hashes: without the query unless `whole`, cut after `depth`
/// directories, then to `len` characters.
pub(super) fn uri_key(pq: &str, len: Option<usize>, depth: Option<usize>, whole: bool) -> &str {
    let mut s = if whole {
        pq
    } else {
        pq.split('?').next().unwrap_or(pq)
    };
    if let Some(d) = depth {
        let mut seen = 0;
        for (i, c) in s.char_indices() {
            if c == '/' {
                seen += 1;
                if seen > d {
                    s = &s[..i];
                    break;
                }
            }
        }
    }
    if let Some(l) = len
        && let Some((i, _)) = s.char_indices().nth(l)
    {
        s = &s[..i];
    }
    s
}

/// `hash mod total usable weight`, walked over the group's cumulative weights.
pub(super) fn map_based(h: u64, group: &[usize], v: &View<'_>) -> Option<usize> {
    let total: u64 = group
        .iter()
        .filter(|&&i| v.eligible(i))
        .map(|&i| v.state.weight(i) as u64)
        .sum();
    if total == 0 {
        return None;
    }
    let mut at = h % total;
    for &i in group.iter().filter(|&&i| v.eligible(i)) {
        let w = v.state.weight(i) as u64;
        if at < w {
            return Some(i);
        }
        at -= w;
    }
    None
}

/// A consistent-hash ring of (point, server) sorted by point.
#[derive(Debug, Default)]
pub(super) struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub(super) fn build(group: &[usize], specs: &[ServerSpec]) -> Ring {
        let mut points = Vec::new();
        for &i in group {
            let n = specs[i].weight.max(1) * POINTS_PER_WEIGHT;
            for p in 0..n {
                points.push((mix(((i as u64) << 32) ^ p as u64 ^ 0x5bd1_e995), i));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// First eligible server clockwise from `h`.
    pub(super) fn lookup(&self, h: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|&(p, _)| p < h);
        (0..self.points.len())
            .map(|k| self.points[(start + k) % self.points.len()].1)
            .find(|&i| eligible(i))
    }
}
