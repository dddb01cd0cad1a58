/**
 * The JSONL tier's group commit (`adapters/jsonl/group-commit.ts`) on a simulated disk, to see its
 * batching policy without the machine's noise: the real class and the real event loop (microtasks,
 * `setImmediate`, a timer per completion), a virtual clock (`performance.now()` is replaced). A put
 * costs C µs of CPU before it waits; a sync takes F µs of disk (one at a time; with `--jitter`,
 * 0.7–1.3 × F and one in ten 5 × F) and its completion is seen when the job that runs ends.
 * Prints each case's throughput with N callers ÷ with 1 caller, and puts per sync.
 *
 *   npx vite-node benchmarks/diagnose/jsonl-group-sim.ts [-- --other /path/to/dist/adapters/jsonl/group-commit.js]
 *
 * `--other` runs another build's class in the same cases (e.g. the parent commit's, built in a
 * worktree of it), for an A/B. Figures: adapters/jsonl/README.md, "Group commit under concurrency".
 */
import { GroupCommit } from "../../adapters/jsonl/group-commit.js";

type Ctor = new (sync: (done: (error: Error | null) => void) => void, windowMs: number) => { wait(): Promise<void> };

let vt = 0; // µs
performance.now = () => vt / 1000;

async function sim(G: Ctor, callers: number, cpu: number, disk: number, jitter: boolean, puts: number): Promise<{ rate: number; perSync: number }> {
  vt = 0;
  const pending: { due: number; cb: (e: Error | null) => void }[] = [];
  let seed = 1;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  let diskFree = 0;
  let syncs = 0;
  const g = new G((done) => {
    syncs++;
    const f = disk * (jitter ? (rnd() < 0.1 ? 5 : 0.7 + 0.6 * rnd()) : 1);
    diskFree = Math.max(vt, diskFree) + f;
    pending.push({ due: diskFree, cb: done });
  }, 0);
  let count = 0;
  let stop = false;
  const loops = Array.from({ length: callers }, async () => {
    while (!stop) {
      vt += cpu;
      await g.wait();
      if (++count >= puts) stop = true;
    }
  });
  let finished = false;
  void Promise.all(loops).then(() => (finished = true));
  while (!finished) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    const e = pending.shift();
    if (e === undefined) continue;
    if (e.due > vt) vt = e.due;
    e.cb(null);
  }
  return { rate: (count / vt) * 1e6, perSync: count / syncs };
}

const args = process.argv.slice(2);
const otherAt = args.indexOf("--other");
const variants: [string, Ctor][] = [["this", GroupCommit as unknown as Ctor]];
if (otherAt >= 0) variants.push(["other", ((await import(args[otherAt + 1] as string)) as { GroupCommit: Ctor }).GroupCommit]);
for (const jitter of [false, true]) {
  for (const disk of [190, 1000]) {
    for (const cpu of [10, 20, 40]) {
      const cells: string[] = [];
      for (const [name, G] of variants) {
        const one = await sim(G, 1, cpu, disk, jitter, 400);
        const parts: string[] = [];
        for (const n of [16, 64]) {
          const r = await sim(G, n, cpu, disk, jitter, 4000);
          parts.push(`${n} callers ${(r.rate / one.rate).toFixed(2)}× (${r.perSync.toFixed(1)} puts/sync)`);
        }
        cells.push(`${name}: ${parts.join(", ")}`);
      }
      console.log(`F ${disk} µs, C ${cpu} µs${jitter ? ", jitter" : ""} | ${cells.join(" | ")}`);
    }
  }
}
