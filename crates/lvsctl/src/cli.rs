//! Command-line definitions. Shared by the binary, the completions and the man page, so the
//! three never disagree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const AFTER_HELP: &str = "\
Exit codes:
  0  success (a plain plan exits 0 with or without changes)
  1  error: invalid manifest or usage, kernel or iptables error, failed step,
     director lock not granted in time
  2  plan --detailed-exitcode: the plan has changes or director.timeouts differ
  3  apply refused by a safety guard (nothing was changed)

Examples:
  lvsctl validate -f manifests/
  lvsctl plan -f examples/pnmpp.yaml
  lvsctl apply -f examples/pnmpp.yaml
  lvsctl run -f /etc/lvsctl/ --metrics 127.0.0.1:9469";

/// Declarative reconciler for Linux Virtual Server (IPVS) directors.
///
/// lvsctl keeps a director's IPVS services and real servers, the iptables mangle MARK rules
/// that feed firewall-mark services, and the service VIPs exactly as a YAML manifest says.
#[derive(Debug, Parser)]
#[command(name = "lvsctl", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output on stderr (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Colour plans and status: auto colours on a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// `ipvsadm -S -n` output (also what `ipvsadm-save -n` writes).
    Ipvsadm,
}

/// Manifest inputs shared by every command that reads manifests.
#[derive(Debug, Clone, Args)]
pub struct ManifestArgs {
    /// Manifest files or directories (every *.yaml / *.yml inside, in name order); several
    /// are merged into one desired state.
    #[arg(short = 'f', long = "file", required = true, num_args = 1.., value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Read manifests even when other users can write them (lvsctl refuses by default: a
    /// manifest decides what the director does).
    #[arg(long)]
    pub allow_insecure_manifest: bool,
}

/// Writing a manifest into a directory of files instead of stdout.
#[derive(Debug, Clone, Args)]
pub struct OutDirArgs {
    /// Write the manifest as files lvsctl-0001.yaml, lvsctl-0002.yaml, ... in DIR (created if
    /// missing; refused if it already holds manifests), to be read back with -f DIR.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: at most N services per file (a file may hold at most 4 MiB).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        requires = "out_dir",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub services_per_file: u32,
}

/// How `plan` and `apply` treat a running daemon's health verdicts.
#[derive(Debug, Clone, Args)]
pub struct DaemonHealthArgs {
    /// The daemon's status file. While that daemon runs, real servers it found down stay out
    /// of the plan (or at weight 0, as their on_failure says), as the daemon keeps them.
    #[arg(
        long,
        value_name = "PATH",
        default_value = STATUS_FILE,
        env = "LVSCTL_STATUS_FILE"
    )]
    pub daemon_status: PathBuf,
    /// Plan the manifest as written: real servers the daemon found down are added back (the
    /// daemon removes them again at its next pass).
    #[arg(long)]
    pub ignore_daemon_health: bool,
}

/// Where the daemon writes its status and where plan, apply and status read it.
pub const STATUS_FILE: &str = "/run/lvsctl/status.json";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests without touching the kernel (works as any user, on any machine).
    #[command(after_help = "Example:\n  lvsctl validate -f manifests/ -f examples/pnmpp.yaml")]
    Validate {
        #[command(flatten)]
        manifests: ManifestArgs,
    },
    /// Show what apply would change, without changing anything.
    #[command(after_help = "Examples:\n  lvsctl plan -f examples/pnmpp.yaml\n  \
        lvsctl plan -f manifests/ --state director-snapshot.json --detailed-exitcode\n  \
        lvsctl plan -f manifests/ --output json")]
    Plan {
        #[command(flatten)]
        manifests: ManifestArgs,
        /// Plan against a snapshot saved by `lvsctl export --state` instead of the kernel.
        #[arg(long, value_name = "SNAPSHOT")]
        state: Option<PathBuf>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
        output: PlanFormat,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        #[command(flatten)]
        daemon: DaemonHealthArgs,
    },
    /// Plan and apply in one pass, then check the kernel matches.
    #[command(after_help = "Examples:\n  lvsctl apply -f examples/pnmpp.yaml\n  \
        lvsctl apply -f manifests/ --dry-run\n  \
        lvsctl apply -f manifests/ --max-changes 50")]
    Apply {
        #[command(flatten)]
        manifests: ManifestArgs,
        /// Print the plan and stop.
        #[arg(long)]
        dry_run: bool,
        /// Allow a plan that deletes every service of a non-empty table.
        #[arg(long)]
        allow_destroy: bool,
        /// Refuse plans that change more than N objects.
        #[arg(long, value_name = "N")]
        max_changes: Option<usize>,
        /// How long to wait for another lvsctl holding the director lock.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        lock_timeout: std::time::Duration,
        #[command(flatten)]
        daemon: DaemonHealthArgs,
    },
    /// Print the director's current state as a manifest (or a snapshot for `plan --state`).
    #[command(after_help = "Examples:\n  lvsctl export > director.yaml\n  \
        lvsctl export --out-dir /etc/lvsctl/director/ && lvsctl plan -f /etc/lvsctl/director/\n  \
        lvsctl export --state > snapshot.json")]
    Export {
        /// Output format of the manifest.
        #[arg(short, long, value_enum, default_value_t = ExportFormat::Yaml)]
        output: ExportFormat,
        /// Write a full state snapshot for `lvsctl plan --state` (always JSON, so --output
        /// does not apply).
        #[arg(long, conflicts_with_all = ["out_dir", "output"])]
        state: bool,
        #[command(flatten)]
        out: OutDirArgs,
    },
    /// Turn existing configuration into a manifest.
    #[command(
        after_help = "Example:\n  ipvsadm -S -n > rules.txt && lvsctl import --from ipvsadm rules.txt"
    )]
    Import {
        /// Format of the input.
        #[arg(long, value_enum)]
        from: ImportFrom,
        /// Input file (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        out: OutDirArgs,
    },
    /// Show services and real servers with connection counts, rates and health.
    #[command(after_help = "Examples:\n  lvsctl status\n  lvsctl status --watch")]
    Status {
        /// Redraw every interval.
        #[arg(long)]
        watch: bool,
        /// Redraw interval for --watch (at least 10ms).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Read health from the daemon's state file.
        #[arg(long, value_name = "PATH", default_value = STATUS_FILE, env = "LVSCTL_STATUS_FILE")]
        daemon_status: PathBuf,
        /// Show a snapshot saved by `lvsctl export --state` instead of the kernel.
        #[arg(long, value_name = "SNAPSHOT")]
        state: Option<PathBuf>,
    },
    /// Run the daemon: watch manifests, health-check real servers, keep the director converged.
    #[command(after_help = "Example:\n  lvsctl run -f /etc/lvsctl/ --metrics 127.0.0.1:9469")]
    Run(RunArgs),
    /// Prepare a DR real server: VIPs on lo, arp_ignore=1 and arp_announce=2.
    #[command(after_help = "Example:\n  lvsctl realserver -f examples/pnmpp.yaml --dry-run")]
    Realserver {
        #[command(flatten)]
        manifests: ManifestArgs,
        /// Print what would change and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print shell completions.
    #[command(after_help = "Example:\n  lvsctl completions bash > /etc/bash_completion.d/lvsctl")]
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
    /// Write man pages (lvsctl.1 and one per command) into a directory.
    #[command(after_help = "Example:\n  lvsctl man --out /usr/local/share/man/man1")]
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Full reconcile at least this often, repairing drift made behind lvsctl's back (at
    /// least 10ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval)]
    pub resync_interval: std::time::Duration,
    /// Serve Prometheus metrics at /metrics on this address. A bare PORT binds loopback
    /// (127.0.0.1:PORT); give ADDR:PORT to listen elsewhere (logged as a warning).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_metrics_addr)]
    pub metrics: Option<SocketAddr>,
    /// Where to write health and reconcile status for `lvsctl status` (and for plan and
    /// apply, which keep out what the daemon found down).
    #[arg(long, value_name = "PATH", default_value = STATUS_FILE, env = "LVSCTL_STATUS_FILE")]
    pub status_file: PathBuf,
    /// Drain real servers removed from the manifest (weight 0, delete when idle or after the
    /// service's drain_timeout) instead of deleting them at once.
    #[arg(long)]
    pub drain: bool,
    /// Allow a pass that deletes every service of a non-empty table.
    #[arg(long)]
    pub allow_destroy: bool,
}

/// Parses `--metrics`: `9469` means 127.0.0.1:9469 (loopback unless asked otherwise),
/// `ADDR:PORT` and `[V6]:PORT` are taken as given.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        if port == 0 {
            return Err("port 0 is not a port to scrape; give e.g. 9469".into());
        }
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("invalid metrics address {s:?} (expected PORT, e.g. 9469, or ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469)")
    })
}

/// Parses a duration as manifests write them (`500ms`, `3s`, `2m`, `1h`, `1m30s`), or a bare
/// number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| format!("invalid duration {s:?} (too large)"));
    }
    lvsctl_model::manifest::parse_duration(s)
}

/// [`parse_duration`] for intervals of a loop: zero would make it spin.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_millis(10) {
        return Err(format!(
            "{s:?} is too short for an interval (at least 10ms)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bare_metrics_port_binds_loopback() {
        assert_eq!(
            parse_metrics_addr("9469").unwrap(),
            "127.0.0.1:9469".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_metrics_addr("[::1]:9469").unwrap(),
            "[::1]:9469".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9469").unwrap(),
            "0.0.0.0:9469".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_metrics_addr("0").unwrap_err().contains("port 0"));
        let err = parse_metrics_addr("localhost:9469").unwrap_err();
        assert!(err.contains("expected PORT"), "{err}");
        assert!(parse_metrics_addr("70000").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            parse_duration("500ms").unwrap(),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("3").unwrap(),
            std::time::Duration::from_secs(3)
        );
        assert_eq!(
            parse_duration("2m").unwrap(),
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("1m30s").unwrap(),
            std::time::Duration::from_secs(90)
        );
        assert!(parse_duration("3d").unwrap_err().contains("1m30s"));
        assert!(parse_duration("").is_err());
        assert!(parse_interval("0s").unwrap_err().contains("at least 10ms"));
        assert!(parse_interval("0").is_err());
        assert_eq!(
            parse_interval("250ms").unwrap(),
            std::time::Duration::from_millis(250)
        );
    }
}
