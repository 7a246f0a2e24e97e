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

    let run = async {
        let (status, out, err) =
            tokio::join!(child.wait(), read_bounded(stdout), read_bounded(stderr));
        (status, out, err)
    };
    let ran = tokio::time::timeout(deadline, run).await;
    // Finished (the child is reaped, its group id free for reuse) or timed out (killed below).
    group.0 = None;
    match ran {
        Ok((Ok(status), out, err)) if status.success() => {
            let _ = (out, err);
            Ok(())
        }
        Ok((Ok(status), out, err)) => {
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
        Ok((Err(e), _, _)) => Err(CheckError::Exec(format!(
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

async fn read_bounded<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut chunk = [0u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
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
    // for this child (process_group(0)) and the child has not been reaped yet, so its id cannot
    // have been reused by another group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
