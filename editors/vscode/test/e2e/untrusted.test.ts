// Workspace Trust, for real: code-server with trust on (no --disable-workspace-trust). Like
// VS Code, it asks on opening a folder it has not seen, in a modal dialog ("Do you trust the
// authors of the files in this folder?"); "No, I don't trust the authors" opens it in
// Restricted Mode (a banner and a "Restricted Mode" status-bar item). Then the Runs view must
// explain why nothing runs, "Orchestrate in parallel" must be disabled or absent in the
// Explorer's context menu (it shows greyed out: its enablement is isWorkspaceTrusted), and no
// `gadugi server` process may start.

import * as assert from "node:assert/strict";
import { test } from "node:test";

import {
  CodeServer,
  LONG,
  Workbench,
  gadugiServerProcesses,
  launchBrowser,
  log,
  makePromptRepo,
  packagedVsix,
  withHarness,
} from "./codeServer";

test("untrusted workspace: the Runs view explains, Orchestrate is disabled, no server starts", { timeout: 5 * LONG }, async () => {
  let wb: Workbench | undefined;
  await withHarness(
    "untrusted",
    async () => {
      const before = new Set(gadugiServerProcesses());
      const repo = makePromptRepo();
      const server = await CodeServer.start({ name: "untrusted", folder: repo, vsix: packagedVsix, workspaceTrust: true });
      const browser = await launchBrowser();
      wb = await Workbench.open(browser, server);
      const page = wb.page;

      // The trust dialog: "No, I don't trust the authors" → restricted mode.
      const no = page.getByRole("button", { name: /No, I don.t trust the authors/ });
      await no.waitFor({ timeout: LONG });
      await wb.screenshot("trust-dialog");
      await no.click();
      await page.locator(".monaco-dialog-box").waitFor({ state: "detached" });
      log("answered the trust dialog: No");
      // Restricted mode shows in the status bar.
      await wb.waitForStatusBar(/Restricted Mode/);

      // The Runs view explains.
      await wb.openGadugiView();
      const welcome = wb.viewPane("Runs").locator(".welcome-view-content");
      await welcome.filter({ hasText: "This workspace is not trusted" }).waitFor({ timeout: LONG });
      const text = (await welcome.innerText()).replace(/\s+/g, " ");
      log(`Runs view: ${text}`);
      assert.match(text, /This workspace is not trusted, so Gadugi starts nothing here/);
      assert.equal(await wb.viewPane("Runs").locator(".monaco-list-row").count(), 0, "the Runs view has rows");
      await wb.screenshot("runs-view-untrusted");

      // The Explorer context menu: no enabled "Orchestrate in parallel".
      await wb.showExplorer();
      await wb.expandFolder("prompts");
      // The extension's contributions are loaded (its welcome view shows), so its menu item is
      // there by now if it is there at all.
      await wb.explorerRow("good.md").click({ button: "right" });
      const items = await wb.openMenuItems();
      log(`context menu: ${items.map((i) => `${i.name}${i.enabled ? "" : " (disabled)"}`).join(" | ")}`);
      assert.ok(items.length > 3, "the context menu did not open");
      const orchestrate = items.find((i) => /Orchestrate in parallel/.test(i.name));
      assert.ok(!orchestrate || !orchestrate.enabled, "Orchestrate in parallel is enabled in an untrusted workspace");
      await wb.screenshot("context-menu-untrusted");
      await page.keyboard.press("Escape");

      // The extension is active and chose not to start the server.
      const out = await server.waitForOutputChannel("Gadugi", /not trusted/);
      log(`Gadugi output: ${out.trim()}`);
      // No gadugi server: not in code-server's process group, not anywhere new on the machine.
      const group = server.groupPids();
      assert.ok(group.length > 1, "code-server's process group is empty?");
      const started = gadugiServerProcesses().filter((p) => !before.has(p));
      assert.deepEqual(started, [], "a gadugi server process was started");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});
