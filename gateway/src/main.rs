//! The `jono` binary: parse the command line, run, and turn any failure into one clear line and
//! a non-zero exit code — never a panic trace.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gateway::config::Cli::parse();
    match gateway::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jono: {error}");
            ExitCode::FAILURE
        }
    }
}
