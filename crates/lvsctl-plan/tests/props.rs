//! Properties of the planner over generated states, checked against the fake kernel:
//! convergence, idempotence, minimality, no stray keys, ordering and determinism.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, MarkChain, MarkRule, Observed, Persistence,
    Protocol, Scheduler, Service, ServiceFlags, ServiceKey, ServiceSpec, State, TunnelFlags,
    TunnelType, VipState,
};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, Op, Plan, PlanOptions, plan, plan_with, render_json};
use proptest::prelude::*;

// Small pools, so that desired and observed states share keys often.
const V4_VIPS: &[&str] = &["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const V6_VIPS: &[&str] = &["2001:db8::1", "2001:db8::2"];
const V4_RS: &[&str] = &["10.1.0.1", "10.1.0.2", "10.1.0.3"];
const V6_RS: &[&str] = &["2001:db8:1::1", "2001:db8:1::2"];
const PORTS: &[u16] = &[0, 22, 80, 443];
const RULE_PORTS: &[u16] = &[22, 80, 443, 8080];
const NAMES: &[&str] = &["web", "ssh", "dns"];
const IFACE: &str = "lvs0";
/// A former VIP interface, still holding addresses lvsctl added.
const OLD_IFACE: &str = "lvs9";

fn pick<T: Copy>(pool: &[T], i: usize) -> T {
    pool[i % pool.len()]
}

fn addr(family: Family, pool4: &[&str], pool6: &[&str], i: usize) -> IpAddr {
    match family {
        Family::Inet => pick(pool4, i).parse().unwrap(),
        Family::Inet6 => pick(pool6, i).parse().unwrap(),
    }
}

fn other(family: Family) -> Family {
    match family {
        Family::Inet => Family::Inet6,
        Family::Inet6 => Family::Inet,
    }
}

fn arb_family() -> impl Strategy<Value = Family> {
    prop_oneof![3 => Just(Family::Inet), 1 => Just(Family::Inet6)]
}

fn arb_protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ]
}

fn arb_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        3 => (arb_protocol(), arb_family(), 0usize..8, 0usize..8).prop_map(|(protocol, f, v, p)| {
            ServiceKey::Inet {
                protocol,
                vip: addr(f, V4_VIPS, V6_VIPS, v),
                port: pick(PORTS, p),
            }
        }),
        1 => (1u32..=3, arb_family()).prop_map(|(m, family)| ServiceKey::Fwmark {
            mark: Fwmark::new(m).unwrap(),
            family,
        }),
    ]
}

/// A scheduler; observed states may also hold one lvsctl does not know.
fn arb_scheduler(observed: bool) -> BoxedStrategy<Scheduler> {
    let known = (0usize..Scheduler::KNOWN.len() + 1).prop_map(|i| {
        Scheduler::KNOWN
            .get(i)
            .and_then(|n| Scheduler::known(n))
            .unwrap_or(Scheduler::None)
    });
    if observed {
        prop_oneof![9 => known, 1 => Just(Scheduler::Other("foo".to_owned()))].boxed()
    } else {
        known.boxed()
    }
}

/// A spec whose netmask is made valid for the service's family by [`fit_spec`].
fn arb_spec(observed: bool) -> impl Strategy<Value = ServiceSpec> {
    (
        arb_scheduler(observed),
        any::<[bool; 4]>(),
        prop::option::of((prop::sample::select(vec![60u32, 120, 300]), 1u8..=128)),
        prop::option::weighted(0.1, Just("sip".to_owned())),
    )
        .prop_map(|(scheduler, f, persistence, pe_name)| ServiceSpec {
            scheduler,
            flags: ServiceFlags {
                one_packet: f[0],
                sched1: f[1],
                sched2: f[2],
                sched3: f[3],
            },
            persistence: persistence.map(|(timeout, netmask)| Persistence { timeout, netmask }),
            pe_name,
        })
}

fn fit_spec(mut spec: ServiceSpec, family: Family) -> ServiceSpec {
    if let Some(p) = spec.persistence.as_mut() {
        p.netmask = 1 + (p.netmask - 1) % family.max_prefix();
    }
    spec
}

fn arb_tunnel() -> impl Strategy<Value = Forward> {
    (
        prop_oneof![
            Just(TunnelType::Ipip),
            (1u16..=2).prop_map(|p| TunnelType::Gue { port: 6079 + p }),
            Just(TunnelType::Gre),
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(tunnel, csum, remcsum)| Forward::Tunnel {
            tunnel,
            flags: TunnelFlags { csum, remcsum },
        })
}

fn arb_forward(observed: bool) -> BoxedStrategy<Forward> {
    if observed {
        prop_oneof![
            4 => Just(Forward::Dr),
            2 => Just(Forward::Nat),
            2 => arb_tunnel(),
            1 => Just(Forward::Local),
        ]
        .boxed()
    } else {
        prop_oneof![4 => Just(Forward::Dr), 2 => Just(Forward::Nat), 2 => arb_tunnel()].boxed()
    }
}

/// A real server spec, plus a tunnel to use when the real server's family differs from the
/// service's.
#[derive(Debug, Clone)]
struct RawDest {
    cross: bool,
    addr: usize,
    port: usize,
    spec: DestSpec,
    tunnel: Forward,
}

fn arb_dest_spec(observed: bool) -> impl Strategy<Value = DestSpec> {
    (
        arb_forward(observed),
        0u32..4,
        prop::sample::select(vec![0u32, 10, 100]),
        0u32..=100,
    )
        .prop_map(|(forward, weight, upper, lower)| DestSpec {
            forward,
            weight,
            upper_threshold: upper,
            // The kernel refuses lower > upper (ERANGE).
            lower_threshold: lower.min(upper),
        })
}

fn arb_raw_dest(observed: bool) -> impl Strategy<Value = RawDest> {
    (
        prop::bool::weighted(0.15),
        0usize..3,
        0usize..4,
        arb_dest_spec(observed),
        arb_tunnel(),
    )
        .prop_map(|(cross, addr, port, spec, tunnel)| RawDest {
            cross,
            addr,
            port,
            spec,
            tunnel,
        })
}

fn build_dest(service: &ServiceKey, raw: &RawDest) -> (DestKey, DestSpec) {
    let family = if raw.cross {
        other(service.family())
    } else {
        service.family()
    };
    let mut spec = raw.spec;
    if raw.cross {
        // Only tunnel real servers may differ in family from their service.
        spec.forward = raw.tunnel;
    }
    let key = DestKey {
        addr: addr(family, V4_RS, V6_RS, raw.addr),
        port: pick(PORTS, raw.port),
    };
    (key, spec)
}

fn arb_service(observed: bool) -> impl Strategy<Value = (ServiceKey, Service)> {
    (
        arb_key(),
        arb_spec(observed),
        prop::collection::vec(arb_raw_dest(observed), 0..5),
    )
        .prop_map(|(key, spec, dests)| {
            let service = Service {
                spec: fit_spec(spec, key.family()),
                dests: dests.iter().map(|d| build_dest(&key, d)).collect(),
            };
            (key, service)
        })
}

fn arb_rule() -> impl Strategy<Value = (usize, Protocol, BTreeSet<usize>, u32, usize)> {
    (
        0usize..3,
        arb_protocol(),
        prop::collection::btree_set(0usize..4, 1..=3),
        1u32..=3,
        0usize..3,
    )
}

fn build_rule(family: Family, raw: &(usize, Protocol, BTreeSet<usize>, u32, usize)) -> MarkRule {
    let (vip, protocol, ports, mark, name) = raw;
    MarkRule {
        vip: addr(family, V4_VIPS, V6_VIPS, *vip),
        protocol: *protocol,
        ports: ports.iter().map(|p| pick(RULE_PORTS, *p)).collect(),
        mark: Fwmark::new(*mark).unwrap(),
        service: pick(NAMES, *name).to_owned(),
    }
}

fn arb_chain(observed: bool) -> impl Strategy<Value = Option<MarkChain>> {
    prop::option::of((any::<bool>(), prop::collection::vec(arb_rule(), 0..4))).prop_map(move |c| {
        c.map(|(hooked, rules)| MarkChain {
            // A desired chain is always hooked; an observed one may have lost its jumps.
            hooked: hooked || !observed,
            rules: rules.iter().map(|r| build_rule(Family::Inet, r)).collect(),
        })
    })
}

fn place_chain(family: Family, chain: MarkChain, observed: bool) -> MarkChain {
    let mut rules: Vec<MarkRule> = chain
        .rules
        .into_iter()
        .map(|mut r| {
            if family == Family::Inet6 {
                let i = V4_VIPS
                    .iter()
                    .position(|v| v.parse::<IpAddr>().unwrap() == r.vip)
                    .unwrap_or(0);
                r.vip = addr(Family::Inet6, V4_VIPS, V6_VIPS, i);
            }
            r
        })
        .collect();
    if !observed {
        // Desired chains are sorted and hold each rule once.
        rules.sort();
        rules.dedup();
    }
    MarkChain {
        hooked: chain.hooked,
        rules,
    }
}

fn all_vips() -> Vec<IpAddr> {
    V4_VIPS
        .iter()
        .chain(V6_VIPS)
        .map(|a| a.parse().unwrap())
        .collect()
}

fn arb_vips(observed: bool) -> impl Strategy<Value = Option<VipState>> {
    let n = all_vips().len();
    prop::option::weighted(
        0.85,
        (
            prop::collection::btree_set(0..n, 0..=n),
            prop::collection::btree_set(0..n, 0..=2),
            prop::collection::btree_set(0..n, 0..=3),
        ),
    )
    .prop_map(move |v| {
        v.map(|(owned, foreign, elsewhere)| {
            let pool = all_vips();
            let foreign: BTreeSet<IpAddr> = if observed {
                foreign.iter().map(|i| pool[*i]).collect()
            } else {
                BTreeSet::new()
            };
            // lvsctl's addresses left on a former VIP interface (the same address may be on
            // both, as during a move).
            let elsewhere: BTreeSet<IpAddr> = elsewhere.iter().map(|i| pool[*i]).collect();
            let elsewhere = if observed && !elsewhere.is_empty() {
                BTreeMap::from([(OLD_IFACE.to_owned(), elsewhere)])
            } else {
                BTreeMap::new()
            };
            VipState {
                interface: IFACE.to_owned(),
                owned: owned
                    .iter()
                    .map(|i| pool[*i])
                    .filter(|a| !foreign.contains(a))
                    .collect(),
                foreign,
                elsewhere,
            }
        })
    })
}

fn arb_state(observed: bool) -> impl Strategy<Value = State> {
    (
        prop::collection::vec(arb_service(observed), 0..7),
        arb_chain(observed),
        arb_chain(observed),
        arb_vips(observed),
    )
        .prop_map(move |(services, c4, c6, vips)| {
            let mut marks = BTreeMap::new();
            if let Some(c) = c4 {
                marks.insert(Family::Inet, place_chain(Family::Inet, c, observed));
            }
            if let Some(c) = c6 {
                marks.insert(Family::Inet6, place_chain(Family::Inet6, c, observed));
            }
            State {
                services: services.into_iter().collect(),
                marks,
                vips,
            }
        })
}

fn arb_desired() -> impl Strategy<Value = State> {
    arb_state(false)
}

/// An observed state near `desired`: some of its services kept as they are, some dropped, plus
/// services of an unrelated state, and the unrelated state's chains or VIPs half of the time.
fn arb_near_pair() -> impl Strategy<Value = (State, State)> {
    (
        arb_desired(),
        arb_state(true),
        prop::collection::vec(any::<bool>(), 8),
        any::<[bool; 2]>(),
    )
        .prop_map(|(desired, unrelated, keep, swap)| {
            let mut observed = desired.clone();
            let keys: Vec<ServiceKey> = observed.services.keys().copied().collect();
            for (i, k) in keys.iter().enumerate() {
                if !keep[i % keep.len()] {
                    observed.services.remove(k);
                }
            }
            for (k, s) in unrelated.services {
                observed.services.entry(k).or_insert(s);
            }
            if swap[0] {
                observed.marks = unrelated.marks;
            }
            if swap[1] {
                observed.vips = unrelated.vips;
            }
            (desired, observed)
        })
}

/// Any pair: unrelated states, or near ones.
fn arb_pair() -> impl Strategy<Value = (State, State)> {
    prop_oneof![(arb_desired(), arb_state(true)), arb_near_pair()]
}

/// Two states with the same services and real servers, every spec possibly different.
fn arb_same_keys() -> impl Strategy<Value = (State, State)> {
    (
        arb_desired(),
        prop::collection::vec((any::<bool>(), arb_spec(true)), 1..8),
        prop::collection::vec((any::<bool>(), arb_dest_spec(true), arb_tunnel()), 1..16),
    )
        .prop_map(|(desired, specs, dests)| {
            let mut observed = desired.clone();
            let mut d = 0;
            for (i, (key, svc)) in observed.services.iter_mut().enumerate() {
                let (change, spec) = &specs[i % specs.len()];
                if *change {
                    svc.spec = fit_spec(spec.clone(), key.family());
                }
                for (dk, ds) in svc.dests.iter_mut() {
                    let (change, spec, tunnel) = &dests[d % dests.len()];
                    d += 1;
                    if *change {
                        *ds = *spec;
                        if Family::of(&dk.addr) != key.family() {
                            ds.forward = *tunnel;
                        }
                    }
                }
            }
            (desired, observed)
        })
}

/// What the director must look like after applying `plan(desired, observed)`: the desired state,
/// except that VIPs someone else added stay, are never counted as lvsctl's, and an unmanaged
/// VIP interface is left alone.
fn expected_after(desired: &State, observed: &State) -> State {
    let mut want = desired.clone();
    want.vips = match (&desired.vips, &observed.vips) {
        (None, o) => o.clone(),
        (Some(d), Some(o)) if o.interface == d.interface => Some(VipState {
            interface: d.interface.clone(),
            owned: d.owned.difference(&o.foreign).copied().collect(),
            foreign: o.foreign.clone(),
            elsewhere: BTreeMap::new(),
        }),
        (Some(d), _) => Some(d.clone()),
    };
    normalise(want)
}

/// An interface with no addresses is the same as no interface.
fn normalise(mut s: State) -> State {
    if s.vips
        .as_ref()
        .is_some_and(|v| v.owned.is_empty() && v.foreign.is_empty() && v.elsewhere.is_empty())
    {
        s.vips = None;
    }
    s
}

/// Applies `plan(desired, observed)` to a fake kernel in `observed`; returns the plan and what
/// the kernel holds afterwards.
fn apply(desired: &State, observed: &State) -> (Plan, State) {
    let p = plan(desired, observed);
    let mut kernel = FakeKernel::from_state(observed.clone());
    if let Err((i, e)) = kernel.apply(&p) {
        panic!("op {i} ({}) failed: {e}\nplan: {:#?}", p.ops[i], p.ops);
    }
    let after = kernel.observe().unwrap().state;
    (p, after)
}

fn op_service(op: &Op) -> Option<ServiceKey> {
    match op {
        Op::AddService { key, .. }
        | Op::UpdateService { key, .. }
        | Op::DeleteService { key, .. } => Some(*key),
        Op::AddDest { service, .. }
        | Op::UpdateDest { service, .. }
        | Op::DrainDest { service, .. }
        | Op::DeleteDest { service, .. } => Some(*service),
        _ => None,
    }
}

fn position(p: &Plan, f: impl Fn(&Op) -> bool) -> Option<usize> {
    p.ops.iter().position(f)
}

fn fwmark_of(rule: &MarkRule) -> ServiceKey {
    ServiceKey::Fwmark {
        mark: rule.mark,
        family: rule.family(),
    }
}

fn check_order(p: &Plan) -> Result<(), TestCaseError> {
    for (i, op) in p.ops.iter().enumerate() {
        match op {
            Op::AddDest { service, .. } | Op::UpdateDest { service, .. } => {
                if let Some(j) = position(
                    p,
                    |o| matches!(o, Op::AddService { key, .. } if key == service),
                ) {
                    prop_assert!(j < i, "dest op {i} before AddService {j} of {service}");
                }
            }
            Op::WriteMarkChain { added, removed, .. } => {
                for rule in added {
                    let svc = fwmark_of(rule);
                    if let Some(j) = position(
                        p,
                        |o| matches!(o, Op::AddService { key, .. } if *key == svc),
                    ) {
                        prop_assert!(j < i, "rule {rule} (op {i}) before AddService {j}");
                    }
                }
                for rule in removed {
                    let svc = fwmark_of(rule);
                    if let Some(j) = position(
                        p,
                        |o| matches!(o, Op::DeleteService { key, .. } if *key == svc),
                    ) {
                        prop_assert!(
                            i < j,
                            "rule {rule} removed (op {i}) after DeleteService {j}"
                        );
                    }
                }
            }
            Op::RemoveMarkChain { removed, .. } => {
                for rule in removed {
                    let svc = fwmark_of(rule);
                    if let Some(j) = position(
                        p,
                        |o| matches!(o, Op::DeleteService { key, .. } if *key == svc),
                    ) {
                        prop_assert!(i < j, "chain removed (op {i}) after DeleteService {j}");
                    }
                }
            }
            Op::DeleteService { key, .. } => {
                // Nothing touches a service after it is gone.
                prop_assert!(
                    p.ops[i + 1..].iter().all(|o| op_service(o) != Some(*key)),
                    "op on {key} after its DeleteService"
                );
            }
            _ => {}
        }
    }
    // VIPs first and last; new real servers before old ones go.
    let last_add_vip = p.ops.iter().rposition(|o| matches!(o, Op::AddVip { .. }));
    let first_other = p.ops.iter().position(|o| !matches!(o, Op::AddVip { .. }));
    if let (Some(a), Some(b)) = (last_add_vip, first_other) {
        prop_assert!(a < b, "AddVip after another op");
    }
    let first_del_vip = p.ops.iter().position(|o| matches!(o, Op::DeleteVip { .. }));
    if let Some(a) = first_del_vip {
        prop_assert!(
            p.ops[a..].iter().all(|o| matches!(o, Op::DeleteVip { .. })),
            "an op after DeleteVip"
        );
    }
    let last_add_dest = p.ops.iter().rposition(|o| matches!(o, Op::AddDest { .. }));
    let first_del_dest = p
        .ops
        .iter()
        .position(|o| matches!(o, Op::DeleteDest { .. }));
    if let (Some(a), Some(d)) = (last_add_dest, first_del_dest) {
        prop_assert!(a < d, "DeleteDest {d} before AddDest {a}");
    }
    Ok(())
}

fn check_keys(p: &Plan, d: &State, o: &State) -> Result<(), TestCaseError> {
    let services: BTreeSet<ServiceKey> = d
        .services
        .keys()
        .chain(o.services.keys())
        .copied()
        .collect();
    let dests: BTreeSet<(ServiceKey, DestKey)> = [d, o]
        .iter()
        .flat_map(|s| {
            s.services
                .iter()
                .flat_map(|(k, svc)| svc.dests.keys().map(move |dk| (*k, *dk)))
        })
        .collect();
    let vips: BTreeSet<IpAddr> = [d, o]
        .iter()
        .filter_map(|s| s.vips.as_ref())
        .flat_map(|v| v.owned.iter().copied())
        .collect();
    let foreign: BTreeSet<IpAddr> = o
        .vips
        .as_ref()
        .map(|v| v.foreign.clone())
        .unwrap_or_default();
    let families: BTreeSet<Family> = d.marks.keys().chain(o.marks.keys()).copied().collect();
    for op in &p.ops {
        if let Some(k) = op_service(op) {
            prop_assert!(services.contains(&k), "{op} touches unknown service");
        }
        match op {
            Op::AddDest { service, key, .. }
            | Op::UpdateDest { service, key, .. }
            | Op::DrainDest { service, key, .. }
            | Op::DeleteDest { service, key, .. } => {
                prop_assert!(
                    dests.contains(&(*service, *key)),
                    "{op} touches unknown dest"
                );
            }
            Op::AddVip { addr, .. } => {
                prop_assert!(vips.contains(addr) && !foreign.contains(addr), "{op}");
            }
            Op::DeleteVip {
                interface, addr, ..
            } => {
                // Only an address lvsctl added, on the interface it is on.
                let ours = o.vips.as_ref().is_some_and(|v| {
                    (v.interface == *interface && v.owned.contains(addr))
                        || v.elsewhere.get(interface).is_some_and(|a| a.contains(addr))
                });
                prop_assert!(ours, "{op}");
            }
            Op::WriteMarkChain { family, .. } | Op::RemoveMarkChain { family, .. } => {
                prop_assert!(families.contains(family), "{op} touches unknown family");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Minimality, op by op: each one changes something that differs between the two sides (a
/// same-key delete and add only as a replacement of something that differs).
fn check_needed(p: &Plan, d: &State, o: &State) -> Result<(), TestCaseError> {
    let added: BTreeSet<ServiceKey> = p
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::AddService { key, .. } => Some(*key),
            _ => None,
        })
        .collect();
    let dest = |s: &State, svc: &ServiceKey, k: &DestKey| {
        s.services.get(svc).and_then(|x| x.dests.get(k)).copied()
    };
    for op in &p.ops {
        match op {
            Op::AddService { key, .. } => prop_assert!(
                o.services.get(key).map(|x| &x.spec) != d.services.get(key).map(|x| &x.spec),
                "{op}: the service is already there as wanted"
            ),
            Op::DeleteService { key, .. } => prop_assert!(
                !d.services.contains_key(key)
                    || (added.contains(key)
                        && d.services.get(key).map(|x| &x.spec)
                            != o.services.get(key).map(|x| &x.spec)),
                "{op}: the service is wanted as it is"
            ),
            Op::UpdateService {
                key, before, after, ..
            } => {
                prop_assert!(before != after, "{op}: changes nothing");
                prop_assert_eq!(Some(&**after), d.services.get(key).map(|x| &x.spec));
            }
            Op::AddDest {
                service, key, spec, ..
            } => prop_assert!(
                added.contains(service) || dest(o, service, key) != Some(*spec),
                "{op}: the real server is already there as wanted"
            ),
            Op::UpdateDest {
                service,
                key,
                before,
                after,
                ..
            } => {
                prop_assert!(before != after, "{op}: changes nothing");
                prop_assert_eq!(Some(**after), dest(d, service, key));
            }
            Op::DeleteDest { service, key, .. } => prop_assert!(
                dest(d, service, key).is_none() || dest(d, service, key) != dest(o, service, key),
                "{op}: the real server is wanted as it is"
            ),
            Op::WriteMarkChain { family, rules, .. } => prop_assert!(
                o.marks
                    .get(family)
                    .is_none_or(|c| !c.hooked || &c.rules != rules),
                "{op}: the chain is already as wanted"
            ),
            Op::RemoveMarkChain { family, .. } => prop_assert!(
                d.marks.get(family).is_none_or(|c| c.rules.is_empty()),
                "{op}: the chain is wanted"
            ),
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// (a) applying the plan converges, and (b) planning again changes nothing.
    #[test]
    fn converges_and_is_idempotent((d, o) in arb_pair()) {
        let (_, after) = apply(&d, &o);
        prop_assert_eq!(normalise(after.clone()), expected_after(&d, &o));
        let again = plan(&d, &after);
        prop_assert!(again.is_empty(), "second plan not empty: {:#?}", again.ops);
    }

    /// (c) the same keys on both sides: only in-place edits (and mark/VIP ops).
    #[test]
    fn same_keys_edit_in_place((d, o) in arb_same_keys()) {
        let (p, after) = apply(&d, &o);
        for op in &p.ops {
            prop_assert!(
                !matches!(op, Op::AddService { .. } | Op::DeleteService { .. }
                    | Op::AddDest { .. } | Op::DeleteDest { .. }),
                "{} in a same-keys plan", op
            );
        }
        prop_assert_eq!(normalise(after), expected_after(&d, &o));
    }

    /// (d) no op touches a key outside desired ∪ observed.
    #[test]
    fn touches_only_known_keys((d, o) in arb_pair()) {
        check_keys(&plan(&d, &o), &d, &o)?;
    }

    /// (c') every op is needed: it changes something that differs.
    #[test]
    fn every_op_changes_something_that_differs((d, o) in arb_near_pair()) {
        check_needed(&plan(&d, &o), &d, &o)?;
    }

    /// (c'') the same, on unrelated states.
    #[test]
    fn every_op_is_needed_on_any_pair((d, o) in arb_pair()) {
        check_needed(&plan(&d, &o), &d, &o)?;
    }

    /// (e) the safe order holds.
    #[test]
    fn ordering_invariants((d, o) in arb_pair()) {
        check_order(&plan(&d, &o))?;
    }

    /// (f) the same inputs give the same plan, and the same JSON bytes.
    #[test]
    fn deterministic((d, o) in arb_pair()) {
        let a = plan(&d, &o);
        let b = plan(&d.clone(), &o.clone());
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(render_json(&a), render_json(&b));
    }

    /// Draining never deletes a real server that still has active connections, and once the
    /// drain time is up the plan converges.
    #[test]
    fn drain_keeps_busy_real_servers(
        (d, o) in arb_pair(),
        busy in prop::collection::vec((any::<bool>(), 1u32..5), 16),
    ) {
        let mut counters = BTreeMap::new();
        let mut all = BTreeSet::new();
        let mut i = 0;
        for (sk, svc) in &o.services {
            for dk in svc.dests.keys() {
                let (on, n) = busy[i % busy.len()];
                i += 1;
                if on {
                    let entry: &mut lvsctl_model::ServiceCounters =
                        counters.entry(*sk).or_default();
                    entry.dests.entry(*dk).or_default().active_conns = n;
                    all.insert((*sk, *dk));
                }
            }
        }
        let observed = Observed { state: o.clone(), counters };
        let opts = PlanOptions { drain: true, drain_expired: BTreeSet::new() };
        let p = plan_with(&d, &observed, &opts);
        for op in &p.ops {
            if let Op::DeleteDest { service, key, .. } = op {
                prop_assert!(!all.contains(&(*service, *key)), "{} deletes a busy real server", op);
            }
        }
        let mut kernel = FakeKernel::new(observed);
        kernel.apply(&p).map_err(|(_, e)| TestCaseError::fail(e.to_string()))?;
        // A second drain pass has nothing left to drain.
        let again = plan_with(&d, &kernel.observe().unwrap(), &opts);
        prop_assert!(
            again.ops.iter().all(|op| !matches!(op, Op::DrainDest { .. })),
            "drained twice: {:#?}", again.ops
        );
        // With every drain expired, the plan converges as without draining.
        let expired = PlanOptions { drain: true, drain_expired: all };
        let last = plan_with(&d, &kernel.observe().unwrap(), &expired);
        kernel.apply(&last).map_err(|(_, e)| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(normalise(kernel.state().clone()), expected_after(&d, &o));
    }
}
