//! `lbha convert` and `lbha check --haproxy-config`: the command-line side of conversion.
//! Reports go to stderr; the TOML goes to the output file (atomically) or stdout.

use super::report::{Report, ReportKind};
use super::{Conversion, io, locate_errors};
use crate::config::{self, ConfigErrors};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct ConvertArgs {
    pub haproxy: Option<PathBuf>,
    pub keepalived: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub strict: bool,
}

/// Tables lbha's config schema may not know yet on this build (the VRRP schema is added
/// separately); validation skips them only when the schema rejects them as unknown.
const VRRP_TABLES: &[&str] = &["vrrp_instance", "vrrp_script", "vrrp_sync_group"];

fn print_reports(reports: &[Report]) {
    for r in reports {
        eprintln!("{r}");
    }
    if reports.is_empty() {
        return;
    }
    let count = |k: ReportKind| reports.iter().filter(|r| r.kind == k).count();
    let parts: Vec<String> = [
        ReportKind::Unsupported,
        ReportKind::Unknown,
        ReportKind::Approximated,
        ReportKind::Ignored,
        ReportKind::Note,
    ]
    .into_iter()
    .filter(|k| count(*k) > 0)
    .map(|k| format!("{} {}", count(k), k.label()))
    .collect();
    eprintln!("{} report(s): {}", reports.len(), parts.join(", "));
}

/// Validates converted TOML. Returns the errors (located in the sources) and whether the VRRP
/// tables had to be left out because this build's schema does not have them.
fn validate(conv: &Conversion, name: &Path) -> (Vec<String>, bool) {
    let unknown_vrrp = |e: &ConfigErrors| {
        e.errors.iter().all(|l| {
            let p = l.problem.path.to_string();
            l.problem.message.starts_with("unknown key")
                && VRRP_TABLES
                    .iter()
                    .any(|t| p == *t || p.starts_with(&format!("{t}[")))
        })
    };
    match config::parse(&conv.toml, name) {
        Ok(_) => (Vec::new(), false),
        Err(e) if unknown_vrrp(&e) => {
            let mut doc: toml_edit::DocumentMut = match conv.toml.parse() {
                Ok(d) => d,
                Err(err) => return (vec![format!("generated TOML does not parse: {err}")], true),
            };
            for t in VRRP_TABLES {
                doc.remove(t);
            }
            match config::parse(&doc.to_string(), name) {
                Ok(_) => (Vec::new(), true),
                Err(e) => (locate_errors(&e, &conv.origins), true),
            }
        }
        Err(e) => (locate_errors(&e, &conv.origins), false),
    }
}

pub fn convert(args: ConvertArgs) -> ExitCode {
    let conv = match io::convert_files(args.haproxy.as_deref(), args.keepalived.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} error(s); nothing written", e.0.len());
            return ExitCode::from(1);
        }
    };
    print_reports(&conv.reports);
    let name = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("lbha.toml"));
    let (errors, vrrp_skipped) = validate(&conv, &name);
    if vrrp_skipped {
        eprintln!(
            "note: this lbha build has no [[vrrp_instance]] schema yet; the keepalived part was converted but not validated"
        );
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!(
            "the converted configuration is not valid for lbha: {} error(s); nothing written",
            errors.len()
        );
        return ExitCode::from(1);
    }
    let failing = conv.strict_failures();
    if args.strict && failing > 0 {
        eprintln!("--strict: {failing} directive(s) were not converted exactly; nothing written");
        return ExitCode::from(1);
    }
    match &args.output {
        Some(out) => {
            if let Err(e) = io::write_atomic(out, &conv.toml) {
                eprintln!("cannot write {}: {e}", out.display());
                return ExitCode::from(1);
            }
            eprintln!("wrote {}", out.display());
        }
        None => print!("{}", conv.toml),
    }
    ExitCode::SUCCESS
}

/// `lbha check --haproxy-config FILE`.
pub fn check_haproxy(path: &Path) -> ExitCode {
    match io::load_haproxy(path) {
        Ok((_, reports)) => {
            print_reports(&reports);
            println!(
                "Configuration file {} is valid (read as haproxy.cfg; {} report(s))",
                path.display(),
                reports.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} is not valid for lbha", path.display());
            ExitCode::from(1)
        }
    }
}
