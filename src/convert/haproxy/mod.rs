//! haproxy.cfg → lbha.toml: [`ast::parse`] reads the file into sections of located directives;
//! [`convert`] maps each directive onto lbha's schema (`config::model`) or reports it.

pub mod ast;
mod bases;
mod checks;
mod compcache;
mod cond;
mod errlog;
mod global;
mod keywords;
pub mod lex;
mod peers;
mod persist;
mod proxy;
mod resolvers;
mod rules;
mod server;
mod server_side;
mod tcp;
mod track;
mod upstream;

use super::out::{Doc, Src, TableOut};
use super::report::{ConvertError, ConvertErrors, Report, ReportKind};
use ast::{Config, Directive, Section, SectionKind};
use proxy::{DefaultsInfo, ProxyKind, ProxyOut};
use std::path::Path;
use std::str::FromStr;
use toml_edit::Value;

/// Collects what the conversion finds.
pub(crate) struct Cx<'a> {
    pub reports: Vec<Report>,
    pub errors: Vec<ConvertError>,
    /// Where relative pattern files (`acl ... -f FILE`) are looked up when validating ACLs.
    pub base_dir: &'a Path,
    /// `global` set `ca-base` / `crt-base` (see `bases`).
    pub ca_base: bool,
    pub crt_base: bool,
}

impl Cx<'_> {
    pub fn report(&mut self, d: &Directive, kind: ReportKind, msg: impl Into<String>) {
        let kind = weaker(d, kind);
        self.reports.push(Report { loc: d.loc.clone(), kind, directive: d.text(), message: msg.into() });
    }

    /// Reports `d` and keeps it, commented out, above its table in the output.
    pub fn drop(&mut self, out: &mut TableOut, d: &Directive, kind: ReportKind, msg: impl Into<String>) {
        let msg = msg.into();
        let kind = weaker(d, kind);
        out.dropped.extend(d.comments.before.iter().cloned());
        out.dropped.push(format!(" [line {}, {}] {}", d.loc.line, kind.label(), d.text()));
        out.dropped.extend(d.comments.trailing.iter().cloned());
        out.dropped.extend(d.comments.after.iter().cloned());
        self.report(d, kind, msg);
    }

    /// A report about something written at `loc` that is no longer a single directive.
    pub fn report_at(
        &mut self,
        loc: &crate::convert::report::Loc,
        kind: ReportKind,
        what: &str,
        msg: impl Into<String>,
    ) {
        self.reports.push(Report { loc: loc.clone(), kind, directive: what.to_string(), message: msg.into() });
    }

    pub fn error(&mut self, d: &Directive, msg: impl Into<String>) {
        self.errors.push(ConvertError {
            loc: d.loc.clone(),
            column: None,
            message: format!("`{}`: {}", d.text(), msg.into()),
        });
    }

    /// Argument `i` parsed as a number, or an error naming the directive and value.
    pub fn num<T: FromStr>(&mut self, d: &Directive, i: usize, what: &str) -> Option<T> {
        let Some(s) = d.arg(i) else {
            self.error(d, format!("missing {what}"));
            return None;
        };
        self.parse_num(d, s, what)
    }

    pub fn parse_num<T: FromStr>(&mut self, d: &Directive, s: &str, what: &str) -> Option<T> {
        match s.parse::<T>() {
            Ok(v) if s.bytes().all(|b| b.is_ascii_digit()) => Some(v),
            _ => {
                self.error(d, format!("bad number for {what}: `{s}`"));
                None
            }
        }
    }

    /// An HAProxy time (`5000`, `5s`, `300ms`, `2m`, `1h`, `1d`, `250us`): a bare number stays
    /// milliseconds as an integer; a number with a unit is kept as written.
    pub fn time(&mut self, d: &Directive, s: Option<&str>, what: &str) -> Option<Value> {
        self.time_in(d, s, what, "")
    }

    /// An HAProxy time whose bare numbers are seconds (`stats refresh`, `cookie maxidle/maxlife`):
    /// `30` is written `"30s"`.
    pub fn time_s(&mut self, d: &Directive, s: Option<&str>, what: &str) -> Option<Value> {
        self.time_in(d, s, what, "s")
    }

    fn time_in(&mut self, d: &Directive, s: Option<&str>, what: &str, bare_unit: &str) -> Option<Value> {
        let Some(s) = s else {
            self.error(d, format!("missing {what}"));
            return None;
        };
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let ok_unit = matches!(unit, "" | "us" | "ms" | "s" | "m" | "h" | "d");
        match num.parse::<u32>() {
            Ok(n) if ok_unit && unit.is_empty() && bare_unit.is_empty() => Some(Value::from(i64::from(n))),
            Ok(n) if ok_unit && unit.is_empty() => Some(Value::from(format!("{n}{bare_unit}"))),
            Ok(_) if ok_unit => Some(Value::from(s)),
            _ => {
                self.error(
                    d,
                    format!("bad time for {what}: `{s}` (expected a number with an optional unit us, ms, s, m, h, d)"),
                );
                None
            }
        }
    }
}

/// A protection that was not converted is reported as such, whatever kept it from converting.
fn weaker(d: &Directive, kind: ReportKind) -> ReportKind {
    match kind {
        ReportKind::Unsupported | ReportKind::Unknown if keywords::protects(&d.args) => ReportKind::Weakens,
        k => k,
    }
}

pub(crate) fn src(d: &Directive) -> Src {
    let mut comments = d.comments.before.clone();
    comments.extend(d.comments.after.iter().cloned());
    Src { loc: d.loc.clone(), comments, trailing: d.comments.trailing.clone() }
}

/// Header comment lines for a section's table: its own comments, where it came from, and
/// what was not converted.
fn header(sec: &Section, dropped: &[String]) -> Vec<String> {
    let mut lines = sec.comments.before.clone();
    let title = match &sec.name {
        Some(n) => format!("{} {n}", sec.keyword),
        None => sec.keyword.clone(),
    };
    lines.push(format!(" {title} ({})", sec.loc));
    lines.extend(sec.comments.trailing.iter().cloned());
    lines.extend(dropped.iter().cloned());
    lines
}

/// The defaults section a section names with `from`, the last one of that name before it.
fn named_defaults(sec: &Section, defaults: &[DefaultsInfo], cx: &mut Cx) -> Option<usize> {
    let name = proxy::from_name(sec)?;
    let found = defaults.iter().rposition(|d| d.name.as_deref() == Some(name));
    if found.is_none() {
        cx.errors.push(ConvertError {
            loc: sec.loc.clone(),
            column: None,
            message: format!("no defaults section named `{name}` before this {}", sec.keyword),
        });
    }
    found
}

/// Converts a parsed haproxy.cfg into `doc`, in source order. Returns what was reported.
pub(crate) fn convert(cfg: &Config, base_dir: &Path, doc: &mut Doc) -> Result<Vec<Report>, ConvertErrors> {
    let mut cx = Cx { reports: cfg.reports.clone(), errors: Vec::new(), base_dir, ca_base: false, crt_base: false };
    enum Item {
        Global(TableOut),
        Defaults(usize),
        Proxy(ProxyOut),
        Userlist(TableOut),
        Cache(TableOut),
        HttpErrors(TableOut),
        Resolvers(TableOut),
        Peers(TableOut),
        Skipped,
    }
    let mut items: Vec<(usize, Item)> = Vec::new();
    let mut defaults: Vec<DefaultsInfo> = Vec::new();
    let mut current: Option<usize> = None;
    for (si, sec) in cfg.sections.iter().enumerate() {
        let item = match sec.kind {
            SectionKind::Global => Item::Global(global::convert(sec, &mut cx)),
            SectionKind::Defaults => {
                let parent = named_defaults(sec, &defaults, &mut cx);
                let info = proxy::convert_defaults(sec, parent.map(|i| &defaults[i]), &mut cx);
                defaults.push(info);
                current = Some(defaults.len() - 1);
                Item::Defaults(defaults.len() - 1)
            }
            SectionKind::Frontend | SectionKind::Backend | SectionKind::Listen => {
                let kind = match sec.kind {
                    SectionKind::Frontend => ProxyKind::Frontend,
                    SectionKind::Backend => ProxyKind::Backend,
                    _ => ProxyKind::Listen,
                };
                let used = match proxy::from_name(sec) {
                    Some(_) => named_defaults(sec, &defaults, &mut cx),
                    None => current,
                };
                let out = proxy::convert_proxy(sec, kind, used.map(|i| &defaults[i]), used, &mut cx);
                Item::Proxy(out)
            }
            SectionKind::Userlist => Item::Userlist(global::userlist(sec, &mut cx)),
            SectionKind::Cache => Item::Cache(compcache::cache_section(sec, &mut cx)),
            SectionKind::Other if sec.keyword == "http-errors" => Item::HttpErrors(errlog::section(sec, &mut cx)),
            SectionKind::Resolvers => Item::Resolvers(resolvers::resolvers(sec, &mut cx)),
            SectionKind::Peers => Item::Peers(peers::convert(sec, &mut cx)),
            SectionKind::Other => {
                cx.reports.push(Report {
                    loc: sec.loc.clone(),
                    kind: ReportKind::Unsupported,
                    directive: ast_title(sec),
                    message: format!(
                        "`{}` sections are not supported yet by lbha; its {} directive(s) are dropped",
                        sec.keyword,
                        sec.directives.len()
                    ),
                });
                Item::Skipped
            }
        };
        items.push((si, item));
    }
    if !cx.errors.is_empty() {
        return Err(ConvertErrors(cx.errors));
    }

    // One `[defaults]` when every proxy uses the same defaults section; otherwise each proxy
    // gets its own defaults written into it, as HAProxy applies them.
    let mut used: Vec<usize> = items
        .iter()
        .filter_map(|(_, it)| match it {
            Item::Proxy(p) => p.defaults,
            _ => None,
        })
        .collect();
    used.sort_unstable();
    used.dedup();
    let shared: Option<usize> = match used.as_slice() {
        [] => defaults.len().checked_sub(1),
        [one] => Some(*one),
        _ => None,
    };
    for (_, it) in items.iter_mut() {
        if let Item::Proxy(p) = it
            && let Some(di) = p.defaults
        {
            if shared == Some(di) {
                proxy::merge_check(p, &defaults[di]);
            } else {
                proxy::inline_defaults(p, &defaults[di]);
            }
        }
    }
    for (di, d) in defaults.iter().enumerate() {
        if shared != Some(di) && !used.contains(&di) {
            cx.reports.push(Report {
                loc: d.loc.clone(),
                kind: ReportKind::Note,
                directive: "defaults".into(),
                message: "this defaults section applies to no proxy; it is not converted".into(),
            });
        }
    }

    for (si, it) in items {
        let sec = &cfg.sections[si];
        match it {
            Item::Global(t) => {
                if !t.is_empty() || !t.dropped.is_empty() {
                    doc.table("global", false, header(sec, &t.dropped), &sec.loc, &t, global::ORDER);
                } else {
                    doc.pend(header(sec, &[]));
                }
            }
            Item::Defaults(di) => {
                let d = &defaults[di];
                if shared == Some(di) {
                    doc.table("defaults", false, header(sec, &d.out.dropped), &sec.loc, &d.out, proxy::ORDER);
                } else {
                    let mut lines = header(sec, &d.out.dropped);
                    lines.push(" (its settings are written into each proxy that uses it)".into());
                    doc.pend(lines);
                }
            }
            Item::Proxy(p) => {
                doc.table(p.kind.table(), true, header(sec, &p.out.dropped), &sec.loc, &p.out, proxy::ORDER);
            }
            Item::Userlist(t) => {
                doc.table("userlist", true, header(sec, &t.dropped), &sec.loc, &t, &["name", "users", "groups"]);
            }
            Item::Cache(t) => {
                doc.table("cache", true, header(sec, &t.dropped), &sec.loc, &t, compcache::CACHE_ORDER);
            }
            Item::HttpErrors(t) => {
                doc.table("http_errors", true, header(sec, &t.dropped), &sec.loc, &t, &["name", "errorfile"]);
            }
            Item::Resolvers(t) => {
                doc.table("resolvers", true, header(sec, &t.dropped), &sec.loc, &t, resolvers::ORDER);
            }
            Item::Peers(t) => {
                doc.table("peers", true, header(sec, &t.dropped), &sec.loc, &t, peers::ORDER);
            }
            Item::Skipped => {
                let mut lines = header(sec, &[]);
                lines.push(format!(" [line {}, {}] whole section", sec.loc.line, ReportKind::Unsupported.label()));
                for d in &sec.directives {
                    lines.push(format!("   {}", d.text()));
                }
                lines.extend(sec.tail.iter().cloned());
                doc.pend(lines);
            }
        }
        if sec.kind != SectionKind::Other {
            doc.pend(sec.tail.iter().cloned());
        }
    }
    cx.reports.sort_by_key(|r| (r.loc.line, r.kind));
    Ok(cx.reports)
}

fn ast_title(sec: &Section) -> String {
    match &sec.name {
        Some(n) => format!("{} {n}", sec.keyword),
        None => sec.keyword.clone(),
    }
}
