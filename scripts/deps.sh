#!/usr/bin/env bash
# Installs the Debian 12 packages meshmq builds and tests with, only those that are missing.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
  libboost-dev libboost-system-dev libssl-dev
  libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  mosquitto mosquitto-clients python3-paho-mqtt python3-pytest python3-yaml
  librocksdb-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  openssl prometheus chromium unzip
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
