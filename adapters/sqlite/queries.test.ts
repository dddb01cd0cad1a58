import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum, type MakeDatumInput } from "../../core/datum.js";
import { isDgentError, type DgentError } from "../../core/errors.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { countQuery, evaluateQuery, idEntryOf, idPageOf, resolveQuery, unpaged, type DatumHeader, type Position, type QueryOptions, type ResolvedQuery } from "../../core/query.js";
import { walkTail } from "../../core/router-query.js";
import { sqliteAdapter, type SqliteAdapter } from "./index.js";
import { fileAtSchema } from "../../test/harness/sqlite-schema.js";
import { candidates, idBounds, pageSql, setSql, type Driver } from "./query-sql.js";
import { createStore } from "../../core/store.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-q-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const datum = (id: string, extra: Partial<MakeDatumInput> = {}): Datum => makeDatum({ content: `content of ${id}`, createdAt: 1_000, ...extra, id });

async function codeOf(fn: () => unknown): Promise<DgentError> {
  try {
    await fn();
  } catch (error) {
    if (isDgentError(error)) return error;
    throw error;
  }
  throw new Error("expected a coded error, but the call succeeded");
}

/** A datum or header as plain data (content as hex), for comparing what a tier returns with the reference. */
const plain = (d: Datum | DatumHeader) => ({
  id: d.id,
  createdAt: d.createdAt,
  causalParent: d.causalParent,
  metadata: { ...d.metadata },
  ...("content" in d ? { content: Buffer.from(d.content).toString("hex") } : {}),
});
const plainAll = (ds: readonly (Datum | DatumHeader)[]) => ds.map(plain);

/** Rows of a query-sql.ts statement as the adapter maps them. */
function rowsToItems(rows: unknown[][], select: ResolvedQuery["select"]): Array<Datum | DatumHeader> {
  return rows.map((r) =>
    select === "full"
      ? { id: r[0] as string, content: r[1] as Buffer, createdAt: r[2] as number, causalParent: r[3] as string | null, metadata: r[4] === null ? {} : JSON.parse(r[4] as string) }
      : select === "ids"
        ? { id: r[0] as string, createdAt: r[1] as number, causalParent: null, metadata: r[2] === null ? {} : { [EXPIRES_AT]: r[2] as string } }
        : { id: r[0] as string, createdAt: r[1] as number, causalParent: r[2] as string | null, metadata: r[3] === null ? {} : JSON.parse(r[3] as string) },
  );
}

const statementsOf = async (a: SqliteAdapter, fn: () => Promise<unknown>): Promise<number> => {
  const before = (await a.stats()).queries as number;
  await fn();
  return ((await a.stats()).queries as number) - before - 1;
};

// ---- random data and filters ----

/** Id pieces: SQL wildcards and the escape, case, and characters around UTF-8/UTF-16 order boundaries. */
const ID_CHARS = ["a", "b", "A", "%", "_", "\\", "/", "é", "\ue000", "😀"];
const KEYS = ["role", "k%", "a.b", '"q"'];
const VALUES = ["u", "ua", "a%", "a_", "a\\", "A", "", "😀"];
const TIMES = [1, 2, 2.5, 3];

const idArb = fc.array(fc.constantFrom(...ID_CHARS), { minLength: 1, maxLength: 3 }).map((cs) => cs.join(""));
const textArb = (chars: readonly string[], max: number) => fc.array(fc.constantFrom(...chars), { maxLength: max }).map((cs) => cs.join(""));

interface Spec {
  readonly id: string;
  readonly t: number;
  readonly parent: number | null;
  readonly meta: Record<string, string>;
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  id: idArb,
  t: fc.constantFrom(...TIMES),
  parent: fc.option(fc.nat(30), { nil: null }),
  meta: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { minKeys: 1, maxKeys: 4 }),
});

function build(specs: readonly Spec[]): Datum[] {
  return specs.map((s, i) => {
    const parent = s.parent === null ? null : (specs[s.parent]?.id ?? "ghost");
    return datum(s.id, { createdAt: s.t, causalParent: parent === s.id ? null : parent, metadata: s.meta, content: `c${i}` });
  });
}

const tagArb = fc.oneof(
  fc.constantFrom(...VALUES),
  fc.record({ eq: fc.constantFrom(...VALUES) }),
  fc.record({ in: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 2, maxLength: 4 }) }),
  fc.record({ in: fc.constantFrom(...VALUES).map((v) => [v]) }),
  fc.record({ prefix: textArb(["", "a", "u", "%", "_", "\\", "A"], 2) }),
  fc.record({ exists: fc.boolean() }),
);

const FILTERS = ["prefix", "idRange", "where", "parent", "after", "before"] as const;

/** One or two kinds of filter (more would leave almost every page empty on 30 datums); `where` most often. */
const filterArb = (ids: readonly string[], parents: readonly string[] = []): fc.Arbitrary<QueryOptions> =>
  fc.subarray([...FILTERS, "where", "where", "where"], { minLength: 0, maxLength: 2 }).chain((kinds) =>
    fc.record({
      // Bounds and prefixes from the stored ids half the time, so that most of them match something.
      prefix: kinds.includes("prefix") ? fc.oneof(textArb(ID_CHARS, 2), fc.constantFrom(...ids).map((id) => [...id].slice(0, 1).join(""))) : fc.constant(undefined),
      idRange: kinds.includes("idRange")
        ? fc.record({ gte: fc.oneof(idArb, fc.constantFrom(...ids)), lt: fc.oneof(idArb, fc.constantFrom(...ids)) }, { requiredKeys: [] })
        : fc.constant(undefined),
      where: kinds.includes("where") ? fc.dictionary(fc.constantFrom(...KEYS), tagArb, { minKeys: 1, maxKeys: kinds.length === 1 ? 2 : 1 }) : fc.constant(undefined),
      parent: kinds.includes("parent") ? fc.oneof(fc.constantFrom(...ids, "ghost"), fc.constantFrom("ghost", ...parents)) : fc.constant(undefined),
      after: kinds.includes("after") ? fc.constantFrom(0, 1, 2, 2.5, 3) : fc.constant(undefined),
      before: kinds.includes("before") ? fc.constantFrom(1, 2, 2.5, 3, 4) : fc.constant(undefined),
    }).map((f) => Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as QueryOptions),
  );

const ALL_KINDS = ["prefix", "idGte", "idLt", "parent", "after", "before", "in", "in-many", "prefix-tag", "exists", "not-exists"];

/** The kinds of filter a query uses (for the coverage check). */
function kinds(q: ResolvedQuery): string[] {
  const out: string[] = [];
  if (q.prefix !== "") out.push("prefix");
  if (q.idGte !== null) out.push("idGte");
  if (q.idLt !== null) out.push("idLt");
  if (q.parent !== null) out.push("parent");
  if (q.after !== null) out.push("after");
  if (q.before !== null) out.push("before");
  for (const f of q.where) out.push(f.op === "in" ? (f.values.length > 1 ? "in-many" : "in") : f.op === "prefix" ? "prefix-tag" : f.value ? "exists" : "not-exists");
  return out;
}

/** Datums and `n` filters over their ids. */
const withFilters = (min: number, max: number, n: number): fc.Arbitrary<[Datum[], QueryOptions[]]> =>
  fc
    .uniqueArray(specArb, { selector: (s) => s.id, minLength: min, maxLength: max })
    .map(build)
    .chain((ds) => {
      const parents = ds.flatMap((d) => (d.causalParent === null ? [] : [d.causalParent]));
      return fc.tuple(fc.constant(ds), fc.array(filterArb(ds.map((d) => d.id).concat("x"), parents), { minLength: n, maxLength: n }));
    });

// ---- one adapter, emptied between runs ----

let a: SqliteAdapter;
let raw: Database.Database;
let path: string;
beforeAll(async () => {
  path = join(tempDir(), "queries.db");
  a = sqliteAdapter({ path });
  await a.open();
  raw = new Database(path, { readonly: true });
});
afterAll(async () => {
  raw.close();
  await a.close();
});

async function reset(ds: readonly Datum[]): Promise<void> {
  await a.deleteMany(resolveQuery({}, { paged: false }));
  await a.putMany(ds);
}

const last = (items: readonly (Datum | DatumHeader)[]): Position => {
  const l = items.at(-1) as DatumHeader;
  return { createdAt: l.createdAt, id: l.id };
};

/** Pages `q` to the end with `page`, checking each against the reference over `all()` (which may grow between pages). */
async function pageThrough(
  q: ResolvedQuery,
  page: (q: ResolvedQuery) => Promise<Array<Datum | DatumHeader>> | Array<Datum | DatumHeader>,
  all: () => readonly Datum[],
  between: () => Promise<void> = async () => undefined,
): Promise<number> {
  let cursor: Position | null = null;
  let pages = 0;
  for (;;) {
    const pq: ResolvedQuery = { ...q, cursor };
    const got = await page(pq);
    // An ids page need only get the id, createdAt and the expiry tag right (core/query.ts idEntryOf).
    const seen = (ds: readonly (Datum | DatumHeader)[]) => plainAll(q.select === "ids" ? ds.map(idEntryOf) : ds);
    expect(seen(got), JSON.stringify({ ...pq, page: pages })).toEqual(seen(evaluateQuery(pq, all())));
    pages++;
    if (got.length < q.limit) return pages;
    cursor = last(got);
    await between();
  }
}

describe("sqlite queries agree with the reference evaluation", () => {
  it("every driver's SQL, paged to the end in both orders, and count and the matching set (property)", async () => {
    const seenDrivers = new Set<string>();
    const hits = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        withFilters(0, 30, 3),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom("full", "meta", "ids"),
        fc.context(),
        async ([ds, filters], limit, select, ctx) => {
          await reset(ds);
          for (const f of filters) {
            for (const order of ["newest", "oldest"] as const) {
              const q = resolveQuery({ ...f, order, limit, select });
              ctx.log(JSON.stringify(q));
              if (evaluateQuery(q, ds).length > 0) for (const kind of kinds(q)) hits.set(kind, (hits.get(kind) ?? 0) + 1);
              const bounds = idBounds(q);
              if (bounds === null) {
                expect(evaluateQuery(q, ds)).toEqual([]);
                expect(await a.query(q)).toEqual([]);
                continue;
              }
              const drivers: Driver[] = [{ kind: "time" }, ...candidates(q, bounds)];
              for (const driver of drivers) {
                seenDrivers.add(driver.kind);
                await pageThrough(q, (pq) => {
                  const built = pageSql(pq, bounds, driver);
                  if (select !== "full") expect(built.sql).not.toMatch(/content/);
                  return rowsToItems(raw.prepare(built.sql).raw(true).all(...built.params) as unknown[][], select);
                }, () => ds);
                const whole = unpaged(q);
                const count = setSql(whole, bounds, driver, "count");
                expect(raw.prepare(count.sql).pluck(true).get(...count.params), `count by ${driver.kind}`).toBe(countQuery(whole, ds));
                const ids = setSql(whole, bounds, driver, "ids");
                expect((raw.prepare(ids.sql).pluck(true).all(...ids.params) as string[]).sort()).toEqual(evaluateQuery(whole, ds).map((d) => d.id).sort());
              }
              // The adapter's own choice, and count through it.
              await pageThrough(q, (pq) => a.query(pq), () => ds);
              expect(await a.queryIds(q)).toEqual(idPageOf(evaluateQuery(q, ds)));
              expect(await a.count(q)).toBe(countQuery(q, ds));
            }
          }
        },
      ),
      { numRuns: 200 },
    );
    expect([...seenDrivers].sort()).toEqual(["ids", "parent", "tag", "time"]);
    // Every kind of filter met datums it matched (the checks above were not all about empty pages).
    expect([...hits.keys()].sort(), JSON.stringify(Object.fromEntries(hits))).toEqual([...ALL_KINDS].sort());
  });

  it("pages stay exact while datums are inserted between pages, in both orders (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        withFilters(5, 40, 2),
        fc.integer({ min: 1, max: 5 }),
        async ([ds, filters], limit) => {
          // Half the datums are there at the start; the rest arrive one per page, at any time.
          const initial = ds.slice(0, ds.length >> 1);
          const later = ds.slice(ds.length >> 1);
          for (const [k, order] of (["newest", "oldest"] as const).entries()) {
            await reset(initial);
            const stored = [...initial];
            const q = resolveQuery({ ...filters[k], order, limit, select: "meta" });
            const pending = [...later];
            await pageThrough(q, (pq) => a.query(pq), () => stored, async () => {
              const next = pending.shift();
              if (next === undefined) return;
              await a.put(next);
              stored.push(next);
            });
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("sqlite queries: literal wildcards", () => {
  it("%, _ and \\ in an id prefix and a tag prefix match only themselves, case-sensitively", async () => {
    const ids = ["a%b", "a_b", "a\\b", "aXb", "A%b", "ab", "a%%"];
    const ds = ids.map((id, i) => datum(id, { createdAt: i, metadata: { v: id, w: i % 2 ? "x" : "y" } }));
    await reset(ds);
    const idsOf = async (o: QueryOptions) => (await a.query(resolveQuery({ ...o, order: "oldest" }))).map((d) => d.id);
    expect(await idsOf({ prefix: "a%" })).toEqual(["a%b", "a%%"]);
    expect(await idsOf({ prefix: "a_" })).toEqual(["a_b"]);
    expect(await idsOf({ prefix: "a\\" })).toEqual(["a\\b"]);
    expect(await idsOf({ prefix: "A" })).toEqual(["A%b"]);
    expect(await idsOf({ where: { v: { prefix: "a%" } } })).toEqual(["a%b", "a%%"]);
    expect(await idsOf({ where: { v: { prefix: "a_" } } })).toEqual(["a_b"]);
    expect(await idsOf({ where: { v: { prefix: "a\\" } } })).toEqual(["a\\b"]);
    expect(await idsOf({ where: { v: { prefix: "a" }, w: "x" } })).toEqual(["a_b", "aXb", "ab"]);
    expect(await idsOf({ where: { v: "a%b" } })).toEqual(["a%b"]);
    expect(await a.count(resolveQuery({ where: { v: { prefix: "a%" } } }, { paged: false }))).toBe(2);
    // The same through every driver (the tag as a probe on the row, and as the index).
    const q = resolveQuery({ prefix: "a", where: { v: { prefix: "a_" } } });
    const bounds = idBounds(q) as NonNullable<ReturnType<typeof idBounds>>;
    for (const driver of [{ kind: "time" }, ...candidates(q, bounds)] as Driver[]) {
      const built = pageSql(q, bounds, driver);
      expect((raw.prepare(built.sql).raw(true).all(...built.params) as unknown[][]).map((r) => r[0]), driver.kind).toEqual(["a_b"]);
    }
  });
});

describe("sqlite queries: deleteMany", () => {
  it("deletes every match in one transaction and their tags with them; a failure midway leaves all of them", async () => {
    const ds = Array.from({ length: 50 }, (_, i) => datum(`del/${String(i).padStart(2, "0")}`, { createdAt: i, metadata: { k: i % 2 ? "odd" : "even" } }));
    await reset([...ds, datum("keep/1", { metadata: { k: "odd" } })]);
    // Another connection plants a trigger that refuses to delete one of them, midway.
    const writer = new Database(path);
    writer.exec("CREATE TRIGGER refuse_one BEFORE DELETE ON data WHEN old.id = 'del/25' BEGIN SELECT RAISE(ABORT, 'planted failure'); END");
    const error = await codeOf(() => a.deleteMany(unpaged(resolveQuery({ prefix: "del/" }))));
    expect(error.code).toBe("DGENT_BACKEND_ERROR");
    expect(await a.count(resolveQuery({ prefix: "del/" }, { paged: false }))).toBe(50);
    expect(await a.count(resolveQuery({ where: { k: "odd" } }, { paged: false }))).toBe(26);
    expect(raw.prepare("SELECT count(*) FROM tags WHERE id >= 'del/' AND id < 'del0'").pluck().get()).toBe(50);
    writer.exec("DROP TRIGGER refuse_one");
    writer.close();

    const odd = await a.deleteMany(unpaged(resolveQuery({ prefix: "del/", where: { k: "odd" } })));
    expect(odd.sort()).toEqual(ds.filter((_, i) => i % 2).map((d) => d.id));
    expect(await a.count(resolveQuery({ where: { k: "odd" } }, { paged: false }))).toBe(1);
    const rest = await a.deleteMany(unpaged(resolveQuery({ prefix: "del/" })));
    expect(rest.length).toBe(25);
    expect(raw.prepare("SELECT count(*) FROM tags WHERE id >= 'del/' AND id < 'del0'").pluck().get()).toBe(0);
    expect((await a.query(resolveQuery({}))).map((d) => d.id)).toEqual(["keep/1"]);
    expect(await a.deleteMany(unpaged(resolveQuery({ prefix: "del/" })))).toEqual([]);
  });
});

describe("sqlite queries: getMany", () => {
  it("returns the datums in the order asked, null where absent, duplicates repeated, in one statement", async () => {
    await reset([datum("g/a", { metadata: { x: "1" } }), datum("g/b", { createdAt: 5 })]);
    let got: Array<Datum | null> = [];
    expect(await statementsOf(a, async () => (got = await a.getMany(["g/b", "g/none", "g/a", "g/b"])))).toBe(1);
    expect(got.map((d) => d?.id ?? null)).toEqual(["g/b", null, "g/a", "g/b"]);
    expect(plain(got[2] as Datum)).toEqual(plain(datum("g/a", { metadata: { x: "1" } })));
    expect(await a.getMany([])).toEqual([]);
    const many = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? "g/a" : `g/missing/${i}`));
    const all = await a.getMany(many);
    expect(all.filter((d) => d !== null).length).toBe(5_000);
    expect(all[1]?.id).toBe("g/a");
  });
});

describe("sqlite queries: chainTail", () => {
  it("reads only the tail of a 20,000-long chain, in one statement, where causalChain meets its depth limit", async () => {
    const chain: Datum[] = [];
    for (let i = 0; i < 20_000; i++) chain.push(datum(`long/${i}`, { createdAt: i, causalParent: i ? `long/${i - 1}` : null }));
    await reset(chain);
    let tail: Datum[] = [];
    expect(await statementsOf(a, async () => (tail = await a.chainTail("long/19999", 20)))).toBe(1);
    expect(tail.map((d) => d.id)).toEqual(chain.slice(-20).map((d) => d.id));
    expect(Buffer.from(tail[0]?.content ?? []).toString()).toBe("content of long/19980");
    expect((await a.chainTail("long/5", 20)).map((d) => d.id)).toEqual(chain.slice(0, 6).map((d) => d.id));
    expect(await a.chainTail("long/none", 20)).toEqual([]);
    expect((await codeOf(() => a.causalChain("long/19999", 10_000))).code).toBe("DGENT_CAUSAL_DEPTH");
  });

  it("agrees with core's walk on random parent graphs: chains, forks, missing parents and cycles (property)", async () => {
    const outcomes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.nat(14), { nil: null }), { minLength: 1, maxLength: 12 }),
        fc.nat(13),
        fc.integer({ min: 1, max: 14 }),
        async (parents, start, n) => {
          const ds = parents.map((p, i) => datum(`c/${i}`, { createdAt: i, causalParent: p === null || p === i ? null : `c/${p}` }));
          await reset(ds);
          const byId = new Map(ds.map((d) => [d.id, d]));
          const outcome = async (f: () => Promise<Datum[]>) => {
            try {
              return { ids: (await f()).map((d) => d.id) };
            } catch (error) {
              return { code: (error as DgentError).code, repeated: (error as DgentError).details?.repeated };
            }
          };
          const expected = await outcome(() => walkTail(`c/${start}`, async (id) => byId.get(id) ?? null, n));
          expect(await outcome(() => a.chainTail(`c/${start}`, n))).toEqual(expected);
          outcomes.add(expected.code ?? (expected.ids?.length ? "chain" : "empty"));
        },
      ),
      // Besides the random runs, one graph of each kind, so every outcome is reached whatever the seed.
      { numRuns: 300, examples: [[[1, 0], 0, 14], [[null], 5, 1], [[null, 0, 1], 2, 2]] },
    );
    expect([...outcomes].sort()).toEqual(["DGENT_CAUSAL_CYCLE", "chain", "empty"]);
  });
});

describe("sqlite queries: plans", () => {
  beforeAll(async () => {
    const ds: Datum[] = [];
    for (let i = 0; i < 5_000; i++) {
      ds.push(datum(`p/${String(i % 50).padStart(2, "0")}/${String(i).padStart(5, "0")}`, {
        createdAt: 1_000 + i,
        causalParent: i % 100 ? null : "p/root",
        metadata: { topic: `t${i % 20}`, role: ["user", "agent", "tool"][i % 3] as string },
      }));
    }
    await reset(ds);
  });

  const planOf = async (q: ResolvedQuery) => (await a.explainQuery(q))?.plan.join("\n") ?? "";
  const plan = (o: QueryOptions) => planOf(resolveQuery(o));
  /** No full walk of the datums table or its time index. */
  const noScan = (text: string) => expect(text).not.toMatch(/^SCAN (d|data|o)\b/m);

  it("a tag filter reads its range of the tags index, in order: no scan and no sort", async () => {
    for (const order of ["newest", "oldest"] as const) {
      const text = await plan({ where: { topic: "t7" }, order, limit: 100 });
      expect(text).toMatch(/^SEARCH t USING PRIMARY KEY \(key=\? AND value=\?\)$/m);
      expect(text).not.toMatch(/TEMP B-TREE/);
      noScan(text);
    }
    // A cursor and time bounds narrow the same range.
    const paged = await plan({ where: { topic: "t7" }, before: 4_000, after: 1_000, limit: 100 });
    expect(paged).toMatch(/SEARCH t USING PRIMARY KEY \(key=\? AND value=\? AND created_at>\? AND created_at<\?\)/);
    const q = resolveQuery({ where: { topic: "t7" }, limit: 10 });
    const page = await a.query(q);
    const next = await planOf({ ...q, cursor: last(page) });
    expect(next).toMatch(/SEARCH t USING PRIMARY KEY \(key=\? AND value=\? AND \(created_at,id\)<\(\?,\?\)\)/);
  });

  it("an ids page reads the tags index alone (no row, no sort) while no datum expires: two statements", async () => {
    for (const order of ["newest", "oldest"] as const) {
      const q = resolveQuery({ where: { topic: "t7" }, order, limit: 100, select: "ids" });
      const text = await planOf(q);
      expect(text).toBe("SEARCH t USING PRIMARY KEY (key=? AND value=?)");
      expect(await statementsOf(a, () => a.queryIds(q))).toBe(2);
      const page = await a.queryIds(q);
      expect(page).toEqual(idPageOf(evaluateQuery(q, (await a.query({ ...q, select: "full", limit: 5_000 })) as Datum[])));
      expect(page.ids).toHaveLength(100);
      expect(page.expiresAt).toBeNull();
    }
  });

  it("children read the (causal_parent, created_at, id) index in order; a prefix with a tag, several values and a tag prefix use an index", async () => {
    const children = await plan({ parent: "p/root" });
    expect(children).toMatch(/^SEARCH d USING INDEX idx_data_children \(causal_parent=\?\)$/m);
    expect(children).not.toMatch(/TEMP B-TREE/);
    const thread = await plan({ prefix: "p/07/00", where: { role: "user" } });
    expect(thread).toMatch(/^SEARCH (d USING INDEX sqlite_autoindex_data_1 \(id>\? AND id<\?\)|t USING PRIMARY KEY \(key=\? AND value=\?\))$/m);
    noScan(thread);
    const set = await plan({ where: { topic: { in: ["t1", "t2"] } } });
    expect(set).toMatch(/^SEARCH t USING PRIMARY KEY \(key=\? AND value=\?\)$/m);
    noScan(set);
    // A narrow tag prefix (t19: 250 datums) reads its range; a broad one (t1, t10–t19: 2,750 of
    // 5,000) walks the time index, where a page of 100 fills within ~180 entries.
    const narrow = await plan({ where: { topic: { prefix: "t19" } } });
    expect(narrow).toMatch(/^SEARCH t USING PRIMARY KEY \(key=\? AND value>\? AND value<\?\)$/m);
    noScan(narrow);
    expect(await plan({ where: { topic: { prefix: "t1" } } })).toMatch(/^SCAN d USING INDEX idx_data_created$/m);
  });

  it("of two tag conditions, the one sparser near the page's start drives and the other is a probe", async () => {
    // topic t7: 1 in 20 datums; role user: 1 in 3. `where` sorts by key: role is condition 0, topic 1.
    for (const order of ["newest", "oldest"] as const) {
      const text = await plan({ where: { role: "user", topic: "t7" }, order });
      expect(text).toMatch(/^SEARCH t USING PRIMARY KEY \(key=\? AND value=\?\)$/m);
      expect(text).toMatch(/^SEARCH t0 EXISTS USING PRIMARY KEY \(key=\? AND value=\? AND created_at=\? AND id=\?\)$/m);
    }
    // A parent with few children drives over a common tag.
    expect(await plan({ parent: "p/root", where: { role: "user" } })).toMatch(/^SEARCH d USING INDEX idx_data_children \(causal_parent=\?\)$/m);
  });

  it("a plain page past a cursor seeks the (created_at, id) index in either order", async () => {
    for (const order of ["newest", "oldest"] as const) {
      const q = resolveQuery({ order, limit: 10 });
      const first = await a.query(q);
      const text = await planOf({ ...q, cursor: last(first) });
      expect(text).toMatch(new RegExp(`^SEARCH d USING (COVERING )?INDEX idx_data_created \\(\\(created_at,id\\)${order === "newest" ? "<" : ">"}\\(\\?,\\?\\)\\)$`, "m"));
      expect(text).not.toMatch(/TEMP B-TREE/);
    }
  });
});

describe("sqlite queries: ids pages and expiry", () => {
  it("an ids page through one tag equality writes a plain key into its statement and binds any other: the same pages, and an empty page", async () => {
    const tier = sqliteAdapter({ path: join(tempDir(), "keyed.db") });
    await tier.open();
    try {
      const keys = ["topic", "dgent.kind", "it's", "thé", "a b"];
      const ds = Array.from({ length: 40 }, (_, i) =>
        datum(`k/${String(i).padStart(2, "0")}`, { createdAt: 1_000 + (i % 7), metadata: Object.fromEntries(keys.map((k, j) => [k, `v${(i + j) % 3}`])) }),
      );
      await tier.putMany(ds);
      for (const key of keys) {
        for (const order of ["newest", "oldest"] as const) {
          const q = resolveQuery({ where: { [key]: "v1" }, order, limit: 4, select: "ids" });
          const sql = (await tier.explainQuery(q))?.sql ?? "";
          expect(sql).toContain(/^[a-z.]+$/.test(key) ? `t.key = '${key}'` : "t.key = ?");
          let cursor: Position | null = null;
          const seen: string[] = [];
          for (let pages = 0; pages < 10; pages++) {
            const pq: ResolvedQuery = { ...q, cursor };
            const page = await tier.queryIds(pq);
            expect(page).toEqual(idPageOf(evaluateQuery(pq, ds)));
            seen.push(...page.ids);
            if (page.ids.length < q.limit) break;
            cursor = page.last;
          }
          expect(seen).toEqual(evaluateQuery({ ...q, limit: 100 }, ds).map((d) => d.id));
        }
      }
      expect(await tier.queryIds(resolveQuery({ where: { topic: "none" }, limit: 4, select: "ids" }))).toEqual({ ids: [], last: null, expiresAt: null });
    } finally {
      await tier.close();
    }
  });

  it("once a datum of the namespace expires, ids pages carry the tags and the store leaves out (and refills past) the expired", async () => {
    let now = 10_000;
    const tier = sqliteAdapter({ path: join(tempDir(), "ids.db") });
    const store = createStore({ tiers: [tier], clock: () => now, expirySweepMs: false });
    await store.open();
    try {
      const ds = Array.from({ length: 6 }, (_, i) =>
        datum(`e/${i}`, { createdAt: 1_000 + i, metadata: { topic: "x", ...(i === 4 ? { [EXPIRES_AT]: "20000" } : {}) } }),
      );
      await store.putMany(ds);
      const q = resolveQuery({ where: { topic: "x" }, limit: 3, select: "ids" });
      const page = await tier.queryIds(q);
      expect(page).toEqual({ ids: ["e/5", "e/4", "e/3"], last: { createdAt: 1_003, id: "e/3" }, expiresAt: [null, "20000", null] });
      expect((await store.query({ where: { topic: "x" }, limit: 3, select: "ids" })).items).toEqual(["e/5", "e/4", "e/3"]);
      now = 20_000;
      const after = await store.query({ where: { topic: "x" }, limit: 3, select: "ids" });
      expect(after.items).toEqual(["e/5", "e/3", "e/2"]);
      const rest = await store.query({ where: { topic: "x" }, limit: 3, select: "ids", cursor: after.cursor as string });
      expect(rest.items).toEqual(["e/1", "e/0"]);
    } finally {
      await store.close();
    }
  });
});

describe("sqlite queries: migration from schema version 2", () => {
  it("a database made by version 2 keeps its data, gains its tags, and answers queries", async () => {
    const file = join(tempDir(), "v2.db");
    const old = fileAtSchema(file, 2);
    // Rows as version 2's adapter wrote them (sql.ts INSERT; metadata JSON or NULL when empty).
    const insert = old.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?)");
    const ds: Datum[] = [];
    for (let i = 0; i < 300; i++) {
      const metadata: Record<string, string> = i % 10 === 9 ? {} : { role: i % 2 ? "user" : "agent", "a.b": `v%${i % 3}` };
      const d = datum(`old/${String(i).padStart(3, "0")}`, { createdAt: 5_000 + (i % 40), causalParent: i ? "old/000" : null, metadata });
      ds.push(d);
      insert.run(d.id, Buffer.from(d.content), d.createdAt, d.causalParent, Object.keys(metadata).length ? JSON.stringify(metadata) : null);
    }
    old.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, 1, 1)").run("head", "old/001");
    old.close();

    const b = sqliteAdapter({ path: file });
    await b.open();
    try {
      expect((await b.stats()).migrationsApplied).toEqual([3, 4, 5, 6]);
      expect((await b.stats()).count).toBe(300);
      for (const o of [{ where: { role: "user" } }, { where: { "a.b": { prefix: "v%" } }, order: "oldest" }, { parent: "old/000", limit: 7 }, { where: { role: { exists: false } } }] as QueryOptions[]) {
        const q = resolveQuery(o);
        expect(plainAll(await b.query(q)), JSON.stringify(o)).toEqual(plainAll(evaluateQuery(q, ds)));
        expect(await b.count(q)).toBe(countQuery(q, ds));
      }
      expect((await b.getRef("head"))?.target).toBe("old/001");
      // New writes and deletes keep the backfilled tags in step.
      const added = datum("new/1", { createdAt: 9_999, metadata: { role: "user" } });
      await b.put(added);
      await b.delete("old/001");
      const now = [...ds.filter((d) => d.id !== "old/001"), added];
      const users = resolveQuery({ where: { role: "user" }, limit: 3 });
      expect((await b.query(users)).map((d) => d.id)).toEqual(evaluateQuery(users, now).map((d) => d.id));
      expect((await b.query(users))[0]?.id).toBe("new/1");
      expect(await b.count(users)).toBe(countQuery(users, now));
    } finally {
      await b.close();
    }
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT count(*) FROM tags").pluck().get()).toBe(270 * 2 - 2 + 1);
    expect(check.prepare("SELECT name FROM sqlite_schema WHERE name = 'idx_data_parent'").all()).toEqual([]);
    check.close();
  });
});
