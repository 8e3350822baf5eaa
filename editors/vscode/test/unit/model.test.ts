import assert from "node:assert/strict";
import { test } from "node:test";

import * as model from "../../src/model";
import { run, task } from "./fixtures";

test("the status bar shows succeeded of all and the failures, with a spinner while running", () => {
  const r = run([
    task("a", { status: "succeeded", durationSeconds: 3 }),
    task("b", { status: "succeeded" }),
    task("c", { status: "succeeded" }),
    task("d", { status: "failed", error: "exit status 3\nmore", durationSeconds: 12 }),
    task("e", { status: "running", phase: "agent", lastActivity: "Editing src/api.rs" }),
    task("f"), task("g"), task("h", { dependsOn: ["e"] }),
  ]);
  const view = model.statusBarView([r])!;
  assert.equal(view.text, "$(sync~spin) Gadugi 3/8 ✓ 1 ✗");
  assert.equal(view.severity, "error");
  const lines = view.tooltip.split("\n");
  assert.equal(lines.length, 9, "a header and one line per task");
  assert.equal(lines[0], "Gadugi: 1 running, 3 queued");
  assert.ok(lines.includes("✗ d — failed: exit status 3 (12s)"));
  assert.ok(lines.includes("⟳ e — agent — Editing src/api.rs"));
  assert.ok(lines.includes("○ h — queued, after e"));
  assert.equal(model.statusBarView([]), undefined, "quiet when nothing runs");
});

test("a finished run shows its result without the spinner", () => {
  const ok = run([task("a", { status: "succeeded" })], { status: "succeeded" });
  assert.equal(model.statusBarView([ok], true)!.text, "$(check) Gadugi 1/1 ✓");
  const bad = run([task("a", { status: "succeeded" }), task("b", { status: "skipped" })], { status: "failed" });
  assert.equal(model.statusBarView([bad], true)!.text, "$(error) Gadugi 1/2 ✓ 1 ✗");
  const two = model.statusBarView([ok, bad])!;
  assert.equal(two.text, "$(sync~spin) Gadugi 2/3 ✓ 1 ✗ (2 runs)");
});

test("durations and costs read naturally", () => {
  assert.equal(model.formatDuration(0.4), "0s");
  assert.equal(model.formatDuration(42), "42s");
  assert.equal(model.formatDuration(185), "3m 05s");
  assert.equal(model.formatDuration(3725), "1h 02m");
  assert.equal(model.formatCost(0.0421), "$0.042");
  assert.equal(model.formatCost(1.2), "$1.20");
});

test("task rows: description, icon and the context values the menus match", () => {
  const failed = task("d", { status: "failed", attempts: 2, durationSeconds: 12, costUsd: 0.04, worktreeExists: true });
  const ended = run([failed], { status: "failed" });
  assert.equal(model.taskDescription(failed), "failed · 12s · attempt 2 · gadugi/d · $0.040");
  assert.deepEqual(model.taskIcon(failed), { id: "error", color: "testing.iconFailed" });
  const ctx = model.taskContext(ended, failed).split(" ");
  assert.ok(ctx.includes("task.failed") && ctx.includes("task.retryable") && ctx.includes("task.worktree") && ctx.includes("task.started"));
  assert.ok(!ctx.includes("task.running"));
  // A failed task of a run still going cannot be retried yet.
  assert.ok(!model.taskContext(run([failed]), failed).split(" ").includes("task.retryable"));
  const running = task("e", { status: "running", phase: "verifying", attempts: 1 });
  assert.equal(model.taskDescription(running), "verifying · gadugi/e");
  assert.ok(model.taskContext(run([running]), running).split(" ").includes("task.running"));
  assert.equal(model.taskContext(run([task("q")]), task("q")), "task task.queued");
  // A task a cluster runs says where, and its tooltip names no worktree on this machine.
  const remote = task("r", { status: "running", phase: "agent", attempts: 1, placement: "on n2 (slurm job 7)", worktreeExists: false });
  assert.equal(model.taskDescription(remote), "agent · on n2 (slurm job 7) · gadugi/r");
  const tip = model.taskTooltip(remote);
  assert.ok(tip.includes("runs on n2 \\(slurm job 7\\)") && !tip.includes("worktree:"), tip);
});

test("a running run without a driver is interrupted and resumable", () => {
  const orphan = run([task("a", { status: "running" })], { driverAlive: false, owned: false });
  assert.ok(model.isOrphaned(orphan));
  assert.equal(model.runContext(orphan), "run run.orphaned");
  assert.deepEqual(model.runIcon(orphan), { id: "debug-pause", color: "charts.yellow" });
  assert.match(model.runDescription(orphan, Date.parse("2026-11-21T09:46:00Z")), /^interrupted \(resume it\) · 0\/1 ✓ · 48s$/);
  assert.equal(model.runContext(run([])), "run run.running");
  assert.equal(model.runContext(run([], { status: "failed", driverAlive: false })), "run run.failed");
});

test("run description sums the reported cost", () => {
  const r = run([task("a", { costUsd: 0.5 }), task("b", { costUsd: 0.75 }), task("c")], {
    status: "succeeded", finishedAt: "2026-11-21T09:45:42.000Z",
  });
  assert.equal(model.runDescription(r, 0), "succeeded · 0/3 ✓ · 30s · $1.25");
});

test("prompt files: known tasks, prompt folders, Gadugi front matter, Depends on lines", () => {
  const none = new Set<string>();
  assert.ok(model.isPromptFile("/r/prompts/a.md", "# A", none));
  assert.ok(model.isPromptFile("/r/docs/a.md", "---\ndepends_on: [b.md]\n---\n# A", none));
  assert.ok(model.isPromptFile("/r/docs/a.md", "# A\n\nDepends on: b.md\n", none));
  assert.ok(model.isPromptFile("/r/x.md", "# X", new Set(["/r/x.md"])));
  assert.ok(!model.isPromptFile("/r/README.md", "# Readme\n\n---\ntitle: x\n---", none));
  assert.ok(!model.isPromptFile("/r/prompts/a.txt", "", none));
  assert.ok(!model.isPromptFile("/r/notes.md", "---\ntitle: notes\n---\n", none));
});

test("the plan page lists tasks, the critical path and conflicts", () => {
  const md = model.planMarkdown({
    tasks: [
      { id: "a", title: "Parser | core", prompt_file: "/r/a.md", depends_on: [], after: [], files: ["src/p.rs"], agent: null, timeout_seconds: null, retries: null, verify: null, remaining_path: 2 },
      { id: "b", title: "Docs", prompt_file: "/r/b.md", depends_on: ["a"], after: [], files: [], agent: "claude", timeout_seconds: 60, retries: 1, verify: null, remaining_path: 1 },
    ],
    critical_path: ["a", "b"],
    conflicts: [{ tasks: ["a", "c"], paths: ["src/p.rs"], serialized: true }],
  });
  assert.match(md, /Critical path: `a` → `b`/);
  assert.match(md, /\| `a` \| Parser \\\| core \| — \| — \| src\/p\.rs \| default \|/);
  assert.match(md, /\| `b` \| Docs \| `a` \| — \| — \| claude \|/);
  assert.match(md, /`a`, `c` both touch `src\/p\.rs`: the second waits for the first/);
});
