//! The `exec` probe: runs a command directly (no shell, so no manifest text is ever interpreted
//! as shell syntax) with the real server in its environment.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::monitor::Target;
use crate::{CheckError, ExecProbe};

/// Output kept for the error message; the rest is read and discarded so the child never blocks
/// on a full pipe.
const KEEP_OUTPUT: usize = 4096;

/// How long the output may stay open after the command exited (a background helper holding
/// it) before it is no longer waited for.
const PIPE_GRACE: Duration = Duration::from_millis(150);

pub(crate) async fn check(
    probe: &ExecProbe,
    target: &Target,
    deadline: Duration,
) -> Result<(), CheckError> {
    let Some((program, args)) = probe.argv.split_first() else {
        return Err(CheckError::Config("exec command is empty".to_owned()));
    };
    let mut child = Command::new(program)
        .args(args)
        .env("LVSCTL_RS_ADDR", target.server.addr.to_string())
        .env("LVSCTL_RS_PORT", target.server.port.to_string())
        .env("LVSCTL_SERVICE", target.service.to_string())
        // systemd's socket is the daemon's to notify on, not a check's.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timed-out check is killed with everything it started.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if crate::probe::is_local_shortage(&e) {
                CheckError::Local {
                    during: format!("starting {program:?}"),
                    source: e,
                }
            } else {
                CheckError::Exec(format!("cannot run {program:?}: {e}"))
            }
        })?;
    let pid = child.id();
    // A check dropped while its command runs (stopped by a manifest change, or the daemon
    // stopping) takes the whole group with it; kill_on_drop alone reaches only the child.
    let mut group = KillGroupOnDrop(pid);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let mut out = Vec::new();
    let mut err = Vec::new();
    let ran = {
        let reads = async {
            tokio::join!(
                read_bounded(stdout, &mut out),
                read_bounded(stderr, &mut err)
            );
        };
        tokio::pin!(reads);
        let mut read_all = false;
        // The output is read while the command runs, so it never blocks on a full pipe.
        let waited = tokio::time::timeout(deadline, async {
            loop {
                tokio::select! {
                    status = child.wait() => break status,
                    () = &mut reads, if !read_all => read_all = true,
                }
            }
        })
        .await;
        if let Ok(Ok(_)) = waited {
            // The command ended, but something it left behind (`helper &`) may still hold its
            // output open: wait a moment for the rest of the output, then judge by the exit
            // status and kill what is left. The holder normally is in the group, which keeps
            // the group id from being reused.
            let drained = read_all || tokio::time::timeout(PIPE_GRACE, &mut reads).await.is_ok();
            if !drained && let Some(pid) = pid {
                kill_group(pid);
                // On its own: a killed process stuck in the kernel must not delay the verdict.
                tokio::spawn(reap_group(pid));
            }
        }
        waited
    };
    // Finished (the child is reaped, its group id free for reuse) or timed out (killed below).
    group.0 = None;
    match ran {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            let said = last_line(&err).or_else(|| last_line(&out));
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_owned(),
            };
            Err(CheckError::Exec(match said {
                Some(line) => format!("{program:?} {how}: {line}"),
                None => format!("{program:?} {how}"),
            }))
        }
        Ok(Err(e)) => Err(CheckError::Exec(format!(
            "waiting for {program:?} failed: {e}"
        ))),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid);
            }
            // Reap it; kill_on_drop covers the case where this wait never completes.
            let _ = child.kill().await;
            if let Some(pid) = pid {
                tokio::spawn(reap_group(pid));
            }
            Err(CheckError::Timeout {
                after: deadline,
                during: format!("running {program:?}; killed"),
            })
        }
    }
}

/// Reads `pipe` to its end, keeping the first [`KEEP_OUTPUT`] bytes in `kept` (which holds what
/// was read so far if the read is given up).
async fn read_bounded<R: AsyncRead + Unpin>(pipe: Option<R>, kept: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut chunk = [0u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = KEEP_OUTPUT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
            }
        }
    }
}

/// The command's last words, for the reason: it reaches the status file, the log and operators'
/// terminals, so control characters (escape sequences a relayed server answer may hold) are
/// shown escaped, never passed on.
fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let mut said = String::new();
    for c in line.chars().take(200) {
        match c {
            '\t' => said.push(' '),
            c if c.is_control() => said.extend(c.escape_default()),
            c => said.push(c),
        }
    }
    Some(said)
}

/// Kills the process group of a check whose future is dropped before its command ended.
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(reap_group(pid));
            }
        }
    }
}

/// How long the processes of a killed group are waited for; one stuck in the kernel does not
/// die at once and is then left.
const REAP_FOR: Duration = Duration::from_secs(2);
const REAP_POLL: Duration = Duration::from_millis(20);

/// Reaps the processes of the group led by `pgid` that were killed and became this process's
/// children. That happens when the daemon is PID 1 (a container's entrypoint) or a child
/// subreaper: the kernel gives it the orphans of the commands it killed, and without this they
/// stay zombies, one or more per killed check, until no process can start. Elsewhere init
/// has them and this returns at its first question. `waitpid(-pgid)` only ever reaps members
/// of that group, never another child (a check's command, iptables), and waits (yields) only
/// while a member still runs, which keeps the group id from being reused meanwhile.
async fn reap_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    let until = tokio::time::Instant::now() + REAP_FOR;
    loop {
        match reap_one(pgid) {
            Reaped::One => continue,
            Reaped::NoneLeft => return,
            Reaped::StillRunning if tokio::time::Instant::now() < until => {
                tokio::time::sleep(REAP_POLL).await;
            }
            Reaped::StillRunning => return,
        }
    }
}

enum Reaped {
    One,
    /// Children of ours remain in the group, none has exited yet.
    StillRunning,
    /// No child of ours is in the group (or it cannot be asked).
    NoneLeft,
}

#[allow(unsafe_code)]
fn reap_one(pgid: libc::pid_t) -> Reaped {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int into `status`, a live local; a negative pid selects the
    // children in that process group only.
    let r = unsafe { libc::waitpid(-pgid, &raw mut status, libc::WNOHANG) };
    match r {
        0 => Reaped::StillRunning,
        r if r > 0 => Reaped::One,
        // Interrupted: ask again at once.
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => Reaped::One,
        _ => Reaped::NoneLeft,
    }
}

/// Sends SIGKILL to the process group led by `pid`.
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The group was created
    // for this child (process_group(0)) and either the child has not been reaped yet, or it has
    // and a process it left in the group still holds its output; either way the id is in use
    // and cannot have been reused by another group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
