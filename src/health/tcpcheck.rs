//! HAProxy's `tcp-check` sequences (`connect`, `send`, `send-binary`, `expect string|binary|
//! rstring|rbinary`, `comment`) and the protocol checks HAProxy builds from them (`option
//! redis-check`, `smtpchk`, `pgsql-check`, `mysql-check`, `ldap-check`, `ssl-hello-chk`).
//!
//! [`Run`] is the engine and is pure: it says what to do next (connect, send, read) and is fed
//! the bytes read; the prober in `probe.rs` does the I/O. As in HAProxy, consecutive `expect`
//! rules look at the same received data (a `send` starts a new exchange), an expect that does
//! not match yet waits for more unless `min-recv` is met or the server closed, and a negated
//! expect passes only once all the data is in.

use super::probe::ProbeError;
use super::spec::HealthError;
use std::fmt;

/// The most a check keeps of a server's answer (HAProxy's default buffer).
pub const MAX_RECV: usize = 16 * 1024;

/// A parsed sequence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seq {
    pub steps: Vec<Step>,
    /// A protocol check's name ("redis", "mysql"...), for its success message.
    pub proto: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `connect [port N] [linger] [comment C]`: a new connection (the previous one closes).
    Connect {
        port: Option<u16>,
        comment: Option<String>,
    },
    Send {
        data: Vec<u8>,
        comment: Option<String>,
    },
    Expect(ExpectStep),
    /// `comment TEXT`: names the next rule; kept so steps are numbered as in HAProxy.
    Comment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpectStep {
    pub negate: bool,
    pub rule: Rule,
    /// `min-recv N`: decide once N bytes are in, instead of waiting for a match.
    pub min_recv: Option<usize>,
    pub comment: Option<String>,
    /// `on-error` text (a fixed text; log-format is not supported).
    pub on_error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Rule {
    String(Vec<u8>),
    /// Raw bytes, written in hex in the config.
    Binary(Vec<u8>),
    RString(regex::bytes::Regex),
    /// Matched against the data written as upper-case hex, as HAProxy does.
    RBinary(regex::Regex),
    /// MySQL: a packet that is not an error (the server's greeting) at the start of the data.
    MysqlGreeting,
    /// MySQL: the packet after the greeting is an OK (the `user` could log in).
    MysqlOk,
    /// LDAP: a successful bindResponse.
    LdapBind,
}

impl PartialEq for Rule {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Self::String(a), Self::String(b)) | (Self::Binary(a), Self::Binary(b)) => a == b,
            (Self::RString(a), Self::RString(b)) => a.as_str() == b.as_str(),
            (Self::RBinary(a), Self::RBinary(b)) => a.as_str() == b.as_str(),
            (Self::MysqlGreeting, Self::MysqlGreeting)
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
            _ => f.write_str(" (custom function)"),
        }
    }
}

/// What the prober does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Open a new connection (closing any open one), to the check port or `port`.
    Connect(Option<u16>),
    Send(&'a [u8]),
    /// Read more and call [`Run::feed`] (or [`Run::closed`] at end of stream).
    Recv,
    Pass(String),
    Fail(ProbeError),
}

/// One run of a sequence.
#[derive(Debug)]
pub struct Run<'a> {
    seq: &'a Seq,
    pos: usize,
    buf: Vec<u8>,
    closed: bool,
    connected: bool,
    /// Set after a send: the next expect starts from fresh data.
    fresh: bool,
}

enum Verdict {
    Ok,
    Wait,
    Fail(String),
}

impl<'a> Run<'a> {
    pub fn new(seq: &'a Seq) -> Self {
        Run { seq, pos: 0, buf: Vec::new(), closed: false, connected: false, fresh: false }
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

    pub fn step(&mut self) -> Action<'a> {
        if !self.connected {
            self.connected = true;
            if let Some(Step::Connect { port, .. }) = self.seq.steps.first() {
                self.pos = 1;
                return Action::Connect(*port);
            }
            return Action::Connect(None);
        }
        loop {
            let Some(step) = self.seq.steps.get(self.pos) else {
                let msg = match self.seq.proto {
                    Some(p) => format!("{p} server is ok"),
                    None => "(tcp-check)".to_string(),
                };
                return Action::Pass(msg);
            };
            match step {
                Step::Comment => self.pos += 1,
                Step::Connect { port, .. } => {
                    self.pos += 1;
                    self.buf.clear();
                    self.closed = false;
                    return Action::Connect(*port);
                }
                Step::Send { data, .. } => {
                    self.pos += 1;
                    self.fresh = true;
                    return Action::Send(data);
                }
                Step::Expect(e) => {
                    if std::mem::take(&mut self.fresh) {
                        self.buf.clear();
                    }
                    match self.judge(e) {
                        Verdict::Ok => self.pos += 1,
                        Verdict::Wait => return Action::Recv,
                        Verdict::Fail(why) => {
                            let mut detail = why;
                            if let Some(c) = &e.comment {
                                detail.push_str(" comment: ");
                                detail.push_str(c);
                            }
                            return Action::Fail(ProbeError::L7InvalidResponse { detail });
                        }
                    }
                }
            }
        }
    }

    fn judge(&self, e: &ExpectStep) -> Verdict {
        let last = self.closed || self.buf.len() >= MAX_RECV;
        if e.min_recv.is_some_and(|m| self.buf.len() < m) && !last {
            return Verdict::Wait;
        }
        let hit = match &e.rule {
            Rule::String(s) | Rule::Binary(s) => memchr::memmem::find(&self.buf, s).is_some(),
            Rule::RString(re) => re.is_match(&self.buf),
            Rule::RBinary(re) => re.is_match(&hex_upper(&self.buf)),
            Rule::MysqlGreeting | Rule::MysqlOk | Rule::LdapBind => {
                return match custom(&e.rule, &self.buf, last) {
                    Custom::Wait => Verdict::Wait,
                    Custom::Ok => Verdict::Ok,
                    Custom::Fail(why) => Verdict::Fail(e.on_error.clone().unwrap_or(why)),
                };
            }
        };
        // No match yet: more data may bring one (a negated rule thus passes only once all the
        // data is in), unless `min-recv` says the data so far decides.
        if !hit && !last && e.min_recv.is_none() {
            return Verdict::Wait;
        }
        if hit != e.negate {
            return Verdict::Ok;
        }
        if let Some(m) = &e.on_error {
            return Verdict::Fail(m.clone());
        }
        let what = if hit { "TCPCHK matched unwanted content" } else { "TCPCHK did not match content" };
        Verdict::Fail(format!("{what}{} at step {}", e.rule, self.step_id()))
    }
}

enum Custom {
    Wait,
    Ok,
    Fail(String),
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
    let incomplete =
        |what: &str| if last { Custom::Fail(format!("{what}: incomplete response")) } else { Custom::Wait };
    match rule {
        Rule::MysqlGreeting => match mysql_packet(buf, 0) {
            None => incomplete("MySQL"),
            Some((p, _)) if p.first() == Some(&0xff) => Custom::Fail(mysql_error(p)),
            Some((p, _)) if p.first() == Some(&0x0a) || p.first() == Some(&0x09) => Custom::Ok,
            Some(_) => Custom::Fail("MySQL: not a server greeting".into()),
        },
        Rule::MysqlOk => {
            let Some((_, end)) = mysql_packet(buf, 0) else { return incomplete("MySQL") };
            match mysql_packet(buf, end) {
                None => incomplete("MySQL"),
                Some((p, _)) if p.first() == Some(&0x00) => Custom::Ok,
                Some((p, _)) if p.first() == Some(&0xff) => Custom::Fail(mysql_error(p)),
                Some(_) => Custom::Fail("MySQL: unexpected answer to the login".into()),
            }
        }
        Rule::LdapBind => match ldap_bind_result(buf) {
            None => incomplete("LDAP"),
            Some(Ok(0)) => Custom::Ok,
            Some(Ok(code)) => Custom::Fail(format!("LDAPv3 bind failed, result code {code}")),
            Some(Err(why)) => Custom::Fail(why.into()),
        },
        _ => Custom::Fail("not a custom rule".into()),
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
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // Options after the main argument: `comment C`, and per rule kind a few more.
    let mut comment = pending_comment.take();
    match kw.as_slice() {
        b"comment" => {
            let c = rest.first().ok_or_else(|| bad("`comment` needs a text".into()))?;
            *pending_comment = Some(text(c));
            Ok(Some(Step::Comment))
        }
        b"connect" => {
            let mut port = None;
            let mut i = 0;
            while i < rest.len() {
                let w = text(&rest[i]);
                let arg = rest.get(i + 1).map(|v| text(v));
                match w.as_str() {
                    "port" => {
                        let p = arg.as_deref().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
                        port = Some(p.ok_or_else(|| bad("`port` needs a number between 1 and 65535".into()))?);
                        i += 2;
                    }
                    "comment" => {
                        comment = Some(arg.ok_or_else(|| bad("`comment` needs a text".into()))?);
                        i += 2;
                    }
                    "default" | "linger" => i += 1,
                    "send-proxy" | "via-socks4" | "ssl" | "sni" | "alpn" | "proto" | "addr" => {
                        return Err(bad(format!("`connect {w}` is not supported by lbha yet")));
                    }
                    other => return Err(bad(format!("unknown connect option `{other}`"))),
                }
            }
            Ok(Some(Step::Connect { port, comment }))
        }
        b"send" | b"send-binary" => {
            let data = rest.first().ok_or_else(|| bad(format!("`{}` needs data", text(&kw))))?;
            let data = if kw == b"send" {
                data.clone()
            } else {
                unhex(&text(data)).ok_or_else(|| bad("`send-binary` needs an even number of hex digits".into()))?
            };
            opts_comment(&rest[1..], &mut comment).map_err(|w| bad(w.into()))?;
            Ok(Some(Step::Send { data, comment }))
        }
        b"send-lf" | b"send-binary-lf" | b"set-var" | b"unset-var" => {
            Err(bad(format!("`{}` is not supported by lbha yet", text(&kw))))
        }
        b"expect" => {
            let mut i = 0;
            let mut word = rest.first().map(|w| text(w)).ok_or_else(|| bad("`expect` needs a rule".into()))?;
            let mut negate = false;
            if word == "!" {
                negate = true;
                i += 1;
                word = rest.get(i).map(|w| text(w)).ok_or_else(|| bad("`expect !` needs a rule".into()))?;
            } else if let Some(w) = word.strip_prefix('!') {
                negate = true;
                word = w.to_string();
            }
            let mut min_recv = None;
            let mut on_error = None;
            // Options may come before the pattern (HAProxy allows `expect min-recv 5 string X`).
            i += 1;
            let mut rule = None;
            let mut kind = word;
            loop {
                match kind.as_str() {
                    "min-recv" => {
                        let n = rest.get(i).map(|v| text(v)).and_then(|v| v.parse::<usize>().ok());
                        min_recv = Some(n.ok_or_else(|| bad("`min-recv` needs a number".into()))?);
                        i += 1;
                    }
                    "comment" => {
                        comment =
                            Some(rest.get(i).map(|v| text(v)).ok_or_else(|| bad("`comment` needs a text".into()))?);
                        i += 1;
                    }
                    "on-error" => {
                        on_error =
                            Some(rest.get(i).map(|v| text(v)).ok_or_else(|| bad("`on-error` needs a text".into()))?);
                        i += 1;
                    }
                    "string" | "binary" | "rstring" | "rbinary" if rule.is_none() => {
                        let p = rest.get(i).ok_or_else(|| bad(format!("`expect {kind}` needs a pattern")))?;
                        i += 1;
                        rule = Some(match kind.as_str() {
                            "string" => Rule::String(p.clone()),
                            "binary" => Rule::Binary(
                                unhex(&text(p))
                                    .ok_or_else(|| bad("`binary` needs an even number of hex digits".into()))?,
                            ),
                            "rstring" => Rule::RString(
                                regex::bytes::Regex::new(&text(p)).map_err(|e| bad(format!("bad regex: {e}")))?,
                            ),
                            _ => {
                                Rule::RBinary(regex::Regex::new(&text(p)).map_err(|e| bad(format!("bad regex: {e}")))?)
                            }
                        });
                    }
                    "ok-status" | "error-status" | "tout-status" | "on-success" | "status-code" => {
                        return Err(bad(format!("`expect ... {kind}` is not supported by lbha yet")));
                    }
                    "string-lf" | "binary-lf" | "custom" => {
                        return Err(bad(format!("`expect {kind}` is not supported by lbha yet")));
                    }
                    other => return Err(bad(format!("unknown expect keyword `{other}`"))),
                }
                match rest.get(i) {
                    Some(w) => {
                        kind = text(w);
                        i += 1;
                    }
                    None => break,
                }
            }
            let rule = rule.ok_or_else(|| bad("`expect` needs string, binary, rstring or rbinary".into()))?;
            Ok(Some(Step::Expect(ExpectStep { negate, rule, min_recv, comment, on_error })))
        }
        other => Err(bad(format!("unknown tcp-check rule `{}`", text(other)))),
    }
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
fn split(s: &str) -> Result<Vec<Vec<u8>>, &'static str> {
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
        Step::Expect(ExpectStep { negate, rule, min_recv, comment: None, on_error: on_error.map(str::to_string) })
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
        }
    }

    /// `option smtpchk [EHLO|HELO domain]`: banner 2xx, then HELO/EHLO answered 2xx.
    pub fn smtp(cmd: &str) -> Seq {
        Seq {
            steps: vec![
                Step::Connect { port: None, comment: None },
                expect(false, Rule::RString(re(r"^[0-9]{3}[ \r]")), Some(4), None),
                expect(false, Rule::RString(re(r"^2[0-9]{2}[ \r]")), Some(4), None),
                Step::Send { data: format!("{cmd}\r\n").into_bytes(), comment: None },
                expect(false, Rule::RString(re(r"^2[0-9]{2}[- \r]")), Some(4), None),
            ],
            proto: Some("SMTP"),
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
                Step::Connect { port: None, comment: None },
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
        }
    }

    /// `option mysql-check [user U [post-41|pre-41]]`: without a user, the greeting must not be
    /// an error; with one, a login packet (no password) and a QUIT are sent and the login must
    /// be accepted.
    pub fn mysql(user: Option<&str>, pre41: bool) -> Seq {
        let mut steps = vec![Step::Connect { port: None, comment: None }];
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
        Seq { steps, proto: Some("MySQL") }
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
                expect(false, Rule::RBinary(regex::Regex::new("^1[56]").expect("built-in")), Some(5), None),
            ],
            proto: Some("SSL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(lines: &[&str]) -> Seq {
        let mut c = None;
        Seq { steps: lines.iter().filter_map(|l| parse_line(l, &mut c).unwrap()).collect(), proto: None }
    }

    /// Drives a run against a scripted server: `answers[i]` is what arrives after the i-th send
    /// (or after connecting, for index 0), then the server closes if `close`.
    fn drive(s: &Seq, answers: &[&[u8]], close: bool) -> (Result<String, String>, Vec<Vec<u8>>) {
        let mut run = Run::new(s);
        let mut sent = Vec::new();
        let mut pending: std::collections::VecDeque<&[u8]> = answers.iter().copied().collect();
        let mut given_for_turn = false;
        for _ in 0..100 {
            match run.step() {
                Action::Connect(_) => given_for_turn = false,
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
        let mut run = Run::new(&s);
        assert_eq!(run.step(), Action::Connect(None));
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
        let s = seq(&["connect port 6379 comment first", "send a", "connect", "expect string b"]);
        let mut run = Run::new(&s);
        assert_eq!(run.step(), Action::Connect(Some(6379)));
        assert_eq!(run.step(), Action::Send(b"a"));
        assert_eq!(run.step(), Action::Connect(None));
        assert_eq!(run.step(), Action::Recv);
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let mut c = None;
        for (line, why) in [
            ("expect", "needs a rule"),
            ("expect string", "needs a pattern"),
            ("expect rstring (", "bad regex"),
            ("send-binary 0g", "hex"),
            ("connect port 0", "port"),
            ("connect ssl", "not supported"),
            ("send-lf %[src]", "not supported"),
            ("expect string a error-status L7RSP", "not supported"),
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
