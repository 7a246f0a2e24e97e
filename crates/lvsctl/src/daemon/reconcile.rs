//! The daemon's loop: level-triggered passes (read manifests -> observe -> desired = manifest
//! minus health -> plan -> guard -> apply), started by a manifest change (debounced), SIGHUP, a
//! periodic resync, a health transition, or a retry after a failure.
//!
//! Every pass recomputes everything from the manifest in force and what the kernel reports, so
//! a missed event, a failed step or a change behind lvsctl's back is fixed by the next pass.
//! Shutdown is only looked at between passes: the pass in flight always finishes.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lvsctl_health::{HealthState, Monitor, Prober, Status, Target, Transition};
use lvsctl_model::manifest::{self, Manifest, OnFailure};
use lvsctl_model::{DestKey, Family, Observed, ServiceKey, State};
use lvsctl_plan::{Backend, GuardError, Op, PlanOptions};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::desired;
use super::metrics::{Metrics, PassMetrics};
use super::status::{self, DrainEntry, HealthEntry, ManifestStatus, ReconcileStatus, StatusFile};
use super::sysctl::Sysctls;
use super::watch::ManifestWatcher;

/// How the daemon behaves; [`Config::new`] gives the defaults `lvsctl run` uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Manifest files and directories, as given with `-f`.
    pub manifests: Vec<PathBuf>,
    pub allow_insecure_manifest: bool,
    /// A full pass (manifest re-read included) at least this often.
    pub resync_interval: Duration,
    /// Drain real servers removed from the manifest instead of deleting them at once.
    pub drain: bool,
    /// Allow a pass that deletes every service of a non-empty table.
    pub allow_destroy: bool,
    pub status_file: Option<PathBuf>,
    /// Where the IPVS sysctls are (`/proc/sys/net/ipv4/vs`); `None` leaves them alone.
    pub sysctl_dir: Option<PathBuf>,
    /// Take the director lock at this path around observe + apply, like `lvsctl apply`.
    pub lock_file: Option<PathBuf>,
    /// How long a pass waits for a held director lock before it counts as failed. The wait
    /// is a poll between which the loop sees SIGTERM, never a blocking sleep.
    pub lock_patience: Duration,
    /// Quiet time after the last file event before re-reading.
    pub debounce: Duration,
    /// Longest a burst of events can postpone the re-read (a file still being written
    /// postpones it longer: see `settle`).
    pub debounce_cap: Duration,
    /// A manifest modified less than this long ago may be half-written: wait before reading.
    pub settle: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Spread of the first health checks (see [`Monitor::with_spread`]).
    pub health_spread: Duration,
    /// How often the status file is rewritten between passes while health checks run, so
    /// `lvsctl status` shows checks that failed without (yet) changing anything.
    pub status_refresh: Duration,
}

impl Config {
    pub fn new(manifests: Vec<PathBuf>) -> Self {
        Config {
            manifests,
            allow_insecure_manifest: false,
            resync_interval: Duration::from_secs(30),
            drain: false,
            allow_destroy: false,
            status_file: None,
            sysctl_dir: None,
            lock_file: None,
            lock_patience: Duration::from_secs(10),
            debounce: Duration::from_millis(200),
            debounce_cap: Duration::from_secs(2),
            settle: Duration::from_millis(200),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            health_spread: Duration::from_secs(1),
            status_refresh: Duration::from_secs(2),
        }
    }
}

/// Event sources besides the clock. A `None` source never fires.
#[derive(Default)]
pub struct Inputs {
    /// "A manifest directory changed" (from [`ManifestWatcher`]).
    pub manifest_events: Option<UnboundedReceiver<()>>,
    /// "Re-read the manifests now" (SIGHUP).
    pub reload: Option<UnboundedReceiver<()>>,
}

/// What started a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Startup,
    Manifest,
    Reload,
    Resync,
    Health,
    Retry,
    /// A drain's time is up, or it is time to look whether drained servers went idle.
    Drain,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Manifest => "manifest",
            Trigger::Reload => "reload",
            Trigger::Resync => "resync",
            Trigger::Health => "health",
            Trigger::Retry => "retry",
            Trigger::Drain => "drain",
        }
    }

    /// Passes that re-read the manifests.
    fn reads_manifest(self) -> bool {
        !matches!(self, Trigger::Health | Trigger::Retry | Trigger::Drain)
    }
}

pub type SharedBackend = Arc<Mutex<Box<dyn Backend + Send>>>;

/// The result of one pass, as the loop needs it.
#[derive(Debug, Default)]
struct Outcome {
    /// Something failed: try again after a backoff.
    retry: bool,
    /// The manifest changed too recently to trust: read it again after this long.
    settle: Option<Duration>,
    /// Another lvsctl holds the director lock: try the pass again after [`LOCK_POLL`].
    lock_busy: bool,
}

/// How often a pass looks again at a held director lock.
const LOCK_POLL: Duration = Duration::from_millis(250);

/// While real servers drain, how often a pass observes whether they went idle (deleted then,
/// not at the next resync). Each such pass reads the IPVS table, so not much more often.
pub(super) const DRAIN_POLL: Duration = Duration::from_secs(2);

/// Result of one operation in a pass.
enum OpResult {
    Applied,
    Failed(String),
    /// Not attempted (or, for a MARK chain write, only its additions): an earlier operation
    /// of the same object group failed, or, for a deletion, any operation of the pass did.
    Skipped,
}

enum Read {
    Loaded(Box<Manifest>),
    Failed(String),
    Unsettled(Duration),
}

/// The daemon. Build it with [`Daemon::new`], then [`Daemon::run_until`].
pub struct Daemon {
    config: Config,
    backend: SharedBackend,
    monitor: Monitor,
    transitions: UnboundedReceiver<Transition>,
    watcher: Option<ManifestWatcher>,
    metrics: Arc<Metrics>,
    sysctls: Option<Sysctls>,
    started_at: SystemTime,

    manifest: Option<Arc<Manifest>>,
    manifest_loaded_at: Option<SystemTime>,
    manifest_error: Option<String>,
    /// The manifests must be read before the next pass plans.
    manifest_dirty: bool,
    unsettled_since: Option<Instant>,
    /// The "keep changing" warning was given for this wait (once per wait).
    unsettled_warned: bool,
    /// When passes started finding the director lock held.
    lock_wait_since: Option<Instant>,
    /// The loop has ended: the last status file says so.
    stopped: bool,
    /// The VIP interface the backend reads VIPs on and the real-server side's interface it
    /// leaves alone, once told (`director.vip_interface` and `realserver.interface` of the
    /// manifest in force; they may change, or come only after an invalid start-up manifest).
    vip_interface: Option<(Option<String>, Option<String>)>,
    /// What the status file last written between passes showed of health ([`health_digest`]).
    status_digest: Option<HealthDigest>,

    /// When each real server being drained started draining.
    drains: BTreeMap<(ServiceKey, DestKey), Instant>,
    /// The desired state of the last fully successful pass; a later pass with the same desired
    /// state that still has work to do is repairing drift.
    last_converged: Option<State>,
    failures_in_row: u32,
    last_reconcile: Option<ReconcileStatus>,
}

impl Daemon {
    /// A daemon driving `backend`, checking real servers with `prober`. Must be created inside a
    /// tokio runtime.
    pub fn new(config: Config, backend: Box<dyn Backend + Send>, prober: Arc<dyn Prober>) -> Self {
        let (monitor, transitions) = Monitor::new(prober);
        let monitor = monitor.with_spread(config.health_spread);
        let metrics = Arc::new(Metrics::default());
        metrics.set_health(monitor.reader());
        Daemon {
            sysctls: config.sysctl_dir.clone().map(Sysctls::new),
            config,
            backend: Arc::new(Mutex::new(backend)),
            monitor,
            transitions,
            watcher: None,
            metrics,
            started_at: SystemTime::now(),
            manifest: None,
            manifest_loaded_at: None,
            manifest_error: None,
            manifest_dirty: true,
            unsettled_since: None,
            unsettled_warned: false,
            lock_wait_since: None,
            stopped: false,
            vip_interface: None,
            status_digest: None,
            drains: BTreeMap::new(),
            last_converged: None,
            failures_in_row: 0,
            last_reconcile: None,
        }
    }

    /// Lets the daemon re-arm the watcher's directory watches after each manifest read.
    pub fn set_watcher(&mut self, watcher: Option<ManifestWatcher>) {
        self.watcher = watcher;
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs passes until `shutdown` completes; the pass in flight when it does is finished
    /// first. The kernel is left as it is.
    pub async fn run_until(
        mut self,
        mut inputs: Inputs,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let resync = self.config.resync_interval.max(Duration::from_millis(100));
        let mut next_resync = Instant::now() + resync;
        // (first event of the burst, when to read)
        let mut debounce: Option<(Instant, Instant)> = None;
        let mut retry_at: Option<Instant> = None;
        let mut drain_at: Option<Instant> = None;
        let mut pending = Some(Trigger::Startup);
        // The trigger of a pass that found the director lock held, to run again under its own
        // name; `resumed` says the pass about to run is that one (its manifests are read).
        let mut lock_resume: Option<Trigger> = None;
        let mut resumed = false;
        let refresh = self.config.status_refresh.max(Duration::from_millis(100));
        let mut next_status = Instant::now() + refresh;
        loop {
            if let Some(trigger) = pending.take() {
                // Taken whatever the trigger: a resumed health or retry pass must not leave it
                // set for the next reload, which would then skip reading the manifests.
                let was_resumed = std::mem::take(&mut resumed);
                if trigger.reads_manifest() && !was_resumed {
                    self.manifest_dirty = true;
                }
                let outcome = self.pass(trigger).await;
                let now = Instant::now();
                retry_at = outcome.retry.then(|| now + self.backoff());
                lock_resume = outcome.lock_busy.then_some(trigger);
                if outcome.lock_busy {
                    // Not a failure: the same pass again soon, without re-reading manifests.
                    retry_at = Some(now + LOCK_POLL);
                }
                if let Some(wait) = outcome.settle {
                    let first = debounce.map_or(now, |(first, _)| first);
                    debounce = Some((first, now + wait));
                }
                // While a retry is pending, drains wait for it: a drain pass would also retry
                // what failed, every DRAIN_POLL, and so undo the backoff.
                drain_at = self
                    .next_drain_check(now)
                    .map(|at| retry_at.map_or(at, |r| at.max(r)));
            }
            let deadline = [
                debounce.map(|(_, at)| at),
                retry_at,
                drain_at,
                Some(next_resync),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_resync);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                // A due deadline goes before new events: health transitions arriving faster
                // than passes end would otherwise hold off manifest changes and resyncs.
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if debounce.is_some_and(|(_, at)| at <= now) {
                        debounce = None;
                        pending = Some(Trigger::Manifest);
                    } else if retry_at.is_some_and(|at| at <= now) {
                        pending = Some(match lock_resume.take() {
                            Some(t) => {
                                resumed = true;
                                t
                            }
                            None => Trigger::Retry,
                        });
                    } else if next_resync <= now {
                        pending = Some(Trigger::Resync);
                    } else if drain_at.is_some_and(|at| at <= now) {
                        drain_at = None;
                        pending = Some(Trigger::Drain);
                    }
                    if next_resync <= now {
                        next_resync = now + resync;
                    }
                }
                Some(()) = recv(&mut inputs.reload) => {
                    info!("reloading manifests (SIGHUP)");
                    pending = Some(Trigger::Reload);
                    debounce = None;
                }
                Some(()) = recv(&mut inputs.manifest_events) => {
                    let now = Instant::now();
                    let first = debounce.map_or(now, |(first, _)| first);
                    let at = (now + self.config.debounce).min(first + self.config.debounce_cap);
                    debounce = Some((first, at));
                }
                Some(t) = self.transitions.recv() => {
                    log_transition(&t);
                    while let Ok(t) = self.transitions.try_recv() {
                        log_transition(&t);
                    }
                    pending = Some(Trigger::Health);
                }
                // Last: between passes only. Passes write the file themselves; in between it
                // is rewritten only when a check failed, was not run, or changed state or
                // confirmation, not for every passed check (1,000 servers pass 500 in 2 s).
                () = tokio::time::sleep_until(next_status) => {
                    if !self.monitor.is_empty() {
                        let digest = health_digest(&self.monitor.snapshot());
                        if self.status_digest != Some(digest) {
                            self.status_digest = Some(digest);
                            self.write_status();
                        }
                    }
                    next_status = Instant::now() + refresh;
                }
            }
        }
        info!("stopping; the kernel is left as it is");
        self.stopped = true;
        self.write_status();
        Ok(())
    }

    fn backoff(&self) -> Duration {
        let exp = self.failures_in_row.saturating_sub(1).min(16);
        (self.config.backoff_initial * 2u32.pow(exp)).min(self.config.backoff_max)
    }

    /// One pass. Never fails: problems are logged, reported and retried.
    async fn pass(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome::default();
        if self.manifest_dirty {
            outcome.settle = self.read_manifest();
        }
        let Some(manifest) = self.manifest.clone() else {
            // Nothing valid was ever read: the kernel is not touched at all.
            self.finish(
                trigger,
                started,
                "waiting",
                format!(
                    "no valid manifest yet; the kernel is left as it is ({})",
                    self.manifest_error.as_deref().unwrap_or("not read yet")
                ),
                Counts::default(),
                None,
            );
            return outcome;
        };

        let lock = match &self.config.lock_file {
            None => None,
            Some(path) => match crate::lock::DirectorLock::try_acquire_at(path) {
                Ok(Ok(lock)) => {
                    self.lock_wait_since = None;
                    Some(lock)
                }
                Ok(Err(holder)) => {
                    let since = *self.lock_wait_since.get_or_insert(started);
                    let waited = started - since;
                    if waited < self.config.lock_patience {
                        if waited.is_zero() {
                            let holder = holder.map(|h| format!(" by {h}")).unwrap_or_default();
                            info!(
                                "waiting for another lvsctl: the director lock {} is held{holder}",
                                path.display()
                            );
                        }
                        outcome.lock_busy = true;
                        return outcome;
                    }
                    self.lock_wait_since = None;
                    let message = crate::lock::held_too_long(
                        path,
                        holder.as_deref(),
                        waited,
                        "the daemon tries again with backoff",
                    );
                    return self.failed(trigger, started, message, outcome);
                }
                Err(e) => return self.failed(trigger, started, format!("{e:#}"), outcome),
            },
        };

        let want = (
            manifest.director.vip_interface.clone(),
            manifest.realserver.as_ref().map(|r| r.interface.clone()),
        );
        if self.vip_interface.as_ref() != Some(&want) {
            let backend = Arc::clone(&self.backend);
            let (interface, realserver) = want.clone();
            let told = tokio::task::spawn_blocking(move || {
                lock_backend(&backend)
                    .observe_vips_sparing(interface.as_deref(), realserver.as_deref())
            })
            .await;
            match told {
                Ok(Ok(_)) => self.vip_interface = Some(want),
                Ok(Err(e)) => {
                    return self.failed(trigger, started, format!("observe VIPs: {e}"), outcome);
                }
                Err(e) => {
                    return self.failed(trigger, started, format!("VIP task: {e}"), outcome);
                }
            }
        }

        let backend = Arc::clone(&self.backend);
        let observed =
            match tokio::task::spawn_blocking(move || lock_backend(&backend).observe()).await {
                Ok(Ok(o)) => managed_view(&manifest, o),
                Ok(Err(e)) => {
                    return self.failed(trigger, started, format!("observe: {e}"), outcome);
                }
                Err(e) => {
                    return self.failed(trigger, started, format!("observe task: {e}"), outcome);
                }
            };

        let mut targets = desired::health_targets(&manifest, &observed);
        // Only targets new to the monitor use a starting state.
        if !self.monitor.is_empty() && targets.iter().any(|(t, _, _)| !self.monitor.contains(t)) {
            let known = self.monitor.same_checks();
            desired::start_from_same_checks(&mut targets, &known);
        }
        self.monitor.reconcile(targets);
        // Transitions that came in while this pass started (a resync under way when a check
        // failed) are applied by it: log them now, so the log shows the cause before the
        // operations. The snapshot below includes them; no extra health pass is needed.
        while let Ok(t) = self.transitions.try_recv() {
            log_transition(&t);
        }
        let health = self.monitor.snapshot();
        let (desired_state, effect) = desired::desired_state(&manifest, &observed, |t| {
            health.get(t).map(|h| (h.status, h.confirmed))
        });

        let now = Instant::now();
        let expired = self.track_drains(&manifest, &observed, &desired_state, now);
        let mut drain_expired = expired.clone();
        // A failed server is deleted at once, never drained: its connections are dead anyway.
        drain_expired.extend(effect.removed.iter().copied());
        let plan = lvsctl_plan::plan_with(
            &desired_state,
            &observed,
            &PlanOptions {
                drain: self.config.drain,
                drain_expired,
            },
        );

        match lvsctl_plan::destroy_guard(&plan, &observed.state, None) {
            Ok(()) => {}
            Err(GuardError::DestroysAll { .. }) if self.config.allow_destroy => {
                warn!("deleting every service of the director (--allow-destroy)");
            }
            Err(e) => {
                error!(error = %e, "refusing this pass; the kernel is left as it is");
                drop(lock);
                self.finish(
                    trigger,
                    started,
                    "refused",
                    e.to_string(),
                    Counts::default(),
                    Some(&observed),
                );
                return outcome;
            }
        }

        let drift = if self.last_converged.as_ref() == Some(&desired_state) {
            plan.ops
                .iter()
                .filter(|op| !is_drain_progress(op, &self.drains))
                .count()
        } else {
            0
        };
        if drift > 0 {
            let repairs: Vec<String> = plan
                .ops
                .iter()
                .filter(|op| !is_drain_progress(op, &self.drains))
                .map(|op| format!("  {op}"))
                .collect();
            warn!(
                operations = drift,
                trigger = trigger.as_str(),
                "the kernel drifted from the manifest behind lvsctl's back; repairing:\n{}",
                repairs.join("\n")
            );
        }

        let mut counts = Counts {
            drift,
            ..Counts::default()
        };
        let mut errors = Vec::new();
        if !plan.is_empty()
            && let Some(Err(e)) = lock.as_ref().map(crate::lock::DirectorLock::still_held)
        {
            drop(lock);
            return self.failed(trigger, started, format!("{e:#}"), outcome);
        }
        if !plan.is_empty() {
            let backend = Arc::clone(&self.backend);
            let ops = plan.ops.clone();
            let results = match tokio::task::spawn_blocking(move || {
                apply_ops(&mut **lock_backend(&backend), &ops)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    return self.failed(trigger, started, format!("apply task: {e}"), outcome);
                }
            };
            for (op, result) in plan.ops.iter().zip(results) {
                match result {
                    OpResult::Applied => {
                        counts.applied += 1;
                        info!(op = %op, trigger = trigger.as_str(), "applied");
                        match op {
                            Op::DrainDest { service, key, .. } => {
                                self.drains.entry((*service, *key)).or_insert(now);
                            }
                            // Drained: no longer shown as draining, nor looked at again.
                            Op::DeleteDest { service, key, .. } => {
                                self.drains.remove(&(*service, *key));
                            }
                            _ => {}
                        }
                    }
                    OpResult::Failed(e) => {
                        counts.failed += 1;
                        error!(op = %op, error = %e, "operation failed; other services continue, this one is retried");
                        errors.push(e);
                    }
                    OpResult::Skipped => {
                        counts.skipped += 1;
                        debug!(op = %op, "held back: an earlier operation of its service failed, or (a deletion) any operation of this pass did");
                    }
                }
            }
        }

        if let (Some(s), Some(m)) = (self.sysctls.as_mut(), self.manifest.as_ref()) {
            s.apply(&m.director.sysctl);
            // Director-wide IPVS timeouts: only on the real kernel (sysctls set = real kernel).
            let t = &m.director.timeouts;
            let secs =
                |d: Option<Duration>| d.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
            let want = lvsctl_kernel::Timeouts {
                tcp: secs(t.tcp),
                tcp_fin: secs(t.tcpfin),
                udp: secs(t.udp),
            };
            if want != lvsctl_kernel::Timeouts::default() {
                match lvsctl_kernel::sync_timeouts(&want, false) {
                    Ok(changes) => changes.iter().for_each(|c| info!("{c}")),
                    Err(e) => warn!("director timeouts: {e}"),
                }
            }
        }

        let (result, summary) = if counts.failed == 0 {
            self.failures_in_row = 0;
            self.last_converged = Some(desired_state);
            let summary = if counts.applied == 0 {
                "in sync".to_owned()
            } else if drift > 0 {
                format!(
                    "{} operation(s) applied, {drift} repairing drift",
                    counts.applied
                )
            } else {
                format!("{} operation(s) applied", counts.applied)
            };
            ("ok", summary)
        } else {
            self.failures_in_row += 1;
            outcome.retry = true;
            (
                "partial",
                format!(
                    "{} operation(s) applied, {} failed, {} skipped; retrying in {:?}",
                    counts.applied,
                    counts.failed,
                    counts.skipped,
                    self.backoff()
                ),
            )
        };
        counts.errors = errors;
        self.finish(trigger, started, result, summary, counts, Some(&observed));
        // Only now: `lvsctl apply` takes the lock and then reads the health verdicts in the
        // status file, which must already say what this pass did to the kernel.
        drop(lock);
        outcome
    }

    fn failed(
        &mut self,
        trigger: Trigger,
        started: Instant,
        message: String,
        mut outcome: Outcome,
    ) -> Outcome {
        self.failures_in_row += 1;
        outcome.retry = true;
        error!(error = %message, retry_in = ?self.backoff(), "reconcile pass failed; retrying");
        let counts = Counts {
            errors: vec![message.clone()],
            ..Counts::default()
        };
        self.finish(trigger, started, "failed", message, counts, None);
        outcome
    }

    /// Reads the manifests if they are settled. Keeps the last good manifest on any failure.
    /// Returns how long to wait when the files changed too recently to be trusted.
    fn read_manifest(&mut self) -> Option<Duration> {
        let now = Instant::now();
        match read_manifests(&self.config) {
            Read::Unsettled(wait) => {
                let since = *self.unsettled_since.get_or_insert(now);
                // Said once per wait, when it outlasts the debounce cap.
                let waited = now - since;
                if waited >= self.config.debounce_cap && !self.unsettled_warned {
                    self.unsettled_warned = true;
                    warn!(
                        waited_s = waited.as_secs_f64(),
                        "the manifest files keep changing; waiting until they have stood still \
                         for {:?} before reading them (the last good manifest stays in force)",
                        self.config.settle
                    );
                } else {
                    debug!(
                        ?wait,
                        "manifest changed moments ago; waiting for it to settle"
                    );
                }
                return Some(wait);
            }
            Read::Loaded(m) => {
                self.manifest_dirty = false;
                self.unsettled_since = None;
                self.unsettled_warned = false;
                self.metrics.record_manifest(true);
                if self.manifest_error.take().is_some() {
                    info!("manifest is valid again");
                }
                let m = Arc::new(*m);
                if self.manifest.as_deref() != Some(&*m) {
                    let servers: usize = m.services.iter().map(|s| s.real_servers.len()).sum();
                    info!(
                        services = m.services.len(),
                        real_servers = servers,
                        "manifest loaded"
                    );
                    for w in m.warnings() {
                        warn!("{w}");
                    }
                    self.manifest = Some(m);
                    self.manifest_loaded_at = Some(SystemTime::now());
                }
            }
            Read::Failed(message) => {
                self.manifest_dirty = false;
                self.unsettled_since = None;
                self.unsettled_warned = false;
                self.metrics.record_manifest(false);
                let keeping = if self.manifest.is_some() {
                    "keeping the last good manifest"
                } else {
                    "not touching the kernel until a valid manifest appears"
                };
                if self.manifest_error.as_deref() != Some(&message) {
                    error!("manifest rejected; {keeping}:\n{message}");
                } else {
                    debug!("manifest still invalid; {keeping}");
                }
                self.manifest_error = Some(message);
            }
        }
        if let Some(w) = self.watcher.as_mut() {
            w.refresh();
        }
        None
    }

    /// When a pass must next look at the drains: the earliest drain time still to come, or
    /// [`DRAIN_POLL`] from `now` to see whether drained servers went idle. None without drains.
    fn next_drain_check(&self, now: Instant) -> Option<Instant> {
        let manifest = self.manifest.as_deref()?;
        let poll = now + DRAIN_POLL;
        // A drain whose time is already up and that is still here failed to be deleted: the
        // retry's backoff covers it, and a past instant must not spin the loop.
        let due = self
            .drains
            .iter()
            .map(|((svc, _), since)| *since + drain_timeout(manifest, svc))
            .filter(|at| *at > now)
            .min();
        (!self.drains.is_empty()).then(|| due.map_or(poll, |at| at.min(poll)))
    }

    /// Updates drain start times and returns the drains whose time is up.
    fn track_drains(
        &mut self,
        manifest: &Manifest,
        observed: &Observed,
        desired: &State,
        now: Instant,
    ) -> BTreeSet<(ServiceKey, DestKey)> {
        if !self.config.drain {
            self.drains.clear();
            return BTreeSet::new();
        }
        let mut leaving = BTreeSet::new();
        for (key, svc) in &observed.state.services {
            let Some(want) = desired.services.get(key) else {
                continue;
            };
            for dest in svc.dests.keys() {
                if !want.dests.contains_key(dest) {
                    leaving.insert((*key, *dest));
                }
            }
        }
        // Forget servers that are gone or wanted again; start the clock for ones already at
        // weight 0 when this daemon started (a restart mid-drain).
        self.drains.retain(|k, _| leaving.contains(k));
        for k in &leaving {
            let quiesced = observed
                .state
                .services
                .get(&k.0)
                .and_then(|s| s.dests.get(&k.1))
                .is_some_and(|d| d.weight == 0);
            if quiesced {
                self.drains.entry(*k).or_insert(now);
            }
        }
        self.drains
            .iter()
            .filter(|((svc, _), since)| now.duration_since(**since) >= drain_timeout(manifest, svc))
            .map(|(k, _)| *k)
            .collect()
    }

    fn finish(
        &mut self,
        trigger: Trigger,
        started: Instant,
        result: &'static str,
        summary: String,
        counts: Counts,
        observed: Option<&Observed>,
    ) {
        let duration = started.elapsed();
        let at = status::unix(SystemTime::now());
        match result {
            "ok" if counts.applied == 0 => debug!(trigger = trigger.as_str(), ?duration, "in sync"),
            "ok" => info!(trigger = trigger.as_str(), ?duration, "{summary}"),
            _ => {}
        }
        self.metrics.record_pass(PassMetrics {
            result,
            duration,
            applied: counts.applied,
            failed: counts.failed,
            errors: counts.errors.len(),
            drift: counts.drift,
            at_unix: at,
            observed,
        });
        self.last_reconcile = Some(ReconcileStatus {
            at,
            trigger: trigger.as_str().to_owned(),
            result: result.to_owned(),
            summary: format!("{result}: {summary} ({})", trigger.as_str()),
            duration_ms: duration.as_secs_f64() * 1000.0,
            applied: counts.applied,
            failed: counts.failed,
            drift: counts.drift,
            errors: counts.errors,
            retry_in_ms: (result == "partial" || result == "failed")
                .then(|| u64::try_from(self.backoff().as_millis()).unwrap_or(u64::MAX)),
        });
        self.write_status();
    }

    fn write_status(&self) {
        let Some(path) = &self.config.status_file else {
            return;
        };
        let s = self.status();
        if let Err(e) = status::write(path, &s) {
            warn!(path = %path.display(), error = %e, "cannot write the status file");
        }
    }

    fn status(&self) -> StatusFile {
        let m = self.manifest.as_deref();
        let on_failure: BTreeMap<Target, OnFailure> = m
            .map(|m| {
                m.services
                    .iter()
                    .flat_map(|s| {
                        s.real_servers.iter().filter_map(|r| {
                            r.health.as_ref().map(|h| {
                                (
                                    Target {
                                        service: s.key,
                                        server: r.key,
                                    },
                                    h.on_failure,
                                )
                            })
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut health: BTreeMap<String, BTreeMap<String, HealthEntry>> = BTreeMap::new();
        for (t, h) in self.monitor.snapshot() {
            health
                .entry(t.service.to_string())
                .or_default()
                .insert(t.server.to_string(), health_entry(&h, on_failure.get(&t)));
        }
        let now = Instant::now();
        let now_unix = status::unix(SystemTime::now());
        let draining = self
            .drains
            .iter()
            .map(|((svc, dest), since)| {
                let since = now_unix - now.duration_since(*since).as_secs_f64();
                let timeout = m.map_or(manifest::DEFAULT_DRAIN_TIMEOUT, |m| drain_timeout(m, svc));
                DrainEntry {
                    service: svc.to_string(),
                    server: dest.to_string(),
                    since,
                    expires_at: since + timeout.as_secs_f64(),
                }
            })
            .collect();
        StatusFile {
            format_version: status::FORMAT_VERSION.to_owned(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: status::unix(self.started_at),
            updated_at: now_unix,
            manifest: ManifestStatus {
                ok: self.manifest_error.is_none() && m.is_some(),
                paths: self
                    .config
                    .manifests
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                loaded_at: self.manifest_loaded_at.map(status::unix),
                error: self.manifest_error.clone(),
                services: m.map_or(0, |m| m.services.len()),
                real_servers: m
                    .map_or(0, |m| m.services.iter().map(|s| s.real_servers.len()).sum()),
            },
            last_reconcile: self.last_reconcile.clone(),
            health,
            draining,
            stopped: self.stopped,
        }
    }
}

#[derive(Default)]
struct Counts {
    applied: usize,
    failed: usize,
    skipped: usize,
    drift: usize,
    errors: Vec<String>,
}

fn health_entry(h: &HealthState, on_failure: Option<&OnFailure>) -> HealthEntry {
    let reason = match (&h.last_error, h.status) {
        (Some(e), _) => e.clone(),
        (None, Status::Up) if h.checks == 0 => {
            "not checked yet (as found in the kernel)".to_owned()
        }
        (None, Status::Down) if h.checks == 0 => {
            "not checked yet (absent from the kernel)".to_owned()
        }
        (None, _) => format!("passed {} check(s) in a row", h.consecutive_ok),
    };
    HealthEntry {
        state: h.status.as_str().to_owned(),
        reason,
        check: h.kind.to_owned(),
        confirmed: h.confirmed,
        since: status::unix(h.since),
        last_check: h.last_check.map(status::unix),
        consecutive_ok: h.consecutive_ok,
        consecutive_fail: h.consecutive_fail,
        checks: h.checks,
        failures: h.failures,
        not_run: h.inconclusive,
        on_failure: match on_failure {
            Some(OnFailure::Quiesce) => "quiesce",
            _ => "remove",
        }
        .to_owned(),
    }
}

/// Failures, checks not run, servers down and verdicts confirmed, over every check: what
/// makes a status file worth rewriting between passes.
type HealthDigest = (u64, u64, usize, usize);

fn health_digest(health: &BTreeMap<Target, lvsctl_health::HealthState>) -> HealthDigest {
    health.values().fold((0, 0, 0, 0), |(f, n, d, c), h| {
        (
            f + h.failures,
            n + h.inconclusive,
            d + usize::from(h.status == Status::Down),
            c + usize::from(h.confirmed),
        )
    })
}

fn log_transition(t: &Transition) {
    match t.to {
        Status::Down => warn!(
            service = %t.target.service,
            server = %t.target.server,
            reason = %t.reason,
            "real server failed its health check; taking it out"
        ),
        Status::Up => info!(
            service = %t.target.service,
            server = %t.target.server,
            reason = %t.reason,
            "real server passes its health check; putting it back"
        ),
    }
}

async fn recv(rx: &mut Option<UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(r) => {
            let got = r.recv().await;
            if got.is_none() {
                // The sender is gone for good: stop listening instead of waking on it forever.
                *rx = None;
            }
            got
        }
        None => std::future::pending().await,
    }
}

fn lock_backend(b: &SharedBackend) -> std::sync::MutexGuard<'_, Box<dyn Backend + Send>> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops services the manifest leaves unmanaged, so no plan touches them.
fn managed_view(manifest: &Manifest, mut observed: Observed) -> Observed {
    observed
        .state
        .services
        .retain(|k, _| manifest.is_managed(k));
    observed.counters.retain(|k, _| manifest.is_managed(k));
    observed
}

/// How long a real server of `service` may drain before it is deleted anyway.
fn drain_timeout(manifest: &Manifest, service: &ServiceKey) -> Duration {
    manifest
        .service(service)
        .map_or(manifest::DEFAULT_DRAIN_TIMEOUT, |s| s.drain_timeout)
}

/// A deletion that ends a drain: planned work, not drift.
fn is_drain_progress(op: &Op, draining: &BTreeMap<(ServiceKey, DestKey), Instant>) -> bool {
    match op {
        Op::DeleteDest { service, key, .. } => draining.contains_key(&(*service, *key)),
        Op::DrainDest { .. } => true,
        _ => false,
    }
}

/// Objects whose operations depend on each other: once one fails, the rest of its group is
/// skipped (a real server cannot be added to a service that failed to be created), and every
/// other group carries on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Service(ServiceKey),
    Marks(Family),
    Vips,
}

fn group(op: &Op) -> Group {
    match op {
        Op::AddService { key, .. }
        | Op::UpdateService { key, .. }
        | Op::DeleteService { key, .. } => Group::Service(*key),
        Op::AddDest { service, .. }
        | Op::UpdateDest { service, .. }
        | Op::DeleteDest { service, .. }
        | Op::DrainDest { service, .. } => Group::Service(*service),
        Op::WriteMarkChain { family, .. } | Op::RemoveMarkChain { family, .. } => {
            Group::Marks(*family)
        }
        Op::AddVip { .. } | Op::DeleteVip { .. } => Group::Vips,
    }
}

/// Runs `ops` one at a time, skipping the rest of a group after its first failure, in two
/// rounds. First everything that adds or edits, in plan order. Then what takes something away
/// for good (whole services, VIPs, MARK rules), in plan order, but only while nothing has
/// failed: a service being replaced must keep serving until its replacement, its real
/// servers, its VIP and the rules that feed it are all in place, and a pass cannot tell which
/// failure a given deletion depends on. Until then the MARK chain only gains rules for traffic
/// no rule marks yet. Health-driven changes (real servers removed or quiesced within a
/// service) are not held back: they belong to the first round.
fn apply_ops(backend: &mut dyn Backend, ops: &[Op]) -> Vec<OpResult> {
    let mut failed: BTreeSet<Group> = BTreeSet::new();
    let mut trouble = false;
    let mut results: Vec<Option<OpResult>> = ops.iter().map(|_| None).collect();
    // A family whose chain loses a rule anywhere in the plan: each of its writes may drop it
    // (the full write after an early removal no longer lists the rule either).
    let losing: BTreeSet<Family> = ops
        .iter()
        .filter_map(|op| match op {
            Op::WriteMarkChain {
                family, removed, ..
            }
            | Op::RemoveMarkChain { family, removed }
                if !removed.is_empty() =>
            {
                Some(*family)
            }
            _ => None,
        })
        .collect();
    let takes_away = |op: &Op| match op {
        Op::DeleteService { .. } | Op::DeleteVip { .. } | Op::RemoveMarkChain { .. } => true,
        Op::WriteMarkChain { family, .. } => losing.contains(family),
        _ => false,
    };
    let mut run = |op: &Op, failed: &mut BTreeSet<Group>, trouble: &mut bool| {
        let g = group(op);
        if failed.contains(&g) {
            return OpResult::Skipped;
        }
        match backend.execute(op) {
            Ok(()) => OpResult::Applied,
            Err(e) => {
                failed.insert(g);
                *trouble = true;
                OpResult::Failed(e.to_string())
            }
        }
    };
    for (op, slot) in ops.iter().zip(results.iter_mut()) {
        if !takes_away(op) {
            *slot = Some(run(op, &mut failed, &mut trouble));
        }
    }
    // MARK rules a held-back write would have removed, per family: still in the chain.
    let mut still_there: BTreeMap<Family, Vec<lvsctl_model::MarkRule>> = BTreeMap::new();
    for (op, slot) in ops.iter().zip(results.iter_mut()) {
        if !takes_away(op) {
            continue;
        }
        if !trouble {
            *slot = Some(run(op, &mut failed, &mut trouble));
            continue;
        }
        let outcome = match op {
            Op::WriteMarkChain {
                family,
                rules,
                added,
                removed,
            } => {
                let kept = still_there.entry(*family).or_default();
                kept.extend(removed.iter().cloned());
                match additions_only(*family, rules, added, kept) {
                    Some(write) => match run(&write, &mut failed, &mut trouble) {
                        OpResult::Applied => {
                            info!(
                                op = %write,
                                "added MARK rules for new traffic; removals wait until nothing fails"
                            );
                            OpResult::Skipped
                        }
                        other => other,
                    },
                    None => OpResult::Skipped,
                }
            }
            _ => OpResult::Skipped,
        };
        *slot = Some(outcome);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(OpResult::Skipped))
        .collect()
}

/// The part of a chain write that only adds: the chain as it is (the write's rules less what
/// it adds, plus what it and held-back writes before it would remove) with the added rules
/// whose traffic no rule there marks yet. `None` when there is no such rule.
fn additions_only(
    family: Family,
    rules: &[lvsctl_model::MarkRule],
    added: &[lvsctl_model::MarkRule],
    still_there: &[lvsctl_model::MarkRule],
) -> Option<Op> {
    let mut current: Vec<lvsctl_model::MarkRule> = rules
        .iter()
        .filter(|r| !added.contains(r))
        .chain(still_there.iter())
        .cloned()
        .collect();
    current.sort();
    current.dedup();
    let marked: BTreeSet<(std::net::IpAddr, lvsctl_model::Protocol, u16)> = current
        .iter()
        .flat_map(lvsctl_model::MarkRule::traffic)
        .collect();
    let new: Vec<lvsctl_model::MarkRule> = added
        .iter()
        .filter(|r| !r.traffic().any(|t| marked.contains(&t)))
        .cloned()
        .collect();
    if new.is_empty() {
        return None;
    }
    current.extend(new.iter().cloned());
    Some(Op::WriteMarkChain {
        family,
        rules: current,
        added: new,
        removed: Vec::new(),
    })
}

/// Reads and validates the manifests, unless one changed less than `settle` ago: it may be
/// half-written, and a truncated manifest is often still valid (one that lost its last
/// services would delete them). There is no deadline on this wait: a file rewritten more often
/// than `settle` is never read, and the caller says so.
fn read_manifests(config: &Config) -> Read {
    if let Some(age) = newest_change(&config.manifests)
        && age < config.settle
    {
        // Look again soon rather than sleeping the whole settle time: the cap must hold.
        return Read::Unsettled(
            (config.settle - age).min(config.debounce.max(Duration::from_millis(10))),
        );
    }
    let sources =
        match crate::files::read_sources(&config.manifests, config.allow_insecure_manifest) {
            Ok(s) => s,
            Err(e) => return Read::Failed(format!("{e:#}")),
        };
    match manifest::load_owned(sources) {
        Ok(m) if !m.declares_services => Read::Failed(
            "the manifest has no services: section (a real-server-only manifest); \
             the daemon needs the director's services"
                .to_owned(),
        ),
        Ok(m) => Read::Loaded(Box::new(m)),
        Err(diags) => Read::Failed(diags.to_string().trim_end().to_owned()),
    }
}

/// How long ago the most recently modified manifest file (or named path) changed.
fn newest_change(paths: &[PathBuf]) -> Option<Duration> {
    let mut files: Vec<PathBuf> = crate::files::expand(paths).unwrap_or_default();
    files.extend(paths.iter().cloned());
    // Files (and the symlinks leading to them) only: a directory's own mtime also moves for
    // unrelated files written next to the manifests.
    let newest = files
        .iter()
        .filter(|p| !std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
        .filter_map(|p| {
            let link = std::fs::symlink_metadata(p).ok()?.modified().ok();
            let target = std::fs::metadata(p).ok().and_then(|m| m.modified().ok());
            link.max(target)
        })
        .max()?;
    // A clock step backwards makes this an error: treat the file as settled.
    SystemTime::now().duration_since(newest).ok()
}
