#!/usr/bin/env bash
# Installs the Debian packages given as arguments when any is missing
# (sourced by drill.sh and test.sh; uses sudo when not root).
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building revertbot needs (git2 links the system OpenSSL).
BUILD_PACKAGES=(git libssl-dev pkg-config ca-certificates)
