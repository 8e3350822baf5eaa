#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit and integration tests (real git
# repositories, real processes, real clients), and a smoke run of the performance suite, after
# installing what a fresh machine lacks (scripts/setup.sh). Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental compilation, whose cache is as big as the
# build itself (2 GB here): on a CI machine with a small disk it is the difference between
# passing and ld dying of SIGBUS on a full disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk_left() { echo "   disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free; target/ $(du -sh target 2>/dev/null | cut -f1)"; }

echo "== set-up (installs what a fresh machine lacks)"
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the real Claude Code CLI for server/tests/claude_cli.rs (npm, into target/claude-cli)"
bash scripts/install-claude-cli.sh
echo "== the real agent programs for server/tests/agent_clis.rs: codex, gemini, opencode, aider (pinned, cached in target/agent-clis)"
bash scripts/install-agent-clis.sh
echo "== kmock, the Kubernetes API emulator of server/tests/kubernetes_engine.rs (PyPI, pinned, into target/kmock)"
bash scripts/install-kmock.sh
echo "== cargo test"
disk_left
cargo test --workspace --locked
disk_left
echo "== VS Code extension: npm ci, typecheck, unit tests, protocol test against the real server"
npm ci --no-audit --no-fund
npm test
echo "== VS Code extension: npm run package (server binary + bundle → VSIX under 15 MB)"
npm run package
echo "== VS Code extension in a real VS Code: code-server 4.100.3 + chromium (editors/vscode/test/e2e)"
bash scripts/install-code-server.sh
npm run test:e2e -w gadugi-vscode
echo "== performance suite, smoke run (tiny workloads: checks every benchmark runs and yields numbers)"
# CI (.ci/run sets GADUGI_FREE_DISK=1) needs the debug build no more: the benchmarks build in
# release. Dropping it halves the target folder before the release link that once hit a full disk.
if [ -n "${GADUGI_FREE_DISK:-}" ]; then rm -rf target/debug; fi
disk_left
BENCH_SMOKE=1 bash scripts/bench.sh
disk_left
echo "all tests passed"
