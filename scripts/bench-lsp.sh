#!/usr/bin/env bash
# Language-server benchmark: `gadugi/treeState` latency (p50/p99) while 16 agents stream
# output, and the server's resident memory with 32 tasks. Release build. Prints a markdown
# table (see server/examples/lsp_bench.rs for the method).
#
#   bash scripts/bench-lsp.sh                     # 32 tasks, 16 at once, 6 s of output each (AGENT_SECONDS)
#   TASKS=64 PARALLEL=32 bash scripts/bench-lsp.sh
#   BENCH_SMOKE=1 bash scripts/bench-lsp.sh       # tiny, for CI: checks it runs and yields numbers
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_SMOKE:-}" ]; then export TASKS=4 PARALLEL=2 AGENT_SECONDS=1; fi
cargo build --release --locked -q -p gadugi --bin gadugi --example lsp_bench
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
GADUGI_BIN="$TARGET/release/gadugi" "$TARGET/release/examples/lsp_bench"
