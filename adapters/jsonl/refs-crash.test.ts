/**
 * Transactions on the JSONL tier are all or nothing across a crash:
 *
 * - power loss, on the power-loss file system of test/harness/power-loss: a workload of 3-op
 *   transactions (put a datum, delete the one it replaces, move a ref to it by version), some in
 *   flight at once, with compactions and a reopen; every crash state, strict and torn, must be
 *   the state after some prefix of the transactions (never part of one), and in "group" mode a
 *   prefix that holds every acknowledged one;
 * - a writer SIGKILLed while it commits transactions leaves the state after a prefix of them.
 *
 * DGENT_TEST_LONG=1 runs a larger workload with more cuts; DGENT_POWER_LOSS_SEED=<n> replays a seed.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { AdapterContext } from "../../core/protocol.js";
import type { TxOp } from "../../core/refs.js";
import { mountPowerLossFs, rng, type PowerLossFs } from "../../test/harness/power-loss/index.js";
import { chooseCuts, DATA_DIR, LONG, runSeed } from "../../test/harness/power-loss/workload.js";
import { jsonlAdapter, type Durability, type JsonlAdapter } from "./index.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const REFS = 4;

/** Transaction `i` (from 1) on ref `r<k>`: put `d<i>`, delete the datum the ref pointed at, move the ref to `d<i>` by version. */
interface Tx {
  readonly i: number;
  readonly ref: string;
  readonly prev: string | null;
  readonly version: number;
}

function txOps(tx: Tx): TxOp[] {
  const datum = makeDatum({ id: `d${tx.i}`, content: `value ${tx.i} of ${tx.ref}`, createdAt: 1_700_000_000_000 + tx.i, causalParent: null });
  return [
    { op: "put", datum },
    ...(tx.prev === null ? [] : [{ op: "delete" as const, id: tx.prev }]),
    { op: "setRef", name: tx.ref, target: datum.id, expect: tx.version === 1 ? { absent: true } : { version: tx.version - 1 } },
  ];
}

/** The state after the first `j` transactions, as one comparable string. */
function stateAfter(txs: readonly Tx[], j: number): string {
  const datums = new Set<string>();
  const refs = new Map<string, string>();
  for (const tx of txs.slice(0, j)) {
    datums.add(`d${tx.i}`);
    if (tx.prev !== null) datums.delete(tx.prev);
    refs.set(tx.ref, `d${tx.i}@${tx.version}`);
  }
  return fingerprint([...datums], [...refs].map(([name, at]) => `${name}=${at}`));
}

function fingerprint(datums: string[], refs: string[]): string {
  return `${datums.sort().join(",")} | ${refs.sort().join(",")}`;
}

/** Reads a tier's state; checks every datum's content and each ref's reflog head on the way. */
async function readState(a: JsonlAdapter): Promise<string> {
  const datums: string[] = [];
  for await (const d of a.scan()) {
    const i = Number(d.id.slice(1));
    if (!new TextDecoder().decode(d.content).startsWith(`value ${i} of r`)) throw new Error(`datum ${d.id} holds the wrong content`);
    datums.push(d.id);
  }
  const refs: string[] = [];
  for (const ref of await a.listRefs("")) {
    const [last] = await a.reflog(ref.name, 1);
    if (last?.version !== ref.version || last.to !== ref.target) throw new Error(`the reflog of ${ref.name} does not end at the ref (${JSON.stringify(last)} vs ${JSON.stringify(ref)})`);
    refs.push(`${ref.name}=${ref.target}@${ref.version}`);
  }
  return fingerprint(datums, refs);
}

function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function collecting(warnings: string[]): AdapterContext {
  return { events: { evicted: () => undefined, change: () => undefined, warning: (message) => warnings.push(message) } };
}

let mounted: PowerLossFs | null = null;
afterEach(async () => {
  await mounted?.unmount();
  mounted = null;
});

const SIZE = LONG ? { txs: 1000, total: 4000, minRandom: 1000, minCuts: 3000 } : { txs: 200, total: 400, minRandom: 100, minCuts: 300 };

describe("jsonl transactions across power loss", () => {
  const MODES: ReadonlyArray<{ durability: Durability; keepsAcknowledged: boolean }> = [
    { durability: "group", keepsAcknowledged: true },
    { durability: "none", keepsAcknowledged: false },
  ];
  for (const { durability, keepsAcknowledged } of MODES) {
    it(`durability "${durability}": every crash state is the state after a prefix of the transactions${keepsAcknowledged ? ", holding every acknowledged one" : ""}`, { timeout: LONG ? 1_800_000 : 180_000 }, async () => {
      const seed = runSeed();
      const label = `jsonl "${durability}" transactions (DGENT_POWER_LOSS_SEED=${seed})`;
      const random = rng(seed);
      const fs = (mounted = await mountPowerLossFs());
      const dir = join(fs.root, DATA_DIR);
      mkdirSync(dir);
      syncPath(fs.root); // the data directory itself exists before the first cut that matters
      const path = join(dir, "log.jsonl");
      const warnings: string[] = [];
      let tier = jsonlAdapter({ path, durability });
      await tier.open(collecting(warnings));
      const txs: Tx[] = [];
      const acks: Array<number | null> = [];
      const head = new Map<string, { target: string; version: number }>();
      let waves = 0;
      while (txs.length < SIZE.txs) {
        if (++waves % 10 === 0) {
          if (waves % 30 === 0) {
            await tier.close();
            tier = jsonlAdapter({ path, durability });
            await tier.open(collecting(warnings));
          } else {
            await tier.compact();
          }
          continue;
        }
        // A wave: up to REFS transactions in flight at once, each on its own ref.
        const refs = Array.from({ length: REFS }, (_, k) => `r${k}`).filter(() => random() < 0.7);
        const wave = refs.map((ref) => {
          const now = head.get(ref);
          const tx: Tx = { i: txs.length + 1, ref, prev: now?.target ?? null, version: (now?.version ?? 0) + 1 };
          txs.push(tx);
          acks.push(null);
          head.set(ref, { target: `d${tx.i}`, version: tx.version });
          return tx;
        });
        await Promise.all(
          wave.map(async (tx) => {
            await tier.commit(txOps(tx), { by: "power-loss", at: tx.i });
            acks[tx.i - 1] = fs.mark();
          }),
        );
      }
      await tier.close();
      expect(warnings, label).toEqual([]);

      const journal = fs.journal();
      const cuts = chooseCuts(journal, SIZE, seed);
      const replay = fs.replay();
      const prefixes = new Map<string, number>();
      for (let j = 0; j <= txs.length; j++) prefixes.set(stateAfter(txs, j), j);
      const scratch = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "dgent-tx-crash-"));
      let tornFrames = 0;
      let lost = 0;
      try {
        for (const [c, cut] of cuts.entries()) {
          replay.advance(cut.at);
          const out = join(scratch, String(c));
          mkdirSync(out);
          replay.materialize(out, { torn: cut.torn === null ? null : rng(cut.torn) });
          const where = `${label}: power lost after journal record ${cut.at} of ${replay.length} (${cut.why}${cut.torn === null ? "" : `, torn seed ${cut.torn}`})`;
          const crashWarnings: string[] = [];
          const logPath = join(out, DATA_DIR, "log.jsonl");
          // Does the crash state end inside a transaction's frame (a begin with no commit after it)?
          const text = existsSync(logPath) ? readFileSync(logPath, "latin1") : "";
          const lastBegin = text.lastIndexOf('{"v":2,"op":"begin"');
          if (lastBegin >= 0 && !text.includes('"op":"commit"', lastBegin)) tornFrames++;
          const a = jsonlAdapter({ path: logPath, durability });
          await a.open(collecting(crashWarnings));
          const state = await readState(a);
          const j = prefixes.get(state);
          if (j === undefined) throw new Error(`${where}: the state read back is not the state after any prefix of the transactions (part of one was kept): ${state}`);
          const acknowledged = acks.filter((ack) => ack !== null && ack <= cut.at).length;
          const required = Math.max(0, ...acks.map((ack, k) => (ack !== null && ack <= cut.at ? k + 1 : 0)));
          if (keepsAcknowledged && j < required) throw new Error(`${where}: lost acknowledged transactions: the state is after ${j}, but ${required} had been acknowledged`);
          if (j < acknowledged) lost++;
          // The recovered log takes another transaction and keeps it.
          if (cut.torn !== null) {
            await a.commit([{ op: "setRef", name: "after", target: "x" }], { by: "recovery", at: 1 });
            await a.close();
            const b = jsonlAdapter({ path: join(out, DATA_DIR, "log.jsonl"), durability });
            await b.open();
            expect((await b.getRef("after"))?.target, where).toBe("x");
            await b.close();
          } else {
            await a.close();
          }
          rmSync(out, { recursive: true, force: true });
        }
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
      // The run exercised what it claims: many cuts, crash states ending inside a transaction's frame.
      expect(cuts.length, label).toBeGreaterThanOrEqual(SIZE.minCuts);
      expect(tornFrames, `${label}: cuts that tore a transaction frame`).toBeGreaterThan(0);
      if (!keepsAcknowledged) expect(lost, `${label}: unsynced acknowledged transactions really go`).toBeGreaterThan(0);
    });
  }
});

// The child imports the built package (`npm run build` first), as another program would.
const CHILD = String.raw`
const { jsonlAdapter } = await import("dgent/adapters/jsonl");
const cfg = JSON.parse(process.env.DGENT_TX_CHILD);
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const a = jsonlAdapter({ path: cfg.path, durability: "none" });
await a.open();
await out("open");
const datum = (i, ref) => ({ id: "d" + i, content: Buffer.from("value " + i + " of " + ref), createdAt: 1700000000000 + i, causalParent: null, metadata: {} });
let i = 0;
const heads = new Map();
const loop = async (ref) => {
  for (;;) {
    const n = ++i;
    const now = heads.get(ref);
    const ops = [{ op: "put", datum: datum(n, ref) }];
    if (now) ops.push({ op: "delete", id: now.target });
    ops.push({ op: "setRef", name: ref, target: "d" + n, expect: now ? { version: now.version } : { absent: true } });
    await a.commit(ops, { by: "child", at: n });
    heads.set(ref, { target: "d" + n, version: (now?.version ?? 0) + 1 });
    await out("ack " + ref + " " + n);
  }
};
await Promise.all(["r0", "r1", "r2"].map(loop));
`;

describe("jsonl transactions across SIGKILL", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "dgent-jsonl-txkill-"));
    expect(existsSync(join(REPO, "dist/adapters/jsonl/index.js")), "build first: npm run build").toBe(true);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("a writer killed while it commits 3-op transactions leaves each one entirely there or entirely absent", async () => {
    for (let round = 0; round < 3; round++) {
      const path = join(root, `k${round}`, "log.jsonl");
      const proc = spawn(process.execPath, ["--input-type=module", "-e", CHILD], {
        cwd: REPO,
        env: { ...process.env, DGENT_TX_CHILD: JSON.stringify({ path }) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
      const acked = new Map<string, number[]>();
      const exited = new Promise<string>((resolve) => proc.on("exit", (code, signal) => resolve(String(signal ?? code))));
      // Kill it once it has committed a few hundred transactions (more each round), mid-stream.
      const target = 200 * (round + 1);
      await new Promise<void>((resolve, reject) => {
        let count = 0;
        createInterface({ input: proc.stdout! }).on("line", (line) => {
          const [word, ref, n] = line.split(" ");
          if (word !== "ack") return;
          const list = acked.get(ref as string) ?? [];
          list.push(Number(n));
          acked.set(ref as string, list);
          if (++count === target) {
            proc.kill("SIGKILL");
            resolve();
          }
        });
        proc.on("exit", () => reject(new Error(`the child exited before ${target} transactions: ${stderr}`)));
      });
      expect(await exited).toBe("SIGKILL");

      const a = jsonlAdapter({ path });
      await a.open(collecting([]));
      const refs = await a.listRefs("");
      expect(refs.map((r) => r.name)).toEqual(["r0", "r1", "r2"]);
      const live = new Set<string>();
      for await (const d of a.scan()) live.add(d.id);
      for (const ref of refs) {
        const mine = acked.get(ref.name) ?? [];
        // The ref is at its last acknowledged transaction or a later one that was in flight; never behind.
        expect(ref.version).toBeGreaterThanOrEqual(mine.length);
        const n = Number(ref.target.slice(1));
        expect(n).toBeGreaterThanOrEqual(mine[mine.length - 1] ?? 0);
        // All of that transaction is there: its datum, and the datum it replaced deleted.
        expect(live.has(ref.target)).toBe(true);
        const [last, before] = await a.reflog(ref.name, 2);
        expect(last).toMatchObject({ to: ref.target, version: ref.version });
        if (before !== undefined) expect(live.has(before.to as string), `${ref.name}: the datum replaced by ${ref.target} was deleted with it`).toBe(false);
      }
      // Exactly one live datum per ref: no transaction left a put without its delete, or the reverse.
      expect([...live].sort()).toEqual(refs.map((r) => r.target).sort());
      await a.close();
    }
  });
});
