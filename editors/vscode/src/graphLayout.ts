// Layered layout of a run's dependency graph, left to right (a small Sugiyama): a task's
// column is its longest chain of dependencies, edges that skip columns get virtual points in
// the columns between, the order within each column comes from barycenter sweeps (kept when
// they lower the number of crossings), and rows are pulled towards their neighbours. Pure:
// no DOM and no VS Code, so test/unit/graphLayout.test.ts runs it in plain Node, and the
// webview (graphWebview.ts) bundles it.

/** Sizes of the drawing, in pixels. */
export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  /** Horizontal space between columns (the edges run there). */
  columnGap: number;
  /** Vertical space between nodes of a column. */
  rowGap: number;
  /** Height a virtual point (an edge passing through a column) takes. */
  virtualHeight: number;
  margin: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = {
  nodeWidth: 168,
  nodeHeight: 40,
  columnGap: 64,
  rowGap: 14,
  virtualHeight: 6,
  margin: 16,
};

/** Where a node is: its column, its place in the column, and its top-left corner. */
export interface NodePlace {
  layer: number;
  order: number;
  x: number;
  y: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface EdgePlace {
  from: string;
  to: string;
  /** From the right middle of `from`, through the columns between, to the left middle of `to`. */
  points: Point[];
}

export interface Layout {
  width: number;
  height: number;
  nodes: Map<string, NodePlace>;
  edges: EdgePlace[];
  /** Edge crossings between neighbouring columns after ordering. */
  crossings: number;
  /** Node ids per column, in order (virtual points left out). */
  columns: string[][];
}

/**
 * Column of every node: 0 without dependencies, else one more than its deepest dependency.
 * Edges are `[dependency, dependent]`; edges naming unknown ids are ignored, and nodes caught
 * in a cycle (a plan never has one) go after the rest, their edges among themselves ignored.
 */
export function layers(ids: readonly string[], edges: readonly (readonly [string, string])[]): Map<string, number> {
  const known = new Set(ids);
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const succs = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [a, b] of edges) {
    if (!known.has(a) || !known.has(b) || a === b) continue;
    preds.get(b)!.push(a);
    succs.get(a)!.push(b);
  }
  const pending = new Map(ids.map((id) => [id, preds.get(id)!.length]));
  const layer = new Map<string, number>();
  const queue = ids.filter((id) => pending.get(id) === 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    layer.set(id, Math.max(0, ...preds.get(id)!.map((p) => layer.get(p)! + 1)));
    for (const s of succs.get(id)!) {
      const left = pending.get(s)! - 1;
      pending.set(s, left);
      if (left === 0) queue.push(s);
    }
  }
  const deepest = Math.max(-1, ...layer.values());
  for (const id of ids) {
    if (!layer.has(id)) {
      const placed = preds.get(id)!.filter((p) => layer.has(p) && layer.get(p)! <= deepest);
      layer.set(id, Math.max(deepest + 1, ...placed.map((p) => layer.get(p)! + 1)));
    }
  }
  return layer;
}

interface Cell {
  key: string;
  real: boolean;
  height: number;
  up: number[]; // indices (into cells) of neighbours in the column before
  down: number[]; // ... in the column after
}

/** Crossings between two neighbouring columns, from each edge's positions at its two ends. */
export function crossingsBetween(pairs: readonly (readonly [number, number])[]): number {
  let n = 0;
  for (let i = 0; i < pairs.length; i++) {
    for (let j = i + 1; j < pairs.length; j++) {
      const [a1, b1] = pairs[i];
      const [a2, b2] = pairs[j];
      if ((a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2)) n++;
    }
  }
  return n;
}

/** Lays out the graph; `ids` in the run's order (ties keep it). */
export function layout(
  ids: readonly string[],
  edges: readonly (readonly [string, string])[],
  options: LayoutOptions = DEFAULT_LAYOUT,
): Layout {
  const layerOf = layers(ids, edges);
  const depth = ids.length === 0 ? 0 : Math.max(...layerOf.values()) + 1;
  const cells: Cell[] = [];
  const index = new Map<string, number>();
  const columns: number[][] = Array.from({ length: depth }, () => []);
  const add = (key: string, real: boolean, layer: number): number => {
    const i = cells.length;
    cells.push({ key, real, height: real ? options.nodeHeight : options.virtualHeight, up: [], down: [] });
    columns[layer].push(i);
    return i;
  };
  for (const id of ids) index.set(id, add(id, true, layerOf.get(id)!));
  // Every edge, as a chain through virtual cells in the columns it skips.
  const chains: { from: string; to: string; cells: number[] }[] = [];
  const seen = new Set<string>();
  for (const [a, b] of edges) {
    const la = layerOf.get(a);
    const lb = layerOf.get(b);
    if (la === undefined || lb === undefined || lb <= la || seen.has(`${a}\u0000${b}`)) continue;
    seen.add(`${a}\u0000${b}`);
    const chain = [index.get(a)!];
    for (let l = la + 1; l < lb; l++) chain.push(add(`${a}\u0000${b}\u0000${l}`, false, l));
    chain.push(index.get(b)!);
    for (let k = 0; k + 1 < chain.length; k++) {
      cells[chain[k]].down.push(chain[k + 1]);
      cells[chain[k + 1]].up.push(chain[k]);
    }
    chains.push({ from: a, to: b, cells: chain });
  }

  // Order within columns: barycenter sweeps down and up, the best order by crossings kept.
  // Tasks on their own (no dependency either way) go to the bottom of their column, out of the
  // way of the connected ones.
  const alone = (c: number) => cells[c].up.length === 0 && cells[c].down.length === 0;
  for (const col of columns) col.sort((a, b) => Number(alone(a)) - Number(alone(b)) || a - b);
  const pos = new Float64Array(cells.length);
  const place = (cols: number[][]) => cols.forEach((col) => col.forEach((c, i) => (pos[c] = i)));
  const count = (cols: number[][]): number => {
    place(cols);
    let n = 0;
    for (let l = 0; l + 1 < cols.length; l++) {
      const pairs: [number, number][] = [];
      for (const c of cols[l]) for (const d of cells[c].down) pairs.push([pos[c], pos[d]]);
      n += crossingsBetween(pairs);
    }
    return n;
  };
  const sweep = (cols: number[][], downward: boolean): number[][] => {
    const out = cols.map((c) => [...c]);
    place(out);
    const range = downward ? [...out.keys()].slice(1) : [...out.keys()].reverse().slice(1);
    for (const l of range) {
      const bary = new Map<number, number>();
      for (const c of out[l]) {
        const ns = downward ? cells[c].up : cells[c].down;
        bary.set(c, alone(c) ? 1e9 + pos[c] : ns.length ? ns.reduce((s, n) => s + pos[n], 0) / ns.length : pos[c]);
      }
      out[l].sort((a, b) => bary.get(a)! - bary.get(b)! || pos[a] - pos[b]);
      out[l].forEach((c, i) => (pos[c] = i));
    }
    return out;
  };
  let best = columns.map((c) => [...c]);
  let bestCount = count(best);
  let current = best;
  for (let round = 0; round < 8 && bestCount > 0; round++) {
    current = sweep(current, round % 2 === 0);
    const n = count(current);
    if (n < bestCount) {
      best = current.map((c) => [...c]);
      bestCount = n;
    }
  }

  // Rows: stacked, then pulled towards the mean of their neighbours, order and gaps kept.
  const y = new Float64Array(cells.length);
  // Each node of a column where its neighbours want it, pushed down only as far as the gap
  // needs; then the whole column moves by the mean of what pushing cost, so columns stay
  // centred on their neighbours instead of drifting down sweep after sweep.
  const stack = (col: number[], want: (c: number) => number) => {
    const wanted = col.map(want);
    let bottom = -Infinity;
    col.forEach((c, i) => {
      y[c] = Math.max(wanted[i], bottom === -Infinity ? wanted[i] : bottom + options.rowGap);
      bottom = y[c] + cells[c].height;
    });
    const shift = col.reduce((sum, c, i) => sum + wanted[i] - y[c], 0) / Math.max(1, col.length);
    for (const c of col) y[c] += shift;
  };
  for (const col of best) {
    let top = 0;
    for (const c of col) {
      y[c] = top;
      top += cells[c].height + options.rowGap;
    }
  }
  const centre = (c: number) => y[c] + cells[c].height / 2;
  for (let round = 0; round < 4; round++) {
    const downward = round % 2 === 0;
    const order = downward ? [...best.keys()].slice(1) : [...best.keys()].reverse().slice(1);
    for (const l of order) {
      stack(best[l], (c) => {
        const ns = downward ? cells[c].up : cells[c].down;
        return ns.length ? ns.reduce((s, n) => s + centre(n), 0) / ns.length - cells[c].height / 2 : y[c];
      });
    }
  }
  const minY = cells.length ? Math.min(...Array.from(y)) : 0;
  const nodes = new Map<string, NodePlace>();
  const xOf = (l: number) => options.margin + l * (options.nodeWidth + options.columnGap);
  let maxY = 0;
  best.forEach((col, l) =>
    col.forEach((c, order) => {
      y[c] += options.margin - minY;
      maxY = Math.max(maxY, y[c] + cells[c].height);
      if (cells[c].real) nodes.set(cells[c].key, { layer: l, order, x: xOf(l), y: y[c] });
    }),
  );
  const edgePlaces: EdgePlace[] = chains.map(({ from, to, cells: chain }) => {
    const points: Point[] = [];
    chain.forEach((c, k) => {
      const l = layerOf.get(from)! + k;
      const cy = y[c] + cells[c].height / 2;
      if (k === 0) points.push({ x: xOf(l) + options.nodeWidth, y: cy });
      else if (k === chain.length - 1) points.push({ x: xOf(l), y: cy });
      else points.push({ x: xOf(l), y: cy }, { x: xOf(l) + options.nodeWidth, y: cy });
    });
    return { from, to, points };
  });
  return {
    width: depth === 0 ? 0 : xOf(depth - 1) + options.nodeWidth + options.margin,
    height: cells.length === 0 ? 0 : maxY + options.margin,
    nodes,
    edges: edgePlaces,
    crossings: bestCount,
    columns: best.map((col) => col.filter((c) => cells[c].real).map((c) => cells[c].key)),
  };
}

/** An SVG path through the points: curves across the gaps between columns, straight through a column. */
export function edgePath(points: readonly Point[]): string {
  if (points.length === 0) return "";
  const r = (n: number) => Math.round(n * 10) / 10;
  let d = `M${r(points[0].x)},${r(points[0].y)}`;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a.y === b.y) {
      d += ` L${r(b.x)},${r(b.y)}`;
    } else {
      const mx = r((a.x + b.x) / 2);
      d += ` C${mx},${r(a.y)} ${mx},${r(b.y)} ${r(b.x)},${r(b.y)}`;
    }
  }
  return d;
}
