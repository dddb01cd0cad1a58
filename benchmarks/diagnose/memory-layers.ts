/**
 * Diagnosis: where a memory-tier get and put spend their time, layer by layer — the copy a get
 * must make (Map.get + cloneDatum), the adapter alone, the store around it — measured
 * interleaved with the benchmark's sampler (batches of 10 calls).
 *
 *   npx vite-node benchmarks/diagnose/memory-layers.ts
 */
import { assertDatum, assertId, cloneDatum, type Datum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { compare, type Subject } from "../measure.js";
import { cycling, freshDatums, makePrefill } from "../workload.js";

const prefill = makePrefill(10_000);
const store = createStore({ tiers: [memoryAdapter()] });
await store.open();
await store.putMany(prefill.datums);
const adapter = memoryAdapter();
await adapter.open();
await adapter.putMany?.(prefill.datums);
// A second adapter for the fast-path estimate of put: two subjects writing into one adapter would
// interleave their (differently timed) datums, i.e. insert out of time order, which is O(n).
const adapter2 = memoryAdapter();
await adapter2.open();
await adapter2.putMany?.(prefill.datums);
const map = new Map(prefill.datums.map((d) => [d.id, cloneDatum(d)]));
const plan = { budgetMs: 800, warmupMs: 200, minWarmup: 1000, minSamples: 100, maxSamples: 20_000, rounds: 4 };

const get = (name: string, run: (id: string) => unknown): Subject<unknown> => ({ name, args: cycling(prefill.getIds), run: (id) => run(id as string) });
const reads = await compare(
  [
    get("assertId", (id) => assertId(id)),
    get("Map.get", (id) => map.get(id)),
    get("Map.get + cloneDatum", (id) => cloneDatum(map.get(id) as Datum)),
    get("adapter.get", (id) => adapter.get(id)),
    // What the proposed store fast path would cost: validation, then the adapter's promise.
    get("assertId + adapter.get", (id) => {
      assertId(id);
      return adapter.get(id);
    }),
    get("store.get", (id) => store.get(id)),
  ],
  plan,
);
for (const [k, v] of reads) console.log(`get  ${k.padEnd(22)} p50 ${v.p50.toFixed(3)} µs`);

const put = (name: string, run: (d: Datum) => unknown): Subject<unknown> => ({ name, args: freshDatums, run: (d) => run(d as Datum) });
const writes = await compare(
  [
    put("assertDatum", (d) => assertDatum(d)),
    put("cloneDatum + Map.set", (d) => void map.set(d.id, cloneDatum(d))),
    put("adapter.put", (d) => adapter.put(d)),
    put("assertDatum + adapter.put", (d) => {
      assertDatum(d);
      return adapter2.put(d);
    }),
    put("store.put", (d) => store.put(d)),
  ],
  { ...plan, maxCalls: 200_000 },
);
for (const [k, v] of writes) console.log(`put  ${k.padEnd(22)} p50 ${v.p50.toFixed(3)} µs`);
await store.close();
await adapter.close();
await adapter2.close();
