//! Answers and their framing. Every answer ends with an empty line (as HAProxy's CLI does), and
//! no answer contains one, so a client reading several answers on one connection knows where
//! each ends.

use super::parse::Severity;
use serde_json::{Value, json};

/// What one command answers, in both forms; the session picks one.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok { text: String, json: Value },
    Err { text: String, json: Value },
}

impl Reply {
    pub fn ok(text: impl Into<String>, json: Value) -> Self {
        Reply::Ok { text: text.into(), json }
    }

    /// An error; its JSON form is HAProxy's `{"errorStr": ...}`.
    pub fn error(msg: impl Into<String>) -> Self {
        let text = msg.into();
        let json = json!({ "errorStr": text });
        Reply::Err { text, json }
    }

    pub fn is_err(&self) -> bool {
        matches!(self, Reply::Err { .. })
    }
}

/// Per-connection settings changed by `prompt` and `set severity-output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    pub prompt: bool,
    pub severity: Severity,
    /// What this connection may do: the socket's level, or lower after `user`/`operator`.
    pub level: super::parse::Level,
    /// `expert-mode on`: `debug dev` commands allowed (HAProxy's expert mode).
    pub expert: bool,
}

/// The prompt that follows every answer in interactive mode.
pub const PROMPT: &str = "> ";

/// The bytes sent for one answer.
pub fn frame(reply: &Reply, json: bool, session: Session) -> String {
    let (body, is_err) = match reply {
        Reply::Ok { text, json: j } => (if json { j.to_string() } else { text.clone() }, false),
        Reply::Err { text, json: j } => (if json { j.to_string() } else { text.clone() }, true),
    };
    let mut out = String::with_capacity(body.len() + 8);
    let mut first = true;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if first && is_err && !json {
            match session.severity {
                Severity::None => {}
                Severity::Number => out.push_str("[3]: "),
                Severity::String => out.push_str("[err]: "),
            }
        }
        first = false;
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    if session.prompt {
        out.push_str(PROMPT);
    }
    out
}

/// The first text of an answer marked as an error by `set severity-output number`, without the
/// mark.
pub fn strip_error_mark(answer: &str) -> Option<&str> {
    answer.strip_prefix("[3]: ")
}

/// Splits a stream of answers (without prompts) into the answers, each without its final empty
/// line. An empty answer is an empty string.
pub fn split_answers(stream: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in stream.split_inclusive('\n') {
        if line == "\n" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
        }
    }
    if !cur.is_empty() {
        // The peer closed inside an answer: keep what arrived.
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_end_with_one_empty_line_and_hold_none() {
        let r = Reply::ok("a\n\nb\r\n", json!([1]));
        assert_eq!(frame(&r, false, Session::default()), "a\nb\n\n");
        assert_eq!(frame(&r, true, Session::default()), "[1]\n\n");
        assert_eq!(frame(&Reply::ok("", json!({})), false, Session::default()), "\n");
    }

    #[test]
    fn severity_marks_errors_only_in_text() {
        let s = Session { severity: Severity::Number, ..Session::default() };
        let e = Reply::error("No such server.");
        assert_eq!(frame(&e, false, s), "[3]: No such server.\n\n");
        assert_eq!(frame(&e, true, s), "{\"errorStr\":\"No such server.\"}\n\n");
        assert_eq!(frame(&Reply::ok("fine", json!(1)), false, s), "fine\n\n");
        let s = Session { severity: Severity::String, prompt: true, ..Session::default() };
        assert_eq!(frame(&e, false, s), "[err]: No such server.\n\n> ");
        assert_eq!(frame(&e, false, Session::default()), "No such server.\n\n");
    }

    #[test]
    fn split_round_trip() {
        let stream = [
            frame(&Reply::ok("x\ny", json!(0)), false, Session::default()),
            frame(&Reply::ok("", json!(0)), false, Session::default()),
            frame(&Reply::error("bad"), false, Session::default()),
        ]
        .concat();
        assert_eq!(split_answers(&stream), vec!["x\ny\n", "", "bad\n"]);
        assert_eq!(split_answers("partial"), vec!["partial"]);
        assert_eq!(strip_error_mark("[3]: bad\n"), Some("bad\n"));
        assert_eq!(strip_error_mark("fine"), None);
    }
}
