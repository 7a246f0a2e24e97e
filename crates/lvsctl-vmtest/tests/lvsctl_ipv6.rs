//! A dual-stack director end to end, in one VM boot: `lvsctl apply` of a manifest that mixes
//! the seed's IPv4 PNMPP (fwmark 10 over ports 80 and 22) and an IPv4 NAT service with their
//! IPv6 counterparts: an IPv6 fwmark service (the same mark, 10, in the other family) fed by
//! ip6tables MARK rules on ports 80 and 22 with persistence per client /64, and an IPv6 TCP
//! service with NAT real servers. lvsctl keeps every VIP (both families) on its dummy `lvs0`.
//!
//! The seed topology is IPv4 only; tests/vm/scenarios/ipv6.sh adds an IPv6 network on the
//! same links (every address with `nodad`, so none is ever tentative). The test checks the
//! kernel table (`ipvsadm -S -n`), lvsctl's chain in `ip6tables -t mangle -S` and in the IPv4
//! mangle table, the IPv6 VIPs (`ip -6 addr`, none tentative), real IPv6 requests from the
//! client namespaces (NAT and DR, persistence included), `plan --detailed-exitcode` finding
//! nothing to do, an export that plans no change, an in-place edit (scheduler, weights,
//! netmask, the MARK rule's ports) and two removals that change exactly what they must, and
//! that an ip6tables mangle rule and IPv6 addresses lvsctl did not add stay untouched
//! throughout. The DR real server rs2 gets the IPv6 VIP from `lvsctl realserver`. Last, the
//! whole manifest again with `vip_interface: lvs1`: the VIPs of both families move from lvs0
//! to lvs1, while the addresses put on lvs0 by hand and those `lvsctl realserver` added on
//! the director itself (on `lo`, and on the move manifest's `realserver.interface`) stay.
#![allow(clippy::unwrap_used)]

mod lvsctl_support;

use std::collections::BTreeMap;

use lvsctl_support::{Experiment, Probe, Run, check_marks, ip_addrs, probes, run_director};
use lvsctl_vmtest::skip_requested;

/// The dual-stack manifest.
const DUAL: &str = r#"director:
  vip_interface: lvs0
services:
  # The seed's PNMPP on IPv4: fwmark 10, both ports of a client on one real server.
  - name: web-ssh
    fwmark: 10
    match:
      - {vip: 192.168.6.101, protocol: tcp, ports: [80, 22]}
    scheduler: rr
    persistence: 120
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
  # IPv4 NAT beside it: :8080 on the VIP to the real servers' :80.
  - name: web4-nat
    vip: 192.168.6.101
    port: 8080
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101, port: 80, forward: nat}
      - {address: 192.168.60.102, port: 80, forward: nat}
  # PNMPP on IPv6: the same mark in the other family; one real server per client /64.
  - name: web-ssh6
    fwmark: 10
    family: ipv6
    match:
      - {vip: "2001:db8:6::102", protocol: tcp, ports: [80, 22]}
    scheduler: rr
    persistence: {timeout: 120, netmask: 64}
    real_servers:
      - {address: "2001:db8:60::101"}
      - {address: "2001:db8:60::102"}
  # IPv6 NAT: :8080 on the VIP to the real servers' :80.
  - name: api6
    vip: "2001:db8:6::101"
    port: 8080
    scheduler: rr
    real_servers:
      - {address: "2001:db8:60::101", port: 80, forward: nat}
      - {address: "2001:db8:60::102", port: 80, forward: nat, weight: 2}
realserver:
  vips: ["2001:db8:6::102"]
"#;

/// `text` with `from` replaced by `to`; `from` must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in\n{text}");
    text.replacen(from, to, 1)
}

/// In-place edits only: api6's scheduler and a weight, web-ssh6's netmask, a weight and the
/// ports its MARK rule marks.
fn edited() -> String {
    let mut m = replace_once(
        DUAL,
        "port: 8080\n    scheduler: rr\n    real_servers:\n      - {address: \"2001",
        "port: 8080\n    scheduler: wrr\n    real_servers:\n      - {address: \"2001",
    );
    m = replace_once(&m, "nat, weight: 2}", "nat, weight: 3}");
    m = replace_once(&m, "netmask: 64}", "netmask: 48}");
    m = replace_once(
        &m,
        "ports: [80, 22]}\n    scheduler: rr\n    persistence: {",
        "ports: [80, 22, 8080]}\n    scheduler: rr\n    persistence: {",
    );
    replace_once(
        &m,
        "- {address: \"2001:db8:60::101\"}",
        "- {address: \"2001:db8:60::101\", weight: 2}",
    )
}

/// `manifest` without the service named `name`: its block from the comment line above it to
/// the next service's comment line (or `realserver:`).
fn without(manifest: &str, name: &str) -> String {
    let at = manifest
        .find(&format!("\n  - name: {name}\n"))
        .unwrap_or_else(|| panic!("no service {name}"));
    let start = manifest[..at]
        .rfind("\n  # ")
        .unwrap_or_else(|| panic!("no comment above {name}"))
        + 1;
    let end = ["\n  # ", "\nrealserver:"]
        .iter()
        .filter_map(|m| manifest[at..].find(m))
        .min()
        .map_or(manifest.len(), |i| at + i + 1);
    format!("{}{}", &manifest[..start], &manifest[end..])
}

const SCRIPT: &str = r#"
. /opt/scenarios/ipv6.sh
ipv6_topology_up || { echo "the ipv6 topology failed"; exit 1; }
cat >/tmp/dual.yaml <<'EOF'
@DUAL@EOF
cat >/tmp/edit.yaml <<'EOF'
@EDIT@EOF
cat >/tmp/rm1.yaml <<'EOF'
@RM1@EOF
cat >/tmp/rm2.yaml <<'EOF'
@RM2@EOF
cat >/tmp/move.yaml <<'EOF'
@MOVE@EOF
cat >/tmp/rslo.yaml <<'EOF'
@RSLO@EOF

# The DR VIP on rs2 comes from lvsctl realserver (rs1 keeps the topology's).
ip -n rs2 -6 addr del $VIP6_DR/128 dev lo
cmd rs2.realserver ip netns exec rs2 /opt/lvsctl realserver -f /tmp/dual.yaml
cmd rs2.realserver-again ip netns exec rs2 /opt/lvsctl realserver -f /tmp/dual.yaml
vm_section rs2.lo ip -n rs2 -6 -o addr show dev lo

# The operator's own ip6tables mangle rules, before lvsctl ever runs.
ip6tables -t mangle -A PREROUTING -p udp --dport 53 -j MARK --set-mark 99
ip6tables -t mangle -A PREROUTING -d $VIP6_DR/128 -p tcp --dport 443 -j MARK --set-mark 7
snap6 before

cmd apply /opt/lvsctl apply -f /tmp/dual.yaml
snap6 applied
vm_section applied.addr4 ip -4 -o addr show dev lvs0
vm_section applied.tentative ip -6 -o addr show dev lvs0 tentative
cmd plan /opt/lvsctl plan --detailed-exitcode -f /tmp/dual.yaml
phase fwmark6
probe6_rounds 2 $VIP6_DR c1:80 c2:80 c2:22 c1:22
phase nat6
probe6_rounds 2 $VIP6_NAT c1:8080 c2:8080
@TRAFFIC4@
phase nat4
probe_rounds 2 c1:8080 c2:8080
phase none

# IPv6 addresses the operator puts on lvs0 by hand: lvsctl must keep them.
ip -6 addr add 2001:db8:6::200/128 dev lvs0 nodad
ip -6 addr add 2001:db8:99::1/64 dev lvs0 nodad
vm_section foreign.addr6 ip -6 -o addr show dev lvs0 scope global
cmd plan-foreign /opt/lvsctl plan --detailed-exitcode -f /tmp/dual.yaml
cmd export /opt/lvsctl export
cp /tmp/cmd/export.out /tmp/exported.yaml
cmd plan-export /opt/lvsctl plan --detailed-exitcode -f /tmp/exported.yaml
cmd snapshot /opt/lvsctl export --state
cp /tmp/cmd/snapshot.out /tmp/snapshot.json
cmd plan-state /opt/lvsctl plan --detailed-exitcode --state /tmp/snapshot.json -f /tmp/dual.yaml

cmd edit /opt/lvsctl apply -f /tmp/edit.yaml
snap6 edited
cmd edit.plan /opt/lvsctl plan --detailed-exitcode -f /tmp/edit.yaml
phase edited-fwmark6
probe6_rounds 2 $VIP6_DR c1:80 c2:80 c2:22 c1:22
phase edited-nat6
probe6_rounds 2 $VIP6_NAT c1:8080 c2:8080
phase none

cmd rm1 /opt/lvsctl apply -f /tmp/rm1.yaml
snap6 rm1
cmd rm1.plan /opt/lvsctl plan --detailed-exitcode -f /tmp/rm1.yaml
cmd rm2 /opt/lvsctl apply -f /tmp/rm2.yaml
snap6 rm2
cmd rm2.plan /opt/lvsctl plan --detailed-exitcode -f /tmp/rm2.yaml
@TRAFFIC4_AFTER@

# vip_interface lvs0 -> lvs1. The node is a real server too: lvsctl realserver stamps its
# VIPs on lo and on rsx0 (move.yaml's realserver.interface) the way lvsctl stamps the
# director's; those are not the director's to move.
cmd back /opt/lvsctl apply -f /tmp/dual.yaml
ip addr add 192.168.6.200/32 dev lvs0
ip link add rsx0 type dummy
cmd move.rs-lo /opt/lvsctl realserver -f /tmp/rslo.yaml
cmd move.rs-rsx0 /opt/lvsctl realserver -f /tmp/move.yaml
cmd move /opt/lvsctl apply -f /tmp/move.yaml
vm_section move.lvs0 ip -o addr show dev lvs0 scope global
vm_section move.lvs1 ip -o addr show dev lvs1 scope global
vm_section move.lo ip -o addr show dev lo scope global
vm_section move.rsx0 ip -o addr show dev rsx0 scope global
cmd move.plan /opt/lvsctl plan --detailed-exitcode -f /tmp/move.yaml
exit 0
"#;

/// `ipvsadm -S -n` of the IPv4 services, which no step changes.
const IPVS4: &str = "-A -t 192.168.6.101:8080 -s rr\n\
    -a -t 192.168.6.101:8080 -r 192.168.60.101:80 -m -w 1\n\
    -a -t 192.168.6.101:8080 -r 192.168.60.102:80 -m -w 1\n";
const IPVS4_FWMARK: &str = "-A -f 10 -s rr -p 120\n\
    -a -f 10 -r 192.168.60.101:0 -g -w 1\n\
    -a -f 10 -r 192.168.60.102:0 -g -w 1\n";

/// `ipvsadm -S -n` of the whole director: the IPv4 services, api6 with `(scheduler, weight of
/// its second real server)` when it is there, and web-ssh6 with `(netmask, weight of its first
/// real server)` when it is there.
fn ipvsadm(api6: Option<(&str, u32)>, web_ssh6: Option<(u8, u32)>) -> String {
    let mut out = String::from(IPVS4);
    if let Some((scheduler, weight)) = api6 {
        out.push_str(&format!(
            "-A -t [2001:db8:6::101]:8080 -s {scheduler}\n\
             -a -t [2001:db8:6::101]:8080 -r [2001:db8:60::101]:80 -m -w 1\n\
             -a -t [2001:db8:6::101]:8080 -r [2001:db8:60::102]:80 -m -w {weight}\n"
        ));
    }
    out.push_str(IPVS4_FWMARK);
    if let Some((netmask, weight)) = web_ssh6 {
        out.push_str(&format!(
            "-A -f 10 -6 -s rr -p 120 -M {netmask}\n\
             -a -f 10 -6 -r [2001:db8:60::101]:0 -g -w {weight}\n\
             -a -f 10 -6 -r [2001:db8:60::102]:0 -g -w 1\n"
        ));
    }
    out
}

/// The mangle tables after snapshot `name`: lvsctl's IPv4 chain marks what the seed's PNMPP
/// marks (and nothing else in the IPv4 table changed), and `ip6tables -t mangle -S` is
/// [`mangle6`] of `ports`.
fn check_mangle(run: &Run, name: &str, ports: Option<&str>) {
    check_marks(
        Experiment::Pnmpp,
        &run.mangle("before"),
        &run.mangle(name),
        name,
    );
    assert_eq!(
        run.section(&format!("{name}.mangle6")),
        mangle6(ports),
        "{name}"
    );
}

/// `ip6tables -t mangle -S`: the policies, lvsctl's chain and jumps when `rule` is given (its
/// one rule), and the operator's two rules.
fn mangle6(rule: Option<&str>) -> String {
    let mut out = String::from(
        "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n\
         -P POSTROUTING ACCEPT\n",
    );
    if rule.is_some() {
        out.push_str("-N LVSCTL-MARK\n-A PREROUTING -j LVSCTL-MARK\n");
    }
    out.push_str(
        "-A PREROUTING -p udp -m udp --dport 53 -j MARK --set-xmark 0x63/0xffffffff\n\
         -A PREROUTING -d 2001:db8:6::102/128 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x7/0xffffffff\n",
    );
    if let Some(rule) = rule {
        out.push_str("-A OUTPUT -j LVSCTL-MARK\n");
        out.push_str(&format!(
            "-A LVSCTL-MARK -d 2001:db8:6::102/128 -p tcp -m multiport --dports {rule} \
             -m comment --comment \"lvsctl:web-ssh6\" -j MARK --set-xmark 0xa/0xffffffff\n"
        ));
    }
    out
}

/// A plan's lines as data: blank lines dropped, runs of spaces collapsed, and the manifest
/// location comment (`# /tmp/x.yaml:12:5`) cut, so column padding and line numbers do not
/// matter but every word the operator reads does.
fn plan_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = match l.find("# /tmp/") {
                Some(i) => &l[..i],
                None => l,
            };
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// Asserts that `cmd NAME lvsctl apply ...` exited 0 after printing exactly the plan `want`
/// (as [`plan_lines`] reads it).
fn expect_plan(run: &Run, name: &str, want: &[&str]) {
    run.expect_status(name, 0);
    assert_eq!(plan_lines(&run.stdout(name)), want, "{name}: the plan");
}

/// The real servers that answered the requests to `port` in `phase`, counted; panics on a
/// failed request or an answer from the wrong server's port.
fn answers(all: &[Probe], phase: &str, port: u16) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for p in all.iter().filter(|p| p.phase == phase && p.port == port) {
        let want = if port == 22 {
            format!("{}-22", p.server)
        } else {
            p.server.clone()
        };
        assert!(
            p.server != "FAILED" && p.body == want,
            "{phase}: request failed or answered wrongly: {p:?}\nall: {all:#?}"
        );
        *count.entry(p.server.clone()).or_default() += 1;
    }
    count
}

/// The one real server every request of `phase` (both clients, ports 80 and 22) reached.
fn one_server(all: &[Probe], phase: &str, requests: usize) -> String {
    let mut seen = answers(all, phase, 80);
    for (server, n) in answers(all, phase, 22) {
        *seen.entry(server).or_default() += n;
    }
    assert_eq!(
        seen.len(),
        1,
        "{phase}: both clients are in one /64 (netmask) and both ports carry one mark, so \
         one real server should take everything: {seen:?}"
    );
    let (server, n) = seen.into_iter().next().unwrap();
    assert_eq!(n, requests, "{phase}: requests answered");
    server
}

fn rs(n: usize) -> String {
    format!("RS{n}")
}

#[test]
fn dual_stack_apply_traffic_edit_and_removal() {
    if skip_requested("dual_stack_apply_traffic_edit_and_removal") {
        return;
    }
    let edit = edited();
    let rm1 = without(&edit, "api6");
    let rm2 = without(&rm1, "web-ssh6");
    assert!(
        rm2.contains("name: web4-nat")
            && !rm2.contains("name: api6")
            && !rm2.contains("name: web-ssh6"),
        "{rm2}"
    );
    let script = SCRIPT
        .replace("@DUAL@", DUAL)
        .replace("@EDIT@", &edit)
        .replace("@RM1@", &rm1)
        .replace("@RM2@", &rm2)
        .replace("@MOVE@", &moved())
        .replace("@RSLO@", RS_LO)
        .replace(
            "@TRAFFIC4@",
            &Experiment::Pnmpp.traffic_script("fwmark4", 1),
        )
        .replace(
            "@TRAFFIC4_AFTER@",
            &Experiment::Pnmpp.traffic_script("fwmark4-after", 1),
        );
    let run = run_director("ipv6", &script);
    let all = probes(&run.0);

    check_realserver(&run);
    check_apply(&run);
    check_traffic(&all);
    check_foreign_and_export(&run);
    check_edit(&run, &all);
    check_removals(&run, &all);
    check_move(&run);
}

/// The director's own `lvsctl realserver` manifest: VIPs on `lo`, no ARP sysctls.
const RS_LO: &str = "realserver:\n  vips: [192.168.6.251, \"2001:db8:6::251\"]\n  arp: false\n";

/// [`DUAL`] with its VIPs on lvs1, and a real-server side on rsx0 (no ARP sysctls).
fn moved() -> String {
    let m = replace_once(DUAL, "vip_interface: lvs0", "vip_interface: lvs1");
    replace_once(
        &m,
        "realserver:\n  vips: [\"2001:db8:6::102\"]\n",
        "realserver:\n  vips: [192.168.6.252, \"2001:db8:6::252\"]\n  interface: rsx0\n  arp: false\n",
    )
}

fn check_realserver(run: &Run) {
    run.expect_status("rs2.realserver", 0);
    let out = run.stdout("rs2.realserver");
    assert!(
        out.lines().any(|l| l == "+ vip 2001:db8:6::102/128 on lo"),
        "lvsctl realserver did not add the IPv6 VIP:\n{out}"
    );
    run.expect_status("rs2.realserver-again", 0);
    assert!(
        run.stdout("rs2.realserver-again")
            .starts_with("No changes."),
        "{}",
        run.stdout("rs2.realserver-again")
    );
    assert_eq!(
        ip_addrs(&run.section("rs2.lo"), "inet6"),
        ["2001:db8:6::102/128", "::1/128"]
    );
}

fn check_apply(run: &Run) {
    expect_plan(
        run,
        "apply",
        &[
            "Symbols: + add",
            "+ vip 192.168.6.101/32 on lvs0",
            "+ vip 2001:db8:6::101/128 on lvs0",
            "+ vip 2001:db8:6::102/128 on lvs0",
            "+ service tcp/192.168.6.101:8080 scheduler=rr",
            "+ service tcp/[2001:db8:6::101]:8080 scheduler=rr",
            "+ service fwmark/10 scheduler=rr persistence=120s",
            "+ service fwmark/10/ipv6 scheduler=rr persistence=120s netmask=/64",
            "+ dest 192.168.60.101:80 -> tcp/192.168.6.101:8080 fwd=nat weight=1",
            "+ dest 192.168.60.102:80 -> tcp/192.168.6.101:8080 fwd=nat weight=1",
            "+ dest [2001:db8:60::101]:80 -> tcp/[2001:db8:6::101]:8080 fwd=nat weight=1",
            "+ dest [2001:db8:60::102]:80 -> tcp/[2001:db8:6::101]:8080 fwd=nat weight=2",
            "+ dest 192.168.60.101:0 -> fwmark/10 fwd=dr weight=1",
            "+ dest 192.168.60.102:0 -> fwmark/10 fwd=dr weight=1",
            "+ dest [2001:db8:60::101]:0 -> fwmark/10/ipv6 fwd=dr weight=1",
            "+ dest [2001:db8:60::102]:0 -> fwmark/10/ipv6 fwd=dr weight=1",
            "+ mark tcp 192.168.6.101:22,80 -> mark 10 (web-ssh)",
            "+ mark tcp [2001:db8:6::102]:22,80 -> mark 10 (web-ssh6)",
            "Plan: 17 to add, 0 to change, 0 to destroy.",
        ],
    );
    assert_eq!(
        run.ipvsadm("applied"),
        ipvsadm(Some(("rr", 2)), Some((64, 1)))
    );
    // The IPv4 chain: the seed's PNMPP marks; the IPv6 chain: its own rule and jumps, the
    // operator's rules as they were.
    check_mangle(run, "applied", Some("22,80"));
    assert_eq!(run.section("before.mangle6"), mangle6(None), "before");
    assert_eq!(
        ip_addrs(&run.section("applied.addr6"), "inet6"),
        ["2001:db8:6::101/128", "2001:db8:6::102/128"]
    );
    assert_eq!(
        ip_addrs(&run.section("applied.addr4"), "inet"),
        ["192.168.6.101/32"]
    );
    // lvsctl adds IPv6 VIPs without duplicate address detection (a dummy link would skip it
    // anyway, being NOARP, but any other VIP interface would hold each VIP tentative, not
    // answering, for a second or more): none waits as tentative.
    for line in run.section("applied.addr6").lines() {
        assert!(line.contains(" nodad"), "a VIP added with DAD: {line}");
    }
    assert_eq!(run.section("applied.tentative"), "", "tentative VIPs");
    run.expect_no_changes("plan");
}

fn check_traffic(all: &[Probe]) {
    // IPv6 DR through ip6tables marks: persistence per /64 keeps both clients, on both
    // ports, on the real server the first request got (rr would give c2 the other one).
    one_server(all, "fwmark6", 8);
    // IPv6 NAT: rr (weights aside) alternates between the two real servers.
    assert_eq!(
        answers(all, "nat6", 8080),
        BTreeMap::from([(rs(1), 2), (rs(2), 2)]),
        "nat6"
    );
    // The IPv4 services beside them behave as the seed's.
    Experiment::Pnmpp.check_traffic(all, "fwmark4", 1, true);
    assert_eq!(
        answers(all, "nat4", 8080),
        BTreeMap::from([(rs(1), 2), (rs(2), 2)]),
        "nat4"
    );
}

fn check_foreign_and_export(run: &Run) {
    assert_eq!(
        ip_addrs(&run.section("foreign.addr6"), "inet6"),
        [
            "2001:db8:6::101/128",
            "2001:db8:6::102/128",
            "2001:db8:6::200/128",
            "2001:db8:99::1/64"
        ]
    );
    run.expect_no_changes("plan-foreign");
    run.expect_status("export", 0);
    let export = run.stdout("export");
    assert!(
        export.contains("netmask: 64")
            && export.contains("{vip: \"2001:db8:6::102\", protocol: tcp, ports: [22, 80]}"),
        "the export lost IPv6 persistence or the ip6tables rule:\n{export}"
    );
    run.expect_no_changes("plan-export");
    // A snapshot of the dual-stack director reads back as the same state.
    run.expect_status("snapshot", 0);
    run.expect_no_changes("plan-state");
}

fn check_edit(run: &Run, all: &[Probe]) {
    expect_plan(
        run,
        "edit",
        &[
            "Symbols: + add, ~ change in place, - destroy",
            "~ service tcp/[2001:db8:6::101]:8080",
            "~ scheduler: rr -> wrr",
            "~ service fwmark/10/ipv6",
            "~ netmask: /64 -> /48",
            "~ dest [2001:db8:60::102]:80 -> tcp/[2001:db8:6::101]:8080",
            "~ weight: 2 -> 3",
            "~ dest [2001:db8:60::101]:0 -> fwmark/10/ipv6",
            "~ weight: 1 -> 2",
            "- mark tcp [2001:db8:6::102]:22,80 -> mark 10 (web-ssh6) # not in manifest",
            "+ mark tcp [2001:db8:6::102]:22,80,8080 -> mark 10 (web-ssh6)",
            "Plan: 1 to add, 4 to change, 1 to destroy.",
        ],
    );
    assert_eq!(
        run.ipvsadm("edited"),
        ipvsadm(Some(("wrr", 3)), Some((48, 2)))
    );
    check_mangle(run, "edited", Some("22,80,8080"));
    assert_eq!(
        run.section("edited.addr6"),
        run.section("foreign.addr6"),
        "the edit changed the IPv6 addresses"
    );
    run.expect_no_changes("edit.plan");
    // Still one real server for the /48 (both clients); wrr 1:3 over one full round.
    one_server(all, "edited-fwmark6", 8);
    assert_eq!(
        answers(all, "edited-nat6", 8080),
        BTreeMap::from([(rs(1), 1), (rs(2), 3)]),
        "edited-nat6: wrr with weights 1 and 3"
    );
}

fn check_removals(run: &Run, all: &[Probe]) {
    // api6 goes with its VIP, nothing else.
    expect_plan(
        run,
        "rm1",
        &[
            "Symbols: - destroy",
            "- service tcp/[2001:db8:6::101]:8080 # not in manifest",
            "- vip 2001:db8:6::101/128 on lvs0 # not in manifest",
            "Plan: 0 to add, 0 to change, 2 to destroy.",
        ],
    );
    assert_eq!(run.ipvsadm("rm1"), ipvsadm(None, Some((48, 2))));
    check_mangle(run, "rm1", Some("22,80,8080"));
    assert_eq!(
        ip_addrs(&run.section("rm1.addr6"), "inet6"),
        [
            "2001:db8:6::102/128",
            "2001:db8:6::200/128",
            "2001:db8:99::1/64"
        ]
    );
    run.expect_no_changes("rm1.plan");

    // The last IPv6 service: its MARK rule (and with it the whole ip6tables chain and its
    // jumps), the service and its VIP go; the operator's rules and addresses stay, and the
    // IPv4 side is untouched.
    expect_plan(
        run,
        "rm2",
        &[
            "Symbols: - destroy",
            "- mark tcp [2001:db8:6::102]:22,80,8080 -> mark 10 (web-ssh6) # not in manifest",
            "- service fwmark/10/ipv6 # not in manifest",
            "- vip 2001:db8:6::102/128 on lvs0 # not in manifest",
            "Plan: 0 to add, 0 to change, 3 to destroy.",
        ],
    );
    assert_eq!(run.ipvsadm("rm2"), ipvsadm(None, None));
    check_mangle(run, "rm2", None);
    assert_eq!(
        ip_addrs(&run.section("rm2.addr6"), "inet6"),
        ["2001:db8:6::200/128", "2001:db8:99::1/64"]
    );
    run.expect_no_changes("rm2.plan");
    Experiment::Pnmpp.check_traffic(all, "fwmark4-after", 1, false);
}

fn check_move(run: &Run) {
    run.expect_status("back", 0);
    run.expect_status("move.rs-lo", 0);
    run.expect_status("move.rs-rsx0", 0);
    expect_plan(
        run,
        "move",
        &[
            "Symbols: + add, - destroy",
            "+ vip 192.168.6.101/32 on lvs1",
            "+ vip 2001:db8:6::101/128 on lvs1",
            "+ vip 2001:db8:6::102/128 on lvs1",
            "- vip 192.168.6.101/32 on lvs0 # not on vip_interface lvs1",
            "- vip 2001:db8:6::101/128 on lvs0 # not on vip_interface lvs1",
            "- vip 2001:db8:6::102/128 on lvs0 # not on vip_interface lvs1",
            "Plan: 3 to add, 0 to change, 3 to destroy.",
        ],
    );
    let lvs1 = run.section("move.lvs1");
    assert_eq!(ip_addrs(&lvs1, "inet"), ["192.168.6.101/32"], "{lvs1}");
    assert_eq!(
        ip_addrs(&lvs1, "inet6"),
        ["2001:db8:6::101/128", "2001:db8:6::102/128"],
        "{lvs1}"
    );
    // Only what was put there by hand is left on lvs0.
    let lvs0 = run.section("move.lvs0");
    assert_eq!(ip_addrs(&lvs0, "inet"), ["192.168.6.200/32"], "{lvs0}");
    assert_eq!(
        ip_addrs(&lvs0, "inet6"),
        ["2001:db8:6::200/128", "2001:db8:99::1/64"],
        "{lvs0}"
    );
    // The real-server side's VIPs on this node stay where lvsctl realserver put them.
    let lo = run.section("move.lo");
    assert_eq!(ip_addrs(&lo, "inet"), ["192.168.6.251/32"], "{lo}");
    assert_eq!(ip_addrs(&lo, "inet6"), ["2001:db8:6::251/128"], "{lo}");
    let rsx0 = run.section("move.rsx0");
    assert_eq!(ip_addrs(&rsx0, "inet"), ["192.168.6.252/32"], "{rsx0}");
    assert_eq!(ip_addrs(&rsx0, "inet6"), ["2001:db8:6::252/128"], "{rsx0}");
    run.expect_no_changes("move.plan");
}
