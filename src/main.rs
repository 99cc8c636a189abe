use clap::Parser;

use gumcp_actors::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gumcp-actors: {err}");
            std::process::ExitCode::from(2)
        }
    }
}
