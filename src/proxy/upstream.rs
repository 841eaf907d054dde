//! How lbha talks to servers beyond the address: the protocol (`proto h2`), which idle connection
//! a request may take (`http-reuse`, `max-reuse`, `pool-max-conn`), and the dynamic server limit
//! (`minconn`/`fullconn`) and queue bound (`maxqueue`). Pure rules; the pool and the queue apply them.

use std::time::Duration;

/// HAProxy's `http-reuse`: which idle server connections a request may be sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpReuse {
    /// A server connection serves one client connection only.
    Never,
    /// The first request of a client connection goes on a connection of its own (the client can
    /// retry it if the server closes); later ones may take any idle connection.
    #[default]
    Safe,
    /// First requests may take idle connections that have been reused at least once already.
    Aggressive,
    /// Any request may take any idle connection.
    Always,
}

impl HttpReuse {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(Self::Never),
            "safe" => Ok(Self::Safe),
            "aggressive" => Ok(Self::Aggressive),
            "always" => Ok(Self::Always),
            other => Err(format!("unknown http_reuse `{other}` (never, safe, aggressive, always)")),
        }
    }

    /// What a request may take from the shared idle connections; `first`: it is the first
    /// request of its client connection.
    pub fn want(self, first: bool) -> Want {
        match (self, first) {
            (Self::Never, _) | (Self::Safe, true) => Want::New,
            (Self::Aggressive, true) => Want::Proven,
            _ => Want::Any,
        }
    }
}

/// Which shared idle connection a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// None: a connection of its own.
    New,
    /// One that has carried two requests or more (proved the server keeps connections open).
    Proven,
    /// Any open one.
    Any,
}

impl Want {
    /// Whether a connection that has carried `served` requests fits.
    pub fn fits(self, served: u32) -> bool {
        match self {
            Want::New => false,
            Want::Proven => served >= 2,
            Want::Any => true,
        }
    }
}

/// Per-server options of this module, validated once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOpts {
    /// `proto h2`: HTTP/2 to the server (h2c in clear, h2 over TLS).
    pub h2: bool,
    /// `pool-max-conn`: idle connections kept; `None`: no limit.
    pub pool_max_conn: Option<usize>,
    /// `max-reuse`: times a connection may be reused; `None`: no limit.
    pub max_reuse: Option<u32>,
    /// `pool-purge-delay` of this server (else the backend's).
    pub pool_purge_delay: Option<Duration>,
    /// `maxqueue`: requests waiting for this server at most; 0: no limit.
    pub maxqueue: u32,
    /// `minconn`: the server's limit when the backend is idle (see [`dynamic_maxconn`]); 0: none.
    pub minconn: u32,
}

impl ServerOpts {
    /// Whether a connection that has carried `served` requests may carry another.
    pub fn reusable(&self, served: u32) -> bool {
        self.max_reuse.is_none_or(|m| served <= m) && self.pool_max_conn != Some(0)
    }
}

/// Per-backend options of this module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendOpts {
    pub http_reuse: HttpReuse,
    /// `fullconn`: the backend load at which servers reach their `maxconn`; 0 when unset and no
    /// frontend reaches the backend.
    pub fullconn: u32,
}

/// HAProxy's dynamic server limit (`srv_dynamic_maxconn`): with `minconn` set, a server takes
/// `max(minconn, beconn × maxconn / fullconn)` connections until the backend holds `fullconn`,
/// then `maxconn`. 0 means no limit (no `maxconn`).
pub fn dynamic_maxconn(maxconn: u32, minconn: u32, fullconn: u32, beconn: u32) -> u32 {
    if maxconn == 0 || minconn == 0 || minconn >= maxconn || beconn >= fullconn {
        return maxconn;
    }
    let scaled = (u64::from(beconn) * u64::from(maxconn) / u64::from(fullconn)) as u32;
    scaled.max(minconn)
}

/// HAProxy's default `fullconn`: 10% of the `maxconn` of the frontends that can reach the backend.
pub fn default_fullconn(frontend_maxconn_sum: u64) -> u32 {
    u32::try_from(frontend_maxconn_sum.div_ceil(10)).unwrap_or(u32::MAX)
}

/// Whether one more request may wait: `waiting` already do, `bound` is the sum of the
/// `maxqueue` of the servers it could wait for (`None` when any of them has no bound).
pub fn queue_has_room(waiting: u32, bound: Option<u32>) -> bool {
    bound.is_none_or(|b| waiting < b)
}

/// Puts a request in the form the server's protocol wants: HTTP/2 carries the host in
/// `:authority` (an absolute target, `https` over TLS) and may carry `te: trailers` (gRPC
/// servers want it); HTTP/1.1 takes a relative target and a Host field. Either way from
/// either form, so a retry on a connection of the other protocol works too.
pub fn shape<B>(req: &mut http::Request<B>, h2: bool, tls: bool, te_trailers: bool) {
    use http::{HeaderValue, Uri, Version, header};
    // HTTP/1.1 from the start (the common case): already in form (see `proxy::http::forward`).
    if !h2 && req.version() != Version::HTTP_2 {
        return;
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
    let pq = req.uri().path_and_query().cloned();
    let mut p = http::uri::Parts::default();
    p.path_and_query = pq;
    if h2 {
        if let Some(h) = host.as_deref().and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            p.scheme = Some(if tls { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP });
            p.authority = Some(h);
            req.headers_mut().remove(header::HOST);
        }
        if te_trailers {
            req.headers_mut().insert(header::TE, HeaderValue::from_static("trailers"));
        }
        *req.version_mut() = Version::HTTP_2;
    } else {
        if let Some(v) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            req.headers_mut().insert(header::HOST, v);
        }
        req.headers_mut().remove(header::TE);
        *req.version_mut() = Version::HTTP_11;
    }
    // An authority-form target (CONNECT) stays as it is.
    if p.path_and_query.is_none() {
        return;
    }
    if let Ok(u) = Uri::from_parts(p) {
        *req.uri_mut() = u;
    }
}

/// Whether the client's `TE` asks for trailers (the only `TE` that may cross to HTTP/2).
pub fn wants_trailers(h: &http::HeaderMap) -> bool {
    h.get_all(http::header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_the_form_of_the_servers_protocol() {
        let mut r = http::Request::builder().uri("/svc/Call?x=1").header("host", "api.example:8080").body(()).unwrap();
        shape(&mut r, true, false, true);
        assert_eq!(r.uri().to_string(), "http://api.example:8080/svc/Call?x=1");
        assert_eq!(r.version(), http::Version::HTTP_2);
        assert!(r.headers().get("host").is_none());
        assert_eq!(r.headers()["te"], "trailers");
        shape(&mut r, false, false, true);
        assert_eq!(r.uri().to_string(), "/svc/Call?x=1");
        assert_eq!(r.headers()["host"], "api.example:8080");
        assert!(r.headers().get("te").is_none(), "te never goes to an HTTP/1.1 server");
        assert_eq!(r.version(), http::Version::HTTP_11);
        shape(&mut r, true, true, false);
        assert_eq!(r.uri().to_string(), "https://api.example:8080/svc/Call?x=1");
        assert!(r.headers().get("te").is_none());
        let mut t = http::HeaderMap::new();
        assert!(!wants_trailers(&t));
        t.insert("te", http::HeaderValue::from_static("gzip, Trailers;q=1"));
        assert!(wants_trailers(&t));
        let mut c = http::Request::builder().method("CONNECT").uri("example.com:443").body(()).unwrap();
        shape(&mut c, false, false, false);
        assert_eq!(c.uri().to_string(), "example.com:443", "authority-form kept");
    }

    #[test]
    fn reuse_modes_follow_haproxy() {
        assert_eq!(HttpReuse::default(), HttpReuse::Safe);
        assert_eq!(HttpReuse::Never.want(false), Want::New);
        assert_eq!(HttpReuse::Safe.want(true), Want::New);
        assert_eq!(HttpReuse::Safe.want(false), Want::Any);
        assert_eq!(HttpReuse::Aggressive.want(true), Want::Proven);
        assert_eq!(HttpReuse::Aggressive.want(false), Want::Any);
        assert_eq!(HttpReuse::Always.want(true), Want::Any);
        assert!(!Want::Proven.fits(1) && Want::Proven.fits(2) && Want::Any.fits(1) && !Want::New.fits(9));
        assert!(HttpReuse::parse("sometimes").unwrap_err().contains("`sometimes`"));
    }

    #[test]
    fn max_reuse_and_pool_max_conn_bound_reuse() {
        let o = |max_reuse, pool_max_conn| ServerOpts { max_reuse, pool_max_conn, ..Default::default() };
        assert!(o(None, None).reusable(1000));
        assert!(!o(Some(0), None).reusable(1), "max-reuse 0: never reused");
        assert!(o(Some(2), None).reusable(2) && !o(Some(2), None).reusable(3));
        assert!(!o(None, Some(0)).reusable(1), "pool-max-conn 0: no idle connection kept");
    }

    #[test]
    fn dynamic_limit_is_haproxys_formula() {
        // maxconn 100, minconn 10, fullconn 1000.
        assert_eq!(dynamic_maxconn(100, 10, 1000, 0), 10);
        assert_eq!(dynamic_maxconn(100, 10, 1000, 50), 10);
        assert_eq!(dynamic_maxconn(100, 10, 1000, 500), 50);
        assert_eq!(dynamic_maxconn(100, 10, 1000, 1000), 100);
        assert_eq!(dynamic_maxconn(100, 10, 1000, 5000), 100);
        assert_eq!(dynamic_maxconn(100, 0, 1000, 0), 100, "no minconn: static");
        assert_eq!(dynamic_maxconn(0, 10, 1000, 0), 0, "no maxconn: no limit");
        assert_eq!(dynamic_maxconn(100, 10, 0, 0), 100, "fullconn 0: always full");
        assert_eq!(default_fullconn(2000 + 1000), 300);
        assert_eq!(default_fullconn(5), 1);
    }

    #[test]
    fn maxqueue_bounds_waiting_requests() {
        assert!(queue_has_room(1000, None));
        assert!(queue_has_room(1, Some(2)) && !queue_has_room(2, Some(2)));
        assert!(!queue_has_room(0, Some(0)));
    }
}
