/**
 * Diagnosis: list(100) on the object-store tiers when many datums share one `createdAt` (a burst
 * made in one millisecond, e.g. a putMany of datums made in a loop) against distinct timestamps.
 * Prints p50 and the requests one list made.
 *
 *   npx vite-node benchmarks/diagnose/object-store-ties.ts
 */
import { randomBytes } from "node:crypto";
import type { Datum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { gcsAdapter } from "../../adapters/gcs/index.js";
import { s3Adapter } from "../../adapters/s3/index.js";
import { compare } from "../measure.js";
import { gcsServer, s3Server } from "../servers.js";
import { benchDatum } from "../workload.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const N = 300;
const tied = (t: number): Datum[] => Array.from({ length: N }, (_, i) => benchDatum(i, null, t));
const distinct = (t: number): Datum[] => Array.from({ length: N }, (_, i) => benchDatum(i, null, t + i));

async function load(store: ReturnType<typeof createStore>, ds: Datum[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < ds.length) await store.put(ds[next++] as Datum);
  }));
}

const plan = { budgetMs: 3000, warmupMs: 300, minWarmup: 2, minSamples: 8, maxSamples: 40, rounds: 2 };

{
  const server = await s3Server();
  await server.createBucket("ties");
  const make = () => createStore({ tiers: [s3Adapter({ ...server.clientOptions, bucket: "ties", namespace: `n-${randomBytes(4).toString("hex")}` })] });
  const a = make();
  const b = make();
  await load(a, tied(Date.now()));
  await load(b, distinct(Date.now() - N));
  for (const [name, s] of [["tied", a], ["distinct", b]] as const) {
    await server.resetStats();
    await s.list({ limit: 100 });
    console.log(`s3 list(100), ${N} datums ${name}: requests`, JSON.stringify((await server.stats()).byOp));
  }
  const r = await compare([
    { name: "s3 tied", args: (n) => new Array(n).fill(100), run: () => a.list({ limit: 100 }) },
    { name: "s3 distinct", args: (n) => new Array(n).fill(100), run: () => b.list({ limit: 100 }) },
  ], plan);
  for (const [k, v] of r) console.log(k.padEnd(14), (v.p50 / 1000).toFixed(1), "ms p50");
  await a.close();
  await b.close();
  await server.stop();
}
{
  const emulator = await gcsServer();
  emulator.createBucket("ties");
  const make = () => createStore({ tiers: [gcsAdapter({ apiEndpoint: emulator.url, projectId: "t", bucket: "ties", namespace: `n-${randomBytes(4).toString("hex")}` })] });
  const a = make();
  const b = make();
  await load(a, tied(Date.now()));
  await load(b, distinct(Date.now() - N));
  for (const [name, s] of [["tied", a], ["distinct", b]] as const) {
    emulator.resetStats();
    await s.list({ limit: 100 });
    console.log(`gcs list(100), ${N} datums ${name}: requests`, JSON.stringify(emulator.stats().byOp));
  }
  const r = await compare([
    { name: "gcs tied", args: (n) => new Array(n).fill(100), run: () => a.list({ limit: 100 }) },
    { name: "gcs distinct", args: (n) => new Array(n).fill(100), run: () => b.list({ limit: 100 }) },
  ], plan);
  for (const [k, v] of r) console.log(k.padEnd(14), (v.p50 / 1000).toFixed(1), "ms p50");
  await a.close();
  await b.close();
  await emulator.stop();
}
