//! Runs on any machine: what lvsctl says when the kernel has no IPVS, and that a kernel with
//! IPVS is found. (The development machine's kernel has no IPVS; the VM's has.)
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lvsctl_ipvs::{IpvsError, IpvsSocket};

#[test]
fn missing_ipvs_is_reported_clearly() {
    let result = IpvsSocket::open();
    if Path::new("/proc/net/ip_vs").exists() {
        // This kernel has IPVS loaded: the family must resolve.
        let s = result.unwrap();
        assert_ne!(s.family(), 0);
        return;
    }
    let err = result.unwrap_err();
    assert!(matches!(err, IpvsError::Unavailable), "{err:?}");
    assert_eq!(
        err.to_string(),
        "IPVS is not available in this kernel (load the ip_vs module: modprobe ip_vs)"
    );
}
