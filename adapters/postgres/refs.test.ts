/**
 * Refs and transactions on the Postgres tiers, against real clusters from test/harness/postgres.ts:
 * the kit's ref and transaction suites, the reflog's bound, seed 001's test 3 across processes
 * (N processes × M compare-and-set increments of one counter), writers killed with SIGKILL inside
 * transactions, and a cluster crashed (`pg_ctl stop -m immediate`, fsync on) while refs move.
 *
 * Child processes import the built package (`dist/`): run `npx tsc -p tsconfig.json` first.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { isDgentError } from "../../core/errors.js";
import { REFLOG_LIMIT, type Ref, type RefMove } from "../../core/refs.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { Scope, type Suite } from "../../testing/support.js";
import { refsSuite, transactionsSuite } from "../../testing/suites/refs.js";
import type { ConformanceTarget, Target } from "../../testing/types.js";
import { POSTGRES_DOCKER, POSTGRES_KIND, postgresAdapter, type PostgresAdapter, type PostgresOptions } from "./index.js";
import { migrate, MIGRATIONS } from "./migrations.js";
import { identifiers } from "./sql.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let server: PostgresServer;
const schemas: string[] = [];
const schema = (label: string): string => {
  const name = freshSchema(label);
  schemas.push(name);
  return name;
};
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
});
afterAll(async () => {
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

/** `"schema"."data_reflog"` and friends, for reading what the tier stored. */
const table = (namespace: string, name: string) => `${pg.escapeIdentifier(namespace)}.${pg.escapeIdentifier(name)}`;

for (const kind of ["docker", "kind"] as const) {
  describe(`postgres-${kind}: the kit's refs and transactions suites`, () => {
    // The kind profile runs over TLS with the certificate checked (the harness's cluster has one).
    const options = (): PostgresOptions => ({
      url: server.url,
      ...(kind === "kind"
        ? { profile: POSTGRES_KIND, tls: server.certificate ? { mode: "verify-full", ca: server.certificate } : server.tls ? "require" : "off" }
        : {}),
    });
    const schemaOf = (instance: Target) => (instance as PostgresAdapter).schema;
    const target: ConformanceTarget = {
      name: `postgres-${kind}`,
      create: () => postgresAdapter({ ...options(), namespace: freshSchema(`refs_${kind}`) }),
      reopen: (previous) => postgresAdapter({ ...options(), namespace: schemaOf(previous) }),
      destroy: (instance) => dropSchema(server, schemaOf(instance)),
    };
    const suite: Suite = {
      fw: { describe, it, beforeAll, afterAll } as never,
      target,
      options: {} as never,
      test(name, body) {
        it(name, async () => {
          const scope = new Scope(target);
          try {
            await body(scope);
          } finally {
            await scope.dispose();
          }
        });
      },
    };
    refsSuite(suite);
    transactionsSuite(suite);
  });
}

describe("postgres: the reflog from schema version 5", () => {
  it(`a table written by version 5 keeps the newest ${REFLOG_LIMIT + 1} reflog rows of each ref, and its refs move on from them`, async () => {
    const namespace = schema("reflog_v5");
    const ids = identifiers(namespace, "data");
    const pool = new pg.Pool({ connectionString: server.url, max: 1 });
    try {
      expect(await migrate(pool, ids, "data", namespace, POSTGRES_DOCKER, MIGRATIONS.slice(0, 5))).toEqual({ version: 5, applied: [1, 2, 3, 4, 5] });
      // As version 5 wrote them: "busy" moved 250 times (its newest 101 rows kept), "gone" created,
      // moved and deleted (a tombstone), with more rows than the bound (as a manual copy could leave).
      await pool.query(`INSERT INTO ${ids.refs} (name, target, version, updated_at, log_seq) VALUES ('busy', 't/250', 250, 1250, 250), ('gone', NULL, 129, 2130, 130)`);
      await pool.query(
        `INSERT INTO ${ids.reflog} (name, seq, to_target, version, at, moved_by)
         SELECT 'busy', s, 't/' || s, s, 1000 + s, 'old' FROM generate_series(150, 250) AS s
         UNION ALL SELECT 'gone', s, CASE WHEN s = 130 THEN NULL ELSE 'g/' || s END, CASE WHEN s = 130 THEN 129 ELSE s END, 2000 + s, 'old' FROM generate_series(1, 130) AS s`,
      );
    } finally {
      await pool.end();
    }
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, listen: false })], actor: "new" });
    try {
      const busy = await store.refs.log("busy");
      expect(busy.map((e) => [e.from, e.to, e.version, e.at, e.by])).toEqual(Array.from({ length: REFLOG_LIMIT }, (_, i) => [`t/${249 - i}`, `t/${250 - i}`, 250 - i, 1250 - i, "old"]));
      const gone = await store.refs.log("gone");
      expect(gone.map((e) => e.version)).toEqual([129, ...Array.from({ length: REFLOG_LIMIT - 1 }, (_, i) => 129 - i)]);
      expect(gone[0]).toMatchObject({ from: "g/129", to: null });
      expect(gone.at(-1)).toMatchObject({ from: "g/30", to: "g/31", version: 31 });
      const d = makeDatum({ content: "after" });
      await store.put(d);
      expect((await store.refs.set("busy", d.id, { expect: { version: 250 } })).version).toBe(251);
      expect((await store.refs.set("gone", d.id, { expect: { absent: true } })).version).toBe(1);
      const busyNow = await store.refs.log("busy");
      expect(busyNow.map((e) => e.version)).toEqual(Array.from({ length: REFLOG_LIMIT }, (_, i) => 251 - i));
      expect(busyNow[0]).toMatchObject({ from: "t/250", to: d.id, by: "new" });
      expect((await store.refs.log("gone", 2)).map((e) => [e.from, e.to, e.version])).toEqual([
        [null, d.id, 1],
        ["g/129", null, 129],
      ]);
    } finally {
      await store.close();
    }
    const rows = await server.query(
      `SELECT name, count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last, count(*) FILTER (WHERE slot <> seq % ${REFLOG_LIMIT + 1})::int AS misplaced FROM ${table(namespace, "data_reflog")} GROUP BY name ORDER BY name`,
    );
    expect(rows.rows).toEqual([
      { name: "busy", n: REFLOG_LIMIT + 1, first: 151, last: 251, misplaced: 0 },
      { name: "gone", n: REFLOG_LIMIT + 1, first: 31, last: 131, misplaced: 0 },
    ]);
  });
});

describe("postgres: the reflog", () => {
  it(`keeps the newest ${REFLOG_LIMIT} moves of each ref, in the table too, and refs and reflogs survive reopening`, async () => {
    const namespace = schema("reflog");
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, listen: false })], actor: "mover" });
    const d = makeDatum({ content: "target" });
    await store.put(d);
    const moves = 2 * REFLOG_LIMIT + 50;
    let ref: Ref | null = null;
    for (let i = 0; i < moves; i++) ref = await store.refs.set("busy", d.id, ref === null ? { expect: { absent: true } } : { expect: { version: ref.version } });
    await store.refs.set("quiet", d.id);
    const log = await store.refs.log("busy");
    expect(log.map((e) => e.version)).toEqual(Array.from({ length: REFLOG_LIMIT }, (_, i) => moves - i));
    expect(log.every((e) => e.by === "mover" && e.name === "busy")).toBe(true);
    await store.close();
    const counts = await server.query<{ name: string; n: number }>(`SELECT name, count(*)::int AS n FROM ${table(namespace, "data_reflog")} GROUP BY name ORDER BY name`);
    // One row more than the limit: the oldest says where the oldest shown came from.
    expect(counts.rows).toEqual([
      { name: "busy", n: REFLOG_LIMIT + 1 },
      { name: "quiet", n: 1 },
    ]);
    expect(log[REFLOG_LIMIT - 1]).toMatchObject({ from: d.id, to: d.id, version: moves - REFLOG_LIMIT + 1 });
    // A ring: move `seq` in slot seq % (limit + 1), the newest moves, the ref's log_seq the newest.
    const ring = await server.query(
      `SELECT name, min(seq)::int AS first, max(seq)::int AS last, count(*) FILTER (WHERE slot <> seq % ${REFLOG_LIMIT + 1})::int AS misplaced FROM ${table(namespace, "data_reflog")} GROUP BY name ORDER BY name`,
    );
    expect(ring.rows).toEqual([
      { name: "busy", first: moves - REFLOG_LIMIT, last: moves, misplaced: 0 },
      { name: "quiet", first: 1, last: 1, misplaced: 0 },
    ]);
    const again = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, listen: false })] });
    expect(await again.refs.get("busy")).toEqual(ref);
    expect(await again.refs.log("busy")).toEqual(log);
    expect(await again.refs.delete("busy", { expect: { version: moves } })).toBe(true);
    expect((await again.refs.set("busy", d.id, { expect: { absent: true } })).version).toBe(1);
    expect((await again.refs.log("busy", 3)).map((e) => [e.from, e.to, e.version])).toEqual([
      [null, d.id, 1],
      [d.id, null, moves],
      [d.id, d.id, moves],
    ]);
    await again.close();
  });

  it("a ref move is one statement (one round trip), a refused one two (then a read says why); refs list by name in code point order", async () => {
    const namespace = schema("one_statement");
    const adapter = postgresAdapter({ url: server.url, namespace, listen: false });
    await adapter.open();
    const move: RefMove = { by: "t", at: 1 };
    await adapter.setRef("a", "x", { absent: true }, move);
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    let statements = 0;
    proto.query = function (this: unknown, ...args: unknown[]) {
      statements++;
      return original.apply(this, args);
    };
    try {
      await adapter.setRef("a", "y", { version: 1 }, move);
      await adapter.setRef("a", "z", { target: "y" }, move);
      await adapter.setRef("a", "w", undefined, move);
      await expect(adapter.setRef("a", "v", { version: 1 }, move)).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT", details: { actual: { version: 4, target: "w" } } });
      await adapter.deleteRef("a", { version: 4 }, move);
    } finally {
      proto.query = original;
    }
    expect(statements).toBe(6);
    for (const name of ["p/\u{10000}", "p/\uffff", "p/b", "p/a", "q", "p"]) await adapter.setRef(name, "x", undefined, move);
    expect((await adapter.listRefs("p/")).map((r) => r.name)).toEqual(["p/a", "p/b", "p/\uffff", "p/\u{10000}"]);
    expect((await adapter.listRefs("p/\ud800")).map((r) => r.name)).toEqual(["p/\u{10000}"]);
    await adapter.close();
  });
});

/**
 * What a child does, through the built package and a store over the postgres tier:
 * - `count`: opens, prints `ready`, then for each `go` line on stdin increments the counter ref
 *   `cfg.name` once with `store.refs.update` (a datum holding the next value, its parent the
 *   previous value, its metadata the child's actor) and prints `ack <round>`; after
 *   `cfg.increments` rounds it prints `done`.
 * - `tx`: commits 3-operation transactions forever: puts of `tx/<i>/a` and `tx/<i>/b`, and a
 *   move of `tx/head` to `tx/<i>/b` expecting version i (absence for the first). Prints
 *   `begin <i>` before each commit and `ack <i>` after it.
 */
const PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_REFS_CHILD);
const { createStore, makeDatum } = await import("dgent");
const { postgresAdapter } = await import("dgent/adapters/postgres");
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const store = createStore({ tiers: [postgresAdapter({ listen: false, ...cfg.args })], actor: cfg.actor });
await store.open();
if (cfg.mode === "count") {
  const { createInterface } = await import("node:readline");
  const lines = createInterface({ input: process.stdin });
  // Lockstep rounds: each "go" asks for one increment, so every round has all processes racing.
  const gos = [];
  const waiting = [];
  lines.on("line", (line) => {
    if (line !== "go") return;
    const w = waiting.shift();
    if (w) w();
    else gos.push(1);
  });
  const nextGo = () => (gos.length > 0 ? (gos.shift(), Promise.resolve()) : new Promise((resolve) => waiting.push(resolve)));
  await out("ready");
  for (let i = 0; i < cfg.increments; i++) {
    await nextGo();
    await store.refs.update(
      cfg.name,
      ({ datum }) => {
        const n = datum === null ? 0 : Number(Buffer.from(datum.content).toString());
        return makeDatum({ content: String(n + 1), causalParent: datum?.id ?? null, metadata: { by: cfg.actor } });
      },
      { attempts: 100000, backoffMs: { min: 0, max: 4 } },
    );
    await out("ack " + i);
  }
  lines.close();
  await store.close();
  await out("done");
} else {
  const content = Buffer.alloc(cfg.bytes, 7);
  const head = await store.refs.get("tx/head");
  for (let i = head === null ? 0 : head.version; ; i++) {
    const a = makeDatum({ id: "tx/" + i + "/a", content, metadata: { i: String(i) } });
    const b = makeDatum({ id: "tx/" + i + "/b", content, causalParent: a.id, metadata: { i: String(i) } });
    await out("begin " + i);
    await store.transaction([
      { op: "put", datum: a },
      { op: "put", datum: b },
      { op: "setRef", name: "tx/head", target: b.id, expect: i === 0 ? { absent: true } : { version: i } },
    ]);
    await out("ack " + i);
  }
}
`;

interface Child {
  readonly lines: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | string>;
  until(predicate: (lines: readonly string[]) => boolean): Promise<void>;
  send(line: string): void;
  kill(): void;
}

function child(cfg: Record<string, unknown>): Child {
  const env = { ...process.env, DGENT_REFS_CHILD: JSON.stringify(cfg) };
  const proc = spawn(process.execPath, ["--input-type=module", "-e", PROGRAM], { env, cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  proc.stdin.on("error", () => undefined);
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  createInterface({ input: proc.stdout }).on("line", (line) => {
    lines.push(line);
    wake();
  });
  proc.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => {
      resolve(code ?? signal ?? -1);
      wake();
    }),
  );
  const until = (predicate: (lines: readonly string[]) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(lines)) resolve();
        else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`child exited early: ${stderr.join("")}`));
        else waiters.push(check);
      };
      check();
    });
  return { lines, stderr, exited, until, send: (line) => proc.stdin.write(`${line}\n`), kill: () => proc.kill("SIGKILL") };
}

/** Polls `check` until it returns true; fails after `timeoutMs` with `what`. */
async function poll(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("postgres: racing moves of one ref", () => {
  it("unconditional sets, creates, deletes and compare-and-sets racing on one ref leave a reflog where each move continues the one before", { timeout: 300_000 }, async () => {
    const namespace = schema("race");
    const adapter = postgresAdapter({ url: server.url, namespace, listen: false, poolSize: 8 });
    await adapter.open();
    const outcomes = { moved: 0, refused: 0 };
    const worker = async (w: number) => {
      for (let i = 0; i < 60; i++) {
        const move: RefMove = { by: `w${w}`, at: i };
        const kind = (i + w) % 5;
        try {
          if (kind === 0) await adapter.deleteRef("hot", undefined, move);
          else if (kind === 1) await adapter.setRef("hot", `w${w}-${i}`, { absent: true }, move);
          else if (kind === 2) {
            const ref = await adapter.getRef("hot");
            if (ref !== null) await adapter.setRef("hot", `w${w}-${i}`, { version: ref.version }, move);
          } else if (kind === 3) await adapter.commit([{ op: "setRef", name: "hot", target: `w${w}-${i}` }], move);
          else await adapter.setRef("hot", `w${w}-${i}`, undefined, move);
          outcomes.moved++;
        } catch (error) {
          if (!isDgentError(error, "DGENT_REF_CONFLICT")) throw error;
          outcomes.refused++;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    const rows = (await server.query<{ seq: number; to_target: string | null; version: number; moved_by: string }>(
      `SELECT seq::int AS seq, to_target, version::int AS version, moved_by FROM ${table(namespace, "data_reflog")} WHERE name = 'hot' ORDER BY seq`,
    )).rows;
    const moves = rows.at(-1)?.seq ?? 0;
    expect(rows.length).toBe(Math.min(REFLOG_LIMIT + 1, moves));
    for (let i = 1; i < rows.length; i++) {
      const [before, after] = [rows[i - 1], rows[i]] as [(typeof rows)[number], (typeof rows)[number]];
      expect(after.seq, "each move of the ref numbered once, none missing").toBe(before.seq + 1);
      // A move continues the version; a delete keeps it; a creation after a delete starts at 1.
      expect(after.version).toBe(before.to_target === null ? 1 : after.to_target === null ? before.version : before.version + 1);
    }
    const last = rows.at(-1);
    const ref = await adapter.getRef("hot");
    expect(ref === null ? null : { to_target: ref.target, version: ref.version }).toEqual(last?.to_target === null ? null : { to_target: last?.to_target, version: last?.version });
    // Through the adapter: each entry comes from where the one before it went.
    const log = await adapter.reflog("hot", REFLOG_LIMIT);
    expect(log.length).toBe(Math.min(REFLOG_LIMIT, moves));
    for (let i = 0; i + 1 < log.length; i++) expect(log[i]?.from, `entry ${i}`).toBe(log[i + 1]?.to);
    expect(log.map((e) => [e.to, e.version, e.by])).toEqual(rows.slice(-log.length).reverse().map((row) => [row.to_target, row.version, row.moved_by]));
    expect(outcomes.moved).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(0);
    await adapter.close();
  });
});

describe("postgres: several processes", () => {
  it("N processes × M compare-and-set increments of one counter end at exactly N×M, interleaved (seed 001, test 3)", { timeout: 300_000 }, async () => {
    const N = 4;
    const M = 50;
    const namespace = schema("counter");
    const args = { url: server.url, namespace };
    // Create the schema once, so the children race on the counter rather than on the migration.
    const setup = postgresAdapter({ ...args, listen: false });
    await setup.open();
    await setup.close();
    const kids = Array.from({ length: N }, (_, k) => child({ mode: "count", args, actor: `counter-${k}`, name: "counter", increments: M }));
    try {
      await Promise.all(kids.map((k) => k.until((lines) => lines.includes("ready"))));
      // Lockstep: round r starts only when every process has acknowledged round r − 1, so all
      // N processes race for every one of the M rounds (no clock decides the interleaving).
      for (let r = 0; r < M; r++) {
        for (const k of kids) k.send("go");
        await Promise.all(kids.map((k) => k.until((lines) => lines.includes(`ack ${r}`))));
      }
      const codes = await Promise.all(kids.map((k) => k.exited));
      expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(N).fill(0));
    } finally {
      for (const k of kids) k.kill();
    }
    expect(kids.map((k) => k.lines.filter((l) => l.startsWith("ack ")).length)).toEqual(Array(N).fill(M));

    const adapter = postgresAdapter({ ...args, listen: false });
    const store = createStore({ tiers: [adapter] });
    const ref = (await store.refs.get("counter")) as Ref;
    expect(ref.version).toBe(N * M);
    // One datum per increment, each the parent of the next: 1 … N×M in order, and nothing else
    // was stored (an attempt that lost the race left no datum behind).
    const chain = await adapter.causalChain(ref.target, 10 * N * M);
    expect(chain.map((d) => Buffer.from(d.content).toString())).toEqual(Array.from({ length: N * M }, (_, i) => String(i + 1)));
    expect((await adapter.stats()).count).toBe(N * M);
    const by = chain.map((d) => d.metadata.by as string);
    for (let k = 0; k < N; k++) expect(by.filter((b) => b === `counter-${k}`).length).toBe(M);
    // Every round holds one increment from each process: the chain interleaves all N, M times over.
    const actors = Array.from({ length: N }, (_, k) => `counter-${k}`);
    for (let r = 0; r < M; r++) expect(by.slice(r * N, (r + 1) * N).sort(), `round ${r}`).toEqual(actors);
    const log = await store.refs.log("counter");
    expect(log[0]?.version).toBe(N * M);
    expect(new Set(log.map((e) => e.by)).size, "the reflog names the processes that moved the counter").toBeGreaterThan(1);
    await store.close();
  });

  /** Reads the state a `tx` child leaves and checks that every transaction is all there or absent. */
  async function checkTransactions(namespace: string): Promise<number> {
    const head = (await server.query<{ target: string; version: number }>(`SELECT target, version::int AS version FROM ${table(namespace, "data_refs")} WHERE name = 'tx/head'`)).rows[0];
    const v = head?.version ?? 0;
    const ids = (await server.query<{ id: string }>(`SELECT id FROM ${table(namespace, "data")} ORDER BY id`)).rows.map((r) => r.id);
    const expected = Array.from({ length: v }, (_, i) => [`tx/${i}/a`, `tx/${i}/b`]).flat().sort();
    expect(ids, `transactions 0 … ${v - 1} entirely, nothing of a later one`).toEqual(expected);
    if (v > 0) expect(head?.target).toBe(`tx/${v - 1}/b`);
    const newest = (await server.query<{ to_target: string; version: number }>(
      `SELECT to_target, version::int AS version FROM ${table(namespace, "data_reflog")} WHERE name = 'tx/head' ORDER BY seq DESC LIMIT 1`,
    )).rows[0];
    if (v > 0) expect(newest).toEqual({ to_target: head?.target, version: v });
    return v;
  }

  it("a writer killed with SIGKILL inside a transaction leaves it entirely absent: held inside by a lock, and at random", { timeout: 300_000 }, async () => {
    const namespace = schema("killed");
    const args = { url: server.url, namespace };

    // 1. Provably inside: the child has put two datums and waits for the ref's row lock, which this test holds.
    const first = child({ mode: "tx", args: { ...args, applicationName: "dgent-refs-killed" }, actor: "killed", bytes: 1024 });
    await first.until((lines) => lines.includes("ack 5"));
    const holder = new pg.Client({ connectionString: server.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM ${table(namespace, "data_refs")} WHERE name = 'tx/head' FOR UPDATE`);
      const waiting = async () =>
        (await server.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'dgent-refs-killed' AND wait_event_type = 'Lock'`)).rowCount === 1;
      await poll("the child's commit to wait for the ref's row lock", waiting);
      const pending = first.lines.filter((l) => l.startsWith("begin ")).length - 1;
      // Its puts are written, uncommitted, inside the transaction.
      const inside = await server.query(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE a.application_name = 'dgent-refs-killed' AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted`,
      );
      expect(inside.rows[0]).toEqual({ n: 1 });
      first.kill();
      expect(await first.exited).toBe("SIGKILL");
      await holder.query("ROLLBACK");
      await poll("the killed child's session to end", async () => (await server.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'dgent-refs-killed'`)).rowCount === 0);
      expect(await checkTransactions(namespace)).toBe(pending);
    } finally {
      await holder.end();
    }

    // 2. At random moments: kill right after a `begin`, several times, each time checking all or nothing.
    let committed = await checkTransactions(namespace);
    for (let round = 0; round < 4; round++) {
      const app = `dgent-refs-round-${round}`;
      const kid = child({ mode: "tx", args: { ...args, applicationName: app }, actor: `tx-${round}`, bytes: 64 * 1024 });
      const target = committed + 10 + round * 3;
      await kid.until((lines) => lines.includes(`begin ${target}`));
      kid.kill();
      expect(await kid.exited).toBe("SIGKILL");
      const acked = kid.lines.filter((l) => l.startsWith("ack ")).map((l) => Number(l.slice(4)));
      const begun = kid.lines.filter((l) => l.startsWith("begin ")).map((l) => Number(l.slice(6)));
      // Wait until the server has noticed the session is gone (it may still commit what it had).
      await poll("the killed child's session to end", async () => (await server.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [app])).rowCount === 0);
      const v = await checkTransactions(namespace);
      expect(v, "no acknowledged transaction is lost").toBeGreaterThanOrEqual((acked[acked.length - 1] as number) + 1);
      expect(v, "nothing beyond the transaction in flight").toBeLessThanOrEqual((begun[begun.length - 1] as number) + 1);
      committed = v;
    }
  });
});

describe("postgres with fsync on, crashed by pg_ctl stop -m immediate while refs move", () => {
  let durable: PostgresServer;
  beforeAll(async () => {
    durable = await startPostgres({ durable: true });
  });
  afterAll(async () => {
    await durable?.close();
  });

  it("loses no acknowledged move or transaction; nothing is half-applied; each reflog matches its ref", { timeout: 300_000 }, async () => {
    const namespace = freshSchema("refs_crash");
    const WRITERS = 6;
    const adapter = postgresAdapter({ url: durable.url, namespace, listen: false, connectTimeoutMs: 2_000, poolSize: WRITERS + 1 });
    await adapter.open();
    const move: RefMove = { by: "crash", at: 0 };
    /** The highest version acknowledged per ref, and moves in flight when the crash came. */
    const acked = new Map<string, number>();
    let inFlight = 0;
    let failedByCrash = 0;
    let total = 0;
    let stop = false;
    let reached!: () => void;
    const enough = new Promise<void>((resolve) => (reached = resolve));
    const ack = (name: string, version: number) => {
      acked.set(name, Math.max(acked.get(name) ?? 0, version));
      if (++total >= 400) reached();
    };
    // Writers 0–2: a transaction per move of their own ref (put a datum, move the ref to it).
    // Writers 3–4: the same on one shared ref, read-modify-write, retried on conflict.
    // Writer 5: single-statement compare-and-set of its own ref, no datum.
    const writer = async (w: number): Promise<void> => {
      const name = w < 3 ? `own/${w}` : w < 5 ? "shared" : "plain";
      let n = 0;
      while (!stop) {
        inFlight++;
        try {
          if (w === 5) {
            const ref = await adapter.setRef(name, `target-${n}`, n === 0 ? { absent: true } : { version: n }, { ...move, at: n });
            ack(name, ref.version);
          } else {
            const current = w < 3 ? (n === 0 ? null : n) : ((await adapter.getRef(name))?.version ?? null);
            const version = (current ?? 0) + 1;
            const d = makeDatum({ id: `${name}/${version}`, content: `move ${version} of ${name} by ${w}`, metadata: { ref: name, version: String(version) } });
            try {
              const r = await adapter.commit([{ op: "put", datum: d }, { op: "setRef", name, target: d.id, expect: current === null ? { absent: true } : { version: current } }], move);
              ack(name, (r.results[1] as { ref: Ref }).ref.version);
            } catch (error) {
              // Another writer of the shared ref moved it first: the transaction left nothing; try again.
              if (!(isDgentError(error, "DGENT_REF_CONFLICT") || isDgentError(error, "DGENT_CONFLICT")) || w < 3) throw error;
              continue;
            }
          }
          n++;
        } catch {
          failedByCrash++;
          return; // the server went away: this writer's last move is in doubt, nothing after it
        } finally {
          inFlight--;
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    await enough;
    const inFlightAtCrash = inFlight;
    await durable.crash();
    stop = true;
    await Promise.all(writers);
    await adapter.close().catch(() => undefined);
    await durable.start(); // crash recovery: replays the WAL

    const refs = new Map(
      (await durable.query<{ name: string; target: string; version: number }>(`SELECT name, target, version::int AS version FROM ${table(namespace, "data_refs")} WHERE target IS NOT NULL`)).rows.map((r) => [r.name, r]),
    );
    const datums = (await durable.query<{ id: string; metadata: Record<string, string> }>(`SELECT id, metadata FROM ${table(namespace, "data")}`)).rows;
    expect([...refs.keys()].sort()).toEqual(["own/0", "own/1", "own/2", "plain", "shared"]);
    for (const [name, ref] of refs) {
      const ackedVersion = acked.get(name) ?? 0;
      const writersOf = name === "shared" ? 2 : 1;
      // No acknowledged move lost; at most the moves in flight went through besides.
      expect(ref.version, name).toBeGreaterThanOrEqual(ackedVersion);
      expect(ref.version, name).toBeLessThanOrEqual(ackedVersion + writersOf);
      if (name !== "plain") {
        // Each committed transaction put exactly one datum and moved the ref once: the datums of
        // the ref are versions 1 … its version, and the ref points at the newest.
        const mine = datums.filter((d) => d.metadata.ref === name).map((d) => Number(d.metadata.version)).sort((a, b) => a - b);
        expect(mine, `${name}: one datum per committed move, none of a transaction that did not commit`).toEqual(Array.from({ length: ref.version }, (_, i) => i + 1));
        expect(ref.target).toBe(`${name}/${ref.version}`);
      }
      // The reflog holds the ref's moves, newest first, each continuing the one before: no move
      // went without its reflog row or the other way round.
      const log = (await durable.query<{ seq: number; to_target: string; version: number }>(
        `SELECT seq::int AS seq, to_target, version::int AS version FROM ${table(namespace, "data_reflog")} WHERE name = $1 ORDER BY seq DESC`,
        [name],
      )).rows;
      expect(log.length).toBe(Math.min(ref.version, REFLOG_LIMIT + 1));
      expect(log[0]).toMatchObject({ seq: ref.version, to_target: ref.target, version: ref.version });
      for (let i = 0; i + 1 < log.length; i++) {
        expect(log[i]?.seq).toBe((log[i + 1]?.seq as number) + 1);
        expect(log[i]?.version).toBe((log[i + 1]?.version as number) + 1);
      }
    }
    // The crash really hit moves in flight, and the run moved what it claims.
    expect(inFlightAtCrash).toBeGreaterThan(0);
    expect(failedByCrash).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(400);
    await dropSchema(durable, namespace);
  });
});
