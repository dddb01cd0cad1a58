/**
 * `dgent bench` / `npm run bench`: every tier's put, putMany(100), get, list(100) and
 * causalChain(10) next to the raw driver and the peer libraries, hook overhead, scaling, and a
 * verdict against the seed's targets and the issue's goals, written as JSON, Markdown and SVG.
 * See benchmarks/README.md.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from "node:os";
import { join, resolve } from "node:path";
import { ensureWritableDir } from "../core/paths.js";
import { parseArgs } from "node:util";
import { chartSvg } from "./chart.js";
import { CONCURRENCY_TIERS, WriterProcesses, failedConcurrency, runConcurrency, type ConcurrencyTier } from "./concurrency.js";
import type { OpName, TierSetup } from "./contender.js";
import { CONCURRENCY_GOALS, summarizeVerdict, verdict } from "./goals.js";
import { hooksTier } from "./hooks-case.js";
import { summarize, type Stats } from "./measure.js";
import { FULL, QUICK, type Profile } from "./profile.js";
import { Progress } from "./progress.js";
import { MIN_QUERY_SIZE, QUERY_TIERS, failedQueries, runQueries } from "./queries.js";
import { markdownReport } from "./report.js";
import { RESULTS_SCHEMA, type BenchResults, type ConcurrencyResult, type MachineInfo, type QueriesResult, type ScalingResult, type TierResult } from "./results.js";
import { failedTier, message, runTier } from "./run-tier.js";
import { SCALING_TIERS, runScaling } from "./scaling.js";
import { fsyncFloor, jsonlTier } from "./tiers/jsonl.js";
import { memoryTier, memoryZeroCopyTier } from "./tiers/memory.js";
import { gcsTier, s3Tier } from "./tiers/object-store.js";
import { sharedPostgres, sharedRedis, type PostgresServer, type RedisServerHandle } from "./servers.js";
import { postgresTier } from "./tiers/postgres.js";
import { redisTier } from "./tiers/redis.js";
import { sqliteTier } from "./tiers/sqlite.js";
import { BATCH, CHAIN_DEPTH, CONTENT_BYTES, LIST_LIMIT, TAGS, makePrefill } from "./workload.js";

/** What `runBench` writes to; the CLI's `Io` fits. */
export interface BenchIo {
  stdout(chunk: string): unknown;
  stderr(chunk: string): unknown;
  env?: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal (live progress line); default `process.stderr.isTTY`. */
  stderrIsTTY?: boolean;
  /** How the run was started, for the report (default `dgent bench`). */
  command?: string;
}

export const TIERS = ["memory", "memory-zero-copy", "jsonl-none", "jsonl-group", "jsonl-fsync", "sqlite", "postgres", "redis", "s3", "gcs"] as const;
export type TierName = (typeof TIERS)[number];
const PARTS = ["peers", "hooks", "scaling", "queries", "concurrency"] as const;
/** What `--only` can run alone. */
const ONLY = ["concurrency"] as const;

export const USAGE = `usage: dgent bench [--quick] [--tier NAME,...] [--skip peers,hooks,scaling,queries,concurrency] [--only concurrency]
                   [--out DIR] [--name NAME] [--data-dir DIR] [--scaling SMALL,LARGE] [--queries SMALL,LARGE] [--machine TEXT] [--json]

Measures put, putMany(100), get, list(100) and causalChain(10) on every tier — memory (copying,
and zero-copy), jsonl (none, group, fsync), sqlite, postgres, redis, s3, gcs — next to the raw driver
doing the same work and the peer libraries (Keyv, unstorage) on the same backends; hook overhead with 0, 1 and 5 plugins;
get and list at two store sizes (10k and 1M); filtered lists, projections and chain tails at 10k
and 1M datums (memory, jsonl "none", sqlite, postgres: the queries part); put and get with 1, 4,
16 and 64 concurrent callers and with 4 processes (memory, jsonl "group", sqlite, postgres, redis;
s3 at 1, 4, 16), next to the raw driver and the peers at the same concurrency (the concurrency
part); and a verdict against the seed's targets and the project's goals. Writes <out>/<name>.json, .md and .svg; prints the Markdown report.

  --quick            small samples and stores (< 60 s): proves the benchmark runs; figures indicative
  --tier NAME,...    only these tiers (${TIERS.join(", ")}; "jsonl" = all three modes;
                     "none" = no tier, e.g. only the scaling case)
  --skip PART,...    leave out peers, hooks, scaling, queries and/or concurrency
  --only concurrency only the concurrency part (on the tiers of --tier among ${CONCURRENCY_TIERS.join(", ")})
  --out DIR          where results go (default: benchmarks/results in a checkout, else ./dgent-bench)
  --name NAME        file names (default: full or quick)
  --data-dir DIR     where the stores' files go (default: a temporary directory, removed after)
  --scaling A,B      store sizes of the scaling case (default 10000,1000000; quick 1000,10000)
  --queries A,B      store sizes of the queries part (default 10000,1000000; quick 2000,5000;
                     at least ${MIN_QUERY_SIZE}); it runs on the tiers of --tier among ${QUERY_TIERS.join(", ")}
  --machine TEXT     a description of the machine, kept in the results
  --json             print the results JSON instead of the Markdown report
  --render FILE      no run: rewrite FILE's .md and .svg from a results JSON written earlier

Postgres: DGENT_BENCH_POSTGRES_URL, else the test harness's throwaway cluster (from a checkout).
S3 and GCS run on the test harness's local servers (from a checkout).`;

function parseList(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(",").map((s) => s.trim()).filter(Boolean);
}

function selectTiers(raw: string[]): TierName[] {
  if (raw.length === 0) return [...TIERS];
  if (raw.length === 1 && raw[0] === "none") return [];
  const out = new Set<TierName>();
  for (const name of raw) {
    if (name === "none") continue;
    if (name === "jsonl") for (const m of ["jsonl-none", "jsonl-group", "jsonl-fsync"] as const) out.add(m);
    else if ((TIERS as readonly string[]).includes(name)) out.add(name as TierName);
    else throw new UsageError(`unknown tier ${JSON.stringify(name)}; tiers: ${TIERS.join(", ")}, jsonl`);
  }
  return TIERS.filter((t) => out.has(t));
}

/** The concurrency part's tiers among `--tier` (all without it; jsonl's modes are its "group"). */
function selectConcurrencyTiers(raw: string[]): ConcurrencyTier[] {
  if (raw.length === 0) return [...CONCURRENCY_TIERS];
  const named = new Set(raw.map((n) => (n.startsWith("jsonl") ? "jsonl" : n)));
  return CONCURRENCY_TIERS.filter((t) => named.has(t));
}

class UsageError extends Error {}

function machine(note: string | null, loadBefore: number[]): MachineInfo {
  let commit: string | null = null;
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || null;
  } catch {
    commit = null;
  }
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? "unknown",
    cores: cpu.length,
    memoryGiB: totalmem() / 2 ** 30,
    os: `${osType()} ${release()}`,
    node: process.version,
    tmpdir: tmpdir(),
    loadBefore,
    loadAfter: loadavg(),
    commit,
    note,
  };
}

function defaultOut(): string {
  return existsSync("benchmarks") ? resolve("benchmarks/results") : resolve("dgent-bench");
}

/**
 * Runs the benchmark. Returns the exit code: 0 when it ran (misses are reported, not failures),
 * 2 for a bad command line, 1 when nothing could be measured.
 */
export async function runBench(argv: readonly string[], io: BenchIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        quick: { type: "boolean" },
        tier: { type: "string" },
        skip: { type: "string" },
        only: { type: "string" },
        out: { type: "string" },
        name: { type: "string" },
        "data-dir": { type: "string" },
        scaling: { type: "string" },
        queries: { type: "string" },
        machine: { type: "string" },
        json: { type: "boolean" },
        render: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    io.stderr(`dgent bench: ${message(error)} [DGENT_USAGE]\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  if (typeof values.render === "string") return render(values.render, io);
  let tiers: TierName[];
  let skip: string[];
  let profile: Profile = values.quick ? QUICK : FULL;
  try {
    if (values.tier !== undefined && parseList(values.tier as string).length === 0) throw new UsageError(`--tier names no tier; tiers: ${TIERS.join(", ")}, jsonl, none`);
    tiers = selectTiers(parseList(values.tier as string | undefined));
    skip = parseList(values.skip as string | undefined);
    for (const s of skip) if (!(PARTS as readonly string[]).includes(s)) throw new UsageError(`unknown part ${JSON.stringify(s)} for --skip; parts: ${PARTS.join(", ")}`);
    if (values.only !== undefined && !(ONLY as readonly string[]).includes(values.only as string)) throw new UsageError(`unknown part ${JSON.stringify(values.only)} for --only; parts: ${ONLY.join(", ")}`);
    if (values.scaling !== undefined) {
      const sizes = parseList(values.scaling as string).map(Number);
      if (sizes.length !== 2 || sizes.some((n) => !Number.isInteger(n) || n < 100) || (sizes[0] as number) >= (sizes[1] as number)) {
        throw new UsageError("--scaling takes two sizes, SMALL,LARGE, integers ≥ 100, SMALL < LARGE");
      }
      profile = { ...profile, scaling: [sizes[0] as number, sizes[1] as number] };
    }
    if (values.queries !== undefined) {
      const sizes = parseList(values.queries as string).map(Number);
      if (sizes.length !== 2 || sizes.some((n) => !Number.isInteger(n) || n < MIN_QUERY_SIZE) || (sizes[0] as number) >= (sizes[1] as number)) {
        throw new UsageError(`--queries takes two sizes, SMALL,LARGE, integers ≥ ${MIN_QUERY_SIZE} (100 datums of each of 20 topics), SMALL < LARGE`);
      }
      profile = { ...profile, queries: [sizes[0] as number, sizes[1] as number] };
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`dgent bench: ${error.message} [DGENT_USAGE]\n`);
    return 2;
  }
  const env = io.env ?? process.env;
  const only = values.only as string | undefined;
  const concurrencyTiers = skip.includes("concurrency") ? [] : selectConcurrencyTiers(parseList(values.tier as string | undefined));
  if (only === "concurrency") {
    tiers = [];
    skip = [...skip, "hooks", "scaling", "queries"];
  }
  const withPeers = !skip.includes("peers");
  const withHooks = !skip.includes("hooks");
  const withScaling = !skip.includes("scaling");
  const queryTiers = skip.includes("queries") ? [] : QUERY_TIERS.filter((t) => tiers.includes(t));
  const name = (values.name as string | undefined) ?? profile.mode;
  const outDir = values.out ? resolve(values.out as string) : defaultOut();
  const givenDir = values["data-dir"] as string | undefined;
  // Both directories are checked before anything runs: a bad one (under /proc, say, where a
  // recursive mkdir loops) is a coded error now, not a spin or a failure after the whole run.
  try {
    if (givenDir) ensureWritableDir(givenDir, "bench");
    ensureWritableDir(outDir, "bench");
  } catch (error) {
    io.stderr(`dgent bench: ${message(error)} [${(error as { code?: string }).code ?? "DGENT_DATA_DIR_UNWRITABLE"}]\n`);
    return 1;
  }
  const dataDir = mkdtempSync(join(givenDir ?? tmpdir(), "dgent-bench-"));
  const loadBefore = loadavg();
  const startedAt = new Date();
  const t0 = Date.now();
  const steps = tiers.length + (withHooks ? 2 : 0) + (withScaling ? SCALING_TIERS.length : 0) + queryTiers.length + concurrencyTiers.length;
  const progress = new Progress((s) => io.stderr(s), io.stderrIsTTY ?? process.stderr.isTTY === true, steps);

  const results: TierResult[] = [];
  const hooks: TierResult[] = [];
  const scaling: ScalingResult[] = [];
  const queries: QueriesResult[] = [];
  const concurrency: ConcurrencyResult[] = [];
  const floorSamples: number[] = [];
  const postgres = sharedPostgres(env);
  const redis = sharedRedis(env);
  const children = new WriterProcesses();
  try {
    const prefill = makePrefill(profile.prefill);
    const objectPrefill = makePrefill(profile.objectStorePrefill);
    const durable = tiers.filter((t) => t === "jsonl-group" || t === "jsonl-fsync");
    for (const tier of tiers) {
      progress.step(tier);
      if (tier === durable[0]) floorSamples.push(...fsyncFloor(dataDir, Math.ceil(profile.fsyncSamples / 2)));
      let setup: TierSetup;
      try {
        setup = await setUp(tier, dataDir, { postgres: postgres.get, redis: redis.get }, withPeers);
      } catch (error) {
        results.push(failedTier(tier, tier, error));
        progress.log(`  ${tier}: not measured: ${message(error)}`);
        continue;
      }
      progress.log(`  ${tier}: ${setup.contenders.map((c) => c.name).join(", ")}${setup.skipped?.length ? ` (not run: ${setup.skipped.map((s) => s.name).join(", ")})` : ""}`);
      // Redis is a server over TCP like Postgres: its sampling plan.
      const kind = tier === "postgres" || tier === "redis" ? "postgres" : tier === "s3" || tier === "gcs" ? "object" : "local";
      const r = await runTier(setup, { prefill: kind === "object" ? objectPrefill : prefill, plan: (op) => profile.plan(kind, op), progress }).catch((error: unknown) => failedTier(tier, setup.label, error));
      results.push(r);
      progress.log(summaryLine(r));
      if (tier === durable[durable.length - 1]) floorSamples.push(...fsyncFloor(dataDir, Math.floor(profile.fsyncSamples / 2)));
    }
    if (withHooks) {
      const ops: OpName[] = ["put", "get", "list"];
      for (const tier of ["memory", "sqlite"] as const) {
        progress.step(`hook overhead on ${tier}: 0, 1, 5 plugins`);
        const setup = hooksTier(tier, dataDir);
        const r = await runTier(setup, { prefill, plan: (op) => profile.plan("local", op), progress, ops }).catch((error: unknown) => failedTier(setup.tier, setup.label, error));
        hooks.push(r);
        progress.log(summaryLine(r));
      }
    }
    if (withScaling) {
      for (const tier of SCALING_TIERS) {
        progress.step(`scaling ${tier}: ${profile.scaling.map((n) => n.toLocaleString("en")).join(" vs ")} datums`);
        try {
          const s = await runScaling(tier, profile.scaling, dataDir, profile.plan("local", "get"), progress);
          scaling.push(s);
          progress.log(`  ${tier}: get ${s.get.ratio.toFixed(2)}×, list ${s.list.ratio.toFixed(2)}× at ${profile.scaling[1].toLocaleString("en")} vs ${profile.scaling[0].toLocaleString("en")}`);
        } catch (error) {
          progress.log(`  scaling ${tier}: ${message(error)}`);
          scaling.push(failedScaling(tier, profile.scaling, error));
        }
      }
    }
    for (const tier of queryTiers) {
      progress.step(`queries ${tier}: filtered list(100) at ${profile.queries.map((n) => n.toLocaleString("en")).join(" and ")} datums, chain tails`);
      try {
        const q = await runQueries(tier, { sizes: profile.queries, dir: dataDir, postgres: postgres.get, withPeers, plan: (kind) => profile.plan(kind, "get"), progress });
        queries.push(q);
        progress.log(queriesLine(q));
      } catch (error) {
        progress.log(`  queries ${tier}: not measured: ${message(error)}`);
        queries.push(failedQueries(tier, profile.queries, error));
      }
    }
    for (const tier of concurrencyTiers) {
      const c = profile.concurrency;
      const levels = tier === "s3" ? c.objectLevels : c.levels;
      progress.step(`concurrency ${tier}: put and get at ${levels.join(", ")} callers${tier === "memory" || tier === "jsonl" || tier === "s3" ? "" : ` and ${c.processes} processes × ${c.callersPerProcess}`}`);
      try {
        const r = await runConcurrency(tier, { plan: c, dir: dataDir, postgres: postgres.get, redis: redis.get, children, withPeers, progress });
        concurrency.push(r);
        progress.log(concurrencyLine(r));
      } catch (error) {
        progress.log(`  concurrency ${tier}: not measured: ${message(error)}`);
        concurrency.push(failedConcurrency(tier, error));
      }
    }
  } finally {
    progress.done();
    await children.close();
    await redis.close().catch((error: unknown) => io.stderr(`dgent bench: stopping Redis failed: ${message(error)}\n`));
    await postgres.close().catch((error: unknown) => io.stderr(`dgent bench: stopping Postgres failed: ${message(error)}\n`));
    rmSync(dataDir, { recursive: true, force: true });
  }

  const fsyncStats: Stats | null = floorSamples.length ? summarize(floorSamples) : null;
  const base = { tiers: results, fsyncFloor: fsyncStats, scaling, queries, concurrency, mode: profile.mode, scalingSizes: profile.scaling, querySizes: profile.queries };
  const rows = only === "concurrency" ? verdict(base).filter((r) => CONCURRENCY_GOALS.has(r.id)) : verdict(base);
  const report: BenchResults = {
    schema: RESULTS_SCHEMA,
    name,
    mode: profile.mode,
    command: `${io.command ?? "dgent bench"}${argv.length ? ` ${argv.join(" ")}` : ""}`,
    startedAt: startedAt.toISOString(),
    durationS: (Date.now() - t0) / 1000,
    machine: machine((values.machine as string | undefined) ?? null, loadBefore),
    config: {
      contentBytes: CONTENT_BYTES,
      tags: TAGS,
      chainDepth: CHAIN_DEPTH,
      listLimit: LIST_LIMIT,
      batch: BATCH,
      prefill: profile.prefill,
      objectStorePrefill: profile.objectStorePrefill,
      scaling: profile.scaling,
      peers: withPeers,
      queries: profile.queries,
      ...(concurrencyTiers.length ? { concurrency: profile.concurrency } : {}),
    },
    tiers: results,
    fsyncFloor: fsyncStats,
    hooks,
    scaling,
    queries,
    concurrency,
    verdict: rows,
    summary: summarizeVerdict(rows),
  };
  mkdirSync(outDir, { recursive: true });
  const markdown = markdownReport(report);
  writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, `${name}.md`), markdown);
  writeFileSync(join(outDir, `${name}.svg`), chartSvg(report));
  io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : markdown);
  io.stderr(`dgent bench: ${report.summary.pass} pass, ${report.summary.miss} miss, ${report.summary.notMeasured} not measured; wrote ${join(outDir, name)}.{json,md,svg} in ${report.durationS.toFixed(0)} s\n`);
  const measured = results.some((r) => !r.error && r.ops.length > 0) || concurrency.some((r) => !r.error && r.rows.length > 0);
  return measured || (results.length === 0 && concurrency.length === 0) ? 0 : 1;
}

/** `--render`: the Markdown and the chart again, from a results JSON (after a change to either). */
function render(file: string, io: BenchIo): number {
  let report: BenchResults;
  try {
    report = JSON.parse(readFileSync(file, "utf8")) as BenchResults;
    if (report.schema !== RESULTS_SCHEMA) throw new Error(`not a ${RESULTS_SCHEMA} file (schema ${JSON.stringify(report.schema)})`);
  } catch (error) {
    io.stderr(`dgent bench: cannot render ${file}: ${message(error)}\n`);
    return 1;
  }
  const base = file.replace(/\.json$/, "");
  const markdown = markdownReport(report);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.svg`, chartSvg(report));
  io.stdout(markdown);
  io.stderr(`dgent bench: wrote ${base}.{md,svg}\n`);
  return 0;
}

async function setUp(tier: TierName, dir: string, servers: { postgres: () => Promise<PostgresServer>; redis: () => Promise<RedisServerHandle> }, withPeers: boolean): Promise<TierSetup> {
  switch (tier) {
    case "memory":
      return memoryTier(withPeers);
    case "memory-zero-copy":
      return memoryZeroCopyTier(withPeers);
    case "jsonl-none":
      return jsonlTier(dir, "none", withPeers);
    case "jsonl-group":
      return jsonlTier(dir, "group", false);
    case "jsonl-fsync":
      return jsonlTier(dir, "fsync", false);
    case "sqlite":
      return sqliteTier(dir, withPeers);
    case "postgres":
      return postgresTier(servers.postgres, withPeers);
    case "redis":
      return redisTier(servers.redis, withPeers);
    case "s3":
      return s3Tier();
    case "gcs":
      return gcsTier();
  }
}

function summaryLine(r: TierResult): string {
  if (r.error) return `  ${r.tier}: not measured: ${r.error}`;
  const dgent = r.contenders.find((c) => c.kind === "dgent")?.name;
  const parts = r.ops.map((o) => {
    const s = dgent ? o.stats[dgent] : undefined;
    if (!s) return `${o.op} ${o.error ? "error" : "–"}`;
    const p50 = s.p50 < 10 ? s.p50.toFixed(2) : s.p50 < 1000 ? s.p50.toFixed(1) : (s.p50 / 1000).toFixed(2) + "m";
    return `${o.op} ${p50}${o.ratioRaw !== null ? ` (${o.ratioRaw.toFixed(2)}× raw)` : ""}`;
  });
  return `  ${r.tier}: p50 µs ${parts.join(", ")}`;
}

function queriesLine(q: QueriesResult): string {
  const f = q.figures;
  const p50 = (s: Stats | null) => (s === null ? "–" : s.p50 < 1000 ? `${s.p50.toFixed(0)} µs` : `${(s.p50 / 1000).toFixed(2)} ms`);
  const x = (r: number | null) => (r === null ? "–" : `${r.toFixed(2)}×`);
  return `  queries ${q.tier}: filtered list(100) at ${q.sizes[1].toLocaleString("en")} p50 ${p50(f.filtered)} (${x(f.filteredRaw)} raw, ${x(f.filteredScaling)} of ${q.sizes[0].toLocaleString("en")}), ids ${p50(f.ids)}, chain tail ${x(f.chainTail)}${f.bestPeer ? `, ${x(f.peerRatio)} ${f.bestPeer}` : ""}`;
}

function concurrencyLine(r: ConcurrencyResult): string {
  if (r.error) return `  concurrency ${r.tier}: not measured: ${r.error}`;
  const rate = (x: number) => (x >= 1e5 ? `${(x / 1e6).toFixed(2)}M` : x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
  const parts = r.rows.map((row) => {
    const d = row.cells.find((c) => c.kind === "dgent");
    return `${row.op} ${row.processes > 1 ? `${row.processes}p` : row.callers} ${d && !d.error ? `${rate(d.opsPerSec)}/s` : "error"}${row.throughputRaw !== null ? ` (${row.throughputRaw.toFixed(2)}× raw)` : ""}`;
  });
  return `  concurrency ${r.tier}: ${parts.join(", ")}`;
}

function failedScaling(tier: string, sizes: readonly [number, number], error: unknown): ScalingResult {
  const none = summarize([0]);
  return { tier, sizes, fillMs: [0, 0], get: { small: none, large: none, ratio: NaN }, list: { small: none, large: none, ratio: NaN }, error: message(error) };
}
