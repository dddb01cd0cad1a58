import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { isDgentError } from "../../core/errors.js";
import { encodeCursor, evaluateQuery, countQuery, resolveQuery, type DatumHeader, type QueryOptions, type ResolvedQuery, type TagFilter } from "../../core/query.js";
import { createStore } from "../../core/store.js";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { gcsRig } from "../../test/harness/gcs-rig.js";
import type { Rig } from "../../test/harness/object-store-cases.js";
import { s3Rig } from "../../test/harness/s3-rig.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { RANKS } from "../ranks.js";
import { connectGcs } from "../gcs/backend.js";
import { resolveConfig as gcsConfig } from "../gcs/options.js";
import { connectS3 } from "../s3/backend.js";
import { resolveConfig as s3Config } from "../s3/options.js";
import { ObjectStoreAdapter } from "./adapter.js";
import type { ObjectBackend } from "./backend.js";
import { encodeEnvelope } from "./envelope.js";
import { sha256Hex, timeKey, type KeyLayout } from "./keys.js";

// Native queries on the object-store tiers against the real local servers: pages paged to the end
// in both orders equal core's reference evaluation (with garbage markers in the index), the
// projections read envelopes only, the id prefix and cursors narrow the listing, and getMany,
// deleteMany and a chain's tail cost what README.md says. Data is written straight into the
// servers' storage (markers and envelopes, as `put` lays them out); requests are counted by a
// recording backend in front of the real one.

const T = 1_700_000_000_000;
const bytes = (text: string) => new TextEncoder().encode(text);

interface Call {
  readonly op: string;
  readonly key: string;
  readonly length?: number;
  readonly startAfter?: string;
  readonly keys?: number;
}

/** The backend, with every call recorded in `calls`. */
function recording(backend: ObjectBackend, calls: Call[]): ObjectBackend {
  const traced: ObjectBackend = {
    location: backend.location,
    open: (create) => backend.open(create),
    close: () => backend.close(),
    ping: () => backend.ping(),
    get: (key) => {
      calls.push({ op: "get", key });
      return backend.get(key).catch((e: unknown) => {
        calls.push({ op: "get failed", key: String(e) });
        throw e;
      });
    },
    create: (key, body) => (calls.push({ op: "create", key }), backend.create(key, body)),
    put: (key, body) => (calls.push({ op: "put", key }), backend.put(key, body)),
    delete: (key, v) => (calls.push({ op: "delete", key }), backend.delete(key, v)),
    list: (prefix, cursor, max, startAfter) => {
      calls.push({ op: "list", key: prefix, ...(startAfter === undefined || cursor !== null ? {} : { startAfter }) });
      return backend.list(prefix, cursor, max, startAfter);
    },
  };
  if (backend.read) traced.read = backend.read.bind(backend);
  if (backend.write) traced.write = backend.write.bind(backend);
  if (backend.readHead) {
    const readHead = backend.readHead.bind(backend);
    traced.readHead = (key, length) => (calls.push({ op: "readHead", key, length }), readHead(key, length));
  }
  if (backend.deleteKeys) {
    const deleteKeys = backend.deleteKeys.bind(backend);
    traced.deleteKeys = (keys) => (calls.push({ op: "deleteKeys", key: keys[0] ?? "", keys: keys.length }), deleteKeys(keys));
  }
  return traced;
}

interface Tier {
  readonly rig: Rig;
  /** An unopened adapter over a fresh namespace whose backend records its calls. */
  traced(options?: Record<string, unknown>): { adapter: ObjectStoreAdapter; calls: Call[] };
}

interface Plan {
  readonly datums: readonly Datum[];
  /** Markers whose datum object is missing (deleted, or its writer died). */
  readonly missing?: readonly Datum[];
  /** Markers at another time than their datum's (a writer that lost a race and died). */
  readonly misdated?: readonly { datum: Datum; at: number }[];
  /** A second, hashed marker at the datum's own time. */
  readonly doubled?: readonly Datum[];
}

/** Writes datums and their markers straight into the server's storage, as `put` lays them out. */
async function write(rig: Rig, layout: KeyLayout, plan: Plan): Promise<void> {
  const objects: { key: string; body: Uint8Array }[] = [];
  const markers = (d: Datum, at = d.createdAt) => {
    for (const key of layout.markerKeys(d.id, at)) objects.push({ key, body: bytes("bulk") });
  };
  for (const d of plan.datums) {
    objects.push({ key: layout.dataKey(d.id), body: encodeEnvelope(d) });
    markers(d);
  }
  for (const d of plan.missing ?? []) markers(d);
  for (const { datum, at } of plan.misdated ?? []) markers(datum, at);
  for (const d of plan.doubled ?? []) {
    for (const key of layout.markerKeys(d.id, d.createdAt)) {
      const dir = key.slice(0, key.lastIndexOf("/") + 1);
      objects.push({ key: `${dir}${timeKey(d.createdAt)}~${sha256Hex(d.id)}`, body: bytes("bulk") });
    }
  }
  await rig.bulk(objects);
}

type Item = Datum | DatumHeader | string;

/** A page as comparable values (contents as hex; a header must not carry content). */
function shape(items: readonly Item[]): unknown[] {
  return items.map((d) => {
    if (typeof d === "string") return d;
    const { id, createdAt, causalParent, metadata } = d;
    const base = { id, createdAt, causalParent, metadata: { ...metadata } };
    return "content" in d ? { ...base, content: Buffer.from(d.content).toString("hex") } : base;
  });
}

/** What a page must hold: core's reference evaluation over the stored datums. */
function reference(q: ResolvedQuery, data: readonly Datum[]): unknown[] {
  return shape(evaluateQuery(q, data));
}

const DIRS = ["", "a/", "a/b/", "a/b/c/d/", "a/x", "p%_\\/"] as const;
const TAGS = { role: ["user", "assistant", "tool", "us%er", ""], thread: ["t1", "t2", "t_1", "t\\2"] } as const;

const datumsArb = fc
  .array(
    fc.record({
      dir: fc.constantFrom(...DIRS),
      tail: fc.string({ unit: fc.constantFrom("a", "b", "z", "é", "𝄞", "%", "_"), minLength: 1, maxLength: 4 }),
      long: fc.boolean(),
      at: fc.integer({ min: 0, max: 12 }),
      role: fc.option(fc.constantFrom(...TAGS.role), { nil: undefined }),
      thread: fc.option(fc.constantFrom(...TAGS.thread), { nil: undefined }),
      parent: fc.option(fc.nat(30), { nil: undefined }),
      size: fc.constantFrom(1, 1, 1, 3000, 20_000),
      fate: fc.constantFrom("ok", "ok", "ok", "ok", "ok", "ok", "missing", "misdated", "doubled"),
    }),
    { maxLength: 50 },
  )
  .map((rows) => {
    const seen = new Set<string>();
    const out: { datum: Datum; fate: string }[] = [];
    for (const [i, r] of rows.entries()) {
      const id = `${r.dir}${r.tail}${r.long && i % 3 === 0 ? "L".repeat(110) : ""}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const metadata: Record<string, string> = {};
      if (r.role !== undefined) metadata.role = r.role;
      if (r.thread !== undefined) metadata.thread = r.thread;
      const parent = r.parent !== undefined && out.length > 0 ? (out[r.parent % out.length] as { datum: Datum }).datum.id : null;
      const content = Buffer.alloc(r.size, i % 251);
      out.push({ datum: makeDatum({ id, content, createdAt: T + r.at * 7, metadata, causalParent: parent }), fate: r.fate });
    }
    return out;
  });

const filterArb = fc.record(
  {
    prefix: fc.constantFrom("", "a/", "a/b/", "a/b/c/d/", "a/x", "a/b/z", "p%_\\/", "p%", "é"),
    idRange: fc.oneof(
      fc.record({ gte: fc.constantFrom("a/", "a/b/", "a/bz", "b") }, { requiredKeys: [] }),
      fc.record({ gte: fc.constantFrom("a/b/", "a/"), lt: fc.constantFrom("a/b/z", "a/c", "a/x", "q") }),
      fc.record({ lt: fc.constantFrom("a/b/", "b", "a/b/c/d/z") }),
    ),
    where: fc.oneof(
      fc.record({ role: fc.constantFrom<TagFilter>("user", { in: ["user", "tool"] }, { prefix: "us" }, { prefix: "" }, { exists: true }, { exists: false }, { eq: "us%er" }) }),
      fc.record({ thread: fc.constantFrom<TagFilter>("t1", { prefix: "t_" }, { prefix: "t\\" }, { exists: false }) }),
      fc.record({ role: fc.constantFrom<TagFilter>({ in: ["", "assistant"] }, "user"), thread: fc.constantFrom<TagFilter>({ exists: true }, "t2") }),
    ),
    parent: fc.constantFrom("a/a", "a/b/a", "a", "nothing"),
    after: fc.integer({ min: -1, max: 12 }).map((k) => T + k * 7),
    before: fc.integer({ min: 0, max: 13 }).map((k) => T + k * 7),
  },
  { requiredKeys: [] },
);

function queryCases(tier: () => Tier): void {
  const rig = () => tier().rig;

  it("random datums, filters and garbage markers: every page, paged to the end in both orders, equals evaluateQuery; so does count", async () => {
    await fc.assert(
      fc.asyncProperty(
        datumsArb,
        filterArb,
        fc.constantFrom("newest", "oldest" as const),
        fc.constantFrom("full", "meta", "ids" as const),
        fc.integer({ min: 1, max: 9 }),
        async (rows, filter, order, select, limit) => {
          const adapter = rig().make();
          await adapter.open();
          try {
            const stored = rows.filter((r) => r.fate !== "missing").map((r) => r.datum);
            await write(rig(), adapter.layout as KeyLayout, {
              datums: stored,
              missing: rows.filter((r) => r.fate === "missing").map((r) => r.datum),
              misdated: rows.filter((r) => r.fate === "misdated").map((r) => ({ datum: r.datum, at: r.datum.createdAt + 3 })),
              doubled: rows.filter((r) => r.fate === "doubled").map((r) => r.datum),
            });
            const options = { ...filter, order, select, limit } as QueryOptions;
            const base = resolveQuery(options);
            const what = JSON.stringify(options);
            expect(await adapter.count(base), `${what}: count`).toBe(countQuery({ ...base, cursor: null }, stored));
            const all = reference({ ...base, limit: Number.MAX_SAFE_INTEGER }, stored);
            const seen: unknown[] = [];
            let q = base;
            for (let page = 0; page < 100; page++) {
              const got = shape(await adapter.query(q));
              expect(got, `${what}, page ${page}`).toEqual(reference(q, stored));
              seen.push(...got);
              if (got.length < limit) break;
              const lastId = evaluateQuery(q, stored).at(-1)?.id;
              const cursor = encodeCursor(q, stored.find((d) => d.id === lastId) as Datum);
              q = resolveQuery({ ...options, cursor });
              if (page === 0) {
                // A cursor has no direction: the other order pages back from the same position.
                const back = resolveQuery({ ...options, order: order === "newest" ? "oldest" : "newest", limit: 50, cursor });
                expect(shape(await adapter.query(back)), `${what}, turned`).toEqual(reference(back, stored));
              }
            }
            expect(seen, `${what}: the pages together`).toEqual(all);
          } finally {
            await adapter.close();
          }
        },
      ),
      { numRuns: 12 },
    );
  }, 300_000);

  it("select ids and meta read envelopes only (ranged reads), never a whole object; full reads whole objects only for results", async () => {
    const { adapter, calls } = tier().traced();
    await adapter.open();
    const big = Buffer.alloc(200_000, 7);
    const datums = Array.from({ length: 30 }, (_, i) =>
      makeDatum({ id: `s/${String(i).padStart(2, "0")}`, content: big, createdAt: T + i, metadata: { role: i % 3 === 0 ? "user" : "bot" } }),
    );
    await write(rig(), adapter.layout as KeyLayout, { datums });
    for (const select of ["ids", "meta"] as const) {
      calls.length = 0;
      const got = await adapter.query(resolveQuery({ prefix: "s/", where: { role: "user" }, select, limit: 5 }));
      expect(got.map((d) => d.id)).toEqual(["s/27", "s/24", "s/21", "s/18", "s/15"]);
      expect(got.every((d) => !("content" in d))).toBe(true);
      expect(calls.filter((c) => c.op === "get")).toEqual([]);
      const heads = calls.filter((c) => c.op === "readHead");
      expect(heads.every((c) => (c.length as number) <= 1024)).toBe(true);
      // Newest first, one batch of `concurrency` (16) markers read together: s/29 down to s/14.
      expect(heads).toHaveLength(16);
    }
    calls.length = 0;
    const full = (await adapter.query(resolveQuery({ prefix: "s/", where: { role: "user" }, limit: 5 }))) as Datum[];
    expect(full.map((d) => d.content.byteLength)).toEqual([200_000, 200_000, 200_000, 200_000, 200_000]);
    expect(calls.filter((c) => c.op === "get").map((c) => c.key)).toEqual(full.map((d) => (adapter.layout as KeyLayout).dataKey(d.id)));
    // Without a tag filter every marker read is a result: whole objects straight away.
    calls.length = 0;
    await adapter.query(resolveQuery({ prefix: "s/", limit: 4 }));
    expect(calls.map((c) => c.op).sort()).toEqual(["get", "get", "get", "get", "list"]);
    calls.length = 0;
    expect(await adapter.count(resolveQuery({ prefix: "s/", where: { role: "bot" } }))).toBe(20);
    expect(calls.filter((c) => c.op === "get")).toEqual([]);
    await adapter.close();
  });

  it("an id prefix or id range picks the directory's index, and a cursor or before starts the listing there", async () => {
    const { adapter, calls } = tier().traced();
    await adapter.open();
    const layout = adapter.layout as KeyLayout;
    const noise = Array.from({ length: 2500 }, (_, i) => makeDatum({ id: `noise/${i}`, content: "n", createdAt: T + 100_000 + i }));
    const mine = Array.from({ length: 40 }, (_, i) => makeDatum({ id: `agent/s1/m${String(i).padStart(2, "0")}`, content: `m${i}`, createdAt: T + i * 10 }));
    await write(rig(), layout, { datums: [...noise, ...mine] });
    const run = async (options: QueryOptions) => {
      calls.length = 0;
      const q = resolveQuery(options);
      const got = await adapter.query(q);
      expect(shape(got)).toEqual(reference(q, [...noise, ...mine]));
      return { lists: calls.filter((c) => c.op === "list"), reads: calls.filter((c) => c.op === "get" || c.op === "readHead").length };
    };
    let r = await run({ prefix: "agent/s1/", limit: 10 });
    expect(r.lists.map((c) => c.key)).toEqual([layout.dirPrefix("agent/s1/")]);
    expect(r.reads).toBe(10);
    // An id range inside one directory: the same index, filtered by name.
    r = await run({ idRange: { gte: "agent/s1/m10", lt: "agent/s1/m20" }, limit: 100, select: "ids" });
    expect(r.lists.map((c) => c.key)).toEqual([layout.dirPrefix("agent/s1/")]);
    expect(r.reads).toBe(10);
    // A cursor deep in the directory: the listing starts at the cursor's time, not the newest marker.
    const cursorAt = { createdAt: T + 200, id: "agent/s1/m20" };
    const q = resolveQuery({ prefix: "agent/s1/", limit: 5 });
    r = await run({ prefix: "agent/s1/", limit: 5, cursor: encodeCursor(q, cursorAt) });
    expect(r.lists).toEqual([{ op: "list", key: layout.dirPrefix("agent/s1/"), startAfter: layout.dirPrefix("agent/s1/") + timeKey(T + 200) }]);
    expect(r.reads).toBe(5);
    // before skips the newer noise in the root index without listing it.
    r = await run({ before: T + 395, limit: 3, select: "ids" });
    expect(r.lists).toHaveLength(1);
    expect(r.lists[0]?.startAfter).toBe(`${layout.dirPrefix("")}${timeKey(T + 395)}~~`);
    expect(r.reads).toBe(3);
    // Oldest first over a directory: its markers are listed once (the directory fits in kept pages).
    r = await run({ prefix: "agent/s1/", order: "oldest", limit: 3 });
    expect(r.lists).toHaveLength(1);
    expect(r.reads).toBe(3);
    await adapter.close();
  });

  it("oldest first over more markers than it keeps: earlier pages listed again; from a cursor, windows of time instead of the whole range", async () => {
    const { adapter, calls } = tier().traced({ indexDepth: 0 });
    await adapter.open();
    const old = Array.from({ length: 5200 }, (_, i) => makeDatum({ id: `x${String(i).padStart(5, "0")}`, content: "x", createdAt: T + i }));
    const sparse = Array.from({ length: 104 }, (_, k) => makeDatum({ id: `w${String(k).padStart(3, "0")}`, content: "w", createdAt: T + 50 * k + 0.5 }));
    const newest = Array.from({ length: 30 }, (_, i) => makeDatum({ id: `y${String(i).padStart(2, "0")}`, content: "y", createdAt: T + 10_000 + (i % 7) }));
    const data = [...old, ...sparse, ...newest];
    await write(rig(), adapter.layout as KeyLayout, { datums: data });
    const pages = async (options: QueryOptions, check: (lists: Call[], page: number) => void) => {
      let q = resolveQuery(options);
      const seen: string[] = [];
      for (let page = 0; ; page++) {
        calls.length = 0;
        const got = await adapter.query(q);
        expect(shape(got), `${JSON.stringify(options)}, page ${page}`).toEqual(reference(q, data));
        // Markers are filtered by name: only results are read.
        const failed = calls.filter((c) => c.op === "get failed").length; // retried
        expect(calls.filter((c) => c.op === "get").length - failed, JSON.stringify(calls.filter((c) => c.op !== "list"))).toBe(got.length);
        check(calls.filter((c) => c.op === "list"), page);
        seen.push(...got.map((d) => d.id));
        if (got.length < (options.limit as number)) break;
        q = resolveQuery({ ...options, cursor: encodeCursor(q, got.at(-1) as Datum) });
      }
      expect(seen).toEqual(evaluateQuery(resolveQuery({ ...options, limit: 1000 }), data).map((d) => d.id));
    };
    // The newest 30 (y), oldest first. The first page: 6 listings once (5334 markers), then the
    // two dropped pages again, the second from the key the first ended at. GCS's startOffset is
    // inclusive: that key comes back and is dropped, so the page takes a second request for its
    // last key. Later pages stop at their cursor within the first listing.
    await pages({ prefix: "y", order: "oldest", limit: 12 }, (lists, page) => {
      if (page === 0) {
        expect(lists.length).toBeLessThanOrEqual(6 + 2 + (adapter.name === "gcs" ? 1 : 0));
        expect(lists.filter((c) => c.startAfter !== undefined)).toHaveLength(1);
      } else {
        expect(lists).toHaveLength(1);
      }
    });
    // 104 sparse w's (one marker in 50) among the x's, from the oldest, 20 a page: after the first
    // page (the whole range), each lists one page from the top, then windows of time up from its
    // cursor sized from that page's density (~800 markers, then twice as wide): the ~1000
    // markers a page of w's spans cost about 3 listings, where listing everything newer than the
    // cursor would cost up to 6 and more again for the dropped pages.
    let windows = 0;
    await pages({ prefix: "w", order: "oldest", limit: 20 }, (lists, page) => {
      if (page === 0) return;
      expect(lists.length).toBeLessThanOrEqual(5);
      windows += lists.filter((c) => c.startAfter !== undefined).length;
    });
    expect(windows).toBeGreaterThan(0);
    await adapter.close();
  }, 300_000);

  it("getMany: the ids' order, null where absent, duplicates each filled, one GET per distinct id", async () => {
    const { adapter, calls } = tier().traced();
    await adapter.open();
    const datums = Array.from({ length: 40 }, (_, i) => makeDatum({ id: `g/${i}`, content: `c${i}`, createdAt: T + i }));
    await write(rig(), adapter.layout as KeyLayout, { datums });
    const ids = ["g/3", "nope", "g/39", "g/3", "g/0", "also/nope", ...datums.slice(10, 30).map((d) => d.id), "g/39"];
    calls.length = 0;
    const got = await adapter.getMany(ids);
    expect(got.map((d) => d?.id ?? null)).toEqual(ids.map((id) => (id.startsWith("g/") ? id : null)));
    for (const d of got) if (d !== null) expect(Buffer.from(d.content).toString()).toBe(`c${d.id.slice(2)}`);
    expect(got[0]).not.toBe(got[3]); // a repeated id is its own copy
    expect(calls.filter((c) => c.op === "get")).toHaveLength(new Set(ids).size);
    expect(await adapter.getMany([])).toEqual([]);
    await adapter.close();
  });

  it("deleteMany: deletes exactly the matches and returns them; batches of 1000 on S3, one request each on GCS", async () => {
    const { adapter, calls } = tier().traced();
    await adapter.open();
    const datums = Array.from({ length: 400 }, (_, i) =>
      makeDatum({ id: `d/${i % 2 === 0 ? "even" : "odd"}/${i}`, content: "x", createdAt: T + i, metadata: { session: i % 4 === 1 ? "s1" : "s2" } }),
    );
    await write(rig(), adapter.layout as KeyLayout, { datums, missing: [makeDatum({ id: "d/odd/gone", content: "g", createdAt: T + 5 })] });
    calls.length = 0;
    const q = resolveQuery({ prefix: "d/odd/", where: { session: "s1" } }, { paged: false });
    const deleted = await adapter.deleteMany(q);
    const want = datums.filter((d) => d.id.startsWith("d/odd/") && d.metadata.session === "s1").map((d) => d.id);
    expect(want).toHaveLength(100);
    expect([...deleted].sort()).toEqual([...want].sort());
    if (adapter.name === "s3") {
      expect(batches(calls)).toEqual([100]);
      expect(calls.filter((c) => c.op === "delete")).toHaveLength(0);
    } else {
      expect(calls.filter((c) => c.op === "delete")).toHaveLength(100);
    }
    expect(await adapter.count(q)).toBe(0);
    expect(await adapter.count(resolveQuery({ prefix: "d/" }, { paged: false }))).toBe(400 - 100);
    for (const id of want.slice(0, 5)) expect(await adapter.get(id)).toBeNull();
    expect(await adapter.deleteMany(q)).toEqual([]);
    // More than one batch: everything under d/even/.
    calls.length = 0;
    const evens = await adapter.deleteMany(resolveQuery({ prefix: "d/even/" }, { paged: false }));
    expect(evens).toHaveLength(200);
    if (adapter.name === "s3") expect(batches(calls)).toEqual([200]);
    expect(await adapter.count(resolveQuery({}, { paged: false }))).toBe(400 - 100 - 200);
    await adapter.close();
  }, 300_000);

  it("deleteMany over more than 1000 datums: DeleteObjects in batches of at most 1000", async () => {
    const { adapter, calls } = tier().traced({ indexDepth: 1 });
    await adapter.open();
    const datums = Array.from({ length: 1100 }, (_, i) => makeDatum({ id: `z/${i}`, content: "z", createdAt: T + i }));
    await write(rig(), adapter.layout as KeyLayout, { datums });
    calls.length = 0;
    const deleted = await adapter.deleteMany(resolveQuery({ prefix: "z/" }, { paged: false }));
    expect(deleted).toHaveLength(1100);
    if (adapter.name === "s3") expect(batches(calls)).toEqual([1000, 100]);
    else expect(calls.filter((c) => c.op === "delete")).toHaveLength(1100);
    expect(await adapter.count(resolveQuery({}, { paged: false }))).toBe(0);
    await adapter.close();
  }, 300_000);

  it("chainTail reads n steps of a long chain, no more; through a store the tail never meets maxChainDepth", async () => {
    const { adapter, calls } = tier().traced();
    await adapter.open();
    const chain: Datum[] = [];
    for (let i = 0; i < 300; i++) {
      chain.push(makeDatum({ id: `c/${i}`, content: `step ${i}`, createdAt: T + i, causalParent: i === 0 ? null : `c/${i - 1}` }));
    }
    const loop = [makeDatum({ id: "loop/a", content: "a", causalParent: "loop/b", createdAt: T }), makeDatum({ id: "loop/b", content: "b", causalParent: "loop/a", createdAt: T })];
    await write(rig(), adapter.layout as KeyLayout, { datums: [...chain, ...loop] });
    calls.length = 0;
    const tail = await adapter.chainTail("c/299", 20);
    expect(tail.map((d) => d.id)).toEqual(chain.slice(280).map((d) => d.id));
    expect(calls.map((c) => c.op)).toEqual(Array.from({ length: 20 }, () => "get"));
    expect((await adapter.chainTail("c/5", 20)).map((d) => d.id)).toEqual(chain.slice(0, 6).map((d) => d.id));
    expect(await adapter.chainTail("absent", 3)).toEqual([]);
    expect((await adapter.chainTail("loop/a", 2)).map((d) => d.id)).toEqual(["loop/b", "loop/a"]);
    const cycle = await adapter.chainTail("loop/a", 3).then(() => null, (e: unknown) => e);
    expect(isDgentError(cycle) && cycle.code).toBe("DGENT_CAUSAL_CYCLE");
    await adapter.close();

    const store = createStore({ tiers: [rig().make({ namespace: namespaceOf(adapter) })], maxChainDepth: 50 });
    try {
      const deep = await store.causalChain("c/299").then(() => null, (e: unknown) => e);
      expect(isDgentError(deep) && deep.code).toBe("DGENT_CAUSAL_DEPTH");
      const last = await store.causalChain("c/299", { tail: 30 });
      expect(last.map((d) => d.id)).toEqual(chain.slice(270).map((d) => d.id));
    } finally {
      await store.close();
    }
  }, 300_000);
}

/**
 * The sizes of the DeleteObjects batches sent, a retried batch once (s3rver answers 500 when a
 * batch empties a directory — its parallel deletes race to remove it — and the retry succeeds).
 */
function batches(calls: readonly Call[]): number[] {
  return [...new Map(calls.filter((c) => c.op === "deleteKeys").map((c) => [c.key, c.keys as number])).values()];
}

function namespaceOf(adapter: ObjectStoreAdapter): string {
  return adapter.root.split("/").at(-2) as string;
}

describe("s3: native queries", () => {
  let server: S3Server;
  const BUCKET = "dgent-s3-queries";
  beforeAll(async () => {
    server = await startS3();
    await server.createBucket(BUCKET);
  });
  const rig = s3Rig(() => server, BUCKET);
  afterAll(async () => {
    rig.close();
    await server?.stop();
  });
  queryCases(() => ({
    rig,
    traced(options = {}) {
      const calls: Call[] = [];
      const config = s3Config({ ...server.clientOptions, bucket: BUCKET, namespace: `q-${Math.random().toString(36).slice(2, 10)}`, retryBaseDelayMs: 5, ...options });
      const adapter = new ObjectStoreAdapter({ name: "s3", rank: RANKS.s3, config: config.common, refs: true, connect: async () => recording(await connectS3(config), calls) });
      return { adapter, calls };
    },
  }));
});

describe("gcs: native queries", () => {
  let emulator: GcsEmulator;
  const BUCKET = "dgent-gcs-queries";
  beforeAll(async () => {
    emulator = await startGcsEmulator();
    emulator.createBucket(BUCKET);
  });
  const rig = gcsRig(() => emulator, BUCKET);
  afterAll(() => emulator?.stop());
  queryCases(() => ({
    rig,
    traced(options = {}) {
      const calls: Call[] = [];
      const config = gcsConfig({ apiEndpoint: emulator.url, projectId: "test", bucket: BUCKET, namespace: `q-${Math.random().toString(36).slice(2, 10)}`, retryBaseDelayMs: 5, ...options });
      const adapter = new ObjectStoreAdapter({ name: "gcs", rank: RANKS.gcs, config: config.common, refs: true, connect: async () => recording(await connectGcs(config), calls) });
      return { adapter, calls };
    },
  }));
});
