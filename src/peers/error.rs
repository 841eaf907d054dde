//! Why a peers message could not be decoded, and what a 2.6 node does about it.

use super::varint::VarintError;

/// What the session should do with a message that failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send the protocol error (`01 00`) and close.
    ProtocolError,
    /// Send the size-limit error (`01 01`) and close.
    SizeLimit,
    /// Skip the message and keep the session (a table definition that fails this way also
    /// deselects the current table, so the updates behind it are skipped too).
    Ignore,
}

/// A decoding failure; `what` names the field being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} runs past the end of the message")]
    Truncated { what: &'static str },
    #[error("{what}: encoded integer longer than 64 bits")]
    BadVarint { what: &'static str },
    #[error("message length encoded in more than 5 bytes")]
    BadLength,
    #[error("message of {len} bytes exceeds the limit of {max}")]
    Oversized { len: u64, max: usize },
    #[error("message class 255 is reserved")]
    ReservedClass,
    #[error("unknown message class {class}")]
    UnknownClass { class: u8 },
    #[error("unknown message type {typ} in class {class}")]
    UnknownType { class: u8, typ: u8 },
    #[error("table definition with an empty name")]
    EmptyTableName,
    #[error("unknown key type {0}")]
    UnknownKeyType(u64),
    #[error("key length {len} is impossible for key type {key_type}")]
    BadKeyLength { key_type: &'static str, len: u64 },
    #[error("table definition lacks the parameters of data type {0}")]
    MissingParams(&'static str),
    #[error("table definition announces parameters of type {found} where {expected} was due")]
    ParamsMismatch { expected: &'static str, found: u64 },
    #[error("dictionary entry id {0} is outside 1..=128")]
    BadDictId(u64),
    #[error("dictionary value of {declared} bytes holds {used}")]
    BadDictLength { declared: u64, used: u64 },
}

impl DecodeError {
    pub(crate) fn varint(what: &'static str) -> impl Fn(VarintError) -> DecodeError {
        move |e| match e {
            VarintError::Truncated => DecodeError::Truncated { what },
            VarintError::Overflow => DecodeError::BadVarint { what },
        }
    }

    /// HAProxy 2.6's reaction: unknown classes/types and unusable definitions are skipped, a
    /// too-long message gets the size-limit error, anything malformed the protocol error.
    pub fn disposition(&self) -> Disposition {
        match self {
            DecodeError::Oversized { .. } => Disposition::SizeLimit,
            DecodeError::UnknownClass { .. }
            | DecodeError::UnknownType { .. }
            | DecodeError::UnknownKeyType(_)
            | DecodeError::BadKeyLength { .. }
            | DecodeError::MissingParams(_)
            | DecodeError::ParamsMismatch { .. } => Disposition::Ignore,
            DecodeError::Truncated { .. }
            | DecodeError::BadVarint { .. }
            | DecodeError::BadLength
            | DecodeError::ReservedClass
            | DecodeError::EmptyTableName
            | DecodeError::BadDictId(_)
            | DecodeError::BadDictLength { .. } => Disposition::ProtocolError,
        }
    }
}
