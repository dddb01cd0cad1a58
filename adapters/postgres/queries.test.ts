/**
 * Native queries on the Postgres tier (queries.ts): the same answers as the reference evaluation
 * (core/query.ts) for random data, filters and cursors paged to the end in both orders; literal
 * `%`, `_` and `\`; an atomic deleteMany; getMany; chainTail on a long chain; the plans (EXPLAIN);
 * projections that never read content; the migration from schema version 3.
 */
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { countQuery, evaluateQuery, idPageOf, resolveQuery, type DatumHeader, type QueryOptions, type ResolvedQuery } from "../../core/query.js";
import { walkTail } from "../../core/router-query.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { migrate, MIGRATIONS } from "./migrations.js";
import { acquirePool } from "./pool.js";
import { resolveOptions } from "./profiles.js";
import { countSql, idsSql, pageSql, TAG_KEY_CHARS, TAG_VALUE_CHARS } from "./queries.js";
import { BATCH_PARAMS, identifiers, statements } from "./sql.js";
import { postgresAdapter, POSTGRES_DOCKER, type PostgresAdapter, type PostgresOptions } from "./index.js";

let server: PostgresServer;
/** One superuser connection for the SQL the tests send by hand. */
let raw: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  raw = new pg.Client({ connectionString: server.url });
  await raw.connect();
});
const open: PostgresAdapter[] = [];
afterAll(async () => {
  for (const a of open) await a.close();
  for (const schema of new Set(open.map((a) => a.schema))) await dropSchema(server, schema);
  await raw?.end();
  await server?.close();
});

async function opened(options: PostgresOptions = {}): Promise<PostgresAdapter> {
  const a = postgresAdapter({ url: server.url, namespace: freshSchema("q"), listen: false, ...options });
  await a.open();
  open.push(a);
  return a;
}

const q = (options: QueryOptions = {}): ResolvedQuery => resolveQuery(options);
const all = (options: QueryOptions = {}): ResolvedQuery => ({ ...resolveQuery(options), limit: Number.MAX_SAFE_INTEGER });

/** A comparable form: content as hex (absent for headers). */
function plain(d: Datum | DatumHeader): Record<string, unknown> {
  const out: Record<string, unknown> = { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata };
  if ("content" in d) out.content = Buffer.from(d.content).toString("hex");
  return out;
}

// ---- random data: few characters, so prefixes, ties and collisions are common -------------------

const CHARS = ["a", "b", "%", "_", "\\", "é", "😀", "/", "\uffff"];
const LONG_KEY = "K".repeat(TAG_KEY_CHARS);
const LONG_VALUE = "L".repeat(TAG_VALUE_CHARS);
const KEYS = ["role", "topic", "k%", "_", "\\", `${LONG_KEY}1`, `${LONG_KEY}2`];
const text = (min: number, max: number) => fc.array(fc.constantFrom(...CHARS), { minLength: min, maxLength: max }).map((cs) => cs.join(""));
const value = fc.oneof({ weight: 4, arbitrary: text(0, 3) }, { weight: 1, arbitrary: fc.constantFrom(`${LONG_VALUE}a`, `${LONG_VALUE}b`, LONG_VALUE) });
const metadata = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 4 });

const dataset = fc
  .uniqueArray(text(1, 4), { minLength: 0, maxLength: 40 })
  .chain((ids) =>
    fc.tuple(
      fc.constant(ids),
      fc.array(fc.tuple(fc.constantFrom(0, 1, 2, 2.5, 3, 1e12), fc.option(fc.nat(), { nil: null }), metadata), {
        minLength: ids.length,
        maxLength: ids.length,
      }),
    ),
  )
  .map(([ids, rows]) =>
    ids.map((id, i) => {
      const [createdAt, parent, meta] = rows[i] as [number, number | null, Record<string, string>];
      const p = parent === null || ids.length < 2 ? null : (ids[parent % ids.length] as string);
      return makeDatum({ id, content: `c:${id}`, createdAt, causalParent: p === id ? null : p, metadata: meta });
    }),
  );

const tagCondition = fc.oneof(
  value,
  value.map((v) => ({ eq: v })),
  fc.uniqueArray(value, { minLength: 1, maxLength: 3 }).map((vs) => ({ in: vs })),
  fc.uniqueArray(value, { minLength: 17, maxLength: 20 }).map((vs) => ({ in: vs })), // one LATERAL scan, not branches
  text(0, 2).map((v) => ({ prefix: v })),
  fc.boolean().map((b) => ({ exists: b })),
);
const filter = fc.record(
  {
    prefix: text(0, 2),
    idRange: fc.record({ gte: text(0, 2), lt: text(1, 3) }, { requiredKeys: [] }),
    where: fc.dictionary(fc.constantFrom(...KEYS), tagCondition, { maxKeys: 3 }),
    parent: text(1, 3),
    after: fc.constantFrom(-1, 0, 1, 2, 2.5),
    before: fc.constantFrom(1, 2, 2.5, 3, 1e13),
  },
  { requiredKeys: [] },
);

describe("query, count and deleteMany equal the reference evaluation", () => {
  it("random data, random filters, pages to the end in both orders, every projection", async () => {
    const a = await opened();
    await fc.assert(
      fc.asyncProperty(
        dataset,
        fc.array(fc.tuple(filter, fc.integer({ min: 1, max: 7 }), fc.constantFrom("full", "meta", "ids") as fc.Arbitrary<"full" | "meta" | "ids">), {
          minLength: 1,
          maxLength: 6,
        }),
        async (datums, queries) => {
          await a.deleteMany(all());
          await a.putMany(datums);
          for (const [f, limit, select] of queries) {
            for (const order of ["newest", "oldest"] as const) {
              const base = q({ ...f, order, limit, select });
              const expected = (evaluateQuery({ ...base, limit: Number.MAX_SAFE_INTEGER }, datums) as DatumHeader[]).map(plain);
              const got: Record<string, unknown>[] = [];
              let cursor: ResolvedQuery["cursor"] = null;
              for (let pages = 0; pages <= datums.length + 1; pages++) {
                const page = await a.query({ ...base, cursor });
                expect(page.map(plain)).toEqual((evaluateQuery({ ...base, cursor }, datums) as DatumHeader[]).map(plain));
                got.push(...page.map(plain));
                if (page.length < limit) break;
                const last = page.at(-1) as DatumHeader;
                cursor = { createdAt: last.createdAt, id: last.id };
              }
              expect(got).toEqual(expected);
              expect(await a.queryIds(base)).toEqual(idPageOf(evaluateQuery(base, datums)));
            }
            expect(await a.count(q(f))).toBe(countQuery(q(f), datums));
          }
          // The tags table holds one row per datum and (cut key, cut value), nothing else.
          const ids = identifiers(a.schema, a.table);
          const tags = await raw.query<{ key: string; value: string; id: string }>(`SELECT key, value, id FROM ${ids.tags}`);
          const cut = (s: string, n: number) => [...s].slice(0, n).join("");
          const want = new Set(datums.flatMap((d) => Object.entries(d.metadata).map(([k, v]) => JSON.stringify([cut(k, TAG_KEY_CHARS), cut(v, TAG_VALUE_CHARS), d.id]))));
          expect(tags.rows.map((r) => JSON.stringify([r.key, r.value, r.id])).sort()).toEqual([...want].sort());
          // deleteMany removes exactly what matches and returns those ids.
          const [f] = queries[0] as [QueryOptions, number, string];
          const doomed = (evaluateQuery(all(f), datums) as DatumHeader[]).map((d) => d.id).sort();
          expect((await a.deleteMany(all(f))).sort()).toEqual(doomed);
          const left = (await a.query(all({ order: "oldest" }))).map((d) => d.id).sort();
          expect(left).toEqual(datums.map((d) => d.id).filter((id) => !doomed.includes(id)).sort());
          expect(await a.count(q(f))).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("tags the tags table holds cut (keys of 64 characters or more, values of 256 or more)", () => {
  it("match exactly: the metadata column decides between values that share the cut part", async () => {
    const a = await opened();
    const k1 = `${LONG_KEY}1`;
    const k2 = `${LONG_KEY}2`;
    const datums = [
      makeDatum({ id: "a", content: "a", createdAt: 1, metadata: { [k1]: "x", role: `${LONG_VALUE}a` } }),
      makeDatum({ id: "b", content: "b", createdAt: 2, metadata: { [k2]: "x", role: `${LONG_VALUE}b` } }),
      makeDatum({ id: "c", content: "c", createdAt: 3, metadata: { [k1]: "y", [k2]: "x", role: LONG_VALUE } }),
      makeDatum({ id: "d", content: "d", createdAt: 4, metadata: { [LONG_KEY]: "x", role: `${LONG_VALUE}a` } }),
    ];
    await a.putMany(datums);
    const cases: QueryOptions[] = [
      { where: { role: `${LONG_VALUE}a` } },
      { where: { role: `${LONG_VALUE}b` } },
      { where: { role: LONG_VALUE } },
      { where: { role: { in: [`${LONG_VALUE}a`, `${LONG_VALUE}b`] } } },
      { where: { role: { in: [`${LONG_VALUE}b`, "short"] } } }, // one branch must check the metadata, so all join the datum
      { where: { role: { in: [`${LONG_VALUE}a`, LONG_VALUE] } } },
      { where: { role: { prefix: LONG_VALUE } } },
      { where: { role: { in: [`${LONG_VALUE}a`, `${LONG_VALUE}b`, ...Array.from({ length: 16 }, (_, i) => `x${i}`)] } } },
      { where: { role: { in: [`${LONG_VALUE}a`, LONG_VALUE, ...Array.from({ length: 16 }, (_, i) => `x${i}`)] } } },
      { where: { [k1]: "x" } },
      { where: { [k2]: "x" } },
      { where: { [LONG_KEY]: "x" } },
      { where: { [k1]: { in: ["x", "y"] } } },
      { where: { [k1]: "y", [k2]: "x" } },
      { where: { [k2]: { exists: false } } },
    ];
    for (const c of cases) {
      for (const order of ["newest", "oldest"] as const) {
        const query = q({ ...c, order });
        const want = (evaluateQuery(query, datums) as Datum[]).map((d) => d.id);
        expect((await a.query(query)).map((d) => d.id), JSON.stringify(c).slice(0, 80)).toEqual(want);
      }
      expect(await a.count(q(c))).toBe(countQuery(q(c), datums));
    }
  });
});

describe("the tags trigger's plan (migrations 7 and 10)", () => {
  /**
   * The plan of the tags insert the trigger runs for a single-row insert on a connection, as
   * auto_explain logs it, without costs, timings and memory figures. `first`: what that connection
   * inserted before, in one statement. The connection is not one of this version's pool sessions
   * (no `dgent.origin`): the trigger keeps the tags of such sessions' inserts (migration 10), and
   * plain INSERTs stand for what such a writer (an earlier version's, psql) sends.
   */
  async function singlePutTagsPlan(a: PostgresAdapter, first: Datum[]): Promise<string> {
    const ids = identifiers(a.schema, a.table);
    const plainInsert = `INSERT INTO ${ids.table} (id, content, created_at, causal_parent, metadata)`;
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      if (first.length > 0) {
        await client.query(`${plainInsert} SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::text[], $5::jsonb[])`, [
          first.map((d) => d.id),
          first.map((d) => Buffer.from(d.content)),
          first.map((d) => d.createdAt),
          first.map((d) => d.causalParent),
          first.map((d) => JSON.stringify(d.metadata)),
        ]);
      }
      await client.query("LOAD 'auto_explain'");
      await client.query("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET client_min_messages = log");
      const plans: string[] = [];
      client.on("notice", (m) => plans.push(m.message ?? ""));
      const one = makeDatum({ content: "one", metadata: { role: "x", step: "1" } });
      await client.query(`${plainInsert} VALUES ($1, $2, $3, $4, $5::jsonb)`, [one.id, Buffer.from(one.content), one.createdAt, one.causalParent, JSON.stringify(one.metadata)]);
      const tags = plans.find((p) => p.includes(`INSERT INTO ${ids.tags}`));
      expect(tags, plans.join("\n")).toBeDefined();
      return (tags as string)
        .split("\n")
        .filter((line) => !/^\s*(Query Text|Batches|Buckets|Sort Method|Memory)/.test(line) && !/duration:/.test(line))
        // Nodes that size what they set up by the planner's estimate keep it; the rest lose theirs
        // (a nested loop's estimate follows the batch, but it sets up nothing by it).
        // A row trigger's plan keeps NEW's columns as constants (custom plan) or parameters
        // (generic, once PL/pgSQL has run it a few times): the same plan either way.
        .map((line) => line.replace(/(Group Key: .*"left"\(j\.value, 256\)).*$/, "$1, <NEW>"))
        .map((line) => {
          const sized = /Aggregate|Unique|Sort|Hash/.test(line);
          return line.replace(/\s*\((cost|actual)[^)]*\)/g, (m) => (sized && m.includes("cost=") ? ` (rows=${/rows=(\d+)/.exec(m)?.[1]})` : ""));
        })
        .join("\n");
    } finally {
      await client.end();
    }
  }

  it("is the same on a connection whose first insert was a batch of 1,000 datums as on a fresh one", async () => {
    const a = await opened();
    const batch = Array.from({ length: 1000 }, (_, i) => makeDatum({ content: `b${i}`, metadata: { role: "r", step: String(i), session: `s${i % 7}` } }));
    const afterBatch = await singlePutTagsPlan(a, batch);
    const fresh = await singlePutTagsPlan(a, []);
    // Since migration 10 a row-level trigger: the tags of the row (NEW), read from its metadata.
    expect(afterBatch).toMatch(/Function Scan on jsonb_each_text/);
    // Before migration 7 the batch's plan stayed: a hash aggregate set up for 20,000 groups (a
    // fresh connection's: for 100), on every later put.
    expect(afterBatch).toBe(fresh);
    const n = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${identifiers(a.schema, a.table).tags}`);
    expect(n.rows[0]?.n).toBe(1000 * 3 + 2 * 2);
  });
});

describe("a deleted datum's tag rows (migration 8)", () => {
  it("are found by all four columns of the tags index, however many datums share the tag", async () => {
    const a = await opened();
    const ids = identifiers(a.schema, a.table);
    // 3 000 datums sharing two tag values: a search on (key, value) alone walks all of them.
    for (let i = 0; i < 3; i++) {
      await a.putMany(Array.from({ length: 1000 }, (_, j) => makeDatum({ id: `m8/${i}/${String(j).padStart(4, "0")}`, content: "x", createdAt: 1 + i * 1000 + j, metadata: { kind: "shared", group: "g" } })));
    }
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      await client.query("LOAD 'auto_explain'");
      await client.query("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; SET client_min_messages = log");
      const plans: string[] = [];
      client.on("notice", (m) => plans.push(m.message ?? ""));
      const del = statements(ids).delete;
      const r = await client.query({ ...del, values: ["m8/1/0500"] });
      expect(r.rowCount).toBe(1);
      const tagsDelete = plans.find((p) => p.includes(`DELETE FROM ${ids.tags}`));
      expect(tagsDelete, plans.join("\n")).toBeDefined();
      // The probe of the tag rows names every column of the index; before migration 8 it named
      // (key, value) and read the 3 000 entries of each shared value.
      const probe = (tagsDelete as string).split("\n").find((line) => line.includes("Index Cond") && line.includes("key ="));
      expect(probe, tagsDelete).toMatch(/created_at = r\.created_at/);
      expect(probe, tagsDelete).toMatch(/id = r\.id/);
      const rowsRead = [...(tagsDelete as string).matchAll(/Index Scan[^\n]*actual[^\n]*rows=(\d+) loops=(\d+)/g)].map((m) => Number(m[1]) * Number(m[2]));
      expect(Math.max(...rowsRead)).toBeLessThanOrEqual(2);
    } finally {
      await client.end();
    }
    const left = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ids.tags} WHERE id = 'm8/1/0500'`);
    expect(left.rows[0]?.n).toBe(0);
    const kept = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ids.tags} WHERE key = 'kind' AND value = 'shared'`);
    expect(kept.rows[0]?.n).toBe(2999);
  });
});

describe("literal %, _ and \\", () => {
  it("in an id prefix, a tag prefix and a tag value match only themselves", async () => {
    const a = await opened();
    const ids = ["a%b", "a_b", "axb", "a\\b", "a\\\\b", "a%", "ab"];
    const datums = ids.map((id, i) => makeDatum({ id, content: id, createdAt: i, metadata: { tag: id } }));
    await a.putMany(datums);
    const listed = async (options: QueryOptions) => (await a.query(q({ ...options, order: "oldest" }))).map((d) => d.id);
    expect(await listed({ prefix: "a%" })).toEqual(["a%b", "a%"]);
    expect(await listed({ prefix: "a_" })).toEqual(["a_b"]);
    expect(await listed({ prefix: "a\\" })).toEqual(["a\\b", "a\\\\b"]);
    expect(await listed({ prefix: "a\\\\" })).toEqual(["a\\\\b"]);
    expect(await listed({ where: { tag: { prefix: "a%" } } })).toEqual(["a%b", "a%"]);
    expect(await listed({ where: { tag: { prefix: "a_" } } })).toEqual(["a_b"]);
    expect(await listed({ where: { tag: { prefix: "a\\" } } })).toEqual(["a\\b", "a\\\\b"]);
    expect(await listed({ where: { tag: "a_b" } })).toEqual(["a_b"]);
    expect(await listed({ where: { tag: { in: ["a%", "a\\b"] } } })).toEqual(["a\\b", "a%"]);
    expect(await a.count(q({ prefix: "a_" }))).toBe(1);
    expect((await a.deleteMany(all({ prefix: "a\\" }))).sort()).toEqual(["a\\\\b", "a\\b"]);
    expect(await listed({})).toEqual(["a%b", "a_b", "axb", "a%", "ab"]);
  });

  it("a filter value or cursor holding U+0000 (which Postgres cannot store) matches nothing and fails nothing", async () => {
    const a = await opened();
    const datums = ["a", "ab", "b"].map((id, i) => makeDatum({ id, content: id, createdAt: 5, metadata: { tag: `v${i}` } }));
    await a.putMany(datums);
    expect(await a.query(q({ where: { tag: "v\u0000" } }))).toEqual([]);
    expect(await a.query(q({ where: { tag: { prefix: "\u0000" } } }))).toEqual([]);
    expect((await a.query(q({ where: { tag: { in: ["v\u0000", "v1"] } } }))).map((d) => d.id)).toEqual(["ab"]);
    expect(await a.count(q({ where: { tag: "\u0000" } }))).toBe(0);
    expect(await a.deleteMany(all({ where: { tag: "\u0000" } }))).toEqual([]);
    expect(await a.getMany(["a\u0000", "a"])).toEqual([null, expect.objectContaining({ id: "a" })]);
    for (const order of ["newest", "oldest"] as const) {
      const query = { ...q({ order }), cursor: { createdAt: 5, id: "a\u0000x" } };
      expect((await a.query(query)).map((d) => d.id)).toEqual((evaluateQuery(query, datums) as Datum[]).map((d) => d.id));
    }
  });
});

describe("deleteMany", () => {
  it("is one statement: when one row cannot be deleted, none is; otherwise it returns every deleted id and announces each", async () => {
    const a = await opened({ notify: true });
    const datums = Array.from({ length: 50 }, (_, i) =>
      makeDatum({ id: `s/${String(i).padStart(2, "0")}`, content: "x", createdAt: i, metadata: { session: i % 2 ? "odd" : "even" } }),
    );
    await a.putMany(datums);
    const ids = identifiers(a.schema, a.table);
    // A row trigger that refuses to delete one of the matches, as a failure half-way would.
    await raw.query(`CREATE FUNCTION ${ids.schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF OLD.id = 's/41' THEN RAISE EXCEPTION 'refused'; END IF; RETURN OLD; END $$`);
    await raw.query(`CREATE TRIGGER refuse BEFORE DELETE ON ${ids.table} FOR EACH ROW EXECUTE FUNCTION ${ids.schema}.refuse()`);
    await expect(a.deleteMany(all({ where: { session: "odd" } }))).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR" });
    expect(await a.count(q({ where: { session: "odd" } }))).toBe(25);
    expect(await a.count(q({}))).toBe(50);
    await raw.query(`DROP TRIGGER refuse ON ${ids.table}`);
    // Without the refusal: all of them, in one statement, each in the table's change log (which
    // writers keep while someone listens: this connection, counted as a listener).
    await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
    const before = await raw.query<{ n: string }>(`SELECT coalesce(max(seq), 0)::text AS n FROM ${ids.changes}`);
    const deleted = await a.deleteMany(all({ where: { session: "odd" } }));
    const odd = datums.filter((d) => d.metadata.session === "odd").map((d) => d.id).sort();
    expect(deleted.sort()).toEqual(odd);
    const logged = await raw.query<{ id: string }>(`SELECT id FROM ${ids.changes} WHERE seq > $1 AND op = 'delete'`, [before.rows[0]?.n]);
    expect(logged.rows.map((r) => r.id).sort()).toEqual(odd);
    expect(await a.count(q({}))).toBe(25);
    const tags = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ids.tags}`);
    expect(tags.rows[0]?.n).toBe(25); // the triggers removed their tags too
  });
});

describe("getMany", () => {
  it("answers in the order asked, null where absent, duplicates repeated, in one statement", async () => {
    const a = await opened();
    const datums = ["x", "y", "z"].map((id, i) => makeDatum({ id, content: `c${id}`, createdAt: i, metadata: { n: String(i) } }));
    await a.putMany(datums);
    const got = await a.getMany(["z", "nope", "x", "z", "y", "x"]);
    expect(got.map((d) => d && plain(d))).toEqual(["z", null, "x", "z", "y", "x"].map((id) => (id === null ? null : plain(datums.find((d) => d.id === id) as Datum))));
    expect(await a.getMany([])).toEqual([]);
    expect(await a.getMany(["nope"])).toEqual([null]);
  });
});

describe("chainTail", () => {
  it("reads the last 20 steps of a 20 000-long chain without meeting the depth limit", async () => {
    const a = await opened();
    const n = 20_000;
    const id = (i: number) => `c/${String(i).padStart(5, "0")}`;
    await a.putMany(Array.from({ length: n }, (_, i) => makeDatum({ id: id(i), content: "x", createdAt: i, causalParent: i === 0 ? null : id(i - 1) })));
    const tail = await a.chainTail(id(n - 1), 20);
    expect(tail.map((d) => d.id)).toEqual(Array.from({ length: 20 }, (_, k) => id(n - 20 + k)));
    await expect(a.causalChain(id(n - 1), 10_000)).rejects.toMatchObject({ code: "DGENT_CAUSAL_DEPTH" });
    expect((await a.chainTail(id(5), 20)).map((d) => d.id)).toEqual([0, 1, 2, 3, 4, 5].map(id));
    expect(await a.chainTail("absent", 20)).toEqual([]);
    expect((await a.chainTail(id(0), 1)).map((d) => d.id)).toEqual([id(0)]);
  });

  it("equals the reference walk on random graphs with cycles and missing ancestors", async () => {
    const a = await opened();
    const ids = identifiers(a.schema, a.table);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }), { minLength: 10, maxLength: 10 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 1, max: 14 }),
        async (parents, start, n) => {
          await raw.query(`TRUNCATE ${ids.table}`);
          // Node 7 is missing (a parent may name it); self-parents become none. Cycles go in raw
          // (the append-only law only refuses a datum naming itself).
          const rows = parents.flatMap((p, i) => (i === 7 ? [] : [{ id: `n${i}`, parent: p === null || p === i ? null : `n${p}` }]));
          await raw.query(`INSERT INTO ${ids.table} (id, content, created_at, causal_parent) SELECT unnest($1::text[]), '\\x00', 0, unnest($2::text[])`, [
            rows.map((r) => r.id),
            rows.map((r) => r.parent),
          ]);
          const get = async (id: string) => {
            const r = rows.find((x) => x.id === id);
            return r ? makeDatum({ id: r.id, content: new Uint8Array([0]), createdAt: 0, causalParent: r.parent }) : null;
          };
          const outcome = async (p: Promise<Datum[]>) =>
            p.then(
              (chain) => chain.map((d) => d.id),
              (e: { code?: string; details?: { repeated?: string } }) => ({ code: e.code, repeated: e.details?.repeated }),
            );
          expect(await outcome(a.chainTail(`n${start}`, n))).toEqual(await outcome(walkTail(`n${start}`, get, n)));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("projections", () => {
  it("meta and ids never read content: a role that may not select the content column still gets them", async () => {
    const a = await opened();
    await a.putMany([1, 2, 3].map((i) => makeDatum({ id: `p${i}`, content: `secret ${i}`, createdAt: i, metadata: { role: "user" } })));
    const ids = identifiers(a.schema, a.table);
    const role = freshSchema("noc");
    await raw.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    try {
      await raw.query(`GRANT USAGE ON SCHEMA ${ids.schema} TO ${role}`);
      await raw.query(`GRANT SELECT (id, created_at, causal_parent, metadata) ON ${ids.table} TO ${role}`);
      await raw.query(`GRANT SELECT ON ${ids.tags}, ${ids.migrations} TO ${role}`);
      const url = new URL(server.url);
      url.username = role;
      url.password = "pw";
      const b = postgresAdapter({ url: url.toString(), namespace: a.schema, listen: false });
      await b.open();
      try {
        for (const where of [{}, { where: { role: "user" } }, { where: { role: { in: ["user", "x"] } } }]) {
          const meta = await b.query(q({ ...where, select: "meta" }));
          expect(meta.map((d) => d.id)).toEqual(["p3", "p2", "p1"]);
          expect(meta.every((d) => !("content" in d))).toBe(true);
          expect((await b.query(q({ ...where, select: "ids" }))).map((d) => d.id)).toEqual(["p3", "p2", "p1"]);
          expect(await b.count(q(where))).toBe(3);
        }
        // The same role asking for full datums is refused: the content column is what it lacks.
        await expect(b.query(q({ select: "full" }))).rejects.toThrow(/permission denied/);
      } finally {
        await b.close();
      }
    } finally {
      await raw.query(`DROP OWNED BY ${role}`);
      await raw.query(`DROP ROLE ${role}`);
    }
    expect(pageSql(ids, q({ where: { role: "user" }, select: "meta" }))?.text).not.toMatch(/content/);
    expect(countSql(ids, q({ where: { role: "user" } }))?.text).not.toMatch(/content/);
  });
});

describe("migration from schema version 3", () => {
  it("runs without the profile's statement timeout (a backfill takes as long as it takes)", async () => {
    const namespace = freshSchema("slowmig");
    const ids = identifiers(namespace, "data");
    // A pool whose every statement may take 100 ms, and a migration step that takes 300 ms.
    const lease = acquirePool(resolveOptions({ url: server.url, namespace, statementTimeoutMs: 100 }));
    const slow = { version: MIGRATIONS.length + 1, name: "slow", up: () => ["SELECT pg_sleep(0.3)"] };
    try {
      await expect(lease.pool.query("SELECT pg_sleep(0.3)")).rejects.toMatchObject({ code: "57014" });
      expect(await migrate(lease.pool, ids, "data", namespace, POSTGRES_DOCKER, [...MIGRATIONS, slow])).toEqual({
        version: slow.version,
        applied: [...MIGRATIONS.map((m) => m.version), slow.version],
      });
    } finally {
      await lease.release();
      await dropSchema(server, namespace);
    }
  });

  it("keeps the data, fills the tags from it, and answers queries on it", async () => {
    const namespace = freshSchema("mig4");
    const ids = identifiers(namespace, "data");
    const lease = acquirePool(resolveOptions({ url: server.url, namespace }));
    try {
      expect(await migrate(lease.pool, ids, "data", namespace, POSTGRES_DOCKER, MIGRATIONS.slice(0, 3))).toEqual({ version: 3, applied: [1, 2, 3] });
      // Rows as the previous dgent wrote them (plain inserts; no tags table exists yet).
      const datums = Array.from({ length: 300 }, (_, i) =>
        makeDatum({
          id: `old/${String(i).padStart(3, "0")}`,
          content: `old ${i}`,
          createdAt: 1_000 + (i % 50),
          causalParent: i % 10 === 0 ? null : `old/${String(i - 1).padStart(3, "0")}`,
          metadata: { role: ["user", "assistant", "tool"][i % 3] as string, ...(i % 7 === 0 ? { pinned: "yes" } : {}) },
        }),
      );
      await raw.query(
        `INSERT INTO ${ids.table} (id, content, created_at, causal_parent, metadata)
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::text[], $5::jsonb[])`,
        [datums.map((d) => d.id), datums.map((d) => Buffer.from(d.content)), datums.map((d) => d.createdAt), datums.map((d) => d.causalParent), datums.map((d) => JSON.stringify(d.metadata))],
      );
      expect((await raw.query(`SELECT to_regclass($1) AS t`, [`${namespace}.data_tags`])).rows[0]).toEqual({ t: null });
      const a = await opened({ namespace });
      expect((await a.stats()).migrationsApplied).toEqual(MIGRATIONS.slice(3).map((m) => m.version));
      const cases: QueryOptions[] = [{ where: { role: "tool" } }, { where: { pinned: { exists: true } }, order: "oldest" }, { parent: "old/004" }, { prefix: "old/2" }];
      for (const options of cases) {
        const query = q({ ...options, limit: 1000 });
        expect((await a.query(query)).map(plain)).toEqual((evaluateQuery(query, datums) as Datum[]).map(plain));
        expect(await a.count(query)).toBe(countQuery(query, datums));
      }
      const tags = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ids.tags}`);
      expect(tags.rows[0]?.n).toBe(datums.reduce((n, d) => n + Object.keys(d.metadata).length, 0));
      // New writes keep the tags in step, old rows and new alike answer.
      await a.put(makeDatum({ id: "new/1", content: "n", createdAt: 2_000, metadata: { role: "tool" } }));
      expect((await a.query(q({ where: { role: "tool" }, limit: 2 }))).map((d) => d.id)).toEqual(["new/1", "old/299"]);
    } finally {
      await lease.release();
    }
  });
});

describe("plans (EXPLAIN, 20 000 datums, ANALYZEd; no planner setting changed)", () => {
  it("a tag-filtered page is an ordered scan of the tags index in either order, without a sort; children use their index", async () => {
    const a = await opened();
    const n = 20_000;
    await a.putMany(
      Array.from({ length: n }, (_, i) =>
        makeDatum({
          id: `m/${String(i).padStart(5, "0")}`,
          content: "x".repeat(200),
          createdAt: 1_000 + Math.floor(i / 3),
          causalParent: i % 50 === 0 ? null : `m/${String(i - (i % 50)).padStart(5, "0")}`,
          metadata: { role: `v${(i * 7919) % 20}`, topic: `t${i % 500}` },
        }),
      ),
    );
    const ids = identifiers(a.schema, a.table);
    await raw.query(`ANALYZE ${ids.table}`);
    await raw.query(`ANALYZE ${ids.tags}`);
    const plan = async (query: ResolvedQuery, make = pageSql) => {
      const sql = make(ids, query);
      if (sql === null) throw new Error("no statement");
      const r = await raw.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql.text}`, sql.values);
      return r.rows.map((row) => row["QUERY PLAN"]).join("\n");
    };
    const tagScan = (backward: boolean) => new RegExp(`Index (Only )?Scan ${backward ? "Backward " : ""}using data_tags_idx`);
    const cursor = { createdAt: 5_000, id: "m/12000" };
    for (const [name, query, backward] of [
      ["eq, newest", q({ where: { role: "v7" } }), true],
      ["eq, oldest", q({ where: { role: "v7" }, order: "oldest" }), false],
      ["eq, newest, past a cursor", { ...q({ where: { role: "v7" } }), cursor }, true],
      ["eq, oldest, past a cursor", { ...q({ where: { role: "v7" }, order: "oldest" }), cursor }, false],
      ["eq + before + meta", q({ where: { topic: "t42" }, before: 4_000, select: "meta" }), true],
    ] as const) {
      const text = await plan(query);
      expect(text, `${name}:\n${text}`).toMatch(tagScan(backward));
      expect(text, `${name}:\n${text}`).not.toMatch(/Seq Scan|Sort/);
    }
    // Two tags: one prepared statement that, when it runs, walks the rarer tag's range (topic: 40
    // entries, role: 1 000) in order and looks each candidate up in the other's index by its full
    // key; the branch that would walk the other tag is never executed, whatever the plan.
    const twoSql = pageSql(ids, q({ where: { role: "v7", topic: "t42" } }));
    expect(twoSql?.name).toBeDefined();
    const analyzed = async (sql: { text: string; values: unknown[] }) =>
      (await raw.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF) ${sql.text}`, sql.values)).rows.map((row) => row["QUERY PLAN"]).join("\n");
    const two = await analyzed(twoSql as { text: string; values: unknown[] });
    expect(two, two).toMatch(/on data_tags t0 \(never executed\)/);
    expect(two, two).toMatch(/on data_tags t1\S* \(actual[^\n]*rows=40 loops=1\)/);
    expect(two, two).toMatch(/on data_tags t0\S* \(actual[^\n]*loops=40\)\n\s+Index Cond: \(\(key = 'role'::text\) AND \(value = 'v7'::text\) AND \(created_at = t1\S*\.created_at\) AND \(id = t1\S*\.id\)\)/);
    expect(two, two).not.toMatch(/Seq Scan/);
    // …and so does the generic plan a connection keeps for the prepared statement (after five runs).
    const types = (twoSql?.values ?? []).map(() => "text").join(", ");
    await raw.query(`PREPARE two_tags (${types}) AS ${twoSql?.text.replace(/\$(\d+)::text/g, "$$$1")}`);
    try {
      const args = (twoSql?.values ?? []).map((v) => `'${String(v)}'`).join(", ");
      for (let i = 0; i < 6; i++) await raw.query(`EXECUTE two_tags (${args})`);
      const generic = (await raw.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF) EXECUTE two_tags (${args})`)).rows.map((row) => row["QUERY PLAN"]).join("\n");
      expect(generic, generic).toMatch(/on data_tags t0 \(never executed\)/);
      expect(generic, generic).toMatch(/on data_tags t1\S* \(actual[^\n]*rows=40 loops=1\)/);
      expect(generic, generic).not.toMatch(/Seq Scan/);
      const kept = await raw.query<{ generic_plans: string }>("SELECT generic_plans FROM pg_prepared_statements WHERE name = 'two_tags'");
      expect(Number(kept.rows[0]?.generic_plans)).toBeGreaterThan(0);
    } finally {
      await raw.query("DEALLOCATE two_tags");
    }
    // An `in` of several values: one ordered tags scan per value (each planned with its value), merged.
    const several = await plan(q({ where: { role: { in: ["v1", "v2", "v3"] } } }));
    expect(several.match(/Index Only Scan Backward using data_tags_idx/g), several).toHaveLength(3);
    expect(several, several).toMatch(/Append/);
    // …reading keys only; the page's datums are fetched once, after the merge.
    expect(several.match(/using data_pkey/g), several).toHaveLength(1);
    expect(several, several).not.toMatch(/Seq Scan/);
    // Past 16 values, one LATERAL scan over them, still on the tags index.
    const many = await plan(q({ where: { topic: { in: Array.from({ length: 40 }, (_, i) => `t${i}`) } } }));
    expect(many, many).toMatch(/Function Scan on unnest/);
    expect(many, many).toMatch(/data_tags_idx/);
    expect(many, many).not.toMatch(/Seq Scan/);
    // A tag within a narrow id prefix ("role = v7 in thread m/005", 100 datums): the prefix is a
    // range of the primary key, each row's tag looked up, the few left sorted — not a walk of
    // the tag's 1 000 entries in time order.
    const thread = await plan(q({ prefix: "m/005", where: { role: "v7" }, order: "oldest" }));
    expect(thread, thread).toMatch(/Index Scan using data_pkey on data d[^\n]*\n\s+Index Cond: \(\(id >= 'm\/005'::text\) AND \(id < 'm\/006'::text\)\)/);
    expect(thread, thread).not.toMatch(/Seq Scan/);
    // Children: the parent's rows are a range of the children index, in order.
    for (const order of ["newest", "oldest"] as const) {
      const children = await plan(q({ parent: "m/00050", order }));
      expect(children, children).toMatch(/Index Scan (Backward )?using data_children_idx/);
      expect(children, children).not.toMatch(/Seq Scan|Sort/);
    }
    // count with a tag: the tags index alone, not the datum table.
    const counted = await plan(q({ where: { topic: "t42" } }), countSql);
    expect(counted, counted).toMatch(/Index Cond: \(\(key = .topic.::text\) AND \(value = .t42.::text\)\)/);
    expect(counted, counted).not.toMatch(/Seq Scan| on data d/);
    // An ids page: the tags index alone, in order, whatever the position conditions.
    for (const query of [q({ where: { role: "v7" }, select: "ids" }), { ...q({ where: { role: "v7" }, order: "oldest", select: "ids" }), cursor }]) {
      const idsPlan = await plan(query, idsSql);
      expect(idsPlan, idsPlan).toMatch(/Index Only Scan (Backward )?using data_tags_idx on data_tags t1/);
      expect(idsPlan, idsPlan).not.toMatch(/Seq Scan|Sort| on data d|data_pkey/);
    }
    expect((await a.queryIds(q({ where: { role: "v7" }, limit: 5, select: "ids" }))).expiresAt).toBeNull();
    // And the answers agree with the plans' reading.
    const page = await a.query(q({ where: { role: "v7" }, limit: 5, select: "ids" }));
    expect(page.every((d) => d.metadata.role === "v7")).toBe(true);
    // Once a datum of the namespace carries the expiry tag, ids pages carry each id's tag.
    await a.put(makeDatum({ id: "m/exp", content: "x", createdAt: 9_999_999, metadata: { role: "v7", [EXPIRES_AT]: "5" } }));
    const tagged = await a.queryIds(q({ where: { role: "v7" }, limit: 2, select: "ids" }));
    expect(tagged.ids[0]).toBe("m/exp");
    expect(tagged.expiresAt).toEqual(["5", null]);
  });
});
