#!/usr/bin/env bash
# kafka-transactions after a transactional kafka-producer-perf-test: list has its transactional id (CompleteCommit,
# coordinator 1), describe shows the same producer id and state with no partitions left in the transaction,
# describe-producers on the partition shows that producer, find-hanging on broker 1 reports nothing. A transactional
# producer killed (-9) inside a transaction (describe: Ongoing, its partition listed) is fenced by a new producer with
# the same id, which commits 1 record (describe: CompleteCommit, a higher epoch); read_committed then reads exactly that
# record, read_uncommitted also the aborted ones.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-txn-$RANDOM$RANDOM"; tid="java-tid-$RANDOM$RANDOM"; atopic="java-txn-abort-$RANDOM$RANDOM"; atid="java-tid-abort-$RANDOM$RANDOM"

# A producer dies (kill -9) inside a transaction; a new producer with the same transactional.id fences it: the broker
# aborts the open transaction, the new producer commits its own. read_committed then sees only the new record.
aborted() {
  local producer row epoch out committed uncommitted deadline
  # timeout puts itself and the JVM in a process group of their own (id $!): killed as a group below, or by timeout.
  timeout -s KILL 150 "$K/kafka-producer-perf-test.sh" --topic "$atopic" --num-records 100000000 --record-size 10 --throughput 200 \
    --transactional-id "$atid" --transaction-duration-ms 600000 --producer-props bootstrap.servers="$b" >"$tmp/abort-producer.log" 2>&1 &
  producer=$!
  deadline=$((SECONDS + 50))
  # Ongoing, with the partition in the transaction (the TopicPartitions column).
  until row=$(tool kafka-transactions --bootstrap-server "$b" describe --transactional-id "$atid" 2>&1 \
      | awk -v t="$atid" -v p="$atopic-0" '$2 == t && $5 == "Ongoing" && $9 == p {print; f=1} END {exit !f}'); do
    kill -0 $producer 2>/dev/null || fail "the transactional producer ended early:" "$(tail -20 "$tmp/abort-producer.log")"
    [ $SECONDS -lt $deadline ] || { kill -KILL -- -$producer; fail "$atid never showed as Ongoing on $atopic-0 in kafka-transactions describe:" "$(tool kafka-transactions --bootstrap-server "$b" describe --transactional-id "$atid" 2>&1)"; }
    sleep 0.5
  done
  epoch=$(echo "$row" | awk '{print $4}')
  kill -KILL -- -$producer; wait $producer 2>/dev/null || true
  out=$(tool kafka-producer-perf-test --topic "$atopic" --num-records 1 --record-size 10 --throughput -1 \
    --transactional-id "$atid" --producer-props bootstrap.servers="$b" 2>&1) || fail "a new producer with the dead one's transactional id failed:" "$out"
  echo "$out" | grep -q "^1 records sent, " || fail "a new producer with the dead one's transactional id said:" "$out"
  out=$(tool kafka-transactions --bootstrap-server "$b" describe --transactional-id "$atid" 2>&1)
  echo "$out" | awk -v t="$atid" -v e="$epoch" '$2 == t && $5 == "CompleteCommit" && $4 > e && NF == 8 {f=1} END {exit !f}' \
    || fail "after the new producer: expected CompleteCommit with an epoch above $epoch and no partitions:" "$out"
  committed=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$atopic" --partition 0 --offset earliest \
    --isolation-level read_committed --timeout-ms 4000 2>/dev/null | wc -l) || true
  uncommitted=$(tool kafka-console-consumer --bootstrap-server "$b" --topic "$atopic" --partition 0 --offset earliest \
    --isolation-level read_uncommitted --timeout-ms 4000 2>/dev/null | wc -l) || true
  [ "$committed" = 1 ] && [ "$uncommitted" -gt 1 ] \
    || fail "read_committed reads $committed records (expected 1: the aborted ones hidden), read_uncommitted $uncommitted (expected more)"
}
spawn aborted-transaction aborted
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
