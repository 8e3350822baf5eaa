#!/usr/bin/env bash
# The remote path against the local one (issue 17), on a real two-node Slurm cluster brought up
# on this machine by scripts/slurm-cluster.sh (one CPU per node: two jobs at once, so both
# executors run with -j 2). N tasks whose agent sleeps D seconds, writes a file and commits it;
# R repetitions, each one run with `--executor local` and one with `--executor slurm` back to
# back (the order swapped every repetition, so the machine's noise hits both alike). Every run
# starts from a fresh repository with a bare `origin`, and counts only when every task branch
# holds its agent's commit (for Slurm: here and on the remote).
#
# Figures (`key value ...`, see scripts/bench-lib.sh; seconds; N at the end of a key is the
# run's number of tasks; per-task keys hold one value per task of every run):
#   remote.{n,d,j}, remote.cluster_up          the workload; `slurm-cluster.sh up`'s time
#   remote.{local,slurm}.wall.N                 wall time of `gadugi run`, one value per run
#   remote.wall_overhead.N                      per pair: (Slurm wall − local wall) / N
#   remote.{local,slurm}.span.N                 per task: its first `preparing` to `task_finished`
#   remote.span_overhead.N                      per pair: median Slurm span − median local span
#   remote.{local,slurm}.{before,agent,after}.N the span cut at the agent's own start and end
#   remote.slurm.{submit,sched,launch,to_agent,to_complete,collect}.N
#                                               the remote span's parts, from the events, the
#                                               agent's clock and the cluster's logs
#   remote.slurm.{first_running,all_running,all_started}.2, remote.local.all_started.2
#                                               2 tasks (nothing queues): from the command's
#                                               start to the first / last `attempt_placed`
#                                               with a node, and to the last agent's start
# (scripts/bench_tools.py remote says exactly where each part starts and ends.)
#
#   bash scripts/bench-remote.sh              # N=8, D=1, R=3, plus R two-task pairs
#   R=5 bash scripts/bench-remote.sh
#   BENCH_SMOKE=1 bash scripts/bench-remote.sh  # N=2, D=0.2, one pair (its runs are the 2-task runs)
#
# Needs Slurm (Debian: slurmctld slurmd slurm-client munge): without it, or when the cluster
# does not come up, it fails (exit 1) with the cluster script's output. Part of the suite,
# scripts/bench.sh.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
R=${R:-3}
N=8
D=1
if [ -n "${BENCH_SMOKE:-}" ]; then R=1; N=2; D=0.2; fi
J=2
TOOLS="python3 scripts/bench_tools.py"

# --- the cluster: on three free ports (another cluster, a test's, may run next to it)
# Its own folder, not under $WORK: munged runs as the `munge` user and must traverse the path
# to its key and socket, and mktemp makes $WORK readable by its owner only.
CLUSTER=$(mktemp -d)
trap 'bash scripts/slurm-cluster.sh down "$CLUSTER" >&2 || true; rm -rf "$WORK" "$WORK".gadugi-worktrees "$CLUSTER"' EXIT
free_base() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 40000 - 3)
    try:
        for p in range(base, base + 3):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
    except OSError:
        continue
    print(base); break
else:
    raise SystemExit("no three free consecutive ports on 127.0.0.1 in 20000..40000")
PY
}
t0=$(now)
up=""
for attempt in 1 2 3; do
  if up=$(bash scripts/slurm-cluster.sh up "$CLUSTER" "$(free_base)" 2>&1); then up=ok; break; fi
  echo "bench-remote: the Slurm cluster did not come up (attempt $attempt of 3):" >&2
  echo "$up" >&2
done
if [ "$up" != ok ]; then
  echo "bench-remote: FAILED: no Slurm cluster; it needs slurmctld, slurmd, slurm-client and munge (scripts/setup.sh installs them)" >&2
  exit 1
fi
CLUSTER_UP=$(elapsed "$t0" "$(now)")
source "$CLUSTER/env"
export PATH="$PATH:/usr/sbin"

# The agent writes its own start and end times (same clock as the events) into the folder
# it is given: a remote task's events reach the run's log up to 0.5 s late (the orchestrator
# reads the job's output twice a second), the agent's marks do not.
cat > "$WORK/agent.sh" <<AGENT
#!/bin/sh
date +%s.%N > "\$1/\$GADUGI_TASK_ID.start"
sleep $D
echo "\$GADUGI_TASK_ID" > "out-\$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=bench -c user.email=bench@example.com commit -qm "\$GADUGI_TASK_ID"
date +%s.%N > "\$1/\$GADUGI_TASK_ID.end"
AGENT

FIGS="$WORK/figs"
: > "$FIGS"
# One `gadugi run` of $2 tasks with executor $1 at -j 2, in a fresh repository with a bare
# origin; appends its figures to $FIGS and leaves "<wall> <median span>" in $WORK/last.
run_once() { # $1 local|slurm, $2 N
  local dir="$WORK/run$RANDOM$RANDOM" t0 t1 i out
  make_repo "$dir" "$(printf '[executor]\nremote = "origin"')"
  git init -q --bare "$dir.origin.git"
  git -C "$dir" remote add origin "$dir.origin.git"
  make_prompts "$dir" "$2"
  mkdir "$dir.marks"
  t0=$(now)
  (cd "$dir" && "$BIN" run --json --executor "$1" -j "$J" --agent-command "sh $WORK/agent.sh $dir.marks" prompts > "$dir.json")
  t1=$(now)
  # Every branch must hold its agent's commit (for Slurm, on the remote too), or the figure
  # means nothing.
  for i in $(seq 1 "$2"); do
    git -C "$dir" cat-file -e "gadugi/t$i:out-t$i.txt"
    if [ "$1" = slurm ]; then
      [ "$(git -C "$dir.origin.git" rev-parse "gadugi/t$i")" = "$(git -C "$dir" rev-parse "gadugi/t$i")" ]
    fi
  done
  out=$($TOOLS remote "$dir"/.gadugi/runs/*/events.jsonl "$t0" "$1" "$J" "$dir.marks" "$CLUSTER")
  grep -v '^_' <<< "$out" >> "$FIGS"
  echo "$(elapsed "$t0" "$t1") $(sed -n 's/^_median_span //p' <<< "$out")" > "$WORK/last"
  echo "remote.$1.wall.$2 $(elapsed "$t0" "$t1")" >> "$FIGS"
  rm -rf "$dir" "$dir.gadugi-worktrees" "$dir.origin.git" "$dir.json" "$dir.marks"
}

# R pairs of runs of $1 tasks, local and Slurm back to back, the order swapped every time;
# per pair: the per-task overhead from the walls, (Slurm − local) / N, and from the spans,
# the Slurm run's median span − the local run's.
pairs() { # $1 N
  local k ex lw lspan sw sspan
  for k in $(seq 1 "$R"); do
    if [ $((k % 2)) = 1 ]; then order="local slurm"; else order="slurm local"; fi
    for ex in $order; do
      say "remote: $1 tasks × $D s, --executor $ex -j $J (pair $k of $R)"
      run_once "$ex" "$1"
      if [ "$ex" = local ]; then read -r lw lspan < "$WORK/last"; else read -r sw sspan < "$WORK/last"; fi
    done
    echo "remote.wall_overhead.$1 $(awk -v s="$sw" -v l="$lw" -v n="$1" 'BEGIN {printf "%.3f", (s - l) / n}')" >> "$FIGS"
    echo "remote.span_overhead.$1 $(awk -v s="$sspan" -v l="$lspan" 'BEGIN {printf "%.3f", s - l}')" >> "$FIGS"
  done
}

pairs "$N"
# With N > 2 tasks queue for the two slots: the time to all jobs running is measured on two.
if [ "$N" -gt 2 ]; then pairs 2; fi

echo "meta.remote_date $(date -u +'%Y-%m-%d %H:%M UTC')"
echo "remote.n $N"
echo "remote.d $D"
echo "remote.j $J"
echo "remote.cluster_up $CLUSTER_UP"
# One line per key, the values of every run in order.
awk '{k = $1; $1 = ""; if (!(k in v)) order[++n] = k; v[k] = v[k] $0} END {for (i = 1; i <= n; i++) print order[i] v[order[i]]}' "$FIGS"
