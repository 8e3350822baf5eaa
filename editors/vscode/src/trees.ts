// The two tree views of the Gadugi container: Runs (runs → tasks, with inline actions) and
// Worktrees (every Gadugi worktree on disk). Both are redrawn from the server's
// `gadugi/treeChanged` notifications, never by polling.

import * as vscode from "vscode";

import type { GadugiClient } from "./client";
import * as model from "./model";
import type { PoolEntryNode, RunNode, TaskNode, TreeState, WorktreeNode } from "./protocol";

/** A row of the Runs view. */
export type RunsElement = { kind: "run"; run: RunNode } | { kind: "task"; run: RunNode; task: TaskNode };

export class RunsTree implements vscode.TreeDataProvider<RunsElement>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunsElement | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private state: TreeState | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** Redraws the rows while a task waits for an answer (their deadline texts). */
  private clock: NodeJS.Timeout | undefined;

  constructor(client: GadugiClient) {
    this.disposables.push(client.onDidChangeTree((s) => this.update(s)));
  }

  update(state: TreeState): void {
    this.state = state;
    void vscode.commands.executeCommand("setContext", "gadugi.hasRuns", state.runs.length > 0);
    this.changed.fire(undefined);
    // A task waiting for the person says when its deadline answers ("denied in 8m"); nothing
    // else changes the tree while it waits, so redraw each half minute until none waits.
    const waiting = state.runs.some((r) => r.tasks.some(model.isWaitingForApproval));
    if (waiting && !this.clock) this.clock = setInterval(() => this.changed.fire(undefined), 30_000);
    if (!waiting && this.clock) {
      clearInterval(this.clock);
      this.clock = undefined;
    }
  }

  getChildren(element?: RunsElement): RunsElement[] {
    if (!element) return (this.state?.runs ?? []).map((run) => ({ kind: "run", run }));
    if (element.kind === "run") return element.run.tasks.map((task) => ({ kind: "task", run: element.run, task }));
    return [];
  }

  getParent(element: RunsElement): RunsElement | undefined {
    return element.kind === "task" ? { kind: "run", run: element.run } : undefined;
  }

  getTreeItem(element: RunsElement): vscode.TreeItem {
    return element.kind === "run" ? this.runItem(element.run) : taskItem(element.run, element.task);
  }

  /** The rows as the view shows them (for the extension-host tests). */
  items(): { label: string; description: string; children: { label: string; description: string }[] }[] {
    return this.getChildren().map((r) => {
      const item = this.getTreeItem(r);
      return {
        label: String(item.label),
        description: String(item.description ?? ""),
        children: this.getChildren(r).map((t) => {
          const ti = this.getTreeItem(t);
          return { label: String(ti.label), description: String(ti.description ?? "") };
        }),
      };
    });
  }

  private runItem(run: RunNode): vscode.TreeItem {
    const newest = this.state?.runs[0]?.runId === run.runId;
    const item = new vscode.TreeItem(
      `Run ${run.runId}`,
      newest || run.status === "running"
        ? vscode.TreeItemCollapsibleState.Expanded
        : vscode.TreeItemCollapsibleState.Collapsed,
    );
    item.id = `run:${run.runId}`;
    item.description = model.runDescription(run, Date.now());
    const icon = model.runIcon(run);
    item.iconPath = new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
    item.contextValue = model.runContext(run);
    const repo = vscode.Uri.parse(run.repo).fsPath;
    item.tooltip = new vscode.MarkdownString(
      [
        `**Run ${run.runId}** — ${model.isOrphaned(run) ? "interrupted: no process drives it (run Gadugi: Resume)" : run.status}`,
        "",
        `- repository: \`${repo}\``,
        `- started: ${new Date(run.startedAt).toLocaleString()}`,
        run.finishedAt ? `- finished: ${new Date(run.finishedAt).toLocaleString()}` : `- at most ${run.maxParallel} agents at once`,
        `- ${run.owned ? "driven by this window" : run.driverAlive ? "driven by another gadugi process (CLI)" : "no driver"}`,
        "",
        ...run.tasks.map((t) => `- ${model.taskLine(t)}`),
      ].join("\n"),
    );
    item.accessibilityInformation = { label: `Run ${run.runId}, ${item.description}` };
    return item;
  }

  dispose(): void {
    if (this.clock) clearInterval(this.clock);
    this.changed.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function taskItem(run: RunNode, task: TaskNode): vscode.TreeItem {
  const item = new vscode.TreeItem(task.id, vscode.TreeItemCollapsibleState.None);
  item.id = `task:${run.runId}/${task.id}`;
  item.description = model.taskDescription(task);
  const icon = model.taskIcon(task);
  item.iconPath = new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
  item.tooltip = new vscode.MarkdownString(model.taskTooltip(task));
  item.contextValue = model.taskContext(run, task);
  item.accessibilityInformation = { label: `Task ${task.id}, ${model.taskStateText(task)}` };
  item.command = {
    command: "vscode.open",
    title: "Open Prompt File",
    arguments: [vscode.Uri.parse(task.promptFile)],
  };
  return item;
}

/** A task's worktree row of the Worktrees view. */
export type WorktreeElement = { kind: "worktree"; worktree: WorktreeNode };
/** A warm pool entry's row of the Worktrees view (after the task worktrees). */
export type PoolElement = { kind: "pool"; entry: PoolEntryNode };

export class WorktreesTree implements vscode.TreeDataProvider<WorktreeElement | PoolElement>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<WorktreeElement | PoolElement | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private list: WorktreeNode[] = [];
  private poolEntries: PoolEntryNode[] = [];
  private signature = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly client: GadugiClient) {
    this.disposables.push(client.onDidChangeTree((s) => this.onTree(s)));
  }

  /** Asks the server again when worktrees may have come or gone (debounced). */
  private onTree(state: TreeState): void {
    const sig = JSON.stringify(state.runs.map((r) => [r.runId, r.tasks.map((t) => [t.status, t.worktreeExists])]));
    if (sig === this.signature) return;
    this.signature = sig;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), 300);
  }

  /** Reloads the list from the server. */
  async refresh(): Promise<void> {
    try {
      const answer = await this.client.worktrees();
      this.list = answer.worktrees;
      this.poolEntries = answer.pool;
    } catch (e) {
      this.client.output.appendLine(`gadugi/worktrees failed: ${(e as Error).message}`);
      this.signature = ""; // ask again at the next change
      return;
    }
    void vscode.commands.executeCommand("setContext", "gadugi.hasWorktrees", this.list.length > 0);
    void vscode.commands.executeCommand("setContext", "gadugi.hasPool", this.poolEntries.length > 0);
    this.changed.fire(undefined);
  }

  /** The worktrees shown now. */
  get worktrees(): readonly WorktreeNode[] {
    return this.list;
  }

  /** The warm pool's entries shown now. */
  get pool(): readonly PoolEntryNode[] {
    return this.poolEntries;
  }

  getChildren(element?: WorktreeElement | PoolElement): (WorktreeElement | PoolElement)[] {
    if (element) return [];
    return [
      ...this.list.map((worktree): WorktreeElement => ({ kind: "worktree", worktree })),
      ...this.poolEntries.map((entry): PoolElement => ({ kind: "pool", entry })),
    ];
  }

  getTreeItem(element: WorktreeElement | PoolElement): vscode.TreeItem {
    return element.kind === "pool" ? poolItem(element.entry) : worktreeItem(element.worktree);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function worktreeItem(w: WorktreeNode): vscode.TreeItem {
  const item = new vscode.TreeItem(w.taskId, vscode.TreeItemCollapsibleState.None);
  item.id = `worktree:${w.path}`;
  item.resourceUri = vscode.Uri.file(w.path);
  item.iconPath = new vscode.ThemeIcon(w.dirty ? "folder-active" : "folder");
  item.description = [w.taskStatus, w.dirty ? "uncommitted changes" : "clean", w.branch].join(" · ");
  item.tooltip = new vscode.MarkdownString(
    `\`${w.path}\`\n\n- task \`${w.taskId}\` of run ${w.runId}: ${w.taskStatus}\n- branch \`${w.branch}\`\n- ${w.dirty ? "has uncommitted changes (kept unless you confirm)" : "no uncommitted changes"}`,
  );
  item.contextValue = "worktree";
  return item;
}

/** A pooled worktree: what it is, why it is kept, and how to empty the pool. */
function poolItem(e: PoolEntryNode): vscode.TreeItem {
  const name = e.path.split(/[\\/]/).pop() ?? e.path;
  const item = new vscode.TreeItem(`pool ${name}`, vscode.TreeItemCollapsibleState.None);
  item.id = `pool:${e.path}`;
  item.resourceUri = vscode.Uri.file(e.path);
  item.iconPath = new vscode.ThemeIcon("archive");
  item.description = model.poolEntryDescription(e);
  item.tooltip = new vscode.MarkdownString(
    `\`${e.path}\`\n\nA warm worktree of the pool (\`[pool]\` of gadugi.toml): detached and clean, it holds no work. ` +
      `The next task takes it and keeps its build outputs (\`keep\`), so its first build is incremental. ` +
      `**Empty Worktree Pool** removes the pool's worktrees.`,
  );
  item.contextValue = "poolEntry";
  return item;
}
