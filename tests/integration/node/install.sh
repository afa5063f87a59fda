#!/usr/bin/env bash
# Installs the pinned MQTT.js (package-lock.json) into tests/integration/node/node_modules with
# `npm ci`, once per lock file version: a stamp with the lock's hash skips the reinstall.
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "install.sh: npm not found (Node 18+ with npm is needed)" >&2; exit 1; }
stamp=node_modules/.meshmq-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
