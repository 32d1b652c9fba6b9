// A service graph drawn as SVG: services in columns by call depth, edges as curves. Used
// by "/services" (the observed map, with TracePulse's declared map over it) and by a
// report's system map. Names are data: they enter only as text nodes and attributes.
import { colour, el, svg } from "./dom.js";

const W = 200, H = 66, GAP_X = 170, GAP_Y = 34, PAD = 20;

// How an edge of the merged system map is drawn, and what the legend says of it.
export const EDGE_STATES = {
  both: ["edge", "declared and seen in spans"],
  declared_unseen: ["edge unseen", "declared in the map, never seen in spans"],
  seen_undeclared: ["edge undeclared", "seen in spans, not declared in the map"],
};

// The state of edge from→to in a system map document (its `edges` carry both flags).
export function edgeStates(systemMap) {
  const states = new Map();
  for (const e of (systemMap && systemMap.edges) || []) {
    const state = e.declared && e.observed ? "both" : e.declared ? "declared_unseen" : "seen_undeclared";
    states.set(`${e.from}→${e.to}`, state);
  }
  return states;
}

function columns(names, edges) {
  // Longest call depth from a service nobody calls; cycles are cut by the visit limit.
  const depth = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let moved = false;
    for (const e of edges) {
      if (e.from === e.to) continue;
      const d = (depth.get(e.from) ?? 0) + 1;
      if (d > (depth.get(e.to) ?? 0) && d < names.length) {
        depth.set(e.to, d);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return depth;
}

// nodes: [{name, lines: [text...], href?, ghost?}]; edges: [{from, to, lines: [text...],
// title, state?, failing?}]. `state` is a key of EDGE_STATES, when a system map is shown.
export function mapSvg(nodes, edges, label) {
  const depth = columns(nodes.map((n) => n.name), edges);
  const cols = new Map();
  for (const n of nodes) {
    const d = depth.get(n.name) ?? 0;
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(n);
  }
  const pos = new Map();
  let rowsMax = 0;
  for (const [d, list] of cols) {
    list.forEach((n, i) => pos.set(n.name, { x: PAD + d * (W + GAP_X), y: PAD + i * (H + GAP_Y) }));
    rowsMax = Math.max(rowsMax, list.length);
  }
  const width = PAD * 2 + Math.max(...cols.keys(), 0) * (W + GAP_X) + W;
  const height = PAD * 2 + rowsMax * (H + GAP_Y) - GAP_Y + 20;
  const root = svg("svg", { class: "map", viewBox: `0 0 ${Math.max(width, 400)} ${height}`, role: "img", "aria-label": label });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "currentColor" }))));
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${a.y + H + 40} ${b.x + W / 2},${b.y + H + 40} ${b.x + W / 2},${b.y + H}`
      : `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}`;
    const cls = (e.state ? EDGE_STATES[e.state][0] : "edge") + (e.failing ? " failing" : "");
    const g = svg("g", { class: "edge-group", "data-edge": `${e.from}→${e.to}`, "data-edge-state": e.state },
      svg("path", { d, class: cls, "marker-end": "url(#arrow)" }));
    (e.lines || []).forEach((line, i) => g.append(svg("text", {
      x: back ? (a.x + b.x + W) / 2 : (x1 + x2) / 2,
      y: back ? Math.max(a.y, b.y) + H + 34 + 14 * i : (y1 + y2) / 2 - 22 + 15 * i,
      "text-anchor": "middle", class: "label", text: line,
    })));
    g.append(svg("title", { text: e.title }));
    root.append(g);
  }
  for (const n of nodes) {
    const p = pos.get(n.name);
    const box = svg(n.href ? "a" : "g", { href: n.href, class: `node${n.ghost ? " ghost" : ""}`, "data-service": n.name },
      svg("rect", { x: p.x, y: p.y, width: W, height: H, stroke: colour(n.name) }),
      svg("text", { x: p.x + 10, y: p.y + 20, "font-weight": 600, text: n.name }));
    (n.lines || []).forEach((line, i) => box.append(svg("text", { x: p.x + 10, y: p.y + 38 + 16 * i, class: "label", text: line })));
    root.append(box);
  }
  return root;
}

// The legend of a system map's edge styles, each with a sample line.
export function mapLegend() {
  return el("ul", { class: "legend map-legend" }, Object.entries(EDGE_STATES).map(([state, [cls, words]]) =>
    el("li", { "data-legend": state },
      svg("svg", { width: 34, height: 10, class: "edge-sample", "aria-hidden": "true" }, svg("path", { d: "M2,5 L32,5", class: cls })),
      " ", words)));
}

// The flagged edges as a list, for reading and for copying.
export function systemNotes(system) {
  const items = [
    ...(system.declared_unseen || []).map((e) => ["declared_unseen", e, "declared but never seen in spans (is it instrumented?)"]),
    ...(system.seen_undeclared || []).map((e) => ["seen_undeclared", e, "seen in spans but not declared in the map"]),
  ];
  if (!items.length) return el("p", { class: "muted" }, "Every declared dependency is seen in spans, and every call seen is declared.");
  return el("ul", { class: "flagged" }, items.map(([state, e, words]) =>
    el("li", { "data-flagged": state, "data-edge": `${e.from}→${e.to}` }, el("strong", {}, `${e.from} → ${e.to}`), ": ", words)));
}
