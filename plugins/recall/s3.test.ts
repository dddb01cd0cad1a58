/**
 * Recall on an object store (S3, s3rver in a child process): the search suite with the vectors as
 * datums, and the saved artefact — at a restart, a few large reads instead of one per vector.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3Adapter } from "../../adapters/s3/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { hashingEmbedder, recallPlugin, vectorMemory, type RecallOptions } from "./index.js";
import { runSearchSuite } from "../../testing/suites/search.js";

let s3: S3Server;
const bucket = `recall-${randomBytes(4).toString("hex")}`;
beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket(bucket);
});
afterAll(async () => {
  await s3?.stop();
});

const namespaces = new WeakMap<object, string>();
function s3Store(namespace: string, options: RecallOptions): Store {
  const store = createStore({ tiers: [s3Adapter({ bucket, namespace, ...s3.clientOptions })], plugins: [recallPlugin(options)] });
  namespaces.set(store, namespace);
  return store;
}
let n = 0;
const fresh = () => `ns${++n}-${randomBytes(3).toString("hex")}`;

runSearchSuite(
  { name: "s3 (vectors as datums)", create: (o) => s3Store(fresh(), o), reopen: (previous, o) => s3Store(namespaces.get(previous) as string, o) },
  { describe, it, beforeAll, afterAll },
  { size: 100, annSize: 200, filterQueries: 2, report: (line) => process.stdout.write(`${line}\n`) },
);

describe("recall on S3", () => {
  it("a saved artefact is read in a few requests at a restart, instead of one per vector", async () => {
    const namespace = fresh();
    const options: RecallOptions = { embedder: hashingEmbedder({ dimensions: 64 }), ann: false, saveEvery: 0 };
    let store = s3Store(namespace, options);
    const memory = await vectorMemory(store);
    for (let i = 0; i < 40; i++) await store.put(makeDatum({ id: `doc/${i}`, content: `document ${i} about ${i % 2 ? "rivers" : "mountains"}` }));
    await store.close();

    const getsAtRestart = async (): Promise<{ gets: number; store: Store }> => {
      const again = s3Store(namespace, options);
      await s3.resetStats();
      const m = await vectorMemory(again);
      expect(m.stats()).toMatchObject({ vectors: 40, lastCatchUp: { embedded: 0, removed: 0 } });
      return { gets: (await s3.stats()).byOp.GetObject ?? 0, store: again };
    };
    const before = await getsAtRestart();
    await (await vectorMemory(before.store)).save();
    await before.store.close();
    const after = await getsAtRestart();
    store = after.store;
    try {
      // 40 vector datums were read one by one; the artefact is two datums (manifest, records).
      // (Every listing on S3 also reads the namespace's envelopes: those remain.)
      expect(before.gets - after.gets).toBeGreaterThanOrEqual(30);
      expect(await store.count({ prefix: "dgent.vec/", where: { "dgent.recall": "vector" } })).toBe(0);
      expect(await (await vectorMemory(store)).search("rivers", { k: 3 })).toHaveLength(3);
    } finally {
      await store.close();
    }
    expect(memory.stats().errors).toEqual([]);
  });
});
