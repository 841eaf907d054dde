//! Runtime server changes through the Data Plane API on a `[cluster]` pair: turned into the
//! control socket's command lines and run through the node's sync path, so the peer takes them
//! as it takes the same change made with `lbha` (a conflict there is a 409 here).

use super::error::{ApiError, ApiResult};
use super::runtime::{AdminState, OpState, RuntimeServer};
use crate::cluster::runtime::line;

fn words(w: &[&str]) -> String {
    line(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// The lines for a `PUT .../runtime/servers/{name}` body, in the order the API applies them.
pub fn put_lines(
    backend: &str,
    name: &str,
    want: &RuntimeServer,
    addr_changed: Option<std::net::SocketAddr>,
) -> Vec<String> {
    let sv = format!("{backend}/{name}");
    let mut out = Vec::new();
    if let Some(a) = addr_changed {
        out.push(words(&["set", "server", &sv, "addr", &a.ip().to_string(), "port", &a.port().to_string()]));
    }
    if let Some(a) = want.admin_state {
        let st = match a {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        };
        out.push(words(&["set", "server", &sv, "state", st]));
    }
    if let Some(o) = want.operational_state {
        let st = if o == OpState::Up { "up" } else { "down" };
        out.push(words(&["set", "server", &sv, "health", st]));
    }
    if let Some(w) = want.weight {
        out.push(words(&["set", "weight", &sv, &w.to_string()]));
    }
    out
}

/// The `add server` line for a `POST` body (already checked by `runtime_add::add_command`).
pub fn add_line(backend: &str, body: &serde_json::Value) -> ApiResult<String> {
    let a: super::runtime_add::AddServer = super::json::decode(body, &[])?;
    let mut w = vec!["add".to_string(), "server".to_string(), format!("{backend}/{}", a.name)];
    w.extend(super::runtime_add::add_words(&a)?);
    Ok(line(&w))
}

pub fn del_line(backend: &str, name: &str) -> String {
    words(&["del", "server", &format!("{backend}/{name}")])
}

/// Runs the lines one by one through the sync path; the first refusal stops.
pub async fn run(hook: &crate::cluster::RuntimeHook, lines: Vec<String>) -> ApiResult<()> {
    for l in lines {
        hook(l).await.map_err(|(conflict, text)| match conflict {
            true => ApiError::Conflict(text),
            false => ApiError::BadRequest(text.trim_end().to_string()),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::parse::parse_line;

    #[test]
    fn a_put_body_becomes_the_control_commands() {
        let want = RuntimeServer {
            name: None,
            id: None,
            address: None,
            port: None,
            admin_state: Some(AdminState::Drain),
            operational_state: Some(OpState::Down),
            weight: Some(7),
        };
        let lines = put_lines("be", "s1", &want, Some("192.0.2.7:8080".parse().unwrap()));
        assert_eq!(
            lines,
            [
                "set server be/s1 addr 192.0.2.7 port 8080",
                "set server be/s1 state drain",
                "set server be/s1 health down",
                "set weight be/s1 7"
            ]
        );
        for l in &lines {
            let c = parse_line(l).remove(0).command.unwrap();
            assert!(crate::cluster::runtime::slot(&c).is_some(), "{l}");
        }
        let add = add_line("be", &serde_json::json!({"name": "s3", "address": "192.0.2.3", "port": 80, "weight": 5}))
            .unwrap();
        assert_eq!(add, "add server be/s3 192.0.2.3:80 weight 5");
        assert!(parse_line(&add).remove(0).command.is_ok());
        assert!(parse_line(&del_line("be", "s3")).remove(0).command.is_ok());
    }
}
