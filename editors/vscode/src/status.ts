// The status-bar item: a spinner and `Gadugi 3/8 ✓ 1 ✗` while runs go on (and `$(bell) 1 to
// answer` while agents ask), a tooltip line per task, click to focus the Runs view (or to
// answer the agents). After the last run ends it shows the result for a minute,
// then hides: quiet when idle.

import * as vscode from "vscode";

import { activeRuns, statusBarView } from "./model";
import type { RunNode, TreeState } from "./protocol";

/** How long the result of a finished run stays in the status bar. */
const SHOW_RESULT_MS = 60_000;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("gadugi.status", vscode.StatusBarAlignment.Left, 50);
  private active = new Set<string>();
  private hideTimer: NodeJS.Timeout | undefined;

  constructor() {
    this.item.name = "Gadugi";
    this.item.command = "gadugi-vscode.focusRuns";
  }

  /** The text shown now, or undefined when hidden (for tests). */
  get text(): string | undefined {
    return this.visible ? this.item.text : undefined;
  }
  private visible = false;

  update(state: TreeState): void {
    const running = activeRuns(state);
    if (running.length > 0) {
      this.clearTimer();
      this.active = new Set(running.map((r) => r.runId));
      this.show(running, false);
      return;
    }
    // Nothing runs: show how the runs that just ended came out, then go quiet.
    const ended: RunNode[] = state.runs.filter((r) => this.active.has(r.runId));
    this.active.clear();
    if (ended.length > 0) {
      this.show(ended, true);
      this.clearTimer();
      this.hideTimer = setTimeout(() => this.hide(), SHOW_RESULT_MS);
    } else if (!this.hideTimer) {
      this.hide();
    }
  }

  private show(runs: RunNode[], finished: boolean): void {
    const view = statusBarView(runs, finished);
    if (!view) return this.hide();
    this.item.text = view.text;
    // While agents ask, a click answers them; otherwise it shows the Runs view.
    this.item.command = view.asking > 0 ? "gadugi-vscode.answerApprovals" : "gadugi-vscode.focusRuns";
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      finished && view.severity === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.item.show();
    this.visible = true;
  }

  private hide(): void {
    this.clearTimer();
    this.item.hide();
    this.visible = false;
  }

  private clearTimer(): void {
    if (this.hideTimer) clearTimeout(this.hideTimer);
    this.hideTimer = undefined;
  }

  dispose(): void {
    this.clearTimer();
    this.item.dispose();
  }
}
