#!/usr/bin/env bash
# HTTP push ingestion (a telematics provider's back end posting batches of
# positions to /api/v1/ingest/positions) against the no-storage baseline,
# in one run: the release gateway with durable history (each answer after
# the fsync) and with `[history] enabled = false`, each loaded by wrk with
# the same batches over the same keep-alive connections.
#
#   bash benches/http_ingest.sh                       # 100 positions/request
#   BATCH=10 CONNECTIONS=64 bash benches/http_ingest.sh
#   BIN=/tmp/trackgate-before bash benches/http_ingest.sh   # an earlier build
#
# Needs wrk (Debian package `wrk`), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${BATCH:-100} DEVICES=${DEVICES:-1000} CONNECTIONS=${CONNECTIONS:-32} DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=target/release/trackgate; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An interrupted run (Ctrl-C, an error, a closed pipe) leaves no gateway behind.
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null' EXIT

run() { # $1: label, $2: "true" (history) or "false" (baseline)
  local dir http conf token
  dir=$(mktemp -d); http=127.0.0.1:$(free_port); conf="$dir/trackgate.toml"
  # Every device listener on an ephemeral loopback port: only HTTP is used.
  sed -e "/^\[history\]/,/^\[/ s/^enabled = true\$/enabled = $2/" \
      -e 's/^listen = "0.0.0.0:[0-9]*"/listen = "127.0.0.1:0"/' config/trackgate.toml > "$conf"
  token="tga_bench_$(date +%s%N)"
  mkdir -p "$dir/data"
  python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$token" > "$dir/data/admin-token.sha256"
  "$BIN" --config "$conf" --data-dir "$dir/data" --http "$http" >"$dir/gateway.log" 2>&1 &
  pid=$!  # global: the exit trap stops it
  for _ in $(seq 100); do curl -sf "http://$http/health" >/dev/null && break; sleep 0.1; done
  curl -sf "http://$http/health" >/dev/null || { echo "$1: the gateway did not start:" >&2; cat "$dir/gateway.log" >&2; exit 1; }
  api() { curl -sf -X POST "http://$http$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"; }
  api /api/v1/admin/companies '{"id":"4711","name":"Carrier"}' >/dev/null
  for i in $(seq 0 $((DEVICES - 1))); do
    api /api/v1/admin/companies/4711/devices "{\"device_id\":\"8600$(printf %011d "$i")\",\"name\":\"Truck $i\"}" >/dev/null
  done
  local key
  key=$(api /api/v1/admin/companies/4711/users '{"name":"feed","role":"ingest"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  local out
  out=$(KEY=$key BATCH=$BATCH DEVICES=$DEVICES wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s benches/http_push.lua "http://$http/")
  # Positions the gateway took (its own count), per second of the load.
  local taken stored secs metrics
  metrics=$(curl -sf "http://$http/metrics")
  taken=$(echo "$metrics" | awk '/^trackgate_positions_total\{protocol="http"\}/ {print $2}')
  stored=$(echo "$metrics" | awk '/^trackgate_history_records_total / {print $2}')
  secs=$(echo "$out" | awk '/requests in/ {sub(/s,$/, "", $4); print $4}')
  if [ -z "$taken" ] || [ "$taken" = 0 ]; then
    echo "$1: the gateway took no position; wrk said:" >&2; echo "$out" >&2; exit 1
  fi
  # Durable: every position answered is in the history already.
  if [ "$2" = true ] && [ "${stored:-0}" -lt "$taken" ]; then
    echo "$1: $taken positions answered but only ${stored:-0} stored" >&2; exit 1
  fi
  printf '%-9s %s positions/s (%s requests/s x %s), answer p50 %s p99 %s%s\n' "$1" \
    "$(python3 -c "print(round($taken / $secs))")" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$BATCH" \
    "$(echo "$out" | awk '$1 == "50%" {print $2}')" "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
    "$(echo "$out" | grep -q Non-2xx && echo ", $(echo "$out" | grep Non-2xx)")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; rm -rf "$dir"
}

echo "HTTP push: $BATCH positions per request, $DEVICES devices, $CONNECTIONS connections, $DURATION"
run baseline false
run durable true
run baseline false
run durable true
