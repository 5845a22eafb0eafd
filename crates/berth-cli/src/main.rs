//! `berth`: the docker command line, flag for flag, against berthd. It speaks only the
//! Docker Engine API (HTTP on the daemon's socket), never Berth's libraries: the
//! dependency direction is cli → API → engine.

// The create body's HostConfig is one `json!` literal of ~60 fields, deeper than the default.
#![recursion_limit = "256"]

mod api;
mod auth;
mod cli;
mod cli_netvol;
mod cmd;
mod error;
mod format;
mod http;
mod opts;
mod progress;
mod reference;
mod stdio;
mod template;
mod units;

use clap::error::ErrorKind;
use clap::Parser;

use crate::cli::{Cli, Cmd, ContainerCmd};
use crate::error::Error;

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match cli::quick_parse(&argv) {
        Some(c) => Ok(c),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            // `berth network --help`: docker's usage of the group (on stdout).
            if let Some(g) = cli_netvol::group_help(&argv).filter(|_| e.kind() == ErrorKind::DisplayHelp) {
                return match cmd::group_usage(g, true, &[]) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
            }
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    0
                }
                // Usage errors exit 125, as docker's do.
                _ => {
                    let _ = e.print();
                    125
                }
            };
        }
    };
    if cli.globals.version {
        println!("Berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(command) = cli.cmd else {
        eprintln!("berth: a command is needed; see 'berth --help'");
        return 125;
    };
    // run reports every failure of its own as 125 (the container's codes come as
    // Error::Exit); other commands exit 1 (create too), as docker's do.
    let (strict, name) = match &command {
        Cmd::Run(_) | Cmd::Container(ContainerCmd::Run(_)) => (true, "run"),
        Cmd::Create(_) | Cmd::Container(ContainerCmd::Create(_)) => (false, "create"),
        _ => (false, ""),
    };
    let targets = match api::targets(cli.globals.host.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("berth: {e}");
            return 125;
        }
    };
    let ctx = cmd::Ctx {
        api: api::Api::new(targets, cli.globals.debug),
        config_dir: cli.globals.config.map(std::path::PathBuf::from),
    };
    match cmd::dispatch(&ctx, command) {
        Ok(()) => 0,
        Err(Error::Exit(c)) => c,
        Err(Error::Usage(m)) => {
            eprintln!("berth: {m}");
            if !name.is_empty() {
                eprintln!("\nRun 'berth {name} --help' for more information");
            }
            125
        }
        Err(e) if strict => {
            eprintln!("berth: {e}\n\nRun 'berth {name} --help' for more information");
            125
        }
        Err(e) if !name.is_empty() => {
            eprintln!("berth: {e}");
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
