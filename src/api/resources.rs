//! Resource dispatch over the document layer: which list, which parent, which operation. Pure.

use super::doc::indexed::{self, Parent};
use super::doc::{self, Side};
use super::error::{ApiError, ApiResult};
use serde_json::Value as Json;
use toml_edit::DocumentMut;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backends,
    Servers,
    ServerTemplates,
    Frontends,
    Binds,
    SwitchingRules,
    ServerSwitchingRules,
    Acls,
    HttpRequestRules,
    Defaults,
    Global,
}

impl Kind {
    /// The path segment under `/services/haproxy/configuration/`.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Backends => "backends",
            Kind::Servers => "servers",
            Kind::ServerTemplates => "server_templates",
            Kind::Frontends => "frontends",
            Kind::Binds => "binds",
            Kind::SwitchingRules => "backend_switching_rules",
            Kind::ServerSwitchingRules => "server_switching_rules",
            Kind::Acls => "acls",
            Kind::HttpRequestRules => "http_request_rules",
            Kind::Defaults => "defaults",
            Kind::Global => "global",
        }
    }
    pub const ALL: [Kind; 11] = [
        Kind::Backends,
        Kind::Servers,
        Kind::ServerTemplates,
        Kind::Frontends,
        Kind::Binds,
        Kind::SwitchingRules,
        Kind::ServerSwitchingRules,
        Kind::Acls,
        Kind::HttpRequestRules,
        Kind::Defaults,
        Kind::Global,
    ];
    pub fn from_segment(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == s)
    }
    /// Single sections (defaults, global) have no items, only GET/PUT on the collection path.
    pub fn is_single(self) -> bool {
        matches!(self, Kind::Defaults | Kind::Global)
    }
}

/// The query parameters that pick a parent.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub backend: Option<String>,
    pub frontend: Option<String>,
    pub parent_type: Option<String>,
    pub parent_name: Option<String>,
    /// `acl_name=`: only the ACL lines of this name.
    pub acl_name: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Create(&'a Json),
    Replace(Option<&'a str>, &'a Json),
    Delete(&'a str),
}

fn parent_name(scope: &Scope, side: Side) -> ApiResult<String> {
    let direct = match side {
        Side::Backend => scope.backend.as_ref(),
        Side::Frontend => scope.frontend.as_ref(),
    };
    if let Some(n) = direct.filter(|n| !n.is_empty()) {
        return Ok(n.clone());
    }
    match (scope.parent_type.as_deref(), scope.parent_name.as_ref()) {
        (Some(t), Some(n)) if t == side.table() && !n.is_empty() => Ok(n.clone()),
        (Some(t), Some(_)) => Err(ApiError::BadRequest(format!(
            "parent_type: `{t}` is not supported here by lbha (use {})",
            side.table()
        ))),
        _ => Err(ApiError::required(side.table(), "query")),
    }
}

/// acls and http_request_rules: `parent_type` (frontend|backend) and `parent_name`.
fn typed_parent(scope: &Scope) -> ApiResult<(Side, String)> {
    let side = match scope.parent_type.as_deref() {
        Some("frontend") => Side::Frontend,
        Some("backend") => Side::Backend,
        Some(_) => {
            return Err(ApiError::Schema {
                code: 606,
                message: "parent_type in query should be one of [frontend backend]".into(),
            });
        }
        None => return Err(ApiError::required("parent_type", "query")),
    };
    let name = scope
        .parent_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::required("parent_name", "query"))?;
    Ok((side, name))
}

fn indexed_parent(doc: &DocumentMut, kind: Kind, scope: &Scope) -> ApiResult<(Side, String)> {
    let _ = doc;
    match kind {
        Kind::SwitchingRules => scope
            .frontend
            .clone()
            .filter(|n| !n.is_empty())
            .map(|n| (Side::Frontend, n))
            .ok_or_else(|| ApiError::required("frontend", "query")),
        Kind::ServerSwitchingRules => scope
            .backend
            .clone()
            .filter(|n| !n.is_empty())
            .map(|n| (Side::Backend, n))
            .ok_or_else(|| ApiError::required("backend", "query")),
        _ => typed_parent(scope),
    }
}

fn resolve(doc: &DocumentMut, side: Side, name: &str) -> ApiResult<Parent> {
    Ok(Parent { sec: doc::parent(doc, side, name)?, label: format!("{} {name}", side.table()) })
}

fn index(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| ApiError::BadRequest(format!("index: `{id}` in path is not an integer")))
}

/// GET: the collection (`id` None) or one item.
pub fn read(doc: &DocumentMut, kind: Kind, scope: &Scope, id: Option<&str>) -> ApiResult<Json> {
    use doc::{backends, binds, frontends, server_templates, servers};
    match (kind, id) {
        (Kind::Backends, None) => Ok(backends::list(doc)),
        (Kind::Backends, Some(n)) => backends::get(doc, n),
        (Kind::Frontends, None) => Ok(frontends::list(doc)),
        (Kind::Frontends, Some(n)) => frontends::get(doc, n),
        (Kind::Servers, None) => Ok(servers::list(doc, &parent_name(scope, Side::Backend)?)),
        (Kind::Servers, Some(n)) => servers::get(doc, &parent_name(scope, Side::Backend)?, n),
        (Kind::ServerTemplates, None) => Ok(server_templates::list(doc, &parent_name(scope, Side::Backend)?)),
        (Kind::ServerTemplates, Some(n)) => server_templates::get(doc, &parent_name(scope, Side::Backend)?, n),
        (Kind::Binds, None) => Ok(binds::list(doc, &parent_name(scope, Side::Frontend)?)),
        (Kind::Binds, Some(n)) => binds::get(doc, &parent_name(scope, Side::Frontend)?, n),
        (Kind::Defaults, _) => Ok(doc::defaults::get(doc)),
        (Kind::Global, _) => Ok(doc::global::get(doc)),
        (k, id) => {
            let (side, name) = indexed_parent(doc, k, scope)?;
            let parent = match (id, resolve(doc, side, &name)) {
                (None, Err(_)) => return Ok(Json::Array(Vec::new())),
                (_, p) => p?,
            };
            match (k, id) {
                (Kind::SwitchingRules, None) => Ok(indexed::list::<doc::switching_rules::Rule>(doc, Some(&parent))),
                (Kind::SwitchingRules, Some(i)) => indexed::get::<doc::switching_rules::Rule>(doc, &parent, index(i)?),
                (Kind::ServerSwitchingRules, None) => {
                    Ok(indexed::list::<doc::switching_rules::ServerRule>(doc, Some(&parent)))
                }
                (Kind::ServerSwitchingRules, Some(i)) => {
                    indexed::get::<doc::switching_rules::ServerRule>(doc, &parent, index(i)?)
                }
                (Kind::Acls, None) => {
                    let all = indexed::list::<doc::acls::Acl>(doc, Some(&parent));
                    Ok(match (scope.acl_name.as_deref().filter(|n| !n.is_empty()), all) {
                        (Some(n), Json::Array(v)) => {
                            Json::Array(v.into_iter().filter(|a| a["acl_name"] == n).collect())
                        }
                        (_, all) => all,
                    })
                }
                (Kind::Acls, Some(i)) => indexed::get::<doc::acls::Acl>(doc, &parent, index(i)?),
                (_, None) => Ok(indexed::list::<doc::http_request_rules::HttpRequestRule>(doc, Some(&parent))),
                (_, Some(i)) => indexed::get::<doc::http_request_rules::HttpRequestRule>(doc, &parent, index(i)?),
            }
        }
    }
}

/// POST/PUT/DELETE on the document. Returns the object to echo (None for a delete).
pub fn write(doc: &mut DocumentMut, kind: Kind, scope: &Scope, w: Write) -> ApiResult<Option<Json>> {
    use doc::{backends, binds, frontends, server_templates, servers};
    let no_item = || ApiError::MethodNotAllowed(format!("{} takes no item path", kind.segment()));
    let need_item = || ApiError::MethodNotAllowed(format!("PUT needs an item path under {}", kind.segment()));
    Ok(match (kind, w) {
        (Kind::Backends, Write::Create(b)) => Some(backends::create(doc, b)?),
        (Kind::Backends, Write::Replace(Some(n), b)) => Some(backends::replace(doc, n, b)?),
        (Kind::Backends, Write::Delete(n)) => {
            backends::delete(doc, n)?;
            None
        }
        (Kind::Frontends, Write::Create(b)) => Some(frontends::create(doc, b)?),
        (Kind::Frontends, Write::Replace(Some(n), b)) => Some(frontends::replace(doc, n, b)?),
        (Kind::Frontends, Write::Delete(n)) => {
            frontends::delete(doc, n)?;
            None
        }
        (Kind::Servers, w) => {
            let p = parent_name(scope, Side::Backend)?;
            match w {
                Write::Create(b) => Some(servers::create(doc, &p, b)?),
                Write::Replace(Some(n), b) => Some(servers::replace(doc, &p, n, b)?),
                Write::Replace(None, _) => return Err(need_item()),
                Write::Delete(n) => {
                    servers::delete(doc, &p, n)?;
                    None
                }
            }
        }
        (Kind::ServerTemplates, w) => {
            let p = parent_name(scope, Side::Backend)?;
            match w {
                Write::Create(b) => Some(server_templates::create(doc, &p, b)?),
                Write::Replace(Some(n), b) => Some(server_templates::replace(doc, &p, n, b)?),
                Write::Replace(None, _) => return Err(need_item()),
                Write::Delete(n) => {
                    server_templates::delete(doc, &p, n)?;
                    None
                }
            }
        }
        (Kind::Binds, w) => {
            let p = parent_name(scope, Side::Frontend)?;
            match w {
                Write::Create(b) => Some(binds::create(doc, &p, b)?),
                Write::Replace(Some(n), b) => Some(binds::replace(doc, &p, n, b)?),
                Write::Replace(None, _) => return Err(need_item()),
                Write::Delete(n) => {
                    binds::delete(doc, &p, n)?;
                    None
                }
            }
        }
        (Kind::Defaults, Write::Replace(None, b)) => Some(doc::defaults::replace(doc, b)?),
        (Kind::Global, Write::Replace(None, b)) => Some(doc::global::replace(doc, b)?),
        (Kind::Defaults | Kind::Global, _) => return Err(no_item()),
        (Kind::Backends | Kind::Frontends, Write::Replace(None, _)) => return Err(need_item()),
        (k, w) => {
            let (side, name) = indexed_parent(doc, k, scope)?;
            let parent = resolve(doc, side, &name)?;
            match k {
                Kind::SwitchingRules => indexed_write::<doc::switching_rules::Rule>(doc, &parent, w)?,
                Kind::ServerSwitchingRules => indexed_write::<doc::switching_rules::ServerRule>(doc, &parent, w)?,
                Kind::Acls => indexed_write::<doc::acls::Acl>(doc, &parent, w)?,
                _ => indexed_write::<doc::http_request_rules::HttpRequestRule>(doc, &parent, w)?,
            }
        }
    })
}

fn indexed_write<T: indexed::Indexed>(doc: &mut DocumentMut, p: &Parent, w: Write) -> ApiResult<Option<Json>> {
    Ok(match w {
        Write::Create(b) => Some(indexed::create::<T>(doc, p, b)?),
        Write::Replace(Some(i), b) => Some(indexed::replace::<T>(doc, p, index(i)?, b)?),
        Write::Replace(None, _) => {
            return Err(ApiError::MethodNotAllowed("PUT needs an index in the path".into()));
        }
        Write::Delete(i) => {
            indexed::delete::<T>(doc, p, index(i)?)?;
            None
        }
    })
}
