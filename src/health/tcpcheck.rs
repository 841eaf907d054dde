//! HAProxy's `tcp-check` sequences (`connect`, `send`, `send-lf`, `send-binary`,
//! `send-binary-lf`, `expect string|binary|rstring|rbinary|string-lf|binary-lf`, `comment`) and
//! the protocol checks HAProxy builds from them (`option redis-check`, `smtpchk`, `pgsql-check`,
//! `mysql-check`, `ldap-check`, `ssl-hello-chk`).
//!
//! [`Run`] is the engine and is pure: it says what to do next (connect, send, read) and is fed
//! the bytes read; `seq_io.rs` does the I/O. As in HAProxy, consecutive `expect` rules look at
//! the same received data (a `send` starts a new exchange), an expect that does not match yet
//! waits for more unless `min-recv` is met or the server closed, and a negated expect passes
//! only once all the data is in. The last rule decides the status (`ok-status`, else L7OK after
//! an expect, L4OK or L6OK after a connect) and its message (`on-success`, else
//! "(tcp-check)"); a failing expect reports `error-status` (else L7RSP) with `on-error` or
//! HAProxy's "TCPCHK did not match content ..." text.

use super::check_ctx::{CheckCtx, Expr, Fmt};
use super::probe::ProbeError;
use super::spec::{CheckTls, HealthError};
use super::status::{CheckStatus, StatusUse};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The most a check keeps of a server's answer (HAProxy's default buffer).
pub const MAX_RECV: usize = 16 * 1024;

/// A parsed sequence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seq {
    pub steps: Vec<Step>,
    /// A protocol check's name ("redis", "mysql"...), for its success message.
    pub proto: Option<&'static str>,
    /// An `http-check` ruleset: `send` builds HTTP requests, `expect` reads HTTP responses,
    /// and messages are HAProxy's HTTP ones.
    pub http: bool,
    /// `http-check disable-on-404`: a 404 passes conditionally (L7OKC: out of load balancing).
    pub disable_on_404: bool,
    /// `http-check send-state`: each `send` carries the server's state.
    pub send_state: bool,
}

/// The options of `tcp-check connect`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectOpts {
    /// `port N`: else the port of `addr`, else the check's port.
    pub port: Option<u16>,
    /// `addr IP[:PORT]`: else the check's address.
    pub addr: Option<(IpAddr, Option<u16>)>,
    /// `default`: the server's check settings (`check-ssl`, `check-sni`, `check-alpn`,
    /// `check-send-proxy`) apply where the rule sets nothing else.
    pub default: bool,
    /// The connection HAProxy adds before a sequence that does not start with `connect`.
    pub implicit: bool,
    pub send_proxy: bool,
    pub ssl: bool,
    pub sni: Option<String>,
    /// `alpn`, as written (comma-separated).
    pub alpn: Option<String>,
    /// `linger`: close cleanly instead of with a reset.
    pub linger: bool,
    /// Filled per server from its TLS settings when this rule opens a TLS connection other
    /// than the check's own (`ssl`, `sni`, `alpn`).
    pub tls: Option<CheckTls>,
    /// Filled per server: the PROXY header `send-proxy` sends (v2 when the server sends v2).
    pub proxy_header: Option<Vec<u8>>,
}

impl ConnectOpts {
    /// Where this rule connects, given the check's own target.
    pub fn target(&self, check: SocketAddr) -> SocketAddr {
        let ip = self.addr.map_or(check.ip(), |(ip, _)| ip);
        let port = self.port.or(self.addr.and_then(|(_, p)| p)).unwrap_or(check.port());
        SocketAddr::new(ip, port)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `connect [options]`: a new connection (the previous one closes).
    Connect {
        opts: ConnectOpts,
        comment: Option<String>,
    },
    Send {
        data: Vec<u8>,
        comment: Option<String>,
    },
    /// `send-lf` (`binary` false) and `send-binary-lf`: a log-format string rendered per check.
    SendLf {
        fmt: Fmt,
        binary: bool,
        comment: Option<String>,
    },
    /// `http-check send`: an HTTP request.
    SendHttp(Box<super::httpseq::HttpSend>),
    Expect(ExpectStep),
    /// `comment TEXT`: names the next rule; kept so steps are numbered as in HAProxy.
    Comment,
    /// `set-var(check.NAME[,COND...]) EXPR` and `set-var-fmt(...) FMT`: a variable of this
    /// check run, for the rules after it.
    SetVar {
        var: crate::sample::VarRef,
        conds: Vec<crate::sample::VarCond>,
        value: VarValue,
    },
    /// `unset-var(check.NAME)`.
    UnsetVar(crate::sample::VarRef),
}

/// What `set-var` stores: a sample expression's value, or a log-format string's text.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    Expr(Expr),
    Fmt(Fmt),
}

impl Step {
    /// Rules that only name the next one or set variables: they do not count where HAProxy
    /// looks for the rule before or the first rule.
    pub fn is_transparent(&self) -> bool {
        matches!(self, Step::Comment | Step::SetVar { .. } | Step::UnsetVar(_))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpectStep {
    pub negate: bool,
    pub rule: Rule,
    /// `min-recv N`: decide once N bytes are in, instead of waiting for a match.
    pub min_recv: Option<usize>,
    pub comment: Option<String>,
    pub ok_status: Option<CheckStatus>,
    pub err_status: Option<CheckStatus>,
    pub tout_status: Option<CheckStatus>,
    pub on_success: Option<Fmt>,
    pub on_error: Option<Fmt>,
    /// `status-code EXPR`: the check's code, shown with its status.
    pub status_code: Option<Expr>,
}

#[derive(Debug, Clone, Default)]
pub enum Rule {
    #[default]
    Empty,
    String(Vec<u8>),
    /// Raw bytes, written in hex in the config.
    Binary(Vec<u8>),
    RString(regex::bytes::Regex),
    /// Matched against the data written as upper-case hex, as HAProxy does.
    RBinary(regex::Regex),
    /// `string-lf`: the rendered text must be in the data.
    StringLf(Fmt),
    /// `binary-lf`: the rendered hex, decoded, must be in the data.
    BinaryLf(Fmt),
    /// MySQL: a packet that is not an error (the server's greeting) at the start of the data.
    MysqlGreeting,
    /// MySQL: the packet after the greeting is an OK (the `user` could log in).
    MysqlOk,
    /// LDAP: a successful bindResponse.
    LdapBind,
    /// An `http-check expect` rule.
    Http(super::httpseq::HttpRule),
}

impl PartialEq for Rule {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Self::String(a), Self::String(b)) | (Self::Binary(a), Self::Binary(b)) => a == b,
            (Self::RString(a), Self::RString(b)) => a.as_str() == b.as_str(),
            (Self::RBinary(a), Self::RBinary(b)) => a.as_str() == b.as_str(),
            (Self::StringLf(a), Self::StringLf(b)) | (Self::BinaryLf(a), Self::BinaryLf(b)) => a == b,
            (Self::Http(a), Self::Http(b)) => a == b,
            (Self::Empty, Self::Empty)
            | (Self::MysqlGreeting, Self::MysqlGreeting)
            | (Self::MysqlOk, Self::MysqlOk)
            | (Self::LdapBind, Self::LdapBind) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    /// HAProxy's wording in "TCPCHK did not match content ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => write!(f, " '{}'", String::from_utf8_lossy(s)),
            Self::Binary(_) => f.write_str(" (binary)"),
            Self::RString(_) => f.write_str(" (regex)"),
            Self::RBinary(_) => f.write_str(" (binary regex)"),
            Self::StringLf(_) => f.write_str(" (log-format string)"),
            Self::BinaryLf(_) => f.write_str(" (log-format binary)"),
            Self::Http(super::httpseq::HttpRule::Status(_)) => f.write_str("(status codes)"),
            Self::Http(super::httpseq::HttpRule::Hdr(_)) => f.write_str(" (header pattern)"),
            Self::Http(super::httpseq::HttpRule::Body(s)) => write!(f, " '{}'", String::from_utf8_lossy(s)),
            Self::Http(super::httpseq::HttpRule::BodyLf(_)) => f.write_str(" (log-format string)"),
            Self::Http(_) => f.write_str(" (regex)"),
            _ => f.write_str(" (custom function)"),
        }
    }
}

/// How a sequence passed: the status and the message of its last rule, and the `status-code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub status: CheckStatus,
    pub info: Option<String>,
    pub code: Option<i64>,
}

/// What the prober does next.
#[derive(Debug, PartialEq)]
pub enum Action<'a> {
    /// Open a new connection (closing any open one); then call [`Run::connected`].
    Connect(&'a ConnectOpts),
    Send(Cow<'a, [u8]>),
    /// Read more and call [`Run::feed`] (or [`Run::closed`] at end of stream).
    Recv,
    Pass(Passed),
    Fail(ProbeError),
}

/// The connection HAProxy opens before a sequence that starts with something else.
static IMPLICIT: std::sync::LazyLock<ConnectOpts> =
    std::sync::LazyLock::new(|| ConnectOpts { default: true, implicit: true, ..Default::default() });

/// One run of a sequence.
#[derive(Debug)]
pub struct Run<'a> {
    seq: &'a Seq,
    cx: CheckCtx<'a>,
    pos: usize,
    buf: Vec<u8>,
    closed: bool,
    started: bool,
    /// Set after a send: the next expect starts from fresh data.
    fresh: bool,
    /// The last rule evaluated (comments aside), which decides the final status.
    last: Option<&'a Step>,
    /// The current connection is TLS (a sequence ending on it passes at Layer6).
    tls: bool,
    /// The last HTTP request was a HEAD (its response has no body).
    head_only: bool,
    /// The status of the HTTP response the last expect read (HAProxy's check code).
    http_code: Option<u16>,
    /// Where `send-state` gets the server's state, and HTTP/1.1's default Host.
    http_env: HttpEnv,
}

/// What an HTTP request of a sequence takes from the checker.
#[derive(Debug, Clone, Default)]
pub struct HttpEnv {
    /// Host header when a request sets none (the server's address by default).
    pub host: Option<String>,
    /// `http-check send-state`: the `X-Haproxy-Server-State` value.
    pub state: Option<String>,
}

enum Verdict {
    Ok,
    Wait,
    Fail(CheckStatus, String),
    /// A failure whose text names the rule's comment already.
    FailCommented(CheckStatus, String),
}

impl<'a> Run<'a> {
    pub fn new(seq: &'a Seq, cx: CheckCtx<'a>) -> Self {
        Run {
            seq,
            cx,
            pos: 0,
            buf: Vec::new(),
            closed: false,
            started: false,
            fresh: false,
            last: None,
            tls: false,
            head_only: false,
            http_code: None,
            http_env: HttpEnv::default(),
        }
    }

    /// Sets what HTTP requests take from the checker.
    pub fn with_http_env(mut self, env: HttpEnv) -> Self {
        self.http_env = env;
        self
    }

    /// The connection asked for is open, to `target`, over TLS or not.
    pub fn connected(&mut self, target: SocketAddr, tls: bool) {
        self.cx.target = target;
        self.tls = tls;
    }

    pub fn feed(&mut self, data: &[u8]) {
        let room = MAX_RECV.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The server closed its side: what is in the buffer is all there will be.
    pub fn closed(&mut self) {
        self.closed = true;
    }

    /// The step number HAProxy reports: the rule's place in the list, comments included.
    fn step_id(&self) -> usize {
        self.pos + 1
    }

    /// Runs a `set-var` or `unset-var` step (anything else: nothing).
    fn run_var(&self, step: &Step) {
        use crate::sample::SampleContext;
        match step {
            Step::SetVar { var, conds, value } => {
                let v = match value {
                    VarValue::Expr(e) => e.value(&self.cx),
                    VarValue::Fmt(f) => Some(crate::sample::Value::Str(f.render(&self.cx))),
                };
                let Some(v) = v else { return };
                let old = self.cx.var(var);
                if conds.iter().all(|c| c.holds(old.as_ref(), &v)) {
                    self.cx.set_var(var, Some(v));
                }
            }
            Step::UnsetVar(var) => {
                self.cx.set_var(var, None);
            }
            _ => {}
        }
    }

    /// The status a timeout now reports, when the rule being evaluated chose one.
    pub fn timeout_status(&self) -> Option<CheckStatus> {
        match self.seq.steps.get(self.pos) {
            Some(Step::Expect(e)) => e.tout_status,
            _ => None,
        }
    }

    pub fn step(&mut self) -> Action<'a> {
        if !self.started {
            self.started = true;
            let first = self.seq.steps.iter().position(|s| !s.is_transparent());
            if let Some(i) = first
                && let Step::Connect { opts, .. } = &self.seq.steps[i]
            {
                // Variables set before the first connect are set before it.
                for s in &self.seq.steps[..i] {
                    self.run_var(s);
                }
                self.pos = i + 1;
                self.last = Some(&self.seq.steps[i]);
                return Action::Connect(opts);
            }
            return Action::Connect(&IMPLICIT);
        }
        loop {
            let Some(step) = self.seq.steps.get(self.pos) else {
                return Action::Pass(self.passed());
            };
            match step {
                Step::Comment => self.pos += 1,
                Step::SetVar { .. } | Step::UnsetVar(_) => {
                    self.pos += 1;
                    self.run_var(step);
                }
                Step::Connect { opts, .. } => {
                    self.pos += 1;
                    self.last = Some(step);
                    self.buf.clear();
                    self.closed = false;
                    self.fresh = false;
                    return Action::Connect(opts);
                }
                Step::Send { data, .. } => {
                    self.pos += 1;
                    self.last = Some(step);
                    self.fresh = true;
                    return Action::Send(Cow::Borrowed(data));
                }
                Step::SendHttp(req) => {
                    self.pos += 1;
                    self.last = Some(step);
                    self.fresh = true;
                    self.head_only = req.method().eq_ignore_ascii_case("HEAD");
                    let env = &self.http_env;
                    return Action::Send(Cow::Owned(req.render(&self.cx, env.host.as_deref(), env.state.as_deref())));
                }
                Step::SendLf { fmt, binary, .. } => {
                    self.last = Some(step);
                    self.fresh = true;
                    let text = fmt.render(&self.cx);
                    let data = if *binary {
                        match std::str::from_utf8(&text).ok().and_then(unhex) {
                            Some(d) => d,
                            None => {
                                let info = format!(
                                    "tcp-check send : failed to build log-format string at step {}",
                                    self.step_id()
                                );
                                return Action::Fail(ProbeError::Status {
                                    status: CheckStatus::L7Rsp,
                                    info,
                                    code: None,
                                });
                            }
                        }
                    } else {
                        text
                    };
                    self.pos += 1;
                    if data.is_empty() {
                        continue;
                    }
                    return Action::Send(Cow::Owned(data));
                }
                Step::Expect(e) => {
                    self.last = Some(step);
                    if std::mem::take(&mut self.fresh) {
                        self.buf.clear();
                    }
                    match self.judge(e) {
                        Verdict::Ok => self.pos += 1,
                        Verdict::Wait => return Action::Recv,
                        Verdict::Fail(status, mut info) => {
                            if let Some(c) = &e.comment {
                                info.push_str(" comment: ");
                                info.push_str(c);
                            }
                            return self.fail(e, status, info);
                        }
                        Verdict::FailCommented(status, info) => return self.fail(e, status, info),
                    }
                }
            }
        }
    }

    /// The verdict once every rule passed, from the last one evaluated.
    fn passed(&self) -> Passed {
        let generic = || Some("(tcp-check)".to_string());
        match self.last {
            Some(Step::Expect(e)) if self.seq.http => {
                let info = e.on_success.as_ref().map(|f| String::from_utf8_lossy(&f.render(&self.cx)).into_owned());
                let code = e.status_code.as_ref().and_then(|x| x.int(&self.cx)).or(self.http_code.map(i64::from));
                let status = if self.seq.disable_on_404 && self.http_code == Some(404) {
                    CheckStatus::L7Okc
                } else {
                    e.ok_status.unwrap_or(CheckStatus::L7Ok)
                };
                Passed { status, info, code }
            }
            Some(Step::Expect(e)) => {
                let info = match (&e.on_success, self.seq.proto) {
                    (Some(f), _) => Some(String::from_utf8_lossy(&f.render(&self.cx)).into_owned()),
                    (None, Some(p)) => Some(format!("{p} server is ok")),
                    (None, None) => generic(),
                };
                let code = e.status_code.as_ref().and_then(|x| x.int(&self.cx));
                Passed { status: e.ok_status.unwrap_or(CheckStatus::L7Ok), info, code }
            }
            Some(Step::Connect { .. }) | None => {
                let implicit = !matches!(self.last, Some(Step::Connect { .. }));
                Passed {
                    status: if self.tls { CheckStatus::L6Ok } else { CheckStatus::L4Ok },
                    info: if implicit { None } else { generic() },
                    code: None,
                }
            }
            Some(_) => Passed { status: CheckStatus::L7Ok, info: generic(), code: None },
        }
    }

    /// An HTTP expect: on the response read since the last `send`.
    fn judge_http(&mut self, e: &ExpectStep, rule: &super::httpseq::HttpRule) -> Verdict {
        use super::httpseq::{Judged, Parsed};
        let err_status = |default| e.err_status.unwrap_or(default);
        let closed = self.closed || self.buf.len() >= MAX_RECV;
        let resp = match super::httpseq::parse(&self.buf, closed, self.head_only) {
            Parsed::NeedMore => return Verdict::Wait,
            Parsed::Invalid => return Verdict::Fail(err_status(CheckStatus::L7Rsp), self.on_error(e, String::new())),
            Parsed::Resp(r) => r,
        };
        self.http_code = Some(resp.status);
        if self.seq.disable_on_404 && resp.status == 404 {
            return Verdict::Ok;
        }
        let body_rule = super::httpseq::is_body_rule(rule);
        let hit = match super::httpseq::judge(rule, &resp, e.min_recv, &self.cx) {
            Judged::Wait => return Verdict::Wait,
            Judged::Hit(h) => h,
            Judged::Error(why) => return Verdict::Fail(err_status(CheckStatus::L7Rsp), self.on_error(e, why.into())),
        };
        if hit != e.negate {
            return Verdict::Ok;
        }
        let desc = match (body_rule, e.negate) {
            (false, _) => resp.reason,
            (true, true) => "HTTP check matched unwanted content".into(),
            (true, false) => "HTTP content check did not match".into(),
        };
        let status = err_status(if body_rule { CheckStatus::L7Rsp } else { CheckStatus::L7Sts });
        Verdict::Fail(status, self.on_error(e, desc))
    }

    fn judge(&mut self, e: &ExpectStep) -> Verdict {
        if let Rule::Http(rule) = &e.rule {
            return self.judge_http(e, rule);
        }
        let last = self.closed || self.buf.len() >= MAX_RECV;
        let err_status = |default| e.err_status.unwrap_or(default);
        if self.closed && self.buf.is_empty() {
            let mut info = format!("TCPCHK got an empty response at step {}", self.step_id());
            if let Some(c) = &e.comment {
                info.push_str(&format!(" comment: '{c}'"));
            }
            return Verdict::FailCommented(err_status(CheckStatus::L7Rsp), info);
        }
        if e.min_recv.is_some_and(|m| self.buf.len() < m) && !last {
            return Verdict::Wait;
        }
        let lf_fail = |why: &str| Verdict::Fail(err_status(CheckStatus::L7Rsp), self.on_error(e, why.to_string()));
        let hit = match &e.rule {
            Rule::String(s) | Rule::Binary(s) => memchr::memmem::find(&self.buf, s).is_some(),
            Rule::RString(re) => re.is_match(&self.buf),
            Rule::RBinary(re) => re.is_match(&hex_upper(&self.buf)),
            Rule::StringLf(f) | Rule::BinaryLf(f) => {
                let text = f.render(&self.cx);
                if text.is_empty() {
                    return lf_fail("log-format string evaluated to an empty string");
                }
                let pat = if matches!(e.rule, Rule::BinaryLf(_)) {
                    match std::str::from_utf8(&text).ok().and_then(unhex) {
                        Some(p) => p,
                        None => return lf_fail("Failed to parse hexastring resulting of eval of a log-format string"),
                    }
                } else {
                    text
                };
                if self.buf.len() < pat.len() && !last {
                    return Verdict::Wait;
                }
                memchr::memmem::find(&self.buf, &pat).is_some()
            }
            Rule::MysqlGreeting | Rule::MysqlOk | Rule::LdapBind => {
                return match custom(&e.rule, &self.buf, last) {
                    Custom::Wait => Verdict::Wait,
                    Custom::Ok => Verdict::Ok,
                    // A protocol's own reason comes first, as in HAProxy.
                    Custom::Fail(status, why) => Verdict::Fail(status, why),
                };
            }
            Rule::Empty | Rule::Http(_) => false,
        };
        // No match yet: more data may bring one (a negated rule thus passes only once all the
        // data is in), unless `min-recv` says the data so far decides.
        if !hit && !last && e.min_recv.is_none() {
            return Verdict::Wait;
        }
        if hit != e.negate {
            return Verdict::Ok;
        }
        let what = if hit { "TCPCHK matched unwanted content" } else { "TCPCHK did not match content" };
        let generic = format!("{what}{} at step {}", e.rule, self.step_id());
        Verdict::Fail(err_status(CheckStatus::L7Rsp), self.on_error(e, generic))
    }

    fn fail(&self, e: &ExpectStep, status: CheckStatus, info: String) -> Action<'a> {
        let http = self.http_code.filter(|_| self.seq.http).map(i64::from);
        let code = e.status_code.as_ref().and_then(|x| x.int(&self.cx)).or(http);
        Action::Fail(ProbeError::Status { status, info, code })
    }

    /// `on-error` rendered, else `default`.
    fn on_error(&self, e: &ExpectStep, default: String) -> String {
        match &e.on_error {
            Some(f) => String::from_utf8_lossy(&f.render(&self.cx)).into_owned(),
            None => default,
        }
    }
}

enum Custom {
    Wait,
    Ok,
    /// L7STS when the server answered with an error, L7RSP when it spoke something else.
    Fail(CheckStatus, String),
}

/// One MySQL packet at `at`: (payload, end offset), or `None` while incomplete.
fn mysql_packet(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let h = buf.get(at..at + 4)?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let end = at + 4 + len;
    buf.get(at + 4..end).map(|p| (p, end))
}

/// An error packet's message: 0xff, code (2), then `#` and a 5-byte state (4.1+), then text.
fn mysql_error(p: &[u8]) -> String {
    let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let text = match p.get(3) {
        Some(b'#') => p.get(9..).unwrap_or_default(),
        _ => p.get(3..).unwrap_or_default(),
    };
    format!("MySQL error {code}: {}", String::from_utf8_lossy(text))
}

fn custom(rule: &Rule, buf: &[u8], last: bool) -> Custom {
    let incomplete = |what: &str| {
        if last { Custom::Fail(CheckStatus::L7Rsp, format!("{what}: incomplete response")) } else { Custom::Wait }
    };
    match rule {
        Rule::MysqlGreeting => match mysql_packet(buf, 0) {
            None => incomplete("MySQL"),
            Some((p, _)) if p.first() == Some(&0xff) => Custom::Fail(CheckStatus::L7Sts, mysql_error(p)),
            Some((p, _)) if p.first() == Some(&0x0a) || p.first() == Some(&0x09) => Custom::Ok,
            Some(_) => Custom::Fail(CheckStatus::L7Rsp, "MySQL: not a server greeting".into()),
        },
        Rule::MysqlOk => {
            let Some((_, end)) = mysql_packet(buf, 0) else { return incomplete("MySQL") };
            match mysql_packet(buf, end) {
                None => incomplete("MySQL"),
                Some((p, _)) if p.first() == Some(&0x00) => Custom::Ok,
                Some((p, _)) if p.first() == Some(&0xff) => Custom::Fail(CheckStatus::L7Sts, mysql_error(p)),
                Some(_) => Custom::Fail(CheckStatus::L7Rsp, "MySQL: unexpected answer to the login".into()),
            }
        }
        Rule::LdapBind => match ldap_bind_result(buf) {
            None => incomplete("LDAP"),
            Some(Ok(0)) => Custom::Ok,
            Some(Ok(code)) => Custom::Fail(CheckStatus::L7Sts, format!("LDAPv3 bind failed, result code {code}")),
            Some(Err(why)) => Custom::Fail(CheckStatus::L7Rsp, why.into()),
        },
        _ => Custom::Fail(CheckStatus::L7Rsp, "not a custom rule".into()),
    }
}

/// A BER length at `buf[i..]`: (length, bytes it took).
fn ber_len(buf: &[u8], i: usize) -> Option<(usize, usize)> {
    let b = *buf.get(i)?;
    if b < 0x80 {
        return Some((usize::from(b), 1));
    }
    let n = usize::from(b & 0x7f);
    if n == 0 || n > 4 {
        return Some((usize::MAX, 1));
    }
    let mut len = 0usize;
    for k in 0..n {
        len = len << 8 | usize::from(*buf.get(i + 1 + k)?);
    }
    Some((len, 1 + n))
}

/// The resultCode of an LDAPMessage { messageID 1, bindResponse { resultCode ... } }; `None`
/// while incomplete.
fn ldap_bind_result(buf: &[u8]) -> Option<Result<u8, &'static str>> {
    if *buf.first()? != 0x30 {
        return Some(Err("Not LDAPv3 protocol"));
    }
    let (len, n) = ber_len(buf, 1)?;
    if len == usize::MAX {
        return Some(Err("Not LDAPv3 protocol"));
    }
    if buf.len() < 1 + n + len {
        return None;
    }
    let mut i = 1 + n;
    // messageID: INTEGER
    if buf[i] != 0x02 {
        return Some(Err("Not LDAPv3 protocol"));
    }
    let (idlen, k) = ber_len(buf, i + 1)?;
    i += 1 + k + idlen;
    if buf.get(i) != Some(&0x61) {
        return Some(Err("Not LDAPv3 protocol"));
    }
    let (_, k) = ber_len(buf, i + 1)?;
    i += 1 + k;
    // resultCode: ENUMERATED
    match (buf.get(i), buf.get(i + 1), buf.get(i + 2)) {
        (Some(0x0a), Some(0x01), Some(&code)) => Some(Ok(code)),
        _ => Some(Err("Not LDAPv3 protocol")),
    }
}

fn hex_upper(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Parses one `tcp-check` line (what follows `tcp-check`), HAProxy-escaped (`\r`, `\n`, `\ `,
/// `\xHH`). A `comment` line names the next rule's comment.
pub fn parse_line(line: &str, pending_comment: &mut Option<String>) -> Result<Option<Step>, HealthError> {
    let bad = |why: String| HealthError::BadTcpCheck { line: line.to_string(), why };
    let words = split(line).map_err(|w| bad(w.into()))?;
    let mut it = words.into_iter();
    let kw = it.next().ok_or_else(|| bad("empty rule".into()))?;
    let rest: Vec<Vec<u8>> = it.collect();
    parse_words(&kw, rest, pending_comment, false).map(Some).map_err(bad)
}

/// One rule from its words: `kw` and the words after it. `http`: a rule of an `http-check`
/// ruleset (`connect` speaks HTTP/1, `expect` takes HTTP's rules, no `send-binary`).
pub(super) fn parse_words(
    kw: &[u8],
    rest: Vec<Vec<u8>>,
    pending_comment: &mut Option<String>,
    http: bool,
) -> Result<Step, String> {
    let bad = |why: String| why;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // Options after the main argument: `comment C`, and per rule kind a few more.
    let mut comment = pending_comment.take();
    match kw {
        b"comment" => {
            let c = rest.first().ok_or_else(|| bad("`comment` needs a text".into()))?;
            *pending_comment = Some(text(c));
            Ok(Step::Comment)
        }
        b"connect" => {
            let mut opts = ConnectOpts::default();
            let mut i = 0;
            while i < rest.len() {
                let w = text(&rest[i]);
                let arg = rest.get(i + 1).map(|v| text(v));
                let need = |what: &str| arg.clone().ok_or_else(|| bad(format!("`{w}` needs {what}")));
                match w.as_str() {
                    "port" => {
                        let a = need("a port")?;
                        opts.port = Some(match a.parse::<u32>() {
                            Ok(p @ 1..=65535) => p as u16,
                            Ok(_) => return Err(bad(format!("`port` must be between 1 and 65535, got {a}"))),
                            Err(_) if crate::sample::SampleExpr::parse(&a).is_ok() => {
                                return Err(bad(format!(
                                    "`port {a}`: a port from a sample expression is not supported by lbha; use a number"
                                )));
                            }
                            Err(_) => return Err(bad(format!("`port` needs a number between 1 and 65535, got {a}"))),
                        });
                        i += 2;
                    }
                    "addr" => {
                        let a = need("an IP address")?;
                        opts.addr = Some(match (a.parse::<IpAddr>(), a.parse::<SocketAddr>()) {
                            (Ok(ip), _) => (ip, None),
                            (_, Ok(sa)) if sa.port() > 0 => (sa.ip(), Some(sa.port())),
                            _ => {
                                return Err(bad(format!(
                                    "`addr` needs an IP address with an optional port (names are not resolved here), got {a}"
                                )));
                            }
                        });
                        i += 2;
                    }
                    "comment" => {
                        comment = Some(need("a text")?);
                        i += 2;
                    }
                    "sni" => {
                        let n = need("a server name")?;
                        if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                            return Err(bad(format!("`sni` needs a valid server name, got {n}")));
                        }
                        opts.sni = Some(n);
                        i += 2;
                    }
                    "alpn" => {
                        let a = need("a protocol list")?;
                        if a.split(',').any(|p| p.is_empty() || p.len() > 255) {
                            return Err(bad(format!("`alpn` needs comma-separated protocol names, got {a}")));
                        }
                        opts.alpn = Some(a);
                        i += 2;
                    }
                    "proto" => {
                        let a = need("a MUX protocol")?;
                        match a.as_str() {
                            "h1" if http => {}
                            "h2" if http => {
                                return Err(bad(
                                    "`proto h2`: lbha's HTTP checks speak HTTP/1 only; use `proto h1` or leave it out"
                                        .into(),
                                ));
                            }
                            "none" | "fcgi" if http => {
                                return Err(bad(format!("invalid MUX protocol '{a}' for http-check (only `h1`)")));
                            }
                            // The one TCP multiplexer of HAProxy 2.6: data as is, as lbha sends it.
                            "none" => {}
                            "h1" | "h2" | "fcgi" => {
                                return Err(bad(format!("invalid MUX protocol '{a}' for tcp-check (only `none`)")));
                            }
                            _ => return Err(bad(format!("unknown MUX protocol '{a}'"))),
                        }
                        i += 2;
                    }
                    "default" => {
                        opts.default = true;
                        i += 1;
                    }
                    "linger" => {
                        opts.linger = true;
                        i += 1;
                    }
                    "send-proxy" => {
                        opts.send_proxy = true;
                        i += 1;
                    }
                    "ssl" => {
                        opts.ssl = true;
                        i += 1;
                    }
                    "via-socks4" => {
                        return Err(bad(
                            "`connect via-socks4` is not supported: lbha has no SOCKS4 proxy for servers".into()
                        ));
                    }
                    other => {
                        return Err(bad(format!(
                            "unknown connect option `{other}` (expected comment, port, addr, send-proxy, ssl, sni, alpn, proto, via-socks4, linger or default)"
                        )));
                    }
                }
            }
            Ok(Step::Connect { opts, comment })
        }
        b"send" | b"send-binary" | b"send-lf" | b"send-binary-lf" if http => {
            Err(format!("`{}` is a tcp-check rule; http-check takes `send [meth M] [uri U] ...`", text(kw)))
        }
        b"send" | b"send-binary" => {
            let data = rest.first().ok_or_else(|| bad(format!("`{}` needs data", text(kw))))?;
            let data = if kw == b"send" {
                data.clone()
            } else {
                unhex(&text(data)).ok_or_else(|| bad("`send-binary` needs an even number of hex digits".into()))?
            };
            opts_comment(&rest[1..], &mut comment).map_err(|w| bad(w.into()))?;
            Ok(Step::Send { data, comment })
        }
        b"send-lf" | b"send-binary-lf" => {
            let f = rest.first().ok_or_else(|| bad(format!("`{}` needs a log-format string", text(kw))))?;
            let fmt = Fmt::parse(&text(f)).map_err(bad)?;
            opts_comment(&rest[1..], &mut comment).map_err(|w| bad(w.into()))?;
            Ok(Step::SendLf { fmt, binary: kw == b"send-binary-lf", comment })
        }
        b"set-var" | b"unset-var" | b"set-var-fmt" => Err(bad(format!("`{}` needs a variable name", text(kw)))),
        k if k.starts_with(b"set-var(") || k.starts_with(b"set-var-fmt(") || k.starts_with(b"unset-var(") => {
            parse_var(&text(k), &rest).map_err(bad)
        }
        b"expect" => parse_expect(&rest, comment, http).map(Step::Expect),
        other => Err(bad(format!("unknown tcp-check rule `{}`", text(other)))),
    }
}

/// `set-var(VAR[,COND...]) EXPR`, `set-var-fmt(VAR[,COND...]) FMT`, `unset-var(VAR)`: HAProxy
/// 2.6's check variables. `check.` and `sess.` (the check's session: one run) are kept for the
/// run; `proc.` would outlive it and is refused.
fn parse_var(kw: &str, rest: &[Vec<u8>]) -> Result<Step, String> {
    let (verb, inner) = kw.split_once('(').ok_or_else(|| format!("`{kw}`: missing '('"))?;
    let inner = inner.strip_suffix(')').ok_or_else(|| format!("`{kw}`: missing ')'"))?;
    let mut parts = inner.split(',');
    let name = parts.next().unwrap_or_default();
    let var = crate::sample::VarRef::parse(name).ok_or_else(|| format!("`{kw}`: invalid variable name '{name}'"))?;
    match var.scope {
        crate::sample::VarScope::Check | crate::sample::VarScope::Sess => {}
        crate::sample::VarScope::Proc => {
            return Err(format!(
                "`{kw}`: process-wide variables (`proc.`) from checks are not supported by lbha; use `check.`"
            ));
        }
        _ => return Err(format!("`{kw}`: the scopes allowed for checks are 'proc', 'sess' and 'check'")),
    }
    let conds = parts
        .map(|c| crate::sample::VarCond::parse(c).ok_or_else(|| format!("`{kw}`: unknown condition '{c}'")))
        .collect::<Result<Vec<_>, _>>()?;
    let args: Vec<String> = rest.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    match verb {
        "unset-var" => {
            if !conds.is_empty() {
                return Err(format!("`{kw}`: unset-var takes no condition"));
            }
            match args.as_slice() {
                [] => Ok(Step::UnsetVar(var)),
                [x, ..] => Err(format!("`{kw}`: unexpected argument '{x}'")),
            }
        }
        _ => {
            let src = match args.as_slice() {
                [] => return Err(format!("`{kw}` needs a value")),
                [one] => one.clone(),
                [_, x, ..] => return Err(format!("`{kw}`: unexpected argument '{x}'")),
            };
            let value = if verb == "set-var-fmt" {
                VarValue::Fmt(Fmt::parse(&src)?)
            } else {
                VarValue::Expr(Expr::parse(&src)?)
            };
            Ok(Step::SetVar { var, conds, value })
        }
    }
}

/// `expect [options] [!] MATCH PATTERN [options]`: HAProxy takes the options before and after.
fn parse_expect(rest: &[Vec<u8>], comment: Option<String>, http: bool) -> Result<ExpectStep, String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut e = ExpectStep { comment, ..Default::default() };
    let mut have_rule = false;
    let mut i = 0;
    while i < rest.len() {
        let mut kind = text(&rest[i]);
        let arg = |n: usize| rest.get(i + n).map(|v| text(v));
        let need = |what: &str| arg(1).ok_or_else(|| format!("`{kind}` needs {what}"));
        let status =
            |usage| need("a status").and_then(|v| CheckStatus::parse(&v, usage).map_err(|w| format!("`{kind}`: {w}")));
        match kind.as_str() {
            "min-recv" => {
                let v = need("a number")?;
                e.min_recv = match v.parse::<i64>() {
                    Ok(-1) => None,
                    Ok(n) if n >= 0 => Some(n as usize),
                    _ => return Err(format!("`min-recv` needs a number (or -1), got {v}")),
                };
            }
            "comment" => e.comment = Some(need("a text")?),
            "ok-status" => e.ok_status = Some(status(StatusUse::Ok)?),
            "error-status" => e.err_status = Some(status(StatusUse::Error)?),
            "tout-status" => e.tout_status = Some(status(StatusUse::Timeout)?),
            "on-success" => e.on_success = Some(Fmt::parse(&need("a log-format string")?)?),
            "on-error" => e.on_error = Some(Fmt::parse(&need("a log-format string")?)?),
            "status-code" => {
                let v = need("a sample expression")?;
                e.status_code = Some(Expr::parse(&v).map_err(|w| format!("`status-code`: {w}"))?);
            }
            _ if have_rule => return Err(format!("unexpected word `{kind}` after the pattern")),
            _ => {
                if kind == "!" {
                    e.negate = true;
                    i += 1;
                    kind = rest.get(i).map(|v| text(v)).ok_or("`expect !` needs a rule")?;
                } else if let Some(k) = kind.strip_prefix('!') {
                    e.negate = true;
                    kind = k.to_string();
                }
                if http {
                    let words: Vec<String> = rest[i + 1..].iter().map(|w| text(w)).collect();
                    let (rule, used) = super::httpseq::parse_rule(&kind, &words)?;
                    e.rule = rule;
                    have_rule = true;
                    i += 1 + used;
                    continue;
                }
                let p = rest.get(i + 1);
                let pat = || p.ok_or_else(|| format!("`expect {kind}` needs a pattern"));
                let regex_err = |e: regex::Error| format!("bad regex: {e}");
                e.rule = match kind.as_str() {
                    "string" => Rule::String(pat()?.clone()),
                    "binary" => {
                        Rule::Binary(unhex(&text(pat()?)).ok_or("`binary` needs an even number of hex digits")?)
                    }
                    "rstring" => Rule::RString(regex::bytes::Regex::new(&text(pat()?)).map_err(regex_err)?),
                    "rbinary" => Rule::RBinary(regex::Regex::new(&text(pat()?)).map_err(regex_err)?),
                    "string-lf" => Rule::StringLf(Fmt::parse(&text(pat()?))?),
                    "binary-lf" => Rule::BinaryLf(Fmt::parse(&text(pat()?))?),
                    "custom" => return Err("`expect custom` is HAProxy-internal and not supported".into()),
                    other => return Err(format!("unknown expect keyword `{other}`")),
                };
                have_rule = true;
            }
        }
        i += 2;
    }
    if !have_rule && http {
        return Err("`expect` needs status, rstatus, string, rstring, string-lf, hdr or fhdr".into());
    }
    if !have_rule {
        return Err("`expect` needs string, binary, rstring, rbinary, string-lf or binary-lf".into());
    }
    Ok(e)
}

fn opts_comment(rest: &[Vec<u8>], comment: &mut Option<String>) -> Result<(), &'static str> {
    match rest {
        [] => Ok(()),
        [k, v] if k == b"comment" => {
            *comment = Some(String::from_utf8_lossy(v).into_owned());
            Ok(())
        }
        _ => Err("unexpected words after the data (escape spaces as '\\ ')"),
    }
}

/// Splits on unescaped blanks and decodes HAProxy's escapes (`\ `, `\r`, `\n`, `\t`, `\\`,
/// `\"`, `\'`, `\xHH`); quotes group words.
pub(super) fn split(s: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut started = false;
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                i += 1;
                continue;
            }
            (None, b'"' | b'\'') => {
                quote = Some(c);
                started = true;
                i += 1;
                continue;
            }
            (Some(b'\''), c) => cur.push(c),
            (_, b'\\') => {
                let n = *b.get(i + 1).ok_or("trailing backslash")?;
                i += 1;
                match n {
                    b'r' => cur.push(b'\r'),
                    b'n' => cur.push(b'\n'),
                    b't' => cur.push(b'\t'),
                    b'x' => {
                        let h = s.get(i + 1..i + 3).ok_or("truncated \\x escape")?;
                        cur.push(u8::from_str_radix(h, 16).map_err(|_| "invalid \\x escape")?);
                        i += 2;
                    }
                    other => cur.push(other),
                }
                started = true;
            }
            (None, b' ' | b'\t') => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (_, c) => {
                cur.push(c);
                started = true;
            }
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if started {
        out.push(cur);
    }
    Ok(out)
}

/// HAProxy's built-in rulesets.
pub mod proto {
    use super::*;

    fn expect(negate: bool, rule: Rule, min_recv: Option<usize>, on_error: Option<&str>) -> Step {
        Step::Expect(ExpectStep { negate, rule, min_recv, on_error: on_error.map(Fmt::text), ..Default::default() })
    }

    /// HAProxy's `connect default` that starts its protocol rulesets.
    fn connect() -> Step {
        Step::Connect { opts: ConnectOpts { default: true, ..Default::default() }, comment: None }
    }

    fn re(p: &str) -> regex::bytes::Regex {
        regex::bytes::Regex::new(p).expect("built-in pattern")
    }

    /// `option redis-check`: PING, expect +PONG.
    pub fn redis() -> Seq {
        Seq {
            steps: vec![
                Step::Send { data: b"*1\r\n$4\r\nPING\r\n".to_vec(), comment: None },
                expect(false, Rule::String(b"+PONG\r\n".to_vec()), None, None),
            ],
            proto: Some("Redis"),
            ..Default::default()
        }
    }

    /// `option smtpchk [EHLO|HELO domain]`: banner 2xx, then HELO/EHLO answered 2xx.
    pub fn smtp(cmd: &str) -> Seq {
        Seq {
            steps: vec![
                connect(),
                expect(false, Rule::RString(re(r"^[0-9]{3}[ \r]")), Some(4), None),
                expect(false, Rule::RString(re(r"^2[0-9]{2}[ \r]")), Some(4), None),
                Step::Send { data: format!("{cmd}\r\n").into_bytes(), comment: None },
                expect(false, Rule::RString(re(r"^2[0-9]{2}[- \r]")), Some(4), None),
            ],
            proto: Some("SMTP"),
            ..Default::default()
        }
    }

    /// `option pgsql-check user U`: a startup message; not an error, then AuthenticationOk or a
    /// password request (the user exists).
    pub fn pgsql(user: &str) -> Seq {
        let len = (15 + user.len()) as u32;
        let mut pkt = len.to_be_bytes().to_vec();
        pkt.extend_from_slice(&[0, 3, 0, 0]);
        pkt.extend_from_slice(b"user\0");
        pkt.extend_from_slice(user.as_bytes());
        pkt.extend_from_slice(&[0, 0]);
        Seq {
            steps: vec![
                connect(),
                Step::Send { data: pkt, comment: None },
                expect(true, Rule::RString(re("^E")), Some(5), None),
                expect(
                    false,
                    Rule::RBinary(regex::Regex::new("^52000000(08|0A|0C)000000(00|02|03|04|05|06)").expect("built-in")),
                    Some(9),
                    Some("PostgreSQL unknown error"),
                ),
            ],
            proto: Some("PostgreSQL"),
            ..Default::default()
        }
    }

    /// `option mysql-check [user U [post-41|pre-41]]`: without a user, the greeting must not be
    /// an error; with one, a login packet (no password) and a QUIT are sent and the login must
    /// be accepted.
    pub fn mysql(user: Option<&str>, pre41: bool) -> Seq {
        let mut steps = vec![connect()];
        if let Some(u) = user {
            let mut body: Vec<u8> = if pre41 {
                vec![0x00, 0x80, 0x00, 0x00, 0x01]
            } else {
                let mut v = vec![0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21];
                v.extend_from_slice(&[0u8; 23]);
                v
            };
            body.extend_from_slice(u.as_bytes());
            body.extend_from_slice(&[0x00, 0x00]);
            let len = body.len() as u32;
            let mut pkt = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 1];
            pkt.extend_from_slice(&body);
            pkt.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]);
            steps.push(Step::Send { data: pkt, comment: None });
        }
        steps.push(expect(false, Rule::MysqlGreeting, None, None));
        if user.is_some() {
            steps.push(expect(false, Rule::MysqlOk, None, None));
        }
        Seq { steps, proto: Some("MySQL"), ..Default::default() }
    }

    /// `option ldap-check`: an anonymous bind must succeed.
    pub fn ldap() -> Seq {
        Seq {
            steps: vec![
                Step::Send { data: unhex("300C020101600702010304008000").expect("built-in"), comment: None },
                expect(
                    false,
                    Rule::RBinary(regex::Regex::new("^30").expect("built-in")),
                    Some(14),
                    Some("Not LDAPv3 protocol"),
                ),
                expect(false, Rule::LdapBind, None, None),
            ],
            proto: Some("LDAP"),
            ..Default::default()
        }
    }

    /// `option ssl-hello-chk`: an SSLv3 ClientHello; the server must answer with a handshake or
    /// an alert record (it speaks SSL/TLS).
    pub fn ssl_hello(now_unix: u32) -> Seq {
        // HAProxy's template: record header, handshake header, version, then time.
        let mut hello = vec![0x16, 0x03, 0x00, 0x00, 0x79, 0x01, 0x00, 0x00, 0x75, 0x03, 0x00];
        hello.extend_from_slice(&now_unix.to_be_bytes());
        hello.extend_from_slice(b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n");
        hello.push(0x00);
        hello.extend_from_slice(&[0x00, 0x4e]);
        for c in (0x01u16..=0x1b).chain(0x2f..=0x3a) {
            hello.extend_from_slice(&c.to_be_bytes());
        }
        hello.extend_from_slice(&[0x01, 0x00]);
        Seq {
            steps: vec![
                Step::Send { data: hello, comment: None },
                Step::Expect(ExpectStep {
                    rule: Rule::RBinary(regex::Regex::new("^1[56]").expect("built-in")),
                    min_recv: Some(5),
                    ok_status: Some(CheckStatus::L6Ok),
                    ..Default::default()
                }),
            ],
            proto: Some("SSL"),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(lines: &[&str]) -> Seq {
        let mut c = None;
        Seq {
            steps: lines.iter().filter_map(|l| parse_line(l, &mut c).unwrap()).collect(),
            proto: None,
            ..Default::default()
        }
    }

    fn cx() -> CheckCtx<'static> {
        let vars: &'static super::super::check_ctx::CheckVars = Box::leak(Box::default());
        CheckCtx { backend: "be", server: "s1", target: "127.0.0.1:6379".parse().unwrap(), vars }
    }

    /// Drives a run against a scripted server: `answers[i]` is what arrives after the i-th send
    /// (or after connecting, for index 0), then the server closes if `close`. A pass gives its
    /// message.
    fn drive(s: &Seq, answers: &[&[u8]], close: bool) -> (Result<String, String>, Vec<Vec<u8>>) {
        let (r, sent) = drive_full(s, answers, close);
        (r.map(|p| p.info.unwrap_or_default()), sent)
    }

    fn drive_full(s: &Seq, answers: &[&[u8]], close: bool) -> (Result<Passed, String>, Vec<Vec<u8>>) {
        let mut run = Run::new(s, cx());
        let mut sent = Vec::new();
        let mut pending: std::collections::VecDeque<&[u8]> = answers.iter().copied().collect();
        let mut given_for_turn = false;
        for _ in 0..100 {
            match run.step() {
                Action::Connect(o) => {
                    given_for_turn = false;
                    run.connected(o.target(cx().target), o.ssl);
                }
                Action::Send(d) => {
                    sent.push(d.to_vec());
                    given_for_turn = false;
                }
                Action::Recv => {
                    if !given_for_turn && let Some(a) = pending.pop_front() {
                        run.feed(a);
                        given_for_turn = true;
                    } else if close {
                        run.closed();
                    } else {
                        return (Err("would wait (timeout)".into()), sent);
                    }
                }
                Action::Pass(m) => return (Ok(m), sent),
                Action::Fail(e) => return (Err(e.to_string()), sent),
            }
        }
        panic!("no verdict");
    }

    /// HAProxy 2.6's check variables: set before or between rules, read by the rules after them;
    /// conditions as the `set-var` converter's.
    #[test]
    fn check_variables_feed_the_rules_after_them() {
        let s = seq(&[
            "set-var(check.user) str(probe)",
            "connect",
            "set-var-fmt(sess.line) HELLO\\ %[var(check.user)]",
            "set-var(check.user,ifnotexists) str(other)",
            "unset-var(check.gone)",
            r"send-lf %[var(sess.line)]\ %[var(check.user)]\r\n",
            "expect string ok",
            "unset-var(check.user)",
            r"send-lf [%[var(check.user)]]\r\n",
            "expect string ok",
        ]);
        let (r, sent) = drive(&s, &[b"ok\r\n", b"ok\r\n"], false);
        assert_eq!(r, Ok("(tcp-check)".into()));
        assert_eq!(sent, [b"HELLO probe probe\r\n".to_vec(), b"[]\r\n".to_vec()]);
    }

    #[test]
    fn a_send_expect_sequence_passes_and_reports_the_failing_step() {
        let s =
            seq(&[r"send PING\r\n", "expect string +PONG", r"send info\ replication\r\n", "expect string role:master"]);
        let (r, sent) = drive(&s, &[b"+PONG\r\n", b"# Replication\r\nrole:master\r\n"], false);
        assert_eq!(r, Ok("(tcp-check)".into()));
        assert_eq!(sent, [b"PING\r\n".to_vec(), b"info replication\r\n".to_vec()]);
        let (r, _) = drive(&s, &[b"+PONG\r\n", b"role:slave\r\n"], true);
        assert_eq!(
            r,
            Err("Layer7 invalid response, info: TCPCHK did not match content 'role:master' at step 4".into())
        );
    }

    #[test]
    fn a_match_split_over_reads_waits_for_the_rest() {
        let s = seq(&["expect string HELLO"]);
        let mut run = Run::new(&s, cx());
        assert!(matches!(run.step(), Action::Connect(o) if o.implicit && o.default));
        assert_eq!(run.step(), Action::Recv);
        run.feed(b"HEL");
        assert_eq!(run.step(), Action::Recv);
        run.feed(b"LO");
        assert!(matches!(run.step(), Action::Pass(_)));
    }

    #[test]
    fn binary_regex_negation_min_recv_and_comments() {
        let s = seq(&["send-binary 0102ff", "comment 'version byte'", "expect binary 0a0b"]);
        let (r, sent) = drive(&s, &[b"\x00\x0a\x0b"], false);
        assert_eq!((r, sent), (Ok("(tcp-check)".into()), vec![vec![1, 2, 0xff]]));
        let (r, _) = drive(&s, &[b"\x0a"], true);
        assert_eq!(
            r.unwrap_err(),
            "Layer7 invalid response, info: TCPCHK did not match content (binary) at step 3 comment: version byte"
        );
        let s = seq(&["expect rbinary ^1[56]"]);
        assert!(drive(&s, &[b"\x15\x03\x01"], false).0.is_ok());
        let s = seq(&["expect rstring ^2[0-9]{2}"]);
        assert!(drive(&s, &[b"250 ok"], false).0.is_ok());
        // `! string`: passes only once the server is done, and fails on a match.
        let s = seq(&["expect ! string ERR"]);
        assert_eq!(drive(&s, &[b"fine"], false).0, Err("would wait (timeout)".into()));
        assert!(drive(&s, &[b"fine"], true).0.is_ok());
        assert!(drive(&s, &[b"ERR x"], true).0.unwrap_err().contains("matched unwanted content"));
        // min-recv: decides on the first 3 bytes without waiting for a match.
        let s = seq(&["expect min-recv 3 string xyz"]);
        assert!(drive(&s, &[b"abc"], false).0.unwrap_err().contains("did not match"));
    }

    #[test]
    fn connect_rules_open_new_connections_on_their_port() {
        let s = seq(&[
            "comment first",
            "connect port 6380 comment first",
            "send a",
            "connect addr 127.0.0.2:7000 ssl sni db.example alpn x,y send-proxy linger proto none",
            "expect string b",
        ]);
        let mut run = Run::new(&s, cx());
        let Action::Connect(o) = run.step() else { panic!() };
        assert_eq!((o.port, o.target(cx().target)), (Some(6380), "127.0.0.1:6380".parse().unwrap()));
        assert_eq!(run.step(), Action::Send(Cow::Borrowed(b"a")));
        let Action::Connect(o) = run.step() else { panic!() };
        assert_eq!(o.target(cx().target), "127.0.0.2:7000".parse().unwrap());
        assert!(o.ssl && o.send_proxy && o.linger && !o.default);
        assert_eq!((o.sni.as_deref(), o.alpn.as_deref()), (Some("db.example"), Some("x,y")));
        assert_eq!(run.step(), Action::Recv);
        let s = seq(&["connect addr ::1 port 25 default"]);
        let Step::Connect { opts, .. } = &s.steps[0] else { panic!() };
        assert_eq!(opts.target(cx().target), "[::1]:25".parse().unwrap());
        assert!(opts.default);
    }

    #[test]
    fn the_last_rule_chooses_the_status_and_the_message() {
        // A sequence ending on a connect passes at Layer4 (Layer6 over TLS), with HAProxy's text;
        // the implicit connect of an empty one says nothing.
        let r = drive_full(&seq(&["connect"]), &[], false).0.unwrap();
        assert_eq!((r.status, r.info.as_deref()), (CheckStatus::L4Ok, Some("(tcp-check)")));
        let r = drive_full(&seq(&["connect ssl"]), &[], false).0.unwrap();
        assert_eq!(r.status, CheckStatus::L6Ok);
        let r = drive_full(&seq(&[]), &[], false).0.unwrap();
        assert_eq!((r.status, r.info), (CheckStatus::L4Ok, None));
        let s = seq(&["send a", "expect string b ok-status L7OKC on-success 'up %b/%s' status-code int(201)"]);
        let r = drive_full(&s, &[b"b"], false).0.unwrap();
        assert_eq!(r, Passed { status: CheckStatus::L7Okc, info: Some("up be/s1".into()), code: Some(201) });
        let r = drive_full(&seq(&["send a", "expect string b"]), &[b"b"], false).0.unwrap();
        assert_eq!((r.status, r.info.as_deref()), (CheckStatus::L7Ok, Some("(tcp-check)")));
    }

    #[test]
    fn a_failing_expect_reports_its_error_status_and_on_error_text() {
        let s = seq(&["send a", "expect string OK error-status L6RSP on-error 'bad %s' status-code int(7) comment c"]);
        let err = drive(&s, &[b"NO"], true).0.unwrap_err();
        assert_eq!(err, "Layer6 invalid response, code 7, info: bad s1 comment: c");
        let s = seq(&["send a", "expect string OK error-status L4CON"]);
        let err = drive(&s, &[b"NO"], true).0.unwrap_err();
        assert_eq!(err, "Layer4 connection problem, info: TCPCHK did not match content 'OK' at step 2");
        // Nothing at all before the close: HAProxy's own text, the comment quoted.
        let s = seq(&["send a", "comment x", "expect ! string ERR"]);
        let err = drive(&s, &[], true).0.unwrap_err();
        assert_eq!(err, "Layer7 invalid response, info: TCPCHK got an empty response at step 3 comment: 'x'");
        // The timeout status of the expect being evaluated.
        let s = seq(&["send a", "expect string OK tout-status L6TOUT"]);
        let mut run = Run::new(&s, cx());
        run.step();
        run.step();
        assert_eq!(run.step(), Action::Recv);
        assert_eq!(run.timeout_status(), Some(CheckStatus::L6Tout));
    }

    #[test]
    fn log_format_sends_and_expects_render_per_check() {
        let s = seq(&[
            r"send-lf HELLO\ %[str(x),upper]\ %b/%s\ %si:%sp\r\n",
            "send-binary-lf 41%[str(B),hex]",
            "expect string-lf %s",
            "expect binary-lf 7331",
        ]);
        let (r, sent) = drive(&s, &[b"-s1-"], false);
        assert_eq!(r, Ok("(tcp-check)".into()));
        assert_eq!(sent, [b"HELLO X be/s1 127.0.0.1:6379\r\n".to_vec(), b"AB".to_vec()]);
        // An empty rendering sends nothing; a hex rendering that is not hex fails the check.
        let s = seq(&["send-lf %[env(LBHA_TEST_SURELY_UNSET)]", "send-binary-lf zz", "expect string a"]);
        let err = drive(&s, &[], true).0.unwrap_err();
        assert_eq!(err, "Layer7 invalid response, info: tcp-check send : failed to build log-format string at step 2");
        let s = seq(&["send a", "expect string-lf %[env(LBHA_TEST_SURELY_UNSET)]"]);
        let err = drive(&s, &[b"x"], true).0.unwrap_err();
        assert!(err.ends_with("log-format string evaluated to an empty string"), "{err}");
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let mut c = None;
        for (line, why) in [
            ("expect", "needs string, binary"),
            ("expect string", "needs a pattern"),
            ("expect rstring (", "bad regex"),
            ("send-binary 0g", "hex"),
            ("connect port 0", "port"),
            ("connect port int(80)", "sample expression is not supported"),
            ("connect via-socks4", "SOCKS4"),
            ("connect proto h2", "invalid MUX protocol 'h2'"),
            ("connect addr db.example", "IP address"),
            ("connect sni", "needs a server name"),
            ("connect alpn h2,,x", "alpn"),
            ("send-lf %[nosuchfetch]", "log-format"),
            ("expect string a error-status L7OK", "L4CON, L6RSP, L7RSP, L7STS"),
            ("expect string a ok-status L7RSP", "L4OK, L6OK, L7OK, L7OKC"),
            ("expect string a tout-status L4OK", "L4TOUT"),
            ("expect string a on-error %[nosuch]", "log-format"),
            ("expect string a status-code nosuch", "status-code"),
            ("expect min-recv -2 string a", "min-recv"),
            ("expect string a junk", "after the pattern"),
            ("set-var(proc.x) int(1)", "`proc.`"),
            ("set-var(txn.x) int(1)", "scopes allowed"),
            ("set-var(check.x)", "needs a value"),
            ("set-var(check.x,ifbogus) int(1)", "unknown condition"),
            ("set-var(check.x) nosuchfetch", "set-var"),
            ("unset-var(check.x) y", "unexpected argument"),
            ("frobnicate", "unknown"),
            (r"send a\", "backslash"),
        ] {
            let e = parse_line(line, &mut c).unwrap_err().to_string();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn redis_smtp_and_ssl_hello_rulesets() {
        let r = proto::redis();
        assert_eq!(drive(&r, &[b"+PONG\r\n"], false).0, Ok("Redis server is ok".into()));
        assert!(drive(&r, &[b"-NOAUTH Authentication required.\r\n"], true).0.is_err());
        let s = proto::smtp("HELO localhost");
        let (res, sent) = drive(&s, &[b"220 mx ESMTP\r\n", b"250 mx\r\n"], false);
        assert_eq!((res, sent), (Ok("SMTP server is ok".into()), vec![b"HELO localhost\r\n".to_vec()]));
        assert!(drive(&s, &[b"554 go away\r\n"], true).0.is_err());
        let h = proto::ssl_hello(0);
        let Step::Send { data, .. } = &h.steps[0] else { panic!() };
        // Record length 0x79 after the 5-byte header.
        assert_eq!(data.len(), 5 + 0x79);
        assert!(drive(&h, &[b"\x16\x03\x03\x00\x40"], false).0.is_ok());
        assert!(drive(&h, &[b"HTTP/1.1 400"], true).0.is_err());
    }

    #[test]
    fn pgsql_and_mysql_rulesets_read_the_real_packets() {
        let p = proto::pgsql("haproxy");
        let Step::Send { data, .. } = &p.steps[1] else { panic!() };
        assert_eq!(&data[..8], &[0, 0, 0, 22, 0, 3, 0, 0]);
        assert_eq!(data.len(), 22);
        // AuthenticationOk, then an error for an unknown user.
        assert!(drive(&p, &[b"R\x00\x00\x00\x08\x00\x00\x00\x00S"], false).0.is_ok());
        let err = b"E\x00\x00\x00\x50SFATAL\x00C28000\x00Mrole \"x\" does not exist\x00\x00";
        assert!(drive(&p, &[err], true).0.is_err());

        let greeting: &[u8] = b"\x0a\x00\x00\x00\x0a10.11.6-MariaDB\x00rest";
        let mut pkt = vec![greeting.len() as u8, 0, 0, 0];
        pkt.extend_from_slice(greeting);
        let m = proto::mysql(None, false);
        assert_eq!(drive(&m, &[&pkt], false).0, Ok("MySQL server is ok".into()));
        let m = proto::mysql(Some("haproxy"), false);
        let Step::Send { data, .. } = &m.steps[1] else { panic!() };
        assert_eq!(usize::from(data[0]), "haproxy".len() + 7 + 27);
        let mut ok = pkt.clone();
        ok.extend_from_slice(b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00");
        assert!(drive(&m, &[&ok], false).0.is_ok());
        let mut denied = pkt.clone();
        let e = b"\xff\x15\x04#28000Access denied for user 'haproxy'";
        denied.extend_from_slice(&[e.len() as u8, 0, 0, 2]);
        denied.extend_from_slice(e);
        let r = drive(&m, &[&denied], true).0.unwrap_err();
        assert!(r.contains("MySQL error 1045: Access denied"), "{r}");
    }

    #[test]
    fn ldap_bind_response_is_decoded() {
        let l = proto::ldap();
        let ok = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(drive(&l, &[ok], false).0, Ok("LDAP server is ok".into()));
        let fail = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x31\x04\x00\x04\x00";
        assert!(drive(&l, &[fail], true).0.unwrap_err().contains("result code 49"));
        assert!(drive(&l, &[b"HTTP/1.1 400 Bad"], true).0.unwrap_err().contains("Not LDAPv3"));
    }
}
