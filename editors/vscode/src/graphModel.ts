// What the run graph shows, as plain data: built from the tree's RunNode (statuses, live) and
// the server's RunGraph (dependencies, critical path, conflicts, attempts), or from a plan
// before a run; and the difference between two of them, so the webview patches only what
// changed and lays the graph out again only when its shape changed. No DOM and no VS Code:
// test/unit/graphModel.test.ts runs it in Node, the webview bundles it.

import { formatDuration, isRetryable, taskStateText } from "./model";
import type { PlanJson, RunGraph, RunNode, TaskStatus } from "./protocol";

/** What a click on a node offers; each maps to a `gadugi-vscode.*` command (or opening the prompt). */
export type GraphAction = "showTaskLog" | "showTaskDiff" | "retryTask" | "cancelTask" | "openWorktree" | "openPrompt";

export const ACTION_TITLES: Record<GraphAction, string> = {
  showTaskLog: "Show Task Log",
  showTaskDiff: "Show Task Diff",
  retryTask: "Retry Task",
  cancelTask: "Cancel Task",
  openWorktree: "Open Task Worktree",
  openPrompt: "Open Prompt File",
};

export interface GraphNodeView {
  id: string;
  title: string;
  /** A task's status, or `planned` before a run. */
  status: TaskStatus | "planned";
  /** The second line: phase, duration, attempt. */
  detail: string;
  tooltip: string;
  critical: boolean;
  actions: GraphAction[];
}

export interface GraphEdgeView {
  from: string;
  to: string;
  /** `depends`: a dependency; `after`: waits for it because both name the same files. */
  kind: "depends" | "after";
  critical: boolean;
}

export interface GraphConflictView {
  /** Stable identity: kind and sides. */
  key: string;
  a: string;
  /** The other task, or undefined when the other side is the base branch. */
  b?: string;
  baseBranch?: string;
  files: string[];
  predicted: boolean;
  serialized: boolean;
}

/** One attempt in the timeline, in seconds since the run started. */
export interface GraphBarView {
  key: string;
  task: string;
  attempt: number;
  start: number;
  /** Undefined while it runs (it grows with the clock). */
  end?: number;
  status: TaskStatus;
}

export interface GraphView {
  kind: "run" | "plan";
  /** `Run <id> — running · 3/8 ✓` or `Plan of 5 prompt files`. */
  title: string;
  runId?: string;
  running: boolean;
  /** Epoch milliseconds of the run's start and end, for the timeline's clock. */
  startedAt?: number;
  finishedAt?: number;
  nodes: GraphNodeView[];
  edges: GraphEdgeView[];
  conflicts: GraphConflictView[];
  bars: GraphBarView[];
}

/** The graph of a run: statuses from the tree, the rest from `gadugi/runGraph` (when it came). */
export function runView(run: RunNode, graph: RunGraph | undefined): GraphView {
  const structure = new Map((graph?.tasks ?? []).map((t) => [t.id, t]));
  const critical = criticalSet(graph?.criticalPath ?? []);
  const running = run.status === "running";
  const nodes: GraphNodeView[] = run.tasks.map((t) => {
    const actions: GraphAction[] = [];
    if (t.attempts > 0) actions.push("showTaskLog");
    if (t.attempts > 0 || t.commits > 0 || t.worktreeExists) actions.push("showTaskDiff");
    if (running && (t.status === "queued" || t.status === "running")) actions.push("cancelTask");
    if (isRetryable(run, t)) actions.push("retryTask");
    if (t.worktreeExists) actions.push("openWorktree");
    actions.push("openPrompt");
    return {
      id: t.id,
      title: t.title || t.id,
      status: t.status,
      detail: nodeDetail(t.status, t.phase, t.durationSeconds, t.attempts),
      tooltip: `${t.title || t.id} (${t.id})\n${taskStateText(t)}\nbranch ${t.branch}`,
      critical: critical.nodes.has(t.id),
      actions,
    };
  });
  const edges: GraphEdgeView[] = [];
  for (const t of run.tasks) {
    for (const d of t.dependsOn) edges.push({ from: d, to: t.id, kind: "depends", critical: critical.edges.has(`${d}\u0000${t.id}`) });
    for (const d of structure.get(t.id)?.after ?? []) {
      if (!t.dependsOn.includes(d)) edges.push({ from: d, to: t.id, kind: "after", critical: critical.edges.has(`${d}\u0000${t.id}`) });
    }
  }
  const started = Date.parse(graph?.startedAt ?? run.startedAt);
  const seconds = (iso: string) => (Date.parse(iso) - started) / 1000;
  const done = { succeeded: 0, total: run.tasks.length };
  for (const t of run.tasks) if (t.status === "succeeded") done.succeeded++;
  return {
    kind: "run",
    title: `Run ${run.runId} — ${run.status} · ${done.succeeded}/${done.total} ✓`,
    runId: run.runId,
    running,
    startedAt: Number.isFinite(started) ? started : undefined,
    finishedAt: run.finishedAt ? Date.parse(run.finishedAt) : undefined,
    nodes,
    edges,
    conflicts: (graph?.conflicts ?? []).map((c) => ({
      key: `${c.predicted ? "p" : "d"}:${c.tasks.join("\u0000")}:${c.baseBranch ?? ""}`,
      a: c.tasks[0],
      b: c.tasks[1],
      baseBranch: c.baseBranch ?? undefined,
      files: c.files,
      predicted: c.predicted,
      serialized: c.serialized,
    })),
    bars: (graph?.attempts ?? []).map((a) => ({
      key: `${a.task}#${a.attempt}`,
      task: a.task,
      attempt: a.attempt,
      start: seconds(a.startedAt),
      end: a.finishedAt ? seconds(a.finishedAt) : undefined,
      status: a.status,
    })),
  };
}

/** The graph of a plan (before a run): every task `planned`, declared conflicts, no timeline. */
export function planView(plan: PlanJson): GraphView {
  const critical = criticalSet(plan.critical_path);
  const edges: GraphEdgeView[] = [];
  for (const t of plan.tasks) {
    for (const d of t.depends_on) edges.push({ from: d, to: t.id, kind: "depends", critical: critical.edges.has(`${d}\u0000${t.id}`) });
    for (const d of t.after) if (!t.depends_on.includes(d)) edges.push({ from: d, to: t.id, kind: "after", critical: false });
  }
  return {
    kind: "plan",
    title: `Plan of ${plan.tasks.length} prompt file(s) — nothing runs yet`,
    running: false,
    nodes: plan.tasks.map((t) => ({
      id: t.id,
      title: t.title || t.id,
      status: "planned",
      detail: t.agent ? `planned · ${t.agent}` : "planned",
      tooltip: `${t.title || t.id} (${t.id})\n${t.prompt_file}${t.files.length ? `\nfiles: ${t.files.join(", ")}` : ""}`,
      critical: critical.nodes.has(t.id),
      actions: ["openPrompt"],
    })),
    edges,
    conflicts: plan.conflicts
      .filter((c) => c.tasks.length >= 2)
      .map((c) => ({ key: `d:${c.tasks.join("\u0000")}:`, a: c.tasks[0], b: c.tasks[1], files: c.paths, predicted: false, serialized: c.serialized })),
    bars: [],
  };
}

function criticalSet(path: readonly string[]): { nodes: Set<string>; edges: Set<string> } {
  const edges = new Set<string>();
  for (let i = 0; i + 1 < path.length; i++) edges.add(`${path[i]}\u0000${path[i + 1]}`);
  return { nodes: new Set(path), edges };
}

function nodeDetail(status: TaskStatus, phase: string | null, seconds: number | null, attempts: number): string {
  const parts: string[] = [status === "running" && phase ? phase : status];
  if (seconds !== null) parts.push(formatDuration(seconds));
  if (attempts > 1) parts.push(`attempt ${attempts}`);
  return parts.join(" · ");
}

/** The shape of the graph: nodes and edges. A new shape is laid out again; anything else is patched. */
export function shapeKey(v: GraphView): string {
  return JSON.stringify([v.nodes.map((n) => n.id), v.edges.map((e) => [e.from, e.to, e.kind, e.critical])]);
}

/** What changed from one view to the next. */
export interface GraphPatch {
  /** The shape changed (or there was nothing before): lay out and draw everything. */
  relayout: boolean;
  /** Nodes whose status, text, critical mark or actions changed. */
  nodes: GraphNodeView[];
  /** Whether the conflicts differ (they are few: redrawn together). */
  conflicts: boolean;
  /** Attempts that are new or changed. */
  bars: GraphBarView[];
  /** Attempts no longer in the view. */
  removedBars: string[];
  /** The title, running flag or run times changed. */
  header: boolean;
}

/** The difference between the view shown (`prev`) and the next one. */
export function diffViews(prev: GraphView | undefined, next: GraphView): GraphPatch {
  if (!prev || prev.kind !== next.kind || prev.runId !== next.runId || shapeKey(prev) !== shapeKey(next)) {
    return { relayout: true, nodes: next.nodes, conflicts: true, bars: next.bars, removedBars: [], header: true };
  }
  const before = new Map(prev.nodes.map((n) => [n.id, n]));
  const nodes = next.nodes.filter((n) => {
    const p = before.get(n.id);
    return (
      !p ||
      p.status !== n.status ||
      p.detail !== n.detail ||
      p.title !== n.title ||
      p.tooltip !== n.tooltip ||
      p.critical !== n.critical ||
      p.actions.join() !== n.actions.join()
    );
  });
  const oldBars = new Map(prev.bars.map((b) => [b.key, b]));
  const bars = next.bars.filter((b) => {
    const p = oldBars.get(b.key);
    return !p || p.start !== b.start || p.end !== b.end || p.status !== b.status;
  });
  const keys = new Set(next.bars.map((b) => b.key));
  return {
    relayout: false,
    nodes,
    conflicts: JSON.stringify(prev.conflicts) !== JSON.stringify(next.conflicts),
    bars,
    removedBars: prev.bars.filter((b) => !keys.has(b.key)).map((b) => b.key),
    header: prev.title !== next.title || prev.running !== next.running || prev.startedAt !== next.startedAt || prev.finishedAt !== next.finishedAt,
  };
}

/**
 * What the extension posts once the page has a view of the same shape: the next view's header
 * and what changed, rather than the whole view (200 tasks are some 100 KB the page would
 * otherwise copy, and collect as garbage, at every update).
 */
export interface GraphUpdate {
  title: string;
  running: boolean;
  startedAt?: number;
  finishedAt?: number;
  /** Nodes that changed (the same ids as before: the shape did not change). */
  nodes: GraphNodeView[];
  /** Every conflict, when they changed. */
  conflicts?: GraphConflictView[];
  /** Attempts that are new or changed. */
  bars: GraphBarView[];
  /** Attempts no longer in the view. */
  removedBars: string[];
}

/**
 * How to bring a page that shows `prev` to `next`: the whole view (nothing shown, or a new
 * shape: it is laid out again), nothing (`same`), or an update.
 */
export function updateFor(prev: GraphView | undefined, next: GraphView): GraphUpdate | "whole" | "same" {
  const patch = diffViews(prev, next);
  if (patch.relayout || !prev) return "whole";
  if (!patch.header && !patch.conflicts && patch.nodes.length === 0 && patch.bars.length === 0 && patch.removedBars.length === 0) return "same";
  return {
    title: next.title,
    running: next.running,
    startedAt: next.startedAt,
    finishedAt: next.finishedAt,
    nodes: patch.nodes,
    conflicts: patch.conflicts ? next.conflicts : undefined,
    bars: patch.bars,
    removedBars: patch.removedBars,
  };
}

/** The view a page showing `prev` shows after an update (what `updateFor(prev, next)` was made from). */
export function applyUpdate(prev: GraphView, u: GraphUpdate): GraphView {
  const nodes = new Map(u.nodes.map((n) => [n.id, n]));
  const removed = new Set(u.removedBars);
  const changed = new Map(u.bars.map((b) => [b.key, b]));
  const bars: GraphBarView[] = [];
  for (const b of prev.bars) {
    if (removed.has(b.key)) continue;
    bars.push(changed.get(b.key) ?? b);
    changed.delete(b.key);
  }
  bars.push(...changed.values());
  return {
    ...prev,
    title: u.title,
    running: u.running,
    startedAt: u.startedAt,
    finishedAt: u.finishedAt,
    nodes: prev.nodes.map((n) => nodes.get(n.id) ?? n),
    conflicts: u.conflicts ?? prev.conflicts,
    bars,
  };
}

/** The page's patch for an update (the same as `diffViews(prev, applyUpdate(prev, u))`, without comparing). */
export function patchOfUpdate(u: GraphUpdate): GraphPatch {
  return { relayout: false, nodes: u.nodes, conflicts: u.conflicts !== undefined, bars: u.bars, removedBars: u.removedBars, header: true };
}

/**
 * Whether the extension should ask `gadugi/runGraph` again: a task's status or attempt count
 * changed (attempts and conflicts change only then), or the run's status did.
 */
export function graphSignature(run: RunNode): string {
  return `${run.status}|${run.tasks.map((t) => `${t.id}:${t.status}:${t.attempts}`).join(",")}`;
}

/**
 * Where an update's time went (ms): working out the patch, the graph's nodes (or its layout),
 * the conflict arcs, the timeline (`timelineRedrawn`: drawn anew rather than patched), and the
 * style and layout the browser did for it. Slow updates are logged with it.
 */
export interface UpdatePhases {
  diff: number;
  graph: number;
  conflicts: number;
  timeline: number;
  timelineRedrawn: boolean;
  styleLayout: number;
}

/** One line of the Gadugi output for an update that took longer than a frame: where its time went. */
export function slowUpdateLine(ms: number, tasks: number, p: UpdatePhases): string {
  const f = (x: number) => x.toFixed(1);
  return (
    `run graph: an update took ${f(ms)} ms at ${tasks} tasks (patch ${f(p.diff)}, graph ${f(p.graph)}, conflicts ${f(p.conflicts)}, ` +
    `timeline ${f(p.timeline)}${p.timelineRedrawn ? " redrawn" : ""}, style and layout ${f(p.styleLayout)} ms)`
  );
}

/** One frame at 60 Hz: the budget of an update that does not make the editor stutter. */
export const FRAME_MS = 16;

/** Summary of update times (ms): count, median, 95th percentile, maximum, and how many took over a frame. */
export function timingSummary(ms: readonly number[]): { count: number; median: number; p95: number; max: number; overFrame: number } {
  if (ms.length === 0) return { count: 0, median: 0, p95: 0, max: 0, overFrame: 0 };
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { count: s.length, median: at(0.5), p95: at(0.95), max: s[s.length - 1], overFrame: s.filter((x) => x > FRAME_MS).length };
}
