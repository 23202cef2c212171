#!/usr/bin/env bash
# kcat: metadata lists the broker and the topic with its partition; consuming from an offset and from the end.
set -euo pipefail
b="$OSPREY_BOOTSTRAP"
topic="kcat-meta-$RANDOM"
seq 1 10 | kcat -b "$b" -P -t "$topic"
meta=$(kcat -b "$b" -L -t "$topic")
echo "$meta" | grep -q "broker 1 at 127.0.0.1" || { echo "$meta"; exit 1; }
echo "$meta" | grep -q "topic \"$topic\" with 1 partitions" || { echo "$meta"; exit 1; }
from7=$(kcat -b "$b" -C -t "$topic" -o 7 -e -q | tr '\n' ' ')
[ "$from7" = "8 9 10 " ] || { echo "from offset 7: '$from7'"; exit 1; }
last=$(kcat -b "$b" -C -t "$topic" -o -2 -e -q | tr '\n' ' ')
[ "$last" = "9 10 " ] || { echo "last two: '$last'"; exit 1; }
