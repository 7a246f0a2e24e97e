#!/bin/bash
# PID 1 of lvsctl's test VM (installed as /init in the initramfs by tests/vm/run.sh).
#
# Mounts the basics, loads the IPVS/netfilter/link modules, optionally builds the seed
# topology, runs the command described in /lvsctl/run.conf as root in the root netns with
# cwd /opt, prints `LVSCTL-VM-EXIT=<status>` on the console and powers off. The runner
# reads that marker line; `LVSCTL-VM-ERROR=<reason>` means the VM itself failed.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/usr/libexec/busybox
export HOME=/root TERM=dumb LVSCTL_IN_VM=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo # the firmware leaves its last line unterminated
echo "lvsctl-vm: init started" # run.sh's boot watchdog waits for this line
# What `quiet` would do: only warnings and worse from the kernel while the command runs, so
# kernel lines rarely land in the middle of its output.
echo 4 >/proc/sys/kernel/printk
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /run/lvsctl
echo director >/proc/sys/kernel/hostname

uptime_s() { local u; read -r u _ </proc/uptime; echo "$u"; }
finish() {
    sync
    # poweroff -f makes qemu exit; if it ever returns, exiting PID 1 panics and
    # panic=-1 with qemu's -no-reboot ends the VM too.
    busybox poweroff -f
    exit "$1"
}
fatal() {
    echo "LVSCTL-VM-ERROR=$*"
    finish 1
}

# shellcheck source=/dev/null
. /lvsctl/run.conf || fatal "cannot read /lvsctl/run.conf"

/usr/sbin/ip link set lo up || fatal "cannot bring lo up"

# Everything the seed and lvsctl touch. The kernel loads others on demand through
# /sbin/modprobe (kmod) when they are in the initramfs.
MODULES=(
    ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
    ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh
    iptable_mangle xt_mark xt_multiport xt_comment nf_tables nft_compat
    dummy ipip veth bridge
)
echo "lvsctl-vm: [$(uptime_s)s] loading modules"
modprobe -a "${MODULES[@]}" || fatal "modprobe failed for some of: ${MODULES[*]}"
[[ -e /proc/net/ip_vs ]] || fatal "ip_vs loaded but /proc/net/ip_vs is missing"

# shellcheck source=topology.sh
. /lvsctl/topology.sh || fatal "cannot source /lvsctl/topology.sh"
if [[ $TOPOLOGY == seed ]]; then
    echo "lvsctl-vm: [$(uptime_s)s] building the seed topology"
    seed_topology_up || fatal "seed topology setup failed"
fi

# Commands get the helpers of topology.sh through BASH_ENV (sourced by every bash started
# below, scripts and `bash -c` alike).
export BASH_ENV=/lvsctl/topology.sh
cd /opt || fatal "no /opt"
echo "lvsctl-vm: [$(uptime_s)s] running: ${CMD[*]}"
case $CMD_MODE in
    shell) bash -c "${CMD[0]}" ;;
    # Leading NAME=value words set environment variables, as they would in a shell.
    argv) bash -c 'while (($#)) && [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do export "$1"; shift; done; "$@"' bash "${CMD[@]}" ;;
    script) bash "${CMD[@]}" ;;
    exec) "${CMD[@]}" ;;
    *) fatal "unknown CMD_MODE '$CMD_MODE'" ;;
esac
rc=$?
echo "lvsctl-vm: [$(uptime_s)s] command finished"
echo "LVSCTL-VM-EXIT=$rc"
finish "$rc"
