#!/usr/bin/env bash
# make-bundle.sh DIR [ARGS...]: an OCI bundle in DIR with a busybox rootfs (Debian's
# busybox-static) and a config.json from `berth-runtime spec`, running ARGS (default: sh).
set -euo pipefail
dir=$1; shift
bin=${BERTH_RUNTIME:-$(dirname "$0")/../target/release/berth-runtime}
[ -x "$bin" ] || bin=$(dirname "$0")/../target/debug/berth-runtime
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$bin" spec --bundle "$dir"
args=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:] or ["sh"]))' "$@")
python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=2)
PY
