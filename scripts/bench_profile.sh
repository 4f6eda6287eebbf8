# shellcheck shell=bash
# Sourced by scripts/bench.sh: the parts that look inside the server instead of timing it
# (issue 16: find out where the bytes and cycles go before changing anything).
#   instructions  callgrind counts the server's instructions per delivery (repeatable on a
#                 noisy machine, where CPU seconds are not), and which functions they go to
#   profile       heaptrack: heap bytes per idle stream/connection by allocation site, and the
#                 server's RSS per stream as the rest of BENCHMARKS.md measures it
#   rss           only the RSS rows (quick; e.g. `MALLOC_ARENA_MAX=2 scripts/bench.sh rss`)
# Each uses its own ports (instructions 18180/18543/18544, profile 18280/18643/18644, HTTP/3
# off), so it can run beside the other parts. Needs valgrind, heaptrack and python3.

# The issues' goals, printed beside each figure (issue 25: a stream's extra topic).
GOAL_H2_IDLE=1536 GOAL_H1_PLAIN=8192 GOAL_H1_TLS=16384 GOAL_H2_EACH=2048 GOAL_DELIVERY_US=1.5
GOAL_EXTRA_TOPIC=300

prof_pid=""
prof_wrap=()
# prof_stop [SIGNAL|none]: stop the profiled server (TERM lets callgrind write its counts;
# none only waits, for heaptrack's wrapper, which ends once its data is written).
prof_stop() {
  [ -n "$prof_pid" ] || return 0
  [ "${1:-TERM}" = none ] || kill -"${1:-TERM}" "$prof_pid" 2>/dev/null || true
  wait "$prof_pid" 2>/dev/null || true
  prof_pid=""
}
# prof_start HTTP HTTPS HTTPS_H1 [flags...]: the release server on those loopback ports, under
# the command in prof_wrap (valgrind, heaptrack, or nothing).
prof_start() {
  local http=$1 https=$2 h1=$3
  shift 3
  "${prof_wrap[@]}" "$server_bin" --http "127.0.0.1:$http" --https "127.0.0.1:$https" --https-h1 "127.0.0.1:$h1" \
    --h3 off --cert-dir "$work/certs" --max-streams 200000 --max-topics 100000 "$@" \
    >"$work/prof-banner" 2>"$work/prof.log" &
  prof_pid=$!
  # Up to 2 minutes: valgrind reads the debug info first.
  await_up "$prof_pid" "$http" "profiled server" "$work/prof.log" 1200
}
# keep PATTERN...: copy the profiler's files out of the temporary directory when SSELAB_KEEP
# names a directory (callgrind_annotate and heaptrack_print can then be run on them again).
keep() {
  [ -n "${SSELAB_KEEP:-}" ] || return 0
  mkdir -p "$SSELAB_KEEP"
  local pattern
  for pattern in "$@"; do cp "$work"/$pattern "$SSELAB_KEEP"/ 2>/dev/null || true; done
}
# cg_annotate OUT PREFIX: callgrind's inclusive and self instructions by function in OUT, into
# PREFIX-incl and PREFIX-self.
cg_annotate() {
  callgrind_annotate --auto=no --inclusive=yes --threshold=99.5 "$1" >"$2-incl"
  callgrind_annotate --auto=no --threshold=99.5 "$1" >"$2-self"
}
# cg_delta DELIVERED1 PREFIX1 DELIVERED2 PREFIX2 TOP_INCL TOP_SELF SAVE: two runs' difference
# per delivery, inclusive (also saved in SAVE) then self.
cg_delta() {
  python3 scripts/callgrind_delta.py "$1" "$2-incl" "$3" "$4-incl" "$5" inclusive | tee "$7"
  python3 scripts/callgrind_delta.py "$1" "$2-self" "$3" "$4-self" "$6" self | tail -n +2
}
json_field() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, r))' "$@"; }

# instructions [CASES]: each case is subscribers:connections:rate:seconds. Two runs per case,
# publishing for seconds and for twice that; (instructions₂ − instructions₁) / (deliveries₂ −
# deliveries₁) leaves out start-up, TLS handshakes, subscribing and shutdown. Then one run
# without valgrind for the server's CPU seconds per delivery, to turn the 1.5 µs goal into
# an instruction budget on this machine.
instructions() {
  command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; return 1; }
  local ports=(18180 18543 18544) case subs conns rate secs run url pub
  local -a delivered
  url=https://127.0.0.1:18543/sse/topics/cg
  pub=http://127.0.0.1:18180/api/topics/cg/events
  for case in ${SSELAB_INSTR_CASES:-1000:10:2:5 10000:100:0.5:4}; do
    IFS=: read -r subs conns rate secs <<<"$case"
    title "Instructions per delivery: $subs subscribers on $conns HTTP/2 connections, $rate publishes/s, server under callgrind"
    for run in 1 2; do
      prof_wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$subs.$run")
      prof_start "${ports[@]}" --h2-max-streams 100 --keepalive 0
      echo "\$ sselab bench load --url $url --streams $subs --connections $conns --proto h2 --duration $((secs * run)) --publish-url $pub --rate $rate --drain 120 --connect-timeout 300"
      "$bin" bench load --url "$url" --streams "$subs" --connections "$conns" --proto h2 $(ca) --duration $((secs * run)) \
        --publish-url "$pub" --rate "$rate" --drain 120 --connect-timeout 300 --json >"$work/cg.json"
      prof_stop TERM
      delivered[run]=$(json_field "$work/cg.json" events_received)
      echo "run $run: $(json_field "$work/cg.json" '"%d streams, %d published, %d delivered, %d lost, %d duplicated" % (established, publish["sent"], events_received, lost, duplicated)'), $(grep -h '^summary:' "$work/callgrind.$subs.$run" | awk '{print $2}') instructions"
      cg_annotate "$work/callgrind.$subs.$run" "$work/cg.$subs.$run"
    done
    cg_delta "${delivered[1]}" "$work/cg.$subs.1" "${delivered[2]}" "$work/cg.$subs.2" 30 25 "$work/cg-delta.$subs"
    endblock
  done
  keep 'callgrind.*' 'cg.*' 'cg-*'
  title "CPU per delivery without valgrind: 1000 subscribers on 10 HTTP/2 connections, 10 publishes/s for 10 s"
  prof_wrap=()
  prof_start "${ports[@]}" --h2-max-streams 100 --keepalive 0
  "$bin" bench load --url "$url" --streams 1000 --connections 10 --proto h2 $(ca) --duration 10 --publish-url "$pub" \
    --rate 10 --server-metrics http://127.0.0.1:18180/metrics --json >"$work/native.json"
  prof_stop TERM
  local us
  us=$(json_field "$work/native.json" 'round(server_cpu_seconds * 1e6 / events_received, 2)')
  echo "server CPU $(json_field "$work/native.json" server_cpu_seconds) s for $(json_field "$work/native.json" events_received) deliveries: $us µs per delivery"
  endblock
  title "Instructions per delivery against the goal"
  printf '%-46s %14s %28s\n' "fan-out" "instructions" "goal (≤ $GOAL_DELIVERY_US µs of CPU)"
  for case in ${SSELAB_INSTR_CASES:-1000:10:2:5 10000:100:0.5:4}; do
    IFS=: read -r subs conns _ _ <<<"$case"
    local per
    per=$(awk '/^instructions per delivery/ {print $4}' "$work/cg-delta.$subs")
    printf '%-46s %14s %28s\n' "$subs subscribers on $conns connections" "$per" \
      "≤ $(awk -v per="$per" -v us="$us" -v goal="$GOAL_DELIVERY_US" 'BEGIN {printf "%.0f", per * goal / us}') (at $us µs now)"
  done
  endblock
}

# The rows of the issue's memory table: name, goal, proto, port (http/https/https-h1), URL
# path, the stream/connection counts: heaptrack's two runs (N and 2N) and the RSS run, and the
# topics each stream follows (`--topics-per-stream`, its {k} in the path). The topics rows have
# no goal per stream: theirs is per extra topic, printed after the table.
# SSELAB_PROFILE_ROWS (ids, space separated, e.g. "h2-idle h2-each") runs only those rows.
prof_rows() {
  local rows=" ${SSELAB_PROFILE_ROWS:-h2-idle h1-plain h1-tls h2-each} "
  all_prof_rows | while IFS= read -r row; do
    [[ $rows == *" ${row%%|*} "* ]] && echo "$row"
  done
  return 0
}
all_prof_rows() {
  cat <<'EOF'
h2-idle|idle HTTP/2 stream, one topic, TLS|GOAL_H2_IDLE|h2|https|/sse/topics/idle|1000:10|2000:20|10000:100|1
h1-plain|idle plain HTTP/1.1 connection|GOAL_H1_PLAIN|h1|http|/sse/topics/idle|1000:1000|2000:2000|2000:2000|1
h1-tls|idle TLS HTTP/1.1 connection|GOAL_H1_TLS|h1|https-h1|/sse/topics/idle|1000:1000|2000:2000|2000:2000|1
h2-each|HTTP/2 stream, one topic each, TLS|GOAL_H2_EACH|h2|https|/sse/topics/each{n}|1000:10|2000:20|10000:100|1
h2-topics1|HTTP/2 /sse/topics stream, 1 topic, TLS|-|h2|https|/sse/topics?topic=idle{k}|1000:10|2000:20|10000:100|1
h2-topics8|HTTP/2 /sse/topics stream, 8 topics, TLS|-|h2|https|/sse/topics?topic=idle{k}|1000:10|2000:20|10000:100|8
h2-topics32|HTTP/2 /sse/topics stream, 32 topics, TLS|-|h2|https|/sse/topics?topic=idle{k}|1000:10|2000:20|10000:100|32
EOF
}
prof_url() { # listener path, on the profile ports
  case $1 in http) echo "http://127.0.0.1:18280$2" ;; https) echo "https://127.0.0.1:18643$2" ;; https-h1) echo "https://127.0.0.1:18644$2" ;; esac
}
open_streams() { curl -s http://127.0.0.1:18280/metrics | awk '/^sselab_streams_open\{/ {s += $2} END {print s + 0}'; }

# heap_run ID URL PROTO STREAMS CONNECTIONS [TOPICS]: the server under heaptrack, the streams
# opened and left idle, then the server killed (SIGKILL: heaptrack keeps what was live at that
# moment as "leaked", which is what the idle streams hold); writes $work/leaks.ID.STREAMS.
heap_run() {
  local id=$1 url=$2 proto=$3 streams=$4 conns=$5 topics=${6:-1} bench_pid open=0
  prof_wrap=(heaptrack -o "$work/heap.$id.$streams")
  prof_start 18280 18643 18644 --h2-max-streams 100 --keepalive 0
  "$bin" bench load --url "$url" --streams "$streams" --connections "$conns" --proto "$proto" $(ca) --duration 120 \
    --topics-per-stream "$topics" --connect-timeout 60 --json >/dev/null 2>&1 &
  bench_pid=$!
  for _ in $(seq 1 600); do
    open=$(open_streams)
    [ "$open" -ge "$streams" ] && break
    sleep 0.1
  done
  sleep 2 # idle: the handshakes' and requests' temporary buffers are gone
  heap_snapshot "$prof_pid" "$(basename "$server_bin")" prof_stop "$bench_pid" "$work/heap.$id.$streams" \
    "$work/leaks.$id.$streams" "$streams" "$open"
}

# heap_snapshot WRAPPER_PID SERVER_NAME STOP_FN BENCH_PID DATA LEAKS STREAMS OPEN: kill the server
# heaptrack runs (SIGKILL, so what is live stays "leaked"), let heaptrack finish (STOP_FN none),
# stop the client, and write heaptrack's leaks of DATA.* to LEAKS; prints the total.
heap_snapshot() {
  local wrapper=$1 name=$2 stop=$3 bench=$4 data=$5 leaks=$6 streams=$7 open=$8
  kill -KILL "$(pgrep -P "$wrapper" -x "$name")"
  "$stop" none
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  heaptrack_print -f "$(ls "$data".*)" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 1 \
    --merge-backtraces 0 --peak-limit 1000000 >"$leaks"
  echo "$streams streams open when killed ($open counted): $(grep -E '^total memory leaked' "$leaks")"
}

# rss_run ID URL PROTO STREAMS CONNECTIONS [TOPICS]: the server alone, `sselab bench` reading
# its RSS.
rss_run() {
  local id=$1 url=$2 proto=$3 streams=$4 conns=$5 topics=${6:-1}
  prof_wrap=()
  prof_start 18280 18643 18644 --h2-max-streams 100 --keepalive 0
  run load --url "$url" --streams "$streams" --connections "$conns" --proto "$proto" $(ca) --duration 3 \
    --topics-per-stream "$topics" --server-metrics http://127.0.0.1:18280/metrics | tee "$work/rss-out.$id" | grep -E '^\$|^streams|^server RSS'
  prof_stop TERM
  awk '/^server RSS/ {print $(NF - 3)}' "$work/rss-out.$id" >"$work/rss.$id"
}

profile() {
  local with_heap=${1:-yes} id name goal proto listener path small big rss topics url
  [ "$with_heap" = no ] || command -v heaptrack >/dev/null || {
    echo "heaptrack missing: apt-get install -y heaptrack" >&2
    return 1
  }
  echo "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-unset}"
  while IFS='|' read -r id name goal proto listener path small big rss topics; do
    url=$(prof_url "$listener" "$path")
    if [ "$with_heap" != no ]; then
      title "Heap per stream by allocation site: $name (heaptrack, ${small%%:*} then ${big%%:*} streams)"
      heap_run "$id" "$url" "$proto" "${small%%:*}" "${small##*:}" "$topics"
      heap_run "$id" "$url" "$proto" "${big%%:*}" "${big##*:}" "$topics"
      python3 scripts/heap_sites.py "$name" "${small%%:*}" "$work/leaks.$id.${small%%:*}" \
        "${big%%:*}" "$work/leaks.$id.${big%%:*}" | tee "$work/sites.$id"
      endblock
    fi
    title "RSS per stream: $name (${rss%%:*} streams on ${rss##*:} connections, no profiler)"
    rss_run "$id" "$url" "$proto" "${rss%%:*}" "${rss##*:}" "$topics"
    endblock
  done < <(prof_rows)
  keep 'heap.*' 'leaks.*'
  title "Bytes per idle stream against the goals"
  printf '%-44s %16s %16s %10s\n' row "heap (heaptrack)" "RSS" goal
  while IFS='|' read -r id name goal _; do
    printf '%-44s %16s %16s %10s\n' "$name" "$(heap_of "$id") B" "$(cat "$work/rss.$id") B" \
      "$([ "$goal" = - ] && echo - || echo "≤ ${!goal} B")"
  done < <(prof_rows)
  extra_topics
  endblock
}
heap_of() { awk 'NR == 1 {print $1}' "$work/sites.$1" 2>/dev/null || echo -; }
# extra_topics: with the 1-topic row beside a K-topic row, what each topic past the first adds
# to a stream: (row K − row 1) / (K − 1), heap and RSS.
extra_topics() {
  [ -f "$work/rss.h2-topics1" ] || return 0
  local id topics heap rss
  while IFS='|' read -r id _ _ _ _ _ _ _ _ topics; do
    [ "$topics" -gt 1 ] && [ -f "$work/rss.$id" ] || continue
    heap=$(awk -v a="$(heap_of h2-topics1)" -v b="$(heap_of "$id")" -v k="$topics" \
      'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.0f", (b - a) / (k - 1)}')
    rss=$(awk -v a="$(cat "$work/rss.h2-topics1")" -v b="$(cat "$work/rss.$id")" -v k="$topics" \
      'BEGIN {printf "%.0f", (b - a) / (k - 1)}')
    printf '%-44s %16s %16s %10s\n' "each extra topic, $topics against 1" "$heap B" "$rss B" "≤ $GOAL_EXTRA_TOPIC B"
  done < <(prof_rows)
}
