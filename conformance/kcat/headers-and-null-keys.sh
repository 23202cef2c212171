#!/usr/bin/env bash
# kcat: headers and messages without keys survive the round trip.
set -euo pipefail
b="$OSPREY_BOOTSTRAP"
topic="kcat-headers-$RANDOM"
echo "payload" | kcat -b "$b" -P -t "$topic" -H "trace=abc" -H "tenant=42"
out=$(kcat -b "$b" -C -t "$topic" -e -q -f '%k|%s|%h\n')
[ "$out" = "|payload|trace=abc,tenant=42" ] || { echo "got '$out'"; exit 1; }
