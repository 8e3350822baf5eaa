// After the run and run control, in a real VS Code (code-server): runs suite/workflow.ts in the
// extension host, in a repository made for it — a task that depends on another, a task that
// fails its first attempt (a `flaky` agent profile), two tasks that write the same file, two
// slow tasks to cancel and one to resume — with a bare repository as `origin` and a fake `gh`
// on the PATH of code-server (and so of the extension host and the gadugi server it starts).

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { GADUGI_TOML, LONG, Workbench, extensionRoot, git, makeRepo, repoRoot, runExtensionHostSuite, tempDir, withHarness } from "./codeServer";

/** The fake `gh` of server/tests/merge.rs: `auth status` passes unless $FAKE_GH_DIR/auth-fails exists; `pr create` checks and records its arguments and prints a URL. */
const FAKE_GH = fs.readFileSync(path.join(repoRoot, "server", "tests", "common", "fake-gh.sh"), "utf8");

const sim = (title: string, directive: string, front = "") => `${front ? `---\n${front}\n---\n` : ""}# ${title}\n\nDo it.\n\n<!-- gadugi-sim: ${directive} -->\n`;

test("after the run and run control: retry, merge, conflict, report, pull requests, cancel, resume", { timeout: 5 * LONG }, async () => {
  const suite = path.join(__dirname, "suite", "workflow.js");
  assert.ok(fs.existsSync(path.join(extensionRoot, "dist", "extension.js")), "no dist/extension.js: run npm run build first");
  let wb: Workbench | undefined;
  await withHarness(
    "workflow",
    async () => {
      const flaky = `\n[profiles.flaky]\ncommand = "sh -c 'if [ \\"$GADUGI_ATTEMPT\\" = 1 ]; then echo first attempt fails >&2; exit 3; fi; echo fixed > flaky.txt'"\n`;
      const repo = makeRepo({
        // On a busy machine Gadugi's load guard would start one task at a time; the cancel check
        // needs two agents at once, so the guard's limit is out of reach here.
        "gadugi.toml": `max_load = 1000.0\n${GADUGI_TOML}${flaky}`,
        "prompts/a.md": sim("Task A", "seconds=0.5 file=src/a.txt"),
        "prompts/b.md": sim("Task B", "seconds=0.5 file=src/b.txt", "depends_on: [a.md]"),
        "prompts/flaky.md": "---\nagent: flaky\n---\n# Flaky task\n\nFails once.\n",
        "conflict/c1.md": sim("First writer", "seconds=0.5 file=shared.txt"),
        "conflict/c2.md": sim("Second writer", "seconds=0.5 file=shared.txt"),
        "slow/s1.md": sim("Slow one", "seconds=120 file=src/s1.txt"),
        "slow/s2.md": sim("Slow two", "seconds=120 file=src/s2.txt"),
        "resume/r.md": sim("Resumed task", "seconds=3 file=src/r.txt"),
      });
      const remote = path.join(tempDir("remote"), "remote.git");
      git(path.dirname(remote), "init", "-q", "--bare", remote);
      git(repo, "remote", "add", "origin", remote);
      const ghDir = tempDir("gh");
      fs.mkdirSync(path.join(ghDir, "bin"));
      fs.writeFileSync(path.join(ghDir, "bin", "gh"), FAKE_GH, { mode: 0o755 });
      const env = { PATH: `${path.join(ghDir, "bin")}:${process.env.PATH ?? ""}`, FAKE_GH_DIR: ghDir };
      const run = await runExtensionHostSuite({ name: "workflow", suite, repo, env });
      wb = run.wb;
      await wb.screenshot("end");
      assert.equal(run.code, 0, `the workflow suite failed:\n${run.lines.join("\n")}`);
      assert.ok(run.lines.some((l) => /all \d+ workflow checks passed/.test(l)), "the suite did not report its checks");
    },
    async () => {
      await wb?.screenshot("failure");
    },
  );
});
