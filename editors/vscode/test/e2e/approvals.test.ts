// Agents that ask, end to end in a real VS Code (code-server + chromium), with the REAL Claude
// Code CLI (target/claude-cli, scripts/install-claude-cli.sh) against a fake Messages API
// (fakeClaudeApi.ts) scripted to run two Bash commands that are not pre-approved. The
// extension under development (its dist/ bundle) runs in the workbench; the run is started
// from the Explorer's context menu. The first question is answered in the terminal
// (`gadugi answer`) while its notification is up: a late click on Allow says who answered.
// The second one is shown on the task row and counted in the status bar, and a click on its
// notification's Allow lets the agent go on: both commands ran, the run succeeds.

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CodeServer, LONG, Workbench, extensionRoot, gadugiBin, git, launchBrowser, log, makeRepo, repoRoot, tempDir, withHarness } from "./codeServer";
import { FakeClaudeApi } from "./fakeClaudeApi";

const ONE = "sh -c 'echo one > one.txt'";
const TWO = "sh -c 'echo two > two.txt'";

const GADUGI_TOML = `kill_grace = "1s"
timeout = "120s"

[agent]
profile = "claude"

[approvals]
enabled = true
timeout = "5m"
`;

/** The real Claude Code CLI's folder (installed on first use, like the Rust tests do). */
function claudeDir(): string {
  execFileSync("bash", [path.join(repoRoot, "scripts", "install-claude-cli.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  return path.join(repoRoot, "target", "claude-cli", "node_modules", ".bin");
}

test("an agent asks: notification, task row, status bar; a late click says who answered; Allow lets it go on", { timeout: 5 * LONG }, async () => {
  const bundle = path.join(extensionRoot, "dist", "extension.js");
  assert.ok(fs.existsSync(bundle), `no ${bundle}: run npm run build (or npm run package) first`);
  let wb: Workbench | undefined;
  let api: FakeClaudeApi | undefined;
  await withHarness(
    "approvals",
    async () => {
      api = await FakeClaudeApi.start([
        { tool: "Bash", input: { command: ONE, description: "first" } },
        { tool: "Bash", input: { command: TWO, description: "second" } },
        { text: "Done." },
      ]);
      // Everything below (code-server, its extension host, the gadugi server, Claude Code,
      // the broker, and `gadugi answer` run here) sees one HOME: the answers' key lives there.
      const home = tempDir("home");
      const gadugi = gadugiBin();
      Object.assign(process.env, {
        HOME: home,
        PATH: [claudeDir(), path.dirname(gadugi), process.env.PATH].join(path.delimiter),
        ANTHROPIC_BASE_URL: api.url,
        ANTHROPIC_API_KEY: "dummy",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        DISABLE_AUTOUPDATER: "1",
        CLAUDE_CODE_MAX_RETRIES: "0",
        // The server side of VS Code would take its extension host's environment from a login
        // shell, whose profile resets PATH (and drops the claude folder); this skips that.
        VSCODE_CLI: "1",
      });
      for (const k of ["ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "XDG_STATE_HOME"]) delete process.env[k];

      const repo = makeRepo({ "gadugi.toml": GADUGI_TOML, "prompts/a.md": "# Mark it\n\nRun the two marker commands.\n" });
      const server = await CodeServer.start({ name: "approvals", folder: repo, settings: { "gadugi.server.path": gadugi } });
      const remote = (p: string) => `vscode-remote://127.0.0.1:${server.port}${p}`;
      const payload = JSON.stringify([["extensionDevelopmentPath", remote(extensionRoot)]]);
      const browser = await launchBrowser();
      wb = await Workbench.open(browser, server, { payload });
      const page = wb.page;

      await wb.showExplorer();
      await wb.expandFolder("prompts");
      await wb.explorerRow("a.md").click();
      await wb.explorerContextMenu("a.md", "Orchestrate in parallel");
      log("picked Orchestrate in parallel");

      const toast = (text: string) => page.locator(".notifications-toasts .notification-toast").filter({ hasText: text }).first();

      // First question: the notification names task, tool and command, and the deadline.
      const first = toast(`Gadugi task a asks to use Bash(${ONE})`);
      await first.waitFor({ timeout: LONG });
      const firstText = (await first.innerText()).replace(/\s+/g, " ");
      log(`notification: ${firstText}`);
      assert.match(firstText, /Denied in 5m unless answered/);
      for (const b of ["Allow", "Deny", "Edit…"]) await first.getByRole("button", { name: b, exact: true }).waitFor();
      await wb.screenshot("first-question");

      // Answered in the terminal meanwhile; then the person clicks Allow on the stale notification.
      const runId = fs.readdirSync(path.join(repo, ".gadugi", "runs"))[0];
      execFileSync(gadugi, ["answer", "a", "allow", "--id", "a1-001", "--run", runId], { cwd: repo, stdio: "pipe" });
      log("answered a1-001 with gadugi answer");
      await first.getByRole("button", { name: "Allow", exact: true }).click();
      const late = toast("was already answered: allowed in the terminal");
      await late.waitFor({ timeout: LONG });
      log(`late click: ${(await late.innerText()).replace(/\s+/g, " ")}`);

      // Second question: notification, the task row, the status bar.
      const second = toast(`Gadugi task a asks to use Bash(${TWO})`);
      await second.waitFor({ timeout: LONG });
      await wb.openGadugiView();
      const rows = await wb.waitForTree("Runs", "task a waiting for approval of the second command", (r) =>
        r.some((row) => row.label === "a" && row.description.includes(`waiting for approval: Bash(${TWO}) — denied in 5m`)),
      );
      log(`task row: ${rows.find((r) => r.label === "a")!.description}`);
      const bar = await wb.waitForStatusBar(/1 to answer/);
      log(`status bar: ${bar}`);
      await wb.screenshot("second-question");

      // A real click on Allow: the agent goes on, runs the command, the run succeeds.
      await second.getByRole("button", { name: "Allow", exact: true }).click();
      log("clicked Allow");
      await wb.waitForTree("Runs", "task a succeeded", (r) => r.some((row) => row.label === "a" && /\bsucceeded\b/.test(`${row.description} ${row.aria}`)));
      await wb.screenshot("after-allow");

      assert.equal(git(repo, "show", "gadugi/a:one.txt"), "one", "the first command ran");
      assert.equal(git(repo, "show", "gadugi/a:two.txt"), "two", "the second command ran");
      const events = fs
        .readFileSync(path.join(repo, ".gadugi", "runs", runId, "events.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; id?: string; by?: string; decision?: string });
      const answered = events.filter((e) => e.type === "approval_answered").map((e) => [e.id, e.decision, e.by]);
      assert.deepEqual(answered, [["a1-001", "allow", "cli"], ["a1-002", "allow", "editor"]]);
      assert.ok(api.requests.length >= 3, `the model was asked ${api.requests.length} times`);
    },
    async () => {
      await wb?.screenshot("failure");
    },
  ).finally(() => api?.close());
});
