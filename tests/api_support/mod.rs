//! Helpers for the Data Plane API tests: an lbha with `[api]` on loopback, curl runs, and
//! plain HTTP calls with Basic auth.
#![allow(dead_code)]

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

pub const AUTH: &str = "YWRtaW46MTIzNDU2"; // admin:123456, as in the seed

/// A config with the API on `api_port`, users from the seed (admin:123456), `extra` appended.
pub fn config(api_port: u16, state: &TempDir, extra: &str) -> String {
    format!(
        r#"# lbha under test; the API edits this file
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[userlist]]
name = "dataplaneapi"
users = [{{ name = "admin", insecure_password = "123456" }}]

[api]
bind = "127.0.0.1:{api_port}"
userlist = "dataplaneapi"
state_dir = "{}"

{extra}
"#,
        state.0.display()
    )
}

pub struct ApiLbha {
    pub lbha: Lbha,
    pub port: u16,
    pub state: TempDir,
    /// `$CURL_HOME` with a `.curlrc` that makes curl print the status after the body, so the
    /// seed's commands run unchanged.
    pub curl_home: TempDir,
}

impl ApiLbha {
    pub fn start(extra: &str) -> ApiLbha {
        let state = TempDir::new("api-state");
        let port = free_port();
        let lbha = Lbha::start(&config(port, &state, extra), &[port]);
        Self::with(lbha, port, state)
    }

    pub fn with(lbha: Lbha, port: u16, state: TempDir) -> ApiLbha {
        let curl_home = TempDir::new("curl");
        curl_home.write(".curlrc", "silent\nshow-error\nwrite-out = \"\\n%{http_code}\"\n");
        ApiLbha { lbha, port, state, curl_home }
    }

    /// Runs a shell command line with curl; returns (status, body).
    pub fn curl(&self, cmd: &str) -> (u16, String) {
        crate::common::require_tool("curl", "curl");
        let out = Command::new("sh").arg("-c").arg(cmd).env("CURL_HOME", &self.curl_home.0).output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(out.status.success(), "curl failed: {cmd}\n{}", String::from_utf8_lossy(&out.stderr));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// One request with Basic auth (or the given Authorization value).
    pub fn call_auth(&self, method: &str, path: &str, body: Option<&str>, auth: Option<&str>) -> Resp {
        let b = body.unwrap_or("");
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        );
        raw(self.port, req.as_bytes()).expect("API request")
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.call_auth(method, path, body, Some(&format!("Basic {AUTH}")))
    }

    pub fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let r = self.call(method, path, body);
        let v = if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", r.text()))
        };
        (r.status, v)
    }

    pub fn version(&self) -> u64 {
        let (s, v) = self.json("GET", "/v2/services/haproxy/configuration/version", None);
        assert_eq!(s, 200, "{v}");
        v.as_u64().expect("version is an integer")
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.lbha.config).expect("read config")
    }

    /// `lbha check` on the file as it is now.
    pub fn check_file(&self) {
        let out =
            Command::new(lbha_bin()).args(["check", "-c"]).arg(&self.lbha.config).output().expect("run lbha check");
        assert!(
            out.status.success(),
            "lbha check rejects the file the API wrote:\n{}\n---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.config_text()
        );
    }

    /// Kills lbha (no clean stop: as a crash would) and starts it again on the same file and
    /// state directory.
    pub fn restart(self) -> ApiLbha {
        let text = self.config_text();
        let ApiLbha { lbha, port, state, .. } = self;
        drop(lbha);
        let lbha = Lbha::start(&text, &[port]);
        Self::with(lbha, port, state)
    }

    /// Stops lbha and starts it again on the config as `edit` changes it.
    pub fn restart_with(self, edit: impl FnOnce(&str) -> String) -> ApiLbha {
        let text = edit(&self.config_text());
        let ApiLbha { lbha, port, state, .. } = self;
        drop(lbha);
        let lbha = Lbha::start(&text, &[port]);
        Self::with(lbha, port, state)
    }

    pub fn state_path(&self) -> PathBuf {
        self.state.0.clone()
    }
}
