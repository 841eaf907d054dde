//! Validation of passive health checking (`observe`, `error_limit`, `on_error`) and
//! `on_marked_up`, as HAProxy 2.6 checks them.

use super::super::error::FieldPath;
use super::super::model::{self, Mode};
use super::Ctx;
use crate::health::passive::{DEFAULT_ERROR_LIMIT, Observe, OnError, Spec};

/// The server's passive-check settings; `None` without `observe` (or without checks, where
/// HAProxy accepts and ignores it: a warning here).
pub(super) fn spec(sv: &model::Server, sp: &FieldPath, mode: Mode, checked: bool, cx: &mut Ctx) -> Option<Spec> {
    let observe = match sv.observe.as_deref() {
        None | Some("none") => None,
        Some(v) => match Observe::parse(v) {
            Some(Observe::Layer7) if mode != Mode::Http => {
                cx.err_v(sp.key("observe"), "\"layer7\" can only be used in HTTP backends (mode = \"http\")", v);
                None
            }
            Some(o) => Some(o),
            None => {
                cx.err_v(sp.key("observe"), "expected \"none\", \"layer4\" or \"layer7\"", v);
                None
            }
        },
    };
    let error_limit = match sv.error_limit {
        Some(0) => {
            cx.err_v(sp.key("error_limit"), "must be greater than 0", 0);
            DEFAULT_ERROR_LIMIT
        }
        Some(n) => n,
        None => DEFAULT_ERROR_LIMIT,
    };
    let on_error = match sv.on_error.as_deref() {
        None => OnError::FailCheck,
        Some(v) => OnError::parse(v).unwrap_or_else(|| {
            cx.err_v(
                sp.key("on_error"),
                "expected \"fastinter\", \"fail-check\", \"sudden-death\" or \"mark-down\"",
                v,
            );
            OnError::FailCheck
        }),
    };
    let observe = observe?;
    if !checked {
        // HAProxy only observes servers whose checks run.
        cx.warn(sp.key("observe"), "has no effect without `check = true` (HAProxy ignores it too)");
        return None;
    }
    Some(Spec { observe, error_limit, on_error })
}

/// `redir`: a prefix that makes a valid `Location` with any URI after it; HTTP backends only
/// (HAProxy: "server cannot have cookie or redirect prefix in non-HTTP mode").
pub(super) fn redir(sv: &model::Server, sp: &FieldPath, mode: Mode, cx: &mut Ctx) -> Option<http::HeaderValue> {
    let prefix = sv.redir.as_deref()?;
    if mode != Mode::Http {
        cx.err_v(sp.key("redir"), "needs an HTTP backend (mode = \"http\")", prefix);
        return None;
    }
    if prefix.is_empty() {
        cx.err(sp.key("redir"), "expected a prefix such as \"http://img.example.com\"");
        return None;
    }
    if prefix.ends_with('/') {
        // HAProxy takes it too; the URI brings its own leading slash.
        cx.warn(sp.key("redir"), format!("ends with '/': locations will have two ({prefix}//path)"));
    }
    match http::HeaderValue::from_str(prefix) {
        Ok(v) => Some(v),
        Err(_) => {
            cx.err_v(sp.key("redir"), "not valid in a Location header", prefix);
            None
        }
    }
}

/// `on_marked_up = "shutdown-backup-sessions"`.
pub(super) fn shutdown_backups_on_up(sv: &model::Server, sp: &FieldPath, cx: &mut Ctx) -> bool {
    match sv.on_marked_up.as_deref() {
        None => false,
        Some("shutdown-backup-sessions") => {
            if !sv.check && sv.track.is_none() {
                cx.warn(
                    sp.key("on_marked_up"),
                    "acts when checks (or a tracked server) bring the server up: no effect without `check = true`",
                );
            }
            if sv.backup {
                cx.warn(sp.key("on_marked_up"), "has no effect on a backup server (HAProxy ignores it there too)");
            }
            true
        }
        Some(v) => {
            cx.err_v(sp.key("on_marked_up"), "expected \"shutdown-backup-sessions\"", v);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::health::passive::{Observe, OnError, Spec};
    use std::path::Path;

    fn src(mode: &str, server: &str) -> String {
        format!(
            "[[backend]]\nname = \"be\"\nmode = \"{mode}\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:2\", {server} }}, {{ name = \"k\", addr = \"127.0.0.1:3\", backup = true }}]\n"
        )
    }

    fn err(mode: &str, server: &str) -> String {
        match parse(&src(mode, server), Path::new("t.toml")) {
            Ok(_) => panic!("accepted: {server}"),
            Err(e) => e.to_string(),
        }
    }

    fn snap_warnings(mode: &str, server: &str) -> (crate::config::Snapshot, String) {
        let snap = parse(&src(mode, server), Path::new("t.toml")).expect("valid");
        let w = snap.warnings.join("\n");
        (snap, w)
    }

    #[test]
    fn settings_and_defaults() {
        let (snap, _) = snap_warnings("http", "check = true, observe = \"layer7\"");
        let want = Spec { observe: Observe::Layer7, error_limit: 10, on_error: OnError::FailCheck };
        assert_eq!(snap.backends[0].servers[0].observe, Some(want));
        let (snap, w) = snap_warnings(
            "tcp",
            "check = true, observe = \"layer4\", error_limit = 3, on_error = \"sudden-death\", on_marked_up = \"shutdown-backup-sessions\"",
        );
        let s = &snap.backends[0].servers[0];
        assert_eq!(s.observe, Some(Spec { observe: Observe::Layer4, error_limit: 3, on_error: OnError::SuddenDeath }));
        assert!(s.shutdown_backups_on_up);
        assert!(!w.contains("on_marked_up"), "{w}");
        let (snap, _) = snap_warnings("http", "check = true, observe = \"none\", on_error = \"mark-down\"");
        assert_eq!(snap.backends[0].servers[0].observe, None);
    }

    #[test]
    fn bad_values_are_located_errors() {
        let e = err("http", "check = true, observe = \"layer5\"");
        assert!(e.contains("t.toml:4") && e.contains("servers[0].observe") && e.contains("layer5"), "{e}");
        let e = err("tcp", "check = true, observe = \"layer7\"");
        assert!(e.contains("servers[0].observe") && e.contains("only be used in HTTP backends"), "{e}");
        let e = err("http", "check = true, observe = \"layer4\", error_limit = 0");
        assert!(e.contains("servers[0].error_limit: must be greater than 0"), "{e}");
        let e = err("http", "check = true, observe = \"layer4\", on_error = \"down\"");
        assert!(e.contains("servers[0].on_error") && e.contains("sudden-death") && e.contains("(value: down)"), "{e}");
        let e = err("http", "check = true, on_marked_up = \"shutdown-sessions\"");
        assert!(e.contains("servers[0].on_marked_up: expected \"shutdown-backup-sessions\""), "{e}");
    }

    #[test]
    fn redir_prefixes() {
        let (snap, w) = snap_warnings("http", "redir = \"http://img.example.com\"");
        assert_eq!(
            snap.backends[0].servers[0].redir.as_ref().map(|v| v.as_bytes()),
            Some(&b"http://img.example.com"[..])
        );
        assert!(w.is_empty(), "{w}");
        let (_, w) = snap_warnings("http", "redir = \"http://img.example.com/\"");
        assert!(w.contains("servers[0].redir") && w.contains("two"), "{w}");
        let e = err("tcp", "redir = \"http://x\"");
        assert!(e.contains("servers[0].redir: needs an HTTP backend"), "{e}");
        let e = err("http", "redir = \"\"");
        assert!(e.contains("servers[0].redir: expected a prefix"), "{e}");
        let e = err("http", "redir = \"http://x\\u0001\"");
        assert!(e.contains("servers[0].redir: not valid in a Location header"), "{e}");
    }

    #[test]
    fn without_checks_it_is_a_warning_as_haproxy_ignores_it() {
        let (snap, w) = snap_warnings("http", "observe = \"layer4\"");
        assert_eq!(snap.backends[0].servers[0].observe, None);
        assert!(w.contains("servers[0].observe") && w.contains("without `check = true`"), "{w}");
        let (_, w) = snap_warnings("http", "on_marked_up = \"shutdown-backup-sessions\"");
        assert!(w.contains("servers[0].on_marked_up"), "{w}");
    }
}
