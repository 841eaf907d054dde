//! `if` / `unless` conditions over ACLs, with HAProxy's grammar: terms side by side are ANDed,
//! `||` or `or` separates alternatives (AND binds tighter), `!` negates one term, and
//! `{ FETCH PATTERN... }` is an anonymous ACL. There are no parentheses.
//!
//! One parser and one evaluator for every rule site: HTTP conditions are made of
//! [`Acl`]s, TCP ones of `tcprules::Acl`s (which know when request bytes are still missing);
//! what a site may fetch is checked by that site's validation. Evaluation is HAProxy's
//! three-valued `acl_exec_cond`, short-circuited the same way.

use super::RoutingError;
use super::acl::Acl;
use super::lex::{self, Word};
use crate::sample::{Maps, MatchKind, SampleContext};

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
    pub fn or(self, o: Tri) -> Tri {
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
    /// Maps and `-f` pattern files.
    pub maps: &'a dyn Maps,
    /// No more request data will come (`inspect-delay` over, buffer full, client closed, or
    /// no delay configured): nothing is "missing" any more.
    pub final_: bool,
}

/// What a condition needs of the ACLs it is made of.
pub trait CondAcl: Sized {
    /// Compiles an anonymous ACL, the words between `{` and `}`.
    fn from_words(words: &[Word]) -> Result<Self, RoutingError>;
    /// HAProxy's predefined ACL of that name, as this site knows them.
    fn predefined(name: &str) -> Option<Self>;
    fn eval(&self, env: &Env<'_>) -> Tri;
}

impl CondAcl for Acl {
    fn from_words(words: &[Word]) -> Result<Acl, RoutingError> {
        Acl::from_words(words)
    }
    fn predefined(name: &str) -> Option<Acl> {
        Acl::predefined(name)
    }
    /// An HTTP request is complete when rules see it: never "missing".
    fn eval(&self, env: &Env<'_>) -> Tri {
        if self.matches(env.ctx, env.maps) { Tri::Pass } else { Tri::Fail }
    }
}

#[derive(Debug, Clone)]
pub struct Cond<A> {
    /// `unless`: the result is inverted.
    unless: bool,
    /// Alternatives; each holds terms that must all match.
    any_of: Vec<Vec<Term<A>>>,
}

/// An HTTP condition.
pub type Condition = Cond<Acl>;

#[derive(Debug, Clone)]
struct Term<A> {
    negate: bool,
    acl: AclRef<A>,
}

#[derive(Debug, Clone)]
enum AclRef<A> {
    /// Index into the section's ACL list.
    Named(usize),
    /// An anonymous `{ ... }` ACL or a predefined one, owned by the condition.
    Inline(Box<A>),
}

impl<A: CondAcl> Term<A> {
    fn eval(&self, acls: &[A], env: &Env<'_>) -> Tri {
        let r = match &self.acl {
            // Indexes come from the same ACL list at load time; a mismatch cannot match.
            AclRef::Named(i) => acls.get(*i).map_or(Tri::Fail, |a| a.eval(env)),
            AclRef::Inline(a) => a.eval(env),
        };
        if self.negate { r.not() } else { r }
    }
}

impl<A: CondAcl> Cond<A> {
    /// Parses `if a b || !c`, `unless { path_beg /api }`, ... `acl_names` maps a declared ACL
    /// name to its index in the list later passed to the evaluation; HAProxy's predefined
    /// ACLs (`TRUE`, `LOCALHOST`, `METH_GET`, ...) are known without declaring them.
    pub fn parse(expr: &str, acl_names: &dyn Fn(&str) -> Option<usize>) -> Result<Cond<A>, RoutingError> {
        let words = lex::words(expr)?;
        let (unless, body) = match words.split_first() {
            None => return Err(RoutingError::EmptyCondition),
            Some((k, body)) if k.is("if") => (false, body),
            Some((k, body)) if k.is("unless") => (true, body),
            Some((k, _)) => {
                return Err(RoutingError::MissingKeyword { found: k.text.clone() });
            }
        };
        let mut any_of: Vec<Vec<Term<A>>> = vec![Vec::new()];
        let mut last_or: Option<&str> = None;
        let mut words = body.iter();
        while let Some(w) = words.next() {
            if w.is("||") || w.is("or") {
                if any_of.last().is_none_or(Vec::is_empty) {
                    return Err(RoutingError::DanglingOperator { operator: w.text.clone() });
                }
                any_of.push(Vec::new());
                last_or = Some(&w.text);
                continue;
            }
            let term = parse_term(w, &mut words, acl_names)?;
            if let Some(group) = any_of.last_mut() {
                group.push(term);
            }
        }
        match (any_of.last().is_none_or(Vec::is_empty), last_or) {
            (true, Some(op)) => Err(RoutingError::DanglingOperator { operator: op.to_string() }),
            (true, None) => Err(RoutingError::EmptyCondition),
            (false, _) => Ok(Cond { unless, any_of }),
        }
    }

    /// HAProxy's `acl_exec_cond`: an alternative stops at its first failing term, the
    /// condition at its first passing alternative; a missing sample is neither.
    pub fn eval_tri(&self, acls: &[A], env: &Env<'_>) -> Tri {
        let mut r = Tri::Fail;
        for all in &self.any_of {
            let mut suite = Tri::Pass;
            for t in all {
                suite = suite.and(t.eval(acls, env));
                if suite == Tri::Fail {
                    break;
                }
            }
            r = r.or(suite);
            if r == Tri::Pass {
                break;
            }
        }
        if self.unless { r.not() } else { r }
    }

    /// Anonymous and predefined ACLs (declared ones are checked in their own list).
    pub fn inline_acls(&self) -> impl Iterator<Item = &A> {
        self.any_of.iter().flatten().filter_map(|t| match &t.acl {
            AclRef::Inline(a) => Some(&**a),
            AclRef::Named(_) => None,
        })
    }

    /// Anonymous ACLs, for load-time resolution; declared ACLs are resolved in their list.
    pub fn inline_acls_mut(&mut self) -> impl Iterator<Item = &mut A> {
        self.any_of.iter_mut().flatten().filter_map(|t| match &mut t.acl {
            AclRef::Inline(a) => Some(&mut **a),
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

impl Cond<Acl> {
    pub fn eval(&self, acls: &[Acl], ctx: &dyn SampleContext, maps: &dyn Maps) -> bool {
        self.eval_tri(acls, &Env { ctx, maps, final_: true }) == Tri::Pass
    }

    /// Map files read by anonymous ACLs; declared ACLs report their own.
    pub fn map_refs(&self) -> Vec<crate::sample::FileRef<'_>> {
        self.inline_acls().flat_map(Acl::map_refs).collect()
    }

    /// Userlists (and groups) read by anonymous ACLs; declared ACLs report their own.
    pub fn auth_refs(&self) -> Vec<(&str, &[String])> {
        self.inline_acls().flat_map(Acl::auth_refs).collect()
    }

    /// `-f` files of anonymous ACLs; declared ACLs report their own.
    pub fn file_refs(&self) -> Vec<(&str, MatchKind, bool, bool)> {
        self.inline_acls().flat_map(Acl::file_refs).collect()
    }

    /// Backends named by `nbsrv(...)` in anonymous ACLs; declared ACLs report their own.
    pub fn referenced_backends(&self) -> Vec<&str> {
        self.inline_acls().flat_map(Acl::referenced_backends).collect()
    }
}

/// One term starting at `first`: `[!]name`, `! name`, `[!]{ ... }`.
fn parse_term<'w, A: CondAcl>(
    first: &'w Word,
    rest: &mut impl Iterator<Item = &'w Word>,
    acl_names: &dyn Fn(&str) -> Option<usize>,
) -> Result<Term<A>, RoutingError> {
    let mut negate = false;
    let mut w = first;
    let name = loop {
        if w.quoted {
            break w.text.as_str();
        }
        let stripped = w.text.trim_start_matches('!');
        let bangs = w.text.len() - stripped.len();
        negate ^= bangs % 2 == 1;
        if !stripped.is_empty() {
            break stripped;
        }
        // A lone `!` negates the next word.
        w = rest.next().ok_or_else(|| RoutingError::DanglingOperator { operator: w.text.clone() })?;
    };
    if w.quoted {
        return named(name, negate, acl_names);
    }
    match name {
        "{" => {
            let mut inner: Vec<Word> = Vec::new();
            loop {
                match rest.next() {
                    None => return Err(RoutingError::UnbalancedBrace),
                    Some(x) if x.is("}") => break,
                    Some(x) if x.is("{") => return Err(RoutingError::NestedBrace),
                    Some(x) => inner.push(x.clone()),
                }
            }
            if inner.is_empty() {
                return Err(RoutingError::EmptyBraces);
            }
            Ok(Term { negate, acl: AclRef::Inline(Box::new(A::from_words(&inner)?)) })
        }
        "}" => Err(RoutingError::UnbalancedBrace),
        _ if name.starts_with('{') || name.ends_with('}') => Err(RoutingError::BraceSpacing { token: w.text.clone() }),
        _ => named(name, negate, acl_names),
    }
}

fn named<A: CondAcl>(
    name: &str,
    negate: bool,
    acl_names: &dyn Fn(&str) -> Option<usize>,
) -> Result<Term<A>, RoutingError> {
    let acl = match acl_names(name) {
        Some(i) => AclRef::Named(i),
        None => AclRef::Inline(Box::new(
            A::predefined(name).ok_or_else(|| RoutingError::UnknownAcl { name: name.to_string() })?,
        )),
    };
    Ok(Term { negate, acl })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Ctx, Facts, Live};
    use http::{Method, Uri};

    struct Live2(usize);
    impl Live for Live2 {
        fn nbsrv(&self, _: &str) -> usize {
            self.0
        }
    }

    /// ACLs `a` (path_beg /a), `b` (path_end .b), `local` (src 127.0.0.1), `t` (always true).
    fn acls() -> (Vec<Acl>, impl Fn(&str) -> Option<usize>) {
        let defs = [("a", "path_beg /a"), ("b", "path_end .b"), ("local", "src 127.0.0.1"), ("t", "always_true")];
        let acls = defs.iter().map(|(_, e)| Acl::parse(e).unwrap()).collect();
        let names: Vec<&str> = defs.iter().map(|(n, _)| *n).collect();
        (acls, move |n: &str| names.iter().position(|x| *x == n))
    }

    fn eval_on(cond: &str, path: &str, src: &str) -> bool {
        let (acls, names) = acls();
        let c = Condition::parse(cond, &names).unwrap_or_else(|e| panic!("{cond}: {e}"));
        let uri: Uri = path.parse().unwrap();
        let facts = Facts {
            method: Some(&Method::GET),
            uri: Some(&uri),
            headers: None,
            src: src.parse().unwrap(),
            dst_port: 80,
        };
        c.eval(&acls, &Ctx(facts, &Live2(0)), &crate::sample::MapSet::default())
    }

    fn eval(cond: &str, path: &str) -> bool {
        eval_on(cond, path, "192.0.2.1")
    }

    fn err(cond: &str) -> RoutingError {
        let (_, names) = acls();
        Condition::parse(cond, &names).unwrap_err()
    }

    #[test]
    fn single_and_negated() {
        assert!(eval("if a", "/a/x") && !eval("if a", "/x"));
        assert!(!eval("if !a", "/a/x") && eval("if !a", "/x"));
        assert!(eval("if ! a", "/x") && !eval("if !!a", "/x") && eval("if !! a", "/a"));
        assert!(!eval("unless a", "/a/x") && eval("unless a", "/x"));
    }

    #[test]
    fn implicit_and() {
        assert!(eval("if a b", "/a/x.b"));
        assert!(!eval("if a b", "/a/x.c") && !eval("if a b", "/z/x.b"));
        assert!(eval("if a !b", "/a/x.c"));
        assert!(!eval("unless a b", "/a/x.b") && eval("unless a b", "/a/x.c"));
    }

    #[test]
    fn or_binds_looser_than_and() {
        for op in ["||", "or"] {
            // a || (b local)
            let c = format!("if a {op} b local");
            assert!(eval(&c, "/a"));
            assert!(!eval(&c, "/x.b"));
            assert!(eval_on(&c, "/x.b", "127.0.0.1"));
            // (a b) || local
            let c = format!("if a b {op} local");
            assert!(!eval(&c, "/a"));
            assert!(eval(&c, "/a.b"));
            assert!(eval_on(&c, "/z", "127.0.0.1"));
        }
        assert!(eval("if a || !b", "/z.c") && !eval("if a || !b", "/z.b"));
        assert!(eval("if a or b local || t", "/z"));
        assert!(!eval("unless a || b", "/a") && eval("unless a || b", "/z"));
    }

    #[test]
    fn anonymous_acls_in_braces() {
        assert!(eval("if { path_beg /api }", "/api/v1") && !eval("if { path_beg /api }", "/x"));
        assert!(eval("if { path_beg /api } !local", "/api"));
        assert!(!eval_on("if { path_beg /api } !local", "/api", "127.0.0.1"));
        assert!(eval("if !{ path_beg /api }", "/x") && eval("if ! { path_beg /api }", "/x"));
        assert!(eval(r#"if { path -m sub "a b" } || { path_end .b }"#, "/q.b"));
        assert!(eval("if { path_beg -i /API /v2 } a", "/api"));
        // A quoted brace is a pattern.
        assert!(eval(r#"if { path_end "}" }"#, "/x}"));
    }

    #[test]
    fn predefined_and_declared_names() {
        assert!(eval("if TRUE", "/") && !eval("if FALSE", "/"));
        assert!(eval("if METH_GET a", "/a") && !eval("if METH_POST", "/"));
        assert!(eval_on("if LOCALHOST", "/", "::1"));
        // A declared ACL shadows a predefined one of the same name.
        let names = |n: &str| (n == "TRUE").then_some(0);
        let acls = [Acl::parse("always_false").unwrap()];
        let c = Condition::parse("if TRUE", &names).unwrap();
        let facts = Facts { method: None, uri: None, headers: None, src: "192.0.2.1".parse().unwrap(), dst_port: 80 };
        assert!(!c.eval(&acls, &Ctx(facts, &Live2(0)), &crate::sample::MapSet::default()));
        // An index outside the list never matches.
        assert!(!c.eval(&[], &Ctx(facts, &Live2(0)), &crate::sample::MapSet::default()));
    }

    #[test]
    fn nbsrv_in_conditions() {
        let (acls, names) = acls();
        let c = Condition::parse("if { nbsrv(static) lt 1 } || { nbsrv(php) eq 0 } a", &names).unwrap();
        assert_eq!(c.referenced_backends(), ["static", "php"]);
        let facts = Facts { method: None, uri: None, headers: None, src: "192.0.2.1".parse().unwrap(), dst_port: 80 };
        assert!(c.eval(&acls, &Ctx(facts, &Live2(0)), &crate::sample::MapSet::default()));
        assert!(!c.eval(&acls, &Ctx(facts, &Live2(2)), &crate::sample::MapSet::default()));
        let named = Condition::parse("if a b", &names).unwrap();
        assert!(named.referenced_backends().is_empty());
    }

    #[test]
    fn each_error() {
        use RoutingError as E;
        let s = String::from;
        assert_eq!(err(""), E::EmptyCondition);
        assert_eq!(err("if"), E::EmptyCondition);
        assert_eq!(err("unless   "), E::EmptyCondition);
        assert_eq!(err("when a"), E::MissingKeyword { found: s("when") });
        assert_eq!(err("a"), E::MissingKeyword { found: s("a") });
        assert_eq!(err("'if' a"), E::MissingKeyword { found: s("if") });
        assert_eq!(err("if nope"), E::UnknownAcl { name: s("nope") });
        assert_eq!(err("if a !nope"), E::UnknownAcl { name: s("nope") });
        assert_eq!(err("if a ||"), E::DanglingOperator { operator: s("||") });
        assert_eq!(err("if || a"), E::DanglingOperator { operator: s("||") });
        assert_eq!(err("if a or or b"), E::DanglingOperator { operator: s("or") });
        assert_eq!(err("if a !"), E::DanglingOperator { operator: s("!") });
        assert_eq!(err("if { path_beg /a"), E::UnbalancedBrace);
        assert_eq!(err("if a }"), E::UnbalancedBrace);
        assert_eq!(err("if { { path_beg /a } }"), E::NestedBrace);
        assert_eq!(err("if { }"), E::EmptyBraces);
        assert_eq!(err("if {path_beg /a }"), E::BraceSpacing { token: s("{path_beg") });
        assert_eq!(err("if { path_beg /a}"), E::UnbalancedBrace);
        assert_eq!(err("if a}"), E::BraceSpacing { token: s("a}") });
        assert_eq!(err("if { pth /a }"), E::UnknownFetch { fetch: s("pth") });
        assert!(matches!(err("if { path_reg ( }"), E::BadRegex { .. }));
        assert!(matches!(err("if { src 1.2.3.4/99 }"), E::BadAddress { .. }));
        assert!(matches!(err(r#"if "a"#), E::UnterminatedQuote { .. }));
    }

    #[test]
    fn quoted_names_are_names() {
        assert!(eval(r#"if "a""#, "/a"));
        assert_eq!(err(r#"if "{""#), RoutingError::UnknownAcl { name: "{".into() });
        assert_eq!(err(r#"if "!a""#), RoutingError::UnknownAcl { name: "!a".into() });
    }
}
