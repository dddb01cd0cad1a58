/**
 * Convergence on real backends: 4 processes write random CRDT operations to SQLite, Postgres and
 * S3 (s3rver), in rounds; between rounds a seeded generator SIGKILLs some of them and starts new
 * ones. Afterwards every process reads the same values, and the counters equal the acknowledged
 * operations exactly. Then a replica writing through a Postgres outage into the SQLite tier below
 * is promoted, and its operations are counted exactly (no lost increments, no resurrected removes).
 *
 * Lockstep, no clocks: a process is told to run k operations, prints `ack` after each and `idle`
 * after the k-th; kills happen only while every process is idle, so no operation is in flight.
 * The children run fixtures/replica.mjs on the built package: `npm run build` first.
 * `DGENT_CRDT_OPS=1000 DGENT_CRDT_KILLS=20` runs the 1,000 operations per process with up to
 * 20 kills per backend (the suite runs 60 operations per process and 2 kills, 12 operations and 1 kill on S3).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { s3Adapter } from "../../adapters/s3/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Store } from "../../compose/index.js";
import type { Adapter } from "../../core/protocol.js";
import { expectCode } from "../../testing/index.js";
import { assertBuilt, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { gCounter, orMap, orSet, pnCounter } from "./index.js";

const OPS = Number(process.env.DGENT_CRDT_OPS ?? 60);
/** S3 is the slowest tier (a put is a conditional PUT, a read lists and GETs): fewer operations in the suite. */
const S3_OPS = Number(process.env.DGENT_CRDT_OPS ?? 12);
/** SIGKILLs per backend: at least one (after the first round), at most this many. */
const MAX_KILLS = Number(process.env.DGENT_CRDT_KILLS ?? 2);
/** Per backend; S3 at about 0.2 s per write on a loaded machine needs the most. */
const TIMEOUT = Math.max(300_000, OPS * 3_000);
const PROCESSES = 4;
const REPLICA = fileURLToPath(new URL("./fixtures/replica.mjs", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "dgent-crdt-procs-"));
let pgServer: PostgresServer;
let s3: S3Server;

beforeAll(async () => {
  assertBuilt();
  [pgServer, s3] = await Promise.all([startPostgres({ owned: true }), startS3()]);
  await s3.createBucket("crdt");
}, 300_000);
afterAll(async () => {
  await pgServer?.start().catch(() => undefined);
  await Promise.all([pgServer?.close(), s3?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** mulberry32: the schedule (round sizes, kills) from a seed. */
function generator(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

type Backend = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string; namespace: string } | { kind: "s3"; clientOptions: S3Server["clientOptions"]; bucket: string; namespace: string };
type Did = { ops?: number; hits?: number; add?: string; remove?: string; tokens?: [string, number]; compact?: string };

interface Child {
  readonly process: ChildProcess;
  readonly acks: Did[];
  readonly values: unknown[];
  /** Resolves at the next `idle` (or `ready`) line; rejects if the process exits first. */
  next(): Promise<void>;
  send(line: string): void;
  readonly exited: Promise<number | string>;
}

function child(backend: Backend, seed: number): Child {
  const proc = spawn(process.execPath, [REPLICA], { cwd: root, env: { ...process.env, DGENT_CRDT_REPLICA: JSON.stringify({ backend, seed }) }, stdio: ["pipe", "pipe", "pipe"] });
  const acks: Did[] = [];
  const values: unknown[] = [];
  const stderr: string[] = [];
  let waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  let marks = 0;
  let exitedFlag = false;
  proc.stderr!.on("data", (c: Buffer) => stderr.push(c.toString()));
  proc.stdin!.on("error", () => undefined);
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    if (line.startsWith("ack ")) acks.push(JSON.parse(line.slice(4)) as Did);
    else if (line.startsWith("value ")) values.push(JSON.parse(line.slice(6)));
    else if (line === "idle" || line === "ready") {
      marks++;
      const w = waiter;
      waiter = null;
      w?.resolve();
    }
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => {
      exitedFlag = true;
      resolve(signal ?? code ?? -1);
      waiter?.reject(new Error(`replica process exited (${signal ?? code}); stderr:\n${stderr.join("")}`));
    }),
  );
  let consumed = 0;
  const next = () =>
    new Promise<void>((resolve, reject) => {
      if (marks > consumed) {
        consumed++;
        return resolve();
      }
      if (exitedFlag) return reject(new Error(`replica process exited; stderr:\n${stderr.join("")}`));
      waiter = {
        resolve: () => {
          consumed++;
          resolve();
        },
        reject,
      };
    });
  return { process: proc, acks, values, next, send: (line) => proc.stdin!.write(`${line}\n`), exited };
}

/** What the acknowledged operations add up to. */
function expected(acks: readonly Did[]) {
  const tokens: Record<string, number> = {};
  let hits = 0;
  let ops = 0;
  for (const a of acks) {
    hits += a.hits ?? 0;
    ops += a.ops ?? 0;
    if (a.tokens) tokens[a.tokens[0]] = (tokens[a.tokens[0]] ?? 0) + a.tokens[1];
  }
  return { ops, hits, tokens: Object.fromEntries(Object.entries(tokens).sort(([a], [b]) => (a < b ? -1 : 1))) };
}

async function converge(backend: Backend, seed: number, open: () => Promise<Store>, ops = OPS, maxKills = MAX_KILLS): Promise<void> {
  const random = generator(seed);
  let spawned = 0;
  const start = async () => {
    const c = child(backend, seed * 100 + spawned++);
    await c.next();
    return c;
  };
  const slots = await Promise.all(Array.from({ length: PROCESSES }, start));
  const remaining = slots.map(() => ops);
  const all: Did[] = [];
  let kills = 0;
  while (remaining.some((r) => r > 0)) {
    const round = slots.map((c, i) => {
      const k = Math.min(remaining[i] as number, 1 + random(Math.min(25, Math.max(1, Math.floor(ops / 4)))));
      remaining[i] = (remaining[i] as number) - k;
      if (k > 0) c.send(`run ${k}`);
      return k;
    });
    await Promise.all(slots.map((c, i) => ((round[i] as number) > 0 ? c.next() : undefined)));
    // Everyone is idle: a seeded choice of processes dies here, and new ones take their place
    // (the first round always kills one, so every backend sees at least one restart).
    const first = kills === 0 ? random(PROCESSES) : -1;
    const victims = [...slots.keys()].filter((i) => (remaining[i] as number) > 0 && (i === first || random(100) < 15));
    const chosen = victims.slice(0, Math.max(0, maxKills - kills));
    for (const i of chosen) {
      const c = slots[i] as Child;
      c.process.kill("SIGKILL");
      expect(await c.exited).toBe("SIGKILL");
      all.push(...c.acks);
      kills++;
    }
    await Promise.all(chosen.map(async (i) => (slots[i] = await start())));
  }
  for (const c of slots) c.send("read");
  await Promise.all(slots.map((c) => c.next()));
  for (const c of slots) all.push(...c.acks);
  const values = slots.map((c) => c.values[0] as { ops: number; hits: number; board: string[]; tokens: Record<string, number> });
  for (const v of values) expect(v).toEqual(values[0]);
  const want = expected(all);
  expect(all.length).toBe(ops * PROCESSES);
  expect(kills).toBeGreaterThan(0);
  expect(values[0]).toMatchObject(want);
  expect(values[0]?.board.every((t) => /^task-\d+$/.test(t))).toBe(true);
  for (const c of slots) c.send("exit");
  expect(await Promise.all(slots.map((c) => c.exited))).toEqual(slots.map(() => 0));

  // A process that never took part reads the same.
  const store = await open();
  const mine = { ops: await gCounter(store, { name: "ops" }).value(), hits: await pnCounter(store, { name: "hits" }).value(), board: await orSet(store, { name: "board" }).value(), tokens: await orMap(store, { name: "tokens", values: "counter" }).value() };
  expect(mine).toEqual(values[0]);
  const compactions = all.filter((a) => a.compact).length;
  console.log(`${backend.kind}: ${PROCESSES} processes × ${ops} operations, ${kills} SIGKILLs and restarts, ${compactions} compactions; converged on hits=${want.hits}, ${mine.board.length} tasks on the board`);
  await store.close();
}

async function opened(tier: Adapter): Promise<Store> {
  const store = createStore({ tiers: [tier], upgrader: false });
  await store.open();
  return store;
}

describe(`${PROCESSES} processes × ${OPS} random operations with SIGKILLs, on real backends`, () => {
  it("SQLite", async () => {
    const path = join(dir, "converge.db");
    await converge({ kind: "sqlite", path }, 11, () => opened(sqliteAdapter({ path })));
  }, TIMEOUT);

  it("Postgres", async () => {
    const namespace = freshSchema("crdt");
    await converge({ kind: "postgres", url: pgServer.url, namespace }, 22, () => opened(postgresAdapter({ url: pgServer.url, namespace, listen: false, notify: false })));
  }, TIMEOUT);

  it("S3 (s3rver): no transactions, so compaction puts the snapshot first and deletes after", async () => {
    const backend = { kind: "s3" as const, clientOptions: s3.clientOptions, bucket: "crdt", namespace: `crdt-${Date.now().toString(36)}` };
    await converge(backend, 33, () => opened(s3Adapter({ ...s3.clientOptions, bucket: "crdt", namespace: backend.namespace })), S3_OPS, Number(process.env.DGENT_CRDT_KILLS ?? 1));
  }, TIMEOUT);
});

describe("through a Postgres outage on the lattice [postgres, sqlite]", () => {
  it("writes made while Postgres is down land on SQLite and, once promoted, count exactly; removals stay removed", async () => {
    const namespace = freshSchema("outage");
    const sqlitePath = join(dir, "outage.db");
    const lattice = createStore({
      tiers: [postgresAdapter({ url: pgServer.url, namespace, connectTimeoutMs: 15_000, probeTimeoutMs: 10_000, listen: false, notify: false }), sqliteAdapter({ path: sqlitePath })],
      namespace,
      journalPath: `${sqlitePath}.pending-deletes.jsonl`,
      probeBackoffMs: { min: 50, max: 400 },
    });
    lattice.hooks.warning.tap("test", () => undefined);
    await lattice.open();
    const other = await opened(postgresAdapter({ url: pgServer.url, namespace, listen: false, notify: false }));

    const counter = pnCounter(lattice, { name: "tokens", replica: "degraded" });
    const board = orSet(lattice, { name: "board", replica: "degraded" });
    const peerCounter = pnCounter(other, { name: "tokens", replica: "peer" });
    const peerBoard = orSet(other, { name: "board", replica: "peer" });
    await counter.increment(100);
    await board.add("task-1");
    await board.add("task-2");
    await peerCounter.increment(1);
    await peerBoard.add("task-3");
    expect(await board.value()).toEqual(["task-1", "task-2", "task-3"]);
    expect(await counter.compact()).toMatchObject({ atomic: true }); // a snapshot on Postgres covers the early writes
    await board.compact();
    await other.close();

    const restored = new Promise<void>((resolve) => lattice.hooks.restored.tap("test", () => resolve()));
    await pgServer.stop();
    for (let i = 0; i < 10; i++) await counter.increment(7);
    await counter.decrement(20);
    await board.remove("task-1"); // its add sits in the snapshot on Postgres
    await board.add("task-4");
    expect((await lattice.backend()).landing).toBe("sqlite");
    // A compaction needs the landing tier's transaction: retryable, and nothing is lost by it.
    await expectCode(counter.compact(), "DGENT_UNAVAILABLE");
    await pgServer.start();

    // The lattice re-probes Postgres and reports it back; then everything below moves up.
    await restored;
    await lattice.upgrade();
    const local = sqliteAdapter({ path: sqlitePath });
    await local.open();
    expect((await local.stats()).count).toBe(0); // everything moved up
    await local.close();

    const fresh = await opened(postgresAdapter({ url: pgServer.url, namespace, listen: false, notify: false }));
    expect(await pnCounter(fresh, { name: "tokens" }).value()).toBe(100 + 1 + 70 - 20);
    expect(await orSet(fresh, { name: "board" }).value()).toEqual(["task-2", "task-3", "task-4"]);
    // The covered deltas promoted after the snapshot changed nothing; a compaction now keeps the value.
    await pnCounter(fresh, { name: "tokens" }).compact();
    await orSet(fresh, { name: "board" }).compact();
    expect(await pnCounter(fresh, { name: "tokens" }).value()).toBe(151);
    expect(await board.value()).toEqual(["task-2", "task-3", "task-4"]);
    expect(await counter.value()).toBe(151);
    await Promise.all([fresh.close(), lattice.close()]);
  }, 300_000);
});
