//! The fake kernel answers like the real one and injects faults on request.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lvsctl_model::{DestSpec, Forward, Scheduler, State, TunnelFlags, TunnelType};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, BackendError, Errno, Op, Reason, plan};

fn errno(r: Result<(), BackendError>) -> Errno {
    match r {
        Err(BackendError::Kernel { errno, .. }) => errno,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

fn add_service(key: lvsctl_model::ServiceKey) -> Op {
    Op::AddService {
        key,
        spec: Box::new(rr_persistent()),
        replaces: None,
    }
}

fn add_dest(port: u16, spec: DestSpec) -> Op {
    Op::AddDest {
        service: tcp(VIP, 80),
        key: dest(RS1, port),
        spec,
        replaces: None,
    }
}

#[test]
fn enforces_the_kernels_errnos() {
    let mut k = FakeKernel::from_state(ppc());
    assert_eq!(errno(k.execute(&add_service(tcp(VIP, 80)))), Errno::Exists);
    let missing = tcp(VIP, 8080);
    assert_eq!(
        errno(k.execute(&Op::DeleteService {
            key: missing,
            spec: Box::new(rr_persistent()),
            reason: Box::new(Reason::NotInManifest),
        })),
        Errno::NoService
    );
    assert_eq!(
        errno(k.execute(&Op::UpdateService {
            key: missing,
            before: Box::new(rr_persistent()),
            after: Box::new(rr_persistent()),
            changes: vec![],
        })),
        Errno::NoService
    );
    assert_eq!(
        errno(k.execute(&Op::AddDest {
            service: missing,
            key: dest(RS1, 80),
            spec: dr(1),
            replaces: None,
        })),
        Errno::NoService
    );
    assert_eq!(errno(k.execute(&add_dest(80, dr(1)))), Errno::Exists);
    assert_eq!(
        errno(k.execute(&Op::UpdateDest {
            service: tcp(VIP, 80),
            key: dest(RS1, 81),
            before: Box::new(dr(1)),
            after: Box::new(dr(2)),
            changes: vec![],
        })),
        Errno::NotFound
    );
    assert_eq!(
        errno(k.execute(&Op::DeleteDest {
            service: tcp(VIP, 80),
            key: dest(RS1, 81),
            spec: dr(1),
            reason: Box::new(Reason::NotInManifest),
        })),
        Errno::NotFound
    );
    assert_eq!(
        errno(k.execute(&Op::DrainDest {
            service: tcp(VIP, 80),
            key: dest(RS1, 81),
            before: dr(1),
            active_conns: 1,
        })),
        Errno::NotFound
    );
    // Nothing was changed or recorded by the refused ops.
    assert_eq!(k.state(), &ppc());
    assert!(k.executed().is_empty());
    assert_eq!(k.attempts(), 8);
}

#[test]
fn rejects_unknown_schedulers_and_bad_real_servers() {
    let mut k = FakeKernel::from_state(ppc());
    let mut spec = rr_persistent();
    spec.scheduler = Scheduler::Other("foo".to_owned());
    let err = k
        .execute(&Op::UpdateService {
            key: tcp(VIP, 80),
            before: Box::new(rr_persistent()),
            after: Box::new(spec),
            changes: vec![],
        })
        .unwrap_err();
    assert!(matches!(
        &err,
        BackendError::Kernel { errno: Errno::NotFound, message, .. }
            if message.contains("scheduler \"foo\" is not available")
    ));

    // IPv6 real server behind an IPv4 service: only tunnels may mix families.
    let v6 = Op::AddDest {
        service: tcp(VIP, 80),
        key: dest("2001:db8::10", 80),
        spec: dr(1),
        replaces: None,
    };
    assert_eq!(errno(k.execute(&v6)), Errno::Invalid);
    let tunnel = DestSpec {
        forward: Forward::Tunnel {
            tunnel: TunnelType::Ipip,
            flags: TunnelFlags::default(),
        },
        ..dr(1)
    };
    let Op::AddDest { service, key, .. } = v6 else {
        unreachable!()
    };
    k.execute(&Op::AddDest {
        service,
        key,
        spec: tunnel,
        replaces: None,
    })
    .unwrap();

    let inverted = DestSpec {
        upper_threshold: 10,
        lower_threshold: 20,
        ..dr(1)
    };
    assert_eq!(errno(k.execute(&add_dest(81, inverted))), Errno::Other(34));
}

#[test]
fn vips_and_chains_follow_their_rules() {
    let mut k = FakeKernel::from_state(pnmpp());
    let add = Op::AddVip {
        interface: "lvs0".to_owned(),
        addr: ip(VIP),
    };
    assert_eq!(errno(k.execute(&add)), Errno::Exists);
    let other_if = Op::AddVip {
        interface: "eth0".to_owned(),
        addr: ip("192.168.6.102"),
    };
    assert_eq!(errno(k.execute(&other_if)), Errno::Invalid);

    let remove = Op::RemoveMarkChain {
        family: lvsctl_model::Family::Inet,
        removed: vec![web_ssh_rule(10)],
    };
    k.execute(&remove).unwrap();
    assert!(k.state().marks.is_empty());
    assert_eq!(errno(k.execute(&remove)), Errno::NotFound);

    // Rules of the wrong family do not fit the chain.
    let mut v6_rule = web_ssh_rule(10);
    v6_rule.vip = ip("2001:db8::1");
    let write = Op::WriteMarkChain {
        family: lvsctl_model::Family::Inet,
        rules: vec![v6_rule.clone()],
        added: vec![v6_rule],
        removed: vec![],
    };
    assert_eq!(errno(k.execute(&write)), Errno::Invalid);
}

#[test]
fn never_deletes_foreign_addresses() {
    let mut state = pcc();
    let v = state.vips.as_mut().unwrap();
    v.owned.clear();
    v.foreign.insert(ip(VIP));
    let mut k = FakeKernel::from_state(state);
    let err = k
        .execute(&Op::DeleteVip {
            interface: "lvs0".to_owned(),
            addr: ip(VIP),
            reason: Box::new(Reason::NotInManifest),
        })
        .unwrap_err();
    assert!(err.to_string().contains("lvsctl did not add"), "{err}");
}

#[test]
fn fail_on_counts_attempts_across_calls() {
    let desired = ppc();
    let p = plan(&desired, &State::default());
    let mut k = FakeKernel::default();
    k.fail_on(
        2,
        BackendError::Kernel {
            op: "x".to_owned(),
            errno: Errno::Exists,
            message: "injected".to_owned(),
        },
    );
    let (done, err) = k.apply(&p).unwrap_err();
    assert_eq!(done, 2);
    assert!(err.to_string().contains("injected"));
    assert_eq!(k.executed(), &p.ops[..2]);

    // The fault fired once; planning again from what is there finishes the job.
    let rest = plan(&desired, &k.observe().unwrap().state);
    assert_eq!(rest.ops.len(), p.ops.len() - 2);
    k.apply(&rest).unwrap();
    assert_eq!(k.state(), &desired);
    assert_eq!(k.attempts(), p.ops.len() + 1);
}

#[test]
fn fail_when_matches_ops_until_cleared() {
    let mut k = FakeKernel::default();
    k.fail_when(
        |op| matches!(op, Op::AddDest { key, .. } if key.addr == ip(RS2)),
        BackendError::Unavailable("rs2 is cursed".to_owned()),
    );
    let p = plan(&pcc(), &State::default());
    let (done, err) = k.apply(&p).unwrap_err();
    assert_eq!(err, BackendError::Unavailable("rs2 is cursed".to_owned()));
    assert!(matches!(&p.ops[done], Op::AddDest { key, .. } if key.addr == ip(RS2)));
    // It keeps failing on the next pass too.
    let again = plan(&pcc(), k.state());
    assert!(k.apply(&again).is_err());
    k.clear_faults();
    k.apply(&plan(&pcc(), k.state())).unwrap();
    assert_eq!(k.state(), &pcc());
}

#[test]
fn observe_returns_a_snapshot_and_can_fail() {
    let mut k = FakeKernel::from_state(ppc());
    k.set_active_conns(tcp(VIP, 80), dest(RS1, 80), 7);
    let snap = k.observe().unwrap();
    assert_eq!(
        snap.counters[&tcp(VIP, 80)].dests[&dest(RS1, 80)].active_conns,
        7
    );
    k.apply(&plan(&State::default(), &snap.state)).unwrap();
    // The earlier snapshot is a copy, unaffected by later ops.
    assert_eq!(snap.state, ppc());
    assert!(k.state().services.is_empty());
    // Counters of deleted services go with them.
    assert!(k.observed().counters.is_empty());

    k.fail_next_observe(BackendError::Unavailable(
        "ipvs module not loaded".to_owned(),
    ));
    assert!(k.observe().is_err());
    assert!(k.observe().is_ok());
}

#[test]
fn drain_sets_weight_zero() {
    let mut k = FakeKernel::from_state(ppc());
    k.execute(&Op::DrainDest {
        service: tcp(VIP, 80),
        key: dest(RS1, 80),
        before: dr(1),
        active_conns: 2,
    })
    .unwrap();
    let spec = k.state().services[&tcp(VIP, 80)].dests[&dest(RS1, 80)];
    assert_eq!(spec, dr(0));
}

#[test]
fn can_move_into_threads_and_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<FakeKernel>();
}

#[test]
fn without_history_runs_the_same_ops_and_keeps_no_copy() {
    let ops = [add_service(tcp(VIP, 8080)), add_service(tcp(VIP, 8081))];
    let mut with = FakeKernel::from_state(ppc());
    let mut without = FakeKernel::from_state(ppc()).without_history();
    for op in &ops {
        with.execute(op).unwrap();
        without.execute(op).unwrap();
    }
    assert_eq!(with.state(), without.state());
    assert_eq!((with.executed().len(), without.executed().len()), (2, 0));
    assert_eq!(without.attempts(), 2);
}

/// A move of the VIP interface (lvs0 -> lvs1) applied: the addresses are on lvs1 afterwards,
/// none of lvsctl's is left on lvs0 (one of them no longer wanted at all), and the next plan
/// is empty.
#[test]
fn a_vip_interface_move_applies_and_converges() {
    let mut desired = pcc();
    desired.vips = vips(&[VIP, "2001:db8::101"]);
    desired.vips.as_mut().unwrap().interface = "lvs1".to_owned();
    // As the kernel backend observes it for vip_interface lvs1.
    let mut observed = pcc();
    let mut now = desired.vips.clone().unwrap();
    now.owned.clear();
    now.elsewhere.insert(
        "lvs0".to_owned(),
        vips(&[VIP, "2001:db8::101", "192.168.6.102"])
            .unwrap()
            .owned,
    );
    observed.vips = Some(now);
    let mut k = FakeKernel::from_state(observed.clone());
    let p = plan(&desired, &observed);
    k.apply(&p).unwrap();
    assert_eq!(k.state().vips, desired.vips);
    assert!(plan(&desired, k.state()).is_empty());

    // Deleting an address that is not on the other interface fails, as rtnetlink does.
    let gone = Op::DeleteVip {
        interface: "lvs0".to_owned(),
        addr: ip(VIP),
        reason: Box::new(Reason::NotOnVipInterface {
            interface: "lvs1".to_owned(),
        }),
    };
    assert_eq!(errno(k.execute(&gone)), Errno::Other(99));
}
