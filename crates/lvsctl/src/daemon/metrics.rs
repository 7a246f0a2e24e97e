//! Prometheus metrics (`--metrics ADDR`): reconcile passes, their duration and errors, drift
//! repairs, health per real server, and the kernel's per-service and per-real-server counters.
//!
//! Served by a deliberately tiny HTTP server: `GET /metrics` (or `HEAD`) and nothing else, a
//! bounded request size and read time, and a cap on concurrent connections, so the endpoint
//! cannot be used to do anything but read metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvsctl_health::{HealthReader, HealthState, Status};
use lvsctl_model::{Counters, Observed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

#[derive(Debug, Default, Clone)]
struct Data {
    passes: BTreeMap<&'static str, u64>,
    duration_buckets: Vec<u64>,
    duration_sum: f64,
    duration_count: u64,
    errors: u64,
    ops_applied: u64,
    ops_failed: u64,
    drift_repairs: u64,
    manifest_valid: bool,
    manifest_reloads: BTreeMap<&'static str, u64>,
    last_pass: f64,
    last_success: f64,
    /// Shared, so a render copies the rest of `Data` and lets go of the lock at once.
    observed: Option<Arc<Observed>>,
    /// Moves with every record, so a kept render is known to be out of date.
    generation: u64,
}

/// The daemon's metrics, shared between the loop (which records) and the server (which reads).
#[derive(Default)]
pub struct Metrics {
    data: Mutex<Data>,
    health: Mutex<Option<HealthReader>>,
    /// The last render, shared by every client that asks within [`RENDER_REUSE`]; its lock
    /// also lets only one render run at a time.
    rendered: tokio::sync::Mutex<Option<Rendered>>,
}

struct Rendered {
    at: std::time::Instant,
    generation: u64,
    body: Arc<String>,
}

/// How long one render serves every client that asks, while nothing was recorded since
/// (health counters may lag by as much; Prometheus scrapes every 15 s or so).
const RENDER_REUSE: Duration = Duration::from_secs(1);

/// What one reconcile pass did, for [`Metrics::record_pass`].
pub struct PassMetrics<'a> {
    /// `ok`, `partial`, `failed`, `refused` or `waiting`.
    pub result: &'static str,
    pub duration: Duration,
    pub applied: usize,
    pub failed: usize,
    /// Failed operations plus failed observes/locks.
    pub errors: usize,
    pub drift: usize,
    pub at_unix: f64,
    pub observed: Option<&'a Observed>,
}

impl Metrics {
    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_health(&self, reader: HealthReader) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Some(reader);
    }

    pub fn record_pass(&self, p: PassMetrics<'_>) {
        let mut d = self.data();
        *d.passes.entry(p.result).or_default() += 1;
        let secs = p.duration.as_secs_f64();
        if d.duration_buckets.len() != BUCKETS.len() {
            d.duration_buckets = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                d.duration_buckets[i] += 1;
            }
        }
        d.duration_sum += secs;
        d.duration_count += 1;
        d.errors += p.errors as u64;
        d.ops_applied += p.applied as u64;
        d.ops_failed += p.failed as u64;
        d.drift_repairs += p.drift as u64;
        d.last_pass = p.at_unix;
        if p.result == "ok" {
            d.last_success = p.at_unix;
        }
        if let Some(o) = p.observed {
            d.observed = Some(Arc::new(o.clone()));
        }
        d.generation += 1;
    }

    pub fn record_manifest(&self, ok: bool) {
        let mut d = self.data();
        d.manifest_valid = ok;
        *d.manifest_reloads
            .entry(if ok { "ok" } else { "error" })
            .or_default() += 1;
        d.generation += 1;
    }

    /// The exposition for a client: rendered on the blocking pool, never on the daemon's one
    /// thread (a big director's takes most of a second), at most one render at a time, and
    /// one render shared by the clients that ask within [`RENDER_REUSE`] while nothing changed.
    /// `None` if the render failed.
    async fn exposition(self: &Arc<Self>) -> Option<Arc<String>> {
        // In a task of its own: a client that gives up (its deadline) does not cancel the
        // render, which is kept for the next client instead of started again beside it.
        let me = Arc::clone(self);
        tokio::spawn(async move { me.render_or_reuse().await })
            .await
            .ok()
            .flatten()
    }

    async fn render_or_reuse(self: Arc<Self>) -> Option<Arc<String>> {
        let mut kept = self.rendered.lock().await;
        let generation = self.data().generation;
        if let Some(r) = kept.as_ref()
            && r.generation == generation
            && r.at.elapsed() < RENDER_REUSE
        {
            return Some(Arc::clone(&r.body));
        }
        let me = Arc::clone(&self);
        let body = Arc::new(
            tokio::task::spawn_blocking(move || me.render())
                .await
                .ok()?,
        );
        *kept = Some(Rendered {
            at: std::time::Instant::now(),
            generation,
            body: Arc::clone(&body),
        });
        Some(body)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let health = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(HealthReader::snapshot)
            .unwrap_or_default();
        // A copy: the loop records its passes under this lock and must never wait for a render.
        let d = self.data().clone();
        let mut out = String::with_capacity(4096);
        let o = &mut out;

        help(
            o,
            "lvsctl_reconcile_passes_total",
            "counter",
            "Reconcile passes by result.",
        );
        for result in ["ok", "partial", "failed", "refused", "waiting"] {
            let n = d.passes.get(result).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "lvsctl_reconcile_passes_total{{result=\"{result}\"}} {n}"
            );
        }
        help(
            o,
            "lvsctl_reconcile_duration_seconds",
            "histogram",
            "Duration of reconcile passes.",
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let n = d.duration_buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "lvsctl_reconcile_duration_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "lvsctl_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            d.duration_count
        );
        let _ = writeln!(
            o,
            "lvsctl_reconcile_duration_seconds_sum {}",
            d.duration_sum
        );
        let _ = writeln!(
            o,
            "lvsctl_reconcile_duration_seconds_count {}",
            d.duration_count
        );
        single(
            o,
            "lvsctl_reconcile_errors_total",
            "counter",
            "Failed kernel operations, observes and locks.",
            d.errors,
        );
        single(
            o,
            "lvsctl_applied_operations_total",
            "counter",
            "Kernel operations applied.",
            d.ops_applied,
        );
        single(
            o,
            "lvsctl_failed_operations_total",
            "counter",
            "Kernel operations that failed.",
            d.ops_failed,
        );
        single(
            o,
            "lvsctl_drift_repairs_total",
            "counter",
            "Operations that repaired changes made behind lvsctl's back.",
            d.drift_repairs,
        );
        single(
            o,
            "lvsctl_manifest_valid",
            "gauge",
            "1 when the last manifest read was valid (0: the last good one is enforced).",
            u64::from(d.manifest_valid),
        );
        help(
            o,
            "lvsctl_manifest_reloads_total",
            "counter",
            "Manifest reads by result.",
        );
        for result in ["ok", "error"] {
            let n = d.manifest_reloads.get(result).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "lvsctl_manifest_reloads_total{{result=\"{result}\"}} {n}"
            );
        }
        help(
            o,
            "lvsctl_last_reconcile_timestamp_seconds",
            "gauge",
            "When the last pass ended.",
        );
        let _ = writeln!(o, "lvsctl_last_reconcile_timestamp_seconds {}", d.last_pass);
        help(
            o,
            "lvsctl_last_success_timestamp_seconds",
            "gauge",
            "When the last fully successful pass ended.",
        );
        let _ = writeln!(
            o,
            "lvsctl_last_success_timestamp_seconds {}",
            d.last_success
        );

        help(
            o,
            "lvsctl_realserver_up",
            "gauge",
            "Health of a checked real server (1 up, 0 down).",
        );
        for (t, h) in &health {
            let _ = writeln!(
                o,
                "lvsctl_realserver_up{{service=\"{}\",server=\"{}\",check=\"{}\"}} {}",
                esc(&t.service.to_string()),
                esc(&t.server.to_string()),
                h.kind,
                u8::from(h.status == Status::Up)
            );
        }
        let per_server = [
            (
                "lvsctl_health_checks_total",
                "Health checks run per real server.",
                (|h| h.checks) as fn(&HealthState) -> u64,
            ),
            (
                "lvsctl_health_check_failures_total",
                "Failed health checks per real server.",
                |h| h.failures,
            ),
            (
                "lvsctl_health_checks_not_run_total",
                "Health checks the director could not run (out of sockets, memory, ports or processes); they count neither way.",
                |h| h.inconclusive,
            ),
        ];
        for (name, text, value) in per_server {
            help(o, name, "counter", text);
            for (t, h) in &health {
                let _ = writeln!(
                    o,
                    "{name}{{service=\"{}\",server=\"{}\"}} {}",
                    esc(&t.service.to_string()),
                    esc(&t.server.to_string()),
                    value(h)
                );
            }
        }

        if let Some(obs) = &d.observed {
            kernel_counters(o, obs);
        }
        out
    }
}

fn help(o: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(o, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn single(o: &mut String, name: &str, kind: &str, text: &str, v: u64) {
    help(o, name, kind, text);
    let _ = writeln!(o, "{name} {v}");
}

/// Escapes a label value (backslash, quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Kernel counters per service and per real server, from the last observe.
fn kernel_counters(o: &mut String, obs: &Observed) {
    type Field = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Counters) -> u64,
    );
    const FIELDS: &[Field] = &[
        (
            "connections_total",
            "counter",
            "Connections scheduled.",
            |c| c.conns,
        ),
        ("in_packets_total", "counter", "Packets in.", |c| {
            c.in_packets
        }),
        ("out_packets_total", "counter", "Packets out.", |c| {
            c.out_packets
        }),
        ("in_bytes_total", "counter", "Bytes in.", |c| c.in_bytes),
        ("out_bytes_total", "counter", "Bytes out.", |c| c.out_bytes),
        ("active_connections", "gauge", "Active connections.", |c| {
            u64::from(c.active_conns)
        }),
        (
            "inactive_connections",
            "gauge",
            "Inactive connections.",
            |c| u64::from(c.inactive_conns),
        ),
        (
            "persistent_connections",
            "gauge",
            "Persistence templates.",
            |c| u64::from(c.persist_conns),
        ),
        (
            "connections_per_second",
            "gauge",
            "Connection rate (kernel estimate).",
            |c| c.cps,
        ),
        (
            "in_bytes_per_second",
            "gauge",
            "Inbound byte rate (kernel estimate).",
            |c| c.in_bps,
        ),
        (
            "out_bytes_per_second",
            "gauge",
            "Outbound byte rate (kernel estimate).",
            |c| c.out_bps,
        ),
    ];
    for (suffix, kind, text, get) in FIELDS {
        let name = format!("lvsctl_ipvs_service_{suffix}");
        help(o, &name, kind, &format!("{text} Per IPVS service."));
        for (key, c) in &obs.counters {
            let _ = writeln!(
                o,
                "{name}{{service=\"{}\"}} {}",
                esc(&key.to_string()),
                get(&c.service)
            );
        }
    }
    for (suffix, kind, text, get) in FIELDS {
        let name = format!("lvsctl_ipvs_realserver_{suffix}");
        help(o, &name, kind, &format!("{text} Per real server."));
        for (key, c) in &obs.counters {
            for (dest, dc) in &c.dests {
                let _ = writeln!(
                    o,
                    "{name}{{service=\"{}\",server=\"{}\"}} {}",
                    esc(&key.to_string()),
                    esc(&dest.to_string()),
                    get(dc)
                );
            }
        }
    }
    help(
        o,
        "lvsctl_ipvs_realserver_weight",
        "gauge",
        "Weight of a real server in the kernel.",
    );
    for (key, svc) in &obs.state.services {
        for (dest, spec) in &svc.dests {
            let _ = writeln!(
                o,
                "lvsctl_ipvs_realserver_weight{{service=\"{}\",server=\"{}\"}} {}",
                esc(&key.to_string()),
                esc(&dest.to_string()),
                spec.weight
            );
        }
    }
}

/// Most connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// Longest request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            debug!(%peer, "too many metrics connections; closing");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(READ_TIMEOUT * 2, handle(stream, metrics)).await;
        });
    }
}

async fn handle(mut stream: TcpStream, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_complete = loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if buf.len() >= MAX_REQUEST {
            break false;
        }
        match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break false,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    };
    let text = |s: &str| Arc::new(s.to_owned());
    let (status, body) = if !head_complete {
        ("400 Bad Request", text("bad request\n"))
    } else {
        let line = String::from_utf8_lossy(&buf);
        let mut parts = line.lines().next().unwrap_or_default().split(' ');
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        match (method, path) {
            ("GET" | "HEAD", "/metrics") => match metrics.exposition().await {
                Some(body) => ("200 OK", body),
                None => (
                    "500 Internal Server Error",
                    text("cannot render the metrics; see the daemon's log\n"),
                ),
            },
            (_, "/metrics") => ("405 Method Not Allowed", text("only GET\n")),
            _ => (
                "404 Not Found",
                text("not found; metrics are at /metrics\n"),
            ),
        }
    };
    let head_only = buf.starts_with(b"HEAD ");
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lvsctl_model::{ServiceCounters, State};

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_only_metrics() {
        let metrics = Arc::new(Metrics::default());
        let mut obs = Observed {
            state: State::default(),
            counters: BTreeMap::new(),
        };
        let mut sc = ServiceCounters::default();
        sc.service.conns = 42;
        sc.dests.insert(
            "10.0.1.1:80".parse().unwrap(),
            Counters {
                active_conns: 3,
                ..Counters::default()
            },
        );
        obs.counters.insert("tcp/10.0.0.1:80".parse().unwrap(), sc);
        metrics.record_pass(PassMetrics {
            result: "ok",
            duration: Duration::from_millis(3),
            applied: 2,
            failed: 0,
            errors: 0,
            drift: 1,
            at_unix: 10.0,
            observed: Some(&obs),
        });
        metrics.record_manifest(true);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::clone(&metrics)));

        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("lvsctl_reconcile_passes_total{result=\"ok\"} 1\n"),
            "{r}"
        );
        assert!(r.contains("lvsctl_drift_repairs_total 1\n"), "{r}");
        assert!(
            r.contains("lvsctl_reconcile_duration_seconds_bucket{le=\"0.005\"} 1\n"),
            "{r}"
        );
        assert!(
            r.contains("lvsctl_ipvs_service_connections_total{service=\"tcp/10.0.0.1:80\"} 42\n"),
            "{r}"
        );
        assert!(r.contains("lvsctl_ipvs_realserver_active_connections{service=\"tcp/10.0.0.1:80\",server=\"10.0.1.1:80\"} 3\n"), "{r}");
        assert!(r.contains("lvsctl_manifest_valid 1\n"), "{r}");

        let r = get(addr, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = get(addr, "GET /metrics/../etc/passwd HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        let r = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        // Exactly the limit and no end of head: refused, with nothing left unread (which would
        // turn the close into a reset).
        let start = "GET /metrics HTTP/1.1\r\nX: ";
        let huge = format!("{start}{}", "a".repeat(MAX_REQUEST - start.len()));
        let r = get(addr, &huge).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    }

    /// A director with `services` services of `dests` real servers each, all with counters.
    fn big_director(services: u32, dests: u32) -> Observed {
        let mut obs = Observed::default();
        for s in 0..services {
            let key: lvsctl_model::ServiceKey = format!("tcp/10.{}.{}.1:80", s / 250, s % 250)
                .parse()
                .unwrap();
            let mut svc = lvsctl_model::Service::default();
            let mut sc = ServiceCounters::default();
            for d in 0..dests {
                let dk: lvsctl_model::DestKey = format!("192.168.{}.{}:80", d / 250, d % 250 + 1)
                    .parse()
                    .unwrap();
                svc.dests.insert(dk, lvsctl_model::DestSpec::default());
                sc.dests.insert(dk, Counters::default());
            }
            obs.state.services.insert(key, svc);
            obs.counters.insert(key, sc);
        }
        obs
    }

    /// The endpoint shares the daemon's only runtime thread with the loop and every health
    /// check: a render (most of a second for a big director) must never run on it. The render
    /// here waits for the health lock, which another thread holds until the daemon's loop,
    /// on the runtime thread, says it ran: a render on that thread would block the loop, and
    /// the lock would only be let go by the deadlock fallback.
    #[test]
    fn a_render_never_runs_on_the_daemon_thread() {
        let (metrics, held, releaser, rt) = with_health_lock_held();
        rt.block_on(async {
            let client = tokio::spawn({
                let m = Arc::clone(&metrics);
                async move { m.exposition().await }
            });
            // The client starts its render first.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let _ = releaser.send("the daemon's loop");
            assert!(client.await.unwrap().is_some());
        });
        assert_eq!(held.join().unwrap(), "the daemon's loop");
    }

    /// A client that gives up while the render runs (its connection deadline) leaves the
    /// render to finish and be kept for the next client, instead of dropping it and letting
    /// the next one start another beside it.
    #[test]
    fn a_render_outlives_the_client_that_asked_for_it() {
        let (metrics, held, releaser, rt) = with_health_lock_held();
        rt.block_on(async {
            let gave_up =
                tokio::time::timeout(Duration::from_millis(50), metrics.exposition()).await;
            assert!(
                gave_up.is_err(),
                "the render cannot finish while the lock is held"
            );
            let _ = releaser.send("the test");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while metrics.rendered.lock().await.is_none() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the abandoned render was never kept"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(held.join().unwrap(), "the test");
    }

    /// Metrics with one pass recorded, whose health lock a thread of its own holds until told
    /// who lets it go (or, as a deadlock fallback, 10 s pass; the thread's result says who
    /// did), and a runtime with one thread, as the daemon has.
    fn with_health_lock_held() -> (
        Arc<Metrics>,
        std::thread::JoinHandle<&'static str>,
        std::sync::mpsc::Sender<&'static str>,
        tokio::runtime::Runtime,
    ) {
        let metrics = Arc::new(Metrics::default());
        metrics.record_pass(pass(&big_director(10, 2)));
        let (release, released) = std::sync::mpsc::channel();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let m = Arc::clone(&metrics);
        let holder = std::thread::spawn(move || {
            let _guard = m.health.lock().unwrap();
            locked.send(()).unwrap();
            released
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or("nobody: the daemon thread was blocked")
        });
        is_locked.recv().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (metrics, holder, release, rt)
    }

    fn pass(obs: &Observed) -> PassMetrics<'_> {
        PassMetrics {
            result: "ok",
            duration: Duration::from_millis(3),
            applied: 0,
            failed: 0,
            errors: 0,
            drift: 0,
            at_unix: 10.0,
            observed: Some(obs),
        }
    }

    /// A director out of file descriptors: every check fails locally.
    struct OutOfFds;
    impl lvsctl_health::Prober for OutOfFds {
        fn probe(
            &self,
            _: &lvsctl_health::Target,
            _: &lvsctl_health::CheckConfig,
        ) -> lvsctl_health::ProbeFuture {
            Box::pin(async {
                Err(lvsctl_health::CheckError::Local {
                    during: "connecting to 10.0.1.1:80".into(),
                    source: std::io::Error::from_raw_os_error(libc::EMFILE),
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn health_counters_per_real_server_include_checks_not_run() {
        let (monitor, _transitions) = lvsctl_health::Monitor::new(Arc::new(OutOfFds));
        let mut monitor = monitor.with_spread(Duration::ZERO);
        let target = lvsctl_health::Target {
            service: "tcp/10.0.0.1:80".parse().unwrap(),
            server: "10.0.1.1:80".parse().unwrap(),
        };
        let config = lvsctl_health::CheckConfig {
            probe: lvsctl_health::Probe::Tcp(lvsctl_health::TcpProbe { port: None }),
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(10),
            rise: 1,
            fall: 1,
        };
        monitor.reconcile([(target, config, Status::Up)]);
        let reader = monitor.reader();
        // Virtual time: 10 s of it is 500 check intervals.
        for _ in 0..1000 {
            if reader.snapshot().get(&target).map_or(0, |h| h.inconclusive) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            reader.snapshot().get(&target).map_or(0, |h| h.inconclusive) >= 3,
            "no checks ran in 10 s of virtual time"
        );
        let metrics = Metrics::default();
        metrics.set_health(reader);
        let r = metrics.render();
        let labels = "{service=\"tcp/10.0.0.1:80\",server=\"10.0.1.1:80\"}";
        let value = |name: &str| -> u64 {
            let prefix = format!("{name}{labels} ");
            let line = r
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{name} missing:\n{r}"));
            line[prefix.len()..].parse().unwrap()
        };
        // Checks that could not run change nothing: still up, no failures, all counted.
        assert!(r.contains("lvsctl_realserver_up{service=\"tcp/10.0.0.1:80\",server=\"10.0.1.1:80\",check=\"tcp\"} 1\n"), "{r}");
        assert_eq!(value("lvsctl_health_check_failures_total"), 0, "{r}");
        assert!(value("lvsctl_health_checks_not_run_total") >= 3, "{r}");
        assert!(
            value("lvsctl_health_checks_total") >= value("lvsctl_health_checks_not_run_total"),
            "{r}"
        );
        assert!(
            r.contains("# TYPE lvsctl_health_checks_not_run_total counter\n"),
            "{r}"
        );
    }
}
