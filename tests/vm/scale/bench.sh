#!/usr/bin/env bash
# Runs inside the VM (started by tests/vm/scale/run.sh): for each size, times lvsctl and the
# ipvsadm/iptables baseline, each in its own fresh network namespace (IPVS state, and the
# kernel's dest trash, are per namespace), and prints one `SCALE key=value...` line per
# measurement for run.sh to tabulate. Also checks that both namespaces end up with the same
# IPVS table and MARK rules, so the two sides did the same work.
#
# Usage (in the VM): bench.sh [--repeat N] [--aslr on|off] LVSCTL_BINARY WORKDIR SIZE...
#   (WORKDIR/SIZE/ from gen.sh)
#   --repeat N   samples of the repeatable cases (no-op, weight), median kept (default 3)
#   --aslr off   run with kernel.randomize_va_space=0 (default: leave it as booted, on); see
#                run.sh for why
set -uo pipefail
REPEAT=3
ASLR=on
while [[ ${1:-} == --* ]]; do
    case $1 in
        --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
        --aslr) ASLR=${2:?--aslr needs on or off}; shift 2 ;;
        *) echo "SCALE-ERROR bench.sh: unknown option $1"; exit 1 ;;
    esac
done
LVSCTL=$1
WORK=$2
shift 2
IP=/usr/sbin/ip
# GNU time (copied in by run.sh): busybox's `time` reports max RSS 4x too high (it reads
# ru_maxrss, already KiB, as pages).
TIME=${SCALE_TIME:-/opt/bin/time}
[[ -x $TIME ]] || { echo "SCALE-ERROR no GNU time at $TIME"; exit 1; }
export LVSCTL_LOCK_FILE=/run/lvsctl/scale.lock

die() { echo "SCALE-ERROR $*"; exit 1; }

# A fresh namespace with the real servers' network on-link (the kernel refuses DR real servers
# it has no route to).
new_ns() {
    local ns=$1
    $IP netns add "$ns" || die "ip netns add $ns"
    $IP -n "$ns" link set lo up
    $IP -n "$ns" link add rsnet type dummy
    $IP -n "$ns" addr add 10.255.255.254/9 dev rsnet
    $IP -n "$ns" link set rsnet up
}

# measure NS CMD...: runs CMD in NS under GNU time; sets
# M_WALL (seconds), M_RSS (KiB), M_RC. stdout/stderr of CMD go to $LOGDIR/last.{out,err}.
M_WALL=0 M_RSS=0 M_RC=0
measure() {
    local ns=$1 t0 t1
    shift
    t0=$EPOCHREALTIME
    $IP netns exec "$ns" $TIME -f %M -o "$LOGDIR/time.txt" "$@" >"$LOGDIR/last.out" 2>"$LOGDIR/last.err"
    M_RC=$?
    t1=$EPOCHREALTIME
    M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    M_RSS=$(tail -n1 "$LOGDIR/time.txt")
}
# Same, with stdin from a file.
measure_in() {
    local ns=$1 input=$2 t0 t1
    shift 2
    t0=$EPOCHREALTIME
    $IP netns exec "$ns" $TIME -f %M -o "$LOGDIR/time.txt" "$@" <"$input" >"$LOGDIR/last.out" 2>"$LOGDIR/last.err"
    M_RC=$?
    t1=$EPOCHREALTIME
    M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    M_RSS=$(tail -n1 "$LOGDIR/time.txt")
}
must() { # WHAT: fail loudly when the last measured command failed
    if ((M_RC != 0)); then
        echo "--- $1 failed (exit $M_RC); stderr tail:"
        tail -n 30 "$LOGDIR/last.err"
        tail -n 5 "$LOGDIR/last.out"
        die "$1 failed (exit $M_RC)"
    fi
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
emit() { echo "SCALE $*"; }
# lvsctl's own phase timings from its log (info level): each observe, the apply phase and
# apply's read-back of what it changed.
phases() {
    awk '
        /observed the director/ { if (match($0, /elapsed_ms=[0-9]+/)) { o = o (o ? "+" : "") substr($0, RSTART + 11, RLENGTH - 11) } }
        /applied [0-9]+ operation\(s\) in/ { if (match($0, /in [0-9.]+s/)) a = substr($0, RSTART + 3, RLENGTH - 4) }
        /read back what the plan changed/ { if (match($0, /elapsed_ms=[0-9]+/)) r = substr($0, RSTART + 11, RLENGTH - 11) }
        END { printf "observe_ms=%s apply_s=%s readback_ms=%s", (o ? o : "-"), (a ? a : "-"), (r != "" ? r : "-") }
    ' "$LOGDIR/last.err"
}

table_of() { # NS: the IPVS table and lvsctl's MARK rules, sorted, for comparison
    {
        $IP netns exec "$1" ipvsadm -S -n | sort
        $IP netns exec "$1" iptables-save -t mangle | grep -E '^-A (LVSCTL-MARK|PREROUTING|OUTPUT)' | sort
    }
}
same_tables() { # WHAT NS1 NS2
    table_of "$2" >"$LOGDIR/t1"
    table_of "$3" >"$LOGDIR/t2"
    if ! cmp -s "$LOGDIR/t1" "$LOGDIR/t2"; then
        echo "--- $1: the two namespaces differ:"
        diff "$LOGDIR/t1" "$LOGDIR/t2" | head -20
        die "$1: lvsctl and the baseline did not produce the same table"
    fi
    emit "n=$N check=$1 lines=$(wc -l <"$LOGDIR/t1") same=yes"
}

case $ASLR in
    on) ;;
    off) echo 0 >/proc/sys/kernel/randomize_va_space || die "cannot turn address-space randomisation off" ;;
    *) die "--aslr must be on or off, got '$ASLR'" ;;
esac

LOGDIR=$(mktemp -d /tmp/scale.XXXXXX)
echo "SCALE-MACHINE vcpus=$(nproc) randomize_va_space=$(cat /proc/sys/kernel/randomize_va_space) mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) kernel=$(uname -r) ipvsadm=\"$(ipvsadm --version 2>&1 | head -n1)\" iptables=\"$(iptables --version)\""

for N in "$@"; do
    D=$WORK/$N
    [[ -d $D/full ]] || die "no workload for $N in $D"
    B=base$N L=lvs$N
    new_ns "$B"
    new_ns "$L"
    svc=$(grep -c '^-A' "$D/full.ipvsadm")
    rs=$(grep -c '^-a' "$D/full.ipvsadm")
    marks=$(grep -c '^-A LVSCTL-MARK' "$D/full.iptables")
    emit "n=$N info services=$svc real_servers=$rs mark_rules=$marks"

    # --- apply to an empty table ---------------------------------------------------------
    measure_in "$B" "$D/full.ipvsadm" ipvsadm -R; must "ipvsadm -R ($N)"
    b_ipvs=$M_WALL
    measure_in "$B" "$D/full.iptables" iptables-restore --noflush; must "iptables-restore ($N)"
    b_ipt=$M_WALL
    measure "$L" "$LVSCTL" apply -f "$D/full"; must "lvsctl apply ($N)"
    emit "n=$N case=apply lvsctl=$M_WALL base=$(awk -v a="$b_ipvs" -v b="$b_ipt" 'BEGIN { printf "%.3f", a + b }') base_ipvsadm=$b_ipvs base_iptables=$b_ipt rss_kb=$M_RSS $(phases)"
    same_tables apply "$B" "$L"

    # --- no-op reconcile ---------------------------------------------------------------------
    l=() b=() ph=""
    for ((k = 0; k < REPEAT; k++)); do
        measure "$B" ipvsadm -S -n; must "ipvsadm -S -n ($N)"
        b+=("$M_WALL")
        measure "$L" "$LVSCTL" plan -f "$D/full" --detailed-exitcode; must "lvsctl plan ($N) (exit 2 = it found changes)"
        l+=("$M_WALL")
        ph=$(phases)
    done
    noop=$(median "${l[@]}")
    emit "n=$N case=noop lvsctl=$noop base=$(median "${b[@]}") samples_lvsctl=${l[*]// /,} samples_base=${b[*]// /,} rss_kb=$M_RSS $ph"

    # --- one real server's weight changed (1 -> 5, then back, alternating) -------------------
    l=() b=() lph=() extra=()
    read -r -a ecmd <"$D/weight.cmd"
    back=("${ecmd[@]}")
    back[${#back[@]} - 1]=1
    for ((k = 0; k < REPEAT; k++)); do
        if ((k % 2 == 0)); then f=weight e=("${ecmd[@]}"); else f=full e=("${back[@]}"); fi
        measure "$B" ipvsadm "${e[@]}"; must "ipvsadm ${e[*]}"
        b+=("$M_WALL")
        measure "$L" "$LVSCTL" apply -f "$D/$f"; must "lvsctl apply $f ($N)"
        grep -q 'Plan: 0 to add, 1 to change, 0 to destroy' "$LOGDIR/last.out" ||
            { tail -n 5 "$LOGDIR/last.out"; die "the weight apply did not plan exactly one change"; }
        l+=("$M_WALL")
        ph=$(phases)
        lph+=("${ph// /;}")
        # The work apply does beyond a no-op plan, timed by lvsctl itself: the write and the
        # read-back. Wall-clock medians of runs this long cannot resolve 10 ms.
        extra+=("$(awk -v p="$ph" 'BEGIN { n = split(p, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1]; printf "%.0f", v["apply_s"] * 1000 + v["readback_ms"] }')")
    done
    if ((REPEAT % 2 == 0)); then # end in the weight-5 state on both sides
        measure "$B" ipvsadm "${ecmd[@]}"; must "ipvsadm -e"
        measure "$L" "$LVSCTL" apply -f "$D/weight"; must "lvsctl apply weight/"
    fi
    emit "n=$N case=weight lvsctl=$(median "${l[@]}") base=$(median "${b[@]}") noop=$noop extra_ms=$(median "${extra[@]}") samples_lvsctl=${l[*]// /,} samples_base=${b[*]// /,} samples_extra_ms=${extra[*]// /,} phases=${lph[*]// /|}"
    same_tables weight "$B" "$L"

    # --- 1% of services replaced -------------------------------------------------------------
    measure_in "$B" "$D/replace.ipvsadm" ipvsadm -R; must "ipvsadm -R replace ($N)"
    b_ipvs=$M_WALL
    measure_in "$B" "$D/replace.iptables" iptables-restore --noflush; must "iptables-restore replace ($N)"
    b_ipt=$M_WALL
    measure "$L" "$LVSCTL" apply -f "$D/replace"; must "lvsctl apply replace ($N)"
    emit "n=$N case=replace lvsctl=$M_WALL base=$(awk -v a="$b_ipvs" -v b="$b_ipt" 'BEGIN { printf "%.3f", a + b }') base_ipvsadm=$b_ipvs base_iptables=$b_ipt rss_kb=$M_RSS $(phases)"
    same_tables replace "$B" "$L"

    # --- the daemon's peak RSS after its first pass (converged table: a restart) -----------------
    st=$LOGDIR/status-$N.json
    rm -f "$st"
    t0=$EPOCHREALTIME
    $IP netns exec "$L" "$LVSCTL" run -f "$D/replace" --status-file "$st" --resync-interval 1h \
        >"$LOGDIR/daemon.out" 2>"$LOGDIR/daemon.err" &
    dpid=$!
    for ((k = 0; k < 1200; k++)); do
        [[ -f $st ]] && grep -q '"last_reconcile": *{' "$st" && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    t1=$EPOCHREALTIME
    if grep -q '"last_reconcile": *{' "$st" 2>/dev/null; then
        hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$dpid/status")
        rss=$(awk '/VmRSS/ { print $2 }' "/proc/$dpid/status")
        result=$(grep -o '"result": *"[a-z]*"' "$st" | head -n1 | grep -o '"[a-z]*"$')
        dms=$(grep -o '"duration_ms": *[0-9.]*' "$st" | head -n1 | grep -o '[0-9.]*$')
        applied=$(grep -o '"applied": *[0-9]*' "$st" | head -n1 | grep -o '[0-9]*$')
        # The daemon starts on the table the applies left: its first pass must find nothing to do.
        emit "n=$N case=daemon hwm_kb=$hwm rss_kb=$rss first_pass_ms=$dms result=$result applied=$applied wall_to_status=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    else
        tail -n 20 "$LOGDIR/daemon.err"
        emit "n=$N case=daemon error=no-first-pass"
    fi
    kill "$dpid" 2>/dev/null
    wait "$dpid" 2>/dev/null

    # Free the memory of this size before the next.
    $IP netns exec "$B" ipvsadm -C
    $IP netns exec "$L" ipvsadm -C
    $IP netns del "$B"
    $IP netns del "$L"
done
echo "SCALE-DONE"
