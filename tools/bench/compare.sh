#!/usr/bin/env bash
# meshmq vs Mosquitto, side by side, in one invocation. `compare.sh --help` explains.
#
# Each scenario runs on both brokers in turn, each run against a fresh broker pinned to one core
# (--broker-cpu) with meshmq-bench pinned to another (--tool-cpu). The throughput scenarios run a
# ladder of fixed offered rates and record, per run, the messages delivered and the broker's CPU
# time (utime+stime from /proc/PID/stat) between the tool's `ready:` line and its exit; the table
# reports messages delivered per broker CPU-second, i.e. msgs/s per broker core. Each broker climbs
# the ladder until a rung it does not sustain (loss >= 0.1% or delivery/publish rate < 95% of the
# offered rate), which also gives the highest sustained rate on the ladder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tools/bench/compare
CMDLINE="tools/bench/compare.sh${*:+ $*}"

usage() {
  cat <<'EOF'
Usage: tools/bench/compare.sh [options]

Runs every scenario on Mosquitto and on meshmq (fresh broker per run, broker and load generator
pinned to separate cores) and prints one table: scenario | metric | mosquitto | meshmq | ratio.

  --scenarios LIST   comma separated, default all: fanin-q0,fanin-q1,fanin-q2,fanout,pairs,
                     latency,idle ("fanin" = the three QoS levels)
  --quick            smoke test of the script (~1 minute): short runs, the first rung of each
                     ladder only, 2,000 connections instead of 15,000
  --duration S       seconds of publishing per throughput run (default 5; --quick 2)
  --latency-duration S   seconds of the latency runs (default 10; --quick 3)
  --latency-rate R   msg/s in total for the latency scenario (default 5000)
  --latency-qos LIST QoS levels of the latency scenario (default 0,1); each latency run has
                     stall-watch beside it on both cores and a --latency-log, and the p99
                     target is judged on the messages sent away from the VM's stalls
                     (README "Rounds, and the VM's stalls")
  --conns N          connections for idle, and 2 x pairs + 1 for pairs (default 15000)
  --no-climb         run only the first two rungs of each ladder (no max-rate search)
  --rounds N         run the whole set of scenarios N times (default 1), Mosquitto first in odd
                     rounds and meshmq first in even ones; the table shows the median of the
                     rounds and the targets list each round's figure (see README "Rounds")
  --out FILE         also write the table as markdown to FILE (default RESULTS/compare.md)
  --results DIR      raw JSON, logs and run records (default /tmp/meshmq-compare-DATE)
  --meshmq PATH      broker binary (default build/broker/meshmq)
  --bench PATH       meshmq-bench binary (default build/tools/bench/meshmq-bench)
  --mosquitto PATH   default: mosquitto on PATH, else /usr/sbin/mosquitto
  --build            run scripts/build.sh release meshmq meshmq-bench loopback-echo stall-watch
                     first
  --rev REV          build meshmq and meshmq-bench from a clean export of git revision REV
                     (git archive, into the results dir) and measure those: the checkout may
                     hold someone's uncommitted work
  --mosquitto-nagle  leave Mosquitto at its default set_tcp_nodelay false (Nagle's algorithm on);
                     by default it runs with set_tcp_nodelay true, as meshmq always does
  --broker-cpu N     core for the broker (default 1)
  --tool-cpu N       core for meshmq-bench (default 0)
  --wait-load X      before starting, wait until the 1-minute load average is below X
  --wait-timeout S   ... but at most S seconds (default 900), then run anyway and say so
  -h, --help         this text

The binaries are copied into the results dir before the first run, so a rebuild of build/ by
someone else during the run cannot swap them.
EOF
}

die() { echo "compare.sh: $*" >&2; exit 2; }

SCENARIOS=fanin-q0,fanin-q1,fanin-q2,fanout,pairs,latency,idle
QUICK=0 DURATION= LAT_DURATION= LAT_RATE=5000 LAT_QOS=0,1 CONNS= CLIMB=1 ROUNDS=1
OUT= RESULTS= MESHMQ= BENCH= MOSQUITTO= BUILD=0 REV=
BROKER_CPU=1 TOOL_CPU=0 WAIT_LOAD= WAIT_TIMEOUT=900 NODELAY=true
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) SCENARIOS=${2:?}; shift ;;
    --quick) QUICK=1 ;;
    --duration) DURATION=${2:?}; shift ;;
    --latency-duration) LAT_DURATION=${2:?}; shift ;;
    --latency-rate) LAT_RATE=${2:?}; shift ;;
    --latency-qos) LAT_QOS=${2:?}; shift ;;
    --conns) CONNS=${2:?}; shift ;;
    --no-climb) CLIMB=0 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    --results) RESULTS=${2:?}; shift ;;
    --meshmq) MESHMQ=${2:?}; shift ;;
    --bench) BENCH=${2:?}; shift ;;
    --mosquitto) MOSQUITTO=${2:?}; shift ;;
    --build) BUILD=1 ;;
    --rev) REV=${2:?}; shift ;;
    --mosquitto-nagle) NODELAY=false ;;
    --broker-cpu) BROKER_CPU=${2:?}; shift ;;
    --tool-cpu) TOOL_CPU=${2:?}; shift ;;
    --wait-load) WAIT_LOAD=${2:?}; shift ;;
    --wait-timeout) WAIT_TIMEOUT=${2:?}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-2} LAT_DURATION=${LAT_DURATION:-3} CONNS=${CONNS:-2000}
else
  DURATION=${DURATION:-5} LAT_DURATION=${LAT_DURATION:-10} CONNS=${CONNS:-15000}
fi
SCENARIOS=${SCENARIOS//fanin-q/fanin@}
SCENARIOS=$(echo ",$SCENARIOS," | sed 's/,fanin,/,fanin@0,fanin@1,fanin@2,/; s/^,//; s/,$//')
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive number, not $ROUNDS"
for s in ${SCENARIOS//,/ }; do
  case "$s" in fanin@0|fanin@1|fanin@2|fanout|pairs|latency|idle) ;; *) die "unknown scenario $s" ;; esac
done

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for t in taskset prlimit ss git; do command -v "$t" >/dev/null || die "$t not found"; done
[ -n "$MOSQUITTO" ] || MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || die "mosquitto not found (apt-get install mosquitto)"
[ "$(nproc)" -ge 2 ] || echo "compare.sh: warning: one core only, broker and tool share it" >&2

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=${RESULTS:-${TMPDIR:-/tmp}/meshmq-compare-$STAMP}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
OUT=${OUT:-$RESULTS/compare.md}
RUNS=$RESULTS/runs.jsonl
: >"$RUNS"

# --- everything we start is killed on exit ---------------------------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries ---------------------------------------------------------------------------------
SRC=$ROOT
if [ -n "$REV" ]; then
  SRC=$RESULTS/src
  rm -rf "$SRC"; mkdir -p "$SRC"
  git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
  echo "building $REV ($(git -C "$ROOT" rev-parse --short "$REV")) in $SRC ..." >&2
  "$SRC/scripts/build.sh" release meshmq meshmq-bench >"$RESULTS/build.log" 2>&1 ||
    { tail -30 "$RESULTS/build.log" >&2; die "build failed (see $RESULTS/build.log)"; }
  "$SRC/scripts/build.sh" release loopback-echo stall-watch >>"$RESULTS/build.log" 2>&1 ||
    true  # older revs have neither
elif [ "$BUILD" = 1 ] || { [ -z "$MESHMQ" ] && [ ! -x "$ROOT/build/broker/meshmq" ]; } ||
     { [ -z "$BENCH" ] && [ ! -x "$ROOT/build/tools/bench/meshmq-bench" ]; }; then
  "$ROOT/scripts/build.sh" release meshmq meshmq-bench >"$RESULTS/build.log" 2>&1 ||
    { tail -30 "$RESULTS/build.log" >&2; die "build failed (see $RESULTS/build.log)"; }
  "$ROOT/scripts/build.sh" release loopback-echo stall-watch >>"$RESULTS/build.log" 2>&1 || true
fi
MESHMQ=${MESHMQ:-$SRC/build/broker/meshmq}
BENCH=${BENCH:-$SRC/build/tools/bench/meshmq-bench}
[ -x "$MESHMQ" ] || die "no meshmq binary at $MESHMQ"
[ -x "$BENCH" ] || die "no meshmq-bench binary at $BENCH"
mkdir -p "$RESULTS/bin"
cp "$MESHMQ" "$RESULTS/bin/meshmq"
cp "$BENCH" "$RESULTS/bin/meshmq-bench"
# The latency scenario's control (no broker), built next to meshmq-bench; skipped if missing.
ECHO_BIN=
if [ -x "$(dirname "$BENCH")/loopback-echo" ]; then
  cp "$(dirname "$BENCH")/loopback-echo" "$RESULTS/bin/loopback-echo"
  ECHO_BIN=$RESULTS/bin/loopback-echo
fi
# Beside each latency run: did the broker's or the tool's core stop running anything (a stall of
# the VM, not of a broker)? Next to meshmq-bench, else in this checkout's build; skipped if missing.
WATCH_BIN=
for w in "$(dirname "$BENCH")/stall-watch" "$ROOT/build/tools/bench/stall-watch"; do
  if [ -x "$w" ]; then
    cp "$w" "$RESULTS/bin/stall-watch"
    WATCH_BIN=$RESULTS/bin/stall-watch
    break
  fi
done
# ... and with every delivery's send time and latency, record.py also gives the latency outside
# the stalls stall-watch saw (README "Rounds").
LATENCY_LOG=0
[ -n "$WATCH_BIN" ] && "$BENCH" scenario --help 2>/dev/null | grep -q -- --latency-log &&
  LATENCY_LOG=1
MESHMQ_SRC=$MESHMQ
MESHMQ=$RESULTS/bin/meshmq BENCH=$RESULTS/bin/meshmq-bench
# Builds with an HTTP endpoint would bind its default port 8080; the benchmark needs none of it.
MESHMQ_EXTRA=()
"$MESHMQ" --help 2>/dev/null | grep -q 'http\.port' && MESHMQ_EXTRA=(--http.port=0)
# Mosquitto runs with "persistence false": meshmq without its RocksDB store, as the issue asks
# ("no persistence for the in-memory runs"); its default backend is rocksdb.
"$MESHMQ" --help 2>/dev/null | grep -q 'storage\.backend' && MESHMQ_EXTRA+=(--storage.backend=memory)

# meshmq sets TCP_NODELAY on every connection; Mosquitto only with set_tcp_nodelay true. With
# Nagle's algorithm a small write waits for the peer's ACK, and on loopback the segment is then
# sent, and delivered to the receiving socket, from the softirq of that ACK on the load
# generator's core: perf shows Mosquitto's own core then skips most of tcp_write_xmit and the
# receive path (~25% less broker CPU at fan-in QoS 1/2), which the same send would cost it on
# the broker's host over a real network. Same socket options, same accounting (NODELAY, set
# by --mosquitto-nagle, goes into mosquitto.conf below).

# --- wait for a quiet machine -----------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
LOAD_NOTE=
if [ -n "$WAIT_LOAD" ]; then
  waited=0
  while awk -v l="$(load1)" -v m="$WAIT_LOAD" 'BEGIN{exit !(l >= m)}'; do
    if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
      LOAD_NOTE="load average stayed >= $WAIT_LOAD for ${WAIT_TIMEOUT}s; ran anyway"
      echo "compare.sh: $LOAD_NOTE" >&2
      break
    fi
    [ $((waited % 60)) = 0 ] && echo "waiting for load < $WAIT_LOAD (now $(load1)) ..." >&2
    sleep 10; waited=$((waited + 10))
  done
fi

# --- header -----------------------------------------------------------------------------------
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
if [ -n "$REV" ]; then
  BUILT="clean export of $REV ($(git -C "$ROOT" rev-parse --short "$REV"))"
elif [ -n "$(git -C "$ROOT" status --porcelain -- broker tools/bench CMakeLists.txt 2>/dev/null)" ]; then
  BUILT="$MESHMQ_SRC, built from a checkout with uncommitted changes under broker/ or tools/bench/"
else
  BUILT="$MESHMQ_SRC (checkout clean under broker/ and tools/bench/)"
fi
{
  echo "command: $CMDLINE"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $COMMIT ($(git -C "$ROOT" log -1 --format=%s))"
  echo "meshmq: $BUILT, sha256 $(sha256sum "$MESHMQ" | cut -c1-12)"
  echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1) ($MOSQUITTO), set_tcp_nodelay $NODELAY"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"\
       "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "pinning: broker on core $BROKER_CPU (meshmq --broker.threads=1), meshmq-bench on core $TOOL_CPU"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)${LOAD_NOTE:+ ($LOAD_NOTE)}"
} >"$RESULTS/header.txt"
cat "$RESULTS/header.txt" >&2
echo "results: $RESULTS" >&2

# --- one run ----------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
# The samples below are taken while the broker and the tool run, on their cores or next to them,
# so they are pure bash: no command substitution, no awk or cat. Each would fork, and forks on
# this VM take milliseconds of CPU: those of one sample delayed the latency scenario's messages
# for ~150 ms, in every run, which put the p99 at 1-2 ms for both brokers. Each sets the variable
# named by its second argument.
# utime + stime, in clock ticks; -1 when the process is gone.
cpu_ticks() {
  local -a f
  if read -r -a f 2>/dev/null <"/proc/$1/stat"; then
    printf -v "$2" '%s' $((f[13] + f[14]))
  else
    printf -v "$2" '%s' -1
  fi
}
# Nanoseconds the process's threads spent runnable but waiting for a CPU (schedstat field 2):
# other work on the pinned cores shows up here.
runq_ns() {
  local s=0 f a b
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a b _ 2>/dev/null <"$f" && s=$((s + b))
  done
  [ -e "/proc/$1" ] || s=-1
  printf -v "$2" '%s' "$s"
}
# Context switches of all the process's threads (each one a sleep in epoll_wait and a wakeup).
ctxsw() {
  local s=0 f k v
  for f in /proc/"$1"/task/*/status; do
    while read -r k v; do
      case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) s=$((s + v)) ;; esac
    done 2>/dev/null <"$f"
  done
  [ -e "/proc/$1" ] || s=-1
  printf -v "$2" '%s' "$s"
}
rss_kb() {
  local k v r=0
  while read -r k v _; do
    if [ "$k" = VmRSS: ]; then r=$v; break; fi
  done 2>/dev/null <"/proc/$1/status"
  printf -v "$2" '%s' "$r"
}
now() { printf -v "$1" '%s' "$EPOCHREALTIME"; }
now_us() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }
# Seconds (a decimal number) -> microseconds.
to_us() {
  local int=${1%%.*} frac=0
  [[ $1 == *.* ]] && { frac=${1#*.}000000; frac=${frac:0:6}; }
  printf -v "$2" '%s' $((10#${int:-0} * 1000000 + 10#$frac))
}
# `sleep` without starting a process: a read that times out on a FIFO nobody writes to.
rm -f "$RESULTS/.nap"
mkfifo "$RESULTS/.nap"
exec {NAP_FD}<>"$RESULTS/.nap"
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    [ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ] && { echo "$p"; return; }
  done
}

BROKER_PID=
start_broker() {  # start_broker mosquitto|meshmq PORT DIR
  local kind=$1 port=$2 dir=$3
  mkdir -p "$dir"
  if [ "$kind" = mosquitto ]; then
    cat >"$dir/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 32
max_queued_messages 1000
max_connections -1
set_tcp_nodelay $NODELAY
log_dest stderr
log_type error
log_type warning
EOF
    prlimit --nofile=20000:20000 taskset -c "$BROKER_CPU" \
      "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
  else
    prlimit --nofile=20000:20000 taskset -c "$BROKER_CPU" \
      "$MESHMQ" --listeners.tcp.bind=127.0.0.1 --listeners.tcp.port="$port" \
      --mqtt.max_inflight=32 --mqtt.max_queued_messages=1000 --log.level=warn \
      --broker.threads=1 --node.data_dir="$dir/data" "${MESHMQ_EXTRA[@]}" >"$dir/broker.log" 2>&1 &
  fi
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  local i
  for i in $(seq 100); do
    [ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ] && return 0
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$dir/broker.log" >&2
  die "$kind did not start listening on 127.0.0.1:$port"
}

stop_broker() {
  local i
  kill "$BROKER_PID" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
}

RUN_N=0
# run SCENARIO_ID BROKER RATE ROLE SECONDS [bench scenario args...]: one fresh broker, one
# meshmq-bench run publishing (or holding connections) for SECONDS. Samples the broker (and the
# tool) at the `ready:` line, at the end of publishing and at the tool's exit, appends a record to
# runs.jsonl and sets LAST_OK=1 when the run sustained its offered rate.
run() {
  local sid=$1 kind=$2 rate=$3 role=$4 secs=$5; shift 5
  RUN_N=$((RUN_N + 1))
  local name; name=$(printf '%03d-%s-%s-%s' "$RUN_N" "${sid/@/-q}" "$kind" "$rate")
  [ "$ROUNDS" = 1 ] || name+="-r$ROUND"
  local dir=$RESULTS/runs/$name
  local port; port=$(free_port)
  mkdir -p "$dir"
  printf "%-32s " "$name" >&2
  start_broker "$kind" "$port" "$dir"
  sleep 0.3
  local rss0 cpu0=0 tcpu0=0 rss_ready=0 t0 cpu_pub=0 tcpu_pub=0 rss_late=0 t_pub=0 cpu1 t1
  local rc=0 ready=0 line wait0=0 wait_pub=0 twait0=0 twait_pub=0 cs0=0 cs1=0
  rss_kb "$BROKER_PID" rss0
  now t0
  local wpid= extra=()
  : >"$dir/bench.err"
  if [ "$role" = latency ] && [ -n "$WATCH_BIN" ]; then
    "$WATCH_BIN" --cpus "$BROKER_CPU,$TOOL_CPU" >"$dir/stall-watch.json" 2>>"$dir/bench.err" &
    wpid=$!
    PIDS+=("$wpid")
    [ "$LATENCY_LOG" = 0 ] || extra=(--latency-log "$dir/latency.bin")
  fi
  taskset -c "$TOOL_CPU" "$BENCH" scenario "$@" -h 127.0.0.1 -p "$port" --quiet \
    --json "$dir/bench.json" "${extra[@]}" 2>>"$dir/bench.err" &
  local tpid=$!
  PIDS+=("$tpid")
  # The `ready:` line (all clients connected and subscribed) starts the measured window. Polled:
  # reading the tool's stderr through a pipe would need another process to drain it afterwards.
  while :; do
    while IFS= read -r line; do
      if [[ $line == ready:* ]]; then ready=1; break; fi
    done <"$dir/bench.err"
    [ "$ready" = 1 ] && break
    kill -0 "$tpid" 2>/dev/null || break
    nap 0.01
  done
  if [ "$ready" = 1 ]; then
    cpu_ticks "$BROKER_PID" cpu0; cpu_ticks "$tpid" tcpu0; now t0
    runq_ns "$BROKER_PID" wait0; runq_ns "$tpid" twait0; ctxsw "$BROKER_PID" cs0
    rss_kb "$BROKER_PID" rss_ready
    # Late in the publishing (holding) phase, before the tool stops and drains (a drain can end
    # at once: leave a margin).
    local secs_us t_us left_us
    to_us "$secs" secs_us
    now_us t_us
    left_us=$(( (secs_us > 3000000 ? secs_us - 400000 : secs_us * 85 / 100) - (t_us - ${t0/./}) ))
    if [ "$left_us" -gt 0 ]; then
      printf -v left_us '%d.%06d' $((left_us / 1000000)) $((left_us % 1000000))
      nap "$left_us"
    fi
    cpu_ticks "$tpid" tcpu_pub; runq_ns "$tpid" twait_pub
    cpu_ticks "$BROKER_PID" cpu_pub; runq_ns "$BROKER_PID" wait_pub; now t_pub
    rss_kb "$BROKER_PID" rss_late
  fi
  wait "$tpid" || rc=$?
  cpu_ticks "$BROKER_PID" cpu1; ctxsw "$BROKER_PID" cs1; now t1
  if [ -n "$wpid" ]; then kill -TERM "$wpid" 2>/dev/null; wait "$wpid" || true; fi
  local alive=1
  kill -0 "$BROKER_PID" 2>/dev/null || alive=0
  stop_broker
  "$PY" "$HERE/record.py" --runs "$RUNS" --dir "$dir" --name "$name" --scenario "$sid" \
    --broker "$kind" --rate "$rate" --role "$role" --rc "$rc" --ready "$ready" \
    --broker-alive "$alive" --clk-tck "$CLK_TCK" \
    --cpu "$cpu0" "$cpu_pub" "$cpu1" --tool-cpu "$tcpu0" "$tcpu_pub" --t "$t0" "$t_pub" "$t1" \
    --rss "$rss0" "$rss_ready" "$rss_late" --runq "$wait0" "$wait_pub" "$twait0" "$twait_pub" \
    --ctxsw "$cs0" "$cs1" --round "$ROUND" --port "$port" --args "$*" >&2
  read -r LAST_OK LAST_CONTENDED < <(tail -1 "$RUNS" | "$PY" -c 'import json, sys
r = json.load(sys.stdin)
print(int(r["ok"]), int(max(r["broker_runq"] or 0, r["tool_runq"] or 0) > 0.10))')
}

# measure ARGS...: run(), and once more after a pause when the broker or the tool spent more than
# 10% of the publishing phase waiting for its core (another process on the machine took it). The
# summary uses the last run of each (scenario, broker, rate, round). At most MAX_RETRIES in all.
RETRIES=0 MAX_RETRIES=$((12 * ROUNDS))
measure() {
  run "$@"
  if [ "$LAST_CONTENDED" = 1 ] && [ "$RETRIES" -lt "$MAX_RETRIES" ]; then
    RETRIES=$((RETRIES + 1))
    echo "  (waited for the CPU: other load on the machine; again in 10s)" >&2
    sleep 10
    run "$@"
  fi
}

# ladder SCENARIO_ID "RATES" [bench scenario args...]: both brokers climb the ladder of total
# publish rates (--total-rate); each stops after its first rung that it does not sustain.
ladder() {
  local sid=$1 rates=$2; shift 2
  local kind r n
  for kind in $KINDS; do
    n=0
    for r in $rates; do
      n=$((n + 1))
      if [ "$QUICK" = 1 ] && [ "$n" -gt 1 ]; then break; fi
      if [ "$CLIMB" = 0 ] && [ "$n" -gt 2 ]; then break; fi
      measure "$sid" "$kind" "$r" throughput "$DURATION" "$@" --total-rate "$r" -d "$DURATION" \
        --drain 3
      [ "$LAST_OK" = 1 ] || break
    done
  done
}

PAIRS=$(( (CONNS - 1) / 2 ))
START=$(date +%s)
# One run of a scenario can be off by a third (fan-out) or be the one with a stall of the VM
# (a p99 of 50-100 ms at 5,000 msg/s, either broker): rounds spread the repeats over the whole
# invocation, and alternating which broker goes first cancels a drift of the machine.
for ROUND in $(seq "$ROUNDS"); do
  if [ $((ROUND % 2)) = 1 ]; then KINDS="mosquitto meshmq"; else KINDS="meshmq mosquitto"; fi
  [ "$ROUNDS" = 1 ] || echo "--- round $ROUND of $ROUNDS" >&2
  for s in ${SCENARIOS//,/ }; do
    case "$s" in
      fanin@*)
        q=${s#fanin@}
        # 16 publishers -> 1 subscriber on bench/fanin/+, 64-byte payloads. At QoS 1/2 the one
        # subscriber's inflight window (32) bounds the rate long before the CPU does: lower rungs.
        if [ "$q" = 0 ]; then rates="10000 20000 40000 80000 160000 320000"
        else rates="2500 5000 10000 20000 40000 80000"; fi
        ladder "$s" "$rates" fanin -q "$q" -s 64 ;;
      fanout)
        # 1 publisher -> 1,000 subscribers: each publish is 1,000 deliveries.
        ladder "$s" "10 20 40 80 160 320" fanout -c 1000 -q 0 -s 64 --threads 1 ;;
      pairs)
        # PAIRS publishers on dev/%i/temp, each with its own subscriber, plus dev/+/temp:
        # every publish is 2 deliveries.
        ladder "$s" "2500 5000 10000 20000 40000 80000" pairs -c "$PAIRS" -q 0 -s 64 \
          --ifaddr 127.0.0.2,127.0.0.3 --threads 1 -R 5000 --max-pending 200 ;;
      latency)
        # The machine's own round trip at the same rate, no broker: its stalls are every broker's.
        if [ -n "$ECHO_BIN" ]; then
          printf "%-32s " "control-loopback-echo-r$ROUND" >&2
          "$ECHO_BIN" --rate "$LAT_RATE" -d "$LAT_DURATION" --echo-cpu "$BROKER_CPU" \
            --send-cpu "$TOOL_CPU" | tee -a "$RESULTS/control.jsonl" >&2 || true
        fi
        for q in ${LAT_QOS//,/ }; do
          for kind in $KINDS; do
            measure "latency@$q" "$kind" "$LAT_RATE" latency "$LAT_DURATION" latency -c 10 -q "$q" \
              -s 64 --total-rate "$LAT_RATE" -d "$LAT_DURATION" --drain 3
          done
        done ;;
      idle)
        for kind in $KINDS; do
          run idle "$kind" 0 idle 3 idle -c "$CONNS" --ifaddr 127.0.0.2,127.0.0.3 --threads 1 \
            -R 5000 --max-pending 200 -d 3
        done ;;
    esac
  done
done
ELAPSED=$(( $(date +%s) - START ))
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); runs took ${ELAPSED}s ($RUN_N runs, $RETRIES repeated because of other load)" >>"$RESULTS/header.txt"

"$PY" "$HERE/summarize.py" --runs "$RUNS" --header "$RESULTS/header.txt" --out "$OUT" \
  --duration "$DURATION" --conns "$CONNS" --pairs "$PAIRS" --rounds "$ROUNDS" \
  --control "$RESULTS/control.jsonl"
echo "markdown: $OUT" >&2
echo "raw JSON and logs: $RESULTS/runs" >&2
