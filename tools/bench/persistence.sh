#!/usr/bin/env bash
# Persistent QoS 1 throughput of meshmq per storage setting (a benchmark, not a test).
#
#   tools/bench/persistence.sh [--duration S] [--pairs N] [--out FILE]
#
# For each of storage.backend=memory, storage.sync=none, batch and always, starts a fresh meshmq
# (build/broker/meshmq, --broker.threads=1, pinned to core 1, new data dir) and, pinned to core 0,
# N subscribers (`meshmq-bench sub`, bench/%i, clean session 0: persistent sessions, so every
# delivery writes its inflight entry and its PUBACK deletes it) and N publishers (`meshmq-bench
# pub`, bench/%i, QoS 1) publishing as fast as their window of 32 unacknowledged messages allows:
# every PUBACK waits for the store. Prints a markdown table of acknowledged publishes
# and deliveries per second; the bench JSON and broker logs stay in the results directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=10
pairs=10
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
broker=build/broker/meshmq
bench=build/tools/bench/meshmq-bench
[ -x "$broker" ] && [ -x "$bench" ] || { echo "build meshmq and meshmq-bench first" >&2; exit 2; }
results=$(mktemp -d /tmp/meshmq-persistence-bench.XXXXXX)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

table="| storage | acked publishes/s | deliveries/s | latency p50 / p99 (ms) |
| --- | --- | --- | --- |"
for setting in memory none batch always; do
  port=$(free_port)
  data="$results/data-$setting"
  if [ "$setting" = memory ]; then flags=(--storage.backend=memory); else flags=(--storage.sync=$setting); fi
  taskset -c 1 "$broker" --listeners.tcp.bind=127.0.0.1 --listeners.tcp.port="$port" \
    --broker.threads=1 --node.data_dir="$data" --log.level=warn --mqtt.max_queued_messages=100000 \
    "${flags[@]}" >"$results/broker-$setting.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  taskset -c 0 "$bench" sub -p "$port" -c "$pairs" -t 'bench/%i' -q 1 -C false \
    -d $((duration + 5)) --quiet --json "$results/sub-$setting.json" 2>"$results/sub-$setting.err" &
  sub=$!
  for _ in $(seq 200); do grep -q '^ready:' "$results/sub-$setting.err" 2>/dev/null && break; sleep 0.05; done
  taskset -c 0 "$bench" pub -p "$port" -c "$pairs" -t 'bench/%i' -q 1 -I 0 -d "$duration" \
    --quiet --json "$results/pub-$setting.json" 2>"$results/pub-$setting.err" || true
  wait "$sub" || true
  kill "$pid"; wait "$pid" || true
  row=$(/usr/bin/python3 - "$results/pub-$setting.json" "$setting" "$results/sub-$setting.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[3]))
d = r["duration_s"] or 1
r["received"] = s["received"]
lat = s.get("latency_us") or {}
label = {"memory": "memory (nothing written)", "none": "rocksdb, sync=none",
         "batch": "rocksdb, sync=batch (2 ms)", "always": "rocksdb, sync=always"}[sys.argv[2]]
print(f"| {label} | {r['acked'] / d:,.0f} | {r['received'] / d:,.0f} | "
      f"{lat.get('p50', 0) / 1000:.1f} / {lat.get('p99', 0) / 1000:.1f} |")
PY
)
  table+=$'\n'"$row"
done
echo "$table"
[ -n "$out" ] && echo "$table" >"$out"
echo "results: $results" >&2
