// The extension's options: defaults, and the view of them one page gets.

export const DEFAULTS = Object.freeze({
  origins: ["http://localhost:*", "http://127.0.0.1:*"],
  targets: [],
  daemonUrl: "http://127.0.0.1:7890",
  otlpUrl: "http://127.0.0.1:4318",
  serviceName: "browser",
  // The daemon's bearer token, when it requires one (service.api.auth.token, GASOLINE_TOKEN).
  token: "",
  paused: false,
  actionWindowMs: 2000,
  // While the daemon is unreachable the worker keeps up to this much, oldest dropped first.
  queueMaxItems: 10_000,
  queueMaxBytes: 5 * 1024 * 1024,
  capture: {
    console: true,
    errors: true,
    actions: true,
    inputValues: false,
    navigation: true,
    websocket: true,
    websocketMessages: true,
    timings: true,
  },
});

/** Stored options over the defaults; a missing or malformed field keeps its default. */
export function withDefaults(stored) {
  const s = stored && typeof stored === "object" ? stored : {};
  const list = (v, d) => (Array.isArray(v) ? v.map(String).filter(Boolean) : d);
  const url = (v, d) => (typeof v === "string" && /^https?:\/\/[^/]+/.test(v) ? v.replace(/\/+$/, "") : d);
  const capture = {};
  for (const [k, d] of Object.entries(DEFAULTS.capture)) {
    capture[k] = s.capture && typeof s.capture[k] === "boolean" ? s.capture[k] : d;
  }
  return {
    origins: list(s.origins, DEFAULTS.origins),
    targets: list(s.targets, DEFAULTS.targets),
    daemonUrl: url(s.daemonUrl, DEFAULTS.daemonUrl),
    otlpUrl: url(s.otlpUrl, DEFAULTS.otlpUrl),
    serviceName: typeof s.serviceName === "string" && s.serviceName ? s.serviceName : DEFAULTS.serviceName,
    token: typeof s.token === "string" ? s.token.trim() : "",
    paused: s.paused === true,
    actionWindowMs: Number.isInteger(s.actionWindowMs) && s.actionWindowMs > 0 ? s.actionWindowMs : DEFAULTS.actionWindowMs,
    queueMaxItems: Number.isInteger(s.queueMaxItems) && s.queueMaxItems >= 10 ? s.queueMaxItems : DEFAULTS.queueMaxItems,
    queueMaxBytes: Number.isInteger(s.queueMaxBytes) && s.queueMaxBytes >= 64 * 1024 ? s.queueMaxBytes : DEFAULTS.queueMaxBytes,
    capture,
  };
}

export const PROBE_TTL_MS = 60 * 60 * 1000;

/** The probe answers pages of `origin` may use: target origin -> whether its CORS allows
 * traceparent, from `probes` ("<page origin> <target origin>" -> {allowed, at}), fresh ones. */
export function probedFor(probes, origin, nowMs) {
  const out = {};
  for (const [key, p] of Object.entries(probes || {})) {
    const [page, target] = key.split(" ");
    if (page === origin && target && p && nowMs - p.at < PROBE_TTL_MS) out[target] = p.allowed === true;
  }
  return out;
}

/** What the page script of `origin` is told: whether it records at all, where it may put
 * a traceparent, and the daemon's own endpoints it must leave alone. */
export function pageConfig(options, origin, core, probed = {}) {
  const daemon = [];
  for (const u of [options.daemonUrl, options.otlpUrl]) {
    try {
      daemon.push(core.endpointKey(new URL(u)));
    } catch (err) {
      // withDefaults only keeps http(s) URLs
    }
  }
  let own = false;
  try {
    own = daemon.includes(core.endpointKey(new URL(origin)));
  } catch (err) {
    own = false;
  }
  return {
    enabled: !options.paused && !own && core.originMatcher(options.origins)(origin),
    targets: options.targets,
    probed,
    daemon,
    capture: options.capture,
    actionWindowMs: options.actionWindowMs,
  };
}
