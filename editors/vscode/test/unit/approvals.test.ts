// The pure side of agents that ask in VS Code (src/approvals.ts and what model.ts shows of a
// task that waits): texts, deadlines, buttons and the params of each answer.

import assert from "node:assert/strict";
import { test } from "node:test";

import * as approvals from "../../src/approvals";
import * as model from "../../src/model";
import type { ApprovalRequest, TaskNode } from "../../src/protocol";
import { run, task } from "./fixtures";

const NOW = Date.parse("2026-11-30T22:00:00Z");

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    runId: "20261130-215900-ab12", taskId: "a", id: "a1-001", kind: "permission", tool: "Bash",
    summary: "Bash(rm -rf dist)", command: "rm -rf dist", options: [],
    deadline: "2026-11-30T22:07:30+00:00", defaultDecision: "deny", ...over,
  };
}

/** A running task of run() whose agent waits for `request()`. */
function waiting(id: string, over: Partial<TaskNode> = {}): TaskNode {
  return task(id, { status: "running", phase: "waiting_for_approval", attempts: 1, pendingApprovals: [request({ taskId: id })], ...over });
}

test("time left rounds up to whole minutes like gadugi status, and says now once past", () => {
  assert.equal(approvals.timeLeft("2026-11-30T22:07:30Z", NOW), "8m");
  assert.equal(approvals.timeLeft("2026-11-30T22:00:01Z", NOW), "1m");
  assert.equal(approvals.timeLeft("2026-11-30T23:30:00Z", NOW), "1h30m");
  assert.equal(approvals.timeLeft("2026-12-01T00:00:00Z", NOW), "2h");
  assert.equal(approvals.timeLeft("2026-11-30T21:59:00Z", NOW), "now");
  assert.equal(approvals.timeLeft("not a date", NOW), "now");
});

test("the notification names task, tool, summary, deadline and what happens then", () => {
  assert.equal(
    approvals.notificationMessage(request(), NOW),
    "Gadugi task a asks to use Bash(rm -rf dist). Denied in 8m unless answered.",
  );
  assert.equal(
    approvals.notificationMessage(request({ defaultDecision: "allow", deadline: "2026-11-30T21:00:00Z" }), NOW),
    "Gadugi task a asks to use Bash(rm -rf dist). Allowed now unless answered.",
  );
  const q = request({ kind: "question", tool: "AskUserQuestion", summary: "question: Which colour?", command: null, options: ["red", "blue"] });
  assert.equal(approvals.notificationMessage(q, NOW), "Gadugi task a asks: Which colour?. Denied in 8m unless answered.");
});

test("Edit… is offered only for a command; a question is answered through a quick pick", () => {
  assert.deepEqual(approvals.notificationActions(request()), ["Allow", "Deny", "Edit…"]);
  assert.deepEqual(approvals.notificationActions(request({ tool: "Write", summary: "Write(/etc/x)", command: null })), ["Allow", "Deny"]);
  const q = request({ kind: "question", command: null, options: ["red", "blue"] });
  assert.deepEqual(approvals.notificationActions(q), ["Answer…", "Deny"]);
  const picks = approvals.questionPicks(q);
  assert.deepEqual(picks.map((p) => p.choice), ["red", "blue", undefined], "the options, then the free answer");
});

test("each answer becomes the params of gadugi/answerApproval", () => {
  const r = request();
  const ref = { runId: r.runId, taskId: "a", id: "a1-001" };
  assert.deepEqual(approvals.allowParams(r), { ...ref, decision: "allow" });
  assert.deepEqual(approvals.allowParams(r, "rm -rf dist"), { ...ref, decision: "allow" }, "an unchanged command is a plain allow");
  assert.deepEqual(approvals.allowParams(r, "rm -rf dist/tmp"), { ...ref, decision: "allow", command: "rm -rf dist/tmp" });
  assert.deepEqual(approvals.denyParams(r, "  "), { ...ref, decision: "deny" }, "an empty message leaves the default text");
  assert.deepEqual(approvals.denyParams(r, " not here "), { ...ref, decision: "deny", message: "not here" });
  assert.deepEqual(approvals.questionParams(r, { choice: "red" }), { ...ref, decision: "allow", choice: "red" });
  assert.deepEqual(approvals.questionParams(r, { text: "green" }), { ...ref, decision: "allow", message: "green" });
  assert.equal(approvals.answeredMessage(r, approvals.allowParams(r, "ls")), "Allowed task a to run the edited command: ls");
});

test("a late answer shows the server's reason and counts as no longer pending", () => {
  const late = {
    message: "question `a1-001` of task `a` was already answered: allowed in the terminal (gadugi answer)",
    data: { errors: [{ file: null, line: null, problem: "question `a1-001` of task `a` was already answered: allowed in the terminal (gadugi answer)", fix: "nothing to do" }] },
  };
  assert.ok(approvals.isNoLongerPending(late));
  assert.equal(
    approvals.refusedMessage(request(), late),
    "Gadugi: Bash(rm -rf dist) of task a needs no answer any more: question `a1-001` of task `a` was already answered: allowed in the terminal (gadugi answer)",
  );
  const starting = { message: "the Gadugi server is still starting; try again in a moment" };
  assert.ok(!approvals.isNoLongerPending(starting));
  assert.equal(
    approvals.refusedMessage(request(), starting),
    "Gadugi could not answer Bash(rm -rf dist) for task a: the Gadugi server is still starting; try again in a moment",
  );
});

test("a waiting task: row text, icon, context; the status bar counts the questions", () => {
  const asking = waiting("a");
  const busy = task("b", { status: "running", phase: "agent", lastActivity: "Editing" });
  assert.equal(model.taskDescription(asking, NOW), "waiting for approval: Bash(rm -rf dist) — denied in 8m · gadugi/a");
  assert.equal(model.taskStateText(asking, NOW), "waiting for approval: Bash(rm -rf dist) — denied in 8m");
  assert.deepEqual(model.taskIcon(asking), { id: "bell-dot", color: "charts.yellow" });
  assert.deepEqual(model.taskIcon(busy), { id: "sync~spin", color: "charts.blue" });
  assert.match(model.taskContext(run([asking]), asking), /\btask\.waiting\b/);
  assert.doesNotMatch(model.taskContext(run([busy]), busy), /task\.waiting/);
  const two = waiting("c", { pendingApprovals: [request({ taskId: "c", id: "a1-001" }), request({ taskId: "c", id: "a1-002" })] });
  assert.match(model.taskStateText(two, NOW), /\(\+1 more\)$/);
  const view = model.statusBarView([run([asking, busy, two])], false, NOW)!;
  assert.equal(view.text, "$(sync~spin) Gadugi 0/3 ✓ $(bell) 3 to answer");
  assert.equal(view.asking, 3);
  assert.match(view.tooltip, /3 question\(s\) of agents wait for you/);
  assert.equal(model.statusBarView([run([busy])], false, NOW)!.text, "$(sync~spin) Gadugi 0/1 ✓", "nothing to answer: no bell");
  assert.equal(approvals.pendingApprovals({ version: 1, runs: [run([asking, two])] }).length, 3);
});
