// The user's journey in a real VS Code (code-server driven by chromium), with a server that is
// slow to start (a `gadugi.server.path` wrapper that sleeps before each start): "Orchestrate in
// parallel" is picked on the prompts folder the moment the Explorer shows it — while the server
// still starts — and must wait for the server (a progress notification) and then run, never
// fail. Then, from the run's row in the Runs view: Merge Run (the integration branch exists, the
// user's branch did not move), Show Report (the Markdown preview with its table and the timeline
// picture, loaded), Open Task Worktree on the failed task (a new window on its worktree), and
// Merge Run of a run whose tasks conflict (the task, the file and where to resolve it named;
// the task's side opened).
// With GADUGI_SCREENSHOT_DIR set, the report preview is saved there as vscode-report.png (the
// README's picture: GADUGI_SCREENSHOT_DIR=docs/images).

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import type { Frame, Locator } from "playwright-core";

import {
  CodeServer,
  LONG,
  Workbench,
  extensionRoot,
  gadugiBin,
  git,
  launchBrowser,
  log,
  BAD_MD,
  GOOD_MD,
  makeRepo,
  repoRoot,
  tempDir,
  withHarness,
} from "./codeServer";

/** Seconds the wrapper sleeps before each start of gadugi (its --version check, then the server). */
const SLOW_START_S = 5;

test("a command given while the server starts waits and runs; merge, report, worktree and a merge conflict from the Runs view", { timeout: 5 * LONG }, async () => {
  assert.ok(fs.existsSync(path.join(extensionRoot, "dist", "extension.js")), "no dist/extension.js: run npm run build first");
  let wb: Workbench | undefined;
  await withHarness(
    "journey",
    async () => {
      const writer = (n: string) => `# Writer ${n}\n\nWrite the shared file.\n\n<!-- gadugi-sim: seconds=0.5 file=shared.txt -->\n`;
      const repo = makeRepo({ "prompts/good.md": GOOD_MD, "prompts/bad.md": BAD_MD, "conflict/c1.md": writer("one"), "conflict/c2.md": writer("two") });
      const head = git(repo, "rev-parse", "HEAD");
      const wrapper = path.join(tempDir("slow-server"), "gadugi");
      fs.writeFileSync(wrapper, `#!/bin/sh\nsleep ${SLOW_START_S}\nexec '${gadugiBin()}' "$@"\n`, { mode: 0o755 });
      const server = await CodeServer.start({ name: "journey", folder: repo, settings: { "gadugi.server.path": wrapper } });
      const browser = await launchBrowser();
      const payload = JSON.stringify([["extensionDevelopmentPath", `vscode-remote://127.0.0.1:${server.port}${extensionRoot}`]]);
      wb = await Workbench.open(browser, server, { payload });
      const page = wb.page;
      const toast = (re: RegExp) => page.locator(".notifications-toasts .notification-toast").filter({ hasText: re });

      // The moment the Explorer shows the prompts folder: right-click it, Orchestrate in parallel.
      await wb.showExplorer();
      const t0 = Date.now();
      await wb.explorerContextMenu("prompts", "Orchestrate in parallel", "orchestrate-at-once");
      log(`picked Orchestrate in parallel ${Date.now() - t0} ms after the Explorer appeared`);
      // The server is still starting (it sleeps): the command waits, visibly.
      await toast(/waiting for the server to start/).first().waitFor({ timeout: 2 * SLOW_START_S * 1000 });
      await wb.screenshot("waiting-for-the-server");
      // ...and then runs: both tasks appear and end.
      await wb.waitForStatusBar(/Gadugi \d+\/2/);
      await wb.openGadugiView();
      const rows = await wb.waitForTree("Runs", "good succeeded and bad failed", (r) => {
        const row = (id: string) => r.find((x) => x.label === id);
        return /succeeded/.test(`${row("good")?.description} ${row("good")?.aria}`) && /failed/.test(`${row("bad")?.description} ${row("bad")?.aria}`);
      });
      assert.equal(await toast(/try again|still starting/).count(), 0, "a command failed for being early");
      const runLabel = rows.find((r) => /^Run \S+$/.test(r.label))!.label;
      const runId = runLabel.slice(4);
      log(`run ${runId} ended`);

      // Merge Run from the run's row: the verify command in the input box, the result in a toast.
      const runRow = wb.treeRow("Runs", runLabel);
      await rowMenu(wb, runRow, "Merge Run");
      const input = page.locator(".quick-input-widget input");
      await input.waitFor();
      await input.fill("test -f src/good.txt");
      await page.keyboard.press("Enter");
      await toast(/has the work of 1 task\(s\)/).first().waitFor();
      await wb.screenshot("merged");
      const integration = `gadugi/integrate/${runId}`;
      assert.equal(git(repo, "show", `${integration}:src/good.txt`).split("\n")[0], "Good task");
      assert.equal(git(repo, "rev-parse", "HEAD"), head, "the user's branch moved");
      assert.equal(git(repo, "symbolic-ref", "--short", "HEAD"), "main", "the checkout left main");
      assert.equal(git(repo, "status", "--porcelain", "--untracked-files=no"), "", "the checkout has changes");

      // Show Report: the Markdown preview renders the table and the timeline picture.
      await rowMenu(wb, runRow, "Show Report");
      const frame = await frameWith(page.frames.bind(page), "table");
      const img = frame.locator('img[src*="timeline.svg"]').first();
      await img.waitFor();
      await frame.waitForFunction(
        () => {
          const i = (globalThis as unknown as { document: { querySelector(s: string): { complete: boolean; naturalWidth: number } | null } }).document.querySelector('img[src*="timeline.svg"]');
          return !!i && i.complete && i.naturalWidth > 0;
        },
        undefined,
        { timeout: LONG },
      );
      const cells = await frame.locator("table td").allInnerTexts();
      assert.ok(cells.some((c) => /good/.test(c)) && cells.some((c) => /bad/.test(c)), `table cells: ${cells.join(" | ")}`);
      await wb.screenshot("report-preview");
      // The README picture, on request only (GADUGI_SCREENSHOT_DIR=docs/images): without the toasts.
      const shotDir = process.env.GADUGI_SCREENSHOT_DIR;
      if (shotDir) {
        await wb.runCommand("Notifications: Clear All Notifications");
        await page.locator(".notifications-toasts .notification-toast").first().waitFor({ state: "detached" });
        await page.mouse.move(1270, 600);
        await wb.screenshot("readme", path.resolve(repoRoot, shotDir, "vscode-report.png"));
      }

      // Open Task Worktree on the failed task: a new window with its worktree as the folder.
      const badRow = wb.treeRow("Runs", "bad");
      await badRow.hover();
      const opened = page.context().waitForEvent("page", { timeout: LONG });
      await badRow.locator('.action-label[aria-label="Open Task Worktree"]').click();
      const win = await opened;
      await win.waitForLoadState();
      const folder = new URL(win.url()).searchParams.get("folder");
      assert.equal(folder, path.join(path.dirname(repo), "repo.gadugi-worktrees", "bad"), `the new window opened ${win.url()}`);
      await win.locator(".monaco-workbench").waitFor({ timeout: LONG });
      log(`Open Task Worktree opened ${folder}`);
      await win.close();

      // A run whose two tasks write the same file: Merge Run stops at the conflict, names the
      // task and the file, says where to resolve it, and opens the task's side of it.
      await wb.runCommand("View: Show Explorer");
      await wb.explorerContextMenu("conflict", "Orchestrate in parallel");
      await wb.openGadugiView();
      const after = await wb.waitForTree("Runs", "c1 and c2 succeeded", (r) =>
        ["c1", "c2"].every((id) => /succeeded/.test(`${r.find((x) => x.label === id)?.description} ${r.find((x) => x.label === id)?.aria}`)),
      );
      const conflictRun = after.filter((r) => /^Run \S+$/.test(r.label) && r.label !== runLabel)[0].label;
      await rowMenu(wb, wb.treeRow("Runs", conflictRun), "Merge Run");
      await input.waitFor();
      await input.fill(""); // no verify this time (the box offers the last one)
      await page.keyboard.press("Enter");
      const conflict = toast(/conflicts in shared\.txt/).first();
      await conflict.waitFor();
      const said = await conflict.innerText();
      assert.match(said, /merging gadugi\/c2 \(task c2\)/, said);
      assert.match(said, /checkout is untouched/, said);
      assert.match(said, /git worktree add \S+ gadugi\/integrate\/\S+ && cd \S+ && git merge gadugi\/c2/, said);
      await wb.screenshot("merge-conflict");
      await conflict.getByRole("button", { name: "Open Conflicting Files" }).click();
      await page.locator('.tabs-container .tab[aria-label^="c2.diff"]').first().waitFor();
      assert.equal(git(repo, "rev-parse", "HEAD"), head, "the user's branch moved");
      assert.equal(git(repo, "status", "--porcelain", "--untracked-files=no"), "", "the checkout has changes");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});

/** Right-clicks a tree row and picks a context-menu item (retried until the item is there). */
async function rowMenu(wb: Workbench, row: Locator, item: string): Promise<void> {
  const deadline = Date.now() + LONG;
  for (;;) {
    await row.click({ button: "right" });
    try {
      await wb.contextMenuItem(item).waitFor({ timeout: 3000 });
      break;
    } catch {
      await wb.page.keyboard.press("Escape");
      if (Date.now() > deadline) throw new Error(`no "${item}" in the row's context menu`);
    }
  }
  const menuItem = wb.contextMenuItem(item);
  await menuItem.hover();
  await wb.pickMenuItem(menuItem);
}

/** The first frame (webviews are nested frames) that has `selector`, once one does. */
async function frameWith(frames: () => Frame[], selector: string): Promise<Frame> {
  const deadline = Date.now() + LONG;
  for (;;) {
    for (const f of frames()) {
      if (await f.locator(selector).count().catch(() => 0)) return f;
    }
    if (Date.now() > deadline) throw new Error(`no frame with ${selector}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
