// "Show Task Log": an output channel that follows one task's agent output live (stdout,
// stderr and verify logs of its latest attempt), switching to the next attempt when the task
// is retried. One task at a time: following another replaces it.

import * as vscode from "vscode";

import type { GadugiClient } from "./client";
import { LogFollower, attemptLogFiles } from "./logFollower";
import type { RunNode, TaskNode } from "./protocol";

export class LogView implements vscode.Disposable {
  private readonly channel = vscode.window.createOutputChannel("Gadugi Task Log");
  private follower: LogFollower | undefined;
  private target: { runId: string; taskId: string; logFile: string } | undefined;
  private readonly sub: vscode.Disposable;

  constructor(client: GadugiClient) {
    this.sub = client.onDidChangeTree((state) => {
      if (!this.target) return;
      const run = state.runs.find((r) => r.runId === this.target?.runId);
      const task = run?.tasks.find((t) => t.id === this.target?.taskId);
      if (run && task && task.logFile !== this.target.logFile) this.open(run, task, false);
    });
  }

  /** What is followed now (for tests). */
  get following(): string | undefined {
    return this.target?.logFile;
  }

  follow(run: RunNode, task: TaskNode): void {
    this.open(run, task, true);
    this.channel.show(true);
  }

  private open(run: RunNode, task: TaskNode, clear: boolean): void {
    this.follower?.dispose();
    if (clear) this.channel.clear();
    this.target = { runId: run.runId, taskId: task.id, logFile: task.logFile };
    this.channel.appendLine(`── task ${task.id} of run ${run.runId}, attempt ${Math.max(1, task.attempts)} (${task.logFile}) ──`);
    this.follower = new LogFollower(attemptLogFiles(task.logFile), (text) => this.channel.append(text));
    this.follower.start();
  }

  dispose(): void {
    this.follower?.dispose();
    this.sub.dispose();
    this.channel.dispose();
  }
}
