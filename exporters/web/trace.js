// "/traces/{id}": the waterfall. Rows are virtualized (only those in view are in the
// DOM), so a 5,000-span trace renders and scrolls like a 50-span one.
import { chip, clear, colour, el, errorBox, getJSON, ms, postJSON, text, when } from "./dom.js";

const ROW = 24;
const OVERSCAN = 12;
const DETAIL_PAGE = 1000; // spans whose attributes and events come along, after the rows

export const KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];

// GET /v1/traces/{id}/rows: the spans as flat arrays (fields named in answer.fields).
export async function loadRows(traceId) {
  const answer = await getJSON(`/v1/traces/${encodeURIComponent(traceId)}/rows`);
  const at = Object.fromEntries((answer.fields || []).map((name, i) => [name, i]));
  const services = answer.services || [];
  const spans = (answer.rows || []).map((r) => ({
    span_id: r[at.span_id],
    parent_span_id: r[at.parent_span_id],
    service: services[r[at.service]],
    name: r[at.name],
    kind: KINDS[r[at.kind]] || "UNSPECIFIED",
    status: r[at.error] ? "ERROR" : "",
    _offset: r[at.start_offset_ns] / 1e6,
    duration_ms: r[at.duration_ns] / 1e6,
    depth: r[at.depth],
    orphan: Boolean(r[at.orphan]),
    cycle: r[at.cycle] || 0,
  }));
  const doc = { ...answer, services: Object.fromEntries(services.map((name) => [name, {}])) };
  return { doc, spans };
}

function flatten(entries, out) {
  const stack = [...(entries || [])].reverse();
  while (stack.length) {
    const span = stack.pop();
    out.push(span);
    const children = span.children || [];
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
}

export async function render(main, traceId) {
  main.classList.add("wide");
  const head = el("div", { class: "trace-head" }, el("h1", {}, "Trace ", el("code", { class: "trace-id" }, traceId)));
  main.append(head);
  const base = `/v1/traces/${encodeURIComponent(traceId)}`;
  // The rows first (the daemon answers one request at a time); then the causality answer
  // and the first spans' details, which fill in as they come.
  let loaded;
  try {
    loaded = await loadRows(traceId);
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const causality = getJSON(`${base}/causality`).catch((error) => ({ error: String(error.message || error) }));
  const detail = getJSON(`${base}?limit=${DETAIL_PAGE}`).catch(() => null);
  const view = new Waterfall(main, head, traceId, loaded);
  view.show();
  detail.then((doc) => doc && view.mergeDetail(doc));
  view.setCausality(await causality);
}

class Waterfall {
  constructor(main, head, traceId, { doc, spans }) {
    this.main = main;
    this.head = head;
    this.traceId = doc.trace_id || traceId;
    this.doc = doc;
    this.spans = spans;
    this.causality = null;
    this.collapsed = new Set();
    this.selected = null;
    this.byId = new Map(spans.map((s) => [s.span_id, s]));
    this.records = new Map();
    this.looseRecords = [];
    for (const r of doc.records || []) {
      if (r.span_id && this.byId.has(r.span_id)) {
        if (!this.records.has(r.span_id)) this.records.set(r.span_id, []);
        this.records.get(r.span_id).push(r);
      } else this.looseRecords.push(r);
    }
    this.t0 = Number(doc.start_ns) || 0;
    this.total = Math.max(Number(doc.duration_ms) || 0, 0.001);
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      s._parent = s.parent_span_id ? this.byId.get(s.parent_span_id) : undefined;
      s._hasChildren = i + 1 < spans.length && spans[i + 1].parent_span_id === s.span_id;
      const p = s._parent;
      s._late = p !== undefined && s._offset + s.duration_ms > p._offset + p.duration_ms + 0.001;
    }
    this.rootCause = null;
    this.critical = new Set();
    this.chain = new Set();
  }

  setCausality(answer) {
    const c = answer && typeof answer === "object" ? answer : {};
    this.causality = c;
    const rc = c.root_cause && typeof c.root_cause === "object" ? c.root_cause : null;
    this.rootCause = rc && (!rc.trace_id || rc.trace_id === this.traceId) ? rc.span_id : null;
    this.critical = new Set((Array.isArray(c.critical_path) ? c.critical_path : []).map((p) => p && p.span_id));
    this.chain = new Set((Array.isArray(c.chain) ? c.chain : []).map((p) => p && p.span_id));
    const panel = this.causalityPanel();
    this.panel.replaceWith(panel);
    this.panel = panel;
    this.redraw();
    if (!this.selected && this.rootCause && this.byId.has(this.rootCause)) this.select(this.rootCause, { focus: false });
    performance.mark("gasoline:causality"); // read by bench/web_bench.py
  }

  mergeDetail(doc) {
    const found = [];
    flatten(doc.spans, found);
    for (const d of found) {
      const s = this.byId.get(d.span_id);
      if (!s) continue;
      for (const key of ["attributes", "events", "links", "status", "status_message"]) if (key in d) s[key] = d[key];
    }
    for (const [name, resource] of Object.entries(doc.services || {})) {
      if (resource && Object.keys(resource).length) this.doc.services[name] = resource;
    }
    this.redraw();
  }

  show() {
    this.toolbar();
    this.panel = el("section", { class: "causality" }, el("p", { class: "muted" }, "Finding the root cause…"));
    this.main.append(this.panel);
    const layout = el("div", { class: "wf-layout" });
    this.scroller = el("div", { class: "wf-scroll", tabindex: 0, role: "tree", "aria-label": "spans" });
    this.spacer = el("div", { class: "wf-spacer" });
    this.scroller.append(el("div", { class: "wf-ruler" }, el("span", {}, "span"), this.ruler()), this.spacer);
    this.detail = el("aside", { class: "wf-detail" }, el("p", { class: "muted" }, "Select a span (click, or ↑ ↓ then Enter). ← → collapse and expand."));
    layout.append(this.scroller, this.detail);
    this.main.append(layout);
    if (this.looseRecords.length) this.main.append(this.loosePanel());
    this.scroller.addEventListener("scroll", () => this.schedule());
    this.scroller.addEventListener("keydown", (e) => this.key(e));
    window.addEventListener("resize", () => this.schedule());
    this.refresh();
    performance.mark("gasoline:rendered"); // read by bench/web_bench.py
    const asked = decodeURIComponent(location.hash.replace(/^#span-/, ""));
    if (asked && this.byId.has(asked)) this.select(asked, { focus: false });
  }

  toolbar() {
    const d = this.doc;
    const copy = el("button", { type: "button" }, "Copy trace id");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(this.traceId);
        copy.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(this.head.querySelector(".trace-id"));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        copy.textContent = "Selected: press Ctrl+C";
      }
    });
    const out = el("div", { class: "generated", hidden: true });
    const gen = (type, label) => {
      const b = el("button", { type: "button", "data-generate": type }, label);
      b.addEventListener("click", async () => {
        out.hidden = false;
        clear(out).append(el("p", { class: "muted" }, `Writing ${label.toLowerCase()}…`));
        try {
          const answer = await postJSON("/v1/tools/generate", { type, trace_id: this.traceId });
          const pre = el("pre", {}, text(answer.content));
          const copyOut = el("button", { type: "button" }, "Copy");
          copyOut.addEventListener("click", () => navigator.clipboard.writeText(text(answer.content)).catch(() => {}));
          clear(out).append(el("div", { class: "generated-head" }, el("strong", {}, text(answer.filename || label)), " ", el("span", { class: "muted" }, text(answer.format)), " ", copyOut), pre,
            ...(Array.isArray(answer.notes) ? answer.notes.map((n) => el("p", { class: "muted" }, text(n))) : []));
        } catch (error) {
          clear(out).append(errorBox(error));
        }
      });
      return b;
    };
    const other = el("input", { placeholder: "other trace id", size: 20, "aria-label": "trace to compare with" });
    const compare = el("form", { class: "inline" }, other, el("button", { type: "submit" }, "Compare"));
    compare.addEventListener("submit", (e) => {
      e.preventDefault();
      if (other.value.trim()) location.href = `/compare?a=${encodeURIComponent(other.value.trim())}&b=${encodeURIComponent(this.traceId)}`;
    });
    const facts = el("p", { class: "facts" },
      `${d.span_count} spans · ${ms(d.duration_ms)} · started ${d.start_time ? when(Date.parse(d.start_time)) : "?"} · `,
      Object.keys(d.services || {}).map(chip),
      d.error_count ? el("span", { class: "badge err" }, `${d.error_count} errors`) : null,
      d.orphan_count ? el("span", { class: "badge warn", title: "spans whose parent never arrived" }, `${d.orphan_count} orphans`) : null,
      (Array.isArray(d.notes) ? d.notes : []).map((n) => el("span", { class: "muted note" }, text(n))),
      d.metadata && d.metadata.truncated ? el("span", { class: "muted note" }, text(d.metadata.truncated)) : null);
    this.head.append(facts, el("div", { class: "toolbar" }, copy,
      gen("reproduction", "Reproduction"), gen("test", "Test"), gen("pr_summary", "PR summary"),
      el("a", { class: "button-link", href: `/timeline?trace_id=${encodeURIComponent(this.traceId)}` }, "Timeline of this trace"),
      compare), out);
  }

  // The causality answer, read defensively: any key may be missing or shaped otherwise.
  causalityPanel() {
    const c = this.causality || {};
    const panel = el("section", { class: "causality", "aria-label": "causality" });
    if (c.error) {
      panel.append(el("p", { class: "muted" }, `No causality answer: ${c.error}`));
      return panel;
    }
    const status = text(c.status || "unknown");
    const tone = status === "failed" ? "err" : status === "ok" ? "ok" : "warn";
    panel.append(el("h2", {}, "What happened ", el("span", { class: `badge ${tone}` }, status),
      typeof c.service === "string" && c.service ? el("span", { class: "blamed" }, " blamed: ", chip(c.service)) : null));
    if (c.status_reason) panel.append(el("p", { class: "muted" }, text(c.status_reason)));
    if (c.summary) panel.append(el("p", { class: "summary" }, text(c.summary)));
    const rc = c.root_cause;
    if (rc && typeof rc === "object") {
      panel.append(el("div", { class: "root-cause" },
        el("strong", {}, "Root cause: "), this.causeLink(rc),
        rc.message ? el("span", { class: "msg" }, " — ", text(rc.message)) : null,
        typeof rc.confidence === "number" ? el("span", { class: "badge" }, `${Math.round(rc.confidence * 100)}% confident`) : null,
        rc.repeated ? el("span", { class: "badge warn" }, `failed ${rc.repeated}×`) : null,
        rc.reasoning ? el("p", { class: "muted" }, text(rc.reasoning)) : null,
        this.evidence(rc.evidence)));
    }
    if (Array.isArray(c.hypotheses) && c.hypotheses.length) {
      panel.append(el("details", { open: c.hypotheses.length > 1 }, el("summary", {}, `Hypotheses (${c.hypotheses.length}), best first`),
        el("ol", { class: "hypotheses" }, c.hypotheses.map((h) => {
          const hyp = h && typeof h === "object" ? h : { cause: h };
          const cause = hyp.cause && typeof hyp.cause === "object" ? hyp.cause : null;
          return el("li", {},
            cause ? this.causeLink(cause) : el("span", {}, text(hyp.cause)),
            cause && cause.message ? el("span", { class: "msg" }, " — ", text(cause.message)) : null,
            typeof hyp.confidence === "number" ? el("span", { class: "badge" }, `${Math.round(hyp.confidence * 100)}%`) : null,
            typeof hyp.service === "string" && hyp.service ? el("span", { class: "muted" }, ` blames ${hyp.service}`) : null,
            hyp.reasoning ? el("p", { class: "muted" }, text(hyp.reasoning)) : null,
            this.evidence(hyp.evidence));
        }))));
    }
    if (Array.isArray(c.chain) && c.chain.length) {
      panel.append(el("h3", {}, "Chain, from what the user saw to the cause"), el("ol", { class: "chain" }, c.chain.map((link) =>
        el("li", {}, this.causeLink(link || {}),
          el("span", { class: `role ${text(link && link.role)}` }, text(link && link.role)),
          link && link.http_status ? el("span", { class: "muted" }, ` HTTP ${text(link.http_status)}`) : null,
          link && typeof link.duration_ms === "number" ? el("span", { class: "muted" }, ` ${ms(link.duration_ms)}`) : null))));
    }
    if (Array.isArray(c.handled) && c.handled.length) {
      panel.append(el("h3", {}, "Handled (did not cause the failure)"), el("ul", {}, c.handled.map((h) =>
        el("li", {}, this.causeLink(h || {}), " — ", text(h && h.message),
          h && h.handled_by ? el("span", { class: "muted" }, ` (handled by ${text(h.handled_by.service)} ${text(h.handled_by.name)})`) : null))));
    }
    const lb = c.latency_breakdown;
    if (lb && typeof lb === "object") panel.append(this.breakdown(lb));
    if (Array.isArray(c.critical_path) && c.critical_path.length) {
      panel.append(el("details", {}, el("summary", {}, `Critical path (${c.critical_path_spans ?? c.critical_path.length} spans, highlighted in the waterfall)`),
        el("ol", {}, c.critical_path.map((p) => el("li", {}, this.causeLink(p || {}),
          el("span", { class: "muted" }, ` ${ms(p && p.duration_ms)}, self ${ms(p && p.self_ms)}`))))));
    }
    return panel;
  }

  // A span of this trace selects its row; one in another trace opens that trace.
  causeLink(ref) {
    const label = `${text(ref.service)} ${text(ref.name || (ref.type && ref.type !== "span" ? ref.type : ""))}`.trim() || "?";
    if (ref.trace_id && ref.trace_id !== this.traceId) {
      return el("a", { href: `/traces/${encodeURIComponent(ref.trace_id)}` + (ref.span_id ? `#span-${encodeURIComponent(ref.span_id)}` : "") }, label, el("span", { class: "muted" }, " (another trace)"));
    }
    return this.spanLink(ref.span_id, label);
  }

  evidence(items) {
    if (!Array.isArray(items) || !items.length) return null;
    return el("ul", { class: "evidence" }, items.slice(0, 10).map((e) =>
      el("li", {}, el("span", { class: "badge" }, text(e && e.type)), " ", evidenceText(e))));
  }

  breakdown(lb) {
    const parts = Object.entries(lb).filter(([k, v]) => k.endsWith("_ms") && k !== "total_ms" && typeof v === "number" && v > 0);
    const total = typeof lb.total_ms === "number" && lb.total_ms > 0 ? lb.total_ms : parts.reduce((a, [, v]) => a + v, 0) || 1;
    const bar = el("div", { class: "breakdown-bar" });
    const legend = el("ul", { class: "legend" });
    for (const [key, value] of parts) {
      const name = key.slice(0, -3);
      const seg = el("span", { title: `${name} ${ms(value)}` });
      seg.style.width = `${(value / total) * 100}%`;
      seg.style.background = colour(`layer:${name}`);
      bar.append(seg);
      const dot = el("span", { class: "dot" });
      dot.style.background = colour(`layer:${name}`);
      legend.append(el("li", {}, dot, `${name} ${ms(value)}`));
    }
    return el("div", { class: "breakdown" }, el("h3", {}, `Latency breakdown (${ms(lb.total_ms)})`), bar, legend);
  }

  spanLink(spanId, label) {
    if (!spanId || !this.byId.has(spanId)) return el("span", {}, label);
    return el("a", { href: `#span-${spanId}`, class: "span-link", onclick: (e) => { e.preventDefault(); this.select(spanId); } }, label);
  }

  ruler() {
    const ticks = el("span", { class: "ticks" });
    for (let i = 0; i <= 4; i++) {
      const t = el("span", {}, ms((this.total * i) / 4));
      t.style.left = `${i * 25}%`;
      ticks.append(t);
    }
    return ticks;
  }

  loosePanel() {
    return el("section", { class: "loose" }, el("h3", {}, "Logs and events of this trace not on a span"),
      el("ul", { class: "records" }, this.looseRecords.map((r) => recordItem(r))));
  }

  visible() {
    if (this._visible) return this._visible;
    const out = [];
    let hideDeeper = Infinity;
    for (const s of this.spans) {
      const depth = Number(s.depth) || 0;
      if (depth > hideDeeper) continue;
      hideDeeper = Infinity;
      out.push(s);
      if (this.collapsed.has(s.span_id) && s._hasChildren) hideDeeper = depth;
    }
    this._visible = out;
    return out;
  }

  refresh() {
    this._visible = null;
    this.spacer.style.height = `${this.visible().length * ROW}px`;
    this.redraw();
  }

  redraw() {
    this.shown = new Map();
    this.spacer.replaceChildren();
    this.draw();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  // Rows entering the view are made, rows leaving it removed; the others stay as they are.
  draw() {
    const rows = this.visible();
    const top = Math.max(0, Math.floor(this.scroller.scrollTop / ROW) - OVERSCAN);
    const count = Math.ceil((this.scroller.clientHeight || 600) / ROW) + 2 * OVERSCAN;
    const end = Math.min(rows.length, top + count);
    for (const [index, node] of this.shown) {
      if (index < top || index >= end) {
        node.remove();
        this.shown.delete(index);
      }
    }
    const frag = document.createDocumentFragment();
    for (let i = top; i < end; i++) {
      if (this.shown.has(i)) continue;
      const node = this.row(rows[i], i);
      this.shown.set(i, node);
      frag.append(node);
    }
    this.spacer.append(frag);
  }

  row(s, index) {
    const id = s.span_id;
    const error = s.status === "ERROR";
    const cls = ["wf-row"];
    if (error) cls.push("error");
    if (this.critical.has(id)) cls.push("critical");
    if (this.chain.has(id)) cls.push("chain");
    if (id === this.selected) cls.push("selected");
    if (id === this.rootCause) cls.push("root-cause");
    const row = el("div", {
      class: cls.join(" "), role: "treeitem", "data-span-id": id,
      "data-root-cause": id === this.rootCause ? "" : null,
      "aria-selected": id === this.selected ? "true" : "false",
      "aria-expanded": s._hasChildren ? String(!this.collapsed.has(id)) : null,
    });
    row.style.top = `${index * ROW}px`;
    const depth = Math.min(Number(s.depth) || 0, 40);
    const toggle = s._hasChildren
      ? el("button", { type: "button", class: "toggle", "aria-label": "collapse or expand", tabindex: -1, onclick: (e) => { e.stopPropagation(); this.toggle(id); } }, this.collapsed.has(id) ? "▸" : "▾")
      : el("span", { class: "toggle" });
    const dot = el("span", { class: "dot" });
    dot.style.background = colour(s.service);
    const records = this.records.get(id) || [];
    const events = Array.isArray(s.events) ? s.events : [];
    const label = el("div", { class: "wf-label" }, toggle, dot,
      el("span", { class: "svc" }, text(s.service)), " ", el("span", { class: "name" }, text(s.name)),
      error ? el("span", { class: "badge err", title: "status ERROR" }, "error") : null,
      id === this.rootCause ? el("span", { class: "badge root", title: "root cause" }, "root cause") : null,
      s.orphan ? el("span", { class: "badge warn", title: "its parent span never arrived" }, "orphan") : null,
      s.cycle ? el("span", { class: "badge warn", title: "a parent cycle was cut here" }, "cycle") : null,
      s._late ? el("span", { class: "badge late", title: "ends after its parent ended" }, "late") : null,
      records.length ? el("span", { class: "badge log", title: "log records and browser events at this span" }, `${records.length} log${records.length > 1 ? "s" : ""}`) : null,
      events.length ? el("span", { class: "badge ev", title: "span events" }, `${events.length} ev`) : null);
    label.style.paddingLeft = `${depth * 12 + 4}px`;
    const lane = el("div", { class: "wf-lane" });
    const bar = el("div", { class: "wf-bar" });
    bar.style.left = `${Math.max(0, (s._offset / this.total) * 100)}%`;
    bar.style.width = `max(2px, ${(Number(s.duration_ms) / this.total) * 100}%)`;
    bar.style.background = colour(s.service);
    lane.append(bar);
    for (const e of events) lane.append(this.tick(Date.parse(e.time), "ev", text(e.name)));
    for (const r of records) lane.append(this.tick(r.timestamp, `log ${text(r.level)}`, text(r.message)));
    lane.append(el("span", { class: "dur" }, ms(s.duration_ms)));
    row.append(label, lane);
    row.addEventListener("click", () => this.select(id));
    return row;
  }

  tick(epochMs, cls, title) {
    const t = el("span", { class: `tick ${cls}`, title });
    const offset = epochMs - this.t0 / 1e6;
    t.style.left = `${Math.min(100, Math.max(0, (offset / this.total) * 100))}%`;
    return t;
  }

  toggle(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id); else this.collapsed.add(id);
    this.refresh();
  }

  select(id, { focus = true } = {}) {
    const s = this.byId.get(id);
    if (!s) return;
    // Open collapsed ancestors, so the row can be shown.
    let changed = false;
    for (let p = s._parent; p; p = p._parent) if (this.collapsed.delete(p.span_id)) changed = true;
    this.selected = id;
    if (changed) this._visible = null;
    const index = this.visible().indexOf(s);
    if (changed) this.spacer.style.height = `${this.visible().length * ROW}px`;
    const view = this.scroller;
    if (index * ROW < view.scrollTop || (index + 1) * ROW > view.scrollTop + view.clientHeight - ROW) {
      view.scrollTop = Math.max(0, index * ROW - view.clientHeight / 3);
    }
    this.redraw();
    if (focus) view.focus({ preventScroll: true });
    this.showDetail(s);
  }

  key(e) {
    const rows = this.visible();
    const at = this.selected ? rows.findIndex((s) => s.span_id === this.selected) : -1;
    const go = (i) => { if (rows[i]) this.select(rows[i].span_id); };
    const s = rows[at];
    switch (e.key) {
      case "ArrowDown": case "j": go(Math.min(rows.length - 1, at + 1)); break;
      case "ArrowUp": case "k": go(Math.max(0, at - 1)); break;
      case "Home": go(0); break;
      case "End": go(rows.length - 1); break;
      case "PageDown": go(Math.min(rows.length - 1, at + 20)); break;
      case "PageUp": go(Math.max(0, at - 20)); break;
      case "ArrowLeft": case "h":
        if (s && s._hasChildren && !this.collapsed.has(s.span_id)) this.toggle(s.span_id);
        else if (s && s._parent) this.select(s._parent.span_id);
        break;
      case "ArrowRight": case "l":
        if (s && this.collapsed.has(s.span_id)) this.toggle(s.span_id);
        break;
      case "Enter": if (s) this.showDetail(s); break;
      default: return;
    }
    e.preventDefault();
  }

  async showDetail(s) {
    const panel = clear(this.detail);
    const records = this.records.get(s.span_id) || [];
    panel.append(el("h2", {}, el("span", { class: "svc" }, text(s.service)), " ", text(s.name)),
      el("dl", { class: "facts" },
        el("dt", {}, "span id"), el("dd", {}, el("code", {}, text(s.span_id))),
        el("dt", {}, "parent"), el("dd", {}, s.parent_span_id ? this.spanLink(s.parent_span_id, text(s.parent_span_id)) : "none (root)"),
        el("dt", {}, "kind"), el("dd", {}, text(s.kind)),
        el("dt", {}, "status"), el("dd", {}, text(s.status || "not an error"), s.status_message ? ` — ${text(s.status_message)}` : ""),
        el("dt", {}, "start"), el("dd", {}, `+${ms(s._offset)}`),
        el("dt", {}, "duration"), el("dd", {}, ms(s.duration_ms)),
        s.orphan ? [el("dt", {}, "orphan"), el("dd", {}, "its parent span never arrived")] : null,
        s._late ? [el("dt", {}, "late"), el("dd", {}, "ends after its parent ended")] : null));
    const body = el("div", {}, el("p", { class: "muted" }, "Loading attributes…"));
    panel.append(body);
    if (records.length) panel.append(el("h3", {}, "Logs and browser events at this span"), el("ul", { class: "records" }, records.map(recordItem)));
    let full = s;
    if (!("attributes" in s)) {
      try {
        const doc = await getJSON(`/v1/traces/${encodeURIComponent(this.traceId)}?span_ids=${encodeURIComponent(s.span_id)}`);
        const found = [];
        flatten(doc.spans, found);
        full = found.find((x) => x.span_id === s.span_id) || s;
        Object.assign(this.doc.services, doc.services || {});
      } catch (error) {
        clear(body).append(errorBox(error));
        return;
      }
    }
    if (this.selected !== s.span_id) return;
    clear(body).append(
      el("h3", {}, "Attributes"), kvTable(full.attributes),
      el("h3", {}, "Events"), (full.events || []).length
        ? el("ul", { class: "records" }, full.events.map((e) => el("li", {}, el("strong", {}, text(e.name)), " ", el("span", { class: "muted" }, text(e.time)), kvTable(e.attributes))))
        : el("p", { class: "muted" }, "none"),
      (full.links || []).length ? [el("h3", {}, "Links"), el("ul", {}, full.links.map((l) => el("li", {}, text(l))))] : null,
      el("h3", {}, "Resource"), kvTable((this.doc.services || {})[s.service]));
  }
}

function evidenceText(e) {
  if (!e || typeof e !== "object") return text(e);
  const said = e.message ?? e.detail ?? e.text;
  if (said !== undefined) return text(said);
  return Object.entries(e).filter(([k]) => k !== "type").map(([k, v]) => `${k} ${text(v)}`).join(", ");
}

function kvTable(map) {
  const entries = map && typeof map === "object" ? Object.entries(map) : [];
  if (!entries.length) return el("p", { class: "muted" }, "none");
  return el("table", { class: "kv" }, el("tbody", {}, entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, text(v))))));
}

export function recordItem(r) {
  return el("li", { class: `record level-${text(r.level)}`, "data-event-id": text(r.id) },
    el("span", { class: "time" }, when(r.timestamp)), " ",
    el("span", { class: "badge" }, text(r.source)), " ",
    el("span", { class: `level` }, text(r.level)), " ",
    el("span", { class: "msg" }, text(r.message)));
}
