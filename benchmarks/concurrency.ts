/**
 * The concurrency section (issue 23): put and get with 1, 4, 16 and 64 concurrent callers in one
 * process and with 4 writer processes of 4 callers, per tier, next to the raw driver at the same
 * concurrency (a `pg.Pool` of the same size; better-sqlite3 in each process; raw appends with
 * fsync batching for JSONL) and the peers, in one run. Throughput of all callers together, and
 * each operation's p50/p99. Contenders alternate in rounds (the order rotating) at every level,
 * so each sees the same machine load. See benchmarks/README.md, "Concurrency".
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Datum } from "../core/datum.js";
import type { Contender, TierSetup } from "./contender.js";
import { fullGc, summarize } from "./measure.js";
import type { Progress } from "./progress.js";
import type { ConcurrencyCell, ConcurrencyResult, ConcurrencyRow } from "./results.js";
import { message } from "./run-tier.js";
import { FROM_SOURCES, type PostgresServer, type RedisServerHandle } from "./servers.js";
import { fsyncFloor, jsonlGroupTier } from "./tiers/jsonl.js";
import { memoryTier } from "./tiers/memory.js";
import { s3Tier } from "./tiers/object-store.js";
import pg from "pg";
import { PG_APPLICATION_NAMES, postgresTier } from "./tiers/postgres.js";
import { redisTier } from "./tiers/redis.js";
import { sqliteTier } from "./tiers/sqlite.js";
import { benchDatum, checkDatum, makePrefill, type Prefill } from "./workload.js";

/** The tiers of the section (`--tier` names; `jsonl` is its `"group"` durability). */
export const CONCURRENCY_TIERS = ["memory", "jsonl", "sqlite", "postgres", "redis", "s3"] as const;
export type ConcurrencyTier = (typeof CONCURRENCY_TIERS)[number];

/** How much the section measures (full and quick in profile.ts). */
export interface ConcurrencyPlan {
  /** Callers in one process. */
  readonly levels: readonly number[];
  /** The same on the object store (each put is several HTTP requests to a local emulator). */
  readonly objectLevels: readonly number[];
  /** The process row: this many processes of `callersPerProcess` callers each. */
  readonly processes: number;
  readonly callersPerProcess: number;
  /** One contender's window per operation and round, ms; `rounds` alternating rounds. */
  readonly windowMs: number;
  /**
   * The window on the JSONL tier (durable puts): long enough to hold a few hundred group syncs,
   * so that a few slow `fdatasync`s do not decide a row.
   */
  readonly durableWindowMs: number;
  /**
   * The window on the Postgres tier, whose put rows carry goals: at 64 callers a put takes some
   * 20 ms, so a 300 ms window spends a third of itself filling and draining, and this machine's
   * CPU time per operation swings ±20 % from second to second (the same statement, rounds of
   * 3 s); longer windows average that out for every contender alike.
   */
  readonly serverWindowMs: number;
  readonly rounds: number;
  /** Datums every contender holds before the rows (the gets read them). */
  readonly prefill: number;
  readonly objectPrefill: number;
  /** At most this many operations per window (datums for puts are made before the window). */
  readonly maxOps: number;
  /** `fdatasync` samples of the JSONL tier's floor (half before, half after its rows). */
  readonly fsyncSamples: number;
}

/** What the children of the process row rebuild their contenders from. */
export type ChildTarget = { readonly tier: "sqlite"; readonly base: string } | { readonly tier: "postgres" | "redis"; readonly url: string; readonly tag: string };

export interface ChildJob {
  readonly target: ChildTarget;
  readonly contenders: readonly string[];
  readonly callers: number;
  readonly getIds: readonly string[];
  /** The untimed warm-up window per contender and operation (ms), and its operation cap. */
  readonly warmMs: number;
  readonly warmOps: number;
}

/** One window of `callers` concurrent loops: each operation's latency (µs), and when it started and ended (epoch ms). */
export interface Drive {
  readonly lat: number[];
  readonly startMs: number;
  readonly endMs: number;
  readonly error?: string;
}

/**
 * `callers` loops share a counter and call `op(i)` until `maxOps` calls or `ms` have passed; a
 * call that returns a promise is awaited (a synchronous driver is not: its loop then runs alone,
 * which is what a synchronous driver does to concurrent callers).
 */
export async function drive(callers: number, ms: number, maxOps: number, op: (i: number) => unknown): Promise<Drive> {
  const lat: number[] = [];
  let next = 0;
  const startMs = performance.timeOrigin + performance.now();
  const deadline = performance.now() + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < maxOps && performance.now() < deadline) {
        const i = next++;
        const t = performance.now();
        const r = op(i);
        if (r instanceof Promise) await r;
        lat.push((performance.now() - t) * 1000);
      }
    }),
  );
  return { lat, startMs, endMs: performance.timeOrigin + performance.now() };
}

/** Fresh datums for a window of puts: new ids, no parent (concurrent callers have no order). */
export function freshForPuts(n: number): Datum[] {
  return Array.from({ length: n }, (_, i) => benchDatum(i, null));
}

/** The call of `op` for the i-th operation of a window. */
export function opCall(c: Contender, op: "put" | "get", n: number, getIds: readonly string[], offset: number): (i: number) => unknown {
  if (op === "put") {
    const put = c.put as (d: Datum) => unknown;
    const datums = freshForPuts(n);
    return (i) => put(datums[i] as Datum);
  }
  const get = c.get as (id: string) => unknown;
  return (i) => get(getIds[(offset + i * 7) % getIds.length] as string);
}

interface Case {
  readonly tier: ConcurrencyTier;
  readonly levels: readonly number[];
  /** A new setup for every level (the pool sizes follow the callers); else one for all levels. */
  readonly perLevel: boolean;
  open(callers: number): Promise<TierSetup>;
  /** The process row: a setup whose files or schemas the children open; null where a tier has one process. */
  processes: null | { open(): Promise<{ setup: TierSetup; target: ChildTarget }> };
  /** Why there is no process row. */
  readonly noProcesses?: string;
  /** Runs around every window (Postgres: samples which backends wait for the notification lock). */
  readonly watch?: Watch;
}

interface Watch {
  around(c: Contender, op: "put" | "get", level: string, window: () => Promise<Drive>): Promise<Drive>;
  notes(): string[];
  close(): Promise<void>;
}

/**
 * Samples pg_stat_activity every 10 ms during each put window of dgent, `notify: false` and the
 * raw pool: of the contender's active backends, how many wait on `Lock: object`, the lock Postgres
 * takes at commit for every transaction that queued a notification (what serialised concurrent
 * puts when each put notified). Unlike throughput, this share does not move with the machine's load.
 */
function notifyLockWatch(server: () => Promise<PostgresServer>): Watch {
  let client: Promise<pg.Client> | null = null;
  const shares = new Map<string, { active: number; waiting: number }>();
  return {
    async around(c, op, level, window) {
      // Every contender's puts are sampled (the peers' too, whose backends have no name of ours and
      // are not reported), so the sampling's cost falls on all of them alike.
      const app = PG_APPLICATION_NAMES[c.name];
      if (op !== "put") return window();
      client ??= server().then(async (s) => {
        const k = new pg.Client({ connectionString: s.url, application_name: "bench-watch" });
        await k.connect();
        return k;
      });
      const k = await client;
      let done = false;
      const key = `${c.name}\u0000${level}`;
      const acc = shares.get(key) ?? { active: 0, waiting: 0 };
      if (app !== undefined) shares.set(key, acc);
      const loop = (async () => {
        while (!done) {
          const r = await k.query<{ active: number; waiting: number }>(
            `SELECT count(*) FILTER (WHERE state = 'active')::int AS active,
                    count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'object')::int AS waiting
             FROM pg_stat_activity WHERE application_name = $1`,
            [app ?? "-"],
          );
          acc.active += r.rows[0]?.active ?? 0;
          acc.waiting += r.rows[0]?.waiting ?? 0;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      try {
        return await window();
      } finally {
        done = true;
        await loop.catch(() => undefined);
      }
    },
    notes() {
      const byName = new Map<string, string[]>();
      for (const [key, v] of shares) {
        const [name, level] = key.split("\u0000") as [string, string];
        const list = byName.get(name) ?? [];
        list.push(`${level} ${v.active === 0 ? "–" : `${Math.round((100 * v.waiting) / v.active)} %`}`);
        byName.set(name, list);
      }
      if (byName.size === 0) return [];
      return [
        `share of the contender's active backends waiting for the notification commit lock (\`Lock: object\` in pg_stat_activity, sampled every 10 ms during its puts): ${[...byName].map(([name, xs]) => `${name}: ${xs.join(", ")}`).join("; ")}`,
      ];
    },
    async close() {
      const k = client === null ? null : await client.catch(() => null);
      client = null;
      await k?.end().catch(() => undefined);
    },
  };
}

export interface ConcurrencyOptions {
  readonly plan: ConcurrencyPlan;
  readonly dir: string;
  readonly postgres: () => Promise<PostgresServer>;
  readonly redis: () => Promise<RedisServerHandle>;
  /** The writer processes of the process rows, started once for the run. */
  readonly children: WriterProcesses;
  readonly withPeers: boolean;
  readonly progress: Progress;
}

function caseFor(tier: ConcurrencyTier, o: ConcurrencyOptions): Case {
  const { plan, dir, withPeers } = o;
  switch (tier) {
    case "memory":
      // Fresh stores at every level: a memory store keeps every put, and a level's puts are up to a
      // few hundred MB across its contenders, which would slow every later collection.
      return { tier, levels: plan.levels, perLevel: true, open: () => memoryTier(withPeers), processes: null, noProcesses: "a memory store lives in one process" };
    case "jsonl":
      return { tier, levels: plan.levels, perLevel: false, open: () => jsonlGroupTier(dir, withPeers), processes: null, noProcesses: "a JSONL log has one writer process (its lock)" };
    case "sqlite":
      return {
        tier,
        levels: plan.levels,
        perLevel: false,
        open: () => sqliteTier(join(dir, "concurrency"), withPeers),
        processes: {
          open: async () => {
            const setup = await sqliteTier(join(dir, "concurrency-processes"), withPeers);
            return { setup, target: { tier: "sqlite", base: setup.base } };
          },
        },
      };
    case "postgres":
      return {
        tier,
        levels: plan.levels,
        perLevel: true,
        open: (callers) => postgresTier(o.postgres, withPeers, { poolSize: callers, quiet: true }),
        watch: notifyLockWatch(o.postgres),
        processes: {
          open: async () => {
            const setup = await postgresTier(o.postgres, withPeers, { poolSize: plan.callersPerProcess, quiet: true });
            return { setup, target: { tier: "postgres", url: setup.url, tag: setup.tag } };
          },
        },
      };
    case "redis":
      return {
        tier,
        levels: plan.levels,
        perLevel: false,
        open: () => redisTier(o.redis, withPeers),
        processes: {
          open: async () => {
            const setup = await redisTier(o.redis, withPeers);
            return { setup, target: { tier: "redis", url: setup.url, tag: setup.tag } };
          },
        },
      };
    case "s3":
      return { tier, levels: plan.objectLevels, perLevel: false, open: () => s3Tier(), processes: null, noProcesses: `the object store runs in one process, at ${plan.objectLevels.join(", ")} callers (each put is several HTTP requests to a local emulator)` };
  }
}

/** Accumulated windows of one contender and operation. */
class Acc {
  readonly lat: number[] = [];
  ops = 0;
  wallMs = 0;
  error: string | undefined;
  last = 0;
  add(d: Drive): void {
    if (d.error !== undefined) {
      this.error = d.error;
      return;
    }
    for (const x of d.lat) this.lat.push(x);
    this.ops += d.lat.length;
    this.wallMs += d.endMs - d.startMs;
    this.last = d.lat.length;
  }
  cell(c: Contender): ConcurrencyCell {
    if (this.error !== undefined || this.ops === 0) return { contender: c.name, kind: c.kind, opsPerSec: 0, ops: 0, p50: 0, p99: 0, error: this.error ?? "no operation completed" };
    const s = summarize(this.lat);
    return { contender: c.name, kind: c.kind, opsPerSec: this.ops / (this.wallMs / 1000), ops: this.ops, p50: s.p50, p99: s.p99 };
  }
}

function rowOf(op: "put" | "get", callers: number, processes: number, cells: ConcurrencyCell[]): ConcurrencyRow {
  const ok = cells.filter((c) => c.error === undefined);
  const dgent = ok.find((c) => c.kind === "dgent");
  const raw = ok.find((c) => c.kind === "raw");
  let best: ConcurrencyCell | null = null;
  for (const p of ok) if (p.kind === "peer" && (best === null || p.opsPerSec > best.opsPerSec)) best = p;
  return {
    op,
    callers,
    processes,
    cells,
    throughputRaw: dgent && raw ? dgent.opsPerSec / raw.opsPerSec : null,
    bestPeer: best?.contender ?? null,
    throughputBestPeer: dgent && best ? dgent.opsPerSec / best.opsPerSec : null,
  };
}

/** The next window's operation cap: twice what the last one did, within [200, plan.maxOps]. */
const capFor = (acc: Acc, plan: ConcurrencyPlan) => (acc.last === 0 ? plan.maxOps : Math.min(plan.maxOps, Math.max(200, 2 * acc.last)));

/** Rounds of put and get windows, every contender in turn; `run` does one window. */
async function rounds(
  names: readonly Contender[],
  plan: ConcurrencyPlan,
  run: (c: Contender, op: "put" | "get", cap: number, offset: number) => Promise<Drive>,
  tick: (what: string) => void,
  watch?: { readonly w: Watch; readonly level: string },
): Promise<Map<string, Record<"put" | "get", Acc>>> {
  const acc = new Map(names.map((c) => [c.name, { put: new Acc(), get: new Acc() }]));
  for (let round = 0; round < plan.rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const c = names[(k + round) % names.length] as Contender;
      const a = acc.get(c.name) as Record<"put" | "get", Acc>;
      for (const op of ["put", "get"] as const) {
        if (a[op].error !== undefined) continue;
        tick(`${op}: ${c.name}`);
        const window = () => run(c, op, capFor(a[op], plan), round * 104_729);
        a[op].add(await (watch ? watch.w.around(c, op, watch.level, window) : window()).catch((error: unknown) => ({ lat: [], startMs: 0, endMs: 0, error: message(error) })));
      }
    }
  }
  return acc;
}

function rowsOf(contenders: readonly Contender[], acc: Map<string, Record<"put" | "get", Acc>>, callers: number, processes: number): ConcurrencyRow[] {
  return (["put", "get"] as const).map((op) => rowOf(op, callers, processes, contenders.map((c) => (acc.get(c.name) as Record<"put" | "get", Acc>)[op].cell(c))));
}

async function prefilled(setup: TierSetup, prefill: Prefill): Promise<void> {
  for (const c of setup.contenders) {
    await c.prefill(prefill.datums);
    checkDatum(await c.get?.(prefill.getIds[0] as string), `${c.name}: get`);
  }
}

async function closeAll(setup: TierSetup): Promise<void> {
  for (const c of setup.contenders) await c.close().catch(() => undefined);
  await setup.dispose();
}

/** One level in this process: every contender at `callers` concurrent callers. */
async function inProcess(setup: TierSetup, callers: number, prefill: Prefill, plan: ConcurrencyPlan, tick: (what: string) => void, watch: Watch | undefined): Promise<ConcurrencyRow[]> {
  const getIds = prefill.getIds;
  // Warm every contender's connections (a pool opens them on demand) and code paths with one
  // untimed window of each operation, as long as a timed one: the first contender of the first
  // round would otherwise pay for the JIT and the pool's connections (tens of µs a call over a
  // window, more for the contender with the most JavaScript).
  for (const c of setup.contenders) {
    for (const op of ["put", "get"] as const) await drive(callers, plan.windowMs, plan.maxOps, opCall(c, op, plan.maxOps, getIds, 0)).catch(() => undefined);
  }
  const acc = await rounds(
    setup.contenders,
    plan,
    (c, op, cap, offset) => {
      const call = opCall(c, op, cap, getIds, offset);
      // One contender's garbage (and the datums just made) is not collected on the window's time, as in the sampler.
      fullGc();
      return drive(callers, plan.windowMs, cap, call);
    },
    tick,
    watch ? { w: watch, level: `${callers} caller${callers === 1 ? "" : "s"}` } : undefined,
  );
  return rowsOf(setup.contenders, acc, callers, 1);
}

// ---- the process row ----

interface Child {
  readonly proc: ChildProcess;
  send(message: unknown): Promise<Record<string, unknown>>;
}

function childCommand(): { file: string; args: string[]; cwd: string } {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const self = join(here, `concurrency-child.${FROM_SOURCES ? "ts" : "js"}`);
  const cwd = fileURLToPath(new URL(FROM_SOURCES ? ".." : "../..", import.meta.url));
  if (!FROM_SOURCES) return { file: process.execPath, args: [self], cwd };
  // From the sources (npm run bench, the tests) the child runs the TypeScript as the parent does.
  return { file: process.execPath, args: [fileURLToPath(new URL("../node_modules/vite-node/vite-node.mjs", import.meta.url)), self], cwd };
}

function startChild(): Child {
  const { file, args, cwd } = childCommand();
  const proc = spawn(file, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const waiting: Array<{ resolve(v: Record<string, unknown>): void; reject(e: Error): void }> = [];
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    if (!line.startsWith("{")) return;
    waiting.shift()?.resolve(JSON.parse(line) as Record<string, unknown>);
  });
  proc.on("exit", (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`a writer process exited (${code}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`));
  });
  const send = (m: unknown) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (proc.exitCode !== null) return reject(new Error(`a writer process has exited (${proc.exitCode}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`));
      waiting.push({ resolve, reject });
      proc.stdin?.write(`${JSON.stringify(m)}\n`);
    });
  return { proc, send };
}

/**
 * The writer processes of the process rows: started on first use (from the sources each runs
 * vite-node, which takes seconds to start) and kept for every tier of the run; `close` ends them.
 */
export class WriterProcesses {
  #children: Child[] = [];

  get(n: number): Child[] {
    this.#children = this.#children.filter((c) => c.proc.exitCode === null);
    while (this.#children.length < n) this.#children.push(startChild());
    return this.#children.slice(0, n);
  }

  async close(): Promise<void> {
    const all = this.#children.splice(0);
    await Promise.all(all.map((ch) => ch.send({ cmd: "exit" }).catch(() => undefined)));
    for (const ch of all) if (ch.proc.exitCode === null) ch.proc.kill();
  }
}

async function acrossProcesses(setup: TierSetup, target: ChildTarget, prefill: Prefill, plan: ConcurrencyPlan, pool: WriterProcesses, tick: (what: string) => void, watch: Watch | undefined): Promise<ConcurrencyRow[]> {
  const names = setup.contenders.map((c) => c.name);
  // The parent's handles are closed; the children open the same files or schemas.
  for (const c of setup.contenders) await c.close();
  const job: ChildJob = { target, contenders: names, callers: plan.callersPerProcess, getIds: prefill.getIds, warmMs: plan.windowMs, warmOps: Math.ceil(plan.maxOps / plan.processes) };
  const children = pool.get(plan.processes);
  try {
    // `open`: every contender open and warm in every child, or why one could not open.
    const ready = await Promise.all(children.map((ch) => ch.send({ cmd: "open", job })));
    const failed = new Map<string, string>();
    for (const r of ready) for (const [name, why] of Object.entries((r.failed ?? {}) as Record<string, string>)) failed.set(name, why);
    const acc = await rounds(
      setup.contenders,
      plan,
      async (c, op, cap, offset) => {
        const why = failed.get(c.name);
        if (why !== undefined) return { lat: [], startMs: 0, endMs: 0, error: why };
        const outs = await Promise.all(children.map((ch, k) => ch.send({ cmd: "run", name: c.name, op, ms: plan.windowMs, max: Math.ceil(cap / plan.processes), offset: offset + k * 7919 })));
        const error = outs.find((x) => typeof x.error === "string")?.error as string | undefined;
        if (error !== undefined) return { lat: [], startMs: 0, endMs: 0, error };
        return {
          lat: outs.flatMap((x) => x.lat as number[]),
          startMs: Math.min(...outs.map((x) => x.startMs as number)),
          endMs: Math.max(...outs.map((x) => x.endMs as number)),
        };
      },
      tick,
      watch ? { w: watch, level: `${plan.processes} processes` } : undefined,
    );
    return rowsOf(setup.contenders, acc, plan.processes * plan.callersPerProcess, plan.processes);
  } finally {
    await Promise.all(children.map((ch) => ch.send({ cmd: "close" }).catch(() => undefined)));
  }
}

// ---- the section ----

export async function runConcurrency(tier: ConcurrencyTier, o: ConcurrencyOptions): Promise<ConcurrencyResult> {
  const { progress } = o;
  const plan = tier === "jsonl" ? { ...o.plan, windowMs: o.plan.durableWindowMs } : tier === "postgres" ? { ...o.plan, windowMs: o.plan.serverWindowMs } : o.plan;
  const c = caseFor(tier, o);
  const prefill = makePrefill(tier === "s3" ? plan.objectPrefill : plan.prefill);
  const rows: ConcurrencyRow[] = [];
  const notes: string[] = [];
  let first: TierSetup | null = null;
  const steps = c.levels.length + (c.processes ? 1 : 0);
  let step = 0;
  const tick = (level: string) => (what: string) => progress.update(`${level}: ${what}`, step / steps);
  const floor: number[] = [];
  if (tier === "jsonl") floor.push(...fsyncFloor(o.dir, Math.ceil(plan.fsyncSamples / 2)));
  let shared: TierSetup | null = null;
  try {
    for (const callers of c.levels) {
      let setup: TierSetup | null = shared;
      if (setup === null) {
        progress.update(`${callers} callers: opening, prefill ${prefill.datums.length}`, step / steps);
        setup = await c.open(callers);
        if (!c.perLevel) shared = setup;
      }
      first ??= setup;
      try {
        if (setup !== shared || step === 0) await prefilled(setup, prefill);
        rows.push(...(await inProcess(setup, callers, prefill, plan, tick(`${callers} callers`), c.watch)));
      } finally {
        if (c.perLevel) await closeAll(setup);
      }
      step++;
    }
    if (shared !== null) await closeAll(shared);
    shared = null;
    if (tier === "jsonl") floor.push(...fsyncFloor(o.dir, Math.floor(plan.fsyncSamples / 2)));
    if (c.processes) {
      progress.update(`${plan.processes} processes: opening, prefill ${prefill.datums.length}`, step / steps);
      const { setup, target } = await c.processes.open();
      try {
        await prefilled(setup, prefill);
        rows.push(...(await acrossProcesses(setup, target, prefill, plan, o.children, tick(`${plan.processes} processes × ${plan.callersPerProcess} callers`), c.watch)));
      } finally {
        await closeAll(setup); // the contenders were closed before the children ran; a second close is ignored
      }
    } else if (c.noProcesses) {
      notes.push(`no process row: ${c.noProcesses}`);
    }
    if (c.watch) notes.push(...c.watch.notes());
  } finally {
    if (shared !== null) await closeAll(shared);
    await c.watch?.close();
  }
  const setup = first as TierSetup;
  return {
    tier,
    label: setup.label,
    contenders: setup.contenders.map((x) => ({ name: x.name, kind: x.kind, description: x.description })),
    skipped: setup.skipped ?? [],
    rows,
    ...(tier === "jsonl" ? { fsyncFloor: floor.length ? summarize(floor) : null } : {}),
    notes,
  };
}

export function failedConcurrency(tier: string, error: unknown): ConcurrencyResult {
  return { tier, label: tier, contenders: [], skipped: [], rows: [], notes: [], error: message(error) };
}
