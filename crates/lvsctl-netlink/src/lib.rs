//! The IPVS generic-netlink codec: typed commands, attributes and kernel-shaped records for the
//! kernel's "IPVS" family, plus netlink framing. Pure: it owns encoding and decoding only and
//! must not open sockets or touch the kernel (that is `lvsctl-ipvs`).
//!
//! Byte orders follow `include/uapi/linux/ip_vs.h` and `net/netfilter/ipvs/ip_vs_ctl.c`: ports
//! (service, real server, tunnel) are network order, the IPv4 netmask is mask bytes in network
//! order, everything else is host order. Nests are emitted without `NLA_F_NESTED`, as the
//! kernel does, and parsing accepts both. Parsing never panics; unknown attributes are kept as
//! `Other(DefaultNla)`.

mod attr;
pub mod constants;
mod daemon;
mod dest;
pub mod frame;
mod message;
mod raw;
mod request;
mod service;
mod stats;

pub use daemon::DaemonAttr;
pub use dest::DestAttr;
pub use frame::{Incoming, IpvsNetlinkMessage, decode_datagram, encode_get_family, encode_ipvs};
pub use message::{InfoAttr, IpvsAttr, IpvsCmd, IpvsMessage};
pub use raw::{
    DaemonRaw, DestRaw, InfoRaw, RawError, ServiceRaw, StatsRaw, TimeoutsRaw, addr_from_raw,
    addr_to_raw,
};
pub use request::{IpvsRequest, daemon_state_name};
pub use service::{IpvsFlags, Netmask, ServiceAttr};
pub use stats::{StatValue, StatsAttr};

pub use netlink_packet_core::{DecodeError, DefaultNla};
