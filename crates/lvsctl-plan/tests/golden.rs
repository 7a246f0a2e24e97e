//! Snapshot tests of the text and JSON renderings for the seed's experiments. Set
//! `UPDATE_GOLDEN=1` to rewrite the files under `tests/golden/` after an intended change.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use lvsctl_model::{Forward, Observed, Scheduler, State, TunnelFlags, TunnelType};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{
    Backend, Plan, PlanOptions, RenderOpts, plan, plan_with, render_json, render_text,
    render_text_to,
};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_file(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs; rerun with UPDATE_GOLDEN=1 if the change is intended",
        path.display()
    );
}

/// Checks both renderings and that the plan really converges on the fake kernel.
fn check(name: &str, desired: &State, observed: &State, opts: &RenderOpts) -> Plan {
    let p = plan(desired, observed);
    let text = render_text(&p, opts);
    let mut streamed = Vec::new();
    render_text_to(&p, opts, &mut streamed).unwrap();
    assert_eq!(
        String::from_utf8(streamed).unwrap(),
        text,
        "{name}: streamed text differs"
    );
    check_file(&format!("{name}.txt"), &text);
    check_file(&format!("{name}.json"), &render_json(&p));
    let mut kernel = FakeKernel::from_state(observed.clone());
    kernel.apply(&p).unwrap();
    assert_eq!(
        kernel.observe().unwrap().state,
        *desired,
        "{name} does not converge"
    );
    assert!(
        plan(desired, kernel.state()).is_empty(),
        "{name} is not idempotent"
    );
    p
}

fn plain() -> RenderOpts {
    RenderOpts::default()
}

fn experiments() -> [(&'static str, State); 3] {
    [("pcc", pcc()), ("ppc", ppc()), ("pnmpp", pnmpp())]
}

#[test]
fn empty_to_each_experiment() {
    for (name, state) in experiments() {
        let p = check(
            &format!("empty_to_{name}"),
            &state,
            &State::default(),
            &plain(),
        );
        assert!(!p.is_empty());
    }
}

#[test]
fn switching_between_experiments() {
    for (from, observed) in experiments() {
        for (to, desired) in experiments() {
            if from != to {
                check(&format!("{from}_to_{to}"), &desired, &observed, &plain());
            }
        }
    }
}

#[test]
fn each_experiment_against_itself_has_no_changes() {
    for (name, state) in experiments() {
        let p = check(&format!("{name}_unchanged"), &state, &state, &plain());
        assert!(p.is_empty());
    }
}

#[test]
fn in_place_edit_of_scheduler_and_weight() {
    let desired = ppc();
    let mut observed = ppc();
    let web = observed.services.get_mut(&tcp(VIP, 80)).unwrap();
    web.spec.scheduler = Scheduler::Wlc;
    web.dests.get_mut(&dest(RS2, 80)).unwrap().weight = 3;
    let p = check("in_place_edit", &desired, &observed, &plain());
    assert_eq!(p.ops.len(), 2);

    // The same plan with colours and manifest locations.
    let opts = RenderOpts {
        color: true,
        locations: BTreeMap::from([
            (tcp(VIP, 80), "manifests/ppc.yaml:4".to_owned()),
            (tcp(VIP, 22), "manifests/ppc.yaml:12".to_owned()),
        ]),
    };
    check_file("in_place_edit_color.txt", &render_text(&p, &opts));
}

#[test]
fn identity_replace_of_a_port() {
    // PPC's ssh service moves from 22 to 2222: the only deleted and the only added service on
    // the VIP, so it is shown as one replacement.
    let observed = ppc();
    let mut desired = ppc();
    desired.services.remove(&tcp(VIP, 22));
    desired.services.insert(tcp(VIP, 2222), two_rs(2222));
    check("identity_replace_port", &desired, &observed, &plain());
}

#[test]
fn identity_replace_of_a_fwmark() {
    // PNMPP renumbered from mark 10 to 11 with the same real servers.
    let observed = pnmpp();
    let mut desired = pnmpp();
    let svc = desired.services.remove(&fwmark(10)).unwrap();
    desired.services.insert(fwmark(11), svc);
    desired
        .marks
        .get_mut(&lvsctl_model::Family::Inet)
        .unwrap()
        .rules = vec![web_ssh_rule(11)];
    check("identity_replace_fwmark", &desired, &observed, &plain());
}

#[test]
fn real_server_port_replace_and_forward_change() {
    // A NAT real server moves port; another switches to a GUE tunnel in place.
    let observed = ppc();
    let mut desired = ppc();
    let web = desired.services.get_mut(&tcp(VIP, 80)).unwrap();
    let spec = web.dests.remove(&dest(RS1, 80)).unwrap();
    web.dests.insert(
        dest(RS1, 8080),
        lvsctl_model::DestSpec {
            forward: Forward::Nat,
            ..spec
        },
    );
    web.dests.get_mut(&dest(RS2, 80)).unwrap().forward = Forward::Tunnel {
        tunnel: TunnelType::Gue { port: 6080 },
        flags: TunnelFlags {
            csum: true,
            remcsum: false,
        },
    };
    check("dest_replace_and_forward", &desired, &observed, &plain());
}

#[test]
fn unhooked_chain_is_repaired() {
    let desired = pnmpp();
    let mut observed = pnmpp();
    observed
        .marks
        .get_mut(&lvsctl_model::Family::Inet)
        .unwrap()
        .hooked = false;
    check("unhooked_chain_repair", &desired, &observed, &plain());
}

#[test]
fn drain_instead_of_delete() {
    let mut desired = ppc();
    desired
        .services
        .get_mut(&tcp(VIP, 80))
        .unwrap()
        .dests
        .remove(&dest(RS2, 80));
    let mut kernel = FakeKernel::from_state(ppc());
    kernel.set_active_conns(tcp(VIP, 80), dest(RS2, 80), 3);
    let observed: Observed = kernel.observe().unwrap();
    let opts = PlanOptions {
        drain: true,
        ..PlanOptions::default()
    };
    let p = plan_with(&desired, &observed, &opts);
    check_file("drain.txt", &render_text(&p, &plain()));
    check_file("drain.json", &render_json(&p));
}
