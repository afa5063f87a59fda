#!/usr/bin/env bash
# Tests deploy/ without Docker (build machines may have none):
#   - every script a Dockerfile RUN step calls exists and is executable;
#   - the runtime package list resolves in apt and provides every shared library that
#     `ldd meshmq` needs (directly or through those packages' dependencies, or Debian's
#     required base packages that debian:12-slim has);
#   - the runtime stage is Debian 12 slim, runs as a non-root user, keeps data in a VOLUME and
#     EXPOSEs every listener port;
#   - docker-compose.yml parses and its nodes agree with prometheus.yml, which promtool accepts;
#   - the image's default config (deploy/meshmq.toml) is accepted by the binary.
#   check.sh MESHMQ_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: deploy/check.sh path/to/meshmq}
fail=0
err() { echo "deploy/check: $*" >&2; fail=1; }

# Dockerfile RUN steps call repository scripts only; those must exist.
while read -r script; do
  [ -x "$script" ] || err "Dockerfile runs $script, which is missing or not executable"
done < <(grep -E '^RUN ' deploy/Dockerfile | grep -oE '(scripts|deploy)/[A-Za-z0-9_./-]+\.sh' | sort -u)
# The runtime stage: Debian 12 slim, a non-root user, the data volume.
[ "$(grep -E '^FROM ' deploy/Dockerfile | tail -1 | awk '{print $2}')" = debian:12-slim ] || err "the runtime stage is not FROM debian:12-slim"
user=$(grep -E '^USER ' deploy/Dockerfile | tail -1 | awk '{print $2}')
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || err "the image does not run as a non-root USER"
grep -qE '^VOLUME .*/var/lib/meshmq' deploy/Dockerfile || err "no VOLUME for /var/lib/meshmq"
grep -qx 'data_dir = "/var/lib/meshmq"' deploy/meshmq.toml || err "deploy/meshmq.toml does not keep data in the volume"
for port in 1883 8883 8083 8084 8080 7370; do
  grep -qE "^EXPOSE .*\b$port\b" deploy/Dockerfile || err "Dockerfile does not EXPOSE $port"
done

# Runtime packages: names resolve, and together with their dependencies they cover ldd.
deploy/install-runtime.sh deploy/runtime-packages.txt --dry-run || err "runtime-packages.txt has a name apt cannot install"
mapfile -t runtime < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' deploy/runtime-packages.txt)
closure=$( {
  printf '%s\n' "${runtime[@]}"
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${runtime[@]}" 2>/dev/null | sed -n 's/^ *\(Pre\)\?Depends: <\?\([^ >]*\)>\?.*/\2/p'
  dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' | awk '$2 == "required" || $3 == "yes" {print $1}'
} | sed 's/:.*//' | sort -u)
while read -r lib path; do
  [ -n "$path" ] || continue
  real=$(readlink -f "$path")
  pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
  pkg=${pkg%%:*}
  if [ -z "$pkg" ]; then
    err "$lib ($path) belongs to no Debian package"
  elif ! grep -qx "$pkg" <<<"$closure"; then
    err "$lib comes from $pkg, which runtime-packages.txt does not install"
  fi
done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')

# Compose file and Prometheus config.
/usr/bin/python3 - <<'PY' || fail=1
import sys, yaml
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
prom = yaml.safe_load(open("deploy/prometheus.yml"))
services = compose["services"]
nodes = sorted(n for n in services if n.startswith("meshmq"))
problems = []
if len(nodes) != 3:
    problems.append(f"compose has {len(nodes)} meshmq nodes, expected 3")
targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
           for t in sc["targets"]}
for n in nodes:
    env = services[n].get("environment", {})
    if env.get("MESHMQ_NODE__NAME") != n:
        problems.append(f"{n}: MESHMQ_NODE__NAME must be the service name")
    if f"{n}:8080" not in targets:
        problems.append(f"prometheus.yml does not scrape {n}:8080")
    if not services[n].get("volumes"):
        problems.append(f"{n}: no data volume")
if "prometheus" not in services:
    problems.append("compose has no prometheus service")
for p in problems:
    print("deploy/check:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
if command -v promtool >/dev/null; then
  promtool check config deploy/prometheus.yml >/dev/null || err "promtool rejects deploy/prometheus.yml"
else
  err "promtool not found (scripts/deps.sh installs prometheus)"
fi

# The image's default config, and that config with the environment compose gives a node, must
# be ones the binary accepts.
scripts/config-accepted.sh "$bin" deploy/meshmq.toml || err "the binary rejects deploy/meshmq.toml"
check_compose_env=true # the cluster.* keys compose sets must be accepted
if $check_compose_env; then
  mapfile -t compose_env < <(/usr/bin/python3 -c '
import yaml
for k, v in yaml.safe_load(open("deploy/docker-compose.yml"))["services"]["meshmq1"]["environment"].items():
    print(f"{k}={v}")')
  env "${compose_env[@]}" scripts/config-accepted.sh "$bin" deploy/meshmq.toml ||
    err "the binary rejects the environment docker-compose.yml gives meshmq1"
fi

if ((fail)); then echo "deploy/check: FAILED" >&2; exit 1; fi
echo "deploy/check: ok"
