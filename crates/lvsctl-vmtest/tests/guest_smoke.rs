//! A Rust test binary meant to run INSIDE the VM (tests/harness.rs builds it with
//! `test_binary` and runs it there): proves that test executables built on the host run in
//! the guest and see its IPVS kernel. On the host (LVSCTL_IN_VM unset) it checks nothing.
#![allow(clippy::unwrap_used)]

use std::fs;

fn in_vm() -> bool {
    std::env::var_os("LVSCTL_IN_VM").is_some()
}

#[test]
fn guest_kernel_has_ipvs() {
    if !in_vm() {
        eprintln!("guest_smoke: not inside the lvsctl VM (LVSCTL_IN_VM unset); nothing to check");
        return;
    }
    let table = fs::read_to_string("/proc/net/ip_vs").expect("/proc/net/ip_vs in the vm");
    assert!(
        table.starts_with("IP Virtual Server version"),
        "unexpected /proc/net/ip_vs: {table}"
    );
    println!("guest_smoke: {}", table.lines().next().unwrap());
}

#[test]
fn guest_runs_as_root_in_opt() {
    if !in_vm() {
        return;
    }
    assert_eq!(
        std::env::current_dir().unwrap(),
        std::path::Path::new("/opt")
    );
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("0"), "{uid}");
}
