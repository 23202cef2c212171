#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/kafkajs ] || npm ci --no-audit --no-fund >/dev/null
exec node transactions.js
