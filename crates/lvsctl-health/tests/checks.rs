//! The probes against real servers on 127.0.0.1: each server misbehaves in one way the field
//! has seen (hangs, trickles, resets, answers wrong) and the check must fail it within its
//! deadline without holding up anything else.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lvsctl_health::{
    CheckConfig, CheckError, ExecProbe, HttpProbe, Monitor, NetProber, Probe, Status, Target,
    TcpProbe, run_probe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves every connection with `handler` until the test ends.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move { handler(stream).await });
        }
    });
    addr
}

/// Reads the request head so the client's write never fails.
async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn answer(response: &'static str) -> SocketAddr {
    serve(move |mut s| async move {
        read_request(&mut s).await;
        let _ = s.write_all(response.as_bytes()).await;
    })
    .await
}

fn target(addr: SocketAddr) -> Target {
    Target {
        service: "tcp/192.168.6.101:80".parse().unwrap(),
        server: addr.to_string().parse().unwrap(),
    }
}

fn health_ok() -> Probe {
    let mut p = HttpProbe::get("/.health.html");
    p.expect = Some("OK".into());
    Probe::Http(p)
}

const DEADLINE: Duration = Duration::from_millis(800);

async fn check(probe: &Probe, addr: SocketAddr) -> Result<(), CheckError> {
    run_probe(probe, &target(addr), DEADLINE).await
}

#[tokio::test]
async fn http_ok() {
    let addr = answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n").await;
    check(&health_ok(), addr).await.unwrap();
}

#[tokio::test]
async fn http_ok_chunked_and_split_across_chunks() {
    let addr = answer(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nO\r\n1\r\nK\r\n0\r\n\r\n",
    )
    .await;
    check(&health_ok(), addr).await.unwrap();
}

#[tokio::test]
async fn http_ok_body_until_close() {
    let addr = answer("HTTP/1.0 200 OK\r\n\r\nall OK here").await;
    check(&health_ok(), addr).await.unwrap();
}

#[tokio::test]
async fn http_sends_host_header() {
    let addr = serve(|mut s| async move {
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        let body = if req.contains("\r\nHost: rs1.example\r\n") {
            "OK"
        } else {
            "NO"
        };
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{body}").as_bytes())
            .await;
    })
    .await;
    let Probe::Http(mut p) = health_ok() else {
        unreachable!()
    };
    p.host = Some("rs1.example".into());
    check(&Probe::Http(p), addr).await.unwrap();
}

#[tokio::test]
async fn http_wrong_body_fails() {
    let addr = answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nERROR").await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Body(_)), "{err}");
    assert!(err.to_string().contains("\"OK\""), "{err}");
}

#[tokio::test]
async fn http_wrong_status_fails() {
    let addr = answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nOK").await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Status { got: 503, .. }), "{err}");
    // An explicitly accepted status passes.
    let Probe::Http(mut p) = health_ok() else {
        unreachable!()
    };
    p.status = vec![503];
    check(&Probe::Http(p), addr).await.unwrap();
}

#[tokio::test]
async fn http_not_http_fails() {
    let addr = answer("SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Protocol(_)), "{err}");
}

#[tokio::test]
async fn http_accept_and_never_answer_fails_at_deadline() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("waiting for the response"),
        "{err}"
    );
}

#[tokio::test]
async fn http_byte_by_byte_trickle_fails_at_deadline() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("bytes so far"), "{err}");
}

#[tokio::test]
async fn http_reset_fails() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        // SO_LINGER 0: close sends RST instead of FIN.
        s.set_zero_linger().unwrap();
        drop(s);
    })
    .await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(
        matches!(err, CheckError::Io { .. } | CheckError::Protocol(_)),
        "{err}"
    );
}

#[tokio::test]
async fn http_per_read_timeout_fails_before_the_deadline() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let Probe::Http(mut p) = health_ok() else {
        unreachable!()
    };
    p.io_timeout = Some(Duration::from_millis(100));
    let err = run_probe(&Probe::Http(p), &target(addr), Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CheckError::Timeout { after, .. } if after == Duration::from_millis(100)),
        "{err}"
    );
}

#[tokio::test]
async fn http_huge_response_is_bounded() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        let junk = vec![b'x'; 16 * 1024];
        for _ in 0..1024 {
            if s.write_all(&junk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Body(_)), "{err}");
    assert!(err.to_string().contains("first 65536 bytes"), "{err}");
}

#[tokio::test]
async fn http_refused_fails() {
    let addr = closed_port().await;
    let err = check(&health_ok(), addr).await.unwrap_err();
    assert!(matches!(err, CheckError::Connect { .. }), "{err}");
}

async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn tcp_connect() {
    let open = answer("").await;
    let tcp = Probe::Tcp(TcpProbe { port: None });
    check(&tcp, open).await.unwrap();
    let err = check(&tcp, closed_port().await).await.unwrap_err();
    assert!(matches!(err, CheckError::Connect { .. }), "{err}");
    // The probe's own port overrides the real server's.
    let other = Probe::Tcp(TcpProbe {
        port: Some(open.port()),
    });
    check(&other, closed_port().await).await.unwrap();
}

fn exec(argv: &[&str]) -> Probe {
    Probe::Exec(ExecProbe {
        argv: argv.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test]
async fn exec_exit_status_and_environment() {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    check(&exec(&["true"]), addr).await.unwrap();
    let err = check(&exec(&["false"]), addr).await.unwrap_err();
    assert!(err.to_string().contains("exited with status 1"), "{err}");
    let env_check = exec(&[
        "sh",
        "-c",
        "test \"$LVSCTL_RS_ADDR:$LVSCTL_RS_PORT $LVSCTL_SERVICE\" = \
         '127.0.0.1:8080 tcp/192.168.6.101:80' || { echo \"got $LVSCTL_RS_ADDR\" >&2; exit 3; }",
    ]);
    check(&env_check, addr).await.unwrap();
    let err = check(&exec(&["sh", "-c", "echo backend down >&2; exit 2"]), addr)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("exited with status 2: backend down"),
        "{err}"
    );
    let err = check(&exec(&["/nonexistent/check"]), addr)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot run"), "{err}");
}

/// What a command says ends up in the status file, the log, and `lvsctl status` on an
/// operator's terminal: a check that relays a server's words (`curl ... >&2`) must not pass
/// terminal control sequences on (clear the screen, retitle the window, hide text).
#[tokio::test]
async fn exec_output_in_the_reason_carries_no_control_characters() {
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let script = "printf 'backend \\033]0;owned\\007\\033[2Jsays\\tno\\r\\n' >&2; exit 1";
    let err = check(&exec(&["sh", "-c", script]), addr)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.chars().any(char::is_control), "{err:?}");
    assert!(err.contains("backend"), "{err:?}");
    assert!(err.contains("says"), "{err:?}");
}

#[tokio::test]
async fn exec_never_goes_through_a_shell() {
    let dir = std::env::temp_dir().join(format!("lvsctl-health-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pwned = dir.join("pwned");
    let arg = format!("/nonexistent; touch {}", pwned.display());
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    assert!(check(&exec(&["ls", &arg]), addr).await.is_err());
    assert!(!pwned.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn exec_killed_at_deadline_with_its_children() {
    let dir = std::env::temp_dir().join(format!("lvsctl-health-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let script = format!("sleep 600 & echo $! > {}; wait", pidfile.display());
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let err = check(&exec(&["sh", "-c", &script]), addr)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
    assert_gone(&pidfile).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A command that ends but leaves a helper behind holding its output (`helper &`) is judged by
/// its exit status, at once, not reported as timed out; the helper is killed.
#[tokio::test]
async fn exec_judged_by_exit_status_when_a_background_helper_holds_its_output() {
    let dir = std::env::temp_dir().join(format!("lvsctl-health-helper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    for (exit, said) in [(0, "all good"), (2, "backend down")] {
        let script = format!(
            "sleep 600 & echo $! > {}; echo {said} >&2; exit {exit}",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let r = check(&exec(&["sh", "-c", &script]), addr).await;
        assert!(
            started.elapsed() < DEADLINE,
            "took {:?}: waited for the helper",
            started.elapsed()
        );
        match exit {
            0 => r.unwrap(),
            _ => {
                let err = r.unwrap_err();
                assert!(
                    err.to_string()
                        .ends_with("exited with status 2: backend down"),
                    "{err}"
                );
            }
        }
        assert_gone(&pidfile).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A check stopped while its command runs (the daemon drops it on a manifest change) kills
/// the command's children too, not only the command.
#[tokio::test]
async fn exec_dropped_mid_run_kills_its_children() {
    let dir = std::env::temp_dir().join(format!("lvsctl-health-drop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let script = format!("sleep 600 & echo $! > {}; wait", pidfile.display());
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let probe = exec(&["sh", "-c", &script]);
    let to = target(addr);
    let running = run_probe(&probe, &to, Duration::from_secs(600));
    // Long enough for the script to start its sleep and write the pid; then drop the check.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), running)
            .await
            .is_err()
    );
    assert_gone(&pidfile).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The process whose pid is in `pidfile` ends (bounded wait for init to reap it).
async fn assert_gone(pidfile: &std::path::Path) {
    let pid = std::fs::read_to_string(pidfile).unwrap().trim().to_owned();
    let proc_path = format!("/proc/{pid}/stat");
    let mut gone = false;
    for _ in 0..100 {
        match std::fs::read_to_string(&proc_path) {
            Err(_) => {
                gone = true;
                break;
            }
            Ok(stat) if stat.contains(") Z ") => {
                gone = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(gone, "sleep {pid} outlived its check");
}

#[tokio::test]
async fn a_hanging_server_does_not_delay_another_check() {
    let hanging = serve(|mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let ok = answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").await;
    let probe = health_ok();
    let (slow_target, fast_target) = (target(hanging), target(ok));
    let slow = run_probe(&probe, &slow_target, Duration::from_secs(30));
    let fast = run_probe(&probe, &fast_target, Duration::from_secs(30));
    tokio::pin!(slow);
    // The good check completes while the hanging one is still waiting.
    tokio::select! {
        r = fast => r.unwrap(),
        r = &mut slow => panic!("hanging check finished first: {r:?}"),
    }
}

#[tokio::test]
async fn monitor_fails_hanging_server_while_others_keep_their_schedule() {
    let hanging = serve(|mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let mut ok_servers = Vec::new();
    for _ in 0..5 {
        ok_servers.push(answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").await);
    }
    let (monitor, mut transitions) = Monitor::new(Arc::new(NetProber));
    let mut monitor = monitor.with_spread(Duration::ZERO);
    let config = |timeout| CheckConfig {
        probe: health_ok(),
        interval: Duration::from_millis(100),
        timeout,
        rise: 1,
        fall: 1,
    };
    let mut wanted = vec![(
        target(hanging),
        config(Duration::from_millis(1500)),
        Status::Up,
    )];
    wanted.extend(
        ok_servers
            .iter()
            .map(|a| (target(*a), config(Duration::from_millis(1500)), Status::Up)),
    );
    monitor.reconcile(wanted);
    let t = tokio::time::timeout(Duration::from_secs(30), transitions.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.target, t.to), (target(hanging), Status::Down));
    assert!(t.reason.contains("no answer within"), "{}", t.reason);
    // While the hanging check waited for its whole deadline, the others ran on their own
    // 100 ms schedule: several checks each, all passing.
    let snap = monitor.snapshot();
    for a in &ok_servers {
        let s = &snap[&target(*a)];
        assert_eq!(s.status, Status::Up);
        assert!(s.checks >= 3, "{a}: only {} checks", s.checks);
        assert_eq!(s.failures, 0);
    }
    assert_eq!(snap[&target(hanging)].checks, 1);
}
