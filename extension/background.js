// The service worker: takes the pages' batches, makes them safe (lib/shape.js), keeps them
// in a bounded queue persisted in chrome.storage.local (Chrome stops an idle worker after
// ~30 s, and its memory with it), and delivers them in order: events to the daemon's
// POST /events, spans to its OTLP/HTTP /v1/traces. While the daemon is down it retries
// with a backoff, and on every new batch; beyond the bounds the oldest chunks are dropped
// and counted.
import "./page/core.js";
import { pageConfig, probedFor, withDefaults } from "./lib/options.js";
import { exportRequest } from "./lib/otlp.js";
import { admit, chunk, emptyQueue, LIMITS, oldest, remove } from "./lib/queue.js";
import { shapeEvent, shapeSpan } from "./lib/shape.js";

const core = globalThis.__gasolineCore;
const VERSION = chrome.runtime.getManifest().version;
const SEND_ITEMS = 500;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const PERMANENT = new Set([400, 404, 413, 415]); // the daemon will never take this batch

function limitsOf(opts) {
  return { ...LIMITS, maxItems: opts.queueMaxItems, maxBytes: opts.queueMaxBytes };
}

// -- storage, one operation at a time ------------------------------------------------------
let chain = Promise.resolve();
function locked(fn) {
  const result = chain.then(fn);
  chain = result.catch(() => {});
  return result;
}
let queueState = null;
async function loadQueue() {
  if (!queueState) {
    const { queue } = await chrome.storage.local.get("queue");
    queueState = queue && Array.isArray(queue.chunks) ? queue : emptyQueue();
  }
  return queueState;
}
async function options() {
  const { options: stored } = await chrome.storage.local.get("options");
  return withDefaults(stored);
}

// -- intake -----------------------------------------------------------------------------------
async function probes() {
  const { probes: stored } = await chrome.storage.local.get("probes");
  return stored && typeof stored === "object" ? stored : {};
}

/** Remembers what a page learned of a loopback target's CORS (the popup lists refusals). */
async function noteProbes(found, pageOrigin) {
  if (!found.length) return;
  await locked(async () => {
    const all = await probes();
    const now = Date.now();
    for (const p of found) all[`${pageOrigin} ${p.target}`] = { allowed: p.allowed === true, at: now };
    const fresh = Object.entries(all).filter(([, p]) => now - p.at < 3600_000).slice(-200);
    await chrome.storage.local.set({ probes: Object.fromEntries(fresh) });
  });
}

async function enqueue(text, pageUrl, pageOrigin) {
  const opts = await options();
  let items;
  try {
    items = JSON.parse(text);
  } catch (err) {
    return;
  }
  if (!Array.isArray(items)) return;
  const spans = [];
  const events = [];
  const found = [];
  // What a batch carries beyond 1,000 items, or malformed, is counted as dropped.
  let refused = Math.max(0, items.length - 1000);
  for (const item of items.slice(0, 1000)) {
    if (!item || typeof item !== "object") {
      refused++;
      continue;
    }
    if (item.t === "probe" && typeof item.target === "string") {
      try {
        const target = new URL(item.target);
        if (["localhost", "127.0.0.1", "[::1]"].includes(target.hostname)) found.push({ target: target.origin, allowed: item.allowed });
      } catch (err) {
        // not a URL: ignored
      }
    } else if (item.t === "span") {
      const span = shapeSpan(item);
      if (span) spans.push(span);
      else refused++;
    } else if (item.t === "event") {
      const event = shapeEvent(item, { serviceName: opts.serviceName, pageUrl });
      if (event) events.push(event);
      else refused++;
    } else {
      refused++;
    }
  }
  await noteProbes(found, pageOrigin);
  await locked(async () => {
    let state = await loadQueue();
    state = { ...state, dropped: state.dropped + refused };
    const writes = {};
    const evicted = [];
    for (const [kind, list] of [["event", events], ["span", spans]]) {
      const texts = list.map((x) => JSON.stringify(x));
      const { chunks, tooLarge } = chunk(list, texts.map((t) => t.length));
      state = { ...state, dropped: state.dropped + tooLarge };
      for (const c of chunks) {
        const step = admit(state, kind, c.items.length, c.bytes, limitsOf(opts));
        state = step.state;
        writes[`chunk:${step.seq}`] = c.items;
        evicted.push(...step.evicted);
      }
    }
    for (const seq of evicted) delete writes[`chunk:${seq}`];
    await chrome.storage.local.set({ ...writes, queue: state });
    if (evicted.length) await chrome.storage.local.remove(evicted.map((seq) => `chunk:${seq}`));
    queueState = state;
  });
  flushSoon(0);
}

// -- delivery -----------------------------------------------------------------------------------
let flushing = false;
let retryTimer = 0;
let failures = 0;
let lastError = null;
let reachable = null;

/** Delivery after `delay` ms. While the daemon is failing, new batches do not cut the
 * backoff short (a busy page would otherwise retry every 50 ms). */
function flushSoon(delay) {
  if (retryTimer) {
    if (delay > 0 || failures > 0) return;
    clearTimeout(retryTimer);
  }
  retryTimer = setTimeout(() => {
    retryTimer = 0;
    flush();
  }, delay);
}

function headersFor(opts) {
  return opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
}

async function post(url, body, opts) {
  const headers = { "Content-Type": "application/json", ...headersFor(opts) };
  const resp = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  if (resp.ok) return "ok";
  lastError = `${url} answered ${resp.status}: ${(await resp.text()).slice(0, 300)}`;
  return PERMANENT.has(resp.status) ? "refused" : "retry";
}

/** Sends the oldest chunks of each kind until the queue is empty or the daemon fails. */
async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    const opts = await options();
    for (;;) {
      const state = await locked(loadQueue);
      const batch = oldest(state, "event", SEND_ITEMS);
      const kind = batch.length ? "event" : "span";
      const chunks = batch.length ? batch : oldest(state, "span", SEND_ITEMS);
      if (!chunks.length) break;
      const keys = chunks.map((c) => `chunk:${c.seq}`);
      const stored = await chrome.storage.local.get(keys);
      const items = keys.flatMap((k) => stored[k] || []);
      let outcome;
      try {
        outcome =
          kind === "event"
            ? await post(`${opts.daemonUrl}/events`, { events: items }, opts)
            : await post(`${opts.otlpUrl}/v1/traces`, exportRequest(items, { serviceName: opts.serviceName, version: VERSION, userAgent: navigator.userAgent }), opts);
      } catch (err) {
        lastError = `${kind === "event" ? opts.daemonUrl : opts.otlpUrl} unreachable: ${err.message}`;
        outcome = "retry";
      }
      reachable = outcome !== "retry";
      if (outcome === "retry") {
        failures++;
        flushSoon(RETRY_MS[Math.min(failures - 1, RETRY_MS.length - 1)]);
        chrome.alarms.create("gasoline-retry", { delayInMinutes: 0.5 });
        break;
      }
      failures = 0;
      await locked(async () => {
        const next = remove(await loadQueue(), chunks.map((c) => c.seq), { delivered: outcome === "ok" });
        await chrome.storage.local.set({ queue: next });
        await chrome.storage.local.remove(keys);
        queueState = next;
      });
      await reportDrops(opts);
    }
  } finally {
    flushing = false;
  }
}

/** Drops the daemon has not heard of yet become one event in its timeline, so an agent
 * knows the browser's record has a hole (the popup shows the running count). */
async function reportDrops(opts) {
  await locked(async () => {
    const state = await loadQueue();
    const reported = state.reportedDrops || 0;
    if (state.dropped <= reported) return;
    const missing = state.dropped - reported;
    const event = {
      timestamp: Date.now(),
      source: "browser",
      service: opts.serviceName,
      level: "warn",
      message: `the Gasoline extension dropped ${missing} browser item(s): its queue was full while the daemon was unreachable, or the daemon refused them`,
      metadata: { type: "extension_drops", dropped: missing, dropped_total: state.dropped },
    };
    const step = admit({ ...state, reportedDrops: state.dropped }, "event", 1, 512, limitsOf(opts));
    await chrome.storage.local.set({ [`chunk:${step.seq}`]: [event], queue: step.state });
    if (step.evicted.length) await chrome.storage.local.remove(step.evicted.map((seq) => `chunk:${seq}`));
    queueState = step.state;
  });
}

async function status() {
  const opts = await options();
  const state = await locked(loadQueue);
  let daemon = reachable;
  try {
    const resp = await fetch(`${opts.daemonUrl}/health`, { headers: headersFor(opts), signal: AbortSignal.timeout(2000) });
    daemon = resp.ok;
    if (resp.status === 401) lastError = `${opts.daemonUrl} requires a token: set it in the options`;
  } catch (err) {
    daemon = false;
  }
  return {
    reachable: daemon,
    daemonUrl: opts.daemonUrl,
    otlpUrl: opts.otlpUrl,
    paused: opts.paused,
    sent: state.sent,
    queued: state.items,
    queuedBytes: state.bytes,
    dropped: state.dropped,
    refusingTargets: Object.entries(await probes())
      .filter(([, p]) => !p.allowed)
      .map(([key]) => key.split(" ")[1]),
    lastError,
  };
}

// -- wiring (top level: Chrome registers listeners only during the first run) ------------------
chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  const ownPage = sender.id === chrome.runtime.id && sender.url && sender.url.startsWith(chrome.runtime.getURL(""));
  if (msg && msg.type === "items" && typeof msg.items === "string" && sender.tab) {
    const pageOrigin = sender.origin || new URL(sender.url).origin;
    options().then((opts) => {
      if (pageConfig(opts, pageOrigin, core).enabled) return enqueue(msg.items, sender.url, pageOrigin);
      return undefined;
    }).then(() => reply(true), () => reply(false));
    return true;
  }
  if (msg && msg.type === "config" && sender.tab) {
    const pageOrigin = sender.origin || new URL(sender.url).origin;
    Promise.all([options(), probes()]).then(([opts, known]) => reply(pageConfig(opts, pageOrigin, core, probedFor(known, pageOrigin, Date.now()))));
    return true;
  }
  if (msg && msg.type === "status" && ownPage) {
    status().then(reply);
    return true;
  }
  if (msg && msg.type === "flush" && ownPage) {
    flush().then(() => reply(true));
    return true;
  }
  return false;
});
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === "gasoline-retry") flush();
});
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes.options) {
    failures = 0; // new URLs or token: try at once
    flushSoon(0);
  }
});
// A restarted worker delivers what an earlier one left queued.
flushSoon(0);
