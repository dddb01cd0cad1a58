// One StateFunctor step on SQLite next to the raw driver doing a read + compare-and-set + insert.
//
//   npm run build && node patterns/state/bench.mjs [steps per round, default 2000] [rounds, default 5]
//
// Contenders, run in alternating rounds on their own files (WAL, synchronous=NORMAL, as dgent's
// SQLite tier), each step a counter increment whose state is JSON:
// - dgent (cached head): `agent.invoke()` — the agent commits against the head it last saw;
// - dgent (cache: false): reads the head ref and its datum before every step;
// - raw, bare: better-sqlite3 with prepared statements: SELECT the ref, SELECT its datum, parse,
//   BEGIN IMMEDIATE, INSERT the new datum, UPDATE the ref WHERE version = the one read, COMMIT;
// - raw, dgent's tables: the same by hand on a dgent file (its tag index trigger, and the reflog
//   row and its pruning that dgent writes on every ref move).
// Prints µs per step — the p50 of single steps, and the median of the rounds' means (which WAL
// checkpoints and a loaded machine make noisy) — and the ratios to the raw contenders.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createStore, sqliteAdapter } from "dgent";

const { liftLogic } = await import(new URL("../../dist/patterns/state/index.js", import.meta.url).href);
const STEPS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), "dgent-state-bench-"));
const pad = (n) => String(n).padStart(12, "0");
const logic = (_input, state) => [state.count + 1, { count: state.count + 1, note: state.note }];
const initial = { count: 0, note: "a small agent state of a few dozen bytes" };

function pragmas(db) {
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
}

async function dgentContender(name, cache) {
  const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, `${name}.db`) })] });
  await store.open();
  const agent = liftLogic(logic, { store, key: "bench", initial, cache });
  return { name, step: () => agent.invoke(null), close: () => store.close() };
}

function rawBare() {
  const db = new Database(join(dir, "raw-bare.db"));
  pragmas(db);
  db.exec(`CREATE TABLE data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT);
    CREATE INDEX idx_created ON data (created_at, id); CREATE INDEX idx_parent ON data (causal_parent, created_at, id);
    CREATE TABLE refs (name TEXT PRIMARY KEY, target TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;`);
  const getRef = db.prepare("SELECT target, version FROM refs WHERE name = ?").raw();
  const getContent = db.prepare("SELECT content FROM data WHERE id = ?").pluck();
  const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?)");
  const cas = db.prepare("UPDATE refs SET target = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?");
  const create = db.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, 1, ?)");
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  let depth = 0;
  return {
    name: "raw, bare",
    step() {
      const ref = getRef.get("state/bench/head");
      const state = ref ? JSON.parse(Buffer.from(getContent.get(ref[0])).toString("utf8")) : initial;
      const [output, next] = logic(null, state);
      const id = `state/bench/${pad(++depth)}-${randomUUID()}`;
      const now = Date.now();
      begin.run();
      try {
        insert.run(id, Buffer.from(JSON.stringify(next)), now, ref ? ref[0] : null, '{"dgent.codec":"json"}');
        if (ref) {
          if (cas.run(id, now, "state/bench/head", ref[1]).changes !== 1) throw new Error("lost the compare-and-set");
        } else create.run("state/bench/head", id, now);
        commit.run();
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      return output;
    },
    close: () => db.close(),
  };
}

async function rawDgentTables() {
  const path = join(dir, "raw-dgent-tables.db");
  const made = createStore({ tiers: [sqliteAdapter({ path })] });
  await made.open();
  await made.close();
  const db = new Database(path);
  pragmas(db);
  const getRef = db.prepare("SELECT target, version FROM refs WHERE name = ?").raw();
  const getContent = db.prepare("SELECT content FROM data WHERE id = ?").pluck();
  const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
  const move = db.prepare("UPDATE refs SET target = ?, version = ?, updated_at = ? WHERE name = ?");
  const create = db.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, 1, ?)");
  const check = db.prepare("SELECT target FROM refs WHERE name = ?").pluck();
  const log = db.prepare(`INSERT INTO reflog (name, seq, from_target, to_target, version, at, moved_by)
    VALUES (?, coalesce((SELECT max(seq) FROM reflog WHERE name = ?), 0) + 1, ?, ?, ?, ?, ?) RETURNING seq`).pluck();
  const prune = db.prepare("DELETE FROM reflog WHERE name = ? AND seq <= ?");
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  let depth = 0;
  return {
    name: "raw, dgent's tables",
    step() {
      const ref = getRef.get("state/bench/head");
      const state = ref ? JSON.parse(Buffer.from(getContent.get(ref[0])).toString("utf8")) : initial;
      const [output, next] = logic(null, state);
      const id = `state/bench/${pad(++depth)}-${randomUUID()}`;
      const now = Date.now();
      begin.run();
      try {
        insert.run(id, Buffer.from(JSON.stringify(next)), now, ref ? ref[0] : null, '{"dgent.codec":"json"}');
        if (ref) {
          if (check.get("state/bench/head") !== ref[0]) throw new Error("lost the compare-and-set");
          move.run(id, ref[1] + 1, now, "state/bench/head");
        } else create.run("state/bench/head", id, now);
        const seq = log.get("state/bench/head", "state/bench/head", ref ? ref[0] : null, id, ref ? ref[1] + 1 : 1, now, "bench");
        if (seq > 100) prune.run("state/bench/head", seq - 100);
        commit.run();
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      return output;
    },
    close: () => db.close(),
  };
}

const contenders = [await dgentContender("dgent (cached head)", true), await dgentContender("dgent (cache: false)", false), rawBare(), await rawDgentTables()];
const means = new Map(contenders.map((c) => [c.name, []]));
const singles = new Map(contenders.map((c) => [c.name, []]));
const expected = new Map(contenders.map((c) => [c.name, 0]));

// Warm-up: one short round each (statements prepared, pages cached, JIT warm).
for (const c of contenders) for (let i = 0; i < 200; i++) expected.set(c.name, await c.step());

for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const c = contenders[(k + round) % contenders.length];
    const times = singles.get(c.name);
    const start = process.hrtime.bigint();
    for (let i = 0; i < STEPS; i++) {
      const t0 = process.hrtime.bigint();
      const out = await c.step();
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
      if (out !== expected.get(c.name) + 1) throw new Error(`${c.name}: step gave ${out}, expected ${expected.get(c.name) + 1}`);
      expected.set(c.name, out);
    }
    means.get(c.name).push(Number(process.hrtime.bigint() - start) / 1000 / STEPS);
  }
}
for (const c of contenders) await c.close();
rmSync(dir, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = contenders.map((c) => ({ name: c.name, mean: median(means.get(c.name)), p50: median(singles.get(c.name)) }));
const bare = rows.find((r) => r.name === "raw, bare");
const same = rows.find((r) => r.name === "raw, dgent's tables");
console.log(`StateFunctor step on SQLite, ${ROUNDS} rounds × ${STEPS} steps each, µs per step (node ${process.version})`);
console.log("contender".padEnd(24) + "p50".padStart(8) + "mean".padStart(9) + "   p50 ÷ raw bare".padStart(18) + "   mean ÷ raw bare".padStart(19) + "   p50 ÷ raw on dgent's tables".padStart(31));
for (const r of rows) {
  console.log(
    r.name.padEnd(24) +
      r.p50.toFixed(1).padStart(8) +
      r.mean.toFixed(1).padStart(9) +
      `${(r.p50 / bare.p50).toFixed(2)}×`.padStart(18) +
      `${(r.mean / bare.mean).toFixed(2)}×`.padStart(19) +
      `${(r.p50 / same.p50).toFixed(2)}×`.padStart(31),
  );
}
