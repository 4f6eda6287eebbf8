# shellcheck shell=bash
# Sourced by scripts/bench.sh: `floor`, issue 16's comparison points beside sselab, with the
# same client (`sselab bench`) and the same methods as scripts/bench_profile.sh:
#   sselab    this tree's release build (or SSELAB_BIN)
#   floor     bare axum + axum-server SSE, no product code (the issue's "framework floor")
#   h2writer  the architectural option: the h2 crate directly, one task per connection
#             writing each once-encoded frame to all of its streams
# Both are in scripts/floor/, a separate bench-only crate (its own workspace and Cargo.lock
# copy, built here offline; never by the tests or CI). Ports 18380/18743/18744, HTTP/3 off.
#   SSELAB_FLOOR_PARTS="instructions heap latency" (default: all three)
#   SSELAB_FLOOR_SERVERS="sselab floor h2writer"   (default: all three)

floor_servers=${SSELAB_FLOOR_SERVERS:-sselab floor h2writer}
fl_pid=""
fl_wrap=()
fl_publish=http://127.0.0.1:18380/api/topics
fl_stop() { # [SIGNAL|none], as prof_stop
  [ -n "$fl_pid" ] || return 0
  [ "${1:-TERM}" = none ] || kill -"${1:-TERM}" "$fl_pid" 2>/dev/null || true
  wait "$fl_pid" 2>/dev/null || true
  fl_pid=""
}
# fl_start SERVER: it alone on the floor ports, under the command in fl_wrap.
fl_start() {
  local -a cmd
  if [ "$1" = sselab ]; then
    cmd=("$server_bin" --https-h1 127.0.0.1:18744 --h3 off --max-streams 200000 --max-topics 100000
      --h2-max-streams 100 --keepalive 0)
  else
    cmd=(scripts/floor/target/release/"$1")
  fi
  rm -rf "$work/certs"
  "${fl_wrap[@]}" "${cmd[@]}" --http 127.0.0.1:18380 --https 127.0.0.1:18743 --cert-dir "$work/certs" \
    >"$work/fl-banner" 2>"$work/fl.log" &
  fl_pid=$!
  await_up "$fl_pid" 18380 "$1" "$work/fl.log" 1200
}
# fl_bench TOPIC STREAMS CONNECTIONS [flags...]: `sselab bench` on the floor ports, JSON out.
fl_bench() {
  local topic=$1 streams=$2 conns=$3
  shift 3
  echo "\$ sselab bench load --url https://127.0.0.1:18743/sse/topics/$topic --streams $streams --connections $conns --proto h2 $*" >&2
  "$bin" bench load --url "https://127.0.0.1:18743/sse/topics/$topic" --streams "$streams" --connections "$conns" \
    --proto h2 $(ca) --json "$@"
}
fl_summary() { # JSON file: one line
  json_field "$1" '"%d streams, %d published, %d delivered, %d lost, %d duplicated, delivery p50 %.3f ms p99 %.3f ms" % (established, (publish or {}).get("sent", 0), events_received, lost, duplicated, latency["p50_ms"], latency["p99_ms"])'
}

# a. callgrind instructions per delivery, as bench_profile.sh `instructions`.
floor_instructions() {
  local case subs conns rate secs run server
  local -a delivered
  for case in ${SSELAB_INSTR_CASES:-1000:10:2:5 10000:100:0.5:4}; do
    IFS=: read -r subs conns rate secs <<<"$case"
    for server in $floor_servers; do
      title "Instructions per delivery: $server, $subs subscribers on $conns HTTP/2 connections, $rate publishes/s"
      for run in 1 2; do
        fl_wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/fl-cg.$server.$subs.$run")
        fl_start "$server"
        fl_bench cg "$subs" "$conns" --duration $((secs * run)) --publish-url "$fl_publish/cg/events" --rate "$rate" \
          --drain 120 --connect-timeout 300 >"$work/fl-cg.json"
        fl_stop TERM
        delivered[run]=$(json_field "$work/fl-cg.json" events_received)
        echo "run $run: $(fl_summary "$work/fl-cg.json"), $(grep -h '^summary:' "$work/fl-cg.$server.$subs.$run" | awk '{print $2}') instructions"
        cg_annotate "$work/fl-cg.$server.$subs.$run" "$work/fl.$subs.$run"
      done
      cg_delta "${delivered[1]}" "$work/fl.$subs.1" "${delivered[2]}" "$work/fl.$subs.2" 20 15 "$work/fl-delta.$server.$subs"
      endblock
    done
  done
}

# b. heap per idle HTTP/2 stream (heaptrack, 1000 then 2000 streams on 10/20 connections, one
# topic) as bench_profile.sh `profile`, and RSS per stream for 10k streams on 100 connections.
fl_heap_run() { # SERVER STREAMS CONNECTIONS
  local server=$1 streams=$2 conns=$3 bench_pid open=0
  fl_wrap=(heaptrack -o "$work/fl-heap.$server.$streams")
  fl_start "$server"
  fl_bench idle "$streams" "$conns" --duration 120 --connect-timeout 60 >/dev/null 2>&1 &
  bench_pid=$!
  for _ in $(seq 1 600); do
    open=$(curl -s http://127.0.0.1:18380/metrics | awk '/^sselab_streams_open\{/ {s += $2} END {print s + 0}')
    [ "$open" -ge "$streams" ] && break
    sleep 0.1
  done
  sleep 2
  local name=$server
  [ "$server" != sselab ] || name=$(basename "$server_bin")
  heap_snapshot "$fl_pid" "$name" fl_stop "$bench_pid" "$work/fl-heap.$server.$streams" \
    "$work/fl-leaks.$server.$streams" "$streams" "$open"
}
floor_heap() {
  local server
  for server in $floor_servers; do
    title "Heap per idle HTTP/2 stream: $server (heaptrack, 1000 then 2000 streams on 10/20 connections, one topic)"
    fl_heap_run "$server" 1000 10
    fl_heap_run "$server" 2000 20
    python3 scripts/heap_sites.py "$server idle h2 stream" 1000 "$work/fl-leaks.$server.1000" 2000 "$work/fl-leaks.$server.2000" \
      | tee "$work/fl-sites.$server"
    endblock
    title "RSS per idle HTTP/2 stream: $server (10000 streams on 100 connections, one topic, no profiler)"
    fl_wrap=()
    fl_start "$server"
    fl_bench idle 10000 100 --duration 3 --server-metrics http://127.0.0.1:18380/metrics >"$work/fl-rss.json"
    fl_stop TERM
    fl_summary "$work/fl-rss.json"
    json_field "$work/fl-rss.json" '"server RSS %d B before, %d B with streams: %.0f B per stream" % (server_rss_before_bytes, server_rss_after_bytes, server_rss_per_stream_bytes)' \
      | tee "$work/fl-rss.$server"
    endblock
  done
}

# c. fan-out delivery latency, each server alone in turn, back to back.
floor_latency() {
  local case subs conns rate server
  for case in ${SSELAB_FLOOR_FANOUT:-1000:10:50 10000:100:10}; do
    IFS=: read -r subs conns rate <<<"$case"
    for server in $floor_servers; do
      title "Fan-out: $server, $subs subscribers on $conns HTTP/2 connections, $rate publishes/s for 10 s"
      fl_wrap=()
      fl_start "$server"
      fl_bench fan "$subs" "$conns" --duration 10 --publish-url "$fl_publish/fan/events" --rate "$rate" \
        --server-metrics http://127.0.0.1:18380/metrics --connect-timeout 60 >"$work/fl-fan.$server.$subs.json"
      fl_stop TERM
      fl_summary "$work/fl-fan.$server.$subs.json"
      json_field "$work/fl-fan.$server.$subs.json" '"server CPU %.2f s: %.2f µs per delivery" % (server_cpu_seconds, server_cpu_seconds * 1e6 / max(events_received, 1))'
      endblock
    done
  done
}

floor() {
  command -v valgrind >/dev/null && command -v heaptrack >/dev/null || {
    echo "needs valgrind and heaptrack: apt-get install -y valgrind heaptrack" >&2
    return 1
  }
  (cd scripts/floor && CARGO_PROFILE_RELEASE_DEBUG=limited cargo build --release --offline --quiet)
  local parts=${SSELAB_FLOOR_PARTS:-instructions heap latency} part server case subs row
  for part in $parts; do "floor_$part"; done
  title "sselab beside the framework floor and the one-task-per-connection h2 writer (same client, same run)"
  printf '%-44s' row
  for server in $floor_servers; do printf '%16s' "$server"; done
  printf '\n'
  row() { # LABEL FUNCTION: FUNCTION SERVER prints the cell
    printf '%-44s' "$1"
    for server in $floor_servers; do printf '%16s' "$("$2" "$server" 2>/dev/null || echo -)"; done
    printf '\n'
  }
  cell_instr() { awk '/^instructions per delivery/ {print $4}' "$work/fl-delta.$1.$subs"; }
  cell_heap() { awk 'NR == 1 {print $1 " B"}' "$work/fl-sites.$1"; }
  cell_rss() { awk '{print $(NF - 3) " B"}' "$work/fl-rss.$1"; }
  cell_p50() { json_field "$work/fl-fan.$1.$subs.json" '"%.2f ms" % latency["p50_ms"]'; }
  cell_p99() { json_field "$work/fl-fan.$1.$subs.json" '"%.2f ms" % latency["p99_ms"]'; }
  cell_cpu() { json_field "$work/fl-fan.$1.$subs.json" '"%.2f µs" % (server_cpu_seconds * 1e6 / events_received)'; }
  for case in ${SSELAB_INSTR_CASES:-1000:10:2:5 10000:100:0.5:4}; do
    IFS=: read -r subs row _ <<<"$case"
    row "instructions per delivery, $subs on $row conns" cell_instr
  done
  row "heap per idle h2 stream (heaptrack)" cell_heap
  row "RSS per idle h2 stream, 10k on 100 conns" cell_rss
  for case in ${SSELAB_FLOOR_FANOUT:-1000:10:50 10000:100:10}; do
    IFS=: read -r subs row _ <<<"$case"
    row "fan-out $subs on $row conns: delivery p50" cell_p50
    row "fan-out $subs on $row conns: delivery p99" cell_p99
    row "fan-out $subs on $row conns: CPU/delivery" cell_cpu
  done
  endblock
}
