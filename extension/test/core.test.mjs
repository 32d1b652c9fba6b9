import assert from "node:assert/strict";
import { test } from "node:test";
import { loadCore } from "./load-core.mjs";

const core = loadCore();
const config = { targets: ["http://localhost:8000"], daemon: ["loopback:7890", "loopback:4318"] };
const page = "http://localhost:3000";

test("ids are random hex of the W3C sizes, never all zero", () => {
  const ids = new Set(Array.from({ length: 100 }, () => core.newTraceId()));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.match(core.newSpanId(), /^[0-9a-f]{16}$/);
});

test("a traceparent round-trips; invalid ones are refused", () => {
  const t = core.newTraceId();
  const s = core.newSpanId();
  const parsed = core.parseTraceparent(core.formatTraceparent(t, s));
  assert.equal(parsed.traceId, t);
  assert.equal(parsed.spanId, s);
  assert.equal(parsed.flags, "01");
  for (const bad of ["", "00-abc-def-01", `00-${"0".repeat(32)}-${s}-01`, `00-${t}-${"0".repeat(16)}-01`, `ff-${t}-${s}-01`]) {
    assert.equal(core.parseTraceparent(bad), null, bad);
  }
});

test("same origin and allowlisted targets get a traceparent; third parties do not", () => {
  const at = (u) => core.decide(new URL(u), page, config);
  assert.equal(at("http://localhost:3000/api/cart"), "inject");
  assert.equal(at("http://localhost:8000/api"), "inject");
  assert.equal(at("http://127.0.0.1:3000/api"), "plain"); // another origin
  assert.equal(at("https://api.example.com/x"), "plain");
  assert.equal(at("http://localhost:8001/x"), "plain");
});

test("the daemon's own ports are left alone, by any loopback name", () => {
  const at = (u) => core.decide(new URL(u), page, config);
  assert.equal(at("http://127.0.0.1:4318/v1/traces"), "ignore");
  assert.equal(at("http://localhost:7890/events"), "ignore");
  assert.equal(at("http://[::1]:7890/events"), "ignore");
  assert.equal(at("data:text/plain,hi"), "ignore");
  // the daemon's page itself is an origin like any other, and still never traced
  assert.equal(core.decide(new URL("http://127.0.0.1:7890/v1/traces"), "http://127.0.0.1:7890", config), "ignore");
});

test("origin patterns take * and ignore a trailing /*", () => {
  const m = core.originMatcher(["http://localhost:*", "https://app.test/*"]);
  assert.ok(m("http://localhost:3000"));
  assert.ok(m("https://app.test"));
  assert.ok(!m("http://localhost.evil.test"));
  assert.ok(!m("null"));
  assert.ok(!m("http://127.0.0.1:3000"));
});

test("serialize bounds depth, keys, strings and total, and survives cycles", () => {
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  assert.equal(core.serialize(cyclic), '{"a": 1, "self": [cycle]}');
  assert.equal(core.serialize({ a: { b: { c: { d: 1 } } } }), '{"a": {"b": {"c": {…}}}}');
  const wide = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
  assert.match(core.serialize(wide), /…10 more}$/);
  assert.ok(core.serialize("x".repeat(5000)).length < 1100);
  assert.ok(core.serialize(Array.from({ length: 1000 }, () => "y".repeat(900))).length <= 4000 + 20);
  const err = new Error("boom");
  assert.match(core.serialize(err), /^Error: boom/);
  const hostile = { get x() { throw new Error("getter"); } };
  assert.equal(core.serialize(hostile), "[unserializable]");
  assert.equal(core.consoleMessage(["total", 3, { ok: false }]), 'total 3 {"ok": false}');
});

test("a cross-origin loopback target is probed once, and gets the header if it allowed it", () => {
  const api = new URL("http://localhost:8000/api");
  const cfg = { targets: [], daemon: ["loopback:7890"] };
  assert.equal(core.decide(api, page, cfg), "plain");
  assert.ok(core.needsProbe(api, page, cfg));
  assert.ok(!core.needsProbe(new URL("https://api.example.com/x"), page, cfg), "never a third party");
  assert.ok(!core.needsProbe(new URL("http://localhost:3000/x"), page, cfg), "same origin needs none");
  assert.ok(!core.needsProbe(new URL("http://127.0.0.1:7890/events"), page, cfg), "nor the daemon");
  const allowed = { ...cfg, probed: { "http://localhost:8000": true } };
  assert.equal(core.decide(api, page, allowed), "inject");
  assert.ok(!core.needsProbe(api, page, allowed));
  const refused = { ...cfg, probed: { "http://localhost:8000": false } };
  assert.equal(core.decide(api, page, refused), "plain");
  assert.ok(!core.needsProbe(api, page, refused));
  assert.equal(core.decide(new URL("https://evil.test/"), page, { ...cfg, probed: { "https://evil.test": true } }), "plain");
  assert.match(core.formatTraceparent("a".repeat(32), "b".repeat(16), false), /-00$/);
});
