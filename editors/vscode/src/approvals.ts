// Agents that ask (issue 20), the pure part: which questions wait, the texts the notification,
// the Runs view and the status bar show, and the `gadugi/answerApproval` params of each answer.
// No VS Code API here, so the unit tests (test/unit/approvals.test.ts) run in plain Node; the
// UI is approvalsView.ts.

import type { AnswerApprovalParams, ApprovalRequest, TreeState } from "./protocol";

/** Every question waiting for the person in the tree, oldest deadline first. */
export function pendingApprovals(state: TreeState | undefined): ApprovalRequest[] {
  const out: ApprovalRequest[] = [];
  for (const run of state?.runs ?? []) for (const t of run.tasks) out.push(...(t.pendingApprovals ?? []));
  return out.sort((a, b) => Date.parse(a.deadline) - Date.parse(b.deadline));
}

/** The key of a question across runs and tasks (`run/task/id`). */
export function approvalKey(r: Pick<ApprovalRequest, "runId" | "taskId" | "id">): string {
  return `${r.runId}/${r.taskId}/${r.id}`;
}

/**
 * Time left until `deadline`, rounded up to whole minutes like `gadugi status` (`8m`,
 * `1h30m`; "in 0m" would read as "now"), or `now` once it has passed.
 */
export function timeLeft(deadline: string, now: number): string {
  const ms = Date.parse(deadline) - now;
  if (!Number.isFinite(ms) || ms <= 0) return "now";
  const minutes = Math.ceil(ms / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m}m`;
  return m === 0 ? `${h}h` : `${h}h${m}m`;
}

/** `denied` or `allowed`: what the deadline does. */
export function outcome(r: Pick<ApprovalRequest, "defaultDecision">): string {
  return r.defaultDecision === "allow" ? "allowed" : "denied";
}

/** `denied in 8m`, or `denied now` once the deadline passed. */
export function deadlineText(r: ApprovalRequest, now: number): string {
  const left = timeLeft(r.deadline, now);
  return left === "now" ? `${outcome(r)} now` : `${outcome(r)} in ${left}`;
}

/** The task row's state: `waiting for approval: Bash(rm -rf dist) — denied in 8m` (and `+1 more`). */
export function waitingText(pending: readonly ApprovalRequest[], now: number): string {
  const first = pending[0];
  const more = pending.length > 1 ? ` (+${pending.length - 1} more)` : "";
  return `waiting for approval: ${first.summary} — ${deadlineText(first, now)}${more}`;
}

/** Whether the request is a question (`AskUserQuestion`) rather than a permission request. */
export function isQuestion(r: ApprovalRequest): boolean {
  return r.kind === "question";
}

/**
 * The notification's message: who asks what, and what happens without an answer:
 * `Gadugi task a asks to run Bash(rm -rf dist). Denied in 8m unless answered.`
 */
export function notificationMessage(r: ApprovalRequest, now: number): string {
  const what = isQuestion(r) ? `asks: ${stripQuestionPrefix(r.summary)}` : `asks to use ${r.summary}`;
  const left = timeLeft(r.deadline, now);
  const when = left === "now" ? `${capitalize(outcome(r))} now` : `${capitalize(outcome(r))} in ${left}`;
  return `Gadugi task ${r.taskId} ${what}. ${when} unless answered.`;
}

/** The buttons of a permission request's notification (Edit… only for a Bash command). */
export function notificationActions(r: ApprovalRequest): string[] {
  if (isQuestion(r)) return ["Answer…", "Deny"];
  return r.command !== null ? ["Allow", "Deny", "Edit…"] : ["Allow", "Deny"];
}

/** One row of the question's quick pick: an option, or the free answer. */
export interface QuestionPick {
  label: string;
  description?: string;
  /** The option chosen (`choice`), or undefined for the free answer. */
  choice?: string;
}

/** The quick pick over a question's options, then a free answer. */
export function questionPicks(r: ApprovalRequest): QuestionPick[] {
  return [
    ...r.options.map((o) => ({ label: o, choice: o })),
    { label: "$(edit) Answer in your own words…", description: "type the answer" },
  ];
}

/** The row of Gadugi: Answer Pending Approvals for one question. */
export function pickItem(r: ApprovalRequest, now: number): { label: string; description: string; detail: string } {
  return {
    label: `${r.taskId}: ${r.summary}`,
    description: deadlineText(r, now),
    detail: `run ${r.runId} · ${r.kind === "question" ? "question" : `permission for ${r.tool}`} · ${r.id}`,
  };
}

/** Params of an allow, with an edited Bash command when it differs from the one asked for. */
export function allowParams(r: ApprovalRequest, editedCommand?: string): AnswerApprovalParams {
  const p: AnswerApprovalParams = { runId: r.runId, taskId: r.taskId, id: r.id, decision: "allow" };
  if (editedCommand !== undefined && editedCommand !== r.command) p.command = editedCommand;
  return p;
}

/** Params of a denial; an empty message leaves Gadugi's default text to the model. */
export function denyParams(r: ApprovalRequest, message?: string): AnswerApprovalParams {
  const p: AnswerApprovalParams = { runId: r.runId, taskId: r.taskId, id: r.id, decision: "deny" };
  if (message && message.trim()) p.message = message.trim();
  return p;
}

/** Params answering a question: a chosen option, or a free answer. */
export function questionParams(r: ApprovalRequest, answer: { choice?: string; text?: string }): AnswerApprovalParams {
  const p: AnswerApprovalParams = { runId: r.runId, taskId: r.taskId, id: r.id, decision: "allow" };
  if (answer.choice !== undefined) p.choice = answer.choice;
  else p.message = answer.text ?? "";
  return p;
}

/** What the person is told after an answer went through. */
export function answeredMessage(r: ApprovalRequest, params: AnswerApprovalParams): string {
  if (params.decision === "deny") return `Denied ${r.summary} for task ${r.taskId}.`;
  if (params.choice) return `Answered task ${r.taskId}: ${params.choice}.`;
  if (params.message) return `Answered task ${r.taskId}.`;
  if (params.command) return `Allowed task ${r.taskId} to run the edited command: ${params.command}`;
  return `Allowed ${r.summary} for task ${r.taskId}.`;
}

/**
 * What to tell the person when an answer was refused: the server's problem (for a late
 * click, `question a1-001 of task a was already answered: allowed in the terminal`), or its
 * message.
 */
export function refusedMessage(r: ApprovalRequest, error: { message?: string; data?: unknown }): string {
  const errors = (error.data as { errors?: { problem?: string }[] } | undefined)?.errors;
  const problem = errors?.map((e) => e.problem).filter(Boolean).join("; ") || error.message || "unknown error";
  if (isNoLongerPending(error)) return `Gadugi: ${r.summary} of task ${r.taskId} needs no answer any more: ${problem}`;
  return `Gadugi could not answer ${r.summary} for task ${r.taskId}: ${problem}`;
}

/** Whether a refusal only says the question no longer waits (answered elsewhere, withdrawn). */
export function isNoLongerPending(error: { message?: string; data?: unknown }): boolean {
  const text = JSON.stringify(error.data ?? "") + (error.message ?? "");
  return /already answered|no pending question|no question waiting|already ended/.test(text);
}

/** The status bar's addition while questions wait: ` $(bell) 2 to answer`. */
export function statusBarSuffix(count: number): string {
  return count > 0 ? ` $(bell) ${count} to answer` : "";
}

function stripQuestionPrefix(summary: string): string {
  return summary.replace(/^question:\s*/, "");
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
