// Event stream figures (issue: agent patterns, "Speed"): append against a plain put of the same
// datum, the state at the end of a long stream rebuilt from its latest snapshot, and fold
// throughput against a plain loop over the same events.
//
//   npm run build && node patterns/events/bench.mjs [events=1000000] [sqliteEvents=100000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, memoryAdapter } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { eventStream } from "dgent/patterns";

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const SQLITE_EVENTS = Number(process.argv[3] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "dgent-events-bench-"));
const reducer = (s, e) => ({ total: s.total + e.n, count: s.count + 1 });
const initial = { total: 0, count: 0 };
const p50 = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (ms) => `${(ms * 1000).toFixed(1)} µs`;

async function appendVsPut(label, open, n) {
  const plain = open("plain");
  const stream = eventStream(open("stream"), { name: "bench", reducer, initial, snapshotEvery: Infinity });
  const put = [];
  const app = [];
  for (let i = 0; i < n; i++) {
    const id = `stream/plain/e/${String(i + 1).padStart(12, "0")}`;
    const datum = { id, content: new TextEncoder().encode(JSON.stringify({ n: i })), createdAt: Date.now(), causalParent: i ? `stream/plain/e/${String(i).padStart(12, "0")}` : null, metadata: { stream: "plain", seq: String(i + 1), "dgent.codec": "json" } };
    let t = performance.now();
    await plain.put(datum);
    put.push(performance.now() - t);
    t = performance.now();
    await stream.append({ n: i });
    app.push(performance.now() - t);
  }
  console.log(`${label}: append p50 ${us(p50(app))} vs put p50 ${us(p50(put))}: ${(p50(app) / p50(put)).toFixed(2)}× (${n} each, interleaved)`);
}

/** `n − 1` events: the end sits 999 events past the latest snapshot (the worst case for snapshotEvery 1000). */
async function rebuild(label, store, total) {
  const n = total - 1;
  const stream = eventStream(store, { name: "long", reducer, initial, snapshotEvery: 1000 });
  const t0 = performance.now();
  const batch = 10_000;
  for (let i = 0; i < n; i += batch) await stream.append(Array.from({ length: Math.min(batch, n - i) }, (_, k) => ({ n: i + k })));
  const loadS = (performance.now() - t0) / 1000;
  const times = [];
  let state;
  for (let r = 0; r < 20; r++) {
    const fresh = eventStream(store, { name: "long", reducer, initial, snapshotEvery: 1000 });
    const t = performance.now();
    state = await fresh.state();
    times.push(performance.now() - t);
  }
  if (state.count !== n) throw new Error(`state counted ${state.count}, expected ${n}`);
  console.log(`${label}: state at the end of a ${n.toLocaleString("en")}-event stream from its latest snapshot: p50 ${p50(times).toFixed(2)} ms (built in ${loadS.toFixed(0)} s)`);
  // Fold throughput: the stream's replay + reduce over the last 100k events, against a plain loop.
  const m = Math.min(n, 100_000);
  const events = Array.from({ length: m }, (_, i) => ({ n: n - m + i }));
  let t = performance.now();
  let s = initial;
  for (const e of events) s = reducer(s, e);
  const plainRate = m / ((performance.now() - t) / 1000);
  t = performance.now();
  let folded = initial;
  for await (const e of stream.replay({ from: n - m + 1 })) folded = reducer(folded, e.event);
  const streamRate = m / ((performance.now() - t) / 1000);
  console.log(`${label}: fold ${Math.round(streamRate).toLocaleString("en")} events/s through replay vs ${Math.round(plainRate).toLocaleString("en")} events/s in a plain loop over the same events in memory`);
}

try {
  await appendVsPut("memory", () => createStore({ tiers: [memoryAdapter()] }), 20_000);
  let k = 0;
  await appendVsPut("sqlite", () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `a${k++}.db`) })] }), 3_000);
  await rebuild("memory", createStore({ tiers: [memoryAdapter()] }), EVENTS);
  await rebuild("sqlite", createStore({ tiers: [sqliteAdapter({ path: join(dir, "long.db") })] }), SQLITE_EVENTS);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
