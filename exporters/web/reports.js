// "/reports": TracePulse's incident reports, newest first (GET /v1/reports): what
// happened where, its priority and how often, the top hypothesis, and how delivery went
// on each channel. Each row leads to its report.
import { el, errorBox, getJSON } from "./dom.js";

export function pct(confidence) {
  return typeof confidence === "number" ? `${Math.round(confidence * 100)}%` : "–";
}

export function deliveryBadges(delivery) {
  const entries = Object.entries(delivery && typeof delivery === "object" ? delivery : {});
  if (!entries.length) return el("span", { class: "muted" }, "not delivered (no channel configured)");
  return entries.map(([channel, state]) => {
    const status = String((state && state.status) || "unknown");
    const cls = status === "sent" ? "ok" : status === "pending" ? "" : "err";
    return el("span", { class: `badge ${cls}`, "data-channel": channel, title: state && state.error ? String(state.error) : null },
      `${channel}: ${status}`);
  });
}

export async function render(main) {
  main.append(el("h1", {}, "Reports"));
  let answer;
  try {
    answer = await getJSON("/v1/reports?limit=100");
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const reports = answer.reports || [];
  const total = (answer.metadata || {}).total_count ?? reports.length;
  const shown = reports.length < total ? ` (the newest ${reports.length} shown; every one answers at /v1/reports/{id})` : "";
  main.append(el("p", { class: "muted" }, `${total} report${total === 1 ? "" : "s"} kept${shown}. A report opens when a DebugQueue event, a tagged OTel log record or a pulse rule fires.`));
  if (!reports.length) {
    main.append(el("p", { class: "empty" }, "No reports yet. POST an event to /webhook/event, or configure pulse.rules."));
    return;
  }
  main.append(el("table", { class: "reports" },
    el("thead", {}, el("tr", {}, ["Time", "Event", "Service", "Code", "Priority", "Seen", "Top hypothesis", "Delivery", "Feedback"].map((h) => el("th", {}, h)))),
    el("tbody", {}, reports.map((r) => {
      const incident = r.incident || {};
      const top = r.top || null;
      const id = String(r.id);
      return el("tr", { "data-report-id": id, class: `priority-${String(incident.priority || "normal")}` },
        el("td", { class: "time" }, String(r.created ?? "")),
        el("td", {}, el("a", { href: `/reports/${encodeURIComponent(id)}`, class: "event-type" }, String(incident.event_type ?? "?"))),
        el("td", { class: "service" }, String(incident.service ?? "")),
        el("td", {}, el("code", {}, String(incident.error_code ?? ""))),
        el("td", {}, el("span", { class: `badge priority ${String(incident.priority || "")}` }, String(incident.priority ?? ""))),
        el("td", { class: "num" }, `${Number(incident.occurrences) || 1}×`),
        el("td", { class: "top-hypothesis" }, top ? [String(top.cause ?? top.service ?? ""), " ", el("span", { class: "confidence" }, pct(top.confidence))] : el("span", { class: "muted" }, "none")),
        el("td", {}, deliveryBadges(r.delivery)),
        el("td", { class: "num" }, String(r.feedback ?? 0)));
    }))));
  performance.mark("gasoline:rendered");
}
