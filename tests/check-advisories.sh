#!/usr/bin/env bash
# `cargo deny check advisories`: every crate in Cargo.lock against the RustSec advisory database.
#
# With github.com reachable, cargo-deny fetches the current database. Without it (this project's
# build machines reach only crates.io and Debian), the check runs against the snapshot kept in
# tests/advisory-db/ (its date and commit are in the file name): a stale database still catches
# every advisory published up to that date, where no check catches none. Refresh the snapshot
# from a machine with network access:
#   git clone https://github.com/rustsec/advisory-db && cd advisory-db &&
#   git archive --format=tar --prefix=advisory-db/ HEAD crates rust LICENSE.txt README.md |
#     xz -9 >../tests/advisory-db/rustsec-advisory-db-$(git log -1 --format=%cs)-$(git rev-parse --short HEAD).tar.xz
# (and delete the old one). The database is CC0-1.0 (its LICENSE.txt is in the archive).
#
# Usage: tests/check-advisories.sh            Exit status: cargo-deny's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
URL=https://github.com/rustsec/advisory-db

# The live database when it can be fetched; a network failure half way falls back to the
# snapshot instead of failing the build, an advisory found in either fails it.
if timeout 20 git ls-remote "$URL" HEAD >/dev/null 2>&1 &&
    timeout 300 cargo deny --locked fetch db; then
    echo "advisories: checking against the current RustSec database (fetched from $URL)"
    exec cargo deny --locked --offline check advisories
fi

shopt -s nullglob
snaps=(tests/advisory-db/rustsec-advisory-db-*.tar.xz)
((${#snaps[@]} == 1)) || { echo "advisories: error: expected one snapshot in tests/advisory-db/, found ${#snaps[@]}" >&2; exit 2; }
SNAP=${snaps[0]}
name=$(basename "$SNAP" .tar.xz)           # rustsec-advisory-db-YYYY-MM-DD-COMMIT
date=$(sed -E 's/^rustsec-advisory-db-([0-9]{4}-[0-9]{2}-[0-9]{2})-.*/\1/' <<<"$name")
echo "advisories: $URL could not be fetched; checking against the snapshot of $date ($SNAP)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lvsctl-advisories.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# cargo-deny reads a database as a git checkout named after its URL under db-path; it takes
# the database's date from the HEAD commit, so the commit carries the snapshot's date.
make_db() { # DIR
    mkdir -p "$1"
    tar -xJf "$SNAP" -C "$1" --strip-components=1
    (cd "$1" && git init -q && git add -A &&
        GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
            git -c user.name=lvsctl -c user.email=lvsctl@localhost commit -q -m "RustSec advisory-db snapshot $date")
}
# The directory name is cargo-deny's hash of the URL (0.20.x); if another version names it
# differently, its error says the path it wanted and the database is moved there.
DB="$TMP/db/advisory-db-3157b0e258782691"
make_db "$DB"
sed -E "s#^db-urls = .*#db-path = \"$TMP/db\"\ndb-urls = [\"$URL\"]#" deny.toml >"$TMP/deny.toml"
run() { cargo deny --locked --offline --config "$TMP/deny.toml" check advisories; }
if ! out=$(run 2>&1); then
    want=$(grep -oE "cannot change to '[^']+/advisory-db-[0-9a-f]+'" <<<"$out" | sed -E "s/^cannot change to '(.*)'$/\1/" | head -n1 || true)
    if [[ -n $want && $want != "$DB" ]]; then
        mv "$DB" "$want"
        run
        exit
    fi
    echo "$out" >&2
    exit 1
fi
echo "$out"
