# shellcheck shell=bash
# Shared by the scripts: find the sselab binary and start a throwaway server on free ports.

# sselab_bin: print the path of a built sselab, building a debug one if there is none.
sselab_bin() {
  if [ -n "${SSELAB_BIN:-}" ]; then echo "$SSELAB_BIN"; return; fi
  for candidate in target/release/sselab target/debug/sselab; do
    if [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
  cargo build --quiet --bin sselab >&2 || { echo "cannot build sselab" >&2; return 1; }
  echo target/debug/sselab
}

# start_sselab WORKDIR [extra flags...]: start sselab on free loopback ports with its
# certificate in WORKDIR/certs. Sets SSELAB_PID, URL_HTTP, URL_HTTPS, URL_HTTPS_H1, URL_H3 (no
# trailing slash) and CERT_DIR. The caller stops it: kill "$SSELAB_PID".
start_sselab() {
  local workdir=$1; shift
  local bin
  bin=$(sselab_bin) || return 1
  "$bin" --http 127.0.0.1:0 --https 127.0.0.1:0 --https-h1 127.0.0.1:0 --h3 127.0.0.1:0 \
    --cert-dir "$workdir/certs" "$@" >"$workdir/banner" 2>"$workdir/log" &
  SSELAB_PID=$!
  local _
  for _ in $(seq 1 100); do
    grep -q '^certificate ' "$workdir/banner" 2>/dev/null && break
    if ! kill -0 "$SSELAB_PID" 2>/dev/null; then
      echo "sselab did not start:" >&2; cat "$workdir/log" >&2; return 1
    fi
    sleep 0.1
  done
  url_of() { awk -v kind="$1" '$1 == "listening" && $2 == kind { sub(/\/$/, "", $3); print $3 }' "$workdir/banner"; }
  URL_HTTP=$(url_of http)
  URL_HTTPS=$(url_of https)
  URL_HTTPS_H1=$(url_of https-h1)
  URL_H3=$(url_of h3)
  CERT_DIR="$workdir/certs"
  [ -n "$URL_HTTP" ] && [ -n "$URL_HTTPS" ] && [ -n "$URL_HTTPS_H1" ] || {
    echo "sselab started but printed no URLs:" >&2; cat "$workdir/banner" >&2; return 1; }
}
