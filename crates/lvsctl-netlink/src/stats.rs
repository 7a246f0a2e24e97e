//! Statistics attributes (`IPVS_STATS_ATTR_*`) found inside the output-only `STATS` and `STATS64`
//! nests of services and real servers.
//!
//! In `STATS` most counters are 32-bit (truncated by the kernel) while the byte counters are
//! 64-bit; in `STATS64` every counter is 64-bit. Each value therefore keeps its wire width
//! ([`StatValue`]), so re-emitting a parsed list gives the same bytes. `PAD` attributes, which the
//! kernel inserts to align u64 values, land in [`StatsAttr::Other`] and are ignored by
//! [`crate::StatsRaw`].

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

use crate::attr::{fixed, other};
use crate::constants::*;

/// One counter value with its wire width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatValue {
    U32(u32),
    U64(u64),
}

impl StatValue {
    pub fn get(self) -> u64 {
        match self {
            StatValue::U32(v) => u64::from(v),
            StatValue::U64(v) => v,
        }
    }

    fn len(self) -> usize {
        match self {
            StatValue::U32(_) => 4,
            StatValue::U64(_) => 8,
        }
    }

    fn emit(self, buffer: &mut [u8]) {
        match self {
            StatValue::U32(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            StatValue::U64(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
        }
    }

    fn parse(value: &[u8], what: &str) -> Result<StatValue, DecodeError> {
        match value.len() {
            4 => Ok(StatValue::U32(u32::from_ne_bytes(fixed(value, what)?))),
            8 => Ok(StatValue::U64(u64::from_ne_bytes(fixed(value, what)?))),
            n => Err(DecodeError::from(format!(
                "invalid {what}: expected 4 or 8 bytes, got {n}"
            ))),
        }
    }
}

/// An attribute inside a `STATS` or `STATS64` nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsAttr {
    Conns(StatValue),
    InPkts(StatValue),
    OutPkts(StatValue),
    InBytes(StatValue),
    OutBytes(StatValue),
    Cps(StatValue),
    InPps(StatValue),
    OutPps(StatValue),
    InBps(StatValue),
    OutBps(StatValue),
    /// `PAD` and attributes from newer kernels.
    Other(DefaultNla),
}

impl StatsAttr {
    fn value(&self) -> Option<StatValue> {
        use StatsAttr::*;
        match self {
            Conns(v) | InPkts(v) | OutPkts(v) | InBytes(v) | OutBytes(v) | Cps(v) | InPps(v)
            | OutPps(v) | InBps(v) | OutBps(v) => Some(*v),
            Other(_) => None,
        }
    }
}

impl Nla for StatsAttr {
    fn value_len(&self) -> usize {
        match self {
            StatsAttr::Other(nla) => nla.value_len(),
            other => other.value().map_or(0, StatValue::len),
        }
    }

    fn kind(&self) -> u16 {
        use StatsAttr::*;
        match self {
            Conns(_) => IPVS_STATS_ATTR_CONNS,
            InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Cps(_) => IPVS_STATS_ATTR_CPS,
            InPps(_) => IPVS_STATS_ATTR_INPPS,
            OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            InBps(_) => IPVS_STATS_ATTR_INBPS,
            OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            StatsAttr::Other(nla) => nla.emit_value(buffer),
            other => {
                if let Some(v) = other.value() {
                    v.emit(buffer)
                }
            }
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => {
                StatsAttr::Conns(StatValue::parse(v, "IPVS_STATS_ATTR_CONNS")?)
            }
            IPVS_STATS_ATTR_INPKTS => {
                StatsAttr::InPkts(StatValue::parse(v, "IPVS_STATS_ATTR_INPKTS")?)
            }
            IPVS_STATS_ATTR_OUTPKTS => {
                StatsAttr::OutPkts(StatValue::parse(v, "IPVS_STATS_ATTR_OUTPKTS")?)
            }
            IPVS_STATS_ATTR_INBYTES => {
                StatsAttr::InBytes(StatValue::parse(v, "IPVS_STATS_ATTR_INBYTES")?)
            }
            IPVS_STATS_ATTR_OUTBYTES => {
                StatsAttr::OutBytes(StatValue::parse(v, "IPVS_STATS_ATTR_OUTBYTES")?)
            }
            IPVS_STATS_ATTR_CPS => StatsAttr::Cps(StatValue::parse(v, "IPVS_STATS_ATTR_CPS")?),
            IPVS_STATS_ATTR_INPPS => {
                StatsAttr::InPps(StatValue::parse(v, "IPVS_STATS_ATTR_INPPS")?)
            }
            IPVS_STATS_ATTR_OUTPPS => {
                StatsAttr::OutPps(StatValue::parse(v, "IPVS_STATS_ATTR_OUTPPS")?)
            }
            IPVS_STATS_ATTR_INBPS => {
                StatsAttr::InBps(StatValue::parse(v, "IPVS_STATS_ATTR_INBPS")?)
            }
            IPVS_STATS_ATTR_OUTBPS => {
                StatsAttr::OutBps(StatValue::parse(v, "IPVS_STATS_ATTR_OUTBPS")?)
            }
            _ => StatsAttr::Other(other(buf)),
        })
    }
}
