//! The scheduler: one task per check, each on its own timer, so a hanging real server only ever
//! delays its own next check. Results become up/down through rise/fall counting; every change is
//! sent to the daemon as a [`Transition`].

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use lvsctl_model::{DestKey, ServiceKey};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{CheckError, Probe, Prober};

/// One real server of one service: what a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub service: ServiceKey,
    pub server: DestKey,
}

/// How one real server is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckConfig {
    pub probe: Probe,
    /// Time between the starts of two checks.
    pub interval: Duration,
    /// Total deadline of one check.
    pub timeout: Duration,
    /// Consecutive passes that bring a down server back.
    pub rise: u32,
    /// Consecutive failures that take an up server out.
    pub fall: u32,
}

/// Health of a real server as the daemon acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
        }
    }
}

/// Everything known about one checked real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    pub status: Status,
    /// False until a check agreed with `status`. A server starts in the state the kernel has
    /// (present = up, absent = down) and unconfirmed: an unconfirmed down server comes up on its
    /// first pass, an up one still needs `fall` failures to go down, so startup never flaps.
    pub confirmed: bool,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    /// Why the last check failed; `None` after a pass.
    pub last_error: Option<String>,
    pub last_check: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    /// When `status` last changed (or the server started being checked).
    pub since: SystemTime,
    pub checks: u64,
    pub failures: u64,
    /// Checks the director could not run (out of sockets, memory, ports or processes); they
    /// count neither as passes nor as failures.
    pub inconclusive: u64,
    /// `http`, `tcp` or `exec`.
    pub kind: &'static str,
}

/// A real server changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub target: Target,
    pub from: Status,
    pub to: Status,
    /// The failure that took it down, or what brought it up.
    pub reason: String,
}

struct Entry {
    state: HealthState,
    /// Bumped whenever the check is restarted; a result from an older task is ignored.
    generation: u64,
}

struct Running {
    config: CheckConfig,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<HashMap<Target, Entry>>>;

/// Runs checks and keeps their state. Dropping it stops every check.
pub struct Monitor {
    prober: Arc<dyn Prober>,
    shared: Shared,
    running: HashMap<Target, Running>,
    transitions: mpsc::UnboundedSender<Transition>,
    spread: Duration,
    epoch: Instant,
    next_generation: u64,
}

impl Monitor {
    /// A monitor with no checks, and the receiver of its transitions. First checks are spread
    /// over up to one second (less for shorter intervals) so thousands of them do not start at
    /// the same instant.
    pub fn new(prober: Arc<dyn Prober>) -> (Monitor, mpsc::UnboundedReceiver<Transition>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let monitor = Monitor {
            prober,
            shared: Arc::default(),
            running: HashMap::new(),
            transitions: tx,
            spread: Duration::from_secs(1),
            epoch: Instant::now(),
            next_generation: 0,
        };
        (monitor, rx)
    }

    /// Changes how far apart first checks are spread (zero: all start at once).
    pub fn with_spread(mut self, spread: Duration) -> Self {
        self.spread = spread;
        self
    }

    /// Makes the running checks exactly `wanted`. A target whose check is unchanged keeps its
    /// task and state; a changed check restarts with its current up/down and confirmation kept
    /// and its pass/fail counts reset (so a failed server stays out until `rise` checks of the
    /// new configuration pass, a healthy one until `fall` fail); a new target starts in
    /// `initial` (down and confirmed so when an identical check already confirmed its server
    /// down); targets not wanted any more are stopped and forgotten. Must run inside a tokio
    /// runtime.
    pub fn reconcile(&mut self, wanted: impl IntoIterator<Item = (Target, CheckConfig, Status)>) {
        let wanted: HashMap<Target, (CheckConfig, Status)> =
            wanted.into_iter().map(|(t, c, s)| (t, (c, s))).collect();
        // Where an identical running check (same endpoint and settings: a service replaced
        // under a new key, before its old targets go below) has confirmed its server down: a
        // new target starting down there starts confirmed, so `rise` passes bring it back, not
        // the first one.
        let confirmed_down: HashSet<(SocketAddr, CheckConfig)> = if wanted
            .keys()
            .any(|t| !self.running.contains_key(t))
        {
            let shared = lock(&self.shared);
            self.running
                .iter()
                .filter(|(t, _)| {
                    shared
                        .get(t)
                        .is_some_and(|e| e.state.status == Status::Down && e.state.confirmed)
                })
                .filter_map(|(t, r)| Some((r.config.probe.endpoint(&t.server)?, r.config.clone())))
                .collect()
        } else {
            HashSet::new()
        };
        let gone: Vec<Target> = self
            .running
            .keys()
            .filter(|t| !wanted.contains_key(t))
            .copied()
            .collect();
        {
            let mut shared = lock(&self.shared);
            for target in gone {
                if let Some(r) = self.running.remove(&target) {
                    r.task.abort();
                }
                shared.remove(&target);
            }
        }
        for (target, (config, initial)) in wanted {
            if let Some(r) = self.running.get(&target)
                && r.config == config
            {
                continue;
            }
            self.next_generation += 1;
            let generation = self.next_generation;
            {
                let mut shared = lock(&self.shared);
                match shared.get_mut(&target) {
                    Some(entry) => {
                        entry.generation = generation;
                        let s = &mut entry.state;
                        // `confirmed` stays: an unconfirmed down server comes back on one pass,
                        // so clearing it would let a flapping server straight back on the very
                        // edit (raising `rise`) meant to keep it out.
                        s.consecutive_ok = 0;
                        s.consecutive_fail = 0;
                        s.kind = config.probe.kind();
                    }
                    None => {
                        let confirmed = initial == Status::Down
                            && config
                                .probe
                                .endpoint(&target.server)
                                .is_some_and(|e| confirmed_down.contains(&(e, config.clone())));
                        shared.insert(
                            target,
                            Entry {
                                state: HealthState {
                                    status: initial,
                                    confirmed,
                                    consecutive_ok: 0,
                                    consecutive_fail: 0,
                                    last_error: None,
                                    last_check: None,
                                    last_duration: None,
                                    since: SystemTime::now(),
                                    checks: 0,
                                    failures: 0,
                                    inconclusive: 0,
                                    kind: config.probe.kind(),
                                },
                                generation,
                            },
                        );
                    }
                }
            }
            let task = tokio::spawn(check_loop(
                target,
                config.clone(),
                Arc::clone(&self.prober),
                Arc::clone(&self.shared),
                self.transitions.clone(),
                first_tick(
                    Instant::now(),
                    self.epoch,
                    first_delay(&target, config.interval, self.spread),
                    config.interval,
                ),
                generation,
            ));
            if let Some(old) = self.running.insert(target, Running { config, task }) {
                old.task.abort();
            }
        }
    }

    /// Current up/down of a checked target; `None` when it is not checked.
    pub fn status(&self, target: &Target) -> Option<Status> {
        self.reader().status(target)
    }

    /// Every checked target's state, in key order.
    pub fn snapshot(&self) -> BTreeMap<Target, HealthState> {
        self.reader().snapshot()
    }

    /// A read-only view of the health state that can be sent to other tasks (metrics, status).
    pub fn reader(&self) -> HealthReader {
        HealthReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// What the running http and tcp checks say, whatever the service: such a check depends
    /// only on where it connects and its settings, so a new target (a real server of a service
    /// that replaces another under a new mark, VIP or port, or a NAT real server moved to
    /// another port but checked on the same one) can start from what the same check already
    /// knows. Exec checks are left out: they are told the service (`LVSCTL_SERVICE`).
    pub fn same_checks(&self) -> SameChecks<'_> {
        let shared = lock(&self.shared);
        let mut known: HashMap<(SocketAddr, &CheckConfig), Status> = HashMap::new();
        for (target, running) in &self.running {
            let (Some(endpoint), Some(entry)) = (
                running.config.probe.endpoint(&target.server),
                shared.get(target),
            ) else {
                continue;
            };
            known
                .entry((endpoint, &running.config))
                .and_modify(|s| {
                    if entry.state.status == Status::Down {
                        *s = Status::Down;
                    }
                })
                .or_insert(entry.state.status);
        }
        SameChecks(known)
    }

    /// Whether `target` is checked.
    pub fn contains(&self, target: &Target) -> bool {
        self.running.contains_key(target)
    }

    /// How many checks are running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// The verdicts of the running http and tcp checks by where they connect and how
/// ([`Monitor::same_checks`]).
#[derive(Debug)]
pub struct SameChecks<'a>(HashMap<(SocketAddr, &'a CheckConfig), Status>);

impl SameChecks<'_> {
    /// What a running check equal to `config` says about the place a check of `server`
    /// connects to; down when such checks disagree, `None` when none runs (or for exec).
    pub fn status(&self, server: &DestKey, config: &CheckConfig) -> Option<Status> {
        let endpoint = config.probe.endpoint(server)?;
        self.0.get(&(endpoint, config)).copied()
    }
}

/// Reads a [`Monitor`]'s health state from anywhere; cheap to clone.
#[derive(Clone)]
pub struct HealthReader {
    shared: Shared,
}

impl HealthReader {
    /// Current up/down of a checked target; `None` when it is not checked.
    pub fn status(&self, target: &Target) -> Option<Status> {
        lock(&self.shared).get(target).map(|e| e.state.status)
    }

    /// Every checked target's state, in key order.
    pub fn snapshot(&self) -> BTreeMap<Target, HealthState> {
        lock(&self.shared)
            .iter()
            .map(|(t, e)| (*t, e.state.clone()))
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.task.abort();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, HashMap<Target, Entry>> {
    // A panic while holding the lock cannot leave an entry half-written in a way that matters
    // more than losing health checking altogether.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks start in slots this far apart, so the runtime wakes once per slot for a batch of
/// checks rather than once per check: most of the CPU cost of thousands of checks is wake-ups.
const SLOT: Duration = Duration::from_millis(25);

/// A stable per-target offset in `[0, min(interval, spread))`, a multiple of [`SLOT`].
fn first_delay(target: &Target, interval: Duration, spread: Duration) -> Duration {
    let slots = interval.min(spread).as_millis() / SLOT.as_millis();
    if slots == 0 {
        return Duration::ZERO;
    }
    let mut h = DefaultHasher::new();
    target.hash(&mut h);
    let slot = u32::try_from(u128::from(h.finish()) % slots).unwrap_or(0);
    SLOT * slot
}

/// The first tick at `epoch + offset + k * interval` not before `now`: checks with the same
/// interval stay on the monitor's common grid however late they were (re)started.
fn first_tick(now: Instant, epoch: Instant, offset: Duration, interval: Duration) -> Instant {
    let start = epoch + offset;
    if now <= start || interval.is_zero() {
        return start;
    }
    let behind = (now - start).as_nanos();
    let periods = behind.div_ceil(interval.as_nanos());
    let periods = u32::try_from(periods).unwrap_or(u32::MAX);
    start + interval * periods
}

async fn check_loop(
    target: Target,
    config: CheckConfig,
    prober: Arc<dyn Prober>,
    shared: Shared,
    transitions: mpsc::UnboundedSender<Transition>,
    first: Instant,
    generation: u64,
) {
    let interval = config.interval.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The prober enforces the deadline with a precise message; this is only a backstop against
    // a prober that ignores it.
    let cutoff = config.timeout + Duration::from_millis(500);
    // The connection an HTTP check keeps open between checks: at most one, owned by this task,
    // so it is closed when the check stops or changes (the task is aborted then).
    let mut idle = None;
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let check = prober.probe_keeping(&target, &config, idle.take());
        let result = match tokio::time::timeout(cutoff, check).await {
            Ok((r, kept)) => {
                idle = kept;
                r
            }
            // Dropping the check dropped its connection too: nothing half-read is reused.
            Err(_) => Err(CheckError::Timeout {
                after: config.timeout,
                during: "the check did not finish".to_owned(),
            }),
        };
        let took = started.elapsed();
        match &result {
            Ok(()) => {
                tracing::trace!(service = %target.service, server = %target.server, ?took, "check passed")
            }
            Err(e) if e.is_inconclusive() => warn_inconclusive(&target, e),
            Err(e) => {
                tracing::debug!(service = %target.service, server = %target.server, ?took, error = %e, "check failed")
            }
        }
        let transition = record(&shared, &target, &config, generation, result, took);
        if let Some(t) = transition
            && transitions.send(t).is_err()
        {
            return;
        }
    }
}

/// Logs a check the director could not run, at most once every 10 s for the whole monitor
/// (when the director runs out of sockets, every check says so at once).
fn warn_inconclusive(target: &Target, e: &CheckError) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *last = Some(now);
    let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(
        service = %target.service,
        server = %target.server,
        error = %e,
        similar_since_last_warning = suppressed,
        "health check not run; the server keeps its status (raise LimitNOFILE or lower the number of checks)"
    );
}

/// Applies one result with rise/fall counting; returns the transition it caused, if any.
fn record(
    shared: &Shared,
    target: &Target,
    config: &CheckConfig,
    generation: u64,
    result: Result<(), CheckError>,
    took: Duration,
) -> Option<Transition> {
    let mut shared = lock(shared);
    let entry = shared.get_mut(target)?;
    if entry.generation != generation {
        return None;
    }
    let s = &mut entry.state;
    s.checks += 1;
    s.last_check = Some(SystemTime::now());
    s.last_duration = Some(took);
    let before = s.status;
    let was_confirmed = s.confirmed;
    if let Err(e) = &result
        && e.is_inconclusive()
    {
        // Nothing was learnt about the server: keep its status and its rise/fall counts.
        s.inconclusive += 1;
        s.last_error = Some(e.to_string());
        return None;
    }
    let reason = match result {
        Ok(()) => {
            s.consecutive_ok = s.consecutive_ok.saturating_add(1);
            s.consecutive_fail = 0;
            s.last_error = None;
            if s.status == Status::Down && (!s.confirmed || s.consecutive_ok >= config.rise.max(1))
            {
                s.status = Status::Up;
            }
            s.confirmed = s.confirmed || s.status == Status::Up;
            if s.consecutive_ok == 1 {
                "passed its first check".to_owned()
            } else {
                format!("passed {} checks in a row", s.consecutive_ok)
            }
        }
        Err(e) => {
            s.failures += 1;
            s.consecutive_fail = s.consecutive_fail.saturating_add(1);
            s.consecutive_ok = 0;
            let message = e.to_string();
            s.last_error = Some(message.clone());
            if s.status == Status::Up && s.consecutive_fail >= config.fall.max(1) {
                s.status = Status::Down;
            }
            s.confirmed = s.confirmed || s.status == Status::Down;
            message
        }
    };
    if s.status == before {
        // A server that started down (absent from the kernel) and now failed a check of its
        // own is still a transition for the daemon: the sorry server waits for every failed
        // server of its service to be confirmed so.
        if s.status == Status::Down && s.confirmed && !was_confirmed {
            return Some(Transition {
                target: *target,
                from: before,
                to: s.status,
                reason,
            });
        }
        return None;
    }
    s.since = SystemTime::now();
    Some(Transition {
        target: *target,
        from: before,
        to: s.status,
        reason,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ProbeFuture, TcpProbe};
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicBool;

    fn target(n: u8) -> Target {
        Target {
            service: "tcp/10.0.0.1:80".parse().unwrap(),
            server: format!("10.0.1.{n}:80").parse().unwrap(),
        }
    }

    fn config(rise: u32, fall: u32) -> CheckConfig {
        CheckConfig {
            probe: Probe::Tcp(TcpProbe { port: None }),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise,
            fall,
        }
    }

    /// Passes while `ok` is set.
    struct Switch(Arc<AtomicBool>);
    impl Prober for Switch {
        fn probe(&self, _: &Target, _: &CheckConfig) -> ProbeFuture {
            let ok = self.0.load(Ordering::SeqCst);
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err(CheckError::Other("switched off".into()))
                }
            })
        }
    }

    fn fresh(status: Status) -> Shared {
        let shared: Shared = Arc::default();
        lock(&shared).insert(
            target(1),
            Entry {
                state: HealthState {
                    status,
                    confirmed: false,
                    consecutive_ok: 0,
                    consecutive_fail: 0,
                    last_error: None,
                    last_check: None,
                    last_duration: None,
                    since: SystemTime::now(),
                    checks: 0,
                    failures: 0,
                    inconclusive: 0,
                    kind: "tcp",
                },
                generation: 1,
            },
        );
        shared
    }

    fn fail() -> Result<(), CheckError> {
        Err(CheckError::Other("refused".into()))
    }

    #[test]
    fn rise_and_fall_counting() {
        let shared = fresh(Status::Up);
        let c = config(2, 3);
        let t = target(1);
        let z = Duration::ZERO;
        // Unconfirmed up: a failure below `fall` keeps it up.
        assert_eq!(record(&shared, &t, &c, 1, fail(), z), None);
        assert_eq!(record(&shared, &t, &c, 1, fail(), z), None);
        let down = record(&shared, &t, &c, 1, fail(), z).unwrap();
        assert_eq!((down.from, down.to), (Status::Up, Status::Down));
        assert_eq!(down.reason, "refused");
        // Confirmed down: needs `rise` passes.
        assert_eq!(record(&shared, &t, &c, 1, Ok(()), z), None);
        assert_eq!(record(&shared, &t, &c, 1, fail(), z), None);
        assert_eq!(record(&shared, &t, &c, 1, Ok(()), z), None);
        let up = record(&shared, &t, &c, 1, Ok(()), z).unwrap();
        assert_eq!((up.from, up.to), (Status::Down, Status::Up));
        // A result of an outdated task is ignored.
        assert_eq!(record(&shared, &t, &c, 0, fail(), z), None);
        let st = &lock(&shared)[&t].state;
        assert_eq!(st.checks, 7);
        assert_eq!(st.failures, 4);
    }

    fn out_of_fds() -> Result<(), CheckError> {
        Err(CheckError::connect(
            "10.0.1.1:80".parse().unwrap(),
            std::io::Error::from_raw_os_error(libc::EMFILE),
        ))
    }

    #[test]
    fn checks_the_director_cannot_run_count_neither_way() {
        let shared = fresh(Status::Up);
        let c = config(2, 2);
        let t = target(1);
        let z = Duration::ZERO;
        // One real failure, then the director runs out of file descriptors for a while: the
        // server stays up, its failure streak is neither extended nor reset.
        assert_eq!(record(&shared, &t, &c, 1, fail(), z), None);
        for _ in 0..10 {
            assert_eq!(record(&shared, &t, &c, 1, out_of_fds(), z), None);
        }
        {
            let st = &lock(&shared)[&t].state;
            assert_eq!(
                (st.status, st.consecutive_fail, st.failures),
                (Status::Up, 1, 1)
            );
            assert_eq!(st.inconclusive, 10);
            let e = st.last_error.as_deref().unwrap();
            assert!(
                e.contains("check not run") && e.contains("result ignored"),
                "{e}"
            );
        }
        // The next real failure completes the streak.
        let down = record(&shared, &t, &c, 1, fail(), z).unwrap();
        assert_eq!(down.to, Status::Down);
        // Nor does a shortage bring a down server back.
        for _ in 0..5 {
            assert_eq!(record(&shared, &t, &c, 1, out_of_fds(), z), None);
        }
        assert_eq!(lock(&shared)[&t].state.status, Status::Down);
    }

    #[test]
    fn only_the_directors_own_shortages_are_inconclusive() {
        let addr: SocketAddr = "10.0.1.1:80".parse().unwrap();
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            let e = CheckError::connect(addr, std::io::Error::from_raw_os_error(errno));
            assert!(e.is_inconclusive(), "errno {errno}");
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::ETIMEDOUT,
            libc::ECONNRESET,
        ] {
            let e = CheckError::connect(addr, std::io::Error::from_raw_os_error(errno));
            assert!(!e.is_inconclusive(), "errno {errno}");
        }
    }

    /// A server that starts down (absent from the kernel) and fails its first check is
    /// reported once: its service's sorry server waits for that confirmation.
    #[test]
    fn a_down_confirmed_by_its_first_failure_is_reported_once() {
        let shared = fresh(Status::Down);
        let c = config(2, 2);
        let t = target(1);
        let z = Duration::ZERO;
        let confirmed = record(&shared, &t, &c, 1, fail(), z).unwrap();
        assert_eq!((confirmed.from, confirmed.to), (Status::Down, Status::Down));
        assert!(lock(&shared)[&t].state.confirmed);
        assert_eq!(record(&shared, &t, &c, 1, fail(), z), None);
    }

    #[test]
    fn unconfirmed_down_comes_up_on_first_pass() {
        let shared = fresh(Status::Down);
        let c = config(3, 3);
        let t = target(1);
        let up = record(&shared, &t, &c, 1, Ok(()), Duration::ZERO).unwrap();
        assert_eq!(up.to, Status::Up);
        assert!(lock(&shared)[&t].state.confirmed);
    }

    #[test]
    fn unconfirmed_down_stays_down_on_failure() {
        let shared = fresh(Status::Down);
        let c = config(3, 3);
        let t = target(1);
        // Still down, now confirmed so (reported: see the test above), and a confirmed down
        // server needs `rise` passes.
        let confirmed = record(&shared, &t, &c, 1, fail(), Duration::ZERO).unwrap();
        assert_eq!(confirmed.to, Status::Down);
        assert!(lock(&shared)[&t].state.confirmed);
        assert_eq!(record(&shared, &t, &c, 1, Ok(()), Duration::ZERO), None);
    }

    #[tokio::test(start_paused = true)]
    async fn same_checks_span_services_and_ports_but_not_exec_checks() {
        let ok = Arc::new(AtomicBool::new(true));
        let (monitor, _rx) = Monitor::new(Arc::new(Switch(Arc::clone(&ok))));
        let mut monitor = monitor.with_spread(Duration::ZERO);
        let on = |service: &str, n: u8| Target {
            service: service.parse().unwrap(),
            ..target(n)
        };
        let on22 = |c: CheckConfig| CheckConfig {
            probe: Probe::Tcp(TcpProbe { port: Some(22) }),
            ..c
        };
        let exec = CheckConfig {
            probe: Probe::Exec(crate::ExecProbe {
                argv: vec!["/bin/true".into()],
            }),
            ..config(1, 1)
        };
        monitor.reconcile([
            (on("tcp/10.0.0.1:80", 1), config(1, 1), Status::Up),
            (on("tcp/10.0.0.2:80", 1), config(1, 1), Status::Up),
            (on("tcp/10.0.0.1:80", 2), config(1, 1), Status::Up),
            (on("tcp/10.0.0.2:80", 2), config(1, 1), Status::Down),
            (on("tcp/10.0.0.1:80", 3), on22(config(1, 1)), Status::Up),
            (on("tcp/10.0.0.1:80", 4), exec.clone(), Status::Up),
        ]);
        let known = monitor.same_checks();
        let c = config(1, 1);
        let server = |n: u8, port: u16| DestKey {
            port,
            ..target(n).server
        };
        assert_eq!(known.status(&server(1, 80), &c), Some(Status::Up));
        // The same check of one server disagreeing between services: down.
        assert_eq!(known.status(&server(2, 80), &c), Some(Status::Down));
        // A check on the real server's own port says nothing about another port of it ...
        assert_eq!(known.status(&server(1, 8080), &c), None);
        // ... one on a fixed port does; another check, or an exec check, says nothing.
        assert_eq!(
            known.status(&server(3, 8080), &on22(c.clone())),
            Some(Status::Up)
        );
        assert_eq!(known.status(&server(3, 80), &c), None);
        assert_eq!(known.status(&server(4, 80), &exec), None);
    }

    #[tokio::test(start_paused = true)]
    async fn reconcile_keeps_state_of_unchanged_checks() {
        let ok = Arc::new(AtomicBool::new(false));
        let (monitor, mut rx) = Monitor::new(Arc::new(Switch(Arc::clone(&ok))));
        let mut monitor = monitor.with_spread(Duration::ZERO);
        let c = config(2, 2);
        monitor.reconcile([(target(1), c.clone(), Status::Up)]);
        let t = rx.recv().await.unwrap();
        assert_eq!(t.to, Status::Down);
        // Reloading with the same check (and whatever "initial") keeps it down.
        monitor.reconcile([(target(1), c.clone(), Status::Up)]);
        assert_eq!(monitor.status(&target(1)), Some(Status::Down));
        // A changed check (here `rise` raised, as for a flapping server) keeps it down until
        // `rise` checks of the new configuration pass: not back on the first pass.
        let mut c2 = c.clone();
        c2.rise = 3;
        monitor.reconcile([(target(1), c2.clone(), Status::Up)]);
        assert_eq!(monitor.status(&target(1)), Some(Status::Down));
        ok.store(true, Ordering::SeqCst);
        let passing = Instant::now();
        let t = rx.recv().await.unwrap();
        assert_eq!((t.target, t.to), (target(1), Status::Up));
        assert_eq!(monitor.snapshot()[&target(1)].consecutive_ok, 3);
        // Three passes one interval apart: the first at once, the third two intervals later.
        assert!(
            passing.elapsed() >= 2 * c2.interval,
            "up after {:?}",
            passing.elapsed()
        );
        // Removing the target forgets it.
        monitor.reconcile(std::iter::empty());
        assert_eq!(monitor.status(&target(1)), None);
        assert!(monitor.is_empty());
    }

    /// A service replaced under a new key starts its servers from the same check's verdict
    /// (the daemon passes it as `initial`); one confirmed down there stays confirmed, so it
    /// needs `rise` passes to come back, as it would have on the old key, not one.
    #[tokio::test(start_paused = true)]
    async fn a_server_confirmed_down_stays_confirmed_under_a_new_service() {
        let ok = Arc::new(AtomicBool::new(false));
        let (monitor, mut rx) = Monitor::new(Arc::new(Switch(Arc::clone(&ok))));
        let mut monitor = monitor.with_spread(Duration::ZERO);
        let c = config(3, 1);
        monitor.reconcile([(target(1), c.clone(), Status::Up)]);
        assert_eq!(rx.recv().await.unwrap().to, Status::Down);
        assert!(monitor.snapshot()[&target(1)].confirmed);
        // The old target goes in the same reconcile that brings the new one.
        let moved = Target {
            service: "fwmark/11".parse().unwrap(),
            ..target(1)
        };
        let never_checked = Target {
            service: "fwmark/11".parse().unwrap(),
            ..target(2)
        };
        monitor.reconcile([
            (moved, c.clone(), Status::Down),
            (never_checked, c.clone(), Status::Down),
        ]);
        let snap = monitor.snapshot();
        assert!(snap[&moved].confirmed, "{:?}", snap[&moved]);
        assert!(!snap[&never_checked].confirmed);
        ok.store(true, Ordering::SeqCst);
        // The unconfirmed one is back on its first pass, the confirmed one after `rise`.
        let first = rx.recv().await.unwrap();
        assert_eq!((first.target, first.to), (never_checked, Status::Up));
        let second = rx.recv().await.unwrap();
        assert_eq!((second.target, second.to), (moved, Status::Up));
        assert_eq!(monitor.snapshot()[&moved].consecutive_ok, 3);
    }

    #[test]
    fn first_delays_are_spread_and_bounded() {
        let d: Vec<Duration> = (1..=50)
            .map(|n| first_delay(&target(n), Duration::from_secs(5), Duration::from_secs(1)))
            .collect();
        assert!(d.iter().all(|x| *x < Duration::from_secs(1)));
        assert!(d.iter().all(|x| x.as_millis() % SLOT.as_millis() == 0));
        let distinct: std::collections::BTreeSet<_> = d.iter().collect();
        assert!(distinct.len() > 20);
        assert_eq!(
            first_delay(&target(1), Duration::from_secs(5), Duration::ZERO),
            Duration::ZERO
        );
    }

    #[test]
    fn first_tick_stays_on_the_grid() {
        let epoch = Instant::now();
        let sec = Duration::from_secs(1);
        let off = Duration::from_millis(250);
        assert_eq!(first_tick(epoch, epoch, off, sec), epoch + off);
        let late = epoch + Duration::from_millis(3100);
        assert_eq!(
            first_tick(late, epoch, off, sec),
            epoch + Duration::from_millis(3250)
        );
        let exact = epoch + Duration::from_millis(2250);
        assert_eq!(first_tick(exact, epoch, off, sec), exact);
    }
}
