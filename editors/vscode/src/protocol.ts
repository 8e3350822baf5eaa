// The custom protocol of `gadugi server --stdio`, mirrored from server/src/lsp/ext.rs (and the
// status enums of server/src/core/events.rs). That Rust file is the declaration; this one follows it.
// test/unit/protocolSync.test.ts compares the two sources item by item, and
// test/protocol/server.test.ts checks real server answers against the field lists below, so
// neither side can drift. Documented in docs/lsp-extensions.md.

/** `workspace/executeCommand` commands (ext.rs `COMMANDS`). */
export const Commands = {
  orchestrate: "gadugi.orchestrate",
  plan: "gadugi.plan",
  cancelRun: "gadugi.cancelRun",
  cancelTask: "gadugi.cancelTask",
  retryTask: "gadugi.retryTask",
  resume: "gadugi.resume",
  cleanup: "gadugi.cleanup",
  status: "gadugi.status",
  taskDiff: "gadugi.taskDiff",
  poolPrune: "gadugi.poolPrune",
  mergeRun: "gadugi.mergeRun",
  openPullRequests: "gadugi.openPullRequests",
  report: "gadugi.report",
} as const;

/** Custom methods. */
export const Methods = {
  /** Request: `TreeStateParams` → `TreeState`. */
  treeState: "gadugi/treeState",
  /** Notification, server → client: a `TreeState`. */
  treeChanged: "gadugi/treeChanged",
  /** Request: `WorktreesParams` → `WorktreeList`. */
  worktrees: "gadugi/worktrees",
  /** Request: `RunGraphParams` → `RunGraph`. */
  runGraph: "gadugi/runGraph",
  /** Notification, server → client: an `ApprovalRequest` (a task's agent asks). */
  approvalRequested: "gadugi/approvalRequested",
  /** Request: `AnswerApprovalParams` → `AnswerApprovalResult`. */
  answerApproval: "gadugi/answerApproval",
} as const;

/** core/events.rs `RunStatus`. */
export type RunStatus = "running" | "succeeded" | "failed" | "cancelled";
export const RUN_STATUSES: readonly RunStatus[] = ["running", "succeeded", "failed", "cancelled"];

/** core/events.rs `TaskStatus`. */
export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "skipped" | "cancelled";
export const TASK_STATUSES: readonly TaskStatus[] = ["queued", "running", "succeeded", "failed", "skipped", "cancelled"];

/** core/events.rs `TaskPhase`: what a running task is doing. */
export type TaskPhase = "preparing" | "setup" | "agent" | "committing" | "verifying" | "retrying" | "waiting_for_approval";
export const TASK_PHASES: readonly TaskPhase[] = ["preparing", "setup", "agent", "committing", "verifying", "retrying", "waiting_for_approval"];

/** Arguments of `gadugi.orchestrate`. */
export interface OrchestrateArgs {
  /** `file://` URIs of prompt files (or folders of them), all in one workspace folder. */
  files: string[];
  maxParallel?: number | null;
  /** Agent profile for tasks that don't name one. */
  agent?: string | null;
  /** Extra arguments for every agent, after `[agent] args` of gadugi.toml. */
  agentArgs?: string[];
  /** Worktree folder, absolute or relative to the repository root. */
  worktreeDir?: string | null;
}

/** Result of `gadugi.orchestrate`, `gadugi.resume`, `gadugi.retryTask`. */
export interface OrchestrateResult {
  runId: string;
}

/** Arguments of `gadugi.plan`. */
export interface PlanArgs {
  files: string[];
}

/** Names a run. */
export interface RunRef {
  runId: string;
}

/** Names a task of a run. */
export interface TaskRef {
  runId: string;
  taskId: string;
}

/** Result of `gadugi.cancelRun` and `gadugi.cancelTask`. */
export interface CancelResult {
  /** `false` when the run (or task) had already ended. */
  cancelled: boolean;
}

/** Arguments of `gadugi.cleanup` (all optional). */
export interface CleanupArgs {
  folder?: string | null;
  runId?: string | null;
  taskId?: string | null;
  deleteBranches?: boolean;
  force?: boolean;
  dryRun?: boolean;
}

/** Result of `gadugi.cleanup`: one line per worktree removed or kept, last the totals. */
export interface CleanupResult {
  lines: string[];
}

/** Arguments of `gadugi.poolPrune` (optional): one repository's pool (default: all), every entry or only those over the budget. */
export interface PoolPruneArgs {
  repo?: string | null;
  all?: boolean;
}

/** Arguments of `gadugi.status` (optional). */
export interface StatusArgs {
  runId?: string | null;
}

/** Params of `gadugi/treeState`. */
export type TreeStateParams = Record<string, never>;

/** What the tree views show: every run the server knows, newest first. */
export interface TreeState {
  /** Rises by one with every change; drop a notification whose version is not greater. */
  version: number;
  runs: RunNode[];
}

/** One run in the tree. */
export interface RunNode {
  runId: string;
  /** `file://` URI of the repository root. */
  repo: string;
  status: RunStatus;
  /** Run by this server process (it can cancel it). */
  owned: boolean;
  startedAt: string;
  finishedAt: string | null;
  maxParallel: number;
  /** Some process drives the run now; a running run without one waits for `gadugi.resume`. */
  driverAlive: boolean;
  tasks: TaskNode[];
}

/** One task in the tree. */
export interface TaskNode {
  id: string;
  title: string;
  status: TaskStatus;
  phase: TaskPhase | null;
  /** `file://` URI of the prompt file. */
  promptFile: string;
  branch: string;
  /** Absolute path of the task's worktree. */
  worktree: string;
  worktreeExists: boolean;
  dependsOn: string[];
  attempts: number;
  exitCode: number | null;
  durationSeconds: number | null;
  commits: number;
  error: string | null;
  /** The latest line the agent printed. */
  lastActivity: string | null;
  /** US dollars the agent reported over all attempts. */
  costUsd: number | null;
  /** The agent's output log of the latest attempt (may not exist yet). */
  logFile: string;
  /** The questions of the task's agent waiting for the person, oldest first. */
  pendingApprovals: ApprovalRequest[];
  /** Where a cluster runs (or ran) the latest attempt, e.g. `on n1 (slurm job 42)`; null on the orchestrator's machine. */
  placement: string | null;
}

/** Result of `gadugi.taskDiff`. */
export interface TaskDiff {
  base: string;
  branch: string;
  /** `git diff` text, preceded by `#` lines listing the task's commits. */
  diff: string;
}

/** Arguments of `gadugi.mergeRun`. */
export interface MergeArgs {
  runId: string;
  /** A command that must pass after each merge (`sh -c`, in a temporary worktree). */
  verify?: string | null;
  /** Time limit of each verify, like `90s` or `10m`. */
  verifyTimeout?: string | null;
}

/** Result of `gadugi.mergeRun`. */
export interface MergeResult {
  runId: string;
  /** `gadugi/integrate/<run>`. */
  integrationBranch: string;
  head: string;
  /** Every succeeded task's branch is in the integration branch. */
  complete: boolean;
  steps: MergeStepNode[];
  /** What `gadugi merge` prints, line by line. */
  lines: string[];
}

/** One task branch of a merge. */
export interface MergeStepNode {
  taskId: string;
  branch: string;
  /** `merged`, `already_merged`, `conflict`, `verify_failed` or `missing`. */
  outcome: string;
  /** Conflicting paths, relative to the repository root. */
  files: string[];
  error: string | null;
}

/** Arguments of `gadugi.openPullRequests`. */
export interface PullRequestsArgs {
  runId: string;
  remote?: string | null;
  base?: string | null;
  dryRun?: boolean;
}

/** Result of `gadugi.openPullRequests`. */
export interface PullRequestsResult {
  remote: string;
  base: string;
  pullRequests: PullRequestNode[];
  failed: PullRequestFailure[];
  /** Succeeded tasks left out, with the reason. */
  skipped: string[];
  lines: string[];
}

/** One pull request opened. */
export interface PullRequestNode {
  taskId: string;
  branch: string;
  url: string;
}

/** A pull request that could not be opened. */
export interface PullRequestFailure {
  taskId: string;
  error: string;
}

/** Result of `gadugi.report`: absolute paths of the files just written. */
export interface ReportResult {
  /** `report.md`, showing `timeline.svg`. */
  markdown: string;
  json: string;
  timeline: string;
}

/** Params of `gadugi/worktrees`. */
export type WorktreesParams = Record<string, never>;

/** Result of `gadugi/worktrees`: every Gadugi worktree on disk, newest run first. */
export interface WorktreeList {
  worktrees: WorktreeNode[];
  /** The warm worktree pools' entries, oldest first. */
  pool: PoolEntryNode[];
}

/** One pooled worktree: detached, clean, waiting for a task. */
export interface PoolEntryNode {
  path: string;
  /** `file://` URI of the repository root. */
  repo: string;
  ageSecs: number;
  /** Bytes on disk, kept build outputs included. */
  size: number;
  /** A process is taking or removing it right now. */
  claimed: boolean;
}

/** One worktree on disk. */
export interface WorktreeNode {
  path: string;
  /** `file://` URI of the repository root. */
  repo: string;
  branch: string;
  runId: string;
  taskId: string;
  taskStatus: TaskStatus;
  dirty: boolean;
}

/** Params of `gadugi/runGraph`. */
export interface RunGraphParams {
  runId: string;
}

/** Result of `gadugi/runGraph`: dependencies, critical path, conflicts and attempts of a run. */
export interface RunGraph {
  runId: string;
  startedAt: string;
  finishedAt: string | null;
  /** Task ids along the longest chain of dependencies, in order. */
  criticalPath: string[];
  tasks: GraphTask[];
  conflicts: GraphConflict[];
  /** Every agent attempt so far, in start order. */
  attempts: GraphAttempt[];
}

/** One task of a `RunGraph`. */
export interface GraphTask {
  id: string;
  dependsOn: string[];
  /** Tasks it waits for because both name the same files. */
  after: string[];
  startedAt: string | null;
  finishedAt: string | null;
}

/** Two tasks that conflict, or one task and the base branch (`baseBranch`). */
export interface GraphConflict {
  tasks: string[];
  baseBranch: string | null;
  /** Conflicting files (predicted) or the paths both prompt files name (declared). */
  files: string[];
  /** Found by merging the finished branches in memory (else declared by the prompt files). */
  predicted: boolean;
  /** Declared: the second task waits for the first. */
  serialized: boolean;
}

/** One agent attempt of a task; `finishedAt` is null while it runs. */
export interface GraphAttempt {
  task: string;
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  status: TaskStatus;
}

// Field lists of the objects the server sends, checked complete against the interfaces by the
// compiler (`satisfies Record<keyof T, true>`), and against real answers by the protocol test.
export const TREE_STATE_FIELDS = { version: true, runs: true } satisfies Record<keyof TreeState, true>;
export const RUN_NODE_FIELDS = {
  runId: true, repo: true, status: true, owned: true, startedAt: true, finishedAt: true,
  maxParallel: true, driverAlive: true, tasks: true,
} satisfies Record<keyof RunNode, true>;
export const TASK_NODE_FIELDS = {
  id: true, title: true, status: true, phase: true, promptFile: true, branch: true, worktree: true,
  worktreeExists: true, dependsOn: true, attempts: true, exitCode: true, durationSeconds: true,
  commits: true, error: true, lastActivity: true, costUsd: true, logFile: true, pendingApprovals: true,
  placement: true,
} satisfies Record<keyof TaskNode, true>;
export const WORKTREE_NODE_FIELDS = {
  path: true, repo: true, branch: true, runId: true, taskId: true, taskStatus: true, dirty: true,
} satisfies Record<keyof WorktreeNode, true>;
export const RUN_GRAPH_FIELDS = {
  runId: true, startedAt: true, finishedAt: true, criticalPath: true, tasks: true, conflicts: true, attempts: true,
} satisfies Record<keyof RunGraph, true>;
export const POOL_ENTRY_NODE_FIELDS = {
  path: true, repo: true, ageSecs: true, size: true, claimed: true,
} satisfies Record<keyof PoolEntryNode, true>;
export const TASK_DIFF_FIELDS = { base: true, branch: true, diff: true } satisfies Record<keyof TaskDiff, true>;
export const MERGE_RESULT_FIELDS = {
  runId: true, integrationBranch: true, head: true, complete: true, steps: true, lines: true,
} satisfies Record<keyof MergeResult, true>;
export const MERGE_STEP_FIELDS = {
  taskId: true, branch: true, outcome: true, files: true, error: true,
} satisfies Record<keyof MergeStepNode, true>;
export const PULL_REQUESTS_RESULT_FIELDS = {
  remote: true, base: true, pullRequests: true, failed: true, skipped: true, lines: true,
} satisfies Record<keyof PullRequestsResult, true>;
export const PULL_REQUEST_NODE_FIELDS = { taskId: true, branch: true, url: true } satisfies Record<keyof PullRequestNode, true>;
export const REPORT_RESULT_FIELDS = { markdown: true, json: true, timeline: true } satisfies Record<keyof ReportResult, true>;

/** LSP error code of a well-formed request the server refuses (`data.errors` lists bad input). */
export const REQUEST_FAILED = -32803;

/** One problem in `data.errors` of a refused request: bad input found by the core. */
export interface InputProblem {
  file: string | null;
  line: number | null;
  problem: string;
  fix: string;
}

/** Result of `gadugi.plan`: the `gadugi plan --json` object (snake_case, as the CLI prints it). */
export interface PlanJson {
  tasks: PlanTask[];
  /** Task ids along the longest chain of dependencies. */
  critical_path: string[];
  conflicts: PlanConflict[];
}

/** One task of a plan. */
export interface PlanTask {
  id: string;
  title: string;
  prompt_file: string;
  depends_on: string[];
  /** Tasks it waits for because they touch the same files (serialized conflicts). */
  after: string[];
  files: string[];
  agent: string | null;
  timeout_seconds: number | null;
  retries: number | null;
  verify: string | null;
  /** Estimated length of the longest chain from this task to the end. */
  remaining_path: number;
}

/** Two tasks that declare the same files. */
export interface PlanConflict {
  tasks: string[];
  paths: string[];
  /** Whether the second waits for the first (else both run, with a warning). */
  serialized: boolean;
}

// Agents that ask (issue 20): mirrored from the approvals block at the end of ext.rs.

/** A question of a task's agent waiting for the person (`gadugi/approvalRequested`). */
export interface ApprovalRequest {
  runId: string;
  taskId: string;
  /** The question's id (`a1-001`), for the answer. */
  id: string;
  /** `permission` or `question`. */
  kind: string;
  tool: string;
  /** One line: `Bash(rm -rf dist)`, or `question: ...`. */
  summary: string;
  /** The command of a `Bash` request, to edit before allowing it. */
  command: string | null;
  /** The option labels of a question. */
  options: string[];
  /** RFC 3339. */
  deadline: string;
  /** `allow` or `deny`. */
  defaultDecision: string;
}

/** Params of `gadugi/answerApproval`. */
export interface AnswerApprovalParams {
  runId: string;
  taskId: string;
  id?: string | null;
  /** `allow` or `deny`. */
  decision: string;
  message?: string | null;
  command?: string | null;
  choice?: string | null;
}

/** Result of `gadugi/answerApproval`. */
export interface AnswerApprovalResult {
  id: string;
  decision: string;
}
