//! TCP ACLs: sample expressions matched with `routing::pattern` (the HTTP ACLs' compiler), with HAProxy's three-valued
//! result: a rule reading request bytes that have not arrived yet is neither true nor false but
//! "missing data" (`ACL_TEST_MISS`), and the rule set waits for more until `inspect-delay`.
//! Conditions over them are `routing::Cond`, the one condition grammar and evaluator.

use crate::routing::lex::{self, Word};
use crate::routing::pattern::{MatchMethod as Method, Patterns, StrMatch};
use crate::routing::{CondAcl, Env, RoutingError, Tri};
use crate::sample::{Fetch, SampleContext, SampleExpr, SmpType};

/// A condition of TCP rules and of `use_backend` in mode tcp.
pub type Cond = crate::routing::Cond<Acl>;

impl Cond {
    pub fn eval(&self, acls: &[Acl], env: &Env<'_>) -> Tri {
        self.eval_tri(acls, env)
    }
}

impl CondAcl for Acl {
    fn from_words(words: &[Word]) -> Result<Acl, RoutingError> {
        Acl::from_words(words).map_err(RoutingError::Acl)
    }
    fn predefined(name: &str) -> Option<Acl> {
        Acl::predefined(name)
    }
    fn eval(&self, env: &Env<'_>) -> Tri {
        Acl::eval(self, env)
    }
}

#[derive(Debug)]
pub struct Acl {
    expr: SampleExpr,
    matcher: Patterns,
    /// `-M`: the `-f` files are maps whose keys are the patterns.
    pub files_are_maps: bool,
    /// Later lines of the same name, ORed.
    or: Vec<Acl>,
}

/// Predefined ACLs that mean something outside HTTP.
const PREDEFINED: [(&str, &str); 5] = [
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("REQ_CONTENT", "req.len gt 0"),
    ("RDP_COOKIE", "req.rdp_cookie_cnt gt 0"),
];

/// ACL-only suffixes of fetch names (`path_beg`, `hdr_end(host)`, `req.ssl_sni_end`, ...).
const SUFFIXES: [(&str, Method); 11] = [
    ("_beg", Method::Str(StrMatch::Beg)),
    ("_end", Method::Str(StrMatch::End)),
    ("_sub", Method::Str(StrMatch::Sub)),
    ("_dir", Method::Str(StrMatch::Dir)),
    ("_dom", Method::Str(StrMatch::Dom)),
    ("_reg", Method::Reg),
    ("_len", Method::Len),
    ("_str", Method::Str(StrMatch::Exact)),
    ("_ip", Method::Ip),
    ("_val", Method::Int),
    ("_found", Method::Found),
];

fn is_flag(w: &Word) -> bool {
    !w.quoted && w.text.starts_with('-') && !w.text[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// The expression of an ACL's first word, and the match method its suffix implies.
fn fetch_word(word: &str) -> Result<(SampleExpr, Option<Method>), String> {
    let first = match SampleExpr::parse(word) {
        Ok(e) => return Ok((e, None)),
        Err(e) => e,
    };
    let (name, args) = match word.find(['(', ',']) {
        Some(i) => word.split_at(i),
        None => (word, ""),
    };
    for (suffix, method) in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix)
            && let Ok(e) = SampleExpr::parse(&format!("{base}{args}"))
        {
            return Ok((e, Some(method)));
        }
    }
    Err(first.to_string())
}

fn out_type(e: &SampleExpr) -> SmpType {
    e.convs.last().map_or_else(|| e.fetch.out_type(), |c| c.types().1)
}

impl Acl {
    /// Compiles the text after an ACL's name (`req.ssl_sni -i a.example`, `src -f block.lst`).
    pub fn parse(text: &str) -> Result<Acl, String> {
        Acl::from_words(&lex::words(text).map_err(|e| e.to_string())?)
    }

    fn from_words(words: &[Word]) -> Result<Acl, String> {
        let (head, rest) = words.split_first().ok_or("empty ACL")?;
        let (expr, implied) = fetch_word(&head.text)?;
        let (mut icase, mut explicit, mut files, mut maps) = (false, None, Vec::new(), false);
        let mut patterns = Vec::new();
        let mut rest = rest.iter();
        while let Some(w) = rest.next() {
            if !is_flag(w) {
                patterns.push(w.text.clone());
                break;
            }
            let mut value =
                || rest.next().map(|v| v.text.clone()).ok_or_else(|| format!("flag `{}` needs a value", w.text));
            match w.text.as_str() {
                "-i" => icase = true,
                "-n" => {}
                "-M" => maps = true,
                "-f" => files.push(value()?),
                "-m" => {
                    let name = value()?;
                    let m = Method::parse(&name).ok_or_else(|| {
                        format!("unknown match method `-m {name}` (expected str, beg, end, sub, dir, dom, reg, ip, int, len, bool, found or bin)")
                    })?;
                    if implied.is_some() {
                        return Err(format!("`{}` already implies a match method; drop `-m`", head.text));
                    }
                    explicit = Some(m);
                }
                "--" => break,
                "-u" => return Err("flag `-u` is not supported".into()),
                f => return Err(format!("unknown flag `{f}` (expected -i, -f FILE, -m METHOD, -M, -n or --)")),
            }
        }
        patterns.extend(rest.map(|w| w.text.clone()));
        let method = implied.or(explicit).unwrap_or_else(|| Method::default_for_type(out_type(&expr)));
        if method.takes_patterns() && patterns.is_empty() && files.is_empty() {
            return Err(format!("`{}` needs at least one pattern", head.text));
        }
        if !method.takes_patterns() && !files.is_empty() {
            return Err("`-f` needs a match method that takes patterns".into());
        }
        if let (false, Some(p)) = (method.takes_patterns(), patterns.first()) {
            return Err(format!("match method takes no pattern, got `{p}`"));
        }
        let matcher = Patterns::compile(method, icase, &patterns, files).map_err(|e| e.to_string())?;
        Ok(Acl { expr, matcher, files_are_maps: maps, or: Vec::new() })
    }

    pub fn predefined(name: &str) -> Option<Acl> {
        PREDEFINED.iter().find(|(n, _)| *n == name).and_then(|(_, t)| Acl::parse(t).ok())
    }

    pub fn or(&mut self, other: Acl) {
        self.or.push(other);
    }

    pub fn eval(&self, env: &Env<'_>) -> Tri {
        let hit = self.expr.eval_all(env.ctx, env.maps).into_iter().any(|v| self.matcher.test(v, env.maps));
        let own = if hit {
            Tri::Pass
        } else if !env.final_ && pending(&self.expr.fetch, env.ctx) {
            Tri::Miss
        } else {
            Tri::Fail
        };
        self.or.iter().fold(own, |r, a| r.or(a.eval(env)))
    }

    /// This ACL's fetches and those of its same-name lines.
    pub fn fetches(&self) -> Vec<&Fetch> {
        let mut v = vec![&self.expr.fetch];
        v.extend(self.or.iter().flat_map(|a| a.fetches()));
        v
    }

    /// The expressions of this ACL and its same-name lines, for load-time resolution.
    pub fn exprs_mut(&mut self) -> Vec<&mut SampleExpr> {
        let mut v = vec![&mut self.expr];
        v.extend(self.or.iter_mut().flat_map(|a| a.exprs_mut()));
        v
    }

    /// `-f` files: (name, index kind, case-folded, read as a map).
    pub fn file_refs(&self) -> Vec<(String, crate::sample::MatchKind, bool, bool)> {
        let mut v: Vec<_> = match self.matcher.method.kind() {
            Some(k) => {
                self.matcher.files.iter().map(|f| (f.clone(), k, self.matcher.icase, self.files_are_maps)).collect()
            }
            None => Vec::new(),
        };
        v.extend(self.or.iter().flat_map(|a| a.file_refs()));
        v
    }

    /// The maps the expression's converters read.
    pub fn map_refs(&self) -> Vec<crate::sample::FileRef<'_>> {
        let mut v: Vec<_> = self.expr.map_refs().collect();
        v.extend(self.or.iter().flat_map(|a| a.map_refs()));
        v
    }
}

/// Whether a failed or non-matching fetch could still change with more data in the buffer
/// being inspected (HAProxy's `SMP_F_MAY_CHANGE`): the request's in `tcp-request content`,
/// the server's in `tcp-response content` (the context holds only the buffer inspected).
fn pending(fetch: &Fetch, ctx: &dyn SampleContext) -> bool {
    let (req, res) = (ctx.req_payload(), ctx.res_payload());
    match fetch {
        Fetch::ReqLen | Fetch::ReqPayload { len: 0, .. } => req.is_some(),
        Fetch::ResLen | Fetch::ResPayload { len: 0, .. } => res.is_some(),
        Fetch::ReqPayload { .. } => req.is_some() && fetch.fetch(ctx).is_none(),
        Fetch::ResPayload { .. } => res.is_some() && fetch.fetch(ctx).is_none(),
        Fetch::PayloadLv { res: r, lv } => {
            let buf = if *r { res } else { req };
            buf.is_some_and(|b| lv.extract(b) == crate::sample::LvFound::Short)
        }
        Fetch::ReqSslSni | Fetch::ReqSslHelloType => req.is_some_and(hello_incomplete),
        Fetch::ResSslHelloType => res.is_some_and(hello_incomplete),
        Fetch::ReqRdpCookie(n) | Fetch::ReqRdpCookieCnt(n) => {
            req.is_some_and(|p| crate::sample::rdp::cookie(p, n.as_deref()) == crate::sample::rdp::RdpCookie::Short)
        }
        _ => false,
    }
}

/// A TLS record not yet complete: HAProxy waits for the whole first record.
fn hello_incomplete(p: &[u8]) -> bool {
    match p {
        [] => true,
        [0x16, ..] if p.len() < 5 => true,
        [0x16, _, _, hi, lo, rest @ ..] => rest.len() < (*hi as usize) << 8 | *lo as usize,
        _ => false,
    }
}
