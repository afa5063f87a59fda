#!/usr/bin/env bash
# Runtime stage of deploy/Dockerfile: installs the packages in runtime-packages.txt and creates the
# unprivileged user and directories the broker runs with. deploy/check.sh tests the package list
# against the built binary, so the image and the tests share this one script.
#   install-runtime.sh PACKAGE_LIST [--dry-run]
set -euo pipefail
list=${1:?usage: install-runtime.sh runtime-packages.txt [--dry-run]}
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
if [ "${2:-}" = "--dry-run" ]; then
  # Resolves every name against the apt lists without installing anything.
  apt-get install --simulate --no-install-recommends "${pkgs[@]}" >/dev/null
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
rm -rf /var/lib/apt/lists/*
# Fixed uid/gid so volume ownership and Kubernetes' runAsUser/fsGroup can name them.
groupadd --system --gid 10001 meshmq
useradd --system --uid 10001 --gid meshmq --home-dir /var/lib/meshmq --shell /usr/sbin/nologin meshmq
install -d -o meshmq -g meshmq -m 0750 /var/lib/meshmq
install -d -m 0755 /etc/meshmq
