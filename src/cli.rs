//! The `lbha` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lbha",
    version,
    about = "High-availability load balancer: HAProxy-class proxy and VRRP in one daemon"
)]
struct Cli {
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
        #[arg(
            long = "haproxy-config",
            value_name = "FILE",
            conflicts_with = "config"
        )]
        haproxy_config: Option<PathBuf>,
    },
    /// Check a configuration file: exit 0 if valid, 1 with every error otherwise.
    Check {
        #[arg(short = 'c', long = "config", default_value = "/etc/lbha/lbha.toml")]
        config: PathBuf,
        /// Check an haproxy.cfg as lbha would run it.
        #[arg(
            long = "haproxy-config",
            value_name = "FILE",
            conflicts_with = "config"
        )]
        haproxy_config: Option<PathBuf>,
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
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LBHA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            config,
            haproxy_config,
        } => {
            init_logging();
            crate::daemon::run(crate::daemon::RunOptions {
                haproxy: haproxy_config.is_some(),
                config: haproxy_config.unwrap_or(config),
            })
        }
        Cmd::Convert {
            haproxy,
            keepalived,
            output,
            strict,
        } => crate::convert::cmd::convert(crate::convert::cmd::ConvertArgs {
            haproxy,
            keepalived,
            output,
            strict,
        }),
        Cmd::Check {
            haproxy_config: Some(path),
            ..
        } => crate::convert::cmd::check_haproxy(&path),
        Cmd::Check { config, .. } => match crate::config::load(&config) {
            Ok(_) => {
                println!("Configuration file {} is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                let n = e.errors.len();
                eprintln!(
                    "{n} error{} found in {}",
                    if n == 1 { "" } else { "s" },
                    config.display()
                );
                ExitCode::from(1)
            }
        },
    }
}
