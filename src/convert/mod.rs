//! Migration: haproxy.cfg and keepalived.conf → lbha.toml, for `lbha convert` and for
//! `lbha run/check --haproxy-config`.
//!
//! Reading is split from converting: [`haproxy::ast::parse`] and [`keepalived::ast::parse`] build
//! located ASTs, [`convert`] turns them into TOML text (with `toml_edit`, so comments travel)
//! plus [`Report`]s for every directive that did not convert one-to-one. Nothing here does I/O
//! except [`io`], the edge that reads files, expands includes and writes the output.

pub mod cmd;
pub mod haproxy;
pub mod io;
pub mod keepalived;
mod out;
pub mod report;

pub use out::Origins;
pub use report::{ConvertError, ConvertErrors, Loc, Report, ReportKind};

use crate::config::ConfigErrors;
use std::path::Path;

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub toml: String,
    pub reports: Vec<Report>,
    /// Where each TOML path came from, to point validation errors back into the sources.
    pub origins: Origins,
}

impl Conversion {
    /// Reports that `--strict` counts as failures.
    pub fn strict_failures(&self) -> usize {
        self.reports.iter().filter(|r| r.kind.fails_strict()).count()
    }

    /// Reports of protections that were lost: fatal unless the operator accepts them.
    pub fn weakened(&self) -> Vec<&Report> {
        self.reports.iter().filter(|r| r.kind == ReportKind::Weakens).collect()
    }
}

/// An haproxy.cfg already read: its text and the name used in locations.
pub struct HaproxySource<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

/// Converts the given sources into one lbha.toml. `base_dir` resolves relative ACL pattern files
/// while checking ACLs; `env` looks up the environment variables haproxy.cfg expands.
pub fn convert(
    haproxy: Option<HaproxySource<'_>>,
    keepalived: Option<&keepalived::ast::Config>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Conversion, ConvertErrors> {
    let mut errors = Vec::new();
    let parsed = match &haproxy {
        Some(h) => match haproxy::ast::parse(h.text, h.file, env) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                errors.extend(e.0);
                None
            }
        },
        None => None,
    };
    let mut from: Vec<&str> = haproxy.iter().map(|h| h.file).collect();
    let kfile = keepalived.and_then(|k| k.stmts.first()).map(|s| s.loc.file.to_string());
    if let Some(f) = &kfile {
        from.push(f);
    }
    let mut head = vec![
        format!(" lbha.toml converted by `lbha convert` from {}.", from.join(" and ")),
        " Directives that were not converted are listed, commented out, above their section;".to_string(),
        " `lbha convert` prints the full report.".to_string(),
    ];
    if let Some(cfg) = &parsed
        && !cfg.head.is_empty()
    {
        head.push(String::new());
        head.extend(cfg.head.iter().cloned());
    }
    let mut doc = out::Doc::new(&head);
    let mut reports = Vec::new();
    if let Some(cfg) = &parsed {
        match haproxy::convert(cfg, base_dir, &mut doc) {
            Ok(r) => reports.extend(r),
            Err(e) => errors.extend(e.0),
        }
    }
    if let Some(k) = keepalived {
        match keepalived::convert(k, &mut doc) {
            Ok(r) => reports.extend(r),
            Err(e) => errors.extend(e.0),
        }
    }
    if !errors.is_empty() {
        return Err(ConvertErrors(errors));
    }
    let tail = parsed.map(|c| c.tail).unwrap_or_default();
    let (toml, origins) = doc.finish(&tail);
    Ok(Conversion { toml, reports, origins })
}

/// Why a conversion that lost protections is refused: every such line, and the way out.
pub fn weaker_error(weakened: &[&Report]) -> String {
    let mut s = String::new();
    for r in weakened {
        s.push_str(&format!("{r}\n"));
    }
    s.push_str(&format!(
        "{} access rule(s), ACL(s), authentication or limit(s) could not be converted: the result would allow what the original denies; pass --allow-weaker to accept that",
        weakened.len()
    ));
    s
}

/// Validation errors of a converted file, each pointed back at the source line it came from
/// when known (`haproxy.cfg:42: backend[0].servers[1].addr: ...`).
pub fn locate_errors(errors: &ConfigErrors, origins: &Origins) -> Vec<String> {
    errors
        .errors
        .iter()
        .map(|e| {
            let path = e.problem.path.to_string();
            let mut s = match origins.find(&path) {
                Some(loc) => format!("{loc}: "),
                None => format!("{}:{}:{}: ", errors.file.display(), e.line, e.column),
            };
            if !path.is_empty() {
                s.push_str(&format!("{path}: "));
            }
            s.push_str(&e.problem.message);
            if let Some(v) = &e.problem.value {
                s.push_str(&format!(" (value: {v})"));
            }
            s
        })
        .collect()
}

/// A validation warning (`FILE:LINE:COL: warning: PATH: message`) pointed back at the source
/// line its field path came from, when known.
pub fn locate_warning(w: &str, origins: &Origins) -> String {
    let Some((_, rest)) = w.split_once(": warning: ") else {
        return w.to_string();
    };
    let path = rest.split_once(": ").map(|(p, _)| p).unwrap_or("");
    match origins.find(path) {
        Some(loc) => format!("{loc}: warning: {rest}"),
        None => w.to_string(),
    }
}

#[cfg(test)]
mod tests;
