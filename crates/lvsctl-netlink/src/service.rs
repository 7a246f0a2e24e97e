//! Service attributes (`IPVS_SVC_ATTR_*`, inside `IPVS_CMD_ATTR_SERVICE`).

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

use crate::attr::*;
use crate::constants::*;
use crate::stats::StatsAttr;

/// `struct ip_vs_flags { __u32 flags; __u32 mask; }`, host order. The kernel computes
/// `new = (old & !mask) | (flags & mask)`; replies carry `mask = !0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpvsFlags {
    pub flags: u32,
    pub mask: u32,
}

/// `IPVS_SVC_ATTR_NETMASK`, kept as its 4 wire bytes because their meaning depends on the
/// family: the kernel reads them with `nla_get_be32`, so for IPv4 they are the mask in network
/// order (`ff ff ff 00` for /24), while for IPv6 they are the prefix length as a host-order u32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Netmask(pub [u8; 4]);

impl Netmask {
    /// IPv4 mask of `prefix` leading ones (clamped to 32).
    pub fn from_v4_prefix(prefix: u8) -> Netmask {
        let p = u32::from(prefix.min(32));
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        Netmask(mask.to_be_bytes())
    }

    /// IPv6 prefix length (the kernel accepts 1..=128).
    pub fn from_v6_prefix(prefix: u8) -> Netmask {
        Netmask(u32::from(prefix).to_ne_bytes())
    }

    /// For `af`: the mask for AF_INET, the prefix length for AF_INET6.
    pub fn from_prefix(af: u16, prefix: u8) -> Netmask {
        if af == AF_INET6 {
            Netmask::from_v6_prefix(prefix)
        } else {
            Netmask::from_v4_prefix(prefix)
        }
    }

    /// IPv4: number of leading one bits of the mask.
    pub fn v4_prefix(self) -> u8 {
        // leading_ones() is at most 32.
        u32::from_be_bytes(self.0).leading_ones() as u8
    }

    /// IPv6: the prefix length as the kernel stores it (may be anything on the wire).
    pub fn v6_prefix(self) -> u32 {
        u32::from_ne_bytes(self.0)
    }

    /// The prefix length for `af`, if it is one a netmask can have (v4 contiguous, v6 ≤ 128).
    pub fn prefix(self, af: u16) -> Option<u8> {
        if af == AF_INET6 {
            u8::try_from(self.v6_prefix()).ok().filter(|p| *p <= 128)
        } else {
            let p = self.v4_prefix();
            (Netmask::from_v4_prefix(p) == self).then_some(p)
        }
    }
}

/// An attribute inside `IPVS_CMD_ATTR_SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceAttr {
    /// `AF`, host-order u16 (AF_INET 2, AF_INET6 10).
    Af(u16),
    /// `PROTOCOL`, host-order u16 (IPPROTO_TCP 6, UDP 17, SCTP 132).
    Protocol(u16),
    /// `ADDR`: 16-byte `union nf_inet_addr` (IPv4 in the first 4 bytes); 4 bytes accepted.
    Addr([u8; 16]),
    /// `PORT`, network order on the wire.
    Port(u16),
    /// `FWMARK`, host order.
    Fwmark(u32),
    /// `SCHED_NAME`, NUL-terminated ("none" = no scheduler bound).
    SchedName(String),
    /// `FLAGS`: `{flags, mask}`.
    Flags(IpvsFlags),
    /// `TIMEOUT`: persistence timeout in seconds.
    Timeout(u32),
    /// `NETMASK`: see [`Netmask`].
    Netmask(Netmask),
    /// `STATS` (output only).
    Stats(Vec<StatsAttr>),
    /// `PE_NAME`, NUL-terminated persistence engine name (e.g. "sip").
    PeName(String),
    /// `STATS64` (output only).
    Stats64(Vec<StatsAttr>),
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        use ServiceAttr::*;
        match self {
            Af(_) | Protocol(_) | Port(_) => 2,
            Fwmark(_) | Timeout(_) | Netmask(_) => 4,
            Addr(_) => 16,
            Flags(_) => 8,
            SchedName(s) | PeName(s) => c_string_len(s),
            Stats(a) | Stats64(a) => nested_len(a),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use ServiceAttr::*;
        match self {
            Af(_) => IPVS_SVC_ATTR_AF,
            Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            Addr(_) => IPVS_SVC_ATTR_ADDR,
            Port(_) => IPVS_SVC_ATTR_PORT,
            Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            Flags(_) => IPVS_SVC_ATTR_FLAGS,
            Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            Stats(_) => IPVS_SVC_ATTR_STATS,
            PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            Stats64(_) => IPVS_SVC_ATTR_STATS64,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use ServiceAttr::*;
        match self {
            Af(v) | Protocol(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Port(v) => buffer.copy_from_slice(&v.to_be_bytes()),
            Fwmark(v) | Timeout(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Addr(a) => buffer.copy_from_slice(a),
            Netmask(m) => buffer.copy_from_slice(&m.0),
            Flags(f) => {
                buffer[..4].copy_from_slice(&f.flags.to_ne_bytes());
                buffer[4..8].copy_from_slice(&f.mask.to_ne_bytes());
            }
            SchedName(s) | PeName(s) => emit_c_string(s, buffer),
            Stats(a) | Stats64(a) => emit_nested(a, buffer),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => ServiceAttr::Af(u16_ne(v, "IPVS_SVC_ATTR_AF")?),
            IPVS_SVC_ATTR_PROTOCOL => ServiceAttr::Protocol(u16_ne(v, "IPVS_SVC_ATTR_PROTOCOL")?),
            IPVS_SVC_ATTR_ADDR => ServiceAttr::Addr(inet_addr(v, "IPVS_SVC_ATTR_ADDR")?),
            IPVS_SVC_ATTR_PORT => ServiceAttr::Port(u16_be(v, "IPVS_SVC_ATTR_PORT")?),
            IPVS_SVC_ATTR_FWMARK => ServiceAttr::Fwmark(u32_ne(v, "IPVS_SVC_ATTR_FWMARK")?),
            IPVS_SVC_ATTR_SCHED_NAME => {
                ServiceAttr::SchedName(c_string(v, "IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                let b: [u8; 8] = fixed(v, "IPVS_SVC_ATTR_FLAGS")?;
                ServiceAttr::Flags(IpvsFlags {
                    flags: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                    mask: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                })
            }
            IPVS_SVC_ATTR_TIMEOUT => ServiceAttr::Timeout(u32_ne(v, "IPVS_SVC_ATTR_TIMEOUT")?),
            IPVS_SVC_ATTR_NETMASK => {
                ServiceAttr::Netmask(Netmask(fixed(v, "IPVS_SVC_ATTR_NETMASK")?))
            }
            IPVS_SVC_ATTR_STATS => ServiceAttr::Stats(nested(v, "IPVS_SVC_ATTR_STATS")?),
            IPVS_SVC_ATTR_PE_NAME => ServiceAttr::PeName(c_string(v, "IPVS_SVC_ATTR_PE_NAME")?),
            IPVS_SVC_ATTR_STATS64 => ServiceAttr::Stats64(nested(v, "IPVS_SVC_ATTR_STATS64")?),
            _ => ServiceAttr::Other(other(buf)),
        })
    }
}
