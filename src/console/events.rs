//! The events timeline: VRRP transitions, server state changes, reloads and upgrades, in one
//! bounded ring per process (the oldest go first), for the console and `lbha show events`.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Events kept: a fixed bound, whatever the daemon goes through.
pub const CAPACITY: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Vrrp,
    Server,
    Reload,
    Upgrade,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Sequence number since the process started, so a poller can ask for what is new.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub kind: Kind,
    /// What it is about: an instance, `backend/server`, the config file.
    pub subject: String,
    pub text: String,
    /// The outcome: false for a failed reload or upgrade, a server going down, a VRRP fault.
    pub ok: bool,
}

#[derive(Debug, Default)]
pub struct Ring {
    events: VecDeque<Event>,
    next: u64,
}

impl Ring {
    pub fn push(&mut self, at_ms: u64, kind: Kind, subject: String, text: String, ok: bool) {
        if self.events.len() == CAPACITY {
            self.events.pop_front();
        }
        self.next += 1;
        self.events.push_back(Event { seq: self.next, at_ms, kind, subject, text, ok });
    }

    /// Events after `since` (a sequence number), oldest first.
    pub fn since(&self, since: u64) -> Vec<Event> {
        self.events.iter().filter(|e| e.seq > since).cloned().collect()
    }
}

static EVENTS: Mutex<Ring> = Mutex::new(Ring { events: VecDeque::new(), next: 0 });

/// Records an event now. Cheap: called where the daemon already logs the change.
pub fn record(kind: Kind, subject: impl Into<String>, text: impl Into<String>, ok: bool) {
    let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut r = EVENTS.lock().unwrap_or_else(|p| p.into_inner());
    r.push(at_ms, kind, subject.into(), text.into(), ok);
}

/// The events after `since`, oldest first.
pub fn snapshot(since: u64) -> Vec<Event> {
    EVENTS.lock().unwrap_or_else(|p| p.into_inner()).since(since)
}

/// `show events`: one line per event, and the JSON the console reads.
pub fn reply(since: u64) -> (String, serde_json::Value) {
    let events = snapshot(since);
    let mut text = String::new();
    for e in &events {
        let when = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_millis(e.at_ms));
        let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        text.push_str(&format!(
            "{} {when} {kind} {} {}{}\n",
            e.seq,
            e.subject,
            e.text,
            if e.ok { "" } else { " [failed]" }
        ));
    }
    if events.is_empty() {
        text.push_str("no events\n");
    }
    (text, serde_json::json!({ "capacity": CAPACITY, "events": events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_keeps_the_newest() {
        let mut r = Ring::default();
        for i in 0..(CAPACITY as u64 + 20) {
            r.push(i, Kind::Server, "b/s".into(), format!("n{i}"), true);
        }
        let all = r.since(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].seq, 21);
        assert_eq!(all.last().unwrap().text, format!("n{}", CAPACITY + 19));
        assert_eq!(r.since(CAPACITY as u64 + 18).len(), 2);
        assert!(r.since(u64::MAX).is_empty());
    }

    #[test]
    fn json_shape() {
        let mut r = Ring::default();
        r.push(5, Kind::Vrrp, "VI_1".into(), "BACKUP -> MASTER".into(), true);
        let j = serde_json::to_value(r.since(0)).unwrap();
        assert_eq!(j[0]["kind"], "vrrp");
        assert_eq!(j[0]["subject"], "VI_1");
        assert_eq!(j[0]["at_ms"], 5);
        assert_eq!(j[0]["ok"], true);
        assert_eq!(j[0]["seq"], 1);
    }
}
