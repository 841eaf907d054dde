//! Runtime endpoints: server state changed at once without a reload (admin state, health,
//! weight), native stats from the live counters, and `/info`.

use super::error::{ApiError, ApiResult};
use super::json;
use super::server::{ApiState, Reply, Req};
use crate::state::{Admin, ServerRt};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Ready,
    Maint,
    Drain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    Up,
    Down,
    Stopping,
}

/// The original's `runtime_server`, plus `weight` (as in v3), which lbha also changes at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeServer {
    pub name: Option<String>,
    pub id: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub admin_state: Option<AdminState>,
    pub operational_state: Option<OpState>,
    pub weight: Option<u32>,
}

fn view(id: usize, s: &crate::config::snapshot::Server, rt: &ServerRt) -> RuntimeServer {
    RuntimeServer {
        name: Some(s.name.clone()),
        id: Some((id + 1).to_string()),
        address: Some(s.addr.ip().to_string()),
        port: Some(s.addr.port()),
        admin_state: Some(match rt.admin() {
            Admin::Ready => AdminState::Ready,
            Admin::Drain => AdminState::Drain,
            Admin::Maint => AdminState::Maint,
        }),
        operational_state: Some(if rt.is_up() { OpState::Up } else { OpState::Down }),
        weight: Some(rt.weight()),
    }
}

pub async fn servers(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let backend =
        req.query.get("backend").filter(|b| !b.is_empty()).ok_or_else(|| ApiError::required("backend", "query"))?;
    let active = st.proxy.active.load_full();
    let (bi, b) = active
        .snap
        .backend(backend)
        .ok_or_else(|| ApiError::NotFound(format!("missing object: backend {backend} does not exist")))?;
    let rts = &active.rt.backends[bi].servers;
    let find = |name: &str| {
        b.servers
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| ApiError::missing_object(format!("{name} in backend {backend}")))
    };
    match (req.method, req.param.as_deref()) {
        ("GET", None) => {
            let all: Vec<Json> =
                b.servers.iter().enumerate().map(|(i, s)| json::to_value(&view(i, s, &rts[i]))).collect();
            Ok(Reply::json(200, Json::Array(all), version))
        }
        ("GET", Some(name)) => {
            let i = find(name)?;
            Ok(Reply::json(200, json::to_value(&view(i, &b.servers[i], &rts[i])), version))
        }
        ("POST", None) => {
            let body = json::parse_body(&req.body)?;
            let cmd = super::runtime_add::add_command(backend, &body)?;
            let name = match &cmd {
                crate::control::servers_rt::RtCommand::AddServer(r, _) => r.server.clone(),
                _ => String::new(),
            };
            match st.proxy.cluster_runtime.get() {
                Some(h) => super::runtime_sync::run(h, vec![super::runtime_sync::add_line(backend, &body)?]).await?,
                None => super::runtime_add::run(&st.proxy, cmd).await.map(drop)?,
            }
            tracing::info!(backend = %backend, server = %name, "runtime server added through the API");
            let a = st.proxy.active.load_full();
            let bi =
                a.snap.backend(backend).map(|(i, _)| i).ok_or_else(|| ApiError::Internal("backend gone".into()))?;
            let b = &a.snap.backends[bi];
            let i = b
                .servers
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| ApiError::Internal("server gone".into()))?;
            Ok(Reply::json(201, json::to_value(&view(i, &b.servers[i], &a.rt.backends[bi].servers[i])), version))
        }
        ("DELETE", Some(name)) => {
            find(name)?;
            let r = crate::control::ServerRef { backend: backend.to_string(), server: name.to_string() };
            match st.proxy.cluster_runtime.get() {
                Some(h) => super::runtime_sync::run(h, vec![super::runtime_sync::del_line(backend, name)]).await?,
                None => super::runtime_add::run(&st.proxy, crate::control::servers_rt::RtCommand::DelServer(r))
                    .await
                    .map(drop)?,
            }
            tracing::info!(backend = %backend, server = %name, "runtime server deleted through the API");
            Ok(Reply::empty(204, version))
        }
        ("PUT", Some(name)) => {
            let i = find(name)?;
            let body = json::parse_body(&req.body)?;
            let want: RuntimeServer = json::decode(&body, &[])?;
            if let Some(w) = want.weight {
                json::check_range("weight", i64::from(w), 0, 256)?;
            }
            // lbha extension: a new address or port, as `set server B/S addr A port P`.
            let cur = b.servers[i].addr;
            let ip = match &want.address {
                Some(a) => a.parse().map_err(|_| ApiError::Schema {
                    code: 605,
                    message: format!("address: an IP address is required, got {a:?}"),
                })?,
                None => cur.ip(),
            };
            let port = want.port.unwrap_or(cur.port());
            if let Some(h) = st.proxy.cluster_runtime.get() {
                let new = Some(std::net::SocketAddr::new(ip, port)).filter(|a| *a != cur);
                super::runtime_sync::run(h, super::runtime_sync::put_lines(backend, name, &want, new)).await?;
            } else if std::net::SocketAddr::new(ip, port) != cur {
                let r = crate::control::ServerRef { backend: backend.to_string(), server: name.to_string() };
                let cmd = crate::control::servers_rt::RtCommand::SetAddr(r, ip, Some(port));
                super::runtime_add::run(&st.proxy, cmd).await?;
            }
            let rt = &rts[i];
            // With `[cluster]` the lines above did it, through the sync path.
            if st.proxy.cluster_runtime.get().is_none() {
                if let Some(a) = want.admin_state {
                    let (old, new) = (
                        rt.admin(),
                        match a {
                            AdminState::Ready => Admin::Ready,
                            AdminState::Drain => Admin::Drain,
                            AdminState::Maint => Admin::Maint,
                        },
                    );
                    rt.set_admin(new);
                    st.proxy.admin_changed(&active, (bi, i), old);
                }
                if let Some(o) = want.operational_state {
                    // Like `set server health`: the next check result takes over again.
                    rt.force_health(o == OpState::Up);
                }
                if let Some(w) = want.weight {
                    rt.set_weight(w);
                }
            }
            tracing::info!(backend = %backend, server = %name, "runtime server state changed through the API");
            let a = st.proxy.active.load_full();
            let now = a.snap.backend(backend).and_then(|(bi, nb)| {
                nb.servers
                    .iter()
                    .position(|s| s.name == name)
                    .map(|si| view(si, &nb.servers[si], &a.rt.backends[bi].servers[si]))
            });
            Ok(Reply::json(200, json::to_value(&now.unwrap_or_else(|| view(i, &b.servers[i], rt))), version))
        }
        _ => Err(ApiError::MethodNotAllowed("not allowed".into())),
    }
}

fn counters(c: &crate::state::Counters) -> serde_json::Map<String, Json> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: u64| {
        m.insert(k.to_string(), json!(v));
    };
    put("scur", u64::from(c.cur_sessions.load(Relaxed)));
    put("smax", u64::from(c.max_sessions.load(Relaxed)));
    put("stot", c.total_sessions.load(Relaxed));
    put("bin", c.bytes_in.load(Relaxed));
    put("bout", c.bytes_out.load(Relaxed));
    put("req_tot", c.requests.load(Relaxed));
    put("dreq", c.denied_req.load(Relaxed));
    put("dresp", c.denied_resp.load(Relaxed));
    put("ereq", c.errors_req.load(Relaxed));
    put("econ", c.errors_conn.load(Relaxed));
    put("eresp", c.errors_resp.load(Relaxed));
    put("wretr", c.retries.load(Relaxed));
    put("wredis", c.redispatches.load(Relaxed));
    put("wrew", c.failed_rewrites.load(Relaxed));
    for (i, k) in ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate() {
        put(k, c.http_responses[i].load(Relaxed));
    }
    m
}

/// `GET /services/haproxy/stats/native?type=&name=&parent=`.
pub async fn stats(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let q = |k: &str| req.query.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let kind = q("type");
    if let Some(k) = kind
        && !["frontend", "backend", "server"].contains(&k)
    {
        return Err(ApiError::Schema {
            code: 606,
            message: "type in query should be one of [frontend backend server]".into(),
        });
    }
    let (name, parent) = (q("name"), q("parent"));
    let want = |k: &str, n: &str, p: Option<&str>| {
        kind.is_none_or(|x| x == k) && name.is_none_or(|x| x == n) && (parent.is_none() || p == parent)
    };
    let a = st.proxy.active.load_full();
    let mut out = Vec::new();
    for (i, f) in a.snap.frontends.iter().enumerate() {
        if want("frontend", &f.name, None) {
            let mut s = counters(&a.rt.frontends[i]);
            s.insert("status".into(), json!("OPEN"));
            out.push(json!({"type": "frontend", "name": f.name, "stats": s}));
        }
    }
    for (bi, b) in a.snap.backends.iter().enumerate() {
        let rt = &a.rt.backends[bi];
        for (si, sv) in b.servers.iter().enumerate() {
            if want("server", &sv.name, Some(&b.name)) {
                let srt = &rt.servers[si];
                let mut s = counters(&srt.counters);
                s.insert("status".into(), json!(crate::stats::srv_status::of(&a.snap, &a.rt, bi, si)));
                s.insert("weight".into(), json!(srt.weight()));
                s.insert("check_status".into(), json!(srt.last_check.lock().map(|c| c.clone()).unwrap_or_default()));
                s.insert("chkdown".into(), json!(srt.down_transitions.load(Relaxed)));
                out.push(json!({"type": "server", "name": sv.name, "backend_name": b.name, "stats": s}));
            }
        }
        if want("backend", &b.name, None) {
            let mut s = counters(&rt.counters);
            s.insert("status".into(), json!(if rt.nbsrv() > 0 { "UP" } else { "DOWN" }));
            s.insert("act".into(), json!(rt.nbsrv()));
            out.push(json!({"type": "backend", "name": b.name, "stats": s}));
        }
    }
    Ok(Reply::json(200, json!([{ "runtimeAPI": "lbha", "stats": out }]), version))
}

/// `GET /services/haproxy/runtime/info`: the original's `process_infos`, from the live process.
pub async fn process_info(st: &ApiState) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let a = st.proxy.active.load_full();
    let sum = |f: &dyn Fn(&crate::state::Counters) -> u64| -> u64 { a.rt.frontends.iter().map(|c| f(c)).sum() };
    let threads = a.snap.global.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let info = json!({
        "pid": std::process::id(),
        "process_num": 1,
        "processes": 1,
        "nbthread": threads,
        "uptime": st.proxy.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "release_date": &env!("LBHA_BUILD_DATE")[..10],
        "node": read("/proc/sys/kernel/hostname"),
        "max_conn": a.snap.global.maxconn,
        "curr_conns": sum(&|c| c.cur_sessions.load(Relaxed).into()),
        "cum_conns": sum(&|c| c.total_sessions.load(Relaxed)),
        "cum_req": sum(&|c| c.requests.load(Relaxed)),
        "stopping": *st.proxy.drain.borrow(),
    });
    Ok(Reply::json(200, json!([{ "runtimeAPI": "lbha", "info": info }]), version))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_string()
}

/// `GET /info`: the API and the host it runs on.
pub async fn info(st: &ApiState) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let meminfo = read("/proc/meminfo");
    let mem = |key: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    let own = read("/proc/self/status")
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024);
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|x| x.1.trim().to_string())
        .unwrap_or_default();
    let uptime =
        read("/proc/uptime").split_whitespace().next().and_then(|s| s.parse::<f64>().ok()).map_or(0, |s| s as u64);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let body = json!({
        "api": {
            "version": format!("lbha {}", env!("CARGO_PKG_VERSION")),
            "build_date": env!("LBHA_BUILD_DATE"),
        },
        "system": {
            "hostname": read("/proc/sys/kernel/hostname"),
            "os_string": format!("{} {}", read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease")),
            "uptime": uptime,
            "time": now,
            "cpu_info": {
                "model": cpu_model,
                "num_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            "mem_info": {
                "total_memory": mem("MemTotal:"),
                "free_memory": mem("MemAvailable:"),
                "dataplaneapi_memory": own,
            },
        },
    });
    Ok(Reply::json(200, body, version))
}

/// The discovery lists of `/`, `/services`, ...
pub fn discovery(template: &str) -> Json {
    let entries: &[(&str, &str)] = match template {
        "/" => &[
            ("/services", "Services"),
            ("/info", "API information"),
            ("/specification", "OpenAPI document"),
            ("/health", "Health"),
        ],
        "/services" => &[("/services/haproxy", "HAProxy-compatible services of lbha")],
        "/services/haproxy" => &[
            ("/services/haproxy/configuration", "Configuration"),
            ("/services/haproxy/runtime", "Runtime"),
            ("/services/haproxy/stats/native", "Native statistics"),
            ("/services/haproxy/transactions", "Transactions"),
            ("/services/haproxy/reloads", "Reloads"),
        ],
        "/services/haproxy/configuration" => &[
            ("/services/haproxy/configuration/backends", "Backends"),
            ("/services/haproxy/configuration/frontends", "Frontends"),
            ("/services/haproxy/configuration/servers", "Servers"),
            ("/services/haproxy/configuration/server_templates", "Server templates"),
            ("/services/haproxy/configuration/binds", "Binds"),
            ("/services/haproxy/configuration/backend_switching_rules", "Backend switching rules"),
            ("/services/haproxy/configuration/server_switching_rules", "Server switching rules"),
            ("/services/haproxy/configuration/acls", "ACLs"),
            ("/services/haproxy/configuration/http_request_rules", "HTTP request rules"),
            ("/services/haproxy/configuration/defaults", "Defaults"),
            ("/services/haproxy/configuration/named_defaults", "Named defaults (lbha has one)"),
            ("/services/haproxy/configuration/raw", "The whole configuration file"),
            ("/services/haproxy/configuration/global", "Global"),
            ("/services/haproxy/configuration/version", "Configuration version"),
        ],
        _ => &[
            ("/services/haproxy/runtime/servers", "Runtime servers"),
            ("/services/haproxy/runtime/stick_tables", "Stick tables"),
            ("/services/haproxy/runtime/stick_table_entries", "Stick table entries"),
            ("/services/haproxy/runtime/info", "Process information"),
        ],
    };
    Json::Array(
        entries
            .iter()
            .map(|(u, t)| json!({"url": format!("{}{u}", super::router::BASE), "title": t, "description": t}))
            .collect(),
    )
}
