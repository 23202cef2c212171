#!/usr/bin/env bash
# kafka-configs: a topic's config added, described, deleted; broker 1's full config list (--all, Kafka has ~290
# entries: at least 250, with num.network.threads and log.retention.hours, broker.id=1); a cluster-wide broker default added,
# described, removed; a user's SCRAM-SHA-256 credential added, described (iterations=8192), deleted.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-configs-$RANDOM$RANDOM"; user="alice-$RANDOM$RANDOM"

topic_configs() {
  local out
  out=$(tool kafka-topics --bootstrap-server "$b" --create --topic "$topic" --partitions 1 2>&1) || fail "kafka-topics --create failed:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type topics --entity-name "$topic" --alter --add-config retention.ms=12345 2>&1) \
    || fail "kafka-configs --alter --add-config retention.ms=12345 (topic) failed:" "$out"
  echo "$out" | grep -q "Completed updating config for topic $topic." || fail "kafka-configs --alter (topic) said:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type topics --entity-name "$topic" --describe 2>&1) || fail "kafka-configs --describe (topic) failed:" "$out"
  no_exception "kafka-configs --describe (topic)" "$out"
  echo "$out" | grep -q "^Dynamic configs for topic $topic are:" || fail "kafka-configs --describe (topic) said:" "$out"
  echo "$out" | grep -q "^  retention.ms=12345 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=12345" \
    || fail "kafka-configs --describe (topic) does not show retention.ms=12345 as a DYNAMIC_TOPIC_CONFIG:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type topics --entity-name "$topic" --alter --delete-config retention.ms 2>&1) \
    || fail "kafka-configs --alter --delete-config retention.ms (topic) failed:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type topics --entity-name "$topic" --describe 2>&1) || fail "kafka-configs --describe (topic) failed:" "$out"
  if echo "$out" | grep -q "retention.ms="; then fail "retention.ms is still a topic config after --delete-config:" "$out"; fi
  echo "$out" | grep -q "^Dynamic configs for topic $topic are:" || fail "kafka-configs --describe (topic, after delete) said:" "$out"
}

broker_all() {
  local out n problems=""
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type brokers --entity-name 1 --describe --all 2>&1) \
    || fail "kafka-configs --entity-type brokers --entity-name 1 --describe --all failed:" "$out"
  no_exception "kafka-configs --describe --all (broker)" "$out"
  echo "$out" | grep -q "^All configs for broker 1 are:" || fail "kafka-configs --describe --all (broker) said:" "$out"
  n=$(echo "$out" | grep -Ec '^  [a-z0-9._-]+=.* sensitive=(true|false) synonyms=')
  for name in num.network.threads log.retention.hours log.dirs num.partitions auto.create.topics.enable; do
    echo "$out" | grep -q "^  $name=" || problems+=" no $name;"
  done
  # In KRaft mode broker.id is the node id: 1 here (the id Metadata gives the broker).
  echo "$out" | grep -q "^  broker.id=1 " || problems+=" not broker.id=1 but '$(echo "$out" | grep '^  broker.id=' | cut -d' ' -f3)';"
  [ "$n" -ge 250 ] || problems+=" $n entries (Kafka 4.0 lists about 290; expected at least 250);"
  [ -z "$problems" ] || fail "kafka-configs --entity-type brokers --entity-name 1 --describe --all:$problems"
}

broker_default() {
  local out
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type brokers --entity-default --alter --add-config log.retention.ms=3600000 2>&1) \
    || fail "kafka-configs --entity-type brokers --entity-default --alter --add-config log.retention.ms=3600000 failed:" "$out"
  echo "$out" | grep -q "Completed updating default config for brokers in the cluster." || fail "kafka-configs --alter (broker default) said:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type brokers --entity-default --describe 2>&1) || fail "kafka-configs --describe (broker default) failed:" "$out"
  echo "$out" | grep -q "^  log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000" \
    || fail "the broker default log.retention.ms=3600000 is not described:" "$out"
  # Put it back: other scenarios run on this broker.
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type brokers --entity-default --alter --delete-config log.retention.ms 2>&1) \
    || fail "kafka-configs --delete-config log.retention.ms (broker default) failed:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type brokers --entity-default --describe 2>&1) || fail "kafka-configs --describe (broker default) failed:" "$out"
  if echo "$out" | grep -q "log.retention.ms="; then fail "the broker default log.retention.ms is still there after --delete-config:" "$out"; fi
}

scram() {
  local out
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type users --entity-name "$user" --alter --add-config 'SCRAM-SHA-256=[iterations=8192,password=pw]' 2>&1) \
    || fail "kafka-configs --entity-type users --alter --add-config SCRAM-SHA-256=[iterations=8192,password=pw] failed:" "$out"
  echo "$out" | grep -q "Completed updating config for user $user." || fail "kafka-configs --alter (SCRAM) said:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type users --entity-name "$user" --describe 2>&1) || fail "kafka-configs --describe (user) failed:" "$out"
  echo "$out" | grep -q "^SCRAM credential configs for user-principal '$user' are SCRAM-SHA-256=iterations=8192$" \
    || fail "the user's SCRAM-SHA-256 credential (iterations=8192) is not described:" "$out"
  if echo "$out" | grep -q "pw"; then fail "describing the user shows the password:" "$out"; fi
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type users --entity-name "$user" --alter --delete-config SCRAM-SHA-256 2>&1) \
    || fail "kafka-configs --delete-config SCRAM-SHA-256 failed:" "$out"
  out=$(tool kafka-configs --bootstrap-server "$b" --entity-type users --entity-name "$user" --describe 2>&1) || fail "kafka-configs --describe (user) failed:" "$out"
  if echo "$out" | grep -q "SCRAM-SHA-256"; then fail "the SCRAM-SHA-256 credential is still described after --delete-config:" "$out"; fi
}

spawn topic topic_configs
spawn broker-all broker_all
spawn broker-default broker_default
spawn scram scram
join_all
