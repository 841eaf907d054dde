//! HAProxy's `agent-check`: a small TCP service next to the server says how the server should be
//! weighted and whether it takes traffic. One line of words separated by blanks or commas:
//! `75%` (weight relative to the configured one), `maxconn:N`, `ready`, `drain`, `maint`, `up`,
//! `down`, `failed`, `stopped`; `#` starts a description. An unreachable agent changes nothing
//! (the regular check tests connectivity), as in HAProxy.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The agent of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub addr: SocketAddr,
    pub inter: Duration,
    pub timeout: Duration,
    /// `agent-send`: written once connected.
    pub send: Vec<u8>,
    /// The server's `source`, as its checks.
    pub source: Option<std::sync::Arc<crate::proxy::source::Source>>,
}

/// An administrative state the agent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAdmin {
    Ready,
    Drain,
    Maint,
}

/// What one reply says; `None` fields leave the server as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReply {
    pub weight_pct: Option<u32>,
    pub maxconn: Option<u32>,
    pub admin: Option<AgentAdmin>,
    /// `up` (true) or `down`/`failed`/`stopped` (false).
    pub up: Option<bool>,
    pub description: Option<String>,
}

/// Parses a reply (pure). Unknown words are ignored, as HAProxy does.
pub fn parse_reply(text: &str) -> AgentReply {
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    let (words, desc) = match line.split_once('#') {
        Some((w, d)) => (w, Some(d.trim().to_string()).filter(|d| !d.is_empty())),
        None => (line, None),
    };
    let mut r = AgentReply { description: desc, ..AgentReply::default() };
    for w in words.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
        let lw = w.to_ascii_lowercase();
        if let Some(p) = lw.strip_suffix('%') {
            if let Ok(n) = p.parse::<u32>() {
                r.weight_pct = Some(n.min(100 * 256));
            }
        } else if let Some(n) = lw.strip_prefix("maxconn:") {
            if let Ok(n) = n.parse::<u32>() {
                r.maxconn = Some(n);
            }
        } else {
            match lw.as_str() {
                "ready" => r.admin = Some(AgentAdmin::Ready),
                "drain" => r.admin = Some(AgentAdmin::Drain),
                "maint" => r.admin = Some(AgentAdmin::Maint),
                "up" => r.up = Some(true),
                "down" | "failed" | "stopped" => r.up = Some(false),
                _ => {}
            }
        }
    }
    r
}

/// The weight a percentage gives, from the configured weight (HAProxy: at most 256).
pub fn scaled_weight(configured: u32, pct: u32) -> u32 {
    (u64::from(configured) * u64::from(pct) / 100).min(256) as u32
}

/// Asks the agent once; `None` when it cannot be reached or says nothing in time.
pub async fn ask(spec: &AgentSpec) -> Option<String> {
    let fut = async {
        let from = crate::proxy::source::Source::towards(spec.source.as_ref(), spec.addr);
        let mut s = crate::proxy::source::connect(spec.addr, from).await.ok()?;
        if !spec.send.is_empty() {
            s.write_all(&spec.send).await.ok()?;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.contains(&b'\n') || buf.len() >= 1024 {
                break;
            }
        }
        (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(spec.timeout, fut).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_as_haproxy_does() {
        assert_eq!(parse_reply("75%\n").weight_pct, Some(75));
        let r = parse_reply("up, 50%, maxconn:30 # load ok\r\n");
        assert_eq!((r.up, r.weight_pct, r.maxconn), (Some(true), Some(50), Some(30)));
        assert_eq!(r.description.as_deref(), Some("load ok"));
        assert_eq!(parse_reply("drain").admin, Some(AgentAdmin::Drain));
        assert_eq!(parse_reply("MAINT").admin, Some(AgentAdmin::Maint));
        assert_eq!(parse_reply("ready 100%").admin, Some(AgentAdmin::Ready));
        assert_eq!(parse_reply("down").up, Some(false));
        assert_eq!(parse_reply("stopped\tfailed").up, Some(false));
        // Unknown words and bad numbers change nothing.
        assert_eq!(parse_reply("hello x% maxconn:y"), AgentReply::default());
        // Only the first line counts.
        assert_eq!(parse_reply("50%\ndown\n").up, None);
    }

    #[test]
    fn a_percentage_scales_the_configured_weight() {
        assert_eq!(scaled_weight(10, 75), 7);
        assert_eq!(scaled_weight(100, 0), 0);
        assert_eq!(scaled_weight(200, 200), 256);
    }

    #[tokio::test]
    async fn the_agent_is_asked_with_agent_send_and_its_line_read() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = [0u8; 5];
            s.read_exact(&mut got).await.unwrap();
            s.write_all(b"42%\n").await.unwrap();
            got
        });
        let spec = AgentSpec {
            addr,
            inter: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            send: b"ping\n".to_vec(),
            source: None,
        };
        assert_eq!(ask(&spec).await.as_deref(), Some("42%\n"));
        assert_eq!(&server.await.unwrap(), b"ping\n");
        // Nothing listening: no answer, no panic.
        drop(tokio::net::TcpListener::bind(addr).await);
        let closed = AgentSpec { addr: "127.0.0.1:1".parse().unwrap(), ..spec };
        assert_eq!(ask(&closed).await, None);
    }
}
