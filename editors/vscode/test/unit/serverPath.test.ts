import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

import { findServer, serverCandidates, serverVersion } from "../../src/serverPath";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "gadugi-serverpath-"));
}

function script(dir: string, name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
}

test("a set path is the only candidate; else the bundled binary, then PATH", () => {
  const ext = tempDir();
  const onPath = tempDir();
  assert.deepEqual(serverCandidates(" /opt/gadugi ", ext, onPath), [{ path: "/opt/gadugi", source: "setting gadugi.server.path" }]);
  assert.deepEqual(serverCandidates("", ext, onPath), [], "nothing bundled, nothing on PATH");
  const onPathBin = script(onPath, "gadugi", "echo gadugi 9.9.9");
  assert.deepEqual(serverCandidates(undefined, ext, `/nonexistent${path.delimiter}${onPath}`), [{ path: onPathBin, source: "PATH" }]);
  fs.mkdirSync(path.join(ext, "bin"));
  const bundled = script(path.join(ext, "bin"), "gadugi", "echo gadugi 1.0.0");
  assert.deepEqual(serverCandidates("", ext, onPath), [
    { path: bundled, source: "bundled with the extension" },
    { path: onPathBin, source: "PATH" },
  ]);
  // A file that is not executable is not a candidate.
  fs.chmodSync(bundled, 0o644);
  assert.equal(serverCandidates("", ext, onPath)[0].source, "PATH");
});

test("--version must answer like gadugi", async () => {
  const dir = tempDir();
  assert.equal(await serverVersion(script(dir, "good", 'echo "gadugi 0.3.1"')), "0.3.1");
  await assert.rejects(serverVersion(script(dir, "other", 'echo "rustc 1.95"')), /is not a gadugi binary/);
  await assert.rejects(serverVersion(script(dir, "broken", "echo oops >&2; exit 2")), /--version failed: oops/);
  await assert.rejects(serverVersion(path.join(dir, "missing")), /no such file/);
});

test("the first working candidate wins; the error names every failed try", async () => {
  const dir = tempDir();
  const broken = script(dir, "broken", "exit 1");
  const good = script(dir, "good", "echo gadugi 0.1.0");
  const found = await findServer([
    { path: broken, source: "bundled with the extension" },
    { path: good, source: "PATH" },
  ]);
  assert.deepEqual(found, { path: good, source: "PATH", version: "0.1.0" });
  await assert.rejects(findServer([{ path: broken, source: "setting gadugi.server.path" }]), (e: Error) =>
    e.message.includes(broken) && e.message.includes("setting gadugi.server.path"),
  );
  await assert.rejects(findServer([]), /set gadugi.server.path in your user settings/);
});

test("the real gadugi binary passes the check", async () => {
  assert.ok(fs.existsSync(realBinary()), `${realBinary()} is missing: build the server first (cargo build -p gadugi)`);
  assert.match(await serverVersion(realBinary()), /^\d+\.\d+\.\d+/);
});

function realBinary(): string {
  const root = path.resolve(__dirname, "..", "..", "..", "..", "..");
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
  return path.join(target, "debug", "gadugi");
}
