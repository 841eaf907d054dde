//! Runtime stick-table endpoints of the Data Plane API v2: `runtime/stick_tables[/{name}]` (the
//! tables, their fields and use) and `runtime/stick_table_entries?stick_table=T[&key=K][&filter=F]`
//! (entries, `filter` being `data.TYPE OP VALUE` items separated by commas), over the same live
//! tables as `show table`.

use super::error::{ApiError, ApiResult};
use super::server::{ApiState, Reply, Req};
use crate::stktable::cli::{self, Action};
use crate::stktable::registry::lock;
use serde_json::{Value as Json, json};

fn with_process(mut v: Json) -> Json {
    if let Some(m) = v.as_object_mut() {
        m.insert("process".into(), json!(1));
    }
    v
}

pub async fn tables(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let active = st.proxy.active.load_full();
    let tables = &active.rt.tables;
    match req.param.as_deref() {
        None => {
            let all: Vec<Json> = tables.iter().map(|t| with_process(cli::table_json(&lock(t)))).collect();
            Ok(Reply::json(200, Json::Array(all), version))
        }
        Some(name) => {
            let t = tables.find(name).ok_or_else(|| ApiError::missing_object(format!("stick table {name}")))?;
            Ok(Reply::json(200, with_process(cli::table_json(&lock(t))), version))
        }
    }
}

pub async fn entries(st: &ApiState, req: &Req) -> ApiResult<Reply> {
    let version = st.store.lock().await.version();
    let name = req
        .query
        .get("stick_table")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::required("stick_table", "query"))?;
    let mut words: Vec<String> = vec![name.clone()];
    if let Some(k) = req.query.get("key").filter(|k| !k.is_empty()) {
        words.extend(["key".to_string(), k.clone()]);
    } else if let Some(f) = req.query.get("filter").filter(|f| !f.is_empty()) {
        for item in f.split(',') {
            words.extend(item.split_whitespace().map(str::to_string));
        }
    }
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let cmd = cli::parse(Action::Show, &refs).map_err(ApiError::BadRequest)?;
    let active = st.proxy.active.load_full();
    let tables = &active.rt.tables;
    let t = tables.find(name).ok_or_else(|| ApiError::missing_object(format!("stick table {name}")))?;
    let now = tables.now_ms();
    let mut t = lock(t);
    cli::run(&cmd, &mut t, now).map_err(ApiError::BadRequest)?;
    let entries = cli::show_json(&cmd, &t, now).get("entries").cloned().unwrap_or_else(|| json!([]));
    Ok(Reply::json(200, entries, version))
}
