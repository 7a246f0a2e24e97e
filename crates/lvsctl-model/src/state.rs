//! The director state both sides of a diff are expressed in.
//!
//! `State` is what lvsctl compares: the manifest resolves into one (every default filled in), and
//! the kernel observer normalises what the kernel reports into one (HASHED flag masked, counters
//! moved to [`Counters`], tunnel fields dropped for non-tunnel real servers). The planner then
//! compares two `State`s field by field and never resolves a default itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Transport protocol of a non-fwmark service or of a MARK rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IANA protocol number (`IPPROTO_*`), as IPVS and iptables use it.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            other => Err(format!(
                "unknown protocol {other:?} (expected tcp, udp or sctp)"
            )),
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[serde(rename = "ipv4")]
    Inet,
    #[serde(rename = "ipv6")]
    Inet6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// `AF_INET` / `AF_INET6`.
    pub fn af(self) -> u16 {
        match self {
            Family::Inet => 2,
            Family::Inet6 => 10,
        }
    }

    /// Longest prefix of this family (32 or 128).
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::Inet => 32,
            Family::Inet6 => 128,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "ipv4",
            Family::Inet6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A firewall mark: never 0 (the kernel treats 0 as "no fwmark").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fwmark(pub NonZeroU32);

impl Fwmark {
    pub fn new(v: u32) -> Option<Self> {
        NonZeroU32::new(v).map(Fwmark)
    }
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Fwmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The identity of an IPVS virtual service: what the kernel looks it up by. Changing any of
/// these fields means delete + add; everything in [`ServiceSpec`] can be edited in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ServiceKey {
    /// protocol + VIP + port (port 0 = every port, persistent only).
    Inet {
        protocol: Protocol,
        vip: IpAddr,
        port: u16,
    },
    /// fwmark + family.
    Fwmark { mark: Fwmark, family: Family },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { vip, .. } => Family::of(vip),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }

    /// A UDP (protocol, VIP, port) service; a fwmark service's traffic has no one protocol.
    pub fn is_udp(&self) -> bool {
        matches!(
            self,
            ServiceKey::Inet {
                protocol: Protocol::Udp,
                ..
            }
        )
    }
}

/// `tcp/192.168.6.101:80`, `tcp/[2001:db8::1]:443`, `fwmark/10` (`fwmark/10/ipv6` for IPv6).
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                vip: IpAddr::V4(a),
                port,
            } => write!(f, "{protocol}/{a}:{port}"),
            ServiceKey::Inet {
                protocol,
                vip: IpAddr::V6(a),
                port,
            } => write!(f, "{protocol}/[{a}]:{port}"),
            ServiceKey::Fwmark {
                mark,
                family: Family::Inet,
            } => write!(f, "fwmark/{mark}"),
            ServiceKey::Fwmark {
                mark,
                family: Family::Inet6,
            } => write!(f, "fwmark/{mark}/ipv6"),
        }
    }
}

/// An IPVS scheduler. The manifest accepts only the kernel's known schedulers; the observer
/// keeps whatever name the kernel reports (`Other`), and `None` is an unbound scheduler.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
    Twos,
    /// The kernel's "none": no scheduler bound.
    None,
    /// A scheduler name the kernel reported that lvsctl does not know.
    Other(String),
}

impl Scheduler {
    /// Every scheduler the mainline kernel ships, as accepted in manifests.
    pub const KNOWN: &'static [&'static str] = &[
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
        "twos",
    ];

    /// Parses a known name strictly (manifests): `None` for anything else.
    pub fn known(name: &str) -> Option<Scheduler> {
        Some(match name {
            "rr" => Scheduler::Rr,
            "wrr" => Scheduler::Wrr,
            "lc" => Scheduler::Lc,
            "wlc" => Scheduler::Wlc,
            "lblc" => Scheduler::Lblc,
            "lblcr" => Scheduler::Lblcr,
            "dh" => Scheduler::Dh,
            "sh" => Scheduler::Sh,
            "sed" => Scheduler::Sed,
            "nq" => Scheduler::Nq,
            "fo" => Scheduler::Fo,
            "ovf" => Scheduler::Ovf,
            "mh" => Scheduler::Mh,
            "twos" => Scheduler::Twos,
            _ => return None,
        })
    }

    /// Parses what the kernel reports: never fails.
    pub fn from_kernel(name: &str) -> Scheduler {
        match name {
            "none" => Scheduler::None,
            other => Scheduler::known(other).unwrap_or_else(|| Scheduler::Other(other.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
            Scheduler::None => "none",
            Scheduler::Other(s) => s,
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Scheduler> for String {
    fn from(s: Scheduler) -> String {
        s.as_str().to_owned()
    }
}

// Infallible on purpose: serde's `try_from` keeps the door open for rejecting names later.
#[allow(clippy::infallible_try_from)]
impl TryFrom<String> for Scheduler {
    type Error = std::convert::Infallible;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(Scheduler::from_kernel(&s))
    }
}

/// Service flags that are configuration (the kernel's HASHED bit is state and is masked away
/// by the observer). Bit values are `IP_VS_SVC_F_*` from `uapi/linux/ip_vs.h`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct ServiceFlags {
    /// `IP_VS_SVC_F_ONEPACKET` (0x4): schedule each UDP datagram on its own.
    pub one_packet: bool,
    /// `IP_VS_SVC_F_SCHED1` (0x8): sh-fallback / mh-fallback.
    pub sched1: bool,
    /// `IP_VS_SVC_F_SCHED2` (0x10): sh-port / mh-port.
    pub sched2: bool,
    /// `IP_VS_SVC_F_SCHED3` (0x20): reserved for schedulers.
    pub sched3: bool,
}

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x1;
    pub const HASHED: u32 = 0x2;
    pub const ONEPACKET: u32 = 0x4;
    pub const SCHED1: u32 = 0x8;
    pub const SCHED2: u32 = 0x10;
    pub const SCHED3: u32 = 0x20;

    /// The configuration bits, without PERSISTENT (carried by [`Persistence`]).
    pub fn bits(self) -> u32 {
        (if self.one_packet { Self::ONEPACKET } else { 0 })
            | (if self.sched1 { Self::SCHED1 } else { 0 })
            | (if self.sched2 { Self::SCHED2 } else { 0 })
            | (if self.sched3 { Self::SCHED3 } else { 0 })
    }

    /// Reads configuration bits, ignoring PERSISTENT, HASHED and unknown bits.
    pub fn from_bits(bits: u32) -> Self {
        ServiceFlags {
            one_packet: bits & Self::ONEPACKET != 0,
            sched1: bits & Self::SCHED1 != 0,
            sched2: bits & Self::SCHED2 != 0,
            sched3: bits & Self::SCHED3 != 0,
        }
    }

    /// Names as ipvsadm prints them for the given scheduler (`sh-fallback`, `mh-port`, `flag-3`).
    pub fn names(self, scheduler: &Scheduler) -> Vec<String> {
        let prefix = match scheduler {
            Scheduler::Sh => Some("sh"),
            Scheduler::Mh => Some("mh"),
            _ => None,
        };
        let mut out = Vec::new();
        if self.one_packet {
            out.push("ops".to_owned());
        }
        for (on, idx, suffix) in [
            (self.sched1, 1, "fallback"),
            (self.sched2, 2, "port"),
            (self.sched3, 3, ""),
        ] {
            if on {
                out.push(match prefix {
                    Some(p) if !suffix.is_empty() => format!("{p}-{suffix}"),
                    _ => format!("flag-{idx}"),
                });
            }
        }
        out
    }
}

/// Persistence of a service: timeout in seconds (1..=2678400) and the client netmask as a
/// prefix length (IPv4 255.255.255.0 = 24; IPv6 1..=128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Persistence {
    pub timeout: u32,
    pub netmask: u8,
}

impl Persistence {
    pub const MAX_TIMEOUT: u32 = 86_400 * 31;
    /// ipvsadm's default when `-p` is given without a value.
    pub const DEFAULT_TIMEOUT: u32 = 360;
}

/// Everything about a service that can be edited in place (`IPVS_CMD_SET_SERVICE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub scheduler: Scheduler,
    pub flags: ServiceFlags,
    pub persistence: Option<Persistence>,
    /// Persistence engine (e.g. "sip"); rarely used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_name: Option<String>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            scheduler: Scheduler::Wlc,
            flags: ServiceFlags::default(),
            persistence: None,
            pe_name: None,
        }
    }
}

impl From<ServiceKey> for String {
    fn from(k: ServiceKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for ServiceKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Parses the [`fmt::Display`] form back.
impl FromStr for ServiceKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid service key {s:?} (expected tcp/VIP:PORT or fwmark/N[/ipv6])");
        let (head, rest) = s.split_once('/').ok_or_else(bad)?;
        if head == "fwmark" {
            let (mark, family) = match rest.split_once('/') {
                Some((m, "ipv6")) => (m, Family::Inet6),
                Some((m, "ipv4")) => (m, Family::Inet),
                Some(_) => return Err(bad()),
                None => (rest, Family::Inet),
            };
            let mark = mark.parse().ok().and_then(Fwmark::new).ok_or_else(bad)?;
            return Ok(ServiceKey::Fwmark { mark, family });
        }
        let protocol: Protocol = head.parse()?;
        let sa: std::net::SocketAddr = rest.parse().map_err(|_| bad())?;
        Ok(ServiceKey::Inet {
            protocol,
            vip: sa.ip(),
            port: sa.port(),
        })
    }
}

/// Identity of a real server inside its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

/// `192.168.60.101:80`, `[2001:db8::10]:80`.
impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

impl From<DestKey> for String {
    fn from(k: DestKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for DestKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for DestKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let sa: std::net::SocketAddr = s.parse().map_err(|_| {
            format!("invalid real server {s:?} (expected ADDR:PORT or [ADDR6]:PORT)")
        })?;
        Ok(DestKey {
            addr: sa.ip(),
            port: sa.port(),
        })
    }
}

/// Tunnel encapsulation of a tunnel-mode real server (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue { port: u16 },
    Gre,
}

/// Tunnel checksum options (`IP_VS_TUNNEL_ENCAP_FLAG_*`), for GUE and GRE.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct TunnelFlags {
    pub csum: bool,
    pub remcsum: bool,
}

impl TunnelFlags {
    pub fn bits(self) -> u16 {
        (if self.csum { 1 } else { 0 }) | (if self.remcsum { 2 } else { 0 })
    }
    pub fn from_bits(b: u16) -> Self {
        TunnelFlags {
            csum: b & 1 != 0,
            remcsum: b & 2 != 0,
        }
    }
}

/// Forwarding method of a real server (`IP_VS_CONN_F_FWD_MASK` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Forward {
    /// Direct routing (`-g`, IP_VS_CONN_F_DROUTE = 3).
    Dr,
    /// Masquerading / NAT (`-m`, IP_VS_CONN_F_MASQ = 0).
    Nat,
    /// IP tunnelling (`-i`, IP_VS_CONN_F_TUNNEL = 2) with its encapsulation.
    Tunnel {
        tunnel: TunnelType,
        flags: TunnelFlags,
    },
    /// IP_VS_CONN_F_LOCALNODE = 1: reported by the kernel, never configured by lvsctl.
    Local,
    /// IP_VS_CONN_F_BYPASS = 4: reported by the kernel, never configured by lvsctl.
    Bypass,
}

impl Forward {
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const BYPASS: u32 = 4;

    /// The `FWD_METHOD` value sent to the kernel.
    pub fn method_bits(&self) -> u32 {
        match self {
            Forward::Nat => Self::MASQ,
            Forward::Local => Self::LOCALNODE,
            Forward::Tunnel { .. } => Self::TUNNEL,
            Forward::Dr => Self::DROUTE,
            Forward::Bypass => Self::BYPASS,
        }
    }

    /// Short name as in manifests and plans: dr, nat, tunnel, local, bypass.
    pub fn name(&self) -> &'static str {
        match self {
            Forward::Dr => "dr",
            Forward::Nat => "nat",
            Forward::Tunnel { .. } => "tunnel",
            Forward::Local => "local",
            Forward::Bypass => "bypass",
        }
    }
}

/// `dr`, `nat`, `tunnel(ipip)`, `tunnel(gue:6080,csum)`.
impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forward::Tunnel { tunnel, flags } => {
                let t = match tunnel {
                    TunnelType::Ipip => "ipip".to_owned(),
                    TunnelType::Gue { port } => format!("gue:{port}"),
                    TunnelType::Gre => "gre".to_owned(),
                };
                write!(f, "tunnel({t}")?;
                if flags.csum {
                    f.write_str(",csum")?;
                }
                if flags.remcsum {
                    f.write_str(",remcsum")?;
                }
                f.write_str(")")
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Everything about a real server that can be edited in place (`IPVS_CMD_SET_DEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DestSpec {
    pub forward: Forward,
    /// 0..=65535 in manifests (ipvsadm's range); 0 quiesces.
    pub weight: u32,
    /// Upper connection threshold; 0 = no limit.
    pub upper_threshold: u32,
    /// Lower connection threshold; 0 = the kernel's "75% of upper".
    pub lower_threshold: u32,
}

impl Default for DestSpec {
    fn default() -> Self {
        DestSpec {
            forward: Forward::Dr,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }
}

/// One IPVS virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Service {
    pub spec: ServiceSpec,
    pub dests: BTreeMap<DestKey, DestSpec>,
}

/// One rule in lvsctl's own mangle chain: packets to `vip` with `protocol` and one of `ports`
/// get `mark`. `service` is the owning service's name, written into the rule's comment
/// (`lvsctl:<service>`), so the chain is self-describing. `ports` is sorted and non-empty and
/// holds at most [`MarkRule::MAX_PORTS`] entries (the multiport limit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MarkRule {
    pub vip: IpAddr,
    pub protocol: Protocol,
    pub ports: Vec<u16>,
    pub mark: Fwmark,
    pub service: String,
}

impl MarkRule {
    /// `-m multiport` accepts at most 15 ports per rule.
    pub const MAX_PORTS: usize = 15;

    pub fn family(&self) -> Family {
        Family::of(&self.vip)
    }

    /// The traffic the rule marks, one (VIP, protocol, port) at a time.
    pub fn traffic(&self) -> impl Iterator<Item = (IpAddr, Protocol, u16)> + '_ {
        self.ports.iter().map(|p| (self.vip, self.protocol, *p))
    }
}

/// `tcp 192.168.6.101:22,80 -> mark 10 (web-ssh)`.
impl fmt::Display for MarkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        match self.vip {
            IpAddr::V4(a) => write!(f, "{} {a}:{}", self.protocol, ports.join(","))?,
            IpAddr::V6(a) => write!(f, "{} [{a}]:{}", self.protocol, ports.join(","))?,
        }
        write!(f, " -> mark {} ({})", self.mark, self.service)
    }
}

/// lvsctl's mangle chain for one family (`LVSCTL-MARK` in iptables or ip6tables).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MarkChain {
    /// True when PREROUTING and OUTPUT both jump to the chain.
    pub hooked: bool,
    /// The chain's rules in chain order. Desired states keep them sorted.
    pub rules: Vec<MarkRule>,
}

/// The VIPs lvsctl keeps on the director's VIP interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VipState {
    /// Interface name (`director.vip_interface`).
    pub interface: String,
    /// Addresses lvsctl owns there (added by lvsctl, /32 or /128).
    pub owned: BTreeSet<IpAddr>,
    /// Addresses present there that lvsctl did not add: never removed, never re-added.
    /// Only filled in observed states.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub foreign: BTreeSet<IpAddr>,
    /// Addresses lvsctl added on other interfaces (a former `vip_interface`), by interface:
    /// the planner removes them. Loopback interfaces and the real-server side's interface are
    /// never listed (`lvsctl realserver` stamps its VIPs there too). Only filled in observed
    /// states.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub elsewhere: BTreeMap<String, BTreeSet<IpAddr>>,
}

/// A whole director: the unit the planner compares.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    pub services: BTreeMap<ServiceKey, Service>,
    /// lvsctl's mangle chain per family; absent = no chain (desired: none needed).
    pub marks: BTreeMap<Family, MarkChain>,
    /// VIPs on the managed interface; `None` when the manifest manages no VIP interface.
    pub vips: Option<VipState>,
}

/// Kernel counters of one service or real server; never compared, only shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// Counters of one service and of each of its real servers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceCounters {
    pub service: Counters,
    pub dests: BTreeMap<DestKey, Counters>,
}

/// What an observer returns: the comparable state plus the counters that go with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Observed {
    pub state: State,
    #[serde(default)]
    pub counters: BTreeMap<ServiceKey, ServiceCounters>,
}
