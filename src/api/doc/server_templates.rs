//! `server_templates?backend=`: HAProxy's `server-template PREFIX NUM|RANGE FQDN[:PORT] [params]`,
//! the entries of a backend's `servers` list with `template = N`. A template is a server entry
//! under other names (`prefix` for `name`, `fqdn` for `address`, plus `num_or_range`), so it is
//! decoded, validated, read and written by the server resource's code.

use super::servers::{self, Entries, Server};
use super::*;
use crate::api::json;
use serde_json::Value as Json;
use toml_edit::InlineTable;

/// The most servers one template stands for (as lbha's loader allows).
const MAX: u32 = 10_000;

/// A template's body, checked: the server it stands for and how many.
struct Template {
    server: Server,
    count: u32,
}

/// `num_or_range`: `N`, or `1-N` (lbha numbers a template's servers from 1, as `lbha convert`
/// requires of a range).
fn count(v: &str) -> ApiResult<u32> {
    let n = match v.split_once('-') {
        Some(("1", high)) => high,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "num_or_range: lbha numbers a template's servers from 1 (`N` or `1-N`), got `{v}`"
            )));
        }
        None => v,
    };
    match n.trim().parse::<u32>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => {
            Err(ApiError::BadRequest(format!("num_or_range: expected `N` or `1-N` with N from 1 to {MAX}, got `{v}`")))
        }
    }
}

impl Template {
    fn decode(body: &Json) -> ApiResult<Template> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::BadRequest("body: expected a JSON object".into()));
        };
        for k in ["name", "address"] {
            if obj.contains_key(k) {
                let instead = if k == "name" { "prefix" } else { "fqdn" };
                return Err(ApiError::BadRequest(format!("{k}: unknown field (a server template has `{instead}`)")));
            }
        }
        let text = |k: &str| match obj.get(k) {
            None | Some(Json::Null) => Err(ApiError::required(k, "body")),
            Some(Json::String(s)) => Ok(s.clone()),
            // HAProxy's API has `num_or_range` as a string; a bare number is taken too.
            Some(Json::Number(n)) if k == "num_or_range" => Ok(n.to_string()),
            Some(_) => Err(ApiError::BadRequest(format!("{k}: expected a string"))),
        };
        let (prefix, fqdn, range) = (text("prefix")?, text("fqdn")?, text("num_or_range")?);
        json::check_name("prefix", &prefix)?;
        json::check_no_space("fqdn", &fqdn)?;
        let count = count(&range)?;
        let mut as_server = obj.clone();
        for k in ["prefix", "fqdn", "num_or_range"] {
            as_server.remove(k);
        }
        as_server.insert("name".into(), Json::String(prefix));
        as_server.insert("address".into(), Json::String(fqdn));
        Ok(Template { server: Server::decode(&Json::Object(as_server))?, count })
    }

    fn write(&self, t: &mut InlineTable) {
        self.server.write(t);
        set_int(t, "template", Some(i64::from(self.count)));
    }

    fn to_json(&self) -> Json {
        shown(json::to_value(&self.server), self.count)
    }
}

/// A server's JSON under a template's names.
fn shown(server: Json, count: u32) -> Json {
    let Json::Object(mut m) = server else { return server };
    if let Some(n) = m.remove("name") {
        m.insert("prefix".into(), n);
    }
    if let Some(a) = m.remove("address") {
        m.insert("fqdn".into(), a);
    }
    m.insert("num_or_range".into(), Json::String(count.to_string()));
    Json::Object(m)
}

fn read(t: &InlineTable) -> Json {
    let n = get_int(t, "template").and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    shown(json::to_value(&Server::read(t)), n)
}

pub fn list(doc: &DocumentMut, backend: &str) -> Json {
    servers::list_of(doc, backend, Entries::Templates, read)
}

pub fn get(doc: &DocumentMut, backend: &str, prefix: &str) -> ApiResult<Json> {
    servers::get_of(doc, backend, prefix, Entries::Templates, read)
}

pub fn create(doc: &mut DocumentMut, backend: &str, body: &Json) -> ApiResult<Json> {
    let t = Template::decode(body)?;
    servers::create_entry(doc, backend, &t.server.name, |it| t.write(it))?;
    Ok(t.to_json())
}

pub fn replace(doc: &mut DocumentMut, backend: &str, prefix: &str, body: &Json) -> ApiResult<Json> {
    let t = Template::decode(body)?;
    if t.server.name != prefix {
        return Err(ApiError::BadRequest(format!(
            "prefix: `{}` differs from the template in the path (`{prefix}`); lbha does not rename",
            t.server.name
        )));
    }
    servers::replace_entry(doc, backend, prefix, Entries::Templates, |it| t.write(it))?;
    Ok(t.to_json())
}

pub fn delete(doc: &mut DocumentMut, backend: &str, prefix: &str) -> ApiResult<()> {
    servers::delete_entry(doc, backend, prefix, Entries::Templates)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_and_ranges_from_one() {
        assert_eq!(count("5").unwrap(), 5);
        assert_eq!(count("1-3").unwrap(), 3);
        for bad in ["0", "2-5", "x", "1-", "", "10001", "1-0"] {
            assert!(count(bad).is_err(), "{bad}");
        }
    }
}
