// OTLP/HTTP JSON for the spans the page recorded (the protobuf JSON mapping: ids as hex,
// times as decimal strings of nanoseconds, 64-bit integers as strings).

export const SPAN_KIND = Object.freeze({ internal: 1, server: 2, client: 3, producer: 4, consumer: 5 });
const STATUS_ERROR = 2;

/** Epoch milliseconds (fractional) as OTLP's nanosecond string. */
export function nanos(ms) {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

/** An OTLP AnyValue. */
export function anyValue(v) {
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  return { stringValue: String(v) };
}

export function attributes(obj) {
  return Object.entries(obj)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** One OTLP span from a span the page recorded. */
export function toOtlpSpan(s) {
  const span = {
    traceId: s.traceId,
    spanId: s.spanId,
    name: s.name,
    kind: SPAN_KIND[s.kind] || SPAN_KIND.internal,
    startTimeUnixNano: nanos(s.start),
    endTimeUnixNano: nanos(Math.max(s.end, s.start)),
    attributes: attributes(s.attributes || {}),
  };
  if (s.parentSpanId) span.parentSpanId = s.parentSpanId;
  if (s.error) span.status = { code: STATUS_ERROR, message: String(s.error) };
  return span;
}

/** The export request for `spans` (already OTLP spans) from one browser. */
export function exportRequest(spans, { serviceName, version, userAgent }) {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: attributes({
            "service.name": serviceName,
            "telemetry.sdk.language": "webjs",
            "telemetry.sdk.name": "gasoline-extension",
            "telemetry.sdk.version": version,
            "user_agent.original": userAgent,
          }),
        },
        scopeSpans: [{ scope: { name: "gasoline-extension", version }, spans }],
      },
    ],
  };
}
