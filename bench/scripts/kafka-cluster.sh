#!/usr/bin/env bash
# Runs N nodes of the reference Apache Kafka 4.0 (../shared/oracle) as one KRaft cluster on 127.0.0.1, each a broker
# and a controller voter, laid out as `osprey local-cluster` lays out Osprey's: node i listens for clients on
# BASE_PORT + 100*(i-1) and for controllers one port above. All nodes are formatted with one cluster id (Kafka's
# kafka-run.sh is single-node). Internal topics take Kafka's defaults (RF 3, transaction.state.log.min.isr 2).
# usage: bench/scripts/kafka-cluster.sh NODES BASE_PORT DATA_DIR [key=value ...]   (foreground; Ctrl+C stops all)
set -euo pipefail
nodes=$1; base=$2; data=$(mkdir -p "$3" && cd "$3" && pwd); shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K="$(cd "$here/../../../shared/oracle/kafka-4.0.0" && pwd)"
voters=""
for i in $(seq 1 "$nodes"); do
  voters="${voters:+$voters,}$i@127.0.0.1:$((base + 100 * (i - 1) + 1))"
done
cluster_id=$(cat "$data/cluster-id" 2>/dev/null || "$K/bin/kafka-storage.sh" random-uuid | tee "$data/cluster-id")
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM
for i in $(seq 1 "$nodes"); do
  port=$((base + 100 * (i - 1)))
  dir="$data/node-$i"; mkdir -p "$dir"
  cfg="$dir/server.properties"
  cat > "$cfg" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/log
group.initial.rebalance.delay.ms=0
PROPS
  for kv in "$@"; do echo "$kv" >> "$cfg"; done
  if [ ! -f "$dir/log/meta.properties" ]; then
    "$K/bin/kafka-storage.sh" format -t "$cluster_id" -c "$cfg" >/dev/null
  fi
  LOG_DIR="$dir/logs" KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}" "$K/bin/kafka-server-start.sh" "$cfg" > "$dir/stdout.log" 2>&1 &
  pids+=($!)
done
echo "Kafka cluster of $nodes node(s): bootstrap $(for i in $(seq 1 "$nodes"); do printf '127.0.0.1:%s,' $((base + 100 * (i - 1))); done | sed 's/,$//')"
wait
