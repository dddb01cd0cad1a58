/**
 * CLI start-up as whole processes: `dgent get <id>` (the default embedded SQLite store, in a
 * throwaway data directory; answered by the direct read of cli/fast-get.ts) and the same command
 * through the store (`DGENT_DIRECT_GET=0`) against a bare `node -e 0`, spawned alternately `--runs` times each
 * (default 20); prints the medians and p90s of wall time and of CPU time (user + system, from
 * the children's times in /proc/self/stat: a loaded machine stretches wall time, much less CPU
 * time), the mean CPU time (finer than the medians' 10 ms clock ticks) and the ratios. The floor is timed too: a process that loads better-sqlite3, opens the same
 * database file and writes the same datum's content (what no SQLite-backed CLI can go below).
 * `--before=PATH` also times another build's CLI (e.g. the main branch's dist/cli/main.js) in the
 * same rounds. `--profile` prints where the CLI's import time goes, for the direct read and
 * through the store (their top-level modules imported in turn in one process, timed with hrtime).
 *
 *   npm run build && node benchmarks/cli-startup.mjs [--runs=20] [--before=../main/dist/cli/main.js] [--profile]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const arg = (name, dflt) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const RUNS = Number(arg("runs", "20"));
const CLI = arg("cli", fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), "dgent-cli-startup-"));
// The embedded default: no variable that could choose another store (any DGENT_*/KGENTS_* one).
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DGENT|KGENTS)_/.test(name)));
Object.assign(env, { XDG_DATA_HOME: dir });

/** CPU time of this process's waited-for children so far, in ms (cutime + cstime; Linux). */
function childrenCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10; // clock ticks of 10 ms (USER_HZ = 100)
}

function wall(args, options = {}) {
  const cpu0 = childrenCpuMs();
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, cwd: dir, encoding: "utf8", ...options });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, cpu: childrenCpuMs() - cpu0, stdout: r.stdout };
}

const id = wall([CLI, "put", "hello", "--id", "startup/probe"]).stdout.trim();
if (wall([CLI, "get", id]).stdout !== "hello") throw new Error("dgent get did not print the stored content");
if (wall([CLI, "get", id], { env: { ...env, DGENT_DIRECT_GET: "0" } }).stdout !== "hello") throw new Error("dgent get through the store did not print the stored content");

// The floor: the raw driver as an ES module, as the CLI is one (the datum's content, no dgent code).
const raw = String.raw`
import { createRequire } from "node:module";
const Database = createRequire(${JSON.stringify(fileURLToPath(new URL("../package.json", import.meta.url)))})("better-sqlite3");
const db = new Database(process.argv[1], { timeout: 5000 });
process.stdout.write(db.prepare("SELECT content FROM data WHERE id = ?").pluck(true).get(process.argv[2]));
db.close();
`;
const rawArgs = ["--input-type=module", "-e", raw, join(dir, "dgent", "default.db"), id];
if (wall(rawArgs).stdout !== "hello") throw new Error("the raw better-sqlite3 read did not print the stored content");

const BEFORE = arg("before", null);
const contenders = [
  ["node -e 0", ["-e", "0"]],
  ["raw better-sqlite3", rawArgs],
  ...(BEFORE ? [["dgent get (before)", [BEFORE, "get", id]]] : []),
  ["dgent get, store", [CLI, "get", id], { DGENT_DIRECT_GET: "0" }],
  ["dgent get <id>", [CLI, "get", id]],
];
const times = Object.fromEntries(contenders.map(([name]) => [name, { wall: [], cpu: [] }]));
for (let i = 0; i < RUNS; i++) {
  for (const [name, args, extra] of contenders) {
    const r = wall(args, extra ? { env: { ...env, ...extra } } : {});
    times[name].wall.push(r.ms);
    times[name].cpu.push(r.cpu);
  }
}
const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const base = times["node -e 0"];
console.log(`${RUNS} spawns each, alternating; node ${process.version}; ms`);
console.log(`${"".padEnd(20)} wall median   p90   ratio | cpu median   p90   ratio | cpu mean   ratio`);
for (const [name] of contenders) {
  const t = times[name];
  const w = at(t.wall, 0.5);
  const c = at(t.cpu, 0.5);
  const m = mean(t.cpu);
  console.log(
    `${name.padEnd(20)} ${w.toFixed(0).padStart(11)} ${at(t.wall, 0.9).toFixed(0).padStart(5)} ${(w / at(base.wall, 0.5)).toFixed(2).padStart(6)}× | ${c.toFixed(0).padStart(10)} ${at(t.cpu, 0.9).toFixed(0).padStart(5)} ${(c / at(base.cpu, 0.5)).toFixed(2).padStart(6)}× | ${m.toFixed(1).padStart(8)} ${(m / mean(base.cpu)).toFixed(2).padStart(6)}×`,
  );
}

if (process.argv.includes("--profile")) {
  // Cumulative import time (wall and CPU) of what `dgent get` loads, in the order it loads it.
  const probe = (steps) => String.raw`
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const ms = () => (Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1).padStart(7) + " ms wall " + ((({ user, system }) => (user + system) / 1000)(process.cpuUsage(c0))).toFixed(1).padStart(6) + " ms cpu";
const step = async (what, spec) => { await import(spec); console.log(ms() + "  " + what); };
const base = ${JSON.stringify(new URL("../dist/", import.meta.url).href)};
${steps.map(([what, spec]) => `await step(${JSON.stringify(what)}, base + ${JSON.stringify(spec)});`).join("\n")}
`;
  console.log("\nimport profile, direct read (cumulative, one process):");
  process.stdout.write(
    wall(["--input-type=module", "-e", probe([
      ["adapters/sqlite/sql (the SQL texts)", "adapters/sqlite/sql.js"],
      ["cli/args (with cli/terminal)", "cli/args.js"],
      ["cli/fast-get", "cli/fast-get.js"],
    ]) + String.raw`
const { createRequire } = await import("node:module");
createRequire(base + "cli/fast-get.js")("better-sqlite3");
console.log(ms() + "  better-sqlite3 (its JavaScript)");
`]).stdout,
  );
  console.log("\nimport profile, through the store (cumulative, one process):");
  process.stdout.write(
    wall(["--input-type=module", "-e", probe([
      ["core/errors", "core/errors.js"],
      ["core/store (the kernel)", "core/store.js"],
      ["compose/default-store", "compose/default-store.js"],
      ["cli/commands (the command index)", "cli/commands.js"],
      ["cli/query-commands (get's own module)", "cli/query-commands.js"],
      ["adapters/memory", "adapters/memory/index.js"],
      ["adapters/sqlite (with better-sqlite3)", "adapters/sqlite/index.js"],
      ["cli/main", "cli/main.js"],
    ])]).stdout,
  );
}
rmSync(dir, { recursive: true, force: true });
