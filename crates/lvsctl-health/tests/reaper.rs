//! lvsctl as a container's entrypoint (PID 1) or under a child subreaper inherits the
//! processes its exec checks' commands leave behind when it kills them: orphans are
//! reparented to it, and nobody else will ever reap them. Left as zombies, one per killed
//! check, they fill the process table until no check, and no iptables, can start.
//!
//! Its own test binary: making the process a subreaper must not change the other tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use lvsctl_health::{CheckError, ExecProbe, Probe, Target, run_probe};

/// What PID 1 is to every orphan, this test process becomes to its descendants' orphans.
#[allow(unsafe_code)]
fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integers and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl: {}", std::io::Error::last_os_error());
}

/// Children of this process that have exited and were never reaped.
fn zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        if fields.next() == Some("Z") && fields.next() == Some(me.as_str()) {
            found.push(stat.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
    }
    found
}

fn exec(argv: &[&str]) -> Probe {
    Probe::Exec(ExecProbe {
        argv: argv.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test]
async fn killed_check_commands_leave_no_zombies_behind() {
    become_subreaper();
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let target = Target {
        service: "tcp/192.168.6.101:80".parse().unwrap(),
        server: addr.to_string().parse().unwrap(),
    };
    for _ in 0..3 {
        // Timed out: the command and the two commands it started are killed.
        let hung = exec(&["sh", "-c", "sleep 600 & sleep 600 & wait"]);
        let err = run_probe(&hung, &target, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
        // Ended, but a helper it left holds its output: the helper is killed.
        let helper = exec(&["sh", "-c", "sleep 600 & echo fine"]);
        run_probe(&helper, &target, Duration::from_secs(5))
            .await
            .unwrap();
        // Dropped while it runs (a manifest change stops its check).
        let dropped = run_probe(&hung, &target, Duration::from_secs(600));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), dropped)
                .await
                .is_err()
        );
    }
    let mut left = zombies();
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = zombies();
    }
    assert!(left.is_empty(), "never reaped: {left:?}");
}
