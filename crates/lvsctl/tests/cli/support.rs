//! A private directory per test, the binary run from the repository root against a fake kernel
//! file in that directory, and helpers to read what it left behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use lvsctl_model::{Observed, State};

pub const BIN: &str = env!("CARGO_BIN_EXE_lvsctl");

/// The seed's three experiments plus the production-like manifest, as the CLI names them.
pub const EXAMPLES: &[&str] = &["pcc", "ppc", "pnmpp"];
pub const PRODUCTION: &str = "manifests/production.yaml";

pub fn example(name: &str) -> String {
    format!("examples/{name}.yaml")
}

/// The repository root: commands run there, so paths in their output are stable and relative.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A test's private directory, with the fake kernel's file inside; removed when the test
/// passes, kept for a look when it fails.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "lvsctl-cli/{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The fake kernel's state file (absent until the first change).
    pub fn kernel(&self) -> PathBuf {
        self.path("kernel.json")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.path("kernel.json.lock")
    }

    /// Writes a manifest (mode 0644 whatever the umask, so lvsctl's permission check passes)
    /// and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// `lvsctl ARGS` against this sandbox's fake kernel, from the repository root.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(repo_root())
            .env("LVSCTL_FAKE_KERNEL", self.kernel())
            // Isolation from the caller's environment.
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("LVSCTL_FAKE_FAIL_AT")
            .env_remove("LVSCTL_FAKE_FAIL_SCHEDULER")
            .env_remove("LVSCTL_LOCK_FILE")
            // plan and apply read a running daemon's verdicts: never the machine's own.
            .env("LVSCTL_STATUS_FILE", self.path("status.json"));
        Cmd {
            inner: c,
            stdin: None,
        }
    }

    /// Runs `lvsctl ARGS` and returns what it printed.
    pub fn run(&self, args: &[&str]) -> Out {
        self.cmd(args).run()
    }

    /// Applies `manifest` and insists it succeeded.
    pub fn apply(&self, manifest: &str, extra: &[&str]) -> Out {
        let mut args = vec!["apply", "-f", manifest];
        args.extend_from_slice(extra);
        self.run(&args).success()
    }

    /// What the fake kernel holds now (empty when it never changed).
    pub fn observed(&self) -> Observed {
        match std::fs::read_to_string(self.kernel()) {
            Ok(text) => parse_snapshot(&text),
            Err(_) => Observed::default(),
        }
    }

    pub fn state(&self) -> State {
        self.observed().state
    }

    /// The kernel file's bytes, or `None` when there is none.
    pub fn kernel_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.kernel()).ok()
    }

    /// Every file in the sandbox with its bytes, to prove a command wrote nothing.
    pub fn listing(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    out.push((p, bytes));
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses an `lvsctl export --state` snapshot.
pub fn parse_snapshot(text: &str) -> Observed {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["format_version"], "1", "snapshot format_version");
    serde_json::from_value(v["observed"].clone()).unwrap()
}

/// The state a fresh, empty director reaches by applying `manifest` once.
pub fn fresh_state(manifest: &str) -> State {
    let sb = Sandbox::new("fresh");
    sb.apply(manifest, &[]);
    sb.state()
}

pub struct Cmd {
    inner: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.inner.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Cmd {
        self.inner.env_remove(k);
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Cmd {
        self.stdin = Some(bytes.to_vec());
        self
    }

    pub fn spawn(mut self) -> Child {
        self.inner
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(mut self) -> Out {
        let desc = format!("{:?}", self.inner);
        self.inner
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.inner.spawn().unwrap();
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(&bytes).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out::new(desc, out)
    }
}

/// What a finished command printed, with its exit code.
#[derive(Debug)]
pub struct Out {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn new(cmd: String, out: std::process::Output) -> Out {
        Out {
            cmd,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Asserts the exit code, showing everything the command printed when it differs.
    pub fn code(self, expected: i32) -> Out {
        assert_eq!(
            self.code, expected,
            "exit code of {}\n--- stdout\n{}--- stderr\n{}",
            self.cmd, self.stdout, self.stderr
        );
        self
    }

    pub fn success(self) -> Out {
        self.code(0)
    }

    pub fn stderr_has(self, needle: &str) -> Out {
        assert!(
            self.stderr.contains(needle),
            "stderr of {} lacks {needle:?}:\n{}",
            self.cmd,
            self.stderr
        );
        self
    }

    pub fn stdout_has(self, needle: &str) -> Out {
        assert!(
            self.stdout.contains(needle),
            "stdout of {} lacks {needle:?}:\n{}",
            self.cmd,
            self.stdout
        );
        self
    }
}

/// Compares `got` with the golden file `tests/fixtures/REL`, or rewrites it under
/// `LVSCTL_BLESS=1`.
pub fn golden(rel: &str, got: &str) {
    let path = fixtures().join(rel);
    if std::env::var_os("LVSCTL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; create it with LVSCTL_BLESS=1",
            path.display()
        )
    });
    assert!(
        got == expected,
        "output differs from {} (LVSCTL_BLESS=1 rewrites it)\n--- expected\n{expected}--- got\n{got}",
        path.display()
    );
}

pub fn has_ansi(s: &str) -> bool {
    s.contains('\x1b')
}

/// A process that looks like a running daemon to plan, apply and status (`lvsctl ... run` in its
/// command line), killed when dropped.
pub struct FakeDaemon(std::process::Child);

impl FakeDaemon {
    pub fn start() -> FakeDaemon {
        use std::os::unix::process::CommandExt;
        // `; true` keeps the shell from exec'ing sleep, which would change the command line.
        let child = std::process::Command::new("sh")
            .arg0("lvsctl")
            .args(["-c", "sleep 120; true", "run"])
            .spawn()
            .unwrap();
        FakeDaemon(child)
    }
    pub fn pid(&self) -> u64 {
        u64::from(self.0.id())
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
