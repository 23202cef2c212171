#!/usr/bin/env bash
# kafka-console-producer writes 50 keyed lines (parse.key, key.separator=:), kafka-console-consumer (classic
# protocol, no group) reads them back --from-beginning with print.key: exactly those keys and values, in order.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-console-$RANDOM$RANDOM"; n=50
out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 1 2>&1) || fail "kafka-topics --create failed:" "$out"
want=$(for i in $(seq 1 $n); do echo "key-$i:value $i ü"; done)
out=$(printf '%s\n' "$want" | tool kafka-console-producer --bootstrap-server "$b" --topic "$topic" \
  --property parse.key=true --property key.separator=: --producer-property acks=all 2>&1) \
  || fail "kafka-console-producer failed:" "$out"
no_exception "kafka-console-producer" "$out"
got=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$topic" --from-beginning --max-messages $n \
  --timeout-ms 30000 --property print.key=true --property key.separator=: 2>"$tmp/err") \
  || fail "kafka-console-consumer failed:" "$got$(cat "$tmp/err")"
[ "$got" = "$want" ] || fail "kafka-console-consumer read (expected key-1:value 1 ü ... key-$n:value $n ü in order):" "$got"
grep -q "Processed a total of $n messages" "$tmp/err" || fail "kafka-console-consumer did not report $n messages:" "$(cat "$tmp/err")"
