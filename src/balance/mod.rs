//! Server selection (HAProxy's `balance`). A [`Selector`] is built once per backend from the
//! config; each pick reads live facts through [`ServerState`] and never stores health, so one
//! selector serves every thread and survives health changes untouched.

mod hash;
mod pick;

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    MapBased,
    Consistent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    Uri {
        len: Option<usize>,
        depth: Option<usize>,
        whole: bool,
    },
    UrlParam(String),
    Hdr(String),
    Random {
        draws: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    #[error(
        "unknown balance algorithm `{0}` (roundrobin, static-rr, leastconn, first, source, uri, url_param, hdr(name), random)"
    )]
    Unknown(String),
    #[error("`{algo}`: {what}")]
    BadArgument { algo: &'static str, what: String },
    #[error("unknown hash_type `{0}` (map-based or consistent)")]
    HashType(String),
}

impl Algorithm {
    /// HAProxy's `balance` syntax, e.g. `uri len 10 depth 2`, `hdr(User-Agent)`, `random(2)`.
    pub fn parse(s: &str) -> Result<Algorithm, BalanceError> {
        let mut words = s.split_whitespace();
        let head = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let no_args = |a: Algorithm, name: &'static str| {
            if rest.is_empty() {
                Ok(a)
            } else {
                Err(BalanceError::BadArgument {
                    algo: name,
                    what: format!("takes no argument, got `{}`", rest.join(" ")),
                })
            }
        };
        match head {
            "roundrobin" => no_args(Algorithm::RoundRobin, "roundrobin"),
            "static-rr" => no_args(Algorithm::StaticRr, "static-rr"),
            "leastconn" => no_args(Algorithm::LeastConn, "leastconn"),
            "first" => no_args(Algorithm::First, "first"),
            "source" => no_args(Algorithm::Source, "source"),
            "uri" => {
                let (mut len, mut depth, mut whole) = (None, None, false);
                let mut it = rest.iter();
                while let Some(w) = it.next() {
                    let mut num = |what: &str| -> Result<usize, BalanceError> {
                        it.next()
                            .and_then(|v| v.parse().ok())
                            .filter(|&n| n > 0)
                            .ok_or_else(|| BalanceError::BadArgument {
                                algo: "uri",
                                what: format!("`{what}` needs a positive number"),
                            })
                    };
                    match *w {
                        "len" => len = Some(num("len")?),
                        "depth" => depth = Some(num("depth")?),
                        "whole" => whole = true,
                        other => {
                            return Err(BalanceError::BadArgument {
                                algo: "uri",
                                what: format!("unknown option `{other}`"),
                            });
                        }
                    }
                }
                Ok(Algorithm::Uri { len, depth, whole })
            }
            "url_param" => match rest.as_slice() {
                [name] => Ok(Algorithm::UrlParam(name.to_string())),
                _ => Err(BalanceError::BadArgument {
                    algo: "url_param",
                    what: "needs exactly one parameter name".into(),
                }),
            },
            h if h.starts_with("hdr(") => {
                let name = h
                    .strip_prefix("hdr(")
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or("");
                if name.is_empty()
                    || http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || !rest.is_empty()
                {
                    return Err(BalanceError::BadArgument {
                        algo: "hdr",
                        what: format!("needs a header name: hdr(Name), got `{s}`"),
                    });
                }
                Ok(Algorithm::Hdr(name.to_ascii_lowercase()))
            }
            h if h == "random" || h.starts_with("random(") => {
                let draws = match h.strip_prefix("random(").and_then(|x| x.strip_suffix(')')) {
                    None if h == "random" => 2,
                    Some(n) => n.parse().ok().filter(|&d| d >= 1).ok_or_else(|| {
                        BalanceError::BadArgument {
                            algo: "random",
                            what: format!("draws must be a positive number, got `{n}`"),
                        }
                    })?,
                    None => return Err(BalanceError::Unknown(s.to_string())),
                };
                if !rest.is_empty() {
                    return Err(BalanceError::BadArgument {
                        algo: "random",
                        what: "takes no further argument".into(),
                    });
                }
                Ok(Algorithm::Random { draws })
            }
            _ => Err(BalanceError::Unknown(s.to_string())),
        }
    }

    fn hashes(&self) -> bool {
        matches!(
            self,
            Algorithm::Source | Algorithm::Uri { .. } | Algorithm::UrlParam(_) | Algorithm::Hdr(_)
        )
    }
}

impl HashType {
    pub fn parse(s: &str) -> Result<HashType, BalanceError> {
        match s.split_whitespace().next().unwrap_or("") {
            "map-based" => Ok(HashType::MapBased),
            "consistent" => Ok(HashType::Consistent),
            _ => Err(BalanceError::HashType(s.to_string())),
        }
    }
}

/// What the config says about a server (index = position in the backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    pub weight: u32,
    pub backup: bool,
    pub maxconn: Option<u32>,
}

/// Live facts the caller owns: health and admin state, live connections, runtime weight.
pub trait ServerState {
    fn usable(&self, idx: usize) -> bool;
    fn conns(&self, idx: usize) -> u32;
    fn weight(&self, idx: usize) -> u32;
}

/// The parts of a request the hashing algorithms read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub src: Option<IpAddr>,
    pub path_and_query: Option<&'a str>,
    pub headers: Option<&'a http::HeaderMap>,
}

#[derive(Debug)]
pub struct Selector {
    algo: Algorithm,
    hash_type: HashType,
    specs: Vec<ServerSpec>,
    normal: Vec<usize>,
    backup: Vec<usize>,
    allbackups: bool,
    /// Smooth weighted round robin's current weights, by server index.
    smooth: Mutex<Vec<i64>>,
    counter: AtomicU64,
    rng: AtomicU64,
    rings: [hash::Ring; 2],
}

/// Candidate filter for one pick.
struct View<'a> {
    state: &'a dyn ServerState,
    avoid: Option<usize>,
}

impl View<'_> {
    fn eligible(&self, i: usize) -> bool {
        Some(i) != self.avoid && self.state.usable(i) && self.state.weight(i) > 0
    }
}

impl Selector {
    pub fn new(
        algo: &Algorithm,
        hash_type: HashType,
        servers: &[ServerSpec],
        allbackups: bool,
    ) -> Selector {
        let normal: Vec<usize> = (0..servers.len()).filter(|&i| !servers[i].backup).collect();
        let backup: Vec<usize> = (0..servers.len()).filter(|&i| servers[i].backup).collect();
        let consistent = hash_type == HashType::Consistent && algo.hashes();
        let ring = |group: &[usize]| {
            if consistent {
                hash::Ring::build(group, servers)
            } else {
                hash::Ring::default()
            }
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Selector {
            algo: algo.clone(),
            hash_type,
            specs: servers.to_vec(),
            rings: [ring(&normal), ring(&backup)],
            normal,
            backup,
            allbackups,
            smooth: Mutex::new(vec![0; servers.len()]),
            counter: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
        }
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algo
    }

    /// Index of the chosen server, or None when no server is usable.
    pub fn pick(&self, req: &Request<'_>, state: &dyn ServerState) -> Option<usize> {
        self.choose(req, &View { state, avoid: None })
    }

    /// Like `pick`, but never returns `avoid` unless it is the only usable server (redispatch).
    pub fn pick_avoiding(
        &self,
        req: &Request<'_>,
        state: &dyn ServerState,
        avoid: usize,
    ) -> Option<usize> {
        self.choose(
            req,
            &View {
                state,
                avoid: Some(avoid),
            },
        )
        .or_else(|| self.pick(req, state))
    }

    fn choose(&self, req: &Request<'_>, v: &View<'_>) -> Option<usize> {
        let (group, ring) = if self.normal.iter().any(|&i| v.eligible(i)) {
            (&self.normal, &self.rings[0])
        } else if self.backup.iter().any(|&i| v.eligible(i)) {
            if !self.allbackups {
                return self.backup.iter().copied().find(|&i| v.eligible(i));
            }
            (&self.backup, &self.rings[1])
        } else {
            return None;
        };
        match &self.algo {
            Algorithm::RoundRobin => self.smooth_rr(group, v),
            Algorithm::StaticRr => self.static_rr(group, v),
            Algorithm::LeastConn => self.least_conn(group, v),
            Algorithm::First => self.first(group, v),
            Algorithm::Random { draws } => self.random(group, v, *draws),
            algo => match hash::key_hash(algo, req) {
                Some(h) if self.hash_type == HashType::Consistent => {
                    ring.lookup(h, |i| v.eligible(i))
                }
                Some(h) => hash::map_based(h, group, v),
                // HAProxy falls back to round robin when the key is missing.
                None => self.smooth_rr(group, v),
            },
        }
    }
}

#[cfg(test)]
mod tests;
