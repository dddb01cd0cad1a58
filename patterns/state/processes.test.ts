/**
 * Several processes stepping one StateFunctor agent on one SQLite file. The children run
 * fixtures/stepper.mjs, which imports the built package: run `npm run build` after changing
 * patterns/state. Children start together on a "go" line and print `ack <n>` once a step is
 * acknowledged; nothing here waits on time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore } from "../../compose/index.js";
import { lineChild, type LineChild } from "../../test/harness/line-child.js";
import { liftLogic } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-state-procs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const STEPPER = fileURLToPath(new URL("./fixtures/stepper.mjs", import.meta.url));

interface Stepper extends LineChild {
  /** The counter values this child's acknowledged steps made, in its order. */
  readonly acks: number[];
  readonly tries: number[];
}

function stepper(path: string, key: string, steps: number): Stepper {
  const acks: number[] = [];
  const tries: number[] = [];
  const child = lineChild(STEPPER, { DGENT_STEPPER: JSON.stringify({ path, key, steps }) }, (line) => {
    if (line.startsWith("ack ")) {
      const [, n, t] = line.split(" ");
      acks.push(Number(n));
      tries.push(Number(t));
    }
  }, "the stepper");
  return { ...child, acks, tries };
}

const ready = (s: Stepper) => s.until(() => s.lines.includes("ready"));
const go = (s: Stepper) => s.process.stdin!.end("go\n");

/** How often consecutive counter values came from different children: > 1 means the steps interleaved. */
function handovers(children: readonly Stepper[]): number {
  const owner = new Map<number, number>();
  children.forEach((c, i) => c.acks.forEach((n) => owner.set(n, i)));
  let changes = 0;
  for (let n = 2; owner.has(n); n++) if (owner.get(n) !== owner.get(n - 1)) changes++;
  return changes;
}

async function finalHistory(path: string, key: string) {
  const store = createStore({ tiers: [sqliteAdapter({ path })] });
  const agent = liftLogic<null, number, { count: number }>((_i, s) => [s.count + 1, { count: s.count + 1 }], { store, key, initial: { count: 0 } });
  const history = await agent.history();
  return { store, agent, history };
}

describe("StateFunctor: several processes on one SQLite file", () => {
  it("two processes stepping one agent 1,000 times each end with exactly 2,000: every step in the chain, none lost, none twice", async () => {
    const path = join(dir, "two.db");
    const STEPS = 1000;
    const children = [stepper(path, "counter", STEPS), stepper(path, "counter", STEPS)];
    await Promise.all(children.map(ready));
    children.forEach(go);
    const codes = await Promise.all(children.map((c) => c.exited));
    expect(codes, children.flatMap((c) => c.stderr).join("")).toEqual([0, 0]);
    expect(children.map((c) => c.acks.length)).toEqual([STEPS, STEPS]);

    const { store, agent, history } = await finalHistory(path, "counter");
    expect(await agent.state()).toEqual({ count: 2 * STEPS });
    expect(history.map((e) => e.state.count)).toEqual(Array.from({ length: 2 * STEPS }, (_, i) => i + 1));
    // Each acknowledged value came from exactly one step of one child.
    const acked = children.flatMap((c) => c.acks).sort((a, b) => a - b);
    expect(acked).toEqual(Array.from({ length: 2 * STEPS }, (_, i) => i + 1));
    // Each child's own values only grow (its steps are ordered along the chain).
    for (const c of children) expect(c.acks.every((n, i) => i === 0 || n > (c.acks[i - 1] as number))).toBe(true);
    const retried = children.flatMap((c) => c.tries).reduce((a, b) => a + b, 0) - 2 * STEPS;
    console.log(`two processes × ${STEPS} steps: ${handovers(children)} handovers between them along the chain, ${retried} steps retried after losing a race`);
    expect(await store.count({ prefix: "state/counter/" })).toBe(2 * STEPS);
    await store.close();
  });

  it("a process killed (SIGKILL) between steps loses no acknowledged step; the chain stays whole and others go on", async () => {
    const path = join(dir, "crash.db");
    const victim = stepper(path, "crash", 1_000_000);
    const survivor = stepper(path, "crash", 400);
    await Promise.all([ready(victim), ready(survivor)]);
    go(victim);
    go(survivor);
    await victim.until(() => victim.acks.length >= 150);
    victim.process.kill("SIGKILL");
    expect(await victim.exited).toBe("SIGKILL");
    expect(await survivor.exited, survivor.stderr.join("")).toBe(0);

    const { store, agent, history } = await finalHistory(path, "crash");
    const counts = history.map((e) => e.state.count);
    const final = (await agent.state()).count;
    // The chain is whole: 1, 2, …, final — no update lost, whoever made it.
    expect(counts).toEqual(Array.from({ length: final }, (_, i) => i + 1));
    // Every acknowledged step of both processes is in it…
    const inHistory = new Set(counts);
    for (const n of [...victim.acks, ...survivor.acks]) expect(inHistory.has(n)).toBe(true);
    // …and at most the one step the victim had in flight was committed without its ack.
    expect(final).toBeGreaterThanOrEqual(victim.acks.length + survivor.acks.length);
    expect(final).toBeLessThanOrEqual(victim.acks.length + survivor.acks.length + 1);
    // A new process carries on from there.
    expect(await agent.invoke(null)).toBe(final + 1);
    await store.close();
  });
});
