// The bookkeeping of the persisted delivery queue, pure so it can be tested: the worker
// stores each chunk of items under its own key and this state (which chunks, in order,
// how many items and bytes) beside them. Beyond the bounds the oldest chunks go, counted.

export const LIMITS = Object.freeze({ maxItems: 10_000, maxBytes: 5 * 1024 * 1024, chunkItems: 200, chunkBytes: 256 * 1024 });

export function emptyQueue() {
  return { next: 1, chunks: [], items: 0, bytes: 0, dropped: 0, sent: { events: 0, spans: 0 } };
}

/** Items (each with its serialized size) cut into chunks of at most `chunkItems` items and
 * `chunkBytes` bytes, in order. An item larger than a chunk is left out and counted. */
export function chunk(items, sizes, limits = LIMITS) {
  const chunks = [];
  let cur = [];
  let bytes = 0;
  let tooLarge = 0;
  items.forEach((item, i) => {
    const size = sizes[i];
    if (size > limits.chunkBytes) {
      tooLarge++;
      return;
    }
    if (cur.length && (cur.length >= limits.chunkItems || bytes + size > limits.chunkBytes)) {
      chunks.push({ items: cur, bytes });
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += size;
  });
  if (cur.length) chunks.push({ items: cur, bytes });
  return { chunks, tooLarge };
}

/** Appends a chunk of `count` items and `bytes` bytes of one `kind`; returns the new state,
 * the new chunk's sequence number and the chunks evicted (oldest first) to stay in bounds. */
export function admit(state, kind, count, bytes, limits = LIMITS) {
  const seq = state.next;
  const chunks = [...state.chunks, { seq, kind, count, bytes }];
  let items = state.items + count;
  let total = state.bytes + bytes;
  let dropped = state.dropped;
  const evicted = [];
  while (chunks.length > 1 && (items > limits.maxItems || total > limits.maxBytes)) {
    const old = chunks.shift();
    evicted.push(old.seq);
    items -= old.count;
    total -= old.bytes;
    dropped += old.count;
  }
  return { state: { ...state, next: seq + 1, chunks, items, bytes: total, dropped }, seq, evicted };
}

/** The oldest chunks of `kind`, in order, up to about `maxItems` items (at least one). */
export function oldest(state, kind, maxItems) {
  const out = [];
  let n = 0;
  for (const c of state.chunks) {
    if (c.kind !== kind) continue;
    if (out.length && n + c.count > maxItems) break;
    out.push(c);
    n += c.count;
  }
  return out;
}

/** The state without the chunks `seqs`: delivered (counted as sent) or refused by the
 * daemon for good (counted as dropped). */
export function remove(state, seqs, { delivered }) {
  const gone = new Set(seqs);
  const kept = state.chunks.filter((c) => !gone.has(c.seq));
  const removed = state.chunks.filter((c) => gone.has(c.seq));
  const count = removed.reduce((n, c) => n + c.count, 0);
  const sent = { ...state.sent };
  let dropped = state.dropped;
  if (delivered) {
    for (const c of removed) sent[c.kind === "span" ? "spans" : "events"] += c.count;
  } else {
    dropped += count;
  }
  return {
    ...state,
    chunks: kept,
    items: state.items - count,
    bytes: state.bytes - removed.reduce((n, c) => n + c.bytes, 0),
    dropped,
    sent,
  };
}
