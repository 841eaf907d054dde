//! HAProxy's check statuses (`L4OK`, `L7RSP`, ...) that a `tcp-check expect` may choose with
//! `ok-status`, `error-status` and `tout-status`, with the descriptions HAProxy reports.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    L4Ok,
    L4Tout,
    L4Con,
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Ok,
    /// Passed, but the server leaves load balancing (NOLB), as `disable-on-404` does.
    L7Okc,
    L7Tout,
    L7Rsp,
    L7Sts,
}

/// Where a status may be chosen; each keyword takes its own subset, as in HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusUse {
    Ok,
    Error,
    Timeout,
}

impl CheckStatus {
    const ALL: [(CheckStatus, &'static str); 11] = [
        (Self::L4Ok, "L4OK"),
        (Self::L4Tout, "L4TOUT"),
        (Self::L4Con, "L4CON"),
        (Self::L6Ok, "L6OK"),
        (Self::L6Tout, "L6TOUT"),
        (Self::L6Rsp, "L6RSP"),
        (Self::L7Ok, "L7OK"),
        (Self::L7Okc, "L7OKC"),
        (Self::L7Tout, "L7TOUT"),
        (Self::L7Rsp, "L7RSP"),
        (Self::L7Sts, "L7STS"),
    ];

    /// The statuses `use` accepts, in HAProxy's order (for error messages too).
    pub fn allowed(usage: StatusUse) -> &'static [CheckStatus] {
        use CheckStatus::*;
        match usage {
            StatusUse::Ok => &[L4Ok, L6Ok, L7Ok, L7Okc],
            // HAProxy 2.6 documents L7OKC here but refuses it.
            StatusUse::Error => &[L4Con, L6Rsp, L7Rsp, L7Sts],
            StatusUse::Timeout => &[L4Tout, L6Tout, L7Tout],
        }
    }

    /// Parses a status name for `usage` (any case, as HAProxy); the error lists what is accepted.
    pub fn parse(s: &str, usage: StatusUse) -> Result<CheckStatus, String> {
        let allowed = Self::allowed(usage);
        match Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)) {
            Some((st, _)) if allowed.contains(st) => Ok(*st),
            _ => Err(format!(
                "unknown status `{s}` (expected {})",
                allowed.iter().map(|s| s.code()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The short code shown in stats (`check_status`).
    pub fn code(self) -> &'static str {
        Self::ALL.iter().find(|(s, _)| *s == self).map_or("", |(_, n)| n)
    }

    /// HAProxy's description, the start of a check's reason.
    pub fn desc(self) -> &'static str {
        match self {
            Self::L4Ok => "Layer4 check passed",
            Self::L4Tout => "Layer4 timeout",
            Self::L4Con => "Layer4 connection problem",
            Self::L6Ok => "Layer6 check passed",
            Self::L6Tout => "Layer6 timeout",
            Self::L6Rsp => "Layer6 invalid response",
            Self::L7Ok => "Layer7 check passed",
            Self::L7Okc => "Layer7 check conditionally passed",
            Self::L7Tout => "Layer7 timeout",
            Self::L7Rsp => "Layer7 invalid response",
            Self::L7Sts => "Layer7 wrong status",
        }
    }

    /// Whether the check passes with this status.
    pub fn passes(self) -> bool {
        matches!(self, Self::L4Ok | Self::L6Ok | Self::L7Ok | Self::L7Okc)
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_keyword_takes_its_own_statuses() {
        assert_eq!(CheckStatus::parse("L7OKC", StatusUse::Ok), Ok(CheckStatus::L7Okc));
        assert!(CheckStatus::parse("L7OKC", StatusUse::Error).is_err());
        assert_eq!(CheckStatus::parse("l6tout", StatusUse::Timeout), Ok(CheckStatus::L6Tout));
        let e = CheckStatus::parse("L7RSP", StatusUse::Ok).unwrap_err();
        assert!(e.contains("L4OK, L6OK, L7OK, L7OKC"), "{e}");
        assert!(CheckStatus::parse("L4OK", StatusUse::Timeout).is_err());
        assert_eq!(CheckStatus::parse("l7ok", StatusUse::Ok), Ok(CheckStatus::L7Ok));
        assert!(CheckStatus::L7Okc.passes() && !CheckStatus::L7Sts.passes());
        assert_eq!(CheckStatus::L6Rsp.desc(), "Layer6 invalid response");
    }
}
