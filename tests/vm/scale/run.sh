#!/usr/bin/env bash
# lvsctl at scale against ipvsadm, side by side in the IPVS test VM (tests/vm/run.sh).
# Not part of the default test command: it takes several minutes. See BENCHMARKS.md.
#
# Usage: tests/vm/scale/run.sh [--sizes "1000 10000"] [--repeat N] [--aslr off|on]
#                              [--lvsctl BINARY] [--timeout SECS] [--mem MB] [--out FILE]
#                              [--log FILE]
#
# Builds lvsctl in release (unless --lvsctl names a binary), generates for each size a
# manifest of SIZE services x 10 real servers (TCP and fwmark services with their MARK rules,
# NAT and DR real servers) and the equivalent ipvsadm -R / iptables-restore inputs
# (tests/vm/scale/gen.sh), boots the VM once and runs tests/vm/scale/bench.sh in it, which
# times both tools, each in its own fresh network namespace. Prints a markdown table with
# ratios and pass/fail per target (also written to --out).
#
# --aslr off (the default) turns address-space randomisation off in the VM, for both tools.
# The VM runs under qemu's TCG, which reuses translated machine code only while it sits at the
# same virtual address. With randomisation on, every process start translates its program
# and its shared libraries afresh, so short runs of both tools cost 2-3x what they cost with it
# off (`ipvsadm -e` 130-220 ms against 50-70 ms), a cost real CPUs do not have.
# --aslr on measures the VM as booted. BENCHMARKS.md has both.
#
# Env: CARGO_TARGET_DIR (where the release build goes), plus tests/vm/run.sh's LVSCTL_VM_*.
# Exit status: 0 when the run completed (whatever the targets say), 1 when it failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)

SIZES="1000 10000"
REPEAT=3
ASLR=off
LVSCTL=""
TIMEOUT=1800
MEM=3072
OUT=""
LOG=""
fail() { echo "scale: error: $*" >&2; exit 1; }
while (($#)); do
    case "$1" in
        --sizes) SIZES=${2:?--sizes needs a list, e.g. \"1000 10000\"}; shift 2 ;;
        --repeat) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "--repeat needs a number"; REPEAT=$2; shift 2 ;;
        --aslr) [[ ${2:-} == on || ${2:-} == off ]] || fail "--aslr needs on or off"; ASLR=$2; shift 2 ;;
        --lvsctl) LVSCTL=${2:?--lvsctl needs a path}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --mem) MEM=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --log) LOG=${2:?}; shift 2 ;;
        -h | --help) sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown option '$1' (see --help)" ;;
    esac
done
for n in $SIZES; do [[ $n =~ ^[1-9][0-9]*$ ]] || fail "--sizes: '$n' is not a number"; done

if [[ -z $LVSCTL ]]; then
    echo "scale: building lvsctl (release)" >&2
    (cd "$ROOT" && cargo build --release -q -p lvsctl) || fail "cargo build --release -p lvsctl failed"
    LVSCTL="${CARGO_TARGET_DIR:-$ROOT/target}/release/lvsctl"
    BUILT_FROM="built from $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    [[ -z $(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null) ]] || BUILT_FROM+=" plus uncommitted changes"
else
    BUILT_FROM="binary $LVSCTL, sha256 $(sha256sum "$LVSCTL" | cut -c1-12)"
fi
[[ -x $LVSCTL ]] || fail "lvsctl binary $LVSCTL not found or not executable"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lvsctl-scale.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for n in $SIZES; do
    echo "scale: generating $n services x 10 real servers" >&2
    "$HERE/gen.sh" "$n" "$TMP/work/$n"
done
cp "$LVSCTL" "$TMP/lvsctl"
GNU_TIME=/usr/bin/time
[[ -x $GNU_TIME ]] && "$GNU_TIME" -f %M true >/dev/null 2>&1 ||
    fail "GNU time ($GNU_TIME, Debian package 'time') is needed to measure peak memory"
[[ -n $LOG ]] || LOG="$TMP/console.log"

HOST_CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
HOST_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
QEMU_VER=$("${LVSCTL_VM_QEMU:-qemu-system-x86_64}" --version | head -n1)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "scale: booting the VM (timeout ${TIMEOUT}s, ${MEM} MB); host load $HOST_LOAD" >&2
set +e
"$ROOT/tests/vm/run.sh" --timeout "$TIMEOUT" --mem "$MEM" \
    --copy "$TMP/lvsctl:/opt/lvsctl" --copy "$TMP/work:/opt/scale" --copy "$GNU_TIME:/opt/bin/time" \
    -- "$HERE/bench.sh" --repeat "$REPEAT" --aslr "$ASLR" /opt/lvsctl /opt/scale $SIZES 2>&1 | tee "$LOG" |
    grep --line-buffered -E '^(SCALE|lvsctl-vm)' >&2
rc=${PIPESTATUS[0]}
set -e
grep -q '^SCALE-DONE' "$LOG" || {
    grep -E '^SCALE-ERROR|^---' -A 30 "$LOG" | head -n 60 >&2 || true
    fail "the benchmark did not finish (VM exit status $rc; console log: $LOG)"
}
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ------------------------------------------------------------------------------
render() {
    echo "Run $STARTED, lvsctl $("$LVSCTL" --version | awk '{ print $2 }') ($BUILT_FROM)."
    echo "Host: $HOST_CPU, $(nproc) CPUs, load average $HOST_LOAD at start, $END_LOAD at end; $QEMU_VER (TCG)."
    grep '^SCALE-MACHINE' "$LOG" | head -n1 | sed 's/^SCALE-MACHINE /VM: /'
    echo
    awk -v repeat="$REPEAT" '
    function kv(line, key,   re) {
        re = "(^| )" key "=[^ ]*"
        if (match(line, re)) { s = substr(line, RSTART, RLENGTH); sub(/^ /, "", s); return substr(s, length(key) + 2) }
        return ""
    }
    function ms(s) { return sprintf("%.0f ms", s * 1000) }
    function secs(s) { return s >= 1 ? sprintf("%.2f s", s) : ms(s) }
    function row(n, cas, tool, base, ratio, target, ok) {
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", n, cas, tool, base, ratio, target, ok ? "**pass**" : "**MISS**"
    }
    function mb(kb) { return sprintf("%.1f MB", kb / 1024) }
    /^SCALE n=/ {
        n = kv($0, "n"); c = kv($0, "case")
        if (!(n in seen)) { seen[n] = 1; order[++sizes] = n }
        if (c != "") { L[n, c] = kv($0, "lvsctl"); B[n, c] = kv($0, "base"); line[n, c] = $0 }
        if ($0 ~ / info /) info[n] = kv($0, "services") " services, " kv($0, "real_servers") " real servers, " kv($0, "mark_rules") " MARK rules"
    }
    END {
        print "| services x 10 | case | lvsctl | baseline | ratio | target | result |"
        print "| --- | --- | --- | --- | --- | --- | --- |"
        for (i = 1; i <= sizes; i++) {
            n = order[i]
            if ((n, "apply") in L) {
                r = L[n, "apply"] / B[n, "apply"]
                row(n, "apply to an empty table", "`lvsctl apply` " secs(L[n, "apply"]), "`ipvsadm -R` + `iptables-restore` " secs(B[n, "apply"]), sprintf("%.2f", r), "<= 0.5", r <= 0.5)
            }
            if ((n, "noop") in L) {
                r = L[n, "noop"] / B[n, "noop"]
                row(n, "no-op reconcile", "`lvsctl plan` " secs(L[n, "noop"]), "`ipvsadm -S -n` " secs(B[n, "noop"]), sprintf("%.2f", r), "<= 0.25", r <= 0.25)
            }
            if ((n, "weight") in L) {
                # Judged on the work apply does beyond the no-op plan (the write and its
                # read-back), timed inside lvsctl; the wall-clock difference is shown too.
                x = kv(line[n, "weight"], "extra_ms")
                d = L[n, "weight"] - L[n, "noop"]
                row(n, "one weight changed", "`lvsctl apply` " secs(L[n, "weight"]), "`ipvsadm -e` " secs(B[n, "weight"]), sprintf("no-op + %d ms (wall: %+.0f ms)", x, d * 1000), "<= no-op + 10 ms", x + 0 <= 10)
            }
            if ((n, "replace") in L) {
                r = L[n, "replace"] / B[n, "replace"]
                row(n, "1% of services replaced", "`lvsctl apply` " secs(L[n, "replace"]), "`ipvsadm -R` + `iptables-restore` " secs(B[n, "replace"]), sprintf("%.2f", r), "<= 0.5", r <= 0.5)
            }
            if ((n, "apply") in L) {
                k = kv(line[n, "apply"], "rss_kb")
                row(n, "peak RSS, `lvsctl apply` (empty table)", mb(k), "", "", "<= 64 MB", k + 0 <= 65536)
            }
            if ((n, "daemon") in line && kv(line[n, "daemon"], "hwm_kb") != "") {
                k = kv(line[n, "daemon"], "hwm_kb")
                row(n, "peak RSS (VmHWM), `lvsctl run` after its first pass", mb(k), "", "", "<= 64 MB", k + 0 <= 65536)
            }
        }
        print ""
        print "Medians of " repeat " samples for the no-op and weight cases; the others ran once. Each tool ran in its own"
        print "fresh network namespace; both namespaces were checked to hold the same IPVS table and MARK rules after"
        print "each changing case. Workloads: " 
        for (i = 1; i <= sizes; i++) print "- " order[i] ": " info[order[i]]
    }' "$LOG"
    echo "Address-space randomisation in the VM: $ASLR, for both tools (--aslr; see tests/vm/scale/run.sh)."
    echo
    echo "Raw measurements (seconds; from lvsctl's own log: observe_ms = each observe, apply_s = the apply phase, readback_ms = apply's read-back of what it changed; extra_ms = apply_s + readback_ms):"
    echo
    echo '```'
    grep -E '^SCALE n=' "$LOG" | sed 's/^SCALE //'
    echo '```'
}
render | tee ${OUT:+"$OUT"}
