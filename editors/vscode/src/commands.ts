// The extension's own commands (ids `gadugi-vscode.*`, distinct from the server's `gadugi.*`
// commands that vscode-languageclient registers). Each works from a tree row (inline action or
// context menu) and from the command palette, where it asks which run or task.

import * as fs from "node:fs";
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
    /** Remembers the last verify command of Merge Run, per workspace. */
    private readonly memory?: vscode.Memento,
  ) {
    // Every command that needs the server first waits for it (a command given while the
    // server starts runs once it is there, never fails for being early).
    const register = (id: string, fn: (...args: any[]) => unknown, needsServer = true) =>
      this.disposables.push(
        vscode.commands.registerCommand(`gadugi-vscode.${id}`, (...args: any[]) =>
          this.guard(id, async () => {
            if (needsServer) await this.client.ready();
            return fn(...args);
          }),
        ),
      );
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
    register("mergeRun", (e?: RunsElement, options?: { verify?: string }) => this.mergeRun(e, options));
    register("openPullRequests", (e?: RunsElement, options?: { remote?: string; base?: string }) => this.openPullRequests(e, options));
    register("showReport", (e?: RunsElement) => this.showReport(e));
    register("restartServer", () => this.client.restart(), false);
    register("showServerLog", () => this.client.output.show(), false);
    register("focusRuns", () => vscode.commands.executeCommand("gadugi.runs.focus"), false);
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
      const text = `Gadugi: ${where}${first.problem} — ${first.fix}${more}`;
      // Problems about files are in the Problems panel too; others (gh, a remote) are not.
      if (!problems.some((p) => p.file)) {
        void vscode.window.showErrorMessage(text);
        return;
      }
      const pick = await vscode.window.showErrorMessage(text, "Show Problems");
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

  /**
   * "Merge Run": builds `gadugi/integrate/<run>` from the run's succeeded task branches in
   * dependency order (each merge verified by the command the user gives, if any), in temporary
   * worktrees: the user's checkout and branch never move. A conflict names the task and files
   * and says where to resolve it.
   */
  async mergeRun(e?: RunsElement, options?: { verify?: string }): Promise<proto.MergeResult | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const run = e?.run ?? (await this.pickRun("Run to merge into its integration branch", hasSucceededTask));
    if (!run) return undefined;
    let verify = options?.verify;
    if (verify === undefined) {
      verify = await vscode.window.showInputBox({
        title: `Merge run ${run.runId}`,
        prompt: "A command that must pass after each merge (run in a temporary worktree of the integration branch); empty for none",
        placeHolder: "e.g. cargo test",
        value: this.memory?.get<string>(VERIFY_KEY) ?? "",
        ignoreFocusOut: true,
      });
      if (verify === undefined) return undefined;
      await this.memory?.update(VERIFY_KEY, verify);
    }
    const result = await this.withSteps(`Merging run ${run.runId}`, (step) =>
      this.client.mergeRun({ runId: run.runId, verify: verify.trim() || null }, step),
    );
    this.client.output.appendLine([`Merge Run ${run.runId}:`, ...result.lines].join("\n  "));
    const merged = result.steps.filter((x) => x.outcome === "merged" || x.outcome === "already_merged").length;
    const stop = result.steps.find((x) => x.outcome !== "merged" && x.outcome !== "already_merged");
    if (result.complete) {
      void vscode.window
        .showInformationMessage(
          `Gadugi: ${result.integrationBranch} has the work of ${merged} task(s), in dependency order${verify.trim() ? ", each merge verified" : ""}. Your checkout and branch did not move.`,
          "Show Report",
          "Open Pull Requests",
        )
        .then((pick) => {
          if (pick === "Show Report") void vscode.commands.executeCommand("gadugi-vscode.showReport", e ?? { kind: "run", run });
          if (pick === "Open Pull Requests") void vscode.commands.executeCommand("gadugi-vscode.openPullRequests", e ?? { kind: "run", run });
        });
    } else if (stop?.outcome === "conflict") {
      this.offerConflict(run, result, stop);
    } else {
      void vscode.window.showWarningMessage(
        `Gadugi: ${stop?.error ?? "the merge stopped early"}. ${result.integrationBranch} stays at its last good merge; your checkout did not move. Fix the task's branch, then run Merge Run again to continue.`,
      );
    }
    return result;
  }

  /** Names the conflicting task and files, says where to resolve them, offers to open them. */
  private offerConflict(run: proto.RunNode, result: proto.MergeResult, stop: proto.MergeStepNode): void {
    const repo = vscode.Uri.parse(run.repo).fsPath;
    const folder = path.join(path.dirname(repo), `${path.basename(repo)}-integrate-${run.runId}`);
    const commands = `git worktree add ${folder} ${result.integrationBranch} && cd ${folder} && git merge ${stop.branch}`;
    const task = run.tasks.find((t) => t.id === stop.taskId);
    void vscode.window
      .showWarningMessage(
        `Gadugi: merging ${stop.branch} (task ${stop.taskId}) into ${result.integrationBranch} conflicts in ${stop.files.join(", ")}. ` +
          `Your checkout is untouched and ${result.integrationBranch} stays at its last good merge. Resolve it in a worktree of the integration branch ` +
          `(${commands}; fix, commit), then run Merge Run again to merge the rest.`,
        "Open Conflicting Files",
        "Copy Commands",
      )
      .then(async (pick) => {
        if (pick === "Copy Commands") await vscode.env.clipboard.writeText(commands);
        if (pick !== "Open Conflicting Files") return;
        // The task's side of each file: in its worktree while it is there (editable); a
        // succeeded task's worktree is usually gone, and then its diff shows those files.
        const inWorktree = task?.worktreeExists ? stop.files.map((f) => path.join(task.worktree, f)).filter((f) => fs.existsSync(f)) : [];
        if (task && inWorktree.length === 0) {
          await vscode.commands.executeCommand("gadugi-vscode.showTaskDiff", { kind: "task", run, task });
          return;
        }
        for (const f of inWorktree) {
          await vscode.window.showTextDocument(vscode.Uri.file(f), { preview: false, preserveFocus: true });
        }
      });
  }

  /**
   * "Open Pull Requests": the checks `gadugi pr` makes first (gh installed and logged in, a
   * remote), then one pull request per succeeded task; the links are shown when done.
   */
  async openPullRequests(e?: RunsElement, options?: { remote?: string; base?: string }): Promise<proto.PullRequestsResult | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const run = e?.run ?? (await this.pickRun("Run whose pull requests to open", hasSucceededTask));
    if (!run) return undefined;
    const result = await this.withSteps(`Opening pull requests of run ${run.runId}`, (step) =>
      this.client.openPullRequests({ runId: run.runId, remote: options?.remote ?? null, base: options?.base ?? null }, step),
    );
    this.client.output.appendLine([`Open Pull Requests ${run.runId}:`, ...result.lines].join("\n  "));
    const doc = vscode.Uri.from({ scheme: DOC_SCHEME, path: `/${run.runId}/Pull requests.md` });
    this.setDoc(doc, pullRequestsMarkdown(run.runId, result));
    await vscode.commands.executeCommand("markdown.showPreview", doc);
    const text = `Gadugi: ${result.pullRequests.length} pull request(s) opened against ${result.base}${result.failed.length ? `, ${result.failed.length} failed (see the list)` : ""}.`;
    if (result.failed.length) void vscode.window.showWarningMessage(text);
    else void vscode.window.showInformationMessage(text);
    return result;
  }

  /** "Show Report": writes the run's report and opens it in the Markdown preview (tables, timeline picture). */
  async showReport(e?: RunsElement): Promise<proto.ReportResult | undefined> {
    const run = e?.run ?? (await this.pickRun("Run whose report to show", () => true));
    if (!run) return undefined;
    const report = await this.client.report({ runId: run.runId });
    await vscode.commands.executeCommand("markdown.showPreview", vscode.Uri.file(report.markdown));
    return report;
  }

  /** Runs a server command that reports steps: a progress notification with each step, and a spinner in the status bar. */
  private withSteps<T>(title: string, work: (step: (line: string) => void) => Promise<T>): Promise<T> {
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Gadugi: ${title}` }, (bar) =>
        vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Gadugi: ${title}` }, (note) =>
          work((line) => {
            note.report({ message: line });
            bar.report({ message: line });
          }),
        ),
      ),
    );
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

/** Where Merge Run keeps the last verify command (workspace state). */
const VERIFY_KEY = "gadugi.merge.verify";

/** An ended run with something to merge or to open pull requests for. */
function hasSucceededTask(run: proto.RunNode): boolean {
  return run.status !== "running" && run.tasks.some((t) => t.status === "succeeded");
}

/** The pull requests of a run, as a page with links. */
export function pullRequestsMarkdown(runId: string, r: proto.PullRequestsResult): string {
  const lines = [`# Pull requests of run ${runId}`, "", `Pushed to \`${r.remote}\`, against \`${r.base}\`.`, ""];
  for (const p of r.pullRequests) lines.push(`- \`${p.taskId}\` (\`${p.branch}\`): [${p.url}](${p.url})`);
  for (const f of r.failed) lines.push(`- \`${f.taskId}\`: not opened — ${f.error}`);
  for (const s of r.skipped) lines.push(`- ${s}`);
  return lines.join("\n") + "\n";
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
