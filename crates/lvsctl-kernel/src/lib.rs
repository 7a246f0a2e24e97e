//! lvsctl's real director backend: composes the IPVS client (`lvsctl-ipvs`), lvsctl's mangle
//! chain (`lvsctl-mark`) and VIP addresses (`lvsctl-vip`) behind [`lvsctl_plan::Backend`].
//! It only routes each [`Op`] to the part that owns it; it must not plan, order or retry.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub use lvsctl_ipvs::DestCounters;
use lvsctl_ipvs::{IpvsSocket, is_ipvs_op, service_identity};
use lvsctl_mark::{Config as MarkConfig, IptablesBackend, ObservedChain, Xtables};
use lvsctl_model::{
    Family, MarkChain, MarkRule, Observed, Service, ServiceCounters, ServiceKey, VipState,
};
use lvsctl_plan::{Backend, BackendError, Op};
use lvsctl_vip::Vips;
use tracing::{debug, warn};

/// [`Backend::observe_changed`] reads touched services back one by one up to this many, or up
/// to half of the table if that is more; beyond that the full (parallel) dump costs less.
const PARTIAL_READBACK_MIN: usize = 64;

/// How to reach the director's parts.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The manifest's `director.vip_interface`; `None` = VIPs are not managed.
    pub vip_interface: Option<String>,
    /// The manifest's `realserver.interface` when it has a `realserver:` section: the VIPs
    /// `lvsctl realserver` stamped there are never taken for a former VIP interface's
    /// (loopback interfaces never are either).
    pub realserver_interface: Option<String>,
    /// Bounded wait for the xtables lock (default 5 s).
    pub xtables_wait: Option<Duration>,
    /// Without `vip_interface`, look for the interface holding lvsctl's addresses (export and
    /// status have no manifest to name it).
    pub discover_vip_interface: bool,
    /// Which counters observing must deliver: `All` (`status`, `export`, the daemon's metrics)
    /// reads every traffic counter exactly; with less, real servers whose traffic counters the
    /// fast path cannot read exactly report them as zero instead of costing a netlink dump of
    /// their service (see `IpvsSocket::set_counters`).
    pub counters: DestCounters,
    /// lvsctl's runtime folder, where the nft backend keeps each family's last `*-save`
    /// output with the ruleset generation it was read at (see `lvsctl_mark::Config`).
    pub mark_cache_dir: Option<std::path::PathBuf>,
}

/// The real kernel, in the calling thread's network namespace.
pub struct KernelBackend {
    ipvs: IpvsSocket,
    config: Config,
    xtables: Option<Xtables>,
    vips: Option<Vips>,
    /// lvsctl's chain per family as last read (`None` inside: it did not exist), so a write
    /// right after an observe need not run `iptables-save` again. Forgotten on any error.
    chains: std::collections::HashMap<Family, Option<ObservedChain>>,
}

impl KernelBackend {
    /// Opens the IPVS socket (fails clearly when IPVS is missing or CAP_NET_ADMIN is not held).
    pub fn open(config: Config) -> Result<Self, BackendError> {
        let mut ipvs = IpvsSocket::open().map_err(|e| BackendError::Unavailable(e.to_string()))?;
        ipvs.set_counters(config.counters);
        Ok(KernelBackend {
            ipvs,
            config,
            xtables: None,
            vips: None,
            chains: std::collections::HashMap::new(),
        })
    }

    /// iptables is detected on first use: a director without fwmark services never needs it.
    fn xtables(&mut self) -> Result<&Xtables, BackendError> {
        if self.xtables.is_none() {
            self.xtables = Some(detect_xtables(&self.config)?);
        }
        self.xtables
            .as_ref()
            .ok_or_else(|| BackendError::Other("iptables backend missing".to_owned()))
    }

    fn vips(&mut self) -> Result<&mut Vips, BackendError> {
        if self.vips.is_none() {
            self.vips = Some(Vips::open().map_err(|e| BackendError::Unavailable(e.to_string()))?);
        }
        self.vips
            .as_mut()
            .ok_or_else(|| BackendError::Other("rtnetlink socket missing".to_owned()))
    }

    /// Runs `f` on this thread while another reads the MARK chains of `families`: the
    /// `iptables-save` runs (and the first-use detection) are process spawns that overlap
    /// well with the netlink dumps `f` does.
    fn with_marks<T>(
        &mut self,
        families: &[Family],
        f: impl FnOnce(&mut Self) -> Result<T, BackendError>,
    ) -> Result<(T, Vec<(Family, MarkChain)>), BackendError> {
        if families.is_empty() {
            // A thread costs more than nothing here (much more under emulation).
            return Ok((f(self)?, Vec::new()));
        }
        let xtables = self.xtables.clone();
        let config = self.config.clone();
        let (out, read) = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let t = Instant::now();
                let read = read_marks(xtables, &config, families);
                debug!(
                    elapsed_ms = t.elapsed().as_millis() as u64,
                    "read MARK chains"
                );
                read
            });
            let t = Instant::now();
            let out = f(self);
            debug!(elapsed_ms = t.elapsed().as_millis() as u64, "read IPVS");
            let read = reader.join().unwrap_or_else(|_| MarkRead {
                xtables: None,
                chains: Err(BackendError::Other(
                    "the thread reading MARK rules panicked".to_owned(),
                )),
            });
            (out, read)
        });
        if self.xtables.is_none() {
            self.xtables = read.xtables;
        }
        for f in families {
            self.chains.remove(f);
        }
        let read = read.chains?;
        let mut chains = Vec::with_capacity(read.len());
        for (family, chain) in read {
            if let Some(c) = &chain {
                chains.push((family, c.to_mark_chain()));
            }
            self.chains.insert(family, chain);
        }
        Ok((out?, chains))
    }

    fn read_vips(&mut self) -> Result<Option<VipState>, BackendError> {
        if self.config.vip_interface.is_none() && self.config.discover_vip_interface {
            self.config.vip_interface = self.discover_vip_interface()?;
        }
        let Some(interface) = self.config.vip_interface.clone() else {
            return Ok(None);
        };
        if self.config.discover_vip_interface {
            // No manifest: nothing says which interface is the real-server side's, and
            // nothing is planned, so addresses elsewhere are not looked for.
            let state = self
                .vips()?
                .observe(&interface)
                .map_err(|e| BackendError::Other(format!("read VIPs on {interface}: {e}")))?;
            // A missing interface holds nothing yet; the first AddVip creates it.
            return Ok(Some(state.unwrap_or_else(|| VipState {
                interface,
                ..Default::default()
            })));
        }
        // Also lvsctl's addresses on other interfaces (a former vip_interface), so the plan
        // removes them; a missing interface holds nothing yet (the first AddVip creates it).
        let spare = self.config.realserver_interface.clone();
        let state = self
            .vips()?
            .observe_all(
                &interface,
                &spare.as_deref().into_iter().collect::<Vec<_>>(),
            )
            .map_err(|e| BackendError::Other(format!("read VIPs on {interface}: {e}")))?;
        Ok(Some(state))
    }

    /// The current kernel copy of each touched service that exists: GET_SERVICE, then its real
    /// servers (in parallel when there are many). A service only its real servers were written
    /// to keeps its settings from `before` and costs just the real-server dump.
    fn read_services(
        &mut self,
        touched: &Touched,
        before: &Observed,
    ) -> Result<Vec<(ServiceKey, Service, ServiceCounters)>, BackendError> {
        let mut raws = Vec::with_capacity(touched.services.len());
        let mut kept_specs = Vec::with_capacity(touched.services.len());
        for key in &touched.services {
            let kept = before.state.services.get(key).map(|s| &s.spec);
            match kept {
                Some(spec) if !touched.service_ops.contains(key) => {
                    raws.push(service_identity(key));
                    kept_specs.push(Some(spec));
                }
                _ => {
                    let found = self.ipvs.service(&service_identity(key)).map_err(|e| {
                        BackendError::Other(format!("read back service {key}: {e}"))
                    })?;
                    if let Some(raw) = found {
                        raws.push(raw);
                        kept_specs.push(None);
                    }
                }
            }
        }
        let dests = self.ipvs.dests_of_all(&raws)?;
        raws.iter()
            .zip(&dests)
            .zip(kept_specs)
            .map(|((raw, ds), kept)| {
                let (key, mut service, counters) =
                    lvsctl_ipvs::service_model(raw, ds, self.ipvs.counters())
                        .map_err(BackendError::Other)?;
                if let Some(spec) = kept {
                    service.spec = spec.clone();
                }
                Ok((key, service, counters))
            })
            .collect()
    }

    /// The first interface (by name) holding an address lvsctl added, if any.
    fn discover_vip_interface(&mut self) -> Result<Option<String>, BackendError> {
        let mut names: Vec<String> = match std::fs::read_dir("/sys/class/net") {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return Ok(None),
        };
        names.sort();
        for name in names {
            let state = self
                .vips()?
                .observe(&name)
                .map_err(|e| BackendError::Other(format!("read addresses of {name}: {e}")))?;
            if state.is_some_and(|s| !s.owned.is_empty()) {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    fn execute_other(&mut self, op: &Op) -> Result<(), BackendError> {
        let mark_err = |e: lvsctl_mark::MarkError| BackendError::Other(format!("{op}: {e}"));
        let vip_err = |e: lvsctl_vip::VipError| BackendError::Other(format!("{op}: {e}"));
        match op {
            Op::WriteMarkChain { family, rules, .. } => {
                let known = self.chains.remove(family);
                let xt = self.xtables()?;
                let written = match &known {
                    Some(current) => xt.write_chain_over(*family, rules, current.as_ref()),
                    None => xt.write_chain(*family, rules),
                }
                .map_err(mark_err)?;
                self.chains.insert(*family, Some(written));
                Ok(())
            }
            Op::RemoveMarkChain { family, .. } => {
                self.chains.remove(family);
                self.xtables()?.remove_chain(*family).map_err(mark_err)?;
                self.chains.insert(*family, None);
                Ok(())
            }
            Op::AddVip { interface, addr } => {
                self.vips()?.add_vip(interface, *addr).map_err(vip_err)?;
                Ok(())
            }
            Op::DeleteVip {
                interface, addr, ..
            } => {
                self.vips()?.delete_vip(interface, *addr).map_err(vip_err)?;
                Ok(())
            }
            other => self.ipvs.execute_op(other),
        }
    }
}

impl Backend for KernelBackend {
    fn observe(&mut self) -> Result<Observed, BackendError> {
        let (((services, counters), report), marks) = self
            .with_marks(&[Family::Inet, Family::Inet6], |b| {
                b.ipvs.observe_services_reported()
            })?;
        for why in &report.unrepresentable {
            warn!("{why}; lvsctl leaves that service alone");
        }
        let mut observed = Observed::default();
        observed.state.services = services;
        observed.counters = counters;
        observed.state.marks = marks.into_iter().collect();
        observed.state.vips = self.read_vips()?;
        Ok(observed)
    }

    /// Re-reads the services the ops touched (GET_SERVICE and one real-server dump each), the
    /// MARK chains they wrote and the VIPs if they changed any; the rest comes from `before`.
    /// When most of the table changed (an apply to an empty table), everything is read again.
    fn observe_changed(&mut self, before: Observed, ops: &[Op]) -> Result<Observed, BackendError> {
        let touched = Touched::of(ops);
        if touched.services.len() > (before.state.services.len() / 2).max(PARTIAL_READBACK_MIN) {
            return self.observe();
        }
        let (found, marks) =
            self.with_marks(&touched.families, |b| b.read_services(&touched, &before))?;
        let vips = if touched.vips {
            Some(self.read_vips()?)
        } else {
            None
        };
        Ok(touched.merge(before, found, marks, vips))
    }

    fn observe_vips(&mut self, interface: Option<&str>) -> Result<Option<VipState>, BackendError> {
        self.config.vip_interface = interface.map(str::to_owned);
        self.read_vips()
    }

    fn observe_vips_sparing(
        &mut self,
        interface: Option<&str>,
        realserver_interface: Option<&str>,
    ) -> Result<Option<VipState>, BackendError> {
        self.config.realserver_interface = realserver_interface.map(str::to_owned);
        self.observe_vips(interface)
    }

    fn execute(&mut self, op: &Op) -> Result<(), BackendError> {
        self.execute_other(op)
    }

    /// Runs of consecutive IPVS ops are pipelined on the socket; the rest go one by one.
    fn execute_all(&mut self, ops: &[Op]) -> Result<(), (usize, BackendError)> {
        let mut i = 0;
        while i < ops.len() {
            if is_ipvs_op(&ops[i]) {
                let end = ops[i..]
                    .iter()
                    .position(|op| !is_ipvs_op(op))
                    .map_or(ops.len(), |p| i + p);
                let results = self.ipvs.execute_ops(&ops[i..end], true);
                if let Some(k) = results.iter().position(Result::is_err) {
                    // Requests after the failed one were already on the wire: name those that
                    // the kernel carried out too, so the report of what was done is complete.
                    let also: Vec<String> = results[k + 1..]
                        .iter()
                        .zip(&ops[i + k + 1..end])
                        .filter(|(r, _)| r.is_ok())
                        .map(|(_, op)| op.to_string())
                        .collect();
                    let mut err = match results.into_iter().nth(k) {
                        Some(Err(e)) => e,
                        _ => BackendError::Other(format!("{}: failed", ops[i + k])),
                    };
                    if !also.is_empty() {
                        let note = format!(
                            "; {} later step(s) already sent were done too: {}",
                            also.len(),
                            also.join(", ")
                        );
                        match &mut err {
                            BackendError::Kernel { message, .. } => message.push_str(&note),
                            BackendError::Unavailable(m) | BackendError::Other(m) => {
                                m.push_str(&note)
                            }
                        }
                    }
                    return Err((i + k, err));
                }
                i = end;
            } else {
                self.execute_other(&ops[i]).map_err(|e| (i, e))?;
                i += 1;
            }
        }
        Ok(())
    }
}

/// What a list of ops changes: the services (with their real servers), the MARK chains, and
/// whether VIPs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Touched {
    services: BTreeSet<ServiceKey>,
    /// The services written themselves (added, updated, deleted), not just their real servers.
    service_ops: BTreeSet<ServiceKey>,
    /// MARK chains to read again (removed ones).
    families: Vec<Family>,
    /// MARK chains as written. `Xtables::write_chain` has already read each back and compared
    /// it with what it wrote (rules, and exactly one jump per hook), so another
    /// `iptables-save` would only repeat that check.
    written: Vec<(Family, MarkChain)>,
    vips: bool,
}

impl Touched {
    fn of(ops: &[Op]) -> Touched {
        let mut t = Touched::default();
        for op in ops {
            match op {
                Op::AddService { key, .. }
                | Op::UpdateService { key, .. }
                | Op::DeleteService { key, .. } => {
                    t.services.insert(*key);
                    t.service_ops.insert(*key);
                }
                Op::AddDest { service, .. }
                | Op::UpdateDest { service, .. }
                | Op::DeleteDest { service, .. }
                | Op::DrainDest { service, .. } => {
                    t.services.insert(*service);
                }
                Op::WriteMarkChain { family, rules, .. } => {
                    t.written.retain(|(f, _)| f != family);
                    t.written.push((*family, written_chain(rules)));
                }
                Op::RemoveMarkChain { family, .. } => {
                    t.written.retain(|(f, _)| f != family);
                    if !t.families.contains(family) {
                        t.families.push(*family);
                    }
                }
                Op::AddVip { .. } | Op::DeleteVip { .. } => t.vips = true,
            }
        }
        t
    }

    /// `before` with every touched object replaced by what was read back: a touched service
    /// or chain that was not found is gone; `vips` is `Some` when VIPs were read again.
    fn merge(
        &self,
        mut before: Observed,
        found: Vec<(ServiceKey, Service, ServiceCounters)>,
        chains: Vec<(Family, MarkChain)>,
        vips: Option<Option<VipState>>,
    ) -> Observed {
        for key in &self.services {
            before.state.services.remove(key);
            before.counters.remove(key);
        }
        for (key, service, counters) in found {
            before.state.services.insert(key, service);
            before.counters.insert(key, counters);
        }
        for family in &self.families {
            before.state.marks.remove(family);
        }
        before.state.marks.extend(chains);
        before.state.marks.extend(self.written.iter().cloned());
        if let Some(v) = vips {
            before.state.vips = v;
        }
        before
    }
}

/// A chain as reading it back after a successful write shows it: hooked, its rules in the
/// order written, each rule's ports sorted and deduplicated (as iptables lists them).
fn written_chain(rules: &[MarkRule]) -> MarkChain {
    MarkChain {
        hooked: true,
        rules: rules
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.ports.sort_unstable();
                r.ports.dedup();
                r
            })
            .collect(),
    }
}

/// Picks the iptables backend (`LVSCTL_IPTABLES`, else what `iptables --version` says).
fn detect_xtables(config: &Config) -> Result<Xtables, BackendError> {
    let backend = IptablesBackend::detect()
        .map_err(|e| BackendError::Unavailable(format!("iptables: {e}")))?;
    debug!(backend = %backend.backend, "iptables backend");
    let mut cfg = MarkConfig::new(backend.backend);
    if let Some(w) = config.xtables_wait {
        cfg.wait = w;
    }
    cfg.cache_dir.clone_from(&config.mark_cache_dir);
    Ok(Xtables::new(cfg))
}

/// What [`read_marks`] found: the iptables backend (kept for later writes) and the chains.
struct MarkRead {
    xtables: Option<Xtables>,
    /// Every family read, with its chain (`None`: absent).
    chains: Result<Vec<(Family, Option<ObservedChain>)>, BackendError>,
}

/// Reads lvsctl's chain of each of `families`, detecting the iptables backend first if needed.
fn read_marks(xtables: Option<Xtables>, config: &Config, families: &[Family]) -> MarkRead {
    if families.is_empty() {
        return MarkRead {
            xtables,
            chains: Ok(Vec::new()),
        };
    }
    let xt = match xtables.map_or_else(|| detect_xtables(config), Ok) {
        Ok(xt) => xt,
        // No iptables at all: there can be no chain of ours to see. Writing one will fail
        // with the same reason, so nothing is hidden.
        Err(e) => {
            warn!("cannot read MARK rules: {e}");
            return MarkRead {
                xtables: None,
                chains: Ok(Vec::new()),
            };
        }
    };
    // One `*-save` per family, each a process start: run them side by side.
    let saves: Vec<_> = std::thread::scope(|scope| {
        let rest: Vec<_> = families[1..]
            .iter()
            .map(|&family| {
                let xt = &xt;
                scope.spawn(move || xt.observe(family))
            })
            .collect();
        let first = xt.observe(families[0]);
        std::iter::once(first)
            .chain(rest.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(lvsctl_mark::MarkError::Backend(
                        "the thread running iptables-save panicked".to_owned(),
                    ))
                })
            }))
            .collect()
    });
    let mut chains = Vec::new();
    for (&family, saved) in families.iter().zip(saves) {
        match saved {
            Ok(Some(chain)) => {
                for w in chain.warnings() {
                    warn!("{family} LVSCTL-MARK: {w}");
                }
                chains.push((family, Some(chain)));
            }
            Ok(None) => chains.push((family, None)),
            Err(e) => {
                return MarkRead {
                    xtables: Some(xt),
                    chains: Err(BackendError::Other(format!(
                        "read the {family} mangle table: {e}"
                    ))),
                };
            }
        }
    }
    MarkRead {
        xtables: Some(xt),
        chains: Ok(chains),
    }
}

/// Director-wide IPVS connection timeouts in seconds (`ipvsadm --set`); `None` leaves one as
/// the kernel has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: Option<u32>,
    pub tcp_fin: Option<u32>,
    pub udp: Option<u32>,
}

/// Brings the kernel's IPVS timeouts to `want`; returns one line per change (`tcp: 900s ->
/// 600s`). With `dry_run` nothing is written.
pub fn sync_timeouts(want: &Timeouts, dry_run: bool) -> Result<Vec<String>, BackendError> {
    let mut sock = IpvsSocket::open().map_err(|e| BackendError::Unavailable(e.to_string()))?;
    let have = sock
        .timeouts()
        .map_err(|e| BackendError::Other(format!("read IPVS timeouts: {e}")))?;
    let mut set = lvsctl_ipvs::codec::TimeoutsRaw {
        tcp: 0,
        tcp_fin: 0,
        udp: 0,
    };
    let mut changes = Vec::new();
    // 0 in SET_CONFIG means "leave as is", so only differing values are sent.
    for (name, want, have, slot) in [
        ("tcp", want.tcp, have.tcp, &mut set.tcp),
        ("tcpfin", want.tcp_fin, have.tcp_fin, &mut set.tcp_fin),
        ("udp", want.udp, have.udp, &mut set.udp),
    ] {
        if let Some(w) = want
            && w != have
        {
            *slot = w;
            changes.push(format!("~ ipvs timeout {name}: {have}s -> {w}s"));
        }
    }
    if !changes.is_empty() && !dry_run {
        sock.set_timeouts(&set)
            .map_err(|e| BackendError::Other(format!("set IPVS timeouts: {e}")))?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::IpAddr;

    use lvsctl_model::{DestKey, DestSpec, Forward, Protocol, ServiceSpec};
    use lvsctl_plan::Reason;

    use super::*;

    fn tcp(vip: &str, port: u16) -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            vip: vip.parse().unwrap(),
            port,
        }
    }

    fn service(weight: u16) -> Service {
        let mut s = Service {
            spec: ServiceSpec::default(),
            dests: Default::default(),
        };
        s.dests.insert(
            DestKey {
                addr: "10.0.0.1".parse::<IpAddr>().unwrap(),
                port: 80,
            },
            DestSpec {
                forward: Forward::Nat,
                weight: weight.into(),
                ..DestSpec::default()
            },
        );
        s
    }

    fn chain(mark: u32) -> MarkChain {
        MarkChain {
            hooked: true,
            rules: vec![MarkRule {
                vip: "192.0.2.1".parse().unwrap(),
                protocol: Protocol::Tcp,
                ports: vec![80],
                mark: lvsctl_model::Fwmark::new(mark).unwrap(),
                service: "web".to_owned(),
            }],
        }
    }

    #[test]
    fn touched_collects_services_of_service_and_dest_ops_once() {
        let (a, b) = (tcp("192.0.2.1", 80), tcp("192.0.2.2", 80));
        let dest = DestKey {
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let ops = vec![
            Op::AddService {
                key: a,
                spec: Box::new(ServiceSpec::default()),
                replaces: None,
            },
            Op::AddDest {
                service: a,
                key: dest,
                spec: DestSpec::default(),
                replaces: None,
            },
            Op::DeleteDest {
                service: b,
                key: dest,
                spec: DestSpec::default(),
                reason: Box::new(Reason::NotInManifest),
            },
            Op::RemoveMarkChain {
                family: Family::Inet,
                removed: Vec::new(),
            },
            Op::WriteMarkChain {
                family: Family::Inet6,
                rules: vec![MarkRule {
                    vip: "2001:db8::1".parse().unwrap(),
                    protocol: Protocol::Tcp,
                    ports: vec![443, 80, 443],
                    mark: lvsctl_model::Fwmark::new(7).unwrap(),
                    service: "web6".to_owned(),
                }],
                added: Vec::new(),
                removed: Vec::new(),
            },
        ];
        let t = Touched::of(&ops);
        assert_eq!(t.services, BTreeSet::from([a, b]));
        assert_eq!(t.service_ops, BTreeSet::from([a]));
        // The removed chain is read again; the written one is taken as written, ports the way
        // iptables lists them.
        assert_eq!(t.families, vec![Family::Inet]);
        assert_eq!(t.written.len(), 1);
        assert_eq!(t.written[0].0, Family::Inet6);
        assert!(t.written[0].1.hooked);
        assert_eq!(t.written[0].1.rules[0].ports, vec![80, 443]);
        assert!(!t.vips);
        let t = Touched::of(&[Op::AddVip {
            interface: "lvs0".to_owned(),
            addr: "192.0.2.1".parse().unwrap(),
        }]);
        assert!(t.vips && t.services.is_empty() && t.families.is_empty());
    }

    #[test]
    fn merge_replaces_touched_objects_and_keeps_the_rest() {
        let (kept, changed, deleted) = (
            tcp("192.0.2.1", 80),
            tcp("192.0.2.2", 80),
            tcp("192.0.2.3", 80),
        );
        let mut before = Observed::default();
        for k in [kept, changed, deleted] {
            before.state.services.insert(k, service(1));
            before.counters.insert(k, ServiceCounters::default());
        }
        before.state.marks.insert(Family::Inet, chain(1));
        before.state.marks.insert(Family::Inet6, chain(2));
        let touched = Touched {
            services: BTreeSet::from([changed, deleted]),
            service_ops: BTreeSet::from([deleted]),
            families: vec![Family::Inet],
            written: Vec::new(),
            vips: false,
        };
        let after = touched.merge(
            before,
            vec![(changed, service(5), ServiceCounters::default())],
            Vec::new(),
            None,
        );
        assert_eq!(after.state.services[&kept], service(1));
        assert_eq!(after.state.services[&changed], service(5));
        assert!(!after.state.services.contains_key(&deleted));
        assert!(!after.counters.contains_key(&deleted));
        // The touched chain was not found again: gone. The other family is untouched.
        assert!(!after.state.marks.contains_key(&Family::Inet));
        assert_eq!(after.state.marks[&Family::Inet6], chain(2));
        assert_eq!(after.state.vips, None);
    }
}
