// End to end, in a real VS Code (code-server) driven by chromium: prompt files as a language.
// The packaged VSIX is installed; a prompt file is opened from the Explorer; completion
// (Ctrl+Space) inside its `depends_on` list shows the other task's id with its title, and
// accepting it writes the id; F12 on the id opens the dependency's prompt file. Screenshots
// of each step go to test-artifacts/.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { test } from "node:test";

import { CodeServer, LONG, Workbench, launchBrowser, log, makeRepo, packagedVsix, withHarness } from "./codeServer";

const SCHEMA_MD = "---\nid: schema\n---\n# Write the schema\n\nCreate the tables.\n";
const API_MD = "---\ndepends_on: []\n---\n# Write the API\n\nServe the tables.\n";
/** A completion row's aria-label for the task id `schema` (its label first), and for its path. */
const ID = /^schema(?![\w.-])/;
const PATH = /^schema\.md(?![\w.-])/;

test("prompt files as a language: completion of a task id, Go to Definition", { timeout: 3 * LONG }, async () => {
  assert.ok(fs.existsSync(packagedVsix), `no ${packagedVsix}: run npm run package first`);
  let wb: Workbench | undefined;
  await withHarness(
    "language",
    async () => {
      const repo = makeRepo({ "prompts/schema.md": SCHEMA_MD, "prompts/api.md": API_MD });
      const server = await CodeServer.start({ name: "language", folder: repo, vsix: packagedVsix });
      const browser = await launchBrowser();
      wb = await Workbench.open(browser, server);
      const page = wb.page;

      // Open api.md; its code lens (from the server) says the server serves this document.
      await wb.showExplorer();
      await wb.expandFolder("prompts");
      await wb.explorerRow("api.md").click();
      await page.locator('.tabs-container .tab.active[aria-label^="api.md"]').first().waitFor();
      await page.locator(".monaco-editor .codelens-decoration", { hasText: "Run this task" }).first().waitFor();
      log("api.md is open and served");

      // Completion between the brackets of `depends_on: []` (line 2, column 14).
      await goToLine(wb, "2:14");
      const rows = page.locator(".suggest-widget .monaco-list-row");
      const deadline = Date.now() + LONG;
      for (;;) {
        await page.keyboard.press("Control+Space");
        try {
          await rows.filter({ hasText: /schema/ }).first().waitFor({ timeout: 5000 });
          break;
        } catch {
          // The first request can reach the server before it has the document: ask again.
          await page.keyboard.press("Escape");
          if (Date.now() > deadline) throw new Error("the completion list never showed the task id `schema`");
        }
      }
      const labels = await rows.evaluateAll((els) => els.map((e) => (e.getAttribute("aria-label") ?? e.textContent ?? "").trim()));
      log(`completion list: ${JSON.stringify(labels)}`);
      assert.ok(labels.some((l) => ID.test(l)), `no task id in ${JSON.stringify(labels)}`);
      assert.ok(labels.some((l) => PATH.test(l)), `no prompt path in ${JSON.stringify(labels)}`);
      assert.ok(!labels.some((l) => /^api(?![\w-])/.test(l)), `the file itself is offered: ${JSON.stringify(labels)}`);
      await wb.screenshot("completion");

      // Accept the focused item (the id, sorted first): the list now names it.
      const focused = page.locator(".suggest-widget .monaco-list-row.focused");
      assert.match((await focused.getAttribute("aria-label")) ?? "", ID, "the id is not the first item");
      await page.keyboard.press("Enter");
      await waitForLine(wb, "depends_on: [schema]");
      log("accepted: depends_on: [schema]");

      // F12 on the id: the dependency's prompt file opens.
      await goToLine(wb, "2:16");
      await page.keyboard.press("F12");
      await page.locator('.tabs-container .tab.active[aria-label^="schema.md"]').first().waitFor();
      await waitForLine(wb, "# Write the schema");
      log("Go to Definition opened schema.md");
      await wb.screenshot("definition");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});

/** Moves the cursor of the active editor with "Go to Line/Column" (`line:column`, 1-based). */
async function goToLine(wb: Workbench, where: string): Promise<void> {
  await wb.runCommand("Go to Line/Column");
  const input = wb.page.locator(".quick-input-widget input");
  // The palette's input turns into Go to Line's (which starts with ":").
  const deadline = Date.now() + LONG;
  while (!(await input.inputValue()).startsWith(":")) {
    if (Date.now() > deadline) throw new Error("Go to Line/Column did not open");
    await wb.page.waitForTimeout(50);
  }
  await input.fill(`:${where}`);
  await wb.page.keyboard.press("Enter");
  await input.waitFor({ state: "hidden" });
}

/** Waits until a line of the active editor reads `text`. */
async function waitForLine(wb: Workbench, text: string): Promise<void> {
  await wb.page.waitForFunction(
    (want) =>
      [...document.querySelectorAll(".editor-group-container.active .monaco-editor .view-lines .view-line")].some(
        (l) => (l.textContent ?? "").replace(/\u00a0/g, " ").trimEnd() === want,
      ),
    text,
    { timeout: LONG },
  );
}

// The browser side of waitForFunction (tsconfig has no DOM lib).
declare const document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> };
