/**
 * Full-text query p50 over 100 000 short documents (8–16 words from a 5 000-word Zipfian
 * vocabulary, seeded), k = 10, two-word queries of mid-frequency words, through the plugin's
 * handle: SQLite (FTS5 sidecar), Postgres (impact-ordered postings with `simple`, the default;
 * tsvector + GIN with --language=english) and in process (memory tier). Also the time to index:
 * the catch-up at attach over datums stored without the plugin (the in-process index does this at
 * every start: that figure is why it is rebuilt rather than persisted), and the p50 of a single
 * `store.put` with the plugin attached (the datum and its index entry).
 *
 *   npx vite-node plugins/fulltext/bench-fulltext.mjs -- [--docs=100000] [--runs=300] [--tiers=memory,sqlite,postgres] [--language=simple]
 *
 * Postgres: the tests' throwaway cluster (test/harness/postgres.ts) unless DGENT_TEST_POSTGRES_URL names a server.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDatum } from "../../core/datum.ts";
import { createStore } from "../../core/store.ts";
import { dropSchema, freshSchema, startPostgres } from "../../test/harness/postgres.ts";
import { fulltextPlugin, textIndex } from "./index.ts";

// The tiers it measures are loaded by path at run time: this script is not part of the plugin (it
// stays out of dist), and plugins/ code does not import adapters/ (test/kernel.test.ts, layers).
const tier = (name) => import(new URL(`../../adapters/${name}/index.ts`, import.meta.url).href);
const { memoryAdapter } = await tier("memory");
const { sqliteAdapter } = await tier("sqlite");
const { postgresAdapter } = await tier("postgres");

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const DOCS = Number(arg("docs", 100_000));
const RUNS = Number(arg("runs", 300));
const TIERS = arg("tiers", "memory,sqlite,postgres").split(",");
const LANGUAGE = arg("language", "simple");

let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const VOCAB = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}x`);
// Zipf(1): word i with weight 1/(i+1).
const cdf = [];
let total = 0;
for (let i = 0; i < VOCAB.length; i++) cdf.push((total += 1 / (i + 1)));
const word = () => {
  const r = rand() * total;
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < r) lo = mid + 1;
    else hi = mid;
  }
  return VOCAB[lo];
};
const texts = Array.from({ length: DOCS }, () => Array.from({ length: 8 + Math.floor(rand() * 9) }, word).join(" "));
// Mid-frequency words (ranks 50–1000): each in ~0.1–2.5 % of the documents (a query matches ~1 000–5 000).
const queries = Array.from({ length: RUNS }, () => `${VOCAB[50 + Math.floor(rand() * 950)]} ${VOCAB[50 + Math.floor(rand() * 950)]}`);
// Rarer words (ranks 1000–5000): each in ~0.03–0.13 % (a query matches ~50–250), as names and topic words are.
const rare = Array.from({ length: RUNS }, () => `${VOCAB[1000 + Math.floor(rand() * 4000)]} ${VOCAB[1000 + Math.floor(rand() * 4000)]}`);
const datums = texts.map((content, i) => makeDatum({ id: `doc/${String(i).padStart(6, "0")}`, content, createdAt: 1_700_000_000_000 + i }));

const p = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)];
const dir = mkdtempSync(join(tmpdir(), "dgent-fulltext-bench-"));
let server = null;
const out = [];

async function run(name, make) {
  // Load the datums without the plugin, then attach: the catch-up indexes them all.
  const bare = make(false);
  for (let i = 0; i < datums.length; i += 5000) await bare.putMany(datums.slice(i, i + 5000));
  const store = name === "memory" ? bare : (await bare.close(), make(true));
  const t0 = performance.now();
  const text = name === "memory" ? await (async () => {
    // The memory tier cannot reopen: compose a second store over the same adapter is not possible, so attach a plugin on a fresh store fed the same datums.
    const s = createStore({ tiers: [memoryAdapter()], plugins: [fulltextPlugin({})] });
    for (let i = 0; i < datums.length; i += 5000) await s.putMany(datums.slice(i, i + 5000));
    return { s, h: null };
  })() : { s: store, h: await textIndex(store) };
  let handle = text.h;
  let indexMs = performance.now() - t0;
  if (name === "memory") {
    // Index at attach (the catch-up over 100k datums read as full pages).
    const t1 = performance.now();
    handle = await textIndex(text.s);
    indexMs = performance.now() - t1;
    await bare.close();
  }
  for (const q of queries.slice(0, 20)) await handle.search(q, { k: 10 }); // warm
  const ms = [];
  let hits = 0;
  for (const q of queries) {
    const s = performance.now();
    const r = await handle.search(q, { k: 10 });
    ms.push(performance.now() - s);
    hits += r.length;
  }
  const rareMs = [];
  for (const q of rare) {
    const s = performance.now();
    await handle.search(q, { k: 10 });
    rareMs.push(performance.now() - s);
  }
  const filtered = [];
  for (const q of queries.slice(0, 100)) {
    const s = performance.now();
    await handle.search(q, { k: 10, filter: { prefix: "doc/000" } }); // 1 % of the documents
    filtered.push(performance.now() - s);
  }
  const putMs = [];
  for (let i = 0; i < 200; i++) {
    const d = makeDatum({ id: `new/${String(i).padStart(4, "0")}`, content: texts[i], createdAt: 1_800_000_000_000 + i });
    const s = performance.now();
    await text.s.put(d);
    putMs.push(performance.now() - s);
  }
  const line = `${name.padEnd(9)} index ${(indexMs / 1000).toFixed(1)} s (${handle.stats().lastCatchUp?.indexed} docs) · query p50 ${p(ms, 0.5).toFixed(2)} ms p95 ${p(ms, 0.95).toFixed(2)} ms (mean ${(hits / queries.length).toFixed(1)} hits) · rarer words p50 ${p(rareMs, 0.5).toFixed(2)} ms · 1 % prefix filter p50 ${p(filtered, 0.5).toFixed(2)} ms · put p50 ${p(putMs, 0.5).toFixed(2)} ms`;
  console.log(line);
  out.push(line);
  await text.s.close();
}

try {
  console.log(`${DOCS} documents, ${RUNS} two-word queries, k = 10`);
  if (TIERS.includes("memory")) await run("memory", () => createStore({ tiers: [memoryAdapter()] }));
  if (TIERS.includes("sqlite")) {
    const path = join(dir, "bench.db");
    await run("sqlite", (withPlugin) => createStore({ tiers: [sqliteAdapter({ path })], plugins: withPlugin ? [fulltextPlugin({})] : [] }));
  }
  if (TIERS.includes("postgres")) {
    const url = process.env.DGENT_TEST_POSTGRES_URL ?? (server = await startPostgres()).url;
    const namespace = freshSchema("bench_fulltext");
    await run("postgres", (withPlugin) => createStore({ tiers: [postgresAdapter({ url, namespace })], plugins: withPlugin ? [fulltextPlugin({ postgresUrl: url, language: LANGUAGE })] : [] }));
    if (server) await dropSchema(server, namespace);
  }
} finally {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
}
