//! This node's FRR sessions read back for `show announce` and `lbha status`: BGP from
//! `show bgp summary json`, BFD from `show bfd peers json`, both through `vtysh`.
//!
//! Why vtysh: it is FRR's supported management interface and its JSON is what FRR's own tests
//! read; zebra's zserv protocol is internal and changes between releases, and the kernel knows
//! nothing of BGP or BFD sessions. It runs off the announcement path (a task of its own, every
//! [`POLL`], each call bounded by [`CALL_TIMEOUT`]), so a slow or absent FRR never delays a
//! withdrawal; its failure is shown, not hidden.

use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the sessions are read back.
pub const POLL: Duration = Duration::from_secs(1);
/// At most this long for one vtysh call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
const VTYSH: &str = "vtysh";

/// One BGP session, per address family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BgpPeer {
    pub peer: String,
    /// FRR's address-family key (`ipv4Unicast`, `ipv6Unicast`).
    pub family: String,
    /// FRR's state (`Established`, `Active`, `Connect`, ...).
    pub state: String,
}

/// One BFD session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BfdPeer {
    pub peer: String,
    /// `up`, `down`, `init`, `shutdown`.
    pub status: String,
}

/// What was read back last; `error` says why a part is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FrrState {
    pub bgp: Vec<BgpPeer>,
    pub bfd: Vec<BfdPeer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parses `show bgp summary json`: an object per address family, each with `peers`.
pub fn parse_bgp(v: &Value) -> Vec<BgpPeer> {
    let mut out = Vec::new();
    for (family, af) in v.as_object().into_iter().flatten() {
        for (peer, p) in af["peers"].as_object().into_iter().flatten() {
            out.push(BgpPeer {
                peer: peer.clone(),
                family: family.clone(),
                state: p["state"].as_str().unwrap_or("unknown").to_string(),
            });
        }
    }
    out
}

/// Parses `show bfd peers json`: an array of sessions.
pub fn parse_bfd(v: &Value) -> Vec<BfdPeer> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(BfdPeer {
                peer: p["peer"].as_str()?.to_string(),
                status: p["status"].as_str().unwrap_or("unknown").to_string(),
            })
        })
        .collect()
}

/// The text lines `show announce` and `lbha status` print.
pub fn render(st: &FrrState) -> Vec<String> {
    let mut out: Vec<String> = st
        .bgp
        .iter()
        .map(|p| format!("bgp {} {}: {}", p.peer, p.family, p.state))
        .chain(st.bfd.iter().map(|p| format!("bfd {}: {}", p.peer, p.status)))
        .collect();
    if let Some(e) = &st.error {
        out.push(format!("FRR not read: {e}"));
    }
    if out.is_empty() {
        out.push("FRR has no BGP or BFD sessions".into());
    }
    out
}

/// One vtysh command's JSON.
async fn vtysh(dir: &str, cmd: &str) -> Result<Value, String> {
    let run = tokio::process::Command::new(VTYSH)
        .args(["--vty_socket", dir, "-c", cmd])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(CALL_TIMEOUT, run).await {
        Err(_) => return Err(format!("`{cmd}` took more than {CALL_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("cannot run {VTYSH}: {e}")),
        Ok(Ok(o)) => o,
    };
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("`{cmd}`: {} {why}", out.status));
    }
    // FRR prints `{}` for a daemon that answers with nothing; an empty output means none ran.
    serde_json::from_slice(&out.stdout).map_err(|e| format!("`{cmd}`: not JSON ({e})"))
}

/// One read of both; a part that fails leaves its list empty and says why.
pub async fn read(dir: &str) -> FrrState {
    if !Path::new(dir).is_dir() {
        return FrrState { error: Some(format!("no FRR vty socket directory {dir}")), ..FrrState::default() };
    }
    let mut st = FrrState::default();
    let mut errs = Vec::new();
    match vtysh(dir, "show bgp summary json").await {
        Ok(v) => st.bgp = parse_bgp(&v),
        Err(e) => errs.push(e),
    }
    match vtysh(dir, "show bfd peers json").await {
        Ok(v) => st.bfd = parse_bfd(&v),
        Err(e) => errs.push(e),
    }
    if !errs.is_empty() {
        st.error = Some(errs.join("; "));
    }
    st
}

/// Reads the sessions back every [`POLL`] into `out` until aborted (the announcer's end).
pub fn spawn(dir: String, out: Arc<Mutex<Option<FrrState>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let st = read(&dir).await;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
            tokio::time::sleep(POLL).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bgp_summary_per_family() {
        let v = json!({
            "ipv4Unicast": { "routerId": "192.0.2.11", "peers": {
                "192.0.2.1": { "remoteAs": 65000, "state": "Established", "pfxRcd": 0, "pfxSnt": 1 } } },
            "ipv6Unicast": { "peers": { "2001:db8::1": { "state": "Active" } } }
        });
        let got = parse_bgp(&v);
        assert_eq!(
            got,
            [
                BgpPeer { peer: "192.0.2.1".into(), family: "ipv4Unicast".into(), state: "Established".into() },
                BgpPeer { peer: "2001:db8::1".into(), family: "ipv6Unicast".into(), state: "Active".into() },
            ]
        );
        assert!(parse_bgp(&json!({})).is_empty());
        assert!(parse_bgp(&json!("x")).is_empty());
    }

    #[test]
    fn bfd_peers_and_rendering() {
        let v = json!([{ "multihop": false, "peer": "192.0.2.1", "interface": "eth0", "status": "up" },
                       { "status": "down" }]);
        let bfd = parse_bfd(&v);
        assert_eq!(bfd, [BfdPeer { peer: "192.0.2.1".into(), status: "up".into() }]);
        let st = FrrState { bgp: vec![], bfd, error: Some("`show bgp summary json`: exit status: 1".into()) };
        assert_eq!(render(&st), ["bfd 192.0.2.1: up", "FRR not read: `show bgp summary json`: exit status: 1"]);
        assert_eq!(render(&FrrState::default()), ["FRR has no BGP or BFD sessions"]);
    }

    #[tokio::test]
    async fn a_missing_socket_directory_is_reported() {
        let st = read("/nonexistent/lbha-frr").await;
        assert!(st.error.is_some_and(|e| e.contains("/nonexistent/lbha-frr")));
    }
}
