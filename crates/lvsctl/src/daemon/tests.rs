//! The loop against the fake kernel with paused time (every wait below is virtual, so the
//! timings asserted are exact and cost nothing), and the watcher against real file operations.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvsctl_health::{CheckConfig, CheckError, ProbeFuture, Prober, Target};
use lvsctl_model::manifest;
use lvsctl_model::{DestKey, Observed, ServiceKey, State};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, BackendError, Errno, Op};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use super::reconcile::{Config, DRAIN_POLL, Daemon, Inputs};
use super::status::StatusFile;
use super::watch::ManifestWatcher;

/// Log output of the daemon under test, for asserting what an operator is told.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

pub fn tempdir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("lvsctl-daemon-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fake kernel the test can inspect and fault while the daemon owns a handle to it. Every
/// attempted op is logged with the (virtual) time it was attempted at.
#[derive(Clone, Default)]
struct Kernel {
    inner: Arc<Mutex<FakeKernel>>,
    log: Arc<Mutex<Vec<(Instant, Op, bool)>>>,
    /// When set, each execute first reports on `entered` and waits for `release`.
    gate: Arc<Mutex<Option<Gate>>>,
    /// Every VIP interface the daemon told the backend about, in order.
    vip_told: Arc<Mutex<Vec<Option<String>>>>,
    /// The real-server interface told with each of them.
    realserver_told: Arc<Mutex<Vec<Option<String>>>>,
}

struct Gate {
    entered: std::sync::mpsc::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
}

impl Kernel {
    fn state(&self) -> State {
        self.inner.lock().unwrap().state().clone()
    }
    fn with<R>(&self, f: impl FnOnce(&mut FakeKernel) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }
    fn attempts(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    fn attempts_at(&self, pred: impl Fn(&Op) -> bool) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, op, _)| pred(op))
            .map(|(t, _, _)| *t)
            .collect()
    }
}

impl Backend for Kernel {
    fn observe(&mut self) -> Result<Observed, BackendError> {
        self.inner.lock().unwrap().observe()
    }
    fn observe_vips(
        &mut self,
        interface: Option<&str>,
    ) -> Result<Option<lvsctl_model::VipState>, BackendError> {
        self.vip_told
            .lock()
            .unwrap()
            .push(interface.map(str::to_owned));
        Ok(self.inner.lock().unwrap().observe()?.state.vips)
    }
    fn observe_vips_sparing(
        &mut self,
        interface: Option<&str>,
        realserver_interface: Option<&str>,
    ) -> Result<Option<lvsctl_model::VipState>, BackendError> {
        self.realserver_told
            .lock()
            .unwrap()
            .push(realserver_interface.map(str::to_owned));
        self.observe_vips(interface)
    }
    fn execute(&mut self, op: &Op) -> Result<(), BackendError> {
        if let Some(g) = self.gate.lock().unwrap().as_ref() {
            let _ = g.entered.send(());
            let _ = g.release.recv();
        }
        let r = self.inner.lock().unwrap().execute(op);
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), op.clone(), r.is_ok()));
        r
    }
}

/// Passes every check except for the real servers switched off.
#[derive(Clone, Default)]
struct Health {
    down: Arc<Mutex<BTreeMap<DestKey, bool>>>,
}

impl Health {
    fn set_down(&self, server: &str, down: bool) {
        self.down
            .lock()
            .unwrap()
            .insert(server.parse().unwrap(), down);
    }
}

impl Prober for Health {
    fn probe(&self, target: &Target, _: &CheckConfig) -> ProbeFuture {
        let down = self
            .down
            .lock()
            .unwrap()
            .get(&target.server)
            .copied()
            .unwrap_or(false);
        Box::pin(async move {
            if down {
                Err(CheckError::Other("switched off by the test".into()))
            } else {
                Ok(())
            }
        })
    }
}

struct Running {
    task: JoinHandle<anyhow::Result<()>>,
    shutdown: oneshot::Sender<()>,
    reload: mpsc::UnboundedSender<()>,
    events: mpsc::UnboundedSender<()>,
    metrics: Arc<super::metrics::Metrics>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
    }
    fn metric(&self, line_start: &str) -> f64 {
        let text = self.metrics.render();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no metric {line_start} in\n{text}"))
            .parse()
            .unwrap()
    }
}

fn config(dir: &Path) -> Config {
    let mut c = Config::new(vec![dir.join("lvsctl.yaml")]);
    c.status_file = Some(dir.join("status.json"));
    c.health_spread = Duration::ZERO;
    c.settle = Duration::ZERO;
    c
}

fn start(config: Config, kernel: &Kernel, health: &Health) -> Running {
    let daemon = Daemon::new(config, Box::new(kernel.clone()), Arc::new(health.clone()));
    let metrics = daemon.metrics();
    let (shutdown, shutdown_rx) = oneshot::channel();
    let (reload, reload_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    let inputs = Inputs {
        manifest_events: Some(events_rx),
        reload: Some(reload_rx),
    };
    let task = tokio::spawn(daemon.run_until(inputs, async {
        let _ = shutdown_rx.await;
    }));
    Running {
        task,
        shutdown,
        reload,
        events,
        metrics,
    }
}

fn write(dir: &Path, yaml: &str) {
    // As editors do: a new file renamed over the old one.
    let tmp = dir.join(".lvsctl.yaml.tmp");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(&tmp, dir.join("lvsctl.yaml")).unwrap();
}

fn desired(yaml: &str) -> State {
    manifest::parse("m.yaml", yaml).unwrap().desired_state()
}

fn status(dir: &Path) -> StatusFile {
    serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap()).unwrap()
}

fn svc(s: &str) -> ServiceKey {
    s.parse().unwrap()
}

fn rs(s: &str) -> DestKey {
    s.parse().unwrap()
}

fn weight(state: &State, service: &str, server: &str) -> Option<u32> {
    state
        .services
        .get(&svc(service))?
        .dests
        .get(&rs(server))
        .map(|d| d.weight)
}

const TWO_SERVICES: &str = "
services:
  - name: web
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1, weight: 5}
      - {address: 10.0.1.2, weight: 7}
  - name: dns
    protocol: udp
    vip: 10.0.0.2
    port: 53
    real_servers:
      - {address: 10.0.2.1}
";

const CHECKED: &str = "
services:
  - name: web
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1, weight: 5}
      - {address: 10.0.1.2, weight: 7}
    sorry_server: 10.0.9.9
    health:
      http: {path: /.health.html, expect: OK}
      interval: 1s
      timeout: 500ms
      rise: 2
      fall: 3
";

#[tokio::test(start_paused = true)]
async fn converges_at_startup_and_a_restart_adopts_without_any_op() {
    let dir = tempdir("adopt");
    write(&dir, CHECKED);
    let kernel = Kernel::default();
    let health = Health::default();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(5)).await;
    d.stop().await;
    // Startup on an empty kernel: the services at once, each real server after its first pass.
    assert_eq!(kernel.state(), desired(CHECKED));
    let s = status(&dir);
    assert!(s.manifest.ok);
    assert_eq!(s.health["tcp/10.0.0.1:80"]["10.0.1.1:80"].state, "up");
    assert_eq!(s.last_reconcile.unwrap().result, "ok");

    // A new daemon over the same kernel: nothing to do, not even while its checks confirm.
    let before = kernel.attempts();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(40)).await;
    d.stop().await;
    assert_eq!(
        kernel.attempts(),
        before,
        "a restart must not touch the kernel"
    );
    assert_eq!(kernel.state(), desired(CHECKED));
}

#[tokio::test(start_paused = true)]
async fn restart_keeps_a_failed_server_out_until_it_passes() {
    let dir = tempdir("restart-failed");
    write(&dir, CHECKED);
    let kernel = Kernel::default();
    let health = Health::default();
    health.set_down("10.0.1.2:80", true);
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(10)).await;
    d.stop().await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        None
    );

    let before = kernel.attempts();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        kernel.attempts(),
        before,
        "still failing: still out, no churn"
    );
    health.set_down("10.0.1.2:80", false);
    // Absent at startup = down but unconfirmed: its first pass brings it back.
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(7)
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn health_failure_removes_within_interval_times_fall_and_recovery_restores_weight() {
    let dir = tempdir("health");
    write(&dir, CHECKED);
    let kernel = Kernel::default();
    let health = Health::default();
    let mut c = config(&dir);
    c.status_refresh = Duration::from_millis(500);
    let d = start(c, &kernel, &health);
    // Checks run at whole seconds; changes happen half-way between them.
    sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(5)
    );

    health.set_down("10.0.1.1:80", true);
    // Two failures (fall is 3): still in.
    sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(5)
    );
    // No pass ran for them, yet the status file shows them (it is refreshed between passes).
    let s = status(&dir);
    let h = &s.health["tcp/10.0.0.1:80"]["10.0.1.1:80"];
    assert_eq!((h.state.as_str(), h.consecutive_fail), ("up", 2), "{h:?}");
    // Within interval x fall (+1 s): out; the other server stays.
    sleep(Duration::from_millis(1900)).await;
    let state = kernel.state();
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.1:80"), None);
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.2:80"), Some(7));
    let s = status(&dir);
    let h = &s.health["tcp/10.0.0.1:80"]["10.0.1.1:80"];
    assert_eq!(h.state, "down");
    assert_eq!(h.reason, "switched off by the test");
    assert_eq!(
        d.metric("lvsctl_realserver_up{service=\"tcp/10.0.0.1:80\",server=\"10.0.1.1:80\""),
        0.0
    );

    // Back: rise is 2, so after two passes (+1 s) it returns with its manifest weight.
    health.set_down("10.0.1.1:80", false);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(5)
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn quiesce_mode_sets_weight_zero_instead_of_removing() {
    let dir = tempdir("quiesce");
    let yaml = CHECKED.replace(
        "      fall: 3\n",
        "      fall: 3\n      on_failure: quiesce\n",
    );
    write(&dir, &yaml);
    let kernel = Kernel::default();
    let health = Health::default();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(3)).await;
    health.set_down("10.0.1.2:80", true);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(0)
    );
    assert_eq!(
        status(&dir).health["tcp/10.0.0.1:80"]["10.0.1.2:80"].on_failure,
        "quiesce"
    );
    health.set_down("10.0.1.2:80", false);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(7)
    );
    d.stop().await;

    // Restart while quiesced: weight 0 in the kernel reads as "down"; no flap on startup.
    health.set_down("10.0.1.2:80", true);
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(0)
    );
    let before = kernel.attempts();
    d.stop().await;
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(5)).await;
    d.stop().await;
    assert_eq!(kernel.attempts(), before);
}

#[tokio::test(start_paused = true)]
async fn when_every_server_fails_the_service_stays_with_its_sorry_server() {
    let dir = tempdir("sorry");
    write(&dir, CHECKED);
    let kernel = Kernel::default();
    let health = Health::default();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(3)).await;
    health.set_down("10.0.1.1:80", true);
    health.set_down("10.0.1.2:80", true);
    sleep(Duration::from_secs(4)).await;
    let web = kernel.state().services[&svc("tcp/10.0.0.1:80")].clone();
    assert_eq!(
        web.dests.keys().copied().collect::<Vec<_>>(),
        [rs("10.0.9.9:80")]
    );
    health.set_down("10.0.1.1:80", false);
    sleep(Duration::from_secs(3)).await;
    let web = kernel.state().services[&svc("tcp/10.0.0.1:80")].clone();
    assert_eq!(
        web.dests.keys().copied().collect::<Vec<_>>(),
        [rs("10.0.1.1:80")]
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn drift_is_repaired_at_the_next_resync_and_counted() {
    let dir = tempdir("drift");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let health = Health::default();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    // `ipvsadm -D -t 10.0.0.1:80` behind lvsctl's back.
    kernel.with(|k| {
        let spec = k.state().services[&svc("tcp/10.0.0.1:80")].spec.clone();
        k.execute(&Op::DeleteService {
            key: svc("tcp/10.0.0.1:80"),
            spec: Box::new(spec),
            reason: Box::new(lvsctl_plan::Reason::NotInManifest),
        })
        .unwrap();
    });
    sleep(Duration::from_secs(20)).await;
    assert!(
        !kernel
            .state()
            .services
            .contains_key(&svc("tcp/10.0.0.1:80"))
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!((last.trigger.as_str(), last.drift), ("resync", 3));
    assert_eq!(d.metric("lvsctl_drift_repairs_total"), 3.0);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_apply_is_retried_with_backoff_and_spares_other_services() {
    let dir = tempdir("retry");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let bad = |op: &Op| matches!(op, Op::AddDest { key, .. } if *key == "10.0.1.2:80".parse::<DestKey>().unwrap());
    kernel.with(|k| {
        k.fail_when(
            bad,
            BackendError::Kernel {
                op: "add real server 10.0.1.2:80".into(),
                errno: Errno::Other(12),
                message: "out of memory (ENOMEM)".into(),
            },
        );
    });
    let health = Health::default();
    let started = Instant::now();
    let d = start(config(&dir), &kernel, &health);
    sleep(Duration::from_secs(20)).await;
    // The other real server and the other service converged on the first pass.
    let state = kernel.state();
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.1:80"), Some(5));
    assert_eq!(weight(&state, "udp/10.0.0.2:53", "10.0.2.1:53"), Some(1));
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.2:80"), None);
    // Retried after 1, 2, 4 and 8 s (t = 0, 1, 3, 7, 15).
    let tries: Vec<u64> = kernel
        .attempts_at(bad)
        .iter()
        .map(|t| t.duration_since(started).as_secs())
        .collect();
    assert_eq!(tries, [0, 1, 3, 7, 15]);
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(last.result, "partial");
    assert_eq!(last.retry_in_ms, Some(16_000));
    assert!(last.errors[0].contains("ENOMEM"), "{:?}", last.errors);

    kernel.with(|k| k.clear_faults());
    sleep(Duration::from_secs(17)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    assert_eq!(status(&dir).last_reconcile.unwrap().result, "ok");
    d.stop().await;
}

/// A director with a VIP interface, an address service, a fwmark service fed by a MARK rule
/// and a bystander, for the failed-replacement tests.
const REPLACING: &str = "
director:
  vip_interface: lvs0
services:
  - name: web
    vip: 10.0.0.1
    port: 80
    real_servers: [{address: 10.0.1.1}, {address: 10.0.1.2}]
  - name: grouped
    fwmark: 10
    match: [{vip: 10.0.0.5, ports: [80, 22]}]
    persistence: 60
    real_servers: [{address: 10.0.1.1}]
  - name: dns
    protocol: udp
    vip: 10.0.0.2
    port: 53
    real_servers: [{address: 10.0.2.1}]
";

fn enomem() -> BackendError {
    BackendError::Kernel {
        op: "the test's failing step".into(),
        errno: Errno::Other(12),
        message: "out of memory (ENOMEM)".into(),
    }
}

/// The MARK rules in the kernel, as `VIP [ports] -> mark`.
fn mark_rules(state: &State) -> Vec<String> {
    state
        .marks
        .values()
        .flat_map(|c| c.rules.iter())
        .map(|r| format!("{} {:?} -> {}", r.vip, r.ports, r.mark))
        .collect()
}

/// Starts a daemon on REPLACING, converged, then makes every op `fail` matches fail and
/// switches the manifest to `after`. Returns the state before the switch.
async fn replace_with_faults(
    name: &str,
    after: &str,
    fail: impl Fn(&Op) -> bool + Send + Sync + 'static,
) -> (PathBuf, Kernel, Running, State) {
    let dir = tempdir(name);
    write(&dir, REPLACING);
    let kernel = Kernel::default();
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let before = kernel.state();
    assert_eq!(before, desired(REPLACING));
    kernel.with(|k| {
        k.fail_when(fail, enomem());
    });
    write(&dir, after);
    d.events.send(()).unwrap();
    (dir, kernel, d, before)
}

/// Once the faults are gone the director converges to `after` (backoff is at most 60 s).
async fn converges_once_faults_clear(kernel: &Kernel, d: Running, after: &str) {
    kernel.with(|k| k.clear_faults());
    sleep(Duration::from_secs(70)).await;
    assert_eq!(kernel.state(), desired(after));
    d.stop().await;
}

/// A replacement (`-/+`) whose new service cannot be set up leaves the old one serving: the
/// old service, the MARK rules that feed it and its VIP all stay until the new one exists,
/// through every retry.
#[tokio::test(start_paused = true)]
async fn a_failed_replacement_keeps_the_old_service_its_marks_and_its_vip() {
    let after = REPLACING
        .replace("vip: 10.0.0.1", "vip: 10.0.0.3")
        .replace("fwmark: 10", "fwmark: 11");
    let new_services = [svc("tcp/10.0.0.3:80"), svc("fwmark/11")];
    let (dir, kernel, d, before) = replace_with_faults(
        "replace-fails",
        &after,
        move |op| matches!(op, Op::AddService { key, .. } if new_services.contains(key)),
    )
    .await;
    sleep(Duration::from_secs(20)).await;
    // Nothing of the old director went: services, real servers, MARK rules and VIPs. Only
    // the new VIP is there already (VIPs come first, so services can use them).
    let mut expected = before.clone();
    if let Some(v) = expected.vips.as_mut() {
        v.owned.insert("10.0.0.3".parse().unwrap());
    }
    assert_eq!(kernel.state(), expected);
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(last.result, "partial");

    converges_once_faults_clear(&kernel, d, &after).await;
}

/// The new service is made but its real servers fail: on the retries the new service exists,
/// so nothing pairs it with the old one any more; the old one must stay all the same.
#[tokio::test(start_paused = true)]
async fn a_replacement_whose_real_servers_fail_keeps_the_old_service_through_retries() {
    let after = REPLACING.replace("port: 80\n", "port: 8080\n");
    let new = svc("tcp/10.0.0.1:8080");
    let (_dir, kernel, d, _) = replace_with_faults(
        "replace-dests-fail",
        &after,
        move |op| matches!(op, Op::AddDest { service, .. } if *service == new),
    )
    .await;
    sleep(Duration::from_secs(20)).await;
    let state = kernel.state();
    assert_eq!(
        state
            .services
            .get(&svc("tcp/10.0.0.1:80"))
            .map(|s| s.dests.len()),
        Some(2),
        "the old service went while its replacement has no real server"
    );
    converges_once_faults_clear(&kernel, d, &after).await;
}

/// A fwmark replacement whose match changes too: the old rules would be removed before the
/// services are touched, as traffic nothing marks any more. They stay while it fails, so the
/// kept service is still fed; and a new fwmark service on new traffic gets its rule meanwhile.
#[tokio::test(start_paused = true)]
async fn a_failed_fwmark_replacement_keeps_its_rules_and_others_still_get_theirs() {
    let after = format!(
        "{}  - name: other\n    fwmark: 20\n    match: [{{vip: 10.0.0.6, ports: [443]}}]\n    \
         real_servers: [{{address: 10.0.3.1}}]\n",
        REPLACING.replace("fwmark: 10", "fwmark: 11").replace(
            "{vip: 10.0.0.5, ports: [80, 22]}",
            "{vip: 10.0.0.7, ports: [8080]}"
        )
    );
    let new = svc("fwmark/11");
    let (_dir, kernel, d, _) = replace_with_faults(
        "replace-fwmark",
        &after,
        move |op| matches!(op, Op::AddService { key, .. } if *key == new),
    )
    .await;
    sleep(Duration::from_secs(20)).await;
    let state = kernel.state();
    assert!(state.services.contains_key(&svc("fwmark/10")));
    assert!(state.services.contains_key(&svc("fwmark/20")));
    assert_eq!(
        mark_rules(&state),
        [
            "10.0.0.5 [22, 80] -> 10",
            "10.0.0.6 [443] -> 20",
            "10.0.0.7 [8080] -> 11"
        ],
        "the kept service's rule, and the rules for traffic nothing marked yet"
    );
    let vips = &state.vips.as_ref().unwrap().owned;
    assert!(vips.contains(&"10.0.0.5".parse().unwrap()), "{vips:?}");
    converges_once_faults_clear(&kernel, d, &after).await;
}

/// A VIP move whose new VIP cannot be added: the old service stays on the old VIP.
#[tokio::test(start_paused = true)]
async fn a_vip_move_whose_new_vip_fails_keeps_the_old_service() {
    let after = REPLACING.replace("vip: 10.0.0.1", "vip: 10.0.0.3");
    let (_dir, kernel, d, _) = replace_with_faults(
        "replace-vip-fails",
        &after,
        |op| matches!(op, Op::AddVip { addr, .. } if addr.to_string() == "10.0.0.3"),
    )
    .await;
    sleep(Duration::from_secs(20)).await;
    let state = kernel.state();
    assert!(state.services.contains_key(&svc("tcp/10.0.0.1:80")));
    let vips = &state.vips.as_ref().unwrap().owned;
    assert!(vips.contains(&"10.0.0.1".parse().unwrap()), "{vips:?}");
    converges_once_faults_clear(&kernel, d, &after).await;
}

/// A daemon on `yaml` whose checks of `server` fail, with no resync while a test runs.
fn start_with_one_down(name: &str, yaml: &str, server: &str) -> (PathBuf, Kernel, Health, Running) {
    let dir = tempdir(name);
    write(&dir, yaml);
    let kernel = Kernel::default();
    let health = Health::default();
    health.set_down(server, true);
    let mut c = config(&dir);
    c.resync_interval = Duration::from_secs(3600);
    let d = start(c, &kernel, &health);
    (dir, kernel, health, d)
}

/// A replacement takes its real servers' health along (peers.md §6 #3, "checker state lost
/// across reload"): the pass that creates the new service (a new mark for the same traffic, a
/// new VIP) or the new real servers (a NAT port change, checked on a fixed port) uses what the
/// same check says of them, instead of starting them down until their first check on the new
/// key: up to an interval with no real server while traffic is already sent there.
#[tokio::test(start_paused = true)]
async fn a_replacement_keeps_the_health_of_its_real_servers() {
    let before = "
director:
  vip_interface: lvs0
services:
  - name: grouped
    fwmark: 10
    match: [{vip: 10.0.0.5, ports: [80, 22]}]
    persistence: 60
    real_servers: [{address: 10.0.1.1}, {address: 10.0.1.2}]
    health: {tcp: {port: 22}, interval: 10s}
  - name: web
    vip: 10.0.0.1
    port: 80
    real_servers: [{address: 10.0.1.1}, {address: 10.0.1.3}]
    health: {tcp: {port: 22}, interval: 10s}
  - name: app
    vip: 10.0.0.8
    port: 80
    real_servers:
      - {address: 10.0.1.1, port: 8080, forward: nat}
      - {address: 10.0.1.2, port: 8080, forward: nat}
    health: {tcp: {port: 22}, interval: 10s}
  - name: dns
    protocol: udp
    vip: 10.0.0.2
    port: 53
    real_servers: [{address: 10.0.2.1}]
";
    let (dir, kernel, health, d) = start_with_one_down("replace-health", before, "10.0.1.3:80");
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.3:80"),
        None,
        "failed at startup"
    );
    let after = before
        .replace("fwmark: 10", "fwmark: 11")
        .replace("vip: 10.0.0.1", "vip: 10.0.0.3")
        .replace("port: 8080", "port: 8081");
    write(&dir, &after);
    d.events.send(()).unwrap();
    // Past the debounce, long before the next check (checks run every 10 s).
    sleep(Duration::from_secs(1)).await;
    let state = kernel.state();
    assert!(!state.services.contains_key(&svc("fwmark/10")));
    assert_eq!(mark_rules(&state), ["10.0.0.5 [22, 80] -> 11"]);
    let grouped = &state.services[&svc("fwmark/11")];
    assert_eq!(
        grouped
            .dests
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        ["10.0.1.1:0", "10.0.1.2:0"],
        "the new mark's service must not start without its healthy real servers"
    );
    // NAT real servers moved to another port, checked on the same one: no gap either.
    let app = &state.services[&svc("tcp/10.0.0.8:80")];
    assert_eq!(
        app.dests.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["10.0.1.1:8081", "10.0.1.2:8081"]
    );
    // The failed server stays out of the moved service until a check passes.
    let web = &state.services[&svc("tcp/10.0.0.3:80")];
    assert_eq!(
        web.dests.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["10.0.1.1:80"]
    );
    // Confirmed down before the move, it needs `rise` (2) passes to come back, as it would
    // have on the old key: not the first one.
    health.set_down("10.0.1.3:80", false);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.3:80", "10.0.1.3:80"),
        None,
        "back after one pass"
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.3:80", "10.0.1.3:80"),
        Some(1)
    );
    d.stop().await;
}

/// A service put in the kernel behind the daemon (as `lvsctl apply` does for a service new to
/// the manifest: the daemon has no verdict for it yet) with a server the same check finds
/// down elsewhere: the daemon takes it out at its next pass (peers.md §6 #1, a failed server
/// re-enabled without a check), not only after `fall` failures of the new check.
#[tokio::test(start_paused = true)]
async fn a_server_known_down_is_kept_out_of_a_service_added_behind_the_daemon() {
    let (dir, kernel, _health, d) = start_with_one_down("known-down", CHECKED, "10.0.1.2:80");
    sleep(Duration::from_millis(500)).await;
    let more = format!(
        "{CHECKED}{}",
        &CHECKED["\nservices:\n".len()..]
            .replace("name: web", "name: web2")
            .replace("vip: 10.0.0.1", "vip: 10.0.0.4")
    );
    // `lvsctl apply -f` of the new manifest: web2 as written, with both servers.
    kernel.with(|k| {
        let observed = k.observe().unwrap();
        for op in lvsctl_plan::plan(&desired(&more), &observed.state).ops {
            if matches!(&op, Op::AddService { key, .. } | Op::AddDest { service: key, .. }
                if *key == svc("tcp/10.0.0.4:80"))
            {
                k.execute(&op).unwrap();
            }
        }
    });
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.4:80", "10.0.1.2:80"),
        Some(7)
    );
    write(&dir, &more);
    d.events.send(()).unwrap();
    sleep(Duration::from_millis(400)).await;
    let state = kernel.state();
    assert_eq!(weight(&state, "tcp/10.0.0.4:80", "10.0.1.2:80"), None);
    assert_eq!(weight(&state, "tcp/10.0.0.4:80", "10.0.1.1:80"), Some(5));
    d.stop().await;
}

/// While a server drains the daemon looks every DRAIN_POLL; a failing operation elsewhere
/// must still be retried with backoff, not at that pace.
#[tokio::test(start_paused = true)]
async fn drain_polls_do_not_undo_the_retry_backoff() {
    let before = TWO_SERVICES.replace("    port: 80\n", "    port: 80\n    drain_timeout: 1h\n");
    let after = before
        .replace("      - {address: 10.0.1.2, weight: 7}\n", "")
        .replace(
            "      - {address: 10.0.2.1}\n",
            "      - {address: 10.0.2.1}\n      - {address: 10.0.2.2}\n",
        );
    let dir = tempdir("drain-backoff");
    write(&dir, &before);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    c.drain = true;
    c.resync_interval = Duration::from_secs(3600);
    let d = start(c, &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let bad = |op: &Op| matches!(op, Op::AddDest { key, .. } if key.addr.to_string() == "10.0.2.2");
    kernel.with(|k| {
        k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.2:80"), 5);
        k.fail_when(bad, enomem());
    });
    write(&dir, &after);
    d.events.send(()).unwrap();
    sleep(Duration::from_secs(120)).await;
    // The server drains (weight 0) and the failing add is retried after 1, 2, 4, ... 60 s:
    // 7 tries in 120 s, not one per poll.
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(0)
    );
    let tries = kernel.attempts_at(bad).len();
    assert!((6..=8).contains(&tries), "tried {tries} times in 120 s");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_observe_is_retried() {
    let dir = tempdir("observe");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    kernel.with(|k| {
        k.fail_next_observe(BackendError::Unavailable("netlink: no IPVS family".into()));
    });
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_millis(500)).await;
    assert_eq!(kernel.attempts(), 0);
    assert_eq!(status(&dir).last_reconcile.unwrap().result, "failed");
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_or_missing_manifest_changes_nothing() {
    let dir = tempdir("corrupt");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let before = kernel.attempts();

    // A half-written file (cut mid-line) and a reload.
    let half = &TWO_SERVICES[..TWO_SERVICES.find("weight: 7").unwrap() + 3];
    std::fs::write(dir.join("lvsctl.yaml"), half).unwrap();
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.attempts(), before);
    let s = status(&dir);
    assert!(!s.manifest.ok);
    assert!(s.manifest.error.is_some());
    assert_eq!(d.metric("lvsctl_manifest_valid"), 0.0);

    // Deleted: still the last good manifest, even through a resync.
    std::fs::remove_file(dir.join("lvsctl.yaml")).unwrap();
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(35)).await;
    assert_eq!(kernel.attempts(), before);
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    assert!(status(&dir).manifest.error.unwrap().contains("lvsctl.yaml"));

    // A valid manifest with no services: section would empty the table: refused as invalid.
    write(&dir, "realserver:\n  vips: [10.0.0.1]\n");
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.attempts(), before);

    // Re-created with a change: followed.
    let changed = TWO_SERVICES.replace("weight: 7", "weight: 9");
    write(&dir, &changed);
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.state(), desired(&changed));
    assert!(status(&dir).manifest.ok);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_manifest_at_startup_leaves_the_kernel_alone() {
    let dir = tempdir("invalid-start");
    std::fs::write(dir.join("lvsctl.yaml"), "services:\n  - name: [oops\n").unwrap();
    let kernel = Kernel::default();
    kernel.with(|k| {
        *k = FakeKernel::from_state(desired(TWO_SERVICES));
    });
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(40)).await;
    assert_eq!(kernel.attempts(), 0);
    assert_eq!(status(&dir).last_reconcile.unwrap().result, "waiting");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_plan_deleting_every_service_is_refused() {
    let dir = tempdir("destroy");
    write(&dir, "services: []\n");
    let kernel = Kernel::default();
    kernel.with(|k| *k = FakeKernel::from_state(desired(TWO_SERVICES)));
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.attempts(), 0);
    assert_eq!(status(&dir).last_reconcile.unwrap().result, "refused");
    d.stop().await;

    let mut c = config(&dir);
    c.allow_destroy = true;
    let d = start(c, &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    assert!(kernel.state().services.is_empty());
    d.stop().await;
}

/// The VIP interface follows the manifest in force: told once at the first pass, again when a
/// manifest names another one, and not on every pass.
#[tokio::test(start_paused = true)]
async fn the_vip_interface_follows_the_manifest() {
    let dir = tempdir("vip-interface");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(*kernel.vip_told.lock().unwrap(), [None]);
    write(
        &dir,
        &format!("director:\n  vip_interface: lvs7\n{TWO_SERVICES}"),
    );
    d.events.send(()).unwrap();
    sleep(Duration::from_secs(70)).await;
    assert_eq!(
        *kernel.vip_told.lock().unwrap(),
        [None, Some("lvs7".to_owned())]
    );
    // The node becomes a real server too: the backend learns which interface holds that
    // side's VIPs (never the director's to move).
    write(
        &dir,
        &format!(
            "director:\n  vip_interface: lvs7\n{TWO_SERVICES}realserver:\n  vips: [10.0.0.9]\n  interface: rs0\n"
        ),
    );
    d.events.send(()).unwrap();
    sleep(Duration::from_secs(70)).await;
    assert_eq!(
        *kernel.vip_told.lock().unwrap(),
        [None, Some("lvs7".to_owned()), Some("lvs7".to_owned())]
    );
    assert_eq!(
        *kernel.realserver_told.lock().unwrap(),
        [None, None, Some("rs0".to_owned())]
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_file_events_is_debounced_into_one_pass() {
    let dir = tempdir("debounce");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let changed = TWO_SERVICES.replace("weight: 7", "weight: 8");
    write(&dir, &changed);
    for _ in 0..20 {
        d.events.send(()).unwrap();
        sleep(Duration::from_millis(50)).await;
    }
    // Still inside the burst (+ 200 ms quiet): not read yet.
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(7)
    );
    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(8)
    );
    assert_eq!(
        d.metric("lvsctl_reconcile_passes_total{result=\"ok\"}"),
        2.0
    );

    // An endless stream of events cannot postpone the read past the cap (2 s).
    let again = TWO_SERVICES.replace("weight: 7", "weight: 6");
    write(&dir, &again);
    for _ in 0..30 {
        d.events.send(()).unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(6)
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_file_changed_moments_ago_is_not_trusted_yet() {
    let dir = tempdir("settle");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    // Longer than this test's real run time: every read sees a "fresh" file until the cap.
    c.settle = Duration::from_secs(3600);
    // The loop runs on this thread (a current-thread runtime), so its logs come here.
    let logs = LogBuffer::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let d = start(c, &kernel, &Health::default());
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(kernel.attempts(), 0, "read before the file settled");
    // Past the debounce cap too: a file that may still be being written is never read (a
    // truncated manifest is often valid and would delete the services it lost).
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        kernel.attempts(),
        0,
        "read a file still changing after the cap"
    );
    // Said once for the whole wait, not at every look.
    assert_eq!(
        logs.text()
            .matches("the manifest files keep changing")
            .count(),
        1,
        "{}",
        logs.text()
    );
    // Once it has stood still, it is read.
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(dir.join("lvsctl.yaml"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
    d.stop().await;
}

/// Drained servers leave on their own schedule, not at the next resync (an hour away here): an
/// idle one within [`DRAIN_POLL`], a busy one when its `drain_timeout` is up.
#[tokio::test(start_paused = true)]
async fn drained_servers_leave_when_idle_or_at_drain_timeout() {
    let dir = tempdir("drain");
    let yaml = TWO_SERVICES.replace("    port: 80\n", "    port: 80\n    drain_timeout: 10s\n");
    write(&dir, &yaml);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    c.drain = true;
    c.resync_interval = Duration::from_secs(3600);
    let d = start(c, &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    kernel.with(|k| {
        k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.1:80"), 4);
        k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.2:80"), 2);
    });
    let removed = yaml
        .replace("      - {address: 10.0.1.1, weight: 5}\n", "")
        .replace(
            "      - {address: 10.0.1.2, weight: 7}\n",
            "      - {address: 10.0.1.3}\n",
        );
    write(&dir, &removed);
    d.reload.send(()).unwrap();
    let drain_started = Instant::now();
    sleep(Duration::from_millis(100)).await;
    let state = kernel.state();
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.1:80"), Some(0));
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.2:80"), Some(0));
    assert_eq!(status(&dir).draining.len(), 2);

    // One goes idle: deleted by the next look at the drains, with no reload or resync.
    kernel.with(|k| k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.2:80"), 0));
    sleep(DRAIN_POLL + Duration::from_millis(100)).await;
    let state = kernel.state();
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.2:80"), None);
    assert_eq!(weight(&state, "tcp/10.0.0.1:80", "10.0.1.1:80"), Some(0));

    // The other, still busy, stays until its drain_timeout (10 s) and not a moment longer.
    sleep_until(drain_started + Duration::from_millis(9_900)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(0)
    );
    sleep_until(drain_started + Duration::from_millis(10_100)).await;
    assert_eq!(kernel.state(), desired(&removed));
    assert!(status(&dir).draining.is_empty());
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(
        (last.trigger.as_str(), last.result.as_str()),
        ("drain", "ok")
    );
    assert_eq!(d.metric("lvsctl_drift_repairs_total"), 0.0);
    d.stop().await;
}

/// A daemon restarted in the middle of a drain neither forgets the drained server at weight 0
/// (kubernetes#92019, #108319: black-holed after a kube-proxy restart) nor restores it: the new
/// daemon deletes it at its drain_timeout, and a server wanted again gets its weight back.
#[tokio::test(start_paused = true)]
async fn a_restart_mid_drain_finishes_the_drain_or_restores_the_weight() {
    let dir = tempdir("drain-restart");
    let yaml = TWO_SERVICES.replace("    port: 80\n", "    port: 80\n    drain_timeout: 10s\n");
    write(&dir, &yaml);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    c.drain = true;
    c.resync_interval = Duration::from_secs(3600);
    let d = start(c.clone(), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    kernel.with(|k| {
        k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.1:80"), 4);
        k.set_active_conns(svc("tcp/10.0.0.1:80"), rs("10.0.1.2:80"), 4);
    });
    let removed = yaml.replace("      - {address: 10.0.1.1, weight: 5}\n", "");
    write(&dir, &removed);
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(0)
    );
    d.stop().await;

    // Restarted mid-drain: still busy, so it stays at weight 0 until the drain_timeout,
    // counted from the new daemon's first pass, and is then deleted.
    let d = start(c.clone(), &kernel, &Health::default());
    let restarted = Instant::now();
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(0)
    );
    sleep_until(restarted + Duration::from_millis(10_500)).await;
    assert_eq!(kernel.state(), desired(&removed));
    d.stop().await;

    // Restarted mid-drain of a server the manifest wants again: its weight comes back.
    let d = start(c.clone(), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let removed2 = yaml.replace("      - {address: 10.0.1.2, weight: 7}\n", "");
    write(&dir, &removed2);
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(0)
    );
    d.stop().await;
    write(&dir, &yaml);
    let d = start(c, &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.2:80"),
        Some(7)
    );
    assert_eq!(kernel.state(), desired(&yaml));
    d.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_pass_in_flight() {
    let dir = tempdir("shutdown");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *kernel.gate.lock().unwrap() = Some(Gate {
        entered: entered_tx,
        release: release_rx,
    });
    let d = start(config(&dir), &kernel, &Health::default());
    let Running { task, shutdown, .. } = d;
    // From another thread: once the first op is in the kernel's hands, ask to stop, then let
    // every op through.
    let helper = std::thread::spawn(move || {
        entered_rx.recv().unwrap();
        shutdown.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..100 {
            let _ = release_tx.send(());
        }
    });
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    helper.join().unwrap();
    // The whole pass ran although the stop came during its first operation.
    assert_eq!(kernel.state(), desired(TWO_SERVICES));
}

#[tokio::test(start_paused = true)]
async fn unmanaged_services_are_never_touched() {
    let dir = tempdir("unmanaged");
    let yaml = format!("director:\n  unmanaged: [{{cidr: 10.9.9.9/32}}]\n{TWO_SERVICES}");
    write(&dir, &yaml);
    let mut foreign = desired(TWO_SERVICES);
    let other = foreign.services[&svc("udp/10.0.0.2:53")].clone();
    foreign.services.clear();
    foreign.services.insert(svc("udp/10.9.9.9:53"), other);
    let kernel = Kernel::default();
    kernel.with(|k| *k = FakeKernel::from_state(foreign));
    let d = start(config(&dir), &kernel, &Health::default());
    sleep(Duration::from_secs(1)).await;
    let state = kernel.state();
    assert!(state.services.contains_key(&svc("udp/10.9.9.9:53")));
    assert_eq!(state.services.len(), 3);
    d.stop().await;
}

/// Waits (bounded, real time) for the watcher to report a change.
async fn event(rx: &mut mpsc::UnboundedReceiver<()>, what: &str) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no file event after {what}"))
        .unwrap();
    // Swallow the rest of the burst.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while rx.try_recv().is_ok() {}
}

async fn quiet(rx: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    while rx.try_recv().is_ok() {}
}

#[tokio::test]
async fn watcher_sees_rename_over_delete_recreate_and_ignores_reads() {
    let dir = tempdir("watch-file");
    let file = dir.join("lvsctl.yaml");
    std::fs::write(&file, "a").unwrap();
    let (_w, mut rx) = ManifestWatcher::new(std::slice::from_ref(&file)).unwrap();
    quiet(&mut rx).await;

    // Our own reads (open/close without writing) are not changes.
    for _ in 0..5 {
        std::fs::read_to_string(&file).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "reading the manifest was reported as a change"
    );

    std::fs::write(dir.join(".lvsctl.yaml.swp"), "x").unwrap();
    std::fs::write(dir.join("unrelated.txt"), "x").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "an unrelated file was reported");

    std::fs::write(dir.join("new.tmp"), "b").unwrap();
    std::fs::rename(dir.join("new.tmp"), &file).unwrap();
    event(&mut rx, "rename over").await;

    std::fs::remove_file(&file).unwrap();
    event(&mut rx, "delete").await;
    std::fs::write(&file, "c").unwrap();
    event(&mut rx, "re-create").await;

    // In place (a partial write is also seen; the daemon then refuses what does not parse).
    std::fs::write(&file, "services:\n  - na").unwrap();
    event(&mut rx, "in-place write").await;
}

#[tokio::test]
async fn watcher_follows_kubernetes_style_symlink_swaps() {
    // /etc/lvsctl/lvsctl.yaml -> ..data/lvsctl.yaml, ..data -> ..2024_01, swapped atomically.
    let dir = tempdir("watch-k8s");
    let v1 = dir.join("..2024_01");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("lvsctl.yaml"), "v1").unwrap();
    std::os::unix::fs::symlink("..2024_01", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/lvsctl.yaml", dir.join("lvsctl.yaml")).unwrap();
    let file = dir.join("lvsctl.yaml");
    let (mut w, mut rx) = ManifestWatcher::new(std::slice::from_ref(&file)).unwrap();
    quiet(&mut rx).await;

    let v2 = dir.join("..2024_02");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("lvsctl.yaml"), "v2").unwrap();
    std::os::unix::fs::symlink("..2024_02", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    event(&mut rx, "..data swap").await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v2");
    w.refresh();

    // And a second swap after the re-arm.
    let v3 = dir.join("..2024_03");
    std::fs::create_dir(&v3).unwrap();
    std::fs::write(v3.join("lvsctl.yaml"), "v3").unwrap();
    std::os::unix::fs::symlink("..2024_03", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    event(&mut rx, "second ..data swap").await;
}

#[tokio::test]
async fn watcher_follows_a_symlink_into_a_repository_and_directories() {
    let dir = tempdir("watch-repo");
    let repo = dir.join("repo");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(repo.join("director.yaml"), "v1").unwrap();
    std::os::unix::fs::symlink(repo.join("director.yaml"), etc.join("lvsctl.yaml")).unwrap();
    let (w, mut rx) = ManifestWatcher::new(&[etc.join("lvsctl.yaml")]).unwrap();
    assert!(w.watched().contains(&std::fs::canonicalize(&repo).unwrap()));
    quiet(&mut rx).await;
    // `git checkout` replaces the file in the repository.
    std::fs::remove_file(repo.join("director.yaml")).unwrap();
    std::fs::write(repo.join("director.yaml"), "v2").unwrap();
    event(&mut rx, "checkout in the repository").await;

    // A manifest directory: new files, renamed-in files, and the directory replaced.
    let mdir = dir.join("manifests");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(mdir.join("a.yaml"), "a").unwrap();
    let (mut w, mut rx) = ManifestWatcher::new(std::slice::from_ref(&mdir)).unwrap();
    quiet(&mut rx).await;
    std::fs::write(mdir.join("b.yaml"), "b").unwrap();
    event(&mut rx, "new file in the directory").await;
    let staged = dir.join("manifests.new");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("a.yaml"), "a2").unwrap();
    std::fs::remove_dir_all(&mdir).unwrap();
    std::fs::rename(&staged, &mdir).unwrap();
    event(&mut rx, "directory replaced").await;
    // The new directory gets its own watch.
    w.refresh();
    quiet(&mut rx).await;
    std::fs::write(mdir.join("c.yaml"), "c").unwrap();
    event(&mut rx, "new file in the replaced directory").await;

    // Deleted, then (after the daemon's failed read and refresh) made again, empty, and then
    // filled: each step is seen without waiting for a resync.
    std::fs::remove_dir_all(&mdir).unwrap();
    event(&mut rx, "directory deleted").await;
    w.refresh();
    quiet(&mut rx).await;
    std::fs::create_dir(&mdir).unwrap();
    event(&mut rx, "directory made again").await;
    w.refresh();
    quiet(&mut rx).await;
    std::fs::write(mdir.join("d.yaml"), "d").unwrap();
    event(&mut rx, "a file in the directory made again").await;
}

/// A directory back at its path with the same inode (moved away and back, or deleted and made
/// again: ext4 hands a freed inode number out again at once) lost its watch all the same.
#[tokio::test]
async fn watcher_rearms_a_directory_back_with_the_same_inode() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir("watch-same-inode");
    let mdir = dir.join("manifests");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(mdir.join("a.yaml"), "a").unwrap();
    let (mut w, mut rx) = ManifestWatcher::new(std::slice::from_ref(&mdir)).unwrap();
    quiet(&mut rx).await;

    // Moved away and back: certainly the same inode, on any filesystem.
    let aside = dir.join("manifests.aside");
    std::fs::rename(&mdir, &aside).unwrap();
    std::fs::rename(&aside, &mdir).unwrap();
    event(&mut rx, "directory moved away and back").await;
    w.refresh();
    quiet(&mut rx).await;
    std::fs::write(mdir.join("a.yaml"), "a2").unwrap();
    event(&mut rx, "an edit after the directory came back").await;

    // A deploy script's rm -rf, mkdir and copy, all before the daemon's debounced read.
    let before = std::fs::metadata(&mdir).unwrap().ino();
    std::fs::remove_dir_all(&mdir).unwrap();
    std::fs::create_dir(&mdir).unwrap();
    std::fs::write(mdir.join("a.yaml"), "a3").unwrap();
    // Not asserted (tmpfs, for one, does not reuse inode numbers); ext4 does.
    let reused = std::fs::metadata(&mdir).unwrap().ino() == before;
    event(&mut rx, "directory deleted and made again").await;
    w.refresh();
    quiet(&mut rx).await;
    std::fs::write(mdir.join("a.yaml"), "a4").unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap_or_else(|_| {
            panic!("no file event after an edit in the re-made directory (inode reused: {reused})")
        })
        .unwrap();
}

#[tokio::test]
async fn daemon_with_watcher_follows_edits_and_keeps_last_good_on_partial_writes() {
    let dir = tempdir("watch-daemon");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    c.settle = Duration::from_millis(100);
    c.debounce = Duration::from_millis(50);
    let mut daemon = Daemon::new(
        c.clone(),
        Box::new(kernel.clone()),
        Arc::new(Health::default()),
    );
    let (watcher, events) = ManifestWatcher::new(&c.manifests).unwrap();
    daemon.set_watcher(Some(watcher));
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run_until(
        Inputs {
            manifest_events: Some(events),
            reload: None,
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    let wait_for = |want: State| {
        let kernel = kernel.clone();
        async move {
            for _ in 0..200 {
                if kernel.state() == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("kernel never reached {want:?}");
        }
    };
    wait_for(desired(TWO_SERVICES)).await;

    let v2 = TWO_SERVICES.replace("weight: 7", "weight: 70");
    write(&dir, &v2);
    wait_for(desired(&v2)).await;

    let before = kernel.attempts();
    std::fs::write(dir.join("lvsctl.yaml"), &v2[..v2.len() / 2]).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(kernel.attempts(), before);
    assert!(!status(&dir).manifest.ok);

    let v3 = TWO_SERVICES.replace("weight: 5", "weight: 50");
    std::fs::write(dir.join("lvsctl.yaml"), &v3).unwrap();
    wait_for(desired(&v3)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// A held director lock (an `lvsctl apply` in flight) is waited for by polling between which
/// the loop stays live: it is not a failure until `lock_patience`, the pass runs soon after the
/// lock is free, and SIGTERM stops the daemon at once rather than after the wait.
#[tokio::test(start_paused = true)]
async fn a_held_lock_is_polled_without_holding_off_shutdown() {
    let dir = tempdir("lock");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    let path = dir.join("lock");
    c.lock_file = Some(path.clone());
    // Another open of the file holds it: flock locks conflict across open files, even within
    // one process.
    let held = std::fs::File::create(&path).unwrap();
    held.lock().unwrap();
    let d = start(c, &kernel, &Health::default());

    sleep(Duration::from_secs(5)).await;
    assert_eq!(kernel.attempts(), 0, "applied without the lock");
    assert!(
        std::fs::read_to_string(dir.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<StatusFile>(&t).ok())
            .and_then(|s| s.last_reconcile)
            .is_none_or(|r| r.result != "failed"),
        "a short wait for the lock counted as a failure"
    );
    // Past the patience: a failed pass, said in the status file.
    sleep(Duration::from_secs(6)).await;
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(last.result, "failed");
    assert!(
        last.errors[0].contains("lock") && last.errors[0].contains("gave up after waiting 10."),
        "{:?}",
        last.errors
    );

    // Free again: converged within the backoff (1 s) and a poll.
    held.unlock().unwrap();
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(kernel.state(), desired(TWO_SERVICES));

    // A pass that waited for the lock runs under its own trigger once it has it.
    held.lock().unwrap();
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    held.unlock().unwrap();
    sleep(Duration::from_millis(500)).await;
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(
        (last.trigger.as_str(), last.result.as_str()),
        ("reload", "ok")
    );

    // Held again while a pass wants it: stopping does not wait for the lock.
    held.lock().unwrap();
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    d.stop().await;
    assert!(
        asked.elapsed() < LOCK_POLL_MAX,
        "stopping took {:?} of (virtual) time",
        asked.elapsed()
    );
}

/// A retry pass that waited for the lock and then ran must not make the next SIGHUP skip
/// reading the manifests (its "resumed" mark was once left set by triggers that read none).
#[tokio::test(start_paused = true)]
async fn a_reload_after_a_retry_that_waited_for_the_lock_reads_the_manifest() {
    let dir = tempdir("resumed-retry");
    write(&dir, TWO_SERVICES);
    let kernel = Kernel::default();
    let mut c = config(&dir);
    let path = dir.join("lock");
    c.lock_file = Some(path.clone());
    c.resync_interval = Duration::from_secs(3600);
    let held = std::fs::File::create(&path).unwrap();
    held.lock().unwrap();
    let d = start(c, &kernel, &Health::default());
    // Past the patience: failed; the retry 1 s later finds the lock still held and waits.
    sleep(Duration::from_millis(10_600)).await;
    assert_eq!(status(&dir).last_reconcile.unwrap().result, "failed");
    sleep(Duration::from_millis(1000)).await;
    held.unlock().unwrap();
    sleep(Duration::from_millis(1000)).await;
    let last = status(&dir).last_reconcile.unwrap();
    assert_eq!(
        (last.trigger.as_str(), last.result.as_str()),
        ("retry", "ok")
    );
    assert_eq!(kernel.state(), desired(TWO_SERVICES));

    let edited = TWO_SERVICES.replace("weight: 5}", "weight: 9}");
    write(&dir, &edited);
    d.reload.send(()).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        weight(&kernel.state(), "tcp/10.0.0.1:80", "10.0.1.1:80"),
        Some(9),
        "SIGHUP did not re-read the manifest"
    );
    d.stop().await;
}

/// Longest a stop may take while a pass polls the lock: one poll.
const LOCK_POLL_MAX: Duration = Duration::from_millis(250);
