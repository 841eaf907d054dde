//! Validation of a frontend's logging: `log_format`, `log_format_sd`, capture slots,
//! `unique_id_format`/`unique_id_header`, `dontlog_normal`, `log_separate_errors`, and the
//! global `log_tag` / `log_send_hostname`. Formats are parsed once here; an unknown variable or
//! a bad expression is a located error.

use super::super::error::FieldPath;
use super::super::model::{self, Mode, Section};
use super::Ctx;
use crate::log::compiled::LineFormat;
use crate::proxy::logrec::{FrontLog, Slot};
use http::HeaderName;

/// HAProxy's limit on a capture length is the buffer; lbha keeps slots small and bounded.
const MAX_CAPTURE: usize = 65_535;

pub(super) fn ident(g: &model::Global) -> crate::log::Ident {
    let hostname = match &g.log_send_hostname {
        Some(model::HttpLogOpt::Format(name)) => Some(name.clone()),
        Some(model::HttpLogOpt::On(true)) => {
            Some(nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default())
        }
        _ => None,
    };
    crate::log::Ident { tag: g.log_tag.clone().filter(|t| !t.is_empty()), hostname }
}

/// Parses and compiles a format, loading the maps it reads and resolving its stick tables
/// against the section being read (as a rule's value is: a missing map or table is an error).
pub(super) fn format(text: Option<&String>, p: FieldPath, cx: &mut Ctx) -> Option<LineFormat> {
    let text = text?;
    let f = super::http_rules::log_format(text, &p, cx)?;
    match LineFormat::compile(&f) {
        Ok(f) => Some(f),
        Err(e) => {
            cx.err_v(p, e, text);
            None
        }
    }
}

fn slots(defs: Option<&Vec<model::CaptureDef>>, p: FieldPath, cx: &mut Ctx) -> Vec<Slot> {
    let mut out = Vec::new();
    for (i, d) in defs.into_iter().flatten().enumerate() {
        let sp = p.index(i);
        if d.len == 0 || d.len > MAX_CAPTURE {
            cx.err_v(sp.key("len"), format!("len must be in 1..={MAX_CAPTURE}"), d.len);
        }
        let header = match &d.header {
            Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => Some(n),
                Err(_) => {
                    cx.err_v(sp.key("header"), "invalid header name", h);
                    None
                }
            },
            None => None,
        };
        out.push(Slot { header, len: d.len });
    }
    out
}

/// `capture_cookie`: a name start and a length, as HAProxy's `capture cookie`.
fn cookie(def: Option<&model::CaptureCookieDef>, p: FieldPath, cx: &mut Ctx) -> Option<(String, usize)> {
    let d = def?;
    if d.name.is_empty() || d.name.bytes().any(|b| b <= b' ' || b == b';') {
        cx.err_v(p.key("name"), "expected a cookie name (ending with `=` to match it exactly)", &d.name);
        return None;
    }
    if d.len == 0 || d.len > MAX_CAPTURE {
        cx.err_v(p.key("len"), format!("len must be in 1..={MAX_CAPTURE}"), d.len);
        return None;
    }
    Some((d.name.clone(), d.len))
}

/// HAProxy 2.6's log variables reserved for HTTP mode (its `haproxy -c` refuses them in a tcp
/// proxy).
const HTTP_ONLY: &[&str] =
    &["tr", "trg", "Ti", "TR", "Tq", "Tr", "Ta", "r", "HM", "HU", "HP", "HPO", "HQ", "HV", "CC", "CS"];

/// A `log_format` in mode tcp: the HTTP-only variables are refused, as HAProxy does.
fn tcp_format(f: LineFormat, at: &FieldPath, cx: &mut Ctx) -> Option<LineFormat> {
    for name in f.vars().map(crate::log::compiled::Var::name) {
        if HTTP_ONLY.contains(&name) {
            cx.err_v(at.clone(), format!("format variable '{name}' is reserved for HTTP mode"), format!("%{name}"));
            return None;
        }
    }
    Some(f)
}

/// A backend's `log` lines, for its server events (state changes, health checks), as HAProxy
/// sends a backend's events to the backend's loggers. Without targets of its own the backend
/// keeps the `[global]` ones (`None`) unless `log = "none"` silences it. `report`: false for
/// the backend half of a `listen`, whose frontend half reports the same keys.
pub(super) fn back(
    s: &Section,
    defaults: &Section,
    p: &FieldPath,
    report: bool,
    global: &[crate::log::LogTarget],
    cx: &mut Ctx,
) -> Option<Vec<crate::log::LogTarget>> {
    let log = s.log.as_deref().or(defaults.log.as_deref());
    let mut own = if report {
        if let Some(other) = log.filter(|l| !matches!(*l, "global" | "none")) {
            cx.err_v(p.key("log"), "expected \"global\" or \"none\" (a proxy's own targets go in log_targets)", other);
        }
        targets(s, defaults, p, cx)
    } else {
        let list = s.log_targets.as_ref().or(defaults.log_targets.as_ref());
        list.into_iter().flatten().filter_map(|l| crate::log::LogTarget::parse(l).ok()).collect()
    };
    if own.is_empty() {
        return (log == Some("none")).then(Vec::new);
    }
    if log == Some("global") {
        own.extend(global.iter().cloned());
    }
    Some(own)
}

/// `log_tag` of the proxy, else of `defaults` (HAProxy's precedence: the proxy's, then the
/// global one).
pub(super) fn tag(s: &Section, defaults: &Section, p: &FieldPath, cx: &mut Ctx) -> Option<String> {
    let (t, at) = match (&s.log_tag, &defaults.log_tag) {
        (Some(t), _) => (t, p.key("log_tag")),
        (None, Some(t)) => (t, FieldPath::root().key("defaults").key("log_tag")),
        (None, None) => return None,
    };
    // HAProxy takes the tag as one word; a syslog TAG has no spaces.
    if t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        cx.err_v(at, "expected a tag without spaces", t);
        return None;
    }
    Some(t.clone())
}

/// `log_targets` of the proxy (its own replace those of `defaults`).
fn targets(s: &Section, defaults: &Section, p: &FieldPath, cx: &mut Ctx) -> Vec<crate::log::LogTarget> {
    let (list, at) = match (&s.log_targets, &defaults.log_targets) {
        (Some(l), _) => (l, p.key("log_targets")),
        (None, Some(l)) => (l, FieldPath::root().key("defaults").key("log_targets")),
        (None, None) => return Vec::new(),
    };
    let mut out = Vec::new();
    for (i, l) in list.iter().enumerate() {
        match crate::log::LogTarget::parse(l) {
            Ok(t) => out.push(t),
            Err(e) => cx.err_v(at.index(i), e, l),
        }
    }
    out
}

/// Frontend-side logging keys in a backend section: ignored there, with a warning, as HAProxy does.
pub(super) fn backend_warnings(s: &Section, p: &FieldPath, cx: &mut Ctx) {
    let set = [
        ("log_format", s.log_format.is_some()),
        ("log_format_sd", s.log_format_sd.is_some()),
        ("capture_request", s.capture_request.is_some()),
        ("capture_response", s.capture_response.is_some()),
        ("unique_id_format", s.unique_id_format.is_some()),
        ("unique_id_header", s.unique_id_header.is_some()),
        ("dontlog_normal", s.dontlog_normal.is_some()),
        ("log_separate_errors", s.log_separate_errors.is_some()),
    ];
    for (key, _) in set.iter().filter(|(_, on)| *on) {
        cx.warn(p.key(key), "has no effect in a backend section (HAProxy ignores it there too)");
    }
}

pub(super) fn front(s: &Section, defaults: &Section, p: &FieldPath, mode: Mode, cx: &mut Ctx) -> FrontLog {
    let pick = |own: &Option<String>, def: &Option<String>| own.as_ref().or(def.as_ref()).cloned();
    let fmt = pick(&s.log_format, &defaults.log_format);
    let sd = pick(&s.log_format_sd, &defaults.log_format_sd);
    let key = |own: bool, k: &str| if own { p.key(k) } else { FieldPath::root().key("defaults").key(k) };
    let format_at = |text: &Option<String>, own: bool, k: &str, cx: &mut Ctx| format(text.as_ref(), key(own, k), cx);
    let header = pick(&s.unique_id_header, &defaults.unique_id_header);
    let unique_id_header = header.and_then(|h| {
        HeaderName::from_bytes(h.as_bytes())
            .map_err(|_| cx.err_v(key(s.unique_id_header.is_some(), "unique_id_header"), "invalid header name", &h))
            .ok()
    });
    let uid = pick(&s.unique_id_format, &defaults.unique_id_format);
    if unique_id_header.is_some() && uid.is_none() {
        cx.err(p.key("unique_id_header"), "unique_id_header needs a unique_id_format");
    }
    FrontLog {
        format: match format_at(&fmt, s.log_format.is_some(), "log_format", cx) {
            Some(f) if mode == Mode::Tcp => tcp_format(f, &key(s.log_format.is_some(), "log_format"), cx),
            f => f,
        },
        format_sd: format_at(&sd, s.log_format_sd.is_some(), "log_format_sd", cx),
        req_slots: slots(s.capture_request.as_ref(), p.key("capture_request"), cx),
        res_slots: slots(s.capture_response.as_ref(), p.key("capture_response"), cx),
        cookie: cookie(s.capture_cookie.as_ref(), p.key("capture_cookie"), cx),
        unique_id: format_at(&uid, s.unique_id_format.is_some(), "unique_id_format", cx),
        unique_id_header,
        dontlog_normal: s.dontlog_normal.or(defaults.dontlog_normal).unwrap_or(false),
        separate_errors: s.log_separate_errors.or(defaults.log_separate_errors).unwrap_or(false),
        targets: targets(s, defaults, p, cx),
        global: s.log.as_deref().or(defaults.log.as_deref()) == Some("global"),
        tag: tag(s, defaults, p, cx),
        needs_headers: false,
        needs_stream: false,
        needs_bytes_in: false,
        log_count: Default::default(),
    }
    .with_needs()
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn problems(src: &str) -> String {
        match parse(src, Path::new("lbha.toml")) {
            Ok(s) => s.warnings.join("\n"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn log_tags_are_single_words() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n";
        assert_eq!(problems(&format!("{fe}log_tag = \"web-1\"\n")), "");
        let e = problems(&format!("{fe}log_tag = \"a b\"\n"));
        assert!(e.contains("frontend[0].log_tag") && e.contains("without spaces"), "{e}");
        let e = problems(&format!("[defaults]\nlog_tag = \"\"\n{fe}"));
        assert!(e.contains("defaults.log_tag"), "{e}");
        let s = crate::config::parse(
            &format!("[defaults]\nlog_tag = \"d\"\n{fe}log_tag = \"own\"\n[[backend]]\nname = \"b\"\n"),
            Path::new("lbha.toml"),
        )
        .unwrap();
        assert_eq!(s.frontends[0].logging.tag.as_deref(), Some("own"));
        assert_eq!(s.backends[0].log_tag.as_deref(), Some("d"), "inherited from defaults");
    }

    #[test]
    fn formats_are_checked_at_load_with_their_location() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n";
        let e = problems(&format!("{fe}log_format = \"%ci %zz\"\n"));
        assert!(e.contains("frontend[0].log_format") && e.contains("unknown log-format variable '%zz'"), "{e}");
        let e = problems(&format!("{fe}unique_id_format = \"%[nope()]\"\n"));
        assert!(e.contains("frontend[0].unique_id_format"), "{e}");
        let e = problems(&format!("{fe}capture_request = [{{ header = \"Host\", len = 0 }}]\n"));
        assert!(e.contains("frontend[0].capture_request[0].len"), "{e}");
        let e = problems(&format!("{fe}capture_cookie = {{ name = \"a b\", len = 8 }}\n"));
        assert!(e.contains("frontend[0].capture_cookie.name"), "{e}");
        let e = problems(&format!("{fe}capture_cookie = {{ name = \"SID\", len = 0 }}\n"));
        assert!(e.contains("frontend[0].capture_cookie.len"), "{e}");
        let e = problems(&format!("{fe}unique_id_header = \"X-Id\"\n"));
        assert!(e.contains("unique_id_header needs a unique_id_format"), "{e}");
        let tcp = fe.replace("\"http\"", "\"tcp\"");
        let e = problems(&format!("{tcp}log_format = \"%ci %[capture.req.hdr(0)] %hr %ST %{{+Q}}r\"\n"));
        assert!(e.contains("frontend[0].log_format") && e.contains("'r' is reserved for HTTP mode"), "{e}");
        let e = problems(&format!("{fe}log_targets = [\"stdout format fancy local0\"]\n"));
        assert!(e.contains("frontend[0].log_targets[0]") && e.contains("fancy"), "{e}");
        let w = problems(
            "[[backend]]\nname = \"b\"\nmode = \"http\"\nlog_format = \"%ci\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:1\" }]\n",
        );
        assert!(w.contains("backend[0].log_format: has no effect in a backend section"), "{w}");
    }

    #[test]
    fn backend_log_lines_pick_their_targets() {
        let global = "[global]\nlog = [\"127.0.0.1:514 local0\"]\n";
        let be = "[[backend]]\nname = \"b\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:1\" }]\n";
        let targets = |extra: &str| {
            let snap = parse(&format!("{global}{be}{extra}"), Path::new("lbha.toml")).expect("valid");
            snap.backends[0].log_targets.as_ref().map(|t| t.iter().map(|t| t.facility).collect::<Vec<_>>())
        };
        // Nothing of its own: the global targets (`None`); `none` silences; own ones replace the
        // global ones, or add to them with `global`.
        assert_eq!(targets(""), None);
        assert_eq!(targets("log = \"global\"\n"), None);
        assert_eq!(targets("log = \"none\"\n"), Some(vec![]));
        assert_eq!(targets("log_targets = [\"127.0.0.1:515 local3\"]\n"), Some(vec![19]));
        assert_eq!(targets("log = \"global\"\nlog_targets = [\"127.0.0.1:515 local3\"]\n"), Some(vec![19, 16]));
        let e = problems(&format!("{be}log_targets = [\"nowhere local0\"]\n"));
        assert!(e.contains("backend[0].log_targets[0]"), "{e}");
        let e = problems(&format!("{be}log = \"loud\"\n"));
        assert!(e.contains("backend[0].log") && e.contains("loud"), "{e}");
    }
}
