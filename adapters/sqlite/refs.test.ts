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
import { APPLICATION_ID, MIGRATIONS, sqliteAdapter } from "./index.js";

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

    // On disk: a ring of the limit's slots per ref, slot = move number mod the limit, the newest moves.
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT name, count(*) AS n, min(seq) AS first, max(seq) AS last FROM reflog GROUP BY name ORDER BY name").all()).toEqual([
      { name: "busy", n: REFLOG_LIMIT, first: moves - REFLOG_LIMIT + 1, last: moves },
      { name: "quiet", n: 1, first: 1, last: 1 },
    ]);
    expect(raw.prepare("SELECT count(*) FROM reflog WHERE slot <> seq % ?").pluck().get(REFLOG_LIMIT)).toBe(0);
    expect(raw.prepare("SELECT name, log_seq FROM refs ORDER BY name").all()).toEqual([
      { name: "busy", log_seq: moves },
      { name: "quiet", log_seq: 1 },
    ]);
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

describe("sqlite: the reflog from schema version 4", () => {
  it(`a file written by version 4 keeps the newest ${REFLOG_LIMIT} moves of each ref, and its refs move on from them`, async () => {
    const path = join(tempDir(), "v4.db");
    const old = new Database(path);
    old.pragma("journal_mode = WAL");
    for (const step of MIGRATIONS.filter((m) => m.version <= 4)) old.exec(step.up);
    old.pragma("user_version = 4");
    old.pragma(`application_id = ${APPLICATION_ID}`);
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

    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT name, count(*) AS n, min(seq) AS first, max(seq) AS last FROM reflog GROUP BY name ORDER BY name").all()).toEqual([
      { name: "busy", n: REFLOG_LIMIT, first: 152, last: 251 },
      { name: "gone", n: REFLOG_LIMIT, first: 32, last: 131 },
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
