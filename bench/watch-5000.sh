#!/usr/bin/env bash
# `revertbot watch` over 5,000 apps, steady state, one command:
#   bench/watch-5000.sh [WORKDIR]        (default ${TMPDIR:-/tmp}/revertbot-bench-watch)
#
# Builds revertbot (release; REVERTBOT=path skips the build), generates the
# synthetic infra repo (bench/watch-synth.py: 5,000 apps, every app's LKG in
# the ledger at the deployed tip; reused, SYNTH_FRESH=1 to redo), starts the
# stub Argo CD (bench/watch-argocd-stub.py, counts calls per endpoint), then
#   1. `revertbot check` once per run, CHECK_RUNS times, under /usr/bin/time
#      (wall, user, sys, max RSS) with the calls it made;
#   2. `revertbot watch --interval INTERVAL` for CYCLES cycles
#      (bench/watch-measure.py: CPU, peak RSS and calls per cycle);
#   3. with PERF=1, `perf record` of one check and its hottest symbols.
# Results: bench/results/watch-*. Knobs: APPS (5000), PORT (18080),
# REPLICAS (pods per app in the stub, 2), CYCLES (8), INTERVAL (5s),
# CHECK_RUNS (5), OUT (result prefix, default bench/results/watch).
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:-${TMPDIR:-/tmp}/revertbot-bench-watch}
synth=$workdir/synth
results=$PWD/bench/results
out=${OUT:-$results/watch}
apps=${APPS:-5000}
port=${PORT:-18080}
cycles=${CYCLES:-8}
interval=${INTERVAL:-5s}
check_runs=${CHECK_RUNS:-5}
mkdir -p "$workdir" "$results"
export ARGOCD_AUTH_TOKEN=${ARGOCD_AUTH_TOKEN:-bench-watch-token}

if [[ -n ${REVERTBOT:-} ]]; then
  bin=$(realpath "$REVERTBOT")
else
  echo "==> cargo build --release" >&2
  cargo build --release --quiet
  bin=$PWD/target/release/revertbot
fi

if [[ ${SYNTH_FRESH:-0} == 1 || ! -f $synth/bench.env ]] || ! grep -q "^APPS=$apps$" "$synth/bench.env" || ! grep -q "^PORT=$port$" "$synth/bench.env"; then
  echo "==> generating $apps apps in $synth" >&2
  python3 bench/watch-synth.py "$synth" --apps "$apps" --port "$port"
fi
# shellcheck disable=SC1091
. "$synth/bench.env"
infra=$INFRA
# A previous run's refs may have moved (nothing should change in steady state).
git -C "$infra" fetch -q origin "+refs/notes/revertbot:refs/notes/revertbot"

echo "==> stub Argo CD on 127.0.0.1:$port" >&2
python3 bench/watch-argocd-stub.py "$synth" --port "$port" --token "$ARGOCD_AUTH_TOKEN" --replicas "${REPLICAS:-2}" \
  2>"$workdir/stub.log" &
stub=$!
trap 'kill "$stub" 2>/dev/null || true' EXIT
stub_url=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -fs "$stub_url/_stats" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$stub_url/_stats" >/dev/null

echo "==> revertbot check x$check_runs" >&2
: >"$out-check.txt"
for i in $(seq "$check_runs"); do
  curl -fs -X POST "$stub_url/_reset" >/dev/null
  (cd "$infra" && /usr/bin/time -f "wall_s=%e user_s=%U sys_s=%S max_rss_kib=%M" -o "$workdir/time.txt" \
    "$bin" --repo "$infra" --output json check >"$workdir/check.json" 2>"$workdir/check.err") || true
  calls=$(curl -fs "$stub_url/_stats")
  summary=$(python3 -c '
import collections, json, sys
r = json.load(open(sys.argv[1]))
a = r["apps"]
print("apps=%d verdicts=%s actions=%s" % (len(a),
      dict(collections.Counter(x["verdict"] for x in a)),
      dict(collections.Counter(x["action"] for x in a))))
' "$workdir/check.json")
  echo "run=$i $(cat "$workdir/time.txt") calls=$calls $summary" | tee -a "$out-check.txt" >&2
done

echo "==> revertbot watch --interval $interval, $cycles cycles" >&2
python3 bench/watch-measure.py --revertbot "$bin" --infra "$infra" --stub "$stub_url" \
  --cycles "$cycles" --interval "$interval" --out "$out-watch" --label "${LABEL:-revertbot watch, $apps apps}"

if [[ ${PERF:-0} == 1 ]]; then
  echo "==> perf record of one check" >&2
  (cd "$infra" && perf record -q -F 499 --call-graph dwarf,32768 -o "$workdir/perf.data" \
    "$bin" --repo "$infra" --output json check >/dev/null 2>&1)
  {
    echo "# perf report --children (symbols with >= 2% inclusive), one revertbot check over $apps apps"
    perf report -i "$workdir/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
      | grep '%' | grep -v '^#' | awk '$1+0 >= 2.0' | cut -c1-160
  } >"$out-check-perf.txt"
  echo "    $out-check-perf.txt" >&2
fi
bench/machine.sh >"$out-machine.txt"
echo "==> results: $out-check.txt $out-watch.{json,md} $out-machine.txt" >&2
