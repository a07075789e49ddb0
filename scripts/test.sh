#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs the system packages the
# build and the tests need, then formatting, lints and cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh
# The tests also run Debian's real OCI registry (openssl signs its tokens)
# and a real OpenSSH server (git over SSH with the agent).
install_missing "${BUILD_PACKAGES[@]}" openssl docker-registry openssh-server
# The tests serve repos with `git http-backend`; fail early if it is absent.
test -x "$(git --exec-path)/git-http-backend" || {
  echo "git-http-backend not found under $(git --exec-path): install Debian's git package" >&2
  exit 1
}

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked "$@"
