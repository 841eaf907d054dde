//! Sample fetches: where a sample comes from (`src`, `req.hdr(host)`, `var(txn.x)`, ...), read
//! through [`SampleContext`], which the proxy implements per stream and tests fake.
//!
//! Outside ACLs a fetch gives one sample, as in HAProxy: header fetches the last occurrence
//! unless an occurrence is given, `cook` the last cookie of that name, `url_param` the first.

use super::ParseError;
use super::args::{Args, Call};
use super::conv::VarRef;
use super::fetch_http::{
    HdrName, base, cookies, first_header, header, header_values, split_values, url_param, url_params,
};
use super::hello;
use super::value::{Sample, SmpType, Value};
use http::{HeaderMap, Method, Uri, Version};
use std::net::{IpAddr, SocketAddr};

/// The system's clock as [`SampleContext::now`] gives it (Unix seconds, microseconds), for
/// contexts that run against the real clock.
pub fn wall_clock() -> Option<(i64, u32)> {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((d.as_secs() as i64, d.subsec_micros()))
}

/// What the proxy knows about a stream. Every method has a default meaning "not available", so
/// a TCP stream, a request before its response or a test implements only what it has.
pub trait SampleContext {
    fn src(&self) -> Option<SocketAddr> {
        None
    }
    fn dst(&self) -> Option<SocketAddr> {
        None
    }
    fn method(&self) -> Option<&Method> {
        None
    }
    fn uri(&self) -> Option<&Uri> {
        None
    }
    fn version(&self) -> Option<Version> {
        None
    }
    fn req_headers(&self) -> Option<&HeaderMap> {
        None
    }
    /// Bytes of the request buffered so far (`req.len`).
    fn req_len(&self) -> Option<usize> {
        None
    }
    /// The buffered request body (`option http-buffer-request`).
    fn req_body(&self) -> Option<&[u8]> {
        None
    }
    /// The first bytes of a TCP stream's request (content inspection).
    fn req_payload(&self) -> Option<&[u8]> {
        None
    }
    /// The response body `http-response wait-for-body` read (`res.body`).
    fn res_body(&self) -> Option<&[u8]> {
        None
    }
    /// The server's first bytes, held for `tcp-response content` inspection (`res.len`,
    /// `res.payload`).
    fn res_payload(&self) -> Option<&[u8]> {
        None
    }
    fn status(&self) -> Option<u16> {
        None
    }
    fn res_headers(&self) -> Option<&HeaderMap> {
        None
    }
    /// Whether the client connection is TLS (`ssl_fc`); `None` means unknown.
    fn tls(&self) -> Option<bool> {
        None
    }
    fn tls_sni(&self) -> Option<&str> {
        None
    }
    fn tls_protocol(&self) -> Option<&str> {
        None
    }
    fn tls_alpn(&self) -> Option<&[u8]> {
        None
    }
    /// After a TLS handshake: the client's certificate, if it sent one (`ssl_c_*`).
    fn tls_client_cert(&self) -> Option<Option<&crate::tls::peer::PeerCert>> {
        None
    }
    fn var(&self, _var: &VarRef) -> Option<Value> {
        None
    }
    /// Sets (`Some`) or unsets a variable for the `set-var` / `unset-var` converters; false
    /// when this context has no such scope (the converter then fails).
    fn set_var(&self, _var: &VarRef, _value: Option<Value>) -> bool {
        false
    }
    /// Whether the request's Basic credentials are valid in `userlist`.
    fn http_auth(&self, _userlist: &str) -> Option<bool> {
        None
    }
    /// The user whose Basic credentials are valid in `userlist` (HAProxy's `http_auth_group`,
    /// whose ACL then tests the user's groups with [`SampleContext::user_in_group`]).
    fn http_auth_group(&self, _userlist: &str) -> Option<String> {
        None
    }
    /// Whether `user` of `userlist` is in `group`.
    fn user_in_group(&self, _userlist: &str, _user: &str, _group: &str) -> bool {
        false
    }
    /// Usable servers of `backend` (the current one when `None`).
    fn nbsrv(&self, _backend: Option<&str>) -> Option<i64> {
        None
    }
    fn srv_is_up(&self, _backend: Option<&str>, _server: &str) -> Option<bool> {
        None
    }
    fn be_conn(&self, _backend: Option<&str>) -> Option<i64> {
        None
    }
    fn fe_conn(&self, _frontend: Option<&str>) -> Option<i64> {
        None
    }
    /// Free connection and queue slots of `backend` (`connslots`).
    fn connslots(&self, _backend: Option<&str>) -> Option<i64> {
        None
    }
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
    /// Unix time in seconds, microseconds (`date`).
    fn now(&self) -> Option<(i64, u32)> {
        None
    }
    fn random(&self) -> Option<u32> {
        None
    }
    fn hostname(&self) -> Option<&str> {
        None
    }
    /// The request's `unique-id-format` value (`unique-id`), generated on first use.
    fn unique_id(&self) -> Option<std::borrow::Cow<'_, str>> {
        None
    }
    /// Local time at `unix` for `ltime`: the UTC offset in seconds and the zone's abbreviation
    /// (`%z`, `%Z`); UTC unless the proxy knows better.
    fn local_zone(&self, _unix: i64) -> (i64, &str) {
        (0, "UTC")
    }
    /// A stick-counter fetch (`sc_*`, `src_*`, `table_*`) against the live tables.
    fn stick(&self, _f: &super::fetch_sc::StickFetch) -> Option<Value> {
        None
    }
    /// A `table_*` / `in_table` converter: `key` looked up in the converter's table.
    fn stick_key(&self, _f: &super::fetch_sc::StickFetch, _key: &Value) -> Option<Value> {
        None
    }
    /// The name of the frontend, the backend or the server the stream is at, once known.
    fn proxy_name(&self, _role: super::fetch_more::Role) -> Option<&str> {
        None
    }
    /// The chosen server's id (its place in the backend, from 1).
    fn server_id(&self) -> Option<i64> {
        None
    }
    /// The frontend's or the backend's id (`Role::Server` is [`Self::server_id`]).
    fn proxy_id(&self, _role: super::fetch_more::Role) -> Option<i64> {
        None
    }
    /// A fresh random version 4 UUID, as text.
    fn uuid(&self) -> Option<String> {
        None
    }
    /// The client connection's TLS suite by its OpenSSL name (`ssl_fc_cipher`).
    fn tls_cipher(&self) -> Option<&str> {
        None
    }
    /// Whether the client's TLS session was resumed.
    fn tls_resumed(&self) -> Option<bool> {
        None
    }
    /// The response's HTTP version.
    fn res_version(&self) -> Option<Version> {
        None
    }
    /// Requests queued in `backend` (the current one when `None`).
    fn queue(&self, _backend: Option<&str>) -> Option<i64> {
        None
    }
    /// `avg_queue`: see [`super::fetch_more::avg_queue`].
    fn avg_queue(&self, _backend: Option<&str>) -> Option<i64> {
        None
    }
    /// A server's current connections, or with `queue` its queued requests.
    fn srv_conn(&self, _backend: Option<&str>, _server: &str, _queue: bool) -> Option<i64> {
        None
    }
    /// Sessions per second (or with `requests`, HTTP requests) of `frontend` (the current one
    /// when `None`): `fe_sess_rate`, `fe_req_rate`.
    fn fe_rate(&self, _frontend: Option<&str>, _requests: bool) -> Option<i64> {
        None
    }
    /// Sessions per second of `backend` (the current one when `None`), or of its `server`.
    fn sess_rate(&self, _backend: Option<&str>, _server: Option<&str>) -> Option<i64> {
        None
    }
    /// What capture slot `slot` of the request (or, with `response`, the response) holds
    /// (`capture.req.hdr(N)`, `capture.res.hdr(N)`).
    fn capture(&self, _response: bool, _slot: usize) -> Option<Vec<u8>> {
        None
    }
}

/// Unit of `date`'s result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    S,
    Ms,
    Us,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// A constant: `str()`, `int()`, `bool()`, `ipv4()`, `ipv6()`, `bin()`, `meth()`.
    Const(Value),
    Src,
    SrcPort,
    Dst,
    DstPort,
    Base,
    Base32,
    Path,
    PathQ,
    Url,
    Query,
    UrlParam {
        name: Option<String>,
        delims: Vec<u8>,
        icase: bool,
    },
    UrlIp,
    /// `url_port`: the port of an absolute `http://` / `https://` target whose host is an IPv4
    /// address (80 or 443 when none is written), as HAProxy's `url2sa` reads it.
    UrlPort,
    /// `hdr`/`req.hdr` (`full` false: comma-separated values) and `req.fhdr` (whole lines);
    /// `occ` is the occurrence argument when one is given.
    ReqHdr {
        name: Option<HdrName>,
        occ: Option<i64>,
        full: bool,
    },
    ReqHdrCnt {
        name: Option<String>,
        full: bool,
    },
    ReqHdrNames {
        delim: Vec<u8>,
    },
    Cook(Option<String>),
    CookCnt(Option<String>),
    Method,
    ReqVer,
    ReqLen,
    ReqBody,
    ResHdr {
        name: Option<HdrName>,
        occ: Option<i64>,
        full: bool,
    },
    Status,
    SslFc,
    SslFcSni,
    SslFcProtocol,
    SslFcAlpn,
    /// `ssl_c_used`, `ssl_c_verify`, `ssl_c_s_dn`, ... (see `SslC`).
    SslC(SslC),
    ReqSslSni,
    ReqSslHelloType,
    /// `req.rdp_cookie([name])`: the RDP cookie of the first bytes (see `rdp`).
    ReqRdpCookie(Option<String>),
    /// `req.rdp_cookie_cnt([name])`: 1 when there is one, else 0.
    ReqRdpCookieCnt(Option<String>),
    ReqPayload {
        offset: usize,
        len: usize,
    },
    /// `res.len`: bytes of the response held for inspection.
    ResLen,
    /// `res.payload(off,len)`.
    ResPayload {
        offset: usize,
        len: usize,
    },
    /// `req.payload_lv` / `res.payload_lv(off1,len[,off2])`: a block whose big-endian length is
    /// at `off1`.
    PayloadLv {
        res: bool,
        lv: super::payload::Lv,
    },
    /// `res.ssl_hello_type` / `rep_ssl_hello_type`.
    ResSslHelloType,
    Var {
        var: VarRef,
        default: Option<String>,
    },
    HttpAuth(String),
    HttpAuthGroup(String),
    Nbsrv(Option<String>),
    SrvIsUp {
        backend: Option<String>,
        server: String,
    },
    BeConn(Option<String>),
    FeConn(Option<String>),
    Connslots(Option<String>),
    Env(String),
    Date {
        offset: i64,
        unit: DateUnit,
    },
    Rand(Option<u64>),
    Hostname,
    UniqueId,
    /// `capture.req.hdr(N)` / `capture.res.hdr(N)`: a capture slot's content.
    Capture {
        response: bool,
        slot: usize,
    },
    Always(bool),
    /// `req.proto_http`: the stream carries HTTP.
    ProtoHttp,
    /// `fe_name`, `be_name`, `srv_name`.
    ProxyName(super::fetch_more::Role),
    /// `srv_id`: the server's id (`id N` or its place in its backend, from 1).
    SrvId,
    /// `fe_id`, `be_id`: the proxy's id (`id N` or HAProxy's automatic numbering).
    ProxyId(super::fetch_more::Role),
    /// `uuid([4])`: a random version 4 UUID.
    Uuid,
    SslFcHasSni,
    SslFcCipher,
    SslFcIsResumed,
    /// `base32+src`: `base32`'s hash then the client address, binary.
    Base32Src,
    /// `url32` (integer) and `url32+src` (binary): the Host header and the whole target hashed.
    Url32 {
        src: bool,
    },
    BaseQ,
    /// `req.body_param([name[,i]])`: a parameter of the buffered url-encoded body.
    ReqBodyParam {
        name: Option<String>,
        icase: bool,
    },
    ReqBodyLen,
    ReqBodySize,
    /// `res.body`, `res.body_len`, `res.body_size`: the response body `http-response
    /// wait-for-body` read.
    ResBody,
    ResBodyLen,
    ResBodySize,
    /// `res.ver` / `resp_ver`.
    ResVer,
    /// `req.hdrs` / `res.hdrs`: the header block as HTTP/1 writes it.
    Hdrs {
        res: bool,
    },
    /// `http_auth_type`, `http_auth_user`, `http_auth_pass`.
    HttpAuthPart(super::fetch_more::AuthPart),
    /// `http_auth_bearer([header])`.
    HttpAuthBearer(Option<HdrName>),
    /// `res.cook` / `scook` / `set-cookie`: a cookie the response sets.
    ResCook(Option<String>),
    /// `cookie`: the request's cookie in request rules, the response's in response rules.
    Cookie(Option<String>),
    ResCookCnt(Option<String>),
    /// `req.cook_val` / `cook_val` / `res.cook_val` / `scook_val`: a cookie as an integer.
    CookVal {
        res: bool,
        name: Option<String>,
    },
    /// `res.hdr_cnt` / `shdr_cnt` / `res.fhdr_cnt`.
    ResHdrCnt {
        name: Option<String>,
        full: bool,
    },
    ResHdrNames {
        delim: Vec<u8>,
    },
    /// `hdr_ip` / `hdr_val` and their `req.` / `res.` / `shdr_` forms: a header value as an
    /// address or an integer.
    HdrAs {
        res: bool,
        name: Option<HdrName>,
        occ: Option<i64>,
        ip: bool,
    },
    /// `capture.req.method`, `capture.req.uri`, `capture.req.ver`, `capture.res.ver`.
    CaptureLine(super::fetch_more::CaptureLine),
    /// `queue([backend])`, `avg_queue([backend])`.
    Queue(Option<String>),
    AvgQueue(Option<String>),
    /// `srv_conn([backend/]server)` and, with `queue`, `srv_queue`.
    SrvConn {
        backend: Option<String>,
        server: String,
        queue: bool,
    },
    /// `fe_sess_rate([frontend])` and, with `requests`, `fe_req_rate([frontend])`.
    FeRate {
        frontend: Option<String>,
        requests: bool,
    },
    /// `be_sess_rate([backend])`.
    BeSessRate(Option<String>),
    /// `srv_sess_rate([backend/]server)`.
    SrvSessRate {
        backend: Option<String>,
        server: String,
    },
    /// `sc_*`, `sc0_*`..`sc2_*`, `src_*`, `table_cnt`/`table_avl`.
    Stick(Box<super::fetch_sc::StickFetch>),
}

/// What a fetch reads: each place that evaluates samples (TCP rules, stick rules, HTTP rules,
/// log lines) decides from this whether it has it, so a new fetch is classified once, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Constants, variables, addresses, internal state: available everywhere.
    Internal,
    /// The client's TLS handshake (not before it completes).
    Tls,
    /// The raw bytes of the request buffer (TCP content inspection).
    Payload,
    /// The raw bytes of the response buffer (`tcp-response content` inspection).
    ResPayload,
    /// The HTTP request.
    HttpRequest,
    /// The HTTP response.
    HttpResponse,
    /// The request in request rules, the response in response rules (`cookie`).
    Http,
    /// The server chosen for the request (`srv_name`, `srv_id`).
    Server,
}

impl Fetch {
    /// What the fetch reads (see [`Reads`]).
    pub fn reads(&self) -> Reads {
        use super::fetch_more::CaptureLine as L;
        use Fetch as F;
        match self {
            F::Base
            | F::Base32
            | F::Base32Src
            | F::BaseQ
            | F::Url32 { .. }
            | F::Path
            | F::PathQ
            | F::Url
            | F::Query
            | F::UrlParam { .. }
            | F::UrlIp
            | F::UrlPort
            | F::ReqHdr { .. }
            | F::ReqHdrCnt { .. }
            | F::ReqHdrNames { .. }
            | F::Hdrs { res: false }
            | F::HdrAs { res: false, .. }
            | F::Cook(_)
            | F::CookCnt(_)
            | F::CookVal { res: false, .. }
            | F::Method
            | F::ReqVer
            | F::ReqBody
            | F::ReqBodyParam { .. }
            | F::ReqBodyLen
            | F::ReqBodySize
            | F::HttpAuth(_)
            | F::HttpAuthGroup(_)
            | F::HttpAuthPart(_)
            | F::HttpAuthBearer(_)
            | F::CaptureLine(L::Method | L::Uri | L::ReqVer) => Reads::HttpRequest,
            F::ResHdr { .. }
            | F::Status
            | F::Capture { response: true, .. }
            | F::ResVer
            | F::ResBody
            | F::ResBodyLen
            | F::ResBodySize
            | F::Hdrs { res: true }
            | F::HdrAs { res: true, .. }
            | F::ResCook(_)
            | F::ResCookCnt(_)
            | F::CookVal { res: true, .. }
            | F::ResHdrCnt { .. }
            | F::ResHdrNames { .. }
            | F::CaptureLine(L::ResVer) => Reads::HttpResponse,
            F::Cookie(_) => Reads::Http,
            F::ReqPayload { .. }
            | F::ReqSslSni
            | F::ReqSslHelloType
            | F::ReqLen
            | F::ReqRdpCookie(_)
            | F::ReqRdpCookieCnt(_) => Reads::Payload,
            F::PayloadLv { res: false, .. } => Reads::Payload,
            F::ResLen | F::ResPayload { .. } | F::ResSslHelloType | F::PayloadLv { res: true, .. } => Reads::ResPayload,
            F::SslFc
            | F::SslFcSni
            | F::SslFcProtocol
            | F::SslFcAlpn
            | F::SslC(_)
            | F::SslFcHasSni
            | F::SslFcCipher
            | F::SslFcIsResumed => Reads::Tls,
            F::ProxyName(super::fetch_more::Role::Server) | F::SrvId => Reads::Server,
            _ => Reads::Internal,
        }
    }

    /// The backend named in its arguments (`nbsrv(B)`, `srv_is_up(B/S)`, `queue(B)`, ...), for
    /// validation to check it exists; `Some(None)` when the fetch takes one and none is written
    /// (the section it is in is meant, see [`Fetch::backend_arg_mut`]).
    pub fn backend_arg(&self) -> Option<Option<&str>> {
        match self {
            Fetch::Nbsrv(b)
            | Fetch::BeConn(b)
            | Fetch::Connslots(b)
            | Fetch::Queue(b)
            | Fetch::AvgQueue(b)
            | Fetch::BeSessRate(b) => Some(b.as_deref()),
            Fetch::SrvIsUp { backend, .. } | Fetch::SrvConn { backend, .. } | Fetch::SrvSessRate { backend, .. } => {
                Some(backend.as_deref())
            }
            _ => None,
        }
    }

    /// The slot of that backend argument, and the server it names if any, so validation can
    /// fill an omitted one with the section the rule is written in.
    pub fn backend_arg_mut(&mut self) -> Option<(&mut Option<String>, Option<&str>)> {
        match self {
            Fetch::Nbsrv(b)
            | Fetch::BeConn(b)
            | Fetch::Connslots(b)
            | Fetch::Queue(b)
            | Fetch::AvgQueue(b)
            | Fetch::BeSessRate(b) => Some((b, None)),
            Fetch::SrvIsUp { backend, server }
            | Fetch::SrvConn { backend, server, .. }
            | Fetch::SrvSessRate { backend, server } => Some((backend, Some(server))),
            _ => None,
        }
    }

    /// The type the fetch produces (`Var` is `Str` for checking, as HAProxy's "any").
    pub fn out_type(&self) -> SmpType {
        use SmpType as T;
        match self {
            Fetch::Const(v) => v.ty(),
            Fetch::Src | Fetch::Dst => T::Addr,
            Fetch::UrlIp => T::Ipv4,
            Fetch::UrlPort => T::Sint,
            Fetch::SrcPort | Fetch::DstPort | Fetch::Base32 | Fetch::ReqHdrCnt { .. } | Fetch::CookCnt(_) => T::Sint,
            Fetch::ReqLen | Fetch::Status | Fetch::ReqSslHelloType | Fetch::Nbsrv(_) | Fetch::BeConn(_) => T::Sint,
            Fetch::ResLen | Fetch::ResSslHelloType => T::Sint,
            Fetch::ResPayload { .. } | Fetch::PayloadLv { .. } => T::Bin,
            Fetch::ReqRdpCookieCnt(_) => T::Sint,
            Fetch::FeConn(_) | Fetch::Connslots(_) | Fetch::Date { .. } | Fetch::Rand(_) => T::Sint,
            Fetch::SslC(SslC::Used) => T::Bool,
            Fetch::SslC(SslC::Verify) => T::Sint,
            Fetch::SslC(SslC::Serial | SslC::Sha1 | SslC::Der) => T::Bin,
            Fetch::SslFc | Fetch::HttpAuth(_) | Fetch::SrvIsUp { .. } | Fetch::Always(_) | Fetch::ProtoHttp => T::Bool,
            Fetch::ReqBody | Fetch::ReqPayload { .. } | Fetch::ResBody => T::Bin,
            Fetch::ResBodyLen | Fetch::ResBodySize => T::Sint,
            Fetch::Method => T::Meth,
            Fetch::Stick(f) => f.out_type(),
            Fetch::SrvId | Fetch::ProxyId(_) | Fetch::Url32 { src: false } | Fetch::ReqBodyLen | Fetch::ReqBodySize => {
                T::Sint
            }
            Fetch::ResCookCnt(_) | Fetch::CookVal { .. } | Fetch::ResHdrCnt { .. } | Fetch::Queue(_) => T::Sint,
            Fetch::AvgQueue(_) | Fetch::SrvConn { .. } | Fetch::HdrAs { ip: false, .. } => T::Sint,
            Fetch::HdrAs { ip: true, .. } => T::Addr,
            Fetch::FeRate { .. } | Fetch::BeSessRate(_) | Fetch::SrvSessRate { .. } => T::Sint,
            Fetch::SslFcHasSni | Fetch::SslFcIsResumed => T::Bool,
            Fetch::Base32Src | Fetch::Url32 { src: true } | Fetch::ReqBodyParam { .. } | Fetch::Hdrs { .. } => T::Bin,
            _ => T::Str,
        }
    }

    pub(super) fn parse(input: &str, call: &Call<'_>) -> Result<Fetch, ParseError> {
        let a = Args { input, call };
        let opt = |i: usize| a.get(i).filter(|s| !s.is_empty()).map(str::to_string);
        let fixed = |f: Fetch| a.count(0, 0).map(|_| f);
        match call.name {
            "src" => fixed(Fetch::Src),
            "src_port" => fixed(Fetch::SrcPort),
            "dst" => fixed(Fetch::Dst),
            "dst_port" => fixed(Fetch::DstPort),
            "base" => fixed(Fetch::Base),
            "base32" => fixed(Fetch::Base32),
            "path" => fixed(Fetch::Path),
            "pathq" => fixed(Fetch::PathQ),
            "url" => fixed(Fetch::Url),
            "query" => fixed(Fetch::Query),
            "url_ip" => fixed(Fetch::UrlIp),
            "url_port" => fixed(Fetch::UrlPort),
            "method" => fixed(Fetch::Method),
            "req.ver" | "req_ver" => fixed(Fetch::ReqVer),
            "req.len" | "req_len" => fixed(Fetch::ReqLen),
            "req.body" => fixed(Fetch::ReqBody),
            "status" => fixed(Fetch::Status),
            "ssl_fc" => fixed(Fetch::SslFc),
            "ssl_fc_sni" => fixed(Fetch::SslFcSni),
            "ssl_fc_protocol" => fixed(Fetch::SslFcProtocol),
            "ssl_fc_alpn" => fixed(Fetch::SslFcAlpn),
            "ssl_c_used" => fixed(Fetch::SslC(SslC::Used)),
            "ssl_c_verify" => fixed(Fetch::SslC(SslC::Verify)),
            "ssl_c_serial" => fixed(Fetch::SslC(SslC::Serial)),
            "ssl_c_sha1" => fixed(Fetch::SslC(SslC::Sha1)),
            "ssl_c_der" => fixed(Fetch::SslC(SslC::Der)),
            "ssl_c_notafter" => fixed(Fetch::SslC(SslC::NotAfter)),
            "ssl_c_notbefore" => fixed(Fetch::SslC(SslC::NotBefore)),
            name @ ("ssl_c_s_dn" | "ssl_c_i_dn") => {
                a.count(0, 2)?;
                let occ = a.get(1).filter(|o| !o.is_empty()).map(|_| a.sint(1)).transpose()?.unwrap_or(0);
                let issuer = name == "ssl_c_i_dn";
                Ok(Fetch::SslC(SslC::Dn { issuer, entry: opt(0), occ }))
            }
            "req.ssl_sni" | "req_ssl_sni" => fixed(Fetch::ReqSslSni),
            "req.ssl_hello_type" | "req_ssl_hello_type" => fixed(Fetch::ReqSslHelloType),
            "req.rdp_cookie" | "rdp_cookie" => a.count(0, 1).map(|_| Fetch::ReqRdpCookie(opt(0))),
            "req.rdp_cookie_cnt" | "rdp_cookie_cnt" => a.count(0, 1).map(|_| Fetch::ReqRdpCookieCnt(opt(0))),
            "hostname" => fixed(Fetch::Hostname),
            "unique-id" => fixed(Fetch::UniqueId),
            "always_true" => fixed(Fetch::Always(true)),
            "always_false" => fixed(Fetch::Always(false)),
            "req.proto_http" | "req_proto_http" => fixed(Fetch::ProtoHttp),
            "str" | "int" | "bool" | "ipv4" | "ipv6" | "bin" | "meth" => {
                a.count(1, 1)?;
                constant(call.name, a.str(0)?)
                    .map(Fetch::Const)
                    .ok_or_else(|| a.err(Some(1), format!("not a valid {} constant", call.name)))
            }
            "url_param" | "urlp" => {
                a.count(0, 3)?;
                let icase = match a.get(2).unwrap_or("") {
                    "" => false,
                    "i" => true,
                    _ => return Err(a.err(Some(3), "expected 'i' (case-insensitive) or nothing")),
                };
                let delims = a.get(1).filter(|d| !d.is_empty()).unwrap_or("&").as_bytes().to_vec();
                Ok(Fetch::UrlParam { name: opt(0), delims, icase })
            }
            name @ ("hdr" | "req.hdr" | "req.fhdr" | "res.hdr" | "res.fhdr" | "shdr") => {
                a.count(0, 2)?;
                let occ = a.get(1).filter(|o| !o.is_empty()).map(|_| a.sint(1)).transpose()?;
                let (name_arg, full) = (opt(0).map(HdrName::new), name.ends_with("fhdr"));
                if full && name_arg.is_none() {
                    return Err(a.err(Some(1), "missing header name"));
                }
                Ok(if name.starts_with("res") || name == "shdr" {
                    Fetch::ResHdr { name: name_arg, occ, full }
                } else {
                    Fetch::ReqHdr { name: name_arg, occ, full }
                })
            }
            name @ ("hdr_cnt" | "req.hdr_cnt" | "req.fhdr_cnt") => {
                a.count(0, 1)?;
                Ok(Fetch::ReqHdrCnt { name: opt(0), full: name == "req.fhdr_cnt" })
            }
            "req.hdr_names" => {
                a.count(0, 1)?;
                Ok(Fetch::ReqHdrNames { delim: a.get(0).filter(|d| !d.is_empty()).unwrap_or(",").as_bytes().to_vec() })
            }
            "req.cook" | "cook" => a.count(0, 1).map(|_| Fetch::Cook(opt(0))),
            "req.cook_cnt" | "cook_cnt" => a.count(0, 1).map(|_| Fetch::CookCnt(opt(0))),
            name @ ("req.payload" | "res.payload") => {
                a.count(2, 2)?;
                let (offset, len) = (a.sint(0)?, a.sint(1)?);
                if offset < 0 || len < 0 {
                    return Err(a.err(None, "offset and length must not be negative"));
                }
                let (offset, len) = (offset as usize, len as usize);
                Ok(if name == "res.payload" {
                    Fetch::ResPayload { offset, len }
                } else {
                    Fetch::ReqPayload { offset, len }
                })
            }
            name @ ("req.payload_lv" | "res.payload_lv") => {
                a.count(2, 3)?;
                let (off1, size) = (a.sint(0)?, a.sint(1)?);
                let lv = super::payload::Lv::new(off1, size, a.get(2).filter(|s| !s.is_empty()))
                    .map_err(|e| a.err(None, e))?;
                Ok(Fetch::PayloadLv { res: name == "res.payload_lv", lv })
            }
            "res.len" => fixed(Fetch::ResLen),
            "res.ssl_hello_type" | "rep_ssl_hello_type" => fixed(Fetch::ResSslHelloType),
            "var" => {
                a.count(1, 2)?;
                let s = a.str(0)?;
                let var = VarRef::parse(s)
                    .ok_or_else(|| a.err(Some(1), format!("`{s}` is not a variable name (scope.name)")))?;
                Ok(Fetch::Var { var, default: a.get(1).map(str::to_string) })
            }
            name @ ("http_auth" | "http_auth_group") => {
                a.count(1, 1)?;
                let list = a.str(0)?.to_string();
                Ok(if name == "http_auth" { Fetch::HttpAuth(list) } else { Fetch::HttpAuthGroup(list) })
            }
            name @ ("capture.req.hdr" | "capture.res.hdr") => {
                a.count(1, 1)?;
                let slot = a.sint(0)?;
                if slot < 0 {
                    return Err(a.err(Some(1), "a capture slot number is 0 or more"));
                }
                Ok(Fetch::Capture { response: name == "capture.res.hdr", slot: slot as usize })
            }
            "nbsrv" => a.count(0, 1).map(|_| Fetch::Nbsrv(opt(0))),
            "be_conn" => a.count(0, 1).map(|_| Fetch::BeConn(opt(0))),
            "fe_conn" => a.count(0, 1).map(|_| Fetch::FeConn(opt(0))),
            "connslots" => a.count(0, 1).map(|_| Fetch::Connslots(opt(0))),
            "srv_is_up" => {
                a.count(1, 1)?;
                let s = a.str(0)?;
                Ok(match s.split_once('/') {
                    Some((be, srv)) => Fetch::SrvIsUp { backend: Some(be.to_string()), server: srv.to_string() },
                    None => Fetch::SrvIsUp { backend: None, server: s.to_string() },
                })
            }
            "env" => {
                a.count(1, 1)?;
                Ok(Fetch::Env(a.str(0)?.to_string()))
            }
            "date" => {
                a.count(0, 2)?;
                let unit = match a.get(1).unwrap_or("s") {
                    "s" | "" => DateUnit::S,
                    "ms" => DateUnit::Ms,
                    "us" => DateUnit::Us,
                    _ => return Err(a.err(Some(2), "unit must be 's', 'ms' or 'us'")),
                };
                Ok(Fetch::Date { offset: a.opt_sint(0, 0)?, unit })
            }
            "rand" => {
                a.count(0, 1)?;
                let range = a.get(0).map(|_| a.sint(0)).transpose()?;
                Ok(Fetch::Rand(range.map(|r| r.clamp(0, u32::MAX as i64 + 1) as u64)))
            }
            name if super::fetch_sc::is_stick(name) => {
                super::fetch_sc::parse(&a, call).map(|f| Fetch::Stick(Box::new(f)))
            }
            name => super::fetch_more::parse(&a, name)?.ok_or_else(|| a.err(None, "unknown fetch method")),
        }
    }

    /// Every sample an ACL sees: header, cookie and query-parameter fetches give one per
    /// occurrence (unless an occurrence is named); the others their single sample.
    pub fn fetch_all(&self, ctx: &dyn SampleContext) -> Vec<Value> {
        let strs = |v: Vec<&[u8]>| v.into_iter().map(|s| Value::Str(s.to_vec())).collect();
        match self {
            Fetch::ReqHdr { name, occ: None, full } => {
                ctx.req_headers().map_or(Vec::new(), |h| strs(header_values(h, name.as_ref(), *full)))
            }
            Fetch::ResHdr { name, occ: None, full } => {
                ctx.res_headers().map_or(Vec::new(), |h| strs(header_values(h, name.as_ref(), *full)))
            }
            Fetch::Cook(name) => ctx.req_headers().map_or(Vec::new(), |h| {
                strs(
                    cookies(h)
                        .filter(|(n, _)| name.as_deref().is_none_or(|w| *n == w.as_bytes()))
                        .map(|(_, v)| v)
                        .collect(),
                )
            }),
            Fetch::UrlParam { name, delims, icase } => ctx
                .uri()
                .and_then(|u| u.query())
                .map_or(Vec::new(), |q| strs(url_params(q.as_bytes(), name.as_deref(), delims, *icase))),
            Fetch::HdrAs { res, name, occ: None, ip } => super::fetch_more::typed_all(ctx, *res, name.as_ref(), *ip),
            _ => self.fetch(ctx).into_iter().collect(),
        }
    }

    /// Each sample [`Fetch::fetch_all`] gives, lent from the request without a copy, to `f`
    /// until it returns true; `None` when this fetch has nothing to lend (use `fetch_all`).
    /// ACLs over a fetch without converters match this way.
    pub fn any_lent(&self, ctx: &dyn SampleContext, f: &mut dyn FnMut(Sample<'_>) -> bool) -> Option<bool> {
        Some(match self {
            Fetch::Src => ctx.src().is_some_and(|a| f(Sample::Ip(a.ip()))),
            Fetch::Path => ctx.uri().is_some_and(|u| f(Sample::Str(u.path().as_bytes()))),
            // An origin-form target is the URL as written; other forms are rebuilt by `fetch`.
            Fetch::Url => match ctx.uri() {
                None => false,
                Some(u) if u.scheme().is_some() => return None,
                Some(u) => f(Sample::Str(u.path_and_query()?.as_str().as_bytes())),
            },
            Fetch::Method => ctx.method().is_some_and(|m| f(Sample::Str(m.as_str().as_bytes()))),
            // Counters are numbers or booleans. Evaluated here once whatever it gives: a stick
            // fetch may change the entry (`sc_inc_gpc0`).
            Fetch::Stick(sf) => match ctx.stick(sf) {
                None => false,
                Some(Value::Sint(n)) => f(Sample::Int(n)),
                Some(Value::Bool(b)) => f(Sample::Bool(b)),
                Some(Value::Ipv4(a)) => f(Sample::Ip(a.into())),
                Some(Value::Ipv6(a)) => f(Sample::Ip(a.into())),
                Some(Value::Str(b) | Value::Bin(b)) => f(Sample::Str(&b)),
                Some(Value::Meth(m)) => f(Sample::Str(m.as_bytes())),
            },
            Fetch::ReqHdr { name, occ: None, full } => {
                let Some(h) = ctx.req_headers() else {
                    return Some(false);
                };
                let mut line = |l: &http::HeaderValue| {
                    if *full {
                        f(Sample::Str(l.as_bytes()))
                    } else {
                        split_values(l.as_bytes()).any(|v| f(Sample::Str(v)))
                    }
                };
                match name {
                    Some(n) => n.lines(h).any(&mut line),
                    None => h.values().any(line),
                }
            }
            _ => return None,
        })
    }

    /// The sample, or `None` when the context lacks it (HAProxy's "fetch failed").
    pub fn fetch(&self, ctx: &dyn SampleContext) -> Option<Value> {
        let s = |b: &[u8]| Some(Value::Str(b.to_vec()));
        match self {
            Fetch::Const(v) => Some(v.clone()),
            Fetch::Src => ctx.src().map(|a| ip_value(a.ip())),
            Fetch::Dst => ctx.dst().map(|a| ip_value(a.ip())),
            Fetch::SrcPort => ctx.src().map(|a| Value::Sint(a.port() as i64)),
            Fetch::DstPort => ctx.dst().map(|a| Value::Sint(a.port() as i64)),
            Fetch::Base => Some(Value::Str(base(ctx)?)),
            Fetch::Base32 => {
                let host = first_header(ctx.req_headers()?, "host").unwrap_or(b"");
                let path = ctx.uri()?.path().as_bytes();
                let path = if path.starts_with(b"/") { path } else { b"" };
                let h = super::codec::sdbm_from(super::codec::sdbm(host), path);
                Some(Value::Sint(super::codec::full_hash(h) as i64))
            }
            Fetch::Path => s(ctx.uri()?.path().as_bytes()),
            Fetch::PathQ => s(ctx.uri()?.path_and_query()?.as_str().as_bytes()),
            Fetch::Url => s(ctx.uri()?.to_string().as_bytes()),
            Fetch::Query => s(ctx.uri()?.query()?.as_bytes()),
            Fetch::UrlParam { name, delims, icase } => {
                url_param(ctx.uri()?.query()?.as_bytes(), name.as_deref(), delims, *icase)
                    .map(|v| Value::Str(v.to_vec()))
            }
            Fetch::UrlIp => match ctx.uri()?.host()?.parse::<IpAddr>().ok()? {
                IpAddr::V4(a) => Some(Value::Ipv4(a)),
                IpAddr::V6(_) => None,
            },
            Fetch::UrlPort => {
                let u = ctx.uri()?;
                let default = match u.scheme_str()?.to_ascii_lowercase().as_str() {
                    "http" => 80,
                    "https" => 443,
                    _ => return None,
                };
                u.host()?.parse::<std::net::Ipv4Addr>().ok()?;
                Some(Value::Sint(i64::from(u.port_u16().unwrap_or(default))))
            }
            Fetch::ReqHdr { name, occ, full } => header(ctx.req_headers()?, name.as_ref(), *occ, *full),
            Fetch::ResHdr { name, occ, full } => header(ctx.res_headers()?, name.as_ref(), *occ, *full),
            Fetch::ReqHdrCnt { name, full } => {
                let h = ctx.req_headers()?;
                let lines: Vec<&[u8]> = match name {
                    Some(n) => h.get_all(n.as_str()).iter().map(|v| v.as_bytes()).collect(),
                    None => h.values().map(|v| v.as_bytes()).collect(),
                };
                let n = if *full { lines.len() } else { lines.iter().map(|l| split_values(l).count()).sum() };
                Some(Value::Sint(n as i64))
            }
            Fetch::ReqHdrNames { delim } => {
                let h = ctx.req_headers()?;
                let names: Vec<&[u8]> = h.iter().map(|(n, _)| n.as_str().as_bytes()).collect();
                Some(Value::Str(names.join(delim.as_slice())))
            }
            Fetch::Cook(name) => {
                let h = ctx.req_headers()?;
                let mut found = cookies(h).filter(|(n, _)| name.as_deref().is_none_or(|want| *n == want.as_bytes()));
                let v = if name.is_some() { found.last() } else { found.next() };
                v.map(|(_, v)| Value::Str(v.to_vec()))
            }
            Fetch::CookCnt(name) => {
                let h = ctx.req_headers()?;
                let n = cookies(h).filter(|(n, _)| name.as_deref().is_none_or(|want| *n == want.as_bytes())).count();
                Some(Value::Sint(n as i64))
            }
            Fetch::Method => Some(Value::Meth(ctx.method()?.as_str().to_string())),
            Fetch::ReqVer => s(super::fetch_more::version_text(ctx.version()?)?.as_bytes()),
            Fetch::ReqLen => Some(Value::Sint(ctx.req_len()? as i64)),
            Fetch::ReqBody => Some(Value::Bin(ctx.req_body()?.to_vec())),
            Fetch::ResBody => Some(Value::Bin(ctx.res_body()?.to_vec())),
            Fetch::Status => Some(Value::Sint(ctx.status()? as i64)),
            Fetch::SslFc => Some(Value::Bool(ctx.tls()?)),
            Fetch::SslFcSni => s(ctx.tls_sni()?.as_bytes()),
            Fetch::SslFcProtocol => s(ctx.tls_protocol()?.as_bytes()),
            Fetch::SslFcAlpn => s(ctx.tls_alpn()?),
            Fetch::SslC(c) => c.eval(ctx),
            Fetch::ReqSslSni => s(hello::sni(ctx.req_payload()?)?),
            Fetch::ReqSslHelloType => Some(Value::Sint(hello::hello_type(ctx.req_payload()?)? as i64)),
            Fetch::ReqRdpCookie(name) => match super::rdp::cookie(ctx.req_payload()?, name.as_deref()) {
                super::rdp::RdpCookie::Found(v) => s(v),
                _ => None,
            },
            Fetch::ReqRdpCookieCnt(name) => match super::rdp::cookie(ctx.req_payload()?, name.as_deref()) {
                super::rdp::RdpCookie::Found(_) => Some(Value::Sint(1)),
                super::rdp::RdpCookie::Absent => Some(Value::Sint(0)),
                super::rdp::RdpCookie::Short => None,
            },
            Fetch::ReqPayload { offset, len } => {
                let p = ctx.req_payload()?;
                let end = if *len == 0 { p.len() } else { offset.checked_add(*len)? };
                Some(Value::Bin(p.get(*offset..end)?.to_vec()))
            }
            Fetch::ResLen => Some(Value::Sint(ctx.res_payload()?.len() as i64)),
            Fetch::ResPayload { offset, len } => {
                let p = ctx.res_payload()?;
                let end = if *len == 0 { p.len() } else { offset.checked_add(*len)? };
                Some(Value::Bin(p.get(*offset..end)?.to_vec()))
            }
            Fetch::PayloadLv { res, lv } => {
                let p = if *res { ctx.res_payload()? } else { ctx.req_payload()? };
                match lv.extract(p) {
                    super::payload::Found::Block(b) => Some(Value::Bin(b.to_vec())),
                    _ => None,
                }
            }
            Fetch::ResSslHelloType => Some(Value::Sint(hello::hello_type(ctx.res_payload()?)? as i64)),
            Fetch::Var { var, default } => ctx.var(var).or_else(|| default.as_ref().map(|d| Value::str(d.as_bytes()))),
            Fetch::HttpAuth(list) => Some(Value::Bool(ctx.http_auth(list)?)),
            Fetch::HttpAuthGroup(list) => s(ctx.http_auth_group(list)?.as_bytes()),
            Fetch::Nbsrv(be) => Some(Value::Sint(ctx.nbsrv(be.as_deref())?)),
            Fetch::SrvIsUp { backend, server } => Some(Value::Bool(ctx.srv_is_up(backend.as_deref(), server)?)),
            Fetch::BeConn(be) => Some(Value::Sint(ctx.be_conn(be.as_deref())?)),
            Fetch::FeConn(fe) => Some(Value::Sint(ctx.fe_conn(fe.as_deref())?)),
            Fetch::Connslots(be) => Some(Value::Sint(ctx.connslots(be.as_deref())?)),
            Fetch::Env(name) => s(ctx.env(name)?.as_bytes()),
            Fetch::Date { offset, unit } => {
                let (secs, usecs) = ctx.now()?;
                let secs = secs.saturating_add(*offset);
                Some(Value::Sint(match unit {
                    DateUnit::S => secs,
                    DateUnit::Ms => secs.saturating_mul(1000).saturating_add(usecs as i64 / 1000),
                    DateUnit::Us => secs.saturating_mul(1_000_000).saturating_add(usecs as i64),
                }))
            }
            Fetch::Rand(range) => {
                let r = ctx.random()? as u64;
                Some(Value::Sint(match range {
                    Some(n) => ((r * n) >> 32) as i64,
                    None => r as i64,
                }))
            }
            Fetch::Hostname => s(ctx.hostname()?.as_bytes()),
            Fetch::UniqueId => s(ctx.unique_id()?.as_bytes()),
            Fetch::Capture { response, slot } => Some(Value::Str(ctx.capture(*response, *slot)?)),
            Fetch::Always(b) => Some(Value::Bool(*b)),
            Fetch::ProtoHttp => Some(Value::Bool(ctx.method().is_some())),
            Fetch::Stick(f) => ctx.stick(f),
            _ => self.fetch_more(ctx),
        }
    }
}

fn ip_value(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(a) => Value::Ipv4(a),
        IpAddr::V6(a) => Value::Ipv6(a),
    }
}

fn constant(kind: &str, arg: &str) -> Option<Value> {
    Some(match kind {
        "str" => Value::str(arg.as_bytes()),
        "int" => Value::Sint(super::args::parse_sint(arg)?),
        "bool" => Value::Bool(super::args::parse_sint(arg)? != 0),
        "ipv4" => Value::Ipv4(arg.parse().ok()?),
        "ipv6" => Value::Ipv6(arg.parse().ok()?),
        "bin" => Value::Bin(parse_hex(arg)?),
        _ => Value::Meth(arg.to_string()),
    })
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The client-certificate fetches: `None` (no sample) without a TLS handshake, and for the
/// certificate's fields also when the client sent none, as in HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslC {
    Used,
    /// Always 0 when the handshake completed: lbha refuses a certificate that fails verification.
    Verify,
    Dn {
        issuer: bool,
        entry: Option<String>,
        occ: i64,
    },
    Serial,
    Sha1,
    Der,
    NotAfter,
    NotBefore,
}

impl SslC {
    fn eval(&self, ctx: &dyn SampleContext) -> Option<Value> {
        let cert = ctx.tls_client_cert()?;
        let c = match self {
            SslC::Used => return Some(Value::Bool(cert.is_some())),
            SslC::Verify => return Some(Value::Sint(0)),
            _ => cert?,
        };
        Some(match self {
            SslC::Dn { issuer, entry, occ } => {
                let names = if *issuer { &c.issuer } else { &c.subject };
                Value::Str(crate::tls::peer::PeerCert::dn(names, entry.as_deref(), *occ)?.into_bytes())
            }
            SslC::Serial => Value::Bin(c.serial.clone()),
            SslC::Sha1 => Value::Bin(c.sha1.clone()),
            SslC::Der => Value::Bin(c.der.clone()),
            SslC::NotAfter => Value::Str(c.not_after.clone().into_bytes()),
            SslC::NotBefore => Value::Str(c.not_before.clone().into_bytes()),
            SslC::Used | SslC::Verify => return None,
        })
    }
}
