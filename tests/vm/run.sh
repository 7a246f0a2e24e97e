#!/usr/bin/env bash
# Boot lvsctl's throwaway IPVS VM (Debian cloud kernel under qemu TCG, no network card),
# run one command in it as root in the director's (root) netns, stream the VM console to
# stdout, and exit with the command's exit status. See tests/vm/README.md.
#
# Usage:
#   tests/vm/run.sh [--timeout SECS] [--topology seed|none] [--copy HOST_PATH[:GUEST_PATH]]...
#                   [--mem MB] -- SCRIPT_OR_COMMAND...
#
# The command after `--`:
#   - an existing host file (script or binary) as first word: copied into the VM and run
#     with the remaining words as arguments (shell scripts with bash);
#   - one single word otherwise: a bash command line (`-- 'ipvsadm -Ln | grep RS1'`);
#   - several words otherwise: one command and its arguments, no re-parsing.
# Commands and scripts run with cwd /opt and have the helpers of tests/vm/topology.sh
# (client_get, probe, rs_stop_http, vip_on_director, ...) defined.
#
# --copy puts a host file or directory into the VM, by default at /opt/<basename>, plus
# the shared libraries (ldd) of every ELF program in it.
#
# Exit status: the command's own status; 124 when the VM was killed at the timeout;
# 125 when the harness or the VM failed (reason on stderr, console tail included).
#
# Env: LVSCTL_VM_CACHE        cache dir (default $HOME/.cache/lvsctl-vm): kernel, initramfs bases
#      LVSCTL_VM_AUTO_SETUP   1 (default): run setup.sh when the kernel or packages are missing;
#                             0: fail instead
#      LVSCTL_VM_KEEP         1: keep the per-run temp dir (initramfs, console log)
#      LVSCTL_VM_QEMU         qemu binary (default qemu-system-x86_64)
#      LVSCTL_VM_BOOT_TIMEOUT seconds for the VM to reach its init before the boot counts as
#                             stalled and is retried (default 120)
#      LVSCTL_VM_BOOT_ATTEMPTS boots tried before giving up (default 3)
set -Eeuo pipefail
# Anything that fails unexpectedly still says where, in run.sh's error format.
trap 'echo "lvsctl-vm: error: tests/vm/run.sh line $LINENO failed: $BASH_COMMAND" >&2; exit 125' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE="${LVSCTL_VM_CACHE:-${HOME:?set HOME or LVSCTL_VM_CACHE}/.cache/lvsctl-vm}"
QEMU="${LVSCTL_VM_QEMU:-qemu-system-x86_64}"

TIMEOUT=300
TOPOLOGY=none
MEM=1024
COPIES=()

usage() {
    sed -n '/^# Usage:/,/^# Commands and/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 125
}
fail() {
    echo "lvsctl-vm: error: $*" >&2
    exit 125
}
say() { echo "lvsctl-vm: $*" >&2; }

while (($#)); do
    case "$1" in
        --timeout)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "--timeout needs a whole number of seconds, got '${2:-}'"
            TIMEOUT=$2; shift 2 ;;
        --topology)
            [[ ${2:-} == seed || ${2:-} == none ]] || fail "--topology is seed or none, got '${2:-}'"
            TOPOLOGY=$2; shift 2 ;;
        --copy)
            [[ -n ${2:-} ]] || fail "--copy needs HOST_PATH[:GUEST_PATH]"
            COPIES+=("$2"); shift 2 ;;
        --mem)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "--mem needs a size in MB, got '${2:-}'"
            MEM=$2; shift 2 ;;
        --) shift; break ;;
        -h | --help) usage ;;
        *) fail "unknown option '$1' (the command goes after --)" ;;
    esac
done
(($#)) || fail "no command given (usage: run.sh [options] -- SCRIPT_OR_COMMAND...)"

# --- prerequisites --------------------------------------------------------------------
if ! check_out=$("$HERE/setup.sh" --check 2>&1); then
    if [[ ${LVSCTL_VM_AUTO_SETUP:-1} == 1 ]]; then
        say "VM prerequisites missing ($(tail -n1 <<<"$check_out")); running tests/vm/setup.sh"
        mkdir -p "$CACHE"
        # One setup at a time when several runs start together.
        flock "$CACHE/.setup.lock" "$HERE/setup.sh" >&2 || fail "tests/vm/setup.sh failed; the VM cannot start"
    else
        fail "VM prerequisites missing: $(tail -n1 <<<"$check_out")"
    fi
fi
command -v "$QEMU" >/dev/null || fail "$QEMU not found (install qemu-system-x86 or run tests/vm/setup.sh)"
KVER=$(<"$CACHE/kernel/current") || fail "no kernel recorded in $CACHE/kernel/current (run tests/vm/setup.sh)"
KROOT="$CACHE/kernel/$KVER"
[[ -f $KROOT/.complete && -f $KROOT/vmlinuz ]] || fail "kernel cache $KROOT is incomplete (run tests/vm/setup.sh)"

find_prog() { # NAME: absolute path of a host program, also outside a non-root PATH
    local d
    for d in /usr/sbin /usr/bin /sbin /bin; do
        if [[ -x $d/$1 ]]; then echo "$d/$1"; return; fi
    done
    command -v "$1" || fail "host program '$1' not found (run tests/vm/setup.sh)"
}
BUSYBOX=$(find_prog busybox)
BASH_BIN=$(find_prog bash)
IP_BIN=$(find_prog ip)
IPVSADM=$(find_prog ipvsadm)
XT_NFT=$(find_prog xtables-nft-multi)
XT_LEGACY=$(find_prog xtables-legacy-multi)
KMOD=$(find_prog kmod)
XT_EXT_DIR=/usr/lib/x86_64-linux-gnu/xtables
[[ -d $XT_EXT_DIR ]] || fail "iptables extension dir $XT_EXT_DIR not found"
[[ $("$BUSYBOX" cpio --help 2>&1) == *"-H "* ]] || fail "$BUSYBOX has no cpio -H (install busybox-static)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lvsctl-vm.XXXXXX")
QPID=""
READER=""
cleanup() {
    [[ -n $QPID ]] && kill "$QPID" 2>/dev/null
    if [[ ${LVSCTL_VM_KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# --- staging helpers -------------------------------------------------------------------
# Stages mirror Debian's merged /usr so that host paths (and ldd's paths) are valid as is.
new_stage() {
    local s=$1
    mkdir -p "$s"/usr/{bin,sbin,lib,lib64,libexec/busybox}
    ln -s usr/bin "$s/bin"
    ln -s usr/sbin "$s/sbin"
    ln -s usr/lib "$s/lib"
    ln -s usr/lib64 "$s/lib64"
}

is_elf() { [[ -f $1 && $(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; }

# stage_file STAGE SRC [DEST]: copy SRC (symlinks resolved) to DEST (default SRC) in STAGE.
stage_file() {
    local s=$1 src=$2 dest=${3:-$2}
    mkdir -p "$s$(dirname "$dest")"
    cp -L --preserve=mode "$src" "$s$dest"
}

# stage_libs STAGE FILE...: copy the shared libraries ldd names for each ELF FILE.
stage_libs() {
    local s=$1 f lib
    shift
    declare -A seen=()
    for f in "$@"; do
        is_elf "$f" || continue
        # ldd prints `name => /path (addr)` and `/path (addr)`; static files print nothing useful.
        while read -r lib; do
            [[ -n $lib && -z ${seen[$lib]:-} ]] || continue
            seen[$lib]=1
            [[ -e $s$lib ]] || stage_file "$s" "$lib"
        done < <(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true)
    done
}

# --- the base initramfs, cached per content hash -------------------------------------------
MODDIR="$KROOT/lib/modules/$KVER"
BASE_KEY=$(
    {
        echo "kernel $KVER"
        sha256sum "${BASH_SOURCE[0]}" "$HERE/guest-init.sh" "$HERE/topology.sh"
        stat -L -c '%n %s %Y' "$BUSYBOX" "$BASH_BIN" "$IP_BIN" "$IPVSADM" "$XT_NFT" "$XT_LEGACY" "$KMOD"
        # Any package upgrade (libc, iptables, ...) changes this list.
        dpkg-query -W -f='${Package} ${Version}\n' 2>/dev/null || true
    } | sha256sum | cut -c1-16
)
BASE="$CACHE/initramfs/base-$BASE_KEY.cpio"

build_base() {
    local s="$TMP/base" f name target
    say "building initramfs base $BASE_KEY (kernel $KVER)"
    new_stage "$s"
    mkdir -p "$s"/{proc,sys,dev,run,tmp,root,opt,srv,var,etc,lvsctl}
    stage_file "$s" "$HERE/guest-init.sh" /init
    chmod 0755 "$s/init"
    stage_file "$s" "$HERE/topology.sh" /lvsctl/topology.sh

    stage_file "$s" "$BUSYBOX" /usr/bin/busybox
    stage_file "$s" "$BASH_BIN" /usr/bin/bash
    ln -s bash "$s/usr/bin/sh"
    stage_file "$s" "$IP_BIN" /usr/sbin/ip
    stage_file "$s" "$IPVSADM" /usr/sbin/ipvsadm
    stage_file "$s" "$KMOD" /usr/bin/kmod
    for name in modprobe insmod rmmod lsmod depmod modinfo; do
        ln -s ../bin/kmod "$s/usr/sbin/$name"
    done
    stage_file "$s" "$XT_NFT" /usr/sbin/xtables-nft-multi
    stage_file "$s" "$XT_LEGACY" /usr/sbin/xtables-legacy-multi
    # Every name the host gives the two multi-call binaries (iptables-legacy-save,
    # ip6tables-nft, ebtables-nft, ...); the plain names are pinned to nft, Debian's default.
    for f in /usr/sbin/*tables* /sbin/*tables*; do
        [[ -L $f ]] || continue
        target=$(basename "$(readlink -f "$f")")
        [[ $target == xtables-nft-multi || $target == xtables-legacy-multi ]] || continue
        ln -sfn "$target" "$s/usr/sbin/$(basename "$f")"
    done
    for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        ln -sfn xtables-nft-multi "$s/usr/sbin/$name"
    done
    mkdir -p "$s$XT_EXT_DIR"
    cp -a "$XT_EXT_DIR/." "$s$XT_EXT_DIR/"

    # busybox applets live in their own dir, last in PATH, so real programs win.
    for name in $("$BUSYBOX" --list); do
        [[ $name == busybox ]] || ln -s ../../bin/busybox "$s/usr/libexec/busybox/$name"
    done

    stage_libs "$s" "$s/usr/bin/bash" "$s/usr/sbin/ip" "$s/usr/sbin/ipvsadm" "$s/usr/bin/kmod" \
        "$s/usr/sbin/xtables-nft-multi" "$s/usr/sbin/xtables-legacy-multi" "$s$XT_EXT_DIR"/*.so

    # /etc: busybox wget in a netns segfaults without hosts + nsswitch.conf.
    printf '127.0.0.1\tlocalhost director\n::1\tlocalhost\n' >"$s/etc/hosts"
    printf 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\n' >"$s/etc/nsswitch.conf"
    printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$s/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$s/etc/group"
    for f in /etc/protocols /etc/services /etc/ethertypes; do
        [[ -f $f ]] && stage_file "$s" "$f"
    done
    [[ -d /etc/iproute2 ]] && cp -a /etc/iproute2 "$s/etc/"
    # Loading dummy/ipip must not create dummy0/tunl0-style default devices tests trip on.
    mkdir -p "$s/etc/modprobe.d"
    echo 'options dummy numdummies=0' >"$s/etc/modprobe.d/lvsctl-vm.conf"

    # Modules: the network stack and virtual links, plus whatever those depend on
    # (modules.dep lists full dependency closures).
    awk -F': *' '
        $1 ~ /^kernel\/net\/(netfilter|ipv4|ipv6|bridge|sched|core|llc|802|8021q)\// ||
        $1 ~ /^kernel\/drivers\/net\/[^\/]+\.ko/ {
            print $1; n = split($2, deps, " "); for (i = 1; i <= n; i++) print deps[i]
        }' "$MODDIR/modules.dep" | sort -u >"$TMP/modules.list"
    grep -q 'ipvs/ip_vs.ko' "$TMP/modules.list" || fail "modules.dep of $KVER lists no ip_vs module"
    mkdir -p "$s/usr/lib/modules/$KVER"
    find "$MODDIR" -maxdepth 1 -type f -name 'modules.*' -exec cp {} "$s/usr/lib/modules/$KVER/" \;
    (cd "$MODDIR" && tar -cf - -T "$TMP/modules.list") | tar -C "$s/usr/lib/modules/$KVER" -xf -

    mkdir -p "$CACHE/initramfs"
    (cd "$s" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) \
        >"$BASE.tmp.$$" || fail "building the initramfs base failed"
    mv -f "$BASE.tmp.$$" "$BASE"
    rm -rf "$s"
    # Bases of older inputs pile up (30 MB each): keep the 3 newest, and any built in the
    # last 10 minutes, which a concurrent run may be about to read.
    find "$CACHE/initramfs" -maxdepth 1 -name 'base-*.cpio' -printf '%T@ %p\n' | sort -rn |
        tail -n +4 | cut -d' ' -f2- | while read -r f; do
            if [[ -n $(find "$f" -mmin +10) ]]; then rm -f "$f"; fi
        done
    return 0
}
[[ -f $BASE ]] || build_base

# --- the per-run overlay: run.conf, the command, --copy'd files --------------------------------
OV="$TMP/overlay"
new_stage "$OV"
mkdir -p "$OV/opt" "$OV/lvsctl"
ELFS=()

add_copy() { # HOST GUEST
    local host=$1 guest=$2 f
    [[ -e $host ]] || fail "--copy: $host does not exist"
    [[ $guest == /* ]] || guest="/opt/$guest"
    if [[ -d $host ]]; then
        mkdir -p "$OV$guest"
        cp -rL --preserve=mode "$host/." "$OV$guest/"
        while IFS= read -r -d '' f; do
            is_elf "$f" && ELFS+=("$f")
        done < <(find "$OV$guest" -type f -print0)
    else
        stage_file "$OV" "$host" "$guest"
        is_elf "$host" && ELFS+=("$OV$guest")
    fi
    return 0
}

for spec in "${COPIES[@]}"; do
    if [[ $spec == *:* ]]; then
        add_copy "${spec%%:*}" "${spec#*:}"
    else
        add_copy "$spec" "/opt/$(basename "$spec")"
    fi
done

if [[ -f $1 ]]; then
    guest_cmd="/lvsctl/cmd/$(basename "$1")"
    stage_file "$OV" "$1" "$guest_cmd"
    chmod +x "$OV$guest_cmd"
    if is_elf "$1"; then
        ELFS+=("$OV$guest_cmd")
        CMD_MODE=exec
    elif head -n1 "$1" | grep -q '^#!' && ! head -n1 "$1" | grep -qE '^#!.*[/ ](ba)?sh( |$)'; then
        CMD_MODE=exec # another interpreter: its shebang decides
    else
        CMD_MODE=script
    fi
    shift
    CMD=("$guest_cmd" "$@")
elif (($# == 1)); then
    CMD_MODE=shell
    CMD=("$1")
else
    CMD_MODE=argv
    CMD=("$@")
fi
((${#ELFS[@]} == 0)) || stage_libs "$OV" "${ELFS[@]}"

{
    echo "TOPOLOGY=$TOPOLOGY"
    echo "CMD_MODE=$CMD_MODE"
    printf 'CMD=('
    printf '%q ' "${CMD[@]}"
    printf ')\n'
} >"$OV/lvsctl/run.conf"
(cd "$OV" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) \
    >"$TMP/overlay.cpio" || fail "building the per-run initramfs failed"
# The kernel unpacks concatenated newc archives in order; later files win.
cat "$BASE" "$TMP/overlay.cpio" >"$TMP/initrd.cpio"

# --- boot ----------------------------------------------------------------------------------
LOG="$TMP/console.log"
# Under TCG the emulated boot very rarely stalls before the kernel prints anything (seen once
# in CI: "Booting from ROM..." then silence for the whole timeout). A boot that has not
# reached our init within BOOT_TIMEOUT is killed and retried, up to BOOT_ATTEMPTS times; the
# command itself has not started then, so a retry cannot run it twice.
BOOT_TIMEOUT="${LVSCTL_VM_BOOT_TIMEOUT:-120}"
BOOT_ATTEMPTS="${LVSCTL_VM_BOOT_ATTEMPTS:-3}"
[[ $BOOT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "LVSCTL_VM_BOOT_TIMEOUT must be a whole number of seconds, got '$BOOT_TIMEOUT'"
[[ $BOOT_ATTEMPTS =~ ^[1-9][0-9]*$ ]] || fail "LVSCTL_VM_BOOT_ATTEMPTS must be a whole number, got '$BOOT_ATTEMPTS'"
INIT_MARK='^lvsctl-vm: init started'

boot_once() { # sets QSTATUS; returns 0 when the VM got to our init, 1 when the boot hung
    : >"$LOG"
    rm -f "$TMP/console.fifo"
    mkfifo "$TMP/console.fifo"
    # Serial output ends lines with \r\n; strip the \r and the firmware's terminal escapes and
    # keep everything in the log. Stream it to stdout without the kernel's boot messages (they
    # stay in the log and in the tail printed on failure).
    sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' <"$TMP/console.fifo" |
        tee -a "$LOG" | sed -u "/$INIT_MARK/,\$!{/^\[ *[0-9]*\.[0-9]*\] /d}" &
    READER=$!
    # -nic none: no network card at all, so nothing in the VM can reach outside it.
    # KVM does not work on these machines; TCG with -cpu max does. no_timer_check: under TCG
    # on a busy host the kernel's IO-APIC timer check can fail ("MP-BIOS bug") or even panic.
    # No `quiet`: a boot that stalls shows how far it got; init lowers the console log level.
    timeout -k 10 "$TIMEOUT" "$QEMU" -accel tcg -cpu max -m "$MEM" -smp 2 \
        -nographic -no-reboot -nic none \
        -kernel "$KROOT/vmlinuz" -initrd "$TMP/initrd.cpio" \
        -append "console=ttyS0 panic=-1 no_timer_check edd=off" \
        </dev/null >"$TMP/console.fifo" 2>&1 &
    QPID=$!
    local deadline=$((SECONDS + BOOT_TIMEOUT)) hung=0
    while kill -0 "$QPID" 2>/dev/null; do
        grep -q -a -m1 "$INIT_MARK" "$LOG" && break
        if ((SECONDS >= deadline)); then
            hung=1
            kill "$QPID" 2>/dev/null || true # timeout(1) passes the TERM on to qemu
            break
        fi
        sleep 1
    done
    QSTATUS=0
    wait "$QPID" || QSTATUS=$?
    QPID=""
    wait "$READER" || true
    READER=""
    return "$hung"
}

say "booting kernel $KVER (timeout ${TIMEOUT}s, ${MEM} MB, topology $TOPOLOGY)"
ATTEMPT=1
while :; do
    START=$SECONDS
    boot_once && break
    if ((ATTEMPT >= BOOT_ATTEMPTS)); then
        echo "--- last console lines ($LOG) ---" >&2
        tail -n 40 "$LOG" >&2
        echo "---" >&2
        fail "the VM did not reach its init within ${BOOT_TIMEOUT}s in $BOOT_ATTEMPTS boots (emulator stall; raise LVSCTL_VM_BOOT_TIMEOUT if the machine is just slow)"
    fi
    say "boot $ATTEMPT stalled: no init after ${BOOT_TIMEOUT}s; last console lines:"
    tail -n 5 "$LOG" | sed 's/^/    /' >&2
    ATTEMPT=$((ATTEMPT + 1))
    say "booting again (attempt $ATTEMPT of $BOOT_ATTEMPTS)"
done
ELAPSED=$((SECONDS - START))

tail_console() {
    echo "--- last console lines ($LOG) ---" >&2
    tail -n 40 "$LOG" >&2
    echo "---" >&2
}
if ((QSTATUS == 124 || QSTATUS == 137)); then
    tail_console
    echo "lvsctl-vm: error: the VM did not finish within ${TIMEOUT}s and was killed (raise --timeout if the machine is just slow)" >&2
    exit 124
fi
ERR=$(grep -a '^LVSCTL-VM-ERROR=' "$LOG" | tail -n1 || true)
if [[ -n $ERR ]]; then
    tail_console
    fail "the VM failed before the command ran: ${ERR#LVSCTL-VM-ERROR=}"
fi
MARK=$(grep -a -E '^LVSCTL-VM-EXIT=[0-9]+$' "$LOG" | tail -n1 || true)
if [[ -z $MARK ]]; then
    tail_console
    fail "the VM stopped without reporting the command's exit status (qemu status $QSTATUS; kernel panic or init crash?)"
fi
RC=${MARK#LVSCTL-VM-EXIT=}
say "VM finished in ${ELAPSED}s; command exit status $RC"
exit "$RC"
