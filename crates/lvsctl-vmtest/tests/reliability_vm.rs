//! Faults and load against the real kernel (issue 8, "Faults" and "Load"), in one VM boot with
//! the seed topology (clients c1/c2, DR real servers rs1/rs2 serving :80 and :22):
//!
//! 1. `kill -9` of `lvsctl apply` at random moments, alternating two manifests that share the
//!    service tcp/VIP:80: after each kill, the next apply converges; all along, client c1 sends
//!    requests to the shared service and a watcher samples the IPVS table: no request fails,
//!    the service is never missing.
//! 2. `kill -9` of the daemon (`lvsctl run`): the table, the MARK rules and the VIPs are the
//!    same right after the kill and after a restart (weights and real servers untouched); then
//!    kills at random moments while the manifest changes, each followed by a restart that
//!    converges. Clients c1 (:80) and c2 (:22) send requests throughout.
//! 3. Load: the daemon applies a manifest change every second (a weight toggled, a third
//!    service added and removed) while both clients keep sending requests to the two services
//!    that stay: zero failed requests.
//!
//! 0. Before all that, `lvsctl apply` of a manifest with VIPs and MARK rules under `setpriv` with
//!    CAP_NET_ADMIN as the only capability (bounding, inheritable and ambient sets), as the
//!    systemd unit runs it, with iptables-nft and iptables-legacy.
//!
//! Default: 8 apply kills, 3 daemon kills, 15 s of load (about 3.5 minutes of VM time).
//! `LVSCTL_SOAK=1`: 50 apply kills, 20 daemon kills, 60 s of load. Every figure is printed as
//! a `reliability ...` line; RELIABILITY.md quotes them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lvsctl_vmtest::{VmRun, skip_requested, workspace_bin};

fn soak() -> bool {
    std::env::var_os("LVSCTL_SOAK").is_some_and(|v| v == "1")
}

/// The shared service (web, :80) is in both; A also has ssh (:22), B instead changes web's
/// weights, adds a second VIP with a service, and a fwmark service fed by MARK rules.
/// Switching is about a dozen kernel writes of every kind. web keeps its scheduler: the kernel
/// swaps a scheduler with none bound for an RCU grace period (`ip_vs_edit_service`), and a new
/// connection arriving then is refused whoever made the change, so "no request to web fails"
/// would test the kernel, not lvsctl (it failed 1 request in 90 once).
const APPLY_A: &str = "\
director:
  vip_interface: lvs0
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: wrr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
  - name: ssh
    vip: 192.168.6.101
    port: 22
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
";

const APPLY_B: &str = "\
director:
  vip_interface: lvs0
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: wrr
    real_servers:
      - {address: 192.168.60.101, weight: 2}
      - {address: 192.168.60.102, weight: 3}
  - name: web2
    vip: 192.168.6.102
    port: 80
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
  - name: alt
    fwmark: 20
    match:
      - {vip: 192.168.6.101, protocol: tcp, ports: [8080, 8443]}
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
";

/// The daemon's manifest: web (:80) and ssh (:22), health-checked; `{W}` is rs2's weight and
/// `{EXTRA}` optionally a third service.
const DAEMON: &str = "\
director:
  vip_interface: lvs0
services:
  - name: web
    vip: 192.168.6.101
    port: 80
    scheduler: wrr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102, weight: {W}}
    health: {http: {port: 80, path: /.health.html, expect: OK}, interval: 1s, timeout: 500ms}
  - name: ssh
    vip: 192.168.6.101
    port: 22
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
    health: {http: {port: 80, path: /.health.html, expect: OK}, interval: 1s, timeout: 500ms}
{EXTRA}";

// No `\` line continuation here: it would eat the indentation of the first line.
const EXTRA: &str = "  - name: extra
    vip: 192.168.6.101
    port: 8080
    scheduler: rr
    real_servers:
      - {address: 192.168.60.101}
      - {address: 192.168.60.102}
";

fn daemon_manifest(weight: u32, extra: bool) -> String {
    DAEMON
        .replace("{W}", &weight.to_string())
        .replace("{EXTRA}", if extra { EXTRA } else { "" })
}

/// The guest script. Helpers from tests/vm/topology.sh: _seed_in, wait_for, VIP.
const SCRIPT: &str = r#"
set -u
R=/opt/rel
L=/opt/rel/lvsctl
export NO_COLOR=1
chmod 0644 $R/*.yaml
mkdir -p /tmp/rel /etc/lvsctl
say() { echo "reliability $*"; }
die() { echo "reliability FAILED: $*"; exit 1; }
ms_sleep() { sleep "$(printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )))"; }
snapshot() { # the director as the tests compare it
    ipvsadm -S -n | sort
    iptables-save -t mangle | grep '^-A' | sort
    ip -o addr show dev lvs0 2>/dev/null | awk '{print $4}' | sort
}

# traffic NAME CLIENT PORT: requests until /tmp/rel/stop-NAME exists; counts in /tmp/rel/NAME
traffic() {
    local name=$1 c=$2 port=$3 ok=0 fail=0 body
    while [[ ! -e /tmp/rel/stop-$name ]]; do
        if body=$(_seed_in "$c" busybox timeout 5 busybox wget -qO- "http://$VIP:$port/" 2>/dev/null) \
            && [[ $body == RS* ]]; then
            ok=$((ok + 1))
        else
            fail=$((fail + 1))
            echo "failed request at $EPOCHREALTIME" >>/tmp/rel/$name.failures
        fi
        echo "$ok $fail" >/tmp/rel/$name
    done
}
start_traffic() { rm -f /tmp/rel/stop-$1 /tmp/rel/$1 /tmp/rel/$1.failures; traffic "$@" & }
stop_traffic() { # NAME PHASE: stop, wait, report
    touch /tmp/rel/stop-$1
    wait "$2" 2>/dev/null
    local ok fail
    read -r ok fail </tmp/rel/$1 || { ok=0; fail=0; }
    say "traffic $3 $1 sent=$((ok + fail)) ok=$ok failed=$fail"
    [[ -e /tmp/rel/$1.failures ]] && cat /tmp/rel/$1.failures
}

# watch_service: samples /proc/net/ip_vs (no fork per sample) for TCP VIP:80 until stopped
watch_service() {
    local samples=0 missing=0 lines
    while [[ ! -e /tmp/rel/stop-watch ]]; do
        mapfile -t lines </proc/net/ip_vs
        samples=$((samples + 1))
        [[ "${lines[*]}" == *"TCP  C0A80665:0050"* ]] || missing=$((missing + 1))
        echo "$samples $missing" >/tmp/rel/watch
    done
}

# ---- 0. CAP_NET_ADMIN is enough (the systemd unit's CapabilityBoundingSet) ----------------------
for run in nft:net_admin legacy:net_admin legacy:net_admin,+net_raw; do
    ipt=${run%%:*} caps=${run#*:}
    LVSCTL_IPTABLES=$ipt $R/setpriv --bounding-set=-all,+$caps --inh-caps=-all,+$caps \
        --ambient-caps=-all,+$caps --no-new-privs $L apply -q -f $R/b.yaml >/tmp/rel/caps.out 2>&1
    rc=$?
    say "caps iptables=$ipt caps=${caps//+/} apply_status=$rc"
    ((rc == 0)) || cat /tmp/rel/caps.out
    LVSCTL_IPTABLES=$ipt $L apply -q -f $R/empty.yaml --allow-destroy >/dev/null || die "cleanup after the caps test"
done

# ---- 1. kill -9 of lvsctl apply -----------------------------------------------------------
$L apply -q -f $R/a.yaml >/dev/null || die "first apply of a.yaml"
# busybox date has no %N; bash's EPOCHREALTIME is microseconds.
t0=${EPOCHREALTIME/./}; $L apply -q -f $R/b.yaml >/dev/null || die "apply of b.yaml"
$L apply -q -f $R/a.yaml >/dev/null || die "apply of a.yaml"
t2=${EPOCHREALTIME/./}
span=$(( (t2 - t0) / 2000 ))   # one switch, in ms
say "apply switch takes ${span}ms"
start_traffic shared c1 80; tpid=$!
rm -f /tmp/rel/stop-watch; watch_service & wpid=$!
killed=0 finished=0 converged=0
for ((i = 0; i < KILLS; i++)); do
    if ((i % 2 == 0)); then m=$R/b.yaml; else m=$R/a.yaml; fi
    $L apply -q -f $m >/dev/null 2>&1 & pid=$!
    ms_sleep $(( RANDOM % (span + 1) ))
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid; killed=$((killed + 1))
    else
        finished=$((finished + 1))
    fi
    wait $pid 2>/dev/null
    # The next run converges, whatever moment the last one died at.
    if out=$($L apply -q -f $m --lock-timeout 10s 2>&1 >/dev/null); then
        converged=$((converged + 1))
    else
        echo "$out"
    fi
done
$L plan -q -f $m --detailed-exitcode >/dev/null || die "plan after the kill loop shows changes"
stop_traffic shared $tpid kill-apply
touch /tmp/rel/stop-watch; wait $wpid
read -r samples missing </tmp/rel/watch
say "kill-apply rounds=$KILLS killed=$killed finished_first=$finished converged=$converged"
say "watch kill-apply samples=$samples missing=$missing"

# ---- 2. kill -9 of the daemon ---------------------------------------------------------------
$L apply -q -f $R/a.yaml --allow-destroy >/dev/null || die "reset to a.yaml"
cp $R/d-1-0.yaml /etc/lvsctl/director.yaml
start_daemon() {
    $L run -f /etc/lvsctl/ --status-file /tmp/rel/status.json --resync-interval 5s \
        >>/tmp/rel/daemon.log 2>&1 &
    dpid=$!
}
converged_to() { $L plan -q -f "$1" --detailed-exitcode >/dev/null 2>&1; }
start_daemon
wait_for 30 "converged_to /etc/lvsctl/director.yaml" || { tail -30 /tmp/rel/daemon.log; die "the daemon did not converge"; }
start_traffic web c1 80; t1pid=$!
start_traffic ssh c2 22; t2pid=$!
sleep 3
s1=$(snapshot)
kill -9 $dpid; wait $dpid 2>/dev/null
s2=$(snapshot)
start_daemon
sleep 5   # several health intervals and a full pass
s3=$(snapshot)
[[ $s1 == "$s2" ]] && same_kill=yes || same_kill=no
[[ $s1 == "$s3" ]] && same_restart=yes || same_restart=no
say "daemon-kill identical_after_kill=$same_kill identical_after_restart=$same_restart"
if [[ $same_kill != yes || $same_restart != yes ]]; then
    echo "--- before"; echo "$s1"; echo "--- after kill"; echo "$s2"; echo "--- after restart"; echo "$s3"
fi
put() { # WEIGHT EXTRA: replace the daemon's manifest atomically, as config management does
    cp $R/d-$1-$2.yaml /etc/lvsctl/.next.yaml && mv /etc/lvsctl/.next.yaml /etc/lvsctl/director.yaml
}
dkilled=0 dconverged=0
for ((i = 0; i < DAEMON_KILLS; i++)); do
    if ((i % 2 == 0)); then put 3 1; else put 1 0; fi
    ms_sleep $(( RANDOM % 1500 ))
    kill -9 $dpid; wait $dpid 2>/dev/null; dkilled=$((dkilled + 1))
    start_daemon
    if wait_for 30 "converged_to /etc/lvsctl/director.yaml"; then
        dconverged=$((dconverged + 1))
    else
        tail -20 /tmp/rel/daemon.log
    fi
done
say "daemon-kill rounds=$DAEMON_KILLS killed=$dkilled converged_after_restart=$dconverged"
stop_traffic web $t1pid daemon-kill
stop_traffic ssh $t2pid daemon-kill

# ---- 3. load: a manifest change every second -----------------------------------------------
put 1 0
wait_for 30 "converged_to /etc/lvsctl/director.yaml" || die "no convergence before the load phase"
start_traffic web c1 80; t1pid=$!
start_traffic ssh c2 22; t2pid=$!
changes=0 applied=0
for ((s = 0; s < LOAD_SECS; s++)); do
    w=$(( s % 2 == 0 ? 3 : 1 )); x=$(( (s / 2) % 2 == 0 ? 1 : 0 ))
    put $w $x; changes=$((changes + 1))
    sleep 1
    converged_to /etc/lvsctl/director.yaml && applied=$((applied + 1))
done
stop_traffic web $t1pid load
stop_traffic ssh $t2pid load
say "load seconds=$LOAD_SECS changes=$changes converged_within_1s=$applied"
kill -TERM $dpid; wait $dpid
say "daemon exit status $?"
grep -ci 'error' /tmp/rel/daemon.log | sed 's/^/reliability daemon log error lines: /'
grep -i 'error' /tmp/rel/daemon.log | head -20
say done
"#;

#[test]
fn every_manifest_of_the_vm_test_validates() {
    // Checked on the host first: a typo here would cost a VM boot to find.
    let mut all = vec![
        ("a.yaml".to_owned(), APPLY_A.to_owned()),
        ("b.yaml".to_owned(), APPLY_B.to_owned()),
    ];
    for w in [1, 3] {
        for x in [false, true] {
            all.push((format!("d-{w}-{x}.yaml"), daemon_manifest(w, x)));
        }
    }
    for (name, text) in &all {
        let m = lvsctl_model::manifest::parse(name, text)
            .unwrap_or_else(|d| panic!("{name} does not validate:\n{d}\n{text}"));
        assert!(
            m.service_by_name("web").is_some(),
            "{name}: the shared service is missing"
        );
    }
    assert_eq!(
        lvsctl_model::manifest::parse("d", daemon_manifest(1, true))
            .unwrap()
            .services
            .len(),
        3
    );
}

fn figure(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .parse()
        .unwrap()
}

#[test]
fn kill_9_and_load_keep_shared_services_answering() {
    if skip_requested("reliability (kill -9 and load in the VM)") {
        return;
    }
    let (kills, daemon_kills, load_secs) = if soak() { (50, 20, 60) } else { (8, 3, 15) };
    let dir: PathBuf = std::env::temp_dir().join(format!("lvsctl-rel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), APPLY_A).unwrap();
    std::fs::write(dir.join("b.yaml"), APPLY_B).unwrap();
    std::fs::write(
        dir.join("empty.yaml"),
        "director:\n  vip_interface: lvs0\nservices: []\n",
    )
    .unwrap();
    std::fs::copy("/usr/bin/setpriv", dir.join("setpriv")).unwrap();
    for w in [1, 3] {
        for x in [0, 1] {
            std::fs::write(
                dir.join(format!("d-{w}-{x}.yaml")),
                daemon_manifest(w, x == 1),
            )
            .unwrap();
        }
    }
    std::fs::copy(workspace_bin("lvsctl").unwrap(), dir.join("lvsctl")).unwrap();
    let script =
        format!("KILLS={kills}\nDAEMON_KILLS={daemon_kills}\nLOAD_SECS={load_secs}\n{SCRIPT}");
    let out = VmRun::new()
        .topology_seed()
        .timeout(Duration::from_secs(if soak() { 1500 } else { 600 }))
        .copy_to(&dir, "/opt/rel")
        .named_script("reliability", &script)
        .run();
    let _ = std::fs::remove_dir_all(&dir);
    out.assert_success();
    let lines = out.lines_with_prefix("reliability ");
    assert!(
        lines.contains(&"reliability done"),
        "the script did not finish:\n{}",
        out.console
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("reliability FAILED")),
        "{}",
        out.console
    );
    let find = |prefix: &str| -> &str {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", out.console))
    };
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| l.starts_with("reliability traffic "))
    {
        let (sent, failed) = (figure(l, "sent"), figure(l, "failed"));
        assert!(sent > 0, "no requests sent: {l}");
        assert_eq!(
            failed, 0,
            "requests to a service in every manifest failed: {l}"
        );
        let e = totals.entry("all").or_default();
        e.0 += sent;
        e.1 += failed;
    }
    let caps = find("reliability caps iptables=nft caps=net_admin ");
    assert!(
        caps.ends_with("status=0"),
        "lvsctl apply needs more than CAP_NET_ADMIN: {caps}"
    );
    let kill = find("reliability kill-apply ");
    assert_eq!(figure(kill, "converged"), kills, "{kill}");
    assert!(
        figure(kill, "killed") > 0,
        "no apply was killed mid-way: {kill}"
    );
    let watch = find("reliability watch kill-apply ");
    assert_eq!(
        figure(watch, "missing"),
        0,
        "the shared service went missing: {watch}"
    );
    let dk = find("reliability daemon-kill identical");
    assert!(
        dk.contains("identical_after_kill=yes") && dk.contains("identical_after_restart=yes"),
        "{dk}\n{}",
        out.console
    );
    let dr = find("reliability daemon-kill rounds");
    assert_eq!(figure(dr, "converged_after_restart"), daemon_kills, "{dr}");
    let load = find("reliability load ");
    assert_eq!(figure(load, "changes"), load_secs, "{load}");
    assert_eq!(
        find("reliability daemon exit status"),
        "reliability daemon exit status 0"
    );
    println!(
        "reliability summary: {} requests, {} failed; {kill}; {watch}; {dr}; {load}",
        totals["all"].0, totals["all"].1
    );
}
