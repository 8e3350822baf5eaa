# Sourced by the benchmark scripts (scripts/bench*.sh): release build, a scratch folder removed
# on exit, and the figure format. A figure is one line `key value value ...` on stdout, one
# value per run (or per sample); scripts/bench_report.py turns them into docs/benchmarks.md.
# Progress and notes go to stderr.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${BENCH_BUILT:-}" ]; then
  cargo build --release --locked -q -p gadugi --bin gadugi
fi
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/gadugi"
EXAMPLES="${CARGO_TARGET_DIR:-$PWD/target}/release/examples"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$WORK".gadugi-worktrees' EXIT

# A repository with a README and gadugi.toml ($2: extra gadugi.toml lines) and one commit. The
# load guard is set out of the way: on a 2-core machine with a build next door it would make
# Gadugi fall back to one agent at a time, and that is not what these benchmarks measure.
make_repo() { # $1 dir, $2 extra gadugi.toml lines
  mkdir -p "$1/prompts"
  git -C "$1" init -q -b main
  echo hello > "$1/README.md"
  printf 'max_load = 1000.0\nmin_available_memory_mb = 0\n%s\n' "${2:-}" > "$1/gadugi.toml"
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com commit -qm init
}

# Writes $2 prompt files t1..t$2 into $1/prompts (independent tasks).
make_prompts() {
  for i in $(seq 1 "$2"); do printf '# Task %s\n\nDo the thing.\n' "$i" > "$1/prompts/t$i.md"; done
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
BENCH_T0=${BENCH_T0:-$(date +%s)}
say() { echo "bench: [$(($(date +%s) - BENCH_T0)) s] $*" >&2; }
