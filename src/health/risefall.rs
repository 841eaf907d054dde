//! HAProxy's rise/fall hysteresis as a pure counter.
//!
//! HAProxy keeps one `health` number per check in `0..=rise+fall-1`: the server is UP while
//! `health >= rise`. A failure while UP decrements it and drops straight to 0 (DOWN) once it
//! falls under `rise`; a success while DOWN increments it and jumps straight to the top (fully UP)
//! once it reaches `rise`. So `fall` consecutive failures take a fully UP server down, `rise`
//! consecutive successes bring a fully DOWN server up, and any opposite result resets the progress.

use std::fmt;

/// Where a server starts before its first check (HAProxy's `init-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitState {
    /// Up; `fall` failures are needed to take it down.
    FullyUp,
    /// Up, but the first failed check takes it down (HAProxy's default).
    Up,
    /// Down, but the first successful check brings it up.
    Down,
    /// Down; `rise` successes are needed to bring it up (a server restored DOWN from saved state).
    FullyDown,
    /// The counter where the server left it (a checker restarted on a reload or a runtime
    /// change), capped at the top.
    At(u32),
}

impl InitState {
    /// `true` is HAProxy's default start; `false` is a server known to be down, which must prove
    /// itself with `rise` successes.
    pub fn from_start_up(start_up: bool) -> Self {
        if start_up { Self::Up } else { Self::FullyDown }
    }
}

/// Health as the stats page shows it: stable, or on its way to the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Up,
    Down,
    /// Still UP, with `fails` consecutive failed checks counted towards `fall`.
    GoingDown {
        fails: u32,
    },
    /// Still DOWN, with `oks` consecutive successful checks counted towards `rise`.
    GoingUp {
        oks: u32,
    },
}

/// A change of the server's availability, with the check result that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Up { reason: String },
    Down { reason: String },
}

impl Transition {
    pub fn reason(&self) -> &str {
        match self {
            Self::Up { reason } | Self::Down { reason } => reason,
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up { .. })
    }
}

/// The rise/fall counter of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    /// HAProxy's `check->health`, in `0..=rise+fall-1`.
    health: u32,
}

impl RiseFall {
    /// `rise` and `fall` below 1 are treated as 1 (config validation rejects them earlier).
    pub fn new(rise: u32, fall: u32, start_up: bool) -> Self {
        Self::with_init(rise, fall, InitState::from_start_up(start_up))
    }

    pub fn with_init(rise: u32, fall: u32, init: InitState) -> Self {
        let rise = rise.max(1);
        let fall = fall.max(1);
        let mut rf = Self { rise, fall, health: 0 };
        rf.health = match init {
            InitState::FullyUp => rf.top(),
            InitState::Up => rise,
            InitState::Down => rise - 1,
            InitState::FullyDown => 0,
            InitState::At(h) => h.min(rf.top()),
        };
        rf
    }

    /// Takes the counter from elsewhere (an admin change set it, see `state::ServerRt`).
    pub fn set_health(&mut self, health: u32) {
        self.health = health.min(self.top());
    }

    fn top(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }

    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    /// HAProxy's `check->health`.
    pub fn health(&self) -> u32 {
        self.health
    }

    pub fn state(&self) -> HealthState {
        if self.health == self.top() {
            HealthState::Up
        } else if self.health >= self.rise {
            HealthState::GoingDown { fails: self.top() - self.health }
        } else if self.health == 0 {
            HealthState::Down
        } else {
            HealthState::GoingUp { oks: self.health }
        }
    }

    /// Records one check result; the transition's reason is generic. The scheduler uses
    /// [`RiseFall::observe_with`] to carry the probe's own description.
    pub fn observe(&mut self, ok: bool) -> Option<Transition> {
        self.observe_with(ok, if ok { "check passed" } else { "check failed" })
    }

    /// Records one check result; on a change of availability the transition carries `reason`.
    pub fn observe_with(&mut self, ok: bool, reason: &str) -> Option<Transition> {
        let was_up = self.is_up();
        if ok {
            if self.health < self.top() {
                self.health += 1;
                if self.health >= self.rise {
                    self.health = self.top();
                }
            }
        } else if self.health > 0 {
            self.health -= 1;
            if self.health < self.rise {
                self.health = 0;
            }
        }
        match (was_up, self.is_up()) {
            (false, true) => Some(Transition::Up { reason: reason.to_string() }),
            (true, false) => Some(Transition::Down { reason: reason.to_string() }),
            _ => None,
        }
    }
}

impl RiseFall {
    /// Applies a passive-check trip as HAProxy's `__health_adjust` does: `fail-check` is one
    /// failed check, `sudden-death` first leaves the server one failure from DOWN, `mark-down`
    /// takes it down at once (from any state), `fastinter` changes nothing here.
    pub fn on_error(&mut self, action: super::passive::OnError, reason: &str) -> Option<Transition> {
        use super::passive::OnError;
        match action {
            OnError::FastInter => return None,
            OnError::FailCheck => {}
            OnError::SuddenDeath => {
                if self.health > self.rise {
                    self.health = self.rise + 1;
                }
            }
            OnError::MarkDown => {
                let was_up = self.is_up();
                self.health = 0;
                return was_up.then(|| Transition::Down { reason: reason.to_string() });
            }
        }
        self.observe_with(false, reason)
    }
}

/// HAProxy's stats wording: `UP`, `DOWN`, `UP 2/3` (going down: the checks it may still fail,
/// of `fall`), `DOWN 1/2` (going up: the checks passed, of `rise`).
impl fmt::Display for RiseFall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state() {
            HealthState::Up => f.write_str("UP"),
            HealthState::Down => f.write_str("DOWN"),
            HealthState::GoingDown { .. } => write!(f, "UP {}/{}", self.health - self.rise + 1, self.fall),
            HealthState::GoingUp { oks } => write!(f, "DOWN {oks}/{}", self.rise),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(reason: &str) -> Option<Transition> {
        Some(Transition::Down { reason: reason.into() })
    }

    fn up(reason: &str) -> Option<Transition> {
        Some(Transition::Up { reason: reason.into() })
    }

    #[test]
    fn fully_up_needs_fall_consecutive_failures() {
        let mut rf = RiseFall::with_init(2, 3, InitState::FullyUp);
        assert_eq!(rf.state(), HealthState::Up);
        assert_eq!(rf.observe_with(false, "a"), None);
        assert_eq!(rf.state(), HealthState::GoingDown { fails: 1 });
        assert!(rf.is_up());
        assert_eq!(rf.observe_with(false, "b"), None);
        assert_eq!(rf.state(), HealthState::GoingDown { fails: 2 });
        // HAProxy's page: one more failure to go, of 3.
        assert_eq!(rf.to_string(), "UP 1/3");
        assert_eq!(rf.observe_with(false, "Layer4 timeout"), down("Layer4 timeout"));
        assert_eq!(rf.state(), HealthState::Down);
        assert!(!rf.is_up());
        // Further failures change nothing.
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.state(), HealthState::Down);
    }

    #[test]
    fn fully_down_needs_rise_consecutive_successes() {
        let mut rf = RiseFall::with_init(3, 2, InitState::FullyDown);
        assert_eq!(rf.state(), HealthState::Down);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.state(), HealthState::GoingUp { oks: 1 });
        assert_eq!(rf.to_string(), "DOWN 1/3");
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.state(), HealthState::GoingUp { oks: 2 });
        assert!(!rf.is_up());
        assert_eq!(rf.observe_with(true, "Layer7 check passed"), up("Layer7 check passed"));
        assert_eq!(rf.state(), HealthState::Up);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.state(), HealthState::Up);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut rf = RiseFall::with_init(2, 3, InitState::FullyUp);
        rf.observe(false);
        rf.observe(false);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.state(), HealthState::Up);
        // Needs the full `fall` again.
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.observe(false), None);
        assert!(rf.observe(false).is_some_and(|t| !t.is_up()));
    }

    #[test]
    fn a_failure_resets_the_success_count() {
        let mut rf = RiseFall::with_init(3, 3, InitState::FullyDown);
        rf.observe(true);
        rf.observe(true);
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.state(), HealthState::Down);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.observe(true), None);
        assert!(rf.observe(true).is_some_and(|t| t.is_up()));
    }

    #[test]
    fn default_start_is_up_but_one_failure_from_down() {
        let mut rf = RiseFall::new(2, 3, true);
        assert!(rf.is_up());
        assert_eq!(rf.state(), HealthState::GoingDown { fails: 2 });
        assert_eq!(rf.observe_with(false, "Layer4 connection refused"), down("Layer4 connection refused"));

        // A first success makes it fully up.
        let mut rf = RiseFall::new(2, 3, true);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.state(), HealthState::Up);
    }

    #[test]
    fn start_down_requires_rise() {
        let mut rf = RiseFall::new(2, 3, false);
        assert_eq!(rf.state(), HealthState::Down);
        assert_eq!(rf.observe(true), None);
        assert_eq!(rf.observe(true), up("check passed"));
    }

    #[test]
    fn a_counter_taken_from_elsewhere_is_capped_and_counts_on() {
        let mut rf = RiseFall::with_init(3, 4, InitState::At(9));
        assert_eq!(rf.health(), 6);
        rf.set_health(3);
        // HAProxy's `UP 1/4`: at `rise`, one failure from down.
        assert_eq!(rf.to_string(), "UP 1/4");
        assert_eq!(rf.observe(false), down("check failed"));
        rf.set_health(2);
        assert_eq!(rf.observe(true), up("check passed"));
        assert_eq!(rf.health(), 6);
    }

    #[test]
    fn init_down_comes_up_on_first_success() {
        let mut rf = RiseFall::with_init(3, 2, InitState::Down);
        assert!(!rf.is_up());
        assert_eq!(rf.state(), HealthState::GoingUp { oks: 2 });
        assert_eq!(rf.observe(true), up("check passed"));
        assert_eq!(rf.state(), HealthState::Up);

        let mut rf = RiseFall::with_init(3, 2, InitState::Down);
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.state(), HealthState::Down);
    }

    #[test]
    fn rise_and_fall_of_one_flip_on_every_change() {
        let mut rf = RiseFall::with_init(1, 1, InitState::FullyUp);
        assert_eq!(rf.state(), HealthState::Up);
        assert_eq!(rf.observe(false), down("check failed"));
        assert_eq!(rf.observe(false), None);
        assert_eq!(rf.observe(true), up("check passed"));
        assert_eq!(rf.observe(true), None);
    }

    #[test]
    fn zero_thresholds_are_clamped() {
        let mut rf = RiseFall::with_init(0, 0, InitState::FullyUp);
        assert_eq!((rf.rise(), rf.fall()), (1, 1));
        assert!(rf.observe(false).is_some());
    }

    #[test]
    fn fail_check_trip_is_one_failed_check() {
        use crate::health::passive::OnError;
        let mut rf = RiseFall::with_init(2, 3, InitState::FullyUp);
        assert_eq!(rf.on_error(OnError::FailCheck, "x"), None);
        assert_eq!(rf.state(), HealthState::GoingDown { fails: 1 });
        assert_eq!(rf.on_error(OnError::FailCheck, "x"), None);
        assert_eq!(rf.on_error(OnError::FailCheck, "hana"), down("hana"));
    }

    #[test]
    fn sudden_death_leaves_one_failure_to_go() {
        use crate::health::passive::OnError;
        let mut rf = RiseFall::with_init(2, 5, InitState::FullyUp);
        assert_eq!(rf.on_error(OnError::SuddenDeath, "x"), None);
        assert!(rf.is_up());
        assert_eq!(rf.state(), HealthState::GoingDown { fails: 4 });
        assert_eq!(rf.observe_with(false, "Layer4 timeout"), down("Layer4 timeout"));
        // Already one from down: the trip itself takes it down.
        let mut rf = RiseFall::with_init(2, 5, InitState::Up);
        assert_eq!(rf.on_error(OnError::SuddenDeath, "hana"), down("hana"));
        // fall = 1: any failure is fatal anyway.
        let mut rf = RiseFall::with_init(2, 1, InitState::FullyUp);
        assert_eq!(rf.on_error(OnError::SuddenDeath, "hana"), down("hana"));
    }

    #[test]
    fn mark_down_is_immediate_and_resets_progress_up() {
        use crate::health::passive::OnError;
        let mut rf = RiseFall::with_init(3, 5, InitState::FullyUp);
        assert_eq!(rf.on_error(OnError::MarkDown, "hana"), down("hana"));
        assert_eq!(rf.state(), HealthState::Down);
        let mut rf = RiseFall::with_init(3, 5, InitState::FullyDown);
        rf.observe(true);
        assert_eq!(rf.state(), HealthState::GoingUp { oks: 1 });
        assert_eq!(rf.on_error(OnError::MarkDown, "hana"), None);
        assert_eq!(rf.state(), HealthState::Down);
    }

    #[test]
    fn fastinter_trip_leaves_the_counter() {
        use crate::health::passive::OnError;
        let mut rf = RiseFall::with_init(2, 3, InitState::FullyUp);
        assert_eq!(rf.on_error(OnError::FastInter, "x"), None);
        assert_eq!(rf.state(), HealthState::Up);
    }

    #[test]
    fn full_cycle_counts_each_transition_once() {
        let mut rf = RiseFall::with_init(2, 2, InitState::FullyUp);
        let results = [false, false, false, true, false, true, true, true, false, true, false, false];
        let flips: Vec<bool> = results.iter().filter_map(|ok| rf.observe(*ok)).map(|t| t.is_up()).collect();
        assert_eq!(flips, vec![false, true, false]);
    }
}
