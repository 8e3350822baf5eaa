#!/usr/bin/env bash
# Installs code-server (VS Code served to a browser, extension host in Node) into
# target/code-server, where the VS Code extension's end-to-end tests
# (editors/vscode/test/e2e/codeServer.ts) look for it, and what they need to run it offline:
# Debian's chromium (driven by playwright-core), ripgrep and libkrb5-dev (code-server's
# install). code-server@4.100.3 (VS Code 1.100.3) is the last 4.x that runs on Node 20.
# Idempotent and quick when all is there. Prints the code-server path.
set -euo pipefail
cd "$(dirname "$0")/.."
version="4.100.3"
dir="target/code-server"
bin="$dir/node_modules/.bin/code-server"

# Debian packages (apt-get as root), only the missing ones.
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v setsid >/dev/null || need_apt+=(util-linux)
command -v make >/dev/null || need_apt+=(build-essential)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: ${need_apt[*]} — install them (Debian: apt-get install ${need_apt[*]}), then run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# code-server's install is done when its binary runs and its VS Code has its native modules
# (the postinstall installs lib/vscode's dependencies: without them it cannot serve).
installed() {
  [ -x "$bin" ] \
    && "$bin" --version 2>/dev/null | grep -q "^$version " \
    && [ -d "$dir/node_modules/code-server/lib/vscode/node_modules" ] \
    && [ -f "$dir/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]
}
if ! installed; then
  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 (apt-get install nodejs npm)" >&2; exit 1; }
  # @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache holds the
  # tarball: Debian's rg at the root of it does.
  rg_cache="/tmp/vscode-ripgrep-cache-1.15.11"
  rg_tar="$rg_cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$rg_tar" ]; then
    mkdir -p "$rg_cache"
    tmp=$(mktemp -d)
    cp "$(command -v rg)" "$tmp/rg"
    tar -czf "$rg_tar" -C "$tmp" rg
    rm -rf "$tmp"
  fi
  mkdir -p "$dir"
  # Its own package.json, outside the root npm workspace. allowScripts approves the two install
  # scripts of the top-level tree (npm 11 warns about unreviewed ones, and skips them in strict
  # mode): code-server's postinstall installs its VS Code's dependencies (native modules, rg).
  cat > "$dir/package.json" <<'EOF'
{
  "name": "gadugi-code-server",
  "private": true,
  "allowScripts": { "code-server": true, "argon2": true }
}
EOF
  # unsafe_perm: code-server's postinstall refuses to run as root without it;
  # yes: node-pty's postinstall runs `npx node-gyp`;
  # strict_allow_scripts=false: that postinstall runs `npm install` in code-server's own
  # folders (its VS Code's native modules: node-pty, kerberos, @parcel/watcher, @vscode/ripgrep…),
  # whose package.json files name no allowScripts; a strict-mode npm config would refuse them.
  (cd "$dir" && npm_config_unsafe_perm=true npm_config_yes=true npm_config_strict_allow_scripts=false \
    npm install --no-audit --no-fund --loglevel=error --no-package-lock --save-exact --workspaces=false \
    "code-server@$version")
  if ! installed; then
    echo "code-server's install did not finish (its postinstall did not run?): $dir" >&2
    exit 1
  fi
fi
echo "$(cd "$(dirname "$bin")" && pwd)/code-server"
