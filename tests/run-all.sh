#!/usr/bin/env bash
# lvsctl's whole test suite: lints, unit and property tests, CLI tests against the fake kernel,
# host kernel tests in private network namespaces, and the real-kernel tests in a throwaway VM.
# Installs what it needs (apt packages, the VM kernel) on a fresh Debian machine; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "installing test dependencies (apt packages, VM kernel)"
bash tests/vm/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "the diff engine has no I/O dependencies"
bash tests/check-engine-deps.sh

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, property, CLI, namespace and VM tests)"
# LVSCTL_VM=required: a VM test that cannot boot fails instead of skipping.
LVSCTL_VM=required cargo test --workspace --locked -- --test-threads=2

step "done in $(( $(date +%s) - start ))s"
