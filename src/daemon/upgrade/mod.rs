//! Binary upgrade without a refused connection (HAProxy's `expose-fd listeners`, pingora's
//! `transfer_fd`): the running daemon starts the new executable, which takes the very sockets the
//! old one listens on, so the kernel never refuses a connection; the old one then drains.
//!
//! ```text
//!  lbha upgrade ──"upgrade BINARY"──► old: spawn BINARY run -c CONFIG --upgrade-from SOCKET
//!  new ──"_upgrade"──────────────────► old            (control socket, checked: root or same uid)
//!  new ◄── Hello + listening fds ────── old            (old keeps accepting)
//!      load + check the config, adopt the fds (bind only new addresses), accept, start checks
//!  new ── Ready {VRRP instances} ────► old            (both accept on the same sockets now)
//!                                       old: pause control socket, stop API, hand VRRP over
//!                                            (no priority-0 advert, VIPs stay)
//!  new ◄── Takeover + control/API fds,  old
//!          VRRP roles, server state
//!      serve control socket and API, start VRRP in the handed-over roles
//!  new ── Done ──────────────────────► old: stop accepting, answer the CLI, drain
//!                                           (bounded by hard_stop_after), exit 0
//! ```
//!
//! Anything failing before `Done` leaves the old daemon serving: a bad config or a socket the new
//! process cannot take makes it send `Abort` and exit 1; after `Takeover` the old one takes its
//! control socket, API and VRRP roles back. The CLI gets the reason either way.

pub mod new;
pub mod old;
pub mod wire;

use crate::vrrp::fsm::State;
use crate::vrrp::{HandedOver, InstanceKey, Successor};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

pub use old::{Attach, UpgradeMsg, UpgradeRequest, Upgrades};

/// Bumped on any incompatible change; both sides refuse a peer that speaks another one.
pub const PROTOCOL: u32 = 1;

/// One message of the handover; descriptors travel with the frame (see [`wire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Old → new. Descriptor `i` is the listening socket of `listeners[i]`.
    Hello { protocol: u32, pid: u32, version: String, listeners: Vec<SocketAddr>, servers_state: String },
    /// New → old: accepting on the sockets; these are the VRRP instances it will run.
    Ready { vrrp: Vec<Successor> },
    /// Old → new, once it stopped its control socket, API and VRRP instances. Descriptors: the
    /// control socket, then the API's if `api` is set, then a memfd with the stick tables
    /// ([`crate::stktable::handover`]) if `tables` is set.
    Takeover {
        control: PathBuf,
        api: Option<SocketAddr>,
        vrrp: Vec<Role>,
        servers_state: String,
        #[serde(default)]
        tables: bool,
    },
    /// New → old: everything runs in the new process.
    Done { pid: u32 },
    /// Either side gives up; the old process keeps (or takes back) everything.
    Abort { reason: String },
}

/// A VRRP instance's role as the old process left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub key: InstanceKey,
    /// keepalived's word: MASTER, BACKUP, FAULT, STOP.
    pub state: String,
}

impl Role {
    pub fn from_handed(h: &HandedOver) -> Role {
        Role { key: h.key.clone(), state: h.state.keepalived_name().to_string() }
    }

    /// None for a word this version does not know (the instance then starts afresh).
    pub fn to_handed(&self) -> Option<HandedOver> {
        State::from_keepalived_name(&self.state).map(|state| HandedOver { key: self.key.clone(), state })
    }
}

/// Why an upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("cannot reach the running lbha on {path}: {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Wire(#[from] wire::WireError),
    #[error("no answer from the other process within {0}s")]
    Timeout(u64),
    #[error("unexpected message from the other process: {0}")]
    Protocol(String),
    #[error("{0}")]
    Aborted(String),
}

fn encode(msg: &Message) -> Vec<u8> {
    // Serializing plain data structures cannot fail; an empty object would be refused by the peer.
    wire::encode(&serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec()))
}

fn decode(frame: &wire::Frame) -> Result<Message, UpgradeError> {
    serde_json::from_slice(&frame.json)
        .map_err(|e| UpgradeError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&frame.json))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let key = InstanceKey { name: "VI_1".into(), interface: "eth0".into(), vrid: 51 };
        let msgs = vec![
            Message::Hello {
                protocol: PROTOCOL,
                pid: 7,
                version: "0.1.0".into(),
                listeners: vec!["127.0.0.1:80".parse().unwrap()],
                servers_state: "1\n".into(),
            },
            Message::Ready {
                vrrp: vec![Successor { key: key.clone(), vips: ["192.0.2.100/32 dev eth0".to_string()].into() }],
            },
            Message::Takeover {
                control: "/run/lbha/lbha.sock".into(),
                api: None,
                vrrp: vec![Role { key: key.clone(), state: "MASTER".into() }],
                servers_state: String::new(),
                tables: true,
            },
            Message::Done { pid: 8 },
            Message::Abort { reason: "bad config".into() },
        ];
        for m in msgs {
            let frame = encode(&m);
            let back = decode(&wire::Frame { json: frame[8..].to_vec(), fds: vec![] }).unwrap();
            assert_eq!(back, m);
        }
        let r = Role { key, state: "MASTER".into() };
        assert_eq!(r.to_handed().map(|h| h.state), Some(State::Master));
        assert!(Role { state: "LEADER".into(), ..r }.to_handed().is_none());
    }
}
