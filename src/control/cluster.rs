//! `cluster status|diff|push [force]` on the control socket (`lbha cluster ...`).

use super::parse::{Level, ParseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterCmd {
    /// Both nodes: version, hash, VRRP roles, reachability, last sync.
    Status,
    /// What a push would change on the peer.
    Diff,
    /// Apply this node's config on the peer (`force`: even over changes made there).
    Push { force: bool },
}

pub const USAGE: &str = "cluster status | cluster diff | cluster push [force]";

pub fn parse(words: &[&str]) -> Result<ClusterCmd, ParseError> {
    match words {
        ["status"] => Ok(ClusterCmd::Status),
        ["diff"] => Ok(ClusterCmd::Diff),
        ["push"] => Ok(ClusterCmd::Push { force: false }),
        ["push", "force"] => Ok(ClusterCmd::Push { force: true }),
        _ => Err(ParseError::Usage(USAGE)),
    }
}

impl ClusterCmd {
    /// Reading the peer's settings is an operator's business; changing its config an admin's.
    pub fn level(self) -> Level {
        match self {
            ClusterCmd::Status => Level::User,
            ClusterCmd::Diff => Level::Operator,
            ClusterCmd::Push { .. } => Level::Admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(parse(&["status"]), Ok(ClusterCmd::Status));
        assert_eq!(parse(&["push", "force"]), Ok(ClusterCmd::Push { force: true }));
        assert!(parse(&["push", "now"]).is_err());
        assert!(parse(&[]).is_err());
        assert_eq!(ClusterCmd::Push { force: false }.level(), Level::Admin);
    }
}
