//! The seed document's experiments, reproduced in the VM with real traffic from the seed's
//! clients to the VIP 192.168.6.101 (tests/vm/topology.sh): PCC, PPC, PNMPP and the health
//! loop. One test per scenario; run one with
//! `cargo test -p lvsctl-vmtest --test seed pnmpp`.
//!
//! A scenario is a configure step followed by traffic. The configure step is [`configure`]:
//! today the seed's own ipvsadm/iptables commands (tests/vm/seed/<exp>.sh). When lvsctl runs
//! it instead (`lvsctl apply -f examples/<exp>.yaml`), the kernel state it leaves must equal
//! the seed's, recorded from the real VM in tests/vm/expected/<exp>.{ipvsadm,mangle}
//! (`LVSCTL_VM_BLESS=1` rewrites them).
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, fs, path::PathBuf, time::Duration};

use lvsctl_vmtest::{VmOutput, VmRun, repo_root, skip_requested};

/// Boot + topology take 10-20 s under TCG; the scenarios a few seconds more. The margin is
/// for a machine busy compiling on both cores.
const VM_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
enum Experiment {
    Pcc,
    Ppc,
    Pnmpp,
}

impl Experiment {
    fn name(self) -> &'static str {
        match self {
            Experiment::Pcc => "pcc",
            Experiment::Ppc => "ppc",
            Experiment::Pnmpp => "pnmpp",
        }
    }
}

/// What the configure step needs: files to copy into the VM and the guest shell snippet that
/// configures the director.
struct Configure {
    copies: Vec<(PathBuf, String)>,
    snippet: String,
}

/// The seed's own commands (including putting the VIP on the director by hand).
fn seed_configure(exp: Experiment) -> Configure {
    Configure {
        copies: vec![(repo_root().join("tests/vm/seed"), "/opt/seed".into())],
        snippet: format!(". /opt/seed/{}.sh", exp.name()),
    }
}

/// The configure step every scenario uses; the one place to swap in lvsctl.
fn configure(exp: Experiment) -> Configure {
    seed_configure(exp)
}

/// Boots the seed topology, configures `exp`, records the kernel state in the sections
/// `ipvsadm` (`ipvsadm -S -n`) and `mangle` (mangle rules), then runs `traffic`.
fn scenario(exp: Experiment, traffic: &str) -> VmOutput {
    let cfg = configure(exp);
    let script = format!(
        "configure() {{\n{snippet}\n}}\n\
         configure || {{ echo 'the configure step failed'; exit 1; }}\n\
         vm_section ipvsadm ipvsadm -S -n\n\
         vm_section mangle mangle_rules\n\
         {traffic}\n\
         exit 0\n",
        snippet = cfg.snippet
    );
    let mut run = VmRun::new()
        .topology_seed()
        .timeout(VM_TIMEOUT)
        .named_script(exp.name(), &script);
    for (host, guest) in &cfg.copies {
        run = run.copy_to(host, guest);
    }
    let out = run.run();
    out.assert_success();
    out
}

/// Compares a recorded section with tests/vm/expected/<exp>.<kind>, or records it when
/// LVSCTL_VM_BLESS=1.
fn check_expected(out: &VmOutput, exp: Experiment, kind: &str) {
    let actual = out
        .section(kind)
        .unwrap_or_else(|| panic!("no `{kind}` section on the console:\n{}", out.console));
    let path = repo_root().join(format!("tests/vm/expected/{}.{kind}", exp.name()));
    if std::env::var_os("LVSCTL_VM_BLESS").is_some_and(|v| v == "1") {
        fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; record it with LVSCTL_VM_BLESS=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "{kind} state after configuring {} differs from {}",
        exp.name(),
        path.display()
    );
}

/// One `probe <client> <port> <server> <body>` line, with the `phase <name>` it came after.
#[derive(Debug)]
struct Probe {
    phase: String,
    client: String,
    port: u16,
    server: String,
    body: String,
}

fn probes(out: &VmOutput) -> Vec<Probe> {
    let mut phase = String::new();
    let mut found = Vec::new();
    for line in out.console.lines() {
        if let Some(p) = line.strip_prefix("phase ") {
            phase = p.to_string();
        } else if let Some(rest) = line.strip_prefix("probe ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(f.len(), 4, "malformed probe line {line:?}");
            found.push(Probe {
                phase: phase.clone(),
                client: f[0].to_string(),
                port: f[1].parse().unwrap(),
                server: f[2].to_string(),
                body: f[3].to_string(),
            });
        }
    }
    found
}

/// The one real server that answered every request of `client` to `port` in `phase`;
/// panics unless there were exactly `count` such requests, all answered by one RS.
fn sticky<'a>(all: &'a [Probe], phase: &str, client: &str, port: u16, count: usize) -> &'a str {
    let matching: Vec<&Probe> = all
        .iter()
        .filter(|p| p.phase == phase && p.client == client && p.port == port)
        .collect();
    for p in &matching {
        // The :22 service answers `RS1-22`: the request reached the RS's :22 server.
        let want = if port == 22 {
            format!("{}-22", p.server)
        } else {
            p.server.clone()
        };
        assert!(
            p.server == "FAILED" || p.body == want,
            "{phase}: unexpected answer {p:?}"
        );
    }
    let seen: Vec<&str> = matching.iter().map(|p| p.server.as_str()).collect();
    assert_eq!(
        seen.len(),
        count,
        "{phase}: expected {count} requests {client} -> :{port}, got {seen:?}\nall: {all:#?}"
    );
    let distinct: BTreeSet<&str> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        1,
        "{phase}: {client} -> :{port} did not stay on one real server: {seen:?}"
    );
    let server = seen[0];
    assert!(
        server == "RS1" || server == "RS2",
        "{phase}: {client} -> :{port} answered by {server:?}\nall: {all:#?}"
    );
    server
}

#[test]
fn pcc() {
    if skip_requested("pcc") {
        return;
    }
    let out = scenario(
        Experiment::Pcc,
        "echo 'phase main'\nprobe_rounds 3 c1:80 c2:80 c1:22 c2:22",
    );
    check_expected(&out, Experiment::Pcc, "ipvsadm");
    check_expected(&out, Experiment::Pcc, "mangle");
    let p = probes(&out);
    let c1 = sticky(&p, "main", "c1", 80, 3);
    let c2 = sticky(&p, "main", "c2", 80, 3);
    // PCC: one real server per client, whatever the port.
    assert_eq!(sticky(&p, "main", "c1", 22, 3), c1, "c1's :22 left its RS");
    assert_eq!(sticky(&p, "main", "c2", 22, 3), c2, "c2's :22 left its RS");
    // rr hands the two clients' first requests to different real servers.
    assert_ne!(c1, c2, "both clients on {c1}: rr did not spread them");
}

#[test]
fn ppc() {
    if skip_requested("ppc") {
        return;
    }
    // Per-port services schedule independently: c1 takes the first RS of :80, c2 the first
    // RS of :22, so each client's two ports land on different real servers.
    let out = scenario(
        Experiment::Ppc,
        "echo 'phase main'\nprobe_rounds 3 c1:80 c2:80 c2:22 c1:22",
    );
    check_expected(&out, Experiment::Ppc, "ipvsadm");
    check_expected(&out, Experiment::Ppc, "mangle");
    let p = probes(&out);
    let c1_80 = sticky(&p, "main", "c1", 80, 3);
    let c1_22 = sticky(&p, "main", "c1", 22, 3);
    let c2_80 = sticky(&p, "main", "c2", 80, 3);
    let c2_22 = sticky(&p, "main", "c2", 22, 3);
    assert_ne!(c1_80, c1_22, "PPC: c1's :80 and :22 should differ here");
    assert_ne!(c2_80, c2_22, "PPC: c2's :80 and :22 should differ here");
}

#[test]
fn pnmpp() {
    if skip_requested("pnmpp") {
        return;
    }
    // The request order that split PPC's ports; with one fwmark service it cannot.
    let out = scenario(
        Experiment::Pnmpp,
        "echo 'phase main'\nprobe_rounds 3 c1:80 c2:80 c2:22 c1:22",
    );
    check_expected(&out, Experiment::Pnmpp, "ipvsadm");
    check_expected(&out, Experiment::Pnmpp, "mangle");
    let p = probes(&out);
    let c1 = sticky(&p, "main", "c1", 80, 3);
    let c2 = sticky(&p, "main", "c2", 80, 3);
    assert_eq!(
        sticky(&p, "main", "c1", 22, 3),
        c1,
        "PNMPP: c1's :22 left its RS"
    );
    assert_eq!(
        sticky(&p, "main", "c2", 22, 3),
        c2,
        "PNMPP: c2's :22 left its RS"
    );
    assert_ne!(c1, c2, "both clients on {c1}: rr did not spread them");
}

#[test]
fn health_loop() {
    if skip_requested("health_loop") {
        return;
    }
    // The seed's health.sh: every 3 s, delete an RS whose /.health.html fails from the
    // fwmark service and add it back once it passes.
    let out = scenario(
        Experiment::Pnmpp,
        r#"echo 'phase before'
probe_rounds 1 c1:80 c2:80
( while :; do health_check_pass "-f 10"; sleep 3; done ) &
rs_stop_http RS1
wait_for 30 '! ipvsadm -L -n | grep -q 192.168.60.101' || exit 1
vm_section down ipvsadm -S -n
echo 'phase down'
probe_rounds 2 c1:80 c1:22 c2:80 c2:22
rs_start_http RS1
wait_for 30 'ipvsadm -L -n | grep -q 192.168.60.101' || exit 1
vm_section up ipvsadm -S -n
echo 'phase up'
probe_rounds 2 c1:80 c1:22 c2:80 c2:22"#,
    );
    let p = probes(&out);
    let before = [
        sticky(&p, "before", "c1", 80, 1),
        sticky(&p, "before", "c2", 80, 1),
    ];
    assert!(before.contains(&"RS1"), "nobody on RS1 before: {before:?}");

    let down = out.section("down").unwrap();
    assert!(!down.contains("192.168.60.101"), "RS1 not removed:\n{down}");
    assert!(
        down.contains("-a -f 10 -r 192.168.60.102"),
        "RS2 gone:\n{down}"
    );
    for c in ["c1", "c2"] {
        for port in [80, 22] {
            // Even the client persisted to RS1 is sent to the survivor.
            assert_eq!(
                sticky(&p, "down", c, port, 2),
                "RS2",
                "{c}:{port} while RS1 is down"
            );
        }
    }

    let up = out.section("up").unwrap();
    assert!(
        up.contains("-a -f 10 -r 192.168.60.101"),
        "RS1 not restored:\n{up}"
    );
    for c in ["c1", "c2"] {
        for port in [80, 22] {
            // Persistence keeps both clients where the outage sent them.
            assert_eq!(
                sticky(&p, "up", c, port, 2),
                "RS2",
                "{c}:{port} after RS1 returned"
            );
        }
    }
}
