#!/usr/bin/env bash
# Run a container two ways: with berth-runtime on an OCI bundle, and through berthd with
# the docker CLI (a busybox image imported from Debian's busybox-static). Cleans up after.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BERTH_RUNTIME:-target/release/berth-runtime}
berthd=${BERTHD:-target/release/berthd}
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    DOCKER_HOST=unix://$work/d/berth.sock docker rm -f demo >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ip link del "bdemo$$" 2>/dev/null || true
    nft delete table inet "berth_demo$$" 2>/dev/null || true
  fi
  rm -rf "$work" "$root"
}
trap cleanup EXIT
scripts/make-bundle.sh "$work/bundle" sh -c 'echo "hello from a berth container: $(hostname), pid $$"; id; ls /'
"$bin" --root "$root" run --bundle "$work/bundle" "berth-demo-$$"

echo "--- the same through berthd and the docker CLI"
mkdir -p "$work/d"
echo '{}' > "$work/d/daemon.json"
"$berthd" --config-file "$work/d/daemon.json" -H "unix://$work/d/berth.sock" --data-root "$work/d/data" \
  --exec-root "$work/d/exec" --cgroup-parent "/berth-demo-$$" --bridge "bdemo$$" \
  --firewall-table "berth_demo$$" >"$work/d/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$work/d/berth.sock" ] && break; sleep 0.05; done
export DOCKER_HOST=unix://$work/d/berth.sock
tar -C "$work/bundle/rootfs" -c . | docker import - busybox:latest >/dev/null
docker version --format 'server: {{.Server.Platform.Name}} {{.Server.Version}} (API {{.Server.APIVersion}})'
docker run --rm --name demo busybox sh -c 'echo "hello from berthd: $(hostname)"; grep Cap[BE] /proc/self/status; ip -4 addr show eth0 | grep inet'
for d in /sys/fs/cgroup/*/berth-demo-$$ /sys/fs/cgroup/berth-demo-$$; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
