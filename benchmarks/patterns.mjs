/**
 * Agent patterns' speed (issue 15, "Speed"), each figure next to its baseline measured in the same
 * run, in alternating rounds (a shared, loaded machine: read the ratios, not the absolute times).
 *
 * 1. EventStream append against a plain put of the same event, built and encoded by hand (id,
 *    causal parent, JSON, metadata `stream`/`seq`/`dgent.codec`): SQLite, memory and JSONL, one
 *    store per contender. Also the previous append design — the put and the head ref's
 *    compare-and-set in one transaction — for what it cost. Goal: append ≤ 1.3× put.
 * 2. The state at the end of a 1,000,000-event stream, rebuilt by a fresh stream object from its
 *    latest snapshot (the end sits 999 events past it: the worst case of `snapshotEvery` 1000).
 *    Goal ≤ 50 ms. Fold throughput over the first 100,000 events: the stream's fold (`foldAll`,
 *    what a rebuild runs) and `replay` + the reducer, next to the same reducer in a plain loop
 *    over the same events in memory, and next to reading them by hand (`getMany` of 1000 ids,
 *    `JSON.parse`).
 * 3. A StateFunctor step on SQLite against better-sqlite3 doing the step by hand: SELECT the ref,
 *    SELECT its datum, parse, BEGIN IMMEDIATE, INSERT the new datum, UPDATE the ref WHERE version
 *    = the one read, COMMIT ("raw, bare"); and the same by hand on a dgent file, with the tag index
 *    and the reflog slot dgent writes, by its triggers ("raw, dgent's tables"). Goal: step ≤ 2× raw bare.
 *
 *   npm run build && node benchmarks/patterns.mjs [--events=1000000] [--only=append,rebuild,state]
 *        [--rounds=9] [--ops=1000] [--tiers=sqlite,memory,jsonl]
 *
 * Writes benchmarks/results/patterns.{json,md} (not with --only).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { createStore, memoryAdapter } from "dgent";
import { jsonlAdapter } from "dgent/adapters/jsonl";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { eventStream, liftLogic } from "dgent/patterns";

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const ONLY = arg("only", "append,rebuild,state").split(",");
const EVENTS = Number(arg("events", 1_000_000));
const ROUNDS = Number(arg("rounds", 9));
const OPS = Number(arg("ops", 1000));
const TIERS = arg("tiers", "sqlite,memory,jsonl").split(",");
const dir = mkdtempSync(join(tmpdir(), "dgent-patterns-bench-"));
const load = [loadavg()];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round2 = (x) => Math.round(x * 100) / 100;
const pad = (n) => String(n).padStart(12, "0");
const enc = new TextEncoder();
let files = 0;
const file = (ext) => join(dir, `f${files++}.${ext}`);
const tiers = {
  sqlite: () => sqliteAdapter({ path: file("db") }),
  memory: () => memoryAdapter(),
  jsonl: () => jsonlAdapter({ path: file("jsonl") }),
};
async function openStore(tier) {
  const store = createStore({ tiers: [tiers[tier]()] });
  await store.open();
  return store;
}

/**
 * Runs `contenders` (name → async () => step function) in `rounds` alternating rounds of `ops`
 * steps each, after a warm-up round. Returns, by name, the mean µs per step of each round and the
 * p50 of each round's single steps (robust to the stalls a loaded machine puts on a few steps).
 */
async function alternate(contenders, { rounds = ROUNDS, ops = OPS, warm = 200 } = {}) {
  const names = Object.keys(contenders);
  const steps = {};
  for (const n of names) steps[n] = await contenders[n]();
  for (const n of names) for (let i = 0; i < warm; i++) await steps[n]();
  const means = Object.fromEntries(names.map((n) => [n, []]));
  const p50s = Object.fromEntries(names.map((n) => [n, []]));
  const single = new Float64Array(ops);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      const step = steps[n];
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) {
        const t = process.hrtime.bigint();
        await step();
        single[i] = Number(process.hrtime.bigint() - t) / 1000;
      }
      means[n].push(Number(process.hrtime.bigint() - t0) / 1000 / ops);
      p50s[n].push(median(single));
    }
  }
  return { means, p50s };
}

/** The median of the per-round ratios a ÷ b (each pair measured in the same round). */
const ratio = (a, b) => median(a.map((x, i) => x / b[i]));

/** Rows of a comparison against `base`: the medians of the rounds' p50s and means, and the median per-round ratios of each. */
function rows({ means, p50s }, base) {
  return Object.keys(means).map((name) => ({
    name,
    p50: round2(median(p50s[name])),
    mean: round2(median(means[name])),
    p50Ratio: round2(ratio(p50s[name], p50s[base])),
    meanRatio: round2(ratio(means[name], means[base])),
  }));
}

// ---- 1. append against a plain put
const reducer = (s, e) => ({ total: s.total + e.n, count: s.count + 1 });
const initial = { total: 0, count: 0 };

async function appendVsPut(tier) {
  const times = await alternate({
    "plain put": async () => {
      const store = await openStore(tier);
      let seq = 0;
      return () => {
        seq++;
        const id = `stream/plain/e/${pad(seq)}`;
        return store.put({ id, content: enc.encode(JSON.stringify({ n: seq })), createdAt: Date.now(), causalParent: seq > 1 ? `stream/plain/e/${pad(seq - 1)}` : null, metadata: { stream: "plain", seq: String(seq), "dgent.codec": "json" } });
      };
    },
    append: async () => {
      const stream = eventStream(await openStore(tier), { name: "bench", reducer, initial });
      let n = 0;
      return () => stream.append({ n: n++ });
    },
    "append, no snapshots": async () => {
      const stream = eventStream(await openStore(tier), { name: "bench", reducer, initial, snapshotEvery: Infinity });
      let n = 0;
      return () => stream.append({ n: n++ });
    },
    "put + head CAS in one transaction (the previous append)": async () => {
      const store = await openStore(tier);
      let seq = 0;
      return () => {
        seq++;
        const id = `stream/tx/e/${pad(seq)}`;
        const datum = { id, content: enc.encode(JSON.stringify({ n: seq })), createdAt: Date.now(), causalParent: seq > 1 ? `stream/tx/e/${pad(seq - 1)}` : null, metadata: { stream: "tx", seq: String(seq), "dgent.codec": "json" } };
        return store.transaction([
          { op: "put", datum },
          { op: "setRef", name: "stream/tx/head", target: id, expect: seq === 1 ? { absent: true } : { version: seq - 1 } },
        ]);
      };
    },
  }, { ops: tier === "memory" ? OPS * 10 : OPS });
  const out = rows(times, "plain put");
  for (const r of out) console.log(`append ${tier.padEnd(6)} ${r.name.padEnd(56)} p50 ${String(r.p50).padStart(8)} µs ${r.p50Ratio}×, mean ${String(r.mean).padStart(8)} µs ${r.meanRatio}× put`);
  return { tier, rounds: ROUNDS, opsPerRound: tier === "memory" ? OPS * 10 : OPS, rows: out };
}

// ---- 2. rebuilding the end of a long stream, and fold throughput
async function rebuild(tier, total) {
  const n = total - 1; // the end sits 999 events past the latest snapshot
  const store = await openStore(tier);
  const stream = eventStream(store, { name: "long", reducer, initial, snapshotEvery: 1000 });
  const t0 = performance.now();
  const batch = 10_000;
  for (let i = 0; i < n; i += batch) await stream.append(Array.from({ length: Math.min(batch, n - i) }, (_, k) => ({ n: i + k })));
  const buildS = (performance.now() - t0) / 1000;
  const times = [];
  const cpu = [];
  for (let r = 0; r < 21; r++) {
    const fresh = eventStream(store, { name: "long", reducer, initial, snapshotEvery: 1000 });
    const c0 = process.cpuUsage();
    const t = performance.now();
    const state = await fresh.state();
    times.push(performance.now() - t);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    if (state.count !== n) throw new Error(`state counted ${state.count}, expected ${n}`);
  }
  // Fold throughput over the first 100k events: the stream's own fold (foldAll), replay + the
  // reducer, getMany + JSON.parse by hand, and a plain loop over the same events in memory.
  const m = Math.min(n, 100_000);
  const inMemory = Array.from({ length: m }, (_, i) => ({ n: i }));
  const ids = Array.from({ length: m }, (_, i) => stream.eventId(i + 1));
  const dec = new TextDecoder();
  const rates = { foldAll: [], replay: [], "by hand": [], "plain loop": [] };
  const run = {
    foldAll: () => stream.foldAll(m),
    replay: async () => {
      let s = initial;
      for await (const e of stream.replay({ from: 1, to: m })) s = reducer(s, e.event);
      return s;
    },
    "by hand": async () => {
      let s = initial;
      for (let i = 0; i < m; i += 1000) for (const d of await store.getMany(ids.slice(i, i + 1000))) s = reducer(s, JSON.parse(dec.decode(d.content)));
      return s;
    },
    "plain loop": async () => {
      let s = initial;
      for (const e of inMemory) s = reducer(s, e);
      return s;
    },
  };
  const entries = Object.entries(run);
  for (let r = 0; r < 5; r++) {
    for (const [name, f] of [...entries.slice(r % entries.length), ...entries.slice(0, r % entries.length)]) {
      const t = performance.now();
      const s = await f();
      rates[name].push(m / ((performance.now() - t) / 1000));
      if (s.count !== m) throw new Error(`${name} folded ${s.count}, expected ${m}`);
    }
  }
  const result = {
    tier,
    events: n,
    buildSeconds: Math.round(buildS),
    stateMs: round2(median(times)),
    stateMsMax: round2(Math.max(...times)),
    stateCpuMs: round2(median(cpu)),
    foldEvents: m,
    foldPerSecond: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, Math.round(median(v))])),
  };
  console.log(`rebuild ${tier}: ${n.toLocaleString("en")} events (built in ${result.buildSeconds} s): state() from the latest snapshot p50 ${result.stateMs} ms (CPU ${result.stateCpuMs} ms); fold/s ${JSON.stringify(result.foldPerSecond)}`);
  await store.close();
  return result;
}

// ---- 3. StateFunctor step against the raw driver
const logic = (_input, state) => [state.count + 1, { count: state.count + 1, note: state.note }];
const stateInitial = { count: 0, note: "a small agent state of a few dozen bytes" };

function rawStep(db, dgentTables) {
  const getRef = db.prepare("SELECT target, version FROM refs WHERE name = ?").raw();
  const getContent = db.prepare("SELECT content FROM data WHERE id = ?").pluck();
  const insert = db.prepare(`INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?)${dgentTables ? " ON CONFLICT (id) DO NOTHING" : ""}`);
  // On dgent's tables (sqlite schema 5) a move numbers itself (log_seq) and says who moved it;
  // the triggers on refs write its slot of the reflog ring, as they do for dgent.
  const cas = dgentTables
    ? db.prepare("UPDATE refs SET target = ?, version = version + 1, updated_at = ?, log_seq = log_seq + 1, moved_by = 'bench' WHERE name = ? AND version = ?")
    : db.prepare("UPDATE refs SET target = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?");
  const createOn = dgentTables
    ? db.prepare("INSERT INTO refs (name, target, version, updated_at, log_seq, moved_by) VALUES (?, ?, 1, ?, coalesce((SELECT max(seq) FROM reflog WHERE name = ?), 0) + 1, 'bench')")
    : db.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, 1, ?)");
  const create = { run: (name, target, at) => (dgentTables ? createOn.run(name, target, at, name) : createOn.run(name, target, at)) };
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const head = "state/bench/head";
  let depth = 0;
  return () => {
    const ref = getRef.get(head);
    const state = ref ? JSON.parse(Buffer.from(getContent.get(ref[0])).toString("utf8")) : stateInitial;
    const [output, next] = logic(null, state);
    const id = `state/bench/${pad(++depth)}-${randomUUID()}`;
    const now = Date.now();
    begin.run();
    try {
      insert.run(id, Buffer.from(JSON.stringify(next)), now, ref ? ref[0] : null, '{"dgent.codec":"json"}');
      if (ref) {
        if (cas.run(id, now, head, ref[1]).changes !== 1) throw new Error("lost the compare-and-set");
      } else create.run(head, id, now);
      commit.run();
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    return output;
  };
}

function rawDb(path, schema) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  if (schema) db.exec(schema);
  return db;
}

async function stateStep() {
  const counted = (step) => {
    let last = 0;
    return async () => {
      const out = await step();
      if (out !== last + 1) throw new Error(`a step gave ${out}, expected ${last + 1}`);
      last = out;
    };
  };
  const dgent = (cache) => async () => {
    const agent = liftLogic(logic, { store: await openStore("sqlite"), key: "bench", initial: stateInitial, cache });
    return counted(() => agent.invoke(null));
  };
  const times = await alternate({
    "dgent (cached head, the default)": dgent(true),
    "dgent (cache: false)": dgent(false),
    "raw, bare": async () =>
      counted(
        rawStep(
          rawDb(file("db"), `CREATE TABLE data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT);
    CREATE INDEX idx_created ON data (created_at, id); CREATE INDEX idx_parent ON data (causal_parent, created_at, id);
    CREATE TABLE refs (name TEXT PRIMARY KEY, target TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;`),
          false,
        ),
      ),
    "raw, dgent's tables": async () => {
      const path = file("db");
      const made = createStore({ tiers: [sqliteAdapter({ path })] });
      await made.open();
      await made.close();
      return counted(rawStep(rawDb(path), true));
    },
  });
  const out = rows(times, "raw, bare");
  for (const r of out) console.log(`state step ${r.name.padEnd(34)} p50 ${String(r.p50).padStart(8)} µs ${r.p50Ratio}×, mean ${String(r.mean).padStart(8)} µs ${r.meanRatio}× raw bare`);
  return { rounds: ROUNDS, stepsPerRound: OPS, rows: out };
}

const results = { date: new Date().toISOString(), node: process.version, cpus: cpus().length };
try {
  if (ONLY.includes("append")) {
    results.append = [];
    for (const tier of TIERS) results.append.push(await appendVsPut(tier));
  }
  if (ONLY.includes("state")) results.stateStep = await stateStep();
  if (ONLY.includes("rebuild")) results.rebuild = [await rebuild("memory", EVENTS), await rebuild("sqlite", EVENTS)];
} finally {
  rmSync(dir, { recursive: true, force: true });
}
load.push(loadavg());
results.loadAverage = { start: load[0].map(round2), end: load[1].map(round2) };

if (ONLY.length === 3 && TIERS.length === 3 && EVENTS === 1_000_000) {
  const out = fileURLToPath(new URL("./results/", import.meta.url));
  writeFileSync(join(out, "patterns.json"), `${JSON.stringify(results, null, 2)}\n`);
  const lines = [
    "# Patterns benchmark (issue 15)",
    "",
    `\`node benchmarks/patterns.mjs\` on ${results.date.slice(0, 10)}, node ${results.node}, ${results.cpus} CPUs, load average ${results.loadAverage.start.join(" / ")} at the start and ${results.loadAverage.end.join(" / ")} at the end (a shared machine: read the ratios, each measured against its baseline in the same run, in ${ROUNDS} alternating rounds; "p50" is the median over rounds of each round's median single operation, "mean" the median over rounds of each round's mean, and each ratio the median of the per-round ratios).`,
    "",
    "## EventStream append against a plain put of the same event",
    "",
    "| tier | contender | p50 µs | ÷ plain put (p50) | mean µs | ÷ plain put (mean) | goal ≤ 1.3× (p50) |",
    "|---|---|---|---|---|---|---|",
  ];
  const goal = (r, limit) => (r.p50Ratio <= limit ? "met" : "missed");
  for (const t of results.append) {
    for (const r of t.rows) lines.push(`| ${t.tier} | ${r.name} | ${r.p50} | **${r.p50Ratio}×** | ${r.mean} | ${r.meanRatio}× | ${r.name.startsWith("append") ? goal(r, 1.3) : ""} |`);
  }
  lines.push("", "## The state at the end of a 1,000,000-event stream, and fold throughput", "");
  lines.push("| tier | events | `state()` from the latest snapshot, fresh object: p50 of 21 (CPU; max) | goal | fold: `foldAll` | fold: `replay` + reducer | fold: `getMany` + `JSON.parse` by hand | fold: plain loop in memory |", "|---|---|---|---|---|---|---|---|");
  for (const r of results.rebuild) {
    const f = r.foldPerSecond;
    lines.push(`| ${r.tier} | ${r.events.toLocaleString("en")} (built in ${r.buildSeconds} s) | **${r.stateMs} ms** (CPU ${r.stateCpuMs} ms; max ${r.stateMsMax} ms) | ≤ 50 ms — ${r.stateMs <= 50 ? "met" : "missed"} | ${f.foldAll.toLocaleString("en")} events/s | ${f.replay.toLocaleString("en")} events/s | ${f["by hand"].toLocaleString("en")} events/s | ${f["plain loop"].toLocaleString("en")} events/s |`);
  }
  lines.push("", "## StateFunctor step on SQLite against better-sqlite3 by hand", "", "| contender | p50 µs | ÷ raw bare (p50) | mean µs | ÷ raw bare (mean) | goal ≤ 2× (p50) |", "|---|---|---|---|---|---|");
  for (const r of results.stateStep.rows) lines.push(`| ${r.name} | ${r.p50} | **${r.p50Ratio}×** | ${r.mean} | ${r.meanRatio}× | ${r.name.startsWith("dgent") ? goal(r, 2) : ""} |`);
  lines.push("", "See benchmarks/README.md, \"Patterns (issue 15)\", for what each contender does.", "");
  writeFileSync(join(out, "patterns.md"), lines.join("\n"));
}
