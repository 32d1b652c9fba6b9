import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULTS, pageConfig, PROBE_TTL_MS, probedFor, withDefaults } from "../lib/options.js";
import { anyValue, exportRequest, nanos, toOtlpSpan } from "../lib/otlp.js";
import { admit, chunk, emptyQueue, oldest, remove } from "../lib/queue.js";
import { REDACTED, redactUrl } from "../lib/redact.js";
import { redactUrlsIn, shapeEvent, shapeSpan } from "../lib/shape.js";
import { loadCore } from "./load-core.mjs";

test("secret query values and credentials are redacted, the rest kept", () => {
  assert.equal(redactUrl("http://h/p?q=shoes&token=abc&page=2"), `http://h/p?q=shoes&token=${REDACTED}&page=2`);
  assert.equal(redactUrl("http://h/p?api_key=1&X-Amz-Signature=2&access_token=3"), `http://h/p?api_key=${REDACTED}&X-Amz-Signature=${REDACTED}&access_token=${REDACTED}`);
  assert.equal(redactUrl("http://u:pw@h:8/p"), `http://${REDACTED}@h:8/p`);
  assert.equal(redactUrl("http://h/cb#access_token=t&state=s"), `http://h/cb#access_token=${REDACTED}&state=s`);
  assert.equal(redactUrl("http://h/p?password="), "http://h/p?password=");
  assert.equal(redactUrl("http://h/monkey?keyboard=1"), "http://h/monkey?keyboard=1");
  assert.equal(redactUrlsIn("GET http://h/a?sessionid=9 → 500"), `GET http://h/a?sessionid=${REDACTED} → 500`);
});

test("the queue keeps its bounds by dropping the oldest chunks, and counts them", () => {
  const limits = { maxItems: 10, maxBytes: 1000, chunkItems: 4, chunkBytes: 400 };
  let state = emptyQueue();
  const seqs = [];
  for (let i = 0; i < 4; i++) {
    const step = admit(state, i % 2 ? "span" : "event", 4, 100, limits);
    state = step.state;
    seqs.push(step.seq);
    if (i < 2) assert.deepEqual(step.evicted, []);
  }
  assert.deepEqual(state.chunks.map((c) => c.seq), seqs.slice(2));
  assert.equal(state.items, 8);
  assert.equal(state.dropped, 8);
  const big = admit(state, "event", 1, 900, limits);
  assert.deepEqual(big.evicted, [seqs[2]], "over the byte bound, the oldest chunk goes");
  assert.equal(big.state.bytes, 1000);
  assert.equal(big.state.dropped, 12);
});

test("chunks cut by count and size; an item larger than a chunk is counted out", () => {
  const { chunks, tooLarge } = chunk(["a", "b", "c", "d", "e", "huge"], [100, 100, 100, 100, 300, 500], { chunkItems: 3, chunkBytes: 400 });
  assert.deepEqual(chunks.map((c) => c.items), [["a", "b", "c"], ["d", "e"]]);
  assert.equal(tooLarge, 1);
});

test("delivery takes the oldest chunks of a kind, in order, and counts what was sent", () => {
  let state = emptyQueue();
  for (const kind of ["event", "span", "event", "event"]) state = admit(state, kind, 300, 10).state;
  const first = oldest(state, "event", 500);
  assert.deepEqual(first.map((c) => c.seq), [1]);
  assert.deepEqual(oldest(state, "event", 5000).map((c) => c.seq), [1, 3, 4]);
  state = remove(state, [1], { delivered: true });
  assert.deepEqual(state.sent, { events: 300, spans: 0 });
  state = remove(state, [2], { delivered: false });
  assert.equal(state.dropped, 300);
  assert.equal(state.items, 600);
});

test("OTLP JSON: nanosecond strings, typed attributes, kinds, error status", () => {
  assert.equal(nanos(1700000000123.456), "1700000000123456000");
  assert.deepEqual(anyValue(3), { intValue: "3" });
  assert.deepEqual(anyValue(0.5), { doubleValue: 0.5 });
  assert.deepEqual(anyValue(["a"]), { arrayValue: { values: [{ stringValue: "a" }] } });
  const span = toOtlpSpan({ traceId: "a".repeat(32), spanId: "b".repeat(16), parentSpanId: "c".repeat(16), name: "GET", kind: "client", start: 1000, end: 1002.5, attributes: { "http.response.status_code": 500 }, error: "HTTP 500" });
  assert.equal(span.kind, 3);
  assert.equal(span.endTimeUnixNano, "1002500000");
  assert.deepEqual(span.status, { code: 2, message: "HTTP 500" });
  const body = exportRequest([span], { serviceName: "browser", version: "1", userAgent: "UA" });
  const resource = Object.fromEntries(body.resourceSpans[0].resource.attributes.map((a) => [a.key, a.value.stringValue]));
  assert.equal(resource["service.name"], "browser");
  assert.equal(resource["telemetry.sdk.language"], "webjs");
});

test("page items are checked: bad ids refused, URLs redacted, levels bounded", () => {
  assert.equal(shapeSpan({ traceId: "xyz", spanId: "b".repeat(16), name: "x" }), null);
  const span = shapeSpan({ traceId: "a".repeat(32), spanId: "b".repeat(16), name: "GET", kind: "client", start: 1, end: 2, attributes: { "url.full": "http://h/?token=s" } });
  assert.deepEqual(span.attributes.find((a) => a.key === "url.full").value, { stringValue: `http://h/?token=${REDACTED}` });
  const event = shapeEvent({ message: "hi", level: "nonsense", traceId: "a".repeat(32), spanId: "b".repeat(16), metadata: { url: "http://h/?key=k", nested: { a: [1] } } }, { serviceName: "browser", pageUrl: "http://h/" });
  assert.equal(event.source, "browser");
  assert.equal(event.level, "info");
  assert.equal(event.trace_id, "a".repeat(32));
  assert.equal(event.metadata.url, `http://h/?key=${REDACTED}`);
  assert.deepEqual(event.metadata.nested, { a: [1] });
});

test("options: defaults fill gaps; the page config excludes the daemon and follows origins", () => {
  const core = loadCore();
  const o = withDefaults({ daemonUrl: "http://127.0.0.1:5555/", capture: { console: false }, origins: "nope" });
  assert.equal(o.daemonUrl, "http://127.0.0.1:5555");
  assert.equal(o.capture.console, false);
  assert.equal(o.capture.inputValues, false);
  assert.deepEqual(o.origins, DEFAULTS.origins);
  assert.equal(o.queueMaxItems, 10_000);
  assert.equal(withDefaults({ queueMaxItems: 50 }).queueMaxItems, 50);
  assert.equal(withDefaults({ queueMaxItems: 1 }).queueMaxItems, 10_000, "too small to be meant");
  const cfg = pageConfig(o, "http://localhost:3000", core);
  assert.equal(cfg.enabled, true);
  assert.deepEqual(cfg.daemon, ["loopback:5555", "loopback:4318"]);
  assert.equal(pageConfig(o, "http://127.0.0.1:5555", core).enabled, false, "the daemon's own page");
  assert.equal(pageConfig({ ...o, paused: true }, "http://localhost:3000", core).enabled, false);
  assert.equal(pageConfig({ ...o, origins: ["http://localhost:4000"] }, "http://localhost:3000", core).enabled, false);
});

test("probe answers reach only pages of the origin that learned them, while fresh", () => {
  const probes = {
    "http://localhost:3000 http://localhost:8000": { allowed: true, at: 1000 },
    "http://localhost:3000 http://localhost:9000": { allowed: false, at: 1000 },
    "http://localhost:4000 http://localhost:8000": { allowed: true, at: 1000 },
  };
  assert.deepEqual(probedFor(probes, "http://localhost:3000", 2000), { "http://localhost:8000": true, "http://localhost:9000": false });
  assert.deepEqual(probedFor(probes, "http://localhost:3000", 1000 + PROBE_TTL_MS), {});
});
