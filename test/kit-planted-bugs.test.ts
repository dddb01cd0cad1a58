/**
 * The conformance kit checked the way a reviewer would: bugs planted one at a time in a copy of
 * the memory tier (test/fixtures/kit-mutants/memory-copy.ts), and the kit must fail on each, at
 * the check meant to catch it, with a message that names that check's line; the copy without a
 * bug passes every test the kit runs for it. The kit runs in this process through a small runner
 * of its own (the framework interface is `describe`/`it`/hooks), and once under Vitest and once
 * under node:test in a child process, to see what those runners print for a failing check.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import { runConformance, type ConformanceOptions, type ConformanceTarget, type TestFramework } from "../testing/index.js";
import { fiveMethodAdapter } from "./fixtures/kit-mutants/five-methods.js";
import { BUGS, type Bug } from "./fixtures/kit-mutants/memory-copy.js";
import { MUTANT_OPTIONS, mutantTarget } from "./fixtures/kit-mutants/target.js";

interface Outcome {
  readonly name: string;
  readonly status: "passed" | "failed" | "skipped";
  readonly error?: unknown;
}

type Body = (context: { skip(note?: string): void }) => unknown;

/** Registers the kit with a minimal framework, runs every test in order, and reports each outcome. */
async function runKit(target: ConformanceTarget, options: ConformanceOptions): Promise<Outcome[]> {
  const tests: { name: string; body: Body | null }[] = [];
  const before: (() => unknown)[] = [];
  const after: (() => unknown)[] = [];
  const path: string[] = [];
  const it = Object.assign((name: string, body: Body) => void tests.push({ name: [...path, name].join(" › "), body }), {
    skip: (name: string) => void tests.push({ name: [...path, name].join(" › "), body: null }),
  });
  const fw: TestFramework = {
    describe(name, fn) {
      path.push(name);
      try {
        fn();
      } finally {
        path.pop();
      }
    },
    it,
    beforeAll: (fn) => void before.push(fn),
    afterAll: (fn) => void after.push(fn),
  };
  runConformance(target, fw, options);
  for (const fn of before) await fn();
  const outcomes: Outcome[] = [];
  for (const { name, body } of tests) {
    if (body === null) {
      outcomes.push({ name, status: "skipped" });
      continue;
    }
    let skipped = false;
    try {
      await body({ skip: () => void (skipped = true) });
      outcomes.push({ name, status: skipped ? "skipped" : "passed" });
    } catch (error) {
      outcomes.push({ name, status: "failed", error });
    }
  }
  for (const fn of after) await fn();
  return outcomes;
}

/**
 * For each bug: tests that must fail (by a part of their name), and whether the bug sits in a
 * blind spot of the kit as it was (no list test under a prefix may fail then: only the new cases
 * over the whole listing see it).
 */
const EXPECTED: Record<Bug, { mustFail: readonly string[]; blindSpot?: true }> = {
  "unprefixed-list-reversed": { mustFail: ["list › list is newest first by createdAt, then by id descending, over the whole listing"], blindSpot: true },
  "unprefixed-after-inclusive": { mustFail: ["list › after keeps only createdAt strictly greater; by default createdAt 0 is listed, over the whole listing"], blindSpot: true },
  "ties-by-utf16": { mustFail: ["list › datums of one createdAt come by id descending in code point (UTF-8 byte) order, not UTF-16 order, over the whole listing"], blindSpot: true },
  "chain-ignores-max-depth": { mustFail: ["causalChain › a chain of exactly maxChainDepth (5) comes back whole"] },
  "chain-depth-off-by-one": { mustFail: ["causalChain › a chain of exactly maxChainDepth (5) comes back whole"] },
  "probe-throws": { mustFail: ["probe › probe() answers true while open", "probe › an unreachable backend"] },
  "probe-without-timeout": { mustFail: ["probe › an unreachable backend"] },
  // (Lifecycle.opened() leaves a closed adapter closed, so the older steps no longer end half-open after a close during open.)
  "open-reinitialises": { mustFail: ["lifecycle › two concurrent open() calls both resolve"] },
  "evicted-wrong-arguments": { mustFail: ["events › a datum that leaves without a delete is announced"] },
  "put-overwrites": { mustFail: ["put › a different datum under an existing id fails with DGENT_CONFLICT"] },
  "query-cursor-inclusive": { mustFail: ["queries › random filters", "queries › cursors are stable under concurrent writes"] },
  "query-cursor-ignores-ties": { mustFail: ["queries › ties come by id in code point order"] },
  "query-prefix-like": { mustFail: ["queries › prefixes, tag values and id ranges with %, _ and \\ match literally"] },
  "query-meta-with-content": { mustFail: ["queries › random filters"] },
  "delete-many-ignores-where": { mustFail: ["queries › deleteMany deletes exactly what its filter selects"] },
  "chain-tail-off-by-one": { mustFail: ["queries › causalChain with tail gives the last n steps", "queries › causalChain with tail on a chain longer than maxChainDepth"] },
};

/** A kit check's line in a suite file, as the kit adds it to a failed test's message. */
const CHECK_LINE = /the kit's check at [^\s]*testing\/suites\/[\w-]+\.ts:\d+:\d+/;

const failures = (outcomes: readonly Outcome[]) => outcomes.filter((o) => o.status === "failed");
const describeFailures = (outcomes: readonly Outcome[]) =>
  failures(outcomes)
    .map((o) => `${o.name}: ${o.error instanceof Error ? o.error.message : String(o.error)}`)
    .join("\n");

describe("the conformance kit against planted bugs", () => {
  it("passes the memory copy without a bug, running the gated cases (dead backend, eviction) too", async () => {
    const outcomes = await runKit(mutantTarget(undefined), MUTANT_OPTIONS);
    assert.deepEqual(failures(outcomes).map((o) => o.name), [], describeFailures(outcomes));
    const ran = (part: string) => outcomes.find((o) => o.name.includes(part))?.status;
    assert.equal(ran("probe › an unreachable backend"), "passed");
    assert.equal(ran("events › a datum that leaves without a delete is announced"), "passed");
    assert.equal(ran("causalChain › a chain of exactly maxChainDepth (5) comes back whole"), "passed");
    assert.equal(ran("list › list agrees with a reference model on random ids, times and queries, over the whole listing"), "passed");
    // Only what needs a reopen() or child processes, or the refs the copy does not implement, is skipped (the copy is volatile, in-process).
    const skipped = outcomes.filter((o) => o.status === "skipped");
    assert.ok(skipped.length > 0 && skipped.every((o) => /persistence|concurrency|refs|transactions|expiry › a (ref|transaction)/.test(o.name)), skipped.map((o) => o.name).join("\n"));
  });

  it("passes an adapter with only the five methods, counting what it lacks as skipped", async () => {
    const outcomes = await runKit({ name: "five methods", create: fiveMethodAdapter }, MUTANT_OPTIONS);
    assert.deepEqual(failures(outcomes).map((o) => o.name), [], describeFailures(outcomes));
    const status = (part: string) => outcomes.filter((o) => o.name.includes(part)).map((o) => o.status);
    assert.deepEqual(status("probe › "), ["skipped", "skipped"], "no probe(), no dead()");
    assert.deepEqual(status("events › a datum that leaves without a delete"), ["skipped"], "no evicts");
    assert.ok(status("list › ").every((s) => s === "passed") && status("list › ").length === 14);
    assert.ok(status("lifecycle › ").every((s) => s === "passed"));
    assert.ok(status("causalChain › ").every((s) => s === "passed"), "core walks the chain with get, under the store's maxChainDepth");
  });

  for (const bug of BUGS) {
    it(`fails on the copy with "${bug}", at the check meant for it, naming that check's line`, async () => {
      const outcomes = await runKit(mutantTarget(bug), MUTANT_OPTIONS);
      const failed = failures(outcomes);
      const { mustFail, blindSpot } = EXPECTED[bug];
      for (const part of mustFail) {
        assert.ok(failed.some((o) => o.name.includes(part)), `"${part}" did not fail; the failures were:\n${describeFailures(outcomes) || "(none)"}`);
      }
      for (const o of failed) {
        const message = o.error instanceof Error ? o.error.message : String(o.error);
        assert.match(message, CHECK_LINE, `the failure of "${o.name}" does not name the kit's check`);
      }
      if (blindSpot) {
        const underPrefix = failed.filter((o) => o.name.includes(" › list › ") && !o.name.includes("over the whole listing"));
        assert.deepEqual(underPrefix.map((o) => o.name), [], "a list case under a prefix failed: the bug was not in the blind spot it is meant to show");
      }
    });
  }
});

describe("what the runners print for a failing kit check", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const env = (bug: Bug) => {
    const clean: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("VITEST") && key !== "NODE_OPTIONS") clean[key] = value;
    return { ...clean, KIT_MUTANT: bug, KIT_ONLY: "list,put", NO_COLOR: "1", FORCE_COLOR: "0" };
  };

  it("Vitest shows the suite file and line, and what was expected and received", async () => {
    const run = await runChild(
      [fileURLToPath(new URL("../node_modules/vitest/vitest.mjs", import.meta.url)), "run", "--config", "test/fixtures/kit-mutants/vitest.config.ts"],
      root,
      env("unprefixed-list-reversed"),
    );
    assert.notEqual(run.code, 0, run.output);
    assert.match(run.output, /the kit's check at testing\/suites\/list\.ts:\d+:\d+/, run.output);
    assert.match(run.output, /❯ testing\/suites\/list\.ts:\d+:\d+/, run.output);
    assert.match(run.output, /Expected/, run.output);
    assert.match(run.output, /Received/, run.output);
  });

  it("node:test shows the suite file and line, and what was expected and received", async () => {
    const run = await runChild(
      [fileURLToPath(new URL("../node_modules/vite-node/vite-node.mjs", import.meta.url)), "test/fixtures/kit-mutants/node-test-run.ts"],
      root,
      env("put-overwrites"),
    );
    assert.notEqual(run.code, 0, run.output);
    assert.match(run.output, /the kit's check at testing\/suites\/put-get\.ts:\d+:\d+/, run.output);
    assert.match(run.output, /testing\/suites\/put-get\.ts:\d+:\d+/, run.output);
    assert.match(run.output, /expected: 'DGENT_CONFLICT'/, run.output);
    assert.match(run.output, /actual: /, run.output);
  });
});

function runChild(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}
