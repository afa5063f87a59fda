#!/usr/bin/env bash
# Installs dependencies if missing, builds, and runs one meshmq node with the embedded defaults
# (MQTT on 1883, data under ./data). Extra arguments go to meshmq, e.g. --listeners.tcp.port=1884.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release meshmq >&2
exec build/broker/meshmq "$@"
