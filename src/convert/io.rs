//! The I/O edge of conversion: reading sources, expanding keepalived includes, writing the
//! result atomically, and loading an haproxy.cfg straight into a validated snapshot.

use super::report::{ConvertErrors, Loc, Report};
use super::{Conversion, HaproxySource, keepalived, locate_errors};
use crate::config::{self, Snapshot};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads a source file; an unreadable file is an error located at the file itself.
pub fn read(path: &Path) -> Result<String, ConvertErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConvertErrors::one(Loc { file: Arc::from(path.display().to_string()), line: 0 }, format!("cannot read: {e}"))
    })
}

/// keepalived's `include`: a glob relative to the including file's directory, matches in name
/// order.
pub fn include_files(pattern: &str, dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { dir.join(pattern) };
    let text = full.to_string_lossy().into_owned();
    let paths = glob::glob(&text).map_err(|e| format!("bad pattern: {e}"))?;
    let mut out = Vec::new();
    for p in paths {
        let p = p.map_err(|e| e.to_string())?;
        if p.is_file() {
            let body = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            out.push((p, body));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads keepalived.conf and everything it includes.
pub fn read_keepalived(path: &Path) -> Result<keepalived::ast::Config, ConvertErrors> {
    let text = read(path)?;
    keepalived::ast::parse(&text, path, &mut include_files)
}

/// The process environment, as HAProxy expands `"${VAR}"`.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads and converts the given files (either may be absent).
pub fn convert_files(haproxy: Option<&Path>, keepalived: Option<&Path>) -> Result<Conversion, ConvertErrors> {
    let htext = haproxy.map(read).transpose()?;
    let kcfg = keepalived.map(read_keepalived).transpose()?;
    let hname = haproxy.map(|p| p.display().to_string());
    let dir = haproxy.or(keepalived).and_then(Path::parent).unwrap_or(Path::new("."));
    // Absolute, so relative ACL pattern files can be written as absolute paths.
    let base = std::env::current_dir().map(|cwd| cwd.join(dir)).unwrap_or_else(|_| dir.to_path_buf());
    let base = base.as_path();
    let src = match (&htext, &hname) {
        (Some(text), Some(file)) => Some(HaproxySource { text, file }),
        _ => None,
    };
    super::convert(src, kcfg.as_ref(), base, &env)
}

/// `lbha run/check --haproxy-config`: converts in memory and validates. Errors name the
/// haproxy.cfg line each problem came from. A lost protection is an error unless `allow_weaker`.
pub fn load_haproxy(path: &Path, allow_weaker: bool) -> Result<(Snapshot, Vec<Report>), String> {
    let conv = convert_files(Some(path), None).map_err(|e| e.to_string())?;
    let weakened = conv.weakened();
    if !allow_weaker && !weakened.is_empty() {
        return Err(super::weaker_error(&weakened));
    }
    match config::parse(&conv.toml, path) {
        Ok(mut snap) => {
            snap.warnings = snap.warnings.iter().map(|w| super::locate_warning(w, &conv.origins)).collect();
            Ok((snap, conv.reports))
        }
        Err(e) => Err(locate_errors(&e, &conv.origins).join("\n")),
    }
}
