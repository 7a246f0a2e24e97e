//! The real director: IPVS over generic netlink, lvsctl's mangle chain, VIPs over rtnetlink
//! (`lvsctl-kernel`), and the DR real-server side (`lvsctl-vip`).

use anyhow::{Context, Result};
use lvsctl_kernel::{Config, DestCounters, KernelBackend};
use lvsctl_plan::Backend;

/// `vips` comes from the manifest; without a manifest (`export`, `status`) pass `discover`
/// to find the interface that holds lvsctl's addresses. `counters`: what the caller reads of
/// the counters (less lets the fast read cover busy real servers too, and saves memory).
pub fn open(
    vips: crate::backend::VipScope<'_>,
    discover: bool,
    counters: DestCounters,
) -> Result<Box<dyn Backend + Send>> {
    let backend = KernelBackend::open(Config {
        vip_interface: vips.vip_interface.map(str::to_owned),
        realserver_interface: vips.realserver_interface.map(str::to_owned),
        xtables_wait: None,
        discover_vip_interface: discover,
        counters,
        // Next to the lock: a folder of lvsctl's own, on tmpfs (gone at reboot).
        mark_cache_dir: crate::lock::lock_path()
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_owned()),
    })?;
    Ok(Box::new(backend))
}

/// Puts this real server's VIPs on its interface and sets the ARP sysctls; returns the changes
/// (planned only, with `dry_run`), one line each.
pub fn realserver(
    side: &lvsctl_model::manifest::RealServerSide,
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut spec = lvsctl_vip::RealServerSpec::new(side.vips.iter().copied());
    spec.interface = side.interface.clone();
    if !side.arp {
        spec.arp_interfaces.clear();
    }
    let changes = if dry_run {
        lvsctl_vip::realserver_plan(&spec)
    } else {
        lvsctl_vip::realserver_apply(&spec)
    }
    .context("prepare this real server")?;
    Ok(changes.iter().map(ToString::to_string).collect())
}
