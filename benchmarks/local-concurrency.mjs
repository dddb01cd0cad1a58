/**
 * The local tiers under concurrency (issue 23, part 3).
 *
 * 1. **JSONL group commit**: durable puts (`durability: "group"`, the default: a put resolves
 *    after an fdatasync that started after its write) with 1 and with 16 concurrent callers in
 *    one process, next to the fsync floor (a 1 KiB append + fdatasync, by hand, on the same disk).
 *    Goals: throughput at 16 callers ≥ 8× one caller's; p50 at one caller ≤ 2× the floor.
 * 2. **SQLite with 4 writer processes**: 4 processes put N datums each into one file at once,
 *    through dgent, against 4 processes running better-sqlite3's INSERT on the same schema (a file
 *    dgent made, so its tag trigger runs for both): total puts/s. Goal ≥ 0.9× raw. Processes
 *    start together on a "go" line; rounds alternate dgent and raw on fresh files.
 *
 *   npm run build && node benchmarks/local-concurrency.mjs [--seconds=3] [--n=4000] [--rounds=3]
 *
 * Writes benchmarks/results/local-concurrency.{json,md}.
 */
import { spawn } from "node:child_process";
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
};
const SECONDS = Number(arg("seconds", 3));
const N = Number(arg("n", 4000));
const ROUNDS = Number(arg("rounds", 3));
const CHILD = arg("child", "");
const here = fileURLToPath(import.meta.url);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const content = Buffer.alloc(1024, 7);
const datum = (tag, i) => ({ id: `${tag}/${String(i).padStart(9, "0")}`, content, createdAt: 1_700_000_000_000 + i, causalParent: null, metadata: { kind: i % 2 ? "a" : "b", writer: tag } });

// ---------------------------------------------------------------- a SQLite writer process
if (CHILD !== "") {
  const path = arg("path", "");
  const tag = arg("tag", "");
  let put;
  let close;
  if (CHILD === "dgent") {
    const { createStore } = await import("dgent");
    const { sqliteAdapter } = await import("dgent/adapters/sqlite");
    const store = createStore({ tiers: [sqliteAdapter({ path })], upgrader: false });
    await store.open();
    put = (d) => store.put(d);
    close = () => store.close();
  } else {
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
    put = (d) => insert.run(d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata));
    close = () => db.close();
  }
  const datums = Array.from({ length: N }, (_, i) => datum(tag, i));
  process.stdout.write("ready\n");
  await new Promise((resolve) => createInterface({ input: process.stdin }).once("line", resolve));
  const t = performance.now();
  for (const d of datums) await put(d);
  process.stdout.write(`done ${performance.now() - t}\n`);
  await close();
  process.exit(0);
}

// ---------------------------------------------------------------- 1. JSONL group commit
const { createStore } = await import("dgent");
const { jsonlAdapter } = await import("dgent/adapters/jsonl");
const { sqliteAdapter } = await import("dgent/adapters/sqlite");
const dir = mkdtempSync(join(tmpdir(), "dgent-local-conc-"));

function fsyncFloor(samples = 400) {
  const fd = openSync(join(dir, "floor.log"), "a");
  const xs = [];
  for (let i = 0; i < samples; i++) {
    writeSync(fd, content);
    const t = performance.now();
    fdatasyncSync(fd);
    xs.push((performance.now() - t) * 1000);
  }
  closeSync(fd);
  return median(xs);
}

async function jsonlRun(callers, round) {
  const store = createStore({ tiers: [jsonlAdapter({ path: join(dir, `g-${callers}-${round}.jsonl`), durability: "group" })], upgrader: false });
  await store.open();
  let next = 0;
  const lat = [];
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await store.put(datum("j", next++));
        lat.push((performance.now() - t) * 1000);
      }
    }),
  );
  await store.close();
  return { putsPerSec: lat.length / SECONDS, p50Us: median(lat) };
}

const jsonl = { floorUs: [], one: [], sixteen: [] };
for (let round = 0; round < ROUNDS; round++) {
  jsonl.floorUs.push(fsyncFloor());
  jsonl.one.push(await jsonlRun(1, round));
  jsonl.sixteen.push(await jsonlRun(16, round));
  console.log(`jsonl round ${round + 1}: floor ${jsonl.floorUs[round].toFixed(0)} µs; 1 caller ${jsonl.one[round].putsPerSec.toFixed(0)}/s p50 ${jsonl.one[round].p50Us.toFixed(0)} µs; 16 callers ${jsonl.sixteen[round].putsPerSec.toFixed(0)}/s`);
}

// ---------------------------------------------------------------- 2. SQLite, 4 writer processes
function writer(kind, path, tag) {
  const proc = spawn(process.execPath, [here, `--child=${kind}`, `--path=${path}`, `--tag=${tag}`, `--n=${N}`], { stdio: ["pipe", "pipe", "pipe"] });
  const lines = [];
  const waiters = [];
  let stderr = "";
  proc.stderr.on("data", (c) => (stderr += c));
  createInterface({ input: proc.stdout }).on("line", (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  const until = (p) =>
    new Promise((resolve, reject) => {
      const check = () => (p() ? resolve() : proc.exitCode !== null ? reject(new Error(`${kind} writer exited: ${stderr}`)) : waiters.push(check));
      proc.on("exit", check);
      check();
    });
  return { proc, lines, exited, until };
}

async function sqliteRound(kind, round) {
  const path = join(dir, `w-${kind}-${round}.db`);
  const made = createStore({ tiers: [sqliteAdapter({ path })], upgrader: false }); // dgent's schema, for both
  await made.open();
  await made.close();
  const ws = Array.from({ length: 4 }, (_, k) => writer(kind, path, `p${k}`));
  await Promise.all(ws.map((w) => w.until(() => w.lines.includes("ready"))));
  const t = performance.now();
  for (const w of ws) w.proc.stdin.end("go\n");
  await Promise.all(ws.map((w) => w.until(() => w.lines.some((l) => l.startsWith("done")))));
  const wall = performance.now() - t;
  const codes = await Promise.all(ws.map((w) => w.exited));
  if (codes.some((c) => c !== 0)) throw new Error(`a ${kind} writer failed`);
  const check = createStore({ tiers: [sqliteAdapter({ path })], upgrader: false });
  await check.open();
  const count = await check.count({});
  await check.close();
  if (count !== 4 * N) throw new Error(`${kind}: ${count} datums stored, not ${4 * N}`);
  return (4 * N) / (wall / 1000);
}

const sqlite = { dgent: [], raw: [] };
for (let round = 0; round < ROUNDS; round++) {
  sqlite.raw.push(await sqliteRound("raw", round));
  sqlite.dgent.push(await sqliteRound("dgent", round));
  console.log(`sqlite round ${round + 1}: 4 processes, dgent ${sqlite.dgent[round].toFixed(0)}/s, raw ${sqlite.raw[round].toFixed(0)}/s`);
}
rmSync(dir, { recursive: true, force: true });

const floor = median(jsonl.floorUs);
const one = { putsPerSec: median(jsonl.one.map((r) => r.putsPerSec)), p50Us: median(jsonl.one.map((r) => r.p50Us)) };
const sixteen = { putsPerSec: median(jsonl.sixteen.map((r) => r.putsPerSec)), p50Us: median(jsonl.sixteen.map((r) => r.p50Us)) };
const scale = sixteen.putsPerSec / one.putsPerSec;
const sqliteRatio = median(sqlite.dgent.map((d, i) => d / sqlite.raw[i]));
const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, loadavgEnd: loadavg().map((x) => +x.toFixed(2)) },
  seconds: SECONDS,
  n: N,
  rounds: ROUNDS,
  jsonl: { fsyncFloorUs: +floor.toFixed(1), oneCaller: one, sixteenCallers: sixteen, scale: +scale.toFixed(2), p50OverFloor: +(one.p50Us / floor).toFixed(2), rounds: jsonl },
  sqlite: { processes: 4, perProcess: N, dgentPerSec: Math.round(median(sqlite.dgent)), rawPerSec: Math.round(median(sqlite.raw)), ratio: +sqliteRatio.toFixed(2), rounds: sqlite },
};
const out = fileURLToPath(new URL("./results/", import.meta.url));
writeFileSync(join(out, "local-concurrency.json"), `${JSON.stringify(results, null, 2)}\n`);
const yes = (b) => (b ? "met" : "**missed**");
writeFileSync(
  join(out, "local-concurrency.md"),
  `# Local tiers under concurrency

\`node benchmarks/local-concurrency.mjs --seconds=${SECONDS} --n=${N} --rounds=${ROUNDS}\` on ${results.when.slice(0, 10)}, ${results.machine.cpus} CPUs, load average at the end ${results.machine.loadavgEnd.join(" / ")}. Medians of ${ROUNDS} rounds.

| measure | result | goal |
|---|---|---|
| fsync floor (1 KiB append + fdatasync, by hand), p50 | ${floor.toFixed(0)} µs | |
| JSONL \`"group"\`, 1 caller: puts/s, p50 | ${one.putsPerSec.toFixed(0)}/s, ${one.p50Us.toFixed(0)} µs (**${results.jsonl.p50OverFloor}×** the floor) | p50 ≤ 2× the floor: ${yes(results.jsonl.p50OverFloor <= 2)} |
| JSONL \`"group"\`, 16 callers: puts/s, p50 | ${sixteen.putsPerSec.toFixed(0)}/s, ${sixteen.p50Us.toFixed(0)} µs (**${results.jsonl.scale}×** one caller's throughput) | ≥ 8×: ${yes(scale >= 8)} |
| SQLite, 4 writer processes × ${N} puts: dgent / raw better-sqlite3 INSERT on the same schema | ${results.sqlite.dgentPerSec}/s / ${results.sqlite.rawPerSec}/s (**${results.sqlite.ratio}×**, median of per-round ratios) | ≥ 0.9×: ${yes(sqliteRatio >= 0.9)} |
`,
);
console.log(JSON.stringify({ jsonl: { ...results.jsonl, rounds: undefined }, sqlite: { ...results.sqlite, rounds: undefined } }, null, 2));
