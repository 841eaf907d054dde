//! Building lbha.toml with `toml_edit`, so the operator's comments travel with the settings they
//! describe, and remembering which source line each TOML path came from, so errors found when
//! the result is validated point back into haproxy.cfg / keepalived.conf.

use super::report::Loc;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// Where a value came from and the comments that travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Src {
    pub loc: Loc,
    /// Whole-line comments, without the leading `#`.
    pub comments: Vec<String>,
    pub trailing: Option<String>,
}

impl Src {
    pub fn bare(loc: Loc) -> Self {
        Self { loc, comments: Vec::new(), trailing: None }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Value(Value),
    /// An inline table built from several directives (`timeout`, `check`, `stats`).
    Table(Vec<(String, Value, Loc)>),
    /// A list of values, each with its own origin and comments (`servers`, `acl`, ...).
    List(Vec<(Value, Src)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub slot: Slot,
    pub srcs: Vec<Src>,
}

/// One output table being filled from directives.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableOut {
    pub entries: Vec<Entry>,
    /// Lines for the header comment: directives that were not converted.
    pub dropped: Vec<String>,
}

impl TableOut {
    fn entry_mut(&mut self, key: &str, make: impl FnOnce() -> Slot) -> &mut Entry {
        let i = match self.entries.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                self.entries.push(Entry { key: key.to_string(), slot: make(), srcs: Vec::new() });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    fn add_src(e: &mut Entry, src: Src) {
        if !e.srcs.iter().any(|s| s.loc == src.loc) {
            e.srcs.push(src);
        }
    }

    /// Sets a scalar; a later directive replaces an earlier one, as in HAProxy.
    pub fn set(&mut self, key: &str, v: impl Into<Value>, src: Src) {
        let v = v.into();
        let e = self.entry_mut(key, || Slot::Value(v.clone()));
        e.slot = Slot::Value(v);
        Self::add_src(e, src);
    }

    /// Sets `key.sub` in an inline table.
    pub fn set_in(&mut self, key: &str, sub: &str, v: impl Into<Value>, src: Src) {
        let v = v.into();
        let loc = src.loc.clone();
        let e = self.entry_mut(key, || Slot::Table(Vec::new()));
        if let Slot::Table(fields) = &mut e.slot {
            match fields.iter_mut().find(|f| f.0 == sub) {
                Some(f) => {
                    f.1 = v;
                    f.2 = loc;
                }
                None => fields.push((sub.to_string(), v, loc)),
            }
        }
        Self::add_src(e, src);
    }

    /// Makes sure the inline table `key` exists (`stats enable` with nothing else).
    pub fn ensure_table(&mut self, key: &str, src: Src) {
        let e = self.entry_mut(key, || Slot::Table(Vec::new()));
        Self::add_src(e, src);
    }

    /// Appends to the array `key.sub` inside an inline table (`stats.auth`).
    pub fn push_in(&mut self, key: &str, sub: &str, v: impl Into<Value>, src: Src) {
        let v = v.into();
        let mut list = match self.get_in(key, sub) {
            Some(Value::Array(a)) => a.clone(),
            _ => Array::new(),
        };
        list.push(v);
        self.set_in(key, sub, list, src);
    }

    /// Appends an item to the list `key`.
    pub fn push(&mut self, key: &str, v: impl Into<Value>, src: Src) {
        let e = self.entry_mut(key, || Slot::List(Vec::new()));
        if let Slot::List(items) = &mut e.slot {
            items.push((v.into(), src));
        }
    }

    /// The items of the list `key`, to adjust after the fact.
    pub fn list_mut(&mut self, key: &str) -> Option<&mut Vec<(Value, Src)>> {
        match &mut self.entries.iter_mut().find(|e| e.key == key)?.slot {
            Slot::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn value(&self, key: &str) -> Option<&Value> {
        match &self.get(key)?.slot {
            Slot::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn get_in(&self, key: &str, sub: &str) -> Option<&Value> {
        match &self.get(key)?.slot {
            Slot::Table(f) => f.iter().find(|f| f.0 == sub).map(|f| &f.1),
            _ => None,
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }

    pub fn remove_in(&mut self, key: &str, sub: &str) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key)
            && let Slot::Table(f) = &mut e.slot
        {
            f.retain(|f| f.0 != sub);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Copies `other`'s entries that this table lacks (inline tables field by field), for keys
    /// `keep` accepts. Used to write a `defaults` section's settings into a proxy.
    pub fn inherit(&mut self, other: &TableOut, keep: &dyn Fn(&str) -> bool) {
        for e in other.entries.iter().filter(|e| keep(&e.key)) {
            match (&e.slot, self.entries.iter().position(|m| m.key == e.key)) {
                (_, None) => self.entries.push(e.clone()),
                (Slot::Table(fields), Some(i)) => {
                    if let Slot::Table(mine) = &mut self.entries[i].slot {
                        for f in fields {
                            if !mine.iter().any(|m| m.0 == f.0) {
                                mine.push(f.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// TOML paths (as `config::error::FieldPath` prints them) and the source lines they came from.
#[derive(Debug, Clone, Default)]
pub struct Origins(Vec<(String, Loc)>);

impl Origins {
    pub(crate) fn add(&mut self, path: String, loc: Loc) {
        self.0.push((path, loc));
    }

    /// The source line of the longest recorded path that `path` starts with.
    pub fn find(&self, path: &str) -> Option<&Loc> {
        self.0
            .iter()
            .filter(|(p, _)| {
                path == p
                    || (path.starts_with(p.as_str()) && matches!(path.as_bytes().get(p.len()), Some(b'.') | Some(b'[')))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, l)| l)
    }
}

/// Comment lines for a decor prefix; control characters TOML forbids in comments are replaced.
pub(crate) fn comment_block(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push('#');
        s.extend(l.chars().map(|c| if (c.is_control() && c != '\t') || c == '\u{7f}' { '\u{fffd}' } else { c }));
        s.push('\n');
    }
    s
}

/// The document being written, in source order.
pub(crate) struct Doc {
    pub doc: DocumentMut,
    pub origins: Origins,
    position: isize,
    /// Comment lines waiting for the next table header (from sections that produced no table).
    pending: Vec<String>,
}

impl Doc {
    pub fn new(head: &[String]) -> Self {
        let mut doc = DocumentMut::new();
        let mut prefix = comment_block(head);
        if !prefix.is_empty() {
            prefix.push('\n');
        }
        doc.decor_mut().set_prefix(prefix);
        Self { doc, origins: Origins::default(), position: 0, pending: Vec::new() }
    }

    /// Comment lines that go above the next table.
    pub fn pend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.pending.extend(lines);
    }

    /// Adds `[name]` (when `array` is false) or one more `[[name]]`, with header comments.
    pub fn table(&mut self, name: &str, array: bool, header: Vec<String>, loc: &Loc, out: &TableOut, order: &[&str]) {
        let index = if array {
            match self.doc.get(name) {
                Some(Item::ArrayOfTables(a)) => a.len(),
                _ => 0,
            }
        } else {
            0
        };
        let path = if array { format!("{name}[{index}]") } else { name.to_string() };
        let mut t = Table::new();
        render(&mut t, out, &path, order, &mut self.origins);
        self.origins.add(path, loc.clone());
        let mut lines = std::mem::take(&mut self.pending);
        lines.extend(header);
        let mut prefix = String::from(if self.position == 0 { "" } else { "\n" });
        prefix.push_str(&comment_block(&lines));
        t.decor_mut().set_prefix(prefix);
        t.set_position(Some(self.position));
        self.position += 1;
        if array {
            match self.doc.get_mut(name) {
                Some(Item::ArrayOfTables(a)) => a.push(t),
                _ => {
                    let mut a = ArrayOfTables::new();
                    a.push(t);
                    self.doc.insert(name, Item::ArrayOfTables(a));
                }
            }
        } else {
            self.doc.insert(name, Item::Table(t));
        }
    }

    pub fn finish(mut self, tail: &[String]) -> (String, Origins) {
        let mut lines = std::mem::take(&mut self.pending);
        lines.extend(tail.iter().cloned());
        if !lines.is_empty() {
            self.doc.set_trailing(format!("\n{}", comment_block(&lines)));
        }
        (self.doc.to_string(), self.origins)
    }
}

fn rank(order: &[&str], key: &str) -> usize {
    order.iter().position(|k| *k == key).unwrap_or(order.len())
}

fn render(t: &mut Table, out: &TableOut, path: &str, order: &[&str], origins: &mut Origins) {
    let mut entries: Vec<&Entry> = out.entries.iter().collect();
    entries.sort_by_key(|e| rank(order, &e.key));
    for e in entries {
        let kpath = format!("{path}.{}", e.key);
        if let Some(s) = e.srcs.first() {
            origins.add(kpath.clone(), s.loc.clone());
        }
        let mut comments: Vec<String> = Vec::new();
        let single = e.srcs.len() == 1;
        for s in &e.srcs {
            comments.extend(s.comments.iter().cloned());
            if !single {
                comments.extend(s.trailing.clone());
            }
        }
        let mut value = match &e.slot {
            Slot::Value(v) => {
                let mut v = v.clone();
                v.decor_mut().clear();
                v
            }
            Slot::Table(fields) => {
                let mut it = InlineTable::new();
                for (k, v, loc) in fields {
                    it.insert(k, v.clone());
                    origins.add(format!("{kpath}.{k}"), loc.clone());
                }
                it.fmt();
                Value::InlineTable(it)
            }
            Slot::List(items) => {
                if e.srcs.is_empty()
                    && let Some((_, s)) = items.first()
                {
                    origins.add(kpath.clone(), s.loc.clone());
                }
                list(items, &kpath, origins)
            }
        };
        if single
            && let Some(tr) = &e.srcs[0].trailing
            && !matches!(e.slot, Slot::List(_))
        {
            let block = comment_block(std::slice::from_ref(tr));
            value.decor_mut().set_suffix(format!(" {}", block.trim_end_matches('\n')));
        } else if single && let Some(tr) = &e.srcs[0].trailing {
            comments.push(tr.clone());
        }
        t.insert(&e.key, Item::Value(value));
        if !comments.is_empty()
            && let Some(mut k) = t.key_mut(&e.key)
        {
            k.leaf_decor_mut().set_prefix(comment_block(&comments));
        }
    }
}

fn list(items: &[(Value, Src)], path: &str, origins: &mut Origins) -> Value {
    let multiline =
        items.iter().any(|(v, s)| !s.comments.is_empty() || s.trailing.is_some() || matches!(v, Value::InlineTable(_)))
            && !(items.len() == 1 && items[0].1.comments.is_empty() && items[0].1.trailing.is_none());
    let mut a = Array::new();
    for (i, (v, s)) in items.iter().enumerate() {
        origins.add(format!("{path}[{i}]"), s.loc.clone());
        let mut v = v.clone();
        if let Value::InlineTable(it) = &mut v {
            it.fmt();
        }
        if multiline {
            let mut lines = s.comments.clone();
            lines.extend(s.trailing.clone());
            let mut prefix = String::from("\n");
            for l in comment_block(&lines).lines() {
                prefix.push_str("    ");
                prefix.push_str(l);
                prefix.push('\n');
            }
            prefix.push_str("    ");
            v.decor_mut().set_prefix(prefix);
            v.decor_mut().set_suffix("");
        } else {
            v.decor_mut().set_prefix(if i == 0 { "" } else { " " });
            v.decor_mut().set_suffix("");
        }
        a.push_formatted(v);
    }
    if multiline {
        a.set_trailing_comma(true);
        a.set_trailing("\n");
    }
    Value::Array(a)
}
