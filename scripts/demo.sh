#!/usr/bin/env bash
# The main job on an embedded sample: build revertbot, create a sample infra
# repo with a bad deploy (scripts/sample-infra.sh), record the good revision
# as last-known-good, plan the revert, push it, and show the result.
set -euo pipefail
cd "$(dirname "$0")/.."

sandbox=${1:-${TMPDIR:-/tmp}/revertbot-sample}
echo "==> building revertbot (debug)"
cargo build --quiet
bot="$PWD/target/debug/revertbot"

echo "==> creating the sample infra repo in $sandbox"
eval "$(scripts/sample-infra.sh "$sandbox")"
cd "$sandbox/infra"

echo "==> revertbot record: $GOOD ran guestbook:v1 at $DIGEST while healthy"
"$bot" record --app guestbook --revision "$GOOD" --image "ghcr.io/acme/guestbook:v1@$DIGEST"

echo
echo "==> revertbot plan: the deploy of $BAD broke guestbook"
"$bot" plan --app guestbook --deployed "$BAD"

echo "==> revertbot revert --mode push"
"$bot" revert --app guestbook --deployed "$BAD" --mode push --reason "guestbook v2 fails its health checks"

echo
echo "==> the remote now ends with the revert (note the pinned digest and the trailers):"
git --git-dir "$sandbox/remote.git" log -1 --format='%H%n%n%B' main
git --git-dir "$sandbox/remote.git" show --format= main -- apps/guestbook
echo "==> the ledger (refs/notes/revertbot) on the remote:"
git --git-dir "$sandbox/remote.git" notes --ref revertbot list
