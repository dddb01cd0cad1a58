#!/usr/bin/env node
/**
 * Runs the fault-injection suites in test/faults/ after building the package (their child
 * processes run the build, as users' processes do).
 *
 *   node test/faults/run.mjs            CI size (about a minute or two on two cores)
 *   node test/faults/run.mjs --long     several times larger (DGENT_TEST_LONG=1)
 *   node test/faults/run.mjs --seed 42  repeat a run (DGENT_TEST_SEED; the seed is printed with each result)
 *
 * Any other arguments go to vitest (e.g. `-t immediate`).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const args = process.argv.slice(2);
const env = { ...process.env };
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--long") env.DGENT_TEST_LONG = "1";
  else if (args[i] === "--seed") env.DGENT_TEST_SEED = args[++i];
  else rest.push(args[i]);
}
const run = (cmd, argv) => {
  const r = spawnSync(cmd, argv, { cwd: root, env, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run("npm", ["run", "build"]);
run("npx", ["vitest", "run", "test/faults/", ...rest]);
