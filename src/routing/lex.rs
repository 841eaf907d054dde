//! Splits ACL and condition text into words the way HAProxy's config parser does, so patterns
//! copied from a haproxy.cfg keep their meaning.
//!
//! - Words are separated by spaces or tabs; adjacent quoted and unquoted parts join into one word.
//! - `'...'` is literal. Inside `"..."`, `\"` and `\\` stand for `"` and `\`.
//! - Outside quotes, `\` before a space, quote, `#` or `\` makes that character literal.
//! - Any other backslash is kept, so regex escapes such as `\.php$` reach the regex intact.

use super::RoutingError;

/// One word and whether any part of it was quoted or escaped (a quoted `"{"` is a pattern,
/// not a brace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

impl Word {
    /// An unquoted word equal to `s`.
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

pub fn words(input: &str) -> Result<Vec<Word>, RoutingError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut word = Word { text: String::new(), quoted: false };
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '\'' => {
                    word.quoted = true;
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.text.push(c),
                            None => {
                                return Err(RoutingError::UnterminatedQuote { quote: '\'', input: input.to_string() });
                            }
                        }
                    }
                }
                '"' => {
                    word.quoted = true;
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next_if(|&n| n == '"' || n == '\\') {
                                Some(n) => word.text.push(n),
                                None => word.text.push('\\'),
                            },
                            Some(c) => word.text.push(c),
                            None => {
                                return Err(RoutingError::UnterminatedQuote { quote: '"', input: input.to_string() });
                            }
                        }
                    }
                }
                '\\' => match chars.next_if(|&n| matches!(n, ' ' | '\t' | '"' | '\'' | '#' | '\\')) {
                    Some(n) => {
                        word.quoted = true;
                        word.text.push(n);
                    }
                    None => word.text.push('\\'),
                },
                c => word.text.push(c),
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        words(s).unwrap().into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(texts("  path_beg\t/a   /b "), ["path_beg", "/a", "/b"]);
        assert!(texts("").is_empty());
        assert!(texts(" \t ").is_empty());
    }

    #[test]
    fn quotes_keep_spaces_and_join() {
        assert_eq!(texts(r#"hdr(ua) -m sub "Mozilla 5" 'a b'"#), ["hdr(ua)", "-m", "sub", "Mozilla 5", "a b"]);
        assert_eq!(texts(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(texts(r#"'' """#), ["", ""]);
    }

    #[test]
    fn escapes() {
        assert_eq!(texts(r#""say \"hi\" \\ \d""#), [r#"say "hi" \ \d"#]);
        assert_eq!(texts(r"a\ b \#x"), ["a b", "#x"]);
        assert_eq!(texts(r"\.php$ '\.x\'"), [r"\.php$", r"\.x\"]);
    }

    #[test]
    fn marks_quoted_words() {
        let w = words(r#"{ "{" '}' }"#).unwrap();
        assert!(w[0].is("{"));
        assert!(!w[1].is("{") && w[1].text == "{");
        assert!(!w[2].is("}") && w[2].text == "}");
        assert!(w[3].is("}"));
    }

    #[test]
    fn unterminated_quotes_fail() {
        assert_eq!(
            words(r#"path "abc"#),
            Err(RoutingError::UnterminatedQuote { quote: '"', input: r#"path "abc"#.into() })
        );
        assert!(matches!(words("path 'abc"), Err(RoutingError::UnterminatedQuote { quote: '\'', .. })));
        assert!(matches!(words(r#"path "ab\""#), Err(RoutingError::UnterminatedQuote { .. })));
    }
}
