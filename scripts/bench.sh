#!/usr/bin/env bash
# Reproduce BENCHMARKS.md: release builds of sselab as the server and `sselab bench` as the
# load, in separate processes, on loopback only. Every run is bounded by its flags.
#
#   scripts/bench.sh [all|idle|h1conn|scale|fanout|ttfe|shutdown|reconnect|storm|side|h3|h2load|attack|redis|cluster]...
#   scripts/bench.sh instructions|profile|rss   (callgrind, heaptrack: scripts/bench_profile.sh)
#   scripts/bench.sh topics   (many topics on one stream: heaptrack and RSS per extra topic, fan-out;
#                              SSELAB_TOPICS_CASES="streams:topics:rate ..." sets its fan-out runs)
#   scripts/bench.sh floor   (sselab beside the framework floor and an h2 prototype: scripts/bench_floor.sh)
#   scripts/bench.sh cluster (publishes/s through one redis-server against a 3-master Redis Cluster:
#                             scripts/bench_cluster.sh)
#
# SSELAB_BIN=PATH runs that binary (server and client) instead of building this tree;
# SSELAB_SERVER_BIN=PATH runs only the server from another build (a before/after comparison
# with the same client).
#
# Needs about 3 GiB of memory for the 100k-stream run; raises the open-file limit itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debug info (limited: functions with their full paths, no variables) lets heaptrack name
# inlined frames and the crates they belong to; it does not change the code or
# the resident memory (debug sections are not loaded), and one build serves every part.
if [ -n "${SSELAB_BIN:-}" ]; then
  bin=$SSELAB_BIN
else
  CARGO_PROFILE_RELEASE_DEBUG=limited cargo build --release --quiet
  bin=target/release/sselab
fi
server_bin=${SSELAB_SERVER_BIN:-$bin}
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT

# start_server [flags...]: sselab on fixed loopback ports 18080/18443/18444 (and UDP 18443);
# max_streams=N start_server … lowers the stream cap for one server (the storm).
start_server() {
  stop_server
  "$server_bin" --http 127.0.0.1:18080 --https 127.0.0.1:18443 --https-h1 127.0.0.1:18444 --h3 127.0.0.1:18443 \
    --cert-dir "$work/certs" --max-streams "${max_streams:-200000}" --max-topics 100000 "$@" \
    >"$work/banner" 2>"$work/server.log" &
  server_pid=$!
  await_up "$server_pid" 18080 server "$work/server.log"
}
# await_up PID HTTP_PORT NAME LOG [TRIES]: until PID answers /healthz on HTTP_PORT (while alive,
# so another process on the port does not count), every 0.1 s; else show LOG's end and stop.
await_up() {
  local pid=$1 port=$2 name=$3 log=$4 tries=${5:-100}
  for _ in $(seq 1 "$tries"); do
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && kill -0 "$pid" 2>/dev/null && return
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start" >&2
  tail -20 "$log" >&2
  exit 1
}
ca() { echo "--cacert $work/certs/cert.pem"; }
metrics="--server-metrics http://127.0.0.1:18080/metrics"
title() { printf '\n### %s\n\n```\n' "$1"; }
endblock() { printf '```\n'; }
run() { echo "\$ sselab bench $*" | sed "s#$work#\$TMP#g"; "$bin" bench "$@"; }

idle() {
  start_server --h2-max-streams 100 --keepalive 0
  title "Idle memory: 10k HTTP/2 streams over 100 TLS connections"
  run load --url https://127.0.0.1:18443/sse/topics/idle --streams 10000 --connections 100 --proto h2 $(ca) --duration 3 $metrics
  endblock
}

h1conn() {
  start_server --keepalive 0
  title "Idle memory: 2k HTTPS HTTP/1.1 connections (one stream each)"
  run load --url https://127.0.0.1:18444/sse/topics/idle --streams 2000 --proto h1 $(ca) --duration 3 $metrics
  endblock
}

scale() {
  start_server --h2-max-streams 100 --keepalive 0
  title "Scale: 100k HTTP/2 streams on 1000 connections, every one receiving events"
  run load --url https://127.0.0.1:18443/sse/topics/scale --streams 100000 --connections 1000 --proto h2 $(ca) \
    --ramp 20 --duration 10 --publish-url http://127.0.0.1:18080/api/topics/scale/events --rate 1 --drain 20 \
    --connect-timeout 60 $metrics
  endblock
}

fanout() {
  for subscribers in 1000 10000; do
    start_server --h2-max-streams 100 --keepalive 0
    title "Fan-out: $subscribers subscribers ($((subscribers / 100)) HTTP/2 connections), 10 publishes/s"
    run load --url https://127.0.0.1:18443/sse/topics/fan --streams "$subscribers" --connections $((subscribers / 100)) \
      --proto h2 $(ca) --duration 10 --publish-url http://127.0.0.1:18080/api/topics/fan/events --rate 10 $metrics
    endblock
  done
  for rate in 50; do
    start_server --h2-max-streams 100 --keepalive 0
    title "Fan-out: 10k subscribers (100 HTTP/2 connections), $rate publishes/s"
    run load --url https://127.0.0.1:18443/sse/topics/fan$rate --streams 10000 --connections 100 --proto h2 $(ca) \
      --duration 10 --publish-url http://127.0.0.1:18080/api/topics/fan$rate/events --rate "$rate" $metrics
    endblock
  done
}

ttfe() {
  start_server
  title "Time to first event: 1000 HTTP/2 streams opened over 5 s (one at a time, not a burst)"
  run load --url "https://127.0.0.1:18443/sse/hello?timeout=0" --streams 1000 --connections 10 --proto h2 $(ca) --ramp 5 --duration 1
  endblock
  title "Time to first event: 1000 HTTP/1.1 streams over 5 s (plain TCP, connect included)"
  run load --url "http://127.0.0.1:18080/sse/hello?timeout=0" --streams 1000 --proto h1 --ramp 5 --duration 1
  endblock
}

shutdown() {
  start_server --grace 5
  title "Shutdown with 10k open streams (SIGTERM until the process exits)"
  "$bin" bench load --url https://127.0.0.1:18443/sse/topics/down --streams 10000 --connections 100 --proto h2 $(ca) \
    --duration 30 --json >"$work/hold.json" &
  local bench_pid=$!
  for _ in $(seq 1 200); do
    open=$(curl -s http://127.0.0.1:18080/metrics | awk '/^sselab_streams_open\{listener="https",protocol="HTTP\/2"\}/ {print $2}')
    [ "${open:-0}" -ge 10000 ] && break
    sleep 0.1
  done
  echo "open HTTP/2 streams before SIGTERM: $open"
  local start end
  start=$(date +%s.%N)
  kill -TERM "$server_pid"
  wait "$server_pid"; local code=$?
  end=$(date +%s.%N)
  server_pid=""
  echo "exit code $code after $(echo "$end - $start" | bc) s"
  grep -o 'shutting down.*' "$work/server.log" | sed 's/\x1b\[[0-9;]*m//g' | head -1
  kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true
  endblock
}

# reconnect: 2000 HTTP/1.1 streams, a SIGTERM, sselab started again on the same ports, and
# `sselab bench reconnect` timing when each stream came back, for three retry settings.
reconnect() {
  local settings
  for settings in "--retry-jitter 0 --drain-spread 0" "--retry-jitter 0.2 --drain-spread 0" \
    "--retry-jitter 0.2 --drain-spread 5"; do
    # shellcheck disable=SC2086 # the settings are several flags
    start_server --keepalive 0 $settings
    title "Restart with 2000 open HTTP/1.1 streams, server flags: $settings (--retry 5000)"
    echo "\$ sselab bench reconnect --url http://127.0.0.1:18080/sse/hello?timeout=0 --streams 2000 --proto h1 --duration 60"
    "$bin" bench reconnect --url "http://127.0.0.1:18080/sse/hello?timeout=0" --streams 2000 --proto h1 \
      --duration 60 >"$work/reconnect.txt" &
    local bench_pid=$! open=0
    for _ in $(seq 1 300); do
      open=$(curl -s http://127.0.0.1:18080/metrics | awk '/^sselab_streams_open\{listener="http",protocol="HTTP\/1.1"\}/ {print $2}')
      [ "${open:-0}" -ge 2000 ] && break
      sleep 0.1
    done
    echo "open streams before SIGTERM: $open; restarting"
    # shellcheck disable=SC2086
    start_server --keepalive 0 $settings  # SIGTERM, wait for the exit, start again
    wait "$bench_pid"
    cat "$work/reconnect.txt"
    endblock
  done
}

# storm: 1000 EventSource-like HTTP/1.1 clients at once against --max-streams 100, streams
# that end after 3 s; every client comes back after each end and each refusal's retry:, for
# 20 s. With the default jitter, without it, and with refusals answered as 503 (final for an
# EventSource).
storm() {
  local settings
  for settings in "--retry-jitter 0.2" "--retry-jitter 0" "--refusals status"; do
    # shellcheck disable=SC2086 # the settings are several flags
    max_streams=100 start_server $settings
    title "Refusal storm: 1000 HTTP/1.1 EventSource clients, --max-streams 100, server flags: $settings"
    run storm --url "http://127.0.0.1:18080/sse/hello?timeout=3" --streams 1000 --proto h1 --duration 20
    endblock
  done
}

side() {
  for proto in h1 h2; do
    start_server --keepalive 0
    if [ "$proto" = h1 ]; then
      title "Side by side: 1000 streams as 1000 HTTPS HTTP/1.1 connections, 10 events/s fan-out"
      run load --url https://127.0.0.1:18444/sse/topics/side --streams 1000 --proto h1 $(ca) --duration 10 \
        --publish-url http://127.0.0.1:18080/api/topics/side/events --rate 10 $metrics
    else
      title "Side by side: the same 1000 streams on 10 HTTP/2 connections, 10 events/s fan-out"
      run load --url https://127.0.0.1:18443/sse/topics/side --streams 1000 --connections 10 --proto h2 $(ca) --duration 10 \
        --publish-url http://127.0.0.1:18080/api/topics/side/events --rate 10 $metrics
    fi
    endblock
  done
}

# h3: the same server, HTTP/2 then HTTP/3 to it, on the same numbers: idle memory per stream,
# time to first event, fan-out latency. Both keep 100 streams per connection, each server's
# limit (--h2-max-streams 100, and --h3-max-streams at its default of 100).
h3_vs_h2() {
  local proto subscribers
  for proto in h2 h3; do
    start_server --h2-max-streams 100 --keepalive 0
    title "HTTP/2 vs HTTP/3, $proto: idle memory, 10k streams over 100 connections"
    run load --url https://127.0.0.1:18443/sse/topics/idle --streams 10000 --connections 100 --proto "$proto" $(ca) \
      --duration 3 $metrics
    endblock
    start_server
    title "HTTP/2 vs HTTP/3, $proto: time to first event, 1000 streams on 10 connections opened over 5 s"
    run load --url "https://127.0.0.1:18443/sse/hello?timeout=0" --streams 1000 --connections 10 --proto "$proto" $(ca) \
      --ramp 5 --duration 1
    endblock
    for subscribers in 1000 10000; do
      start_server --h2-max-streams 100 --keepalive 0
      title "HTTP/2 vs HTTP/3, $proto: fan-out to $subscribers subscribers ($((subscribers / 100)) connections), 10 publishes/s"
      run load --url https://127.0.0.1:18443/sse/topics/fan --streams "$subscribers" --connections $((subscribers / 100)) \
        --proto "$proto" $(ca) --duration 10 --publish-url http://127.0.0.1:18080/api/topics/fan/events --rate 10 $metrics
      endblock
    done
  done
}

h2load_check() {
  command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; return 1; }
  start_server
  title "Cross-check with h2load: 1000 streams of /sse/hello?timeout=2 (10 connections × 100 streams)"
  before=$(curl -s http://127.0.0.1:18080/metrics | awk '/^sselab_streams_opened_total\{listener="https",protocol="HTTP\/2"\}/ {print $2}')
  h2load -n 1000 -c 10 -m 100 "https://127.0.0.1:18443/sse/hello?timeout=2" | grep -E 'requests:|status codes:|finished in'
  after=$(curl -s http://127.0.0.1:18080/metrics | awk '/^sselab_streams_opened_total\{listener="https",protocol="HTTP\/2"\}/ {print $2}')
  echo "server: sselab_streams_opened_total{https,HTTP/2} went from $before to $after"
  endblock
}

# Under attack: a control client's time to first event, alone and then during each attack,
# with the server's CPU and RSS. Every attack stops by itself after --duration.
attack() {
  start_server
  title "Under attack: HTTP/2 rapid reset, 4 connections over TLS, 100 resets per write"
  run attack rapid-reset --url "https://127.0.0.1:18443/sse/hello?timeout=0" $(ca) --attack-connections 4 \
    --before 5 --duration 10 $metrics
  endblock
  start_server
  title "Under attack: HTTP/2 CONTINUATION flood, 4 connections over TLS, header blocks that never end"
  run attack continuation --url "https://127.0.0.1:18443/sse/hello?timeout=0" $(ca) --attack-connections 4 \
    --before 5 --duration 10 $metrics
  endblock
  start_server
  title "Under attack: slowloris, 1000 plain HTTP/1.1 connections trickling headers"
  run attack slowloris --url "http://127.0.0.1:18080/sse/hello?timeout=0" --attack-connections 1000 \
    --before 5 --duration 15 $metrics
  endblock
  start_server
  title "Under attack: slowloris over TLS, 1000 connections (half trickling, half never handshaking)"
  run attack slowloris --url "https://127.0.0.1:18444/sse/hello?timeout=0" $(ca) --attack-connections 1000 \
    --before 5 --duration 15 $metrics
  endblock
}

# redis: the same fan-out against one node without Redis, then with the subscribers split
# over two nodes sharing a redis-server (no persistence), publishing to one of them; and what
# one publish costs in Redis (its command counts, from INFO commandstats).
redis_pid=""
node_b_pid=""
stop_redis_nodes() {
  local pid
  for pid in $node_b_pid $redis_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  node_b_pid=""
  redis_pid=""
}
# shellcheck source=scripts/bench_profile.sh
source scripts/bench_profile.sh
# shellcheck source=scripts/bench_floor.sh
source scripts/bench_floor.sh
# shellcheck source=scripts/bench_cluster.sh
source scripts/bench_cluster.sh
trap 'stop_server; stop_redis_nodes; prof_stop; fl_stop; rc_stop; rm -rf "$work"' EXIT
healthy() { # url: wait until /healthz says ok (with Redis: its links are up)
  for _ in $(seq 1 100); do curl -s "$1/healthz" | grep -q '"status":"ok"' && return; sleep 0.1; done
  echo "$1 is not healthy" >&2; exit 1
}
redis_commands() { # the commands Redis ran, as "name=calls" words
  redis-cli -p 16379 info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\).*/\1=\2/p' | tr '\n' ' '
}
two_nodes() {
  command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; return 1; }
  local subscribers
  for subscribers in 1000 10000; do
    start_server --h2-max-streams 100 --keepalive 0
    title "One node, no Redis: $subscribers subscribers ($((subscribers / 100)) h2c connections), 10 publishes/s"
    run load --url http://127.0.0.1:18080/sse/topics/one --streams "$subscribers" --connections $((subscribers / 100)) \
      --proto h2c --duration 10 --publish-url http://127.0.0.1:18080/api/topics/one/events --rate 10 $metrics
    endblock

    redis-server --bind 127.0.0.1 --port 16379 --save "" --appendonly no >"$work/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 100); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
    start_server --h2-max-streams 100 --keepalive 0 --redis redis://127.0.0.1:16379
    healthy http://127.0.0.1:18080
    "$bin" --http 127.0.0.1:28080 --https off --https-h1 off --h3 off --cert-dir "$work/certs-b" --max-streams 200000 \
      --max-topics 100000 --h2-max-streams 100 --keepalive 0 --redis redis://127.0.0.1:16379 \
      >"$work/banner-b" 2>"$work/server-b.log" &
    node_b_pid=$!
    healthy http://127.0.0.1:28080
    redis-cli -p 16379 config resetstat >/dev/null
    title "Two nodes on Redis: $subscribers subscribers, half on each ($((subscribers / 200)) h2c connections per node), 10 publishes/s to node A"
    run load --url http://127.0.0.1:18080/sse/topics/two --also-url http://127.0.0.1:28080/sse/topics/two \
      --streams "$subscribers" --connections $((subscribers / 200)) --proto h2c --duration 10 \
      --publish-url http://127.0.0.1:18080/api/topics/two/events --rate 10 $metrics
    echo "redis commands during the run: $(redis_commands)"
    endblock
    stop_server
    stop_redis_nodes
  done
}

# topics: many topics on one stream (issue 25), on the profile part's ports. Heap (heaptrack)
# and RSS per idle stream of one topic (/sse/topics/NAME), then of 1, 8 and 32 topics on
# /sse/topics, every stream following the same topics, and what each topic past the first
# adds; then the same deliveries per second (40 000) as 1000 streams of one topic, 1000 streams
# of 8 topics (8000 subscriptions) and 8000 streams of one topic (8000 subscriptions).
topics() {
  SSELAB_PROFILE_ROWS=${SSELAB_PROFILE_ROWS:-h2-idle h2-topics1 h2-topics8 h2-topics32} profile
  local case streams topics rate url publish
  for case in ${SSELAB_TOPICS_CASES:-1000:1:40 1000:8:40 8000:1:5}; do
    IFS=: read -r streams topics rate <<<"$case"
    if [ "$topics" = 1 ]; then
      url=https://127.0.0.1:18643/sse/topics/fan publish=http://127.0.0.1:18280/api/topics/fan/events
    else
      url="https://127.0.0.1:18643/sse/topics?topic=fan{k}" publish="http://127.0.0.1:18280/api/topics/fan{k}/events"
    fi
    prof_wrap=()
    prof_start 18280 18643 18644 --h2-max-streams 100 --keepalive 0
    title "Many topics, one stream: $streams HTTP/2 streams ($((streams / 100)) connections) of $topics topic(s) each, $rate publishes/s in all"
    run load --url "$url" --topics-per-stream "$topics" --streams "$streams" --connections $((streams / 100)) --proto h2 \
      $(ca) --duration 10 --publish-url "$publish" --rate "$rate" --server-metrics http://127.0.0.1:18280/metrics
    prof_stop TERM
    endblock
  done
}

what=${*:-all}
[ "$what" = all ] && what="idle h1conn ttfe side h3 fanout shutdown reconnect storm scale h2load attack redis cluster"
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%Y-%m-%d)"
for part in $what; do
  case $part in
    idle) idle ;; h1conn) h1conn ;; scale) scale ;; fanout) fanout ;; ttfe) ttfe ;;
    shutdown) shutdown ;; reconnect) reconnect ;; storm) storm ;; side) side ;; h3) h3_vs_h2 ;; h2load) h2load_check ;;
    attack) attack ;;
    redis) two_nodes ;; cluster) cluster_bench ;;
    instructions) instructions ;; profile) profile ;; rss) profile no ;; topics) topics ;;
    floor) floor ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
  esac
done
