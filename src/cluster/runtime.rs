//! Runtime changes kept in step between the nodes: each node keeps a ledger of the last command
//! that set each runtime setting (a server's admin state, weight, address, ...; a runtime VIP),
//! versioned like the config (`decide`), so a node that missed changes while its peer could not
//! reach it takes them when it returns, an older ledger never replaces a newer one, and changes
//! made on both sides of a partition conflict instead of being merged. Pure: commands in, lines out.

use super::decide::{self, Offer, SyncState};
use crate::control::Command;
use crate::control::servers_rt::RtCommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Setting key (`server be/s1 admin`) to the command line that set it last.
pub type Entries = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub state: SyncState,
    pub entries: Entries,
}

impl Default for Ledger {
    /// Version 0 (a node that just started takes its peer's ledger), hash of no entries.
    fn default() -> Self {
        let entries = Entries::new();
        Ledger { state: SyncState { hash: hash(&entries), ..SyncState::default() }, entries }
    }
}

/// Where a command lands in the ledger: its key, and for `add`/`del server` the prefix of the
/// server's other keys, which a new or removed server no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub clears: Option<String>,
}

fn setting(r: &crate::control::ServerRef, what: &str) -> Option<Slot> {
    Some(Slot { key: format!("server {r} {what}"), clears: None })
}

/// The ledger slot of a runtime change passed to the peer; None for anything else.
pub fn slot(cmd: &Command) -> Option<Slot> {
    match cmd {
        Command::EnableServer(r) | Command::DisableServer(r) | Command::SetServerState(r, _) => setting(r, "admin"),
        Command::SetServerWeight(r, _) => setting(r, "weight"),
        Command::VipAdd(v) | Command::VipDel(v) => {
            Some(Slot { key: format!("vip {} dev {}", v.range, v.dev.as_deref().unwrap_or("-")), clears: None })
        }
        Command::Runtime(rt) => match rt {
            RtCommand::AddServer(r, _) | RtCommand::DelServer(r) => {
                Some(Slot { key: format!("server {r}"), clears: Some(format!("server {r} ")) })
            }
            RtCommand::SetAddr(r, ..) => setting(r, "addr"),
            RtCommand::SetCheckPort(r, _) => setting(r, "check-port"),
            RtCommand::SetProbe(r, crate::control::servers_rt::ProbeSetting::CheckAddr(..)) => setting(r, "check-addr"),
            RtCommand::SetProbe(r, crate::control::servers_rt::ProbeSetting::AgentAddr(..)) => setting(r, "agent-addr"),
            RtCommand::SetProbe(r, crate::control::servers_rt::ProbeSetting::AgentPort(_)) => setting(r, "agent-port"),
            RtCommand::SetProbe(r, crate::control::servers_rt::ProbeSetting::AgentSend(_)) => setting(r, "agent-send"),
            RtCommand::SetHealth(r, _) => setting(r, "health"),
            RtCommand::SetAgent(r, _) => setting(r, "agent"),
            RtCommand::SetFqdn(r, _) => setting(r, "fqdn"),
            RtCommand::SetSsl(r, _) => setting(r, "ssl"),
            RtCommand::Health(r, _) => setting(r, "check"),
            RtCommand::Agent(r, _) => setting(r, "agent-check"),
            RtCommand::MaxconnServer(r, _) => setting(r, "maxconn"),
            RtCommand::Frontend(f, _) => Some(Slot { key: format!("frontend {f} state"), clears: None }),
            RtCommand::MaxconnFrontend(f, _) => Some(Slot { key: format!("frontend {f} maxconn"), clears: None }),
            RtCommand::MaxconnGlobal(_) => Some(Slot { key: "global maxconn".into(), clears: None }),
            RtCommand::ShowServersConn(_) | RtCommand::Dns(_) => None,
        },
        _ => None,
    }
}

/// One command's words as a line `parse_line` reads back the same (no `json` prefix).
pub fn line(words: &[String]) -> String {
    let words = match words.first().map(String::as_str) {
        Some("json") => &words[1..],
        _ => words,
    };
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in w.chars() {
            if c == '\\' || c == ';' || c.is_whitespace() {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// SHA-256 of the entries in key order.
pub fn hash(entries: &Entries) -> String {
    let canon = serde_json::to_string(entries).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_bytes());
    d.as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The ledger after a change made on this node.
pub fn record(ours: &Ledger, slot: &Slot, line: &str) -> Ledger {
    let mut entries = ours.entries.clone();
    if let Some(prefix) = &slot.clears {
        entries.retain(|k, _| !k.starts_with(prefix.as_str()));
    }
    entries.insert(slot.key.clone(), line.to_string());
    let h = hash(&entries);
    Ledger { state: decide::changed(&ours.state, &h), entries }
}

/// Servers come before their settings, removals last.
fn rank(line: &str) -> u8 {
    if line.starts_with("add server ") {
        0
    } else if line.starts_with("del server ") {
        2
    } else {
        1
    }
}

/// The lines a node at `ours` runs to reach `theirs`: every setting theirs has that differs.
pub fn to_apply(ours: &Entries, theirs: &Entries) -> Vec<String> {
    let mut lines: Vec<(&String, &String)> = theirs.iter().filter(|(k, v)| ours.get(*k) != Some(*v)).collect();
    lines.sort_by_key(|(k, v)| (rank(v), (*k).clone()));
    lines.into_iter().map(|(_, v)| v.clone()).collect()
}

/// Settings only `ours` has: a forced push from the peer leaves them as they are (there is no
/// command that undoes them); the outcome names them.
pub fn kept(ours: &Entries, theirs: &Entries) -> Vec<String> {
    ours.keys().filter(|k| !theirs.contains_key(*k)).cloned().collect()
}

/// What a node at `ours` does with a ledger offered by its peer: the lines to run, or why not.
pub enum Take {
    AlreadyHave,
    Run(Vec<String>),
    Refuse(String),
}

pub fn take(ours: &Ledger, offer: &Offer, entries: &Entries) -> Take {
    if hash(entries) != offer.hash {
        return Take::Refuse("the offered runtime settings do not have the hash they claim".into());
    }
    match decide::decide(&ours.state, offer) {
        decide::Decision::AlreadyHave => Take::AlreadyHave,
        decide::Decision::Accept => Take::Run(to_apply(&ours.entries, entries)),
        decide::Decision::RefuseOlder(r) | decide::Decision::RefuseConflict(r) => {
            Take::Refuse(format!("runtime settings: {r}"))
        }
    }
}

/// The ledger once the offer's lines ran.
pub fn taken(ours: &Ledger, offer: &Offer, entries: Entries) -> Ledger {
    Ledger { state: decide::taken(&ours.state, offer), entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::parse::{parse_line, split_line};

    fn cmd(l: &str) -> Command {
        parse_line(l).remove(0).command.unwrap()
    }

    fn rec(l: &Ledger, text: &str) -> Ledger {
        let words = split_line(text).remove(0);
        let c = cmd(text);
        record(l, &slot(&c).unwrap_or_else(|| panic!("no slot for {text}")), &line(&words))
    }

    #[test]
    fn each_setting_has_one_slot_and_the_last_command_wins() {
        let l = rec(&Ledger::default(), "disable server be/s1");
        let l = rec(&l, "set server be/s1 state drain");
        let l = rec(&l, "set weight be/s1 30");
        let l = rec(&l, "set weight be/s2 7");
        assert_eq!(l.state.version, 4);
        assert_eq!(l.entries.len(), 3, "{:?}", l.entries);
        assert_eq!(l.entries["server be/s1 admin"], "set server be/s1 state drain");
        assert_eq!(l.entries["server be/s1 weight"], "set weight be/s1 30");
        assert_eq!(l.state.hash, hash(&l.entries));
        // Lines read back as the same command, escapes included.
        assert_eq!(
            line(&split_line("json set server be/a\\ b state maint").remove(0)),
            "set server be/a\\ b state maint"
        );
        assert_eq!(
            cmd(&line(&split_line("set server be/a\\;b state maint").remove(0))),
            cmd("set server be/a\\;b state maint")
        );
        // Read-only commands have no slot.
        assert!(slot(&cmd("show servers state")).is_none());
        assert!(slot(&cmd("set server be/s1 addr 192.0.2.9 port 80")).is_some());
    }

    #[test]
    fn a_removed_or_new_server_forgets_its_old_settings() {
        let l = rec(&Ledger::default(), "set weight be/s1 30");
        let l = rec(&l, "set weight be/s10 3");
        let l = rec(&l, "set server be/s1 state maint");
        let l = rec(&l, "del server be/s1");
        assert_eq!(l.entries.keys().cloned().collect::<Vec<_>>(), ["server be/s1", "server be/s10 weight"]);
        let l = rec(&l, "add server be/s1 192.0.2.5:80");
        assert_eq!(l.entries["server be/s1"], "add server be/s1 192.0.2.5:80");
    }

    #[test]
    fn a_node_that_missed_changes_runs_them_in_order() {
        let base = rec(&Ledger::default(), "set weight be/s1 5");
        let mut a = rec(&base, "add server be/s9 192.0.2.9:80");
        a = rec(&a, "set weight be/s9 2");
        a = rec(&a, "disable server be/s1");
        a = rec(&a, "set weight be/s1 5");
        let o = decide::offer("a", &a.state, false, &[]);
        let Take::Run(lines) = take(&base, &o, &a.entries) else { panic!("not taken") };
        assert_eq!(lines, ["add server be/s9 192.0.2.9:80", "disable server be/s1", "set weight be/s9 2"]);
        let b = taken(&base, &o, a.entries.clone());
        assert_eq!(b.state.hash, a.state.hash);
        // Taken again: nothing to do; an older ledger is refused.
        assert!(matches!(take(&b, &o, &a.entries), Take::AlreadyHave));
        let old = decide::offer("a", &base.state, false, &[]);
        match take(&b, &old, &base.entries) {
            Take::Refuse(r) => assert!(r.contains("older"), "{r}"),
            _ => panic!("older taken"),
        }
        // A restarted node (version 0) takes whatever its peer has.
        assert!(matches!(take(&Ledger::default(), &o, &a.entries), Take::Run(_)));
    }

    #[test]
    fn changes_on_both_sides_conflict_and_a_forged_hash_is_refused() {
        let base = rec(&Ledger::default(), "set weight be/s1 5");
        let a = rec(&base, "disable server be/s1");
        let b = rec(&base, "set server be/s2 state drain");
        let o = decide::offer("a", &a.state, false, &[]);
        match take(&b, &o, &a.entries) {
            Take::Refuse(r) => assert!(r.contains("conflict: both nodes changed"), "{r}"),
            _ => panic!("conflict taken"),
        }
        assert_eq!(decide::relation(&a.state, &b.state), decide::Relation::Diverged);
        match take(&base, &o, &b.entries) {
            Take::Refuse(r) => assert!(r.contains("hash"), "{r}"),
            _ => panic!("forged taken"),
        }
        // Forced: taken, and what only b had is named.
        let forced = decide::offer("a", &decide::pushed(&a.state, b.state.version), true, &[]);
        assert!(matches!(take(&b, &forced, &a.entries), Take::Run(_)));
        assert_eq!(kept(&b.entries, &a.entries), ["server be/s2 admin"]);
    }
}
