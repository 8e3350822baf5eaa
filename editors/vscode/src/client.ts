// The language client around `gadugi server --stdio`: finds and verifies the binary, starts
// it, keeps the latest TreeState (versions only rise; a restarted server starts again), and
// offers typed calls for the custom protocol. Everything the views show comes through here.

import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type Message,
  type ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";

import * as proto from "./protocol";
import { findServer, serverCandidates } from "./serverPath";
import { logFilter } from "./settings";

/** Where the server is in its life, for context keys and the welcome views. */
export type ServerPhase = "stopped" | "starting" | "running" | "failed";

/** Restarts after crashes within this window before the client gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 3 * 60_000;

export class GadugiClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private tree: proto.TreeState | undefined;
  private lastVersion = -1;
  private phaseValue: ServerPhase = "stopped";
  private crashes: number[] = [];
  private readonly treeEmitter = new vscode.EventEmitter<proto.TreeState>();
  private readonly phaseEmitter = new vscode.EventEmitter<ServerPhase>();
  private readonly restartedEmitter = new vscode.EventEmitter<void>();
  /** A new TreeState (from a notification or a resynchronisation). */
  readonly onDidChangeTree = this.treeEmitter.event;
  readonly onDidChangePhase = this.phaseEmitter.event;
  /** The server came back after it crashed (the client restarted it). */
  readonly onDidRestartAfterCrash = this.restartedEmitter.event;
  /** The server binary in use and its version, once started. */
  server: { path: string; source: string; version: string } | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
  ) {}

  get phase(): ServerPhase {
    return this.phaseValue;
  }

  /** The server's process id, while it runs. */
  get serverPid(): number | undefined {
    // vscode-languageclient keeps the child process in a protected field; read only.
    return (this.client as unknown as { _serverProcess?: { pid?: number } } | undefined)?._serverProcess?.pid;
  }

  /** The latest tree state, if the server sent one. */
  get treeState(): proto.TreeState | undefined {
    return this.tree;
  }

  /** Finds the binary, starts the server and loads the tree. Errors are shown and logged. */
  async start(): Promise<void> {
    if (this.client) return;
    this.setPhase("starting");
    const config = vscode.workspace.getConfiguration("gadugi");
    let server;
    try {
      server = await findServer(
        serverCandidates(config.get<string>("server.path"), this.context.extensionPath, process.env.PATH),
      );
    } catch (e) {
      this.fail(`Gadugi: ${(e as Error).message}`);
      return;
    }
    this.server = server;
    this.output.appendLine(`gadugi ${server.version} at ${server.path} (${server.source})`);
    const own = String(this.context.extension.packageJSON.version ?? "");
    if (own && server.version !== own) {
      // The protocol grows with the server: an older binary may lack fields the views show.
      const message = `Gadugi: the server at ${server.path} is version ${server.version}, the extension ${own}; some views may be incomplete. Use the bundled server (clear gadugi.server.path) or install gadugi ${own}.`;
      this.output.appendLine(message);
      void vscode.window.showWarningMessage(message);
    }
    const serverOptions: ServerOptions = {
      command: server.path,
      // TransportKind.stdio appends `--stdio`: the command line is `gadugi server --stdio`.
      args: ["server"],
      transport: TransportKind.stdio,
      options: { env: { ...process.env, GADUGI_LOG: logFilter(config.get<string>("server.logLevel")) } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file", language: "markdown" }],
      outputChannel: this.output,
      traceOutputChannel: this.output,
      errorHandler: {
        error: (_e: Error, _m: Message | undefined, count: number | undefined) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        }),
        closed: () => this.onClosed(),
      },
    };
    const client = new LanguageClient("gadugi", "Gadugi", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        // A (re)started server counts versions from the beginning again.
        this.lastVersion = -1;
        this.setPhase("running");
        void this.resync();
      } else if (e.newState === State.Stopped && this.phaseValue !== "failed") {
        this.setPhase("stopped");
      }
    });
    client.onNotification(proto.Methods.treeChanged, (state: proto.TreeState) => this.accept(state));
    try {
      await client.start();
    } catch (e) {
      this.client = undefined;
      this.fail(`Gadugi: the server did not start: ${(e as Error).message}`);
    }
  }

  /** Stops the server (running agents live on under their supervisors). */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (e) {
        this.output.appendLine(`stopping the server: ${(e as Error).message}`);
      }
    }
    this.setPhase("stopped");
  }

  /** Stops and starts the server again, picking up changed settings. */
  async restart(): Promise<void> {
    await this.stop();
    this.crashes = [];
    await this.start();
  }

  /** Asks the server for the whole tree (after a start, or when a version was missed). */
  async resync(): Promise<void> {
    try {
      const state = await this.request<proto.TreeState>(proto.Methods.treeState, {});
      this.accept(state, true);
    } catch (e) {
      this.output.appendLine(`gadugi/treeState failed: ${(e as Error).message}`);
    }
  }

  /** Every Gadugi worktree on disk. */
  worktrees(): Promise<proto.WorktreeList> {
    return this.request<proto.WorktreeList>(proto.Methods.worktrees, {});
  }

  /** Dependencies, critical path, conflicts and attempts of a run (the run graph). */
  runGraph(params: proto.RunGraphParams): Promise<proto.RunGraph> {
    return this.request<proto.RunGraph>(proto.Methods.runGraph, params);
  }

  orchestrate(args: proto.OrchestrateArgs): Promise<proto.OrchestrateResult> {
    return this.command(proto.Commands.orchestrate, args);
  }
  plan(args: proto.PlanArgs): Promise<proto.PlanJson> {
    return this.command(proto.Commands.plan, args);
  }
  cancelRun(args: proto.RunRef): Promise<proto.CancelResult> {
    return this.command(proto.Commands.cancelRun, args);
  }
  cancelTask(args: proto.TaskRef): Promise<proto.CancelResult> {
    return this.command(proto.Commands.cancelTask, args);
  }
  retryTask(args: proto.TaskRef): Promise<proto.OrchestrateResult> {
    return this.command(proto.Commands.retryTask, args);
  }
  resume(args: proto.RunRef): Promise<proto.OrchestrateResult> {
    return this.command(proto.Commands.resume, args);
  }
  cleanup(args: proto.CleanupArgs): Promise<proto.CleanupResult> {
    return this.command(proto.Commands.cleanup, args);
  }
  taskDiff(args: proto.TaskRef): Promise<proto.TaskDiff> {
    return this.command(proto.Commands.taskDiff, args);
  }
  poolPrune(args: proto.PoolPruneArgs): Promise<proto.CleanupResult> {
    return this.command(proto.Commands.poolPrune, args);
  }

  dispose(): void {
    void this.stop();
    this.treeEmitter.dispose();
    this.phaseEmitter.dispose();
    this.restartedEmitter.dispose();
  }

  private command<T>(command: string, arg: object): Promise<T> {
    const client = this.running();
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }) as Promise<T>;
  }

  private request<T>(method: string, params: object): Promise<T> {
    return this.running().sendRequest<T>(method, params);
  }

  private running(): LanguageClient {
    if (!this.client || this.phaseValue !== "running") {
      throw new Error(
        this.phaseValue === "failed"
          ? "the Gadugi server is not running (see the Gadugi output; run Gadugi: Restart Server)"
          : "the Gadugi server is still starting; try again in a moment",
      );
    }
    return this.client;
  }

  private accept(state: proto.TreeState, resync = false): void {
    if (!resync && state.version <= this.lastVersion) return;
    this.lastVersion = state.version;
    this.tree = state;
    this.treeEmitter.fire(state);
  }

  /** The server's connection closed: restart it, unless it keeps crashing. */
  private onClosed(): { action: CloseAction; message?: string } {
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < RESTART_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length > MAX_RESTARTS) {
      this.setPhase("failed");
      return {
        action: CloseAction.DoNotRestart,
        message: `The Gadugi server stopped ${this.crashes.length} times in 3 minutes and was not restarted. Running agents go on; see the Gadugi output, then run Gadugi: Restart Server.`,
      };
    }
    this.output.appendLine("the Gadugi server stopped; restarting it (running agents are not affected)");
    const sub = this.onDidChangePhase((p) => {
      if (p === "running") {
        sub.dispose();
        this.restartedEmitter.fire();
      }
    });
    return { action: CloseAction.Restart };
  }

  private fail(message: string): void {
    this.output.appendLine(message);
    this.setPhase("failed");
    void vscode.window.showErrorMessage(message, "Show Log", "Open Settings").then((pick) => {
      if (pick === "Show Log") this.output.show();
      if (pick === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "gadugi.server.path");
    });
  }

  private setPhase(p: ServerPhase): void {
    if (p === this.phaseValue) return;
    this.phaseValue = p;
    void vscode.commands.executeCommand("setContext", "gadugi.serverReady", p === "running");
    void vscode.commands.executeCommand("setContext", "gadugi.serverFailed", p === "failed");
    this.phaseEmitter.fire(p);
  }
}
