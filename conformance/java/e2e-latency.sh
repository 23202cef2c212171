#!/usr/bin/env bash
# kafka-e2e-latency (org.apache.kafka.tools.EndToEndLatency): 500 messages of 100 B with acks=all, each sent, fetched
# and compared with what was sent before the next; it must end with the average and percentile summary, no exception.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-e2e-$RANDOM$RANDOM"
export KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -Djava.awt.headless=true"
out=$(tool kafka-e2e-latency "$b" "$topic" 500 all 100 2>&1) || fail "kafka-e2e-latency $b $topic 500 all 100 failed:" "$out"
no_exception "kafka-e2e-latency" "$out"
echo "$out" | grep -Eq '^Avg latency: [0-9.]+ ms$' || fail "kafka-e2e-latency printed no 'Avg latency':" "$out"
echo "$out" | grep -Eq '^Percentiles: 50th = [0-9]+, 99th = [0-9]+, 99.9th = [0-9]+$' || fail "kafka-e2e-latency printed no percentiles:" "$out"
