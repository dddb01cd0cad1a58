/**
 * The verdict: every target the benchmark reports against, as rows that pass or miss. Two
 * sources: the seed's loose per-tier latencies (`001`: memory ~1 µs, file ~1 ms, SQL ~10 ms,
 * Redis ~1–5 ms), applied to the point operations put and get; and the issue's goals (p50,
 * non-durable modes unless named). Ratios are dgent p50 ÷ the other's p50.
 */
import type { OpName } from "./contender.js";
import { formatUs, type Stats } from "./measure.js";
import { CHAIN_TAIL, longChainFor } from "./queries.js";
import type { BenchResults, ConcurrencyCell, ConcurrencyRow, OpResult, QueriesResult, QueryFigures, ScalingResult, TierResult, VerdictRow } from "./results.js";

type Input = Pick<BenchResults, "tiers" | "fsyncFloor" | "scaling" | "queries" | "concurrency" | "mode"> & {
  readonly scalingSizes: readonly [number, number];
  readonly querySizes?: readonly [number, number];
};

/** The queries part's tiers and, for SQL, the p50 limit of a filtered list(100) at the large size (issue 14). */
const QUERY_GOALS: ReadonlyArray<{ tier: string; p50Us: number | null }> = [
  { tier: "memory", p50Us: null },
  { tier: "jsonl-none", p50Us: null },
  { tier: "sqlite", p50Us: 2000 },
  { tier: "postgres", p50Us: 5000 },
];

function opOf(tiers: readonly TierResult[], tier: string, op: OpName): { t: TierResult; o: OpResult } | null {
  const t = tiers.find((x) => x.tier === tier);
  const o = t?.ops.find((x) => x.op === op);
  return t && o && !o.error ? { t, o } : null;
}

function dgentStats(r: { t: TierResult; o: OpResult } | null): Stats | null {
  if (r === null) return null;
  const name = r.t.contenders.find((c) => c.kind === "dgent")?.name;
  return name ? (r.o.stats[name] ?? null) : null;
}

function whyMissing(tiers: readonly TierResult[], tier: string, op: OpName): string {
  const t = tiers.find((x) => x.tier === tier);
  if (!t) return `tier ${tier} was not run`;
  if (t.error) return `tier ${tier} could not run: ${t.error}`;
  const o = t.ops.find((x) => x.op === op);
  if (!o) return `${op} was not measured on ${tier}`;
  return o.error ? `${op} failed: ${o.error}` : "not measured";
}

const us = (x: number) => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));

export function verdict(input: Input): VerdictRow[] {
  const rows: VerdictRow[] = [];
  const { tiers } = input;
  const quick = input.mode === "quick" ? " (quick run: indicative only)" : "";

  const latency = (source: "seed" | "goal", id: string, title: string, tier: string, op: OpName, limitUs: number) => {
    const s = dgentStats(opOf(tiers, tier, op));
    rows.push({
      id,
      source,
      title,
      tier,
      op,
      unit: "µs",
      value: s?.p50 ?? null,
      limit: limitUs,
      pass: s ? s.p50 <= limitUs : null,
      detail: s ? `p50 ${us(s.p50)} µs (p99 ${us(s.p99)} µs), limit ${us(limitUs)} µs${quick}` : whyMissing(tiers, tier, op),
    });
  };
  const ratioRaw = (id: string, title: string, tier: string, op: OpName, limit: number) => {
    const r = opOf(tiers, tier, op);
    const value = r?.o.ratioRaw ?? null;
    rows.push({
      id,
      source: "goal",
      title,
      tier,
      op,
      unit: "×",
      value,
      limit,
      pass: value === null ? null : value <= limit,
      detail: value === null ? whyMissing(tiers, tier, op) : `dgent ÷ ${r?.o.raw} = ${value.toFixed(2)}×, limit ${limit}×${quick}`,
    });
  };

  // ---- the seed's targets (point operations) ----
  latency("seed", "seed.memory.put", "memory put ~1 µs (seed)", "memory", "put", 1);
  latency("seed", "seed.memory.get", "memory get ~1 µs (seed)", "memory", "get", 1);
  for (const mode of ["none", "group", "fsync"]) latency("seed", `seed.jsonl-${mode}.put`, `file put ~1 ms (seed), jsonl "${mode}"`, `jsonl-${mode}`, "put", 1000);
  latency("seed", "seed.jsonl.get", "file get ~1 ms (seed)", "jsonl-none", "get", 1000);
  for (const tier of ["sqlite", "postgres"]) {
    latency("seed", `seed.${tier}.put`, `SQL put ~10 ms (seed), ${tier}`, tier, "put", 10_000);
    latency("seed", `seed.${tier}.get`, `SQL get ~10 ms (seed), ${tier}`, tier, "get", 10_000);
  }
  latency("seed", "seed.redis.put", "Redis put ~1–5 ms (seed)", "redis", "put", 5000);
  latency("seed", "seed.redis.get", "Redis get ~1–5 ms (seed)", "redis", "get", 5000);

  // ---- the issue's goals ----
  ratioRaw("goal.memory.put.raw", "memory put ≤ 2 × raw", "memory", "put", 2);
  ratioRaw("goal.memory.get.raw", "memory get ≤ 2 × raw", "memory", "get", 2);
  ratioRaw("goal.memory-zero-copy.put.raw", "memory put ≤ 2 × raw (copy: false)", "memory-zero-copy", "put", 2);
  ratioRaw("goal.memory-zero-copy.get.raw", "memory get ≤ 2 × raw (copy: false)", "memory-zero-copy", "get", 2);
  for (const tier of ["sqlite", "postgres", "redis"]) {
    ratioRaw(`goal.${tier}.put.raw`, `${tier} put ≤ 1.3 × raw`, tier, "put", 1.3);
    ratioRaw(`goal.${tier}.get.raw`, `${tier} get ≤ 1.3 × raw`, tier, "get", 1.3);
  }
  // Refs and transactions (issue 13), measured in the tier's probe (benchmarks/tiers/refs.ts).
  const refRow = (id: string, title: string, tier: string, op: string, limit: number, pick: (refs: Record<string, unknown>) => { value: number; detail: string } | null) => {
    const t = tiers.find((x) => x.tier === tier);
    const refs = t?.probe?.refs as Record<string, unknown> | undefined;
    const got = refs ? pick(refs) : null;
    rows.push({
      id,
      source: "goal",
      title,
      tier,
      op,
      unit: "×",
      value: got?.value ?? null,
      limit,
      pass: got ? got.value <= limit : null,
      detail: got ? `${got.detail}${quick}` : !t ? `tier ${tier} was not run` : t.error ? `tier ${tier} could not run: ${t.error}` : `refs were not measured${t.probe?.error ? `: ${String(t.probe.error)}` : ""}`,
    });
  };
  for (const tier of ["sqlite", "postgres"]) {
    for (const [op, what] of [["cas", "ref compare-and-set"], ["tx3", "3-op transaction"]] as const) {
      refRow(`goal.${tier}.${op === "cas" ? "refCas" : "tx3"}.raw`, `${tier} ${what} ≤ 1.3 × raw`, tier, op === "cas" ? "refCas" : "tx3", 1.3, (refs) => {
        const c = refs[op] as { ratioRaw: number; raw: string; stats: Record<string, Stats> } | undefined;
        if (!c) return null;
        const others = Object.entries(c.stats).map(([name, s]) => `${name} ${us(s.p50)} µs`).join(", ");
        return { value: c.ratioRaw, detail: `dgent ÷ ${c.raw} = ${c.ratioRaw.toFixed(2)}× (p50: ${others})` };
      });
    }
  }
  refRow("goal.postgres.refCas.concurrent", "postgres compare-and-set throughput, 16 callers ≥ 0.8 × raw (raw ÷ dgent ≤ 1.25)", "postgres", "refCas", 1.25, (refs) => {
    const c = refs.concurrent as { opsPerSec: Record<string, number>; rawOverDgent: number; callers: number } | undefined;
    if (!c) return null;
    const rates = Object.entries(c.opsPerSec).map(([name, v]) => `${name} ${v.toFixed(0)}/s`).join(", ");
    return { value: c.rawOverDgent, detail: `${c.callers} callers: ${rates}; dgent = ${(1 / c.rawOverDgent).toFixed(2)} × raw` };
  });

  for (const t of tiers) {
    for (const o of t.ops) {
      if (o.bestPeer === null || o.ratioBestPeer === null) continue;
      const slower = Object.entries(o.stats)
        .filter(([name]) => t.contenders.find((c) => c.name === name)?.kind === "peer")
        .map(([name, s]) => `${name} ${us(s.p50)} µs`)
        .join(", ");
      rows.push({
        id: `goal.${t.tier}.${o.op}.peers`,
        source: "goal",
        title: `${t.tier} ${o.op}: ahead of every peer`,
        tier: t.tier,
        op: o.op,
        unit: "×",
        value: o.ratioBestPeer,
        limit: 1,
        pass: o.ratioBestPeer <= 1,
        detail: `dgent ÷ best peer (${o.bestPeer}) = ${o.ratioBestPeer.toFixed(2)}×; peers: ${slower}${quick}`,
      });
    }
  }

  latency("goal", "goal.memory.get", "memory get ≤ 1 µs", "memory", "get", 1);
  latency("goal", "goal.memory.put", "memory put ≤ 1 µs", "memory", "put", 1);
  latency("goal", "goal.memory.list", "memory list(100) ≤ 20 µs", "memory", "list", 20);
  // The same goals on the zero-copy tier: what a caller that treats datums as immutable gets.
  latency("goal", "goal.memory-zero-copy.get", "memory get ≤ 1 µs (copy: false)", "memory-zero-copy", "get", 1);
  latency("goal", "goal.memory-zero-copy.put", "memory put ≤ 1 µs (copy: false)", "memory-zero-copy", "put", 1);
  latency("goal", "goal.memory-zero-copy.list", "memory list(100) ≤ 20 µs (copy: false)", "memory-zero-copy", "list", 20);
  latency("goal", "goal.jsonl.put", 'jsonl put ≤ 15 µs ("none")', "jsonl-none", "put", 15);
  latency("goal", "goal.jsonl.get", "jsonl get ≤ 10 µs", "jsonl-none", "get", 10);
  for (const mode of ["fsync", "group"]) {
    const s = dgentStats(opOf(tiers, `jsonl-${mode}`, "put"));
    const floor = input.fsyncFloor;
    const limit = floor ? 2 * floor.p50 : NaN;
    rows.push({
      id: `goal.jsonl-${mode}.put.fsync`,
      source: "goal",
      title: `jsonl durable put ≤ 2 × fsync floor ("${mode}")`,
      tier: `jsonl-${mode}`,
      op: "put",
      unit: "µs",
      value: s?.p50 ?? null,
      limit,
      pass: s && floor ? s.p50 <= limit : null,
      detail:
        s && floor
          ? `p50 ${us(s.p50)} µs = ${(s.p50 / floor.p50).toFixed(2)} × the fsync floor (p50 ${us(floor.p50)} µs)${quick}`
          : floor
            ? whyMissing(tiers, `jsonl-${mode}`, "put")
            : "the fsync floor was not measured",
    });
  }
  latency("goal", "goal.sqlite.put", "sqlite put ≤ 60 µs", "sqlite", "put", 60);
  latency("goal", "goal.sqlite.get", "sqlite get ≤ 15 µs", "sqlite", "get", 15);
  latency("goal", "goal.sqlite.list", "sqlite list(100) ≤ 1 ms", "sqlite", "list", 1000);
  latency("goal", "goal.sqlite.chain", "sqlite causalChain(10) ≤ 150 µs", "sqlite", "chain", 150);
  latency("goal", "goal.redis.list", "redis list(100) ≤ 2 ms", "redis", "list", 2000);
  latency("goal", "goal.postgres.put", "postgres put ≤ 0.45 ms", "postgres", "put", 450);
  latency("goal", "goal.postgres.get", "postgres get ≤ 0.25 ms", "postgres", "get", 250);
  latency("goal", "goal.postgres.chain", "postgres causalChain(10) ≤ 0.5 ms in one round trip", "postgres", "chain", 500);
  const chainRow = rows[rows.length - 1] as VerdictRow;
  const trips = (tiers.find((t) => t.tier === "postgres")?.probe?.roundTrips as Record<string, Record<string, number>> | undefined)?.dgent?.chain;
  if (chainRow.pass !== null) {
    rows[rows.length - 1] = {
      ...chainRow,
      pass: chainRow.pass && trips === 1,
      detail: `${chainRow.detail}; ${trips === undefined ? "round trips not counted" : `${trips} round trip${trips === 1 ? "" : "s"}`}`,
    };
  }

  for (const tier of ["memory", "jsonl-none", "sqlite"]) {
    const s: ScalingResult | undefined = input.scaling.find((x) => x.tier === tier);
    for (const op of ["get", "list"] as const) {
      const r = s && !s.error ? s[op] : null;
      const [small, large] = s?.sizes ?? input.scalingSizes;
      rows.push({
        id: `goal.${tier}.${op}.scaling`,
        source: "goal",
        title: `${tier} ${op === "list" ? "list(100)" : op} at ${large.toLocaleString("en")} ≤ 1.5 × at ${small.toLocaleString("en")}`,
        tier,
        op,
        unit: "×",
        value: r?.ratio ?? null,
        limit: 1.5,
        pass: r ? r.ratio <= 1.5 : null,
        detail: r
          ? `p50 ${us(r.small.p50)} µs → ${us(r.large.p50)} µs = ${r.ratio.toFixed(2)}×${s?.raw ? `; raw baseline ${s.raw[op].ratio.toFixed(2)}× (${us(s.raw[op].small.p50)} → ${us(s.raw[op].large.p50)} µs)` : ""}${quick}`
          : s?.error
            ? `failed: ${s.error}`
            : "scaling was not run",
      });
    }
  }
  rows.push(...queryRows(input, quick));
  rows.push(...concurrencyRows(input, quick));
  return rows;
}

/** The verdict rows of the concurrency part (what `--only concurrency` reports). */
export const CONCURRENCY_GOALS: ReadonlySet<string> = new Set([
  "goal.postgres.put.c16.raw",
  "goal.postgres.put.c64.raw",
  "goal.postgres.put.c1.raw",
  "goal.postgres.get.c1.raw",
  "goal.jsonl-group.put.c16.scale",
  "goal.jsonl-group.put.c1.fsync",
  "goal.sqlite.put.processes.raw",
]);

/** Issue 23: throughput under concurrent callers and processes, against the raw driver in the same run. */
function concurrencyRows(input: Input, quick: string): VerdictRow[] {
  const rows: VerdictRow[] = [];
  const find = (tier: string, op: "put" | "get", callers: number, processes: number) => {
    const r = input.concurrency?.find((x) => x.tier === tier);
    const row = r?.rows.find((x) => x.op === op && x.callers === callers && x.processes === processes);
    const why = !r ? "the concurrency part was not run on this tier" : r.error ? `failed: ${r.error}` : !row ? `${op} at ${callers} callers${processes > 1 ? ` in ${processes} processes` : ""} was not measured` : null;
    return { row: row ?? null, why };
  };
  const cell = (row: ConcurrencyRow | null, kind: "dgent" | "raw"): ConcurrencyCell | null => {
    const c = row?.cells.find((x) => x.kind === kind && (kind !== "dgent" || x.contender === "dgent")) ?? null;
    return c && !c.error ? c : null;
  };
  const rate = (c: ConcurrencyCell) => `${c.opsPerSec.toFixed(0)}/s`;
  const push = (id: string, title: string, tier: string, op: string, unit: "µs" | "×", limit: number, atLeast: boolean, got: { value: number; detail: string } | null, why: string | null) => {
    rows.push({
      id,
      source: "goal",
      title,
      tier,
      op,
      unit,
      value: got?.value ?? null,
      limit,
      pass: got ? (atLeast ? got.value >= limit : got.value <= limit) : null,
      detail: got ? `${got.detail}${quick}` : (why ?? "not measured"),
      ...(atLeast ? { atLeast: true as const } : {}),
    });
  };
  /** dgent ÷ raw throughput at one level (≥ limit passes). */
  const throughput = (id: string, title: string, tier: string, op: "put" | "get", callers: number, processes: number, limit: number) => {
    const { row, why } = find(tier, op, callers, processes);
    const d = cell(row, "dgent");
    const r = cell(row, "raw");
    push(id, title, tier, op, "×", limit, true, d && r ? { value: d.opsPerSec / r.opsPerSec, detail: `dgent ${rate(d)} ÷ ${r.contender} ${rate(r)} = ${(d.opsPerSec / r.opsPerSec).toFixed(2)}×, limit ${limit}×` } : null, why ?? (row ? "dgent or raw failed" : null));
  };
  /** dgent p50 ÷ raw p50 with one caller (≤ limit passes). */
  const single = (id: string, title: string, tier: string, op: "put" | "get", limit: number) => {
    const { row, why } = find(tier, op, 1, 1);
    const d = cell(row, "dgent");
    const r = cell(row, "raw");
    push(id, title, tier, op, "×", limit, false, d && r ? { value: d.p50 / r.p50, detail: `p50 ${us(d.p50)} µs ÷ ${r.contender} ${us(r.p50)} µs = ${(d.p50 / r.p50).toFixed(2)}× (throughput ${rate(d)} vs ${rate(r)}), limit ${limit}×` } : null, why ?? (row ? "dgent or raw failed" : null));
  };
  throughput("goal.postgres.put.c16.raw", "postgres put, 16 callers: ≥ 0.9 × raw pg.Pool throughput (notifications on)", "postgres", "put", 16, 1, 0.9);
  throughput("goal.postgres.put.c64.raw", "postgres put, 64 callers: ≥ 0.9 × raw pg.Pool throughput (notifications on)", "postgres", "put", 64, 1, 0.9);
  single("goal.postgres.put.c1.raw", "postgres put, 1 caller (concurrency part) ≤ 1.2 × raw", "postgres", "put", 1.2);
  single("goal.postgres.get.c1.raw", "postgres get, 1 caller (concurrency part) ≤ 1.1 × raw", "postgres", "get", 1.1);
  {
    const one = find("jsonl", "put", 1, 1);
    const sixteen = find("jsonl", "put", 16, 1);
    const a = cell(one.row, "dgent");
    const b = cell(sixteen.row, "dgent");
    push(
      "goal.jsonl-group.put.c16.scale",
      'jsonl durable put ("group"), 16 callers: ≥ 8 × the throughput of 1',
      "jsonl-group",
      "put",
      "×",
      8,
      true,
      a && b ? { value: b.opsPerSec / a.opsPerSec, detail: `${rate(b)} at 16 callers ÷ ${rate(a)} at 1 = ${(b.opsPerSec / a.opsPerSec).toFixed(2)}× (p50 ${us(b.p50)} µs at 16)` } : null,
      one.why ?? sixteen.why ?? "dgent failed",
    );
    const floor = input.concurrency?.find((x) => x.tier === "jsonl")?.fsyncFloor ?? null;
    push(
      "goal.jsonl-group.put.c1.fsync",
      'jsonl durable put ("group"), 1 caller (concurrency part): p50 ≤ 2 × the fsync floor',
      "jsonl-group",
      "put",
      "µs",
      floor ? 2 * floor.p50 : NaN,
      false,
      a && floor ? { value: a.p50, detail: `p50 ${us(a.p50)} µs = ${(a.p50 / floor.p50).toFixed(2)} × the fsync floor (p50 ${us(floor.p50)} µs, measured before and after the part's JSONL rows)` } : null,
      one.why ?? (floor ? "dgent failed" : "the fsync floor was not measured"),
    );
  }
  const p = input.concurrency?.find((x) => x.tier === "sqlite")?.rows.find((x) => x.processes > 1);
  throughput("goal.sqlite.put.processes.raw", `sqlite put, ${p?.processes ?? 4} writer processes: ≥ 0.9 × raw better-sqlite3 throughput`, "sqlite", "put", p?.callers ?? 16, p?.processes ?? 4, 0.9);
  return rows;
}

/** Issue 14: filtered list(100), its projection to ids, scaling 10k → 1M, chain tails, peers. */
function queryRows(input: Input, quick: string): VerdictRow[] {
  const rows: VerdictRow[] = [];
  const [small, large] = input.querySizes ?? [10_000, 1_000_000];
  const n = (x: number) => x.toLocaleString("en");
  for (const { tier, p50Us } of QUERY_GOALS) {
    const q: QueriesResult | undefined = input.queries?.find((x) => x.tier === tier);
    const why = !q ? "the queries part was not run on this tier" : q.error ? `failed: ${q.error}` : null;
    const row = (id: string, title: string, unit: "µs" | "×", limit: number, pick: (f: QueryFigures, q: QueriesResult) => { value: number; detail: string } | null) => {
      const got = q && !q.error ? pick(q.figures, q) : null;
      rows.push({
        id,
        source: "goal",
        title,
        tier,
        op: "query",
        unit,
        value: got?.value ?? null,
        limit,
        pass: got ? got.value <= limit : null,
        detail: got ? `${got.detail}${quick}` : (why ?? "not measured (see the queries part)"),
      });
    };
    const stat = (s: Stats | null) => (s ? `p50 ${formatUs(s.p50)}, p95 ${formatUs(s.p95)}` : "");
    if (p50Us !== null) {
      row(`goal.${tier}.query`, `${tier} filtered list(100) at ${n(large)} ≤ ${p50Us / 1000} ms p50`, "µs", p50Us, (f) => (f.filtered ? { value: f.filtered.p50, detail: `${stat(f.filtered)}, limit ${formatUs(p50Us)}` } : null));
      row(`goal.${tier}.query.raw`, `${tier} filtered list(100) at ${n(large)} ≤ 1.5 × raw`, "×", 1.5, (f, r) =>
        f.filteredRaw === null ? null : { value: f.filteredRaw, detail: `dgent ÷ ${r.contenders.find((c) => c.kind === "raw")?.name ?? "raw"} = ${f.filteredRaw.toFixed(2)}×` },
      );
      row(`goal.${tier}.queryIds.raw`, `${tier} filtered list(100), ids only, at ${n(large)} ≤ 1.5 × raw`, "×", 1.5, (f, r) =>
        f.idsRaw === null ? null : { value: f.idsRaw, detail: `${stat(f.ids)}; dgent ÷ ${r.contenders.find((c) => c.kind === "raw")?.name ?? "raw"} = ${f.idsRaw.toFixed(2)}×` },
      );
    }
    row(`goal.${tier}.query.scaling`, `${tier} filtered list(100) at ${n(large)} ≤ 1.5 × at ${n(small)}`, "×", 1.5, (f) =>
      f.filteredScaling === null
        ? null
        : {
            value: f.filteredScaling,
            detail: `${f.filteredScaling.toFixed(2)}× (ids only ${f.idsScaling?.toFixed(2) ?? "–"}×)${f.rawFilteredScaling !== null ? `; raw driver ${f.rawFilteredScaling.toFixed(2)}×` : ""}`,
          },
    );
    row(`goal.${tier}.chainTail`, `${tier} chain tail ${CHAIN_TAIL}: ${n(longChainFor(large))}-long ≤ 2 × ${CHAIN_TAIL}-long`, "×", 2, (f, r) =>
      f.chainTail === null ? null : { value: f.chainTail, detail: `${n(r.chains[1])}-long ÷ ${n(r.chains[0])}-long = ${f.chainTail.toFixed(2)}×${f.rawChainTail !== null ? `; raw driver ${f.rawChainTail.toFixed(2)}×` : ""}` },
    );
    if (q && !q.error && q.figures.peerRatio !== null) {
      row(`goal.${tier}.query.peers`, `${tier} filtered list(100): ahead of every peer (at ${n(q.peerSize ?? small)})`, "×", 1, (f) =>
        f.peerRatio === null ? null : { value: f.peerRatio, detail: `dgent ÷ best peer (${f.bestPeer}) = ${f.peerRatio.toFixed(2)}× at ${n(q.peerSize ?? small)} datums` },
      );
    }
  }
  return rows;
}

export function summarizeVerdict(rows: readonly VerdictRow[]): { pass: number; miss: number; notMeasured: number } {
  return {
    pass: rows.filter((r) => r.pass === true).length,
    miss: rows.filter((r) => r.pass === false).length,
    notMeasured: rows.filter((r) => r.pass === null).length,
  };
}
