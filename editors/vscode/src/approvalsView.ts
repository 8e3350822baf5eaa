// Agents that ask, in VS Code: each question of a task's agent (`gadugi/approvalRequested`, or
// a task's `pendingApprovals` in the tree after a reload) becomes a notification with Allow /
// Deny / Edit… (a question: Answer… opens a quick pick over its options plus a free answer);
// the answer goes through `gadugi/answerApproval`. Gadugi: Answer Pending Approvals lists them
// all. A notification cannot be closed by an extension: one clicked after the question was
// answered elsewhere (terminal, another window, a rule, the deadline) says so instead.

import * as vscode from "vscode";

import * as approvals from "./approvals";
import type { GadugiClient } from "./client";
import type { AnswerApprovalParams, ApprovalRequest, TreeState } from "./protocol";

export class ApprovalsView implements vscode.Disposable {
  /** Questions already shown (`run/task/id`), so a notification and the tree show one once. */
  private readonly shown = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  /** The messages of the notifications shown, newest last (for the tests). */
  readonly messages: string[] = [];

  constructor(private readonly client: GadugiClient) {
    this.disposables.push(
      client.onApprovalRequested((r) => this.show(r)),
      // A reloaded window, or a notification missed: the tree lists what still waits.
      client.onDidChangeTree((s) => this.onTree(s)),
      vscode.commands.registerCommand("gadugi-vscode.answerApprovals", (row?: { kind?: string; run?: { runId: string }; task?: { id: string } }) =>
        this.answerPending(row?.kind === "task" && row.run && row.task ? { runId: row.run.runId, taskId: row.task.id } : undefined),
      ),
    );
  }

  private onTree(state: TreeState): void {
    // Keys are kept: a question's id is never reused (attempt and number), and the
    // notification may come before or after the tree that lists it.
    for (const r of approvals.pendingApprovals(state)) this.show(r);
  }

  /** Shows the notification of a question once; the person's click answers it. */
  private show(r: ApprovalRequest): void {
    const key = approvals.approvalKey(r);
    if (this.shown.has(key)) return;
    this.shown.add(key);
    const message = approvals.notificationMessage(r, Date.now());
    this.messages.push(message);
    void vscode.window.showWarningMessage(message, ...approvals.notificationActions(r)).then((action) => {
      if (action) void this.act(r, action);
    });
  }

  /** Gadugi: Answer Pending Approvals (or a waiting task row's Answer): pick a question, then the answer. */
  private async answerPending(only?: { runId: string; taskId: string }): Promise<void> {
    const pending = approvals
      .pendingApprovals(this.client.treeState)
      .filter((r) => !only || (r.runId === only.runId && r.taskId === only.taskId));
    if (pending.length === 0) {
      void vscode.window.showInformationMessage("No agent waits for an answer.");
      return;
    }
    const now = Date.now();
    const picked = await vscode.window.showQuickPick(
      pending.map((r) => ({ ...approvals.pickItem(r, now), request: r })),
      { title: "Gadugi: questions of agents", placeHolder: "Pick one to answer", matchOnDetail: true },
    );
    if (!picked) return;
    const r = picked.request;
    const action = await vscode.window.showQuickPick(approvals.notificationActions(r), {
      title: approvals.notificationMessage(r, Date.now()),
      placeHolder: "Your answer",
    });
    if (action) await this.act(r, action);
  }

  /** Turns a button (`Allow`, `Deny`, `Edit…`, `Answer…`) into an answer and sends it. */
  private async act(r: ApprovalRequest, action: string): Promise<void> {
    let params: AnswerApprovalParams | undefined;
    switch (action) {
      case "Allow":
        params = approvals.allowParams(r);
        break;
      case "Edit…": {
        const edited = await vscode.window.showInputBox({
          title: `Edit the command of task ${r.taskId}, then Enter allows it`,
          value: r.command ?? "",
          prompt: `The agent asked for: ${r.command ?? r.summary}`,
          ignoreFocusOut: true,
        });
        if (edited !== undefined) params = approvals.allowParams(r, edited);
        break;
      }
      case "Deny": {
        const message = await vscode.window.showInputBox({
          title: `Deny ${r.summary} for task ${r.taskId}`,
          prompt: "Optional: what to tell the agent (Enter denies; Escape keeps the question open)",
          ignoreFocusOut: true,
        });
        if (message !== undefined) params = approvals.denyParams(r, message);
        break;
      }
      case "Answer…":
        params = await this.askQuestion(r);
        break;
    }
    if (params) await this.send(r, params);
  }

  /** A question: a quick pick over its options, then a free answer if that was picked. */
  private async askQuestion(r: ApprovalRequest): Promise<AnswerApprovalParams | undefined> {
    const pick = await vscode.window.showQuickPick(approvals.questionPicks(r), {
      title: `Task ${r.taskId} asks: ${r.summary.replace(/^question:\s*/, "")}`,
      placeHolder: "Pick an answer",
      ignoreFocusOut: true,
    });
    if (!pick) return undefined;
    if (pick.choice !== undefined) return approvals.questionParams(r, { choice: pick.choice });
    const text = await vscode.window.showInputBox({ title: `Answer task ${r.taskId}`, ignoreFocusOut: true });
    return text === undefined ? undefined : approvals.questionParams(r, { text });
  }

  private async send(r: ApprovalRequest, params: AnswerApprovalParams): Promise<void> {
    try {
      await this.client.answerApproval(params);
      vscode.window.setStatusBarMessage(approvals.answeredMessage(r, params), 8000);
    } catch (e) {
      const error = e as { message?: string; data?: unknown };
      const text = approvals.refusedMessage(r, error);
      this.client.output.appendLine(text);
      if (approvals.isNoLongerPending(error)) void vscode.window.showInformationMessage(text);
      else void vscode.window.showErrorMessage(text);
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
