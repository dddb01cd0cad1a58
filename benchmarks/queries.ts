/**
 * The queries part (issue 14): a filtered list(100) — `store.query({ where: { topic }, limit: 100 })`,
 * full datums and `select: "ids"` — on a store of 10k and one of 1M datums (20 distinct topics,
 * so one datum in 20 matches), `causalChain(id, { tail: 20 })` on a 100k-long chain and on a
 * 20-long one, the filtered list from 16 concurrent callers, the raw driver running the best
 * statement we found against dgent's own tables (tiers/queries-raw.ts), and the peers doing what
 * their users do without filters: scan and filter in JavaScript (on the small store only).
 */
import { mkdirSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import type { Datum } from "../core/datum.js";
import type { Adapter } from "../core/protocol.js";
import { createStore, type Store } from "../core/store.js";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import type { Contender, ContenderKind } from "./contender.js";
import { compare, summarize, timed, type SamplePlan, type Stats, type Subject } from "./measure.js";
import { isSkipped, keyvMemoryJson, keyvPostgres, keyvSqlite, unstorageFs, unstorageMemory, unstoragePostgres, unstorageSqlite, type PeerResult } from "./peers.js";
import type { Progress } from "./progress.js";
import type { ConcurrentQueries, ContenderInfo, QueriesResult, QueryCell, QueryFigures, QueryOp, QueryOpResult } from "./results.js";
import { message } from "./run-tier.js";
import type { PostgresServer } from "./servers.js";
import { rawPgQueries, rawSqliteQueries, type RawQueries } from "./tiers/queries-raw.js";
import { LIST_LIMIT, QUERY_TAG, QUERY_VALUES, checkDatum, cycling, queryDatum } from "./workload.js";

export const QUERY_TIERS = ["memory", "jsonl-none", "sqlite", "postgres"] as const;
export type QueryTier = (typeof QUERY_TIERS)[number];

/** `causalChain(id, { tail })`: the steps asked for, and the length of the short chains. */
export const CHAIN_TAIL = 20;
/** The long chain: 100k datums, or a tenth of a smaller large store. */
export function longChainFor(large: number): number {
  return Math.min(100_000, Math.floor(large / 10));
}
/** The smallest store that holds 100 datums of every topic. */
export const MIN_QUERY_SIZE = QUERY_VALUES.length * LIST_LIMIT;
/** Concurrent callers of the concurrency case. */
export const QUERY_CALLERS = 16;
const FILL_BATCH = 5000;

export interface QueriesOptions {
  readonly sizes: readonly [number, number];
  readonly dir: string;
  /** The Postgres server (a shared one: the part's dispose closes its handle only). */
  readonly postgres: () => Promise<PostgresServer>;
  readonly withPeers: boolean;
  readonly plan: (kind: "local" | "postgres") => SamplePlan;
  readonly progress: Progress;
}

/** A tier as the part uses it: dgent stores of any size, the raw driver on them, the peers. */
interface QueryTierSetup {
  readonly label: string;
  readonly kind: "local" | "postgres";
  adapter(n: number): Adapter;
  /** The raw driver on the store of `n` (opened after it is loaded). */
  raw?(n: number): RawQueries | Promise<RawQueries>;
  peers(): Promise<PeerResult[]>;
  afterFill?(n: number): Promise<void>;
  readonly notes: string[];
  dispose(): Promise<void>;
}

async function setUp(tier: QueryTier, dir: string, postgres: () => Promise<PostgresServer>, withPeers: boolean): Promise<QueryTierSetup> {
  const none = async (): Promise<PeerResult[]> => [];
  switch (tier) {
    case "memory":
      return { label: "memoryAdapter() (copies in and out)", kind: "local", adapter: () => memoryAdapter(), peers: withPeers ? async () => [await keyvMemoryJson(), await unstorageMemory()] : none, notes: [], dispose: async () => undefined };
    case "jsonl-none":
      return {
        label: 'jsonlAdapter({ durability: "none" })',
        kind: "local",
        adapter: (n) => jsonlAdapter({ dataDir: dir, namespace: `q${n}`, durability: "none" }),
        peers: withPeers ? async () => [await unstorageFs(dir)] : none,
        notes: [],
        dispose: async () => undefined,
      };
    case "sqlite":
      return {
        label: "sqliteAdapter() (WAL, synchronous=NORMAL)",
        kind: "local",
        adapter: (n) => sqliteAdapter({ dataDir: dir, namespace: `q${n}` }),
        raw: (n) => rawSqliteQueries(join(dir, `q${n}.db`)),
        peers: withPeers ? async () => [await keyvSqlite(dir), await unstorageSqlite(dir)] : none,
        notes: [],
        dispose: async () => undefined,
      };
    case "postgres": {
      const server = await postgres();
      const tag = randomBytes(4).toString("hex");
      const schema = (n: number) => `bench_q_${tag}_${n}`;
      const peerSchema = `bench_qpeer_${tag}`;
      const unstorageTable = `unstorage_q_${tag}`;
      const schemas = new Set<string>();
      const admin = async (job: (c: pg.Client) => Promise<unknown>) => {
        const c = new pg.Client(server.url);
        await c.connect();
        try {
          await job(c);
        } finally {
          await c.end();
        }
      };
      return {
        label: `postgresAdapter({ url, namespace }) (docker profile: pool 4, notify on), ${server.origin}`,
        kind: "postgres",
        adapter: (n) => {
          schemas.add(schema(n));
          return postgresAdapter({ url: server.url, namespace: schema(n) });
        },
        raw: (n) => rawPgQueries(server.url, schema(n)),
        peers: withPeers ? async () => [await keyvPostgres(server.url, peerSchema), await unstoragePostgres(server.url, unstorageTable)] : none,
        // Autovacuum would vacuum and analyze freshly loaded tables soon after (the visibility map
        // lets index-only scans skip the heap); doing it now keeps the plans from changing during
        // the measurement. dgent and the raw driver read the same tables.
        afterFill: (n) =>
          admin(async (c) => {
            const tables = await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1", [schema(n)]);
            for (const { t } of tables.rows) await c.query(`VACUUM ANALYZE ${pg.escapeIdentifier(schema(n))}.${pg.escapeIdentifier(t)}`);
          }),
        notes: [],
        async dispose() {
          try {
            await admin(async (c) => {
              for (const s of [...schemas, peerSchema]) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
              await c.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(unstorageTable)}`);
            });
          } finally {
            await server.close();
          }
        },
      };
    }
  }
}

/** What loading a store left to check results against. */
interface Filled {
  readonly n: number;
  /** Ids of the newest `MIN_QUERY_SIZE` datums, newest first, with their topics. */
  readonly newest: ReadonlyArray<{ readonly id: string; readonly topic: string }>;
  /** The end of the long chain (null without one) and of the newest complete 20-long chain. */
  readonly longEnd: string | null;
  readonly shortEnd: string;
  readonly ms: Record<string, number>;
}

interface Sink {
  readonly name: string;
  load(batch: Datum[]): Promise<unknown>;
}

/**
 * Loads `n` datums into every sink in batches of 5000, one per millisecond: the first `longChain`
 * form one chain, the rest chains of 20.
 */
async function fill(n: number, longChain: number, sinks: readonly Sink[], onBatch: (done: number) => void): Promise<Filled> {
  const ms: Record<string, number> = Object.fromEntries(sinks.map((s) => [s.name, 0]));
  const newest: Array<{ id: string; topic: string }> = [];
  const lastShort = longChain + Math.floor((n - longChain) / CHAIN_TAIL) * CHAIN_TAIL - 1;
  let longEnd: string | null = null;
  let shortEnd = "";
  let parent: string | null = null;
  const t0 = Date.now() - n;
  for (let start = 0; start < n; start += FILL_BATCH) {
    const batch: Datum[] = [];
    for (let i = start; i < Math.min(n, start + FILL_BATCH); i++) {
      const first = i < longChain ? i === 0 : (i - longChain) % CHAIN_TAIL === 0;
      const d = queryDatum(i, first ? null : parent, t0 + i);
      batch.push(d);
      parent = d.id;
      if (i === longChain - 1) longEnd = d.id;
      if (i === lastShort) shortEnd = d.id;
      if (i >= n - MIN_QUERY_SIZE) newest.push({ id: d.id, topic: d.metadata[QUERY_TAG] as string });
    }
    for (const s of sinks) ms[s.name] = (ms[s.name] as number) + (await timed(() => s.load(batch))).ms;
    onBatch(Math.min(n, start + FILL_BATCH));
  }
  return { n, newest: newest.reverse(), longEnd, shortEnd, ms };
}

function expectedIds(f: Filled, value: string): string[] {
  return f.newest.filter((d) => d.topic === value).slice(0, LIST_LIMIT).map((d) => d.id);
}

/** A query page (`{ items }`) or a plain array: the items. */
function itemsOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  const items = (value as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) throw new Error(`expected a page or an array, got ${value === null ? "null" : typeof value}`);
  return items;
}

function checkSame(got: readonly string[], want: readonly string[], what: string): void {
  if (got.length !== want.length || got.some((id, k) => id !== want[k])) {
    const k = got.findIndex((id, i) => id !== want[i]);
    throw new Error(`${what}: expected the newest ${want.length} ids of the topic, newest first; got ${got.length} (first difference at ${k})`);
  }
}

function checkFiltered(value: unknown, f: Filled, topic: string, what: string): void {
  const items = itemsOf(value) as Datum[];
  for (const d of items) {
    checkDatum(d, what);
    if (d.metadata[QUERY_TAG] !== topic) throw new Error(`${what}: a datum of topic ${d.metadata[QUERY_TAG]} in the list of ${topic}`);
  }
  checkSame(items.map((d) => d.id), expectedIds(f, topic), what);
}

function checkChain(value: unknown, end: string, what: string): void {
  const chain = value as Datum[];
  if (!Array.isArray(chain) || chain.length !== CHAIN_TAIL) throw new Error(`${what}: expected ${CHAIN_TAIL} datums, got ${Array.isArray(chain) ? chain.length : typeof chain}`);
  if (chain[chain.length - 1]?.id !== end) throw new Error(`${what}: the chain does not end at the datum asked for`);
  for (let k = 1; k < chain.length; k++) if ((chain[k] as Datum).causalParent !== (chain[k - 1] as Datum).id) throw new Error(`${what}: step ${k} is not the child of step ${k - 1}`);
  for (const d of chain) checkDatum(d, what);
}

/** One measured thing: a contender on a store (or a chain), and how to call it. */
interface Side {
  readonly name: string;
  readonly contender: string;
  readonly kind: ContenderKind;
  readonly size: number;
  readonly args: (count: number) => unknown[];
  run(arg: unknown): unknown;
}

const at = (n: number) => n.toLocaleString("en");

async function measureOp(op: QueryOp, sides: readonly Side[], plan: SamplePlan, progress: Progress, fraction: [number, number]): Promise<QueryOpResult> {
  try {
    const subjects: Subject<unknown>[] = sides.map((s) => ({ name: s.name, args: s.args, run: s.run }));
    const stats = await compare(subjects, plan, (done, total, who) => progress.update(`${op}: ${who}`, fraction[0] + ((fraction[1] - fraction[0]) * done) / total));
    const cells: QueryCell[] = sides.map((s) => ({ contender: s.contender, kind: s.kind, size: s.size, stats: stats.get(s.name) as Stats }));
    return { op, cells };
  } catch (error) {
    progress.log(`  queries ${op}: ${message(error)}`);
    return { op, cells: [], error: message(error) };
  }
}

function cell(ops: readonly QueryOpResult[], op: QueryOp, kind: ContenderKind, size: number): QueryCell | null {
  return ops.find((o) => o.op === op)?.cells.find((c) => c.kind === kind && c.size === size) ?? null;
}

const ratio = (a: QueryCell | null, b: QueryCell | null): number | null => (a && b ? a.stats.p50 / b.stats.p50 : null);

export function queryFigures(ops: readonly QueryOpResult[], sizes: readonly [number, number], chains: readonly [number, number], peerSize: number | null): QueryFigures {
  const [small, large] = sizes;
  const dgentLarge = cell(ops, "filtered", "dgent", large);
  const peers = ops.find((o) => o.op === "filtered")?.cells.filter((c) => c.kind === "peer") ?? [];
  let best: QueryCell | null = null;
  for (const p of peers) if (best === null || p.stats.p50 < best.stats.p50) best = p;
  return {
    filtered: dgentLarge?.stats ?? null,
    ids: cell(ops, "ids", "dgent", large)?.stats ?? null,
    filteredRaw: ratio(dgentLarge, cell(ops, "filtered", "raw", large)),
    idsRaw: ratio(cell(ops, "ids", "dgent", large), cell(ops, "ids", "raw", large)),
    filteredScaling: ratio(dgentLarge, cell(ops, "filtered", "dgent", small)),
    idsScaling: ratio(cell(ops, "ids", "dgent", large), cell(ops, "ids", "dgent", small)),
    rawFilteredScaling: ratio(cell(ops, "filtered", "raw", large), cell(ops, "filtered", "raw", small)),
    chainTail: ratio(cell(ops, "chainTail", "dgent", chains[1]), cell(ops, "chainTail", "dgent", chains[0])),
    rawChainTail: ratio(cell(ops, "chainTail", "raw", chains[1]), cell(ops, "chainTail", "raw", chains[0])),
    bestPeer: best?.contender ?? null,
    peerRatio: peerSize === null ? null : ratio(cell(ops, "filtered", "dgent", peerSize), best),
  };
}

/**
 * `callers` loops in one process, each calling `call` (a filtered list, the topic cycling) for
 * `ms`, per contender, in `rounds` alternating rounds after a warm-up round; each call's latency
 * is kept (it includes waiting for a pooled connection).
 */
async function measureConcurrent(
  sides: ReadonlyArray<{ name: string; kind: ContenderKind; call(value: string): unknown }>,
  callers: number,
  size: number,
  ms: number,
  rounds: number,
): Promise<ConcurrentQueries> {
  const latencies = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  const time = new Map<string, number>(sides.map((s) => [s.name, 0]));
  const run = async (side: (typeof sides)[number], forMs: number, keep: boolean) => {
    const out = latencies.get(side.name) as number[];
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(forMs * 1e6));
    await Promise.all(
      Array.from({ length: callers }, async (_, caller) => {
        let k = caller;
        while (process.hrtime.bigint() < deadline) {
          const t = process.hrtime.bigint();
          await side.call(QUERY_VALUES[k++ % QUERY_VALUES.length] as string);
          if (keep) out.push(Number(process.hrtime.bigint() - t) / 1000);
        }
      }),
    );
    if (keep) time.set(side.name, (time.get(side.name) as number) + Number(process.hrtime.bigint() - start) / 1e9);
  };
  for (const s of sides) await run(s, Math.min(ms, 200), false);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < sides.length; k++) await run(sides[(k + round) % sides.length] as (typeof sides)[number], ms, true);
  }
  const byContender: ConcurrentQueries["byContender"] = {};
  for (const s of sides) {
    const l = latencies.get(s.name) as number[];
    const st = summarize(l);
    byContender[s.name] = { opsPerSec: l.length / (time.get(s.name) as number), calls: l.length, p50: st.p50, p95: st.p95 };
  }
  const dgent = sides.find((s) => s.kind === "dgent");
  const raw = sides.find((s) => s.kind === "raw");
  const rawOverDgent = dgent && raw ? (byContender[raw.name]?.opsPerSec as number) / (byContender[dgent.name]?.opsPerSec as number) : null;
  return { callers, size, byContender, rawOverDgent };
}

function queryCostOf(a: Adapter): string {
  return a.capabilities.query ? (a.capabilities.queryCost ?? "scan") : "none";
}

/** The queries part on one tier: loads, checks, measures; closes and removes everything after. */
export async function runQueries(tier: QueryTier, options: QueriesOptions): Promise<QueriesResult> {
  const { sizes, progress } = options;
  const [small, large] = sizes;
  const chains: [number, number] = [CHAIN_TAIL, longChainFor(large)];
  const base = join(options.dir, `queries-${tier}`);
  mkdirSync(base, { recursive: true });
  const setup = await setUp(tier, base, options.postgres, options.withPeers);
  const stores: Store[] = [];
  const raws: RawQueries[] = [];
  const peers: Contender[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  const notes = [...setup.notes];
  const fillMs: Record<string, number> = {};
  let queryCost = "none";
  try {
    for (const p of await setup.peers()) {
      if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
      else if (p.filtered) peers.push(p);
      else skipped.push({ name: p.name, reason: "no way to enumerate its entries" });
    }
    const filled: Filled[] = [];
    for (const [k, n] of sizes.entries()) {
      const adapter = setup.adapter(n);
      queryCost = queryCostOf(adapter);
      const store = createStore({ tiers: [adapter] });
      stores.push(store);
      await store.open();
      const sinks: Sink[] = [{ name: `dgent @ ${at(n)}`, load: (b) => store.putMany(b) }];
      if (n === small) for (const p of peers) sinks.push({ name: `${p.name} @ ${at(n)}`, load: (b) => p.prefill(b) });
      const f = await fill(n, n === large ? chains[1] : 0, sinks, (done) => progress.update(`load ${at(n)}: ${Math.floor((done / n) * 100)}%`, k === 0 ? (0.1 * done) / n : 0.1 + (0.5 * done) / n));
      Object.assign(fillMs, f.ms);
      filled.push(f);
      await setup.afterFill?.(n);
      if (setup.raw) {
        const raw = await setup.raw(n);
        raws.push(raw);
        if (raw.note && !notes.includes(raw.note)) notes.push(raw.note);
      }
    }
    const [fs, fl] = filled as [Filled, Filled];
    const storeOf = (n: number) => stores[sizes.indexOf(n)] as Store;
    const rawOf = (n: number) => raws[sizes.indexOf(n)];
    const filledOf = (n: number) => (n === small ? fs : fl);

    // Check every contender returns the right items before anything is timed.
    const probe = QUERY_VALUES[7] as string;
    for (const n of sizes) {
      const store = storeOf(n);
      checkFiltered(await store.query({ where: { [QUERY_TAG]: probe }, limit: LIST_LIMIT }), filledOf(n), probe, `dgent @ ${at(n)}: filtered`);
      checkSame(itemsOf(await store.query({ where: { [QUERY_TAG]: probe }, limit: LIST_LIMIT, select: "ids" })) as string[], expectedIds(filledOf(n), probe), `dgent @ ${at(n)}: ids`);
      const raw = rawOf(n);
      if (raw) {
        checkFiltered(await raw.filtered(probe, LIST_LIMIT), filledOf(n), probe, `${raw.name} @ ${at(n)}: filtered`);
        checkSame((await raw.ids(probe, LIST_LIMIT)) as string[], expectedIds(filledOf(n), probe), `${raw.name} @ ${at(n)}: ids`);
      }
    }
    for (const p of peers) checkFiltered(await p.filtered?.(QUERY_TAG, probe, LIST_LIMIT), fs, probe, `${p.name} @ ${at(small)}: filtered`);
    const big = storeOf(large);
    const ends: Array<[number, string]> = [
      [chains[0], fl.shortEnd],
      [chains[1], fl.longEnd as string],
    ];
    for (const [len, end] of ends) {
      checkChain(await big.causalChain(end, { tail: CHAIN_TAIL }), end, `dgent: causalChain tail ${CHAIN_TAIL} of a ${at(len)}-long chain`);
      const raw = rawOf(large);
      if (raw) checkChain(await raw.chainTail(end, CHAIN_TAIL), end, `${raw.name}: tail ${CHAIN_TAIL} of a ${at(len)}-long chain`);
    }

    const plan = options.plan(setup.kind);
    const values = () => cycling(QUERY_VALUES);
    const side = (contender: string, kind: ContenderKind, size: number, run: (arg: unknown) => unknown, label = `@ ${at(size)}`): Side => ({ name: `${contender} ${label}`, contender, kind, size, args: values(), run });
    const listSides = (select: "full" | "ids"): Side[] => {
      const out: Side[] = [];
      for (const n of sizes) {
        const store = storeOf(n);
        out.push(side("dgent", "dgent", n, (v) => store.query({ where: { [QUERY_TAG]: v as string }, limit: LIST_LIMIT, select })));
        const raw = rawOf(n);
        if (raw) out.push(side(raw.name, "raw", n, select === "full" ? (v) => raw.filtered(v as string, LIST_LIMIT) : (v) => raw.ids(v as string, LIST_LIMIT)));
      }
      if (select === "full") for (const p of peers) out.push(side(p.name, "peer", small, (v) => p.filtered?.(QUERY_TAG, v as string, LIST_LIMIT)));
      return out;
    };
    const chainSides: Side[] = [];
    for (const [len, end] of ends) {
      const label = `, ${at(len)}-long chain`;
      chainSides.push({ ...side("dgent", "dgent", len, () => big.causalChain(end, { tail: CHAIN_TAIL }), label), args: (c: number) => new Array<string>(c).fill(end) });
      const raw = rawOf(large);
      if (raw) chainSides.push({ ...side(raw.name, "raw", len, () => raw.chainTail(end, CHAIN_TAIL), label), args: (c: number) => new Array<string>(c).fill(end) });
    }
    const ops: QueryOpResult[] = [];
    ops.push(await measureOp("filtered", listSides("full"), plan, progress, [0.6, 0.75]));
    ops.push(await measureOp("ids", listSides("ids"), plan, progress, [0.75, 0.85]));
    ops.push(await measureOp("chainTail", chainSides, plan, progress, [0.85, 0.9]));

    let concurrent: ConcurrentQueries | null = null;
    if (setup.raw) {
      // On a tier that scans, 16 callers each scanning the large store would take minutes: the small one then.
      const n = queryCost === "indexed" ? large : small;
      if (n !== large) notes.push(`the ${QUERY_CALLERS}-caller case ran on the ${at(small)} store: the tier does not declare indexed filters (queryCost ${queryCost}), so every call scans the store`);
      progress.update(`${QUERY_CALLERS} concurrent callers`, 0.9);
      const store = storeOf(n);
      const raw = rawOf(n) as RawQueries;
      try {
        concurrent = await measureConcurrent(
          [
            { name: "dgent", kind: "dgent", call: (v) => store.query({ where: { [QUERY_TAG]: v }, limit: LIST_LIMIT }) },
            { name: raw.name, kind: "raw", call: (v) => raw.filtered(v, LIST_LIMIT) },
          ],
          QUERY_CALLERS,
          n,
          plan.budgetMs,
          plan.rounds,
        );
      } catch (error) {
        notes.push(`the ${QUERY_CALLERS}-caller case failed: ${message(error)}`);
      }
    }
    const peerSize = peers.length ? small : null;
    const contenders: ContenderInfo[] = [
      { name: "dgent", kind: "dgent", description: `createStore({ tiers: [${setup.label}] }); store.query({ where: { ${QUERY_TAG}: value }, limit: 100 }) (and select: "ids"); causalChain(id, { tail: ${CHAIN_TAIL} })` },
      ...(raws[0] ? [{ name: raws[0].name, kind: "raw" as const, description: raws[0].description }] : []),
      ...peers.map((p) => ({ name: p.name, kind: "peer" as const, description: `${p.description}; filtered list: ${p.filteredNote ?? "scan and filter"} (on ${at(small)} datums)` })),
    ];
    return { tier, label: setup.label, sizes, chains, peerSize, queryCost, fillMs, contenders, skipped, ops, figures: queryFigures(ops, sizes, chains, peerSize), concurrent, notes };
  } finally {
    for (const r of raws) await r.close().catch(() => undefined);
    for (const p of peers) await p.close().catch((error: unknown) => progress.log(`  queries ${tier}: closing ${p.name} failed: ${message(error)}`));
    for (const s of stores) await s.close().catch((error: unknown) => progress.log(`  queries ${tier}: close failed: ${message(error)}`));
    await setup.dispose().catch((error: unknown) => progress.log(`  queries ${tier}: cleanup failed: ${message(error)}`));
    rmSync(base, { recursive: true, force: true });
  }
}

/** A tier whose queries part could not run at all. */
export function failedQueries(tier: string, sizes: readonly [number, number], error: unknown): QueriesResult {
  const chains: [number, number] = [CHAIN_TAIL, longChainFor(sizes[1])];
  return { tier, label: tier, sizes, chains, peerSize: null, queryCost: "none", fillMs: {}, contenders: [], skipped: [], ops: [], figures: queryFigures([], sizes, chains, null), concurrent: null, notes: [], error: message(error) };
}
