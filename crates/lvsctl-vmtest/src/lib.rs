//! Test support: drives lvsctl's throwaway IPVS VM (`tests/vm/run.sh`) from Rust tests and
//! finds the workspace binaries to copy into it. It boots VMs and runs cargo; it must never
//! touch the host's own network state (everything networked happens inside the VM).
//!
//! ```no_run
//! use lvsctl_vmtest::{skip_requested, VmRun};
//! use std::time::Duration;
//!
//! if skip_requested("pcc") {
//!     return;
//! }
//! let out = VmRun::new()
//!     .topology_seed()
//!     .timeout(Duration::from_secs(300))
//!     .script("vip_on_director\nipvsadm -A -t 192.168.6.101:80 -s rr\nprobe c1 80")
//!     .run();
//! out.assert_success();
//! assert_eq!(out.lines_with_prefix("probe c1 80 ").len(), 1);
//! ```
//!
//! Policy: `LVSCTL_VM=skip` makes [`skip_requested`] print a loud `SKIPPED:` line and return
//! true; nothing else skips. A VM that cannot start fails the test with the reason.

mod cargo;
mod output;

use std::{
    env,
    ffi::OsString,
    fs,
    io::{self, BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

pub use cargo::{test_binary, workspace_bin, workspace_bin_in};
pub use output::VmOutput;

/// Console line the VM prints with the command's exit status (see tests/vm/guest-init.sh).
const EXIT_MARKER: &str = "LVSCTL-VM-EXIT=";
/// Prefix of run.sh's own error messages.
const HARNESS_ERROR: &str = "lvsctl-vm: error: ";
/// run.sh's exit status when the VM was killed at its timeout.
const TIMEOUT_STATUS: i32 = 124;
/// How many console lines a panic message repeats (the full console is printed as it runs).
const PANIC_TAIL_LINES: usize = 60;

/// Why a VM run or a cargo helper failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "the vm did not finish within {timeout_secs} s and was killed; raise the timeout if the machine is only slow"
    )]
    Timeout { timeout_secs: u64, console: String },
    #[error("the vm harness failed (tests/vm/run.sh exit status {status}): {reason}")]
    Harness {
        status: String,
        reason: String,
        console: String,
    },
    #[error("`cargo {args}` failed ({status}):\n{stderr}")]
    Cargo {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("`cargo {args}` built no {kind} named `{name}`")]
    NoArtifact {
        args: String,
        kind: String,
        name: String,
    },
}

impl VmError {
    /// The VM console captured up to the failure, when there was a VM.
    pub fn console(&self) -> Option<&str> {
        match self {
            VmError::Timeout { console, .. } | VmError::Harness { console, .. } => Some(console),
            _ => None,
        }
    }
}

/// The repository root (the directory holding `tests/vm/`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/lvsctl-vmtest -> repository root
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// True when the VM tests were asked to skip (`LVSCTL_VM=skip`); says so loudly on the real
/// stderr, past the test harness's output capture. Call it first in every VM test.
pub fn skip_requested(test: &str) -> bool {
    if env::var_os("LVSCTL_VM").is_some_and(|v| v == "skip") {
        // Written to the process's stderr directly so that libtest does not swallow it.
        let _ = writeln!(
            io::stderr().lock(),
            "SKIPPED: VM test `{test}` did not run (LVSCTL_VM=skip); it needs tests/vm/run.sh and qemu"
        );
        return true;
    }
    false
}

#[derive(Debug, Clone)]
enum Cmd {
    Script { name: String, body: String },
    Argv(Vec<OsString>),
}

/// One VM boot: options for tests/vm/run.sh plus the command to run inside.
#[derive(Debug, Clone)]
pub struct VmRun {
    timeout: Duration,
    seed: bool,
    mem_mb: Option<u32>,
    copies: Vec<(PathBuf, Option<String>)>,
    cmd: Option<Cmd>,
}

impl Default for VmRun {
    fn default() -> Self {
        Self::new()
    }
}

impl VmRun {
    /// A run with no topology and run.sh's default timeout of 300 s.
    pub fn new() -> Self {
        VmRun {
            timeout: Duration::from_secs(300),
            seed: false,
            mem_mb: None,
            copies: Vec::new(),
            cmd: None,
        }
    }

    /// Build the seed's DR topology (tests/vm/topology.sh) before the command runs.
    pub fn topology_seed(mut self) -> Self {
        self.seed = true;
        self
    }

    /// Kill the VM after this long (whole seconds, at least 1). Boot alone takes 5-15 s
    /// under TCG on a loaded machine: leave generous margins.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Guest memory in MB (run.sh default: 1024).
    pub fn mem_mb(mut self, mb: u32) -> Self {
        self.mem_mb = Some(mb);
        self
    }

    /// Copy a host file or directory into the VM at `/opt/<basename>`, with the shared
    /// libraries of any ELF program in it.
    pub fn copy(mut self, host: impl AsRef<Path>) -> Self {
        self.copies.push((host.as_ref().to_path_buf(), None));
        self
    }

    /// Copy a host file or directory into the VM at `guest` (relative paths are under /opt).
    pub fn copy_to(mut self, host: impl AsRef<Path>, guest: &str) -> Self {
        self.copies
            .push((host.as_ref().to_path_buf(), Some(guest.to_string())));
        self
    }

    /// Run this bash script in the VM (root netns, cwd /opt, topology helpers defined).
    pub fn script(self, body: &str) -> Self {
        self.named_script("script", body)
    }

    /// Like [`VmRun::script`]; `name` names the script file in console messages.
    pub fn named_script(mut self, name: &str, body: &str) -> Self {
        self.cmd = Some(Cmd::Script {
            name: name.to_string(),
            body: body.to_string(),
        });
        self
    }

    /// Run one program with arguments in the VM, no shell parsing.
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.cmd = Some(Cmd::Argv(argv.into_iter().map(Into::into).collect()));
        self
    }

    /// Boot the VM, run the command, and return its status and console. `Err` means the
    /// VM itself failed (could not start, timed out, crashed); a failing command is `Ok`
    /// with a non-zero status.
    pub fn try_run(self) -> Result<VmOutput, VmError> {
        let _slot = VmSlot::acquire();
        let script_dir = TempDir::new()?;
        let mut cmd = Command::new(repo_root().join("tests/vm/run.sh"));
        let secs = self.timeout.as_secs().max(1);
        cmd.arg("--timeout").arg(secs.to_string());
        if self.seed {
            cmd.args(["--topology", "seed"]);
        }
        if let Some(mb) = self.mem_mb {
            cmd.arg("--mem").arg(mb.to_string());
        }
        for (host, guest) in &self.copies {
            let mut spec = host.clone().into_os_string();
            if let Some(guest) = guest {
                spec.push(":");
                spec.push(guest);
            }
            cmd.arg("--copy").arg(spec);
        }
        cmd.arg("--");
        match &self.cmd {
            Some(Cmd::Script { name, body }) => {
                let path = script_dir.path.join(format!("{name}.sh"));
                fs::write(&path, body).map_err(|source| VmError::Io {
                    what: format!("writing the vm script {}", path.display()),
                    source,
                })?;
                cmd.arg(path);
            }
            Some(Cmd::Argv(argv)) if !argv.is_empty() => {
                // One word would be read by run.sh as a shell command line; keep it a program.
                if argv.len() == 1 {
                    cmd.arg("exec");
                }
                cmd.args(argv);
            }
            _ => {
                cmd.arg("true");
            }
        }
        run_streaming(cmd, secs)
    }

    /// Like [`VmRun::try_run`], but a VM failure panics with the reason and the console.
    pub fn run(self) -> VmOutput {
        match self.try_run() {
            Ok(out) => out,
            Err(err) => {
                let tail = err
                    .console()
                    .map(|c| output::tail(c, PANIC_TAIL_LINES))
                    .unwrap_or_default();
                panic!("lvsctl vm: {err}\n--- vm console (last lines) ---\n{tail}");
            }
        }
    }
}

/// Runs run.sh with stdout and stderr on one pipe, echoing each line through `println!`
/// (captured by libtest, live with `--nocapture`) and keeping it as the console.
fn run_streaming(mut cmd: Command, timeout_secs: u64) -> Result<VmOutput, VmError> {
    let (reader, writer) = io::pipe().map_err(|source| VmError::Spawn {
        what: "a pipe for the vm console".into(),
        source,
    })?;
    let writer2 = writer.try_clone().map_err(|source| VmError::Spawn {
        what: "a pipe for the vm console".into(),
        source,
    })?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = cmd.spawn().map_err(|source| VmError::Spawn {
        what: format!("{}", repo_root().join("tests/vm/run.sh").display()),
        source,
    })?;
    // The Command holds the pipe's write ends; drop them or the read below never ends.
    drop(cmd);

    let mut console = String::new();
    let mut lines = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                println!("{line}");
                console.push_str(line);
                console.push('\n');
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VmError::Io {
                    what: "reading the vm console".into(),
                    source,
                });
            }
        }
    }
    let status = child.wait().map_err(|source| VmError::Io {
        what: "waiting for tests/vm/run.sh".into(),
        source,
    })?;
    interpret(status.code(), console, timeout_secs)
}

/// Turns run.sh's exit status and console into the run's result.
fn interpret(code: Option<i32>, console: String, timeout_secs: u64) -> Result<VmOutput, VmError> {
    let marker = console
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(EXIT_MARKER)?.parse::<i32>().ok());
    match (marker, code) {
        (Some(status), _) => Ok(VmOutput { status, console }),
        (None, Some(TIMEOUT_STATUS)) => Err(VmError::Timeout {
            timeout_secs,
            console,
        }),
        (None, code) => {
            let reason = console
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix(HARNESS_ERROR))
                .unwrap_or("no exit marker on the console and no error message")
                .to_string();
            Err(VmError::Harness {
                status: code.map_or_else(|| "killed by a signal".into(), |c| c.to_string()),
                reason,
                console,
            })
        }
    }
}

/// Limits how many VMs this test process boots at once (`LVSCTL_VM_JOBS`, default: half the
/// CPUs, at least 1): each VM runs two emulated CPUs, and parallel VMs on a small machine
/// only make every one of them slower and closer to its timeout.
struct VmSlot;

static SLOTS: Mutex<Option<usize>> = Mutex::new(None);
static SLOT_FREED: Condvar = Condvar::new();

impl VmSlot {
    fn acquire() -> VmSlot {
        let mut free = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let n = free.get_or_insert_with(max_parallel_vms);
            if *n > 0 {
                *n -= 1;
                return VmSlot;
            }
            free = SLOT_FREED.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for VmSlot {
    fn drop(&mut self) {
        let mut free = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = free.as_mut() {
            *n += 1;
        }
        SLOT_FREED.notify_one();
    }
}

fn max_parallel_vms() -> usize {
    env::var("LVSCTL_VM_JOBS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1)
        })
}

/// A private temp directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, VmError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("lvsctl-vmtest-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same pid: start clean.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(|source| VmError::Io {
            what: format!("creating {}", path.display()),
            source,
        })?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn marker_gives_the_command_status() {
        // The marker, not the process's own code, is the command's status.
        let console = "boot\nLVSCTL-VM-EXIT=3\n[ 1.0] reboot: Power down\n".to_string();
        let out = interpret(Some(0), console, 10).unwrap();
        assert_eq!(out.status, 3);
        assert!(!out.success());
    }

    #[test]
    fn the_last_marker_wins() {
        let console = "LVSCTL-VM-EXIT=0\nLVSCTL-VM-EXIT=1\n".to_string();
        assert_eq!(interpret(Some(7), console, 10).unwrap().status, 1);
    }

    #[test]
    fn timeout_without_marker_is_a_timeout_error() {
        let err = interpret(Some(124), "booting\n".into(), 42).unwrap_err();
        assert!(
            matches!(
                err,
                VmError::Timeout {
                    timeout_secs: 42,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.console(), Some("booting\n"));
    }

    #[test]
    fn harness_failure_reports_run_sh_reason() {
        let console = "lvsctl-vm: error: no cached VM kernel in /x\n".to_string();
        let err = interpret(Some(125), console, 10).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit status 125"), "{msg}");
        assert!(msg.contains("no cached VM kernel in /x"), "{msg}");
    }

    #[test]
    fn signal_without_marker_is_a_harness_error() {
        let err = interpret(None, String::new(), 10).unwrap_err();
        assert!(err.to_string().contains("killed by a signal"), "{err}");
    }

    #[test]
    fn repo_root_holds_the_vm_runner() {
        assert!(repo_root().join("tests/vm/run.sh").is_file());
    }

    #[test]
    fn vm_slots_are_returned() {
        let before = {
            let _a = VmSlot::acquire();
            *SLOTS.lock().unwrap()
        };
        let after = *SLOTS.lock().unwrap();
        assert_eq!(after, before.map(|n| n + 1));
    }
}
