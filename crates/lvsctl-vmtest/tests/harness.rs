//! The VM harness itself: exit statuses, timeouts, errors, and Rust binaries built on the
//! host running inside the VM. Each test boots its own VM (except where noted).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lvsctl_vmtest::{VmError, VmRun, skip_requested, test_binary, workspace_bin_in};

#[test]
fn exit_status_and_output_pass_through() {
    if skip_requested("exit_status_and_output_pass_through") {
        return;
    }
    let out = VmRun::new()
        .timeout(Duration::from_secs(240))
        .script("echo \"hello from $(hostname) in $PWD\"\nexit 7\n")
        .run();
    assert_eq!(out.status, 7, "{}", out.console);
    assert_eq!(
        out.lines_with_prefix("hello from "),
        ["hello from director in /opt"]
    );
}

#[test]
fn rust_binaries_from_the_workspace_run_in_the_vm() {
    if skip_requested("rust_binaries_from_the_workspace_run_in_the_vm") {
        return;
    }
    let smoke = test_binary("lvsctl-vmtest", "guest_smoke").unwrap();
    let info = workspace_bin_in("lvsctl-vmtest", "lvsctl-vm-info").unwrap();
    assert!(smoke.is_file() && info.is_file());
    let out = VmRun::new()
        .timeout(Duration::from_secs(240))
        .copy_to(&smoke, "/opt/guest_smoke")
        .copy(&info)
        .script("set -e\n/opt/guest_smoke --test-threads=1 --nocapture\n/opt/lvsctl-vm-info\n")
        .run();
    out.assert_success();
    // libtest prints the test's output on the same line as its name.
    assert!(
        out.console
            .contains("guest_smoke: IP Virtual Server version"),
        "{}",
        out.console
    );
    assert!(
        out.console.contains("test result: ok. 2 passed"),
        "{}",
        out.console
    );
    let modules = out.lines_with_prefix("ipvs modules: ");
    assert_eq!(modules.len(), 1, "{}", out.console);
    for m in ["ip_vs", "ip_vs_rr", "ip_vs_wlc", "ip_vs_sh", "ip_vs_mh"] {
        assert!(
            modules[0].split_whitespace().any(|x| x == m),
            "{m} not loaded: {}",
            modules[0]
        );
    }
}

#[test]
fn a_hung_vm_is_killed_at_its_timeout() {
    if skip_requested("a_hung_vm_is_killed_at_its_timeout") {
        return;
    }
    // The timeout counts from qemu's start; 60 s is usually well past boot, but on a loaded
    // machine the VM may still be booting when it is killed, which must be a timeout too.
    let err = VmRun::new()
        .timeout(Duration::from_secs(60))
        .script("echo about-to-hang\nsleep 3600\n")
        .try_run()
        .unwrap_err();
    let console = err.console().unwrap_or_default();
    assert!(
        matches!(
            err,
            VmError::Timeout {
                timeout_secs: 60,
                ..
            }
        ),
        "{err}\n{console}"
    );
    assert!(console.contains("lvsctl-vm: booting kernel"), "{console}");
    assert!(
        console.contains("did not finish within 60s and was killed"),
        "{console}"
    );
}

#[test]
fn a_missing_copy_fails_with_the_reason() {
    // No VM boots: run.sh rejects the argument first. Still skipped with the others, as it
    // needs the VM prerequisites.
    if skip_requested("a_missing_copy_fails_with_the_reason") {
        return;
    }
    let err = VmRun::new()
        .copy("/nonexistent/lvsctl-vmtest-file")
        .script("true")
        .try_run()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("--copy: /nonexistent/lvsctl-vmtest-file does not exist"),
        "{msg}"
    );
}
