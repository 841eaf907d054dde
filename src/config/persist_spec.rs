//! A backend's persistence settings as validation builds them into the snapshot: the cookie,
//! the stick table and rules (`appsession` included), and the servers' keys. Pure data and
//! their parsing; `persist` runs them against requests and responses.

use std::time::Duration;

/// HAProxy's cookie modes; `Passive` (no mode) only reads a cookie the application sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    Passive,
    Insert,
    Rewrite,
    Prefix,
}

/// A backend's `cookie NAME [mode] [options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    pub name: String,
    pub mode: CookieMode,
    pub indirect: bool,
    pub nocache: bool,
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domain: Option<String>,
    pub maxidle: Option<Duration>,
    pub maxlife: Option<Duration>,
    /// The `attr` values joined by `"; "`, as HAProxy appends them; empty without any.
    pub attrs: String,
    /// `dynamic` with its key: servers without `cookie` get [`dynamic_cookie`]'s value.
    pub dynamic_key: Option<String>,
}

/// HAProxy's dynamic cookie of a server: XXH64 (seed 0) of the key, the address's bytes (4 or
/// 16, network order) and the port as a big-endian 32-bit number, printed as 16 hex digits.
pub fn dynamic_cookie(key: &str, addr: std::net::SocketAddr) -> String {
    let mut buf = key.as_bytes().to_vec();
    match addr.ip() {
        std::net::IpAddr::V4(ip) => buf.extend_from_slice(&ip.octets()),
        std::net::IpAddr::V6(ip) => buf.extend_from_slice(&ip.octets()),
    }
    buf.extend_from_slice(&u32::from(addr.port()).to_be_bytes());
    format!("{:016x}", xxhash_rust::xxh64::xxh64(&buf, 0))
}

impl CookieSpec {
    pub fn new(name: &str, mode: CookieMode) -> Self {
        Self {
            name: name.to_string(),
            mode,
            indirect: false,
            nocache: false,
            preserve: false,
            httponly: false,
            secure: false,
            domain: None,
            maxidle: None,
            maxlife: None,
            attrs: String::new(),
            dynamic_key: None,
        }
    }
}

/// A backend's stick table and rules (also what `appsession` becomes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickSpec {
    pub table: TableSpec,
    pub rules: Vec<Rule>,
}

/// One server as persistence knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// The server's `cookie` value.
    pub cookie: Option<String>,
    /// Stored as `server_key`: entries follow the server by name across reloads that reorder
    /// servers.
    pub name: String,
    /// HAProxy's numeric server id (its position, from 1), stored as `server_id`.
    pub num: i32,
}

/// A backend's persistence settings; `servers` is in the backend's server order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub cookie: Option<CookieSpec>,
    pub stick: Option<StickSpec>,
    pub servers: Vec<ServerKey>,
}

/// The table's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ip,
    Integer,
    /// Keys longer than `len` bytes are cut (HAProxy's `type string len N`).
    String {
        len: usize,
    },
}

/// HAProxy's default `len` for string tables.
pub const DEFAULT_STRING_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    pub key: KeyType,
    pub size: usize,
    pub expire: Option<Duration>,
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// The client's address.
    Src,
    /// `cookie(NAME)` / `req.cook(NAME)`.
    ReqCookie(String),
    /// `hdr(NAME)` / `req.hdr(NAME)`: the last value (after the last comma).
    ReqHdr(String),
    /// `url_param(NAME)` / `urlp(NAME)`: from the query string.
    UrlParam(String),
    /// `res.cook(NAME)` / `set-cookie(NAME)`: from the server's `Set-Cookie`.
    ResCookie(String),
    /// `res.hdr(NAME)` / `shdr(NAME)`.
    ResHdr(String),
    /// `appsession`: the session id in a request cookie, a `;NAME=` path parameter (matched
    /// case-insensitively, as servlet containers write `;jsessionid=`), or a `NAME=` query parameter.
    SessionId(String),
    /// Any other sample expression (`req.hdr(x-user),lower`, `src,ipmask(24)`, `var(txn.k)`),
    /// evaluated over the stream by the proxy.
    Expr(StickExpr),
}

/// A stick rule's sample expression, parsed once; two are the same when written the same (what
/// a reload compares).
#[derive(Debug, Clone)]
pub struct StickExpr {
    pub text: String,
    pub expr: std::sync::Arc<crate::sample::SampleExpr>,
    /// It reads the response (`res.hdr`, `status`): only `store-response` can use it.
    pub on_response: bool,
}

impl PartialEq for StickExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for StickExpr {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(
        "unknown fetch (expected src, cookie(NAME), req.cook(NAME), hdr(NAME), req.hdr(NAME), url_param(NAME), urlp(NAME), res.cook(NAME), set-cookie(NAME), res.hdr(NAME) or shdr(NAME))"
    )]
    Unknown,
    #[error("{0}() needs a name between the parentheses")]
    MissingName(String),
}

impl Fetch {
    pub fn parse(text: &str) -> Result<Fetch, FetchError> {
        let t = text.trim();
        if t == "src" {
            return Ok(Fetch::Src);
        }
        let Some((func, rest)) = t.split_once('(') else {
            return Err(FetchError::Unknown);
        };
        let Some(arg) = rest.strip_suffix(')') else {
            return Err(FetchError::Unknown);
        };
        let arg = arg.trim();
        let make: fn(String) -> Fetch = match func.trim() {
            "cookie" | "req.cook" => Fetch::ReqCookie,
            "hdr" | "req.hdr" => Fetch::ReqHdr,
            "url_param" | "urlp" => Fetch::UrlParam,
            "res.cook" | "set-cookie" => Fetch::ResCookie,
            "res.hdr" | "shdr" => Fetch::ResHdr,
            _ => return Err(FetchError::Unknown),
        };
        if arg.is_empty() {
            return Err(FetchError::MissingName(func.trim().to_string()));
        }
        Ok(make(arg.to_string()))
    }

    /// Reads the response (as opposed to the request).
    pub fn on_response(&self) -> bool {
        match self {
            Fetch::Expr(e) => e.on_response,
            f => matches!(f, Fetch::ResCookie(_) | Fetch::ResHdr(_)),
        }
    }

    /// A client address: only ip and string tables can hold it.
    pub fn is_address(&self) -> bool {
        match self {
            Fetch::Expr(e) => matches!(e.expr.fetch, crate::sample::Fetch::Src) && e.expr.convs.is_empty(),
            f => matches!(f, Fetch::Src),
        }
    }
}

/// What a rule does with its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `stick on`: match, and store on the request side.
    On,
    Match,
    StoreRequest,
    StoreResponse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    pub fetch: Fetch,
    /// `table T`: the table this rule reads and writes (None: the backend's own).
    pub table: Option<String>,
    /// `if`/`unless`: the rule applies only when this holds.
    pub cond: Option<StickCond>,
}

/// A rule's condition; two are the same when written the same (what a reload compares).
#[derive(Debug, Clone)]
pub struct StickCond {
    pub text: String,
    pub cond: crate::routing::Condition,
}

impl PartialEq for StickCond {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for StickCond {}

impl Rule {
    /// A rule on the backend's own table, without a condition.
    pub fn new(kind: RuleKind, fetch: Fetch) -> Rule {
        Rule { kind, fetch, table: None, cond: None }
    }

    pub fn matches(&self) -> bool {
        matches!(self.kind, RuleKind::On | RuleKind::Match)
    }
    pub fn stores_request(&self) -> bool {
        matches!(self.kind, RuleKind::On | RuleKind::StoreRequest)
    }
}

/// HAProxy 1.4's `appsession COOKIE len N timeout T [request-learn]` as a table and rules: learn
/// the server from the application's `Set-Cookie`, match the id in a cookie or the URL, and with
/// `request_learn` also learn ids clients present.
pub fn appsession_rules(cookie: &str, request_learn: bool) -> Vec<Rule> {
    let mut v = vec![
        Rule::new(RuleKind::Match, Fetch::SessionId(cookie.to_string())),
        Rule::new(RuleKind::StoreResponse, Fetch::ResCookie(cookie.to_string())),
    ];
    if request_learn {
        v.push(Rule::new(RuleKind::StoreRequest, Fetch::SessionId(cookie.to_string())));
    }
    v
}
