#!/usr/bin/env bash
# Per-task preparation time with and without the cache options, on a real node_modules
# installed from the npm registry. One task per run, agent `true`; preparation is the time
# from the task's first event (`preparing`) to its agent starting, read from events.jsonl:
# worktree creation, local files, caches, setup commands.
#
# Variants:
#   bare      no node_modules at all in the worktree (the floor: what a fresh worktree costs)
#   reinstall setup = "npm ci --prefer-offline" (npm's download cache is warm: the best case
#             of installing again in every worktree)
#   copy      cache = [{ path = "node_modules", mode = "copy" }] (reflink where supported)
#   symlink   cache = [{ path = "node_modules", mode = "symlink" }]
#
#   bash scripts/bench-setup.sh               # R=5 runs per variant, a few hundred packages
#   R=9 bash scripts/bench-setup.sh
#   REINSTALL_R=1 bash scripts/bench-setup.sh # one run of the slow `reinstall` variant
#   BENCH_SMOKE=1 bash scripts/bench-setup.sh # tiny project, one run: checks it yields numbers
#
# The npm project is installed once into $BENCH_NPM_DIR (default: a folder under the
# system's temporary directory) and reused by later invocations.
#
# Prints figure lines (`key value ...`, one value per run; see scripts/bench-lib.sh); part of
# the suite, scripts/bench.sh.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
R=${R:-5}
DEPS='"express":"4.21.2","eslint":"9.17.0","jest":"29.7.0"'
NPM_DIR=${BENCH_NPM_DIR:-${TMPDIR:-/tmp}/gadugi-bench-npm}
if [ -n "${BENCH_SMOKE:-}" ]; then
  R=1
  DEPS='"ms":"2.1.3","is-odd":"3.0.1"'
  NPM_DIR=${BENCH_NPM_DIR:-${TMPDIR:-/tmp}/gadugi-bench-npm-smoke}
fi

# The npm project, installed once.
if [ ! -e "$NPM_DIR/node_modules/.bench-complete" ] || ! grep -qF "$DEPS" "$NPM_DIR/package.json"; then
  rm -rf "$NPM_DIR"
  mkdir -p "$NPM_DIR"
  printf '{"name":"bench","version":"1.0.0","private":true,"dependencies":{%s}}\n' "$DEPS" > "$NPM_DIR/package.json"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
  touch "$NPM_DIR/node_modules/.bench-complete"
fi
packages=$(find "$NPM_DIR/node_modules" -name package.json -path '*/node_modules/*/package.json' \
  -not -path '*/node_modules/*/node_modules/*/*/package.json' | wc -l)
files=$(find "$NPM_DIR/node_modules" -type f | wc -l)
size=$(du -sh "$NPM_DIR/node_modules" | cut -f1)

make_npm_repo() { # $1 = dir, $2 = [worktree] table body
  mkdir -p "$1/prompts"
  git -C "$1" init -q -b main
  cp "$NPM_DIR/package.json" "$NPM_DIR/package-lock.json" "$1/"
  printf 'node_modules/\n' > "$1/.gitignore"
  printf 'keep_worktrees = true  # the benchmark looks inside the worktree afterwards\n[worktree]\nports = 0\n%s\n' "$2" > "$1/gadugi.toml"
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com commit -qm init
  cp -a "$NPM_DIR/node_modules" "$1/node_modules"
  rm -f "$1/node_modules/.bench-complete"
}

declare -A CONFIG=(
  [bare]=''
  [reinstall]='setup = "npm ci --prefer-offline --no-audit --no-fund --loglevel=error"'
  [copy]='cache = [{ path = "node_modules", mode = "copy" }]'
  [symlink]='cache = [{ path = "node_modules", mode = "symlink" }]'
)
echo "meta.npm_project $packages packages, $files files, $size"
for variant in bare reinstall copy symlink; do
  dir="$WORK/$variant"
  make_npm_repo "$dir" "${CONFIG[$variant]}"
  times=()
  runs=$R
  # A reinstall costs about 20 s; the suite (short of time) asks for fewer of them.
  if [ "$variant" = reinstall ]; then runs=${REINSTALL_R:-$R}; fi
  for i in $(seq 1 "$runs"); do
    printf '# Task %s\n\nNothing to do.\n' "$i" > "$dir/prompts/t$i.md"
    (cd "$dir" && "$BIN" run --json --agent-command true "prompts/t$i.md" > "$WORK/out.json")
    run_id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).run_id)' "$WORK/out.json")
    wt="$WORK/$variant.gadugi-worktrees/t$i"
    # The figure only counts when the worktree really got its node_modules.
    case $variant in
      bare) [ ! -e "$wt/node_modules" ] ;;
      symlink) [ -L "$wt/node_modules" ] ;;
      *) [ -d "$wt/node_modules" ] && [ ! -L "$wt/node_modules" ] && [ -n "$(ls "$wt/node_modules")" ] ;;
    esac
    # Milliseconds from the task's `preparing` phase to its agent's start.
    read -r _ ms < <(python3 scripts/bench_tools.py events "$dir/.gadugi/runs/$run_id/events.jsonl" 0 agent_started)
    times+=("$ms")
  done
  echo "setup.cache.$variant ${times[*]}"
done
