//! ACLs and `if`/`unless` conditions over sample expressions, with HAProxy's three-valued
//! result: a rule reading request bytes that have not arrived yet is neither true nor false but
//! "missing data" (`ACL_TEST_MISS`), and the rule set waits for more until `inspect-delay`.

use super::matcher::{Matcher, Method, PatternStore};
use crate::routing::lex::{self, Word};
use crate::sample::{Fetch, Maps, SampleContext, SampleExpr, SmpType};

/// HAProxy's `ACL_TEST_FAIL` (0), `ACL_TEST_MISS` (1), `ACL_TEST_PASS` (3): AND is `&`, OR is `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Fail = 0,
    Miss = 1,
    Pass = 3,
}

impl Tri {
    fn from_bits(b: u8) -> Tri {
        match b {
            0 => Tri::Fail,
            3 => Tri::Pass,
            _ => Tri::Miss,
        }
    }
    fn and(self, o: Tri) -> Tri {
        Tri::from_bits(self as u8 & o as u8)
    }
    fn or(self, o: Tri) -> Tri {
        Tri::from_bits(self as u8 | o as u8)
    }
    fn not(self) -> Tri {
        match self {
            Tri::Fail => Tri::Pass,
            Tri::Pass => Tri::Fail,
            Tri::Miss => Tri::Miss,
        }
    }
}

/// What a condition reads besides its patterns: the stream and the pattern/map store.
pub struct Env<'a> {
    pub ctx: &'a dyn SampleContext,
    pub maps: &'a dyn Maps,
    pub patterns: &'a dyn PatternStore,
    /// No more request data will come (`inspect-delay` over, buffer full, client closed, or
    /// no delay configured): nothing is "missing" any more.
    pub final_: bool,
}

#[derive(Debug)]
pub struct Acl {
    expr: SampleExpr,
    matcher: Matcher,
    /// `-M`: the `-f` files are maps whose keys are the patterns.
    pub files_are_maps: bool,
    /// Later lines of the same name, ORed.
    or: Vec<Acl>,
}

/// Predefined ACLs that mean something outside HTTP.
const PREDEFINED: [(&str, &str); 4] = [
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("REQ_CONTENT", "req.len gt 0"),
];

/// ACL-only suffixes of fetch names (`path_beg`, `hdr_end(host)`, `req.ssl_sni_end`, ...).
const SUFFIXES: [(&str, Method); 11] = [
    ("_beg", Method::Beg),
    ("_end", Method::End),
    ("_sub", Method::Sub),
    ("_dir", Method::Dir),
    ("_dom", Method::Dom),
    ("_reg", Method::Reg),
    ("_len", Method::Len),
    ("_str", Method::Str),
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
        let method = implied.or(explicit).unwrap_or_else(|| Method::default_for(out_type(&expr)));
        if method.kind().is_some() && patterns.is_empty() && files.is_empty() {
            return Err(format!("`{}` needs at least one pattern", head.text));
        }
        if method.kind().is_none() && !files.is_empty() {
            return Err("`-f` needs a match method that takes patterns".into());
        }
        let matcher = Matcher::compile(method, icase, &patterns, files)?;
        Ok(Acl { expr, matcher, files_are_maps: maps, or: Vec::new() })
    }

    pub fn predefined(name: &str) -> Option<Acl> {
        PREDEFINED.iter().find(|(n, _)| *n == name).and_then(|(_, t)| Acl::parse(t).ok())
    }

    pub fn or(&mut self, other: Acl) {
        self.or.push(other);
    }

    pub fn eval(&self, env: &Env<'_>) -> Tri {
        let hit = self.expr.eval_all(env.ctx, env.maps).into_iter().any(|v| self.matcher.matches(v, env.patterns));
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
    pub fn map_refs(&self) -> Vec<(String, crate::sample::MatchKind)> {
        let mut v: Vec<_> = self.expr.map_refs().map(|(p, k)| (p.to_string(), k)).collect();
        v.extend(self.or.iter().flat_map(|a| a.map_refs()));
        v
    }
}

/// Whether a failed or non-matching fetch could still change with more request data
/// (HAProxy's `SMP_F_MAY_CHANGE`).
fn pending(fetch: &Fetch, ctx: &dyn SampleContext) -> bool {
    match fetch {
        Fetch::ReqLen | Fetch::ReqPayload { len: 0, .. } => true,
        Fetch::ReqPayload { .. } => fetch.fetch(ctx).is_none(),
        Fetch::ReqSslSni | Fetch::ReqSslHelloType => ctx.req_payload().is_none_or(hello_incomplete),
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

#[derive(Debug)]
pub struct Cond {
    unless: bool,
    any_of: Vec<Vec<Term>>,
}

#[derive(Debug)]
struct Term {
    negate: bool,
    acl: AclRef,
}

#[derive(Debug)]
enum AclRef {
    Named(usize),
    Inline(Box<Acl>),
}

impl Cond {
    /// Parses `if a b || !c`, `unless { req.ssl_sni -i a.example }`; `acl` resolves a declared
    /// ACL name to its index in the list later given to [`Cond::eval`].
    pub fn parse(text: &str, acl: &dyn Fn(&str) -> Option<usize>) -> Result<Cond, String> {
        let words = lex::words(text).map_err(|e| e.to_string())?;
        let (unless, body) = match words.split_first() {
            Some((k, b)) if k.is("if") => (false, b),
            Some((k, b)) if k.is("unless") => (true, b),
            Some((k, _)) => return Err(format!("condition must start with `if` or `unless`, got `{}`", k.text)),
            None => return Err("empty condition".into()),
        };
        let mut any_of: Vec<Vec<Term>> = vec![Vec::new()];
        let mut i = 0;
        while i < body.len() {
            let w = &body[i];
            i += 1;
            if w.is("||") || w.is("or") {
                if any_of.last().is_none_or(Vec::is_empty) {
                    return Err(format!("`{}` has nothing to apply to", w.text));
                }
                any_of.push(Vec::new());
                continue;
            }
            let mut negate = false;
            let mut text = w.text.as_str();
            if !w.quoted {
                let stripped = text.trim_start_matches('!');
                negate = (text.len() - stripped.len()) % 2 == 1;
                text = stripped;
            }
            if text.is_empty() {
                // A lone `!` applies to the next word.
                let Some(next) = body.get(i) else { return Err("`!` has nothing to apply to".into()) };
                i += 1;
                text = next.text.as_str();
                if next.is("{") {
                    text = "{";
                }
            }
            let acl = if text == "{" && !w.quoted {
                let close = body[i..].iter().position(|x| x.is("}")).ok_or("unbalanced braces in condition")?;
                let inner = &body[i..i + close];
                if inner.iter().any(|x| x.is("{")) {
                    return Err("braces cannot nest in a condition".into());
                }
                i += close + 1;
                AclRef::Inline(Box::new(Acl::from_words(inner)?))
            } else if text.starts_with('{') || text.ends_with('}') {
                return Err(format!("`{text}`: braces must be separated by spaces"));
            } else if let Some(idx) = acl(text) {
                AclRef::Named(idx)
            } else if let Some(p) = Acl::predefined(text) {
                AclRef::Inline(Box::new(p))
            } else {
                return Err(format!("unknown acl `{text}`"));
            };
            if let Some(g) = any_of.last_mut() {
                g.push(Term { negate, acl });
            }
        }
        if any_of.last().is_none_or(Vec::is_empty) {
            return Err("condition ends without an ACL".into());
        }
        Ok(Cond { unless, any_of })
    }

    pub fn eval(&self, acls: &[Acl], env: &Env<'_>) -> Tri {
        let term = |t: &Term| {
            let r = match &t.acl {
                AclRef::Named(i) => acls.get(*i).map_or(Tri::Fail, |a| a.eval(env)),
                AclRef::Inline(a) => a.eval(env),
            };
            if t.negate { r.not() } else { r }
        };
        let r =
            self.any_of.iter().fold(Tri::Fail, |acc, all| acc.or(all.iter().fold(Tri::Pass, |a, t| a.and(term(t)))));
        if self.unless { r.not() } else { r }
    }

    /// Inline ACLs (declared ones are reported by their own list).
    pub fn inline_acls(&self) -> impl Iterator<Item = &Acl> {
        self.any_of.iter().flatten().filter_map(|t| match &t.acl {
            AclRef::Inline(a) => Some(&**a),
            AclRef::Named(_) => None,
        })
    }

    /// Indexes of the declared ACLs used.
    pub fn named(&self) -> impl Iterator<Item = usize> + '_ {
        self.any_of.iter().flatten().filter_map(|t| match t.acl {
            AclRef::Named(i) => Some(i),
            AclRef::Inline(_) => None,
        })
    }
}
