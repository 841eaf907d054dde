//! keepalived.conf as a tree of statements: `keyword args... [{ statements }]`, each with its
//! file:line and comments. Follows keepalived's reader: `#` and `!` start comments, `"..."`
//! keeps spaces, braces may stand on the keyword's line or the next, a `\` at the end of a line
//! joins the next, `$NAME=value` defines a parameter that `$NAME` / `${NAME}` expand, and
//! `include GLOB` reads other files (through the caller's loader, so parsing does no I/O).

use crate::convert::report::{ConvertError, ConvertErrors, Loc, Report, ReportKind, shorten};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub loc: Loc,
    pub words: Vec<String>,
    pub block: Option<Vec<Stmt>>,
    /// Whole-line comments above it, and the one on its own line.
    pub comments: Vec<String>,
    pub trailing: Option<String>,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
    pub fn text(&self) -> String {
        shorten(&self.words.join(" "))
    }
    pub fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub stmts: Vec<Stmt>,
    /// Comments at the end of the top level that belong to no statement.
    pub tail: Vec<String>,
    pub reports: Vec<Report>,
}

/// Reads an `include` pattern relative to the including file's directory: every matching file's
/// path and text, in name order.
pub type Loader<'a> = dyn FnMut(&str, &Path) -> Result<Vec<(PathBuf, String)>, String> + 'a;

/// How deep includes may nest (keepalived stops at the same kind of limit).
const MAX_DEPTH: usize = 8;
/// How many files includes may read in all, so a loop of several includes cannot explode.
const MAX_FILES: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String, usize),
    Open(usize),
    Close(usize),
    /// A comment and whether it had its own line.
    Comment(String, usize, bool),
    Newline,
}

struct Reader<'a, 'b> {
    params: HashMap<String, String>,
    loader: &'a mut Loader<'b>,
    errors: Vec<ConvertError>,
    reports: Vec<Report>,
    /// Files read through includes so far.
    included: usize,
    /// Set by an include loop: further includes are skipped, so it is reported once.
    aborted: bool,
}

/// Parses keepalived.conf text; `file` names it and anchors relative includes.
pub fn parse(src: &str, file: &Path, loader: &mut Loader<'_>) -> Result<Config, ConvertErrors> {
    let mut r =
        Reader { params: HashMap::new(), loader, errors: Vec::new(), reports: Vec::new(), included: 0, aborted: false };
    let (stmts, tail) = r.file(src, file, 0);
    if !r.errors.is_empty() {
        return Err(ConvertErrors(r.errors));
    }
    Ok(Config { stmts, tail, reports: r.reports })
}

impl Reader<'_, '_> {
    fn file(&mut self, src: &str, path: &Path, depth: usize) -> (Vec<Stmt>, Vec<String>) {
        let name: Arc<str> = Arc::from(path.display().to_string());
        let toks = self.tokens(src, &name);
        let mut i = 0;
        let (stmts, tail) = self.block(&toks, &mut i, &name, path, depth, None);
        (stmts, tail)
    }

    fn tokens(&mut self, src: &str, file: &Arc<str>) -> Vec<Tok> {
        let mut toks = Vec::new();
        let lines: Vec<&str> = src.split('\n').collect();
        let mut n = 0;
        while n < lines.len() {
            let first = n + 1;
            let mut line = lines[n].trim_end_matches('\r').to_string();
            n += 1;
            while line.ends_with('\\') && n < lines.len() {
                line.pop();
                line.push(' ');
                line.push_str(lines[n].trim_end_matches('\r'));
                n += 1;
            }
            let trimmed = line.trim_start();
            // `$NAME=value` defines a parameter.
            if let Some(def) = trimmed.strip_prefix('$')
                && let Some((k, v)) = def.split_once('=')
                && !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.params.insert(k.to_string(), v.trim().to_string());
                continue;
            }
            if trimmed.starts_with('@') {
                self.reports.push(Report {
                    loc: Loc::new(file, first),
                    kind: ReportKind::Unsupported,
                    directive: shorten(trimmed),
                    message: "host-conditional lines (`@host`) are not supported yet; the line is dropped".into(),
                });
                continue;
            }
            let expanded = self.expand(&line, &Loc::new(file, first));
            self.words(&expanded, first, file, &mut toks);
            toks.push(Tok::Newline);
        }
        toks
    }

    /// `$NAME` and `${NAME}` from earlier `$NAME=value` lines.
    fn expand(&mut self, line: &str, loc: &Loc) -> String {
        if !line.contains('$') {
            return line.to_string();
        }
        let mut out = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '$' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let brace = chars.get(i + 1) == Some(&'{');
            let start = if brace { i + 2 } else { i + 1 };
            let mut end = start;
            while chars.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
                end += 1;
            }
            let name: String = chars[start..end].iter().collect();
            let closed = !brace || chars.get(end) == Some(&'}');
            match self.params.get(&name) {
                Some(v) if !name.is_empty() && closed => {
                    out.push_str(v);
                    i = if brace { end + 1 } else { end };
                }
                _ => {
                    if !name.is_empty() {
                        self.reports.push(Report {
                            loc: loc.clone(),
                            kind: ReportKind::Note,
                            directive: shorten(line),
                            message: format!("`${name}` is not a defined parameter; kept as written"),
                        });
                    }
                    out.push('$');
                    i += 1;
                }
            }
        }
        out
    }

    fn words(&mut self, line: &str, ln: usize, file: &Arc<str>, toks: &mut Vec<Tok>) {
        let own_line = {
            let t = line.trim_start();
            t.starts_with('#') || t.starts_with('!')
        };
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let mut any = false;
        let flush = |cur: &mut String, toks: &mut Vec<Tok>| {
            if !cur.is_empty() {
                toks.push(Tok::Word(std::mem::take(cur), ln));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                // An undefined `${NAME}` stays one word; its braces are not a block.
                '$' if chars.peek() == Some(&'{') => {
                    any = true;
                    cur.push('$');
                    for q in chars.by_ref() {
                        cur.push(q);
                        if q == '}' {
                            break;
                        }
                    }
                }
                '"' => {
                    any = true;
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == '"' {
                            closed = true;
                            break;
                        }
                        cur.push(q);
                    }
                    if !closed {
                        self.errors.push(ConvertError {
                            loc: Loc::new(file, ln),
                            column: None,
                            message: "unterminated \" quote".into(),
                        });
                        return;
                    }
                    toks.push(Tok::Word(std::mem::take(&mut cur), ln));
                }
                '#' | '!' if cur.is_empty() => {
                    let text: String = chars.by_ref().collect();
                    toks.push(Tok::Comment(text, ln, own_line && !any));
                    return;
                }
                '{' => {
                    flush(&mut cur, toks);
                    toks.push(Tok::Open(ln));
                    any = true;
                }
                '}' => {
                    flush(&mut cur, toks);
                    toks.push(Tok::Close(ln));
                    any = true;
                }
                c if c.is_whitespace() => flush(&mut cur, toks),
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        flush(&mut cur, toks);
    }

    /// Statements until the matching `}` (when `open` is the line of a `{`) or the end.
    fn block(
        &mut self,
        toks: &[Tok],
        i: &mut usize,
        file: &Arc<str>,
        path: &Path,
        depth: usize,
        open: Option<usize>,
    ) -> (Vec<Stmt>, Vec<String>) {
        let mut out: Vec<Stmt> = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        while *i < toks.len() {
            match &toks[*i] {
                Tok::Newline => *i += 1,
                Tok::Comment(text, _, own) => {
                    if *own || out.is_empty() {
                        pending.push(text.clone());
                    } else if let Some(last) = out.last_mut() {
                        last.trailing = Some(text.clone());
                    }
                    *i += 1;
                }
                Tok::Close(ln) => {
                    *i += 1;
                    if open.is_some() {
                        return (out, pending);
                    }
                    self.err(file, *ln, "unmatched `}`");
                }
                Tok::Open(ln) => {
                    *i += 1;
                    let ln = *ln;
                    let (children, tail) = self.block(toks, i, file, path, depth, Some(ln));
                    match out.last_mut() {
                        Some(last) if last.block.is_none() => {
                            let mut children = children;
                            attach_tail(&mut children, tail);
                            last.block = Some(children);
                        }
                        _ => self.err(file, ln, "`{` without a keyword before it"),
                    }
                }
                Tok::Word(_, ln) => {
                    let ln = *ln;
                    let mut words = Vec::new();
                    while let Some(Tok::Word(w, _)) = toks.get(*i) {
                        words.push(w.clone());
                        *i += 1;
                    }
                    let stmt = Stmt {
                        loc: Loc::new(file, ln),
                        words,
                        block: None,
                        comments: std::mem::take(&mut pending),
                        trailing: None,
                    };
                    if stmt.keyword() == "include" {
                        self.include(&stmt, path, depth, &mut out);
                    } else {
                        out.push(stmt);
                    }
                }
            }
        }
        if let Some(ln) = open {
            self.err(file, ln, "unterminated block: `{` has no matching `}`");
        }
        (out, pending)
    }

    fn include(&mut self, stmt: &Stmt, path: &Path, depth: usize, out: &mut Vec<Stmt>) {
        let Some(pattern) = stmt.arg(1) else {
            self.err(&stmt.loc.file, stmt.loc.line, "include needs a file name or pattern");
            return;
        };
        if self.aborted {
            return;
        }
        if depth >= MAX_DEPTH {
            self.aborted = true;
            self.err(&stmt.loc.file, stmt.loc.line, &format!("includes nest deeper than {MAX_DEPTH} levels (a loop?)"));
            return;
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        match (self.loader)(pattern, dir) {
            Ok(files) => {
                if files.is_empty() {
                    self.reports.push(Report {
                        loc: stmt.loc.clone(),
                        kind: ReportKind::Note,
                        directive: stmt.text(),
                        message: "no file matches; nothing included (as keepalived does)".into(),
                    });
                }
                for (p, text) in files {
                    self.included += 1;
                    if self.included > MAX_FILES {
                        self.aborted = true;
                        self.err(
                            &stmt.loc.file,
                            stmt.loc.line,
                            &format!("includes read more than {MAX_FILES} files (a loop?)"),
                        );
                        return;
                    }
                    let (stmts, tail) = self.file(&text, &p, depth + 1);
                    out.extend(stmts);
                    if let Some(last) = out.last_mut() {
                        last.comments.extend(tail);
                    }
                }
            }
            Err(e) => self.err(&stmt.loc.file, stmt.loc.line, &format!("include `{pattern}`: {e}")),
        }
    }

    fn err(&mut self, file: &Arc<str>, line: usize, msg: &str) {
        self.errors.push(ConvertError { loc: Loc::new(file, line), column: None, message: msg.to_string() });
    }
}

/// Comments before a block's `}` stay with its last statement.
fn attach_tail(children: &mut [Stmt], tail: Vec<String>) {
    if let Some(last) = children.last_mut() {
        last.comments.extend(tail);
    }
}

#[cfg(test)]
mod tests;
