#!/usr/bin/env bash
# Installs the real agent programs of the built-in profiles (pinned) into
# target/agent-clis/<name>, where server/tests/agent_clis.rs looks for them:
#   codex     Codex CLI   npm  @openai/codex       0.171.0  (native binary from @openai/codex-linux-x64)
#   gemini    Gemini CLI  npm  @google/gemini-cli  0.61.0
#   opencode  opencode    npm  opencode-ai         1.18.33  (native binary from opencode-linux-x64)
#   aider     aider       PyPI aider-chat          0.86.2   (in a venv: python3 -m venv)
# Each one lands with a bin/ folder holding just its program (put it first on PATH).
# Cached: a program already there at its pinned version is not installed again.
# Usage: scripts/install-agent-clis.sh [codex|gemini|opencode|aider ...]   (default: all)
# Exits non-zero when any requested program could not be installed (e.g. no registry).
set -uo pipefail
cd "$(dirname "$0")/.."
root="target/agent-clis"

CODEX_VERSION="0.171.0"
GEMINI_VERSION="0.61.0"
OPENCODE_VERSION="1.18.33"
AIDER_VERSION="0.86.2"

# The version line the program prints must contain the pinned version as a word.
has_version() { # bin version
  [ -x "$1" ] && "$1" --version 2>/dev/null </dev/null | grep -qw -- "$2"
}

link_bin() { # dir program target
  mkdir -p "$1/bin"
  ln -sfn "$3" "$1/bin/$2"
}

install_npm() { # name package version program
  local name=$1 package=$2 version=$3 program=$4
  local dir="$root/$name"
  local bin="$dir/bin/$program"
  if has_version "$bin" "$version"; then
    echo "$name: $("$bin" --version 2>/dev/null </dev/null | head -1) (cached in $dir)"
    return 0
  fi
  command -v npm >/dev/null || { echo "$name: npm is missing: install Node.js 20+" >&2; return 1; }
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo "{\"name\":\"gadugi-$name\",\"private\":true}" > "$dir/package.json"
  local start=$SECONDS
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$package@$version") || {
    echo "$name: npm install $package@$version failed" >&2
    return 1
  }
  link_bin "$dir" "$program" "../node_modules/.bin/$program"
  has_version "$bin" "$version" || {
    echo "$name: $bin does not report version $version" >&2
    return 1
  }
  echo "$name: $("$bin" --version 2>/dev/null </dev/null | head -1) installed in $((SECONDS - start)) s, $(du -sh "$dir" | cut -f1)"
}

install_aider() {
  local dir="$root/aider"
  local bin="$dir/bin/aider"
  if has_version "$bin" "$AIDER_VERSION"; then
    echo "aider: $("$bin" --version 2>/dev/null </dev/null | head -1) (cached in $dir)"
    return 0
  fi
  command -v python3 >/dev/null || { echo "aider: python3 is missing" >&2; return 1; }
  local start=$SECONDS
  rm -rf "$dir"
  python3 -m venv "$dir/venv" || { echo "aider: python3 -m venv failed (apt-get install python3-venv)" >&2; return 1; }
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "aider-chat==$AIDER_VERSION" || {
    echo "aider: pip install aider-chat==$AIDER_VERSION failed" >&2
    rm -rf "$dir"
    return 1
  }
  link_bin "$dir" aider "../venv/bin/aider"
  has_version "$bin" "$AIDER_VERSION" || { echo "aider: $bin does not report version $AIDER_VERSION" >&2; return 1; }
  echo "aider: $("$bin" --version 2>/dev/null </dev/null | head -1) installed in $((SECONDS - start)) s, $(du -sh "$dir" | cut -f1)"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(codex gemini opencode aider)
failed=0
for name in "${names[@]}"; do
  case "$name" in
    codex) install_npm codex @openai/codex "$CODEX_VERSION" codex || failed=1 ;;
    gemini) install_npm gemini @google/gemini-cli "$GEMINI_VERSION" gemini || failed=1 ;;
    opencode) install_npm opencode opencode-ai "$OPENCODE_VERSION" opencode || failed=1 ;;
    aider) install_aider || failed=1 ;;
    *) echo "unknown agent program: $name (codex, gemini, opencode, aider)" >&2; failed=1 ;;
  esac
done
exit $failed
