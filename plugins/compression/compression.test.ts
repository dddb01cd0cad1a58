import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { makeDatum, sameBytes } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { ProbeTier, expectDgent, removeTempDirs, sqliteTier, text } from "../../test/plugins-support.js";
import { compression, ENCODING_KEY, type CompressionOptions, compressionPlugin } from "./index.js";

afterAll(removeTempDirs);

const storeWith = (options: CompressionOptions = {}, tier = new ProbeTier()) => ({
  tier,
  store: createStore({ tiers: [tier], plugins: [compressionPlugin(options)] }),
});
const json = (n: number) =>
  JSON.stringify(Array.from({ length: n }, (_, i) => ({ step: i, role: "agent", thought: "consider the next action carefully" })));

describe("compression", () => {
  it("stores compressible content gzipped, marked in metadata, and reads it back transparently", async () => {
    const { tier, store } = storeWith();
    const body = json(200);
    const d = makeDatum({ content: body, metadata: { kind: "trace" } });
    await store.put(d);
    const raw = await tier.inner.get(d.id);
    expect(raw?.metadata).toEqual({ kind: "trace", [ENCODING_KEY]: "gzip" });
    expect(raw?.content.byteLength).toBeLessThan(body.length / 5);
    expect(Buffer.from(raw?.content ?? []).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic
    const got = await store.get(d.id);
    expect(text(got)).toBe(body);
    expect(got?.metadata).toEqual({ kind: "trace" });
    expect(text((await store.list())[0])).toBe(body);
    expect(text((await store.causalChain(d.id))[0])).toBe(body);
  });

  it("leaves content below the threshold, and content that does not shrink, as it is", async () => {
    const { tier, store } = storeWith({ threshold: 100 });
    const small = makeDatum({ content: "a".repeat(99) });
    const noise = makeDatum({ content: randomBytes(5000) });
    await store.put(small);
    await store.put(noise);
    const stored = await tier.inner.get(small.id);
    expect(text(stored)).toBe(text(small));
    expect(stored?.metadata).toEqual({});
    expect((await tier.inner.get(noise.id))?.metadata).toEqual({});
    expect(sameBytes((await store.get(noise.id))?.content ?? new Uint8Array(), noise.content)).toBe(true);
    expect((await store.plugin(compression)).stats()).toMatchObject({ compressed: 0, stored: 2 });
  });

  it("brotli works too", async () => {
    const { tier, store } = storeWith({ algorithm: "brotli", level: 9 });
    const d = makeDatum({ content: json(100) });
    await store.put(d);
    expect((await tier.inner.get(d.id))?.metadata[ENCODING_KEY]).toBe("br");
    expect(text(await store.get(d.id))).toBe(json(100));
  });

  it("measures the saving", async () => {
    const { store } = storeWith();
    for (let i = 0; i < 10; i++) await store.put(makeDatum({ content: json(50 + i) }));
    const stats = (await store.plugin(compression)).stats();
    expect(stats.compressed).toBe(10);
    expect(stats.bytesIn).toBe(Array.from({ length: 10 }, (_, i) => json(50 + i).length).reduce((a, b) => a + b));
    expect(stats.saved).toBe(stats.bytesIn - stats.bytesOut);
    expect(stats.ratio).toBeLessThan(0.2);
    await store.get((await store.list({ limit: 1 }))[0]?.id ?? "x");
    expect((await store.plugin(compression)).stats().decompressed).toBe(2); // one in list, one get
  });

  it("keeps the append-only law: an identical re-put is a no-op, a different one conflicts", async () => {
    const { tier, store } = storeWith({ threshold: 0 });
    const d = makeDatum({ content: json(30) });
    await store.put(d);
    expect(await store.put({ ...d, content: d.content.slice(), metadata: { ...d.metadata } })).toBe(d.id);
    await expectDgent(store.put({ ...d, content: new TextEncoder().encode(json(31)) }), "DGENT_CONFLICT");
    expect(text(await store.get(d.id))).toBe(json(30));
    expect(tier.calls.put).toBe(3);
  });

  it("round-trips 1 MiB (compressed off the event loop)", async () => {
    const { store } = storeWith();
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i % 251) & 0x7f);
    const d = makeDatum({ content: big });
    await store.put(d);
    expect(sameBytes((await store.get(d.id))?.content ?? new Uint8Array(), big)).toBe(true);
  });

  it("a datum already marked (copied from a compressed store's scan) is stored as it is and reads decoded", async () => {
    const source = storeWith({ threshold: 0 });
    const d = makeDatum({ content: json(40), metadata: { a: "1" } });
    await source.store.put(d);
    const target = storeWith({ threshold: 0 });
    for await (const stored of source.store.scan()) await target.store.put(stored);
    expect(await target.tier.inner.get(d.id)).toEqual(await source.tier.inner.get(d.id));
    expect(text(await target.store.get(d.id))).toBe(json(40));
    expect((await target.store.get(d.id))?.metadata).toEqual({ a: "1" });
  });

  it("refuses a caller's value under the reserved key, and reports stored content that does not decompress", async () => {
    const { tier, store } = storeWith();
    await expectDgent(store.put(makeDatum({ content: "x", metadata: { [ENCODING_KEY]: "zip" } })), "DGENT_INVALID_METADATA");
    const corrupt = makeDatum({ content: "not gzip at all", metadata: { [ENCODING_KEY]: "gzip" } });
    await tier.inner.put(corrupt);
    const err = await expectDgent(store.get(corrupt.id), "DGENT_BACKEND_ERROR");
    expect(err.unit).toBe("compression");
  });

  it("round-trips through SQLite", async () => {
    const { store } = storeWith({ threshold: 10 }, new ProbeTier(sqliteTier()));
    const d = makeDatum({ content: json(20), metadata: { k: "v" } });
    await store.put(d);
    const got = await store.get(d.id);
    expect(text(got)).toBe(json(20));
    expect(got?.metadata).toEqual({ k: "v" });
    await store.close();
  });

  it("property: any content and metadata round-trip unchanged at any threshold", async () => {
    const { store } = storeWith({ threshold: 0 }, new ProbeTier(memoryAdapter()));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.string({ maxLength: 2000 }).map((s) => new TextEncoder().encode(s.repeat(3)))),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }).filter((k) => k !== ENCODING_KEY), fc.string({ maxLength: 6 })),
        async (content, metadata) => {
          const d = makeDatum({ content, metadata });
          await store.put(d);
          const got = await store.get(d.id);
          expect(sameBytes(got?.content ?? new Uint8Array([1, 2, 3]), content)).toBe(true);
          expect(got?.metadata).toEqual(metadata);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("checks its options with ajv (and gzip's level range)", async () => {
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [compressionPlugin({ algorithm: "zstd" as never })] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
    );
    await expectDgent(storeWith({ level: 10 }).store.open(), "DGENT_INVALID_OPTIONS");
  });
});
