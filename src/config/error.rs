//! Config errors that point at the file, line, column and field, so an operator can fix all of them
//! in one pass.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One segment of a field path such as `backend[1].servers[0].addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a problem is, as a path into the TOML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found while validating, before it is located in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: FieldPath,
    pub message: String,
    pub value: Option<String>,
}

impl Problem {
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Self { path, message: message.into(), value: None }
    }
    pub fn with_value(mut self, v: impl fmt::Display) -> Self {
        self.value = Some(v.to_string());
        self
    }
}

/// A problem with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
    pub problem: Problem,
}

/// Every error found in one config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<Located>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.file.display(), e.line, e.column)?;
            if !e.problem.path.0.is_empty() {
                write!(f, "{}: ", e.problem.path)?;
            }
            write!(f, "{}", e.problem.message)?;
            if let Some(v) = &e.problem.value {
                write!(f, " (value: {v})")?;
            }
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// An error that is about the file as a whole (unreadable, not UTF-8).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            errors: vec![Located { line: 0, column: 0, problem: Problem::new(FieldPath::root(), message) }],
        }
    }
}

/// Maps field paths and byte offsets of one source text to lines and columns.
pub struct Locator<'a> {
    src: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    pub fn new(src: &'a str) -> Self {
        Self { src, doc: toml_edit::Document::parse(src).ok() }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
        (line, col)
    }

    /// A problem about a value points at the value; one about a key (unknown, not allowed) at the key.
    pub fn locate(&self, problem: Problem) -> Located {
        let span = self.span_of(&problem.path, problem.value.is_some());
        let (line, column) = span.map(|r| self.line_col(r.start)).unwrap_or((0, 0));
        Located { line, column, problem }
    }

    /// Span of the deepest part of `path` present in the document (the key where there is one,
    /// so an unknown key points at itself).
    pub fn span_of(&self, path: &FieldPath, value: bool) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut cur = Node::Table(doc.as_table());
        for seg in &path.0 {
            let next = match (cur, seg) {
                (Node::Table(t), Seg::Key(k)) => {
                    let Some((key, item)) = t.get_key_value(k) else {
                        return best;
                    };
                    best = pick(value, key.span(), item.span()).or(best);
                    Node::from_item(item)
                }
                (Node::Inline(t), Seg::Key(k)) => {
                    let Some((key, v)) = t.get_key_value(k) else {
                        return best;
                    };
                    best = pick(value, key.span(), v.span()).or(best);
                    Node::from_item(v)
                }
                (Node::Aot(a), Seg::Index(i)) => {
                    let Some(t) = a.get(*i) else { return best };
                    best = t.span().or(best);
                    Node::Table(t)
                }
                (Node::Value(toml_edit::Value::Array(a)), Seg::Index(i)) => {
                    let Some(v) = a.get(*i) else { return best };
                    best = v.span().or(best);
                    Node::Value(v)
                }
                (Node::Value(toml_edit::Value::InlineTable(t)), Seg::Key(k)) => {
                    let Some((key, v)) = t.get_key_value(k) else {
                        return best;
                    };
                    best = pick(value, key.span(), v.span()).or(best);
                    Node::from_item(v)
                }
                _ => return best,
            };
            cur = next;
        }
        best
    }

    /// Field path of the innermost key whose value covers `offset` (for serde errors, which carry
    /// only a span).
    pub fn path_at(&self, offset: usize) -> FieldPath {
        let Some(doc) = self.doc.as_ref() else {
            return FieldPath::root();
        };
        let mut path = FieldPath::root();
        Self::descend(Node::Table(doc.as_table()), offset, &mut path);
        path
    }

    fn descend(node: Node<'_>, offset: usize, path: &mut FieldPath) {
        let covers = |r: Option<Range<usize>>| r.is_some_and(|r| r.start <= offset && offset < r.end.max(r.start + 1));
        match node {
            Node::Table(t) => {
                for (k, item) in t.iter() {
                    let key_span = t.key(k).and_then(|key| key.span());
                    if covers(item.span())
                        || covers(key_span.clone())
                        || matches!(item, toml_edit::Item::ArrayOfTables(_) | toml_edit::Item::Table(_))
                    {
                        let before = path.0.len();
                        path.0.push(Seg::Key(k.to_string()));
                        let n = path.0.len();
                        Self::descend(Node::from_item(item), offset, path);
                        let hit = path.0.len() > n || covers(item.span()) || covers(key_span);
                        if hit {
                            return;
                        }
                        path.0.truncate(before);
                    }
                }
            }
            Node::Aot(a) => {
                for (i, t) in a.iter().enumerate() {
                    let next = a.get(i + 1).and_then(|t| t.span()).map(|r| r.start).unwrap_or(usize::MAX);
                    let start = t.span().map(|r| r.start).unwrap_or(usize::MAX);
                    if start <= offset && offset < next {
                        path.0.push(Seg::Index(i));
                        Self::descend(Node::Table(t), offset, path);
                        return;
                    }
                }
            }
            Node::Value(toml_edit::Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    if covers(v.span()) {
                        path.0.push(Seg::Index(i));
                        Self::descend(Node::Value(v), offset, path);
                        return;
                    }
                }
            }
            Node::Value(toml_edit::Value::InlineTable(t)) | Node::Inline(t) => {
                for (k, v) in t.iter() {
                    let key_span = t.key(k).and_then(|key| key.span());
                    if covers(v.span()) || covers(key_span.clone()) {
                        path.0.push(Seg::Key(k.to_string()));
                        Self::descend(Node::Value(v), offset, path);
                        return;
                    }
                }
            }
            Node::Value(_) | Node::None => {}
        }
    }
}

fn pick(value: bool, key: Option<Range<usize>>, val: Option<Range<usize>>) -> Option<Range<usize>> {
    if value { val.or(key) } else { key.or(val) }
}

#[derive(Clone, Copy)]
enum Node<'d> {
    Table(&'d toml_edit::Table),
    Inline(&'d toml_edit::InlineTable),
    Aot(&'d toml_edit::ArrayOfTables),
    Value(&'d toml_edit::Value),
    None,
}

impl<'d> Node<'d> {
    fn from_item(item: &'d toml_edit::Item) -> Self {
        match item {
            toml_edit::Item::Table(t) => Node::Table(t),
            toml_edit::Item::ArrayOfTables(a) => Node::Aot(a),
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => Node::Inline(t),
            toml_edit::Item::Value(v) => Node::Value(v),
            toml_edit::Item::None => Node::None,
        }
    }
}
