//! The custom protocol of the Gadugi language server, declared once: command names with their
//! argument and result types, and the `gadugi/...` methods. `docs/lsp-extensions.md`
//! documents every item here (a test checks that none is missing); the VS Code extension
//! mirrors this file in one TypeScript module. Field names are camelCase on the wire.

use serde::{Deserialize, Serialize};

use crate::core::events::{RunStatus, TaskPhase, TaskStatus};

/// Every `workspace/executeCommand` command, as listed in `executeCommandProvider`.
pub const COMMANDS: &[&str] = &[
    ORCHESTRATE,
    PLAN,
    CANCEL_RUN,
    CANCEL_TASK,
    RETRY_TASK,
    RESUME,
    CLEANUP,
    STATUS,
    TASK_DIFF,
    POOL_PRUNE,
    MERGE_RUN,
    OPEN_PULL_REQUESTS,
    REPORT,
];

/// Starts a run of prompt files: [`OrchestrateArgs`] → [`OrchestrateResult`], at once.
pub const ORCHESTRATE: &str = "gadugi.orchestrate";
/// The plan of prompt files without running anything: [`PlanArgs`] → the `gadugi plan --json` object.
pub const PLAN: &str = "gadugi.plan";
/// Cancels a run this server started: [`RunRef`] → [`CancelResult`].
pub const CANCEL_RUN: &str = "gadugi.cancelRun";
/// Cancels one task of a running run, whoever drives it: [`TaskRef`] → [`CancelResult`].
pub const CANCEL_TASK: &str = "gadugi.cancelTask";
/// Runs a failed, cancelled or skipped task of an ended run again: [`TaskRef`] → [`OrchestrateResult`].
pub const RETRY_TASK: &str = "gadugi.retryTask";
/// Resumes a run whose orchestrator is gone, driven by this server: [`RunRef`] → [`OrchestrateResult`].
pub const RESUME: &str = "gadugi.resume";
/// Removes worktrees of finished tasks: [`CleanupArgs`] → [`CleanupResult`].
pub const CLEANUP: &str = "gadugi.cleanup";
/// The `gadugi status --json` object of a run: [`StatusArgs`] → that object.
pub const STATUS: &str = "gadugi.status";

/// What a task changed: [`TaskRef`] → [`TaskDiff`].
pub const TASK_DIFF: &str = "gadugi.taskDiff";

/// Empties the warm worktree pool of a repository (`gadugi pool prune`): [`PoolPruneArgs`] →
/// [`CleanupResult`].
pub const POOL_PRUNE: &str = "gadugi.poolPrune";
/// Builds the run's integration branch like `gadugi merge` (the user's checkout and branch
/// untouched): [`MergeArgs`] → [`MergeResult`] when done. Each step is also sent as a
/// `$/progress` report when the request carries a `workDoneToken`.
pub const MERGE_RUN: &str = "gadugi.mergeRun";
/// Pushes the run's succeeded task branches and opens one pull request each, like `gadugi pr`:
/// [`PullRequestsArgs`] → [`PullRequestsResult`] when done (steps as `$/progress` reports too).
pub const OPEN_PULL_REQUESTS: &str = "gadugi.openPullRequests";
/// Writes the run's report like `gadugi report` (`report.md`, `report.json`, `timeline.svg`):
/// [`RunRef`] → [`ReportResult`].
pub const REPORT: &str = "gadugi.report";

/// Request `gadugi/treeState`: [`TreeStateParams`] → [`TreeState`].
pub const TREE_STATE: &str = "gadugi/treeState";
/// Notification `gadugi/treeChanged` (server → client): a [`TreeState`] after every change.
pub const TREE_CHANGED: &str = "gadugi/treeChanged";
/// Request `gadugi/worktrees`: [`WorktreesParams`] → [`WorktreeList`].
pub const WORKTREES: &str = "gadugi/worktrees";
/// Request `gadugi/runGraph`: [`RunGraphParams`] → [`RunGraph`].
pub const RUN_GRAPH: &str = "gadugi/runGraph";

/// Arguments of `gadugi.orchestrate` (the first element of `arguments`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrchestrateArgs {
    /// `file://` URIs of prompt files (or folders of them), all in one workspace folder.
    pub files: Vec<String>,
    /// Agents at once; default: `max_parallel` of gadugi.toml, else 4.
    #[serde(default)]
    pub max_parallel: Option<u16>,
    /// Agent profile for tasks that don't name one (like `gadugi run --agent`).
    #[serde(default)]
    pub agent: Option<String>,
    /// Extra arguments for every agent, after `[agent] args` of gadugi.toml (like
    /// `gadugi run --agent-arg`).
    #[serde(default)]
    pub agent_args: Vec<String>,
    /// Where the worktrees go, absolute or relative to the repository root (like
    /// `gadugi run --worktree-dir`).
    #[serde(default)]
    pub worktree_dir: Option<String>,
}

/// Result of `gadugi.orchestrate`, `gadugi.retryTask` and `gadugi.resume`: the id of the run
/// this server now drives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestrateResult {
    pub run_id: String,
}

/// Arguments of `gadugi.plan`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanArgs {
    /// `file://` URIs of prompt files (or folders of them).
    pub files: Vec<String>,
}

/// Names a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRef {
    pub run_id: String,
}

/// Names a task of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    pub run_id: String,
    pub task_id: String,
}

/// Result of `gadugi.cancelRun`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelResult {
    /// `false` when the run had already finished.
    pub cancelled: bool,
}

/// Arguments of `gadugi.cleanup` (all optional; the element itself may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CleanupArgs {
    /// Workspace folder URI whose repository to clean; default: the first workspace folder.
    #[serde(default)]
    pub folder: Option<String>,
    /// Only this run's worktrees; default: every run.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Only this task's worktree (needs `runId`).
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub delete_branches: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub dry_run: bool,
}

/// Result of `gadugi.cleanup`: what was removed or kept and why, one line each, as
/// `gadugi cleanup` prints them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupResult {
    pub lines: Vec<String>,
}

/// Arguments of `gadugi.poolPrune` (all optional; the element itself may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolPruneArgs {
    /// `file://` URI of the repository root (as in [`PoolEntryNode`]'s `repo`) or of a
    /// workspace folder in it; default: every repository of the workspace.
    #[serde(default)]
    pub repo: Option<String>,
    /// Removes every pooled worktree; otherwise only those over the `[pool]` budget and
    /// claims left by processes that are gone.
    #[serde(default)]
    pub all: bool,
}

/// Arguments of `gadugi.status` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusArgs {
    /// Default: the latest run the server knows.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// Params of `gadugi/treeState` (may be `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreeStateParams {}

/// What the tree views show: every run the server knows, newest first. Sent as the result of
/// `gadugi/treeState` and as the params of `gadugi/treeChanged`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TreeState {
    /// Rises by one with every change; a client drops a notification whose version is not
    /// greater than the last one it applied.
    pub version: u64,
    pub runs: Vec<RunNode>,
}

/// One run in the tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunNode {
    pub run_id: String,
    /// `file://` URI of the repository root.
    pub repo: String,
    pub status: RunStatus,
    /// Whether this server process runs it (so it can cancel it); `false` for runs started
    /// elsewhere (the CLI) and watched through `.gadugi/`.
    pub owned: bool,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub max_parallel: usize,
    /// Whether a process drives the run now (this server, or the CLI that started it).
    /// A `running` run without a driver waits for `gadugi.resume`; its agents live on.
    pub driver_alive: bool,
    pub tasks: Vec<TaskNode>,
}

/// One task in the tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskNode {
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
    pub phase: Option<TaskPhase>,
    /// `file://` URI of the prompt file.
    pub prompt_file: String,
    pub branch: String,
    /// Absolute path of the task's worktree.
    pub worktree: String,
    /// Whether the worktree folder exists now.
    pub worktree_exists: bool,
    pub depends_on: Vec<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub duration_seconds: Option<f64>,
    pub commits: u32,
    pub error: Option<String>,
    /// The latest line the agent printed.
    pub last_activity: Option<String>,
    /// US dollars the agent reported over all attempts; `null` when it reports none.
    pub cost_usd: Option<f64>,
    /// Absolute path of the agent's output log of the latest attempt (may not exist yet).
    pub log_file: String,
    /// The questions of the task's agent waiting for the person, oldest first: what a
    /// client that (re)connects shows without waiting for `gadugi/approvalRequested`.
    pub pending_approvals: Vec<ApprovalRequest>,
    /// Where a cluster runs (or ran) the latest attempt, e.g. `on n1 (slurm job 42)`;
    /// `null` when it runs on the orchestrator's machine.
    pub placement: Option<String>,
}

/// Result of `gadugi.taskDiff`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDiff {
    /// The commit the task started from.
    pub base: String,
    pub branch: String,
    /// `git diff` of the base against the task's worktree (commits and uncommitted changes
    /// of tracked files), or against its branch when the worktree is gone; preceded by the
    /// list of the task's commits.
    pub diff: String,
}

/// Arguments of `gadugi.mergeRun`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeArgs {
    pub run_id: String,
    /// A command (through `sh -c`, in a temporary worktree) that must pass after each merge,
    /// like `gadugi merge --verify`; empty or left out: none.
    #[serde(default)]
    pub verify: Option<String>,
    /// Time limit of each verify, like `90s` or `10m`; default: `timeout` of gadugi.toml.
    #[serde(default)]
    pub verify_timeout: Option<String>,
}

/// Result of `gadugi.mergeRun`: what `merge.json` records, plus the lines `gadugi merge` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeResult {
    pub run_id: String,
    /// `gadugi/integrate/<run>` (with the configured branch prefix).
    pub integration_branch: String,
    /// The integration branch's commit now.
    pub head: String,
    /// Whether every succeeded task's branch is in the integration branch.
    pub complete: bool,
    pub steps: Vec<MergeStepNode>,
    pub lines: Vec<String>,
}

/// One task branch of a merge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeStepNode {
    pub task_id: String,
    pub branch: String,
    /// `merged`, `already_merged`, `conflict`, `verify_failed` or `missing`.
    pub outcome: String,
    /// Paths (relative to the repository root) that conflict, for `conflict`.
    pub files: Vec<String>,
    /// What went wrong, in words.
    pub error: Option<String>,
}

/// Arguments of `gadugi.openPullRequests`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullRequestsArgs {
    pub run_id: String,
    /// The remote to push to; default: `origin`, else the only remote.
    #[serde(default)]
    pub remote: Option<String>,
    /// The branch the pull requests target; default: the branch the run started from.
    #[serde(default)]
    pub base: Option<String>,
    /// Check and say what would be done (in `lines`); push and open nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Result of `gadugi.openPullRequests`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestsResult {
    pub remote: String,
    pub base: String,
    pub pull_requests: Vec<PullRequestNode>,
    /// Tasks whose pull request `gh pr create` refused.
    pub failed: Vec<PullRequestFailure>,
    /// Succeeded tasks left out, with the reason (no commits, branch gone).
    pub skipped: Vec<String>,
    pub lines: Vec<String>,
}

/// One pull request opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestNode {
    pub task_id: String,
    pub branch: String,
    /// The pull request's address, as `gh` printed it.
    pub url: String,
}

/// A pull request that could not be opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestFailure {
    pub task_id: String,
    pub error: String,
}

/// Result of `gadugi.report`: absolute paths of the files just written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// `report.md`, which shows `timeline.svg` (a relative image link).
    pub markdown: String,
    pub json: String,
    /// `timeline.svg`: the run's timeline as a picture.
    pub timeline: String,
}

/// Params of `gadugi/worktrees` (may be `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorktreesParams {}

/// Result of `gadugi/worktrees`: every Gadugi worktree on disk in the workspace's
/// repositories, newest run first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeList {
    pub worktrees: Vec<WorktreeNode>,
    /// The warm worktree pools' entries (`[pool]` of gadugi.toml), oldest first.
    pub pool: Vec<PoolEntryNode>,
}

/// One pooled worktree: detached, clean, waiting for a task (`gadugi pool status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolEntryNode {
    /// Absolute path (`<worktree_dir>/.pool/<n>`).
    pub path: String,
    /// `file://` URI of the repository root.
    pub repo: String,
    /// Seconds since it was pooled.
    pub age_secs: u64,
    /// Bytes on disk, kept build outputs included.
    pub size: u64,
    /// A process is taking or removing it right now.
    pub claimed: bool,
}

/// One worktree on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeNode {
    /// Absolute path.
    pub path: String,
    /// `file://` URI of the repository root.
    pub repo: String,
    pub branch: String,
    pub run_id: String,
    pub task_id: String,
    pub task_status: TaskStatus,
    /// Whether it has uncommitted changes.
    pub dirty: bool,
}

/// Params of `gadugi/runGraph`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunGraphParams {
    pub run_id: String,
}

/// Result of `gadugi/runGraph`: what the editor's run graph draws beyond the tree (the
/// statuses come from `gadugi/treeChanged`): dependencies, the critical path, conflicts and
/// the attempts in time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunGraph {
    pub run_id: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Task ids along the longest chain of dependencies, in order.
    pub critical_path: Vec<String>,
    /// The run's tasks, in the run's order.
    pub tasks: Vec<GraphTask>,
    pub conflicts: Vec<GraphConflict>,
    /// Every agent attempt so far, in start order.
    pub attempts: Vec<GraphAttempt>,
}

/// One task of a [`RunGraph`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphTask {
    pub id: String,
    pub depends_on: Vec<String>,
    /// Tasks it waits for (whatever their outcome) because both name the same files.
    pub after: Vec<String>,
    /// When it left the queue (RFC 3339 UTC).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Two tasks that conflict, or one task and the base branch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphConflict {
    /// The tasks involved: two, or one when the other side is the base branch.
    pub tasks: Vec<String>,
    /// The base branch, when it is the other side (it moved since the run started).
    pub base_branch: Option<String>,
    /// Predicted: each conflicting file (`src/a.rs (2 hunks)`); declared: the paths or
    /// patterns both prompt files name.
    pub files: Vec<String>,
    /// `true`: found by merging the finished branches in memory; `false`: declared, both
    /// prompt files name the same files.
    pub predicted: bool,
    /// Declared conflicts: whether the second task waits for the first.
    pub serialized: bool,
}

/// One agent attempt of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphAttempt {
    pub task: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When its agent started (RFC 3339 UTC).
    pub started_at: String,
    /// `null` while it runs.
    pub finished_at: Option<String>,
    /// `running`; `failed` when it failed (another attempt may follow); else how the task ended.
    pub status: TaskStatus,
}

// Agents that ask (issue 20): an agent's permission requests and questions, and the answers.

/// Notification `gadugi/approvalRequested` (server → client): an [`ApprovalRequest`], once per
/// question (again after the server restarts, for every question still pending).
pub const APPROVAL_REQUESTED: &str = "gadugi/approvalRequested";
/// Request `gadugi/answerApproval`: [`AnswerApprovalParams`] → [`AnswerApprovalResult`].
pub const ANSWER_APPROVAL: &str = "gadugi/answerApproval";

/// A question of a task's agent waiting for the person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    pub run_id: String,
    pub task_id: String,
    /// The question's id (`a1-001`), for the answer.
    pub id: String,
    /// `permission` (may this tool run?) or `question` (choose or answer freely).
    pub kind: String,
    /// The tool asked for (`Bash`, `Write`, `AskUserQuestion`, ...).
    pub tool: String,
    /// One line: `Bash(rm -rf dist)`, or `question: ...`.
    pub summary: String,
    /// The command of a `Bash` request, to edit before allowing it.
    pub command: Option<String>,
    /// The option labels of a question.
    pub options: Vec<String>,
    /// When `defaultDecision` answers if nobody did (RFC 3339).
    pub deadline: String,
    /// `allow` or `deny`.
    pub default_decision: String,
}

/// Params of `gadugi/answerApproval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnswerApprovalParams {
    pub run_id: String,
    pub task_id: String,
    /// The question; may be left out when the task has exactly one pending.
    #[serde(default)]
    pub id: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Told to the model with a denial; the free answer to a question.
    #[serde(default)]
    pub message: Option<String>,
    /// Allow this Bash command instead of the one asked for.
    #[serde(default)]
    pub command: Option<String>,
    /// The option chosen for a question.
    #[serde(default)]
    pub choice: Option<String>,
}

/// Result of `gadugi/answerApproval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerApprovalResult {
    /// The question answered.
    pub id: String,
    /// `allow` or `deny`.
    pub decision: String,
}

#[cfg(test)]
mod tests {
    /// Every command and method declared here, and every type, has its place in
    /// docs/lsp-extensions.md. Reads this file's source so a new item cannot be forgotten.
    #[test]
    fn every_item_is_documented() {
        let source = include_str!("ext.rs");
        let doc = include_str!("../../../docs/lsp-extensions.md");
        let mut checked = 0;
        for line in source.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("pub const ") {
                if let Some((_, value)) = rest.split_once(": &str = \"") {
                    let name = value.trim_end_matches("\";");
                    assert!(
                        doc.contains(&format!("### `{name}`")),
                        "docs/lsp-extensions.md has no `### `{name}`` section"
                    );
                    checked += 1;
                }
            }
            if let Some(rest) = line.strip_prefix("pub struct ") {
                let name = rest.split([' ', '{', '(']).next().unwrap();
                assert!(
                    doc.contains(&format!("`{name}`")),
                    "docs/lsp-extensions.md does not mention `{name}`"
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 20,
            "only {checked} items found: the parser above no longer matches ext.rs"
        );
        for c in super::COMMANDS {
            assert!(doc.contains(&format!("### `{c}`")), "{c} undocumented");
        }
    }
}
