/**
 * One writer process of the concurrency section's process rows (benchmarks/concurrency.ts): one
 * command a line on stdin — `open` (a job: the tier's files or schemas, the contenders, its
 * callers; open and warm every contender), `run` (one window of puts or gets), `close` (the job's
 * contenders), `exit` — each answered with one JSON line on stdout. One child serves every tier.
 */
import { createInterface } from "node:readline";
import type { Contender } from "./contender.js";
import { drive, opCall, type ChildJob } from "./concurrency.js";
import { fullGc } from "./measure.js";
import { message } from "./run-tier.js";
import { postgresContenderFor } from "./tiers/postgres.js";
import { redisContenderFor } from "./tiers/redis.js";
import { sqliteContenderFor } from "./tiers/sqlite.js";

async function contenderFor(job: ChildJob, name: string): Promise<Contender> {
  const t = job.target;
  if (t.tier === "sqlite") return sqliteContenderFor(name, t.base);
  if (t.tier === "postgres") return postgresContenderFor(name, t.url, t.tag, job.callers);
  return redisContenderFor(name, t.url, t.tag);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const reply = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
let job: ChildJob | null = null;
const open = new Map<string, Contender>();

async function closeAll(): Promise<void> {
  for (const c of open.values()) await c.close().catch(() => undefined);
  open.clear();
}

for (;;) {
  const next = await lines.next();
  if (next.done) break;
  const m = JSON.parse(next.value as string) as { cmd: string; job: ChildJob; name: string; op: "put" | "get"; ms: number; max: number; offset: number };
  if (m.cmd === "open") {
    await closeAll();
    const j = m.job;
    job = j;
    const failed: Record<string, string> = {};
    for (const name of j.contenders) {
      try {
        const c = await contenderFor(j, name);
        await c.prefill([]); // opens a dgent store; nothing to load (the parent loaded the prefill)
        for (const op of ["put", "get"] as const) await drive(j.callers, j.warmMs, j.warmOps, opCall(c, op, j.warmOps, j.getIds, 0));
        open.set(name, c);
      } catch (error) {
        failed[name] = message(error);
      }
    }
    reply({ failed });
  } else if (m.cmd === "run") {
    const c = open.get(m.name);
    try {
      if (c === undefined || job === null) throw new Error(`${m.name} is not open`);
      const call = opCall(c, m.op, m.max, job.getIds, m.offset);
      fullGc();
      const d = await drive(job.callers, m.ms, m.max, call);
      reply({ lat: d.lat.map((x) => Math.round(x * 10) / 10), startMs: d.startMs, endMs: d.endMs });
    } catch (error) {
      reply({ error: message(error) });
    }
  } else if (m.cmd === "close") {
    await closeAll();
    reply({ closed: true });
  } else if (m.cmd === "exit") {
    await closeAll();
    reply({ closed: true });
    break;
  }
}
process.exit(0);
