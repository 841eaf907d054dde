//! haproxy.cfg as sections of directives, each with its file:line and the comments around it.

use super::lex::{LexErrorKind, Lexer, Pseudo};
use crate::convert::report::{ConvertError, ConvertErrors, Loc, Report, ReportKind, shorten};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    Userlist,
    Peers,
    Resolvers,
    /// `cache NAME`.
    Cache,
    /// A section HAProxy knows that lbha has no counterpart for (`mailers`, `cache`, ...).
    Other,
}

/// Section keywords HAProxy accepts, with the kind lbha treats them as.
const SECTIONS: &[(&str, SectionKind)] = &[
    ("global", SectionKind::Global),
    ("defaults", SectionKind::Defaults),
    ("frontend", SectionKind::Frontend),
    ("backend", SectionKind::Backend),
    ("listen", SectionKind::Listen),
    ("userlist", SectionKind::Userlist),
    ("peers", SectionKind::Peers),
    ("resolvers", SectionKind::Resolvers),
    ("mailers", SectionKind::Other),
    ("program", SectionKind::Other),
    ("http-errors", SectionKind::Other),
    ("ring", SectionKind::Other),
    ("cache", SectionKind::Cache),
    ("log-forward", SectionKind::Other),
    ("fcgi-app", SectionKind::Other),
    ("crt-store", SectionKind::Other),
    ("traces", SectionKind::Other),
    ("acme", SectionKind::Other),
];

/// Comments that belong to a directive or section header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comments {
    /// Whole-line comments above it.
    pub before: Vec<String>,
    /// The comment at the end of its own line.
    pub trailing: Option<String>,
    /// Whole-line comments below it that explain it (the seed's style).
    pub after: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub loc: Loc,
    /// Words after unquoting, unescaping and variable expansion; never empty.
    pub args: Vec<String>,
    /// The line as written, for reports.
    pub raw: String,
    pub comments: Comments,
}

impl Directive {
    pub fn keyword(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
    pub fn text(&self) -> String {
        shorten(&self.raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    /// The keyword as written (`listen`, `mailers`, ...).
    pub keyword: String,
    pub name: Option<String>,
    /// Header words after the name (`from NAME`, an old `listen` address).
    pub extra: Vec<String>,
    pub loc: Loc,
    pub raw: String,
    pub comments: Comments,
    pub directives: Vec<Directive>,
    /// Comments after the last directive that belong to no directive.
    pub tail: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub sections: Vec<Section>,
    /// Comments before the first section.
    pub head: Vec<String>,
    /// Comments at the end of the file that belong to nothing.
    pub tail: Vec<String>,
    /// Things noticed while reading (expanded variables, joined lines).
    pub reports: Vec<Report>,
}

/// What came before or after a run of comment lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Start,
    Blank,
    Header(usize),
    Dir(usize, usize),
    Comment,
    End,
}

/// Parses haproxy.cfg text. `file` names it in locations; `env` looks up environment variables.
/// Every lexical and structural error is returned at once.
pub fn parse(src: &str, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConvertErrors> {
    let file: Arc<str> = Arc::from(file);
    let mut cfg = Config::default();
    let mut errors = Vec::new();
    let mut lexer = Lexer::new(src);
    // `setenv` and friends in `global` change what later lines expand to, as in HAProxy.
    let mut overrides: HashMap<String, Option<String>> = HashMap::new();
    let mut events: Vec<(Ev, Option<String>)> = Vec::new();
    let mut section_name = String::new();
    let mut blocks = super::cond::Blocks::default();
    loop {
        let lookup = |n: &str| match overrides.get(n) {
            Some(v) => v.clone(),
            None => env(n),
        };
        let pseudo = Pseudo { file: &file, section: &section_name };
        let Some(next) = lexer.next_line(&lookup, &pseudo) else {
            break;
        };
        let line = match next {
            Ok(l) => l,
            Err(e) => {
                errors.push(ConvertError {
                    loc: Loc::new(&file, e.line),
                    column: Some(e.column),
                    message: e.kind.message(),
                });
                if e.kind == LexErrorKind::Nul {
                    break;
                }
                continue;
            }
        };
        let loc = Loc::new(&file, line.line);
        if line.continued > 0 {
            cfg.reports.push(Report {
                loc: loc.clone(),
                kind: ReportKind::Note,
                directive: shorten(&line.raw),
                message: format!(
                    "joined {} line(s) ending in '\\'; HAProxy has no line continuation and would read the '\\' literally",
                    line.continued
                ),
            });
        }
        for u in &line.env {
            let name = &u.name;
            cfg.reports.push(Report {
                loc: loc.clone(),
                kind: ReportKind::Note,
                directive: shorten(&line.raw),
                message: match (&u.default, u.set) {
                    (_, true) => {
                        format!("environment variable {name} expanded now; its value is written into the output")
                    }
                    (Some(d), false) => {
                        format!("environment variable {name} is not set; its default `{d}` is written into the output")
                    }
                    (None, false) => {
                        format!("environment variable {name} is not set; expanded to an empty string, as HAProxy does")
                    }
                },
            });
        }
        let Some(kw) = line.args.first().cloned() else {
            match line.comment {
                Some(c) => events.push((Ev::Comment, Some(c))),
                None => events.push((Ev::Blank, None)),
            }
            continue;
        };
        if matches!(kw.as_str(), ".if" | ".elif" | ".else" | ".endif") {
            let defined = |n: &str| match overrides.get(n) {
                Some(v) => v.is_some(),
                None => env(n).is_some(),
            };
            let cond = line.args[1..].join(" ");
            match blocks.line(&kw, &cond, line.line, &defined) {
                Ok(Some(v)) => cfg.reports.push(Report {
                    loc,
                    kind: ReportKind::Note,
                    directive: shorten(&line.raw),
                    message: format!(
                        "{}: the lines of this branch are {}, as HAProxy {} reads them",
                        if v { "true" } else { "false" },
                        if v { "converted" } else { "left out" },
                        super::cond::VERSION
                    ),
                }),
                Ok(None) => {}
                Err(m) => errors.push(ConvertError { loc, column: None, message: m }),
            }
            continue;
        }
        if !blocks.active() {
            continue;
        }
        if let Some(&(_, kind)) = SECTIONS.iter().find(|(k, _)| *k == kw) {
            let name = line.args.get(1).cloned();
            section_name = name.clone().unwrap_or_else(|| kw.clone());
            cfg.sections.push(Section {
                kind,
                keyword: kw,
                name,
                extra: line.args.iter().skip(2).cloned().collect(),
                loc,
                raw: line.raw.clone(),
                comments: Comments { trailing: line.comment.clone(), ..Comments::default() },
                directives: Vec::new(),
                tail: Vec::new(),
            });
            events.push((Ev::Header(cfg.sections.len() - 1), None));
            continue;
        }
        if kw.starts_with('.') {
            match kw.as_str() {
                ".notice" | ".warning" | ".diag" => cfg.reports.push(Report {
                    loc,
                    kind: ReportKind::Note,
                    directive: shorten(&line.raw),
                    message: format!("HAProxy prints this while parsing: {}", line.args[1..].join(" ")),
                }),
                ".alert" => errors.push(ConvertError {
                    loc,
                    column: None,
                    message: format!(".alert in the file: {}", line.args[1..].join(" ")),
                }),
                _ => errors.push(ConvertError { loc, column: None, message: format!("unknown directive `{kw}`") }),
            }
            continue;
        }
        let Some(sec) = cfg.sections.last_mut() else {
            errors.push(ConvertError {
                loc,
                column: None,
                message: format!(
                    "unknown keyword `{kw}` out of section (expected a section: global, defaults, frontend, backend, listen, userlist, peers, resolvers, ...)"
                ),
            });
            continue;
        };
        if sec.kind == SectionKind::Global {
            apply_setenv(&line.args, &mut overrides, env);
        }
        sec.directives.push(Directive {
            loc,
            args: line.args,
            raw: line.raw,
            comments: Comments { trailing: line.comment, ..Comments::default() },
        });
        let s = cfg.sections.len() - 1;
        events.push((Ev::Dir(s, cfg.sections[s].directives.len() - 1), None));
    }
    for line in blocks.unterminated() {
        errors.push(ConvertError {
            loc: Loc::new(&file, line),
            column: None,
            message: "non-terminated '.if' block".into(),
        });
    }
    if !errors.is_empty() {
        return Err(ConvertErrors(errors));
    }
    attach_comments(&mut cfg, &events);
    Ok(cfg)
}

/// `setenv`, `presetenv`, `unsetenv` and `resetenv` in `global` take effect for later lines.
fn apply_setenv(
    args: &[String],
    overrides: &mut HashMap<String, Option<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) {
    match (args[0].as_str(), args.get(1), args.get(2)) {
        ("setenv", Some(n), Some(v)) => {
            overrides.insert(n.clone(), Some(v.clone()));
        }
        ("presetenv", Some(n), Some(v)) => {
            let set = overrides.get(n).cloned().unwrap_or_else(|| env(n)).is_some();
            if !set {
                overrides.insert(n.clone(), Some(v.clone()));
            }
        }
        ("unsetenv", ..) => {
            for n in &args[1..] {
                overrides.insert(n.clone(), None);
            }
        }
        _ => {}
    }
}

/// Hands each run of whole-line comments to a directive or section. A run right after a
/// directive belongs to it when the file explains directives below them (as the seed does);
/// otherwise comments belong to the next item.
fn attach_comments(cfg: &mut Config, events: &[(Ev, Option<String>)]) {
    struct Run {
        prev: Ev,
        lines: Vec<String>,
        /// The event right after the run (may be `Blank`).
        adjacent: Ev,
        /// The next event that is not blank.
        next: Ev,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        if events[i].0 != Ev::Comment {
            i += 1;
            continue;
        }
        let prev = if i == 0 { Ev::Start } else { events[i - 1].0 };
        let mut lines = Vec::new();
        while i < events.len() && events[i].0 == Ev::Comment {
            lines.extend(events[i].1.clone());
            i += 1;
        }
        let adjacent = events.get(i).map(|e| e.0).unwrap_or(Ev::End);
        let next = events[i..].iter().map(|e| e.0).find(|e| !matches!(e, Ev::Blank | Ev::Comment)).unwrap_or(Ev::End);
        runs.push(Run { prev, lines, adjacent, next });
    }
    let explains_above = runs.iter().any(|r| matches!(r.prev, Ev::Dir(..)))
        && !runs
            .iter()
            .any(|r| matches!(r.prev, Ev::Header(_) | Ev::Blank | Ev::Start) && matches!(r.adjacent, Ev::Dir(..)));
    for run in runs {
        let backward = match (run.prev, run.adjacent) {
            (Ev::Dir(..), Ev::Dir(..)) => explains_above,
            (Ev::Dir(..), _) => true,
            _ => false,
        };
        // A comment block that opens the file, set apart by a blank line, heads the output.
        if run.prev == Ev::Start && run.adjacent == Ev::Blank {
            cfg.head.extend(run.lines);
            continue;
        }
        match (backward, run.prev, run.next) {
            (true, Ev::Dir(s, d), _) => cfg.sections[s].directives[d].comments.after.extend(run.lines),
            (_, _, Ev::Dir(s, d)) => cfg.sections[s].directives[d].comments.before.extend(run.lines),
            (_, _, Ev::Header(s)) => cfg.sections[s].comments.before.extend(run.lines),
            _ => match cfg.sections.last_mut() {
                Some(sec) => sec.tail.extend(run.lines),
                None => cfg.head.extend(run.lines),
            },
        }
    }
}

#[cfg(test)]
mod tests;
