//! Configuration, version, transaction and reload endpoints: query parameters in, the store
//! and the document layer do the work, a [`Reply`] out.

use super::error::{ApiError, ApiResult};
use super::json;
use super::resources::{self, Kind, Scope, Write};
use super::server::{ApiState, Reply, Req};
use super::store::Committed;
use serde_json::{Value as Json, json};

/// How a write addresses the configuration: one of `version` or `transaction_id`.
enum Target {
    Version(u64, bool),
    Txn(String),
}

fn parse_u64(req: &Req, key: &str) -> ApiResult<Option<u64>> {
    match req.query.get(key) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{key}: `{v}` in query is not a non-negative integer"))),
    }
}

fn parse_bool(req: &Req, key: &str) -> ApiResult<bool> {
    match req.query.get(key).map(String::as_str) {
        None | Some("false") | Some("") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(ApiError::BadRequest(format!("{key}: `{v}` in query is not a boolean"))),
    }
}

fn target(req: &Req) -> ApiResult<Target> {
    let txn = req.query.get("transaction_id").filter(|s| !s.is_empty());
    let version = parse_u64(req, "version")?.filter(|v| *v != 0);
    let force = parse_bool(req, "force_reload")?;
    match (txn, version) {
        (Some(_), Some(_)) => {
            Err(ApiError::BadRequest("both version and transaction specified, specify only one".into()))
        }
        (Some(_), None) if force => {
            Err(ApiError::BadRequest("force_reload: cannot be used with transaction_id (the commit reloads)".into()))
        }
        (Some(id), None) => Ok(Target::Txn(id.clone())),
        (None, Some(v)) => Ok(Target::Version(v, force)),
        (None, None) => Err(ApiError::BadRequest("version or transaction not specified, specify only one".into())),
    }
}

fn scope(req: &Req) -> Scope {
    let q = |k: &str| req.query.get(k).cloned();
    Scope {
        backend: q("backend"),
        frontend: q("frontend"),
        parent_type: q("parent_type"),
        parent_name: q("parent_name"),
        acl_name: q("acl_name"),
    }
}

fn wrapped(version: u64, data: Json) -> Json {
    json!({ "_version": version, "data": data })
}

/// GET on a configuration resource, from the live file or a transaction's staged copy.
pub async fn config_read(st: &ApiState, req: &Req, kind: Kind) -> ApiResult<Reply> {
    let mut store = st.store.lock().await;
    store.sync()?;
    let sc = scope(req);
    let id = req.param.as_deref();
    let (data, version) = match req.query.get("transaction_id").filter(|s| !s.is_empty()) {
        Some(t) => {
            let (doc, v) = store.txn_doc(t)?;
            (resources::read(doc, kind, &sc, id)?, v)
        }
        None => (resources::read(store.doc(), kind, &sc, id)?, store.version()),
    };
    Ok(Reply::json(200, wrapped(version, data), version))
}

/// POST/PUT/DELETE on a configuration resource.
pub async fn config_write(st: &ApiState, req: &Req, kind: Kind) -> ApiResult<Reply> {
    let body = if req.method == "DELETE" { Json::Null } else { json::parse_body(&req.body)? };
    let sc = scope(req);
    let id = req.param.clone();
    let w = match req.method {
        "POST" => Write::Create(&body),
        "PUT" => Write::Replace(id.as_deref(), &body),
        _ => Write::Delete(id.as_deref().unwrap_or("")),
    };
    let mut store = st.store.lock().await;
    store.sync()?;
    match target(req)? {
        Target::Txn(t) => {
            let (out, v) = store.stage(&t, |doc| resources::write(doc, kind, &sc, w))?;
            Ok(match out {
                Some(o) => Reply::json(202, o, v),
                None => Reply::empty(202, v),
            })
        }
        Target::Version(v, force) => {
            let (out, c) = store.write_now(v, |doc| resources::write(doc, kind, &sc, w), &st.reload).await?;
            Ok(written(req.method, out, &c, force))
        }
    }
}

/// The original's codes: 202 + Reload-ID by default; 201/200/204 with `force_reload`. lbha has
/// reloaded in both cases before answering.
fn written(method: &str, out: Option<Json>, c: &Committed, force: bool) -> Reply {
    let status = match (method, force) {
        (_, false) => 202,
        ("POST", true) => 201,
        ("PUT", true) => 200,
        _ => 204,
    };
    let mut r = match out {
        Some(o) if status != 204 => Reply::json(status, o, c.version),
        _ => Reply::empty(status, c.version),
    };
    if !force {
        r.headers.push(("Reload-ID", c.reload_id.clone()));
    }
    r
}

pub async fn version(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let mut store = st.store.lock().await;
    store.sync()?;
    let v = match req.query.get("transaction_id").filter(|s| !s.is_empty()) {
        Some(t) => store.txn_doc(t)?.1,
        None => store.version(),
    };
    Ok(Reply::json(200, json!(v), v))
}

pub async fn transactions(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let mut store = st.store.lock().await;
    store.sync()?;
    let current = store.version();
    match (req.method, req.param.as_deref()) {
        ("GET", None) => {
            let status = req.query.get("status").map(String::as_str);
            if let Some(s) = status
                && !["failed", "in_progress", "outdated", "success"].contains(&s)
            {
                return Err(ApiError::Schema {
                    code: 606,
                    message: "status in query should be one of [failed in_progress]".into(),
                });
            }
            Ok(Reply::json(200, json::to_value(&store.list_txns(status)), current))
        }
        ("POST", None) => {
            let v = parse_u64(req, "version")?.ok_or_else(|| ApiError::required("version", "query"))?;
            let info = store.create_txn(v)?;
            Ok(Reply::json(201, json::to_value(&info), info.version))
        }
        ("GET", Some(id)) => {
            let info = store.get_txn(id)?;
            Ok(Reply::json(200, json::to_value(&info), info.version))
        }
        ("DELETE", Some(id)) => {
            store.delete_txn(id)?;
            Ok(Reply::empty(204, current))
        }
        ("PUT", Some(id)) => {
            let force = parse_bool(req, "force_reload")?;
            let (info, c) = store.commit_txn(id, &st.reload).await?;
            let mut r = Reply::json(if force { 200 } else { 202 }, json::to_value(&info), c.version);
            if !force {
                r.headers.push(("Reload-ID", c.reload_id));
            }
            Ok(r)
        }
        _ => Err(ApiError::MethodNotAllowed("not allowed".into())),
    }
}

pub async fn reloads(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let store = st.store.lock().await;
    let v = store.version();
    let all = store.reloads();
    match req.param.as_deref() {
        None => Ok(Reply::json(200, json::to_value(&all), v)),
        Some(id) => all
            .iter()
            .find(|r| r.id == id)
            .map(|r| Reply::json(200, json::to_value(r), v))
            .ok_or_else(|| ApiError::NotFound(format!("reload {id} does not exist"))),
    }
}

/// `configuration/raw`: the whole lbha.toml as text. GET wraps it as `{_version, data}`; POST
/// replaces it (body `text/plain`), with the same version/transaction rules as any write, plus
/// the original's `skip_version` and `only_validate`.
pub async fn raw(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let mut store = st.store.lock().await;
    store.sync()?;
    let txn = req.query.get("transaction_id").filter(|s| !s.is_empty()).cloned();
    if req.method == "GET" {
        let (text, v) = match &txn {
            Some(t) => {
                let (doc, v) = store.txn_doc(t)?;
                (doc.to_string(), v)
            }
            None => (store.doc().to_string(), store.version()),
        };
        return Ok(Reply::json(200, wrapped(v, Json::String(text)), v));
    }
    if req.method != "POST" {
        return Err(ApiError::MethodNotAllowed("configuration/raw takes GET and POST".into()));
    }
    if parse_bool(req, "skip_reload")? {
        return Err(ApiError::BadRequest(
            "skip_reload: lbha always reloads what it writes, so the file and the running config never differ".into(),
        ));
    }
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::BadRequest("body: the configuration is not UTF-8".into()))?
        .to_string();
    let new: toml_edit::DocumentMut =
        text.parse().map_err(|e| ApiError::BadRequest(format!("body: not valid TOML: {e}")))?;
    if parse_bool(req, "only_validate")? {
        crate::config::parse(&text, store.config_path())
            .map_err(|e| ApiError::BadRequest(format!("validation error: {e}")))?;
        return Ok(Reply::json(202, Json::String(text), store.version()));
    }
    let tgt = if parse_bool(req, "skip_version")? && txn.is_none() {
        Target::Version(store.version(), parse_bool(req, "force_reload")?)
    } else {
        target(req)?
    };
    match tgt {
        Target::Txn(t) => {
            let ((), v) = store.stage(&t, |doc| {
                *doc = new;
                Ok(())
            })?;
            Ok(Reply::json(202, Json::String(text), v))
        }
        Target::Version(v, force) => {
            let ((), c) = store
                .write_now(
                    v,
                    |doc| {
                        *doc = new;
                        Ok(())
                    },
                    &st.reload,
                )
                .await?;
            Ok(written("POST", Some(Json::String(text)), &c, force))
        }
    }
}

/// lbha has one unnamed `[defaults]`; the 2.7+ `named_defaults` shows it under the name the
/// original gives an unnamed section.
const UNNAMED_DEFAULTS: &str = "unnamed_defaults_1";

pub async fn named_defaults(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let name = req.param.as_deref();
    if let Some(n) = name
        && n != UNNAMED_DEFAULTS
    {
        return Err(ApiError::missing_object(format!("{n} (lbha has one defaults section, {UNNAMED_DEFAULTS})")));
    }
    let plain = Req {
        method: req.method,
        template: "/services/haproxy/configuration/defaults",
        param: None,
        query: req.query.clone(),
        body: req.body.clone(),
    };
    let named = |mut d: Json| {
        if let Some(o) = d.as_object_mut() {
            o.insert("name".into(), json!(UNNAMED_DEFAULTS));
        }
        d
    };
    match (req.method, name) {
        ("GET", _) => {
            let mut r = config_read(st, &plain, Kind::Defaults).await?;
            if let Some(body) = r.body.as_mut()
                && let Some(data) = body.get_mut("data")
            {
                let d = named(data.take());
                *data = if name.is_some() { d } else { Json::Array(vec![d]) };
            }
            Ok(r)
        }
        ("PUT", Some(_)) => {
            let mut r = config_write(st, &plain, Kind::Defaults).await?;
            r.body = r.body.map(named);
            Ok(r)
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "lbha has one defaults section ({UNNAMED_DEFAULTS}): it can be read and replaced, not added or deleted"
        ))),
    }
}
