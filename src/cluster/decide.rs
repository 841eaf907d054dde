//! Which config wins: versions, history and the decision a node takes on an offer from its peer.
//! Pure: no clock (times come in), no I/O (validation is a function passed in).

use serde::{Deserialize, Serialize};

/// How many earlier hashes a node remembers: a peer that missed more changes than this while
/// away is told it conflicts, and the operator pushes.
pub const HISTORY: usize = 256;

/// A node's sync state, kept in `STATE_DIR/cluster.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// 0: never changed nor synced since this node started using `[cluster]`.
    pub version: u64,
    /// Content hash of the shared part (see `shared::shared_hash`).
    pub hash: String,
    /// Hashes of earlier versions, oldest first, the direct base last.
    pub history: Vec<String>,
    /// The last exchange with the peer and how it ended.
    pub last_sync: Option<LastSync>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// Unix seconds.
    pub at: u64,
    pub outcome: String,
}

/// A config offered to the peer (the text travels beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub from: String,
    pub version: u64,
    pub hash: String,
    pub history: Vec<String>,
    /// `lbha cluster push`: replace the peer's config even if it changed on its own.
    pub force: bool,
    /// The sender's local keys: both nodes must strip the same ones or no hash would ever agree.
    pub local_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Same shared part already: nothing to apply.
    AlreadyHave,
    Accept,
    /// The offer is one of ours from before: taking it would undo later changes.
    RefuseOlder(String),
    /// Both nodes changed the config since they last agreed.
    RefuseConflict(String),
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// What a node at `ours` does with `offer`.
pub fn decide(ours: &SyncState, offer: &Offer) -> Decision {
    if offer.hash == ours.hash {
        return Decision::AlreadyHave;
    }
    if offer.force || ours.version == 0 || offer.history.contains(&ours.hash) {
        return Decision::Accept;
    }
    if ours.history.contains(&offer.hash) {
        return Decision::RefuseOlder(format!(
            "{}'s version {} ({}) is older than this node's version {} ({}): refusing to go back",
            offer.from,
            offer.version,
            short(&offer.hash),
            ours.version,
            short(&ours.hash)
        ));
    }
    Decision::RefuseConflict(format!(
        "conflict: both nodes changed the config since they last agreed ({}: version {} ({}), this node: version {} ({})); \
         nothing was merged: run `lbha cluster diff` and `lbha cluster push` on the node whose config should win",
        offer.from,
        offer.version,
        short(&offer.hash),
        ours.version,
        short(&ours.hash)
    ))
}

/// Where two nodes stand, from one side (for catch-up and `lbha cluster status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    InSync,
    /// The peer lacks our later changes: we push.
    PeerBehind,
    /// We lack the peer's: it pushes.
    PeerAhead,
    Diverged,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::InSync => "in sync",
            Relation::PeerBehind => "peer behind",
            Relation::PeerAhead => "peer ahead",
            Relation::Diverged => "diverged",
        }
    }
}

pub fn relation(ours: &SyncState, peer: &SyncState) -> Relation {
    if ours.hash == peer.hash {
        Relation::InSync
    } else if ours.history.contains(&peer.hash) || (peer.version == 0 && ours.version > 0) {
        Relation::PeerBehind
    } else if peer.history.contains(&ours.hash) || (ours.version == 0 && peer.version > 0) {
        Relation::PeerAhead
    } else {
        Relation::Diverged
    }
}

fn with_history(mut history: Vec<String>, base: &str) -> Vec<String> {
    if !base.is_empty() && history.last().map(String::as_str) != Some(base) {
        history.push(base.to_string());
    }
    let extra = history.len().saturating_sub(HISTORY);
    history.drain(..extra);
    history
}

/// The state after a change made on this node.
pub fn changed(ours: &SyncState, new_hash: &str) -> SyncState {
    SyncState {
        version: ours.version + 1,
        hash: new_hash.to_string(),
        history: with_history(ours.history.clone(), &ours.hash),
        last_sync: ours.last_sync.clone(),
    }
}

/// This node's current config as an offer.
pub fn offer(from: &str, ours: &SyncState, force: bool, local_keys: &[String]) -> Offer {
    Offer {
        from: from.to_string(),
        version: ours.version,
        hash: ours.hash.clone(),
        history: ours.history.clone(),
        force,
        local_keys: local_keys.to_vec(),
    }
}

/// A push replaces whatever the peer has: its version goes past both.
pub fn pushed(ours: &SyncState, peer_version: u64) -> SyncState {
    SyncState { version: ours.version.max(peer_version) + 1, ..ours.clone() }
}

/// The state after taking an accepted offer: never a lower version than before.
pub fn taken(ours: &SyncState, offer: &Offer) -> SyncState {
    let mut history = offer.history.clone();
    if offer.force {
        // What this node had stays known, so an old copy of it is refused later.
        history = with_history(history, &ours.hash);
    }
    SyncState {
        version: offer.version.max(ours.version + u64::from(offer.force)),
        hash: offer.hash.clone(),
        history: with_history(history, ""),
        last_sync: ours.last_sync.clone(),
    }
}

/// A prepared change: the merged config to write on commit and the state it brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub text: String,
    pub state: SyncState,
}

/// Why a prepare was refused; `conflict` maps to HTTP 409 for the API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub conflict: bool,
}

/// Phase one on the receiving node: decide, merge the offer's shared part with our local
/// values, check the result has exactly the offered shared part, and validate the whole.
pub fn prepare(
    ours: &SyncState,
    our_text: &str,
    offer: &Offer,
    offer_text: &str,
    local_keys: &[String],
    validate: impl FnOnce(&str) -> Result<(), String>,
) -> Result<Option<Prepared>, Refusal> {
    let refuse = |reason: String, conflict: bool| Refusal { reason, conflict };
    if offer.local_keys != local_keys {
        return Err(refuse(
            format!(
                "local_keys differ between the nodes ({}: {:?}; this node: {:?}): make them the same on both",
                offer.from, offer.local_keys, local_keys
            ),
            false,
        ));
    }
    let sent = super::shared::shared_hash(offer_text, local_keys).map_err(|e| refuse(e, false))?;
    if sent != offer.hash {
        return Err(refuse(
            format!("the offered config does not have the hash it claims ({})", short(&offer.hash)),
            false,
        ));
    }
    match decide(ours, offer) {
        Decision::AlreadyHave => return Ok(None),
        Decision::Accept => {}
        Decision::RefuseOlder(r) => return Err(refuse(r, true)),
        Decision::RefuseConflict(r) => return Err(refuse(r, true)),
    }
    let text = super::shared::merge(offer_text, our_text, local_keys).map_err(|e| refuse(e, false))?;
    let merged = super::shared::shared_hash(&text, local_keys).map_err(|e| refuse(e, false))?;
    if merged != offer.hash {
        return Err(refuse("merging with this node's local settings changed the shared part".into(), false));
    }
    validate(&text)
        .map_err(|e| refuse(format!("the config is not valid with this node's local settings: {e}"), false))?;
    Ok(Some(Prepared { text, state: taken(ours, offer) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(version: u64, hash: &str, history: &[&str]) -> SyncState {
        SyncState {
            version,
            hash: hash.into(),
            history: history.iter().map(|s| s.to_string()).collect(),
            last_sync: None,
        }
    }
    fn off(version: u64, hash: &str, history: &[&str]) -> Offer {
        offer("a", &st(version, hash, history), false, &[])
    }

    #[test]
    fn newer_is_accepted_older_refused_same_is_a_no_op() {
        let b = st(3, "h3", &["h1", "h2"]);
        assert_eq!(decide(&b, &off(4, "h4", &["h1", "h2", "h3"])), Decision::Accept);
        // Several versions at once: a node catching up.
        assert_eq!(decide(&b, &off(6, "h6", &["h2", "h3", "h4", "h5"])), Decision::Accept);
        assert_eq!(decide(&b, &off(3, "h3", &["h1", "h2"])), Decision::AlreadyHave);
        match decide(&b, &off(2, "h2", &["h1"])) {
            Decision::RefuseOlder(r) => assert!(r.contains("older"), "{r}"),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn changes_on_both_sides_of_a_partition_conflict() {
        let base = st(4, "h4", &["h3"]);
        let a = changed(&base, "ha5");
        let b = changed(&base, "hb5");
        assert_eq!((a.version, b.version), (5, 5));
        match decide(&b, &offer("a", &a, false, &[])) {
            Decision::RefuseConflict(r) => {
                assert!(r.starts_with("conflict: both nodes changed"), "{r}");
                assert!(r.contains("lbha cluster push"), "{r}");
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(relation(&a, &b), Relation::Diverged);
        // A push overrides, and its version passes both.
        let a = pushed(&a, b.version);
        let o = offer("a", &a, true, &[]);
        assert_eq!(decide(&b, &o), Decision::Accept);
        let b2 = taken(&b, &o);
        assert_eq!((b2.version, b2.hash.as_str()), (6, "ha5"));
        assert!(b2.history.contains(&"hb5".to_string()));
        assert_eq!(relation(&a, &b2), Relation::InSync);
    }

    #[test]
    fn relations_for_catch_up() {
        let b = st(2, "h2", &["h1"]);
        let a = changed(&changed(&changed(&b, "h3"), "h4"), "h5");
        assert_eq!(relation(&a, &b), Relation::PeerBehind);
        assert_eq!(relation(&b, &a), Relation::PeerAhead);
        assert_eq!(relation(&a, &a), Relation::InSync);
        // A node that never synced takes its peer's config.
        let fresh = st(0, "x", &[]);
        assert_eq!(relation(&a, &fresh), Relation::PeerBehind);
        assert_eq!(decide(&fresh, &offer("a", &a, false, &[])), Decision::Accept);
        // Two fresh nodes that differ: nobody wins on their own.
        assert_eq!(relation(&st(0, "x", &[]), &st(0, "y", &[])), Relation::Diverged);
    }

    #[test]
    fn history_is_bounded_and_keeps_the_latest() {
        let mut s = st(0, "h0", &[]);
        for i in 1..=(HISTORY as u64 + 10) {
            s = changed(&s, &format!("h{i}"));
        }
        assert_eq!(s.history.len(), HISTORY);
        assert_eq!(s.history.last().map(String::as_str), Some(format!("h{}", HISTORY + 9).as_str()));
    }

    const OURS: &str = "[cluster]\nnode = \"b\"\n[[vrrp_instance]]\nname = \"V\"\npriority = 100\ninterface = \"e0\"\n";
    const THEIRS: &str =
        "[cluster]\nnode = \"a\"\n[[vrrp_instance]]\nname = \"V\"\npriority = 150\ninterface = \"e1\"\n";

    fn keys() -> Vec<String> {
        crate::config::cluster::DEFAULT_LOCAL_KEYS.iter().map(|s| s.to_string()).collect()
    }

    fn theirs_offer(ours: &SyncState) -> Offer {
        let h = crate::cluster::shared::shared_hash(THEIRS, &keys()).unwrap();
        Offer {
            version: ours.version + 1,
            hash: h,
            history: vec![ours.hash.clone()],
            ..offer("a", ours, false, &keys())
        }
    }

    #[test]
    fn prepare_merges_validates_and_reports_why_not() {
        let ours = st(1, &crate::cluster::shared::shared_hash(OURS, &keys()).unwrap(), &[]);
        let o = theirs_offer(&ours);
        let p = prepare(&ours, OURS, &o, THEIRS, &keys(), |_| Ok(())).unwrap().unwrap();
        assert!(p.text.contains("priority = 100") && p.text.contains("\"e1\""), "{}", p.text);
        assert_eq!(p.state.version, 2);
        // The whole result is validated with our local settings; a refusal says why.
        let r = prepare(&ours, OURS, &o, THEIRS, &keys(), |_| Err("bad priority".into())).unwrap_err();
        assert!(!r.conflict && r.reason.contains("bad priority"), "{r:?}");
        // A text that does not match its hash.
        let r = prepare(&ours, OURS, &o, &THEIRS.replace("e1", "e2"), &keys(), |_| Ok(())).unwrap_err();
        assert!(r.reason.contains("hash"), "{r:?}");
        // Different local keys.
        let mut o2 = o.clone();
        o2.local_keys.push("api.bind".into());
        assert!(prepare(&ours, OURS, &o2, THEIRS, &keys(), |_| Ok(())).unwrap_err().reason.contains("local_keys"));
        // A conflict is flagged as one.
        let diverged = st(2, "other", &[]);
        let r = prepare(&diverged, OURS, &o, THEIRS, &keys(), |_| Ok(())).unwrap_err();
        assert!(r.conflict, "{r:?}");
        // Nothing to do when the shared part is already ours.
        let same = st(1, &o.hash, &[]);
        assert_eq!(prepare(&same, OURS, &o, THEIRS, &keys(), |_| Ok(())), Ok(None));
    }
}
