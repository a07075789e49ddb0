#!/usr/bin/env bash
# revertbot revert --mode push vs. the same steps with the git CLI, in one
# hyperfine run, on the synthetic infra repo (bench/synth-infra.py).
#
#   bench/revert-vs-git.sh SYNTH_DIR [RESULTS_DIR]
#
# Environment: REVERTBOT (default target/release/revertbot), RUNS (20),
# WARMUP (2), TRANSPORT (file | git; git serves the remote with git daemon on
# loopback for both sides). REVERTBOT_B (+ REVERTBOT_B_ENV, e.g. "X=1 Y=2")
# adds a second revertbot build as a fourth command in the same run, to
# compare a candidate fix against the current build on equal terms.
#
# Before every timed run, hyperfine --prepare resets the remote branch and the
# remote ledger (refs/notes/revertbot) to the starting state (branch at the
# tip, ledger holding only the LKG record), and the local clone's refs to a
# freshly fetched state, so each run does a real revert + push + note.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
synth=$(cd "${1:?usage: bench/revert-vs-git.sh SYNTH_DIR [RESULTS_DIR]}" && pwd)
results=${2:-$here/results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
bot=${REVERTBOT:-$here/../target/release/revertbot}
bot=$(cd "$(dirname "$bot")" && pwd)/$(basename "$bot")
runs=${RUNS:-20}
warmup=${WARMUP:-2}
transport=${TRANSPORT:-file}
# shellcheck disable=SC1091
source "$synth/bench.env"
export LKG_PINNED
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="revertbot bench" GIT_AUTHOR_EMAIL="bench@revertbot.example"
export GIT_COMMITTER_NAME="revertbot bench" GIT_COMMITTER_EMAIL="bench@revertbot.example"

work=$synth/work-$transport
rm -rf "$work"
mkdir -p "$work"
git -C "$REMOTE" config gc.auto 0
git -C "$REMOTE" config receive.autogc false
git -C "$REMOTE" update-ref refs/heads/main "$TIP"
git -C "$REMOTE" update-ref -d refs/notes/revertbot 2>/dev/null || true

daemon_pid=
cleanup() { [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null; true; }
trap cleanup EXIT
case $transport in
  file) url=$REMOTE ;;
  git)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    git daemon --export-all --enable=receive-pack --reuseaddr --listen=127.0.0.1 --port="$port" \
      --base-path="$(dirname "$REMOTE")" "$(dirname "$REMOTE")" &
    daemon_pid=$!
    for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$port/remote.git" >/dev/null 2>&1 && break; sleep 0.1; done
    url="git://127.0.0.1:$port/remote.git"
    ;;
  *) echo "TRANSPORT must be file or git" >&2; exit 2 ;;
esac

for side in bot cli; do
  git clone -q "$REMOTE" "$work/$side"
  git -C "$work/$side" remote set-url origin "$url"
  git -C "$work/$side" config gc.auto 0
  git -C "$work/$side" config user.name "revertbot bench"
  git -C "$work/$side" config user.email bench@revertbot.example
done

echo "==> revertbot record: $LKG ran $LKG_PINNED" >&2
images=()
for ref in $LKG_PINNED; do images+=(--image "$ref"); done
"$bot" --repo "$work/bot" --config "$work/bot/.revertbot.yaml" \
  record --app "$APP" --revision "$LKG" "${images[@]}" >&2
notes0=$(git -C "$REMOTE" rev-parse refs/notes/revertbot)
git -C "$work/cli" fetch -q origin +refs/notes/revertbot:refs/notes/revertbot

# The starting state, restored before every timed run.
cat >"$work/reset.sh" <<EOF
#!/usr/bin/env bash
set -e
git -C "$REMOTE" update-ref refs/heads/main $TIP
git -C "$REMOTE" update-ref refs/notes/revertbot $notes0
for side in bot cli; do
  git -C "$work/\$side" update-ref refs/remotes/origin/main $TIP
  git -C "$work/\$side" update-ref refs/notes/revertbot $notes0
done
git -C "$work/bot" update-ref refs/revertbot/upstream/notes $notes0
git -C "$work/cli" checkout -q --detach $TIP
git -C "$work/cli" reset -q --hard $TIP
EOF
chmod +x "$work/reset.sh"
"$work/reset.sh"

bot_cmd="$bot --repo $work/bot --config $work/bot/.revertbot.yaml revert --app $APP --deployed $DEPLOYED --lkg $LKG --mode push --no-wait --reason bench"
cli_cmd="$here/git-cli-revert.sh $work/cli $APP $DEPLOYED $LKG"
min_cmd="$here/git-cli-revert.sh $work/cli $APP $DEPLOYED $LKG --no-ledger"

# Correctness first: both sides must produce the same tree from the same
# starting state, pin the digests and touch only the app.
echo "==> checking that revertbot and the git CLI build the same revert" >&2
$bot_cmd --output json >"$results/revert-$transport.json"
bot_tree=$(git -C "$REMOTE" rev-parse 'refs/heads/main^{tree}')
bot_parent=$(git -C "$REMOTE" rev-parse 'refs/heads/main^')
bot_files=$(git -C "$REMOTE" diff --name-only "$TIP" refs/heads/main)
bot_notes=$(git -C "$REMOTE" rev-parse refs/notes/revertbot)
"$work/reset.sh"
$cli_cmd
cli_tree=$(git -C "$REMOTE" rev-parse 'refs/heads/main^{tree}')
"$work/reset.sh"
[[ $bot_parent == "$TIP" ]] || { echo "revertbot's revert is not on the tip" >&2; exit 1; }
[[ $bot_notes != "$notes0" ]] || { echo "revertbot did not write its incident note" >&2; exit 1; }
if [[ $bot_files != "apps/$APP/deployment.yaml" ]]; then
  echo "revertbot changed unexpected files: $bot_files" >&2
  exit 1
fi
for ref in $LKG_PINNED; do
  git -C "$REMOTE" show "refs/heads/main:apps/$APP/deployment.yaml" >/dev/null
done
git -C "$REMOTE" show "$bot_tree:apps/$APP/deployment.yaml" >"$work/bot-deployment.yaml"
git -C "$REMOTE" show "$cli_tree:apps/$APP/deployment.yaml" >"$work/cli-deployment.yaml"
pins=0
for ref in $LKG_PINNED; do grep -qF "image: $ref" "$work/bot-deployment.yaml" && pins=$((pins + 1)); done
echo "    revertbot pinned $pins of $(wc -w <<<"$LKG_PINNED") LKG images" >&2
if [[ $bot_tree == "$cli_tree" ]]; then
  echo "    same tree: $bot_tree" >&2
else
  echo "    TREES DIFFER (revertbot $bot_tree, git CLI $cli_tree):" >&2
  diff -u "$work/cli-deployment.yaml" "$work/bot-deployment.yaml" >&2 || true
fi

echo "==> hyperfine ($runs runs, $warmup warmups, transport $transport)" >&2
extra=()
if [[ -n ${REVERTBOT_B:-} ]]; then
  extra=(-n "revertbot B (${REVERTBOT_B_LABEL:-candidate})" "env ${REVERTBOT_B_ENV:-} ${bot_cmd/#$bot/$REVERTBOT_B}")
fi
hyperfine --style basic --runs "$runs" --warmup "$warmup" \
  --prepare "$work/reset.sh" \
  --export-json "$results/revert-vs-git-$transport.json" \
  --export-markdown "$results/revert-vs-git-$transport.md" \
  -n "revertbot revert --mode push" "$bot_cmd" \
  -n "git CLI, same steps (incl. ledger note)" "$cli_cmd" \
  -n "git CLI, minimal (no ledger)" "$min_cmd" \
  "${extra[@]}"
"$work/reset.sh"

python3 - "$results/revert-vs-git-$transport.json" <<'PY' | tee "$results/revert-vs-git-$transport.summary"
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
med = {x["command"]: statistics.median(x["times"]) * 1000 for x in r}
names = list(med)
bot, cli, mini = (med[n] for n in names[:3])
print(f"p50 revertbot          {bot:8.1f} ms   (target < 300 ms: {'met' if bot < 300 else 'MISSED'})")
print(f"p50 git CLI same steps {cli:8.1f} ms   ratio revertbot/git = {bot / cli:.2f} (target <= 0.50: {'met' if bot <= cli / 2 else 'MISSED'})")
print(f"p50 git CLI minimal    {mini:8.1f} ms   ratio revertbot/git-minimal = {bot / mini:.2f}")
for n in names[3:]:
    print(f"p50 {n}: {med[n]:.1f} ms   ratio vs git CLI same steps = {med[n] / cli:.2f}")
PY
