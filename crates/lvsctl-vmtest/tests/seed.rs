//! The seed document's experiments, reproduced in the VM with real traffic from the seed's
//! clients to the VIP 192.168.6.101 (tests/vm/topology.sh): PCC, PPC, PNMPP and the health
//! loop. Run one with `cargo test -p lvsctl-vmtest --test seed pnmpp`.
//!
//! A scenario is a configure step followed by traffic. The configure step is [`configure`]:
//! `lvsctl apply -f examples/<exp>.yaml` (plus the VIP on the director, which the examples
//! leave to the operator). The kernel state it leaves must equal the seed's: `ipvsadm -S -n`
//! byte for byte, and the MARK rules the same (VIP, protocol, port, mark) set, spelled as
//! lvsctl's one multiport rule in its own chain. The seed's own ipvsadm/iptables commands
//! (tests/vm/seed/<exp>.sh) still run in [`seed_commands`], which proves the recorded
//! expectations in tests/vm/expected/<exp>.{ipvsadm,mangle} (`LVSCTL_VM_BLESS=1` rewrites
//! them) and that the seed's commands give the same traffic.
#![allow(clippy::unwrap_used)]

mod lvsctl_support;

use std::fs;

use lvsctl_support::{
    Experiment, Run, both_clients_on, check_marks, expected, run_director, save_lines,
};
use lvsctl_vmtest::{repo_root, skip_requested};

/// The configure step every lvsctl scenario uses, as guest shell lines.
fn configure(exp: Experiment) -> String {
    format!(
        "vip_on_director\n\
         cmd apply /opt/lvsctl apply -f /opt/examples/{}.yaml || exit 1",
        exp.name()
    )
}

/// The seed's own commands (including putting the VIP on the director by hand).
fn seed_configure(exp: Experiment) -> String {
    format!(". /opt/seed/{}.sh", exp.name())
}

/// Boots the seed topology, configures `exp` with lvsctl, re-applies and plans (both must
/// find nothing to do), and runs `traffic`. Sections: `before`, `applied`, `again` (snap),
/// `apply`, `reapply`, `plan` (cmd).
fn scenario(exp: Experiment, traffic: &str) -> Run {
    let manifest = format!("/opt/examples/{}.yaml", exp.name());
    run_director(
        exp.name(),
        &format!(
            "snap before\n\
             {configure}\n\
             snap applied\n\
             cmd reapply /opt/lvsctl apply -f {manifest}\n\
             cmd plan /opt/lvsctl plan --detailed-exitcode -f {manifest}\n\
             snap again\n\
             {traffic}\n\
             exit 0",
            configure = configure(exp),
        ),
    )
}

/// What lvsctl left equals what the seed's commands leave, and a second apply and a plan
/// find nothing to do.
fn check_lvsctl_state(run: &Run, exp: Experiment) {
    run.expect_status("apply", 0);
    assert_eq!(
        run.ipvsadm("applied"),
        expected(exp, "ipvsadm"),
        "ipvsadm -S -n after `lvsctl apply -f examples/{}.yaml` differs from the seed's",
        exp.name()
    );
    check_marks(exp, &run.mangle("before"), &run.mangle("applied"), "apply");
    run.expect_no_changes("reapply");
    run.expect_no_changes("plan");
    assert_eq!(run.ipvsadm("again"), run.ipvsadm("applied"));
    assert_eq!(
        save_lines(&run.mangle("again")),
        save_lines(&run.mangle("applied"))
    );
}

/// Traffic rounds per client and port.
const ROUNDS: usize = 3;

fn lvsctl_experiment(exp: Experiment) {
    if skip_requested(exp.name()) {
        return;
    }
    let run = scenario(exp, &exp.traffic_script("main", ROUNDS));
    check_lvsctl_state(&run, exp);
    exp.check_traffic(&run.probes(), "main", ROUNDS, true);
}

#[test]
fn pcc() {
    lvsctl_experiment(Experiment::Pcc);
}

#[test]
fn ppc() {
    lvsctl_experiment(Experiment::Ppc);
}

#[test]
fn pnmpp() {
    lvsctl_experiment(Experiment::Pnmpp);
}

/// The seed's own commands for all three experiments, one after the other in one VM (the
/// persistence templates of port-0, per-port and fwmark services never match each other):
/// the state each leaves is tests/vm/expected/, and the traffic behaves as with lvsctl.
#[test]
fn seed_commands() {
    if skip_requested("seed_commands") {
        return;
    }
    let mut body = String::new();
    for exp in Experiment::ALL {
        body.push_str(&format!(
            "iptables -t mangle -F PREROUTING\n\
             {configure}\n\
             vm_section {name}.ipvsadm ipvsadm -S -n\n\
             vm_section {name}.mangle mangle_rules\n\
             {traffic}",
            configure = seed_configure(exp),
            name = exp.name(),
            traffic = exp.traffic_script(exp.name(), ROUNDS),
        ));
    }
    body.push_str("exit 0");
    let run = run_director("seed-commands", &body);
    let bless = std::env::var_os("LVSCTL_VM_BLESS").is_some_and(|v| v == "1");
    for exp in Experiment::ALL {
        for kind in ["ipvsadm", "mangle"] {
            let actual = run.section(&format!("{}.{kind}", exp.name()));
            if bless {
                let path = repo_root().join(format!("tests/vm/expected/{}.{kind}", exp.name()));
                fs::write(&path, &actual).unwrap();
                continue;
            }
            assert_eq!(
                actual,
                expected(exp, kind),
                "{kind} state after the seed's commands for {} differs from tests/vm/expected/",
                exp.name()
            );
        }
        exp.check_traffic(&run.probes(), exp.name(), ROUNDS, true);
    }
}

#[test]
fn health_loop() {
    if skip_requested("health_loop") {
        return;
    }
    // The seed's health.sh: every 3 s, delete an RS whose /.health.html fails from the
    // fwmark service and add it back once it passes. The director is configured by lvsctl.
    let run = scenario(
        Experiment::Pnmpp,
        r#"phase before
probe_rounds 1 c1:80 c2:80
( while :; do health_check_pass "-f 10"; sleep 3; done ) &
rs_stop_http RS1
wait_for 30 '! ipvsadm -L -n | grep -q 192.168.60.101' || exit 1
vm_section down ipvsadm -S -n
phase down
probe_rounds 2 c1:80 c1:22 c2:80 c2:22
rs_start_http RS1
wait_for 30 'ipvsadm -L -n | grep -q 192.168.60.101' || exit 1
vm_section up ipvsadm -S -n
phase up
probe_rounds 2 c1:80 c1:22 c2:80 c2:22"#,
    );
    check_lvsctl_state(&run, Experiment::Pnmpp);
    let p = run.probes();
    let sticky = lvsctl_support::sticky;
    let before = [
        sticky(&p, "before", "c1", 80, 1),
        sticky(&p, "before", "c2", 80, 1),
    ];
    assert!(before.contains(&"RS1"), "nobody on RS1 before: {before:?}");

    let down = run.section("down");
    assert!(!down.contains("192.168.60.101"), "RS1 not removed:\n{down}");
    assert!(
        down.contains("-a -f 10 -r 192.168.60.102"),
        "RS2 gone:\n{down}"
    );
    // Even the client persisted to RS1 is sent to the survivor.
    both_clients_on(&p, "down", 2, "RS2", "while RS1 is down");

    let up = run.section("up");
    assert!(
        up.contains("-a -f 10 -r 192.168.60.101"),
        "RS1 not restored:\n{up}"
    );
    // Persistence keeps both clients where the outage sent them.
    both_clients_on(&p, "up", 2, "RS2", "after RS1 returned");
}
