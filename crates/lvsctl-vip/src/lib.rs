//! lvsctl's addresses: VIPs on the director's VIP interface (created as a dummy link if
//! missing) and, on DR real servers, VIPs on `lo` plus the ARP sysctls. It owns only addresses
//! it stamped with its address protocol ([`ADDR_PROTO`] on the director,
//! [`REALSERVER_ADDR_PROTO`] on the real-server side); it must never remove or take over an
//! address someone else added, and never touch a namespace other than the calling thread's.
//!
//! Synchronous: a small blocking NETLINK_ROUTE socket over `netlink-sys` and
//! `netlink-packet-route` (no tokio; see `DESIGN-NOTES.md`).

mod error;
mod netlink;
mod realserver;
mod sysctl;
mod vips;

pub use error::VipError;
pub use realserver::{RealServerChange, RealServerSpec};
pub use sysctl::ConfKey;
pub use vips::{
    ADDR_PROTO, AddOutcome, IfAddr, Link, REALSERVER_ADDR_PROTO, Side, Vips, check_ifname,
};

#[doc(no_inline)]
pub use lvsctl_model::VipState;

use std::net::IpAddr;

/// [`Vips::observe`] on a fresh socket.
pub fn observe(interface: &str) -> Result<Option<VipState>, VipError> {
    Vips::open()?.observe(interface)
}

/// [`Vips::add_vip`] on a fresh socket.
pub fn add_vip(interface: &str, addr: IpAddr) -> Result<AddOutcome, VipError> {
    Vips::open()?.add_vip(interface, addr)
}

/// [`Vips::delete_vip`] on a fresh socket.
pub fn delete_vip(interface: &str, addr: IpAddr) -> Result<bool, VipError> {
    Vips::open()?.delete_vip(interface, addr)
}

/// [`Vips::realserver_plan`] on a fresh socket.
pub fn realserver_plan(spec: &RealServerSpec) -> Result<Vec<RealServerChange>, VipError> {
    Vips::open()?.realserver_plan(spec)
}

/// [`Vips::realserver_apply`] on a fresh socket.
pub fn realserver_apply(spec: &RealServerSpec) -> Result<Vec<RealServerChange>, VipError> {
    Vips::open()?.realserver_apply(spec)
}
