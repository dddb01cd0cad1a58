import type { Datum } from "../core/datum.js";
import { hasOp, type Contender, type OpName, type TierSetup } from "./contender.js";
import { compare, timed, type SamplePlan, type Stats, type Subject } from "./measure.js";
import type { Progress } from "./progress.js";
import type { OpResult, TierResult } from "./results.js";
import { CHAIN_DEPTH, LIST_LIMIT, checkDatum, checkList, cycling, freshBatches, freshDatums, type Prefill } from "./workload.js";

/** Reads first, on exactly the prefill; writes after, since they grow the stores. */
export const OP_ORDER: readonly OpName[] = ["get", "list", "chain", "put", "putMany"];

function subjectFor(c: Contender, op: OpName, prefill: Prefill): Subject<unknown> {
  switch (op) {
    case "get": {
      const fn = c.get as (id: string) => unknown;
      return { name: c.name, args: cycling(prefill.getIds), run: (id) => fn(id as string) };
    }
    case "chain": {
      const fn = c.chain as (id: string) => unknown;
      return { name: c.name, args: cycling(prefill.chainEnds), run: (id) => fn(id as string) };
    }
    case "list": {
      const fn = c.list as (limit: number) => unknown;
      return { name: c.name, args: (n) => new Array<number>(n).fill(LIST_LIMIT), run: (limit) => fn(limit as number) };
    }
    case "put": {
      const fn = c.put as (d: Datum) => unknown;
      return { name: c.name, args: freshDatums, run: (d) => fn(d as Datum) };
    }
    case "putMany": {
      const fn = c.putMany as (ds: Datum[]) => unknown;
      return { name: c.name, args: freshBatches, run: (ds) => fn(ds as Datum[]) };
    }
  }
}

/** Fails loudly when a contender does not return real data: the benchmark measures work. */
async function verify(c: Contender, prefill: Prefill): Promise<void> {
  const first = prefill.getIds[0] as string;
  if (c.get) checkDatum(await c.get(first), `${c.name}: get`);
  if (c.list && prefill.datums.length >= LIST_LIMIT) checkList(await c.list(LIST_LIMIT), LIST_LIMIT, `${c.name}: list(${LIST_LIMIT})`);
  if (c.chain && prefill.chainEnds.length > 0) checkList(await c.chain(prefill.chainEnds[0] as string), CHAIN_DEPTH, `${c.name}: causalChain`);
}

function ratios(op: OpName, stats: Record<string, Stats>, contenders: readonly Contender[]): Omit<OpResult, "op" | "stats"> {
  const dgent = contenders.find((c) => c.kind === "dgent" && stats[c.name]);
  const raw = contenders.find((c) => c.kind === "raw" && stats[c.name]);
  const peers = contenders.filter((c) => c.kind === "peer" && stats[c.name]);
  let best: Contender | null = null;
  for (const p of peers) if (best === null || (stats[p.name] as Stats).p50 < (stats[best.name] as Stats).p50) best = p;
  const d = dgent ? (stats[dgent.name] as Stats).p50 : null;
  void op;
  return {
    raw: raw?.name ?? null,
    ratioRaw: d !== null && raw ? d / (stats[raw.name] as Stats).p50 : null,
    bestPeer: best?.name ?? null,
    ratioBestPeer: d !== null && best ? d / (stats[best.name] as Stats).p50 : null,
  };
}

export interface TierRunOptions {
  readonly prefill: Prefill;
  readonly plan: (op: OpName) => SamplePlan;
  readonly progress: Progress;
  readonly ops?: readonly OpName[];
}

/** Prefills, verifies and measures one tier; closes its contenders and disposes of it. */
export async function runTier(setup: TierSetup, options: TierRunOptions): Promise<TierResult> {
  const { prefill, progress } = options;
  const prefillMs: Record<string, number> = {};
  const ops: OpResult[] = [];
  let probe: Record<string, unknown> | undefined;
  try {
    progress.update(`prefill ${prefill.datums.length} datums`, 0);
    for (const c of setup.contenders) {
      progress.update(`prefill ${prefill.datums.length} datums: ${c.name}`, 0);
      prefillMs[c.name] = (await timed(() => c.prefill(prefill.datums))).ms;
      await verify(c, prefill);
    }
    // Facts measured once (round trips, requests per call), before the timed writes; its own
    // writes are far older than the prefill, so the lists measured below do not change.
    if (setup.probe) {
      try {
        probe = await setup.probe({ get: prefill.getIds[0] as string, chain: prefill.chainEnds[0] as string }, options.plan);
      } catch (error) {
        probe = { error: message(error) };
      }
    }
    const wanted = options.ops ?? OP_ORDER;
    for (const op of OP_ORDER.filter((o) => wanted.includes(o))) {
      const contenders = setup.contenders.filter((c) => hasOp(c, op));
      if (contenders.length === 0) continue;
      const subjects = contenders.map((c) => subjectFor(c, op, prefill));
      try {
        const measured = await compare(subjects, options.plan(op), (done, total, who) => progress.update(`${op}: ${who}`, (OP_ORDER.indexOf(op) + done / total) / OP_ORDER.length));
        const stats: Record<string, Stats> = {};
        for (const [name, s] of measured) stats[name] = s;
        ops.push({ op, stats, ...ratios(op, stats, contenders) });
      } catch (error) {
        ops.push({ op, stats: {}, raw: null, ratioRaw: null, bestPeer: null, ratioBestPeer: null, error: message(error) });
        progress.log(`  ${setup.tier} ${op}: ${message(error)}`);
      }
    }
  } finally {
    for (const c of setup.contenders) await c.close().catch((error: unknown) => progress.log(`  ${setup.tier}: closing ${c.name} failed: ${message(error)}`));
    await setup.dispose();
  }
  return {
    tier: setup.tier,
    label: setup.label,
    prefill: prefill.datums.length,
    contenders: setup.contenders.map((c) => ({ name: c.name, kind: c.kind, description: c.description, ...(c.notes ? { notes: c.notes } : {}) })),
    skipped: setup.skipped ?? [],
    ops,
    prefillMs,
    ...(probe ? { probe } : {}),
  };
}

export function failedTier(tier: string, label: string, error: unknown): TierResult {
  return { tier, label, prefill: 0, contenders: [], skipped: [], ops: [], prefillMs: {}, error: message(error) };
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0] ?? String(error) : String(error);
}
