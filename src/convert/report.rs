//! What a conversion tells the operator: fatal errors (nothing is written) and reports about
//! directives that were not converted one-to-one. Every one names the file and line.

use std::fmt;
use std::sync::Arc;

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: usize) -> Self {
        Self { file: file.clone(), line }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// How a directive was handled when it could not be converted as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportKind {
    /// An access rule, ACL, authentication or limit that could not be converted: the result
    /// would allow what the original denies, so the conversion fails without `--allow-weaker`.
    Weakens,
    /// A known HAProxy/keepalived feature lbha does not implement yet; dropped.
    Unsupported,
    /// Not a keyword of that section (a typo, or something lbha does not know); dropped.
    Unknown,
    /// Converted, but lbha's behaviour differs from the original in the way the message says.
    Approximated,
    /// Has no meaning for lbha (process model, privileges); dropped on purpose.
    Ignored,
    /// Converted with the same meaning; worth knowing (e.g. an environment variable was expanded).
    Note,
}

impl ReportKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Weakens => "not converted, less protection than the original",
            Self::Unsupported => "not supported yet by lbha",
            Self::Unknown => "unknown keyword",
            Self::Approximated => "converted with a difference",
            Self::Ignored => "ignored",
            Self::Note => "note",
        }
    }

    /// Whether `--strict` treats this as a failure: anything whose meaning was lost or changed.
    pub fn fails_strict(self) -> bool {
        matches!(self, Self::Weakens | Self::Unsupported | Self::Unknown | Self::Approximated)
    }
}

/// One directive that was not converted one-to-one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub loc: Loc,
    pub kind: ReportKind,
    /// The directive as written (shortened when long).
    pub directive: String,
    pub message: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: `{}`", self.loc, self.kind.label(), self.directive)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// A problem that stops the conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    pub loc: Loc,
    /// 1-based character column when known.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{c}: {}", self.loc, self.message),
            None => write!(f, "{}: {}", self.loc, self.message),
        }
    }
}

/// Every fatal problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConvertErrors(pub Vec<ConvertError>);

impl fmt::Display for ConvertErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConvertErrors {
    pub fn one(loc: Loc, message: impl Into<String>) -> Self {
        Self(vec![ConvertError { loc, column: None, message: message.into() }])
    }
}

/// Shortens a directive for a one-line report.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let t = one_line.trim();
    if t.chars().count() <= MAX {
        t.to_string()
    } else {
        let mut out: String = t.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
