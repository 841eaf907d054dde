//! Validation of `tcp_request`, `tcp_request_inspect_delay`, `tcp_response`,
//! `tcp_response_inspect_delay`, and (in `mode tcp`) `acl` and `use_backend`, into
//! [`FrontRules`] / [`BackRules`]. Map and pattern files the rules name are loaded here.

use super::{Acl, Action, BackRules, Cond, FrontRules, Rule, Switch, Target, parse_action};
use crate::config::error::{FieldPath, Problem};
use crate::config::model::Section;
use crate::config::snapshot::Mode;
use crate::maps::Loader;
use crate::proxy::logrec::Slot;
use crate::sample::{Fetch, LogFormat, Segment};
use serde::Deserialize;

/// One `tcp-request` / `tcp-response` rule: the ruleset key holds the action words as HAProxy
/// writes them (`accept`, `reject`, `set-var(sess.x) req.ssl_sni`, `unset-var(sess.x)`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpRuleDef {
    pub connection: Option<String>,
    pub session: Option<String>,
    pub content: Option<String>,
    #[serde(rename = "if")]
    pub if_: Option<String>,
    pub unless: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connection,
    Session,
    Content,
    /// A frontend's `tcp-request content` in mode http: run on each parsed request.
    HttpContent,
    /// A backend's `tcp-request content` in mode http: run on each parsed request.
    BackHttp,
    Response,
    Switch,
    /// A mode tcp backend's `use-server`, `force-persist`, `ignore-persist`.
    ServerRules,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Connection => "tcp-request connection",
            Stage::Session => "tcp-request session",
            Stage::Content | Stage::HttpContent | Stage::BackHttp => "tcp-request content",
            Stage::Response => "tcp-response content",
            Stage::Switch => "use_backend",
            Stage::ServerRules => "use-server/force-persist/ignore-persist",
        }
    }
}

/// Why a fetch cannot be used at this stage (HAProxy refuses these at load time too).
fn unavailable(f: &Fetch, stage: Stage) -> Option<String> {
    use crate::sample::Reads;
    let reads = f.reads();
    let on_request = matches!(stage, Stage::HttpContent | Stage::BackHttp);
    let http = match reads {
        Reads::HttpRequest | Reads::Http => !on_request || matches!(f, Fetch::HttpAuth(_) | Fetch::HttpAuthGroup(_)),
        Reads::HttpResponse => true,
        _ => false,
    };
    if http {
        return Some(format!("HTTP fetches are not available in {} rules of lbha (they need mode http)", stage.name()));
    }
    if reads == Reads::Server && stage != Stage::Response {
        return Some(format!("no server is chosen yet when {} rules run", stage.name()));
    }
    if reads == Reads::Payload && matches!(stage, Stage::Connection | Stage::Session) {
        return Some(format!(
            "request contents are not available in {} rules: use tcp-request content (with inspect-delay)",
            stage.name()
        ));
    }
    if reads == Reads::Tls && stage == Stage::Connection {
        return Some("TLS facts are not available before the handshake: use tcp-request session or content".into());
    }
    None
}

/// The raw buffer a fetch reads that rules at this stage never see: the response's before
/// the server answers, the request's once the response is inspected. HAProxy warns that an ACL
/// over it never matches and refuses it in an action's sample.
fn other_buffer(f: &Fetch, stage: Stage) -> Option<&'static str> {
    use crate::sample::Reads;
    match (f.reads(), stage) {
        (Reads::ResPayload, Stage::Response) => None,
        (Reads::ResPayload, _) => Some("response buffer"),
        (Reads::Payload, Stage::Response) => Some("request buffer"),
        _ => None,
    }
}

struct Acls<'a> {
    names: Vec<&'a str>,
    /// Per name: the compiled ACL, or the failing line and why.
    compiled: Vec<Result<Acl, (usize, String)>>,
    used: Vec<bool>,
}

impl<'a> Acls<'a> {
    fn compile(s: &'a Section) -> Acls<'a> {
        let mut a = Acls { names: Vec::new(), compiled: Vec::new(), used: Vec::new() };
        for (i, d) in s.acl.as_deref().unwrap_or(&[]).iter().enumerate() {
            let r = Acl::parse(&d.cond).map_err(|e| (i, e));
            match a.names.iter().position(|n| *n == d.name) {
                Some(j) => match (&mut a.compiled[j], r) {
                    (Ok(acc), Ok(x)) => acc.or(x),
                    (slot @ Ok(_), Err(e)) => *slot = Err(e),
                    (Err(_), _) => {}
                },
                None => {
                    a.names.push(&d.name);
                    a.compiled.push(r);
                    a.used.push(false);
                }
            }
        }
        a
    }
}

/// Checks and registers what a condition reads.
struct Walk<'p, 'l> {
    problems: &'p mut Vec<Problem>,
    maps: &'l mut Loader,
    user: String,
    /// Whether `nbsrv(NAME)` names a backend (unknown in a backend section: not checked).
    backend_known: &'l dyn Fn(&str) -> bool,
    /// The section's name (the default table of stick rules and fetches) and the tables.
    owner: &'l str,
    tables: &'l [String],
    /// The frontend's request capture slots, which `capture ... len N` extends (`None` in a
    /// backend: tcp-response has no capture).
    slots: Option<&'l mut Vec<Slot>>,
    /// The section the rules are written in, which fills omitted proxy arguments.
    own: Own<'l>,
}

/// What HAProxy knows of the section a sample is written in when it fills an omitted proxy
/// argument (`nbsrv`, `be_conn`, `connslots`, `srv_is_up(SRV)`, `fe_conn`).
struct Own<'a> {
    name: &'a str,
    frontend: bool,
    backend: bool,
    servers: Vec<&'a str>,
}

impl<'a> Own<'a> {
    fn of(s: &'a Section, frontend: bool, backend: bool) -> Own<'a> {
        let servers = s.servers.as_deref().unwrap_or(&[]).iter().map(|v| v.name.as_str()).collect();
        Own { name: s.name.as_deref().unwrap_or(""), frontend, backend, servers }
    }

    /// Fills an omitted proxy argument with this section, as HAProxy does at load (so
    /// `nbsrv` in a backend always counts that backend's servers), or says why it cannot.
    fn fill(&self, f: &mut Fetch) -> Result<(), String> {
        let no = |cap: &str, kw: &str| {
            format!(
                "`{kw}` without argument reads this section, which has no {cap} capability (name one: `{kw}(NAME)`)"
            )
        };
        let fe_kw = match f {
            Fetch::FeConn(_) => "fe_conn",
            Fetch::FeRate { requests: false, .. } => "fe_sess_rate",
            _ => "fe_req_rate",
        };
        if let Fetch::FeConn(fe @ None) | Fetch::FeRate { frontend: fe @ None, .. } = f {
            if !self.frontend {
                return Err(no("frontend", fe_kw));
            }
            *fe = Some(self.name.to_string());
            return Ok(());
        }
        let kw = fetch_name(f);
        let Some((slot @ None, server)) = f.backend_arg_mut() else { return Ok(()) };
        let cap = match server {
            Some(server) => {
                if !self.servers.contains(&server) {
                    return Err(format!("{kw}: no server `{server}` in this section (write `BACKEND/SERVER`)"));
                }
                true
            }
            None => self.backend,
        };
        if !cap {
            return Err(no("backend", kw));
        }
        *slot = Some(self.name.to_string());
        Ok(())
    }
}

/// The keyword of a fetch that takes a backend argument, for messages.
fn fetch_name(f: &Fetch) -> &'static str {
    match f {
        Fetch::Nbsrv(_) => "nbsrv",
        Fetch::BeConn(_) => "be_conn",
        Fetch::Connslots(_) => "connslots",
        Fetch::Queue(_) => "queue",
        Fetch::AvgQueue(_) => "avg_queue",
        Fetch::SrvIsUp { .. } => "srv_is_up",
        Fetch::SrvConn { queue: false, .. } => "srv_conn",
        Fetch::SrvConn { queue: true, .. } => "srv_queue",
        Fetch::BeSessRate(_) => "be_sess_rate",
        Fetch::SrvSessRate { .. } => "srv_sess_rate",
        _ => "fetch",
    }
}

impl Walk<'_, '_> {
    /// Reports why a rule at this stage cannot read `f`, or warns as HAProxy does when it
    /// reads what an HTTP request never gives. `in_acl`: the fetch is an ACL's (a condition
    /// that never matches is a warning, as in HAProxy), not an action's sample (an error).
    fn check(&mut self, f: &Fetch, stage: Stage, path: &FieldPath, text: &str, in_acl: bool) {
        let named = f.backend_arg().flatten().map(|b| (fetch_name(f), b));
        if let Some((kw, b)) = named
            && !(self.backend_known)(b)
        {
            self.problems.push(Problem::new(path.clone(), format!("{kw}: no such backend `{b}`")).with_value(text));
        }
        if let Some(buffer) = other_buffer(f, stage) {
            let mut p = if in_acl {
                let why = format!(
                    "this ACL never matches: it reads the {buffer}, which {} rules never see (HAProxy warns the same)",
                    stage.name()
                );
                let mut w = Problem::new(path.clone(), why);
                w.warning = true;
                w
            } else {
                let why = format!(
                    "the sample reads the {buffer}, none of which is available in {} rules (HAProxy refuses it too)",
                    stage.name()
                );
                Problem::new(path.clone(), why)
            };
            p = p.with_value(text);
            self.problems.push(p);
            return;
        }
        if let Some(why) = unavailable(f, stage).or_else(|| self.own.fill(&mut f.clone()).err()) {
            self.problems.push(Problem::new(path.clone(), why).with_value(text));
        } else if matches!(stage, Stage::HttpContent | Stage::BackHttp)
            && matches!(
                f,
                Fetch::ReqPayload { .. }
                    | Fetch::ReqSslSni
                    | Fetch::ReqSslHelloType
                    | Fetch::PayloadLv { .. }
                    | Fetch::ReqRdpCookie(_)
                    | Fetch::ReqRdpCookieCnt(_)
            )
        {
            let why = "L6 sample fetches give nothing on an HTTP request (HAProxy warns the same): this never matches";
            let mut warn = Problem::new(path.clone(), why).with_value(text);
            warn.warning = true;
            self.problems.push(warn);
        }
    }

    fn acl(&mut self, a: &Acl, stage: Stage, path: &FieldPath, text: &str) {
        for f in a.fetches() {
            self.check(f, stage, path, text, true);
        }
        for (file, kind, icase, is_map) in a.file_refs() {
            if let Err(e) = self.maps.need(&file, kind, icase, !is_map, &format!("acl in {}", self.user)) {
                self.problems.push(Problem::new(path.clone(), e).with_value(&file));
            }
        }
        let user = format!("map in {}", self.user);
        for r in a.map_refs() {
            self.need_ref(r, &user, path);
        }
    }

    /// Resolves the tables stick fetches and actions name (see `stktable::track`).
    fn resolve(&mut self, errs: Vec<String>, path: &FieldPath, text: &str) {
        for e in errs {
            self.problems.push(Problem::new(path.clone(), e).with_value(text));
        }
    }

    fn known(&self) -> impl Fn(&str) -> bool + '_ {
        |t: &str| self.tables.iter().any(|x| x == t)
    }

    fn resolve_exprs<'e>(
        &mut self,
        exprs: impl IntoIterator<Item = &'e mut crate::sample::SampleExpr>,
        path: &FieldPath,
        text: &str,
    ) {
        let mut exprs: Vec<_> = exprs.into_iter().collect();
        // What cannot be filled stays empty and is reported where a rule uses it (`why`).
        for e in &mut exprs {
            let _ = self.own.fill(&mut e.fetch);
        }
        let errs = crate::stktable::track::resolve_exprs(exprs, self.owner, &self.known());
        self.resolve(errs, path, text);
    }

    /// Resolves the compiled declared ACLs, reporting at their first line.
    fn resolve_acls(&mut self, acls: &mut Acls, defs: &[crate::config::model::AclDef], p: &FieldPath) {
        for (j, a) in acls.compiled.iter_mut().enumerate() {
            let Ok(a) = a else { continue };
            let i = defs.iter().position(|d| d.name == acls.names[j]).unwrap_or(0);
            let text = defs.get(i).map_or("", |d| d.cond.as_str());
            self.resolve_exprs(a.exprs_mut(), &p.key("acl").index(i).key("cond"), text);
        }
    }

    fn expr_maps<'e>(&mut self, refs: impl Iterator<Item = crate::sample::FileRef<'e>>, path: &FieldPath) {
        let user = format!("map in {}", self.user);
        for r in refs {
            self.need_ref(r, &user, path);
        }
    }

    fn need_ref(&mut self, r: crate::sample::FileRef<'_>, user: &str, path: &FieldPath) {
        match self.maps.need_ref(r, user) {
            Ok(None) => {}
            Ok(Some(w)) => {
                let mut p = Problem::new(path.clone(), w).with_value(r.path());
                p.warning = true;
                self.problems.push(p);
            }
            Err(e) => self.problems.push(Problem::new(path.clone(), e).with_value(r.path())),
        }
    }
}

fn cond(
    if_: &Option<String>,
    unless: &Option<String>,
    path: &FieldPath,
    stage: Stage,
    acls: &mut Acls,
    w: &mut Walk,
) -> Result<Option<Cond>, ()> {
    let (text, key) = match (if_, unless) {
        (Some(_), Some(_)) => {
            w.problems.push(Problem::new(path.clone(), "use either `if` or `unless`, not both"));
            return Err(());
        }
        (Some(c), None) => (format!("if {c}"), "if"),
        (None, Some(c)) => (format!("unless {c}"), "unless"),
        (None, None) => return Ok(None),
    };
    let raw = &text[key.len() + 1..];
    let names = acls.names.clone();
    let mut c = Cond::parse(&text, &|n| names.iter().position(|x| *x == n)).map_err(|e| {
        w.problems.push(Problem::new(path.key(key), e.to_string()).with_value(raw));
    })?;
    w.resolve_exprs(c.inline_acls_mut().flat_map(|a| a.exprs_mut()), &path.key(key), raw);
    for a in c.inline_acls() {
        w.acl(a, stage, &path.key(key), raw);
    }
    for i in c.named().collect::<Vec<_>>() {
        acls.used[i] = true;
        if let Ok(a) = &acls.compiled[i] {
            w.acl(a, stage, &path.key(key), raw);
        }
    }
    Ok(Some(c))
}

fn rules(
    list: &[TcpRuleDef],
    stage: Stage,
    key: &str,
    p: &FieldPath,
    acls: &mut Acls,
    w: &mut Walk,
    out: &mut [&mut Vec<Rule>; 3],
) {
    for (i, r) in list.iter().enumerate() {
        let rp = p.key(key).index(i);
        let set: Vec<(usize, &str, &String)> =
            [("connection", &r.connection), ("session", &r.session), ("content", &r.content)]
                .into_iter()
                .enumerate()
                .filter_map(|(j, (n, v))| v.as_ref().map(|v| (j, n, v)))
                .collect();
        let (slot, word, text) = match set.as_slice() {
            [one] => *one,
            [] => {
                w.problems.push(Problem::new(rp, "give the ruleset and action, e.g. `content = \"accept\"`"));
                continue;
            }
            _ => {
                w.problems.push(Problem::new(rp, "one ruleset per rule (`connection`, `session` or `content`)"));
                continue;
            }
        };
        let stage = match (stage, slot) {
            (Stage::Response, 2) => Stage::Response,
            (Stage::Response, _) => {
                w.problems
                    .push(Problem::new(rp.key(word), "tcp-response has only the `content` ruleset").with_value(text));
                continue;
            }
            (_, 0) => Stage::Connection,
            (_, 1) => Stage::Session,
            (Stage::HttpContent, _) => Stage::HttpContent,
            (Stage::BackHttp, _) => Stage::BackHttp,
            _ => Stage::Content,
        };
        let mut action = match parse_action(text) {
            Ok(Action::Stick(mut a)) => {
                let errs = a.resolve(w.owner, &w.known());
                w.resolve(errs, &rp.key(word), text);
                if let crate::stktable::track::StickAction::Track(t) = &a {
                    if stage == Stage::Response {
                        w.problems
                            .push(Problem::new(rp.key(word), "tcp-response has no track-sc action").with_value(text));
                    }
                    w.check(&t.key.fetch, stage, &rp.key(word), text, false);
                }
                Action::Stick(a)
            }
            Ok(a) => a,
            Err(e) => {
                w.problems.push(Problem::new(rp.key(word), e).with_value(text));
                continue;
            }
        };
        if let Action::Capture(c) = &mut action
            && !capture_slot(c, stage, &rp.key(word), text, w)
        {
            continue;
        }
        if matches!(action, Action::Close) && stage != Stage::Response {
            let msg =
                format!("`close` is an action of tcp-response content only, not of {} (as in HAProxy)", stage.name());
            w.problems.push(Problem::new(rp.key(word), msg).with_value(text));
            continue;
        }
        if matches!(action, Action::DoResolve { .. }) && stage != Stage::Content {
            let msg = match stage {
                Stage::HttpContent | Stage::BackHttp => {
                    "`do-resolve` in tcp-request content rules of a mode http section is not supported by lbha yet: \
                     use the http_request do_resolve action"
                        .to_string()
                }
                _ => format!(
                    "`do-resolve` is an action of tcp-request content only, not of {} (as in HAProxy)",
                    stage.name()
                ),
            };
            w.problems.push(Problem::new(rp.key(word), msg).with_value(text));
            continue;
        }
        if let Action::SetAddr(part, _) = &action
            && stage == Stage::Response
        {
            let msg = format!("`{}` is not an action of tcp-response content (as in HAProxy)", part.name());
            w.problems.push(Problem::new(rp.key(word), msg).with_value(text));
            continue;
        }
        let mut exprs: Vec<&mut crate::sample::SampleExpr> = match &mut action {
            Action::SetVar(_, e)
            | Action::SetAddr(_, e)
            | Action::Capture(super::Capture { expr: e, .. })
            | Action::DoResolve { expr: e, .. } => vec![e],
            Action::SetVarFmt(_, f) => f
                .segments
                .iter_mut()
                .filter_map(|s| match s {
                    crate::sample::Segment::Expr { expr, .. } => Some(expr),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for e in exprs.iter_mut() {
            w.resolve_exprs([&mut **e], &rp.key(word), text);
            w.check(&e.fetch, stage, &rp.key(word), text, false);
            w.expr_maps(e.map_refs(), &rp.key(word));
        }
        let Ok(c) = cond(&r.if_, &r.unless, &rp, stage, acls, w) else { continue };
        out[slot].push(Rule { action, cond: c });
    }
}

/// Gives a `capture` its slot: `len N` declares one after the frontend's others, `id N` names a
/// declared one. HAProxy takes `capture` in content rules only.
fn capture_slot(c: &mut super::Capture, stage: Stage, at: &FieldPath, text: &str, w: &mut Walk) -> bool {
    if !matches!(stage, Stage::Content | Stage::HttpContent | Stage::BackHttp) {
        w.problems.push(
            Problem::new(
                at.clone(),
                format!("`capture` is not available in {} rules (use tcp-request content)", stage.name()),
            )
            .with_value(text),
        );
        return false;
    }
    let Some(slots) = w.slots.as_deref_mut() else {
        w.problems.push(
            Problem::new(
                at.clone(),
                "`capture` needs a frontend: a backend has no capture slots (HAProxy refuses it there too)",
            )
            .with_value(text),
        );
        return false;
    };
    match c.len {
        Some(len) => {
            slots.push(Slot { header: None, len });
            c.slot = slots.len() - 1;
        }
        None => match slots.get(c.slot) {
            Some(s) => c.cut = s.len,
            None => {
                w.problems.push(
                    Problem::new(at.clone(), "no such capture slot (declare it in capture_request)").with_value(text),
                );
                return false;
            }
        },
    }
    true
}

/// A frontend's (or listen's) TCP rules; in `mode tcp` also its ACLs and `use_backend`.
/// Returns the rules and the static backends `use_backend` names, with their paths, for the
/// caller's mode check.
#[allow(clippy::too_many_arguments)]
pub fn front(
    s: &Section,
    defaults: &Section,
    section: &str,
    mode: Mode,
    p: &FieldPath,
    backend: &dyn Fn(&str) -> Option<usize>,
    problems: &mut Vec<Problem>,
    maps: &mut Loader,
    tables: &[String],
    slots: &mut Vec<Slot>,
) -> (FrontRules, Vec<(usize, FieldPath)>) {
    let mut acls = Acls::compile(s);
    let known = |b: &str| backend(b).is_some();
    let owner = s.name.as_deref().unwrap_or("");
    let own = Own::of(s, true, section.starts_with("listen "));
    let mut w = Walk {
        problems,
        maps,
        user: section.to_string(),
        backend_known: &known,
        owner,
        tables,
        slots: Some(slots),
        own,
    };
    w.resolve_acls(&mut acls, s.acl.as_deref().unwrap_or(&[]), p);
    let mut fr = FrontRules {
        inspect_delay: s.tcp_request_inspect_delay.or(defaults.tcp_request_inspect_delay).map(|d| d.0),
        ..FrontRules::default()
    };
    let list = s.tcp_request.as_deref().unwrap_or(&[]);
    {
        let FrontRules { connection, session, content, .. } = &mut fr;
        let stage = if mode == Mode::Http { Stage::HttpContent } else { Stage::Content };
        rules(list, stage, "tcp_request", p, &mut acls, &mut w, &mut [connection, session, content]);
    }
    if mode == Mode::Http
        && fr.connection.iter().chain(&fr.session).any(|r| match &r.action {
            Action::SetVar(v, _) | Action::SetVarFmt(v, _) | Action::UnsetVar(v) => {
                !matches!(v.scope, crate::sample::VarScope::Sess | crate::sample::VarScope::Proc)
            }
            _ => false,
        })
    {
        w.problems.push(Problem::new(
            p.key("tcp_request"),
            "`set-var` in tcp_request connection and session rules of a mode http frontend takes the `sess` and `proc` scopes only (HTTP rules read them as `var(sess.NAME)`)",
        ));
    }
    if fr.inspect_delay.is_none()
        && mode == Mode::Tcp
        && fr.content.iter().any(|r| r.cond.is_some())
        && s.tcp_request_inspect_delay.is_none()
    {
        let mut warn = Problem::new(
            p.key("tcp_request"),
            "content rules without `tcp_request_inspect_delay` decide on whatever bytes have arrived (as in HAProxy)",
        );
        warn.warning = true;
        w.problems.push(warn);
    }
    let mut static_targets = Vec::new();
    if mode == Mode::Tcp {
        for (i, u) in s.use_backend.as_deref().unwrap_or(&[]).iter().enumerate() {
            let up = p.key("use_backend").index(i);
            let target = if u.backend.contains("%[") {
                match LogFormat::parse(&u.backend) {
                    Ok(f) if f.segments.iter().any(|s| matches!(s, Segment::LogVar { .. })) => {
                        w.problems.push(
                            Problem::new(up.key("backend"), "log variables (`%x`) are not supported in backend names")
                                .with_value(&u.backend),
                        );
                        continue;
                    }
                    Ok(mut f) => {
                        for seg in &mut f.segments {
                            if let Segment::Expr { expr, .. } = seg {
                                let _ = w.own.fill(&mut expr.fetch);
                                w.check(&expr.fetch, Stage::Switch, &up.key("backend"), &u.backend, false);
                                w.expr_maps(expr.map_refs(), &up.key("backend"));
                            }
                        }
                        Target::Dynamic(f)
                    }
                    Err(e) => {
                        w.problems.push(Problem::new(up.key("backend"), e.to_string()).with_value(&u.backend));
                        continue;
                    }
                }
            } else {
                match backend(&u.backend) {
                    Some(b) => {
                        static_targets.push((b, up.key("backend")));
                        Target::Backend(b)
                    }
                    None => {
                        w.problems.push(Problem::new(up.key("backend"), "no such backend").with_value(&u.backend));
                        continue;
                    }
                }
            };
            let Ok(c) = cond(&u.if_, &u.unless, &up, Stage::Switch, &mut acls, &mut w) else { continue };
            fr.switching.push(Switch { target, cond: c });
        }
        // In mode tcp every ACL is compiled here, used or not, as HAProxy checks them all.
        for (j, a) in acls.compiled.iter().enumerate() {
            if let Ok(a) = a {
                let ap = p.key("acl").index(j);
                w.acl(a, Stage::Switch, &ap.key("cond"), "");
            }
        }
    }
    let defs = s.acl.as_deref().unwrap_or(&[]);
    for (j, r) in acls.compiled.into_iter().enumerate() {
        let acl = match r {
            Ok(a) => a,
            Err((i, e)) => {
                if mode == Mode::Tcp || acls.used[j] {
                    let ap = p.key("acl").index(i).key("cond");
                    w.problems.push(Problem::new(ap, e).with_value(&defs[i].cond));
                }
                Acl::predefined("FALSE").unwrap_or_else(unreachable_acl)
            }
        };
        fr.acls.push(acl);
    }
    (fr, static_targets)
}

/// A mode tcp backend's `persist_rules` and `use_server`, conditions over the bytes held (as
/// `use_backend` in mode tcp). Each needs a condition, as in HAProxy.
fn server_rules(
    s: &Section,
    servers: &[&str],
    p: &FieldPath,
    acls: &mut Acls,
    w: &mut Walk,
) -> crate::persist::rules::ServerRules<Cond> {
    use crate::persist::rules::{PersistAction, PersistRule, ServerTarget, UseServer};
    let mut out = crate::persist::rules::ServerRules::default();
    let mut required = |if_: &Option<String>, unless: &Option<String>, kw: &str, at: &FieldPath, w: &mut Walk| {
        if if_.is_none() && unless.is_none() {
            let why = format!("`{kw}` requires either `if` or `unless` followed by a condition");
            w.problems.push(Problem::new(at.clone(), why));
            return None;
        }
        cond(if_, unless, at, Stage::ServerRules, acls, w).ok().flatten()
    };
    for (i, r) in s.persist_rules.as_deref().unwrap_or(&[]).iter().enumerate() {
        let rp = p.key("persist_rules").index(i);
        let action = match r.action.as_str() {
            "force-persist" => PersistAction::Force,
            "ignore-persist" => PersistAction::Ignore,
            other => {
                let why = "expected `force-persist` or `ignore-persist`";
                w.problems.push(Problem::new(rp.key("action"), why).with_value(other));
                continue;
            }
        };
        if let Some(cond) = required(&r.if_, &r.unless, action.keyword(), &rp, w) {
            out.persist.push(PersistRule { action, cond });
        }
    }
    for (i, u) in s.use_server.as_deref().unwrap_or(&[]).iter().enumerate() {
        let up = p.key("use_server").index(i);
        let at = up.key("server");
        let target = if u.server.contains('%') {
            match LogFormat::parse(&u.server) {
                Ok(f) if f.segments.iter().any(|s| matches!(s, Segment::LogVar { .. })) => {
                    let why = "log variables (`%x`) are not supported in server names";
                    w.problems.push(Problem::new(at, why).with_value(&u.server));
                    None
                }
                Ok(mut f) => {
                    for seg in &mut f.segments {
                        if let Segment::Expr { expr, .. } = seg {
                            let _ = w.own.fill(&mut expr.fetch);
                            w.check(&expr.fetch, Stage::ServerRules, &at, &u.server, false);
                            w.expr_maps(expr.map_refs(), &at);
                        }
                    }
                    Some(ServerTarget::Dynamic(f))
                }
                Err(e) => {
                    w.problems.push(Problem::new(at, e.to_string()).with_value(&u.server));
                    None
                }
            }
        } else {
            match servers.iter().position(|n| *n == u.server) {
                Some(i) => Some(ServerTarget::Server(i)),
                None => {
                    w.problems.push(Problem::new(at, "no such server in this backend").with_value(&u.server));
                    None
                }
            }
        };
        let cond = required(&u.if_, &u.unless, "use-server", &up, w);
        if let (Some(target), Some(cond)) = (target, cond) {
            out.use_server.push(UseServer { target, cond });
        }
    }
    out
}

fn unreachable_acl() -> Acl {
    // `always_false` always parses; this keeps the list aligned if it ever did not.
    Acl::parse("always_false").expect("always_false is a valid ACL")
}

/// A backend's (or listen's) `tcp-response content` rules, and a backend's `tcp-request
/// content` rules and inspect-delay (a listen's are its frontend half's).
#[allow(clippy::too_many_arguments)]
pub fn back(
    s: &Section,
    defaults: &Section,
    section: &str,
    mode: Mode,
    p: &FieldPath,
    problems: &mut Vec<Problem>,
    maps: &mut Loader,
    tables: &[String],
    servers: &[&str],
) -> BackRules {
    // A listen's ACLs serve both halves.
    let mut acls = Acls::compile(s);
    let owner = s.name.as_deref().unwrap_or("");
    let listen = s.bind.is_some();
    let own = Own::of(s, listen, true);
    let mut w =
        Walk { problems, maps, user: section.to_string(), backend_known: &|_| true, owner, tables, slots: None, own };
    // Reported by the frontend half of a listen.
    let before = w.problems.len();
    w.resolve_acls(&mut acls, s.acl.as_deref().unwrap_or(&[]), p);
    if listen {
        w.problems.truncate(before);
    }
    let (mut c1, mut c2, mut response) = (Vec::new(), Vec::new(), Vec::new());
    let list = s.tcp_response.as_deref().unwrap_or(&[]);
    if mode == Mode::Http && !list.is_empty() {
        // Refused rather than accepted and never run (a reject would let everything through).
        w.problems.push(Problem::new(
            p.key("tcp_response"),
            "tcp-response content rules on HTTP responses are not supported by lbha yet (they run in mode tcp); use http_response rules",
        ));
    }
    rules(list, Stage::Response, "tcp_response", p, &mut acls, &mut w, &mut [&mut c1, &mut c2, &mut response]);
    let mut back = BackRules::default();
    if !listen {
        back.inspect_delay = s.tcp_request_inspect_delay.or(defaults.tcp_request_inspect_delay).map(|d| d.0);
        let list = s.tcp_request.as_deref().unwrap_or(&[]);
        for (i, r) in list.iter().enumerate() {
            for (set, given) in [("connection", &r.connection), ("session", &r.session)] {
                if let Some(text) = given {
                    let at = p.key("tcp_request").index(i).key(set);
                    let why = format!(
                        "tcp-request {set} is not allowed because {section} is not a frontend (as in HAProxy: content rules only)"
                    );
                    w.problems.push(Problem::new(at, why).with_value(text));
                }
            }
        }
        let stage = if mode == Mode::Http { Stage::BackHttp } else { Stage::Content };
        let (mut c1, mut c2) = (Vec::new(), Vec::new());
        rules(list, stage, "tcp_request", p, &mut acls, &mut w, &mut [&mut c1, &mut c2, &mut back.content]);
    }
    if mode == Mode::Tcp {
        back.server_rules = server_rules(s, servers, p, &mut acls, &mut w);
    }
    let defs = s.acl.as_deref().unwrap_or(&[]);
    let mut compiled = Vec::new();
    for (j, r) in acls.compiled.into_iter().enumerate() {
        compiled.push(match r {
            Ok(a) => a,
            Err((i, e)) => {
                if acls.used[j] {
                    w.problems.push(Problem::new(p.key("acl").index(i).key("cond"), e).with_value(&defs[i].cond));
                }
                unreachable_acl()
            }
        });
    }
    back.response = response;
    back.response_delay = s.tcp_response_inspect_delay.or(defaults.tcp_response_inspect_delay).map(|d| d.0);
    back.acls = compiled;
    back
}
