// The extension's settings turned into the arguments of `gadugi.orchestrate`. Reads through a
// getter so the unit tests need no VS Code.

import type { OrchestrateArgs } from "./protocol";

/** Reads one setting of the `gadugi` section (vscode.WorkspaceConfiguration.get fits). */
export type SettingGetter = <T>(key: string) => T | undefined;

/** `gadugi.orchestrate` arguments for `files` under the current settings. */
export function orchestrateArgs(files: string[], get: SettingGetter): OrchestrateArgs {
  const args: OrchestrateArgs = { files };
  const max = get<number | null>("maxParallel");
  if (typeof max === "number" && Number.isInteger(max) && max >= 1) args.maxParallel = max;
  const profile = get<string>("agent.profile")?.trim();
  if (profile) args.agent = profile;
  const extra = get<unknown>("agent.extraArgs");
  if (Array.isArray(extra)) {
    const strings = extra.filter((a): a is string => typeof a === "string");
    if (strings.length > 0) args.agentArgs = strings;
  }
  const location = get<string>("worktree.location")?.trim();
  if (location) args.worktreeDir = location;
  return args;
}

/** `GADUGI_LOG` for the server from `gadugi.server.logLevel`. */
export function logFilter(level: string | undefined): string {
  const known = ["error", "warn", "info", "debug", "trace"];
  return `gadugi=${level && known.includes(level) ? level : "info"}`;
}
