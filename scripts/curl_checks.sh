#!/usr/bin/env bash
# curl's view of sselab: HTTP/2 over TLS, HTTP/1.1 and h2c on the plain port, the
# HTTP/1.1-only control, a certificate trusted with --cacert instead of -k, and the Alt-Svc
# header that announces HTTP/3 (on the HTTPS listener only). HTTP/3 is checked with
# `sselab bench load --proto h3` when this curl has no HTTP/3 (Debian 12's has none).
#
#   scripts/curl_checks.sh [BASE_HTTP] [BASE_HTTPS] [BASE_HTTPS_H1] [BASE_H3]
#
# With no arguments it starts its own sselab on free loopback ports and stops it after.
# With arguments it checks a running server, trusting $CACERT (default certs/cert.pem).
# Prints a table; exits non-zero on any mismatch.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

own_pid=""
workdir=$(mktemp -d)
cleanup() {
  [ -n "$own_pid" ] && kill "$own_pid" 2>/dev/null && wait "$own_pid" 2>/dev/null
  rm -rf "$workdir"
}
trap cleanup EXIT

if [ $# -eq 0 ]; then
  start_sselab "$workdir" --tick-ms 250 || exit 1
  own_pid=$SSELAB_PID
  base_http=$URL_HTTP
  base_https=$URL_HTTPS
  base_https_h1=$URL_HTTPS_H1
  base_h3=$URL_H3
  cacert="$CERT_DIR/cert.pem"
else
  base_http=${1%/}
  base_https=${2:-https://127.0.0.1:8443}
  base_https=${base_https%/}
  base_https_h1=${3:-}
  base_https_h1=${base_https_h1%/}
  # The HTTP/3 listener is on UDP at the HTTPS port number unless told otherwise.
  base_h3=${4:-$base_https}
  base_h3=${base_h3%/}
  cacert=${CACERT:-certs/cert.pem}
fi
[ -n "$base_http" ] && [ -n "$base_https" ] || { echo "curl_checks: no server URLs" >&2; exit 1; }
[ -r "$cacert" ] || { echo "curl_checks: cannot read the certificate $cacert (set CACERT)" >&2; exit 1; }

# The certificate names localhost, so https://localhost:PORT verifies without -k.
localhost_of() { echo "$1" | sed -E 's#//(127\.0\.0\.1|\[::1\])#//localhost#'; }

failures=0
printf '%-38s %-26s %-26s %s\n' CHECK EXPECTED GOT RESULT
row() { # name expected got
  local verdict=ok
  [ "$2" = "$3" ] || { verdict=MISMATCH; failures=$((failures + 1)); }
  printf '%-38s %-26s %-26s %s\n' "$1" "$2" "$3" "$verdict"
}

# Read a stream for a few seconds; print status line, the three SSE headers, and event count.
stream() { # name curl-args...
  local name=$1; shift
  local out="$workdir/$name"
  curl -sS -N -i --max-time 3 "$@" >"$out" 2>"$out.err"
  local code=$?
  # 28 = --max-time reached: expected, the stream never ends by itself.
  [ $code -eq 0 ] || [ $code -eq 28 ] || { echo "curl failed ($code): $(cat "$out.err")" >&2; }
  tr -d '\r' <"$out" >"$out.txt"
}
status_of() { head -n1 "$1" | awk '{print $1, $2}'; }
header_of() { awk -v h="$2" 'BEGIN{IGNORECASE=1} /^$/ {exit} tolower($0) ~ "^" h ":" { sub(/^[^:]*: */, ""); print; exit }' "$1"; }
events_of() { grep -c '^data: ' "$1"; }
at_least_two() { [ "$1" -ge 2 ] 2>/dev/null && echo ">=2" || echo "$1"; }

stream h2 --http2 --cacert "$cacert" "$(localhost_of "$base_https")/sse/hello?timeout=0"
row "https --http2: status" "HTTP/2 200" "$(status_of "$workdir/h2.txt")"
row "https --http2: content-type" "text/event-stream" "$(header_of "$workdir/h2.txt" content-type | cut -d';' -f1)"
row "https --http2: cache-control" "no-cache" "$(header_of "$workdir/h2.txt" cache-control)"
row "https --http2: x-accel-buffering" "no" "$(header_of "$workdir/h2.txt" x-accel-buffering)"
row "https --http2: events" ">=2" "$(at_least_two "$(events_of "$workdir/h2.txt")")"
# The HTTP/3 listener's port, announced to browsers that may move there (--no-alt-svc: none).
if [ -n "$base_h3" ]; then
  row "https: alt-svc" "h3=\":${base_h3##*:}\"; ma=86400" "$(header_of "$workdir/h2.txt" alt-svc | grep . || echo '(none)')"
fi

stream h1 --http1.1 "$base_http/sse/hello?timeout=0"
row "http --http1.1: status" "HTTP/1.1 200" "$(status_of "$workdir/h1.txt")"
row "http --http1.1: content-type" "text/event-stream" "$(header_of "$workdir/h1.txt" content-type | cut -d';' -f1)"
row "http --http1.1: events" ">=2" "$(at_least_two "$(events_of "$workdir/h1.txt")")"

stream h2c --http2-prior-knowledge "$base_http/sse/hello?timeout=0"
row "http --http2-prior-knowledge: status" "HTTP/2 200" "$(status_of "$workdir/h2c.txt")"
row "http --http2-prior-knowledge: events" ">=2" "$(at_least_two "$(events_of "$workdir/h2c.txt")")"

if [ -n "$base_https_h1" ]; then
  stream h1tls --http2 --cacert "$cacert" "$(localhost_of "$base_https_h1")/sse/hello?timeout=0"
  row "https-h1 --http2: status" "HTTP/1.1 200" "$(status_of "$workdir/h1tls.txt")"
  row "https-h1 --http2: events" ">=2" "$(at_least_two "$(events_of "$workdir/h1tls.txt")")"
  # The control must stay HTTP/1.1: it never points a browser at QUIC.
  row "https-h1: alt-svc" "(none)" "$(header_of "$workdir/h1tls.txt" alt-svc | grep . || echo '(none)')"
fi

proto=$(curl -sS --max-time 5 --cacert "$cacert" "$(localhost_of "$base_https")/proto" 2>&1)
row "--cacert, no -k: /proto over" '"HTTP/2"' "$(echo "$proto" | grep -o '"http_version":"[^"]*"' | cut -d: -f2)"

bad=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base_http/sse/hello?timeout=abc")
row "http: timeout=abc" "400" "$bad"

# The issue-25 one-liner: two topics on one stream, payloads unchanged, and a reconnect with
# the last id gets exactly what was published to them since (nothing from another topic).
topics="$base_http/sse/topics?topic=curl-a&topic=curl-b"
curl -sS -N --max-time 60 "$topics" >"$workdir/topics.txt" 2>&1 &
reader=$!
for _ in $(seq 1 300); do
  grep -q '^event: connected' "$workdir/topics.txt" && break
  sleep 0.1
done
post() { curl -s -o /dev/null --max-time 5 -d "$2" "$base_http/api/topics/$1/events"; }
post curl-a 'line one'
post curl-other 'not followed'
curl -s -o /dev/null --max-time 5 -H 'content-type: application/json' \
  -d '{"event":"price","data":{"p":1}}' "$base_http/api/topics/curl-b/events"
for _ in $(seq 1 100); do
  grep -q '^event: topic:curl-b:price' "$workdir/topics.txt" && break
  sleep 0.1
done
kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null
events() { grep -E '^(event|data): ' "$1" | grep -v '^event: connected' | grep -v '^data: {"conn' | cut -d' ' -f2- | xargs; }
row "topics a+b: events" "topic:curl-a line one topic:curl-b:price {p:1}" "$(events "$workdir/topics.txt")"
last_id=$(grep '^id: ' "$workdir/topics.txt" | tail -1 | cut -d' ' -f2)
post curl-b 'missed'
post curl-other 'still not followed'
curl -sS -N --max-time 2 -H "Last-Event-ID: $last_id" "$topics" >"$workdir/topics-again.txt" 2>&1
row "topics a+b: resumed with the last id" "topic:curl-b missed" "$(events "$workdir/topics-again.txt")"

# A refusal a later try can pass (here the lab's own cap: one stream per group, so nothing else
# on the server is refused): curl asking for JSON gets the 503; asking like an EventSource, a
# 200 stream with retry:, one event: refused and no id:, then its end.
# The holder's stream never ends by itself (timeout=0): it holds the slot until it is killed
# below, however slow the machine (--max-time only bounds a run that dies before that). The
# checks start once its connected event came: a probe for the slot would take it itself when
# it got there first (seen beside the browser tests), and the holder would be the one refused.
curl -sS -N --max-time 120 "$base_http/sse/hello?timeout=0&slots=1&group=curl-checks" \
  >"$workdir/holder.txt" 2>&1 &
holder=$!
for _ in $(seq 1 300); do
  grep -q '^event: connected' "$workdir/holder.txt" && break
  sleep 0.1
done
curl -sS -i --max-time 5 -H 'Accept: application/json' "$base_http/sse/hello?slots=1&group=curl-checks" \
  | tr -d '\r' >"$workdir/refused-json.txt"
row "refused, Accept json: status" "HTTP/1.1 503" "$(status_of "$workdir/refused-json.txt")"
row "refused, Accept json: retry-after" "2" "$(header_of "$workdir/refused-json.txt" retry-after)"
curl -sS -i --max-time 5 -H 'Accept: text/event-stream' "$base_http/sse/hello?slots=1&group=curl-checks" \
  | tr -d '\r' >"$workdir/refused-es.txt"
row "refused, EventSource: status" "HTTP/1.1 200" "$(status_of "$workdir/refused-es.txt")"
row "refused, EventSource: x-sselab-refused" "lab_slots" "$(header_of "$workdir/refused-es.txt" x-sselab-refused)"
row "refused, EventSource: the frame" "retry event data" "$(sed '1,/^$/d' "$workdir/refused-es.txt" | grep -v '^$' | cut -d: -f1 | xargs)"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

# HTTP/3: curl when it can, sselab's own HTTP/3 client (the README's check) when it cannot.
if [ -n "$base_h3" ]; then
  if curl -V | grep -qw HTTP3; then
    stream h3 --http3-only --cacert "$cacert" "$(localhost_of "$base_h3")/sse/hello?timeout=0"
    row "https --http3-only: status" "HTTP/3 200" "$(status_of "$workdir/h3.txt")"
    row "https --http3-only: events" ">=2" "$(at_least_two "$(events_of "$workdir/h3.txt")")"
  else
    echo "this curl has no HTTP/3 (curl -V lists no HTTP3): checking with sselab bench load --proto h3"
    h3=$("$(sselab_bin)" bench load --url "$base_h3/sse/hello?timeout=0" --proto h3 --streams 1 --duration 1 \
      --cacert "$cacert" --json 2>&1 | tr -d ' \n')
    row "sselab bench load --proto h3: established" "1" "$(echo "$h3" | grep -o '"established":[0-9]*' | cut -d: -f2)"
    row "sselab bench load --proto h3: first event" "1" "$(echo "$h3" | grep -o '"first_event":{"samples":[0-9]*' | cut -d: -f3)"
  fi
fi

# With a key, the README's token one-liners: publish and subscribe need a token, and the
# answers say why. Only with our own server (a running one may have another key or none).
if [ -n "$own_pid" ]; then
  auth_dir="$workdir/auth"; mkdir -p "$auth_dir"
  SSELAB_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
  export SSELAB_JWT_SECRET
  # -vv: every request's URI is logged, so the log would show a token that was not taken out.
  if start_sselab "$auth_dir" --tick-ms 250 -vv; then
    auth_pid=$SSELAB_PID
    auth_https=$(localhost_of "$URL_HTTPS")
    auth_cacert="$CERT_DIR/cert.pem"
    bin=$(sselab_bin)
    row "auth: banner" "auth: on (HS256 from --jwt-secret)" "$(grep '^auth:' "$auth_dir/banner")"
    pub=$("$bin" token --publish 'topics/*' --ttl 10m 2>/dev/null)
    sub=$("$bin" token --subscribe 'topics/news' --ttl 10m 2>/dev/null)
    other=$("$bin" token --subscribe 'topics/sport' --ttl 10m 2>/dev/null)
    code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$auth_cacert" "$@"; }
    row "auth: publish, no token" "401" "$(code -d hi "$auth_https/api/topics/news/events")"
    curl -s -i --max-time 5 --cacert "$auth_cacert" -d hi "$auth_https/api/topics/news/events" | tr -d '\r' >"$auth_dir/401.txt"
    challenge=$(header_of "$auth_dir/401.txt" www-authenticate | cut -d' ' -f1)
    row "auth: 401 challenge" "Bearer" "$challenge"
    row "auth: publish, bearer token" "202" "$(code -H "Authorization: Bearer $pub" -d hi "$auth_https/api/topics/news/events")"
    row "auth: subscribe, wrong pattern" "403" "$(code -H "Authorization: Bearer $other" "$auth_https/sse/topics/news")"
    stream authsub --http2 --cacert "$auth_cacert" "$auth_https/sse/topics/news?access_token=$sub&from=curl"
    row "auth: ?access_token= --http2: status" "HTTP/2 200" "$(status_of "$workdir/authsub.txt")"
    logged=$(grep -cF '/sse/topics/news?from=curl' "$auth_dir/log")
    row "auth: the stream's URI is logged" ">=1" "$([ "$logged" -ge 1 ] && echo ">=1" || echo "$logged")"
    row "auth: its token is not" "0" "$(grep -cF "$sub" "$auth_dir/log")"
    kill "$auth_pid" 2>/dev/null && wait "$auth_pid" 2>/dev/null
  else
    row "auth: server with a key starts" "started" "failed"
  fi
  unset SSELAB_JWT_SECRET
fi

if [ "$failures" -gt 0 ]; then
  echo "curl_checks: $failures mismatch(es)" >&2
  exit 1
fi
echo "curl_checks: all checks passed"
