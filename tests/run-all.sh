#!/usr/bin/env bash
# lvsctl's whole test suite: lints, unit and property tests, CLI tests against the fake kernel,
# host kernel tests in private network namespaces, and the real-kernel tests in a throwaway VM.
# Installs what it needs (apt packages, the VM kernel) on a fresh Debian machine; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

# A CI machine's disk once ran out at 4.3 GB of target/ (full debuginfo, incremental state).
# Line tables (Cargo.toml) and one non-incremental build need 1.3 GB. Free space is printed
# so that such a failure is plain.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_kb=$(df -Pk "$target_dir" | awk 'NR==2 {print $4}')
printf 'free disk: %s MB under %s, %s MB under /tmp\n' "$(( free_kb / 1024 ))" "$target_dir" \
  "$(( $(df -Pk /tmp | awk 'NR==2 {print $4}') / 1024 ))"
if (( free_kb < 2 * 1024 * 1024 )); then
  echo "warning: under 2 GB free for the build; a full run needs about 1.5 GB (1.3 GB of build, and VM images)" >&2
fi

step "installing test dependencies (apt packages, VM kernel)"
bash tests/vm/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "the diff engine has no I/O dependencies"
bash tests/check-engine-deps.sh

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo deny: licences, bans, sources and advisories (deny.toml)"
# Built from crates.io once (about 6 CPU-minutes; 27 min wall on a loaded 2-core machine) and
# kept in ~/.cargo/bin.
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --version 0.20.2
cargo deny --locked --offline check licenses bans sources
# RustSec advisories: the live database when github.com is reachable, else the snapshot kept
# in tests/advisory-db/ (see the script).
bash tests/check-advisories.sh

step "cargo test (unit, property, CLI, namespace and VM tests)"
# Nothing skips here: a VM test that cannot boot fails (only LVSCTL_VM=skip skips them), and
# LVSCTL_REQUIRE_NETNS makes the namespace tests fail, not skip, without root. The fuzz targets
# (fuzz_manifest, fuzz_netlink) run their corpus and 8 s of mutation each; LVSCTL_SOAK=1 makes
# the fuzz, fault and VM reliability tests long (RELIABILITY.md).
LVSCTL_REQUIRE_NETNS=1 cargo test --workspace --locked -- --test-threads=2

step "done in $(( $(date +%s) - start ))s"
