// "/services": the service map from the newest traces (GET /v1/service_map), drawn as
// SVG: services in columns by call depth, call edges labelled with rate, error rate and
// p50/p99. A service leads to its traces.
import { colour, el, errorBox, getJSON, ms, svg } from "./dom.js";

const W = 200, H = 66, GAP_X = 170, GAP_Y = 34, PAD = 20;

function columns(services, edges) {
  // Longest call depth from a service nobody calls; cycles are cut by the visit limit.
  const depth = new Map(services.map((s) => [s.service, 0]));
  for (let round = 0; round < services.length; round++) {
    let moved = false;
    for (const e of edges) {
      if (e.from === e.to) continue;
      const d = (depth.get(e.from) ?? 0) + 1;
      if (d > (depth.get(e.to) ?? 0) && d < services.length) {
        depth.set(e.to, d);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return depth;
}

export async function render(main) {
  main.append(el("h1", {}, "Services"));
  let map;
  try {
    map = await getJSON("/v1/service_map");
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const services = map.services || [];
  const edges = map.edges || [];
  const meta = map.metadata || {};
  main.append(el("p", { class: "muted" }, `From the newest ${meta.traces ?? 0} traces (${meta.spans ?? 0} spans over ${ms((meta.window_s || 0) * 1000)}). Click a service for its traces.`));
  if (!services.length) {
    main.append(el("p", { class: "empty" }, "No spans yet."));
    return;
  }
  const depth = columns(services, edges);
  const cols = new Map();
  for (const s of services) {
    const d = depth.get(s.service) ?? 0;
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(s);
  }
  const pos = new Map();
  let rowsMax = 0;
  for (const [d, list] of cols) {
    list.forEach((s, i) => pos.set(s.service, { x: PAD + d * (W + GAP_X), y: PAD + i * (H + GAP_Y) }));
    rowsMax = Math.max(rowsMax, list.length);
  }
  const width = PAD * 2 + cols.size * (W + GAP_X) - GAP_X;
  const height = PAD * 2 + rowsMax * (H + GAP_Y) - GAP_Y + 20;
  const root = svg("svg", { class: "map", viewBox: `0 0 ${Math.max(width, 400)} ${height}`, role: "img", "aria-label": "service map" });
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
    const failing = e.errors > 0;
    const g = svg("g", { class: "edge-group", "data-edge": `${e.from}→${e.to}` },
      svg("path", { d, class: `edge${failing ? " failing" : ""}`, "marker-end": "url(#arrow)" }),
      svg("text", { x: back ? (a.x + b.x + W) / 2 : (x1 + x2) / 2, y: back ? Math.max(a.y, b.y) + H + 34 : (y1 + y2) / 2 - 22, "text-anchor": "middle", class: "label" },
        `${e.rate_per_s}/s · ${(e.error_rate * 100).toFixed(1)}% err`),
      svg("text", { x: back ? (a.x + b.x + W) / 2 : (x1 + x2) / 2, y: back ? Math.max(a.y, b.y) + H + 48 : (y1 + y2) / 2 - 7, "text-anchor": "middle", class: "label" },
        `p50 ${ms(e.p50_ms)} · p99 ${ms(e.p99_ms)}`));
    g.append(svg("title", { text: `${e.from} → ${e.to}: ${e.calls} calls, ${e.errors} failed` }));
    root.append(g);
  }
  for (const s of services) {
    const p = pos.get(s.service);
    const a = svg("a", { href: `/?service=${encodeURIComponent(s.service)}`, class: "node", "data-service": s.service },
      svg("rect", { x: p.x, y: p.y, width: W, height: H, stroke: colour(s.service) }),
      svg("text", { x: p.x + 10, y: p.y + 20, "font-weight": 600, text: s.service }),
      svg("text", { x: p.x + 10, y: p.y + 38, class: "label", text: `${s.spans} spans · ${(s.error_rate * 100).toFixed(1)}% errors` }),
      svg("text", { x: p.x + 10, y: p.y + 54, class: "label", text: `p50 ${ms(s.p50_ms)} · p99 ${ms(s.p99_ms)}` }));
    root.append(a);
  }
  main.append(root);
  main.append(el("h2", {}, "Calls"), el("table", { class: "edges" },
    el("thead", {}, el("tr", {}, ["From", "To", "Calls", "Rate", "Errors", "p50", "p99"].map((h) => el("th", {}, h)))),
    el("tbody", {}, edges.map((e) => el("tr", { "data-edge": `${e.from}→${e.to}` },
      el("td", {}, el("a", { href: `/?service=${encodeURIComponent(e.from)}` }, String(e.from))),
      el("td", {}, el("a", { href: `/?service=${encodeURIComponent(e.to)}` }, String(e.to))),
      el("td", { class: "num" }, String(e.calls)),
      el("td", { class: "num" }, `${e.rate_per_s}/s`),
      el("td", { class: "num" }, `${e.errors} (${(e.error_rate * 100).toFixed(1)}%)`),
      el("td", { class: "num" }, ms(e.p50_ms)),
      el("td", { class: "num" }, ms(e.p99_ms)))))));
}
