/**
 * `npm run bench [-- OPTIONS]`: runs the benchmark from the sources (vite-node), so the test
 * harness's servers are available. `npm run bench -- --help` lists the options.
 */
import { runBench } from "./cli.js";

process.exitCode = await runBench(process.argv.slice(2), {
  stdout: (chunk) => process.stdout.write(chunk),
  stderr: (chunk) => process.stderr.write(chunk),
  env: process.env,
  stderrIsTTY: process.stderr.isTTY === true,
  command: "npm run bench --",
});
