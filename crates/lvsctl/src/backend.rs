//! Picks the director lvsctl talks to: the real kernel, or (for tests and demos) an in-memory
//! kernel persisted in a snapshot file named by `LVSCTL_FAKE_KERNEL`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use lvsctl_kernel::DestCounters;
use lvsctl_model::Observed;
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, BackendError, Errno, Op};

/// Where the manifest has lvsctl keep addresses: `director.vip_interface` (the director's
/// VIPs, observed there) and, with a `realserver:` section, `realserver.interface` (the
/// real-server side's VIPs, never taken for the director's).
#[derive(Debug, Clone, Copy, Default)]
pub struct VipScope<'a> {
    pub vip_interface: Option<&'a str>,
    pub realserver_interface: Option<&'a str>,
}

impl<'a> VipScope<'a> {
    pub fn of(manifest: &'a lvsctl_model::manifest::Manifest) -> Self {
        VipScope {
            vip_interface: manifest.director.vip_interface.as_deref(),
            realserver_interface: manifest.realserver.as_ref().map(|r| r.interface.as_str()),
        }
    }
}

/// Opens the backend for this process, observing VIPs as `vips` says.
pub fn open(vips: VipScope<'_>) -> Result<Box<dyn Backend + Send>> {
    open_with(vips, false, DestCounters::All)
}

/// For `plan` and `apply`, which plan from the state alone: no counters are read or kept.
pub fn open_for_planning(vips: VipScope<'_>) -> Result<Box<dyn Backend + Send>> {
    open_with(vips, false, DestCounters::None)
}

/// For the daemon without metrics, which reads connection counts (to drain) and no traffic
/// counters: lets the fast IPVS read cover real servers with large traffic counters too.
pub fn open_for_draining(vips: VipScope<'_>) -> Result<Box<dyn Backend + Send>> {
    open_with(vips, false, DestCounters::Busy)
}

/// For commands without a manifest (`export`, `status`): VIPs are looked for on the interface
/// holding lvsctl's addresses.
pub fn open_without_manifest() -> Result<Box<dyn Backend + Send>> {
    open_with(VipScope::default(), true, DestCounters::All)
}

/// The fake kernel when `LVSCTL_FAKE_KERNEL` names its file, the real one otherwise.
fn open_with(
    vips: VipScope<'_>,
    discover: bool,
    counters: DestCounters,
) -> Result<Box<dyn Backend + Send>> {
    if let Some(path) = std::env::var_os("LVSCTL_FAKE_KERNEL") {
        return Ok(Box::new(FileFake::open(PathBuf::from(path))?));
    }
    crate::kernel::open(vips, discover, counters)
}

/// A [`FakeKernel`] whose state lives in a snapshot file between runs, so the CLI can be tested
/// end to end (plan, apply, export, a failure mid-way, the next apply) without a kernel.
/// `LVSCTL_FAKE_FAIL_AT=N` fails the N-th operation (0-based) of this process with EINVAL,
/// `LVSCTL_FAKE_FAIL_SCHEDULER=name` makes that scheduler "not available" (ENOENT), and
/// `LVSCTL_FAKE_SAVE_EVERY_OP=1` saves the file after every operation, as a kernel would show
/// each one at once (the kill -9 tests need a table caught in the middle of a plan).
pub struct FileFake {
    path: PathBuf,
    kernel: FakeKernel,
    executed: usize,
    save_every_op: bool,
    fail_at: Option<usize>,
    missing_scheduler: Option<String>,
}

impl FileFake {
    pub fn open(path: PathBuf) -> Result<Self> {
        let observed = if path.exists() {
            crate::snapshot::read(&path)?
        } else {
            Observed::default()
        };
        let fail_at = match std::env::var("LVSCTL_FAKE_FAIL_AT") {
            Ok(v) => Some(
                v.parse()
                    .with_context(|| format!("LVSCTL_FAKE_FAIL_AT={v:?} is not a number"))?,
            ),
            Err(_) => None,
        };
        Ok(FileFake {
            path,
            kernel: FakeKernel::new(observed).without_history(),
            executed: 0,
            save_every_op: std::env::var_os("LVSCTL_FAKE_SAVE_EVERY_OP").is_some_and(|v| v == "1"),
            fail_at,
            missing_scheduler: std::env::var("LVSCTL_FAKE_FAIL_SCHEDULER").ok(),
        })
    }

    fn save(&mut self) -> Result<(), BackendError> {
        crate::snapshot::write(&self.path, self.kernel.observed())
            .map_err(|e| BackendError::Other(format!("{e:#}")))
    }
}

impl Backend for FileFake {
    fn observe(&mut self) -> Result<Observed, BackendError> {
        self.kernel.observe()
    }

    fn execute(&mut self, op: &Op) -> Result<(), BackendError> {
        self.run(op)?;
        self.save()
    }

    /// Saves once per chunk, not once per op: a snapshot write of a 10,000-service table
    /// after each of its 110,000 ops would take hours. What ran before a failure is saved.
    fn execute_all(&mut self, ops: &[Op]) -> Result<(), (usize, BackendError)> {
        if self.save_every_op {
            return ops
                .iter()
                .enumerate()
                .try_for_each(|(i, op)| self.execute(op).map_err(|e| (i, e)));
        }
        let ran = ops
            .iter()
            .enumerate()
            .try_for_each(|(i, op)| self.run(op).map_err(|e| (i, e)));
        let saved = self.save().map_err(|e| (ops.len(), e));
        ran.and(saved)
    }
}

impl FileFake {
    /// One op on the in-memory kernel, with the injected failures; the caller saves.
    fn run(&mut self, op: &Op) -> Result<(), BackendError> {
        let n = self.executed;
        self.executed += 1;
        if self.fail_at == Some(n) {
            return Err(BackendError::Kernel {
                op: crate::commands::describe(op),
                errno: Errno::Invalid,
                message: "injected failure (LVSCTL_FAKE_FAIL_AT) (EINVAL)".to_owned(),
            });
        }
        if let (Some(missing), Op::AddService { spec, .. } | Op::UpdateService { after: spec, .. }) =
            (&self.missing_scheduler, op)
            && spec.scheduler.as_str() == missing
        {
            return Err(BackendError::Kernel {
                op: crate::commands::describe(op),
                errno: Errno::NotFound,
                message: format!("scheduler {missing:?} is not available (ENOENT)"),
            });
        }
        self.kernel.execute(op)
    }
}
