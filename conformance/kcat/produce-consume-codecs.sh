#!/usr/bin/env bash
# kcat (librdkafka 2.0.2): produce keyed messages with each codec to an auto-created topic, consume them back
# exactly, in order, with keys and offsets.
set -euo pipefail
b="$OSPREY_BOOTSTRAP"
topic="kcat-codecs-$RANDOM"
expected=""
offset=0
for codec in none gzip snappy lz4 zstd; do
  lines=""
  for i in 1 2 3; do lines+="k$i:$codec-$i"$'\n'; done
  printf '%s' "$lines" | kcat -b "$b" -P -t "$topic" -K: -z "$codec" -X acks=all
  for i in 1 2 3; do expected+="k$i=$codec-$i@$offset"$'\n'; offset=$((offset + 1)); done
done
actual=$(kcat -b "$b" -C -t "$topic" -e -q -K: -f '%k=%s@%o\n')
if [ "$actual"$'\n' != "$expected" ]; then
  echo "expected:"; printf '%s' "$expected"; echo "actual:"; echo "$actual"; exit 1
fi
