import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_LAYOUT, crossingsBetween, edgePath, layers, layout } from "../../src/graphLayout";

const O = DEFAULT_LAYOUT;

test("a task's column is its longest chain of dependencies", () => {
  const l = layers(["a", "b", "c", "d", "e"], [["a", "b"], ["b", "c"], ["a", "c"], ["d", "c"], ["x", "e"]]);
  assert.deepEqual(Object.fromEntries(l), { a: 0, b: 1, c: 2, d: 0, e: 0 }, "c waits for b, which waits for a; an unknown id is ignored");
});

test("a cycle (never in a plan) does not hang the layout: its tasks go after the rest", () => {
  const l = layers(["a", "b", "c"], [["a", "b"], ["b", "c"], ["c", "b"]]);
  assert.equal(l.get("a"), 0);
  assert.ok(l.get("b")! >= 1 && l.get("c")! >= 1);
});

test("crossings between two columns are the pairs of edges whose ends swap order", () => {
  assert.equal(crossingsBetween([[0, 0], [1, 1]]), 0);
  assert.equal(crossingsBetween([[0, 1], [1, 0]]), 1);
  assert.equal(crossingsBetween([[0, 2], [1, 1], [2, 0]]), 3);
  assert.equal(crossingsBetween([[0, 0], [0, 1]]), 0, "edges from one node never cross each other");
});

test("left to right: columns by depth, edges from the right of a node to the left of the next", () => {
  const g = layout(["a", "b", "c"], [["a", "b"], ["b", "c"]]);
  const [a, b, c] = ["a", "b", "c"].map((id) => g.nodes.get(id)!);
  assert.deepEqual([a.layer, b.layer, c.layer], [0, 1, 2]);
  assert.ok(a.x < b.x && b.x < c.x);
  assert.equal(b.x - a.x, O.nodeWidth + O.columnGap);
  assert.equal(g.edges.length, 2);
  const e = g.edges[0];
  assert.deepEqual(e.points[0], { x: a.x + O.nodeWidth, y: a.y + O.nodeHeight / 2 });
  assert.deepEqual(e.points[e.points.length - 1], { x: b.x, y: b.y + O.nodeHeight / 2 });
  assert.equal(g.width, c.x + O.nodeWidth + O.margin);
});

test("an edge that skips columns passes through each of them", () => {
  const g = layout(["a", "b", "c", "d"], [["a", "b"], ["b", "c"], ["a", "d"], ["c", "d"]]);
  const skip = g.edges.find((e) => e.from === "a" && e.to === "d")!;
  // a (column 0) → d (column 3): two columns between, each entered and left.
  assert.equal(skip.points.length, 2 + 2 * 2);
  const xs = skip.points.map((p) => p.x);
  assert.deepEqual(xs, [...xs].sort((p, q) => p - q), "it only goes right");
  assert.match(edgePath(skip.points), /^M[\d.]+,[\d.]+( [LC][\d., ]+)+$/);
});

test("barycenter ordering removes the crossings of a graph that has an order without any", () => {
  // Given in the worst order: a1→b2, a2→b1 cross unless one column is swapped.
  const ids = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2"];
  const edges: [string, string][] = [["a1", "b3"], ["a2", "b2"], ["a3", "b1"], ["b3", "c2"], ["b1", "c1"]];
  const g = layout(ids, edges);
  assert.equal(g.crossings, 0);
  assert.deepEqual(g.columns.map((c) => c.length), [3, 3, 2]);
  const order = (id: string) => g.nodes.get(id)!.order;
  // b3 sits on the side of a1, and c2 on the side of b3.
  assert.equal(Math.sign(order("b3") - order("b1")), Math.sign(order("a1") - order("a3")));
  assert.equal(Math.sign(order("c2") - order("c1")), Math.sign(order("b3") - order("b1")));
});

test("nodes of a column never overlap, and an only child sits level with its parent", () => {
  const ids = Array.from({ length: 12 }, (_, i) => `t${i}`);
  const edges: [string, string][] = ids.slice(1).map((id, i) => [ids[Math.floor(i / 3)], id]);
  const g = layout(ids, edges);
  for (const col of g.columns) {
    const ys = col.map((id) => g.nodes.get(id)!.y);
    for (let i = 1; i < ys.length; i++) assert.ok(ys[i] - ys[i - 1] >= O.nodeHeight + O.rowGap - 1e-9, `overlap in ${col}`);
  }
  const chain = layout(["p", "q"], [["p", "q"]]);
  assert.equal(chain.nodes.get("p")!.y, chain.nodes.get("q")!.y);
  for (const p of g.nodes.values()) assert.ok(p.y >= O.margin && p.y + O.nodeHeight <= g.height);
});

test("200 tasks in ten waves: laid out in one piece, fewer crossings than the given order", () => {
  const ids: string[] = [];
  const edges: [string, string][] = [];
  // A deterministic pseudo-random graph: each task depends on up to two of the wave before.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let w = 0; w < 10; w++) {
    for (let i = 0; i < 20; i++) {
      const id = `w${w}-${i}`;
      ids.push(id);
      if (w > 0) {
        edges.push([`w${w - 1}-${Math.floor(rand() * 20)}`, id]);
        if (rand() < 0.5) edges.push([`w${Math.max(0, w - 2)}-${Math.floor(rand() * 20)}`, id]);
      }
    }
  }
  const g = layout(ids, edges);
  assert.equal(g.nodes.size, 200);
  assert.equal(g.columns.length, 10);
  // Crossings between neighbouring waves in the given order, and after the ordering.
  let unordered = 0;
  for (let w = 0; w + 1 < 10; w++) {
    const pairs: [number, number][] = edges
      .filter(([a, b]) => a.startsWith(`w${w}-`) && b.startsWith(`w${w + 1}-`))
      .map(([a, b]) => [Number(a.split("-")[1]), Number(b.split("-")[1])]);
    unordered += crossingsBetween(pairs);
  }
  const ordered = g.edges.filter((e) => g.nodes.get(e.to)!.layer - g.nodes.get(e.from)!.layer === 1);
  const pairsAt = (w: number) =>
    ordered.filter((e) => g.nodes.get(e.from)!.layer === w).map((e) => [g.nodes.get(e.from)!.order, g.nodes.get(e.to)!.order] as [number, number]);
  let after = 0;
  for (let w = 0; w + 1 < 10; w++) after += crossingsBetween(pairsAt(w));
  assert.ok(after < unordered, `barycenter ordering: ${after} crossings between neighbouring columns, given order ${unordered}`);
});

test("tasks on their own go below the connected ones of their column", () => {
  const g = layout(["solo1", "solo2", "root", "child"], [["root", "child"]]);
  assert.deepEqual(g.columns[0], ["root", "solo1", "solo2"]);
  assert.equal(g.nodes.get("root")!.y, g.nodes.get("child")!.y, "the connected pair is level");
});

test("an empty graph has no size", () => {
  const g = layout([], []);
  assert.equal(g.nodes.size, 0);
  assert.equal(g.width, 0);
  assert.equal(g.height, 0);
});
