// "/services": the service map from the newest traces (GET /v1/service_map), drawn as
// SVG: services in columns by call depth, call edges labelled with rate, error rate and
// p50/p99. A service leads to its traces. With TracePulse's system map configured, the
// declared services and edges are drawn over it: declared edges never seen in spans and
// seen edges never declared are marked, with a legend.
import { el, errorBox, getJSON, ms } from "./dom.js";
import { edgeStates, mapLegend, mapSvg, systemNotes } from "./map.js";

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
  const system = map.system_map || null;
  main.append(el("p", { class: "muted" }, `From the newest ${meta.traces ?? 0} traces (${meta.spans ?? 0} spans over ${ms((meta.window_s || 0) * 1000)}). Click a service for its traces.`));
  if (!services.length && !system) {
    main.append(el("p", { class: "empty" }, "No spans yet."));
    return;
  }
  const states = edgeStates(system);
  const nodes = services.map((s) => ({
    name: String(s.service),
    href: `/?service=${encodeURIComponent(s.service)}`,
    lines: [`${s.spans} spans · ${(s.error_rate * 100).toFixed(1)}% errors`, `p50 ${ms(s.p50_ms)} · p99 ${ms(s.p99_ms)}`],
  }));
  const drawn = edges.map((e) => ({
    from: String(e.from), to: String(e.to), failing: e.errors > 0,
    state: system ? states.get(`${e.from}→${e.to}`) || "seen_undeclared" : undefined,
    lines: [`${e.rate_per_s}/s · ${(e.error_rate * 100).toFixed(1)}% err`, `p50 ${ms(e.p50_ms)} · p99 ${ms(e.p99_ms)}`],
    title: `${e.from} → ${e.to}: ${e.calls} calls, ${e.errors} failed`,
  }));
  if (system) {
    const seen = new Set(nodes.map((n) => n.name));
    for (const s of system.services || []) {
      if (seen.has(String(s.name))) continue;
      nodes.push({ name: String(s.name), ghost: true, lines: ["declared, no spans seen"] });
    }
    for (const e of system.declared_unseen || []) {
      drawn.push({ from: String(e.from), to: String(e.to), state: "declared_unseen", lines: ["declared, not seen"],
        title: `${e.from} → ${e.to}: declared in the system map, never seen in spans` });
    }
  }
  main.append(mapSvg(nodes, drawn, "service map"));
  if (system) {
    main.append(el("h2", {}, "System map"), mapLegend(), systemNotes(system));
  }
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
