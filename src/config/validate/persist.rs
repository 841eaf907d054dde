//! Validation of a backend's persistence: `cookie`, `stick_table`, `stick`, `appsession`, and the
//! servers' `cookie` values. HAProxy's own refusals are kept (rewrite+indirect, preserve without
//! insert or indirect, bad domain characters), plus settings that would silently do nothing.

use super::super::error::FieldPath;
use super::super::model::{self, Mode, Section};
use super::super::persist_spec::{
    self as persist, CookieMode, CookieSpec, Fetch, KeyType, Rule, RuleKind, ServerKey, StickCond, StickSpec, TableSpec,
};
use super::super::snapshot::Server;
use super::Ctx;
use std::time::Duration;

/// Default `size` of an appsession table (HAProxy 1.4 had no bound; this keeps memory finite).
const APPSESSION_SIZE: usize = 1 << 20;
const APPSESSION_LEN: usize = 64;

/// RFC 6265 token: no controls, blanks or separators.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// A value lbha can put in a cookie and read back: cookie-octets without `|` or `~`, which
/// separate dates and prefixes.
fn is_cookie_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\|~".contains(&b))
}

pub(super) fn spec(
    s: &Section,
    defaults: &Section,
    p: &FieldPath,
    mode: Mode,
    servers_src: &[model::Server],
    servers: &[Server],
    cx: &mut Ctx,
) -> persist::Spec {
    // A cookie from `defaults` applies to HTTP backends only, and servers without a value there
    // simply are not persistent; one set in the backend itself must cover its servers.
    let own = s.cookie.is_some();
    let key = s.dynamic_cookie_key.as_deref().or(defaults.dynamic_cookie_key.as_deref());
    let cookie = match (&s.cookie, &defaults.cookie) {
        (Some(c), _) => cookie_spec(c, &p.key("cookie"), key, cx),
        (None, Some(c)) if mode == Mode::Http => {
            cookie_spec(c, &FieldPath::root().key("defaults").key("cookie"), key, cx)
        }
        _ => None,
    };
    for (i, sv) in servers_src.iter().enumerate() {
        server_cookie(sv, cookie.as_ref(), own, &p.key("servers").index(i), cx);
    }
    let stick = stick_spec(s, p, cx);
    // TCP mode has no request to read: only the client's address can stick it.
    if mode != Mode::Http {
        if cookie.is_some() {
            cx.err(p.key("cookie"), "cookie persistence needs mode http");
        }
        if s.appsession.is_some() {
            cx.err(p.key("appsession"), "appsession needs mode http");
        } else if let Some(st) = &stick {
            for (i, r) in st.rules.iter().enumerate() {
                if r.cond.is_some() {
                    cx.err(
                        p.key("stick").index(i),
                        "conditions on stick rules need mode http (not supported in mode tcp yet)",
                    );
                }
                if !r.fetch.is_address() {
                    cx.err(
                        p.key("stick").index(i),
                        "in mode tcp only `src` can be fetched (the others need mode http)",
                    );
                }
            }
        }
    }
    let servers = server_keys(servers, cookie.as_ref());
    persist::Spec { cookie, stick, servers }
}

/// The servers as persistence knows them, in the backend's order, numbered by their ids. With `cookie ... dynamic` and a
/// key, a server without its own `cookie` value gets HAProxy's dynamic one.
pub(super) fn server_keys(servers: &[Server], cookie: Option<&CookieSpec>) -> Vec<ServerKey> {
    let key = cookie.and_then(|c| c.dynamic_key.as_deref());
    servers
        .iter()
        .map(|sv| ServerKey {
            cookie: sv.cookie.clone().or_else(|| key.map(|k| crate::config::persist_spec::dynamic_cookie(k, sv.addr))),
            name: sv.name.clone(),
            // HAProxy's `server_id` is the server's id (`puid`), as `srv_id` and the stats show.
            num: i32::try_from(sv.id).unwrap_or(i32::MAX),
        })
        .collect()
}

/// A server's `cookie` value against the backend's cookie settings (`own`: set in the backend,
/// not inherited from `defaults`); `sp` is the server's path.
pub(super) fn server_cookie(sv: &model::Server, cookie: Option<&CookieSpec>, own: bool, sp: &FieldPath, cx: &mut Ctx) {
    let cp = sp.key("cookie");
    match (&sv.cookie, cookie) {
        (Some(v), Some(_)) if !is_cookie_value(v) => {
            cx.err_v(cp, "cookie values are printable, without blanks or \" , ; \\ | ~", v)
        }
        (Some(v), None) => {
            cx.err_v(cp, "has no effect without the backend's `cookie` (persistence cookie settings)", v)
        }
        (None, Some(c)) if own && !sv.backup && c.dynamic_key.is_none() => cx.err(
            sp.clone(),
            format!(
                "server `{}` needs a `cookie` value for the backend's `{}` cookie \
                 (only backup servers may go without)",
                sv.name, c.name
            ),
        ),
        _ => {}
    }
}

fn cookie_spec(c: &model::CookieDef, p: &FieldPath, key: Option<&str>, cx: &mut Ctx) -> Option<CookieSpec> {
    let before = cx.problems.len();
    if !is_token(&c.name) {
        cx.err_v(p.key("name"), "a cookie name is a token: no blanks, controls or ()<>@,;:\\\"/[]?={}", &c.name);
    }
    let mode = match c.mode.as_deref() {
        None => CookieMode::Passive,
        Some("insert") => CookieMode::Insert,
        Some("rewrite") => CookieMode::Rewrite,
        Some("prefix") => CookieMode::Prefix,
        Some(other) => {
            cx.err_v(
                p.key("mode"),
                "expected \"insert\", \"rewrite\" or \"prefix\" (or no mode to only read the cookie)",
                other,
            );
            CookieMode::Passive
        }
    };
    if mode == CookieMode::Rewrite && c.indirect {
        cx.err(p.key("indirect"), "`indirect` does not combine with mode rewrite");
    }
    if c.preserve && mode != CookieMode::Insert && !c.indirect {
        cx.err(p.key("preserve"), "`preserve` needs mode insert or `indirect`");
    }
    if let Some(d) = &c.domain
        && (d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)))
    {
        cx.err_v(p.key("domain"), "a domain has letters, digits, '-', '.', '_' only", d);
    }
    for (v, key) in [(c.maxidle, "maxidle"), (c.maxlife, "maxlife")] {
        let Some(v) = v else { continue };
        if mode != CookieMode::Insert {
            cx.err(p.key(key), format!("`{key}` applies to mode insert only"));
        } else if v.0 < Duration::from_secs(1) {
            cx.err_v(p.key(key), "must be at least 1s", format!("{:?}", v.0));
        }
    }
    // HAProxy's rules: a non-empty value without controls or ';' (each is a `; ATTR` of its own).
    for (i, a) in c.attr.iter().enumerate() {
        if a.is_empty() || a.bytes().any(|b| b.is_ascii_control() || b == b';') {
            cx.err_v(p.key("attr").index(i), "an attribute is not empty and has no control characters or ';'", a);
        }
    }
    if let Some(k) = key
        && k.is_empty()
    {
        cx.err(p.key("dynamic"), "`dynamic_cookie_key` is empty");
    }
    if cx.problems.len() > before {
        return None;
    }
    Some(CookieSpec {
        attrs: c.attr.join("; "),
        // Without a key HAProxy derives nothing: servers keep their own values.
        dynamic_key: if c.dynamic { key.map(str::to_string) } else { None },
        name: c.name.clone(),
        mode,
        indirect: c.indirect,
        nocache: c.nocache,
        preserve: c.preserve,
        httponly: c.httponly,
        secure: c.secure,
        domain: c.domain.clone(),
        maxidle: c.maxidle.map(|d| d.0),
        maxlife: c.maxlife.map(|d| d.0),
    })
}

fn stick_spec(s: &Section, p: &FieldPath, cx: &mut Ctx) -> Option<StickSpec> {
    if let Some(a) = &s.appsession {
        if s.stick_table.is_some() || s.stick.is_some() {
            cx.err(p.key("appsession"), "use either `appsession` or `stick_table` with `stick` rules, not both");
            return None;
        }
        return appsession(a, &p.key("appsession"), cx);
    }
    let rules_src = s.stick.as_deref().unwrap_or(&[]);
    let Some(t) = &s.stick_table else {
        // No table and no rules: no stick persistence, so the per-request hooks are skipped.
        if rules_src.is_empty() {
            return None;
        }
        if rules_src.iter().any(|r| r.table.is_none()) {
            cx.err(p.key("stick"), "stick rules need a `stick_table` in this backend (or `table` naming another)");
            return None;
        }
        // Every rule names its table: the backend keeps none of its own.
        let own = TableSpec { key: KeyType::Ip, size: 1, expire: None };
        return stick_rules(s, rules_src, None, p, cx).map(|rules| StickSpec { table: own, rules });
    };
    let tp = p.key("stick_table");
    let before = cx.problems.len();
    // The table's own fields are checked with every table (`validate::stktable`); here only
    // what stick rules need of it.
    let key = match t.type_.as_deref() {
        Some("ip") => KeyType::Ip,
        Some("integer") => KeyType::Integer,
        Some("string") => KeyType::String { len: t.len.unwrap_or(persist::DEFAULT_STRING_LEN) },
        Some(other @ ("ipv6" | "binary")) if !rules_src.is_empty() => {
            cx.err_v(tp.key("type"), "stick rules need a table of type ip, integer or string", other);
            return None;
        }
        _ => return None,
    };
    let size = match t.size {
        Some(s) if s.0 >= 1 && s.0 <= u64::from(u32::MAX) => usize::try_from(s.0).unwrap_or(usize::MAX),
        _ => return None,
    };
    if t.len == Some(0) || t.expire.is_some_and(|e| e.0.is_zero()) {
        return None;
    }
    if rules_src.is_empty() {
        return None;
    }
    let rules = stick_rules(s, rules_src, Some(key), p, cx)?;
    if cx.problems.len() > before {
        return None;
    }
    Some(StickSpec { table: TableSpec { key, size, expire: t.expire.map(|d| d.0) }, rules })
}

/// The ACL names of a section by index, as `http_rules::acls` numbers them (several lines of one
/// name are one ACL).
pub(super) fn acl_names(s: &Section) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for a in s.acl.as_deref().unwrap_or(&[]) {
        if !names.contains(&a.name.as_str()) {
            names.push(&a.name);
        }
    }
    names
}

/// Where a stick expression's fetch can be read, as HAProxy checks it at load time.
#[derive(PartialEq)]
enum Side {
    Request,
    Response,
    Both,
}

fn side(f: &crate::sample::Fetch) -> Side {
    use crate::sample::Reads;
    match f.reads() {
        Reads::HttpResponse | Reads::Server | Reads::ResPayload => Side::Response,
        Reads::HttpRequest | Reads::Payload => Side::Request,
        Reads::Internal | Reads::Tls | Reads::Http => Side::Both,
    }
}

/// A stick rule's sample expression (`stick on req.hdr(x-user),lower`): parsed, checked against
/// the side the rule reads (HAProxy's "none of which is available during request") and, for the
/// backend's own table, against its key type (HAProxy's "type of fetch not usable with type of
/// stick-table").
fn stick_expr(text: &str, kind: RuleKind, own: Option<KeyType>) -> Result<persist::StickExpr, String> {
    let expr = crate::sample::SampleExpr::parse(text.trim()).map_err(|e| e.to_string())?;
    let name = text.trim().split([',', '(']).next().unwrap_or_default();
    let on_response = kind == RuleKind::StoreResponse;
    match side(&expr.fetch) {
        Side::Response if !on_response => {
            return Err(format!(
                "fetch `{name}` reads the response, none of which is available during the request: use it in `store_response`"
            ));
        }
        Side::Request if on_response => {
            return Err(format!("fetch `{name}` reads the request, none of which is available for `store_response`"));
        }
        _ => {}
    }
    // lbha's HTTP stick rules see the parsed request, not its raw buffer.
    if expr.fetch.reads() == crate::sample::Reads::Payload {
        return Err(format!("fetch `{name}` reads the raw request buffer: not supported in stick rules by lbha yet"));
    }
    if expr.fetch.reads() == crate::sample::Reads::ResPayload {
        return Err(format!("fetch `{name}` reads the raw response buffer: not supported in stick rules by lbha yet"));
    }
    // `method` is kept for the response in HAProxy; lbha's response pass does not carry it.
    if on_response && matches!(expr.fetch, crate::sample::Fetch::Method) {
        return Err("fetch `method` in `store_response` is not supported by lbha yet".into());
    }
    use crate::sample::SmpType as T;
    // `src`/`dst` are addresses HAProxy declares as IPv4 for this check.
    let out = expr.out_type().map(|t| if t == T::Addr { T::Ipv4 } else { t });
    let table = own.map(|k| match k {
        KeyType::Ip => T::Ipv4,
        KeyType::Integer => T::Sint,
        KeyType::String { .. } => T::Str,
    });
    if let (Some(out), Some(table)) = (out, table)
        && !out.casts_to(table)
    {
        return Err(format!(
            "a {} sample cannot be used with a table of type {}",
            out.name(),
            match table {
                T::Ipv4 => "ip",
                T::Sint => "integer",
                _ => "string",
            }
        ));
    }
    Ok(persist::StickExpr { text: text.trim().to_string(), expr: std::sync::Arc::new(expr), on_response })
}

/// The rules; `own`: the key type of the backend's own table, if it has one.
fn stick_rules(
    s: &Section,
    rules_src: &[model::StickRuleDef],
    own: Option<KeyType>,
    p: &FieldPath,
    cx: &mut Ctx,
) -> Option<Vec<Rule>> {
    let before = cx.problems.len();
    let names = acl_names(s);
    let mut rules = Vec::new();
    for (i, r) in rules_src.iter().enumerate() {
        let rp = p.key("stick").index(i);
        let set: Vec<(RuleKind, &str, &String)> = [
            (RuleKind::On, "on", &r.on),
            (RuleKind::Match, "match", &r.match_),
            (RuleKind::StoreRequest, "store_request", &r.store_request),
            (RuleKind::StoreResponse, "store_response", &r.store_response),
        ]
        .into_iter()
        .filter_map(|(k, n, v)| v.as_ref().map(|v| (k, n, v)))
        .collect();
        let [(kind, field, text)] = set[..] else {
            cx.err(rp, "each rule has exactly one of `on`, `match`, `store_request`, `store_response`");
            continue;
        };
        let fp = rp.key(field);
        // The classic forms keep their own readers; any other sample expression (converters
        // included) is evaluated over the stream.
        let fetch = match Fetch::parse(text) {
            // HAProxy casts the client's IPv4 address to a number for an integer table, and
            // reads it for `store-response` too: the typed expression does both.
            Ok(Fetch::Src)
                if (r.table.is_none() && own == Some(KeyType::Integer)) || kind == RuleKind::StoreResponse =>
            {
                match stick_expr(text, kind, own) {
                    Ok(e) => Fetch::Expr(e),
                    Err(why) => {
                        cx.err_v(fp, why, text);
                        continue;
                    }
                }
            }
            Ok(f) => f,
            Err(e @ persist::FetchError::MissingName(_)) => {
                cx.err_v(fp, e.to_string(), text);
                continue;
            }
            Err(persist::FetchError::Unknown) => match stick_expr(text, kind, own) {
                Ok(e) => Fetch::Expr(e),
                Err(why) => {
                    cx.err_v(fp, why, text);
                    continue;
                }
            },
        };
        if fetch.on_response() != (kind == RuleKind::StoreResponse) {
            let why = if fetch.on_response() {
                "reads the response: use it in `store_response`"
            } else {
                "reads the request: use it in `on`, `match` or `store_request`"
            };
            cx.err_v(fp, why, text);
            continue;
        }
        if let Some(name) = &r.table
            && !cx.tables.iter().any(|t| t == name)
        {
            cx.err_v(
                rp.key("table"),
                "no stick table of this name (a section's or a peers section's `SECTION/NAME`)",
                name,
            );
            continue;
        }
        let cond = super::http_rules::cond(&names, &r.if_, &r.unless, &rp, cx).map(|cond| StickCond {
            text: r
                .if_
                .as_ref()
                .map_or_else(|| format!("unless {}", r.unless.as_deref().unwrap_or("")), |c| format!("if {c}")),
            cond,
        });
        rules.push(Rule { kind, fetch, table: r.table.clone(), cond });
    }
    (cx.problems.len() == before).then_some(rules)
}

/// Tables that other backends' stick rules name with `table` keep `server_id` and `server_key`
/// too, as HAProxy adds them to any table stick rules use.
pub(super) fn sticky_named_tables(backs: &[super::Named], defs: &mut [crate::stktable::TableDef]) {
    let named: Vec<&str> =
        backs.iter().flat_map(|n| n.sec.stick.iter().flatten()).filter_map(|r| r.table.as_deref()).collect();
    for d in defs.iter_mut().filter(|d| named.contains(&d.name.as_str())) {
        d.store = crate::stktable::def::with_server_key(std::mem::take(&mut d.store));
    }
}

fn table_size(size: Option<super::super::units::ConfSize>, p: &FieldPath, cx: &mut Ctx) -> usize {
    match size {
        None => {
            cx.err(p.clone(), "missing `size` (most entries kept, e.g. \"1m\")");
            1
        }
        Some(s) if s.0 == 0 => {
            cx.err_v(p.clone(), "must be at least 1", 0);
            1
        }
        // HAProxy reads the size into 32 bits and refuses more.
        Some(s) if s.0 > u64::from(u32::MAX) => {
            cx.err_v(p.clone(), "must be at most 4294967295 entries", s.0);
            1
        }
        Some(s) => usize::try_from(s.0).unwrap_or(usize::MAX),
    }
}

fn appsession(a: &model::AppSessionDef, p: &FieldPath, cx: &mut Ctx) -> Option<StickSpec> {
    let before = cx.problems.len();
    if !is_token(&a.cookie) {
        cx.err_v(p.key("cookie"), "a cookie name is a token: no blanks, controls or ()<>@,;:\\\"/[]?={}", &a.cookie);
    }
    let len = a.len.unwrap_or(APPSESSION_LEN);
    if len == 0 {
        cx.err_v(p.key("len"), "must be at least 1", 0);
    }
    let timeout = match a.timeout {
        Some(t) if t.0.is_zero() => {
            cx.err_v(p.key("timeout"), "must be greater than 0", "0");
            None
        }
        Some(t) => Some(t.0),
        None => {
            cx.err(p.clone(), "missing `timeout` (how long an unused session id is remembered, e.g. \"5h\")");
            None
        }
    };
    let size = match a.size {
        None => APPSESSION_SIZE,
        s => table_size(s, &p.key("size"), cx),
    };
    if cx.problems.len() > before {
        return None;
    }
    Some(StickSpec {
        table: TableSpec { key: KeyType::String { len }, size, expire: timeout },
        rules: persist::appsession_rules(&a.cookie, a.request_learn),
    })
}

#[cfg(test)]
mod tests;
