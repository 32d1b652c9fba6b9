// The pure logic the page's world needs: ids, traceparent, which requests get one, and
// bounded serialization of console arguments. A classic script, not a module, because
// content scripts cannot be modules: it hands its functions over on one global that
// page.js takes and deletes at once. The service worker imports it for its side effect,
// and test/core.test.mjs runs it in a node:vm context.
"use strict";
globalThis.__gasolineCore = (() => {
  const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);
  const ZERO_TRACE = "0".repeat(32);
  const ZERO_SPAN = "0".repeat(16);
  const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

  const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
  const BUF = { 8: new Uint8Array(8), 16: new Uint8Array(16) };

  function randomHex(bytes) {
    const buf = BUF[bytes];
    let hex;
    do {
      crypto.getRandomValues(buf);
      hex = "";
      for (let i = 0; i < bytes; i++) hex += HEX[buf[i]];
    } while (hex === "0".repeat(bytes * 2)); // an all-zero id is invalid in W3C trace context
    return hex;
  }

  /** {version, traceId, spanId, flags} of a W3C traceparent, or null if it is not one. */
  function parseTraceparent(value) {
    const m = TRACEPARENT.exec(String(value).trim().toLowerCase());
    if (!m || m[1] === "ff" || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return null;
    return { version: m[1], traceId: m[2], spanId: m[3], flags: m[4] };
  }

  function formatTraceparent(traceId, spanId, sampled = true) {
    return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
  }

  /** A test of an origin against patterns such as `http://localhost:*` (`*` is any run of
   * characters; a trailing `/` or `/*` is ignored, as users copy them from match patterns). */
  const matchers = new WeakMap(); // compiled once per list: decide() runs on every request

  function originMatcher(patterns) {
    const list = patterns || [];
    let matcher = matchers.get(list);
    if (!matcher) {
      matcher = compileMatcher(list);
      matchers.set(list, matcher);
    }
    return matcher;
  }

  function compileMatcher(patterns) {
    const compiled = patterns.map((p) => {
      const text = String(p).trim().replace(/\/\*?$/, "");
      const body = text.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
      return new RegExp(`^${body}$`, "i");
    });
    return (origin) => origin !== "null" && compiled.some((re) => re.test(origin));
  }

  /** `host:port` with the scheme's default port; loopback names are one host, since the
   * daemon on 127.0.0.1 is reached as localhost too. */
  function endpointKey(url) {
    const host = LOOPBACK.has(url.hostname) ? "loopback" : url.hostname;
    const port = url.port || (url.protocol === "https:" || url.protocol === "wss:" ? "443" : "80");
    return `${host}:${port}`;
  }

  /** What to do with a request from a page of `pageOrigin` to `url` (a URL object):
   *  "ignore"  -- not HTTP, or the daemon's own ports: neither header nor span;
   *  "inject"  -- same origin, an allowlisted target, or a loopback target whose CORS was
   *               seen to allow the header (`config.probed`): traceparent and a CLIENT span;
   *  "plain"   -- anything else (third party): a CLIENT span, no header, since a header
   *               would force a CORS preflight the target may refuse. */
  function decide(url, pageOrigin, config) {
    if (url.protocol !== "http:" && url.protocol !== "https:") return "ignore";
    if ((config.daemon || []).includes(endpointKey(url))) return "ignore";
    if (url.origin === pageOrigin) return "inject";
    if (originMatcher(config.targets)(url.origin)) return "inject";
    if (config.probed && config.probed[url.origin] === true && LOOPBACK.has(url.hostname)) return "inject";
    return "plain";
  }

  /** Whether to ask a cross-origin loopback target (the API of a dev setup, e.g. a page on
   * localhost:3000 calling localhost:8000) if its CORS allows `traceparent`: only when
   * nothing is known of it yet. Other hosts are never probed; they need the allowlist. */
  function needsProbe(url, pageOrigin, config) {
    return (
      decide(url, pageOrigin, config) === "plain" &&
      LOOPBACK.has(url.hostname) &&
      !(config.probed && url.origin in config.probed)
    );
  }

  const LIMITS = { depth: 3, keys: 20, items: 20, string: 1000, total: 4000 };

  /** A bounded text form of any value (console arguments, rejection reasons): strings as
   * they are, errors with their stack, objects as JSON-like text cut at `limits`. Never
   * throws, never calls a page getter twice, never walks a cycle. */
  function serialize(value, limits) {
    const lim = Object.assign({}, LIMITS, limits);
    const seen = new WeakSet();
    function cut(s, n) {
      return s.length > n ? `${s.slice(0, n)}…(${s.length - n} more)` : s;
    }
    function walk(v, depth) {
      if (v === null) return "null";
      switch (typeof v) {
        case "string":
          return depth === 0 ? cut(v, lim.string) : JSON.stringify(cut(v, lim.string));
        case "number":
        case "boolean":
        case "undefined":
          return String(v);
        case "bigint":
          return `${v}n`;
        case "symbol":
          return v.toString();
        case "function":
          return `[function ${v.name || "anonymous"}]`;
        default:
          break;
      }
      try {
        if (v instanceof Error || Object.prototype.toString.call(v) === "[object Error]") {
          const head = `${v.name}: ${v.message}`;
          return cut(v.stack && v.stack.includes(v.message) ? v.stack : `${head}\n${v.stack || ""}`, lim.string);
        }
        if (typeof Node !== "undefined" && v instanceof Node) return `[${v.nodeName.toLowerCase()}]`;
        if (seen.has(v)) return "[cycle]";
        if (depth >= lim.depth) return Array.isArray(v) ? "[…]" : "{…}";
        seen.add(v);
        if (Array.isArray(v)) {
          const parts = v.slice(0, lim.items).map((x) => walk(x, depth + 1));
          if (v.length > lim.items) parts.push(`…${v.length - lim.items} more`);
          return `[${parts.join(", ")}]`;
        }
        const keys = Object.keys(v);
        const parts = keys.slice(0, lim.keys).map((k) => `${JSON.stringify(k)}: ${walk(v[k], depth + 1)}`);
        if (keys.length > lim.keys) parts.push(`…${keys.length - lim.keys} more`);
        return `{${parts.join(", ")}}`;
      } catch (err) {
        return "[unserializable]";
      }
    }
    return cut(walk(value, 0), lim.total);
  }

  /** Console arguments as one message, as the console shows them (strings bare). */
  function consoleMessage(args, limits) {
    const lim = Object.assign({}, LIMITS, limits);
    const text = Array.from(args, (a) => serialize(a, lim)).join(" ");
    return text.length > lim.total ? `${text.slice(0, lim.total)}…` : text;
  }

  return {
    consoleMessage,
    decide,
    endpointKey,
    formatTraceparent,
    needsProbe,
    newSpanId: () => randomHex(8),
    newTraceId: () => randomHex(16),
    originMatcher,
    parseTraceparent,
    serialize,
  };
})();
