//! One ACL: a fetch (what to look at), a match method, and patterns (any may match).

use super::{Facts, Live, RoutingError};
use regex::{Regex, RegexBuilder};
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Clone)]
enum Fetch {
    Path,
    Url,
    Hdr(http::HeaderName),
    HdrCnt(http::HeaderName),
    Src,
    DstPort,
    Method,
    Nbsrv(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Exact,
    Beg,
    End,
    Sub,
    Dir,
    Reg,
    Ip,
    Int,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Range(i64),
}

#[derive(Debug, Clone)]
enum Patterns {
    Text(Vec<String>),
    Regex(Vec<Regex>),
    Nets(Vec<(IpAddr, u8)>),
    Ints(Vec<(Op, i64)>),
}

#[derive(Debug, Clone)]
pub struct Acl {
    fetch: Fetch,
    method: Method,
    icase: bool,
    patterns: Patterns,
}

/// Splits on whitespace, keeping double- or single-quoted words whole.
pub(super) fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                has = true;
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                has = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn header_arg(fetch: &str, inner: &str) -> Result<http::HeaderName, RoutingError> {
    http::HeaderName::from_bytes(inner.as_bytes())
        .map_err(|_| RoutingError::UnknownFetch(fetch.to_string()))
}

fn parse_fetch(tok: &str) -> Result<(Fetch, Method), RoutingError> {
    let unknown = || RoutingError::UnknownFetch(tok.to_string());
    let (name, arg) = match tok.split_once('(') {
        Some((n, rest)) => (n, Some(rest.strip_suffix(')').ok_or_else(unknown)?)),
        None => (tok, None),
    };
    let plain = |f: Fetch, m: Method| {
        if arg.is_none() {
            Ok((f, m))
        } else {
            Err(unknown())
        }
    };
    match name {
        "path" => plain(Fetch::Path, Method::Exact),
        "path_beg" => plain(Fetch::Path, Method::Beg),
        "path_end" => plain(Fetch::Path, Method::End),
        "path_sub" => plain(Fetch::Path, Method::Sub),
        "path_dir" => plain(Fetch::Path, Method::Dir),
        "path_reg" => plain(Fetch::Path, Method::Reg),
        "url" => plain(Fetch::Url, Method::Exact),
        "url_beg" => plain(Fetch::Url, Method::Beg),
        "url_end" => plain(Fetch::Url, Method::End),
        "url_sub" => plain(Fetch::Url, Method::Sub),
        "url_reg" => plain(Fetch::Url, Method::Reg),
        "src" => plain(Fetch::Src, Method::Ip),
        "dst_port" => plain(Fetch::DstPort, Method::Int),
        "method" => plain(Fetch::Method, Method::Exact),
        "hdr" | "hdr_beg" | "hdr_end" | "hdr_sub" | "hdr_reg" | "hdr_dir" | "hdr_cnt"
        | "req.hdr_cnt" => {
            let a = arg.filter(|a| !a.is_empty()).ok_or_else(unknown)?;
            let h = header_arg(tok, a)?;
            Ok(match name {
                "hdr" => (Fetch::Hdr(h), Method::Exact),
                "hdr_beg" => (Fetch::Hdr(h), Method::Beg),
                "hdr_end" => (Fetch::Hdr(h), Method::End),
                "hdr_sub" => (Fetch::Hdr(h), Method::Sub),
                "hdr_reg" => (Fetch::Hdr(h), Method::Reg),
                "hdr_dir" => (Fetch::Hdr(h), Method::Dir),
                _ => (Fetch::HdrCnt(h), Method::Int),
            })
        }
        "nbsrv" => {
            let a = arg.filter(|a| !a.is_empty()).ok_or_else(unknown)?;
            Ok((Fetch::Nbsrv(a.to_string()), Method::Int))
        }
        _ => Err(unknown()),
    }
}

fn parse_net(s: &str) -> Result<(IpAddr, u8), RoutingError> {
    let bad = || RoutingError::BadCidr(s.to_string());
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, len))
}

fn in_net(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Integer tests: `lt 1`, `eq 3`, `80`, `1024:65535`; several plain values mean any of them.
fn parse_ints(pats: &[String]) -> Result<Vec<(Op, i64)>, RoutingError> {
    let mut out = Vec::new();
    let mut it = pats.iter();
    while let Some(p) = it.next() {
        let op = match p.as_str() {
            "eq" => Some(Op::Eq),
            "ne" => Some(Op::Ne),
            "lt" => Some(Op::Lt),
            "le" => Some(Op::Le),
            "gt" => Some(Op::Gt),
            "ge" => Some(Op::Ge),
            _ => None,
        };
        let num = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| RoutingError::BadInt(s.to_string()))
        };
        match op {
            Some(op) => {
                let v = it.next().ok_or_else(|| RoutingError::BadInt(p.clone()))?;
                out.push((op, num(v)?));
            }
            None => match p.split_once(':') {
                Some((lo, hi)) => out.push((Op::Range(num(hi)?), num(lo)?)),
                None => out.push((Op::Eq, num(p)?)),
            },
        }
    }
    Ok(out)
}

fn int_match(v: i64, (op, p): (Op, i64)) -> bool {
    match op {
        Op::Eq => v == p,
        Op::Ne => v != p,
        Op::Lt => v < p,
        Op::Le => v <= p,
        Op::Gt => v > p,
        Op::Ge => v >= p,
        Op::Range(hi) => (p..=hi).contains(&v),
    }
}

impl Acl {
    /// Parses HAProxy's text after the ACL name, e.g. `path_end .php .html` or
    /// `hdr(host) -i -f hosts.lst`. Pattern files are read now, relative to `base_dir`.
    pub fn parse(expr: &str, base_dir: &Path) -> Result<Acl, RoutingError> {
        let w = words(expr);
        let (first, rest) = w.split_first().ok_or(RoutingError::Empty)?;
        let (fetch, method) = parse_fetch(first)?;
        let mut icase = false;
        let mut pats: Vec<String> = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            let t = &rest[i];
            match t.as_str() {
                "-i" => icase = true,
                "-f" => {
                    let f = rest
                        .get(i + 1)
                        .ok_or_else(|| RoutingError::BadFlag("-f".into()))?;
                    let path = base_dir.join(f);
                    let text = std::fs::read_to_string(&path).map_err(|e| RoutingError::File {
                        path: path.display().to_string(),
                        error: e.to_string(),
                    })?;
                    pats.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(String::from),
                    );
                    i += 1;
                }
                "--" => {
                    pats.extend(rest[i + 1..].iter().cloned());
                    break;
                }
                f if f.starts_with('-')
                    && f.len() > 1
                    && pats.is_empty()
                    && !matches!(method, Method::Int) =>
                {
                    return Err(RoutingError::BadFlag(f.to_string()));
                }
                _ => pats.push(t.clone()),
            }
            i += 1;
        }
        if pats.is_empty() {
            return Err(RoutingError::MissingPattern(first.clone()));
        }
        let patterns = match method {
            Method::Reg => Patterns::Regex(
                pats.iter()
                    .map(|p| {
                        RegexBuilder::new(p)
                            .case_insensitive(icase)
                            .build()
                            .map_err(|e| RoutingError::BadRegex {
                                pattern: p.clone(),
                                error: e.to_string(),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Method::Ip => Patterns::Nets(
                pats.iter()
                    .map(|p| parse_net(p))
                    .collect::<Result<_, _>>()?,
            ),
            Method::Int => Patterns::Ints(parse_ints(&pats)?),
            _ => Patterns::Text(if icase {
                pats.iter().map(|p| p.to_lowercase()).collect()
            } else {
                pats
            }),
        };
        Ok(Acl {
            fetch,
            method,
            icase,
            patterns,
        })
    }

    pub fn referenced_backends(&self) -> Vec<&str> {
        match &self.fetch {
            Fetch::Nbsrv(b) => vec![b.as_str()],
            _ => Vec::new(),
        }
    }

    /// True when any fetched value matches any pattern.
    pub fn matches(&self, f: &Facts<'_>, live: &dyn Live) -> bool {
        match (&self.fetch, &self.patterns) {
            (Fetch::Src, Patterns::Nets(nets)) => nets.iter().any(|&n| in_net(f.src, n)),
            (Fetch::DstPort, Patterns::Ints(t)) => {
                t.iter().any(|&x| int_match(f.dst_port as i64, x))
            }
            (Fetch::Nbsrv(b), Patterns::Ints(t)) => {
                let n = live.nbsrv(b) as i64;
                t.iter().any(|&x| int_match(n, x))
            }
            (Fetch::HdrCnt(h), Patterns::Ints(t)) => {
                let n = f.headers.map_or(0, |hs| {
                    hs.get_all(h)
                        .iter()
                        .map(|v| v.as_bytes().split(|&c| c == b',').count())
                        .sum::<usize>()
                }) as i64;
                t.iter().any(|&x| int_match(n, x))
            }
            (Fetch::Path, _) => f.uri.is_some_and(|u| self.text(u.path())),
            (Fetch::Url, _) => f.uri.is_some_and(|u| {
                let s = u.path_and_query().map(|p| p.as_str()).unwrap_or("");
                if u.scheme().is_some() {
                    self.text(&u.to_string())
                } else {
                    self.text(s)
                }
            }),
            (Fetch::Method, _) => f.method.is_some_and(|m| self.text(m.as_str())),
            (Fetch::Hdr(h), _) => f.headers.is_some_and(|hs| {
                hs.get_all(h)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .any(|v| self.text(v.trim()))
            }),
            _ => false,
        }
    }

    fn text(&self, value: &str) -> bool {
        match &self.patterns {
            Patterns::Regex(rs) => rs.iter().any(|r| r.is_match(value)),
            Patterns::Text(ps) => {
                let lowered;
                let v = if self.icase {
                    lowered = value.to_lowercase();
                    lowered.as_str()
                } else {
                    value
                };
                ps.iter().any(|p| match self.method {
                    Method::Exact => v == p,
                    Method::Beg => v.starts_with(p.as_str()),
                    Method::End => v.ends_with(p.as_str()),
                    Method::Sub => v.contains(p.as_str()),
                    Method::Dir => {
                        let p = p.trim_matches('/');
                        !p.is_empty()
                            && format!("/{}/", v.trim_matches('/')).contains(&format!("/{p}/"))
                    }
                    Method::Reg | Method::Ip | Method::Int => false,
                })
            }
            Patterns::Nets(_) | Patterns::Ints(_) => false,
        }
    }
}
