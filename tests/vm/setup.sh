#!/usr/bin/env bash
# Prepare this machine to boot lvsctl's throwaway IPVS VM (see tests/vm/README.md).
#
# Idempotent. On a fresh Debian 12 machine (as root) it installs the host packages the
# harness needs and downloads Debian's cloud kernel (which ships IPVS as modules), unpacks
# it without installing it, runs depmod, and caches the result under
#   ${LVSCTL_VM_CACHE:-$HOME/.cache/lvsctl-vm}/kernel/<version>/
# so that later runs need no network. When everything is present it is a fast no-op.
#
# Usage: tests/vm/setup.sh [--check]
#   --check   install/download nothing; exit 1 and say what is missing
#
# Env: LVSCTL_VM_CACHE          cache directory
#      LVSCTL_VM_KERNEL_PKG     kernel package to use (default: what linux-image-cloud-amd64
#                               depends on, e.g. linux-image-6.1.0-56-cloud-amd64)
set -euo pipefail

CACHE="${LVSCTL_VM_CACHE:-${HOME:?set HOME or LVSCTL_VM_CACHE}/.cache/lvsctl-vm}"
KDIR="$CACHE/kernel"
CHECK_ONLY=0
case "${1:-}" in
    --check) CHECK_ONLY=1 ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

say() { echo "lvsctl-vm setup: $*"; }
die() { echo "lvsctl-vm setup: error: $*" >&2; exit 1; }

# Host packages: qemu boots the VM; the rest is copied into the VM's initramfs.
PACKAGES=(qemu-system-x86 busybox-static ipvsadm iptables kmod iproute2)

missing_packages() {
    local p status
    for p in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ "$status" == ii* ]] || echo "$p"
    done
}

command -v dpkg-query >/dev/null || die "this harness needs a Debian-based host (dpkg-query not found)"

mapfile -t MISSING < <(missing_packages)
if ((${#MISSING[@]})); then
    if ((CHECK_ONLY)); then
        die "missing host packages: ${MISSING[*]} (run tests/vm/setup.sh as root to install them)"
    fi
    [[ $(id -u) -eq 0 ]] || die "missing host packages: ${MISSING[*]}; run this script as root, or: sudo apt-get install --no-install-recommends ${MISSING[*]}"
    say "installing host packages: ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${MISSING[@]}"
else
    say "host packages present: ${PACKAGES[*]}"
fi

# The kernel cache: one directory per kernel version, complete once `.complete` exists.
# `current` names the version run.sh boots.
if [[ -f "$KDIR/current" ]]; then
    KVER=$(<"$KDIR/current")
    if [[ -n "$KVER" && -f "$KDIR/$KVER/.complete" ]]; then
        say "kernel $KVER cached in $KDIR/$KVER (nothing to download)"
        exit 0
    fi
fi
if ((CHECK_ONLY)); then
    die "no cached VM kernel in $KDIR (run tests/vm/setup.sh once with network access)"
fi

for tool in apt-get apt-cache dpkg-deb depmod; do
    command -v "$tool" >/dev/null || die "$tool not found (needed to fetch the VM kernel)"
done

resolve_kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}

PKG="${LVSCTL_VM_KERNEL_PKG:-}"
if [[ -z "$PKG" ]]; then
    PKG=$(resolve_kernel_pkg)
    if [[ -z "$PKG" ]]; then
        # Fresh machines often have empty apt lists.
        [[ $(id -u) -eq 0 ]] || die "apt does not know linux-image-cloud-amd64; run 'apt-get update' as root, then retry"
        say "apt lists do not know linux-image-cloud-amd64: running apt-get update"
        apt-get update -q
        PKG=$(resolve_kernel_pkg)
    fi
    [[ -n "$PKG" ]] || die "cannot resolve the kernel package behind linux-image-cloud-amd64 (set LVSCTL_VM_KERNEL_PKG)"
fi

mkdir -p "$KDIR"
# Unpack next to the cache (same file system, so the final mv is atomic); download in
# a world-writable temp dir because apt-get download as root writes as the _apt user.
WORK=$(mktemp -d "$KDIR/.unpack.XXXXXX")
DL=$(mktemp -d "${TMPDIR:-/tmp}/lvsctl-vm-dl.XXXXXX")
trap 'rm -rf "$WORK" "$DL"' EXIT
chmod 0777 "$DL"
say "downloading $PKG (Debian cloud kernel with IPVS modules)"
(cd "$DL" && apt-get download -q "$PKG") || die "apt-get download $PKG failed (network? apt sources?)"
DEB=$(find "$DL" -maxdepth 1 -name '*.deb' -print -quit)
[[ -n "$DEB" ]] || die "apt-get download $PKG produced no .deb"

say "unpacking $(basename "$DEB")"
dpkg-deb -x "$DEB" "$WORK/root"
# Bookworm puts modules under /lib/modules; newer releases under /usr/lib/modules.
MODBASE=""
for d in "$WORK/root/lib/modules" "$WORK/root/usr/lib/modules"; do
    if [[ -d "$d" ]]; then MODBASE="$d"; break; fi
done
[[ -n "$MODBASE" ]] || die "$PKG contains no lib/modules directory"
KVER=$(find "$MODBASE" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n1)
[[ -n "$KVER" ]] || die "$PKG contains no kernel module tree"
VMLINUZ="$WORK/root/boot/vmlinuz-$KVER"
[[ -f "$VMLINUZ" ]] || die "$PKG contains no /boot/vmlinuz-$KVER"

DEST="$WORK/$KVER"
mkdir -p "$DEST/lib/modules"
mv "$VMLINUZ" "$DEST/vmlinuz"
mv "$MODBASE/$KVER" "$DEST/lib/modules/$KVER"
# The package ships no modules.dep; modprobe in the VM needs one.
say "running depmod for $KVER"
depmod -b "$DEST" "$KVER"
[[ -f "$DEST/lib/modules/$KVER/kernel/net/netfilter/ipvs/ip_vs.ko" ||
   -f "$DEST/lib/modules/$KVER/kernel/net/netfilter/ipvs/ip_vs.ko.xz" ]] ||
    die "$PKG has no ip_vs module: it cannot serve as the IPVS test kernel"
echo "$PKG" >"$DEST/package"
touch "$DEST/.complete"

rm -rf "${KDIR:?}/$KVER"
mv "$DEST" "$KDIR/$KVER"
echo "$KVER" >"$KDIR/current.tmp.$$"
mv "$KDIR/current.tmp.$$" "$KDIR/current"
say "kernel $KVER cached in $KDIR/$KVER ($(du -sh "$KDIR/$KVER" | cut -f1))"
