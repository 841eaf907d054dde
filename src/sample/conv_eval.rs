//! Converter evaluation, following HAProxy 2.6's `sample_conv_*` functions case by case
//! (saturating arithmetic, division by zero, field counting from the end, ...).

use super::Maps;
use super::codec;
use super::conv::{ArithOp, Converter, HashKind, HmacKey, JwtArg, Operand, TimeUnit, VarRef};
use super::fetch::SampleContext;
use super::timefmt::{Tm, http_date, strftime};
use super::value::{SmpType, Value, v6_to_v4};
use sha1::Digest;
use std::net::{Ipv4Addr, Ipv6Addr};

/// HAProxy masks times to 55 bits so a huge value cannot make a negative date.
const TIME_MASK: i64 = 0x007f_ffff_ffff_ffff;

impl Converter {
    /// Applies the converter; `None` when HAProxy's converter fails (the sample is then absent).
    pub fn apply(&self, input: Value, ctx: &dyn SampleContext, maps: &dyn Maps) -> Option<Value> {
        match self {
            Converter::Table(f) => return ctx.stick_key(f, &input),
            Converter::SetVar(var, conds) => {
                let old = ctx.var(var);
                if conds.iter().all(|c| c.holds(old.as_ref(), &input)) && !ctx.set_var(var, Some(input.clone())) {
                    return None;
                }
                return Some(input);
            }
            Converter::UnsetVar(var) => return ctx.set_var(var, None).then_some(input),
            _ => {}
        }
        let (in_type, _) = self.types();
        let v = input.cast(in_type)?;
        Some(match (self, v) {
            (Converter::Lower, Value::Str(mut s)) => {
                s.make_ascii_lowercase();
                Value::Str(s)
            }
            (Converter::Upper, Value::Str(mut s)) => {
                s.make_ascii_uppercase();
                Value::Str(s)
            }
            (Converter::Map { path, default, out, regm: true, .. }, Value::Str(key)) => {
                match maps.lookup_regm(path, &key) {
                    Some(v) => out.value(&v)?,
                    None => default.clone()?,
                }
            }
            (Converter::Map { kind, path, default, out, .. }, key) => match maps.lookup(path, *kind, &key) {
                Some(v) => out.value(v)?,
                None => default.clone()?,
            },
            (Converter::Regsub { re, subst, global }, Value::Str(s)) => Value::Str(regsub(re, subst, *global, &s)?),
            (Converter::Field { index, seps, count }, Value::Str(s)) => {
                Value::Str(field(&s, *index, seps, *count)?.to_vec())
            }
            (Converter::Word { index, seps, count }, Value::Str(s)) => {
                Value::Str(word(&s, *index, seps, *count)?.to_vec())
            }
            (Converter::Bytes { start, len }, Value::Bin(b)) => {
                if *start < 0 {
                    return None;
                }
                let start = (*start).min(b.len() as i64) as usize;
                let rest = b.len() - start;
                let len = len.map_or(rest, |l| (l as u64).min(rest as u64) as usize);
                Value::Bin(b[start..start + len].to_vec())
            }
            (Converter::Length, Value::Str(s)) => Value::Sint(s.len() as i64),
            (Converter::Hex, Value::Bin(b)) => Value::Str(codec::hex_upper(&b)),
            (Converter::Base64, Value::Bin(b)) => Value::Str(codec::base64_encode(&b)),
            (Converter::B64Dec, Value::Str(s)) => Value::Bin(codec::base64_decode(&s)?),
            (Converter::UrlDec { form }, Value::Str(s)) => Value::Str(codec::url_decode(&s, *form)?),
            (Converter::Json(mode), Value::Str(s)) => Value::Str(codec::json_escape(&s, *mode)?),
            (Converter::IpMask { v4, v6 }, addr) => ipmask(addr, *v4, *v6)?,
            (Converter::Concat { prefix, var, suffix }, Value::Str(mut s)) => {
                s.extend_from_slice(prefix);
                if let Some(Value::Str(v)) = var.as_ref().and_then(|v| ctx.var(v)).and_then(|v| v.cast(SmpType::Str)) {
                    s.extend_from_slice(&v);
                }
                s.extend_from_slice(suffix);
                Value::Str(s)
            }
            (Converter::Arith(op, operand), Value::Sint(a)) => Value::Sint(arith(*op, a, operand_value(operand, ctx)?)),
            (Converter::Bool, Value::Sint(a)) => Value::Bool(a != 0),
            (Converter::Not, Value::Sint(a)) => Value::Bool(a == 0),
            (Converter::Neg, Value::Sint(a)) => Value::Sint(a.checked_neg().unwrap_or(i64::MAX)),
            (Converter::Strcmp(var), Value::Str(s)) => {
                let Value::Str(other) = var_as(ctx, var, SmpType::Str)? else { return None };
                Value::Sint(s.as_slice().cmp(other.as_slice()) as i64)
            }
            (Converter::Hash { kind, avalanche }, Value::Bin(b)) => {
                let h = match kind {
                    HashKind::Crc32 => crc32fast::hash(&b),
                    HashKind::Djb2 => codec::djb2(&b),
                    HashKind::Sdbm => codec::sdbm(&b),
                    HashKind::Crc32c => codec::crc32c(&b),
                    HashKind::Wt6 => codec::wt6(&b),
                };
                Value::Sint(if *avalanche { codec::full_hash(h) } else { h } as i64)
            }
            // HAProxy passes the seed as an `unsigned int` (xxh32) or a `u64` (xxh3).
            (Converter::Xxh32 { seed }, Value::Bin(b)) => {
                Value::Sint(i64::from(xxhash_rust::xxh32::xxh32(&b, *seed as u32)))
            }
            (Converter::Xxh3 { seed }, Value::Bin(b)) => {
                Value::Sint(xxhash_rust::xxh3::xxh3_64_with_seed(&b, *seed as u64) as i64)
            }
            (Converter::Xxh64 { seed }, Value::Bin(b)) => {
                Value::Sint(xxhash_rust::xxh64::xxh64(&b, *seed as u64) as i64)
            }
            (Converter::Sha1, Value::Bin(b)) => Value::Bin(sha1::Sha1::digest(&b).to_vec()),
            (Converter::Sha2 { bits }, Value::Bin(b)) => Value::Bin(match bits {
                224 => sha2::Sha224::digest(&b).to_vec(),
                384 => sha2::Sha384::digest(&b).to_vec(),
                512 => sha2::Sha512::digest(&b).to_vec(),
                _ => sha2::Sha256::digest(&b).to_vec(),
            }),
            (Converter::Time { local, format, offset }, Value::Sint(t)) => {
                let t = (t & TIME_MASK).saturating_add(*offset);
                let (offset, zone) = if *local { ctx.local_zone(t) } else { (0, "GMT") };
                Value::Str(strftime(format, &Tm::at(t, offset), zone).into_bytes())
            }
            (Converter::HttpDate { offset, unit }, Value::Sint(t)) => {
                let t = t.saturating_add(*offset);
                let (secs, frac) = match unit {
                    TimeUnit::S => (t, None),
                    TimeUnit::Ms => (t / 1000, Some(t % 1000)),
                    TimeUnit::Us => (t / 1_000_000, Some(t % 1_000_000)),
                };
                Value::Str(http_date(&Tm::at(secs & TIME_MASK, 0), frac).into_bytes())
            }
            (Converter::UrlEnc, Value::Str(s)) => Value::Str(codec::url_encode(&s)),
            (Converter::Ltrim(set), Value::Str(s)) => {
                let n = s.iter().take_while(|c| set.contains(c)).count();
                Value::Str(s[n..].to_vec())
            }
            (Converter::Rtrim(set), Value::Str(mut s)) => {
                let n = s.iter().rev().take_while(|c| set.contains(c)).count();
                s.truncate(s.len() - n);
                Value::Str(s)
            }
            (Converter::CutCrlf, Value::Str(mut s)) => {
                s.truncate(s.iter().position(|&c| c == b'\r' || c == b'\n').unwrap_or(s.len()));
                Value::Str(s)
            }
            (Converter::Even, Value::Sint(a)) => Value::Bool(a & 1 == 0),
            (Converter::Odd, Value::Sint(a)) => Value::Bool(a & 1 == 1),
            (Converter::Cpl, Value::Sint(a)) => Value::Sint(!a),
            (Converter::Be2Dec { sep, chunk, truncate }, Value::Bin(b)) => {
                Value::Str(codec::be2dec(&b, sep, *chunk, *truncate))
            }
            (Converter::Be2Hex { sep, chunk, truncate }, Value::Bin(b)) => {
                Value::Str(codec::be2hex(&b, sep, *chunk, *truncate))
            }
            (Converter::Htonl, Value::Sint(a)) => Value::Bin((a as u32).to_be_bytes().to_vec()),
            (Converter::Hex2i, Value::Str(s)) => {
                let mut n: i64 = 0;
                for c in s {
                    n = (n << 4).wrapping_add((c as char).to_digit(16)? as i64);
                }
                Value::Sint(n)
            }
            (Converter::Ub64Enc, Value::Bin(b)) => Value::Str(codec::base64url_encode(&b)),
            (Converter::Ub64Dec, Value::Str(s)) => Value::Bin(codec::base64url_decode(&s)?),
            (Converter::Digest(alg), Value::Bin(b)) => Value::Bin(codec::digest(*alg, &b)),
            (Converter::Hmac(alg, key), Value::Bin(b)) => {
                let key = match key {
                    HmacKey::Const(k) => k.clone(),
                    HmacKey::Var(v) => match var_as(ctx, v, SmpType::Str)? {
                        Value::Str(t) => codec::base64_decode(&t)?,
                        _ => return None,
                    },
                };
                Value::Bin(codec::hmac(*alg, &key, &b))
            }
            (Converter::SecureMemcmp(var), Value::Bin(b)) => {
                let Value::Bin(other) = var_as(ctx, var, SmpType::Bin)? else { return None };
                // Constant time over equal lengths, as OpenSSL's CRYPTO_memcmp.
                Value::Bool(b.len() == other.len() && b.iter().zip(&other).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0)
            }
            (Converter::HostOnly, Value::Str(mut s)) => {
                if let Some(p) = s.iter().rposition(|&c| c == b':' || c == b']')
                    && s[p] == b':'
                {
                    s.truncate(p);
                }
                s.make_ascii_lowercase();
                Value::Str(s)
            }
            (Converter::PortOnly, Value::Str(s)) => {
                let port = match s.iter().rposition(|&c| c == b':' || c == b']') {
                    Some(p) if s[p] == b':' => {
                        // HAProxy's `strl2ui` checks nothing: every byte counts as a digit.
                        s[p + 1..]
                            .iter()
                            .fold(0u32, |n, &c| n.wrapping_mul(10).wrapping_add(u32::from(c).wrapping_sub(48)))
                    }
                    _ => 0,
                };
                Value::Sint(i64::from(port))
            }
            (Converter::AddItem { delim, var, suffix }, Value::Str(mut s)) => {
                let v = match var.as_ref().and_then(|v| var_as(ctx, v, SmpType::Str)) {
                    Some(Value::Str(v)) => v,
                    _ => Vec::new(),
                };
                if !s.is_empty() && (!v.is_empty() || !suffix.is_empty()) {
                    s.extend_from_slice(delim);
                }
                s.extend_from_slice(&v);
                s.extend_from_slice(suffix);
                Value::Str(s)
            }
            (Converter::Iif(yes, no), Value::Bool(b)) => Value::Str(if b { yes.clone() } else { no.clone() }),
            (Converter::JsonQuery { path, int }, Value::Str(s)) => path.query(&s, *int)?,
            (Converter::JwtQuery { payload, path, int }, Value::Bin(b)) => {
                let part = jwt_part(&b, usize::from(*payload))?;
                let decoded = codec::base64url_decode(part)?;
                match path {
                    Some(p) => p.query(&decoded, *int)?,
                    None => Value::Str(decoded),
                }
            }
            (Converter::JwtVerify { alg, key }, Value::Bin(token)) => {
                fn text<'a>(arg: &'a JwtArg, ctx: &dyn SampleContext) -> Option<std::borrow::Cow<'a, [u8]>> {
                    match arg {
                        JwtArg::Const(t) => Some(t.as_slice().into()),
                        JwtArg::Var(v) => match var_as(ctx, v, SmpType::Str)? {
                            Value::Str(t) => Some(t.into()),
                            _ => None,
                        },
                    }
                }
                let (alg, key) = (text(alg, ctx)?, text(key, ctx)?);
                Value::Sint(super::jwt::verify(&token, &alg, &key, |k| maps.jwt_key(k)))
            }
            _ => return None,
        })
    }
}

/// Part `n` (0: header, 1: payload) of a JWT, as HAProxy's `jwt_tokenize` cuts it: up to the
/// next dot or the end (a token without a dot is all header).
fn jwt_part(b: &[u8], n: usize) -> Option<&[u8]> {
    b.split(|&c| c == b'.').nth(n)
}

fn var_as(ctx: &dyn SampleContext, var: &VarRef, ty: SmpType) -> Option<Value> {
    ctx.var(var)?.cast(ty)
}

fn operand_value(operand: &Operand, ctx: &dyn SampleContext) -> Option<i64> {
    match operand {
        Operand::Int(i) => Some(*i),
        Operand::Var(v) => match var_as(ctx, v, SmpType::Sint)? {
            Value::Sint(i) => Some(i),
            _ => None,
        },
    }
}

/// HAProxy's arithmetic: saturating, `x/0` is `i64::MAX`, `x%0` is 0.
fn arith(op: ArithOp, a: i64, b: i64) -> i64 {
    match op {
        ArithOp::Add => a.saturating_add(b),
        ArithOp::Sub => a.saturating_sub(b),
        ArithOp::Mul => a.saturating_mul(b),
        ArithOp::Div if b == 0 => i64::MAX,
        ArithOp::Div => a.checked_div(b).unwrap_or(i64::MAX),
        ArithOp::Mod if b == 0 => 0,
        ArithOp::Mod => a.checked_rem(b).unwrap_or(0),
        ArithOp::And => a & b,
        ArithOp::Or => a | b,
        ArithOp::Xor => a ^ b,
    }
}

fn ipmask(addr: Value, v4: Ipv4Addr, v6: Option<Ipv6Addr>) -> Option<Value> {
    let addr = match addr {
        Value::Ipv6(a) => v6_to_v4(a).map_or(Value::Ipv6(a), Value::Ipv4),
        other => other,
    };
    Some(match addr {
        Value::Ipv4(a) => Value::Ipv4(Ipv4Addr::from(u32::from(a) & u32::from(v4))),
        Value::Ipv6(a) => Value::Ipv6(Ipv6Addr::from(u128::from(a) & u128::from(v6?))),
        _ => return None,
    })
}

/// `regsub`: replaces the first (or every, with `g`) match; `\N` in `subst` is group N and `\xHH`
/// a byte, as HAProxy's `exp_replace`. An empty match copies one byte and moves on.
fn regsub(re: &regex::bytes::Regex, subst: &[u8], global: bool, s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut pos = 0;
    let mut locs = re.capture_locations();
    while let Some(m) = re.captures_read_at(&mut locs, s, pos) {
        out.extend_from_slice(&s[pos..m.start()]);
        expand(subst, s, &locs, &mut out)?;
        if m.end() == m.start() {
            if let Some(&c) = s.get(m.end()) {
                out.push(c);
            }
            pos = m.end() + 1;
        } else {
            pos = m.end();
        }
        if !global || pos > s.len() {
            break;
        }
    }
    if pos < s.len() {
        out.extend_from_slice(&s[pos..]);
    }
    Some(out)
}

pub(super) fn expand(subst: &[u8], s: &[u8], locs: &regex::bytes::CaptureLocations, out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < subst.len() {
        if subst[i] != b'\\' {
            out.push(subst[i]);
            i += 1;
            continue;
        }
        let c = *subst.get(i + 1)?;
        i += 2;
        if c.is_ascii_digit() {
            if let Some((a, b)) = locs.get((c - b'0') as usize) {
                out.extend_from_slice(&s[a..b]);
            }
        } else if c == b'x' {
            let hex = |c: u8| {
                let c = c.to_ascii_uppercase().wrapping_sub(b'0');
                if c > 9 { c.wrapping_sub(b'A' - b'9' - 1) } else { c }
            };
            let (h, l) = (*subst.get(i)?, *subst.get(i + 1)?);
            out.push((hex(h) << 4).wrapping_add(hex(l)));
            i += 2;
        } else {
            out.push(c);
        }
    }
    Some(())
}

/// `field(index,seps[,count])`: fields are split on every separator; a negative index counts
/// from the end; `count` fields are taken towards the end (or the start, for a negative index),
/// all of them when `count` is not positive.
fn field<'s>(s: &'s [u8], index: i64, seps: &[u8], count: i64) -> Option<&'s [u8]> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, c) in s.iter().enumerate() {
        if seps.contains(c) {
            fields.push((start, i));
            start = i + 1;
        }
    }
    fields.push((start, s.len()));
    pick(s, &fields, index, count)
}

/// The `index`th span of `spans` (1-based, negative from the end) and `count` spans beside it.
fn pick<'s>(s: &'s [u8], spans: &[(usize, usize)], index: i64, count: i64) -> Option<&'s [u8]> {
    let n = spans.len() as i64;
    let first = if index > 0 { index - 1 } else { n + index };
    if first < 0 || first >= n {
        return None;
    }
    let (lo, hi) = match (index > 0, count > 0) {
        (true, true) => (first, first.saturating_add(count - 1).min(n - 1)),
        (true, false) => (first, n - 1),
        (false, true) => ((first - count + 1).max(0), first),
        (false, false) => (0, first),
    };
    Some(&s[spans[lo as usize].0..spans[hi as usize].1])
}

/// `word(index,seps[,count])`: like `field`, but runs of separators count as one and leading or
/// trailing separators make no empty word.
fn word<'s>(s: &'s [u8], index: i64, seps: &[u8], count: i64) -> Option<&'s [u8]> {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in s.iter().enumerate() {
        match (seps.contains(c), start) {
            (false, None) => start = Some(i),
            (true, Some(b)) => {
                words.push((b, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        words.push((b, s.len()));
    }
    pick(s, &words, index, count)
}
