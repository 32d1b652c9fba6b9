// What the page recorded, checked and made safe in the service worker: OTLP spans and
// daemon events (POST /events), with secrets out of every URL. A page may send anything
// here, so every field is checked and bounded.
import { toOtlpSpan } from "./otlp.js";
import { redactUrl } from "./redact.js";

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const LEVELS = new Set(["debug", "info", "warn", "error", "critical"]);
const URL_KEYS = new Set(["url", "url.full", "filename"]);
const MAX_TEXT = 4000;

function hex(v, re) {
  return typeof v === "string" && re.test(v) ? v : undefined;
}

function time(v) {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : Date.now();
}

/** Metadata with URL values redacted and strings cut; a nested value too large is kept
 * as its cut JSON text. */
function cleanMetadata(metadata) {
  const out = {};
  if (!metadata || typeof metadata !== "object") return out;
  for (const [k, v] of Object.entries(metadata).slice(0, 50)) {
    if (v === undefined || v === null) continue;
    if (typeof v === "string") out[k] = (URL_KEYS.has(k) ? redactUrl(v) : redactUrlsIn(v)).slice(0, MAX_TEXT);
    else if (typeof v === "number" || typeof v === "boolean") out[k] = v;
    else {
      const text = JSON.stringify(v);
      out[k] = text.length <= MAX_TEXT ? JSON.parse(text) : text.slice(0, MAX_TEXT);
    }
  }
  return out;
}

/** Text with every absolute URL in it redacted. */
export function redactUrlsIn(text) {
  return text.replace(/\b(?:https?|wss?):\/\/[^\s"'<>]+/g, (url) => redactUrl(url));
}

/** A span the page recorded as an OTLP span, or null if it is malformed. */
export function shapeSpan(item) {
  const traceId = hex(item.traceId, HEX32);
  const spanId = hex(item.spanId, HEX16);
  if (!traceId || !spanId || typeof item.name !== "string") return null;
  const attributes = {};
  for (const [k, v] of Object.entries(item.attributes || {}).slice(0, 64)) {
    if (typeof v === "string") attributes[k] = k === "url.full" ? redactUrl(v) : v.slice(0, MAX_TEXT);
    else if (typeof v === "number" || typeof v === "boolean") attributes[k] = v;
    else if (Array.isArray(v)) attributes[k] = v.slice(0, 8).map((x) => String(x).slice(0, 256));
  }
  return toOtlpSpan({
    traceId,
    spanId,
    parentSpanId: hex(item.parentSpanId, HEX16),
    name: item.name.slice(0, 256),
    kind: item.kind === "client" ? "client" : "internal",
    start: time(item.start),
    end: time(item.end),
    attributes,
    error: typeof item.error === "string" ? item.error.slice(0, 1000) : undefined,
  });
}

/** An event the page recorded as a daemon event (`source: "browser"`), or null. */
export function shapeEvent(item, { serviceName, pageUrl }) {
  if (typeof item.message !== "string") return null;
  const metadata = cleanMetadata(item.metadata);
  if (pageUrl && metadata.page === undefined) metadata.page = redactUrl(pageUrl).slice(0, MAX_TEXT);
  const event = {
    timestamp: time(item.time),
    source: "browser",
    service: serviceName,
    level: LEVELS.has(item.level) ? item.level : "info",
    message: redactUrlsIn(item.message.slice(0, MAX_TEXT)),
    metadata,
    tags: Array.isArray(item.tags) ? item.tags.filter((t) => typeof t === "string").slice(0, 20) : [],
  };
  const traceId = hex(item.traceId, HEX32);
  const spanId = hex(item.spanId, HEX16);
  if (traceId) event.trace_id = traceId;
  if (traceId && spanId) event.span_id = spanId;
  if (typeof item.correlationId === "string" && item.correlationId) event.correlation_id = item.correlationId.slice(0, 256);
  return event;
}
