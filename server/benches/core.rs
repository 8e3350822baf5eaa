//! In-process benchmarks (divan) of the parts of Gadugi that are pure computation: planning,
//! scheduling, protocol encoding and event-log replay. `bash scripts/bench.sh` runs them and
//! copies the figures into docs/benchmarks.md; by hand: `cargo bench -p gadugi --bench core`.

mod support;

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use divan::{black_box, Bencher};
use gadugi::core::events::{Event, EventRecord, RunStatus, TaskInit, TaskPhase, TaskStatus};
use gadugi::core::scheduler::{Scheduler, Slot};
use gadugi::core::state::RunState;
use gadugi::lsp::ext::{RunNode, TaskNode, TreeState};
use support::{plan_of, prompt, random_dag, random_plan, SplitMix};

fn main() {
    divan::main();
}

/// Parse 200 prompt files (from memory: the file reads are not what is measured) and plan
/// them: dependency resolution, cycle check, conflicts, critical path.
#[divan::bench]
fn plan_200_prompts(bencher: Bencher) {
    let deps = random_dag(&mut SplitMix(7), 200);
    let prompts: Vec<(PathBuf, String)> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| {
            prompt(
                Path::new("/bench/prompts"),
                i,
                d,
                "Edit `src/module.rs` and run the tests.\n",
            )
        })
        .collect();
    bencher.bench(|| plan_of(black_box(&prompts)));
}

/// A whole run of a 200-task random DAG through the ready queue, 4 slots, tasks finishing in
/// the order they started.
#[divan::bench]
fn schedule_200_task_dag(bencher: Bencher) {
    let plan = random_plan(7, 200);
    bencher.bench(|| {
        let mut s = Scheduler::new(black_box(&plan));
        let mut running = std::collections::VecDeque::new();
        running.extend(s.take_ready(4));
        while let Some(t) = running.pop_front() {
            s.finish(t, Slot::Succeeded);
            running.extend(s.take_ready(4 - running.len()));
        }
        assert!(s.is_done());
    });
}

/// `gadugi/treeState` result of one run of 128 tasks, encoded to JSON.
#[divan::bench]
fn encode_tree_state_128_tasks(bencher: Bencher) {
    let tasks = (0..128)
        .map(|i| TaskNode {
            id: format!("task-{i}"),
            title: format!("Task number {i} of the benchmark"),
            status: if i % 3 == 0 {
                TaskStatus::Running
            } else {
                TaskStatus::Succeeded
            },
            phase: (i % 3 == 0).then_some(TaskPhase::Agent),
            prompt_file: format!("file:///home/dev/project/prompts/task-{i}.md"),
            branch: format!("gadugi/task-{i}"),
            worktree: format!("/home/dev/project.gadugi-worktrees/task-{i}"),
            worktree_exists: true,
            depends_on: if i > 0 { vec![format!("task-{}", i - 1)] } else { vec![] },
            attempts: 1,
            exit_code: (i % 3 != 0).then_some(0),
            duration_seconds: Some(12.5 + i as f64),
            commits: 2,
            error: None,
            last_activity: Some("Editing src/module.rs: adding the parser for the new format".into()),
            cost_usd: Some(0.042),
            log_file: format!(
                "/home/dev/project/.gadugi/runs/20261121-075231-ab12/tasks/task-{i}/attempt-1/stdout.log"
            ),
            pending_approvals: Vec::new(),
            placement: None,
        })
        .collect();
    let tree = TreeState {
        version: 4711,
        runs: vec![RunNode {
            run_id: "20261121-075231-ab12".into(),
            repo: "file:///home/dev/project".into(),
            status: RunStatus::Running,
            owned: true,
            started_at: "2026-11-21T07:52:31.123Z".into(),
            finished_at: None,
            max_parallel: 16,
            driver_alive: true,
            tasks,
        }],
    };
    bencher.bench(|| serde_json::to_string(black_box(&tree)).unwrap());
}

/// An event log of exactly 10,000 events: a run of 128 tasks, each through its lifecycle, with
/// activity lines in between (what most of a real log is).
fn event_log() -> Vec<EventRecord> {
    let n = 128;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap();
    let mut ms = 0;
    let mut rec = |event: Event| {
        ms += 7;
        EventRecord {
            ts: t0 + chrono::Duration::milliseconds(ms),
            event,
        }
    };
    let id = |i: usize| format!("task-{i}");
    let mut log = vec![rec(Event::RunStarted {
        run_id: "20261121-080000-ab12".into(),
        repo_root: "/home/dev/project".into(),
        base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        base_branch: Some("main".into()),
        max_parallel: 16,
        orchestrator_pid: 4242,
        tasks: (0..n)
            .map(|i| TaskInit {
                id: id(i),
                title: format!("Task {i}"),
                prompt_file: format!("/home/dev/project/prompts/{}.md", id(i)).into(),
                branch: format!("gadugi/{}", id(i)),
                worktree: format!("/home/dev/project.gadugi-worktrees/{}", id(i)).into(),
                depends_on: vec![],
                after: vec![],
                agent: "claude".into(),
            })
            .collect(),
        critical_path: vec![id(0)],
        conflicts: vec![],
    })];
    for i in 0..n {
        let task = id(i);
        log.push(rec(Event::TaskPhase {
            task: task.clone(),
            phase: TaskPhase::Preparing,
        }));
        log.push(rec(Event::TaskPrepared {
            task: task.clone(),
            start_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        }));
        log.push(rec(Event::AgentStarted {
            task: task.clone(),
            attempt: 1,
            pid: 10_000 + i as u32,
            supervisor_pid: 20_000 + i as u32,
        }));
    }
    let finishing = 2 * n + 1; // TaskFinished per task, RunFinished
    let mut k = 0;
    while log.len() + finishing < 10_000 {
        log.push(rec(Event::TaskActivity {
            task: id(k % n),
            line: format!("Reading src/module_{k}.rs to find where the parser lives"),
        }));
        k += 1;
    }
    for i in 0..n {
        log.push(rec(Event::Heartbeat { task: id(i) }));
        log.push(rec(Event::TaskFinished {
            task: id(i),
            status: TaskStatus::Succeeded,
            exit_code: Some(0),
            signal: None,
            commits: 2,
            files_changed: vec!["src/module.rs".into(), "tests/module.rs".into()],
            error: None,
            class: None,
        }));
    }
    log.push(rec(Event::RunFinished {
        status: RunStatus::Succeeded,
    }));
    assert_eq!(log.len(), 10_000);
    log
}

/// `RunState::apply` over a 10,000-event log (what `resume` and the watcher do on start).
#[divan::bench]
fn replay_10000_events(bencher: Bencher) {
    let log = event_log();
    bencher.bench(|| RunState::replay(black_box(&log)).unwrap());
}

/// The same log read from its JSONL text first (`parse_event_log`, then replay).
#[divan::bench]
fn parse_and_replay_10000_events(bencher: Bencher) {
    let text: String = event_log()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    bencher.bench(|| RunState::replay(&gadugi::core::events::parse_event_log(black_box(&text))).unwrap());
}
