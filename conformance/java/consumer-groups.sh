#!/usr/bin/env bash
# kafka-consumer-groups on a classic group that consumed a 3-partition topic: --list has it, --describe shows
# CURRENT-OFFSET = LOG-END-OFFSET everywhere; --reset-offsets --to-earliest --execute puts every partition back to 0
# (LAG = the partition's record count); --delete removes the group from --list.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-groups-$RANDOM$RANDOM"; group="java-classic-$RANDOM$RANDOM"; n=60
out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 3 2>&1) || fail "kafka-topics --create failed:" "$out"
out=$(seq 1 $n | sed 's/^/k&:v&/' | tool kafka-console-producer --bootstrap-server "$b" --topic "$topic" \
  --property parse.key=true --property key.separator=: 2>&1) || fail "kafka-console-producer failed:" "$out"
got=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$topic" --group "$group" \
  --consumer-property group.protocol=classic --from-beginning --max-messages $n --timeout-ms 40000 2>"$tmp/err") \
  || fail "kafka-console-consumer --group failed:" "$got$(cat "$tmp/err")"
[ "$(printf '%s\n' "$got" | sort -V)" = "$(seq 1 $n | sed 's/^/v/')" ] || fail "the group consumer read:" "$got"

# --list (in the background, while --describe runs).
listed() {
  local out
  out=$(tool kafka-consumer-groups --bootstrap-server "$b" --list 2>&1) || fail "kafka-consumer-groups --list failed:" "$out"
  echo "$out" | grep -qx "$group" || fail "kafka-consumer-groups --list does not contain $group:" "$out"
}
spawn list listed

# describe_rows : the GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG rows of the group on the topic.
describe_rows() {
  out=$(tool kafka-consumer-groups --bootstrap-server "$b" --describe --group "$group" 2>&1) || fail "kafka-consumer-groups --describe failed:" "$out"
  no_exception "kafka-consumer-groups --describe" "$out"
  rows=$(echo "$out" | awk -v g="$group" -v t="$topic" '$1 == g && $2 == t { print $3, $4, $5, $6 }' | sort -n)
  [ "$(echo "$rows" | awk '{print $1}' | tr '\n' ' ')" = "0 1 2 " ] || fail "kafka-consumer-groups --describe: not one row per partition 0..2:" "$out"
}
describe_rows
total=0
while read -r p cur end lag; do
  [ "$cur" = "$end" ] && [ "$lag" = 0 ] || fail "partition $p: CURRENT-OFFSET $cur LOG-END-OFFSET $end LAG $lag after consuming all:" "$out"
  total=$((total + end))
done <<<"$rows"
[ $total = $n ] || fail "the log end offsets add up to $total, not $n:" "$out"
ends="$rows"
join_all

out=$(tool kafka-consumer-groups --bootstrap-server "$b" --reset-offsets --group "$group" --topic "$topic" --to-earliest --execute 2>&1) \
  || fail "kafka-consumer-groups --reset-offsets --to-earliest --execute failed:" "$out"
no_exception "kafka-consumer-groups --reset-offsets" "$out"
[ "$(echo "$out" | awk -v g="$group" -v t="$topic" '$1 == g && $2 == t && $4 == 0' | wc -l)" = 3 ] \
  || fail "--reset-offsets --execute did not answer NEW-OFFSET 0 for the 3 partitions:" "$out"
describe_rows
while read -r p cur end lag; do
  want_end=$(echo "$ends" | awk -v p="$p" '$1 == p {print $3}')
  [ "$cur" = 0 ] && [ "$end" = "$want_end" ] && [ "$lag" = "$want_end" ] \
    || fail "after --to-earliest, partition $p: CURRENT-OFFSET $cur LOG-END-OFFSET $end LAG $lag (expected 0, $want_end, $want_end):" "$out"
done <<<"$rows"

out=$(tool kafka-consumer-groups --bootstrap-server "$b" --delete --group "$group" 2>&1) || fail "kafka-consumer-groups --delete failed:" "$out"
no_exception "kafka-consumer-groups --delete" "$out"
echo "$out" | grep -q "Deletion of requested consumer groups ('$group') was successful" || fail "kafka-consumer-groups --delete said:" "$out"
out=$(tool kafka-consumer-groups --bootstrap-server "$b" --list 2>&1) || fail "kafka-consumer-groups --list (after delete) failed:" "$out"
if echo "$out" | grep -qx "$group"; then fail "$group is still listed after --delete:" "$out"; fi
