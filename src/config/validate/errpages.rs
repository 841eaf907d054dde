//! Validation of error pages: `errorfile`, `errorloc*`, `errorfiles`, `http-error` and the
//! `[[http_errors]]` sections. Files are read and checked here, once per load, as HAProxy does;
//! a proxy starts from the pages of `defaults` and its own lines replace them code by code.

use super::super::error::FieldPath;
use super::super::model::{self, Section};
use super::Ctx;
use crate::proxy::errpages::{CODES, ErrorPages, Reply};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::collections::{BTreeMap, HashMap};

/// The `[[http_errors]]` sections, by name, with their pages read.
pub(super) fn sections(defs: &[model::HttpErrorsDef], bufsize: usize, cx: &mut Ctx) -> HashMap<String, ErrorPages> {
    let mut out = HashMap::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("http_errors").index(i);
        if d.name.is_empty() {
            cx.err(p.key("name"), "missing name");
            continue;
        }
        let mut pages = ErrorPages::default();
        files(&d.errorfile, &p.key("errorfile"), bufsize, &mut pages, cx);
        if out.insert(d.name.clone(), pages).is_some() {
            cx.err_v(p.key("name"), "duplicate http_errors section", &d.name);
        }
    }
    out
}

/// A proxy's pages: those of `defaults`, then its own `errorfiles`, `errorfile`, `errorloc*` and
/// `http_error`, later ones replacing earlier ones for the same code.
pub(super) fn pages(
    s: &Section,
    defaults: &Section,
    named: &HashMap<String, ErrorPages>,
    path: &FieldPath,
    bufsize: usize,
    cx: &mut Ctx,
) -> ErrorPages {
    let mut pages = ErrorPages::default();
    let dp = FieldPath::root().key("defaults");
    // Problems in `defaults` are reported once, by the defaults section itself (see `report_defaults`).
    let mut quiet = Vec::new();
    let mut silent = Ctx {
        problems: &mut quiet,
        base_dir: cx.base_dir,
        maps: crate::maps::Loader::new(cx.base_dir),
        resolvers: Vec::new(),
        userlists: Vec::new(),
        tls_defaults: Default::default(),
        tables: Vec::new(),
        owner: String::new(),
        caches: cx.caches,
        replies: Default::default(),
        request_rule: false,
    };
    own(defaults, named, &dp, bufsize, &mut pages, &mut silent);
    own(s, named, path, bufsize, &mut pages, cx);
    pages
}

/// Reports the problems of the `defaults` section's error pages, once.
pub(super) fn report_defaults(defaults: &Section, named: &HashMap<String, ErrorPages>, bufsize: usize, cx: &mut Ctx) {
    let mut pages = ErrorPages::default();
    own(defaults, named, &FieldPath::root().key("defaults"), bufsize, &mut pages, cx);
}

fn own(
    s: &Section,
    named: &HashMap<String, ErrorPages>,
    p: &FieldPath,
    bufsize: usize,
    pages: &mut ErrorPages,
    cx: &mut Ctx,
) {
    for (i, e) in s.errorfiles.as_deref().unwrap_or(&[]).iter().enumerate() {
        let ep = p.key("errorfiles").index(i);
        match named.get(&e.name) {
            None => cx.err_v(ep.key("name"), "no such http_errors section", &e.name),
            Some(set) => {
                for code in set.codes() {
                    if (e.codes.is_empty() || e.codes.contains(&code))
                        && let Some(r) = set.get(code)
                    {
                        pages.set(code, r.clone());
                    }
                }
                for c in e.codes.iter().filter(|c| !CODES.contains(c)) {
                    cx.warn(
                        ep.key("codes"),
                        format!("status code {c} not handled, error customization will be ignored"),
                    );
                }
            }
        }
    }
    if let Some(map) = &s.errorfile {
        files(map, &p.key("errorfile"), bufsize, pages, cx);
    }
    for (key, redirect) in [("errorloc", 302), ("errorloc302", 302), ("errorloc303", 303)] {
        let map = match key {
            "errorloc" => &s.errorloc,
            "errorloc302" => &s.errorloc302,
            _ => &s.errorloc303,
        };
        for (code_text, url) in map.iter().flatten() {
            let kp = p.key(key).key(code_text);
            let Some(code) = code(code_text, &kp, cx) else { continue };
            match Reply::location(redirect, url) {
                Ok(r) => pages.set(code, r),
                Err(e) => cx.err_v(kp, e, url),
            }
        }
    }
    for (i, h) in s.http_error.as_deref().unwrap_or(&[]).iter().enumerate() {
        http_error(h, &p.key("http_error").index(i), named, bufsize, pages, cx);
    }
}

/// A code key (`"503"`); codes HAProxy has no page for are ignored with its warning.
fn code(text: &str, p: &FieldPath, cx: &mut Ctx) -> Option<u16> {
    match text.parse::<u16>() {
        Ok(c) if CODES.contains(&c) => Some(c),
        Ok(c) => {
            cx.warn(p.clone(), format!("status code {c} not handled, error customization will be ignored"));
            None
        }
        Err(_) => {
            cx.err_v(p.clone(), "expected a status code", text);
            None
        }
    }
}

fn read(file: &str, p: &FieldPath, cx: &mut Ctx) -> Option<Vec<u8>> {
    let path = cx.base_dir.join(file);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            cx.err_v(p.clone(), format!("cannot read {}: {e}", path.display()), file);
            None
        }
    }
}

fn errorfile(file: &str, p: &FieldPath, bufsize: usize, cx: &mut Ctx) -> Option<Reply> {
    let raw = read(file, p, cx)?;
    match Reply::parse_raw(&raw, bufsize) {
        Ok(r) => Some(r),
        Err(e) => {
            cx.err_v(p.clone(), format!("invalid errorfile: {e}"), file);
            None
        }
    }
}

fn files(map: &BTreeMap<String, String>, p: &FieldPath, bufsize: usize, pages: &mut ErrorPages, cx: &mut Ctx) {
    for (code_text, file) in map {
        let kp = p.key(code_text);
        let Some(c) = code(code_text, &kp, cx) else { continue };
        if let Some(r) = errorfile(file, &kp, bufsize, cx) {
            pages.set(c, r);
        }
    }
}

fn http_error(
    h: &model::HttpErrorDef,
    p: &FieldPath,
    named: &HashMap<String, ErrorPages>,
    bufsize: usize,
    pages: &mut ErrorPages,
    cx: &mut Ctx,
) {
    if !CODES.contains(&h.status) {
        cx.err_v(p.key("status"), format!("status code must be one of {CODES:?}"), h.status);
        return;
    }
    let sources = [
        h.string.is_some(),
        h.file.is_some(),
        h.lf_string.is_some(),
        h.lf_file.is_some(),
        h.errorfile.is_some(),
        h.errorfiles.is_some(),
        h.default_errorfiles,
    ];
    if sources.iter().filter(|x| **x).count() > 1 {
        cx.err(p.clone(), "use one of string, file, lf_string, lf_file, errorfile, errorfiles, default_errorfiles");
        return;
    }
    let mut extra = Vec::new();
    // Values with a `%` are log-format strings, as every `hdr` value is in HAProxy.
    let mut lf_headers = Vec::new();
    for (i, line) in h.hdr.iter().enumerate() {
        let hp = p.key("hdr").index(i);
        let Some((n, v)) = line.split_once(':') else {
            cx.err_v(hp, "expected \"Name: value\"", line);
            continue;
        };
        let Ok(name) = HeaderName::from_bytes(n.trim().as_bytes()) else {
            cx.err_v(hp, "invalid header name", line);
            continue;
        };
        if v.contains('%') {
            if let Some(lf) = super::logging::format(Some(&v.trim().to_string()), hp, cx) {
                let value = crate::proxy::errpages::LfBody(std::sync::Arc::new(lf));
                lf_headers.push(crate::proxy::errpages::LfHeader { at: extra.len(), name, value });
            }
            continue;
        }
        match HeaderValue::from_str(v.trim()) {
            Ok(v) => extra.push((name, v)),
            _ => cx.err_v(hp, "invalid header value", line),
        }
    }
    let reply = if let Some(f) = &h.errorfile {
        errorfile(f, &p.key("errorfile"), bufsize, cx)
    } else if let Some(name) = &h.errorfiles {
        match named.get(name) {
            Some(set) => Some(set.get(h.status).cloned().unwrap_or_else(|| Reply::builtin(h.status))),
            None => {
                cx.err_v(p.key("errorfiles"), "no such http_errors section", name);
                None
            }
        }
    } else if h.default_errorfiles {
        Some(Reply::builtin(h.status))
    } else if h.lf_string.is_some() || h.lf_file.is_some() {
        let (text, at) = match (&h.lf_string, &h.lf_file) {
            (Some(s), _) => (Some(s.clone()), p.key("lf_string")),
            (None, Some(f)) => {
                (read(f, &p.key("lf_file"), cx).map(|b| String::from_utf8_lossy(&b).into_owned()), p.key("lf_file"))
            }
            (None, None) => (None, p.clone()),
        };
        let Some(text) = text else { return };
        if h.content_type.is_none() {
            cx.err(p.key("content_type"), "a body needs a content_type");
            return;
        }
        let Some(lf) = super::logging::format(Some(&text), at, cx) else { return };
        let mut r = Reply::custom(h.status, h.content_type.as_deref(), Bytes::new(), extra);
        r.lf_body = Some(crate::proxy::errpages::LfBody(std::sync::Arc::new(lf)));
        Some(r)
    } else {
        let body = match (&h.string, &h.file) {
            (Some(s), _) => Some(Bytes::from(s.clone())),
            (None, Some(f)) => read(f, &p.key("file"), cx).map(Bytes::from),
            (None, None) => Some(Bytes::new()),
        };
        let Some(body) = body else { return };
        if !body.is_empty() && h.content_type.is_none() {
            cx.err(p.key("content_type"), "a body needs a content_type");
            return;
        }
        if body.len() > bufsize {
            cx.err(
                p.clone(),
                format!("body of {} bytes is larger than the buffer (tune_bufsize {bufsize})", body.len()),
            );
            return;
        }
        Some(Reply::custom(h.status, h.content_type.as_deref(), body, extra))
    };
    if let Some(mut r) = reply {
        r.lf_headers = lf_headers;
        pages.set(h.status, r);
    }
}

/// The `[[http_errors]]` sections and the buffer size, for the rules that answer with an
/// error page.
#[derive(Default)]
pub(super) struct Replies {
    pub sets: HashMap<String, ErrorPages>,
    pub bufsize: usize,
}

/// Where a `deny`/`return` takes its error page from.
pub(super) struct PageSource<'a> {
    pub errorfile: Option<&'a str>,
    pub errorfiles: Option<&'a str>,
    pub default_errorfiles: bool,
}

impl PageSource<'_> {
    pub fn given(&self) -> bool {
        self.errorfile.is_some() || self.errorfiles.is_some() || self.default_errorfiles
    }
}

/// Codes HAProxy has a page for, so `errorfiles` and `default-errorfiles` can answer with them.
const PAGE_CODES: [u16; 17] = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504];

/// `deny`/`return` answered by an error page, as HAProxy's http reply: `errorfile FILE` is
/// sent as it is (its own status), `errorfiles NAME` is that section's page for `status` (an
/// empty answer when it has none, with HAProxy's warning), `default-errorfiles` the proxy's own
/// page for `status`. `body` says a body was given too (an error, as in HAProxy); a content
/// type or headers are ignored with HAProxy's warning.
pub(super) fn rule_page(
    src: &PageSource,
    status: http::StatusCode,
    body: bool,
    extras: (bool, bool),
    deny: bool,
    at: &FieldPath,
    cx: &mut Ctx,
) -> Option<crate::config::snapshot::HttpAction> {
    let given = [src.errorfile.is_some(), src.errorfiles.is_some(), src.default_errorfiles];
    if body || given.iter().filter(|g| **g).count() > 1 {
        cx.err(at.clone(), "give one of a body, errorfile, errorfiles or default_errorfiles");
        return None;
    }
    if extras.0 {
        cx.warn(at.key("content_type"), "content_type is ignored with an error page, as HAProxy does");
    }
    if extras.1 {
        cx.warn(at.key("headers"), "headers are ignored with an error page, as HAProxy does");
    }
    let code = status.as_u16();
    if src.errorfile.is_none() && !PAGE_CODES.contains(&code) {
        cx.err_v(at.key("status"), format!("no error page for this status; use one of {PAGE_CODES:?}"), code);
        return None;
    }
    let page = if let Some(f) = src.errorfile {
        Some(errorfile(f, &at.key("errorfile"), cx.replies.bufsize, cx)?)
    } else if let Some(name) = src.errorfiles {
        let Some(set) = cx.replies.sets.get(name) else {
            cx.err_v(at.key("errorfiles"), "no such http_errors section", name);
            return None;
        };
        Some(match set.get(code) {
            Some(r) => r.clone(),
            None => {
                cx.warn(
                    at.key("errorfiles"),
                    format!("status {code} is not in http_errors section `{name}`: the answer is empty"),
                );
                Reply::custom(code, None, Bytes::new(), Vec::new())
            }
        })
    } else {
        None
    };
    Some(crate::config::snapshot::HttpAction::ErrorPage { status, page: page.map(std::sync::Arc::new), deny })
}
