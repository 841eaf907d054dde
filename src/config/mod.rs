//! Configuration: `model` (what the operator writes) → `validate` → immutable [`Snapshot`].
//! Pipeline: read file → TOML syntax and types (serde) → unknown keys (all of them) → semantic checks
//! (all of them) → every problem located at file:line:column with its field path and value.

pub mod announce;
pub mod api;
pub mod cluster;
pub mod console;
pub mod error;
pub mod model;
pub mod persist_spec;
pub mod resolvers;
pub mod snapshot;
pub mod units;
pub mod validate;
pub mod vrrp;

pub use error::ConfigErrors;
pub use snapshot::Snapshot;

use error::{FieldPath, Locator, Problem, Seg};
use std::path::Path;

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Snapshot, ConfigErrors> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::whole_file(path, format!("cannot read config: {e}")))?;
    parse(&src, path)
}

/// Validates config text; `path` names it in errors and anchors relative file references.
///
/// A value of the wrong type does not hide the others: its key is taken out and the file read
/// again, until it reads (at most [`MAX_TYPE_ERRORS`] times), so every error is reported at once.
pub fn parse(src: &str, path: &Path) -> Result<Snapshot, ConfigErrors> {
    let expanded = crate::dns::template::expand(src).map_err(|e| ConfigErrors::whole_file(path, e))?;
    let src = expanded.as_deref().unwrap_or(src);
    let loc = Locator::new(src);
    let fail = |mut errors: Vec<error::Located>| {
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors { file: path.to_path_buf(), errors }
    };
    let mut doc: toml_edit::DocumentMut = match src.parse() {
        Ok(d) => d,
        Err(e) => {
            let e: toml_edit::TomlError = e;
            let (line, column) = e.span().map(|r| loc.line_col(r.start)).unwrap_or((0, 0));
            let field = e.span().map(|r| loc.path_at(r.start)).unwrap_or_default();
            let problem = Problem::new(field, e.message().trim().to_string());
            return Err(fail(vec![error::Located { line, column, problem }]));
        }
    };
    let mut type_errors: Vec<error::Located> = Vec::new();
    let mut removed: Vec<FieldPath> = Vec::new();
    let mut text = src.to_string();
    let (file, mut problems) = loop {
        let mut problems = Vec::new();
        let read = toml::Deserializer::parse(&text).and_then(|de| {
            serde_ignored::deserialize::<_, _, model::ConfigFile>(de, |p| {
                let path = field_path(&p);
                let key = match path.0.last() {
                    Some(Seg::Key(k)) => k.clone(),
                    _ => path.to_string(),
                };
                let msg = match vrrp::not_supported(&key) {
                    Some(why) => format!("`{key}` is not supported by lbha yet: {why}"),
                    None => format!("unknown key `{key}`"),
                };
                problems.push(Problem::new(path, msg));
            })
        });
        let e = match read {
            Ok(file) => break (file, problems),
            Err(e) => e,
        };
        let here = Locator::new(&text);
        let field = e.span().map(|r| here.path_at(r.start)).unwrap_or_default();
        let at = if removed.is_empty() { e.span() } else { loc.span_of(&field, true) };
        let (line, column) = at.map(|r| loc.line_col(r.start)).unwrap_or((0, 0));
        type_errors.push(error::Located {
            line,
            column,
            problem: Problem::new(field.clone(), e.message().trim().to_string()),
        });
        // Take the innermost key out (never an array element, so later indices keep their place).
        let cut = field.0.iter().rposition(|s| matches!(s, Seg::Key(_))).map(|n| FieldPath(field.0[..=n].to_vec()));
        match cut {
            Some(cut) if type_errors.len() < MAX_TYPE_ERRORS && remove(&mut doc, &cut.0) => {
                removed.push(cut);
                text = doc.to_string();
            }
            _ => return Err(fail(type_errors)),
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let offset = |p: &FieldPath| loc.span_of(p, false).map(|r| r.start);
    let snap = validate::validate(&file, base, path, &offset, &mut problems);
    // What follows from a value taken out (a "missing name" for a name of the wrong type) is noise.
    let follows = |p: &Problem| removed.iter().any(|r| p.path.0.starts_with(&r.0));
    let (warnings, errors): (Vec<Problem>, Vec<Problem>) =
        problems.drain(..).filter(|p| !follows(p)).partition(|p| p.warning);
    match snap {
        Some(mut snap) if errors.is_empty() && type_errors.is_empty() => {
            let mut located: Vec<_> = warnings.into_iter().map(|p| loc.locate(p)).collect();
            located.sort_by_key(|e| (e.line, e.column));
            snap.warnings = located.iter().map(|l| l.render(path)).collect();
            Ok(snap)
        }
        _ => {
            type_errors.extend(errors.into_iter().map(|p| loc.locate(p)));
            Err(fail(type_errors))
        }
    }
}

/// At most this many values of the wrong type are reported (each costs one more read of the file).
const MAX_TYPE_ERRORS: usize = 100;

/// Removes the key at `path` (ending in a key) from the document; false if it is not there.
fn remove(doc: &mut toml_edit::DocumentMut, path: &[Seg]) -> bool {
    fn in_table(t: &mut dyn toml_edit::TableLike, path: &[Seg]) -> bool {
        match path {
            [Seg::Key(k)] => t.remove(k).is_some(),
            [Seg::Key(k), rest @ ..] => match t.get_mut(k) {
                Some(item) => in_item(item, rest),
                None => false,
            },
            _ => false,
        }
    }
    fn in_item(item: &mut toml_edit::Item, path: &[Seg]) -> bool {
        match (item, path.first()) {
            (toml_edit::Item::ArrayOfTables(a), Some(Seg::Index(i))) => {
                a.get_mut(*i).is_some_and(|t| in_table(t, &path[1..]))
            }
            (toml_edit::Item::Value(v), _) => in_value(v, path),
            (toml_edit::Item::Table(t), Some(Seg::Key(_))) => in_table(t, path),
            _ => false,
        }
    }
    fn in_value(v: &mut toml_edit::Value, path: &[Seg]) -> bool {
        match (v, path.first()) {
            (toml_edit::Value::Array(a), Some(Seg::Index(i))) => a.get_mut(*i).is_some_and(|v| in_value(v, &path[1..])),
            (toml_edit::Value::InlineTable(t), Some(Seg::Key(_))) => in_table(t, path),
            _ => false,
        }
    }
    in_table(doc.as_table_mut(), path)
}

fn field_path(p: &serde_ignored::Path) -> FieldPath {
    fn walk(p: &serde_ignored::Path, out: &mut Vec<Seg>) {
        use serde_ignored::Path as P;
        match p {
            P::Root => {}
            P::Seq { parent, index } => {
                walk(parent, out);
                out.push(Seg::Index(*index));
            }
            P::Map { parent, key } => {
                walk(parent, out);
                out.push(Seg::Key(key.clone()));
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut v = Vec::new();
    walk(p, &mut v);
    FieldPath(v)
}
#[cfg(test)]
mod tests;
