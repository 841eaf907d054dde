//! `server-template`: a server entry with `template = N` stands for servers `<name>1`..`<name>N`
//! sharing its settings. Expanded in the configuration text before validation, so every later
//! step (the runtime overlay, `show servers`, the state file) sees ordinary servers. The slots
//! start without an address (`init_addr = "none"` unless set) until the resolvers fill them.

use toml_edit::{DocumentMut, Item, Value};

const MAX: i64 = 10_000;

/// The text with templates expanded, or None when it has none (the text is used as is).
pub fn expand(text: &str) -> Result<Option<String>, String> {
    if !text.contains("template") {
        return Ok(None);
    }
    let Ok(mut doc) = text.parse::<DocumentMut>() else { return Ok(None) };
    let mut changed = false;
    for (k, item) in doc.as_table_mut().iter_mut() {
        if !["backend", "listen"].contains(&k.get()) {
            continue;
        }
        let Some(aot) = item.as_array_of_tables_mut() else { continue };
        for t in aot.iter_mut() {
            let backend = t.get("name").and_then(Item::as_str).unwrap_or("").to_string();
            match t.get_mut("servers") {
                Some(Item::Value(Value::Array(arr))) => {
                    let mut out = toml_edit::Array::new();
                    for v in arr.iter() {
                        match v.as_inline_table() {
                            Some(it) if it.contains_key("template") => {
                                changed = true;
                                let n = count(it.get("template"), &backend)?;
                                for i in 1..=n {
                                    let mut s = it.clone();
                                    slot(&mut s, i);
                                    out.push(Value::InlineTable(s));
                                }
                            }
                            _ => out.push(v.clone()),
                        }
                    }
                    *arr = out;
                }
                Some(Item::ArrayOfTables(servers)) => {
                    let mut out = toml_edit::ArrayOfTables::new();
                    for st in servers.iter() {
                        if st.contains_key("template") {
                            changed = true;
                            let n = count(st.get("template").and_then(Item::as_value), &backend)?;
                            for i in 1..=n {
                                let mut it = st.clone().into_inline_table();
                                slot(&mut it, i);
                                out.push(it.into_table());
                            }
                        } else {
                            out.push(st.clone());
                        }
                    }
                    *servers = out;
                }
                _ => {}
            }
        }
    }
    Ok(changed.then(|| doc.to_string()))
}

fn count(v: Option<&Value>, backend: &str) -> Result<i64, String> {
    match v.and_then(Value::as_integer) {
        Some(n @ 1..=MAX) => Ok(n),
        _ => Err(format!("backend `{backend}`: a server's `template` must be a number of servers from 1 to {MAX}")),
    }
}

fn slot(s: &mut toml_edit::InlineTable, i: i64) {
    s.remove("template");
    let name = s.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    s.insert("name", Value::from(format!("{name}{i}")));
    if !s.contains_key("init_addr") {
        s.insert("init_addr", Value::from("none"));
    }
    s.fmt();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_servers() {
        let t = "[[backend]]\nname = \"be\"\nservers = [{ name = \"web\", addr = \"app.example:80\", template = 3, resolvers = \"dns\" }, { name = \"x\", addr = \"127.0.0.1:1\" }]\n";
        let out = expand(t).unwrap().unwrap();
        let doc: toml::Value = toml::from_str(&out).unwrap();
        let servers = doc["backend"][0]["servers"].as_array().unwrap();
        let names: Vec<&str> = servers.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["web1", "web2", "web3", "x"]);
        assert_eq!(servers[1]["init_addr"].as_str(), Some("none"));
        assert!(servers[0].get("template").is_none());
        let tables = "[[backend]]\nname = \"be\"\n[[backend.servers]]\nname = \"w\"\naddr = \"a.example:80\"\ntemplate = 2\ninit_addr = \"last,libc,none\"\n";
        let doc: toml::Value = toml::from_str(&expand(tables).unwrap().unwrap()).unwrap();
        let servers = doc["backend"][0]["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1]["name"].as_str(), Some("w2"));
        assert_eq!(servers[1]["init_addr"].as_str(), Some("last,libc,none"));
        assert!(expand(&t.replace("template = 3", "template = 0")).unwrap_err().contains("`be`"));
        assert_eq!(expand("[global]\n").unwrap(), None);
    }
}
