import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "adapters/**/*.test.ts", "plugins/**/*.test.ts", "patterns/**/*.test.ts", "integrations/**/*.test.ts", "testing/**/*.test.ts", "cli/**/*.test.ts", "server/**/*.test.ts", "examples/**/*.test.ts", "backup/**/*.test.ts", "scrub/**/*.test.ts"],
    // Hang guards, not speed claims: a loaded machine (both cores busy with other work) stretches the
    // heaviest tests several times over, and speed is the benchmark's business (test/README.md).
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    // Vitest's default is one worker fewer than the cores (one, on a 2-core machine); most files wait on
    // child processes, servers and fsync rather than the CPU, so a third worker keeps both cores busy.
    maxWorkers: 3,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
