import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A meter of a Postgres cluster's CPU time on this machine, for the diagnosis scripts: the
 * returned function gives the µs its processes (the postmaster of `dataDir` and its children)
 * have spent so far, from `/proc/<pid>/schedstat` (nanoseconds on a CPU). It sums each process's
 * increments since it was first seen: a process that ends (an autovacuum worker) takes its time
 * with it, which a plain sum would charge, negatively, to whatever runs then. The first call
 * primes the meter (its value is 0).
 */
export function clusterCpuMeter(dataDir: string): () => number {
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const lastSeen = new Map<number, number>();
  let total = 0;
  let primed = false;
  return () => {
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const pid = Number(p);
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (pid !== postmaster && ppid !== postmaster) continue;
        const ns = Number(readFileSync(`/proc/${p}/schedstat`, "utf8").split(" ")[0]);
        total += ns - (lastSeen.get(pid) ?? (primed ? 0 : ns));
        lastSeen.set(pid, ns);
      } catch {
        // the process ended meanwhile
      }
    }
    primed = true;
    return total / 1000;
  };
}
