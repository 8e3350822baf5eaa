// Entry point: wires the language client to the views. The extension is a thin client of
// `gadugi server --stdio`: runs, tasks, progress and diagnostics all come from the server.
// In an untrusted workspace nothing is started (the server would read the repository's
// gadugi.toml, which names the agents to run); the views say why, and trust starts it.

import * as vscode from "vscode";

import { GadugiClient } from "./client";
import { Commands } from "./commands";
import { GraphPanel } from "./graphPanel";
import { LogView } from "./logView";
import * as model from "./model";
import type { TreeState } from "./protocol";
import { StatusBar } from "./status";
import { RunsTree, WorktreesTree } from "./trees";

/** What the extension exports, for its tests and for other extensions. */
export interface GadugiApi {
  /** Resolves once the server runs (never, in an untrusted workspace, until trust is granted). */
  ready: Promise<void>;
  /** The latest state the server sent. */
  treeState(): TreeState | undefined;
  onDidChangeTree: vscode.Event<TreeState>;
  /** The status bar's text, undefined while it is hidden. */
  statusBarText(): string | undefined;
  /** The rows of the Runs view: runs with their tasks. */
  runsItems(): ReturnType<RunsTree["items"]>;
  /** The worktrees the Worktrees view shows. */
  worktrees(): Promise<readonly { path: string; taskId: string; runId: string }[]>;
  /** The log file the task-log view follows, if any. */
  followedLog(): string | undefined;
  /** The server binary in use. */
  server(): { path: string; source: string; version: string } | undefined;
  /** The server's process id (tests kill it to check the restart after a crash). */
  serverPid(): number | undefined;
}

export function activate(context: vscode.ExtensionContext): GadugiApi {
  const output = vscode.window.createOutputChannel("Gadugi");
  const client = new GadugiClient(context, output);
  const runs = new RunsTree(client);
  const worktrees = new WorktreesTree(client);
  const status = new StatusBar();
  const logView = new LogView(client);
  const commands = new Commands(client, worktrees, logView, context.workspaceState);
  const graph = new GraphPanel(context, client);
  const runsView = vscode.window.createTreeView("gadugi.runs", { treeDataProvider: runs, showCollapseAll: true });
  const worktreesView = vscode.window.createTreeView("gadugi.worktrees", { treeDataProvider: worktrees });
  context.subscriptions.push(output, client, runs, worktrees, status, logView, commands, graph, runsView, worktreesView);

  context.subscriptions.push(
    client.onDidChangeTree((state) => {
      status.update(state);
      runsView.badge = badge(state);
      updatePromptContext(client);
    }),
    client.onDidRestartAfterCrash(() => {
      void vscode.window.showWarningMessage("The Gadugi server stopped and was restarted. Running agents were not affected.");
      // The restarted server learns the runs from disk; resume the ones this window drove.
      const sub = client.onDidChangeTree(() => {
        sub.dispose();
        void commands.resumeOrphans();
      });
    }),
    vscode.window.onDidChangeActiveTextEditor(() => updatePromptContext(client)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("gadugi.server")) {
        void vscode.window
          .showInformationMessage("Gadugi server settings changed.", "Restart Server")
          .then((pick) => pick && client.restart());
      }
    }),
  );

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  context.subscriptions.push(client.onDidChangePhase((p) => p === "running" && markReady()));
  void vscode.commands.executeCommand("setContext", "gadugi.hasRuns", false);
  void vscode.commands.executeCommand("setContext", "gadugi.hasWorktrees", false);
  if (vscode.workspace.isTrusted) {
    void client.start();
  } else {
    output.appendLine("Workspace not trusted: the Gadugi server is not started until you trust this workspace.");
    context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void client.start()));
  }
  updatePromptContext(client);

  return {
    ready,
    treeState: () => client.treeState,
    onDidChangeTree: client.onDidChangeTree,
    statusBarText: () => status.text,
    runsItems: () => runs.items(),
    worktrees: async () => {
      await worktrees.refresh();
      return worktrees.worktrees;
    },
    followedLog: () => logView.following,
    server: () => client.server,
    serverPid: () => client.serverPid,
  };
}

export function deactivate(): void {
  // The client is disposed with the context's subscriptions; agents live on.
}

/** The number of running tasks on the activity-bar icon. */
function badge(state: TreeState): vscode.ViewBadge | undefined {
  const running = model.countTasks(model.activeRuns(state)).running;
  return running > 0 ? { value: running, tooltip: `${running} Gadugi agent(s) running` } : undefined;
}

/** Sets `gadugi.promptFile` for the editor-title button. */
function updatePromptContext(client: GadugiClient): void {
  const doc = vscode.window.activeTextEditor?.document;
  const isPrompt =
    !!doc &&
    doc.uri.scheme === "file" &&
    model.isPromptFile(
      doc.uri.fsPath,
      doc.getText().slice(0, 4096),
      model.knownPromptFiles(client.treeState, (u) => vscode.Uri.parse(u).fsPath),
    );
  void vscode.commands.executeCommand("setContext", "gadugi.promptFile", isPrompt);
}
