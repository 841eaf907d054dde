//! Session persistence: HAProxy's `cookie` (insert, rewrite, prefix, passive), stick tables
//! (`stick on|match|store-request|store-response`) and the old `appsession`, as pure functions of
//! the request, the response, the servers' usability and the time, which the caller passes in.
//!
//! ```text
//! request ─► Spec::on_request ─► Decision { server, ... } ─► (balance when None) ─► server i
//!         ─► Spec::strip_request (indirect: drop the cookie; prefix: drop "SRV~")
//! response ─► Spec::on_response(decision, i): learn stick entries, rewrite/prefix/drop the
//!             server's cookie, insert ours (+ Cache-Control: private with nocache)
//! ```
//!
//! Precedence follows HAProxy: a `use-server` rule wins (see [`rules`]), then a valid cookie,
//! then the first matching stick rule, then the balancer. A designated server is honoured while it is up, even when draining; a DOWN or MAINT
//! server is ignored and the request is balanced (and re-learned, and the cookie re-set).

pub mod cookie;
pub mod rules;
pub mod stick;
pub mod table;

pub use crate::config::persist_spec::{CookieMode, CookieSpec, ServerKey, Spec, StickCond, StickSpec};
pub use stick::{Fetch, KeyType, NoStream, ReqView, Rule, RuleKind, Stream, TableSpec};
pub use table::{StickKey, StickTable, Stuck};

use crate::stktable::{SharedTable, Table, TableDef};
use cookie::Edit;
use http::{HeaderMap, HeaderValue, header};
use std::time::{Duration, Instant};

/// The table definition stick rules imply when the backend's table is not in the registry (an
/// `appsession` table): keys of the rule's type, `server_id` and `server_key`.
pub fn implied_def(name: &str, t: TableSpec) -> TableDef {
    let key = match t.key {
        KeyType::Ip => crate::stktable::KeyKind::Ip,
        KeyType::Integer => crate::stktable::KeyKind::Integer,
        KeyType::String { len } => crate::stktable::KeyKind::String { len },
    };
    TableDef {
        name: name.to_string(),
        key,
        size: t.size,
        expire: t.expire,
        nopurge: false,
        peers: None,
        store: crate::stktable::def::with_server_key(Vec::new()),
    }
}

/// A backend's stick table as its rules use it; the table is shared with the runtime API.
#[derive(Debug)]
pub struct Runtime {
    spec: Option<TableSpec>,
    table: Option<SharedTable>,
    epoch: Instant,
    /// Tables rules name with `table T`, by name.
    others: Vec<(String, SharedTable)>,
}

/// The key type a stick rule casts its sample to for a table of `kind`.
fn key_type(kind: crate::stktable::KeyKind) -> KeyType {
    use crate::stktable::KeyKind;
    match kind {
        KeyKind::Ip | KeyKind::Ipv6 => KeyType::Ip,
        KeyKind::Integer => KeyType::Integer,
        KeyKind::String { len } | KeyKind::Binary { len } => KeyType::String { len },
    }
}

impl Runtime {
    /// A table of its own (tests, `appsession`).
    pub fn new(spec: Option<TableSpec>, epoch: Instant) -> Self {
        let table = spec.map(|t| crate::stktable::registry::shared(Table::new(implied_def("", t))));
        Self { spec, table, epoch, others: Vec::new() }
    }

    /// Rules over a registry table; `epoch` is the registry's clock origin.
    pub fn shared(spec: TableSpec, table: SharedTable, epoch: Instant) -> Self {
        Self { spec: Some(spec), table: Some(table), epoch, others: Vec::new() }
    }

    /// Adds a table that rules name with `table NAME`.
    pub fn with_other(mut self, name: &str, table: SharedTable) -> Self {
        self.others.push((name.to_string(), table));
        self
    }

    /// Adds every table `st`'s rules name, from the snapshot's tables (validation made sure
    /// they exist).
    pub fn with_named_tables(mut self, st: &StickSpec, tables: &crate::stktable::registry::Tables) -> Self {
        for name in st.rules.iter().filter_map(|r| r.table.as_deref()) {
            if let Some(t) = tables.find(name)
                && !self.others.iter().any(|(n, _)| n == name)
            {
                self = self.with_other(name, t.clone());
            }
        }
        self
    }

    pub fn table_spec(&self) -> Option<TableSpec> {
        self.spec
    }

    fn with_table<R>(&self, f: impl FnOnce(&mut StickTable<'_>) -> R) -> Option<R> {
        self.with_rule_table(None, f)
    }

    /// The table a rule uses: its `table T`, else the backend's own.
    fn with_rule_table<R>(&self, name: Option<&str>, f: impl FnOnce(&mut StickTable<'_>) -> R) -> Option<R> {
        let m = match name {
            None => self.table.as_ref()?,
            Some(n) => &self.others.iter().find(|(o, _)| o == n)?.1,
        };
        let mut t = crate::stktable::registry::lock(m);
        Some(f(&mut StickTable { t: &mut t, epoch: self.epoch }))
    }

    /// Entries in the table (0 without one).
    pub fn len(&self) -> usize {
        self.with_table(|t| t.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The current time, both ways persistence needs it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// For table expiry.
    pub now: Instant,
    /// Unix seconds, for cookie dates (maxidle, maxlife).
    pub unix: u64,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            now: Instant::now(),
            unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// What the request carried (HAProxy's `--VN`-style cookie flags).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum CookieState {
    #[default]
    Absent,
    /// Named a server that can take the request.
    Valid,
    /// Named no known server, or was empty.
    Invalid,
    /// Named a server that is DOWN or in MAINT.
    Down,
    /// Older than `maxidle` since last seen.
    Expired,
    /// Older than `maxlife` since first seen.
    Old,
}

/// What the request phase found; the response phase completes it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The server persistence designates, usable now; None lets the balancer choose.
    pub server: Option<usize>,
    pub cookie: CookieState,
    cookie_server: Option<usize>,
    last_seen: Option<u64>,
    first_seen: Option<u64>,
    /// The first `store-request` sample and its rule's table, stored once the server is known.
    store: Option<(Option<String>, StickKey)>,
    /// The request's method is neither GET nor HEAD: no cache keeps the response, so `nocache`
    /// has nothing to mark.
    pub uncacheable_method: bool,
    /// What `force-persist`, `ignore-persist` and `use-server` decided.
    pub pre: rules::Pre,
}

/// The server persistence designates, as the queue takes it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Prefer {
    pub server: Option<usize>,
    /// `force-persist`: taken even when DOWN or in MAINT, and never redispatched.
    pub forced: bool,
}

impl Decision {
    /// The decision of the rules alone (a backend without cookie or stick table).
    pub fn from_pre(pre: rules::Pre) -> Decision {
        Decision { server: pre.server, pre, ..Decision::default() }
    }

    /// `force-persist` held: the designated server is taken even when DOWN or in MAINT, and the
    /// last retry does not redispatch.
    pub fn forced(&self) -> bool {
        self.pre.mode == rules::PersistMode::Force
    }

    /// The server to prefer when getting a slot, and whether it is forced.
    pub fn prefer(&self) -> Prefer {
        Prefer { server: self.server, forced: self.forced() }
    }

    /// `ignore-persist` held: the persistence cookie assigns no server, and the response's
    /// cookie is neither rewritten nor inserted.
    pub fn ignores_cookie(&self) -> bool {
        self.pre.mode == rules::PersistMode::Ignore
    }
}

impl Spec {
    pub fn is_empty(&self) -> bool {
        self.cookie.is_none() && self.stick.is_none()
    }

    /// The server an entry names: by name when it has one, else by number.
    fn index_of(&self, stuck: &Stuck) -> Option<usize> {
        match &stuck.name {
            Some(n) => self.servers.iter().position(|s| &s.name == n),
            None => self.servers.iter().position(|s| s.num == stuck.num),
        }
    }

    /// Finds the server the request should stick to. `usable(i)`: server i is up and not in
    /// maintenance (draining is fine).
    pub fn on_request(
        &self,
        req: &ReqView<'_>,
        rt: Option<&Runtime>,
        usable: &dyn Fn(usize) -> bool,
        clock: Clock,
    ) -> Decision {
        self.on_request_if(req, rt, usable, clock, &NoStream)
    }

    /// [`Spec::on_request`] where a rule with a condition applies only when it holds on
    /// `stream`, which also evaluates the rules' sample expressions.
    pub fn on_request_if(
        &self,
        req: &ReqView<'_>,
        rt: Option<&Runtime>,
        usable: &dyn Fn(usize) -> bool,
        clock: Clock,
        stream: &dyn Stream,
    ) -> Decision {
        self.on_request_with(req, rt, usable, clock, stream, rules::Pre::default())
    }

    /// [`Spec::on_request_if`] after the `force-persist`/`ignore-persist`/`use-server` rules:
    /// a server `use-server` assigned is kept (the cookie and stick matches then assign none),
    /// `ignore-persist` skips the cookie. With `force-persist` the caller's `usable` says yes
    /// to DOWN servers too (see [`rules::PersistMode::Force`]).
    pub fn on_request_with(
        &self,
        req: &ReqView<'_>,
        rt: Option<&Runtime>,
        usable: &dyn Fn(usize) -> bool,
        clock: Clock,
        stream: &dyn Stream,
        pre: rules::Pre,
    ) -> Decision {
        let mut d = Decision::from_pre(pre);
        if let Some(c) = &self.cookie {
            self.read_cookie(c, req.headers, usable, clock, &mut d);
        }
        let (Some(st), Some(rt)) = (&self.stick, rt) else { return d };
        for rule in st.rules.iter().filter(|r| !r.fetch.on_response()) {
            if rule.cond.as_ref().is_some_and(|c| !stream.holds(c)) {
                continue;
            }
            let value = match &rule.fetch {
                Fetch::Expr(e) => stream.sample(e).map(stick::Value::Sample),
                f => f.request_value(req),
            };
            let Some(value) = value else { continue };
            rt.with_rule_table(rule.table.as_deref(), |t| {
                let Some(key) = value.key(key_type(t.t.kind())) else { return };
                if rule.matches()
                    && let Some(stuck) = t.get(&key, clock.now)
                    && d.server.is_none()
                    && let Some(i) = self.index_of(&stuck)
                    && usable(i)
                {
                    d.server = Some(i);
                }
                if rule.stores_request() && d.store.is_none() {
                    d.store = Some((rule.table.clone(), key));
                }
            });
        }
        d
    }

    fn read_cookie(
        &self,
        c: &CookieSpec,
        headers: &HeaderMap,
        usable: &dyn Fn(usize) -> bool,
        clock: Clock,
        d: &mut Decision,
    ) {
        let Some(raw) = cookie::request_cookie(headers, &c.name) else {
            return;
        };
        let v = cookie::split_value(raw, c.mode == CookieMode::Prefix);
        let now = clock.unix as i64;
        let (last, first) = (v.last_seen.map(|x| x as i64), v.first_seen.map(|x| x as i64));
        let day = 86_400;
        let too_old = |date: Option<i64>, limit: Option<Duration>| match (date, limit) {
            (Some(t), Some(l)) => now - t > l.as_secs() as i64 || t - now > day,
            _ => false,
        };
        if too_old(first, c.maxlife) {
            d.cookie = CookieState::Old;
            return;
        }
        if too_old(last, c.maxidle) {
            d.cookie = CookieState::Expired;
            return;
        }
        d.last_seen = v.last_seen;
        d.first_seen = v.first_seen;
        d.cookie = CookieState::Invalid;
        if v.server.is_empty() {
            return;
        }
        // A server `use-server` assigned keeps the request, and `ignore-persist` ignores the
        // cookie: it assigns none (HAProxy still reads it, and strips it as usual).
        if d.server.is_some() || d.ignores_cookie() {
            return;
        }
        // The first usable server with this cookie: several may share one (e.g. a backup
        // dedicated to a server).
        for (i, s) in self.servers.iter().enumerate() {
            if s.cookie.as_deref() != Some(v.server) {
                continue;
            }
            if usable(i) {
                d.cookie = CookieState::Valid;
                d.server = Some(i);
                d.cookie_server = Some(i);
                return;
            }
            d.cookie = CookieState::Down;
        }
    }

    /// Hides persistence from the server: insert+indirect drops the cookie, prefix mode gives
    /// back the application's own value.
    /// (`ignore-persist` changes nothing here: HAProxy strips the cookie all the same.)
    pub fn strip_request(&self, headers: &mut HeaderMap) {
        let Some(c) = &self.cookie else { return };
        let drop = c.mode == CookieMode::Insert && c.indirect;
        if !drop && c.mode != CookieMode::Prefix {
            return;
        }
        cookie::edit_request_cookies(headers, |n, v| {
            if n != c.name {
                Edit::Keep
            } else if drop {
                Edit::Drop
            } else {
                match v.split_once(cookie::PREFIX_DELIM) {
                    Some((_, app)) => Edit::Value(app.to_string()),
                    None => Edit::Keep,
                }
            }
        });
    }

    /// Completes persistence once server `server` has answered with `status`: learns stick
    /// entries, rewrites the server's cookie and inserts ours.
    pub fn on_response(
        &self,
        d: &Decision,
        server: usize,
        status: u16,
        headers: &mut HeaderMap,
        rt: Option<&Runtime>,
        clock: Clock,
    ) {
        self.on_response_if(d, server, status, headers, rt, clock, &NoStream);
    }

    /// [`Spec::on_response`] where a `store-response` rule with a condition applies only when
    /// it holds on `stream`, which also evaluates the rules' sample expressions.
    #[allow(clippy::too_many_arguments)]
    pub fn on_response_if(
        &self,
        d: &Decision,
        server: usize,
        status: u16,
        headers: &mut HeaderMap,
        rt: Option<&Runtime>,
        clock: Clock,
        stream: &dyn Stream,
    ) {
        let Some(srv) = self.servers.get(server) else {
            return;
        };
        if let (Some(st), Some(rt)) = (&self.stick, rt) {
            if let Some((table, k)) = &d.store {
                rt.with_rule_table(table.as_deref(), |t| t.set(k.clone(), srv.num, &srv.name, clock.now));
            }
            // The first store-response rule that applies and finds its sample.
            for r in st.rules.iter().filter(|r| r.kind == RuleKind::StoreResponse) {
                if r.cond.as_ref().is_some_and(|c| !stream.holds(c)) {
                    continue;
                }
                let v = match &r.fetch {
                    Fetch::Expr(e) => stream.sample(e).map(stick::Value::Sample),
                    f => f.response_value(headers),
                };
                let Some(v) = v else { continue };
                let stored = rt.with_rule_table(r.table.as_deref(), |t| {
                    let key = v.key(key_type(t.t.kind()))?;
                    t.set(key, srv.num, &srv.name, clock.now);
                    Some(())
                });
                if stored.flatten().is_some() {
                    break;
                }
            }
        }
        // `ignore-persist`: the server's cookie is left alone and none is inserted.
        if let Some(c) = &self.cookie
            && !d.ignores_cookie()
        {
            // As HAProxy's SF_DIRECT: the server came from the cookie or a `use-server` rule.
            let direct = d.cookie_server == Some(server) || d.pre.server == Some(server);
            self.server_cookie(c, d, direct, srv, status, headers, clock);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn server_cookie(
        &self,
        c: &CookieSpec,
        d: &Decision,
        direct: bool,
        srv: &ServerKey,
        status: u16,
        headers: &mut HeaderMap,
        clock: Clock,
    ) {
        let found = cookie::edit_set_cookies(headers, &c.name, |sc| {
            if c.preserve {
                Edit::Keep
            } else if c.mode == CookieMode::Insert || (direct && c.indirect) {
                Edit::Drop
            } else {
                match (&srv.cookie, c.mode) {
                    (Some(v), CookieMode::Rewrite) => Edit::Value(v.clone()),
                    (Some(v), CookieMode::Prefix) => Edit::Value(format!("{v}{}{}", cookie::PREFIX_DELIM, sc.value)),
                    _ => Edit::Keep,
                }
            }
        });
        if c.mode != CookieMode::Insert || (found && c.preserve) {
            return;
        }
        let now = clock.unix;
        let dated = c.maxidle.is_some() || c.maxlife.is_some();
        let needed = !direct
            || ((c.maxidle.is_some() || d.last_seen.is_some()) && d.last_seen.is_none_or(|l| l < now))
            || (c.maxlife.is_some() && d.first_seen.is_none())
            || (c.maxlife.is_none() && d.first_seen.is_some());
        if !needed {
            return;
        }
        let dates = dated.then(|| (now, c.maxlife.map(|_| d.first_seen.unwrap_or(now))));
        let attrs = cookie::InsertAttrs {
            domain: c.domain.as_deref(),
            httponly: c.httponly,
            secure: c.secure,
            extra: &c.attrs,
        };
        let value = cookie::insert_value(&c.name, srv.cookie.as_deref(), dates, &attrs);
        let cache_private = c.nocache && !d.uncacheable_method && cookie::cacheable(status, headers);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, v);
        }
        if cache_private {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }
}

/// TCP mode's hook before choosing a server, once the backend's `use-server`, `force-persist`
/// and `ignore-persist` rules decided `pre`: only `src` stick rules apply (validation refuses
/// others). `option_persist`: a stick entry naming a DOWN server still designates it.
pub fn tcp_request_hook(
    spec: &Spec,
    rt: &crate::state::BackendRt,
    src: std::net::IpAddr,
    pre: rules::Pre,
    option_persist: bool,
) -> Decision {
    if spec.is_empty() {
        return Decision::from_pre(pre);
    }
    let headers = HeaderMap::new();
    let view = ReqView { headers: &headers, uri: None, src: Some(src) };
    let any_state = option_persist || pre.mode == rules::PersistMode::Force;
    let usable = |i: usize| rt.server_takes(i, any_state);
    spec.on_request_with(&view, rt.persist.as_deref(), &usable, Clock::system(), &Src(src), pre)
}

/// TCP mode's stream as its stick rules see it: the client's address (validation leaves `src`
/// as the only fetch there; an integer table reads it as an expression, to cast it).
struct Src(std::net::IpAddr);

impl Stream for Src {
    fn holds(&self, _: &StickCond) -> bool {
        true
    }
    fn sample(&self, e: &stick::StickExpr) -> Option<crate::sample::Value> {
        use crate::sample::Value as S;
        let plain_src = matches!(e.expr.fetch, crate::sample::Fetch::Src) && e.expr.convs.is_empty();
        plain_src.then_some(match self.0 {
            std::net::IpAddr::V4(a) => S::Ipv4(a),
            std::net::IpAddr::V6(a) => S::Ipv6(a),
        })
    }
}

/// TCP mode's hook once connected to server `server`: stores the learned entries.
/// `src`: the client, which a `store-response src` rule stores.
pub fn tcp_connected_hook(
    spec: &Spec,
    rt: &crate::state::BackendRt,
    d: &Decision,
    server: usize,
    src: std::net::IpAddr,
) {
    if spec.is_empty() {
        return;
    }
    let mut none = HeaderMap::new();
    spec.on_response_if(d, server, 0, &mut none, rt.persist.as_deref(), Clock::system(), &Src(src));
}

#[cfg(test)]
mod tests;
