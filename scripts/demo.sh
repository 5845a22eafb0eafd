#!/usr/bin/env bash
# Make a busybox bundle from Debian's busybox-static and run a container in it with berth-runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BERTH_RUNTIME:-target/release/berth-runtime}
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
trap 'rm -rf "$work" "$root"' EXIT
scripts/make-bundle.sh "$work" sh -c 'echo "hello from a berth container: $(hostname), pid $$"; id; ls /'
"$bin" --root "$root" run --bundle "$work" "berth-demo-$$"
