#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs the system packages the
# build and the tests need, then formatting, lints and cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(git libssl-dev pkg-config ca-certificates openssl docker-registry)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
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
