import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import { ackReader, ackTimes, childContent, startChild, untilAll, writesWhileAllWrote } from "../child.js";
import { assertSameDatum, expectCode, ids, type Suite } from "../support.js";

/** Seed 001's three persistence tests: round trip, crash recovery, concurrent access. */
export function persistenceSuite(s: Suite): void {
  s.test(
    "everything survives close and reopen: datums, deletes, order and chains",
    async (scope) => {
      const first = await scope.fresh();
      const a = scope.datum({ key: "a", createdAt: 10, metadata: { role: "user" } });
      const b = scope.datum({ key: "b", createdAt: 20, causalParent: a.id, content: new Uint8Array([0, 255, 10, 13]) });
      const c = scope.datum({ key: "c", createdAt: 30, causalParent: b.id });
      const gone = scope.datum({ key: "gone", createdAt: 40 });
      for (const d of [a, b, c, gone]) await first.store.put(d);
      await first.store.delete(gone.id);
      const second = await scope.reopen(first);
      for (const d of [a, b, c]) assertSameDatum(await second.store.get(d.id), d, "after reopen");
      assert.equal(await second.store.get(gone.id), null, "a delete survives reopen");
      assert.deepEqual(ids(await second.store.list({ prefix: scope.prefix })), [c.id, b.id, a.id]);
      assert.deepEqual(ids(await second.store.causalChain(c.id)), [a.id, b.id, c.id]);
      await expectCode(second.store.put({ ...a, content: new Uint8Array([9]) }), "DGENT_CONFLICT");
      await second.store.put(scope.datum({ key: "d" }));
      const third = await scope.reopen(second);
      assert.equal((await third.store.list({ prefix: scope.prefix })).length, 4);
    },
    { reopen: true },
  );

  s.test(
    "crash recovery: a writer killed with SIGKILL mid-stream loses no acknowledged datum",
    async (scope) => {
      const first = await scope.fresh();
      await scope.close(first);
      const prefix = `${scope.prefix}crash/`;
      const size = 2048;
      const child = startChild(s.target, first.raw, { mode: "stream", prefix, size });
      const wanted = s.options.crashAfter;
      await child.until((lines) => lines.length >= wanted);
      child.process.kill("SIGKILL");
      assert.equal(await child.exited, "SIGKILL");
      const acked = child.lines.filter((l) => l.startsWith("ack ")).map((l) => l.slice(4));
      assert.ok(acked.length >= wanted, `the child acknowledged ${acked.length} writes`);
      const after = await scope.reopen(first);
      for (const id of acked) {
        const d = await after.store.get(id);
        assert.ok(d, `acknowledged datum ${id} was lost`);
        assert.equal(Buffer.from(d.content).toString(), childContent(id, size).toString(), `content of ${id}`);
      }
      const last = acked[acked.length - 1] as string;
      const chain = await after.store.causalChain(last);
      assert.equal(chain.length, acked.length, "the causal chain of the last acknowledged datum is whole");
      const listed = await after.store.list({ prefix, limit: 100_000 });
      assert.ok(listed.length >= acked.length && listed.length <= acked.length + 1, "at most one unacknowledged write landed");
      await after.store.put(scope.datum({ key: "after-crash" }));
    },
    { child: true, capability: "persistent" },
  );
}

export function concurrencySuite(s: Suite): void {
  s.test("100 concurrent puts of distinct datums are all stored", async (scope) => {
    const { store } = await scope.fresh();
    const batch = Array.from({ length: 100 }, (_, i) => scope.datum({ createdAt: 1_000 + i }));
    const results = await Promise.all(batch.map((d) => store.put(d)));
    assert.deepEqual(results, ids(batch));
    assert.equal((await store.list({ prefix: scope.prefix, limit: 1000 })).length, 100);
  });

  s.test("10 concurrent puts of one identical datum all succeed and store it once", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum();
    const results = await Promise.all(Array.from({ length: 10 }, () => store.put({ ...d })));
    assert.ok(results.every((id) => id === d.id));
    assert.equal((await store.list({ prefix: scope.prefix })).length, 1);
  });

  s.test("10 concurrent puts of different datums to one id: exactly one wins, the rest conflict", async (scope) => {
    const { store } = await scope.fresh();
    const id = `${scope.prefix}contested`;
    const rivals: Datum[] = Array.from({ length: 10 }, (_, i) => scope.datum({ id, content: new TextEncoder().encode(`rival ${i}`) }));
    const settled = await Promise.allSettled(rivals.map((d) => store.put(d)));
    const won = settled.filter((r) => r.status === "fulfilled");
    const lost = settled.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    assert.equal(won.length, 1, "exactly one writer wins");
    for (const r of lost) assert.equal((r.reason as { code?: string }).code, "DGENT_CONFLICT");
    const stored = await store.get(id);
    const winner = rivals[settled.findIndex((r) => r.status === "fulfilled")] as Datum;
    assertSameDatum(stored, winner);
  });

  s.test(
    "several processes writing at once lose nothing, and one of them wins a contested id",
    async (scope) => {
      const first = await scope.fresh();
      await scope.close(first);
      const { processes, perProcess } = s.options;
      const race = `${scope.prefix}race`;
      const prefixOf = (p: number) => `${scope.prefix}p${p}/`;
      const children = Array.from({ length: processes }, (_, p) => startChild(s.target, first.raw, { mode: "write", prefix: prefixOf(p), size: 256, race }));
      try {
        // Barrier: every writer has opened its store and waits; then all start on one signal.
        await Promise.all(children.map((c) => c.until((lines) => lines.includes("ready"))));
        for (const c of children) c.send("go");
        // They write until each has made `perProcess` puts while all the others were writing too,
        // however the machine schedules them: the overlap is a condition of stopping, not luck.
        const acks = ackReader(children);
        await untilAll(children, () => writesWhileAllWrote(acks()).every((n) => n >= perProcess));
        for (const c of children) c.send("stop");
        await Promise.all(children.map((c) => c.until((lines) => lines.some((l) => l.startsWith("stopped ")))));
        // Second barrier: every writer puts the contested id on one signal.
        for (const c of children) c.send("race", true);
        const codes = await Promise.all(children.map((c) => c.exited));
        children.forEach((c, p) => assert.equal(codes[p], 0, `writer ${p} failed:\n${c.stderr.join("")}`));
      } finally {
        for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill("SIGKILL");
      }
      const times = children.map((c) => ackTimes(c.lines));
      const overlap = writesWhileAllWrote(times);
      assert.ok(
        overlap.every((n) => n >= perProcess),
        `the writers did not run at the same time: puts each made while all were writing: ${overlap.join(", ")} (wanted ${perProcess} each)`,
      );
      const raceLines = children.map((c) => c.lines.find((l) => l.startsWith("race ")));
      assert.equal(raceLines.filter((l) => l === "race won").length, 1, `one winner: ${raceLines.join(", ")}`);
      assert.ok(raceLines.every((l) => l === "race won" || l === "race DGENT_CONFLICT"), raceLines.join(", "));
      const after = await scope.reopen(first);
      for (let p = 0; p < processes; p++) {
        const written = Number((children[p]?.lines.find((l) => l.startsWith("stopped ")) ?? "stopped -1").slice("stopped ".length));
        assert.equal(times[p]?.length, written, `writer ${p} acknowledged every put it reports`);
        const listed = await after.store.list({ prefix: prefixOf(p), limit: 100_000 });
        assert.equal(listed.length, written, `all datums of writer ${p}`);
        for (const d of listed) assert.equal(Buffer.from(d.content).toString(), childContent(d.id, 256).toString());
      }
      const winner = await after.store.get(race);
      const won = children.findIndex((c) => c.lines.includes("race won"));
      assert.ok(winner, "the contested id is stored");
      assert.equal(Buffer.from(winner.content).toString(), prefixOf(won), "the stored contested datum is the winner's");
    },
    { child: true, capability: "multiProcess" },
  );
}
