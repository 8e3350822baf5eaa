// Extension-host suite of the after-run commands and of run control, in a real VS Code
// (started by workflow.test.ts in code-server, with a fake `gh` on PATH and a bare repository
// as `origin`): retry a failed task, merge a run (integration branch built, the user's branch
// unmoved), a merge that stops at a conflict, show the report, open pull requests (the checks
// first, then one per task), cancel a running task and then its run, resume a run whose
// driver was killed. Each command runs through `vscode.commands.executeCommand` with the same
// tree element a click on its row passes.

import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import type * as vscodeApi from "vscode";

import type { GadugiApi } from "../../../src/extension";
import type * as proto from "../../../src/protocol";
import { runChecks, waitForTree, within } from "./support";

export async function run(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vscode = require("vscode") as typeof vscodeApi;
  const checks: [string, () => Promise<void>][] = [];
  const check = (name: string, fn: () => Promise<void>) => checks.push([name, fn]);
  let api: GadugiApi;
  const repo = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
  const file = (rel: string) => vscode.Uri.file(path.join(repo(), rel));
  const git = (...args: string[]) => execFileSync("git", ["-C", repo(), ...args], { encoding: "utf8" }).trim();
  const runOf = (id: string) => {
    const r = api.treeState()?.runs.find((x) => x.runId === id);
    assert.ok(r, `run ${id} is not in the tree`);
    return r;
  };
  const runRow = (id: string) => ({ kind: "run" as const, run: runOf(id) });
  const taskRow = (id: string, task: string) => {
    const r = runOf(id);
    const t = r.tasks.find((x) => x.id === task);
    assert.ok(t, `run ${id} has no task ${task}`);
    return { kind: "task" as const, run: r, task: t };
  };
  const ended = (id: string) => (s: proto.TreeState) =>
    s.runs.some((r) => r.runId === id && r.status !== "running" && r.tasks.every((t) => t.status !== "running" && t.status !== "queued"));
  const statuses = (id: string) => Object.fromEntries(runOf(id).tasks.map((t) => [t.id, t.status]));
  const orchestrate = async (...rel: string[]) => {
    const uris = rel.map(file);
    const r = (await vscode.commands.executeCommand("gadugi-vscode.orchestrateInParallel", uris[0], uris)) as proto.OrchestrateResult | undefined;
    assert.ok(r?.runId, `no run started for ${rel.join(", ")}`);
    return r.runId;
  };
  // The user's checkout: its branch, its commit, and that it has no changes.
  let checkout = { branch: "", head: "" };
  const assertCheckoutUntouched = () => {
    assert.equal(git("symbolic-ref", "--short", "HEAD"), checkout.branch, "the checkout left its branch");
    assert.equal(git("rev-parse", "HEAD"), checkout.head, "the user's branch moved");
    const changes = git("status", "--porcelain").split("\n").filter((l) => l && !l.includes(".gadugi/"));
    assert.deepEqual(changes, [], "the checkout has changes");
  };

  /** The Markdown preview tab whose label matches, once it is open. */
  const previewTab = (label: RegExp) =>
    within(
      new Promise<vscodeApi.Tab>((resolve) => {
        const find = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => label.test(t.label) && t.input instanceof vscode.TabInputWebview);
        const now = find();
        if (now) return resolve(now);
        const sub = vscode.window.tabGroups.onDidChangeTabs(() => {
          const t = find();
          if (t) {
            sub.dispose();
            resolve(t);
          }
        });
      }),
      () => `no preview tab ${label}: ${vscode.window.tabGroups.all.flatMap((g) => g.tabs).map((t) => t.label)}`,
    );

  let main = "";
  check("the server starts; the checkout is noted", async () => {
    api = (await vscode.extensions.getExtension<GadugiApi>("gadugi.gadugi-vscode")!.activate())!;
    await within(api.ready, "the server did not start");
    checkout = { branch: git("symbolic-ref", "--short", "HEAD"), head: git("rev-parse", "HEAD") };
  });

  check("a run of three tasks: a and b (after a) succeed, flaky fails its first attempt", async () => {
    main = await orchestrate("prompts/a.md", "prompts/b.md", "prompts/flaky.md");
    await waitForTree(api, `run ${main} ended`, ended(main));
    assert.deepEqual(statuses(main), { a: "succeeded", b: "succeeded", flaky: "failed" });
  });

  check("Retry Task on the failed task runs it again on its branch: it succeeds with a second attempt", async () => {
    await vscode.commands.executeCommand("gadugi-vscode.retryTask", taskRow(main, "flaky"));
    await waitForTree(api, "flaky succeeded after a retry", (s) =>
      s.runs.some((x) => x.runId === main && x.status === "succeeded" && x.tasks.some((t) => t.id === "flaky" && t.attempts === 2)),
    );
    assert.equal(git("show", "gadugi/flaky:flaky.txt"), "fixed");
  });

  check("Merge Run builds gadugi/integrate/<run> in dependency order, verified; the user's branch does not move", async () => {
    const result = (await vscode.commands.executeCommand("gadugi-vscode.mergeRun", runRow(main), { verify: "test -f src/a.txt" })) as
      | proto.MergeResult
      | undefined;
    assert.ok(result, "Merge Run answered nothing");
    assert.ok(result.complete, JSON.stringify(result));
    const order = result.steps.map((x) => x.taskId);
    assert.ok(order.indexOf("a") < order.indexOf("b"), `a before b: ${order}`);
    assert.deepEqual(result.steps.map((x) => x.outcome), ["merged", "merged", "merged"]);
    assert.equal(result.integrationBranch, `gadugi/integrate/${main}`);
    assert.equal(git("rev-parse", result.integrationBranch), result.head, "the branch is where the result says");
    for (const f of ["src/a.txt", "src/b.txt", "flaky.txt"]) git("cat-file", "-e", `${result.integrationBranch}:${f}`);
    assert.ok(result.lines.some((l) => /verified/.test(l)), result.lines.join("\n"));
    assertCheckoutUntouched();
    assert.ok(!fs.existsSync(path.join(repo(), "src", "a.txt")), "the merge wrote into the checkout");
  });

  check("Show Report writes report.md with the timeline picture next to it and opens the Markdown preview", async () => {
    const report = (await vscode.commands.executeCommand("gadugi-vscode.showReport", runRow(main))) as proto.ReportResult | undefined;
    assert.ok(report, "Show Report answered nothing");
    const md = fs.readFileSync(report.markdown, "utf8");
    assert.match(md, /\| `flaky` /, "the task table");
    assert.match(md, /!\[Timeline of run [^\]]*\]\(timeline\.svg\)/);
    assert.match(md, /## Integration[\s\S]*`a`: merged/, "the merge is in the report");
    const svg = fs.readFileSync(report.timeline, "utf8");
    assert.deepEqual([...svg.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1]).sort(), ["a", "b", "flaky"]);
    const preview = await previewTab(/report\.md/);
    assert.match(preview.label, /Preview/);
  });

  const fakeGh = process.env.FAKE_GH_DIR!;
  const remote = () => git("remote", "get-url", "origin");
  const remoteBranches = () => execFileSync("git", ["-C", remote(), "for-each-ref", "--format=%(refname:short)"], { encoding: "utf8" }).trim();
  check("Open Pull Requests checks gh first: logged out, nothing is pushed", async () => {
    assert.ok(fakeGh && fs.existsSync(path.join(fakeGh, "bin", "gh")), "the fake gh is not set up");
    fs.writeFileSync(path.join(fakeGh, "auth-fails"), "");
    try {
      const r = await vscode.commands.executeCommand("gadugi-vscode.openPullRequests", runRow(main));
      assert.equal(r, undefined, "the command reported an error, not a result");
    } finally {
      fs.rmSync(path.join(fakeGh, "auth-fails"));
    }
    // It was gh that refused: the server found the fake gh and asked it.
    assert.match(fs.readFileSync(path.join(fakeGh, "calls"), "utf8"), /^auth status$/m);
    assert.equal(remoteBranches(), "", "something was pushed");
    assert.ok(!fs.existsSync(path.join(fakeGh, "prs")), "a pull request was opened");
  });

  check("Open Pull Requests pushes the task branches and opens one pull request per task, links shown", async () => {
    const r = (await vscode.commands.executeCommand("gadugi-vscode.openPullRequests", runRow(main))) as proto.PullRequestsResult | undefined;
    assert.ok(r, "Open Pull Requests answered nothing");
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.pullRequests.map((p) => p.taskId).sort(), ["a", "b", "flaky"]);
    for (const p of r.pullRequests) assert.match(p.url, /^https:\/\/github\.com\/example\/repo\/pull\/\d+$/);
    const prs = fs.readFileSync(path.join(fakeGh, "prs"), "utf8");
    assert.match(prs, /head=gadugi\/a base=main title=Task A/);
    assert.match(prs, /head=gadugi\/b base=main/);
    assert.deepEqual(remoteBranches().split("\n").sort(), ["gadugi/a", "gadugi/b", "gadugi/flaky"]);
    await previewTab(/Pull requests/);
    const links = (await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: "gadugi", path: `/${main}/Pull requests.md` }))).getText();
    for (const p of r.pullRequests) assert.ok(links.includes(`[${p.url}](${p.url})`), links);
    assertCheckoutUntouched();
  });

  check("Merge Run of two tasks that write the same file stops at the conflict, naming task and file", async () => {
    const id = await orchestrate("conflict/c1.md", "conflict/c2.md");
    await waitForTree(api, `run ${id} ended`, ended(id));
    assert.deepEqual(statuses(id), { c1: "succeeded", c2: "succeeded" });
    const result = (await vscode.commands.executeCommand("gadugi-vscode.mergeRun", runRow(id), { verify: "" })) as proto.MergeResult | undefined;
    assert.ok(result, "Merge Run answered nothing");
    assert.equal(result.complete, false);
    const stop = result.steps.find((x) => x.outcome === "conflict");
    assert.ok(stop, JSON.stringify(result.steps));
    assert.deepEqual(stop.files, ["shared.txt"]);
    assert.equal(result.steps[0].outcome, "merged", "the first branch is in");
    assert.equal(git("rev-parse", result.integrationBranch), result.head, "the branch stays at the last good merge");
    assertCheckoutUntouched();
  });

  check("Cancel Task stops one running task, the other goes on; Cancel Run stops the run", async () => {
    const id = await orchestrate("slow/s1.md", "slow/s2.md");
    await waitForTree(api, "both slow agents running", (s) =>
      s.runs.some((r) => r.runId === id && r.tasks.every((t) => t.phase === "agent")),
    );
    await vscode.commands.executeCommand("gadugi-vscode.cancelTask", taskRow(id, "s1"));
    const one = await waitForTree(api, "s1 cancelled", (s) => s.runs.some((r) => r.runId === id && r.tasks.some((t) => t.id === "s1" && t.status === "cancelled")));
    const s2 = one.runs.find((r) => r.runId === id)!.tasks.find((t) => t.id === "s2")!;
    assert.equal(s2.status, "running", "cancelling one task stopped the other");
    await vscode.commands.executeCommand("gadugi-vscode.cancelRun", runRow(id));
    await waitForTree(api, `run ${id} cancelled`, (s) => s.runs.some((r) => r.runId === id && r.status === "cancelled"));
    assert.deepEqual(statuses(id), { s1: "cancelled", s2: "cancelled" });
    assert.ok(fs.existsSync(taskRow(id, "s2").task.worktree), "a cancelled task keeps its worktree");
  });

  check("Resume takes over a run whose driver was killed: its agent is re-attached, not restarted", async () => {
    // A run started from the terminal, whose gadugi process dies while the agent works.
    const bin = api.server()!.path;
    const cli = spawn(bin, ["run", "resume/r.md"], { cwd: repo(), stdio: "ignore", detached: true });
    const pid = cli.pid!;
    let id = "";
    await waitForTree(api, "the terminal's run with its agent working", (s) => {
      const r = s.runs.find((x) => x.tasks.some((t) => t.id === "r" && t.phase === "agent"));
      id = r?.runId ?? "";
      return !!r;
    });
    const gone = new Promise((resolve) => cli.once("exit", resolve));
    process.kill(pid, "SIGKILL");
    await within(gone, "the terminal's gadugi did not die");
    assert.equal(runOf(id).status, "running", "the run has not ended: nobody drives it");
    await vscode.commands.executeCommand("gadugi-vscode.resume", runRow(id));
    await waitForTree(api, `run ${id} finished after the resume`, (s) => s.runs.some((r) => r.runId === id && r.status !== "running"));
    const r = runOf(id);
    assert.equal(r.status, "succeeded", JSON.stringify(r));
    assert.equal(r.tasks[0].attempts, 1, "the agent was started again instead of re-attached");
    assert.equal(git("show", "gadugi/r:src/r.txt").split("\n")[0], "Resumed task");
  });

  await runChecks(checks, "workflow");
}
