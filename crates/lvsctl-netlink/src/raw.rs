//! Flat, kernel-shaped records built from (and turned back into) attribute lists. They keep the
//! kernel's encodings (16-byte addresses, raw flags and netmask); the mapping to lvsctl's domain
//! model lives in `lvsctl-ipvs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::constants::*;
use crate::daemon::DaemonAttr;
use crate::dest::DestAttr;
use crate::message::{InfoAttr, IpvsAttr};
use crate::service::{IpvsFlags, Netmask, ServiceAttr};
use crate::stats::StatsAttr;

/// A kernel message lacked something a record needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RawError {
    #[error("{record} lacks attribute {attr}")]
    Missing {
        record: &'static str,
        attr: &'static str,
    },
    #[error("{message} lacks the {nest} nest")]
    MissingNest {
        message: &'static str,
        nest: &'static str,
    },
}

fn missing(record: &'static str, attr: &'static str) -> RawError {
    RawError::Missing { record, attr }
}

/// Counters of a `STATS`/`STATS64` nest, widened to u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsRaw {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl StatsRaw {
    /// Reads the known counters and skips PAD and unknown attributes.
    pub fn from_attrs(attrs: &[StatsAttr]) -> StatsRaw {
        let mut s = StatsRaw::default();
        for a in attrs {
            match a {
                StatsAttr::Conns(v) => s.conns = v.get(),
                StatsAttr::InPkts(v) => s.inpkts = v.get(),
                StatsAttr::OutPkts(v) => s.outpkts = v.get(),
                StatsAttr::InBytes(v) => s.inbytes = v.get(),
                StatsAttr::OutBytes(v) => s.outbytes = v.get(),
                StatsAttr::Cps(v) => s.cps = v.get(),
                StatsAttr::InPps(v) => s.inpps = v.get(),
                StatsAttr::OutPps(v) => s.outpps = v.get(),
                StatsAttr::InBps(v) => s.inbps = v.get(),
                StatsAttr::OutBps(v) => s.outbps = v.get(),
                _ => {}
            }
        }
        s
    }

    /// As a `STATS64` nest (every counter 64-bit, no PAD).
    pub fn to_attrs64(&self) -> Vec<StatsAttr> {
        use crate::stats::StatValue::U64;
        vec![
            StatsAttr::Conns(U64(self.conns)),
            StatsAttr::InPkts(U64(self.inpkts)),
            StatsAttr::OutPkts(U64(self.outpkts)),
            StatsAttr::InBytes(U64(self.inbytes)),
            StatsAttr::OutBytes(U64(self.outbytes)),
            StatsAttr::Cps(U64(self.cps)),
            StatsAttr::InPps(U64(self.inpps)),
            StatsAttr::OutPps(U64(self.outpps)),
            StatsAttr::InBps(U64(self.inbps)),
            StatsAttr::OutBps(U64(self.outbps)),
        ]
    }

    /// As a 32-bit `STATS` nest the way the kernel writes it (bytes 64-bit, the rest truncated).
    pub fn to_attrs32(&self) -> Vec<StatsAttr> {
        use crate::stats::StatValue::{U32, U64};
        // Truncation is what the kernel does for this legacy nest.
        let t = |v: u64| U32(v as u32);
        vec![
            StatsAttr::Conns(t(self.conns)),
            StatsAttr::InPkts(t(self.inpkts)),
            StatsAttr::OutPkts(t(self.outpkts)),
            StatsAttr::InBytes(U64(self.inbytes)),
            StatsAttr::OutBytes(U64(self.outbytes)),
            StatsAttr::Cps(t(self.cps)),
            StatsAttr::InPps(t(self.inpps)),
            StatsAttr::OutPps(t(self.outpps)),
            StatsAttr::InBps(t(self.inbps)),
            StatsAttr::OutBps(t(self.outbps)),
        ]
    }
}

/// Decodes a 16-byte `nf_inet_addr` for `af` (AF_INET uses the first 4 bytes).
pub fn addr_from_raw(af: u16, raw: &[u8; 16]) -> Option<IpAddr> {
    match af {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*raw))),
        _ => None,
    }
}

/// Encodes an address into a zero-filled 16-byte `nf_inet_addr`.
pub fn addr_to_raw(addr: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// One IPVS service as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRaw {
    pub af: u16,
    /// IPPROTO_*; 0 for fwmark services (the kernel does not report it for them).
    pub protocol: u16,
    pub addr: [u8; 16],
    pub port: u16,
    /// Non-zero: a fwmark service (identified by af + fwmark only).
    pub fwmark: u32,
    pub sched_name: String,
    pub flags: u32,
    pub mask: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    pub netmask: Netmask,
    pub pe_name: Option<String>,
    pub stats: Option<StatsRaw>,
    pub stats64: Option<StatsRaw>,
}

impl ServiceRaw {
    /// The attributes that identify the service: AF plus FWMARK, or PROTOCOL + ADDR + PORT.
    pub fn identity_attrs(&self) -> Vec<ServiceAttr> {
        let mut v = Vec::with_capacity(4);
        self.push_identity(&mut v);
        v
    }

    fn push_identity(&self, v: &mut Vec<ServiceAttr>) {
        v.push(ServiceAttr::Af(self.af));
        if self.fwmark != 0 {
            v.push(ServiceAttr::Fwmark(self.fwmark));
        } else {
            v.push(ServiceAttr::Protocol(self.protocol));
            v.push(ServiceAttr::Addr(self.addr));
            v.push(ServiceAttr::Port(self.port));
        }
    }

    /// Every attribute of the record: identity, SCHED_NAME, PE_NAME (when set), FLAGS, TIMEOUT,
    /// NETMASK, and the stats nests when present (they are `None` in requests).
    pub fn to_attrs(&self) -> Vec<ServiceAttr> {
        let mut v = Vec::with_capacity(11);
        self.push_identity(&mut v);
        v.push(ServiceAttr::SchedName(self.sched_name.clone()));
        if let Some(pe) = &self.pe_name {
            v.push(ServiceAttr::PeName(pe.clone()));
        }
        v.push(ServiceAttr::Flags(IpvsFlags {
            flags: self.flags,
            mask: self.mask,
        }));
        v.push(ServiceAttr::Timeout(self.timeout));
        v.push(ServiceAttr::Netmask(self.netmask));
        if let Some(s) = &self.stats {
            v.push(ServiceAttr::Stats(s.to_attrs32()));
        }
        if let Some(s) = &self.stats64 {
            v.push(ServiceAttr::Stats64(s.to_attrs64()));
        }
        v
    }

    /// Reads a SERVICE nest. AF and either FWMARK or PROTOCOL + ADDR + PORT are required (as
    /// the kernel requires them); everything else defaults when absent.
    pub fn from_attrs(attrs: &[ServiceAttr]) -> Result<ServiceRaw, RawError> {
        const R: &str = "IPVS service";
        let mut s = ServiceRaw::default();
        let (mut af, mut proto, mut addr, mut port) = (None, None, None, None);
        for a in attrs {
            match a {
                ServiceAttr::Af(v) => af = Some(*v),
                ServiceAttr::Protocol(v) => proto = Some(*v),
                ServiceAttr::Addr(v) => addr = Some(*v),
                ServiceAttr::Port(v) => port = Some(*v),
                ServiceAttr::Fwmark(v) => s.fwmark = *v,
                ServiceAttr::SchedName(v) => s.sched_name = v.clone(),
                ServiceAttr::Flags(f) => {
                    s.flags = f.flags;
                    s.mask = f.mask;
                }
                ServiceAttr::Timeout(v) => s.timeout = *v,
                ServiceAttr::Netmask(v) => s.netmask = *v,
                ServiceAttr::Stats(v) => s.stats = Some(StatsRaw::from_attrs(v)),
                ServiceAttr::PeName(v) => s.pe_name = Some(v.clone()),
                ServiceAttr::Stats64(v) => s.stats64 = Some(StatsRaw::from_attrs(v)),
                _ => {}
            }
        }
        s.af = af.ok_or_else(|| missing(R, "IPVS_SVC_ATTR_AF"))?;
        if s.fwmark == 0 {
            s.protocol = proto.ok_or_else(|| missing(R, "IPVS_SVC_ATTR_PROTOCOL"))?;
            s.addr = addr.ok_or_else(|| missing(R, "IPVS_SVC_ATTR_ADDR"))?;
            s.port = port.ok_or_else(|| missing(R, "IPVS_SVC_ATTR_PORT"))?;
        } else {
            // The kernel ignores these for fwmark services; keep whatever was sent.
            s.protocol = proto.unwrap_or(0);
            s.addr = addr.unwrap_or([0; 16]);
            s.port = port.unwrap_or(0);
        }
        Ok(s)
    }

    /// The virtual address, decoded by `af` (None for fwmark services or an unknown family).
    pub fn ip(&self) -> Option<IpAddr> {
        if self.fwmark != 0 {
            return None;
        }
        addr_from_raw(self.af, &self.addr)
    }

    /// Counters, preferring the 64-bit nest.
    pub fn best_stats(&self) -> Option<StatsRaw> {
        self.stats64.or(self.stats)
    }
}

/// One real server as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DestRaw {
    pub addr: [u8; 16],
    pub port: u16,
    /// `IP_VS_CONN_F_*` forwarding method (0..=4).
    pub fwd_method: u32,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// `ADDR_FAMILY`: reported since Linux 3.18; optional in requests.
    pub addr_family: Option<u16>,
    /// `TUN_*`: reported since Linux 5.2 (type, port) / 5.3 (flags); in requests, sent only
    /// when set.
    pub tun_type: Option<u8>,
    pub tun_port: Option<u16>,
    pub tun_flags: Option<u16>,
    /// Output-only counters (`None` in requests).
    pub active_conns: Option<u32>,
    pub inact_conns: Option<u32>,
    pub persist_conns: Option<u32>,
    pub stats: Option<StatsRaw>,
    pub stats64: Option<StatsRaw>,
}

impl DestRaw {
    /// ADDR + PORT (+ ADDR_FAMILY when set): enough for DEL_DEST.
    pub fn identity_attrs(&self) -> Vec<DestAttr> {
        let mut v = Vec::with_capacity(3);
        self.push_identity(&mut v);
        v
    }

    fn push_identity(&self, v: &mut Vec<DestAttr>) {
        if let Some(af) = self.addr_family {
            v.push(DestAttr::AddrFamily(af));
        }
        v.push(DestAttr::Addr(self.addr));
        v.push(DestAttr::Port(self.port));
    }

    /// Every set attribute: identity, FWD_METHOD, WEIGHT, thresholds, TUN_* when set, and the
    /// output-only counters when present.
    pub fn to_attrs(&self) -> Vec<DestAttr> {
        let mut v = Vec::with_capacity(16);
        self.push_identity(&mut v);
        v.push(DestAttr::FwdMethod(self.fwd_method));
        v.push(DestAttr::Weight(self.weight));
        if let Some(t) = self.tun_type {
            v.push(DestAttr::TunType(t));
        }
        if let Some(p) = self.tun_port {
            v.push(DestAttr::TunPort(p));
        }
        if let Some(f) = self.tun_flags {
            v.push(DestAttr::TunFlags(f));
        }
        v.push(DestAttr::UpperThreshold(self.u_threshold));
        v.push(DestAttr::LowerThreshold(self.l_threshold));
        if let Some(c) = self.active_conns {
            v.push(DestAttr::ActiveConns(c));
        }
        if let Some(c) = self.inact_conns {
            v.push(DestAttr::InactiveConns(c));
        }
        if let Some(c) = self.persist_conns {
            v.push(DestAttr::PersistConns(c));
        }
        if let Some(s) = &self.stats {
            v.push(DestAttr::Stats(s.to_attrs32()));
        }
        if let Some(s) = &self.stats64 {
            v.push(DestAttr::Stats64(s.to_attrs64()));
        }
        v
    }

    /// Reads a DEST nest; ADDR and PORT are required.
    pub fn from_attrs(attrs: &[DestAttr]) -> Result<DestRaw, RawError> {
        const R: &str = "IPVS real server";
        let mut d = DestRaw::default();
        let (mut addr, mut port) = (None, None);
        for a in attrs {
            match a {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::FwdMethod(v) => d.fwd_method = *v,
                DestAttr::Weight(v) => d.weight = *v,
                DestAttr::UpperThreshold(v) => d.u_threshold = *v,
                DestAttr::LowerThreshold(v) => d.l_threshold = *v,
                DestAttr::ActiveConns(v) => d.active_conns = Some(*v),
                DestAttr::InactiveConns(v) => d.inact_conns = Some(*v),
                DestAttr::PersistConns(v) => d.persist_conns = Some(*v),
                DestAttr::Stats(v) => d.stats = Some(StatsRaw::from_attrs(v)),
                DestAttr::AddrFamily(v) => d.addr_family = Some(*v),
                DestAttr::Stats64(v) => d.stats64 = Some(StatsRaw::from_attrs(v)),
                DestAttr::TunType(v) => d.tun_type = Some(*v),
                DestAttr::TunPort(v) => d.tun_port = Some(*v),
                DestAttr::TunFlags(v) => d.tun_flags = Some(*v),
                _ => {}
            }
        }
        d.addr = addr.ok_or_else(|| missing(R, "IPVS_DEST_ATTR_ADDR"))?;
        d.port = port.ok_or_else(|| missing(R, "IPVS_DEST_ATTR_PORT"))?;
        Ok(d)
    }

    /// The address, decoded by ADDR_FAMILY or, on kernels that do not report it, `service_af`.
    pub fn ip(&self, service_af: u16) -> Option<IpAddr> {
        addr_from_raw(self.addr_family.unwrap_or(service_af), &self.addr)
    }

    /// Counters, preferring the 64-bit nest.
    pub fn best_stats(&self) -> Option<StatsRaw> {
        self.stats64.or(self.stats)
    }
}

/// One sync daemon (state MASTER or BACKUP) and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DaemonRaw {
    pub state: u32,
    pub mcast_ifn: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<Ipv4Addr>,
    pub mcast_group6: Option<Ipv6Addr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

impl DaemonRaw {
    pub fn to_attrs(&self) -> Vec<DaemonAttr> {
        let mut v = vec![
            DaemonAttr::State(self.state),
            DaemonAttr::McastIfn(self.mcast_ifn.clone()),
            DaemonAttr::SyncId(self.sync_id),
        ];
        if let Some(x) = self.sync_maxlen {
            v.push(DaemonAttr::SyncMaxLen(x));
        }
        if let Some(x) = self.mcast_group {
            v.push(DaemonAttr::McastGroup(x));
        }
        if let Some(x) = self.mcast_group6 {
            v.push(DaemonAttr::McastGroup6(x));
        }
        if let Some(x) = self.mcast_port {
            v.push(DaemonAttr::McastPort(x));
        }
        if let Some(x) = self.mcast_ttl {
            v.push(DaemonAttr::McastTtl(x));
        }
        v
    }

    /// Reads a DAEMON nest; STATE, MCAST_IFN and SYNC_ID are required.
    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<DaemonRaw, RawError> {
        const R: &str = "IPVS sync daemon";
        let mut d = DaemonRaw::default();
        let (mut state, mut ifn, mut id) = (None, None, None);
        for a in attrs {
            match a {
                DaemonAttr::State(v) => state = Some(*v),
                DaemonAttr::McastIfn(v) => ifn = Some(v.clone()),
                DaemonAttr::SyncId(v) => id = Some(*v),
                DaemonAttr::SyncMaxLen(v) => d.sync_maxlen = Some(*v),
                DaemonAttr::McastGroup(v) => d.mcast_group = Some(*v),
                DaemonAttr::McastGroup6(v) => d.mcast_group6 = Some(*v),
                DaemonAttr::McastPort(v) => d.mcast_port = Some(*v),
                DaemonAttr::McastTtl(v) => d.mcast_ttl = Some(*v),
                _ => {}
            }
        }
        d.state = state.ok_or_else(|| missing(R, "IPVS_DAEMON_ATTR_STATE"))?;
        d.mcast_ifn = ifn.ok_or_else(|| missing(R, "IPVS_DAEMON_ATTR_MCAST_IFN"))?;
        d.sync_id = id.ok_or_else(|| missing(R, "IPVS_DAEMON_ATTR_SYNC_ID"))?;
        Ok(d)
    }
}

/// The GET_INFO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InfoRaw {
    /// `IP_VS_VERSION_CODE`, e.g. 0x010201.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl InfoRaw {
    /// `1.2.1` for 0x010201.
    pub fn version_string(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
    }

    pub fn to_attrs(&self) -> Vec<IpvsAttr> {
        vec![
            IpvsAttr::Info(InfoAttr::Version(self.version)),
            IpvsAttr::Info(InfoAttr::ConnTabSize(self.conn_tab_size)),
        ]
    }

    /// Reads the top-level attributes of a SET_INFO message; VERSION is required.
    pub fn from_attrs(attrs: &[IpvsAttr]) -> Result<InfoRaw, RawError> {
        let mut version = None;
        let mut conn_tab_size = 0;
        for a in attrs {
            match a {
                IpvsAttr::Info(InfoAttr::Version(v)) => version = Some(*v),
                IpvsAttr::Info(InfoAttr::ConnTabSize(v)) => conn_tab_size = *v,
                _ => {}
            }
        }
        Ok(InfoRaw {
            version: version.ok_or_else(|| missing("IPVS info", "IPVS_INFO_ATTR_VERSION"))?,
            conn_tab_size,
        })
    }
}

/// Connection timeouts in seconds. In SET_CONFIG a 0 leaves that timeout unchanged (the kernel
/// only applies non-zero values), which is also what ipvsadm's `--set` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutsRaw {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl TimeoutsRaw {
    pub fn to_attrs(&self) -> Vec<IpvsAttr> {
        vec![
            IpvsAttr::TimeoutTcp(self.tcp),
            IpvsAttr::TimeoutTcpFin(self.tcp_fin),
            IpvsAttr::TimeoutUdp(self.udp),
        ]
    }

    /// Reads the top-level TIMEOUT_* attributes; a missing one (protocol not built into the
    /// kernel) reads as 0.
    pub fn from_attrs(attrs: &[IpvsAttr]) -> TimeoutsRaw {
        let mut t = TimeoutsRaw::default();
        for a in attrs {
            match a {
                IpvsAttr::TimeoutTcp(v) => t.tcp = *v,
                IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = *v,
                IpvsAttr::TimeoutUdp(v) => t.udp = *v,
                _ => {}
            }
        }
        t
    }
}
