//! Properties: any valid state survives State -> manifest text -> parse -> desired_state, and
//! no input (random bytes, mangled manifests) makes the parser panic or report an error without
//! a position.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvsctl_model::manifest;
use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, MarkChain, MarkRule, Persistence, Protocol,
    Scheduler, Service, ServiceFlags, ServiceKey, ServiceSpec, State, TunnelFlags, TunnelType,
    VipState,
};
use proptest::prelude::*;

fn vip(family: Family, i: u8) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i % 4)),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            1 + u16::from(i % 3),
        )),
    }
}

fn rip(family: Family, i: u8) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1 + i % 6)),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            0,
            1 + u16::from(i % 6),
        )),
    }
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Inet), Just(Family::Inet6)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ]
}

fn scheduler() -> impl Strategy<Value = Scheduler> {
    (0..Scheduler::KNOWN.len()).prop_map(|i| Scheduler::known(Scheduler::KNOWN[i]).unwrap())
}

fn forward() -> impl Strategy<Value = Forward> {
    prop_oneof![
        Just(Forward::Dr),
        Just(Forward::Nat),
        Just(Forward::Tunnel {
            tunnel: TunnelType::Ipip,
            flags: TunnelFlags::default()
        }),
        any::<bool>().prop_map(|csum| Forward::Tunnel {
            tunnel: TunnelType::Gre,
            flags: TunnelFlags {
                csum,
                remcsum: false
            }
        }),
        (1..=u16::MAX, 0..3u8).prop_map(|(port, f)| Forward::Tunnel {
            tunnel: TunnelType::Gue { port },
            flags: TunnelFlags {
                csum: f == 1,
                remcsum: f == 2
            }
        }),
    ]
}

/// Raw material for one real server; made valid for its service in `build`.
type RawDest = (bool, u8, Forward, u16, u32, u32, u32);

fn raw_dest() -> impl Strategy<Value = RawDest> {
    (
        any::<bool>(),
        any::<u8>(),
        forward(),
        prop_oneof![Just(0u16), Just(80), Just(8080), any::<u16>()],
        0..=65535u32,
        0..=i32::MAX as u32,
        0..=i32::MAX as u32,
    )
}

type RawSpec = (Scheduler, [bool; 3], bool, Option<(u32, u8, bool)>);

fn raw_spec() -> impl Strategy<Value = RawSpec> {
    (
        scheduler(),
        any::<[bool; 3]>(),
        any::<bool>(),
        proptest::option::of((1..=Persistence::MAX_TIMEOUT, any::<u8>(), any::<bool>())),
    )
}

#[derive(Debug, Clone)]
struct RawService {
    key: ServiceKey,
    spec: RawSpec,
    dests: Vec<RawDest>,
    /// fwmark services: (vip index, protocol, ports)
    rules: Vec<(u8, Protocol, BTreeSet<u16>)>,
    name: String,
}

fn raw_service() -> impl Strategy<Value = RawService> {
    let key = prop_oneof![
        (
            protocol(),
            family(),
            any::<u8>(),
            prop_oneof![Just(0u16), Just(22), Just(80), Just(443), any::<u16>()]
        )
            .prop_map(|(protocol, f, i, port)| ServiceKey::Inet {
                protocol,
                vip: vip(f, i),
                port
            }),
        (1..=6u32, family()).prop_map(|(m, family)| ServiceKey::Fwmark {
            mark: Fwmark::new(m).unwrap(),
            family
        }),
        (any::<u32>(), family()).prop_map(|(m, family)| ServiceKey::Fwmark {
            mark: Fwmark::new(m.max(1)).unwrap(),
            family
        }),
    ];
    (
        key,
        raw_spec(),
        proptest::collection::vec(raw_dest(), 0..5),
        proptest::collection::vec(
            (
                any::<u8>(),
                protocol(),
                proptest::collection::btree_set(1..=40u16, 1..=MarkRule::MAX_PORTS),
            ),
            0..3,
        ),
        "[a-z]{1,10}",
    )
        .prop_map(|(key, spec, dests, rules, name)| RawService {
            key,
            spec,
            dests,
            rules,
            name,
        })
}

/// Turns raw material into a state the manifest can express, following every validation rule.
fn build(raws: Vec<RawService>, vip_interface: bool) -> State {
    let mut services: BTreeMap<ServiceKey, Service> = BTreeMap::new();
    let mut names: BTreeMap<ServiceKey, String> = BTreeMap::new();
    for raw in &raws {
        if services.contains_key(&raw.key) {
            continue;
        }
        let fam = raw.key.family();
        let (sched, bits, ops, pers) = raw.spec.clone();
        let is_udp_or_fwmark = match raw.key {
            ServiceKey::Inet { protocol, .. } => protocol == Protocol::Udp,
            ServiceKey::Fwmark { .. } => true,
        };
        let persistence = match (pers, raw.key) {
            (Some((timeout, mask, _)), _) => Some(Persistence {
                timeout,
                netmask: match fam {
                    Family::Inet => mask % 33,
                    Family::Inet6 => 1 + mask % 128,
                },
            }),
            (None, ServiceKey::Inet { port: 0, .. }) => Some(Persistence {
                timeout: 360,
                netmask: fam.max_prefix(),
            }),
            (None, _) => None,
        };
        let pe_name = match (pers, persistence) {
            (Some((_, _, true)), Some(_)) if is_udp_or_fwmark => Some("sip".to_owned()),
            _ => None,
        };
        let spec = ServiceSpec {
            scheduler: sched,
            flags: ServiceFlags {
                one_packet: ops && is_udp_or_fwmark,
                sched1: bits[0],
                sched2: bits[1],
                sched3: bits[2],
            },
            persistence,
            pe_name,
        };
        let mut dests = BTreeMap::new();
        for (other_family, i, fwd, port, weight, a, b) in &raw.dests {
            let tunnel = matches!(fwd, Forward::Tunnel { .. });
            let dfam = if *other_family && tunnel {
                match fam {
                    Family::Inet => Family::Inet6,
                    Family::Inet6 => Family::Inet,
                }
            } else {
                fam
            };
            let port = match raw.key {
                ServiceKey::Inet { port: sp, .. } if !matches!(fwd, Forward::Nat) => sp,
                _ => *port,
            };
            let (upper, lower) = (*a.max(b), *a.min(b));
            dests.insert(
                DestKey {
                    addr: rip(dfam, *i),
                    port,
                },
                DestSpec {
                    forward: *fwd,
                    weight: *weight,
                    upper_threshold: upper,
                    lower_threshold: lower,
                },
            );
        }
        services.insert(raw.key, Service { spec, dests });
        if let ServiceKey::Fwmark { mark, family } = raw.key {
            names.insert(raw.key, format!("svc-{}-{mark}-{family}", raw.name));
        }
    }

    // MARK rules: drop every port another service or rule already takes.
    let mut exact: BTreeSet<(IpAddr, Protocol, u16)> = BTreeSet::new();
    let mut every: BTreeSet<(IpAddr, Protocol)> = BTreeSet::new();
    for key in services.keys() {
        if let ServiceKey::Inet {
            protocol,
            vip,
            port,
        } = *key
        {
            if port == 0 {
                every.insert((vip, protocol));
            } else {
                exact.insert((vip, protocol, port));
            }
        }
    }
    let mut marks: BTreeMap<Family, MarkChain> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for raw in &raws {
        let ServiceKey::Fwmark { mark, family } = raw.key else {
            continue;
        };
        if !seen.insert(raw.key) {
            continue;
        }
        for (i, protocol, ports) in &raw.rules {
            let v = vip(family, *i);
            if every.contains(&(v, *protocol)) {
                continue;
            }
            let ports: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| exact.insert((v, *protocol, *p)))
                .collect();
            if ports.is_empty() {
                continue;
            }
            marks.entry(family).or_default().rules.push(MarkRule {
                vip: v,
                protocol: *protocol,
                ports,
                mark,
                service: names[&raw.key].clone(),
            });
        }
    }
    for chain in marks.values_mut() {
        chain.hooked = true;
        chain.rules.sort();
    }
    // One-packet acts on udp only: a fwmark service whose rules mark no udp loses it. The sip
    // engine drops all but udp: a service whose rules mark anything else loses it. (One
    // without rules keeps both: what feeds it is unknown.)
    for (key, svc) in &mut services {
        let ServiceKey::Fwmark { mark, family } = *key else {
            continue;
        };
        let rules = marks.get(&family).map_or(&[][..], |c| &c.rules[..]);
        let marked: Vec<Protocol> = rules
            .iter()
            .filter(|r| r.mark == mark)
            .map(|r| r.protocol)
            .collect();
        if !marked.is_empty() && !marked.contains(&Protocol::Udp) {
            svc.spec.flags.one_packet = false;
        }
        if marked.iter().any(|p| *p != Protocol::Udp) {
            svc.spec.pe_name = None;
        }
    }

    let vips = vip_interface.then(|| {
        let mut owned = BTreeSet::new();
        for key in services.keys() {
            if let ServiceKey::Inet { vip, .. } = key {
                owned.insert(*vip);
            }
        }
        for chain in marks.values() {
            owned.extend(chain.rules.iter().map(|r| r.vip));
        }
        VipState {
            interface: "lvs0".to_owned(),
            owned,
            foreign: BTreeSet::new(),
            elsewhere: Default::default(),
        }
    });
    State {
        services,
        marks,
        vips,
    }
}

fn valid_state() -> impl Strategy<Value = State> {
    (
        proptest::collection::vec(raw_service(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(raws, vi)| build(raws, vi))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn state_survives_export_and_parse(state in valid_state()) {
        let text = manifest::manifest_from_state(&state);
        let parsed = manifest::parse("exported.yaml", &text);
        prop_assert!(parsed.is_ok(), "{}\n{}", parsed.err().unwrap(), text);
        prop_assert_eq!(parsed.unwrap().desired_state(), state, "{}", text);
        prop_assert!(!text.contains("# skipped"), "{}", text);
    }
}

fn check_diagnostics(name: &str, bytes: &[u8]) {
    if let Err(diags) = manifest::parse(name, bytes) {
        assert!(!diags.is_empty());
        assert!(diags.len() <= manifest::Diagnostics::MAX + 1);
        for d in &diags {
            assert_eq!(d.file, name);
            assert!(d.line >= 1 && d.column >= 1, "{d}");
            assert!(!d.path.is_empty() && !d.message.is_empty(), "{d}");
            assert!(!d.message.contains('\n'), "{d}");
            let shown = d.to_string();
            assert!(
                shown.starts_with(&format!("{name}:{}:{}: {}: ", d.line, d.column, d.path)),
                "{shown}"
            );
        }
    }
}

const SEED: &str = include_str!("../../../manifests/production.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_diagnostics("fuzz.yaml", &bytes);
    }

    #[test]
    fn yamlish_text_never_panics(text in "[-a-z0-9:{}\\[\\],&*!|>'\"#%@ \n\t]{0,300}") {
        check_diagnostics("fuzz.yaml", text.as_bytes());
    }

    /// Mangled copies of the production manifest: deletions, insertions and replacements.
    #[test]
    fn mangled_manifests_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, any::<u8>()), 1..6)
    ) {
        let mut bytes = SEED.as_bytes().to_vec();
        for (at, op, b) in edits {
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            let b = b"-:{}[],&*!|>'\"# \n0123456789abcz._/"[usize::from(b) % 34];
            match op {
                0 if i < bytes.len() => { bytes.remove(i); }
                1 => bytes.insert(i, b),
                _ if i < bytes.len() => bytes[i] = b,
                _ => {}
            }
        }
        check_diagnostics("mangled.yaml", &bytes);
    }
}
