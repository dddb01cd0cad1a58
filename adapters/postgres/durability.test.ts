/**
 * What an acknowledged write survives on a Postgres cluster configured as in production
 * (`fsync`, `synchronous_commit` and `full_page_writes` on: the harness's `durable: true`), when
 * the server is crashed by `pg_ctl stop -m immediate` in the middle of concurrent writes: every
 * acknowledged put (with its causal parent and metadata), delete, batch (including one large
 * enough to need a transaction of several statements), ref move (compare-and-set) and
 * transaction (puts, a delete, a ref move) is there after WAL replay; a write in flight at the
 * crash is all there or not at all.
 *
 * An immediate stop kills the server's processes, not the machine: the OS page cache survives, so
 * this proves crash recovery (WAL replay of acknowledged commits), not that Postgres's fsyncs
 * reach the disk (see test/README.md, "Power loss", for what is and is not simulated).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { Ref, TxOp } from "../../core/refs.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { postgresAdapter } from "./index.js";

const LONG = process.env.DGENT_TEST_LONG === "1";
/** Acknowledged operations before the crash, per round; rounds (crash + replay) per run. */
const SIZE = LONG ? { acked: 2_000, rounds: 4 } : { acked: 300, rounds: 1 };
const WRITERS = 6;
/** Above the adapter's 8 192 datums per statement: the batch is a transaction of two statements. */
const BIG_BATCH = 8_300;

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres({ durable: true });
});
afterAll(async () => {
  await server?.close();
});

type Op =
  | { readonly kind: "put"; readonly datum: Datum }
  | { readonly kind: "putMany"; readonly datums: readonly Datum[] }
  | { readonly kind: "delete"; readonly id: string }
  | { readonly kind: "setRef"; readonly name: string; readonly target: string }
  | { readonly kind: "commit"; readonly ops: readonly TxOp[] };

/** What an operation does, in order: datums stored or deleted (null), refs moved (`ref` set). */
function effectsOf(op: Op): Array<{ id: string; value: Datum | null } | { ref: string; target: string }> {
  switch (op.kind) {
    case "put":
      return [{ id: op.datum.id, value: op.datum }];
    case "putMany":
      return op.datums.map((d) => ({ id: d.id, value: d }));
    case "delete":
      return [{ id: op.id, value: null }];
    case "setRef":
      return [{ ref: op.name, target: op.target }];
    case "commit":
      return op.ops.map((o) =>
        o.op === "put" ? { id: o.datum.id, value: o.datum } : o.op === "delete" ? { id: o.id, value: null } : { ref: o.name, target: o.op === "setRef" ? o.target : "" },
      );
  }
}

interface Done {
  readonly op: Op;
  /** acked: the promise resolved; unknown: it failed or never settled (the crash may or may not have kept it). */
  status: "pending" | "acked" | "unknown";
}

interface Row {
  id: string;
  content: Buffer;
  created_at: number;
  causal_parent: string | null;
  metadata: Record<string, string> | null;
}

function same(row: Row | undefined, d: Datum): boolean {
  return (
    row !== undefined &&
    Buffer.compare(row.content, Buffer.from(d.content)) === 0 &&
    Number(row.created_at) === d.createdAt &&
    row.causal_parent === d.causalParent &&
    JSON.stringify(Object.entries(row.metadata ?? {}).sort()) === JSON.stringify(Object.entries(d.metadata).sort())
  );
}

describe("postgres with fsync on, crashed by pg_ctl stop -m immediate", () => {
  it("keeps every acknowledged put, delete, batch, ref move and transaction across WAL replay; a write in flight is all or nothing", { timeout: LONG ? 1_800_000 : 120_000 }, async () => {
    const settings = await server.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name",
    );
    expect(settings.rows).toEqual([
      { name: "fsync", setting: "on" },
      { name: "full_page_writes", setting: "on" },
      { name: "synchronous_commit", setting: "on" },
    ]);
    expect(server.durable).toBe(true);

    const namespace = freshSchema("durability");
    const history: Done[] = [];
    let counter = 0;
    const totals = { puts: 0, deletes: 0, batches: 0, bigBatches: 0, refMoves: 0, transactions: 0, inFlightAtCrash: 0, failedByCrash: 0 };
    const move = () => ({ by: "durability-test", at: Date.now() });

    for (let round = 0; round < SIZE.rounds; round++) {
      const adapter = postgresAdapter({ url: server.url, namespace, listen: false, connectTimeoutMs: 2_000, poolSize: WRITERS + 1 });
      await adapter.open();
      let stop = false;
      let acked = 0;
      let bigAcked = 0;
      const inFlight = new Set<Done>();
      let reached!: () => void;
      const enough = new Promise<void>((resolve) => (reached = resolve));

      const writer = async (w: number): Promise<void> => {
        const live: string[] = []; // this writer's acknowledged, not deleted ids
        const versions = new Map<string, number>(); // this writer's refs: acknowledged version
        const expectFor = (name: string) => {
          const version = versions.get(name);
          return version === undefined ? { absent: true as const } : { version };
        };
        let n = 0;
        while (!stop) {
          const r = (n * 7919 + w * 104_729 + round) % 100;
          n++;
          const fresh = (): Datum => {
            const i = counter++;
            const parent = live.length > 0 && i % 2 === 0 ? (live[i % live.length] as string) : null;
            return makeDatum({
              id: `r${round}/w${w}/${i}`,
              content: Buffer.from(`datum ${i} of writer ${w} `.repeat(1 + (i % 5))),
              createdAt: 1_700_000_000_000 + i,
              causalParent: parent,
              metadata: { writer: String(w), n: String(i) },
            });
          };
          let op: Op;
          if (w === 0 && n % 4 === 1) {
            op = { kind: "putMany", datums: Array.from({ length: BIG_BATCH }, fresh) };
          } else if (r < 8 && live.length > 0) {
            op = { kind: "setRef", name: `r${round}/w${w}/head`, target: live[r % live.length] as string };
          } else if (r < 16) {
            const datums = [fresh(), fresh()];
            const ops: TxOp[] = datums.map((datum) => ({ op: "put", datum }));
            if (live.length > 1 && r % 2 === 0) ops.push({ op: "delete", id: live.splice(r % live.length, 1)[0] as string });
            ops.push({ op: "setRef", name: `r${round}/w${w}/tx`, target: (datums[0] as Datum).id, expect: expectFor(`r${round}/w${w}/tx`) });
            op = { kind: "commit", ops };
          } else if (r < 30 && live.length > 0) {
            op = { kind: "delete", id: live.splice(r % live.length, 1)[0] as string };
          } else if (r < 45) {
            op = { kind: "putMany", datums: Array.from({ length: 2 + (r % 5) }, fresh) };
          } else {
            op = { kind: "put", datum: fresh() };
          }
          const done: Done = { op, status: "pending" };
          history.push(done);
          inFlight.add(done);
          try {
            if (op.kind === "put") await adapter.put(op.datum);
            else if (op.kind === "putMany") await adapter.putMany(op.datums);
            else if (op.kind === "delete") await adapter.delete(op.id);
            else if (op.kind === "setRef") await adapter.setRef(op.name, op.target, expectFor(op.name), move());
            else await adapter.commit(op.ops, move());
            done.status = "acked";
          } catch {
            done.status = "unknown";
            return; // the server went away: this writer's last write is in doubt, nothing after it
          } finally {
            inFlight.delete(done);
          }
          for (const e of effectsOf(op)) if ("ref" in e) versions.set(e.ref, (versions.get(e.ref) ?? 0) + 1);
          if (op.kind === "commit") for (const o of op.ops) if (o.op === "put") live.push(o.datum.id);
          if (op.kind === "put") live.push(op.datum.id);
          if (op.kind === "putMany") {
            live.push(...op.datums.map((d) => d.id));
            if (op.datums.length === BIG_BATCH) bigAcked++;
          }
          if (++acked >= SIZE.acked && bigAcked > 0) reached();
        }
      };
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
      await enough;
      totals.inFlightAtCrash += inFlight.size;
      await server.crash();
      stop = true;
      await Promise.all(writers);
      totals.failedByCrash += history.filter((d) => d.status === "unknown").length;
      await adapter.close().catch(() => undefined);
      await server.start(); // crash recovery: replays the WAL
    }

    // Every write ever issued, in order per id: the truth is the state after the last acknowledged
    // write of the id, or after the write in doubt that followed it.
    const { rows } = await server.query<Row>(
      `SELECT id, content, created_at, causal_parent, metadata FROM "${namespace}".data`,
    );
    const stored = new Map(rows.map((r) => [r.id, r]));
    const reader = postgresAdapter({ url: server.url, namespace, listen: false });
    await reader.open();
    const refs = new Map<string, Ref>((await reader.listRefs("")).map((r) => [r.name, r]));
    await reader.close();
    const lastAcked = new Map<string, Datum | null>();
    const inDoubt = new Map<string, Datum | null>();
    /** Per ref: acknowledged target and version; the target of a move in doubt. */
    const ackedRefs = new Map<string, { target: string; version: number }>();
    const doubtfulRefs = new Map<string, string>();
    const doubtful: Op[] = [];
    for (const { op, status } of history) {
      expect(status, "every write settled").not.toBe("pending");
      const effects = effectsOf(op);
      if (status === "acked") {
        for (const e of effects) {
          if ("ref" in e) ackedRefs.set(e.ref, { target: e.target, version: (ackedRefs.get(e.ref)?.version ?? 0) + 1 });
          else lastAcked.set(e.id, e.value);
        }
        if (op.kind === "put") totals.puts++;
        else if (op.kind === "delete") totals.deletes++;
        else if (op.kind === "setRef") totals.refMoves++;
        else if (op.kind === "commit") totals.transactions++;
        else if (op.datums.length === BIG_BATCH) totals.bigBatches++;
        else totals.batches++;
      } else {
        for (const e of effects) {
          if ("ref" in e) doubtfulRefs.set(e.ref, e.target);
          else inDoubt.set(e.id, e.value);
        }
        doubtful.push(op);
      }
    }
    const lost: string[] = [];
    for (const [id, value] of lastAcked) {
      const row = stored.get(id);
      const ok = value === null ? row === undefined : same(row, value);
      const doubt = inDoubt.get(id);
      const okInDoubt = inDoubt.has(id) && (doubt === null ? row === undefined : same(row, doubt as Datum));
      if (!ok && !okInDoubt) lost.push(`${id}: expected ${value === null ? "deleted" : "stored"}, found ${row === undefined ? "nothing" : "another value"}`);
    }
    for (const [id, row] of stored) {
      if (!lastAcked.has(id) && !inDoubt.has(id)) lost.push(`${id}: stored but never written`);
      else if (!lastAcked.has(id) && !same(row, inDoubt.get(id) as Datum)) lost.push(`${id}: a write in doubt left another value`);
    }
    expect(lost.slice(0, 10), `${lost.length} datums differ from the acknowledged writes`).toEqual([]);
    for (const [name, acked] of ackedRefs) {
      const ref = refs.get(name);
      const doubt = doubtfulRefs.get(name);
      const ok = ref !== undefined && ref.target === acked.target && ref.version === acked.version;
      const okInDoubt = ref !== undefined && doubt !== undefined && ref.target === doubt && ref.version === acked.version + 1;
      expect(ok || okInDoubt, `ref ${name}: acknowledged ${JSON.stringify(acked)}, found ${JSON.stringify(ref ?? null)}`).toBe(true);
    }
    for (const [name, ref] of refs) {
      if (!ackedRefs.has(name)) expect(doubtfulRefs.get(name), `ref ${name} was never moved by an acknowledged write`).toBe(ref.target);
    }
    // A batch or transaction in flight at the crash is all there or not at all.
    for (const op of doubtful) {
      if (op.kind !== "putMany" && op.kind !== "commit") continue;
      const puts = op.kind === "putMany" ? op.datums : op.ops.flatMap((o) => (o.op === "put" ? [o.datum] : []));
      const present = puts.filter((d) => stored.has(d.id)).length;
      expect([0, puts.length], `${op.kind} in flight at the crash: ${present} of ${puts.length} datums`).toContain(present);
      if (op.kind === "commit") {
        const setRef = op.ops.find((o) => o.op === "setRef");
        const moved = setRef !== undefined && refs.get(setRef.name)?.target === (setRef as { target: string }).target;
        expect(moved, "a transaction in flight moved its ref exactly when its puts are there").toBe(present > 0);
      }
    }

    // The crash really hit writes in flight, and the run wrote what it claims.
    expect(totals.inFlightAtCrash).toBeGreaterThan(0);
    expect(totals.failedByCrash).toBeGreaterThan(0);
    expect(totals.puts).toBeGreaterThan(100);
    expect(totals.deletes).toBeGreaterThan(10);
    expect(totals.batches).toBeGreaterThan(10);
    expect(totals.refMoves).toBeGreaterThan(5);
    expect(totals.transactions).toBeGreaterThan(5);
    expect(totals.bigBatches).toBeGreaterThanOrEqual(SIZE.rounds);
    await dropSchema(server, namespace);
  });
});
