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
  WorkDoneProgress,
} from "vscode-languageclient/node";

import * as proto from "./protocol";
import { findServer, serverCandidates } from "./serverPath";
import { logFilter } from "./settings";

/** Where the server is in its life, for context keys and the welcome views. */
export type ServerPhase = "stopped" | "starting" | "running" | "failed";

/** Restarts after crashes within this window before the client gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 3 * 60_000;
/** How long a command waits for a starting server before it gives up with an error. */
export const READY_TIMEOUT_MS = 60_000;

export class GadugiClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private tree: proto.TreeState | undefined;
  private lastVersion = -1;
  private phaseValue: ServerPhase = "stopped";
  private crashes: number[] = [];
  /** Why the server last failed to start or stopped for good, for the commands that waited. */
  private failure: string | undefined;
  /** The one wait (with its progress notification) that commands given during a start share. */
  private waiting: Promise<LanguageClient> | undefined;
  private tokens = 0;
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
    this.failure = undefined;
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
  /** Builds the run's integration branch; `onStep` gets each line while it happens. */
  mergeRun(args: proto.MergeArgs, onStep: (line: string) => void): Promise<proto.MergeResult> {
    return this.commandWithSteps(proto.Commands.mergeRun, args, onStep);
  }
  /** Pushes the task branches and opens the pull requests; `onStep` gets each line. */
  openPullRequests(args: proto.PullRequestsArgs, onStep: (line: string) => void): Promise<proto.PullRequestsResult> {
    return this.commandWithSteps(proto.Commands.openPullRequests, args, onStep);
  }
  report(args: proto.RunRef): Promise<proto.ReportResult> {
    return this.command(proto.Commands.report, args);
  }

  /**
   * The running language client. While the server starts, waits until it runs — with a
   * progress notification, shared by every command given meanwhile — and then resolves with
   * its tree loaded; rejects with the reason if the server fails to start, or after
   * READY_TIMEOUT_MS. So a command given during a start runs once the server is there.
   */
  async ready(): Promise<LanguageClient> {
    if (this.client && this.phaseValue === "running") return this.client;
    if (this.phaseValue === "failed") throw new Error(this.notRunning());
    if (!vscode.workspace.isTrusted) {
      throw new Error("the Gadugi server does not run in an untrusted workspace (it would start the agents gadugi.toml names); trust the workspace first");
    }
    this.waiting ??= Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Gadugi: waiting for the server to start…" },
        () => this.whenRunning(),
      ),
    ).finally(() => (this.waiting = undefined));
    return this.waiting;
  }

  private whenRunning(): Promise<LanguageClient> {
    return new Promise<LanguageClient>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        sub.dispose();
        if (error) reject(error);
        else if (this.client) resolve(this.client);
        else reject(new Error(this.notRunning()));
      };
      const timer = setTimeout(
        () => settle(new Error(`the Gadugi server did not start within ${READY_TIMEOUT_MS / 1000} s (see the Gadugi output; run Gadugi: Restart Server)`)),
        READY_TIMEOUT_MS,
      );
      const sub = this.onDidChangePhase((p) => {
        if (p === "running") {
          // The views and the quick picks need the runs: load them before the command goes on.
          void this.resync().then(() => settle());
        } else if (p === "failed") {
          settle(new Error(this.notRunning()));
        }
      });
    });
  }

  private notRunning(): string {
    return `the Gadugi server is not running${this.failure ? ` (${this.failure.replace(/^Gadugi: /, "")})` : ""}; see the Gadugi output and run Gadugi: Restart Server`;
  }

  dispose(): void {
    void this.stop();
    this.treeEmitter.dispose();
    this.phaseEmitter.dispose();
    this.restartedEmitter.dispose();
  }

  private async command<T>(command: string, arg: object): Promise<T> {
    const client = await this.ready();
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }) as Promise<T>;
  }

  /** A command whose steps the server reports as `$/progress` of the request's own token. */
  private async commandWithSteps<T>(command: string, arg: object, onStep: (line: string) => void): Promise<T> {
    const client = await this.ready();
    const token = `${command}-${++this.tokens}`;
    const sub = client.onProgress(WorkDoneProgress.type, token, (v) => {
      if (v.kind === "report" && v.message) onStep(v.message);
    });
    try {
      return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg], workDoneToken: token })) as T;
    } finally {
      sub.dispose();
    }
  }

  private async request<T>(method: string, params: object): Promise<T> {
    return (await this.ready()).sendRequest<T>(method, params);
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
    this.failure = message;
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
