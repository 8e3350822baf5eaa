#!/usr/bin/env bash
# Issue 16 (item 5): the workloads at scale, each next to its floor. Part of the suite
# (scripts/bench.sh, which also runs 64 and 128 tasks against `xargs -P N` in its section 1);
# prints figure lines (`key value ...`, one value per run; see scripts/bench-lib.sh).
#
#   big.*    a generated repository of 11,000 files / ~77 MB in 600 folders (10,000 small
#            sources, 1,000 fixtures of 70 KB random text), K = 8 and 16 tasks at once: cold (no
#            pool), from a warm pool ([pool] max_worktrees = 16, filled by a first run), and by
#            hand (`git worktree add` K times in a row, then the agents through `xargs -P K`).
#            Wall time, and first to last agent start (`agent_started` in events.jsonl; by hand,
#            the agents record their start).
#   many.*   400 tasks × 0.5 s agents at -j 16: wall time (ideal 400 × 0.5 / 16 = 12.5 s) and the
#            orchestrator's own CPU time (/proc, bench_tools.py watch).
#   cargo.*  one task whose agent changes a small generated crate (`target/` ignored and kept
#            by the pool) and runs `cargo build --offline -q`: from a fresh worktree, then from
#            the pooled one; the agent times the build. Two crates: no dependencies (cargo.*),
#            and with serde + serde_json (cargo.deps.*; from cargo's local cache, offline).
#
#   BENCH_SMOKE=1 bash scripts/bench-scale.sh  # tiny sizes, one run: checks it yields numbers
#   BENCH_SCALE_PARTS=cargo bash scripts/bench-scale.sh  # only these parts (big, many, cargo)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
R=${R:-3}
LOG=${BENCH_LOG:-$WORK/runs.log}
TOOLS="python3 scripts/bench_tools.py"
if [ -n "${BENCH_SMOKE:-}" ]; then
  R=1
  SOURCES=270 FIXTURES=30 FOLDERS=20 KS="2 4" QD=0.1
  MANY_N=20 MANY_D=0.05 MANY_J=16
else
  SOURCES=10000 FIXTURES=1000 FOLDERS=600 KS="8 16" QD=1
  MANY_N=400 MANY_D=0.5 MANY_J=16
fi
fig() { echo "$*"; }
part() { [[ " ${BENCH_SCALE_PARTS:-big many cargo} " == *" $1 "* ]]; }

# Agent: record its start time (when STARTS names a folder), sleep, write a file, commit it.
cat > "$WORK/quick-agent.sh" <<AGENT
#!/bin/sh
if [ -n "\${STARTS:-}" ]; then date +%s.%N > "\$STARTS/\$GADUGI_TASK_ID"; fi
sleep \${AGENT_SLEEP:-$QD}
echo "\$GADUGI_TASK_ID" > "out-\$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=bench -c user.email=bench@example.com commit -qm "\$GADUGI_TASK_ID"
AGENT

# Writes prompts $3-1 .. $3-$2 into $1/$3 (the folder is named after the tag, so that every
# run of a repository has its own task names and branches).
prompts_tagged() { # $1 repo, $2 count, $3 tag
  mkdir -p "$1/$3"
  for i in $(seq 1 "$2"); do printf '# Task %s\n\nDo the thing.\n' "$i" > "$1/$3/$3-$i.md"; done
}
# The events.jsonl of the run that is not in $2 (the run folders listed before it started).
new_run_log() { # $1 repo, $2 runs before
  local r
  for r in $(ls "$1/.gadugi/runs"); do
    if ! grep -qxF "$r" <<< "$2"; then echo "$1/.gadugi/runs/$r/events.jsonl"; return; fi
  done
  echo "bench-scale: no new run in $1" >&2; return 1
}
# One `gadugi run` of K tagged tasks at -j K; checks every branch; prints "wall spread".
gadugi_run() { # $1 repo, $2 K, $3 tag, $4 agent script
  local before t0 t1 log first spread n
  prompts_tagged "$1" "$2" "$3"
  before=$(ls "$1/.gadugi/runs" 2>/dev/null || true)
  t0=$(now)
  (cd "$1" && "$BIN" run --json -j "$2" --agent-command "sh $4" "$3" > /dev/null 2>> "$LOG")
  t1=$(now)
  for i in $(seq 1 "$2"); do git -C "$1" cat-file -e "gadugi/$3-$i:out-$3-$i.txt"; done
  log=$(new_run_log "$1" "$before")
  read -r first spread n < <($TOOLS starts "$log" "$t0")
  [ "$n" = "$2" ] || { echo "bench-scale: $n agent starts in $log, expected $2" >&2; return 1; }
  echo "$(elapsed "$t0" "$t1") $spread"
}
# Pooled (free) worktrees: the slots with a `.ready` marker (run/pool.rs).
pool_entries() { ls "$1.gadugi-worktrees/.pool" 2>/dev/null | grep -c '\.ready$' || true; }

# ---------------------------------------------------------------------------------------------
# The large repository: generated once (fast-import), copied for the pool's repository.
if part big; then
FILES=$((SOURCES + FIXTURES))
echo "bench: [scale] generating a $FILES-file repository" >&2
cold="$WORK/big-cold"; warm="$WORK/big-warm"
make_repo "$cold"
$TOOLS genrepo "$SOURCES" "$FIXTURES" "$FOLDERS" | git -C "$cold" fast-import --quiet
git -C "$cold" reset -q --hard main
[ "$(git -C "$cold" ls-files | wc -l)" = $((FILES + 2)) ]  # + README.md, gadugi.toml
fig "big.files $FILES"
fig "big.folders $FOLDERS"
fig "big.mb $(du -sm --exclude=.git "$cold" | cut -f1)"
fig "big.agent_s $QD"
cp -a "$cold" "$warm"
printf '\n[pool]\nmax_worktrees = 16\n' >> "$warm/gadugi.toml"
git -C "$warm" -c user.name=bench -c user.email=bench@example.com commit -qam "pool"
KMAX=${KS##* }
echo "bench: [scale] filling the pool: $KMAX tasks" >&2
gadugi_run "$warm" "$KMAX" fill "$WORK/quick-agent.sh" > /dev/null
[ "$(pool_entries "$warm")" -ge "$KMAX" ] || { echo "bench-scale: pool holds $(pool_entries "$warm") entries after the fill run" >&2; exit 1; }

# By hand: K worktrees one after the other, then the agents at once through xargs -P K.
# Prints "wall creation spread".
by_hand() { # $1 repo, $2 K, $3 tag
  local base="$WORK/hand-$3" t0 tc t1 spread n
  mkdir -p "$base" "$WORK/starts-$3"
  t0=$(now)
  for i in $(seq 1 "$2"); do git -C "$1" worktree add -q -b "hand/$3-$i" "$base/$i" main; done
  tc=$(now)
  seq 1 "$2" | STARTS="$WORK/starts-$3" xargs -P "$2" -I{} sh -c "cd $base/{} && GADUGI_TASK_ID=$3-{} exec sh $WORK/quick-agent.sh"
  t1=$(now)
  for i in $(seq 1 "$2"); do git -C "$base/$i" cat-file -e "HEAD:out-$3-$i.txt"; done
  read -r spread n < <($TOOLS spread "$WORK/starts-$3"/*)
  [ "$n" = "$2" ]
  rm -rf "$base" "$WORK/starts-$3"; git -C "$1" worktree prune
  echo "$(elapsed "$t0" "$t1") $(elapsed "$t0" "$tc") $spread"
}

for k in $KS; do
  cw=(); cs=(); ww=(); ws=(); hw=(); hc=(); hs=()
  for r in $(seq 1 "$R"); do
    echo "bench: [scale] $FILES-file repository, $k tasks: cold, pooled, by hand (run $r of $R)" >&2
    read -r w s < <(gadugi_run "$cold" "$k" "c${k}r$r" "$WORK/quick-agent.sh"); cw+=("$w"); cs+=("$s")
    [ "$(pool_entries "$warm")" -ge "$k" ] || { echo "bench-scale: the pool is not warm" >&2; exit 1; }
    read -r w s < <(gadugi_run "$warm" "$k" "w${k}r$r" "$WORK/quick-agent.sh"); ww+=("$w"); ws+=("$s")
    read -r w c s < <(by_hand "$cold" "$k" "h${k}r$r"); hw+=("$w"); hc+=("$c"); hs+=("$s")
  done
  fig "big.cold.wall.$k ${cw[*]}"; fig "big.cold.spread.$k ${cs[*]}"
  fig "big.warm.wall.$k ${ww[*]}"; fig "big.warm.spread.$k ${ws[*]}"
  fig "big.hand.wall.$k ${hw[*]}"; fig "big.hand.create.$k ${hc[*]}"; fig "big.hand.spread.$k ${hs[*]}"
done
rm -rf "$cold" "$cold.gadugi-worktrees" "$warm" "$warm.gadugi-worktrees"
fi

# ---------------------------------------------------------------------------------------------
# Many short tasks: MANY_N × MANY_D s at -j MANY_J; the orchestrator's CPU from /proc.
if part many; then
fig "many.n $MANY_N"; fig "many.d $MANY_D"; fig "many.j $MANY_J"
mw=(); mc=()
for r in $(seq 1 "$R"); do
  echo "bench: [scale] $MANY_N tasks × $MANY_D s at -j $MANY_J (run $r of $R)" >&2
  dir="$WORK/many$r"; make_repo "$dir"; make_prompts "$dir" "$MANY_N"
  t0=$(now)
  (cd "$dir" && AGENT_SLEEP=$MANY_D exec "$BIN" run --json -j "$MANY_J" --agent-command "sh $WORK/quick-agent.sh" prompts > /dev/null 2>> "$LOG") &
  pid=$!
  read -r _ c _ _ _ < <($TOOLS watch "$pid")
  wait "$pid"
  mw+=("$(elapsed "$t0" "$(now)")"); mc+=("$c")
  for i in $(seq 1 "$MANY_N"); do git -C "$dir" cat-file -e "gadugi/t$i:out-t$i.txt"; done
  rm -rf "$dir" "$dir.gadugi-worktrees"
done
fig "many.wall ${mw[*]}"; fig "many.cpu ${mc[*]}"
fi

# ---------------------------------------------------------------------------------------------
# Incremental build: a generated crate, `target/` ignored and kept by the pool.
if part cargo; then
echo "bench: [scale] cargo build, fresh worktree and pooled one ($R runs)" >&2
crate="$WORK/crate-template"
mkdir -p "$crate/src"
printf '[package]\nname = "benchcrate"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n' > "$crate/Cargo.toml"
printf 'target/\n' > "$crate/.gitignore"
python3 - "$crate/src/lib.rs" <<'PY'
import sys
out = ["//! Generated by scripts/bench-scale.sh: a small crate for the incremental-build benchmark.\n"]
for i in range(40):
    out.append(f"""
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item{i} {{ pub id: u64, pub name: String, pub weights: Vec<f64> }}

impl Item{i} {{
    pub fn score(&self) -> f64 {{ self.weights.iter().map(|w| w * {i + 1}.0).sum::<f64>() + self.id as f64 }}
    pub fn label(&self) -> String {{ format!("{{}}-{{}}-{i}", self.name, self.id) }}
}}

pub fn build{i}(n: u64) -> Vec<Item{i}> {{
    (0..n).map(|id| Item{i} {{ id, name: format!("i{i}"), weights: vec![1.0; (id % 5) as usize] }}).collect()
}}
""")
open(sys.argv[1], "w").write("".join(out))
PY
(cd "$crate" && unset CARGO_TARGET_DIR && cargo generate-lockfile --offline -q)
fig "cargo.lines $(wc -l < "$crate/src/lib.rs")"
# The same crate with two common dependencies (their sources are in cargo's local cache after
# gadugi's own build, so this works offline), used by one derive.
deps="$WORK/crate-deps-template"
cp -a "$crate" "$deps"
printf 'serde = { version = "1", features = ["derive"] }\nserde_json = "1"\n' >> "$deps/Cargo.toml"
printf '\n#[derive(serde::Serialize)]\npub struct Report { pub items: u64 }\n\npub fn report(items: u64) -> String {\n    serde_json::to_string(&Report { items }).unwrap()\n}\n' >> "$deps/src/lib.rs"
(cd "$deps" && unset CARGO_TARGET_DIR && cargo generate-lockfile --offline -q)
fig "cargo.deps.packages $(grep -c '^name = ' "$deps/Cargo.lock")"
cat > "$WORK/cargo-agent.sh" <<AGENT
#!/bin/sh
# The worktree's own target/ (no shared target dir, no compiler cache), incremental as in dev.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
export CARGO_INCREMENTAL=1
warm=0; [ -d target ] && warm=1
echo "pub fn task_\$(echo "\$GADUGI_TASK_ID" | tr -c 'a-z0-9\n' _)() -> u64 { 42 }" >> src/lib.rs
a=\$(date +%s.%N)
cargo build --offline -q
b=\$(date +%s.%N)
echo "\$a \$b \$warm" > "$WORK/cargo-times/\$GADUGI_TASK_ID"
echo "\$GADUGI_TASK_ID" > "out-\$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=bench -c user.email=bench@example.com commit -qm "\$GADUGI_TASK_ID"
AGENT
mkdir -p "$WORK/cargo-times"
# Fresh, then pooled, R times for the crate in $1; figures $2.fresh and $2.pooled.
cargo_builds() { # $1 crate template, $2 figure prefix
  local fresh=() pooled=() r dir phase a b wasm want
  for r in $(seq 1 "$R"); do
    dir="$WORK/cargo$r"
    make_repo "$dir" "$(printf '\n[pool]\nmax_worktrees = 2\nkeep = ["target/"]')"
    cp -a "$1/." "$dir/"
    git -C "$dir" add -A
    git -C "$dir" -c user.name=bench -c user.email=bench@example.com commit -qm crate
    for phase in fresh pooled; do
      gadugi_run "$dir" 1 "$phase$r" "$WORK/cargo-agent.sh" > /dev/null
      read -r a b wasm < "$WORK/cargo-times/$phase$r-1"
      want=0; [ $phase = pooled ] && want=1
      [ "$wasm" = $want ] || { echo "bench-scale: the $phase build found target/ = $wasm" >&2; exit 1; }
      if [ $phase = fresh ]; then fresh+=("$(elapsed "$a" "$b")"); else pooled+=("$(elapsed "$a" "$b")"); fi
    done
    rm -rf "$dir" "$dir.gadugi-worktrees" "$WORK/cargo-times"/*
  done
  fig "$2.fresh ${fresh[*]}"; fig "$2.pooled ${pooled[*]}"
}
cargo_builds "$crate" cargo
echo "bench: [scale] the same with serde + serde_json ($R runs)" >&2
cargo_builds "$deps" cargo.deps
fi
