#!/usr/bin/env bash
# Recovery and kill latency, measured on real processes (release build), R repetitions:
# - recovery: 4 agents running, the orchestrator killed with SIGKILL, then `gadugi resume`:
#   time from starting `gadugi resume` until every running agent is re-attached (its
#   agent_started event after run_resumed), and until the run ends;
# - kill latency: an agent whose timeout passes; time from the deadline to the agent's
#   process group being gone, for an agent that obeys SIGTERM and for one that ignores it and
#   leaves a child holding its output open (that one also waits out kill_grace = 1 s).
#
#   bash scripts/bench-recovery.sh          # R=5
#   BENCH_SMOKE=1 bash scripts/bench-recovery.sh
#
# Prints figure lines (`key value ...`, one value per run; see scripts/bench-lib.sh); part of
# the suite, scripts/bench.sh.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
R=${R:-5}
[ -n "${BENCH_SMOKE:-}" ] && R=1

cat > "$WORK/agent.sh" <<'AGENT'
#!/bin/sh
mode=$(sed -n 's/^MODE: //p' "$GADUGI_PROMPT_FILE")
case "$mode" in
  sleep) echo started; sleep 4 ;;
  obey) echo started; sleep 60 ;;
  ignore) trap '' TERM; sh -c 'trap "" TERM; sleep 60' & echo started; sleep 60 ;;
esac
echo "$GADUGI_TASK_ID" > "out-$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=a -c user.email=a@e commit -qm "$GADUGI_TASK_ID"
AGENT

ms() { python3 -c 'import sys; from datetime import datetime as d; a=d.fromisoformat(sys.argv[1].replace("Z","+00:00")); b=d.fromisoformat(sys.argv[2].replace("Z","+00:00")); print(round((b-a).total_seconds()*1000))' "$1" "$2"; }

reattach=(); total=()
for i in $(seq 1 "$R"); do
  d="$WORK/rec$i"; make_repo "$d" 'kill_grace = "1s"'
  for t in 1 2 3 4; do printf '# T%s\n\nMODE: sleep\n' "$t" > "$d/prompts/t$t.md"; done
  (cd "$d" && exec "$BIN" run --json -j 4 --agent-command "sh $WORK/agent.sh" prompts) >/dev/null 2>&1 &
  orchestrator=$!
  # Wait until the four agents run, then kill the orchestrator.
  for _ in $(seq 1 200); do n=$(grep -c agent_started "$d"/.gadugi/runs/*/events.jsonl 2>/dev/null || true); [ "${n:-0}" -ge 4 ] && break; sleep 0.05; done
  kill -9 "$orchestrator"; wait "$orchestrator" 2>/dev/null || true
  t0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ | sed 's/\(\.[0-9]\{6\}\)[0-9]*Z/\1Z/')
  (cd "$d" && "$BIN" resume --json >/dev/null 2>&1)
  log=$(ls "$d"/.gadugi/runs/*/events.jsonl)
  last=$(python3 - "$log" <<'PY'
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
i=max(k for k,e in enumerate(ev) if e["type"]=="run_resumed")
starts=[e["ts"] for e in ev[i:] if e["type"]=="agent_started"]
print(starts[3] if len(starts)>=4 else ev[-1]["ts"], ev[-1]["ts"])
PY
)
  reattach+=("$(ms "$t0" "${last% *}")"); total+=("$(ms "$t0" "${last#* }")")
done

kill_obey=(); kill_ignore=()
for mode in obey ignore; do
  for i in $(seq 1 "$R"); do
    d="$WORK/kill-$mode-$i"; make_repo "$d" 'kill_grace = "1s"'
    printf -- '---\ntimeout: 1\n---\n# K\n\nMODE: %s\n' "$mode" > "$d/prompts/k.md"
    (cd "$d" && "$BIN" run --json --agent-command "sh $WORK/agent.sh" prompts >/dev/null 2>&1 || true)
    a=$(ls -d "$d"/.gadugi/runs/*/tasks/k/attempt-1)
    v=$(python3 - "$a" <<'PY'
import json,sys
from datetime import datetime as d, timedelta
a=sys.argv[1]
st=json.load(open(a+"/status.json")); ex=json.load(open(a+"/exit.json"))
p=lambda s: d.fromisoformat(s.replace("Z","+00:00"))
deadline=p(st["started_at"])+timedelta(seconds=1)
print(round((p(ex["finished_at"])-deadline).total_seconds()*1000))
PY
)
    if [ "$mode" = obey ]; then kill_obey+=("$v"); else kill_ignore+=("$v"); fi
  done
done

echo "recovery.reattach_ms ${reattach[*]}"
echo "recovery.end_ms ${total[*]}"
echo "kill.obey_ms ${kill_obey[*]}"
echo "kill.ignore_ms ${kill_ignore[*]}"
