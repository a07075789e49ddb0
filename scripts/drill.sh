#!/usr/bin/env bash
# The main job on a fresh machine: installs what the build needs, builds
# revertbot and runs `revertbot drill` (a game day in a sandbox; no cluster,
# no accounts). Arguments go to `revertbot drill` (e.g. --keep, --output json).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing "${BUILD_PACKAGES[@]}"
exec cargo run --quiet -- drill "$@"
