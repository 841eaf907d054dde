//! A `log-format` compiled once, when the configuration is validated: literal text with its
//! spacing already worked out, log variables as [`Var`] ids with their flags resolved (`%o`
//! included), `%[...]` samples already parsed. Writing a line is then one pass over the items,
//! with no variable names matched and no flags re-read per request.

use super::record::{Record, Val};
use crate::sample::{Converter, Fetch, LogFormat, MapSet, Maps, SampleContext, SampleExpr, Segment};

/// The log variables of HAProxy 2.6 that lbha renders (`%o` is resolved at compile time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Ci,
    Cp,
    Fi,
    Fp,
    Si,
    Sp,
    Bi,
    Bp,
    T,
    Tr,
    TGmt,
    Ts,
    Ms,
    Trg,
    TsState,
    Tsc,
    F,
    Ft,
    B,
    S,
    Th,
    Ti,
    TRecv,
    Tq,
    Tw,
    Tc,
    TResp,
    Ta,
    Tt,
    St,
    Bytes,
    BytesIn,
    Ac,
    Fc,
    Bc,
    Sc,
    Rc,
    Sq,
    Bq,
    Hr,
    Hrl,
    Hs,
    Hsl,
    R,
    Hm,
    Hu,
    Hp,
    Hpo,
    Hq,
    Hv,
    Id,
    Pid,
    H,
    Rt,
    Cc,
    Cs,
    Sslv,
    Sslc,
    Td,
    Tu,
    Tl,
    Trl,
    Lc,
}

/// Each variable with the name a format spells it with.
const NAMES: &[(&str, Var)] = &[
    ("ci", Var::Ci),
    ("cp", Var::Cp),
    ("fi", Var::Fi),
    ("fp", Var::Fp),
    ("si", Var::Si),
    ("sp", Var::Sp),
    ("bi", Var::Bi),
    ("bp", Var::Bp),
    ("t", Var::T),
    ("tr", Var::Tr),
    ("T", Var::TGmt),
    ("Ts", Var::Ts),
    ("ms", Var::Ms),
    ("trg", Var::Trg),
    ("ts", Var::TsState),
    ("tsc", Var::Tsc),
    ("f", Var::F),
    ("ft", Var::Ft),
    ("b", Var::B),
    ("s", Var::S),
    ("Th", Var::Th),
    ("Ti", Var::Ti),
    ("TR", Var::TRecv),
    ("Tq", Var::Tq),
    ("Tw", Var::Tw),
    ("Tc", Var::Tc),
    ("Tr", Var::TResp),
    ("Ta", Var::Ta),
    ("Tt", Var::Tt),
    ("ST", Var::St),
    ("B", Var::Bytes),
    ("U", Var::BytesIn),
    ("ac", Var::Ac),
    ("fc", Var::Fc),
    ("bc", Var::Bc),
    ("sc", Var::Sc),
    ("rc", Var::Rc),
    ("sq", Var::Sq),
    ("bq", Var::Bq),
    ("hr", Var::Hr),
    ("hrl", Var::Hrl),
    ("hs", Var::Hs),
    ("hsl", Var::Hsl),
    ("r", Var::R),
    ("HM", Var::Hm),
    ("HU", Var::Hu),
    ("HP", Var::Hp),
    ("HPO", Var::Hpo),
    ("HQ", Var::Hq),
    ("HV", Var::Hv),
    ("ID", Var::Id),
    ("pid", Var::Pid),
    ("H", Var::H),
    ("rt", Var::Rt),
    ("CC", Var::Cc),
    ("CS", Var::Cs),
    ("sslv", Var::Sslv),
    ("sslc", Var::Sslc),
    ("Td", Var::Td),
    ("Tu", Var::Tu),
    ("Tl", Var::Tl),
    ("trl", Var::Trl),
    ("lc", Var::Lc),
];

impl Var {
    pub fn parse(name: &str) -> Option<Var> {
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, v)| *v == self).map_or("", |(n, _)| n)
    }

    /// The capture lists: empty, they print nothing at all (not even `%{+Q}` quotes).
    fn is_capture_list(self) -> bool {
        matches!(self, Var::Hr | Var::Hrl | Var::Hs | Var::Hsl)
    }

    /// Dates, timers and the termination state: HAProxy writes them unquoted even under `+Q`.
    fn never_quoted(self) -> bool {
        use Var::*;
        matches!(self, T | Tr | TGmt | Ms | Trg | TsState | Tsc | Tl | Trl)
    }

    /// Text that never holds a byte needing an escape (addresses, dates, fixed words), so its
    /// bytes need not be checked.
    fn always_plain(self) -> bool {
        use Var::*;
        matches!(self, Ci | Fi | Si | Bi | T | Tr | TGmt | Ms | Trg | TsState | Tsc | Hv | Tl | Trl | Sslv | Sslc)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags {
    quote: bool,
    hex: bool,
    escape: bool,
}

impl Flags {
    fn apply(mut self, list: &[String]) -> Flags {
        for f in list {
            match f.as_str() {
                "+Q" => self.quote = true,
                "-Q" => self.quote = false,
                "+X" => self.hex = true,
                "-X" => self.hex = false,
                "+E" => self.escape = true,
                "-E" => self.escape = false,
                _ => {}
            }
        }
        self
    }
}

#[derive(Debug, Clone)]
enum Item {
    /// Text. HAProxy writes a space only after something that printed: `space` is a leading
    /// run of spaces (one space, or none after a space), `text` the rest with inner runs of
    /// spaces already collapsed to one.
    Lit { space: bool, text: Box<[u8]> },
    /// A variable, with the `%o` flags before it and its own applied; `plain`: its text never
    /// needs an escape (see [`Var::always_plain`]).
    Var { var: Var, flags: Flags, plain: bool },
    /// A sample; `stream`: the record alone cannot answer it (see [`record_answers`]).
    Expr { expr: SampleExpr, flags: Flags, stream: bool },
}

/// A compiled `log-format` (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct LineFormat {
    items: Vec<Item>,
    /// Rendering reads the request's headers (`%[...]` or `%U`).
    needs_headers: bool,
    /// A `%[...]` reads what only the stream knows (see [`record_answers`]): the line is then
    /// rendered with the stream's context, which the proxy keeps until the line is written.
    needs_stream: bool,
}

impl LineFormat {
    /// Compiles a parsed format; an unknown variable, or a fetch that has no value once the
    /// request was forwarded (see [`gone_at_log_time`]), is refused.
    pub fn compile(f: &LogFormat) -> Result<LineFormat, String> {
        let mut items = Vec::with_capacity(f.segments.len());
        let mut global = Flags::default();
        for seg in &f.segments {
            match seg {
                Segment::Literal(t) => items.push(literal(t)),
                Segment::LogVar { name, flags } if name == "o" => global = global.apply(flags),
                Segment::LogVar { name, flags } => {
                    let var = Var::parse(name).ok_or_else(|| format!("unknown log-format variable '%{name}'"))?;
                    let mut flags = global.apply(flags);
                    flags.quote &= !var.never_quoted();
                    items.push(Item::Var { var, flags, plain: var.always_plain() });
                }
                Segment::Expr { expr, flags } => {
                    if let Some((name, why)) = gone_at_log_time(&expr.fetch) {
                        return Err(format!(
                            "sample fetch '{name}' cannot be used in a log format: it needs {why}, which is \
                             gone when the line is written (HAProxy 2.6 refuses it too)"
                        ));
                    }
                    let stream = !record_answers(expr);
                    items.push(Item::Expr { expr: expr.clone(), flags: global.apply(flags), stream })
                }
            }
        }
        let needs_headers = items.iter().any(|i| match i {
            Item::Expr { .. } => true,
            Item::Var { var, .. } => *var == Var::BytesIn,
            Item::Lit { .. } => false,
        });
        let needs_stream = items.iter().any(|i| matches!(i, Item::Expr { stream: true, .. }));
        Ok(LineFormat { items, needs_headers, needs_stream })
    }

    pub fn needs_headers(&self) -> bool {
        self.needs_headers
    }

    pub fn needs_stream(&self) -> bool {
        self.needs_stream
    }

    /// The variables the format uses, in order.
    pub fn vars(&self) -> impl Iterator<Item = Var> + '_ {
        self.items.iter().filter_map(|i| match i {
            Item::Var { var, .. } => Some(*var),
            _ => None,
        })
    }

    pub fn render(&self, rec: &Record) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.render_into(&mut out, rec);
        out
    }

    /// Renders the line for `rec`, appended to `out`: variables HAProxy's way (`-` when absent,
    /// `%{+Q}` quotes, `%{+X}` hex numbers), samples as text.
    pub fn render_into(&self, out: &mut Vec<u8>, rec: &Record) {
        let mut maps = None;
        self.items_into(out, rec, &mut |e, _| e.eval_str(rec, maps.get_or_insert_with(MapSet::default)), false);
    }

    /// Renders the line with the samples the record cannot answer read from `ctx` (the stream:
    /// variables, TLS, stick counters, maps, ...), the rest from `rec` as [`Self::render_into`].
    pub fn render_with(&self, out: &mut Vec<u8>, rec: &Record, ctx: &dyn SampleContext, maps: &dyn Maps) {
        self.render_samples(out, rec, ctx, maps, false);
    }

    /// [`Self::render_with`] for a unique id: a sample with no value leaves nothing (not `-`,
    /// quoted or not), as HAProxy 2.6 builds `unique-id-format`.
    pub fn render_id(&self, out: &mut Vec<u8>, rec: &Record, ctx: &dyn SampleContext, maps: &dyn Maps) {
        self.render_samples(out, rec, ctx, maps, true);
    }

    /// [`Self::render_id`] with every sample read from `ctx`, even those the record answers:
    /// for an id made when part of the request is gone (`ctx` then lacks it, the record not).
    pub fn render_id_from(&self, out: &mut Vec<u8>, rec: &Record, ctx: &dyn SampleContext, maps: &dyn Maps) {
        self.items_into(out, rec, &mut |e, _| e.eval_str(ctx, maps), true);
    }

    fn render_samples(&self, out: &mut Vec<u8>, rec: &Record, ctx: &dyn SampleContext, maps: &dyn Maps, id: bool) {
        let mut none = None;
        let mut sample = |e: &SampleExpr, stream| match stream {
            true => e.eval_str(ctx, maps),
            false => e.eval_str(rec, none.get_or_insert_with(MapSet::default)),
        };
        self.items_into(out, rec, &mut sample, id);
    }

    /// `empty_absent`: a sample without a value leaves nothing (unique ids).
    fn items_into(
        &self,
        out: &mut Vec<u8>,
        rec: &Record,
        sample: &mut dyn FnMut(&SampleExpr, bool) -> Option<Vec<u8>>,
        empty_absent: bool,
    ) {
        let mut last_space = true;
        for item in &self.items {
            let start = out.len();
            match item {
                Item::Lit { space, text } => {
                    if *space && !last_space {
                        out.push(b' ');
                        last_space = true;
                    }
                    if let Some(&l) = text.last() {
                        put(out, text);
                        last_space = l == b' ';
                    }
                    continue;
                }
                &Item::Var { var, flags, plain } => var_into(out, rec, var, flags, plain),
                Item::Expr { expr, flags, stream } => match sample(expr, *stream) {
                    Some(v) => emit(out, &v, *flags),
                    None if empty_absent => {}
                    None => absent(out, *flags),
                },
            }
            if out.len() > start {
                last_space = false;
            }
        }
    }
}

/// What a fetch that reads the request buffer needs, when the line is written after the buffer
/// was forwarded; `None` for every other fetch. HAProxy 2.6 refuses the same ones in a log
/// format ("may not be reliably used here"). Header fetches stay: lbha keeps the headers.
fn gone_at_log_time(f: &Fetch) -> Option<(&'static str, &'static str)> {
    let name = match f {
        Fetch::ReqBody => return Some(("req.body", "the buffered request body")),
        Fetch::ReqLen => "req.len",
        Fetch::ReqPayload { .. } => "req.payload",
        Fetch::ReqSslSni => "req.ssl_sni",
        Fetch::ReqSslHelloType => "req.ssl_hello_type",
        _ => return None,
    };
    Some((name, "the request buffer"))
}

/// Whether the log record alone answers the expression (the request and response heads,
/// addresses, captures, the unique id, dates): the line then needs nothing of the stream.
/// Everything else (variables, TLS details, stick counters, server state, maps, `env`, `rand`,
/// `http_auth`, converters reading variables or tables) is read through the stream's context.
fn record_answers(e: &SampleExpr) -> bool {
    use Fetch::*;
    let fetch = matches!(
        e.fetch,
        Const(_)
            | Src
            | SrcPort
            | Dst
            | DstPort
            | Base
            | Base32
            | Path
            | PathQ
            | Url
            | Query
            | UrlParam { .. }
            | UrlIp
            | ReqHdr { .. }
            | ReqHdrCnt { .. }
            | ReqHdrNames { .. }
            | Cook(_)
            | CookCnt(_)
            | Method
            | ReqVer
            | ResHdr { .. }
            | Status
            | SslFc
            | Date { .. }
            | Hostname
            | UniqueId
            | Capture { .. }
            | Always(_)
            | ProtoHttp
    );
    fetch && !e.convs.iter().any(Converter::reads_stream)
}

/// A literal's item: see [`Item::Lit`].
fn literal(t: &[u8]) -> Item {
    let rest = &t[t.iter().take_while(|&&b| b == b' ').count()..];
    let mut text = Vec::with_capacity(rest.len());
    for &b in rest {
        if !(b == b' ' && text.last() == Some(&b' ')) {
            text.push(b);
        }
    }
    Item::Lit { space: rest.len() < t.len(), text: text.into_boxed_slice() }
}

/// Short text (separators, most variables) without a call to `memcpy`.
#[inline]
fn put(out: &mut Vec<u8>, t: &[u8]) {
    if t.len() <= 2 {
        for &b in t {
            out.push(b);
        }
    } else {
        out.extend_from_slice(t);
    }
}

/// One variable, written straight into the line; only text that needs escaping (rare) is
/// copied out and escaped.
fn var_into(out: &mut Vec<u8>, rec: &Record, var: Var, fl: Flags, plain: bool) {
    // Quoted, `%hrl`/`%hsl` quote each slot as HAProxy does (`"a" ""`).
    if fl.quote && matches!(var, Var::Hrl | Var::Hsl) {
        let slots = if var == Var::Hrl { &rec.captures_req } else { &rec.captures_res };
        for (i, v) in slots.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            emit(out, v.as_deref().unwrap_or("").as_bytes(), fl);
        }
        return;
    }
    let start = out.len();
    if fl.quote {
        out.push(b'"');
    }
    let body = out.len();
    match rec.var(var, out) {
        Some(Val::Int(n)) => {
            out.truncate(start);
            // A redispatched request's retries: HAProxy's `+` before the number, never quoted.
            if var == Var::Rc && rec.redispatched {
                out.push(b'+');
            }
            if fl.hex {
                use std::io::Write;
                // HAProxy pads these three to 4 hex digits (`%04X`).
                let _ = if matches!(var, Var::Ts | Var::Rt | Var::Lc) {
                    write!(out, "{n:04X}")
                } else {
                    write!(out, "{n:X}")
                };
            } else {
                super::format::push_int(out, n);
            }
        }
        Some(Val::Text) if out.len() == body && var.is_capture_list() => out.truncate(start),
        Some(Val::Text) if plain || all_plain(&out[body..]) => {
            if fl.quote {
                out.push(b'"');
            }
        }
        Some(Val::Text) => {
            let val = out[body..].to_vec();
            out.truncate(start);
            emit(out, &val, fl);
        }
        None => {
            out.truncate(start);
            absent(out, fl);
        }
    }
}

/// An absent value: `-`, or `""` when quoted (HAProxy's `lf_text`).
fn absent(out: &mut Vec<u8>, fl: Flags) {
    if fl.quote {
        out.extend_from_slice(b"\"\"");
    } else {
        out.push(b'-');
    }
}

/// Bytes a log line carries as they are, whatever the flags: not a control byte, `"` or `\`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 256 {
        t[b] = b != 0x7f && b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// Whether every byte is plain: a reduction without an early exit.
fn all_plain(text: &[u8]) -> bool {
    text.iter().fold(true, |ok, &b| ok & PLAIN[b as usize])
}

fn emit(out: &mut Vec<u8>, text: &[u8], flags: Flags) {
    if !flags.quote && all_plain(text) {
        out.extend_from_slice(text);
        return;
    }
    if flags.quote {
        out.push(b'"');
    }
    for &b in text {
        match b {
            b'"' if flags.quote || flags.escape => out.extend_from_slice(b"#22"),
            b'\\' if flags.escape => out.extend_from_slice(b"\\\\"),
            // HAProxy writes control bytes in logs as `#XX`.
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'#', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            _ => out.push(b),
        }
    }
    if flags.quote {
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::tests::rec;

    fn line(fmt: &str, r: &Record) -> String {
        let f = LineFormat::compile(&LogFormat::parse(fmt).unwrap()).unwrap();
        String::from_utf8(f.render(r)).unwrap()
    }

    /// The second record: values missing, text that needs escaping, IPv6, TLS.
    fn rec2() -> Record {
        let mut r = rec();
        r.captures_req = vec![Some("a\"b\\c\x01".into()), None];
        r.captures_res.clear();
        (r.server_addr, r.backend_src, r.status, r.tr, r.tt) = (None, None, None, -1, -1);
        (r.tls, r.tls_version, r.tls_cipher, r.unique_id) = (true, None, None, None);
        r.cookie_req = Some("SID=\"x\"".into());
        r.cookie_res = Some("S=1".into());
        r.client = "[2001:db8::1]:443".parse().unwrap();
        (r.method, r.uri, r.version) = (None, None, None);
        r.hostname = "h\"st";
        r
    }

    #[test]
    fn every_variable_with_flags_renders_as_the_interpreting_renderer_did() {
        const GOLDEN: &[(usize, &str, &str)] = include!("testdata/vars_golden.rs");
        let recs = [rec(), rec2()];
        let mut seen = std::collections::HashSet::new();
        for &(r, fmt, want) in GOLDEN {
            assert_eq!(line(fmt, &recs[r]), want, "record {r}, {fmt}");
            seen.insert(fmt.rsplit(['%', '}']).next().unwrap());
        }
        // Every variable but the local dates (their text depends on the machine's zone).
        for &(name, _) in NAMES {
            assert!(seen.contains(name) || matches!(name, "Tl" | "trl"), "{name} untested");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for &(name, var) in NAMES {
            assert_eq!(Var::parse(name), Some(var));
            assert_eq!(var.name(), name);
        }
        let err = LineFormat::compile(&LogFormat::parse("%ci %zz").unwrap()).unwrap_err();
        assert!(err.contains("%zz"), "{err}");
    }

    #[test]
    fn literals_are_compiled_with_their_spacing() {
        let lit = |t: &[u8]| match literal(t) {
            Item::Lit { space, text } => (space, text.to_vec()),
            _ => unreachable!(),
        };
        assert_eq!(lit(b"a  b"), (false, b"a b".to_vec()));
        assert_eq!(lit(b"  x  "), (true, b"x ".to_vec()));
        assert_eq!(lit(b"   "), (true, Vec::new()));
        assert_eq!(lit(b"] "), (false, b"] ".to_vec()));
        // Around variables that print nothing (`%hr` without captures) or something.
        let mut r = rec();
        r.captures_req.clear();
        assert_eq!(line("%ST  %hr   %ST ", &r), "200 200 ");
        assert_eq!(line("   %hr x", &r), "x");
        assert_eq!(line("%hr  ", &r), "");
    }

    #[test]
    fn o_flags_apply_to_the_rest_of_the_line_and_are_resolved_once() {
        let f = LineFormat::compile(&LogFormat::parse("%ST %{+Q}o %ci %{-Q}b %{+X}ST").unwrap()).unwrap();
        assert_eq!(f.vars().map(Var::name).collect::<Vec<_>>(), ["ST", "ci", "b", "ST"]);
        let flags: Vec<Flags> = f
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Var { flags, .. } => Some(*flags),
                _ => None,
            })
            .collect();
        let q = Flags { quote: true, ..Flags::default() };
        assert_eq!(flags, [Flags::default(), q, Flags::default(), Flags { hex: true, ..q }]);
        assert_eq!(String::from_utf8(f.render(&rec())).unwrap(), "200 \"192.0.2.7\" app C8");
    }

    #[test]
    fn needs_headers_only_for_samples_and_request_bytes() {
        let needs = |s: &str| LineFormat::compile(&LogFormat::parse(s).unwrap()).unwrap().needs_headers();
        assert!(!needs(crate::proxy::logrec::HTTPLOG));
        assert!(needs("%U"));
        assert!(needs("%[req.hdr(host)]"));
    }

    #[test]
    fn needs_stream_only_for_what_the_record_cannot_answer() {
        let needs = |s: &str| LineFormat::compile(&LogFormat::parse(s).unwrap()).unwrap().needs_stream();
        assert!(!needs(crate::proxy::logrec::HTTPLOG));
        for f in ["%[req.hdr(host),lower]", "%[src] %[status] %[capture.req.hdr(0)]", "%[path,add(1)]", "%[unique-id]"]
        {
            assert!(!needs(f), "{f}");
        }
        for f in [
            "%[var(txn.x)]",
            "%[ssl_fc_sni]",
            "%[sc_http_req_rate(0)]",
            "%[env(HOME)]",
            "%[be_conn]",
            "%[req.hdr(host),map(/m)]",
            "%[src,table_http_req_rate(t)]",
            "%[path,concat(x,txn.v)]",
            "%[status,add(txn.n)]",
            "%[path,strcmp(txn.p)]",
        ] {
            assert!(needs(f), "{f}");
        }
    }

    #[test]
    fn fetches_of_the_request_buffer_are_refused_by_name() {
        for (f, name) in [
            ("%[req.body]", "req.body"),
            ("x %[req.len]", "req.len"),
            ("%[req.payload(0,4)]", "req.payload"),
            ("%[req.ssl_sni]", "req.ssl_sni"),
            ("%[req_ssl_hello_type]", "req.ssl_hello_type"),
        ] {
            let err = LineFormat::compile(&LogFormat::parse(f).unwrap()).unwrap_err();
            assert!(err.contains(&format!("'{name}'")), "{f}: {err}");
        }
    }

    /// A fake stream: one variable, an SNI and a map.
    struct Stream;
    impl SampleContext for Stream {
        fn var(&self, _: &crate::sample::VarRef) -> Option<crate::sample::Value> {
            Some(crate::sample::Value::Str(b"v1".to_vec()))
        }
        fn tls_sni(&self) -> Option<&str> {
            Some("sni.test")
        }
        fn hostname(&self) -> Option<&str> {
            Some("from-stream")
        }
    }
    struct OneMap;
    impl Maps for OneMap {
        fn lookup(&self, path: &str, _: crate::sample::MatchKind, key: &crate::sample::Value) -> Option<&[u8]> {
            (path == "/m" && matches!(key, crate::sample::Value::Str(k) if k == b"example.com")).then_some(b"back1")
        }
    }

    #[test]
    fn render_with_reads_the_stream_for_what_the_record_lacks() {
        let f = "%ci %{+Q}[var(txn.x)] %[ssl_fc_sni] %[str(example.com),map(/m)] %[hostname] %[var(txn.y)]";
        let f = LineFormat::compile(&LogFormat::parse(f).unwrap()).unwrap();
        let mut out = Vec::new();
        f.render_with(&mut out, &rec(), &Stream, &OneMap);
        // A stream item reads all from the stream; `hostname` alone is the record's (lb1).
        assert_eq!(String::from_utf8(out).unwrap(), "192.0.2.7 \"v1\" sni.test back1 lb1 v1");
        // Without the stream, the record alone: absent.
        assert_eq!(String::from_utf8(f.render(&rec())).unwrap(), "192.0.2.7 \"\" - - lb1 -");
    }

    /// A unique id leaves nothing for a sample without a value, quoted or not (HAProxy 2.6 makes
    /// `a%[req.hdr(x-none)]b%{+Q}[var(txn.none)]c` into `abc`); variables render as in a line.
    #[test]
    fn render_id_drops_samples_without_a_value() {
        let f = "a%[req.hdr(x-none)]b%{+Q}[var(txn.none)]c-%ci-%[var(txn.x)]";
        let f = LineFormat::compile(&LogFormat::parse(f).unwrap()).unwrap();
        struct Nothing;
        impl SampleContext for Nothing {}
        let mut out = Vec::new();
        f.render_id(&mut out, &rec(), &Nothing, &OneMap);
        assert_eq!(String::from_utf8(out).unwrap(), "abc-192.0.2.7-");
        let mut out = Vec::new();
        // (The test stream has every variable: `v1`.)
        f.render_id(&mut out, &rec(), &Stream, &OneMap);
        assert_eq!(String::from_utf8(out).unwrap(), "ab\"v1\"c-192.0.2.7-v1");
        let mut out = Vec::new();
        f.render_with(&mut out, &rec(), &Nothing, &OneMap);
        assert_eq!(String::from_utf8(out).unwrap(), "a-b\"\"c-192.0.2.7--", "a line keeps its dashes");
    }

    /// An id made once the request is gone reads its headers from the stream, which lacks
    /// them, not from the record, which kept them; the record's own variables still render.
    #[test]
    fn render_id_from_reads_every_sample_from_the_stream() {
        let f = LineFormat::compile(&LogFormat::parse("u-%[req.hdr(host)]-%ci-%HM").unwrap()).unwrap();
        struct Nothing;
        impl SampleContext for Nothing {}
        let mut out = Vec::new();
        f.render_id(&mut out, &rec(), &Nothing, &OneMap);
        assert_eq!(String::from_utf8(out).unwrap(), "u-example.com-192.0.2.7-GET");
        let mut out = Vec::new();
        f.render_id_from(&mut out, &rec(), &Nothing, &OneMap);
        assert_eq!(String::from_utf8(out).unwrap(), "u--192.0.2.7-GET");
    }

    #[test]
    fn plain_bytes_are_what_the_escaper_leaves_alone() {
        for b in 0..=255u8 {
            let mut out = Vec::new();
            emit(&mut out, &[b], Flags { escape: true, ..Flags::default() });
            assert_eq!(PLAIN[b as usize], out == [b], "byte {b:#x}");
        }
    }

    /// What HAProxy 2.6 logs for this format (checked with it): a quoted absent value is `""`,
    /// a capture list quotes each slot (and an empty list prints nothing), dates, timers, the
    /// termination state and numbers are never quoted.
    #[test]
    fn quotes_as_haproxy() {
        let mut r = rec();
        (r.captures_res, r.unique_id, r.cookie_req, r.cookie_res) = (Vec::new(), None, None, None);
        r.termination = ['-', '-'];
        let fmt = "%{+Q}CC|%{+Q}hrl|%{+Q}hr|%{+Q}b|%{+Q}CS|%{+Q}hsl|%{+Q}ID|%{+Q}[var(txn.nope)]|%CC|%[var(txn.nope)]|\
                   %{+Q}trg|%{+Q}ms|%{+Q}tsc|%{+Q}ST|%{+Q}ci";
        let want = r#"""|"example.com" ""|"{example.com|}"|"app"|""||""|""|-|-|05/Nov/2026:02:49:33 +0000|123|----|200|"192.0.2.7""#;
        assert_eq!(line(fmt, &r), want);
    }
}
