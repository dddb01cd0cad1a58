/**
 * What queries cost on the object-store tiers, at the test servers (s3rver with the harness
 * middleware, and the GCS emulator): requests counted by the server, and p50 of interleaved
 * rounds. Data is written straight into the servers' storage, as `put` lays it out.
 *
 *   npx vite-node adapters/object-store/measure-queries.mjs [datums=10000] [chain=100000] [only] [rounds=7]
 *
 * `only` keeps the cases whose label contains it (e.g. "chain").
 *
 * Not part of the build or the tests (an .mjs file beside the code it measures).
 */
import { performance } from "node:perf_hooks";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { gcsAdapter } from "../gcs/index.js";
import { s3Adapter } from "../s3/index.js";
import { encodeEnvelope } from "./envelope.js";
import { startGcsEmulator } from "../../test/harness/gcs-emulator.js";
import { startS3 } from "../../test/harness/s3.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const N = Number(process.argv[2] ?? 10_000);
const CHAIN = Number(process.argv[3] ?? 100_000);
const T = 1_700_000_000_000;
const TOPICS = Array.from({ length: 20 }, (_, k) => `t${String(k).padStart(2, "0")}`);
const CONTENT = new Uint8Array(1024).fill(97);
const ONLY = process.argv[4] ?? "";
const ROUNDS = Number(process.argv[5] ?? 7);

const datum = (i) => makeDatum({ id: `q/${String(i).padStart(6, "0")}`, content: CONTENT, createdAt: T + i, metadata: { topic: TOPICS[i % 20], role: ["user", "assistant", "tool"][i % 3] } });
const link = (name, i) => makeDatum({ id: `${name}/${i}`, content: CONTENT, createdAt: T + i, causalParent: i === 0 ? null : `${name}/${i - 1}` });

async function measureTier(name, tier) {
  const adapter = tier.adapter("m");
  await adapter.open();
  const layout = adapter.layout;
  const objects = [];
  for (let i = 0; i < N; i++) {
    const d = datum(i);
    objects.push({ key: layout.dataKey(d.id), body: encodeEnvelope(d) });
    for (const key of layout.markerKeys(d.id, d.createdAt)) objects.push({ key, body: new Uint8Array([1]) });
  }
  // Chains need only their datum objects: chainTail walks parents with GETs.
  for (let i = 0; i < CHAIN; i++) objects.push({ key: layout.dataKey(`long/${i}`), body: encodeEnvelope(link("long", i)) });
  for (let i = 0; i < 20; i++) objects.push({ key: layout.dataKey(`short/${i}`), body: encodeEnvelope(link("short", i)) });
  const started = performance.now();
  await tier.bulk(objects);
  console.log(`${name}: ${N} datums (20 topics) and chains of ${CHAIN} and 20 written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await adapter.close();
  const store = createStore({ tiers: [tier.adapter("m")] });
  await store.open();
  const secondPage = (await store.query({ prefix: "q/", order: "oldest", limit: 100, select: "ids" })).cursor;

  const cases = [
    ["query where topic, limit 100 (full)", () => store.query({ where: { topic: "t07" }, limit: 100 })],
    ["query where topic, limit 100 (ids)", () => store.query({ where: { topic: "t07" }, limit: 100, select: "ids" })],
    ["query prefix, limit 100 (no tag filter)", () => store.query({ prefix: "q/", limit: 100 })],
    ["query oldest, limit 100, 1st page", () => store.query({ prefix: "q/", order: "oldest", limit: 100, select: "ids" })],
    ["query oldest, limit 100, 2nd page", () => store.query({ prefix: "q/", order: "oldest", limit: 100, select: "ids", cursor: secondPage })],
    ["chain tail 20 of a 20-long chain", () => store.causalChain("short/19", { tail: 20 })],
    [`chain tail 20 of a ${CHAIN}-long chain`, () => store.causalChain(`long/${CHAIN - 1}`, { tail: 20 })],
    ["getMany 100 ids", () => store.getMany(Array.from({ length: 100 }, (_, i) => `q/${String(i * 37).padStart(6, "0")}`))],
    ["100 gets one after another", async () => {
      for (let i = 0; i < 100; i++) await store.get(`q/${String(i * 37).padStart(6, "0")}`);
    }],
  ];
  const once = [
    ["count where topic (reads every envelope)", () => store.count({ where: { topic: "t07" } })],
    ["no queries: list everything, filter in JS", async () => (await store.list({ limit: 100_000 })).filter((d) => d.metadata.topic === "t07").slice(0, 100)],
  ];
  const keep = ([label]) => label.includes(ONLY);
  cases.splice(0, cases.length, ...cases.filter(keep));
  once.splice(0, once.length, ...once.filter(keep));
  const rows = [];
  for (const [label, run] of [...cases, ...once]) {
    await tier.reset();
    await run();
    rows.push({ label, requests: await tier.requests(), times: [] });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, [, run]] of cases.entries()) {
      const t0 = performance.now();
      await run();
      rows[k].times.push(performance.now() - t0);
    }
  }
  for (const [k, [, run]] of once.entries()) {
    const t0 = performance.now();
    await run();
    rows[cases.length + k].times.push(performance.now() - t0);
  }
  for (const r of rows) {
    const sorted = [...r.times].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    console.log(`${name} | ${r.label} | ${p50.toFixed(1)} ms (${r.times.length === 1 ? "once" : `p50 of ${r.times.length}`}) | ${JSON.stringify(r.requests)}`);
  }
  await store.close();
}

{
  const server = await startS3();
  await server.createBucket("measure");
  try {
    await measureTier("s3", {
      adapter: (ns) => s3Adapter({ ...server.clientOptions, bucket: "measure", namespace: ns }),
      bulk: async (objects) => {
        for (let i = 0; i < objects.length; i += 5000) await server.bulk("measure", objects.slice(i, i + 5000));
      },
      reset: () => server.resetStats(),
      requests: async () => (await server.stats()).byOp,
    });
  } finally {
    await server.stop();
  }
}
{
  const emulator = await startGcsEmulator();
  emulator.createBucket("measure");
  try {
    await measureTier("gcs", {
      adapter: (ns) => gcsAdapter({ apiEndpoint: emulator.url, projectId: "m", bucket: "measure", namespace: ns }),
      bulk: async (objects) => {
        for (const o of objects) emulator.putObject("measure", o.key, o.body);
      },
      reset: async () => emulator.resetStats(),
      requests: async () => emulator.stats().byOp,
    });
  } finally {
    await emulator.stop();
  }
}
