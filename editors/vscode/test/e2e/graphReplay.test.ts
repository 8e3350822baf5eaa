// The run graph's webview on its own, in Debian's chromium (no VS Code, nothing else running):
// the page the panel builds, the bundled script (dist/graphWebview.js) and its stylesheet, fed
// the messages the panel posts (graphModel.updateFor) for the views of a simulated 200-task run
// (ten waves of twenty, eight at a time, a view every 50 ms as the server's debounced
// `gadugi/treeChanged` comes) made by the extension's own graphModel.runView. It checks that patching update after update ends in exactly the page a
// fresh drawing of the last view gives, and measures each update as the live test does (the
// page's message handler plus the style and layout it forces), without the run's agents, git
// and the editor competing for the machine's cores: the cost of the webview itself.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import type { Page } from "playwright-core";

import { runView, timingSummary, updateFor, type GraphView, type UpdatePhases } from "../../src/graphModel";
import { GRAPH_PAGE_BODY } from "../../src/graphPage";
import type { ToWebview } from "../../src/graphWebview";
import type { GraphAttempt, RunGraph, RunNode, TaskNode } from "../../src/protocol";
import { artifactsDir, extensionRoot, launchBrowser, log, withHarness } from "./codeServer";

/** One update's report from the page. */
interface Timing {
  seq: number;
  ms: number;
  relayout: boolean;
  phases: UpdatePhases;
}

// The browser side of page.evaluate (tsconfig has no DOM lib).
declare const window: {
  postMessage(m: unknown, origin: string): void;
  __timings: Timing[];
};
declare const document: {
  querySelectorAll(s: string): ArrayLike<{ getAttribute(n: string): string | null; textContent: string | null }>;
};

/** The panel's page (graphPanel.ts `page`), with the stylesheet and script inline and VS Code's API stubbed. */
function pageHtml(): string {
  const css = fs.readFileSync(path.join(extensionRoot, "media", "graph.css"), "utf8");
  const js = fs.readFileSync(path.join(extensionRoot, "dist", "graphWebview.js"), "utf8");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><style>${css}</style><title>Gadugi Run Graph</title></head>
<body class="vscode-dark">
${GRAPH_PAGE_BODY}
<script>
window.__timings = [];
window.acquireVsCodeApi = () => ({ postMessage: (m) => { if (m.type === "timing") window.__timings.push(m); } });
</script>
<script>${js.replace(/<\/script/g, "<\\/script")}</script>
</body></html>`;
}

/**
 * The views a 200-task run shows, one per 50 ms tick in which something changed: ten waves of
 * twenty (each task depends on one or two of the wave before, as in graph.test.ts), eight
 * agents at a time, each task preparing for 0.1 s, its agent printing a line per tick for
 * 0.2–0.5 s, committing for 0.05 s; every 25th task fails.
 */
function simulatedRun(): GraphView[] {
  const T0 = Date.parse("2026-12-01T10:00:00Z");
  const iso = (ms: number) => new Date(T0 + ms).toISOString();
  const tasks: TaskNode[] = [];
  for (let w = 0; w < 10; w++) {
    for (let i = 0; i < 20; i++) {
      const id = `w${w}-${i}`;
      tasks.push({
        id,
        title: `Task ${w}-${i}`,
        status: "queued",
        phase: null,
        promptFile: `file:///repo/prompts/${id}.md`,
        branch: `gadugi/${id}`,
        worktree: `/repo/.gadugi/worktrees/${id}`,
        worktreeExists: false,
        dependsOn: w === 0 ? [] : [...new Set([`w${w - 1}-${(i * 7) % 20}`, `w${w - 1}-${(i * 3 + w) % 20}`])],
        attempts: 0,
        exitCode: null,
        durationSeconds: null,
        commits: 0,
        error: null,
        lastActivity: null,
        costUsd: null,
        logFile: `/repo/.gadugi/runs/r1/logs/${id}.log`,
        pendingApprovals: [],
        placement: null,
      });
    }
  }
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const attempts: GraphAttempt[] = [];
  const started = new Map<string, number>();
  const run: RunNode = {
    runId: "r1", repo: "file:///repo", status: "running", owned: true, startedAt: iso(0), finishedAt: null,
    maxParallel: 8, driverAlive: true, tasks,
  };
  const graph = (): RunGraph => ({
    runId: "r1",
    startedAt: iso(0),
    finishedAt: run.finishedAt,
    criticalPath: ["w0-0", "w1-0", "w2-0", "w3-0", "w4-0", "w5-0", "w6-0", "w7-0", "w8-0", "w9-0"],
    tasks: tasks.map((t) => ({ id: t.id, dependsOn: t.dependsOn, after: [], startedAt: null, finishedAt: null })),
    conflicts: [],
    attempts: attempts.map((a) => ({ ...a })),
  });
  const views: GraphView[] = [];
  let last = "";
  for (let now = 0; run.status === "running"; now += 50) {
    let n = 0;
    for (const t of tasks) {
      if (t.status !== "running") continue;
      const age = now - started.get(t.id)!;
      const agentMs = 200 + (Number(t.id.split("-")[1]) % 4) * 100;
      if (age < 100) t.phase = "preparing";
      else if (age < 100 + agentMs) {
        t.phase = "agent";
        t.lastActivity = `step ${Math.floor((age - 100) / 50) + 1}: editing src/${t.id}.txt`;
      } else if (age < 150 + agentMs) t.phase = "committing";
      else {
        const fails = tasks.indexOf(t) % 25 === 24;
        t.status = fails ? "failed" : "succeeded";
        t.phase = null;
        t.exitCode = fails ? 3 : 0;
        t.error = fails ? "the agent exited with code 3" : null;
        t.commits = fails ? 0 : 1;
        t.durationSeconds = age / 1000;
        const a = attempts.find((x) => x.task === t.id)!;
        a.finishedAt = iso(now);
        a.status = t.status;
      }
    }
    for (const t of tasks) {
      if (t.status === "running") n++;
    }
    for (const t of tasks) {
      if (n >= run.maxParallel) break;
      if (t.status !== "queued") continue;
      const deps = t.dependsOn.map((d) => byId.get(d)!.status);
      if (deps.some((s) => s === "failed" || s === "skipped")) {
        t.status = "skipped";
        t.error = "a dependency failed";
        continue;
      }
      if (!deps.every((s) => s === "succeeded")) continue;
      t.status = "running";
      t.phase = "preparing";
      t.attempts = 1;
      t.worktreeExists = true;
      started.set(t.id, now);
      attempts.push({ task: t.id, attempt: 1, startedAt: iso(now), finishedAt: null, status: "running" });
      n++;
    }
    if (tasks.every((t) => t.status !== "queued" && t.status !== "running")) {
      run.status = tasks.some((t) => t.status === "failed") ? "failed" : "succeeded";
      run.finishedAt = iso(now);
    }
    const snapshot = JSON.stringify(run);
    if (snapshot === last) continue;
    last = snapshot;
    views.push(runView(JSON.parse(snapshot) as RunNode, graph()));
  }
  return views;
}

/** What the page shows of the graph and the timeline: each node's class and text, each bar's class. */
async function shown(page: Page): Promise<string[]> {
  return page.evaluate(() => [
    ...Array.from(document.querySelectorAll("#graph [data-id]")).map((e) => `${e.getAttribute("data-id")} ${e.getAttribute("class")} ${e.textContent}`),
    ...Array.from(document.querySelectorAll("#timeline .bar")).map((e) => `bar ${e.getAttribute("class")} ${e.textContent}`),
    ...Array.from(document.querySelectorAll("#timeline .row-label")).map((e) => `row ${e.textContent}`),
  ]);
}

test("Run graph webview at 200 tasks, alone: patching ends where a fresh drawing does; the cost of each update", { timeout: 300_000 }, async () => {
  await withHarness("graph-replay", async () => {
    const views = simulatedRun();
    assert.ok(views.length > 100, `the simulated run has ${views.length} views`);
    const browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.setContent(pageHtml());
    // GADUGI_GRAPH_TRACE=file keeps a trace of the replay, to open in DevTools' Performance panel.
    const tracing = process.env.GADUGI_GRAPH_TRACE;
    if (tracing) await browser.startTracing(page, { categories: ["devtools.timeline", "blink.user_timing"] });
    // As the panel posts them: the first view whole, then what changed (nothing when nothing did).
    let shownView: GraphView | undefined;
    let seq = 0;
    for (const view of views) {
      const update = updateFor(shownView, view);
      shownView = view;
      if (update === "same") continue;
      const message: ToWebview = update === "whole" ? { type: "view", view, seq } : { type: "update", update, seq };
      await page.evaluate((m) => window.postMessage(m, "*"), message);
      // The server's debounce: a view every 50 ms at most.
      await page.waitForFunction((s) => window.__timings.some((t) => t.seq === s), seq);
      await page.waitForTimeout(50);
      seq++;
    }
    if (tracing) fs.writeFileSync(tracing, await browser.stopTracing());
    const patched = await shown(page);
    const timings = await page.evaluate(() => window.__timings);
    // The same last view drawn on a fresh page.
    const fresh = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await fresh.setContent(pageHtml());
    await fresh.evaluate((v) => window.postMessage({ type: "view", view: v, seq: 0 }, "*"), views[views.length - 1]);
    await fresh.waitForFunction(() => window.__timings.length === 1);
    assert.deepEqual(patched, await shown(fresh), "patching update after update shows what drawing the last view does");
    assert.equal(patched.filter((l) => l.startsWith("bar ")).length, views[views.length - 1].bars.length);

    const updates = timings.filter((t) => !t.relayout);
    assert.equal(timings.length, seq, "every message was measured");
    const u = timingSummary(updates.map((t) => t.ms));
    const sum = (k: keyof Omit<UpdatePhases, "timelineRedrawn">) => updates.reduce((a, t) => a + t.phases[k], 0) / updates.length;
    const line =
      `graph replay: 200 tasks, ${u.count} updates: median ${u.median.toFixed(2)} ms, p95 ${u.p95.toFixed(2)} ms, max ${u.max.toFixed(2)} ms, ${u.overFrame} over 16 ms; ` +
      `mean per phase: patch ${sum("diff").toFixed(2)}, graph ${sum("graph").toFixed(2)}, conflicts ${sum("conflicts").toFixed(2)}, timeline ${sum("timeline").toFixed(2)}, style and layout ${sum("styleLayout").toFixed(2)} ms; ` +
      `timeline redrawn ${updates.filter((t) => t.phases.timelineRedrawn).length} times; first layout ${timings.filter((t) => t.relayout).map((t) => t.ms.toFixed(1)).join(", ")} ms`;
    log(line);
    for (const t of updates.filter((x) => x.ms > 16)) log(`  slow: ${JSON.stringify(t)}`);
    fs.mkdirSync(artifactsDir, { recursive: true });
    fs.writeFileSync(path.join(artifactsDir, "graph-replay-timing.txt"), line + "\n");
  });
});
