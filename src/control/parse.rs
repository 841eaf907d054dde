//! The control socket's command language: HAProxy's runtime API words, one command per line,
//! several per line when separated by `;` (a `\;` or `\ ` keeps the character literal).

use super::vip::{VipRequest, parse_request};
use crate::state::Admin;

/// Longest command line accepted; a longer one is answered with an error and discarded.
pub const MAX_LINE: usize = 64 * 1024;

/// `backend/server`, as HAProxy's runtime API names a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    pub backend: String,
    pub server: String,
}

impl std::fmt::Display for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.backend, self.server)
    }
}

/// `set server B/S weight N` or `N%` (percent of the configured weight, as in HAProxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightSpec {
    Absolute(u32),
    Percent(u32),
}

/// Largest server weight, as in HAProxy.
pub const MAX_WEIGHT: u32 = 256;

impl WeightSpec {
    /// The runtime weight this request gives a server whose configured weight is `initial`.
    pub fn resolve(self, initial: u32) -> u32 {
        match self {
            WeightSpec::Absolute(w) => w,
            WeightSpec::Percent(p) => {
                let w = (u64::from(initial) * u64::from(p)).div_ceil(100);
                w.min(u64::from(MAX_WEIGHT)) as u32
            }
        }
    }
}

/// HAProxy's `set severity-output`: how error lines are marked for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    None,
    /// `[3]: message`
    Number,
    /// `[err]: message`
    String,
}

/// `show stat [<proxy>|-1 <type> -1] [up] [no-maint]`: which rows to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFilter {
    /// Only this proxy's rows.
    pub proxy: Option<String>,
    /// HAProxy's type mask: 1 frontends, 2 backends, 4 servers, 8 listeners.
    pub types: u8,
    /// Only servers that are UP (HAProxy's `up`).
    pub up_only: bool,
    /// Leave out servers in maintenance (HAProxy's `no-maint`).
    pub no_maint: bool,
}

impl Default for StatFilter {
    fn default() -> Self {
        Self { proxy: None, types: 15, up_only: false, no_maint: false }
    }
}

/// HAProxy's `stats socket ... level`: what a connection may do. `user` and `operator` read;
/// only `admin` changes servers, reloads, upgrades or edits VIPs (HAProxy's server commands all
/// need admin; operator adds only commands lbha does not have, such as `clear counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    User,
    Operator,
    #[default]
    Admin,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "user" => Some(Level::User),
            "operator" => Some(Level::Operator),
            "admin" => Some(Level::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::User => "user",
            Level::Operator => "operator",
            Level::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `user` / `operator`: lowers this connection's level (it can never be raised), as HAProxy.
    Lower(Level),
    /// Toggles the interactive prompt.
    Prompt,
    Quit,
    SetSeverityOutput(Severity),
    ShowInfo,
    ShowStat(StatFilter),
    ShowServersState {
        backend: Option<String>,
    },
    ShowBackend,
    /// `show errors [PROXY|#ID] [request|response]`: the last refused request of each frontend.
    ShowErrors {
        proxy: Option<String>,
        response: bool,
    },
    /// `show cache`: each cache section's use and objects.
    ShowCache,
    /// lbha's one-screen summary (`lbha status`).
    ShowStatus,
    EnableServer(ServerRef),
    DisableServer(ServerRef),
    SetServerState(ServerRef, Admin),
    SetServerWeight(ServerRef, WeightSpec),
    GetWeight(ServerRef),
    /// `reload`, or `reload terminate` (HAProxy's `-st`: cut the old connections at once).
    Reload {
        terminate: bool,
    },
    /// VRRP instances: state, priorities, VIPs configured / runtime / held, last transition.
    ShowVrrp,
    ShowAnnounce,
    /// `show events [SINCE]`: the console's timeline (VRRP, servers, reloads, upgrades).
    ShowEvents {
        since: u64,
    },
    /// `show traffic [NAME]`: the console's 15-minute history per frontend and backend.
    ShowTraffic {
        name: Option<String>,
    },
    /// `vip add ADDR[/LEN] dev IF [label L] [instance N]` (ADDR may be a range).
    VipAdd(VipRequest),
    /// `vip del ADDR[/LEN] [dev IF] [instance N]`.
    VipDel(VipRequest),
    /// `vip list [instance N]`.
    VipList {
        instance: Option<String>,
    },
    /// `upgrade [<binary>]`: start a new executable that takes over the listening sockets, the
    /// control socket and the VRRP roles, then drain and exit.
    Upgrade {
        binary: Option<String>,
    },
    /// `_upgrade`: the new process asks for the sockets; the rest of the connection speaks the
    /// handover protocol (as HAProxy's hidden `_getsocks`).
    TakeOver,
    /// `show|add|set|del|clear|commit map ...`, `show|add|del|clear acl ...`.
    Map(super::maps::MapCmd),
    /// `cluster status|diff|push [force]`: config sync with the other node (`[cluster]`).
    Cluster(super::cluster::ClusterCmd),
    /// `show table [NAME [filter]]`, `clear table NAME [filter]`, `set table NAME key K [data.T V]*`.
    Table(crate::stktable::cli::TableCmd),
    /// `expert-mode on|off` (HAProxy's): allows `debug dev` on this connection.
    ExpertMode(bool),
    /// HAProxy's `debug dev loop <ms>` / `debug dev panic`: a real stall or panic of a proxy
    /// thread, to test the watchdog and the panic hook (`track_proxy`).
    DebugDev(DebugDev),
    /// Runtime servers and limits (`add server`, `set server ... addr`, `set maxconn`, ...).
    Runtime(super::servers_rt::RtCommand),
    /// `show|set|commit|abort|new|del ssl cert ...`: certificate rotation without a reload.
    SslCert(super::sslcert::CertCmd),
    /// `show sess`, `shutdown session`, `shutdown sessions server` (`control::sess`).
    Sess(super::sess::SessCmd),
}

/// What `debug dev` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugDev {
    /// Busy-loop the thread running the command for this many milliseconds (at most 60000).
    Loop(u64),
    Panic,
}

impl Command {
    /// The level a connection needs to run the command. `upgrade` and `_upgrade` are judged by
    /// the peer's uid instead (`daemon::control::permitted`); Admin here is only their nominal level.
    pub fn level(&self) -> Level {
        match self {
            Command::EnableServer(_)
            | Command::DisableServer(_)
            | Command::SetServerState(..)
            | Command::SetServerWeight(..)
            | Command::Reload { .. }
            | Command::VipAdd(_)
            | Command::VipDel(_)
            | Command::Upgrade { .. }
            | Command::TakeOver
            | Command::ExpertMode(_)
            | Command::DebugDev(_) => Level::Admin,
            Command::Map(m) => m.level(),
            // As HAProxy: reading tables needs operator, changing them admin.
            Command::Table(t) if t.action == crate::stktable::cli::Action::Show => Level::Operator,
            Command::Table(_) => Level::Admin,
            // As HAProxy: captured requests may carry credentials.
            Command::ShowErrors { .. } => Level::Operator,
            Command::Runtime(r) => r.level(),
            Command::Cluster(c) => c.level(),
            Command::SslCert(c) => c.level(),
            Command::Sess(c) => c.level(),
            _ => Level::User,
        }
    }

    /// Whether the command changes runtime server state (and so the state file).
    pub fn mutates_servers(&self) -> bool {
        matches!(
            self,
            Command::EnableServer(_)
                | Command::DisableServer(_)
                | Command::SetServerState(..)
                | Command::SetServerWeight(..)
        ) || matches!(self, Command::Runtime(r) if r.level() == Level::Admin)
    }
}

/// A parsed command and whether the caller asked for JSON (a `json` prefix, or HAProxy's
/// trailing `json` on `show` commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Unknown command: '{0}'. Type 'help' for the list of commands.")]
    Unknown(String),
    #[error("Usage: {0}")]
    Usage(&'static str),
    #[error("Require 'backend/server', got '{0}'.")]
    ServerRef(String),
    #[error("'set server <srv> state' expects 'ready', 'drain' and 'maint', got '{0}'.")]
    State(String),
    #[error("Invalid weight '{0}': expected an integer from 0 to {MAX_WEIGHT}, or a percentage such as 50%.")]
    Weight(String),
    #[error("'set severity-output' expects 'none', 'number' or 'string', got '{0}'.")]
    Severity(String),
    #[error("Unexpected argument '{0}'.")]
    Extra(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("Command line too long (more than {MAX_LINE} bytes).")]
    TooLong,
    #[error("Command line is not valid UTF-8.")]
    NotUtf8,
    #[error("{0}. Usage: {1}")]
    Vip(String, &'static str),
    /// A map or ACL command's usage error, in HAProxy's words.
    #[error("{0}")]
    Map(String),
    /// HAProxy's own text for a bad `show|clear|set table`.
    #[error("{0}")]
    Table(String),
    /// HAProxy's own wording for a runtime server command.
    #[error("{0}")]
    Custom(String),
}

const USAGE_SET_SERVER: &str = "set server <backend>/<server> state ready|drain|maint | set server <backend>/<server> weight <0-256>|<N>% | addr <ip> [port <p>] | check-port <p> | check-addr <ip> [port <p>] | agent-addr <ip> [port <p>] | agent-port <p> | agent-send <str> | health up|down | fqdn <name>";
const USAGE_VIP_ADD: &str = "vip add ADDR[/LEN]|FIRST-LAST[/LEN] dev IFACE [label LABEL] [instance NAME]";
const USAGE_VIP_DEL: &str = "vip del ADDR[/LEN]|FIRST-LAST[/LEN] [dev IFACE] [instance NAME]";
const USAGE_SHOW_STAT: &str = "show stat [<proxy>|-1 <type> -1] [up] [no-maint] [json]";

/// Splits a line into its `;`-separated commands, each as a list of words. Backslash escapes the
/// next character (so `\;` and `\ ` stay in a word); empty commands are dropped.
pub fn split_line(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !words.is_empty() {
                    out.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        out.push(words);
    }
    out
}

/// One command of a line: whether JSON was asked for (so even an error answers in JSON), and the
/// command or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub json: bool,
    pub command: Result<Command, ParseError>,
}

/// Parses one line into its commands; each gets its own result so one bad command among
/// `;`-separated ones does not stop the others, as in HAProxy.
pub fn parse_line(line: &str) -> Vec<Parsed> {
    split_line(line).iter().map(|w| parse_words(w)).collect()
}

/// Parses one command (no `;`).
pub fn parse(cmd: &str) -> Result<Request, ParseError> {
    match split_line(cmd).as_slice() {
        [one] => {
            let p = parse_words(one);
            p.command.map(|command| Request { command, json: p.json })
        }
        [] => Err(ParseError::Unknown(String::new())),
        [first, ..] => Err(ParseError::Extra(first.join(" "))),
    }
}

fn parse_words(words: &[String]) -> Parsed {
    let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut json = false;
    if w.first() == Some(&"json") {
        json = true;
        w.remove(0);
    }
    // HAProxy's trailing `json` on `show` commands (after a `json` prefix, it is a name).
    if !json && w.first() == Some(&"show") && w.len() > 2 && w.last() == Some(&"json") {
        json = true;
        w.pop();
    }
    Parsed { json, command: command(&w) }
}

fn command(w: &[&str]) -> Result<Command, ParseError> {
    if let Some(r) = super::servers_rt::parse(w) {
        return r.map(Command::Runtime);
    }
    if let Some(r) = super::sess::parse(w) {
        return r.map(Command::Sess);
    }
    let command = match w {
        ["help"] => Command::Help,
        ["prompt"] => Command::Prompt,
        ["quit"] | ["exit"] => Command::Quit,
        ["user"] => Command::Lower(Level::User),
        ["operator"] => Command::Lower(Level::Operator),
        ["set", "severity-output", level] => Command::SetSeverityOutput(match *level {
            "none" => Severity::None,
            "number" => Severity::Number,
            "string" => Severity::String,
            other => return Err(ParseError::Severity(other.to_string())),
        }),
        ["show", "info", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowInfo
        }
        ["show", "stat", rest @ ..] => Command::ShowStat(stat_filter(rest)?),
        ["show", "servers", "state", rest @ ..] => match rest {
            [] => Command::ShowServersState { backend: None },
            [b] => Command::ShowServersState { backend: Some(b.to_string()) },
            [_, extra, ..] => return Err(ParseError::Extra(extra.to_string())),
        },
        ["show", "backend", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowBackend
        }
        ["show", "errors", rest @ ..] => {
            let (proxy, dir) = match rest {
                [] => (None, None),
                [d @ ("request" | "response")] => (None, Some(*d)),
                [p] => (Some(p.to_string()), None),
                [p, d @ ("request" | "response")] => (Some(p.to_string()), Some(*d)),
                [_, extra, ..] => return Err(ParseError::Extra(extra.to_string())),
            };
            // HAProxy: `-1` (or nothing) stands for every proxy.
            let proxy = proxy.filter(|p| p != "-1");
            Command::ShowErrors { proxy, response: dir == Some("response") }
        }
        ["show", "cache", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowCache
        }
        ["show", "status", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowStatus
        }
        ["enable", "server", rest @ ..] => Command::EnableServer(one_server(rest, "enable server <backend>/<server>")?),
        ["disable", "server", rest @ ..] => {
            Command::DisableServer(one_server(rest, "disable server <backend>/<server>")?)
        }
        ["set", "server", sv, "state", st] => Command::SetServerState(
            server_ref(sv)?,
            match *st {
                "ready" => Admin::Ready,
                "drain" => Admin::Drain,
                "maint" => Admin::Maint,
                other => return Err(ParseError::State(other.to_string())),
            },
        ),
        ["set", "server", sv, "weight", wt] | ["set", "weight", sv, wt] => {
            Command::SetServerWeight(server_ref(sv)?, weight(wt)?)
        }
        ["set", "server", sv, "state" | "weight", _, extra, ..] => {
            server_ref(sv)?;
            return Err(ParseError::Extra(extra.to_string()));
        }
        ["set", "server", ..] => return Err(ParseError::Usage(USAGE_SET_SERVER)),
        ["set", "weight", ..] => {
            return Err(ParseError::Usage("set weight <backend>/<server> <0-256>|<N>%"));
        }
        ["get", "weight", rest @ ..] => Command::GetWeight(one_server(rest, "get weight <backend>/<server>")?),
        [verb @ ("show" | "set" | "commit" | "abort" | "new" | "del"), "ssl", "cert", rest @ ..] => {
            Command::SslCert(super::sslcert::parse(verb, rest).map_err(ParseError::Custom)?)
        }
        [
            verb @ ("show" | "set" | "add" | "commit" | "abort" | "new" | "del"),
            "ssl",
            what @ ("ca-file" | "crl-file" | "ocsp-response"),
            rest @ ..,
        ] => Command::SslCert(super::sslca::parse(verb, what, rest).map_err(ParseError::Custom)?),
        ["show", "vrrp", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowVrrp
        }
        ["show", "announce", rest @ ..] => {
            no_extra(rest)?;
            Command::ShowAnnounce
        }
        ["show", "events"] => Command::ShowEvents { since: 0 },
        ["show", "events", n] => {
            Command::ShowEvents { since: n.parse().map_err(|_| ParseError::Usage("show events [<sequence number>]"))? }
        }
        ["show", "events", ..] => return Err(ParseError::Usage("show events [<sequence number>]")),
        ["show", "traffic", rest @ ..] if rest.len() <= 1 => {
            Command::ShowTraffic { name: rest.first().map(|n| n.to_string()) }
        }
        ["show", "traffic", ..] => return Err(ParseError::Usage("show traffic [<frontend or backend>]")),
        ["vip", "add", rest @ ..] => Command::VipAdd(
            parse_request(rest, "add", true).map_err(|e| ParseError::Vip(e.to_string(), USAGE_VIP_ADD))?,
        ),
        ["vip", "del", rest @ ..] => Command::VipDel(
            parse_request(rest, "del", false).map_err(|e| ParseError::Vip(e.to_string(), USAGE_VIP_DEL))?,
        ),
        ["vip", "list"] => Command::VipList { instance: None },
        ["cluster", rest @ ..] => Command::Cluster(super::cluster::parse(rest)?),
        ["vip", "list", "instance", name] => Command::VipList { instance: Some(name.to_string()) },
        ["vip", ..] => return Err(ParseError::Usage("vip add ... | vip del ... | vip list [instance NAME]")),
        ["reload"] => Command::Reload { terminate: false },
        ["reload", "terminate"] => Command::Reload { terminate: true },
        ["reload", extra, ..] => return Err(ParseError::Extra(extra.to_string())),
        ["upgrade"] => Command::Upgrade { binary: None },
        ["upgrade", b] => Command::Upgrade { binary: Some(b.to_string()) },
        ["upgrade", _, extra, ..] => return Err(ParseError::Extra(extra.to_string())),
        ["_upgrade"] => Command::TakeOver,
        [
            verb @ ("show" | "add" | "set" | "del" | "clear" | "commit" | "prepare"),
            kind @ ("map" | "acl"),
            rest @ ..,
        ] => Command::Map(super::maps::parse(verb, kind, rest).map_err(ParseError::Map)?),
        ["show", "table", rest @ ..] => table_cmd(crate::stktable::cli::Action::Show, rest)?,
        ["clear", "table", rest @ ..] => table_cmd(crate::stktable::cli::Action::Clear, rest)?,
        ["set", "table", rest @ ..] => table_cmd(crate::stktable::cli::Action::Set, rest)?,
        ["expert-mode", "on"] => Command::ExpertMode(true),
        ["expert-mode", "off"] => Command::ExpertMode(false),
        ["expert-mode", ..] => return Err(ParseError::Usage("expert-mode on|off")),
        ["debug", "dev", "loop", ms] => match ms.parse::<u64>() {
            Ok(n) if n <= 60_000 => Command::DebugDev(DebugDev::Loop(n)),
            _ => return Err(ParseError::Usage("debug dev loop <ms> (0 to 60000)")),
        },
        ["debug", "dev", "panic"] => Command::DebugDev(DebugDev::Panic),
        ["debug", ..] => return Err(ParseError::Usage("debug dev loop <ms> | debug dev panic (expert mode)")),
        [] => return Err(ParseError::Unknown("json".into())),
        other => return Err(ParseError::Unknown(other.join(" "))),
    };
    Ok(command)
}

fn table_cmd(action: crate::stktable::cli::Action, rest: &[&str]) -> Result<Command, ParseError> {
    crate::stktable::cli::parse(action, rest).map(Command::Table).map_err(ParseError::Table)
}

fn no_extra(rest: &[&str]) -> Result<(), ParseError> {
    match rest.first() {
        None => Ok(()),
        Some(x) => Err(ParseError::Extra(x.to_string())),
    }
}

fn one_server(rest: &[&str], usage: &'static str) -> Result<ServerRef, ParseError> {
    match rest {
        [sv] => server_ref(sv),
        [sv, extra, ..] => {
            server_ref(sv)?;
            Err(ParseError::Extra(extra.to_string()))
        }
        [] => Err(ParseError::Usage(usage)),
    }
}

fn server_ref(s: &str) -> Result<ServerRef, ParseError> {
    match s.split_once('/') {
        Some((b, sv)) if !b.is_empty() && !sv.is_empty() && !sv.contains('/') => {
            Ok(ServerRef { backend: b.to_string(), server: sv.to_string() })
        }
        _ => Err(ParseError::ServerRef(s.to_string())),
    }
}

fn weight(s: &str) -> Result<WeightSpec, ParseError> {
    let bad = || ParseError::Weight(s.to_string());
    if let Some(p) = s.strip_suffix('%') {
        let p: u32 = p.parse().map_err(|_| bad())?;
        // The result is capped at MAX_WEIGHT anyway; a larger percentage is a typo.
        if p > 100 * MAX_WEIGHT {
            return Err(bad());
        }
        Ok(WeightSpec::Percent(p))
    } else {
        let w: u32 = s.parse().map_err(|_| bad())?;
        if w > MAX_WEIGHT {
            return Err(bad());
        }
        Ok(WeightSpec::Absolute(w))
    }
}

fn stat_filter(args: &[&str]) -> Result<StatFilter, ParseError> {
    let mut f = StatFilter::default();
    let mut rest = args;
    if let [px, ty, sid, tail @ ..] = rest
        && !matches!(*px, "up" | "no-maint" | "typed" | "desc")
    {
        if *px != "-1" {
            if px.parse::<i64>().is_ok() {
                return Err(ParseError::Unsupported(
                    "Numeric proxy ids are not supported: name the proxy, or use -1 for all.",
                ));
            }
            f.proxy = Some(px.to_string());
        }
        f.types = match ty.parse::<i32>() {
            // 1 frontends, 2 backends, 4 servers, 8 listeners (`option socket-stats`), ORed.
            Ok(-1) => 15,
            Ok(t) if (1..=15).contains(&t) => t as u8,
            _ => return Err(ParseError::Usage(USAGE_SHOW_STAT)),
        };
        if *sid != "-1" {
            return Err(ParseError::Unsupported("Server ids are not supported: use -1 and filter by name."));
        }
        rest = tail;
    }
    for a in rest {
        match *a {
            "up" => f.up_only = true,
            "no-maint" => f.no_maint = true,
            "typed" => {
                return Err(ParseError::Unsupported("The typed output format is not supported; use 'show stat json'."));
            }
            "desc" => {}
            _ => return Err(ParseError::Usage(USAGE_SHOW_STAT)),
        }
    }
    Ok(f)
}

/// The `help` text: one line per command, no blank lines (a blank line ends a response).
pub const HELP: &str = "\
The following commands are valid at this level:
  help                                    : this message
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
  operator | user                         : lower this connection's level (it cannot be raised)
  set severity-output none|number|string  : mark error lines with their severity ([3]: or [err]:)
  show info [json]                        : report information about the running process
  show stat [<px>|-1 <type> -1] [up] [no-maint] [json] : report counters for each proxy and server (CSV)
  show servers state [<backend>] [json]   : dump runtime server state (server-state-file format)
  show backend [json]                     : list backends
  show status [json]                      : one-screen summary: frontends, backends, reload, VRRP
  show errors [PROXY|#ID] [request|response] : the last request each frontend refused for its head, dumped
  show cache [json]                       : each cache: memory used, hits, misses, and its objects
  enable server <bk>/<srv>                : take a server out of maintenance
  disable server <bk>/<srv>               : put a server in maintenance
  set server <bk>/<srv> state ready|drain|maint : change a server's admin state
  set server <bk>/<srv> weight <w>|<w>%   : change a server's weight (0-256, or % of its configured weight)
  set weight <bk>/<srv> <w>|<w>%          : same as above
  get weight <bk>/<srv>                   : report a server's current and configured weight
  add server <bk>/<srv> <addr>:<port> [kw]* : add a server (starts in maintenance; kept across reloads)
  del server <bk>/<srv>                   : remove a server in maintenance without connections
  set server <bk>/<srv> addr <ip> [port <p>] : change a server's address (kept across reloads)
  set server <bk>/<srv> check-port <p>    : change the port health checks probe
  set server <bk>/<srv> check-addr <ip> [port <p>] : change where health checks go
  set server <bk>/<srv> agent-addr <ip> [port <p>] | agent-port <p> | agent-send <str> : change the agent check
  set server <bk>/<srv> health up|down    : force the check result until the next check
  enable|disable health <bk>/<srv>        : start or stop a server's health checks
  enable|disable frontend <fe>            : stop or resume accepting on a frontend
  set maxconn frontend <fe> <n> | server <bk>/<srv> <n> | global <n> : change a connection limit
  show servers conn [<bk>]                : server connections: in use and idle in the pools
  show sess [<id>|all]                    : list client sessions, or one (or all) in detail
  shutdown session <id>                   : kill a specific session
  shutdown sessions server <bk>/<srv>     : kill sessions on a server
  reload                                  : reload the configuration file; answers Success=1 or every error
  show vrrp [json]                        : VRRP instances: state, priorities, VIPs configured/runtime/held, last transition
  show announce [json]                    : [[announce]] VIPs: announced or withdrawn, and why
  show events [since] [json]              : timeline of VRRP, server, reload and upgrade events
  show traffic [name] [json]              : 15-minute traffic history per frontend/backend ([console])
  vip add <addr>[/len] dev <if> [label <l>] [instance <n>] : add a runtime VIP (or a range a.b.c.1-100/24) to a VRRP instance
  vip del <addr>[/len] [dev <if>] [instance <n>] : delete runtime VIPs
  vip list [instance <n>]                 : every VIP, configured and runtime, and whether this node holds it
  cluster status|diff|push [force]       : config sync with the other node: both nodes' versions, what a push changes, push
  show map|acl [<file>|#<id>]             : list map / ACL pattern files, or one file's entries
  add map <map> <key> <value>             : add an entry to a map (kept across reloads until committed)
  set map <map> <key>|#<ref> <value>      : change the value of a map's entries
  del map|acl <file> <key>|#<ref>         : delete entries
  add acl <file> <pattern>                : add a pattern to an ACL pattern file
  clear map|acl <file>                    : delete every entry
  commit map <file>|#<id>                 : write a map or pattern file's live content to its file
  add map|acl [@<ver>] <file> <<          : add the payload's entries (key value per line; a pattern per line for acl)
  prepare map|acl <file>                  : open a new, empty version of a map or ACL (prints its number)
  add map|acl @<ver> <file> <key> [<val>] : add an entry to that version, unseen by traffic
  commit map|acl @<ver> <file>            : make that version the live content at once
  show ssl cert [<file>|*<file>]          : list certificates, or one certificate (* for the uncommitted one)
  set ssl cert <file> <<                  : stage a new certificate and key (PEM payload up to an empty line)
  commit ssl cert <file>                  : serve the staged certificate to new handshakes and write it to <file>
  abort ssl cert <file>                   : drop the staged certificate
  new ssl cert <file> | del ssl cert <file> : create an empty certificate in memory | delete one no bind uses
  show ssl ca-file|crl-file [<file>[:<n>]] : list CA / CRL files, or one file's certificates / CRLs
  set ssl ca-file|crl-file <file> <<      : stage new content for a CA / CRL file (PEM payload)
  add ssl ca-file <file> <<               : stage CA certificates added to a CA file
  commit ssl ca-file|crl-file <file>      : verify new client certificates with the staged file and write it
  abort ssl ca-file|crl-file <file>       : drop the staged file
  new|del ssl ca-file|crl-file <file>     : create an empty file in memory | delete one no bind uses
  set ssl ocsp-response <base64>|<<       : staple a new OCSP response for the certificate it is about
  show ssl ocsp-response [<id>]           : list the stapled responses' certificate IDs, or one response
  show table [<table> [key <k> | data.<type> <op> <v>]*] : list stick tables or dump one table's entries
  clear table <table> [key <k> | data.<type> <op> <v>]* : remove entries from a stick table
  set table <table> key <k> [data.<type> <v>]* : create or update a stick table entry
  upgrade [<binary>]                      : hand sockets, VRRP roles and server state to a new executable, then drain
  expert-mode on|off                      : allow the debug dev commands on this connection
  debug dev loop <ms> | debug dev panic   : (expert) stall or panic a proxy thread, to test track_proxy
  json <command>                          : answer any command in JSON
Commands may be chained on one line with ';'.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_changes_anything() {
        for c in ["show stat", "show info", "show servers state", "get weight b/s", "show vrrp", "vip list", "help"] {
            assert_eq!(cmd(c).level(), Level::User, "{c}");
        }
        for c in [
            "enable server b/s",
            "disable server b/s",
            "set server b/s state maint",
            "set weight b/s 10",
            "reload",
            "vip del 10.0.0.1",
            "upgrade",
            "_upgrade",
        ] {
            assert_eq!(cmd(c).level(), Level::Admin, "{c}");
        }
        assert!(Level::User < Level::Operator && Level::Operator < Level::Admin);
        assert_eq!(cmd("operator"), Command::Lower(Level::Operator));
    }

    fn cmd(s: &str) -> Command {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).command
    }
    fn sv(b: &str, s: &str) -> ServerRef {
        ServerRef { backend: b.into(), server: s.into() }
    }

    #[test]
    fn splits_on_semicolons_and_escapes() {
        assert_eq!(split_line("show info ; show  stat;;"), vec![vec!["show", "info"], vec!["show", "stat"]]);
        assert_eq!(split_line(r"a\;b c\ d"), vec![vec!["a;b", "c d"]]);
        assert!(split_line("   ").is_empty());
        assert!(split_line(";;").is_empty());
        assert_eq!(split_line("x\\"), vec![vec!["x"]]);
    }

    #[test]
    fn haproxy_commands() {
        assert_eq!(cmd("help"), Command::Help);
        assert_eq!(cmd("show info"), Command::ShowInfo);
        assert_eq!(cmd("show cache"), Command::ShowCache);
        assert_eq!(cmd("show errors"), Command::ShowErrors { proxy: None, response: false });
        assert_eq!(cmd("show errors -1 response"), Command::ShowErrors { proxy: None, response: true });
        assert_eq!(cmd("show errors #2 request"), Command::ShowErrors { proxy: Some("#2".into()), response: false });
        assert_eq!(cmd("show stat"), Command::ShowStat(StatFilter::default()));
        assert_eq!(cmd("show servers state"), Command::ShowServersState { backend: None });
        assert_eq!(cmd("show servers state web"), Command::ShowServersState { backend: Some("web".into()) });
        assert_eq!(cmd("show backend"), Command::ShowBackend);
        assert_eq!(cmd("disable server web/a"), Command::DisableServer(sv("web", "a")));
        assert_eq!(cmd("enable server web/a"), Command::EnableServer(sv("web", "a")));
        assert_eq!(cmd("set server web/a state drain"), Command::SetServerState(sv("web", "a"), Admin::Drain));
        assert_eq!(cmd("set server web/a weight 7"), Command::SetServerWeight(sv("web", "a"), WeightSpec::Absolute(7)));
        assert_eq!(cmd("set weight web/a 50%"), Command::SetServerWeight(sv("web", "a"), WeightSpec::Percent(50)));
        assert_eq!(cmd("get weight web/a"), Command::GetWeight(sv("web", "a")));
        assert_eq!(cmd("reload"), Command::Reload { terminate: false });
        assert_eq!(cmd("upgrade"), Command::Upgrade { binary: None });
        assert_eq!(cmd(r"upgrade /opt/lbha\ 2/lbha"), Command::Upgrade { binary: Some("/opt/lbha 2/lbha".into()) });
        assert_eq!(cmd("_upgrade"), Command::TakeOver);
        assert!(parse("upgrade a b").is_err());
        assert_eq!(cmd("reload terminate"), Command::Reload { terminate: true });
        assert_eq!(cmd("set severity-output number"), Command::SetSeverityOutput(Severity::Number));
        assert_eq!(cmd("quit"), Command::Quit);
        assert_eq!(cmd("prompt"), Command::Prompt);
    }

    #[test]
    fn json_forms() {
        let r = parse("show stat json").unwrap();
        assert!(r.json);
        assert_eq!(r.command, Command::ShowStat(StatFilter::default()));
        assert!(parse("show info json").unwrap().json);
        let r = parse("show servers state web json").unwrap();
        assert!(r.json);
        assert_eq!(r.command, Command::ShowServersState { backend: Some("web".into()) });
        let r = parse("json disable server web/a").unwrap();
        assert!(r.json);
        assert_eq!(r.command, Command::DisableServer(sv("web", "a")));
        assert!(!parse("show info").unwrap().json);
        // A backend named "json" needs the prefix form.
        let r = parse("json show servers state json").unwrap();
        assert!(r.json);
        assert_eq!(r.command, Command::ShowServersState { backend: Some("json".into()) });
    }

    #[test]
    fn stat_filters() {
        assert_eq!(
            cmd("show stat web 4 -1 up"),
            Command::ShowStat(StatFilter { proxy: Some("web".into()), types: 4, up_only: true, no_maint: false })
        );
        assert_eq!(
            cmd("show stat -1 -1 -1 no-maint"),
            Command::ShowStat(StatFilter { no_maint: true, ..StatFilter::default() })
        );
        assert!(matches!(parse("show stat 3 4 -1"), Err(ParseError::Unsupported(_))));
        assert!(matches!(parse("show stat web 16 -1"), Err(ParseError::Usage(_))));
        assert_eq!(
            cmd("show stat -1 9 -1"),
            Command::ShowStat(StatFilter { types: 9, ..StatFilter::default() }),
            "frontends and their listeners"
        );
        assert!(matches!(parse("show stat typed"), Err(ParseError::Unsupported(_))));
        assert!(matches!(parse("show stat bogus"), Err(ParseError::Usage(_))));
    }

    #[test]
    fn malformed() {
        assert_eq!(parse("frobnicate now"), Err(ParseError::Unknown("frobnicate now".into())));
        assert_eq!(parse("disable server web"), Err(ParseError::ServerRef("web".into())));
        assert_eq!(parse("disable server /a"), Err(ParseError::ServerRef("/a".into())));
        assert_eq!(parse("disable server"), Err(ParseError::Usage("disable server <backend>/<server>")));
        assert_eq!(parse("disable server web/a now"), Err(ParseError::Extra("now".into())));
        assert_eq!(parse("set server web/a state up"), Err(ParseError::State("up".into())));
        assert_eq!(parse("set server web/a weight 257"), Err(ParseError::Weight("257".into())));
        assert_eq!(parse("set server web/a weight -1"), Err(ParseError::Weight("-1".into())));
        assert_eq!(parse("set server web/a weight x%"), Err(ParseError::Weight("x%".into())));
        assert!(matches!(parse("set server web/a"), Err(ParseError::Usage(_))));
        assert_eq!(parse("set server web/a weight 3 4"), Err(ParseError::Extra("4".into())));
        assert_eq!(parse("set severity-output loud"), Err(ParseError::Severity("loud".into())));
        assert_eq!(parse("show info x"), Err(ParseError::Extra("x".into())));
        assert_eq!(parse("reload now"), Err(ParseError::Extra("now".into())));
        assert_eq!(parse("json"), Err(ParseError::Unknown("json".into())));
    }

    #[test]
    fn one_bad_command_in_a_chain_does_not_stop_the_others() {
        let r = parse_line("show info; json nope; show backend");
        assert_eq!(r.len(), 3);
        assert!(r[0].command.is_ok());
        assert!(r[1].command.is_err());
        assert!(r[1].json, "an error to a JSON request answers in JSON");
        assert_eq!(r[2].command, Ok(Command::ShowBackend));
    }

    #[test]
    fn percent_weights_follow_the_configured_weight() {
        assert_eq!(WeightSpec::Percent(50).resolve(10), 5);
        assert_eq!(WeightSpec::Percent(50).resolve(1), 1);
        assert_eq!(WeightSpec::Percent(0).resolve(10), 0);
        assert_eq!(WeightSpec::Percent(1000).resolve(100), MAX_WEIGHT);
        assert_eq!(WeightSpec::Absolute(3).resolve(100), 3);
    }

    #[test]
    fn vrrp_and_vip_commands() {
        assert_eq!(cmd("show vrrp"), Command::ShowVrrp);
        assert_eq!(cmd("show announce"), Command::ShowAnnounce);
        assert_eq!(cmd("show events"), Command::ShowEvents { since: 0 });
        assert_eq!(cmd("show events 12"), Command::ShowEvents { since: 12 });
        assert_eq!(cmd("show traffic web"), Command::ShowTraffic { name: Some("web".into()) });
        let r = parse("show vrrp json").unwrap();
        assert!(r.json);
        assert_eq!(cmd("vip list"), Command::VipList { instance: None });
        assert_eq!(cmd("vip list instance VI_1"), Command::VipList { instance: Some("VI_1".into()) });
        let Command::VipAdd(r) = cmd("vip add 198.51.100.1-100/24 dev eth0 label eth0:1 instance VI_1") else {
            panic!("not an add");
        };
        assert_eq!((r.range.count, r.dev.as_deref(), r.instance.as_deref()), (100, Some("eth0"), Some("VI_1")));
        let Command::VipDel(r) = cmd("vip del 198.51.100.7") else { panic!("not a del") };
        assert_eq!((r.range.count, r.dev), (1, None));
        let e = parse("vip add 198.51.100.1").unwrap_err().to_string();
        assert!(e.starts_with("missing `dev IFACE`"), "{e}");
        assert!(e.contains("Usage: vip add"), "{e}");
        let e = parse("vip add 198.51.100.1-5000 dev eth0").unwrap_err().to_string();
        assert!(e.contains("neither an address nor a last octet"), "{e}");
        let e = parse("vip add 198.51.0.1-198.52.0.1 dev eth0").unwrap_err().to_string();
        assert!(e.contains("at most 4096"), "{e}");
        assert!(matches!(parse("vip frob"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("vip list x"), Err(ParseError::Usage(_))));
        assert_eq!(parse("show vrrp now"), Err(ParseError::Extra("now".into())));
    }

    #[test]
    fn expert_mode_and_debug_dev() {
        assert_eq!(cmd("expert-mode on"), Command::ExpertMode(true));
        assert_eq!(cmd("expert-mode off"), Command::ExpertMode(false));
        assert_eq!(cmd("debug dev loop 800"), Command::DebugDev(DebugDev::Loop(800)));
        assert_eq!(cmd("debug dev panic"), Command::DebugDev(DebugDev::Panic));
        assert!(parse("debug dev loop 60001").is_err());
        assert!(parse("debug dev loop x").is_err());
        assert!(parse("expert-mode maybe").is_err());
        assert_eq!(cmd("debug dev panic").level(), Level::Admin);
    }

    #[test]
    fn help_has_no_blank_line() {
        assert!(!HELP.contains("\n\n"));
    }
}
