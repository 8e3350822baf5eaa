#!/usr/bin/env bash
# Parallel overhead and speedup: N independent tasks whose scripted agent sleeps D seconds and
# commits one file, run with --max-parallel N and with --max-parallel 1 (one at a time), in the
# same session. Prints a markdown table of medians (and min–max spread) over R repetitions.
#
#   bash scripts/bench-parallel.sh            # N=8, D=2, R=3
#   N=4 D=1 R=5 bash scripts/bench-parallel.sh
#   BENCH_SMOKE=1 bash scripts/bench-parallel.sh   # tiny, for CI: checks it runs and yields numbers
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-8}; D=${D:-2}; R=${R:-3}
if [ -n "${BENCH_SMOKE:-}" ]; then N=2; D=0.2; R=1; fi

cargo build --release --locked -q -p gadugi
BIN="$PWD/target/release/gadugi"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/agent.sh" <<AGENT
#!/bin/sh
sleep $D
echo "\$GADUGI_TASK_ID" > "out-\$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=bench -c user.email=bench@example.com commit -qm "\$GADUGI_TASK_ID"
AGENT

make_repo() { # $1 = dir
  mkdir -p "$1/prompts"
  git -C "$1" init -q -b main
  echo hello > "$1/README.md"
  # Measure scheduling and process overhead, not the load guard: a busy 2-core machine (a
  # build next door) would otherwise make Gadugi fall back to one agent at a time.
  echo "max_load = 1000.0" > "$1/gadugi.toml"
  for i in $(seq 1 "$N"); do printf '# Task %s\n\nSleep and commit.\n' "$i" > "$1/prompts/t$i.md"; done
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com commit -qm init
}

run_once() { # $1 = max parallel; prints wall seconds measured outside the process
  local dir="$WORK/r$RANDOM$RANDOM"
  make_repo "$dir"
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$dir" && "$BIN" run --json -j "$1" --agent-command "sh $WORK/agent.sh" prompts > "$dir.json")
  t1=$(date +%s.%N)
  # Every branch must hold its commit, or the figure means nothing.
  for i in $(seq 1 "$N"); do git -C "$dir" cat-file -e "gadugi/t$i:out-t$i.txt"; done
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}

stats() { # reads numbers, prints "median min max"
  sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f %.3f\n", m, a[1], a[NR]}'
}

par=(); seq1=()
for _ in $(seq 1 "$R"); do
  par+=("$(run_once "$N")")
  seq1+=("$(run_once 1)")
done
read -r pm pmin pmax < <(printf '%s\n' "${par[@]}" | stats)
read -r sm smin smax < <(printf '%s\n' "${seq1[@]}" | stats)
calc() { awk "BEGIN {printf \"%.3f\", $1}"; }
overhead=$(calc "$pm - $D")
speedup=$(calc "$sm / $pm")
percent=$(calc "100 * $overhead / $D")
cat <<TABLE
| Tasks | Agent time | Mode | Wall time, median (min–max) of $R |
|---|---|---|---|
| $N | ${D} s | --max-parallel $N | $(printf '%.2f' "$pm") s ($(printf '%.2f' "$pmin")–$(printf '%.2f' "$pmax")) |
| $N | ${D} s | --max-parallel 1 | $(printf '%.2f' "$sm") s ($(printf '%.2f' "$smin")–$(printf '%.2f' "$smax")) |

Machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end of the run.
Overhead at --max-parallel $N: $(printf '%.3f' "$overhead") s (${percent}% of the agent time); speedup against one at a time: $(printf '%.2f' "$speedup")×.
TABLE
