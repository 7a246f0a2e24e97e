//! HTTP checks that keep their connection open between checks (`reuse_connection`), against
//! servers on 127.0.0.1 that count their connections: reuse must really happen, and every way a
//! kept connection can go bad must cost at most a new connection, never a wrong result.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lvsctl_health::{
    CheckConfig, CheckError, HttpProbe, IdleConnection, Monitor, NetProber, Probe, Status, Target,
    run_probe_keeping,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_millis(800);
const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n";

/// What the server does with one request.
#[derive(Clone, Copy)]
enum Reply {
    Send(&'static str),
    /// Closes the connection without answering (as a server whose idle timeout fired just as
    /// the request arrived).
    Close,
    /// Never answers, keeps the connection.
    Hang,
}

struct Server {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    /// Connections the client closed (EOF or reset seen by the server).
    client_closed: Arc<AtomicUsize>,
}

impl Server {
    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// Reads one request head; false when the client closed the connection.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Serves request `r` (0-based) of connection `c` (0-based) with `reply(c, r)`, many requests
/// per connection, until the reply says otherwise or the client closes.
async fn server(reply: impl Fn(usize, usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let client_closed = Arc::new(AtomicUsize::new(0));
    let reply = Arc::new(reply);
    let (a, cc) = (Arc::clone(&accepts), Arc::clone(&client_closed));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let c = a.fetch_add(1, Ordering::SeqCst);
            let (reply, cc) = (Arc::clone(&reply), Arc::clone(&cc));
            tokio::spawn(async move {
                for r in 0.. {
                    if read_request(&mut s).await.is_none() {
                        cc.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    match reply(c, r) {
                        Reply::Send(text) => {
                            if s.write_all(text.as_bytes()).await.is_err()
                                || text.contains("Connection: close")
                            {
                                return;
                            }
                        }
                        Reply::Close => return,
                        Reply::Hang => std::future::pending::<()>().await,
                    }
                }
            });
        }
    });
    Server {
        addr,
        accepts,
        client_closed,
    }
}

/// A passing response whose body starts with `OK` and is `len` bytes long.
fn ok_with_body_of(len: usize) -> &'static str {
    let body = "OK".to_owned() + &"x".repeat(len - 2);
    let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}");
    Box::leak(text.into_boxed_str())
}

fn target(addr: SocketAddr) -> Target {
    Target {
        service: "tcp/192.168.6.101:80".parse().unwrap(),
        server: addr.to_string().parse().unwrap(),
    }
}

fn probe(reuse: bool) -> Probe {
    let mut p = HttpProbe::get("/.health.html");
    p.expect = Some("OK".into());
    p.reuse_connection = reuse;
    Probe::Http(p)
}

/// Runs one check the way the monitor does: with the connection the last one kept.
async fn check(
    probe: &Probe,
    addr: SocketAddr,
    idle: &mut Option<IdleConnection>,
) -> Result<(), CheckError> {
    let (result, kept) = run_probe_keeping(probe, &target(addr), DEADLINE, idle.take()).await;
    *idle = kept;
    result
}

/// Runs `n` checks in a row, each of which must pass, against a server that always answers
/// `reply`; returns how many connections it accepted and after how many checks a connection
/// was kept.
async fn passes(reply: &'static str, n: usize) -> (usize, usize) {
    let srv = server(move |_, _| Reply::Send(reply)).await;
    let p = probe(true);
    let mut idle = None;
    let mut kept = 0;
    for _ in 0..n {
        check(&p, srv.addr, &mut idle).await.unwrap();
        kept += usize::from(idle.is_some());
    }
    (srv.accepts(), kept)
}

/// Answers the first request on every connection with [`OK`] and later ones with `then`.
fn ok_once_then(then: Reply) -> impl Fn(usize, usize) -> Reply + Send + Sync + 'static {
    move |_, r| if r == 0 { Reply::Send(OK) } else { then }
}

/// A first check against `srv`, which must pass and keep its connection.
async fn first_check(srv: &Server) -> (Probe, Option<IdleConnection>) {
    let p = probe(true);
    let mut idle = None;
    check(&p, srv.addr, &mut idle).await.unwrap();
    assert!(idle.is_some());
    (p, idle)
}

#[tokio::test]
async fn checks_reuse_one_connection() {
    assert_eq!(passes(OK, 10).await, (1, 10));
}

#[tokio::test]
async fn without_reuse_every_check_connects_and_asks_to_close() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s2 = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let req = read_request(&mut s).await.unwrap();
            s2.lock().unwrap().push(req);
            let _ = s.write_all(OK.as_bytes()).await;
        }
    });
    let mut idle = None;
    for _ in 0..3 {
        check(&probe(false), addr, &mut idle).await.unwrap();
        assert!(idle.is_none());
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|r| r.contains("\r\nConnection: close\r\n")));
    }

    // With reuse the connection is kept for the next check.
    let keep = server(|_, _| Reply::Send(OK)).await;
    let mut idle = None;
    check(&probe(true), keep.addr, &mut idle).await.unwrap();
    assert!(idle.is_some());
}

#[tokio::test]
async fn connection_close_answer_means_a_new_connection_each_time() {
    let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nOK\n";
    assert_eq!(passes(close, 4).await, (4, 0));
}

#[tokio::test]
async fn http_1_0_is_reused_only_with_explicit_keep_alive() {
    let plain = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nOK\n";
    assert_eq!(passes(plain, 3).await, (3, 0));
    let keep = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nOK\n";
    assert_eq!(passes(keep, 3).await, (1, 3));
}

#[tokio::test]
async fn chunked_body_with_trailers_is_read_to_its_end_and_reused() {
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                   2\r\nOK\r\n5\r\n done\r\n0\r\nX-Checked: 1\r\n\r\n";
    assert_eq!(passes(chunked, 5).await, (1, 5));
}

#[tokio::test]
async fn expected_text_early_in_a_longer_body_still_reuses() {
    // The check passes on "OK" at the start; the rest of the body is read so the next
    // request does not read this response's tail as its answer.
    assert_eq!(passes(ok_with_body_of(20_000), 3).await, (1, 3));
}

#[tokio::test]
async fn response_bigger_than_the_limit_passes_but_is_not_reused() {
    assert_eq!(passes(ok_with_body_of(100_000), 2).await, (2, 0));
}

#[tokio::test]
async fn server_closing_an_idle_connection_costs_one_new_connection() {
    // Answers one request per connection, then closes it while idle (no Connection: close).
    let srv = server(ok_once_then(Reply::Close)).await;
    let (p, mut idle) = first_check(&srv).await;
    // The server closes the connection only when the next request arrives: the check sees EOF
    // before any answer and retries at once on a new connection, which passes.
    check(&p, srv.addr, &mut idle).await.unwrap();
    assert_eq!(srv.accepts(), 2);
    check(&p, srv.addr, &mut idle).await.unwrap();
    assert_eq!(srv.accepts(), 3);
}

#[tokio::test]
async fn server_closing_while_idle_is_noticed_before_sending() {
    // Half-closes each connection right after its first answer (FIN, still reading); by the
    // next check the FIN has arrived, so the check connects afresh without sending on the old
    // one. A request sent there anyway would still reach the server, which counts it: a check
    // that found out only by sending (and retried) would pass with the same accepts.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let sent_after_fin = Arc::new(AtomicUsize::new(0));
    let (a, late) = (Arc::clone(&accepts), Arc::clone(&sent_after_fin));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let late = Arc::clone(&late);
            tokio::spawn(async move {
                read_request(&mut s).await;
                let _ = s.write_all(OK.as_bytes()).await;
                let _ = s.shutdown().await;
                let mut byte = [0u8; 1];
                if matches!(s.read(&mut byte).await, Ok(n) if n > 0) {
                    late.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let p = probe(true);
    let mut idle = None;
    for n in 1..=3 {
        check(&p, addr, &mut idle).await.unwrap();
        assert_eq!(accepts.load(Ordering::SeqCst), n);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sent_after_fin.load(Ordering::SeqCst),
        0,
        "a request went out on a connection the server had closed"
    );
}

#[tokio::test]
async fn the_retry_on_a_closed_connection_happens_once_and_counts() {
    // The first connection answers once, then closes on the next request; every later
    // connection closes without answering: the retry's failure is the check's result.
    let srv = server(|c, r| {
        if c == 0 && r == 0 {
            Reply::Send(OK)
        } else {
            Reply::Close
        }
    })
    .await;
    let (p, mut idle) = first_check(&srv).await;
    let err = check(&p, srv.addr, &mut idle).await.unwrap_err();
    assert!(
        err.to_string().contains("closed without a response"),
        "{err}"
    );
    assert!(!err.is_inconclusive());
    assert!(idle.is_none());
    assert_eq!(srv.accepts(), 2);
}

#[tokio::test]
async fn a_timed_out_check_drops_its_connection() {
    // The first connection answers once and then never again; a new connection answers.
    let srv = server(|c, r| {
        if c == 0 && r == 1 {
            Reply::Hang
        } else {
            Reply::Send(OK)
        }
    })
    .await;
    let (p, mut idle) = first_check(&srv).await;
    let err = check(&p, srv.addr, &mut idle).await.unwrap_err();
    assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
    assert!(idle.is_none());
    check(&p, srv.addr, &mut idle).await.unwrap();
    assert_eq!(srv.accepts(), 2);
}

#[tokio::test]
async fn failures_drop_the_connection() {
    // Second answer on each connection is a 503, then a wrong body, then garbage.
    for bad in [
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nNOPE",
        "SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ] {
        let srv = server(ok_once_then(Reply::Send(bad))).await;
        let (p, mut idle) = first_check(&srv).await;
        assert!(check(&p, srv.addr, &mut idle).await.is_err(), "{bad:?}");
        assert!(idle.is_none());
        // The next check connects afresh (and fails the same way on the new connection's
        // second request only: its first answer is OK).
        check(&p, srv.addr, &mut idle).await.unwrap();
        assert_eq!(srv.accepts(), 2, "{bad:?}");
    }
}

#[tokio::test]
async fn bytes_after_the_response_forbid_reuse() {
    let extra = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\ngarbage";
    assert_eq!(passes(extra, 3).await, (3, 0));
}

#[tokio::test]
async fn stopped_listener_with_open_connection_keeps_passing() {
    // Envoy's trade-off, kept on purpose: a server that stops accepting but keeps serving the
    // kept connection still passes until it closes that connection. Without reuse the same
    // server fails at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        drop(listener);
        while read_request(&mut s).await.is_some() {
            if s.write_all(OK.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let p = probe(true);
    let mut idle = None;
    for _ in 0..3 {
        check(&p, addr, &mut idle).await.unwrap();
    }
    let mut none = None;
    let err = check(&probe(false), addr, &mut none).await.unwrap_err();
    assert!(matches!(err, CheckError::Connect { .. }), "{err}");
}

fn config(probe: Probe) -> CheckConfig {
    CheckConfig {
        probe,
        interval: Duration::from_millis(100),
        timeout: DEADLINE,
        rise: 1,
        fall: 1,
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn monitor_keeps_one_connection_and_closes_it_on_change_and_removal() {
    let srv = server(|_, _| Reply::Send(OK)).await;
    let (monitor, _rx) = Monitor::new(Arc::new(NetProber));
    let mut monitor = monitor.with_spread(Duration::ZERO);
    let t = target(srv.addr);
    let checks = |m: &Monitor| m.snapshot().get(&t).map_or(0, |s| s.checks);
    monitor.reconcile([(t, config(probe(true)), Status::Up)]);
    wait_until("5 checks ran", || checks(&monitor) >= 5).await;
    assert_eq!(srv.accepts(), 1);
    assert_eq!(monitor.snapshot()[&t].failures, 0);

    // A changed check closes the old connection and opens one new one.
    let mut changed = config(probe(true));
    changed.interval = Duration::from_millis(120);
    monitor.reconcile([(t, changed.clone(), Status::Up)]);
    wait_until("the old connection is closed", || {
        srv.client_closed.load(Ordering::SeqCst) == 1
    })
    .await;
    let before = checks(&monitor);
    wait_until("3 more checks ran", || checks(&monitor) >= before + 3).await;
    assert_eq!(srv.accepts(), 2);

    // Removing the server from monitoring closes its connection.
    monitor.reconcile(std::iter::empty());
    wait_until("the connection is closed", || {
        srv.client_closed.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(srv.accepts(), 2);
}
