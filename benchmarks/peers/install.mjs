#!/usr/bin/env node
/**
 * Installs the benchmark's peer libraries (benchmarks/peers/package.json: Keyv and its adapters,
 * unstorage and its drivers) into benchmarks/peers/node_modules with `npm ci`, when they are missing
 * or older than benchmarks/peers/package-lock.json. `npm run bench` and `npm test` run it first; the
 * root `npm ci` does not install them, so an install of dgent's own dependencies compiles no
 * module only a peer needs (@keyv/sqlite's sqlite3). `DGENT_BENCH_PEERS=0` skips it: the
 * benchmark then reports each peer as skipped.
 *
 *   node benchmarks/peers/install.mjs
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const lock = fileURLToPath(new URL("./package-lock.json", import.meta.url));
const installed = fileURLToPath(new URL("./node_modules/.package-lock.json", import.meta.url));
// Held while `npm ci` runs: a second `npm run bench` (or `npm test`) started meanwhile waits for
// it instead of running `npm ci` in the same directory, which would delete the first one's files.
const busy = fileURLToPath(new URL("./.installing", import.meta.url));

if (process.env.DGENT_BENCH_PEERS === "0") {
  console.error("benchmark peers: not installed (DGENT_BENCH_PEERS=0)");
  process.exit(0);
}
const upToDate = () => existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs;
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
};
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

for (let announced = false; ; ) {
  if (upToDate()) process.exit(0);
  try {
    mkdirSync(busy);
    writeFileSync(`${busy}/pid`, String(process.pid));
    break;
  } catch (error) {
    if (error.code !== "EEXIST") throw error;
    let owner = NaN;
    try {
      owner = Number(readFileSync(`${busy}/pid`, "utf8"));
    } catch {
      // Its owner is between mkdir and writing its pid: look again.
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      rmSync(busy, { recursive: true, force: true });
      continue;
    }
    if (!announced) console.error("benchmark peers: another process is installing them; waiting");
    announced = true;
    sleep(500);
  }
}
try {
  if (!upToDate()) install();
} finally {
  rmSync(busy, { recursive: true, force: true });
}

function install() {
  console.error("benchmark peers: npm ci in benchmarks/peers/ (Keyv, unstorage and their drivers)");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`benchmark peers: npm ci failed (exit ${r.status ?? r.signal}); fix it, or set DGENT_BENCH_PEERS=0 to run without peers`);
    process.exitCode = r.status ?? 1;
  }
}
