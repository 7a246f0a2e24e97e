//! The real director: IPVS over generic netlink, lvsctl's mangle chain, VIPs over rtnetlink.

use anyhow::{Result, bail};
use lvsctl_plan::Backend;

pub fn open() -> Result<Box<dyn Backend + Send>> {
    bail!("the kernel backend is not wired in yet")
}

pub fn realserver(
    _side: &lvsctl_model::manifest::RealServerSide,
    _dry_run: bool,
) -> Result<Vec<String>> {
    bail!("the real-server side is not wired in yet")
}
