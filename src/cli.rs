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
    },
    /// Check a configuration file: exit 0 if valid, 1 with every error otherwise.
    Check {
        #[arg(short = 'c', long = "config", default_value = "/etc/lbha/lbha.toml")]
        config: PathBuf,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LBHA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { config } => {
            init_logging();
            crate::daemon::run(crate::daemon::RunOptions { config })
        }
        Cmd::Check { config } => match crate::config::load(&config) {
            Ok(_) => {
                println!("Configuration file {} is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                let n = e.errors.len();
                eprintln!("{n} error{} found in {}", if n == 1 { "" } else { "s" }, config.display());
                ExitCode::from(1)
            }
        },
    }
}
