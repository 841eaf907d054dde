//! The backend rules that act before cookies and stick tables, in HAProxy's order:
//!
//! ```text
//! force-persist / ignore-persist (one list, the first whose condition holds sets the mode)
//!   ─► use-server (the first rule that holds and names a server it may use assigns it)
//!   ─► cookie (skipped once assigned or with ignore-persist) ─► stick match ─► balance
//! ```
//!
//! A server is "usable" to these rules while it is not DOWN or in MAINT (HAProxy's
//! `cur_state != SRV_ST_STOPPED`); `force-persist` lifts that for every persistence mechanism.
//! Conditions are generic so HTTP (`routing::Condition`) and TCP (`tcprules::Cond`) backends share
//! the logic; the caller evaluates them.

use crate::sample::LogFormat;

/// What `force-persist` / `ignore-persist` set for one stream (HAProxy's `SF_FORCE_PRST` and
/// `SF_IGNORE_PRST`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PersistMode {
    #[default]
    Normal,
    /// A designated server is taken even when DOWN or in MAINT, and the last retry does not
    /// redispatch.
    Force,
    /// Cookie persistence is ignored: the cookie assigns no server (it is still stripped in
    /// indirect or prefix mode) and the response's cookie is neither rewritten nor inserted.
    /// Stick tables still apply, as in HAProxy.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistAction {
    Force,
    Ignore,
}

impl PersistAction {
    /// HAProxy's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            PersistAction::Force => "force-persist",
            PersistAction::Ignore => "ignore-persist",
        }
    }
}

#[derive(Debug)]
pub struct PersistRule<C> {
    pub action: PersistAction,
    pub cond: C,
}

/// The server a `use-server` rule names.
#[derive(Debug)]
pub enum ServerTarget {
    /// A server of the backend, by index.
    Server(usize),
    /// A log-format string giving a server name per request.
    Dynamic(LogFormat),
}

#[derive(Debug)]
pub struct UseServer<C> {
    pub target: ServerTarget,
    pub cond: C,
}

/// One backend's `force-persist`, `ignore-persist` and `use-server` rules, in written order.
#[derive(Debug)]
pub struct ServerRules<C> {
    pub persist: Vec<PersistRule<C>>,
    pub use_server: Vec<UseServer<C>>,
}

impl<C> Default for ServerRules<C> {
    fn default() -> Self {
        Self { persist: Vec::new(), use_server: Vec::new() }
    }
}

/// What the rules decided before cookies and stick tables are read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pre {
    pub mode: PersistMode,
    /// The server a `use-server` rule assigned.
    pub server: Option<usize>,
}

impl<C> ServerRules<C> {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.use_server.is_empty()
    }

    /// The persistence mode: the first `force-persist` or `ignore-persist` rule that holds.
    pub fn mode(&self, holds: &dyn Fn(&C) -> bool) -> PersistMode {
        match self.persist.iter().find(|r| holds(&r.cond)).map(|r| r.action) {
            Some(PersistAction::Force) => PersistMode::Force,
            Some(PersistAction::Ignore) => PersistMode::Ignore,
            None => PersistMode::Normal,
        }
    }

    /// The server `use-server` assigns. A rule that holds but names a server that is DOWN
    /// (without force-persist) passes on to the next rule; a dynamic name that names no server
    /// ends the rules (HAProxy falls back to balancing then). `resolve` renders a dynamic
    /// target into a server index; `usable(i)`: server i is neither DOWN nor in MAINT.
    pub fn use_server(
        &self,
        holds: &dyn Fn(&C) -> bool,
        resolve: &dyn Fn(&LogFormat) -> Option<usize>,
        usable: &dyn Fn(usize) -> bool,
        mode: PersistMode,
    ) -> Option<usize> {
        for r in &self.use_server {
            if !holds(&r.cond) {
                continue;
            }
            let i = match &r.target {
                ServerTarget::Server(i) => *i,
                ServerTarget::Dynamic(f) => resolve(f)?,
            };
            if usable(i) || mode == PersistMode::Force {
                return Some(i);
            }
        }
        None
    }

    /// Both steps: the mode, then the assigned server.
    pub fn pre(
        &self,
        holds: &dyn Fn(&C) -> bool,
        resolve: &dyn Fn(&LogFormat) -> Option<usize>,
        usable: &dyn Fn(usize) -> bool,
    ) -> Pre {
        let mode = self.mode(holds);
        Pre { mode, server: self.use_server(holds, resolve, usable, mode) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conditions are booleans here: `true` holds.
    fn rules(persist: &[(PersistAction, bool)], use_server: &[(usize, bool)]) -> ServerRules<bool> {
        ServerRules {
            persist: persist.iter().map(|&(action, cond)| PersistRule { action, cond }).collect(),
            use_server: use_server
                .iter()
                .map(|&(i, cond)| UseServer { target: ServerTarget::Server(i), cond })
                .collect(),
        }
    }

    const HOLDS: &dyn Fn(&bool) -> bool = &|c: &bool| *c;
    const NO_NAMES: &dyn Fn(&LogFormat) -> Option<usize> = &|_| None;

    #[test]
    fn the_first_persist_rule_that_holds_sets_the_mode() {
        use PersistAction::{Force, Ignore};
        assert_eq!(rules(&[], &[]).mode(HOLDS), PersistMode::Normal);
        assert_eq!(rules(&[(Force, false), (Ignore, true)], &[]).mode(HOLDS), PersistMode::Ignore);
        assert_eq!(rules(&[(Force, true), (Ignore, true)], &[]).mode(HOLDS), PersistMode::Force);
        assert_eq!(rules(&[(Ignore, true), (Force, true)], &[]).mode(HOLDS), PersistMode::Ignore);
        assert_eq!(rules(&[(Ignore, false), (Force, false)], &[]).mode(HOLDS), PersistMode::Normal);
    }

    #[test]
    fn use_server_takes_the_first_rule_that_holds() {
        let r = rules(&[], &[(2, false), (1, true), (0, true)]);
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &|_| true, PersistMode::Normal), Some(1));
        let none = rules(&[], &[(2, false)]);
        assert_eq!(none.use_server(HOLDS, NO_NAMES, &|_| true, PersistMode::Normal), None);
    }

    #[test]
    fn a_down_server_passes_on_unless_forced() {
        let r = rules(&[], &[(1, true), (0, true)]);
        let up = |i: usize| i != 1;
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &up, PersistMode::Normal), Some(0));
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &up, PersistMode::Ignore), Some(0));
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &up, PersistMode::Force), Some(1));
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &|_| false, PersistMode::Normal), None);
    }

    #[test]
    fn an_unknown_dynamic_name_ends_the_rules() {
        let mut r = rules(&[], &[(0, true)]);
        let f = LogFormat::parse("%[req.hdr(x-srv)]").unwrap();
        r.use_server.insert(0, UseServer { target: ServerTarget::Dynamic(f), cond: true });
        assert_eq!(r.use_server(HOLDS, NO_NAMES, &|_| true, PersistMode::Normal), None);
        assert_eq!(r.use_server(HOLDS, &|_| Some(3), &|_| true, PersistMode::Normal), Some(3));
        // A dynamic name of a DOWN server passes on like a static one.
        assert_eq!(r.use_server(HOLDS, &|_| Some(3), &|i| i != 3, PersistMode::Normal), Some(0));
    }

    #[test]
    fn pre_combines_both() {
        let r = rules(&[(PersistAction::Force, true)], &[(1, true)]);
        assert_eq!(r.pre(HOLDS, NO_NAMES, &|_| false), Pre { mode: PersistMode::Force, server: Some(1) });
        assert!(rules(&[], &[]).is_empty());
    }
}
