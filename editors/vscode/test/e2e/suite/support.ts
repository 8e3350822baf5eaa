// What the extension-host suites share: a tiny sequential runner (each check logged; the first
// failure rejects, which makes the workbench report exit code 1) and waits for events.

import type * as vscodeApi from "vscode";

import type { GadugiApi } from "../../../src/extension";
import type { TreeState } from "../../../src/protocol";

/** The longest wait for an event (only ends a hung suite). */
export const LONG = 120_000;

/** Runs the checks in order; logs `ok N - name (ms)`, and the first failure with its stack. */
export async function runChecks(checks: [string, () => Promise<void>][], what = "extension-host"): Promise<void> {
  let n = 0;
  for (const [name, fn] of checks) {
    n += 1;
    const t0 = Date.now();
    try {
      await fn();
    } catch (e) {
      console.error(`not ok ${n} - ${name}\n${(e as Error).stack ?? e}`);
      throw e;
    }
    console.log(`ok ${n} - ${name} (${Date.now() - t0} ms)`);
  }
  console.log(`all ${n} ${what} checks passed`);
}

/** `p`, or a rejection with `message` after LONG. */
export async function within<T>(p: Thenable<T>, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(typeof message === "string" ? message : message())), LONG)),
  );
  try {
    return await Promise.race([Promise.resolve(p), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the value once ok(value), re-checked on every event. */
export async function waitFor<T>(
  event: vscodeApi.Event<unknown>,
  get: () => T,
  ok: (v: T) => boolean,
  message: string | (() => string),
): Promise<T> {
  let sub: vscodeApi.Disposable | undefined;
  try {
    return await within(
      new Promise<T>((resolve) => {
        const test = () => {
          const v = get();
          if (ok(v)) resolve(v);
        };
        sub = event(test);
        test();
      }),
      message,
    );
  } finally {
    sub?.dispose();
  }
}

/** Resolves with the first tree state (now or later) that satisfies `ok`. */
export function waitForTree(gadugi: GadugiApi, what: string, ok: (s: TreeState) => boolean): Promise<TreeState> {
  return waitFor(
    gadugi.onDidChangeTree,
    () => gadugi.treeState(),
    (s) => !!s && ok(s),
    () => `the tree never showed ${what}; last: ${JSON.stringify(gadugi.treeState())}`,
  ) as Promise<TreeState>;
}
