# shellcheck shell=bash
# Guest-side helpers for the lvsctl end-to-end tests (crates/lvsctl-vmtest/tests/lvsctl_*.rs
# and seed.rs). Runs INSIDE the VM only, sourced after tests/vm/topology.sh; sourcing only
# defines functions.
#
# Everything a test asserts on is printed as framed sections (topology.sh's `vm_section`
# frame), which the host cuts out with `VmOutput::section`:
#   NAME.out / NAME.err   stdout / stderr of a command run by `cmd NAME ...`
#   NAME.rc               its exit status
#   NAME.ipvsadm          `ipvsadm -S -n`            (from `snap NAME`)
#   NAME.mangle           `iptables-save -t mangle`  (from `snap NAME`)
# Commands are expected to fail in some tests, so nothing here stops the script: the host
# decides what a status means.

LVSCTL=${LVSCTL:-/opt/lvsctl}
CMD_OUT=/tmp/cmd
mkdir -p "$CMD_OUT"

# _frame NAME FILE: print FILE framed as section NAME, newline-terminated.
_frame() {
    echo "LVSCTL-VM-BEGIN $1"
    cat "$2"
    if [[ -s $2 && -n $(tail -c1 "$2") ]]; then
        echo
    fi
    echo "LVSCTL-VM-END $1"
}

# cmd NAME CMD...: run CMD, keep its stdout in /tmp/cmd/NAME.out (for later use as a file)
# and print sections NAME.out, NAME.err and NAME.rc. Returns CMD's status.
cmd() {
    local name=$1 rc t0=$EPOCHREALTIME
    shift
    "$@" >"$CMD_OUT/$name.out" 2>"$CMD_OUT/$name.err"
    rc=$?
    # How long each command took, for whoever tunes the suite's VM time.
    echo "cmd $name took $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000)) ms"
    _frame "$name.out" "$CMD_OUT/$name.out"
    _frame "$name.err" "$CMD_OUT/$name.err"
    echo "$rc" >"$CMD_OUT/$name.rc"
    _frame "$name.rc" "$CMD_OUT/$name.rc"
    return "$rc"
}

# snap NAME: the director's IPVS table and mangle table as sections NAME.ipvsadm and
# NAME.mangle.
snap() {
    vm_section "$1.ipvsadm" ipvsadm -S -n
    vm_section "$1.mangle" iptables-save -t mangle
}

# remove_lvsctl_chain: take lvsctl's mangle chain out by hand (jumps, rules, chain) in one
# iptables-restore, as an operator cleaning a director would; nothing else in the mangle
# table is touched. (Every program start costs a few hundred ms under emulation.)
remove_lvsctl_chain() {
    local save line
    save=$(iptables-save -t mangle) || return
    [[ $save == *":LVSCTL-MARK "* ]] || return 0
    {
        echo '*mangle'
        while read -r line; do
            if [[ $line == "-A "*" -j LVSCTL-MARK" ]]; then
                echo "-D ${line#-A }"
            fi
        done <<<"$save"
        echo '-F LVSCTL-MARK'
        echo '-X LVSCTL-MARK'
        echo 'COMMIT'
    } | iptables-restore --noflush
}

# flush_director: an empty IPVS table and no lvsctl chain (`ipvsadm -C` + the chain).
flush_director() {
    ipvsadm -C
    remove_lvsctl_chain
}

# phase NAME: names the probes that follow (read by the host's probe parser).
phase() {
    echo "phase $1"
}
