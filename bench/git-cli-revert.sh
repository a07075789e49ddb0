#!/usr/bin/env bash
# What `revertbot revert --app APP --deployed D --lkg L --mode push` does,
# done with the git CLI, as a careful SRE would script it. The baseline of
# bench/revert-vs-git.sh.
#
#   bench/git-cli-revert.sh CHECKOUT APP DEPLOYED LKG [--no-ledger]
#
# CHECKOUT is a full clone whose `origin` is the infra remote. Steps (the same
# as revertbot's, in the same order):
#   1. fetch the branch and the ledger notes (refs/notes/revertbot)
#   2. read the LKG's recorded image digests from its ledger note
#   3. culprits: git log --first-parent LKG..DEPLOYED -- apps/APP/, minus any
#      already reverted (Revertbot-Reverts: trailers between LKG and the tip)
#   4. on the branch tip: git revert --no-commit, newest first (one commit)
#   5. pin each LKG image by digest with sed
#   6. commit with revertbot's trailers, push fast-forward only
#   7. write the incident note on the revert commit and push the notes
# With --no-ledger, steps 2 and 7 are skipped and the digests come from
# $LKG_PINNED (the bare minimum a hand-written script would do).
set -euo pipefail

checkout=$1 app=$2 deployed=$3 lkg=$4 ledger=yes
[[ ${5:-} == --no-ledger ]] && ledger=no
cd "$checkout"
paths="apps/$app/"

# 1. fetch
if [[ $ledger == yes ]]; then
  git fetch -q --no-tags origin +refs/heads/main:refs/remotes/origin/main \
    +refs/notes/revertbot:refs/notes/revertbot
else
  git fetch -q --no-tags origin +refs/heads/main:refs/remotes/origin/main
fi
tip=$(git rev-parse refs/remotes/origin/main)

# 2. LKG images (name:tag@sha256:hex) from the ledger note
if [[ $ledger == yes ]]; then
  pinned=$(git notes --ref revertbot show "$lkg" |
    sed -n 's/^ *"image": "\([^"]*\)",\{0,1\}$/\1/p; s/^ *"digest": "\([^"]*\)",\{0,1\}$/@\1/p' |
    paste -d '' - - | tr '\n' ' ')
else
  pinned=$LKG_PINNED
fi

# 3. culprits, newest first, minus those already reverted
culprits=$(git log --first-parent --format=%H "$lkg..$deployed" -- "$paths")
done_already=$(git log --first-parent --format='%(trailers:key=Revertbot-Reverts,valueonly)' "$lkg..$tip")
todo=()
for c in $culprits; do
  grep -qx "$c" <<<"$done_already" || todo+=("$c")
done
if ((${#todo[@]} == 0)); then
  echo "nothing to revert" >&2
  exit 0
fi

# 4. revert on the tip (detached: no local branch to manage)
git checkout -q --detach "$tip"
git revert --no-commit "${todo[@]}"

# 5. pin by digest
for ref in $pinned; do
  image=${ref%@*}
  sed -i "s|\(image: *\)$image\$|\1$ref|" "$paths"*.yaml
done
git add -A -- "$paths"

# 6. commit and push (fast-forward only: no +, no --force)
incident="$app-${deployed:0:12}"
{
  echo "Revert $app to last-known-good ${lkg:0:12}"
  echo
  for c in "${todo[@]}"; do echo "Reverts ${c:0:12} $(git log -1 --format=%s "$c")"; done
  echo
  echo "Revertbot-App: $app"
  echo "Revertbot-Incident: $incident"
  for c in "${todo[@]}"; do echo "Revertbot-Reverts: $c"; done
  echo "Revertbot-Last-Known-Good: $lkg"
  for ref in $pinned; do echo "Revertbot-Pinned-Image: $ref"; done
} >.git/REVERT_MSG
git commit -q --no-verify -F .git/REVERT_MSG
git push -q origin HEAD:refs/heads/main

# 7. incident note on the revert commit
if [[ $ledger == yes ]]; then
  revert=$(git rev-parse HEAD)
  git notes --ref revertbot add -f -m "{\"incidents\":[{\"id\":\"$incident\",\"app\":\"$app\",\"deployed_revision\":\"$deployed\",\"last_known_good\":\"$lkg\",\"revert_commit\":\"$revert\",\"culprits\":[$(printf '"%s",' "${todo[@]}" | sed 's/,$//')]}]}" "$revert"
  git push -q origin refs/notes/revertbot:refs/notes/revertbot
fi
