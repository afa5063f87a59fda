#!/usr/bin/env bash
# Checks that a meshmq binary accepts a config file (and the MESHMQ_* environment it is given):
# starts it with every port key moved to a free loopback port and every bind key on 127.0.0.1,
# data in a temporary directory, and passes when it is still running after a short while.
# A config the key table rejects exits at once with code 2 and the reason on stderr.
# With METRICS_OUT set, also saves the node's /metrics page (http.port) there.
#   [METRICS_OUT=FILE] config-accepted.sh MESHMQ_BINARY CONFIG.toml [extra flags...]
set -euo pipefail
bin=${1:?usage: config-accepted.sh meshmq config.toml [flags...]}
cfg=${2:?usage: config-accepted.sh meshmq config.toml [flags...]}
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
help=$(MESHMQ_CONFIG= "$bin" --help)
flags=(--config="$cfg" --node.data_dir="$tmp/data" --log.level=warn)
mapfile -t ports < <(grep -oE -- '--[a-z0-9_.]+ PORT' <<<"$help" | cut -d' ' -f1)
mapfile -t binds < <(grep -oE -- '--[a-z0-9_.]+\.bind [A-Z]+' <<<"$help" | cut -d' ' -f1)
# A free port from the kernel (released just before the broker binds it) for every port key,
# except those the config file turns off with 0: they stay off.
mapfile -t free < <(/usr/bin/python3 - "$cfg" "${ports[@]}" <<'PY'
import socket, sys, tomllib
with open(sys.argv[1], "rb") as f:
    config = tomllib.load(f)
def value(key):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
socks = []
for flag in sys.argv[2:]:
    if value(flag[2:]) == 0:
        print("0")
        continue
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    print(s.getsockname()[1])
PY
)
for i in "${!ports[@]}"; do flags+=("${ports[$i]}=${free[$i]}"); done
for b in "${binds[@]}"; do flags+=("$b=127.0.0.1"); done
"$bin" "${flags[@]}" "$@" >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 20); do
  sleep 0.1
  kill -0 "$pid" 2>/dev/null || break
done
if kill -0 "$pid" 2>/dev/null; then
  rc=0
  if [ -n "${METRICS_OUT:-}" ]; then
    http=$(printf '%s\n' "${flags[@]}" | sed -n 's/^--http\.port=//p')
    /usr/bin/python3 - "${http:?the binary has no http.port key}" "$METRICS_OUT" <<'PY' || rc=1
import sys, time, urllib.request
deadline = time.monotonic() + 10
while True:
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2).read()
        break
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"config-accepted: no /metrics on port {sys.argv[1]}: {e}")
        time.sleep(0.1)
open(sys.argv[2], "wb").write(page)
PY
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  exit $rc
fi
rc=0
wait "$pid" || rc=$?
echo "config-accepted: $bin exited with $rc on $cfg:" >&2
cat "$tmp/out" >&2
exit 1
