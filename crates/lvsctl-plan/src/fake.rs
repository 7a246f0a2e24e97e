//! An in-memory director that enforces the kernel's own rules, for tests of the planner, the CLI
//! and the daemon. It holds an [`Observed`], answers ops with the errno the kernel would give
//! (EEXIST on duplicates, ESRCH for a missing service, ENOENT for a missing real server or
//! scheduler module), can be told to fail, and records what it ran.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, MarkChain, MarkRule, Observed, Scheduler, ServiceKey,
    ServiceSpec, State, TunnelType, VipState,
};

use crate::{Backend, BackendError, Errno, Op, Plan};

/// Persistence engines the fake kernel has modules for (mainline ships only `sip`).
const KNOWN_PES: &[&str] = &["sip"];

/// Longest scheduler or persistence-engine name the kernel's attribute policy takes
/// (IP_VS_SCHEDNAME_MAXLEN and IP_VS_PENAME_MAXLEN are 16, NUL included).
const NAME_MAX: usize = 15;

/// `ERANGE`, as the kernel answers bad weights and thresholds.
const ERANGE: i32 = 34;
/// `EADDRNOTAVAIL`, as rtnetlink answers deleting an address that is not there.
const EADDRNOTAVAIL: i32 = 99;

type Predicate = Box<dyn Fn(&Op) -> bool + Send + Sync>;

/// The in-memory kernel. See the module docs.
pub struct FakeKernel {
    observed: Observed,
    executed: Vec<Op>,
    /// False for [`FakeKernel::without_history`]: `executed` stays empty.
    record: bool,
    /// Ops attempted so far, failed ones included: the index [`FakeKernel::fail_on`] counts.
    attempts: usize,
    fail_on: BTreeMap<usize, BackendError>,
    fail_when: Vec<(Predicate, BackendError)>,
    observe_failures: VecDeque<BackendError>,
}

impl fmt::Debug for FakeKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKernel")
            .field("observed", &self.observed)
            .field("executed", &self.executed)
            .field("attempts", &self.attempts)
            .field("fail_on", &self.fail_on)
            .field("fail_when", &self.fail_when.len())
            .field("observe_failures", &self.observe_failures)
            .finish()
    }
}

impl Default for FakeKernel {
    fn default() -> Self {
        FakeKernel::new(Observed::default())
    }
}

impl FakeKernel {
    /// A kernel in exactly this observed state (counters included).
    pub fn new(observed: Observed) -> Self {
        FakeKernel {
            observed,
            executed: Vec::new(),
            record: true,
            attempts: 0,
            fail_on: BTreeMap::new(),
            fail_when: Vec::new(),
            observe_failures: VecDeque::new(),
        }
    }

    /// A kernel in this state, with every counter at zero.
    pub fn from_state(state: State) -> Self {
        FakeKernel::new(Observed {
            state,
            counters: BTreeMap::new(),
        })
    }

    /// The current state, without cloning.
    pub fn state(&self) -> &State {
        &self.observed.state
    }

    /// The current state and counters, without cloning.
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// Every op that succeeded, in order, across all calls.
    pub fn executed(&self) -> &[Op] {
        &self.executed
    }

    /// Keeps no copy of the executed ops ([`FakeKernel::executed`] stays empty): a stand-in
    /// kernel for a whole process (the CLI's `LVSCTL_FAKE_KERNEL`) would otherwise hold a
    /// second copy of every plan it runs, 20 MB for 10,000 services.
    pub fn without_history(mut self) -> Self {
        self.record = false;
        self
    }

    /// How many ops were attempted, failed ones included.
    pub fn attempts(&self) -> usize {
        self.attempts
    }

    /// Makes the `n`-th attempted op (0-based, counted across calls from the kernel's creation)
    /// fail with `err` without changing anything.
    pub fn fail_on(&mut self, n: usize, err: BackendError) -> &mut Self {
        self.fail_on.insert(n, err);
        self
    }

    /// Makes every op for which `predicate` holds fail with `err`, until [`Self::clear_faults`].
    pub fn fail_when(
        &mut self,
        predicate: impl Fn(&Op) -> bool + Send + Sync + 'static,
        err: BackendError,
    ) -> &mut Self {
        self.fail_when.push((Box::new(predicate), err));
        self
    }

    /// Makes the next call to [`Backend::observe`] fail with `err` (queued: call it twice for two
    /// failures).
    pub fn fail_next_observe(&mut self, err: BackendError) -> &mut Self {
        self.observe_failures.push_back(err);
        self
    }

    /// Drops every injected fault that has not fired yet.
    pub fn clear_faults(&mut self) {
        self.fail_on.clear();
        self.fail_when.clear();
        self.observe_failures.clear();
    }

    /// Sets a real server's active connection count, as traffic would. The real server need not
    /// exist (the kernel keeps no counters then, but tests may want stale ones).
    pub fn set_active_conns(&mut self, service: ServiceKey, dest: DestKey, n: u32) {
        self.observed
            .counters
            .entry(service)
            .or_default()
            .dests
            .entry(dest)
            .or_default()
            .active_conns = n;
    }

    /// Runs a whole plan; on failure, how many ops succeeded before it.
    pub fn apply(&mut self, plan: &Plan) -> Result<(), (usize, BackendError)> {
        self.execute_all(&plan.ops)
    }

    fn injected_fault(&mut self, op: &Op) -> Option<BackendError> {
        if let Some(err) = self.fail_on.remove(&self.attempts) {
            return Some(err);
        }
        self.fail_when
            .iter()
            .find(|(pred, _)| pred(op))
            .map(|(_, err)| err.clone())
    }

    fn run(&mut self, op: &Op) -> Result<(), BackendError> {
        let state = &mut self.observed.state;
        match op {
            Op::AddVip { interface, addr } => {
                let vips = state.vips.get_or_insert_with(|| VipState {
                    interface: interface.clone(),
                    ..VipState::default()
                });
                if vips.interface != *interface {
                    return Err(refuse(
                        op,
                        Errno::Invalid,
                        format!(
                            "the fake kernel models one vip interface ({}), not {interface}",
                            vips.interface
                        ),
                    ));
                }
                if vips.owned.contains(addr) || vips.foreign.contains(addr) {
                    return Err(refuse(
                        op,
                        Errno::Exists,
                        format!("address {addr} is already on {interface} (EEXIST)"),
                    ));
                }
                vips.owned.insert(*addr);
            }
            Op::DeleteVip {
                interface, addr, ..
            } => {
                // lvsctl's addresses on other interfaces live in `elsewhere`.
                if let Some(vips) = state.vips.as_mut().filter(|v| v.interface != *interface) {
                    let Some(addrs) = vips.elsewhere.get_mut(interface) else {
                        return Err(refuse(
                            op,
                            Errno::Other(EADDRNOTAVAIL),
                            format!("no address of lvsctl's is on {interface} (EADDRNOTAVAIL)"),
                        ));
                    };
                    if !addrs.remove(addr) {
                        return Err(refuse(
                            op,
                            Errno::Other(EADDRNOTAVAIL),
                            format!("address {addr} is not on {interface} (EADDRNOTAVAIL)"),
                        ));
                    }
                    if addrs.is_empty() {
                        vips.elsewhere.remove(interface);
                    }
                    return Ok(());
                }
                let Some(vips) = state.vips.as_mut().filter(|v| v.interface == *interface) else {
                    return Err(refuse(
                        op,
                        Errno::NotFound,
                        format!("interface {interface} does not exist (ENODEV)"),
                    ));
                };
                if vips.foreign.contains(addr) {
                    // The kernel would comply; the fake refuses because lvsctl must never do it.
                    return Err(BackendError::Other(format!(
                        "{op}: fake kernel refuses to delete {addr}, which lvsctl did not add"
                    )));
                }
                if !vips.owned.remove(addr) {
                    return Err(refuse(
                        op,
                        Errno::Other(EADDRNOTAVAIL),
                        format!("address {addr} is not on {interface} (EADDRNOTAVAIL)"),
                    ));
                }
            }
            Op::AddService { key, spec, .. } => {
                check_service(op, key, spec)?;
                if state.services.contains_key(key) {
                    return Err(refuse(
                        op,
                        Errno::Exists,
                        format!("service {key} already exists (EEXIST)"),
                    ));
                }
                let svc = state.services.entry(*key).or_default();
                svc.spec = (**spec).clone();
            }
            Op::UpdateService { key, after, .. } => {
                check_service(op, key, after)?;
                service_mut(state, op, key)?.spec = (**after).clone();
            }
            Op::DeleteService { key, .. } => {
                if state.services.remove(key).is_none() {
                    return Err(no_service(op, key));
                }
                self.observed.counters.remove(key);
            }
            Op::AddDest {
                service, key, spec, ..
            } => {
                let svc = service_mut(state, op, service)?;
                check_dest(op, service, key, spec)?;
                if svc.dests.contains_key(key) {
                    return Err(refuse(
                        op,
                        Errno::Exists,
                        format!("real server {key} already exists in {service} (EEXIST)"),
                    ));
                }
                svc.dests.insert(*key, *spec);
            }
            Op::UpdateDest {
                service,
                key,
                after,
                ..
            } => {
                check_dest(op, service, key, after)?;
                *dest_mut(state, op, service, key)? = **after;
            }
            Op::DrainDest { service, key, .. } => {
                dest_mut(state, op, service, key)?.weight = 0;
            }
            Op::DeleteDest { service, key, .. } => {
                let svc = service_mut(state, op, service)?;
                if svc.dests.remove(key).is_none() {
                    return Err(no_dest(op, service, key));
                }
                if let Some(c) = self.observed.counters.get_mut(service) {
                    c.dests.remove(key);
                }
            }
            Op::WriteMarkChain { family, rules, .. } => {
                check_rules(op, *family, rules)?;
                state.marks.insert(
                    *family,
                    MarkChain {
                        hooked: true,
                        rules: rules.clone(),
                    },
                );
            }
            Op::RemoveMarkChain { family, .. } => {
                if state.marks.remove(family).is_none() {
                    return Err(refuse(
                        op,
                        Errno::NotFound,
                        format!("the {family} mark chain does not exist"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Backend for FakeKernel {
    fn observe(&mut self) -> Result<Observed, BackendError> {
        match self.observe_failures.pop_front() {
            Some(err) => Err(err),
            None => Ok(self.observed.clone()),
        }
    }

    fn execute(&mut self, op: &Op) -> Result<(), BackendError> {
        let fault = self.injected_fault(op);
        self.attempts += 1;
        if let Some(err) = fault {
            return Err(err);
        }
        self.run(op)?;
        if self.record {
            self.executed.push(op.clone());
        }
        Ok(())
    }
}

fn refuse(op: &Op, errno: Errno, message: String) -> BackendError {
    BackendError::Kernel {
        op: op.to_string(),
        errno,
        message,
    }
}

fn no_service(op: &Op, key: &ServiceKey) -> BackendError {
    refuse(
        op,
        Errno::NoService,
        format!("service {key} does not exist (ESRCH)"),
    )
}

fn no_dest(op: &Op, service: &ServiceKey, key: &DestKey) -> BackendError {
    refuse(
        op,
        Errno::NotFound,
        format!("real server {key} does not exist in {service} (ENOENT)"),
    )
}

fn service_mut<'s>(
    state: &'s mut State,
    op: &Op,
    key: &ServiceKey,
) -> Result<&'s mut lvsctl_model::Service, BackendError> {
    state
        .services
        .get_mut(key)
        .ok_or_else(|| no_service(op, key))
}

fn dest_mut<'s>(
    state: &'s mut State,
    op: &Op,
    service: &ServiceKey,
    key: &DestKey,
) -> Result<&'s mut DestSpec, BackendError> {
    service_mut(state, op, service)?
        .dests
        .get_mut(key)
        .ok_or_else(|| no_dest(op, service, key))
}

/// What `ip_vs_add_service` / `ip_vs_edit_service` check.
fn check_service(op: &Op, key: &ServiceKey, spec: &ServiceSpec) -> Result<(), BackendError> {
    // The genl attribute policy (NLA_NUL_STRING of IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN)
    // refuses long names before any module is looked up.
    let long = |name: &str| name.len() > NAME_MAX;
    if let Scheduler::Other(name) = &spec.scheduler
        && long(name)
    {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!("scheduler name {name:?} is longer than {NAME_MAX} bytes (EINVAL)"),
        ));
    }
    if let Some(pe) = &spec.pe_name
        && long(pe)
    {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!("persistence engine name {pe:?} is longer than {NAME_MAX} bytes (EINVAL)"),
        ));
    }
    if let Scheduler::Other(name) = &spec.scheduler {
        return Err(refuse(
            op,
            Errno::NotFound,
            format!("scheduler {name:?} is not available (ENOENT)"),
        ));
    }
    if let Some(pe) = &spec.pe_name
        && !KNOWN_PES.contains(&pe.as_str())
    {
        return Err(refuse(
            op,
            Errno::NotFound,
            format!("persistence engine {pe:?} is not available (ENOENT)"),
        ));
    }
    if let Some(p) = spec.persistence
        && key.family() == Family::Inet6
        && !(1..=128).contains(&p.netmask)
    {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!(
                "ipv6 persistence netmask /{} is outside 1..=128 (EINVAL)",
                p.netmask
            ),
        ));
    }
    Ok(())
}

/// What `ip_vs_add_dest` / `ip_vs_edit_dest` and the genl parser check.
fn check_dest(
    op: &Op,
    service: &ServiceKey,
    key: &DestKey,
    spec: &DestSpec,
) -> Result<(), BackendError> {
    if let Some(what) = not_unicast(key.addr) {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!(
                "real server {} is {what}, not a unicast address (EINVAL)",
                key.addr
            ),
        ));
    }
    let tunnel = matches!(spec.forward, Forward::Tunnel { .. });
    if Family::of(&key.addr) != service.family() && !tunnel {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!(
                "real server {key} is {} but {service} is {}; only tunnel forwarding may mix \
                 families (EINVAL)",
                Family::of(&key.addr),
                service.family()
            ),
        ));
    }
    if i32::try_from(spec.weight).is_err() {
        return Err(refuse(
            op,
            Errno::Other(ERANGE),
            format!("weight {} is out of range (ERANGE)", spec.weight),
        ));
    }
    if i32::try_from(spec.upper_threshold).is_err() {
        return Err(refuse(
            op,
            Errno::Invalid,
            format!(
                "upper threshold {} is above INT_MAX (EINVAL)",
                spec.upper_threshold
            ),
        ));
    }
    if spec.lower_threshold > spec.upper_threshold {
        return Err(refuse(
            op,
            Errno::Other(ERANGE),
            format!(
                "lower threshold {} is above upper threshold {} (ERANGE)",
                spec.lower_threshold, spec.upper_threshold
            ),
        ));
    }
    if let Forward::Tunnel {
        tunnel: TunnelType::Gue { port: 0 },
        ..
    } = spec.forward
    {
        return Err(refuse(
            op,
            Errno::Invalid,
            "gue tunnel port 0 is not allowed (EINVAL)".to_owned(),
        ));
    }
    Ok(())
}

/// Why the kernel refuses `addr` as a real server, as `ip_vs_add_dest` sees it: IPv4 must be
/// RTN_UNICAST or RTN_LOCAL to `inet_addr_type`, IPv6 unicast to `ipv6_addr_type` (measured in
/// the VM: link-local is refused too). A subnet's broadcast address depends on the routes and
/// is not modelled.
fn not_unicast(addr: std::net::IpAddr) -> Option<&'static str> {
    match addr {
        std::net::IpAddr::V4(a) if a.is_multicast() => Some("multicast"),
        std::net::IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        std::net::IpAddr::V4(a) if a.is_unspecified() => Some("unspecified"),
        std::net::IpAddr::V6(a) if a.is_multicast() => Some("multicast"),
        std::net::IpAddr::V6(a) if a.is_unspecified() => Some("unspecified"),
        std::net::IpAddr::V6(a) if a.is_unicast_link_local() => Some("link-local"),
        std::net::IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Some("IPv4-mapped"),
        _ => None,
    }
}

/// What iptables-restore would reject in a chain body.
fn check_rules(op: &Op, family: Family, rules: &[MarkRule]) -> Result<(), BackendError> {
    for rule in rules {
        if rule.family() != family {
            return Err(refuse(
                op,
                Errno::Invalid,
                format!("rule {rule} is not {family} and cannot go in the {family} chain"),
            ));
        }
        if rule.ports.is_empty() || rule.ports.len() > MarkRule::MAX_PORTS {
            return Err(refuse(
                op,
                Errno::Invalid,
                format!(
                    "rule {rule} has {} ports; multiport takes 1..={}",
                    rule.ports.len(),
                    MarkRule::MAX_PORTS
                ),
            ));
        }
    }
    Ok(())
}
