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
mod views;
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
        /// Log level or env_logger filter (error, warn, info, debug, trace, or e.g.
        /// `podfwd=debug,bpf=info`); overrides PODFWD_LOG. Default: info.
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Show what a running podfwd is doing.
    Status {
        /// Address of its metrics listener.
        #[arg(long, default_value = "127.0.0.1:9475")]
        addr: String,
        /// Print JSON instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Sample twice this many seconds apart and show rates (pps, bit/s). Default 1
        /// for the human summary, 0 (one sample, no rates) with --json.
        #[arg(long, value_name = "SECONDS")]
        interval: Option<f64>,
    },
    /// Ask a running podfwd to re-read its config (the same as SIGHUP, but says the result).
    Reload {
        /// Address of its metrics listener.
        #[arg(long, default_value = "127.0.0.1:9475")]
        addr: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().filter_or("PODFWD_LOG", "info"));
    if let Cmd::Run {
        log_level: Some(level),
        ..
    } = &cli.cmd
    {
        logger.parse_filters(level);
    }
    logger.format_timestamp_millis().init();
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
        Cmd::Run { config, .. } => match control::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(match e {
                    control::RunError::Config(_) => 2,
                    _ => 1,
                })
            }
        },
        Cmd::Status {
            addr,
            json,
            interval,
        } => status_cmd(
            &addr,
            json,
            interval.unwrap_or(if json { 0.0 } else { 1.0 }),
        ),
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

/// `podfwd status`: one /status sample, or two `interval` seconds apart with rates.
fn status_cmd(addr: &str, json: bool, interval: f64) -> ExitCode {
    let fetch = || -> Result<serde_json::Value, String> {
        match http::request(addr, "GET", "/status") {
            Ok((200, body)) => serde_json::from_str(&body)
                .map_err(|e| format!("bad status document from {addr}: {e}")),
            Ok((code, body)) => Err(format!("{addr} answered {code}: {body}")),
            Err(e) => Err(e),
        }
    };
    let result = fetch().and_then(|first| {
        if !(interval > 0.0 && interval.is_finite()) {
            return Ok(first);
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(interval.min(3600.0)));
        let mut second = fetch()?;
        if let Some(r) = status::rates(&first, &second) {
            second["rates"] = r;
        }
        Ok(second)
    });
    match result {
        Ok(doc) => {
            if json {
                println!("{doc}");
            } else {
                print!("{}", status::human(&doc));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
