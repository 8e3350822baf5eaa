// Keeps src/protocol.ts in step with its declaration, server/src/lsp/ext.rs (and the status
// enums of server/src/core/events.rs): every command and method, every struct with every field and
// its type, every enum variant. Reads both sources, so a change on either side fails here.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import * as proto from "../../src/protocol";

const root = path.resolve(__dirname, "..", "..", "..", "..", "..");
const extRs = fs.readFileSync(path.join(root, "server/src/lsp/ext.rs"), "utf8").split("#[cfg(test)]")[0];
const eventsRs = fs.readFileSync(path.join(root, "server/src/core/events.rs"), "utf8");
const protocolTs = fs.readFileSync(path.join(root, "editors/vscode/src/protocol.ts"), "utf8");

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());

/** A Rust field type as TypeScript writes it here. */
function tsType(rust: string): string {
  rust = rust.trim();
  let m = /^Option<(.+)>$/.exec(rust);
  if (m) return `${tsType(m[1])} | null`;
  m = /^Vec<(.+)>$/.exec(rust);
  if (m) return `${tsType(m[1])}[]`;
  if (rust === "String") return "string";
  if (rust === "bool") return "boolean";
  if (/^(u8|u16|u32|u64|usize|i32|i64|f64)$/.test(rust)) return "number";
  return rust;
}

interface Field {
  type: string;
  optional: boolean;
}

function rustStructs(): Map<string, Map<string, Field>> {
  const out = new Map<string, Map<string, Field>>();
  for (const m of extRs.matchAll(/pub struct (\w+) \{([^}]*)\}/g)) {
    const fields = new Map<string, Field>();
    let defaulted = false;
    for (const line of m[2].split("\n").map((l) => l.trim())) {
      if (line.startsWith("#[serde(default)]")) defaulted = true;
      const f = /^pub (\w+): (.+),$/.exec(line);
      if (f) {
        fields.set(camel(f[1]), { type: tsType(f[2]), optional: defaulted });
        defaulted = false;
      }
    }
    out.set(m[1], fields);
  }
  return out;
}

function tsInterfaces(): Map<string, Map<string, Field>> {
  const out = new Map<string, Map<string, Field>>();
  for (const m of protocolTs.matchAll(/export interface (\w+) \{([^}]*)\}/g)) {
    const fields = new Map<string, Field>();
    for (const line of m[2].split("\n").map((l) => l.trim())) {
      const f = /^(\w+)(\?)?: (.+);$/.exec(line);
      if (f) fields.set(f[1], { type: f[3], optional: f[2] === "?" });
    }
    out.set(m[1], fields);
  }
  for (const m of protocolTs.matchAll(/export type (\w+) = Record<string, never>;/g)) out.set(m[1], new Map());
  return out;
}

test("every command and method of ext.rs, with the same name", () => {
  const rust = new Map([...extRs.matchAll(/pub const (\w+): &str = "([^"]+)";/g)].map((m) => [m[1], m[2]]));
  assert.ok(rust.size >= 10, `only ${rust.size} constants found: the parser no longer matches ext.rs`);
  const ts = new Map<string, string>([
    ...Object.entries(proto.Commands).map(([k, v]) => [snake(k).toUpperCase(), v] as [string, string]),
    ...Object.entries(proto.Methods).map(([k, v]) => [snake(k).toUpperCase(), v] as [string, string]),
  ]);
  assert.deepEqual([...ts.entries()].sort(), [...rust.entries()].sort());
  const listed = /pub const COMMANDS: &\[&str\] = &\[([^\]]*)\]/.exec(extRs)![1].split(",").map((s) => s.trim()).filter(Boolean);
  assert.deepEqual(listed.map((c) => rust.get(c)).sort(), Object.values(proto.Commands).sort(), "COMMANDS lists every command");
});

test("every struct of ext.rs is an interface with the same fields and types", () => {
  const rust = rustStructs();
  const ts = tsInterfaces();
  assert.ok(rust.size >= 15, `only ${rust.size} structs found: the parser no longer matches ext.rs`);
  for (const [name, fields] of rust) {
    const mirror = ts.get(name);
    assert.ok(mirror, `protocol.ts has no interface ${name}`);
    assert.deepEqual([...mirror.keys()].sort(), [...fields.keys()].sort(), `fields of ${name}`);
    for (const [field, f] of fields) {
      const t: Field = mirror.get(field)!;
      // Arguments the server defaults may be left out (`?`); an optional one may also be null.
      assert.equal(t.optional, f.optional, `${name}.${field}: optional in one, required in the other`);
      const expected = f.optional && !f.type.endsWith("| null") && !f.type.endsWith("[]") && f.type !== "boolean" ? `${f.type} | null` : f.type;
      assert.ok(
        t.type === f.type || t.type === expected,
        `${name}.${field}: Rust ${f.type}, TypeScript ${t.type}`,
      );
    }
  }
});

test("status enums have the same variants", () => {
  const variants = (name: string) => {
    const body = new RegExp(`pub enum ${name} \\{([^}]*)\\}`).exec(eventsRs)![1];
    return body.split("\n").map((l) => l.trim()).filter((l) => /^\w+,$/.test(l)).map((l) => snake(l.slice(0, -1)));
  };
  assert.deepEqual([...proto.RUN_STATUSES], variants("RunStatus"));
  assert.deepEqual([...proto.TASK_STATUSES], variants("TaskStatus"));
  assert.deepEqual([...proto.TASK_PHASES], variants("TaskPhase"));
  for (const [name, list] of [["RunStatus", proto.RUN_STATUSES], ["TaskStatus", proto.TASK_STATUSES], ["TaskPhase", proto.TASK_PHASES]] as const) {
    const union = new RegExp(`export type ${name} = ([^;]+);`).exec(protocolTs)![1];
    assert.deepEqual(union.split("|").map((s) => s.trim().replace(/"/g, "")), [...list], `the ${name} union`);
  }
});

test("the field lists the protocol test checks answers against are the interfaces' fields", () => {
  const ts = tsInterfaces();
  const lists: [string, object][] = [
    ["TreeState", proto.TREE_STATE_FIELDS], ["RunNode", proto.RUN_NODE_FIELDS], ["TaskNode", proto.TASK_NODE_FIELDS],
    ["WorktreeNode", proto.WORKTREE_NODE_FIELDS], ["TaskDiff", proto.TASK_DIFF_FIELDS],
    ["MergeResult", proto.MERGE_RESULT_FIELDS], ["MergeStepNode", proto.MERGE_STEP_FIELDS],
    ["PullRequestsResult", proto.PULL_REQUESTS_RESULT_FIELDS], ["PullRequestNode", proto.PULL_REQUEST_NODE_FIELDS],
    ["ReportResult", proto.REPORT_RESULT_FIELDS],
  ];
  for (const [name, fields] of lists) assert.deepEqual(Object.keys(fields).sort(), [...ts.get(name)!.keys()].sort(), name);
});
