//! The lvsctl manifest: YAML text in, a validated [`Manifest`] (and from it the desired
//! [`State`]) out, or every problem at once as [`Diagnostics`]. Pure: the caller reads the files.
//!
//! Pipeline: bytes -> a YAML tree with positions (`yaml.rs`: size, depth, alias, UTF-8 limits,
//! one document, no duplicate keys; `fast.rs` builds the same tree for the plain YAML subset
//! manifests are written in, several times cheaper) -> per file, the schema walk (`read.rs`:
//! types, ranges, per-service rules, defaults) -> across files (`check.rs`: names, identities,
//! MARK claims, unmanaged selectors, `director:` conflicts) -> [`Manifest`]. Defaults are
//! resolved here, once; the planner never sees an unresolved value.
//!
//! Every field, with its default or range (a reference, not one consistent manifest):
//!
//! ```yaml
//! director:
//!   vip_interface: lvs0                  # keep every service VIP on this (dummy) interface
//!   unmanaged: [{cidr: 10.96.0.0/12, protocol: tcp, port: 443}, {fwmark: 100}, {fwmarks: "1000-1999", family: ipv6}]
//!   sysctl: {expire_nodest_conn: true, expire_quiescent_template: true}
//!   timeouts: {tcp: 15m, tcpfin: 2m, udp: 300}   # whole seconds
//! services:
//!   - name: web                          # unique, [a-z0-9-]{1,63}
//!     protocol: tcp                      # tcp (default) | udp | sctp
//!     vip: 192.168.6.101                 # or fwmark: N (1..=4294967295) + family: ipv4|ipv6 + match
//!     port: 80                           # 0 = every port, needs persistence
//!     scheduler: wlc                     # rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos
//!     flags: [sh-fallback, sh-port]      # sh-* with sh, mh-* with mh, flag-1..3 with any
//!     one_packet: false                  # udp, or fwmark services whose match marks udp
//!     persistence: {timeout: 120, netmask: 255.255.255.0, engine: sip}   # or just 120 / 2m; sip: as one_packet
//!     drain_timeout: 30s
//!     sorry_server: 192.168.60.200       # or {address, port, forward}
//!     real_servers:
//!       - address: 192.168.60.101
//!         port: 80                       # default: the service port; dr/tunnel must keep it
//!         forward: dr                    # dr | nat | tunnel
//!         tunnel: {type: gue, port: 6080, csum: true}   # ipip (default) | gue | gre
//!         weight: 1                      # 0..=65535
//!         upper_threshold: 0             # 0..=2147483647, lower <= upper
//!         lower_threshold: 0
//!         health: {rise: 5}              # overrides the service's check; false = no check
//!     health:
//!       http: {port: 80, path: /.health.html, status: 200, expect: OK, host: www, deadline: 2s}
//!       # http also takes reuse_connection: false (default true: keep-alive between checks)
//!       # or tcp: {port: 22}, or exec: {command: [/usr/lib/check, --fast]}
//!       interval: 3s
//!       timeout: 2s
//!       rise: 2
//!       fall: 3
//!       on_failure: remove               # or quiesce (weight 0)
//! realserver: {vips: [192.168.6.101], interface: lo, arp: true}
//! ```

mod check;
mod diag;
mod duration;
mod export;
mod fast;
mod read;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use diag::{Diagnostic, Diagnostics, Location};
pub use export::{manifest_from_state, split_manifest};
/// Largest manifest file accepted, in bytes; callers reading files stop one byte past it.
pub use yaml::MAX_INPUT_BYTES;

/// Parses a duration as manifests write them: `500ms`, `3s`, `2m`, `1h`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    duration::parse(s)
}

use crate::state::{
    DestKey, DestSpec, Family, Forward, MarkChain, MarkRule, Protocol, Service, ServiceKey,
    ServiceSpec, State, VipState,
};

/// Default scheduler, as ipvsadm's.
pub const DEFAULT_SCHEDULER: crate::Scheduler = crate::Scheduler::Wlc;
/// Default health-check interval (the seed's loop runs every 3 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);
/// Default health-check timeout, capped at the interval.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Consecutive passes before a failed real server is put back.
pub const DEFAULT_RISE: u32 = 2;
/// Consecutive failures before a real server is taken out.
pub const DEFAULT_FALL: u32 = 3;
/// How long a real server removed from the manifest drains (weight 0) before it is deleted.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Expected HTTP status of an http check.
pub const DEFAULT_HTTP_STATUS: u16 = 200;

/// One manifest file as the caller read it. `name` is only used in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: Vec<u8>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<Vec<u8>>) -> Source {
        let mut text = text.into();
        // A file read to its end sits in a buffer grown by doubling: up to twice its size,
        // for as long as the sources are kept.
        text.shrink_to_fit();
        Source {
            name: name.into(),
            text,
        }
    }
}

/// Parses and validates one manifest file.
pub fn parse(name: &str, text: impl AsRef<[u8]>) -> Result<Manifest, Diagnostics> {
    load(&[Source::new(name, text.as_ref())])
}

/// Parses, validates and merges several manifest files into one desired state. A service name
/// or identity defined in two files, or two `director:` settings that disagree, is an error
/// naming both places.
pub fn load(sources: &[Source]) -> Result<Manifest, Diagnostics> {
    let mut sink = diag::Sink::default();
    let files = read::read_files(sources.iter().collect(), &mut sink);
    finish(sources, files, sink)
}

/// [`load`] for callers done with the sources: each file's text is freed as soon as that file
/// has been read (a 10,000-service manifest is 6 MB of text), not when loading ends.
pub fn load_owned(mut sources: Vec<Source>) -> Result<Manifest, Diagnostics> {
    let mut sink = diag::Sink::default();
    let files = read::read_files(sources.iter_mut().collect(), &mut sink);
    finish(&sources, files, sink)
}

fn finish(
    sources: &[Source],
    files: Vec<read::FileRead>,
    mut sink: diag::Sink,
) -> Result<Manifest, Diagnostics> {
    let manifest = check::merge(sources, files, &mut sink);
    if sink.is_empty() {
        Ok(manifest)
    } else {
        Err(sink.finish())
    }
}

/// A validated manifest with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub director: Director,
    /// Services in the order they were written (files in the order given).
    pub services: Vec<ServiceDef>,
    /// The DR real-server side (`realserver:`), for `lvsctl realserver`.
    pub realserver: Option<RealServerSide>,
    /// False when no file has a `services:` key (a real-server-only manifest). Applying such a
    /// manifest to a director must not be read as "delete every service".
    pub declares_services: bool,
}

/// The `director:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Director {
    /// Keep every service VIP on this interface (a dummy interface, created if missing).
    pub vip_interface: Option<String>,
    /// IPVS services lvsctl must never touch.
    pub unmanaged: Vec<Selector>,
    pub sysctl: DirectorSysctl,
    pub timeouts: IpvsTimeouts,
}

/// `director.sysctl`: IPVS sysctls (`net.ipv4.vs.*`); `None` leaves the kernel's value alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectorSysctl {
    /// `expire_nodest_conn`: drop connections to a deleted real server at their next packet.
    pub expire_nodest_conn: Option<bool>,
    /// `expire_quiescent_template`: expire persistence templates pointing at a weight-0 real
    /// server, so clients pinned to a failed server move on.
    pub expire_quiescent_template: Option<bool>,
}

/// `director.timeouts`: IPVS connection timeouts (`ipvsadm --set tcp tcpfin udp`), whole
/// seconds; `None` leaves the kernel's value alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpvsTimeouts {
    pub tcp: Option<Duration>,
    pub tcpfin: Option<Duration>,
    pub udp: Option<Duration>,
}

/// An `director.unmanaged` entry: IPVS services matching it are left alone (never updated,
/// never deleted), like kube-proxy's `--ipvs-exclude-cidrs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Address services whose VIP is inside `addr/prefix`, optionally only one protocol/port.
    Cidr {
        addr: IpAddr,
        prefix: u8,
        protocol: Option<Protocol>,
        port: Option<u16>,
    },
    /// Fwmark services with a mark in `first..=last`, optionally only one family.
    Fwmarks {
        first: u32,
        last: u32,
        family: Option<Family>,
    },
}

impl Selector {
    pub fn matches(&self, key: &ServiceKey) -> bool {
        match (self, key) {
            (
                Selector::Cidr {
                    addr,
                    prefix,
                    protocol,
                    port,
                },
                ServiceKey::Inet {
                    protocol: p,
                    vip,
                    port: n,
                },
            ) => {
                in_prefix(vip, addr, *prefix)
                    && protocol.is_none_or(|x| x == *p)
                    && port.is_none_or(|x| x == *n)
            }
            (
                Selector::Fwmarks {
                    first,
                    last,
                    family,
                },
                ServiceKey::Fwmark { mark, family: f },
            ) => (*first..=*last).contains(&mark.get()) && family.is_none_or(|x| x == *f),
            _ => false,
        }
    }
}

/// `cidr 10.96.0.0/12 tcp port 80`, `fwmarks 1000-1999 ipv6`.
impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Cidr {
                addr,
                prefix,
                protocol,
                port,
            } => {
                write!(f, "cidr {addr}/{prefix}")?;
                if let Some(p) = protocol {
                    write!(f, " {p}")?;
                }
                if let Some(p) = port {
                    write!(f, " port {p}")?;
                }
                Ok(())
            }
            Selector::Fwmarks {
                first,
                last,
                family,
            } => {
                if first == last {
                    write!(f, "fwmark {first}")?;
                } else {
                    write!(f, "fwmarks {first}-{last}")?;
                }
                if let Some(fam) = family {
                    write!(f, " {fam}")?;
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn in_prefix(addr: &IpAddr, net: &IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(*a) & mask == u32::from(*n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(*a) & mask == u128::from(*n) & mask
        }
        _ => false,
    }
}

/// One service of the manifest, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    /// Unique across all files; `[a-z0-9-]`, at most 63 characters.
    pub name: String,
    pub key: ServiceKey,
    pub spec: ServiceSpec,
    /// Fwmark services only: the traffic lvsctl marks for this service.
    pub matches: Vec<MatchDef>,
    pub real_servers: Vec<RealServerDef>,
    /// How long a real server removed from the manifest keeps weight 0 before it is deleted.
    pub drain_timeout: Duration,
    /// Added (by the daemon) only while every real server fails its health check.
    pub sorry_server: Option<SorryServer>,
    pub location: Location,
}

impl ServiceDef {
    /// The MARK rules this service's `match` entries become (fwmark services only), at most
    /// [`MarkRule::MAX_PORTS`] ports per rule.
    pub fn mark_rules(&self) -> Vec<MarkRule> {
        let ServiceKey::Fwmark { mark, .. } = self.key else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in &self.matches {
            for chunk in m.ports.chunks(MarkRule::MAX_PORTS) {
                out.push(MarkRule {
                    vip: m.vip,
                    protocol: m.protocol,
                    ports: chunk.to_vec(),
                    mark,
                    service: self.name.clone(),
                });
            }
        }
        out
    }

    /// Whether a real server of this service answers clients directly (dr or tunnel), and so
    /// must hold the service's VIPs itself (`lvsctl realserver`).
    pub fn has_direct_real_servers(&self) -> bool {
        self.real_servers
            .iter()
            .any(|r| matches!(r.spec.forward, Forward::Dr | Forward::Tunnel { .. }))
    }

    /// The VIPs this service needs on the director: its VIP, or its match VIPs.
    pub fn vips(&self) -> BTreeSet<IpAddr> {
        match self.key {
            ServiceKey::Inet { vip, .. } => BTreeSet::from([vip]),
            ServiceKey::Fwmark { .. } => self.matches.iter().map(|m| m.vip).collect(),
        }
    }
}

/// One `match` entry of a fwmark service: packets to `vip` with `protocol` and a destination
/// port in `ports` get the service's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchDef {
    pub vip: IpAddr,
    pub protocol: Protocol,
    /// Sorted, unique, 1..=65535.
    pub ports: Vec<u16>,
    pub location: Location,
}

/// One real server of a service, resolved (port, forwarding method, weight filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerDef {
    pub key: DestKey,
    pub spec: DestSpec,
    /// The effective health check: the service's, with this real server's overrides applied.
    /// Shared by the real servers of a service whose checks resolve the same: an inline check
    /// was two thirds of this struct, 14 MB of a 100,000-real-server manifest.
    pub health: Option<Arc<HealthCheck>>,
    pub location: Location,
}

/// `sorry_server`: where traffic goes while every real server is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    pub key: DestKey,
    pub spec: DestSpec,
    pub location: Location,
}

/// A resolved health check for one real server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub kind: CheckKind,
    /// Time between the starts of two checks.
    pub interval: Duration,
    /// Limit for connecting, and for each read of an http check; the whole tcp or exec check.
    pub timeout: Duration,
    /// Consecutive passes that bring a failed real server back.
    pub rise: u32,
    /// Consecutive failures that take a real server out.
    pub fall: u32,
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    Http(HttpCheck),
    /// The check passes when a TCP connection to the port is accepted.
    Tcp {
        port: u16,
    },
    /// Runs `command` (argv, never through a shell); exit status 0 passes. The daemon passes
    /// the real server in the environment.
    Exec {
        command: Vec<String>,
    },
}

/// `GET path` on the real server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    pub port: u16,
    pub path: String,
    /// Expected response status.
    pub status: u16,
    /// Text the body must contain (the seed's `OK`).
    pub expect: Option<String>,
    /// Host header; the real server's address when absent.
    pub host: Option<String>,
    /// Total time allowed from connecting to the last byte of the body: a server that trickles
    /// its answer fails.
    pub deadline: Duration,
    /// Keep the connection open between checks (HTTP/1.1 keep-alive; default true), so a check
    /// costs a request instead of a TCP connection. `false` connects afresh for every check.
    pub reuse_connection: bool,
}

/// What happens to a real server that fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnFailure {
    /// Delete it from the service (the seed's behaviour).
    #[default]
    Remove,
    /// Set its weight to 0: existing connections finish, no new ones arrive.
    Quiesce,
}

/// The `realserver:` section: what `lvsctl realserver` sets up on a DR/tunnel real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerSide {
    /// VIPs to hold on `interface` (/32 or /128). Default: the VIP of every service that has a
    /// dr or tunnel real server (fwmark services: their match VIPs).
    pub vips: BTreeSet<IpAddr>,
    /// Default `lo`.
    pub interface: String,
    /// Set `arp_ignore=1` and `arp_announce=2` so the real server never answers ARP for the
    /// VIPs (default true).
    pub arp: bool,
    pub location: Location,
}

impl Manifest {
    /// The desired director state: every service with its resolved spec and real servers, one
    /// MARK chain per family that has match rules, and the VIPs when `director.vip_interface`
    /// is set.
    pub fn desired_state(&self) -> State {
        // Collected first and built in one go: a map built from all its entries has full nodes,
        // one built by inserts in key order leaves them half empty.
        let mut services = Vec::with_capacity(self.services.len());
        let mut rules: BTreeMap<Family, Vec<MarkRule>> = BTreeMap::new();
        for svc in &self.services {
            let dests = svc.real_servers.iter().map(|r| (r.key, r.spec)).collect();
            services.push((
                svc.key,
                Service {
                    spec: svc.spec.clone(),
                    dests,
                },
            ));
            for rule in svc.mark_rules() {
                rules.entry(rule.family()).or_default().push(rule);
            }
        }
        // Later entries win, as inserting them one by one would have it.
        let services: BTreeMap<ServiceKey, Service> = services.into_iter().collect();
        let marks = rules
            .into_iter()
            .map(|(family, mut rules)| {
                rules.sort();
                (
                    family,
                    MarkChain {
                        hooked: true,
                        rules,
                    },
                )
            })
            .collect();
        let vips = self
            .director
            .vip_interface
            .as_ref()
            .map(|interface| VipState {
                interface: interface.clone(),
                // Only wanted with a vip_interface; built from all its entries at once.
                owned: self
                    .services
                    .iter()
                    .flat_map(|svc| {
                        let (vip, matches) = match svc.key {
                            ServiceKey::Inet { vip, .. } => (Some(vip), &[][..]),
                            ServiceKey::Fwmark { .. } => (None, &svc.matches[..]),
                        };
                        vip.into_iter().chain(matches.iter().map(|m| m.vip))
                    })
                    .collect(),
                foreign: BTreeSet::new(),
                elsewhere: BTreeMap::new(),
            });
        State {
            services,
            marks,
            vips,
        }
    }

    /// Valid but risky settings, one message per service, each starting with its location:
    /// what an operator should hear from `validate`, `plan`, `apply` and the daemon without
    /// being refused. Today one: a persistent service whose health check quiesces failed real
    /// servers, while the kernel keeps sending each client to the server its persistence
    /// template names, weight 0 or not (keepalived and ldirectord users hit this), unless
    /// `net.ipv4.vs.expire_quiescent_template` is on.
    pub fn warnings(&self) -> Vec<String> {
        if self.director.sysctl.expire_quiescent_template == Some(true) {
            return Vec::new();
        }
        self.services
            .iter()
            .filter(|svc| svc.spec.persistence.is_some())
            .filter(|svc| {
                svc.real_servers.iter().any(|rs| {
                    rs.health
                        .as_ref()
                        .is_some_and(|h| h.on_failure == OnFailure::Quiesce)
                })
            })
            .map(|svc| {
                format!(
                    "{}: service {}: a real server its health check takes out stays at weight \
                     0 (on_failure: quiesce), and persistence keeps sending it the clients it \
                     already had until their templates expire; set \
                     director.sysctl.expire_quiescent_template: true (lvsctl run sets it), or \
                     use on_failure: remove",
                    svc.location, svc.name
                )
            })
            .collect()
    }

    /// False when a `director.unmanaged` selector matches: lvsctl must not touch that service.
    pub fn is_managed(&self, key: &ServiceKey) -> bool {
        !self.director.unmanaged.iter().any(|s| s.matches(key))
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.key == *key)
    }

    pub fn service_by_name(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// The default real-server port: the service's (0 for fwmark services).
pub(crate) fn service_port(key: &ServiceKey) -> u16 {
    match key {
        ServiceKey::Inet { port, .. } => *port,
        ServiceKey::Fwmark { .. } => 0,
    }
}

/// Whether a DR/tunnel real server must use the service port (non-fwmark services: the
/// kernel does not rewrite the port, ipvsadm forces it).
pub(crate) fn port_must_match(key: &ServiceKey, forward: &Forward) -> bool {
    !key.is_fwmark() && matches!(forward, Forward::Dr | Forward::Tunnel { .. })
}
