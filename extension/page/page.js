// The page's own world, at document_start: wraps fetch, XMLHttpRequest, WebSocket, the
// console and history, listens for actions and errors, and hands what it records to the
// isolated-world relay (page/relay.js) in batches. It only records: building spans and
// events, redaction and delivery happen in the service worker, off the page's thread.
"use strict";
(() => {
  const core = globalThis.__gasolineCore;
  delete globalThis.__gasolineCore;
  if (!core) return;

  const perf = performance;
  const now = () => perf.timeOrigin + perf.now(); // epoch ms, sub-millisecond
  const setTimer = window.setTimeout.bind(window);
  const dispatch = window.dispatchEvent.bind(window);
  const Custom = window.CustomEvent;
  const stringify = JSON.stringify;
  const origin = location.origin;

  // Until the relay hands over the options: same-origin requests only, everything captured.
  let config = {
    enabled: true,
    targets: [],
    daemon: ["loopback:7890", "loopback:4318"],
    capture: { console: true, errors: true, actions: true, inputValues: false, navigation: true, websocket: true, websocketMessages: true, timings: true },
    actionWindowMs: 2000,
  };
  window.addEventListener("gasoline:config", (e) => {
    try {
      const next = JSON.parse(e.detail);
      config = Object.assign({}, config, next, {
        capture: Object.assign({}, config.capture, next.capture),
        probed: Object.assign({}, config.probed, next.probed),
      });
    } catch (err) {
      // a malformed config event (not from the relay) changes nothing
    }
  });

  // -- batching to the relay ----------------------------------------------------------
  let buffer = [];
  let flushTimer = 0;
  function flush() {
    flushTimer = 0;
    if (!buffer.length) return;
    const items = buffer;
    buffer = [];
    dispatch(new Custom("gasoline:page", { detail: stringify(items) }));
  }
  function emit(item) {
    if (!config.enabled) return;
    buffer.push(item);
    if (buffer.length >= 100) flush();
    else if (!flushTimer) flushTimer = setTimer(flush, 50);
  }
  window.addEventListener("pagehide", flush);

  // -- actions: each a root span; requests it causes are its children -------------------
  function openAction(kind, name, attributes) {
    return {
      kind,
      name,
      attributes,
      traceId: core.newTraceId(),
      spanId: core.newSpanId(),
      start: now(),
      last: now(),
      pending: 0,
      capped: 0, // the timer that ends it at MAX_ACTION_MS while requests are in flight
      ended: false,
    };
  }
  const load = openAction("page_load", `page load ${location.pathname}`, { "url.full": location.href });
  load.start = perf.timeOrigin;
  load.pending = 1; // until the load event
  let current = load;
  let inTask = null; // the action whose event task (handlers and their microtasks) runs now

  // An action owns what starts while it has requests in flight or within actionWindowMs of
  // its last one ending, and never longer than this (a long poll or a stream would
  // otherwise own everything after it).
  const MAX_ACTION_MS = 30_000;

  function live(action, t) {
    return action && t - action.start < MAX_ACTION_MS && (action.pending > 0 || t - action.last <= config.actionWindowMs);
  }
  /** The action a request or event starting now belongs to, and how it was linked. */
  function owner() {
    if (inTask) return { action: inTask, link: "continuation" };
    const t = now();
    if (live(current, t)) return { action: current, link: current === load ? "page_load" : "time_window" };
    return null;
  }
  /** Ends the action's span once it owns nothing more: called when it opens, when its last
   * request ends, and by its timers. */
  function settle(action) {
    if (action.ended) return;
    const t = now();
    const left = action.start + MAX_ACTION_MS - t;
    if (left > 0 && action.pending > 0) {
      if (!action.capped) action.capped = setTimer(() => settle(action), left);
      return;
    }
    const wait = action.last + config.actionWindowMs - t;
    if (left > 0 && wait > 0) {
      setTimer(() => settle(action), Math.min(wait, left));
      return;
    }
    action.ended = true;
    emit({ t: "span", traceId: action.traceId, spanId: action.spanId, name: action.name, kind: "internal", start: action.start, end: Math.max(action.last, action.start), attributes: Object.assign({ "gasoline.action": action.kind }, action.attributes) });
  }
  function beginAction(kind, name, attributes, event) {
    const action = openAction(kind, name, attributes);
    current = action;
    inTask = action;
    setTimer(() => {
      if (inTask === action) inTask = null;
    }, 0);
    settle(action);
    if (event) emit(Object.assign(event, { traceId: action.traceId, spanId: action.spanId }));
    return action;
  }

  // -- events ---------------------------------------------------------------------------
  function record(level, message, metadata, extra) {
    const o = owner();
    emit(Object.assign({ t: "event", time: now(), level, message, metadata, traceId: o && o.action.traceId, spanId: o && o.action.spanId }, extra));
  }

  // -- requests ---------------------------------------------------------------------------
  function startRequest(method, url) {
    const o = owner();
    const action = o ? o.action : null;
    if (action) action.pending++;
    return {
      method,
      url,
      action,
      link: o ? o.link : "none",
      traceId: action ? action.traceId : core.newTraceId(),
      spanId: core.newSpanId(),
      start: now(),
    };
  }
  function endRequest(req, decision, status, error, requestId) {
    const end = now();
    const attributes = {
      "http.request.method": req.method,
      "url.full": req.url.href,
      "server.address": req.url.hostname,
      "server.port": Number(req.url.port || (req.url.protocol === "https:" ? 443 : 80)),
      "gasoline.link": req.link,
      "gasoline.propagated": decision === "inject",
    };
    if (status) attributes["http.response.status_code"] = status;
    if (requestId) attributes["http.response.header.x-request-id"] = [requestId];
    const failed = error !== undefined || !status || status >= 400;
    if (failed) attributes["error.type"] = error !== undefined ? error : String(status || "_OTHER");
    emit({ t: "span", traceId: req.traceId, spanId: req.spanId, parentSpanId: req.action ? req.action.spanId : undefined, name: req.method, kind: "client", start: req.start, end, attributes, error: failed && (error !== undefined || status >= 500) ? (error || `HTTP ${status}`) : undefined });
    if (requestId || failed) {
      const level = error !== undefined || status >= 500 ? "error" : "warn";
      const message = `${req.method} ${req.url.href} ${error !== undefined ? `failed: ${error}` : `→ ${status}`}`;
      emit({ t: "event", time: end, level, message, correlationId: requestId || undefined, traceId: req.traceId, spanId: req.spanId, metadata: { type: "network", method: req.method, url: req.url.href, status: status || undefined, duration_ms: Math.round((end - req.start) * 1000) / 1000 } });
    }
    if (req.action) {
      req.action.pending--;
      req.action.last = Math.max(req.action.last, end);
      if (req.action.pending === 0) settle(req.action);
    }
  }
  // Cross-origin loopback targets: one preflighted HEAD / per target and page load tells
  // whether its CORS allows traceparent (unsampled, so a backend records nothing). Until it
  // answers, requests to that target go without the header; a refusal is never retried
  // here, and the worker remembers the answer for an hour for every page of this origin.
  const probing = new Set();
  function probe(url) {
    const target = url.origin;
    if (probing.has(target)) return;
    probing.add(target);
    const header = core.formatTraceparent(core.newTraceId(), core.newSpanId(), false);
    const done = (allowed) => {
      config.probed = Object.assign({}, config.probed, { [target]: allowed });
      emit({ t: "probe", target, allowed });
    };
    realFetch(`${target}/`, { method: "HEAD", mode: "cors", credentials: "omit", cache: "no-store", headers: { traceparent: header } }).then(
      () => done(true),
      () => done(false),
    );
  }

  function resolve(raw) {
    try {
      return new URL(raw, location.href);
    } catch (err) {
      return null;
    }
  }

  const realFetch = window.fetch;
  if (realFetch) {
    window.fetch = function fetch(input, init) {
      const isRequest = typeof Request !== "undefined" && input instanceof Request;
      const url = config.enabled ? resolve(isRequest ? input.url : String(input)) : null;
      const decision = url ? core.decide(url, origin, config) : "ignore";
      if (decision === "ignore") return realFetch.apply(this, arguments);
      if (decision === "plain" && core.needsProbe(url, origin, config)) probe(url);
      const given = init && init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined;
      const headers = new Headers(given);
      if (headers.has("traceparent")) return realFetch.apply(this, arguments); // the page's own SDK traces it
      const method = String((init && init.method) || (isRequest ? input.method : "GET")).toUpperCase();
      const req = startRequest(method, url);
      let args = arguments;
      if (decision === "inject") {
        headers.set("traceparent", core.formatTraceparent(req.traceId, req.spanId));
        args = [input, Object.assign({}, init, { headers })];
      }
      const promise = realFetch.apply(this, args);
      promise.then(
        (resp) => endRequest(req, decision, resp.status, undefined, resp.headers.get("x-request-id")),
        (err) => endRequest(req, decision, 0, (err && err.name) || "Error"),
      );
      return promise;
    };
  }

  const XHR = window.XMLHttpRequest;
  if (XHR) {
    const state = new WeakMap();
    const open = XHR.prototype.open;
    const setHeader = XHR.prototype.setRequestHeader;
    const send = XHR.prototype.send;
    XHR.prototype.open = function (method, url) {
      state.set(this, { method: String(method).toUpperCase(), url: resolve(String(url)), own: false });
      return open.apply(this, arguments);
    };
    XHR.prototype.setRequestHeader = function (name) {
      const s = state.get(this);
      if (s && String(name).toLowerCase() === "traceparent") s.own = true;
      return setHeader.apply(this, arguments);
    };
    XHR.prototype.send = function () {
      const s = state.get(this);
      const decision = s && s.url && config.enabled && !s.own ? core.decide(s.url, origin, config) : "ignore";
      if (decision === "plain" && realFetch && core.needsProbe(s.url, origin, config)) probe(s.url);
      if (decision !== "ignore") {
        const req = startRequest(s.method, s.url);
        if (decision === "inject") setHeader.call(this, "traceparent", core.formatTraceparent(req.traceId, req.spanId));
        this.addEventListener("loadend", () => {
          const status = this.status;
          const error = status === 0 ? "NetworkError" : undefined;
          endRequest(req, decision, status, error, status ? this.getResponseHeader("x-request-id") : null);
        });
      }
      return send.apply(this, arguments);
    };
  }

  // -- WebSocket ----------------------------------------------------------------------------
  const WS = window.WebSocket;
  if (WS) {
    const preview = (data) => {
      if (typeof data === "string") return { size: data.length, preview: data.slice(0, 256) };
      const size = data && (data.byteLength !== undefined ? data.byteLength : data.size);
      return { size: size || 0, preview: `[binary ${size || 0} bytes]` };
    };
    const wsEvent = (url, name, level, message, extra) => {
      if (config.capture.websocket) record(level, message, Object.assign({ type: "websocket", event: name, url }, extra));
    };
    const traced = new WeakMap(); // socket -> its URL, for sockets the daemon does not own
    class GasolineWebSocket extends WS {
      constructor(url, protocols) {
        super(url, protocols);
        const href = this.url;
        const parsed = resolve(href);
        if (!parsed || config.daemon.includes(core.endpointKey(parsed))) return;
        wsEvent(href, "connect", "info", `WebSocket connecting ${href}`);
        this.addEventListener("open", () => wsEvent(href, "open", "info", `WebSocket open ${href}`));
        this.addEventListener("close", (e) => wsEvent(href, "close", e.wasClean ? "info" : "warn", `WebSocket closed ${href} (${e.code})`, { code: e.code, reason: String(e.reason).slice(0, 256) }));
        this.addEventListener("error", () => wsEvent(href, "error", "error", `WebSocket error ${href}`));
        this.addEventListener("message", (e) => {
          if (config.capture.websocketMessages) wsEvent(href, "message", "debug", `WebSocket ← ${href}`, Object.assign({ direction: "in" }, preview(e.data)));
        });
        traced.set(this, href);
      }
      send(data) {
        const href = traced.get(this);
        if (href && config.capture.websocketMessages) wsEvent(href, "message", "debug", `WebSocket → ${href}`, Object.assign({ direction: "out" }, preview(data)));
        return super.send(data);
      }
    }
    Object.defineProperty(GasolineWebSocket, "name", { value: "WebSocket" });
    window.WebSocket = GasolineWebSocket;
  }

  // -- console, errors, custom events --------------------------------------------------------
  const LEVELS = { debug: "debug", log: "info", info: "info", warn: "warn", error: "error" };
  for (const [method, level] of Object.entries(LEVELS)) {
    const real = console[method];
    if (typeof real !== "function") continue;
    console[method] = function () {
      if (config.capture.console && config.enabled) {
        try {
          record(level, core.consoleMessage(arguments), { type: "console", console_method: method });
        } catch (err) {
          // recording never breaks the page's console
        }
      }
      return real.apply(this, arguments);
    };
  }
  window.addEventListener("error", (e) => {
    if (!config.capture.errors || !(e instanceof ErrorEvent)) return;
    const stack = e.error && e.error.stack ? String(e.error.stack).slice(0, 4000) : undefined;
    const message = String(e.message || "error");
    record("error", message.startsWith("Uncaught") ? message : `Uncaught ${message}`, { type: "error", error_kind: "uncaught", filename: e.filename, lineno: e.lineno, colno: e.colno, stack });
  }, true);
  window.addEventListener("unhandledrejection", (e) => {
    if (!config.capture.errors) return;
    const reason = e.reason;
    const stack = reason && reason.stack ? String(reason.stack).slice(0, 4000) : undefined;
    record("error", `Unhandled rejection: ${core.serialize(reason, { total: 1000 })}`, { type: "error", error_kind: "unhandled_rejection", stack });
  });
  window.addEventListener("message", (e) => {
    const data = e.source === window ? e.data : null;
    if (!data || data.type !== "gasoline:event" || typeof data.event !== "object" || !data.event) return;
    const ev = data.event;
    const metadata = Object.assign({}, typeof ev.metadata === "object" && ev.metadata ? ev.metadata : {}, { type: (ev.metadata && ev.metadata.type) || "custom" });
    record(typeof ev.level === "string" ? ev.level : "info", core.serialize(ev.message === undefined ? "" : ev.message, { total: 2000 }), JSON.parse(stringify(metadata)), { tags: Array.isArray(ev.tags) ? ev.tags.map(String).slice(0, 20) : undefined, correlationId: ev.correlation_id ? String(ev.correlation_id) : undefined });
  });

  // -- actions ---------------------------------------------------------------------------
  const INTERACTIVE = "button, a, input, select, textarea, summary, label, [role=button], [role=link], [role=menuitem], [role=tab], [onclick]";
  function quote(v) {
    return JSON.stringify(String(v));
  }
  function selectorOf(el) {
    for (const attr of ["data-testid", "data-test", "data-cy", "data-qa"]) {
      const v = el.getAttribute(attr);
      if (v) return `[${attr}=${quote(v)}]`;
    }
    if (el.id && !/\d{3,}|[:.]/.test(el.id)) return `#${CSS.escape(el.id)}`;
    const tag = el.tagName.toLowerCase();
    const name = el.getAttribute("name");
    if (name) return `${tag}[name=${quote(name)}]`;
    const label = el.getAttribute("aria-label");
    if (label) return `${tag}[aria-label=${quote(label)}]`;
    const parts = [];
    for (let node = el; node && node.nodeType === 1 && parts.length < 4; node = node.parentElement) {
      if (node.id && !/\d{3,}|[:.]/.test(node.id)) {
        parts.unshift(`#${CSS.escape(node.id)}`);
        break;
      }
      let part = node.tagName.toLowerCase();
      const parent = node.parentElement;
      if (parent) {
        const same = Array.from(parent.children).filter((c) => c.tagName === node.tagName);
        if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
      }
      parts.unshift(part);
    }
    return parts.join(" > ");
  }
  function textOf(el) {
    if (el instanceof HTMLInputElement) return el.type === "button" || el.type === "submit" ? el.value.slice(0, 80) : (el.getAttribute("aria-label") || el.placeholder || "").slice(0, 80);
    return (el.getAttribute("aria-label") || el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 80);
  }
  function isSecretField(el) {
    const auto = (el.getAttribute("autocomplete") || "").toLowerCase();
    return el.type === "password" || el.type === "hidden" || /password|cc-|one-time-code/.test(auto);
  }
  function actionEvent(kind, el, extra) {
    const selector = selectorOf(el);
    const text = textOf(el);
    return {
      t: "event",
      time: now(),
      level: "info",
      message: `${kind} ${text ? quote(text) : selector}`,
      metadata: Object.assign({ type: "action", action: kind, selector, text, tag: el.tagName.toLowerCase(), url: location.href }, extra),
    };
  }
  function onAction(kind, target, extra) {
    if (!config.enabled) return;
    const el = target instanceof Element ? target.closest(INTERACTIVE) || target : null;
    if (!el) return;
    const event = config.capture.actions ? actionEvent(kind, el, extra) : null;
    beginAction(kind, `${kind} ${selectorOf(el)}`, { "gasoline.selector": selectorOf(el), "gasoline.text": textOf(el), "url.full": location.href }, event);
  }
  window.addEventListener("click", (e) => onAction("click", e.target), true);
  window.addEventListener("submit", (e) => onAction("submit", e.target), true);
  window.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing && !(e.target instanceof HTMLTextAreaElement)) onAction("press", e.target, { key: "Enter" });
  }, true);
  window.addEventListener("change", (e) => {
    const el = e.target;
    if (!config.enabled || !config.capture.actions || !(el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement)) return;
    const kind = el instanceof HTMLSelectElement ? "select" : "fill";
    const extra = {};
    // A password (or card number, one-time code) never leaves the page, whatever the options.
    if (isSecretField(el)) extra.value = "[REDACTED]";
    else if (config.capture.inputValues) extra.value = el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio") ? String(el.checked) : String(el.value).slice(0, 1000);
    const ev = actionEvent(kind, el, extra);
    const o = owner();
    emit(Object.assign(ev, { traceId: o && o.action.traceId, spanId: o && o.action.spanId }));
  }, true);

  // -- navigations and page timings ---------------------------------------------------------
  function navigated(how) {
    if (!config.enabled) return;
    const event = config.capture.navigation ? { t: "event", time: now(), level: "info", message: `navigate ${location.href}`, metadata: { type: "navigation", action: "navigate", navigation_type: how, url: location.href } } : null;
    beginAction("navigation", `navigation ${location.pathname}`, { "url.full": location.href, "gasoline.navigation_type": how }, event);
  }
  for (const method of ["pushState", "replaceState"]) {
    const real = history[method];
    history[method] = function () {
      const before = location.href;
      const result = real.apply(this, arguments);
      if (location.href !== before) navigated(method === "pushState" ? "push" : "replace");
      return result;
    };
  }
  window.addEventListener("popstate", () => navigated("pop"));
  window.addEventListener("hashchange", () => navigated("hash"));
  if (config.capture.navigation) {
    emit({ t: "event", time: perf.timeOrigin, level: "info", message: `navigate ${location.href}`, traceId: load.traceId, spanId: load.spanId, metadata: { type: "navigation", action: "navigate", navigation_type: "load", url: location.href } });
  }

  const vitals = { lcp_ms: undefined, cls: 0, inp_ms: undefined };
  const observe = (type, fn) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(fn)).observe({ type, buffered: true });
    } catch (err) {
      // an entry type this browser does not know
    }
  };
  observe("largest-contentful-paint", (e) => (vitals.lcp_ms = Math.round(e.startTime)));
  observe("layout-shift", (e) => {
    if (!e.hadRecentInput) vitals.cls = Math.round((vitals.cls + e.value) * 1000) / 1000;
  });
  observe("event", (e) => {
    if (e.interactionId) vitals.inp_ms = Math.max(vitals.inp_ms || 0, Math.round(e.duration));
  });
  window.addEventListener("load", () => {
    setTimer(() => {
      const nav = perf.getEntriesByType("navigation")[0];
      load.pending--;
      load.last = now();
      settle(load);
      if (!nav || !config.capture.timings) return;
      const ms = (v) => Math.round(v * 10) / 10;
      const metadata = { type: "timings", ttfb_ms: ms(nav.responseStart), dom_content_loaded_ms: ms(nav.domContentLoadedEventEnd), load_ms: ms(nav.loadEventEnd), transfer_size: nav.transferSize, url: location.href };
      emit({ t: "event", time: now(), level: "info", message: `page timings ${location.pathname}: TTFB ${metadata.ttfb_ms} ms, load ${metadata.load_ms} ms`, traceId: load.traceId, spanId: load.spanId, metadata });
    }, 0);
  });
  let vitalsSent = false;
  const sendVitals = () => {
    if (vitalsSent || !config.capture.timings) return;
    vitalsSent = true;
    emit({ t: "event", time: now(), level: "info", message: `web vitals ${location.pathname}: LCP ${vitals.lcp_ms} ms, CLS ${vitals.cls}, INP ${vitals.inp_ms} ms`, traceId: load.traceId, spanId: load.spanId, metadata: Object.assign({ type: "web_vitals", url: location.href }, vitals) });
    flush();
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") sendVitals();
  });
  window.addEventListener("pagehide", sendVitals);
})();
