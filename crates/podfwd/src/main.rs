//! `podfwd`: the per-node dataplane binary.
//!
//! `podfwd check --config FILE` validates a config and prints the resolved tables;
//! `podfwd run --config FILE` runs the dataplane; `podfwd status` and `podfwd reload`
//! talk to a running process over its metrics listener.
#![forbid(unsafe_code)]

mod control;
mod http;
mod ifaces;
mod metrics;
mod neigh;
mod stats;
mod status;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A per-node userspace packet-forwarding dataplane for pod networks, on AF_XDP.
#[derive(Debug, Parser)]
#[command(name = "podfwd", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate a node config and print the resolved tables; touches nothing.
    Check {
        /// The node's YAML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the dataplane in this network namespace until SIGTERM/SIGINT.
    Run {
        /// The node's YAML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show what a running podfwd is doing.
    Status {
        /// Address of its metrics listener.
        #[arg(long, default_value = "127.0.0.1:9475")]
        addr: String,
        /// Print JSON instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running podfwd to re-read its config (the same as SIGHUP, but says the result).
    Reload {
        /// Address of its metrics listener.
        #[arg(long, default_value = "127.0.0.1:9475")]
        addr: String,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("PODFWD_LOG", "info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => match podfwd_config::Config::load_all(&config) {
            Ok(cfg) => {
                print!("{}", cfg.describe());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => match control::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(match e {
                    control::RunError::Config(_) => 2,
                    _ => 1,
                })
            }
        },
        Cmd::Status { addr, json } => match http::request(&addr, "GET", "/status") {
            Ok((200, body)) => {
                if json {
                    println!("{body}");
                } else {
                    match serde_json::from_str(&body) {
                        Ok(v) => print!("{}", status::human(&v)),
                        Err(e) => {
                            eprintln!("error: bad status document from {addr}: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                ExitCode::SUCCESS
            }
            Ok((code, body)) => {
                eprintln!("error: {addr} answered {code}: {body}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Reload { addr } => match http::request(&addr, "POST", "/reload") {
            Ok((200, body)) => {
                print!("{body}");
                ExitCode::SUCCESS
            }
            Ok((_, body)) => {
                eprint!("error: reload refused: {body}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
