//! Runtime server commands of HAProxy's stats socket: `add server`, `del server`,
//! `set server ... addr|check-port|health|agent|fqdn`, `enable|disable health|agent|frontend`,
//! `set maxconn`, `show servers conn`. Parsing only; `daemon::dynamic` runs them.

use super::parse::{Level, ParseError, ServerRef};
use crate::config::model::Server;

/// `set server B/S health|agent up|down|stopping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    Up,
    Down,
    Stopping,
}

/// Where a server's checks or agent go, and what the agent is sent; addresses and ports as
/// written, checked when the command runs (HAProxy's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSetting {
    CheckAddr(String, Option<String>),
    AgentAddr(String, Option<String>),
    AgentPort(String),
    AgentSend(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtCommand {
    AddServer(ServerRef, Box<Server>),
    DelServer(ServerRef),
    /// `set server B/S addr IP [port P]`.
    SetAddr(ServerRef, std::net::IpAddr, Option<u16>),
    SetCheckPort(ServerRef, u16),
    /// `set server B/S check-addr|agent-addr|agent-port|agent-send ...`.
    SetProbe(ServerRef, ProbeSetting),
    SetHealth(ServerRef, OpState),
    SetAgent(ServerRef, OpState),
    SetFqdn(ServerRef, String),
    /// `set server B/S ssl on|off`.
    SetSsl(ServerRef, bool),
    Health(ServerRef, bool),
    Agent(ServerRef, bool),
    Frontend(String, bool),
    MaxconnFrontend(String, u32),
    MaxconnServer(ServerRef, u32),
    MaxconnGlobal(u32),
    ShowServersConn(Option<String>),
    /// Not a command: the resolvers' new addresses (None: no address), sent by `dns::task`.
    Dns(Vec<(ServerRef, Option<crate::dns::state::Found>)>),
}

impl RtCommand {
    pub fn level(&self) -> Level {
        match self {
            RtCommand::ShowServersConn(_) => Level::User,
            _ => Level::Admin,
        }
    }
}

/// Parses the commands of this module; None for any other command.
pub fn parse(w: &[&str]) -> Option<Result<RtCommand, ParseError>> {
    let r = match w {
        ["add", "server", rest @ ..] => add(rest),
        ["del", "server", rest @ ..] => match rest {
            [sv] => sref(sv).map(RtCommand::DelServer),
            [] => Err(ParseError::Usage("del server <backend>/<server>")),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        ["set", "server", sv, "addr", rest @ ..] => set_addr(sv, rest),
        ["set", "server", sv, "check-port", rest @ ..] => match rest {
            [p] => sref(sv).and_then(|r| match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(RtCommand::SetCheckPort(r, n)),
                Ok(_) => Err(ParseError::Custom("provided port is not valid (1-65535)".into())),
                Err(_) => Err(ParseError::Custom("provided port is not an integer".into())),
            }),
            [] => Err(ParseError::Custom("set server <b>/<s> check-port requires a port".into())),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        ["set", "server", sv, what @ ("health" | "agent"), rest @ ..] => {
            let st = match rest {
                ["up"] => OpState::Up,
                ["down"] => OpState::Down,
                ["stopping"] if *what == "health" => OpState::Stopping,
                [_, extra, ..] => return Some(Err(ParseError::Extra(extra.to_string()))),
                _ => {
                    // HAProxy's agent takes no `stopping`.
                    let words = if *what == "agent" { "'up' or 'down'" } else { "'up', 'stopping', or 'down'" };
                    return Some(Err(ParseError::Custom(format!("'set server <srv> {what}' expects {words}."))));
                }
            };
            sref(sv).map(|r| if *what == "health" { RtCommand::SetHealth(r, st) } else { RtCommand::SetAgent(r, st) })
        }
        ["set", "server", sv, "fqdn", rest @ ..] => match rest {
            [f] => sref(sv).map(|r| RtCommand::SetFqdn(r, f.to_string())),
            [] => Err(ParseError::Custom("set server <b>/<s> fqdn requires a FQDN.".into())),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        ["set", "server", sv, what @ ("check-addr" | "agent-addr"), rest @ ..] => {
            let (addr, port) = match rest {
                [a] => (a.to_string(), None),
                [a, "port", p] => (a.to_string(), Some(p.to_string())),
                [_, "port"] => return Some(Err(ParseError::Custom("provided port is not an integer".into()))),
                [_, extra, ..] => return Some(Err(ParseError::Extra(extra.to_string()))),
                [] => {
                    let m = format!("set server <b>/<s> {what} requires an address and optionally a port.");
                    return Some(Err(ParseError::Custom(m)));
                }
            };
            let set = if *what == "check-addr" {
                ProbeSetting::CheckAddr(addr, port)
            } else {
                ProbeSetting::AgentAddr(addr, port)
            };
            sref(sv).map(|r| RtCommand::SetProbe(r, set))
        }
        ["set", "server", sv, "agent-port", rest @ ..] => match rest {
            [p] => sref(sv).map(|r| RtCommand::SetProbe(r, ProbeSetting::AgentPort(p.to_string()))),
            [] => Err(ParseError::Custom("set server <b>/<s> agent-port requires a port.".into())),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        // HAProxy takes the one word (none: an empty string).
        ["set", "server", sv, "agent-send", rest @ ..] => match rest {
            [] | [_] => sref(sv).map(|r| RtCommand::SetProbe(r, ProbeSetting::AgentSend(rest.join("")))),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        ["set", "server", sv, "ssl", rest @ ..] => match rest.first() {
            // HAProxy reads the one word after `ssl`, and nothing after it.
            Some(&w @ ("on" | "off")) => sref(sv).map(|r| RtCommand::SetSsl(r, w == "on")),
            _ => Err(ParseError::Custom("'set server <srv> ssl' expects 'on' or 'off'.".into())),
        },
        [verb @ ("enable" | "disable"), what @ ("health" | "agent"), rest @ ..] => {
            let on = *verb == "enable";
            match rest {
                [sv] => {
                    sref(sv).map(|r| if *what == "health" { RtCommand::Health(r, on) } else { RtCommand::Agent(r, on) })
                }
                [] => Err(ParseError::Custom("Require 'backend/server'.".into())),
                [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
            }
        }
        [verb @ ("enable" | "disable"), "frontend", rest @ ..] => match rest {
            [f] => Ok(RtCommand::Frontend(f.to_string(), *verb == "enable")),
            [] => Err(ParseError::Custom("Frontend name expected.".into())),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        ["set", "maxconn", rest @ ..] => maxconn(rest),
        ["show", "servers", "conn", rest @ ..] => match rest {
            [] => Ok(RtCommand::ShowServersConn(None)),
            [b] => Ok(RtCommand::ShowServersConn(Some(b.to_string()))),
            [_, extra, ..] => Err(ParseError::Extra(extra.to_string())),
        },
        _ => return None,
    };
    Some(r)
}

fn sref(s: &str) -> Result<ServerRef, ParseError> {
    match s.split_once('/') {
        Some((b, sv)) if !b.is_empty() && !sv.is_empty() && !sv.contains('/') => {
            Ok(ServerRef { backend: b.to_string(), server: sv.to_string() })
        }
        _ => Err(ParseError::ServerRef(s.to_string())),
    }
}

fn add(rest: &[&str]) -> Result<RtCommand, ParseError> {
    let Some((sv, args)) = rest.split_first() else {
        return Err(ParseError::Usage("add server <backend>/<server> <addr>:<port> [keywords]"));
    };
    let r = sref(sv).map_err(|_| ParseError::Custom("Require 'backend/server'.".into()))?;
    let fields = crate::dynamic::parse_add(&r.server, args).map_err(ParseError::Custom)?;
    Ok(RtCommand::AddServer(r, Box::new(fields)))
}

fn set_addr(sv: &str, rest: &[&str]) -> Result<RtCommand, ParseError> {
    let r = sref(sv)?;
    let (ip, port) = match rest {
        [ip] => (ip, None),
        [ip, "port", p] => (ip, Some(p)),
        [] => {
            return Err(ParseError::Custom(
                "set server <b>/<s> addr requires an address and optionally a port.".into(),
            ));
        }
        [_, extra, ..] => return Err(ParseError::Extra(extra.to_string())),
    };
    let addr = ip.parse().map_err(|_| ParseError::Custom(format!("Invalid addr '{ip}' by 'stats socket command'")))?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(ParseError::Custom(format!(
                    "problem converting port '{p}' to an int by 'stats socket command'"
                )));
            }
        },
    };
    Ok(RtCommand::SetAddr(r, addr, port))
}

fn maxconn(rest: &[&str]) -> Result<RtCommand, ParseError> {
    let value = |v: &str| v.parse::<u32>().map_err(|_| ParseError::Custom("Value out of range.".into()));
    match rest {
        ["frontend", f, v] => Ok(RtCommand::MaxconnFrontend(f.to_string(), value(v)?)),
        ["server", sv, v] => Ok(RtCommand::MaxconnServer(sref(sv)?, value(v)?)),
        ["global", v] => Ok(RtCommand::MaxconnGlobal(value(v)?)),
        ["frontend" | "server" | "global", ..] => {
            Err(ParseError::Custom("Require a name (frontend or backend/server) and a value.".into()))
        }
        _ => Err(ParseError::Custom("'set maxconn' only supports 'frontend', 'server', and 'global'.".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<RtCommand, ParseError> {
        let w: Vec<&str> = s.split_whitespace().collect();
        parse(&w).expect("one of ours")
    }
    fn sv(b: &str, s: &str) -> ServerRef {
        ServerRef { backend: b.into(), server: s.into() }
    }

    #[test]
    fn runtime_server_commands() {
        let e = |s: &str| p(s).unwrap_err().to_string();
        let RtCommand::AddServer(r, f) = p("add server be/c 127.0.0.1:80 check weight 3").unwrap() else {
            panic!("not an add")
        };
        assert_eq!((r, f.check, f.weight), (sv("be", "c"), true, Some(3)));
        assert_eq!(p("del server be/c").unwrap(), RtCommand::DelServer(sv("be", "c")));
        assert_eq!(
            p("set server be/c addr 127.0.0.2 port 81").unwrap(),
            RtCommand::SetAddr(sv("be", "c"), "127.0.0.2".parse().unwrap(), Some(81))
        );
        assert_eq!(
            p("set server be/c addr ::1").unwrap(),
            RtCommand::SetAddr(sv("be", "c"), "::1".parse().unwrap(), None)
        );
        assert_eq!(p("set server be/c check-port 9000").unwrap(), RtCommand::SetCheckPort(sv("be", "c"), 9000));
        let probe = |s: &str| match p(s) {
            Ok(RtCommand::SetProbe(_, x)) => Ok(x),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            probe("set server be/c check-addr 127.0.0.2"),
            Ok(ProbeSetting::CheckAddr("127.0.0.2".into(), None))
        );
        assert_eq!(
            probe("set server be/c agent-addr ::1 port 9999"),
            Ok(ProbeSetting::AgentAddr("::1".into(), Some("9999".into())))
        );
        assert_eq!(probe("set server be/c agent-port 7"), Ok(ProbeSetting::AgentPort("7".into())));
        assert_eq!(probe("set server be/c agent-send ping\\n"), Ok(ProbeSetting::AgentSend("ping\\n".into())));
        assert_eq!(probe("set server be/c agent-send"), Ok(ProbeSetting::AgentSend(String::new())));
        assert!(probe("set server be/c check-addr").unwrap_err().contains("requires an address"));
        assert!(probe("set server be/c agent-port").unwrap_err().contains("requires a port"));
        assert_eq!(p("set server be/c ssl on").unwrap(), RtCommand::SetSsl(sv("be", "c"), true));
        assert_eq!(p("set server be/c ssl off").unwrap(), RtCommand::SetSsl(sv("be", "c"), false));
        assert_eq!(e("set server be/c ssl maybe"), "'set server <srv> ssl' expects 'on' or 'off'.");
        assert_eq!(e("set server be/c ssl"), "'set server <srv> ssl' expects 'on' or 'off'.");
        assert_eq!(
            p("set server be/c health stopping").unwrap(),
            RtCommand::SetHealth(sv("be", "c"), OpState::Stopping)
        );
        assert_eq!(p("set server be/c agent up").unwrap(), RtCommand::SetAgent(sv("be", "c"), OpState::Up));
        assert_eq!(p("set server be/c fqdn a.example").unwrap(), RtCommand::SetFqdn(sv("be", "c"), "a.example".into()));
        assert_eq!(p("disable health be/c").unwrap(), RtCommand::Health(sv("be", "c"), false));
        assert_eq!(p("enable agent be/c").unwrap(), RtCommand::Agent(sv("be", "c"), true));
        assert_eq!(p("disable frontend fe").unwrap(), RtCommand::Frontend("fe".into(), false));
        assert_eq!(p("set maxconn frontend fe 10").unwrap(), RtCommand::MaxconnFrontend("fe".into(), 10));
        assert_eq!(p("set maxconn server be/c 0").unwrap(), RtCommand::MaxconnServer(sv("be", "c"), 0));
        assert_eq!(p("set maxconn global 100").unwrap(), RtCommand::MaxconnGlobal(100));
        assert_eq!(p("show servers conn").unwrap(), RtCommand::ShowServersConn(None));
        assert_eq!(p("show servers conn be").unwrap(), RtCommand::ShowServersConn(Some("be".into())));
        assert!(parse(&["show", "servers", "state"]).is_none());
        assert!(parse(&["set", "server", "be/c", "weight", "3"]).is_none(), "left to the existing parser");
        assert_eq!(RtCommand::ShowServersConn(None).level(), Level::User);
        assert_eq!(RtCommand::DelServer(sv("b", "s")).level(), Level::Admin);
    }

    #[test]
    fn haproxy_errors() {
        let e = |s: &str| p(s).unwrap_err().to_string();
        assert_eq!(e("add server be"), "Require 'backend/server'.");
        assert_eq!(e("add server be/i"), "'server' expects <name> and <addr>[:<port>] as arguments.");
        assert_eq!(e("set server be/m addr bogus"), "Invalid addr 'bogus' by 'stats socket command'");
        assert_eq!(
            e("set server be/m addr 127.0.0.1 port x"),
            "problem converting port 'x' to an int by 'stats socket command'"
        );
        assert_eq!(e("set server be/m check-port x"), "provided port is not an integer");
        assert_eq!(e("set server be/m health x"), "'set server <srv> health' expects 'up', 'stopping', or 'down'.");
        assert_eq!(e("set server be/m agent stopping"), "'set server <srv> agent' expects 'up' or 'down'.");
        assert_eq!(e("set maxconn global x"), "Value out of range.");
        assert_eq!(e("set maxconn frontend fe x"), "Value out of range.");
        assert!(parse(&["set", "server", "be/m"]).is_none(), "the existing parser answers with its usage");
        assert_eq!(e("del server be/a x"), "Unexpected argument 'x'.");
    }
}
