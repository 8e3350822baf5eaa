//! The event stream: everything the core does is an [`Event`]. The event log, the run state
//! file, the process registry, the terminal progress and the editor are all views of it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::approve::{AnsweredBy, QuestionKind};
use crate::agent::report::{AgentReport, FailureClass};
use crate::spec::approvals::Decision;
use crate::spec::plan::Conflict;

/// Lifecycle status of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl TaskStatus {
    /// Whether the task will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskStatus::Queued | TaskStatus::Running)
    }

    /// Lower-case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// Status of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every task succeeded.
    Succeeded,
    /// At least one task failed or was skipped.
    Failed,
    /// The run was cancelled before every task finished.
    Cancelled,
}

/// What a running task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPhase {
    /// Creating its worktree and branch, merging its dependencies' branches.
    Preparing,
    /// Making the new worktree ready: local files, caches, port block, setup commands.
    Setup,
    /// The agent runs.
    Agent,
    /// Committing what the agent left uncommitted.
    Committing,
    /// Running the `verify` command.
    Verifying,
    /// Waiting before the next attempt.
    Retrying,
    /// The agent asked the person (a permission request or a question) and waits for the
    /// answer: waiting, not stuck.
    WaitingForApproval,
}

/// A task as announced at run start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInit {
    pub id: String,
    pub title: String,
    pub prompt_file: PathBuf,
    pub branch: String,
    pub worktree: PathBuf,
    pub depends_on: Vec<String>,
    pub after: Vec<String>,
    pub agent: String,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        repo_root: PathBuf,
        base_commit: String,
        base_branch: Option<String>,
        max_parallel: usize,
        orchestrator_pid: u32,
        tasks: Vec<TaskInit>,
        critical_path: Vec<String>,
        conflicts: Vec<ConflictInfo>,
    },
    TaskPhase {
        task: String,
        phase: TaskPhase,
    },
    /// Worktree and branch exist; `start_commit` is where the branch began.
    TaskPrepared {
        task: String,
        start_commit: String,
    },
    /// The worktree got its local files, cache folders, port block and setup commands, and
    /// the agent can start.
    WorkspaceReady {
        task: String,
        /// Local files copied into the worktree (relative paths; a long list is cut short).
        copied: Vec<String>,
        /// Matched files not copied, each with the reason.
        skipped: Vec<String>,
        /// What happened to each cache folder.
        caches: Vec<String>,
        /// First port of the task's block (`GADUGI_PORT`), when ports are on.
        port: Option<u16>,
        /// Ports in the block (`GADUGI_PORT_COUNT`).
        port_count: u16,
        /// How long the whole preparation took.
        seconds: f64,
    },
    AgentStarted {
        task: String,
        attempt: u32,
        pid: u32,
        supervisor_pid: u32,
    },
    /// The latest line of agent output (throttled), for "what is it doing now".
    TaskActivity {
        task: String,
        line: String,
    },
    /// The agent process is alive (same pid and start time) though it printed nothing new.
    Heartbeat {
        task: String,
    },
    /// The agent printed nothing for `silent_seconds` (reported, never killed for it).
    TaskStalled {
        task: String,
        silent_seconds: u64,
    },
    /// A finished task (failed, cancelled or skipped) is queued again, with every task that
    /// was skipped because of it; its branch and worktree carry over.
    TaskRetried {
        task: String,
    },
    /// A new orchestrator process took over the run.
    RunResumed {
        orchestrator_pid: u32,
    },
    /// How many agents may start at once now, and why it is below the maximum.
    ParallelismLimited {
        limit: usize,
        reason: Option<String>,
    },
    /// Too many attempts in a row failed with the same systemic cause: no more tasks start.
    CircuitOpened {
        cause: String,
        attempts: u32,
    },
    /// The worktree of a succeeded task was removed at the end of the run (its branch stays).
    WorktreeRemoved {
        task: String,
    },
    /// An attempt failed and another one follows after `retry_in_ms`.
    AttemptFailed {
        task: String,
        attempt: u32,
        error: String,
        retry_in_ms: u64,
    },
    /// What the agent reported about an attempt on its machine output (session, model,
    /// turns, cost, tokens, denied tool uses, error and its class), once the attempt ended.
    AgentReported {
        task: String,
        attempt: u32,
        report: Box<AgentReport>,
    },
    /// Something about the task's work the user should see even when it succeeds (the
    /// agent's commits brought back from a detached HEAD, a nested repository left
    /// uncommitted); shown in the summary, the report and the editor.
    TaskWarning {
        task: String,
        warning: String,
    },
    /// Uncommitted changes the agent left were committed on its branch.
    LeftoversCommitted {
        task: String,
        commit: String,
    },
    /// The agent asked the person: a tool use that is not pre-approved, or a question
    /// (`AskUserQuestion`). Stored by the approval broker as `questions/<id>.question.json`.
    ApprovalRequested {
        task: String,
        attempt: u32,
        id: String,
        kind: QuestionKind,
        tool: String,
        /// One line: `Bash(rm -rf dist)`, or the question asked.
        summary: String,
        input: serde_json::Value,
        /// When `default` answers if nobody did.
        deadline: DateTime<Utc>,
        default: Decision,
    },
    /// The question was answered (by the person, a rule, or the deadline).
    ApprovalAnswered {
        task: String,
        id: String,
        decision: Decision,
        by: AnsweredBy,
        /// The person changed the tool's input (an edited command, a chosen answer).
        edited: bool,
    },
    /// The attempt that asked ended before an answer: the question is no longer pending.
    ApprovalWithdrawn {
        task: String,
        id: String,
    },
    TaskFinished {
        task: String,
        status: TaskStatus,
        exit_code: Option<i32>,
        signal: Option<i32>,
        commits: u32,
        files_changed: Vec<String>,
        error: Option<String>,
        /// How the last attempt's failure was classified (None on success and for failures
        /// before any attempt): what a remote task reports back so the orchestrator retries
        /// as it would locally.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<FailureClass>,
    },
    /// An attempt was handed to a cluster's scheduler (`executor`: `slurm`), as `job`; sent
    /// again with `node` once the job runs there.
    AttemptPlaced {
        task: String,
        attempt: u32,
        executor: String,
        job: String,
        node: Option<String>,
    },
    TaskSkipped {
        task: String,
        reason: String,
    },
    /// A succeeded task's branch was merged in memory with the base branch (when it moved)
    /// and every other succeeded branch in `checked`; `conflicts` are the merges that would
    /// conflict. Replaces earlier predictions between these pairs.
    ConflictsPredicted {
        task: String,
        checked: Vec<String>,
        conflicts: Vec<PredictedConflict>,
        /// Branches that could not be checked, and why.
        error: Option<String>,
    },
    RunFinished {
        status: RunStatus,
    },
}

/// A conflict between two tasks, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    pub tasks: [String; 2],
    pub paths: Vec<String>,
    pub serialized: bool,
}

impl ConflictInfo {
    /// Names the tasks of a plan conflict.
    pub fn from_plan(c: &Conflict, ids: &[&str]) -> ConflictInfo {
        ConflictInfo {
            tasks: [ids[c.first].to_string(), ids[c.second].to_string()],
            paths: c.paths.clone(),
            serialized: c.serialized,
        }
    }
}

/// An event with its time, as one line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub ts: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

/// Parses an event log, skipping a torn last line (a crash mid-write) and any line that is
/// not an event.
pub fn parse_event_log(text: &str) -> Vec<EventRecord> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// One file that would conflict when two commits are merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    /// Path relative to the repository root (the path on "our" side when it differs).
    pub path: String,
    /// `content` (both changed the same lines), `add/add` (both created it differently),
    /// `modify/delete` (one changed it, the other deleted it) or `binary`.
    pub kind: String,
    /// Conflicting regions a merge leaves markers for; 0 when the whole file conflicts
    /// (`modify/delete`, `binary`).
    pub hunks: u32,
}

/// A predicted conflict between a task's branch and another succeeded task's branch, or
/// the base branch when it moved since the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictedConflict {
    /// The task that finished.
    pub task: String,
    /// Its branch.
    pub branch: String,
    /// The other task, or `None` when the other side is the base branch.
    pub with_task: Option<String>,
    /// The other branch.
    pub with_branch: String,
    /// Every conflicting file, sorted by path.
    pub files: Vec<ConflictFile>,
}

impl PredictedConflict {
    /// Whether `task` is one of the two sides.
    pub fn involves(&self, task: &str) -> bool {
        self.task == task || self.with_task.as_deref() == Some(task)
    }

    /// The side that is not `task` (task id, or the base branch's name).
    pub fn other_side(&self, task: &str) -> String {
        if self.task == task {
            self.with_task
                .clone()
                .unwrap_or_else(|| format!("base {}", self.with_branch))
        } else {
            self.task.clone()
        }
    }

    /// `a.txt (2 hunks), b.txt (modify/delete)`.
    pub fn files_text(&self) -> String {
        self.files.iter().map(describe_file).collect::<Vec<_>>().join(", ")
    }

    /// Total conflicting hunks over all files.
    pub fn hunks(&self) -> u32 {
        self.files.iter().map(|f| f.hunks).sum()
    }
}

/// `a.txt (2 hunks)` or `b.txt (modify/delete)`.
pub fn describe_file(f: &ConflictFile) -> String {
    match (f.kind.as_str(), f.hunks) {
        ("content", 1) => format!("{} (1 hunk)", f.path),
        ("content", n) => format!("{} ({n} hunks)", f.path),
        (kind, 0) => format!("{} ({kind})", f.path),
        (kind, 1) => format!("{} ({kind}, 1 hunk)", f.path),
        (kind, n) => format!("{} ({kind}, {n} hunks)", f.path),
    }
}
