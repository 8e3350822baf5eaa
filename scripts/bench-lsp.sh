#!/usr/bin/env bash
# Language-server benchmark: `gadugi/treeState` latency (p50/p99) while 16 agents stream
# output, and the server's resident memory with 32 tasks. Release build. Prints figure lines
# (`key value`, see scripts/bench-lib.sh; server/examples/lsp_bench.rs for the method). Part
# of the suite, scripts/bench.sh, which runs it R times and reports the median and spread.
#
#   bash scripts/bench-lsp.sh                     # 32 tasks, 16 at once, 6 s of output each (AGENT_SECONDS)
#   TASKS=64 PARALLEL=32 bash scripts/bench-lsp.sh
#   BENCH_SMOKE=1 bash scripts/bench-lsp.sh       # tiny: checks it runs and yields numbers
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
if [ -n "${BENCH_SMOKE:-}" ]; then export TASKS=4 PARALLEL=2 AGENT_SECONDS=1; fi
[ -n "${BENCH_BUILT:-}" ] || cargo build --release --locked -q -p gadugi --example lsp_bench
GADUGI_BIN="$BIN" "$EXAMPLES/lsp_bench"
