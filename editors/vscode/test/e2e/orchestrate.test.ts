// End to end, in a real VS Code (code-server) driven by chromium: the packaged VSIX is
// installed, two prompt files are selected in the Explorer and run with the context menu's
// "Orchestrate in parallel"; the status bar, the Runs tree, the Problems panel, the branches
// and the untouched checkout are checked. Screenshots of each step go to test-artifacts/.
// With GADUGI_SCREENSHOT_DIR set, a clean screenshot of the Gadugi view after the run is saved
// there as vscode-run.png (the README's picture: GADUGI_SCREENSHOT_DIR=docs/images).

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CodeServer, LONG, Workbench, git, launchBrowser, log, makePromptRepo, packagedVsix, repoRoot, withHarness } from "./codeServer";

type Row = { label: string; description: string; aria: string; level: number };

const taskRow = (rows: Row[], id: string) => rows.find((r) => r.label === id);
const hasStatus = (row: Row | undefined, status: string) =>
  !!row && new RegExp(`\\b${status}\\b`).test(`${row.description} ${row.aria}`);

test("Orchestrate in parallel from the Explorer: status bar, Runs tree, diagnostics, branches", { timeout: 5 * LONG }, async () => {
  assert.ok(fs.existsSync(packagedVsix), `no ${packagedVsix}: run npm run package first`);
  let wb: Workbench | undefined;
  await withHarness(
    "orchestrate",
    async () => {
      const repo = makePromptRepo();
      const head = git(repo, "rev-parse", "HEAD");
      const server = await CodeServer.start({ name: "orchestrate", folder: repo, vsix: packagedVsix });
      const browser = await launchBrowser();
      wb = await Workbench.open(browser, server);
      const page = wb.page;

      // The Explorer with both prompt files.
      await wb.showExplorer();
      await wb.expandFolder("prompts");
      await wb.explorerRow("good.md").waitFor();
      await wb.explorerRow("bad.md").waitFor();
      await wb.screenshot("explorer");

      // Select both, right-click one, "Orchestrate in parallel".
      await wb.selectExplorerRows(["bad.md", "good.md"]);
      await wb.explorerContextMenu("good.md", "Orchestrate in parallel", "context-menu");
      log("picked Orchestrate in parallel");

      // Progress in the status bar while it runs (or its result right after).
      const progress = await wb.waitForStatusBar(/Gadugi \d+\/2/);
      log(`status bar: ${progress}`);
      await wb.screenshot("status-bar-progress");

      // The Runs view: a run row and both task rows, ending succeeded / failed.
      await wb.openGadugiView();
      const rows = await wb.waitForTree(
        "Runs",
        "good succeeded, bad failed, and the run ended",
        (r) =>
          hasStatus(taskRow(r, "good"), "succeeded") &&
          hasStatus(taskRow(r, "bad"), "failed") &&
          r.some((row) => /^Run \S+$/.test(row.label) && !hasStatus(row, "running")),
      );
      log(`Runs rows:\n${rows.map((r) => `  ${"  ".repeat(Math.max(0, r.level - 1))}${r.label} — ${r.description}`).join("\n")}`);
      const runRows = rows.filter((r) => /^Run \S+$/.test(r.label));
      assert.equal(runRows.length, 1, "one run row");
      assert.match(`${runRows[0].description} ${runRows[0].aria}`, /\bfailed\b/, "the run failed (one task failed)");
      assert.ok(taskRow(rows, "good")!.level > runRows[0].level, "tasks are children of the run");
      assert.match(taskRow(rows, "bad")!.aria, /exit/i, "the failed task says why (exit status)");
      const final = await wb.waitForStatusBar(/Gadugi 1\/2/);
      log(`status bar after the run: ${final}`);

      // A task row opens its prompt file: bad.md, with its diagnostic.
      await wb.treeRow("Runs", "bad").click();
      await page.locator('.tabs-container .tab[aria-label^="bad.md"]').first().waitFor();
      await page.locator(".monaco-editor .squiggly-error").first().waitFor({ state: "attached" });
      await wb.widenSideBar(560);
      await page.mouse.move(1270, 600); // no hover tooltip in the pictures
      await wb.screenshot("runs-tree-final");

      // The README picture, on request only.
      const shotDir = process.env.GADUGI_SCREENSHOT_DIR;
      if (shotDir) await wb.screenshot("readme", path.resolve(repoRoot, shotDir, "vscode-run.png"));

      // The Problems panel lists bad.md's failure.
      const deadline = Date.now() + LONG;
      let problems = await wb.problems();
      while (!problems.some((p) => /bad/i.test(p) && /exit|failed/i.test(p))) {
        assert.ok(Date.now() < deadline, `no Gadugi problem for bad.md; Problems: ${JSON.stringify(problems)}`);
        await page.waitForTimeout(250);
        problems = await wb.problems();
      }
      log(`Problems:\n  ${problems.join("\n  ")}`);
      assert.ok(!problems.some((p) => /good\.md/.test(p)), "good.md has no problem");
      await wb.screenshot("problems");

      // The server that ran it is the one the VSIX bundles (npm run package puts it in bin/).
      const out = await server.waitForOutputChannel("Gadugi", /bundled with the extension/);
      log(`Gadugi output: ${out.split("\n")[0]}`);

      // The checkout was not touched: same HEAD, clean status; the task branches exist.
      assert.equal(git(repo, "rev-parse", "HEAD"), head, "HEAD moved");
      assert.equal(git(repo, "rev-parse", "--abbrev-ref", "HEAD"), "main", "the checkout left main");
      const status = git(repo, "status", "--porcelain", "--untracked-files=all")
        .split("\n")
        .filter((l) => l && !/ \.gadugi\//.test(l));
      assert.deepEqual(status, [], "the checkout has changes");
      assert.ok(!fs.existsSync(path.join(repo, "src", "good.txt")), "the agent wrote into the checkout");
      const branches = git(repo, "branch", "--format=%(refname:short)").split("\n");
      assert.ok(branches.includes("gadugi/good"), `branches: ${branches.join(", ")}`);
      assert.ok(branches.includes("gadugi/bad"), `branches: ${branches.join(", ")}`);
      assert.equal(git(repo, "show", "gadugi/good:src/good.txt").length > 0, true, "good's file is on its branch");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});
