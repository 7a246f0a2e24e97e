//! How much CPU does checking many real servers cost? Starts N tiny HTTP servers on loopback
//! addresses (127.1.x.y:8080) in a child process, checks each of them every second from this
//! process with the real [`NetProber`], and reports this process's CPU use as a share of one core.
//!
//! ```text
//! cargo run --release -p lvsctl-health --example health_cpu -- [SERVERS] [SECONDS] [http|http-close|tcp]
//! ```
//!
//! Measured on the project's 2-vCPU machine (load 1-3, 20 s runs), 1,000 real servers every
//! second: http with the default keep-alive 2.4-2.6% of one core, `http-close` (a connection per
//! check, as before keep-alive) 7.9-8.4%, tcp 6.3-6.6%. With a connection per check most of the
//! cost is the kernel's TCP work: over loopback the kernel runs both ends of each connection (the
//! server side's handshake and RST handling included) in this process's context, so that figure
//! overstates what checking real servers on a network costs.
//! What keeps it low: kept connections (http), checks start on a 25 ms slot grid (one wake-up
//! per slot, not per check), one runtime thread, and connections closed with RST (no FIN
//! exchange, no TIME_WAIT).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvsctl_health::{CheckConfig, HttpProbe, Monitor, NetProber, Probe, Status, Target, TcpProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PORT: u16 = 8080;

fn addr(i: usize) -> SocketAddr {
    let (hi, lo) = (i / 200, i % 200 + 1);
    let (Ok(hi), Ok(lo)) = (u8::try_from(hi), u8::try_from(lo)) else {
        panic!("at most 50000 servers");
    };
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo)), PORT)
}

/// CPU time (user + system) of this process so far. /proc reports clock ticks of USER_HZ,
/// which is 100 on Linux whatever the kernel's HZ.
fn cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| Duration::from_millis(fields[i].parse::<u64>().expect("cpu ticks") * 10);
    (ticks(11), ticks(12))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let n = args[2].parse().expect("server count");
        serve(n);
        return;
    }
    let n: usize = args.get(1).map_or(1000, |s| s.parse().expect("SERVERS"));
    let seconds: u64 = args.get(2).map_or(10, |s| s.parse().expect("SECONDS"));
    let kind = args.get(3).map_or("http", String::as_str).to_owned();

    let mut child = Command::new(&args[0])
        .args(["--serve", &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut ready)
        .expect("read from the server process");
    assert_eq!(ready.trim(), "ready", "server process failed to start");

    // The daemon runs its checks on one thread (see lvsctl's daemon); HEALTH_CPU_THREADS=N
    // compares with a multi-threaded runtime.
    let rt = match std::env::var("HEALTH_CPU_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("runtime");
    let result = rt.block_on(measure(n, seconds, &kind));
    let _ = child.kill();
    let _ = child.wait();
    let ((user, system), wall, checks, failures) = result;
    let cpu = user + system;
    let share = cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
    println!(
        "{n} real servers, {kind} check every 1s, {seconds}s measured: {checks} checks, \
         {failures} failed, CPU {:.2}s (user {:.2}s, system {:.2}s) in {:.2}s = {share:.1}% \
         of one core",
        cpu.as_secs_f64(),
        user.as_secs_f64(),
        system.as_secs_f64(),
        wall.as_secs_f64()
    );
}

async fn measure(n: usize, seconds: u64, kind: &str) -> ((Duration, Duration), Duration, u64, u64) {
    let probe = match kind {
        "tcp" => Probe::Tcp(TcpProbe { port: None }),
        "http" | "http-close" => {
            let mut p = HttpProbe::get("/.health.html");
            p.expect = Some("OK".into());
            p.reuse_connection = kind == "http";
            Probe::Http(p)
        }
        other => panic!("unknown check kind {other:?}: http, http-close or tcp"),
    };
    let config = CheckConfig {
        probe,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
        rise: 2,
        fall: 3,
    };
    let service = "tcp/192.168.6.101:80".parse().expect("service key");
    let (mut monitor, _transitions) = Monitor::new(Arc::new(NetProber));
    monitor.reconcile((0..n).map(|i| {
        let a = addr(i);
        let t = Target {
            service,
            server: lvsctl_model::DestKey {
                addr: a.ip(),
                port: a.port(),
            },
        };
        (t, config.clone(), Status::Up)
    }));
    // Let every check start and settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let totals = |m: &Monitor| {
        m.snapshot()
            .values()
            .fold((0, 0), |(c, f), s| (c + s.checks, f + s.failures))
    };
    let (checks0, failures0) = totals(&monitor);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, wall1) = (cpu_time(), Instant::now());
    let (checks1, failures1) = totals(&monitor);
    (
        (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
        wall1 - wall0,
        checks1 - checks0,
        failures1 - failures0,
    )
}

fn serve(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        for i in 0..n {
            let listener = TcpListener::bind(addr(i))
                .await
                .expect("bind a loopback address");
            tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = listener.accept().await else {
                        continue;
                    };
                    // Answers every request on the connection until the client closes it,
                    // like any HTTP/1.1 server (each check's request arrives in one read).
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                            let close = buf.windows(17).any(|w| w == b"Connection: close");
                            let answer: &[u8] = if close {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nOK\n"
                            } else {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n"
                            };
                            if s.write_all(answer).await.is_err() || close {
                                return;
                            }
                        }
                    });
                }
            });
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
}
