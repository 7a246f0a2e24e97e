//! `lvsctl run`: the daemon that keeps the director converged and healthy.
//!
//! [`reconcile::Daemon`] is the loop (testable with a fake kernel and paused time); this module
//! only wires it to the real world: the kernel backend, the file watcher, signals, the metrics
//! endpoint and the status file.

pub mod desired;
mod metrics;
mod notify;
mod reconcile;
mod status;
mod sysctl;
mod watch;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::cli::RunArgs;
use reconcile::{Config, Daemon, Inputs};

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    // One thread runs the loop, every health check and the metrics endpoint; kernel calls go to
    // the blocking pool. Measured cheaper than a multi-threaded runtime for thousands of checks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

/// Each running health check holds a socket (or a child's pipes), so thousands of checks need
/// more descriptors than the usual soft limit of 1,024. Raise the soft limit to the hard one,
/// as the Go runtime does for every program: systemd's default hard limit is 524,288. Checks
/// that still find no descriptor are counted as not run and change nothing.
#[allow(unsafe_code)]
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own; setrlimit only reads it.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if got != 0 || lim.rlim_cur >= lim.rlim_max {
        return;
    }
    let from = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::debug!(from, to = lim.rlim_cur, "raised the open-files limit");
    } else {
        warn!(
            limit = from,
            error = %std::io::Error::last_os_error(),
            "cannot raise the open-files limit; thousands of health checks may run out of sockets (set LimitNOFILE)"
        );
    }
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    // Signals first, so a SIGTERM during the first pass is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;

    // The VIP interfaces come from the manifest as it is at start-up (none if unreadable now).
    let manifest = crate::files::read_sources(
        &args.manifests.files,
        args.manifests.allow_insecure_manifest,
    )
    .ok()
    .and_then(|s| lvsctl_model::manifest::load(&s).ok());
    let vips = manifest
        .as_ref()
        .map(crate::backend::VipScope::of)
        .unwrap_or_default();
    // Traffic counters are read only for the metrics endpoint; without it the passes need only
    // connection counts (draining), which the fast IPVS read always has exactly.
    let backend = if args.metrics.is_some() {
        crate::backend::open(vips)?
    } else {
        crate::backend::open_for_draining(vips)?
    };
    let fake = std::env::var_os("LVSCTL_FAKE_KERNEL").is_some();
    let mut config = Config::new(args.manifests.files.clone());
    config.allow_insecure_manifest = args.manifests.allow_insecure_manifest;
    config.resync_interval = args.resync_interval;
    config.drain = args.drain;
    config.allow_destroy = args.allow_destroy;
    config.status_file = Some(args.status_file.clone());
    config.lock_file = Some(crate::lock::lock_path());
    // A fake kernel has no sysctls: never write the host's.
    config.sysctl_dir = (!fake).then(|| sysctl::PROC_DIR.into());

    let mut daemon = Daemon::new(config, backend, Arc::new(lvsctl_health::NetProber));

    let mut inputs = Inputs::default();
    match watch::ManifestWatcher::new(&args.manifests.files) {
        Ok((watcher, events)) => {
            daemon.set_watcher(Some(watcher));
            inputs.manifest_events = Some(events);
        }
        Err(e) => warn!(
            error = %e,
            "cannot watch the manifests; changes are picked up by SIGHUP and every --resync-interval"
        ),
    }

    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    inputs.reload = Some(reload_rx);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if reload_tx.send(()).is_err() {
                return;
            }
        }
    });

    if let Some(addr) = args.metrics {
        if !addr.ip().is_loopback() {
            warn!(%addr, "metrics endpoint is not on loopback: anyone who can reach it can read the director's metrics");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        info!(url = %format!("http://{addr}/metrics"), "serving metrics");
        tokio::spawn(metrics::serve(listener, daemon.metrics()));
    }

    info!(
        manifests = ?args.manifests.files,
        resync = ?args.resync_interval,
        drain = args.drain,
        "lvsctl daemon starting"
    );
    // Signals are handled from here on (a SIGHUP, `systemctl reload`, now reloads instead of
    // killing): a `Type=notify` unit counts as started only now.
    notify::send("READY=1");
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: finishing the pass in flight, then exiting"),
            _ = int.recv() => info!("SIGINT: finishing the pass in flight, then exiting"),
        }
        notify::send("STOPPING=1");
    };
    daemon.run_until(inputs, shutdown).await
}
