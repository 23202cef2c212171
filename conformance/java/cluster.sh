#!/usr/bin/env bash
# Kafka 4.0's tools against a three-node `osprey local-cluster` of its own (the suite's single broker is not used):
# kafka-metadata-quorum describe --status names a leader and three voters; kafka-topics creates an RF=3 topic and
# describes three replicas and a whole ISR per partition; kafka-leader-election (preferred) runs clean; console
# producer (acks=all) and a console consumer in a group round-trip records; the local cluster stops cleanly.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
root="$(cd "$(dirname "$0")/../.." && pwd)"

# A base port whose six ports are free, below the ephemeral range (the voters are named before the nodes bind them).
base=$(python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 31000)
    try:
        for o in (0, 1, 100, 101, 200, 201):
            s = socket.socket(); s.bind(("127.0.0.1", p + o)); s.close()
        print(p); break
    except OSError:
        pass
PY
)
"$root/osprey" local-cluster --nodes 3 --base-port "$base" --data-dir "$tmp/cluster" > "$tmp/cluster.log" 2>&1 &
cluster=$!
at_exit "kill -TERM $cluster 2>/dev/null; wait $cluster 2>/dev/null"
for _ in $(seq 1 240); do
  grep -q "bootstrap servers" "$tmp/cluster.log" && break
  kill -0 "$cluster" 2>/dev/null || fail "osprey local-cluster exited before it was up:" "$(tail -n 40 "$tmp/cluster.log")"
  sleep 0.5
done
grep -q "bootstrap servers" "$tmp/cluster.log" || fail "osprey local-cluster was not up within 120 s:" "$(tail -n 40 "$tmp/cluster.log")"
cb="127.0.0.1:$base,127.0.0.1:$((base + 100)),127.0.0.1:$((base + 200))"

out=$(tool kafka-metadata-quorum --bootstrap-server "$cb" describe --status 2>&1) || fail "kafka-metadata-quorum describe --status failed:" "$out"
no_exception "kafka-metadata-quorum" "$out"
echo "$out" | grep -Eq "^LeaderId:[[:space:]]+[123]$" || fail "describe --status: no leader among the three nodes:" "$out"
echo "$out" | grep -E "^CurrentVoters:" | grep -q '"id": 3' || fail "describe --status: the voters are not the three nodes:" "$out"
[ "$(echo "$out" | grep -E "^CurrentVoters:" | grep -o '"id": [0-9]*' | wc -l)" = 3 ] || fail "describe --status: not three voters:" "$out"

topic="java-cluster-$RANDOM$RANDOM"
out=$(tool kafka-topics --bootstrap-server "$cb" --create --topic "$topic" --partitions 3 --replication-factor 3 --config min.insync.replicas=2 2>&1) \
  || fail "kafka-topics --create --replication-factor 3 failed:" "$out"
no_exception "kafka-topics --create" "$out"
deadline=$((SECONDS + 30))
while :; do
  out=$(tool kafka-topics --bootstrap-server "$cb" --describe --topic "$topic" 2>&1) || true
  [ "$(echo "$out" | grep -Ec "Partition: [0-9]+[[:space:]]+Leader: [123][[:space:]]+Replicas: [123],[123],[123][[:space:]]+Isr: [123],[123],[123]")" = 3 ] && break
  [ $SECONDS -lt $deadline ] || fail "describe: not three partitions with three replicas and a whole ISR:" "$out"
  sleep 1
done
echo "$out" | grep -E "^Topic: $topic[[:space:]]" | grep -q "ReplicationFactor: 3" || fail "describe: no 'ReplicationFactor: 3':" "$out"

out=$(tool kafka-leader-election --bootstrap-server "$cb" --election-type preferred --all-topic-partitions 2>&1) \
  || fail "kafka-leader-election --election-type preferred failed:" "$out"
no_exception "kafka-leader-election" "$out"

seq 1 200 | sed 's/^/record-/' > "$tmp/records"
out=$(tool kafka-console-producer --bootstrap-server "$cb" --topic "$topic" --producer-property acks=all < "$tmp/records" 2>&1) \
  || fail "kafka-console-producer (acks=all) failed:" "$out"
no_exception "kafka-console-producer" "$out"
out=$(tool kafka-console-consumer --bootstrap-server "$cb" --topic "$topic" --group "java-cluster-group" --from-beginning --max-messages 200 --timeout-ms 60000 2>/dev/null) \
  || fail "kafka-console-consumer did not read 200 records:" "$out"
[ "$(echo "$out" | sort | uniq | wc -l)" = 200 ] || fail "the consumer read $(echo "$out" | wc -l) lines, not the 200 distinct records:" "$out"
diff <(echo "$out" | sort) <(sort "$tmp/records") > /dev/null || fail "the records read back are not the records written:" "$out"
out=$(tool kafka-consumer-groups --bootstrap-server "$cb" --describe --group "java-cluster-group" 2>&1) || fail "kafka-consumer-groups --describe failed:" "$out"
[ "$(echo "$out" | awk -v t="$topic" '$2 == t && $6 == 0' | wc -l)" = 3 ] || fail "the group's committed offsets do not reach the end of all three partitions:" "$out"

kill -TERM "$cluster"
wait "$cluster" || fail "osprey local-cluster did not exit cleanly:" "$(tail -n 40 "$tmp/cluster.log")"
grep -q "local cluster stopped cleanly" "$tmp/cluster.log" || fail "osprey local-cluster did not stop cleanly:" "$(tail -n 40 "$tmp/cluster.log")"
