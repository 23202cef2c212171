#!/usr/bin/env bash
# Kafka Connect standalone worker (connect-standalone, FileStream connectors from the oracle's connect-file jar via
# plugin.path): FileStreamSource reads a file into a topic, FileStreamSink writes that topic to another file; 100 lines
# written before the worker starts and 50 appended while it runs all arrive in the sink file, in order, within 60 s.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
topic="java-connect-$RANDOM$RANDOM"; id="$RANDOM$RANDOM"
plugin=$(ls "$K"/../libs/connect-file-*.jar 2>/dev/null | head -1) || true
[ -n "$plugin" ] || fail "no connect-file-*.jar in $K/../libs (the FileStream connectors)"
rest_port=$(free_port)
cat >"$tmp/worker.properties" <<PROPS
bootstrap.servers=$b
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=$tmp/connect.offsets
offset.flush.interval.ms=1000
plugin.path=$plugin
listeners=http://127.0.0.1:$rest_port
PROPS
cat >"$tmp/source.properties" <<PROPS
name=java-file-source-$id
connector.class=FileStreamSource
tasks.max=1
file=$tmp/in.txt
topic=$topic
PROPS
cat >"$tmp/sink.properties" <<PROPS
name=java-file-sink-$id
connector.class=FileStreamSink
tasks.max=1
file=$tmp/out.txt
topics=$topic
consumer.override.auto.offset.reset=earliest
PROPS
seq 1 100 | sed 's/^/line /' >"$tmp/in.txt"
timeout --kill-after=10 180 "$K/connect-standalone.sh" "$tmp/worker.properties" "$tmp/source.properties" "$tmp/sink.properties" \
  >"$tmp/worker.log" 2>&1 &
worker=$!
at_exit "stop_pid $worker"
want=$(seq 1 150 | sed 's/^/line /')
appended=0; deadline=$((SECONDS + 60))
while :; do
  kill -0 $worker 2>/dev/null || fail "the Connect standalone worker exited:" "$(grep -E 'ERROR|Exception' "$tmp/worker.log" | head -30)"
  if [ $appended = 0 ] && [ -s "$tmp/out.txt" ]; then seq 101 150 | sed 's/^/line /' >>"$tmp/in.txt"; appended=1; fi
  [ "$(cat "$tmp/out.txt" 2>/dev/null)" = "$want" ] && break
  [ $SECONDS -lt $deadline ] || fail "after 60 s the sink file has $(wc -l <"$tmp/out.txt" 2>/dev/null || echo 0) of 150 lines (appended: $appended); first lines: $(head -3 "$tmp/out.txt" 2>/dev/null | paste -sd'|'); worker errors:" \
    "$(grep -E 'ERROR|Exception' "$tmp/worker.log" | head -30)"
  sleep 0.5
done
# Both connectors and their tasks RUNNING in the worker's REST API.
for c in java-file-source-$id java-file-sink-$id; do
  status=$(curl -sf "http://127.0.0.1:$rest_port/connectors/$c/status") || fail "GET /connectors/$c/status failed"
  echo "$status" | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["connector"]["state"]=="RUNNING" and [t["state"] for t in s["tasks"]]==["RUNNING"], s' \
    || fail "connector $c is not RUNNING with one RUNNING task:" "$status"
done
stop_pid $worker
if grep -q ' ERROR ' "$tmp/worker.log"; then fail "the Connect worker logged errors:" "$(grep -A3 ' ERROR ' "$tmp/worker.log" | head -30)"; fi
