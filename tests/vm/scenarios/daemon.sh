# shellcheck shell=bash
# Guest-side helpers for the `lvsctl run` tests (crates/lvsctl-vmtest/tests/daemon_vm.rs).
# Runs INSIDE the VM only, sourced after tests/vm/topology.sh and scenarios/lvsctl.sh;
# sourcing only defines variables and functions.
#
# Latencies are measured in the guest with bash's $EPOCHREALTIME (what `date +%s.%N` says,
# without a fork per reading: under TCG an exec costs tens of milliseconds) and printed as
#   timing NAME START END
# lines; the host computes and judges END - START.

MANIFEST_DIR=/etc/lvsctl
STATUS_FILE=/run/lvsctl/status.json
METRICS_ADDR=127.0.0.1:9469
RESYNC=5s
DAEMON_PID=
DAEMON_LOG=

# daemon_install EXAMPLE: the manifest directory holds examples/EXAMPLE.yaml only.
daemon_install() {
    mkdir -p "$MANIFEST_DIR" /run/lvsctl
    chmod 755 "$MANIFEST_DIR"
    cp "/opt/examples/$1.yaml" "$MANIFEST_DIR/$1.yaml"
}

# daemon_start NAME: start `lvsctl run` on the manifest directory in the background, logging
# to /tmp/daemon-NAME.log (printed by daemon_log); sets DAEMON_PID.
daemon_start() {
    DAEMON_LOG=/tmp/daemon-$1.log
    "$LVSCTL" run -f "$MANIFEST_DIR/" --resync-interval "$RESYNC" \
        --metrics "$METRICS_ADDR" --status-file "$STATUS_FILE" >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    echo "daemon $1 started, pid $DAEMON_PID"
}

# daemon_log NAME: the log of daemon NAME as section NAME.log.
daemon_log() {
    _frame "$1.log" "/tmp/daemon-$1.log"
}

# status NAME: the status file as section NAME.status.
status() {
    vm_section "$1.status" cat "$STATUS_FILE"
}

# metrics NAME: the metrics endpoint's page as section NAME.metrics.
metrics() {
    vm_section "$1.metrics" busybox timeout 5 busybox wget -qO- "http://$METRICS_ADDR/metrics"
}

# rs_in_kernel IP: the real server IP is in some IPVS service.
rs_in_kernel() {
    ipvsadm -S -n | grep -q -- "-r $1:"
}

# until_true SECS 'COMMAND': evaluate COMMAND every 0.05 s until it succeeds, then set
# WHEN to the time it first succeeded; fails (WHEN empty) after SECS.
until_true() {
    local deadline=$((SECONDS + $1))
    WHEN=
    until eval "$2"; do
        if ((SECONDS >= deadline)); then
            echo "until_true: '$2' still failing after $1 s" >&2
            return 1
        fi
        sleep 0.05
    done
    WHEN=$EPOCHREALTIME
}

# give_up NAME WHAT: print why, daemon NAME's log and the IPVS table, and fail the script.
give_up() {
    echo "give up: $2"
    daemon_log "$1"
    ipvsadm -S -n
    exit 1
}

# last_pass_at: when the daemon's last pass ended (last_reconcile.at in the status file).
last_pass_at() {
    grep '"at":' "$STATUS_FILE" 2>/dev/null
}

# after_next_pass SECS: wait until the daemon finishes another pass (its status file's
# last_reconcile.at moves). Right after a resync pass the next one is a whole interval away.
after_next_pass() {
    local before
    before=$(last_pass_at)
    until_true "$1" '[[ $(last_pass_at) != "$before" ]]'
}

# timing NAME START END: one measured latency for the host.
timing() {
    echo "timing $1 $2 $3"
}

# converged: the daemon put both real servers into the kernel and its last pass was clean.
converged() {
    rs_in_kernel "$RS1_IP" && rs_in_kernel "$RS2_IP" &&
        grep -q '"result": "ok"' "$STATUS_FILE" 2>/dev/null
}

# write_manifest NAME: stdin becomes $MANIFEST_DIR/NAME as an editor saves it: written to a
# hidden temporary file next to it (lvsctl ignores dot files), then renamed over it.
write_manifest() {
    cat >"$MANIFEST_DIR/.$1.tmp" && mv -f "$MANIFEST_DIR/.$1.tmp" "$MANIFEST_DIR/$1"
}

# hold_open CLIENT PORT: open a TCP connection from CLIENT to VIP:PORT and keep it open
# without sending anything (busybox httpd waits 60 s for a request); hold_finish sends a
# request over it and prints the answer's body as section hold.body.
hold_open() {
    rm -f /tmp/hold.in /tmp/hold.out
    mkfifo /tmp/hold.in
    _seed_in "$(_seed_client "$1")" busybox nc "$VIP" "$2" </tmp/hold.in >/tmp/hold.out 2>&1 &
    HOLD_PID=$!
    # Opening the fifo for writing lets nc's open for reading finish.
    exec 3>/tmp/hold.in
}

hold_finish() {
    printf 'GET / HTTP/1.0\r\n\r\n' >&3
    exec 3>&-
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -e /proc/$HOLD_PID ]] || break
        sleep 0.05
    done
    kill "$HOLD_PID" 2>/dev/null
    # The body: what follows the blank line after the headers.
    vm_section hold.body busybox awk 'body { print } /^\r?$/ { body = 1 }' /tmp/hold.out
}

# conns NAME: the established connections through IPVS, without their timers, as NAME.conns.
conns() {
    vm_section "$1.conns" bash -c "ipvsadm -L -n -c | awk '\$3 == \"ESTABLISHED\" { print \$1, \$3, \$4, \$5, \$6 }'"
}

# table NAME: `ipvsadm -L -n` (weights, active and inactive connection counts) as NAME.table.
table() {
    vm_section "$1.table" ipvsadm -L -n
}
