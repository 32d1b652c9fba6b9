// "/": stored traces, newest first, with filters and paging (GET /v1/trace_list).
import { chip, el, errorBox, getJSON, ms, params, when } from "./dom.js";

const FILTERS = ["service", "errors", "text", "min_duration_ms", "since", "until"];

function toEpochMs(local) {
  const t = Date.parse(local);
  return Number.isFinite(t) ? String(t) : "";
}

function filterForm(query) {
  const input = (name, attrs) =>
    el("input", { name, value: query.get(name) || "", ...attrs });
  const time = (name, label) =>
    el("label", {}, label, el("input", {
      type: "datetime-local", step: "1", name: `${name}_local`,
      value: query.get(`${name}_local`) || "",
    }));
  const form = el("form", { class: "filters", method: "get", action: "/" },
    el("label", {}, "Service ", input("service", { placeholder: "any", size: 12 })),
    el("label", {}, "Text ", input("text", { placeholder: "span name contains", size: 18 })),
    el("label", {}, "Slower than ", input("min_duration_ms", { type: "number", min: 0, step: "any", placeholder: "ms", size: 6 })),
    time("since", "From "),
    time("until", "To "),
    el("label", {}, el("input", { type: "checkbox", name: "errors", value: "1", checked: query.get("errors") === "1" }), " errors only"),
    el("button", { type: "submit" }, "Filter"),
    el("a", { href: "/", class: "button-link" }, "Clear"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const data = new FormData(form);
    for (const [key, value] of data) {
      if (!value) continue;
      if (key.endsWith("_local")) {
        next.set(key, value);
        next.set(key.slice(0, -6), toEpochMs(value));
      } else next.set(key, value);
    }
    location.search = next.toString();
  });
  return form;
}

export async function render(main) {
  const query = params();
  const api = new URLSearchParams();
  for (const key of [...FILTERS, "cursor"]) if (query.get(key)) api.set(key, query.get(key));
  api.set("limit", "50");
  main.append(el("h1", {}, "Traces"), filterForm(query));
  const status = el("p", { class: "muted" }, "Loading…");
  main.append(status);
  let answer;
  try {
    answer = await getJSON(`/v1/trace_list?${api}`);
  } catch (error) {
    status.replaceWith(errorBox(error));
    return;
  }
  const meta = answer.metadata || {};
  status.textContent = `${meta.total_count ?? 0}${meta.total_count_exact === false ? "+" : ""} traces` +
    (query.get("cursor") ? " (older page)" : "") +
    (meta.partial ? ` — ${meta.partial}` : "") +
    (typeof meta.query_time_ms === "number" ? ` · ${meta.query_time_ms.toFixed(1)} ms` : "");

  const selected = new Set();
  const compareButton = el("button", { type: "button", disabled: true }, "Compare selected (2)");
  const table = el("table", { class: "traces" },
    el("thead", {}, el("tr", {},
      el("th", {}, ""), el("th", {}, "Time"), el("th", {}, "Root"), el("th", {}, "Services"),
      el("th", { class: "num" }, "Duration"), el("th", { class: "num" }, "Spans"), el("th", { class: "num" }, "Errors"))),
  );
  const body = el("tbody");
  for (const t of answer.traces || []) {
    const id = String(t.trace_id);
    const pick = el("input", { type: "checkbox", "aria-label": `select ${id} to compare` });
    pick.addEventListener("change", () => {
      if (pick.checked) selected.add(t); else selected.delete(t);
      compareButton.disabled = selected.size !== 2;
    });
    const errors = Number(t.error_count) || 0;
    body.append(el("tr", { "data-trace-id": id, class: errors ? "failed" : "" },
      el("td", {}, pick),
      el("td", { class: "time" }, when(t.start_ms)),
      el("td", {}, el("a", { href: `/traces/${encodeURIComponent(id)}` },
        el("span", { class: "svc" }, String(t.root_service ?? "")), " ", String(t.root ?? "")),
        t.orphan_count ? el("span", { class: "badge warn", title: "spans whose parent never arrived" }, `${t.orphan_count} orphan`) : null),
      el("td", {}, (t.services || []).map(chip)),
      el("td", { class: "num" }, ms(t.duration_ms)),
      el("td", { class: "num" }, String(t.span_count ?? "")),
      el("td", { class: "num" }, errors ? el("span", { class: "badge err" }, String(errors)) : "0"),
    ));
  }
  table.append(body);
  compareButton.addEventListener("click", () => {
    const [x, y] = [...selected].sort((p, q) => p.start_ms - q.start_ms);
    location.href = `/compare?a=${encodeURIComponent(x.trace_id)}&b=${encodeURIComponent(y.trace_id)}`;
  });
  if (!(answer.traces || []).length) {
    main.append(el("p", { class: "empty" }, "No traces match. Send spans to OTLP (:4317 gRPC, :4318 HTTP)."));
  } else main.append(table);
  const pager = el("div", { class: "pager" }, compareButton);
  if (query.get("cursor")) {
    const first = new URLSearchParams(query);
    first.delete("cursor");
    pager.append(el("a", { href: `/?${first}` }, "← Newest"));
  }
  if (meta.cursor_next) {
    const next = new URLSearchParams(query);
    next.set("cursor", meta.cursor_next);
    pager.append(el("a", { href: `/?${next}`, rel: "next" }, "Older →"));
  }
  main.append(pager);
  performance.mark("gasoline:rendered"); // read by bench/web_bench.py
}
