//! The web console: one page (compiled in, no network at run time) for the pair, traffic,
//! servers, events and runtime VIPs, served by lbha on `[console] bind`. Logins come from a
//! userlist (as the Data Plane API's); `admin_group` members may change servers and VIPs,
//! everyone else only looks ([`session`]). Every JSON endpoint runs a control socket command and
//! answers its JSON, so the page and `lbha ... --json` read the same thing; changes are the
//! control socket's own commands, limited to server actions and VIPs.
//!
//! Nothing per user is kept: sessions are signed tokens, and the history behind the charts
//! ([`traffic`]) and the timeline ([`events`]) are fixed-size rings shared by every page.

pub mod events;
pub mod session;
pub mod traffic;

use crate::config::console::ConsoleSettings;
use crate::control::parse::{Command, parse_line};
use crate::control::reply::Reply;
use crate::daemon::control::Shared;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use session::{Keys, Role};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Connections served at once; more wait in the backlog. Bounds what pages left open can cost.
const MAX_CONNECTIONS: usize = 32;
/// Largest request body: a login form or one command.
const MAX_BODY: usize = 8 << 10;
/// The page's rules: its own script and style only, nothing fetched from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct St {
    shared: Arc<Shared>,
    keys: Keys,
    verified: crate::api::auth::Verified,
    /// `[console]` as at start: the listener's address and TLS do not change until a restart.
    start: ConsoleSettings,
}

impl St {
    /// The live settings (userlist, groups, session length follow reloads), else those at start.
    fn settings(&self) -> ConsoleSettings {
        self.shared.proxy.active.load().snap.console.clone().unwrap_or_else(|| self.start.clone())
    }

    fn https(&self) -> bool {
        self.start.tls.is_some()
    }
}

/// A running console: its listener and the traffic sampler.
pub struct Console {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Console {
    /// Binds and serves. With `retry_bind` (a binary upgrade: the previous process still holds
    /// the address until the handover), binding is retried in the background until it succeeds.
    pub fn start(settings: &ConsoleSettings, shared: Arc<Shared>, retry_bind: bool) -> Result<Console, String> {
        let addr = settings.bind;
        let first = match crate::proxy::listener::bind(addr) {
            Ok(l) => Some(l),
            Err(e) if retry_bind => {
                tracing::info!("console: {addr} still busy ({e}); retrying until the previous process lets it go");
                None
            }
            Err(e) => return Err(format!("cannot bind the console on {addr}: {e}")),
        };
        let keys = Keys::random()?;
        let sampler = tokio::spawn(traffic::run(shared.proxy.clone()));
        let st = Arc::new(St { shared, keys, verified: Default::default(), start: settings.clone() });
        let (stop, mut rx) = watch::channel(false);
        let (tls, read_timeout) = (settings.tls.clone(), settings.read_timeout);
        if settings.insecure_http {
            tracing::warn!(
                "the web console serves plain HTTP on {addr} (allow_insecure_http): passwords and sessions cross the network in clear"
            );
        }
        let task = tokio::spawn(async move {
            let std_l = match first {
                Some(l) => l,
                None => loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = rx.wait_for(|s| *s) => return,
                    }
                    if let Ok(l) = crate::proxy::listener::bind(addr) {
                        break l;
                    }
                },
            };
            let l = match tokio::net::TcpListener::from_std(std_l) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("cannot serve the console on {addr}: {e}");
                    return;
                }
            };
            tracing::info!("web console listening on {addr}");
            let limit = Some(Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)));
            let handler = move |req| {
                let st = st.clone();
                async move { handle(&st, req).await }
            };
            crate::api::server::serve_http(l, tls, read_timeout, rx, "console", limit, handler).await
        });
        Ok(Console { stop, task, sampler })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.sampler.abort();
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn with_headers(mut r: Response<Full<Bytes>>, ctype: &'static str) -> Response<Full<Bytes>> {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut v = serde_json::to_vec(body).unwrap_or_default();
    v.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(v)));
    *r.status_mut() = status;
    with_headers(r, "application/json")
}

fn error(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    json_reply(status, &json!({ "errorStr": msg }))
}

fn redirect(to: &str, cookie: Option<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    with_headers(r, "text/plain")
}

fn asset(body: &'static str, ctype: &'static str) -> Response<Full<Bytes>> {
    with_headers(Response::new(Full::new(Bytes::from_static(body.as_bytes()))), ctype)
}

fn header_str(req: &Request<Incoming>, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Who is asking: from the session cookie, or (for scripts reading JSON) Basic auth against the
/// same userlist. The session token comes back too, for the CSRF check.
async fn who(st: &St, req: &Request<Incoming>) -> Result<(String, Role, Option<String>), Response<Full<Bytes>>> {
    let s = st.settings();
    let snap = st.shared.proxy.active.load();
    let Some(list) = snap.snap.userlists.iter().find(|u| u.name == s.userlist).cloned() else {
        return Err(error(StatusCode::FORBIDDEN, "the console's userlist is gone from the configuration"));
    };
    drop(snap);
    let role_of = |user: &str| session::role(&list, user, s.admin_group.as_deref(), s.read_group.as_deref());
    if let Some(token) = header_str(req, header::COOKIE).and_then(session::cookie_token)
        && let Some(user) = st.keys.verify(token, now_secs())
    {
        return match role_of(&user) {
            Some(r) => Ok((user, r, Some(token.to_string()))),
            None => Err(error(StatusCode::FORBIDDEN, "this user may not use the console")),
        };
    }
    if let Some((user, pw)) = header_str(req, header::AUTHORIZATION).and_then(crate::api::auth::parse_basic) {
        if let Err(e) = st.verified.check_user(&list, user.clone(), pw).await {
            return Err(error(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED),
                "invalid username or password",
            ));
        }
        return match role_of(&user) {
            Some(r) => Ok((user, r, None)),
            None => Err(error(StatusCode::FORBIDDEN, "this user may not use the console")),
        };
    }
    Err(error(StatusCode::UNAUTHORIZED, "login required"))
}

async fn body(req: Request<Incoming>, timeout: Duration) -> Result<Bytes, Response<Full<Bytes>>> {
    match tokio::time::timeout(timeout, Limited::new(req.into_body(), MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => Err(error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large or unreadable")),
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "request body not received in time")),
    }
}

fn same_origin(st: &St, req: &Request<Incoming>) -> bool {
    session::same_origin(
        header_str(req, header::ORIGIN),
        header_str(req, header::REFERER),
        header_str(req, header::HOST),
        st.https(),
    )
}

async fn handle(st: &St, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/" | "/console") => redirect("/console/", None),
        (&Method::GET, "/console/") => asset(INDEX_HTML, "text/html; charset=utf-8"),
        (&Method::GET, "/console/app.js") => asset(APP_JS, "text/javascript; charset=utf-8"),
        (&Method::GET, "/console/app.css") => asset(APP_CSS, "text/css; charset=utf-8"),
        (&Method::POST, "/console/login") => login(st, req).await,
        (&Method::POST, "/console/logout") => {
            if !same_origin(st, &req) {
                return error(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
            redirect("/console/", Some(session::set_cookie(None, 0, st.https())))
        }
        (&Method::POST, "/console/api/v1/command") => command(st, req).await,
        (&Method::GET, p) if p.starts_with("/console/api/v1/") => read(st, req).await,
        _ => error(StatusCode::NOT_FOUND, "no such page"),
    }
}

async fn login(st: &St, req: Request<Incoming>) -> Response<Full<Bytes>> {
    // A login planted from another site would put the victim in the attacker's session.
    if !same_origin(st, &req) {
        return error(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let s = st.settings();
    let form = match body(req, s.read_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (mut user, mut pw) = (String::new(), String::new());
    for (k, v) in form_urlencoded::parse(&form) {
        match &*k {
            "user" => user = v.into_owned(),
            "password" => pw = v.into_owned(),
            _ => {}
        }
    }
    let list = st.shared.proxy.active.load().snap.userlists.iter().find(|u| u.name == s.userlist).cloned();
    let Some(list) = list else { return redirect("/console/?login=failed", None) };
    match st.verified.check_user(&list, user.clone(), pw).await {
        Ok(()) => {}
        Err(e) if e.status() == 429 => return redirect("/console/?login=busy", None),
        Err(_) => {
            tracing::info!(user = %user, "console login refused: invalid username or password");
            return redirect("/console/?login=failed", None);
        }
    }
    if session::role(&list, &user, s.admin_group.as_deref(), s.read_group.as_deref()).is_none() {
        return redirect("/console/?login=denied", None);
    }
    let ttl = s.session_timeout.as_secs().max(1);
    let token = st.keys.issue(&user, now_secs() + ttl);
    tracing::info!(user = %user, "console login");
    redirect("/console/", Some(session::set_cookie(Some(&token), ttl, st.https())))
}

/// The control command behind each read endpoint (the same JSON as `lbha ... --json`).
pub fn read_command(name: &str, query: &str) -> Option<Command> {
    let q = |key: &str| form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    Some(match name {
        "status" => Command::ShowStatus,
        "vrrp" => Command::ShowVrrp,
        "cluster" => Command::Cluster(crate::control::cluster::ClusterCmd::Status),
        "stat" => Command::ShowStat(Default::default()),
        "servers" => Command::ShowServersState { backend: q("backend") },
        "vips" => Command::VipList { instance: q("instance") },
        "events" => Command::ShowEvents { since: q("since").and_then(|s| s.parse().ok()).unwrap_or(0) },
        "traffic" => Command::ShowTraffic { name: q("name") },
        _ => return None,
    })
}

async fn read(st: &St, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (user, role, token) = match who(st, &req).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let name = req.uri().path().trim_start_matches("/console/api/v1/");
    if name == "session" {
        let csrf = token.as_deref().map(|t| st.keys.csrf(t));
        return json_reply(StatusCode::OK, &json!({ "user": user, "role": role, "csrf": csrf }));
    }
    let Some(cmd) = read_command(name, req.uri().query().unwrap_or("")) else {
        return error(StatusCode::NOT_FOUND, "no such endpoint");
    };
    match crate::daemon::control::execute(&st.shared, cmd).await {
        Reply::Ok { json, .. } => json_reply(StatusCode::OK, &json),
        // Not configured or not running (no VRRP, no [cluster]): the page says so.
        Reply::Err { json, .. } => json_reply(StatusCode::SERVICE_UNAVAILABLE, &json),
    }
}

/// Whether the console lets an admin run this command: server actions and runtime VIPs only.
pub fn allowed_change(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::EnableServer(_)
            | Command::DisableServer(_)
            | Command::SetServerState(..)
            | Command::SetServerWeight(..)
            | Command::VipAdd(_)
            | Command::VipDel(_)
    )
}

/// One change, as a control socket command line: `{"command": "set server web/a state drain"}`.
/// The page builds the same lines the CLI sends, so `lbha vip add` and the page validate alike.
pub fn parse_change(line: &str) -> Result<Command, String> {
    let mut parsed = parse_line(line);
    if parsed.len() != 1 {
        return Err("exactly one command, please".into());
    }
    let cmd = parsed.remove(0).command.map_err(|e| e.to_string())?;
    if !allowed_change(&cmd) {
        return Err("the console runs server actions (enable, disable, state, weight) and vip add/del only".into());
    }
    Ok(cmd)
}

async fn command(st: &St, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (user, role, token) = match who(st, &req).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if role != Role::Admin {
        return error(StatusCode::FORBIDDEN, "read-only: this user is not in the console's admin group");
    }
    // Changes only from the page itself: a session, its CSRF token, and the same origin.
    let Some(token) = token else {
        return error(StatusCode::FORBIDDEN, "changes need a console session (log in on the page)");
    };
    if !st.keys.csrf_ok(&token, header_str(&req, session::CSRF_HEADER)) || !same_origin(st, &req) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused (missing or wrong CSRF token or origin)");
    }
    let b = match body(req, st.settings().read_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let line = match serde_json::from_slice::<Value>(&b) {
        Ok(v) => match v.get("command").and_then(Value::as_str) {
            Some(l) => l.to_string(),
            None => return error(StatusCode::BAD_REQUEST, "expected {\"command\": \"...\"}"),
        },
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
    };
    let cmd = match parse_change(&line) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let reply = crate::daemon::control::run_for_console(&st.shared, &line, cmd).await;
    tracing::info!(user = %user, ok = !reply.is_err(), "console: {line}");
    match reply {
        Reply::Ok { json, .. } => json_reply(StatusCode::OK, &json),
        Reply::Err { json, .. } => json_reply(StatusCode::BAD_REQUEST, &json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_actions_and_vips_are_changes() {
        for ok in [
            "enable server web/a",
            "disable server web/a",
            "set server web/a state drain",
            "set server web/a weight 50%",
            "vip add 192.0.2.10/24 dev eth0",
            "vip del 192.0.2.10/24",
        ] {
            assert!(parse_change(ok).is_ok(), "{ok}");
        }
        for bad in [
            "reload",
            "upgrade",
            "show stat",
            "clear table t",
            "disable server web/a; reload",
            "",
            "set server web/a weight 999",
            "vip add 300.1.1.1 dev eth0",
        ] {
            assert!(parse_change(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_read_endpoint_is_a_read_command() {
        for n in ["status", "vrrp", "cluster", "stat", "servers", "vips", "events", "traffic"] {
            let c = read_command(n, "since=3&name=web").unwrap_or_else(|| panic!("{n}"));
            assert_eq!(c.level(), crate::control::parse::Level::User, "{n}");
        }
        assert_eq!(read_command("events", "since=7"), Some(Command::ShowEvents { since: 7 }));
        assert_eq!(read_command("traffic", "name=web"), Some(Command::ShowTraffic { name: Some("web".into()) }));
        assert!(read_command("reload", "").is_none());
    }
}
