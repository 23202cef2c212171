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
# A record sent with a CreateTime of 1970 keeps it on a CreateTime topic and is re-stamped with the broker's clock
# on the LogAppendTime topic (a broker that ignored the setting would hand back the 1970 time).
before=$(( $(date +%s) * 1000 - 5000 ))
for t in "$lat" "$zstd"; do
  /usr/bin/python3 - "$b" "$t" <<'PY'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1]})
p.produce(sys.argv[2], key=b"old", value=b"stamped", timestamp=1000, partition=0)
assert p.flush(30) == 0
PY
done
stamp=$(kcat -b "$b" -C -t "$lat" -e -q -f '%T %s\n')
ts=${stamp%% *}
[ "${stamp#* }" = "stamped" ] && [ "$ts" -ge "$before" ] || { echo "LogAppendTime record: '$stamp' (expected the broker's time, after $before)"; exit 1; }
kept=$(kcat -b "$b" -C -t "$zstd" -p 0 -e -q -f '%k %T\n' | grep '^old ')
[ "$kept" = "old 1000" ] || { echo "CreateTime record: '$kept' (expected its own time, 1000)"; exit 1; }

# What kcat sent uncompressed is stored zstd-compressed (Kafka's own dump tool reads Osprey's segment files).
K="$(cd "$(dirname "$0")/../../.." && pwd)/shared/oracle/kafka-4.0.0/bin"
[ -x "$K/kafka-dump-log.sh" ] || { echo "the reference Kafka tools are missing at $K"; exit 1; }
export LOG_DIR="${TMPDIR:-/tmp}/kcat-dump-log-$$"
dump=$(timeout 120 "$K/kafka-dump-log.sh" --files "$CONFORMANCE_DATA_DIR/$zstd-0/00000000000000000000.log" 2>&1)
batches=$(echo "$dump" | grep -c 'baseOffset:' || true)
zstds=$(echo "$dump" | grep -c 'compresscodec: zstd' || true)
[ "$batches" -gt 0 ] && [ "$batches" = "$zstds" ] || { echo "expected every batch zstd-compressed, got $zstds of $batches:"; echo "$dump" | head -5; exit 1; }
described=$("$osprey" configs describe --topic "$zstd" -o json -b "$b")
echo "$described" | grep -q '"name":"compression.type","value":"zstd","source":"topic"' || { echo "$described"; exit 1; }
