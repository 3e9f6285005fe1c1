#!/usr/bin/env bash
# Durable ingest against the no-storage baseline, in one run: the release
# gateway with `ack = "durable"` (history on, fsync before every ack) and
# with `[history] enabled = false` (acks without storing), each loaded by
# `trackgate simulate` with the same devices, rate and records per packet.
#
#   benches/ingest.sh                         # 1000 devices, 1 record/packet
#   DEVICES=5000 RATE=20 RECORDS=10 benches/ingest.sh
#   BIN=/tmp/trackgate-before benches/ingest.sh   # an earlier build
#   PROTOCOL=wialon RECORDS=10 benches/ingest.sh   # gt06, jt808, meitrack, ruptela, wialon devices
#   CPU=1 DEVICES=10000 RATE=12 DURATION=15 benches/ingest.sh  # + cores used by each side
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-1000} RATE=${RATE:-50} RECORDS=${RECORDS:-1} DURATION=${DURATION:-10}
PROTOCOL=${PROTOCOL:-teltonika}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# BIN=path/to/trackgate measures another build (e.g. before a change).
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=target/release/trackgate; fi
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }  # user + system CPU, clock ticks
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An interrupted run (Ctrl-C, an error, a closed pipe) leaves no gateway behind.
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null' EXIT

run() { # $1: label, $2: "true" (history) or "false" (baseline)
  local dir port conf
  dir=$(mktemp -d); port=$(free_port); conf="$dir/trackgate.toml"
  sed -e 's/accept_unregistered_devices = false/accept_unregistered_devices = true/' \
      -e "/^\[history\]/,/^\[/ s/^enabled = true\$/enabled = $2/" \
      -e 's/^listen = "0.0.0.0:[0-9]*"/listen = "127.0.0.1:0"/' config/trackgate.toml > "$conf"
  "$BIN" --config "$conf" --data-dir "$dir/data" --http 127.0.0.1:0 --listen "$PROTOCOL=127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!  # global: the exit trap stops it
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  printf '%-9s ' "$1"
  "$BIN" simulate --protocol "$PROTOCOL" --target "127.0.0.1:$port" --devices "$DEVICES" --rate "$RATE" \
    --records "$RECORDS" --duration "$DURATION" --ack-timeout 10 > "$dir/sim.out" &
  local sim=$! cpu=""
  if [ -n "${CPU:-}" ] && [ "$DURATION" -ge 8 ]; then
    # CPU of each process from second 3 to 2 s before the end (the
    # devices connect before, drain after).
    sleep 3; local g0 s0 t0 g1 s1 t1
    g0=$(ticks $pid); s0=$(ticks $sim); t0=$(date +%s.%N)
    sleep $((DURATION - 5))
    g1=$(ticks $pid); s1=$(ticks $sim); t1=$(date +%s.%N)
    cpu=$(python3 -c "t=($t1-$t0)*$(getconf CLK_TCK); print(f'; gateway {($g1-$g0)/t:.2f} cores, simulator {($s1-$s0)/t:.2f} cores')")
  fi
  wait $sim
  echo "$(tail -1 "$dir/sim.out")$cpu"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; rm -rf "$dir"
}

echo "$PROTOCOL: $DEVICES devices x $RATE packets/s x $RECORDS records, $DURATION s"
run baseline false
run durable true
run baseline false
run durable true
