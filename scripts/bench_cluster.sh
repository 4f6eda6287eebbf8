# shellcheck shell=bash
# Sourced by scripts/bench.sh: `cluster`, publishes/s and deliveries/s through one
# redis-server against a 3-master Redis Cluster, with the same client (issue 26).
#
# Setups, each with two sselab nodes of its own (subscribers on A, publishers on B):
#   standalone  one redis-server
#   cluster     3 masters, no replicas (throughput only: a replica would add its CPU)
#   replicas    3 masters with 1 replica each, publishes answered when the master has them
#   wait        the same cluster, nodes with --redis-min-replicas 1 (each publish WAITs)
# The streams follow the same 32 topics (`--topics-per-stream`, sselab's cap per stream), so
# the channels land on every shard; 32 publishers on node B send to each topic in turn. Each
# setup flat out (--rate at the bench's ceiling: as fast as answers come back), then at a fixed
# 1000 publishes/s; two rounds, every setup once per round, so a busy machine hits them alike.
# Redis processes and both nodes of every setup stay up for the whole part; idle ones only ping.
#   SSELAB_CLUSTER_SETUPS="standalone cluster replicas wait"  SSELAB_CLUSTER_ROUNDS=2
#   SSELAB_CLUSTER_RATES="100000 1000"  SSELAB_CLUSTER_STREAMS=10  SSELAB_CLUSTER_PUBLISHERS=32
# Ports: Redis 16390 (standalone), 16391-16393 (cluster), 16394-16399 (replicas), each cluster
# port's bus at +10000; sselab 18171-18174 (node A of each setup), 18176-18179 (node B).

rc_pids=()
rc_stop() { # every process this part started, newest first
  local i
  for ((i = ${#rc_pids[@]} - 1; i >= 0; i--)); do kill "${rc_pids[i]}" 2>/dev/null || true; done
  for ((i = ${#rc_pids[@]} - 1; i >= 0; i--)); do wait "${rc_pids[i]}" 2>/dev/null || true; done
  rc_pids=()
}
rc_free() { # PORT...: each free on loopback, or stop naming it
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is taken; the cluster part needs 16390-16399, 26391-26399, 18171-18179" >&2
      exit 1
    fi
  done
}
# rc_redis PORT [flags...]: a redis-server on PORT (no persistence), until it answers PING.
rc_redis() {
  local port=$1
  shift
  mkdir -p "$work/redis-$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$work/redis-$port" "$@" \
    >"$work/redis-$port.log" 2>&1 &
  rc_pids+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on $port did not start" >&2
  tail -5 "$work/redis-$port.log" >&2
  exit 1
}
# rc_cluster REPLICAS PORT...: a Redis Cluster of those nodes with REPLICAS per master, until
# every node says the cluster is ok, as many as should be are replicas with their link to their
# master up (a node told to replicate may still say master for a moment), and the first node's
# view (what sselab reads from its seed) has heard of them all (gossip takes a moment more).
rc_cluster() {
  local replicas=$1 port hosts=() state linked
  shift
  local want=$(($# - $# / (replicas + 1)))
  for port in "$@"; do
    rc_redis "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000 \
      --repl-diskless-sync-delay 0
    hosts+=("127.0.0.1:$port")
  done
  timeout 30 redis-cli --cluster create "${hosts[@]}" --cluster-replicas "$replicas" --cluster-yes \
    >"$work/cluster-create-$1.log" 2>&1 </dev/null || { cat "$work/cluster-create-$1.log" >&2; exit 1; }
  for _ in $(seq 1 300); do
    state=ok linked=0
    for port in "$@"; do
      redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || state=no
      redis-cli -p "$port" info replication | grep -q '^master_link_status:up' && linked=$((linked + 1))
    done
    [ "$(redis-cli -p "$1" cluster nodes | grep -c slave)" = "$want" ] || state=no
    [ "$state" = ok ] && [ "$linked" = "$want" ] && return
    sleep 0.1
  done
  echo "the cluster on $* did not become ready" >&2
  exit 1
}
# rc_node PORT REDIS_URL [flags...]: a plain-HTTP sselab on PORT with that Redis, until healthy.
rc_node() {
  local port=$1 redis=$2
  shift 2
  "$server_bin" --http "127.0.0.1:$port" --https off --https-h1 off --h3 off --cert-dir "$work/certs-$port" \
    --keepalive 0 --redis "$redis" "$@" >"$work/node-$port.banner" 2>"$work/node-$port.log" &
  rc_pids+=($!)
  healthy "http://127.0.0.1:$port"
}
rc_node_cpu() { # PORT: the node's CPU seconds so far
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^process_cpu_seconds_total/ {print $2}'
}
rc_redis_cpu() { # PORT: the redis-server's CPU seconds so far (user + sys)
  redis-cli -p "$1" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.2f", s}'
}
rc_scripts() { # PORT: the scripts (publishes, subscribes) Redis ran since its stats were reset
  local calls
  calls=$(redis-cli -p "$1" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
  echo "${calls:-0}"
}

timed() { # COMMAND...: run it; its CPU seconds (user sys) in $work/client-cpu where /usr/bin/time is
  if [ -x /usr/bin/time ]; then /usr/bin/time -f '%U %S' -o "$work/client-cpu" "$@"; else "$@"; fi
}

# The setups: their Redis ports, URL and nodes' ports and flags.
declare -A rc_ports=([standalone]=16390 [cluster]="16391 16392 16393"
  [replicas]="16394 16395 16396 16397 16398 16399" [wait]="16394 16395 16396 16397 16398 16399")
declare -A rc_node_a=([standalone]=18171 [cluster]=18172 [replicas]=18173 [wait]=18174)
declare -A rc_flags=([wait]="--redis-min-replicas 1")

cluster_bench() {
  command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; return 1; }
  command -v redis-cli >/dev/null || { echo "redis-cli missing: apt-get install -y redis-tools" >&2; return 1; }
  local setups=${SSELAB_CLUSTER_SETUPS:-standalone cluster replicas wait}
  local streams=${SSELAB_CLUSTER_STREAMS:-10} publishers=${SSELAB_CLUSTER_PUBLISHERS:-32}
  local setup port a b round rate topic before_b cpu_b redis_cpu line used load order
  local -A redis_before
  local -a flags
  rc_free 16390 $(seq 16391 16399) $(seq 26391 26399) $(seq 18171 18179)
  rc_redis 16390
  rc_cluster 0 16391 16392 16393
  rc_cluster 1 16394 16395 16396 16397 16398 16399
  for setup in $setups; do
    a=${rc_node_a[$setup]} b=$((rc_node_a[$setup] + 5))
    # shellcheck disable=SC2086 # the flags are several words
    rc_node "$a" "redis://127.0.0.1:${rc_ports[$setup]%% *}" ${rc_flags[$setup]:-}
    # shellcheck disable=SC2086
    rc_node "$b" "redis://127.0.0.1:${rc_ports[$setup]%% *}" ${rc_flags[$setup]:-}
  done
  title "Redis setups"
  echo "standalone: redis-server on 16390"
  echo "cluster (3 masters, no replicas): $(redis-cli -p 16391 cluster nodes | awk '{print $2, $3}' | sort | tr '\n' ' ')"
  echo "replicas (3 masters, 1 replica each): $(redis-cli -p 16394 cluster nodes | awk '{print $2, $3}' | sort | tr '\n' ' ')"
  endblock
  for round in $(seq 1 "${SSELAB_CLUSTER_ROUNDS:-2}"); do
    for rate in ${SSELAB_CLUSTER_RATES:-100000 1000}; do
      # Every other round in reverse, so no setup always runs first.
      order=$setups
      [ $((round % 2)) = 0 ] && order=$(echo "$setups" | tr ' ' '\n' | tac | tr '\n' ' ')
      for setup in $order; do
        a=${rc_node_a[$setup]} b=$((rc_node_a[$setup] + 5))
        topic="r$round-$rate-t"
        title "Redis $setup${rc_flags[$setup]:+ (${rc_flags[$setup]})}, round $round: $streams subscribers of 32 topics on node A, $publishers publishers on node B, --rate $rate"
        for port in ${rc_ports[$setup]}; do
          redis-cli -p "$port" config resetstat >/dev/null
          redis_before[$port]=$(rc_redis_cpu "$port")
        done
        before_b=$(rc_node_cpu "$b")
        load=$(cut -d' ' -f1 /proc/loadavg)
        rm -f "$work/client-cpu"
        flags=(load --url "http://127.0.0.1:$a/sse/topics?topic=$topic{k}" --topics-per-stream 32 --streams "$streams"
          --proto h2c --duration 10 --publish-url "http://127.0.0.1:$b/api/topics/$topic{k}/events"
          --publishers "$publishers" --rate "$rate" --server-metrics "http://127.0.0.1:$a/metrics")
        echo "\$ sselab bench ${flags[*]}"
        timed "$bin" bench "${flags[@]}"
        cpu_b=$(echo "$(rc_node_cpu "$b") - $before_b" | bc)
        redis_cpu=0 line=""
        for port in ${rc_ports[$setup]}; do
          used=$(echo "$(rc_redis_cpu "$port") - ${redis_before[$port]}" | bc)
          redis_cpu=$(echo "$redis_cpu + $used" | bc)
          line+=" $port: ${used} s, $(rc_scripts "$port") EVALSHA;"
        done
        echo "node B CPU             $cpu_b s during the run"
        echo "Redis CPU              $redis_cpu s in all;$line"
        [ -s "$work/client-cpu" ] && echo "client CPU             $(awk '{print $1 + $2}' "$work/client-cpu") s (user + sys)"
        echo "load average           $load (1 min) before the run"
        endblock
      done
    done
  done
  rc_stop
}
