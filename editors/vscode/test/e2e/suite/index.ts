// Extension-host test suite (the `extensionTestsPath` kind): runs inside VS Code's extension
// host next to the extension, started by extensionHost.test.ts in code-server. API-level
// checks: activation, the manifest's commands and machine-scoped settings, and a real run of
// two prompt files (good.md succeeds, bad.md fails) seen through the extension's exported API
// and VS Code's diagnostics. A tiny sequential runner: each check is logged; the first
// failure rejects, which makes the workbench report exit code 1.

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import type * as vscodeApi from "vscode";

import type { GadugiApi } from "../../../src/extension";
import { runChecks, waitFor, waitForTree, within } from "./support";

export async function run(): Promise<void> {
  // Loaded here, not at the top: only the extension host has the `vscode` module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vscode = require("vscode") as typeof vscodeApi;
  const checks: [string, () => Promise<void>][] = [];
  const check = (name: string, fn: () => Promise<void>) => checks.push([name, fn]);

  const id = "gadugi.gadugi-vscode";
  let api: GadugiApi | undefined;
  const ext = () => {
    const e = vscode.extensions.getExtension<GadugiApi>(id);
    assert.ok(e, `extension ${id} is not installed`);
    return e;
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const manifest = () => ext().packageJSON as any;

  check("the extension activates and exports its API", async () => {
    api = await ext().activate();
    assert.ok(ext().isActive);
    for (const key of ["ready", "treeState", "statusBarText", "onDidChangeTree", "runsItems"] as const) {
      assert.ok(api && key in api, `the API has no ${key}`);
    }
  });

  check("every gadugi-vscode.* command of the manifest is registered", async () => {
    const declared: string[] = manifest().contributes.commands.map((c: { command: string }) => c.command);
    assert.ok(declared.length > 0);
    assert.ok(declared.every((c) => c.startsWith("gadugi-vscode.")), `${declared}`);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = declared.filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], "declared but not registered");
  });

  check("the settings that name programs are machine-scoped and restricted", async () => {
    const props = manifest().contributes.configuration.properties;
    const restricted: string[] = manifest().capabilities.untrustedWorkspaces.restrictedConfigurations;
    for (const key of ["gadugi.server.path", "gadugi.agent.profile", "gadugi.agent.extraArgs"]) {
      assert.ok(props[key], `${key} is not contributed`);
      assert.equal(props[key].scope, "machine", `${key} scope`);
      assert.ok(restricted.includes(key), `${key} is not a restricted configuration`);
      const inspected = vscode.workspace.getConfiguration().inspect(key);
      assert.ok(inspected, `${key} is unknown to VS Code's configuration`);
    }
  });

  check("the server starts (api.ready) and sends its tree", async () => {
    await within(api!.ready, "the server did not start");
    // The first tree state follows the start (a request/notification after `ready`).
    const state = await waitForTree(api!, "a first tree state", () => true);
    assert.ok(Array.isArray(state.runs));
  });

  const folder = () => {
    const f = vscode.workspace.workspaceFolders?.[0];
    assert.ok(f, "no workspace folder");
    return f.uri;
  };
  const good = () => vscode.Uri.joinPath(folder(), "prompts", "good.md");
  const bad = () => vscode.Uri.joinPath(folder(), "prompts", "bad.md");
  let runId = "";

  check("orchestrateInParallel with two prompt files runs both: good succeeds, bad fails", async () => {
    const result = (await vscode.commands.executeCommand("gadugi-vscode.orchestrateInParallel", good(), [good(), bad()])) as
      | { runId: string }
      | undefined;
    assert.ok(result?.runId, `no runId from the command: ${JSON.stringify(result)}`);
    runId = result.runId;
    console.log(`run ${runId} started`);
    const final = await waitForTree(api!, `run ${runId} finished`, (s) => {
      const r = s.runs.find((x) => x.runId === runId);
      return !!r && r.status !== "running" && r.tasks.every((t) => t.status !== "queued" && t.status !== "running");
    });
    const r = final.runs.find((x) => x.runId === runId)!;
    const status = Object.fromEntries(r.tasks.map((t) => [t.id, t.status]));
    assert.deepEqual(status, { good: "succeeded", bad: "failed" });
    assert.equal(r.status, "failed");
    const badTask = r.tasks.find((t) => t.id === "bad")!;
    assert.equal(badTask.exitCode, 3);
    assert.equal(path.basename(vscode.Uri.parse(badTask.promptFile).fsPath), "bad.md");
    assert.equal(r.tasks.find((t) => t.id === "good")!.branch, "gadugi/good");
  });

  check("the Runs view rows and the status bar show the outcome", async () => {
    const items = await Promise.resolve(api!.runsItems());
    const run = items.find((i) => i.label === `Run ${runId}`);
    assert.ok(run, `no row "Run ${runId}": ${JSON.stringify(items)}`);
    assert.match(run.description, /failed/);
    const byLabel = Object.fromEntries(run.children.map((c) => [c.label, c.description]));
    assert.match(byLabel.good ?? "", /succeeded/, JSON.stringify(run.children));
    assert.match(byLabel.bad ?? "", /failed/, JSON.stringify(run.children));
    const text = api!.statusBarText();
    assert.match(text ?? "", /Gadugi 1\/2/, `status bar: ${text}`);
  });

  check("bad.md has a gadugi error diagnostic, good.md none", async () => {
    const diags = await waitFor(
      vscode.languages.onDidChangeDiagnostics,
      () => vscode.languages.getDiagnostics(bad()).filter((d) => d.source === "gadugi"),
      (d) => d.length > 0,
      "no gadugi diagnostic on bad.md",
    );
    assert.ok(
      diags.some((d) => d.severity === vscode.DiagnosticSeverity.Error && /exit|fail/i.test(d.message)),
      JSON.stringify(diags.map((d) => [d.severity, d.message, d.code])),
    );
    assert.deepEqual(
      vscode.languages.getDiagnostics(good()).filter((d) => d.source === "gadugi"),
      [],
      "good.md has gadugi diagnostics",
    );
  });

  const runOf = (id: string) => {
    const r = api!.treeState()?.runs.find((x) => x.runId === id);
    assert.ok(r, `run ${id} is not in the tree`);
    return r;
  };
  const taskOf = (id: string, task: string) => {
    const r = runOf(id);
    const t = r.tasks.find((x) => x.id === task);
    assert.ok(t, `run ${id} has no task ${task}`);
    return { kind: "task" as const, run: r, task: t };
  };

  check("Show Task Log follows the failed task's agent output", async () => {
    const row = taskOf(runId, "bad");
    await vscode.commands.executeCommand("gadugi-vscode.showTaskLog", row);
    assert.equal(api!.followedLog(), row.task.logFile);
    assert.match(fs.readFileSync(row.task.logFile, "utf8"), /\S/, "the agent's log is empty");
  });

  check("Show Task Diff opens the task's commits and changes as a diff", async () => {
    await vscode.commands.executeCommand("gadugi-vscode.showTaskDiff", taskOf(runId, "good"));
    const doc = vscode.window.activeTextEditor?.document;
    assert.ok(doc, "no editor opened");
    assert.equal(doc.uri.scheme, "gadugi");
    assert.equal(doc.languageId, "diff");
    assert.match(doc.getText(), /^# commits$/m);
    assert.match(doc.getText(), /\+\+\+ b\/src\/good\.txt/);
  });

  check("the Worktrees view lists the failed task's worktree; removing it keeps the branch", async () => {
    const list = (await api!.worktrees()) as readonly import("../../../src/protocol").WorktreeNode[];
    const w = list.find((x) => x.runId === runId && x.taskId === "bad");
    assert.ok(w, `no worktree of bad: ${JSON.stringify(list)}`);
    assert.ok(fs.existsSync(w.path));
    await vscode.commands.executeCommand("gadugi-vscode.removeWorktree", { kind: "worktree", worktree: w });
    assert.ok(!fs.existsSync(w.path), `${w.path} is still there`);
    const after = await api!.worktrees();
    assert.ok(!after.some((x) => x.path === w.path), "the view still lists it");
    const head = execFileSync("git", ["-C", folder().fsPath, "rev-parse", "--verify", "-q", w.branch], { encoding: "utf8" });
    assert.match(head, /^[0-9a-f]{40}/, `branch ${w.branch} is gone`);
  });

  check("after a server crash the client restarts it; the run goes on, its agent is not restarted", async () => {
    const slow = vscode.Uri.joinPath(folder(), "prompts", "slow.md");
    fs.writeFileSync(slow.fsPath, "# Slow task\n\nTake a while.\n\n<!-- gadugi-sim: seconds=6 file=src/slow.txt -->\n");
    const started = (await vscode.commands.executeCommand("gadugi-vscode.orchestrateInParallel", slow)) as { runId: string } | undefined;
    assert.ok(started?.runId, "no run started");
    const id = started.runId;
    await waitForTree(api!, `slow's agent running in run ${id}`, (s) =>
      s.runs.some((r) => r.runId === id && r.tasks.some((t) => t.id === "slow" && t.phase === "agent")),
    );
    const pid = api!.serverPid();
    assert.ok(pid, "no server process id");
    process.kill(pid, "SIGKILL");
    console.log(`killed the server (pid ${pid}) while run ${id} ran`);
    const done = await waitForTree(api!, `run ${id} finished after the restart`, (s) =>
      s.runs.some((r) => r.runId === id && r.status !== "running"),
    );
    const r = done.runs.find((x) => x.runId === id)!;
    assert.equal(r.status, "succeeded", JSON.stringify(r));
    assert.equal(r.tasks[0].attempts, 1, "the agent was started again instead of re-attached");
    assert.notEqual(api!.serverPid(), pid, "the server was not restarted");
  });

  await runChecks(checks);
}
