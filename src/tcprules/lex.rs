//! HAProxy's word splitting for condition text, as `routing::lex` does it (kept separate until
//! the two condition languages are unified): spaces separate words, `'...'` is literal, `"..."`
//! takes `\"` and `\\`, and outside quotes `\` escapes a space, quote, `#` or `\`.

/// One word and whether any part of it was quoted (a quoted `"{"` is a pattern, not a brace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub text: String,
    pub quoted: bool,
}

impl Word {
    pub(super) fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

pub(super) fn words(input: &str) -> Result<Vec<Word>, String> {
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
                '\'' | '"' => {
                    word.quoted = true;
                    loop {
                        match chars.next() {
                            Some(q) if q == c => break,
                            Some('\\') if c == '"' => match chars.next_if(|&n| n == '"' || n == '\\') {
                                Some(n) => word.text.push(n),
                                None => word.text.push('\\'),
                            },
                            Some(ch) => word.text.push(ch),
                            None => return Err(format!("unterminated {c} quote")),
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

    #[test]
    fn quotes_and_escapes() {
        let w = words(r#"a 'b c' "d\"e" f\ g "{" x\.y"#).unwrap();
        let t: Vec<(&str, bool)> = w.iter().map(|w| (w.text.as_str(), w.quoted)).collect();
        assert_eq!(t, [("a", false), ("b c", true), ("d\"e", true), ("f g", true), ("{", true), ("x\\.y", false)]);
        assert!(words("'open").unwrap_err().contains("unterminated"));
    }
}
