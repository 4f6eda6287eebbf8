#!/usr/bin/env bash
# The one test command: installs what the suite needs when missing, then runs format and
# lint checks, the whole cargo test suite, and the curl checks. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the suite needs, by the command that shows each is there.
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The real-browser tests drive Debian's Chromium and Firefox ESR.
command -v chromium >/dev/null 2>&1 || [ -n "${SSELAB_CHROMIUM:-}" ] || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || [ -n "${SSELAB_FIREFOX:-}" ] || missing+=(firefox-esr)
# tests/redis.rs runs several sselab nodes on a real redis-server (each test its own).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: ${missing[*]} missing; run as root or install: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "scripts/check_layers.sh (imports only go down the layers in src/lib.rs)"
scripts/check_layers.sh

step "tests/fuzz compiles and passes clippy (scripts/fuzz.sh runs the targets)"
# Its own workspace, checked in the main target dir so it reuses what clippy checked above.
# Without its default feature libFuzzer's C++ is not compiled (a check links nothing; the
# C++ is upstream's): the Rust of every target is still checked, in seconds instead of ~40.
CARGO_TARGET_DIR=target cargo clippy --quiet --manifest-path tests/fuzz/Cargo.toml --all-targets \
  --no-default-features -- -D warnings
(cd tests/fuzz && cargo fmt --check)

step "cargo doc (the crate's first page is the layer map; broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet

step "cargo test"
cargo test

step "scripts/curl_checks.sh"
SSELAB_BIN=target/debug/sselab scripts/curl_checks.sh

step "scripts/open_tabs.sh --headless (10 tabs per listener, one Chromium profile)"
. scripts/lib.sh
workdir=$(mktemp -d)
trap 'kill "${SSELAB_PID:-}" 2>/dev/null || true; rm -rf "$workdir"' EXIT
SSELAB_BIN=target/debug/sselab start_sselab "$workdir"
check_tabs() { # url expected-last-line (an extended regex) [sselab tabs flags...]
  local url=$1 expected=$2 last; shift 2
  last=$(SSELAB_BIN=target/debug/sselab SSELAB_CERT_DIR="$CERT_DIR" \
    scripts/open_tabs.sh --headless --tabs 10 --url "$url/" "$@" | tail -n 1)
  printf '%-28s %s\n' "$url" "$last"
  [[ $last =~ ^$expected$ ]] || { echo "open_tabs: expected '$expected'" >&2; return 1; }
}
check_tabs "$URL_HTTP" "open=6 pending=4 protocol=http/1\.1 connections=6 server_streams=6"
check_tabs "$URL_HTTPS_H1" "open=6 pending=4 protocol=http/1\.1 connections=6 server_streams=6"
check_tabs "$URL_HTTPS" "open=10 pending=0 protocol=h2 connections=1 server_streams=10"
# HTTP/3: QUIC forced on for the h3 listener's origin; the counters come over TCP from HTTPS.
h3=(--proto h3 --stats-from "$URL_HTTPS/")
check_tabs "$URL_H3" "open=10 pending=0 protocol=h3 connections=1 server_streams=10" "${h3[@]}"

step "scripts/open_tabs.sh --headless --browser firefox (the same tabs in Firefox ESR, over BiDi)"
# Connections here are the server's connection ids (BiDi has none); a short settle keeps it lean.
# Firefox holds 6 streams in most runs and 7 in some (a connection it opened for a page load,
# reused by a waiting stream: README, "what the browser does").
firefox=(--browser firefox --settle 4)
wall="open=[67] pending=[34] protocol=http/1\.1 connections=[67]"
check_tabs "$URL_HTTP" "$wall server_streams=[67]" "${firefox[@]}"
check_tabs "$URL_HTTPS_H1" "$wall server_streams=[67]" "${firefox[@]}"
check_tabs "$URL_HTTPS" "open=10 pending=0 protocol=h2 connections=1 server_streams=10" "${firefox[@]}"
check_tabs "$URL_H3" "open=10 pending=0 protocol=h3 connections=1 server_streams=10" "${firefox[@]}" "${h3[@]}"
# The fetch from a tab and the new tab's page wait, or get a connection past the six (a page
# load is urgent-start in Firefox: seen once, 78 ms).
check_tabs "$URL_HTTP" "$wall probe_fetch=([0-9]+ms|blocked) probe_nav=([0-9]+ms|blocked) server_streams=[67]" \
  "${firefox[@]}" --probe --probe-timeout 3

step "scripts/open_tabs.sh --headless --probe (what else the origin serves with 10 tabs open)"
# A blocked probe costs its timeout; 3 s is plenty for one that is not.
check_tabs "$URL_HTTP" "open=6 pending=4 protocol=http/1\.1 connections=6 probe_fetch=blocked probe_nav=blocked server_streams=6" \
  --probe --probe-timeout 3
check_tabs "$URL_HTTPS" "open=10 pending=0 protocol=h2 connections=1 probe_fetch=[0-9]+ms probe_nav=[0-9]+ms server_streams=10" \
  --probe --probe-timeout 3
check_tabs "$URL_H3" "open=10 pending=0 protocol=h3 connections=1 probe_fetch=[0-9]+ms probe_nav=[0-9]+ms server_streams=10" \
  --probe --probe-timeout 3 "${h3[@]}"

step "scripts/open_tabs.sh --headless --share (one stream for every tab, from the shell)"
# The leader's stream is one tab's: one connection, one server stream, and the origin free.
check_tabs "$URL_HTTP" "open=10 pending=0 protocol=http/1\.1 connections=1 probe_fetch=[0-9]+ms probe_nav=[0-9]+ms server_streams=1" \
  --share leader --probe --probe-timeout 3
# The worker's stream is the SharedWorker's, which no tab's network events show: the server's
# count is the proof.
check_tabs "$URL_HTTP" "open=10 pending=0 protocol=[a-z0-9./+]+ connections=[01] server_streams=1" --share worker

step "all green"
