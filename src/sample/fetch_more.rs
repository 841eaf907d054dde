//! The fetches of HAProxy 2.6 added after the first set: proxy and server names, response
//! cookies and header counts, request body parameters, `Authorization` parts, the hashes of
//! `url32`/`base32+src`, capture-style request and response lines, queue figures, `uuid`.
//! Parsing is [`parse`]; evaluation is [`Fetch::fetch`]'s arms that call in here.

use super::ParseError;
use super::args::Args;
use super::fetch::{Fetch, SampleContext};
use super::fetch_http::{HdrName, first_header, header_values, split_values, url_param};
use super::value::{SmpType, Value};
use http::{HeaderMap, Version};

/// Which proxy or server a name fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Frontend,
    Backend,
    Server,
}

/// The parts of an `Authorization` header the `http_auth_*` fetches give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPart {
    Type,
    User,
    Pass,
}

/// Parses the fetches this module adds; `Ok(None)` when `name` is none of them.
pub(super) fn parse(a: &Args<'_, '_>, name: &str) -> Result<Option<Fetch>, ParseError> {
    let opt = |i: usize| a.get(i).filter(|s| !s.is_empty()).map(str::to_string);
    let fixed = |f: Fetch| a.count(0, 0).map(|_| Some(f));
    let server_arg = |a: &Args<'_, '_>| -> Result<(Option<String>, String), ParseError> {
        a.count(1, 1)?;
        let s = a.str(0)?;
        Ok(match s.split_once('/') {
            Some((be, srv)) => (Some(be.to_string()), srv.to_string()),
            None => (None, s.to_string()),
        })
    };
    Ok(Some(match name {
        "fe_name" => return fixed(Fetch::ProxyName(Role::Frontend)),
        "be_name" => return fixed(Fetch::ProxyName(Role::Backend)),
        "srv_name" => return fixed(Fetch::ProxyName(Role::Server)),
        "srv_id" => return fixed(Fetch::SrvId),
        "fe_id" => return fixed(Fetch::ProxyId(Role::Frontend)),
        "be_id" => return fixed(Fetch::ProxyId(Role::Backend)),
        "ssl_fc_has_sni" => return fixed(Fetch::SslFcHasSni),
        "ssl_fc_cipher" => return fixed(Fetch::SslFcCipher),
        "ssl_fc_is_resumed" => return fixed(Fetch::SslFcIsResumed),
        "base32+src" => return fixed(Fetch::Base32Src),
        "url32" => return fixed(Fetch::Url32 { src: false }),
        "url32+src" => return fixed(Fetch::Url32 { src: true }),
        "baseq" => return fixed(Fetch::BaseQ),
        "req.body_len" => return fixed(Fetch::ReqBodyLen),
        "req.body_size" => return fixed(Fetch::ReqBodySize),
        "res.body" => return fixed(Fetch::ResBody),
        "res.body_len" => return fixed(Fetch::ResBodyLen),
        "res.body_size" => return fixed(Fetch::ResBodySize),
        "res.ver" | "resp_ver" => return fixed(Fetch::ResVer),
        "req.hdrs" => return fixed(Fetch::Hdrs { res: false }),
        "res.hdrs" => return fixed(Fetch::Hdrs { res: true }),
        "http_auth_type" => return fixed(Fetch::HttpAuthPart(AuthPart::Type)),
        "http_auth_user" => return fixed(Fetch::HttpAuthPart(AuthPart::User)),
        "http_auth_pass" => return fixed(Fetch::HttpAuthPart(AuthPart::Pass)),
        "capture.req.method" => return fixed(Fetch::CaptureLine(CaptureLine::Method)),
        "capture.req.uri" => return fixed(Fetch::CaptureLine(CaptureLine::Uri)),
        "capture.req.ver" => return fixed(Fetch::CaptureLine(CaptureLine::ReqVer)),
        "capture.res.ver" => return fixed(Fetch::CaptureLine(CaptureLine::ResVer)),
        "uuid" => {
            a.count(0, 1)?;
            if a.opt_sint(0, 4)? != 4 {
                return Err(a.err(Some(1), "Unsupported UUID version (only 4 is supported)"));
            }
            Fetch::Uuid
        }
        "http_auth_bearer" => {
            a.count(0, 1)?;
            Fetch::HttpAuthBearer(opt(0).map(HdrName::new))
        }
        "req.body_param" => {
            a.count(0, 2)?;
            let icase = match a.get(1).unwrap_or("") {
                "" => false,
                "i" => true,
                _ => return Err(a.err(Some(2), "expected 'i' (case-insensitive) or nothing")),
            };
            Fetch::ReqBodyParam { name: opt(0), icase }
        }
        "res.cook" | "scook" | "set-cookie" => a.count(0, 1).map(|_| Fetch::ResCook(opt(0)))?,
        "cookie" => a.count(0, 1).map(|_| Fetch::Cookie(opt(0)))?,
        "res.cook_cnt" | "scook_cnt" => a.count(0, 1).map(|_| Fetch::ResCookCnt(opt(0)))?,
        "req.cook_val" | "cook_val" => a.count(0, 1).map(|_| Fetch::CookVal { res: false, name: opt(0) })?,
        "res.cook_val" | "scook_val" => a.count(0, 1).map(|_| Fetch::CookVal { res: true, name: opt(0) })?,
        name @ ("res.hdr_cnt" | "shdr_cnt" | "res.fhdr_cnt") => {
            a.count(0, 1)?;
            Fetch::ResHdrCnt { name: opt(0), full: name == "res.fhdr_cnt" }
        }
        "res.hdr_names" => {
            a.count(0, 1)?;
            Fetch::ResHdrNames { delim: a.get(0).filter(|d| !d.is_empty()).unwrap_or(",").as_bytes().to_vec() }
        }
        name @ ("hdr_ip" | "req.hdr_ip" | "res.hdr_ip" | "shdr_ip" | "hdr_val" | "req.hdr_val" | "res.hdr_val"
        | "shdr_val") => {
            a.count(0, 2)?;
            let occ = a.get(1).filter(|o| !o.is_empty()).map(|_| a.sint(1)).transpose()?;
            let res = name.starts_with("res") || name.starts_with("shdr");
            Fetch::HdrAs { res, name: opt(0).map(HdrName::new), occ, ip: name.ends_with("_ip") }
        }
        "queue" => a.count(0, 1).map(|_| Fetch::Queue(opt(0)))?,
        "avg_queue" => a.count(0, 1).map(|_| Fetch::AvgQueue(opt(0)))?,
        "srv_conn" => {
            let (backend, server) = server_arg(a)?;
            Fetch::SrvConn { backend, server, queue: false }
        }
        "srv_queue" => {
            let (backend, server) = server_arg(a)?;
            Fetch::SrvConn { backend, server, queue: true }
        }
        name @ ("fe_sess_rate" | "fe_req_rate") => {
            a.count(0, 1)?;
            Fetch::FeRate { frontend: opt(0), requests: name == "fe_req_rate" }
        }
        "be_sess_rate" => a.count(0, 1).map(|_| Fetch::BeSessRate(opt(0)))?,
        "srv_sess_rate" => {
            let (backend, server) = server_arg(a)?;
            Fetch::SrvSessRate { backend, server }
        }
        _ => return Ok(None),
    }))
}

/// What `capture.req.*` / `capture.res.ver` read from the request and status lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureLine {
    Method,
    Uri,
    ReqVer,
    ResVer,
}

/// `HTTP/1.1`-style version text without the prefix, as `req.ver` prints it.
pub(super) fn version_text(v: Version) -> Option<&'static str> {
    Some(match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => return None,
    })
}

/// HAProxy's request-line path of a target: origin form as written, the path and query of
/// an absolute form (`http_parse_path`).
fn target_path(u: &http::Uri) -> &str {
    u.path_and_query().map_or("/", |p| p.as_str())
}

/// The sdbm-style hash of the Host header then `path` (when it starts with `/`), avalanched.
fn host_path_hash(h: &HeaderMap, path: &[u8]) -> u32 {
    let host = first_header(h, "host").unwrap_or(b"");
    let path = if path.starts_with(b"/") { path } else { b"" };
    super::codec::full_hash(super::codec::sdbm_from(super::codec::sdbm(host), path))
}

/// `hash` as 4 big-endian bytes followed by the client's address (4 or 16 bytes).
fn with_src(hash: u32, ctx: &dyn SampleContext) -> Option<Value> {
    let mut out = hash.to_be_bytes().to_vec();
    match ctx.src()?.ip() {
        std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
    Some(Value::Bin(out))
}

/// The parsed `Authorization` header, as HAProxy's `get_http_auth`: a scheme, at least one
/// space, then Basic's base64 `user:pass` or Bearer's token.
enum Auth {
    Basic(Vec<u8>, Vec<u8>),
    Bearer(Vec<u8>),
}

fn split_auth(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = v.iter().position(|&c| c == b' ').filter(|&p| p > 0)?;
    let rest = &v[sp..];
    Some((&v[..sp], &rest[rest.iter().take_while(|&&c| c == b' ').count()..]))
}

fn auth(h: &HeaderMap) -> Option<Auth> {
    let v = split_values(first_header(h, "authorization")?).next()?;
    let (scheme, data) = split_auth(v)?;
    if scheme.eq_ignore_ascii_case(b"basic") {
        let raw = super::codec::base64_decode(data)?;
        let raw = &raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())];
        let colon = raw.iter().position(|&c| c == b':')?;
        Some(Auth::Basic(raw[..colon].to_vec(), raw[colon + 1..].to_vec()))
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(Auth::Bearer(data.to_vec()))
    } else {
        None
    }
}

/// Every cookie of the `Set-Cookie` lines: the first `name=value` of each line (the
/// attributes after it are not cookies).
fn set_cookies(h: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    h.get_all("set-cookie").iter().filter_map(|v| {
        let pair = v.as_bytes().split(|&c| c == b';').next()?.trim_ascii();
        let eq = pair.iter().position(|&c| c == b'=')?;
        Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
    })
}

/// The named cookie's last occurrence, or the first cookie without a name, as `req.cook` picks.
fn pick_cookie<'a>(mut all: impl Iterator<Item = (&'a [u8], &'a [u8])>, name: Option<&str>) -> Option<&'a [u8]> {
    match name {
        Some(want) => all.filter(|(n, _)| *n == want.as_bytes()).last().map(|(_, v)| v),
        None => all.next().map(|(_, v)| v),
    }
}

/// `req.hdrs` / `res.hdrs`: the header block as HTTP/1 writes it (lower-case names), ending
/// with the empty line.
fn header_block(h: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in h {
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn count_lines(h: &HeaderMap, name: Option<&str>, full: bool) -> i64 {
    let lines: Vec<&[u8]> = match name {
        Some(n) => h.get_all(n).iter().map(|v| v.as_bytes()).collect(),
        None => h.values().map(|v| v.as_bytes()).collect(),
    };
    (if full { lines.len() } else { lines.iter().map(|l| split_values(l).count()).sum() }) as i64
}

/// A header value as `hdr_ip` reads it (an IPv4 or IPv6 address) or `hdr_val` (an integer).
pub(super) fn typed(v: Value, ip: bool) -> Option<Value> {
    v.cast(if ip { SmpType::Addr } else { SmpType::Sint })
}

/// Every typed occurrence, for ACLs (`hdr_ip(x-forwarded-for) 10.0.0.0/8`).
pub(super) fn typed_all(ctx: &dyn SampleContext, res: bool, name: Option<&HdrName>, ip: bool) -> Vec<Value> {
    let h = if res { ctx.res_headers() } else { ctx.req_headers() };
    h.map_or(Vec::new(), |h| {
        header_values(h, name, false).into_iter().filter_map(|v| typed(Value::Str(v.to_vec()), ip)).collect()
    })
}

impl Fetch {
    /// The fetches of this module; `None` for the others and when the context lacks what it
    /// reads.
    pub(super) fn fetch_more(&self, ctx: &dyn SampleContext) -> Option<Value> {
        let s = |b: &[u8]| Some(Value::Str(b.to_vec()));
        match self {
            Fetch::ProxyName(role) => s(ctx.proxy_name(*role)?.as_bytes()),
            Fetch::SrvId => Some(Value::Sint(ctx.server_id()?)),
            Fetch::ProxyId(role) => Some(Value::Sint(ctx.proxy_id(*role)?)),
            Fetch::Uuid => s(ctx.uuid()?.as_bytes()),
            Fetch::SslFcHasSni => Some(Value::Bool(ctx.tls()? && ctx.tls_sni().is_some())),
            Fetch::SslFcCipher => s(ctx.tls_cipher()?.as_bytes()),
            Fetch::SslFcIsResumed => Some(Value::Bool(ctx.tls_resumed()?)),
            Fetch::Base32Src => {
                let h = host_path_hash(ctx.req_headers()?, ctx.uri()?.path().as_bytes());
                with_src(h, ctx)
            }
            Fetch::Url32 { src } => {
                let h = host_path_hash(ctx.req_headers()?, target_path(ctx.uri()?).as_bytes());
                if *src { with_src(h, ctx) } else { Some(Value::Sint(i64::from(h))) }
            }
            Fetch::BaseQ => {
                let mut b = super::fetch_http::base(ctx)?;
                if let Some(q) = ctx.uri()?.query() {
                    b.push(b'?');
                    b.extend_from_slice(q.as_bytes());
                }
                Some(Value::Str(b))
            }
            Fetch::ReqBodyParam { name, icase } => {
                let body = ctx.req_body()?;
                url_param(body, name.as_deref(), b"&", *icase).map(|v| Value::Bin(v.to_vec()))
            }
            // Without a buffered body HAProxy sees none of it: 0, as it answers.
            Fetch::ReqBodyLen => {
                ctx.req_headers()?;
                Some(Value::Sint(ctx.req_body().map_or(0, <[u8]>::len) as i64))
            }
            Fetch::ReqBodySize => {
                let h = ctx.req_headers()?;
                let declared = first_header(h, "content-length")
                    .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<i64>().ok());
                Some(Value::Sint(declared.unwrap_or_else(|| ctx.req_body().map_or(0, <[u8]>::len) as i64)))
            }
            Fetch::ResBodyLen => {
                ctx.res_headers()?;
                Some(Value::Sint(ctx.res_body().map_or(0, <[u8]>::len) as i64))
            }
            Fetch::ResBodySize => {
                let h = ctx.res_headers()?;
                let declared = first_header(h, "content-length")
                    .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<i64>().ok());
                Some(Value::Sint(declared.unwrap_or_else(|| ctx.res_body().map_or(0, <[u8]>::len) as i64)))
            }
            Fetch::ResVer => s(version_text(ctx.res_version()?)?.as_bytes()),
            Fetch::Hdrs { res } => {
                let h = if *res { ctx.res_headers()? } else { ctx.req_headers()? };
                Some(Value::Bin(header_block(h)))
            }
            Fetch::HttpAuthPart(part) => match (auth(ctx.req_headers()?)?, part) {
                (Auth::Basic(..), AuthPart::Type) => s(b"Basic"),
                (Auth::Bearer(_), AuthPart::Type) => s(b"Bearer"),
                (Auth::Basic(u, _), AuthPart::User) => Some(Value::Str(u)),
                (Auth::Basic(_, p), AuthPart::Pass) => Some(Value::Str(p)),
                _ => None,
            },
            Fetch::HttpAuthBearer(hdr) => {
                let h = ctx.req_headers()?;
                match hdr {
                    None => match auth(h)? {
                        Auth::Bearer(t) => Some(Value::Str(t)),
                        Auth::Basic(..) => None,
                    },
                    Some(name) => {
                        let v = split_values(name.lines(h).next()?.as_bytes()).next()?;
                        let (scheme, token) = split_auth(v).filter(|(_, t)| !t.is_empty())?;
                        scheme.eq_ignore_ascii_case(b"bearer").then(|| Value::Str(token.to_vec()))
                    }
                }
            }
            Fetch::ResCook(name) => {
                Some(Value::Str(pick_cookie(set_cookies(ctx.res_headers()?), name.as_deref())?.to_vec()))
            }
            // The request's cookie in request rules, the response's once there is one.
            Fetch::Cookie(name) => match ctx.status() {
                Some(_) => Fetch::ResCook(name.clone()).fetch_more(ctx),
                None => Fetch::Cook(name.clone()).fetch(ctx),
            },
            Fetch::ResCookCnt(name) => {
                let n = set_cookies(ctx.res_headers()?)
                    .filter(|(n, _)| name.as_deref().is_none_or(|w| *n == w.as_bytes()))
                    .count();
                Some(Value::Sint(n as i64))
            }
            Fetch::CookVal { res, name } => {
                let v = if *res {
                    Fetch::ResCook(name.clone()).fetch_more(ctx)?
                } else {
                    Fetch::Cook(name.clone()).fetch(ctx)?
                };
                v.cast(SmpType::Sint)
            }
            Fetch::ResHdrCnt { name, full } => {
                Some(Value::Sint(count_lines(ctx.res_headers()?, name.as_deref(), *full)))
            }
            Fetch::ResHdrNames { delim } => {
                let names: Vec<&[u8]> = ctx.res_headers()?.iter().map(|(n, _)| n.as_str().as_bytes()).collect();
                Some(Value::Str(names.join(delim.as_slice())))
            }
            Fetch::HdrAs { res, name, occ, ip } => {
                let h = if *res { ctx.res_headers()? } else { ctx.req_headers()? };
                // `hdr_ip` / `hdr_val` without a name read every header, as `hdr` with one.
                let occ = if name.is_none() && occ.is_none() { Some(-1) } else { *occ };
                typed(super::fetch_http::header(h, name.as_ref(), occ, false)?, *ip)
            }
            Fetch::CaptureLine(line) => match line {
                CaptureLine::Method => s(ctx.method()?.as_str().as_bytes()),
                CaptureLine::Uri => s(target_path(ctx.uri()?).as_bytes()),
                CaptureLine::ReqVer => s(format!("HTTP/{}", version_text(ctx.version()?)?).as_bytes()),
                CaptureLine::ResVer => s(format!("HTTP/{}", version_text(ctx.res_version()?)?).as_bytes()),
            },
            Fetch::Queue(be) => Some(Value::Sint(ctx.queue(be.as_deref())?)),
            Fetch::AvgQueue(be) => Some(Value::Sint(ctx.avg_queue(be.as_deref())?)),
            Fetch::SrvConn { backend, server, queue } => {
                Some(Value::Sint(ctx.srv_conn(backend.as_deref(), server, *queue)?))
            }
            Fetch::FeRate { frontend, requests } => Some(Value::Sint(ctx.fe_rate(frontend.as_deref(), *requests)?)),
            Fetch::BeSessRate(be) => Some(Value::Sint(ctx.sess_rate(be.as_deref(), None)?)),
            Fetch::SrvSessRate { backend, server } => {
                Some(Value::Sint(ctx.sess_rate(backend.as_deref(), Some(server))?))
            }
            _ => None,
        }
    }
}

/// HAProxy's `avg_queue`: the backend's queue over its usable servers, rounded up; twice the
/// queue when none is usable.
pub fn avg_queue(queued: i64, usable: i64) -> i64 {
    if usable > 0 { (queued + usable - 1) / usable } else { queued.saturating_mul(2) }
}
