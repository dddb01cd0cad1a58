import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum, type MakeDatumInput } from "../../core/datum.js";
import { isDgentError, type DgentError } from "../../core/errors.js";
import { memoryAdapter } from "../memory/index.js";
import { sqliteAdapter, type SqliteAdapter } from "./index.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-"));
  dirs.push(dir);
  return dir;
};
const cleanup = (): void => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
};

const datum = (id: string, extra: Partial<MakeDatumInput> = {}): Datum =>
  makeDatum({ content: `content of ${id}`, createdAt: 1_000, ...extra, id });

/** The coded error `fn` throws or rejects with. */
async function codeOf(fn: () => unknown): Promise<DgentError> {
  try {
    await fn();
  } catch (error) {
    if (isDgentError(error)) return error;
    throw error;
  }
  throw new Error("expected a coded error, but the call succeeded");
}

let a: SqliteAdapter;
beforeAll(async () => {
  a = sqliteAdapter({ path: join(tempDir(), "chain.db") });
  await a.open();
});
afterAll(async () => {
  await a.close();
  cleanup();
});

const queries = async () => (await a.stats()).queries as number;
/** Statements a call ran (stats() itself counts one, subtracted here). */
async function statementsOf(fn: () => Promise<unknown>): Promise<number> {
  const before = await queries();
  await fn();
  return (await queries()) - before - 1;
}

describe("sqlite: causalChain", () => {
  it("answers a 1,000-deep chain in one statement, oldest first", async () => {
    const chain: Datum[] = [];
    for (let i = 0; i < 1000; i++) chain.push(datum(`deep/${i}`, { createdAt: i, causalParent: i ? `deep/${i - 1}` : null }));
    await a.putMany(chain);
    let got: Datum[] = [];
    expect(await statementsOf(async () => (got = await a.causalChain("deep/999", 10_000)))).toBe(1);
    expect(got.map((d) => d.id)).toEqual(chain.map((d) => d.id));
    expect(Buffer.from(got[500]?.content ?? []).toString()).toBe("content of deep/500");
    expect((await codeOf(() => a.causalChain("deep/999", 999))).code).toBe("DGENT_CAUSAL_DEPTH");
    expect((await a.causalChain("deep/999", 1000)).length).toBe(1000);
    expect((await a.causalChain("deep/0", 1)).map((d) => d.id)).toEqual(["deep/0"]);
  });

  it("stops at a missing ancestor and returns [] for a missing id", async () => {
    await a.put(datum("orphan/b", { causalParent: "orphan/gone" }));
    await a.put(datum("orphan/c", { causalParent: "orphan/b" }));
    expect((await a.causalChain("orphan/c", 100)).map((d) => d.id)).toEqual(["orphan/b", "orphan/c"]);
    expect(await a.causalChain("nobody", 100)).toEqual([]);
  });

  it("detects a cycle in one statement, without a hang, naming the repeated id", async () => {
    await a.put(datum("cyc/a", { causalParent: "cyc/c" }));
    await a.put(datum("cyc/b", { causalParent: "cyc/a" }));
    await a.put(datum("cyc/c", { causalParent: "cyc/b" }));
    await a.put(datum("cyc/tail", { causalParent: "cyc/c" }));
    let error: Error & { code?: string; details?: Record<string, unknown> } = new Error("none");
    // One statement that ends (at most maxDepth + 1 steps round the cycle) and names the repeat.
    expect(await statementsOf(async () => (error = await codeOf(() => a.causalChain("cyc/tail", 10_000))))).toBe(1);
    expect(error.code).toBe("DGENT_CAUSAL_CYCLE");
    expect(error.details?.repeated).toBe("cyc/c");
  });
});

/** Random parent graphs (chains, forks, dangling parents, cycles): same answer as core's walk. */
describe("sqlite: causalChain agrees with core's walk (memory tier)", () => {
  it("on random parent graphs and depth limits", async () => {
    let round = 0;
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.nat(14), { nil: null }), { minLength: 1, maxLength: 12 }),
        fc.nat(13),
        fc.integer({ min: 1, max: 14 }),
        async (parents, start, maxDepth) => {
          const ns = `g${round++}/`;
          const ds = parents.map((p, i) =>
            datum(`${ns}${i}`, { createdAt: i, causalParent: p === null || p === i ? null : `${ns}${p}` }),
          );
          const mem = memoryAdapter();
          await mem.open();
          for (const d of ds) await mem.put(d);
          await a.putMany(ds);
          const outcome = async (f: () => Promise<Datum[]>) => {
            try {
              return { ids: (await f()).map((d) => d.id) };
            } catch (error) {
              const e = error as { code?: string; details?: Record<string, unknown> };
              return { code: e.code, repeated: e.details?.repeated };
            }
          };
          const id = `${ns}${start}`;
          const expected = await outcome(() => mem.causalChain?.(id, maxDepth) ?? Promise.resolve([]));
          expect(await outcome(() => a.causalChain(id, maxDepth))).toEqual(expected);
          seen.add(expected.code ?? (expected.ids?.length ? "chain" : "empty"));
          await mem.close();
        },
      ),
      // Besides the random runs, one graph of each kind, so every outcome is reached whatever the seed.
      { numRuns: 300, examples: [[[1, 0], 0, 14], [[null], 5, 1], [[null, 0, 1], 2, 14], [[null, 0, 1, 2], 3, 2]] },
    );
    // Every kind of outcome was reached.
    expect([...seen].sort()).toEqual(["DGENT_CAUSAL_CYCLE", "DGENT_CAUSAL_DEPTH", "chain", "empty"]);
  });
});
