/**
 * Fault injection on the lattice: a store of Postgres over SQLite (the docker profile's shape)
 * under a steady stream of puts and deletes while Postgres is stopped (`pg_ctl stop -m fast`, then
 * `-m immediate`) and started again, with a second writer process killed with SIGKILL during the
 * outage, and deletes landing while the upgrader moves the outage's datums back up. Every
 * acknowledged put and delete is recorded; after the store settles and a new process has opened
 * it again, both tiers are read directly and compared with the record: nothing lost, nothing
 * resurrected, nothing on two tiers, and every delete's answer true to the state when it was
 * given (or DGENT_DELETE_UNKNOWN while a tier that may hold the id was down).
 *
 * CI size by default (about a minute on two cores). `DGENT_TEST_LONG=1` (or
 * `node test/faults/run.mjs --long`) runs it several times larger; `DGENT_TEST_SEED` repeats a run.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { contentText, createStore, makeDatum, type Datum, type Store } from "../../core/index.js";
import { assertBuilt, freshSchema, startPostgres, type PostgresServer } from "../harness/postgres.js";
import { durableCommits, stopPostgres, type StopMode } from "./postgres-stop.js";
import { runProcess } from "../harness/run.js";
import { until } from "../harness/until.js";

const LONG = process.env.DGENT_TEST_LONG === "1";
const SEED = process.env.DGENT_TEST_SEED ? Number(process.env.DGENT_TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Operations per phase, summed over the in-process workers. */
const SIZE = LONG
  ? { workers: 8, before: 10_000, outage: 40_000, bulk: 50_000, child: 10_000, after: 20_000 }
  : { workers: 6, before: 2_000, outage: 6_000, bulk: 8_000, child: 1_500, after: 3_000 };

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "dgent-faults-"));
let server: PostgresServer;

beforeAll(async () => {
  assertBuilt();
  // The writer child runs the built package: it must be this code.
  for (const file of ["core/router", "core/upgrader", "core/pending-deletes"]) {
    if (statSync(join(root, "dist", `${file}.js`)).mtimeMs < statSync(join(root, `${file}.ts`)).mtimeMs) {
      throw new Error(`dist/${file}.js is older than ${file}.ts: the writer child would run old code; run \`npm run build\` first`);
    }
  }
  server = await startPostgres({ owned: true });
  await durableCommits(server); // an immediate stop must not take acknowledged commits with it
});
afterEach(async () => {
  await server?.start(); // a failure while stopped must not leave the server down
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** mulberry32. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Answer = boolean | "unknown";

/** Every acknowledged operation, per id in the order acknowledged (each id has one writer). */
class Ledger {
  readonly exists = new Map<string, boolean>();
  readonly content = new Map<string, string>();
  /** Ids whose last operation was in flight when its process was killed: either state is right. */
  readonly uncertain = new Set<string>();
  readonly wrong: string[] = [];
  readonly errors: string[] = [];
  /** Each id's acknowledged operations, with who made them and when: printed for any id that fails. */
  readonly history = new Map<string, string[]>();
  /** What the test was doing, for the history. */
  phase = "before";
  ops = 0;
  puts = 0;
  deletes = 0;
  unknown = 0;

  #note(id: string, what: string): void {
    let h = this.history.get(id);
    if (!h) this.history.set(id, (h = []));
    h.push(`${what} (${this.phase}, op ${this.ops})`);
  }

  /** An operation announced (started) but not yet acknowledged. */
  started(id: string, what: string): void {
    this.#note(id, `${what} started`);
  }

  put(id: string, content: string | null, who = ""): void {
    this.#note(id, `put by ${who}`);
    this.exists.set(id, true);
    if (content !== null) this.content.set(id, content);
    this.puts++;
    this.ops++;
  }

  deleted(id: string, answer: Answer, who: string, unknownAllowed: boolean): void {
    this.#note(id, `delete by ${who}: ${answer}`);
    const before = this.exists.get(id) ?? false;
    if (answer === "unknown") {
      this.unknown++;
      if (!unknownAllowed) this.wrong.push(`${who}: delete ${id} answered DGENT_DELETE_UNKNOWN while every tier was up`);
    } else if (answer !== before) {
      this.wrong.push(`${who}: delete ${id} answered ${answer}, but it ${before ? "existed" : "did not exist"}`);
    }
    // Unknown or not, the delete applies (a journaled one when the tier returns).
    this.exists.set(id, false);
    this.deletes++;
    this.ops++;
  }
}

function options(namespace: string, sqlitePath: string) {
  return {
    url: server.url,
    namespace,
    sqlitePath,
    journalPath: `${sqlitePath}.pending-deletes.jsonl`,
  };
}

function lattice(o: ReturnType<typeof options>): Store {
  return createStore({
    tiers: [postgresAdapter({ url: o.url, namespace: o.namespace }), sqliteAdapter({ path: o.sqlitePath })],
    namespace: o.namespace,
    journalPath: o.journalPath,
    probeBackoffMs: { min: 50, max: 400 },
  });
}

async function deleteAnswer(store: Store, id: string): Promise<Answer> {
  try {
    return await store.delete(id);
  } catch (error) {
    if ((error as { code?: string }).code === "DGENT_DELETE_UNKNOWN") return "unknown";
    throw error;
  }
}

interface Control {
  stop: boolean;
  degraded: boolean;
  /** While set, workers wait on it (a phase has had its share of their operations). */
  paused: Promise<void> | null;
}

/** Pauses the workers until the returned function is called. */
function pause(control: Control): () => void {
  let resume!: () => void;
  control.paused = new Promise<void>((resolve) => (resume = resolve));
  return () => {
    control.paused = null;
    resume();
  };
}

/** One in-process writer: puts new datums, deletes live ones, puts deleted ones again (same id), deletes dead ones. */
async function worker(w: number, store: Store, ledger: Ledger, control: Control, rand: () => number): Promise<void> {
  const live: Datum[] = [];
  const dead: Datum[] = [];
  let n = 0;
  const fresh = () => makeDatum({ content: `w${w}:${n++}`, idStrategy: "content", metadata: { worker: String(w) }, createdAt: 1_000 + n });
  try {
    for (;;) {
      while (control.paused) await control.paused;
      if (control.stop) break;
      const r = rand();
      if (r < 0.45 || live.length === 0) {
        const d = r < 0.35 || dead.length === 0 ? fresh() : (dead.splice(Math.floor(rand() * dead.length), 1)[0] as Datum);
        expect(await store.put(d)).toBe(d.id);
        ledger.put(d.id, contentText(d), `worker ${w}`);
        live.push(d);
      } else if (r < 0.85 || dead.length === 0) {
        const d = live.splice(Math.floor(rand() * live.length), 1)[0] as Datum;
        ledger.deleted(d.id, await deleteAnswer(store, d.id), `worker ${w}`, control.degraded);
        dead.push(d);
      } else {
        const d = dead[Math.floor(rand() * dead.length)] as Datum; // deleted already: the answer is false
        ledger.deleted(d.id, await deleteAnswer(store, d.id), `worker ${w}`, control.degraded);
      }
      await turn(); // one operation per turn of the event loop: the others' I/O and timers go on
    }
  } catch (error) {
    ledger.errors.push(`worker ${w}: ${(error as Error).message}`);
  }
}

/** The writer child, with what it acknowledged recorded in the ledger as it goes. */
function writerChild(o: ReturnType<typeof options>, ledger: Ledger, outage: { since: number | null }) {
  const args = { ...o, prefix: "child", seed: SEED ^ 0x5eed };
  const p = spawn(process.execPath, [join(root, "test/faults/outage-writer.mjs"), JSON.stringify(args)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const state = { ready: false, inFlight: null as string | null, acknowledgedInOutage: 0, stderr: "", exited: false, seq: 0 };
  p.stderr.on("data", (c: Buffer) => (state.stderr += c.toString()));
  const exited = new Promise<string | number | null>((resolve) =>
    p.on("exit", (code, signal) => {
      state.exited = true;
      resolve(signal ?? code);
    }),
  );
  // Line events, handled as they come (no queue between the stream and the ledger).
  const lines = createInterface({ input: p.stdout });
  lines.on("line", (line) => {
    const [tag, seq, id, answer] = line.split(" ");
    if (tag !== "ready" && tag !== "E" && Number(seq) !== ++state.seq) ledger.errors.push(`writer child: line ${state.seq} missing (got ${line})`);
    if (tag === "ready") state.ready = true;
    else if (tag === "p" || tag === "d") {
      state.inFlight = id as string;
      ledger.started(id as string, `${tag === "p" ? "put" : "delete"} by the writer child`);
    } else if (tag === "P" || tag === "D") {
      if (tag === "P") ledger.put(id as string, null, "the writer child");
      else ledger.deleted(id as string, answer === "?" ? "unknown" : answer === "1", "writer child", outage.since !== null);
      state.inFlight = null;
      if (outage.since !== null) state.acknowledgedInOutage++;
    } else if (tag === "E") ledger.errors.push(`writer child: ${line}`);
  });
  const drained = new Promise<void>((resolve) => lines.on("close", resolve));
  return { p, state, exited, drained };
}

/** What each tier holds, read directly. */
async function tiers(o: ReturnType<typeof options>): Promise<{ pg: Map<string, Datum>; sqlite: Map<string, Datum> }> {
  const pgTier = postgresAdapter({ url: o.url, namespace: o.namespace, listen: false, notify: false });
  const sqliteTier = sqliteAdapter({ path: o.sqlitePath });
  const read = async (tier: { open(): Promise<void>; scan(): AsyncIterable<Datum>; close(): Promise<void> }) => {
    await tier.open();
    const out = new Map<string, Datum>();
    for await (const d of tier.scan()) out.set(d.id, d);
    await tier.close();
    return out;
  };
  return { pg: await read(pgTier), sqlite: await read(sqliteTier) };
}

async function scenario(mode: StopMode): Promise<void> {
  const o = options(freshSchema(`outage_${mode}`), join(dir, `${mode}.db`));
  const ledger = new Ledger();
  const control: Control = { stop: false, degraded: false, paused: null };
  const outage = { since: null as number | null };
  const store = lattice(o);
  const at = { start: Date.now(), stopped: 0, started: 0, restored: 0, stopping: 0, settled: 0 };
  let opsAtStart = 0;
  let opsInCatchUp = 0;
  store.hooks.warning.tap("test", () => undefined);
  store.hooks.degraded.tap("test", () => void (control.degraded = true));
  store.hooks.restored.tap("test", () => {
    ledger.phase = "restored";
    control.degraded = false;
    at.restored = Date.now();
    opsInCatchUp = ledger.ops - opsAtStart;
  });
  const promotedAt: number[] = [];
  store.hooks.promoted.tap("test", () => void promotedAt.push(Date.now()));
  await store.open();
  const failed = () => ledger.errors.length > 0;

  const child = writerChild(o, ledger, outage);
  await until("the writer child open", () => {
    if (child.state.exited) throw new Error(`the writer child exited before it was ready: ${child.state.stderr}`);
    return child.state.ready || failed();
  });
  const workers = Array.from({ length: SIZE.workers }, (_, w) => worker(w, store, ledger, control, generator(SEED + w * 7919 + (mode === "fast" ? 0 : 104729))));

  // Before: everything lands on Postgres.
  await until("writes before the outage", () => ledger.ops >= SIZE.before || failed());

  // The outage: writes land on SQLite, deletes of what only Postgres holds are journaled.
  at.stopped = Date.now();
  ledger.phase = "outage";
  outage.since = ledger.ops;
  await stopPostgres(server, mode);
  await until("the store degraded", () => control.degraded || failed());
  const bulk: Datum[] = []; // many datums on SQLite, to be promoted when Postgres is back
  const bulkWriting = (async () => {
    for (let i = 0; i < SIZE.bulk && !failed(); i++) {
      const d = makeDatum({ content: `bulk:${i}`, idStrategy: "content", createdAt: 2_000 + i });
      await store.put(d);
      ledger.put(d.id, contentText(d), "the bulk writer");
      bulk.push(d);
      await turn();
    }
  })();
  await until("writes during the outage", () => ledger.ops - (outage.since as number) >= SIZE.outage || failed());
  const resume = pause(control); // the workers have had their share; the child and the bulk writer finish theirs
  await until("the writer child working through the outage", () => {
    if (child.state.exited) throw new Error(`the writer child exited before it was killed: ${child.state.stderr}`);
    return child.state.acknowledgedInOutage >= SIZE.child || failed();
  });
  child.p.kill("SIGKILL");
  ledger.phase = "outage, child killed";
  expect(await child.exited, child.state.stderr).toBe("SIGKILL");
  await child.drained; // every line it wrote is read: what it was doing when killed is known
  if (child.state.inFlight !== null) ledger.uncertain.add(child.state.inFlight);
  await bulkWriting;
  const journaled = (await store.backend()).pendingDeletes;
  resume();

  // Postgres returns; the workers go on. Every 7th bulk datum is deleted while the upgrader
  // moves the outage's datums back up.
  await server.start();
  ledger.phase = "Postgres started";
  at.started = Date.now();
  opsAtStart = ledger.ops;
  await until("Postgres serving the store again", () => at.restored > 0 || failed());
  ledger.phase = "restored";
  const firstDelete = Date.now();
  for (let i = 0; i < bulk.length && !failed(); i += 7) {
    const d = bulk[i] as Datum;
    ledger.deleted(d.id, await deleteAnswer(store, d.id), "bulk deleter", control.degraded);
  }
  const lastDelete = Date.now();
  const promotedWhileDeleting = promotedAt.filter((t) => t >= firstDelete && t <= lastDelete).length;
  const afterRestore = ledger.ops;
  await until("writes after the outage", () => ledger.ops - afterRestore >= SIZE.after || failed());
  at.stopping = Date.now();
  control.stop = true;
  await Promise.all(workers);
  expect(ledger.errors).toEqual([]);

  await until("the store settled", async () => {
    const r = await store.backend();
    return r.landing !== "sqlite" && r.pendingDeletes === 0 && r.pendingPromotions === 0;
  });
  at.settled = Date.now();
  const promoted = promotedAt.length;
  const promotionSeconds = promoted > 1 ? ((promotedAt[promoted - 1] as number) - (promotedAt[0] as number)) / 1_000 : 0;
  await store.close();

  // A new process opens the store, settles, closes.
  const reopen = await runProcess(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { createStore } from "dgent";
       import { postgresAdapter } from "dgent/adapters/postgres";
       import { sqliteAdapter } from "dgent/adapters/sqlite";
       const o = JSON.parse(process.argv[1]);
       const store = createStore({ tiers: [postgresAdapter({ url: o.url, namespace: o.namespace }), sqliteAdapter({ path: o.sqlitePath })], namespace: o.namespace, journalPath: o.journalPath });
       store.hooks.warning.tap("reopen", (w) => process.stderr.write(w.message + "\\n"));
       await store.open();
       for (;;) {
         const r = await store.backend();
         if (r.pendingDeletes === 0 && r.pendingPromotions === 0) break;
         await new Promise((resolve) => setTimeout(resolve, 20));
       }
       const listed = await store.list({ limit: 100000 });
       process.stdout.write(JSON.stringify({ listed: listed.length, distinct: new Set(listed.map((d) => d.id)).size }));
       await store.close();`,
      JSON.stringify(o),
    ],
    { cwd: root, timeout: 300_000 },
  );
  expect(reopen.status, reopen.stderr).toBe(0);
  const reopened = JSON.parse(reopen.stdout) as { listed: number; distinct: number };

  // The final state of both tiers against the record.
  const { pg, sqlite } = await tiers(o);
  const lost: string[] = [];
  const resurrected: string[] = [];
  const altered: string[] = [];
  for (const [id, exists] of ledger.exists) {
    if (ledger.uncertain.has(id)) continue;
    const found = pg.get(id) ?? sqlite.get(id);
    if (exists && !found) lost.push(id);
    if (!exists && found) resurrected.push(id);
    const content = ledger.content.get(id);
    if (exists && found && content !== undefined && contentText(found) !== content) altered.push(id);
  }
  const duplicated = [...sqlite.keys()].filter((id) => pg.has(id));
  const unaccounted = [...pg.keys(), ...sqlite.keys()].filter((id) => !ledger.exists.has(id) && !ledger.uncertain.has(id));
  const expected = [...ledger.exists.values()].filter(Boolean).length;

  const s = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;
  process.stdout.write(
    `lattice outage (${mode} stop, seed ${SEED}${LONG ? ", long" : ""}): ${ledger.puts} puts and ${ledger.deletes} deletes acknowledged ` +
      `(${ledger.unknown} answered DGENT_DELETE_UNKNOWN), writer child killed after ${child.state.acknowledgedInOutage} operations in the outage; ` +
      `${journaled} journaled deletes applied and Postgres serving ${at.restored - at.started} ms after it was up ` +
      `(${opsInCatchUp} operations meanwhile); ${promoted} datums promoted at ${promotionSeconds > 0 ? Math.round(promoted / promotionSeconds) : "-"}/s, ` +
      `${promotedWhileDeleting} of them while every 7th bulk datum was being deleted; final: ${pg.size} on Postgres, ${sqlite.size} on SQLite, ${expected} expected; ` +
      `phases: before ${s(at.stopped - at.start)}, outage ${s(at.started - at.stopped)}, after ${s(at.stopping - at.started)}, settling ${s(at.settled - at.stopping)}, checking ${s(Date.now() - at.settled)}; ` +
      `lost ${lost.length}, resurrected ${resurrected.length}, on two tiers ${duplicated.length}, altered ${altered.length}, unaccounted ${unaccounted.length}, wrong delete answers ${ledger.wrong.length}\n`,
  );

  const explain = (ids: readonly string[]) =>
    ids.slice(0, 8).map((id) => {
      const found = pg.get(id) ?? sqlite.get(id);
      const where = `${pg.has(id) ? "on Postgres" : ""}${sqlite.has(id) ? " on SQLite" : ""}${found ? ` (${JSON.stringify(contentText(found))})` : ""}`;
      return `${id}: ${(ledger.history.get(id) ?? ["no operation recorded"]).join(" → ")}; ${where || "on neither tier"}`;
    });
  for (const [what, ids] of Object.entries({ lost, resurrected, duplicated, altered, unaccounted })) {
    if (ids.length > 0) process.stdout.write(`${what}:\n  ${explain(ids).join("\n  ")}\n`);
  }
  expect(ledger.wrong).toEqual([]);
  expect({ lost, resurrected, duplicated, altered, unaccounted }).toEqual({ lost: [], resurrected: [], duplicated: [], altered: [], unaccounted: [] });
  expect(sqlite.size).toBe(0); // everything is back on Postgres
  expect(reopened.listed).toBe(reopened.distinct);
  // The runs really overlapped: the outage saw the child's work, the restore saw deletes during promotion.
  expect(child.state.acknowledgedInOutage).toBeGreaterThanOrEqual(SIZE.child);
  expect(ledger.unknown).toBeGreaterThan(0);
  expect(journaled).toBeGreaterThan(0);
  expect(promotedWhileDeleting).toBeGreaterThan(0);
}

describe("the lattice through Postgres outages (fault injection)", () => {
  it("pg_ctl stop -m fast: 0 lost, 0 resurrected, 0 duplicated, every delete's answer true", () => scenario("fast"), 900_000);
  it("pg_ctl stop -m immediate: 0 lost, 0 resurrected, 0 duplicated, every delete's answer true", () => scenario("immediate"), 900_000);
});
