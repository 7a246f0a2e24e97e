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

fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(line.chars().take(200).collect())
}

/// Kills the process group of a check whose future is dropped before its command ended.
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
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
