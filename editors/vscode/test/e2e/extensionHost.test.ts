// Runs the extension-host suite (suite/index.ts) inside code-server: the workbench is opened
// with a `payload` naming the extension under development (editors/vscode, its dist/ bundle)
// and the compiled suite; the workbench calls codeAutomationExit with the suite's exit code
// and codeAutomationLog with its console output, which is printed here.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { LONG, Workbench, extensionRoot, makePromptRepo, runExtensionHostSuite, withHarness } from "./codeServer";

test("extension-host suite: activation, commands, settings, a run through the API, diagnostics", { timeout: 5 * LONG }, async () => {
  const bundle = path.join(extensionRoot, "dist", "extension.js");
  assert.ok(fs.existsSync(bundle), `no ${bundle}: run npm run package (or npm run build) first`);
  const suite = path.join(__dirname, "suite", "index.js");
  assert.ok(fs.existsSync(suite), `no compiled suite ${suite}`);
  let wb: Workbench | undefined;
  await withHarness(
    "extension-host",
    async () => {
      const run = await runExtensionHostSuite({ name: "extension-host", suite, repo: makePromptRepo() });
      wb = run.wb;
      const { code, lines } = run;
      await wb.screenshot("end");
      assert.equal(code, 0, `the extension-host suite failed:\n${lines.join("\n")}`);
      assert.ok(lines.some((l) => /all \d+ extension-host checks passed/.test(l)), "the suite did not report its checks");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});
