#!/usr/bin/env python3
"""Helpers of the performance suite (scripts/bench.sh).

  bench_tools.py watch PID          watch an orchestrator until it exits (below)
  bench_tools.py events LOG T0      from a run's events.jsonl and the command's start time
                                    (epoch seconds): "<s to first agent start> <ms of worktree
                                    creation per task, space-separated>"; with a 4th
                                    argument `agent_started`: ms from `preparing` to the agent
  bench_tools.py starts LOG T0      "<s from T0 to the first agent start> <s from the first to the
                                    last agent start> <agent starts>" (`agent_started` events)
  bench_tools.py remote LOG T0 EXECUTOR J MARKS [CLUSTER]
                                    one run of scripts/bench-remote.sh: figure lines of its
                                    tasks' spans and where they go (see remote() below)
  bench_tools.py spread FILE...     the same from files each holding one epoch time (agents run
                                    without Gadugi record their start so): "<last - first> <files>"
  bench_tools.py genrepo SOURCES FIXTURES FOLDERS [FIXTURE_KB]
                                    a git fast-import stream on stdout: one commit on top of
                                    refs/heads/main adding SOURCES small text files (~700 bytes)
                                    and FIXTURES files of random text (default 70 KB each), spread
                                    over FOLDERS folders
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


def starts(log, t0):
    from datetime import datetime

    ev = [json.loads(line) for line in open(log) if line.strip()]
    ts = [
        datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
        for e in ev
        if e["type"] == "agent_started"
    ]
    print(f"{min(ts) - t0:.3f} {max(ts) - min(ts):.3f} {len(ts)}")


def remote(log, t0, executor, j, marks, cluster=None):
    """Figure lines (seconds) of one run of scripts/bench-remote.sh, keys ending in `.N`.

    Per task: span = its first `task_phase preparing` to its `task_finished` (both written by
    the orchestrator for either executor; the node's own `preparing`, relayed later, is not
    the first); before / agent / after = span cut at the agent's own start and end marks
    (MARKS/<task>.start and .end: `date +%s.%N` written by the agent itself on the same
    clock, so a relayed event's 0.5 s polling lag is not in them). For Slurm also: submit =
    `preparing` to the `attempt_placed` without a node (branch, push of the base, `sbatch`);
    and from the cluster's logs in CLUSTER/log (ms timestamps): sched = slurmctld's submit to
    its allocation, launch = allocation to slurmd's "Launching batch job", to_agent = that to
    the agent's start (slurmstepd, `gadugi remote-task`: fetch, worktree, supervisor),
    to_complete = the agent's end to slurmctld's `_job_complete` (push, exit), collect =
    `_job_complete` to `task_finished` (the orchestrator reads the last record, fetches and
    promotes). With N <= J (nothing waits for a slot): all_running / first_running = T0 to
    the last / first `attempt_placed` with a node, all_started = T0 to the last agent's start.
    A line `_median_span X` (not a figure) gives the run's median span.
    """
    from datetime import datetime

    stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    ev = [json.loads(line) for line in open(log) if line.strip()]
    tasks = sorted({e["task"] for e in ev if e["type"] == "task_finished"})
    n = len(tasks)
    first = lambda kind, task, pred=lambda e: True: min(
        stamp(e["ts"]) for e in ev if e["type"] == kind and e.get("task") == task and pred(e)
    )
    mark = lambda task, end: float(open(os.path.join(marks, f"{task}.{end}")).read().split()[0])
    out = {}
    add = lambda key, v: out.setdefault(f"remote.{executor}.{key}.{n}", []).append(v)
    spans = []
    for t in tasks:
        prep = first("task_phase", t, lambda e: e["phase"] == "preparing")
        fin = first("task_finished", t)
        start, end = mark(t, "start"), mark(t, "end")
        spans.append(fin - prep)
        add("span", fin - prep)
        add("before", start - prep)
        add("agent", end - start)
        add("after", fin - end)
    if executor == "slurm":
        job_of = {e["task"]: e["job"] for e in ev if e["type"] == "attempt_placed"}
        submitted, allocated, launched, completed = {}, {}, {}, {}
        log_ts = lambda line: datetime.fromisoformat(line[1:24]).timestamp()  # local time, ms
        for line in open(os.path.join(cluster, "log", "slurmctld.log"), errors="replace"):
            m = re.search(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", line)
            if m:
                submitted[m.group(1)] = log_ts(line)
            m = re.search(r"(?:sched: Allocate|Started) JobId=(\d+)", line)
            if m:
                allocated.setdefault(m.group(1), log_ts(line))
            m = re.search(r"_job_complete: JobId=(\d+) done", line)
            if m:
                completed[m.group(1)] = log_ts(line)
        for node_log in ("slurmd-n1.log", "slurmd-n2.log"):
            for line in open(os.path.join(cluster, "log", node_log), errors="replace"):
                m = re.search(r"Launching batch job (\d+)", line)
                if m:
                    launched[m.group(1)] = log_ts(line)
        for t in tasks:
            job = job_of[t]
            add("submit", first("attempt_placed", t) - first("task_phase", t, lambda e: e["phase"] == "preparing"))
            add("sched", allocated[job] - submitted[job])
            add("launch", launched[job] - allocated[job])
            add("to_agent", mark(t, "start") - launched[job])
            add("to_complete", completed[job] - mark(t, "end"))
            add("collect", first("task_finished", t) - completed[job])
    if n <= j:
        starts = [mark(t, "start") for t in tasks]
        add("all_started", max(starts) - t0)
        if executor == "slurm":
            running = [first("attempt_placed", t, lambda e: e.get("node")) for t in tasks]
            add("all_running", max(running) - t0)
            add("first_running", min(running) - t0)
    for key, vals in out.items():
        print(key + " " + " ".join(f"{v:.3f}" for v in vals))
    print(f"_median_span {statistics.median(spans):.3f}")


def spread(paths):
    ts = [float(open(p).read().split()[0]) for p in paths]
    print(f"{max(ts) - min(ts):.3f} {len(ts)}")


def genrepo(sources, fixtures, folders, fixture_kb=70):
    """A fast-import stream (binary, written as it goes: the fixtures are tens of MB)."""
    import base64

    out = sys.stdout.buffer
    out.write(b"commit refs/heads/main\ncommitter bench <b@e> 1700000000 +0000\ndata 9\ngenerated\nfrom refs/heads/main^0\n")

    def blob(path, body):
        out.write(f"M 100644 inline {path}\ndata {len(body)}\n".encode() + body + b"\n")

    for i in range(sources):
        lines = [f"// source {i}: generated by scripts/bench_tools.py genrepo\n"]
        lines += [f"pub fn f_{i}_{j}(x: u64) -> u64 {{ x.wrapping_mul({j + 3}).rotate_left({j % 7}) }}\n" for j in range(10)]
        blob(f"d{i % folders:03}/s{i:05}.rs", "".join(lines).encode())
    size = fixture_kb * 1024
    for i in range(fixtures):
        raw = base64.encodebytes(os.urandom(size * 3 // 4 + 57))[:size]  # random text, 76-char lines
        blob(f"d{(sources + i) % folders:03}/fixture{i:04}.txt", raw)
    out.write(b"\n")
    out.flush()


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
    elif cmd == "starts":
        starts(sys.argv[2], float(sys.argv[3]))
    elif cmd == "remote":
        remote(sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), *sys.argv[6:])
    elif cmd == "spread":
        spread(sys.argv[2:])
    elif cmd == "genrepo":
        genrepo(*(int(a) for a in sys.argv[2:]))
    elif cmd == "divan":
        divan()
    elif cmd == "report":
        import bench_report

        sys.exit(bench_report.main(sys.argv[2], sys.argv[3]))
