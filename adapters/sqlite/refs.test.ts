/**
 * Refs and transactions on the sqlite tier: the kit's ref and transaction suites, the reflog's
 * bound and persistence, seed 001's test 3 across processes (N processes × M compare-and-set
 * increments of one counter), and writers killed with SIGKILL inside transactions.
 *
 * Child processes import the built package (`dist/`): run `npx tsc -p tsconfig.json` after
 * changing the adapter (the test refuses a stale build).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { REFLOG_LIMIT, type Ref } from "../../core/refs.js";
import { createStore } from "../../core/store.js";
import { writesWhileAllWrote } from "../../testing/child.js";
import { Scope, type Suite } from "../../testing/support.js";
import { refsSuite, transactionsSuite } from "../../testing/suites/refs.js";
import type { ConformanceTarget } from "../../testing/types.js";
import { fileAtSchema } from "../../test/harness/sqlite-schema.js";
import { sqliteAdapter } from "./index.js";
import { REFLOG_CHUNK, REFLOG_CHUNKS } from "./sql.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-refs-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

describe("sqlite: the kit's refs and transactions suites", () => {
  let dir: string;
  let n = 0;
  beforeAll(() => {
    dir = tempDir();
  });
  const target: ConformanceTarget = {
    name: "sqlite",
    create: () => sqliteAdapter({ path: join(dir, `kit-${n++}.db`) }),
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

describe("sqlite: the reflog", () => {
  it(`keeps the newest ${REFLOG_LIMIT} moves of each ref, on disk too, and refs and reflogs survive reopening`, async () => {
    const path = join(tempDir(), "reflog.db");
    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: "mover" });
    const d = makeDatum({ content: "target" });
    await store.put(d);
    const moves = 2 * REFLOG_LIMIT + 50;
    let ref: Ref | null = null;
    for (let i = 0; i < moves; i++) ref = await store.refs.set("busy", d.id, ref === null ? { expect: { absent: true } } : { expect: { version: ref.version } });
    await store.refs.set("quiet", d.id);
    const log = await store.refs.log("busy");
    expect(log.map((e) => e.version)).toEqual(Array.from({ length: REFLOG_LIMIT }, (_, i) => moves - i));
    expect(log.every((e) => e.by === "mover" && e.name === "busy")).toBe(true);
    expect((await store.refs.log("quiet")).map((e) => [e.from, e.to, e.version])).toEqual([[null, d.id, 1]]);
    await store.close();

    // On disk: the moves since the last full chunk in the ref's row, full chunks in a ring of
    // REFLOG_CHUNKS rows per ref (slot = chunk mod REFLOG_CHUNKS), together the newest moves.
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT name, log_seq FROM refs ORDER BY name").all()).toEqual([
      { name: "busy", log_seq: moves },
      { name: "quiet", log_seq: 1 },
    ]);
    const held = (raw.prepare("SELECT recent FROM refs WHERE name = 'busy'").pluck().get() as string).match(/\[/g)?.length;
    expect(held).toBe(((moves - 1) % REFLOG_CHUNK) + 1);
    const chunks = raw.prepare("SELECT slot, chunk, last_seq FROM reflog WHERE name = 'busy' ORDER BY chunk").all() as { slot: number; chunk: number; last_seq: number }[];
    expect(chunks.length).toBe(REFLOG_CHUNKS);
    expect(chunks.every((c) => c.slot === c.chunk % REFLOG_CHUNKS && c.last_seq === (c.chunk + 1) * REFLOG_CHUNK)).toBe(true);
    expect(chunks.at(-1)?.last_seq).toBe(moves - (held as number));
    expect(raw.prepare("SELECT count(*) FROM reflog WHERE name = 'quiet'").pluck().get()).toBe(0);
    raw.close();

    const again = createStore({ tiers: [sqliteAdapter({ path })] });
    expect(await again.refs.get("busy")).toEqual(ref);
    expect(await again.refs.log("busy")).toEqual(log);
    expect((await again.refs.list()).map((r) => r.name)).toEqual(["busy", "quiet"]);
    // A deleted ref's reflog stays, and a re-created one continues it from version 1.
    expect(await again.refs.delete("busy", { expect: { version: moves } })).toBe(true);
    expect((await again.refs.set("busy", d.id, { expect: { absent: true } })).version).toBe(1);
    expect((await again.refs.log("busy", 3)).map((e) => [e.from, e.to, e.version])).toEqual([
      [null, d.id, 1],
      [d.id, null, moves],
      [d.id, d.id, moves],
    ]);
    await again.close();
  });
});

/** What the reflog must say after `moves` (newest first), as the kit's in-memory tier keeps it. */
type Move = { to: string | null; by: string };
function expectedLog(moves: readonly Move[]): [string | null, string | null, number, string][] {
  const out: [string | null, string | null, number, string][] = [];
  let target: string | null = null;
  let version = 0;
  for (const m of moves) {
    if (m.to === null) out.push([target, null, version, m.by]);
    else {
      version = target === null ? 1 : version + 1;
      out.push([target, m.to, version, m.by]);
    }
    target = m.to;
  }
  return out.reverse().slice(0, REFLOG_LIMIT);
}

describe("sqlite: the reflog across chunk boundaries", () => {
  const counts = [1, REFLOG_CHUNK - 1, REFLOG_CHUNK, REFLOG_CHUNK + 1, 2 * REFLOG_CHUNK, 2 * REFLOG_CHUNK + 1, REFLOG_LIMIT - 1, REFLOG_LIMIT, REFLOG_LIMIT + 1, REFLOG_LIMIT + REFLOG_CHUNK + 2, 3 * REFLOG_LIMIT + 5];
  it(`after 1, K − 1, K, K + 1, … ${Math.max(...counts)} moves (K = ${REFLOG_CHUNK}), by version or not, the reflog is exact at every limit, also after reopening`, async () => {
    const path = join(tempDir(), "chunks.db");
    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: "a" });
    const ds = Array.from({ length: 7 }, (_, i) => makeDatum({ content: `t${i}` }));
    for (const d of ds) await store.put(d);
    const made = new Map<string, Move[]>();
    for (const n of counts) {
      const name = `n/${n}`;
      const moves: Move[] = [];
      let ref: Ref | null = null;
      for (let i = 0; i < n; i++) {
        const to = (ds[i % ds.length] as { id: string }).id;
        // Every third move without a version expected: the transaction's way (update, not casVersion).
        ref = ref === null || i % 3 === 2 ? await store.refs.set(name, to) : await store.refs.set(name, to, { expect: { version: ref.version } });
        moves.push({ to, by: "a" });
      }
      expect(ref?.version).toBe(n);
      made.set(name, moves);
    }
    const check = async (s: typeof store) => {
      for (const [name, moves] of made) {
        const want = expectedLog(moves);
        const log = await s.refs.log(name);
        expect(log.map((e) => [e.from, e.to, e.version, e.by]), name).toEqual(want);
        for (const limit of [1, REFLOG_CHUNK - 1, REFLOG_CHUNK, REFLOG_CHUNK + 1, 50]) expect(await s.refs.log(name, limit), `${name} limit ${limit}`).toEqual(log.slice(0, limit));
      }
    };
    await check(store);
    await store.close();
    const again = createStore({ tiers: [sqliteAdapter({ path })], actor: "b" });
    await check(again);
    await again.close();
  });

  it("deletes and re-creations at every position of a chunk keep the reflog exact", async () => {
    const path = join(tempDir(), "deletes.db");
    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: "d" });
    const ds = Array.from({ length: 5 }, (_, i) => makeDatum({ content: `u${i}` }));
    for (const d of ds) await store.put(d);
    const moves: Move[] = [];
    let ref: Ref | null = null;
    let step = 0;
    // Runs of 1, 2, …, 2K + 1 moves, each ended by a delete (by version, or in a transaction).
    for (let run = 1; run <= 2 * REFLOG_CHUNK + 1; run++) {
      for (let i = 0; i < run; i++) {
        const to = (ds[step++ % ds.length] as { id: string }).id;
        ref = ref === null ? await store.refs.set("r", to, { expect: { absent: true } }) : await store.refs.set("r", to, { expect: { version: ref.version } });
        moves.push({ to, by: "d" });
      }
      if (run % 2 === 0) expect(await store.refs.delete("r", { expect: { version: (ref as Ref).version } })).toBe(true);
      else await store.transaction([{ op: "deleteRef", name: "r" }]);
      moves.push({ to: null, by: "d" });
      ref = null;
      const log = await store.refs.log("r");
      expect(log.map((e) => [e.from, e.to, e.version, e.by]), `after run ${run}`).toEqual(expectedLog(moves));
    }
    expect(moves.length).toBeGreaterThan(REFLOG_LIMIT);
    await store.close();
  });
});

describe("sqlite: the reflog from schema version 5", () => {
  it("a file written by version 5 (the ring of moves) keeps its reflogs exact, and its refs move on from them", async () => {
    const path = join(tempDir(), "v5.db");
    const old = fileAtSchema(path, 5);
    // Moves as version 5 made them: its triggers write the ring slot of every creation and move.
    const create = old.prepare("INSERT INTO refs (name, target, version, updated_at, log_seq, moved_by) VALUES (?, ?, 1, ?, coalesce((SELECT max(seq) FROM reflog WHERE name = ?), 0) + 1, 'old')");
    const move = old.prepare("UPDATE refs SET target = ?, version = version + 1, updated_at = ?, log_seq = log_seq + 1, moved_by = 'old' WHERE name = ?");
    const logDelete = old.prepare(`INSERT INTO reflog (name, slot, seq, from_target, to_target, version, at, moved_by) VALUES (?, ? % 100, ?, ?, NULL, ?, ?, 'old')
      ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, from_target = excluded.from_target, to_target = excluded.to_target, version = excluded.version, at = excluded.at, moved_by = excluded.moved_by`);
    const made = new Map<string, Move[]>();
    const history = (name: string, n: number, deleteAt: readonly number[]) => {
      const moves: Move[] = [];
      let live = false;
      let seq = 0;
      for (let i = 0; i < n; i++) {
        if (deleteAt.includes(i)) {
          const cur = old.prepare("SELECT target, version, log_seq FROM refs WHERE name = ?").get(name) as { target: string; version: number; log_seq: number };
          logDelete.run(name, cur.log_seq + 1, cur.log_seq + 1, cur.target, cur.version, 3000 + i);
          old.prepare("DELETE FROM refs WHERE name = ?").run(name);
          moves.push({ to: null, by: "old" });
          live = false;
        } else {
          const to = `${name}/${i}`;
          if (live) move.run(to, 3000 + i, name);
          else create.run(name, to, 3000 + i, name);
          live = true;
          moves.push({ to, by: "old" });
        }
        seq++;
      }
      made.set(name, moves);
      return seq;
    };
    history("wrapped", 257, [40, 200]);
    history("short", 4, []);
    history("deleted", 9, [8]);
    old.close();

    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: "new" });
    for (const [name, moves] of made) {
      const log = await store.refs.log(name);
      expect(log.map((e) => [e.from, e.to, e.version, e.by]), name).toEqual(expectedLog(moves));
    }
    expect((await store.refs.log("wrapped")).map((e) => e.at)).toEqual(Array.from({ length: REFLOG_LIMIT }, (_, i) => 3256 - i));
    // Moving on: past the next chunk boundaries, and a deleted ref re-created.
    const d = makeDatum({ content: "after" });
    await store.put(d);
    let wrapped = (await store.refs.get("wrapped")) as Ref;
    for (let i = 0; i < 2 * REFLOG_CHUNK + 1; i++) {
      wrapped = await store.refs.set("wrapped", d.id, { expect: { version: wrapped.version } });
      (made.get("wrapped") as Move[]).push({ to: d.id, by: "new" });
    }
    await store.refs.set("deleted", d.id, { expect: { absent: true } });
    (made.get("deleted") as Move[]).push({ to: d.id, by: "new" });
    await store.refs.delete("short");
    (made.get("short") as Move[]).push({ to: null, by: "new" });
    for (const [name, moves] of made) {
      const log = await store.refs.log(name);
      expect(log.map((e) => [e.from, e.to, e.version, e.by]), name).toEqual(expectedLog(moves));
    }
    await store.close();
  });
});

describe("sqlite: the reflog from schema version 4", () => {
  it(`a file written by version 4 keeps the newest ${REFLOG_LIMIT} moves of each ref, and its refs move on from them`, async () => {
    const path = join(tempDir(), "v4.db");
    const old = fileAtSchema(path, 4);
    // As version 4 wrote them: "busy" moved 250 times (its newest 100 kept), "gone" created, moved
    // and deleted, with more rows than the limit (as a version that trimmed later could leave).
    const log = old.prepare("INSERT INTO reflog (name, seq, from_target, to_target, version, at, moved_by) VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (let seq = 151; seq <= 250; seq++) log.run("busy", seq, `t/${seq - 1}`, `t/${seq}`, seq, 1000 + seq, "old");
    for (let seq = 1; seq <= 130; seq++) log.run("gone", seq, seq === 1 ? null : `g/${seq - 1}`, seq === 130 ? null : `g/${seq}`, seq === 130 ? 129 : seq, 2000 + seq, "old");
    old.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, ?, ?)").run("busy", "t/250", 250, 1250);
    old.close();

    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: "new" });
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
    await store.close();

    // On disk: the ring's moves in chunks by move number; "gone"'s are all there (no row holds any).
    const raw = new Database(path, { readonly: true });
    const numbers = (name: string) => {
      const texts = raw.prepare("SELECT moves FROM reflog WHERE name = ? ORDER BY chunk").pluck().all(name) as string[];
      return texts.flatMap((t) => (JSON.parse(`[${t.slice(1)}]`) as number[][]).map((m) => m[0]));
    };
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    expect(numbers("busy")).toEqual(range(151, 250));
    expect(numbers("gone")).toEqual(range(31, 130));
    // The moves made since live in the refs' rows: seq, to, version, at, by.
    const held = raw.prepare("SELECT name, recent FROM refs ORDER BY name").all() as { name: string; recent: string }[];
    expect(held.map((r) => [r.name, (JSON.parse(`[${r.recent.slice(1)}]`) as unknown[][]).map((m) => [m[0], m[1], m[2], m[4]])])).toEqual([
      ["busy", [[251, d.id, 251, "new"]]],
      ["gone", [[131, d.id, 1, "new"]]],
    ]);
    raw.close();
  });
});

/**
 * What a child does, through the built package and a store over the sqlite tier:
 * - `count`: opens, prints `ready`, then for each `go` line on stdin increments the counter ref
 *   `cfg.name` once with `store.refs.update` (a datum holding the next value, its parent the
 *   previous value, its metadata the child's actor), printing `ack <ns>` after each (the
 *   machine's monotonic clock, one clock for every process); after `cfg.increments`, `done`.
 * - `tx`: commits 3-operation transactions forever: two puts of large datums `tx/<i>/a` and
 *   `tx/<i>/b`, and a move of `tx/head` to `tx/<i>/b` expecting version i (absence for the
 *   first). Prints `begin <i>` before each commit and `ack <i>` after it.
 */
const PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_REFS_CHILD);
const { createStore, makeDatum } = await import("dgent");
const { sqliteAdapter } = await import("dgent/adapters/sqlite");
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const store = createStore({ tiers: [sqliteAdapter(cfg.args)], actor: cfg.actor });
await store.open();
if (cfg.mode === "count") {
  const { createInterface } = await import("node:readline");
  const lines = createInterface({ input: process.stdin });
  // One increment per "go" line: the parent releases every process at once for each round.
  let gos = 0;
  let wake = () => undefined;
  lines.on("line", (line) => {
    if (line === "go") {
      gos++;
      wake();
    }
  });
  const nextGo = (i) => new Promise((resolve) => {
    wake = () => gos > i && resolve();
    wake();
  });
  await out("ready");
  for (let i = 0; i < cfg.increments; i++) {
    await nextGo(i);
    await store.refs.update(
      cfg.name,
      ({ datum }) => {
        const n = datum === null ? 0 : Number(Buffer.from(datum.content).toString());
        return makeDatum({ content: String(n + 1), causalParent: datum?.id ?? null, metadata: { by: cfg.actor } });
      },
      { attempts: 100000, backoffMs: { min: 0, max: 4 } },
    );
    await out("ack " + process.hrtime.bigint());
  }
  lines.close();
  await store.close();
  await out("done");
} else {
  const big = Buffer.alloc(cfg.bytes, 7);
  const head = await store.refs.get("tx/head");
  for (let i = head === null ? 0 : head.version; ; i++) {
    const a = makeDatum({ id: "tx/" + i + "/a", content: big, metadata: { i: String(i) } });
    const b = makeDatum({ id: "tx/" + i + "/b", content: big, causalParent: a.id, metadata: { i: String(i) } });
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
  /** Resolves once `predicate` holds for the lines so far; rejects if the child exits first. */
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

describe("sqlite: several processes", () => {
  beforeAll(() => {
    // The children run the built package; refuse to test a stale build.
    const src = join(ROOT, "adapters", "sqlite");
    const built = join(ROOT, "dist", "adapters", "sqlite", "refs.js");
    const newest = Math.max(
      ...readdirSync(src)
        .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
        .map((f) => statSync(join(src, f)).mtimeMs),
    );
    let builtAt = 0;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      // missing: reported below
    }
    if (builtAt < newest) throw new Error("dist/ is older than adapters/sqlite: run `npx tsc -p tsconfig.json` first");
  });

  it("N processes × M compare-and-set increments of one counter end at exactly N×M, interleaved (seed 001, test 3)", { timeout: 300_000 }, async () => {
    const N = 4;
    const M = 60;
    const path = join(tempDir(), "counter.db");
    // A long busy timeout: a process waiting for the write lock must not fail for the machine's slowness.
    const args = { path, busyTimeoutMs: 600_000 };
    const kids = Array.from({ length: N }, (_, k) => child({ mode: "count", args, actor: `counter-${k}`, name: "counter", increments: M }));
    try {
      await Promise.all(kids.map((k) => k.until((lines) => lines.includes("ready"))));
      // Rounds behind a barrier: every process is released for one increment, and the next round
      // starts only when all N have acknowledged theirs. So the N increments of a round race one
      // another for the same version, whatever the scheduler does, and each round holds one
      // increment by every process.
      const acked = (lines: readonly string[]) => lines.filter((l) => l.startsWith("ack ")).length;
      for (let round = 0; round < M; round++) {
        for (const k of kids) k.send("go");
        await Promise.all(kids.map((k) => k.until((lines) => acked(lines) > round)));
      }
      const codes = await Promise.all(kids.map((k) => k.exited));
      expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(N).fill(0));
    } finally {
      for (const k of kids) k.kill();
    }
    const acks = kids.map((k) => k.lines.filter((l) => l.startsWith("ack ")).map((l) => BigInt(l.slice(4))));
    expect(acks.map((a) => a.length)).toEqual(Array(N).fill(M));

    const adapter = sqliteAdapter({ path });
    const store = createStore({ tiers: [adapter] });
    const ref = (await store.refs.get("counter")) as Ref;
    expect(ref.version).toBe(N * M);
    const top = await store.get(ref.target);
    expect(Buffer.from(top?.content ?? []).toString()).toBe(String(N * M));
    // Every increment is one datum whose parent is the value it incremented: the chain holds them
    // all, 1 to N×M in order, and nothing else was stored (a lost race left no datum behind).
    const chain = await adapter.causalChain(ref.target, 10 * N * M);
    expect(chain.map((d) => Buffer.from(d.content).toString())).toEqual(Array.from({ length: N * M }, (_, i) => String(i + 1)));
    expect((await adapter.stats()).count).toBe(N * M);
    const by = chain.map((d) => d.metadata.by as string);
    for (let k = 0; k < N; k++) expect(by.filter((b) => b === `counter-${k}`).length).toBe(M);
    // Each round of N consecutive values along the chain was made by the N processes, one each.
    for (let round = 0; round < M; round++) {
      expect(new Set(by.slice(round * N, (round + 1) * N)).size, `round ${round}: ${by.slice(round * N, (round + 1) * N).join(", ")}`).toBe(N);
    }
    // And every increment after the first round was made while every process was running.
    const overlap = writesWhileAllWrote(acks);
    expect(overlap.reduce((a, b) => a + b, 0), `increments made while all were incrementing: ${overlap.join(", ")}`).toBeGreaterThanOrEqual(N * (M - 1));
    const log = await store.refs.log("counter");
    expect(log.length).toBe(REFLOG_LIMIT);
    expect(log[0]?.version).toBe(N * M);
    expect(new Set(log.map((e) => e.by)).size, "the reflog names the processes that moved the counter").toBeGreaterThan(1);
    await store.close();
  });

  it("a writer killed with SIGKILL inside transactions leaves each one entirely there or entirely absent", { timeout: 300_000 }, async () => {
    const path = join(tempDir(), "killed.db");
    const rounds = 5;
    let inDoubt = 0;
    let committed = 0;
    for (let round = 0; round < rounds; round++) {
      const kid = child({ mode: "tx", args: { path }, actor: `tx-${round}`, bytes: 512 * 1024 });
      // Kill right after a `begin`: the child is then inside (or about to enter) a commit of about 1 MiB.
      const target = committed + 15 + round * 3;
      await kid.until((lines) => lines.includes(`begin ${target}`));
      kid.kill();
      expect(await kid.exited).toBe("SIGKILL");
      const begun = kid.lines.filter((l) => l.startsWith("begin ")).map((l) => Number(l.slice(6)));
      const acked = kid.lines.filter((l) => l.startsWith("ack ")).map((l) => Number(l.slice(4)));
      const last = begun[begun.length - 1] as number;
      if (!acked.includes(last)) inDoubt++;

      const raw = new Database(path, { readonly: true });
      expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
      raw.close();
      const adapter = sqliteAdapter({ path });
      const store = createStore({ tiers: [adapter] });
      const head = (await store.refs.get("tx/head")) as Ref;
      const v = head.version;
      // No acknowledged transaction is lost; at most the one in flight went through.
      expect(v).toBeGreaterThanOrEqual((acked[acked.length - 1] as number) + 1);
      expect(v).toBeLessThanOrEqual(last + 1);
      expect(head.target).toBe(`tx/${v - 1}/b`);
      // Transactions 0 … v-1 are all there, both datums; nothing of any later one.
      expect((await adapter.stats()).count).toBe(2 * v);
      for (let i = Math.max(0, v - 3); i < v; i++) {
        expect((await adapter.get(`tx/${i}/a`))?.content.byteLength).toBe(512 * 1024);
        expect((await adapter.get(`tx/${i}/b`))?.causalParent).toBe(`tx/${i}/a`);
      }
      expect(await adapter.get(`tx/${v}/a`)).toBeNull();
      expect(await adapter.get(`tx/${v}/b`)).toBeNull();
      const log = await store.refs.log("tx/head", 1);
      expect(log.map((e) => [e.to, e.version])).toEqual([[head.target, v]]);
      await store.close();
      committed = v;
    }
    // The kills did land while a transaction was begun and not acknowledged.
    expect(inDoubt, `rounds killed with a transaction in flight: ${inDoubt} of ${rounds}`).toBeGreaterThan(0);
  });
});
