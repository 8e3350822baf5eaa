#!/usr/bin/env python3
"""Helpers of the performance suite (scripts/bench.sh).

  bench_tools.py watch PID          watch an orchestrator until it exits (below)
  bench_tools.py events LOG T0      from a run's events.jsonl and the command's start time
                                    (epoch seconds): "<s to first agent start> <ms of worktree
                                    creation per task, space-separated>"; with a 4th
                                    argument `agent_started`: ms from `preparing` to the agent
  bench_tools.py divan              divan's table on stdin -> figure lines
  bench_tools.py report FIGURES OUT write the markdown report from the figure lines; exits 1
                                    if an expected figure is missing or not a number

Figure lines: `key value value ...`, one value per run (or per graph, per request); the report
takes the median and the spread (min-max).

watch: every 20 ms reads /proc: the orchestrator's peak resident memory (VmHWM) and its own CPU time
(utime + stime of its threads, not of its children), and the same for each `gadugi __supervise`
child (one per agent attempt; single-threaded, so its schedstat gives ns precision). Agents are not counted. Prints one line:

    <orchestrator VmHWM kB> <orchestrator CPU s> <supervisors seen> <median supervisor VmHWM kB> <supervisors' CPU s>

The last reading before the process exits is used, so up to 20 ms of CPU at the very end of a
process may be missed.
"""
import json
import os
import re
import statistics
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def sched_seconds(pid):
    """CPU time of a single-threaded process in ns precision (/proc/PID/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def is_supervisor(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"__supervise" in f.read()
    except OSError:
        return False


def watch(pid):
    hwm, cpu = 0, 0.0
    sup_hwm, sup_cpu = {}, {}
    while os.path.exists(f"/proc/{pid}/stat"):
        h, c = status_kb(pid, "VmHWM:"), cpu_seconds(pid)
        if h is None or c is None:  # exited, or a zombie (no memory left to read)
            break
        hwm, cpu = max(hwm, h), c
        for child in children(pid):
            if child in sup_hwm or is_supervisor(child):
                h, c = status_kb(child, "VmHWM:"), sched_seconds(child)
                if h is not None and c is not None:
                    sup_hwm[child] = max(sup_hwm.get(child, 0), h)
                    sup_cpu[child] = c
        time.sleep(0.02)
    median_sup = statistics.median(sup_hwm.values()) if sup_hwm else 0
    print(f"{hwm} {cpu:.3f} {len(sup_hwm)} {median_sup:.0f} {sum(sup_cpu.values()):.3f}")


def events(log, t0, until="task_prepared"):
    from datetime import datetime

    ev = [json.loads(line) for line in open(log) if line.strip()]
    ts = lambda e: datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
    first = min(ts(e) for e in ev if e["type"] == "agent_started")
    preparing = {e["task"]: ts(e) for e in ev if e["type"] == "task_phase" and e["phase"] == "preparing"}
    prep = [1000 * (ts(e) - preparing[e["task"]]) for e in ev if e["type"] == until]
    print(f"{first - t0:.3f} " + " ".join(f"{p:.1f}" for p in prep))


def divan():
    """`├─ name  fastest │ slowest │ median │ mean │ samples │ iters` rows -> figure lines (µs)."""
    units = {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3, "s": 1e6}
    for line in sys.stdin:
        m = re.match(r"^[├╰]─ (\S+)\s+(.*)$", line.strip())
        if not m:
            continue
        cols = [c.strip() for c in m.group(2).split("│")]
        vals = []
        for c in cols[:4]:
            num, unit = c.split()
            vals.append(float(num) * units[unit])
        fastest, slowest, median, mean = vals
        print(f"divan.{m.group(1)} {median:.3f} {fastest:.3f} {slowest:.3f} {int(cols[4])}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "watch":
        watch(int(sys.argv[2]))
    elif cmd == "events":
        events(sys.argv[2], float(sys.argv[3]), *sys.argv[4:])
    elif cmd == "divan":
        divan()
    elif cmd == "report":
        import bench_report

        sys.exit(bench_report.main(sys.argv[2], sys.argv[3]))
