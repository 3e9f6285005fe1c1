#!/usr/bin/env bash
# Authorized, logged single-device reads against the same server's /health,
# measured in one run with wrk over 64 keep-alive connections.
#
#   bash benches/api_load.sh            # 15 s per endpoint
#   DURATION=30s bash benches/api_load.sh
#   PACED_ONLY=1 bash benches/api_load.sh   # the paced 30k/s runs only
#   TMPDIR=/dev/shm bash benches/api_load.sh # data dir on tmpfs: every
#       fdatasync returns at once, so against a run on disk this shows
#       what the log's fsyncs themselves add
#
# Needs wrk (Debian package `wrk`), oha (`cargo install oha --locked`, for
# the fixed-rate run), curl and python3. Starts the release
# binary on loopback ports with a throw-away data dir; stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
HTTP=127.0.0.1:18080
TCP=127.0.0.1:15027
D1=356307042441013
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
command -v oha >/dev/null || { echo "install oha (cargo install oha --locked)" >&2; exit 1; }
# BIN=path runs another build (e.g. a copy of the previous commit's binary)
# without rebuilding.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/trackgate
fi
dir=$(mktemp -d)
token="tga_bench_$(date +%s)"
python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$token" > "$dir/admin-token.sha256"
"$BIN" --data-dir "$dir" --http "$HTTP" --listen "teltonika=$TCP" > "$dir/gateway.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf "http://$HTTP/health" >/dev/null && break; sleep 0.1; done

api() { curl -sf -X "$1" "http://$HTTP$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+-d "$4"}; }
api POST /api/v1/admin/companies "$token" '{"id":"4711","name":"Carrier"}' >/dev/null
api POST /api/v1/admin/companies "$token" '{"id":"0815","name":"Shipper"}' >/dev/null
api POST /api/v1/admin/companies/4711/devices "$token" "{\"device_id\":\"$D1\",\"name\":\"Truck 1\"}" >/dev/null
key() { api POST "/api/v1/admin/companies/$1/users" "$token" '{"name":"bench","role":"admin"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'; }
carrier=$(key 4711)
shipper=$(key 0815)
api POST /api/v1/permissions "$carrier" "{\"name\":\"bench\",\"recipient_company_id\":\"0815\",\"device_ids\":[\"$D1\"]}" >/dev/null

# One fresh fix over Teltonika TCP, so every read returns a position.
python3 - "$TCP" "$D1" <<'PY'
import socket, struct, sys, time
host, port = sys.argv[1].split(":"); imei = sys.argv[2].encode()
def crc16(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
rec = struct.pack(">QBiiHHBHBB", int(time.time() * 1000), 0, int(8.6e7), int(50.1e7), 100, 90, 8, 55, 0, 0) + bytes([0, 0, 0, 0])
data = bytes([8, 1]) + rec + bytes([1])
frame = b"\0\0\0\0" + struct.pack(">I", len(data)) + data + struct.pack(">I", crc16(data))
s = socket.create_connection((host, int(port)))
s.sendall(struct.pack(">H", len(imei)) + imei); assert s.recv(1) == b"\x01"
s.sendall(frame); assert s.recv(4) == b"\0\0\0\1", "record acked"
PY

# PACED_ONLY=1 skips the closed-loop wrk runs (the paced ones alone).
if [ -z "${PACED_ONLY:-}" ]; then
run() { wrk -t2 -c64 -d"$DURATION" --latency "$@"; }
# The gateway's CPU time (user + system, in clock ticks): CPU per request is
# steadier than requests/s on a shared machine.
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
per_request() { python3 -c "print(round(($2 - $1) / $(getconf CLK_TCK) / $3 * 1e6, 1))"; }
echo "== baseline: GET /health"
t0=$(ticks)
base=$(run "http://$HTTP/health")
t1=$(ticks)
echo "$base" | grep -E 'Requests/sec|99%|Non-2xx' || true
echo "== logged read: GET /api/v1/devices/$D1/position as the recipient"
read=$(run -H "Authorization: Bearer $shipper" "http://$HTTP/api/v1/devices/$D1/position")
t2=$(ticks)
echo "$read" | grep -E 'Requests/sec|99%|Non-2xx' || true
nb=$(echo "$base" | awk '/requests in/ {print $1}')
nr=$(echo "$read" | awk '/requests in/ {print $1}')
echo "gateway CPU per request: /health $(per_request "$t0" "$t1" "$nb") us, logged read $(per_request "$t1" "$t2" "$nr") us"
b=$(echo "$base" | awk '/Requests\/sec/ {print $2}')
r=$(echo "$read" | awk '/Requests\/sec/ {print $2}')
echo "ratio logged reads / health: $(python3 -c "print(round($r / $b, 2))")"
fi

# Paced: 30k reads/s offered at a fixed rate (open loop, latency counted
# from each request's scheduled start, so a stall is not hidden) over
# PACED_CONNECTIONS connections. The owner's read of the same device takes the same path
# without the access-log write, so the p99 difference is what the log
# (group commit + fsync) adds.
RATE=${RATE:-30000}
# 64 connections cannot carry 30k/s once each read waits ~2 ms for its
# commit (64 / 2 ms = 32k/s): the client would queue, not the server.
PACED_CONNECTIONS=${PACED_CONNECTIONS:-128}
paced() { oha --no-tui -z "$DURATION" -c "$PACED_CONNECTIONS" -q "$RATE" --latency-correction --output-format json "$@"; }
summary() { python3 -c '
import json, sys
r = json.load(sys.stdin)
rate, lat = r["summary"]["requestsPerSec"], r["latencyPercentiles"]
ok = r["statusCodeDistribution"].get("200", 0)
print("%.0f req/s, p50 %.2f ms, p99 %.2f ms, 200s %d" % (rate, lat["p50"] * 1e3, lat["p99"] * 1e3, ok))'; }
p99() { python3 -c 'import json,sys; print(json.load(sys.stdin)["latencyPercentiles"]["p99"]*1e3)'; }
echo "== paced $RATE/s: owner's read (not logged)"
own=$(paced -H "Authorization: Bearer $carrier" "http://$HTTP/api/v1/devices/$D1/position")
echo "$own" | summary
echo "== paced $RATE/s: recipient's read (logged)"
waits() { curl -sf "http://$HTTP/metrics" | grep -E '^trackgate_access_log_(wait|commit)_seconds_bucket' > "$1"; }
waits "$dir/waits.before"
rec=$(paced -H "Authorization: Bearer $shipper" "http://$HTTP/api/v1/devices/$D1/position")
waits "$dir/waits.after"
echo "$rec" | summary
echo "p99 added by the access log at $RATE/s: $(python3 -c "print(round($(echo "$rec" | p99) - $(echo "$own" | p99), 2))") ms"
# The same, as the gateway measures it: each logged read's wait for its
# entry's commit (queue, write, fsync, release), from the difference of
# two scrapes of trackgate_access_log_wait_seconds around the paced run,
# quantiles interpolated within buckets as PromQL's histogram_quantile does.
python3 - "$dir/waits.before" "$dir/waits.after" <<'PY'
import re, sys
def read(path):
    out = {}
    for line in open(path):
        m = re.search(r'^(\w+)_bucket\{le="([^"]+)"\} (\S+)', line)
        out.setdefault(m.group(1), {})[float(m.group(2))] = float(m.group(3))
    return out
before, after = read(sys.argv[1]), read(sys.argv[2])
def quantile(name, q):
    a, b = after[name], before.get(name, {})
    buckets = sorted((le, a[le] - b.get(le, 0)) for le in a)
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return lower * 1e3
            return (lower + (le - lower) * (rank - below) / max(n - below, 1)) * 1e3
        lower, below = le, n
wait, commit = "trackgate_access_log_wait_seconds", "trackgate_access_log_commit_seconds"
print("the log's wait per read, gateway-side: p50 %.2f ms, p99 %.2f ms; its commits (write + fsync): p50 %.2f ms, p99 %.2f ms"
      % (quantile(wait, 0.5), quantile(wait, 0.99), quantile(commit, 0.5), quantile(commit, 0.99)))
PY

# Committed entries, from the metrics: a run writes more than one download
# of the log may carry (1,000,000 entries).
entries=$(curl -sf "http://$HTTP/metrics" | awk '/^trackgate_access_log_entries_total / {print $2}')
echo "access-log entries committed: $entries"
# What storing them cost: the compactor thread's CPU (user + system) over
# the whole run, per committed entry.
comp=0
for t in /proc/$pid/task/*; do
  [ "$(cat "$t/comm")" = access-log-comp ] && comp=$(awk '{print $14 + $15}' "$t/stat")
done
echo "access-log compactor CPU per entry: $(python3 -c "print(round($comp / $(getconf CLK_TCK) / max($entries, 1) * 1e6, 2))") us"
