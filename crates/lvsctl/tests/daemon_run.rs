//! `lvsctl run` end to end, as a process: a fake kernel persisted in a file
//! (`LVSCTL_FAKE_KERNEL`), real HTTP health endpoints on 127.0.0.1 served by this test, the
//! metrics endpoint, the status file, SIGHUP and SIGTERM. Real time; every wait is a bounded
//! poll for a condition, never a fixed sleep followed by a timing assertion.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lvsctl-run-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A health endpoint answering `OK` while `healthy`, 503 otherwise.
fn health_server() -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let healthy = Arc::new(AtomicBool::new(true));
    let h = Arc::clone(&healthy);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read(&mut buf);
            let response: &[u8] = if h.load(Ordering::SeqCst) {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ndown\n"
            };
            let _ = s.write_all(response);
        }
    });
    (port, healthy)
}

fn manifest(p1: u16, p2: u16, weight: u32) -> String {
    format!(
        "services:
  - name: web
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {{address: 127.0.0.1, port: {p1}, forward: nat, weight: {weight}}}
      - {{address: 127.0.0.1, port: {p2}, forward: nat}}
    health:
      http: {{path: /.health.html, expect: OK}}
      interval: 1s
      timeout: 500ms
      rise: 1
      fall: 2
"
    )
}

fn write_manifest(dir: &Path, text: &str) {
    let tmp = dir.join(".lvsctl.yaml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("lvsctl.yaml")).unwrap();
}

/// Real servers of `tcp/10.0.0.1:80` in the fake kernel: (port, weight).
fn kernel_servers(kernel: &Path) -> Option<Vec<(u16, u64)>> {
    let text = std::fs::read_to_string(kernel).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let dests = v["observed"]["state"]["services"]["tcp/10.0.0.1:80"]["dests"].as_object()?;
    let mut out: Vec<(u16, u64)> = dests
        .iter()
        .map(|(k, d)| {
            let port = k.rsplit(':').next().unwrap().parse().unwrap();
            (port, d["weight"].as_u64().unwrap())
        })
        .collect();
    out.sort();
    Some(out)
}

fn sorted(mut v: Vec<(u16, u64)>) -> Option<Vec<(u16, u64)>> {
    v.sort();
    Some(v)
}

/// Kills the daemon if the test fails half-way, so no process outlives the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("lvsctl run did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lvsctl run` on `dir/lvsctl.yaml` with the fake kernel `dir/kernel.json`, its lock in `dir`
/// and its status file at `status`; `more` adds options and environment.
fn start_daemon(dir: &Path, status: &Path, more: impl FnOnce(&mut Command)) -> Guard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lvsctl"));
    cmd.args(["run", "-f"])
        .arg(dir.join("lvsctl.yaml"))
        .arg("--status-file")
        .arg(status)
        .env("LVSCTL_FAKE_KERNEL", dir.join("kernel.json"))
        .env("LVSCTL_LOCK_FILE", dir.join("lock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    more(&mut cmd);
    Guard(cmd.spawn().unwrap())
}

#[test]
fn run_follows_health_and_manifest_and_stops_cleanly_on_sigterm() {
    let dir = tempdir("e2e");
    let kernel = dir.join("kernel.json");
    let status = dir.join("status.json");
    let (p1, _h1) = health_server();
    let (p2, h2) = health_server();
    write_manifest(&dir, &manifest(p1, p2, 5));
    let metrics_port = free_port();

    let mut guard = start_daemon(&dir, &status, |cmd| {
        cmd.args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
            .args(["--resync-interval", "5s"]);
    });

    // Both real servers pass their first check and are added.
    wait_for("both real servers in the kernel", || {
        kernel_servers(&kernel) == sorted(vec![(p1, 5), (p2, 1)])
    });

    // RS2 fails: out within interval x fall (+ margin); RS1 stays.
    h2.store(false, Ordering::SeqCst);
    wait_for("the failing real server to leave", || {
        kernel_servers(&kernel) == sorted(vec![(p1, 5)])
    });
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    let h = &st["health"]["tcp/10.0.0.1:80"][format!("127.0.0.1:{p2}")];
    assert_eq!(h["state"], "down", "{st:#}");
    assert!(h["reason"].as_str().unwrap().contains("503"), "{st:#}");

    // An apply of the same manifest beside the daemon reads its status file and keeps RS2 out,
    // where it used to add it back until the daemon's next resync.
    let apply = Command::new(env!("CARGO_BIN_EXE_lvsctl"))
        .args(["apply", "-f"])
        .arg(dir.join("lvsctl.yaml"))
        .env("LVSCTL_FAKE_KERNEL", &kernel)
        .env("LVSCTL_LOCK_FILE", dir.join("lock"))
        .env("LVSCTL_STATUS_FILE", &status)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&apply.stdout),
        String::from_utf8_lossy(&apply.stderr),
    );
    assert!(apply.status.success(), "{out}{err}");
    assert!(out.starts_with("No changes."), "{out}");
    assert!(
        err.contains("found 1 real server(s) down; this plan keeps them as it does")
            && err.contains(&format!("127.0.0.1:{p2} out (unexpected http status 503")),
        "{err}"
    );
    assert_eq!(kernel_servers(&kernel), sorted(vec![(p1, 5)]));

    let metrics = http_get(metrics_port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "lvsctl_realserver_up{{service=\"tcp/10.0.0.1:80\",server=\"127.0.0.1:{p2}\",check=\"http\"}} 0"
        )),
        "{metrics}"
    );
    assert!(http_get(metrics_port, "/").starts_with("HTTP/1.1 404"));

    // Back again.
    h2.store(true, Ordering::SeqCst);
    wait_for("the recovered real server to return", || {
        kernel_servers(&kernel) == sorted(vec![(p1, 5), (p2, 1)])
    });

    // An edit (rename over) is followed; a broken edit is not.
    write_manifest(&dir, &manifest(p1, p2, 9));
    wait_for("the manifest edit", || {
        kernel_servers(&kernel) == sorted(vec![(p1, 9), (p2, 1)])
    });
    std::fs::write(
        dir.join("lvsctl.yaml"),
        "services:\n  - name: web\n    vip: [",
    )
    .unwrap();
    wait_for("the broken manifest to be reported", || {
        std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["manifest"]["ok"] == false)
    });
    assert_eq!(kernel_servers(&kernel), sorted(vec![(p1, 9), (p2, 1)]));

    // SIGHUP re-reads (still broken: nothing changes) and the daemon keeps running.
    signal(&guard.0, "-HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        guard.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped the daemon"
    );

    signal(&guard.0, "-TERM");
    let exit = wait_exit(&mut guard.0);
    assert!(exit.success(), "exit status {exit}");
    // The kernel is left as it is.
    assert_eq!(kernel_servers(&kernel), sorted(vec![(p1, 9), (p2, 1)]));
    // The last status file says the daemon stopped, so plan and apply no longer use it.
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    assert_eq!(st["stopped"], true, "{st:#}");
}

/// Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) the daemon says `READY=1` once it
/// handles its signals and `STOPPING=1` on SIGTERM; its exec health checks do not get the
/// socket (the check below fails if they do, and its real server never gets in).
#[test]
fn run_notifies_systemd_and_keeps_the_socket_from_its_checks() {
    use std::os::unix::net::UnixDatagram;

    let dir = tempdir("notify");
    let kernel = dir.join("kernel.json");
    let socket_path = dir.join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = free_port();
    write_manifest(
        &dir,
        &format!(
            "services:
  - name: web
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {{address: 127.0.0.1, port: {port}, forward: nat}}
    health:
      exec: {{command: [/bin/sh, -c, 'test -z \"$NOTIFY_SOCKET\"']}}
      interval: 200ms
      rise: 1
      fall: 1
"
        ),
    );
    let mut guard = start_daemon(&dir, &dir.join("status.json"), |cmd| {
        cmd.env("NOTIFY_SOCKET", &socket_path);
    });
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    wait_for("the exec-checked real server in the kernel", || {
        kernel_servers(&kernel) == sorted(vec![(port, 1)])
    });
    signal(&guard.0, "-TERM");
    let n = socket.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(wait_exit(&mut guard.0).success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Under umask 000 the daemon still writes its status file 0644 in a folder it makes 0755:
/// `apply` refuses verdicts others could have written, and the daemon renames a fresh file
/// into place every pass, so a `chmod` would not last.
#[test]
fn the_status_file_and_its_folder_are_never_writable_by_others() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempdir("umask");
    let kernel = dir.join("kernel.json");
    let status = dir.join("st").join("status.json");
    write_manifest(&dir, &manifest(free_port(), free_port(), 1));
    let child = Command::new("/bin/sh")
        .args(["-c", "umask 000 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_lvsctl"))
        .args(["run", "-f"])
        .arg(dir.join("lvsctl.yaml"))
        .arg("--status-file")
        .arg(&status)
        .env("LVSCTL_FAKE_KERNEL", &kernel)
        .env("LVSCTL_LOCK_FILE", dir.join("lock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    wait_for("the status file", || status.exists());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&status), 0o644);
    assert_eq!(mode(&dir.join("st")), 0o755);
    signal(&guard.0, "-TERM");
    assert!(wait_exit(&mut guard.0).success());
    std::fs::remove_dir_all(&dir).unwrap();
}
