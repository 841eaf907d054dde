//! Configuration: `model` (what the operator writes) → `validate` → immutable [`Snapshot`].
//! Pipeline: read file → TOML syntax and types (serde) → unknown keys (all of them) → semantic checks
//! (all of them) → every problem located at file:line:column with its field path and value.

pub mod error;
pub mod model;
pub mod snapshot;
pub mod units;
pub mod validate;

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
pub fn parse(src: &str, path: &Path) -> Result<Snapshot, ConfigErrors> {
    let loc = Locator::new(src);
    let fail = |problems: Vec<Problem>| {
        let mut errors: Vec<_> = problems.into_iter().map(|p| loc.locate(p)).collect();
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors { file: path.to_path_buf(), errors }
    };
    let serde_error = |e: toml::de::Error| {
        let (line, column) = e.span().map(|r| loc.line_col(r.start)).unwrap_or((0, 0));
        let field = e.span().map(|r| loc.path_at(r.start)).unwrap_or_default();
        ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![error::Located { line, column, problem: Problem::new(field, e.message().trim().to_string()) }],
        }
    };
    let de = toml::Deserializer::parse(src).map_err(serde_error)?;
    let mut problems = Vec::new();
    let file: model::ConfigFile = serde_ignored::deserialize(de, |p| {
        let path = field_path(&p);
        let key = match path.0.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => path.to_string(),
        };
        problems.push(Problem::new(path, format!("unknown key `{key}`")));
    })
    .map_err(serde_error)?;
    let base = path.parent().unwrap_or(Path::new("."));
    match validate::validate(&file, base, path, &mut problems) {
        Some(snap) if problems.is_empty() => Ok(snap),
        _ => Err(fail(problems)),
    }
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
