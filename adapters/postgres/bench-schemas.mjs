/**
 * Which schema serves metadata filters best? Two candidates on the same generated data, raw SQL,
 * p50 of each query shape (a filtered page of 100, newest first unless said):
 *
 *   A. JSONB metadata with a GIN index (jsonb_path_ops): `metadata @> '{"k":"v"}'`.
 *   B. A tags table (key, value, created_at, id) with one btree over those four columns, filled
 *      by statement-level triggers; the JSONB column stays the truth and rechecks every match.
 *
 *   npx vite-node adapters/postgres/bench-schemas.mjs -- --rows=1000000
 *
 * Starts the tests' throwaway cluster (test/harness/postgres.ts) unless DGENT_TEST_POSTGRES_URL is set.
 * Options: --rows=<datums> (default 1 000 000), --runs=<per query> (default 200).
 */
import pg from "pg";
import { startPostgres } from "../../test/harness/postgres.ts";

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const ROWS = arg("rows", 1_000_000);
const RUNS = arg("runs", 200);

const server = await startPostgres();
const client = new pg.Client({ connectionString: server.url });
await client.connect();
const q = (text, values) => client.query(text, values);

const generate = (s) => `INSERT INTO ${s}.data (id, content, created_at, causal_parent, metadata)
  SELECT 'thread/' || (i % 1000) || '/' || lpad(i::text, 8, '0'), decode(repeat('ab', 256), 'hex'), 1.7e12 + (i / 3), NULL,
    jsonb_build_object('role', 'v' || (abs(hashint4(i)) % 20), 'topic', 't' || (abs(hashint4(i + 3333333)) % 500),
      'session', 's' || (abs(hashint4(i + 7777777)) % 10000))
      || CASE WHEN i % 3 = 0 THEN '{"tool":"search"}'::jsonb ELSE '{}'::jsonb END
  FROM generate_series($1::int, $2::int) i`;

async function table(s) {
  await q(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await q(`CREATE SCHEMA ${s}`);
  await q(`CREATE TABLE ${s}.data (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    causal_parent TEXT COLLATE "C", metadata JSONB NOT NULL DEFAULT '{}'::jsonb)`);
  await q(`CREATE INDEX ON ${s}.data (created_at DESC, id DESC)`);
}

async function schemaA() {
  await table("a");
  await q(`CREATE INDEX a_meta ON a.data USING gin (metadata jsonb_path_ops)`);
}

async function schemaB() {
  await table("b");
  await q(`CREATE TABLE b.tags (key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, created_at DOUBLE PRECISION NOT NULL, id TEXT COLLATE "C" NOT NULL)`);
  await q(`CREATE INDEX b_tags ON b.tags (key, value, created_at, id)`);
  await q(`CREATE FUNCTION b.tags_in() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO b.tags SELECT DISTINCT left(e.key, 64), left(e.value, 256), n.created_at, n.id FROM new_rows n, jsonb_each_text(n.metadata) e;
    RETURN NULL; END $$`);
  await q(`CREATE TRIGGER tags_in AFTER INSERT ON b.data REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION b.tags_in()`);
}

async function load(s) {
  const t0 = performance.now();
  for (let i = 1; i <= ROWS; i += 100_000) await q(generate(s), [i, Math.min(ROWS, i + 99_999)]);
  await q(`VACUUM ANALYZE ${s}.data`);
  if (s === "b") await q(`VACUUM ANALYZE b.tags`);
  const size = await q(`SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, [s]);
  return { ms: Math.round(performance.now() - t0), size: size.rows[0].s };
}

/** p50 (ms) of each contender's query, run alternately so both see the same machine load. */
async function p50s(contenders) {
  const times = contenders.map(() => []);
  const rows = contenders.map(() => 0);
  for (let i = 0; i < RUNS + 10; i++) {
    for (const [k, [text, values]] of contenders.entries()) {
      const t0 = performance.now();
      const r = await q(text, values);
      if (i >= 10) times[k].push(performance.now() - t0);
      rows[k] = r.rowCount;
    }
  }
  return times.map((ts, k) => {
    ts.sort((x, y) => x - y);
    return { p50: +ts[Math.floor(ts.length / 2)].toFixed(3), rows: rows[k] };
  });
}

const COLS = "d.id, d.content, d.created_at, d.causal_parent, d.metadata";
const MID = 1.7e12 + ROWS / 6;
/** B's `in`: one ordered branch of keys per value, merged, then the page's datums (as queries.ts sends it). */
const union = (key) =>
  `SELECT ${COLS} FROM (` +
  [1, 2, 3].map((k) => `(SELECT t.created_at, t.id FROM b.tags t WHERE t.key = '${key}' AND t.value = $${k} ORDER BY t.created_at DESC, t.id DESC LIMIT 100)`)
    .join(" UNION ALL ") +
  " ORDER BY created_at DESC, id DESC LIMIT 100) k, b.data d WHERE d.id = k.id ORDER BY k.created_at DESC, k.id DESC LIMIT 100";
const shapes = {
  "eq role (1/20)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ['{"role":"v7"}']],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'role' AND t.value = $1
         ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["v7"]],
  },
  "eq role, oldest": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb ORDER BY d.created_at, d.id LIMIT 100`, ['{"role":"v7"}']],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'role' AND t.value = $1
         ORDER BY t.created_at, t.id LIMIT 100`, ["v7"]],
  },
  "eq role, cursor mid-table": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb AND (d.created_at, d.id) < ($2, 'zzz') ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ['{"role":"v7"}', MID]],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'role' AND t.value = $1
         AND (t.created_at, t.id) < ($2, 'zzz') ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["v7", MID]],
  },
  "eq topic (1/500)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ['{"topic":"t42"}']],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'topic' AND t.value = $1
         ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["t42"]],
  },
  "eq session (100 rows at 1M)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ['{"session":"s123"}']],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'session' AND t.value = $1
         ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["s123"]],
  },
  "eq role AND eq session": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata @> $1::jsonb ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ['{"role":"v7","session":"s123"}']],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.tags t2 ON t2.key = 'session' AND t2.value = $2 AND t2.created_at = t.created_at AND t2.id = t.id
         JOIN b.data d ON d.id = t.id WHERE t.key = 'role' AND t.value = $1
         ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["v7", "s123"]],
  },
  "role in 3 values": {
    a: [`SELECT ${COLS} FROM a.data d WHERE (d.metadata @> $1::jsonb OR d.metadata @> $2::jsonb OR d.metadata @> $3::jsonb) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`,
      ['{"role":"v1"}', '{"role":"v2"}', '{"role":"v3"}']],
    b: [union("role"), ["v1", "v2", "v3"]],
  },
  "session in 3 values": {
    a: [`SELECT ${COLS} FROM a.data d WHERE (d.metadata @> $1::jsonb OR d.metadata @> $2::jsonb OR d.metadata @> $3::jsonb) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`,
      ['{"session":"s1"}', '{"session":"s2"}', '{"session":"s3"}']],
    b: [union("session"), ["s1", "s2", "s3"]],
  },
  "role prefix v1 (11/20)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE starts_with(d.metadata->>'role', $1) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ["v1"]],
    b: [`SELECT ${COLS} FROM b.data d WHERE starts_with(d.metadata->>'role', $1) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ["v1"]],
  },
  "session prefix s123 (11 of 10 000)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE starts_with(d.metadata->>'session', $1) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, ["s123"]],
    b: [`SELECT ${COLS} FROM b.tags t JOIN b.data d ON d.id = t.id WHERE t.key = 'session' AND t.value >= $1 AND t.value < $2 AND starts_with(d.metadata->>'session', $1)
         ORDER BY t.created_at DESC, t.id DESC LIMIT 100`, ["s123", "s124"]],
  },
  "exists tool (1/3)": {
    a: [`SELECT ${COLS} FROM a.data d WHERE d.metadata ? 'tool' ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, []],
    b: [`SELECT ${COLS} FROM b.data d WHERE d.metadata ? 'tool' ORDER BY d.created_at DESC, d.id DESC LIMIT 100`, []],
  },
};

/** put and putMany(100) latency, p50 in ms, A and B alternately (three tags per datum). */
async function writes(tag) {
  const meta = (i) => JSON.stringify({ role: `v${i % 20}`, topic: `t${i % 500}`, session: `w${i % 50}` });
  const one = (s) => `INSERT INTO ${s}.data (id, content, created_at, causal_parent, metadata) VALUES ($1, $2, $3, NULL, $4::jsonb) ON CONFLICT (id) DO NOTHING`;
  const rows = Array.from({ length: 100 }, (_, r) => `($${r * 4 + 1}, $${r * 4 + 2}, $${r * 4 + 3}, NULL, $${r * 4 + 4}::jsonb)`).join(", ");
  const many = (s) => `INSERT INTO ${s}.data (id, content, created_at, causal_parent, metadata) VALUES ${rows} ON CONFLICT (id) DO NOTHING`;
  const content = Buffer.alloc(256, 1);
  const puts = { a: [], b: [] };
  const batches = { a: [], b: [] };
  for (let i = 0; i < 2000; i++) {
    for (const s of ["a", "b"]) {
      const t0 = performance.now();
      await q({ name: `one_${s}`, text: one(s), values: [`w/${tag}/${i}`, content, 2e12 + i, meta(i)] });
      puts[s].push(performance.now() - t0);
    }
  }
  for (let b = 0; b < 60; b++) {
    for (const s of ["a", "b"]) {
      const values = [];
      for (let r = 0; r < 100; r++) values.push(`m/${tag}/${b}/${r}`, content, 3e12 + b * 100 + r, meta(b * 100 + r));
      const t0 = performance.now();
      await q({ name: `many_${s}`, text: many(s), values });
      batches[s].push(performance.now() - t0);
    }
  }
  const med = (xs) => +xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)].toFixed(3);
  return { put: { a: med(puts.a), b: med(puts.b) }, putMany100: { a: med(batches.a), b: med(batches.b) } };
}

const REUSE = process.argv.includes("--reuse");
const out = { rows: ROWS, runs: RUNS, load: {}, writes: {}, queries: {} };
if (!REUSE) {
  for (const [s, make] of [["a", schemaA], ["b", schemaB]]) {
    await make();
    out.load[s] = await load(s);
    console.error(s, out.load[s]);
  }
  for (const s of ["a", "b"]) await q(`ANALYZE ${s}.data`);
  await q(`ANALYZE b.tags`);
}
if (!REUSE) {
  out.writes = await writes(String(Date.now()));
  console.error("writes", JSON.stringify(out.writes));
}
for (const [name, shape] of Object.entries(shapes)) {
  const names = ["a", "b"].filter((s) => shape[s]);
  const results = await p50s(names.map((s) => shape[s]));
  out.queries[name] = Object.fromEntries(names.map((s, k) => [s, results[k]]));
  console.error(name, JSON.stringify(out.queries[name]));
}
console.log(JSON.stringify(out, null, 1));
await client.end();
await server.close();
