#!/usr/bin/env bash
# kafka-producer-perf-test (100,000 x 100 B, acks=all) and kafka-consumer-perf-test (reads exactly 100,000) on a new
# topic; a transactional producer-perf-test (300,000 records, a transaction every 500 ms) finishes without an
# exception, and a read_committed console consumer counts exactly 300,000 records on its topic (then nothing more for 5 s).
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-perf-$RANDOM$RANDOM"; txtopic="java-perf-tx-$RANDOM$RANDOM"
# Throughput tools: the JIT may go all the way.
export KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -Djava.awt.headless=true"

out=$(tool kafka-producer-perf-test --topic "$topic" --num-records 100000 --record-size 100 --throughput -1 \
  --producer-props bootstrap.servers="$b" acks=all 2>&1) || fail "kafka-producer-perf-test (100000, acks=all) failed:" "$out"
no_exception "kafka-producer-perf-test" "$out"
echo "$out" | grep -Eq "^100000 records sent, " || fail "kafka-producer-perf-test did not report '100000 records sent':" "$out"

out=$(tool kafka-consumer-perf-test --bootstrap-server "$b" --topic "$topic" --messages 100000 --timeout 30000 2>&1) \
  || fail "kafka-consumer-perf-test failed:" "$out"
no_exception "kafka-consumer-perf-test" "$out"
# start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
row=$(echo "$out" | grep -E '^[0-9]{4}-' | tail -1)
mb=$(echo "$row" | awk -F', *' '{print $3}'); msgs=$(echo "$row" | awk -F', *' '{print $5}')
[ "$msgs" = 100000 ] || fail "kafka-consumer-perf-test consumed '$msgs' messages, not 100000:" "$out"
[ "$mb" = 9.5367 ] || fail "kafka-consumer-perf-test consumed '$mb' MB, not 9.5367 (100000 x 100 B):" "$out"

out=$(tool kafka-producer-perf-test --topic "$txtopic" --num-records 300000 --record-size 100 --throughput -1 \
  --transactional-id "T-$RANDOM$RANDOM" --transaction-duration-ms 500 --producer-props bootstrap.servers="$b" 2>&1) \
  || fail "kafka-producer-perf-test --transactional-id failed:" "$out"
no_exception "kafka-producer-perf-test --transactional-id" "$out"
echo "$out" | grep -Eq "^300000 records sent, " || fail "the transactional kafka-producer-perf-test did not report '300000 records sent':" "$out"

count=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$txtopic" --partition 0 --from-beginning --isolation-level read_committed \
  --max-messages 300001 --timeout-ms 5000 2>"$tmp/err" | wc -l) || true
grep -q "Processed a total of 300000 messages" "$tmp/err" && [ "$count" = 300000 ] \
  || fail "a read_committed kafka-console-consumer read $count records of the transactional topic, not 300000:" "$(tail -5 "$tmp/err")"
