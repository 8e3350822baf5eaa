// What the views say about runs and tasks, as plain functions of the server's TreeState: the
// status-bar text and tooltip, tree labels, icons and context values. No VS Code API here, so
// the unit tests (test/unit/model.test.ts) run in plain Node.

import { pendingApprovals, statusBarSuffix, waitingText } from "./approvals";
import type { RunNode, TaskNode, TaskStatus, TreeState } from "./protocol";

/** How many tasks of a run (or several) are in each state. */
export interface Counts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  skipped: number;
  cancelled: number;
}

export function countTasks(runs: readonly RunNode[]): Counts {
  const c: Counts = { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const run of runs) {
    for (const t of run.tasks) {
      c.total += 1;
      c[t.status] += 1;
    }
  }
  return c;
}

/** `3/8 ✓ 1 ✗`: succeeded of all, then failed (failed, skipped or cancelled) when any. */
export function progressText(c: Counts): string {
  const bad = c.failed + c.skipped + c.cancelled;
  return `${c.succeeded}/${c.total} ✓` + (bad > 0 ? ` ${bad} ✗` : "");
}

/** 42s, 3m 05s, 1h 02m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** `512 B`, `3.4 MB`, `1.2 GB` (powers of 1000, as `du -h --si`). */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** The description of a warm pool entry in the Worktrees view: `warm · pooled 5m 03s ago · 734 MB`. */
export function poolEntryDescription(e: import("./protocol").PoolEntryNode): string {
  return [e.claimed ? "being taken" : "warm", `pooled ${formatDuration(e.ageSecs)} ago`, formatBytes(e.size)].join(" · ");
}

/** $0.042, $1.20. */
export function formatCost(usd: number): string {
  return usd < 1 ? `$${usd.toFixed(3)}` : `$${usd.toFixed(2)}`;
}

/** Seconds a run took, or has taken by `now`. */
export function runSeconds(run: RunNode, now: number): number {
  const start = Date.parse(run.startedAt);
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  return Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 1000 : 0;
}

/** The runs that are still going, newest first. */
export function activeRuns(state: TreeState | undefined): RunNode[] {
  return state ? state.runs.filter((r) => r.status === "running") : [];
}

/** What the status bar shows: a spinner and the progress of the running runs. */
export interface StatusBarView {
  text: string;
  tooltip: string;
  /** `error` when a task failed. */
  severity: "normal" | "error";
  /** Questions of agents waiting for the person (a click then answers them). */
  asking: number;
}

/**
 * The status bar during a run (`$(sync~spin) Gadugi 3/8 ✓ 1 ✗`, one tooltip line per task),
 * or the result of the run that just ended (`finished`), or undefined: nothing to show.
 */
export function statusBarView(runs: readonly RunNode[], finished = false, now = Date.now()): StatusBarView | undefined {
  if (runs.length === 0) return undefined;
  const c = countTasks(runs);
  const asking = finished ? 0 : pendingApprovals({ version: 0, runs: [...runs] }).length;
  const failed = c.failed + c.skipped + c.cancelled > 0;
  const icon = finished ? (failed ? "$(error)" : "$(check)") : "$(sync~spin)";
  const several = runs.length > 1 ? ` (${runs.length} runs)` : "";
  const header = finished
    ? `Gadugi run ${runs[0].runId} ${runs[0].status}`
    : `Gadugi: ${c.running} running, ${c.queued} queued` + several;
  const waiting = asking > 0 ? [`${asking} question(s) of agents wait for you: click, or run Gadugi: Answer Pending Approvals`] : [];
  const lines = [header, ...waiting, ...runs.flatMap((r) => r.tasks.map((t) => taskLine(t, now)))];
  return {
    text: `${icon} Gadugi ${progressText(c)}${several}${statusBarSuffix(asking)}`,
    tooltip: lines.join("\n"),
    severity: failed ? "error" : "normal",
    asking,
  };
}

const STATUS_SYMBOL: Record<TaskStatus, string> = {
  queued: "○",
  running: "⟳",
  succeeded: "✓",
  failed: "✗",
  skipped: "↷",
  cancelled: "⊘",
};

/** One tooltip line: `✗ bad — failed: exit status 3 (12s)`. */
export function taskLine(t: TaskNode, now = Date.now()): string {
  return `${STATUS_SYMBOL[t.status]} ${t.id} — ${taskStateText(t, now)}`;
}

/** Whether a running task waits for the person to answer its agent. */
export function isWaitingForApproval(t: TaskNode): boolean {
  return t.status === "running" && (t.pendingApprovals ?? []).length > 0;
}

/** `running: agent — Editing src/api.rs`, `failed: exit status 3 (12s)`, `succeeded in 3s`. */
export function taskStateText(t: TaskNode, now = Date.now()): string {
  switch (t.status) {
    case "running": {
      if (isWaitingForApproval(t)) return waitingText(t.pendingApprovals, now);
      const what = t.phase ?? "running";
      return t.lastActivity ? `${what} — ${t.lastActivity}` : what;
    }
    case "succeeded":
      return t.durationSeconds !== null ? `succeeded in ${formatDuration(t.durationSeconds)}` : "succeeded";
    case "failed":
    case "skipped":
    case "cancelled": {
      const why = t.error ? `: ${firstLine(t.error)}` : "";
      const took = t.durationSeconds !== null ? ` (${formatDuration(t.durationSeconds)})` : "";
      return `${t.status}${why}${took}`;
    }
    case "queued":
      return t.dependsOn.length > 0 ? `queued, after ${t.dependsOn.join(", ")}` : "queued";
  }
}

function firstLine(s: string): string {
  const line = s.split("\n", 1)[0];
  return line.length > 120 ? line.slice(0, 119) + "…" : line;
}

/** The codicon and theme colour of a task's status. */
export function taskIcon(t: TaskNode): { id: string; color?: string } {
  switch (t.status) {
    case "queued":
      return { id: "circle-outline" };
    case "running":
      return isWaitingForApproval(t) ? { id: "bell-dot", color: "charts.yellow" } : { id: "sync~spin", color: "charts.blue" };
    case "succeeded":
      return { id: "pass-filled", color: "testing.iconPassed" };
    case "failed":
      return { id: "error", color: "testing.iconFailed" };
    case "skipped":
      return { id: "debug-step-over", color: "testing.iconSkipped" };
    case "cancelled":
      return { id: "circle-slash", color: "testing.iconSkipped" };
  }
}

/** The codicon and colour of a run. */
export function runIcon(run: RunNode): { id: string; color?: string } {
  if (run.status === "running") {
    return run.driverAlive ? { id: "sync~spin", color: "charts.blue" } : { id: "debug-pause", color: "charts.yellow" };
  }
  if (run.status === "succeeded") return { id: "pass-filled", color: "testing.iconPassed" };
  if (run.status === "cancelled") return { id: "circle-slash", color: "testing.iconSkipped" };
  return { id: "error", color: "testing.iconFailed" };
}

/** Whether `gadugi.retryTask` would take the task: it ended badly and its run has ended. */
export function isRetryable(run: RunNode, t: TaskNode): boolean {
  return run.status !== "running" && (t.status === "failed" || t.status === "cancelled" || t.status === "skipped");
}

/** A running run that no process drives any more (its driver crashed): it can be resumed. */
export function isOrphaned(run: RunNode): boolean {
  return run.status === "running" && !run.driverAlive;
}

/**
 * Context value of a task row, matched by the manifest's menus: `task.<status>` always,
 * `task.retryable`, `task.worktree` (its folder exists), `task.started` (it has a branch),
 * `task.waiting` (its agent asks the person).
 */
export function taskContext(run: RunNode, t: TaskNode): string {
  const parts = ["task", `task.${t.status}`];
  if (t.status === "running" && run.status === "running") parts.push("task.running");
  if (isWaitingForApproval(t)) parts.push("task.waiting");
  if (isRetryable(run, t)) parts.push("task.retryable");
  if (t.worktreeExists) parts.push("task.worktree");
  if (t.attempts > 0 || t.commits > 0 || t.worktreeExists) parts.push("task.started");
  return [...new Set(parts)].join(" ");
}

/** Context value of a run row: `run.running` (cancellable), `run.orphaned` (resumable). */
export function runContext(run: RunNode): string {
  if (isOrphaned(run)) return "run run.orphaned";
  return run.status === "running" ? "run run.running" : `run run.${run.status}`;
}

/** Description of a task row: `failed · 12s · gadugi/bad · $0.042`. */
export function taskDescription(t: TaskNode, now = Date.now()): string {
  const parts: string[] = [
    isWaitingForApproval(t) ? waitingText(t.pendingApprovals, now) : t.status === "running" && t.phase ? `${t.phase}` : t.status,
  ];
  if (t.durationSeconds !== null) parts.push(formatDuration(t.durationSeconds));
  if (t.attempts > 1) parts.push(`attempt ${t.attempts}`);
  if (t.placement) parts.push(t.placement);
  parts.push(t.branch);
  if (typeof t.costUsd === "number") parts.push(formatCost(t.costUsd));
  return parts.join(" · ");
}

/** Description of a run row: `running · 3/8 ✓ 1 ✗ · 42s`. */
export function runDescription(run: RunNode, now: number): string {
  const status = isOrphaned(run) ? "interrupted (resume it)" : run.status;
  const parts = [status, progressText(countTasks([run])), formatDuration(runSeconds(run, now))];
  const cost = run.tasks.reduce<number | null>((sum, t) => (typeof t.costUsd === "number" ? (sum ?? 0) + t.costUsd : sum), null);
  if (cost !== null) parts.push(formatCost(cost));
  return parts.join(" · ");
}

/** Markdown tooltip of a task row. */
export function taskTooltip(t: TaskNode, now = Date.now()): string {
  const rows = [
    `**${escapeMarkdown(t.title || t.id)}** (\`${t.id}\`)`,
    "",
    `- status: ${escapeMarkdown(taskStateText(t, now))}`,
    `- branch: \`${t.branch}\``,
    t.placement
      ? `- runs ${escapeMarkdown(t.placement)}; its work reaches \`${t.branch}\` when the attempt ends`
      : `- worktree: \`${t.worktree}\`${t.worktreeExists ? "" : " (removed)"}`,
  ];
  if (t.dependsOn.length > 0) rows.push(`- depends on: ${t.dependsOn.map((d) => `\`${d}\``).join(", ")}`);
  if (t.attempts > 0) rows.push(`- attempts: ${t.attempts}`);
  if (t.commits > 0) rows.push(`- commits: ${t.commits}`);
  if (t.exitCode !== null) rows.push(`- exit code: ${t.exitCode}`);
  if (typeof t.costUsd === "number") rows.push(`- cost: ${formatCost(t.costUsd)}`);
  if (t.lastActivity) rows.push(`- latest output: ${escapeMarkdown(t.lastActivity)}`);
  if (t.error) rows.push("", "```", t.error, "```");
  return rows.join("\n");
}

function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+!|<>]/g, (c) => "\\" + c);
}

const PROMPT_KEYS = /^(id|depends_on|files|agent|timeout|retries|verify)\s*:/m;

/**
 * Whether a markdown file looks like a Gadugi prompt file, for the editor-title button: a task
 * of a known run, front matter with a Gadugi key, a `Depends on:` line, or a file in a folder
 * named `prompts` or `tasks`.
 */
export function isPromptFile(path: string, text: string, known: ReadonlySet<string>): boolean {
  if (!path.toLowerCase().endsWith(".md")) return false;
  if (known.has(path)) return true;
  const parts = path.split(/[\\/]/);
  const folder = parts.length > 1 ? parts[parts.length - 2].toLowerCase() : "";
  if (folder === "prompts" || folder === "tasks") return true;
  const front = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text);
  if (front && PROMPT_KEYS.test(front[1])) return true;
  return /^Depends on:/m.test(text);
}

/** Paths of every prompt file in the tree's runs (from their `file://` URIs). */
export function knownPromptFiles(state: TreeState | undefined, toPath: (uri: string) => string): Set<string> {
  const out = new Set<string>();
  for (const run of state?.runs ?? []) for (const t of run.tasks) out.add(toPath(t.promptFile));
  return out;
}

/** The plan as a markdown page: tasks in start order with dependencies, critical path, conflicts. */
export function planMarkdown(plan: import("./protocol").PlanJson): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const ids = (list: string[]) => (list.length ? list.map((d) => `\`${d}\``).join(", ") : "—");
  const out = [
    "# Gadugi plan",
    "",
    `${plan.tasks.length} task(s). Critical path: ${plan.critical_path.length ? plan.critical_path.map((d) => `\`${d}\``).join(" → ") : "—"}`,
    "",
    "| task | title | depends on | waits for (same files) | files | agent |",
    "|---|---|---|---|---|---|",
  ];
  for (const t of plan.tasks) {
    out.push(
      `| \`${t.id}\` | ${cell(t.title)} | ${ids(t.depends_on)} | ${ids(t.after)} | ${t.files.length ? cell(t.files.join(", ")) : "—"} | ${t.agent ?? "default"} |`,
    );
  }
  out.push("", "## Conflicts", "");
  if (plan.conflicts.length === 0) out.push("No two tasks declare the same files.");
  for (const c of plan.conflicts) {
    out.push(
      `- ${ids(c.tasks)} both touch ${c.paths.map((p) => `\`${p}\``).join(", ")}: ${c.serialized ? "the second waits for the first" : "both run at once (expect a merge conflict)"}`,
    );
  }
  return out.join("\n") + "\n";
}
