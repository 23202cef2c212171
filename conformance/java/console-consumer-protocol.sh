#!/usr/bin/env bash
# kafka-console-producer writes 40 keyed lines over 2 partitions; kafka-console-consumer with the KIP-848 consumer
# protocol (group.protocol=consumer) and a group reads them all back with keys; then kafka-consumer-groups --describe
# shows the group's committed offsets equal to the log end offsets on both partitions (LAG 0).
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-console848-$RANDOM$RANDOM"; group="java-g848-$RANDOM$RANDOM"; n=40
out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 2 2>&1) || fail "kafka-topics --create failed:" "$out"
want=$(for i in $(seq 1 $n); do echo "k$i:v$i"; done)
out=$(printf '%s\n' "$want" | tool kafka-console-producer --bootstrap-server "$b" --topic "$topic" \
  --property parse.key=true --property key.separator=: 2>&1) || fail "kafka-console-producer failed:" "$out"
no_exception "kafka-console-producer" "$out"
got=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$topic" --group "$group" \
  --consumer-property group.protocol=consumer --from-beginning --max-messages $n --timeout-ms 40000 \
  --property print.key=true --property key.separator=: 2>"$tmp/err") \
  || fail "kafka-console-consumer (group.protocol=consumer) failed:" "$got$(cat "$tmp/err")"
no_exception "kafka-console-consumer (group.protocol=consumer)" "$(cat "$tmp/err")"
# Two partitions: order holds per key's partition only, so compare as sets (and each line exactly once).
[ "$(printf '%s\n' "$got" | sort)" = "$(printf '%s\n' "$want" | sort)" ] \
  || fail "kafka-console-consumer (group.protocol=consumer) read something else than k1:v1..k$n:v$n:" "$got"
out=$(tool kafka-consumer-groups --bootstrap-server "$b" --describe --group "$group" 2>&1) || fail "kafka-consumer-groups --describe failed:" "$out"
no_exception "kafka-consumer-groups --describe" "$out"
# GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
rows=$(echo "$out" | awk -v g="$group" -v t="$topic" '$1 == g && $2 == t')
[ "$(echo "$rows" | grep -c .)" = 2 ] || fail "kafka-consumer-groups --describe: not one row per partition of $topic:" "$out"
total=0
while read -r _ _ p cur end lag _; do
  [ "$cur" = "$end" ] && [ "$lag" = 0 ] || fail "partition $p: CURRENT-OFFSET $cur, LOG-END-OFFSET $end, LAG $lag (expected equal, LAG 0):" "$out"
  total=$((total + end))
done <<<"$rows"
[ "$total" = $n ] || fail "the log end offsets add up to $total, not $n:" "$out"
