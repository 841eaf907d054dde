//! Runtime map changes as operations on a file's entry list, so the same list can be applied
//! again onto the file a reload reads. Operations that named an entry by `#ID` are recorded by
//! the entry's key and value at the time, since ids do not survive a reload.

use super::Entry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Every entry of the key gets the value (`set map FILE KEY VALUE`).
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// One entry, found by its key and former value (`set map FILE #ID VALUE`).
    SetOne {
        key: Vec<u8>,
        old: Vec<u8>,
        value: Vec<u8>,
    },
    /// Every entry of the key (`del map FILE KEY`).
    Del {
        key: Vec<u8>,
    },
    /// One entry, found by key and value (`del map FILE #ID`).
    DelOne {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Clear,
    /// `set-map` from a rule: every entry of the key gets the value, or a new entry is added.
    Upsert {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// `add-acl` from a rule: the pattern is added unless present.
    AddOnce {
        key: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("Unknown map identifier. Please use #<id> or <file>.")]
    NoFile,
    /// HAProxy's reply for the command (`Key not found.`, `entry not found.`).
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
}

impl Op {
    /// How the log names it.
    pub fn describe(&self) -> String {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Op::Add { key, value } => format!("add {} {}", s(key), s(value)),
            Op::Set { key, value } | Op::SetOne { key, value, .. } => format!("set {} {}", s(key), s(value)),
            Op::Del { key } | Op::DelOne { key, .. } => format!("del {}", s(key)),
            Op::Clear => "clear".into(),
            Op::Upsert { key, value } => format!("set-map {} {}", s(key), s(value)),
            Op::AddOnce { key } => format!("add-acl {}", s(key)),
        }
    }
}

impl Op {
    /// A change a rule makes (`set-map`, `add-acl`), run per request.
    pub fn from_rule(&self) -> bool {
        matches!(self, Op::Upsert { .. } | Op::AddOnce { .. })
    }

    /// Refuses what `commit map` could not write back as it is: CR, LF or NUL anywhere (one
    /// value would become several lines, several entries), and blanks in a map's key (the file
    /// splits key and value at the first blank). Keys and values from rules come from requests.
    pub fn check(&self, pattern: bool) -> Result<(), OpError> {
        let (key, value): (&[u8], &[u8]) = match self {
            Op::Add { key, value } | Op::Set { key, value } | Op::Upsert { key, value } => (key, value),
            Op::SetOne { key, value, .. } | Op::DelOne { key, value } => (key, value),
            Op::Del { key } | Op::AddOnce { key } => (key, b""),
            Op::Clear => return Ok(()),
        };
        if key.iter().chain(value).any(|&c| matches!(c, b'\r' | b'\n' | 0)) {
            return Err(OpError::Invalid("a key or value holds CR, LF or NUL".into()));
        }
        if !pattern && key.iter().any(|&c| matches!(c, b' ' | b'\t')) {
            return Err(OpError::Invalid("a map key holds a blank".into()));
        }
        Ok(())
    }
}

/// Drops from `kept` (a file's remembered changes) what `op` makes irrelevant, so that a rule
/// setting one key on every request keeps one change, not one per request: a `set-map` of a key
/// replaces that key's earlier `set-map` and `add-acl` (whatever they added, it sets).
pub fn supersede(kept: &mut Vec<Op>, op: &Op) {
    if let Op::Upsert { key, .. } = op {
        kept.retain(|o| !matches!(o, Op::Upsert { key: k, .. } | Op::AddOnce { key: k } if k == key));
    }
}

/// Whether a rule's change (`set-map`, `add-acl`) would change `entries`: read without a copy,
/// since a rule that sets the same key to the same value runs on every request.
pub fn changes(op: &Op, entries: &[Entry]) -> bool {
    match op {
        Op::Upsert { key, value } => {
            let mut same_key = entries.iter().filter(|e| e.key == *key).peekable();
            same_key.peek().is_none() || same_key.any(|e| e.value != *value)
        }
        Op::AddOnce { key } => !entries.iter().any(|e| e.key == *key),
        _ => true,
    }
}

pub fn apply(op: &Op, entries: &mut Vec<Entry>) -> Result<(), OpError> {
    match op {
        Op::Add { key, value } => entries.push(Entry::new(key.clone(), value.clone())),
        Op::Set { key, value } => {
            if !set_all(entries, key, value) {
                return Err(OpError::NotFound("entry not found."));
            }
        }
        Op::SetOne { key, old, value } => {
            let e = entries
                .iter_mut()
                .find(|e| e.key == *key && e.value == *old)
                .ok_or(OpError::NotFound("entry not found."))?;
            e.value = value.clone();
        }
        Op::Del { key } => {
            let before = entries.len();
            entries.retain(|e| e.key != *key);
            if entries.len() == before {
                return Err(OpError::NotFound("Key not found."));
            }
        }
        Op::DelOne { key, value } => {
            let i = entries
                .iter()
                .position(|e| e.key == *key && e.value == *value)
                .ok_or(OpError::NotFound("Key not found."))?;
            entries.remove(i);
        }
        Op::Clear => entries.clear(),
        Op::Upsert { key, value } => {
            if !set_all(entries, key, value) {
                entries.push(Entry::new(key.clone(), value.clone()));
            }
        }
        Op::AddOnce { key } => {
            if !entries.iter().any(|e| e.key == *key) {
                entries.push(Entry::new(key.clone(), Vec::new()));
            }
        }
    }
    Ok(())
}

/// Gives every entry of `key` the value (`set map` and `set-map`); false when there is none.
fn set_all(entries: &mut [Entry], key: &[u8], value: &[u8]) -> bool {
    let mut found = false;
    for e in entries.iter_mut().filter(|e| e.key == key) {
        e.value = value.to_vec();
        found = true;
    }
    found
}
