#!/usr/bin/env bash
# Install what building and testing Berth needs on a fresh Debian 12 machine (as root),
# then build. Idempotent: packages already present are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in busybox-static libseccomp-dev pkg-config procps iproute2 nftables util-linux podman catatonit containerd skopeo umoci docker-registry openssl apache2-utils docker.io tini; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
# The Python docker SDK, for the client tests (PyPI).
python3 -c 'import docker' 2>/dev/null || python3 -m pip install -q docker
scripts/build-release.sh
