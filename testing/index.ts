/**
 * dgent's conformance kit. A third-party adapter runs every protocol law in a few lines:
 *
 * ```ts
 * import { describe, it, beforeAll, afterAll } from "vitest"; // or from "node:test"
 * import { runConformance } from "dgent/testing";
 * runConformance({ name: "mine", create: () => myAdapter({ dir: freshDir() }) }, { describe, it, beforeAll, afterAll });
 * ```
 */
import { nameFailedCheck, Scope, SkipSignal, type Need, type Suite } from "./support.js";
import { badInputSuite } from "./suites/bad-input.js";
import { causalChainSuite } from "./suites/causal-chain.js";
import { deleteSuite } from "./suites/delete.js";
import { concurrencySuite, persistenceSuite } from "./suites/durability.js";
import { expirySuite } from "./suites/expiry.js";
import { eventsSuite } from "./suites/events.js";
import { lifecycleSuite, putManySuite, scanSuite } from "./suites/lifecycle.js";
import { listSuite } from "./suites/list.js";
import { probeSuite } from "./suites/probe.js";
import { putGetSuite } from "./suites/put-get.js";
import { queriesSuite } from "./suites/queries.js";
import { refsSuite, transactionsSuite } from "./suites/refs.js";
import type { ConformanceOptions, ConformanceTarget, TestContext, TestFramework } from "./types.js";

export type { ConformanceOptions, ConformanceTarget, Json, Target, TestFramework } from "./types.js";
export { assertSameDatum, expectCode, rng, Scope, within } from "./support.js";

/** The suites, one per operation or concern, in the order they run. */
export const SUITES = {
  put: putGetSuite,
  delete: deleteSuite,
  list: listSuite,
  causalChain: causalChainSuite,
  badInput: badInputSuite,
  lifecycle: lifecycleSuite,
  probe: probeSuite,
  events: eventsSuite,
  putMany: putManySuite,
  scan: scanSuite,
  persistence: persistenceSuite,
  concurrency: concurrencySuite,
  refs: refsSuite,
  transactions: transactionsSuite,
  queries: queriesSuite,
  expiry: expirySuite,
} as const;

export type SuiteName = keyof typeof SUITES;

/**
 * Registers the conformance suites for `target` with the given test framework. Tests that need
 * a capability the target does not declare (or a `reopen`/`child` it does not provide) are
 * registered as skipped, with the reason in their name, so the runner counts them.
 */
export function runConformance(target: ConformanceTarget, fw: TestFramework, options: ConformanceOptions = {}): void {
  const resolved: Required<ConformanceOptions> = {
    only: options.only ?? Object.keys(SUITES),
    crashAfter: options.crashAfter ?? 200,
    processes: options.processes ?? 4,
    perProcess: options.perProcess ?? 100,
    deadlineMs: options.deadlineMs ?? 20_000,
    evictionWrites: options.evictionWrites ?? 1_000,
    seed: options.seed ?? 0x5eed_0e,
  };
  const beforeAll = fw.beforeAll ?? fw.before;
  const afterAll = fw.afterAll ?? fw.after;
  fw.describe(`dgent conformance: ${target.name}`, () => {
    if (target.beforeAll) {
      if (!beforeAll) throw new Error("the target has beforeAll(), so pass the framework's beforeAll/before too");
      beforeAll(() => target.beforeAll?.());
    }
    if (target.afterAll) {
      if (!afterAll) throw new Error("the target has afterAll(), so pass the framework's afterAll/after too");
      afterAll(() => target.afterAll?.());
    }
    // Capabilities are only known from an instance; probe one lazily, once.
    let capabilities: Promise<Record<string, boolean>> | null = null;
    const capabilitiesOf = () =>
      (capabilities ??= (async () => {
        const scope = new Scope(target);
        try {
          return { ...(await scope.fresh()).capabilities } as unknown as Record<string, boolean>;
        } finally {
          await scope.dispose();
        }
      })());

    for (const [name, register] of Object.entries(SUITES)) {
      if (!resolved.only.includes(name)) continue;
      fw.describe(name, () => {
        const suite: Suite = {
          fw,
          target,
          options: resolved,
          test(testName, body, need) {
            const missing = staticallyMissing(target, need);
            if (missing) {
              skip(fw, `${testName} [skipped: ${missing}]`);
              return;
            }
            fw.it(testName, async (context?: TestContext) => {
              if (need && "capability" in need && need.capability) {
                const caps = await capabilitiesOf();
                if (!caps[need.capability]) {
                  // A capability the target declares absent: the runner counts the test as skipped.
                  skipNow(context, `the target does not declare ${need.capability}`);
                  return;
                }
              }
              const scope = new Scope(target);
              let failure: { error: unknown } | null = null;
              try {
                await body(scope);
              } catch (error) {
                failure = { error };
              }
              // Releasing the test's instances must not hide why it failed.
              try {
                await scope.dispose();
              } catch (error) {
                failure ??= { error };
              }
              if (failure === null) return;
              if (failure.error instanceof SkipSignal) {
                skipNow(context, failure.error.reason);
                return;
              }
              nameFailedCheck(failure.error, `${name} › ${testName}`);
              throw failure.error;
            });
          },
        };
        register(suite);
      });
    }
  });
}

function staticallyMissing(target: ConformanceTarget, need: Need | undefined): string | null {
  if (!need) return null;
  if ("reopen" in need && !target.reopen) return "the target has no reopen()";
  if ("dead" in need && !target.dead) return "the target has no dead()";
  if ("child" in need && !target.child) return "the target has no child module";
  if ("child" in need && !target.reopen) return "the target has no reopen()";
  return null;
}

/** Skips the running test through the runner's own context, so the runner counts it. */
function skipNow(context: TestContext | undefined, reason: string): void {
  if (typeof context?.skip !== "function") throw new Error(`cannot skip (${reason}): the framework passes no test context`);
  context.skip(reason);
}

function skip(fw: TestFramework, name: string): void {
  const skipper = fw.it.skip;
  if (skipper) skipper.call(fw.it, name, () => undefined);
}
