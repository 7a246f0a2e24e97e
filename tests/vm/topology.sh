# shellcheck shell=bash
# Guest-side library of lvsctl's test VM: the seed's DR topology and helpers for tests.
#
# Runs INSIDE the VM only. The VM's init sources it and calls `seed_topology_up` when the
# runner was given `--topology seed`; every command the runner starts has it sourced
# through BASH_ENV, so scripts can call the helpers below directly. Sourcing only defines
# variables and functions.
#
# Layout (all of it exists only inside the VM, which has no network card):
#
#   netns c1 192.168.130.192 ─┐                                   ┌─ netns rs1 192.168.60.101
#                             ├─ br1 ── director (root netns) ── br0 ┤    (VIP/32 on lo)
#   netns c2 192.168.130.195 ─┘  192.168.130.1       192.168.60.1   └─ netns rs2 192.168.60.102
#
# Clients route everything (so the VIP 192.168.6.101 too) through the director at
# 192.168.130.1. The director does NOT hold the VIP until a test adds it
# (`vip_on_director`, or lvsctl through director.vip_interface). Real servers are DR
# servers: they hold the VIP on lo with arp_ignore=1/arp_announce=2 and answer clients
# directly, routed back through the director (ip_forward=1). Each real server runs busybox
# httpd on :80 (`RS1` at /, `OK` at /.health.html) and on :22 (`RS1-22` at /), standing in
# for the seed's curl and ssh.

VIP=192.168.6.101
DIRECTOR_RS_IP=192.168.60.1
DIRECTOR_CLIENT_IP=192.168.130.1
RS1_IP=192.168.60.101
RS2_IP=192.168.60.102
C1_IP=192.168.130.192
C2_IP=192.168.130.195
SEED_HTTP_PORTS="80 22"
IP=/usr/sbin/ip

# The seed names real servers RS1/RS2 and clients by address; accept those spellings.
_seed_rs() {
    case "$1" in
        rs1 | RS1 | "$RS1_IP") echo rs1 ;;
        rs2 | RS2 | "$RS2_IP") echo rs2 ;;
        *) echo "unknown real server '$1' (expected RS1 or RS2)" >&2; return 2 ;;
    esac
}
_seed_client() {
    case "$1" in
        c1 | C1 | "$C1_IP") echo c1 ;;
        c2 | C2 | "$C2_IP") echo c2 ;;
        *) echo "unknown client '$1' (expected c1 or c2)" >&2; return 2 ;;
    esac
}
_seed_rs_ip() { case "$1" in rs1) echo "$RS1_IP" ;; rs2) echo "$RS2_IP" ;; esac; }
_seed_client_ip() { case "$1" in c1) echo "$C1_IP" ;; c2) echo "$C2_IP" ;; esac; }

# Under TCG every exec of a dynamic program costs tens of milliseconds, so the topology is
# built with a few `ip -batch` runs, and namespaces are entered with busybox's static
# nsenter rather than `ip netns exec` (which also remounts /sys).
_seed_in() { # NETNS CMD...: run CMD in the network namespace NETNS
    local ns=$1
    shift
    busybox nsenter --net="/run/netns/$ns" "$@"
}

seed_topology_up() {
    local rs c name
    printf 'netns add %s\n' rs1 rs2 c1 c2 | "$IP" -batch - || return
    "$IP" -batch - <<EOF || return
link add br0 type bridge
link set br0 up
addr add $DIRECTOR_RS_IP/24 dev br0
link add br1 type bridge
link set br1 up
addr add $DIRECTOR_CLIENT_IP/24 dev br1
link add veth-rs1 type veth peer name eth0 netns rs1
link set veth-rs1 master br0 up
link add veth-rs2 type veth peer name eth0 netns rs2
link set veth-rs2 master br0 up
link add veth-c1 type veth peer name eth0 netns c1
link set veth-c1 master br1 up
link add veth-c2 type veth peer name eth0 netns c2
link set veth-c2 master br1 up
EOF
    echo 1 >/proc/sys/net/ipv4/ip_forward
    # DR replies come back through the director with the VIP as source. Once the VIP is a
    # local address of the director, the kernel drops them as martians unless br0 accepts
    # packets from its own local addresses.
    echo 1 >/proc/sys/net/ipv4/conf/br0/accept_local

    for rs in rs1 rs2; do
        # DR: the VIP on lo must neither answer nor be announced in ARP; set before it exists.
        _seed_in "$rs" busybox sh -c '
            for k in all eth0; do
                echo 1 >/proc/sys/net/ipv4/conf/$k/arp_ignore
                echo 2 >/proc/sys/net/ipv4/conf/$k/arp_announce
            done' || return
        "$IP" -n "$rs" -batch - <<EOF || return
link set lo up
addr add $(_seed_rs_ip "$rs")/24 dev eth0
link set eth0 up
route add default via $DIRECTOR_RS_IP
addr add $VIP/32 dev lo
EOF
        name=${rs^^}
        mkdir -p "/srv/$rs/80" "/srv/$rs/22"
        echo "$name" >"/srv/$rs/80/index.html"
        echo OK >"/srv/$rs/80/.health.html"
        echo "$name-22" >"/srv/$rs/22/index.html"
        rs_start_http "$rs" || return
    done
    for c in c1 c2; do
        "$IP" -n "$c" -batch - <<EOF || return
link set lo up
addr add $(_seed_client_ip "$c")/24 dev eth0
link set eth0 up
route add default via $DIRECTOR_CLIENT_IP
EOF
    done
}

# PIDs of the httpd serving RS on PORT (started by rs_start_http).
_seed_httpd_pids() { # RS PORT
    local want="busybox httpd -p $2 -h /srv/$1/$2" f args
    for f in /proc/[0-9]*/cmdline; do
        # No fork per process: this scans every PID.
        { mapfile -d '' -t args <"$f"; } 2>/dev/null || continue
        if [[ "${args[*]}" == "$want" ]]; then
            f=${f#/proc/}
            echo "${f%/cmdline}"
        fi
    done
    return 0
}

# rs_start_http RSn [PORT]: start the real server's httpd on PORT (default: 80 and 22).
# busybox httpd daemonizes only after it listens, so it answers once this returns.
rs_start_http() {
    local rs port
    rs=$(_seed_rs "$1") || return
    for port in ${2:-$SEED_HTTP_PORTS}; do
        [[ -z $(_seed_httpd_pids "$rs" "$port") ]] || continue
        if ! _seed_in "$rs" busybox httpd -p "$port" -h "/srv/$rs/$port" </dev/null; then
            echo "rs_start_http: httpd of $rs on :$port did not start" >&2
            return 1
        fi
    done
}

# rs_stop_http RSn [PORT]: stop the real server's httpd on PORT (default: 80 and 22).
rs_stop_http() {
    local rs port pid i
    rs=$(_seed_rs "$1") || return
    for port in ${2:-$SEED_HTTP_PORTS}; do
        for pid in $(_seed_httpd_pids "$rs" "$port"); do
            kill "$pid" 2>/dev/null
            # Not our child: wait until it is gone so the port is closed on return.
            for ((i = 0; i < 100; i++)); do
                [[ -e /proc/$pid ]] || break
                sleep 0.05
            done
        done
    done
    return 0
}

# client_get CLIENT PORT [PATH]: HTTP GET http://VIP:PORT/PATH from client netns c1 or c2;
# prints the body. busybox wget's own -T segfaults, so `timeout` bounds it.
client_get() {
    local c port=$2 path=${3:-/}
    c=$(_seed_client "$1") || return
    _seed_in "$c" busybox timeout 5 busybox wget -qO- "http://$VIP:$port$path"
}

# probe CLIENT PORT: like client_get, but prints one parseable line
#   probe <client> <port> <server> <body>
# where <server> is RS1 or RS2 (the :22 service's body `RS1-22` reduced to the server name)
# and <body> the first line of the answer; `FAILED -` when the request failed. Returns
# non-zero on failure.
probe() {
    local c body
    c=$(_seed_client "$1") || return
    if body=$(client_get "$c" "$2") && [[ -n $body ]]; then
        body=${body%%$'\n'*}
        echo "probe $c $2 ${body%-22} $body"
    else
        echo "probe $c $2 FAILED -"
        return 1
    fi
}

# probe_rounds ROUNDS CLIENT:PORT...: probe each CLIENT:PORT in the order given, ROUNDS
# times over. The order matters: persistence templates are created by the first request of
# each client, and rr hands out real servers in request order. Returns non-zero if any
# request failed (after making them all).
probe_rounds() {
    local rounds=$1 r pair rc=0
    shift
    for ((r = 0; r < rounds; r++)); do
        for pair in "$@"; do
            probe "${pair%%:*}" "${pair#*:}" || rc=1
        done
    done
    return "$rc"
}

# wait_for SECS 'COMMAND': evaluate COMMAND every 0.2 s until it succeeds; fails after SECS.
wait_for() {
    local deadline=$((SECONDS + $1))
    while ! eval "$2"; do
        if ((SECONDS >= deadline)); then
            echo "wait_for: '$2' still failing after $1 s" >&2
            return 1
        fi
        sleep 0.2
    done
}

# vip_on_director: put the VIP on the director (lo, /32), as the seed does by hand.
vip_on_director() {
    "$IP" addr replace "$VIP/32" dev lo
}

# health_check_pass [SERVICE_ARGS]: one pass of the seed's health.sh on the director: an RS
# whose /.health.html does not say OK is deleted from the service, and added back (DR) once
# it does. SERVICE_ARGS defaults to the seed's `-f 10`.
health_check_pass() {
    local svc=${1:--f 10} rip
    for rip in "$RS1_IP" "$RS2_IP"; do
        # shellcheck disable=SC2086 # svc is the seed's word list, e.g. "-f 10"
        if busybox timeout 3 busybox wget -qO- "http://$rip/.health.html" 2>/dev/null | grep -q OK; then
            if ! ipvsadm -L -n | grep -q "$rip"; then
                echo "health: $rip is up again, adding it"
                ipvsadm -a $svc -r "$rip" -g
            fi
        elif ipvsadm -L -n | grep -q "$rip"; then
            echo "health: $rip failed its check, deleting it"
            ipvsadm -d $svc -r "$rip"
        fi
    done
}

# vm_section NAME CMD...: run CMD and frame its output so the host can cut it out of the
# console (lvsctl_vmtest::VmOutput::section).
vm_section() {
    local name=$1 rc
    shift
    echo "LVSCTL-VM-BEGIN $name"
    "$@"
    rc=$?
    echo "LVSCTL-VM-END $name"
    return "$rc"
}

# mangle_rules: the mangle table's rules as `iptables-save` writes them, without table
# header, chain declarations (they carry counters) or comments.
mangle_rules() {
    iptables-save -t mangle | grep '^-A' || true
}
