//! `lvsctl status`: the `ipvsadm -L -n`-like table with counters, health from the daemon's
//! status file, snapshots, colour rules and `--watch`.

use std::time::Duration;

use crate::support::{FakeDaemon, Sandbox, example, has_ansi, repo_root};

const SNAPSHOT: &str = "examples/snapshots/ppc-director.json";

/// A status file in the shape the daemon writes (`daemon/status.rs`), naming `daemon`.
fn daemon_status(now: f64, daemon: &FakeDaemon) -> String {
    serde_json::json!({
        "format_version": "1",
        "pid": daemon.pid(),
        "version": "0.1.0",
        "started_at": now - 600.0,
        "updated_at": now - 5.0,
        "manifest": {"ok": true, "paths": ["examples/ppc.yaml"], "loaded_at": now - 600.0,
                     "error": null, "services": 2, "real_servers": 4},
        "last_reconcile": {"at": now - 30.0, "trigger": "health", "result": "ok",
                           "summary": "ok: 1 operation(s) applied (health)", "duration_ms": 1.5,
                           "applied": 1, "failed": 0, "drift": 0, "errors": [],
                           "retry_in_ms": null},
        "health": {
            "tcp/192.168.6.101:80": {
                "192.168.60.101:80": {"state": "up", "reason": "http 200 in 3ms", "check": "http",
                    "confirmed": true, "since": now - 600.0, "last_check": now - 1.0,
                    "consecutive_ok": 200, "consecutive_fail": 0, "checks": 200, "failures": 0,
                    "on_failure": "remove"},
                "192.168.60.102:80": {"state": "down", "reason": "http: status 503", "check": "http",
                    "confirmed": true, "since": now - 30.0, "last_check": now - 1.0,
                    "consecutive_ok": 0, "consecutive_fail": 10, "checks": 200, "failures": 10,
                    "on_failure": "remove"}
            }
        },
        "draining": []
    })
    .to_string()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn row<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in\n{table}"))
}

/// The numeric columns of a row: weight, active, inactive, cps, in B/s (dest rows) or active,
/// inactive, cps, in B/s (service rows).
fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn shows_services_and_real_servers_of_the_director() {
    let sb = Sandbox::new("status-kernel");
    sb.apply(&example("ppc"), &[]);
    let missing = sb.path("no-daemon.json");
    let out = sb
        .run(&["status", "--daemon-status", missing.to_str().unwrap()])
        .success();
    let t = &out.stdout;
    assert!(t.starts_with("SERVICE / REAL SERVER"), "{t}");
    assert!(row(t, "tcp/192.168.6.101:80").contains("rr p120"));
    for dest in [
        "192.168.60.101:22",
        "192.168.60.102:22",
        "192.168.60.101:80",
        "192.168.60.102:80",
    ] {
        let r = row(t, &format!("-> {dest}"));
        assert!(r.contains(" dr "), "{r}");
        assert!(r.trim_end().ends_with(" -"), "no daemon, no health: {r}");
    }
    assert_eq!(
        t.lines().count(),
        8,
        "header, 2 services, 4 real servers, the note on the status file:\n{t}"
    );
    // A status file named on purpose that is not there is more likely a typo than "no
    // daemon": said once, under the table.
    assert!(
        t.ends_with(&format!(
            "daemon: no health shown: {} does not exist (is that where `lvsctl run --status-file` writes?)\n",
            missing.display()
        )),
        "{t}"
    );
    assert!(!has_ansi(t));
}

#[test]
fn snapshot_counters_are_shown() {
    let sb = Sandbox::new("status-snapshot");
    let out = sb
        .cmd(&["status", "--state", SNAPSHOT])
        .env_remove("LVSCTL_FAKE_KERNEL")
        .run()
        .success();
    let t = &out.stdout;
    // Per real server: weight, active, inactive, cps, in B/s from the snapshot.
    assert_eq!(
        numbers(row(t, "-> 192.168.60.101:80")),
        [1, 12, 41, 3, 8012]
    );
    assert_eq!(numbers(row(t, "-> 192.168.60.102:22")), [1, 1, 1, 0, 251]);
    // Per service: its real servers' connections summed, the service's own rates.
    let svc = row(t, "tcp/192.168.6.101:80");
    assert!(svc.contains("rr p120"), "{svc}");
    assert_eq!(numbers(svc), [21, 78, 5, 14905]);
    assert!(sb.listing().is_empty());
}

#[test]
fn daemon_health_and_last_reconcile_are_shown() {
    let sb = Sandbox::new("status-daemon");
    sb.apply(&example("ppc"), &[]);
    let daemon = FakeDaemon::start();
    let status = sb.write("status.json", &daemon_status(now(), &daemon));
    let out = sb
        .run(&["status", "--daemon-status", status.to_str().unwrap()])
        .success();
    let t = &out.stdout;
    assert!(
        row(t, "-> 192.168.60.101:80").ends_with("up (http 200 in 3ms)"),
        "{t}"
    );
    assert!(
        row(t, "-> 192.168.60.102:80").ends_with("down (http: status 503)"),
        "{t}"
    );
    assert!(
        row(t, "-> 192.168.60.101:22").trim_end().ends_with(" -"),
        "{t}"
    );
    let last = row(t, "daemon: last reconcile");
    assert!(
        last.ends_with("s ago: ok: 1 operation(s) applied (health)"),
        "{last}"
    );
    assert!(!t.contains('{'), "no raw JSON in the table:\n{t}");
}

#[test]
fn a_real_server_the_daemon_removed_is_still_shown_with_why() {
    let sb = Sandbox::new("status-removed");
    sb.apply(&example("ppc"), &[]);
    // The daemon took 192.168.60.102:80 out of IPVS (on_failure: remove).
    let trimmed = sb.write(
        "trimmed.yaml",
        &std::fs::read_to_string(repo_root().join("examples/ppc.yaml"))
            .unwrap()
            .replacen(
                "      - address: 192.168.60.101   # DR real servers use the service port (80)\n      - address: 192.168.60.102\n",
                "      - address: 192.168.60.101\n",
                1,
            ),
    );
    sb.apply(trimmed.to_str().unwrap(), &[]);
    let daemon = FakeDaemon::start();
    let status = sb.write("status.json", &daemon_status(now(), &daemon));
    let out = sb
        .run(&["status", "--daemon-status", status.to_str().unwrap()])
        .success();
    let r = row(&out.stdout, "-> 192.168.60.102:80");
    assert!(r.contains("(removed)"), "{r}");
    assert!(r.ends_with("down (http: status 503)"), "{r}");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let sb = Sandbox::new("status-colour");
    let daemon = FakeDaemon::start();
    let status = sb.write("status.json", &daemon_status(now(), &daemon));
    let status = status.to_str().unwrap();
    let args = ["status", "--state", SNAPSHOT, "--daemon-status", status];
    let piped = sb.run(&args).success();
    assert!(!has_ansi(&piped.stdout));
    let mut always = args.to_vec();
    always.extend(["--color", "always"]);
    let coloured = sb.run(&always).success();
    assert!(
        coloured.stdout.contains("\x1b[31mdown\x1b[0m"),
        "{}",
        coloured.stdout
    );
    assert!(coloured.stdout.contains("\x1b[32mup\x1b[0m"));
    let mut never = args.to_vec();
    never.extend(["--color", "never"]);
    let plain = sb.cmd(&never).env("NO_COLOR", "1").run().success();
    assert_eq!(plain.stdout, piped.stdout);
}

#[test]
fn watch_redraws_until_stopped() {
    let sb = Sandbox::new("status-watch");
    let mut child = sb
        .cmd(&[
            "status",
            "--watch",
            "--interval",
            "100ms",
            "--state",
            SNAPSHOT,
        ])
        .spawn();
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let frames = stdout.matches("\x1b[2J\x1b[H").count();
    assert!(frames >= 2, "{frames} frame(s):\n{stdout}");
    assert!(stdout.matches("SERVICE / REAL SERVER").count() >= 2);
}

#[test]
fn stale_or_unreadable_daemon_status_is_said_not_hidden() {
    let sb = Sandbox::new("status-stale");
    let daemon = FakeDaemon::start();
    let mut v: serde_json::Value = serde_json::from_str(&daemon_status(now(), &daemon)).unwrap();
    v["pid"] = serde_json::json!(99_999_999u64);
    let dead = sb.write("dead.json", &v.to_string());
    let out = sb
        .run(&[
            "status",
            "--state",
            SNAPSHOT,
            "--daemon-status",
            dead.to_str().unwrap(),
        ])
        .success();
    let line = row(&out.stdout, "daemon: not running");
    assert!(
        line.starts_with(
            "daemon: not running (pid 99999999: it no longer runs); health above as of "
        ),
        "{line}"
    );
    let bad = sb.write("bad.json", "{\"format_version\": \"1\", \"health\": ");
    let bad = bad.to_str().unwrap();
    let out = sb
        .run(&["status", "--state", SNAPSHOT, "--daemon-status", bad])
        .success();
    let line = row(&out.stdout, "daemon: no health shown");
    assert!(
        line.starts_with(&format!(
            "daemon: no health shown: {bad} is not a daemon status file"
        )),
        "{line}"
    );
}

#[test]
fn counters_come_from_the_fake_kernel_as_from_a_snapshot() {
    let sb = Sandbox::new("status-fake-counters");
    std::fs::copy(repo_root().join(SNAPSHOT), sb.kernel()).unwrap();
    let live = sb.run(&["status"]).success();
    let saved = sb.run(&["status", "--state", SNAPSHOT]).success();
    assert_eq!(live.stdout, saved.stdout);
    assert_eq!(
        numbers(row(&live.stdout, "-> 192.168.60.102:80")),
        [1, 9, 37, 2, 6893]
    );
    // And export --state hands them on unchanged.
    let exported = sb.run(&["export", "--state"]).success();
    let text = std::fs::read_to_string(repo_root().join(SNAPSHOT)).unwrap();
    assert_eq!(
        crate::support::parse_snapshot(&exported.stdout),
        crate::support::parse_snapshot(&text)
    );
}

#[test]
fn watch_stops_when_the_reader_goes_away() {
    use std::io::Read;
    let sb = Sandbox::new("status-watch-pipe");
    let mut child = sb
        .cmd(&[
            "status",
            "--watch",
            "--interval",
            "50ms",
            "--state",
            SNAPSHOT,
        ])
        .spawn();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // `lvsctl status --watch | head -c 64`
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("status --watch kept running after its reader left");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// An HTTP health endpoint on loopback answering `OK`, for as long as the test runs.
fn healthy_endpoint() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n");
        }
    });
    port
}

/// The real daemon's status file, read by `lvsctl status`: the two sides agree on its shape.
#[test]
fn status_shows_health_from_a_running_daemon() {
    let sb = Sandbox::new("status-daemon-e2e");
    let up = healthy_endpoint();
    // A port nobody listens on: connection refused.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let manifest = sb.write(
        "lvsctl.yaml",
        &format!(
            "services:\n  - name: web\n    vip: 10.0.0.1\n    port: 80\n    real_servers:\n      \
             - {{address: 127.0.0.1, port: {up}, forward: nat}}\n      \
             - {{address: 127.0.0.1, port: {down}, forward: nat}}\n    \
             health:\n      http: {{path: /.health.html, expect: OK}}\n      interval: 1s\n      \
             timeout: 500ms\n      rise: 1\n      fall: 1\n"
        ),
    );
    let status_file = sb.path("status.json");
    let mut daemon = sb
        .cmd(&[
            "run",
            "-f",
            manifest.to_str().unwrap(),
            "--status-file",
            status_file.to_str().unwrap(),
        ])
        .spawn();
    let args = ["status", "--daemon-status", status_file.to_str().unwrap()];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let table = loop {
        let out = sb.run(&args);
        let t = out.stdout;
        if out.code == 0 && t.contains("up (") && t.contains("down (") {
            break t;
        }
        if std::time::Instant::now() > deadline {
            let _ = daemon.kill();
            let d = daemon.wait_with_output().unwrap();
            panic!(
                "no health in status after 30s:\n{t}\n--- daemon stderr\n{}",
                String::from_utf8_lossy(&d.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        row(&table, &format!("127.0.0.1:{up}")).contains("up ("),
        "{table}"
    );
    assert!(
        row(&table, &format!("127.0.0.1:{down}")).contains("down ("),
        "{table}"
    );
    assert!(
        row(&table, "daemon: last reconcile").contains("s ago: "),
        "{table}"
    );
    // The daemon is gone now: its health is flagged as old news.
    let after = sb.run(&args).success().stdout;
    assert!(after.contains("daemon: not running (pid "), "{after}");
}
