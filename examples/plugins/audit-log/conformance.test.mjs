// The plugin changes no result: the whole dgent conformance kit passes on a memory store with it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createStore, makeDatum } from "dgent";
import { memoryAdapter } from "dgent/adapters/memory";
import { runConformance } from "dgent/testing";
import { auditLog } from "./index.mjs";

const dir = mkdtempSync(join(tmpdir(), "dgent-audit-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runConformance(
  {
    name: "memory + audit-log",
    create: () => createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: auditLog, options: { path: join(dir, `log-${n++}.jsonl`) } }] }),
  },
  { describe, it, before, after },
);

describe("audit-log", () => {
  it("writes one line per put and delete, in order", async () => {
    const path = join(dir, "order.jsonl");
    const store = createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: auditLog, options: { path, actor: "planner" } }] });
    const a = await store.put(makeDatum({ content: "a" }));
    const b = await store.put(makeDatum({ content: "bb", causalParent: a }));
    await store.delete(a);
    await store.delete("missing");
    const handle = await store.plugin("audit-log");
    await store.close();
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.op, l.id]), [["put", a], ["put", b], ["delete", a], ["delete", "missing"]]);
    assert.equal(lines[1].bytes, 2);
    assert.equal(lines[3].existed, false);
    assert.ok(lines.every((l) => l.actor === "planner" && l.tier !== undefined || l.op === "delete"));
    assert.equal(handle.lines(), 4);
  });

  it("refuses options that do not fit its schema", () => {
    assert.throws(() => createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: auditLog, options: { path: "" } }] }), { code: "DGENT_INVALID_OPTIONS" });
  });
});
