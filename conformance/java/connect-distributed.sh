#!/usr/bin/env bash
# Kafka Connect distributed worker (connect-distributed): it joins its group, creates its config/offset/status topics
# (replication factor 1, cleanup.policy=compact; 1/25/5 partitions), answers its REST API, runs a FileStreamSource
# connector submitted over REST (connector and task RUNNING, the topic it wrote to reported by /topics), logs no ERROR.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
id="$RANDOM$RANDOM"; topic="java-connectd-$id"; prefix="java-connect-$id"
plugin=$(ls "$K"/../libs/connect-file-*.jar 2>/dev/null | head -1) || true
[ -n "$plugin" ] || fail "no connect-file-*.jar in $K/../libs (the FileStream connectors)"
port=$(free_port); url="http://127.0.0.1:$port"
cat >"$tmp/worker.properties" <<PROPS
bootstrap.servers=$b
group.id=$prefix-group
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
config.storage.topic=$prefix-configs
offset.storage.topic=$prefix-offsets
status.storage.topic=$prefix-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.flush.interval.ms=1000
plugin.path=$plugin
listeners=http://127.0.0.1:$port
PROPS
timeout --kill-after=10 180 "$K/connect-distributed.sh" "$tmp/worker.properties" >"$tmp/worker.log" 2>&1 &
worker=$!
at_exit "stop_pid $worker"
errors() { grep -A3 -E ' ERROR |Exception' "$tmp/worker.log" | head -30; }

# The REST API answers once the worker has started (it reads its three topics to the end first).
deadline=$((SECONDS + 60))
until root=$(curl -sf "$url/"); do
  kill -0 $worker 2>/dev/null || fail "the Connect distributed worker exited:" "$(errors)"
  [ $SECONDS -lt $deadline ] || fail "the Connect distributed worker's REST API ($url/) did not answer within 60 s:" "$(errors)"
  sleep 0.5
done
echo "$root" | grep -q '"version":"4.0.0"' && echo "$root" | grep -q '"kafka_cluster_id":"[^"]' || fail "GET / answered:" "$root"

seq 1 20 | sed 's/^/row /' >"$tmp/in.txt"
body="{\"name\":\"java-src-$id\",\"config\":{\"connector.class\":\"FileStreamSource\",\"tasks.max\":\"1\",\"file\":\"$tmp/in.txt\",\"topic\":\"$topic\"}}"
deadline=$((SECONDS + 60))
# POST can answer 409 while the worker is still joining its group / rebalancing: retry.
until created=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$body" "$url/connectors"); do
  [ $SECONDS -lt $deadline ] || fail "POST /connectors kept failing for 60 s: $(curl -s -X POST -H 'Content-Type: application/json' -d "$body" "$url/connectors")" "$(errors)"
  sleep 1
done
deadline=$((SECONDS + 60))
while :; do
  status=$(curl -sf "$url/connectors/java-src-$id/status" || true)
  topics=$(curl -sf "$url/connectors/java-src-$id/topics" || true)
  echo "$status" | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["connector"]["state"]=="RUNNING" and [t["state"] for t in s["tasks"]]==["RUNNING"]' 2>/dev/null \
    && [ "$topics" = "{\"java-src-$id\":{\"topics\":[\"$topic\"]}}" ] && break
  [ $SECONDS -lt $deadline ] || fail "60 s after POST, the connector is not RUNNING with its topic reported. status: $status topics: $topics" "$(errors)"
  sleep 1
done

out=$(tool kafka-topics --bootstrap-server "$b" --describe --topic "$prefix-.*" 2>&1) || fail "kafka-topics --describe of the worker's topics failed:" "$out"
for t in configs:1 offsets:25 status:5; do
  name="$prefix-${t%%:*}"; parts="${t#*:}"
  line=$(echo "$out" | grep -E "^Topic: $name[[:space:]]" || true)
  [ -n "$line" ] || fail "the worker's topic $name does not exist:" "$out"
  echo "$line" | grep -q "PartitionCount: $parts[[:space:]]" && echo "$line" | grep -q "ReplicationFactor: 1[[:space:]]" \
    || fail "$name: expected $parts partitions, replication factor 1:" "$line"
  echo "$line" | grep -Eq "Configs: (.*,)?cleanup.policy=compact(,|$)" || fail "$name is not cleanup.policy=compact:" "$line"
done
stop_pid $worker
if grep -q ' ERROR ' "$tmp/worker.log"; then fail "the Connect worker logged errors:" "$(grep -A3 ' ERROR ' "$tmp/worker.log" | head -30)"; fi
