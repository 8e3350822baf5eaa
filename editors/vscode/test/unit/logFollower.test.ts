import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

import { LogFollower, attemptLogFiles } from "../../src/logFollower";

/** Waits until `cond` holds (generous: only reached when something is broken). */
async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("follows appends to several files of a folder that appears later", async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "gadugi-log-"));
  const dir = path.join(base, "attempt-1");
  const files = attemptLogFiles(path.join(dir, "stdout.log"));
  assert.deepEqual(files.map((f) => path.basename(f)), ["stdout.log", "stderr.log", "verify.log"]);
  let seen = "";
  const follower = new LogFollower(files, (text) => (seen += text));
  follower.start();
  try {
    fs.mkdirSync(dir);
    fs.writeFileSync(files[0], "first line\n");
    await until("the first line", () => seen.includes("first line\n"));
    fs.appendFileSync(files[1], "an error\n");
    fs.appendFileSync(files[0], "second ");
    fs.appendFileSync(files[0], "line\n");
    await until("both files' appends", () => seen.includes("an error\n") && seen.includes("second line\n"));
    assert.equal(seen.split("first line").length, 2, "nothing is emitted twice");
  } finally {
    follower.dispose();
  }
});

test("a multi-byte character split across two writes arrives whole", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gadugi-log-"));
  const file = path.join(dir, "stdout.log");
  const bytes = Buffer.from("✓ done\n");
  fs.writeFileSync(file, bytes.subarray(0, 1));
  let seen = "";
  const follower = new LogFollower([file], (text) => (seen += text));
  follower.start();
  try {
    fs.appendFileSync(file, bytes.subarray(1));
    await until("the whole line", () => seen.includes("done"));
    assert.equal(seen, "✓ done\n");
  } finally {
    follower.dispose();
  }
});

test("a truncated file is read again from its start", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gadugi-log-"));
  const file = path.join(dir, "stdout.log");
  fs.writeFileSync(file, "old output that is long\n");
  let seen = "";
  const follower = new LogFollower([file], (text) => (seen += text));
  follower.start();
  try {
    await until("the old output", () => seen.includes("old output"));
    fs.writeFileSync(file, "new\n");
    await until("the new output", () => seen.endsWith("new\n"));
  } finally {
    follower.dispose();
  }
});
