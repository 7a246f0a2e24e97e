//! One lvsctl at a time changes a director: `apply` (and each daemon pass) holds an exclusive
//! lock on a file; a second one waits a bounded time, then fails saying who to wait for.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tracing::info;

pub struct DirectorLock {
    file: File,
    path: PathBuf,
}

/// The lock file: `LVSCTL_LOCK_FILE`, else beside a fake kernel's file, else
/// `/run/lvsctl/lock` (the systemd unit's RuntimeDirectory, writable under ProtectSystem).
pub fn lock_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LVSCTL_LOCK_FILE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("LVSCTL_FAKE_KERNEL") {
        let mut p = PathBuf::from(p).into_os_string();
        p.push(".lock");
        return PathBuf::from(p);
    }
    PathBuf::from("/run/lvsctl/lock")
}

impl DirectorLock {
    /// Takes the lock at `path` if it is free; `Ok(Err(holder))` when another process holds it
    /// (`holder`: its note, when it left one and still runs). Never waits, so a caller that
    /// must stay responsive (the daemon, to SIGTERM) does its own waiting.
    pub fn try_acquire_at(path: &Path) -> Result<std::result::Result<Self, Option<String>>> {
        // A lock on a file that is no longer at `path` excludes nobody: the next lvsctl opens
        // whatever is there now. systemd removes a unit's RuntimeDirectory when it stops, and an
        // operator may delete a stale-looking lock file, both while a holder still runs. So
        // after locking, check the path still names the locked file, and start again if not.
        for _ in 0..MAX_REPLACED {
            if let Some(dir) = path.parent() {
                // Best effort: the open below reports the real problem if this fails.
                let _ = std::fs::create_dir_all(dir);
            }
            // Never through a symlink: the note below truncates and writes the file, as root.
            let file = match OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                // Whoever can open it can hold the lock (flock needs no write access) and stop
                // every apply and daemon pass: only its owner may.
                .mode(0o600)
                .open(path)
            {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
                    "{}: the director lock is a symbolic link; lvsctl does not lock or write \
                     through one (it could overwrite the file it points to): remove the link, \
                     or set LVSCTL_LOCK_FILE to a plain file in a folder only root can write",
                    path.display()
                ),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("{}: cannot open the director lock", path.display())
                    });
                }
            };
            // Also one an older lvsctl left readable. Best effort: a file of another user's
            // is theirs to fix, and a reader that opened it already keeps its descriptor.
            if file
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
            {
                let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
            }
            match file.try_lock() {
                Ok(()) if names_file(path, &file) => {
                    let mut lock = DirectorLock {
                        file,
                        path: path.to_path_buf(),
                    };
                    lock.record_holder();
                    return Ok(Ok(lock));
                }
                Ok(()) => continue,
                Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(holder(&file))),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| {
                        format!("{}: cannot lock the director lock", path.display())
                    });
                }
            }
        }
        bail!(
            "{}: the director lock file was removed or replaced {MAX_REPLACED} times while \
             lvsctl locked it; find what keeps deleting it (nothing should), then try again",
            path.display()
        )
    }

    /// Waits up to `timeout` for the lock. `advice` ends the error when it is not granted
    /// (what the caller's user can do about it).
    pub fn acquire(timeout: Duration, advice: &str) -> Result<Self> {
        let path = lock_path();
        let start = Instant::now();
        let mut told = false;
        loop {
            let holder = match Self::try_acquire_at(&path)? {
                Ok(lock) => return Ok(lock),
                Err(holder) => holder,
            };
            if start.elapsed() >= timeout {
                bail!(held_too_long(&path, holder.as_deref(), timeout, advice));
            }
            if !told {
                let holder = holder.map(|h| format!(" ({h})")).unwrap_or_default();
                info!(
                    "waiting for another lvsctl holding {}{holder}",
                    path.display()
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails when the lock file was removed or replaced since it was locked: another lvsctl
    /// may then hold the lock on the new file, so this one must not change the director.
    /// Checked just before writing to the kernel.
    pub fn still_held(&self) -> Result<()> {
        if names_file(&self.path, &self.file) {
            return Ok(());
        }
        bail!(
            "{}: the director lock file was removed or replaced while this lvsctl held it, so \
             another lvsctl may be changing the director; nothing was changed. Keep the lock \
             file in place (for systemd: RuntimeDirectoryPreserve=yes) and run again",
            self.path.display()
        )
    }

    /// Writes `pid N: command line` into the lock file so a waiting lvsctl can say who holds it.
    /// Best effort: the lock is what matters, not the note.
    fn record_holder(&mut self) {
        let args: Vec<String> = std::env::args().collect();
        let note = format!("pid {}: {}\n", std::process::id(), args.join(" "));
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(note.as_bytes());
        let _ = self.file.flush();
    }
}

impl Drop for DirectorLock {
    fn drop(&mut self) {
        // Clear the note before the lock goes with the file descriptor, so a later holder that
        // writes none (another tool) is never named after us.
        let _ = self.file.set_len(0);
    }
}

/// How many times in a row the lock file may vanish under a new holder before it gives up.
const MAX_REPLACED: usize = 5;

/// Whether `path` still names `file` (same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Why a caller gave up on the lock at `path` after `waited`; `advice` says what its user can do.
pub fn held_too_long(path: &Path, holder: Option<&str>, waited: Duration, advice: &str) -> String {
    let holder = holder.map(|h| format!(" by {h}")).unwrap_or_default();
    format!(
        "another lvsctl is changing this director: lock {} is held{holder}; gave up after \
         waiting {:.1}s ({advice})",
        path.display(),
        waited.as_secs_f64()
    )
}

/// The holder's note, if it left one and that process still runs.
fn holder(file: &File) -> Option<String> {
    let mut text = String::new();
    let mut f = file;
    f.rewind().ok()?;
    f.take(4096).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    let pid = line.strip_prefix("pid ")?.split(':').next()?;
    std::path::Path::new("/proc")
        .join(pid)
        .exists()
        .then(|| line.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_holder_note_names_a_live_process_only() {
        let path = std::env::temp_dir().join(format!("lvsctl-lock-test-{}", std::process::id()));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        writeln!(f, "pid {}: lvsctl apply -f x.yaml", std::process::id()).unwrap();
        assert_eq!(
            holder(&f).unwrap(),
            format!("pid {}: lvsctl apply -f x.yaml", std::process::id())
        );
        f.set_len(0).unwrap();
        f.rewind().unwrap();
        // pid_max is at most 2^22, so this one cannot exist.
        writeln!(f, "pid 99999999: lvsctl apply").unwrap();
        assert_eq!(holder(&f), None);
        std::fs::remove_file(&path).unwrap();
    }

    /// An empty folder of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lvsctl-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Whoever can open the lock file can hold it (flock needs no write access), and while
    /// they do no `apply` runs and every daemon pass fails: nobody but its owner may open it,
    /// also when an older lvsctl left it readable.
    #[test]
    fn only_the_owner_can_open_the_lock_file() {
        let dir = scratch("mode");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.join("lock");
        drop(DirectorLock::try_acquire_at(&fresh).unwrap().unwrap());
        assert_eq!(mode(&fresh), 0o600);
        let old = dir.join("old-lock");
        std::fs::write(&old, "").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(DirectorLock::try_acquire_at(&old).unwrap().unwrap());
        assert_eq!(mode(&old), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The lock is taken as root, and its note truncates and writes the file: a symlink at the
    /// lock's path (left by whoever can write its folder, e.g. a `LVSCTL_LOCK_FILE` under
    /// another user's directory) must not make lvsctl overwrite the file it points to.
    #[test]
    fn a_symlink_at_the_lock_path_is_refused_and_its_target_left_alone() {
        let dir = scratch("link");
        let victim = dir.join("precious");
        std::fs::write(&victim, "root:secret\n").unwrap();
        let path = dir.join("lock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = DirectorLock::try_acquire_at(&path)
            .map(drop)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_holder_whose_lock_file_was_removed_knows_it() {
        let dir = std::env::temp_dir().join(format!("lvsctl-lock-gone-{}", std::process::id()));
        let path = dir.join("lock");
        let first = DirectorLock::try_acquire_at(&path).unwrap().unwrap();
        assert!(DirectorLock::try_acquire_at(&path).unwrap().is_err());
        // What systemd does to a unit's RuntimeDirectory when the unit stops.
        std::fs::remove_dir_all(&dir).unwrap();
        // The old holder's lock is on a file nobody can open any more: the path names a new
        // one, which the next lvsctl locks. The old holder must see it lost the lock.
        let second = DirectorLock::try_acquire_at(&path).unwrap().unwrap();
        let err = first.still_held().unwrap_err().to_string();
        assert!(
            err.contains("removed or replaced while this lvsctl held it"),
            "{err}"
        );
        second.still_held().unwrap();
        assert!(DirectorLock::try_acquire_at(&path).unwrap().is_err());
        drop((first, second));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
