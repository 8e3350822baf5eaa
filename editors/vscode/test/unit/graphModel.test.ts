import assert from "node:assert/strict";
import { test } from "node:test";

import { applyUpdate, diffViews, graphSignature, patchOfUpdate, planView, runView, shapeKey, slowUpdateLine, timingSummary, updateFor } from "../../src/graphModel";
import type { PlanJson, RunGraph, RunNode, TaskNode } from "../../src/protocol";
import { run as treeRun, task } from "./fixtures";

const run = (tasks: TaskNode[], over: Partial<RunNode> = {}) => treeRun(tasks, { runId: "r1", startedAt: "2026-11-21T09:45:00.000Z", ...over });

const graph: RunGraph = {
  runId: "r1",
  startedAt: "2026-11-21T09:45:00.000Z",
  finishedAt: null,
  criticalPath: ["schema", "api"],
  tasks: [
    { id: "schema", dependsOn: [], after: [], startedAt: "2026-11-21T09:45:01.000Z", finishedAt: "2026-11-21T09:45:11.000Z" },
    { id: "api", dependsOn: ["schema"], after: [], startedAt: "2026-11-21T09:45:12.000Z", finishedAt: null },
    { id: "ui", dependsOn: [], after: ["schema"], startedAt: null, finishedAt: null },
  ],
  conflicts: [
    { tasks: ["api", "ui"], baseBranch: null, files: ["src/api.rs (2 hunks)"], predicted: true, serialized: false },
    { tasks: ["schema"], baseBranch: "main", files: ["schema.sql (content)"], predicted: true, serialized: false },
  ],
  attempts: [
    { task: "schema", attempt: 1, startedAt: "2026-11-21T09:45:02.000Z", finishedAt: "2026-11-21T09:45:10.000Z", status: "succeeded" },
    { task: "api", attempt: 1, startedAt: "2026-11-21T09:45:13.000Z", finishedAt: null, status: "running" },
  ],
};

const tasks = () => [
  task("schema", { status: "succeeded", attempts: 1, commits: 1, durationSeconds: 10 }),
  task("api", { status: "running", phase: "agent", attempts: 1, worktreeExists: true, dependsOn: ["schema"] }),
  task("ui"),
];

test("a run's view: statuses from the tree, critical path, dependencies and waits, conflicts, attempts in seconds", () => {
  const v = runView(run(tasks()), graph);
  assert.equal(v.kind, "run");
  assert.match(v.title, /^Run r1 — running · 1\/3 ✓$/);
  assert.deepEqual(v.nodes.map((n) => [n.id, n.status, n.critical]), [["schema", "succeeded", true], ["api", "running", true], ["ui", "queued", false]]);
  assert.equal(v.nodes[0].detail, "succeeded · 10s");
  assert.equal(v.nodes[1].detail, "agent");
  assert.deepEqual(v.edges, [
    { from: "schema", to: "api", kind: "depends", critical: true },
    { from: "schema", to: "ui", kind: "after", critical: false },
  ]);
  assert.deepEqual(v.conflicts.map((c) => [c.a, c.b, c.baseBranch, c.predicted]), [["api", "ui", undefined, true], ["schema", undefined, "main", true]]);
  assert.deepEqual(v.bars.map((b) => [b.key, b.start, b.end, b.status]), [["schema#1", 2, 10, "succeeded"], ["api#1", 13, undefined, "running"]]);
});

test("a node offers what the Runs view's row offers", () => {
  const live = runView(run(tasks()), graph);
  const actions = (id: string, v = live) => v.nodes.find((n) => n.id === id)!.actions;
  assert.deepEqual(actions("api"), ["showTaskLog", "showTaskDiff", "cancelTask", "openWorktree", "openPrompt"]);
  assert.deepEqual(actions("ui"), ["cancelTask", "openPrompt"], "a queued task can be cancelled; no log or diff yet");
  const ended = runView(run([task("bad", { status: "failed", attempts: 1, worktreeExists: true })], { status: "failed" }), undefined);
  assert.deepEqual(actions("bad", ended), ["showTaskLog", "showTaskDiff", "retryTask", "openWorktree", "openPrompt"]);
});

test("before the server's graph arrives, the tree's dependencies are drawn", () => {
  const v = runView(run(tasks()), undefined);
  assert.deepEqual(v.edges.map((e) => `${e.from}>${e.to}`), ["schema>api"]);
  assert.deepEqual(v.conflicts, []);
  assert.deepEqual(v.bars, []);
});

test("a status change is a patch of one node; only a new shape is laid out again", () => {
  const before = runView(run(tasks()), graph);
  const next = tasks();
  next[1] = { ...next[1], status: "succeeded", phase: null, durationSeconds: 9 };
  const afterGraph: RunGraph = { ...graph, attempts: [graph.attempts[0], { ...graph.attempts[1], finishedAt: "2026-11-21T09:45:22.000Z", status: "succeeded" }] };
  const after = runView(run(next), afterGraph);
  const p = diffViews(before, after);
  assert.equal(p.relayout, false);
  assert.deepEqual(p.nodes.map((n) => n.id), ["api"]);
  assert.deepEqual(p.bars.map((b) => [b.key, b.end]), [["api#1", 22]]);
  assert.equal(p.conflicts, false);
  assert.equal(p.header, true, "the title counts 2/3 now");

  const same = diffViews(after, runView(run(next), afterGraph));
  assert.deepEqual([same.relayout, same.nodes.length, same.bars.length, same.conflicts, same.header], [false, 0, 0, false, false], "nothing changed, nothing to do");

  const grown = runView(run([...next, task("docs", { dependsOn: ["api"] })]), graph);
  assert.equal(diffViews(after, grown).relayout, true);
  assert.notEqual(shapeKey(after), shapeKey(grown));
  assert.equal(diffViews(undefined, after).relayout, true, "the first view is drawn whole");
  const fewerConflicts = runView(run(next), { ...graph, conflicts: [] });
  assert.equal(diffViews(after, fewerConflicts).conflicts, true);
});

test("the page gets what changed: an update rebuilds the next view exactly; a new shape is sent whole, nothing new not at all", () => {
  const before = runView(run(tasks()), graph);
  const next = tasks();
  next[1] = { ...next[1], status: "succeeded", phase: null, durationSeconds: 9 };
  next[2] = { ...next[2], status: "running", phase: "preparing", attempts: 1 };
  const afterGraph: RunGraph = {
    ...graph,
    conflicts: [graph.conflicts[0]],
    attempts: [
      graph.attempts[0],
      { ...graph.attempts[1], finishedAt: "2026-11-21T09:45:22.000Z", status: "succeeded" },
      { task: "ui", attempt: 1, startedAt: "2026-11-21T09:45:23.000Z", finishedAt: null, status: "running" },
    ],
  };
  const after = runView(run(next), afterGraph);
  const u = updateFor(before, after);
  assert.ok(typeof u === "object");
  assert.deepEqual(u.nodes.map((n) => n.id), ["api", "ui"], "only the nodes that changed travel");
  assert.deepEqual(u.bars.map((b) => b.key), ["api#1", "ui#1"]);
  assert.deepEqual(u.conflicts?.length, 1, "conflicts travel when they changed");
  assert.deepEqual(applyUpdate(before, u), after);
  assert.deepEqual(patchOfUpdate(u), { ...diffViews(before, after), header: true });

  // An attempt no longer in the view (a retried run's graph) is removed.
  const dropped = runView(run(next), { ...afterGraph, attempts: afterGraph.attempts.slice(1) });
  const d = updateFor(after, dropped);
  assert.ok(typeof d === "object");
  assert.deepEqual(d.removedBars, ["schema#1"]);
  assert.equal(d.conflicts, undefined, "unchanged conflicts stay at home");
  assert.deepEqual(applyUpdate(after, d), dropped);

  assert.equal(updateFor(after, runView(run(next), afterGraph)), "same");
  assert.equal(updateFor(undefined, after), "whole");
  assert.equal(updateFor(after, runView(run([...next, task("docs", { dependsOn: ["api"] })]), afterGraph)), "whole");
  assert.equal(updateFor(after, { ...after, runId: "r2" }), "whole", "another run is drawn whole");
});

test("a slow update's line says where its time went", () => {
  assert.equal(
    slowUpdateLine(23.46, 200, { diff: 0.4, graph: 1.25, conflicts: 0, timeline: 2, timelineRedrawn: true, styleLayout: 19.8 }),
    "run graph: an update took 23.5 ms at 200 tasks (patch 0.4, graph 1.3, conflicts 0.0, timeline 2.0 redrawn, style and layout 19.8 ms)",
  );
});

test("the graph is asked again only when a status or an attempt count changes", () => {
  const a = run(tasks());
  const busy = run(tasks().map((t) => (t.id === "api" ? { ...t, lastActivity: "Editing src/api.rs" } : t)));
  assert.equal(graphSignature(a), graphSignature(busy), "new agent output alone does not");
  const retried = run(tasks().map((t) => (t.id === "api" ? { ...t, attempts: 2 } : t)));
  assert.notEqual(graphSignature(a), graphSignature(retried));
  assert.notEqual(graphSignature(a), graphSignature(run(tasks(), { status: "cancelled" })));
});

test("a plan's view: planned tasks, the critical path, declared conflicts, no timeline", () => {
  const plan: PlanJson = {
    tasks: [
      { id: "a", title: "A", prompt_file: "/r/prompts/a.md", depends_on: [], after: [], files: ["src/x.rs"], agent: null, timeout_seconds: null, retries: null, verify: null, remaining_path: 2 },
      { id: "b", title: "B", prompt_file: "/r/prompts/b.md", depends_on: ["a"], after: [], files: [], agent: "codex", timeout_seconds: null, retries: null, verify: null, remaining_path: 1 },
      { id: "c", title: "C", prompt_file: "/r/prompts/c.md", depends_on: [], after: ["a"], files: ["src/x.rs"], agent: null, timeout_seconds: null, retries: null, verify: null, remaining_path: 1 },
    ],
    critical_path: ["a", "b"],
    conflicts: [{ tasks: ["a", "c"], paths: ["src/x.rs"], serialized: true }],
  };
  const v = planView(plan);
  assert.equal(v.kind, "plan");
  assert.deepEqual(v.nodes.map((n) => [n.id, n.status, n.critical, n.actions]), [
    ["a", "planned", true, ["openPrompt"]],
    ["b", "planned", true, ["openPrompt"]],
    ["c", "planned", false, ["openPrompt"]],
  ]);
  assert.equal(v.nodes[1].detail, "planned · codex");
  assert.deepEqual(v.edges.map((e) => [e.from, e.to, e.kind, e.critical]), [["a", "b", "depends", true], ["a", "c", "after", false]]);
  assert.deepEqual(v.conflicts.map((c) => [c.a, c.b, c.files, c.serialized, c.predicted]), [["a", "c", ["src/x.rs"], true, false]]);
  assert.deepEqual(v.bars, []);
});

test("timing summary: median, 95th percentile, maximum and the updates over one frame", () => {
  assert.deepEqual(timingSummary([]), { count: 0, median: 0, p95: 0, max: 0, overFrame: 0 });
  const s = timingSummary(Array.from({ length: 100 }, (_, i) => 100 - i));
  assert.deepEqual(s, { count: 100, median: 51, p95: 96, max: 100, overFrame: 84 });
});
