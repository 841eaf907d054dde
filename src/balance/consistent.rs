//! `hash-type consistent`, as weighted rendezvous hashing (highest random weight).
//!
//! Every candidate server gets a score from the key and its own identity, `-ln(u) / weight` with
//! `u` uniform in (0, 1) derived from `hash(key, server)`, and the lowest score wins. A server's
//! chance of winning is exactly its share of the total weight, and a key's winner changes only
//! when the winner itself leaves or a newly added server beats it: removing one of N servers
//! moves only that server's ~1/N of the keys. Unlike a point ring it needs no memory, follows
//! runtime weights exactly, and costs one hash and one `ln` per candidate per pick.

use super::Candidates;
use super::hash::{hash_bytes, mix64};

/// Identity of the server at `index` when no name was given.
pub(super) fn index_id(index: usize) -> u64 {
    mix64((index as u64) ^ 0x6c62_6861_2d69_6478)
}

/// Identity of a server by name: stays put when other servers are added, removed or reordered.
pub(super) fn name_id(name: &str) -> u64 {
    hash_bytes(name.as_bytes())
}

/// `-ln(u)` for `u` in (0, 1) from the top 53 bits of `x`; smaller is better.
fn exponential(x: u64) -> f64 {
    let u = ((x >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    -u.ln()
}

pub(super) fn pick(key: u64, c: &Candidates<'_>, ids: &[u64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, w) in c.iter() {
        let id = ids.get(i).copied().unwrap_or_else(|| index_id(i));
        let score = exponential(mix64(key ^ id)) / f64::from(w);
        if best.is_none_or(|(_, b)| score < b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, backup, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector, ServerSpec};

    fn sel(specs: &[ServerSpec]) -> Selector {
        Selector::new(&Algorithm::Uri { len: None, depth: None, whole: true }, HashType::Consistent, specs, false)
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
        let names: Vec<String> = (0..10).map(|n| format!("web{n}")).collect();
        let specs = normal(&[1; 10]);
        let s = sel(&specs).with_server_ids(&names);
        let keys = keys();
        let before = assign(&s, &Fake::from_specs(&specs), &keys);
        let name_of = |a: &[Option<usize>], ids: &[String]| -> Vec<String> {
            a.iter().map(|i| ids[i.unwrap()].clone()).collect()
        };
        let before = name_of(&before, &names);

        // Remove web4 from the config: indexes shift, names do not.
        let fewer: Vec<String> = names.iter().filter(|n| *n != "web4").cloned().collect();
        let specs9 = normal(&[1; 9]);
        let s9 = sel(&specs9).with_server_ids(&fewer);
        let after = name_of(&assign(&s9, &Fake::from_specs(&specs9), &keys), &fewer);
        let m = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!((m as f64) <= 1.5 * KEYS as f64 / 10.0, "moved {m}");

        // Add web10: it takes about 1/11, nothing else moves.
        let mut more = names.clone();
        more.push("web10".into());
        let specs11 = normal(&[1; 11]);
        let s11 = sel(&specs11).with_server_ids(&more);
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
        near(share(&a, 0), 15_000.0, 0.03);
        // Raising a weight past its configured value works too.
        f.weight[1] = 9;
        let b = assign(&s, &f, &keys);
        near(share(&b, 1), 15_000.0, 0.03);
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
            near(a.iter().filter(|x| **x == Some(i)).count(), KEYS as f64 / 8.0, 0.06);
        }
    }

    #[test]
    fn avoid_gives_the_runner_up() {
        let specs = normal(&[1; 5]);
        let s = sel(&specs);
        let mut f = Fake::from_specs(&specs);
        for k in keys().iter().take(200) {
            let req = Request { path_and_query: Some(k), ..Request::default() };
            let first = s.pick(&req, &f).unwrap();
            let second = s.pick_avoiding(&req, &f, first).unwrap();
            assert_ne!(first, second);
            // The runner-up is where the key goes if the first server fails.
            f.up[first] = false;
            assert_eq!(s.pick(&req, &f), Some(second));
            f.up[first] = true;
        }
    }

    #[test]
    fn all_backups_hash_too() {
        let mut specs = normal(&[1]);
        specs.extend([backup(1), backup(1), backup(1)]);
        let s = Selector::new(&Algorithm::Source, HashType::Consistent, &specs, true);
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
