/**
 * The fulltext suite (suite.ts) on the local tiers: memory and JSONL (the in-process inverted
 * index) and SQLite (FTS5 in a sidecar file). Postgres runs it in postgres.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStoreFromConfig } from "../../compose/config/index.js";
import { createStore, type PluginUse, type Store } from "../../core/store.js";
import { makeDatum } from "../../core/datum.js";
import { fulltextPlugin, textIndex, tokenize, type FulltextOptions } from "./index.js";
import { ftsMatch, tsQuery } from "./storage.js";
import { InvertedIndex } from "./tokens.js";
import { runFulltextSuite, type Framework } from "./suite.js";

const fw = { describe, it, expect } as unknown as Framework;
const report = (line: string) => process.stdout.write(`${line}\n`);
let dir = "";
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dgent-fulltext-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (ext: string) => join(dir, `s${++n}.${ext}`);
const paths = new WeakMap<object, string>();
const plugins = (o: FulltextOptions | null, extra: ReadonlyArray<unknown> = []) => [...(o ? [fulltextPlugin(o)] : []), ...(extra as PluginUse<never>[])];

runFulltextSuite({ name: "memory", storage: "memory", create: (o, extra) => createStore({ tiers: [memoryAdapter()], plugins: plugins(o, extra) }) }, fw, report);

runFulltextSuite(
  {
    name: "jsonl (in-process index, rebuilt at attach)",
    storage: "memory",
    create(o, extra) {
      const path = file("jsonl");
      const store = createStore({ tiers: [jsonlAdapter({ path })], plugins: plugins(o, extra) });
      paths.set(store, path);
      return store;
    },
    reopen: (previous, o) => createStore({ tiers: [jsonlAdapter({ path: paths.get(previous) as string })], plugins: plugins(o) }),
  },
  fw,
  report,
);

runFulltextSuite(
  {
    name: "sqlite (FTS5 sidecar)",
    storage: "sqlite",
    create(o, extra) {
      const path = file("db");
      const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: plugins(o, extra) });
      paths.set(store, path);
      return store;
    },
    reopen: (previous, o) => createStore({ tiers: [sqliteAdapter({ path: paths.get(previous) as string })], plugins: plugins(o) }),
  },
  fw,
  report,
);

describe("fulltext pieces", () => {
  it("tokenizes Unicode words, lower-cased, without diacritics", () => {
    expect(tokenize("Crème brûlée, NAÏVE café-au-lait 42x")).toEqual(["creme", "brulee", "naive", "cafe", "au", "lait", "42x"]);
    expect(tokenize("  ,;  ")).toEqual([]);
  });

  it("quotes terms for FTS5 and tsquery", () => {
    expect(ftsMatch(["a", "or"])).toBe('"a" OR "or"');
    expect(tsQuery(["a", "b"])).toBe("'a' | 'b'");
  });

  it("scores BM25 as the formula says (k1 1.2, b 0.75)", () => {
    const index = new InvertedIndex();
    const h = (id: string) => ({ id, createdAt: 1, causalParent: null, metadata: {} });
    index.set(h("x"), "apple apple pear");
    index.set(h("y"), "pear plum");
    // N = 2, df(apple) = 1 → idf = ln(1 + 1.5/1.5) = ln 2; avgdl 2.5; x: len 3, tf 2.
    const expected = (Math.log(2) * 2 * 2.2) / (2 + 1.2 * (1 - 0.75 + (0.75 * 3) / 2.5));
    const [hit] = index.search(["apple"], 10, null);
    expect(hit?.id).toBe("x");
    expect(hit?.score).toBeCloseTo(expected, 10);
    index.delete("x");
    expect(index.search(["apple"], 10, null)).toEqual([]);
  });

  it("is composed from a config file by its name, and checks its options", async () => {
    const data = join(dir, `cfg${++n}`);
    const store: Store = await createStoreFromConfig({ namespace: "ft", dataDir: data, tiers: ["sqlite"], plugins: [{ plugin: "fulltext" }] }, { env: {} });
    try {
      const text = await textIndex(store);
      await store.put(makeDatum({ id: "k", content: "configured by file" }));
      expect((await text.search("configured")).map((x) => x.id)).toEqual(["k"]);
      expect(text.stats().storage).toBe("sqlite");
    } finally {
      await store.close();
    }
    await expect(createStoreFromConfig({ tiers: ["memory"], plugins: [{ plugin: "fulltext", options: { storage: "elastic" } }] }, { env: {} })).rejects.toMatchObject({ code: expect.stringMatching(/^DGENT_INVALID_(OPTIONS|CONFIG)$/) });
  });

  it("refuses a storage the tier cannot have", async () => {
    const store = createStore({ tiers: [memoryAdapter()], plugins: [fulltextPlugin({ storage: "sqlite" })] });
    try {
      await expect(textIndex(store)).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    } finally {
      await store.close();
    }
  });
});
