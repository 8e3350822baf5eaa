// Runs the extension-host suite (suite/index.ts) inside code-server: the workbench is opened
// with a `payload` naming the extension under development (editors/vscode, its dist/ bundle)
// and the compiled suite; the workbench calls codeAutomationExit with the suite's exit code
// and codeAutomationLog with its console output, which is printed here.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CodeServer, LONG, Workbench, extensionRoot, gadugiBin, launchBrowser, log, makePromptRepo, withHarness } from "./codeServer";

test("extension-host suite: activation, commands, settings, a run through the API, diagnostics", { timeout: 5 * LONG }, async () => {
  const bundle = path.join(extensionRoot, "dist", "extension.js");
  assert.ok(fs.existsSync(bundle), `no ${bundle}: run npm run package (or npm run build) first`);
  const suite = path.join(__dirname, "suite", "index.js");
  assert.ok(fs.existsSync(suite), `no compiled suite ${suite}`);
  let wb: Workbench | undefined;
  await withHarness(
    "extension-host",
    async () => {
      const repo = makePromptRepo();
      // The development extension has bin/gadugi once packaged; else point the setting at a build.
      const bundled = path.join(extensionRoot, "bin", "gadugi");
      const settings = fs.existsSync(bundled) ? {} : { "gadugi.server.path": gadugiBin() };
      const server = await CodeServer.start({ name: "extension-host", folder: repo, settings });
      const remote = (p: string) => `vscode-remote://127.0.0.1:${server.port}${p}`;
      const payload = JSON.stringify([
        ["extensionDevelopmentPath", remote(extensionRoot)],
        ["extensionTestsPath", remote(suite)],
      ]);
      const browser = await launchBrowser();
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      wb = new Workbench(page, "extension-host");
      const lines: string[] = [];
      let resolveExit: (code: number) => void = () => undefined;
      const exited = new Promise<number>((resolve) => (resolveExit = resolve));
      await page.exposeFunction("codeAutomationLog", (type: unknown, args: unknown) => {
        const text = Array.isArray(args) ? args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ") : String(args);
        const line = `[${String(type)}] ${text}`;
        lines.push(line);
        console.log(`  suite: ${line}`);
      });
      await page.exposeFunction("codeAutomationExit", (code: number) => resolveExit(code));
      await page.goto(server.workbenchUrl({ payload }), { timeout: LONG });
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        exited,
        new Promise<number>((_, reject) => {
          timer = setTimeout(() => reject(new Error("the suite never called codeAutomationExit")), 3 * LONG);
        }),
      ]).finally(() => clearTimeout(timer));
      log(`suite exit code ${code}`);
      await wb.screenshot("end");
      assert.equal(code, 0, `the extension-host suite failed:\n${lines.join("\n")}`);
      assert.ok(lines.some((l) => /all \d+ extension-host checks passed/.test(l)), "the suite did not report its checks");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});
