#!/usr/bin/env bash
# kafka-transactions after a transactional kafka-producer-perf-test: list has its transactional id (CompleteCommit,
# coordinator 1), describe shows the same producer id and state with no partitions left in the transaction,
# describe-producers on the partition shows that producer, find-hanging on broker 1 reports nothing.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-txn-$RANDOM$RANDOM"; tid="java-tid-$RANDOM$RANDOM"
out=$(tool kafka-producer-perf-test --topic "$topic" --num-records 2000 --record-size 20 --throughput -1 \
  --transactional-id "$tid" --transaction-duration-ms 100 --producer-props bootstrap.servers="$b" 2>&1) \
  || fail "kafka-producer-perf-test --transactional-id failed:" "$out"
echo "$out" | grep -Eq "^2000 records sent, " || fail "kafka-producer-perf-test --transactional-id said:" "$out"

list() {
  local out row
  out=$(tool kafka-transactions --bootstrap-server "$b" list 2>&1) || fail "kafka-transactions list failed:" "$out"
  no_exception "kafka-transactions list" "$out"
  echo "$out" | head -1 | grep -Eq '^TransactionalId[[:space:]]+Coordinator[[:space:]]+ProducerId[[:space:]]+TransactionState' \
    || fail "kafka-transactions list: unexpected header:" "$out"
  row=$(echo "$out" | awk -v t="$tid" '$1 == t')
  [ -n "$row" ] || fail "kafka-transactions list does not show $tid:" "$out"
  echo "$row" | awk '{ exit !($2 == 1 && $3 ~ /^[0-9]+$/ && $4 == "CompleteCommit") }' \
    || fail "kafka-transactions list: $tid is not 'Coordinator 1, a producer id, CompleteCommit':" "$out"
  echo "$row" | awk '{print $3}' >"$tmp/pid-list"
}
describe() {
  local out row
  out=$(tool kafka-transactions --bootstrap-server "$b" describe --transactional-id "$tid" 2>&1) || fail "kafka-transactions describe failed:" "$out"
  no_exception "kafka-transactions describe" "$out"
  # CoordinatorId TransactionalId ProducerId ProducerEpoch TransactionState TransactionTimeoutMs CurrentTransactionStartTimeMs TransactionDurationMs TopicPartitions
  row=$(echo "$out" | awk -v t="$tid" '$2 == t')
  echo "$row" | awk '{ exit !($1 == 1 && $3 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ && $5 == "CompleteCommit" && $6 == 60000 && NF == 8) }' \
    || fail "kafka-transactions describe: expected coordinator 1, a producer id and epoch, CompleteCommit, timeout 60000, no partitions:" "$out"
  echo "$row" | awk '{print $3}' >"$tmp/pid-describe"
}
producers() {
  local out
  out=$(tool kafka-transactions --bootstrap-server "$b" describe-producers --topic "$topic" --partition 0 2>&1) \
    || fail "kafka-transactions describe-producers failed:" "$out"
  no_exception "kafka-transactions describe-producers" "$out"
  # ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
  echo "$out" | awk 'NR > 1 && $6 == "None" {print $1}' >"$tmp/pid-producers"
  [ "$(wc -l <"$tmp/pid-producers")" = 1 ] || fail "kafka-transactions describe-producers: not exactly one producer, with no open transaction:" "$out"
}
hanging() {
  local out
  out=$(tool kafka-transactions --bootstrap-server "$b" find-hanging --broker-id 1 2>&1) || fail "kafka-transactions find-hanging failed:" "$out"
  no_exception "kafka-transactions find-hanging" "$out"
  echo "$out" | head -1 | grep -q '^Topic[[:space:]]*Partition[[:space:]]*ProducerId' || fail "kafka-transactions find-hanging said:" "$out"
  [ "$(echo "$out" | wc -l)" = 1 ] || fail "kafka-transactions find-hanging reports hanging transactions:" "$out"
}
spawn list list
spawn describe describe
spawn describe-producers producers
spawn find-hanging hanging
join_all
p1=$(cat "$tmp/pid-list"); p2=$(cat "$tmp/pid-describe"); p3=$(cat "$tmp/pid-producers")
[ "$p1" = "$p2" ] && [ "$p2" = "$p3" ] || fail "the producer id of $tid differs: list $p1, describe $p2, describe-producers $p3"
