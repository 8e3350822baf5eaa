//! Run state: the events folded into one snapshot, its files (`state.json`, `events.jsonl`,
//! the process registry) and how a run's state is read back.
//!
//! [`RunState::apply`] is the only code that turns events into state. The run loop uses
//! it for its own bookkeeping, writes the result to `state.json` (at most every
//! [`SNAPSHOT_EVERY`], and at the run's start and end), and any
//! reader (the CLI's `status`, the language server) can rebuild the same state from
//! `events.jsonl`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::agent::approve::QuestionKind;
use crate::core::events::{
    parse_event_log, ConflictInfo, Event, EventRecord, PredictedConflict, RunStatus, TaskPhase, TaskStatus,
};
use crate::fsutil::{open_append, write_json_atomic};
use crate::layout::Layout;
use crate::spec::approvals::Decision;

/// Reading a run back lives with the state it rebuilds; `Layout` itself only knows paths.
impl Layout {
    /// Loads a run's state: `run_id`, or the latest run. The event log is the source of
    /// truth: the state is rebuilt from `events.jsonl` (the snapshot `state.json` may lag it
    /// by an event after a crash); the snapshot is read only when the log cannot be.
    pub fn load_run(&self, run_id: Option<&str>) -> Result<Option<RunState>> {
        let id = match run_id {
            Some(id) => id.to_string(),
            None => match self.run_ids().pop() {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let replayed = std::fs::read_to_string(self.events_file(&id))
            .ok()
            .and_then(|log| RunState::replay(&parse_event_log(&log)));
        match replayed {
            Some(state) => Ok(Some(state)),
            None => crate::fsutil::read_json(&self.state_file(&id)),
        }
    }
}

/// Everything known about one task.
/// Where a cluster runs a task's attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The engine (`slurm`).
    pub executor: String,
    /// The engine's id of the job.
    pub job: String,
    /// The node it runs on, once it runs.
    pub node: Option<String>,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "on {node} ({} job {})", self.executor, self.job),
            None => write!(f, "{} job {}, waiting for a node", self.executor, self.job),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: String,
    pub title: String,
    pub prompt_file: PathBuf,
    pub agent: String,
    pub status: TaskStatus,
    /// What a running task is doing.
    pub phase: Option<TaskPhase>,
    pub branch: String,
    pub worktree: PathBuf,
    pub depends_on: Vec<String>,
    pub after: Vec<String>,
    /// Commit the branch started from.
    pub start_commit: Option<String>,
    /// First port of the task's block (`GADUGI_PORT`) while it ran.
    #[serde(default)]
    pub port: Option<u16>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Pid of the agent of the latest attempt (kept after it ended).
    pub pid: Option<u32>,
    pub supervisor_pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// Commits on the branch since `start_commit`.
    pub commits: u32,
    pub files_changed: Vec<String>,
    pub error: Option<String>,
    /// Latest line the agent printed.
    pub last_activity: Option<String>,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Last sign of life: agent start, output, or a liveness check of its pid.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The agent's session id of the latest attempt that reported one (to resume it).
    #[serde(default)]
    pub session_id: Option<String>,
    /// The model the agent reported.
    #[serde(default)]
    pub model: Option<String>,
    /// Cost over every attempt, in US dollars, when the agent reports it.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Model turns over every attempt, when the agent reports them.
    #[serde(default)]
    pub turns: Option<u32>,
    /// What the user should look at even when the task succeeded (denied tool uses, work
    /// brought back from a detached HEAD, nested repositories left in the worktree).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The agent has been silent for longer than `stall_after`.
    #[serde(default)]
    pub stalled: bool,
    /// Whether its worktree still exists (removed after success unless kept).
    #[serde(default = "yes")]
    pub worktree_exists: bool,
    /// Questions of the agent waiting for the person, oldest first.
    #[serde(default)]
    pub pending_approvals: Vec<PendingApproval>,
    /// Where the latest attempt runs or ran when a cluster runs it (None: this machine).
    #[serde(default)]
    pub placement: Option<Placement>,
}

/// A question of a task's agent that waits for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: String,
    pub attempt: u32,
    pub kind: QuestionKind,
    pub tool: String,
    /// `Bash(rm -rf dist)`, or the question asked.
    pub summary: String,
    pub input: serde_json::Value,
    pub deadline: DateTime<Utc>,
    pub default: Decision,
}

impl PendingApproval {
    /// `Bash(rm -rf dist) — denied in 8m unless answered`, counted from `now`.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let left = (self.deadline - now).to_std().unwrap_or_default();
        let outcome = match self.default {
            Decision::Allow => "allowed",
            Decision::Deny => "denied",
        };
        // Round up: "in 0m" would read as "now".
        let left = std::time::Duration::from_secs(left.as_secs().div_ceil(60) * 60);
        format!(
            "{} — {outcome} in {} unless answered",
            self.summary,
            crate::agent::approve::humantime(left)
        )
    }
}

fn yes() -> bool {
    true
}

/// Everything known about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub status: RunStatus,
    pub repo_root: PathBuf,
    pub base_commit: String,
    pub base_branch: Option<String>,
    pub max_parallel: usize,
    pub orchestrator_pid: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub critical_path: Vec<String>,
    pub conflicts: Vec<ConflictInfo>,
    pub tasks: Vec<TaskState>,
    /// The current limit on agents at once, when below `max_parallel`, and why.
    #[serde(default)]
    pub limit_reason: Option<String>,
    /// Why the circuit breaker stopped the run, when it did.
    #[serde(default)]
    pub circuit_open: Option<String>,
    /// Merge conflicts predicted between succeeded branches (and the base branch), as the
    /// tasks finished.
    #[serde(default)]
    pub merge_conflicts: Vec<PredictedConflict>,
}

impl RunState {
    /// The state right after a `RunStarted` event; `None` for any other event.
    pub fn from_start(rec: &EventRecord) -> Option<RunState> {
        let Event::RunStarted {
            run_id,
            repo_root,
            base_commit,
            base_branch,
            max_parallel,
            orchestrator_pid,
            tasks,
            critical_path,
            conflicts,
        } = &rec.event
        else {
            return None;
        };
        Some(RunState {
            run_id: run_id.clone(),
            status: RunStatus::Running,
            repo_root: repo_root.clone(),
            base_commit: base_commit.clone(),
            base_branch: base_branch.clone(),
            max_parallel: *max_parallel,
            orchestrator_pid: *orchestrator_pid,
            started_at: rec.ts,
            finished_at: None,
            critical_path: critical_path.clone(),
            conflicts: conflicts.clone(),
            tasks: tasks
                .iter()
                .map(|t| TaskState {
                    id: t.id.clone(),
                    title: t.title.clone(),
                    prompt_file: t.prompt_file.clone(),
                    agent: t.agent.clone(),
                    status: TaskStatus::Queued,
                    phase: None,
                    branch: t.branch.clone(),
                    worktree: t.worktree.clone(),
                    depends_on: t.depends_on.clone(),
                    after: t.after.clone(),
                    start_commit: None,
                    port: None,
                    attempts: 0,
                    pid: None,
                    supervisor_pid: None,
                    exit_code: None,
                    signal: None,
                    started_at: None,
                    finished_at: None,
                    duration_seconds: None,
                    commits: 0,
                    files_changed: vec![],
                    error: None,
                    last_activity: None,
                    last_activity_at: None,
                    last_heartbeat: None,
                    session_id: None,
                    model: None,
                    cost_usd: None,
                    turns: None,
                    warnings: vec![],
                    stalled: false,
                    worktree_exists: true,
                    pending_approvals: vec![],
                    placement: None,
                })
                .collect(),
            limit_reason: None,
            circuit_open: None,
            merge_conflicts: vec![],
        })
    }

    /// Rebuilds a state from an event log.
    pub fn replay(records: &[EventRecord]) -> Option<RunState> {
        let (first, rest) = records.split_first()?;
        let mut state = RunState::from_start(first)?;
        for r in rest {
            state.apply(r);
        }
        Some(state)
    }

    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.tasks.iter().find(|t| t.id == id)
    }

    fn task_mut(&mut self, id: &str) -> Option<&mut TaskState> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    /// Folds one event into the state. The one place where events become state.
    pub fn apply(&mut self, rec: &EventRecord) {
        let ts = rec.ts;
        match &rec.event {
            Event::RunStarted { .. } => {}
            Event::RunFinished { status } => {
                self.status = *status;
                self.finished_at = Some(ts);
            }
            Event::TaskPhase { task, phase } => {
                if let Some(t) = self.task_mut(task) {
                    if t.status == TaskStatus::Queued {
                        t.status = TaskStatus::Running;
                        t.started_at = Some(ts);
                    }
                    t.phase = Some(*phase);
                }
            }
            Event::TaskPrepared { task, start_commit } => {
                if let Some(t) = self.task_mut(task) {
                    t.start_commit = Some(start_commit.clone());
                }
            }
            Event::WorkspaceReady { task, port, .. } => {
                if let Some(t) = self.task_mut(task) {
                    t.port = *port;
                }
            }
            Event::AttemptPlaced {
                task,
                attempt,
                executor,
                job,
                node,
            } => {
                if let Some(t) = self.task_mut(task) {
                    t.attempts = t.attempts.max(*attempt);
                    // The work happens in a clone on the node; this machine has no worktree.
                    t.worktree_exists = false;
                    t.placement = Some(Placement {
                        executor: executor.clone(),
                        job: job.clone(),
                        node: node.clone(),
                    });
                }
            }
            Event::AgentStarted {
                task,
                attempt,
                pid,
                supervisor_pid,
            } => {
                if let Some(t) = self.task_mut(task) {
                    t.attempts = *attempt;
                    t.pid = Some(*pid);
                    t.supervisor_pid = Some(*supervisor_pid);
                    t.phase = Some(TaskPhase::Agent);
                    t.last_heartbeat = Some(ts);
                }
            }
            Event::TaskActivity { task, line } => {
                if let Some(t) = self.task_mut(task) {
                    t.last_activity = Some(line.clone());
                    t.last_activity_at = Some(ts);
                    t.last_heartbeat = Some(ts);
                    t.stalled = false;
                }
            }
            Event::Heartbeat { task } => {
                if let Some(t) = self.task_mut(task) {
                    t.last_heartbeat = Some(ts);
                    t.stalled = false;
                }
            }
            Event::TaskStalled { task, .. } => {
                if let Some(t) = self.task_mut(task) {
                    // A task waiting for the person is waiting, not stalled.
                    t.stalled = t.pending_approvals.is_empty();
                }
            }
            Event::ApprovalRequested {
                task,
                attempt,
                id,
                kind,
                tool,
                summary,
                input,
                deadline,
                default,
            } => {
                if let Some(t) = self.task_mut(task) {
                    // Announced again after a restart: replaced, never listed twice.
                    t.pending_approvals.retain(|p| p.id != *id);
                    t.pending_approvals.push(PendingApproval {
                        id: id.clone(),
                        attempt: *attempt,
                        kind: *kind,
                        tool: tool.clone(),
                        summary: summary.clone(),
                        input: input.clone(),
                        deadline: *deadline,
                        default: *default,
                    });
                    if t.status == TaskStatus::Running {
                        t.phase = Some(TaskPhase::WaitingForApproval);
                    }
                    t.stalled = false;
                    t.last_heartbeat = Some(ts);
                }
            }
            Event::ApprovalAnswered { task, id, .. } | Event::ApprovalWithdrawn { task, id } => {
                if let Some(t) = self.task_mut(task) {
                    t.pending_approvals.retain(|p| p.id != *id);
                    if t.pending_approvals.is_empty() && t.phase == Some(TaskPhase::WaitingForApproval) {
                        t.phase = Some(TaskPhase::Agent);
                    }
                    t.last_heartbeat = Some(ts);
                }
            }
            Event::TaskRetried { task } => {
                let mut queue = vec![task.clone()];
                while let Some(id) = queue.pop() {
                    for t in self.tasks.iter_mut() {
                        let root = t.id == id && t.status.is_final() && t.status != TaskStatus::Succeeded;
                        let blocked = t.status == TaskStatus::Skipped && t.depends_on.contains(&id);
                        if root || blocked {
                            t.status = TaskStatus::Queued;
                            t.phase = None;
                            t.error = None;
                            t.finished_at = None;
                            t.duration_seconds = None;
                            t.stalled = false;
                            queue.push(t.id.clone());
                        }
                    }
                }
                self.status = RunStatus::Running;
                self.finished_at = None;
            }
            Event::RunResumed { orchestrator_pid } => {
                self.orchestrator_pid = *orchestrator_pid;
                self.status = RunStatus::Running;
                self.finished_at = None;
            }
            Event::ParallelismLimited { reason, .. } => self.limit_reason = reason.clone(),
            Event::CircuitOpened { cause, attempts } => {
                self.circuit_open = Some(format!("{attempts} attempts in a row failed with: {cause}"));
            }
            Event::WorktreeRemoved { task } => {
                if let Some(t) = self.task_mut(task) {
                    t.worktree_exists = false;
                }
            }
            Event::AttemptFailed { task, error, .. } => {
                if let Some(t) = self.task_mut(task) {
                    t.error = Some(error.clone());
                    t.phase = Some(TaskPhase::Retrying);
                }
            }
            Event::AgentReported { task, report, .. } => {
                if let Some(t) = self.task_mut(task) {
                    if report.session_id.is_some() {
                        t.session_id = report.session_id.clone();
                    }
                    if report.model.is_some() {
                        t.model = report.model.clone();
                    }
                    if let Some(c) = report.cost_usd {
                        t.cost_usd = Some(t.cost_usd.unwrap_or(0.0) + c);
                    }
                    if let Some(n) = report.turns {
                        t.turns = Some(t.turns.unwrap_or(0) + n);
                    }
                    t.warnings.extend(report.warnings.iter().cloned());
                }
            }
            Event::TaskWarning { task, warning } => {
                if let Some(t) = self.task_mut(task) {
                    if !t.warnings.contains(warning) {
                        t.warnings.push(warning.clone());
                    }
                }
            }
            Event::LeftoversCommitted { .. } => {}
            Event::TaskFinished {
                task,
                status,
                exit_code,
                signal,
                commits,
                files_changed,
                error,
                ..
            } => {
                if let Some(t) = self.task_mut(task) {
                    // Whatever the agent asked is moot once the task ended.
                    t.pending_approvals.clear();
                    t.status = *status;
                    t.phase = None;
                    t.exit_code = *exit_code;
                    t.signal = *signal;
                    t.commits = *commits;
                    t.files_changed = files_changed.clone();
                    t.error = error.clone();
                    t.finished_at = Some(ts);
                    t.duration_seconds = t.started_at.map(|s| seconds_between(s, ts));
                }
            }
            Event::ConflictsPredicted {
                task,
                checked,
                conflicts,
                ..
            } => {
                let branch = self.task(task).map(|t| t.branch.clone()).unwrap_or_default();
                self.merge_conflicts.retain(|c| {
                    let pair = |a: &str, b: &str| a == branch && checked.iter().any(|x| x == b);
                    !(pair(&c.branch, &c.with_branch) || pair(&c.with_branch, &c.branch))
                });
                self.merge_conflicts.extend(conflicts.iter().cloned());
            }
            Event::TaskSkipped { task, reason } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskStatus::Skipped;
                    t.error = Some(reason.clone());
                    t.finished_at = Some(ts);
                }
            }
        }
    }

    /// Tasks by status.
    pub fn count(&self, status: TaskStatus) -> usize {
        self.tasks.iter().filter(|t| t.status == status).count()
    }

    /// Wall time of the run so far (or in total once finished).
    pub fn wall_seconds(&self) -> f64 {
        seconds_between(self.started_at, self.finished_at.unwrap_or_else(Utc::now))
    }

    /// Cost of the run in US dollars: the sum over the tasks whose agent reports cost.
    pub fn cost_usd(&self) -> Option<f64> {
        let costs: Vec<f64> = self.tasks.iter().filter_map(|t| t.cost_usd).collect();
        (!costs.is_empty()).then(|| costs.iter().sum())
    }

    /// Sum of task durations: the time the same work takes one task at a time.
    pub fn task_seconds(&self) -> f64 {
        self.tasks.iter().filter_map(|t| t.duration_seconds).sum()
    }

    /// The stable `--json` summary other tools read.
    pub fn summary_json(&self) -> serde_json::Value {
        json!({
            "run_id": self.run_id,
            "status": self.status,
            "wall_seconds": round3(self.wall_seconds()),
            "cost_usd": self.cost_usd(),
            "tasks": self.tasks.iter().map(|t| json!({
                "id": t.id,
                "prompt_file": t.prompt_file,
                "status": t.status,
                "branch": t.branch,
                "worktree": t.worktree,
                "started_at": t.started_at.map(rfc3339),
                "finished_at": t.finished_at.map(rfc3339),
                "duration_seconds": t.duration_seconds.map(round3),
                "exit_code": t.exit_code,
                "attempts": t.attempts,
                "placement": t.placement,
                "commits": t.commits,
                "error": t.error,
                "cost_usd": t.cost_usd,
                "turns": t.turns,
                "session_id": t.session_id,
                "warnings": t.warnings,
            })).collect::<Vec<_>>(),
        })
    }
}

/// RFC 3339 UTC with milliseconds, as in every JSON file Gadugi writes.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds().max(0) as f64 / 1000.0
}

/// Rounds to milliseconds for output.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The snapshot files are rewritten at most this often by [`StateWriter::record`]. Each
/// rewrite serializes the whole state (O(tasks)), so rewriting after every lifecycle event
/// made a run's bookkeeping O(tasks²): 400 tasks rewrote `state.json` about 2,400 times. The
/// snapshot is a cache of the event log (readers replay `events.jsonl`, see
/// `Layout::load_run`), so a lag is safe: the run loop's one-second tick writes what is left,
/// and the run's start, resumption and end are always written at once.
pub const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Persists the event stream of one run: appends to `events.jsonl` (one line per event,
/// flushed before the state is replaced) and replaces `state.json` and the process registry
/// atomically, at most every [`SNAPSHOT_EVERY`].
pub struct StateWriter {
    layout: Layout,
    run_id: String,
    events: std::fs::File,
    /// When the snapshot files were last rewritten.
    last_snapshot: Option<std::time::Instant>,
}

impl StateWriter {
    /// Opens the files of a new or resumed run.
    /// Starts the files of a new run: `events.jsonl` comes into existence atomically with its
    /// first line (`run_started`), so a run directory with an event log always has a
    /// readable start, whenever the process is killed.
    pub fn create(layout: Layout, first: &EventRecord, state: &RunState) -> Result<StateWriter> {
        let mut line = serde_json::to_vec(first)?;
        line.push(b'\n');
        crate::fsutil::write_atomic(&layout.events_file(&state.run_id), &line)?;
        let mut writer = StateWriter::open(layout, &state.run_id)?;
        writer.snapshot(state)?;
        Ok(writer)
    }

    /// Opens the files of a run that already has its event log (resuming it).
    pub fn open(layout: Layout, run_id: &str) -> Result<StateWriter> {
        let events = open_append(&layout.events_file(run_id))?;
        Ok(StateWriter {
            layout,
            run_id: run_id.to_string(),
            events,
            last_snapshot: None,
        })
    }

    /// Records one event that has already been applied to `state`. Returns whether the
    /// snapshot files were rewritten too: frequent events only go to the log, and other
    /// events rewrite the snapshot at most every [`SNAPSHOT_EVERY`] (but for the run's start,
    /// resumption and end, always written).
    pub fn record(&mut self, rec: &EventRecord, state: &RunState) -> Result<bool> {
        let mut line = serde_json::to_vec(rec)?;
        line.push(b'\n');
        self.events.write_all(&line).context("appending to events.jsonl")?;
        if matches!(
            rec.event,
            Event::TaskActivity { .. } | Event::Heartbeat { .. } | Event::ParallelismLimited { .. }
        ) {
            // Frequent and already in the log; the snapshot catches up on the next lifecycle
            // event or the run loop's periodic save.
            return Ok(false);
        }
        let always = matches!(
            rec.event,
            Event::RunStarted { .. } | Event::RunResumed { .. } | Event::RunFinished { .. }
        );
        if !always && self.last_snapshot.is_some_and(|t| t.elapsed() < SNAPSHOT_EVERY) {
            return Ok(false);
        }
        self.snapshot(state)?;
        Ok(true)
    }

    /// Writes `state.json` and the process registry.
    pub fn snapshot(&mut self, state: &RunState) -> Result<()> {
        write_json_atomic(&self.layout.state_file(&self.run_id), state)?;
        write_registry(&self.layout.registry_file(), state)?;
        self.last_snapshot = Some(std::time::Instant::now());
        Ok(())
    }
}

/// One entry of `.gadugi/monitoring/process_registry.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessEntry {
    pub task_id: String,
    pub task_name: String,
    pub run_id: String,
    pub status: TaskStatus,
    pub pid: Option<u32>,
    pub supervisor_pid: Option<u32>,
    pub prompt_file: PathBuf,
    pub worktree_path: PathBuf,
    pub branch: String,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Last sign of life: agent start, output, or a liveness check of its pid.
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub error_message: Option<String>,
}

/// The registry file: every process of the latest run, by task id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRegistry {
    pub last_updated: DateTime<Utc>,
    pub run_id: String,
    pub orchestrator_pid: u32,
    pub processes: BTreeMap<String, ProcessEntry>,
}

fn write_registry(path: &Path, state: &RunState) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let registry = ProcessRegistry {
        last_updated: Utc::now(),
        run_id: state.run_id.clone(),
        orchestrator_pid: state.orchestrator_pid,
        processes: state
            .tasks
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    ProcessEntry {
                        task_id: t.id.clone(),
                        task_name: t.title.clone(),
                        run_id: state.run_id.clone(),
                        status: t.status,
                        pid: t.pid,
                        supervisor_pid: t.supervisor_pid,
                        prompt_file: t.prompt_file.clone(),
                        worktree_path: t.worktree.clone(),
                        branch: t.branch.clone(),
                        started_at: t.started_at,
                        completed_at: t.finished_at,
                        last_heartbeat: t.last_heartbeat,
                        exit_code: t.exit_code,
                        error_message: t.error.clone(),
                    },
                )
            })
            .collect(),
    };
    write_json_atomic(path, &registry)
}
