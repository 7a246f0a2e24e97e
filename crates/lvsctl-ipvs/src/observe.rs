//! Reading the whole IPVS table into the model, fast.
//!
//! The services always come from one generic-netlink GET_SERVICE dump (it alone has every
//! field: IPv6, PE name, 64-bit counters). Their real servers used to cost one GET_DEST dump
//! per service, and that per-dump kernel work (skb allocation, the dump machinery, attribute
//! parsing, NLMSG_DONE) dominated large tables. For IPv4 services they now come from the
//! legacy getsockopt interface (`crate::sockopt`): one IP_VS_SO_GET_SERVICES listing with every
//! service's real-server count, then one IP_VS_SO_GET_DESTS syscall per service. A service goes
//! back to its netlink dump whenever that reply could differ from netlink's: IPv6, tunnel
//! forwarding (type, port and flags are netlink-only), a real-server count that is not the
//! listing's (the kernel skips real servers of the other family there; or the table changed),
//! counters that may exceed the interface's 32 bits, any failure or odd reply. A second listing
//! after the reads sends services whose count changed meanwhile to netlink too, so a real
//! server present throughout is never dropped by a concurrent write.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lvsctl_model::{Service, ServiceCounters, ServiceKey};
use lvsctl_netlink::constants::{AF_INET, IP_VS_CONN_F_TUNNEL};
use lvsctl_netlink::{DestRaw, ServiceRaw};
use lvsctl_plan::BackendError;

use crate::model::{
    DestCounters, ObservedServices, dests_error, observe_error, service_key_of, service_model,
};
use crate::socket::IpvsSocket;
use crate::sockopt::{
    IP_VS_SO_GET_DESTS, IP_VS_SO_GET_SERVICES, Ident, SockoptSocket, decode_dests, decode_services,
    dests_request, services_request, stats_exact,
};

/// Why a service's real servers were read with a netlink GET_DEST dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetlinkReason {
    /// Netlink only was asked for, or the getsockopt interface could not be used at all
    /// ([`ObserveReport::sockopt_unused`] says why).
    NetlinkOnly,
    /// An IPv6 service: the getsockopt interface has IPv4 only.
    Ipv6,
    /// A tunnel-forwarded real server: tunnel type, port and flags are netlink-only.
    Tunnel,
    /// The getsockopt reply had another real-server count than the listing (the kernel skips
    /// real servers of the other address family there) or the count changed while reading.
    CountMismatch,
    /// Missing from the getsockopt listing (created or deleted meanwhile).
    NotListed,
    /// A real server's traffic counters may exceed the interface's 32 bits.
    WideCounters,
    /// The getsockopt call failed or its reply did not look like the kernel's.
    SockoptFailed(String),
}

/// How [`IpvsSocket::observe_services_reported`] read each service's real servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserveReport {
    /// Services whose real servers came from IP_VS_SO_GET_DESTS.
    pub sockopt: BTreeSet<ServiceKey>,
    /// Services read with a GET_DEST netlink dump, and why.
    pub netlink: BTreeMap<ServiceKey, NetlinkReason>,
    /// Why the getsockopt interface was not used at all, when it was not.
    pub sockopt_unused: Option<String>,
    /// Services left out of the model because lvsctl cannot represent them (another tool made
    /// them, e.g. with a protocol other than tcp, udp or sctp), each with why. lvsctl neither
    /// changes nor deletes them; one such service must not stop it managing the rest.
    pub unrepresentable: Vec<String>,
}

/// One service's model, built as soon as its real servers are in.
type Model = (ServiceKey, Service, ServiceCounters);

impl IpvsSocket {
    /// Reads every service and its real servers and normalises them into the model (see
    /// [`crate::service_spec_of`] and [`crate::dest_of`]), with counters apart. The result is the
    /// same as [`IpvsSocket::observe_services_netlink`]'s, field for field, counters included;
    /// IPv4 services cost one getsockopt call each instead of a netlink dump (see the module
    /// notes in `observe.rs`).
    ///
    /// Measured in the project's VM (qemu TCG, 2 vCPUs, Debian 6.1), release build, N
    /// services x 10 NAT real servers, each figure on the same table in the same run
    /// (`LVSCTL_IPVS_SCALE=N`, test `scale_apply_and_observe_against_ipvsadm`):
    ///
    /// | N | netlink only (one GET_DEST dump per service, 2 threads) | this | `ipvsadm -S -n` |
    /// | --- | --- | --- | --- |
    /// | 2,000 | 1.2-2.6 s | 0.26-0.57 s (GET_SERVICE dump alone 0.12 s) | 3.5-6.4 s |
    /// | 10,000 | 13.0 s | 1.3-2.7 s (GET_SERVICE dump alone 0.66 s) | 20-30 s |
    ///
    /// The spread is the shared 2-core host. Tables whose real servers moved 2 GiB or more,
    /// or with tunnels or IPv6, read those services through netlink as before.
    pub fn observe_services(&mut self) -> Result<ObservedServices, BackendError> {
        self.observe_services_reported().map(|(o, _)| o)
    }

    /// [`IpvsSocket::observe_services`], also saying which path read each service.
    pub fn observe_services_reported(
        &mut self,
    ) -> Result<(ObservedServices, ObserveReport), BackendError> {
        let raws = self
            .services()
            .map_err(|e| observe_error("reading IPVS services", e))?;
        let mut report = ObserveReport::default();
        let raws: Vec<ServiceRaw> = raws
            .into_iter()
            .filter(|raw| match service_key_of(raw) {
                Ok(_) => true,
                Err(why) => {
                    report.unrepresentable.push(why);
                    false
                }
            })
            .collect();
        let first = match &self.sockopt {
            Some(sock) => match sockopt_pass(sock, &raws, self.counters) {
                Ok(v) => v,
                Err(why) => {
                    report.sockopt_unused = Some(why);
                    vec![Err(NetlinkReason::NetlinkOnly); raws.len()]
                }
            },
            None => {
                report.sockopt_unused = Some("the getsockopt reads are off".into());
                vec![Err(NetlinkReason::NetlinkOnly); raws.len()]
            }
        };
        let mut models: Vec<Option<Model>> = Vec::with_capacity(raws.len());
        let mut fallback: Vec<ServiceRaw> = Vec::new();
        for (raw, r) in raws.iter().zip(first) {
            let key = service_key_of(raw).ok();
            match r {
                Ok(m) => {
                    let m = m.map_err(BackendError::Other)?;
                    report.sockopt.insert(m.0);
                    models.push(Some(m));
                }
                Err(reason) => {
                    if let Some(k) = key {
                        report.netlink.insert(k, reason);
                    }
                    fallback.push(raw.clone());
                    models.push(None);
                }
            }
        }
        let mut rest = self.netlink_models(&fallback)?.into_iter();
        let mut services = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for m in models {
            let Some((key, svc, ctr)) = m.or_else(|| rest.next()) else {
                return Err(BackendError::Other(
                    "reading IPVS real servers: a service's answer went missing".into(),
                ));
            };
            services.insert(key, svc);
            counters.insert(key, ctr);
        }
        Ok(((services, counters), report))
    }

    /// [`IpvsSocket::observe_services`] with one netlink GET_DEST dump per service, as ipvsadm
    /// reads (the reference the getsockopt path is checked against).
    pub fn observe_services_netlink(&mut self) -> Result<ObservedServices, BackendError> {
        let raws = self
            .services()
            .map_err(|e| observe_error("reading IPVS services", e))?;
        let mut services = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for (key, svc, ctr) in self.netlink_models(&raws)? {
            services.insert(key, svc);
            counters.insert(key, ctr);
        }
        Ok((services, counters))
    }

    /// The models of `raws` from one real-server dump each, in order. Each thread turns its
    /// services into the model as it dumps them, reusing one buffer for the kernel's records:
    /// no second copy of a large table is ever held.
    fn netlink_models(&mut self, raws: &[ServiceRaw]) -> Result<Vec<Model>, BackendError> {
        let counters = self.counters;
        self.per_chunk(raws, |sock, part| {
            let mut buf = Vec::new();
            part.iter()
                .map(|raw| {
                    buf.clear();
                    sock.dests_into(raw, &mut buf)
                        .map_err(|e| dests_error(raw, e))?;
                    service_model(raw, &buf, counters).map_err(BackendError::Other)
                })
                .collect()
        })
    }
}

/// How the getsockopt interface names an IPv4 service of the netlink dump.
fn ident_of(raw: &ServiceRaw) -> Ident {
    if raw.fwmark != 0 {
        Ident::Fwmark(raw.fwmark)
    } else {
        Ident::Inet(
            raw.protocol,
            [raw.addr[0], raw.addr[1], raw.addr[2], raw.addr[3]],
            raw.port,
        )
    }
}

/// What the getsockopt pass made of one service: its model (or why the kernel's answer is not
/// one), or why netlink must read it.
type SockoptModel = Result<Result<Model, String>, NetlinkReason>;

/// The model of each service of `raws` from its real servers read by getsockopt, or why
/// netlink must read them. `Err` when the interface cannot be used at all. Each service's
/// kernel records become its model at once: at 10,000 x 10 holding them all first would cost
/// 24 MB.
fn sockopt_pass(
    sock: &SockoptSocket,
    raws: &[ServiceRaw],
    counters: DestCounters,
) -> Result<Vec<SockoptModel>, String> {
    // Only callers that want every counter need exact traffic counters (see
    // `IpvsSocket::set_counters`).
    let exact_traffic = counters == DestCounters::All;
    let inet = raws.iter().filter(|r| r.af == AF_INET).count();
    if inet == 0 {
        return Ok(raws.iter().map(|_| Err(NetlinkReason::Ipv6)).collect());
    }
    let before = listing(sock, inet)?;
    let read = |part: &[ServiceRaw]| -> Vec<SockoptModel> {
        part.iter()
            .map(|raw| {
                if raw.af != AF_INET {
                    return Err(NetlinkReason::Ipv6);
                }
                let ident = ident_of(raw);
                let n = *before.get(&ident).ok_or(NetlinkReason::NotListed)?;
                let dests = dests_of(sock, ident, n, exact_traffic)?;
                Ok(service_model(raw, &dests, counters))
            })
            .collect()
    };
    // Sequential: the kernel answers each call under its global IPVS mutex, and splitting
    // the calls over threads measured slower in the VM (2,000 services: 0.26-0.43 s in one
    // thread, 0.34-0.81 s in two).
    let mut out = read(raws);
    // A write between the listing and a service's read can leave the count matching while a
    // real server of the other family (skipped by the kernel here) went unseen: a count that
    // differs now means the service changed meanwhile, so netlink reads it again.
    let after = listing(sock, inet)?;
    for (raw, r) in raws.iter().zip(out.iter_mut()) {
        if r.is_ok() {
            let ident = ident_of(raw);
            if after.get(&ident) != before.get(&ident) {
                *r = Err(NetlinkReason::CountMismatch);
            }
        }
    }
    Ok(out)
}

/// IP_VS_SO_GET_SERVICES: every IPv4 service with its real-server count. `hint` is the number
/// expected; a full table means more arrived meanwhile and the call is repeated larger.
fn listing(sock: &SockoptSocket, hint: usize) -> Result<HashMap<Ident, u32>, String> {
    let mut capacity = hint + 16;
    for _ in 0..4 {
        let mut buf = services_request(capacity)
            .ok_or_else(|| format!("{capacity} IPv4 services are too many for one call"))?;
        sock.get(IP_VS_SO_GET_SERVICES, &mut buf)
            .map_err(|e| format!("IP_VS_SO_GET_SERVICES: {e}"))?;
        let listed = decode_services(&buf)
            .ok_or("IP_VS_SO_GET_SERVICES answered something unlike the kernel's table")?;
        if listed.len() < capacity {
            let mut m = HashMap::with_capacity(listed.len());
            for s in listed {
                if m.insert(s.ident, s.num_dests).is_some() {
                    return Err("IP_VS_SO_GET_SERVICES listed a service twice".into());
                }
            }
            return Ok(m);
        }
        capacity *= 2;
    }
    Err("IP_VS_SO_GET_SERVICES kept growing".into())
}

/// Real servers whose getsockopt traffic counters may be truncated: with `exact_traffic` the
/// service must be read over netlink; without, their traffic counters are dropped (reported as
/// zero rather than truncated: a wrong number would look like a real one). Connection counts
/// are exact either way.
fn screen_traffic(dests: &mut [DestRaw], exact_traffic: bool) -> Result<(), NetlinkReason> {
    for d in dests {
        if !d.stats64.as_ref().is_some_and(stats_exact) {
            if exact_traffic {
                return Err(NetlinkReason::WideCounters);
            }
            d.stats = None;
            d.stats64 = None;
        }
    }
    Ok(())
}

/// IP_VS_SO_GET_DESTS for one service listed with `n` real servers. The table has room for
/// one more than `n`, so a real server added meanwhile shows as a count mismatch (netlink then
/// reads the service) instead of being cut off. Without `exact_traffic`, real servers whose
/// traffic counters may be truncated get none (zero) instead of a netlink read.
fn dests_of(
    sock: &SockoptSocket,
    ident: Ident,
    n: u32,
    exact_traffic: bool,
) -> Result<Vec<DestRaw>, NetlinkReason> {
    let failed = |m: String| NetlinkReason::SockoptFailed(m);
    let capacity = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| failed(format!("{n} real servers")))?;
    let mut buf = dests_request(ident, capacity)
        .ok_or_else(|| failed(format!("{n} real servers are too many for one call")))?;
    match sock.get(IP_VS_SO_GET_DESTS, &mut buf) {
        Ok(()) => {}
        // Deleted since the listing.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(NetlinkReason::NotListed),
        Err(e) => return Err(failed(format!("IP_VS_SO_GET_DESTS: {e}"))),
    }
    let mut dests = decode_dests(&buf).ok_or_else(|| {
        failed("IP_VS_SO_GET_DESTS answered something unlike the kernel's table".into())
    })?;
    if dests.len() != capacity - 1 {
        return Err(NetlinkReason::CountMismatch);
    }
    if dests.iter().any(|d| d.fwd_method == IP_VS_CONN_F_TUNNEL) {
        return Err(NetlinkReason::Tunnel);
    }
    screen_traffic(&mut dests, exact_traffic)?;
    Ok(dests)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lvsctl_netlink::StatsRaw;

    fn dest(last: u8, bytes: u64, active: u32) -> DestRaw {
        DestRaw {
            addr: [10, 0, 1, last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port: 80,
            active_conns: Some(active),
            stats64: Some(StatsRaw {
                conns: 7,
                inpkts: 9,
                outpkts: 9,
                inbytes: bytes,
                outbytes: bytes,
                ..StatsRaw::default()
            }),
            ..DestRaw::default()
        }
    }

    #[test]
    fn busy_real_servers_need_netlink_unless_only_connection_counts_matter() {
        let busy = 1 << 40;
        let mut exact = vec![dest(1, 1000, 3), dest(2, busy, 4)];
        assert_eq!(
            screen_traffic(&mut exact, true),
            Err(NetlinkReason::WideCounters)
        );
        let mut planning = exact.clone();
        screen_traffic(&mut planning, false).unwrap();
        // The quiet one keeps its counters; the busy one loses its traffic counters (zero, not
        // truncated) and keeps its connection counts.
        assert_eq!(planning[0], exact[0]);
        assert_eq!(planning[1].stats64, None);
        assert_eq!(planning[1].stats, None);
        assert_eq!(planning[1].active_conns, Some(4));
        let svc = ServiceRaw {
            af: AF_INET,
            protocol: 6,
            addr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port: 80,
            sched_name: "rr".into(),
            ..ServiceRaw::default()
        };
        let (_, with_state, counters) = service_model(&svc, &planning, DestCounters::All).unwrap();
        assert_eq!(counters.service.active_conns, 7);
        let by_conns: Vec<(u32, u64, u64)> = counters
            .dests
            .values()
            .map(|c| (c.active_conns, c.in_bytes, c.in_packets))
            .collect();
        assert_eq!(by_conns, vec![(3, 1000, 9), (4, 0, 0)]);
        // Planning from the state alone: the same state, no counters at all.
        let (_, state_only, none) = service_model(&svc, &planning, DestCounters::None).unwrap();
        assert_eq!(state_only, with_state);
        assert_eq!(state_only.dests.len(), 2);
        assert_eq!(none, ServiceCounters::default());
        // Draining: every service's counters, real servers only with connections.
        let mut idle = planning.clone();
        idle.push(dest(3, 0, 0));
        idle.push(DestRaw {
            persist_conns: Some(1),
            ..dest(4, 0, 0)
        });
        let (_, all_state, busy) = service_model(&svc, &idle, DestCounters::Busy).unwrap();
        assert_eq!(all_state.dests.len(), 4);
        // Service totals still count every real server.
        assert_eq!(busy.service.active_conns, 7);
        assert_eq!(busy.service.persist_conns, 1);
        let kept: Vec<u32> = busy.dests.values().map(|c| c.active_conns).collect();
        assert_eq!(kept, vec![3, 4, 0], "the idle real server has no entry");
    }
}
