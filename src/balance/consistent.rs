//! `hash-type consistent`, as HAProxy's tree (`lb_chash.c`): each server owns 16 points per
//! unit of runtime weight, point `n` of the server with id `puid` at
//! `full_hash(puid * 4096 + n)`; a key goes to the point closest to its hash on the 32-bit
//! circle (the one before it on a tie). A server going down takes only its points away, so only
//! its keys move, and servers keep their points across reloads as long as their ids stay.

use crate::sample::hashes::full_hash;

/// HAProxy's `BE_WEIGHT_SCALE`: points per unit of weight.
const POINTS_PER_WEIGHT: u32 = 16;
/// HAProxy's `SRV_EWGHT_RANGE`: the key space of one server's points.
const POINTS_RANGE: u32 = 256 * POINTS_PER_WEIGHT;

/// Every point of the `(index, runtime weight)` candidates, sorted by position; points at the
/// same position stay in server order, as HAProxy's tree keeps duplicates in insertion order.
pub(super) fn build(cands: &[(usize, u32)], puids: &[u32]) -> Box<[(u32, usize)]> {
    let mut points = Vec::new();
    for &(i, w) in cands {
        let puid = puids.get(i).copied().unwrap_or(i as u32 + 1);
        let base = puid.wrapping_mul(POINTS_RANGE);
        points.extend((0..w.saturating_mul(POINTS_PER_WEIGHT)).map(|n| (full_hash(base.wrapping_add(n)), i)));
    }
    points.sort_by_key(|&(at, _)| at);
    points.into()
}

/// The server owning the point nearest `hash`; with `avoid`, the next point's server that is
/// not it, walking forward as HAProxy does.
pub(super) fn lookup(ring: &[(u32, usize)], hash: u32, avoid: Option<usize>) -> Option<usize> {
    if ring.is_empty() {
        return None;
    }
    let next = ring.partition_point(|&(at, _)| at < hash) % ring.len();
    let prev = next.checked_sub(1).unwrap_or(ring.len() - 1);
    let (dp, dn) = (hash.wrapping_sub(ring[prev].0), ring[next].0.wrapping_sub(hash));
    let start = if dp <= dn { prev } else { next };
    (0..ring.len()).map(|k| ring[(start + k) % ring.len()].1).find(|&i| Some(i) != avoid)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, backup, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector, ServerSpec};

    fn sel(specs: &[ServerSpec]) -> Selector {
        Selector::new(
            &Algorithm::Uri { len: None, depth: None, whole: true, path_only: false },
            HashType::consistent(),
            specs,
            false,
        )
    }

    const KEYS: usize = 20_000;

    fn keys() -> Vec<String> {
        (0..KEYS).map(|n| format!("/k/{n}")).collect()
    }

    fn assign(s: &Selector, f: &Fake, keys: &[String]) -> Vec<Option<usize>> {
        keys.iter().map(|k| s.pick(&Request { path_and_query: Some(k), ..Request::default() }, f)).collect()
    }

    fn moved(a: &[Option<usize>], b: &[Option<usize>]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let n = 10;
        let specs = normal(&vec![1; n]);
        let s = sel(&specs);
        let mut f = Fake::from_specs(&specs);
        let keys = keys();
        let before = assign(&s, &f, &keys);
        f.up[3] = false;
        let after = assign(&s, &f, &keys);
        let m = moved(&before, &after);
        assert!((m as f64) <= 1.5 * KEYS as f64 / n as f64, "moved {m}");
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                assert_eq!(*b, Some(3), "only server 3's keys may move");
            }
        }
        // Coming back restores the original mapping.
        f.up[3] = true;
        assert_eq!(assign(&s, &f, &keys), before);
    }

    #[test]
    fn config_change_with_named_servers_moves_few_keys() {
        // Server `webN` has id N + 1, kept by the config as servers come and go.
        let names: Vec<String> = (0..10).map(|n| format!("web{n}")).collect();
        let id = |names: &[String]| -> Vec<u32> { names.iter().map(|n| n[3..].parse::<u32>().unwrap() + 1).collect() };
        let specs = normal(&[1; 10]);
        let s = sel(&specs).with_server_puids(&id(&names));
        let keys = keys();
        let before = assign(&s, &Fake::from_specs(&specs), &keys);
        let name_of = |a: &[Option<usize>], ids: &[String]| -> Vec<String> {
            a.iter().map(|i| ids[i.unwrap()].clone()).collect()
        };
        let before = name_of(&before, &names);

        // Remove web4 from the config: indexes shift, names do not.
        let fewer: Vec<String> = names.iter().filter(|n| *n != "web4").cloned().collect();
        let specs9 = normal(&[1; 9]);
        let s9 = sel(&specs9).with_server_puids(&id(&fewer));
        let after = name_of(&assign(&s9, &Fake::from_specs(&specs9), &keys), &fewer);
        let m = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!((m as f64) <= 1.5 * KEYS as f64 / 10.0, "moved {m}");

        // Add web10: it takes about 1/11, nothing else moves.
        let mut more = names.clone();
        more.push("web10".into());
        let specs11 = normal(&[1; 11]);
        let s11 = sel(&specs11).with_server_puids(&id(&more));
        let after = name_of(&assign(&s11, &Fake::from_specs(&specs11), &keys), &more);
        for (b, a) in before.iter().zip(&after) {
            assert!(a == b || a == "web10");
        }
        let m = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!((m as f64) <= 1.5 * KEYS as f64 / 11.0, "moved {m}");
    }

    #[test]
    fn appending_a_server_by_index_moves_few_keys() {
        let keys = keys();
        let specs = normal(&[1; 8]);
        let before = assign(&sel(&specs), &Fake::from_specs(&specs), &keys);
        let specs9 = normal(&[1; 9]);
        let after = assign(&sel(&specs9), &Fake::from_specs(&specs9), &keys);
        for (b, a) in before.iter().zip(&after) {
            assert!(a == b || *a == Some(8));
        }
        assert!((moved(&before, &after) as f64) <= 1.5 * KEYS as f64 / 9.0);
    }

    #[test]
    fn shares_follow_weights_including_runtime_changes() {
        let specs = normal(&[3, 1]);
        let s = sel(&specs);
        let mut f = Fake::from_specs(&specs);
        let keys = keys();
        let share = |a: &[Option<usize>], i| a.iter().filter(|x| **x == Some(i)).count();
        let a = assign(&s, &f, &keys);
        // HAProxy's tree is not smooth: "it may sometimes be necessary to adjust a server's
        // weight or its ID to get a more balanced distribution".
        near(share(&a, 0), 15_000.0, 0.12);
        // Raising a weight past its configured value works too.
        f.weight[1] = 9;
        let b = assign(&s, &f, &keys);
        near(share(&b, 1), 15_000.0, 0.12);
        // Only keys moving to the heavier server change hands.
        for (x, y) in a.iter().zip(&b) {
            assert!(x == y || *y == Some(1));
        }
    }

    #[test]
    fn even_spread_over_many_servers() {
        let specs = normal(&[1; 8]);
        let s = sel(&specs);
        let a = assign(&s, &Fake::from_specs(&specs), &keys());
        for i in 0..8 {
            near(a.iter().filter(|x| **x == Some(i)).count(), KEYS as f64 / 8.0, 0.2);
        }
    }

    #[test]
    fn avoid_walks_to_the_next_point() {
        let specs = normal(&[1; 5]);
        let s = sel(&specs);
        let f = Fake::from_specs(&specs);
        for k in keys().iter().take(200) {
            let req = Request { path_and_query: Some(k), ..Request::default() };
            let first = s.pick(&req, &f).unwrap();
            let second = s.pick_avoiding(&req, &f, first).unwrap();
            assert_ne!(first, second);
        }
    }

    #[test]
    fn ring_points_and_lookup_follow_haproxy() {
        use super::{build, lookup};
        use crate::sample::hashes::full_hash;
        // Server ids 1 and 2, weight 1: 16 points each at full_hash(id * 4096 + n).
        let ring = build(&[(0, 1), (1, 1)], &[1, 2]);
        assert_eq!(ring.len(), 32);
        assert!(ring.contains(&(full_hash(4096), 0)) && ring.contains(&(full_hash(2 * 4096 + 15), 1)));
        assert!(ring.windows(2).all(|w| w[0].0 <= w[1].0));
        // Nearest point wins; on a tie the one before the hash.
        let ring = [(100u32, 0usize), (200, 1), (300, 2)];
        assert_eq!(lookup(&ring, 140, None), Some(0));
        assert_eq!(lookup(&ring, 150, None), Some(0));
        assert_eq!(lookup(&ring, 151, None), Some(1));
        assert_eq!(lookup(&ring, 200, None), Some(1));
        // Around the circle: past the last point, the first is 101 ahead.
        assert_eq!(lookup(&ring, u32::MAX, None), Some(0));
        assert_eq!(lookup(&ring, 10, None), Some(0));
        assert_eq!(lookup(&ring, 1 << 31, None), Some(2));
        // Avoiding walks forward.
        assert_eq!(lookup(&ring, 140, Some(0)), Some(1));
        assert_eq!(lookup(&ring, 310, Some(2)), Some(0));
        assert_eq!(lookup(&[(5, 3)], 9, Some(3)), None);
    }

    #[test]
    fn all_backups_hash_too() {
        let mut specs = normal(&[1]);
        specs.extend([backup(1), backup(1), backup(1)]);
        let s = Selector::new(&Algorithm::Source, HashType::consistent(), &specs, true);
        let mut f = Fake::from_specs(&specs);
        f.up[0] = false;
        let mut seen = [0usize; 4];
        for n in 0..300u32 {
            let req = Request { src: Some(std::net::Ipv4Addr::from(n).into()), ..Request::default() };
            seen[s.pick(&req, &f).unwrap()] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(seen[1..].iter().all(|&c| c > 50), "{seen:?}");
    }
}
