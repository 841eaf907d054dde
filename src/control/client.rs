//! The client side, for the `lbha` CLI: send commands over the control socket and read the
//! answers. Blocking std I/O: the CLI has nothing else to do meanwhile.

use super::reply::{split_answers, strip_error_mark};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach lbha on the control socket {path}: {source} (is the daemon running? -S names another socket)"
    )]
    Unreachable { path: PathBuf, source: io::Error },
    #[error("lost the connection to lbha on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("lbha on {path} did not answer within {secs}s")]
    Timeout { path: PathBuf, secs: u64 },
}

/// Sends `lines`, closes the sending side, and returns everything the daemon answered (the
/// daemon closes once it has answered the last command).
pub fn exchange(path: &Path, lines: &[&str], timeout: Duration) -> Result<String, ClientError> {
    let mut s =
        UnixStream::connect(path).map_err(|source| ClientError::Unreachable { path: path.to_path_buf(), source })?;
    let io_err = |source: io::Error| {
        if matches!(source.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            ClientError::Timeout { path: path.to_path_buf(), secs: timeout.as_secs() }
        } else {
            ClientError::Io { path: path.to_path_buf(), source }
        }
    };
    s.set_read_timeout(Some(timeout)).map_err(io_err)?;
    s.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let mut text = lines.join("\n");
    text.push('\n');
    s.write_all(text.as_bytes()).map_err(io_err)?;
    s.shutdown(std::net::Shutdown::Write).map_err(io_err)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(io_err)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One command's answer, and whether it reports a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ok: bool,
    pub text: String,
}

/// Runs one command line (it may chain commands with `;`), asking the daemon to mark errors so
/// each answer is known to have succeeded or failed: a text error starts with `[3]: `, a JSON
/// error is HAProxy's `{"errorStr": ...}` object.
pub fn run(path: &Path, line: &str, timeout: Duration) -> Result<Vec<Answer>, ClientError> {
    let out = exchange(path, &["set severity-output number", line], timeout)?;
    let mut answers = split_answers(&out);
    // The first answer is that of `set severity-output`.
    if !answers.is_empty() {
        answers.remove(0);
    }
    Ok(answers.into_iter().map(classify).collect())
}

fn classify(text: String) -> Answer {
    if let Some(rest) = strip_error_mark(&text) {
        return Answer { ok: false, text: rest.to_string() };
    }
    let json_error = text.starts_with('{')
        && serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("errorStr").is_some());
    Answer { ok: !json_error, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_text_and_json_errors() {
        assert_eq!(classify("[3]: No such server.\n".into()), Answer { ok: false, text: "No such server.\n".into() });
        assert!(!classify("{\"errorStr\":\"No such server.\"}\n".into()).ok);
        assert!(classify("{\"success\":true}\n".into()).ok);
        assert!(classify("Name: lbha\n".into()).ok);
        assert!(classify(String::new()).ok);
    }

    #[test]
    fn unreachable_names_the_socket() {
        let p = Path::new("/nonexistent-lbha-test/lbha.sock");
        let e = exchange(p, &["show info"], Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::Unreachable { .. }));
        assert!(e.to_string().contains("/nonexistent-lbha-test/lbha.sock"), "{e}");
    }
}
