//! Switching one director between the seed's experiments with lvsctl, next to state an
//! operator added by hand, in one VM boot:
//! pcc -> (ppc refused by the destroy guard) -> ppc -> pnmpp -> pcc.
//!
//! After each step `ipvsadm -S -n` minus the operator's services equals the example's
//! recorded seed state byte for byte (no stale service or real server), lvsctl's chain marks
//! exactly what the seed's commands mark (no chain at all for pcc/ppc), the operator's mangle
//! rules (in PREROUTING and in a chain of their own) and the IPVS services a
//! `director.unmanaged` selector covers are unchanged byte for byte, a second apply prints
//! `No changes.`, and the clients' traffic behaves as that experiment.
#![allow(clippy::unwrap_used)]

mod lvsctl_support;

use lvsctl_support::{Experiment, Run, check_marks, expected, run_director, without_foreign};
use lvsctl_vmtest::skip_requested;

/// The operator's own state, made before lvsctl ever runs, and the manifest fragment that
/// tells lvsctl to leave its IPVS services alone (merged with each example by `-f ... -f`).
const FOREIGN: &str = r#"
iptables -t mangle -A PREROUTING -p udp --dport 53 -j MARK --set-mark 99
iptables -t mangle -N OPS-MARK
iptables -t mangle -A OPS-MARK -p tcp --dport 8080 -j MARK --set-mark 7
iptables -t mangle -A OPS-MARK -s 192.168.130.0/24 -p udp -j MARK --set-mark 8
iptables -t mangle -A PREROUTING -j OPS-MARK
iptables -t mangle -A POSTROUTING -o br0 -p tcp --dport 22 -j MARK --set-mark 5
ipvsadm -A -u 10.9.9.9:53 -s wlc
ipvsadm -a -u 10.9.9.9:53 -r 192.168.60.101:53 -g -w 5
ipvsadm -A -f 99 -s sh -b sh-port
ipvsadm -a -f 99 -r 192.168.60.102 -g -w 3
cat >/tmp/ops.yaml <<'EOF'
# The operator's corner of this director: lvsctl must not touch these IPVS services.
director:
  unmanaged:
    - {cidr: 10.9.9.0/24}
    - {fwmark: 99}
EOF
"#;

/// Rounds of traffic per client and port after each step.
const ROUNDS: usize = 2;

/// The steps after the first: (name, example). Each replaces every service of the previous
/// one, so each needs --allow-destroy.
const STEPS: [(&str, Experiment); 4] = [
    ("1-pcc", Experiment::Pcc),
    ("2-ppc", Experiment::Ppc),
    ("3-pnmpp", Experiment::Pnmpp),
    ("4-pcc", Experiment::Pcc),
];

fn step_script(name: &str, exp: Experiment, allow_destroy: bool) -> String {
    let files = format!("-f /opt/examples/{}.yaml -f /tmp/ops.yaml", exp.name());
    let flag = if allow_destroy {
        " --allow-destroy"
    } else {
        ""
    };
    format!(
        "cmd {name} /opt/lvsctl apply{flag} {files}\n\
         snap {name}\n\
         cmd {name}.again /opt/lvsctl apply {files}\n\
         {traffic}",
        traffic = exp.traffic_script(name, ROUNDS)
    )
}

fn check_step(run: &Run, name: &str, exp: Experiment, previous: &str) {
    run.expect_status(name, 0);
    let foreign = run.ipvsadm("foreign");
    assert_eq!(
        without_foreign(&run.ipvsadm(name), &foreign, name),
        expected(exp, "ipvsadm"),
        "{name}: lvsctl's services after switching to {} (foreign services cut out)",
        exp.name()
    );
    // The mangle table outside lvsctl's chain must still be the operator's, byte for byte.
    check_marks(exp, &run.mangle("foreign"), &run.mangle(name), name);
    // A switch prints what it replaces: the previous example's services go.
    let plan = run.stdout(name);
    assert!(
        plan.contains("to destroy") && !plan.starts_with("No changes."),
        "{name}: the switch from {previous} printed no plan:\n{plan}"
    );
    run.expect_no_changes(&format!("{name}.again"));
    // The first pcc step runs on fresh services; the last one meets the persistence
    // templates of the first (same service identity), which may keep clients where they were.
    let fresh = name != "4-pcc";
    exp.check_traffic(&run.probes(), name, ROUNDS, fresh);
}

#[test]
fn switching_examples_converges_and_keeps_foreign_state() {
    if skip_requested("switching_examples_converges_and_keeps_foreign_state") {
        return;
    }
    let mut body = format!("vip_on_director\n{FOREIGN}\nsnap foreign\n");
    body.push_str(&step_script(STEPS[0].0, STEPS[0].1, false));
    // Without --allow-destroy the switch is refused before anything changes.
    body.push_str(
        "cmd guard /opt/lvsctl apply -f /opt/examples/ppc.yaml -f /tmp/ops.yaml\nsnap guard\n",
    );
    for (name, exp) in &STEPS[1..] {
        body.push_str(&step_script(name, *exp, true));
    }
    body.push_str("exit 0");
    let run = run_director("switch", &body);

    // The operator's state is what the commands above made.
    let foreign = run.ipvsadm("foreign");
    assert_eq!(
        foreign,
        "-A -u 10.9.9.9:53 -s wlc\n-a -u 10.9.9.9:53 -r 192.168.60.101:53 -g -w 5\n\
         -A -f 99 -s sh -b sh-port\n-a -f 99 -r 192.168.60.102:0 -g -w 3\n"
    );

    check_step(&run, "1-pcc", Experiment::Pcc, "an empty table");

    // The destroy guard: exit 3, the reason on stderr, and the kernel exactly as before.
    run.expect_status("guard", 3);
    let err = run.stderr("guard");
    assert!(
        err.contains("refusing to delete all 1 IPVS services of the director")
            && err.contains("--allow-destroy")
            && err.contains("nothing was changed"),
        "destroy guard message:\n{err}"
    );
    assert_eq!(run.ipvsadm("guard"), run.ipvsadm("1-pcc"));
    assert_eq!(
        lvsctl_support::save_lines(&run.mangle("guard")),
        lvsctl_support::save_lines(&run.mangle("1-pcc"))
    );

    for pair in STEPS.windows(2) {
        let (prev, _) = pair[0];
        let (name, exp) = pair[1];
        check_step(&run, name, exp, prev);
    }
}
