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
    Djb2,
    Sdbm,
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
    /// `map*`: look the sample up in the map file `path` indexed for `kind`.
    Map {
        kind: MatchKind,
        path: String,
        default: Option<Vec<u8>>,
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
}

impl Converter {
    /// The type the input is cast to before the converter runs, and the type it produces.
    pub fn types(&self) -> (SmpType, SmpType) {
        use SmpType as T;
        match self {
            Converter::Lower | Converter::Upper | Converter::Regsub { .. } => (T::Str, T::Str),
            Converter::Field { .. } | Converter::Word { .. } | Converter::UrlDec { .. } => (T::Str, T::Str),
            Converter::Json(_) | Converter::Concat { .. } => (T::Str, T::Str),
            Converter::Map { kind: MatchKind::Int, .. } => (T::Sint, T::Str),
            Converter::Map { kind: MatchKind::Ip, .. } => (T::Addr, T::Str),
            Converter::Map { .. } => (T::Str, T::Str),
            Converter::Bytes { .. } | Converter::Sha1 | Converter::Sha2 { .. } => (T::Bin, T::Bin),
            Converter::Length | Converter::Strcmp(_) => (T::Str, T::Sint),
            Converter::Hex | Converter::Base64 => (T::Bin, T::Str),
            Converter::B64Dec => (T::Str, T::Bin),
            Converter::IpMask { .. } => (T::Addr, T::Addr),
            Converter::Arith(..) | Converter::Neg => (T::Sint, T::Sint),
            Converter::Bool | Converter::Not => (T::Sint, T::Bool),
            Converter::Hash { .. } | Converter::Xxh64 { .. } => (T::Bin, T::Sint),
            Converter::Time { .. } | Converter::HttpDate { .. } => (T::Sint, T::Str),
            // Any input: it becomes a key of the table's type when applied.
            Converter::Table(f) => (T::Str, f.out_type()),
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
                let kind = match name {
                    "map" | "map_str" => MatchKind::Str,
                    _ => name.strip_prefix("map_").and_then(MatchKind::from_name).ok_or_else(|| {
                        a.err(None, "unknown map converter (expected map, map_str, map_beg, map_end, map_sub, map_dir, map_dom, map_reg, map_ip or map_int)")
                    })?,
                };
                a.count(1, 2)?;
                let path = a.str(0)?;
                if path.is_empty() {
                    return Err(a.err(Some(1), "empty map file name"));
                }
                Converter::Map { kind, path: path.to_string(), default: a.get(1).map(|d| d.as_bytes().to_vec()) }
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
            name @ ("crc32" | "djb2" | "sdbm") => {
                a.count(0, 1)?;
                let kind = match name {
                    "crc32" => HashKind::Crc32,
                    "djb2" => HashKind::Djb2,
                    _ => HashKind::Sdbm,
                };
                Converter::Hash { kind, avalanche: a.opt_sint(0, 0)? != 0 }
            }
            "xxh64" => {
                a.count(0, 1)?;
                Converter::Xxh64 { seed: a.opt_sint(0, 0)? }
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
            name => return Ok(super::fetch_sc::parse_conv(&a, name)?.map(|f| Converter::Table(Box::new(f)))),
        }))
    }
}
