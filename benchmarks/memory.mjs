/**
 * Memory per datum, and a soak (issue 23, part 6).
 *
 * 1. **Bytes per datum at N** (default 1 000 000): each contender loads N datums of `--bytes`
 *    (default 1 024) in a process of its own (`node --expose-gc`), and the process reports what
 *    its heap and buffers grew by, after a full collection, divided by N:
 *    - `raw Map`: a `Map` from id to the same datum object (the caller's Buffer kept): the floor
 *      of holding the data in JavaScript at all;
 *    - `memory`: `memoryAdapter()` (copies in and out), through a store;
 *    - `memory, copy: false`: the zero-copy tier, through a store;
 *    - `jsonl index`: a store on a JSONL log of N datums, reopened: what its in-memory index
 *      holds per datum (contents stay in the file);
 *    - `sqlite`: a store on a SQLite file of N datums, reopened and read (a `get` of every
 *      1 000th id and a list): what dgent keeps in JavaScript per datum (SQLite's page cache is
 *      not on the JS heap; its RSS is reported beside).
 *    The datums are built in the child from a seed, so the parent holds none.
 * 2. **Soak** (`--soak=SECONDS`, default 600; `--soak=0` skips it), in a process of its own: 16 concurrent callers on one
 *    SQLite store doing mixed operations (50 % get of a live id, 15 % put of a new 1 KiB datum,
 *    15 % delete of the oldest live one — about 10 000 stay live —, 10 % list(100), 10 % filtered query) for that long; every 10 s the process records RSS, heap
 *    and the interval's p50/p99 latency. Reported: growth of RSS and heap from the end of the
 *    warm-up (the first fifth) to the end — goal ≤ 5 % — and how p99 moves across intervals.
 *
 *   npm run build && node benchmarks/memory.mjs [--n=1000000] [--bytes=1024] [--soak=600] [--only=perdatum|soak|render]
 *
 * `--only=perdatum` or `--only=soak` runs one part and keeps the other's results from the file;
 * `--only=render` writes the Markdown again from results/memory.json.
 *
 * Writes benchmarks/results/memory.{json,md}.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
};
const N = Number(arg("n", 1_000_000));
const BYTES = Number(arg("bytes", 1024));
const SOAK_S = Number(arg("soak", 600));
const ONLY = arg("only", "");
const CHILD = arg("child", "");
const here = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------- the children
if (CHILD === "soak") {
  process.stdout.write(JSON.stringify(await soak(SOAK_S)));
  process.exit(0);
}
if (CHILD !== "") {
  const { createStore } = await import("dgent");
  const { memoryAdapter } = await import("dgent/adapters/memory");
  const { jsonlAdapter } = await import("dgent/adapters/jsonl");
  const { sqliteAdapter } = await import("dgent/adapters/sqlite");
  const dir = arg("dir", "");
  const gc = globalThis.gc;
  const settle = () => {
    for (let i = 0; i < 4; i++) gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
  };
  /** Datum i, the same in every process: a 1 KiB content filled from i, a tag, a parent every other one. */
  const datum = (i) => {
    const content = Buffer.allocUnsafe(BYTES);
    content.fill(i % 251);
    content.writeUInt32BE(i, 0);
    return { id: `m/${String(i).padStart(8, "0")}`, content, createdAt: 1_700_000_000_000 + i, causalParent: i % 2 === 1 ? `m/${String(i - 1).padStart(8, "0")}` : null, metadata: { kind: i % 20 === 0 ? "tool" : "msg" } };
  };
  const loadInto = async (store) => {
    for (let i = 0; i < N; i += 5000) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 5000); j++) batch.push(datum(j));
      await store.putMany(batch);
    }
  };
  const before = settle();
  let keep;
  if (CHILD === "raw") {
    const map = new Map();
    for (let i = 0; i < N; i++) {
      const d = datum(i);
      map.set(d.id, d);
    }
    keep = map;
  } else if (CHILD === "memory" || CHILD === "memory-nocopy") {
    const store = createStore({ tiers: [memoryAdapter(CHILD === "memory" ? {} : { copy: false })], upgrader: false });
    await store.open();
    await loadInto(store);
    keep = store;
  } else if (CHILD === "jsonl-load" || CHILD === "sqlite-load") {
    // Writes the file the next child reopens; reports nothing.
    const tier = CHILD === "jsonl-load" ? jsonlAdapter({ path: join(dir, "m.jsonl"), durability: "none" }) : sqliteAdapter({ path: join(dir, "m.db") });
    const store = createStore({ tiers: [tier], upgrader: false });
    await store.open();
    await loadInto(store);
    await store.close();
    process.stdout.write(JSON.stringify({ loaded: N }));
    process.exit(0);
  } else if (CHILD === "jsonl" || CHILD === "sqlite") {
    const tier = CHILD === "jsonl" ? jsonlAdapter({ path: join(dir, "m.jsonl"), durability: "none" }) : sqliteAdapter({ path: join(dir, "m.db") });
    const store = createStore({ tiers: [tier], upgrader: false });
    await store.open();
    for (let i = 0; i < N; i += 1000) if ((await store.get(datum(i).id)) === null) throw new Error(`${CHILD}: datum ${i} missing`);
    await store.list({ limit: 100 });
    keep = store;
  } else throw new Error(`unknown contender ${CHILD}`);
  const after = settle();
  if (keep === undefined) throw new Error("nothing kept");
  const grown = (k) => (after[k] - before[k]) / N;
  process.stdout.write(JSON.stringify({ heapPerDatum: grown("heap"), externalPerDatum: grown("external"), arrayBuffersPerDatum: grown("arrayBuffers"), rssPerDatum: grown("rss"), rssMiB: after.rss / 2 ** 20 }));
  process.exit(0);
}

// ---------------------------------------------------------------- the soak (in this process)
async function soak(seconds) {
  const { createStore } = await import("dgent");
  const { sqliteAdapter } = await import("dgent/adapters/sqlite");
  const dir = mkdtempSync(join(tmpdir(), "dgent-soak-"));
  const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "soak.db") })], upgrader: false });
  await store.open();
  // Ids are derived from a counter (no array of them), so the soak itself holds nothing that grows.
  const idOf = (i) => `s/${String(i).padStart(9, "0")}`;
  let next = 0;
  let oldest = 0;
  const fresh = () => {
    const i = next++;
    const content = Buffer.allocUnsafe(BYTES);
    content.fill(i % 251);
    return { id: idOf(i), content, createdAt: Date.now(), causalParent: null, metadata: { kind: i % 20 === 0 ? "tool" : "msg", thread: `t${i % 50}` } };
  };
  for (let i = 0; i < 10_000; i++) await store.put(fresh());
  let lat = [];
  const samples = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  let ops = 0;
  const caller = async () => {
    while (performance.now() < end) {
      const r = Math.random();
      const t = performance.now();
      // A sliding window of about 10 000 live datums: each put is matched by a delete of the
      // oldest, so what the process holds should level off after the warm-up.
      if (r < 0.5) await store.get(idOf(oldest + Math.floor(Math.random() * (next - oldest))));
      else if (r < 0.65) await store.put(fresh());
      else if (r < 0.8) {
        if (next - oldest > 10_000) await store.delete(idOf(oldest++));
      } else if (r < 0.9) await store.list({ limit: 100 });
      else await store.query({ where: { thread: `t${Math.floor(Math.random() * 50)}` }, limit: 100 });
      const now = performance.now();
      lat.push(now - t);
      if (++ops % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (now >= sampleAt) {
        sampleAt += 10_000;
        sample();
      }
    }
  };
  // Sampled from the callers' loop (a timer would wait: SQLite's calls are synchronous, so the
  // callers' loop runs on microtasks and yields to timers only at the setImmediate below).
  let sampleAt = started + 10_000;
  const sample = () => {
    globalThis.gc?.(); // the live heap, not what the next collection would free
    const m = process.memoryUsage();
    const sorted = lat.sort((a, b) => a - b);
    samples.push({ atS: Math.round((performance.now() - started) / 1000), rssMiB: +(m.rss / 2 ** 20).toFixed(1), heapMiB: +(m.heapUsed / 2 ** 20).toFixed(1), ops: sorted.length, p50Ms: +(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(3), p99Ms: +(sorted[Math.floor(sorted.length * 0.99)] ?? 0).toFixed(3) });
    lat = [];
  };
  await Promise.all(Array.from({ length: 16 }, caller));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  // Growth: the median of the last fifth of the samples against the median of the fifth after the
  // warm-up (one sample at each end would measure where the collector happened to be).
  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const growth = (k) => {
    if (samples.length < 3 * fifth) return null;
    const early = med(samples.slice(fifth, 2 * fifth).map((x) => x[k]));
    const late = med(samples.slice(-fifth).map((x) => x[k]));
    return +((late / early - 1) * 100).toFixed(1);
  };
  const p99s = samples.slice(Math.floor(samples.length / 5)).map((s) => s.p99Ms);
  return {
    seconds,
    callers: 16,
    ops,
    datumsAtEnd: next - oldest,
    datumsPut: next,
    samples,
    rssGrowthPct: growth("rssMiB"),
    heapGrowthPct: growth("heapMiB"),
    p99AfterWarmupMs: p99s.length ? { min: Math.min(...p99s), max: Math.max(...p99s) } : null,
  };
}

// ---------------------------------------------------------------- the parent
const runChild = (name, dir) => {
  const r = spawnSync(process.execPath, ["--expose-gc", "--max-old-space-size=16384", here, `--child=${name}`, `--n=${N}`, `--bytes=${BYTES}`, `--soak=${SOAK_S}`, `--dir=${dir}`], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${name}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
};
const out = fileURLToPath(new URL("./results/", import.meta.url));
// `--only=perdatum` / `--only=soak` keep the other part of the results file.
const previous = ONLY === "" ? null : JSON.parse(readFileSync(join(out, "memory.json"), "utf8"));
const results = { when: new Date().toISOString(), machine: { cpus: cpus().length, loadavgStart: loadavg().map((x) => +x.toFixed(2)) }, n: N, bytes: BYTES, perDatum: {}, soak: null };
if (ONLY === "soak" && previous !== null) Object.assign(results, { perDatum: previous.perDatum, n: previous.n });
if (ONLY === "perdatum" && previous !== null) results.soak = previous.soak;
if (ONLY === "render") Object.assign(results, previous);
else if (ONLY !== "soak") {
  const dir = mkdtempSync(join(tmpdir(), "dgent-memory-"));
  try {
    for (const name of ["raw", "memory", "memory-nocopy"]) {
      results.perDatum[name] = runChild(name, dir);
      console.log(name, JSON.stringify(results.perDatum[name]));
    }
    for (const name of ["jsonl", "sqlite"]) {
      runChild(`${name}-load`, dir);
      results.perDatum[name] = runChild(name, dir);
      console.log(name, JSON.stringify(results.perDatum[name]));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (ONLY !== "perdatum" && ONLY !== "render" && SOAK_S > 0) {
  results.soak = runChild("soak", "");
  console.log("soak", JSON.stringify({ ...results.soak, samples: undefined }));
}
if (ONLY !== "render") results.machine.loadavgEnd = loadavg().map((x) => +x.toFixed(2));

writeFileSync(join(out, "memory.json"), `${JSON.stringify(results, null, 2)}\n`);
const b = (x) => (x === undefined ? "–" : `${Math.round(x)}`);
const rows = {
  raw: "raw `Map` of the datums (the caller's objects)",
  memory: "`memoryAdapter()` (copies in and out)",
  "memory-nocopy": "`memoryAdapter({ copy: false })`",
  jsonl: "JSONL, reopened: the in-memory index",
  sqlite: "SQLite, reopened and read: what dgent keeps in JS",
};
const perDatum = Object.entries(results.perDatum)
  .map(([k, v]) => `| ${rows[k]} | ${b(v.heapPerDatum)} | ${b(v.arrayBuffersPerDatum)} | ${b(v.heapPerDatum + v.externalPerDatum)} | ${b(v.rssPerDatum)} | ${v.rssMiB.toFixed(0)} |`)
  .join("\n");
const s = results.soak;
writeFileSync(
  join(out, "memory.md"),
  `# Memory per datum and soak

\`node benchmarks/memory.mjs --n=${results.n} --bytes=${results.bytes} --soak=${results.soak?.seconds ?? 0}\` on ${results.when.slice(0, 10)}, ${results.machine.cpus} CPUs, load average ${results.machine.loadavgStart.join(" / ")} at the start, ${results.machine.loadavgEnd.join(" / ")} at the end.

${Object.keys(results.perDatum).length ? `## Bytes per datum at ${results.n.toLocaleString("en")} datums of ${results.bytes} bytes

Each row is a process of its own; growth after a full collection, divided by N. "heap" is the JS
heap (objects, strings); "buffers" the ArrayBuffer memory (contents); "heap + external" both and
any other native allocation V8 is told of; RSS is the whole process.

| contender | heap | buffers | heap + external | RSS | RSS at the end (MiB) |
|---|---:|---:|---:|---:|---:|
${perDatum}
` : ""}
${s ? `## Soak: ${s.seconds} s, ${s.callers} callers, mixed operations on SQLite

${s.ops.toLocaleString("en")} operations; ${s.datumsPut.toLocaleString("en")} datums put, ${s.datumsAtEnd.toLocaleString("en")} live at the end (a sliding window). Growth, the median of the last fifth of the samples against the median of the fifth after the warm-up (the first fifth):
RSS ${s.rssGrowthPct} %, heap ${s.heapGrowthPct} % (goal ≤ 5 %); p99 per 10 s interval ${s.p99AfterWarmupMs ? `${s.p99AfterWarmupMs.min}–${s.p99AfterWarmupMs.max} ms` : "–"}.

| s | RSS MiB | heap MiB | ops | p50 ms | p99 ms |
|---:|---:|---:|---:|---:|---:|
${s.samples.map((x) => `| ${x.atS} | ${x.rssMiB} | ${x.heapMiB} | ${x.ops} | ${x.p50Ms} | ${x.p99Ms} |`).join("\n")}
` : ""}`,
);
console.log(`wrote ${join(out, "memory.md")}`);
