#!/usr/bin/env bash
# kafka-topics (Kafka 4.0): create with 3 partitions and a config, describe (partitions, leader, config), add
# partitions, list, delete — no exception anywhere, and each step visible in the next describe/list.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-topics-$RANDOM$RANDOM"

out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 3 --config retention.ms=86400000 2>&1) \
  || fail "kafka-topics --create failed:" "$out"
no_exception "kafka-topics --create" "$out"
echo "$out" | grep -q "Created topic $topic\." || fail "kafka-topics --create did not say 'Created topic $topic.':" "$out"

out=$(tool kafka-topics --bootstrap-server "$b" --describe --topic "$topic" 2>&1) || fail "kafka-topics --describe failed:" "$out"
no_exception "kafka-topics --describe" "$out"
head=$(echo "$out" | grep -E "^Topic: $topic[[:space:]]" || true)
echo "$head" | grep -q "PartitionCount: 3" || fail "describe: no 'PartitionCount: 3' in the summary line:" "$out"
echo "$head" | grep -q "ReplicationFactor: 1" || fail "describe: no 'ReplicationFactor: 1':" "$out"
echo "$head" | grep -q "retention.ms=86400000" || fail "describe: the config retention.ms=86400000 is not shown:" "$out"
for p in 0 1 2; do
  echo "$out" | grep -Eq "Topic: $topic[[:space:]]+Partition: $p[[:space:]]+Leader: 1[[:space:]]+Replicas: 1[[:space:]]+Isr: 1" \
    || fail "describe: partition $p is not 'Leader: 1 Replicas: 1 Isr: 1':" "$out"
done
[ "$(echo "$out" | grep -Ec "Partition: [0-9]+[[:space:]]+Leader:")" = 3 ] || fail "describe: not exactly 3 partition lines:" "$out"

out=$(tool kafka-topics --bootstrap-server "$b" --alter --topic "$topic" --partitions 5 2>&1) || fail "kafka-topics --alter --partitions 5 failed:" "$out"
no_exception "kafka-topics --alter" "$out"
out=$(tool kafka-topics --bootstrap-server "$b" --describe --topic "$topic" 2>&1) || fail "kafka-topics --describe (after alter) failed:" "$out"
echo "$out" | grep -E "^Topic: $topic[[:space:]]" | grep -q "PartitionCount: 5" || fail "after --alter --partitions 5, describe says:" "$out"
[ "$(echo "$out" | grep -Ec "Partition: [0-9]+[[:space:]]+Leader: 1")" = 5 ] || fail "after alter: not 5 partitions led by broker 1:" "$out"

out=$(tool kafka-topics --bootstrap-server "$b" --list 2>&1) || fail "kafka-topics --list failed:" "$out"
echo "$out" | grep -qx "$topic" || fail "kafka-topics --list does not contain $topic:" "$out"

out=$(tool kafka-topics --bootstrap-server "$b" --delete --topic "$topic" 2>&1) || fail "kafka-topics --delete failed:" "$out"
no_exception "kafka-topics --delete" "$out"
deadline=$((SECONDS + 15))
while :; do
  out=$(tool kafka-topics --bootstrap-server "$b" --list 2>&1) || fail "kafka-topics --list (after delete) failed:" "$out"
  echo "$out" | grep -qx "$topic" || break
  [ $SECONDS -lt $deadline ] || fail "$topic is still listed 15 s after --delete:" "$out"
  sleep 1
done
