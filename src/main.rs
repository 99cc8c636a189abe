use std::io::Write;

use clap::Parser;

use gumcp_actors::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // eprintln! would panic on a closed stderr; the exit status still tells.
            let _ = writeln!(std::io::stderr(), "gumcp-actors: {err}");
            std::process::ExitCode::from(err.exit_code())
        }
    }
}
