//! HAProxy's small-object cache: `cache NAME` sections, `http-request cache-use` and
//! `http-response cache-store`. Objects live in memory, bounded by `total-max-size` (least
//! recently used out first); a reload starts empty, as a new HAProxy process does.
//!
//! The policy (what may be served or stored) is pure, in [`policy`]; [`Store`] takes the clock
//! as an argument; only the hooks the proxy calls read the system clock.

pub mod policy;

use crate::config::error::{FieldPath, Problem};
use crate::config::model::CacheDef;
use crate::proxy::body::{BoxError, ProxyBody, empty, full};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

/// What an object costs beyond its bytes (entry, key, bookkeeping), so many tiny objects cannot
/// overrun the budget.
const OVERHEAD: u64 = 128;

/// One `cache` section, with its store.
pub struct Cache {
    pub name: String,
    /// Bytes for all objects.
    pub total: u64,
    pub limits: policy::Limits,
    pub max_secondary: u32,
    store: Mutex<Store>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("name", &self.name).field("total", &self.total).finish_non_exhaustive()
    }
}

/// A stored response.
#[derive(Debug, Clone)]
pub struct Object {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Seconds since the epoch when it was stored, and until when it is fresh.
    pub stored: u64,
    pub expires: u64,
    /// The `Age` the server reported.
    pub age: u64,
    pub modified: SystemTime,
    /// What a hit answers with: `headers` and a last `Age` field whose value each hit replaces
    /// in place (see [`Object::seal`]).
    served: HeaderMap,
}

impl Object {
    /// Makes the headers hits are answered with, once when the object is stored: a hit then
    /// clones them and sets its `Age` without growing the copy (an added field would reallocate
    /// the clone, which has no room to spare).
    fn seal(&mut self) {
        self.served = self.headers.clone();
        self.served.insert(header::AGE, HeaderValue::from_static("0"));
    }

    fn size(&self, key: &str) -> u64 {
        let heads: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
        (self.body.len() + heads + key.len()) as u64 + OVERHEAD
    }
}

/// The store's key: the primary key (host and URI), then the secondary key (the varied request
/// headers) after a NUL when there is one, so the common case looks up by the URI alone.
fn full_key(primary: &str, secondary: &str) -> String {
    if secondary.is_empty() { primary.to_string() } else { format!("{primary}\0{secondary}") }
}

/// Objects by key, least recently used first out, within a byte budget.
pub struct Store {
    lru: lru::LruCache<String, (Arc<Object>, u64)>,
    /// Per primary key: the headers its responses vary on and its stored secondary keys.
    primaries: HashMap<String, (Vec<HeaderName>, Vec<String>)>,
    used: u64,
}

impl Store {
    fn new() -> Store {
        Store { lru: lru::LruCache::unbounded(), primaries: HashMap::new(), used: 0 }
    }

    fn forget(&mut self, primary: &str, secondary: &str) {
        if let Some((_, size)) = self.lru.pop(full_key(primary, secondary).as_str()) {
            self.used -= size;
        }
        if let Some((_, secs)) = self.primaries.get_mut(primary) {
            secs.retain(|s| s != secondary);
            if secs.is_empty() {
                self.primaries.remove(primary);
            }
        }
    }

    /// The fresh object for a request, if any; an expired one is dropped on the way.
    pub fn get(&mut self, primary: &str, req: &HeaderMap, now: u64) -> Option<Arc<Object>> {
        let (vary, secs) = self.primaries.get(primary)?;
        let mut secondary = policy::secondary(vary, req);
        if vary.contains(&header::ACCEPT_ENCODING) {
            // The first variant whose coding the request accepts.
            let accepted = policy::accepted_codings(req)?;
            secondary = secs.iter().find(|s| policy::variant_fits(s, &secondary, accepted))?.clone();
        }
        let hit = if secondary.is_empty() {
            self.lru.get(primary)
        } else {
            self.lru.get(full_key(primary, &secondary).as_str())
        };
        let obj = Arc::clone(&hit?.0);
        if obj.expires <= now {
            self.forget(primary, &secondary);
            return None;
        }
        Some(obj)
    }

    /// Stores an object; false when it does not fit or its URL has `max` variants already.
    pub fn put(
        &mut self,
        primary: String,
        vary: Vec<HeaderName>,
        req: &HeaderMap,
        obj: Object,
        total: u64,
        max: u32,
    ) -> bool {
        let mut secondary = policy::secondary(&vary, req);
        if vary.contains(&header::ACCEPT_ENCODING) {
            // Keyed on the response's own coding; an unknown one, or a request HAProxy cannot
            // key (16 codings or more), is not stored.
            let (Some(codings), Some(_)) = (policy::response_codings(&obj.headers), policy::accepted_codings(req))
            else {
                return false;
            };
            secondary.push_str(&policy::coding_key(codings));
        }
        let key = full_key(&primary, &secondary);
        let size = obj.size(&key);
        if size > total {
            return false;
        }
        self.forget(&primary, &secondary);
        if let Some((old_vary, secs)) = self.primaries.get(&primary) {
            if *old_vary != vary {
                // The server changed what it varies on: the old variants can no longer be found.
                for s in secs.clone() {
                    self.forget(&primary, &s);
                }
            } else if secs.len() >= max as usize {
                // HAProxy's `max-secondary-entries`: no more variants of this URL.
                return false;
            }
        }
        while self.used + size > total {
            let Some(k) = self.lru.peek_lru().map(|(k, _)| k.clone()) else { break };
            let (p, s) = k.split_once('\0').unwrap_or((&k, ""));
            let (p, s) = (p.to_string(), s.to_string());
            self.forget(&p, &s);
        }
        let entry = self.primaries.entry(primary).or_insert_with(|| (vary, Vec::new()));
        entry.1.push(secondary);
        self.used += size;
        self.lru.put(key, (Arc::new(obj), size));
        true
    }

    /// Drops every variant of a URL (a successful unsafe request changed it, RFC 9111 §4.4).
    pub fn invalidate(&mut self, primary: &str) {
        let secs = self.primaries.get(primary).map(|p| p.1.clone()).unwrap_or_default();
        for s in secs {
            self.forget(primary, &s);
        }
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
    pub fn used(&self) -> u64 {
        self.used
    }
}

impl Cache {
    pub fn new(name: &str, total: u64, limits: policy::Limits, max_secondary: u32) -> Cache {
        Cache {
            name: name.to_string(),
            total,
            limits,
            max_secondary,
            store: Mutex::new(Store::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `show cache`: one line per cache (budget, use, hits, misses), then one per object.
    pub fn show(&self, now: SystemTime, out: &mut String) {
        use std::fmt::Write;
        let now = policy::secs(now);
        let st = self.store();
        let _ = writeln!(
            out,
            "{}: total-max-size:{} used:{} objects:{} hits:{} misses:{}",
            self.name,
            self.total,
            st.used,
            st.lru.len(),
            self.hits.load(Relaxed),
            self.misses.load(Relaxed)
        );
        for (key, (obj, size)) in st.lru.iter() {
            let (primary, secondary) = key.split_once('\0').unwrap_or((key, ""));
            let vary = if secondary.is_empty() {
                String::new()
            } else {
                format!(" vary:{}", secondary.trim().replace('\n', ";"))
            };
            let _ = writeln!(out, "\t{primary} size:{size} expire:{}{vary}", obj.expires.saturating_sub(now));
        }
    }
}

/// `show cache` for every cache section, as text and as JSON.
pub fn show_all(caches: &[Arc<Cache>], now: SystemTime) -> (String, serde_json::Value) {
    let mut text = String::new();
    let mut list = Vec::new();
    for c in caches {
        c.show(now, &mut text);
        let st = c.store();
        list.push(serde_json::json!({
            "name": c.name,
            "total_max_size": c.total,
            "used": st.used,
            "objects": st.lru.len(),
            "hits": c.hits.load(Relaxed),
            "misses": c.misses.load(Relaxed),
        }));
    }
    (text, serde_json::json!({ "caches": list }))
}

/// What `cache-use` learnt about a request, carried to `cache-store` with the response.
#[derive(Debug, Clone)]
pub struct Lookup {
    cache: Arc<Cache>,
    primary: String,
    method: Method,
    store: bool,
    /// The request headers a variant may be keyed on.
    varied: HeaderMap,
}

/// The primary key: host and URI, as HAProxy hashes them, written into `key`.
fn primary_into<B>(req: &Request<B>, key: &mut String) {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("");
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    key.clear();
    key.reserve(host.len() + pq.len());
    key.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    key.push_str(pq);
}

thread_local! {
    /// The key of the request being looked up, reused: a hit allocates nothing for it.
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// `http-request cache-use`: a stored answer for this request (200, or 304 to a matching
/// conditional request), else the request remembers what `cache-store` needs.
pub fn use_cache<B>(cache: &Arc<Cache>, req: &mut Request<B>) -> Option<Response<ProxyBody>> {
    let allowed = policy::request(req.method(), req.headers());
    let now = policy::secs(SystemTime::now());
    // A hit needs the key only for the lookup; a miss keeps a copy for `cache-store`.
    let (found, primary) = KEY.with_borrow_mut(|key| {
        primary_into(req, key);
        let found = if allowed.lookup { cache.store().get(key, req.headers(), now) } else { None };
        let primary = if found.is_none() { key.clone() } else { String::new() };
        (found, primary)
    });
    if let Some(obj) = found {
        cache.hits.fetch_add(1, Relaxed);
        let mut resp = answer(&obj, req.method() == Method::HEAD, req.headers(), now);
        resp.extensions_mut().insert(Hit);
        return Some(resp);
    }
    if allowed.lookup {
        cache.misses.fetch_add(1, Relaxed);
    }
    let mut varied = HeaderMap::new();
    for n in &policy::VARY_SUPPORTED {
        for v in req.headers().get_all(n) {
            varied.append(n.clone(), v.clone());
        }
    }
    let lookup = Lookup { cache: cache.clone(), primary, method: req.method().clone(), store: allowed.store, varied };
    req.extensions_mut().insert(lookup);
    None
}

/// Marks a response served from the cache: it still goes through compression, as HAProxy's
/// cache filter comes before its compression filter (objects are stored as the server sent
/// them, and compressed for each client that accepts it).
#[derive(Clone, Copy, Debug)]
pub struct Hit;

/// A response built from a stored object, with its `Age`.
pub fn answer(obj: &Object, head: bool, req: &HeaderMap, now: u64) -> Response<ProxyBody> {
    let age = now.saturating_sub(obj.stored) + obj.age;
    let etag = obj.headers.get(header::ETAG);
    let fresh = policy::not_modified(req, etag, obj.modified);
    let mut r = if fresh || head { Response::new(empty()) } else { Response::new(full(obj.body.clone())) };
    *r.headers_mut() = obj.served.clone();
    if fresh {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        for n in [header::CONTENT_LENGTH, header::CONTENT_TYPE, header::CONTENT_ENCODING, header::TRANSFER_ENCODING] {
            r.headers_mut().remove(n);
        }
    } else {
        *r.status_mut() = obj.status;
    }
    r.headers_mut().insert(header::AGE, age_value(age));
    r
}

thread_local! {
    /// The last `Age` value made: hits within the same second share it instead of each
    /// formatting (and allocating) their own.
    static AGE: std::cell::RefCell<(u64, HeaderValue)> =
        const { std::cell::RefCell::new((0, HeaderValue::from_static("0"))) };
}

fn age_value(age: u64) -> HeaderValue {
    AGE.with_borrow_mut(|(n, v)| {
        if *n != age {
            (*n, *v) = (age, HeaderValue::from(age));
        }
        v.clone()
    })
}

/// Moves the lookup from the request (which goes to the server) to its response.
pub fn take<B>(req: &mut Request<B>) -> Option<Lookup> {
    req.extensions_mut().remove::<Lookup>()
}

/// Sets whether the response may still be stored (a `cache-store` still drops the object of a
/// successful unsafe request either way); returns what it was, `None` without a pending store.
/// HAProxy's cache filter stores nothing of a response its frontend's compression filter
/// compresses before a backend's cache filter sees it.
pub fn allow_store<B>(resp: &mut Response<B>, allow: bool) -> Option<bool> {
    let l = resp.extensions_mut().get_mut::<Lookup>()?;
    Some(std::mem::replace(&mut l.store, allow))
}

pub fn keep<B>(resp: &mut Response<B>, lookup: Option<Lookup>) {
    if let Some(l) = lookup {
        resp.extensions_mut().insert(l);
    }
}

/// `http-response cache-store`: when the policy allows, the body is copied as it streams to the
/// client and stored once complete. Only responses to a `cache-use` of the same cache qualify.
pub fn store(cache: &Arc<Cache>, resp: &mut Response<ProxyBody>) {
    let Some(l) = resp.extensions().get::<Lookup>() else { return };
    if !Arc::ptr_eq(&l.cache, cache) {
        return;
    }
    let Some(l) = resp.extensions_mut().remove::<Lookup>() else { return };
    let unsafe_method = !matches!(l.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    if unsafe_method && (200..400).contains(&resp.status().as_u16()) {
        cache.store().invalidate(&l.primary);
        return;
    }
    if !l.store {
        return;
    }
    let now = SystemTime::now();
    let Ok(ok) = policy::response(resp.status(), resp.headers(), cache.limits, now) else { return };
    let mut headers = resp.headers().clone();
    headers.remove(header::AGE);
    let stored = policy::secs(now);
    let obj = Object {
        status: resp.status(),
        modified: policy::last_modified(&headers, now),
        headers,
        body: Bytes::new(),
        stored,
        expires: stored + ok.ttl,
        age: ok.age,
        served: HeaderMap::new(),
    };
    let body = std::mem::replace(resp.body_mut(), empty());
    let mut tee = Tee { inner: body, buf: Some(BytesMut::new()), obj: Some(obj), vary: ok.vary, lookup: l };
    if tee.inner.is_end_stream() {
        // An empty body is never polled.
        tee.commit();
    }
    use http_body_util::BodyExt;
    *resp.body_mut() = tee.boxed_unsync();
}

/// Passes a body through and keeps a copy, stored when the body ends whole and small enough.
struct Tee {
    inner: ProxyBody,
    /// None once the body outgrew `max-object-size`.
    buf: Option<BytesMut>,
    obj: Option<Object>,
    vary: Vec<HeaderName>,
    lookup: Lookup,
}

impl Tee {
    /// Stores the copy once the whole body passed.
    fn commit(&mut self) {
        if let (Some(buf), Some(mut obj)) = (self.buf.take(), self.obj.take()) {
            obj.body = buf.freeze();
            obj.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(obj.body.len()));
            obj.seal();
            let c = &self.lookup.cache;
            let vary = std::mem::take(&mut self.vary);
            let primary = std::mem::take(&mut self.lookup.primary);
            c.store().put(primary, vary, &self.lookup.varied, obj, c.total, c.max_secondary);
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => match (f.data_ref(), this.buf.as_mut()) {
                (Some(d), Some(buf)) if (buf.len() + d.len()) as u64 <= this.lookup.cache.limits.max_object => {
                    buf.extend_from_slice(d);
                    // With a known length the client side stops polling after the last byte:
                    // the end is seen here, not as a `None` frame.
                    if this.inner.is_end_stream() {
                        this.commit();
                    }
                }
                (Some(_), _) => this.buf = None,
                // Trailers are not kept: the stored object would not be the same response.
                (None, _) => this.buf = None,
            },
            Some(Err(_)) => this.buf = None,
            None => this.commit(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// HAProxy's limit on `total-max-size`, in megabytes.
const MAX_TOTAL_MB: u64 = 4095;

/// Validates the `[[cache]]` sections; errors are located at `cache[i].field`.
pub fn build(defs: &[CacheDef], problems: &mut Vec<Problem>) -> Vec<Arc<Cache>> {
    let mut out: Vec<Arc<Cache>> = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("cache").index(i);
        let mut err = |k: &str, msg: &str, v: Option<String>| {
            let pr = Problem::new(p.key(k), msg);
            problems.push(match v {
                Some(v) => pr.with_value(v),
                None => pr,
            });
        };
        if d.name.is_empty() {
            err("name", "missing cache name", None);
            continue;
        }
        if out.iter().any(|c| c.name == d.name) {
            err("name", "duplicate cache name", Some(d.name.clone()));
            continue;
        }
        let Some(mb) = d.total_max_size else {
            err("total_max_size", "size not specified (megabytes, 1 to 4095)", None);
            continue;
        };
        if !(1..=MAX_TOTAL_MB).contains(&mb) {
            err("total_max_size", "must be 1 to 4095 (megabytes)", Some(mb.to_string()));
            continue;
        }
        let total = mb << 20;
        let max_object = d.max_object_size.unwrap_or(total / 256);
        if max_object == 0 || max_object > total / 2 {
            err("max_object_size", "must be 1 byte up to half of total_max_size", Some(max_object.to_string()));
            continue;
        }
        let max_age = d.max_age.unwrap_or(60);
        let limits = policy::Limits { max_age, max_object, process_vary: d.process_vary.unwrap_or(false) };
        let max_secondary = d.max_secondary_entries.unwrap_or(10);
        if max_secondary == 0 {
            err("max_secondary_entries", "must be at least 1", Some("0".into()));
            continue;
        }
        out.push(Arc::new(Cache::new(&d.name, total, limits, max_secondary)));
    }
    out
}

/// How long an object has left, for tests and `show cache`.
pub fn remaining(obj: &Object, now: u64) -> Duration {
    Duration::from_secs(obj.expires.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(body: &str, stored: u64, ttl: u64) -> Object {
        Object {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            stored,
            expires: stored + ttl,
            age: 0,
            modified: SystemTime::UNIX_EPOCH,
            served: HeaderMap::new(),
        }
    }

    fn hdr(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn objects_expire_by_the_injected_clock() {
        let mut s = Store::new();
        let none = HeaderMap::new();
        assert!(s.put("h/a".into(), vec![], &none, obj("x", 100, 10), 1 << 20, 10));
        assert!(s.get("h/a", &none, 105).is_some());
        assert_eq!(remaining(&s.get("h/a", &none, 105).unwrap(), 105), Duration::from_secs(5));
        assert!(s.get("h/a", &none, 110).is_none(), "expired at 110");
        assert_eq!((s.len(), s.used()), (0, 0), "and dropped");
    }

    #[test]
    fn memory_stays_within_the_budget_least_recently_used_out_first() {
        let mut s = Store::new();
        let none = HeaderMap::new();
        let body = "b".repeat(1000);
        let one = obj(&body, 0, 100).size("h/0");
        let total = one * 3;
        for i in 0..3 {
            assert!(s.put(format!("h/{i}"), vec![], &none, obj(&body, 0, 100), total, 10));
        }
        assert!(s.get("h/0", &none, 1).is_some(), "touch h/0: h/1 is now the oldest");
        assert!(s.put("h/3".into(), vec![], &none, obj(&body, 0, 100), total, 10));
        assert!(s.used() <= total);
        assert!(s.get("h/1", &none, 1).is_none());
        for k in ["h/0", "h/2", "h/3"] {
            assert!(s.get(k, &none, 1).is_some(), "{k}");
        }
        assert!(!s.put("h/big".into(), vec![], &none, obj(&"x".repeat(5000), 0, 100), total, 10));
    }

    /// `Accept-Encoding` variants are keyed on the response's coding and serve every request
    /// that accepts it (HAProxy 2.6); other varied headers match exactly.
    #[test]
    fn variants_are_keyed_on_the_varied_headers_and_bounded() {
        let mut s = Store::new();
        let ae = |v: &str| hdr(&[("accept-encoding", v)]);
        let coded = |body: &str, coding: &str| {
            let mut o = obj(body, 0, 100);
            if !coding.is_empty() {
                o.headers = hdr(&[("content-encoding", coding)]);
            }
            o
        };
        let v = vec![header::ACCEPT_ENCODING];
        assert!(s.put("h/".into(), v.clone(), &ae("gzip"), coded("gz", "gzip"), 1 << 20, 2));
        assert!(s.put("h/".into(), v.clone(), &ae("br"), coded("br", "br"), 1 << 20, 2));
        assert!(s.put("h/".into(), v.clone(), &ae("gzip"), coded("gz2", "gzip"), 1 << 20, 2), "replaces its variant");
        assert!(!s.put("h/".into(), v.clone(), &ae("zstd"), coded("id", ""), 1 << 20, 2), "max-secondary-entries");
        assert!(!s.put("h/".into(), v.clone(), &ae("gzip"), coded("x", "foo"), 1 << 20, 9), "an unknown coding");
        assert_eq!(&s.get("h/", &ae("gzip"), 1).unwrap().body[..], b"gz2");
        assert_eq!(&s.get("h/", &ae("deflate, br"), 1).unwrap().body[..], b"br");
        assert!(s.get("h/", &ae("identity"), 1).is_none(), "no variant it accepts");
        s.invalidate("h/");
        assert!(s.is_empty() && s.used() == 0);
        // A plain response serves every request that does not refuse identity.
        assert!(s.put("p/".into(), v.clone(), &ae("gzip"), coded("plain", ""), 1 << 20, 2));
        assert_eq!(&s.get("p/", &HeaderMap::new(), 1).unwrap().body[..], b"plain");
        assert_eq!(&s.get("p/", &ae("br"), 1).unwrap().body[..], b"plain");
        assert!(s.get("p/", &ae("identity;q=0, gzip"), 1).is_none());
        // Other headers key variants exactly.
        let r = |v: &str| hdr(&[("referer", v)]);
        let v = vec![header::REFERER];
        assert!(s.put("r/".into(), v.clone(), &r("/a"), obj("a", 0, 100), 1 << 20, 2));
        assert!(s.put("r/".into(), v.clone(), &r("/b"), obj("b", 0, 100), 1 << 20, 2));
        assert_eq!(&s.get("r/", &r("/b"), 1).unwrap().body[..], b"b");
        assert!(s.get("r/", &r("/c"), 1).is_none());
    }

    #[test]
    fn hits_carry_age_and_conditional_requests_get_304() {
        let mut o = obj("hello", 100, 60);
        o.age = 3;
        o.headers = hdr(&[("etag", "\"v1\""), ("content-type", "text/plain"), ("content-length", "5")]);
        o.seal();
        let r = answer(&o, false, &HeaderMap::new(), 110);
        assert_eq!((r.status(), r.headers()[header::AGE].to_str().unwrap()), (StatusCode::OK, "13"));
        // The next second's hit says so; the stored headers keep their order, `Age` last.
        let r = answer(&o, false, &HeaderMap::new(), 111);
        let names: Vec<_> = r.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["etag", "content-type", "content-length", "age"]);
        assert_eq!(r.headers()[header::AGE], "14");
        assert!(o.headers.get(header::AGE).is_none(), "the object's own headers have no Age");
        let r = answer(&o, false, &hdr(&[("if-none-match", "\"v1\"")]), 110);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
        assert_eq!(r.headers()[header::ETAG], "\"v1\"");
        let r = answer(&o, true, &HeaderMap::new(), 110);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "5", "HEAD keeps the length");
    }

    #[test]
    fn sections_are_validated_as_haproxy_does() {
        let def = |name: &str, mb: Option<u64>, obj: Option<u64>| CacheDef {
            name: name.into(),
            total_max_size: mb,
            max_object_size: obj,
            ..Default::default()
        };
        let mut p = Vec::new();
        let c = build(
            &[def("a", Some(4), None), def("a", Some(4), None), def("b", None, None), def("c", Some(4), Some(3 << 20))],
            &mut p,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].limits.max_object, (4 << 20) / 256);
        let msgs: Vec<String> = p.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with("cache[1].name: duplicate"));
        assert!(msgs[1].starts_with("cache[2].total_max_size: size not specified"));
        assert!(msgs[2].starts_with("cache[3].max_object_size"));
    }
}
