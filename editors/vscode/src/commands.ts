// The extension's own commands (ids `gadugi-vscode.*`, distinct from the server's `gadugi.*`
// commands that vscode-languageclient registers). Each works from a tree row (inline action or
// context menu) and from the command palette, where it asks which run or task.

import * as path from "node:path";
import * as vscode from "vscode";

import type { GadugiClient } from "./client";
import { LogView } from "./logView";
import * as model from "./model";
import * as proto from "./protocol";
import { orchestrateArgs } from "./settings";
import type { RunsElement, WorktreeElement, WorktreesTree } from "./trees";

/** Documents the extension shows read-only: task diffs and plans. */
export const DOC_SCHEME = "gadugi";

export class Commands implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly docs = new Map<string, string>();
  private readonly docChanged = new vscode.EventEmitter<vscode.Uri>();
  /** Runs started from this window: resumed automatically after a server crash. */
  readonly startedHere = new Set<string>();

  constructor(
    private readonly client: GadugiClient,
    private readonly worktreesTree: WorktreesTree,
    private readonly logView: LogView,
  ) {
    const register = (id: string, fn: (...args: any[]) => unknown) =>
      this.disposables.push(vscode.commands.registerCommand(`gadugi-vscode.${id}`, (...args: any[]) => this.guard(id, () => fn(...args))));
    register("orchestrateInParallel", (uri?: vscode.Uri, uris?: vscode.Uri[]) => this.orchestrateInParallel(uri, uris));
    register("orchestratePromptFiles", () => this.orchestratePromptFiles());
    register("showPlan", (uri?: vscode.Uri, uris?: vscode.Uri[]) => this.showPlan(uri, uris));
    register("cancelRun", (e?: RunsElement) => this.cancelRun(e));
    register("cancelTask", (e?: RunsElement) => this.cancelTask(e));
    register("retryTask", (e?: RunsElement) => this.retryTask(e));
    register("resume", (e?: RunsElement) => this.resume(e));
    register("openWorktree", (e?: RunsElement | WorktreeElement) => this.openWorktree(e));
    register("showTaskLog", (e?: RunsElement) => this.showTaskLog(e));
    register("showTaskDiff", (e?: RunsElement | WorktreeElement) => this.showTaskDiff(e));
    register("cleanup", () => this.cleanup());
    register("removeWorktree", (e?: WorktreeElement) => this.removeWorktree(e));
    register("emptyPool", () => this.emptyPool());
    register("restartServer", () => this.client.restart());
    register("showServerLog", () => this.client.output.show());
    register("focusRuns", () => vscode.commands.executeCommand("gadugi.runs.focus"));
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(DOC_SCHEME, {
        onDidChange: this.docChanged.event,
        provideTextDocumentContent: (uri) => this.docs.get(uri.toString()) ?? "",
      }),
    );
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.docChanged.dispose();
  }

  /** Runs a command, turning its failure into one clear message. */
  private async guard(id: string, fn: () => unknown): Promise<unknown> {
    try {
      return await fn();
    } catch (e) {
      await this.showError(id, e);
      return undefined;
    }
  }

  private async showError(id: string, e: unknown): Promise<void> {
    const err = e as { message?: string; code?: number; data?: { errors?: proto.InputProblem[] } };
    const problems = err.data?.errors ?? [];
    this.client.output.appendLine(`${id}: ${err.message ?? String(e)}`);
    if (err.code === proto.REQUEST_FAILED && problems.length > 0) {
      const first = problems[0];
      const where = first.file ? `${vscode.workspace.asRelativePath(vscode.Uri.parse(first.file))}${first.line ? `:${first.line}` : ""}: ` : "";
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : "";
      const pick = await vscode.window.showErrorMessage(`Gadugi: ${where}${first.problem} — ${first.fix}${more}`, "Show Problems");
      if (pick === "Show Problems") await vscode.commands.executeCommand("workbench.actions.view.problems");
      return;
    }
    void vscode.window.showErrorMessage(`Gadugi: ${err.message ?? String(e)}`);
  }

  /** Refuses to start agents in an untrusted workspace, saying why and how to change it. */
  private async requireTrust(): Promise<boolean> {
    if (vscode.workspace.isTrusted) return true;
    const pick = await vscode.window.showWarningMessage(
      "Gadugi starts AI agents and runs the commands a repository's gadugi.toml names, so it runs nothing in an untrusted workspace.",
      "Manage Workspace Trust",
    );
    if (pick) await vscode.commands.executeCommand("workbench.trust.manage");
    return false;
  }

  /** Explorer (multi-select; folders mean the prompt files inside) or editor title. */
  async orchestrateInParallel(uri?: vscode.Uri, uris?: vscode.Uri[]): Promise<proto.OrchestrateResult | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const files = selection(uri, uris);
    if (files.length === 0) {
      return this.orchestratePromptFiles();
    }
    return this.start(files);
  }

  /** Quick pick of the workspace's markdown files, prompt-looking ones first and preselected. */
  async orchestratePromptFiles(): Promise<proto.OrchestrateResult | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const picked = await this.pickPromptFiles("Prompt files to run in parallel (each gets its own worktree and agent)");
    return picked && picked.length > 0 ? this.start(picked) : undefined;
  }

  private async start(files: vscode.Uri[]): Promise<proto.OrchestrateResult> {
    await saveDirty(files);
    const config = vscode.workspace.getConfiguration("gadugi", files[0]);
    const args = orchestrateArgs(
      files.map((f) => f.toString()),
      <T>(key: string) => config.get<T>(key),
    );
    const result = await this.client.orchestrate(args);
    this.startedHere.add(result.runId);
    void vscode.commands.executeCommand("gadugi.runs.focus", { preserveFocus: true });
    return result;
  }

  private async pickPromptFiles(title: string): Promise<vscode.Uri[] | undefined> {
    const found = await vscode.workspace.findFiles("**/*.md", "**/{node_modules,.git,target,.gadugi}/**", 2000);
    if (found.length === 0) {
      void vscode.window.showInformationMessage("Gadugi: no markdown prompt files in this workspace.");
      return undefined;
    }
    const known = model.knownPromptFiles(this.client.treeState, (u) => vscode.Uri.parse(u).fsPath);
    const items = await Promise.all(
      found.map(async (uri) => {
        const text = await readText(uri);
        const prompt = model.isPromptFile(uri.fsPath, text, known);
        return { uri, prompt, label: vscode.workspace.asRelativePath(uri), description: firstHeading(text), picked: prompt };
      }),
    );
    items.sort((a, b) => Number(b.prompt) - Number(a.prompt) || a.label.localeCompare(b.label));
    const picks = await vscode.window.showQuickPick(items, { canPickMany: true, title, matchOnDescription: true });
    return picks?.map((p) => p.uri);
  }

  async showPlan(uri?: vscode.Uri, uris?: vscode.Uri[]): Promise<void> {
    let files = selection(uri, uris);
    if (files.length === 0) files = (await this.pickPromptFiles("Prompt files to plan")) ?? [];
    if (files.length === 0) return;
    await saveDirty(files);
    const plan = await this.client.plan({ files: files.map((f) => f.toString()) });
    const doc = vscode.Uri.from({ scheme: DOC_SCHEME, path: "/Gadugi plan.md" });
    this.setDoc(doc, model.planMarkdown(plan));
    await vscode.commands.executeCommand("markdown.showPreview", doc);
  }

  async cancelRun(e?: RunsElement): Promise<void> {
    const run = e?.run ?? (await this.pickRun("Run to cancel", (r) => r.status === "running"));
    if (!run) return;
    const r = await this.client.cancelRun({ runId: run.runId });
    if (!r.cancelled) void vscode.window.showInformationMessage(`Gadugi: run ${run.runId} had already ended.`);
  }

  async cancelTask(e?: RunsElement): Promise<void> {
    const t = e?.kind === "task" ? e : await this.pickTask("Task to cancel", (r, t) => r.status === "running" && !isFinal(t));
    if (!t) return;
    const r = await this.client.cancelTask({ runId: t.run.runId, taskId: t.task.id });
    if (!r.cancelled) void vscode.window.showInformationMessage(`Gadugi: task ${t.task.id} had already ended.`);
  }

  async retryTask(e?: RunsElement): Promise<void> {
    if (!(await this.requireTrust())) return;
    const t = e?.kind === "task" ? e : await this.pickTask("Task to run again", model.isRetryable);
    if (!t) return;
    const r = await this.client.retryTask({ runId: t.run.runId, taskId: t.task.id });
    this.startedHere.add(r.runId);
  }

  async resume(e?: RunsElement): Promise<void> {
    if (!(await this.requireTrust())) return;
    const run = e?.run ?? (await this.pickRun("Interrupted run to resume", model.isOrphaned));
    if (!run) return;
    const r = await this.client.resume({ runId: run.runId });
    this.startedHere.add(r.runId);
  }

  /** Resumes the runs this window started whose driver died with a crashed server. */
  async resumeOrphans(): Promise<void> {
    if (!vscode.workspace.isTrusted) return;
    for (const run of this.client.treeState?.runs ?? []) {
      if (this.startedHere.has(run.runId) && model.isOrphaned(run)) {
        this.client.output.appendLine(`resuming run ${run.runId}: its driver stopped with the server`);
        try {
          await this.client.resume({ runId: run.runId });
        } catch (e) {
          await this.showError("resume", e);
        }
      }
    }
  }

  async openWorktree(e?: RunsElement | WorktreeElement): Promise<void> {
    let folder: string | undefined;
    if (e?.kind === "worktree") folder = e.worktree.path;
    else if (e?.kind === "task") folder = e.task.worktree;
    else folder = (await this.pickTask("Worktree to open", (_r, t) => t.worktreeExists))?.task.worktree;
    if (!folder) return;
    await vscode.commands.executeCommand("vscode.openFolder", vscode.Uri.file(folder), { forceNewWindow: true });
  }

  async showTaskLog(e?: RunsElement): Promise<void> {
    const t = e?.kind === "task" ? e : await this.pickTask("Task whose log to follow", (_r, t) => t.attempts > 0);
    if (!t) return;
    this.logView.follow(t.run, t.task);
  }

  async showTaskDiff(e?: RunsElement | WorktreeElement): Promise<void> {
    let ref: proto.TaskRef | undefined;
    if (e?.kind === "worktree") ref = { runId: e.worktree.runId, taskId: e.worktree.taskId };
    else if (e?.kind === "task") ref = { runId: e.run.runId, taskId: e.task.id };
    else {
      const t = await this.pickTask("Task whose changes to show", (_r, t) => t.attempts > 0);
      if (t) ref = { runId: t.run.runId, taskId: t.task.id };
    }
    if (!ref) return;
    const diff = await this.client.taskDiff(ref);
    const doc = vscode.Uri.from({ scheme: DOC_SCHEME, path: `/${ref.runId}/${ref.taskId}.diff` });
    this.setDoc(doc, diff.diff);
    const shown = await vscode.workspace.openTextDocument(doc);
    await vscode.languages.setTextDocumentLanguage(shown, "diff");
    await vscode.window.showTextDocument(shown, { preview: true });
  }

  /** Removes the worktrees of finished tasks after showing what would go. */
  async cleanup(): Promise<void> {
    const dry = await this.client.cleanup({ dryRun: true });
    const removable = dry.lines.filter((l) => l.startsWith("would remove")).length;
    this.client.output.appendLine(["gadugi cleanup --dry-run:", ...dry.lines].join("\n  "));
    if (removable === 0) {
      void vscode.window.showInformationMessage(`Gadugi: no worktree to remove. ${dry.lines[dry.lines.length - 1] ?? ""}`);
      return;
    }
    const pick = await vscode.window.showWarningMessage(
      `Remove ${removable} worktree folder(s) of finished tasks? Their branches stay; worktrees with uncommitted changes are kept.`,
      { modal: true, detail: dry.lines.join("\n") },
      "Remove",
      "Remove and Delete Merged Branches",
    );
    if (!pick) return;
    const r = await this.client.cleanup({ deleteBranches: pick !== "Remove" });
    this.client.output.appendLine(["gadugi cleanup:", ...r.lines].join("\n  "));
    void vscode.window.showInformationMessage(`Gadugi: ${r.lines[r.lines.length - 1]}`);
    await this.worktreesTree.refresh();
  }

  /** Empties the warm worktree pool(s) after saying what goes: pooled worktrees hold no work. */
  async emptyPool(): Promise<void> {
    await this.worktreesTree.refresh();
    const pool = this.worktreesTree.pool;
    if (pool.length === 0) {
      void vscode.window.showInformationMessage("Gadugi: the worktree pool is empty.");
      return;
    }
    const bytes = pool.reduce((sum, e) => sum + e.size, 0);
    const pick = await vscode.window.showWarningMessage(
      `Remove the ${pool.length} pooled worktree(s) (${model.formatBytes(bytes)})? They hold no work (detached and clean); the next tasks start with fresh worktrees and their first builds start from nothing.`,
      { modal: true, detail: pool.map((e) => e.path).join("\n") },
      "Empty Pool",
    );
    if (pick !== "Empty Pool") return;
    const r = await this.client.poolPrune({ all: true });
    this.client.output.appendLine(["gadugi pool prune --all:", ...r.lines].join("\n  "));
    const kept = r.lines.filter((l) => l.startsWith("kept"));
    if (kept.length > 0) void vscode.window.showWarningMessage(`Gadugi: ${kept.join("; ")}`);
    else void vscode.window.showInformationMessage(`Gadugi: the worktree pool is empty (${r.lines.length} removed).`);
    await this.worktreesTree.refresh();
  }

  /** Removes one worktree; one with uncommitted changes only when the user agrees to commit them. */
  async removeWorktree(e?: WorktreeElement): Promise<void> {
    const w = e?.worktree;
    if (!w) return;
    // The server names repositories by workspace folder: the one inside this repository.
    const repo = vscode.Uri.parse(w.repo).fsPath;
    const folder = vscode.workspace.workspaceFolders
      ?.find((f) => f.uri.fsPath === repo || f.uri.fsPath.startsWith(repo + path.sep))
      ?.uri.toString();
    let r = await this.client.cleanup({ folder, runId: w.runId, taskId: w.taskId });
    if (r.lines.some((l) => l.startsWith("kept")) && w.dirty) {
      const pick = await vscode.window.showWarningMessage(
        `${w.path} has uncommitted changes. Commit them onto ${w.branch} and remove the worktree?`,
        { modal: true },
        "Commit and Remove",
      );
      if (pick !== "Commit and Remove") return;
      r = await this.client.cleanup({ folder, runId: w.runId, taskId: w.taskId, force: true });
    }
    const kept = r.lines.find((l) => l.startsWith("kept"));
    if (kept) void vscode.window.showWarningMessage(`Gadugi: ${kept.replace(/^kept\s+/, "kept ")}`);
    await this.worktreesTree.refresh();
  }

  private setDoc(uri: vscode.Uri, text: string): void {
    this.docs.set(uri.toString(), text);
    this.docChanged.fire(uri);
  }

  private async pickRun(title: string, filter: (r: proto.RunNode) => boolean): Promise<proto.RunNode | undefined> {
    const runs = (this.client.treeState?.runs ?? []).filter(filter);
    if (runs.length === 0) {
      void vscode.window.showInformationMessage(`Gadugi: no run fits (${title.toLowerCase()}).`);
      return undefined;
    }
    if (runs.length === 1) return runs[0];
    const pick = await vscode.window.showQuickPick(
      runs.map((run) => ({ label: `Run ${run.runId}`, description: model.runDescription(run, Date.now()), run })),
      { title },
    );
    return pick?.run;
  }

  private async pickTask(
    title: string,
    filter: (r: proto.RunNode, t: proto.TaskNode) => boolean,
  ): Promise<{ kind: "task"; run: proto.RunNode; task: proto.TaskNode } | undefined> {
    const items = (this.client.treeState?.runs ?? []).flatMap((run) =>
      run.tasks
        .filter((task) => filter(run, task))
        .map((task) => ({ label: task.id, description: `${model.taskStateText(task)} · run ${run.runId}`, run, task })),
    );
    if (items.length === 0) {
      void vscode.window.showInformationMessage(`Gadugi: no task fits (${title.toLowerCase()}).`);
      return undefined;
    }
    const pick = items.length === 1 ? items[0] : await vscode.window.showQuickPick(items, { title, matchOnDescription: true });
    return pick ? { kind: "task", run: pick.run, task: pick.task } : undefined;
  }
}

/** The files a menu command was invoked on: the multi-selection, else the one clicked, else the active editor's. */
export function selection(uri?: vscode.Uri, uris?: vscode.Uri[]): vscode.Uri[] {
  if (uris && uris.length > 0) return uris;
  if (uri instanceof vscode.Uri) return [uri];
  const active = vscode.window.activeTextEditor?.document.uri;
  return active && active.scheme === "file" && active.fsPath.endsWith(".md") ? [active] : [];
}

function isFinal(t: proto.TaskNode): boolean {
  return t.status !== "queued" && t.status !== "running";
}

/** Saves unsaved prompt files first: the run reads them from disk. */
async function saveDirty(files: vscode.Uri[]): Promise<void> {
  const wanted = new Set(files.map((f) => f.fsPath));
  for (const doc of vscode.workspace.textDocuments) {
    if (doc.isDirty && (wanted.has(doc.uri.fsPath) || [...wanted].some((w) => doc.uri.fsPath.startsWith(w + path.sep)))) {
      await doc.save();
    }
  }
}

async function readText(uri: vscode.Uri): Promise<string> {
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)).slice(0, 4096);
  } catch {
    return "";
  }
}

function firstHeading(text: string): string {
  return /^#\s+(.+)$/m.exec(text)?.[1] ?? "";
}
