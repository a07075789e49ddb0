#!/usr/bin/env bash
# The machine a benchmark ran on, for docs/PERFORMANCE.md.
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "ram:     $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "kernel:  $(uname -sr)"
echo "rustc:   $(rustc --version)"
echo "git:     $(git --version)"
echo "libgit2: $(grep -A1 'name = "libgit2-sys"' "$(dirname "$0")/../Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
echo "hyperfine: $(hyperfine --version)"
echo "revertbot: $(git -C "$(dirname "$0")/.." rev-parse --short HEAD)"
