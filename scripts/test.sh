#!/usr/bin/env bash
# Every test of Berth: formatting, lints, unit and integration tests (real containers,
# as root), and the cgroup v2 tests in a qemu guest (the runtime's, then berthd's).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
phase() { echo "== $1 ($(( $(date +%s) - t0 ))s elapsed)"; }
phase "cargo fmt --check"
cargo fmt --all --check
phase "cargo clippy"
cargo clippy --all-targets -- -D warnings
phase "cargo test"
cargo test --workspace -- --test-threads="${BERTH_TEST_THREADS:-4}"
if [ -x tests/cgroupv2-vm/run.sh ] && [ "${BERTH_SKIP_VM:-0}" != 1 ]; then
  phase "cgroup v2 tests in a qemu guest (berth-runtime, then berthd + docker CLI)"
  cargo build -p berth-runtime -p berthd
  BERTHD=target/debug/berthd tests/cgroupv2-vm/run.sh target/debug/berth-runtime
fi
phase "done"
