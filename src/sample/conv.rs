//! Converters: the typed form of `,name(args)` and how each one's arguments are checked, as
//! HAProxy 2.6 checks them at load time. Evaluation lives in `conv_eval`.

use super::ParseError;
use super::args::{Args, Call, parse_sint};
use super::map::MatchKind;
use super::value::SmpType;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Variable scopes of `set-var(scope.name)` and `var(scope.name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarScope {
    Proc,
    Sess,
    Txn,
    Req,
    Res,
    Check,
}

/// A variable reference such as `txn.host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarRef {
    pub scope: VarScope,
    pub name: String,
}

impl VarRef {
    /// Parses `scope.name`; the name is letters, digits, `.` and `_`, as in HAProxy.
    pub fn parse(s: &str) -> Option<VarRef> {
        let (scope, name) = s.split_once('.')?;
        let scope = match scope {
            "proc" => VarScope::Proc,
            "sess" => VarScope::Sess,
            "txn" => VarScope::Txn,
            "req" => VarScope::Req,
            "res" => VarScope::Res,
            "check" => VarScope::Check,
            _ => return None,
        };
        let ok = !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_');
        ok.then(|| VarRef { scope, name: name.to_string() })
    }
}

/// The argument of `add`, `sub`, ... and `and`, `or`, `xor`: a constant or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Int(i64),
    Var(VarRef),
}

/// How `json` reads its input (`ascii`, `utf8`, `utf8s`, `utf8p`, `utf8ps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMode {
    Ascii,
    /// UTF-8, decoded as HAProxy's `utf8_next`; `skip` drops a flawed sequence instead of
    /// failing, `permissive` accepts overlong encodings (surrogates and bad sequences never).
    Utf8 {
        skip: bool,
        permissive: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Crc32,
    Crc32c,
    Djb2,
    Sdbm,
    Wt6,
}

/// What a `map_<match>_<output>` converter gives: the value as written, an integer or an
/// address (checked when the map loads and for the default value when the converter is parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOut {
    Str,
    Int,
    Ip,
}

impl MapOut {
    /// A map value (or default) as this output type; `None` when it is not one.
    pub fn value(self, v: &[u8]) -> Option<super::Value> {
        use super::Value;
        match self {
            MapOut::Str => Some(Value::Str(v.to_vec())),
            MapOut::Int => parse_sint(std::str::from_utf8(v).ok()?).map(Value::Sint),
            MapOut::Ip => Value::Str(v.to_vec()).cast(SmpType::Addr),
        }
    }

    pub fn ty(self) -> SmpType {
        match self {
            MapOut::Str => SmpType::Str,
            MapOut::Int => SmpType::Sint,
            MapOut::Ip => SmpType::Addr,
        }
    }
}

/// The message digests of `digest` and `hmac` (OpenSSL's names for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    fn from_name(name: &str) -> Option<DigestAlg> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => DigestAlg::Sha1,
            "sha224" | "sha2-224" | "sha-224" => DigestAlg::Sha224,
            "sha256" | "sha2-256" | "sha-256" => DigestAlg::Sha256,
            "sha384" | "sha2-384" | "sha-384" => DigestAlg::Sha384,
            "sha512" | "sha2-512" | "sha-512" => DigestAlg::Sha512,
            _ => return None,
        })
    }
}

/// A condition of `set-var(var,cond...)`: the variable is set only when all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarCond {
    /// `ifexists` / `ifnotexists` (and HAProxy's `ifset` / `ifnotset`, the same for lbha's
    /// variables, which `unset-var` removes).
    Exists(bool),
    /// `ifempty` / `ifnotempty`: the new value is an empty string or binary.
    Empty(bool),
    /// `ifgt` / `iflt`: the variable's integer is greater / less than the new one (true when
    /// either is no integer).
    Gt,
    Lt,
}

impl VarCond {
    pub(crate) fn parse(s: &str) -> Option<VarCond> {
        Some(match s {
            "ifexists" | "ifset" => VarCond::Exists(true),
            "ifnotexists" | "ifnotset" => VarCond::Exists(false),
            "ifempty" => VarCond::Empty(true),
            "ifnotempty" => VarCond::Empty(false),
            "ifgt" => VarCond::Gt,
            "iflt" => VarCond::Lt,
            _ => return None,
        })
    }

    /// Whether the condition holds for `old` (the variable now) and `new` (the input).
    pub fn holds(self, old: Option<&super::Value>, new: &super::Value) -> bool {
        use super::Value as V;
        match self {
            VarCond::Exists(want) => old.is_some() == want,
            VarCond::Empty(want) => matches!(new, V::Str(s) | V::Bin(s) if s.is_empty()) == want,
            // Only integers compare; otherwise the check holds, as in HAProxy.
            VarCond::Gt => !matches!((old, new), (Some(V::Sint(o)), V::Sint(n)) if o <= n),
            VarCond::Lt => !matches!((old, new), (Some(V::Sint(o)), V::Sint(n)) if o >= n),
        }
    }
}

/// `hmac`'s key: base64 decoded once at load, or a variable holding base64 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HmacKey {
    Const(Vec<u8>),
    Var(VarRef),
}

/// A `jwt_verify` argument: constant text or a variable holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtArg {
    Const(Vec<u8>),
    Var(VarRef),
}

/// Unit of `http_date`'s input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    S,
    Ms,
    Us,
}

#[derive(Debug, Clone)]
pub enum Converter {
    Lower,
    Upper,
    /// `map*`: look the sample up in the map file `path` indexed for `kind`; `out` is the
    /// value's type, `regm` (`map_regm`) expands `\N` in the value with the regex's groups.
    Map {
        kind: MatchKind,
        path: String,
        default: Option<super::Value>,
        out: MapOut,
        regm: bool,
    },
    Regsub {
        re: regex::bytes::Regex,
        subst: Vec<u8>,
        global: bool,
    },
    Field {
        index: i64,
        seps: Vec<u8>,
        count: i64,
    },
    Word {
        index: i64,
        seps: Vec<u8>,
        count: i64,
    },
    Bytes {
        start: i64,
        len: Option<i64>,
    },
    Length,
    Hex,
    Base64,
    B64Dec,
    UrlDec {
        form: bool,
    },
    Json(JsonMode),
    IpMask {
        v4: Ipv4Addr,
        v6: Option<Ipv6Addr>,
    },
    Concat {
        prefix: Vec<u8>,
        var: Option<VarRef>,
        suffix: Vec<u8>,
    },
    Arith(ArithOp, Operand),
    Bool,
    Not,
    Neg,
    Strcmp(VarRef),
    /// `crc32`, `djb2`, `sdbm`; `avalanche` applies HAProxy's `full_hash` to the result.
    Hash {
        kind: HashKind,
        avalanche: bool,
    },
    /// `xxh32([seed])` (unsigned 32 bits) and `xxh3([seed])` (signed 64 bits).
    Xxh32 {
        seed: i64,
    },
    Xxh3 {
        seed: i64,
    },
    Xxh64 {
        seed: i64,
    },
    Sha1,
    Sha2 {
        bits: u16,
    },
    /// `ltime` (`local` true) and `utime`: strftime of a Unix time plus `offset` seconds.
    Time {
        local: bool,
        format: String,
        offset: i64,
    },
    HttpDate {
        offset: i64,
        unit: TimeUnit,
    },
    /// `table_*(table)` and `in_table(table)`: the input looked up in a stick table.
    Table(Box<super::StickFetch>),
    /// `url_enc([query])`: percent-encodes all but RFC 3986's unreserved characters.
    UrlEnc,
    Ltrim(Vec<u8>),
    Rtrim(Vec<u8>),
    CutCrlf,
    Even,
    Odd,
    Cpl,
    /// `be2dec(sep,chunk[,truncate])` / `be2hex([sep][,chunk][,truncate])`.
    Be2Dec {
        sep: Vec<u8>,
        chunk: usize,
        truncate: bool,
    },
    Be2Hex {
        sep: Vec<u8>,
        chunk: usize,
        truncate: bool,
    },
    Htonl,
    Hex2i,
    Ub64Enc,
    Ub64Dec,
    Digest(DigestAlg),
    Hmac(DigestAlg, HmacKey),
    SecureMemcmp(VarRef),
    HostOnly,
    PortOnly,
    /// `add_item(delim[,var][,suffix])`.
    AddItem {
        delim: Vec<u8>,
        var: Option<VarRef>,
        suffix: Vec<u8>,
    },
    /// `iif(true,false)`.
    Iif(Vec<u8>, Vec<u8>),
    /// `json_query(path[,int])`.
    JsonQuery {
        path: super::json::JsonPath,
        int: bool,
    },
    /// `jwt_header_query` / `jwt_payload_query([path[,int]])`: the token's decoded part, or a
    /// `json_query` of it.
    JwtQuery {
        payload: bool,
        path: Option<super::json::JsonPath>,
        int: bool,
    },
    /// `jwt_verify(alg,key)`: HAProxy's code (1 verified, 0 not, negative: see `jwt`).
    JwtVerify {
        alg: JwtArg,
        key: JwtArg,
    },
    /// `set-var(var[,cond...])`: stores the input and passes it on; `unset-var(var)`.
    SetVar(VarRef, Vec<VarCond>),
    UnsetVar(VarRef),
}

impl Converter {
    /// The type the input is cast to before the converter runs, and the type it produces.
    pub fn types(&self) -> (SmpType, SmpType) {
        use SmpType as T;
        match self {
            Converter::Lower | Converter::Upper | Converter::Regsub { .. } => (T::Str, T::Str),
            Converter::Field { .. } | Converter::Word { .. } | Converter::UrlDec { .. } => (T::Str, T::Str),
            Converter::Json(_) | Converter::Concat { .. } => (T::Str, T::Str),
            Converter::Map { kind: MatchKind::Int, out, .. } => (T::Sint, out.ty()),
            Converter::Map { kind: MatchKind::Ip, out, .. } => (T::Addr, out.ty()),
            Converter::Map { out, .. } => (T::Str, out.ty()),
            Converter::Bytes { .. } | Converter::Sha1 | Converter::Sha2 { .. } => (T::Bin, T::Bin),
            Converter::Length | Converter::Strcmp(_) => (T::Str, T::Sint),
            Converter::Hex | Converter::Base64 => (T::Bin, T::Str),
            Converter::B64Dec => (T::Str, T::Bin),
            Converter::IpMask { .. } => (T::Addr, T::Addr),
            Converter::Arith(..) | Converter::Neg => (T::Sint, T::Sint),
            Converter::Bool | Converter::Not => (T::Sint, T::Bool),
            Converter::Hash { .. } | Converter::Xxh64 { .. } => (T::Bin, T::Sint),
            Converter::Xxh32 { .. } | Converter::Xxh3 { .. } => (T::Bin, T::Sint),
            Converter::Time { .. } | Converter::HttpDate { .. } => (T::Sint, T::Str),
            // Any input: it becomes a key of the table's type when applied.
            Converter::Table(f) => (T::Str, f.out_type()),
            Converter::UrlEnc | Converter::Ltrim(_) | Converter::Rtrim(_) | Converter::CutCrlf => (T::Str, T::Str),
            Converter::HostOnly | Converter::AddItem { .. } => (T::Str, T::Str),
            Converter::Even | Converter::Odd => (T::Sint, T::Bool),
            Converter::Cpl => (T::Sint, T::Sint),
            Converter::Be2Dec { .. } | Converter::Be2Hex { .. } | Converter::Ub64Enc => (T::Bin, T::Str),
            Converter::Htonl => (T::Sint, T::Bin),
            Converter::Hex2i | Converter::PortOnly => (T::Str, T::Sint),
            Converter::Ub64Dec => (T::Str, T::Bin),
            Converter::Digest(_) | Converter::Hmac(..) => (T::Bin, T::Bin),
            Converter::SecureMemcmp(_) => (T::Bin, T::Bool),
            Converter::Iif(..) => (T::Bool, T::Str),
            // HAProxy's "any" output: `Str` casts to every type, so nothing after is refused.
            Converter::JsonQuery { int, .. } => (T::Str, if *int { T::Sint } else { T::Str }),
            Converter::JwtQuery { int, .. } => (T::Bin, if *int { T::Sint } else { T::Str }),
            Converter::JwtVerify { .. } => (T::Bin, T::Sint),
            // The input passes through with its own type; `Str` stands for "any" here.
            Converter::SetVar(..) | Converter::UnsetVar(_) => (T::Str, T::Str),
        }
    }

    /// Whether applying it reads or writes more than its input and the request's heads:
    /// variables, maps, stick tables. A log line whose converters all say no is answered by
    /// its record alone.
    pub fn reads_stream(&self) -> bool {
        match self {
            Converter::Map { .. } | Converter::Table(_) | Converter::Strcmp(_) | Converter::SecureMemcmp(_) => true,
            Converter::SetVar(..) | Converter::UnsetVar(_) => true,
            Converter::Concat { var, .. } | Converter::AddItem { var, .. } => var.is_some(),
            Converter::Arith(_, op) => matches!(op, Operand::Var(_)),
            Converter::Hmac(_, key) => matches!(key, HmacKey::Var(_)),
            // Its keys are in the map store.
            Converter::JwtVerify { .. } => true,
            _ => false,
        }
    }

    /// Builds a converter from its call; `None` when the keyword is not a converter.
    pub(super) fn parse(input: &str, call: &Call<'_>) -> Result<Option<Converter>, ParseError> {
        let a = Args { input, call };
        let none = |c| a.count(0, 0).map(|_| Some(c));
        Ok(Some(match call.name {
            "lower" => return none(Converter::Lower),
            "upper" => return none(Converter::Upper),
            "length" => return none(Converter::Length),
            "hex" => return none(Converter::Hex),
            "base64" => return none(Converter::Base64),
            "b64dec" => return none(Converter::B64Dec),
            "bool" => return none(Converter::Bool),
            "not" => return none(Converter::Not),
            "neg" => return none(Converter::Neg),
            "sha1" => return none(Converter::Sha1),
            name if name == "map" || name.starts_with("map_") => {
                let bad = || {
                    a.err(None, "unknown map converter (expected map, map_regm or map_<str|beg|end|sub|dir|dom|reg|ip|int>[_<str|int|ip>])")
                };
                let rest = name.strip_prefix("map_").unwrap_or("str");
                let (kind, out) = rest.split_once('_').unwrap_or((rest, "str"));
                let regm = kind == "regm";
                let kind = if regm { MatchKind::Reg } else { MatchKind::from_name(kind).ok_or_else(bad)? };
                let out = match out {
                    "str" => MapOut::Str,
                    "int" => MapOut::Int,
                    "ip" => MapOut::Ip,
                    _ => return Err(bad()),
                };
                a.count(1, 2)?;
                let path = a.str(0)?;
                if path.is_empty() {
                    return Err(a.err(Some(1), "empty map file name"));
                }
                let default = match a.get(1) {
                    None => None,
                    Some(d) => Some(out.value(d.as_bytes()).ok_or_else(|| {
                        a.err(
                            Some(2),
                            format!("default value `{d}` is not of the map's output type ({})", out.ty().name()),
                        )
                    })?),
                };
                Converter::Map { kind, path: path.to_string(), default, out, regm }
            }
            "regsub" => {
                a.count(2, 3)?;
                let (mut global, mut icase) = (false, false);
                for flag in a.get(2).unwrap_or("").chars() {
                    match flag {
                        'g' => global = true,
                        'i' => icase = true,
                        other => {
                            return Err(a.err(
                                Some(3),
                                format!("invalid regex flag '{other}', only 'i' and 'g' are supported"),
                            ));
                        }
                    }
                }
                let re = regex::bytes::RegexBuilder::new(a.str(0)?)
                    .case_insensitive(icase)
                    .build()
                    .map_err(|e| a.err(Some(1), format!("bad regex: {e}")))?;
                Converter::Regsub { re, subst: a.str(1)?.as_bytes().to_vec(), global }
            }
            name @ ("field" | "word") => {
                a.count(2, 3)?;
                let index = a.sint(0)?;
                if index == 0 {
                    return Err(a.err(Some(1), "Unexpected value 0 for index"));
                }
                let seps = a.str(1)?.as_bytes().to_vec();
                if seps.is_empty() {
                    return Err(a.err(Some(2), "Empty separators list"));
                }
                let count = a.opt_sint(2, 1)?;
                if name == "field" {
                    Converter::Field { index, seps, count }
                } else {
                    Converter::Word { index, seps, count }
                }
            }
            "bytes" => {
                a.count(1, 2)?;
                // HAProxy 2.6 accepts negative values: a negative offset fails at run time and
                // a negative length means "to the end".
                let start = a.sint(0)?;
                let len = a.get(1).filter(|l| !l.is_empty()).map(|_| a.sint(1)).transpose()?;
                Converter::Bytes { start, len: len.filter(|l| *l >= 0) }
            }
            "url_dec" => {
                a.count(0, 1)?;
                Converter::UrlDec { form: a.opt_sint(0, 0)? != 0 }
            }
            "json" => {
                a.count(0, 1)?;
                let mode = match a.get(0).unwrap_or("") {
                    "" | "ascii" => JsonMode::Ascii,
                    "utf8" => JsonMode::Utf8 { skip: false, permissive: false },
                    "utf8s" => JsonMode::Utf8 { skip: true, permissive: false },
                    "utf8p" => JsonMode::Utf8 { skip: false, permissive: true },
                    "utf8ps" => JsonMode::Utf8 { skip: true, permissive: true },
                    _ => {
                        return Err(a.err(Some(1), "Allowed values are 'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'"));
                    }
                };
                Converter::Json(mode)
            }
            "ipmask" => {
                a.count(1, 2)?;
                Converter::IpMask { v4: a.mask4(0)?, v6: a.get(1).map(|_| a.mask6(1)).transpose()? }
            }
            "concat" => {
                a.count(1, 3)?;
                let var = match a.get(1).unwrap_or("") {
                    "" => None,
                    v => Some(
                        VarRef::parse(v)
                            .ok_or_else(|| a.err(Some(2), format!("failed to register variable name '{v}'")))?,
                    ),
                };
                let text = |i| a.get(i).unwrap_or("").as_bytes().to_vec();
                Converter::Concat { prefix: text(0), var, suffix: text(2) }
            }
            "add" | "sub" | "mul" | "div" | "mod" | "and" | "or" | "xor" => {
                a.count(1, 1)?;
                let op = match call.name {
                    "add" => ArithOp::Add,
                    "sub" => ArithOp::Sub,
                    "mul" => ArithOp::Mul,
                    "div" => ArithOp::Div,
                    "mod" => ArithOp::Mod,
                    "and" => ArithOp::And,
                    "or" => ArithOp::Or,
                    _ => ArithOp::Xor,
                };
                let s = a.str(0)?;
                let operand = match VarRef::parse(s) {
                    Some(v) => Operand::Var(v),
                    None => Operand::Int(
                        parse_sint(s).ok_or_else(|| a.err(Some(1), "expects an integer or a variable name"))?,
                    ),
                };
                Converter::Arith(op, operand)
            }
            "strcmp" => {
                a.count(1, 1)?;
                let s = a.str(0)?;
                Converter::Strcmp(
                    VarRef::parse(s).ok_or_else(|| a.err(Some(1), format!("`{s}` is not a variable name")))?,
                )
            }
            name @ ("crc32" | "crc32c" | "djb2" | "sdbm" | "wt6") => {
                a.count(0, 1)?;
                let kind = match name {
                    "crc32" => HashKind::Crc32,
                    "crc32c" => HashKind::Crc32c,
                    "djb2" => HashKind::Djb2,
                    "wt6" => HashKind::Wt6,
                    _ => HashKind::Sdbm,
                };
                Converter::Hash { kind, avalanche: a.opt_sint(0, 0)? != 0 }
            }
            "xxh64" => {
                a.count(0, 1)?;
                Converter::Xxh64 { seed: a.opt_sint(0, 0)? }
            }
            "xxh32" => {
                a.count(0, 1)?;
                Converter::Xxh32 { seed: a.opt_sint(0, 0)? }
            }
            "xxh3" => {
                a.count(0, 1)?;
                Converter::Xxh3 { seed: a.opt_sint(0, 0)? }
            }
            "sha2" => {
                a.count(0, 1)?;
                match a.opt_sint(0, 256)? {
                    bits @ (224 | 256 | 384 | 512) => Converter::Sha2 { bits: bits as u16 },
                    0 => Converter::Sha2 { bits: 256 },
                    _ => return Err(a.err(Some(1), "only 224, 256, 384 and 512 bits are supported")),
                }
            }
            name @ ("ltime" | "utime") => {
                a.count(1, 2)?;
                Converter::Time { local: name == "ltime", format: a.str(0)?.to_string(), offset: a.opt_sint(1, 0)? }
            }
            "http_date" => {
                a.count(0, 2)?;
                let unit = match a.get(1).unwrap_or("s") {
                    "s" => TimeUnit::S,
                    "ms" => TimeUnit::Ms,
                    "us" => TimeUnit::Us,
                    _ => return Err(a.err(Some(2), "unit must be 's', 'ms' or 'us'")),
                };
                Converter::HttpDate { offset: a.opt_sint(0, 0)?, unit }
            }
            name => return parse_more(&a, name),
        }))
    }
}

/// A variable argument (`secure_memcmp(txn.x)`), with HAProxy's error.
fn var_arg(a: &Args<'_, '_>, i: usize) -> Result<VarRef, ParseError> {
    let s = a.str(i)?;
    if s.is_empty() {
        return Err(a.err(Some(i + 1), "missing variable name"));
    }
    VarRef::parse(s).ok_or_else(|| a.err(Some(i + 1), format!("failed to register variable name '{s}'")))
}

/// `json_query`'s and the `jwt_*_query`'s optional output type: only `int`.
fn int_out(a: &Args<'_, '_>, i: usize) -> Result<bool, ParseError> {
    match a.get(i).unwrap_or("") {
        "" => Ok(false),
        "int" => Ok(true),
        _ => Err(a.err(Some(i + 1), "output_type only supports \"int\" as argument")),
    }
}

/// The converters added after the first set (and the stick-table ones): `None` when the name
/// is no converter at all.
fn parse_more(a: &Args<'_, '_>, name: &str) -> Result<Option<Converter>, ParseError> {
    let none = |c| a.count(0, 0).map(|_| Some(c));
    Ok(Some(match name {
        "cut_crlf" => return none(Converter::CutCrlf),
        "even" => return none(Converter::Even),
        "odd" => return none(Converter::Odd),
        "cpl" => return none(Converter::Cpl),
        "htonl" => return none(Converter::Htonl),
        "hex2i" => return none(Converter::Hex2i),
        "ub64enc" => return none(Converter::Ub64Enc),
        "ub64dec" => return none(Converter::Ub64Dec),
        "host_only" => return none(Converter::HostOnly),
        "port_only" => return none(Converter::PortOnly),
        "url_enc" => {
            a.count(0, 1)?;
            match a.get(0).unwrap_or("") {
                "" | "query" => Converter::UrlEnc,
                _ => return Err(a.err(Some(1), "Unexpected encode type. Allowed value is 'query'")),
            }
        }
        "ltrim" | "rtrim" => {
            a.count(1, 1)?;
            let set = a.str(0)?.as_bytes().to_vec();
            if name == "ltrim" { Converter::Ltrim(set) } else { Converter::Rtrim(set) }
        }
        "be2dec" => {
            a.count(2, 3)?;
            let chunk = a.sint(1)?;
            if !(1..=8).contains(&chunk) {
                return Err(a.err(Some(2), format!("chunk_size out of [1..8] range ({chunk})")));
            }
            let truncate = match a.opt_sint(2, 0)? {
                t @ (0 | 1) => t == 1,
                t => return Err(a.err(Some(3), format!("Unsupported truncate value ({t})"))),
            };
            Converter::Be2Dec { sep: a.str(0)?.as_bytes().to_vec(), chunk: chunk as usize, truncate }
        }
        "be2hex" => {
            a.count(0, 3)?;
            let sep = a.get(0).unwrap_or("").as_bytes().to_vec();
            let chunk = a.opt_sint(1, 0)?;
            let truncate = match a.opt_sint(2, 0)? {
                t @ (0 | 1) => t == 1,
                t => return Err(a.err(Some(3), format!("Unsupported truncate value ({t})"))),
            };
            if chunk <= 0 && (!sep.is_empty() || truncate) {
                return Err(a.err(Some(2), format!("chunk_size needs to be positive ({chunk})")));
            }
            Converter::Be2Hex { sep, chunk: chunk.max(0) as usize, truncate }
        }
        "digest" | "hmac" => {
            a.count(if name == "hmac" { 2 } else { 1 }, if name == "hmac" { 2 } else { 1 })?;
            let alg_name = a.str(0)?;
            let alg = DigestAlg::from_name(alg_name).ok_or_else(|| {
                a.err(Some(1), format!("algorithm `{alg_name}`: lbha supports sha1, sha224, sha256, sha384 and sha512"))
            })?;
            if name == "digest" {
                Converter::Digest(alg)
            } else {
                let k = a.str(1)?;
                let key = match VarRef::parse(k) {
                    Some(v) => HmacKey::Var(v),
                    None => HmacKey::Const(
                        super::codec::base64_decode(k.as_bytes())
                            .ok_or_else(|| a.err(Some(2), "failed to parse key : not a valid base64 string"))?,
                    ),
                };
                Converter::Hmac(alg, key)
            }
        }
        "secure_memcmp" => {
            a.count(1, 1)?;
            Converter::SecureMemcmp(var_arg(a, 0)?)
        }
        "add_item" => {
            a.count(2, 3)?;
            let var = match a.get(1).unwrap_or("") {
                "" => None,
                _ => Some(var_arg(a, 1)?),
            };
            let suffix = a.get(2).unwrap_or("").as_bytes().to_vec();
            if var.is_none() && suffix.is_empty() {
                return Err(a.err(None, "one of the optional arguments has to be nonempty"));
            }
            Converter::AddItem { delim: a.str(0)?.as_bytes().to_vec(), var, suffix }
        }
        "iif" => {
            a.count(2, 2)?;
            Converter::Iif(a.str(0)?.as_bytes().to_vec(), a.str(1)?.as_bytes().to_vec())
        }
        "json_query" => {
            a.count(1, 2)?;
            let p = a.str(0)?;
            if p.is_empty() {
                return Err(a.err(Some(1), "json_path must not be empty"));
            }
            let path = super::json::JsonPath::parse(p).map_err(|e| a.err(Some(1), e))?;
            Converter::JsonQuery { path, int: int_out(a, 1)? }
        }
        "jwt_header_query" | "jwt_payload_query" => {
            a.count(0, 2)?;
            let path = match a.get(0).unwrap_or("") {
                "" => None,
                p => Some(super::json::JsonPath::parse(p).map_err(|e| a.err(Some(1), e))?),
            };
            Converter::JwtQuery { payload: name == "jwt_payload_query", path, int: int_out(a, 1)? }
        }
        "jwt_verify" => {
            a.count(2, 2)?;
            // As HAProxy's `vars_check_arg`: text naming a variable is that variable.
            let arg = |i: usize| -> Result<JwtArg, ParseError> {
                let s = a.str(i)?;
                Ok(VarRef::parse(s).map_or_else(|| JwtArg::Const(s.as_bytes().to_vec()), JwtArg::Var))
            };
            let (alg, key) = (arg(0)?, arg(1)?);
            if let JwtArg::Const(name) = &alg {
                let why = match super::jwt::Alg::parse(name) {
                    None => Some(format!("unknown JWT algorithm: {}", String::from_utf8_lossy(name))),
                    Some(super::jwt::Alg::Ps) => Some("RSASSA-PSS JWS signing not managed yet".to_string()),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    return Err(a.err(Some(1), why));
                }
            }
            Converter::JwtVerify { alg, key }
        }
        "set-var" => {
            a.count(1, 5)?;
            let var = var_arg(a, 0)?;
            let mut conds = Vec::new();
            for i in 1..a.call.args.len() {
                let c = a.str(i)?;
                conds.push(VarCond::parse(c).ok_or_else(|| {
                    a.err(Some(i + 1), format!("unknown condition `{c}` (ifexists, ifnotexists, ifempty, ifnotempty, ifset, ifnotset, ifgt, iflt)"))
                })?);
            }
            Converter::SetVar(var, conds)
        }
        "unset-var" => {
            a.count(1, 1)?;
            Converter::UnsetVar(var_arg(a, 0)?)
        }
        name => return Ok(super::fetch_sc::parse_conv(a, name)?.map(|f| Converter::Table(Box::new(f)))),
    }))
}
