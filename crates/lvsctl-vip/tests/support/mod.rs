//! Runs a test body in a fresh network namespace of its own.
//!
//! How: a new thread calls `unshare(CLONE_NEWNET)`. Namespaces belong to a task (thread), so
//! only that thread moves; programs it starts (`iptables-*`) inherit its namespace, and netlink
//! sockets and `/proc/sys/net` opened from it see the new namespace. The namespace disappears
//! when the thread and its children end. The host's own namespace is never touched: if the
//! unshare fails the body does not run at all.
//!
//! Without root the tests cannot run: they print a loud SKIPPED line (past libtest's capture),
//! or fail when `LVSCTL_REQUIRE_NETNS` is set, as `tests/run-all.sh` (CI) sets it.

#![allow(dead_code, clippy::unwrap_used)]

use std::io;

#[allow(unsafe_code)]
fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET only changes the calling thread's
    // network namespace, which is the thread spawned for this test and nothing else uses.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `body` in a new network namespace; panics in `body` fail the test.
pub fn in_netns<F>(name: &str, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let name = name.to_owned();
    let handle = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            if let Err(e) = unshare_net() {
                let msg = format!("cannot create a network namespace ({e}); run as root");
                if std::env::var_os("LVSCTL_REQUIRE_NETNS").is_some() {
                    panic!("{name}: {msg} (LVSCTL_REQUIRE_NETNS is set)");
                }
                // Straight to the process's stderr: libtest captures eprintln! here too.
                use std::io::Write;
                let _ = writeln!(std::io::stderr().lock(), "SKIPPED {name}: {msg}");
                return;
            }
            body();
        })
        .unwrap();
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}
