//! Planning a large director: 10,000 services x 10 real servers, unchanged and with 1% of the
//! services edited (weights, schedulers, real servers added and removed, identities replaced).
//! Targets: unchanged < 20 ms, 1% changed < 50 ms. Results are in BENCH.md.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use lvsctl_model::{
    DestKey, DestSpec, Family, Fwmark, MarkChain, MarkRule, Persistence, Protocol, Scheduler,
    Service, ServiceKey, ServiceSpec, State, VipState,
};
use lvsctl_plan::{RenderOpts, plan, render_text, summary};

const SERVICES: u32 = 10_000;
const DESTS: u32 = 10;
/// Every 100th service is a fwmark service fed by a MARK rule.
const FWMARK_EVERY: u32 = 100;

fn vip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

fn key(i: u32) -> ServiceKey {
    if i.is_multiple_of(FWMARK_EVERY) {
        ServiceKey::Fwmark {
            mark: Fwmark::new(i + 1).unwrap(),
            family: Family::Inet,
        }
    } else {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            vip: vip(i),
            port: 80,
        }
    }
}

fn service(i: u32) -> Service {
    let port = if i.is_multiple_of(FWMARK_EVERY) {
        0
    } else {
        80
    };
    Service {
        spec: ServiceSpec {
            scheduler: Scheduler::Wlc,
            persistence: i.is_multiple_of(3).then_some(Persistence {
                timeout: 300,
                netmask: 32,
            }),
            ..ServiceSpec::default()
        },
        dests: (0..DESTS)
            .map(|d| {
                let addr = IpAddr::V4(Ipv4Addr::from(0xac10_0000 + (i % 4096) * 16 + d));
                (DestKey { addr, port }, DestSpec::default())
            })
            .collect(),
    }
}

fn big_state() -> State {
    let services: BTreeMap<ServiceKey, Service> =
        (0..SERVICES).map(|i| (key(i), service(i))).collect();
    let rules = (0..SERVICES)
        .step_by(FWMARK_EVERY as usize)
        .map(|i| MarkRule {
            vip: vip(i),
            protocol: Protocol::Tcp,
            ports: vec![80, 443],
            mark: Fwmark::new(i + 1).unwrap(),
            service: format!("svc-{i}"),
        })
        .collect();
    State {
        services,
        marks: BTreeMap::from([(
            Family::Inet,
            MarkChain {
                hooked: true,
                rules,
            },
        )]),
        vips: Some(VipState {
            interface: "lvs0".to_owned(),
            owned: (0..SERVICES).map(vip).collect(),
            foreign: Default::default(),
            elsewhere: Default::default(),
        }),
    }
}

/// The observed state with 1% of the services (100) differing, in four kinds of edit.
fn one_percent_off(desired: &State) -> State {
    let mut observed = desired.clone();
    for n in 0..SERVICES / 100 {
        // Spread the edits over the table, away from the fwmark services.
        let i = n * 100 + 37;
        let k = key(i);
        match n % 4 {
            0 => {
                let svc = observed.services.get_mut(&k).unwrap();
                for spec in svc.dests.values_mut().take(3) {
                    spec.weight = 5;
                }
            }
            1 => observed.services.get_mut(&k).unwrap().spec.scheduler = Scheduler::Rr,
            2 => {
                let svc = observed.services.get_mut(&k).unwrap();
                // One real server missing (added by the plan), one extra (deleted).
                let first = *svc.dests.keys().next().unwrap();
                svc.dests.remove(&first);
                let extra = DestKey {
                    addr: IpAddr::V4(Ipv4Addr::new(172, 31, 0, n as u8)),
                    port: 80,
                };
                svc.dests.insert(extra, DestSpec::default());
            }
            _ => {
                // The service used to listen on 8080: an identity replacement.
                let svc = observed.services.remove(&k).unwrap();
                let ServiceKey::Inet { protocol, vip, .. } = k else {
                    unreachable!()
                };
                let old = ServiceKey::Inet {
                    protocol,
                    vip,
                    port: 8080,
                };
                observed.services.insert(old, svc);
            }
        }
    }
    observed
}

fn bench(c: &mut Criterion) {
    let desired = big_state();
    let observed = one_percent_off(&desired);

    // Check once what is being measured.
    let changed = plan(&desired, &observed);
    let s = summary(&changed);
    assert!(plan(&desired, &desired).is_empty());
    // Replaced: 25 services + their 250 real servers added, 25 deleted; 25 real servers added
    // and 25 deleted; 25 x 3 weights and 25 schedulers edited.
    assert_eq!(
        (s.add, s.change, s.destroy),
        (25 * 11 + 25, 25 * 3 + 25, 25 + 25)
    );

    let mut g = c.benchmark_group("plan 10000 services x 10 real servers");
    g.bench_function("unchanged", |b| {
        b.iter(|| plan(black_box(&desired), black_box(&desired)))
    });
    g.bench_function("1% changed", |b| {
        b.iter(|| plan(black_box(&desired), black_box(&observed)))
    });
    g.bench_function("1% changed, plan and render text", |b| {
        b.iter(|| {
            let p = plan(black_box(&desired), black_box(&observed));
            render_text(&p, &RenderOpts::default())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
