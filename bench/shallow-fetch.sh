#!/usr/bin/env bash
# Bytes fetched by `revertbot plan` in a depth-1 clone (what actions/checkout
# gives) vs. a full clone, on the synthetic infra repo.
#
#   bench/shallow-fetch.sh SYNTH_DIR [RESULTS_DIR]
#
# The remote is served with `git daemon` on loopback (git://): libgit2 cannot
# fetch shallow over file://. A byte-counting relay (bench/byteproxy.py) sits
# in front of the daemon, so every client is measured on the wire the same
# way; revertbot's own `fetched_bytes` (libgit2's received_bytes) is reported
# beside it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
synth=$(cd "${1:?usage: bench/shallow-fetch.sh SYNTH_DIR [RESULTS_DIR]}" && pwd)
results=${2:-$here/results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
bot=${REVERTBOT:-$here/../target/release/revertbot}
bot=$(cd "$(dirname "$bot")" && pwd)/$(basename "$bot")
# shellcheck disable=SC1091
source "$synth/bench.env"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="revertbot bench" GIT_AUTHOR_EMAIL="bench@revertbot.example"
export GIT_COMMITTER_NAME="revertbot bench" GIT_COMMITTER_EMAIL="bench@revertbot.example"

work=$synth/work-shallow
rm -rf "$work"
mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dport=$(free_port)
pport=$(free_port)
log=$work/wire.log
: >"$log"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
git daemon --export-all --enable=receive-pack --reuseaddr --listen=127.0.0.1 --port="$dport" \
  --base-path="$(dirname "$REMOTE")" "$(dirname "$REMOTE")" &
pids+=($!)
python3 "$here/byteproxy.py" "$pport" "$dport" "$log" &
pids+=($!)
url="git://127.0.0.1:$pport/$(basename "$REMOTE")"
for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$dport/$(basename "$REMOTE")" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.3
: >"$log"

# Sum of server->client bytes logged since line $1.
wire_since() { sleep 0.3; tail -n +"$(($1 + 1))" "$log" | awk '{d += $1} END {print d + 0}'; }
lines() { wc -l <"$log"; }

# The starting state: branch at the tip, ledger holding the LKG record.
git -C "$REMOTE" update-ref refs/heads/main "$TIP"
git -C "$REMOTE" update-ref -d refs/notes/revertbot 2>/dev/null || true
images=()
for ref in $LKG_PINNED; do images+=(--image "$ref"); done
"$bot" --repo "$SYNTH_DIR/infra" --config "$SYNTH_DIR/infra/.revertbot.yaml" \
  record --app "$APP" --revision "$LKG" "${images[@]}" >/dev/null

echo "==> full clone over git:// (the reference)" >&2
n=$(lines)
/usr/bin/time -f %e -o "$work/full.time" git clone -q --bare --no-tags --single-branch --branch main "$url" "$work/full.git"
full_wire=$(wire_since "$n")
full_pack=$(find "$work/full.git/objects/pack" -name '*.pack' -printf '%s\n' | awk '{s += $1} END {print s}')

echo "==> depth-1 clone (what actions/checkout gives)" >&2
n=$(lines)
git clone -q --depth 1 --no-tags --branch main "$url" "$work/shallow"
d1_wire=$(wire_since "$n")

echo "==> revertbot plan in the depth-1 clone (deepens only as far as the LKG)" >&2
n=$(lines)
start=$(date +%s.%N)
"$bot" --repo "$work/shallow" --config "$work/shallow/.revertbot.yaml" --output json -v \
  plan --app "$APP" --deployed "$DEPLOYED" --lkg "$LKG" >"$work/plan.json" 2>"$work/plan.log"
end=$(date +%s.%N)
plan_wire=$(wire_since "$n")
depth_after=$(git -C "$work/shallow" rev-list --count HEAD refs/remotes/origin/main 2>/dev/null || echo "?")
fetched=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apps"][0]["fetched_bytes"])' "$work/plan.json")
culprits=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["apps"][0]["culprits"]))' "$work/plan.json")
deepen_steps=$(grep -c 'deepening the shallow clone' "$work/plan.log" || true)

echo "==> the same plan with the LKG taken from the ledger (no --lkg)" >&2
rm -rf "$work/shallow2"
git clone -q --depth 1 --no-tags --branch main "$url" "$work/shallow2"
n=$(lines)
"$bot" --repo "$work/shallow2" --config "$work/shallow2/.revertbot.yaml" --output json \
  plan --app "$APP" --deployed "$DEPLOYED" >"$work/plan2.json" 2>"$work/plan2.log"
plan2_wire=$(wire_since "$n")
fetched2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apps"][0]["fetched_bytes"])' "$work/plan2.json")

python3 - "$results/shallow-fetch.json" <<PY | tee "$results/shallow-fetch.summary"
import json, sys
full_wire, full_pack = $full_wire, $full_pack
d = dict(
    commits=$COMMITS, apps=$APPS, lkg_back_from_tip="see bench.env", culprits=$culprits,
    full_clone_wire_bytes=full_wire, full_clone_pack_bytes=full_pack,
    full_clone_seconds=float(open("$work/full.time").read().split()[-1]),
    depth1_clone_wire_bytes=$d1_wire,
    plan_fetched_bytes_reported=$fetched, plan_wire_bytes=$plan_wire,
    plan_seconds=round($end - $start, 3), plan_deepen_steps=$deepen_steps,
    shallow_commits_after_plan="$depth_after",
    plan_from_ledger_fetched_bytes_reported=$fetched2, plan_from_ledger_wire_bytes=$plan2_wire,
)
d["ratio_reported_vs_full_wire"] = round($fetched / full_wire, 5)
d["ratio_wire_vs_full_wire"] = round($plan_wire / full_wire, 5)
d["ratio_depth1_plus_plan_vs_full_wire"] = round(($d1_wire + $plan_wire) / full_wire, 5)
json.dump(d, open(sys.argv[1], "w"), indent=2)
mb = lambda b: f"{b / 1e6:8.2f} MB"
print(f"full clone (wire)                 {mb(full_wire)}  (pack {mb(full_pack)})")
print(f"depth-1 clone (wire)              {mb($d1_wire)}")
print(f"plan: fetched_bytes reported      {mb($fetched)}  = {100 * $fetched / full_wire:.2f}% of a full clone")
print(f"plan: on the wire                 {mb($plan_wire)}  = {100 * $plan_wire / full_wire:.2f}% (target <= 5%: {'met' if $plan_wire <= 0.05 * full_wire else 'MISSED'})")
print(f"depth-1 clone + plan (wire)       {mb($d1_wire + $plan_wire)}  = {100 * ($d1_wire + $plan_wire) / full_wire:.2f}%")
print(f"plan deepened {$deepen_steps} time(s); {$culprits} culprits; history now {d['shallow_commits_after_plan']} commits; {d['plan_seconds']} s")
print(f"plan, LKG from the ledger: {mb($fetched2)} reported, {mb($plan2_wire)} on the wire")
PY
