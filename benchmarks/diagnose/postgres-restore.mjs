/**
 * Diagnosis: where a `dgent restore` into Postgres spends its time, and the bulk import
 * (`importDatums`, adapters/postgres/bulk.ts) against the `putMany` path it replaced, in one
 * process on one archive. A throwaway cluster (benchmarks/pg-cluster.mjs) is filled with N
 * datums of 1 KiB (half random, half text, two tags, as benchmarks/backup.mjs) and backed up;
 * then each round restores the archive into a fresh schema (notify off, as a target given by URL)
 * and prints wall time, this process's CPU and the server's CPU (its processes' utime + stime)
 * for each phase: the chunk check, the writes, and the end (refs and the read-back digest).
 * With --ab the rounds alternate the putMany path (the same adapter with `importDatums` hidden)
 * and the bulk import, starting with putMany.
 *
 *   npm run build && node benchmarks/diagnose/postgres-restore.mjs [--n=100000] [--rounds=4] [--ab]
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDatum } from "dgent/extend";
import { postgresAdapter } from "dgent/adapters/postgres";
import { backup, restore } from "dgent/backup";
import { throwawayCluster } from "../pg-cluster.mjs";

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const N = Number(arg("n", 100_000));
const ROUNDS = Number(arg("rounds", 4));
const AB = process.argv.includes("--ab");
const work = mkdtempSync(join(tmpdir(), "dgent-diagnose-restore-"));
const cluster = await throwawayCluster();
const url = cluster.url;

/** The postmaster this process started, and the CPU ms of it and its children. */
const serverPid = Number(
  readdirSync("/proc").find((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      const s = readFileSync(`/proc/${p}/stat`, "utf8");
      return s.includes("(postgres)") && Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]) === process.pid;
    } catch {
      return false;
    }
  }),
);
function serverCpuMs() {
  let ticks = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const s = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      if (Number(p) === serverPid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (Number(f[1]) === serverPid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ticks * 10;
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

try {
  const source = postgresAdapter({ url, namespace: "src", listen: false, notify: false });
  await source.open();
  let batch = [];
  for (let i = 0; i < N; i++) {
    const content = Buffer.concat([Buffer.from(randomBytes(390).toString("base64").slice(0, 512)), Buffer.from("the agent noted that ".repeat(26).slice(0, 512))]);
    batch.push(makeDatum({ content, metadata: { i: String(i), kind: i % 3 ? "note" : "plan" }, createdAt: 1_700_000_000_000 + i }));
    if (batch.length === 2000) {
      await source.putMany(batch);
      batch = [];
    }
  }
  if (batch.length) await source.putMany(batch);
  await source.close();
  await backup({ from: url, namespace: "src", to: join(work, "archive") });
  console.log(`${N} datums filled and backed up`);
  for (let r = 0; r < ROUNDS; r++) {
    const viaPutMany = AB && r % 2 === 0;
    const target = postgresAdapter({ url, namespace: `dst${r}`, listen: false, notify: false });
    await target.open();
    const to = viaPutMany
      ? new Proxy(target, {
          get(t, key) {
            if (key === "importDatums") return undefined;
            const v = Reflect.get(t, key, t);
            return typeof v === "function" ? v.bind(t) : v;
          },
        })
      : target;
    const marks = [];
    const mark = (what) => marks.push({ what, wall: performance.now(), cpu: cpuMs(), server: serverCpuMs() });
    let checked = false;
    let wrote = false;
    mark("start");
    const report = await restore({
      from: join(work, "archive"),
      to,
      checkpointPath: join(work, `cp${r}.json`),
      onProgress: (done, total, phase) => {
        if (phase === "check" && done === total && !checked) {
          checked = true;
          mark("check");
        }
        if (phase === "write" && done === total && !wrote) {
          wrote = true;
          mark("write");
        }
      },
    });
    mark("end");
    await target.close();
    if (report.verified !== true) throw new Error(`round ${r} did not verify`);
    const span = (a, b) => `wall ${(b.wall - a.wall).toFixed(0)} / this process ${(b.cpu - a.cpu).toFixed(0)} / server ${b.server - a.server}`;
    const phases = marks.slice(1).map((m, i) => `${m.what}: ${span(marks[i], m)}`);
    console.log(`round ${r}${AB ? (viaPutMany ? " putMany" : " importDatums") : ""}: ${span(marks[0], marks[marks.length - 1])} | ${phases.join(" | ")}`);
  }
} finally {
  await cluster.stop();
  rmSync(work, { recursive: true, force: true });
}
