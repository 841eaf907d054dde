//! Binary messages of peers protocol 2.1 as HAProxy 2.6 sends them (peers.md §3-§5, §8).
//!
//! ```text
//! class(1) type(1)                              type < 0x80: nothing follows
//! class(1) type(1) vint(len) payload(len)       type >= 0x80
//! ```
//!
//! Decoding borrows from the input and never panics; [`next_frame`] cuts one message off a
//! stream buffer (or says more bytes are needed), [`Message::decode`] reads its payload. Update
//! bodies (key and values) need the table definition in force and are read by
//! [`super::entry::Entry::decode`]. Every message that decodes without trailing bytes encodes back
//! to the same bytes.

use super::datatype::{DataType, KNOWN_MASK};
use super::entry::KeyType;
use super::error::DecodeError;
use super::varint::{self, Reader};

/// HAProxy's receive limit for one message payload (its default `tune.bufsize`).
pub const DEFAULT_MAX_LEN: usize = 16384;
/// Bytes a message length may take on the wire.
const LENGTH_MAX_BYTES: usize = 5;

pub const CLASS_CONTROL: u8 = 0;
pub const CLASS_ERROR: u8 = 1;
pub const CLASS_STICK_TABLE: u8 = 10;
pub const CLASS_RESERVED: u8 = 255;

pub const TYPE_UPDATE: u8 = 0x80;
pub const TYPE_INC_UPDATE: u8 = 0x81;
pub const TYPE_DEFINE: u8 = 0x82;
pub const TYPE_SWITCH: u8 = 0x83;
pub const TYPE_ACK: u8 = 0x84;
pub const TYPE_UPDATE_TIMED: u8 = 0x85;
pub const TYPE_INC_UPDATE_TIMED: u8 = 0x86;

/// One message cut from the stream, payload not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub class: u8,
    pub typ: u8,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Whether the type carries a length and payload (bit 7).
    pub fn has_payload(typ: u8) -> bool {
        typ & 0x80 != 0
    }
}

/// Cuts the first message off `buf`. `Ok(None)`: incomplete, read more. `Ok(Some((frame, n)))`:
/// the message and the bytes it took. A payload above `max_len` is refused before it arrives.
pub fn next_frame(buf: &[u8], max_len: usize) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let [class, typ, rest @ ..] = buf else {
        return Ok(None);
    };
    if !Frame::has_payload(*typ) {
        return Ok(Some((Frame { class: *class, typ: *typ, payload: &[] }, 2)));
    }
    let head = &rest[..rest.len().min(LENGTH_MAX_BYTES)];
    let (len, n) = match varint::decode(head) {
        Ok(v) => v,
        Err(_) if head.len() < LENGTH_MAX_BYTES => return Ok(None),
        Err(_) => return Err(DecodeError::BadLength),
    };
    if len > max_len as u64 {
        return Err(DecodeError::Oversized { len, max: max_len });
    }
    let len = len as usize;
    let Some(payload) = rest.get(n..n + len) else {
        return Ok(None);
    };
    Ok(Some((Frame { class: *class, typ: *typ, payload }, 2 + n + len)))
}

/// Control messages (class 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    ResyncRequest = 0,
    ResyncFinished = 1,
    ResyncPartial = 2,
    ResyncConfirm = 3,
    Heartbeat = 4,
}

/// Error messages (class 1), sent just before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Protocol = 0,
    SizeLimit = 1,
}

/// Parameters a definition carries for one rate or array data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub data_type: DataType,
    /// Element count (arrays only).
    pub count: Option<u64>,
    /// Period in ms (rates and rate arrays only).
    pub period: Option<u64>,
}

/// Table definition (`0a 82`): selects the table the following updates belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition<'a> {
    /// The sender's own id for the table; acks echo it.
    pub table_id: u64,
    pub name: &'a [u8],
    /// Wire key type: 2 integer, 4 ip, 5 ipv6, 6 string, 7 binary (see [`super::entry::KeyType`]).
    pub key_type: u64,
    /// 4, 16, configured length + 1 for strings, configured length for binary.
    pub key_len: u64,
    /// Bit n set: data type n is sent with every update.
    pub data_types: u64,
    /// Table expire in ms; absent in pre-2.x style definitions, which then carry no parameters.
    pub expire: Option<u64>,
    /// One group per known rate/array type of `data_types`, in id order (empty without expire).
    pub params: Vec<Param>,
    /// Bytes after the known groups (parameters of types newer than 2.6), kept verbatim.
    pub trailing: &'a [u8],
}

/// Ack (`0a 84`): the last update id received in the sender's table `table_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub table_id: u64,
    pub update: u32,
}

/// An update (`0a 80/81/85/86`); the body (key and values) is read against the current
/// definition with [`super::entry::Entry::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// Explicit update id; `None` means previous id of this table on this session + 1.
    pub id: Option<u32>,
    /// Remaining lifetime in ms (timed forms).
    pub expire: Option<u32>,
    pub body: &'a [u8],
}

impl Update<'_> {
    pub fn message_type(&self) -> u8 {
        match (self.id.is_some(), self.expire.is_some()) {
            (true, false) => TYPE_UPDATE,
            (false, false) => TYPE_INC_UPDATE,
            (true, true) => TYPE_UPDATE_TIMED,
            (false, true) => TYPE_INC_UPDATE_TIMED,
        }
    }
}

/// A message cut from a stream: its decoding (which may fail without breaking the stream) and
/// the bytes it took.
pub type Next<'a> = (Result<Message<'a>, DecodeError>, usize);

/// A decoded binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Control(Control),
    Error(ErrorCode),
    Definition(Definition<'a>),
    /// Table switch (`0a 83`): understood by 2.6, never sent by it.
    Switch {
        table_id: u64,
    },
    Ack(Ack),
    Update(Update<'a>),
}

impl<'a> Message<'a> {
    /// Interprets a frame. Extra bytes after the fields HAProxy 2.6 reads are ignored as it does,
    /// except in definitions, which keep them (see [`Definition::trailing`]).
    pub fn decode(frame: Frame<'a>) -> Result<Message<'a>, DecodeError> {
        let Frame { class, typ, payload } = frame;
        let unknown = DecodeError::UnknownType { class, typ };
        match class {
            CLASS_CONTROL => Ok(Message::Control(match typ {
                0 => Control::ResyncRequest,
                1 => Control::ResyncFinished,
                2 => Control::ResyncPartial,
                3 => Control::ResyncConfirm,
                4 => Control::Heartbeat,
                _ => return Err(unknown),
            })),
            CLASS_ERROR => Ok(Message::Error(match typ {
                0 => ErrorCode::Protocol,
                1 => ErrorCode::SizeLimit,
                _ => return Err(unknown),
            })),
            CLASS_STICK_TABLE => match typ {
                TYPE_DEFINE => Definition::decode(payload).map(Message::Definition),
                TYPE_SWITCH => {
                    let table_id = Reader::new(payload).varint().map_err(DecodeError::varint("table id"))?;
                    Ok(Message::Switch { table_id })
                }
                TYPE_ACK => {
                    let mut r = Reader::new(payload);
                    let table_id = r.varint().map_err(DecodeError::varint("ack table id"))?;
                    let update = r.u32be().ok_or(DecodeError::Truncated { what: "ack update id" })?;
                    Ok(Message::Ack(Ack { table_id, update }))
                }
                TYPE_UPDATE | TYPE_INC_UPDATE | TYPE_UPDATE_TIMED | TYPE_INC_UPDATE_TIMED => {
                    let mut r = Reader::new(payload);
                    let id = if matches!(typ, TYPE_UPDATE | TYPE_UPDATE_TIMED) {
                        Some(r.u32be().ok_or(DecodeError::Truncated { what: "update id" })?)
                    } else {
                        None
                    };
                    let expire = if matches!(typ, TYPE_UPDATE_TIMED | TYPE_INC_UPDATE_TIMED) {
                        Some(r.u32be().ok_or(DecodeError::Truncated { what: "update expire" })?)
                    } else {
                        None
                    };
                    Ok(Message::Update(Update { id, expire, body: r.rest() }))
                }
                _ => Err(unknown),
            },
            CLASS_RESERVED => Err(DecodeError::ReservedClass),
            _ => Err(DecodeError::UnknownClass { class }),
        }
    }

    /// Cuts and decodes the first message of `buf` (see [`next_frame`]). On a decoding error
    /// the frame's length is returned with it, so a skippable message can be stepped over.
    #[allow(clippy::type_complexity)]
    pub fn next(
        buf: &'a [u8],
        max_len: usize,
    ) -> Result<Option<(Result<Message<'a>, DecodeError>, usize)>, DecodeError> {
        Ok(next_frame(buf, max_len)?.map(|(frame, n)| (Message::decode(frame), n)))
    }

    /// Appends the message in HAProxy's byte layout.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Control(c) => out.extend_from_slice(&[CLASS_CONTROL, *c as u8]),
            Message::Error(e) => out.extend_from_slice(&[CLASS_ERROR, *e as u8]),
            Message::Definition(d) => framed(out, TYPE_DEFINE, |out| d.encode_payload(out)),
            Message::Switch { table_id } => framed(out, TYPE_SWITCH, |out| varint::encode(*table_id, out)),
            Message::Ack(a) => framed(out, TYPE_ACK, |out| {
                varint::encode(a.table_id, out);
                out.extend_from_slice(&a.update.to_be_bytes());
            }),
            Message::Update(u) => framed(out, u.message_type(), |out| {
                if let Some(id) = u.id {
                    out.extend_from_slice(&id.to_be_bytes());
                }
                if let Some(exp) = u.expire {
                    out.extend_from_slice(&exp.to_be_bytes());
                }
                out.extend_from_slice(u.body);
            }),
        }
    }
}

/// Writes a stick-table message: header, then the payload `body` writes, prefixed by its length.
pub(crate) fn framed(out: &mut Vec<u8>, typ: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&[CLASS_STICK_TABLE, typ]);
    let start = out.len();
    body(out);
    let mut len = [0; varint::MAX_LEN];
    let n = varint::encode_into((out.len() - start) as u64, &mut len);
    out.splice(start..start, len[..n].iter().copied());
}

impl<'a> Definition<'a> {
    /// The definition a 2.6 sender writes for one of its tables: a parameter group for each
    /// rate (`period` gives its period in ms) and array (`count` gives its element count) type.
    #[allow(clippy::too_many_arguments)]
    pub fn for_table(
        table_id: u64,
        name: &'a [u8],
        key_type: KeyType,
        key_len: u64,
        data_types: u64,
        expire_ms: u64,
        count: impl Fn(DataType) -> u64,
        period: impl Fn(DataType) -> u64,
    ) -> Definition<'a> {
        let params = DataType::in_mask(data_types)
            .filter(|t| t.has_params())
            .map(|t| Param {
                data_type: t,
                count: t.is_array().then(|| count(t)),
                period: t.is_rate().then(|| period(t)),
            })
            .collect();
        Definition {
            table_id,
            name,
            key_type: key_type as u64,
            key_len,
            data_types,
            expire: Some(expire_ms),
            params,
            trailing: &[],
        }
    }

    /// Reads a definition as a 2.6 receiver does (peers.md §4): a definition with an expire must
    /// carry a parameter group for every known rate and array type, one without must not
    /// announce arrays; both faults make 2.6 ignore the table ([`super::Disposition::Ignore`]).
    pub fn decode(payload: &'a [u8]) -> Result<Definition<'a>, DecodeError> {
        let mut r = Reader::new(payload);
        let table_id = r.varint().map_err(DecodeError::varint("table id"))?;
        let name_len = r.varint().map_err(DecodeError::varint("table name length"))?;
        if name_len == 0 {
            return Err(DecodeError::EmptyTableName);
        }
        let name = r.bytes(name_len).ok_or(DecodeError::Truncated { what: "table name" })?;
        let key_type = r.varint().map_err(DecodeError::varint("key type"))?;
        let key_len = r.varint().map_err(DecodeError::varint("key length"))?;
        let data_types = r.varint().map_err(DecodeError::varint("data types"))?;
        let mut def = Definition {
            table_id,
            name,
            key_type,
            key_len,
            data_types,
            expire: None,
            params: Vec::new(),
            trailing: &[],
        };
        if r.is_empty() {
            if let Some(array) = DataType::in_mask(data_types).find(|t| t.is_array()) {
                return Err(DecodeError::MissingParams(array.name()));
            }
            return Ok(def);
        }
        def.expire = Some(r.varint().map_err(DecodeError::varint("expire"))?);
        for t in DataType::in_mask(data_types).filter(|t| t.has_params()) {
            let missing = |_| DecodeError::MissingParams(t.name());
            let found = r.varint().map_err(missing)?;
            if found != u64::from(t.id()) {
                return Err(DecodeError::ParamsMismatch { expected: t.name(), found });
            }
            let count = if t.is_array() { Some(r.varint().map_err(missing)?) } else { None };
            let period = if t.is_rate() { Some(r.varint().map_err(missing)?) } else { None };
            def.params.push(Param { data_type: t, count, period });
        }
        def.trailing = r.rest();
        Ok(def)
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        varint::encode(self.table_id, out);
        varint::encode(self.name.len() as u64, out);
        out.extend_from_slice(self.name);
        varint::encode(self.key_type, out);
        varint::encode(self.key_len, out);
        varint::encode(self.data_types, out);
        if let Some(expire) = self.expire {
            varint::encode(expire, out);
            for p in &self.params {
                varint::encode(u64::from(p.data_type.id()), out);
                for v in [p.count, p.period].into_iter().flatten() {
                    varint::encode(v, out);
                }
            }
        }
        out.extend_from_slice(self.trailing);
    }

    /// Element count of array type `t` as announced (0 when absent).
    pub fn count(&self, t: DataType) -> u64 {
        self.params.iter().find(|p| p.data_type == t).and_then(|p| p.count).unwrap_or(0)
    }

    /// Period of rate type `t` in ms, when announced.
    pub fn period(&self, t: DataType) -> Option<u64> {
        self.params.iter().find(|p| p.data_type == t).and_then(|p| p.period)
    }

    /// Announced data types that HAProxy 2.6 does not know (their values cannot be decoded; they
    /// come after all known ones, so 2.6 reads the known values and skips the rest).
    pub fn unknown_types(&self) -> u64 {
        self.data_types & !KNOWN_MASK
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
