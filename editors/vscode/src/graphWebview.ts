/// <reference lib="dom" />
// The run graph's webview script (bundled by esbuild into dist/graphWebview.js, loaded with the
// page's nonce): draws the GraphView the extension posts — the dependency graph left to right
// (graphLayout.ts), conflicts as dashed arcs, the timeline of attempts below — and patches it
// on every later view (graphModel.diffViews): a status change touches one node's attributes,
// only a new shape is laid out again. Each update's time (handler plus the style and layout it
// forces) is posted back to the extension. A click on a node opens its actions; the extension
// runs the matching `gadugi-vscode.*` command.

import { DEFAULT_LAYOUT, edgePath, layout, type Layout } from "./graphLayout";
import {
  ACTION_TITLES,
  applyUpdate,
  diffViews,
  patchOfUpdate,
  type GraphAction,
  type GraphBarView,
  type GraphNodeView,
  type GraphPatch,
  type GraphUpdate,
  type GraphView,
  type UpdatePhases,
} from "./graphModel";
import { formatDuration } from "./model";

declare function acquireVsCodeApi(): { postMessage(message: unknown): void };

/**
 * Messages from the extension: the whole view (the first, or a new shape), or what changed
 * since the view the page has (graphModel.updateFor).
 */
export type ToWebview = { type: "view"; view: GraphView; seq: number } | { type: "update"; update: GraphUpdate; seq: number };
/** Messages to the extension. */
export type FromWebview =
  | { type: "ready" }
  | { type: "action"; action: GraphAction; taskId: string }
  | { type: "timing"; seq: number; ms: number; tasks: number; relayout: boolean; phases: UpdatePhases }
  | { type: "refused"; what: string };

const SVG = "http://www.w3.org/2000/svg";
const O = DEFAULT_LAYOUT;
const vscode = acquireVsCodeApi();

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number> = {}, parent?: Element): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.appendChild(e);
  return e;
}

/**
 * Sets an attribute only when its value changes: the browser invalidates style and layout on
 * every set, even of the same value.
 */
function setAttr(e: Element, name: string, value: string): void {
  if (e.getAttribute(name) !== value) e.setAttribute(name, value);
}

/** Sets a text only when it changes (a new text node means a new text layout). */
function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

function byId<T extends Element>(id: string): T {
  return document.getElementById(id) as unknown as T;
}

interface NodeEls {
  g: SVGGElement;
  title: SVGTextElement;
  detail: SVGTextElement;
  tip: SVGTitleElement;
}

let view: GraphView | undefined;
let placed: Layout | undefined;
const nodeEls = new Map<string, NodeEls>();
const barEls = new Map<string, SVGRectElement>();
let clock: number | undefined;

const header = byId<HTMLElement>("title");
const graphSvg = byId<SVGSVGElement>("graph");
const timelineSvg = byId<SVGSVGElement>("timeline");
const timelineSection = byId<HTMLElement>("timeline-section");
const menu = byId<HTMLElement>("menu");
const empty = byId<HTMLElement>("empty");

/** Shortens a text to what fits in `width` pixels (about 7 px per character). */
function fit(text: string, width: number): string {
  const max = Math.max(4, Math.floor(width / 7));
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function nodeClass(n: GraphNodeView): string {
  return `node s-${n.status}${n.critical ? " critical" : ""}`;
}

function patchNode(n: GraphNodeView): void {
  const e = nodeEls.get(n.id);
  if (!e) return;
  setAttr(e.g, "class", nodeClass(n));
  setAttr(e.g, "aria-label", `${n.id}: ${n.detail}${n.critical ? ", on the critical path" : ""}`);
  setText(e.title, fit(n.title, O.nodeWidth - 20));
  setText(e.detail, fit(n.detail, O.nodeWidth - 20));
  setText(e.tip, n.tooltip + (n.critical ? "\non the critical path" : ""));
}

/** Lays out and draws the whole graph. */
function drawGraph(v: GraphView): void {
  placed = layout(
    v.nodes.map((n) => n.id),
    v.edges.map((e) => [e.from, e.to] as const),
  );
  graphSvg.replaceChildren();
  nodeEls.clear();
  graphSvg.setAttribute("width", String(placed.width));
  graphSvg.setAttribute("height", String(placed.height));
  graphSvg.setAttribute("viewBox", `0 0 ${placed.width} ${placed.height}`);
  const defs = el("defs", {}, graphSvg);
  for (const id of ["arrow", "arrow-critical"]) {
    // In user space, so the thick critical edges get arrows of the same size.
    const m = el("marker", { id, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L8,4 L0,8 z", class: id }, m);
  }
  const edgeLayer = el("g", { class: "edges" }, graphSvg);
  const kinds = new Map(v.edges.map((e) => [`${e.from}\u0000${e.to}`, e]));
  for (const e of placed.edges) {
    const info = kinds.get(`${e.from}\u0000${e.to}`);
    const critical = !!info?.critical;
    const path = el("path", {
      d: edgePath(e.points),
      class: `edge ${info?.kind ?? "depends"}${critical ? " critical" : ""}`,
      "marker-end": `url(#${critical ? "arrow-critical" : "arrow"})`,
    }, edgeLayer);
    el("title", {}, path).textContent = info?.kind === "after" ? `${e.to} waits for ${e.from} (same files)` : `${e.to} depends on ${e.from}`;
  }
  el("g", { id: "conflicts", class: "conflicts" }, graphSvg);
  const nodeLayer = el("g", { class: "nodes" }, graphSvg);
  for (const n of v.nodes) {
    const p = placed.nodes.get(n.id);
    if (!p) continue;
    const g = el("g", { transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button", "data-id": n.id }, nodeLayer);
    const tip = el("title", {}, g);
    el("rect", { class: "frame", width: O.nodeWidth, height: O.nodeHeight, rx: 5 }, g);
    el("rect", { class: "band", width: 6, height: O.nodeHeight - 2, x: 1, y: 1, rx: 3 }, g);
    const title = el("text", { class: "t1", x: 14, y: 17 }, g);
    const detail = el("text", { class: "t2", x: 14, y: 32 }, g);
    nodeEls.set(n.id, { g, title, detail, tip });
    patchNode(n);
  }
  empty.hidden = v.nodes.length > 0;
}

/** The dashed arcs between conflicting tasks (hover: the files), and base-branch markers. */
function drawConflicts(v: GraphView): void {
  const layer = graphSvg.querySelector("#conflicts");
  if (!layer || !placed) return;
  layer.replaceChildren();
  const right = (id: string) => {
    const p = placed!.nodes.get(id);
    return p ? { x: p.x + O.nodeWidth, y: p.y + O.nodeHeight / 2 } : undefined;
  };
  for (const c of v.conflicts) {
    const a = right(c.a);
    const cls = `conflict ${c.predicted ? "predicted" : c.serialized ? "serialized" : "declared"}`;
    const what = c.predicted ? "predicted merge conflict" : c.serialized ? "same files (the second waits)" : "both name the same files";
    if (!a) continue;
    if (c.b === undefined) {
      const mark = el("circle", { cx: a.x - 8, cy: a.y - O.nodeHeight / 2 + 8, r: 5, class: cls }, layer);
      el("title", {}, mark).textContent = `${c.a} ✕ base ${c.baseBranch ?? ""}: ${what}\n${c.files.join("\n")}`;
      continue;
    }
    const b = right(c.b);
    if (!b) continue;
    const bulge = 24 + Math.min(120, Math.abs(b.y - a.y) * 0.2);
    const d = `M${a.x},${a.y} Q${Math.max(a.x, b.x) + bulge},${(a.y + b.y) / 2} ${b.x},${b.y}`;
    const g = el("g", { class: cls }, layer);
    el("path", { d, class: "line" }, g);
    el("path", { d, class: "hit" }, g);
    el("title", {}, g).textContent = `${c.a} ✕ ${c.b}: ${what}\n${c.files.join("\n")}`;
  }
}

// The timeline: one row per task that has attempts (in order of its first start), a bar per attempt.
const ROW = 16;
const LABEL = 150;
let rows: string[] = [];
/** Row of each task in the timeline. */
const rowOf = new Map<string, number>();

function total(v: GraphView, now: number): number {
  if (v.startedAt === undefined) return 1;
  const end = v.finishedAt ?? (v.running ? now : Math.max(v.startedAt, ...v.bars.map((b) => v.startedAt! + (b.end ?? b.start) * 1000)));
  return Math.max(1, (end - v.startedAt) / 1000);
}

/** Width of the timeline, kept by a ResizeObserver (reading it in an update would force a layout). */
let timelineWidth = 900;
/** Bars of attempts still running: they grow with the clock. */
const runningBars = new Set<string>();

/**
 * Fits the timeline to its width: the bars are drawn in seconds inside one group, so the
 * scale is one attribute; only running bars and the axis change.
 */
function scaleBars(v: GraphView): void {
  const now = Date.now();
  const span = total(v, now);
  const width = Math.max(300, timelineWidth - 24);
  const k = (width - LABEL - 10) / span;
  setAttr(timelineSvg, "width", String(width));
  const bars = timelineSvg.querySelector("#bars");
  if (bars) setAttr(bars, "transform", `translate(${LABEL},0) scale(${k},1)`);
  if (v.startedAt !== undefined) {
    const elapsed = (now - v.startedAt) / 1000;
    for (const b of v.bars) {
      const r = runningBars.has(b.key) ? barEls.get(b.key) : undefined;
      if (r) setAttr(r, "width", String(Math.max(0, elapsed - b.start)));
    }
  }
  const axis = timelineSvg.querySelector("#axis");
  if (!axis) return;
  axis.replaceChildren();
  const step = niceStep(span / 8);
  for (let t = 0; t <= span; t += step) {
    const x = LABEL + t * k;
    el("line", { x1: x, x2: x, y1: 0, y2: rows.length * ROW + 4, class: "tick" }, axis);
    // A label that would run off the right edge is left out.
    if (x + 40 <= width) el("text", { x: x + 2, y: rows.length * ROW + 16, class: "tick-label" }, axis).textContent = formatDuration(t);
  }
}

function niceStep(raw: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]) if (s >= raw) return s;
  return 3600 * Math.ceil(raw / 3600);
}

function barClass(b: GraphBarView): string {
  return `bar s-${b.status}`;
}

function drawTimeline(v: GraphView): void {
  timelineSection.hidden = v.kind === "plan";
  timelineSvg.replaceChildren();
  barEls.clear();
  runningBars.clear();
  const first = new Map<string, number>();
  for (const b of v.bars) first.set(b.task, Math.min(first.get(b.task) ?? Infinity, b.start));
  rows = [];
  rowOf.clear();
  el("g", { id: "axis" }, timelineSvg);
  el("g", { id: "labels" }, timelineSvg);
  el("g", { id: "bars" }, timelineSvg);
  addRows([...first.keys()].sort((a, b) => first.get(a)! - first.get(b)! || a.localeCompare(b)));
  for (const b of v.bars) putBar(b);
  scaleBars(v);
}

/** Appends timeline rows (tasks that started later than every row so far). */
function addRows(tasks: string[]): void {
  const labels = timelineSvg.querySelector("#labels")!;
  for (const task of tasks) {
    rowOf.set(task, rows.length);
    el("text", { x: 4, y: rows.length * ROW + 12, class: "row-label" }, labels).textContent = fit(task, LABEL - 8);
    rows.push(task);
  }
  setAttr(timelineSvg, "height", String(rows.length * ROW + 24));
}

/** Adds or updates an attempt's bar, in seconds since the run started (scaleBars fits them). */
function putBar(b: GraphBarView): void {
  let r = barEls.get(b.key);
  if (!r) {
    r = el("rect", { y: rowOf.get(b.task)! * ROW + 3, height: ROW - 5 }, timelineSvg.querySelector("#bars")!);
    el("title", {}, r);
    barEls.set(b.key, r);
  }
  setAttr(r, "x", String(b.start));
  setAttr(r, "width", String(Math.max(0, (b.end ?? b.start) - b.start)));
  if (b.end === undefined) runningBars.add(b.key);
  else runningBars.delete(b.key);
  setAttr(r, "class", barClass(b));
  setText(r.firstElementChild!, barTip(b));
}

function barTip(b: GraphBarView): string {
  const took = b.end !== undefined ? formatDuration(b.end - b.start) : "running";
  return `${b.task} attempt ${b.attempt}: ${b.status}, ${took} (from +${formatDuration(b.start)})`;
}

/** Shows a new view (`patch`: what changed from the one shown): patches, lays out only a new shape. */
function apply(next: GraphView, patch: GraphPatch, phases: UpdatePhases): void {
  let t = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - t;
    t = now;
    return ms;
  };
  const prev = view;
  view = next;
  if (patch.header) setText(header, next.title);
  if (patch.relayout) {
    drawGraph(next);
  } else {
    for (const n of patch.nodes) patchNode(n);
  }
  phases.graph = lap();
  if (patch.conflicts) drawConflicts(next);
  phases.conflicts = lap();
  // New tasks in the timeline are appended when they started after every row so far (the
  // usual case: rows are in order of first start); anything else redraws it.
  const newTasks = [...new Set(patch.bars.filter((b) => !rowOf.has(b.task)).map((b) => b.task))];
  const latest = newTasks.length > 0 ? Math.max(-Infinity, ...(prev?.bars ?? []).map((b) => b.start)) : -Infinity;
  const appendable = newTasks.every((t) => patch.bars.every((b) => b.task !== t || b.start >= latest));
  if (patch.relayout || patch.removedBars.length > 0 || !appendable) {
    drawTimeline(next);
    phases.timelineRedrawn = true;
  } else if (patch.bars.length > 0 || prev?.running !== next.running || prev?.finishedAt !== next.finishedAt) {
    const starts = new Map<string, number>();
    for (const b of patch.bars) if (newTasks.includes(b.task)) starts.set(b.task, Math.min(starts.get(b.task) ?? Infinity, b.start));
    addRows(newTasks.sort((a, b) => starts.get(a)! - starts.get(b)! || a.localeCompare(b)));
    for (const b of patch.bars) putBar(b);
    scaleBars(next);
  }
  if (next.running && clock === undefined) {
    clock = window.setInterval(() => view && scaleBars(view), 1000);
  } else if (!next.running && clock !== undefined) {
    window.clearInterval(clock);
    clock = undefined;
  }
  phases.timeline = lap();
}

function closeMenu(): void {
  menu.hidden = true;
  menu.replaceChildren();
}

function openMenu(id: string): void {
  const n = view?.nodes.find((x) => x.id === id);
  const g = nodeEls.get(id)?.g;
  if (!n || !g) return;
  menu.replaceChildren();
  const head = document.createElement("div");
  head.className = "menu-head";
  head.textContent = `${n.id} — ${n.detail}`;
  menu.appendChild(head);
  for (const action of n.actions) {
    const b = document.createElement("button");
    b.textContent = ACTION_TITLES[action];
    b.dataset.action = action;
    b.dataset.task = id;
    b.setAttribute("role", "menuitem");
    menu.appendChild(b);
  }
  const box = g.getBoundingClientRect();
  menu.hidden = false;
  menu.style.left = `${Math.round(box.left + window.scrollX)}px`;
  menu.style.top = `${Math.round(box.bottom + window.scrollY + 4)}px`;
  (menu.querySelector("button") as HTMLButtonElement | null)?.focus();
}

graphSvg.addEventListener("click", (e) => {
  const g = (e.target as Element).closest("[data-id]");
  if (g) {
    e.stopPropagation();
    openMenu(g.getAttribute("data-id")!);
  }
});
graphSvg.addEventListener("keydown", (e) => {
  const g = (e.target as Element).closest("[data-id]");
  if (g && (e.key === "Enter" || e.key === " ")) {
    e.preventDefault();
    openMenu(g.getAttribute("data-id")!);
  }
});
menu.addEventListener("click", (e) => {
  const b = (e.target as HTMLElement).closest("button");
  if (!b) return;
  vscode.postMessage({ type: "action", action: b.dataset.action as GraphAction, taskId: b.dataset.task! } satisfies FromWebview);
  closeMenu();
});
document.addEventListener("click", (e) => {
  if (!menu.contains(e.target as Node)) closeMenu();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeMenu();
});
new ResizeObserver((entries) => {
  timelineWidth = entries[entries.length - 1].contentRect.width || timelineWidth;
  if (view?.kind === "run") scaleBars(view);
}).observe(timelineSection);

window.addEventListener("message", (e: MessageEvent<ToWebview>) => {
  const m = e.data;
  if (m?.type !== "view" && m?.type !== "update") return;
  if (m.type === "update" && !view) {
    // An update for a view this page never had (it was reloaded): ask for the whole view.
    vscode.postMessage({ type: "ready" } satisfies FromWebview);
    return;
  }
  const t0 = performance.now();
  const phases: UpdatePhases = { diff: 0, graph: 0, conflicts: 0, timeline: 0, timelineRedrawn: false, styleLayout: 0 };
  const next = m.type === "view" ? m.view : applyUpdate(view!, m.update);
  const patch = m.type === "view" ? diffViews(view, next) : patchOfUpdate(m.update);
  phases.diff = performance.now() - t0;
  apply(next, patch, phases);
  const t1 = performance.now();
  // Reading a layout property makes the browser do the style and layout work of this update
  // now, so it is part of the time measured (painting is not).
  void document.body.offsetHeight;
  const t2 = performance.now();
  phases.styleLayout = t2 - t1;
  // The update on the page's timeline: DevTools' Timings track shows it, and a trace of the
  // page finds the CPU time its thread spent on it (test/e2e/graph.test.ts).
  performance.measure(`gadugi graph ${patch.relayout ? "layout" : "update"} ${m.seq}`, { start: t0, end: t2 });
  performance.clearMeasures();
  vscode.postMessage({ type: "timing", seq: m.seq, ms: t2 - t0, tasks: next.nodes.length, relayout: patch.relayout, phases } satisfies FromWebview);
});
// Anything the strict Content Security Policy refuses is reported (and logged by the extension).
document.addEventListener("securitypolicyviolation", (e) => {
  vscode.postMessage({ type: "refused", what: `${e.effectiveDirective} ${e.blockedURI || "inline"}` } satisfies FromWebview);
});
vscode.postMessage({ type: "ready" } satisfies FromWebview);
