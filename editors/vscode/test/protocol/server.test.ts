// The extension's protocol module against the real server binary, over vscode-jsonrpc (the
// library vscode-languageclient speaks through): every command and custom method is called by
// the names in src/protocol.ts, and every answer must have exactly the fields the TypeScript
// interfaces declare — so the mirror cannot drift from what the server really sends.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, ResponseError } from "vscode-jsonrpc/node";

import * as proto from "../../src/protocol";

const root = path.resolve(__dirname, "..", "..", "..", "..", "..");
const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
const binary = path.join(target, "debug", "gadugi");

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" }).trim();
}

function repo(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "gadugi-protocol-")));
  const r = path.join(dir, "repo");
  fs.mkdirSync(path.join(r, "prompts"), { recursive: true });
  git(r, "init", "-q", "-b", "main");
  git(r, "config", "user.name", "Test");
  git(r, "config", "user.email", "test@example.com");
  fs.writeFileSync(path.join(r, "gadugi.toml"), 'max_parallel = 2\n\n[agent]\nprofile = "simulated"\n\n[pool]\nmax_worktrees = 2\n');
  fs.writeFileSync(path.join(r, "prompts/good.md"), "# Good task\n\nWrite it.\n\n<!-- gadugi-sim: seconds=0.3 file=src/good.txt -->\n");
  fs.writeFileSync(path.join(r, "prompts/bad.md"), "# Bad task\n\nFail.\n\n<!-- gadugi-sim: seconds=0.3 file=src/bad.txt exit=3 -->\n");
  git(r, "add", "-A");
  git(r, "commit", "-qm", "init");
  return r;
}

/** Asserts `value` has exactly the fields of `fields` (the TypeScript interface's). */
function sameFields(what: string, value: unknown, fields: object): void {
  assert.ok(value && typeof value === "object", `${what} is an object: ${JSON.stringify(value)}`);
  assert.deepEqual(Object.keys(value).sort(), Object.keys(fields).sort(), `fields of ${what}`);
}

function checkTree(state: proto.TreeState): void {
  sameFields("TreeState", state, proto.TREE_STATE_FIELDS);
  for (const run of state.runs) {
    sameFields("RunNode", run, proto.RUN_NODE_FIELDS);
    assert.ok(proto.RUN_STATUSES.includes(run.status), run.status);
    for (const t of run.tasks) {
      sameFields("TaskNode", t, proto.TASK_NODE_FIELDS);
      assert.ok(proto.TASK_STATUSES.includes(t.status), t.status);
      assert.ok(t.phase === null || proto.TASK_PHASES.includes(t.phase), String(t.phase));
    }
  }
}

test("every command and method, named and shaped as protocol.ts says", async () => {
  assert.ok(fs.existsSync(binary), `${binary} is missing: build the server first (cargo build -p gadugi)`);
  const r = repo();
  const uri = (p: string) => pathToFileURL(path.join(r, p)).toString();
  const server = spawn(binary, ["server", "--stdio"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, GADUGI_LOG: "gadugi=warn" } });
  let stderr = "";
  server.stderr.on("data", (d) => (stderr += d));
  const conn = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  const trees: proto.TreeState[] = [];
  const waiters: (() => void)[] = [];
  conn.onNotification(proto.Methods.treeChanged, (s: proto.TreeState) => {
    trees.push(s);
    waiters.splice(0).forEach((w) => w());
  });
  const progress: { token: string | number; value: { kind: string; title?: string; message?: string } }[] = [];
  conn.onNotification("$/progress", (p: (typeof progress)[number]) => progress.push(p));
  conn.onRequest(() => null); // client requests (progress create, refresh): accept
  conn.onNotification(() => undefined);
  conn.listen();
  const command = <T>(name: string, arg: object) => conn.sendRequest("workspace/executeCommand", { command: name, arguments: [arg] }) as Promise<T>;
  const waitTree = async (what: string, pred: (s: proto.TreeState) => boolean) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const hit = trees.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server stderr:\n${stderr}`);
      await new Promise<void>((res) => {
        waiters.push(res);
        setTimeout(res, 1000);
      });
    }
  };
  try {
    const init = await conn.sendRequest<{ capabilities: { executeCommandProvider?: { commands: string[] } } }>("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(r).toString(),
      workspaceFolders: [{ uri: pathToFileURL(r).toString(), name: "repo" }],
      capabilities: {},
    });
    assert.deepEqual(
      [...(init.capabilities.executeCommandProvider?.commands ?? [])].sort(),
      Object.values(proto.Commands).sort(),
      "the server offers exactly the commands protocol.ts names",
    );
    await conn.sendNotification("initialized", {});

    const plan = await command<proto.PlanJson>(proto.Commands.plan, { files: [uri("prompts")] } satisfies proto.PlanArgs);
    assert.deepEqual(Object.keys(plan).sort(), ["conflicts", "critical_path", "tasks"]);
    assert.deepEqual(plan.tasks.map((t) => t.id).sort(), ["bad", "good"]);

    const started = await command<proto.OrchestrateResult>(proto.Commands.orchestrate, {
      files: [uri("prompts/good.md"), uri("prompts/bad.md")],
      maxParallel: 2,
      agentArgs: [],
    } satisfies proto.OrchestrateArgs);
    assert.deepEqual(Object.keys(started), ["runId"]);
    const runId = started.runId;
    const ended = await waitTree("the run's end", (s) => s.runs.some((x) => x.runId === runId && x.status !== "running"));
    checkTree(ended);
    const run = ended.runs.find((x) => x.runId === runId)!;
    assert.equal(run.status, "failed");
    const byId = new Map(run.tasks.map((t) => [t.id, t]));
    assert.equal(byId.get("good")!.status, "succeeded");
    assert.equal(byId.get("bad")!.status, "failed");
    assert.equal(byId.get("bad")!.exitCode, 3);
    assert.ok(trees.every((s, i) => i === 0 || s.version > trees[i - 1].version), "versions only rise");

    const state = await conn.sendRequest<proto.TreeState>(proto.Methods.treeState, {} satisfies proto.TreeStateParams);
    checkTree(state);

    const list = await conn.sendRequest<proto.WorktreeList>(proto.Methods.worktrees, {} satisfies proto.WorktreesParams);
    assert.deepEqual(Object.keys(list).sort(), ["pool", "worktrees"]);
    assert.equal(list.worktrees.length, 1, "the failed task's worktree stays");
    sameFields("WorktreeNode", list.worktrees[0], proto.WORKTREE_NODE_FIELDS);
    assert.equal(list.worktrees[0].taskId, "bad");
    assert.equal(list.pool.length, 1, "the succeeded task's clean worktree went to the pool");
    sameFields("PoolEntryNode", list.pool[0], proto.POOL_ENTRY_NODE_FIELDS);

    const diff = await command<proto.TaskDiff>(proto.Commands.taskDiff, { runId, taskId: "good" } satisfies proto.TaskRef);
    sameFields("TaskDiff", diff, proto.TASK_DIFF_FIELDS);
    assert.match(diff.diff, /src\/good\.txt/);

    const graph = await conn.sendRequest<proto.RunGraph>(proto.Methods.runGraph, { runId } satisfies proto.RunGraphParams);
    sameFields("RunGraph", graph, proto.RUN_GRAPH_FIELDS);
    assert.deepEqual(graph.tasks.map((t) => t.id).sort(), ["bad", "good"]);
    for (const t of graph.tasks) sameFields("GraphTask", t, { id: true, dependsOn: true, after: true, startedAt: true, finishedAt: true } satisfies Record<keyof proto.GraphTask, true>);
    assert.deepEqual(graph.attempts.map((a) => `${a.task}:${a.attempt}:${a.status}`).sort(), ["bad:1:failed", "good:1:succeeded"]);
    for (const a of graph.attempts) sameFields("GraphAttempt", a, { task: true, attempt: true, startedAt: true, finishedAt: true, status: true } satisfies Record<keyof proto.GraphAttempt, true>);
    await assert.rejects(conn.sendRequest(proto.Methods.runGraph, { runId: "no-such-run" }), (e: ResponseError<unknown>) => e.code === proto.REQUEST_FAILED);

    const pruned = await command<proto.CleanupResult>(proto.Commands.poolPrune, { all: true } satisfies proto.PoolPruneArgs);
    assert.ok(pruned.lines.some((l) => l.startsWith("removed")), pruned.lines.join("\n"));
    assert.ok(!fs.existsSync(list.pool[0].path), "the pooled worktree's folder is gone");

    const cancel = await command<proto.CancelResult>(proto.Commands.cancelTask, { runId, taskId: "good" });
    assert.deepEqual(cancel, { cancelled: false });
    assert.deepEqual(await command<proto.CancelResult>(proto.Commands.cancelRun, { runId } satisfies proto.RunRef), { cancelled: false });

    const status = await command<Record<string, unknown>>(proto.Commands.status, { runId } satisfies proto.StatusArgs);
    assert.equal(status.run_id, runId);

    const dry = await command<proto.CleanupResult>(proto.Commands.cleanup, { runId, taskId: "bad", dryRun: true } satisfies proto.CleanupArgs);
    assert.deepEqual(Object.keys(dry), ["lines"]);
    assert.match(dry.lines.join("\n"), /would remove .*bad/);

    await assert.rejects(command(proto.Commands.resume, { runId }), (e: ResponseError<unknown>) => e.code === proto.REQUEST_FAILED);

    const retried = await command<proto.OrchestrateResult>(proto.Commands.retryTask, { runId, taskId: "bad" });
    assert.equal(retried.runId, runId);
    await waitTree("the retried task's end", (s) => s.runs.some((x) => x.runId === runId && x.status !== "running" && x.tasks.some((t) => t.id === "bad" && t.attempts === 2)));

    // After the run: merge (steps as $/progress of the request's token), report, pull requests.
    const merged = (await conn.sendRequest("workspace/executeCommand", {
      command: proto.Commands.mergeRun,
      arguments: [{ runId, verify: "test -f src/good.txt" } satisfies proto.MergeArgs],
      workDoneToken: "merge-1",
    })) as proto.MergeResult;
    sameFields("MergeResult", merged, proto.MERGE_RESULT_FIELDS);
    sameFields("MergeStepNode", merged.steps[0], proto.MERGE_STEP_FIELDS);
    assert.equal(merged.integrationBranch, `gadugi/integrate/${runId}`);
    assert.ok(merged.complete, JSON.stringify(merged));
    assert.deepEqual(merged.steps.map((x) => [x.taskId, x.outcome]), [["good", "merged"]]);
    assert.equal(git(r, "rev-parse", merged.integrationBranch), merged.head);
    // Notifications and the answer travel apart: the `end` may come just after the answer.
    const ofMerge = () => progress.filter((p) => p.token === "merge-1").map((p) => p.value.kind);
    for (let i = 0; i < 100 && !ofMerge().includes("end"); i++) await new Promise((res) => setTimeout(res, 50));
    const kinds = ofMerge();
    assert.deepEqual([kinds[0], kinds[kinds.length - 1]], ["begin", "end"], kinds.join(","));
    assert.equal(kinds.filter((k) => k === "report").length, merged.lines.length, "one report per line");

    const report = await command<proto.ReportResult>(proto.Commands.report, { runId } satisfies proto.RunRef);
    sameFields("ReportResult", report, proto.REPORT_RESULT_FIELDS);
    assert.match(fs.readFileSync(report.markdown, "utf8"), /\]\(timeline\.svg\)/);
    assert.equal(path.dirname(report.timeline), path.dirname(report.markdown));
    assert.match(fs.readFileSync(report.timeline, "utf8"), /^<svg /);

    await assert.rejects(command(proto.Commands.openPullRequests, { runId, dryRun: true } satisfies proto.PullRequestsArgs), (e: ResponseError<{ errors: proto.InputProblem[] }>) => {
      assert.equal(e.code, proto.REQUEST_FAILED);
      assert.match(e.data!.errors[0].problem, /no remote/);
      return true;
    });
    git(r, "remote", "add", "origin", path.join(r, "..", "nowhere.git"));
    const dryPr = await command<proto.PullRequestsResult>(proto.Commands.openPullRequests, { runId, dryRun: true });
    sameFields("PullRequestsResult", dryPr, proto.PULL_REQUESTS_RESULT_FIELDS);
    assert.deepEqual(dryPr.pullRequests, []);
    assert.match(dryPr.lines.join("\n"), /Would run: gh pr create --head gadugi\/good --base main/);

    // Bad input: a refused request whose data.errors are InputProblems naming the file.
    fs.writeFileSync(path.join(r, "prompts/broken.md"), "---\ndepends_on: [nowhere.md]\n---\n# Broken\n");
    await assert.rejects(command(proto.Commands.orchestrate, { files: [uri("prompts/broken.md")] }), (e: ResponseError<{ errors: proto.InputProblem[] }>) => {
      assert.equal(e.code, proto.REQUEST_FAILED);
      const problem = e.data!.errors[0];
      assert.deepEqual(Object.keys(problem).sort(), ["file", "fix", "line", "problem"]);
      assert.equal(problem.file, uri("prompts/broken.md"));
      assert.equal(problem.line, 2);
      return true;
    });

    await conn.sendRequest("shutdown");
    const exited = new Promise<number | null>((res) => server.on("exit", (code) => res(code)));
    await conn.sendNotification("exit");
    assert.equal(await exited, 0);
  } finally {
    conn.dispose();
    server.kill();
  }
});
