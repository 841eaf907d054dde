//! `vrrp_sync_group`: instances that change state together, as keepalived's `vrrp_sync.c` does.
//!
//! Pure: every member reports its own state into its [`Group`] after each event, and asks the group
//! what the other members require of it. The instance tasks share one `Group` per sync group behind
//! a watch channel, so one member's report wakes the others.
//!
//! - A member whose own interface or trackers fail puts the group in FAULT: the others follow it
//!   into Fault ([`Group::fault_elsewhere`]) and leave Fault when no member has a fault of its own.
//! - A master that loses the election to a better master puts the group in BACKUP: the other
//!   masters step down ([`Directive::Backup`]).
//! - A backup that would take over waits until every other member would too, then they all become
//!   master together ([`Directive::Master`]); keepalived prefers backup to avoid thrashing. Once the
//!   group is MASTER, a member that (re)starts later takes over on its own timer.

use std::collections::BTreeMap;

use super::fsm::State;

/// What one member tells its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub state: State,
    /// A backup that would be master now (down timer expired, or address owner) and waits.
    pub wants_master: bool,
    /// Its own interface or trackers fail (a fault copied from the group does not count).
    pub own_fault: bool,
}

/// keepalived's group state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupState {
    #[default]
    Backup,
    Master,
    Fault,
}

/// What the group asks of one member (faults aside, see [`Group::fault_elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// Step down from Master: the named member lost the election.
    Backup { lost: String },
    /// Take over: every member is ready, or the group is master already.
    Master,
}

/// The members of one sync group and the state they share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    state: GroupState,
    members: BTreeMap<String, Member>,
    /// The member whose lost election put the group in BACKUP.
    lost_by: Option<String>,
}

impl Group {
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// Records `name`'s state. `lost_election` says it just left Master because a better master
    /// advertises. Returns whether anything changed, so watchers are woken only then.
    pub fn report(&mut self, name: &str, m: Member, lost_election: bool) -> bool {
        let before = self.clone();
        let was_master = self.members.get(name).is_some_and(|p| p.state == State::Master);
        self.members.insert(name.to_string(), m);
        if lost_election {
            self.state = GroupState::Backup;
            self.lost_by = Some(name.to_string());
        } else if m.state == State::Master && !was_master {
            // Only a member becoming master makes the group master: a master that has not yet
            // stepped down must not undo a BACKUP decision by reporting again.
            self.state = GroupState::Master;
            self.lost_by = None;
        }
        self.settle();
        *self != before
    }

    /// A member stopped (removed or restarted by a reload).
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.clone();
        self.members.remove(name);
        if self.members.is_empty() {
            self.state = GroupState::Backup;
        }
        self.settle();
        *self != before
    }

    fn settle(&mut self) {
        if self.members.values().any(|m| m.own_fault) {
            self.state = GroupState::Fault;
        } else if self.state == GroupState::Fault {
            self.state = GroupState::Backup;
        }
    }

    /// Another member with a fault of its own, which `name` must follow into Fault.
    pub fn fault_elsewhere(&self, name: &str) -> Option<&str> {
        self.members.iter().find(|(n, m)| n.as_str() != name && m.own_fault).map(|(n, _)| n.as_str())
    }

    /// What `name` must do now, given the last reports.
    pub fn directive(&self, name: &str) -> Option<Directive> {
        let me = self.members.get(name)?;
        let mut others = self.members.iter().filter(|(n, _)| n.as_str() != name).map(|(_, m)| m);
        match (me.state, self.state) {
            (State::Master, GroupState::Backup) => {
                Some(Directive::Backup { lost: self.lost_by.clone().unwrap_or_default() })
            }
            (State::Backup, GroupState::Master) if me.wants_master => Some(Directive::Master),
            (State::Backup, GroupState::Backup) if me.wants_master && others.all(|m| m.wants_master) => {
                Some(Directive::Master)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(state: State, wants_master: bool, own_fault: bool) -> Member {
        Member { state, wants_master, own_fault }
    }

    const BACKUP: Member = Member { state: State::Backup, wants_master: false, own_fault: false };
    const WANTS: Member = Member { state: State::Backup, wants_master: true, own_fault: false };
    const MASTER: Member = Member { state: State::Master, wants_master: false, own_fault: false };

    fn group(members: &[(&str, Member)]) -> Group {
        let mut g = Group::default();
        for (n, m) in members {
            g.report(n, *m, false);
        }
        g
    }

    #[test]
    fn members_become_master_together() {
        let mut g = group(&[("VI_1", BACKUP), ("VI_2", BACKUP)]);
        assert!(g.report("VI_1", WANTS, false));
        assert_eq!(g.directive("VI_1"), None, "VI_2 still hears a master");
        assert_eq!(g.directive("VI_2"), None);
        g.report("VI_2", WANTS, false);
        assert_eq!(g.directive("VI_1"), Some(Directive::Master));
        assert_eq!(g.directive("VI_2"), Some(Directive::Master));
        g.report("VI_1", MASTER, false);
        assert_eq!(g.state(), GroupState::Master);
        assert_eq!(g.directive("VI_1"), None);
        assert_eq!(g.directive("VI_2"), Some(Directive::Master));
        g.report("VI_2", MASTER, false);
        assert_eq!((g.directive("VI_1"), g.directive("VI_2")), (None, None));
    }

    #[test]
    fn a_member_that_is_not_ready_holds_the_group_back() {
        // Initialize (not started yet) counts as not ready, as does a backup hearing a master.
        let g = group(&[("VI_1", WANTS), ("VI_2", m(State::Initialize, false, false)), ("VI_3", WANTS)]);
        assert_eq!(g.directive("VI_1"), None);
        assert_eq!(g.directive("VI_3"), None);
    }

    #[test]
    fn losing_the_election_makes_the_other_masters_step_down() {
        let mut g = group(&[("VI_1", MASTER), ("VI_2", MASTER)]);
        assert_eq!(g.state(), GroupState::Master);
        g.report("VI_1", BACKUP, true);
        assert_eq!(g.state(), GroupState::Backup);
        assert_eq!(g.directive("VI_2"), Some(Directive::Backup { lost: "VI_1".into() }));
        assert_eq!(g.directive("VI_1"), None);
        // VI_2 reporting again before it acts does not make the group master again.
        assert!(!g.report("VI_2", MASTER, false));
        assert_eq!(g.directive("VI_2"), Some(Directive::Backup { lost: "VI_1".into() }));
        g.report("VI_2", BACKUP, false);
        assert_eq!(g.directive("VI_2"), None);
        assert_eq!(g.state(), GroupState::Backup);
    }

    #[test]
    fn one_fault_puts_every_member_in_fault_until_it_clears() {
        let mut g = group(&[("VI_1", MASTER), ("VI_2", MASTER)]);
        g.report("VI_2", m(State::Fault, false, true), false);
        assert_eq!(g.state(), GroupState::Fault);
        assert_eq!(g.fault_elsewhere("VI_1"), Some("VI_2"));
        assert_eq!(g.fault_elsewhere("VI_2"), None, "its own fault is not the group's");
        // No master directive while the group is in FAULT, even when a member would take over.
        g.report("VI_1", m(State::Fault, false, false), false);
        assert_eq!(g.directive("VI_1"), None);
        g.report("VI_2", BACKUP, false);
        assert_eq!(g.state(), GroupState::Backup);
        assert_eq!(g.fault_elsewhere("VI_1"), None);
        g.report("VI_1", WANTS, false);
        g.report("VI_2", WANTS, false);
        assert_eq!(g.directive("VI_1"), Some(Directive::Master));
    }

    #[test]
    fn a_member_restarting_under_a_master_group_takes_over_on_its_own_timer() {
        let mut g = group(&[("VI_1", MASTER), ("VI_2", MASTER)]);
        assert!(g.remove("VI_2"));
        g.report("VI_2", m(State::Initialize, false, false), false);
        g.report("VI_2", BACKUP, false);
        assert_eq!(g.directive("VI_1"), None, "a fresh backup does not pull the masters down");
        assert_eq!(g.directive("VI_2"), None);
        g.report("VI_2", WANTS, false);
        assert_eq!(g.directive("VI_2"), Some(Directive::Master));
    }

    #[test]
    fn reports_say_whether_anything_changed() {
        let mut g = Group::default();
        assert!(g.report("VI_1", BACKUP, false));
        assert!(!g.report("VI_1", BACKUP, false));
        assert!(g.report("VI_1", WANTS, false));
        assert!(g.remove("VI_1"));
        assert!(!g.remove("VI_1"));
        assert_eq!(g.state(), GroupState::Backup);
        assert_eq!(g.directive("VI_1"), None, "unknown members get nothing");
    }

    #[test]
    fn an_emptied_group_forgets_its_state() {
        let mut g = group(&[("VI_1", MASTER)]);
        g.remove("VI_1");
        assert_eq!(g.state(), GroupState::Backup);
    }
}
