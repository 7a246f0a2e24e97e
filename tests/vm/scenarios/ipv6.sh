# shellcheck shell=bash
# Guest-side IPv6 plumbing and helpers for the dual-stack end-to-end test
# (crates/lvsctl-vmtest/tests/lvsctl_ipv6.rs). Runs INSIDE the VM only, on the seed topology,
# sourced after tests/vm/topology.sh and scenarios/lvsctl.sh; sourcing only defines variables
# and functions.
#
# `ipv6_topology_up` adds a second, IPv6 network on the seed's links (the topology itself is
# IPv4 only):
#
#   c1 2001:db8:130::192 ─┐                                       ┌─ rs1 2001:db8:60::101
#                         ├─ br1 ── director (root netns) ── br0 ─┤
#   c2 2001:db8:130::195 ─┘ 2001:db8:130::1     2001:db8:60::1   └─ rs2 2001:db8:60::102
#
# Clients and real servers route everything through the director (NAT replies must pass it).
# The real servers hold the DR VIP $VIP6_DR as /128 on lo; IPv6 has no ARP, and Linux answers
# neighbour solicitations on eth0 only for eth0's own addresses, so no arp_* settings are
# needed. Every address is added with `nodad`: duplicate address detection would keep each
# one "tentative" (unusable as a source, not answering) for about a second, and nothing else
# on these private links can hold it.

VIP6_NAT=2001:db8:6::101
VIP6_DR=2001:db8:6::102
DIRECTOR6_RS_IP=2001:db8:60::1
DIRECTOR6_CLIENT_IP=2001:db8:130::1
RS1_IP6=2001:db8:60::101
RS2_IP6=2001:db8:60::102
C1_IP6=2001:db8:130::192
C2_IP6=2001:db8:130::195

ipv6_topology_up() {
    local rs c
    echo 1 >/proc/sys/net/ipv6/conf/all/forwarding || return
    "$IP" -batch - <<EOF || return
addr add $DIRECTOR6_RS_IP/64 dev br0 nodad
addr add $DIRECTOR6_CLIENT_IP/64 dev br1 nodad
EOF
    for rs in rs1 rs2; do
        "$IP" -n "$rs" -batch - <<EOF || return
addr add $(_seed_rs_ip6 "$rs")/64 dev eth0 nodad
route add default via $DIRECTOR6_RS_IP
addr add $VIP6_DR/128 dev lo nodad
EOF
    done
    for c in c1 c2; do
        "$IP" -n "$c" -batch - <<EOF || return
addr add $(_seed_client_ip6 "$c")/64 dev eth0 nodad
route add default via $DIRECTOR6_CLIENT_IP
EOF
    done
}

_seed_rs_ip6() { case "$1" in rs1) echo "$RS1_IP6" ;; rs2) echo "$RS2_IP6" ;; esac; }
_seed_client_ip6() { case "$1" in c1) echo "$C1_IP6" ;; c2) echo "$C2_IP6" ;; esac; }

# probe6 CLIENT VIP PORT: HTTP GET http://[VIP]:PORT/ from netns c1 or c2, printed as
# topology.sh's `probe` prints it (`probe <client> <port> <server> <body>`, `FAILED -` on
# failure). Returns non-zero on failure.
probe6() {
    local c body
    c=$(_seed_client "$1") || return
    if body=$(_seed_in "$c" busybox timeout 5 busybox wget -qO- "http://[$2]:$3/") &&
        [[ -n $body ]]; then
        body=${body%%$'\n'*}
        echo "probe $c $3 ${body%-22} $body"
    else
        echo "probe $c $3 FAILED -"
        return 1
    fi
}

# probe6_rounds ROUNDS VIP CLIENT:PORT...: probe6 each CLIENT:PORT on VIP in the order given,
# ROUNDS times over. Returns non-zero if any request failed (after making them all).
probe6_rounds() {
    local rounds=$1 vip=$2 r pair rc=0
    shift 2
    for ((r = 0; r < rounds; r++)); do
        for pair in "$@"; do
            probe6 "${pair%%:*}" "$vip" "${pair#*:}" || rc=1
        done
    done
    return "$rc"
}

# snap6 NAME: snap (IPv4 mangle, IPVS table) plus the IPv6 side: NAME.mangle6
# (`ip6tables -t mangle -S`) and NAME.addr6 (`ip -6 -o addr show dev lvs0`, global scope).
snap6() {
    snap "$1"
    vm_section "$1.mangle6" ip6tables -t mangle -S
    vm_section "$1.addr6" ip -6 -o addr show dev lvs0 scope global
}
