/**
 * Refs and transactions on a tier (issue 13), measured next to the raw driver doing the same:
 * - `cas`: one compare-and-set of a ref, expecting the version it was last set to. The raw
 *   baseline is the bare `UPDATE … WHERE name = $ AND version = $`; a second baseline also writes
 *   the reflog row dgent keeps (the same work, by hand).
 * - `tx3`: one transaction of three operations — two puts of fresh 1 KiB datums and a
 *   compare-and-set of a ref to the second — against a raw `BEGIN`, two inserts, the conditional
 *   `UPDATE`, `COMMIT`.
 * - `concurrent` (Postgres): compare-and-set throughput of 16 concurrent callers, each moving its
 *   own ref, dgent against raw, in alternating rounds.
 * Every call checks that it moved the ref (a failed compare-and-set throws), so nothing is
 * measured that did not do the work.
 */
import type { Datum } from "../../core/datum.js";
import type { Ref } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import { compare, type SamplePlan, type Stats } from "../measure.js";
import { freshDatums } from "../workload.js";

/** What one contender does for the refs case. Calls are sequential (the sampler awaits each). */
export interface RefOps {
  readonly name: string;
  cas(): unknown;
  tx3?(datums: readonly Datum[]): unknown;
}

export interface RefCase {
  readonly stats: Record<string, Stats>;
  /** dgent p50 ÷ the bare raw baseline's p50: the verdict (the goal is against this one). */
  readonly ratioRaw: number;
  readonly raw: string;
  /**
   * When a third contender does the bare work plus the reflog row dgent keeps (compare-and-set
   * only): dgent p50 ÷ its p50, and what that row costs the raw driver (its p50 ÷ the bare p50),
   * so a ratio the reflog explains shows as such.
   */
  readonly ratioLogged?: number;
  readonly logged?: string;
  readonly reflogCost?: number;
}

export interface RefsResult {
  readonly cas: RefCase;
  readonly tx3: RefCase;
}

/** dgent's side: `store.refs.set` with the version expected, and `store.transaction`. */
export async function dgentRefOps(store: Store, target: string): Promise<RefOps> {
  let cas: Ref = await store.refs.set("bench/cas", target);
  let tx: Ref = await store.refs.set("bench/tx", target);
  return {
    name: "dgent",
    cas: async () => {
      cas = await store.refs.set("bench/cas", target, { expect: { version: cas.version } });
    },
    tx3: async (ds) => {
      const [a, b] = ds as [Datum, Datum];
      const r = await store.transaction([
        { op: "put", datum: a },
        { op: "put", datum: b },
        { op: "setRef", name: "bench/tx", target: b.id, expect: { version: tx.version } },
      ]);
      tx = (r.results[2] as { ref: Ref }).ref;
    },
  };
}

/**
 * Measures `cas` and `tx3` of the contenders (dgent first, the bare raw baseline second, then
 * optionally the raw baseline that also writes the reflog row), interleaved.
 */
export async function measureRefs(contenders: readonly RefOps[], plan: SamplePlan): Promise<RefsResult> {
  const [dgent, raw, logged] = contenders as readonly [RefOps, RefOps, RefOps | undefined];
  const result = (stats: Map<string, Stats>): RefCase => {
    const p50 = (c: RefOps) => (stats.get(c.name) as Stats).p50;
    const withLog = logged !== undefined && stats.has(logged.name) ? { ratioLogged: p50(dgent) / p50(logged), logged: logged.name, reflogCost: p50(logged) / p50(raw) } : {};
    return { stats: Object.fromEntries(stats), ratioRaw: p50(dgent) / p50(raw), raw: raw.name, ...withLog };
  };
  const cas = await compare(
    contenders.map((c) => ({ name: c.name, args: (n: number) => new Array<number>(n).fill(0), run: () => c.cas() })),
    plan,
  );
  const tx3 = await compare(
    contenders
      .filter((c) => c.tx3)
      .map((c) => ({ name: c.name, args: (n: number) => Array.from({ length: n }, () => freshDatums(2)), run: (ds: unknown) => c.tx3?.(ds as Datum[]) })),
    plan,
  );
  return { cas: result(cas), tx3: result(tx3) };
}

export interface ConcurrentResult {
  readonly callers: number;
  /** Successful compare-and-sets per second, all callers together. */
  readonly opsPerSec: Record<string, number>;
  /** raw ÷ dgent throughput (≤ 1.25 means dgent reaches ≥ 0.8 × raw). */
  readonly rawOverDgent: number;
}

/**
 * `callers` concurrent loops, each calling `cas(caller)` (its own ref) for `ms`, per contender,
 * in `rounds` alternating rounds; throughput is the calls of all rounds over their time.
 */
export async function measureConcurrentCas(
  contenders: ReadonlyArray<{ name: string; cas(caller: number): Promise<unknown> }>,
  callers: number,
  ms: number,
  rounds: number,
): Promise<ConcurrentResult> {
  const calls = new Map<string, number>();
  const time = new Map<string, number>();
  // A warm-up round: connections opened, statements prepared on every pooled connection.
  for (const c of contenders) await run(c, Math.min(ms, 200));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + round) % contenders.length] as (typeof contenders)[number];
      const r = await run(c, ms);
      calls.set(c.name, (calls.get(c.name) ?? 0) + r.calls);
      time.set(c.name, (time.get(c.name) ?? 0) + r.seconds);
    }
  }
  const opsPerSec = Object.fromEntries(contenders.map((c) => [c.name, (calls.get(c.name) as number) / (time.get(c.name) as number)]));
  const dgent = contenders[0] as { name: string };
  const raw = contenders[1] as { name: string };
  return { callers, opsPerSec, rawOverDgent: (opsPerSec[raw.name] as number) / (opsPerSec[dgent.name] as number) };

  async function run(c: (typeof contenders)[number], forMs: number): Promise<{ calls: number; seconds: number }> {
    let n = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(forMs * 1e6));
    await Promise.all(
      Array.from({ length: callers }, async (_, caller) => {
        while (process.hrtime.bigint() < deadline) {
          await c.cas(caller);
          n++;
        }
      }),
    );
    return { calls: n, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  }
}
