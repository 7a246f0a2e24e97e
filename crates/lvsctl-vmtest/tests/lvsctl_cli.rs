//! lvsctl's commands against the real kernel in the VM, beyond applying the examples:
//! `export` -> `apply` and `import --from ipvsadm` -> `apply` round trips (one boot), and the
//! mid-way failure path with a scheduler module that is really missing, VIPs on a dummy
//! interface, and `lvsctl realserver` in a real server's namespace (another boot).
#![allow(clippy::unwrap_used)]

mod lvsctl_support;

use lvsctl_support::{
    Experiment, Run, expected, has_lvsctl_chain, ip_addrs, run_director, save_lines, sticky,
};
use lvsctl_vmtest::skip_requested;

/// Per example: apply it, export, check the export plans no change, flush the director by
/// hand, apply the export and send traffic; then run the seed's own commands, import their
/// real `ipvsadm -S -n`, validate the import, and apply it to an empty table. The other
/// export formats (JSON, `--state` snapshot) and a second apply of the import run for
/// PNMPP only, the richest example: every lvsctl run costs 1-3 s of emulated CPU.
fn round_trip_script(exp: Experiment) -> String {
    let extras = exp == Experiment::Pnmpp;
    let formats = if extras {
        "cmd $exp.export-json /opt/lvsctl export --output json
         cp /tmp/cmd/$exp.export-json.out /tmp/$exp.exported.json
         cmd $exp.plan-json /opt/lvsctl plan --detailed-exitcode -f /tmp/$exp.exported.json
         cmd $exp.snapshot /opt/lvsctl export --state
         cp /tmp/cmd/$exp.snapshot.out /tmp/$exp.snapshot.json
         cmd $exp.plan-state /opt/lvsctl plan --detailed-exitcode --state /tmp/$exp.snapshot.json -f /opt/examples/$exp.yaml
"
    } else {
        ""
    };
    let import_again = if extras {
        "cmd $exp.import-again /opt/lvsctl apply -f /tmp/$exp.imported.yaml
"
    } else {
        ""
    };
    format!(
        r#"
exp={name}
flush_director
cmd $exp.apply /opt/lvsctl apply -f /opt/examples/$exp.yaml
snap $exp.applied
cmd $exp.export /opt/lvsctl export
cp /tmp/cmd/$exp.export.out /tmp/$exp.exported.yaml
cmd $exp.plan-yaml /opt/lvsctl plan --detailed-exitcode -f /tmp/$exp.exported.yaml
{formats}flush_director
snap $exp.flushed
cmd $exp.reapply /opt/lvsctl apply -f /tmp/$exp.exported.yaml
snap $exp.reapplied
{traffic}
phase none

flush_director
iptables -t mangle -F PREROUTING
. /opt/seed/$exp.sh
ipvsadm -S -n >/tmp/$exp.dump
vm_section $exp.dump cat /tmp/$exp.dump
cmd $exp.import /opt/lvsctl import --from ipvsadm /tmp/$exp.dump
cp /tmp/cmd/$exp.import.out /tmp/$exp.imported.yaml
cmd $exp.validate /opt/lvsctl validate -f /tmp/$exp.imported.yaml
ipvsadm -C
iptables -t mangle -F PREROUTING
cmd $exp.import-apply /opt/lvsctl apply -f /tmp/$exp.imported.yaml
snap $exp.imported
{import_again}"#,
        name = exp.name(),
        traffic = exp.traffic_script(&format!("{}.exported", exp.name()), 1),
    )
}

#[test]
fn export_and_import_round_trip_through_the_kernel() {
    if skip_requested("export_and_import_round_trip_through_the_kernel") {
        return;
    }
    let mut body = String::from("vip_on_director\n");
    for exp in Experiment::ALL {
        body.push_str(&round_trip_script(exp));
    }
    body.push_str("exit 0\n");
    let run = run_director("round-trip", &body);
    let probes = run.probes();
    for exp in Experiment::ALL {
        let n = exp.name();
        let name = |step: &str| format!("{n}.{step}");
        run.expect_status(&name("apply"), 0);
        assert_eq!(
            run.ipvsadm(&name("applied")),
            expected(exp, "ipvsadm"),
            "{n}"
        );

        // The export is a manifest of exactly this state, in each format.
        run.expect_status(&name("export"), 0);
        let yaml = run.stdout(&name("export"));
        assert!(yaml.contains("\nservices:\n"), "{n}: export:\n{yaml}");
        if exp == Experiment::Pnmpp {
            // The MARK rule comes back as the service's match, named after its comment.
            assert!(
                yaml.contains("name: web-ssh")
                    && yaml.contains("match:")
                    && yaml.contains("{vip: 192.168.6.101, protocol: tcp, ports: [22, 80]}"),
                "{n}: export lost the MARK rule:\n{yaml}"
            );
        }
        run.expect_no_changes(&name("plan-yaml"));
        if exp == Experiment::Pnmpp {
            run.expect_status(&name("export-json"), 0);
            assert!(
                run.stdout(&name("export-json"))
                    .trim_start()
                    .starts_with('{'),
                "{n}: export --output json is not JSON"
            );
            run.expect_no_changes(&name("plan-json"));
            run.expect_status(&name("snapshot"), 0);
            run.expect_no_changes(&name("plan-state"));
        }

        // Flushed by hand, then rebuilt from the export alone.
        assert_eq!(run.ipvsadm(&name("flushed")), "", "{n}: flush");
        assert!(
            !has_lvsctl_chain(&run.mangle(&name("flushed"))),
            "{n}: flush"
        );
        run.expect_status(&name("reapply"), 0);
        assert_eq!(
            run.ipvsadm(&name("reapplied")),
            run.ipvsadm(&name("applied")),
            "{n}: apply of the export"
        );
        assert_eq!(
            save_lines(&run.mangle(&name("reapplied"))),
            save_lines(&run.mangle(&name("applied"))),
            "{n}: the mangle table after applying the export"
        );
        exp.check_traffic(&probes, &name("exported"), 1, true);

        // The seed's commands' real dump, imported.
        let dump = run.section(&name("dump"));
        assert_eq!(dump, expected(exp, "ipvsadm"), "{n}: the seed's dump");
        run.expect_status(&name("import"), 0);
        let imported = run.stdout(&name("import"));
        assert!(
            imported.starts_with("# lvsctl manifest imported from `ipvsadm -S -n` output"),
            "{n}: import header:\n{imported}"
        );
        assert_eq!(
            imported.contains("add a `match:` list"),
            exp == Experiment::Pnmpp,
            "{n}: only fwmark services need the match hint:\n{imported}"
        );
        run.expect_status(&name("validate"), 0);
        let (services, dests) = match exp {
            Experiment::Pcc | Experiment::Pnmpp => (1, 2),
            Experiment::Ppc => (2, 4),
        };
        assert_eq!(
            run.stdout(&name("validate")),
            format!(
                "valid: {services} service(s), {dests} real server(s), 0 MARK rule(s) from 1 file(s)\n"
            ),
            "{n}: validate of the import"
        );
        run.expect_status(&name("import-apply"), 0);
        assert_eq!(
            run.ipvsadm(&name("imported")),
            dump,
            "{n}: applying the imported manifest to an empty table"
        );
        if exp == Experiment::Pnmpp {
            run.expect_no_changes(&name("import-again"));
        }
    }
}

/// A mid-way failure with a real kernel error, VIPs on lvsctl's dummy interface, and the real
/// server side.
const FAILURES_AND_VIPS: &str = r#"
# --- a scheduler that is really missing: module unloaded and its file gone -----------------
cat >/tmp/two.yaml <<'EOF'
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: rr
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
  - name: hashed
    vip: 192.168.6.101
    port: 8080
    scheduler: mh
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
EOF
mh=$(find /lib/modules -name 'ip_vs_mh.ko*')
[[ -n $mh ]] || { echo "no ip_vs_mh module file"; exit 1; }
modprobe -r ip_vs_mh || exit 1
mv "$mh" /tmp/ip_vs_mh.hidden || exit 1
vm_section mh-loaded sh -c 'grep -c "^ip_vs_mh " /proc/modules'
cmd fail /opt/lvsctl apply -f /tmp/two.yaml
snap fail
cmd fail-again /opt/lvsctl apply -f /tmp/two.yaml
snap fail-again
sed 's/scheduler: mh/scheduler: sh/' /tmp/two.yaml >/tmp/two-fixed.yaml
cmd fixed /opt/lvsctl apply -f /tmp/two-fixed.yaml
snap fixed
cmd fixed-again /opt/lvsctl apply -f /tmp/two-fixed.yaml
# web moves to another VIP, on the missing scheduler: its new service cannot be made
cat >/tmp/move.yaml <<'EOF'
services:
  - name: web
    vip: 192.168.6.102
    port: 80
    scheduler: mh
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
  - name: hashed
    vip: 192.168.6.101
    port: 8080
    scheduler: sh
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
EOF
cmd move-fails /opt/lvsctl apply -f /tmp/move.yaml
snap move-fails
mv /tmp/ip_vs_mh.hidden "$mh"
cmd restored /opt/lvsctl apply -f /tmp/two.yaml
snap restored
cmd restored-again /opt/lvsctl apply -f /tmp/two.yaml
ipvsadm -C

# --- director-wide timeouts: plan lists and counts them, a refused apply keeps them, apply ---
# --- sets them -----------------------------------------------------------------------------
ipvsadm -A -t 192.168.6.109:25 -s rr
cat >/tmp/timeouts.yaml <<'EOF'
director:
  timeouts: {tcp: 2h, tcpfin: 90s, udp: 240}
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: rr
    real_servers: [{address: 192.168.60.101}]
EOF
ipvsadm --set 900 120 300
cmd t.plan /opt/lvsctl plan --detailed-exitcode -f /tmp/timeouts.yaml
cmd t.plan-json /opt/lvsctl plan --detailed-exitcode --output json -f /tmp/timeouts.yaml
cmd t.refused /opt/lvsctl apply -f /tmp/timeouts.yaml
vm_section t.after-refused ipvsadm -L --timeout
cmd t.apply /opt/lvsctl apply --allow-destroy -f /tmp/timeouts.yaml
vm_section t.after ipvsadm -L --timeout
cmd t.plan-again /opt/lvsctl plan --detailed-exitcode -f /tmp/timeouts.yaml
ipvsadm -C

# --- the real-server side, in each RS's namespace: a second VIP ------------------------------
cat >/tmp/rs.yaml <<'EOF'
realserver:
  vips: [192.168.6.101, 192.168.6.102]
EOF
for rs in rs1 rs2; do
    # Undo the topology's ARP settings, so lvsctl has them to set.
    ip netns exec $rs sh -c 'for i in all lo; do
        echo 0 >/proc/sys/net/ipv4/conf/$i/arp_ignore
        echo 0 >/proc/sys/net/ipv4/conf/$i/arp_announce
    done'
    cmd $rs.realserver ip netns exec $rs /opt/lvsctl realserver -f /tmp/rs.yaml
    cmd $rs.realserver-again ip netns exec $rs /opt/lvsctl realserver -f /tmp/rs.yaml
    vm_section $rs.lo ip -n $rs -4 -o addr show dev lo
    vm_section $rs.arp ip netns exec $rs sh -c 'cd /proc/sys/net/ipv4/conf && grep . all/arp_ignore all/arp_announce lo/arp_ignore lo/arp_announce'
done

# --- VIPs on the director: lvsctl's dummy lvs0 (no vip_on_director here) -------------------
cat >/tmp/vips.yaml <<'EOF'
director:
  vip_interface: lvs0
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: rr
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
  - name: web2
    vip: 192.168.6.102
    port: 80
    scheduler: rr
    real_servers: [{address: 192.168.60.101}, {address: 192.168.60.102}]
EOF
vm_section vips.before sh -c 'ip -4 -o addr show | grep -c "192\.168\.6\."'
cmd vips /opt/lvsctl apply -f /tmp/vips.yaml
vm_section vips.lvs0 ip -4 -o addr show dev lvs0
vm_section vips.link ip -d -o link show dev lvs0
phase vip101
probe_rounds 1 c1:80 c2:80
VIP=192.168.6.102
phase vip102
probe_rounds 1 c1:80 c2:80
VIP=192.168.6.101
ip addr add 10.99.0.1/32 dev lvs0
cmd vips-again /opt/lvsctl apply -f /tmp/vips.yaml
sed '/name: web2/,$d' /tmp/vips.yaml >/tmp/vips-one.yaml
cmd vips-one /opt/lvsctl apply -f /tmp/vips-one.yaml
vm_section vips-one.lvs0 ip -4 -o addr show dev lvs0
snap vips-one
cmd vips-one-again /opt/lvsctl apply -f /tmp/vips-one.yaml
phase vip101-after
probe_rounds 1 c1:80

# --- the real server drops the VIP it added, and only that --------------------------------
cat >/tmp/rs-one.yaml <<'EOF'
realserver:
  vips: [192.168.6.101]
EOF
cmd rs1.realserver-one ip netns exec rs1 /opt/lvsctl realserver -f /tmp/rs-one.yaml
vm_section rs1.lo-one ip -n rs1 -4 -o addr show dev lo
exit 0
"#;

/// The `inet` addresses (`a.b.c.d/n`) in `ip -o addr show` output, sorted.
fn inet_addrs(ip_o_addr: &str) -> Vec<String> {
    ip_addrs(ip_o_addr, "inet")
}

/// The lines of an apply's stderr from `error: ` on (the report of a failed step).
fn error_report(stderr: &str) -> String {
    stderr
        .find("error: ")
        .map(|i| stderr[i..].to_string())
        .unwrap_or_default()
}

fn check_failure(run: &Run) {
    assert_eq!(
        run.section("mh-loaded").trim(),
        "0",
        "ip_vs_mh still loaded"
    );

    // The first apply stops at the service whose scheduler the kernel cannot load.
    run.expect_status("fail", 1);
    let report = error_report(&run.stderr("fail"));
    let first = report.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: apply step ")
            && first.contains("(add service tcp/192.168.6.101:8080) failed")
            && first.contains("scheduler \"mh\" is not available")
            && first.contains("ENOENT"),
        "the failed step is not named:\n{report}"
    );
    assert!(
        report.contains("already done (")
            && report.contains("\n  add service tcp/192.168.6.101:80\n")
            && report.contains("fix the cause and run apply again"),
        "the done steps are not listed:\n{report}"
    );
    // The first service is in the kernel; the failed one is not.
    //
    // Known gap (reported, not asserted): the kernel backend pipelines IPVS requests, so the
    // real-server adds of :80 that were already in flight when the add of :8080 failed are
    // done too, while the report lists only the steps before the failed one. Whether they
    // are there is not checked here; the next apply's exact state below is.
    let after = run.ipvsadm("fail");
    assert!(
        after.starts_with("-A -t 192.168.6.101:80 -s rr\n"),
        "the first service is gone:\n{after}"
    );
    assert!(
        !after.contains(":8080"),
        "the failed service exists:\n{after}"
    );

    // Applying again continues from the kernel's state and stops at the same cause.
    run.expect_status("fail-again", 1);
    let again = error_report(&run.stderr("fail-again"));
    assert!(
        again.contains("(add service tcp/192.168.6.101:8080) failed")
            && !again.contains("add service tcp/192.168.6.101:80\n"),
        "the second apply should only retry what is missing:\n{again}"
    );
    assert_eq!(
        run.ipvsadm("fail-again"),
        "-A -t 192.168.6.101:80 -s rr\n\
         -a -t 192.168.6.101:80 -r 192.168.60.101:80 -g -w 1\n\
         -a -t 192.168.6.101:80 -r 192.168.60.102:80 -g -w 1\n"
    );

    // Fixed manifest: converges; then No changes.
    run.expect_status("fixed", 0);
    assert_eq!(
        run.ipvsadm("fixed"),
        "-A -t 192.168.6.101:80 -s rr\n\
         -a -t 192.168.6.101:80 -r 192.168.60.101:80 -g -w 1\n\
         -a -t 192.168.6.101:80 -r 192.168.60.102:80 -g -w 1\n\
         -A -t 192.168.6.101:8080 -s sh\n\
         -a -t 192.168.6.101:8080 -r 192.168.60.101:8080 -g -w 1\n\
         -a -t 192.168.6.101:8080 -r 192.168.60.102:8080 -g -w 1\n"
    );
    run.expect_no_changes("fixed-again");

    // A replacement whose new service fails: the requests are pipelined, but the delete of
    // the old service is only sent once the new one is in, so the old one keeps serving.
    run.expect_status("move-fails", 1);
    let report = error_report(&run.stderr("move-fails"));
    assert!(
        report.contains("(add service tcp/192.168.6.102:80) failed")
            && !report.contains("delete service"),
        "the failed replacement:\n{report}"
    );
    assert_eq!(
        run.ipvsadm("move-fails"),
        run.ipvsadm("fixed"),
        "a failed replacement must leave the old service as it was"
    );

    // The module back: the original manifest applies (a scheduler change in place).
    run.expect_status("restored", 0);
    assert_eq!(
        run.ipvsadm("restored"),
        run.ipvsadm("fixed").replace("8080 -s sh", "8080 -s mh")
    );
    run.expect_no_changes("restored-again");
}

/// `director.timeouts`: listed by `plan` and counted by `--detailed-exitcode` (JSON keeps them
/// out of the document but still counts them), untouched by an apply the wipe guard refuses
/// (the only service it would delete is a stranger's), set by `apply`.
fn check_timeouts(run: &Run) {
    let before = "Timeout (tcp tcpfin udp): 900 120 300";
    run.expect_status("t.plan", 2);
    let plan = run.stdout("t.plan");
    for line in [
        "~ ipvs timeout tcp: 900s -> 7200s",
        "~ ipvs timeout tcpfin: 120s -> 90s",
        "~ ipvs timeout udp: 300s -> 240s",
    ] {
        assert!(plan.contains(line), "plan lacks `{line}`:\n{plan}");
    }
    run.expect_status("t.plan-json", 2);
    let json = run.stdout("t.plan-json");
    assert!(!json.contains("ipvs timeout"), "JSON plan:\n{json}");
    run.expect_status("t.refused", 3);
    let refused = run.stderr("t.refused");
    assert!(
        refused.contains("adds 1 other service(s)") && refused.contains("nothing was changed"),
        "{refused}"
    );
    assert!(
        run.section("t.after-refused").contains(before),
        "a refused apply changed the timeouts:\n{}",
        run.section("t.after-refused")
    );
    run.expect_status("t.apply", 0);
    assert!(
        run.section("t.after")
            .contains("Timeout (tcp tcpfin udp): 7200 90 240"),
        "{}",
        run.section("t.after")
    );
    run.expect_status("t.plan-again", 0);
}

fn check_realserver(run: &Run) {
    for rs in ["rs1", "rs2"] {
        run.expect_status(&format!("{rs}.realserver"), 0);
        let out = run.stdout(&format!("{rs}.realserver"));
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "+ vip 192.168.6.102/32 on lo",
                "Applied: 5 change(s).",
                "~ sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
                "~ sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
                "~ sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
                "~ sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1",
            ],
            "{rs}: lvsctl realserver output"
        );
        run.expect_status(&format!("{rs}.realserver-again"), 0);
        assert_eq!(
            run.stdout(&format!("{rs}.realserver-again")),
            "No changes. This real server is ready for DR.\n"
        );
        assert_eq!(
            inet_addrs(&run.section(&format!("{rs}.lo"))),
            ["127.0.0.1/8", "192.168.6.101/32", "192.168.6.102/32"],
            "{rs}: addresses on lo"
        );
        assert_eq!(
            run.section(&format!("{rs}.arp")),
            "all/arp_ignore:1\nall/arp_announce:2\nlo/arp_ignore:1\nlo/arp_announce:2\n",
            "{rs}: ARP sysctls"
        );
    }
    // Dropping a VIP from the manifest removes the one lvsctl added, never the topology's.
    run.expect_status("rs1.realserver-one", 0);
    assert_eq!(
        run.stdout("rs1.realserver-one"),
        "- vip 192.168.6.102/32 on lo  # not in manifest\nApplied: 1 change(s).\n"
    );
    assert_eq!(
        inet_addrs(&run.section("rs1.lo-one")),
        ["127.0.0.1/8", "192.168.6.101/32"]
    );
}

fn check_vips(run: &Run) {
    assert_eq!(
        run.section("vips.before").trim(),
        "0",
        "a VIP on the director before apply"
    );
    run.expect_status("vips", 0);
    assert_eq!(
        inet_addrs(&run.section("vips.lvs0")),
        ["192.168.6.101/32", "192.168.6.102/32"]
    );
    let link = run.section("vips.link");
    assert!(
        link.contains(" dummy "),
        "lvs0 is not a dummy link:\n{link}"
    );
    // Both VIPs answer through the director: rr without persistence spreads the two
    // clients over both real servers, which hold the second VIP thanks to `realserver`.
    let p = run.probes();
    for phase in ["vip101", "vip102"] {
        let c1 = sticky(&p, phase, "c1", 80, 1);
        let c2 = sticky(&p, phase, "c2", 80, 1);
        assert_ne!(c1, c2, "{phase}: rr did not spread the clients");
    }
    // The address added by hand is not lvsctl's: no change planned for it.
    run.expect_no_changes("vips-again");
    run.expect_status("vips-one", 0);
    let plan = run.stdout("vips-one");
    assert!(
        plan.contains("192.168.6.102") && !plan.contains("10.99.0.1"),
        "the plan should remove web2 and its VIP only:\n{plan}"
    );
    assert_eq!(
        inet_addrs(&run.section("vips-one.lvs0")),
        ["10.99.0.1/32", "192.168.6.101/32"],
        "removing web2 removes its VIP and keeps the hand-made address"
    );
    assert_eq!(
        run.ipvsadm("vips-one"),
        "-A -t 192.168.6.101:80 -s rr\n\
         -a -t 192.168.6.101:80 -r 192.168.60.101:80 -g -w 1\n\
         -a -t 192.168.6.101:80 -r 192.168.60.102:80 -g -w 1\n"
    );
    run.expect_no_changes("vips-one-again");
    sticky(&p, "vip101-after", "c1", 80, 1);
}

#[test]
fn midway_failure_vips_and_realserver() {
    if skip_requested("midway_failure_vips_and_realserver") {
        return;
    }
    let run = run_director("failure-vips", FAILURES_AND_VIPS);
    check_timeouts(&run);
    check_failure(&run);
    check_realserver(&run);
    check_vips(&run);
}
