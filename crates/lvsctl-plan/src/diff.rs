//! The diff itself: walks the desired and observed [`State`]s in key order and emits the ops that
//! turn one into the other, in the safe order the applier runs them in.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::net::IpAddr;

use lvsctl_model::{
    DestKey, DestSpec, Family, MarkChain, MarkRule, Observed, Persistence, Protocol, Service,
    ServiceCounters, ServiceKey, ServiceSpec, State, VipState,
};

use crate::{FieldChange, Op, Plan, Reason};

/// Knobs of [`plan_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Keep real servers that are no longer desired but still have active connections: quiesce
    /// them (weight 0) instead of deleting them, and delete them on a later pass.
    pub drain: bool,
    /// Real servers whose drain time is up: deleted even with active connections.
    pub drain_expired: BTreeSet<(ServiceKey, DestKey)>,
}

/// Computes the ordered, minimal plan that turns `observed` into `desired`.
///
/// Pure and deterministic: the same inputs give the same plan, op for op. Equivalent to
/// [`plan_with`] without draining.
pub fn plan(desired: &State, observed: &State) -> Plan {
    Planner::new(None).run(desired, observed)
}

/// [`plan`] with options; reads `observed.counters` to decide what to drain.
pub fn plan_with(desired: &State, observed: &Observed, opts: &PlanOptions) -> Plan {
    let drain = opts.drain.then(|| Drain {
        counters: &observed.counters,
        expired: &opts.drain_expired,
        tcp_only_marks: tcp_only_marks(desired),
    });
    Planner::new(drain).run(desired, &observed.state)
}

/// The fwmark services whose MARK rules (in `desired`) mark no UDP: their inactive entries are
/// closing TCP connections, not live flows.
fn tcp_only_marks(desired: &State) -> BTreeSet<ServiceKey> {
    let mut udp = BTreeSet::new();
    let mut other = BTreeSet::new();
    for chain in desired.marks.values() {
        for r in &chain.rules {
            let key = ServiceKey::Fwmark {
                mark: r.mark,
                family: r.family(),
            };
            if r.protocol == Protocol::Udp {
                udp.insert(key);
            } else {
                other.insert(key);
            }
        }
    }
    other.difference(&udp).copied().collect()
}

struct Drain<'a> {
    counters: &'a BTreeMap<ServiceKey, ServiceCounters>,
    expired: &'a BTreeSet<(ServiceKey, DestKey)>,
    tcp_only_marks: BTreeSet<ServiceKey>,
}

impl Drain<'_> {
    /// Connections that keep a real server from being deleted yet, if any: the active ones,
    /// and for a service that may carry UDP the inactive ones too, since IPVS counts every UDP
    /// flow as inactive (a busy UDP server has no active connections at all). A fwmark service
    /// may carry UDP unless its MARK rules mark only TCP or SCTP (rules lvsctl does not own
    /// could mark anything).
    fn active(&self, service: &ServiceKey, dest: &DestKey) -> Option<u32> {
        let c = self.counters.get(service)?.dests.get(dest)?;
        let udp = match service {
            ServiceKey::Inet { .. } => service.is_udp(),
            ServiceKey::Fwmark { .. } => !self.tcp_only_marks.contains(service),
        };
        let n = if udp {
            c.active_conns.saturating_add(c.inactive_conns)
        } else {
            c.active_conns
        };
        (n > 0 && !self.expired.contains(&(*service, *dest))).then_some(n)
    }
}

/// One phase per step of the safe order; concatenated at the end.
#[derive(Default)]
struct Phases {
    /// (1) VIPs present before services use them.
    add_vips: Vec<Op>,
    /// (2) Mark rules for traffic the desired chain no longer marks at all.
    mark_pre: Vec<Op>,
    /// (3) Services added or edited, in key order.
    services: Vec<Op>,
    /// (4a) New real servers, before old ones go.
    add_dests: Vec<Op>,
    /// (4b) Real servers edited in place, then the ones being drained.
    update_dests: Vec<Op>,
    /// (5) Real servers of surviving services.
    delete_dests: Vec<Op>,
    /// (6) Full mark chains, once the fwmark services they feed exist.
    mark_write: Vec<Op>,
    /// (7) Services (and with them their real servers), after the rules feeding them are gone.
    delete_services: Vec<Op>,
    /// (8) VIPs, once no service uses them.
    delete_vips: Vec<Op>,
}

struct Planner<'a> {
    drain: Option<Drain<'a>>,
    phases: Phases,
}

/// Where a key was found by [`merge_walk`].
enum Side<'a, K, V> {
    Desired(&'a K, &'a V),
    Observed(&'a K, &'a V),
    Both(&'a K, &'a V, &'a V),
}

/// Walks two sorted maps together in key order, in one pass and without lookups.
fn merge_walk<'a, K: Ord, V>(
    desired: &'a BTreeMap<K, V>,
    observed: &'a BTreeMap<K, V>,
    mut f: impl FnMut(Side<'a, K, V>),
) {
    let mut d: Peekable<_> = desired.iter().peekable();
    let mut o: Peekable<_> = observed.iter().peekable();
    loop {
        let side = match (d.peek(), o.peek()) {
            (None, None) => return,
            (Some(_), None) => d.next().map(|(k, v)| Side::Desired(k, v)),
            (None, Some(_)) => o.next().map(|(k, v)| Side::Observed(k, v)),
            (Some((dk, _)), Some((ok, _))) => match dk.cmp(ok) {
                std::cmp::Ordering::Less => d.next().map(|(k, v)| Side::Desired(k, v)),
                std::cmp::Ordering::Greater => o.next().map(|(k, v)| Side::Observed(k, v)),
                std::cmp::Ordering::Equal => match (d.next(), o.next()) {
                    (Some((k, dv)), Some((_, ov))) => Some(Side::Both(k, dv, ov)),
                    _ => None,
                },
            },
        };
        match side {
            Some(side) => f(side),
            None => return,
        }
    }
}

impl<'a> Planner<'a> {
    fn new(drain: Option<Drain<'a>>) -> Self {
        Planner {
            drain,
            phases: Phases::default(),
        }
    }

    fn run(mut self, desired: &State, observed: &State) -> Plan {
        self.vips(desired.vips.as_ref(), observed.vips.as_ref());
        self.services(&desired.services, &observed.services);
        self.marks(&desired.marks, &observed.marks);
        let p = self.phases;
        Plan {
            ops: concat(vec![
                p.add_vips,
                p.mark_pre,
                p.services,
                p.add_dests,
                p.update_dests,
                p.delete_dests,
                p.mark_write,
                p.delete_services,
                p.delete_vips,
            ]),
        }
    }

    fn vips(&mut self, desired: Option<&VipState>, observed: Option<&VipState>) {
        // No VIP interface in the manifest: lvsctl does not manage addresses at all.
        let Some(d) = desired else { return };
        let add = |addr: &IpAddr| Op::AddVip {
            interface: d.interface.clone(),
            addr: *addr,
        };
        match observed {
            None => self.phases.add_vips.extend(d.owned.iter().map(add)),
            Some(o) if o.interface == d.interface => {
                self.phases.add_vips.extend(
                    d.owned
                        .iter()
                        // An address someone else put there is used as it is, never re-added.
                        .filter(|a| !o.owned.contains(a) && !o.foreign.contains(a))
                        .map(add),
                );
                self.phases.delete_vips.extend(
                    o.owned
                        .difference(&d.owned)
                        .map(|addr| delete_vip(&o.interface, *addr)),
                );
            }
            Some(o) => {
                // The managed interface was renamed: move what lvsctl owns.
                self.phases.add_vips.extend(d.owned.iter().map(add));
                self.phases
                    .delete_vips
                    .extend(o.owned.iter().map(|addr| delete_vip(&o.interface, *addr)));
            }
        }
        // What lvsctl added on other interfaces (a former vip_interface) goes too; the
        // observation never lists loopback or the real-server side's interface here.
        let Some(o) = observed else { return };
        for (interface, addrs) in o.elsewhere.iter().filter(|(i, _)| **i != d.interface) {
            self.phases
                .delete_vips
                .extend(addrs.iter().map(|addr| Op::DeleteVip {
                    interface: interface.clone(),
                    addr: *addr,
                    reason: Box::new(Reason::NotOnVipInterface {
                        interface: d.interface.clone(),
                    }),
                }));
        }
    }

    fn services(
        &mut self,
        desired: &BTreeMap<ServiceKey, Service>,
        observed: &BTreeMap<ServiceKey, Service>,
    ) {
        // Index into `phases.services` of each AddService, to mark replacements afterwards.
        let mut added: Vec<(ServiceKey, usize)> = Vec::new();
        let mut deleted: Vec<(ServiceKey, &Service)> = Vec::new();
        merge_walk(desired, observed, |side| match side {
            Side::Both(key, d, o) => {
                if d.spec != o.spec {
                    self.phases
                        .services
                        .push(update_service(*key, &o.spec, &d.spec));
                }
                self.dests(key, &d.dests, &o.dests);
            }
            Side::Desired(key, d) => {
                added.push((*key, self.phases.services.len()));
                self.phases.services.push(Op::AddService {
                    key: *key,
                    spec: Box::new(d.spec.clone()),
                    replaces: None,
                });
                self.phases
                    .add_dests
                    .extend(d.dests.iter().map(|(dk, ds)| Op::AddDest {
                        service: *key,
                        key: *dk,
                        spec: *ds,
                        replaces: None,
                    }));
            }
            Side::Observed(key, o) => deleted.push((*key, o)),
        });

        let replaced = pair_services(desired, &added, &deleted);
        for (old, (new_idx, _)) in &replaced {
            if let Some(Op::AddService { replaces, .. }) = self.phases.services.get_mut(*new_idx) {
                *replaces = Some(*old);
            }
        }
        for (key, o) in deleted {
            let reason = match replaced.get(&key) {
                Some((idx, field)) => match self.phases.services.get(*idx) {
                    Some(Op::AddService { key: by, .. }) => Reason::Replaced {
                        by: by.to_string(),
                        field: field.clone(),
                    },
                    _ => Reason::NotInManifest,
                },
                None => Reason::NotInManifest,
            };
            self.phases.delete_services.push(Op::DeleteService {
                key,
                spec: Box::new(o.spec.clone()),
                reason: Box::new(reason),
            });
        }
    }

    /// Real servers of a service present on both sides.
    fn dests(
        &mut self,
        service: &ServiceKey,
        desired: &BTreeMap<DestKey, DestSpec>,
        observed: &BTreeMap<DestKey, DestSpec>,
    ) {
        let first_add = self.phases.add_dests.len();
        let mut deleted: Vec<(&DestKey, &DestSpec)> = Vec::new();
        merge_walk(desired, observed, |side| match side {
            Side::Both(key, d, o) => {
                if d != o {
                    self.phases
                        .update_dests
                        .push(update_dest(*service, *key, o, d));
                }
            }
            Side::Desired(key, d) => self.phases.add_dests.push(Op::AddDest {
                service: *service,
                key: *key,
                spec: *d,
                replaces: None,
            }),
            Side::Observed(key, o) => deleted.push((key, o)),
        });
        if deleted.is_empty() {
            return;
        }

        // A real server whose port alone changed, with no other candidate on that address, is
        // shown as a replacement.
        let mut by_addr: BTreeMap<IpAddr, (Vec<usize>, Vec<DestKey>)> = BTreeMap::new();
        for (i, op) in self.phases.add_dests[first_add..].iter().enumerate() {
            if let Op::AddDest { key, .. } = op {
                by_addr.entry(key.addr).or_default().0.push(first_add + i);
            }
        }
        for (key, _) in &deleted {
            if let Some(entry) = by_addr.get_mut(&key.addr) {
                entry.1.push(**key);
            }
        }
        let mut replaced_by: BTreeMap<DestKey, DestKey> = BTreeMap::new();
        for (adds, dels) in by_addr.values() {
            if let ([idx], [old]) = (adds.as_slice(), dels.as_slice())
                && let Some(Op::AddDest { key, replaces, .. }) = self.phases.add_dests.get_mut(*idx)
            {
                *replaces = Some(*old);
                replaced_by.insert(*old, *key);
            }
        }

        for (key, spec) in deleted {
            if let Some(active) = self.drain.as_ref().and_then(|d| d.active(service, key)) {
                if spec.weight != 0 {
                    self.phases.update_dests.push(Op::DrainDest {
                        service: *service,
                        key: *key,
                        before: *spec,
                        active_conns: active,
                    });
                }
                continue;
            }
            let reason = match replaced_by.get(key) {
                Some(by) => Reason::Replaced {
                    by: by.to_string(),
                    field: "port".to_owned(),
                },
                None => Reason::NotInManifest,
            };
            self.phases.delete_dests.push(Op::DeleteDest {
                service: *service,
                key: *key,
                spec: *spec,
                reason: Box::new(reason),
            });
        }
    }

    fn marks(
        &mut self,
        desired: &BTreeMap<Family, MarkChain>,
        observed: &BTreeMap<Family, MarkChain>,
    ) {
        merge_walk(desired, observed, |side| match side {
            Side::Desired(family, d) => self.phases.mark_write.push(Op::WriteMarkChain {
                family: *family,
                rules: d.rules.clone(),
                added: d.rules.clone(),
                removed: Vec::new(),
            }),
            Side::Observed(family, o) => self.phases.mark_write.push(Op::RemoveMarkChain {
                family: *family,
                removed: o.rules.clone(),
            }),
            Side::Both(family, d, o) => self.mark_chain(*family, d, o),
        });
    }

    /// A family with a chain on both sides. A desired chain is always hooked (the write adds
    /// the jumps), so `d.hooked` is not read.
    fn mark_chain(&mut self, family: Family, d: &MarkChain, o: &MarkChain) {
        if o.hooked && o.rules == d.rules {
            return;
        }
        // Early removal only for traffic the desired chain stops marking altogether. A rule that
        // is merely rewritten (ports added, mark or comment changed) stays until the full write
        // swaps it atomically, so its traffic is never left unmarked in between.
        let still_marked: BTreeSet<(IpAddr, Protocol, u16)> =
            d.rules.iter().flat_map(MarkRule::traffic).collect();
        let (gone, kept): (Vec<&MarkRule>, Vec<&MarkRule>) = o
            .rules
            .iter()
            .partition(|r| !r.traffic().any(|t| still_marked.contains(&t)));

        let (current, hooked): (Cow<'_, [MarkRule]>, bool) = if gone.is_empty() {
            (Cow::Borrowed(&o.rules), o.hooked)
        } else {
            let kept: Vec<MarkRule> = kept.into_iter().cloned().collect();
            self.phases.mark_pre.push(Op::WriteMarkChain {
                family,
                rules: kept.clone(),
                added: Vec::new(),
                removed: gone.into_iter().cloned().collect(),
            });
            (Cow::Owned(kept), true)
        };

        if *current == *d.rules && hooked {
            return;
        }
        let want: BTreeSet<&MarkRule> = d.rules.iter().collect();
        let have: BTreeSet<&MarkRule> = current.iter().collect();
        self.phases.mark_write.push(Op::WriteMarkChain {
            family,
            rules: d.rules.clone(),
            added: d
                .rules
                .iter()
                .filter(|r| !have.contains(r))
                .cloned()
                .collect(),
            removed: current
                .iter()
                .filter(|r| !want.contains(r))
                .cloned()
                .collect(),
        });
    }
}

/// The phases one after the other. The largest phase (the real servers of a new table: 100,000
/// ops) becomes the plan itself, the others are moved in around it, so the plan never needs a
/// second buffer of its size next to the first.
fn concat(mut phases: Vec<Vec<Op>>) -> Vec<Op> {
    let total: usize = phases.iter().map(Vec::len).sum();
    let Some(big) = (0..phases.len()).max_by_key(|&i| phases[i].len()) else {
        return Vec::new();
    };
    let mut ops = std::mem::take(&mut phases[big]);
    ops.reserve_exact(total - ops.len());
    let mut head = Vec::with_capacity(phases[..big].iter().map(Vec::len).sum());
    for phase in &mut phases[..big] {
        head.append(phase);
    }
    ops.splice(0..0, head);
    for phase in &mut phases[big + 1..] {
        ops.append(phase);
    }
    ops.shrink_to_fit();
    ops
}

// The two update ops are built out of line (cold): they are rare next to the compare that finds
// them, and this keeps their boxing out of the walk over unchanged services and real servers.
#[cold]
fn update_service(key: ServiceKey, before: &ServiceSpec, after: &ServiceSpec) -> Op {
    Op::UpdateService {
        key,
        before: Box::new(before.clone()),
        after: Box::new(after.clone()),
        changes: service_changes(key.family(), before, after),
    }
}

#[cold]
fn update_dest(service: ServiceKey, key: DestKey, before: &DestSpec, after: &DestSpec) -> Op {
    Op::UpdateDest {
        service,
        key,
        before: Box::new(*before),
        after: Box::new(*after),
        changes: dest_changes(before, after),
    }
}

fn delete_vip(interface: &str, addr: IpAddr) -> Op {
    Op::DeleteVip {
        interface: interface.to_owned(),
        addr,
        reason: Box::new(Reason::NotInManifest),
    }
}

/// Pairs deleted and added services whose identity alone changed, keyed by the deleted service:
/// (index of the AddService in the services phase, the changed field).
///
/// Inet services pair when they are the only deleted and the only added service on one VIP
/// (protocol or port changed); those left over pair when they are the only deleted and the only
/// added one with a given protocol, port and set of real servers (VIP changed). Fwmark services
/// pair when they are the only deleted and the only added fwmark service of one family with a
/// given set of real servers (mark changed).
fn pair_services(
    desired: &BTreeMap<ServiceKey, Service>,
    added: &[(ServiceKey, usize)],
    deleted: &[(ServiceKey, &Service)],
) -> BTreeMap<ServiceKey, (usize, String)> {
    let mut out = BTreeMap::new();
    if added.is_empty() || deleted.is_empty() {
        return out;
    }
    type Group = (Vec<(ServiceKey, usize)>, Vec<ServiceKey>);
    // On one VIP: the added (with their index) and the deleted (with their real servers).
    type VipGroup<'a> = (Vec<(ServiceKey, usize)>, Vec<(ServiceKey, &'a Service)>);
    let mut inet: BTreeMap<IpAddr, VipGroup> = BTreeMap::new();
    let mut fwmark: BTreeMap<(Family, Vec<DestKey>), Group> = BTreeMap::new();
    let dest_keys = |s: &Service| s.dests.keys().copied().collect::<Vec<_>>();
    let desired_dests = |key: &ServiceKey| desired.get(key).map(dest_keys).unwrap_or_default();
    for (key, idx) in added {
        match key {
            ServiceKey::Inet { vip, .. } => inet.entry(*vip).or_default().0.push((*key, *idx)),
            ServiceKey::Fwmark { family, .. } => fwmark
                .entry((*family, desired_dests(key)))
                .or_default()
                .0
                .push((*key, *idx)),
        }
    }
    for (key, svc) in deleted {
        match key {
            ServiceKey::Inet { vip, .. } => inet.entry(*vip).or_default().1.push((*key, svc)),
            ServiceKey::Fwmark { family, .. } => fwmark
                .entry((*family, dest_keys(svc)))
                .or_default()
                .1
                .push(*key),
        }
    }
    // Inet services left unpaired on their VIP, for the second pass.
    let mut moved: BTreeMap<(Protocol, u16, Family, Vec<DestKey>), Group> = BTreeMap::new();
    for (adds, dels) in inet.values() {
        if let ([(new, idx)], [(old, _)]) = (adds.as_slice(), dels.as_slice()) {
            out.insert(*old, (*idx, identity_change(new, old).to_owned()));
            continue;
        }
        for (key, idx) in adds {
            if let ServiceKey::Inet { protocol, port, .. } = key {
                moved
                    .entry((*protocol, *port, key.family(), desired_dests(key)))
                    .or_default()
                    .0
                    .push((*key, *idx));
            }
        }
        for (key, svc) in dels {
            if let ServiceKey::Inet { protocol, port, .. } = key {
                moved
                    .entry((*protocol, *port, key.family(), dest_keys(svc)))
                    .or_default()
                    .1
                    .push(*key);
            }
        }
    }
    for (adds, dels) in moved.values().chain(fwmark.values()) {
        if let ([(new, idx)], [old]) = (adds.as_slice(), dels.as_slice()) {
            out.insert(*old, (*idx, identity_change(new, old).to_owned()));
        }
    }
    out
}

/// The part of a service's identity that differs between two paired keys.
fn identity_change(new: &ServiceKey, old: &ServiceKey) -> &'static str {
    match (new, old) {
        (
            ServiceKey::Inet {
                protocol: np,
                vip: nvip,
                port: nport,
            },
            ServiceKey::Inet {
                protocol: op,
                vip: ovip,
                port: oport,
            },
        ) => match (nvip != ovip, np != op, nport != oport) {
            (true, _, _) => "VIP",
            (false, true, true) => "protocol and port",
            (false, true, false) => "protocol",
            _ => "port",
        },
        _ => "fwmark",
    }
}

fn change(field: &str, before: String, after: String) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        before,
        after,
    }
}

/// The fields of an in-place service edit, in a fixed order.
pub(crate) fn service_changes(
    family: Family,
    before: &ServiceSpec,
    after: &ServiceSpec,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if before.scheduler != after.scheduler {
        out.push(change(
            "scheduler",
            before.scheduler.to_string(),
            after.scheduler.to_string(),
        ));
    }
    if before.flags != after.flags {
        out.push(change("flags", flag_names(before), flag_names(after)));
    }
    let timeout = |p: Option<Persistence>| match p {
        Some(p) => format!("{}s", p.timeout),
        None => "off".to_owned(),
    };
    if before.persistence.map(|p| p.timeout) != after.persistence.map(|p| p.timeout) {
        out.push(change(
            "persistence",
            timeout(before.persistence),
            timeout(after.persistence),
        ));
    }
    // The netmask is shown when it differs between two persistent specs, or when persistence is
    // switched on or off with a netmask that is not the single-address default.
    let full = family.max_prefix();
    let show_mask = match (before.persistence, after.persistence) {
        (Some(b), Some(a)) => b.netmask != a.netmask,
        (Some(p), None) | (None, Some(p)) => p.netmask != full,
        (None, None) => false,
    };
    if show_mask {
        let mask = |p: Option<Persistence>| match p {
            Some(p) => netmask(family, p.netmask),
            None => "-".to_owned(),
        };
        out.push(change(
            "netmask",
            mask(before.persistence),
            mask(after.persistence),
        ));
    }
    if before.pe_name != after.pe_name {
        let pe = |p: &Option<String>| p.clone().unwrap_or_else(|| "none".to_owned());
        out.push(change("pe", pe(&before.pe_name), pe(&after.pe_name)));
    }
    out
}

/// `sh-fallback,sh-port`, or `none`.
pub(crate) fn flag_names(spec: &ServiceSpec) -> String {
    let names = spec.flags.names(&spec.scheduler);
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// A persistence netmask as operators write it: dotted for IPv4, a prefix length for IPv6.
pub(crate) fn netmask(family: Family, prefix: u8) -> String {
    match family {
        Family::Inet => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            std::net::Ipv4Addr::from(bits).to_string()
        }
        Family::Inet6 => format!("/{prefix}"),
    }
}

/// The fields of an in-place real-server edit, in a fixed order.
pub(crate) fn dest_changes(before: &DestSpec, after: &DestSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if before.forward != after.forward {
        out.push(change(
            "forward",
            before.forward.to_string(),
            after.forward.to_string(),
        ));
    }
    for (field, b, a) in [
        ("weight", before.weight, after.weight),
        (
            "upper_threshold",
            before.upper_threshold,
            after.upper_threshold,
        ),
        (
            "lower_threshold",
            before.lower_threshold,
            after.lower_threshold,
        ),
    ] {
        if b != a {
            out.push(change(field, b.to_string(), a.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(i: u32) -> Op {
        Op::AddVip {
            interface: "lvs0".to_owned(),
            addr: IpAddr::from(std::net::Ipv4Addr::from(i)),
        }
    }

    #[test]
    fn concat_keeps_phase_order_whichever_phase_is_largest() {
        for sizes in [
            vec![],
            vec![0, 0],
            vec![3, 1, 0, 2],
            vec![1, 5, 2],
            vec![0, 2, 9],
        ] {
            let mut n = 0;
            let phases: Vec<Vec<Op>> = sizes
                .iter()
                .map(|&len| {
                    (0..len)
                        .map(|_| {
                            n += 1;
                            vip(n)
                        })
                        .collect()
                })
                .collect();
            let ops = concat(phases);
            let want: Vec<Op> = (1..=n).map(vip).collect();
            assert_eq!(ops, want, "{sizes:?}");
            assert_eq!(ops.capacity(), ops.len());
        }
    }
}
