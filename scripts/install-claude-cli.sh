#!/usr/bin/env bash
# Installs the real Claude Code CLI (pinned) into target/claude-cli, where the tests in
# server/tests/claude_cli.rs look for it. Idempotent: does nothing when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
version="2.1.329"
dir="target/claude-cli"
bin="$dir/node_modules/.bin/claude"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$version "; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is missing: install Node.js 20+ (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"gadugi-claude-cli","private":true}' > "$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$version")
"$bin" --version
