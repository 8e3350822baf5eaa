// "Gadugi: Show Run Graph": a webview beside the editor with a run's dependency graph, its
// conflicts and the timeline of its attempts, live from `gadugi/treeChanged` (statuses) and
// `gadugi/runGraph` (asked again only when a task's status or attempt count changes); or the
// graph of a plan, before a run. The page is strict (CSP `default-src 'none'`, one script with
// a nonce, styles from media/graph.css, nothing from the network). A click on a node posts an
// action, run here as the same `gadugi-vscode.*` command the Runs view's row offers. The
// webview reports the time of each update; they are logged to the Gadugi output.

import * as crypto from "node:crypto";
import * as vscode from "vscode";

import type { GadugiClient } from "./client";
import { FRAME_MS, graphSignature, planView, runView, slowUpdateLine, timingSummary, updateFor, type GraphView } from "./graphModel";
import { GRAPH_PAGE_BODY } from "./graphPage";
import type { FromWebview, ToWebview } from "./graphWebview";
import * as model from "./model";
import type { PlanJson, RunGraph, RunNode, TreeState } from "./protocol";
import type { RunsElement } from "./trees";

type Target = { kind: "run"; runId: string } | { kind: "plan"; plan: PlanJson };

/** Update times the webview reported, for the log. */
export interface GraphTimings {
  /** Patches (no new layout), in ms. */
  updates: number[];
  /** Full layouts and drawings, in ms. */
  layouts: number[];
  /** Nodes in the latest update. */
  tasks: number;
  /** Updates over a frame logged with their phases since the panel showed a new target (at most SLOW_LOGGED). */
  slowLogged: number;
}

/** Slow updates logged one by one per target shown; after that only the summary counts them. */
const SLOW_LOGGED = 20;

export class GraphPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private target: Target | undefined;
  private graph: RunGraph | undefined;
  private signature = "";
  private fetching = false;
  private fetchAgain = false;
  private ready = false;
  private seq = 0;
  /** The view the page has (updates are made against it); undefined until it has one. */
  private shown: GraphView | undefined;
  private lastLog = 0;
  readonly timings: GraphTimings = { updates: [], layouts: [], tasks: 0, slowLogged: 0 };
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly client: GadugiClient,
  ) {
    this.disposables.push(
      client.onDidChangeTree((state) => this.onTree(state)),
      vscode.commands.registerCommand("gadugi-vscode.showRunGraph", (arg?: RunsElement | vscode.Uri, uris?: vscode.Uri[]) =>
        this.command(arg, uris).catch((e: Error) => {
          client.output.appendLine(`showRunGraph: ${e.message}`);
          void vscode.window.showErrorMessage(`Gadugi: ${e.message}`);
        }),
      ),
    );
  }

  /** A run row, prompt files (the Explorer: their plan), or from the palette a pick. */
  private async command(arg?: RunsElement | vscode.Uri, uris?: vscode.Uri[]): Promise<void> {
    if (arg && "kind" in arg) return this.showRun(arg.run.runId);
    const files = uris && uris.length > 0 ? uris : arg instanceof vscode.Uri ? [arg] : [];
    if (files.length > 0) return this.showPlan(files);
    const runs = this.client.treeState?.runs ?? [];
    const planItem = { label: "$(type-hierarchy) Plan of prompt files…", description: "the graph before a run", runId: undefined as string | undefined };
    const items = [
      ...runs.map((r) => ({ label: `Run ${r.runId}`, description: model.runDescription(r, Date.now()), runId: r.runId as string | undefined })),
      planItem,
    ];
    const pick = runs.length === 0 ? planItem : await vscode.window.showQuickPick(items, { title: "Run graph of" });
    if (!pick) return;
    if (pick.runId) return this.showRun(pick.runId);
    const found = await vscode.workspace.findFiles("**/*.md", "**/{node_modules,.git,target,.gadugi}/**", 2000);
    const known = model.knownPromptFiles(this.client.treeState, (u) => vscode.Uri.parse(u).fsPath);
    const candidates = await Promise.all(
      found.map(async (uri) => {
        const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)).slice(0, 4096);
        return { uri, label: vscode.workspace.asRelativePath(uri), picked: model.isPromptFile(uri.fsPath, text, known) };
      }),
    );
    const picked = await vscode.window.showQuickPick(candidates, { canPickMany: true, title: "Prompt files to plan" });
    if (picked && picked.length > 0) await this.showPlan(picked.map((p) => p.uri));
  }

  /** Shows run `runId`, live. */
  async showRun(runId: string): Promise<void> {
    this.target = { kind: "run", runId };
    this.resetTimings();
    this.graph = undefined;
    this.signature = "";
    this.open(`Gadugi Run ${runId}`);
    if (this.client.treeState) this.onTree(this.client.treeState);
  }

  /** Shows the plan of prompt files (nothing runs). */
  async showPlan(files: vscode.Uri[]): Promise<void> {
    const plan = await this.client.plan({ files: files.map((f) => f.toString()) });
    this.target = { kind: "plan", plan };
    this.resetTimings();
    this.graph = undefined;
    this.open("Gadugi Plan");
    this.post();
  }

  private resetTimings(): void {
    this.logTimings(true);
    this.timings.updates.length = 0;
    this.timings.layouts.length = 0;
    this.timings.slowLogged = 0;
  }

  private open(title: string): void {
    // Beside the editor when there is one; else where the editors go.
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    if (this.panel) {
      this.panel.title = title;
      this.panel.reveal(this.panel.viewColumn ?? column, true);
      return;
    }
    const media = vscode.Uri.joinPath(this.context.extensionUri, "media");
    const dist = vscode.Uri.joinPath(this.context.extensionUri, "dist");
    const panel = vscode.window.createWebviewPanel(
      "gadugi.runGraph",
      title,
      { viewColumn: column, preserveFocus: true },
      { enableScripts: true, localResourceRoots: [media, dist], retainContextWhenHidden: true },
    );
    panel.iconPath = vscode.Uri.joinPath(media, "gadugi.svg");
    this.ready = false;
    this.shown = undefined;
    panel.webview.html = page(panel.webview, media, dist);
    panel.webview.onDidReceiveMessage((m: FromWebview) => this.onMessage(m), undefined, this.disposables);
    panel.onDidDispose(() => {
      this.logTimings(true);
      this.panel = undefined;
      this.target = undefined;
    }, undefined, this.disposables);
    this.panel = panel;
  }

  private onMessage(m: FromWebview): void {
    if (m.type === "ready") {
      this.ready = true;
      this.shown = undefined;
      this.post();
    } else if (m.type === "timing") {
      (m.relayout ? this.timings.layouts : this.timings.updates).push(m.ms);
      this.timings.tasks = m.tasks;
      if (!m.relayout && m.ms > FRAME_MS && this.timings.slowLogged < SLOW_LOGGED) {
        this.timings.slowLogged++;
        this.client.output.appendLine(slowUpdateLine(m.ms, m.tasks, m.phases));
      }
      this.logTimings(false);
    } else if (m.type === "action") {
      void this.act(m.action, m.taskId);
    } else if (m.type === "refused") {
      this.client.output.appendLine(`run graph: the page's Content Security Policy refused ${m.what}`);
    }
  }

  /** Logs the update times now and then (and when the panel closes or a run ends). */
  private logTimings(force: boolean): void {
    if (!force && Date.now() - this.lastLog < 5000) return;
    this.lastLog = Date.now();
    const u = timingSummary(this.timings.updates);
    const l = timingSummary(this.timings.layouts);
    if (u.count + l.count === 0) return;
    this.client.output.appendLine(
      `run graph timing: ${this.timings.tasks} tasks, ${u.count} updates: median ${u.median.toFixed(2)} ms, p95 ${u.p95.toFixed(2)} ms, max ${u.max.toFixed(2)} ms, ${u.overFrame} over ${FRAME_MS} ms; ${l.count} layouts: max ${l.max.toFixed(2)} ms (measured in the webview: message handler plus the style and layout it forces)`,
    );
  }

  private async act(action: string, taskId: string): Promise<void> {
    const target = this.target;
    if (target?.kind === "plan") {
      const t = target.plan.tasks.find((x) => x.id === taskId);
      if (t) await vscode.commands.executeCommand("vscode.open", toUri(t.prompt_file));
      return;
    }
    const run = this.client.treeState?.runs.find((r) => r.runId === target?.runId);
    const task = run?.tasks.find((t) => t.id === taskId);
    if (!run || !task) return;
    if (action === "openPrompt") {
      await vscode.commands.executeCommand("vscode.open", toUri(task.promptFile));
      return;
    }
    // The same command, with the same argument, as the Runs view's task row.
    const row: RunsElement = { kind: "task", run, task };
    await vscode.commands.executeCommand(`gadugi-vscode.${action}`, row);
  }

  private onTree(state: TreeState): void {
    const target = this.target;
    if (!this.panel || target?.kind !== "run") return;
    const run = state.runs.find((r) => r.runId === target.runId);
    if (!run) return;
    const sig = graphSignature(run);
    if (sig !== this.signature) {
      this.signature = sig;
      void this.fetchGraph(run.runId);
    }
    this.post(run);
    if (run.status !== "running") this.logTimings(true);
  }

  /** Asks `gadugi/runGraph` again; one request at a time, one more if something changed meanwhile. */
  private async fetchGraph(runId: string): Promise<void> {
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = true;
    try {
      do {
        this.fetchAgain = false;
        const graph = await this.client.runGraph({ runId });
        if (this.target?.kind === "run" && this.target.runId === runId) {
          this.graph = graph;
          this.post();
        }
      } while (this.fetchAgain);
    } catch (e) {
      this.client.output.appendLine(`gadugi/runGraph failed: ${(e as Error).message}`);
    } finally {
      this.fetching = false;
    }
  }

  /** Sends the current view to the webview. */
  private post(run?: RunNode): void {
    if (!this.panel || !this.ready || !this.target) return;
    let view: GraphView | undefined;
    if (this.target.kind === "plan") {
      view = planView(this.target.plan);
    } else {
      const runId = this.target.runId;
      const node = run ?? this.client.treeState?.runs.find((r) => r.runId === runId);
      if (node) view = runView(node, this.graph?.runId === runId ? this.graph : undefined);
    }
    if (!view) return;
    const update = updateFor(this.shown, view);
    if (update === "same") return;
    this.seq += 1;
    const message: ToWebview = update === "whole" ? { type: "view", view, seq: this.seq } : { type: "update", update, seq: this.seq };
    this.shown = view;
    const panel = this.panel;
    void panel.webview.postMessage(message).then((delivered) => {
      // Not delivered: the page has the view before; the next post sends it whole.
      if (!delivered && this.panel === panel) this.shown = undefined;
    });
  }

  dispose(): void {
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function toUri(file: string): vscode.Uri {
  return file.startsWith("file:") ? vscode.Uri.parse(file) : vscode.Uri.file(file);
}

/** The page: a strict CSP, the stylesheet and the bundled script by webview URI, a nonce. */
function page(webview: vscode.Webview, media: vscode.Uri, dist: vscode.Uri): string {
  const nonce = crypto.randomBytes(16).toString("base64");
  const css = webview.asWebviewUri(vscode.Uri.joinPath(media, "graph.css"));
  const js = webview.asWebviewUri(vscode.Uri.joinPath(dist, "graphWebview.js"));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `img-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<title>Gadugi Run Graph</title>
</head>
<body>
${GRAPH_PAGE_BODY}
<script nonce="${nonce}" src="${js}"></script>
</body>
</html>`;
}
