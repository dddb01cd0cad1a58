/**
 * The write path (put, putMany) against a real server: the append-only law on re-puts, batches
 * that are all or nothing whether they fit one statement or not, duplicates inside a batch,
 * notifications only for rows that were stored, and rows committed by another transaction while
 * ours was waiting for them.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { identifiers } from "./sql.js";
import { postgresAdapter, type PostgresAdapter, type PostgresOptions } from "./index.js";

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
const open: PostgresAdapter[] = [];
afterAll(async () => {
  for (const a of open) await a.close();
  for (const schema of new Set(open.map((a) => a.schema))) await dropSchema(server, schema);
  await server?.close();
});

async function opened(options: PostgresOptions = {}): Promise<PostgresAdapter> {
  const a = postgresAdapter({ url: server.url, namespace: freshSchema("w"), listen: false, ...options });
  await a.open();
  open.push(a);
  return a;
}

const datum = (id: string, extra: Partial<Datum> = {}): Datum =>
  makeDatum({ id, content: `content of ${id}`, createdAt: 1_000, ...extra } as Parameters<typeof makeDatum>[0]);

async function codeOf(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error("expected a rejection");
}

async function count(a: PostgresAdapter): Promise<number> {
  return (await a.stats()).count;
}

/**
 * What the adapter's change log (notify.ts) gained since the last `settle()`, as `{op, id}`: one
 * row per change that committed, written by the change's own statement. The connection counts as
 * a listener (a row in the listeners table, as a listener registers), so writers log.
 */
async function listener(a: PostgresAdapter): Promise<{ heard: { op: string; id: string }[]; settle(): Promise<void>; close(): Promise<void> }> {
  const c = new pg.Client(server.url);
  await c.connect();
  const { changes: log, listeners } = identifiers(a.schema, a.table);
  await c.query(`INSERT INTO ${listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
  const heard: { op: string; id: string }[] = [];
  let mark = Number((await c.query<{ n: string }>(`SELECT coalesce(max(seq), 0)::text AS n FROM ${log}`)).rows[0]?.n ?? 0);
  return {
    heard,
    async settle() {
      const r = await c.query<{ op: string; id: string; seq: string }>(`SELECT op, id, seq::text AS seq FROM ${log} WHERE seq > $1 ORDER BY xid, seq`, [mark]);
      for (const row of r.rows) {
        heard.push({ op: row.op, id: row.id });
        mark = Math.max(mark, Number(row.seq));
      }
    },
    close: async () => {
      await c.query(`DELETE FROM ${listeners} WHERE pid = pg_backend_pid()`);
      await c.end();
    },
  };
}

/** The application name of adapters used with `racing`, to find their waiting statements. */
const RACER = `dgent-racer-${process.pid}`;

/**
 * Runs `work` while another transaction holds an uncommitted insert of `row`, and ends that
 * transaction (`COMMIT` or `ROLLBACK`) once `work`'s statement waits for it.
 */
async function racing<T>(a: PostgresAdapter, row: Datum, end: "COMMIT" | "ROLLBACK", work: () => Promise<T>): Promise<T> {
  const c = new pg.Client(server.url);
  await c.connect();
  try {
    await c.query("BEGIN");
    await c.query(
      `INSERT INTO ${identifiers(a.schema, a.table).table} (id, content, created_at, causal_parent, metadata) VALUES ($1, $2, $3, $4, $5::jsonb)`,
      [row.id, Buffer.from(row.content), row.createdAt, row.causalParent, JSON.stringify(row.metadata)],
    );
    const pending = work().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const w = await server.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1`,
        [RACER],
      );
      if ((w.rows[0]?.n ?? 0) > 0) break;
      if (Date.now() > deadline) throw new Error("the adapter never waited for the other transaction");
      await new Promise((r) => setTimeout(r, 10));
    }
    await c.query(end);
    const out = await pending;
    if ("error" in out) throw out.error;
    return out.value;
  } finally {
    await c.end();
  }
}

describe("put", () => {
  it("re-putting the same value is a no-op: nothing rewritten, nothing announced", async () => {
    const a = await opened();
    const l = await listener(a);
    try {
      const d = datum("same", { causalParent: "p", metadata: { k: "v" } });
      expect(await a.put(d)).toBe("same");
      // createdAt is not part of the value: a later copy of the same datum is the same datum.
      expect(await a.put({ ...d, createdAt: 5_000, content: Buffer.from(d.content) })).toBe("same");
      expect(await a.put(d)).toBe("same");
      expect((await a.get("same"))?.createdAt).toBe(1_000);
      expect(await count(a)).toBe(1);
      await l.settle();
      expect(l.heard).toEqual([{ op: "put", id: "same" }]);
    } finally {
      await l.close();
    }
  });

  it("re-putting a different value is DGENT_CONFLICT and changes nothing", async () => {
    const a = await opened();
    const d = datum("diff", { causalParent: null, metadata: { k: "v" } });
    await a.put(d);
    const others: Datum[] = [
      { ...d, content: new Uint8Array([1, 2, 3]) },
      { ...d, causalParent: "someone" },
      { ...d, metadata: { k: "w" } },
      { ...d, metadata: { k: "v", extra: "" } },
      { ...d, metadata: {} },
    ];
    for (const other of others) {
      const err = await codeOf(a.put(other));
      expect(err.code).toBe("DGENT_CONFLICT");
      expect(err.message).toContain(`"diff"`);
    }
    const stored = await a.get("diff");
    expect(Buffer.from(stored?.content ?? []).toString()).toBe("content of diff");
    expect(stored?.metadata).toEqual({ k: "v" });
    expect(stored?.causalParent).toBeNull();
  });

  it("notify off: the same law, rowCount tells an insert from a re-put", async () => {
    const a = await opened({ notify: false });
    await a.put(datum("q"));
    await a.put(datum("q"));
    expect((await codeOf(a.put(datum("q", { content: new Uint8Array([9]) })))).code).toBe("DGENT_CONFLICT");
    expect(await count(a)).toBe(1);
  });

  it("a put waiting on another transaction's insert of its id compares with it once committed, or inserts after a rollback", async () => {
    const a = await opened({ applicationName: RACER });
    expect(await racing(a, datum("r/same"), "COMMIT", () => a.put(datum("r/same")))).toBe("r/same");
    const err = await codeOf(racing(a, datum("r/diff"), "COMMIT", () => a.put(datum("r/diff", { metadata: { other: "1" } }))));
    expect(err.code).toBe("DGENT_CONFLICT");
    expect((await a.get("r/diff"))?.metadata).toEqual({});
    expect(await racing(a, datum("r/gone", { metadata: { theirs: "1" } }), "ROLLBACK", () => a.put(datum("r/gone")))).toBe("r/gone");
    expect((await a.get("r/gone"))?.metadata).toEqual({});
  });
});

describe("putMany", () => {
  it("stores batches of every size exactly, whatever the padding of the statement", async () => {
    const a = await opened();
    let n = 0;
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 31, 100, 129, 1000]) {
      const batch = Array.from({ length: size }, (_, i) =>
        datum(`s${size}/${String(i).padStart(4, "0")}`, {
          content: Buffer.from(`${size}:${i}:${"x".repeat(i % 17)}`),
          createdAt: i,
          causalParent: i > 0 ? `s${size}/${String(i - 1).padStart(4, "0")}` : null,
          metadata: i % 3 === 0 ? {} : { i: String(i), "ü": "🦉" },
        }),
      );
      expect(await a.putMany(batch)).toEqual(batch.map((d) => d.id));
      n += size;
      expect(await count(a)).toBe(n);
      for (const d of [batch[0], batch[size >> 1], batch[size - 1]] as Datum[]) {
        const got = await a.get(d.id);
        expect(got && { ...got, content: Buffer.from(got.content) }).toEqual({ ...d, content: Buffer.from(d.content) });
      }
    }
    // Re-putting a batch is a no-op, including rows mixed with new ones.
    const again = [datum("s3/0000", { content: Buffer.from("3:0:"), createdAt: 0, metadata: {} }), datum("new/1")];
    expect(await a.putMany(again)).toEqual(["s3/0000", "new/1"]);
    expect(await count(a)).toBe(n + 1);
  });

  it("one conflicting row stores nothing and announces nothing; the rest can then be stored", async () => {
    const a = await opened();
    const l = await listener(a);
    try {
      await a.put(datum("c/existing"));
      await l.settle();
      l.heard.length = 0;
      const batch = [datum("c/1"), datum("c/2"), datum("c/existing", { content: new Uint8Array([0]) }), datum("c/3")];
      const err = await codeOf(a.putMany(batch));
      expect(err.code).toBe("DGENT_CONFLICT");
      expect(err.message).toContain(`"c/existing"`);
      expect(await count(a)).toBe(1);
      expect(await a.get("c/1")).toBeNull();
      await l.settle();
      expect(l.heard).toEqual([]);
      // The identical existing row is fine; only the new rows are stored and announced.
      batch[2] = datum("c/existing");
      expect(await a.putMany(batch)).toEqual(["c/1", "c/2", "c/existing", "c/3"]);
      expect(await count(a)).toBe(4);
      await l.settle();
      expect(l.heard.map((h) => h.id).sort()).toEqual(["c/1", "c/2", "c/3"]);
      expect(l.heard.every((h) => h.op === "put")).toBe(true);
    } finally {
      await l.close();
    }
  });

  it("duplicate ids inside a batch: identical copies are fine, different ones reject the whole batch", async () => {
    const a = await opened();
    expect(await a.putMany([datum("d/1"), datum("d/2"), datum("d/1", { createdAt: 7 }), datum("d/1")])).toEqual(["d/1", "d/2", "d/1", "d/1"]);
    expect(await count(a)).toBe(2);
    for (const other of [{ content: new Uint8Array([1]) }, { metadata: { m: "1" } }, { causalParent: "d/2" }]) {
      // The different copy first, last, or beside an identical one; of a new id or of a stored one.
      for (const batch of [
        [datum("d/new"), datum("d/x"), datum("d/new", other)],
        [datum("d/new", other), datum("d/new"), datum("d/x")],
        [datum("d/x"), datum("d/new"), datum("d/new"), datum("d/new", other)],
        [datum("d/x"), datum("d/1"), datum("d/1", other)],
      ]) {
        const err = await codeOf(a.putMany(batch));
        expect(err.code, JSON.stringify(batch.map((d) => d.id))).toBe("DGENT_CONFLICT");
        expect(await count(a)).toBe(2);
      }
    }
    // notify off takes the same path.
    const q = await opened({ notify: false });
    expect((await codeOf(q.putMany([datum("e"), datum("e", { metadata: { z: "" } })]))).code).toBe("DGENT_CONFLICT");
    expect(await count(q)).toBe(0);
    expect(await q.putMany([datum("e"), datum("e")])).toEqual(["e", "e"]);
    expect(await count(q)).toBe(1);
  });

  it("a batch larger than one statement (15 000 datums) is all or nothing, duplicates across statements included", async () => {
    const a = await opened();
    const l = await listener(a);
    try {
      await a.put(datum("big/zzz"));
      await l.settle();
      l.heard.length = 0;
      const batch = Array.from({ length: 15_000 }, (_, i) => datum(`big/${String(i).padStart(5, "0")}`));
      // A conflict with a stored row, in the last statement.
      const err = await codeOf(a.putMany([...batch, datum("big/zzz", { metadata: { different: "yes" } })]));
      expect(err.code).toBe("DGENT_CONFLICT");
      expect(await count(a)).toBe(1);
      // A different copy of a row of the first statement, in the second.
      const twice = [...batch, datum("big/00001", { content: new Uint8Array([7]) })];
      expect((await codeOf(a.putMany(twice))).code).toBe("DGENT_CONFLICT");
      expect(await count(a)).toBe(1);
      await l.settle();
      expect(l.heard).toEqual([]);
      // Identical copies across statements and the identical stored row are fine.
      const ok = [...batch, datum("big/00001"), datum("big/zzz")];
      expect((await a.putMany(ok)).length).toBe(15_002);
      expect(await count(a)).toBe(15_001);
      await l.settle();
      expect(l.heard.length).toBe(15_000);
      expect(await a.get("big/14999")).not.toBeNull();
    } finally {
      await l.close();
    }
  });

  it("rows another transaction commits while the batch waits for them are compared once committed", async () => {
    const a = await opened({ applicationName: RACER });
    const theirs = datum("t/theirs");
    expect(await racing(a, theirs, "COMMIT", () => a.putMany([datum("t/a"), datum("t/theirs"), datum("t/b")]))).toEqual(["t/a", "t/theirs", "t/b"]);
    expect(await count(a)).toBe(3);
    const err = await codeOf(racing(a, datum("t/other"), "COMMIT", () => a.putMany([datum("t/c"), datum("t/other", { content: new Uint8Array([1]) })])));
    expect(err.code).toBe("DGENT_CONFLICT");
    expect(await a.get("t/c")).toBeNull();
    expect(await count(a)).toBe(4);
    // Rolled back: the batch inserts the row itself.
    expect(await racing(a, datum("t/gone", { metadata: { theirs: "1" } }), "ROLLBACK", () => a.putMany([datum("t/gone"), datum("t/d")]))).toEqual(["t/gone", "t/d"]);
    expect((await a.get("t/gone"))?.metadata).toEqual({});
    expect(await count(a)).toBe(6);
  });
});
