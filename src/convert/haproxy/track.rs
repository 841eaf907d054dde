//! Stick-counter actions of `http-request`/`http-response` lines: `track-sc0|1|2 KEY [table
//! T]`, `sc-inc-gpc0|1(SC)`, `sc-inc-gpc(IDX,SC)`, `sc-set-gpt0(SC) VALUE`, `sc-set-gpt(IDX,SC)
//! VALUE`, into lbha's `track_sc0`... keys. (`tcp-request` keeps HAProxy's words as they are.)

use super::ast::Directive;
use crate::stktable::track::{GptValue, ScAction, StickAction, parse_words};
use toml_edit::{InlineTable, Value};

/// Whether `name` (the action word without its parentheses) is a stick-counter action.
pub(super) fn is_stick(name: &str) -> bool {
    name.starts_with("track-sc")
        || matches!(name, "sc-inc-gpc0" | "sc-inc-gpc1" | "sc-inc-gpc" | "sc-set-gpt0" | "sc-set-gpt")
}

/// The rule's key, value and the index of the first word after the action; Err: why the words
/// are wrong.
pub(super) fn http_action(d: &Directive, action: &str) -> Result<(&'static str, Value, usize), String> {
    let word = |i: usize| d.arg(i).filter(|w| *w != "if" && *w != "unless");
    if let Some(n) = action.strip_prefix("track-sc") {
        let key = word(2).ok_or_else(|| format!("`{action}` needs a key expression"))?;
        let name: &'static str = match n {
            "0" => "track_sc0",
            "1" => "track_sc1",
            "2" => "track_sc2",
            _ => return Err(format!("`{action}`: stick counter must be 0, 1 or 2")),
        };
        parse_words(action, key)?;
        if d.arg(3) == Some("table") {
            let table = word(4).ok_or_else(|| format!("`{action} {key} table` needs a table name"))?;
            let mut t = InlineTable::new();
            t.insert("key", key.into());
            t.insert("table", table.into());
            return Ok((name, Value::InlineTable(t), 5));
        }
        return Ok((name, Value::from(key), 3));
    }
    let value = word(2).filter(|_| action.starts_with("sc-set-gpt")).unwrap_or("");
    let next = if value.is_empty() { 2 } else { 3 };
    let Some(StickAction::Sc(a)) = parse_words(action, value)? else {
        return Err(format!("`{action}` is not a stick-counter action"));
    };
    let name = action.split('(').next().unwrap_or(action);
    Ok(match (name, a) {
        ("sc-inc-gpc0", ScAction::IncGpc { sc, .. }) => ("sc_inc_gpc0", Value::from(sc as i64), next),
        ("sc-inc-gpc1", ScAction::IncGpc { sc, .. }) => ("sc_inc_gpc1", Value::from(sc as i64), next),
        ("sc-inc-gpc", ScAction::IncGpc { idx, sc }) => {
            let mut t = InlineTable::new();
            t.insert("idx", (idx as i64).into());
            t.insert("sc", (sc as i64).into());
            ("sc_inc_gpc", Value::InlineTable(t), next)
        }
        (n, ScAction::SetGpt { idx, sc, value: v }) => {
            let mut t = InlineTable::new();
            if n == "sc-set-gpt" {
                t.insert("idx", (idx as i64).into());
            }
            t.insert("sc", (sc as i64).into());
            match v {
                GptValue::Int(i) => t.insert("value", i.into()),
                GptValue::Expr(_) => t.insert("value", value.into()),
            };
            (if n == "sc-set-gpt" { "sc_set_gpt" } else { "sc_set_gpt0" }, Value::InlineTable(t), next)
        }
        _ => return Err(format!("`{action}` is not a stick-counter action")),
    })
}
