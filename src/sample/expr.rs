//! A whole sample expression: one fetch and its converter chain, parsed and type-checked once.

use super::args::{call, is_idchar};
use super::conv::Converter;
use super::fetch::{Fetch, SampleContext};
use super::value::{SmpType, Value};
use super::{Maps, ParseError};

#[derive(Debug, Clone)]
pub struct SampleExpr {
    pub fetch: Fetch,
    pub convs: Vec<Converter>,
}

impl SampleExpr {
    /// Parses a whole expression such as `req.hdr(host),lower,map_dom(/etc/hosts.map,www)`.
    pub fn parse(input: &str) -> Result<SampleExpr, ParseError> {
        let (expr, end) = SampleExpr::parse_at(input, 0)?;
        if end < input.len() {
            let word = &input[end..];
            return Err(ParseError::new(input, end, word, None, "missing comma before this".into()));
        }
        Ok(expr)
    }

    /// Parses the expression starting at `at` and returns it with the offset of the first byte
    /// that is not part of it (for `%[...]`, the `]`).
    pub fn parse_at(input: &str, at: usize) -> Result<(SampleExpr, usize), ParseError> {
        let c = call(input, at)?;
        if c.name.is_empty() {
            return Err(ParseError::new(input, at, "", None, "missing fetch method".into()));
        }
        let fetch = Fetch::parse(input, &c)?;
        // A variable has whatever type was stored: HAProxy checks nothing after it.
        let mut prev = (!matches!(fetch, Fetch::Var { .. })).then(|| fetch.out_type());
        let mut pos = c.end;
        let mut convs = Vec::new();
        let bytes = input.as_bytes();
        while bytes.get(pos) == Some(&b',') {
            while bytes.get(pos) == Some(&b',') {
                pos += 1;
            }
            if pos == bytes.len() {
                break;
            }
            let c = call(input, pos)?;
            let err = |reason: String| ParseError::new(input, pos, c.name, None, reason);
            if c.name.is_empty() {
                let found = input[pos..].chars().next().unwrap_or(' ');
                return Err(err(format!("expected a converter name, found '{found}'")));
            }
            let conv = Converter::parse(input, &c)?.ok_or_else(|| err("unknown converter".into()))?;
            let (in_type, out_type) = conv.types();
            if let Some(p) = prev
                && !p.casts_to(in_type)
            {
                return Err(err(format!(
                    "converter cannot be applied: it takes {} and gets {}",
                    in_type.name(),
                    p.name()
                )));
            }
            prev = Some(out_type);
            convs.push(conv);
            pos = c.end;
        }
        if bytes.get(pos).is_some_and(|&b| is_idchar(b) || b == b'(') {
            return Err(ParseError::new(input, pos, &input[pos..], None, "missing comma before this".into()));
        }
        Ok((SampleExpr { fetch, convs }, pos))
    }

    /// The type the expression produces, as checked at load time (`None` after `var()`, whose
    /// type is whatever was stored, when no converter follows).
    pub fn out_type(&self) -> Option<SmpType> {
        match self.convs.last() {
            Some(c) => Some(c.types().1),
            None => (!matches!(self.fetch, Fetch::Var { .. })).then(|| self.fetch.out_type()),
        }
    }

    /// The sample, or `None` when the fetch or a converter fails.
    pub fn eval(&self, ctx: &dyn SampleContext, maps: &dyn Maps) -> Option<Value> {
        let mut v = self.fetch.fetch(ctx)?;
        for conv in &self.convs {
            v = conv.apply(v, ctx, maps)?;
        }
        Some(v)
    }

    /// Every sample an ACL tests: each occurrence of a multi-valued fetch through the converters;
    /// occurrences a converter fails on are dropped.
    pub fn eval_all(&self, ctx: &dyn SampleContext, maps: &dyn Maps) -> Vec<Value> {
        let mut out = self.fetch.fetch_all(ctx);
        for conv in &self.convs {
            out = out.into_iter().filter_map(|v| conv.apply(v, ctx, maps)).collect();
        }
        out
    }

    /// Evaluates and casts to a string, as a header value or a log field uses the sample.
    pub fn eval_str(&self, ctx: &dyn SampleContext, maps: &dyn Maps) -> Option<Vec<u8>> {
        match self.eval(ctx, maps)?.cast(SmpType::Str)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The stick-counter fetch the expression starts with, if any (its table is resolved at load).
    pub fn stick_mut(&mut self) -> Option<&mut super::StickFetch> {
        match &mut self.fetch {
            Fetch::Stick(f) => Some(f),
            _ => None,
        }
    }

    /// The tables its `table_*` / `in_table` converters name.
    pub fn conv_tables(&self) -> impl Iterator<Item = &str> {
        self.convs.iter().filter_map(|c| match c {
            Converter::Table(f) => f.table.as_deref(),
            _ => None,
        })
    }

    /// The files the expression reads: maps, so the loader can build each once per match kind
    /// and check the values of a typed one (`map_str_int`) as HAProxy does at load, and
    /// `jwt_verify`'s public keys.
    pub fn map_refs(&self) -> impl Iterator<Item = super::FileRef<'_>> {
        use super::conv::JwtArg;
        self.convs.iter().filter_map(|c| match c {
            Converter::Map { kind, path, out, .. } => Some(super::FileRef::Map(path.as_str(), *kind, *out)),
            Converter::JwtVerify { alg, key: JwtArg::Const(key) } => {
                let required = match alg {
                    JwtArg::Const(a) => match super::jwt::Alg::parse(a) {
                        Some(super::jwt::Alg::Rs(_) | super::jwt::Alg::Es(_)) => true,
                        _ => return None,
                    },
                    JwtArg::Var(_) => false,
                };
                let path = std::str::from_utf8(key).ok()?;
                Some(super::FileRef::JwtKey { path, required })
            }
            _ => None,
        })
    }
}
