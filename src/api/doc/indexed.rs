//! Positional lists (use_backend, acl, http_request): the Data Plane API addresses entries by
//! index, 0..n-1 in file order; inserting at i shifts later ones, past the end is a 400.

use super::*;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cond {
    If,
    Unless,
}

/// One kind of positional entry and its lbha form.
pub trait Indexed: Sized {
    /// The list's key in the proxy section.
    const KEY: &'static str;
    /// Decodes a body into the entry and the index it asks for.
    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)>;
    /// The JSON of the entry at `index`, or None if the entry is not of a form the API shows.
    fn read(v: &toml_edit::Value, index: usize) -> Option<Json>;
    fn to_toml(&self) -> ApiResult<toml_edit::Value>;
}

/// The section a list lives in, with a label for messages such as `frontend fe`.
pub struct Parent {
    pub sec: SecRef,
    pub label: String,
}

pub fn list<T: Indexed>(doc: &DocumentMut, p: Option<&Parent>) -> Json {
    let Some(t) = p.and_then(|p| section(doc, p.sec)) else {
        return Json::Array(Vec::new());
    };
    Json::Array(
        array(t, T::KEY).into_iter().flat_map(|a| a.iter()).enumerate().filter_map(|(i, v)| T::read(v, i)).collect(),
    )
}

pub fn get<T: Indexed>(doc: &DocumentMut, p: &Parent, index: i64) -> ApiResult<Json> {
    let t = section(doc, p.sec).ok_or_else(|| ApiError::Internal("parent vanished".into()))?;
    let len = array_len(t, T::KEY);
    let i = existing_index(index, len, "Object with id", &p.label)?;
    array(t, T::KEY).and_then(|a| a.get(i)).and_then(|v| T::read(v, i)).ok_or_else(|| {
        ApiError::BadRequest(format!("{} entry {i} of {} is in a form the API cannot show", T::KEY, p.label))
    })
}

pub fn create<T: Indexed>(doc: &mut DocumentMut, p: &Parent, body: &Json) -> ApiResult<Json> {
    let (index, item) = T::decode(body)?;
    let index = index.ok_or_else(|| ApiError::required("index", "body"))?;
    let v = item.to_toml()?;
    let t = section_mut(doc, p.sec)?;
    let len = array_len(t, T::KEY);
    let at = insert_index(index, len, &p.label)?;
    insert_elem(array_mut(t, T::KEY)?, at, v.clone());
    T::read(&v, at).ok_or_else(|| ApiError::Internal("entry cannot be read back".into()))
}

pub fn replace<T: Indexed>(doc: &mut DocumentMut, p: &Parent, index: i64, body: &Json) -> ApiResult<Json> {
    // The body's index is ignored in favour of the path's, as in the original.
    let (_, item) = T::decode(body)?;
    let v = item.to_toml()?;
    let t = section_mut(doc, p.sec)?;
    let len = array_len(t, T::KEY);
    let i = existing_index(index, len, "Object with id", &p.label)?;
    replace_elem(array_mut(t, T::KEY)?, i, v.clone());
    T::read(&v, i).ok_or_else(|| ApiError::Internal("entry cannot be read back".into()))
}

pub fn delete<T: Indexed>(doc: &mut DocumentMut, p: &Parent, index: i64) -> ApiResult<()> {
    let t = section_mut(doc, p.sec)?;
    let len = array_len(t, T::KEY);
    let i = existing_index(index, len, "Object with id", &p.label)?;
    remove_elem(t, T::KEY, i)
}
