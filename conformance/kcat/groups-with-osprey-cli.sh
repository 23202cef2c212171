#!/usr/bin/env bash
# kcat's balanced consumer (-G) reads a topic as a group and commits; `osprey groups describe` then shows the
# group's committed offsets with no lag, and after more records, exactly that lag.
set -euo pipefail
b="$OSPREY_BOOTSTRAP"
osprey="$(dirname "$0")/../../osprey"
topic="kcat-groups-$RANDOM"; group="kcat-group-$RANDOM"
"$osprey" topics create "$topic" --partitions 2 -b "$b" >/dev/null
seq 1 15 | kcat -b "$b" -P -t "$topic" -p 0
seq 16 30 | kcat -b "$b" -P -t "$topic" -p 1
got=$(timeout 60 kcat -b "$b" -G "$group" -o beginning -e -q -X enable.auto.commit=true -X auto.commit.interval.ms=100 "$topic" | sort -n | tr '\n' ' ')
[ "$got" = "$(seq 1 30 | tr '\n' ' ')" ] || { echo "kcat -G read: $got"; exit 1; }
lag=$("$osprey" groups describe "$group" -o json -b "$b")
echo "$lag" | grep -q '"totalLag":0' || { echo "$lag"; exit 1; }
seq 31 35 | kcat -b "$b" -P -t "$topic" -p 0
lag=$("$osprey" groups describe "$group" -o json -b "$b")
echo "$lag" | grep -q '"totalLag":5' || { echo "$lag"; exit 1; }
