// "/reports/{id}": one TracePulse report (GET /v1/reports/{id}) -- the incident, the
// ranked hypotheses with their reasons and evidence, the chain, relevant changes, next
// checks, the merged system map -- and the feedback chat: confirm or reject a hypothesis,
// add a note (POST /chat/feedback); the report is read again after each post, so what
// was said shows as a conversation under it.
import { chip, clear, el, errorBox, getJSON, ms, postJSON, text } from "./dom.js";
import { edgeStates, mapLegend, mapSvg, systemNotes } from "./map.js";
import { deliveryBadges, pct } from "./reports.js";

const list = (value) => (Array.isArray(value) ? value : []);

function traceLink(traceId, spanId, label) {
  if (typeof traceId !== "string" || !traceId) return el("code", {}, String(label));
  const hash = typeof spanId === "string" && spanId ? `#span-${encodeURIComponent(spanId)}` : "";
  return el("a", { href: `/traces/${encodeURIComponent(traceId)}${hash}`, "data-trace-link": traceId }, el("code", {}, String(label)));
}

// One evidence item: errors link to their spans (and records to their traces).
function evidenceItem(e) {
  const type = String(e.type ?? "");
  if (type === "errors") {
    const traces = e.ref_traces && typeof e.ref_traces === "object" ? e.ref_traces : {};
    const refs = list(e.refs).map((ref) => {
      const [kind, id] = String(ref).split(":");
      return [traceLink(traces[ref], kind === "span" ? id : null, ref), " "];
    });
    return el("li", { "data-evidence": type }, `${Number(e.count) || 0} error(s)`,
      e.first ? [": ", el("q", {}, String(e.first))] : null, refs.length ? [" — ", refs] : null);
  }
  if (type === "causality") return el("li", { "data-evidence": type }, `the causality engine: ${text(e.cause)} (${pct(e.confidence)})`);
  if (type === "latency") return el("li", { "data-evidence": type }, `${pct(e.self_share)} of the linked trace's time is its own`);
  if (type === "change") {
    return el("li", { "data-evidence": type }, "change ", el("code", {}, String(e.id ?? "")), ` to ${text(e.touches)}: ${text(e.message)}`);
  }
  return el("li", { "data-evidence": type }, text(e));
}

function section(title, ...children) {
  return el("section", { class: "report-part" }, el("h2", {}, title), ...children);
}

export async function render(main, reportId) {
  const view = el("div", { class: "report" });
  main.append(view);
  await show(view, reportId);
}

async function show(view, reportId) {
  let report;
  try {
    report = await getJSON(`/v1/reports/${encodeURIComponent(reportId)}`);
  } catch (error) {
    clear(view).append(el("h1", {}, "Report ", el("code", {}, reportId)), errorBox(error));
    return;
  }
  const incident = report.incident || {};
  const hypotheses = list(report.hypotheses);
  const status = el("p", { class: "chat-status muted", role: "status" });
  const note = el("textarea", { name: "note", rows: 3, maxlength: 4000, placeholder: "A note for the team (optional with a verdict)" });
  const buttons = [];
  async function send(body) {
    for (const b of buttons) b.disabled = true;
    status.textContent = "Sending…";
    try {
      await postJSON("/chat/feedback", { report_id: report.id, ...body, ...(note.value.trim() ? { note: note.value.trim() } : {}) });
    } catch (error) {
      for (const b of buttons) b.disabled = false;
      status.replaceChildren(errorBox(error));
      return;
    }
    await show(view, reportId);
  }
  const verdictButton = (h, verdict, label) => {
    const b = el("button", { type: "button", "data-verdict": verdict, title: `${label}: ${text(h.cause)}` }, label);
    b.addEventListener("click", () => send({ hypothesis: h.key, verdict }));
    buttons.push(b);
    return b;
  };

  const head = el("header", { class: "report-head" },
    el("h1", {}, el("span", { class: "event-type" }, String(incident.event_type ?? "Incident")), " in ",
      el("span", { class: "service" }, String(incident.service ?? "?")), " ", el("code", { class: "error-code" }, String(incident.error_code ?? ""))),
    el("dl", { class: "facts" },
      el("dt", {}, "Report"), el("dd", {}, el("code", {}, String(report.id)), " ", String(report.created ?? "")),
      el("dt", {}, "Priority"), el("dd", {}, String(incident.priority ?? "")),
      el("dt", {}, "Seen"), el("dd", {}, `${Number(incident.occurrences) || 1} time(s), via ${text(incident.via)}, at ${text(incident.time)}`),
      el("dt", {}, "Correlation"), el("dd", {}, list(incident.correlation_ids).length ? list(incident.correlation_ids).map((c) => [el("code", {}, String(c)), " "]) : el("code", {}, text(incident.correlation_id))),
      el("dt", {}, "Status"), el("dd", {}, text(report.status)),
      el("dt", {}, "Traces"), el("dd", {}, list(report.trace_ids).length ? list(report.trace_ids).map((t) => [traceLink(t, null, t), " "]) : "none linked"),
      el("dt", {}, "Delivery"), el("dd", {}, deliveryBadges(report.delivery))));
  const ranked = el("ol", { class: "hypotheses ranked" }, hypotheses.map((h, i) =>
    el("li", { "data-hypothesis": String(h.key ?? ""), "data-service": String(h.service ?? ""), "data-rank": i + 1, class: i === 0 ? "best" : "" },
      el("div", { class: "hyp-head" },
        el("strong", { class: "cause" }, String(h.cause ?? h.service ?? "")), " ",
        el("span", { class: "confidence", title: "confidence" }, pct(h.confidence)),
        h.feedback ? el("span", { class: "badge", "data-votes": "" }, Object.entries(h.feedback).map(([k, n]) => `${n} ${k}`).join(", ")) : null,
        el("span", { class: "verdicts" }, verdictButton(h, "confirm", "Confirm"), " ", verdictButton(h, "reject", "Reject"))),
      el("div", { class: "confidence-bar" }, el("span", { style: null })),
      el("ul", { class: "reasons" }, list(h.reasoning).map((r) => el("li", {}, String(r)))),
      list(h.evidence).length ? el("ul", { class: "evidence" }, list(h.evidence).map(evidenceItem)) : null)));
  // The bar's width is set through CSSOM, which the strict style-src allows.
  ranked.querySelectorAll(".confidence-bar span").forEach((bar, i) => {
    bar.style.width = pct(Math.max(0, Math.min(1, Number(hypotheses[i].confidence) || 0)));
  });

  const chain = list(report.chain);
  const changes = list(report.relevant_changes);
  const checks = list(report.next_checks);
  const applied = list(report.feedback_applied);
  const system = report.system_map && typeof report.system_map === "object" ? report.system_map : null;

  const parts = [head,
    section("Hypotheses", hypotheses.length ? ranked : el("p", { class: "muted" }, "None: nothing linked to the incident shows a failure."))];
  if (chain.length) {
    parts.push(section("Chain (symptom → cause)", el("ol", { class: "chain" }, chain.map((c) =>
      el("li", { "data-span-id": c.span_id ?? null }, chip(c.service), " ", traceLink(c.trace_id, c.span_id, c.name ?? c.span_id ?? ""),
        " ", String(c.status ?? ""), " ", typeof c.duration_ms === "number" ? ms(c.duration_ms) : "",
        c.role ? el("span", { class: `role ${String(c.role)}` }, String(c.role)) : null)))));
  }
  if (changes.length) {
    parts.push(section("Relevant changes", el("ul", { class: "changes" }, changes.map((c) =>
      el("li", { "data-change-id": String(c.id ?? "") }, el("code", {}, String(c.id ?? "")), " ", text(c.message),
        el("span", { class: "muted" }, ` — touches ${text(c.touches)} (${list(c.services).join(", ")})`))))));
  }
  if (checks.length) parts.push(section("Next checks", el("ul", { class: "checks" }, checks.map((c) => el("li", {}, String(c))))));
  if (system) {
    const states = edgeStates(system);
    const nodes = list(system.services).map((s) => ({
      name: String(s.name), href: `/?service=${encodeURIComponent(s.name)}`,
      lines: [s.declared ? text(s.file || "declared") : "not declared", list(s.functions).join(", ")].filter(Boolean),
    }));
    const edges = list(system.edges).map((e) => {
      const state = states.get(`${e.from}→${e.to}`);
      return { from: String(e.from), to: String(e.to), state, title: `${e.from} → ${e.to}: ${state === "both" ? "declared and seen" : state === "declared_unseen" ? "declared, never seen in spans" : "seen in spans, not declared"}` };
    });
    parts.push(section("System map", mapSvg(nodes, edges, "system map"), mapLegend(), systemNotes(system)));
  }
  if (applied.length) parts.push(section("Feedback applied", el("ul", { class: "applied" }, applied.map((f) => el("li", {}, String(f))))));

  const feedback = list(report.feedback);
  const top = hypotheses[0];
  const conversation = el("ol", { class: "conversation" },
    el("li", { class: "message from-pulse" }, el("span", { class: "who" }, "TracePulse"), ": ",
      top ? `Top hypothesis: ${text(top.cause)} (${pct(top.confidence)}). Confirm or reject it, or tell us more.` : "No hypothesis: nothing linked shows a failure. Notes are welcome."),
    feedback.map((f, i) => el("li", { class: `message from-person ${f.verdict ? `verdict-${String(f.verdict)}` : ""}`, "data-feedback": i },
      el("span", { class: "who" }, String(f.author || "you")), el("span", { class: "time" }, ` ${text(f.time)}`),
      f.verdict ? el("p", { class: "verdict" }, `${f.verdict === "confirm" ? "Confirmed" : "Rejected"} ${text(f.hypothesis)}`) : null,
      f.note ? el("p", { class: "note-text" }, String(f.note)) : null)));
  const noteButton = el("button", { type: "button", "data-send-note": "" }, "Send note");
  noteButton.addEventListener("click", () => {
    if (!note.value.trim()) {
      status.textContent = "Write a note first, or use a hypothesis's Confirm / Reject.";
      return;
    }
    send({});
  });
  buttons.push(noteButton);
  parts.push(section("Feedback", el("p", { class: "muted" }, "Verdicts change how later reports of this signature rank (rejected down, confirmed up)."),
    conversation, el("div", { class: "chat-form" }, note, noteButton), status));
  clear(view).append(...parts);
  performance.mark("gasoline:rendered");
}
