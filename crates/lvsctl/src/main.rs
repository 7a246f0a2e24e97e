//! The lvsctl binary: command line, reporting, and the daemon. The only crate that uses tokio,
//! clap and the file watcher; everything else is a library it drives.

mod cli;
mod daemon;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => match daemon::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("error: not implemented yet");
            ExitCode::from(1)
        }
    }
}
