#!/usr/bin/env bash
# The release binaries: berth-runtime, berthd, berth-monitor and the berth CLI, with
# libseccomp linked statically (like runc's releases: nothing to install beside them).
# berth-monitor is then relinked as a static, position-dependent executable: one runs per
# container, and the loader's and every shared library's relocated pages would be
# private memory in each (~70 KiB). Extra arguments go to `cargo build`.
# Note: a plain `cargo build --release` afterwards relinks a dynamic monitor (it works,
# it only costs more per container).
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(gcc -print-file-name=libseccomp.a)
if [ ! -f "$lib" ]; then
  echo "build-release: libseccomp.a not found (install libseccomp-dev)" >&2
  exit 1
fi
export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH
LIBSECCOMP_LIB_PATH=$(dirname "$lib")
cargo build --release -p berth-runtime -p berthd -p berth-cli "$@"
cargo rustc --release -p berthd --bin berth-monitor "$@" -- -C target-feature=+crt-static -C relocation-model=static
