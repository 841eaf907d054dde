//! What a check's log-format strings (`tcp-check send-lf`, `expect string-lf`, `on-success`,
//! `on-error`) and `status-code` expressions can read. As in HAProxy 2.6, a check has no
//! client and no stream: constants, `env()`, `date`, `rand`, `hostname` work, and the log
//! variables of the checked side (`%b`, `%s`, `%si`, `%sp`, `%H`); the rest renders empty.

use crate::sample::{LogFormat, Maps, MatchKind, SampleContext, SampleExpr, Value, VarRef, VarScope};
use std::net::SocketAddr;

/// A log-format string with its source, which compares and prints as written.
#[derive(Clone)]
pub struct Fmt {
    pub src: String,
    pub fmt: LogFormat,
}

impl Fmt {
    pub fn parse(src: &str) -> Result<Fmt, String> {
        let fmt = LogFormat::parse(src).map_err(|e| format!("invalid log-format string: {e}"))?;
        Ok(Fmt { src: src.to_string(), fmt })
    }

    /// A fixed text (the built-in protocol checks' messages).
    pub fn text(s: &str) -> Fmt {
        let fmt = LogFormat { segments: vec![crate::sample::Segment::Literal(s.as_bytes().to_vec())] };
        Fmt { src: s.to_string(), fmt }
    }

    pub fn render(&self, cx: &CheckCtx<'_>) -> Vec<u8> {
        if let [crate::sample::Segment::Literal(t)] = self.fmt.segments.as_slice() {
            return t.clone();
        }
        self.fmt.render(cx, &NoMaps, &|name, _flags| cx.log_var(name))
    }
}

impl PartialEq for Fmt {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl std::fmt::Debug for Fmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

/// A sample expression with its source (`status-code`).
#[derive(Clone)]
pub struct Expr {
    pub src: String,
    pub expr: SampleExpr,
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, String> {
        let expr = SampleExpr::parse(src).map_err(|e| e.to_string())?;
        Ok(Expr { src: src.to_string(), expr })
    }

    /// The expression's value.
    pub fn value(&self, cx: &CheckCtx<'_>) -> Option<Value> {
        self.expr.eval(cx, &NoMaps)
    }

    /// The expression as an integer, if it gives one.
    pub fn int(&self, cx: &CheckCtx<'_>) -> Option<i64> {
        let v = self.expr.eval_str(cx, &NoMaps)?;
        std::str::from_utf8(&v).ok()?.trim().parse().ok()
    }
}

impl PartialEq for Expr {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

struct NoMaps;

impl Maps for NoMaps {
    fn lookup(&self, _: &str, _: MatchKind, _: &Value) -> Option<&[u8]> {
        None
    }
}

/// The variables of one check run (`set-var(check.x)`), gone when it ends.
#[derive(Debug, Default)]
pub struct CheckVars(std::sync::Mutex<Vec<(VarRef, Value)>>);

impl CheckVars {
    fn get(&self, var: &VarRef) -> Option<Value> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.iter().find(|(k, _)| k == var).map(|(_, x)| x.clone())
    }
    fn set(&self, var: &VarRef, value: Option<Value>) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|(k, _)| k != var);
        if let Some(x) = value {
            v.push((var.clone(), x));
        }
    }
}

/// The checked server as a check's samples see it.
#[derive(Debug, Clone, Copy)]
pub struct CheckCtx<'a> {
    pub backend: &'a str,
    pub server: &'a str,
    /// Where the current connection goes (HAProxy's `%si`/`%sp` of a check).
    pub target: SocketAddr,
    pub vars: &'a CheckVars,
}

impl CheckCtx<'_> {
    fn log_var(&self, name: &str) -> Option<Vec<u8>> {
        let s = match name {
            "b" => self.backend.to_string(),
            "s" => self.server.to_string(),
            "si" => self.target.ip().to_string(),
            "sp" => self.target.port().to_string(),
            "H" => self.hostname()?.to_string(),
            "pid" => std::process::id().to_string(),
            _ => return None,
        };
        Some(s.into_bytes())
    }
}

impl SampleContext for CheckCtx<'_> {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn now(&self) -> Option<(i64, u32)> {
        crate::sample::wall_clock()
    }
    fn random(&self) -> Option<u32> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(self.server.as_bytes());
        Some(h.finish() as u32)
    }
    /// `var(check.x)` and `var(sess.x)`: this run's variables; other scopes are not a check's.
    fn var(&self, var: &VarRef) -> Option<Value> {
        matches!(var.scope, VarScope::Check | VarScope::Sess).then(|| self.vars.get(var)).flatten()
    }
    fn set_var(&self, var: &VarRef, value: Option<Value>) -> bool {
        if !matches!(var.scope, VarScope::Check | VarScope::Sess) {
            return false;
        }
        self.vars.set(var, value);
        true
    }
    fn hostname(&self) -> Option<&str> {
        static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Some(
            NAME.get_or_init(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_render_the_checked_side() {
        let vars = CheckVars::default();
        let cx = CheckCtx { backend: "be", server: "s1", target: "127.0.0.1:6379".parse().unwrap(), vars: &vars };
        let f = Fmt::parse("AUTH %b/%s %si:%sp %[str(x),upper] %ci.").unwrap();
        assert_eq!(f.render(&cx), b"AUTH be/s1 127.0.0.1:6379 X .");
        assert!(Fmt::parse("%[nosuchfetch]").is_err());
        assert_eq!(Expr::parse("int(503)").unwrap().int(&cx), Some(503));
        assert_eq!(Expr::parse("str(abc)").unwrap().int(&cx), None);
        assert_eq!(Fmt::text("x %b").render(&cx), b"x %b");
    }
}
