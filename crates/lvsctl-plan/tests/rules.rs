//! One test per planning rule: the safe order, replacements, draining, field changes, the
//! summary and the destroy guard.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lvsctl_model::{
    DestSpec, Family, Forward, MarkChain, MarkRule, Observed, Persistence, Protocol, Scheduler,
    ServiceCounters, ServiceFlags, ServiceKey, State,
};
use lvsctl_plan::{
    FieldChange, GuardError, Op, Plan, PlanOptions, Reason, Summary, destroy_guard, plan,
    plan_with, summary,
};

/// A compact name per op, to assert whole plans at once.
fn names(p: &Plan) -> Vec<String> {
    p.ops
        .iter()
        .map(|op| match op {
            Op::AddVip { addr, .. } => format!("add-vip {addr}"),
            Op::DeleteVip { addr, .. } => format!("del-vip {addr}"),
            Op::AddService { key, .. } => format!("add-svc {key}"),
            Op::UpdateService { key, .. } => format!("upd-svc {key}"),
            Op::DeleteService { key, .. } => format!("del-svc {key}"),
            Op::AddDest { service, key, .. } => format!("add-dest {key} {service}"),
            Op::UpdateDest { service, key, .. } => format!("upd-dest {key} {service}"),
            Op::DrainDest { service, key, .. } => format!("drain {key} {service}"),
            Op::DeleteDest { service, key, .. } => format!("del-dest {key} {service}"),
            Op::WriteMarkChain {
                family,
                added,
                removed,
                ..
            } => format!("write-chain {family} +{} -{}", added.len(), removed.len()),
            Op::RemoveMarkChain { family, removed } => {
                format!("remove-chain {family} -{}", removed.len())
            }
        })
        .collect()
}

fn rule(vip: &str, ports: &[u16], mark: u32, name: &str) -> MarkRule {
    MarkRule {
        vip: ip(vip),
        protocol: Protocol::Tcp,
        ports: ports.to_vec(),
        mark: lvsctl_model::Fwmark::new(mark).unwrap(),
        service: name.to_owned(),
    }
}

fn chain(rules: Vec<MarkRule>) -> BTreeMap<Family, MarkChain> {
    BTreeMap::from([(
        Family::Inet,
        MarkChain {
            hooked: true,
            rules,
        },
    )])
}

#[test]
fn vips_come_first_and_go_last() {
    let mut desired = ppc();
    desired.vips = vips(&["192.168.6.102"]);
    desired
        .services
        .insert(tcp("192.168.6.102", 80), two_rs(80));
    let mut observed = ppc();
    observed.vips = vips(&[VIP]);
    observed.services.remove(&tcp(VIP, 22));
    desired.services.remove(&tcp(VIP, 22));
    desired.services.remove(&tcp(VIP, 80));
    let p = plan(&desired, &observed);
    assert_eq!(
        names(&p),
        [
            "add-vip 192.168.6.102",
            "add-svc tcp/192.168.6.102:80",
            "add-dest 192.168.60.101:80 tcp/192.168.6.102:80",
            "add-dest 192.168.60.102:80 tcp/192.168.6.102:80",
            "del-svc tcp/192.168.6.101:80",
            "del-vip 192.168.6.101",
        ]
    );
}

#[test]
fn foreign_vips_are_never_added_or_deleted() {
    let mut desired = pcc();
    desired.vips = vips(&[VIP, "192.168.6.102"]);
    let mut observed = pcc();
    let v = observed.vips.as_mut().unwrap();
    v.owned.clear();
    v.foreign = BTreeSet::from([ip(VIP), ip("192.168.6.200")]);
    let p = plan(&desired, &observed);
    // .101 is there already (someone else's), .200 is not ours to delete.
    assert_eq!(names(&p), ["add-vip 192.168.6.102"]);
}

/// The director's VIPs as the kernel backend observes them for `director.vip_interface: lvs1`
/// after lvs0 was the VIP interface: lvsctl's addresses on lvs0 are listed as elsewhere.
fn moved_from_lvs0(addrs: &[&str]) -> Option<lvsctl_model::VipState> {
    let mut v = vips(&[]).unwrap();
    v.interface = "lvs1".to_owned();
    v.elsewhere = BTreeMap::from([("lvs0".to_owned(), addrs.iter().map(|a| ip(a)).collect())]);
    Some(v)
}

#[test]
fn a_new_vip_interface_moves_lvsctls_addresses() {
    const VIP6: &str = "2001:db8::101";
    let mut desired = pcc();
    desired.vips = vips(&[VIP, VIP6]);
    desired.vips.as_mut().unwrap().interface = "lvs1".to_owned();
    let mut observed = pcc();
    observed.vips = moved_from_lvs0(&[VIP, VIP6]);
    let p = plan(&desired, &observed);
    let vip_ops: Vec<(String, String, String)> = p
        .ops
        .iter()
        .map(|op| match op {
            Op::AddVip { interface, addr } => ("add".into(), interface.clone(), addr.to_string()),
            Op::DeleteVip {
                interface, addr, ..
            } => ("del".into(), interface.clone(), addr.to_string()),
            other => panic!("unexpected {other}"),
        })
        .collect();
    let row = |a: &str, i: &str, v: &str| (a.to_owned(), i.to_owned(), v.to_owned());
    // Added on the new interface first, taken off the old one last.
    assert_eq!(
        vip_ops,
        [
            row("add", "lvs1", VIP),
            row("add", "lvs1", VIP6),
            row("del", "lvs0", VIP),
            row("del", "lvs0", VIP6),
        ]
    );
    assert!(p.ops.iter().all(|op| match op {
        Op::DeleteVip { reason, .. } =>
            **reason
                == Reason::NotOnVipInterface {
                    interface: "lvs1".to_owned(),
                },
        _ => true,
    }));
    let text = lvsctl_plan::render_text(&p, &lvsctl_plan::RenderOpts::default());
    assert!(
        text.contains("not on vip_interface lvs1"),
        "the plan does not say why:\n{text}"
    );
    // The deletes count like any other: the guard's --max-changes sees all four changes.
    assert_eq!(summary(&p).destroy, 2);
    assert!(matches!(
        destroy_guard(&p, &observed, Some(3)),
        Err(GuardError::TooManyChanges { changes: 4, .. })
    ));
}

#[test]
fn addresses_on_a_former_vip_interface_go_with_their_services() {
    // The service behind .102 went too: its address still leaves the old interface.
    let mut desired = pcc();
    desired.vips = vips(&[VIP]);
    desired.vips.as_mut().unwrap().interface = "lvs1".to_owned();
    let mut observed = pcc();
    observed.vips = moved_from_lvs0(&[VIP, "192.168.6.102"]);
    let v = observed.vips.as_mut().unwrap();
    v.owned.insert(ip(VIP));
    v.foreign.insert(ip("192.168.6.200"));
    let p = plan(&desired, &observed);
    assert_eq!(
        names(&p),
        ["del-vip 192.168.6.101", "del-vip 192.168.6.102"]
    );
    assert!(
        p.ops
            .iter()
            .all(|op| matches!(op, Op::DeleteVip { interface, .. } if interface == "lvs0"))
    );
}

#[test]
fn addresses_elsewhere_are_left_alone_without_a_vip_interface() {
    let mut desired = pcc();
    desired.vips = None;
    let mut observed = pcc();
    observed.vips = moved_from_lvs0(&[VIP]);
    let p = plan(&desired, &observed);
    assert!(p.is_empty(), "{:?}", names(&p));
}

#[test]
fn unmanaged_vip_interface_is_left_alone() {
    let mut desired = pcc();
    desired.vips = None;
    let p = plan(&desired, &pcc());
    assert!(p.is_empty(), "{:?}", names(&p));
}

#[test]
fn new_real_servers_before_edits_before_deletes() {
    let observed = ppc();
    let mut desired = ppc();
    let web = desired.services.get_mut(&tcp(VIP, 80)).unwrap();
    web.dests.remove(&dest(RS1, 80));
    web.dests.get_mut(&dest(RS2, 80)).unwrap().weight = 5;
    web.dests.insert(dest("192.168.60.103", 80), dr(1));
    web.spec.scheduler = Scheduler::Wlc;
    let p = plan(&desired, &observed);
    assert_eq!(
        names(&p),
        [
            "upd-svc tcp/192.168.6.101:80",
            "add-dest 192.168.60.103:80 tcp/192.168.6.101:80",
            "upd-dest 192.168.60.102:80 tcp/192.168.6.101:80",
            "del-dest 192.168.60.101:80 tcp/192.168.6.101:80",
        ]
    );
}

#[test]
fn deleted_service_takes_its_real_servers_along() {
    let mut desired = ppc();
    desired.services.remove(&tcp(VIP, 22));
    let p = plan(&desired, &ppc());
    assert_eq!(names(&p), ["del-svc tcp/192.168.6.101:22"]);
    assert!(matches!(
        &p.ops[0],
        Op::DeleteService { reason, .. } if **reason == Reason::NotInManifest
    ));
}

#[test]
fn fwmark_service_exists_before_the_rules_that_feed_it() {
    let p = plan(&pnmpp(), &pcc());
    assert_eq!(
        names(&p),
        [
            "add-svc fwmark/10",
            "add-dest 192.168.60.101:0 fwmark/10",
            "add-dest 192.168.60.102:0 fwmark/10",
            "write-chain ipv4 +1 -0",
            "del-svc tcp/192.168.6.101:0",
        ]
    );
}

#[test]
fn chain_goes_before_the_service_it_feeds() {
    let p = plan(&pcc(), &pnmpp());
    assert_eq!(
        names(&p),
        [
            "add-svc tcp/192.168.6.101:0",
            "add-dest 192.168.60.101:0 tcp/192.168.6.101:0",
            "add-dest 192.168.60.102:0 tcp/192.168.6.101:0",
            "remove-chain ipv4 -1",
            "del-svc fwmark/10",
        ]
    );
}

#[test]
fn rules_for_traffic_no_longer_marked_go_first() {
    // fwmark 20 (tcp 443) leaves the manifest; fwmark 10 stays.
    let mut observed = pnmpp();
    observed.services.insert(fwmark(20), two_rs(0));
    observed.marks = chain(vec![
        rule(VIP, &[22, 80], 10, "web-ssh"),
        rule(VIP, &[443], 20, "tls"),
    ]);
    let desired = pnmpp();
    let p = plan(&desired, &observed);
    assert_eq!(names(&p), ["write-chain ipv4 +0 -1", "del-svc fwmark/20"]);
    let Op::WriteMarkChain { rules, removed, .. } = &p.ops[0] else {
        panic!("{:?}", p.ops[0])
    };
    assert_eq!(rules, &vec![web_ssh_rule(10)]);
    assert_eq!(removed, &vec![rule(VIP, &[443], 20, "tls")]);
}

#[test]
fn early_removal_then_full_write() {
    // 443 stops being marked (early), 8080 joins the web-ssh rule (full write, after services).
    let mut observed = pnmpp();
    observed.marks = chain(vec![
        rule(VIP, &[22, 80], 10, "web-ssh"),
        rule(VIP, &[443], 20, "tls"),
    ]);
    observed.services.insert(fwmark(20), two_rs(0));
    let mut desired = pnmpp();
    desired.marks = chain(vec![rule(VIP, &[22, 80, 8080], 10, "web-ssh")]);
    let p = plan(&desired, &observed);
    assert_eq!(
        names(&p),
        [
            "write-chain ipv4 +0 -1",
            "write-chain ipv4 +1 -1",
            "del-svc fwmark/20",
        ]
    );
    // The full write's delta is relative to the chain after the early removal.
    let Op::WriteMarkChain { added, removed, .. } = &p.ops[1] else {
        panic!()
    };
    assert_eq!(added, &vec![rule(VIP, &[22, 80, 8080], 10, "web-ssh")]);
    assert_eq!(removed, &vec![rule(VIP, &[22, 80], 10, "web-ssh")]);
}

#[test]
fn rewritten_rule_is_swapped_atomically_not_removed_early() {
    // Renaming the service in the comment must not leave ports 22/80 unmarked for a moment.
    let observed = pnmpp();
    let mut desired = pnmpp();
    desired.marks = chain(vec![rule(VIP, &[22, 80], 10, "web-and-ssh")]);
    let p = plan(&desired, &observed);
    assert_eq!(names(&p), ["write-chain ipv4 +1 -1"]);
}

#[test]
fn unhooked_chain_and_rule_order_are_repaired() {
    let desired = {
        let mut s = pnmpp();
        s.marks = chain(vec![
            rule(VIP, &[22, 80], 10, "web-ssh"),
            rule(VIP, &[443], 10, "web-ssh"),
        ]);
        s
    };
    let mut reordered = desired.clone();
    reordered
        .marks
        .get_mut(&Family::Inet)
        .unwrap()
        .rules
        .reverse();
    assert_eq!(
        names(&plan(&desired, &reordered)),
        ["write-chain ipv4 +0 -0"]
    );
    let mut unhooked = desired.clone();
    unhooked.marks.get_mut(&Family::Inet).unwrap().hooked = false;
    assert_eq!(
        names(&plan(&desired, &unhooked)),
        ["write-chain ipv4 +0 -0"]
    );
}

#[test]
fn identity_change_replaces_only_with_one_candidate() {
    // One deleted (:22) and one added (:2222) on the VIP: a replacement.
    let mut desired = ppc();
    desired.services.remove(&tcp(VIP, 22));
    desired.services.insert(tcp(VIP, 2222), two_rs(2222));
    let p = plan(&desired, &ppc());
    assert!(matches!(
        &p.ops[0],
        Op::AddService { key, replaces: Some(old), .. }
            if *key == tcp(VIP, 2222) && *old == tcp(VIP, 22)
    ));
    let Some(Op::DeleteService { reason, .. }) = p.ops.last() else {
        panic!()
    };
    assert_eq!(
        **reason,
        Reason::Replaced {
            by: "tcp/192.168.6.101:2222".to_owned(),
            field: "port".to_owned()
        }
    );

    // Protocol changed.
    let mut udp = ppc();
    let svc = udp.services.remove(&tcp(VIP, 22)).unwrap();
    let udp_key = ServiceKey::Inet {
        protocol: Protocol::Udp,
        vip: ip(VIP),
        port: 22,
    };
    udp.services.insert(udp_key, svc);
    let p = plan(&udp, &ppc());
    assert!(p.ops.iter().any(|op| matches!(op,
        Op::DeleteService { reason, .. }
            if matches!(&**reason, Reason::Replaced { field, .. } if field == "protocol"))));

    // The VIP changed, port and real servers the same: a replacement; with the real servers
    // changed too, another service.
    let mut renumbered = ppc();
    let svc = renumbered.services.remove(&tcp(VIP, 22)).unwrap();
    renumbered.services.insert(tcp("192.168.6.102", 22), svc);
    let p = plan(&renumbered, &ppc());
    assert!(p.ops.iter().any(|op| matches!(op,
        Op::AddService { key, replaces: Some(old), .. }
            if *key == tcp("192.168.6.102", 22) && *old == tcp(VIP, 22))));
    assert!(p.ops.iter().any(|op| matches!(op,
        Op::DeleteService { reason, .. }
            if matches!(&**reason, Reason::Replaced { field, .. } if field == "VIP"))));
    renumbered
        .services
        .get_mut(&tcp("192.168.6.102", 22))
        .unwrap()
        .dests
        .insert(dest("192.168.60.103", 22), dr(1));
    let p = plan(&renumbered, &ppc());
    assert!(p.ops.iter().all(|op| !matches!(
        op,
        Op::AddService {
            replaces: Some(_),
            ..
        }
    )));

    // Two added on the VIP: ambiguous, so plain add and delete.
    desired.services.insert(tcp(VIP, 443), two_rs(443));
    let p = plan(&desired, &ppc());
    assert!(p.ops.iter().all(|op| !matches!(
        op,
        Op::AddService {
            replaces: Some(_),
            ..
        }
    )));
    assert!(p.ops.iter().any(|op| matches!(
        op,
        Op::DeleteService { reason, .. } if **reason == Reason::NotInManifest
    )));
}

#[test]
fn fwmark_replace_needs_identical_real_servers() {
    let mut desired = pnmpp();
    let svc = desired.services.remove(&fwmark(10)).unwrap();
    desired.services.insert(fwmark(11), svc);
    let p = plan(&desired, &pnmpp());
    assert!(matches!(&p.ops[0], Op::AddService { replaces: Some(old), .. } if *old == fwmark(10)));

    // Different real servers: not the same service renumbered.
    desired
        .services
        .get_mut(&fwmark(11))
        .unwrap()
        .dests
        .insert(dest("192.168.60.103", 0), dr(1));
    let p = plan(&desired, &pnmpp());
    assert!(matches!(&p.ops[0], Op::AddService { replaces: None, .. }));
}

#[test]
fn real_server_port_change_is_a_replacement() {
    let observed = ppc();
    let mut desired = ppc();
    let web = desired.services.get_mut(&tcp(VIP, 80)).unwrap();
    web.dests.remove(&dest(RS1, 80));
    web.dests.insert(dest(RS1, 8080), dr(1));
    let p = plan(&desired, &observed);
    assert_eq!(
        p.ops,
        [
            Op::AddDest {
                service: tcp(VIP, 80),
                key: dest(RS1, 8080),
                spec: dr(1),
                replaces: Some(dest(RS1, 80)),
            },
            Op::DeleteDest {
                service: tcp(VIP, 80),
                key: dest(RS1, 80),
                spec: dr(1),
                reason: Box::new(Reason::Replaced {
                    by: "192.168.60.101:8080".to_owned(),
                    field: "port".to_owned()
                }),
            },
        ]
    );
}

fn busy(state: &State, svc: ServiceKey, d: lvsctl_model::DestKey, n: u32) -> Observed {
    let mut counters = BTreeMap::new();
    let c: &mut ServiceCounters = counters.entry(svc).or_default();
    c.dests.entry(d).or_default().active_conns = n;
    Observed {
        state: state.clone(),
        counters,
    }
}

#[test]
fn drain_quiesces_busy_real_servers() {
    let mut desired = ppc();
    desired
        .services
        .get_mut(&tcp(VIP, 80))
        .unwrap()
        .dests
        .remove(&dest(RS1, 80));
    let observed = busy(&ppc(), tcp(VIP, 80), dest(RS1, 80), 3);
    let drain = PlanOptions {
        drain: true,
        drain_expired: BTreeSet::new(),
    };

    let p = plan_with(&desired, &observed, &drain);
    assert_eq!(
        p.ops,
        [Op::DrainDest {
            service: tcp(VIP, 80),
            key: dest(RS1, 80),
            before: dr(1),
            active_conns: 3,
        }]
    );

    // Already at weight 0: nothing to do this pass.
    let mut quiesced = observed.clone();
    quiesced
        .state
        .services
        .get_mut(&tcp(VIP, 80))
        .unwrap()
        .dests
        .get_mut(&dest(RS1, 80))
        .unwrap()
        .weight = 0;
    assert!(plan_with(&desired, &quiesced, &drain).is_empty());

    // Drain time up: deleted.
    let expired = PlanOptions {
        drain: true,
        drain_expired: BTreeSet::from([(tcp(VIP, 80), dest(RS1, 80))]),
    };
    assert_eq!(
        names(&plan_with(&desired, &quiesced, &expired)),
        ["del-dest 192.168.60.101:80 tcp/192.168.6.101:80"]
    );

    // Without drain, or with no active connections: deleted at once.
    assert_eq!(
        plan_with(&desired, &observed, &PlanOptions::default()),
        plan(&desired, &observed.state)
    );
    let idle = busy(&ppc(), tcp(VIP, 80), dest(RS1, 80), 0);
    assert_eq!(
        names(&plan_with(&desired, &idle, &drain)),
        ["del-dest 192.168.60.101:80 tcp/192.168.6.101:80"]
    );
}

/// IPVS counts every UDP flow as inactive: a UDP real server with only inactive connections is
/// busy, and is drained; a TCP one is not (its inactive connections are closing ones).
#[test]
fn drain_counts_inactive_connections_of_udp_services() {
    let udp = ServiceKey::Inet {
        protocol: Protocol::Udp,
        vip: ip(VIP),
        port: 53,
    };
    let mut state = State::default();
    state.services.insert(udp, two_rs(53));
    state.services.insert(tcp(VIP, 53), two_rs(53));
    let mut desired = state.clone();
    for key in [udp, tcp(VIP, 53)] {
        desired
            .services
            .get_mut(&key)
            .unwrap()
            .dests
            .remove(&dest(RS1, 53));
    }
    let mut counters: BTreeMap<ServiceKey, ServiceCounters> = BTreeMap::new();
    for key in [udp, tcp(VIP, 53)] {
        counters
            .entry(key)
            .or_default()
            .dests
            .entry(dest(RS1, 53))
            .or_default()
            .inactive_conns = 5;
    }
    let observed = Observed { state, counters };
    let drain = PlanOptions {
        drain: true,
        drain_expired: BTreeSet::new(),
    };
    let p = plan_with(&desired, &observed, &drain);
    assert_eq!(
        names(&p),
        [
            "drain 192.168.60.101:53 udp/192.168.6.101:53",
            "del-dest 192.168.60.101:53 tcp/192.168.6.101:53",
        ]
    );
    let drained = p.ops.iter().find_map(|op| match op {
        Op::DrainDest { active_conns, .. } => Some(*active_conns),
        _ => None,
    });
    assert_eq!(drained, Some(5));
    let text = lvsctl_plan::render_text(&p, &lvsctl_plan::RenderOpts::default());
    assert!(text.contains("(weight 1 -> 0, 5 connections)"), "{text}");
}

#[test]
fn drain_counts_inactive_connections_of_fwmark_services_that_may_carry_udp() {
    // 10: its rules mark tcp only (inactive entries are closing connections); 20: it marks
    // udp too; 30: no rules of lvsctl's (what feeds it is unknown).
    let mut state = State::default();
    for m in [10, 20, 30] {
        state.services.insert(fwmark(m), two_rs(0));
    }
    let mut udp = rule(VIP, &[53], 20, "dns");
    udp.protocol = Protocol::Udp;
    state.marks = chain(vec![
        rule(VIP, &[80], 10, "web"),
        rule(VIP, &[53], 20, "dns"),
        udp,
    ]);
    let mut desired = state.clone();
    let mut counters: BTreeMap<ServiceKey, ServiceCounters> = BTreeMap::new();
    for m in [10, 20, 30] {
        let gone = desired.services.get_mut(&fwmark(m)).unwrap();
        gone.dests.remove(&dest(RS1, 0));
        counters
            .entry(fwmark(m))
            .or_default()
            .dests
            .entry(dest(RS1, 0))
            .or_default()
            .inactive_conns = 5;
    }
    let observed = Observed { state, counters };
    let drain = PlanOptions {
        drain: true,
        drain_expired: BTreeSet::new(),
    };
    assert_eq!(
        names(&plan_with(&desired, &observed, &drain)),
        [
            "drain 192.168.60.101:0 fwmark/20",
            "drain 192.168.60.101:0 fwmark/30",
            "del-dest 192.168.60.101:0 fwmark/10",
        ]
    );
}

#[test]
fn drain_does_not_keep_a_deleted_service() {
    let mut desired = ppc();
    desired.services.remove(&tcp(VIP, 80));
    let observed = busy(&ppc(), tcp(VIP, 80), dest(RS1, 80), 3);
    let drain = PlanOptions {
        drain: true,
        drain_expired: BTreeSet::new(),
    };
    assert_eq!(
        names(&plan_with(&desired, &observed, &drain)),
        ["del-svc tcp/192.168.6.101:80"]
    );
}

fn fc(field: &str, before: &str, after: &str) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        before: before.to_owned(),
        after: after.to_owned(),
    }
}

#[test]
fn in_place_edits_list_each_changed_field() {
    let observed = pcc();
    let mut desired = pcc();
    let svc = desired.services.get_mut(&tcp(VIP, 0)).unwrap();
    svc.spec.scheduler = Scheduler::Sh;
    svc.spec.flags = ServiceFlags {
        sched1: true,
        sched2: true,
        ..ServiceFlags::default()
    };
    svc.spec.persistence = Some(Persistence {
        timeout: 300,
        netmask: 24,
    });
    svc.spec.pe_name = Some("sip".to_owned());
    *svc.dests.get_mut(&dest(RS1, 0)).unwrap() = DestSpec {
        forward: Forward::Nat,
        weight: 4,
        upper_threshold: 100,
        lower_threshold: 50,
    };
    let p = plan(&desired, &observed);
    let Op::UpdateService { changes, .. } = &p.ops[0] else {
        panic!("{:?}", p.ops)
    };
    assert_eq!(
        changes,
        &[
            fc("scheduler", "rr", "sh"),
            fc("flags", "none", "sh-fallback,sh-port"),
            fc("persistence", "120s", "300s"),
            fc("netmask", "255.255.255.255", "255.255.255.0"),
            fc("pe", "none", "sip"),
        ]
    );
    let Op::UpdateDest { changes, .. } = &p.ops[1] else {
        panic!("{:?}", p.ops)
    };
    assert_eq!(
        changes,
        &[
            fc("forward", "dr", "nat"),
            fc("weight", "1", "4"),
            fc("upper_threshold", "0", "100"),
            fc("lower_threshold", "0", "50"),
        ]
    );
    assert_eq!(p.ops.len(), 2);
}

#[test]
fn persistence_switched_off_shows_only_the_timeout() {
    let mut desired = pcc();
    desired
        .services
        .get_mut(&tcp(VIP, 0))
        .unwrap()
        .spec
        .persistence = None;
    let p = plan(&desired, &pcc());
    let Op::UpdateService { changes, .. } = &p.ops[0] else {
        panic!()
    };
    assert_eq!(changes, &[fc("persistence", "120s", "off")]);
}

#[test]
fn summary_counts_like_terraform() {
    // Replacement: the add and the delete both count.
    let mut desired = ppc();
    desired.services.remove(&tcp(VIP, 22));
    desired.services.insert(tcp(VIP, 2222), two_rs(2222));
    assert_eq!(
        summary(&plan(&desired, &ppc())),
        Summary {
            add: 3,
            change: 0,
            destroy: 1
        }
    );
    // Mark rules count one each; an unhooked chain is one change.
    let mut observed = pnmpp();
    observed.marks = chain(vec![
        rule(VIP, &[443], 10, "web-ssh"),
        rule(VIP, &[8443], 10, "web-ssh"),
    ]);
    assert_eq!(
        summary(&plan(&pnmpp(), &observed)),
        Summary {
            add: 1,
            change: 0,
            destroy: 2
        }
    );
    let mut unhooked = pnmpp();
    unhooked.marks.get_mut(&Family::Inet).unwrap().hooked = false;
    assert_eq!(
        summary(&plan(&pnmpp(), &unhooked)),
        Summary {
            add: 0,
            change: 1,
            destroy: 0
        }
    );
    // A drain is a change.
    let p = Plan {
        ops: vec![Op::DrainDest {
            service: tcp(VIP, 80),
            key: dest(RS1, 80),
            before: dr(1),
            active_conns: 1,
        }],
    };
    assert_eq!(summary(&p).change, 1);
    assert_eq!(summary(&p).total(), 1);
}

#[test]
fn guard_refuses_emptying_the_table() {
    let empty = State::default();
    let p = plan(&empty, &ppc());
    let err = destroy_guard(&p, &ppc(), None).unwrap_err();
    assert!(matches!(err, GuardError::DestroysAll { services: 2, .. }));
    let msg = err.to_string();
    assert!(msg.contains("--allow-destroy"), "{msg}");
    assert!(msg.contains("tcp/192.168.6.101:22"), "{msg}");
    assert!(msg.contains("meant to empty the table"), "{msg}");

    // Switching experiments deletes every old service too; the message says it is a swap.
    let err = destroy_guard(&plan(&pnmpp(), &ppc()), &ppc(), None).unwrap_err();
    assert!(matches!(err, GuardError::DestroysAll { added: 1, .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("keeps none of them and adds 1 other service(s)"),
        "{msg}"
    );

    // A one-service director whose service changes port: the plan pairs the two (`-/+`), the
    // service goes on under its new key, so this is not a wipe.
    let mut one = ppc();
    one.services.remove(&tcp(VIP, 22));
    let mut moved = one.clone();
    let svc = moved.services.remove(&tcp(VIP, 80)).unwrap();
    moved.services.insert(tcp(VIP, 8080), svc.clone());
    assert_eq!(destroy_guard(&plan(&moved, &one), &one, None), Ok(()));
    // The same service on another VIP is paired too (`VIP changed`), but that is also what the
    // manifest of the other director of an active/active pair looks like: refused, saying so.
    let mut elsewhere = State::default();
    elsewhere
        .services
        .insert(tcp("192.168.6.199", 80), svc.clone());
    let p = plan(&elsewhere, &one);
    assert!(p.ops.iter().any(|op| matches!(
        op,
        Op::AddService {
            replaces: Some(_),
            ..
        }
    )));
    let err = destroy_guard(&p, &one, None).unwrap_err();
    assert!(
        matches!(err, GuardError::DestroysAll { moved: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("1 with the same port and real servers on another VIP"),
        "{err}"
    );
    // And every service of a director moved at once the same.
    let mut all_moved = State::default();
    for (key, s) in &ppc().services {
        if let ServiceKey::Inet { protocol, port, .. } = key {
            all_moved.services.insert(
                ServiceKey::Inet {
                    protocol: *protocol,
                    vip: ip("192.168.6.199"),
                    port: *port,
                },
                s.clone(),
            );
        }
    }
    let err = destroy_guard(&plan(&all_moved, &ppc()), &ppc(), None).unwrap_err();
    assert!(
        matches!(err, GuardError::DestroysAll { moved: 2, .. }),
        "{err:?}"
    );
    let mut other = svc;
    other.dests.insert(dest("192.168.60.103", 80), dr(1));
    let mut another = State::default();
    another.services.insert(tcp("192.168.6.199", 80), other);
    let err = destroy_guard(&plan(&another, &one), &one, None).unwrap_err();
    assert!(
        matches!(err, GuardError::DestroysAll { moved: 0, .. }),
        "{err:?}"
    );

    // Deleting some services, or starting from an empty table, is fine.
    let mut one_left = ppc();
    one_left.services.remove(&tcp(VIP, 22));
    assert_eq!(
        destroy_guard(&plan(&one_left, &ppc()), &ppc(), None),
        Ok(())
    );
    assert_eq!(
        destroy_guard(&plan(&ppc(), &empty), &empty, Some(100)),
        Ok(())
    );
}

#[test]
fn guard_limits_the_number_of_changes() {
    let empty = State::default();
    let p = plan(&ppc(), &empty); // 1 vip + 2 services + 4 real servers
    assert_eq!(destroy_guard(&p, &empty, Some(7)), Ok(()));
    let err = destroy_guard(&p, &empty, Some(6)).unwrap_err();
    assert!(matches!(
        err,
        GuardError::TooManyChanges {
            changes: 7,
            max: 6,
            ..
        }
    ));
    assert!(err.to_string().contains("--max-changes 6"), "{err}");

    // The limit is checked before the emptying rule, so --allow-destroy callers still get it.
    let wipe = plan(&empty, &ppc());
    assert!(matches!(
        destroy_guard(&wipe, &ppc(), Some(1)),
        Err(GuardError::TooManyChanges { .. })
    ));
}

#[test]
fn op_display_is_one_line() {
    let p = plan(&ppc(), &State::default());
    let lines: Vec<String> = p.ops.iter().map(ToString::to_string).collect();
    assert_eq!(lines[0], "add vip 192.168.6.101/32 on lvs0");
    assert_eq!(lines[1], "add service tcp/192.168.6.101:22");
    assert_eq!(
        lines[3],
        "add real server 192.168.60.101:22 to tcp/192.168.6.101:22"
    );
    let mut edited = ppc();
    edited
        .services
        .get_mut(&tcp(VIP, 80))
        .unwrap()
        .spec
        .scheduler = Scheduler::Wlc;
    let p = plan(&edited, &ppc());
    assert_eq!(
        p.ops[0].to_string(),
        "update service tcp/192.168.6.101:80 (scheduler: rr -> wlc)"
    );
}
