//! The body of an update message: key then values (peers.md §5-§7), read against the shape the
//! sender's table definition announced.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::codec::Definition;
use super::datatype::{COUNT, DataType, Encoding};
use super::error::DecodeError;
use super::varint::{self, Reader};

/// Key types by their wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Integer = 2,
    Ip = 4,
    Ipv6 = 5,
    String = 6,
    Binary = 7,
}

impl KeyType {
    pub fn from_wire(v: u64) -> Option<KeyType> {
        Some(match v {
            2 => KeyType::Integer,
            4 => KeyType::Ip,
            5 => KeyType::Ipv6,
            6 => KeyType::String,
            7 => KeyType::Binary,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyType::Integer => "integer",
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::String => "string",
            KeyType::Binary => "binary",
        }
    }
}

/// What an update body looks like for one table: taken from the definition in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub key_type: KeyType,
    pub key_len: usize,
    pub data_types: u64,
    counts: [u64; COUNT as usize],
}

impl Shape {
    /// Builds the shape of a received definition; a key type or length that cannot be decoded
    /// is an error to ignore the table by.
    pub fn from_definition(def: &Definition<'_>) -> Result<Shape, DecodeError> {
        let key_type = KeyType::from_wire(def.key_type).ok_or(DecodeError::UnknownKeyType(def.key_type))?;
        // Integer keys always travel as 4 bytes, whatever length is announced (07 sends 8).
        let fixed = match key_type {
            KeyType::Ip => Some(4),
            KeyType::Ipv6 => Some(16),
            KeyType::Integer | KeyType::String | KeyType::Binary => None,
        };
        let bad = DecodeError::BadKeyLength { key_type: key_type.name(), len: def.key_len };
        let key_len = usize::try_from(def.key_len).map_err(|_| bad.clone())?;
        if fixed.is_some_and(|f| f != key_len) || key_len == 0 {
            return Err(bad);
        }
        let mut shape = Shape::new(key_type, key_len, def.data_types);
        for p in &def.params {
            if let Some(c) = p.count {
                shape.counts[usize::from(p.data_type.id())] = c;
            }
        }
        Ok(shape)
    }

    /// A shape for sending: `counts` gives the element count of the array types present.
    pub fn new(key_type: KeyType, key_len: usize, data_types: u64) -> Shape {
        Shape { key_type, key_len, data_types, counts: [0; COUNT as usize] }
    }

    pub fn with_count(mut self, t: DataType, count: u64) -> Shape {
        self.counts[usize::from(t.id())] = count;
        self
    }

    pub fn count(&self, t: DataType) -> u64 {
        self.counts[usize::from(t.id())]
    }
}

/// A key as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// 32-bit integer key (`type integer`; negative samples arrive as their two's complement).
    Integer(u32),
    Ip(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// The full string sent; a 2.6 receiver keeps at most key length − 1 bytes of it.
    String(&'a [u8]),
    /// Exactly key-length bytes.
    Binary(&'a [u8]),
}

/// A frequency counter snapshot (see [`super::freq::FreqCtr::to_wire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    /// Milliseconds since the start of the sender's current period.
    pub elapsed: u64,
    pub curr: u64,
    pub prev: u64,
}

/// A server_key dictionary value as sent on this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dict<'a> {
    /// No value (`00`).
    None,
    /// Cache entry `id` (1..=128), defined earlier on the session.
    Ref(u64),
    /// Defines cache entry `id` as `value` and uses it.
    Define { id: u64, value: &'a [u8] },
}

/// Slots of the per-session dictionary cache (HAProxy's PEER_STKT_CACHE_MAX_ENTRIES).
pub const DICT_ENTRIES: u64 = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// server_id: a C int widened to 64 bits.
    Signed(i64),
    /// Counters, 32 or 64 bits per the type; kept as sent.
    Uint(u64),
    Rate(Rate),
    Dict(Dict<'a>),
    UintArray(Vec<u64>),
    RateArray(Vec<Rate>),
}

/// Key and values of one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: Key<'a>,
    /// One value per known type of the shape, in id order.
    pub values: Vec<(DataType, Value<'a>)>,
    /// Bytes after the known values (values of types newer than 2.6), kept verbatim.
    pub trailing: &'a [u8],
}

impl<'a> Entry<'a> {
    pub fn decode(body: &'a [u8], shape: &Shape) -> Result<Entry<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let key = decode_key(&mut r, shape)?;
        let mut values = Vec::with_capacity(shape.data_types.count_ones() as usize);
        for t in DataType::in_mask(shape.data_types) {
            values.push((t, decode_value(&mut r, t, shape.count(t))?));
        }
        Ok(Entry { key, values, trailing: r.rest() })
    }

    /// Appends the body (what follows the update id and expire).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.key {
            Key::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Key::Ip(a) => out.extend_from_slice(&a.octets()),
            Key::Ipv6(a) => out.extend_from_slice(&a.octets()),
            Key::String(s) => {
                varint::encode(s.len() as u64, out);
                out.extend_from_slice(s);
            }
            Key::Binary(b) => out.extend_from_slice(b),
        }
        for (_, v) in &self.values {
            encode_value(v, out);
        }
        out.extend_from_slice(self.trailing);
    }

    pub fn get(&self, t: DataType) -> Option<&Value<'a>> {
        self.values.iter().find(|(vt, _)| *vt == t).map(|(_, v)| v)
    }
}

fn decode_key<'a>(r: &mut Reader<'a>, shape: &Shape) -> Result<Key<'a>, DecodeError> {
    let short = DecodeError::Truncated { what: "key" };
    Ok(match shape.key_type {
        KeyType::Integer => Key::Integer(r.u32be().ok_or(short)?),
        KeyType::Ip => {
            let b = r.bytes(4).ok_or(short)?;
            Key::Ip(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        KeyType::Ipv6 => {
            let b: [u8; 16] = r.bytes(16).and_then(|b| b.try_into().ok()).ok_or(short)?;
            Key::Ipv6(Ipv6Addr::from(b))
        }
        KeyType::String => {
            let len = r.varint().map_err(DecodeError::varint("key length"))?;
            Key::String(r.bytes(len).ok_or(short)?)
        }
        KeyType::Binary => Key::Binary(r.bytes(shape.key_len as u64).ok_or(short)?),
    })
}

fn decode_rate(r: &mut Reader<'_>, t: DataType) -> Result<Rate, DecodeError> {
    let e = DecodeError::varint(t.name());
    Ok(Rate { elapsed: r.varint().map_err(&e)?, curr: r.varint().map_err(&e)?, prev: r.varint().map_err(&e)? })
}

fn decode_value<'a>(r: &mut Reader<'a>, t: DataType, count: u64) -> Result<Value<'a>, DecodeError> {
    let e = DecodeError::varint(t.name());
    Ok(match t.encoding() {
        Encoding::Signed => Value::Signed(r.varint().map_err(e)? as i64),
        Encoding::Uint | Encoding::Ull => Value::Uint(r.varint().map_err(e)?),
        Encoding::Rate => Value::Rate(decode_rate(r, t)?),
        Encoding::Dict => Value::Dict(decode_dict(r)?),
        // No capacity from `count`: it is the peer's word, and each element takes a byte at least.
        Encoding::UintArray => {
            let mut v = Vec::new();
            for _ in 0..count {
                v.push(r.varint().map_err(&e)?);
            }
            Value::UintArray(v)
        }
        Encoding::RateArray => {
            let mut v = Vec::new();
            for _ in 0..count {
                v.push(decode_rate(r, t)?);
            }
            Value::RateArray(v)
        }
    })
}

fn decode_dict<'a>(r: &mut Reader<'a>) -> Result<Dict<'a>, DecodeError> {
    let declared = r.varint().map_err(DecodeError::varint("server_key length"))?;
    if declared == 0 {
        return Ok(Dict::None);
    }
    let data = r.bytes(declared).ok_or(DecodeError::Truncated { what: "server_key" })?;
    let mut d = Reader::new(data);
    let id = d.varint().map_err(DecodeError::varint("server_key id"))?;
    if id == 0 || id > DICT_ENTRIES {
        return Err(DecodeError::BadDictId(id));
    }
    if d.is_empty() {
        return Ok(Dict::Ref(id));
    }
    let len = d.varint().map_err(DecodeError::varint("server_key value length"))?;
    let value = d.bytes(len).ok_or(DecodeError::Truncated { what: "server_key value" })?;
    if !d.is_empty() {
        // HAProxy would read the leftover as the next values; refuse instead of misreading.
        let used = declared - d.rest().len() as u64;
        return Err(DecodeError::BadDictLength { declared, used });
    }
    Ok(Dict::Define { id, value })
}

fn encode_value(v: &Value<'_>, out: &mut Vec<u8>) {
    let rate = |r: &Rate, out: &mut Vec<u8>| {
        for x in [r.elapsed, r.curr, r.prev] {
            varint::encode(x, out);
        }
    };
    match v {
        Value::Signed(s) => varint::encode(*s as u64, out),
        Value::Uint(u) => varint::encode(*u, out),
        Value::Rate(r) => rate(r, out),
        Value::Dict(Dict::None) => out.push(0),
        Value::Dict(Dict::Ref(id)) => {
            varint::encode(varint::encoded_len(*id) as u64, out);
            varint::encode(*id, out);
        }
        Value::Dict(Dict::Define { id, value }) => {
            let len = value.len() as u64;
            let inner = varint::encoded_len(*id) + varint::encoded_len(len) + value.len();
            varint::encode(inner as u64, out);
            varint::encode(*id, out);
            varint::encode(len, out);
            out.extend_from_slice(value);
        }
        Value::UintArray(a) => a.iter().for_each(|x| varint::encode(*x, out)),
        Value::RateArray(a) => a.iter().for_each(|r| rate(r, out)),
    }
}

/// Receiving side of the session's dictionary cache: definitions fill slots, references read them.
#[derive(Debug, Clone, Default)]
pub struct DictRx {
    slots: Vec<Option<Vec<u8>>>,
}

impl DictRx {
    /// The string a received value stands for; a reference to a slot never defined on this
    /// session gives `None` (2.6 then leaves the entry's server_key alone).
    pub fn resolve(&mut self, d: &Dict<'_>) -> Option<&[u8]> {
        let (id, define) = match *d {
            Dict::None => return None,
            Dict::Ref(id) => (id, None),
            Dict::Define { id, value } => (id, Some(value)),
        };
        let slot = usize::try_from(id).ok().filter(|&i| (1..=DICT_ENTRIES as usize).contains(&i))? - 1;
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        if let Some(v) = define {
            self.slots[slot] = Some(v.to_vec());
        }
        self.slots[slot].as_deref()
    }
}

/// Sending side: 128 slots filled round robin, as HAProxy does; a string still cached is sent
/// as a reference.
#[derive(Debug, Clone, Default)]
pub struct DictTx {
    slots: Vec<Vec<u8>>,
    next: usize,
}

impl DictTx {
    pub fn value<'v>(&mut self, s: &'v [u8]) -> Dict<'v> {
        if let Some(i) = self.slots.iter().position(|x| x.as_slice() == s) {
            return Dict::Ref(i as u64 + 1);
        }
        let i = self.next;
        if i < self.slots.len() {
            self.slots[i] = s.to_vec();
        } else {
            self.slots.push(s.to_vec());
        }
        self.next = (i + 1) % DICT_ENTRIES as usize;
        Dict::Define { id: i as u64 + 1, value: s }
    }
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
