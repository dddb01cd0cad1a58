/**
 * The materialised view behind `read()`: a read after the first joins only the deltas that arrived
 * since, and stays exactly the full join of what is stored — after writes by another connection
 * or process, late deltas (stamped before the newest one read), compactions by another replica,
 * and deletes. The property test compares incremental reads with full reads of a second store on
 * the same SQLite file, over random interleavings of writes (with random stamps), compactions,
 * deletes and reads.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Store } from "../../compose/index.js";
import { assertBuilt } from "../../test/harness/postgres.js";
import { emptyState, joinState, orSet, orSetKind, pnCounter, pnCounterKind, sameState, stateFromJson, type Kind, type StateJson } from "./index.js";

/** The join of every datum under `prefix`, computed directly (no handle, no view, no skipping). */
async function naiveJoin(store: Store, prefix: string, kind: Kind<unknown, unknown>) {
  let state = emptyState(kind);
  for (const datum of (await store.query({ prefix, limit: 100_000 })).items) {
    state = joinState(kind, state, stateFromJson(kind, JSON.parse(Buffer.from(datum.content).toString("utf8")) as StateJson));
  }
  return state;
}

const dir = mkdtempSync(join(tmpdir(), "dgent-crdt-view-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const RUNS = Number(process.env.DGENT_CRDT_RUNS ?? 40);
const STEPS = Number(process.env.DGENT_CRDT_STEPS ?? 40);

/** Two stores on one SQLite file: two connections, each with its own views, as two processes have. */
async function twoStores(): Promise<[Store, Store]> {
  const path = join(dir, `v${n++}.db`);
  const a = createStore({ tiers: [sqliteAdapter({ path })] });
  await a.open();
  const b = createStore({ tiers: [sqliteAdapter({ path })] });
  await b.open();
  return [a, b];
}

/** A clock the test sets: `clock.at` is the next stamp. */
function settable(at = 1_000_000): { at: number; now: () => number } {
  const c = { at, now: () => c.at };
  return c;
}

describe("the view behind read()", () => {
  it("joins only the deltas that arrived since, also those another connection wrote", async () => {
    const [a, b] = await twoStores();
    const reader = pnCounter(a, { name: "c", replica: "reader" });
    const writer = pnCounter(b, { name: "c", replica: "writer" });
    await writer.increment(5);
    const first = await reader.read();
    expect([first.via, first.deltas.length]).toEqual(["full", 1]);
    expect((await reader.read()).via).toBe("incremental"); // nothing new
    await writer.increment(2);
    await writer.decrement(1);
    const next = await reader.read();
    expect([next.via, next.deltas.length]).toEqual(["incremental", 3]);
    expect(await reader.value()).toBe(6);
    // Another handle of the same store and value shares the view; a handle on another store does not.
    expect((await pnCounter(a, { name: "c", replica: "other" }).read()).via).toBe("incremental");
    expect((await reader.read({ fresh: true })).via).toBe("full");
    await Promise.all([a.close(), b.close()]);
  });

  it("finds a late delta (stamped before the newest one read): repaired within the window, a full read beyond it", async () => {
    const [a, b] = await twoStores();
    const clocks = [settable(), settable(), settable()];
    const reader = orSet(a, { name: "s", replica: "reader" });
    const writers = clocks.map((clock, i) => orSet(b, { name: "s", replica: `w${i}`, clock: clock.now }));
    const add = (w: number, v: string) => writers[w]!.add(v);
    clocks[0]!.at = 2_000_000;
    await add(0, "x");
    expect((await reader.read()).via).toBe("full");
    clocks[1]!.at = 2_000_000 - 5_000; // a commit that lagged its stamp by 5 s
    await add(1, "y");
    const repaired = await reader.read();
    expect(repaired.via).toBe("repaired");
    expect(await reader.value()).toEqual(["x", "y"]);
    clocks[2]!.at = 1; // a delta promoted from a lower tier long after it was written
    await add(2, "z");
    const full = await reader.read();
    expect([full.via, full.deltas.length]).toEqual(["full", 3]);
    expect(await reader.value()).toEqual(["x", "y", "z"]);
    // The same millisecond as the newest delta read, committed after it: read again every time.
    clocks[1]!.at = 2_000_000;
    await add(1, "w");
    expect((await reader.read()).via).toBe("incremental");
    expect(await reader.value()).toEqual(["w", "x", "y", "z"]);
    await Promise.all([a.close(), b.close()]);
  });

  it("reads everything again after another replica compacted, and keeps the view through its own compaction", async () => {
    const [a, b] = await twoStores();
    const reader = pnCounter(a, { name: "c", replica: "reader" });
    const writer = pnCounter(b, { name: "c", replica: "writer" });
    for (let i = 0; i < 4; i++) await writer.increment(1);
    await reader.read();
    await writer.increment(10);
    const compacted = await writer.compact();
    expect(compacted).toMatchObject({ deltas: 5, atomic: true });
    const after = await reader.read();
    expect([after.via, after.deltas.length, after.snapshots]).toEqual(["full", 0, [compacted.snapshot]]);
    expect(await reader.value()).toBe(14);
    await writer.increment(1); // the view knew no delta: this one is read incrementally
    const first = await reader.read();
    expect([first.via, first.deltas.length]).toEqual(["incremental", 1]);
    await reader.increment(1);
    const own = await reader.compact();
    const kept = await reader.read();
    expect([kept.via, kept.deltas.length, kept.snapshots]).toEqual(["incremental", 0, [own.snapshot]]);
    expect(await reader.value()).toBe(16);
    await Promise.all([a.close(), b.close()]);
  });

  it("reads everything again after deletes: the whole value, one delta, the newest delta", async () => {
    const [a, b] = await twoStores();
    const reader = orSet(a, { name: "s", replica: "reader" });
    const writer = orSet(b, { name: "s", replica: "writer" });
    for (const v of ["a", "b", "c"]) await writer.add(v);
    expect(await reader.value()).toEqual(["a", "b", "c"]);
    await b.delete("crdt/s/d/writer/000000000002"); // by hand, not by a compaction
    const one = await reader.read();
    expect([one.via, one.deltas.length]).toEqual(["full", 2]);
    expect((await reader.read({ fresh: true })).deltas).toEqual(one.deltas);
    await b.delete("crdt/s/d/writer/000000000003"); // the newest
    expect((await reader.read()).via).toBe("full");
    expect(await b.deleteMany({ prefix: "crdt/s/" })).toBe(1);
    const none = await reader.read();
    expect([none.via, none.deltas.length, none.snapshots.length]).toEqual(["full", 0, 0]);
    expect(pnCounter(a, { name: "s2" }).type).toBe("pncounter");
    await Promise.all([a.close(), b.close()]);
  });

  it("sees another process's writes and compaction", async () => {
    assertBuilt();
    const path = join(dir, `p${n++}.db`);
    const store = createStore({ tiers: [sqliteAdapter({ path })] });
    await store.open();
    const reader = pnCounter(store, { name: "tokens", replica: "reader" });
    await reader.increment(100); // its first write read the store (the full read)
    expect((await reader.read()).via).toBe("incremental");
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const child = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/view-writer.mjs", import.meta.url))], {
      cwd: root,
      env: { ...process.env, DGENT_CRDT_VIEW: JSON.stringify({ path, name: "tokens" }) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stderr: string[] = [];
    child.stderr!.on("data", (c: Buffer) => stderr.push(c.toString()));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const line = await lines.next();
      if (line.done) throw new Error(`the writer exited; stderr:\n${stderr.join("")}`);
      return line.value as string;
    };
    const ask = async (command: string): Promise<string> => {
      child.stdin!.write(`${command}\n`);
      return next();
    };
    expect(await next()).toBe("ready");
    expect(await ask("inc 7")).toBe("done 7");
    const read = await reader.read();
    expect([read.via, read.deltas.length]).toEqual(["incremental", 8]);
    expect(await reader.value()).toBe(107);
    expect(await ask("compact")).toMatch(/^done .*"deltas":8/);
    const afterCompaction = await reader.read();
    expect([afterCompaction.via, afterCompaction.deltas.length, afterCompaction.snapshots.length]).toEqual(["full", 0, 1]);
    expect(await reader.value()).toBe(107);
    expect(await ask("inc 3")).toBe("done 3");
    expect((await reader.read()).via).toBe("incremental");
    expect(await reader.value()).toBe(110);
    child.stdin!.write("exit\n");
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    await store.close();
  }, 300_000);
});

/** One step of a random interleaving. */
type Step =
  | { kind: "write"; w: number; store: number; op: number; arg: number; at: number }
  | { kind: "read" }
  | { kind: "compact"; w: number }
  | { kind: "deleteAll" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      w: fc.nat(2),
      store: fc.nat(1),
      op: fc.nat(2),
      arg: fc.nat(4),
      // Stamps in steps of 20 s over 200 s, so late deltas fall within the repair window and beyond
      // it, and many share a millisecond.
      at: fc.nat(10).map((k) => 1_000_000 + k * 20_000),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: "read" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), w: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "deleteAll" as const }) },
);

describe("incremental reads equal full reads (property)", () => {
  for (const type of ["orset", "pncounter"] as const) {
    it(`${type}: random writes from two connections with random stamps, compactions, deletes and reads`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: STEPS }), async (steps) => {
          const stores = await twoStores();
          const name = "v";
          const make = (store: Store, replica: string, clock?: () => number) =>
            type === "orset" ? orSet(store, { name, replica, compactEvery: Infinity, ...(clock ? { clock } : {}) }) : pnCounter(store, { name, replica, compactEvery: Infinity, ...(clock ? { clock } : {}) });
          const reader = make(stores[0], "reader");
          const truth = make(stores[1], "truth");
          const clocks = [0, 1, 2].map(() => settable());
          let probes = 0;
          const writers = [0, 1, 2].map((w) => [make(stores[0], `w${w}`, clocks[w]!.now), make(stores[1], `w${w}b`, clocks[w]!.now)]);
          const check = async () => {
            const [incremental, full] = [await reader.read(), await truth.read({ fresh: true })];
            if (process.env.DGENT_CRDT_VIEW_TALLY) console.log("via", incremental.via);
            const kind = (type === "orset" ? orSetKind : pnCounterKind) as Kind<unknown, unknown>;
            expect(sameState(kind, incremental.state, full.state)).toBe(true);
            expect(sameState(kind, full.state, await naiveJoin(stores[1], `crdt/${name}/`, kind))).toBe(true);
            expect([...incremental.deltas].sort()).toEqual([...full.deltas].sort());
            expect([...incremental.snapshots].sort()).toEqual([...full.snapshots].sort());
            // A counter's value() (one delta per marked replica, or everything when they disagree) agrees.
            if (type === "pncounter") expect(await pnCounter(stores[0], { name, replica: `probe${probes++}` }).value()).toBe(pnCounterKind.value(full.state.data as never));
          };
          try {
            for (const step of steps) {
              if (step.kind === "write") {
                clocks[step.w]!.at = step.at;
                const w = writers[step.w]![step.store]!;
                if (type === "orset") {
                  const s = w as ReturnType<typeof orSet>;
                  await (step.op === 0 ? s.add(step.arg) : step.op === 1 ? s.remove(step.arg) : s.add(step.arg + 10));
                } else {
                  const c = w as ReturnType<typeof pnCounter>;
                  await (step.op === 2 ? c.decrement(step.arg) : c.increment(step.arg));
                }
              } else if (step.kind === "read") await check();
              else if (step.kind === "compact") await writers[step.w]![step.w % 2]!.compact();
              else await stores[1].deleteMany({ prefix: `crdt/${name}/` });
            }
            await check();
          } finally {
            await Promise.all(stores.map((s) => s.close()));
          }
        }),
        { numRuns: RUNS },
      );
    }, 300_000);
  }
});
