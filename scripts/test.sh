#!/usr/bin/env bash
# The one test command: installs what the suite needs when missing, then runs format and
# lint checks, the whole cargo test suite, and the curl checks. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the suite needs, by the command that shows each is there.
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: ${missing[*]} missing; run as root or install: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test"
cargo test

step "scripts/curl_checks.sh"
SSELAB_BIN=target/debug/sselab scripts/curl_checks.sh

step "all green"
