//! The `lbha` command line. Everything but `run` and `check` is a thin client of the control
//! socket. Exit codes: 0 ok, 1 the command failed, 2 usage error, 3 the daemon is not reachable.

mod vip;

use crate::control::client::{self, ClientError};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_SOCKET: &str = "/run/lbha/lbha.sock";
/// Longer than the daemon's own bound on a reload, so its answer arrives first.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(130);

#[derive(Parser)]
#[command(
    name = "lbha",
    version,
    about = "High-availability load balancer: HAProxy-class proxy and VRRP in one daemon"
)]
struct Cli {
    /// Control socket of the daemon [default: /run/lbha/lbha.sock]. With `run`, it overrides
    /// `control_socket.path` of the config.
    #[arg(short = 'S', long = "socket", global = true, value_name = "SOCKET")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground.
    Run {
        /// Configuration file.
        #[arg(short = 'c', long = "config", default_value = "/etc/lbha/lbha.toml")]
        config: PathBuf,
        /// Run from an haproxy.cfg instead, converted in memory (see `lbha convert`).
        #[arg(long = "haproxy-config", value_name = "FILE", conflicts_with = "config")]
        haproxy_config: Option<PathBuf>,
        /// With --haproxy-config: run even if an access rule (deny, auth, stats protection)
        /// could not be converted, with less protection than the haproxy.cfg asks for.
        #[arg(long, requires = "haproxy_config")]
        allow_weaker: bool,
        /// Take over from the daemon answering on this control socket (what `lbha upgrade` starts):
        /// its listening sockets, control socket, API, VRRP roles and server state.
        #[arg(long, value_name = "SOCKET")]
        upgrade_from: Option<PathBuf>,
    },
    /// Check a configuration file: exit 0 if valid, 1 with every error otherwise.
    Check {
        #[arg(short = 'c', long = "config", default_value = "/etc/lbha/lbha.toml")]
        config: PathBuf,
        /// Check an haproxy.cfg as lbha would run it.
        #[arg(long = "haproxy-config", value_name = "FILE", conflicts_with = "config")]
        haproxy_config: Option<PathBuf>,
        /// With --haproxy-config: accept access rules that could not be converted (see `run`).
        #[arg(long, requires = "haproxy_config")]
        allow_weaker: bool,
    },
    /// Convert an haproxy.cfg (and keepalived.conf) into lbha.toml; reports go to stderr.
    Convert {
        #[arg(long, value_name = "FILE", required_unless_present = "keepalived")]
        haproxy: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        keepalived: Option<PathBuf>,
        /// Output file, written atomically (default: stdout).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// Fail (exit 1, write nothing) if any directive was not converted exactly.
        #[arg(long)]
        strict: bool,
        /// Write the file even if an access rule (deny, auth, stats protection) could not be
        /// converted, so the result allows what the original denied.
        #[arg(long)]
        allow_weaker: bool,
    },
    /// Reload the running daemon's configuration file; prints the new generation or every error.
    Reload {
        /// Close the connections accepted before the reload at once (HAProxy's `-st`); by default
        /// they finish (`-sf`), and those whose bind or server was removed get `hard_stop_after`.
        #[arg(long)]
        terminate: bool,
    },
    /// Replace the running daemon by a new executable without refusing a connection: the new
    /// process takes the listening sockets, control socket, VRRP roles (no priority-0 advert) and
    /// server state; the old one drains within hard_stop_after and exits.
    Upgrade {
        /// The new executable [default: this `lbha`].
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// One screen: frontends, backends and servers, reload generation, uptime, VRRP.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show counters and state (HAProxy's `show stat`, `show info`, `show servers state`).
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Change a server's runtime state.
    Server {
        #[command(subcommand)]
        action: ServerAction,
    },
    /// Virtual addresses: runtime VIPs of a VRRP instance through the daemon (applied on the
    /// master, recorded on the backup, persisted), or addresses managed directly (`--direct`, or
    /// when no daemon runs).
    Vip {
        #[command(subcommand)]
        action: vip::VipAction,
    },
    /// Config sync with the other node of the pair (`[cluster]`).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Send a raw runtime API command (several may be chained with `;`).
    #[command(name = "cmd")]
    Raw {
        /// For example "show servers state web" or "set server web/a weight 50%".
        command: String,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Both nodes: config version and hash, VRRP role per instance, reachability, last sync.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// What `push` would change on the peer (shared settings only).
    Diff,
    /// Apply this node's config on the peer, validated there with its local settings.
    Push {
        /// Even over changes made on the peer (after a conflict).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum Show {
    /// HAProxy's CSV counters.
    Stat {
        #[arg(long)]
        json: bool,
    },
    /// Process information.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Runtime state of every server, or of one backend's.
    Servers {
        backend: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The backends.
    Backends {
        #[arg(long)]
        json: bool,
    },
    /// VRRP instances: state, priorities, VIPs configured / runtime / held, last transition.
    Vrrp {
        #[arg(long)]
        json: bool,
    },
    /// `[[announce]]` VIPs: announced or withdrawn, and why.
    Announce {
        #[arg(long)]
        json: bool,
    },
    /// The events timeline the web console shows: VRRP transitions, server state changes,
    /// reloads and upgrades, oldest first.
    Events {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        #[arg(long)]
        json: bool,
    },
    /// The web console's 15-minute traffic history per frontend and backend (`[console]`).
    Traffic {
        /// Only this frontend or backend.
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ServerAction {
    /// Take a server out of maintenance.
    Enable {
        #[arg(value_name = "BACKEND/SERVER", value_parser = server_arg)]
        server: String,
        #[arg(long)]
        json: bool,
    },
    /// Put a server in maintenance: it gets no new traffic.
    Disable {
        #[arg(value_name = "BACKEND/SERVER", value_parser = server_arg)]
        server: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a server's weight: 0-256, or a percentage of its configured weight (`50%`).
    Weight {
        #[arg(value_name = "BACKEND/SERVER", value_parser = server_arg)]
        server: String,
        #[arg(value_parser = weight_arg)]
        weight: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a server's admin state.
    State {
        #[arg(value_name = "BACKEND/SERVER", value_parser = server_arg)]
        server: String,
        state: AdminArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AdminArg {
    Ready,
    Drain,
    Maint,
}

fn server_arg(s: &str) -> Result<String, String> {
    match s.split_once('/') {
        Some((b, sv)) if !b.is_empty() && !sv.is_empty() && !sv.contains('/') && !s.contains(char::is_whitespace) => {
            Ok(s.to_string())
        }
        _ => Err(format!("expected BACKEND/SERVER, got '{s}'")),
    }
}

fn weight_arg(s: &str) -> Result<String, String> {
    let n = s.strip_suffix('%').unwrap_or(s);
    match n.parse::<u32>() {
        Ok(v) if s.ends_with('%') || v <= crate::control::parse::MAX_WEIGHT => Ok(s.to_string()),
        _ => Err(format!("expected a weight from 0 to 256 or a percentage such as 50%, got '{s}'")),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Run { .. }) {
        // A client printing into `| head` should end quietly, as Unix tools do, not panic on
        // EPIPE. The daemon keeps Rust's default (SIGPIPE ignored, errors returned).
        // SAFETY: restoring the default disposition installs no handler and runs before any
        // other thread exists.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
    }
    let socket = cli.socket.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let json = |cmd: &str, json: bool| {
        if json { format!("json {cmd}") } else { cmd.to_string() }
    };
    match cli.cmd {
        Cmd::Run { config, haproxy_config, allow_weaker, upgrade_from } => {
            crate::log::init_stderr();
            let source = crate::daemon::Source {
                haproxy: haproxy_config.is_some(),
                path: haproxy_config.unwrap_or(config),
                allow_weaker,
            };
            crate::daemon::run(crate::daemon::RunOptions { source, socket: cli.socket, upgrade_from })
        }
        Cmd::Upgrade { binary } => upgrade(&socket, binary),
        Cmd::Convert { haproxy, keepalived, output, strict, allow_weaker } => {
            crate::convert::cmd::convert(crate::convert::cmd::ConvertArgs {
                haproxy,
                keepalived,
                output,
                strict,
                allow_weaker,
            })
        }
        Cmd::Check { haproxy_config: Some(path), allow_weaker, .. } => {
            crate::convert::cmd::check_haproxy(&path, allow_weaker)
        }
        Cmd::Check { config, .. } => check(&config),
        Cmd::Reload { terminate } => reload(&socket, terminate),
        Cmd::Status { json: true } => ask(&socket, "show status json"),
        Cmd::Status { json: false } => status(&socket),
        Cmd::Show { what } => match what {
            Show::Stat { json: j } => ask(&socket, &json("show stat", j)),
            Show::Info { json: j } => ask(&socket, &json("show info", j)),
            Show::Servers { backend, json: j } => {
                let cmd = match backend {
                    Some(b) => format!("show servers state {}", escape(&b)),
                    None => "show servers state".into(),
                };
                ask(&socket, &json(&cmd, j))
            }
            Show::Backends { json: j } => ask(&socket, &json("show backend", j)),
            Show::Vrrp { json: j } => ask(&socket, &json("show vrrp", j)),
            Show::Announce { json: j } => ask(&socket, &json("show announce", j)),
            Show::Events { since, json: j } => ask(&socket, &json(&format!("show events {since}"), j)),
            Show::Traffic { name, json: j } => {
                let cmd = match name {
                    Some(n) => format!("show traffic {}", escape(&n)),
                    None => "show traffic".into(),
                };
                ask(&socket, &json(&cmd, j))
            }
        },
        Cmd::Server { action } => {
            let (cmd, j) = match action {
                ServerAction::Enable { server, json } => (format!("enable server {}", escape(&server)), json),
                ServerAction::Disable { server, json } => (format!("disable server {}", escape(&server)), json),
                ServerAction::Weight { server, weight, json } => {
                    (format!("set server {} weight {weight}", escape(&server)), json)
                }
                ServerAction::State { server, state, json } => {
                    let st = match state {
                        AdminArg::Ready => "ready",
                        AdminArg::Drain => "drain",
                        AdminArg::Maint => "maint",
                    };
                    (format!("set server {} state {st}", escape(&server)), json)
                }
            };
            ask(&socket, &json(&cmd, j))
        }
        Cmd::Vip { action } => vip::main(&socket, action),
        Cmd::Cluster { action } => match action {
            ClusterAction::Status { json: j } => ask(&socket, &json("cluster status", j)),
            ClusterAction::Diff => ask(&socket, "cluster diff"),
            ClusterAction::Push { force: false } => ask(&socket, "cluster push"),
            ClusterAction::Push { force: true } => ask(&socket, "cluster push force"),
        },
        Cmd::Raw { command } => ask(&socket, &command),
    }
}

/// Keeps a name one word of the runtime API (names may not hold `;` or spaces unescaped).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ';' || c == '\\' || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn check(config: &Path) -> ExitCode {
    match crate::config::load(config) {
        Ok(snap) => {
            for w in &snap.warnings {
                eprintln!("{w}");
            }
            println!("Configuration file {} is valid", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            let n = e.errors.len();
            eprintln!("{n} error{} found in {}", if n == 1 { "" } else { "s" }, config.display());
            ExitCode::from(1)
        }
    }
}

fn client_failed(e: &ClientError) -> ExitCode {
    eprintln!("lbha: {e}");
    match e {
        ClientError::Timeout { .. } => ExitCode::from(1),
        _ => ExitCode::from(3),
    }
}

/// Sends one command line and prints each answer: successes on stdout, failures on stderr.
fn ask(socket: &Path, line: &str) -> ExitCode {
    match client::run(socket, line, CLIENT_TIMEOUT) {
        Ok(a) => print_answers(socket, a),
        Err(e) => client_failed(&e),
    }
}

/// Prints each answer: successes on stdout, failures on stderr (exit 1).
fn print_answers(socket: &Path, answers: Vec<client::Answer>) -> ExitCode {
    if answers.is_empty() {
        eprintln!("lbha: no answer from {}", socket.display());
        return ExitCode::from(1);
    }
    let mut code = ExitCode::SUCCESS;
    for a in answers {
        if a.ok {
            print!("{}", a.text);
        } else {
            eprint!("lbha: {}", a.text);
            code = ExitCode::from(1);
        }
    }
    code
}

fn reload(socket: &Path, terminate: bool) -> ExitCode {
    reload_like(socket, if terminate { "reload terminate" } else { "reload" })
}

/// Sends a command answered HAProxy-style (`Success=N`, `--`, then text); prints the text.
fn reload_like(socket: &Path, cmd: &str) -> ExitCode {
    let answers = match client::run(socket, cmd, CLIENT_TIMEOUT) {
        Ok(a) => a,
        Err(e) => return client_failed(&e),
    };
    let Some(a) = answers.into_iter().next() else {
        eprintln!("lbha: no answer from {}", socket.display());
        return ExitCode::from(1);
    };
    // Drop HAProxy's `Success=N` / `--` preamble; the exit code says it.
    let body = a.text.split_once("--\n").map_or(a.text.as_str(), |(_, rest)| rest);
    if a.ok {
        print!("{body}");
        ExitCode::SUCCESS
    } else {
        eprint!("lbha: {body}");
        ExitCode::from(1)
    }
}

/// Checks the new executable here (so a typo is reported by name), then asks the daemon, which
/// starts it with its own environment and output.
fn upgrade(socket: &Path, binary: Option<PathBuf>) -> ExitCode {
    let binary = match binary.map_or_else(std::env::current_exe, Ok).and_then(std::path::absolute) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("lbha: cannot find this executable ({e}); name the new one with --binary");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = executable(&binary) {
        eprintln!("lbha: cannot upgrade to {}: {e}", binary.display());
        return ExitCode::from(1);
    }
    let Some(path) = binary.to_str() else {
        eprintln!("lbha: cannot upgrade to {}: the path is not UTF-8", binary.display());
        return ExitCode::from(1);
    };
    reload_like(socket, &format!("upgrade {}", escape(path)))
}

fn executable(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(p).map_err(|e| e.to_string())?;
    if !m.is_file() {
        return Err("not a file".into());
    }
    if m.permissions().mode() & 0o111 == 0 {
        return Err("not executable".into());
    }
    Ok(())
}

fn status(socket: &Path) -> ExitCode {
    let answers = match client::run(socket, "show status json", CLIENT_TIMEOUT) {
        Ok(a) => a,
        Err(e) => return client_failed(&e),
    };
    let Some(a) = answers.into_iter().next() else {
        eprintln!("lbha: no answer from {}", socket.display());
        return ExitCode::from(1);
    };
    match serde_json::from_str::<crate::control::status::Status>(&a.text) {
        Ok(st) if a.ok => {
            print!("{}", crate::control::status::render(&st));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("lbha: unexpected answer to 'show status json': {}", a.text.trim_end());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_before_asking_the_daemon() {
        assert!(server_arg("web/a").is_ok());
        assert!(server_arg("web").is_err());
        assert!(server_arg("web/a/b").is_err());
        assert!(server_arg("/a").is_err());
        assert!(weight_arg("256").is_ok());
        assert!(weight_arg("50%").is_ok());
        assert!(weight_arg("257").is_err());
        assert!(weight_arg("-1").is_err());
        assert!(weight_arg("x%").is_err());
        assert_eq!(escape("a b;c"), "a\\ b\\;c");
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            vec!["lbha", "server", "disable", "nobackend"],
            vec!["lbha", "server", "weight", "web/a", "300"],
            vec!["lbha", "server", "state", "web/a", "up"],
            vec!["lbha", "frobnicate"],
        ] {
            let e = Cli::try_parse_from(&args).err().unwrap();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        let c = Cli::try_parse_from(["lbha", "status", "-S", "/tmp/x.sock", "--json"]).unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/tmp/x.sock")));
    }
}
