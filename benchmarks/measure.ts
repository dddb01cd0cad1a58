/**
 * The sampler: warm-up, calibration, interleaved rounds, statistics. All times in microseconds.
 *
 * - **Warm-up** runs each contender for `warmupMs` (at least `minWarmup` calls) before anything
 *   is recorded, so the JIT, prepared statements, pools and page caches are warm.
 * - **Batching.** When the fastest contender of an operation takes under 2 µs a call, every
 *   contender is timed in batches of the same size (about 10 µs of the fastest; the clock and the
 *   loop cost tens of nanoseconds): a sample is then the mean of `batch` consecutive calls, and
 *   p99 is the p99 of those means. A contender slower than 1 ms/batch gets a smaller batch.
 *   `batch` is recorded with every result; it is 1 when every contender is slower than 2 µs.
 * - **Rounds.** Contenders of one operation alternate in `rounds` rounds (the order rotating), so
 *   each sees the same machine load; samples come from all rounds.
 * - **Sample count** follows a time budget per contender and operation, between `minSamples` and
 *   `maxSamples`.
 * - **A full garbage collection** runs before each contender's warm-up and each of its rounds, so
 *   one contender's garbage is not collected on another's time (V8's `gc`, exposed at run time).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gcFn: (() => void) | null | undefined;

/** A full, synchronous garbage collection, when V8 lets us expose it (it does in Node ≥ 20). */
export function fullGc(): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      gcFn = runInNewContext("gc") as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

export interface Stats {
  /** Median latency of one call, µs. */
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** Calls per second of one sequential caller (calls measured / time spent in them). */
  readonly opsPerSec: number;
  /** Samples recorded (each of `batch` calls). */
  readonly samples: number;
  readonly batch: number;
}

export interface SamplePlan {
  /** Time to spend measuring one contender on one operation, ms (after warm-up). */
  readonly budgetMs: number;
  readonly warmupMs: number;
  readonly minWarmup: number;
  readonly minSamples: number;
  readonly maxSamples: number;
  readonly rounds: number;
  /** Cap on calls per contender (writes grow the store; the object stores are slow). */
  readonly maxCalls?: number;
}

/** A contender's operation as the sampler drives it. */
export interface Subject<A> {
  readonly name: string;
  /** Arguments for `count` calls (made before timing: fresh datums for writes). */
  args(count: number): A[];
  run(arg: A): unknown;
}

const CALIBRATE_BELOW_US = 2;
const BATCH_TARGET_US = 10;

const now = (): bigint => process.hrtime.bigint();

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

/** Runs `count` calls in samples of `batch`, appending per-call µs of each sample to `out`. */
async function sampleLoop<A>(subject: Subject<A>, args: readonly A[], from: number, samples: number, batch: number, out: number[]): Promise<number> {
  const run = subject.run;
  let j = from;
  for (let s = 0; s < samples; s++) {
    const t0 = now();
    for (let k = 0; k < batch; k++) {
      const r = run(args[j++] as A);
      if (isThenable(r)) await r;
    }
    out.push(Number(now() - t0) / 1000 / batch);
  }
  return j;
}

interface Calibrated<A> {
  readonly subject: Subject<A>;
  readonly batch: number;
  readonly samples: number;
  readonly args: A[];
  next: number;
  readonly out: number[];
}

/** Warm-up; returns the mean µs per call seen in its second half. */
async function warmUp<A>(subject: Subject<A>, plan: SamplePlan): Promise<number> {
  fullGc();
  const deadline = Date.now() + plan.warmupMs;
  const first: number[] = [];
  await sampleLoop(subject, subject.args(1), 0, 1, 1, first);
  // Chunks of about a tenth of the warm-up time, 1 to 64 calls.
  const chunk = Math.max(1, Math.min(64, Math.round((plan.warmupMs * 100) / Math.max(first[0] as number, 0.05))));
  const means: number[] = [];
  let calls = 1;
  const cap = plan.maxCalls === undefined ? Infinity : Math.max(plan.minWarmup, Math.floor(plan.maxCalls / 4));
  // At least warmupMs and minWarmup calls, but a slow call (a peer scanning 10k entries) stops
  // the warm-up after 4 × warmupMs whatever the count.
  const hardStop = Date.now() + 4 * plan.warmupMs;
  while ((calls < plan.minWarmup || Date.now() < deadline) && calls < cap && Date.now() < hardStop) {
    const out: number[] = [];
    await sampleLoop(subject, subject.args(chunk), 0, chunk, 1, out);
    calls += chunk;
    means.push(out.reduce((a, b) => a + b, 0) / out.length);
  }
  if (means.length === 0) return first[0] as number;
  // The second half of the warm-up: the JIT and caches have settled by then.
  const late = means.slice(Math.floor(means.length / 2));
  return late.reduce((a, b) => a + b, 0) / late.length;
}

export type ProgressTick = (done: number, total: number, who: string) => void;

/**
 * Measures one operation on several subjects, interleaved. Returns stats by subject name, in
 * the order given.
 */
export async function compare(subjects: ReadonlyArray<Subject<unknown>>, plan: SamplePlan, tick?: ProgressTick): Promise<Map<string, Stats>> {
  const calibrated: Calibrated<unknown>[] = [];
  const means: number[] = [];
  for (const [k, subject] of subjects.entries()) {
    tick?.(k, subjects.length * 2, `${subject.name} (warm-up)`);
    means.push(await warmUp(subject, plan));
  }
  // One batch size for every subject of the operation, set by the fastest (so their samples are
  // alike), except that a slow subject's sample stays under 1 ms.
  const fastest = Math.min(...means);
  const common = fastest < CALIBRATE_BELOW_US ? Math.min(1000, Math.ceil(BATCH_TARGET_US / Math.max(fastest, 0.01))) : 1;
  for (const [k, subject] of subjects.entries()) {
    const mean = means[k] as number;
    const batch = Math.max(1, Math.min(common, Math.floor(1000 / mean)));
    let samples = Math.floor((plan.budgetMs * 1000) / (mean * batch));
    samples = Math.max(plan.minSamples, Math.min(plan.maxSamples, samples));
    // minSamples yields to time: never more than 4 × the budget on one contender (but ≥ 1 per round).
    samples = Math.min(samples, Math.max(plan.rounds, Math.floor((4 * plan.budgetMs * 1000) / (mean * batch))));
    if (plan.maxCalls !== undefined) samples = Math.max(Math.min(samples, Math.floor(plan.maxCalls / batch)), Math.min(plan.minSamples, 10));
    samples = Math.max(plan.rounds, Math.ceil(samples / plan.rounds) * plan.rounds);
    calibrated.push({ subject, batch, samples, args: subject.args(samples * batch), next: 0, out: [] });
  }
  const total = calibrated.reduce((n, c) => n + c.samples, 0);
  let done = 0;
  for (let round = 0; round < plan.rounds; round++) {
    for (let k = 0; k < calibrated.length; k++) {
      const c = calibrated[(k + round) % calibrated.length] as Calibrated<unknown>;
      const per = c.samples / plan.rounds;
      tick?.(subjects.length + (done / total) * subjects.length, subjects.length * 2, `${c.subject.name} (round ${round + 1}/${plan.rounds})`);
      fullGc();
      c.next = await sampleLoop(c.subject, c.args, c.next, per, c.batch, c.out);
      done += per;
    }
  }
  const result = new Map<string, Stats>();
  for (const c of calibrated) result.set(c.subject.name, summarize(c.out, c.batch));
  return result;
}

/** Statistics of per-call samples (µs). */
export function summarize(samples: readonly number[], batch = 1): Stats {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
  let sum = 0;
  for (const x of s) sum += x;
  const mean = sum / s.length;
  return {
    p50: at(0.5),
    p90: at(0.9),
    p95: at(0.95),
    p99: at(0.99),
    mean,
    min: s[0] as number,
    max: s[s.length - 1] as number,
    opsPerSec: 1e6 / mean,
    samples: s.length,
    batch,
  };
}

/** Times one async job (fills, opens), ms. */
export async function timed<T>(job: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = now();
  const value = await job();
  return { value, ms: Number(now() - t0) / 1e6 };
}

/** A human duration for a µs figure: `0.42 µs`, `35 µs`, `1.2 ms`, `2.4 s`. */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return "–";
  if (us < 10) return `${us.toFixed(2)} µs`;
  if (us < 1000) return `${us.toFixed(us < 100 ? 1 : 0)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

export function formatRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return "–";
  return `${r < 10 ? r.toFixed(2) : r.toFixed(1)}×`;
}
