//! HTTP plumbing: hyper 1 connections, Basic auth, routing to handlers, JSON replies with the
//! `Configuration-Version` header the original adds to every response.

use super::auth::Verified;
use super::error::{ApiError, ApiResult};
use super::resources::Kind;
use super::router::{self, Matched};
use super::store::{ReloadFn, Store};
use super::{handlers, runtime, spec};
use crate::proxy::Proxy;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

/// Largest request body accepted (a 1,000-backend config posted whole stays well under it).
const MAX_BODY: usize = 16 << 20;

pub struct ApiState {
    pub store: Mutex<Store>,
    pub reload: ReloadFn,
    pub proxy: Arc<Proxy>,
    pub userlist: String,
    pub verified: Verified,
}

pub struct Req {
    pub method: &'static str,
    pub template: &'static str,
    pub param: Option<String>,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

pub struct Reply {
    pub status: u16,
    pub body: Option<Json>,
    pub version: u64,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Json, version: u64) -> Reply {
        Reply { status, body: Some(body), version, headers: Vec::new() }
    }
    pub fn empty(status: u16, version: u64) -> Reply {
        Reply { status, body: None, version, headers: Vec::new() }
    }
}

async fn dispatch(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    const CONF: &str = "/services/haproxy/configuration/";
    let t = req.template;
    if let Some(rest) = t.strip_prefix(CONF) {
        let seg = rest.split('/').next().unwrap_or("");
        if seg == "version" {
            return handlers::version(st, req).await;
        }
        if seg == "raw" {
            return handlers::raw(st, req).await;
        }
        if seg == "named_defaults" {
            return handlers::named_defaults(st, req).await;
        }
        let kind = Kind::from_segment(seg).ok_or_else(|| ApiError::NotFound(format!("path {t} was not found")))?;
        return if req.method == "GET" {
            handlers::config_read(st, req, kind).await
        } else {
            handlers::config_write(st, req, kind).await
        };
    }
    let version = || async { st.store.lock().await.version() };
    match t {
        "/info" => runtime::info(st).await,
        "/health" => Ok(Reply::json(200, serde_json::json!({"haproxy": "up"}), version().await)),
        "/specification" => {
            let spec: Json =
                serde_json::from_str(spec::OPENAPI).map_err(|e| ApiError::Internal(format!("openapi.json: {e}")))?;
            Ok(Reply::json(200, spec, version().await))
        }
        "/services/haproxy/stats/native" => runtime::stats(st, req).await,
        "/services/haproxy/runtime/info" => runtime::process_info(st).await,
        _ if t.starts_with("/services/haproxy/transactions") => handlers::transactions(st, req).await,
        _ if t.starts_with("/services/haproxy/reloads") => handlers::reloads(st, req).await,
        _ if t.starts_with("/services/haproxy/runtime/servers") => runtime::servers(st, req).await,
        _ if t.starts_with("/services/haproxy/runtime/stick_tables") => super::stick_tables::tables(st, req).await,
        "/services/haproxy/runtime/stick_table_entries" => super::stick_tables::entries(st, req).await,
        _ => Ok(Reply::json(200, runtime::discovery(t), version().await)),
    }
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let body = match &reply.body {
        Some(j) => {
            let mut v = serde_json::to_vec(j).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        }
        None => Bytes::new(),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if reply.body.is_some() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Ok(v) = HeaderValue::from_str(&reply.version.to_string()) {
        h.insert("configuration-version", v);
    }
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

fn error_reply(e: &ApiError, version: u64) -> Reply {
    let mut r = Reply::json(e.status(), e.body(), version);
    if e.status() == 401 {
        r.headers.push(("WWW-Authenticate", "Basic realm=\"API\"".into()));
    }
    if e.status() == 408 {
        r.headers.push(("Connection", "close".into()));
    }
    r
}

async fn handle(st: Arc<ApiState>, req: Request<Incoming>, read_timeout: Duration) -> Response<Full<Bytes>> {
    let method = match *req.method() {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        _ => "OTHER",
    };
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let auth_header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let result = async {
        let list = {
            let active = st.proxy.active.load();
            active.snap.userlists.iter().find(|u| u.name == st.userlist).cloned()
        };
        st.verified.check(list.as_ref(), auth_header.as_deref()).await?;
        let Matched { template, param, .. } = router::route(method, &path)?;
        // A client that stalls its body is cut, as the head is by `header_read_timeout`.
        let body = tokio::time::timeout(read_timeout, Limited::new(req.into_body(), MAX_BODY).collect())
            .await
            .map_err(|_| {
                ApiError::Timeout(format!("body: not received within {}", humantime::format_duration(read_timeout)))
            })?
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::TooLarge(format!("body: larger than {MAX_BODY} bytes"))
                } else {
                    ApiError::BadRequest(format!("body: cannot read: {e}"))
                }
            })?
            .to_bytes();
        let r = Req { method, template, param, query, body };
        dispatch(&st, &r).await
    }
    .await;
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            let v = st.store.lock().await.version();
            if e.status() >= 500 {
                tracing::error!(%method, %path, "API error: {e}");
            }
            error_reply(&e, v)
        }
    };
    tracing::debug!(%method, %path, status = reply.status, "API request");
    respond(reply)
}

/// Resolves once a stop is requested (the watch guard never crosses an await).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Serves connections until `stop` turns true.
/// A client connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Serves connections until `stop` turns true; with `tls`, every connection starts with a TLS
/// handshake (bounded like the request head).
pub async fn serve(
    l: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    read_timeout: Duration,
    st: Arc<ApiState>,
    stop: watch::Receiver<bool>,
) {
    let handler = move |req| {
        let st = st.clone();
        async move { handle(st, req, read_timeout).await }
    };
    serve_http(l, tls, read_timeout, stop, "API", None, handler).await
}

/// The HTTP/1 accept loop the API and the console share: TLS when configured, heads bounded by
/// `read_timeout`, graceful stop; `limit` bounds the connections served at once (the rest wait
/// in the backlog). `handler` answers each request.
pub async fn serve_http<F, Fut>(
    l: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    limit: Option<Arc<tokio::sync::Semaphore>>,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let permit = match &limit {
            Some(s) => tokio::select! {
                p = s.clone().acquire_owned() => p.ok(),
                _ = stopped(&mut stop) => return,
            },
            None => None,
        };
        let (sock, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("{what} accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        let handler = handler.clone();
        let mut stop_conn = stop.clone();
        let tls = tls.clone();
        crate::fate::spawn(async move {
            let _permit = permit;
            let sock: Box<dyn Io> = match tls {
                None => Box::new(sock),
                Some(cfg) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    match tokio::time::timeout(read_timeout, acceptor.accept(sock)).await {
                        Ok(Ok(s)) => Box::new(s),
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, "{what} TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(client = %peer, "{what} TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let svc = hyper::service::service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, std::convert::Infallible>(fut.await) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new()).header_read_timeout(read_timeout).keep_alive(true);
            let conn = b.serve_connection(TokioIo::new(sock), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(client = %peer, "{what} connection ended: {e}");
                    }
                }
                _ = stopped(&mut stop_conn) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
        });
    }
}
