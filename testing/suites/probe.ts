import assert, { AssertionError } from "node:assert/strict";
import type { Adapter } from "../../core/protocol.js";
import { isStore } from "../../core/store.js";
import { settle, within, type Suite } from "../support.js";

/**
 * `probe()` (CONTRIBUTING.md): a cheap availability check that bounds itself with its own
 * timeout and never throws or rejects. It resolves `true` while the instance is open and its
 * backend answers, and `false` while the backend cannot be reached. Before `open()` and after
 * `close()` it must still resolve, `true` or `false` (a remote tier may ask its server; dgent's
 * own tiers say `false` once closed).
 */
export function probeSuite(s: Suite): void {
  s.test("probe() answers true while open, resolves true or false before open() and after close(), and never throws", async (scope) => {
    const adapter = await scope.adapter("probe() belongs to adapters");
    if (typeof adapter.probe !== "function") scope.skip("the adapter has no probe()");
    const deadline = s.options.deadlineMs;
    await probed(adapter, deadline, "probe() before open()");
    await adapter.open();
    assert.equal(await probed(adapter, deadline, "probe() of an open instance"), true, "probe() of an open instance whose backend answers");
    await adapter.put(scope.datum());
    assert.equal(await probed(adapter, deadline, "probe() of an open instance"), true, "probe() of an open instance whose backend answers");
    await adapter.close();
    await probed(adapter, deadline, "probe() after close()");
    await probed(adapter, deadline, "a second probe() after close()");
  });

  s.test(
    "an unreachable backend: probe() resolves false by its own timeout, open() fails with a retryable coded error",
    async (scope) => {
      const dead = await scope.dead();
      const deadline = s.options.deadlineMs;
      const adapter = isStore(dead) ? null : (dead as Adapter);
      if (adapter?.probe) {
        assert.equal(await probed(adapter, deadline, "probe() of an unreachable backend, before open()"), false, "probe() of an unreachable backend");
      }
      const outcome = await within(
        settle(() => dead.open(), "open()").then(
          () => null,
          (error: unknown) => error,
        ),
        deadline,
        "open() of an unreachable backend",
      );
      assert.ok(outcome !== null, "open() of an unreachable backend resolved: it must fail, so a store degrades around the tier");
      const err = outcome as { code?: unknown; retryable?: unknown; message?: unknown };
      assert.ok(
        typeof err.code === "string" && err.code.startsWith("DGENT_") && err.retryable === true,
        `open() of an unreachable backend must fail with a retryable DgentError (DGENT_UNAVAILABLE), so a lattice degrades around the tier; got ${String(err.code ?? "no code")} (retryable: ${String(err.retryable)}): ${String(err.message)}`,
      );
      if (adapter?.probe) {
        assert.equal(await probed(adapter, deadline, "probe() after a failed open()"), false, "probe() of an unreachable backend after a failed open()");
      }
      await within(settle(() => dead.close(), "close()"), deadline, "close() of an instance whose open() failed");
    },
    { dead: true },
  );
}

/** The probe's answer; a rejection, a synchronous throw, a non-boolean or a hang fails the test. */
async function probed(adapter: Adapter, deadline: number, what: string): Promise<boolean> {
  const answer = await within(
    settle(() => (adapter.probe as () => Promise<boolean>).call(adapter), what).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    deadline,
    what,
  );
  if ("error" in answer) {
    throw new AssertionError({ message: `${what} threw; probe() must resolve true or false, never throw: ${String(answer.error)}`, actual: answer.error, expected: "a boolean", operator: "resolves" });
  }
  assert.equal(typeof answer.value, "boolean", `${what} must resolve a boolean, got ${String(answer.value)}`);
  return answer.value;
}
