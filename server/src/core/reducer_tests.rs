//! The reducer, case by case: events in, state out. Every case starts a run of three tasks
//! (`a`; `b` depends on `a`; `c`), applies its events (written in a compact notation, one
//! event per `;`) and compares a short rendering of the state with the expected one.
//!
//! Event notation (`task` is a task id; the text after `: ` is an error or a reason):
//! `phase a setup`, `prepared a abc123`, `ready a [port]`, `agent a 2` (attempt 2: pid 1002,
//! supervisor 2002), `activity a <line>`, `heartbeat a`, `stalled a`,
//! `reported a [session=s] [model=m] [cost=0.5] [turns=3] [warn=w]`,
//! `attempt-failed a 1: error`, `leftovers a abc`, `warning a <text>`,
//! `finished a failed [exit=3] [sig=9] [commits=2] [files=x,y][: error]`, `skipped b: reason`,
//! `retried a`, `removed a`, `predicted a checked=b,main [conflicts=b]` (ids, or `main` for
//! the base branch), `circuit 3: cause`, `limited 1[: reason]`, `resumed 77`,
//! `run-finished failed`.
//!
//! The rendering: `run=<status>` and what is set on the run (`pid=`, `ended@<s>`, `limit=`,
//! `circuit=`, `conflicts=a~b`), then `<id>=<status>` per task with, in parentheses, every
//! field that differs from a fresh task. Times are seconds since the run started; the n-th
//! event of a case happens at n seconds.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::agent::report::AgentReport;
use crate::core::events::{parse_event_log, ConflictFile, Event, EventRecord, PredictedConflict, TaskInit, TaskStatus};
use crate::core::state::RunState;
use crate::testing::check_table;

/// `(events, expected state)`.
const CASES: &[(&str, &str)] = &[
    // Run start.
    ("", "run=running a=queued b=queued c=queued"),
    // Phases: the first one starts the task; later ones keep its start time.
    (
        "phase a preparing",
        "run=running a=running(phase=preparing started@1) b=queued c=queued",
    ),
    (
        "phase a preparing; phase a setup",
        "run=running a=running(phase=setup started@1) b=queued c=queued",
    ),
    (
        "phase a preparing; prepared a abc123",
        "run=running a=running(phase=preparing started@1 start=abc123) b=queued c=queued",
    ),
    (
        "phase a setup; ready a 4100",
        "run=running a=running(phase=setup started@1 port=4100) b=queued c=queued",
    ),
    ("phase a setup; ready a", "run=running a=running(phase=setup started@1) b=queued c=queued"),
    // The agent runs: attempt, pids, signs of life, what it says.
    (
        "phase a setup; agent a 1",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@2) b=queued c=queued",
    ),
    (
        "phase a setup; agent a 1; activity a editing src/lib.rs",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@3 act@3=\"editing src/lib.rs\") b=queued c=queued",
    ),
    (
        "phase a setup; agent a 1; heartbeat a",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@3) b=queued c=queued",
    ),
    (
        "phase a setup; agent a 1; stalled a",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@2 stalled) b=queued c=queued",
    ),
    (
        "phase a setup; agent a 1; stalled a; activity a back",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@4 act@4=\"back\") b=queued c=queued",
    ),
    // A heartbeat clears the stall too: the task future sends one both when output arrived
    // without a line to show and when the silent agent is merely alive (every 5 s).
    (
        "phase a setup; agent a 1; stalled a; heartbeat a",
        "run=running a=running(phase=agent started@1 attempts=1 pid=1001/2001 hb@4) b=queued c=queued",
    ),
    (
        "phase c setup; reported c session=s1 model=opus cost=0.25 turns=3 warn=denied-Bash",
        "run=running a=queued b=queued c=running(phase=setup started@1 session=s1 model=opus cost=0.25 turns=3 warn=[denied-Bash])",
    ),
    // Cost and turns add up over attempts; a report without a session keeps the last one.
    (
        "phase c setup; reported c session=s1 cost=0.25 turns=3 warn=w1; reported c model=m cost=0.5 turns=2 warn=w2",
        "run=running a=queued b=queued c=running(phase=setup started@1 session=s1 model=m cost=0.75 turns=5 warn=[w1,w2])",
    ),
    // Warnings about the task's work join the agent's, once each.
    (
        "phase c setup; reported c warn=w1; warning c detached; warning c detached",
        "run=running a=queued b=queued c=running(phase=setup started@1 warn=[w1,detached])",
    ),
    (
        "phase c setup; reported c session=s1; reported c session=s2",
        "run=running a=queued b=queued c=running(phase=setup started@1 session=s2)",
    ),
    // A failed attempt that is retried.
    (
        "phase a setup; agent a 1; attempt-failed a 1: overloaded",
        "run=running a=running(phase=retrying started@1 attempts=1 pid=1001/2001 hb@2 err=\"overloaded\") b=queued c=queued",
    ),
    (
        "phase a setup; agent a 1; attempt-failed a 1: overloaded; agent a 2",
        "run=running a=running(phase=agent started@1 attempts=2 pid=1002/2002 hb@4 err=\"overloaded\") b=queued c=queued",
    ),
    // Leftovers committed change nothing in the state (the commit count comes at the end).
    ("phase a committing; leftovers a abc", "run=running a=running(phase=committing started@1) b=queued c=queued"),
    // The end of a task.
    (
        "phase a preparing; agent a 1; finished a succeeded exit=0 commits=2 files=x.rs,y.rs",
        "run=running a=succeeded(started@1 attempts=1 pid=1001/2001 hb@2 exit=0 commits=2 files=x.rs,y.rs finished@3 dur=2) b=queued c=queued",
    ),
    (
        "phase c agent; finished c failed sig=9: killed by signal 9",
        "run=running a=queued b=queued c=failed(started@1 sig=9 err=\"killed by signal 9\" finished@2 dur=1)",
    ),
    (
        "phase c agent; finished c cancelled: cancelled",
        "run=running a=queued b=queued c=cancelled(started@1 err=\"cancelled\" finished@2 dur=1)",
    ),
    // A task that ends without having started (its future panicked first): no duration.
    (
        "finished c failed: internal error",
        "run=running a=queued b=queued c=failed(err=\"internal error\" finished@1)",
    ),
    (
        "phase a agent; finished a failed exit=3: boom; skipped b: dependency `a` failed",
        "run=running a=failed(started@1 exit=3 err=\"boom\" finished@2 dur=1) b=skipped(err=\"dependency `a` failed\" finished@3) c=queued",
    ),
    // A retry queues the task again with the tasks skipped because of it, and the run runs.
    (
        "phase a agent; finished a failed exit=3: boom; skipped b: dependency `a` failed; run-finished failed; retried a",
        "run=running a=queued(started@1 exit=3) b=queued c=queued",
    ),
    (
        "skipped a: circuit breaker; skipped b: dependency `a` was skipped; retried a",
        "run=running a=queued b=queued c=queued",
    ),
    // ... but not a task skipped for another reason, nor a task that is not final.
    (
        "skipped c: circuit breaker; phase a agent; finished a failed: boom; skipped b: dependency `a` failed; retried a",
        "run=running a=queued(started@2) b=queued c=skipped(err=\"circuit breaker\" finished@1)",
    ),
    ("phase a agent; retried a", "run=running a=running(phase=agent started@1) b=queued c=queued"),
    (
        "phase a agent; finished a cancelled: cancelled; retried a",
        "run=running a=queued(started@1) b=queued c=queued",
    ),
    (
        "phase a agent; stalled a; finished a failed: boom; retried a",
        "run=running a=queued(started@1) b=queued c=queued",
    ),
    // A succeeded task is never queued again (the caller refuses; the run status still
    // goes back to running).
    (
        "phase c agent; finished c succeeded; run-finished succeeded; retried c",
        "run=running a=queued b=queued c=succeeded(started@1 finished@2 dur=1)",
    ),
    // Worktree removed.
    (
        "phase c agent; finished c succeeded; removed c",
        "run=running a=queued b=queued c=succeeded(started@1 finished@2 dur=1 worktree=removed)",
    ),
    // Conflict predictions: added, replaced per pair, other pairs kept.
    ("predicted b checked=a,main conflicts=a", "run=running conflicts=b~a a=queued b=queued c=queued"),
    (
        "predicted b checked=a,main conflicts=a,main",
        "run=running conflicts=b~a,b~main a=queued b=queued c=queued",
    ),
    ("predicted b checked=a conflicts=a; predicted a checked=b", "run=running a=queued b=queued c=queued"),
    (
        "predicted b checked=a conflicts=a; predicted c checked=main,a conflicts=main,a; predicted a checked=b",
        "run=running conflicts=c~main,c~a a=queued b=queued c=queued",
    ),
    (
        "predicted b checked=a conflicts=a; predicted b checked=a conflicts=a",
        "run=running conflicts=b~a a=queued b=queued c=queued",
    ),
    // The run: breaker, limits, resume, end.
    (
        "circuit 3: not logged in",
        "run=running circuit=\"3 attempts in a row failed with: not logged in\" a=queued b=queued c=queued",
    ),
    ("limited 1: low memory", "run=running limit=\"low memory\" a=queued b=queued c=queued"),
    ("limited 1: low memory; limited 4", "run=running a=queued b=queued c=queued"),
    ("run-finished failed; resumed 77", "run=running pid=77 a=queued b=queued c=queued"),
    ("run-finished cancelled", "run=cancelled ended@1 a=queued b=queued c=queued"),
    // Events about a task the run does not have change nothing.
    (
        "phase z agent; agent z 1; finished z failed: boom; skipped z: x; retried z; removed z",
        "run=running a=queued b=queued c=queued",
    ),
    // A whole run.
    (
        "phase a preparing; phase c preparing; prepared a s0; prepared c s0; phase a setup; ready a 4000; \
         agent a 1; agent c 1; reported a session=sa cost=1; phase a committing; leftovers a l1; phase a verifying; \
         finished a succeeded exit=0 commits=1 files=a.txt; finished c failed exit=1: the agent exited with code 1; \
         phase b preparing; agent b 1; finished b succeeded exit=0 commits=1 files=b.txt; \
         predicted b checked=a conflicts=a; removed a; removed b; run-finished failed",
        "run=failed ended@21 conflicts=b~a \
         a=succeeded(started@1 start=s0 port=4000 attempts=1 pid=1001/2001 hb@7 exit=0 commits=1 files=a.txt finished@13 dur=12 session=sa cost=1 worktree=removed) \
         b=succeeded(started@15 attempts=1 pid=1001/2001 hb@16 exit=0 commits=1 files=b.txt finished@17 dur=2 worktree=removed) \
         c=failed(started@2 start=s0 attempts=1 pid=1001/2001 hb@8 exit=1 err=\"the agent exited with code 1\" finished@14 dur=12)",
    ),
];

#[test]
fn the_reducer_turns_events_into_state() {
    check_table(CASES, |(events, expected)| {
        (events.to_string(), expected.to_string(), render(&applied(events)))
    });
}

/// `events.jsonl` written and read back gives the state the run loop had: the same events
/// replayed from the log (a torn last line ignored), and `state.json` round-trips.
#[test]
fn replaying_the_log_gives_the_state_applied_event_by_event() {
    for (events, _) in CASES {
        let recs = records(events);
        let mut log: String = recs.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        log.push_str("{\"ts\":\"2023-11-14T22:13:20Z\",\"type\":\"task_fin");
        let replayed = RunState::replay(&parse_event_log(&log)).expect("a log that starts with run_started");
        let state = applied(events);
        assert_eq!(replayed, state, "{events}");
        let snapshot: RunState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(snapshot, state, "{events}");
    }
    assert_eq!(RunState::replay(&[]), None);
    assert_eq!(
        RunState::replay(&records("phase a setup")[1..]),
        None,
        "a log must start with run_started"
    );
}

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

fn at(s: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(s)
}

fn init(id: &str, deps: &[&str]) -> TaskInit {
    TaskInit {
        id: id.into(),
        title: format!("Task {id}"),
        prompt_file: format!("/repo/prompts/{id}.md").into(),
        branch: branch(id),
        worktree: format!("/wt/{id}").into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        after: vec![],
        agent: "claude".into(),
    }
}

/// `gadugi/<id>`, or `main` itself.
fn branch(id: &str) -> String {
    if id == "main" {
        id.into()
    } else {
        format!("gadugi/{id}")
    }
}

/// The run start, then the case's events, one second apart.
fn records(events: &str) -> Vec<EventRecord> {
    let start = Event::RunStarted {
        run_id: "r1".into(),
        repo_root: "/repo".into(),
        base_commit: "base".into(),
        base_branch: Some("main".into()),
        max_parallel: 4,
        orchestrator_pid: 1,
        tasks: vec![init("a", &[]), init("b", &["a"]), init("c", &[])],
        critical_path: vec!["a".into(), "b".into()],
        conflicts: vec![],
    };
    std::iter::once(start)
        .chain(events.split(';').map(str::trim).filter(|e| !e.is_empty()).map(event))
        .enumerate()
        .map(|(i, event)| EventRecord {
            ts: at(i as i64),
            event,
        })
        .collect()
}

fn applied(events: &str) -> RunState {
    let recs = records(events);
    let mut state = RunState::from_start(&recs[0]).unwrap();
    for r in &recs[1..] {
        state.apply(r);
    }
    state
}

/// One event in the notation of the module comment.
fn event(text: &str) -> Event {
    let (head, reason) = match text.split_once(": ") {
        Some((h, r)) => (h, Some(r.to_string())),
        None => (text, None),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    let task = words.get(1).map(|w| w.to_string()).unwrap_or_default();
    let arg = |i: usize| words[i].to_string();
    let num = |i: usize| words[i].parse::<u32>().unwrap_or_else(|_| panic!("a number in {text}"));
    let opt = |key: &str| {
        words[2.min(words.len())..]
            .iter()
            .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
    };
    let list = |key: &str| -> Vec<String> {
        opt(key)
            .map(|v| v.split(',').map(String::from).collect())
            .unwrap_or_default()
    };
    match words[0] {
        "phase" => Event::TaskPhase {
            task,
            phase: serde_json::from_value(serde_json::Value::String(arg(2))).unwrap(),
        },
        "prepared" => Event::TaskPrepared {
            task,
            start_commit: arg(2),
        },
        "ready" => Event::WorkspaceReady {
            task,
            copied: vec![],
            skipped: vec![],
            caches: vec![],
            port: words.get(2).map(|p| p.parse().unwrap()),
            port_count: 1,
            seconds: 0.5,
        },
        "agent" => Event::AgentStarted {
            task,
            attempt: num(2),
            pid: 1000 + num(2),
            supervisor_pid: 2000 + num(2),
        },
        "activity" => Event::TaskActivity {
            task,
            line: words[2..].join(" "),
        },
        "heartbeat" => Event::Heartbeat { task },
        "stalled" => Event::TaskStalled {
            task,
            silent_seconds: 600,
        },
        "reported" => Event::AgentReported {
            task,
            attempt: 1,
            report: Box::new(AgentReport {
                session_id: opt("session").map(String::from),
                model: opt("model").map(String::from),
                cost_usd: opt("cost").map(|c| c.parse().unwrap()),
                turns: opt("turns").map(|c| c.parse().unwrap()),
                warnings: list("warn"),
                ..AgentReport::default()
            }),
        },
        "attempt-failed" => Event::AttemptFailed {
            task,
            attempt: num(2),
            error: reason.unwrap_or_default(),
            retry_in_ms: 1000,
        },
        "leftovers" => Event::LeftoversCommitted { task, commit: arg(2) },
        "warning" => Event::TaskWarning {
            task,
            warning: words[2..].join(" "),
        },
        "finished" => Event::TaskFinished {
            task,
            status: serde_json::from_value(serde_json::Value::String(arg(2))).unwrap(),
            exit_code: opt("exit").map(|c| c.parse().unwrap()),
            signal: opt("sig").map(|c| c.parse().unwrap()),
            commits: opt("commits").map_or(0, |c| c.parse().unwrap()),
            files_changed: list("files"),
            error: reason,
            class: None,
        },
        "skipped" => Event::TaskSkipped {
            task,
            reason: reason.unwrap_or_default(),
        },
        "retried" => Event::TaskRetried { task },
        "removed" => Event::WorktreeRemoved { task },
        "predicted" => Event::ConflictsPredicted {
            checked: list("checked").iter().map(|id| branch(id)).collect(),
            conflicts: list("conflicts")
                .iter()
                .map(|other| PredictedConflict {
                    task: task.clone(),
                    branch: branch(&task),
                    with_task: (other != "main").then(|| other.clone()),
                    with_branch: branch(other),
                    files: vec![ConflictFile {
                        path: "shared.txt".into(),
                        kind: "content".into(),
                        hunks: 1,
                    }],
                })
                .collect(),
            task,
            error: None,
        },
        "circuit" => Event::CircuitOpened {
            cause: reason.unwrap_or_default(),
            attempts: num(1),
        },
        "limited" => Event::ParallelismLimited {
            limit: num(1) as usize,
            reason,
        },
        "resumed" => Event::RunResumed {
            orchestrator_pid: num(1),
        },
        "run-finished" => Event::RunFinished {
            status: serde_json::from_value(serde_json::Value::String(arg(1))).unwrap(),
        },
        other => panic!("unknown event `{other}` in `{text}`"),
    }
}

/// The fields that matter, as one line (see the module comment).
fn render(s: &RunState) -> String {
    let secs = |t: DateTime<Utc>| (t - t0()).num_seconds();
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut out = vec![format!("run={}", name(serde_json::to_value(s.status).unwrap()))];
    if s.orchestrator_pid != 1 {
        out.push(format!("pid={}", s.orchestrator_pid));
    }
    if let Some(t) = s.finished_at {
        out.push(format!("ended@{}", secs(t)));
    }
    if let Some(r) = &s.limit_reason {
        out.push(format!("limit={r:?}"));
    }
    if let Some(c) = &s.circuit_open {
        out.push(format!("circuit={c:?}"));
    }
    if !s.merge_conflicts.is_empty() {
        let pairs: Vec<String> = s
            .merge_conflicts
            .iter()
            .map(|c| format!("{}~{}", c.task, c.with_task.as_deref().unwrap_or(&c.with_branch)))
            .collect();
        out.push(format!("conflicts={}", pairs.join(",")));
    }
    for t in &s.tasks {
        let mut f: Vec<String> = vec![];
        let mut put = |cond: bool, text: String| {
            if cond {
                f.push(text)
            }
        };
        put(
            t.phase.is_some(),
            format!("phase={}", name(serde_json::to_value(t.phase).unwrap())),
        );
        put(
            t.started_at.is_some(),
            format!("started@{}", t.started_at.map_or(0, secs)),
        );
        put(
            t.start_commit.is_some(),
            format!("start={}", t.start_commit.clone().unwrap_or_default()),
        );
        put(t.port.is_some(), format!("port={}", t.port.unwrap_or_default()));
        put(t.attempts > 0, format!("attempts={}", t.attempts));
        put(
            t.pid.is_some() || t.supervisor_pid.is_some(),
            format!(
                "pid={}/{}",
                t.pid.unwrap_or_default(),
                t.supervisor_pid.unwrap_or_default()
            ),
        );
        put(
            t.last_heartbeat.is_some(),
            format!("hb@{}", t.last_heartbeat.map_or(0, secs)),
        );
        put(
            t.last_activity.is_some() || t.last_activity_at.is_some(),
            format!(
                "act@{}={:?}",
                t.last_activity_at.map_or(0, secs),
                t.last_activity.clone().unwrap_or_default()
            ),
        );
        put(t.stalled, "stalled".into());
        put(
            t.exit_code.is_some(),
            format!("exit={}", t.exit_code.unwrap_or_default()),
        );
        put(t.signal.is_some(), format!("sig={}", t.signal.unwrap_or_default()));
        put(t.commits > 0, format!("commits={}", t.commits));
        put(
            !t.files_changed.is_empty(),
            format!("files={}", t.files_changed.join(",")),
        );
        put(
            t.error.is_some(),
            format!("err={:?}", t.error.clone().unwrap_or_default()),
        );
        put(
            t.finished_at.is_some(),
            format!("finished@{}", t.finished_at.map_or(0, secs)),
        );
        put(
            t.duration_seconds.is_some(),
            format!("dur={}", t.duration_seconds.unwrap_or_default()),
        );
        put(
            t.session_id.is_some(),
            format!("session={}", t.session_id.clone().unwrap_or_default()),
        );
        put(
            t.model.is_some(),
            format!("model={}", t.model.clone().unwrap_or_default()),
        );
        put(t.cost_usd.is_some(), format!("cost={}", t.cost_usd.unwrap_or_default()));
        put(t.turns.is_some(), format!("turns={}", t.turns.unwrap_or_default()));
        put(!t.warnings.is_empty(), format!("warn=[{}]", t.warnings.join(",")));
        put(!t.worktree_exists, "worktree=removed".into());
        let status = t.status.as_str();
        out.push(if f.is_empty() {
            format!("{}={status}", t.id)
        } else {
            format!("{}={status}({})", t.id, f.join(" "))
        });
    }
    out.join(" ")
}

/// What the rendering leaves out is what a fresh task has; a change there would go unseen.
#[test]
fn a_fresh_task_renders_as_just_its_status() {
    let state = applied("");
    let t = state.task("b").unwrap();
    assert_eq!(t.depends_on, ["a"]);
    assert_eq!((t.branch.as_str(), t.agent.as_str()), ("gadugi/b", "claude"));
    assert_eq!(state.critical_path, ["a", "b"]);
    assert_eq!((state.max_parallel, state.started_at), (4, t0()));
    assert_eq!(state.count(TaskStatus::Queued), 3);
}
