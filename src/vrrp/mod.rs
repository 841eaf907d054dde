//! VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568), keepalived-compatible.
//!
//! `packet` is the wire codec (adverts, checksums, gratuitous ARP / unsolicited NA frames) and `fsm` the
//! pure per-instance state machine. Both are free of I/O and clock reads so they are tested directly;
//! sockets, timers, VIP installation and notify scripts live at the edges and carry out `fsm::Action`s.

pub mod fsm;
pub mod packet;
