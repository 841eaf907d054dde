//! `show announce` on the control socket: each VIP's announcement and why it is withdrawn.

use super::VipStatus;
use crate::control::reply::Reply;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// The text form: one line per VIP.
pub fn render(list: &[VipStatus]) -> String {
    let mut s = String::new();
    for v in list {
        let state = if v.announced { "announced".to_string() } else { format!("withdrawn ({})", v.reason) };
        s.push_str(&format!("{} {} protocol {}: {state}\n", v.group, v.address, v.protocol));
    }
    s
}

/// The reply; `None` when the config announces nothing.
pub fn reply(status: Option<&Arc<Mutex<Vec<VipStatus>>>>) -> Reply {
    let Some(st) = status else { return Reply::error("No [[announce]] in the running configuration.") };
    let list = st.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let j = serde_json::to_value(&list).unwrap_or_else(|e| json!({ "errorStr": e.to_string() }));
    Reply::ok(render(&list), j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_vip_with_the_reason() {
        let v = |addr: &str, announced: bool, reason: &str| VipStatus {
            group: "vip".into(),
            address: addr.parse().unwrap(),
            protocol: 250,
            announced,
            reason: reason.into(),
        };
        let list = [v("192.0.2.10", true, ""), v("2001:db8::10", false, "backend web has no server up")];
        assert_eq!(
            render(&list),
            "vip 192.0.2.10 protocol 250: announced\nvip 2001:db8::10 protocol 250: withdrawn (backend web has no server up)\n"
        );
    }
}
