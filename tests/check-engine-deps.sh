#!/usr/bin/env bash
# The diff engine and the model must stay pure: no async runtime, netlink, iptables, process or
# filesystem crates in their normal dependency trees.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in lvsctl-plan lvsctl-model; do
  tree=$(cargo tree -e normal -p "$crate" --prefix none --offline 2>/dev/null || cargo tree -e normal -p "$crate" --prefix none)
  bad=$(echo "$tree" | grep -Eo '^(tokio|mio|netlink[a-z_-]*|rtnetlink|iptables|nix|libc|notify|socket2|fs-err|async-[a-z-]+)( |$)' | sort -u || true)
  if [ -n "$bad" ]; then
    echo "error: $crate depends on I/O crates: $bad" >&2
    status=1
  else
    echo "ok: $crate has no I/O dependencies ($(echo "$tree" | sort -u | wc -l) crates in its tree)"
  fi
done
exit $status
