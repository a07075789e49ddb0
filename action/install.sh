#!/usr/bin/env bash
# Installs revertbot for the action: the release asset for this runner's
# OS and architecture, verified against its published .sha256, or, when no
# asset exists for that version and platform (HTTP 404), a build from the
# action's own checkout with `cargo install --locked`.
#
# A checksum mismatch, a missing checksum or any other download failure
# fails the step: it never falls back to an unverified binary or to a build.
#
# Environment (set by action.yml from the inputs):
#   REVERTBOT_VERSION           release tag to install; default: the action's
#                               ref when it is a tag, else v<version> from the
#                               action's Cargo.toml (a SHA-pinned action)
#   REVERTBOT_RELEASE_BASE_URL  where releases are downloaded from; default
#                               $GITHUB_SERVER_URL/$GITHUB_ACTION_REPOSITORY/releases/download.
#                               https only, or http on loopback (tests)
#   RB_ACTION_REF, RB_ACTION_REPOSITORY (github.action_ref / action_repository),
#   GITHUB_ACTION_PATH,
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH, GITHUB_OUTPUT
set -euo pipefail

die() {
  printf '::error title=revertbot install::%s\n' "$*" >&2
  exit 1
}

action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run this from action.yml}"
# action.yml passes github.action_ref / action_repository explicitly: the
# runner's GITHUB_ACTION_* can be empty or the caller's in composite steps.
action_ref="${RB_ACTION_REF:-${GITHUB_ACTION_REF:-}}"
action_repository="${RB_ACTION_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}"
temp_root="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"

# The target triple of the release asset, or empty when none is built for
# this runner.
target_triple() {
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) echo x86_64-unknown-linux-gnu ;;
    Linux/ARM64) echo aarch64-unknown-linux-gnu ;;
    *) echo "" ;;
  esac
}

# The release tag to install.
release_tag() {
  if [ -n "${REVERTBOT_VERSION:-}" ]; then
    echo "$REVERTBOT_VERSION"
    return
  fi
  case "$action_ref" in
    v[0-9]*)
      echo "$action_ref"
      return
      ;;
  esac
  # Pinned by SHA (or `uses: ./`): the version of the checked-out action.
  local version
  version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$action_path/Cargo.toml" | head -n 1)"
  [ -n "$version" ] && echo "v$version"
}

# Releases come from GitHub over https; a test may serve them on loopback
# (the host exactly 127.x.y.z, localhost or [::1], and a port).
check_base_url() {
  local url="$1" authority host
  case "$url" in
    https://?*) return 0 ;;
    http://*)
      authority="${url#http://}"
      authority="${authority%%/*}"
      host="${authority%:*}"
      if [ "$host" != "$authority" ] &&
        [[ "$host" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ || "$host" == localhost || "$host" == "[::1]" ]] &&
        [[ "${authority##*:}" =~ ^[0-9]{1,5}$ ]]; then
        return 0
      fi
      ;;
  esac
  die "REVERTBOT_RELEASE_BASE_URL must be an https URL (or http on loopback, for tests): $url"
}

# Downloads $1 to $2; prints the HTTP status. Transient failures (timeouts,
# 429, 5xx) are retried a bounded number of times; redirects stay on https.
download() {
  local url="$1" out="$2" protocols="=https"
  case "$url" in http://*) protocols="=http,https" ;; esac
  curl --silent --show-error --location \
    --proto "$protocols" --proto-redir "$protocols" \
    --connect-timeout 10 --max-time 300 \
    --retry 3 --retry-delay 2 --retry-max-time 120 \
    --output "$out" --write-out '%{http_code}' \
    "$url" || true
}

work_dir=""
cleanup() {
  [ -z "$work_dir" ] || rm -rf "$work_dir"
}

add_to_path() {
  local bin="$1"
  "$bin/revertbot" --version >&2 || die "the installed binary does not run: $bin/revertbot"
  if [ -n "${GITHUB_PATH:-}" ]; then
    printf '%s\n' "$bin" >>"$GITHUB_PATH"
  fi
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf 'bin=%s\n' "$bin" >>"$GITHUB_OUTPUT"
  fi
  echo "revertbot installed in $bin" >&2
}

build_from_source() {
  local why="$1" root="$temp_root/revertbot-build"
  echo "::notice title=revertbot install::$why: building revertbot from the action's checkout with cargo install --locked (takes a few minutes)" >&2
  command -v cargo >/dev/null 2>&1 || die "$why, and cargo is not installed to build it: install a Rust toolchain before this step or use a released version"
  cargo install --locked --quiet --path "$action_path" --root "$root" >&2 ||
    die "cargo install --locked --path $action_path failed"
  add_to_path "$root/bin"
}

main() {
  local target tag base
  target="$(target_triple)"
  tag="$(release_tag || true)"
  if [ -z "$target" ]; then
    build_from_source "no release asset is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
    return
  fi
  [ -n "$tag" ] || die "cannot tell which release to install: set the version input (a tag such as v0.1.0)"
  case "$tag" in
    */* | *..* | *[!A-Za-z0-9._+-]*) die "version must be a release tag such as v0.1.0, got: $tag" ;;
  esac
  base="${REVERTBOT_RELEASE_BASE_URL:-}"
  if [ -z "$base" ]; then
    if [ -z "$action_repository" ]; then
      build_from_source "the action runs from a local checkout (uses: ./), which has no releases"
      return
    fi
    base="${GITHUB_SERVER_URL:-https://github.com}/$action_repository/releases/download"
  fi
  check_base_url "$base"

  local name="revertbot-$tag-$target"
  local work
  work="$(mktemp -d "$temp_root/revertbot-download.XXXXXX")"
  work_dir="$work"
  trap cleanup EXIT
  local url="${base%/}/$tag/$name.tar.gz" status
  status="$(download "$url" "$work/$name.tar.gz")"
  case "$status" in
    200) ;;
    404)
      build_from_source "no release asset $name.tar.gz for $tag (HTTP 404 at $url)"
      return
      ;;
    *) die "downloading $url failed (HTTP ${status:-no answer}) — not installing" ;;
  esac
  status="$(download "$url.sha256" "$work/$name.tar.gz.sha256")"
  [ "$status" = 200 ] || die "cannot download the checksum $url.sha256 (HTTP ${status:-no answer}) — not installing an unverified binary"

  local expected actual
  expected="$(awk 'NR == 1 { print tolower($1) }' "$work/$name.tar.gz.sha256")"
  case "$expected" in
    "" | *[!0-9a-f]*) die "$url.sha256 holds no sha256 checksum — not installing" ;;
  esac
  [ "${#expected}" -eq 64 ] || die "$url.sha256 holds no sha256 checksum — not installing"
  actual="$(sha256sum "$work/$name.tar.gz" | awk '{ print $1 }')"
  if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $name.tar.gz: expected $expected, got $actual — the download is corrupt or was tampered with; not installing"
  fi
  echo "verified $name.tar.gz: sha256 $actual" >&2

  # Only the one member we need, so an archive cannot write elsewhere.
  tar --extract --gzip --no-same-owner --file "$work/$name.tar.gz" \
    --directory "$work" "$name/revertbot" ||
    die "$name.tar.gz does not contain $name/revertbot"
  local bin="$temp_root/revertbot/$tag/$target/bin"
  mkdir -p "$bin"
  install -m 0755 "$work/$name/revertbot" "$bin/revertbot"
  add_to_path "$bin"
}

main "$@"
