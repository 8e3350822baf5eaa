import assert from "node:assert/strict";
import { test } from "node:test";

import { logFilter, orchestrateArgs } from "../../src/settings";

const getter = (values: Record<string, unknown>) => <T>(key: string) => values[key] as T | undefined;

test("unset settings leave everything to gadugi.toml", () => {
  assert.deepEqual(orchestrateArgs(["file:///r/a.md"], getter({ maxParallel: null, "agent.profile": "", "agent.extraArgs": [], "worktree.location": " " })), {
    files: ["file:///r/a.md"],
  });
});

test("settings become orchestrate arguments", () => {
  const args = orchestrateArgs(["file:///r/a.md"], getter({
    maxParallel: 6, "agent.profile": " claude ", "agent.extraArgs": ["--model", "sonnet", 3], "worktree.location": "../trees",
  }));
  assert.deepEqual(args, { files: ["file:///r/a.md"], maxParallel: 6, agent: "claude", agentArgs: ["--model", "sonnet"], worktreeDir: "../trees" });
});

test("a nonsensical max parallel is left out, not sent", () => {
  assert.equal(orchestrateArgs([], getter({ maxParallel: 0 })).maxParallel, undefined);
  assert.equal(orchestrateArgs([], getter({ maxParallel: 2.5 })).maxParallel, undefined);
});

test("log level becomes the server's GADUGI_LOG filter", () => {
  assert.equal(logFilter("debug"), "gadugi=debug");
  assert.equal(logFilter(undefined), "gadugi=info");
  assert.equal(logFilter("loud"), "gadugi=info");
});
