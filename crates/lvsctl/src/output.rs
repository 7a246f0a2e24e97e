//! Where output goes: plans, tables and manifests on stdout, progress and logs on stderr, and
//! colour only on a terminal without `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::cli::{ColorChoice, LogFormat};

/// Decides whether stdout gets ANSI colours.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color_unset() && std::io::stdout().is_terminal(),
    }
}

/// NO_COLOR set to anything but the empty string turns colour off.
fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes `text` to stdout; a closed pipe (`lvsctl plan | head`) is not an error.
pub fn stdout(text: &str) {
    let _ = try_stdout(text);
}

/// Writes `text` to stdout, saying whether anyone still reads it: loops that redraw stop when
/// the reader is gone (`lvsctl status --watch | head`) instead of writing into a closed pipe.
pub fn try_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Sets up tracing on stderr: `-v`/`-q` pick the level, `RUST_LOG` overrides it.
pub fn init_logging(verbose: u8, quiet: u8, format: LogFormat, color: ColorChoice) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Human => {
            // NO_COLOR covers every output, logs included (https://no-color.org).
            let ansi = match color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => std::io::stderr().is_terminal() && no_color_unset(),
            };
            let _ = builder.with_ansi(ansi).without_time().try_init();
        }
        LogFormat::Json => {
            let _ = builder.json().try_init();
        }
    }
}
