//! The config document layer: Data Plane API resource operations applied to a
//! `toml_edit::DocumentMut` of lbha.toml. Pure (no I/O): comments, key order and layout of
//! everything an operation does not touch are kept, and a value set to what it already means
//! (`"5s"` vs 5000) keeps the operator's spelling.

pub mod acls;
pub mod backends;
pub mod binds;
pub mod common;
pub mod defaults;
pub mod frontends;
pub mod global;
pub mod http_request_rules;
pub mod indexed;
pub mod server_templates;
pub mod servers;
pub mod switching_rules;

use super::error::{ApiError, ApiResult};
use crate::config::units::parse_duration;
use toml_edit::{Array, DocumentMut, Item, Table, TableLike, Value};

/// Which half of a proxy a resource belongs to. `[[listen]]` sections are both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Frontend,
    Backend,
}

impl Side {
    pub fn table(self) -> &'static str {
        match self {
            Side::Frontend => "frontend",
            Side::Backend => "backend",
        }
    }
}

/// A proxy section: the array it is in and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecRef {
    pub table: &'static str,
    pub index: usize,
}

fn count(doc: &DocumentMut, table: &str) -> usize {
    match doc.get(table) {
        Some(Item::ArrayOfTables(a)) => a.len(),
        Some(Item::Value(Value::Array(a))) => a.len(),
        _ => 0,
    }
}

pub fn section(doc: &DocumentMut, r: SecRef) -> Option<&dyn TableLike> {
    match doc.get(r.table)? {
        Item::ArrayOfTables(a) => a.get(r.index).map(|t| t as &dyn TableLike),
        Item::Value(Value::Array(a)) => a.get(r.index).and_then(Value::as_inline_table).map(|t| t as &dyn TableLike),
        _ => None,
    }
}

pub fn section_mut(doc: &mut DocumentMut, r: SecRef) -> ApiResult<&mut dyn TableLike> {
    let t: Option<&mut dyn TableLike> = match doc.get_mut(r.table) {
        Some(Item::ArrayOfTables(a)) => a.get_mut(r.index).map(|t| t as &mut dyn TableLike),
        Some(Item::Value(Value::Array(a))) => {
            a.get_mut(r.index).and_then(Value::as_inline_table_mut).map(|t| t as &mut dyn TableLike)
        }
        _ => None,
    };
    t.ok_or_else(|| ApiError::Internal(format!("section {}[{}] vanished", r.table, r.index)))
}

pub fn name_of(t: &dyn TableLike) -> Option<&str> {
    t.get("name").and_then(Item::as_str)
}

/// A `[[listen]]` feeds the backend list when it has servers or is not a pure stats/responder
/// section (the same rule as config validation).
fn listen_is_backend(t: &dyn TableLike) -> bool {
    t.contains_key("servers") || !(t.contains_key("stats") || t.contains_key("http_request"))
}

/// Every section on one side, in file order of its own table, then listens.
pub fn all(doc: &DocumentMut, side: Side) -> Vec<SecRef> {
    let mut out: Vec<SecRef> =
        (0..count(doc, side.table())).map(|index| SecRef { table: side.table(), index }).collect();
    for index in 0..count(doc, "listen") {
        let r = SecRef { table: "listen", index };
        if side == Side::Frontend || section(doc, r).is_some_and(listen_is_backend) {
            out.push(r);
        }
    }
    out
}

pub fn find(doc: &DocumentMut, side: Side, name: &str) -> Option<SecRef> {
    all(doc, side).into_iter().find(|r| section(doc, *r).and_then(name_of) == Some(name))
}

/// The parent a child resource names; a missing one is the original's 400 `missing parent`.
pub fn parent(doc: &DocumentMut, side: Side, name: &str) -> ApiResult<SecRef> {
    find(doc, side, name).ok_or_else(|| ApiError::missing_parent(side.table(), name))
}

/// Appends a `[[frontend]]` / `[[backend]]`; it lands after the last section of its kind.
pub fn append_section(doc: &mut DocumentMut, side: Side, t: Table) -> ApiResult<()> {
    let item = doc.entry(side.table()).or_insert(Item::ArrayOfTables(Default::default()));
    match item {
        Item::ArrayOfTables(a) => {
            a.push(t);
            Ok(())
        }
        Item::Value(Value::Array(a)) => {
            a.push(t.into_inline_table());
            Ok(())
        }
        _ => Err(ApiError::Internal(format!("`{}` in the config is not a list of sections", side.table()))),
    }
}

pub fn remove_section(doc: &mut DocumentMut, r: SecRef) -> ApiResult<()> {
    if r.table == "listen" {
        return Err(ApiError::BadRequest(format!(
            "`{}` is a [[listen]] section (a frontend and a backend in one): edit lbha.toml to remove it",
            section(doc, r).and_then(name_of).unwrap_or("")
        )));
    }
    let empty = match doc.get_mut(r.table) {
        Some(Item::ArrayOfTables(a)) => {
            a.remove(r.index);
            a.is_empty()
        }
        Some(Item::Value(Value::Array(a))) => {
            a.remove(r.index);
            a.is_empty()
        }
        _ => false,
    };
    if empty {
        doc.remove(r.table);
    }
    Ok(())
}

/// A new section holding just its name.
pub fn new_section(name: &str) -> Table {
    let mut t = Table::new();
    t.insert("name", toml_edit::value(name));
    t
}

// ---- reading values ----

pub fn get_str(t: &dyn TableLike, key: &str) -> Option<String> {
    t.get(key).and_then(Item::as_str).map(str::to_string)
}

pub fn get_int(t: &dyn TableLike, key: &str) -> Option<i64> {
    t.get(key).and_then(Item::as_integer)
}

pub fn get_bool(t: &dyn TableLike, key: &str) -> Option<bool> {
    t.get(key).and_then(Item::as_bool)
}

/// A duration (integer milliseconds or a string with units) as milliseconds.
pub fn get_ms(t: &dyn TableLike, key: &str) -> Option<u64> {
    item_ms(t.get(key)?)
}

fn item_ms(i: &Item) -> Option<u64> {
    if let Some(n) = i.as_integer() {
        return u64::try_from(n).ok();
    }
    parse_duration(i.as_str()?).ok().map(|d| d.as_millis() as u64)
}

pub fn sub<'a>(t: &'a dyn TableLike, key: &str) -> Option<&'a dyn TableLike> {
    t.get(key).and_then(Item::as_table_like)
}

// ---- writing values ----

/// Sets or removes one key. An unchanged value keeps its text; a changed one keeps its comments.
pub fn set(t: &mut dyn TableLike, key: &str, v: Option<Value>) {
    match v {
        None => {
            t.remove(key);
        }
        Some(mut new) => {
            if let Some(Item::Value(old)) = t.get_mut(key) {
                if same(old, &new) {
                    return;
                }
                *new.decor_mut() = old.decor().clone();
                *old = new;
                return;
            }
            t.insert(key, Item::Value(new));
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        _ => false,
    }
}

pub fn set_str(t: &mut dyn TableLike, key: &str, v: Option<&str>) {
    set(t, key, v.map(Value::from));
}

pub fn set_int(t: &mut dyn TableLike, key: &str, v: Option<i64>) {
    set(t, key, v.map(Value::from));
}

pub fn set_bool(t: &mut dyn TableLike, key: &str, v: Option<bool>) {
    set(t, key, v.map(Value::from));
}

/// Sets a duration in milliseconds, keeping an existing spelling of the same duration.
pub fn set_ms(t: &mut dyn TableLike, key: &str, v: Option<u64>) {
    if let (Some(ms), Some(old)) = (v, t.get(key))
        && item_ms(old) == Some(ms)
    {
        return;
    }
    set(t, key, v.map(|ms| Value::from(ms as i64)));
}

/// A nested inline table such as `timeout = { connect = 5000 }`, created on demand.
pub fn sub_mut<'a>(t: &'a mut dyn TableLike, key: &str) -> ApiResult<&'a mut dyn TableLike> {
    if !t.contains_key(key) {
        t.insert(key, Item::Value(Value::InlineTable(Default::default())));
    }
    t.get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| ApiError::BadRequest(format!("`{key}` in the config is not a table")))
}

/// Applies `f` to a nested table and removes the table if it ends up empty.
pub fn with_sub(t: &mut dyn TableLike, key: &str, f: impl FnOnce(&mut dyn TableLike)) -> ApiResult<()> {
    let s = sub_mut(t, key)?;
    f(s);
    if s.is_empty() {
        t.remove(key);
    }
    Ok(())
}

// ---- lists of inline tables (servers, use_backend, acl, http_request, bind) ----

pub fn array<'a>(t: &'a dyn TableLike, key: &str) -> Option<&'a Array> {
    t.get(key).and_then(Item::as_array)
}

pub fn array_len(t: &dyn TableLike, key: &str) -> usize {
    array(t, key).map_or(0, Array::len)
}

pub fn array_mut<'a>(t: &'a mut dyn TableLike, key: &str) -> ApiResult<&'a mut Array> {
    if !t.contains_key(key) {
        let mut a = Array::new();
        a.set_trailing("\n");
        t.insert(key, Item::Value(Value::Array(a)));
    }
    t.get_mut(key)
        .and_then(Item::as_array_mut)
        .ok_or_else(|| ApiError::BadRequest(format!("`{key}` in the config is not a list")))
}

/// Inserts keeping the list's layout: one element per line if it already is (or is new).
pub fn insert_elem(a: &mut Array, idx: usize, mut v: Value) {
    let line_prefix = a
        .iter()
        .filter_map(|e| e.decor().prefix().and_then(|p| p.as_str()))
        .find(|p| p.contains('\n'))
        .map(|p| p.rsplit('\n').next().unwrap_or("").to_string());
    let multiline = line_prefix.is_some() || (a.is_empty() && a.trailing().as_str().is_some_and(|s| s.contains('\n')));
    if multiline {
        let indent = line_prefix.unwrap_or_else(|| "  ".to_string());
        v.decor_mut().set_prefix(format!("\n{indent}"));
        v.decor_mut().set_suffix("");
        a.insert_formatted(idx.min(a.len()), v);
        a.set_trailing_comma(true);
        if !a.trailing().as_str().is_some_and(|s| s.contains('\n')) {
            a.set_trailing("\n");
        }
    } else {
        a.insert(idx.min(a.len()), v);
    }
}

/// Removes an element; a list left empty is removed with its key.
pub fn remove_elem(t: &mut dyn TableLike, key: &str, idx: usize) -> ApiResult<()> {
    let a = array_mut(t, key)?;
    if idx < a.len() {
        a.remove(idx);
    }
    if a.is_empty() {
        t.remove(key);
    }
    Ok(())
}

/// Replaces an element in place, keeping its position and line layout.
pub fn replace_elem(a: &mut Array, idx: usize, mut v: Value) {
    if let Some(old) = a.get_mut(idx) {
        *v.decor_mut() = old.decor().clone();
        *old = v;
    }
}

/// Index validation for positional lists: the original's 400 on insert past the end.
pub fn insert_index(index: i64, len: usize, parent: &str) -> ApiResult<usize> {
    if index < 0 {
        return Ok(len);
    }
    let i = index as usize;
    if i > len {
        return Err(ApiError::BadRequest(format!(
            "index out of range: Object with id {index} in {parent} out of range"
        )));
    }
    Ok(i)
}

/// An existing index for GET/PUT/DELETE (404 otherwise).
pub fn existing_index(index: i64, len: usize, what: &str, parent: &str) -> ApiResult<usize> {
    if index < 0 || index as usize >= len {
        return Err(ApiError::NotFound(format!("missing object: {what} {index} does not exist in {parent}")));
    }
    Ok(index as usize)
}

/// `if`/`unless` of a rule as the original's `cond` / `cond_test`.
pub fn read_cond(t: &dyn TableLike) -> (Option<String>, Option<String>) {
    if let Some(c) = get_str(t, "if") {
        return (Some("if".into()), Some(c));
    }
    if let Some(c) = get_str(t, "unless") {
        return (Some("unless".into()), Some(c));
    }
    (None, None)
}

pub fn write_cond(t: &mut dyn TableLike, cond: Option<indexed::Cond>, test: Option<&str>) -> ApiResult<()> {
    use indexed::Cond;
    match (cond, test) {
        (None, None) => {
            set_str(t, "if", None);
            set_str(t, "unless", None);
        }
        (Some(c), Some(test)) if !test.trim().is_empty() => {
            let (k, other) = match c {
                Cond::If => ("if", "unless"),
                Cond::Unless => ("unless", "if"),
            };
            set_str(t, other, None);
            set_str(t, k, Some(test));
        }
        (Some(_), _) => return Err(ApiError::required("cond_test", "body")),
        (None, Some(_)) => return Err(ApiError::required("cond", "body")),
    }
    Ok(())
}

/// `host:port` split for servers; IPv6 literals come without brackets.
pub fn split_addr(addr: &str) -> (String, Option<u16>) {
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => {
            let host = h.trim_start_matches('[').trim_end_matches(']');
            match p.parse() {
                Ok(port) => (host.to_string(), Some(port)),
                Err(_) => (addr.to_string(), None),
            }
        }
        _ => (addr.to_string(), None),
    }
}

pub fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests;
