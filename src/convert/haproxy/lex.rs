//! HAProxy's line syntax (configuration manual §2.2 and §2.3), as `parse_line()` applies it:
//!
//! - words are separated by unescaped, unquoted spaces and tabs; leading blanks are skipped;
//! - `#` outside quotes starts a comment, `\#` is a literal `#`;
//! - `'...'` is literal; `"..."` keeps spaces and `#` but still honours escapes and variables;
//! - outside single quotes `\ `, `\\`, `\'`, `\"`, `\#` stand for the character, `\t \n \r` for
//!   the control character, `\xNN` for a byte; any other `\c` stays as written (regexes keep `\.`);
//! - inside double quotes `$NAME`, `${NAME}`, `${NAME-default}` and `${NAME[*]}` (one word per
//!   space-separated part) expand environment variables; `\$` is a literal `$`; `.LINE`, `.FILE`
//!   and `.SECTION` are HAProxy's pseudo-variables;
//! - an empty quoted word (`""`) is a word, except at the end of a line; a line whose first word
//!   is empty is skipped.
//!
//! One addition: a `\` that ends a line joins the next line (HAProxy itself would keep the `\`
//! and read the next line as a new directive); the caller reports it.

/// What one logical line holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    /// 1-based number of the first physical line.
    pub line: usize,
    /// Physical lines joined into this one by a trailing backslash.
    pub continued: usize,
    pub args: Vec<String>,
    /// Text after an unquoted `#`, without the `#`.
    pub comment: Option<String>,
    /// The line as written (physical lines joined with `\n`).
    pub raw: String,
    /// Environment variables read.
    pub env: Vec<EnvUse>,
}

/// One environment variable a line expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvUse {
    pub name: String,
    pub set: bool,
    /// The `${NAME-default}` text used because the variable was not set.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexErrorKind {
    UnterminatedQuote(char),
    BadHex,
    BadVarName,
    UnmatchedBrace,
    BadExpand,
    TooManyWords,
    Nul,
}

impl LexErrorKind {
    pub fn message(&self) -> String {
        match self {
            Self::UnterminatedQuote(q) => format!("unterminated {q} quote"),
            Self::BadHex => "truncated or invalid hexadecimal escape (expected \\xNN)".into(),
            Self::BadVarName => "forbidden first character in environment variable name (write \\$ for a literal $ inside double quotes)".into(),
            Self::UnmatchedBrace => "unmatched brace in environment variable name".into(),
            Self::BadExpand => "invalid word expansion (expected ${NAME[*]})".into(),
            Self::TooManyWords => format!("too many words on one line (HAProxy allows {MAX_ARGS})"),
            Self::Nul => "NUL character in the file".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub line: usize,
    /// 1-based character column on that line.
    pub column: usize,
    pub kind: LexErrorKind,
}

/// HAProxy's MAX_LINE_ARGS.
pub const MAX_ARGS: usize = 64;

/// Values HAProxy's pseudo-variables take on the current line.
pub struct Pseudo<'a> {
    pub file: &'a str,
    pub section: &'a str,
}

/// Yields logical lines one at a time, so the caller can change what variables expand to
/// (`setenv` in `global`, the current section for `.SECTION`).
pub struct Lexer<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut lines: Vec<&str> = src.split('\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        Self { lines, next: 0 }
    }

    fn take(&mut self) -> Option<(usize, Vec<char>)> {
        let l = self.lines.get(self.next)?;
        self.next += 1;
        let l = l.strip_suffix('\r').unwrap_or(l);
        Some((self.next, l.chars().collect()))
    }

    /// The next logical line, or `None` at the end of the input. After an error the lexer
    /// carries on with the following line.
    pub fn next_line(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        pseudo: &Pseudo<'_>,
    ) -> Option<Result<Line, LexError>> {
        let (first, chars) = self.take()?;
        Some(self.lex(first, chars, env, pseudo))
    }

    fn lex(
        &mut self,
        first: usize,
        mut buf: Vec<char>,
        env: &dyn Fn(&str) -> Option<String>,
        pseudo: &Pseudo<'_>,
    ) -> Result<Line, LexError> {
        let mut out = Line { line: first, raw: buf.iter().collect(), ..Line::default() };
        // Where each physical line starts in `buf`, to place errors.
        let mut starts = vec![(0usize, first)];
        let err = |at: usize, starts: &[(usize, usize)], kind| {
            let (s, l) = starts.iter().rev().find(|(s, _)| *s <= at).copied().unwrap_or((0, first));
            LexError { line: l, column: at - s + 1, kind }
        };
        let mut cur = String::new();
        // Just after a separator: more blanks (also across a joined line) add no word.
        let mut sep = true;
        let mut squote: Option<usize> = None;
        let mut dquote: Option<usize> = None;
        let mut i = 0;
        while buf.get(i).is_some_and(|c| is_space(*c)) {
            i += 1;
        }
        while i < buf.len() {
            let c = buf[i];
            if c == '\0' {
                return Err(err(i, &starts, LexErrorKind::Nul));
            }
            let unquoted = squote.is_none() && dquote.is_none();
            let was_sep = sep;
            if !(unquoted && (is_space(c) || c == '#')) {
                sep = false;
            }
            if c == '\\' && squote.is_none() {
                let Some(&n) = buf.get(i + 1) else {
                    // A trailing backslash: join the next physical line.
                    if let Some((l, more)) = self.take() {
                        sep = was_sep;
                        out.continued += 1;
                        out.raw.push('\n');
                        out.raw.extend(more.iter());
                        buf.truncate(i);
                        starts.push((i, l));
                        buf.extend(more);
                        continue;
                    }
                    cur.push('\\');
                    i += 1;
                    continue;
                };
                let (emit, used) = match n {
                    ' ' | '\\' | '#' | '\'' | '"' => (Some(n), 2),
                    '$' if dquote.is_some() => (Some('$'), 2),
                    't' => (Some('\t'), 2),
                    'n' => (Some('\n'), 2),
                    'r' => (Some('\r'), 2),
                    'x' => {
                        let hex = |k: usize| buf.get(i + k).and_then(|c| c.to_digit(16));
                        match (hex(2), hex(3)) {
                            (Some(a), Some(b)) => (char::from_u32(a * 16 + b), 4),
                            _ => return Err(err(i, &starts, LexErrorKind::BadHex)),
                        }
                    }
                    _ => (Some('\\'), 1),
                };
                cur.extend(emit);
                i += used;
                continue;
            }
            if squote.is_some() {
                if c == '\'' {
                    squote = None;
                } else {
                    cur.push(c);
                }
                i += 1;
                continue;
            }
            match c {
                '#' if dquote.is_none() => {
                    out.comment = Some(buf[i + 1..].iter().collect());
                    break;
                }
                '"' => {
                    dquote = if dquote.is_some() { None } else { Some(i) };
                    i += 1;
                }
                '\'' if dquote.is_none() => {
                    squote = Some(i);
                    i += 1;
                }
                c if is_space(c) && dquote.is_none() => {
                    if !sep {
                        out.args.push(std::mem::take(&mut cur));
                        sep = true;
                    }
                    while buf.get(i).is_some_and(|c| is_space(*c)) {
                        i += 1;
                    }
                }
                '$' if dquote.is_some() => {
                    i = self
                        .variable(&buf, i, &mut cur, &mut out, env, pseudo)
                        .map_err(|(at, kind)| err(at, &starts, kind))?;
                }
                c => {
                    cur.push(c);
                    i += 1;
                }
            }
        }
        if let Some(q) = squote {
            return Err(err(q, &starts, LexErrorKind::UnterminatedQuote('\'')));
        }
        if let Some(q) = dquote {
            return Err(err(q, &starts, LexErrorKind::UnterminatedQuote('"')));
        }
        if !cur.is_empty() {
            out.args.push(cur);
        }
        if out.args.len() > MAX_ARGS {
            return Err(err(0, &starts, LexErrorKind::TooManyWords));
        }
        if out.args.first().is_some_and(String::is_empty) {
            out.args.clear();
        }
        Ok(out)
    }

    /// Expands the variable whose `$` is at `buf[at]`; returns the index after it.
    fn variable(
        &self,
        buf: &[char],
        at: usize,
        cur: &mut String,
        out: &mut Line,
        env: &dyn Fn(&str) -> Option<String>,
        pseudo: &Pseudo<'_>,
    ) -> Result<usize, (usize, LexErrorKind)> {
        let mut i = at + 1;
        let brace = buf.get(i) == Some(&'{');
        if brace {
            i += 1;
        }
        let name_start = i;
        match buf.get(i) {
            Some(c) if c.is_ascii_alphabetic() || *c == '_' || *c == '.' => {}
            _ => return Err((i, LexErrorKind::BadVarName)),
        }
        if buf[i] == '.' {
            i += 1;
        }
        while buf.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
            i += 1;
        }
        let name: String = buf[name_start..i].iter().collect();
        let mut value = match name.as_str() {
            ".LINE" => Some(out.line.to_string()),
            ".FILE" => Some(pseudo.file.to_string()),
            ".SECTION" => Some(pseudo.section.to_string()),
            n if n.starts_with('.') => return Err((name_start, LexErrorKind::BadVarName)),
            n => {
                let v = env(n);
                out.env.push(EnvUse { name: n.to_string(), set: v.is_some(), default: None });
                v
            }
        };
        let mut expand = false;
        if brace && buf.get(i) == Some(&'[') {
            if buf.get(i + 1) != Some(&'*') || buf.get(i + 2) != Some(&']') {
                return Err((i, LexErrorKind::BadExpand));
            }
            expand = true;
            i += 3;
        }
        if brace {
            if buf.get(i) == Some(&'-') {
                let end = buf[i..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|p| i + p)
                    .ok_or((at + 1, LexErrorKind::UnmatchedBrace))?;
                if value.is_none() {
                    let d: String = buf[i + 1..end].iter().collect();
                    if let Some(u) = out.env.last_mut() {
                        u.default = Some(d.clone());
                    }
                    value = Some(d);
                }
                i = end;
            }
            if buf.get(i) != Some(&'}') {
                return Err((at + 1, LexErrorKind::UnmatchedBrace));
            }
            i += 1;
        }
        let value = value.unwrap_or_default();
        if expand {
            let mut parts = value.split(is_space).filter(|p| !p.is_empty()).peekable();
            while let Some(p) = parts.next() {
                cur.push_str(p);
                if parts.peek().is_some() {
                    out.args.push(std::mem::take(cur));
                }
            }
        } else {
            cur.push_str(&value);
        }
        Ok(i)
    }
}

/// C's `isspace` in the "C" locale, which HAProxy uses to split words.
pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Writes `arg` so that [`Lexer`] reads it back as exactly one word equal to `arg`.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| !is_space(c) && !c.is_control() && !"\\'\"#$".contains(c));
    if plain {
        return arg.to_string();
    }
    let mut s = String::with_capacity(arg.len() + 2);
    s.push('"');
    for c in arg.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '$' => s.push_str("\\$"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests;
