#!/usr/bin/env bash
# kafka-dump-log reads the broker's own segment files: 2000 keyed records to a topic with 64 KiB segments; the dumped
# .log files hold exactly offsets 0..1999 in order with the keys and payloads sent; every rolled segment's .index and
# .timeindex have entries, pass --index-sanity-check, and match the log (no mismatch, no out-of-order timestamp); the
# newest producer snapshot holds the producer's last offset before it.
# Needs CONFORMANCE_DATA_DIR: the data directory of the broker under test.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
data="${CONFORMANCE_DATA_DIR:-}"
[ -n "$data" ] && [ -d "$data" ] || fail "CONFORMANCE_DATA_DIR is not set to the broker's data directory (got '$data'); conformance/run must export it"
topic="java-dump-$RANDOM$RANDOM"; n=2000
out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 1 --config segment.bytes=65536 2>&1) \
  || fail "kafka-topics --create --config segment.bytes=65536 failed:" "$out"
pad=$(printf 'x%.0s' $(seq 1 200))
out=$(for i in $(seq 1 $n); do echo "key-$i:value-$i-$pad"; done | tool kafka-console-producer --bootstrap-server "$b" --topic "$topic" \
  --property parse.key=true --property key.separator=: --producer-property acks=all 2>&1) || fail "kafka-console-producer failed:" "$out"
no_exception "kafka-console-producer" "$out"

dir="$data/$topic-0"
[ -d "$dir" ] || fail "no partition directory $dir:" "$(ls "$data" | head -50)"
logs=$(ls "$dir"/*.log 2>/dev/null | sort) || true
[ "$(echo "$logs" | grep -c .)" -ge 5 ] || fail "$n records of ~230 B with segment.bytes=65536 should make at least 5 segments; $dir has:" "$(ls -la "$dir")"

out=$(tool kafka-dump-log --files "$(echo "$logs" | paste -sd,)" --print-data-log 2>&1) || fail "kafka-dump-log --print-data-log failed:" "$out"
no_exception "kafka-dump-log (.log)" "$out"
records=$(echo "$out" | grep '^| offset: ')
[ "$(echo "$records" | wc -l)" = $n ] || fail "kafka-dump-log shows $(echo "$records" | wc -l) records in $dir, not $n:" "$(echo "$out" | head -20)"
[ "$(echo "$records" | awk '{print $3}' | paste -sd' ')" = "$(seq 0 $((n - 1)) | paste -sd' ')" ] \
  || fail "kafka-dump-log: the record offsets are not 0..$((n - 1)) in order"
for i in 1 2 777 1500 $n; do
  want="key: key-$i payload: value-$i-$pad"
  echo "$records" | awk -v o=$((i - 1)) '$3 == o' | grep -qF "keySize: $((4 + ${#i})) " && echo "$records" | awk -v o=$((i - 1)) '$3 == o' | grep -qF -- "$want" \
    || fail "kafka-dump-log: offset $((i - 1)) is not key-$i / value-$i-...:" "$(echo "$records" | awk -v o=$((i - 1)) '$3 == o')"
done
[ "$(echo "$out" | grep -c 'isvalid: true')" = "$(echo "$out" | grep -c '^baseOffset: ')" ] || fail "kafka-dump-log: a batch is not 'isvalid: true':" "$(echo "$out" | grep '^baseOffset: ' | grep -v 'isvalid: true' | head)"
pids=$(echo "$out" | grep '^baseOffset: ' | sed 's/.* producerId: \([-0-9]*\) .*/\1/' | sort -u)
[ "$(echo "$pids" | wc -l)" = 1 ] && [ "$pids" -ge 0 ] || fail "kafka-dump-log: the batches of one idempotent console producer carry producer ids: $pids"

# Rolled segments (all but the last): indexes with entries that agree with their log; the active one: no complaint.
rolled=$(echo "$logs" | sed '$d')
indexes=$(for l in $rolled; do echo "${l%.log}.index"; echo "${l%.log}.timeindex"; done | paste -sd,)
out=$(tool kafka-dump-log --files "$indexes" --index-sanity-check 2>&1) || fail "kafka-dump-log --index-sanity-check on the rolled segments' indexes failed:" "$out"
no_exception "kafka-dump-log --index-sanity-check" "$out"
[ "$(echo "$out" | grep -c 'passed sanity check')" = "$(echo "$rolled" | wc -l | awk '{print $1 * 2}')" ] \
  || fail "kafka-dump-log --index-sanity-check: not every rolled index passed:" "$out"
active="$(echo "$logs" | tail -1)"
# The newest producer snapshot (Kafka writes one at each roll): the producer's last offset before the snapshot's offset.
snapshot=$(ls "$dir"/*.snapshot 2>/dev/null | sort | tail -1) || true
[ -n "$snapshot" ] || fail "no producer snapshot (.snapshot) in $dir after $(echo "$rolled" | wc -l) segment rolls:" "$(ls -la "$dir")"
snap_offset=$(basename "$snapshot" .snapshot | sed 's/^0*//')
out=$(tool kafka-dump-log --files "$indexes,${active%.log}.index,${active%.log}.timeindex,$snapshot" 2>&1) || fail "kafka-dump-log on the indexes failed:" "$out"
no_exception "kafka-dump-log (indexes, snapshot)" "$out"
echo "$out" | grep -Eq "^producerId: $pids producerEpoch: 0 .* lastOffset: $((snap_offset - 1)) " \
  || fail "kafka-dump-log $snapshot: no 'producerId: $pids ... lastOffset: $((snap_offset - 1))':" "$(echo "$out" | grep -A3 "^Dumping $snapshot")"
if echo "$out" | grep -Eiq 'mismatch|corrupt|out of order'; then fail "kafka-dump-log finds the indexes inconsistent with the log:" "$out"; fi
for l in $rolled; do
  section() { echo "$out" | awk -v f="Dumping $1" '/^Dumping / { on = ($0 == f) } on && !/^Dumping /'; }
  section "${l%.log}.index" | grep -Eq '^offset: [0-9]+ position: [0-9]+$' || fail "${l%.log}.index (a rolled segment of $(stat -c %s "$l") B) has no entries:" "$(section "${l%.log}.index")"
  section "${l%.log}.timeindex" | grep -Eq '^timestamp: [0-9]+ offset: [0-9]+$' || fail "${l%.log}.timeindex (a rolled segment) has no entries:" "$(section "${l%.log}.timeindex")"
done
