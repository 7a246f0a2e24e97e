//! Real-server attributes (`IPVS_DEST_ATTR_*`, inside `IPVS_CMD_ATTR_DEST`).

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

use crate::attr::*;
use crate::constants::*;
use crate::stats::StatsAttr;

/// An attribute inside `IPVS_CMD_ATTR_DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestAttr {
    /// `ADDR`: 16-byte `union nf_inet_addr`; 4 bytes accepted.
    Addr([u8; 16]),
    /// `PORT`, network order on the wire.
    Port(u16),
    /// `FWD_METHOD`: `IP_VS_CONN_F_*` (the kernel masks it with 0x7).
    FwdMethod(u32),
    /// `WEIGHT` (the kernel reads it as an int; negative = ERANGE).
    Weight(u32),
    /// `U_THRESH`: upper connection threshold, 0 = none.
    UpperThreshold(u32),
    /// `L_THRESH`: lower connection threshold.
    LowerThreshold(u32),
    /// `ACTIVE_CONNS` (output only).
    ActiveConns(u32),
    /// `INACT_CONNS` (output only).
    InactiveConns(u32),
    /// `PERSIST_CONNS` (output only).
    PersistConns(u32),
    /// `STATS` (output only).
    Stats(Vec<StatsAttr>),
    /// `ADDR_FAMILY`, host order; optional on input (0 = the service's family).
    AddrFamily(u16),
    /// `STATS64` (output only).
    Stats64(Vec<StatsAttr>),
    /// `TUN_TYPE`: IPIP 0, GUE 1, GRE 2.
    TunType(u8),
    /// `TUN_PORT`, network order on the wire; required for GUE.
    TunPort(u16),
    /// `TUN_FLAGS`, host order: CSUM 1, REMCSUM 2.
    TunFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        use DestAttr::*;
        match self {
            Addr(_) => 16,
            Port(_) | AddrFamily(_) | TunPort(_) | TunFlags(_) => 2,
            TunType(_) => 1,
            FwdMethod(_) | Weight(_) | UpperThreshold(_) | LowerThreshold(_) | ActiveConns(_)
            | InactiveConns(_) | PersistConns(_) => 4,
            Stats(a) | Stats64(a) => nested_len(a),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use DestAttr::*;
        match self {
            Addr(_) => IPVS_DEST_ATTR_ADDR,
            Port(_) => IPVS_DEST_ATTR_PORT,
            FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            UpperThreshold(_) => IPVS_DEST_ATTR_U_THRESH,
            LowerThreshold(_) => IPVS_DEST_ATTR_L_THRESH,
            ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            InactiveConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            PersistConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            Stats(_) => IPVS_DEST_ATTR_STATS,
            AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            Stats64(_) => IPVS_DEST_ATTR_STATS64,
            TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use DestAttr::*;
        match self {
            Addr(a) => buffer.copy_from_slice(a),
            Port(v) | TunPort(v) => buffer.copy_from_slice(&v.to_be_bytes()),
            AddrFamily(v) | TunFlags(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            TunType(v) => buffer[0] = *v,
            FwdMethod(v) | Weight(v) | UpperThreshold(v) | LowerThreshold(v) | ActiveConns(v)
            | InactiveConns(v) | PersistConns(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Stats(a) | Stats64(a) => emit_nested(a, buffer),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => DestAttr::Addr(inet_addr(v, "IPVS_DEST_ATTR_ADDR")?),
            IPVS_DEST_ATTR_PORT => DestAttr::Port(u16_be(v, "IPVS_DEST_ATTR_PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => {
                DestAttr::FwdMethod(u32_ne(v, "IPVS_DEST_ATTR_FWD_METHOD")?)
            }
            IPVS_DEST_ATTR_WEIGHT => DestAttr::Weight(u32_ne(v, "IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => {
                DestAttr::UpperThreshold(u32_ne(v, "IPVS_DEST_ATTR_U_THRESH")?)
            }
            IPVS_DEST_ATTR_L_THRESH => {
                DestAttr::LowerThreshold(u32_ne(v, "IPVS_DEST_ATTR_L_THRESH")?)
            }
            IPVS_DEST_ATTR_ACTIVE_CONNS => {
                DestAttr::ActiveConns(u32_ne(v, "IPVS_DEST_ATTR_ACTIVE_CONNS")?)
            }
            IPVS_DEST_ATTR_INACT_CONNS => {
                DestAttr::InactiveConns(u32_ne(v, "IPVS_DEST_ATTR_INACT_CONNS")?)
            }
            IPVS_DEST_ATTR_PERSIST_CONNS => {
                DestAttr::PersistConns(u32_ne(v, "IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            IPVS_DEST_ATTR_STATS => DestAttr::Stats(nested(v, "IPVS_DEST_ATTR_STATS")?),
            IPVS_DEST_ATTR_ADDR_FAMILY => {
                DestAttr::AddrFamily(u16_ne(v, "IPVS_DEST_ATTR_ADDR_FAMILY")?)
            }
            IPVS_DEST_ATTR_STATS64 => DestAttr::Stats64(nested(v, "IPVS_DEST_ATTR_STATS64")?),
            IPVS_DEST_ATTR_TUN_TYPE => DestAttr::TunType(u8_of(v, "IPVS_DEST_ATTR_TUN_TYPE")?),
            IPVS_DEST_ATTR_TUN_PORT => DestAttr::TunPort(u16_be(v, "IPVS_DEST_ATTR_TUN_PORT")?),
            IPVS_DEST_ATTR_TUN_FLAGS => DestAttr::TunFlags(u16_ne(v, "IPVS_DEST_ATTR_TUN_FLAGS")?),
            _ => DestAttr::Other(other(buf)),
        })
    }
}
