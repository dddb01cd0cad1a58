/**
 * Several processes appending to one event stream on one SQLite file. The children run
 * fixtures/appender.mjs, which imports the built package: run `npm run build` after changing
 * patterns/events. Children start together on a "go" line and print `ack <seq>` once an append
 * is acknowledged; nothing here waits on time. Every child appends the same event, so two appends
 * racing for one position differ only by the writer tag the stream adds.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore } from "../../compose/index.js";
import { lineChild, type LineChild } from "../../test/harness/line-child.js";
import { eventStream } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-events-procs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const APPENDER = fileURLToPath(new URL("./fixtures/appender.mjs", import.meta.url));

interface Appender extends LineChild {
  /** The positions this child's acknowledged appends took, in its order. */
  readonly acks: number[];
}

function appender(path: string, name: string, events: number): Appender {
  const acks: number[] = [];
  const child = lineChild(APPENDER, { DGENT_APPENDER: JSON.stringify({ path, name, events }) }, (line) => {
    if (line.startsWith("ack ")) acks.push(Number(line.slice(4)));
  }, "the appender");
  return { ...child, acks };
}

const ready = (a: Appender) => a.until(() => a.lines.includes("ready"));
const go = (a: Appender) => a.process.stdin!.end("go\n");

/** The stream as stored: its version, its state, and each position's writer tag, in order. */
async function stored(path: string, name: string) {
  const store = createStore({ tiers: [sqliteAdapter({ path })] });
  const stream = eventStream(store, { name, reducer: (n: number) => n + 1, initial: 0, snapshotEvery: 100 });
  const version = await stream.version();
  const seqs: number[] = [];
  for await (const e of stream.replay()) seqs.push(e.seq); // throws on a missing position
  const datums = await store.getMany(seqs.map((s) => stream.eventId(s)));
  const writers = datums.map((d) => d?.metadata.writer);
  return { store, stream, version, seqs, writers, state: await stream.state() };
}

describe("event streams: several processes on one SQLite file", () => {
  it("two processes appending the same event 300 times each: all 600 land, each exactly once, at positions 1…600", async () => {
    const path = join(dir, "two.db");
    const N = 300;
    const children = [appender(path, "ticks", N), appender(path, "ticks", N)];
    await Promise.all(children.map(ready));
    children.forEach(go);
    const codes = await Promise.all(children.map((c) => c.exited));
    expect(codes, children.flatMap((c) => c.stderr).join("")).toEqual([0, 0]);
    const { store, version, seqs, writers, state } = await stored(path, "ticks");
    expect(version).toBe(2 * N);
    expect(state).toBe(2 * N);
    expect(seqs).toEqual(Array.from({ length: 2 * N }, (_, i) => i + 1));
    // Each acknowledged position belongs to one append of one child, and each child's only grow.
    expect(children.flatMap((c) => c.acks).sort((a, b) => a - b)).toEqual(seqs);
    for (const c of children) expect(c.acks.every((n, i) => i === 0 || n > (c.acks[i - 1] as number))).toBe(true);
    // Two writers, N events each: identical events never merged into one.
    const perWriter = [...new Set(writers)].map((w) => writers.filter((x) => x === w).length);
    expect(perWriter).toEqual([N, N]);
    await store.close();
  });

  it("a process killed (SIGKILL) mid-append loses no acknowledged event; the stream stays contiguous and others go on", async () => {
    const path = join(dir, "crash.db");
    const victim = appender(path, "crash", 1_000_000);
    const survivor = appender(path, "crash", 250);
    await Promise.all([ready(victim), ready(survivor)]);
    go(victim);
    go(survivor);
    await victim.until(() => victim.acks.length >= 100);
    victim.process.kill("SIGKILL");
    expect(await victim.exited).toBe("SIGKILL");
    expect(await survivor.exited, survivor.stderr.join("")).toBe(0);
    const { store, stream, version, seqs, state } = await stored(path, "crash");
    expect(seqs).toEqual(Array.from({ length: version }, (_, i) => i + 1));
    expect(state).toBe(version);
    const acked = new Set(seqs);
    for (const n of [...victim.acks, ...survivor.acks]) expect(acked.has(n)).toBe(true);
    // At most the one append the victim had in flight landed without its ack.
    expect(version).toBeGreaterThanOrEqual(victim.acks.length + survivor.acks.length);
    expect(version).toBeLessThanOrEqual(victim.acks.length + survivor.acks.length + 1);
    expect(await stream.append({ type: "tick" })).toBe(version + 1);
    await store.close();
  });
});
