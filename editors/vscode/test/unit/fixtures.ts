// Tree fixtures shared by the unit tests of the views: a TaskNode and a RunNode with every
// field filled, overridable per test.

import type { RunNode, TaskNode } from "../../src/protocol";

export function task(id: string, over: Partial<TaskNode> = {}): TaskNode {
  return {
    id, title: `Task ${id}`, status: "queued", phase: null, promptFile: `file:///r/prompts/${id}.md`,
    branch: `gadugi/${id}`, worktree: `/r.gadugi-worktrees/${id}`, worktreeExists: false, dependsOn: [],
    attempts: 0, exitCode: null, durationSeconds: null, commits: 0, error: null, lastActivity: null,
    costUsd: null, logFile: `/r/.gadugi/runs/x/tasks/${id}/attempt-1/stdout.log`, pendingApprovals: [], placement: null, ...over,
  };
}

export function run(tasks: TaskNode[], over: Partial<RunNode> = {}): RunNode {
  return {
    runId: "20261121-094512-3fa2", repo: "file:///r", status: "running", owned: true,
    startedAt: "2026-11-21T09:45:12.000Z", finishedAt: null, maxParallel: 4, driverAlive: true, tasks, ...over,
  };
}
