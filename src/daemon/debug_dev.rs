//! HAProxy's `debug dev loop` / `debug dev panic` (expert mode): a real stall or panic of the proxy
//! thread that runs the command, so the watchdog and the panic hook of `track_proxy` can be tested
//! against the real daemon.

use crate::control::parse::DebugDev;
use crate::control::reply::Reply;
use serde_json::json;

/// Runs `d` on the calling runtime thread, if the connection is in expert mode.
pub fn run(d: DebugDev, expert: bool) -> Reply {
    if !expert {
        // HAProxy's answer.
        return Reply::error("This command is restricted to expert mode only.");
    }
    match d {
        DebugDev::Loop(ms) => {
            tracing::warn!("debug dev loop: this proxy thread busy-loops for {ms} ms");
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            Reply::ok("", json!({ "looped_ms": ms }))
        }
        DebugDev::Panic => panic!("debug dev panic"),
    }
}
