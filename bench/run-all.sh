#!/usr/bin/env bash
# Every revertbot benchmark, one command:
#   bench/run-all.sh [WORKDIR]        (default ${TMPDIR:-/tmp}/revertbot-bench)
# Builds revertbot (release), generates the synthetic infra repo (100k
# commits, 2k apps; reused when bench.env is already there, SYNTH_FRESH=1 to
# redo), runs revert-vs-git over file:// and git://, then the shallow-fetch
# measurement. Results land in bench/results/ (JSON, Markdown, summaries).
# Knobs: RUNS, WARMUP (hyperfine), COMMITS, APPS (generator).
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:-${TMPDIR:-/tmp}/revertbot-bench}
synth=$workdir/synth
results=$PWD/bench/results
mkdir -p "$workdir" "$results"
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 2; }

echo "==> cargo build --release" >&2
cargo build --release --quiet

if [[ ${SYNTH_FRESH:-0} == 1 || ! -f $synth/bench.env ]]; then
  echo "==> generating the synthetic infra repo in $synth" >&2
  python3 bench/synth-infra.py "$synth" --commits "${COMMITS:-100000}" --apps "${APPS:-2000}" 2>&1 | tee "$results/synth.log" >&2
fi

TRANSPORT=file bench/revert-vs-git.sh "$synth" "$results"
TRANSPORT=git bench/revert-vs-git.sh "$synth" "$results"
bench/shallow-fetch.sh "$synth" "$results"
bench/machine.sh >"$results/machine.txt"
echo "==> results in $results" >&2
cat "$results"/*.summary
