//! The `jono` binary: parse the command line, run, and turn any failure into one clear line and
//! a non-zero exit code — never a panic trace.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc's thread-local free lists: the engine allocates per event, per row and per
/// request on every thread, and glibc's malloc spent 13% of a profile under 32 writers
/// (BENCHMARKS.md, "Fresh commits opened once").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
