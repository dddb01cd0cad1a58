import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { Adapter } from "../core/protocol.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { storeScriptArb, type StoreOp } from "./arbitrary-scripts.js";
import { assertSameDatum, ReferenceStore, referenceList } from "./references.js";

// The local tiers run scripts of puts, batches, deletes, re-puts of deleted ids (the same value
// or another), conflicting and identical re-puts and reopens, with ids on every UTF-8 boundary,
// awkward metadata keys and bytes held as views at an offset; after every step, get and list
// must agree with the reference model. (The JSONL tier runs the same scripts, with compaction,
// in adapters/jsonl/jsonl.test.ts.)

const root = mkdtempSync(join(tmpdir(), "dgent-properties-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code ?? `uncoded: ${(error as Error).message}`;
  }
  return "no error";
}

/** Runs `script` on the adapter `make` opens, checking it against the reference after each step. */
async function agreesWithReference(script: readonly StoreOp[], make: () => Adapter, reopens: boolean): Promise<void> {
  let adapter = make();
  await adapter.open();
  const model = new ReferenceStore();
  const pool = [...new Set(script.flatMap((s) => (s.op === "put" ? [s.datum.id] : s.op === "putMany" ? s.datums.map((d) => d.id) : s.op === "delete" ? [s.id] : [])))];
  const queries = [
    { prefix: "", after: -1, limit: 1000 },
    { prefix: "", after: 2, limit: 2 },
    ...pool.map((id) => ({ prefix: [...id][0] as string, after: -1, limit: 3 })),
  ];
  const check = async (where: string) => {
    for (const id of pool) {
      const want = model.live.get(id);
      const got = await adapter.get(id);
      if (want === undefined) expect(got, `${where}: ${JSON.stringify(id)} was deleted or never stored`).toBeNull();
      else assertSameDatum(got, want, where);
    }
    for (const q of queries) {
      expect((await adapter.list(q)).map((d) => d.id), `${where}: list ${JSON.stringify(q)}`).toEqual(referenceList(model.live.values(), q).map((d) => d.id));
    }
  };
  try {
    for (const [step, s] of script.entries()) {
      const where = `step ${step} (${s.op})`;
      switch (s.op) {
        case "put":
          if (model.put(s.datum) === "conflict") expect(await codeOf(adapter.put(s.datum)), where).toBe("DGENT_CONFLICT");
          else expect(await adapter.put(s.datum), where).toBe(s.datum.id);
          break;
        case "putMany": {
          const putMany = adapter.putMany?.bind(adapter);
          if (putMany === undefined) throw new Error(`${adapter.name} has no putMany`);
          if (model.putMany(s.datums) === "conflict") expect(await codeOf(putMany(s.datums)), where).toBe("DGENT_CONFLICT");
          else expect(await putMany(s.datums), where).toEqual(s.datums.map((d) => d.id));
          break;
        }
        case "delete":
          expect(await adapter.delete(s.id), where).toBe(model.delete(s.id) === "deleted");
          break;
        case "compact":
          break;
        case "reopen":
          if (reopens) {
            await adapter.close();
            adapter = make();
            await adapter.open();
          }
          break;
      }
      await check(where);
    }
  } finally {
    await adapter.close();
  }
}

describe("property: local tiers agree with the reference model on scripts with deletes and re-puts", () => {
  it("memory (copying)", async () => {
    await fc.assert(
      fc.asyncProperty(storeScriptArb, (script) => agreesWithReference(script, () => memoryAdapter(), false)),
      { numRuns: 150 },
    );
  });

  it("memory (zero-copy)", async () => {
    await fc.assert(
      fc.asyncProperty(storeScriptArb, (script) => agreesWithReference(script, () => memoryAdapter({ copy: false }), false)),
      { numRuns: 150 },
    );
  });

  it("sqlite (a file, reopened)", async () => {
    await fc.assert(
      fc.asyncProperty(storeScriptArb, (script) => {
        const path = join(root, `s${counter++}.db`);
        return agreesWithReference(script, () => sqliteAdapter({ path }), true);
      }),
      { numRuns: 50 },
    );
  });
});
