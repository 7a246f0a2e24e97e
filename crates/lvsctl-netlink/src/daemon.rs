//! Sync-daemon attributes (`IPVS_DAEMON_ATTR_*`, inside `IPVS_CMD_ATTR_DAEMON`).

use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

use crate::attr::*;
use crate::constants::*;

/// An attribute inside `IPVS_CMD_ATTR_DAEMON`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonAttr {
    /// `STATE`: 1 master, 2 backup.
    State(u32),
    /// `MCAST_IFN`: interface name, NUL-terminated, at most 15 bytes.
    McastIfn(String),
    /// `SYNC_ID` (0..=255 in ipvsadm).
    SyncId(u32),
    /// `SYNC_MAXLEN`, host-order u16.
    SyncMaxLen(u16),
    /// `MCAST_GROUP`: an IPv4 multicast group (`in_addr`, network order).
    McastGroup(Ipv4Addr),
    /// `MCAST_GROUP6`: an IPv6 multicast group.
    McastGroup6(Ipv6Addr),
    /// `MCAST_PORT`: **host**-order u16 (unlike service ports).
    McastPort(u16),
    /// `MCAST_TTL`.
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        use DaemonAttr::*;
        match self {
            State(_) | SyncId(_) | McastGroup(_) => 4,
            McastIfn(s) => c_string_len(s),
            SyncMaxLen(_) | McastPort(_) => 2,
            McastGroup6(_) => 16,
            McastTtl(_) => 1,
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use DaemonAttr::*;
        match self {
            State(_) => IPVS_DAEMON_ATTR_STATE,
            McastIfn(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            SyncMaxLen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use DaemonAttr::*;
        match self {
            State(v) | SyncId(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            McastIfn(s) => emit_c_string(s, buffer),
            SyncMaxLen(v) | McastPort(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            McastGroup(a) => buffer.copy_from_slice(&a.octets()),
            McastGroup6(a) => buffer.copy_from_slice(&a.octets()),
            McastTtl(v) => buffer[0] = *v,
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            IPVS_DAEMON_ATTR_STATE => DaemonAttr::State(u32_ne(v, "IPVS_DAEMON_ATTR_STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                DaemonAttr::McastIfn(c_string(v, "IPVS_DAEMON_ATTR_MCAST_IFN")?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => DaemonAttr::SyncId(u32_ne(v, "IPVS_DAEMON_ATTR_SYNC_ID")?),
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                DaemonAttr::SyncMaxLen(u16_ne(v, "IPVS_DAEMON_ATTR_SYNC_MAXLEN")?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => DaemonAttr::McastGroup(Ipv4Addr::from(fixed::<4>(
                v,
                "IPVS_DAEMON_ATTR_MCAST_GROUP",
            )?)),
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => DaemonAttr::McastGroup6(Ipv6Addr::from(fixed::<16>(
                v,
                "IPVS_DAEMON_ATTR_MCAST_GROUP6",
            )?)),
            IPVS_DAEMON_ATTR_MCAST_PORT => {
                DaemonAttr::McastPort(u16_ne(v, "IPVS_DAEMON_ATTR_MCAST_PORT")?)
            }
            IPVS_DAEMON_ATTR_MCAST_TTL => {
                DaemonAttr::McastTtl(u8_of(v, "IPVS_DAEMON_ATTR_MCAST_TTL")?)
            }
            _ => DaemonAttr::Other(other(buf)),
        })
    }
}
