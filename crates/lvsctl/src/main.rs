//! The lvsctl binary: command line, reporting, and the daemon. The only crate that uses tokio,
//! clap and the file watcher; everything else is a library it drives.

mod backend;
mod cli;
mod commands;
mod daemon;
mod files;
mod import;
mod kernel;
mod lock;
mod output;
mod snapshot;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::commands::{ApplyOpts, Reported, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own usage errors exit 2, which `plan --detailed-exitcode` means "changes":
            // a typo in a pipeline must read as an error (1). Help and version exit 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            });
        }
    };
    output::init_logging(cli.verbose, cli.quiet, cli.log_format, cli.color);
    let color = output::use_color(cli.color);
    tracing::trace!("arguments read");
    let result = dispatch(cli.command, color);
    tracing::trace!("done");
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // The single reporting point: `{:#}` prints the whole context chain.
            match e.downcast_ref::<Reported>() {
                Some(r) => {
                    eprintln!("error: {}", r.message);
                    ExitCode::from(r.code)
                }
                None => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(exit::ERROR)
                }
            }
        }
    }
}

fn dispatch(command: Command, color: bool) -> anyhow::Result<u8> {
    match command {
        Command::Validate { manifests } => commands::validate(&manifests),
        Command::Plan {
            manifests,
            state,
            output,
            detailed_exitcode,
            daemon,
        } => commands::plan(
            &manifests,
            state.as_deref(),
            output,
            detailed_exitcode,
            &daemon,
            color,
        ),
        Command::Apply {
            manifests,
            dry_run,
            allow_destroy,
            max_changes,
            lock_timeout,
            daemon,
        } => commands::apply(
            &manifests,
            &ApplyOpts {
                dry_run,
                allow_destroy,
                max_changes,
                lock_timeout,
                daemon,
            },
            color,
        ),
        Command::Export { output, state, out } => commands::export(output, state, &out),
        Command::Import { from, file, out } => commands::import(from, &file, &out),
        Command::Status {
            watch,
            interval,
            daemon_status,
            state,
        } => commands::status(watch, interval, &daemon_status, state.as_deref(), color),
        Command::Run(args) => daemon::run(args).map(|()| exit::OK),
        Command::Realserver { manifests, dry_run } => commands::realserver(&manifests, dry_run),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "lvsctl", &mut buf);
            // Through the pipe-safe writer: `lvsctl completions bash | head` must not panic.
            output::stdout(&String::from_utf8_lossy(&buf));
            Ok(exit::OK)
        }
        Command::Man { out } => {
            std::fs::create_dir_all(&out)?;
            let cmd = Cli::command();
            clap_mangen::generate_to(cmd, &out)?;
            eprintln!("wrote man pages to {}", out.display());
            Ok(exit::OK)
        }
    }
}
