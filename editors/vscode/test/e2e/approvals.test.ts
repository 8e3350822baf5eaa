// Agents that ask, end to end in a real VS Code (code-server + chromium), with the REAL Claude
// Code CLI (target/claude-cli, scripts/install-claude-cli.sh) against a fake Messages API
// (fakeClaudeApi.ts) scripted to run two Bash commands that are not pre-approved. The
// extension under development (its dist/ bundle) runs in the workbench; the run is started
// from the Explorer's context menu. The first question is answered in the terminal
// (`gadugi answer`) while its notification is up: a late click on Allow says who answered.
// The second one is shown on the task row and counted in the status bar, and a click on its
// notification's Allow lets the agent go on: both commands ran, the run succeeds.
// A second test opens VS Code only after an agent of a command-line run asked (a reloaded
// window): the task row and the notification catch up from the server, and the question is
// answered through Gadugi: Answer Pending Approvals → Edit…: the edited command runs instead.

import * as assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CodeServer, LONG, Workbench, extensionRoot, gadugiBin, git, launchBrowser, log, makeRepo, repoRoot, tempDir, withHarness } from "./codeServer";
import { FakeClaudeApi } from "./fakeClaudeApi";

// The browser side of page.waitForFunction (tsconfig has no DOM lib).
declare const document: { querySelectorAll(selector: string): Iterable<unknown> };

const ONE = "sh -c 'echo one > one.txt'";
const TWO = "sh -c 'echo two > two.txt'";
const EDITED = "sh -c 'echo edited > edited.txt'";

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

const PROMPT = "# Mark it\n\nRun the marker commands.\n";

/**
 * Points this test process's environment at the real Claude Code CLI and the fake API; what
 * it starts inherits it: code-server, its extension host, the gadugi server, Claude Code, the
 * broker, `gadugi answer` and `gadugi run`. They all see one HOME: the answers' key lives
 * there. Returns the gadugi binary.
 */
function offlineClaude(api: FakeClaudeApi): string {
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
  return gadugi;
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
      const gadugi = offlineClaude(api);
      const repo = makeRepo({ "gadugi.toml": GADUGI_TOML, "prompts/a.md": PROMPT });
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

      // A real click on Allow: the agent goes on, runs the command, the run succeeds. (The
      // mouse leaves the toasts first: a hover over the late answer's toast would cover it.)
      await page.mouse.move(640, 300);
      await page.locator(".context-view .hover-contents").waitFor({ state: "hidden" });
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

test("a window opened while a question waits catches up; the palette command answers it with an edited command", { timeout: 5 * LONG }, async () => {
  const bundle = path.join(extensionRoot, "dist", "extension.js");
  assert.ok(fs.existsSync(bundle), `no ${bundle}: run npm run build (or npm run package) first`);
  let wb: Workbench | undefined;
  let api: FakeClaudeApi | undefined;
  let cli: ChildProcess | undefined;
  await withHarness(
    "approvals-late-window",
    async () => {
      api = await FakeClaudeApi.start([{ tool: "Bash", input: { command: ONE, description: "first" } }, { text: "Done." }]);
      const gadugi = offlineClaude(api);
      const repo = makeRepo({ "gadugi.toml": GADUGI_TOML, "prompts/a.md": PROMPT });
      // The run is driven by the command line; the question waits before any window is open.
      cli = spawn(gadugi, ["run", "--json", "prompts/a.md"], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      cli.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      cli.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => cli!.once("exit", (code) => resolve(code)));
      const deadline = Date.now() + LONG;
      const question = () => {
        const runs = path.join(repo, ".gadugi", "runs");
        const run = fs.existsSync(runs) ? fs.readdirSync(runs)[0] : undefined;
        return run && fs.existsSync(path.join(runs, run, "tasks", "a", "questions", "a1-001.question.json"));
      };
      while (!question()) {
        assert.ok(Date.now() < deadline && cli.exitCode === null, `the agent never asked: ${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      log("the agent asked; opening VS Code");

      const server = await CodeServer.start({ name: "approvals-late-window", folder: repo, settings: { "gadugi.server.path": gadugi } });
      const payload = JSON.stringify([["extensionDevelopmentPath", `vscode-remote://127.0.0.1:${server.port}${extensionRoot}`]]);
      wb = await Workbench.open(await launchBrowser(), server, { payload });
      const page = wb.page;
      await wb.openGadugiView();
      const rows = await wb.waitForTree("Runs", "task a waiting for approval", (r) =>
        r.some((row) => row.label === "a" && row.description.includes(`waiting for approval: Bash(${ONE}) — denied in 5m`)),
      );
      log(`task row: ${rows.find((r) => r.label === "a")!.description}`);
      await page.locator(".notifications-toasts .notification-toast").filter({ hasText: `Gadugi task a asks to use Bash(${ONE})` }).first().waitFor();
      await wb.screenshot("caught-up");

      // Gadugi: Answer Pending Approvals → the question → Edit… → the edited command, Enter.
      await wb.runCommand("Gadugi: Answer Pending Approvals");
      const widget = page.locator(".quick-input-widget");
      await widget.locator(".monaco-list-row", { hasText: `a: Bash(${ONE})` }).first().click();
      await widget.locator(".monaco-list-row", { hasText: "Edit…" }).first().click();
      const input = widget.locator("input").first();
      await page.waitForFunction(
        (cmd) => [...document.querySelectorAll(".quick-input-widget input")].some((i) => (i as unknown as { value: string }).value === cmd),
        ONE,
      );
      await wb.screenshot("edit-command");
      await input.fill(EDITED);
      await page.keyboard.press("Enter");
      log(`allowed the edited command: ${EDITED}`);

      assert.equal(await exited, 0, `gadugi run failed:\n${output}`);
      assert.equal(git(repo, "show", "gadugi/a:edited.txt"), "edited", "the edited command ran");
      assert.throws(() => git(repo, "show", "gadugi/a:one.txt"), "the command asked for did not run");
      await wb.waitForTree("Runs", "task a succeeded", (r) => r.some((row) => row.label === "a" && /\bsucceeded\b/.test(`${row.description} ${row.aria}`)));
    },
    async () => {
      await wb?.screenshot("failure");
    },
  ).finally(async () => {
    if (cli && cli.exitCode === null) cli.kill("SIGTERM");
    await api?.close();
  });
});
