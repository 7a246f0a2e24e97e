//! Security properties of the binary (issue 8, "Security"), against the fake kernel:
//!
//! - `exec` health checks from a manifest never go through a shell: arguments holding `;`,
//!   `$( )`, backquotes and `&&` reach the program as they are, and nothing they "say" runs;
//!   a shell command line written as one string is refused by validation;
//! - the daemon listens on no TCP port unless `--metrics` is given; given a bare port it
//!   listens on 127.0.0.1 only and serves nothing but `/metrics`;
//! - a manifest other users can write is refused (before anything is applied), unless
//!   `--allow-insecure-manifest`;
//! - a manifest "file" that never ends (`/dev/zero`) or is huge gets a clear error instead of
//!   eating memory (run under a 1 GiB address-space limit, so a regression fails this test and
//!   not the machine).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lvsctl");

fn tempdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lvsctl-security/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn lvsctl(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    test_env(c, dir)
}

/// The fake kernel in `dir`, and nothing from the caller's environment that changes lvsctl.
fn test_env(mut c: Command, dir: &Path) -> Command {
    c.current_dir(dir)
        .env("LVSCTL_FAKE_KERNEL", dir.join("kernel.json"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("LVSCTL_FAKE_FAIL_AT")
        .env_remove("LVSCTL_LOCK_FILE")
        // plan and apply read a running daemon's verdicts: never the machine's own.
        .env("LVSCTL_STATUS_FILE", dir.join("status.json"))
        .stdin(Stdio::null());
    c
}

/// Stops a daemon started by a test, whatever happened (SIGKILL: the fake kernel is a file).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(dir: &Path, extra: &[&str]) -> Daemon {
    let status = dir.join("status.json").display().to_string();
    let mut args = vec!["run", "-f", "lvsctl.yaml", "--status-file", &status];
    args.extend_from_slice(extra);
    Daemon(
        lvsctl(dir, &args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Real servers of `tcp/10.0.0.1:80` in the fake kernel (ports), if the service exists.
fn kernel_ports(dir: &Path) -> Option<BTreeSet<u16>> {
    let text = std::fs::read_to_string(dir.join("kernel.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let dests = v["observed"]["state"]["services"]["tcp/10.0.0.1:80"]["dests"].as_object()?;
    Some(
        dests
            .keys()
            .map(|k| k.rsplit(':').next().unwrap().parse().unwrap())
            .collect(),
    )
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn exec_checks_pass_arguments_as_they_are_and_never_run_a_shell() {
    let dir = tempdir("exec");
    let pwned = |tag: &str| dir.join(format!("pwned-{tag}"));
    // Each real server's check is one program with one hostile-looking argument. touch and
    // echo succeed (the server is added, so the check really ran); the last names a program
    // that does not exist once taken literally (the server stays out).
    let checks: Vec<(u16, Vec<String>, bool)> = vec![
        (
            8001,
            vec![
                "/usr/bin/touch".into(),
                "literal; touch pwned-semicolon".into(),
            ],
            true,
        ),
        (
            8002,
            vec!["/bin/echo".into(), "$(touch pwned-subst)".into()],
            true,
        ),
        (
            8003,
            vec!["/bin/echo".into(), "`touch pwned-backtick`".into()],
            true,
        ),
        (
            8004,
            vec![
                "/bin/echo".into(),
                "x && touch pwned-and".into(),
                "|".into(),
                "sh".into(),
            ],
            true,
        ),
        (8005, vec!["touch pwned-space".into()], false),
    ];
    let mut m = String::from(
        "services:\n  - name: web\n    vip: 10.0.0.1\n    port: 80\n    real_servers:\n",
    );
    for (port, argv, _) in &checks {
        let argv: Vec<String> = argv.iter().map(|a| yaml_str(a)).collect();
        m.push_str(&format!(
            "      - address: 127.0.0.1\n        port: {port}\n        forward: nat\n        \
             health: {{exec: {{command: [{}]}}, interval: 300ms, timeout: 250ms, rise: 1, fall: 1}}\n",
            argv.join(", ")
        ));
    }
    write(&dir.join("lvsctl.yaml"), &m, 0o644);
    let out = lvsctl(&dir, &["validate", "-f", "lvsctl.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let daemon = start_daemon(&dir, &[]);
    let want: BTreeSet<u16> = checks.iter().filter(|c| c.2).map(|c| c.0).collect();
    wait_for(
        "the passing exec checks to add their servers",
        Duration::from_secs(30),
        || kernel_ports(&dir).is_some_and(|p| p == want),
    );
    // A few more rounds of every check, then look for what a shell would have done.
    std::thread::sleep(Duration::from_secs(1));
    drop(daemon);
    for tag in ["semicolon", "subst", "backtick", "and", "space"] {
        assert!(
            !pwned(tag).exists(),
            "an exec check ran a shell: {} exists",
            pwned(tag).display()
        );
    }
    // touch got its argument as one word: a file with exactly that name.
    assert!(
        dir.join("literal; touch pwned-semicolon").exists(),
        "touch did not get its argument verbatim"
    );
    assert_eq!(
        kernel_ports(&dir).unwrap(),
        want,
        "the literal `touch pwned-space` program ran?"
    );

    // A shell command line as one string is refused before anything runs.
    let m = "services:\n  - name: web\n    vip: 10.0.0.1\n    port: 80\n    real_servers: \
             [{address: 127.0.0.1, port: 8001, forward: nat}]\n    health: {exec: {command: \
             \"/bin/true; touch pwned-string\"}}\n";
    write(&dir.join("string.yaml"), m, 0o644);
    let out = lvsctl(&dir, &["validate", "-f", "string.yaml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exec checks never run a shell"), "{err}");
    assert!(!pwned("string").exists());
}

/// TCP ports process `pid` listens on, with their local addresses, from /proc (its socket
/// inodes matched against the namespace's listening sockets).
fn listening(pid: u32) -> Vec<String> {
    let mut inodes = BTreeSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                out.push(format!("{table} {}", f[1]));
            }
        }
    }
    out
}

fn get(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_daemon_listens_on_nothing_by_default_and_on_loopback_metrics_only_when_asked() {
    let dir = tempdir("listen");
    write(
        &dir.join("lvsctl.yaml"),
        "services:\n  - {name: web, vip: 10.0.0.1, port: 80, real_servers: [{address: 127.0.0.1, port: 8080, forward: nat}]}\n",
        0o644,
    );
    // No --metrics: once it has converged, the daemon has no listening socket at all.
    let d = start_daemon(&dir, &[]);
    wait_for("the first pass", Duration::from_secs(30), || {
        kernel_ports(&dir).is_some()
    });
    assert_eq!(
        listening(d.0.id()),
        Vec::<String>::new(),
        "listening without --metrics"
    );
    drop(d);

    // --metrics with a bare port binds loopback: exactly that socket, and only /metrics
    // behind it.
    let port = free_port();
    let d = start_daemon(&dir, &["--metrics", &port.to_string()]);
    wait_for("the metrics endpoint", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let want = format!("tcp 0100007F:{port:04X}");
    assert_eq!(listening(d.0.id()), vec![want], "listening sockets");
    let r = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.contains("lvsctl_"),
        "{r}"
    );
    for path in [
        "/",
        "/status",
        "/debug/pprof",
        "/metrics/../status.json",
        "/../../etc/passwd",
        "/metricsx",
    ] {
        let r = get(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 404"), "GET {path}: {r}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let r = get(
            port,
            &format!("{method} /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 405"), "{method}: {r}");
    }
    drop(d);
}

fn run_out(dir: &Path, args: &[&str], timeout: Duration) -> Output {
    run_cmd(lvsctl(dir, args), args, timeout)
}

fn run_cmd(mut cmd: Command, args: &[&str], timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`lvsctl {}` still running after {timeout:?} (stderr: {})",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_manifest_others_can_write_is_refused_before_anything_is_applied() {
    let dir = tempdir("perm");
    let m = "services:\n  - {name: web, vip: 10.0.0.1, port: 80}\n";
    write(&dir.join("lvsctl.yaml"), m, 0o666);
    let out = run_out(
        &dir,
        &["apply", "-f", "lvsctl.yaml"],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing a manifest that every user can write"),
        "{err}"
    );
    assert!(!dir.join("kernel.json").exists(), "something was applied");
    let out = run_out(
        &dir,
        &["apply", "-f", "lvsctl.yaml", "--allow-insecure-manifest"],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("kernel.json").exists());
}

#[test]
fn endless_or_huge_manifest_files_get_a_clear_error() {
    let dir = tempdir("huge");
    // Whatever lvsctl does, it may not take the machine down with it.
    let limited = |args: &[&str]| {
        let mut c = Command::new("prlimit");
        c.arg("--as=1073741824")
            .arg(BIN)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null());
        c
    };
    // /dev/zero never ends: reading it whole would eat all memory. (Its mode 0666 is refused
    // first unless allowed; allow it, to reach the reading.)
    let args = ["validate", "-f", "/dev/zero", "--allow-insecure-manifest"];
    let out = run_cmd(limited(&args), &args, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("4 MiB"), "{err}");
    // A sparse 1 GiB file: refused without reading it all.
    let big = dir.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(1 << 30).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = ["validate", "-f", "big.yaml"];
    let out = run_cmd(limited(&args), &args, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("4 MiB"), "{err}");
}

/// Soft and hard "Max open files" of a process.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line["Max open files".len()..].split_whitespace();
    (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
}

#[test]
fn the_daemon_raises_its_open_files_limit_for_thousands_of_checks() {
    let dir = tempdir("nofile");
    write(
        &dir.join("lvsctl.yaml"),
        "services:\n  - {name: web, vip: 10.0.0.1, port: 80, real_servers: [{address: 127.0.0.1, port: 8080, forward: nat}]}\n",
        0o644,
    );
    // Started with a soft limit of 256 under a hard limit of 4096 (prlimit execs the daemon,
    // so the pid is the daemon's).
    let status = dir.join("status.json").display().to_string();
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=256:4096").arg(BIN).args([
        "run",
        "-f",
        "lvsctl.yaml",
        "--status-file",
        &status,
    ]);
    let mut cmd = test_env(cmd, &dir);
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap());
    let d = Daemon(cmd.spawn().unwrap());
    wait_for("the first pass", Duration::from_secs(30), || {
        kernel_ports(&dir).is_some()
    });
    assert_eq!(
        open_files_limit(d.0.id()),
        ("4096".to_owned(), "4096".to_owned()),
        "the soft limit should have been raised to the hard one"
    );
}
