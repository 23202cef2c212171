#!/usr/bin/env bash
# kcat with topics the osprey CLI set up: a zstd topic re-compresses what kcat sends uncompressed, a LogAppendTime
# topic stamps records with the broker's clock, kcat reads both back exactly, and the CLI reads what kcat wrote.
set -euo pipefail
b="$OSPREY_BOOTSTRAP"
osprey="$(dirname "$0")/../../osprey"
zstd="kcat-zstd-$RANDOM"; lat="kcat-lat-$RANDOM"
"$osprey" topics create "$zstd" --partitions 2 --config compression.type=zstd -b "$b" >/dev/null
"$osprey" topics create "$lat" --config message.timestamp.type=LogAppendTime -b "$b" >/dev/null
seq 1 200 | sed 's/^/k/' | paste -d: - <(seq 1 200) | kcat -b "$b" -P -t "$zstd" -K: -z none
got=$(kcat -b "$b" -C -t "$zstd" -e -q -f '%k=%s\n' | sort -t= -k2 -n | tr '\n' ' ')
want=$(for i in $(seq 1 200); do printf 'k%s=%s ' "$i" "$i"; done)
[ "$got" = "$want" ] || { echo "zstd topic gave: ${got:0:200}"; exit 1; }
cli=$("$osprey" consume "$zstd" --from-beginning --max 200 --format key-value --key-separator = -b "$b" | sort -t= -k2 -n | tr '\n' ' ')
[ "$cli" = "$want" ] || { echo "osprey consume gave: ${cli:0:200}"; exit 1; }
before=$(( $(date +%s) * 1000 - 5000 ))
echo "stamped" | kcat -b "$b" -P -t "$lat"
stamp=$(kcat -b "$b" -C -t "$lat" -e -q -f '%T %s\n')
ts=${stamp%% *}
[ "${stamp#* }" = "stamped" ] && [ "$ts" -ge "$before" ] || { echo "LogAppendTime record: '$stamp' (expected a timestamp after $before)"; exit 1; }
described=$("$osprey" configs describe --topic "$zstd" -o json -b "$b")
echo "$described" | grep -q '"name":"compression.type","value":"zstd","source":"topic"' || { echo "$described"; exit 1; }
