//! Log-format strings, the values of `log-format`, `lf-string`, `set-header` and friends: text
//! with `%[expr]` samples, `%%` for a percent sign, and `%x` log variables (`%ci`, `%Tr`, ...),
//! each optionally preceded by `%{flags}`. Log variables are kept by name for the log module.

use super::expr::SampleExpr;
use super::fetch::SampleContext;
use super::{Maps, ParseError};

/// Renders a log variable (name, flags); the log module supplies it.
pub type LogVarFn<'a> = dyn Fn(&str, &[String]) -> Option<Vec<u8>> + 'a;

#[derive(Debug, Clone)]
pub enum Segment {
    Literal(Vec<u8>),
    /// `%[expr]`, with the flags of a preceding `%{...}` (e.g. `+Q`).
    Expr {
        expr: SampleExpr,
        flags: Vec<String>,
    },
    /// A log variable such as `%ci`, kept by name.
    LogVar {
        name: String,
        flags: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct LogFormat {
    pub segments: Vec<Segment>,
}

impl LogFormat {
    pub fn parse(input: &str) -> Result<LogFormat, ParseError> {
        let bytes = input.as_bytes();
        let err = |at: usize, word: &str, reason: &str| ParseError::new(input, at, word, None, reason.into());
        let mut segments: Vec<Segment> = Vec::new();
        let mut text = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let c = bytes[pos];
            if c != b'%' {
                text.push(c);
                pos += 1;
                continue;
            }
            let start = pos;
            pos += 1;
            let mut flags = Vec::new();
            match bytes.get(pos) {
                None => return Err(err(start, "%", "truncated line after '%'")),
                Some(b'%') => {
                    text.push(b'%');
                    pos += 1;
                    continue;
                }
                Some(b'0'..=b'9' | b' ' | b'\t') => {
                    return Err(err(start, &input[start..], "unexpected variable name; use '%%' for a single '%'"));
                }
                Some(b'{') => {
                    let close = input[pos..].find('}').ok_or_else(|| err(start, &input[start..], "missing '}'"))?;
                    flags =
                        input[pos + 1..pos + close].split(',').filter(|f| !f.is_empty()).map(str::to_string).collect();
                    pos += close + 1;
                }
                // HAProxy 2.6 drops a '%' before any other character and keeps the character.
                Some(c) if !c.is_ascii_alphabetic() && *c != b'[' => continue,
                Some(_) => {}
            }
            if !text.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut text)));
            }
            match bytes.get(pos) {
                Some(b'[') => {
                    let (expr, end) = SampleExpr::parse_at(input, pos + 1)?;
                    if bytes.get(end) != Some(&b']') {
                        let found =
                            input[end..].chars().next().map_or("end of string".to_string(), |c| format!("'{c}'"));
                        return Err(err(
                            pos + 1,
                            &input[pos + 1..end],
                            &format!("expected ']' after the expression, found {found}"),
                        ));
                    }
                    segments.push(Segment::Expr { expr, flags });
                    pos = end + 1;
                }
                Some(c) if c.is_ascii_alphabetic() => {
                    let len = bytes[pos..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                    segments.push(Segment::LogVar { name: input[pos..pos + len].to_string(), flags });
                    pos += len;
                }
                _ => {
                    return Err(err(start, &input[start..], "expected '[' or a log variable name after '%{...}'"));
                }
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Literal(text));
        }
        Ok(LogFormat { segments })
    }

    /// Whether the format holds nothing but text (it can then be sent as is).
    pub fn is_literal(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Renders the string: a sample that cannot be fetched renders as nothing (as in an
    /// `lf-string`); log variables are rendered by `log_var`.
    pub fn render(&self, ctx: &dyn SampleContext, maps: &dyn Maps, log_var: &LogVarFn<'_>) -> Vec<u8> {
        // A lone `%[expr]` (`use_backend %[...]`, most header values) is the sample itself.
        if let [Segment::Expr { expr, .. }] = self.segments.as_slice() {
            return expr.eval_str(ctx, maps).unwrap_or_default();
        }
        let mut out = Vec::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(t) => out.extend_from_slice(t),
                Segment::Expr { expr, .. } => out.extend(expr.eval_str(ctx, maps).unwrap_or_default()),
                Segment::LogVar { name, flags } => out.extend(log_var(name, flags).unwrap_or_default()),
            }
        }
        out
    }
}
