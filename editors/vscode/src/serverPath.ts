// Finding and checking the `gadugi` binary: the `gadugi.server.path` setting (machine-scoped),
// else the binary bundled in the VSIX (bin/gadugi), else `gadugi` on PATH. Each candidate is
// verified with `--version` before the language client starts it. Plain Node, unit-tested.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Where a server binary came from, for messages. */
export type ServerSource = "setting gadugi.server.path" | "bundled with the extension" | "PATH";

export interface ServerCandidate {
  path: string;
  source: ServerSource;
}

/** The binaries to try, in order. A set path is the only candidate: it is never second-guessed. */
export function serverCandidates(
  setting: string | undefined,
  extensionPath: string,
  pathEnv: string | undefined,
  isExecutable: (p: string) => boolean = executable,
): ServerCandidate[] {
  const configured = setting?.trim();
  if (configured) return [{ path: configured, source: "setting gadugi.server.path" }];
  const out: ServerCandidate[] = [];
  const bundled = path.join(extensionPath, "bin", process.platform === "win32" ? "gadugi.exe" : "gadugi");
  if (isExecutable(bundled)) out.push({ path: bundled, source: "bundled with the extension" });
  for (const dir of (pathEnv ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, "gadugi");
    if (isExecutable(p)) {
      out.push({ path: p, source: "PATH" });
      break;
    }
  }
  return out;
}

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Runs `BINARY --version` (no shell, stdin closed, 10 s at most) and returns e.g. `0.1.0`. */
export function serverVersion(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(binary, ["--version"], { timeout: 10_000, windowsHide: true }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (stderr.trim() || err.message);
        reject(new Error(`${binary} --version failed: ${why}`));
        return;
      }
      const m = /^gadugi (\S+)/m.exec(stdout);
      if (!m) {
        reject(new Error(`${binary} is not a gadugi binary: --version printed "${stdout.trim().slice(0, 80)}"`));
        return;
      }
      resolve(m[1]);
    });
    child.stdin?.end();
  });
}

/** The first candidate that answers `--version` like gadugi does, or an error naming every try. */
export async function findServer(candidates: ServerCandidate[]): Promise<ServerCandidate & { version: string }> {
  if (candidates.length === 0) {
    throw new Error(
      "no gadugi binary: none is bundled with the extension and none is on PATH. Install it (cargo install --path server) or set gadugi.server.path in your user settings.",
    );
  }
  const failures: string[] = [];
  for (const c of candidates) {
    try {
      return { ...c, version: await serverVersion(c.path) };
    } catch (e) {
      failures.push(`${c.path} (${c.source}): ${(e as Error).message}`);
    }
  }
  throw new Error(`no working gadugi binary: ${failures.join("; ")}`);
}
