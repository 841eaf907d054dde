//! `lbha convert` and `lbha check --haproxy-config`: the command-line side of conversion.
//! Reports go to stderr; the TOML goes to the output file (atomically) or stdout.

use super::report::{Report, ReportKind};
use super::{Conversion, io, locate_errors};
use crate::config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct ConvertArgs {
    pub haproxy: Option<PathBuf>,
    pub keepalived: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub strict: bool,
    /// Write the result even if protections were lost ([`super::ReportKind::Weakens`]).
    pub allow_weaker: bool,
}

fn print_reports(reports: &[Report]) {
    for r in reports {
        eprintln!("{r}");
    }
    if reports.is_empty() {
        return;
    }
    let count = |k: ReportKind| reports.iter().filter(|r| r.kind == k).count();
    let parts: Vec<String> = [
        ReportKind::Weakens,
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

/// Validates converted TOML: the errors, or the warnings, located in the sources.
fn validate(conv: &Conversion, name: &Path) -> Result<Vec<String>, Vec<String>> {
    match config::parse(&conv.toml, name) {
        Ok(snap) => Ok(snap.warnings.iter().map(|w| super::locate_warning(w, &conv.origins)).collect()),
        Err(e) => Err(locate_errors(&e, &conv.origins)),
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
    let name = args.output.clone().unwrap_or_else(|| PathBuf::from("lbha.toml"));
    match validate(&conv, &name) {
        Ok(warnings) => {
            for w in &warnings {
                eprintln!("{w}");
            }
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("the converted configuration is not valid for lbha: {} error(s); nothing written", errors.len());
            return ExitCode::from(1);
        }
    }
    let weakened = conv.weakened();
    if !weakened.is_empty() && !args.allow_weaker {
        eprintln!("{}; nothing written", super::weaker_error(&weakened));
        return ExitCode::from(1);
    }
    let failing = conv.strict_failures();
    if args.strict && failing > 0 {
        eprintln!("--strict: {failing} directive(s) were not converted exactly; nothing written");
        return ExitCode::from(1);
    }
    match &args.output {
        Some(out) => {
            // The output carries the sources' userlist passwords: no looser than they are.
            let limit = [args.haproxy.as_deref(), args.keepalived.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|p| crate::fsutil::mode_of(p).ok())
                .fold(0o777, |a, m| a & m);
            if let Err(e) = crate::fsutil::write_atomic_limited(out, conv.toml.as_bytes(), limit) {
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
pub fn check_haproxy(path: &Path, allow_weaker: bool) -> ExitCode {
    match io::load_haproxy(path, allow_weaker) {
        Ok((snap, reports)) => {
            print_reports(&reports);
            for w in &snap.warnings {
                eprintln!("{w}");
            }
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
