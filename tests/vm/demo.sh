#!/usr/bin/env bash
# lvsctl for real: boots the IPVS test VM with the seed topology (tests/vm/README.md),
# applies examples/pcc.yaml, ppc.yaml and pnmpp.yaml in turn with lvsctl, and shows which
# real server (RS1/RS2) answers clients c1 and c2 on :80 and :22 under each.
#
#   tests/vm/demo.sh              # builds lvsctl (cargo build -p lvsctl), then boots the VM
#
# Needs what the VM tests need (tests/vm/setup.sh, run once as root; run.sh runs it when
# something is missing). Everything networked happens inside the VM, which has no network
# card. Exit status: run.sh's (0 when every step worked).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cargo=${CARGO:-cargo}

echo "demo: building lvsctl (cargo build -p lvsctl)" >&2
(cd "$root" && "$cargo" build -p lvsctl)
# The target directory as cargo sees it (CARGO_TARGET_DIR, config, or the default).
target=$(cd "$root" && "$cargo" metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lvsctl=$target/debug/lvsctl
if [[ ! -x $lvsctl ]]; then
    echo "demo: cargo built no lvsctl at $lvsctl" >&2
    exit 1
fi

echo "demo: booting the VM (10-60 s, depending on how busy this machine is)" >&2
exec "$here/run.sh" --topology seed \
    --copy "$lvsctl:/opt/lvsctl" \
    --copy "$root/examples:/opt/examples" \
    -- "$here/scenarios/demo.sh"
