//! Mapping between the kernel's IPVS records and lvsctl's model: normalising what the kernel
//! reports into [`Service`]s (observe), turning plan [`Op`]s into requests (apply), and
//! explaining kernel refusals in terms of the operation and object.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::thread;

use lvsctl_model::{
    Counters, DestKey, DestSpec, Family, Forward, Fwmark, Persistence, Protocol, Scheduler,
    Service, ServiceCounters, ServiceFlags, ServiceKey, ServiceSpec, TunnelFlags, TunnelType,
};
use lvsctl_netlink::constants::*;
use lvsctl_netlink::{DestRaw, IpvsRequest, Netmask, ServiceRaw, StatsRaw, addr_to_raw};
use lvsctl_plan::{BackendError, Errno, Op};

use crate::error::{IpvsError, errno_description, errno_name};
use crate::socket::IpvsSocket;

/// Services with their real servers, and the counters that go with them.
pub type ObservedServices = (
    BTreeMap<ServiceKey, Service>,
    BTreeMap<ServiceKey, ServiceCounters>,
);

/// Observing more services than this spreads the per-service real-server dumps over several
/// sockets and threads.
const PARALLEL_DUMP_THRESHOLD: usize = 256;
const MAX_DUMP_THREADS: usize = 4;

// ---------------------------------------------------------------------------------------
// Kernel -> model

/// The identity of a kernel service, or why lvsctl cannot represent it.
pub fn service_key_of(raw: &ServiceRaw) -> Result<ServiceKey, String> {
    let family = family_of(raw.af).ok_or_else(|| {
        format!(
            "the kernel reports an IPVS service with address family {}, which lvsctl does not manage",
            raw.af
        )
    })?;
    if let Some(mark) = Fwmark::new(raw.fwmark) {
        return Ok(ServiceKey::Fwmark { mark, family });
    }
    let vip = raw.ip().ok_or_else(|| {
        format!(
            "the kernel reports an IPVS service without an address (af {})",
            raw.af
        )
    })?;
    let protocol = Protocol::from_number(raw.protocol).ok_or_else(|| {
        format!(
            "the kernel reports an IPVS service for {vip} port {} with protocol {}, which lvsctl \
             does not manage (tcp, udp or sctp only)",
            raw.port, raw.protocol
        )
    })?;
    Ok(ServiceKey::Inet {
        protocol,
        vip,
        port: raw.port,
    })
}

/// The editable part of a kernel service, with the kernel's noise removed: HASHED and any
/// unknown flag bits dropped, PERSISTENT turned into [`Persistence`] (timeout and netmask as a
/// prefix length), timeout and netmask ignored for non-persistent services, an empty PE name
/// read as none, "none" read as [`Scheduler::None`].
pub fn service_spec_of(raw: &ServiceRaw) -> ServiceSpec {
    let flags = raw.flags & raw.mask;
    let persistence = (flags & IP_VS_SVC_F_PERSISTENT != 0).then(|| Persistence {
        timeout: raw.timeout,
        netmask: netmask_prefix(raw.af, raw.netmask),
    });
    ServiceSpec {
        scheduler: Scheduler::from_kernel(&raw.sched_name),
        flags: ServiceFlags::from_bits(flags),
        persistence,
        pe_name: raw.pe_name.clone().filter(|p| !p.is_empty()),
    }
}

/// The persistence granularity as a prefix length. A non-contiguous IPv4 mask reads as its
/// leading ones (so it differs from any manifest value and gets rewritten); IPv6 is clamped to
/// 128.
fn netmask_prefix(af: u16, m: Netmask) -> u8 {
    if af == AF_INET6 {
        u8::try_from(m.v6_prefix().min(128)).unwrap_or(128)
    } else {
        m.v4_prefix()
    }
}

/// A kernel real server, normalised: the address decoded by its own family (or the
/// service's), tunnel settings kept only for tunnel forwarding.
pub fn dest_of(raw: &DestRaw, service_af: u16) -> Result<(DestKey, DestSpec), String> {
    let addr = raw.ip(service_af).ok_or_else(|| {
        format!(
            "the kernel reports a real server with address family {}",
            raw.addr_family.unwrap_or(service_af)
        )
    })?;
    let key = DestKey {
        addr,
        port: raw.port,
    };
    let forward = match raw.fwd_method & IP_VS_CONN_F_FWD_MASK {
        IP_VS_CONN_F_MASQ => Forward::Nat,
        IP_VS_CONN_F_LOCALNODE => Forward::Local,
        IP_VS_CONN_F_DROUTE => Forward::Dr,
        IP_VS_CONN_F_BYPASS => Forward::Bypass,
        IP_VS_CONN_F_TUNNEL => {
            // Kernels before 5.2 report no TUN_* at all: that is plain IPIP.
            let tunnel = match raw.tun_type.unwrap_or(IP_VS_CONN_F_TUNNEL_TYPE_IPIP) {
                IP_VS_CONN_F_TUNNEL_TYPE_IPIP => TunnelType::Ipip,
                IP_VS_CONN_F_TUNNEL_TYPE_GUE => TunnelType::Gue {
                    port: raw.tun_port.unwrap_or(0),
                },
                IP_VS_CONN_F_TUNNEL_TYPE_GRE => TunnelType::Gre,
                other => {
                    return Err(format!(
                        "the kernel reports real server {key} with tunnel type {other}, which \
                         lvsctl does not know"
                    ));
                }
            };
            Forward::Tunnel {
                tunnel,
                flags: TunnelFlags::from_bits(raw.tun_flags.unwrap_or(0)),
            }
        }
        other => {
            return Err(format!(
                "the kernel reports real server {key} with forwarding method {other}, which \
                 lvsctl does not know"
            ));
        }
    };
    Ok((
        key,
        DestSpec {
            forward,
            weight: raw.weight,
            upper_threshold: raw.u_threshold,
            lower_threshold: raw.l_threshold,
        },
    ))
}

/// Counters from the kernel's stats (64-bit nest preferred) plus connection counts.
pub fn counters_of(stats: Option<StatsRaw>, active: u32, inactive: u32, persist: u32) -> Counters {
    let s = stats.unwrap_or_default();
    Counters {
        active_conns: active,
        inactive_conns: inactive,
        persist_conns: persist,
        conns: s.conns,
        in_packets: s.inpkts,
        out_packets: s.outpkts,
        in_bytes: s.inbytes,
        out_bytes: s.outbytes,
        cps: s.cps,
        in_pps: s.inpps,
        out_pps: s.outpps,
        in_bps: s.inbps,
        out_bps: s.outbps,
    }
}

/// Builds the model of one service from its kernel records. The service's connection counts
/// are the sums over its real servers (the kernel keeps none per service).
pub fn service_of(
    raw: &ServiceRaw,
    dests: &[DestRaw],
) -> Result<(ServiceKey, Service, ServiceCounters), String> {
    service_model(raw, dests, DestCounters::All)
}

/// Which counters an observation builds. At 10,000 x 10 the real servers' counters are 13 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DestCounters {
    /// Every service and real server.
    #[default]
    All,
    /// Every service; real servers only when they have connections (active, inactive or
    /// persistent): a real server missing from `ServiceCounters::dests` has none. For the
    /// daemon's draining, which asks only "how many active connections".
    Busy,
    /// None (`plan` and `apply` plan from the state alone).
    None,
}

/// [`service_of`], building only the counters `wanted` asks for.
pub fn service_model(
    raw: &ServiceRaw,
    dests: &[DestRaw],
    wanted: DestCounters,
) -> Result<(ServiceKey, Service, ServiceCounters), String> {
    let key = service_key_of(raw)?;
    let mut service = Service {
        spec: service_spec_of(raw),
        dests: BTreeMap::new(),
    };
    let mut counters = ServiceCounters::default();
    let (mut act, mut inact, mut pers) = (0u32, 0u32, 0u32);
    for d in dests {
        let (dk, spec) = dest_of(d, raw.af).map_err(|e| format!("{e} (in service {key})"))?;
        let (a, i, p) = (
            d.active_conns.unwrap_or(0),
            d.inact_conns.unwrap_or(0),
            d.persist_conns.unwrap_or(0),
        );
        act = act.saturating_add(a);
        inact = inact.saturating_add(i);
        pers = pers.saturating_add(p);
        service.dests.insert(dk, spec);
        let keep = match wanted {
            DestCounters::All => true,
            DestCounters::Busy => a > 0 || i > 0 || p > 0,
            DestCounters::None => false,
        };
        if keep {
            counters
                .dests
                .insert(dk, counters_of(d.best_stats(), a, i, p));
        }
    }
    if wanted != DestCounters::None {
        counters.service = counters_of(raw.best_stats(), act, inact, pers);
    }
    Ok((key, service, counters))
}

// ---------------------------------------------------------------------------------------
// Model -> kernel

fn family_of(af: u16) -> Option<Family> {
    match af {
        AF_INET => Some(Family::Inet),
        AF_INET6 => Some(Family::Inet6),
        _ => None,
    }
}

/// The identifying fields of a service (enough for DEL_SERVICE, dest commands and dumps).
pub fn service_identity(key: &ServiceKey) -> ServiceRaw {
    let mut raw = ServiceRaw {
        af: key.family().af(),
        ..ServiceRaw::default()
    };
    match key {
        ServiceKey::Inet {
            protocol,
            vip,
            port,
        } => {
            raw.protocol = protocol.number();
            raw.addr = addr_to_raw(*vip);
            raw.port = *port;
        }
        ServiceKey::Fwmark { mark, .. } => raw.fwmark = mark.get(),
    }
    raw
}

/// The full service for NEW_SERVICE / SET_SERVICE. FLAGS carries a mask of the configuration
/// bits only, so the kernel's own HASHED bit is never sent (old kernels mis-hash a new service
/// whose flags include it) and is kept as it is on SET. A non-persistent service still needs
/// TIMEOUT and NETMASK: 0 and the host mask (IPv4 255.255.255.255, IPv6 /128, which the
/// kernel requires to be 1..=128 even without persistence), as ipvsadm sends.
pub fn service_raw(key: &ServiceKey, spec: &ServiceSpec) -> ServiceRaw {
    let mut raw = service_identity(key);
    let family = key.family();
    raw.sched_name = spec.scheduler.as_str().to_owned();
    raw.flags = spec.flags.bits()
        | if spec.persistence.is_some() {
            IP_VS_SVC_F_PERSISTENT
        } else {
            0
        };
    raw.mask = IP_VS_SVC_F_CONFIG_MASK;
    let (timeout, prefix) = match spec.persistence {
        Some(p) => (p.timeout, p.netmask),
        None => (0, family.max_prefix()),
    };
    raw.timeout = timeout;
    raw.netmask = Netmask::from_prefix(raw.af, prefix);
    raw.pe_name = spec.pe_name.clone();
    raw
}

/// The identifying fields of a real server (enough for DEL_DEST).
pub fn dest_identity(key: &DestKey) -> DestRaw {
    DestRaw {
        addr: addr_to_raw(key.addr),
        port: key.port,
        addr_family: Some(Family::of(&key.addr).af()),
        ..DestRaw::default()
    }
}

/// The full real server for NEW_DEST / SET_DEST. Tunnel attributes go only with tunnel
/// forwarding (as keepalived does, so requests stay acceptable to kernels without them):
/// TUN_TYPE always, TUN_PORT for GUE, TUN_FLAGS unless plain IPIP without flags.
pub fn dest_raw(key: &DestKey, spec: &DestSpec) -> DestRaw {
    let mut raw = dest_identity(key);
    raw.fwd_method = spec.forward.method_bits();
    raw.weight = spec.weight;
    raw.u_threshold = spec.upper_threshold;
    raw.l_threshold = spec.lower_threshold;
    if let Forward::Tunnel { tunnel, flags } = spec.forward {
        let (t, port) = match tunnel {
            TunnelType::Ipip => (IP_VS_CONN_F_TUNNEL_TYPE_IPIP, None),
            TunnelType::Gue { port } => (IP_VS_CONN_F_TUNNEL_TYPE_GUE, Some(port)),
            TunnelType::Gre => (IP_VS_CONN_F_TUNNEL_TYPE_GRE, None),
        };
        raw.tun_type = Some(t);
        raw.tun_port = port;
        if t != IP_VS_CONN_F_TUNNEL_TYPE_IPIP || flags.bits() != 0 {
            raw.tun_flags = Some(flags.bits());
        }
    }
    raw
}

/// The IPVS request of a plan op; `None` for ops that are not IPVS's (VIPs, MARK chains).
pub fn request_for_op(op: &Op) -> Option<IpvsRequest> {
    Some(match op {
        Op::AddService { key, spec, .. } => IpvsRequest::NewService(service_raw(key, spec)),
        Op::UpdateService { key, after, .. } => IpvsRequest::SetService(service_raw(key, after)),
        Op::DeleteService { key, .. } => IpvsRequest::DelService(service_identity(key)),
        Op::AddDest {
            service, key, spec, ..
        } => IpvsRequest::NewDest {
            service: service_identity(service),
            dest: dest_raw(key, spec),
        },
        Op::UpdateDest {
            service,
            key,
            after,
            ..
        } => IpvsRequest::SetDest {
            service: service_identity(service),
            dest: dest_raw(key, after),
        },
        Op::DeleteDest { service, key, .. } => IpvsRequest::DelDest {
            service: service_identity(service),
            dest: dest_identity(key),
        },
        // Quiesce: the current settings with weight 0, so connections drain before deletion.
        Op::DrainDest {
            service,
            key,
            before,
            ..
        } => IpvsRequest::SetDest {
            service: service_identity(service),
            dest: dest_raw(
                key,
                &DestSpec {
                    weight: 0,
                    ..*before
                },
            ),
        },
        _ => return None,
    })
}

/// True for the ops this crate executes.
pub fn is_ipvs_op(op: &Op) -> bool {
    matches!(
        op,
        Op::AddService { .. }
            | Op::UpdateService { .. }
            | Op::DeleteService { .. }
            | Op::AddDest { .. }
            | Op::UpdateDest { .. }
            | Op::DeleteDest { .. }
            | Op::DrainDest { .. }
    )
}

/// Whether the op takes capacity away (a delete, or a drain to weight 0).
fn is_destructive(op: &Op) -> bool {
    matches!(
        op,
        Op::DeleteService { .. } | Op::DeleteDest { .. } | Op::DrainDest { .. }
    )
}

/// The operation and object, for messages: `add real server 10.0.0.11:80 to
/// tcp/10.0.0.100:80`.
pub fn describe_op(op: &Op) -> String {
    match op {
        Op::AddService { key, .. } => format!("add service {key}"),
        Op::UpdateService { key, .. } => format!("update service {key}"),
        Op::DeleteService { key, .. } => format!("delete service {key}"),
        Op::AddDest { service, key, .. } => format!("add real server {key} to {service}"),
        Op::UpdateDest { service, key, .. } => format!("update real server {key} in {service}"),
        Op::DeleteDest { service, key, .. } => {
            format!("delete real server {key} from {service}")
        }
        Op::DrainDest { service, key, .. } => {
            format!("drain real server {key} in {service} (weight 0)")
        }
        Op::AddVip { interface, addr } => format!("add VIP {addr} on {interface}"),
        Op::DeleteVip {
            interface, addr, ..
        } => format!("delete VIP {addr} from {interface}"),
        Op::WriteMarkChain { family, .. } => format!("write the {family} MARK chain"),
        Op::RemoveMarkChain { family, .. } => format!("remove the {family} MARK chain"),
    }
}

fn errno_kind(errno: i32) -> Errno {
    match errno {
        libc::EEXIST => Errno::Exists,
        libc::ESRCH => Errno::NoService,
        libc::ENOENT => Errno::NotFound,
        libc::EINVAL => Errno::Invalid,
        libc::EPERM => Errno::Permission,
        other => Errno::Other(other),
    }
}

/// Explains a kernel refusal of `op` in its terms: ENOENT on a service write means the
/// scheduler (or persistence engine) module is missing, on a real-server write that the real
/// server does not exist; ESRCH is a missing service; and so on.
pub fn op_error(op: &Op, err: IpvsError) -> BackendError {
    let what = describe_op(op);
    let (errno, extack) = match err {
        IpvsError::Unavailable => return BackendError::Unavailable(err.to_string()),
        IpvsError::Permission => (libc::EPERM, None),
        IpvsError::Kernel { errno, extack } => (errno, extack),
        other => return BackendError::Other(format!("{what}: {other}")),
    };
    let is_service_write = matches!(op, Op::AddService { .. } | Op::UpdateService { .. });
    let is_dest = matches!(
        op,
        Op::AddDest { .. } | Op::UpdateDest { .. } | Op::DeleteDest { .. } | Op::DrainDest { .. }
    );
    let name = errno_name(errno);
    let mut message = match errno {
        libc::ENOENT if is_service_write => {
            let spec = match op {
                Op::AddService { spec, .. } => Some(&**spec),
                Op::UpdateService { after, .. } => Some(&**after),
                _ => None,
            };
            match spec {
                Some(ServiceSpec {
                    scheduler,
                    pe_name: Some(pe),
                    ..
                }) => format!(
                    "scheduler \"{scheduler}\" or persistence engine \"{pe}\" is not available \
                     ({name}): this kernel has no module ip_vs_{scheduler} or ip_vs_pe_{pe} \
                     (check with `modinfo`; some are missing from older kernels or builds), or \
                     modules cannot be loaded here; choose another in the manifest"
                ),
                Some(s) => format!(
                    "scheduler \"{0}\" is not available ({name}): this kernel has no module \
                     ip_vs_{0} (check with `modinfo ip_vs_{0}`; some schedulers are missing from \
                     older kernels or builds), or modules cannot be loaded here; choose another \
                     scheduler in the manifest",
                    s.scheduler
                ),
                None => format!("{} ({name})", errno_description(errno)),
            }
        }
        libc::ENOENT if is_dest => format!("real server not found ({name})"),
        libc::ESRCH => format!("service not found ({name})"),
        libc::EEXIST if is_dest => format!("real server already exists ({name})"),
        libc::EEXIST => format!("service already exists ({name})"),
        libc::EPERM => format!("lvsctl needs CAP_NET_ADMIN (run as root) ({name})"),
        libc::EINVAL if is_dest => format!(
            "the kernel rejected an attribute ({name}): a new real server must be a unicast \
             address the director has a route to, a GUE tunnel needs a port, thresholds must \
             not exceed 2147483647, and a real server of another address family needs tunnel \
             forwarding"
        ),
        libc::EINVAL => format!(
            "the kernel rejected an attribute ({name}): check the scheduler name and, for IPv6, \
             the persistence netmask (1..128)"
        ),
        libc::ERANGE if is_dest => format!(
            "weight or threshold out of range ({name}): the weight must not be negative and the \
             lower threshold must not exceed the upper one"
        ),
        libc::EAFNOSUPPORT => {
            format!("address family not supported ({name}): is IPv6 enabled in this kernel?")
        }
        _ => format!("{} ({name})", errno_description(errno)),
    };
    if let Some(m) = extack {
        message.push_str(&format!(" (kernel: {m})"));
    }
    BackendError::Kernel {
        op: what,
        errno: errno_kind(errno),
        message,
    }
}

pub(crate) fn dests_error(service: &ServiceRaw, err: IpvsError) -> BackendError {
    let which = service_key_of(service).map_or_else(|_| "a service".to_owned(), |k| k.to_string());
    observe_error(&format!("reading the real servers of {which}"), err)
}

pub(crate) fn observe_error(context: &str, err: IpvsError) -> BackendError {
    match err {
        IpvsError::Unavailable | IpvsError::Permission => {
            BackendError::Unavailable(err.to_string())
        }
        other => BackendError::Other(format!("{context}: {other}")),
    }
}

// ---------------------------------------------------------------------------------------
// Socket-level operations on the model

impl IpvsSocket {
    /// The real servers of each service, in the same order.
    pub fn dests_of_all(
        &mut self,
        services: &[ServiceRaw],
    ) -> Result<Vec<Vec<DestRaw>>, BackendError> {
        self.per_chunk(services, |sock, part| sock.dests_sequential(part))
    }

    /// Runs `f` over `services` in order, split over several sockets and threads when there
    /// are many (the kernel answers one real-server dump per service), and concatenates the
    /// results in the same order.
    pub(crate) fn per_chunk<T: Send>(
        &mut self,
        services: &[ServiceRaw],
        f: impl Fn(&mut IpvsSocket, &[ServiceRaw]) -> Result<Vec<T>, BackendError> + Sync,
    ) -> Result<Vec<T>, BackendError> {
        // Small reads (an apply's read-back) skip `available_parallelism`: it reads cgroup
        // files, a dozen system calls on the path of every one-service change.
        if services.len() < PARALLEL_DUMP_THRESHOLD {
            return f(self, services);
        }
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_DUMP_THREADS);
        if threads < 2 {
            return f(self, services);
        }
        let family = self.family();
        let chunk = services.len().div_ceil(threads);
        let f = &f;
        let mut parts: Vec<Result<Vec<T>, BackendError>> = Vec::new();
        thread::scope(|scope| {
            let mut chunks = services.chunks(chunk);
            // This thread works on the first chunk with its own socket.
            let first = chunks.next().unwrap_or(&[]);
            let handles: Vec<_> = chunks
                .map(|part| {
                    scope.spawn(move || {
                        let mut s = IpvsSocket::with_family(family)
                            .map_err(|e| observe_error("opening another IPVS socket", e))?;
                        f(&mut s, part)
                    })
                })
                .collect();
            parts.push(f(self, first));
            for h in handles {
                parts.push(h.join().unwrap_or_else(|_| {
                    Err(BackendError::Other(
                        "a thread reading IPVS real servers panicked".into(),
                    ))
                }));
            }
        });
        let mut out = Vec::with_capacity(services.len());
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    fn dests_sequential(
        &mut self,
        services: &[ServiceRaw],
    ) -> Result<Vec<Vec<DestRaw>>, BackendError> {
        services
            .iter()
            .map(|s| self.dests(s).map_err(|e| dests_error(s, e)))
            .collect()
    }

    /// Runs one plan op.
    pub fn execute_op(&mut self, op: &Op) -> Result<(), BackendError> {
        self.execute_ops(std::slice::from_ref(op), true)
            .pop()
            .unwrap_or_else(|| {
                Err(BackendError::Other(format!(
                    "{}: not sent",
                    describe_op(op)
                )))
            })
    }

    /// Runs IPVS plan ops pipelined (see [`IpvsSocket::execute_batch`]) and returns one result
    /// per op *attempted*, in order; with `stop_at_first_error` the list ends early after a
    /// failure (ops that were already in flight still report their own results), and the
    /// deletes of a run are only sent once everything before them succeeded. A non-IPVS op
    /// fails without being sent. Real servers written with GUE/GRE tunnels or tunnel flags are
    /// read back: a kernel that silently ignored those attributes turns the op into an error.
    pub fn execute_ops(
        &mut self,
        ops: &[Op],
        stop_at_first_error: bool,
    ) -> Vec<Result<(), BackendError>> {
        let mut results: Vec<Result<(), BackendError>> = Vec::with_capacity(ops.len());
        let mut start = 0;
        while start < ops.len() {
            // The run of IPVS ops from `start`.
            let run_end = ops[start..]
                .iter()
                .position(|op| !is_ipvs_op(op))
                .map_or(ops.len(), |p| start + p);
            // A barrier before the deletes: the kernel carries out every request of a datagram
            // even after one of them fails, so a delete sent together with the add that
            // replaces it would run even when that add failed, and a working service would
            // go with nothing in its place. Plans put adds and edits before deletes, so this
            // costs one wait per run.
            let end = if stop_at_first_error {
                (start + 1..run_end)
                    .find(|&j| is_destructive(&ops[j]) && !is_destructive(&ops[j - 1]))
                    .unwrap_or(run_end)
            } else {
                run_end
            };
            if end == start {
                results.push(Err(BackendError::Other(format!(
                    "{}: not an IPVS operation",
                    describe_op(&ops[start])
                ))));
                start += 1;
                if stop_at_first_error {
                    break;
                }
                continue;
            }
            let reqs: Vec<IpvsRequest> =
                ops[start..end].iter().filter_map(request_for_op).collect();
            let outcome = self.execute_batch(&reqs, stop_at_first_error);
            let sent = outcome.len();
            for (op, r) in ops[start..start + sent].iter().zip(outcome) {
                results.push(r.map_err(|e| op_error(op, e)));
            }
            if sent < end - start && !stop_at_first_error {
                // The socket failed mid-batch: one result per op all the same, so that results
                // stay aligned with `ops` for the runs after this one.
                for op in &ops[start + sent..end] {
                    results.push(Err(BackendError::Other(format!(
                        "{}: not sent: an earlier request on the IPVS socket failed",
                        describe_op(op)
                    ))));
                }
            }
            // Before the next run: a tunnel the kernel silently dropped is a failed add too.
            self.verify_tunnels(&ops[start..start + sent], &mut results[start..]);
            if stop_at_first_error && results[start..].iter().any(Result::is_err) {
                break;
            }
            start = end;
        }
        results
    }

    /// Reads back real servers whose tunnel settings an old kernel may have dropped and turns
    /// their results into errors when it did.
    fn verify_tunnels(&mut self, ops: &[Op], results: &mut [Result<(), BackendError>]) {
        let mut by_service: BTreeMap<ServiceKey, Vec<usize>> = BTreeMap::new();
        for (i, (op, r)) in ops.iter().zip(results.iter()).enumerate() {
            let spec = match op {
                Op::AddDest { spec, .. } => spec,
                Op::UpdateDest { after, .. } => after,
                _ => continue,
            };
            if r.is_ok()
                && tunnel_needs_check(&spec.forward)
                && let Op::AddDest { service, .. } | Op::UpdateDest { service, .. } = op
            {
                by_service.entry(*service).or_default().push(i);
            }
        }
        for (service, idxs) in by_service {
            let identity = service_identity(&service);
            let dests = match self.dests(&identity) {
                Ok(d) => d,
                Err(e) => {
                    for i in idxs {
                        results[i] = Err(BackendError::Other(format!(
                            "{}: cannot read it back to check its tunnel settings: {e}",
                            describe_op(&ops[i])
                        )));
                    }
                    continue;
                }
            };
            for i in idxs {
                let (key, spec) = match &ops[i] {
                    Op::AddDest { key, spec, .. } => (key, spec),
                    Op::UpdateDest { key, after, .. } => (key, &**after),
                    _ => continue,
                };
                let Some(got) = dests
                    .iter()
                    .find(|d| d.ip(identity.af) == Some(key.addr) && d.port == key.port)
                else {
                    // Gone again (deleted by someone else): nothing to compare.
                    continue;
                };
                if let Some(problem) = tunnel_mismatch(spec, got, identity.af) {
                    results[i] = Err(BackendError::Kernel {
                        op: describe_op(&ops[i]),
                        errno: Errno::Other(libc::EOPNOTSUPP),
                        message: problem,
                    });
                }
            }
        }
    }
}

/// Whether an old kernel could silently turn this forwarding into something else (plain IPIP
/// is what kernels without tunnel attributes do anyway).
fn tunnel_needs_check(f: &Forward) -> bool {
    match f {
        Forward::Tunnel { tunnel, flags } => *tunnel != TunnelType::Ipip || flags.bits() != 0,
        _ => false,
    }
}

/// Describes how the kernel's copy of a real server lost its tunnel settings, if it did.
pub fn tunnel_mismatch(spec: &DestSpec, got: &DestRaw, service_af: u16) -> Option<String> {
    if got.tun_type.is_none() {
        return Some(format!(
            "the kernel accepted {} but reports no tunnel settings: it predates GUE/GRE tunnels \
             (Linux 5.2) and ignored them; use ipip or a newer kernel",
            spec.forward
        ));
    }
    let observed = dest_of(got, service_af).ok()?.1.forward;
    (observed != spec.forward).then(|| {
        format!(
            "the kernel ignored part of the tunnel settings: asked for {}, it keeps {observed} \
             (tunnel checksum flags need Linux 5.3)",
            spec.forward
        )
    })
}

/// The address a service key stands for (its VIP), if it has one.
pub fn service_vip(key: &ServiceKey) -> Option<IpAddr> {
    match key {
        ServiceKey::Inet { vip, .. } => Some(*vip),
        ServiceKey::Fwmark { .. } => None,
    }
}
