// "/compare?a=&b=": trace b against trace a, span by span (GET /v1/compare), and both
// trees side by side with the differences marked. "/compare?b=&baseline=NAME": trace b's
// operations against a saved baseline (analyze type "compare").
import { el, errorBox, getJSON, ms, params, postJSON, text } from "./dom.js";
import { loadRows } from "./trace.js";

async function spansOf(id) {
  return (await loadRows(id)).spans;
}

function section(title, items, cells) {
  if (!items || !items.length) return null;
  return [el("h3", {}, title), el("table", { class: "cmp" }, el("tbody", {}, items.map((s) =>
    el("tr", { "data-span-id": text(s.span_id) }, cells(s)))))];
}

export async function render(main) {
  const query = params();
  const a = query.get("a") || "", b = query.get("b") || "", baseline = query.get("baseline") || "";
  const form = el("form", { class: "filters", method: "get", action: "/compare" },
    el("label", {}, "A (reference) ", el("input", { name: "a", value: a, size: 34 })),
    el("label", {}, "or baseline ", el("input", { name: "baseline", value: baseline, size: 10, placeholder: "baseline" })),
    el("label", {}, "B (in question) ", el("input", { name: "b", value: b, size: 34 })),
    el("button", { type: "submit" }, "Compare"));
  main.append(el("h1", {}, "Compare traces"), form);
  if (b && !a && baseline) {
    await againstBaseline(main, b, baseline);
    return;
  }
  if (!a || !b) {
    main.append(el("p", { class: "muted" }, "Give two trace ids (or B and a saved baseline's name), or pick two traces on the trace list."));
    return;
  }
  let answer, left, right;
  try {
    answer = await getJSON(`/v1/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    [left, right] = await Promise.all([spansOf(answer.a.trace_id), spansOf(answer.b.trace_id)]);
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const traceLink = (id) => el("a", { href: `/traces/${encodeURIComponent(id)}` }, text(id).slice(0, 16));
  main.append(el("p", { class: "summary" }, text(answer.summary)));
  const delta = (s) => el("td", { class: "num delta" }, `+${ms(s.delta_ms)}`);
  const name = (s) => [el("td", {}, el("span", { class: "svc" }, text(s.service)), text(s.name)), el("td", { class: "muted" }, text(s.path))];
  main.append(...[
    section(`Slower (${answer.slower_count})`, answer.slower, (s) => [...name(s), el("td", { class: "num" }, `${ms(s.a_duration_ms)} → ${ms(s.duration_ms)}`), delta(s)]),
    section(`New errors (${answer.new_errors_count})`, answer.new_errors, (s) => [...name(s), el("td", {}, s.matched ? "failed in B only" : "added, failing")]),
    section(`Added in B (${answer.added_count})`, answer.added, (s) => [...name(s), el("td", { class: "num" }, ms(s.duration_ms))]),
    section(`Missing from B (${answer.missing_count})`, answer.missing, (s) => [...name(s), el("td", { class: "num" }, ms(s.duration_ms))]),
  ].flat().filter(Boolean));
  if (!answer.slower_count && !answer.added_count && !answer.missing_count && !answer.new_errors_count) {
    main.append(el("p", { class: "empty" }, `No difference beyond noise: ${answer.matched} spans matched.`));
  }
  const slowerB = new Map((answer.slower || []).map((s) => [s.span_id, s]));
  const slowerA = new Map((answer.slower || []).map((s) => [s.a_span_id, s]));
  const added = new Set((answer.added || []).map((s) => s.span_id));
  const missing = new Set((answer.missing || []).map((s) => s.span_id));
  const failing = new Set((answer.new_errors || []).map((s) => s.span_id));
  const column = (title, id, spans, side) => el("div", { class: "cmp-col" },
    el("h3", {}, title, " ", traceLink(id), ` · ${ms(answer[side].duration_ms)}`),
    spans.map((s) => {
      const cls = ["cmp-span"];
      const slow = side === "b" ? slowerB.get(s.span_id) : slowerA.get(s.span_id);
      if (slow) cls.push("slower");
      if (side === "b" && added.has(s.span_id)) cls.push("added");
      if (side === "a" && missing.has(s.span_id)) cls.push("missing");
      if (side === "b" && failing.has(s.span_id)) cls.push("new-error");
      const label = el("span", {}, text(s.service), " ", text(s.name));
      label.style.paddingLeft = `${Math.min(Number(s.depth) || 0, 30) * 12}px`;
      return el("div", { class: cls.join(" "), "data-side": side, "data-span-id": text(s.span_id) }, label,
        el("span", {}, ms(s.duration_ms), slow && side === "b" ? el("span", { class: "delta" }, ` +${ms(slow.delta_ms)}`) : null));
    }));
  main.append(el("h2", {}, "Side by side"), el("div", { class: "cmp-grid" },
    column("A", answer.a.trace_id, left, "a"), column("B", answer.b.trace_id, right, "b")));
}

async function againstBaseline(main, b, baseline) {
  let answer;
  try {
    answer = await postJSON("/v1/tools/analyze", { type: "compare", trace_id: b, baseline });
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  main.append(el("p", { class: "summary" }, text(answer.summary)));
  const name = (s) => el("td", {}, el("a", { href: `/traces/${encodeURIComponent(answer.b.trace_id)}#span-${encodeURIComponent(s.span_id)}` }, el("span", { class: "svc" }, text(s.service)), text(s.name)));
  main.append(...[
    section(`Slower than the baseline's p95 (${answer.slower_count})`, answer.slower, (s) => [name(s),
      el("td", { class: "num" }, `p50 ${ms(s.baseline_p50_ms)} · p95 ${ms(s.baseline_p95_ms)} → ${ms(s.duration_ms)}`),
      el("td", { class: "num delta" }, `+${ms(s.delta_ms)}`)]),
    section(`New errors (${answer.new_errors_count})`, answer.new_errors, (s) => [name(s), el("td", {}, s.matched ? "never failed in the baseline" : "not in the baseline, failing")]),
    section(`Not in the baseline (${answer.added_count})`, answer.added, (s) => [name(s), el("td", { class: "num" }, ms(s.duration_ms))]),
  ].flat().filter(Boolean));
}
