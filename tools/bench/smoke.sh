#!/usr/bin/env bash
# Smoke test for meshmq-bench against a real meshmq: every mode runs briefly and its JSON summary
# is checked for deliveries and, at QoS 1, for no loss. No timing is asserted: CI machines are
# shared and may be slow (or run this under sanitizers).
# Usage: smoke.sh MESHMQ_BINARY MESHMQ_BENCH_BINARY
set -euo pipefail
broker_bin=$1
bench=$2
py=/usr/bin/python3
work=$(mktemp -d)
broker_pid=
mosquitto_pid=
cleanup() {
  for pid in $broker_pid $mosquitto_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Another test may take the port between free_port and the broker's bind: try a few.
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  # Only the TCP listener: the fixed default ports of the others could clash with other tests.
  "$broker_bin" --listeners.tcp.port="$port" --listeners.tcp.bind=127.0.0.1 --http.port=0 \
    --listeners.ws.port=0 --node.data_dir="$work/data" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do
    if "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      break 2
    fi
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=
done
[ -n "$broker_pid" ] || { echo "meshmq did not start"; cat "$work/broker.log"; exit 1; }

failures=0
# run NAME CHECK ARGS...: runs the bench, then evaluates the Python expression CHECK on its JSON
# summary `d`.
run() {
  local name=$1 check=$2
  shift 2
  echo "--- $name: meshmq-bench $*"
  if ! "$bench" "$@" -p "$port" --quiet --json "$work/$name.json"; then
    echo "FAIL $name: exit status $?"
    failures=$((failures + 1))
    return
  fi
  if "$py" - "$work/$name.json" "$check" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({k: d[k] for k in ("sent", "received", "expected", "lost", "duplicated",
                                    "out_of_order", "connect_errors")}))
sys.exit(0 if eval(sys.argv[2], {"d": d}) else 1)
PY
    echo "ok   $name"
  else
    echo "FAIL $name: $check"
    failures=$((failures + 1))
  fi
}

no_errors='d["connect_errors"] == 0 and d["connections"]["lost"] == 0'
run fanin_q1 "$no_errors and d['received'] > 0 and d['lost'] == 0 and d['received'] == d['expected'] and d['duplicated'] == 0" \
  scenario fanin -q 1 -d 3 --total-rate 4000
run fanin_q0_max "$no_errors and d['received'] > 0 and d['sent'] > 0" scenario fanin -q 0 -d 2 -c 4
run pairs_q1 "$no_errors and d['received'] > 0 and d['lost'] == 0 and d['received'] == d['expected']" \
  scenario pairs -q 1 -c 5 -d 2
run pairs_q2 "$no_errors and d['received'] > 0 and d['lost'] == 0 and d['duplicated'] == 0" \
  scenario pairs -q 2 -c 3 -d 2 -I 5
run fanout_q1 "$no_errors and d['received'] == 20 * d['sent'] and d['lost'] == 0" \
  scenario fanout -q 1 -c 20 -d 2
# --latency-log: 16 bytes (send time, latency) for each measured delivery.
run latency "$no_errors and d['latency_us']['count'] > 0 and d['lost'] == 0 and __import__('os').path.getsize('$work/latency.bin') == 16 * d['latency_us']['count']" \
  scenario latency -q 1 -c 2 --total-rate 500 -d 2 --latency-log "$work/latency.bin"
# pairs: each message reaches its pair's subscriber and the wildcard subscriber.
run count_limit "$no_errors and d['sent'] == 4 * 100 and d['received'] == 800" \
  scenario pairs -q 1 -c 4 -d 0 -n 100 -I 1
run idle "$no_errors and d['connections']['connected'] == 50" scenario idle -c 50 -d 1
run conn "$no_errors and d['connections']['connected'] == 20" conn -c 20 -d 1 --ifaddr 127.0.0.1,127.0.0.2

# Connections that fail must fail the run.
echo "--- refused: meshmq-bench conn against a closed port"
closed=$(free_port)
if "$bench" conn -c 2 -d 1 -p "$closed" --quiet --json "$work/refused.json"; then
  echo "FAIL refused: exit status 0"
  failures=$((failures + 1))
elif ! "$py" -c "import json,sys; sys.exit(0 if json.load(open('$work/refused.json'))['connect_errors'] == 2 else 1)"; then
  echo "FAIL refused: connect_errors != 2"
  failures=$((failures + 1))
else
  echo "ok   refused"
fi

# meshmq has no WebSocket listener yet: check the WebSocket transport against Debian's mosquitto
# (2.0.11 starts a websockets listener only next to a plain one).
if [ -x /usr/sbin/mosquitto ]; then
  tcp_port=$(free_port)
  ws_port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nlistener %s 127.0.0.1\nprotocol websockets\n' \
    "$tcp_port" "$ws_port" >"$work/mosquitto.conf"
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  mosquitto_pid=$!
  sleep 0.5
  saved_port=$port
  port=$ws_port
  run websocket "$no_errors and d['received'] > 0 and d['lost'] == 0" scenario pairs --ws -q 1 -c 3 -d 1
  port=$saved_port
else
  echo "skip websocket: /usr/sbin/mosquitto not installed"
fi

if [ "$failures" -ne 0 ]; then
  echo "broker log:"
  tail -n 50 "$work/broker.log"
  exit 1
fi
echo "all bench smoke checks passed"
