#!/usr/bin/env bash
# kafka-get-offsets --time -1/-2 on a partition of 100 records (100 and 0); kafka-delete-records with an offset JSON
# file moves the low watermark to 40 (get-offsets --time -2 then says 40, the high watermark stays 100, a consumer
# from the beginning starts at offset 40); deleting beyond the high watermark answers OffsetOutOfRangeException.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-offsets-$RANDOM$RANDOM"
out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 1 2>&1) || fail "kafka-topics --create failed:" "$out"
out=$(seq 1 100 | tool kafka-console-producer --bootstrap-server "$b" --topic "$topic" 2>&1) || fail "kafka-console-producer failed:" "$out"

# offsets TIME WANT : kafka-get-offsets --time TIME prints exactly "topic:0:WANT".
offsets() {
  local out
  out=$(tool kafka-get-offsets --bootstrap-server "$b" --topic "$topic" --time "$1" 2>&1) || fail "kafka-get-offsets --time $1 failed:" "$out"
  [ "$out" = "$topic:0:$2" ] || fail "kafka-get-offsets --time $1: expected '$topic:0:$2', got:" "$out"
}
spawn latest offsets -1 100
spawn earliest offsets -2 0
join_all

echo "{\"partitions\":[{\"topic\":\"$topic\",\"partition\":0,\"offset\":40}],\"version\":1}" >"$tmp/delete.json"
out=$(tool kafka-delete-records --bootstrap-server "$b" --offset-json-file "$tmp/delete.json" 2>&1) || fail "kafka-delete-records failed:" "$out"
echo "$out" | grep -q "^partition: $topic-0	low_watermark: 40$" || fail "kafka-delete-records (offset 40) did not answer low_watermark 40:" "$out"

from_beginning() {
  local got
  got=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$topic" --partition 0 --from-beginning --max-messages 2 --timeout-ms 20000 \
    --property print.offset=true 2>&1 | grep '^Offset:') || true
  [ "$got" = $'Offset:40\t41\nOffset:41\t42' ] || fail "after deleting records below 40, a consumer from the beginning read (expected offsets 40, 41 with 41, 42):" "$got"
}
beyond() {
  local out
  echo "{\"partitions\":[{\"topic\":\"$topic\",\"partition\":0,\"offset\":1000}],\"version\":1}" >"$tmp/beyond.json"
  out=$(tool kafka-delete-records --bootstrap-server "$b" --offset-json-file "$tmp/beyond.json" 2>&1) || fail "kafka-delete-records (offset 1000) failed:" "$out"
  echo "$out" | grep -q "^partition: $topic-0	error: org.apache.kafka.common.errors.OffsetOutOfRangeException" \
    || fail "kafka-delete-records beyond the high watermark (1000 > 100) did not answer OffsetOutOfRangeException:" "$out"
}
spawn from-beginning from_beginning
spawn beyond-high-watermark beyond
join_all
spawn latest offsets -1 100
spawn earliest offsets -2 40
join_all
