// "/timeline": the merged timeline with the observe filters, live over server-sent
// events (GET /v1/timeline/stream), with pause. The newest MAX_ROWS events are kept,
// newest on top; only the rows in view are in the DOM (virtualized), redrawn at most once
// per animation frame, so 1,000 events a second cannot freeze the tab.
import { el, errorBox, getJSON, params, text, when } from "./dom.js";

const KEYS = ["source", "service", "level", "text", "trace_id", "correlation_id", "url", "method", "status", "tags"];
const MAX_ROWS = 5000;
const ROW = 24;
const MAX_HELD = 20000; // events kept while paused; older ones are counted as missed

function row(e, index) {
  const spanRow = e.kind === "span";
  const attrs = spanRow ? { "data-span-id": text(e.span_id) } : { "data-event-id": text(e.id) };
  const trace = e.trace_id
    ? el("a", { href: `/traces/${encodeURIComponent(e.trace_id)}` + (e.span_id ? `#span-${encodeURIComponent(e.span_id)}` : ""), class: "trace-link" }, text(e.trace_id).slice(0, 8))
    : el("span", { class: "muted" }, "—");
  const why = e.metadata && typeof e.metadata === "object" && e.metadata.status_message;
  const node = el("div", { class: `tl-row level-${text(e.level)}`, ...attrs },
    el("span", { class: "time" }, when(e.timestamp)),
    el("span", { class: "badge" }, text(e.source)),
    el("span", { class: "level" }, text(e.level)),
    el("span", { class: "svc" }, text(e.service)),
    el("span", { class: "msg", title: text(e.message) }, text(e.message), why ? ` — ${text(why)}` : ""),
    trace);
  node.style.top = `${index * ROW}px`;
  return node;
}

export async function render(main) {
  const query = params();
  const form = el("form", { class: "filters", method: "get", action: "/timeline" },
    ...KEYS.map((k) => el("label", {}, `${k} `, el("input", { name: k, value: query.get(k) || "", size: k === "text" || k === "trace_id" ? 18 : 8 }))),
    el("button", { type: "submit" }, "Filter"),
    el("a", { class: "button-link", href: "/timeline?level=error" }, "Errors only"),
    el("a", { class: "button-link", href: "/timeline" }, "Clear"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.search = next.toString();
  });
  const state = el("span", { class: "live-state" }, "connecting…");
  const counts = el("span", { class: "muted" }, "");
  const pause = el("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const rows = el("div", { class: "tl-rows", role: "log", "aria-live": "off" });
  const spacer = el("div", { class: "tl-spacer" });
  rows.append(spacer);
  main.append(el("h1", {}, "Timeline"), form, el("div", { class: "toolbar" }, state, pause, counts), rows);

  let items = []; // newest first
  const draw = () => {
    spacer.style.height = `${items.length * ROW}px`;
    const top = Math.max(0, Math.floor(rows.scrollTop / ROW) - 10);
    const end = Math.min(items.length, top + Math.ceil((rows.clientHeight || 600) / ROW) + 20);
    const frag = document.createDocumentFragment();
    for (let i = top; i < end; i++) frag.append(row(items[i], i));
    spacer.replaceChildren(frag);
  };
  let frame = 0;
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  };
  rows.addEventListener("scroll", schedule);

  const filter = new URLSearchParams();
  for (const k of KEYS) if (query.get(k)) filter.set(k, query.get(k));
  try {
    const first = await getJSON(`/buffers/timeline?limit=200&${filter}`);
    items = [...(first.events || [])].reverse();
  } catch (error) {
    main.replaceChildren(errorBox(error));
    return;
  }
  const empty = el("p", { class: "empty" }, "Nothing yet. New events appear here as they arrive.");
  if (!items.length) rows.before(empty);
  draw();

  let paused = false;
  let held = [];
  let missed = 0;
  let serverDropped = 0;
  let shown = 0;
  const showCounts = () => {
    counts.textContent = `${shown} live events shown` +
      (serverDropped ? ` · ${serverDropped} dropped by the daemon (too fast)` : "") +
      (missed ? ` · ${missed} missed while paused` : "") +
      (paused && held.length ? ` · ${held.length} waiting` : "");
  };
  const take = (events) => {
    if (paused) {
      held.push(...events);
      if (held.length > MAX_HELD) {
        missed += held.length - MAX_HELD;
        held = held.slice(-MAX_HELD);
      }
      showCounts();
      return;
    }
    empty.remove();
    const newest = events.slice(-MAX_ROWS).reverse();
    items = newest.concat(items);
    if (items.length > MAX_ROWS) items.length = MAX_ROWS;
    if (rows.scrollTop > 0) rows.scrollTop += newest.length * ROW; // keep what is being read in place
    shown += events.length;
    showCounts();
    schedule();
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    state.textContent = paused ? "paused" : "live";
    state.classList.toggle("on", !paused);
    if (!paused) {
      const waiting = held;
      held = [];
      take(waiting);
    }
    showCounts();
  });

  const source = new EventSource(`/v1/timeline/stream?${filter}`);
  source.addEventListener("open", () => {
    state.textContent = paused ? "paused" : "live";
    state.classList.toggle("on", !paused);
  });
  source.addEventListener("error", () => {
    state.textContent = "reconnecting…";
    state.classList.remove("on");
  });
  source.addEventListener("message", (m) => {
    let data;
    try {
      data = JSON.parse(m.data);
    } catch {
      return;
    }
    if (typeof data.dropped === "number") serverDropped = data.dropped;
    if (Array.isArray(data.events) && data.events.length) take(data.events);
    else showCounts();
  });
  window.addEventListener("pagehide", () => source.close());
}
