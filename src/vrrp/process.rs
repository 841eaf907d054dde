//! `track_process`: how many processes of a name run, read from `/proc`, and keepalived's `delay`
//! (a change counts once it has lasted that long). [`matches`] and [`Debounce`] are pure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether a process whose kernel name is `comm` (at most 15 bytes) and whose command line starts
/// with `argv0` is a `wanted` one: `wanted` is a name (`haproxy`) or an executable path.
pub fn matches(comm: &str, argv0: &str, wanted: &str) -> bool {
    if wanted.contains('/') {
        return argv0 == wanted;
    }
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base == wanted || (comm == wanted) || (wanted.len() > 15 && comm == &wanted[..15] && base.starts_with(comm))
}

/// How many processes match each of `wanted`, from `/proc`.
pub fn count(wanted: &[String]) -> HashMap<String, u32> {
    let mut out: HashMap<String, u32> = wanted.iter().map(|w| (w.clone(), 0)).collect();
    if wanted.is_empty() {
        return out;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = String::from_utf8_lossy(cmdline.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
        for w in wanted {
            if matches(comm.trim_end_matches('\n'), &argv0, w)
                && let Some(n) = out.get_mut(w)
            {
                *n += 1;
            }
        }
    }
    out
}

/// A state that changes only once the new value has held for `delay`; the first value counts at
/// once.
#[derive(Debug, Clone, Default)]
pub struct Debounce {
    now: Option<bool>,
    pending: Option<(bool, Instant)>,
}

impl Debounce {
    /// Feeds an observation; returns the state to report.
    pub fn feed(&mut self, at: Instant, seen: bool, delay: Duration) -> bool {
        match self.now {
            None => self.now = Some(seen),
            Some(cur) if cur == seen => self.pending = None,
            Some(_) => match self.pending {
                Some((v, since)) if v == seen => {
                    if at.saturating_duration_since(since) >= delay {
                        self.now = Some(seen);
                        self.pending = None;
                    }
                }
                _ if delay.is_zero() => self.now = Some(seen),
                _ => self.pending = Some((seen, at)),
            },
        }
        self.now.unwrap_or(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_long_names_match() {
        assert!(matches("haproxy", "/usr/sbin/haproxy", "haproxy"));
        assert!(matches("haproxy", "/usr/sbin/haproxy", "/usr/sbin/haproxy"));
        assert!(!matches("haproxy", "/usr/sbin/haproxy", "/usr/bin/haproxy"));
        assert!(!matches("bash", "/bin/bash", "haproxy"));
        // The kernel keeps 15 bytes of the name.
        assert!(matches("a-very-long-pro", "./a-very-long-process-name", "a-very-long-process-name"));
        assert!(matches("worker", "nginx: worker process", "worker"), "renamed processes match by comm");
    }

    #[test]
    fn a_change_counts_after_the_delay() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let d = Duration::from_millis(500);
        let mut b = Debounce::default();
        assert!(b.feed(ms(0), true, d), "the first observation counts at once");
        assert!(b.feed(ms(100), false, d));
        assert!(b.feed(ms(400), false, d));
        assert!(b.feed(ms(500), true, d), "back before the delay: no change");
        assert!(b.feed(ms(600), false, d));
        assert!(!b.feed(ms(1100), false, d));
        assert!(b.feed(ms(1200), true, Duration::ZERO), "no delay: at once");
    }

    #[test]
    fn this_process_is_counted() {
        let me = std::fs::read_to_string("/proc/self/comm").expect("comm").trim().to_string();
        let n = count(std::slice::from_ref(&me));
        assert!(n[&me] >= 1, "{me}: {n:?}");
        assert_eq!(count(&["no-such-process-lbha".into()])["no-such-process-lbha"], 0);
    }
}
