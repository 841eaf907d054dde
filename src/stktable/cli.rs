//! The runtime API's `show table`, `clear table` and `set table`, with HAProxy 2.6's arguments,
//! error texts and output format. Pure: parsing, and running against tables at `now`.

use super::key::{KeyTextError, TKey};
use super::table::{EntryView, Table};
use crate::peers::datatype::{DataType, Encoding};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Show,
    Clear,
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "le" => Op::Le,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "gt" => Op::Gt,
            _ => return None,
        })
    }

    fn test(self, a: i64, b: i64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Le => a <= b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Gt => a > b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub dt: DataType,
    pub op: Op,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    All,
    Key(String),
    Data(Vec<Filter>),
}

/// One parsed `show|clear|set table` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCmd {
    pub action: Action,
    /// None: `show table` alone, the list of tables.
    pub table: Option<String>,
    pub select: Select,
    /// `set table`: the values to store.
    pub set: Vec<(DataType, i64)>,
}

/// HAProxy's limit on data filters in one command.
const MAX_FILTERS: usize = 4;

const OPT_ARGS: &str = "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>";
const CLEAR_ARGS: &str =
    "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>";

/// Like C `strtoll` over the whole word (HAProxy's `strl2llrc`).
fn integer(s: &str) -> Option<i64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || t.starts_with(['+', ' ']) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn data_type(name: &str) -> Option<DataType> {
    DataType::from_name(name)
}

/// Parses the words after `show table`, `clear table` or `set table`.
pub fn parse(action: Action, args: &[&str]) -> Result<TableCmd, String> {
    let mut cmd = TableCmd { action, table: None, select: Select::All, set: Vec::new() };
    let Some((name, rest)) = args.split_first() else {
        return match action {
            Action::Show => Ok(cmd),
            Action::Clear => Err(CLEAR_ARGS.into()),
            Action::Set => Err("Required arguments: <table> key <key> [data.<store_data_type> <value>]*".into()),
        };
    };
    cmd.table = Some(name.to_string());
    match rest {
        [] if action == Action::Set => return Err("Key value expected".into()),
        [] => {}
        ["key"] => return Err("Key value expected".into()),
        ["key", k, more @ ..] => {
            cmd.select = Select::Key(k.to_string());
            if action == Action::Set {
                cmd.set = set_pairs(more)?;
            } else if let Some(x) = more.first() {
                return Err(if x.starts_with("data.") {
                    "Filter entry #1: Unknown data type".into()
                } else if action == Action::Clear {
                    CLEAR_ARGS.into()
                } else {
                    OPT_ARGS.into()
                });
            }
        }
        [d, ..] if d.starts_with("data.") => {
            if action == Action::Set {
                return Err("content-based lookup is only supported with the \"show\" and \"clear\" actions".into());
            }
            cmd.select = Select::Data(filters(rest)?);
        }
        _ if action == Action::Clear => return Err(CLEAR_ARGS.into()),
        _ => return Err(OPT_ARGS.into()),
    }
    Ok(cmd)
}

fn filters(mut w: &[&str]) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    while !w.is_empty() {
        let n = out.len() + 1;
        let name = w[0].strip_prefix("data.");
        let Some(dt) = name.and_then(data_type).filter(|_| n <= MAX_FILTERS) else {
            return Err(format!("Filter entry #{n}: Unknown data type"));
        };
        let Some(op) = w.get(1).and_then(|o| Op::parse(o)) else {
            return Err(format!(
                "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\""
            ));
        };
        let Some(value) = w.get(2).and_then(|v| integer(v)) else {
            return Err(format!("Filter entry #{n}: Require a valid integer value to compare against"));
        };
        out.push(Filter { dt, op, value });
        w = &w[3.min(w.len())..];
    }
    Ok(out)
}

fn set_pairs(mut w: &[&str]) -> Result<Vec<(DataType, i64)>, String> {
    let mut out = Vec::new();
    while let Some(first) = w.first() {
        let Some(name) = first.strip_prefix("data.") else {
            return Err("\"data.<type>\" followed by a value expected".into());
        };
        let dt = data_type(name).ok_or("Unknown data type")?;
        let v = w.get(1).and_then(|v| integer(v)).ok_or("Require a valid integer value to store")?;
        out.push((dt, v));
        w = &w[2.min(w.len())..];
    }
    Ok(out)
}

/// `# table: NAME, type: TYPE, size:N, used:N`
pub fn header(t: &Table, out: &mut String) {
    let d = t.def();
    let _ = writeln!(out, "# table: {}, type: {}, size:{}, used:{}", d.name, d.key.name(), d.size, t.len());
}

/// One entry as `show table` prints it.
pub fn entry_line(k: &TKey, v: &EntryView<'_>, t: &Table, out: &mut String) {
    let _ = write!(out, "{:#x}: key={k} use={} exp={}", v.addr(), v.use_count(), v.expires_in());
    for s in &t.def().store {
        let name = s.dt.name();
        match s.dt.encoding() {
            Encoding::Dict => {
                let _ = write!(out, " {name}={}", v.server_key().unwrap_or("-"));
            }
            Encoding::Rate => {
                let _ = write!(out, " {name}({})={}", s.period, v.read(s.dt, 0).unwrap_or(0));
            }
            Encoding::UintArray => {
                for i in 0..s.count as usize {
                    let _ = write!(out, " {name}{i}={}", v.read(s.dt, i).unwrap_or(0));
                }
            }
            Encoding::RateArray => {
                let base = name.trim_end_matches("_rate");
                for i in 0..s.count as usize {
                    let _ = write!(out, " {base}{i}_rate({})={}", s.period, v.read(s.dt, i).unwrap_or(0));
                }
            }
            Encoding::Signed | Encoding::Uint | Encoding::Ull => {
                let _ = write!(out, " {name}={}", v.read(s.dt, 0).unwrap_or(0));
            }
        }
    }
    out.push('\n');
}

fn key_of(t: &Table, text: &str, action: Action) -> Result<TKey, String> {
    TKey::from_text(text, t.kind()).map_err(|e| match e {
        KeyTextError::Invalid => "Invalid key".to_string(),
        KeyTextError::Unsupported => match action {
            Action::Show => "Showing keys from tables of type other than ip, ipv6, string and integer is not supported",
            Action::Clear => {
                "Removing keys from tables of type other than ip, ipv6, string and integer is not supported"
            }
            Action::Set => {
                "Inserting keys into tables of type other than ip, ipv6, string and integer is not supported"
            }
        }
        .to_string(),
    })
}

fn matches(v: &EntryView<'_>, f: &[Filter]) -> bool {
    f.iter().all(|f| v.read(f.dt, 0).is_some_and(|x| f.op.test(x, f.value)))
}

/// Runs `cmd` against `t` (the table it names) at `now`: the text answer, or HAProxy's error.
pub fn run(cmd: &TableCmd, t: &mut Table, now: u64) -> Result<String, String> {
    if let Select::Data(fs) = &cmd.select
        && fs.iter().any(|f| t.def().stored(f.dt).is_none())
    {
        return Err("Data type not stored in this table".into());
    }
    let mut out = String::new();
    match (cmd.action, &cmd.select) {
        (Action::Show, Select::All) => {
            header(t, &mut out);
            for (k, v) in t.sorted(now) {
                entry_line(k, &v, t, &mut out);
            }
        }
        (Action::Show, Select::Data(fs)) => {
            header(t, &mut out);
            for (k, v) in t.sorted(now) {
                if matches(&v, fs) {
                    entry_line(k, &v, t, &mut out);
                }
            }
        }
        (Action::Show, Select::Key(text)) => {
            let k = key_of(t, text, Action::Show)?;
            if let Some(v) = t.get(&k, now) {
                header(t, &mut out);
                entry_line(&k, &v, t, &mut out);
            }
        }
        (Action::Clear, Select::All) => {
            t.remove_if(now, |_, _| true);
        }
        (Action::Clear, Select::Data(fs)) => {
            t.remove_if(now, |_, v| matches(v, fs));
        }
        (Action::Clear, Select::Key(text)) => {
            let k = key_of(t, text, Action::Clear)?;
            t.remove(&k);
        }
        (Action::Set, Select::Key(text)) => {
            let k = key_of(t, text, Action::Set)?;
            // As 2.6: the entry is created first and the values applied in order, up to the
            // first type the table does not store.
            let mut e = t.touch(&k, now).ok_or("Unable to allocate a new entry")?;
            for (dt, v) in &cmd.set {
                if !e.set_value(*dt, *v) {
                    return Err("Data type not stored in this table".into());
                }
            }
        }
        (Action::Set, _) => return Err("Key value expected".into()),
    }
    Ok(out)
}

/// One entry as the Data Plane API's `stick_table_entries` returns it: `id`, `key`, `use`,
/// `exp` and one field per stored type (rates by name, arrays as `gpc0`, `gpc1`, ...).
pub fn entry_json(k: &TKey, v: &EntryView<'_>, t: &Table) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), format!("{:#x}", v.addr()).into());
    m.insert("key".into(), k.to_string().into());
    m.insert("use".into(), v.use_count().into());
    m.insert("exp".into(), v.expires_in().into());
    for s in &t.def().store {
        let name = s.dt.name();
        match s.dt.encoding() {
            Encoding::Dict => {
                m.insert(name.into(), v.server_key().map_or(serde_json::Value::Null, Into::into));
            }
            Encoding::UintArray | Encoding::RateArray => {
                let base = name.trim_end_matches("_rate");
                let suffix = if s.dt.is_rate() { "_rate" } else { "" };
                for i in 0..s.count as usize {
                    m.insert(format!("{base}{i}{suffix}"), v.read(s.dt, i).unwrap_or(0).into());
                }
            }
            _ => {
                m.insert(name.into(), v.read(s.dt, 0).unwrap_or(0).into());
            }
        }
    }
    m.into()
}

/// A table as the Data Plane API's `stick_tables` lists it.
pub fn table_json(t: &Table) -> serde_json::Value {
    let d = t.def();
    let fields: Vec<serde_json::Value> = d
        .store
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert("field".into(), s.dt.name().into());
            m.insert("type".into(), if s.dt.is_rate() { "rate" } else { "counter" }.into());
            if s.period > 0 {
                m.insert("period".into(), s.period.into());
            }
            if s.dt.is_array() {
                m.insert("idx".into(), s.count.into());
            }
            m.into()
        })
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("name".into(), d.name.clone().into());
    m.insert("type".into(), d.key.name().into());
    m.insert("size".into(), d.size.into());
    m.insert("used".into(), t.len().into());
    m.insert("fields".into(), fields.into());
    m.into()
}

/// The JSON form of a `show table` answer: the table and the entries shown.
pub fn show_json(cmd: &TableCmd, t: &Table, now: u64) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = t
        .sorted(now)
        .into_iter()
        .filter(|(k, v)| match &cmd.select {
            Select::All => true,
            Select::Data(fs) => matches(v, fs),
            Select::Key(text) => TKey::from_text(text, t.kind()).is_ok_and(|x| &x == *k),
        })
        .map(|(k, v)| entry_json(k, &v, t))
        .collect();
    serde_json::json!({ "table": table_json(t), "entries": entries })
}

/// `show table` alone: one header per table, the last declared first (HAProxy's list order).
pub fn list<'a>(tables: impl DoubleEndedIterator<Item = &'a Table>) -> String {
    let mut out = String::new();
    for t in tables.rev() {
        header(t, &mut out);
    }
    out
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
