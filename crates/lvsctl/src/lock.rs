//! One lvsctl at a time changes a director: `apply` (and each daemon pass) holds an exclusive
//! lock on a file; a second one waits a bounded time, then fails saying who to wait for.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tracing::info;

pub struct DirectorLock {
    _file: File,
}

/// The lock file: `LVSCTL_LOCK_FILE`, else beside a fake kernel's file, else `/run/lvsctl.lock`.
pub fn lock_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LVSCTL_LOCK_FILE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("LVSCTL_FAKE_KERNEL") {
        let mut p = PathBuf::from(p).into_os_string();
        p.push(".lock");
        return PathBuf::from(p);
    }
    PathBuf::from("/run/lvsctl.lock")
}

impl DirectorLock {
    pub fn acquire(timeout: Duration) -> Result<Self> {
        let path = lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open the director lock", path.display()))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirectorLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        bail!(
                            "another lvsctl is changing this director (lock {} held for {:.0}s); \
                             wait for it to finish or raise --lock-timeout",
                            path.display(),
                            timeout.as_secs_f64()
                        );
                    }
                    if !told {
                        info!("waiting for another lvsctl holding {}", path.display());
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| {
                        format!("{}: cannot lock the director lock", path.display())
                    });
                }
            }
        }
    }
}
